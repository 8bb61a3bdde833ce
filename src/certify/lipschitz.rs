//! The second proof of monotonicity: a Lipschitz monotonic network (LMN, Nolte et al.
//! 2023) built from nonneg's parts, `f(x) = g(x) + x S` with `g` the MLP (free weights) and
//! `S` the skip connection.
//!
//! **Criterion.** `L[j][o] = sum_k |W0[j,k]| d0[k][o]`, with `d` the absolute path sums of
//! the layers above (`d_{l-1}[k][o] = slope_{l-1} * sum_m |W_l[k,m]| d_l[m][o]`, `d` at the
//! logits the identity, `slope` each activation's largest slope), bounds how fast logit `o`
//! of `g` can change with feature `j`: every map on the way is Lipschitz with those
//! constants, coordinate by coordinate. So `f(x + t e_j) - f(x) >= (S[j][o] - L[j][o]) t`
//! for `t >= 0`, and `S[j][o] >= L[j][o]` makes logit `o` non-decreasing in feature `j`,
//! whatever the other features are; additions to several features are a chain of such
//! single-feature steps. The bounds are computed in `f64` from the stored `f32` weights
//! (exactly representable) and a skip weight must exceed them by [`CERTIFY_MARGIN`]; the
//! trainer's projection leaves [`PROJECT_MARGIN`], so a trained model passes with room.
//!
//! Unlike the sign proof, this one is about the real-valued function: the `f32` forward
//! pass may differ from it by rounding (about `1e-7` of the logit's terms).

use crate::model::{Activation, Mlp};
use rayon::prelude::*;
use serde::Serialize;

/// Relative room a skip weight must leave above its bound for the certificate.
pub const CERTIFY_MARGIN: f64 = 1e-6;
/// Relative room the trainer's projection leaves ([`project`]); above
/// [`CERTIFY_MARGIN`] with `f32` rounding to spare.
pub const PROJECT_MARGIN: f64 = 1e-4;

/// The largest slope of an activation (its Lipschitz constant). An exhaustive match: a
/// new activation must state its own.
fn max_slope(a: Activation) -> f64 {
    match a {
        Activation::Sigmoid => 0.25,
        // relu, min(z, 0), clamp and leaky relu have slopes 0, 0.01 or 1; tanh and
        // softplus at most 1.
        Activation::Identity
        | Activation::Relu
        | Activation::LeakyRelu
        | Activation::Tanh
        | Activation::Softplus
        | Activation::Mixed => 1.0,
    }
}

/// The absolute path sums `d0 [units of the first layer x labels]` of the layers above
/// the first kernel, each unit's activation slope included.
fn upper_paths(mlp: &Mlp) -> Vec<f64> {
    let labels = mlp.n_labels();
    // d at the logits: the identity, one column per label.
    let mut d: Vec<f64> = (0..labels * labels)
        .map(|i| (i / labels == i % labels) as u8 as f64)
        .collect();
    for l in (1..mlp.layers.len()).rev() {
        let (layer, slope) = (&mlp.layers[l], max_slope(mlp.layers[l - 1].activation));
        d = abs_times(&layer.weight, layer.n_out, &d, labels)
            .into_iter()
            .map(|v| v * slope)
            .collect();
    }
    d
}

/// `L` of the module documentation, `[input_dim x labels]` row-major: a bound on
/// `|d g_o / d x_j|` of the MLP without its skip connection. `mlp` must be well formed
/// (shapes chain).
pub fn feature_bounds(mlp: &Mlp) -> Vec<f64> {
    let first = &mlp.layers[0];
    abs_times(
        &first.weight,
        first.n_out,
        &upper_paths(mlp),
        mlp.n_labels(),
    )
}

/// `|W| d` for a row-major kernel `W [rows x cols]` and `d [cols x labels]`.
fn abs_times(w: &[f32], cols: usize, d: &[f64], labels: usize) -> Vec<f64> {
    let mut out = vec![0f64; w.len() / cols.max(1) * labels];
    out.par_chunks_mut(labels.max(1))
        .zip(w.par_chunks(cols.max(1)))
        .with_min_len(64)
        .for_each(|(o, row)| {
            for (&wk, dk) in row.iter().zip(d.chunks_exact(labels)) {
                if wk != 0.0 {
                    let a = (wk as f64).abs();
                    o.iter_mut().zip(dk).for_each(|(o, &dk)| *o += a * dk);
                }
            }
        });
    out
}

/// What the Lipschitz proof found for the features the sign proof left uncovered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LipschitzProof {
    /// Features it was asked about.
    pub checked: usize,
    /// Of them, those whose skip weight covers the bound for every logit.
    pub proved: usize,
    /// The smallest `S[j][o] / L[j][o]` over the checked features with `L > 0` (`>= 1 +`
    /// [`CERTIFY_MARGIN`] everywhere when all are proved); none when every bound is 0.
    pub min_ratio: Option<f64>,
    /// The feature with that smallest ratio (0-based).
    pub worst_feature: Option<usize>,
}

/// Checks `S[j][o] >= L[j][o] (1 + CERTIFY_MARGIN)` for the `features`; returns which
/// hold (in the order given) and the summary. Without a skip connection nothing holds.
pub fn check(mlp: &Mlp, features: &[usize]) -> (Vec<bool>, LipschitzProof) {
    let Some(skip) = &mlp.skip else {
        let none = LipschitzProof {
            checked: features.len(),
            proved: 0,
            min_ratio: None,
            worst_feature: None,
        };
        return (vec![false; features.len()], none);
    };
    let labels = mlp.n_labels();
    let bounds = feature_bounds(mlp);
    let mut worst: Option<(f64, usize)> = None;
    let held: Vec<bool> = features
        .iter()
        .map(|&j| {
            let (s, l) = (
                &skip.weight[j * labels..(j + 1) * labels],
                &bounds[j * labels..(j + 1) * labels],
            );
            let mut ok = true;
            for (&s, &l) in s.iter().zip(l) {
                let s = s as f64;
                ok &= s >= l * (1.0 + CERTIFY_MARGIN);
                let ratio = if l > 0.0 { s / l } else { f64::INFINITY };
                if ratio.is_finite() && worst.is_none_or(|(r, _)| ratio < r) {
                    worst = Some((ratio, j));
                }
            }
            ok
        })
        .collect();
    let proof = LipschitzProof {
        checked: features.len(),
        proved: held.iter().filter(|&&h| h).count(),
        min_ratio: worst.map(|w| w.0),
        worst_feature: worst.map(|w| w.1),
    };
    (held, proof)
}

/// The smallest `f32` at least `v` (`v >= 0`): a skip weight set from an `f64` bound
/// must not round below it.
fn f32_at_least(v: f64) -> f32 {
    let t = v as f32;
    if (t as f64) < v {
        f32::from_bits(t.to_bits() + 1)
    } else {
        t
    }
}

/// The LMN projection after a step: for each feature `j` and logit `o` with `S[j][o]`
/// below `L[j][o] (1 + PROJECT_MARGIN)`, the nearest point (Euclidean, the layers above
/// held fixed) of `{S[j][o] >= sum_k |W0[j,k]| d0[k][o]}`: `S` raised by `t` and every
/// `|W0[j,k]|` lowered by `t d0[k][o]` (soft thresholding), `t` found by bisection; then
/// `S` raised to the recomputed bound, so the rule holds whatever the rounding. Neither
/// side alone trains well: raising only the skip lets `g` grow its bound (and the skip
/// with it) without limit, shrinking only the kernel kills `g` at the start, where the
/// skip is zero. No-op without a skip connection.
pub fn project(mlp: &mut Mlp) {
    let labels = mlp.n_labels().max(1);
    let d = upper_paths(mlp);
    let (first, skip) = match (mlp.layers.first_mut(), mlp.skip.as_mut()) {
        (Some(f), Some(s)) => (f, s),
        _ => return,
    };
    let cols = first.n_out.max(1);
    // d0 by label: the per-unit weights of each logit's constraint.
    let by_label: Vec<Vec<f64>> = (0..labels)
        .map(|o| d.chunks_exact(labels).map(|dk| dk[o]).collect())
        .collect();
    first
        .weight
        .par_chunks_mut(cols)
        .zip(skip.weight.par_chunks_mut(labels))
        .with_min_len(256)
        .for_each(|(w, s)| {
            for (s, c) in s.iter_mut().zip(&by_label) {
                shrink_row(w, s, c);
                let l: f64 = w.iter().zip(c).map(|(&w, &c)| (w as f64).abs() * c).sum();
                let need = f32_at_least(l * (1.0 + PROJECT_MARGIN));
                if s.is_nan() || *s < need {
                    *s = need;
                }
            }
        });
}

/// Moves `(s, w)` to the nearest point of `{s >= m sum_k |w_k| c_k}`, `m = 1 +
/// PROJECT_MARGIN`, when outside it. With `t` the rise of `s`, `|w_k|` falls to
/// `max(|w_k| - t m c_k, 0)`; the gap `s + t - m sum_k c_k max(...)` is piecewise linear
/// and increasing in `t`, so its root is found walking the breakpoints `|w_k| / (m c_k)`
/// in order.
fn shrink_row(w: &mut [f32], s: &mut f32, c: &[f64]) {
    let m = 1.0 + PROJECT_MARGIN;
    let s0 = *s as f64;
    let mut points: Vec<(f64, f64, f64)> = w
        .iter()
        .zip(c)
        .filter(|(&w, &c)| w != 0.0 && c > 0.0)
        .map(|(&w, &c)| ((w as f64).abs() / (m * c), c, (w as f64).abs()))
        .collect();
    // Over the active weights: gap(t) = s0 - m a + t (1 + m b).
    let (mut a, mut b) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), &(_, c, w)| (a + c * w, b + c * c * m));
    if !s0.is_finite() || s0 >= m * a {
        return;
    }
    let first_root = (m * a - s0) / (1.0 + m * b);
    // Usual after a step: a small gap, no weight reaches zero, no sort needed.
    if points.iter().all(|p| first_root <= p.0) {
        shrink_by(w, c, first_root);
        *s = (s0 + first_root) as f32;
        return;
    }
    points.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
    let mut t = -s0;
    for &(brk, c, w) in &points {
        let root = (m * a - s0) / (1.0 + m * b);
        if root <= brk {
            t = root;
            break;
        }
        a -= c * w;
        b -= c * c * m;
        t = -s0;
    }
    shrink_by(w, c, t);
    *s = (s0 + t.max(0.0)) as f32;
}

/// `|w_k|` lowered by `t m c_k`, not below zero, signs kept.
fn shrink_by(w: &mut [f32], c: &[f64], t: f64) {
    let m = 1.0 + PROJECT_MARGIN;
    for (w, &c) in w.iter_mut().zip(c) {
        let v = ((*w as f64).abs() - t * m * c).max(0.0);
        *w = (v as f32).copysign(*w);
    }
}
