//! `nonneg train`: flags to [`FitOptions`], data loading, then [`pipeline::fit`].

use super::choices::{self, ActivationArg, LrScheduleArg, SkipArg};
use super::progress::TrainProgress;
use super::{Context, DataArgs};
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use nonneg::data::feature_list::{resolve_direction_list, resolve_feature_list};
use nonneg::data::{split, DataInfo, Dataset, InputKind, LoadOptions};
use nonneg::features::corpus::spec_path_for;
use nonneg::features::FeaturizerSpec;
use nonneg::model::init::InitScheme;
use nonneg::model::scaler::ScaleKind;
use nonneg::model::NonNegMode;
use nonneg::optim::{OptimizerConfig, OptimizerKind, Schedule};
use nonneg::pipeline::{self, FeatureSigns, FitOptions, Fitted, RecipeOverrides};
use nonneg::train::checkpoint::Plan;
use nonneg::train::{Monitor, PosWeight, Preset, RobustConfig, TrainConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data: .csv, svmlight/libsvm, or .npz (each optionally .gz). Several files
    /// or a quoted pattern ('shards/part-*.svm') are streamed shard by shard in bounded
    /// memory (see --shuffle-buffer).
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// Where to write the model (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// The featurizer that made --data (default: `<data>.featurizer.json` when it exists);
    /// stored in the model so it can score raw samples.
    #[arg(long)]
    pub featurizer: Option<PathBuf>,
    /// Validation data, read like --data (several files or a pattern: streamed).
    #[arg(long, num_args = 1.., conflicts_with = "valid_fraction")]
    pub valid: Vec<PathBuf>,
    /// Hold out this stratified fraction of --data for validation.
    #[arg(long)]
    pub valid_fraction: Option<f64>,
    /// Hidden layer widths, e.g. 256,64; empty ("") for logistic regression (default
    /// 64,32, or 16 with --constraint lmn; with --autotune, searched unless given).
    #[arg(long)]
    pub hidden: Option<String>,
    /// Hidden activation: relu, leaky_relu, sigmoid, tanh, softplus, mixed (convex, concave
    /// and saturating units in turn), or auto: tanh when every kernel is NonNeg (monotone,
    /// fully or partially), relu otherwise.
    #[arg(long, value_enum, default_value_t = ActivationArg::Auto, ignore_case = true)]
    pub activation: ActivationArg,
    /// A linear skip connection from the input straight to the logit, constrained per
    /// feature like the first layer: on, off, auto (on for monotone networks with a hidden
    /// layer), or free (on, without a sign constraint: a free linear part beside a monotone
    /// network, certified under a budget only; with --robust-budget, docs/verified-training.md).
    #[arg(long, value_enum, default_value_t = SkipArg::Auto)]
    pub skip: SkipArg,
    /// Constraint preset: none, last-nonneg (NOT monotone), monotone (NonNeg on every kernel),
    /// lmn (a Lipschitz monotonic network: free MLP, skip connection kept above its
    /// Lipschitz bound per feature; monotone and certified; 16 relu units and, on sparse
    /// input, L2 1e-2 unless given: docs/certified-accuracy.md).
    #[arg(long, value_enum, default_value_t = Preset::None)]
    pub constraint: Preset,
    /// Partial monotonicity: a file of feature names or 0-based indices, one a line (`#`
    /// comments). The model is made non-decreasing in those features only: NonNeg on their
    /// first-layer rows and on every later kernel; the other features stay free. Not with
    /// --constraint.
    #[arg(long, conflicts_with = "feature_directions")]
    pub monotone_features: Option<PathBuf>,
    /// Feature directions: a file of `FEATURE DIRECTION` lines (feature name or 0-based
    /// index; +1: additions raise it, -1: additions lower it, e.g. "at most N words", 0 or
    /// unlisted: not attacker-controlled). First-layer rows get NonNeg (+1) or NonPos (-1),
    /// every later kernel NonNeg: the score cannot drop when content is added. Not with
    /// --constraint.
    #[arg(long)]
    pub feature_directions: Option<PathBuf>,
    /// Per-layer constraints, e.g. `0.kernel=non_neg+max_norm(3)` or `last.bias=max_norm(1)`
    /// (replaces that tensor's preset constraints; repeatable).
    #[arg(long)]
    pub layer_constraint: Vec<String>,
    /// JSON file `{"layers": [{"kernel": [{"name": "non_neg"}], "bias": []}, ...]}` with one
    /// entry per layer, Keras constraint names and arguments.
    #[arg(long)]
    pub constraint_config: Option<PathBuf>,
    /// How NonNeg is enforced: project (as Keras), abs or softplus (reparametrised).
    #[arg(long, value_enum, default_value_t = NonNegMode::Project)]
    pub nonneg_mode: NonNegMode,
    /// Initialisation: auto (positive init for non-negative weights) or default (PyTorch's
    /// zero-mean init everywhere: the naive baseline).
    #[arg(long, value_enum, default_value_t = InitScheme::Auto)]
    pub init: InitScheme,
    /// Do not centre the biases of constrained layers on a batch of data at init.
    #[arg(long)]
    pub no_center_bias: bool,
    /// Zero the momentum (first moment) of every weight the NonNeg projection clips.
    #[arg(long)]
    pub reset_clipped_moments: bool,
    /// Input scaling: none, standard, minmax, log1p, log1p-standard, quantile (dense data:
    /// each value's training quantile, standardised) (default for dense data:
    /// log1p-standard for monotone networks, standard otherwise; none for sparse data).
    #[arg(long, value_enum)]
    pub scale: Option<ScaleKind>,
    /// sgd, adam or adamw.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f32,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    pub nesterov: bool,
    #[arg(long, default_value_t = 0.9)]
    pub beta1: f32,
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f32,
    #[arg(long, default_value_t = 1e-8)]
    pub eps: f32,
    /// L2 penalty (sgd, adam) or decoupled decay (adamw); default 1e-2 for monotone
    /// networks on sparse input (trained by projection), 0 otherwise.
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Learning-rate schedule: constant, step, cosine.
    #[arg(long, value_enum, default_value_t = LrScheduleArg::Constant)]
    pub lr_schedule: LrScheduleArg,
    /// Step schedule: multiply the rate by --lr-gamma every this many epochs.
    #[arg(long, default_value_t = 10)]
    pub lr_step_epochs: usize,
    #[arg(long, default_value_t = 0.1)]
    pub lr_gamma: f32,
    /// Cosine schedule: final rate.
    #[arg(long, default_value_t = 0.0)]
    pub min_lr: f32,
    /// Clip the global gradient norm to this value.
    #[arg(long)]
    pub clip_grad_norm: Option<f32>,
    /// Dropout on the hidden activations in training (probability in [0, 1); kept units
    /// scaled by 1/(1-P); never at prediction). Needs a hidden layer. Default 0 (searched by
    /// --autotune-dropout).
    #[arg(long, value_name = "P")]
    pub dropout: Option<f32>,
    /// Dropout on the input in training: each present feature of a sparse row, or each
    /// value of a dense row, dropped with probability P in [0, 1). Default 0 (searched for sparse
    /// data by --autotune-dropout).
    #[arg(long, value_name = "P")]
    pub input_dropout: Option<f32>,
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Weight of positive examples: auto (negatives/positives per label), none, or values.
    #[arg(long, default_value = "auto")]
    pub pos_weight: String,
    /// Early stopping: stop after this many epochs without improvement on validation data,
    /// and restore the best epoch.
    #[arg(long)]
    pub patience: Option<usize>,
    /// What early stopping watches: loss or auc.
    #[arg(long, value_enum, default_value_t = Monitor::Loss)]
    pub monitor: Monitor,
    /// A deep ensemble: train K members (seeds --seed, --seed + 1, ...; same settings)
    /// one after another and store them as one network whose logit is the mean of
    /// theirs (K times the training time and the width; a monotone ensemble stays
    /// certified: docs/ensemble.md). 1: one model.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub ensemble: usize,
    /// Pick the decision threshold on validation data for this false positive rate.
    #[arg(long)]
    pub threshold_fpr: Option<f64>,
    /// Write the epoch history (epoch, train loss, validation loss and AUC, learning rate,
    /// seconds) to this CSV file, rewritten after every epoch.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Verified training: the loss on positives uses a sound lower bound of their logit
    /// under any set of at most this many additions (features raised to their training
    /// maximum); several (20,50,150): the mean of the bound's loss at each; 0: off.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0",
        value_name = "K[,K...]"
    )]
    pub robust_budget: Vec<usize>,
    /// Verified training: the bound's share of the positives' loss, (1 - w) clean + w bound.
    #[arg(long, default_value_t = RobustConfig::DEFAULT_WEIGHT)]
    pub robust_weight: f32,
    /// Verified training: epochs over which the budget and weight rise linearly from 0.
    #[arg(long, default_value_t = RobustConfig::DEFAULT_WARMUP)]
    pub robust_warmup: usize,
    /// Save the training state in this folder as training goes, so that a run killed at
    /// any point continues with --resume DIR to the same model, to the byte.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Save a checkpoint every N batches (default: after each epoch).
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Continue the run checkpointed in DIR (same data and other options; from the start
    /// when DIR holds no checkpoint yet), checkpointing on into DIR.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Verified training: CROWN-IBP's share of the bound after the warm-up (it falls from 1
    /// during it); 0: IBP alone. Needs one hidden layer of relu units.
    #[arg(long, default_value_t = 0.0)]
    pub robust_crown: f32,
    /// Verified training: per-row budgets; a positive with n present features trains at
    /// ceil(K n / N) additions instead of K; 0: K for every row.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub robust_length: usize,
    #[command(flatten)]
    pub autotune: super::autotune::AutotuneArgs,
    #[command(flatten)]
    pub stream: super::stream::StreamArgs,
    /// Data-parallel training over MPI: `mpirun -np K nonneg train --distributed ...`; each
    /// rank takes 1/K of every batch (of one file every rank reads, or of several shards,
    /// each rank reading its own), rank 0 writes the model (a build with the `distributed`
    /// feature; README "More than one machine").
    #[arg(long)]
    pub distributed: bool,
}

/// This process's part in a run: the only one, or one of MPI's ranks.
pub(super) struct Part<'s> {
    /// Rank 0, or the only process: it writes the model, the log and the progress.
    pub(super) root: bool,
    /// The communication figures, under MPI.
    pub(super) traffic: Option<&'s dyn Fn() -> String>,
    /// `-q` as given (every rank but 0 is quiet otherwise).
    #[cfg(feature = "distributed")]
    pub(super) quiet: bool,
    /// The MPI session this process is a rank of.
    #[cfg(feature = "distributed")]
    pub(super) session: Option<&'s nonneg::train::distributed::Session>,
}

/// The checkpoint plan of --checkpoint, --checkpoint-every and --resume.
fn checkpoint_plan(a: &TrainArgs) -> Result<Option<Plan>> {
    let dir = match (&a.checkpoint, &a.resume) {
        (Some(c), Some(r)) if c != r => bail!(
            "--resume {} checkpoints on into its own folder; --checkpoint {} names another",
            r.display(),
            c.display()
        ),
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) if a.checkpoint_every.is_some() => {
            bail!("--checkpoint-every needs --checkpoint DIR or --resume DIR")
        }
        (None, None) => return Ok(None),
    };
    if a.autotune.autotune {
        bail!("--checkpoint and --resume save one training run; --autotune runs many");
    }
    Ok(Some(Plan {
        dir: dir.clone(),
        every: a.checkpoint_every,
        resume: a.resume.is_some(),
        context: String::new(),
    }))
}

fn parse_hidden(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "none")
        .map(|p| {
            p.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| anyhow!("--hidden: `{p}` is not a positive layer width"))
        })
        .collect()
}

/// `--pos-weight`: auto, none, or one positive weight per label.
fn set_pos_weight(cfg: &mut TrainConfig, text: &str) -> Result<()> {
    match text {
        "auto" => cfg.pos_weight_mode = PosWeight::Auto,
        "none" => cfg.pos_weight_mode = PosWeight::None,
        list => {
            let w = list
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|w| *w > 0.0 && w.is_finite())
                })
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| {
                    anyhow!("--pos-weight `{list}`: use auto, none or positive numbers")
                })?;
            cfg.pos_weight = Some(w);
        }
    }
    Ok(())
}

/// The preset's constraints with `--constraint-config`, then `--layer-constraint`, applied.
fn set_constraints(cfg: &mut TrainConfig, a: &TrainArgs) -> Result<()> {
    if let Some(path) = &a.constraint_config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        cfg.constraints = pipeline::parse_constraint_file(&text, cfg.constraints.len())
            .with_context(|| format!("--constraint-config {}", path.display()))?;
    }
    for spec in &a.layer_constraint {
        pipeline::apply_layer_constraint(spec, &mut cfg.constraints)
            .context("--layer-constraint")?;
    }
    Ok(())
}

/// Everything but the data-dependent parts (feature lists, featurizer), checked before
/// any data is read.
pub fn fit_options(a: &TrainArgs) -> Result<FitOptions> {
    let preset = a.constraint;
    if (a.monotone_features.is_some() || a.feature_directions.is_some()) && preset != Preset::None {
        bail!(
            "--monotone-features and --feature-directions set the constraints themselves; \
             they cannot be combined with --constraint {}",
            choices::name(&a.constraint)
        );
    }
    let hidden = match a.hidden.as_deref() {
        Some(h) => parse_hidden(h)?,
        None => preset.default_hidden(),
    };
    let mut cfg = TrainConfig::new(hidden, preset);
    set_constraints(&mut cfg, a)?;
    cfg.free_skip = a.skip.free();
    cfg.nonneg_mode = a.nonneg_mode;
    cfg.init = a.init;
    cfg.center_bias = !a.no_center_bias;
    cfg.reset_clipped_moments = a.reset_clipped_moments;
    cfg.optimizer = OptimizerConfig {
        kind: a.optimizer,
        lr: a.lr,
        momentum: a.momentum,
        nesterov: a.nesterov,
        beta1: a.beta1,
        beta2: a.beta2,
        eps: a.eps,
        weight_decay: 0.0,
    };
    cfg.schedule = match a.lr_schedule {
        LrScheduleArg::Step => Schedule::Step {
            every_epochs: a.lr_step_epochs,
            gamma: a.lr_gamma,
        },
        LrScheduleArg::Cosine => Schedule::Cosine { min_lr: a.min_lr },
        LrScheduleArg::Constant => Schedule::Constant,
    };
    cfg.clip_grad_norm = a.clip_grad_norm;
    cfg.dropout = a.dropout.unwrap_or(0.0);
    cfg.input_dropout = a.input_dropout.unwrap_or(0.0);
    cfg.epochs = a.epochs;
    cfg.batch_size = a.batch_size;
    cfg.seed = a.seed;
    set_pos_weight(&mut cfg, &a.pos_weight)?;
    cfg.patience = a.patience;
    cfg.monitor = a.monitor;
    if let Some(f) = a.threshold_fpr {
        if !(0.0..1.0).contains(&f) {
            bail!("--threshold-fpr must be in [0, 1)");
        }
    }
    cfg.threshold_fpr = a.threshold_fpr;
    cfg.robust = robust_config(a)?;
    Ok(FitOptions {
        config: cfg,
        signs: None,
        overrides: RecipeOverrides {
            activation: a.activation.chosen(),
            skip: a.skip.chosen(),
            weight_decay: a.weight_decay,
        },
        scale: a.scale,
        featurizer: None,
        stop: None,
        checkpoint: None,
        ensemble: a.ensemble,
    })
}

/// Verified training's options; `None` when the budget is 0 (off).
fn robust_config(a: &TrainArgs) -> Result<Option<RobustConfig>> {
    if !(0.0..=1.0).contains(&a.robust_weight) {
        bail!("--robust-weight must be in [0, 1], got {}", a.robust_weight);
    }
    if !(0.0..=1.0).contains(&a.robust_crown) {
        bail!("--robust-crown must be in [0, 1], got {}", a.robust_crown);
    }
    let robust = RobustConfig::with_budgets(&a.robust_budget)
        .map_err(|e| anyhow!("--robust-budget: {e}"))?;
    Ok((robust.budget > 0).then_some(RobustConfig {
        weight: a.robust_weight,
        warmup_epochs: a.robust_warmup,
        crown: a.robust_crown,
        length: a.robust_length,
        ..robust
    }))
}

/// `--monotone-features` or `--feature-directions`, read against the training data and
/// checked against the other constraints of `cfg`.
pub fn feature_signs(
    a: &TrainArgs,
    data: &Dataset,
    cfg: &TrainConfig,
) -> Result<Option<FeatureSigns>> {
    signs_for(a, data.feature_names.as_deref(), data.x.cols(), cfg)
}

/// [`feature_signs`] for data of `n` features named `names`.
pub fn signs_for(
    a: &TrainArgs,
    names: Option<&[String]>,
    n: usize,
    cfg: &TrainConfig,
) -> Result<Option<FeatureSigns>> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    if let Some(path) = &a.monotone_features {
        let features =
            resolve_feature_list(names, n, &read(path)?, path).context("--monotone-features")?;
        return Ok(Some(FeatureSigns::Monotone(features)));
    }
    if let Some(path) = &a.feature_directions {
        let signs = resolve_direction_list(names, n, &read(path)?, path)
            .map(FeatureSigns::Directions)
            .and_then(|s| s.apply(&mut cfg.constraints.clone()).map(|()| s))
            .context("--feature-directions")?;
        return Ok(Some(signs));
    }
    Ok(None)
}

/// The featurizer for `--data`: `--featurizer F`, or the one written beside the data.
pub fn find_featurizer(a: &TrainArgs) -> Result<Option<FeaturizerSpec>> {
    let read = |path: &Path, spec: nonneg::Result<FeaturizerSpec>| {
        spec.with_context(|| format!("cannot read the featurizer {}", path.display()))
    };
    if let Some(p) = &a.featurizer {
        return Ok(Some(read(p, FeaturizerSpec::load(p))?));
    }
    // The one beside the (first) data file must be the data's own (not left from
    // another vocabulary).
    let paths = nonneg::data::stream::expand(&a.data)?;
    let Some(data) = paths.first() else {
        return Ok(None);
    };
    let beside = spec_path_for(data);
    if !beside.exists() {
        return Ok(None);
    }
    let spec = nonneg::features::corpus::load_sidecar(&beside, data);
    Ok(Some(read(&beside, spec)?))
}

/// How `--data` is read: the flags, and a featurizer's width and index base.
pub fn load_options(a: &TrainArgs, featurizer: Option<&FeaturizerSpec>) -> LoadOptions {
    let mut opts = a.data_args.options(None, true);
    if let Some(f) = featurizer {
        // Its files are 1-based with a known width, whatever the last row holds.
        opts.n_features = Some(f.n_features());
        opts.index_base = nonneg::data::IndexBase::One;
    }
    opts
}

/// The training data, the validation data if any, and what the model should remember of
/// how the training data was read.
pub fn load_train_valid(
    a: &TrainArgs,
    featurizer: Option<&FeaturizerSpec>,
) -> Result<(Dataset, Option<Dataset>, DataInfo)> {
    let opts = load_options(a, featurizer);
    let paths = nonneg::data::stream::expand(&a.data)?;
    let [path] = paths.as_slice() else {
        bail!("--data names {} files: this command reads one", paths.len());
    };
    let (data, mut info) = nonneg::data::load_info(path, &opts)?;
    let mut opts = opts;
    if featurizer.is_some() {
        info.kind = Some(InputKind::Featurized);
    }
    let valid_paths = nonneg::data::stream::expand(&a.valid)?;
    if valid_paths.len() > 1 {
        bail!(
            "--valid names {} files: this command reads one",
            valid_paths.len()
        );
    }
    let valid = match (valid_paths.first(), a.valid_fraction) {
        (Some(p), _) => {
            opts.n_features = Some(data.x.cols());
            opts.expected_features = data.feature_names.clone();
            if data.n_labels > 1 {
                opts.label_names = Some(data.label_names.clone());
            }
            let v = nonneg::data::load(p, &opts)?;
            if v.x.cols() != data.x.cols() {
                bail!(nonneg::Error::Mismatch(format!(
                    "{} has {} features, {} has {}",
                    p.display(),
                    v.x.cols(),
                    path.display(),
                    data.x.cols()
                )));
            }
            Some(v)
        }
        (None, Some(f)) => {
            if !(f > 0.0 && f < 1.0) {
                bail!("--valid-fraction must be between 0 and 1");
            }
            let (tr, va) = split::stratified_split(&data, f, a.seed)?;
            let parts = (split::subset(&data, &tr), split::subset(&data, &va));
            return Ok((parts.0, Some(parts.1), info));
        }
        (None, None) => None,
    };
    Ok((data, valid, info))
}

/// The stop flag that SIGINT and SIGTERM set (see [`stop_on_signals`]).
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(signal: libc::c_int) {
    if let Some(s) = STOP.get() {
        s.store(true, Ordering::Relaxed);
    }
    // A second signal ends the process as usual.
    // SAFETY: signal() is async-signal-safe.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// A flag set by the first SIGINT (Ctrl-C) or SIGTERM, which then no longer end the
/// process: training stops at the next batch after saving a checkpoint.
fn stop_on_signals() -> Arc<AtomicBool> {
    let flag = STOP.get_or_init(Arc::default).clone();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic and resets the disposition.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
    flag
}

pub fn run(a: &TrainArgs, ctx: &Context) -> Result<ExitCode> {
    if a.distributed && a.ensemble > 1 {
        bail!("--ensemble trains its members one after another in one process; it cannot be combined with --distributed");
    }
    if a.distributed {
        return run_distributed(a, ctx);
    }
    let whole = Part {
        root: true,
        traffic: None,
        #[cfg(feature = "distributed")]
        quiet: ctx.quiet,
        #[cfg(feature = "distributed")]
        session: None,
    };
    train(a, ctx, &whole)
}

#[cfg(not(feature = "distributed"))]
fn run_distributed(_: &TrainArgs, _: &Context) -> Result<ExitCode> {
    bail!(
        "--distributed: this nonneg was built without MPI; build it with \
         `cargo build --release --features distributed`"
    )
}

/// `--distributed`: [`train`] as one of the ranks `mpirun` started. An error on any rank
/// ends them all (the others would wait for it forever) with exit code 2.
#[cfg(feature = "distributed")]
fn run_distributed(a: &TrainArgs, ctx: &Context) -> Result<ExitCode> {
    use nonneg::train::distributed::Session;
    if a.autotune.autotune {
        bail!("--autotune cannot be combined with --distributed (not supported yet)");
    }
    nonneg::train::distributed::check_supported(&fit_options(a)?.config)?;
    let session = Session::start()?;
    let rank = Context {
        quiet: ctx.quiet || session.rank() > 0,
    };
    let traffic = || session.traffic().line();
    let part = Part {
        root: session.rank() == 0,
        traffic: Some(&traffic),
        quiet: ctx.quiet,
        session: Some(&session),
    };
    match train(a, &rank, &part) {
        Err(e) if session.size() > 1 => {
            let (r, k) = (session.rank(), session.size());
            let message = super::with_flag_names(&format!("{e:#}"));
            crate::cli::errln!("error: rank {r} of {k}: {message}").ok();
            session.abort(2)
        }
        result => result,
    }
}

/// `nonneg train` as `part` of the run.
fn train(a: &TrainArgs, ctx: &Context, part: &Part) -> Result<ExitCode> {
    if part.root {
        nonneg::atomic::check_output(&a.out)?;
    }
    let mut opts = fit_options(a)?;
    opts.checkpoint = checkpoint_plan(a)?;
    opts.check_ensemble()?;
    if let Some(p) = &opts.checkpoint {
        if p.resume && !p.path().exists() && !ctx.quiet {
            crate::cli::errln!(
                "{} holds no checkpoint yet: training from the start",
                p.dir.display()
            )?;
        }
        // Under MPI a stop must reach every rank at the same batch: a signal ends the
        // ranks (mpirun forwards it) and --resume continues from the last checkpoint.
        if part.traffic.is_none() {
            opts.stop = Some(stop_on_signals());
        }
    }
    opts.featurizer = find_featurizer(a)?;
    if let Some(data) = super::stream::streamed(a)? {
        return super::stream::train(a, ctx, opts, data, part);
    }
    let (data, valid, info) = load_train_valid(a, opts.featurizer.as_ref())?;
    opts.signs = feature_signs(a, &data, &opts.config)?;
    let mut progress = TrainProgress::new(ctx.quiet, true);
    progress.log_to(a.log.clone().filter(|_| part.root))?;
    let mut fitted = if a.autotune.autotune {
        super::autotune::fit(&opts, &data, valid.as_ref(), a, ctx)?
    } else {
        match pipeline::fit(&opts, &data, valid.as_ref(), &mut |p| progress.observe(p)) {
            Err(nonneg::Error::Interrupted) => {
                progress.finish()?;
                let dir = opts.checkpoint.map(|p| p.dir).unwrap_or_default();
                crate::cli::errln!(
                    "interrupted; the run is saved: continue it with --resume {}",
                    dir.display()
                )?;
                return Ok(ExitCode::from(130));
            }
            fitted => fitted?,
        }
    };
    progress.finish()?;
    fitted.model.input = info;
    save_and_report(&fitted, a, ctx, part)
}

/// The end of a run: rank 0 (or the only process) writes the model and the summary.
pub(super) fn save_and_report(
    fitted: &Fitted,
    a: &TrainArgs,
    ctx: &Context,
    part: &Part,
) -> Result<ExitCode> {
    if !part.root {
        return Ok(ExitCode::SUCCESS);
    }
    nonneg::model::io::save(&fitted.model, &a.out)?;
    if !ctx.quiet {
        print_summary(fitted, &a.out)?;
        if let Some(traffic) = part.traffic {
            crate::cli::errln!("communication: {}", traffic())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_summary(t: &Fitted, out: &Path) -> Result<()> {
    let r = &t.report;
    let last = r.epochs.last();
    let mut line = format!(
        "trained {} epochs in {:.1}s, train loss {:.4}",
        r.epochs.len(),
        r.seconds,
        last.map_or(f64::NAN, |e| e.train_loss)
    );
    // An ensemble's report is its first member's run, with the whole time.
    if let Some(seeds) = t.model.training.get("ensemble_seeds") {
        line = format!("ensemble of seeds {seeds}, the first member's run: {line}");
    }
    if let Some(e) = r.best_epoch.and_then(|b| r.epochs.get(b - 1)) {
        line += &format!(", best epoch {}", e.epoch);
    }
    let shown = r.best_epoch.and_then(|b| r.epochs.get(b - 1)).or(last);
    if let Some(e) = shown {
        if let Some(l) = e.valid_loss {
            line += &format!(", valid loss {l:.4}");
        }
        if let Some(a) = e.valid_auc {
            line += &format!(", valid AUC {a:.4}");
        }
    }
    crate::cli::errln!("{line}\nwrote {}", out.display())?;
    Ok(())
}
