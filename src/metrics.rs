//! Classification metrics on logits: ROC AUC (ties averaged), average precision (the area under the precision-recall steps),
//! TPR at a fixed FPR, and counts at a decision threshold.

use serde::Serialize;

/// ROC AUC by the Mann-Whitney statistic with average ranks for ties. `None` when a class
/// is missing.
pub fn roc_auc(scores: &[f32], labels: &[f32]) -> Option<f64> {
    let order = sorted_desc(scores);
    let n_pos = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    // Count, for each positive, the negatives scored below it (ties count half).
    let mut wins = 0f64;
    let mut neg_below = n_neg;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut p, mut n) = (0f64, 0f64);
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] > 0.5 {
                p += 1.0
            } else {
                n += 1.0
            }
            j += 1;
        }
        neg_below -= n;
        wins += p * (neg_below + 0.5 * n);
        i = j;
    }
    Some(wins / (n_pos * n_neg))
}

fn sorted_desc(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// ROC curve points `(fpr, tpr)`, one per distinct threshold, from (0,0) to (1,1).
pub fn roc_curve(scores: &[f32], labels: &[f32]) -> Vec<(f64, f64)> {
    let order = sorted_desc(scores);
    let n_pos = labels.iter().filter(|&&y| y > 0.5).count().max(1) as f64;
    let n_neg = (labels.len() as f64 - labels.iter().filter(|&&y| y > 0.5).count() as f64).max(1.0);
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0f64, 0f64);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] > 0.5 {
            tp += 1.0
        } else {
            fp += 1.0
        }
        if k + 1 == order.len() || scores[order[k + 1]] != scores[i] {
            pts.push((fp / n_neg, tp / n_pos));
        }
    }
    pts
}

/// The best TPR among thresholds whose FPR is at most `max_fpr`.
pub fn tpr_at_fpr(scores: &[f32], labels: &[f32], max_fpr: f64) -> Option<f64> {
    let has_pos = labels.iter().any(|&y| y > 0.5);
    let has_neg = labels.iter().any(|&y| y <= 0.5);
    if !has_pos || !has_neg {
        return None;
    }
    Some(
        roc_curve(scores, labels)
            .into_iter()
            .filter(|&(f, _)| f <= max_fpr + 1e-12)
            .map(|(_, t)| t)
            .fold(0.0, f64::max),
    )
}

/// Average precision (the step-wise area under the precision-recall curve, as
/// scikit-learn's `average_precision_score`).
pub fn average_precision(scores: &[f32], labels: &[f32]) -> Option<f64> {
    let n_pos = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    if n_pos == 0.0 {
        return None;
    }
    let order = sorted_desc(scores);
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0f64, 0f64, 0f64, 0f64);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] > 0.5 {
            tp += 1.0
        } else {
            fp += 1.0
        }
        if k + 1 == order.len() || scores[order[k + 1]] != scores[i] {
            let recall = tp / n_pos;
            ap += (recall - prev_recall) * tp / (tp + fp);
            prev_recall = recall;
        }
    }
    Some(ap)
}

/// The logit threshold giving a false positive rate of at most `fpr` on these negatives:
/// just above the score of the first negative that must be excluded.
pub fn threshold_for_fpr(scores: &[f32], labels: &[f32], fpr: f64) -> Option<f32> {
    let mut neg: Vec<f32> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &y)| y <= 0.5)
        .map(|(&s, _)| s)
        .collect();
    if neg.is_empty() {
        return None;
    }
    neg.sort_by(|a, b| b.total_cmp(a));
    let allowed = (fpr * neg.len() as f64).floor() as usize;
    if allowed >= neg.len() {
        return Some(f32::NEG_INFINITY);
    }
    Some(next_up(neg[allowed]))
}

/// Per label, [`threshold_for_fpr`] of logits `[rows x n_labels]` against 0/1 labels of
/// the same shape; `None` when a label has no negatives.
pub fn thresholds_for_fpr(
    logits: &[f32],
    labels: &[f32],
    n_labels: usize,
    fpr: f64,
) -> Option<Vec<f32>> {
    (0..n_labels)
        .map(|k| {
            let s = label_column(logits, n_labels, k);
            let t = label_column(labels, n_labels, k);
            threshold_for_fpr(&s, &t, fpr)
        })
        .collect()
}

fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let b = x.to_bits();
    f32::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

/// Column `k` of a row-major `[rows x n_labels]` array: one label's logits or 0/1 labels,
/// the per-label input of every metric here.
pub fn label_column(values: &[f32], n_labels: usize, k: usize) -> Vec<f32> {
    assert!(k < n_labels, "label {k} of {n_labels}");
    values.iter().skip(k).step_by(n_labels).copied().collect()
}

/// Everything `eval` reports for one label.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LabelMetrics {
    pub n: usize,
    pub positives: usize,
    pub threshold: f32,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub auc: Option<f64>,
    pub average_precision: Option<f64>,
    pub tpr_at_fpr_1pct: Option<f64>,
    pub tpr_at_fpr_0_1pct: Option<f64>,
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub fn_: usize,
    pub mean_loss: f64,
}

/// Metrics of one label's logits against its 0/1 labels, at the logit threshold.
pub fn evaluate(logits: &[f32], labels: &[f32], threshold: f32, pos_weight: f32) -> LabelMetrics {
    let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
    let mut loss = 0f64;
    for (&z, &y) in logits.iter().zip(labels) {
        let pred = z >= threshold;
        let pos = y > 0.5;
        match (pred, pos) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
        loss += crate::loss::bce_with_logits(z, y, pos_weight) as f64;
    }
    let n = logits.len();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    LabelMetrics {
        n,
        positives: tp + fn_,
        threshold,
        accuracy: ratio(tp + tn, n),
        precision,
        recall,
        f1: if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        },
        auc: roc_auc(logits, labels),
        average_precision: average_precision(logits, labels),
        tpr_at_fpr_1pct: tpr_at_fpr(logits, labels, 0.01),
        tpr_at_fpr_0_1pct: tpr_at_fpr(logits, labels, 0.001),
        tp,
        fp,
        tn,
        fn_,
        mean_loss: loss / n.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_column_takes_every_nth_value() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(label_column(&v, 3, 1), vec![2.0, 5.0]);
        assert_eq!(label_column(&v, 1, 0), v.to_vec());
    }

    #[test]
    fn auc_counts_pairs_and_halves_ties() {
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [0.0, 0.0, 1.0, 1.0];
        assert!((roc_auc(&s, &y).unwrap() - 0.75).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.5, 0.5], &[0.0, 1.0]), Some(0.5));
        assert_eq!(roc_auc(&[0.5, 0.6], &[1.0, 1.0]), None);
        // Brute force on random data with ties.
        let mut rng = crate::rng::Rng::new(3);
        let s: Vec<f32> = (0..300).map(|_| rng.below(20) as f32).collect();
        let y: Vec<f32> = (0..300).map(|_| (rng.below(3) == 0) as u8 as f32).collect();
        let (mut w, mut pairs) = (0.0, 0.0);
        for i in 0..300 {
            for j in 0..300 {
                if y[i] == 1.0 && y[j] == 0.0 {
                    pairs += 1.0;
                    w += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        assert!((roc_auc(&s, &y).unwrap() - w / pairs).abs() < 1e-12);
    }

    #[test]
    fn average_precision_matches_hand_computation() {
        // sklearn: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333...
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]).unwrap();
        assert!((ap - 0.833_333_333).abs() < 1e-6);
    }

    #[test]
    fn fpr_threshold_admits_at_most_the_allowed_false_positives() {
        let mut rng = crate::rng::Rng::new(4);
        let s: Vec<f32> = (0..1000).map(|_| rng.normal_f32()).collect();
        let y: Vec<f32> = (0..1000).map(|i| (i % 3 == 0) as u8 as f32).collect();
        for fpr in [0.0, 0.01, 0.1, 0.5] {
            let t = threshold_for_fpr(&s, &y, fpr).unwrap();
            let negs = y.iter().filter(|&&v| v == 0.0).count();
            let fp = s
                .iter()
                .zip(&y)
                .filter(|(&z, &v)| v == 0.0 && z >= t)
                .count();
            assert!(fp as f64 <= fpr * negs as f64, "fpr {fpr}: {fp}");
            assert!(fp as f64 >= fpr * negs as f64 - 1.0);
        }
        let t = tpr_at_fpr(&s, &y, 0.01).unwrap();
        assert!((0.0..=1.0).contains(&t));
    }

    #[test]
    fn confusion_counts_at_threshold() {
        let m = evaluate(&[-1.0, 0.5, 2.0, -0.2], &[0.0, 0.0, 1.0, 1.0], 0.0, 1.0);
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (1, 1, 1, 1));
        assert_eq!(m.accuracy, 0.5);
        assert_eq!(m.precision, 0.5);
    }
}
