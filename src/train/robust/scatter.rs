//! Where the bound's gradient goes for the tensors the input feeds (the first kernel and
//! the skip connection): dense input adds into the full gradient, sparse input into
//! [`ExtraRows`] (the chosen features are mostly absent from the batch) or, for the clean
//! pre-activation's share, into the tape's `dz`, which the lazy update forms into rows.

use super::Shift;
use crate::attack::RowRef;
use crate::model::{Mlp, Tape};
use crate::train::update::ExtraRows;

/// Gradients of an input-fed tensor's kernel from the bound, per feature: the rows a dense
/// input adds into the full gradient, or a sparse input's [`ExtraRows`].
pub(super) struct Scatter<'s> {
    n_out: usize,
    target: Target<'s>,
}

pub(super) enum Target<'s> {
    Dense(&'s mut [f32]),
    Sparse {
        rows: &'s mut ExtraRows,
        slots: &'s mut Vec<u32>,
    },
}

impl Scatter<'_> {
    pub(super) fn add(&mut self, j: usize, i: usize, v: f32) {
        let n_out = self.n_out;
        match &mut self.target {
            Target::Dense(g) => g[j * n_out + i] += v,
            Target::Sparse { rows, slots } => {
                if slots[j] == u32::MAX {
                    slots[j] = rows.features.len() as u32;
                    rows.features.push(j as u32);
                    rows.grads.resize(rows.grads.len() + n_out, 0.0);
                }
                rows.grads[slots[j] as usize * n_out + i] += v;
            }
        }
    }

    /// Adds `g[i] * d` for each chosen `(j, d)` of each unit `i`.
    pub(super) fn chosen(&mut self, s: &Shift, g: &[f32]) {
        for (i, (picked, &gi)) in s.chosen.iter().zip(g).enumerate() {
            for &(j, d) in picked {
                self.add(j as usize, i, gi * d);
            }
        }
    }

    /// Adds `g[i] * d` to every unit `i` for each `(j, d)` of one set shared by all units.
    pub(super) fn shared(&mut self, chosen: &[(u32, f32)], g: &[f32]) {
        for &(j, d) in chosen {
            for (i, &gi) in g.iter().enumerate() {
                self.add(j as usize, i, gi * d);
            }
        }
    }

    /// Adds `x_j * g` (the clean part) for a dense row.
    pub(super) fn clean_dense(&mut self, x: &[f32], g: &[f32]) {
        for (j, &v) in x.iter().enumerate() {
            for (i, &gi) in g.iter().enumerate() {
                self.add(j, i, v * gi);
            }
        }
    }
}

/// Sorts `rows` by feature and clears the slot marks.
pub(super) fn finish_extra(rows: &mut ExtraRows, slots: &mut [u32]) {
    let n_out = if rows.features.is_empty() {
        return;
    } else {
        rows.grads.len() / rows.features.len()
    };
    let mut order: Vec<usize> = (0..rows.features.len()).collect();
    order.sort_unstable_by_key(|&s| rows.features[s]);
    let grads: Vec<f32> = order
        .iter()
        .flat_map(|&s| rows.grads[s * n_out..(s + 1) * n_out].iter().copied())
        .collect();
    let features: Vec<u32> = order.iter().map(|&s| rows.features[s]).collect();
    for &j in &features {
        slots[j as usize] = u32::MAX;
    }
    *rows = ExtraRows { features, grads };
}

/// The scatter into layer 0's kernel gradient (`l == 0`) or the skip connection's.
pub(super) fn input_scatter<'s>(
    mlp: &Mlp,
    l: usize,
    dense: &'s mut [f32],
    rows: &'s mut ExtraRows,
    slots: &'s mut Vec<u32>,
) -> Scatter<'s> {
    let n_out = match l {
        0 => mlp.layers[0].n_out,
        _ => mlp.n_labels(),
    };
    let target = match mlp.sparse_input {
        true => Target::Sparse { rows, slots },
        false => Target::Dense(dense),
    };
    Scatter { n_out, target }
}

/// The clean pre-activation's share `g` of an input-fed tensor's gradient: on a dense row
/// `x^T g` now; on a sparse one added to `dz` of layer `l` (row `k`), which the lazy update
/// turns into the active features' rows.
pub(super) fn clean_part(
    s: &mut Scatter,
    row: RowRef,
    tape: &mut Tape,
    l: usize,
    k: usize,
    g: &[f32],
) {
    match row {
        RowRef::Dense(x) => s.clean_dense(x, g),
        RowRef::Sparse(..) => {
            let n = g.len();
            for (d, g) in tape.dz[l][k * n..(k + 1) * n].iter_mut().zip(g) {
                *d += g;
            }
        }
    }
}
