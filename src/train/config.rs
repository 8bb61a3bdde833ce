//! What a training run is asked to do: constraints, the recipe of defaults for monotone
//! networks, the optimizer and the loop's options.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::init::InitScheme;
use crate::model::{Activation, Constraint, NonNegMode};
use crate::optim::{OptimizerConfig, Schedule};
use serde::{Deserialize, Serialize};

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
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Preset {
    None,
    /// NonNeg on the output layer's kernel only: the naive attempt, NOT monotone.
    LastNonneg,
    /// NonNeg on every kernel, biases free: monotone in every input.
    Monotone,
    /// A Lipschitz monotonic network: free MLP, skip weights raised to its Lipschitz bound
    /// after each step (monotone in every input; needs a hidden layer).
    Lmn,
}

impl Preset {
    /// Hidden widths when none are given: 64-32, or 16 units for a Lipschitz monotonic
    /// network, whose skip must cover the MLP's Lipschitz bound, which grows with its width
    /// (temporal validation, SpamAssassin: 16 units 88.8% TPR at 1% FPR, 64-32 83.2%; on the
    /// test split 70.0% against 7.8%; docs/certified-accuracy.md).
    pub fn default_hidden(self) -> Vec<usize> {
        match self {
            Preset::Lmn => vec![16],
            _ => vec![64, 32],
        }
    }

    pub fn layers(self, n_layers: usize) -> Vec<LayerConstraints> {
        (0..n_layers)
            .map(|i| LayerConstraints {
                kernel: match self {
                    Preset::Monotone => vec![Constraint::non_neg()],
                    Preset::LastNonneg if i + 1 == n_layers => vec![Constraint::non_neg()],
                    Preset::Lmn if i == 0 => vec![Constraint::Lmn],
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

/// Whether the network is a Lipschitz monotonic network (the first kernel carries
/// [`Constraint::Lmn`]).
pub fn is_lmn(constraints: &[LayerConstraints]) -> bool {
    constraints
        .first()
        .is_some_and(|l| l.kernel.contains(&Constraint::Lmn))
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
    /// (SpamAssassin 0.971 -> 0.974, Spambase 0.961 -> 0.965). Lipschitz monotonic
    /// networks always have one: their proof rests on it.
    pub skip: bool,
    /// L2 penalty 1e-2 for monotone networks on sparse input trained by projection, 0
    /// otherwise: without it the sparse monotone MLP overfits the older spam within a few
    /// epochs (SpamAssassin 0.974 -> 0.978); on dense Spambase it cost 0.002, and with the
    /// abs or softplus reparametrisation it measured worse. Lipschitz monotonic networks on
    /// sparse input get it too: without it the free MLP's bound, and the skip that must
    /// cover it, grow with training (temporal validation, 64 units: 83.2% -> 88.8% TPR
    /// at 1% FPR; docs/certified-accuracy.md).
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
        skip: (monotone || is_lmn(constraints)) && !hidden.is_empty(),
        weight_decay: if ((monotone && mode == NonNegMode::Project) || is_lmn(constraints))
            && sparse
        {
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
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum PosWeight {
    /// 1 for every label.
    None,
    /// negatives / positives in the training data, per label.
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
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
    /// The skip connection takes no sign constraint (otherwise it has the first kernel's
    /// per-feature ones): a free linear part beside a monotone network, which verified
    /// training bounds exactly under a budget (docs/verified-training.md). Needs `skip`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub free_skip: bool,
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
    /// Inverted dropout on the hidden activations in training: each unit of each row is
    /// zeroed with this probability and the kept ones scaled by 1 / (1 - p); never at
    /// inference. Absent from the record when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropout: f32,
    /// Inverted dropout on the input in training: each present feature of a sparse row, or
    /// each value of a dense row, is dropped with this probability.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_dropout: f32,
    /// Verified training (`--robust-budget`); absent from the record when off.
    #[serde(default, skip_serializing_if = "robust_off")]
    pub robust: Option<super::robust::RobustConfig>,
}

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(p: &f32) -> bool {
    *p == 0.0
}

/// Whether the config's verified training is off (then the record omits it: a run with
/// budget 0 is a normal run, byte for byte).
fn robust_off(r: &Option<super::robust::RobustConfig>) -> bool {
    r.as_ref().is_none_or(|r| !r.active())
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
            free_skip: false,
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
            dropout: 0.0,
            input_dropout: 0.0,
            robust: None,
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

/// Largest batch size: a batch's activations are allocated up front.
pub const MAX_BATCH_SIZE: usize = 1 << 20;
/// Largest hidden layer width.
pub const MAX_WIDTH: usize = 1 << 16;
/// Largest parameter count (2^28, 1 GiB of f32; training keeps about four copies: weights,
/// gradients and two optimizer moments), and largest batch size x widest layer.
pub const MAX_PARAMETERS: usize = 1 << 28;

impl TrainConfig {
    /// Checks every value that has a range, before anything is allocated; errors name the
    /// option by its field (the command line names the flag).
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::invalid(msg));
        self.optimizer.validate()?;
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return bad(format!(
                "the `batch_size` option must be between 1 and {MAX_BATCH_SIZE}, got {}",
                self.batch_size
            ));
        }
        if let Some(w) = self.hidden.iter().find(|&&w| !(1..=MAX_WIDTH).contains(&w)) {
            return bad(format!(
                "hidden layer widths (the `hidden` option) must be between 1 and {MAX_WIDTH}, got {w}"
            ));
        }
        if let Some(c) = self.clip_grad_norm.filter(|c| !(*c > 0.0 && c.is_finite())) {
            return bad(format!(
                "the `clip_grad_norm` option must be a positive number, got {c}"
            ));
        }
        match self.schedule {
            crate::optim::Schedule::Step {
                every_epochs,
                gamma,
            } => {
                if !(gamma > 0.0 && gamma.is_finite()) {
                    return bad(format!(
                        "the `lr_gamma` option must be a positive number, got {gamma}"
                    ));
                }
                if every_epochs == 0 {
                    return bad("the `lr_step_epochs` option must be at least 1, got 0".into());
                }
            }
            crate::optim::Schedule::Cosine { min_lr } => {
                if !(0.0..=self.optimizer.lr).contains(&min_lr) {
                    return bad(format!(
                        "the `min_lr` option must be in [0, lr = {}], got {min_lr}",
                        self.optimizer.lr
                    ));
                }
            }
            crate::optim::Schedule::Constant => {}
        }
        if let Some(w) = self
            .pos_weight
            .iter()
            .flatten()
            .find(|w| !(**w > 0.0 && w.is_finite()))
        {
            return bad(format!(
                "positive-class weights (the `pos_weight` option) must be positive numbers, got {w}"
            ));
        }
        for (name, p) in [
            ("dropout", self.dropout),
            ("input_dropout", self.input_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("the `{name}` option must be in [0, 1), got {p}"));
            }
        }
        if self.dropout > 0.0 && self.hidden.is_empty() {
            return bad(format!(
                "the `dropout` option ({}) acts on hidden layers, and the network has none",
                self.dropout
            ));
        }
        if let Some(f) = self.threshold_fpr.filter(|f| !(0.0..1.0).contains(f)) {
            return bad(format!(
                "the `threshold_fpr` option must be in [0, 1), got {f}"
            ));
        }
        Ok(())
    }

    /// Checks the network's size for `inputs` input features against the stated limits.
    pub fn check_size(&self, inputs: usize, labels: usize) -> Result<()> {
        if inputs == 0 {
            return Err(Error::invalid("the training data has no features"));
        }
        let widths: Vec<usize> = std::iter::once(inputs)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(labels))
            .collect();
        let params = widths
            .windows(2)
            .try_fold(0usize, |acc, w| acc.checked_add(w[0].checked_mul(w[1])?));
        let widest = self.hidden.iter().copied().max().unwrap_or(0).max(labels);
        let activations = self.batch_size.checked_mul(widest);
        match (params, activations) {
            (Some(p), Some(a)) if p <= MAX_PARAMETERS && a <= MAX_PARAMETERS => Ok(()),
            _ => Err(Error::invalid(format!(
                "the network is too large: {inputs} inputs, hidden {:?}, batch size {}: \
                 at most {MAX_PARAMETERS} parameters and batch size x widest layer at most \
                 {MAX_PARAMETERS}",
                self.hidden, self.batch_size
            ))),
        }
    }
}

/// Per-label weights of positive examples. Every label needs both classes, whatever the
/// weights.
pub fn pos_weights(cfg: &TrainConfig, data: &Dataset) -> Result<Vec<f32>> {
    let y = data
        .y
        .as_ref()
        .ok_or_else(|| Error::invalid("the training data has no labels"))?;
    let l = data.n_labels;
    let mut pos = vec![0usize; l];
    for (i, &v) in y.iter().enumerate() {
        if v > 0.5 {
            pos[i % l] += 1;
        }
    }
    pos_weights_of_counts(cfg, &pos, data.rows(), &data.label_names)
}

/// [`pos_weights`] of `n` rows of which `pos[k]` are positive for label `k` (what a
/// streaming pass counts).
pub fn pos_weights_of_counts(
    cfg: &TrainConfig,
    pos: &[usize],
    n: usize,
    label_names: &[String],
) -> Result<Vec<f32>> {
    let l = pos.len();
    let auto = (0..l)
        .map(|k| {
            if pos[k] == 0 || pos[k] == n {
                return Err(Error::invalid(format!(
                    "label {} has only one class in the training data",
                    label_names.get(k).map_or("0", |s| s.as_str())
                )));
            }
            Ok(match cfg.pos_weight_mode {
                PosWeight::None => 1.0,
                PosWeight::Auto => (n - pos[k]) as f32 / pos[k] as f32,
            })
        })
        .collect::<Result<Vec<f32>>>()?;
    match &cfg.pos_weight {
        Some(w) if w.len() == 1 => Ok(vec![w[0]; l]),
        Some(w) if w.len() != l => Err(Error::invalid(format!(
            "{} positive-class weights for {l} labels",
            w.len()
        ))),
        Some(w) => Ok(w.clone()),
        None => Ok(auto),
    }
}
