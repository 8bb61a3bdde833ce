//! Training: mini-batch gradient descent on the mean BCE-with-logits loss, with a
//! projection (or reparametrisation) after every step so constrained weights stay feasible.
//!
//! Determinism: one seed drives the init and the shuffles; every parallel loop splits over
//! independent outputs (rows of a batch, units, features of a sparse layer) and no
//! floating-point reduction is split across threads, so `--threads` never changes a bit.

use crate::data::{CsrMatrix, Dataset, Features};
use crate::error::{Error, Result};
use crate::kernels;
use crate::linalg::{matmul, Trans};
use crate::loss;
use crate::metrics;
use crate::model::init::{init_layer, non_negative_rows, row_signs, InitScheme};
use crate::model::{Activation, Constraint, Dense, Mlp, NonNegMode};
use crate::optim::{OptimizerConfig, Schedule, StepScalars};
use crate::rng::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Constraints of one layer.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct LayerConstraints {
    #[serde(default)]
    pub kernel: Vec<Constraint>,
    #[serde(default)]
    pub bias: Vec<Constraint>,
}

/// Named constraint presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    None,
    /// NonNeg on the output layer's kernel only: the naive attempt, NOT monotone.
    LastNonneg,
    /// NonNeg on every kernel, biases free: monotone in every input.
    Monotone,
}

impl Preset {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Preset::None),
            "last-nonneg" => Some(Preset::LastNonneg),
            "monotone" => Some(Preset::Monotone),
            _ => None,
        }
    }

    pub fn layers(self, n_layers: usize) -> Vec<LayerConstraints> {
        (0..n_layers)
            .map(|i| LayerConstraints {
                kernel: match self {
                    Preset::Monotone => vec![Constraint::non_neg()],
                    Preset::LastNonneg if i + 1 == n_layers => vec![Constraint::non_neg()],
                    _ => vec![],
                },
                bias: vec![],
            })
            .collect()
    }
}

/// Whether every kernel carries a sign constraint (NonNeg, or NonPos on the first kernel's
/// decreasing features): a monotone network, fully or partially (the first kernel may
/// constrain only some features).
pub fn is_monotone(constraints: &[LayerConstraints]) -> bool {
    !constraints.is_empty()
        && constraints.iter().all(|l| {
            l.kernel
                .iter()
                .any(|c| matches!(c, Constraint::NonNeg { .. } | Constraint::NonPos { .. }))
        })
}

/// The training defaults that depend on whether the network is monotone and on the input
/// kind: the recipe that measured best for certified models (docs/certified-accuracy.md
/// has every ablation, SpamAssassin sparse and Spambase dense).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// tanh for monotone networks, ReLU otherwise. With non-negative weights a ReLU
    /// network is convex as well as monotone; bounded tanh units can also express "any one
    /// of these is enough" evidence (SpamAssassin 64-32: 0.963 -> 0.971; 256-64 without
    /// raw-header features: 0.909 -> 0.950; Spambase 0.948 -> 0.952).
    pub activation: Activation,
    /// A monotone linear skip connection beside the hidden layers (monotone networks with
    /// a hidden layer): linear evidence need not squeeze through saturating units
    /// (SpamAssassin 0.971 -> 0.974, Spambase 0.961 -> 0.965).
    pub skip: bool,
    /// L2 penalty 1e-2 for monotone networks on sparse input trained by projection, 0
    /// otherwise: without it the sparse monotone MLP overfits the older spam within a few
    /// epochs (SpamAssassin 0.974 -> 0.978); on dense Spambase it cost 0.002, and with the
    /// abs or softplus reparametrisation it measured worse.
    pub weight_decay: f32,
    /// Input scaling: none for sparse data; for dense data log1p then standardise for
    /// monotone networks (heavy-tailed counts and frequencies otherwise saturate the
    /// positive-weight units; Spambase 0.952 -> 0.961), standardise otherwise.
    pub scale: crate::model::scaler::ScaleKind,
}

pub fn recipe(
    constraints: &[LayerConstraints],
    hidden: &[usize],
    mode: NonNegMode,
    sparse: bool,
) -> Recipe {
    use crate::model::scaler::ScaleKind;
    let monotone = is_monotone(constraints);
    Recipe {
        activation: if monotone {
            Activation::Tanh
        } else {
            Activation::Relu
        },
        skip: monotone && !hidden.is_empty(),
        weight_decay: if monotone && sparse && mode == NonNegMode::Project {
            1e-2
        } else {
            0.0
        },
        scale: match (sparse, monotone) {
            (true, _) => ScaleKind::None,
            (false, true) => ScaleKind::Log1pStandard,
            (false, false) => ScaleKind::Standard,
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PosWeight {
    /// 1 for every label.
    None,
    /// negatives / positives in the training data, per label.
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    Loss,
    Auc,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// A linear skip connection from the input to the logits (see [`Mlp::skip`]).
    #[serde(default)]
    pub skip: bool,
    /// One entry per layer (hidden layers then the output layer).
    pub constraints: Vec<LayerConstraints>,
    pub nonneg_mode: NonNegMode,
    pub init: InitScheme,
    /// Centre the biases of layers with non-negative kernels on a batch of data at init.
    pub center_bias: bool,
    /// Zero the first moment (momentum) of every weight the NonNeg projection clips, so a
    /// weight pushed below zero is not pushed there again by stale momentum.
    #[serde(default)]
    pub reset_clipped_moments: bool,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Explicit per-label weights override `pos_weight_mode`.
    pub pos_weight: Option<Vec<f32>>,
    pub pos_weight_mode: PosWeight,
    pub clip_grad_norm: Option<f32>,
    pub monitor: Monitor,
    /// Stop after this many epochs without improvement of the monitored metric, and
    /// restore the best epoch.
    pub patience: Option<usize>,
    pub threshold_fpr: Option<f64>,
}

impl TrainConfig {
    /// The defaults for `preset`, with the recipe for dense input (see [`recipe`]; call
    /// [`TrainConfig::use_recipe`] for sparse input).
    pub fn new(hidden: Vec<usize>, preset: Preset) -> Self {
        let constraints = preset.layers(hidden.len() + 1);
        let r = recipe(&constraints, &hidden, NonNegMode::Project, false);
        let mut optimizer = OptimizerConfig::new(crate::optim::OptimizerKind::Adam, 1e-3);
        optimizer.weight_decay = r.weight_decay;
        TrainConfig {
            hidden,
            activation: r.activation,
            skip: r.skip,
            constraints,
            nonneg_mode: NonNegMode::Project,
            init: InitScheme::Auto,
            center_bias: true,
            reset_clipped_moments: false,
            optimizer,
            schedule: Schedule::Constant,
            epochs: 20,
            batch_size: 128,
            seed: 0,
            pos_weight: None,
            pos_weight_mode: PosWeight::Auto,
            clip_grad_norm: None,
            monitor: Monitor::Loss,
            patience: None,
            threshold_fpr: None,
        }
    }
}

impl TrainConfig {
    /// Sets the activation, skip connection and weight decay from the [`recipe`] for these
    /// constraints and this input kind.
    pub fn use_recipe(&mut self, sparse: bool) {
        let r = recipe(&self.constraints, &self.hidden, self.nonneg_mode, sparse);
        self.activation = r.activation;
        self.skip = r.skip;
        self.optimizer.weight_decay = r.weight_decay;
    }
}

/// One epoch's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_loss: Option<f64>,
    pub valid_auc: Option<f64>,
    pub lr: f32,
    pub seconds: f64,
}

/// What the caller hears during training.
pub enum Progress<'a> {
    Start {
        epochs: usize,
        batches: usize,
    },
    Batch {
        epoch: usize,
        batch: usize,
        loss: f64,
    },
    Epoch(&'a EpochReport),
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub epochs: Vec<EpochReport>,
    pub best_epoch: Option<usize>,
    pub pos_weight: Vec<f32>,
    pub threshold: Vec<f32>,
    pub seconds: f64,
}

/// Builds the network for this config and data shape, initialised and with constraints.
pub fn build_network(
    cfg: &TrainConfig,
    input_dim: usize,
    sparse: bool,
    n_labels: usize,
) -> Result<Mlp> {
    let mut widths = vec![input_dim];
    widths.extend(&cfg.hidden);
    widths.push(n_labels);
    let n_layers = widths.len() - 1;
    if cfg.constraints.len() != n_layers {
        return Err(Error::invalid(format!(
            "constraints are given for {} layers, the network has {n_layers}",
            cfg.constraints.len()
        )));
    }
    if cfg.hidden.contains(&0) {
        return Err(Error::invalid("--hidden: a layer needs at least one unit"));
    }
    let mut rng = Rng::new(cfg.seed);
    let mut layers = Vec::with_capacity(n_layers);
    for l in 0..n_layers {
        let act = if l + 1 == n_layers {
            Activation::Identity
        } else {
            cfg.activation
        };
        let mut layer = Dense::zeros(widths[l], widths[l + 1], act);
        for c in &cfg.constraints[l].kernel {
            c.validate(layer.n_in, false)
                .map_err(|e| Error::invalid(format!("layer {l} kernel: {e}")))?;
        }
        for c in &cfg.constraints[l].bias {
            c.validate(layer.n_out, true)
                .map_err(|e| Error::invalid(format!("layer {l} bias: {e}")))?;
        }
        if cfg.nonneg_mode != NonNegMode::Project
            && cfg.constraints[l]
                .kernel
                .iter()
                .any(|c| matches!(c, Constraint::NonPos { .. }))
        {
            return Err(Error::invalid(format!(
                "layer {l}: non_pos is enforced by projection; use --nonneg-mode project"
            )));
        }
        layer.kernel_constraints = cfg.constraints[l].kernel.clone();
        layer.bias_constraints = cfg.constraints[l].bias.clone();
        init_layer(&mut layer, cfg.init, &mut rng);
        layers.push(layer);
    }
    let mut mlp = Mlp {
        input_dim,
        sparse_input: sparse,
        layers,
        skip: None,
    };
    if cfg.skip {
        if cfg.hidden.is_empty() {
            return Err(Error::invalid(
                "--skip needs a hidden layer (without one the model is already linear)",
            ));
        }
        mlp.skip = Some(mlp.new_skip());
    }
    Ok(mlp)
}

/// Per-label weights of positive examples.
pub fn pos_weights(cfg: &TrainConfig, data: &Dataset) -> Result<Vec<f32>> {
    let y = data
        .y
        .as_ref()
        .ok_or_else(|| Error::invalid("training data has no labels"))?;
    let l = data.n_labels;
    if let Some(w) = &cfg.pos_weight {
        if w.len() == 1 {
            return Ok(vec![w[0]; l]);
        }
        if w.len() != l {
            return Err(Error::invalid(format!(
                "--pos-weight has {} values for {l} labels",
                w.len()
            )));
        }
        return Ok(w.clone());
    }
    let mut pos = vec![0usize; l];
    for (i, &v) in y.iter().enumerate() {
        if v > 0.5 {
            pos[i % l] += 1;
        }
    }
    let n = data.rows();
    (0..l)
        .map(|k| {
            if pos[k] == 0 || pos[k] == n {
                return Err(Error::invalid(format!(
                    "label {} has only one class in the training data",
                    data.label_names.get(k).map_or("0", |s| s.as_str())
                )));
            }
            Ok(match cfg.pos_weight_mode {
                PosWeight::None => 1.0,
                PosWeight::Auto => (n - pos[k]) as f32 / pos[k] as f32,
            })
        })
        .collect()
}

/// A raw pointer that may cross threads: each thread writes disjoint rows.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}
impl SyncPtr {
    /// The address `off` floats in (for prefetch hints; no access).
    fn at(self, off: usize) -> *const f32 {
        self.0.wrapping_add(off)
    }
    /// # Safety: `start..start+len` in bounds and not aliased by another thread.
    unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Optimizer state of one tensor, and its free parameter when reparametrised.
struct TensorState {
    m: Vec<f32>,
    v: Vec<f32>,
    /// `Some` in abs/softplus mode: the free parameter `t` with `w = f(t)` on `rows`.
    raw: Option<Vec<f32>>,
    /// Rows (of `cols` values) under the reparametrisation.
    rows: Vec<bool>,
    cols: usize,
}

impl TensorState {
    fn new(cfg: &OptimizerConfig, len: usize, cols: usize) -> Self {
        let (m, v) = cfg.slots();
        TensorState {
            m: if m {
                kernels::zeroed_buffer(len)
            } else {
                vec![]
            },
            v: if v {
                kernels::zeroed_buffer(len)
            } else {
                vec![]
            },
            raw: None,
            rows: vec![],
            cols,
        }
    }
}

#[inline]
fn reparam_forward(mode: NonNegMode, t: f32) -> f32 {
    match mode {
        NonNegMode::Abs => t.abs(),
        NonNegMode::Softplus => crate::model::activation::softplus(t),
        NonNegMode::Project => t,
    }
}

#[inline]
fn reparam_grad(mode: NonNegMode, t: f32) -> f32 {
    match mode {
        NonNegMode::Abs => {
            if t >= 0.0 {
                1.0
            } else {
                -1.0
            }
        }
        NonNegMode::Softplus => crate::model::activation::sigmoid(t),
        NonNegMode::Project => 1.0,
    }
}

/// The free parameter giving effective weight `w >= 0` (keeping `t`'s sign for abs).
#[inline]
fn reparam_inverse(mode: NonNegMode, w: f32, t: f32) -> f32 {
    match mode {
        NonNegMode::Abs => {
            if t < 0.0 {
                -w
            } else {
                w
            }
        }
        // softplus^-1(w) = w + log(-expm1(-w)), floored where w underflows.
        NonNegMode::Softplus => {
            if w > 20.0 {
                w
            } else {
                (w.max(1e-12) as f64 + (-(-(w.max(1e-12) as f64)).exp_m1()).ln()) as f32
            }
        }
        NonNegMode::Project => w,
    }
}

/// Optimizer state for a layer's kernel; in abs/softplus mode also the free parameter of
/// its non-negative rows, started from the projected init so `w = f(t)` is the same weight.
fn weight_state_for(cfg: &TrainConfig, layer: &mut Dense) -> TensorState {
    let mut ws = TensorState::new(&cfg.optimizer, layer.weight.len(), layer.n_out);
    if cfg.nonneg_mode != NonNegMode::Project {
        let rows = non_negative_rows(layer);
        if rows.iter().any(|&r| r) {
            // Start from the projected init so that w = f(t) is the same weight.
            for (i, row) in layer.weight.chunks_exact_mut(layer.n_out).enumerate() {
                if rows[i] {
                    row.iter_mut().for_each(|w| *w = w.max(0.0));
                }
            }
            let raw: Vec<f32> = layer
                .weight
                .iter()
                .enumerate()
                .map(|(k, &w)| {
                    if rows[k / layer.n_out] {
                        reparam_inverse(cfg.nonneg_mode, w, 1.0)
                    } else {
                        w
                    }
                })
                .collect();
            for (k, w) in layer.weight.iter_mut().enumerate() {
                if rows[k / layer.n_out] {
                    *w = reparam_forward(cfg.nonneg_mode, raw[k]);
                }
            }
            ws.raw = Some(raw);
            ws.rows = rows;
        }
    }
    ws
}

/// The trainer's view of one network: parameters, optimizer state and workspace.
pub struct Trainer<'a> {
    pub mlp: Mlp,
    cfg: &'a TrainConfig,
    weight_state: Vec<TensorState>,
    bias_state: Vec<TensorState>,
    /// The skip connection's optimizer state and (dense input) kernel gradient.
    skip_state: Option<TensorState>,
    gw_skip: Vec<f32>,
    // Workspace, sized for the largest batch.
    x: Vec<f32>,
    z: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    dz: Vec<Vec<f32>>,
    gw: Vec<Vec<f32>>,
    gb: Vec<Vec<f32>>,
    logits_y: Vec<f32>,
    /// Sorted `(feature, position in batch)` keys of the current sparse batch.
    sparse_keys: Vec<u64>,
    step: u64,
}

/// Elements per parallel task in elementwise updates.
const UPDATE_CHUNK: usize = 1 << 14;
/// Features per parallel task in sparse-row updates.
const SPARSE_CHUNK: usize = 64;

impl<'a> Trainer<'a> {
    pub fn new(mlp: Mlp, cfg: &'a TrainConfig) -> Self {
        let b = cfg.batch_size;
        let n = mlp.layers.len();
        let mut weight_state = Vec::with_capacity(n);
        let mut bias_state = Vec::with_capacity(n);
        let mut mlp = mlp;
        for layer in &mut mlp.layers {
            let ws = weight_state_for(cfg, layer);
            weight_state.push(ws);
            bias_state.push(TensorState::new(&cfg.optimizer, layer.n_out, 1));
        }
        let skip_state = mlp.skip.as_mut().map(|s| weight_state_for(cfg, s));
        let widths: Vec<usize> = mlp.layers.iter().map(|l| l.n_out).collect();
        let sparse = mlp.sparse_input;
        Trainer {
            gw_skip: match &mlp.skip {
                Some(s) if !sparse => vec![0.0; s.weight.len()],
                _ => vec![],
            },
            skip_state,
            x: if sparse {
                vec![]
            } else {
                vec![0.0; b * mlp.input_dim]
            },
            z: widths.iter().map(|&w| vec![0.0; b * w]).collect(),
            a: widths.iter().map(|&w| vec![0.0; b * w]).collect(),
            dz: widths.iter().map(|&w| vec![0.0; b * w]).collect(),
            gw: mlp
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if i == 0 && sparse {
                        vec![]
                    } else {
                        vec![0.0; l.weight.len()]
                    }
                })
                .collect(),
            gb: widths.iter().map(|&w| vec![0.0; w]).collect(),
            logits_y: vec![],
            sparse_keys: vec![],
            mlp,
            cfg,
            weight_state,
            bias_state,
            step: 0,
        }
    }

    /// Forward pass over `rows` of `x`; returns the logits `[batch x labels]`.
    fn forward(&mut self, x: &Features, rows: &[usize]) -> &[f32] {
        let b = rows.len();
        let n = self.mlp.layers.len();
        for l in 0..n {
            let layer = &self.mlp.layers[l];
            let (z_all, a_all) = (&mut self.z, &mut self.a);
            let z = &mut z_all[l][..b * layer.n_out];
            if l == 0 {
                match x {
                    Features::Dense(m) => {
                        let d = m.cols;
                        for (k, &r) in rows.iter().enumerate() {
                            self.x[k * d..(k + 1) * d].copy_from_slice(m.row(r));
                        }
                        layer.affine_dense(&self.x[..b * d], b, z);
                    }
                    Features::Sparse(m) => layer.affine_sparse_rows(m, rows, z),
                }
            } else {
                let (prev, _) = a_all.split_at(l);
                layer.affine_dense(&prev[l - 1][..b * layer.n_in], b, z);
            }
            if layer.activation != Activation::Identity {
                let (act, width) = (layer.activation, layer.n_out);
                let a = &mut a_all[l][..b * width];
                // Whole rows per task: each row starts at unit 0 (mixed layers ask).
                let chunk = (UPDATE_CHUNK / width).max(1) * width;
                a.par_chunks_mut(chunk)
                    .zip(z.par_chunks(chunk))
                    .for_each(|(a, z)| {
                        for (a, z) in a.chunks_exact_mut(width).zip(z.chunks_exact(width)) {
                            act.apply_row(z, a);
                        }
                    });
            }
        }
        let out = self.mlp.layers[n - 1].n_out;
        if let Some(skip) = &self.mlp.skip {
            let mut s = vec![0.0; b * out];
            match x {
                Features::Dense(m) => skip.affine_dense(&self.x[..b * m.cols], b, &mut s),
                Features::Sparse(m) => skip.affine_sparse_rows(m, rows, &mut s),
            }
            kernels::add_assign(&mut self.z[n - 1][..b * out], &s);
        }
        &self.z[n - 1][..b * out]
    }

    /// Forward and backward on a batch: returns the mean loss and leaves d loss / d z in
    /// `dz`, dense kernel gradients in `gw` and bias gradients in `gb` (the sparse first
    /// layer's kernel gradient is formed row by row in `sparse_rows`).
    fn forward_backward(&mut self, data: &Dataset, rows: &[usize], pos_weight: &[f32]) -> f64 {
        let b = rows.len();
        let labels = data.n_labels;
        let y = data.y.as_ref().expect("labels");
        self.logits_y.clear();
        for &r in rows {
            self.logits_y
                .extend_from_slice(&y[r * labels..(r + 1) * labels]);
        }
        let n = self.mlp.layers.len();
        self.forward(&data.x, rows);
        let loss = {
            let logits = &self.z[n - 1][..b * labels];
            let dz = &mut self.dz[n - 1][..b * labels];
            loss::mean_loss_and_grad(logits, &self.logits_y, pos_weight, Some(dz))
        };
        if let (Some(skip), Features::Dense(_)) = (&self.mlp.skip, &data.x) {
            // The skip kernel's gradient: x^T dlogits (a sparse input's is formed per row).
            matmul(
                &mut self.gw_skip,
                &self.x[..b * skip.n_in],
                Trans::T,
                &self.dz[n - 1][..b * labels],
                Trans::N,
                skip.n_in,
                b,
                labels,
                false,
            );
        }
        for l in (0..n).rev() {
            let (n_in, n_out) = (self.mlp.layers[l].n_in, self.mlp.layers[l].n_out);
            let dz = &self.dz[l][..b * n_out];
            // Bias gradient: column sums, each summed in batch order on one thread.
            let gb = &mut self.gb[l];
            gb.fill(0.0);
            for row in dz.chunks_exact(n_out) {
                for (g, d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
            if l == 0 {
                if let Features::Dense(_) = data.x {
                    matmul(
                        &mut self.gw[0],
                        &self.x[..b * n_in],
                        Trans::T,
                        dz,
                        Trans::N,
                        n_in,
                        b,
                        n_out,
                        false,
                    );
                }
                break;
            }
            // The kernel gradient and d loss / d a_{l-1} = dz @ W^T are independent
            // products: run them side by side.
            let (lower, upper) = self.dz.split_at_mut(l);
            let dz = &upper[0][..b * n_out];
            let da = &mut lower[l - 1][..b * n_in];
            let (gw, a_prev, w) = (
                &mut self.gw[l],
                &self.a[l - 1][..b * n_in],
                &self.mlp.layers[l].weight,
            );
            rayon::join(
                || matmul(gw, a_prev, Trans::T, dz, Trans::N, n_in, b, n_out, false),
                || matmul(da, dz, Trans::N, w, Trans::T, b, n_out, n_in, false),
            );
            let act = self.mlp.layers[l - 1].activation;
            let (z, a) = (&self.z[l - 1][..b * n_in], &self.a[l - 1][..b * n_in]);
            let chunk = (UPDATE_CHUNK / n_in).max(1) * n_in;
            da.par_chunks_mut(chunk)
                .zip(z.par_chunks(chunk).zip(a.par_chunks(chunk)))
                .for_each(|(d, (z, a))| {
                    let rows = d
                        .chunks_exact_mut(n_in)
                        .zip(z.chunks_exact(n_in).zip(a.chunks_exact(n_in)));
                    for (d, (z, a)) in rows {
                        act.scale_by_derivative_row(z, a, d);
                    }
                });
        }
        loss
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
    fn sparse_rows<F>(&self, x: &CsrMatrix, rows: &[usize], skip: bool, f: F)
    where
        F: Fn(usize, &[f32]) + Sync,
    {
        let l = if skip { self.mlp.layers.len() - 1 } else { 0 };
        sparse_rows(
            &self.sparse_keys,
            &self.dz[l],
            self.mlp.layers[l].n_out,
            x,
            rows,
            f,
            |_| {},
        )
    }

    /// Gradient norm over all parameters of the current batch (for clipping).
    fn grad_norm(&self, data: &Dataset, rows: &[usize]) -> f32 {
        let mut sq = 0f64;
        for (l, g) in self.gw.iter().enumerate() {
            if !(l == 0 && self.mlp.sparse_input) {
                sq += g.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
            }
        }
        for g in self.gb.iter().chain(std::iter::once(&self.gw_skip)) {
            sq += g.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
        }
        if let Features::Sparse(x) = &data.x {
            for skip in [false, true] {
                if skip && self.mlp.skip.is_none() {
                    continue;
                }
                // Per-feature sums of squares, added in feature order.
                let parts = std::sync::Mutex::new(Vec::new());
                self.sparse_rows(x, rows, skip, |j, g| {
                    let s: f64 = g.iter().map(|&v| (v as f64) * (v as f64)).sum();
                    parts.lock().unwrap().push((j, s));
                });
                let mut parts = parts.into_inner().unwrap();
                parts.sort_by_key(|p| p.0);
                sq += parts.iter().map(|p| p.1).sum::<f64>();
            }
        }
        sq.sqrt() as f32
    }

    /// One optimizer step on a batch. Returns the batch's mean loss.
    pub fn step(&mut self, data: &Dataset, rows: &[usize], pos_weight: &[f32], lr: f32) -> f64 {
        if let Features::Sparse(x) = &data.x {
            self.index_sparse_batch(x, rows);
        }
        let loss = self.forward_backward(data, rows, pos_weight);
        let mut scale = 1.0f32;
        if let Some(max) = self.cfg.clip_grad_norm {
            let norm = self.grad_norm(data, rows);
            if norm > max {
                scale = max / (norm + 1e-6);
            }
        }
        self.step += 1;
        let s = self.cfg.optimizer.step_scalars(lr, self.step);
        let mode = self.cfg.nonneg_mode;
        let reset = self.cfg.reset_clipped_moments;
        for l in 0..self.mlp.layers.len() {
            if scale != 1.0 {
                self.gb[l].iter_mut().for_each(|g| *g *= scale);
                self.gw[l].iter_mut().for_each(|g| *g *= scale);
            }
            let sparse_layer = l == 0 && self.mlp.sparse_input;
            if sparse_layer {
                let Features::Sparse(x) = &data.x else {
                    unreachable!()
                };
                update_sparse_rows(
                    &self.cfg.optimizer,
                    &s,
                    mode,
                    &mut self.mlp.layers[0],
                    &mut self.weight_state[0],
                    &self.sparse_keys,
                    &self.dz[0],
                    x,
                    rows,
                    scale,
                    reset,
                );
            } else {
                let Dense {
                    weight,
                    kernel_constraints,
                    ..
                } = &mut self.mlp.layers[l];
                update_tensor(
                    &self.cfg.optimizer,
                    &s,
                    mode,
                    weight,
                    &mut self.gw[l],
                    &mut self.weight_state[l],
                    kernel_constraints,
                    reset,
                );
            }
            let layer = &mut self.mlp.layers[l];
            // Bias constraints are applied whole in `project`.
            update_tensor(
                &self.cfg.optimizer,
                &s,
                mode,
                &mut layer.bias,
                &mut self.gb[l],
                &mut self.bias_state[l],
                &[],
                false,
            );
            self.project(l);
        }
        if let (Some(skip), Some(st)) = (self.mlp.skip.as_mut(), self.skip_state.as_mut()) {
            // Only elementwise constraints (NonNeg rows), fused into the update.
            match &data.x {
                Features::Sparse(x) => update_sparse_rows(
                    &self.cfg.optimizer,
                    &s,
                    mode,
                    skip,
                    st,
                    &self.sparse_keys,
                    &self.dz[self.mlp.layers.len() - 1],
                    x,
                    rows,
                    scale,
                    reset,
                ),
                Features::Dense(_) => {
                    if scale != 1.0 {
                        self.gw_skip.iter_mut().for_each(|g| *g *= scale);
                    }
                    update_tensor(
                        &self.cfg.optimizer,
                        &s,
                        mode,
                        &mut skip.weight,
                        &mut self.gw_skip,
                        st,
                        &skip.kernel_constraints,
                        reset,
                    )
                }
            }
        }
        loss
    }

    /// The projection after a step: the norm constraints of layer `l`'s kernel and every
    /// bias constraint (elementwise kernel constraints were fused into the update).
    fn project(&mut self, l: usize) {
        let layer = &mut self.mlp.layers[l];
        let st = &mut self.weight_state[l];
        let reparam = st.raw.is_some();
        let mut changed = false;
        for c in &layer.kernel_constraints {
            // Elementwise ones were applied during the update (or by the reparametrisation).
            if c.is_elementwise() {
                continue;
            }
            c.apply(&mut layer.weight, layer.n_in, layer.n_out);
            changed = true;
        }
        if reparam && changed {
            // Keep the free parameter consistent with the projected weight.
            let mode = self.cfg.nonneg_mode;
            let raw = st.raw.as_mut().unwrap();
            for (k, (t, &w)) in raw.iter_mut().zip(&layer.weight).enumerate() {
                *t = if st.rows[k / st.cols] {
                    reparam_inverse(mode, w, *t)
                } else {
                    w
                };
            }
        }
        for c in &layer.bias_constraints {
            c.apply(&mut layer.bias, layer.n_out, 1);
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
        if let Features::Sparse(x) = &data.x {
            self.index_sparse_batch(x, rows);
        }
        let loss = self.forward_backward(data, rows, pos_weight);
        let mut gw = self.gw.clone();
        if let Features::Sparse(x) = &data.x {
            let n_out = self.mlp.layers[0].n_out;
            let dense = std::sync::Mutex::new(vec![0f32; self.mlp.input_dim * n_out]);
            self.sparse_rows(x, rows, false, |j, g| {
                dense.lock().unwrap()[j * n_out..(j + 1) * n_out].copy_from_slice(g);
            });
            gw[0] = dense.into_inner().unwrap();
        }
        if self.mlp.skip.is_some() {
            let skip = match &data.x {
                Features::Dense(_) => self.gw_skip.clone(),
                Features::Sparse(x) => {
                    let n_out = self.mlp.n_labels();
                    let dense = std::sync::Mutex::new(vec![0f32; self.mlp.input_dim * n_out]);
                    self.sparse_rows(x, rows, true, |j, g| {
                        dense.lock().unwrap()[j * n_out..(j + 1) * n_out].copy_from_slice(g);
                    });
                    dense.into_inner().unwrap()
                }
            };
            gw.push(skip);
        }
        (loss, gw, self.gb.clone())
    }
}

/// Lazy row-sparse update of a kernel fed by the sparse input (the first layer's or the
/// skip connection's, whose pre-activation gradients are `dz`): only active features.
#[allow(clippy::too_many_arguments)]
fn update_sparse_rows(
    opt: &OptimizerConfig,
    s: &StepScalars,
    mode: NonNegMode,
    layer: &mut Dense,
    st: &mut TensorState,
    keys: &[u64],
    dz: &[f32],
    x: &CsrMatrix,
    rows: &[usize],
    scale: f32,
    reset_clipped: bool,
) {
    let n_out = layer.n_out;
    let w = SyncPtr(layer.weight.as_mut_ptr());
    let m = SyncPtr(st.m.as_mut_ptr());
    let v = SyncPtr(st.v.as_mut_ptr());
    let (has_m, has_v) = (!st.m.is_empty(), !st.v.is_empty());
    let raw = st.raw.as_mut().map(|r| SyncPtr(r.as_mut_ptr()));
    let rep_rows = &st.rows;
    let free = opt.without_weight_decay();
    let elementwise: Vec<&Constraint> = layer
        .kernel_constraints
        .iter()
        .filter(|c| {
            c.is_elementwise() && !(raw.is_some() && matches!(c, Constraint::NonNeg { .. }))
        })
        .collect();
    // Safety: each feature j appears once, so threads write disjoint rows.
    sparse_rows(
        keys,
        dz,
        n_out,
        x,
        rows,
        |j, g| unsafe {
            let off = j * n_out;
            let wr = w.slice(off, n_out);
            let mr = if has_m { m.slice(off, n_out) } else { &mut [] };
            let vr = if has_v { v.slice(off, n_out) } else { &mut [] };
            let mut gs = [0f32; 0].to_vec();
            let g: &[f32] = if scale != 1.0 {
                gs.extend(g.iter().map(|x| x * scale));
                &gs
            } else {
                g
            };
            match raw {
                Some(raw) if rep_rows[j] => {
                    // Decay the effective weight, as in `update_tensor`.
                    let tr = raw.slice(off, n_out);
                    let gt: Vec<f32> = g
                        .iter()
                        .zip(tr.iter())
                        .zip(wr.iter())
                        .map(|((g, &t), &w)| (g + opt.weight_decay * w) * reparam_grad(mode, t))
                        .collect();
                    kernels::optimizer_update(&free, s, tr, &gt, mr, vr);
                    for (w, &t) in wr.iter_mut().zip(tr.iter()) {
                        *w = reparam_forward(mode, t);
                    }
                }
                Some(raw) => {
                    let tr = raw.slice(off, n_out);
                    kernels::optimizer_update(opt, s, tr, g, mr, vr);
                    wr.copy_from_slice(tr);
                }
                None => kernels::optimizer_update(opt, s, wr, g, mr, vr),
            }
            if reset_clipped && has_m {
                if let Some(sign) = elementwise.iter().find_map(|c| c.sign_of_row(j)) {
                    reset_clipped_moment(wr, mr, sign);
                }
            }
            for c in &elementwise {
                c.apply_to_row(j, wr);
            }
        },
        |j| {
            let off = j * n_out;
            kernels::prefetch(w.at(off), n_out);
            if has_m {
                kernels::prefetch(m.at(off), n_out);
            }
            if has_v {
                kernels::prefetch(v.at(off), n_out);
            }
        },
    );
}

/// Calls `f(feature, grad_row)` for every feature active in the batch, with the gradient
/// of the loss w.r.t. that kernel row; parallel over features, each summed in batch order.
fn sparse_rows<F, P>(
    keys: &[u64],
    dz: &[f32],
    n_out: usize,
    x: &CsrMatrix,
    rows: &[usize],
    f: F,
    prefetch: P,
) where
    F: Fn(usize, &[f32]) + Sync,
    P: Fn(usize) + Sync,
{
    // Start offsets of each feature's run of keys.
    let starts: Vec<usize> = (0..keys.len())
        .filter(|&i| i == 0 || keys[i] >> 32 != keys[i - 1] >> 32)
        .chain(std::iter::once(keys.len()))
        .collect();
    let features = starts.len() - 1;
    (0..features)
        .into_par_iter()
        .with_min_len(SPARSE_CHUNK)
        .for_each_init(
            || vec![0f32; n_out],
            |g, i| {
                // The rows of a feature a few ahead are random in memory: ask for them
                // now so they arrive while this one is summed and updated.
                if i + kernels::PREFETCH_AHEAD < features {
                    prefetch((keys[starts[i + kernels::PREFETCH_AHEAD]] >> 32) as usize);
                }
                g.fill(0.0);
                let j = (keys[starts[i]] >> 32) as usize;
                for &key in &keys[starts[i]..starts[i + 1]] {
                    let k = (key & 0xFFFF_FFFF) as usize;
                    let v = csr_value(x, rows[k], j as u32);
                    let d = &dz[k * n_out..(k + 1) * n_out];
                    if v == 1.0 {
                        kernels::add_assign(g, d);
                    } else {
                        kernels::axpy(g, v, d);
                    }
                }
                f(j, g);
            },
        );
}

/// The value of feature `j` in CSR row `r` (indices are sorted: binary search).
#[inline]
fn csr_value(x: &CsrMatrix, r: usize, j: u32) -> f32 {
    let (idx, val) = x.row(r);
    match idx.binary_search(&j) {
        Ok(p) => val[p],
        Err(_) => 0.0,
    }
}

/// Optimizer step on a whole tensor, in parallel chunks (elementwise: deterministic).
#[allow(clippy::too_many_arguments)]
fn update_tensor(
    opt: &OptimizerConfig,
    s: &StepScalars,
    mode: NonNegMode,
    w: &mut [f32],
    g: &mut [f32],
    st: &mut TensorState,
    elementwise: &[Constraint],
    reset_clipped: bool,
) {
    let len = w.len();
    // Reparametrised rows decay the effective weight `w`, not `t` (decaying `t` would pull
    // a softplus weight towards softplus(0)): an L2 term `wd * w` in w's gradient, through
    // the chain rule; the optimizer then updates `t` without decay.
    let free = opt.without_weight_decay();
    if let Some(raw) = st.raw.as_mut() {
        // Chain rule through w = f(t) on the reparametrised rows.
        for (k, ((g, &t), &w)) in g.iter_mut().zip(raw.iter()).zip(w.iter()).enumerate() {
            if st.rows[k / st.cols] {
                *g = (*g + opt.weight_decay * w) * reparam_grad(mode, t);
            }
        }
    }
    let rep_rows = &st.rows;
    // Elementwise constraints (NonNeg) are fused into the update while the rows are in
    // cache; with a reparametrisation, non-negativity comes from `w = f(t)` instead.
    let fused: Vec<&Constraint> = if st.raw.is_some() {
        vec![]
    } else {
        elementwise.iter().filter(|c| c.is_elementwise()).collect()
    };
    let target = match st.raw.as_mut() {
        Some(raw) => SyncPtr(raw.as_mut_ptr()),
        None => SyncPtr(w.as_mut_ptr()),
    };
    let (m, v) = (SyncPtr(st.m.as_mut_ptr()), SyncPtr(st.v.as_mut_ptr()));
    let (has_m, has_v) = (!st.m.is_empty(), !st.v.is_empty());
    let g = &*g;
    let cols = st.cols.max(1);
    let rows_per_chunk = (UPDATE_CHUNK / cols).max(1);
    let rows = len / cols;
    (0..rows.div_ceil(rows_per_chunk))
        .into_par_iter()
        .for_each(|c| {
            let first_row = c * rows_per_chunk;
            let start = first_row * cols;
            let n = (rows_per_chunk * cols).min(len - start);
            // Safety: chunks are disjoint.
            unsafe {
                let mut mm: &mut [f32] = &mut [];
                let mut vv: &mut [f32] = &mut [];
                if has_m {
                    mm = m.slice(start, n);
                }
                if has_v {
                    vv = v.slice(start, n);
                }
                let p = target.slice(start, n);
                if rep_rows.is_empty() {
                    kernels::optimizer_update(opt, s, p, &g[start..start + n], mm, vv);
                } else {
                    for (i, pr) in p.chunks_exact_mut(cols).enumerate() {
                        let o = (first_row + i) * cols;
                        let k = i * cols..(i + 1) * cols;
                        let (mr, vr) = (
                            if has_m {
                                &mut mm[k.clone()]
                            } else {
                                &mut [][..]
                            },
                            if has_v { &mut vv[k] } else { &mut [][..] },
                        );
                        let row_opt = if rep_rows[first_row + i] { &free } else { opt };
                        kernels::optimizer_update(row_opt, s, pr, &g[o..o + cols], mr, vr);
                    }
                }
                for (i, row) in p.chunks_exact_mut(cols).enumerate() {
                    if reset_clipped && has_m {
                        if let Some(sign) = fused.iter().find_map(|c| c.sign_of_row(first_row + i))
                        {
                            reset_clipped_moment(row, &mut mm[i * cols..(i + 1) * cols], sign);
                        }
                    }
                    for constraint in &fused {
                        constraint.apply_to_row(first_row + i, row);
                    }
                }
            }
        });
    if let Some(raw) = st.raw.as_ref() {
        for (k, (w, &t)) in w.iter_mut().zip(raw).enumerate() {
            *w = if st.rows[k / st.cols] {
                reparam_forward(mode, t)
            } else {
                t
            };
        }
    }
}

/// Zeroes the momentum of the weights about to be clipped to zero (of the wrong `sign`,
/// or NaN).
#[inline]
fn reset_clipped_moment(w: &[f32], m: &mut [f32], sign: f32) {
    for (w, m) in w.iter().zip(m) {
        // Wrong sign or NaN: the projection sets it to zero.
        let kept = *w * sign >= 0.0;
        if !kept {
            *m = 0.0;
        }
    }
}

/// Sets the biases of layers with non-negative kernels so that each unit's pre-activation
/// has mean zero on `rows` of the (scaled) training data: units start alive.
pub fn center_biases(mlp: &mut Mlp, x: &Features, rows: &[usize]) {
    let n = rows.len();
    if n == 0 {
        return;
    }
    let sub = match x {
        Features::Dense(m) => Features::Dense(crate::data::DenseMatrix {
            rows: n,
            cols: m.cols,
            values: rows
                .iter()
                .flat_map(|&r| m.row(r).iter().copied())
                .collect(),
        }),
        Features::Sparse(m) => {
            let mut c = CsrMatrix {
                rows: n,
                cols: m.cols,
                indptr: vec![0],
                indices: vec![],
                values: vec![],
            };
            for &r in rows {
                let (i, v) = m.row(r);
                c.indices.extend_from_slice(i);
                c.values.extend_from_slice(v);
                c.indptr.push(c.indices.len());
            }
            Features::Sparse(c)
        }
    };
    let mut input: Option<Vec<f32>> = None;
    for l in 0..mlp.layers.len() {
        let layer = &mlp.layers[l];
        let mut z = vec![0.0; n * layer.n_out];
        match (&input, &sub) {
            (None, Features::Dense(m)) => layer.affine_dense(&m.values, n, &mut z),
            (None, Features::Sparse(m)) => layer.affine_sparse(m, 0, n, &mut z),
            (Some(a), _) => layer.affine_dense(a, n, &mut z),
        }
        if row_signs(layer).iter().any(|&s| s != 0.0) {
            let mut mean = vec![0f64; layer.n_out];
            for row in z.chunks_exact(layer.n_out) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v as f64;
                }
            }
            let layer = &mut mlp.layers[l];
            for (j, m) in mean.iter().enumerate() {
                let shift = (*m / n as f64) as f32;
                layer.bias[j] -= shift;
                for row in z.chunks_exact_mut(layer.n_out) {
                    row[j] -= shift;
                }
            }
            layer.project();
        }
        let (act, width) = (mlp.layers[l].activation, mlp.layers[l].n_out);
        for row in z.chunks_exact_mut(width) {
            for (u, v) in row.iter_mut().enumerate() {
                *v = act.apply(*v, u);
            }
        }
        input = Some(z);
    }
}

/// Mean loss and macro AUC of `mlp` on labelled, scaled data.
pub fn validate(mlp: &Mlp, data: &Dataset, pos_weight: &[f32]) -> (f64, Option<f64>) {
    let logits = mlp.logits(&data.x);
    let y = data.y.as_ref().expect("labels");
    let loss = loss::mean_loss_and_grad(&logits, y, pos_weight, None);
    (loss, macro_auc(&logits, y, data.n_labels))
}

/// Mean ROC AUC over labels that have both classes.
pub fn macro_auc(logits: &[f32], y: &[f32], labels: usize) -> Option<f64> {
    let aucs: Vec<f64> = (0..labels)
        .filter_map(|k| {
            let s: Vec<f32> = logits.iter().skip(k).step_by(labels).copied().collect();
            let t: Vec<f32> = y.iter().skip(k).step_by(labels).copied().collect();
            metrics::roc_auc(&s, &t)
        })
        .collect();
    if aucs.is_empty() {
        None
    } else {
        Some(aucs.iter().sum::<f64>() / aucs.len() as f64)
    }
}

/// Trains a network on scaled data. `valid` (scaled the same way) drives early stopping
/// and the FPR threshold.
pub fn train(
    cfg: &TrainConfig,
    data: &Dataset,
    valid: Option<&Dataset>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Mlp, TrainReport)> {
    cfg.optimizer.validate()?;
    if cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(Error::invalid(
            "--batch-size and --epochs must be at least 1",
        ));
    }
    let n = data.rows();
    if n == 0 {
        return Err(Error::invalid("training data has no rows"));
    }
    if cfg.threshold_fpr.is_some() && valid.is_none() {
        return Err(Error::invalid(
            "--threshold-fpr needs validation data (--valid FILE or --valid-fraction F)",
        ));
    }
    if cfg.monitor == Monitor::Auc && cfg.patience.is_some() && valid.is_none() {
        return Err(Error::invalid("early stopping needs validation data"));
    }
    let pos_weight = pos_weights(cfg, data)?;
    let mut mlp = build_network(cfg, data.x.cols(), data.x.is_sparse(), data.n_labels)?;
    let mut shuffle_rng = Rng::new(cfg.seed ^ 0x5348_5546_464C_4521);
    if cfg.center_bias {
        let mut order: Vec<usize> = (0..n).collect();
        shuffle_rng.shuffle(&mut order);
        order.truncate(1024);
        center_biases(&mut mlp, &data.x, &order);
    }
    let mut trainer = Trainer::new(mlp, cfg);
    let batches = n.div_ceil(cfg.batch_size);
    let total_steps = (batches * cfg.epochs) as u64;
    progress(Progress::Start {
        epochs: cfg.epochs,
        batches,
    });
    let start = Instant::now();
    let mut order: Vec<usize> = (0..n).collect();
    let mut epochs = Vec::new();
    let mut best: Option<(usize, f64, Mlp)> = None;
    let mut since_best = 0;
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        shuffle_rng.shuffle(&mut order);
        let mut loss_sum = 0f64;
        let mut lr = cfg.optimizer.lr;
        for (bi, chunk) in order.chunks(cfg.batch_size).enumerate() {
            lr = cfg
                .schedule
                .lr(cfg.optimizer.lr, epoch, trainer.step, total_steps);
            let loss = trainer.step(data, chunk, &pos_weight, lr);
            if !loss.is_finite() {
                return Err(Error::invalid(format!(
                    "training diverged (loss {loss}) in epoch {}; lower --lr or add --clip-grad-norm",
                    epoch + 1
                )));
            }
            loss_sum += loss * chunk.len() as f64;
            progress(Progress::Batch {
                epoch,
                batch: bi,
                loss,
            });
        }
        let (valid_loss, valid_auc) = match valid {
            Some(v) => {
                let (l, a) = validate(&trainer.mlp, v, &pos_weight);
                (Some(l), a)
            }
            None => (None, None),
        };
        let report = EpochReport {
            epoch: epoch + 1,
            train_loss: loss_sum / n as f64,
            valid_loss,
            valid_auc,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(Progress::Epoch(&report));
        epochs.push(report);
        if let (Some(patience), Some(vl)) = (cfg.patience, valid_loss) {
            let score = match cfg.monitor {
                Monitor::Loss => -vl,
                Monitor::Auc => valid_auc.unwrap_or(f64::NEG_INFINITY),
            };
            if best.as_ref().is_none_or(|b| score > b.1) {
                best = Some((epoch + 1, score, trainer.mlp.clone()));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= patience {
                    break;
                }
            }
        }
    }
    let best_epoch = best.as_ref().map(|b| b.0);
    let mlp = match best {
        Some((_, _, m)) => m,
        None => trainer.mlp,
    };
    let threshold = match (cfg.threshold_fpr, valid) {
        (Some(fpr), Some(v)) => {
            let logits = mlp.logits(&v.x);
            let y = v.y.as_ref().expect("labels");
            let l = v.n_labels;
            (0..l)
                .map(|k| {
                    let s: Vec<f32> = logits.iter().skip(k).step_by(l).copied().collect();
                    let t: Vec<f32> = y.iter().skip(k).step_by(l).copied().collect();
                    metrics::threshold_for_fpr(&s, &t, fpr).ok_or_else(|| {
                        Error::invalid("--threshold-fpr: the validation data has no negatives")
                    })
                })
                .collect::<Result<Vec<f32>>>()?
        }
        _ => vec![0.0; data.n_labels],
    };
    Ok((
        mlp,
        TrainReport {
            epochs,
            best_epoch,
            pos_weight,
            threshold,
            seconds: start.elapsed().as_secs_f64(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DenseMatrix;

    /// A logistic regression whose every weight the first Adam step drives below zero
    /// (all labels 0, all inputs positive, weights at 1e-4): each one is clipped.
    fn clipped_step(reset: bool, sparse: bool) -> (Vec<f32>, Vec<f32>) {
        let mut cfg = TrainConfig::new(vec![], Preset::Monotone);
        cfg.reset_clipped_moments = reset;
        cfg.optimizer.lr = 0.1;
        cfg.batch_size = 4;
        let values = vec![1.0, 2.0, 0.5, 0.3, 1.0, 1.0, 2.0, 0.1, 0.7, 1.5, 1.5, 0.2];
        let x = if sparse {
            // The same values as CSR (every entry stored): the lazy row-sparse update.
            Features::Sparse(CsrMatrix {
                rows: 4,
                cols: 3,
                indptr: vec![0, 3, 6, 9, 12],
                indices: vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2],
                values,
            })
        } else {
            Features::Dense(DenseMatrix {
                rows: 4,
                cols: 3,
                values,
            })
        };
        let data = Dataset {
            x,
            y: Some(vec![0.0, 0.0, 0.0, 1.0]),
            n_labels: 1,
            label_names: vec!["y".into()],
            feature_names: None,
            source: "test".into(),
        };
        let mut mlp = build_network(&cfg, 3, sparse, 1).unwrap();
        mlp.layers[0].weight = vec![1e-4, 1e-4, 5.0];
        let mut t = Trainer::new(mlp, &cfg);
        t.step(&data, &[0, 1, 2, 3], &[1.0], 0.1);
        (t.mlp.layers[0].weight.clone(), t.weight_state[0].m.clone())
    }

    #[test]
    fn reset_clipped_moments_zeroes_the_momentum_of_clipped_weights_only() {
        for sparse in [false, true] {
            let (w, m) = clipped_step(false, sparse);
            assert_eq!(&w[..2], &[0.0, 0.0]);
            assert!(w[2] > 0.0);
            assert!(m.iter().all(|&m| m != 0.0), "{m:?}");
            let (w2, m2) = clipped_step(true, sparse);
            assert_eq!(w2, w);
            assert_eq!(&m2[..2], &[0.0, 0.0], "sparse {sparse}");
            assert_eq!(m2[2], m[2]);
        }
    }
}
