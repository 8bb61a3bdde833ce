//! Per-sample lower bounds on the attacked logit under each budget: interval bounds (IBP)
//! with the first layer exact, and CROWN back-substitution to the input followed by the
//! exact top-`k` minimum of the resulting linear function. See the module documentation of
//! [`super`] for why each is sound.

use super::columns::Columns;
use super::relax::{interval, relax, Relax};
use super::threat::{most_negative_sums, Increases, Threat};
use super::{Budget, BudgetConfig, Intermediate, SampleBounds};
use crate::data::Features;
use crate::error::{Error, Result};
use crate::linalg::{matmul, Trans};
use crate::model::{Activation, Model};
use rayon::prelude::*;

/// Intermediate CROWN runs (under [`Intermediate::Auto`]) when one sample's products to
/// the input cost at most this many multiply-adds per budget (Spambase's 57 features:
/// 0.2M for 64-32; a 34k-word vocabulary: 140M, minutes for all test spam).
const AUTO_CROWN_MAX_FLOPS: usize = 1 << 22;
/// Samples whose final CROWN products run as one matrix product.
const BLOCK: usize = 64;

/// A layer above the first; the output keeps only the attacked label's column.
struct Layer {
    n_in: usize,
    n_out: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    act: Activation,
}

/// The model prepared for budget certificates: build once, bound many rows.
pub struct BudgetCertifier<'m> {
    model: &'m Model,
    threat: Threat<'m>,
    budgets: Vec<Budget>,
    label: usize,
    sparse: bool,
    upper: Vec<Layer>,
    /// The exact first layer: `[W1 | skip]` (hidden layers) or `[W + skip]` (none).
    first: Columns,
    first_bias: Vec<f32>,
    h1: usize,
    act1: Activation,
    /// The skip connection's column into the label (CROWN adds it at the input).
    skip: Option<Vec<f32>>,
    crown_intermediate: bool,
    monotone: bool,
}

/// The layers above the first, the output restricted to `label`'s column.
fn upper_layers(mlp: &crate::model::Mlp, label: usize) -> Vec<Layer> {
    let last = mlp.layers.len().saturating_sub(2);
    mlp.layers[1..]
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let out = i == last;
            Layer {
                n_in: l.n_in,
                n_out: if out { 1 } else { l.n_out },
                w: match out {
                    true => (0..l.n_in).map(|r| l.weight[r * l.n_out + label]).collect(),
                    false => l.weight.clone(),
                },
                b: if out {
                    vec![l.bias[label]]
                } else {
                    l.bias.clone()
                },
                act: l.activation,
            }
        })
        .collect()
}

/// A sample between the per-sample pass and the batched final CROWN products.
struct Pending {
    inc: Increases,
    clean: f32,
    ibp: Vec<f64>,
    /// CROWN's bound without the top-`k` term, and its coefficients on the first
    /// layer's pre-activation, per budget.
    crown: Vec<f64>,
    lam0: Vec<Vec<f32>>,
}

/// Per layer, each unit's pre-activation interval.
type Bounds = Vec<Vec<(f64, f64)>>;

impl<'m> BudgetCertifier<'m> {
    /// Prepares `model` for rows in the given format (sparse or dense).
    pub fn new(model: &'m Model, cfg: &BudgetConfig, sparse: bool) -> Result<Self> {
        let mlp = &model.mlp;
        let labels = mlp.n_labels();
        if cfg.label >= labels {
            return Err(Error::invalid(format!(
                "label {} is out of range: the model has {labels} label(s)",
                cfg.label
            )));
        }
        if cfg.budgets.is_empty() {
            return Err(Error::invalid("at least one budget is needed, got none"));
        }
        let threat = Threat::new(model, cfg.addable.as_deref(), cfg.max_value, sparse)?;
        let (n, label) = (mlp.input_dim, cfg.label);
        let skip: Option<Vec<f32>> = mlp
            .skip
            .as_ref()
            .map(|s| (0..n).map(|j| s.weight[j * s.n_out + label]).collect());
        let l0 = &mlp.layers[0];
        let hidden = mlp.layers.len() > 1;
        let (m, q, first_bias) = if hidden {
            let q = l0.n_out + usize::from(skip.is_some());
            let mut m = Vec::with_capacity(n * q);
            for j in 0..n {
                m.extend_from_slice(&l0.weight[j * l0.n_out..(j + 1) * l0.n_out]);
                m.extend(skip.as_ref().map(|s| s[j]));
            }
            (m, q, l0.bias.clone())
        } else {
            let col = (0..n)
                .map(|j| l0.weight[j * l0.n_out + label] + skip.as_ref().map_or(0.0, |s| s[j]))
                .collect();
            (col, 1, vec![l0.bias[label]])
        };
        let first = Columns::new(m, q, &threat, sparse, &cfg.budgets);
        let upper = upper_layers(mlp, label);
        let between: usize = upper.iter().rev().skip(1).map(|l| 2 * l.n_out).sum();
        let crown_intermediate = match cfg.intermediate {
            Intermediate::Ibp => false,
            Intermediate::Crown => true,
            Intermediate::Auto => between * n * l0.n_out <= AUTO_CROWN_MAX_FLOPS,
        };
        // A model that cannot be lowered by any addition keeps its clean logit.
        let monotone = crate::certify::certify(model, Some(&threat.addable())).certified;
        Ok(BudgetCertifier {
            model,
            threat,
            budgets: cfg.budgets.clone(),
            label,
            sparse,
            h1: if hidden { l0.n_out } else { 1 },
            act1: l0.activation,
            first_bias,
            first,
            upper,
            skip: if hidden { skip } else { None },
            crown_intermediate,
            monotone,
        })
    }

    /// Whether the model's weights prove that no addition lowers the logit.
    pub fn monotone(&self) -> bool {
        self.monotone
    }

    /// How many features the attacker may add.
    pub fn addable(&self) -> usize {
        self.threat.addable().len()
    }

    /// Whether intermediate layers are bounded by CROWN too (else by IBP alone).
    pub fn crown_intermediate(&self) -> bool {
        self.crown_intermediate
    }

    /// The bounds of rows `rows` of `x` (already in the model's raw feature space), in
    /// order; parallel over rows, deterministic.
    pub fn bounds(&self, x: &Features, rows: &[usize]) -> Result<Vec<SampleBounds>> {
        if x.cols() != self.model.mlp.input_dim || x.is_sparse() != self.sparse {
            return Err(Error::Mismatch(format!(
                "the rows have {} {} features, the certifier expects {} {}",
                x.cols(),
                if x.is_sparse() { "sparse" } else { "dense" },
                self.model.mlp.input_dim,
                if self.sparse { "sparse" } else { "dense" },
            )));
        }
        let labels = self.model.mlp.n_labels();
        let logits = self.model.logits(x);
        let mut out = Vec::with_capacity(rows.len());
        for block in rows.chunks(BLOCK) {
            let pending: Vec<Pending> = block
                .par_iter()
                .with_max_len(1)
                .map(|&r| self.start(x, r, logits[r * labels + self.label]))
                .collect();
            out.extend(self.finish(block, pending));
        }
        Ok(out)
    }

    /// The activation of the units bounded at `bounds[layer]`.
    fn act(&self, layer: usize) -> Activation {
        match layer {
            0 => self.act1,
            l => self.upper[l - 1].act,
        }
    }

    /// One sample's IBP bounds, and CROWN up to its first layer.
    fn start(&self, x: &Features, r: usize, clean: f32) -> Pending {
        let nb = self.budgets.len();
        let mut p = Pending {
            inc: self.threat.increases(x, r),
            clean,
            ibp: vec![0.0; nb],
            crown: vec![0.0; nb],
            lam0: vec![Vec::new(); nb],
        };
        if self.monotone {
            return p;
        }
        let prod = self.first.product(&self.threat.scaled_row(x, r));
        let h1 = self.h1;
        let z0: Vec<f64> = (0..h1)
            .map(|i| self.first_bias[i] as f64 + prod[i])
            .collect();
        let skip_clean = if self.skip.is_some() { prod[h1] } else { 0.0 };
        let cb = self.first.bounds(&self.threat, &p.inc, &self.budgets);
        for b in 0..nb {
            let skip_lo = if self.skip.is_some() {
                cb.lo[b][h1]
            } else {
                0.0
            };
            let z0_bounds = (0..h1)
                .map(|i| (z0[i] + cb.lo[b][i], z0[i] + cb.hi[b][i]))
                .collect();
            let mut bounds: Bounds = vec![z0_bounds];
            for t in 1..=self.upper.len() {
                let mut next = self.ibp_layer(&bounds, t);
                if self.crown_intermediate && t < self.upper.len() {
                    let crown = self.crown_layer(&bounds, t, &z0, &p.inc, self.budgets[b]);
                    for (n, c) in next.iter_mut().zip(crown) {
                        *n = (n.0.max(c.0), n.1.min(c.1));
                    }
                }
                bounds.push(next);
            }
            let out = bounds.last().expect("at least the first layer")[0].0;
            p.ibp[b] = out + skip_clean + skip_lo;
            if self.upper.is_empty() {
                p.crown[b] = p.ibp[b]; // exact: nothing to relax
                continue;
            }
            let (lam0, konst) = self.backsub(&bounds, self.upper.len(), vec![1.0], 1);
            let at_clean: f64 = lam0.iter().zip(&z0).map(|(l, z)| l * z).sum();
            p.crown[b] = konst[0] + at_clean + skip_clean;
            p.lam0[b] = lam0.iter().map(|&v| v as f32).collect();
        }
        p
    }

    /// IBP: the pre-activation intervals of `bounds[t]` from those of `bounds[t - 1]`.
    fn ibp_layer(&self, bounds: &Bounds, t: usize) -> Vec<(f64, f64)> {
        let layer = &self.upper[t - 1];
        let act = self.act(t - 1);
        let a: Vec<(f64, f64)> = bounds[t - 1]
            .iter()
            .enumerate()
            .map(|(i, &(l, u))| interval(act, i, l, u))
            .collect();
        let mut out: Vec<(f64, f64)> = layer.b.iter().map(|&b| (b as f64, b as f64)).collect();
        for (i, &(al, au)) in a.iter().enumerate() {
            let w = &layer.w[i * layer.n_out..(i + 1) * layer.n_out];
            for (o, &w) in out.iter_mut().zip(w) {
                let w = w as f64;
                if w >= 0.0 {
                    o.0 += w * al;
                    o.1 += w * au;
                } else {
                    o.0 += w * au;
                    o.1 += w * al;
                }
            }
        }
        out
    }

    /// Back-substitutes `q` linear functions with coefficients `lam` `[q x n]` on
    /// `bounds[top]`'s pre-activations down to the first layer's: returns coefficients
    /// `[q x h1]` and constants `[q]` with `lam . z_top >= lam0 . z_0 + const` wherever
    /// every layer is within `bounds`.
    fn backsub(
        &self,
        bounds: &Bounds,
        top: usize,
        lam: Vec<f64>,
        q: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut lam = lam;
        let mut konst = vec![0f64; q];
        for t in (1..=top).rev() {
            let layer = &self.upper[t - 1];
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            let act = self.act(t - 1);
            let relax: Vec<Relax> = bounds[t - 1]
                .iter()
                .enumerate()
                .map(|(i, &(l, u))| relax(act, i, l, u))
                .collect();
            let mut next = vec![0f64; q * n_in];
            for r in 0..q {
                let lr = &lam[r * n_out..(r + 1) * n_out];
                konst[r] += lr
                    .iter()
                    .zip(&layer.b)
                    .map(|(l, &b)| l * b as f64)
                    .sum::<f64>();
                for i in 0..n_in {
                    let w = &layer.w[i * n_out..(i + 1) * n_out];
                    let g: f64 = lr.iter().zip(w).map(|(l, &w)| l * w as f64).sum();
                    let rx = &relax[i];
                    let (a, b) = if g >= 0.0 {
                        (rx.lo_a, rx.lo_b)
                    } else {
                        (rx.up_a, rx.up_b)
                    };
                    next[r * n_in + i] = g * a;
                    konst[r] += g * b;
                }
            }
            lam = next;
        }
        (lam, konst)
    }

    /// CROWN bounds on `bounds[t]`'s pre-activations (an intermediate layer) under one
    /// budget: lower bounds of `z` and of `-z`, each to the input and its top-`k` minimum.
    fn crown_layer(
        &self,
        bounds: &Bounds,
        t: usize,
        z0: &[f64],
        inc: &Increases,
        budget: Budget,
    ) -> Vec<(f64, f64)> {
        let n = self.upper[t - 1].n_out;
        let q = 2 * n;
        let mut lam = vec![0f64; q * n];
        for i in 0..n {
            lam[i * n + i] = 1.0;
            lam[(n + i) * n + i] = -1.0;
        }
        let (lam0, konst) = self.backsub(bounds, t, lam, q);
        let lam0_f: Vec<f32> = lam0.iter().map(|&v| v as f32).collect();
        let w1 = &self.model.mlp.layers[0].weight;
        let d = self.model.mlp.input_dim;
        let mut c = vec![0f32; q * d];
        matmul(
            &mut c,
            &lam0_f,
            Trans::N,
            w1,
            Trans::T,
            q,
            self.h1,
            d,
            false,
        );
        let mut neg = Vec::new();
        let value = |r: usize, neg: &mut Vec<f32>| -> f64 {
            let at: f64 = (0..self.h1).map(|i| lam0[r * self.h1 + i] * z0[i]).sum();
            self.threat.negatives(inc, &c[r * d..(r + 1) * d], neg);
            konst[r] + at + most_negative_sums(neg, &[budget])[0]
        };
        (0..n)
            .map(|i| (value(i, &mut neg), -value(n + i, &mut neg)))
            .collect()
    }

    /// The final CROWN products for a block of samples, one matrix product per budget,
    /// and the samples' bounds.
    fn finish(&self, rows: &[usize], mut pending: Vec<Pending>) -> Vec<SampleBounds> {
        let (d, h1, m) = (self.model.mlp.input_dim, self.h1, pending.len());
        if !self.monotone && !self.upper.is_empty() {
            let w1 = &self.model.mlp.layers[0].weight;
            for b in 0..self.budgets.len() {
                let lam: Vec<f32> = pending.iter().flat_map(|p| p.lam0[b].clone()).collect();
                let mut c = vec![0f32; m * d];
                matmul(&mut c, &lam, Trans::N, w1, Trans::T, m, h1, d, false);
                let budget = [self.budgets[b]];
                pending
                    .par_iter_mut()
                    .zip(c.par_chunks_mut(d.max(1)))
                    .for_each(|(p, c)| {
                        if let Some(s) = &self.skip {
                            c.iter_mut().zip(s).for_each(|(c, s)| *c += s);
                        }
                        let mut neg = Vec::new();
                        self.threat.negatives(&p.inc, c, &mut neg);
                        p.crown[b] += most_negative_sums(&mut neg, &budget)[0];
                    });
            }
        }
        rows.iter()
            .zip(pending)
            .map(|(&row, p)| {
                let clean = p.clean;
                let (ibp, crown): (Vec<f32>, Vec<f32>) = match self.monotone {
                    true => (vec![clean; p.ibp.len()], vec![clean; p.ibp.len()]),
                    false => (
                        p.ibp.iter().map(|&v| v as f32).collect(),
                        p.crown.iter().map(|&v| v as f32).collect(),
                    ),
                };
                // The empty set of additions is always allowed: never above the clean logit.
                let bound = ibp
                    .iter()
                    .zip(&crown)
                    .zip(&self.budgets)
                    .map(|((&i, &c), &b)| match b {
                        Budget::Finite(0) => clean,
                        _ => i.max(c).min(clean),
                    })
                    .collect();
                SampleBounds {
                    row,
                    clean,
                    bound,
                    ibp,
                    crown,
                }
            })
            .collect()
    }
}
