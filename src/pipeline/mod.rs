//! The pipeline from loaded data to a fitted [`Model`]: the constraints (preset, overrides,
//! sign rules for some features), the recipe's automatic choices unless fixed, the input
//! scaling, training, and the model with its record of how it was trained. `nonneg train`
//! and `nonneg demo` are thin callers of [`fit`]; [`demo`] is the demo's experiment;
//! [`cv`] cross-validates the same options and [`autotune`] searches them.

pub mod arrays;
pub mod autotune;
pub mod budget_eval;
pub mod constraints;
pub mod cv;
pub mod demo;
pub mod stream;

pub use autotune::{autotune, AutotuneOptions, TuneMetric, Tuned};
pub use constraints::{apply_layer_constraint, parse_constraint_file, FeatureSigns};
pub use cv::{cross_validate, CvReport};

use crate::data::{Dataset, Features};
use crate::error::{Error, Result};
use crate::features::FeaturizerSpec;
use crate::metrics::{self, LabelMetrics};
use crate::model::scaler::{ScaleKind, Scaler};
use crate::model::Mlp;
use crate::model::{ensemble, Activation, Model};
use crate::train::{self, checkpoint, Progress, TrainConfig, TrainReport, ValidSource};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The recipe's automatic choices fixed by the caller (`None`: the recipe decides).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RecipeOverrides {
    pub activation: Option<Activation>,
    pub skip: Option<bool>,
    pub weight_decay: Option<f32>,
}

/// Everything [`fit`] needs besides the data.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// The explicit settings: widths, constraints (preset and overrides), optimizer,
    /// schedule, epochs... Its activation, skip and weight decay are the recipe's for the
    /// final constraints and the input kind, unless `overrides` fixes them.
    pub config: TrainConfig,
    /// Sign rules for some features, merged into `config.constraints`.
    pub signs: Option<FeatureSigns>,
    pub overrides: RecipeOverrides,
    /// Input scaling; `None`: the recipe's (none for sparse data).
    pub scale: Option<ScaleKind>,
    /// The featurizer that made the data, stored in the model to score raw samples.
    pub featurizer: Option<FeaturizerSpec>,
    /// Set to stop training before its next batch ([`Error::Interrupted`]).
    pub stop: Option<Arc<AtomicBool>>,
    /// Checkpoints of training, and resuming from them.
    pub checkpoint: Option<checkpoint::Plan>,
    /// Members of a deep ensemble (seeds `seed`, `seed + 1`, ...), merged into one network
    /// whose logit is the mean of theirs ([`crate::model::ensemble`]); 1: one model.
    pub ensemble: usize,
}

impl FitOptions {
    /// `config` with the recipe deciding the rest.
    pub fn new(config: TrainConfig) -> Self {
        FitOptions {
            config,
            signs: None,
            overrides: RecipeOverrides::default(),
            scale: None,
            featurizer: None,
            stop: None,
            checkpoint: None,
            ensemble: 1,
        }
    }

    /// Checks the ensemble size and what it is combined with (before any training).
    pub fn check_ensemble(&self) -> Result<()> {
        let k = self.ensemble;
        if k == 0 {
            return Err(Error::invalid(
                "the `ensemble` option must be at least 1, got 0",
            ));
        }
        Ok(())
    }

    /// The configuration training runs with on data of this kind: the sign rules merged
    /// into the constraints, then the recipe for them, then the overrides.
    pub fn resolve(&self, sparse: bool) -> Result<TrainConfig> {
        let mut cfg = self.config.clone();
        if let Some(signs) = &self.signs {
            signs.apply(&mut cfg.constraints)?;
        }
        cfg.use_recipe(sparse);
        let o = &self.overrides;
        if let Some(a) = o.activation {
            cfg.activation = a;
        }
        if let Some(s) = o.skip {
            cfg.skip = s;
        }
        if let Some(wd) = o.weight_decay {
            cfg.optimizer.weight_decay = wd;
        }
        Ok(cfg)
    }
}

/// A fitted model and how its training went.
pub struct Fitted {
    pub model: Model,
    pub report: TrainReport,
}

/// Fits a model on `data` (validating on `valid`), calling `progress` as training goes.
pub fn fit(
    opts: &FitOptions,
    data: &Dataset,
    valid: Option<&Dataset>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Fitted> {
    opts.check_ensemble()?;
    let cfg = opts.resolve(data.x.is_sparse())?;
    cfg.validate()?;
    cfg.check_size(data.x.cols(), data.n_labels)?;
    check_ensemble_constraints(opts.ensemble, &cfg)?;
    let kind = opts.scale.unwrap_or_else(|| {
        train::recipe(
            &cfg.constraints,
            &cfg.hidden,
            cfg.nonneg_mode,
            data.x.is_sparse(),
        )
        .scale
    });
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
    let control = train::Control {
        stop: opts.stop.clone(),
        checkpoint: checkpoint_plan(opts, kind, data)?,
    };
    let (mlp, report) = match opts.ensemble {
        1 => train::train_with(&cfg, t, v, &control, progress)?,
        k => {
            // Each member checkpoints in its own folder and keeps its result there.
            let member = |j: usize, cfg: &TrainConfig, _: Option<&mut dyn ValidSource>| {
                let control = train::Control {
                    stop: control.stop.clone(),
                    checkpoint: control.checkpoint.as_ref().map(|p| p.member(j)),
                };
                checkpoint::train_kept(cfg, t, v, &control, progress)
            };
            let mut scored = v;
            let scored = scored.as_mut().map(|v| v as &mut dyn ValidSource);
            train_ensemble(&cfg, k, scored, member)?
        }
    };
    let mut training = training_record(
        &cfg,
        kind,
        data.rows(),
        valid.map_or(0, |v| v.rows()),
        &report,
    )?;
    record_ensemble(&mut training, &cfg, opts.ensemble);
    let model = Model {
        mlp,
        scaler,
        threshold: report.threshold.clone(),
        feature_names: data.feature_names.clone(),
        label_names: data.label_names.clone(),
        nonneg_mode: cfg.nonneg_mode,
        feature_max: Some(feature_max(&data.x)),
        featurizer: opts.featurizer.clone(),
        input: Default::default(),
        training,
    };
    Ok(Fitted { model, report })
}

/// Refuses the constraints an ensemble of `k > 1` would not keep, before training K
/// members rather than after.
fn check_ensemble_constraints(k: usize, cfg: &TrainConfig) -> Result<()> {
    if k == 1 {
        return Ok(());
    }
    cfg.constraints
        .iter()
        .flat_map(|l| l.kernel.iter().chain(&l.bias))
        .try_for_each(ensemble::check_constraint)
}

/// Adds an ensemble's size and seeds to the training record.
fn record_ensemble(training: &mut serde_json::Value, cfg: &TrainConfig, k: usize) {
    if k > 1 {
        training["ensemble"] = k.into();
        training["ensemble_seeds"] = member_seeds(cfg, k).into();
    }
}

/// The seeds of an ensemble's members: the configuration's, then the next ones.
fn member_seeds(cfg: &TrainConfig, k: usize) -> Vec<u64> {
    (0..k as u64).map(|j| cfg.seed.wrapping_add(j)).collect()
}

/// Trains `k` members one after another, member `j` by `member(j, its config, valid)`
/// (each on the whole thread pool, so the result is the same at any thread count), and
/// merges them. The report is the first member's (the plain model's run) with the whole
/// time and the merged network's FPR thresholds on `valid`.
fn train_ensemble(
    cfg: &TrainConfig,
    k: usize,
    mut valid: Option<&mut dyn ValidSource>,
    mut member: impl FnMut(
        usize,
        &TrainConfig,
        Option<&mut dyn ValidSource>,
    ) -> Result<(Mlp, TrainReport)>,
) -> Result<(Mlp, TrainReport)> {
    let mut members = Vec::with_capacity(k);
    let mut reports = Vec::with_capacity(k);
    for (j, seed) in member_seeds(cfg, k).into_iter().enumerate() {
        let member_cfg = TrainConfig {
            seed,
            ..cfg.clone()
        };
        // A shorter borrow of `valid` for each member (the trait object's lifetime too).
        let v = valid.as_mut().map(|v| &mut **v as &mut dyn ValidSource);
        let (mlp, report) = member(j, &member_cfg, v)?;
        members.push(mlp);
        reports.push(report);
    }
    let mlp = ensemble::merge(&members)?;
    let seconds = reports.iter().map(|r| r.seconds).sum();
    let mut report = reports.swap_remove(0);
    report.seconds = seconds;
    if let (Some(fpr), Some(v)) = (cfg.threshold_fpr, valid) {
        let (logits, y) = v.score(&mlp)?;
        report.threshold = metrics::thresholds_for_fpr(&logits, &y, mlp.n_labels(), fpr)
            .ok_or_else(|| {
                Error::invalid(
                    "no threshold for a target FPR: the validation data has no negatives",
                )
            })?;
    }
    Ok((mlp, report))
}

/// The checkpoint plan bound also to what the model keeps besides the network: the
/// scaling, the names, the featurizer.
fn checkpoint_plan(
    opts: &FitOptions,
    scale: ScaleKind,
    data: &Dataset,
) -> Result<Option<checkpoint::Plan>> {
    let Some(plan) = &opts.checkpoint else {
        return Ok(None);
    };
    let parts = (
        &plan.context,
        scale,
        &data.feature_names,
        &data.label_names,
        &opts.featurizer,
    );
    let context = serde_json::to_string(&parts)
        .map_err(|e| Error::invalid(format!("checkpoint context: {e}")))?;
    Ok(Some(checkpoint::Plan {
        context,
        ..plan.clone()
    }))
}

/// The `training` record of the model file: the configuration plus what the run chose
/// and saw.
fn training_record(
    cfg: &TrainConfig,
    scale: ScaleKind,
    train_rows: usize,
    valid_rows: usize,
    report: &TrainReport,
) -> Result<serde_json::Value> {
    let json = |e: serde_json::Error| Error::invalid(format!("training record: {e}"));
    let mut training = serde_json::to_value(cfg).map_err(json)?;
    training["scale"] = serde_json::to_value(scale).map_err(json)?;
    training["train_rows"] = train_rows.into();
    training["valid_rows"] = valid_rows.into();
    training["epochs_run"] = report.epochs.len().into();
    training["best_epoch"] = report.best_epoch.into();
    training["pos_weight_used"] = serde_json::to_value(&report.pos_weight).map_err(json)?;
    Ok(training)
}

/// Largest value of each raw feature (implicit zeros count for sparse data; a dense
/// matrix without rows gives `-inf`).
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

/// Metrics per label of `logits` against `y` (both `[rows x labels]`), at the model's
/// thresholds.
pub fn label_metrics(model: &Model, logits: &[f32], y: &[f32]) -> Vec<LabelMetrics> {
    let l = model.mlp.n_labels();
    (0..l)
        .map(|k| {
            let s = metrics::label_column(logits, l, k);
            let t = metrics::label_column(y, l, k);
            metrics::evaluate(&s, &t, model.threshold[k], 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DenseMatrix;
    use crate::model::Constraint;
    use crate::train::Preset;

    /// 60 rows, 3 features; the label is whether feature 0 + feature 1 > 1.
    fn data() -> Dataset {
        let mut values = Vec::new();
        let mut y = Vec::new();
        for r in 0..60 {
            let (a, b, c) = ((r % 7) as f32 / 6.0, (r % 5) as f32 / 4.0, (r % 3) as f32);
            values.extend([a, b, c]);
            y.push(((a + b) > 1.0) as u8 as f32);
        }
        Dataset {
            x: Features::Dense(DenseMatrix {
                rows: 60,
                cols: 3,
                values,
            }),
            y: Some(y),
            n_labels: 1,
            label_names: vec!["y".into()],
            feature_names: Some(vec!["a".into(), "b".into(), "c".into()]),
            source: "test".into(),
        }
    }

    #[test]
    fn partial_monotonicity_gets_the_monotone_recipe_unless_overridden() {
        let mut cfg = TrainConfig::new(vec![4], Preset::None);
        cfg.epochs = 2;
        let mut opts = FitOptions::new(cfg);
        opts.signs = Some(FeatureSigns::Monotone(vec![0, 2]));
        let resolved = opts.resolve(false).unwrap();
        assert_eq!(resolved.activation, Activation::Tanh);
        assert!(resolved.skip);
        let fitted = fit(&opts, &data(), None, &mut |_| {}).unwrap();
        let m = &fitted.model;
        assert_eq!(
            m.mlp.layers[0].kernel_constraints,
            vec![Constraint::NonNeg {
                rows: Some(vec![0, 2])
            }]
        );
        assert_eq!(
            m.mlp.layers[1].kernel_constraints,
            vec![Constraint::non_neg()]
        );
        assert_eq!(m.scaler.kind, ScaleKind::Log1pStandard);
        assert_eq!(m.feature_max, Some(vec![1.0, 1.0, 2.0]));
        assert_eq!(m.training["train_rows"], 60);
        assert_eq!(m.training["epochs_run"], 2);
        assert_eq!(m.training["scale"], "log1p_standard");

        opts.overrides = RecipeOverrides {
            activation: Some(Activation::Relu),
            skip: Some(false),
            weight_decay: Some(0.5),
        };
        opts.scale = Some(ScaleKind::None);
        let fitted = fit(&opts, &data(), None, &mut |_| {}).unwrap();
        let m = &fitted.model;
        assert_eq!(m.mlp.layers[0].activation, Activation::Relu);
        assert!(m.mlp.skip.is_none());
        assert_eq!(m.scaler.kind, ScaleKind::None);
        assert_eq!(m.training["optimizer"]["weight_decay"], 0.5);
    }
}
