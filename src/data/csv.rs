//! CSV reader (`.csv`, and gzip-compressed `.csv.gz`, detected by its magic bytes).
//!
//! - A header row is required; names are trimmed, must be non-empty and unique.
//! - The label column is `opts.label_column`, or the last column. Exception: when
//!   `opts.expected_features` is set and the header is exactly those names, the file has no
//!   labels. A named label column that is absent is an error if labels are required, and
//!   otherwise means "no labels, every column is a feature".
//! - Every other column is a feature; cells are trimmed and must parse as finite `f32`
//!   (empty cells, NaN and ±inf are errors: nothing is imputed).
//! - Labels: with `opts.positive`, a cell equal to it (after trimming) is 1, anything else 0,
//!   and the value must occur at least once. Without it, labels must be `0/1`, `-1/+1`
//!   (`-1` becomes 0; numeric spellings such as `1.0` are fine) or `true/false`.
//! - Rows with the wrong number of fields are errors. Blank lines are not rows (the `csv`
//!   crate skips them) but still count for line numbers.

use super::{Dataset, DenseMatrix, Features, LoadOptions};
use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

/// Physical line numbers for records.
///
/// The `csv` crate's own `Position::line()` is wrong after blank lines and with CRLF line
/// ends, and its byte offset points at the terminator bytes it skipped before the record.
/// So the reader is wrapped to note where every `\r` / `\n` byte is; a record's line is 1
/// plus the number of `\n` before its first content byte.
#[derive(Default)]
struct LineTracker {
    /// Offsets of terminator bytes not yet passed, with whether each is `\n`.
    pending: VecDeque<(u64, bool)>,
    /// Bytes handed to the csv reader so far.
    offset: u64,
    /// `\n` bytes already passed.
    newlines: usize,
}

impl LineTracker {
    /// The 1-based physical line of the record the csv reader says starts at `byte`.
    fn line_of(&mut self, byte: u64) -> usize {
        let mut start = byte;
        while let Some(&(off, nl)) = self.pending.front() {
            if off <= start {
                if off == start {
                    // A skipped terminator: the record's content starts after it.
                    start += 1;
                }
                self.newlines += nl as usize;
                self.pending.pop_front();
            } else {
                break;
            }
        }
        self.newlines + 1
    }
}

struct Tracked<R> {
    inner: R,
    tracker: Rc<RefCell<LineTracker>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut t = self.tracker.borrow_mut();
        let base = t.offset;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                t.pending.push_back((base + i as u64, b == b'\n'));
            }
        }
        t.offset += n as u64;
        Ok(n)
    }
}

/// Opens `path`, transparently decompressing gzip (by magic bytes, whatever the name).
fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = BufReader::with_capacity(1 << 16, file);
    let head = buf.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(buf)))
    } else {
        Ok(Box::new(buf))
    }
}

/// Converts a `csv` crate error into ours. Records are read as bytes with flexible
/// lengths, so in practice only I/O errors (including gzip corruption) reach here.
fn csv_error(path: &Path, err: csv::Error) -> Error {
    match err.into_kind() {
        csv::ErrorKind::Io(e) => Error::io(path, e),
        other => Error::format(path, format!("{other:?}")),
    }
}

/// Parses a feature cell as a finite f32.
fn parse_feature(path: &Path, line: usize, column: &str, raw: &[u8]) -> Result<f32> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| Error::parse(path, line, column, "cell is not valid UTF-8"))?
        .trim();
    if text.is_empty() {
        return Err(Error::parse(
            path,
            line,
            column,
            "empty cell (missing value); fill or impute it before loading",
        ));
    }
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) if v.is_nan() => Err(Error::parse(
            path,
            line,
            column,
            format!("'{text}' is NaN; only finite numbers are allowed"),
        )),
        Ok(_) => {
            let lower = text.to_ascii_lowercase();
            let msg = if lower.contains("inf") {
                format!("'{text}' is infinite; only finite numbers are allowed")
            } else {
                format!("'{text}' is out of the f32 range")
            };
            Err(Error::parse(path, line, column, msg))
        }
        Err(_) => Err(Error::parse(
            path,
            line,
            column,
            format!("'{text}' is not a number"),
        )),
    }
}

/// How labels are turned into 0/1 when no `--positive` value is given.
#[derive(Default)]
struct NumericLabels {
    /// Line of the first `0` / `false` label.
    zero_at: Option<usize>,
    /// Line of the first `-1` label.
    minus_one_at: Option<usize>,
}

impl NumericLabels {
    fn parse(&mut self, path: &Path, line: usize, column: &str, text: &str) -> Result<f32> {
        let hint = "labels must be 0/1, -1/+1 or true/false; for other values name \
                    the positive class value (the `positive` load option)";
        if text.is_empty() {
            return Err(Error::parse(path, line, column, "empty label"));
        }
        if text.eq_ignore_ascii_case("true") {
            return Ok(1.0);
        }
        if text.eq_ignore_ascii_case("false") {
            self.zero_at.get_or_insert(line);
            return self.check_mixed(path, line, column);
        }
        let v: f64 = match text.parse() {
            Ok(v) => v,
            Err(_) => {
                return Err(Error::parse(
                    path,
                    line,
                    column,
                    format!("label '{text}' is not binary; {hint}"),
                ))
            }
        };
        if v == 1.0 {
            Ok(1.0)
        } else if v == 0.0 {
            self.zero_at.get_or_insert(line);
            self.check_mixed(path, line, column)
        } else if v == -1.0 {
            self.minus_one_at.get_or_insert(line);
            self.check_mixed(path, line, column)
        } else {
            Err(Error::parse(
                path,
                line,
                column,
                format!("label '{text}' is not binary; {hint}"),
            ))
        }
    }

    fn check_mixed(&self, path: &Path, line: usize, column: &str) -> Result<f32> {
        if let (Some(z), Some(m)) = (self.zero_at, self.minus_one_at) {
            return Err(Error::parse(
                path,
                line,
                column,
                format!(
                    "labels mix 0 (first on line {z}) and -1 (first on line {m}); binary labels \
                     are either 0/1 or -1/+1; for more classes name the positive class value \
                     (the `positive` load option)"
                ),
            ));
        }
        Ok(0.0)
    }
}

/// Describes how the feature columns differ from the model's, or `None` if they match.
fn feature_mismatch(found: &[String], expected: &[String]) -> Option<String> {
    if found == expected {
        return None;
    }
    let found_set: HashSet<&str> = found.iter().map(String::as_str).collect();
    let expected_set: HashSet<&str> = expected.iter().map(String::as_str).collect();
    let missing: Vec<&str> = expected
        .iter()
        .map(String::as_str)
        .filter(|n| !found_set.contains(n))
        .collect();
    let extra: Vec<&str> = found
        .iter()
        .map(String::as_str)
        .filter(|n| !expected_set.contains(n))
        .collect();
    let mut parts = Vec::new();
    if found.len() != expected.len() {
        parts.push(format!(
            "the data has {} feature columns, the model expects {}",
            found.len(),
            expected.len()
        ));
    }
    if !missing.is_empty() {
        parts.push(format!("missing columns: {}", list(&missing)));
    }
    if !extra.is_empty() {
        parts.push(format!("extra columns: {}", list(&extra)));
    }
    if missing.is_empty() && extra.is_empty() {
        // Same names, different order.
        let pos = found
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        parts.push(format!(
            "same columns in a different order: feature {} is '{}' but the model expects '{}'",
            pos + 1,
            found[pos],
            expected[pos]
        ));
    }
    Some(parts.join("; "))
}

fn list(names: &[&str]) -> String {
    const SHOW: usize = 10;
    let mut s = names
        .iter()
        .take(SHOW)
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOW {
        s.push_str(&format!(" and {} more", names.len() - SHOW));
    }
    s
}

/// A CSV reader that also reports each record's physical line.
struct Records {
    rdr: csv::Reader<Tracked<Box<dyn Read>>>,
    tracker: Rc<RefCell<LineTracker>>,
}

impl Records {
    fn open(path: &Path) -> Result<Self> {
        let tracker = Rc::new(RefCell::new(LineTracker::default()));
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Tracked {
                inner: open(path)?,
                tracker: tracker.clone(),
            });
        Ok(Records { rdr, tracker })
    }

    /// Reads the next record into `record`; returns its line, or `None` at the end.
    fn next(&mut self, path: &Path, record: &mut csv::ByteRecord) -> Result<Option<usize>> {
        if !self
            .rdr
            .read_byte_record(record)
            .map_err(|e| csv_error(path, e))?
        {
            return Ok(None);
        }
        let byte = record.position().map_or(0, |p| p.byte());
        Ok(Some(self.tracker.borrow_mut().line_of(byte)))
    }
}

/// Trimmed, non-empty, unique column names from the header record.
fn parse_header(path: &Path, line: usize, record: &csv::ByteRecord) -> Result<Vec<String>> {
    let mut header = Vec::with_capacity(record.len());
    for (i, raw) in record.iter().enumerate() {
        let mut name = std::str::from_utf8(raw)
            .map_err(|_| {
                Error::parse(
                    path,
                    line,
                    format!("#{}", i + 1),
                    "column name is not valid UTF-8",
                )
            })?
            .trim();
        if i == 0 {
            name = name.trim_start_matches('\u{feff}').trim();
        }
        if name.is_empty() {
            return Err(Error::parse(
                path,
                line,
                format!("#{}", i + 1),
                "empty column name (a header row is required)",
            ));
        }
        header.push(name.to_string());
    }
    let mut seen = HashSet::new();
    for name in &header {
        if !seen.insert(name.as_str()) {
            return Err(Error::parse(
                path,
                line,
                name.clone(),
                "duplicate column name",
            ));
        }
    }
    Ok(header)
}

/// Which column holds the label, and whether it was taken by default (the last column).
fn find_label_column(
    path: &Path,
    header: &[String],
    opts: &LoadOptions,
) -> Result<(Option<usize>, bool)> {
    let header_is_expected = opts
        .expected_features
        .as_ref()
        .is_some_and(|exp| *exp == header);
    if header_is_expected {
        return Ok((None, false));
    }
    let Some(name) = &opts.label_column else {
        return Ok((Some(header.len() - 1), true));
    };
    match header.iter().position(|h| h == name) {
        Some(i) => Ok((Some(i), false)),
        None if opts.require_labels => Err(Error::format(
            path,
            format!(
                "label column '{name}' is not in the header (columns: {})",
                list(&header.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        )),
        None => Ok((None, false)),
    }
}

/// Checks the feature columns against what the model expects, if anything.
fn check_features(
    path: &Path,
    header: &[String],
    feature_names: &[String],
    (label_col, label_defaulted): (Option<usize>, bool),
    opts: &LoadOptions,
) -> Result<()> {
    if feature_names.is_empty() {
        return Err(Error::format(
            path,
            format!(
                "no feature columns: the only column '{}' is the label",
                header[0]
            ),
        ));
    }
    if let Some(expected) = &opts.expected_features {
        if let Some(mut msg) = feature_mismatch(feature_names, expected) {
            if let (Some(lc), true) = (label_col, label_defaulted) {
                if expected.contains(&header[lc]) {
                    msg.push_str(&format!(
                        " (the last column '{}' was taken as the label; name the label column \
                         with the `label_column` load option)",
                        header[lc]
                    ));
                }
            }
            return Err(Error::Mismatch(format!("{}: {msg}", path.display())));
        }
    }
    if let Some(n) = opts.n_features {
        if n != feature_names.len() {
            return Err(Error::Mismatch(format!(
                "{}: the data has {} feature columns, the model expects {n}",
                path.display(),
                feature_names.len()
            )));
        }
    }
    Ok(())
}

/// Turns label cells into 0/1, by `--positive` when given, else by [`NumericLabels`].
/// With `--positive`, the column may hold one other value (or exactly `--negative`): a
/// third value is a typo (`Spam` for `spam`) that would otherwise silently be a negative.
struct LabelParser<'a> {
    positive: Option<&'a str>,
    negative: Option<&'a str>,
    numeric: NumericLabels,
    positive_seen: bool,
    /// The negative value: `negative`, or the first value other than `positive`.
    other: Option<String>,
}

impl<'a> LabelParser<'a> {
    fn new(opts: &'a LoadOptions) -> Self {
        LabelParser {
            positive: opts.positive.as_deref().map(str::trim),
            negative: opts.negative.as_deref().map(str::trim),
            numeric: NumericLabels::default(),
            positive_seen: false,
            other: None,
        }
    }

    fn parse(&mut self, path: &Path, line: usize, column: &str, raw: &[u8]) -> Result<f32> {
        let text = std::str::from_utf8(raw)
            .map_err(|_| Error::parse(path, line, column, "label is not valid UTF-8"))?
            .trim();
        let Some(pos) = self.positive else {
            return self.numeric.parse(path, line, column, text);
        };
        if text.is_empty() {
            return Err(Error::parse(path, line, column, "empty label"));
        }
        if text == pos {
            self.positive_seen = true;
            return Ok(1.0);
        }
        match (self.negative, &self.other) {
            (Some(neg), _) if text != neg => Err(Error::parse(
                path,
                line,
                column,
                format!(
                    "label '{text}' is neither the positive '{pos}' nor the negative '{neg}' \
                     (the `positive` and `negative` load options)"
                ),
            )),
            (None, Some(other)) if text != other => {
                let hint = if self.positive_seen {
                    String::new()
                } else {
                    format!(" (the positive '{pos}' has not occurred yet: check the `positive` load option)")
                };
                Err(Error::parse(
                    path,
                    line,
                    column,
                    format!(
                        "label '{text}' is a third value besides the positive '{pos}' and \
                         '{other}'{hint}: fix the typo, or name the negative value with the \
                         `negative` load option"
                    ),
                ))
            }
            _ => {
                self.other.get_or_insert_with(|| text.to_string());
                Ok(0.0)
            }
        }
    }

    /// Fails if the `positive` value never occurred in the column; returns the negative
    /// value seen (or given).
    fn finish(self, path: &Path, column: &str, shard: bool) -> Result<Option<String>> {
        match self.positive {
            Some(pos) if !self.positive_seen && !shard => {
                let shown = self.other.map_or(String::new(), |v| format!("'{v}'"));
                Err(Error::format(
                    path,
                    format!(
                        "field {column}: the positive label '{pos}' never occurs in column \
                         '{column}' (values seen: {shown}); check the `positive` load option \
                         for a typo"
                    ),
                ))
            }
            _ => Ok(self.negative.map(str::to_string).or(self.other)),
        }
    }
}

/// The error for a row whose field count differs from the header's.
fn field_count_error(path: &Path, line: usize, header: &[String], found: usize) -> Error {
    let field = if found < header.len() {
        header[found].clone()
    } else {
        format!("#{}", header.len() + 1)
    };
    Error::parse(
        path,
        line,
        field,
        format!("row has {found} fields but the header has {}", header.len()),
    )
}

/// Reads a CSV (or gzip-compressed CSV) file; see the module documentation for the rules.
pub fn read(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    Ok(read_info(path, opts)?.0)
}

/// [`read`], plus the negative class's label value when `positive` names the other.
pub fn read_info(path: &Path, opts: &LoadOptions) -> Result<(Dataset, Option<String>)> {
    let mut records = Records::open(path)?;
    let mut record = csv::ByteRecord::new();
    let Some(header_line) = records.next(path, &mut record)? else {
        return Err(Error::format(path, "empty file: a header row is required"));
    };
    let header = parse_header(path, header_line, &record)?;
    let label = find_label_column(path, &header, opts)?;
    let label_col = label.0;
    let feature_cols: Vec<usize> = (0..header.len())
        .filter(|&i| Some(i) != label_col)
        .collect();
    let feature_names: Vec<String> = feature_cols.iter().map(|&i| header[i].clone()).collect();
    check_features(path, &header, &feature_names, label, opts)?;

    let label_name = label_col.map(|i| header[i].clone());
    let mut label_parser = LabelParser::new(opts);
    let mut values: Vec<f32> = Vec::new();
    let mut labels: Vec<f32> = Vec::new();
    let mut rows = 0usize;
    while let Some(line) = records.next(path, &mut record)? {
        if record.len() != header.len() {
            return Err(field_count_error(path, line, &header, record.len()));
        }
        for &c in &feature_cols {
            values.push(parse_feature(path, line, &header[c], &record[c])?);
        }
        if let (Some(lc), Some(lname)) = (label_col, &label_name) {
            labels.push(label_parser.parse(path, line, lname, &record[lc])?);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::format(
            path,
            "no data rows (the file has only a header)",
        ));
    }
    let negative = match &label_name {
        Some(lname) => label_parser.finish(path, lname, opts.shard)?,
        None => None,
    };
    let ds = Dataset {
        x: Features::Dense(DenseMatrix {
            rows,
            cols: feature_cols.len(),
            values,
        }),
        y: label_col.map(|_| labels),
        n_labels: 1,
        label_names: vec![label_name.unwrap_or_else(|| "label".to_string())],
        feature_names: Some(feature_names),
        source: path.display().to_string(),
    };
    Ok((ds, negative))
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
