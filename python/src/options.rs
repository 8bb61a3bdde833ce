//! The estimator's parameters (JSON, `nonneg train`'s option names with `_`) to the
//! library's [`FitOptions`], and the text featurizer's to a [`SpecSource`].

use nonneg::data::feature_list::{resolve_direction_list, resolve_feature_list};
use nonneg::data::{split, Dataset};
use nonneg::error::{Error, Result};
use nonneg::features::corpus::SpecSource;
use nonneg::features::text::{InputKind, TextOptions, TextSpec, ValueMode, Vocabulary};
use nonneg::features::FeaturizerSpec;
use nonneg::model::Activation;
use nonneg::optim::{OptimizerConfig, Schedule};
use nonneg::pipeline::autotune::{self, TuneProgress};
use nonneg::pipeline::{self, AutotuneOptions, FeatureSigns, FitOptions, Fitted, RecipeOverrides};
use nonneg::train::{Preset, RobustConfig, TrainConfig};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A choice by its command-line name (`log1p-standard` or `log1p_standard` alike).
pub fn parse_choice<T: DeserializeOwned>(name: &str, what: &str) -> Result<T> {
    [name.replace('-', "_"), name.replace('_', "-")]
        .into_iter()
        .find_map(|n| serde_json::from_value(Value::String(n)).ok())
        .ok_or_else(|| Error::invalid(format!("the `{what}` option: unknown choice `{name}`")))
}

/// The attack methods by name (the library's enum has no deserializer).
pub fn parse_method(name: &str) -> Result<nonneg::attack::Method> {
    use nonneg::attack::Method::*;
    [Greedy, Gradient, Query, Random]
        .into_iter()
        .find(|m| m.name() == name)
        .ok_or_else(|| {
            Error::invalid(format!(
                "the `method` option: unknown choice `{name}` (greedy, gradient, query, random)"
            ))
        })
}

/// The estimator's parameters; every key is sent (the Python side holds the defaults).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `None`: the preset's widths ([`Preset::default_hidden`]).
    hidden: Option<Vec<usize>>,
    activation: String,
    skip: String,
    constraint: String,
    monotone_features: Option<Vec<String>>,
    feature_directions: Option<Vec<(String, i32)>>,
    layer_constraint: Vec<String>,
    nonneg_mode: String,
    init: String,
    center_bias: bool,
    reset_clipped_moments: bool,
    scale: Option<String>,
    optimizer: String,
    lr: f32,
    momentum: f32,
    nesterov: bool,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: Option<f32>,
    lr_schedule: String,
    lr_step_epochs: usize,
    lr_gamma: f32,
    min_lr: f32,
    clip_grad_norm: Option<f32>,
    dropout: f32,
    input_dropout: f32,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    pos_weight: Value,
    patience: Option<usize>,
    monitor: String,
    valid_fraction: Option<f64>,
    threshold_fpr: Option<f64>,
    ensemble: usize,
    robust_budget: usize,
    robust_weight: f32,
    robust_warmup: usize,
    robust_crown: f32,
    threads: Option<usize>,
    autotune: bool,
    autotune_duration: Option<f64>,
    autotune_trials: Option<usize>,
    autotune_metric: String,
    autotune_folds: Option<usize>,
    autotune_hidden: bool,
    autotune_dropout: bool,
}

/// A training run ready to go to its thread.
pub struct Job {
    opts: FitOptions,
    data: Arc<Dataset>,
    valid_fraction: Option<f64>,
    threads: Option<usize>,
    /// `autotune=True`: the search, then the winner refit on all the data.
    tune: Option<AutotuneOptions>,
}

impl Job {
    pub fn new(params: &str, data: &Arc<Dataset>, featurizer: Option<&str>) -> Result<Self> {
        let p: Params = serde_json::from_str(params)
            .map_err(|e| Error::invalid(format!("estimator parameters: {e}")))?;
        let mut opts = fit_options(&p)?;
        opts.signs = feature_signs(&p, data, &opts.config)?;
        opts.featurizer = featurizer.map(parse_spec).transpose()?;
        opts.stop = Some(Arc::new(AtomicBool::new(false)));
        if let Some(f) = p.valid_fraction {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::invalid(format!(
                    "the `valid_fraction` option must be between 0 and 1, got {f}"
                )));
            }
        }
        if p.threads == Some(0) {
            return Err(Error::invalid(
                "the `threads` option must be at least 1, got 0",
            ));
        }
        Ok(Job {
            opts,
            data: Arc::clone(data),
            valid_fraction: p.valid_fraction,
            threads: p.threads,
            tune: p.autotune.then(|| tune_options(&p)).transpose()?,
        })
    }

    /// Asks the run to stop before its next batch (it then ends with
    /// [`Error::Interrupted`]).
    pub fn stop(&self) -> impl Fn() + Send + 'static {
        let flag = self.opts.stop.clone();
        move || {
            if let Some(f) = &flag {
                f.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Fits (on `threads` workers when set), calling `say` with each epoch's line (with
    /// `autotune`: each trial's).
    pub fn run(&self, say: &mut (dyn FnMut(String) + Send)) -> Result<Fitted> {
        match self.threads {
            None => self.fit_here(say),
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::invalid(format!("cannot start {n} threads: {e}")))?
                .install(|| self.fit_here(say)),
        }
    }

    fn fit_here(&self, say: &mut (dyn FnMut(String) + Send)) -> Result<Fitted> {
        let parts = match self.valid_fraction {
            None => None,
            Some(f) => {
                let (tr, va) = split::stratified_split(&self.data, f, self.opts.config.seed)?;
                Some((
                    split::subset(&self.data, &tr),
                    split::subset(&self.data, &va),
                ))
            }
        };
        let (data, valid) = match &parts {
            None => (&*self.data, None),
            Some((tr, va)) => (tr, Some(va)),
        };
        match &self.tune {
            None => pipeline::fit(&self.opts, data, valid, &mut |p| {
                if let nonneg::train::Progress::Epoch(r) = p {
                    say(r.line());
                }
            }),
            Some(t) => self.autotune(t, data, valid, say),
        }
    }
}

impl Job {
    /// `nonneg train --autotune`: a line per trial and one for the winner, as the CLI's.
    fn autotune(
        &self,
        t: &AutotuneOptions,
        data: &Dataset,
        valid: Option<&Dataset>,
        say: &mut (dyn FnMut(String) + Send),
    ) -> Result<Fitted> {
        let tuned = pipeline::autotune(&self.opts, data, valid, t, &mut |p| {
            if let TuneProgress::Done {
                trial,
                result,
                seconds,
            } = p
            {
                say(format!(
                    "trial {:>3}: {} -> AUC {:.4} ({seconds:.1}s)",
                    trial + 1,
                    result.settings.describe(),
                    result.auc.unwrap_or(f64::NAN)
                ));
            }
        })?;
        let w = &tuned.trials[tuned.winner];
        say(format!(
            "autotune chose trial {} of {}: {}",
            tuned.winner + 1,
            tuned.trials.len(),
            w.settings.describe()
        ));
        Ok(tuned.fitted)
    }
}

/// The search the `autotune_*` parameters ask for (as `nonneg train --autotune`).
fn tune_options(p: &Params) -> Result<AutotuneOptions> {
    if p.autotune_trials == Some(0) {
        return Err(Error::invalid(
            "the `autotune_trials` option must be at least 1, got 0",
        ));
    }
    if p.autotune_folds.is_some_and(|k| k < 2) {
        return Err(Error::invalid(format!(
            "the `autotune_folds` option must be at least 2, got {}",
            p.autotune_folds.unwrap_or(0)
        )));
    }
    if p.autotune_dropout && (p.dropout > 0.0 || p.input_dropout > 0.0) {
        return Err(Error::invalid(
            "the `autotune_dropout` option searches the dropout rates; leave `dropout` and \
             `input_dropout` at 0",
        ));
    }
    let budget = match p.autotune_duration {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            return Err(Error::invalid(format!(
                "the `autotune_duration` option must be a positive number of seconds, got {s}"
            )))
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => p
            .autotune_trials
            .is_none()
            .then_some(autotune::DEFAULT_BUDGET),
    };
    let preset: Preset = parse_choice(&p.constraint, "constraint")?;
    Ok(AutotuneOptions {
        metric: parse_choice(&p.autotune_metric, "autotune_metric")?,
        budget,
        trials: p.autotune_trials,
        folds: p.autotune_folds,
        valid_fraction: 0.2,
        hidden_preset: (p.autotune_hidden && p.layer_constraint.is_empty()).then_some(preset),
        search_dropout: p.autotune_dropout,
    })
}

fn fit_options(p: &Params) -> Result<FitOptions> {
    let preset: Preset = parse_choice(&p.constraint, "constraint")?;
    let signs = p.monotone_features.is_some() || p.feature_directions.is_some();
    if signs && preset != Preset::None {
        return Err(Error::invalid(
            "the `monotone_features` and `feature_directions` options set the constraints \
             themselves; they cannot be combined with the `constraint` option",
        ));
    }
    let hidden = p.hidden.clone().unwrap_or_else(|| preset.default_hidden());
    let mut cfg = TrainConfig::new(hidden, preset);
    for spec in &p.layer_constraint {
        pipeline::apply_layer_constraint(spec, &mut cfg.constraints)?;
    }
    cfg.nonneg_mode = parse_choice(&p.nonneg_mode, "nonneg_mode")?;
    cfg.init = parse_choice(&p.init, "init")?;
    cfg.center_bias = p.center_bias;
    cfg.reset_clipped_moments = p.reset_clipped_moments;
    cfg.optimizer = OptimizerConfig {
        kind: parse_choice(&p.optimizer, "optimizer")?,
        lr: p.lr,
        momentum: p.momentum,
        nesterov: p.nesterov,
        beta1: p.beta1,
        beta2: p.beta2,
        eps: p.eps,
        weight_decay: 0.0,
    };
    cfg.schedule = match p.lr_schedule.as_str() {
        "constant" => Schedule::Constant,
        "step" => Schedule::Step {
            every_epochs: p.lr_step_epochs,
            gamma: p.lr_gamma,
        },
        "cosine" => Schedule::Cosine { min_lr: p.min_lr },
        other => {
            return Err(Error::invalid(format!(
                "the `lr_schedule` option: unknown choice `{other}` (constant, step, cosine)"
            )))
        }
    };
    cfg.clip_grad_norm = p.clip_grad_norm;
    (cfg.dropout, cfg.input_dropout) = (p.dropout, p.input_dropout);
    cfg.epochs = p.epochs;
    cfg.batch_size = p.batch_size;
    cfg.seed = p.seed;
    set_pos_weight(&mut cfg, &p.pos_weight)?;
    cfg.patience = p.patience;
    cfg.monitor = parse_choice(&p.monitor, "monitor")?;
    if let Some(f) = p.threshold_fpr.filter(|f| !(0.0..1.0).contains(f)) {
        return Err(Error::invalid(format!(
            "the `threshold_fpr` option must be in [0, 1), got {f}"
        )));
    }
    cfg.threshold_fpr = p.threshold_fpr;
    if !(0.0..=1.0).contains(&p.robust_weight) {
        return Err(Error::invalid(format!(
            "the `robust_weight` option must be in [0, 1], got {}",
            p.robust_weight
        )));
    }
    cfg.robust = (p.robust_budget > 0).then_some(RobustConfig {
        weight: p.robust_weight,
        warmup_epochs: p.robust_warmup,
        crown: p.robust_crown,
        ..RobustConfig::new(p.robust_budget)
    });
    let activation = match p.activation.as_str() {
        "auto" => None,
        a => Some(parse_choice::<Activation>(a, "activation")?),
    };
    let skip = match p.skip.as_str() {
        "auto" => None,
        "on" | "free" => Some(true),
        "off" => Some(false),
        other => {
            return Err(Error::invalid(format!(
                "the `skip` option: unknown choice `{other}` (auto, on, off, free)"
            )))
        }
    };
    cfg.free_skip = p.skip == "free";
    let scale = p
        .scale
        .as_deref()
        .map(|s| parse_choice(s, "scale"))
        .transpose()?;
    Ok(FitOptions {
        config: cfg,
        signs: None,
        overrides: RecipeOverrides {
            activation,
            skip,
            weight_decay: p.weight_decay,
        },
        scale,
        featurizer: None,
        stop: None,
        checkpoint: None,
        ensemble: p.ensemble,
    })
}

/// `"auto"`, `"none"`, a weight or a list of weights (one per label).
fn set_pos_weight(cfg: &mut TrainConfig, v: &Value) -> Result<()> {
    let weights = match v {
        Value::String(s) if s == "auto" || s == "none" => {
            cfg.pos_weight_mode = parse_choice(s, "pos_weight")?;
            return Ok(());
        }
        Value::Number(n) => vec![n.as_f64()],
        Value::Array(a) => a.iter().map(Value::as_f64).collect(),
        _ => vec![None],
    };
    let w = weights
        .into_iter()
        .map(|w| w.map(|w| w as f32).filter(|w| *w > 0.0 && w.is_finite()))
        .collect::<Option<Vec<f32>>>()
        .ok_or_else(|| {
            Error::invalid(format!(
                "the `pos_weight` option: use \"auto\", \"none\" or positive numbers, got {v}"
            ))
        })?;
    cfg.pos_weight = Some(w);
    Ok(())
}

/// `monotone_features` (names or indices) or `feature_directions` (`(feature, +1|-1|0)`
/// pairs), resolved by the library's list readers as if read from a file.
fn feature_signs(p: &Params, data: &Dataset, cfg: &TrainConfig) -> Result<Option<FeatureSigns>> {
    let (names, n) = (data.feature_names.as_deref(), data.x.cols());
    if let Some(f) = &p.monotone_features {
        let path = Path::new("the monotone_features list");
        let features = resolve_feature_list(names, n, &f.join("\n"), path)?;
        return Ok(Some(FeatureSigns::Monotone(features)));
    }
    if let Some(d) = &p.feature_directions {
        let text: Vec<String> = d.iter().map(|(f, s)| format!("{f} {s:+}")).collect();
        let path = Path::new("the feature_directions list");
        let signs =
            FeatureSigns::Directions(resolve_direction_list(names, n, &text.join("\n"), path)?);
        signs.apply(&mut cfg.constraints.clone())?;
        return Ok(Some(signs));
    }
    Ok(None)
}

/// A featurizer spec from its JSON (as `nonneg featurize` writes it).
pub fn parse_spec(json: &str) -> Result<FeaturizerSpec> {
    let spec: FeaturizerSpec = serde_json::from_str(json)
        .map_err(|e| Error::invalid(format!("not a featurizer spec: {e}")))?;
    spec.validate()?;
    Ok(spec)
}

/// The text featurizer's parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextParams {
    min_df: usize,
    max_features: Option<usize>,
    hash_bits: Option<u32>,
    input_kind: String,
    subject_words: bool,
    header_tokens: bool,
    url_hosts: bool,
    raw_headers: bool,
    email_defaults: bool,
    counts: bool,
    cap: u32,
    tfidf: bool,
    normalize: bool,
}

/// The featurizer `nonneg featurize text` builds from the same settings.
pub fn text_source(json: &str) -> Result<SpecSource> {
    let t: TextParams = serde_json::from_str(json)
        .map_err(|e| Error::invalid(format!("featurizer parameters: {e}")))?;
    // As `featurize text`: an explicit email option turns the defaults off.
    let email_defaults = t.email_defaults && !(t.header_tokens || t.url_hosts || t.raw_headers);
    let options = TextOptions {
        input_kind: parse_choice::<InputKind>(&t.input_kind, "input_kind")?,
        subject_words: t.subject_words,
        header_tokens: t.header_tokens,
        url_hosts: t.url_hosts,
        raw_headers: t.raw_headers,
        value: if t.counts {
            ValueMode::Counts { cap: t.cap }
        } else {
            ValueMode::Binary
        },
        tfidf: t.tfidf,
        normalize: t.normalize,
    };
    Ok(match t.hash_bits {
        Some(bits) => SpecSource::Fixed(FeaturizerSpec::text(TextSpec {
            options,
            vocabulary: Vocabulary::Hashing { bits },
            idf: None,
        })),
        None => SpecSource::BuildVocabulary {
            options,
            min_df: t.min_df,
            max_features: t.max_features,
            email_defaults,
        },
    })
}
