//! svmlight / libsvm reader (plain, or gzip-compressed detected by its magic bytes).
//!
//! Format, one row a line: `label idx:val idx:val ... [# comment]`.
//!
//! - Blank lines and comment-only lines are not rows. `qid:N` tokens are ignored.
//! - Binary labels: `0/1` or `-1/+1` (any numeric spelling: `+1`, `1.0`, `-1.0`); a file may
//!   not mix `0` and `-1`.
//! - Multi-label: comma-separated non-negative integer class ids (`1,3`); a line whose first
//!   token is already `idx:val` has no positive class. Multi-label mode is on with
//!   `opts.multilabel` or when any label field contains a comma. Label names are the class ids
//!   seen, sorted numerically, unless `opts.label_names` fixes them.
//! - A file in which no line has a label token is unlabelled (`y = None`), allowed only when
//!   labels are not required.
//! - Indices: see [`IndexBase`]; strictly increasing within a line; values finite `f32`.
//!   Explicit zero values are dropped from the CSR (the row itself is kept).
//! - Columns: `opts.n_features` if set (an index at or past it is an error), else the largest
//!   index + 1.

use super::{CsrMatrix, Dataset, Features, IndexBase, LoadOptions};
use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Everything the single pass over the file collects; labels and index base are resolved
/// afterwards because both depend on the whole file.
#[derive(Default)]
struct Raw {
    /// Physical line of each row.
    lines: Vec<usize>,
    /// The rows, indices as written in the file (before base adjustment), explicit zeros
    /// kept; `cols` is not known yet.
    x: CsrMatrix,
    /// The row being parsed.
    row_indices: Vec<u32>,
    row_values: Vec<f32>,
    /// Label fields of all rows, concatenated; `label_ends[r]` is where row r's ends.
    label_bytes: Vec<u8>,
    label_ends: Vec<usize>,
    any_comma: bool,
    any_label: bool,
    min_index: Option<u32>,
    max_index: Option<u32>,
}

impl Raw {
    fn label(&self, row: usize) -> &[u8] {
        let start = if row == 0 {
            0
        } else {
            self.label_ends[row - 1]
        };
        &self.label_bytes[start..self.label_ends[row]]
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// Parses a non-negative decimal integer (digits only).
fn parse_uint(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(v)
}

fn parse_line(path: &Path, lineno: usize, line: &[u8], raw: &mut Raw) -> Result<()> {
    // Strip the comment, if any.
    let content = match line.iter().position(|&b| b == b'#') {
        Some(p) => &line[..p],
        None => line,
    };
    let mut tokens = content
        .split(|&b| is_space(b))
        .filter(|t| !t.is_empty())
        .peekable();
    let Some(&first) = tokens.peek() else {
        return Ok(()); // blank or comment-only: not a row
    };
    // The label field: the first token unless it is already `idx:val`.
    if !first.contains(&b':') {
        tokens.next();
        raw.any_label = true;
        raw.any_comma |= first.contains(&b',');
        raw.label_bytes.extend_from_slice(first);
    }
    raw.label_ends.push(raw.label_bytes.len());
    raw.lines.push(lineno);

    raw.row_indices.clear();
    raw.row_values.clear();
    let mut prev: Option<u32> = None;
    for tok in tokens {
        let (idx_text, val_text) = split_pair(path, lineno, tok)?;
        if idx_text == b"qid" {
            continue;
        }
        let idx = parse_index(path, lineno, idx_text)?;
        if let Some(p) = prev {
            check_increasing(path, lineno, p, idx)?;
        }
        prev = Some(idx);
        let value = parse_value(path, lineno, idx_text, val_text)?;
        raw.min_index = Some(raw.min_index.map_or(idx, |m| m.min(idx)));
        raw.max_index = Some(raw.max_index.map_or(idx, |m| m.max(idx)));
        raw.row_indices.push(idx);
        raw.row_values.push(value);
    }
    raw.x.push_row(&raw.row_indices, &raw.row_values);
    Ok(())
}

/// Splits an `index:value` token at its colon.
fn split_pair<'t>(path: &Path, lineno: usize, tok: &'t [u8]) -> Result<(&'t [u8], &'t [u8])> {
    let Some(colon) = tok.iter().position(|&b| b == b':') else {
        return Err(Error::parse(
            path,
            lineno,
            "index",
            format!(
                "expected index:value, found '{}' (a label must be the first token; \
                 multi-label class ids are written comma-separated without spaces, e.g. 1,3)",
                show(tok)
            ),
        ));
    };
    Ok((&tok[..colon], &tok[colon + 1..]))
}

/// A feature index as written (base not yet resolved); CSR indices are u32.
fn parse_index(path: &Path, lineno: usize, idx_text: &[u8]) -> Result<u32> {
    match parse_uint(idx_text) {
        Some(v) if v <= u32::MAX as u64 => Ok(v as u32),
        Some(_) => Err(Error::parse(
            path,
            lineno,
            "index",
            format!(
                "index {} is too large (at most {})",
                show(idx_text),
                u32::MAX
            ),
        )),
        None => Err(Error::parse(
            path,
            lineno,
            "index",
            format!(
                "'{}' is not a feature index (a non-negative integer)",
                show(idx_text)
            ),
        )),
    }
}

/// Indices within a line must be strictly increasing (`prev` came just before `idx`).
fn check_increasing(path: &Path, lineno: usize, prev: u32, idx: u32) -> Result<()> {
    if idx == prev {
        return Err(Error::parse(
            path,
            lineno,
            "index",
            format!("duplicate index {idx}"),
        ));
    }
    if idx < prev {
        return Err(Error::parse(
            path,
            lineno,
            "index",
            format!(
                "index {idx} comes after index {prev}; indices must be strictly increasing \
                 within a line"
            ),
        ));
    }
    Ok(())
}

fn parse_value(path: &Path, lineno: usize, idx_text: &[u8], val_text: &[u8]) -> Result<f32> {
    let field = || String::from_utf8_lossy(idx_text).into_owned();
    let text = std::str::from_utf8(val_text).map_err(|_| {
        Error::parse(
            path,
            lineno,
            field(),
            "value is not valid UTF-8 (expected a number)",
        )
    })?;
    if text.is_empty() {
        return Err(Error::parse(
            path,
            lineno,
            field(),
            "missing value after ':'",
        ));
    }
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => {
            let what = if v.is_nan() {
                "is NaN"
            } else if text.to_ascii_lowercase().contains("inf") {
                "is infinite"
            } else {
                "is out of the f32 range"
            };
            Err(Error::parse(
                path,
                lineno,
                field(),
                format!(
                    "value '{}' {what}; only finite numbers are allowed",
                    show(val_text)
                ),
            ))
        }
        Err(_) => Err(Error::parse(
            path,
            lineno,
            field(),
            format!("value '{}' is not a number", show(val_text)),
        )),
    }
}

/// Binary labels: 0/1 or -1/+1, never both 0 and -1.
fn binary_labels(path: &Path, raw: &Raw) -> Result<Vec<f32>> {
    let rows = raw.lines.len();
    let mut y = Vec::with_capacity(rows);
    let mut zero_at: Option<usize> = None;
    let mut minus_at: Option<usize> = None;
    for r in 0..rows {
        let line = raw.lines[r];
        let text = raw.label(r);
        if text.is_empty() {
            return Err(Error::parse(
                path,
                line,
                "label",
                "missing label: the line starts with index:value but other lines have labels",
            ));
        }
        let v: f64 = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN);
        let label = if v == 1.0 {
            1.0
        } else if v == 0.0 {
            zero_at.get_or_insert(line);
            0.0
        } else if v == -1.0 {
            minus_at.get_or_insert(line);
            0.0
        } else {
            return Err(Error::parse(
                path,
                line,
                "label",
                format!(
                    "label '{}' is not binary (0/1 or -1/+1); for multi-label data write \
                     the class ids comma-separated (e.g. '1,3') or read the labels as multi-label \
                     (the `multilabel` load option)",
                    show(text)
                ),
            ));
        };
        if let (Some(z), Some(m)) = (zero_at, minus_at) {
            return Err(Error::parse(
                path,
                line,
                "label",
                format!(
                    "labels mix 0 (first on line {z}) and -1 (first on line {m}); binary labels \
                     are either 0/1 or -1/+1; for multi-label data write class ids \
                     comma-separated (e.g. '1,3') or read the labels as multi-label (the \
                     `multilabel` load option)"
                ),
            ));
        }
        y.push(label);
    }
    Ok(y)
}

/// Splits a multi-label field into class ids (empty field: no positive class).
fn class_ids(path: &Path, line: usize, text: &[u8], out: &mut Vec<u64>) -> Result<()> {
    out.clear();
    if text.is_empty() {
        return Ok(());
    }
    for part in text.split(|&b| b == b',') {
        let Some(id) = parse_uint(part) else {
            return Err(Error::parse(
                path,
                line,
                "label",
                format!(
                    "'{}' in label field '{}' is not a class id (a non-negative integer)",
                    show(part),
                    show(text)
                ),
            ));
        };
        if out.contains(&id) {
            return Err(Error::parse(
                path,
                line,
                "label",
                format!("class id {id} is repeated in '{}'", show(text)),
            ));
        }
        out.push(id);
    }
    Ok(())
}

/// Multi-label indicator matrix and its label names.
fn multi_labels(path: &Path, raw: &Raw, opts: &LoadOptions) -> Result<(Vec<f32>, Vec<String>)> {
    let rows = raw.lines.len();
    let mut ids = Vec::new();
    let names: Vec<String> = match &opts.label_names {
        Some(names) => names.clone(),
        None => {
            let mut seen = BTreeSet::new();
            for r in 0..rows {
                class_ids(path, raw.lines[r], raw.label(r), &mut ids)?;
                seen.extend(ids.iter().copied());
            }
            seen.iter().map(u64::to_string).collect()
        }
    };
    if names.is_empty() {
        return Err(Error::format(
            path,
            "multi-label data without any class id: no line has a positive label",
        ));
    }
    let column: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let n = names.len();
    let mut y = vec![0.0f32; rows * n];
    for r in 0..rows {
        class_ids(path, raw.lines[r], raw.label(r), &mut ids)?;
        for &id in &ids {
            let key = id.to_string();
            let Some(&c) = column.get(key.as_str()) else {
                return Err(Error::parse(
                    path,
                    raw.lines[r],
                    "label",
                    format!(
                        "class id {id} is not one of the model's {n} labels ({})",
                        names
                            .iter()
                            .take(10)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                            + if n > 10 { ", ..." } else { "" }
                    ),
                ));
            };
            y[r * n + c] = 1.0;
        }
    }
    Ok((y, names))
}

/// The row holding entry `k` of the raw CSR.
fn row_of(raw: &Raw, k: usize) -> usize {
    // indptr has rows + 1 entries; the row is the last r with indptr[r] <= k < indptr[r + 1].
    raw.x.indptr.partition_point(|&p| p <= k) - 1
}

/// Opens `path`, transparently decompressing gzip (by magic bytes, whatever the name).
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = BufReader::with_capacity(1 << 20, file);
    let head = buf.fill_buf().map_err(|e| Error::io(path, e))?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(buf)))
    } else {
        Box::new(buf)
    })
}

/// The single pass over the lines; fails if there are no rows.
fn read_raw(path: &Path, mut reader: Box<dyn BufRead>) -> Result<Raw> {
    let mut raw = Raw::default();
    let mut line = Vec::with_capacity(4096);
    let mut lineno = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        parse_line(path, lineno, &line, &mut raw)?;
    }
    if raw.lines.is_empty() {
        return Err(Error::format(
            path,
            "no data rows (the file is empty or has only comments)",
        ));
    }
    Ok(raw)
}

/// `(y, n_labels, label_names)`: unlabelled, multi-label or binary.
type Labels = (Option<Vec<f32>>, usize, Vec<String>);

fn resolve_labels(path: &Path, raw: &Raw, opts: &LoadOptions) -> Result<Labels> {
    let multilabel = opts.multilabel || raw.any_comma;
    Ok(if !raw.any_label && !opts.require_labels {
        let names = opts
            .label_names
            .clone()
            .unwrap_or_else(|| vec!["label".to_string()]);
        (None, names.len(), names)
    } else if !raw.any_label && !multilabel {
        return Err(Error::parse(
            path,
            raw.lines[0],
            "label",
            "no labels: every line starts with index:value, but labels are required",
        ));
    } else if multilabel {
        let (y, names) = multi_labels(path, raw, opts)?;
        (Some(y), names.len(), names)
    } else {
        (
            Some(binary_labels(path, raw)?),
            1,
            vec!["label".to_string()],
        )
    })
}

/// Whether the file's indices are 0-based (rejecting index 0 in 1-based data).
fn zero_based(path: &Path, raw: &Raw, opts: &LoadOptions) -> Result<bool> {
    let zero_based = match opts.index_base {
        IndexBase::Zero => true,
        IndexBase::One => false,
        IndexBase::Auto => raw.min_index == Some(0),
    };
    if !zero_based && raw.min_index == Some(0) {
        let k = raw.x.indices.iter().position(|&i| i == 0).unwrap_or(0);
        return Err(Error::parse(
            path,
            raw.lines[row_of(raw, k)],
            "index",
            "index 0 in 1-based data (indices start at 1; use zero-based indexing if the file \
             is 0-based)",
        ));
    }
    Ok(zero_based)
}

/// The column count: the model's, if given (no index may reach past it), else the widest row.
fn column_count(path: &Path, raw: &Raw, opts: &LoadOptions, zero_based: bool) -> Result<usize> {
    let offset = u32::from(!zero_based);
    let width = raw.max_index.map_or(0, |m| (m - offset) as usize + 1);
    let Some(n) = opts.n_features else {
        return Ok(width);
    };
    if width > n {
        let base_name = if zero_based { "0-based" } else { "1-based" };
        let limit = n as u64 + offset as u64;
        let k = raw
            .x
            .indices
            .iter()
            .position(|&i| i as u64 >= limit)
            .unwrap_or(0);
        return Err(Error::parse(
            path,
            raw.lines[row_of(raw, k)],
            "index",
            format!(
                "index {} ({base_name}) is past the model's {n} features: the data has \
                 more features than the model",
                raw.x.indices[k]
            ),
        ));
    }
    Ok(n)
}

/// Final CSR: indices shifted down by `offset`, explicit zeros dropped (in place, so the
/// big arrays are never copied).
fn compact(x: CsrMatrix, rows: usize, cols: usize, offset: u32) -> CsrMatrix {
    let CsrMatrix {
        mut indptr,
        mut indices,
        mut values,
        ..
    } = x;
    let mut w = 0usize;
    let mut start = 0usize;
    for r in 0..rows {
        let end = indptr[r + 1];
        for k in start..end {
            if values[k] != 0.0 {
                indices[w] = indices[k] - offset;
                values[w] = values[k];
                w += 1;
            }
        }
        start = end;
        indptr[r + 1] = w;
    }
    indices.truncate(w);
    values.truncate(w);
    indices.shrink_to_fit();
    values.shrink_to_fit();
    CsrMatrix {
        rows,
        cols,
        indptr,
        indices,
        values,
    }
}

/// Reads an svmlight/libsvm file (optionally gzip-compressed); see the module documentation.
pub fn read(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    Ok(read_info(path, opts)?.0)
}

/// [`read`], plus the index base the file was read with (`Auto` resolved).
pub fn read_info(path: &Path, opts: &LoadOptions) -> Result<(Dataset, IndexBase)> {
    let raw = read_raw(path, open(path)?)?;
    let rows = raw.lines.len();
    let (y, n_labels, label_names) = resolve_labels(path, &raw, opts)?;
    let zero_based = zero_based(path, &raw, opts)?;
    let cols = column_count(path, &raw, opts, zero_based)?;
    let ds = Dataset {
        x: Features::Sparse(compact(raw.x, rows, cols, u32::from(!zero_based))),
        y,
        n_labels,
        label_names,
        feature_names: None,
        source: path.display().to_string(),
    };
    let base = if zero_based {
        IndexBase::Zero
    } else {
        IndexBase::One
    };
    Ok((ds, base))
}

#[cfg(test)]
#[path = "svmlight_tests.rs"]
mod tests;
