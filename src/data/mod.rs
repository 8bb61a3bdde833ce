//! Data in: dense and sparse feature matrices with labels, read from CSV, svmlight/libsvm
//! and NumPy `.npz` (dense arrays or scipy.sparse CSR). Readers reject NaN/inf and never skip
//! rows silently; every error names the file, line (or row) and field.

pub mod csv;
pub mod feature_list;
pub mod npz;
pub mod split;
pub mod svmlight;
pub mod write;

use crate::error::{Error, Result};
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

impl CsrMatrix {
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

/// How svmlight feature indices are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexBase {
    /// 1-based unless some index is 0 (as scikit-learn's `zero_based="auto"`).
    #[default]
    Auto,
    Zero,
    One,
}

/// Options shared by every command that reads data, so a file is read the same way for
/// train, eval and predict.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// CSV: the label column (default: the last column).
    pub label_column: Option<String>,
    /// CSV: string labels equal to this are 1, every other value 0.
    pub positive: Option<String>,
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

/// Reads a data file, choosing the reader from the extension:
/// `.csv` (optionally `.csv.gz`), `.npz`, and anything else as svmlight/libsvm.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let name = path.to_string_lossy().to_lowercase();
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        csv::read(path, opts)
    } else if name.ends_with(".npz") {
        npz::read(path, opts)
    } else {
        svmlight::read(path, opts)
    }
}
