//! `nonneg train`.

use super::{Context, DataArgs};
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nonneg::data::{split, Dataset, Features};
use nonneg::features::corpus::spec_path_for;
use nonneg::features::FeaturizerSpec;
use nonneg::model::init::InitScheme;
use nonneg::model::scaler::{ScaleKind, Scaler};
use nonneg::model::{Activation, Constraint, Model, NonNegMode};
use nonneg::optim::{OptimizerKind, Schedule};
use nonneg::train::{self, LayerConstraints, Monitor, PosWeight, Preset, Progress, TrainConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data: .csv, svmlight/libsvm, or .npz.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the model (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// The featurizer that made --data (default: `<data>.featurizer.json` when it exists);
    /// stored in the model so it can score raw samples.
    #[arg(long)]
    pub featurizer: Option<PathBuf>,
    /// Validation data, read like --data.
    #[arg(long, conflicts_with = "valid_fraction")]
    pub valid: Option<PathBuf>,
    /// Hold out this stratified fraction of --data for validation.
    #[arg(long)]
    pub valid_fraction: Option<f64>,
    /// Hidden layer widths, e.g. 256,64; empty ("") for logistic regression.
    #[arg(long, default_value = "64,32")]
    pub hidden: String,
    /// Hidden activation: relu, leaky_relu, sigmoid, tanh, softplus, mixed (convex, concave
    /// and saturating units in turn), or auto: tanh when every kernel is NonNeg (monotone,
    /// fully or partially), relu otherwise.
    #[arg(long, default_value = "auto")]
    pub activation: String,
    /// A linear skip connection from the input straight to the logit, constrained per
    /// feature like the first layer: on, off, or auto (on for monotone networks with a
    /// hidden layer).
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub skip: String,
    /// Constraint preset: none, last-nonneg (NOT monotone), monotone (NonNeg on every kernel).
    #[arg(long, default_value = "none")]
    pub constraint: String,
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
    #[arg(long, default_value = "project")]
    pub nonneg_mode: String,
    /// Initialisation: auto (positive init for non-negative weights) or default (PyTorch's
    /// zero-mean init everywhere: the naive baseline).
    #[arg(long, default_value = "auto", value_parser = ["auto", "default"])]
    pub init: String,
    /// Do not centre the biases of constrained layers on a batch of data at init.
    #[arg(long)]
    pub no_center_bias: bool,
    /// Zero the momentum (first moment) of every weight the NonNeg projection clips.
    #[arg(long)]
    pub reset_clipped_moments: bool,
    /// Input scaling: none, standard, minmax, log1p, log1p-standard (default for dense data:
    /// log1p-standard for monotone networks, standard otherwise; none for sparse data).
    #[arg(long)]
    pub scale: Option<String>,
    /// sgd, adam or adamw.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
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
    #[arg(long, default_value = "constant", value_parser = ["constant", "step", "cosine"])]
    pub lr_schedule: String,
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
    #[arg(long, default_value = "loss", value_parser = ["loss", "auc"])]
    pub monitor: String,
    /// Pick the decision threshold on validation data for this false positive rate.
    #[arg(long)]
    pub threshold_fpr: Option<f64>,
}

pub fn parse_hidden(s: &str) -> Result<Vec<usize>> {
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

/// Applies `--layer-constraint LAYER.TENSOR=C1+C2` overrides.
fn apply_layer_constraint(spec: &str, layers: &mut [LayerConstraints]) -> Result<()> {
    let (target, list) = spec.split_once('=').ok_or_else(|| {
        anyhow!("--layer-constraint `{spec}`: expected LAYER.kernel=C or LAYER.bias=C")
    })?;
    let (layer, tensor) = target.split_once('.').ok_or_else(|| {
        anyhow!("--layer-constraint `{spec}`: expected LAYER.kernel or LAYER.bias")
    })?;
    let n = layers.len();
    let index = match layer.trim() {
        "last" => n - 1,
        l => l.parse::<usize>().ok().filter(|&i| i < n).ok_or_else(|| {
            anyhow!(
                "--layer-constraint `{spec}`: layer must be 0..{} or last",
                n - 1
            )
        })?,
    };
    let constraints = list
        .split('+')
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != "none")
        .map(Constraint::parse)
        .collect::<nonneg::Result<Vec<_>>>()
        .with_context(|| format!("--layer-constraint `{spec}`"))?;
    match tensor.trim() {
        "kernel" | "weight" => layers[index].kernel = constraints,
        "bias" => layers[index].bias = constraints,
        t => bail!("--layer-constraint `{spec}`: unknown tensor `{t}` (kernel or bias)"),
    }
    Ok(())
}

/// Fills what was left on auto (activation, skip, weight decay) from the recipe for the
/// final constraints and the input kind.
pub fn apply_recipe(a: &TrainArgs, cfg: &mut TrainConfig, sparse: bool) {
    let chosen = cfg.activation;
    cfg.use_recipe(sparse);
    if a.activation != "auto" {
        cfg.activation = chosen;
    }
    match a.skip.as_str() {
        "on" => cfg.skip = true,
        "off" => cfg.skip = false,
        _ => {}
    }
    if let Some(wd) = a.weight_decay {
        cfg.optimizer.weight_decay = wd;
    }
}

pub fn config_from_args(a: &TrainArgs) -> Result<TrainConfig> {
    let hidden = parse_hidden(&a.hidden)?;
    let preset = Preset::parse(&a.constraint).ok_or_else(|| {
        anyhow!(
            "--constraint `{}`: use none, last-nonneg or monotone",
            a.constraint
        )
    })?;
    if (a.monotone_features.is_some() || a.feature_directions.is_some()) && preset != Preset::None {
        bail!(
            "--monotone-features and --feature-directions set the constraints themselves; \
             they cannot be combined with --constraint {}",
            a.constraint
        );
    }
    let mut cfg = TrainConfig::new(hidden, preset);
    let n_layers = cfg.constraints.len();
    if let Some(path) = &a.constraint_config {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            layers: Vec<LayerConstraints>,
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let f: File = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a constraint config", path.display()))?;
        if f.layers.len() != n_layers {
            bail!(
                "{}: {} layer entries, the network has {n_layers} layers",
                path.display(),
                f.layers.len()
            );
        }
        cfg.constraints = f.layers;
    }
    for spec in &a.layer_constraint {
        apply_layer_constraint(spec, &mut cfg.constraints)?;
    }
    if a.activation != "auto" {
        cfg.activation = Activation::parse(&a.activation)
            .filter(|x| *x != Activation::Identity)
            .ok_or_else(|| {
                anyhow!(
                    "--activation `{}`: use relu, leaky_relu, sigmoid, tanh, softplus or mixed",
                    a.activation
                )
            })?;
    }
    cfg.nonneg_mode = NonNegMode::parse(&a.nonneg_mode).ok_or_else(|| {
        anyhow!(
            "--nonneg-mode `{}`: use project, abs or softplus",
            a.nonneg_mode
        )
    })?;
    cfg.init = if a.init == "default" {
        InitScheme::Default
    } else {
        InitScheme::Auto
    };
    cfg.center_bias = !a.no_center_bias;
    cfg.reset_clipped_moments = a.reset_clipped_moments;
    let kind = match a.optimizer.as_str() {
        "sgd" => OptimizerKind::Sgd,
        "adam" => OptimizerKind::Adam,
        "adamw" => OptimizerKind::Adamw,
        o => bail!("--optimizer `{o}`: use sgd, adam or adamw"),
    };
    cfg.optimizer = nonneg::optim::OptimizerConfig {
        kind,
        lr: a.lr,
        momentum: a.momentum,
        nesterov: a.nesterov,
        beta1: a.beta1,
        beta2: a.beta2,
        eps: a.eps,
        weight_decay: 0.0,
    };
    cfg.schedule = match a.lr_schedule.as_str() {
        "step" => Schedule::Step {
            every_epochs: a.lr_step_epochs,
            gamma: a.lr_gamma,
        },
        "cosine" => Schedule::Cosine { min_lr: a.min_lr },
        _ => Schedule::Constant,
    };
    cfg.clip_grad_norm = a.clip_grad_norm;
    cfg.epochs = a.epochs;
    cfg.batch_size = a.batch_size;
    cfg.seed = a.seed;
    match a.pos_weight.as_str() {
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
    cfg.patience = a.patience;
    cfg.monitor = if a.monitor == "auc" {
        Monitor::Auc
    } else {
        Monitor::Loss
    };
    if let Some(f) = a.threshold_fpr {
        if !(0.0..1.0).contains(&f) {
            bail!("--threshold-fpr must be in [0, 1)");
        }
    }
    cfg.threshold_fpr = a.threshold_fpr;
    Ok(cfg)
}

/// `--monotone-features`: reads the list against the training data's features and adds
/// the constraints making the network non-decreasing in those features: NonNeg on their
/// rows of the first kernel (Keras layout: rows are input features) and on every later
/// kernel. Merges with constraints given by --layer-constraint / --constraint-config (a
/// full NonNeg stays full; other constraints stay). Returns the sorted feature indices.
pub fn apply_monotone_features(
    cfg: &mut TrainConfig,
    path: &Path,
    data: &Dataset,
) -> Result<Vec<usize>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let features = nonneg::certify::resolve_feature_list(
        data.feature_names.as_deref(),
        data.x.cols(),
        &text,
        path,
    )
    .context("--monotone-features")?;
    partially_monotone(&mut cfg.constraints, &features);
    Ok(features)
}

/// `--feature-directions`: NonNeg on the first-kernel rows of the +1 features, NonPos on
/// those of the -1 features, NonNeg on every later kernel (merged like
/// [`apply_monotone_features`]).
pub fn apply_feature_directions(
    cfg: &mut TrainConfig,
    path: &Path,
    data: &Dataset,
) -> Result<nonneg::certify::Directions> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dirs = nonneg::certify::resolve_direction_list(
        data.feature_names.as_deref(),
        data.x.cols(),
        &text,
        path,
    )
    .context("--feature-directions")?;
    partially_monotone(&mut cfg.constraints, &dirs.up);
    if !dirs.down.is_empty() {
        let first = &mut cfg.constraints[0].kernel;
        if first
            .iter()
            .any(|c| matches!(c, Constraint::NonNeg { rows: None }))
        {
            bail!("--feature-directions: the first kernel is all non_neg, but some features have direction -1");
        }
        first.push(Constraint::NonPos {
            rows: Some(dirs.down.iter().map(|&i| i as u32).collect()),
        });
    }
    Ok(dirs)
}

/// Adds NonNeg on rows `features` of the first kernel and on every later kernel.
fn partially_monotone(layers: &mut [LayerConstraints], features: &[usize]) {
    for (l, layer) in layers.iter_mut().enumerate() {
        let mut rows: Vec<u32> = if l == 0 {
            features.iter().map(|&i| i as u32).collect()
        } else {
            Vec::new()
        };
        let mut full = l > 0;
        layer.kernel.retain(|c| match c {
            Constraint::NonNeg { rows: None } => {
                full = true;
                false
            }
            Constraint::NonNeg { rows: Some(r) } => {
                rows.extend(r);
                false
            }
            _ => true,
        });
        rows.sort_unstable();
        rows.dedup();
        let c = Constraint::NonNeg {
            rows: if full { None } else { Some(rows) },
        };
        layer.kernel.insert(0, c);
    }
}

/// Largest value of each raw feature (implicit zeros count for sparse data).
pub fn feature_max(x: &Features) -> Vec<f32> {
    match x {
        Features::Dense(m) => {
            let mut hi = vec![f32::NEG_INFINITY; m.cols];
            for r in 0..m.rows {
                for (h, &v) in hi.iter_mut().zip(m.row(r)) {
                    *h = h.max(v);
                }
            }
            hi
        }
        Features::Sparse(m) => {
            let mut hi = vec![0f32; m.cols];
            for (&j, &v) in m.indices.iter().zip(&m.values) {
                hi[j as usize] = hi[j as usize].max(v);
            }
            hi
        }
    }
}

/// A progress bar on a terminal; nothing otherwise or with --quiet.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    pub fn new(quiet: bool) -> Self {
        let target = ProgressDrawTarget::stderr();
        let bar = (!quiet && !target.is_hidden()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), target);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            b
        });
        Bar { bar }
    }

    pub fn observe(&self, p: Progress) {
        let Some(b) = &self.bar else { return };
        match p {
            Progress::Start { epochs, batches } => b.set_length((epochs * batches) as u64),
            Progress::Batch { epoch, loss, .. } => {
                b.set_prefix(format!("epoch {}", epoch + 1));
                b.inc(1);
                b.set_message(format!("loss {loss:.4}"));
            }
            Progress::Epoch(r) => {
                let valid = match (r.valid_loss, r.valid_auc) {
                    (Some(l), Some(a)) => format!(", valid loss {l:.4}, valid AUC {a:.4}"),
                    (Some(l), None) => format!(", valid loss {l:.4}"),
                    _ => String::new(),
                };
                b.println(format!(
                    "epoch {:>3}: train loss {:.4}{valid} ({:.1}s)",
                    r.epoch, r.train_loss, r.seconds
                ));
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Everything a train run produces, for the CLI and the demo.
pub struct Trained {
    pub model: Model,
    pub report: train::TrainReport,
}

/// Trains from already-loaded data (used by `train` and `demo`).
pub fn train_model(
    cfg: &TrainConfig,
    data: &Dataset,
    valid: Option<&Dataset>,
    scale: Option<&str>,
    quiet: bool,
) -> Result<Trained> {
    let kind = match scale {
        Some(s) => ScaleKind::parse(s).ok_or_else(|| {
            anyhow!("--scale `{s}`: use none, standard, minmax, log1p or log1p-standard")
        })?,
        None if data.x.is_sparse() => ScaleKind::None,
        None => train::recipe(&cfg.constraints, &cfg.hidden, cfg.nonneg_mode, false).scale,
    };
    let scaler = Scaler::fit(kind, &data.x)?;
    let scaled = |d: &Dataset| {
        let mut d = d.clone();
        scaler.apply(&mut d.x);
        d
    };
    let (train_scaled, valid_scaled);
    let (t, v) = if kind == ScaleKind::None {
        (data, valid)
    } else {
        train_scaled = scaled(data);
        valid_scaled = valid.map(scaled);
        (&train_scaled, valid_scaled.as_ref())
    };
    let bar = Bar::new(quiet);
    let (mlp, report) = train::train(cfg, t, v, &mut |p| bar.observe(p))?;
    bar.finish();
    let mut training = serde_json::to_value(cfg)?;
    training["scale"] = serde_json::to_value(kind)?;
    training["train_rows"] = data.rows().into();
    training["valid_rows"] = valid.map_or(0, |v| v.rows()).into();
    training["epochs_run"] = report.epochs.len().into();
    training["best_epoch"] = report.best_epoch.into();
    training["pos_weight_used"] = serde_json::to_value(&report.pos_weight)?;
    let model = Model {
        mlp,
        scaler,
        threshold: report.threshold.clone(),
        feature_names: data.feature_names.clone(),
        label_names: data.label_names.clone(),
        nonneg_mode: cfg.nonneg_mode,
        feature_max: Some(feature_max(&data.x)),
        featurizer: None,
        training,
    };
    Ok(Trained { model, report })
}

/// The featurizer for `--data`: `--featurizer F`, or the one written beside the data.
pub fn find_featurizer(a: &TrainArgs) -> Result<Option<FeaturizerSpec>> {
    let path = match &a.featurizer {
        Some(p) => p.clone(),
        None => {
            let beside = spec_path_for(&a.data);
            if !beside.exists() {
                return Ok(None);
            }
            beside
        }
    };
    Ok(Some(FeaturizerSpec::load(&path).with_context(|| {
        format!("cannot read the featurizer {}", path.display())
    })?))
}

pub fn load_train_valid(
    a: &TrainArgs,
    featurizer: Option<&FeaturizerSpec>,
) -> Result<(Dataset, Option<Dataset>)> {
    let mut opts = a.data_args.options(None, true);
    if let Some(f) = featurizer {
        // Its files are 1-based with a known width, whatever the last row holds.
        opts.n_features = Some(f.n_features());
        opts.index_base = nonneg::data::IndexBase::One;
    }
    let data = nonneg::data::load(&a.data, &opts)?;
    let valid = match (&a.valid, a.valid_fraction) {
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
                    a.data.display(),
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
            return Ok((split::subset(&data, &tr), Some(split::subset(&data, &va))));
        }
        (None, None) => None,
    };
    Ok((data, valid))
}

pub fn run(a: &TrainArgs, ctx: &Context) -> Result<ExitCode> {
    let mut cfg = config_from_args(a)?;
    let featurizer = find_featurizer(a)?;
    let (data, valid) = load_train_valid(a, featurizer.as_ref())?;
    if let Some(path) = &a.monotone_features {
        apply_monotone_features(&mut cfg, path, &data)?;
    }
    if let Some(path) = &a.feature_directions {
        apply_feature_directions(&mut cfg, path, &data)?;
    }
    apply_recipe(a, &mut cfg, data.x.is_sparse());
    let mut t = train_model(&cfg, &data, valid.as_ref(), a.scale.as_deref(), ctx.quiet)?;
    if let Some(f) = &featurizer {
        t.model.featurizer = Some(serde_json::to_value(f)?);
    }
    nonneg::model::io::save(&t.model, &a.out)?;
    if !ctx.quiet {
        print_summary(&t, &a.out);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_summary(t: &Trained, out: &Path) {
    let r = &t.report;
    let last = r.epochs.last();
    let mut line = format!(
        "trained {} epochs in {:.1}s, train loss {:.4}",
        r.epochs.len(),
        r.seconds,
        last.map_or(f64::NAN, |e| e.train_loss)
    );
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
    eprintln!("{line}\nwrote {}", out.display());
}
