//! Featurizing a corpus bigger than memory into svmlight shards `<prefix>-00000.svm`,
//! `<prefix>-00001.svm`, ... of a fixed number of rows, plus one featurizer sidecar.
//!
//! Two passes over the samples (after a pass over an archive's headers), neither holding
//! the corpus's rows:
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
//! Memory: the list of samples (their names, ~150 bytes each; for an archive also a rank
//! and a row's place in a temporary file, 24 bytes more), the vocabulary, one shard of
//! rows (8 bytes per non-zero) and a batch of [`BATCH`] samples. Archives are streamed
//! ([`super::inputs`]): their rows are spilled to an unnamed temporary file beside the
//! shards and read back in name order, so the raw archive is never held.

use super::corpus::{check_classes, stage_sidecar, term_index, CorpusSummary, SpecSource, Tally};
use super::inputs::{resolve_spec, Inputs};
use super::FeaturizerSpec;
use crate::data::CsrMatrix;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub use super::inputs::BATCH;

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
    let inputs = Inputs::new(classes)?;
    let (spec, note) = resolve_spec(spec, &inputs)?;
    let mut group = crate::atomic::Group::new();
    let mut tally = Tally::new(classes, positive);
    let mut paths = Vec::new();
    let mut nnz = 0;
    let n_features = spec.n_features();
    let new_shard = || {
        let rows = shard_rows.min(inputs.len());
        (
            CsrMatrix::with_capacity(n_features, rows, 0),
            Vec::with_capacity(rows),
        )
    };
    let (mut x, mut y) = new_shard();
    let mut write_shard = |x: &CsrMatrix, y: &[f32], paths: &mut Vec<PathBuf>| {
        let path = shard_path(prefix, paths.len());
        group.stage(&path, "", |t| {
            crate::data::write::write_svmlight_csr(x, y, t)
        })?;
        paths.push(path);
        nnz += x.indices.len();
        Result::Ok(())
    };
    let index = term_index(&spec);
    let spill = Some(folder_of(prefix));
    inputs.featurize_in_order(&spec, index.as_ref(), spill, |ci, _, r| {
        x.push_row(&r.indices, &r.values);
        y.push(tally.add(ci, &r.problems));
        if y.len() == shard_rows {
            write_shard(&x, &y, &mut paths)?;
            (x, y) = new_shard();
        }
        Ok(())
    })?;
    drop(index);
    if !y.is_empty() || paths.is_empty() {
        write_shard(&x, &y, &mut paths)?;
    }
    stage_sidecar(&mut group, &spec, &paths[0])?;
    remove_stale(&mut group, prefix, paths.len())?;
    group.commit()?;
    let mut summary = tally.summary(n_features, inputs.skipped);
    summary.email_defaults = note;
    Ok(Shards {
        sidecar: super::corpus::spec_path_for(&paths[0]),
        spec,
        paths,
        nnz,
        summary,
    })
}

/// The folder `prefix`'s files go in.
fn folder_of(prefix: &Path) -> &Path {
    match prefix.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Stages the removal of what an earlier run with the same prefix left that this one does
/// not write: shards from `n_shards` on, and sidecars beside any shard but the first.
fn remove_stale(group: &mut crate::atomic::Group, prefix: &Path, n_shards: usize) -> Result<()> {
    let dir = folder_of(prefix);
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
