//! Writers for CSV and svmlight, the inverses of the readers; both write atomically
//! ([`crate::atomic`]). The svmlight writer is the only one in nonneg: data sets and the
//! featurizers' output both go through it.

use super::{CsrMatrix, Dataset, DenseMatrix, Features};
use crate::error::{Error, Result};
use std::path::Path;

/// Shortest text that parses back to exactly `v`: integers without a fraction, otherwise
/// Rust's round-trip formatting (exponent notation for very large or small magnitudes).
fn fmt_value(v: f32) -> String {
    let mut s = String::new();
    push_value(&mut s, v);
    s
}

/// Appends `v` as [`fmt_value`] writes it.
fn push_value(out: &mut String, v: f32) {
    use std::fmt::Write as _;
    let _ = if v == v.trunc() && v.abs() < 1e15 {
        write!(out, "{v}")
    } else {
        write!(out, "{v:?}")
    };
}

/// The row's values densely (for CSV).
fn dense_row(x: &Features, r: usize, out: &mut Vec<f32>) {
    out.clear();
    match x {
        Features::Dense(m) => out.extend_from_slice(m.row(r)),
        Features::Sparse(m) => {
            out.resize(m.cols, 0.0);
            let (idx, val) = m.row(r);
            for (&i, &v) in idx.iter().zip(val) {
                out[i as usize] = v;
            }
        }
    }
}

/// Writes `ds` as CSV: a header of the feature names (or `f0..f{n-1}`), then, when the data
/// has labels, a label column named `label_names[0]` holding 0/1. Sparse data is written
/// densely. Multi-label data cannot be written as CSV (one label column): use svmlight.
pub fn write_csv(ds: &Dataset, path: &Path) -> Result<()> {
    let cols = ds.x.cols();
    let names: Vec<String> = match &ds.feature_names {
        Some(n) if n.len() == cols => n.clone(),
        Some(n) => {
            return Err(Error::invalid(format!(
                "cannot write {}: {} feature names for {cols} columns",
                path.display(),
                n.len()
            )))
        }
        None => (0..cols).map(|i| format!("f{i}")).collect(),
    };
    let label_name = match &ds.y {
        None => None,
        Some(_) if ds.n_labels != 1 => {
            return Err(Error::invalid(format!(
                "cannot write {} as CSV: the data has {} labels and CSV holds one label column; \
                 write multi-label data as svmlight",
                path.display(),
                ds.n_labels
            )))
        }
        Some(_) => {
            let name = ds
                .label_names
                .first()
                .cloned()
                .unwrap_or_else(|| "label".to_string());
            if names.contains(&name) {
                return Err(Error::invalid(format!(
                    "cannot write {}: the label column name '{name}' is also a feature name",
                    path.display()
                )));
            }
            Some(name)
        }
    };
    crate::atomic::write_with(path, |w| {
        let csv_err = |e: csv::Error| match e.into_kind() {
            csv::ErrorKind::Io(e) => Error::io(path, e),
            other => Error::format(path, format!("{other:?}")),
        };
        let mut out = csv::Writer::from_writer(w);
        let mut header = names.clone();
        header.extend(label_name.clone());
        out.write_record(&header).map_err(csv_err)?;
        let mut row = Vec::new();
        let mut fields: Vec<String> = Vec::with_capacity(header.len());
        for r in 0..ds.rows() {
            dense_row(&ds.x, r, &mut row);
            fields.clear();
            fields.extend(row.iter().map(|&v| fmt_value(v)));
            if label_name.is_some() {
                fields.push(if ds.label(r, 0) > 0.5 { "1" } else { "0" }.to_string());
            }
            out.write_record(&fields).map_err(csv_err)?;
        }
        out.flush().map_err(|e| Error::io(path, e))
    })
}

/// Writes `ds` as svmlight with 1-based indices: binary labels as `0`/`1`, multi-label as the
/// comma-joined class ids (`label_names` of the positive labels, which must be non-negative
/// integers; a row with none starts with a space), unlabelled data without a label token.
///
/// The file keeps every row and the width: when the last column has no stored value in the
/// first row, an explicit `{cols}:0` is appended there (readers keep the width, drop the
/// zero), and a row with neither labels nor values gets `1:0` so it is not a blank line.
/// Read multi-label files back with `multilabel` set unless some row has two labels.
pub fn write_svmlight(ds: &Dataset, path: &Path) -> Result<()> {
    let x = match &ds.x {
        Features::Dense(m) => Rows::Dense(m),
        Features::Sparse(m) => Rows::Sparse(m),
    };
    let labels = ds.y.as_deref().map(|y| Labels {
        y,
        n_labels: ds.n_labels,
        names: &ds.label_names,
    });
    write_rows(path, x, labels, true)
}

/// Writes a sparse matrix with binary labels (`y` of 0/1, one per row) as svmlight, like
/// [`write_svmlight`] but without the width marker: the featurizers' files, whose width is
/// recorded in their spec (`<out>.featurizer.json`).
pub fn write_svmlight_csr(x: &CsrMatrix, y: &[f32], path: &Path) -> Result<()> {
    if y.len() != x.rows {
        return Err(Error::invalid(format!(
            "{} labels for {} rows",
            y.len(),
            x.rows
        )));
    }
    let labels = Labels {
        y,
        n_labels: 1,
        names: &[],
    };
    write_rows(path, Rows::Sparse(x), Some(labels), false)
}

/// The feature rows to write, borrowed.
#[derive(Clone, Copy)]
enum Rows<'a> {
    Dense(&'a DenseMatrix),
    Sparse(&'a CsrMatrix),
}

impl Rows<'_> {
    fn count(self) -> usize {
        match self {
            Rows::Dense(m) => m.rows,
            Rows::Sparse(m) => m.rows,
        }
    }
    fn cols(self) -> usize {
        match self {
            Rows::Dense(m) => m.cols,
            Rows::Sparse(m) => m.cols,
        }
    }
    /// Calls `f` with every non-zero `(column, value)` of row `r`, in column order.
    fn for_each_nonzero(self, r: usize, mut f: impl FnMut(u32, f32)) {
        match self {
            Rows::Dense(m) => {
                for (i, &v) in m.row(r).iter().enumerate() {
                    if v != 0.0 {
                        f(i as u32, v);
                    }
                }
            }
            Rows::Sparse(m) => {
                let (idx, val) = m.row(r);
                for (&i, &v) in idx.iter().zip(val) {
                    if v != 0.0 {
                        f(i, v);
                    }
                }
            }
        }
    }
}

/// The labels to write, borrowed: row-major `[rows x n_labels]` of 0/1.
struct Labels<'a> {
    y: &'a [f32],
    n_labels: usize,
    /// Multi-label class ids (unused for binary labels).
    names: &'a [String],
}

/// The one svmlight writer; `keep_width` adds the `{cols}:0` marker to the first row when
/// its last column is empty (see [`write_svmlight`]).
fn write_rows(path: &Path, x: Rows, labels: Option<Labels>, keep_width: bool) -> Result<()> {
    let cols = x.cols();
    let multilabel = labels.as_ref().is_some_and(|l| l.n_labels != 1);
    if let (true, Some(l)) = (multilabel, &labels) {
        if let Some(bad) = l
            .names
            .iter()
            .find(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::invalid(format!(
                "cannot write {} as svmlight: multi-label class ids must be non-negative \
                 integers, got label '{bad}'",
                path.display()
            )));
        }
        if l.names.len() != l.n_labels {
            return Err(Error::invalid(format!(
                "cannot write {}: {} label names for {} labels",
                path.display(),
                l.names.len(),
                l.n_labels
            )));
        }
    }
    if labels.is_none() && cols == 0 && x.count() > 0 {
        return Err(Error::invalid(format!(
            "cannot write {}: unlabelled data without features has no svmlight form",
            path.display()
        )));
    }
    crate::atomic::write_with(path, |w| {
        let mut line = String::new();
        for r in 0..x.count() {
            line.clear();
            if let Some(l) = &labels {
                let row = &l.y[r * l.n_labels..(r + 1) * l.n_labels];
                if multilabel {
                    let mut first = true;
                    for (k, _) in row.iter().enumerate().filter(|(_, &v)| v > 0.5) {
                        if !first {
                            line.push(',');
                        }
                        line.push_str(&l.names[k]);
                        first = false;
                    }
                } else {
                    line.push(if row[0] > 0.5 { '1' } else { '0' });
                }
            }
            let labelled = labels.is_some();
            let mut last: Option<u32> = None;
            let push = |line: &mut String, last: &mut Option<u32>, i: u32, v: f32| {
                if !line.is_empty() || labelled {
                    line.push(' ');
                }
                push_value_token(line, i + 1, v);
                *last = Some(i);
            };
            x.for_each_nonzero(r, |i, v| push(&mut line, &mut last, i, v));
            let keep_width = keep_width && r == 0 && cols > 0 && last != Some(cols as u32 - 1);
            if keep_width {
                push(&mut line, &mut last, cols as u32 - 1, 0.0);
            } else if !labelled && last.is_none() {
                // Unlabelled and empty: `1:0` so the row is not a blank line.
                push(&mut line, &mut last, 0, 0.0);
            }
            // A multi-label row without positives: the label field is empty, so the line
            // must start with a space and then an index:value token.
            if multilabel && line.is_empty() {
                line.push_str(" 1:0");
            }
            line.push('\n');
            w.write_all(line.as_bytes())
                .map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    })
}

/// Appends `index:value`.
fn push_value_token(line: &mut String, index: u32, v: f32) {
    use std::fmt::Write as _;
    let _ = write!(line, "{index}:");
    push_value(line, v);
}

/// One CSV field, quoted (RFC 4180) when it holds a comma, quote or line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain.txt"), "plain.txt");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
    }
    use crate::data::{CsrMatrix, DenseMatrix, LoadOptions};

    fn same_except_source(a: &Dataset, b: &Dataset) {
        let mut b = b.clone();
        b.source = a.source.clone();
        assert_eq!(*a, b);
    }

    fn dense_ds() -> Dataset {
        Dataset {
            x: Features::Dense(DenseMatrix {
                rows: 3,
                cols: 3,
                values: vec![0.1, -2.0, 0.0, 1e-8, 3.5e20, 7.0, 0.0, 0.0, 0.0],
            }),
            y: Some(vec![1.0, 0.0, 1.0]),
            n_labels: 1,
            label_names: vec!["is spam".into()],
            feature_names: Some(vec!["a".into(), "b,c".into(), "\"q\"".into()]),
            source: "mem".into(),
        }
    }

    fn sparse_ds() -> Dataset {
        Dataset {
            x: Features::Sparse(CsrMatrix {
                rows: 3,
                cols: 6,
                indptr: vec![0, 2, 2, 3],
                indices: vec![0, 3, 1],
                values: vec![0.5, -1.25, 3.0],
            }),
            y: Some(vec![0.0, 1.0, 1.0]),
            n_labels: 1,
            label_names: vec!["label".into()],
            feature_names: None,
            source: "mem".into(),
        }
    }

    #[test]
    fn csv_round_trip_dense() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        let ds = dense_ds();
        write_csv(&ds, &p).unwrap();
        let back = crate::data::load(&p, &LoadOptions::labelled()).unwrap();
        same_except_source(&ds, &back);
        // Overwrites atomically; no temp files left behind.
        write_csv(&ds, &p).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn csv_round_trip_sparse_and_unlabelled() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        let ds = sparse_ds();
        write_csv(&ds, &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().next(), Some("f0,f1,f2,f3,f4,f5,label"));
        let back = crate::data::load(&p, &LoadOptions::labelled()).unwrap();
        assert_eq!(back.y, ds.y);
        let Features::Dense(m) = &back.x else {
            panic!()
        };
        assert_eq!(m.values[..6], [0.5, 0.0, 0.0, -1.25, 0.0, 0.0]);
        assert_eq!(m.values[12..], [0.0, 3.0, 0.0, 0.0, 0.0, 0.0]);

        let mut un = dense_ds();
        un.y = None;
        write_csv(&un, &p).unwrap();
        let o = LoadOptions {
            expected_features: un.feature_names.clone(),
            require_labels: false,
            ..Default::default()
        };
        let back = crate::data::load(&p, &o).unwrap();
        let mut expect = un.clone();
        expect.label_names = vec!["label".into()];
        same_except_source(&expect, &back);
    }

    #[test]
    fn csv_rejects_multilabel_and_name_clash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        let mut ds = sparse_ds();
        ds.n_labels = 3;
        ds.y = Some(vec![0.0; 9]);
        assert!(write_csv(&ds, &p)
            .unwrap_err()
            .to_string()
            .contains("svmlight"));
        let mut ds = dense_ds();
        ds.label_names = vec!["a".into()];
        assert!(write_csv(&ds, &p)
            .unwrap_err()
            .to_string()
            .contains("also a feature"));
        assert!(!p.exists());
    }

    #[test]
    fn svmlight_round_trip_binary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.svm");
        let ds = sparse_ds();
        write_svmlight(&ds, &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "0 1:0.5 4:-1.25 6:0\n1\n1 2:3\n");
        let back = crate::data::load(&p, &LoadOptions::labelled()).unwrap();
        same_except_source(&ds, &back);

        // Dense input becomes the same CSR.
        let dd = dense_ds();
        write_svmlight(&dd, &p).unwrap();
        let back = crate::data::load(&p, &LoadOptions::labelled()).unwrap();
        let Features::Sparse(m) = &back.x else {
            panic!()
        };
        assert_eq!(m.cols, 3);
        assert_eq!(m.indptr, vec![0, 2, 5, 5]);
        assert_eq!(m.values, vec![0.1, -2.0, 1e-8, 3.5e20, 7.0]);
        assert_eq!(back.y, dd.y);
    }

    #[test]
    fn svmlight_round_trip_multilabel() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.svm");
        let mut ds = sparse_ds();
        ds.n_labels = 3;
        ds.label_names = vec!["1".into(), "3".into(), "10".into()];
        ds.y = Some(vec![1., 0., 1., 0., 0., 0., 0., 1., 0.]);
        write_svmlight(&ds, &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "1,10 1:0.5 4:-1.25 6:0\n 1:0\n3 2:3\n");
        let o = LoadOptions {
            multilabel: true,
            ..LoadOptions::labelled()
        };
        let back = crate::data::load(&p, &o).unwrap();
        same_except_source(&ds, &back);

        ds.label_names[1] = "x".into();
        let e = write_svmlight(&ds, &p).unwrap_err().to_string();
        assert!(e.contains("'x'"), "{e}");
    }

    #[test]
    fn svmlight_round_trip_unlabelled() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.svm");
        let mut ds = sparse_ds();
        ds.y = None;
        write_svmlight(&ds, &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "1:0.5 4:-1.25 6:0\n1:0\n2:3\n");
        let o = LoadOptions::default();
        let back = crate::data::load(&p, &o).unwrap();
        same_except_source(&ds, &back);
    }

    #[test]
    fn write_error_names_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing_dir").join("out.svm");
        let e = write_svmlight(&sparse_ds(), &p).unwrap_err().to_string();
        assert!(e.contains("out.svm"), "{e}");
        let e = write_csv(&sparse_ds(), &p).unwrap_err().to_string();
        assert!(e.contains("out.svm"), "{e}");
    }

    #[test]
    fn value_formatting_round_trips() {
        for v in [
            0.0f32,
            1.0,
            -3.0,
            0.1,
            1e-8,
            3.5e20,
            f32::MAX,
            f32::MIN_POSITIVE,
            123456.79,
        ] {
            let s = fmt_value(v);
            assert_eq!(s.parse::<f32>().unwrap(), v, "{s}");
        }
        assert_eq!(fmt_value(2.0), "2");
        assert_eq!(fmt_value(0.25), "0.25");
    }
}
