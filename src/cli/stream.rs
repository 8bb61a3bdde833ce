//! Streaming flags (`train --shuffle-buffer`, `--valid-shards`, `--max-memory`, ...),
//! `train` on shards (the statistics pass, the memory bound, then
//! [`nonneg::pipeline::stream::fit_stream`]), and `eval` and `predict` on shards.

use super::predict::PredictArgs;
use super::progress::TrainProgress;
use super::train::{save_and_report, signs_for, Part, TrainArgs};
use super::{load_data, Context, DataArgs};
use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, ValueEnum};
use nonneg::data::stream::{self as shards, Stats, StreamOptions};
#[cfg(feature = "distributed")]
use nonneg::data::{stream::RankPart, IndexBase};
use nonneg::data::{InputKind, LoadOptions};
use nonneg::model::Model;
use nonneg::pipeline::stream::{fit_stream, memory_bound, StreamData};
use nonneg::pipeline::FitOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The order of the shards in each epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ShardOrder {
    /// Shuffled every epoch by --seed.
    #[default]
    Shuffled,
    /// As given (patterns expand in name order).
    Given,
}

#[derive(Args, Debug, Default)]
pub struct StreamArgs {
    /// Stream --data shard by shard even when it names one file.
    #[arg(long)]
    pub stream: bool,
    /// Streaming: rows in the shuffle window; rows are read into it, shuffled and batched
    /// (default 65536). At least the number of training rows, with --shard-order given:
    /// the batches of in-memory training.
    #[arg(long, value_name = "ROWS")]
    pub shuffle_buffer: Option<usize>,
    /// Streaming: shards the reader thread loads ahead of the one in use.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub read_ahead: usize,
    /// Streaming: the shard order of each epoch, shuffled (by --seed) or given.
    #[arg(long, value_enum, default_value_t = ShardOrder::Shuffled)]
    pub shard_order: ShardOrder,
    /// Streaming: validate on the last K shards of --data (not trained on).
    #[arg(long, value_name = "K", conflicts_with_all = ["valid", "valid_fraction"])]
    pub valid_shards: Option<usize>,
    /// Streaming: refuse to start when the memory bound exceeds SIZE (bytes, or with K, M
    /// or G: 512M, 4G); the bound is printed.
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
}

impl StreamArgs {
    /// Whether a streaming flag was given.
    pub(crate) fn any(&self) -> bool {
        self.stream
            || self.shuffle_buffer.is_some()
            || self.valid_shards.is_some()
            || self.max_memory.is_some()
    }

    fn options(&self) -> StreamOptions {
        StreamOptions {
            shuffle_buffer: self
                .shuffle_buffer
                .unwrap_or(StreamOptions::DEFAULT_SHUFFLE_BUFFER),
            read_ahead: self.read_ahead,
            shuffle_shards: self.shard_order == ShardOrder::Shuffled,
        }
    }
}

/// `512M`, `4G`, `1024K` or bytes.
fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 10),
        Some((i, 'M' | 'm')) => (&t[..i], 20),
        Some((i, 'G' | 'g')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: f64 = digits
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| *n > 0.0 && n.is_finite())
        .ok_or_else(|| anyhow!("--max-memory `{text}`: use a size such as 512M or 4G"))?;
    Ok((n * (1u64 << shift) as f64) as u64)
}

/// The streamed data of `train`'s flags, or `None` for one file read into memory.
pub fn streamed(a: &TrainArgs) -> Result<Option<StreamData>> {
    let mut train = shards::expand(&a.data)?;
    let valid = shards::expand(&a.valid)?;
    if train.len() == 1 && valid.len() <= 1 && !a.stream.any() {
        return Ok(None);
    }
    if a.autotune.autotune {
        bail!("--autotune reads one file into memory; it cannot stream several shards");
    }
    if a.valid_fraction.is_some() {
        bail!("--valid-fraction splits rows in memory; streamed data is split by shard: use --valid-shards K");
    }
    let mut valid = valid;
    if let Some(k) = a.stream.valid_shards {
        if k == 0 || k >= train.len() {
            bail!(
                "--valid-shards {k}: must leave at least one of the {} shards for training, and be at least 1",
                train.len()
            );
        }
        valid = train.split_off(train.len() - k);
    }
    Ok(Some(StreamData {
        train,
        valid,
        options: a.stream.options(),
        part: None,
    }))
}

/// `train` on streamed shards, as `part` of the run.
pub(super) fn train(
    a: &TrainArgs,
    ctx: &Context,
    mut opts: FitOptions,
    mut data: StreamData,
    part: &Part,
) -> Result<ExitCode> {
    let load = super::train::load_options(a, opts.featurizer.as_ref());
    let stats = gather_stats(&mut data, &load, part, a.batch_size)?;
    let schema = &stats.schema;
    let names = schema.feature_names.as_deref();
    opts.signs = signs_for(a, names, schema.cols, &opts.config)?;
    let bound = memory_bound(
        &stats,
        &data.options,
        &opts.resolve(schema.sparse)?,
        opts.ensemble,
    );
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    if let Some(max) = a.stream.max_memory.as_deref().map(parse_size).transpose()? {
        if bound > max {
            bail!(
                "the memory bound is {:.0} MiB, over --max-memory {:.0} MiB: use a smaller \
                 --shuffle-buffer or --read-ahead, or smaller shards (the largest holds {:.0} MiB)",
                mib(bound),
                mib(max),
                mib(stats.largest_shard_bytes as u64)
            );
        }
    }
    if !ctx.quiet {
        crate::cli::errln!(
            "streaming {} training shards ({} rows) and {} validation shards; memory bound {:.0} MiB",
            data.train.len(),
            stats.rows,
            data.valid.len(),
            mib(bound)
        )?;
    }
    let mut info = stats.info.clone();
    if opts.featurizer.is_some() {
        info.kind = Some(InputKind::Featurized);
    }
    let mut progress = TrainProgress::new(ctx.quiet, true);
    progress.log_to(a.log.clone().filter(|_| part.root))?;
    let mut fitted = fit_stream(&opts, stats, &data, &mut |p| progress.observe(p))?;
    progress.finish()?;
    fitted.model.input = info;
    save_and_report(&fitted, a, ctx, part)
}

/// The statistics pass of the run: this process's, or under MPI all ranks' together.
fn gather_stats(
    data: &mut StreamData,
    load: &LoadOptions,
    part: &Part,
    batch_size: usize,
) -> Result<Stats> {
    #[cfg(feature = "distributed")]
    if let Some(session) = part.session {
        return rank_stats(data, load, session, part.quiet, batch_size);
    }
    #[cfg(not(feature = "distributed"))]
    let _ = (part, batch_size); // only the ranks of an MPI run share their statistics
    Ok(Stats::gather(&data.train, load, data.options.read_ahead)?)
}

/// The statistics of the run, from this rank's pass over its own training shards (every
/// `ranks`-th from its rank on) and the other ranks' (see
/// [`nonneg::train::distributed::share_stats`]); sets `data`'s part for this rank. Prints
/// this rank's shards and rows unless `quiet`.
#[cfg(feature = "distributed")]
fn rank_stats(
    data: &mut StreamData,
    load: &LoadOptions,
    session: &nonneg::train::distributed::Session,
    quiet: bool,
    batch_size: usize,
) -> Result<Stats> {
    use nonneg::train::distributed as dist;
    let (rank, ranks) = (session.rank(), session.size());
    if batch_size < ranks {
        // Each step's rows are shared out in proportion to the ranks' rows.
        bail!("--batch-size {batch_size} over {ranks} ranks of shards: give at least one row per rank");
    }
    if data.train.len() < ranks {
        bail!(
            "--distributed over {ranks} ranks reads at least one training shard on each; \
             --data names {}",
            data.train.len()
        );
    }
    let mine = RankPart::own(&data.train, rank, ranks);
    let read_ahead = data.options.read_ahead;
    let mut stats = Stats::gather(&mine, load, read_ahead)?;
    if !quiet {
        crate::cli::errln!(
            "rank {rank} of {ranks}: {} training shards, {} rows",
            mine.len(),
            stats.rows
        )?;
    }
    let zero = LoadOptions {
        index_base: IndexBase::Zero,
        ..load.clone()
    };
    let regather = || Stats::gather(&mine, &zero, read_ahead);
    let auto = load.index_base == IndexBase::Auto;
    let rows = dist::share_stats(&mut stats, regather, auto)?;
    session.own_batches();
    data.part = Some(RankPart {
        rank,
        rows,
        broadcast: dist::broadcast_rows,
        gather: dist::gather_scores,
    });
    Ok(stats)
}

/// `eval` on several shards: the logits of `model` and the labels, read shard by shard.
pub fn scores(paths: &[PathBuf], args: &DataArgs, model: &Model) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut logits, mut y) = (Vec::new(), Vec::new());
    for p in paths {
        let d = load_data(p, args, Some(model), true)?;
        logits.extend(model.logits(&d.x));
        y.extend(d.y.ok_or_else(|| anyhow!("{}: no labels to evaluate against", p.display()))?);
    }
    Ok((logits, y))
}

/// `predict` on several shards: each shard's rows are written once scored, to --out
/// atomically (nothing is left of it when a shard fails) or to standard output.
pub fn predict(a: &PredictArgs, model: &Model, paths: &[PathBuf]) -> Result<()> {
    let mut failed: Option<anyhow::Error> = None;
    let write = |w: &mut dyn std::io::Write| -> Result<()> {
        for (k, p) in paths.iter().enumerate() {
            let d = load_data(p, &a.data_args, Some(model), false)?;
            let text = super::predict::format(a, model, &d, None, k == 0);
            w.write_all(text.as_bytes())?;
        }
        Ok(())
    };
    match &a.out {
        Some(out) if out != Path::new("-") => {
            let result = nonneg::atomic::write_with(out, |w| {
                write(w).map_err(|e| {
                    let message = format!("{e:#}");
                    failed = Some(e);
                    nonneg::Error::invalid(message)
                })
            });
            match failed {
                Some(e) => Err(e),
                None => Ok(result?),
            }
        }
        _ => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            write(&mut lock)?;
            std::io::Write::flush(&mut lock).context("cannot write to standard output")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }
}
