//! The fit loop: epochs of shuffled batches, validation, early stopping with the best
//! epoch restored, and the decision thresholds.

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
    let loss = loss::mean_loss_and_grad(&logits, y, pos_weight, None);
    (loss, macro_auc(&logits, y, data.n_labels))
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

/// Trains a network on scaled data. `valid` (scaled the same way) drives early stopping
/// and the FPR threshold.
pub fn train(
    cfg: &TrainConfig,
    data: &Dataset,
    valid: Option<&Dataset>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Mlp, TrainReport)> {
    check(cfg, data, valid)?;
    let n = data.rows();
    let pos_weight = pos_weights(cfg, data)?;
    let mut shuffle_rng = Rng::new(cfg.seed ^ 0x5348_5546_464C_4521);
    let mlp = initial_network(cfg, data, &mut shuffle_rng)?;
    let mut trainer = Trainer::new(mlp, cfg);
    if cfg.robust.as_ref().is_some_and(|r| r.active()) {
        trainer.enable_robust(Threat::of_training_data(&trainer.mlp, &data.x));
    }
    let batches = n.div_ceil(cfg.batch_size);
    let total_steps = (batches * cfg.epochs) as u64;
    progress(Progress::Start {
        epochs: cfg.epochs,
        batches,
    });
    let start = Instant::now();
    let mut order: Vec<usize> = (0..n).collect();
    let mut epochs = Vec::new();
    let mut stopper = EarlyStopping::new(cfg);
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        shuffle_rng.shuffle(&mut order);
        let (train_loss, lr) = run_epoch(
            &mut trainer,
            data,
            &order,
            &pos_weight,
            epoch,
            total_steps,
            progress,
        )?;
        let (valid_loss, valid_auc) = match valid {
            Some(v) => {
                let (l, a) = validate(&trainer.mlp, v, &pos_weight);
                (Some(l), a)
            }
            None => (None, None),
        };
        let report = EpochReport {
            epoch: epoch + 1,
            train_loss,
            valid_loss,
            valid_auc,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(Progress::Epoch(&report));
        let stop = stopper.observe(&report, &trainer.mlp);
        epochs.push(report);
        if stop {
            break;
        }
    }
    let best_epoch = stopper.best.as_ref().map(|b| b.0);
    let mlp = match stopper.best {
        Some((_, _, m)) => m,
        None => trainer.mlp,
    };
    let threshold = match (cfg.threshold_fpr, valid) {
        (Some(fpr), Some(v)) => fpr_thresholds(&mlp, v, fpr)?,
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

/// The network before the first step: built, initialised, and with its biases centred on
/// 1,024 shuffled training rows (the first draw of the shuffle stream).
fn initial_network(cfg: &TrainConfig, data: &Dataset, shuffle_rng: &mut Rng) -> Result<Mlp> {
    let mut mlp = build_network(cfg, data.x.cols(), data.x.is_sparse(), data.n_labels)?;
    if cfg.center_bias {
        let mut order: Vec<usize> = (0..data.rows()).collect();
        shuffle_rng.shuffle(&mut order);
        order.truncate(1024);
        center_biases(&mut mlp, &data.x, &order);
    }
    Ok(mlp)
}

/// The checks on the config and data that need no network.
fn check(cfg: &TrainConfig, data: &Dataset, valid: Option<&Dataset>) -> Result<()> {
    cfg.optimizer.validate()?;
    if cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(Error::invalid(format!(
            "the batch size and the number of epochs must be at least 1 (got {} and {})",
            cfg.batch_size, cfg.epochs
        )));
    }
    if data.rows() == 0 {
        return Err(Error::invalid("training data has no rows"));
    }
    if let Some(r) = &cfg.robust {
        r.validate(&cfg.hidden, cfg.activation)?;
    }
    if cfg.threshold_fpr.is_some() && valid.is_none() {
        return Err(Error::invalid(
            "a threshold for a target FPR needs validation data",
        ));
    }
    if cfg.monitor == Monitor::Auc && cfg.patience.is_some() && valid.is_none() {
        return Err(Error::invalid("early stopping needs validation data"));
    }
    Ok(())
}

/// One pass over the shuffled `order` in batches. Returns the mean training loss and the
/// last learning rate.
fn run_epoch(
    trainer: &mut Trainer,
    data: &Dataset,
    order: &[usize],
    pos_weight: &[f32],
    epoch: usize,
    total_steps: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<(f64, f32)> {
    let cfg = trainer.config();
    let mut loss_sum = 0f64;
    let mut lr = cfg.optimizer.lr;
    let batches = order.len().div_ceil(cfg.batch_size);
    let warmup = cfg.robust.as_ref().map_or(0, |r| r.warmup_epochs * batches);
    for (bi, chunk) in order.chunks(cfg.batch_size).enumerate() {
        if warmup > 0 {
            trainer.set_ramp((epoch * batches + bi + 1) as f32 / warmup as f32);
        }
        lr = cfg
            .schedule
            .lr(cfg.optimizer.lr, epoch, trainer.step, total_steps);
        let loss = trainer.step(data, chunk, pos_weight, lr);
        if !loss.is_finite() {
            return Err(Error::invalid(format!(
                "training diverged (loss {loss}) in epoch {}: try a lower learning rate or gradient clipping",
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
    Ok((loss_sum / order.len() as f64, lr))
}

/// Early stopping: keeps the best epoch's network by the monitored validation metric and
/// says when `patience` epochs have passed without improvement.
struct EarlyStopping {
    patience: Option<usize>,
    monitor: Monitor,
    /// (epoch, score, network) of the best epoch so far.
    best: Option<(usize, f64, Mlp)>,
    since_best: usize,
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
fn fpr_thresholds(mlp: &Mlp, v: &Dataset, fpr: f64) -> Result<Vec<f32>> {
    let logits = mlp.logits(&v.x);
    let y = v.y.as_ref().expect("validation data has labels");
    let l = v.n_labels;
    (0..l)
        .map(|k| {
            let s = metrics::label_column(&logits, l, k);
            let t = metrics::label_column(y, l, k);
            metrics::threshold_for_fpr(&s, &t, fpr).ok_or_else(|| {
                Error::invalid(
                    "no threshold for a target FPR: the validation data has no negatives",
                )
            })
        })
        .collect()
}
