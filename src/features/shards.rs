//! Featurizing a corpus bigger than memory into svmlight shards `<prefix>-00000.svm`,
//! `<prefix>-00001.svm`, ... of a fixed number of rows, plus one featurizer sidecar.
//!
//! Two passes over the samples, neither holding the corpus's rows:
//! - building a vocabulary counts document frequencies only (memory grows with the
//!   vocabulary, not the corpus); the email defaults are decided in the same pass,
//!   optimistically: it counts with them on and starts again with them off only when a
//!   plain-text sample turns up (as early as that sample);
//! - the writing pass featurizes batch by batch and writes each shard when it is full.
//!
//! The shards, concatenated, are byte for byte the one file [`super::corpus::write_corpus`]
//! writes for the same inputs: same row order, vocabulary and values (same writer). The
//! sidecar goes beside the first shard (`<prefix>-00000.svm.featurizer.json`, with that
//! shard's fingerprint), where `train --data '<prefix>-*.svm'` looks for it: the shards
//! are committed together, so the first one's fingerprint stands for the set. Everything
//! is staged and committed as one [`crate::atomic::Group`], with the stale shards of an
//! earlier, longer run removed: a failed run leaves the old set or the new one.
//!
//! Memory: the list of samples (their names, ~150 bytes each), the vocabulary, one shard
//! of rows in memory (8 bytes per non-zero) and a batch of [`BATCH`] samples. Archive
//! members are held in memory by [`super::source`]: give folders for a large corpus.

use super::corpus::{
    check_classes, email_defaults_note, featurize_rows, list_samples, stage_sidecar, term_index,
    with_email_defaults, CorpusSummary, SpecSource, Tally,
};
use super::source::Sample;
use super::text::{self, TextOptions};
use super::{FastMap, FeaturizerSpec};
use crate::data::CsrMatrix;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Samples decoded at a time, in parallel (bounds the memory of a pass).
pub const BATCH: usize = 1024;

/// What a sharded run wrote.
#[derive(Debug, Clone)]
pub struct Shards {
    pub spec: FeaturizerSpec,
    /// The shard files, in row order.
    pub paths: Vec<PathBuf>,
    /// The featurizer sidecar (beside the first shard).
    pub sidecar: PathBuf,
    pub nnz: usize,
    pub summary: CorpusSummary,
}

/// Shard `k` of `prefix`: `<prefix>-KKKKK.svm`.
pub fn shard_path(prefix: &Path, k: usize) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(format!("-{k:05}.svm"));
    PathBuf::from(s)
}

/// Featurizes the classes' samples into shards of `shard_rows` rows named after `prefix`
/// (at least one shard, empty when there are no samples) and commits them with the
/// featurizer sidecar.
pub fn featurize_to_shards(
    classes: &[(String, PathBuf)],
    positive: &str,
    spec: SpecSource,
    prefix: &Path,
    shard_rows: usize,
) -> Result<Shards> {
    if shard_rows == 0 {
        return Err(Error::invalid(
            "the `shard_rows` option must be at least 1, got 0",
        ));
    }
    check_classes(classes, positive)?;
    let (samples, skipped) = list_samples(classes)?;
    let (spec, note) = resolve_spec(spec, &samples)?;
    let mut group = crate::atomic::Group::new();
    let mut tally = Tally::new(classes, positive);
    let mut paths = Vec::new();
    let mut nnz = 0;
    let index = term_index(&spec);
    let n_shards = samples.len().div_ceil(shard_rows).max(1);
    for k in 0..n_shards {
        let end = ((k + 1) * shard_rows).min(samples.len());
        let part = &samples[(k * shard_rows).min(end)..end];
        let mut x = CsrMatrix::with_capacity(spec.n_features(), part.len(), 0);
        let mut y = Vec::with_capacity(part.len());
        for batch in part.chunks(BATCH) {
            for ((ci, _), r) in batch
                .iter()
                .zip(featurize_rows(&spec, index.as_ref(), batch)?)
            {
                x.push_row(&r.indices, &r.values);
                y.push(tally.add(*ci, &r.problems));
            }
        }
        nnz += x.indices.len();
        let path = shard_path(prefix, k);
        group.stage(&path, "", |t| {
            crate::data::write::write_svmlight_csr(&x, &y, t)
        })?;
        paths.push(path);
    }
    drop(index);
    stage_sidecar(&mut group, &spec, &paths[0])?;
    remove_stale(&mut group, prefix, n_shards)?;
    group.commit()?;
    let mut summary = tally.summary(spec.n_features(), skipped);
    summary.email_defaults = note;
    Ok(Shards {
        sidecar: super::corpus::spec_path_for(&paths[0]),
        spec,
        paths,
        nnz,
        summary,
    })
}

/// The complete spec: as given, or a vocabulary counted in one pass (two when the email
/// defaults were asked for and a plain-text sample turns up); and the email-defaults line.
fn resolve_spec(
    spec: SpecSource,
    samples: &[(usize, Sample)],
) -> Result<(FeaturizerSpec, Option<String>)> {
    let (options, min_df, max_features, email_defaults) = match spec {
        SpecSource::Fixed(spec) => {
            spec.validate()?;
            return Ok((spec, None));
        }
        SpecSource::BuildVocabulary {
            options,
            min_df,
            max_features,
            email_defaults,
        } => (options, min_df, max_features, email_defaults),
    };
    if min_df == 0 {
        return Err(Error::invalid("min_df must be at least 1"));
    }
    let mut counts = None;
    if email_defaults {
        let with = with_email_defaults(options.clone());
        let c = count_terms(&with, samples, true)?;
        if c.plain == 0 {
            counts = Some((with, c));
        }
    }
    let (options, counts) = match counts {
        Some(found) => found,
        None => {
            let c = count_terms(&options, samples, false)?;
            (options, c)
        }
    };
    let note = email_defaults.then(|| email_defaults_note(counts.plain, samples.len()));
    let (names, df): (Vec<&str>, Vec<usize>) = counts.df.iter().map(|(t, &d)| (&**t, d)).unzip();
    let (tspec, _) =
        text::vocabulary_from_df(options, &names, &df, samples.len(), min_df, max_features)?;
    Ok((FeaturizerSpec::text(tspec), note))
}

/// Document frequencies of a pass, and how many samples were plain text.
struct TermCounts {
    df: FastMap<Box<str>, usize>,
    plain: usize,
}

/// Counts the document frequency of every token of `samples` decoded with `options`; when
/// `stop_at_plain`, stops (incomplete) at the first plain-text sample.
fn count_terms(
    options: &TextOptions,
    samples: &[(usize, Sample)],
    stop_at_plain: bool,
) -> Result<TermCounts> {
    let mut counts = TermCounts {
        df: FastMap::default(),
        plain: 0,
    };
    for batch in samples.chunks(BATCH) {
        let analyses = batch
            .par_iter()
            .map(|(_, s)| {
                let bytes = s.bytes()?;
                let email = super::email::is_email(options.input_kind, &bytes);
                Ok((email, text::analyze(options, &bytes)))
            })
            .collect::<Result<Vec<_>>>()?;
        for (email, analysis) in analyses {
            counts.plain += !email as usize;
            if !email && stop_at_plain {
                return Ok(counts);
            }
            for (token, _) in analysis.counts() {
                match counts.df.get_mut(token) {
                    Some(d) => *d += 1,
                    None => {
                        counts.df.insert(token.into(), 1);
                    }
                }
            }
        }
    }
    Ok(counts)
}

/// Stages the removal of what an earlier run with the same prefix left that this one does
/// not write: shards from `n_shards` on, and sidecars beside any shard but the first.
fn remove_stale(group: &mut crate::atomic::Group, prefix: &Path, n_shards: usize) -> Result<()> {
    let dir = match prefix.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(stem) = prefix
        .file_name()
        .map(|s| format!("{}-", s.to_string_lossy()))
    else {
        return Ok(());
    };
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in rd {
        let name = entry.map_err(|e| Error::io(dir, e))?.file_name();
        let name = name.to_string_lossy();
        let Some(rest) = name.strip_prefix(&stem) else {
            continue;
        };
        let (digits, sidecar) = match rest.strip_suffix(".svm") {
            Some(d) => (d, false),
            None => match rest.strip_suffix(".svm.featurizer.json") {
                Some(d) => (d, true),
                None => continue,
            },
        };
        if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(k) = digits.parse::<usize>() else {
            continue;
        };
        if k >= n_shards || (sidecar && k > 0) {
            group.remove(&dir.join(&*name))?;
        }
    }
    Ok(())
}
