//! Train / held-out splits and row subsets.

use super::{CsrMatrix, Dataset, DenseMatrix, Features};
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::collections::BTreeMap;

/// Splits the rows into `(train_rows, held_out_rows)`, both sorted ascending.
///
/// Rows are grouped by label (for multi-label data, by the first label; without labels there
/// is one group). Each group is shuffled with [`Rng::new`]`(seed)` — groups in ascending label
/// order, one generator for all — and its first `round(fraction * group_len)` rows go to the
/// held-out set. The result depends only on the labels, `fraction` and `seed`.
pub fn stratified_split(
    ds: &Dataset,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(Error::invalid(format!(
            "the held-out fraction must be between 0 and 1, got {fraction}"
        )));
    }
    let rows = ds.rows();
    let mut strata: BTreeMap<bool, Vec<usize>> = BTreeMap::new();
    for r in 0..rows {
        let key = match &ds.y {
            Some(y) if ds.n_labels > 0 => y[r * ds.n_labels] > 0.5,
            _ => false,
        };
        strata.entry(key).or_default().push(r);
    }
    let mut rng = Rng::new(seed);
    let mut train = Vec::with_capacity(rows);
    let mut held = Vec::new();
    for (_, mut idx) in strata {
        rng.shuffle(&mut idx);
        let k = ((fraction * idx.len() as f64).round() as usize).min(idx.len());
        held.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    held.sort_unstable();
    Ok((train, held))
}

/// A copy of the given rows (in the given order), labels included.
///
/// # Panics
/// If a row index is out of range.
pub fn subset(ds: &Dataset, rows: &[usize]) -> Dataset {
    let n = ds.rows();
    if let Some(&bad) = rows.iter().find(|&&r| r >= n) {
        panic!("subset: row {bad} is out of range for {n} rows");
    }
    let x = match &ds.x {
        Features::Dense(m) => {
            let mut values = Vec::with_capacity(rows.len() * m.cols);
            for &r in rows {
                values.extend_from_slice(m.row(r));
            }
            Features::Dense(DenseMatrix {
                rows: rows.len(),
                cols: m.cols,
                values,
            })
        }
        Features::Sparse(m) => {
            let mut out = CsrMatrix::with_capacity(m.cols, rows.len(), 0);
            for &r in rows {
                let (i, v) = m.row(r);
                out.push_row(i, v);
            }
            Features::Sparse(out)
        }
    };
    let y = ds.y.as_ref().map(|y| {
        let l = ds.n_labels;
        let mut out = Vec::with_capacity(rows.len() * l);
        for &r in rows {
            out.extend_from_slice(&y[r * l..(r + 1) * l]);
        }
        out
    });
    Dataset {
        x,
        y,
        n_labels: ds.n_labels,
        label_names: ds.label_names.clone(),
        feature_names: ds.feature_names.clone(),
        source: ds.source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_ds(labels: &[f32]) -> Dataset {
        let rows = labels.len();
        Dataset {
            x: Features::Dense(DenseMatrix {
                rows,
                cols: 2,
                values: (0..rows * 2).map(|v| v as f32).collect(),
            }),
            y: Some(labels.to_vec()),
            n_labels: 1,
            label_names: vec!["y".into()],
            feature_names: Some(vec!["a".into(), "b".into()]),
            source: "mem".into(),
        }
    }

    #[test]
    fn split_is_stratified_sorted_disjoint_and_deterministic() {
        // 30 positives, 70 negatives.
        let labels: Vec<f32> = (0..100).map(|i| (i % 10 < 3) as u8 as f32).collect();
        let ds = dense_ds(&labels);
        let (train, held) = stratified_split(&ds, 0.2, 7).unwrap();
        assert_eq!(held.len(), 20);
        assert_eq!(train.len(), 80);
        let held_pos = held.iter().filter(|&&r| labels[r] == 1.0).count();
        assert_eq!(held_pos, 6); // round(0.2 * 30)
        assert!(train.windows(2).all(|w| w[0] < w[1]));
        assert!(held.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<usize> = train.iter().chain(&held).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(
            stratified_split(&ds, 0.2, 7).unwrap(),
            (train.clone(), held.clone())
        );
        assert_ne!(stratified_split(&ds, 0.2, 8).unwrap().1, held);
    }

    #[test]
    fn split_rounding_and_edges() {
        let ds = dense_ds(&[1.0, 1.0, 1.0, 0.0, 0.0]);
        // round(0.5 * 3) = 2, round(0.5 * 2) = 1.
        let (train, held) = stratified_split(&ds, 0.5, 1).unwrap();
        assert_eq!((train.len(), held.len()), (2, 3));
        let (train, held) = stratified_split(&ds, 0.0, 1).unwrap();
        assert_eq!((train.len(), held.len()), (5, 0));
        let (train, held) = stratified_split(&ds, 1.0, 1).unwrap();
        assert_eq!((train.len(), held.len()), (0, 5));
        for bad in [-0.1, 1.5, f64::NAN] {
            let e = stratified_split(&ds, bad, 1).unwrap_err();
            assert!(e.to_string().contains("fraction"), "{e}");
        }
    }

    #[test]
    fn split_without_labels_and_multilabel() {
        let mut ds = dense_ds(&[0.0; 10]);
        ds.y = None;
        let (train, held) = stratified_split(&ds, 0.3, 3).unwrap();
        assert_eq!((train.len(), held.len()), (7, 3));
        // Multi-label: stratified on the first label.
        let mut ds = dense_ds(&[0.0; 8]);
        ds.n_labels = 2;
        ds.y = Some(vec![
            1., 0., 1., 1., 1., 0., 1., 1., 0., 1., 0., 0., 0., 1., 0., 0.,
        ]);
        let (_, held) = stratified_split(&ds, 0.5, 3).unwrap();
        let first: Vec<f32> = held.iter().map(|&r| ds.label(r, 0)).collect();
        assert_eq!(first.iter().filter(|&&v| v == 1.0).count(), 2);
        assert_eq!(first.len(), 4);
    }

    #[test]
    fn subset_dense_and_sparse() {
        let ds = dense_ds(&[1.0, 0.0, 1.0]);
        let s = subset(&ds, &[2, 0]);
        assert_eq!(
            s.x,
            Features::Dense(DenseMatrix {
                rows: 2,
                cols: 2,
                values: vec![4., 5., 0., 1.]
            })
        );
        assert_eq!(s.y, Some(vec![1.0, 1.0]));
        assert_eq!(s.feature_names, ds.feature_names);

        let sp = Dataset {
            x: Features::Sparse(CsrMatrix {
                rows: 3,
                cols: 4,
                indptr: vec![0, 1, 1, 3],
                indices: vec![2, 0, 3],
                values: vec![1., 2., 3.],
            }),
            y: Some(vec![1., 0., 0., 1., 1., 1.]),
            n_labels: 2,
            label_names: vec!["0".into(), "1".into()],
            feature_names: None,
            source: "mem".into(),
        };
        let s = subset(&sp, &[2, 1, 2]);
        assert_eq!(
            s.x,
            Features::Sparse(CsrMatrix {
                rows: 3,
                cols: 4,
                indptr: vec![0, 2, 2, 4],
                indices: vec![0, 3, 0, 3],
                values: vec![2., 3., 2., 3.],
            })
        );
        assert_eq!(s.y, Some(vec![1., 1., 0., 1., 1., 1.]));
        assert_eq!(s.n_labels, 2);
        let empty = subset(&sp, &[]);
        assert_eq!(empty.rows(), 0);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn subset_out_of_range_panics() {
        subset(&dense_ds(&[1.0]), &[1]);
    }
}
