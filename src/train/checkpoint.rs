//! Checkpoints: a run's whole state between two batches in one file,
//! `DIR/checkpoint.safetensors`: the network, the optimizer's state and the early-stopping
//! best network as float32 tensors, the epoch's row order as U64, and a JSON header (under
//! the `__metadata__` key `nonneg-checkpoint`) with the position, the shuffle generator,
//! the schedule's step, the epochs' reports and a fingerprint of the data and options.
//! Floats in the header are stored as their bits, so a resumed run continues bit for bit.
//! Written atomically ([`crate::atomic`]): a kill during a save leaves the previous one.
//!
//! A run kept whole ([`train_kept`], an ensemble's members) also saves its result when it
//! ends, `DIR/finished.safetensors` (network and report, same fingerprint), so a resume
//! returns it without training it again; each member of an ensemble has its own folder.

use super::config::TrainConfig;
use super::fit::{Control, TrainReport};
use super::fit::{EpochReport, Position};
use super::trainer::Trainer;
use crate::data::{Dataset, Features};
use crate::error::{Error, Result};
use crate::features::fnv1a64;
use crate::model::Mlp;
use crate::rng::Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const FORMAT: &str = "nonneg-checkpoint";
const VERSION: u32 = 1;
const FILE: &str = "checkpoint.safetensors";
const FINISHED_FORMAT: &str = "nonneg-finished-run";
const FINISHED: &str = "finished.safetensors";

/// Where and how often a run saves its state, and whether it starts from the saved one.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The folder holding the checkpoint (created when missing).
    pub dir: PathBuf,
    /// Save after every this many batches (counted over the whole run); `None`: after
    /// each epoch's last batch.
    pub every: Option<usize>,
    /// Continue from the checkpoint in `dir` when there is one (a fresh start when not).
    pub resume: bool,
    /// What else the checkpoint must agree on, besides the training configuration and
    /// data (e.g. the input scaling and the names in the model): resuming under another
    /// value is refused.
    pub context: String,
}

impl Plan {
    /// The checkpoint file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Member `j` of an ensemble: its own folder `DIR/member-J` (checkpoint and result).
    pub fn member(&self, j: usize) -> Plan {
        Plan {
            dir: self.dir.join(format!("member-{j}")),
            ..self.clone()
        }
    }

    /// The file holding the run's result once it has ended ([`train_kept`]).
    pub fn finished_path(&self) -> PathBuf {
        self.dir.join(FINISHED)
    }
}

/// [`super::train_with`] keeping the result: with checkpoints, the finished run is saved
/// beside its checkpoint, and a resume returns it (refused, as a checkpoint is, when made
/// with other data or options) without training again. An ensemble trains its members so:
/// a resumed ensemble skips the members already trained.
pub fn train_kept(
    cfg: &TrainConfig,
    data: &Dataset,
    valid: Option<&Dataset>,
    control: &Control,
    progress: &mut dyn FnMut(super::Progress),
) -> Result<(Mlp, TrainReport)> {
    let Some(plan) = &control.checkpoint else {
        return super::train_with(cfg, data, valid, control, progress);
    };
    let saver = Checkpoints::new(plan, cfg, data, valid)?;
    if plan.resume {
        let template =
            || super::build_network(cfg, data.x.cols(), data.x.is_sparse(), data.n_labels);
        if let Some(done) = saver.load_finished(template)? {
            return Ok(done);
        }
    }
    let run = super::train_with(cfg, data, valid, control, progress)?;
    saver.save_finished(&run.0, &run.1)?;
    Ok(run)
}

/// The header of a finished run's file: its report, floats as bits.
#[derive(Serialize, Deserialize)]
struct Finished {
    version: u32,
    fingerprint: String,
    epochs: Vec<SavedEpoch>,
    best_epoch: Option<usize>,
    pos_weight: Vec<u32>,
    threshold: Vec<u32>,
    seconds: f64,
}

/// A plan bound to one run: its fingerprint of the data and options.
pub(super) struct Checkpoints<'p> {
    plan: &'p Plan,
    fingerprint: String,
}

/// An epoch's report with its floats as bits.
#[derive(Serialize, Deserialize)]
struct SavedEpoch {
    epoch: usize,
    train_loss: u64,
    valid_loss: Option<u64>,
    valid_auc: Option<u64>,
    lr: u32,
    seconds: f64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    fingerprint: String,
    epoch: usize,
    batch: usize,
    step: u64,
    loss_sum: u64,
    lr: u32,
    rng: [u64; 4],
    /// The dropout generator's state, when the run drops anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropout_rng: Option<[u64; 4]>,
    epochs: Vec<SavedEpoch>,
    /// The best epoch and its score's bits, when early stopping has one.
    best: Option<(usize, u64)>,
    since_best: usize,
}

impl<'p> Checkpoints<'p> {
    /// Checks `plan` and binds it to this run's configuration and data.
    pub(super) fn new(
        plan: &'p Plan,
        cfg: &TrainConfig,
        data: &Dataset,
        valid: Option<&Dataset>,
    ) -> Result<Self> {
        if plan.every == Some(0) {
            return Err(Error::invalid(
                "the `checkpoint_every` option must be at least 1 batch, got 0",
            ));
        }
        std::fs::create_dir_all(&plan.dir).map_err(|e| Error::io(&plan.dir, e))?;
        let cfg = serde_json::to_string(cfg)
            .map_err(|e| Error::invalid(format!("cannot serialise the configuration: {e}")))?;
        let mut parts = vec![fnv1a64(cfg.as_bytes()), fnv1a64(plan.context.as_bytes())];
        for d in std::iter::once(Some(data)).chain([valid]) {
            parts.extend(d.map_or(vec![0], dataset_hashes));
        }
        let bytes: Vec<u8> = parts.iter().flat_map(|h| h.to_le_bytes()).collect();
        Ok(Checkpoints {
            plan,
            fingerprint: format!("{:016x}", fnv1a64(&bytes)),
        })
    }

    /// Whether to save now, after a batch: `step` batches done in all, the epoch's last
    /// when `epoch_done`.
    pub(super) fn due(&self, step: u64, epoch_done: bool) -> bool {
        match self.plan.every {
            Some(n) => step % n as u64 == 0,
            None => epoch_done,
        }
    }

    /// Saves the run's state (atomically); under MPI, rank 0 alone.
    pub(super) fn save(&self, trainer: &mut Trainer, pos: &Position) -> Result<()> {
        #[cfg(feature = "distributed")]
        if !super::distributed::writes_files() {
            return Ok(());
        }
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            fingerprint: self.fingerprint.clone(),
            epoch: pos.epoch,
            batch: pos.batch,
            step: trainer.step,
            loss_sum: pos.loss_sum.to_bits(),
            lr: pos.lr.to_bits(),
            rng: pos.shuffle_rng.state(),
            dropout_rng: super::dropout::active(trainer.config())
                .then(|| trainer.dropout_rng.state()),
            epochs: pos.epochs.iter().map(saved_epoch).collect(),
            best: pos.stopper.best.as_ref().map(|b| (b.0, b.1.to_bits())),
            since_best: pos.stopper.since_best,
        };
        let json = serde_json::to_string(&header).map_err(|e| Error::invalid(e.to_string()))?;
        let mut tensors = Vec::new();
        put(&mut tensors, mlp_tensors("net", &mut trainer.mlp));
        put(&mut tensors, trainer.optimizer_tensors());
        if let Some((_, _, best)) = &pos.stopper.best {
            put(&mut tensors, mlp_tensors("best", &mut best.clone()));
        }
        let order: Vec<u8> = pos
            .order
            .iter()
            .flat_map(|&r| (r as u64).to_le_bytes())
            .collect();
        tensors.push(("order".into(), Dtype::U64, order));
        write(&self.plan.path(), FORMAT, json, &tensors)
    }

    /// Saves the finished run's network and report (atomically).
    fn save_finished(&self, mlp: &Mlp, report: &TrainReport) -> Result<()> {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect();
        let header = Finished {
            version: VERSION,
            fingerprint: self.fingerprint.clone(),
            epochs: report.epochs.iter().map(saved_epoch).collect(),
            best_epoch: report.best_epoch,
            pos_weight: bits(&report.pos_weight),
            threshold: bits(&report.threshold),
            seconds: report.seconds,
        };
        let json = serde_json::to_string(&header).map_err(|e| Error::invalid(e.to_string()))?;
        let mut tensors = Vec::new();
        put(&mut tensors, mlp_tensors("net", &mut mlp.clone()));
        write(&self.plan.finished_path(), FINISHED_FORMAT, json, &tensors)
    }

    /// The finished run saved for this plan, if there is one, its network's tensors read
    /// into `template()` (the run's initial network).
    fn load_finished(
        &self,
        template: impl FnOnce() -> Result<Mlp>,
    ) -> Result<Option<(Mlp, TrainReport)>> {
        let path = self.plan.finished_path();
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let h: Finished = read_header(&bytes, FINISHED_FORMAT, &path)?;
        if h.version != VERSION {
            let msg = format!("unknown finished-run format {}", h.version);
            return Err(Error::format(&path, msg));
        }
        self.check_fingerprint(&h.fingerprint, &path)?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::format(&path, format!("not a valid safetensors file ({e})")))?;
        let mut mlp = template()?;
        take(&st, mlp_tensors("net", &mut mlp), &path)?;
        let floats = |v: &[u32]| v.iter().map(|&b| f32::from_bits(b)).collect();
        let report = TrainReport {
            epochs: h.epochs.iter().map(epoch_report).collect(),
            best_epoch: h.best_epoch,
            pos_weight: floats(&h.pos_weight),
            threshold: floats(&h.threshold),
            seconds: h.seconds,
        };
        Ok(Some((mlp, report)))
    }

    /// Refuses a file saved by a run with another fingerprint.
    fn check_fingerprint(&self, saved: &str, path: &Path) -> Result<()> {
        if saved == self.fingerprint {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "the checkpoint {} was made with other data or options (fingerprint {saved}, \
             this run's {}): resume with the same data and options, or use another folder",
            path.display(),
            self.fingerprint
        )))
    }

    /// Restores the saved state into a freshly started `trainer` and `pos`, when the plan
    /// resumes and a checkpoint exists. Returns whether one was restored.
    pub(super) fn restore(&self, trainer: &mut Trainer, pos: &mut Position) -> Result<bool> {
        let path = self.plan.path();
        if !self.plan.resume || !path.exists() {
            return Ok(false);
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let bad = |msg: String| Error::format(&path, msg);
        let h: Header = read_header(&bytes, FORMAT, &path)?;
        if h.format != FORMAT || h.version != VERSION {
            return Err(bad(format!(
                "unknown checkpoint format {} {}",
                h.format, h.version
            )));
        }
        self.check_fingerprint(&h.fingerprint, &path)?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
        restore_position(&h, &st, trainer.config(), pos, &path)?;
        take(&st, mlp_tensors("net", &mut trainer.mlp), &path)?;
        take(&st, trainer.optimizer_tensors(), &path)?;
        trainer.step = h.step;
        match (h.dropout_rng, super::dropout::active(trainer.config())) {
            (Some(state), true) => {
                trainer.dropout_rng = Rng::from_state(state)
                    .ok_or_else(|| bad("the dropout generator state is all zero".into()))?;
            }
            (None, false) => {}
            _ => {
                return Err(bad(
                    "the dropout generator's state does not match the run".into()
                ))
            }
        }
        pos.stopper.best = match h.best {
            Some((epoch, score)) => {
                let mut best = trainer.mlp.clone();
                take(&st, mlp_tensors("best", &mut best), &path)?;
                Some((epoch, f64::from_bits(score), best))
            }
            None => None,
        };
        Ok(true)
    }
}

/// Writes `tensors` (float32 or U64) with the JSON header `json` under `key`, atomically.
fn write(path: &Path, key: &str, json: String, tensors: &[(String, Dtype, Vec<u8>)]) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, dtype, data)| {
            let width = if *dtype == Dtype::U64 { 8 } else { 4 };
            TensorView::new(*dtype, vec![data.len() / width], data)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::invalid(format!("checkpoint tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata: HashMap<String, String> = [(key.to_string(), json)].into();
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::invalid(format!("cannot serialise a checkpoint: {e}")))?;
    crate::atomic::write_bytes(path, &bytes)
}

/// The JSON header under `key` of the safetensors file `bytes` (read from `path`).
fn read_header<T: serde::de::DeserializeOwned>(bytes: &[u8], key: &str, path: &Path) -> Result<T> {
    let bad = |msg: String| Error::format(path, msg);
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a checkpoint ({e})")))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(key))
        .ok_or_else(|| bad("not a nonneg checkpoint (no header)".into()))?;
    serde_json::from_str(json).map_err(|e| bad(format!("bad checkpoint header: {e}")))
}

/// The header's and the `order` tensor's part of the state, checked against the run.
fn restore_position(
    h: &Header,
    st: &SafeTensors,
    cfg: &TrainConfig,
    pos: &mut Position,
    path: &Path,
) -> Result<()> {
    let bad = |msg: String| Error::format(path, msg);
    let n = pos.order.len();
    let order = st
        .tensor("order")
        .map_err(|_| bad("missing tensor `order`".into()))?;
    let order: Vec<usize> = order
        .data()
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .collect();
    let mut seen = vec![false; n];
    if order.len() != n
        || order
            .iter()
            .any(|&r| r >= n || std::mem::replace(&mut seen[r], true))
    {
        return Err(bad(format!(
            "the row order is not a permutation of {n} rows"
        )));
    }
    let batches = n.div_ceil(cfg.batch_size);
    if h.batch == 0 || h.batch > batches || h.epoch >= cfg.epochs || h.epoch != h.epochs.len() {
        return Err(bad(format!(
            "epoch {} batch {} is not a place a run stops at",
            h.epoch, h.batch
        )));
    }
    pos.epoch = h.epoch;
    pos.batch = h.batch;
    pos.order = order;
    pos.loss_sum = f64::from_bits(h.loss_sum);
    pos.lr = f32::from_bits(h.lr);
    pos.shuffle_rng =
        Rng::from_state(h.rng).ok_or_else(|| bad("the generator state is all zero".into()))?;
    pos.epochs = h.epochs.iter().map(epoch_report).collect();
    pos.stopper.since_best = h.since_best;
    Ok(())
}

/// Hashes of a data set's parts: shape, features, labels.
fn dataset_hashes(d: &Dataset) -> Vec<u64> {
    let f32s = |v: &[f32]| fnv1a64(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
    let shape = [d.rows(), d.x.cols(), d.n_labels];
    let mut h = vec![fnv1a64(
        &shape
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<_>>(),
    )];
    match &d.x {
        Features::Dense(m) => h.push(f32s(&m.values)),
        Features::Sparse(m) => {
            let ptr: Vec<u8> = m.indptr.iter().flat_map(|x| x.to_le_bytes()).collect();
            let idx: Vec<u8> = m.indices.iter().flat_map(|x| x.to_le_bytes()).collect();
            h.extend([fnv1a64(&ptr), fnv1a64(&idx), f32s(&m.values)]);
        }
    }
    h.push(d.y.as_deref().map_or(0, f32s));
    h
}

/// A network's trained tensors by name, under `prefix`.
fn mlp_tensors<'m>(prefix: &str, mlp: &'m mut Mlp) -> Vec<(String, &'m mut Vec<f32>)> {
    let mut out = Vec::new();
    for (l, layer) in mlp.layers.iter_mut().enumerate() {
        out.push((format!("{prefix}.layers.{l}.weight"), &mut layer.weight));
        out.push((format!("{prefix}.layers.{l}.bias"), &mut layer.bias));
    }
    if let Some(s) = &mut mlp.skip {
        out.push((format!("{prefix}.skip.weight"), &mut s.weight));
        out.push((format!("{prefix}.skip.bias"), &mut s.bias));
    }
    out
}

/// Appends the non-empty `tensors` as float32 bytes.
fn put(out: &mut Vec<(String, Dtype, Vec<u8>)>, tensors: Vec<(String, &mut Vec<f32>)>) {
    for (name, t) in tensors.into_iter().filter(|t| !t.1.is_empty()) {
        out.push((
            name,
            Dtype::F32,
            t.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ));
    }
}

/// Fills the non-empty `tensors` from the checkpoint, which must hold each at its size.
fn take(st: &SafeTensors, tensors: Vec<(String, &mut Vec<f32>)>, path: &Path) -> Result<()> {
    for (name, t) in tensors.into_iter().filter(|t| !t.1.is_empty()) {
        let v = st
            .tensor(&name)
            .map_err(|_| Error::format(path, format!("missing tensor `{name}`")))?;
        if v.dtype() != Dtype::F32 || v.data().len() != t.len() * 4 {
            return Err(Error::format(
                path,
                format!("tensor `{name}` is not {} float32 values", t.len()),
            ));
        }
        for (x, b) in t.iter_mut().zip(v.data().chunks_exact(4)) {
            *x = f32::from_le_bytes(b.try_into().expect("4 bytes"));
        }
    }
    Ok(())
}

fn saved_epoch(r: &EpochReport) -> SavedEpoch {
    SavedEpoch {
        epoch: r.epoch,
        train_loss: r.train_loss.to_bits(),
        valid_loss: r.valid_loss.map(f64::to_bits),
        valid_auc: r.valid_auc.map(f64::to_bits),
        lr: r.lr.to_bits(),
        seconds: r.seconds,
    }
}

fn epoch_report(r: &SavedEpoch) -> EpochReport {
    EpochReport {
        epoch: r.epoch,
        train_loss: f64::from_bits(r.train_loss),
        valid_loss: r.valid_loss.map(f64::from_bits),
        valid_auc: r.valid_auc.map(f64::from_bits),
        lr: f32::from_bits(r.lr),
        seconds: r.seconds,
    }
}
