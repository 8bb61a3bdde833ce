//! Data sets from in-memory arrays (what the Python bindings receive from NumPy and
//! scipy.sparse), checked as the file readers check theirs: shapes agree, values are
//! finite, sparse rows are sorted and in range, labels are 0/1.

use crate::data::{CsrMatrix, Dataset, DenseMatrix, Features};
use crate::error::{Error, Result};

/// Labels `[rows x n_labels]` of 0/1 with their names (`label_names.len() == n_labels`).
pub struct Labels {
    pub y: Vec<f32>,
    pub names: Vec<String>,
}

/// A data set from a row-major dense matrix.
pub fn dense(
    rows: usize,
    cols: usize,
    values: Vec<f32>,
    labels: Option<Labels>,
    feature_names: Option<Vec<String>>,
) -> Result<Dataset> {
    if values.len() != rows * cols {
        return Err(Error::invalid(format!(
            "a {rows} x {cols} matrix needs {} values, got {}",
            rows * cols,
            values.len()
        )));
    }
    check_finite(&values, |i| (i / cols.max(1), i % cols.max(1)))?;
    let x = Features::Dense(DenseMatrix { rows, cols, values });
    dataset(x, labels, feature_names)
}

/// A data set from CSR parts (`indptr` of `rows + 1` offsets).
pub fn csr(
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    labels: Option<Labels>,
    feature_names: Option<Vec<String>>,
) -> Result<Dataset> {
    let rows = indptr.len().saturating_sub(1);
    if indptr.first() != Some(&0) || indptr.last() != Some(&indices.len()) {
        return Err(Error::invalid(format!(
            "CSR indptr must start at 0 and end at the {} stored values",
            indices.len()
        )));
    }
    if values.len() != indices.len() {
        return Err(Error::invalid(format!(
            "CSR has {} indices but {} values",
            indices.len(),
            values.len()
        )));
    }
    for (r, w) in indptr.windows(2).enumerate() {
        if w[0] > w[1] {
            return Err(Error::invalid(format!("CSR indptr decreases at row {r}")));
        }
        let row = &indices[w[0]..w[1]];
        if let Some(&j) = row.iter().find(|&&j| j as usize >= cols) {
            return Err(Error::invalid(format!(
                "row {r}: column {j} is out of range for {cols} columns"
            )));
        }
        if row.windows(2).any(|p| p[0] >= p[1]) {
            return Err(Error::invalid(format!(
                "row {r}: column indices must be sorted and unique"
            )));
        }
        check_finite(&values[w[0]..w[1]], |i| (r, row[i] as usize))?;
    }
    let x = Features::Sparse(CsrMatrix {
        rows,
        cols,
        indptr,
        indices,
        values,
    });
    dataset(x, labels, feature_names)
}

fn check_finite(values: &[f32], at: impl Fn(usize) -> (usize, usize)) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => {
            let (r, c) = at(i);
            Err(Error::invalid(format!(
                "row {r}, column {c}: value {} is not finite",
                values[i]
            )))
        }
    }
}

fn dataset(
    x: Features,
    labels: Option<Labels>,
    feature_names: Option<Vec<String>>,
) -> Result<Dataset> {
    if let Some(names) = &feature_names {
        if names.len() != x.cols() {
            return Err(Error::invalid(format!(
                "{} feature names for {} columns",
                names.len(),
                x.cols()
            )));
        }
    }
    let (y, n_labels, label_names) = match labels {
        None => (None, 1, vec![]),
        Some(l) => {
            let n = l.names.len();
            if n == 0 || l.y.len() != x.rows() * n {
                return Err(Error::invalid(format!(
                    "{} label values for {} rows and {n} labels",
                    l.y.len(),
                    x.rows()
                )));
            }
            if let Some(v) = l.y.iter().find(|&&v| v != 0.0 && v != 1.0) {
                return Err(Error::invalid(format!("labels must be 0 or 1, got {v}")));
            }
            (Some(l.y), n, l.names)
        }
    };
    Ok(Dataset {
        x,
        y,
        n_labels,
        label_names,
        feature_names,
        source: "arrays".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(y: &[f32]) -> Option<Labels> {
        Some(Labels {
            y: y.to_vec(),
            names: vec!["y".into()],
        })
    }

    #[test]
    fn dense_checks_shape_values_and_labels() {
        let d = dense(2, 2, vec![1., 2., 3., 4.], labels(&[0., 1.]), None).unwrap();
        assert_eq!(d.rows(), 2);
        assert_eq!(d.label(1, 0), 1.0);
        let e = dense(2, 2, vec![1., 2., 3.], None, None).unwrap_err();
        assert!(e.to_string().contains("needs 4 values, got 3"), "{e}");
        let e = dense(2, 2, vec![1., 2., f32::NAN, 4.], None, None).unwrap_err();
        assert!(e.to_string().contains("row 1, column 0"), "{e}");
        let e = dense(2, 2, vec![1., 2., 3., 4.], labels(&[0., 2.]), None).unwrap_err();
        assert!(e.to_string().contains("0 or 1, got 2"), "{e}");
    }

    #[test]
    fn csr_checks_structure() {
        let ok = csr(
            3,
            vec![0, 1, 3],
            vec![2, 0, 1],
            vec![1., 1., 1.],
            None,
            None,
        )
        .unwrap();
        assert!(ok.x.is_sparse());
        assert_eq!(ok.rows(), 2);
        let e = csr(3, vec![0, 1, 3], vec![2, 1, 0], vec![1.; 3], None, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("row 1: column indices must be sorted"),
            "{e}"
        );
        let e = csr(2, vec![0, 1], vec![2], vec![1.], None, None).unwrap_err();
        assert!(
            e.to_string().contains("column 2 is out of range for 2"),
            "{e}"
        );
        let e = csr(2, vec![0, 2], vec![0], vec![1.], None, None).unwrap_err();
        assert!(e.to_string().contains("indptr"), "{e}");
    }
}
