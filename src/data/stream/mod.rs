//! Data bigger than memory: training, evaluation and prediction read many shard files
//! (any mix of the formats [`crate::data::load`] reads) one shard at a time. A reader
//! thread loads the next shards while the current one is used ([`reader`]); one pass
//! gathers what training needs before its first step ([`stats`]); training draws its
//! batches through a bounded shuffle window ([`batches`]).
//!
//! Memory is bounded by the shuffle window, the shards in flight and the model, whatever
//! the number of shards: see [`StreamOptions::memory_bound`].

pub mod batches;
pub mod reader;
pub mod stats;

use crate::data::{Dataset, Features, LoadOptions};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub use batches::{RankPart, StreamBatches, StreamValid};
pub use reader::ShardReader;
pub use stats::Stats;

/// How shards are streamed.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamOptions {
    /// Rows in the shuffle window: rows are read into a window of this many, which is
    /// shuffled and then batched. With a window of at least the training rows and the
    /// shards in their given order, training sees the rows in the order in-memory
    /// training does.
    pub shuffle_buffer: usize,
    /// Shards loaded ahead by the reader thread while the current one is used.
    pub read_ahead: usize,
    /// Shuffle the shard order every epoch (by the seed); off: the given order.
    pub shuffle_shards: bool,
}

impl StreamOptions {
    /// Rows in the default shuffle window.
    pub const DEFAULT_SHUFFLE_BUFFER: usize = 65_536;
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            shuffle_buffer: Self::DEFAULT_SHUFFLE_BUFFER,
            read_ahead: 1,
            shuffle_shards: true,
        }
    }
}

/// The data files named by `inputs`: each a file, or a pattern whose last component has
/// `*` (any characters) or `?` (one character), expanded to its matches in name order. A
/// pattern that matches nothing is an error.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        let name = input.file_name().map(|n| n.to_string_lossy().into_owned());
        let pattern = name.filter(|n| n.contains(['*', '?']) && !input.exists());
        let Some(pattern) = pattern else {
            out.push(input.clone());
            continue;
        };
        let dir = match input.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut matches = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if matches_pattern(pattern.as_bytes(), file.as_bytes()) {
                matches.push(input.with_file_name(file));
            }
        }
        if matches.is_empty() {
            return Err(Error::format(input, "no file matches this pattern"));
        }
        matches.sort();
        out.extend(matches);
    }
    Ok(out)
}

/// Whether `name` matches `pattern` (`*`: any run of bytes, `?`: one byte).
fn matches_pattern(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|k| matches_pattern(rest, &name[k..])),
        Some((&p, rest)) => name
            .split_first()
            .is_some_and(|(&c, tail)| (p == b'?' || p == c) && matches_pattern(rest, tail)),
    }
}

/// What every shard of one stream must agree on, fixed by the statistics pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub cols: usize,
    pub sparse: bool,
    pub n_labels: usize,
    pub label_names: Vec<String>,
    pub feature_names: Option<Vec<String>>,
}

impl Schema {
    /// The schema of one loaded shard.
    pub fn of(d: &Dataset) -> Self {
        Schema {
            cols: d.x.cols(),
            sparse: d.x.is_sparse(),
            n_labels: d.n_labels,
            label_names: d.label_names.clone(),
            feature_names: d.feature_names.clone(),
        }
    }

    /// Fails, naming the shard, unless `d` fits this schema.
    pub fn check(&self, path: &Path, d: &Dataset) -> Result<()> {
        let what = if d.x.is_sparse() != self.sparse {
            "is sparse where the first shard is dense, or the reverse".to_string()
        } else if d.x.cols() != self.cols {
            format!("has {} features, the first shard {}", d.x.cols(), self.cols)
        } else if d.feature_names != self.feature_names {
            "has other feature names (CSV header) than the first shard".to_string()
        } else if d.label_names != self.label_names {
            format!(
                "has labels {:?}, the first shard {:?}",
                d.label_names, self.label_names
            )
        } else {
            return Ok(());
        };
        Err(Error::Mismatch(format!("shard {} {what}", path.display())))
    }
}

/// The shards of one stream and how each is read: the same options and schema for all.
#[derive(Clone, Debug)]
pub struct Shards {
    pub paths: Vec<PathBuf>,
    pub opts: LoadOptions,
    pub schema: Schema,
    /// Applied to every shard as it is loaded (the model's view of the data).
    pub scaler: crate::model::scaler::Scaler,
}

impl Shards {
    /// Loads, checks and scales one shard.
    pub fn load(&self, path: &Path) -> Result<Dataset> {
        let mut d = crate::data::load(path, &self.opts)?;
        self.schema.check(path, &d)?;
        self.scaler.apply(&mut d.x);
        Ok(d)
    }

    /// A reader thread over `paths` (these shards, in some order).
    pub fn reader(&self, paths: Vec<PathBuf>, read_ahead: usize) -> ShardReader {
        let me = self.clone();
        ShardReader::start(paths, read_ahead, move |p| me.load(p))
    }
}

/// An empty data set of `schema`'s shape, filled with [`push_row`].
pub fn empty(schema: &Schema) -> Dataset {
    let x = if schema.sparse {
        Features::Sparse(crate::data::CsrMatrix::with_capacity(schema.cols, 0, 0))
    } else {
        Features::Dense(crate::data::DenseMatrix {
            rows: 0,
            cols: schema.cols,
            values: Vec::new(),
        })
    };
    Dataset {
        x,
        y: Some(Vec::new()),
        n_labels: schema.n_labels,
        label_names: schema.label_names.clone(),
        feature_names: schema.feature_names.clone(),
        source: String::new(),
    }
}

/// Empties `d`, keeping its memory.
pub fn clear(d: &mut Dataset) {
    match &mut d.x {
        Features::Dense(m) => {
            m.rows = 0;
            m.values.clear();
        }
        Features::Sparse(m) => {
            m.rows = 0;
            m.indptr.truncate(1);
            m.indices.clear();
            m.values.clear();
        }
    }
    if let Some(y) = &mut d.y {
        y.clear();
    }
}

/// Appends row `r` of `src` (labelled, of the same shape) to `dst`.
pub fn push_row(dst: &mut Dataset, src: &Dataset, r: usize) {
    match (&mut dst.x, &src.x) {
        (Features::Dense(d), Features::Dense(s)) => {
            d.values.extend_from_slice(s.row(r));
            d.rows += 1;
        }
        (Features::Sparse(d), Features::Sparse(s)) => {
            let (idx, val) = s.row(r);
            d.push_row(idx, val);
        }
        _ => unreachable!("shards are checked against one schema"),
    }
    let l = src.n_labels;
    if let (Some(d), Some(s)) = (&mut dst.y, &src.y) {
        d.extend_from_slice(&s[r * l..(r + 1) * l]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_star_and_question_mark() {
        assert!(matches_pattern(b"part-*.svm", b"part-00012.svm"));
        assert!(matches_pattern(b"part-?.svm", b"part-3.svm"));
        assert!(!matches_pattern(b"part-?.svm", b"part-13.svm"));
        assert!(!matches_pattern(b"*.csv", b"a.csv.gz"));
        assert!(matches_pattern(b"*", b""));
    }

    #[test]
    fn expand_sorts_matches_and_refuses_empty_patterns() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.svm", "a.svm", "c.csv"] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let got = expand(&[dir.path().join("*.svm"), dir.path().join("c.csv")]).unwrap();
        let names: Vec<_> = got.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["a.svm", "b.svm", "c.csv"]);
        let err = expand(&[dir.path().join("*.npz")]).unwrap_err();
        assert!(err.to_string().contains("no file matches"), "{err}");
    }
}
