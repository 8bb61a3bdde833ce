//! Inverted dropout in training: the masks of the hidden activations and the dropped copy
//! of a batch's input rows, drawn one after the other from the run's dropout generator
//! (on one thread, so the thread count never changes a mask). Kept values are scaled by
//! 1 / (1 - p), so inference, which drops nothing, sees activations of the same mean.

use super::config::TrainConfig;
use crate::data::{CsrMatrix, Dataset, DenseMatrix, Features};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Whether a run draws dropout masks (its checkpoints then save their generator).
pub fn active(cfg: &TrainConfig) -> bool {
    cfg.dropout > 0.0 || cfg.input_dropout > 0.0
}

/// Refuses dropout where it is not supported: with verified training (its bound is of the
/// network without dropout, and a mask would make the bound's loss a different network's)
/// and in data-parallel training (the ranks would need the whole batch's masks).
pub fn check_supported(cfg: &TrainConfig, distributed: bool) -> Result<()> {
    if !active(cfg) {
        return Ok(());
    }
    if cfg.robust.as_ref().is_some_and(|r| r.active()) {
        return Err(Error::invalid(
            "dropout (the `dropout` option or the `input_dropout` option) cannot be combined with \
             verified training (a robust budget above 0)",
        ));
    }
    if distributed {
        return Err(Error::invalid(
            "dropout (the `dropout` option or the `input_dropout` option) is not supported in \
             data-parallel training: train in one process, or without dropout",
        ));
    }
    Ok(())
}

/// The value a kept unit is multiplied by.
fn keep_scale(p: f32) -> f32 {
    1.0 / (1.0 - p)
}

/// Draws `masks[l]` (`rows x widths[l]`, each 0 with probability `p`, else 1 / (1 - p))
/// for every hidden layer `l`, in layer then row order.
pub fn draw_masks(masks: &mut Vec<Vec<f32>>, widths: &[usize], rows: usize, p: f32, rng: &mut Rng) {
    let scale = keep_scale(p);
    masks.resize(widths.len(), Vec::new());
    for (m, &w) in masks.iter_mut().zip(widths) {
        m.clear();
        m.extend((0..rows * w).map(|_| if rng.uniform_f32() < p { 0.0 } else { scale }));
    }
}

/// The batch `rows` of `data` as a data set of its own (rows `0..rows.len()`, labels
/// kept), each stored feature of a sparse row (or each value of a dense row) dropped with
/// probability `p` and the kept ones scaled by 1 / (1 - p). A dropped sparse feature is
/// removed from its row: it gets no gradient from that row, as it would when absent.
pub fn drop_inputs(data: &Dataset, rows: &[usize], p: f32, rng: &mut Rng) -> Dataset {
    let scale = keep_scale(p);
    let mut keep = |v: f32| (rng.uniform_f32() >= p).then_some(v * scale);
    let x = match &data.x {
        Features::Dense(m) => Features::Dense(DenseMatrix {
            rows: rows.len(),
            cols: m.cols,
            values: rows
                .iter()
                .flat_map(|&r| m.row(r).iter())
                .map(|&v| keep(v).unwrap_or(0.0))
                .collect(),
        }),
        Features::Sparse(m) => {
            let mut out = CsrMatrix::with_capacity(m.cols, rows.len(), 0);
            let (mut idx, mut vals) = (Vec::new(), Vec::new());
            for &r in rows {
                idx.clear();
                vals.clear();
                let (i, v) = m.row(r);
                for (&j, &v) in i.iter().zip(v) {
                    if let Some(v) = keep(v) {
                        idx.push(j);
                        vals.push(v);
                    }
                }
                out.push_row(&idx, &vals);
            }
            Features::Sparse(out)
        }
    };
    let labels = data.n_labels;
    let y = data.y.as_ref().map(|y| {
        rows.iter()
            .flat_map(|&r| &y[r * labels..(r + 1) * labels])
            .copied()
            .collect()
    });
    Dataset {
        x,
        y,
        n_labels: labels,
        label_names: Vec::new(),
        feature_names: None,
        source: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_drop_about_p_and_scale_the_rest() {
        let mut masks = Vec::new();
        let mut rng = Rng::new(1);
        draw_masks(&mut masks, &[50, 20], 200, 0.3, &mut rng);
        assert_eq!(
            masks.iter().map(Vec::len).collect::<Vec<_>>(),
            [10_000, 4_000]
        );
        let all: Vec<f32> = masks.concat();
        let dropped = all.iter().filter(|&&m| m == 0.0).count() as f64 / all.len() as f64;
        assert!((dropped - 0.3).abs() < 0.02, "{dropped}");
        assert!(all.iter().all(|&m| m == 0.0 || m == 1.0 / 0.7));
    }

    #[test]
    fn dropped_sparse_features_leave_their_rows_and_kept_ones_are_scaled() {
        let m = CsrMatrix {
            rows: 3,
            cols: 1000,
            indptr: vec![0, 400, 400, 1000],
            indices: (0..400).chain(0..600).collect(),
            values: vec![2.0; 1000],
        };
        let data = Dataset {
            x: Features::Sparse(m),
            y: Some(vec![0.0, 1.0, 1.0]),
            n_labels: 1,
            label_names: vec!["y".into()],
            feature_names: None,
            source: "t".into(),
        };
        let b = drop_inputs(&data, &[2, 0], 0.5, &mut Rng::new(3));
        let Features::Sparse(x) = &b.x else { panic!() };
        assert_eq!(b.y, Some(vec![1.0, 0.0]));
        let kept = [x.row(0).0.len(), x.row(1).0.len()];
        assert!(
            kept[0].abs_diff(300) < 40 && kept[1].abs_diff(200) < 35,
            "{kept:?}"
        );
        assert!(x.values.iter().all(|&v| v == 4.0));
        // The same generator state gives the same batch; p = 0 drops nothing.
        assert_eq!(b, drop_inputs(&data, &[2, 0], 0.5, &mut Rng::new(3)));
        let whole = drop_inputs(&data, &[0, 2], 0.0, &mut Rng::new(3));
        assert_eq!(whole.x, crate::data::split::subset(&data, &[0, 2]).x);
    }
}
