//! The threat model, as `attack`'s: only addable features are raised, each at most up to
//! its cap (`feature_max`, or one value for all), and a raise of feature `j` from raw `x_j`
//! to `cap_j` moves the network's (scaled) input by `d_j = s(cap_j) - s(x_j)`. Any value in
//! between is reachable too, so an attack is a vector of increases `delta_j in [0, d_j]`
//! with at most `k` of them non-zero. Features the model declares as lowered by additions
//! (NonPos first-layer rows) are never raised.

use super::Budget;
use crate::attack::threat::{addable_features, feature_caps};
use crate::data::Features;
use crate::error::Result;
use crate::model::Model;

/// Which features may be raised, how far, and the scaling between raw and network input.
pub(crate) struct Threat<'m> {
    model: &'m Model,
    sparse: bool,
    addable: Vec<bool>,
    caps: Vec<f32>,
    /// Sparse rows: the scaled increase of each feature when absent (raw 0 -> cap); 0 when
    /// it is not addable or its cap is not above 0.
    pub absent: Vec<f32>,
}

/// The scaled increases available to one row.
pub(crate) enum Increases {
    /// Dense rows: every feature's `d_j`.
    Dense(Vec<f32>),
    /// Sparse rows: the row's features (sorted) and their `d_j`; absent features take
    /// [`Threat::absent`].
    Sparse { present: Vec<u32>, d: Vec<f32> },
}

impl<'m> Threat<'m> {
    pub fn new(
        model: &'m Model,
        addable: Option<&[usize]>,
        max_value: Option<f32>,
        sparse: bool,
    ) -> Result<Self> {
        let n = model.mlp.input_dim;
        let mut mask = vec![false; n];
        for j in addable_features(model, addable)? {
            mask[j as usize] = true;
        }
        let caps = feature_caps(model, max_value)?;
        let mut t = Threat {
            model,
            sparse,
            addable: mask,
            caps,
            absent: Vec::new(),
        };
        t.absent = (0..n).map(|j| t.increase(j, 0.0)).collect();
        Ok(t)
    }

    /// The addable features, ascending.
    pub fn addable(&self) -> Vec<usize> {
        (0..self.addable.len())
            .filter(|&j| self.addable[j])
            .collect()
    }

    /// The model's scaling of raw value `v` of feature `j` in this data format.
    #[inline]
    pub fn scaled(&self, j: usize, v: f32) -> f32 {
        self.model.scaler.value(j, v, self.sparse)
    }

    /// `d_j` for raw value `v`: how far raising feature `j` to its cap moves the input.
    #[inline]
    fn increase(&self, j: usize, v: f32) -> f32 {
        if self.addable[j] && v < self.caps[j] {
            (self.scaled(j, self.caps[j]) - self.scaled(j, v)).max(0.0)
        } else {
            0.0
        }
    }

    /// Row `r`'s scaled input as `(feature, value)` pairs (sparse: the stored entries).
    pub fn scaled_row(&self, x: &Features, r: usize) -> Vec<(u32, f32)> {
        match x {
            Features::Dense(m) => m
                .row(r)
                .iter()
                .enumerate()
                .map(|(j, &v)| (j as u32, self.scaled(j, v)))
                .collect(),
            Features::Sparse(m) => {
                let (idx, val) = m.row(r);
                idx.iter()
                    .zip(val)
                    .map(|(&j, &v)| (j, self.scaled(j as usize, v)))
                    .collect()
            }
        }
    }

    /// The increases available to row `r`.
    pub fn increases(&self, x: &Features, r: usize) -> Increases {
        match x {
            Features::Dense(m) => Increases::Dense(
                m.row(r)
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| self.increase(j, v))
                    .collect(),
            ),
            Features::Sparse(m) => {
                let (idx, val) = m.row(r);
                Increases::Sparse {
                    present: idx.to_vec(),
                    d: idx
                        .iter()
                        .zip(val)
                        .map(|(&j, &v)| self.increase(j as usize, v))
                        .collect(),
                }
            }
        }
    }

    /// The negative contributions `coef_j * d_j` of a linear function with these
    /// coefficients (one per feature), into `out` (cleared first).
    pub fn negatives(&self, inc: &Increases, coef: &[f32], out: &mut Vec<f32>) {
        out.clear();
        let mut push = |t: f32| {
            if t < 0.0 {
                out.push(t)
            }
        };
        match inc {
            Increases::Dense(d) => d.iter().zip(coef).for_each(|(d, c)| push(d * c)),
            Increases::Sparse { present, d } => {
                let mut p = 0;
                for (j, (&c, &a)) in coef.iter().zip(&self.absent).enumerate() {
                    if p < present.len() && present[p] as usize == j {
                        push(c * d[p]);
                        p += 1;
                    } else {
                        push(c * a);
                    }
                }
            }
        }
    }
}

/// For each budget, the sum (in f64) of the `k` most negative values of `neg` (all
/// negative; reordered): the exact minimum over "at most `k` non-zero increases" of a
/// linear function whose negative contributions these are.
pub(crate) fn most_negative_sums(neg: &mut [f32], budgets: &[Budget]) -> Vec<f64> {
    let kmax = budgets
        .iter()
        .filter_map(|b| b.finite())
        .max()
        .unwrap_or(0)
        .min(neg.len());
    if kmax < neg.len() && kmax > 0 {
        neg.select_nth_unstable_by(kmax, f32::total_cmp);
    }
    neg[..kmax].sort_unstable_by(f32::total_cmp);
    let mut prefix = Vec::with_capacity(kmax + 1);
    let mut s = 0f64;
    prefix.push(0.0);
    for &v in &neg[..kmax] {
        s += v as f64;
        prefix.push(s);
    }
    budgets
        .iter()
        .map(|b| match b.finite() {
            Some(k) => prefix[k.min(kmax)],
            None => neg.iter().map(|&v| v as f64).sum(),
        })
        .collect()
}
