//! NumPy `.npz` reader: dense arrays (`np.savez` / `np.savez_compressed`) or a
//! scipy.sparse CSR matrix (`scipy.sparse.save_npz`), with its own `.npy` parser.
//!
//! - Dense: array `X` (2-D, any numeric dtype; normally float32/float64) and optional `y`.
//!   Without `y` the data is unlabelled, allowed only when labels are not required (or the
//!   labels come from `opts.labels_path` instead).
//! - Sparse: members `data`, `indices`, `indptr`, `format` (must be `csr`), `shape`; labels
//!   from `opts.labels_path` (a `.npy`). Indices are validated, sorted within rows if needed;
//!   duplicates are errors; explicit zeros are dropped from the CSR (rows are kept).
//! - Labels (`y` or the labels file): 1-D (or `[rows x 1]`) is binary: 0/1, -1/1 or bool, never
//!   mixing 0 and -1. 2-D `[rows x L]` is multi-label, values 0/1 or bool, label names
//!   `"0".."L-1"` unless `opts.label_names` fixes them (its length must be L).
//! - `.npy`: versions 1.0/2.0/3.0, little-endian `f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1` plus byte /
//!   unicode strings (for `format`); C or Fortran order. Big-endian, object, structured and
//!   other dtypes are clear errors.
//!
//! Errors name the file, the array and, for values, the 0-based row.

use super::npy::{parse_npy, Npy};
use super::{CsrMatrix, Dataset, DenseMatrix, Features, LoadOptions};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Labels

/// Labels row-major, their count and their names.
type Labels = (Vec<f32>, usize, Vec<String>);

/// Labels from a 1-D or 2-D array; returns (y row-major, n_labels, label_names).
fn labels(path: &Path, arr: &Npy, opts: &LoadOptions) -> Result<Labels> {
    arr.require_numeric(path)?;
    let binary = match arr.shape[..] {
        [_] => true,
        [_, 1] => opts.label_names.is_none(),
        [_, _] => false,
        _ => {
            return Err(arr.err(
                path,
                format!(
                    "labels must be 1-D (binary) or 2-D [rows x labels] (multi-label), found \
                     shape {:?}",
                    arr.shape
                ),
            ))
        }
    };
    if binary {
        binary_labels(path, arr, opts)
    } else {
        multi_labels(path, arr, opts)
    }
}

/// One label a row: 0/1, -1/1 or bool, never mixing 0 and -1.
fn binary_labels(path: &Path, arr: &Npy, opts: &LoadOptions) -> Result<Labels> {
    if let Some(names) = &opts.label_names {
        if names.len() != 1 {
            return Err(Error::Mismatch(format!(
                "{}: array '{}' holds binary labels but the model has {} labels",
                path.display(),
                arr.name,
                names.len()
            )));
        }
    }
    let rows = arr.shape[0];
    let mut y = Vec::with_capacity(rows);
    let (mut zero_at, mut minus_at) = (None, None);
    for r in 0..rows {
        let v = arr.f64_at(r);
        let label = if v == 1.0 {
            1.0
        } else if v == 0.0 {
            zero_at.get_or_insert(r);
            0.0
        } else if v == -1.0 {
            minus_at.get_or_insert(r);
            0.0
        } else {
            return Err(arr.err_row(
                path,
                r,
                format!(
                    "label {v} is not binary (0/1, -1/1 or bool); multi-label targets must \
                     be a 2-D [rows x labels] 0/1 array"
                ),
            ));
        };
        if let (Some(z), Some(m)) = (zero_at, minus_at) {
            return Err(arr.err_row(
                path,
                r,
                format!(
                    "labels mix 0 (first at row {z}) and -1 (first at row {m}); binary \
                     labels are either 0/1 or -1/1"
                ),
            ));
        }
        y.push(label);
    }
    let names = opts
        .label_names
        .clone()
        .unwrap_or_else(|| vec!["label".to_string()]);
    Ok((y, 1, names))
}

/// A `[rows x L]` array of 0/1 (or bool) labels.
fn multi_labels(path: &Path, arr: &Npy, opts: &LoadOptions) -> Result<Labels> {
    let (rows, n) = (arr.shape[0], arr.shape[1]);
    if n == 0 {
        return Err(arr.err(path, "multi-label targets with 0 label columns"));
    }
    let names = match &opts.label_names {
        Some(names) if names.len() != n => {
            return Err(Error::Mismatch(format!(
                "{}: array '{}' has {n} label columns but the model has {} labels",
                path.display(),
                arr.name,
                names.len()
            )))
        }
        Some(names) => names.clone(),
        None => (0..n).map(|i| i.to_string()).collect(),
    };
    let mut y = Vec::with_capacity(rows * n);
    for r in 0..rows {
        for c in 0..n {
            let v = arr.f64_at(arr.pos2(r, c));
            if v != 0.0 && v != 1.0 {
                return Err(arr.err_row(
                    path,
                    r,
                    format!("label column {c}: value {v} is not 0/1 (multi-label targets are 0/1)"),
                ));
            }
            y.push(v as f32);
        }
    }
    Ok((y, n, names))
}

/// Reads labels from a stand-alone `.npy` file.
fn read_labels_file(labels_path: &Path, opts: &LoadOptions) -> Result<Labels> {
    let mut bytes = Vec::new();
    File::open(labels_path)
        .and_then(|f| BufReader::new(f).read_to_end(&mut bytes))
        .map_err(|e| Error::io(labels_path, e))?;
    let name = labels_path.file_name().map_or_else(
        || "labels".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let arr = parse_npy(labels_path, &name, bytes)?;
    labels(labels_path, &arr, opts)
}

// ---------------------------------------------------------------------------------------------
// .npz

fn zip_error(path: &Path, e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(e) => Error::io(path, e),
        other => Error::format(path, format!("not a readable .npz (zip) archive: {other}")),
    }
}

/// An open `.npz` archive, its arrays found by name.
struct Npz<'a> {
    path: &'a Path,
    archive: zip::ZipArchive<BufReader<File>>,
    /// Array name -> member index.
    members: BTreeMap<String, usize>,
}

impl<'a> Npz<'a> {
    fn open(path: &'a Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| zip_error(path, e))?;
        let members = (0..archive.len())
            .filter_map(|i| {
                let name = archive.name_for_index(i)?;
                let array = name.strip_suffix(".npy").unwrap_or(name);
                Some((array.to_string(), i))
            })
            .collect();
        Ok(Npz {
            path,
            archive,
            members,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// Decompresses and parses array `name`, if the archive has it.
    fn load(&mut self, name: &str) -> Result<Option<Npy>> {
        let path = self.path;
        let Some(&i) = self.members.get(name) else {
            return Ok(None);
        };
        let mut member = self.archive.by_index(i).map_err(|e| zip_error(path, e))?;
        // The claimed size is reserved only as far as the compressed bytes could make it
        // (deflate expands at most ~1032x): a tiny member may claim terabytes.
        let plausible = member.compressed_size().saturating_mul(1032) + (1 << 16);
        let mut bytes = Vec::with_capacity(member.size().min(plausible).min(1 << 30) as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|e| Error::format(path, format!("array '{name}': cannot decompress: {e}")))?;
        parse_npy(path, name, bytes).map(Some)
    }

    /// Like [`Npz::load`], for the members a scipy.sparse archive must have.
    fn need(&mut self, name: &str) -> Result<Npy> {
        self.load(name)?.ok_or_else(|| {
            Error::format(
                self.path,
                format!(
                    "scipy.sparse archive without array '{name}' (arrays: {})",
                    self.members.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}

/// Reads a `.npz` archive (dense `X`/`y` or scipy.sparse CSR); see the module documentation.
pub fn read(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let mut npz = Npz::open(path)?;
    if npz.has("format") || npz.has("indptr") {
        return read_sparse(path, opts, &mut npz);
    }
    let Some(x) = npz.load("X")? else {
        let names: Vec<&str> = npz.members.keys().map(String::as_str).collect();
        return Err(Error::format(
            path,
            format!(
                "no array 'X' (arrays: {}); expected X (and y) as written by \
                 np.savez(path, X=X, y=y), or a scipy.sparse CSR matrix from save_npz",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    // `x` is consumed, so its bytes are freed before `y` is loaded.
    let x = dense_features(path, x, opts)?;
    let labelled = dense_labels(path, opts, &mut npz)?;
    finish(
        path,
        opts,
        Features::Dense(x),
        labelled,
        "no array 'y' in the archive and no labels file given, but labels are required",
    )
}

/// The 2-D array `X` as finite f32 values, row-major.
fn dense_features(path: &Path, x: Npy, opts: &LoadOptions) -> Result<DenseMatrix> {
    x.require_numeric(path)?;
    let (rows, cols) = match x.shape[..] {
        [r, c] => (r, c),
        _ => {
            return Err(x.err(
                path,
                format!("X must be 2-D [rows x features], found shape {:?}", x.shape),
            ))
        }
    };
    if let Some(n) = opts.n_features {
        if n != cols {
            return Err(Error::Mismatch(format!(
                "{}: X has {cols} features, the model expects {n}",
                path.display()
            )));
        }
    }
    if rows == 0 {
        return Err(x.err(path, "X has no rows"));
    }
    let mut values = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            values.push(x.finite_f32(path, x.pos2(r, c), r)?);
        }
    }
    Ok(DenseMatrix { rows, cols, values })
}

/// Labels from array `y` or the labels file (not both), with where they came from.
fn dense_labels(path: &Path, opts: &LoadOptions, npz: &mut Npz) -> Result<Option<Labelled>> {
    Ok(match (npz.load("y")?, &opts.labels_path) {
        (Some(_), Some(lp)) => {
            return Err(Error::invalid(format!(
                "{} already contains labels (array 'y'); do not also pass a labels file ({})",
                path.display(),
                lp.display()
            )))
        }
        (Some(y), None) => Some((labels(path, &y, opts)?, path.to_path_buf(), "y".to_string())),
        (None, Some(lp)) => Some((read_labels_file(lp, opts)?, lp.clone(), "labels".into())),
        (None, None) => None,
    })
}

/// Labels with the file they came from and what to call them in messages.
type Labelled = (Labels, std::path::PathBuf, String);

/// Attaches labels (checking their row count) or reports their absence.
fn finish(
    path: &Path,
    opts: &LoadOptions,
    x: Features,
    labelled: Option<Labelled>,
    missing_msg: &str,
) -> Result<Dataset> {
    let rows = x.rows();
    let (y, n_labels, label_names) = match labelled {
        Some(((y, n, names), from, what)) => {
            let label_rows = y.len().checked_div(n).unwrap_or(0);
            if label_rows != rows {
                return Err(Error::format(
                    &from,
                    format!(
                        "{what} have {label_rows} rows but the features in {} have {rows}",
                        path.display()
                    ),
                ));
            }
            (Some(y), n, names)
        }
        None if opts.require_labels => return Err(Error::format(path, missing_msg)),
        None => {
            let names = opts
                .label_names
                .clone()
                .unwrap_or_else(|| vec!["label".to_string()]);
            (None, names.len(), names)
        }
    };
    Ok(Dataset {
        x,
        y,
        n_labels,
        label_names,
        feature_names: None,
        source: path.display().to_string(),
    })
}

fn read_sparse(path: &Path, opts: &LoadOptions, npz: &mut Npz) -> Result<Dataset> {
    let format = npz.need("format")?.scalar_text(path)?;
    if format != "csr" {
        return Err(Error::format(
            path,
            format!(
                "array 'format': scipy.sparse format '{format}' is not supported; convert with \
                 .tocsr() before scipy.sparse.save_npz"
            ),
        ));
    }
    let (rows, cols) = sparse_shape(path, opts, npz)?;
    let csr = read_csr(path, npz, rows, cols)?;
    let labelled = match &opts.labels_path {
        Some(lp) => Some((
            read_labels_file(lp, opts)?,
            lp.clone(),
            "labels".to_string(),
        )),
        None => None,
    };
    finish(
        path,
        opts,
        Features::Sparse(csr),
        labelled,
        "a scipy.sparse matrix holds no labels and no labels file was given (pass the labels \
         as a .npy file)",
    )
}

/// `(rows, cols)` from the `shape` array, checked against the model.
fn sparse_shape(path: &Path, opts: &LoadOptions, npz: &mut Npz) -> Result<(usize, usize)> {
    let shape = npz.need("shape")?;
    shape.require_integer(path)?;
    if shape.len() != 2 || shape.shape.len() != 1 {
        return Err(shape.err(
            path,
            format!("expected 2 values, found shape {:?}", shape.shape),
        ));
    }
    let (rows, cols) = match (shape.int_at(0), shape.int_at(1)) {
        // Column indices are stored as u32.
        (Some(r), Some(c)) if r >= 0 && c >= 0 && c <= u32::MAX as i128 + 1 => {
            (r as usize, c as usize)
        }
        (r, c) => return Err(shape.err(path, format!("bad matrix shape ({r:?}, {c:?})"))),
    };
    if let Some(n) = opts.n_features {
        if n != cols {
            return Err(Error::Mismatch(format!(
                "{}: the matrix has {cols} features, the model expects {n}",
                path.display()
            )));
        }
    }
    if rows == 0 {
        return Err(shape.err(path, "the matrix has no rows"));
    }
    Ok((rows, cols))
}

/// Loads `indptr`, `indices` and `data`, checks their sizes, and builds the CSR matrix.
fn read_csr(path: &Path, npz: &mut Npz, rows: usize, cols: usize) -> Result<CsrMatrix> {
    let indptr_arr = npz.need("indptr")?;
    indptr_arr.require_integer(path)?;
    let n_ptr = indptr_arr.require_1d(path)?;
    let indices = npz.need("indices")?;
    indices.require_integer(path)?;
    let nnz = indices.require_1d(path)?;
    let data = npz.need("data")?;
    data.require_numeric(path)?;
    let n_data = data.require_1d(path)?;
    if n_ptr != rows + 1 {
        return Err(indptr_arr.err(
            path,
            format!("has {n_ptr} entries, expected rows + 1 = {}", rows + 1),
        ));
    }
    if n_data != nnz {
        return Err(data.err(
            path,
            format!("has {n_data} entries but 'indices' has {nnz}"),
        ));
    }
    let indptr = checked_indptr(path, &indptr_arr, rows, nnz)?;
    build_csr(path, &indices, &data, &indptr, cols)
}

/// `indptr` as offsets: starting at 0, non-decreasing, ending at `nnz`.
fn checked_indptr(path: &Path, arr: &Npy, rows: usize, nnz: usize) -> Result<Vec<usize>> {
    let mut indptr = Vec::with_capacity(rows + 1);
    for k in 0..=rows {
        let v = arr.int_at(k).unwrap_or(-1);
        let prev = indptr.last().copied().unwrap_or(0);
        if k == 0 && v != 0 {
            return Err(arr.err(path, format!("must start at 0, starts at {v}")));
        }
        if v < prev as i128 || v > nnz as i128 {
            return Err(arr.err_row(
                path,
                k.saturating_sub(1),
                format!(
                    "indptr[{k}] = {v} is not between indptr[{}] = {prev} and nnz = {nnz} \
                     (indptr must be non-decreasing)",
                    k.saturating_sub(1)
                ),
            ));
        }
        indptr.push(v as usize);
    }
    if indptr[rows] != nnz {
        return Err(arr.err(
            path,
            format!(
                "ends at {} but there are {nnz} stored entries",
                indptr[rows]
            ),
        ));
    }
    Ok(indptr)
}

/// The CSR matrix with rows sorted by column and explicit zeros dropped.
fn build_csr(
    path: &Path,
    indices: &Npy,
    data: &Npy,
    indptr: &[usize],
    cols: usize,
) -> Result<CsrMatrix> {
    let rows = indptr.len() - 1;
    let nnz = indptr[rows];
    let mut out_ptr = Vec::with_capacity(rows + 1);
    out_ptr.push(0usize);
    let mut out_idx: Vec<u32> = Vec::with_capacity(nnz);
    let mut out_val: Vec<f32> = Vec::with_capacity(nnz);
    let mut row_buf: Vec<(u32, f32)> = Vec::new();
    for r in 0..rows {
        sorted_row(
            path,
            indices,
            data,
            r,
            indptr[r]..indptr[r + 1],
            cols,
            &mut row_buf,
        )?;
        for &(c, v) in &row_buf {
            if v != 0.0 {
                out_idx.push(c);
                out_val.push(v);
            }
        }
        out_ptr.push(out_idx.len());
    }
    Ok(CsrMatrix {
        rows,
        cols,
        indptr: out_ptr,
        indices: out_idx,
        values: out_val,
    })
}

/// Fills `row_buf` with row `r`'s entries (stored at `range`), sorted by column, no duplicates.
fn sorted_row(
    path: &Path,
    indices: &Npy,
    data: &Npy,
    r: usize,
    range: std::ops::Range<usize>,
    cols: usize,
    row_buf: &mut Vec<(u32, f32)>,
) -> Result<()> {
    row_buf.clear();
    let mut sorted = true;
    for k in range {
        let c = indices.int_at(k).unwrap_or(-1);
        if c < 0 || c >= cols as i128 {
            return Err(indices.err_row(path, r, format!("column index {c} is outside 0..{cols}")));
        }
        let v = data.finite_f32(path, k, r)?;
        if let Some(&(p, _)) = row_buf.last() {
            sorted &= p < c as u32;
        }
        row_buf.push((c as u32, v));
    }
    if !sorted {
        row_buf.sort_by_key(|&(c, _)| c);
    }
    for w in row_buf.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(indices.err_row(
                path,
                r,
                format!(
                    "column {} is stored twice (duplicate entries; call \
                     .sum_duplicates() before saving)",
                    w[0].0
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "npz_tests.rs"]
mod tests;
