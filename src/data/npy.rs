//! The `.npy` array format, parsed by hand (versions 1.0/2.0/3.0, little-endian numeric
//! dtypes, byte / unicode strings; C or Fortran order): the arrays inside a `.npz`
//! ([`super::npz`]). Big-endian, object, structured and other dtypes are clear errors.

use crate::error::{Error, Result};
use std::path::Path;

/// Element type of a `.npy` array (always little-endian in memory here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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
    pub(super) fn size(self) -> usize {
        match self {
            Kind::I1 | Kind::U1 | Kind::Bool => 1,
            Kind::I2 | Kind::U2 => 2,
            Kind::F4 | Kind::I4 | Kind::U4 => 4,
            Kind::F8 | Kind::I8 | Kind::U8 => 8,
            Kind::Bytes(n) => n,
            Kind::Unicode(n) => 4 * n,
        }
    }
    pub(super) fn is_numeric(self) -> bool {
        !matches!(self, Kind::Bytes(_) | Kind::Unicode(_))
    }
    pub(super) fn is_integer(self) -> bool {
        matches!(
            self,
            Kind::I1 | Kind::I2 | Kind::I4 | Kind::I8 | Kind::U1 | Kind::U2 | Kind::U4 | Kind::U8
        )
    }
}

/// A parsed `.npy` array: raw little-endian bytes plus its layout.
#[derive(Debug)]
pub(super) struct Npy {
    /// For messages: the array name (`X`, `y`, `data`, ... or a labels file name).
    pub(super) name: String,
    pub(super) descr: String,
    pub(super) kind: Kind,
    pub(super) shape: Vec<usize>,
    pub(super) fortran: bool,
    pub(super) data: Vec<u8>,
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
                self.dict()
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
                self.string(q)
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => self.int(),
            Some(c) if c.is_ascii_alphabetic() => self.name(),
            Some(c) => Err(format!("unexpected '{}' at offset {}", c as char, self.pos)),
            None => Err("unexpected end of header".into()),
        }
    }
    /// A dict's items up to `}` (the `{` already consumed).
    fn dict(&mut self) -> std::result::Result<Py, String> {
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
    /// A string up to the closing quote `q` (the opening one already consumed).
    fn string(&mut self, q: u8) -> std::result::Result<Py, String> {
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
    /// An integer: optional sign, then digits.
    fn int(&mut self) -> std::result::Result<Py, String> {
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
    /// `True`, `False` or `None`.
    fn name(&mut self) -> std::result::Result<Py, String> {
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

/// Where the header dict lies in a `.npy` file: `(start, end)` byte offsets.
fn header_span(bytes: &[u8]) -> std::result::Result<(usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (bad magic bytes)".into());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    // Version 1 has a 2-byte header length, versions 2 and 3 a 4-byte one.
    let (header_len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err("truncated header".into()),
        _ => {
            return Err(format!(
                ".npy format version {major}.{minor} is not supported (1.0, 2.0, 3.0 are)"
            ))
        }
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| "truncated header".to_string())?;
    Ok((start, end))
}

/// The fields of a `.npy` header dict.
struct Header {
    descr: String,
    kind: Kind,
    fortran: bool,
    shape: Vec<usize>,
}

fn parse_header(text: &[u8]) -> std::result::Result<Header, String> {
    let mut parser = PyParser { s: text, pos: 0 };
    let header = parser
        .value()
        .map_err(|e| format!("unreadable header: {e}"))?;
    let Py::Dict(items) = header else {
        return Err("header is not a dict".into());
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
            return Err(
                "structured (record) dtypes are not supported; save plain numeric arrays".into(),
            )
        }
        _ => return Err("header has no 'descr'".into()),
    };
    let kind = parse_descr(&descr)?;
    let fortran = match get("fortran_order") {
        Some(Py::Bool(b)) => b,
        _ => return Err("header has no 'fortran_order'".into()),
    };
    let shape = parse_shape(get("shape"))?;
    Ok(Header {
        descr,
        kind,
        fortran,
        shape,
    })
}

fn parse_shape(shape: Option<Py>) -> std::result::Result<Vec<usize>, String> {
    match shape {
        Some(Py::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                Py::Int(v) if *v >= 0 && *v <= usize::MAX as i128 => Ok(*v as usize),
                _ => Err(format!("bad dimension {d:?} in shape")),
            })
            .collect(),
        Some(Py::Int(v)) if v >= 0 => Ok(vec![v as usize]),
        _ => Err("header has no 'shape'".into()),
    }
}

/// Checks that the `have` bytes after the header are exactly the data `h` describes.
fn check_data_len(h: &Header, have: usize) -> std::result::Result<(), String> {
    let (shape, descr) = (&h.shape, &h.descr);
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(h.kind.size()))
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    if have < count {
        return Err(format!(
            "truncated: shape {shape:?} of {descr} needs {count} data bytes, the file has {have}"
        ));
    }
    if have > count {
        return Err(format!(
            "{} unexpected bytes after the data of shape {shape:?}",
            have - count
        ));
    }
    Ok(())
}

/// Parses a whole `.npy` file held in memory. `path` is the file for messages.
pub(super) fn parse_npy(path: &Path, name: &str, mut bytes: Vec<u8>) -> Result<Npy> {
    let bad = |msg: String| Error::format(path, format!("array '{name}': {msg}"));
    let (start, end) = header_span(&bytes).map_err(bad)?;
    let header = parse_header(&bytes[start..end]).map_err(bad)?;
    check_data_len(&header, bytes.len() - end).map_err(bad)?;
    // The data stays in the same buffer: no second copy of a big array.
    bytes.drain(..end);
    Ok(Npy {
        name: name.to_string(),
        descr: header.descr,
        kind: header.kind,
        shape: header.shape,
        fortran: header.fortran,
        data: bytes,
    })
}

impl Npy {
    pub(super) fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub(super) fn err(&self, path: &Path, msg: impl std::fmt::Display) -> Error {
        Error::format(path, format!("array '{}': {msg}", self.name))
    }

    pub(super) fn err_row(&self, path: &Path, row: usize, msg: impl std::fmt::Display) -> Error {
        Error::format(path, format!("array '{}', row {row}: {msg}", self.name))
    }

    pub(super) fn bytes_at(&self, k: usize) -> &[u8] {
        let s = self.kind.size();
        &self.data[k * s..(k + 1) * s]
    }

    /// Element `k` (in file order) as f64. Only for numeric kinds.
    pub(super) fn f64_at(&self, k: usize) -> f64 {
        let b = self.bytes_at(k);
        match self.kind {
            Kind::F4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Kind::F8 => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
            Kind::Bool => (b[0] != 0) as u8 as f64,
            _ => self.int_at(k).unwrap_or(0) as f64,
        }
    }

    /// Element `k` (in file order) as an integer, for integer and bool kinds.
    pub(super) fn int_at(&self, k: usize) -> Option<i128> {
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
    pub(super) fn pos2(&self, r: usize, c: usize) -> usize {
        if self.fortran {
            c * self.shape[0] + r
        } else {
            r * self.shape[1] + c
        }
    }

    pub(super) fn require_numeric(&self, path: &Path) -> Result<()> {
        if self.kind.is_numeric() {
            Ok(())
        } else {
            Err(self.err(path, format!("dtype '{}' is not numeric", self.descr)))
        }
    }

    pub(super) fn require_integer(&self, path: &Path) -> Result<()> {
        if self.kind.is_integer() {
            Ok(())
        } else {
            Err(self.err(
                path,
                format!("dtype '{}' is not an integer type", self.descr),
            ))
        }
    }

    pub(super) fn require_1d(&self, path: &Path) -> Result<usize> {
        match self.shape[..] {
            [n] => Ok(n),
            _ => Err(self.err(
                path,
                format!("expected a 1-D array, found shape {:?}", self.shape),
            )),
        }
    }

    /// Finite f32 from element `k`, with `row` for messages.
    pub(super) fn finite_f32(&self, path: &Path, k: usize, row: usize) -> Result<f32> {
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
    pub(super) fn scalar_text(&self, path: &Path) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
