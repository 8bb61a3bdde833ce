//! Stratified k-fold cross-validation: the same [`FitOptions`] trained on each k-1 folds
//! and scored on the fold held out; the mean and spread of the ranking metrics per label.

use super::{fit, FitOptions};
use crate::data::{split, Dataset};
use crate::error::{Error, Result};
use crate::metrics;
use crate::rng::Rng;
use serde::Serialize;
use std::collections::BTreeMap;

/// The false positive rate of the reported TPR.
pub const CV_FPR: f64 = 0.01;

/// The held-out rows of each of `k` folds (each sorted ascending; together every row once).
///
/// Rows are grouped by the first label (as [`split::stratified_split`]), each group is
/// shuffled with [`Rng::new`]`(seed)` (groups in ascending label order, one generator),
/// then dealt to the folds in turn, continuing from one group to the next, so fold sizes
/// and class counts differ by at most one.
pub fn stratified_folds(ds: &Dataset, k: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    if k < 2 || k > ds.rows() {
        return Err(Error::invalid(format!(
            "the number of folds must be between 2 and the number of rows ({}), got {k}",
            ds.rows()
        )));
    }
    let mut strata: BTreeMap<bool, Vec<usize>> = BTreeMap::new();
    for r in 0..ds.rows() {
        let key = match &ds.y {
            Some(y) if ds.n_labels > 0 => y[r * ds.n_labels] > 0.5,
            _ => false,
        };
        strata.entry(key).or_default().push(r);
    }
    let mut rng = Rng::new(seed);
    let mut folds = vec![Vec::new(); k];
    let mut next = 0;
    for (_, mut rows) in strata {
        rng.shuffle(&mut rows);
        for r in rows {
            folds[next].push(r);
            next = (next + 1) % k;
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

/// The rows of every fold but `held`, sorted ascending.
pub fn rows_except(folds: &[Vec<usize>], held: usize) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..folds.len())
        .filter(|&f| f != held)
        .flat_map(|f| folds[f].iter().copied())
        .collect();
    rows.sort_unstable();
    rows
}

/// One label's ranking metrics on one held-out fold (`None`: the fold lacks a class).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FoldScores {
    pub auc: Option<f64>,
    pub average_precision: Option<f64>,
    pub tpr_at_fpr_1pct: Option<f64>,
}

impl FoldScores {
    /// Scores of one label's logits against its 0/1 labels.
    pub fn of(scores: &[f32], labels: &[f32]) -> Self {
        FoldScores {
            auc: metrics::roc_auc(scores, labels),
            average_precision: metrics::average_precision(scores, labels),
            tpr_at_fpr_1pct: metrics::tpr_at_fpr(scores, labels, CV_FPR),
        }
    }
}

/// Mean and (sample, n-1) standard deviation of one metric over the folds that have it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    /// How many folds had the metric.
    pub n: usize,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Option<Spread> {
        let v: Vec<f64> = values.into_iter().flatten().collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Some(Spread {
            mean,
            std: var.sqrt(),
            n: v.len(),
        })
    }
}

/// One label's summary over the folds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelSummary {
    pub label: String,
    pub auc: Option<Spread>,
    pub average_precision: Option<Spread>,
    pub tpr_at_fpr_1pct: Option<Spread>,
}

/// What [`cross_validate`] measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CvReport {
    pub folds: usize,
    pub seed: u64,
    /// Held-out rows per fold.
    pub fold_rows: Vec<usize>,
    /// `per_fold[f][label]`.
    pub per_fold: Vec<Vec<FoldScores>>,
    pub summary: Vec<LabelSummary>,
}

/// Trains `opts` on every k-1 of `k` stratified folds of `data` (built from `seed`),
/// without validation data, and scores each model on the fold it did not see.
/// `on_fold(f)` is called before fold `f` (0-based) trains.
pub fn cross_validate(
    opts: &FitOptions,
    data: &Dataset,
    k: usize,
    seed: u64,
    on_fold: &mut dyn FnMut(usize),
) -> Result<CvReport> {
    if data.y.is_none() {
        return Err(Error::invalid("cross-validation needs labelled data"));
    }
    let folds = stratified_folds(data, k, seed)?;
    let l = data.n_labels;
    let mut per_fold = Vec::with_capacity(k);
    for (f, held) in folds.iter().enumerate() {
        on_fold(f);
        let train = split::subset(data, &rows_except(&folds, f));
        let test = split::subset(data, held);
        let fitted = fit(opts, &train, None, &mut |_| {})?;
        let logits = fitted.model.logits(&test.x);
        let y = test.y.as_ref().expect("labelled");
        per_fold.push(
            (0..l)
                .map(|j| {
                    FoldScores::of(
                        &metrics::label_column(&logits, l, j),
                        &metrics::label_column(y, l, j),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    let summary = (0..l)
        .map(|j| {
            let col = |m: fn(&FoldScores) -> Option<f64>| {
                Spread::of(per_fold.iter().map(|f: &Vec<FoldScores>| m(&f[j])))
            };
            LabelSummary {
                label: data.label_names.get(j).cloned().unwrap_or_default(),
                auc: col(|s| s.auc),
                average_precision: col(|s| s.average_precision),
                tpr_at_fpr_1pct: col(|s| s.tpr_at_fpr_1pct),
            }
        })
        .collect();
    Ok(CvReport {
        folds: k,
        seed,
        fold_rows: folds.iter().map(Vec::len).collect(),
        per_fold,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DenseMatrix, Features};

    fn labelled(labels: &[f32]) -> Dataset {
        Dataset {
            x: Features::Dense(DenseMatrix {
                rows: labels.len(),
                cols: 1,
                values: labels.to_vec(),
            }),
            y: Some(labels.to_vec()),
            n_labels: 1,
            label_names: vec!["y".into()],
            feature_names: None,
            source: "mem".into(),
        }
    }

    #[test]
    fn folds_partition_the_rows_stratified_and_deterministically() {
        let labels: Vec<f32> = (0..103).map(|i| (i % 4 == 0) as u8 as f32).collect();
        let ds = labelled(&labels);
        let folds = stratified_folds(&ds, 5, 3).unwrap();
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        let sizes: Vec<usize> = folds.iter().map(Vec::len).collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        for f in &folds {
            let pos = f.iter().filter(|&&r| labels[r] == 1.0).count();
            assert!((5..=6).contains(&pos), "{pos} positives of 26 in a fold");
        }
        assert_eq!(stratified_folds(&ds, 5, 3).unwrap(), folds);
        assert_ne!(stratified_folds(&ds, 5, 4).unwrap(), folds);
        assert_eq!(rows_except(&folds, 0).len(), 103 - folds[0].len());
        assert!(stratified_folds(&ds, 1, 0).is_err());
    }

    #[test]
    fn spread_is_the_sample_standard_deviation() {
        let s = Spread::of([Some(1.0), None, Some(3.0)]).unwrap();
        assert_eq!((s.mean, s.n), (2.0, 2));
        assert!((s.std - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(Spread::of([None]), None);
    }
}
