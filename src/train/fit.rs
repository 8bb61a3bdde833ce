//! The fit loop: epochs of shuffled batches, validation, early stopping with the best
//! epoch restored, and the decision thresholds.

use super::checkpoint::{Checkpoints, Plan};
use super::config::{pos_weights, Monitor, TrainConfig};
use super::network::{build_network, center_biases};
use super::robust::Threat;
use super::trainer::Trainer;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::loss;
use crate::metrics;
use crate::model::Mlp;
use crate::rng::Rng;
use serde::Serialize;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

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

impl EpochReport {
    /// The epoch in one line, as `train` and the Python `verbose` print it.
    pub fn line(&self) -> String {
        let valid = match (self.valid_loss, self.valid_auc) {
            (Some(l), Some(a)) => format!(", valid loss {l:.4}, valid AUC {a:.4}"),
            (Some(l), None) => format!(", valid loss {l:.4}"),
            _ => String::new(),
        };
        format!(
            "epoch {:>3}: train loss {:.4}{valid} ({:.1}s)",
            self.epoch, self.train_loss, self.seconds
        )
    }
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

/// Mean loss and macro AUC of `mlp` on labelled, scaled data.
pub fn validate(mlp: &Mlp, data: &Dataset, pos_weight: &[f32]) -> (f64, Option<f64>) {
    let logits = mlp.logits(&data.x);
    let y = data.y.as_ref().expect("labels");
    loss_and_auc(&logits, y, data.n_labels, pos_weight)
}

/// Mean loss and macro AUC of `logits` against `y` (both `[rows x labels]`).
fn loss_and_auc(
    logits: &[f32],
    y: &[f32],
    labels: usize,
    pos_weight: &[f32],
) -> (f64, Option<f64>) {
    let loss = loss::mean_loss_and_grad(logits, y, pos_weight, None);
    (loss, macro_auc(logits, y, labels))
}

/// Where a run's batches come from: a data set in memory, or shards streamed from disk
/// (`crate::data::stream`). A source yields each epoch's rows in `size`-row batches.
pub trait BatchSource {
    /// Rows in an epoch.
    fn rows(&self) -> usize;
    /// Input width, whether sparse, and the number of labels.
    fn shape(&self) -> (usize, bool, usize);
    /// The per-label positive weights of `cfg` on these rows.
    fn pos_weights(&self, cfg: &TrainConfig) -> Result<Vec<f32>>;
    /// The largest (scaled) value of each feature: verified training's threat.
    fn feature_max(&self) -> Vec<f32>;
    /// The rows bias centring draws its 1,024 rows from (at random, by the shuffle stream).
    fn first_rows(&mut self) -> Result<Cow<'_, Dataset>>;
    /// The length of the row order the shuffle stream permutes.
    fn order_len(&self) -> usize;
    /// Starts an epoch whose row order is drawn from `rng`.
    fn start_epoch(&mut self, order: &mut [usize], rng: &mut Rng) -> Result<()>;
    /// Batch `bi` of the epoch: the data holding it and its rows there.
    fn batch<'a>(
        &'a mut self,
        order: &'a mut [usize],
        rng: &mut Rng,
        bi: usize,
        size: usize,
    ) -> Result<(&'a Dataset, &'a [usize])>;
}

/// Validation data: in memory, or streamed.
pub trait ValidSource {
    /// The logits of `mlp` on every validation row, and their labels.
    fn score(&mut self, mlp: &Mlp) -> Result<(Vec<f32>, Vec<f32>)>;
}

/// Data in memory: each epoch shuffles the previous epoch's order.
struct InMemory<'d>(&'d Dataset);

impl BatchSource for InMemory<'_> {
    fn rows(&self) -> usize {
        self.0.rows()
    }
    fn shape(&self) -> (usize, bool, usize) {
        (self.0.x.cols(), self.0.x.is_sparse(), self.0.n_labels)
    }
    fn pos_weights(&self, cfg: &TrainConfig) -> Result<Vec<f32>> {
        pos_weights(cfg, self.0)
    }
    fn feature_max(&self) -> Vec<f32> {
        crate::pipeline::feature_max(&self.0.x)
    }
    fn first_rows(&mut self) -> Result<Cow<'_, Dataset>> {
        Ok(Cow::Borrowed(self.0))
    }
    fn order_len(&self) -> usize {
        self.0.rows()
    }
    fn start_epoch(&mut self, order: &mut [usize], rng: &mut Rng) -> Result<()> {
        rng.shuffle(order);
        Ok(())
    }
    fn batch<'a>(
        &'a mut self,
        order: &'a mut [usize],
        _: &mut Rng,
        bi: usize,
        size: usize,
    ) -> Result<(&'a Dataset, &'a [usize])> {
        let end = order.len().min((bi + 1) * size);
        Ok((self.0, &order[bi * size..end]))
    }
}

impl ValidSource for &Dataset {
    fn score(&mut self, mlp: &Mlp) -> Result<(Vec<f32>, Vec<f32>)> {
        let y = self.y.clone().expect("validation data has labels");
        Ok((mlp.logits(&self.x), y))
    }
}

/// Mean ROC AUC over labels that have both classes.
pub fn macro_auc(logits: &[f32], y: &[f32], labels: usize) -> Option<f64> {
    let aucs: Vec<f64> = (0..labels)
        .filter_map(|k| {
            let s = metrics::label_column(logits, labels, k);
            let t = metrics::label_column(y, labels, k);
            metrics::roc_auc(&s, &t)
        })
        .collect();
    if aucs.is_empty() {
        None
    } else {
        Some(aucs.iter().sum::<f64>() / aucs.len() as f64)
    }
}

/// What steers a run from outside.
#[derive(Clone, Debug, Default)]
pub struct Control {
    /// Set (from another thread or a signal handler) to stop before the next batch with
    /// [`Error::Interrupted`], after saving a checkpoint when there are checkpoints;
    /// unset, a run is the same to the bit as without it.
    pub stop: Option<Arc<AtomicBool>>,
    /// Save the run's state as it goes, and start from the saved state.
    pub checkpoint: Option<Plan>,
}

/// What the batch loop checks around each batch: the stop flag, the checkpoints.
struct Hooks<'a> {
    stop: Option<&'a AtomicBool>,
    saver: Option<&'a Checkpoints<'a>>,
}

/// Where a run stands between two batches: with the trainer, all it needs to go on.
pub(super) struct Position {
    /// The current epoch (0-based).
    pub(super) epoch: usize,
    /// The next batch of the epoch; 0: the epoch's shuffle is still to be drawn.
    pub(super) batch: usize,
    /// The epoch's shuffled row order (each epoch shuffles the previous one's).
    pub(super) order: Vec<usize>,
    /// The epoch's training loss so far, summed over rows.
    pub(super) loss_sum: f64,
    /// The last batch's learning rate.
    pub(super) lr: f32,
    pub(super) shuffle_rng: Rng,
    pub(super) epochs: Vec<EpochReport>,
    pub(super) stopper: EarlyStopping,
}

/// Trains a network on scaled data. `valid` (scaled the same way) drives early stopping
/// and the FPR threshold.
pub fn train(
    cfg: &TrainConfig,
    data: &Dataset,
    valid: Option<&Dataset>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Mlp, TrainReport)> {
    train_with(cfg, data, valid, &Control::default(), progress)
}

/// [`train`] under `control`.
pub fn train_with(
    cfg: &TrainConfig,
    data: &Dataset,
    valid: Option<&Dataset>,
    control: &Control,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Mlp, TrainReport)> {
    check(cfg, data.rows(), valid.is_some())?;
    let saver = match &control.checkpoint {
        Some(plan) => Some(Checkpoints::new(plan, cfg, data, valid)?),
        None => None,
    };
    let mut valid = valid;
    let valid = valid.as_mut().map(|v| v as &mut dyn ValidSource);
    let hooks = Hooks {
        stop: control.stop.as_deref(),
        saver: saver.as_ref(),
    };
    train_on(cfg, &mut InMemory(data), valid, &hooks, progress)
}

/// [`train`] on batches from `source` (streamed shards), validating on `valid`; with a
/// stop flag, no checkpoints (a streamed run's position is not saved).
pub fn train_source(
    cfg: &TrainConfig,
    source: &mut dyn BatchSource,
    valid: Option<&mut dyn ValidSource>,
    stop: Option<&AtomicBool>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Mlp, TrainReport)> {
    check(cfg, source.rows(), valid.is_some())?;
    let hooks = Hooks { stop, saver: None };
    train_on(cfg, source, valid, &hooks, progress)
}

/// The run: the initial network, the epochs, the best one, the thresholds.
fn train_on(
    cfg: &TrainConfig,
    source: &mut dyn BatchSource,
    mut valid: Option<&mut dyn ValidSource>,
    hooks: &Hooks,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Mlp, TrainReport)> {
    let n = source.rows();
    let pos_weight = source.pos_weights(cfg)?;
    let mut shuffle_rng = Rng::new(cfg.seed ^ 0x5348_5546_464C_4521);
    let mlp = initial_network(cfg, source, &mut shuffle_rng)?;
    let mut trainer = Trainer::new(mlp, cfg);
    if cfg.robust.as_ref().is_some_and(|r| r.active()) {
        trainer.enable_robust(Threat::new(&trainer.mlp.layers[0], source.feature_max()));
    }
    let mut pos = Position {
        epoch: 0,
        batch: 0,
        order: (0..source.order_len()).collect(),
        loss_sum: 0.0,
        lr: cfg.optimizer.lr,
        shuffle_rng,
        epochs: Vec::new(),
        stopper: EarlyStopping::new(cfg),
    };
    if let Some(s) = hooks.saver {
        s.restore(&mut trainer, &mut pos)?;
    }
    progress(Progress::Start {
        epochs: cfg.epochs,
        batches: n.div_ceil(cfg.batch_size),
    });
    let start = Instant::now();
    while pos.epoch < cfg.epochs {
        let t0 = Instant::now();
        if pos.batch == 0 {
            source.start_epoch(&mut pos.order, &mut pos.shuffle_rng)?;
            pos.loss_sum = 0.0;
        }
        run_epoch(&mut trainer, source, &mut pos, &pos_weight, hooks, progress)?;
        if end_epoch(&trainer, n, &mut valid, &mut pos, &pos_weight, t0, progress)? {
            break;
        }
    }
    let best_epoch = pos.stopper.best.as_ref().map(|b| b.0);
    let mlp = match pos.stopper.best {
        Some((_, _, m)) => m,
        None => trainer.mlp,
    };
    let threshold = match (cfg.threshold_fpr, valid) {
        (Some(fpr), Some(v)) => fpr_thresholds(&mlp, v, fpr)?,
        _ => vec![0.0; source.shape().2],
    };
    Ok((
        mlp,
        TrainReport {
            epochs: pos.epochs,
            best_epoch,
            pos_weight,
            threshold,
            seconds: start.elapsed().as_secs_f64(),
        },
    ))
}

/// The end of an epoch whose batches are done: validation, the report, early stopping.
/// Moves `pos` to the next epoch; returns whether to stop.
fn end_epoch(
    trainer: &Trainer,
    rows: usize,
    valid: &mut Option<&mut dyn ValidSource>,
    pos: &mut Position,
    pos_weight: &[f32],
    t0: Instant,
    progress: &mut dyn FnMut(Progress),
) -> Result<bool> {
    let (valid_loss, valid_auc) = match valid {
        Some(v) => {
            let (logits, y) = v.score(&trainer.mlp)?;
            let labels = trainer.mlp.n_labels();
            let (l, a) = loss_and_auc(&logits, &y, labels, pos_weight);
            (Some(l), a)
        }
        None => (None, None),
    };
    let report = EpochReport {
        epoch: pos.epoch + 1,
        train_loss: pos.loss_sum / rows as f64,
        valid_loss,
        valid_auc,
        lr: pos.lr,
        seconds: t0.elapsed().as_secs_f64(),
    };
    progress(Progress::Epoch(&report));
    let stop = pos.stopper.observe(&report, &trainer.mlp);
    pos.epochs.push(report);
    pos.epoch += 1;
    pos.batch = 0;
    Ok(stop)
}

/// The network before the first step: built, initialised, and with its biases centred on
/// 1,024 shuffled rows of the source's first rows (the first draw of the shuffle stream).
fn initial_network(
    cfg: &TrainConfig,
    source: &mut dyn BatchSource,
    shuffle_rng: &mut Rng,
) -> Result<Mlp> {
    let (cols, sparse, labels) = source.shape();
    let mut mlp = build_network(cfg, cols, sparse, labels)?;
    if cfg.center_bias {
        let data = source.first_rows()?;
        let mut order: Vec<usize> = (0..data.rows()).collect();
        shuffle_rng.shuffle(&mut order);
        order.truncate(1024);
        center_biases(&mut mlp, &data.x, &order);
    }
    Ok(mlp)
}

/// The checks on the config and data that need no network.
fn check(cfg: &TrainConfig, rows: usize, valid: bool) -> Result<()> {
    cfg.optimizer.validate()?;
    if cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(Error::invalid(format!(
            "the batch size and the number of epochs must be at least 1 (got {} and {})",
            cfg.batch_size, cfg.epochs
        )));
    }
    if rows == 0 {
        return Err(Error::invalid("training data has no rows"));
    }
    if let Some(r) = &cfg.robust {
        r.validate(&cfg.hidden, cfg.activation)?;
    }
    #[cfg(feature = "distributed")]
    let distributed = super::distributed::Reducer::if_active().is_some();
    #[cfg(not(feature = "distributed"))]
    let distributed = false;
    super::dropout::check_supported(cfg, distributed)?;
    if cfg.threshold_fpr.is_some() && !valid {
        return Err(Error::invalid(
            "a threshold for a target FPR needs validation data",
        ));
    }
    if cfg.monitor == Monitor::Auc && cfg.patience.is_some() && !valid {
        return Err(Error::invalid("early stopping needs validation data"));
    }
    Ok(())
}

/// The epoch's batches from `pos.batch` on, adding to `pos.loss_sum`; checks the stop
/// flag before each and saves the checkpoints due after each.
fn run_epoch(
    trainer: &mut Trainer,
    source: &mut dyn BatchSource,
    pos: &mut Position,
    pos_weight: &[f32],
    hooks: &Hooks,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let cfg = trainer.config();
    let (n, size) = (source.rows(), cfg.batch_size);
    let batches = n.div_ceil(size);
    let total_steps = (batches * cfg.epochs) as u64;
    let warmup = cfg.robust.as_ref().map_or(0, |r| r.warmup_epochs * batches);
    let epoch = pos.epoch;
    while pos.batch < batches {
        if hooks.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            // Save where the run stands (batch 0 is the last epoch's end, saved already).
            if let Some(s) = hooks.saver.filter(|_| pos.batch > 0) {
                s.save(trainer, pos)?;
            }
            return Err(Error::Interrupted);
        }
        let bi = pos.batch;
        if warmup > 0 {
            trainer.set_ramp((epoch * batches + bi + 1) as f32 / warmup as f32);
        }
        let lr = cfg
            .schedule
            .lr(cfg.optimizer.lr, epoch, trainer.step, total_steps);
        pos.lr = lr;
        let (data, chunk) = source.batch(&mut pos.order, &mut pos.shuffle_rng, bi, size)?;
        let loss = trainer.step(data, chunk, pos_weight, lr);
        if !loss.is_finite() {
            return Err(Error::invalid(format!(
                "training diverged (loss {loss}) in epoch {}: try a lower learning rate or gradient clipping",
                epoch + 1
            )));
        }
        pos.loss_sum += loss * trainer.batch_rows() as f64;
        pos.batch += 1;
        if let Some(s) = hooks
            .saver
            .filter(|s| s.due(trainer.step, pos.batch == batches))
        {
            s.save(trainer, pos)?;
        }
        progress(Progress::Batch {
            epoch,
            batch: bi,
            loss,
        });
    }
    Ok(())
}

/// Early stopping: keeps the best epoch's network by the monitored validation metric and
/// says when `patience` epochs have passed without improvement.
pub(super) struct EarlyStopping {
    patience: Option<usize>,
    monitor: Monitor,
    /// (epoch, score, network) of the best epoch so far.
    pub(super) best: Option<(usize, f64, Mlp)>,
    pub(super) since_best: usize,
}

impl EarlyStopping {
    fn new(cfg: &TrainConfig) -> Self {
        EarlyStopping {
            patience: cfg.patience,
            monitor: cfg.monitor,
            best: None,
            since_best: 0,
        }
    }

    /// Records an epoch; returns whether to stop.
    fn observe(&mut self, r: &EpochReport, mlp: &Mlp) -> bool {
        let (Some(patience), Some(vl)) = (self.patience, r.valid_loss) else {
            return false;
        };
        let score = match self.monitor {
            Monitor::Loss => -vl,
            Monitor::Auc => r.valid_auc.unwrap_or(f64::NEG_INFINITY),
        };
        if self.best.as_ref().is_none_or(|b| score > b.1) {
            self.best = Some((r.epoch, score, mlp.clone()));
            self.since_best = 0;
            false
        } else {
            self.since_best += 1;
            self.since_best >= patience
        }
    }
}

/// Per-label logit thresholds for false positive rate `fpr` on validation data.
fn fpr_thresholds(mlp: &Mlp, v: &mut dyn ValidSource, fpr: f64) -> Result<Vec<f32>> {
    let (logits, y) = v.score(mlp)?;
    metrics::thresholds_for_fpr(&logits, &y, mlp.n_labels(), fpr).ok_or_else(|| {
        Error::invalid("no threshold for a target FPR: the validation data has no negatives")
    })
}
