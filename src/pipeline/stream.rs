//! [`super::fit`] for data streamed from shards: the same options, recipe and model, with
//! the statistics of one pass ([`Stats`]) where `fit` looks at the data in memory.

use super::{training_record, FitOptions, Fitted};
use crate::data::stream::{RankPart, Shards, Stats, StreamBatches, StreamOptions, StreamValid};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::train::{self, Progress, TrainConfig, ValidSource};
use std::path::PathBuf;

/// Streamed training data: the shards, the validation shards, how they are streamed.
#[derive(Clone, Debug)]
pub struct StreamData {
    pub train: Vec<PathBuf>,
    pub valid: Vec<PathBuf>,
    pub options: StreamOptions,
    /// Data-parallel training: this rank's part (it reads its share of `train` and
    /// `valid`, and `stats` are all ranks').
    pub part: Option<RankPart>,
}

/// What a streamed run holds in memory at most, in bytes, besides validation (the
/// logits and labels of its rows, 8 bytes per row and label): the program (64 MiB),
/// the shards in flight (the one in use and `read_ahead` more, each counted twice for
/// parsing), the shuffle window and batch (at the average row size), and the network
/// with its gradients and optimizer state (4 copies of the parameters); for an ensemble of
/// `members` also the finished members and, at the end, the merged network (K copies each).
pub fn memory_bound(stats: &Stats, opts: &StreamOptions, cfg: &TrainConfig, members: usize) -> u64 {
    let shards = (opts.read_ahead as u64 + 1) * 2 * stats.largest_shard_bytes as u64;
    let row = stats.data_bytes as f64 / stats.rows.max(1) as f64;
    let rows = opts.shuffle_buffer.min(stats.rows) + cfg.batch_size;
    let widths: Vec<u64> = std::iter::once(stats.schema.cols)
        .chain(cfg.hidden.iter().copied())
        .chain([stats.schema.n_labels])
        .map(|w| w as u64)
        .collect();
    let mut params: u64 = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    if cfg.skip {
        params += widths[0];
    }
    let ensemble = if members > 1 { 8 * members as u64 } else { 0 };
    (64 << 20) + shards + (rows as f64 * row) as u64 + (16 + ensemble) * params
}

/// Fits a model on streamed shards described by `stats` (the pass over `data.train`).
/// Checkpoints are refused: a streamed run's position is not saved. An ensemble's members
/// are full streaming runs one after another (K passes over the shards), merged as in
/// [`super::fit`].
pub fn fit_stream(
    opts: &FitOptions,
    stats: Stats,
    data: &StreamData,
    progress: &mut dyn FnMut(Progress),
) -> Result<Fitted> {
    if opts.checkpoint.is_some() {
        return Err(Error::invalid(
            "checkpoints save in-memory training only: a streamed run (several shards or a \
             shuffle buffer) cannot be checkpointed or resumed",
        ));
    }
    opts.check_ensemble()?;
    let schema = stats.schema.clone();
    let cfg = opts.resolve(schema.sparse)?;
    cfg.validate()?;
    cfg.check_size(schema.cols, schema.n_labels)?;
    super::check_ensemble_constraints(opts.ensemble, &cfg)?;
    let kind = opts.scale.unwrap_or_else(|| {
        let r = train::recipe(
            &cfg.constraints,
            &cfg.hidden,
            cfg.nonneg_mode,
            schema.sparse,
        );
        r.scale
    });
    let scaler = stats.scaler(kind)?;
    let shards = |paths: &[PathBuf]| Shards {
        paths: paths.to_vec(),
        opts: stats.opts.clone(),
        schema: schema.clone(),
        scaler: scaler.clone(),
    };
    let part = data.part.as_ref();
    let mine = |paths: &[PathBuf]| part.map_or(paths.to_vec(), |p| p.mine(paths));
    let mut valid = (!data.valid.is_empty()).then(|| StreamValid {
        shards: shards(&mine(&data.valid)),
        read_ahead: data.options.read_ahead,
        rows: 0,
        gather: part.map(|p| p.gather),
    });
    let (rows, feature_max) = (stats.rows, stats.feature_max.clone());
    let train = shards(&mine(&data.train));
    // One streaming run (a member of an ensemble: one more pass over the shards).
    let mut run = |_: usize, cfg: &TrainConfig, v: Option<&mut dyn ValidSource>| {
        let (train, stats) = (train.clone(), stats.clone());
        let mut source = StreamBatches::new(train, stats, data.options.clone(), cfg.seed)?;
        if let Some(p) = part {
            source = source.with_part(p.clone());
        }
        train::train_source(cfg, &mut source, v, opts.stop.as_deref(), progress)
    };
    let v = valid.as_mut().map(|v| v as &mut dyn ValidSource);
    let (mlp, report) = match opts.ensemble {
        1 => run(0, &cfg, v)?,
        k => super::train_ensemble(&cfg, k, v, &mut run)?,
    };
    let valid_rows = valid.map_or(0, |v| v.rows);
    let mut training = training_record(&cfg, kind, rows, valid_rows, &report)?;
    training["shards"] = data.train.len().into();
    training["shuffle_buffer"] = data.options.shuffle_buffer.into();
    super::record_ensemble(&mut training, &cfg, opts.ensemble);
    let model = Model {
        mlp,
        scaler,
        threshold: report.threshold.clone(),
        feature_names: schema.feature_names,
        label_names: schema.label_names,
        nonneg_mode: cfg.nonneg_mode,
        feature_max: Some(feature_max),
        featurizer: opts.featurizer.clone(),
        input: Default::default(),
        training,
    };
    Ok(Fitted { model, report })
}
