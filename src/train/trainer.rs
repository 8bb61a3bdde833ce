//! One optimizer step on a batch: the network's forward and backward pass
//! ([`Mlp::forward`] / [`Mlp::backward`]), the loss, optional gradient clipping, then the
//! update of every tensor ([`super::update`]) and the projection ([`super::projection`]).

use super::config::TrainConfig;
use super::projection::project_after_step;
use super::reparam::weight_state_for;
use super::robust::{RobustState, Threat};
use super::update::{sparse_rows, update_sparse_rows, update_tensor, ExtraRows, TensorState};
use crate::data::{CsrMatrix, Dataset, Features};
use crate::loss;
use crate::model::{Dense, Grads, Input, Mlp, Tape};
use crate::rng::Rng;

/// Mixed into the seed for the dropout generator ("DROPOUT!"), apart from the init's and
/// the shuffle's.
const DROPOUT_SEED: u64 = 0x4452_4F50_4F55_5421;

/// The trainer's view of one network: parameters, optimizer state and workspace.
pub struct Trainer<'a> {
    pub mlp: Mlp,
    cfg: &'a TrainConfig,
    pub(super) weight_state: Vec<TensorState>,
    bias_state: Vec<TensorState>,
    /// The skip connection's optimizer state.
    skip_state: Option<TensorState>,
    tape: Tape,
    grads: Grads,
    /// The batch's dense rows, gathered.
    x: Vec<f32>,
    batch_y: Vec<f32>,
    /// Sorted `(feature, position in batch)` keys of the current sparse batch.
    sparse_keys: Vec<u64>,
    /// Optimizer steps taken.
    pub step: u64,
    /// Draws the dropout masks, batch after batch (saved in checkpoints).
    pub(super) dropout_rng: Rng,
    /// The last step's rows (on all ranks together, in data-parallel training).
    batch_rows: usize,
    /// Verified training's state, when on ([`Trainer::enable_robust`]).
    robust: Option<RobustState>,
    /// Data-parallel training: this rank's part in each step, when under MPI.
    #[cfg(feature = "distributed")]
    dist: Option<super::distributed::Reducer>,
    /// The sparse-fed kernels' gradient rows summed over all ranks, in the step that
    /// formed them (they replace the batch's keys, which are this rank's alone).
    reduced: Option<SparseRows>,
}

/// Gradient rows of the sparse first layer and of the skip connection, by feature.
#[derive(Default)]
pub(super) struct SparseRows {
    pub(super) first: ExtraRows,
    pub(super) skip: ExtraRows,
}

/// The batch as the network's input: dense rows gathered into `buf`, or the sparse rows.
fn batch_input<'a>(x: &'a Features, rows: &'a [usize], buf: &'a mut Vec<f32>) -> Input<'a> {
    match x {
        Features::Dense(m) => {
            buf.clear();
            for &r in rows {
                buf.extend_from_slice(m.row(r));
            }
            Input::Dense(buf)
        }
        Features::Sparse(m) => Input::Sparse(m, rows),
    }
}

/// Every gradient the backward pass forms densely (kernels, biases, skip connection).
#[cfg(feature = "distributed")]
fn dense_grads(g: &mut Grads) -> impl Iterator<Item = &mut Vec<f32>> {
    g.kernel
        .iter_mut()
        .chain(&mut g.bias)
        .chain(Some(&mut g.skip))
}

/// The rows verified training's bound chose in the last batch, besides the active
/// features, or all ranks' rows under data-parallel training, for the sparse first layer
/// (`skip` false) or skip connection; none when neither.
fn extra_rows<'t>(
    robust: &'t Option<RobustState>,
    reduced: &'t Option<SparseRows>,
    skip: bool,
) -> &'t ExtraRows {
    static NONE: ExtraRows = ExtraRows {
        features: Vec::new(),
        grads: Vec::new(),
    };
    match (robust, reduced) {
        (Some(r), _) if skip => &r.skip,
        (Some(r), _) => &r.first,
        (None, Some(r)) if skip => &r.skip,
        (None, Some(r)) => &r.first,
        (None, None) => &NONE,
    }
}

impl<'a> Trainer<'a> {
    pub fn new(mut mlp: Mlp, cfg: &'a TrainConfig) -> Self {
        let mut weight_state = Vec::with_capacity(mlp.layers.len());
        let mut bias_state = Vec::with_capacity(mlp.layers.len());
        for layer in &mut mlp.layers {
            weight_state.push(weight_state_for(cfg, layer));
            bias_state.push(TensorState::new(&cfg.optimizer, layer.n_out, 1));
        }
        let skip_state = mlp.skip.as_mut().map(|s| weight_state_for(cfg, s));
        let x = match mlp.sparse_input {
            true => vec![],
            false => Vec::with_capacity(cfg.batch_size * mlp.input_dim),
        };
        Trainer {
            tape: Tape::new(&mlp, cfg.batch_size),
            grads: Grads::new(&mlp),
            skip_state,
            x,
            batch_y: vec![],
            sparse_keys: vec![],
            mlp,
            cfg,
            weight_state,
            bias_state,
            step: 0,
            dropout_rng: Rng::new(cfg.seed ^ DROPOUT_SEED),
            batch_rows: 0,
            robust: None,
            #[cfg(feature = "distributed")]
            dist: super::distributed::Reducer::if_active(),
            reduced: None,
        }
    }

    /// Turns verified training on (when the config asks for it) against `threat`, at the
    /// full budget and weight until [`Trainer::set_ramp`] says otherwise.
    pub fn enable_robust(&mut self, threat: Threat) {
        if let Some(r) = self.cfg.robust.as_ref().filter(|r| r.active()) {
            let mut st = RobustState::new(threat);
            (st.k, st.weight, st.beta) = r.ramped(1.0);
            self.robust = Some(st);
        }
    }

    /// Sets verified training's budget and weight to `done` (0..1) of the warm-up.
    pub fn set_ramp(&mut self, done: f32) {
        if let (Some(st), Some(r)) = (self.robust.as_mut(), self.cfg.robust.as_ref()) {
            (st.k, st.weight, st.beta) = r.ramped(done);
        }
    }

    /// The rows of the last step's batch (all ranks', in data-parallel training).
    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    pub fn config(&self) -> &'a TrainConfig {
        self.cfg
    }

    /// The optimizer's state tensors by name (moments, reparametrised free parameters),
    /// for a checkpoint to save and restore; empty ones are unused by this optimizer.
    pub(super) fn optimizer_tensors(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        let mut out = Vec::new();
        let layers = self.weight_state.iter_mut().zip(&mut self.bias_state);
        for (l, (w, b)) in layers.enumerate() {
            w.tensors(&format!("opt.layers.{l}.weight"), &mut out);
            b.tensors(&format!("opt.layers.{l}.bias"), &mut out);
        }
        if let Some(s) = &mut self.skip_state {
            s.tensors("opt.skip.weight", &mut out);
        }
        out
    }

    /// Forward and backward on `rows`, part of a batch of `batch_rows` rows: returns their
    /// share of the batch's mean loss and leaves d loss / d z on the tape, dense kernel
    /// gradients and bias gradients in `grads` (the sparse first layer's and skip
    /// connection's kernel gradients are formed row by row from `dz`).
    fn forward_backward(
        &mut self,
        data: &Dataset,
        rows: &[usize],
        batch_rows: usize,
        pos_weight: &[f32],
    ) -> f64 {
        let labels = data.n_labels;
        let y = data.y.as_ref().expect("training data has labels");
        self.batch_y.clear();
        for &r in rows {
            self.batch_y
                .extend_from_slice(&y[r * labels..(r + 1) * labels]);
        }
        if let Features::Sparse(x) = &data.x {
            self.index_sparse_batch(x, rows);
        }
        if self.cfg.dropout > 0.0 {
            let (p, rng) = (self.cfg.dropout, &mut self.dropout_rng);
            super::dropout::draw_masks(&mut self.tape.masks, &self.cfg.hidden, rows.len(), p, rng);
        }
        let input = batch_input(&data.x, rows, &mut self.x);
        self.mlp.forward(input, &mut self.tape);
        let (logits, dlogits) = self.tape.logits_and_dlogits();
        let Some(robust) = self.robust.as_mut() else {
            let (y, total) = (&self.batch_y, batch_rows * labels);
            let loss =
                loss::share_of_mean_loss_and_grad(logits, y, pos_weight, 1.0, total, Some(dlogits));
            self.mlp
                .backward(input, &mut self.tape, Some(&mut self.grads));
            return loss;
        };
        let (y, share) = (&self.batch_y, 1.0 - robust.weight);
        let clean = loss::scaled_mean_loss_and_grad(logits, y, pos_weight, share, Some(dlogits));
        self.mlp
            .backward(input, &mut self.tape, Some(&mut self.grads));
        let (tape, grads) = (&mut self.tape, &mut self.grads);
        clean + robust.add_bound_loss(&self.mlp, &data.x, rows, y, pos_weight, tape, grads)
    }

    /// Sorts the batch's active (feature, row) pairs by feature: the sparse backward pass
    /// then sums each feature's gradient in batch order on one thread.
    fn index_sparse_batch(&mut self, x: &CsrMatrix, rows: &[usize]) {
        self.sparse_keys.clear();
        for (k, &r) in rows.iter().enumerate() {
            let (idx, _) = x.row(r);
            self.sparse_keys
                .extend(idx.iter().map(|&j| ((j as u64) << 32) | k as u64));
        }
        self.sparse_keys.sort_unstable();
    }

    /// Calls `f(feature, grad_row)` for every feature active in the batch: the gradient of
    /// the first layer's kernel row, or with `skip` of the skip connection's.
    fn sparse_grad_rows<F>(&self, x: &CsrMatrix, rows: &[usize], skip: bool, f: F)
    where
        F: Fn(usize, &[f32]) + Sync,
    {
        let l = if skip { self.mlp.layers.len() - 1 } else { 0 };
        let n_out = self.mlp.layers[l].n_out;
        sparse_rows(
            &self.sparse_keys,
            &self.tape.dz[l],
            n_out,
            extra_rows(&self.robust, &self.reduced, skip),
            x,
            rows,
            f,
            |_| {},
        )
    }

    /// Gradient norm over all parameters of the current batch (for clipping).
    fn grad_norm(&self, data: &Dataset, rows: &[usize]) -> f32 {
        let sum_sq = |g: &[f32]| g.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
        let g = &self.grads;
        let mut sq = 0f64;
        for (l, k) in g.kernel.iter().enumerate() {
            if !(l == 0 && self.mlp.sparse_input) {
                sq += sum_sq(k);
            }
        }
        for b in g.bias.iter().chain(std::iter::once(&g.skip)) {
            sq += sum_sq(b);
        }
        if let Features::Sparse(x) = &data.x {
            for skip in [false, true] {
                if skip && self.mlp.skip.is_none() {
                    continue;
                }
                // Per-feature sums of squares, added in feature order.
                let parts = std::sync::Mutex::new(Vec::new());
                self.sparse_grad_rows(x, rows, skip, |j, g| {
                    parts.lock().unwrap().push((j, sum_sq(g)));
                });
                let mut parts = parts.into_inner().unwrap();
                parts.sort_by_key(|p| p.0);
                sq += parts.iter().map(|p| p.1).sum::<f64>();
            }
        }
        sq.sqrt() as f32
    }

    /// The factor scaling this batch's gradients under `clip_grad_norm` (1 without).
    fn clip_scale(&self, data: &Dataset, rows: &[usize]) -> f32 {
        match self.cfg.clip_grad_norm {
            Some(max) => {
                let norm = self.grad_norm(data, rows);
                if norm > max {
                    max / (norm + 1e-6)
                } else {
                    1.0
                }
            }
            None => 1.0,
        }
    }

    /// One optimizer step on a batch. Returns the batch's mean loss.
    pub fn step(&mut self, data: &Dataset, rows: &[usize], pos_weight: &[f32], lr: f32) -> f64 {
        self.batch_rows = rows.len();
        #[cfg(feature = "distributed")]
        if self.dist.is_some() {
            return self.distributed_step(data, rows, pos_weight, lr);
        }
        let dropped: (Dataset, Vec<usize>);
        let (data, rows) = if self.cfg.input_dropout > 0.0 {
            // The step runs on a dropped copy of the batch (rows 0.. of its own).
            let (p, rng) = (self.cfg.input_dropout, &mut self.dropout_rng);
            let batch = super::dropout::drop_inputs(data, rows, p, rng);
            dropped = (batch, (0..rows.len()).collect());
            (&dropped.0, &dropped.1[..])
        } else {
            (data, rows)
        };
        let loss = self.forward_backward(data, rows, rows.len(), pos_weight);
        self.update(data, rows, lr);
        loss
    }

    /// Clipping, then the update of every tensor from the gradients formed for `rows`.
    fn update(&mut self, data: &Dataset, rows: &[usize], lr: f32) {
        let scale = self.clip_scale(data, rows);
        self.step += 1;
        for l in 0..self.mlp.layers.len() {
            self.update_layer(l, data, rows, scale, lr);
        }
        self.update_skip(data, rows, scale, lr);
        super::projection::project_lmn(&mut self.mlp);
    }

    /// [`Trainer::step`] as one of several MPI ranks: forward and backward on this rank's
    /// slice of the batch, the gradients summed over all ranks, then the same update on
    /// every rank. The batch's sparse keys give way to the summed rows of all ranks.
    #[cfg(feature = "distributed")]
    fn distributed_step(
        &mut self,
        data: &Dataset,
        rows: &[usize],
        pos_weight: &[f32],
        lr: f32,
    ) -> f64 {
        let dist = self.dist.as_ref().expect("distributed step under MPI");
        let (local, total) = dist.part(rows);
        self.batch_rows = total;
        let loss = if local.is_empty() {
            // A last batch smaller than the number of ranks: nothing from this one.
            dense_grads(&mut self.grads).for_each(|v| v.fill(0.0));
            self.sparse_keys.clear();
            0.0
        } else {
            self.forward_backward(data, local, total, pos_weight)
        };
        let mine = match &data.x {
            Features::Sparse(x) => Some(self.sparse_grads(x, local)),
            Features::Dense(_) => None,
        };
        let widths = [
            self.mlp.layers[0].n_out,
            self.mlp.skip.as_ref().map_or(0, |_| self.mlp.n_labels()),
        ];
        let dense = dense_grads(&mut self.grads);
        let dist = self.dist.as_mut().expect("distributed step under MPI");
        let loss = dist.sum_dense(dense, loss);
        self.reduced = mine.map(|m| dist.sum_sparse(m, widths));
        self.sparse_keys.clear();
        self.update(data, rows, lr);
        self.reduced = None;
        loss
    }

    /// This rank's gradient rows of the sparse-fed kernels, by feature.
    #[cfg(feature = "distributed")]
    fn sparse_grads(&self, x: &CsrMatrix, rows: &[usize]) -> SparseRows {
        let mut features: Vec<u32> = self.sparse_keys.iter().map(|k| (k >> 32) as u32).collect();
        features.dedup();
        let gather = |skip: bool| {
            let l = if skip { self.mlp.layers.len() - 1 } else { 0 };
            let n_out = self.mlp.layers[l].n_out;
            let grads = std::sync::Mutex::new(vec![0f32; features.len() * n_out]);
            self.sparse_grad_rows(x, rows, skip, |j, g| {
                let at = features
                    .binary_search(&(j as u32))
                    .expect("a batch feature");
                grads.lock().unwrap()[at * n_out..(at + 1) * n_out].copy_from_slice(g);
            });
            ExtraRows {
                features: features.clone(),
                grads: grads.into_inner().unwrap(),
            }
        };
        let skip = match self.mlp.skip {
            Some(_) => gather(true),
            None => ExtraRows::default(),
        };
        SparseRows {
            first: gather(false),
            skip,
        }
    }

    /// Updates layer `l`'s kernel and bias, then projects it.
    fn update_layer(&mut self, l: usize, data: &Dataset, rows: &[usize], scale: f32, lr: f32) {
        let cfg = self.cfg;
        let s = cfg.optimizer.step_scalars(lr, self.step);
        let (mode, reset) = (cfg.nonneg_mode, cfg.reset_clipped_moments);
        let (gw, gb) = (&mut self.grads.kernel[l], &mut self.grads.bias[l]);
        if scale != 1.0 {
            gb.iter_mut().for_each(|g| *g *= scale);
            gw.iter_mut().for_each(|g| *g *= scale);
        }
        let layer = &mut self.mlp.layers[l];
        let extra = extra_rows(&self.robust, &self.reduced, false);
        match &data.x {
            Features::Sparse(x) if l == 0 => update_sparse_rows(
                &cfg.optimizer,
                &s,
                mode,
                layer,
                &mut self.weight_state[0],
                &self.sparse_keys,
                &self.tape.dz[0],
                extra,
                x,
                rows,
                scale,
                reset,
            ),
            _ => {
                let Dense {
                    weight,
                    kernel_constraints,
                    ..
                } = layer;
                let st = &mut self.weight_state[l];
                update_tensor(
                    &cfg.optimizer,
                    &s,
                    mode,
                    weight,
                    gw,
                    st,
                    kernel_constraints,
                    reset,
                );
            }
        }
        // Bias constraints are applied whole, after the step.
        let (bias, st) = (&mut layer.bias, &mut self.bias_state[l]);
        update_tensor(&cfg.optimizer, &s, mode, bias, gb, st, &[], false);
        project_after_step(layer, &mut self.weight_state[l], mode);
    }

    /// Updates the skip connection (its constraints are elementwise: projected per row).
    fn update_skip(&mut self, data: &Dataset, rows: &[usize], scale: f32, lr: f32) {
        let (Some(skip), Some(st)) = (self.mlp.skip.as_mut(), self.skip_state.as_mut()) else {
            return;
        };
        let cfg = self.cfg;
        let s = cfg.optimizer.step_scalars(lr, self.step);
        let (mode, reset) = (cfg.nonneg_mode, cfg.reset_clipped_moments);
        match &data.x {
            Features::Sparse(x) => {
                let dz = &self.tape.dz[self.mlp.layers.len() - 1];
                let keys = &self.sparse_keys;
                let extra = extra_rows(&self.robust, &self.reduced, true);
                update_sparse_rows(
                    &cfg.optimizer,
                    &s,
                    mode,
                    skip,
                    st,
                    keys,
                    dz,
                    extra,
                    x,
                    rows,
                    scale,
                    reset,
                )
            }
            Features::Dense(_) => {
                let g = &mut self.grads.skip;
                if scale != 1.0 {
                    g.iter_mut().for_each(|g| *g *= scale);
                }
                let (w, c) = (&mut skip.weight, &skip.kernel_constraints);
                update_tensor(&cfg.optimizer, &s, mode, w, g, st, c, reset)
            }
        }
    }

    /// Loss and gradients of every parameter at the current weights (dense kernels
    /// `[in, out]`, the skip connection's last when there is one, then biases) on `rows`:
    /// for tests and gradient checks.
    pub fn gradients(
        &mut self,
        data: &Dataset,
        rows: &[usize],
        pos_weight: &[f32],
    ) -> (f64, Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let loss = self.forward_backward(data, rows, rows.len(), pos_weight);
        let mut gw = self.grads.kernel.clone();
        if let Features::Sparse(x) = &data.x {
            gw[0] = self.dense_sparse_grad(x, rows, false);
        }
        if self.mlp.skip.is_some() {
            gw.push(match &data.x {
                Features::Dense(_) => self.grads.skip.clone(),
                Features::Sparse(x) => self.dense_sparse_grad(x, rows, true),
            });
        }
        (loss, gw, self.grads.bias.clone())
    }

    /// A sparse-fed kernel's gradient as a dense `[input_dim x out]` matrix.
    fn dense_sparse_grad(&self, x: &CsrMatrix, rows: &[usize], skip: bool) -> Vec<f32> {
        let l = if skip { self.mlp.layers.len() - 1 } else { 0 };
        let n_out = self.mlp.layers[l].n_out;
        let dense = std::sync::Mutex::new(vec![0f32; self.mlp.input_dim * n_out]);
        self.sparse_grad_rows(x, rows, skip, |j, g| {
            dense.lock().unwrap()[j * n_out..(j + 1) * n_out].copy_from_slice(g);
        });
        dense.into_inner().unwrap()
    }
}
