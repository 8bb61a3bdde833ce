//! Autotune: a seeded search over the training settings scored on held-out data, then a
//! refit of the winner on all the training data.
//!
//! The candidates come in a fixed order from the seed: a short grid of settings that
//! measured well on the bundled and baseline data sets first, then seeded random samples of
//! the whole space. A time budget only decides how long a prefix of that sequence is tried
//! (checked between trials), and a trial bound makes the result exactly reproducible on any
//! machine: the same data, options, seed and bound give the same model bytes.

use super::cv::{rows_except, stratified_folds};
use super::{fit, FitOptions, Fitted};
use crate::data::{split, Dataset};
use crate::error::{Error, Result};
use crate::metrics;
use crate::model::scaler::ScaleKind;
use crate::model::Activation;
use crate::rng::Rng;
use crate::train::{is_monotone, Monitor, Preset};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Longest training of one trial; early stopping ends most far sooner.
pub const MAX_EPOCHS: usize = 100;
/// The false positive rate of [`TuneMetric::TprAtFpr`].
pub const TUNE_FPR: f64 = 0.01;

/// What the search maximises on the held-out data (mean over labels and folds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum TuneMetric {
    /// ROC AUC.
    #[serde(rename = "auc")]
    Auc,
    /// TPR at 1% FPR (ties broken by AUC).
    #[serde(rename = "tpr@fpr")]
    #[cfg_attr(feature = "cli", value(name = "tpr@fpr"))]
    TprAtFpr,
}

/// The search's time budget when neither a duration nor a trial bound is given.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(300);

/// How the search runs.
#[derive(Clone, Debug, PartialEq)]
pub struct AutotuneOptions {
    pub metric: TuneMetric,
    /// Start no trial after this much time (at least one trial always runs).
    pub budget: Option<Duration>,
    /// Run at most this many trials.
    pub trials: Option<usize>,
    /// Score on k stratified folds instead of one held-out split.
    pub folds: Option<usize>,
    /// The held-out fraction of the single split.
    pub valid_fraction: f64,
    /// Search the hidden layers, building each depth's constraints from this preset;
    /// `None`: keep the base configuration's layers and constraints.
    pub hidden_preset: Option<Preset>,
    /// Search hidden dropout (and, for sparse data, input dropout) instead of keeping the
    /// base configuration's rates. Off by default: on SpamAssassin's temporal validation
    /// split the search with it chose worse (docs/autotune.md).
    pub search_dropout: bool,
}

impl AutotuneOptions {
    pub fn new(metric: TuneMetric) -> Self {
        AutotuneOptions {
            metric,
            budget: None,
            trials: None,
            folds: None,
            valid_fraction: 0.2,
            hidden_preset: None,
            search_dropout: false,
        }
    }
}

/// One point of the search space. `None`: the recipe's choice for the constraints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub hidden: Vec<usize>,
    pub lr: f32,
    pub batch_size: usize,
    pub weight_decay: Option<f32>,
    pub patience: usize,
    pub activation: Option<Activation>,
    pub skip: Option<bool>,
    /// The input scaling (dense data only; `None`: the recipe's).
    pub scale: Option<ScaleKind>,
    /// Dropout on the hidden activations (0 without hidden layers).
    pub dropout: f32,
    /// Dropout on the input (sparse data only).
    pub input_dropout: f32,
}

impl Candidate {
    /// The settings in words (`hidden 64,32, lr 0.001, batch 128, patience 5, ...`).
    pub fn describe(&self) -> String {
        let hidden = if self.hidden.is_empty() {
            "none".to_string()
        } else {
            self.hidden
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut s = format!(
            "hidden {hidden}, lr {}, batch {}, patience {}",
            self.lr, self.batch_size, self.patience
        );
        if let Some(wd) = self.weight_decay {
            s += &format!(", weight decay {wd}");
        }
        if let Some(act) = self.activation {
            s += &format!(", activation {}", act.name());
        }
        if let Some(skip) = self.skip {
            s += &format!(", skip {}", if skip { "on" } else { "off" });
        }
        if let Some(scale) = self.scale {
            s += &format!(", scale {}", scale.name());
        }
        if self.dropout > 0.0 {
            s += &format!(", dropout {}", self.dropout);
        }
        if self.input_dropout > 0.0 {
            s += &format!(", input dropout {}", self.input_dropout);
        }
        s
    }
}

const HIDDEN: [&[usize]; 5] = [&[], &[32], &[64], &[64, 32], &[256, 64]];
const LR: [f32; 5] = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2];
const BATCH: [usize; 4] = [32, 64, 128, 512];
const DECAY: [f32; 5] = [0.0, 1e-5, 1e-4, 1e-3, 1e-2];
const PATIENCE: [usize; 3] = [3, 5, 10];
const ACTIVATION: [Activation; 3] = [Activation::Tanh, Activation::Mixed, Activation::Relu];
/// Dense data: the recipe's scaling, or the quantile transform (thresholds, as trees use).
const SCALE: [Option<ScaleKind>; 2] = [None, Some(ScaleKind::Quantile)];
const DROPOUT: [f32; 5] = [0.0, 0.1, 0.2, 0.3, 0.5];
/// Sparse data only: a dense value dropped to 0 is not "absent" but a value of its own.
const INPUT_DROPOUT: [f32; 4] = [0.0, 0.1, 0.2, 0.5];

/// What the caller fixed, and whether the recipe's monotone choices are searched.
struct Space {
    hidden: Option<Vec<usize>>,
    base_hidden: Vec<usize>,
    activation: Option<Activation>,
    skip: Option<bool>,
    weight_decay: Option<f32>,
    scale: Option<ScaleKind>,
    /// Dropout fixed by the caller.
    dropout: Option<f32>,
    input_dropout: Option<f32>,
    monotone: bool,
    /// Scalings are searched for dense data only (sparse data takes none that densify).
    dense: bool,
}

impl Space {
    fn new(base: &FitOptions, opts: &AutotuneOptions, monotone: bool, dense: bool) -> Self {
        let o = &base.overrides;
        Space {
            hidden: opts
                .hidden_preset
                .is_none()
                .then(|| base.config.hidden.clone()),
            base_hidden: base.config.hidden.clone(),
            activation: o.activation,
            skip: o.skip,
            weight_decay: o.weight_decay,
            scale: base.scale,
            dropout: Some(base.config.dropout).filter(|_| !opts.search_dropout),
            input_dropout: Some(base.config.input_dropout).filter(|_| !opts.search_dropout),
            monotone,
            dense,
        }
    }

    /// A candidate with the fixed choices imposed (and no skip without hidden layers).
    fn fix(&self, mut c: Candidate) -> Candidate {
        if let Some(h) = &self.hidden {
            c.hidden = h.clone();
        }
        if self.activation.is_some() || !self.monotone {
            c.activation = self.activation;
        }
        if self.skip.is_some() || !self.monotone {
            c.skip = self.skip;
        }
        if c.hidden.is_empty() && self.skip.is_none() {
            // Nothing to skip past, and no activation to choose: one candidate, not six.
            c.skip = None;
            c.activation = self.activation;
        }
        if self.weight_decay.is_some() {
            c.weight_decay = self.weight_decay;
        }
        if self.scale.is_some() || !self.dense {
            c.scale = self.scale;
        }
        if let Some(p) = self.dropout {
            c.dropout = p;
        }
        if c.hidden.is_empty() {
            c.dropout = 0.0;
        }
        c.input_dropout = match (self.input_dropout, self.dense) {
            (Some(p), _) => p,
            (None, true) => 0.0,
            (None, false) => c.input_dropout,
        };
        c
    }

    /// The grid tried first: the defaults with early stopping, then the settings that won
    /// on some baseline data set (docs/autotune.md).
    fn grid(&self) -> Vec<Candidate> {
        let c = |hidden: &[usize], lr: f32, batch_size: usize, wd: Option<f32>| Candidate {
            hidden: hidden.to_vec(),
            lr,
            batch_size,
            weight_decay: wd,
            patience: 5,
            activation: None,
            skip: None,
            scale: None,
            dropout: 0.0,
            input_dropout: 0.0,
        };
        let mut g = vec![
            c(&self.base_hidden, 1e-3, 128, None),
            c(&[], 1e-2, 128, None),
            c(&[64], 3e-3, 64, Some(1e-4)),
            c(&[], 3e-3, 32, Some(1e-4)),
            c(&[256, 64], 1e-3, 128, None),
        ];
        if self.monotone {
            let mut mixed = c(&self.base_hidden, 3e-3, 128, None);
            mixed.activation = Some(Activation::Mixed);
            let mut no_skip = c(&self.base_hidden, 1e-3, 128, None);
            no_skip.skip = Some(false);
            g.extend([mixed, no_skip]);
        }
        if self.dense {
            // Quantile inputs: the defaults, spambase's winner, the one-layer candidate.
            let quantile = [
                c(&self.base_hidden, 1e-3, 128, None),
                c(&[256, 64], 3e-3, 128, Some(1e-2)),
                c(&[64], 3e-3, 64, Some(1e-4)),
            ];
            g.extend(quantile.into_iter().map(|c| Candidate {
                scale: Some(ScaleKind::Quantile),
                ..c
            }));
        }
        // Dropout, when searched, as it measured on validation data (docs/autotune.md):
        // the defaults with half the hidden units dropped (SpamAssassin), and for sparse
        // data with some of the input dropped as well (SMS).
        if self.dropout.is_none() {
            g.push(Candidate {
                dropout: 0.5,
                ..c(&self.base_hidden, 1e-3, 128, None)
            });
        }
        if self.input_dropout.is_none() && !self.dense {
            g.push(Candidate {
                dropout: 0.3,
                input_dropout: 0.2,
                ..c(&self.base_hidden, 1e-3, 128, None)
            });
        }
        g
    }

    /// A random candidate: the dropout rates drawn from `drop_rng`, so the other
    /// dimensions' draws from `rng` are those of the search before dropout was searched.
    fn random(&self, rng: &mut Rng, drop_rng: &mut Rng) -> Candidate {
        let pick = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
        Candidate {
            hidden: HIDDEN[pick(rng, HIDDEN.len())].to_vec(),
            lr: LR[pick(rng, LR.len())],
            batch_size: BATCH[pick(rng, BATCH.len())],
            weight_decay: Some(DECAY[pick(rng, DECAY.len())]),
            patience: PATIENCE[pick(rng, PATIENCE.len())],
            activation: Some(ACTIVATION[pick(rng, ACTIVATION.len())]),
            skip: Some(pick(rng, 2) == 0),
            // No draw for sparse data: its candidate sequence stays what it was.
            scale: if self.dense {
                SCALE[pick(rng, SCALE.len())]
            } else {
                None
            },
            dropout: DROPOUT[pick(drop_rng, DROPOUT.len())],
            input_dropout: INPUT_DROPOUT[pick(drop_rng, INPUT_DROPOUT.len())],
        }
    }
}

/// The candidate sequence for `seed`: the grid, then random samples, fixed choices
/// imposed and repeats dropped, at most `limit` long.
fn candidates(space: &Space, seed: u64, limit: usize) -> Vec<Candidate> {
    let mut rng = Rng::new(seed ^ 0x4155_544F_5455_4E45);
    let mut drop_rng = Rng::new(seed ^ 0x4452_4F50_5455_4E45);
    let mut out: Vec<Candidate> = Vec::new();
    let mut grid = space.grid().into_iter();
    // Random draws until `limit` distinct candidates, or 50 draws in a row repeat.
    let mut repeats = 0;
    while out.len() < limit && repeats < 50 {
        let c = space.fix(
            grid.next()
                .unwrap_or_else(|| space.random(&mut rng, &mut drop_rng)),
        );
        if out.contains(&c) {
            repeats += 1;
        } else {
            repeats = 0;
            out.push(c);
        }
    }
    out
}

/// The fit options of `base` with `c`'s settings.
fn apply(base: &FitOptions, c: &Candidate, opts: &AutotuneOptions) -> FitOptions {
    let mut o = base.clone();
    if let Some(preset) = opts.hidden_preset {
        o.config.constraints = preset.layers(c.hidden.len() + 1);
    }
    o.config.hidden = c.hidden.clone();
    o.config.optimizer.lr = c.lr;
    o.config.batch_size = c.batch_size;
    o.overrides.weight_decay = c.weight_decay;
    o.overrides.activation = c.activation;
    o.overrides.skip = c.skip;
    o.scale = c.scale;
    o.config.dropout = c.dropout;
    o.config.input_dropout = c.input_dropout;
    o
}

/// One trial's outcome (means over labels and folds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trial {
    pub settings: Candidate,
    /// The searched metric; `None` when training failed (e.g. diverged).
    pub score: Option<f64>,
    pub auc: Option<f64>,
    pub tpr_at_fpr_1pct: Option<f64>,
    /// Mean best epoch over the folds, rounded: the refit's epoch count.
    pub best_epoch: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Trial {
    /// (metric, the other metric) for comparing trials.
    fn key(&self, metric: TuneMetric) -> Option<(f64, f64)> {
        let (a, t) = (self.auc?, self.tpr_at_fpr_1pct.unwrap_or(0.0));
        Some(match metric {
            TuneMetric::Auc => (a, t),
            TuneMetric::TprAtFpr => (t, a),
        })
    }
}

/// The search and the refit winner.
pub struct Tuned {
    pub fitted: Fitted,
    pub trials: Vec<Trial>,
    pub winner: usize,
}

/// What the caller hears: a trial about to start, or done.
pub enum TuneProgress<'a> {
    Start {
        trial: usize,
        settings: &'a Candidate,
    },
    Done {
        trial: usize,
        result: &'a Trial,
        seconds: f64,
    },
}

/// Trains and scores one candidate: up to [`MAX_EPOCHS`] with early stopping on the
/// held-out AUC; a failed training is a trial without a score.
fn evaluate(
    base: &FitOptions,
    c: &Candidate,
    opts: &AutotuneOptions,
    parts: &[(Dataset, Dataset)],
) -> Trial {
    let mut o = apply(base, c, opts);
    o.config.epochs = MAX_EPOCHS;
    o.config.patience = Some(c.patience);
    o.config.monitor = Monitor::Auc;
    o.config.threshold_fpr = None;
    // The search scores single models; only the refit trains the ensemble.
    o.ensemble = 1;
    let outcome = run_trial(&o, parts);
    let trial = Trial {
        settings: c.clone(),
        score: None,
        auc: outcome.as_ref().ok().map(|r| r.0),
        tpr_at_fpr_1pct: outcome.as_ref().ok().map(|r| r.1),
        best_epoch: outcome.as_ref().map_or(0, |r| r.2),
        error: outcome.as_ref().err().map(|e| e.to_string()),
    };
    Trial {
        score: trial.key(opts.metric).map(|k| k.0),
        ..trial
    }
}

/// Scores one candidate on every (train, held-out) part.
fn run_trial(o: &FitOptions, parts: &[(Dataset, Dataset)]) -> Result<(f64, f64, usize)> {
    let (mut auc, mut tpr, mut epochs) = (0.0, 0.0, 0.0);
    for (train, held) in parts {
        let f = fit(o, train, Some(held), &mut |_| {})?;
        let logits = f.model.logits(&held.x);
        let y = held.y.as_ref().expect("labelled");
        let l = held.n_labels;
        let (mut a, mut t) = (0.0, 0.0);
        for k in 0..l {
            let s = metrics::label_column(&logits, l, k);
            let yk = metrics::label_column(y, l, k);
            a += metrics::roc_auc(&s, &yk).unwrap_or(0.5);
            t += metrics::tpr_at_fpr(&s, &yk, TUNE_FPR).unwrap_or(0.0);
        }
        auc += a / l as f64;
        tpr += t / l as f64;
        epochs += f.report.best_epoch.unwrap_or(f.report.epochs.len()) as f64;
    }
    let n = parts.len() as f64;
    Ok((auc / n, tpr / n, (epochs / n).round().max(1.0) as usize))
}

/// The (train, held-out) parts the trials are scored on.
fn parts(
    data: &Dataset,
    valid: Option<&Dataset>,
    opts: &AutotuneOptions,
    seed: u64,
) -> Result<Vec<(Dataset, Dataset)>> {
    if let Some(v) = valid {
        return Ok(vec![(data.clone(), v.clone())]);
    }
    if let Some(k) = opts.folds {
        let folds = stratified_folds(data, k, seed)?;
        return Ok((0..k)
            .map(|f| {
                let train = split::subset(data, &rows_except(&folds, f));
                (train, split::subset(data, &folds[f]))
            })
            .collect());
    }
    let (tr, va) = split::stratified_split(data, opts.valid_fraction, seed)?;
    if tr.is_empty() || va.is_empty() {
        return Err(Error::invalid(format!(
            "a held-out fraction of {} leaves no rows on one side of {} rows",
            opts.valid_fraction,
            data.rows()
        )));
    }
    Ok(vec![(split::subset(data, &tr), split::subset(data, &va))])
}

/// Searches settings for `base` on held-out parts of `data` (or on `valid`, when given),
/// then refits the winner on all of `data` for its best epoch count (`valid` still sets
/// an FPR threshold). The model's `training.autotune` records every trial and the winner.
pub fn autotune(
    base: &FitOptions,
    data: &Dataset,
    valid: Option<&Dataset>,
    opts: &AutotuneOptions,
    progress: &mut dyn FnMut(TuneProgress),
) -> Result<Tuned> {
    if opts.trials == Some(0) {
        return Err(Error::invalid(
            "the number of autotune trials must be at least 1, got 0",
        ));
    }
    let seed = base.config.seed;
    let monotone = is_monotone(&base.resolve(data.x.is_sparse())?.constraints);
    let space = Space::new(base, opts, monotone, !data.x.is_sparse());
    let list = candidates(&space, seed, opts.trials.unwrap_or(1000));
    let parts = parts(data, valid, opts, seed)?;
    let start = Instant::now();
    let mut trials: Vec<Trial> = Vec::new();
    let mut winner: Option<usize> = None;
    for (i, c) in list.iter().enumerate() {
        if i > 0 && opts.budget.is_some_and(|b| start.elapsed() >= b) {
            break;
        }
        progress(TuneProgress::Start {
            trial: i,
            settings: c,
        });
        let t0 = Instant::now();
        let trial = evaluate(base, c, opts, &parts);
        progress(TuneProgress::Done {
            trial: i,
            result: &trial,
            seconds: t0.elapsed().as_secs_f64(),
        });
        let better = match (
            trial.key(opts.metric),
            winner.and_then(|w| trials[w].key(opts.metric)),
        ) {
            (Some(k), Some(best)) => k > best,
            (Some(_), None) => true,
            _ => false,
        };
        if better {
            winner = Some(i);
        }
        trials.push(trial);
    }
    let Some(w) = winner else {
        return Err(Error::invalid(format!(
            "every autotune trial failed; the first: {}",
            trials[0].error.as_deref().unwrap_or("?")
        )));
    };
    let mut o = apply(base, &trials[w].settings, opts);
    o.config.epochs = trials[w].best_epoch;
    o.config.patience = None;
    let mut fitted = fit(&o, data, valid, &mut |_| {})?;
    fitted.model.training["autotune"] = record(opts, &trials, w, parts.len(), valid.is_some())?;
    Ok(Tuned {
        fitted,
        trials,
        winner: w,
    })
}

/// The `training.autotune` record: how the search ran, every trial, the winner. No
/// timings, so a bounded search gives the same bytes on every machine.
fn record(
    opts: &AutotuneOptions,
    trials: &[Trial],
    winner: usize,
    parts: usize,
    given_valid: bool,
) -> Result<serde_json::Value> {
    let validation = if given_valid {
        "the given validation data".to_string()
    } else if parts > 1 {
        format!("{parts} stratified folds")
    } else {
        format!("stratified {}% held out", opts.valid_fraction * 100.0)
    };
    serde_json::to_value(serde_json::json!({
        "metric": opts.metric,
        "validation": validation,
        "max_epochs": MAX_EPOCHS,
        "trial_limit": opts.trials,
        "budget_seconds": opts.budget.map(|b| b.as_secs_f64()),
        "trials": trials,
        "winner": winner,
        "settings": trials[winner].settings,
        "epochs": trials[winner].best_epoch,
    }))
    .map_err(|e| Error::invalid(format!("autotune record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::TrainConfig;

    fn sequence(dense: bool, scale: Option<ScaleKind>) -> Vec<Candidate> {
        let mut base = FitOptions::new(TrainConfig::new(vec![64, 32], Preset::None));
        base.scale = scale;
        let mut opts = AutotuneOptions::new(TuneMetric::Auc);
        opts.hidden_preset = Some(Preset::None);
        candidates(&Space::new(&base, &opts, false, dense), 7, 40)
    }

    #[test]
    fn scalings_are_searched_for_dense_data_only_unless_fixed() {
        let dense = sequence(true, None);
        let quantile = |c: &&Candidate| c.scale == Some(ScaleKind::Quantile);
        // In the grid and among the random draws.
        assert!(dense[..8].iter().filter(quantile).count() == 3, "{dense:?}");
        assert!(dense[8..].iter().filter(quantile).count() >= 5, "{dense:?}");
        assert!(dense[8..].iter().any(|c| c.scale.is_none()), "{dense:?}");
        assert!(sequence(false, None).iter().all(|c| c.scale.is_none()));
        let fixed = sequence(true, Some(ScaleKind::Minmax));
        assert!(fixed.iter().all(|c| c.scale == Some(ScaleKind::Minmax)));
    }

    #[test]
    fn dropout_is_searched_only_when_asked_on_hidden_layers_and_sparse_inputs() {
        let space = |dense: bool, rates: (f32, f32), search: bool| {
            let mut base = FitOptions::new(TrainConfig::new(vec![64, 32], Preset::None));
            (base.config.dropout, base.config.input_dropout) = rates;
            let mut opts = AutotuneOptions::new(TuneMetric::Auc);
            opts.hidden_preset = Some(Preset::None);
            opts.search_dropout = search;
            candidates(&Space::new(&base, &opts, false, dense), 7, 40)
        };
        let (sparse, dense) = (
            space(false, (0.0, 0.0), true),
            space(true, (0.0, 0.0), true),
        );
        for seq in [&sparse, &dense] {
            assert!(seq.iter().any(|c| c.dropout > 0.0), "{seq:?}");
            assert!(seq.iter().any(|c| c.dropout == 0.0 && !c.hidden.is_empty()));
            assert!(seq.iter().all(|c| c.dropout == 0.0 || !c.hidden.is_empty()));
        }
        assert!(sparse.iter().any(|c| c.input_dropout > 0.0), "{sparse:?}");
        assert!(dense.iter().all(|c| c.input_dropout == 0.0));
        // Not asked: the caller's rates (0 or not) hold for every candidate with a hidden
        // layer, and the grid has no dropout entries (no duplicate trials).
        for rates in [(0.0, 0.0), (0.4, 0.3)] {
            let fixed = space(false, rates, false);
            assert!(
                fixed.iter().all(|c| c.input_dropout == rates.1),
                "{fixed:?}"
            );
            let hidden_rate = |c: &Candidate| if c.hidden.is_empty() { 0.0 } else { rates.0 };
            assert!(
                fixed.iter().all(|c| c.dropout == hidden_rate(c)),
                "{fixed:?}"
            );
        }
        assert_eq!(
            space(false, (0.0, 0.0), false)[..5],
            sequence(false, None)[..5]
        );
        assert!(sequence(false, None).iter().all(|c| c.dropout == 0.0));
    }
}
