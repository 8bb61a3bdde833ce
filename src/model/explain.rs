//! Why a row scored as it did: each feature's contribution to one logit.
//!
//! The logit is `skip(x') + mlp(x')` with `x'` the scaled row. The linear parts are
//! explained exactly: the skip connection's `W_skip[j] x'_j`, and for a network without
//! hidden layers the whole logit (`W[j] x'_j`; the bias is the rest). The hidden layers
//! get gradient x input, `x'_j d mlp / d x'_j`, the usual first-order attribution: it
//! ranks the features that move the logit but, unlike the linear parts, the terms do not
//! add up to the logit.

use super::{Input, Model, Tape};
use crate::data::{CsrMatrix, Features};
use serde::Serialize;

/// One feature's share of a logit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Contribution {
    /// 0-based feature index.
    pub feature: usize,
    /// The model's name for it (`f{index}` when it has none).
    pub name: String,
    /// The raw (unscaled) value in the row.
    pub value: f32,
    /// Exact share through the linear parts (the skip connection, or a model without
    /// hidden layers).
    pub linear: f32,
    /// Gradient x input through the hidden layers (0 without hidden layers).
    pub gradient: f32,
}

impl Contribution {
    /// What the feature adds to the logit, as far as it can be said: `linear + gradient`.
    pub fn total(&self) -> f32 {
        self.linear + self.gradient
    }
}

impl Model {
    /// The `top` features with the largest contributions (by absolute value) to logit
    /// `label` of row `row` of `x` (raw features), largest first; ties by feature index.
    /// Only features present in the row (non-zero, or non-zero after scaling) contribute.
    pub fn explain(&self, x: &Features, row: usize, label: usize, top: usize) -> Vec<Contribution> {
        let sparse = x.is_sparse();
        let row_values: Vec<(usize, f32)> = match x {
            Features::Dense(m) => m.row(row).iter().copied().enumerate().collect(),
            Features::Sparse(m) => {
                let (idx, vals) = m.row(row);
                idx.iter()
                    .map(|&j| j as usize)
                    .zip(vals.iter().copied())
                    .collect()
            }
        };
        let scaled: Vec<(usize, f32)> = row_values
            .iter()
            .map(|&(j, v)| (j, self.scaler.value(j, v, sparse)))
            .collect();
        let gradient = self.hidden_gradient(&scaled, label);
        let names = crate::certify::feature_names(self);
        let mlp = &self.mlp;
        let hidden = mlp.layers.len() > 1;
        let mut out: Vec<Contribution> = row_values
            .iter()
            .zip(&scaled)
            .enumerate()
            .filter(|(_, (_, &(_, s)))| s != 0.0)
            .map(|(k, (&(j, value), &(_, s)))| {
                let mut linear = mlp
                    .skip
                    .as_ref()
                    .map_or(0.0, |k| k.weight[j * k.n_out + label] * s);
                if !hidden {
                    let w = &mlp.layers[0];
                    linear += w.weight[j * w.n_out + label] * s;
                }
                Contribution {
                    feature: j,
                    name: names
                        .as_ref()
                        .map_or_else(|| format!("f{j}"), |n| n[j].clone()),
                    value,
                    linear,
                    gradient: gradient.as_ref().map_or(0.0, |g| g[k] * s),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.total()
                .abs()
                .total_cmp(&a.total().abs())
                .then(a.feature.cmp(&b.feature))
        });
        out.truncate(top);
        out
    }

    /// `d mlp / d x'_j` of logit `label` at the scaled row for each entry of `scaled`
    /// (the skip connection excluded: it feeds the logits directly, so `dz1` does not see
    /// it); `None` without hidden layers (the linear part is exact there).
    fn hidden_gradient(&self, scaled: &[(usize, f32)], label: usize) -> Option<Vec<f32>> {
        let mlp = &self.mlp;
        if mlp.layers.len() < 2 {
            return None;
        }
        let mut one = CsrMatrix::with_capacity(mlp.input_dim, 1, scaled.len());
        let (idx, vals): (Vec<u32>, Vec<f32>) = scaled
            .iter()
            .filter(|&&(_, s)| s != 0.0)
            .map(|&(j, s)| (j as u32, s))
            .unzip();
        one.push_row(&idx, &vals);
        let mut tape = Tape::new(mlp, 1);
        let input = Input::Sparse(&one, &[0]);
        mlp.forward(input, &mut tape);
        let (_, dlogits) = tape.logits_and_dlogits();
        dlogits.fill(0.0);
        dlogits[label] = 1.0;
        mlp.backward(input, &mut tape, None);
        // d logit / d x'_j = sum_i W1[j, i] dz1_i, for the row's own features only (a
        // sparse model has a million rows of W1).
        let first = &mlp.layers[0];
        let dz1 = &tape.dz[0][..first.n_out];
        let grad = |j: usize| -> f32 {
            first.weight[j * first.n_out..(j + 1) * first.n_out]
                .iter()
                .zip(dz1)
                .map(|(w, g)| w * g)
                .sum()
        };
        Some(scaled.iter().map(|&(j, _)| grad(j)).collect())
    }
}
