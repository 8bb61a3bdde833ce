//! Binary cross-entropy with logits, numerically stable, with per-label `pos_weight`
//! (PyTorch's `BCEWithLogitsLoss` formula), mean over rows and labels.

/// Loss per element: `(1 - y) z + (1 + (pw - 1) y) (log(1 + e^{-|z|}) + max(-z, 0))`.
#[inline]
pub fn bce_with_logits(z: f32, y: f32, pos_weight: f32) -> f32 {
    let lw = 1.0 + (pos_weight - 1.0) * y;
    (1.0 - y) * z + lw * ((-z.abs()).exp().ln_1p() + (-z).max(0.0))
}

/// d loss / d z for one element.
#[inline]
pub fn bce_with_logits_grad(z: f32, y: f32, pos_weight: f32) -> f32 {
    let lw = 1.0 + (pos_weight - 1.0) * y;
    let s = crate::model::activation::sigmoid(z);
    (1.0 - y) - lw * (1.0 - s)
}

/// Mean loss over `[rows x labels]` logits; writes d mean-loss / d logits into `grad`.
pub fn mean_loss_and_grad(
    logits: &[f32],
    y: &[f32],
    pos_weight: &[f32],
    grad: Option<&mut [f32]>,
) -> f64 {
    scaled_mean_loss_and_grad(logits, y, pos_weight, 1.0, grad)
}

/// [`mean_loss_and_grad`] with each positive element's loss (label >= 0.5) and gradient
/// multiplied by `pos_scale`: verified training's clean share `1 - w` (the bound's share
/// is added by the trainer). `pos_scale = 1` is the plain mean loss, bit for bit.
pub fn scaled_mean_loss_and_grad(
    logits: &[f32],
    y: &[f32],
    pos_weight: &[f32],
    pos_scale: f32,
    grad: Option<&mut [f32]>,
) -> f64 {
    share_of_mean_loss_and_grad(logits, y, pos_weight, pos_scale, logits.len(), grad)
}

/// The share that `logits` contribute to [`scaled_mean_loss_and_grad`] over `total`
/// elements of which they are a part (a data-parallel rank's slice of a batch): the
/// slices' results add up to the whole batch's, and each gradient element is the whole
/// batch's to the bit.
pub fn share_of_mean_loss_and_grad(
    logits: &[f32],
    y: &[f32],
    pos_weight: &[f32],
    pos_scale: f32,
    total: usize,
    grad: Option<&mut [f32]>,
) -> f64 {
    let labels = pos_weight.len();
    let scale = 1.0 / total as f32;
    let share = |t: f32| if t >= 0.5 { pos_scale } else { 1.0 };
    let mut sum = 0f64;
    for (i, (&z, &t)) in logits.iter().zip(y).enumerate() {
        sum += (share(t) * bce_with_logits(z, t, pos_weight[i % labels])) as f64;
    }
    if let Some(g) = grad {
        for (i, ((g, &z), &t)) in g.iter_mut().zip(logits).zip(y).enumerate() {
            *g = share(t) * bce_with_logits_grad(z, t, pos_weight[i % labels]) * scale;
        }
    }
    sum / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_naive_formula_where_it_is_stable() {
        for &z in &[-5.0f32, -0.3, 0.0, 0.8, 4.0] {
            for &y in &[0.0f32, 1.0] {
                let p = 1.0 / (1.0 + (-z as f64).exp());
                let pw = 2.5;
                let naive = -(pw * y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln());
                let got = bce_with_logits(z, y, pw as f32) as f64;
                assert!((naive - got).abs() < 1e-5, "z={z} y={y}: {naive} vs {got}");
            }
        }
    }

    #[test]
    fn stable_for_huge_logits() {
        assert!(bce_with_logits(1e4, 1.0, 1.0).abs() < 1e-6);
        assert!((bce_with_logits(-1e4, 1.0, 1.0) - 1e4).abs() < 1.0);
        assert!(bce_with_logits(1e4, 0.0, 1.0).is_finite());
        assert_eq!(bce_with_logits_grad(1e4, 0.0, 1.0), 1.0);
        assert!(bce_with_logits_grad(-1e4, 1.0, 3.0) + 3.0 < 1e-6);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for &z in &[-3.0f64, -0.5, 0.2, 2.0] {
            for &y in &[0.0f32, 1.0] {
                for &pw in &[1.0f32, 0.3, 4.0] {
                    let h = 1e-3;
                    let f = |z: f64| bce_with_logits(z as f32, y, pw) as f64;
                    let fd = (f(z + h) - f(z - h)) / (2.0 * h);
                    let g = bce_with_logits_grad(z as f32, y, pw) as f64;
                    assert!((fd - g).abs() < 2e-3, "z={z} y={y} pw={pw}: {fd} vs {g}");
                }
            }
        }
    }
}
