//! Data in: dense and sparse feature matrices with labels, read from CSV, svmlight/libsvm
//! and NumPy `.npz` (dense arrays or scipy.sparse CSR). Readers reject NaN/inf and never skip
//! rows silently; every error names the file, line (or row) and field.

pub mod csv;
pub mod feature_list;
mod npy;
pub mod npz;
pub mod split;
pub mod stream;
pub mod svmlight;
pub mod write;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Row-major dense matrix of f32.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseMatrix {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

impl DenseMatrix {
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }
}

/// Compressed sparse row matrix of f32 (column indices sorted and unique within a row).
#[derive(Debug, Clone, PartialEq)]
pub struct CsrMatrix {
    pub rows: usize,
    pub cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

/// The empty 0 x 0 matrix (a valid CSR: `indptr` is `[0]`).
impl Default for CsrMatrix {
    fn default() -> Self {
        CsrMatrix::with_capacity(0, 0, 0)
    }
}

impl CsrMatrix {
    /// An empty matrix of `cols` columns, filled with [`CsrMatrix::push_row`]; `rows` and
    /// `nnz` only reserve memory.
    pub fn with_capacity(cols: usize, rows: usize, nnz: usize) -> Self {
        let mut indptr = Vec::with_capacity(rows + 1);
        indptr.push(0);
        CsrMatrix {
            rows: 0,
            cols,
            indptr,
            indices: Vec::with_capacity(nnz),
            values: Vec::with_capacity(nnz),
        }
    }

    /// Appends a row. `indices` must be sorted, unique and below `cols` (not checked here:
    /// callers build rows that way), and as long as `values`.
    pub fn push_row(&mut self, indices: &[u32], values: &[f32]) {
        debug_assert_eq!(indices.len(), values.len());
        self.indices.extend_from_slice(indices);
        self.values.extend_from_slice(values);
        self.indptr.push(self.indices.len());
        self.rows += 1;
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }
}

/// The feature matrix: dense tabular or sparse high-dimensional.
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    Dense(DenseMatrix),
    Sparse(CsrMatrix),
}

impl Features {
    pub fn rows(&self) -> usize {
        match self {
            Features::Dense(m) => m.rows,
            Features::Sparse(m) => m.rows,
        }
    }
    pub fn cols(&self) -> usize {
        match self {
            Features::Dense(m) => m.cols,
            Features::Sparse(m) => m.cols,
        }
    }
    pub fn is_sparse(&self) -> bool {
        matches!(self, Features::Sparse(_))
    }
}

/// A labelled (or, for prediction, unlabelled) data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub x: Features,
    /// Row-major `[rows x n_labels]` of 0.0/1.0; `None` when the input had no labels.
    pub y: Option<Vec<f32>>,
    /// Number of output labels (1 for binary).
    pub n_labels: usize,
    /// Label names: for binary CSV the label column's name; for multi-label the class ids.
    pub label_names: Vec<String>,
    /// Feature names when the format has them (CSV header); `None` otherwise.
    pub feature_names: Option<Vec<String>>,
    /// Where the data came from, for messages.
    pub source: String,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.x.rows()
    }
    pub fn label(&self, row: usize, label: usize) -> f32 {
        self.y.as_ref().expect("dataset has labels")[row * self.n_labels + label]
    }
}

/// How svmlight feature indices are numbered (command line: `auto`, `0`, `1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum IndexBase {
    /// 1-based unless some index is 0 (as scikit-learn's `zero_based="auto"`).
    #[default]
    Auto,
    #[cfg_attr(feature = "cli", value(name = "0"))]
    Zero,
    #[cfg_attr(feature = "cli", value(name = "1"))]
    One,
}

/// The file formats a data set is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Csv,
    Svmlight,
    Npz,
    /// Raw samples featurized by the model's featurizer (`nonneg featurize`'s svmlight).
    Featurized,
}

impl InputKind {
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Csv => "CSV",
            InputKind::Svmlight => "svmlight",
            InputKind::Npz => "npz",
            InputKind::Featurized => "featurized svmlight",
        }
    }

    /// The reader [`load`] picks for `path` (by extension).
    pub fn of(path: &Path) -> Self {
        let name = path.to_string_lossy().to_lowercase();
        if name.ends_with(".csv") || name.ends_with(".csv.gz") {
            InputKind::Csv
        } else if name.ends_with(".npz") {
            InputKind::Npz
        } else {
            InputKind::Svmlight
        }
    }
}

/// What a model remembers of how its training data was read, so that later reads of other
/// files (eval, predict, attack) read them the same way. Every field is optional: a model
/// file written before they existed loads with none, and reads guess as they always did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<InputKind>,
    /// svmlight: the index base the training file turned out to have (never `Auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_base: Option<IndexBase>,
    /// CSV: the label column's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// String labels: the positive class's value (`--positive`) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
    /// ... and the other class's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<String>,
}

impl DataInfo {
    pub fn is_empty(&self) -> bool {
        *self == DataInfo::default()
    }

    /// The class names `[negative, positive]`, when the labels were strings.
    pub fn class_names(&self) -> Option<[&str; 2]> {
        Some([self.negative.as_deref()?, self.positive.as_deref()?])
    }
}

/// Options shared by every command that reads data, so a file is read the same way for
/// train, eval and predict.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// CSV: the label column (default: the last column).
    pub label_column: Option<String>,
    /// CSV: string labels equal to this are 1; the one other value (or `negative`) is 0.
    pub positive: Option<String>,
    /// CSV with `positive`: the negative class's value; any third value is an error. Without
    /// it the column may hold one value besides `positive`.
    pub negative: Option<String>,
    /// scipy.sparse CSR `.npz`: the labels as a `.npy` file.
    pub labels_path: Option<PathBuf>,
    /// svmlight: index numbering.
    pub index_base: IndexBase,
    /// svmlight: parse labels as comma-separated class ids even without a comma.
    pub multilabel: bool,
    /// Width the features must have (from a model); sparse readers use it as the column
    /// count, and an index at or past it is an error.
    pub n_features: Option<usize>,
    /// Feature names from a model: a CSV whose header is exactly these has no label column.
    pub expected_features: Option<Vec<String>>,
    /// Multi-label class ids from a model, fixing the label order.
    pub label_names: Option<Vec<String>>,
    /// Fail when the data has no labels (train, eval); predict sets this to false.
    pub require_labels: bool,
    /// The file is one shard of a data set: a class missing from it is no error (the
    /// set's classes are counted over all its shards).
    pub shard: bool,
}

impl LoadOptions {
    /// Options for labelled data (train, eval): labels are required, all else default.
    pub fn labelled() -> Self {
        LoadOptions {
            require_labels: true,
            ..Default::default()
        }
    }
}

/// Writes `content` to a file `name` in a fresh temp dir (kept alive by the returned guard).
#[cfg(test)]
pub(crate) fn write_temp(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    (dir, p)
}

/// Fails unless `path` is a regular file (or a link to one), before anything opens it: a
/// FIFO or a device would block or never end. Returns its size in bytes.
pub fn check_regular(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let what = if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file (a FIFO, socket or device)"
    };
    Err(Error::format(path, format!("{what}: expected a data file")))
}

/// Reads a data file, choosing the reader from the extension:
/// `.csv` (optionally `.csv.gz`), `.npz`, and anything else as svmlight/libsvm.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    Ok(load_info(path, opts)?.0)
}

/// [`load`], plus what a model should remember of how the file was read.
pub fn load_info(path: &Path, opts: &LoadOptions) -> Result<(Dataset, DataInfo)> {
    check_regular(path)?;
    let kind = InputKind::of(path);
    let mut info = DataInfo {
        kind: Some(kind),
        ..DataInfo::default()
    };
    let ds = match kind {
        InputKind::Csv => {
            let (ds, negative) = csv::read_info(path, opts)?;
            if opts.positive.is_some() {
                info.positive = opts.positive.clone();
                info.negative = negative;
            }
            info.label_column = ds.y.as_ref().map(|_| ds.label_names[0].clone());
            ds
        }
        InputKind::Npz => npz::read(path, opts)?,
        _ => {
            let (ds, base) = svmlight::read_info(path, opts)?;
            info.index_base = Some(base);
            ds
        }
    };
    if opts.require_labels && ds.y.is_none() {
        return Err(Error::format(
            path,
            "no label column: its columns are exactly the model's features; labels are \
             required here",
        ));
    }
    if ds.x.cols() == 0 {
        return Err(Error::format(
            path,
            "no features: every row is empty (0 feature columns)",
        ));
    }
    Ok((ds, info))
}
