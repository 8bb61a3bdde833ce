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

use super::{CsrMatrix, Dataset, DenseMatrix, Features, LoadOptions};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// .npy parsing

/// Element type of a `.npy` array (always little-endian in memory here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    F4,
    F8,
    I1,
    I2,
    I4,
    I8,
    U1,
    U2,
    U4,
    U8,
    Bool,
    /// `|S<n>`: fixed-width bytes.
    Bytes(usize),
    /// `<U<n>`: fixed-width UCS-4.
    Unicode(usize),
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::I1 | Kind::U1 | Kind::Bool => 1,
            Kind::I2 | Kind::U2 => 2,
            Kind::F4 | Kind::I4 | Kind::U4 => 4,
            Kind::F8 | Kind::I8 | Kind::U8 => 8,
            Kind::Bytes(n) => n,
            Kind::Unicode(n) => 4 * n,
        }
    }
    fn is_numeric(self) -> bool {
        !matches!(self, Kind::Bytes(_) | Kind::Unicode(_))
    }
    fn is_integer(self) -> bool {
        matches!(
            self,
            Kind::I1 | Kind::I2 | Kind::I4 | Kind::I8 | Kind::U1 | Kind::U2 | Kind::U4 | Kind::U8
        )
    }
}

/// A parsed `.npy` array: raw little-endian bytes plus its layout.
#[derive(Debug)]
struct Npy {
    /// For messages: the array name (`X`, `y`, `data`, ... or a labels file name).
    name: String,
    descr: String,
    kind: Kind,
    shape: Vec<usize>,
    fortran: bool,
    data: Vec<u8>,
}

/// A Python literal, as far as `.npy` headers need.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Py>),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

struct PyParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl PyParser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.pos))
        }
    }
    /// Items up to `close`, allowing a trailing comma. Returns them and whether any comma
    /// was seen (to tell `(3)` from `(3,)`).
    fn seq(&mut self, close: u8) -> std::result::Result<(Vec<Py>, bool), String> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, comma));
            }
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    comma = true;
                }
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or '{}' at offset {}",
                        close as char, self.pos
                    ))
                }
            }
        }
    }
    fn value(&mut self) -> std::result::Result<Py, String> {
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(Py::Dict(items));
                    }
                    let k = self.value()?;
                    self.expect(b':')?;
                    let v = self.value()?;
                    items.push((k, v));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at offset {}", self.pos)),
                    }
                }
            }
            Some(b'(') => {
                self.pos += 1;
                let (items, comma) = self.seq(b')')?;
                if items.len() == 1 && !comma {
                    Ok(items.into_iter().next().unwrap_or(Py::None)) // parenthesised value
                } else {
                    Ok(Py::Tuple(items))
                }
            }
            Some(b'[') => {
                self.pos += 1;
                Ok(Py::List(self.seq(b']')?.0))
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos] != q {
                    if self.s[self.pos] == b'\\' {
                        self.pos += 1;
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err("unterminated string".into());
                }
                let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                self.pos += 1;
                Ok(Py::Str(text))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                // Python 2 era headers may write longs as `3L`.
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                let v = text
                    .parse::<i128>()
                    .map_err(|_| format!("bad integer '{text}'"))?;
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                Ok(Py::Int(v))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    other => Err(format!(
                        "unexpected name '{}'",
                        String::from_utf8_lossy(other)
                    )),
                }
            }
            Some(c) => Err(format!("unexpected '{}' at offset {}", c as char, self.pos)),
            None => Err("unexpected end of header".into()),
        }
    }
}

fn parse_descr(descr: &str) -> std::result::Result<Kind, String> {
    let bytes = descr.as_bytes();
    if bytes.is_empty() {
        return Err("empty dtype".into());
    }
    let (order, rest) = match bytes[0] {
        b'<' | b'>' | b'|' | b'=' => (bytes[0], &descr[1..]),
        _ => (b'=', descr),
    };
    if rest.starts_with('O') {
        return Err(format!(
            "dtype '{descr}' is an object array (pickled Python objects), which is not \
             supported; save numeric arrays"
        ));
    }
    let (code, size) = rest.split_at(rest.len().min(1));
    let size: usize = size
        .parse()
        .map_err(|_| format!("unsupported dtype '{descr}'"))?;
    let big = order == b'>' || (order == b'=' && cfg!(target_endian = "big"));
    let kind = match (code, size) {
        ("f", 4) => Kind::F4,
        ("f", 8) => Kind::F8,
        ("i", 1) => Kind::I1,
        ("i", 2) => Kind::I2,
        ("i", 4) => Kind::I4,
        ("i", 8) => Kind::I8,
        ("u", 1) => Kind::U1,
        ("u", 2) => Kind::U2,
        ("u", 4) => Kind::U4,
        ("u", 8) => Kind::U8,
        ("b", 1) => Kind::Bool,
        ("S", n) => Kind::Bytes(n),
        ("U", n) => Kind::Unicode(n),
        _ => {
            return Err(format!(
                "unsupported dtype '{descr}' (supported: float32/64, (u)int8..64, bool)"
            ))
        }
    };
    if big && kind.size() > 1 && !matches!(kind, Kind::Bytes(_)) {
        return Err(format!(
            "dtype '{descr}' is big-endian; only little-endian arrays are supported \
             (convert with arr.astype(arr.dtype.newbyteorder('<')))"
        ));
    }
    Ok(kind)
}

/// Parses a whole `.npy` file held in memory. `path` is the file for messages.
fn parse_npy(path: &Path, name: &str, mut bytes: Vec<u8>) -> Result<Npy> {
    let bad = |msg: String| Error::format(path, format!("array '{name}': {msg}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy array (bad magic bytes)".into()));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err(bad("truncated header".into())),
        _ => {
            return Err(bad(format!(
                ".npy format version {major}.{minor} is not supported (1.0, 2.0, 3.0 are)"
            )))
        }
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header".into()))?;
    let mut parser = PyParser {
        s: &bytes[start..end],
        pos: 0,
    };
    let header = parser
        .value()
        .map_err(|e| bad(format!("unreadable header: {e}")))?;
    let Py::Dict(items) = header else {
        return Err(bad("header is not a dict".into()));
    };
    let get = |key: &str| {
        items
            .iter()
            .find(|(k, _)| *k == Py::Str(key.into()))
            .map(|(_, v)| v.clone())
    };
    let descr = match get("descr") {
        Some(Py::Str(s)) => s,
        Some(Py::List(_)) => {
            return Err(bad(
                "structured (record) dtypes are not supported; save plain numeric arrays".into(),
            ))
        }
        _ => return Err(bad("header has no 'descr'".into())),
    };
    let kind = parse_descr(&descr).map_err(bad)?;
    let fortran = match get("fortran_order") {
        Some(Py::Bool(b)) => b,
        _ => return Err(bad("header has no 'fortran_order'".into())),
    };
    let shape = match get("shape") {
        Some(Py::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                Py::Int(v) if *v >= 0 && *v <= usize::MAX as i128 => Ok(*v as usize),
                _ => Err(bad(format!("bad dimension {d:?} in shape"))),
            })
            .collect::<Result<Vec<usize>>>()?,
        Some(Py::Int(v)) if v >= 0 => vec![v as usize],
        _ => return Err(bad("header has no 'shape'".into())),
    };
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(kind.size()))
        .ok_or_else(|| bad(format!("shape {shape:?} is too large")))?;
    let have = bytes.len() - end;
    if have < count {
        return Err(bad(format!(
            "truncated: shape {shape:?} of {descr} needs {count} data bytes, the file has {have}"
        )));
    }
    if have > count {
        return Err(bad(format!(
            "{} unexpected bytes after the data of shape {shape:?}",
            have - count
        )));
    }
    bytes.drain(..end);
    Ok(Npy {
        name: name.to_string(),
        descr,
        kind,
        shape,
        fortran,
        data: bytes,
    })
}

impl Npy {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn err(&self, path: &Path, msg: impl std::fmt::Display) -> Error {
        Error::format(path, format!("array '{}': {msg}", self.name))
    }

    fn err_row(&self, path: &Path, row: usize, msg: impl std::fmt::Display) -> Error {
        Error::format(path, format!("array '{}', row {row}: {msg}", self.name))
    }

    fn bytes_at(&self, k: usize) -> &[u8] {
        let s = self.kind.size();
        &self.data[k * s..(k + 1) * s]
    }

    /// Element `k` (in file order) as f64. Only for numeric kinds.
    fn f64_at(&self, k: usize) -> f64 {
        let b = self.bytes_at(k);
        match self.kind {
            Kind::F4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Kind::F8 => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
            Kind::Bool => (b[0] != 0) as u8 as f64,
            _ => self.int_at(k).unwrap_or(0) as f64,
        }
    }

    /// Element `k` (in file order) as an integer, for integer and bool kinds.
    fn int_at(&self, k: usize) -> Option<i128> {
        let b = self.bytes_at(k);
        Some(match self.kind {
            Kind::I1 => b[0] as i8 as i128,
            Kind::U1 => b[0] as i128,
            Kind::Bool => (b[0] != 0) as i128,
            Kind::I2 => i16::from_le_bytes([b[0], b[1]]) as i128,
            Kind::U2 => u16::from_le_bytes([b[0], b[1]]) as i128,
            Kind::I4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i128,
            Kind::U4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i128,
            Kind::I8 => i64::from_le_bytes(b.try_into().ok()?) as i128,
            Kind::U8 => u64::from_le_bytes(b.try_into().ok()?) as i128,
            _ => return None,
        })
    }

    /// File-order position of element (r, c) of a 2-D array.
    fn pos2(&self, r: usize, c: usize) -> usize {
        if self.fortran {
            c * self.shape[0] + r
        } else {
            r * self.shape[1] + c
        }
    }

    fn require_numeric(&self, path: &Path) -> Result<()> {
        if self.kind.is_numeric() {
            Ok(())
        } else {
            Err(self.err(path, format!("dtype '{}' is not numeric", self.descr)))
        }
    }

    fn require_integer(&self, path: &Path) -> Result<()> {
        if self.kind.is_integer() {
            Ok(())
        } else {
            Err(self.err(
                path,
                format!("dtype '{}' is not an integer type", self.descr),
            ))
        }
    }

    fn require_1d(&self, path: &Path) -> Result<usize> {
        match self.shape[..] {
            [n] => Ok(n),
            _ => Err(self.err(
                path,
                format!("expected a 1-D array, found shape {:?}", self.shape),
            )),
        }
    }

    /// Finite f32 from element `k`, with `row` for messages.
    fn finite_f32(&self, path: &Path, k: usize, row: usize) -> Result<f32> {
        let v = self.f64_at(k);
        if v.is_nan() {
            return Err(self.err_row(path, row, "value is NaN; only finite numbers are allowed"));
        }
        if v.is_infinite() {
            return Err(self.err_row(
                path,
                row,
                format!("value {v} is infinite; only finite numbers are allowed"),
            ));
        }
        let f = v as f32;
        if !f.is_finite() {
            return Err(self.err_row(path, row, format!("value {v} is out of the f32 range")));
        }
        Ok(f)
    }

    /// The text of a 0-d (or single-element) string array, NUL padding removed.
    fn scalar_text(&self, path: &Path) -> Result<String> {
        if self.len() != 1 {
            return Err(self.err(
                path,
                format!("expected a single string, found shape {:?}", self.shape),
            ));
        }
        match self.kind {
            Kind::Bytes(_) => {
                let end = self
                    .data
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(self.data.len());
                Ok(String::from_utf8_lossy(&self.data[..end]).into_owned())
            }
            Kind::Unicode(_) => Ok(self
                .data
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .take_while(|&u| u != 0)
                .map(|u| char::from_u32(u).unwrap_or('\u{fffd}'))
                .collect()),
            _ => Err(self.err(
                path,
                format!("expected a string, found dtype '{}'", self.descr),
            )),
        }
    }
}

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
    let rows = arr.shape[0];
    if binary {
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
        return Ok((y, 1, names));
    }
    let n = arr.shape[1];
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

/// Reads a `.npz` archive (dense `X`/`y` or scipy.sparse CSR); see the module documentation.
pub fn read(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| zip_error(path, e))?;
    // Array name -> member index.
    let members: BTreeMap<String, usize> = (0..archive.len())
        .filter_map(|i| {
            let name = archive.name_for_index(i)?;
            let array = name.strip_suffix(".npy").unwrap_or(name);
            Some((array.to_string(), i))
        })
        .collect();
    let mut load_array = |name: &str| -> Result<Option<Npy>> {
        let Some(&i) = members.get(name) else {
            return Ok(None);
        };
        let mut member = archive.by_index(i).map_err(|e| zip_error(path, e))?;
        let mut bytes = Vec::with_capacity(member.size().min(1 << 30) as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|e| Error::format(path, format!("array '{name}': cannot decompress: {e}")))?;
        parse_npy(path, name, bytes).map(Some)
    };
    let have = |name: &str| members.contains_key(name);

    if have("format") || have("indptr") {
        return read_sparse(path, opts, &members, &mut load_array);
    }
    let Some(x) = load_array("X")? else {
        let names: Vec<&str> = members.keys().map(String::as_str).collect();
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
    drop(x);

    let y_arr = load_array("y")?;
    let labelled = match (y_arr, &opts.labels_path) {
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
    };
    finish(
        path,
        opts,
        Features::Dense(DenseMatrix { rows, cols, values }),
        labelled,
        "no array 'y' in the archive and no labels file given, but labels are required",
    )
}

/// Attaches labels (checking their row count) or reports their absence.
fn finish(
    path: &Path,
    opts: &LoadOptions,
    x: Features,
    labelled: Option<(Labels, std::path::PathBuf, String)>,
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

fn read_sparse(
    path: &Path,
    opts: &LoadOptions,
    members: &BTreeMap<String, usize>,
    load_array: &mut dyn FnMut(&str) -> Result<Option<Npy>>,
) -> Result<Dataset> {
    let mut need = |name: &str| -> Result<Npy> {
        load_array(name)?.ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "scipy.sparse archive without array '{name}' (arrays: {})",
                    members.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    };
    let format = need("format")?.scalar_text(path)?;
    if format != "csr" {
        return Err(Error::format(
            path,
            format!(
                "array 'format': scipy.sparse format '{format}' is not supported; convert with \
                 .tocsr() before scipy.sparse.save_npz"
            ),
        ));
    }
    let shape = need("shape")?;
    shape.require_integer(path)?;
    if shape.len() != 2 || shape.shape.len() != 1 {
        return Err(shape.err(
            path,
            format!("expected 2 values, found shape {:?}", shape.shape),
        ));
    }
    let (rows, cols) = match (shape.int_at(0), shape.int_at(1)) {
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

    let indptr_arr = need("indptr")?;
    indptr_arr.require_integer(path)?;
    let n_ptr = indptr_arr.require_1d(path)?;
    let indices_arr = need("indices")?;
    indices_arr.require_integer(path)?;
    let nnz = indices_arr.require_1d(path)?;
    let data = need("data")?;
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
    let mut indptr = Vec::with_capacity(rows + 1);
    for k in 0..=rows {
        let v = indptr_arr.int_at(k).unwrap_or(-1);
        let prev = indptr.last().copied().unwrap_or(0);
        if k == 0 && v != 0 {
            return Err(indptr_arr.err(path, format!("must start at 0, starts at {v}")));
        }
        if v < prev as i128 || v > nnz as i128 {
            return Err(indptr_arr.err_row(
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
        return Err(indptr_arr.err(
            path,
            format!(
                "ends at {} but there are {nnz} stored entries",
                indptr[rows]
            ),
        ));
    }

    let mut out_ptr = Vec::with_capacity(rows + 1);
    out_ptr.push(0usize);
    let mut out_idx: Vec<u32> = Vec::with_capacity(nnz);
    let mut out_val: Vec<f32> = Vec::with_capacity(nnz);
    let mut row_buf: Vec<(u32, f32)> = Vec::new();
    for r in 0..rows {
        row_buf.clear();
        let mut sorted = true;
        for k in indptr[r]..indptr[r + 1] {
            let c = indices_arr.int_at(k).unwrap_or(-1);
            if c < 0 || c >= cols as i128 {
                return Err(indices_arr.err_row(
                    path,
                    r,
                    format!("column index {c} is outside 0..{cols}"),
                ));
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
                return Err(indices_arr.err_row(
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
        for &(c, v) in &row_buf {
            if v != 0.0 {
                out_idx.push(c);
                out_val.push(v);
            }
        }
        out_ptr.push(out_idx.len());
    }

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
        Features::Sparse(CsrMatrix {
            rows,
            cols,
            indptr: out_ptr,
            indices: out_idx,
            values: out_val,
        }),
        labelled,
        "a scipy.sparse matrix holds no labels and no labels file was given (pass the labels \
         as a .npy file)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/data")
            .join(name)
    }

    fn with_labels(name: &str) -> LoadOptions {
        LoadOptions {
            labels_path: Some(fixture(name)),
            ..LoadOptions::labelled()
        }
    }

    fn dense(ds: &Dataset) -> &DenseMatrix {
        match &ds.x {
            Features::Dense(m) => m,
            _ => panic!("expected dense"),
        }
    }

    fn csr(ds: &Dataset) -> &CsrMatrix {
        match &ds.x {
            Features::Sparse(m) => m,
            _ => panic!("expected sparse"),
        }
    }

    /// The X written by scripts/make_data_fixtures.py: r + c/8, +0.25 on the diagonal.
    fn expected_x() -> Vec<f32> {
        let mut v = Vec::new();
        for r in 0..4 {
            for c in 0..3 {
                v.push(r as f32 + c as f32 / 8.0 + if r == c { 0.25 } else { 0.0 });
            }
        }
        v
    }

    fn fixture_err(name: &str, o: &LoadOptions) -> String {
        read(&fixture(name), o).unwrap_err().to_string()
    }

    // ---- Synthetic archives for cases numpy would not write.

    fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let shape = match shape {
            [] => "()".to_string(),
            [n] => format!("({n},)"),
            dims => format!(
                "({})",
                dims.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        npy_with_header(
            &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"),
            data,
        )
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn i64s(v: &[i64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn npz(members: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("syn.npz");
        let mut z = zip::ZipWriter::new(File::create(&p).unwrap());
        for (name, bytes) in members {
            z.start_file(
                format!("{name}.npy"),
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored),
            )
            .unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
        (dir, p)
    }

    fn syn_err(members: &[(&str, Vec<u8>)], o: &LoadOptions) -> String {
        let (_d, p) = npz(members);
        read(&p, o).unwrap_err().to_string()
    }

    fn good_x() -> Vec<u8> {
        npy("<f4", &[2, 2], &f32s(&[1.0, 2.0, 3.0, 4.0]))
    }

    fn good_y() -> Vec<u8> {
        npy("<i8", &[2], &i64s(&[0, 1]))
    }

    /// A 2x3 CSR [[0, 5, 0], [7, 0, 8]] as save_npz members, with overridable parts.
    fn csr_members() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("format", npy("|S3", &[], b"csr")),
            ("shape", npy("<i8", &[2], &i64s(&[2, 3]))),
            (
                "indptr",
                npy("<i4", &[3], &[0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0]),
            ),
            ("indices", npy("<i8", &[3], &i64s(&[1, 0, 2]))),
            ("data", npy("<f4", &[3], &f32s(&[5.0, 7.0, 8.0]))),
        ]
    }

    fn replace(
        mut m: Vec<(&'static str, Vec<u8>)>,
        name: &str,
        bytes: Vec<u8>,
    ) -> Vec<(&'static str, Vec<u8>)> {
        for entry in &mut m {
            if entry.0 == name {
                entry.1 = bytes.clone();
            }
        }
        m
    }

    // ---- Fixtures written by numpy / scipy.

    #[test]
    fn dense_f32_binary() {
        let ds = read(&fixture("dense_f32.npz"), &LoadOptions::labelled()).unwrap();
        let m = dense(&ds);
        assert_eq!((m.rows, m.cols), (4, 3));
        assert_eq!(m.values, expected_x());
        assert_eq!(ds.y, Some(vec![0.0, 1.0, 1.0, 0.0]));
        assert_eq!(ds.n_labels, 1);
        assert_eq!(ds.label_names, vec!["label".to_string()]);
        assert_eq!(ds.feature_names, None);
        // Through the dispatcher as well.
        assert_eq!(
            crate::data::load(&fixture("dense_f32.npz"), &LoadOptions::labelled()).unwrap(),
            ds
        );
    }

    #[test]
    fn dense_f64_minus_one_labels() {
        let ds = read(&fixture("dense_f64.npz"), &LoadOptions::labelled()).unwrap();
        assert_eq!(dense(&ds).values, expected_x());
        assert_eq!(ds.y, Some(vec![0.0, 1.0, 1.0, 0.0]));
    }

    #[test]
    fn dense_compressed_bool_labels() {
        let ds = read(&fixture("dense_compressed.npz"), &LoadOptions::labelled()).unwrap();
        assert_eq!(dense(&ds).values, expected_x());
        assert_eq!(ds.y, Some(vec![1.0, 0.0, 1.0, 0.0]));
    }

    #[test]
    fn fortran_order_x() {
        let ds = read(&fixture("fortran.npz"), &LoadOptions::labelled()).unwrap();
        assert_eq!(dense(&ds).values, expected_x());
        assert_eq!(ds.y, Some(vec![1.0, 0.0, 0.0, 1.0]));
    }

    #[test]
    fn multilabel_y() {
        let ds = read(&fixture("multilabel.npz"), &LoadOptions::labelled()).unwrap();
        assert_eq!(ds.n_labels, 3);
        assert_eq!(ds.label_names, vec!["0", "1", "2"]);
        assert_eq!(
            ds.y,
            Some(vec![1., 0., 1., 0., 0., 0., 0., 1., 0., 1., 1., 1.])
        );
        let o = LoadOptions {
            label_names: Some(vec!["a".into(), "b".into(), "c".into()]),
            ..LoadOptions::labelled()
        };
        let ds = read(&fixture("multilabel.npz"), &o).unwrap();
        assert_eq!(ds.label_names, vec!["a", "b", "c"]);
        let o = LoadOptions {
            label_names: Some(vec!["a".into(), "b".into()]),
            ..LoadOptions::labelled()
        };
        let e = read(&fixture("multilabel.npz"), &o).unwrap_err();
        assert!(matches!(e, Error::Mismatch(_)), "{e}");
        let e = e.to_string();
        assert!(e.contains("multilabel.npz") && e.contains("'y'") && e.contains("3 label"));
    }

    #[test]
    fn unlabelled_dense() {
        let o = LoadOptions {
            require_labels: false,
            ..Default::default()
        };
        let ds = read(&fixture("unlabelled.npz"), &o).unwrap();
        assert_eq!(ds.y, None);
        assert_eq!(dense(&ds).values, expected_x());
        let e = fixture_err("unlabelled.npz", &LoadOptions::labelled());
        assert!(
            e.contains("unlabelled.npz") && e.contains("no array 'y'"),
            "{e}"
        );
        // Labels may come from a separate file instead.
        let o = LoadOptions {
            labels_path: Some(fixture("dense_labels_dummy.npy")),
            ..LoadOptions::labelled()
        };
        let e = fixture_err("unlabelled.npz", &o);
        assert!(e.contains("dense_labels_dummy.npy"), "{e}");
    }

    #[test]
    fn y_and_labels_file_conflict() {
        let e = fixture_err("dense_f32.npz", &with_labels("csr_labels.npy"));
        assert!(
            e.contains("dense_f32.npz") && e.contains("already contains labels"),
            "{e}"
        );
    }

    #[test]
    fn nan_in_x_names_row() {
        let e = fixture_err("dense_nan.npz", &LoadOptions::labelled());
        assert!(e.contains("dense_nan.npz"), "{e}");
        assert!(e.contains("array 'X', row 2") && e.contains("NaN"), "{e}");
    }

    #[test]
    fn big_endian_rejected() {
        let e = fixture_err("bigendian.npz", &LoadOptions::labelled());
        assert!(e.contains("bigendian.npz") && e.contains("'X'"), "{e}");
        assert!(e.contains("big-endian"), "{e}");
    }

    #[test]
    fn non_binary_y_names_row() {
        let e = fixture_err("y_multiclass.npz", &LoadOptions::labelled());
        assert!(
            e.contains("y_multiclass.npz") && e.contains("array 'y', row 3"),
            "{e}"
        );
        assert!(e.contains("not binary") && e.contains("2-D"), "{e}");
    }

    #[test]
    fn n_features_mismatch() {
        let o = LoadOptions {
            n_features: Some(4),
            ..LoadOptions::labelled()
        };
        let e = read(&fixture("dense_f32.npz"), &o).unwrap_err();
        assert!(matches!(e, Error::Mismatch(_)), "{e}");
        assert!(e.to_string().contains("3 features"), "{e}");
        let e = read(
            &fixture("csr.npz"),
            &LoadOptions {
                n_features: Some(4),
                ..with_labels("csr_labels.npy")
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::Mismatch(_)), "{e}");
        assert!(e.to_string().contains("5 features"), "{e}");
    }

    #[test]
    fn csr_with_labels() {
        let ds = read(&fixture("csr.npz"), &with_labels("csr_labels.npy")).unwrap();
        let m = csr(&ds);
        assert_eq!((m.rows, m.cols), (3, 5));
        assert_eq!(m.indptr, vec![0, 2, 2, 4]);
        assert_eq!(m.indices, vec![1, 4, 0, 3]);
        assert_eq!(m.values, vec![1.5, 2.0, 3.0, -4.0]);
        assert_eq!(ds.y, Some(vec![1.0, 0.0, 1.0]));
        assert_eq!(ds.feature_names, None);
        for v in ["csr_labels_v2.npy", "csr_labels_v3.npy"] {
            let ds2 = read(&fixture("csr.npz"), &with_labels(v)).unwrap();
            assert_eq!(ds2.y, ds.y, "{v}");
        }
    }

    #[test]
    fn csr_with_multilabel_labels() {
        let ds = read(&fixture("csr.npz"), &with_labels("csr_labels_multi.npy")).unwrap();
        assert_eq!(ds.n_labels, 2);
        assert_eq!(ds.label_names, vec!["0", "1"]);
        assert_eq!(ds.y, Some(vec![1., 0., 0., 1., 1., 1.]));
    }

    #[test]
    fn csr_without_labels() {
        let e = fixture_err("csr.npz", &LoadOptions::labelled());
        assert!(e.contains("csr.npz") && e.contains("labels"), "{e}");
        let o = LoadOptions {
            require_labels: false,
            ..Default::default()
        };
        let ds = read(&fixture("csr.npz"), &o).unwrap();
        assert_eq!(ds.y, None);
        assert_eq!(ds.rows(), 3);
    }

    #[test]
    fn label_row_count_mismatch() {
        let e = fixture_err("csr.npz", &with_labels("labels_short.npy"));
        assert!(
            e.contains("labels_short.npy") && e.contains("2 rows"),
            "{e}"
        );
        assert!(e.contains("csr.npz") && e.contains("have 3"), "{e}");
    }

    #[test]
    fn csr_unsorted_indices_are_sorted() {
        let o = LoadOptions {
            require_labels: false,
            ..Default::default()
        };
        let ds = read(&fixture("csr_unsorted.npz"), &o).unwrap();
        let m = csr(&ds);
        assert_eq!((m.rows, m.cols), (2, 4));
        assert_eq!(m.indptr, vec![0, 2, 4]);
        assert_eq!(m.indices, vec![0, 3, 1, 2]);
        assert_eq!(m.values, vec![1.0, 2.0, 3.0, 5.0]);
    }

    #[test]
    fn csr_duplicates_rejected() {
        let o = LoadOptions {
            require_labels: false,
            ..Default::default()
        };
        let e = fixture_err("csr_duplicate.npz", &o);
        assert!(e.contains("csr_duplicate.npz"), "{e}");
        assert!(
            e.contains("array 'indices', row 1") && e.contains("column 2"),
            "{e}"
        );
    }

    #[test]
    fn csc_rejected_with_hint() {
        let e = fixture_err("csc.npz", &with_labels("csr_labels.npy"));
        assert!(e.contains("csc.npz") && e.contains("'format'"), "{e}");
        assert!(e.contains("'csc'") && e.contains(".tocsr()"), "{e}");
    }

    #[test]
    fn missing_labels_file_is_io_error() {
        let e = read(&fixture("csr.npz"), &with_labels("nope.npy")).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(e.to_string().contains("nope.npy"));
    }

    // ---- Synthetic archives.

    #[test]
    fn synthetic_dense_roundtrip_and_int_x() {
        let (_d, p) = npz(&[("X", good_x()), ("y", good_y())]);
        let ds = read(&p, &LoadOptions::labelled()).unwrap();
        assert_eq!(dense(&ds).values, vec![1.0, 2.0, 3.0, 4.0]);
        let (_d, p) = npz(&[
            ("X", npy("|u1", &[1, 3], &[0, 7, 255])),
            ("y", npy("|b1", &[1], &[1])),
        ]);
        let ds = read(&p, &LoadOptions::labelled()).unwrap();
        assert_eq!(dense(&ds).values, vec![0.0, 7.0, 255.0]);
        assert_eq!(ds.y, Some(vec![1.0]));
    }

    #[test]
    fn y_column_vector_is_binary() {
        let (_d, p) = npz(&[("X", good_x()), ("y", npy("<i8", &[2, 1], &i64s(&[1, -1])))]);
        let ds = read(&p, &LoadOptions::labelled()).unwrap();
        assert_eq!(ds.n_labels, 1);
        assert_eq!(ds.y, Some(vec![1.0, 0.0]));
    }

    #[test]
    fn y_mixing_zero_and_minus_one() {
        let e = syn_err(
            &[
                ("X", npy("<f4", &[3, 1], &f32s(&[1., 2., 3.]))),
                ("y", npy("<i8", &[3], &i64s(&[0, 1, -1]))),
            ],
            &LoadOptions::labelled(),
        );
        assert!(
            e.contains("syn.npz") && e.contains("array 'y', row 2") && e.contains("mix"),
            "{e}"
        );
    }

    #[test]
    fn multilabel_value_not_01() {
        let e = syn_err(
            &[
                ("X", good_x()),
                ("y", npy("<i8", &[2, 2], &i64s(&[0, 1, 1, 3]))),
            ],
            &LoadOptions::labelled(),
        );
        assert!(
            e.contains("array 'y', row 1") && e.contains("column 1") && e.contains("not 0/1"),
            "{e}"
        );
    }

    #[test]
    fn bad_x_shapes_and_types() {
        let e = syn_err(
            &[
                ("X", npy("<f4", &[4], &f32s(&[1., 2., 3., 4.]))),
                ("y", good_y()),
            ],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("'X'") && e.contains("2-D"), "{e}");
        let e = syn_err(
            &[
                ("X", npy("<f4", &[0, 2], &[])),
                ("y", npy("<i8", &[0], &[])),
            ],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("'X'") && e.contains("no rows"), "{e}");
        let e = syn_err(
            &[("X", npy("|O", &[1, 1], &[0; 8])), ("y", good_y())],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("'X'") && e.contains("object array"), "{e}");
        let e = syn_err(
            &[("X", npy("<c8", &[1, 1], &[0; 8])), ("y", good_y())],
            &LoadOptions::labelled(),
        );
        assert!(
            e.contains("'X'") && e.contains("unsupported dtype '<c8'"),
            "{e}"
        );
        let e = syn_err(
            &[("X", npy("|S2", &[1, 1], b"ab")), ("y", good_y())],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("'X'") && e.contains("not numeric"), "{e}");
        let e = syn_err(
            &[
                ("X", npy("<f8", &[1, 1], &f64::INFINITY.to_le_bytes())),
                ("y", good_y()),
            ],
            &LoadOptions::labelled(),
        );
        assert!(
            e.contains("array 'X', row 0") && e.contains("infinite"),
            "{e}"
        );
        let e = syn_err(
            &[
                ("X", npy("<f8", &[1, 1], &1e300f64.to_le_bytes())),
                ("y", good_y()),
            ],
            &LoadOptions::labelled(),
        );
        assert!(
            e.contains("array 'X', row 0") && e.contains("f32 range"),
            "{e}"
        );
    }

    #[test]
    fn malformed_npy() {
        // Truncated data.
        let e = syn_err(
            &[
                ("X", npy("<f4", &[2, 2], &f32s(&[1., 2., 3.]))),
                ("y", good_y()),
            ],
            &LoadOptions::labelled(),
        );
        assert!(
            e.contains("syn.npz") && e.contains("'X'") && e.contains("truncated"),
            "{e}"
        );
        // Trailing garbage.
        let e = syn_err(
            &[
                ("X", npy("<f4", &[1, 1], &f32s(&[1., 2.]))),
                ("y", good_y()),
            ],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("'X'") && e.contains("unexpected bytes"), "{e}");
        // Bad magic.
        let e = syn_err(
            &[("X", b"not numpy at all".to_vec()), ("y", good_y())],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("'X'") && e.contains("magic"), "{e}");
        // Unknown version.
        let mut v = good_x();
        v[6] = 9;
        let e = syn_err(&[("X", v), ("y", good_y())], &LoadOptions::labelled());
        assert!(e.contains("version 9.0"), "{e}");
        // Structured dtype.
        let h = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
        let e = syn_err(
            &[("X", npy_with_header(h, &[0; 4])), ("y", good_y())],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("structured"), "{e}");
        // Garbage header.
        let e = syn_err(
            &[
                ("X", npy_with_header("{'descr': <f4}", &[])),
                ("y", good_y()),
            ],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("'X'") && e.contains("unreadable header"), "{e}");
        let e = syn_err(
            &[
                (
                    "X",
                    npy_with_header("{'descr': '<f4', 'shape': (1, 1)}", &[0; 4]),
                ),
                ("y", good_y()),
            ],
            &LoadOptions::labelled(),
        );
        assert!(e.contains("fortran_order"), "{e}");
    }

    #[test]
    fn not_a_zip_and_missing_x() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.npz");
        std::fs::write(&p, b"this is not a zip file").unwrap();
        let e = read(&p, &LoadOptions::labelled()).unwrap_err().to_string();
        assert!(e.contains("junk.npz") && e.contains("zip"), "{e}");
        let e = syn_err(&[("arr_0", good_x())], &LoadOptions::labelled());
        assert!(e.contains("no array 'X'") && e.contains("arr_0"), "{e}");
    }

    #[test]
    fn synthetic_csr_ok_and_explicit_zero_dropped() {
        let m = replace(
            csr_members(),
            "data",
            npy("<f4", &[3], &f32s(&[5.0, 0.0, 8.0])),
        );
        let (_d, p) = npz(&m);
        let o = LoadOptions {
            require_labels: false,
            ..Default::default()
        };
        let ds = read(&p, &o).unwrap();
        let c = csr(&ds);
        assert_eq!(c.indptr, vec![0, 1, 2]);
        assert_eq!(c.indices, vec![1, 2]);
        assert_eq!(c.values, vec![5.0, 8.0]);
        // Unicode format string works too.
        let m = replace(
            csr_members(),
            "format",
            npy("<U3", &[], &[b'c', 0, 0, 0, b's', 0, 0, 0, b'r', 0, 0, 0]),
        );
        let (_d, p) = npz(&m);
        assert_eq!(read(&p, &o).unwrap().rows(), 2);
    }

    #[test]
    fn synthetic_csr_errors() {
        let o = LoadOptions {
            require_labels: false,
            ..Default::default()
        };
        let e = syn_err(
            &replace(csr_members(), "format", npy("|S3", &[], b"coo")),
            &o,
        );
        assert!(e.contains("'coo'") && e.contains(".tocsr()"), "{e}");
        let e = syn_err(
            &replace(
                csr_members(),
                "indices",
                npy("<i8", &[3], &i64s(&[1, 0, 3])),
            ),
            &o,
        );
        assert!(
            e.contains("array 'indices', row 1") && e.contains("column index 3"),
            "{e}"
        );
        let e = syn_err(
            &replace(csr_members(), "indptr", npy("<i8", &[3], &i64s(&[0, 2, 1]))),
            &o,
        );
        assert!(
            e.contains("'indptr'") && e.contains("non-decreasing"),
            "{e}"
        );
        let e = syn_err(
            &replace(csr_members(), "indptr", npy("<i8", &[2], &i64s(&[0, 3]))),
            &o,
        );
        assert!(e.contains("'indptr'") && e.contains("rows + 1"), "{e}");
        let e = syn_err(
            &replace(csr_members(), "indptr", npy("<i8", &[3], &i64s(&[0, 1, 2]))),
            &o,
        );
        assert!(e.contains("'indptr'") && e.contains("ends at 2"), "{e}");
        let e = syn_err(
            &replace(csr_members(), "indptr", npy("<i8", &[3], &i64s(&[1, 1, 3]))),
            &o,
        );
        assert!(e.contains("'indptr'") && e.contains("start at 0"), "{e}");
        let e = syn_err(
            &replace(csr_members(), "data", npy("<f4", &[2], &f32s(&[1.0, 2.0]))),
            &o,
        );
        assert!(e.contains("'data'") && e.contains("2 entries"), "{e}");
        let e = syn_err(
            &replace(
                csr_members(),
                "data",
                npy("<f4", &[3], &f32s(&[1.0, f32::NAN, 2.0])),
            ),
            &o,
        );
        assert!(
            e.contains("array 'data', row 1") && e.contains("NaN"),
            "{e}"
        );
        let e = syn_err(
            &replace(
                csr_members(),
                "indices",
                npy("<f4", &[3], &f32s(&[1.0, 0.0, 2.0])),
            ),
            &o,
        );
        assert!(
            e.contains("'indices'") && e.contains("not an integer"),
            "{e}"
        );
        let e = syn_err(&csr_members()[..4], &o);
        assert!(e.contains("without array 'data'"), "{e}");
    }

    #[test]
    fn npy_header_parser() {
        let mut p = PyParser {
            s: b"{'a': (1, 2), \"b\": (3,), 'c': (), 'd': True, 'e': [1, 'x'], 'f': 5L, 'g': None}",
            pos: 0,
        };
        let v = p.value().unwrap();
        let Py::Dict(items) = v else { panic!() };
        assert_eq!(items[0].1, Py::Tuple(vec![Py::Int(1), Py::Int(2)]));
        assert_eq!(items[1].1, Py::Tuple(vec![Py::Int(3)]));
        assert_eq!(items[2].1, Py::Tuple(vec![]));
        assert_eq!(items[3].1, Py::Bool(true));
        assert_eq!(items[4].1, Py::List(vec![Py::Int(1), Py::Str("x".into())]));
        assert_eq!(items[5].1, Py::Int(5));
        assert_eq!(items[6].1, Py::None);
        for bad in ["{'a': }", "{'a' 1}", "'abc", "{'a': (1, 2}", "", "@"] {
            let mut p = PyParser {
                s: bad.as_bytes(),
                pos: 0,
            };
            assert!(p.value().is_err(), "{bad}");
        }
    }
}
