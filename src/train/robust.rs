//! Verified training (`train --robust-budget K`): the loss on positives uses a sound lower
//! bound of their logit under ANY set of at most K additions (the attack's threat model,
//! [`crate::attack`]: a feature is raised to its cap, the training maximum; NonPos rows are
//! never raised), so the optimiser pushes up the worst case, not only the clean score.
//!
//! The bound, per positive row:
//! - first layer, exact per unit under the budget: `lo_i = z_i + sum of the K most negative
//!   d_j W[j,i]` over addable features (`d_j = s(cap_j) - s(x_j)` the scaled increase),
//!   `hi_i` with the K most positive. Each unit takes its own worst set: a relaxation of the
//!   shared budget, so sound;
//! - upper layers by interval propagation: activations are non-decreasing, so `[act(lo),
//!   act(hi)]` bounds the activation, and an affine layer's lower end takes `lo` where the
//!   weight is non-negative and `hi` where it is negative;
//! - the skip connection adds its own K most negative terms (again its own worst set).
//!
//! With several budgets (`--robust-budget 20,50,150`) the loss is the mean over one bound
//! per budget; with `--robust-length N` each row's budget scales with its length.
//!
//! Its gradient is written by hand: a chosen feature `j` of unit `i` gets `d_j` times the
//! unit's bound gradient on `W[j,i]`; interval propagation routes each weight's gradient
//! through the end its sign chose. On sparse input the chosen features are mostly absent
//! from the batch: their kernel rows are updated too ([`ExtraRows`]).
//!
//! Sparse speed: absent features all have the increase `s(cap_j)`, so per step and per unit
//! the most harmful absent terms are sorted once ([`Candidates`]); a row walks that list,
//! skipping its own present features, and merges the present features that still have room.

mod config;
mod crown;
mod scatter;

pub use config::{RobustConfig, StepBudgets};

use scatter::{clean_part, finish_extra, input_scatter};

use super::update::ExtraRows;
use crate::attack::RowRef;
use crate::data::{CsrMatrix, DenseMatrix, Features};
use crate::error::{Error, Result};
use crate::model::init::row_signs;
use crate::model::{Dense, Grads, Mlp, Model, Tape};
use rayon::prelude::*;
use std::cmp::Ordering;

/// The threat model in the network's input space: the scaled cap of each feature (`-inf`
/// where additions may not raise it: NonPos first-layer rows).
#[derive(Clone, Debug, PartialEq)]
pub struct Threat {
    pub cap: Vec<f32>,
}

impl Threat {
    /// Caps `scaled_max` (the scaled training maxima) on every feature the first layer does
    /// not declare as lowered by additions.
    pub fn new(first: &Dense, scaled_max: Vec<f32>) -> Self {
        let signs = row_signs(first);
        let cap = scaled_max
            .into_iter()
            .zip(signs)
            .map(|(c, s)| if s >= 0.0 { c } else { f32::NEG_INFINITY })
            .collect();
        Threat { cap }
    }

    /// A saved model's threat: its `feature_max` through its scaling.
    pub fn of_model(model: &Model) -> Result<Self> {
        let max = model
            .feature_max
            .clone()
            .filter(|m| m.len() == model.mlp.input_dim)
            .ok_or_else(|| Error::invalid("the model stores no per-feature maximum"))?;
        let d = max.len();
        let mut x = match model.mlp.sparse_input {
            true => Features::Sparse(CsrMatrix {
                rows: 1,
                cols: d,
                indptr: vec![0, d],
                indices: (0..d as u32).collect(),
                values: max,
            }),
            false => Features::Dense(DenseMatrix {
                rows: 1,
                cols: d,
                values: max,
            }),
        };
        model.scaler.apply(&mut x);
        let scaled = match x {
            Features::Sparse(m) => m.values,
            Features::Dense(m) => m.values,
        };
        Ok(Threat::new(&model.mlp.layers[0], scaled))
    }

    /// The scaled increase an addition gives feature `j` at scaled value `x`.
    #[inline]
    fn increase(&self, j: usize, x: f32) -> f32 {
        (self.cap[j] - x).max(0.0)
    }
}

/// Total order on `(key, feature)`: deterministic choices among equal terms.
fn by_key(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Keeps the `len` smallest of `v`, sorted.
fn keep_best(v: &mut Vec<(f32, u32)>, len: usize) {
    if v.len() > len {
        v.select_nth_unstable_by(len, by_key);
        v.truncate(len);
    }
    v.sort_unstable_by(by_key);
}

/// Which end of a unit's range: `Lower` wants the most negative terms, `Upper` the most
/// positive. A term `t` has the key `sign * t`; only keys below 0 move the bound.
#[derive(Clone, Copy)]
enum End {
    Lower,
    Upper,
}

impl End {
    fn sign(self) -> f32 {
        match self {
            End::Lower => 1.0,
            End::Upper => -1.0,
        }
    }
}

/// Per unit of a sparse-fed tensor, its most harmful absent-feature terms `(key, j)`,
/// sorted, `len` at most: a row skips its present features, so `len = K + its nnz` keeps
/// the row's exact top K among absent features.
struct Candidates(Vec<Vec<(f32, u32)>>);

impl Candidates {
    fn new(w: &Dense, threat: &Threat, len: usize, end: End) -> Self {
        let (n_in, n_out, sign) = (w.n_in, w.n_out, end.sign());
        let per_unit = (0..n_out)
            .into_par_iter()
            .map(|i| {
                let mut v: Vec<(f32, u32)> = (0..n_in)
                    .filter_map(|j| {
                        let key = sign * threat.increase(j, 0.0) * w.weight[j * n_out + i];
                        (key < 0.0).then_some((key, j as u32))
                    })
                    .collect();
                keep_best(&mut v, len);
                v
            })
            .collect();
        Candidates(per_unit)
    }
}

/// One row's worst case on a tensor fed by the input (the first layer or the skip): per
/// unit, the sum of the chosen terms and the features chosen with their increases.
struct Shift {
    sum: Vec<f32>,
    chosen: Vec<Vec<(u32, f32)>>,
}

/// The features of a row an addition can still raise, with their increases: every one of
/// a dense row; a sparse row's present ones below their cap (absent ones: [`Candidates`]).
fn room(row: RowRef, threat: &Threat) -> Vec<(u32, f32)> {
    let pairs: Vec<(u32, f32)> = match row {
        RowRef::Dense(x) => x
            .iter()
            .enumerate()
            .map(|(j, &v)| (j as u32, threat.increase(j, v)))
            .collect(),
        RowRef::Sparse(idx, val) => idx
            .iter()
            .zip(val)
            .map(|(&j, &v)| (j, threat.increase(j as usize, v)))
            .collect(),
    };
    pairs.into_iter().filter(|p| p.1 > 0.0).collect()
}

/// The K most harmful terms of `w` for each unit on one row (see [`Candidates`]).
fn shift(
    w: &Dense,
    row: RowRef,
    room: &[(u32, f32)],
    cands: Option<&Candidates>,
    threat: &Threat,
    k: usize,
    end: End,
) -> Shift {
    let (n_out, sign) = (w.n_out, end.sign());
    let present: &[u32] = match row {
        RowRef::Sparse(idx, _) => idx,
        RowRef::Dense(_) => &[],
    };
    let mut sum = vec![0f32; n_out];
    let mut chosen = Vec::with_capacity(n_out);
    let mut own: Vec<(f32, u32)> = Vec::new();
    for (i, s) in sum.iter_mut().enumerate() {
        own.clear();
        // `(key, position in room)`: room is in feature order, so ties break alike.
        own.extend(room.iter().enumerate().filter_map(|(p, &(j, d))| {
            let key = sign * d * w.weight[j as usize * n_out + i];
            (key < 0.0).then_some((key, p as u32))
        }));
        keep_best(&mut own, k);
        let absent = cands.map_or(&[][..], |c| &c.0[i][..]);
        let mut absent = absent
            .iter()
            .filter(|c| present.binary_search(&c.1).is_err())
            .peekable();
        let mut own_it = own.iter().peekable();
        let mut picked = Vec::with_capacity(k);
        let mut total = 0f32;
        while picked.len() < k {
            let take_own = match (own_it.peek(), absent.peek()) {
                (Some(o), Some(a)) => by_key(&(o.0, room[o.1 as usize].0), a) != Ordering::Greater,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let (key, j, d) = if take_own {
                let &&(key, p) = own_it.peek().unwrap();
                own_it.next();
                let (j, d) = room[p as usize];
                (key, j, d)
            } else {
                let &&(key, j) = absent.peek().unwrap();
                absent.next();
                (key, j, threat.increase(j as usize, 0.0))
            };
            total += key;
            picked.push((j, d));
        }
        *s = sign * total;
        chosen.push(picked);
    }
    Shift { sum, chosen }
}

/// The bound's intervals for one row: `lo[l]`, `hi[l]` the pre-activation range of layer
/// `l` (`hi` of the output layer is not needed and left empty), and the first layer's and
/// skip connection's worst cases.
struct Intervals {
    lo: Vec<Vec<f32>>,
    hi: Vec<Vec<f32>>,
    lower0: Shift,
    upper0: Option<Shift>,
    skip: Option<Shift>,
}

/// The network and threat the bound is taken for, with the per-step candidates (for
/// budgets up to the one it was made for).
struct Bound<'a> {
    mlp: &'a Mlp,
    threat: &'a Threat,
    cands: [Option<Candidates>; 3],
}

impl<'a> Bound<'a> {
    /// For sparse input `max_nnz` is the most features present in any row bounded with it.
    pub fn new(mlp: &'a Mlp, threat: &'a Threat, k: usize, max_nnz: usize) -> Self {
        let len = k + max_nnz;
        let n = mlp.layers.len();
        let cands = match mlp.sparse_input && k > 0 {
            false => [None, None, None],
            true => [
                Some(Candidates::new(&mlp.layers[0], threat, len, End::Lower)),
                (n > 1).then(|| Candidates::new(&mlp.layers[0], threat, len, End::Upper)),
                mlp.skip
                    .as_ref()
                    .map(|s| Candidates::new(s, threat, len, End::Lower)),
            ],
        };
        Bound { mlp, threat, cands }
    }

    /// The intervals of one row whose clean first-layer pre-activation is `z1`.
    /// `k` at most the budget the bound was made for.
    fn intervals(&self, row: RowRef, z1: &[f32], k: usize) -> Intervals {
        let (mlp, n) = (self.mlp, self.mlp.layers.len());
        let room = room(row, self.threat);
        let sh = |w: &Dense, c: &Option<Candidates>, end| {
            shift(w, row, &room, c.as_ref(), self.threat, k, end)
        };
        let lower0 = sh(&mlp.layers[0], &self.cands[0], End::Lower);
        let upper0 = (n > 1).then(|| sh(&mlp.layers[0], &self.cands[1], End::Upper));
        let skip = mlp.skip.as_ref().map(|s| sh(s, &self.cands[2], End::Lower));
        let add = |s: &Shift| z1.iter().zip(&s.sum).map(|(z, s)| z + s).collect();
        let mut lo: Vec<Vec<f32>> = vec![add(&lower0)];
        let mut hi: Vec<Vec<f32>> = vec![upper0.as_ref().map_or(vec![], add)];
        for l in 1..n {
            let (la, ha) = activated(&mlp.layers[l - 1], &lo[l - 1], &hi[l - 1]);
            let layer = &mlp.layers[l];
            lo.push(interval_affine(layer, &la, &ha));
            hi.push(match l + 1 < n {
                true => interval_affine(layer, &ha, &la),
                false => vec![],
            });
        }
        if let (Some(s), Some(skip)) = (&mlp.skip, &skip) {
            let clean = skip_clean(s, row);
            for ((o, c), t) in lo[n - 1].iter_mut().zip(clean).zip(&skip.sum) {
                *o += c + t;
            }
        }
        Intervals {
            lo,
            hi,
            lower0,
            upper0,
            skip,
        }
    }
}

/// `[act(lo), act(hi)]`: activations are non-decreasing.
fn activated(layer: &Dense, lo: &[f32], hi: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let act = layer.activation;
    let f = |z: &[f32]| {
        z.iter()
            .enumerate()
            .map(|(u, &z)| act.apply(z, u))
            .collect()
    };
    (f(lo), f(hi))
}

/// `b + sum_i W[i,k] (W >= 0 ? a[i] : b_[i])`: the lower end of an affine layer with
/// `a = lo, b_ = hi`, the upper end with them swapped.
fn interval_affine(layer: &Dense, a: &[f32], other: &[f32]) -> Vec<f32> {
    let n_out = layer.n_out;
    let mut out = layer.bias.clone();
    for (i, (&x, &y)) in a.iter().zip(other).enumerate() {
        for (o, &w) in out
            .iter_mut()
            .zip(&layer.weight[i * n_out..(i + 1) * n_out])
        {
            *o += w * if w >= 0.0 { x } else { y };
        }
    }
    out
}

/// The skip connection's clean contribution `x S` for one row (its bias, zero and never
/// trained, included as the forward pass does).
fn skip_clean(s: &Dense, row: RowRef) -> Vec<f32> {
    let n_out = s.n_out;
    let mut out = s.bias.clone();
    let mut add = |j: usize, v: f32| {
        for (o, &w) in out.iter_mut().zip(&s.weight[j * n_out..(j + 1) * n_out]) {
            *o += v * w;
        }
    };
    match row {
        RowRef::Dense(x) => x.iter().enumerate().for_each(|(j, &v)| add(j, v)),
        RowRef::Sparse(idx, val) => idx.iter().zip(val).for_each(|(&j, &v)| add(j as usize, v)),
    }
    out
}

/// The clean first-layer pre-activation of one row.
fn clean_z1(layer: &Dense, row: RowRef) -> Vec<f32> {
    let mut z = layer.bias.clone();
    let n_out = layer.n_out;
    let mut add = |j: usize, v: f32| {
        for (o, &w) in z.iter_mut().zip(&layer.weight[j * n_out..(j + 1) * n_out]) {
            *o += v * w;
        }
    };
    match row {
        RowRef::Dense(x) => x.iter().enumerate().for_each(|(j, &v)| add(j, v)),
        RowRef::Sparse(idx, val) => idx.iter().zip(val).for_each(|(&j, &v)| add(j as usize, v)),
    }
    z
}

/// Sound lower bounds `[rows x labels]` of every row's logits under any set of at most `k`
/// additions (the certificate verified training optimises), for already-scaled `x`.
pub fn lower_bounds(mlp: &Mlp, threat: &Threat, x: &Features, k: usize) -> Vec<f32> {
    let bound = Bound::new(mlp, threat, k, max_nnz(x));
    let n = mlp.layers.len();
    (0..x.rows())
        .into_par_iter()
        .flat_map_iter(|r| {
            let row = RowRef::of(x, r);
            let z1 = clean_z1(&mlp.layers[0], row);
            bound.intervals(row, &z1, k).lo.swap_remove(n - 1)
        })
        .collect()
}

/// CROWN-IBP's sound lower bounds `[rows x labels]` (the bound `--robust-crown` trains
/// with), for already-scaled `x`; only for one hidden layer of relu units.
pub fn crown_ibp_lower_bounds(
    mlp: &Mlp,
    threat: &Threat,
    x: &Features,
    k: usize,
) -> Result<Vec<f32>> {
    let hidden: Vec<usize> = mlp.layers[..mlp.layers.len() - 1]
        .iter()
        .map(|l| l.n_out)
        .collect();
    crown::supported(&hidden, mlp.layers[0].activation)?;
    let bound = Bound::new(mlp, threat, k, max_nnz(x));
    let labels: Vec<usize> = (0..mlp.n_labels()).collect();
    Ok((0..x.rows())
        .into_par_iter()
        .flat_map_iter(|r| {
            let row = RowRef::of(x, r);
            let z1 = clean_z1(&mlp.layers[0], row);
            let iv = bound.intervals(row, &z1, k);
            crown::bound(mlp, threat, row, &z1, &iv, k, &labels)
                .into_iter()
                .map(|c| c.value)
        })
        .collect())
}

/// A row's present (non-zero) features.
fn present(row: RowRef) -> usize {
    match row {
        RowRef::Sparse(idx, _) => idx.len(),
        RowRef::Dense(x) => x.iter().filter(|&&v| v != 0.0).count(),
    }
}

/// The most features present in a row of `x` (0 for dense input).
fn max_nnz(x: &Features) -> usize {
    match x {
        Features::Sparse(m) => (0..m.rows).map(|r| m.row(r).0.len()).max().unwrap_or(0),
        Features::Dense(_) => 0,
    }
}

/// A model's lower bounds on raw (unscaled) data: [`lower_bounds`] after its scaling,
/// with the caps its `feature_max` gives.
pub fn model_lower_bounds(model: &Model, x: &Features, k: usize) -> Result<Vec<f32>> {
    let threat = Threat::of_model(model)?;
    let mut x = x.clone();
    model.scaler.apply(&mut x);
    Ok(lower_bounds(&model.mlp, &threat, &x, k))
}

/// One row's bound gradient: per upper layer `l >= 1` its input ends `(lo_a, hi_a)` and its
/// output ends' gradients `(g_lo, g_hi)`; the first layer's; the logits' (IBP's share in
/// `g_out`, the whole bound's in `g_logit`); CROWN-IBP's labels with their share.
struct RowGrad {
    row: usize,
    loss: f64,
    upper: Vec<[Vec<f32>; 4]>,
    g_lo0: Vec<f32>,
    g_hi0: Vec<f32>,
    g_out: Vec<f32>,
    g_logit: Vec<f32>,
    crown: Vec<(crown::CrownLabel, f32)>,
    iv: Intervals,
}

impl Bound<'_> {
    /// The loss `coef * bce(bound, 1)` summed over the row's positive labels, the bound
    /// `beta crown_ibp + (1 - beta) ibp`, and its gradient back to every interval end
    /// (hand-written; see the module documentation).
    #[allow(clippy::too_many_arguments)]
    fn row_grad(
        &self,
        row: RowRef,
        z1: &[f32],
        y: &[f32],
        coef: &[f32],
        r: usize,
        beta: f32,
        k: usize,
    ) -> RowGrad {
        let (mlp, n) = (self.mlp, self.mlp.layers.len());
        let iv = self.intervals(row, z1, k);
        let labels: Vec<usize> = (0..y.len()).filter(|&c| y[c] >= 0.5).collect();
        let crown = match beta > 0.0 {
            true => crown::bound(mlp, self.threat, row, z1, &iv, k, &labels),
            false => vec![],
        };
        let mut loss = 0f64;
        let mut g_logit = vec![0f32; y.len()];
        let mut shares = Vec::with_capacity(crown.len());
        for (p, &c) in labels.iter().enumerate() {
            let ibp = iv.lo[n - 1][c];
            let z = crown
                .get(p)
                .map_or(ibp, |cl| beta * cl.value + (1.0 - beta) * ibp);
            loss += (coef[c] * crate::loss::bce_with_logits(z, 1.0, 1.0)) as f64;
            g_logit[c] = coef[c] * crate::loss::bce_with_logits_grad(z, 1.0, 1.0);
            shares.push(beta * g_logit[c]);
        }
        let ibp_share = if crown.is_empty() { 1.0 } else { 1.0 - beta };
        let g_out: Vec<f32> = g_logit.iter().map(|g| g * ibp_share).collect();
        let (mut g_lo, mut g_hi) = (g_out.clone(), vec![0f32; g_out.len()]);
        let mut upper = Vec::with_capacity(n.saturating_sub(1));
        for l in (1..n).rev() {
            let below = &mlp.layers[l - 1];
            let (la, ha) = activated(below, &iv.lo[l - 1], &iv.hi[l - 1]);
            let w = &mlp.layers[l];
            let (mut g_la, mut g_ha) = (vec![0f32; w.n_in], vec![0f32; w.n_in]);
            for i in 0..w.n_in {
                let ws = &w.weight[i * w.n_out..(i + 1) * w.n_out];
                for ((&wk, &gl), &gh) in ws.iter().zip(&g_lo).zip(&g_hi) {
                    let (to_lo, to_hi) = if wk >= 0.0 { (gl, gh) } else { (gh, gl) };
                    g_la[i] += wk * to_lo;
                    g_ha[i] += wk * to_hi;
                }
            }
            let deriv = |z: &[f32], a: &[f32], g: &mut [f32]| {
                for (u, ((g, &z), &a)) in g.iter_mut().zip(z).zip(a).enumerate() {
                    *g *= below.activation.derivative(z, a, u);
                }
            };
            deriv(&iv.lo[l - 1], &la, &mut g_la);
            deriv(&iv.hi[l - 1], &ha, &mut g_ha);
            upper.push([la, ha, g_lo, g_hi]);
            (g_lo, g_hi) = (g_la, g_ha);
        }
        upper.reverse();
        if n == 1 {
            g_hi.clear();
        }
        // CROWN-IBP's chords move with the first layer's interval ends.
        for (cl, &g) in crown.iter().zip(&shares) {
            for (i, (dl, dh)) in cl.d_lo.iter().zip(&cl.d_hi).enumerate() {
                g_lo[i] += g * dl;
                g_hi[i] += g * dh;
            }
        }
        RowGrad {
            row: r,
            loss,
            upper,
            g_lo0: g_lo,
            g_hi0: g_hi,
            g_out,
            g_logit,
            crown: crown.into_iter().zip(shares).collect(),
            iv,
        }
    }
}

/// Verified training's workspace in the trainer: the threat, the ramped budget and
/// weight, and the sparse kernels' extra rows.
pub(super) struct RobustState {
    pub(super) threat: Threat,
    /// The ramped budgets, one bound each, and how they scale per row.
    pub(super) k: StepBudgets,
    pub(super) weight: f32,
    /// CROWN-IBP's share of the bound.
    pub(super) beta: f32,
    pub(super) first: ExtraRows,
    pub(super) skip: ExtraRows,
    slots: [Vec<u32>; 2],
}

impl RobustState {
    pub(super) fn new(threat: Threat) -> Self {
        let d = threat.cap.len();
        RobustState {
            threat,
            k: StepBudgets::default(),
            weight: 0.0,
            beta: 0.0,
            first: ExtraRows::default(),
            skip: ExtraRows::default(),
            slots: [vec![u32::MAX; d], vec![u32::MAX; d]],
        }
    }

    /// Adds the bound's loss on the batch's positives (`weight * pos_weight * bce(bound)`,
    /// averaged over the budgets, scaled like the mean clean loss) and its gradient: into
    /// `grads`, into the tape's `dz` of sparse-fed layers (the clean pre-activation's share,
    /// formed into kernel rows later) and into the extra rows. Returns the loss summed over
    /// elements / `elems`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_bound_loss(
        &mut self,
        mlp: &Mlp,
        x: &Features,
        rows: &[usize],
        y: &[f32],
        pos_weight: &[f32],
        tape: &mut Tape,
        grads: &mut Grads,
    ) -> f64 {
        self.first = ExtraRows::default();
        self.skip = ExtraRows::default();
        let labels = pos_weight.len();
        let elems = (rows.len() * labels * self.k.k.len()) as f32;
        let coef: Vec<f32> = pos_weight.iter().map(|p| self.weight * p / elems).collect();
        let positive = |k: usize| y[k * labels..(k + 1) * labels].iter().any(|&t| t >= 0.5);
        let batch: Vec<usize> = (0..rows.len()).filter(|&k| positive(k)).collect();
        let max_nnz = match x {
            Features::Sparse(m) => batch.iter().map(|&k| m.row(rows[k]).0.len()).max(),
            Features::Dense(_) => None,
        };
        let h1 = mlp.layers[0].n_out;
        let lengths: Vec<usize> = batch
            .iter()
            .map(|&k| present(RowRef::of(x, rows[k])))
            .collect();
        let mut loss = 0f64;
        for &budget in &self.k.k.clone() {
            let row_k: Vec<usize> = lengths.iter().map(|&n| self.k.of_row(budget, n)).collect();
            let most = row_k.iter().copied().max().unwrap_or(0);
            let bound = Bound::new(mlp, &self.threat, most, max_nnz.unwrap_or(0));
            let results: Vec<RowGrad> = batch
                .par_iter()
                .zip(&row_k)
                .with_max_len(1)
                .map(|(&k, &rk)| {
                    let z1 = &tape.z[0][k * h1..(k + 1) * h1];
                    let yk = &y[k * labels..(k + 1) * labels];
                    let row = RowRef::of(x, rows[k]);
                    bound.row_grad(row, z1, yk, &coef, k, self.beta, rk)
                })
                .collect();
            loss += results.iter().map(|r| r.loss).sum::<f64>();
            for r in &results {
                self.scatter_row(mlp, x, rows, r, tape, grads);
            }
        }
        let [s0, s1] = &mut self.slots;
        finish_extra(&mut self.first, s0);
        finish_extra(&mut self.skip, s1);
        loss
    }

    /// Adds one row's bound gradient to every parameter (in row order: deterministic).
    fn scatter_row(
        &mut self,
        mlp: &Mlp,
        x: &Features,
        rows: &[usize],
        r: &RowGrad,
        tape: &mut Tape,
        grads: &mut Grads,
    ) {
        let n = mlp.layers.len();
        for (l, [la, ha, g_lo, g_hi]) in (1..n).zip(&r.upper) {
            let w = &mlp.layers[l];
            let gw = &mut grads.kernel[l];
            for i in 0..w.n_in {
                for k in 0..w.n_out {
                    let (a_lo, a_hi) = match w.weight[i * w.n_out + k] >= 0.0 {
                        true => (la[i], ha[i]),
                        false => (ha[i], la[i]),
                    };
                    let hi_part = g_hi.get(k).map_or(0.0, |g| a_hi * g);
                    gw[i * w.n_out + k] += a_lo * g_lo[k] + hi_part;
                }
            }
            for (b, (gl, gh)) in grads.bias[l].iter_mut().zip(g_lo.iter().zip(g_hi)) {
                *b += gl + gh;
            }
        }
        let mut g_z1: Vec<f32> = match r.g_hi0.is_empty() {
            true => r.g_lo0.clone(),
            false => r.g_lo0.iter().zip(&r.g_hi0).map(|(a, b)| a + b).collect(),
        };
        let n_lab = mlp.n_labels();
        for (cl, g) in &r.crown {
            for (i, (z, lam)) in g_z1.iter_mut().zip(&cl.lam).enumerate() {
                *z += g * lam;
                grads.kernel[n - 1][i * n_lab + cl.label] += g * cl.dw[i];
            }
            grads.bias[n - 1][cl.label] += g;
        }
        for (b, g) in grads.bias[0].iter_mut().zip(&g_z1) {
            *b += g;
        }
        let [s0, s1] = &mut self.slots;
        let row = RowRef::of(x, rows[r.row]);
        let mut first = input_scatter(mlp, 0, &mut grads.kernel[0], &mut self.first, s0);
        first.chosen(&r.iv.lower0, &r.g_lo0);
        if let Some(up) = &r.iv.upper0 {
            first.chosen(up, &r.g_hi0);
        }
        for (cl, g) in &r.crown {
            let g_lam: Vec<f32> = cl.lam.iter().map(|l| g * l).collect();
            first.shared(&cl.chosen, &g_lam);
        }
        clean_part(&mut first, row, tape, 0, r.row, &g_z1);
        if let Some(skip_shift) = &r.iv.skip {
            let mut skip = input_scatter(mlp, n, &mut grads.skip, &mut self.skip, s1);
            skip.chosen(skip_shift, &r.g_out);
            for (cl, g) in &r.crown {
                let mut unit = vec![0f32; n_lab];
                unit[cl.label] = *g;
                skip.shared(&cl.chosen, &unit);
            }
            clean_part(&mut skip, row, tape, n - 1, r.row, &r.g_logit);
        }
    }
}
