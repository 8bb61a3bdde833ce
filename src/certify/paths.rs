//! The two passes over each kernel: forward *reach* from the declared features, and
//! backward *live* / *up* / violations from the outputs (see the module documentation of
//! [`crate::certify`]).

use super::{LayerSummary, LayerViolation, LIST_CAP};
use crate::model::Dense;
use rayon::prelude::*;

/// Rows of a kernel handled per parallel task.
const MIN_ROWS_PER_TASK: usize = 64;

/// Units of the layer's output fed, through a non-zero weight, by a reached input.
pub(super) fn reach_forward(layer: &Dense, reach_in: &[bool]) -> Vec<bool> {
    let n_out = layer.n_out;
    layer
        .weight
        .par_chunks(n_out)
        .with_min_len(MIN_ROWS_PER_TASK)
        .zip(reach_in.par_iter())
        .fold(
            || vec![false; n_out],
            |mut acc, (row, &r)| {
                if r {
                    for (a, &w) in acc.iter_mut().zip(row) {
                        *a |= w != 0.0;
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![false; n_out],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x |= y);
                a
            },
        )
}

/// What the backward pass finds about one input unit of a layer.
#[derive(Clone, Copy, Default)]
pub(super) struct RowPass {
    /// A non-zero weight to a live unit.
    pub(super) live: bool,
    /// A non-zero weight to a unit upstream of a violation, or a violating weight.
    pub(super) up: bool,
    violating: usize,
    most_negative: f32,
    negative_unreached: usize,
    negative_dead: usize,
}

/// What the backward pass finds about one layer's kernel.
pub(super) struct LayerPass {
    pub(super) rows: Vec<RowPass>,
    targets: Vec<bool>,
    negative: usize,
    violating: usize,
    most_negative: f32,
    pub(super) negative_unreached: usize,
    pub(super) unreached_sources: usize,
    pub(super) negative_dead: usize,
    pub(super) dead_targets: usize,
}

impl LayerPass {
    /// The report-table line of `kernel` (layer index `layer`; `skip`: the skip connection).
    pub(super) fn summary(&self, layer: usize, skip: bool, kernel: &Dense) -> LayerSummary {
        LayerSummary {
            layer,
            skip,
            n_in: kernel.n_in,
            n_out: kernel.n_out,
            activation: kernel.activation.name().to_string(),
            negative: self.negative,
            violating: self.violating,
        }
    }

    /// Notes on the negative weights that do not matter: on inputs no declared feature
    /// reaches (`inputs`: the layer is fed by the input features), or into units that do
    /// not reach the output. `what` names the kernel.
    pub(super) fn notes(&self, what: &str, inputs: bool) -> Vec<String> {
        let mut notes = Vec::new();
        if self.negative_unreached > 0 {
            notes.push(if inputs {
                format!(
                    "{what}: {} negative weights on {} input features that are not declared",
                    self.negative_unreached, self.unreached_sources
                )
            } else {
                format!(
                    "{what}: {} negative weights from {} units no declared feature reaches",
                    self.negative_unreached, self.unreached_sources
                )
            });
        }
        if self.negative_dead > 0 {
            notes.push(format!(
                "{what}: {} negative weights into {} units that do not reach the output",
                self.negative_dead, self.dead_targets
            ));
        }
        notes
    }

    /// The violation entry, if any weight violates; `name(i)` names source unit `i`.
    pub(super) fn violation(
        &self,
        layer: usize,
        skip: bool,
        name: impl Fn(usize) -> String,
    ) -> Option<LayerViolation> {
        if self.violating == 0 {
            return None;
        }
        let sources: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.rows[i].violating > 0)
            .collect();
        let targets: Vec<usize> = (0..self.targets.len())
            .filter(|&o| self.targets[o])
            .collect();
        Some(LayerViolation {
            layer,
            skip,
            count: self.violating,
            most_negative: self.most_negative,
            sources: sources.iter().take(LIST_CAP).map(|&i| name(i)).collect(),
            n_sources: sources.len(),
            targets: targets.iter().take(LIST_CAP).copied().collect(),
            n_targets: targets.len(),
        })
    }
}

/// The smaller of two values, NaN standing for "none yet" (NaN only when both are NaN).
fn min_negative(a: f32, b: f32) -> f32 {
    if a.is_nan() || b < a {
        b
    } else {
        a
    }
}

/// The backward pass over one kernel: per input unit, whether it is live and upstream of
/// a violation, and its negative weights sorted into violating, unreached and dead; the
/// layer's totals and the targets of the violating weights.
pub(super) fn backward(
    layer: &Dense,
    reach_in: &[bool],
    live_out: &[bool],
    up_out: &[bool],
) -> LayerPass {
    let n_out = layer.n_out;
    let rows: Vec<RowPass> = layer
        .weight
        .par_chunks(n_out)
        .with_min_len(MIN_ROWS_PER_TASK)
        .zip(reach_in.par_iter())
        .map(|(row, &reached)| row_pass(row, reached, live_out, up_out))
        .collect();
    let mut pass = LayerPass {
        targets: vec![false; n_out],
        negative: 0,
        violating: 0,
        most_negative: f32::NAN,
        negative_unreached: 0,
        unreached_sources: 0,
        negative_dead: 0,
        dead_targets: 0,
        rows: Vec::new(),
    };
    let mut dead = vec![false; n_out];
    for (i, p) in rows.iter().enumerate() {
        pass.violating += p.violating;
        pass.negative_unreached += p.negative_unreached;
        pass.negative_dead += p.negative_dead;
        pass.negative += p.violating + p.negative_unreached + p.negative_dead;
        if p.negative_unreached > 0 {
            pass.unreached_sources += 1;
        }
        if p.violating > 0 || p.negative_dead > 0 {
            pass.most_negative = min_negative(pass.most_negative, p.most_negative);
            // Rare rows: find their targets.
            for (o, &w) in layer.weight[i * n_out..(i + 1) * n_out].iter().enumerate() {
                if w < 0.0 {
                    if live_out[o] {
                        pass.targets[o] = true;
                    } else {
                        dead[o] = true;
                    }
                }
            }
        }
    }
    pass.dead_targets = dead.iter().filter(|&&d| d).count();
    pass.rows = rows;
    pass
}

/// One input unit's row of the kernel (`reached`: a declared feature reaches the unit).
fn row_pass(row: &[f32], reached: bool, live_out: &[bool], up_out: &[bool]) -> RowPass {
    let mut p = RowPass {
        most_negative: f32::NAN,
        ..RowPass::default()
    };
    // Fast, branch-free pass; the detailed one only for rows with a negative.
    let (mut live, mut up, mut negative) = (false, false, 0u32);
    for ((&w, &l), &u) in row.iter().zip(live_out).zip(up_out) {
        let nz = w != 0.0;
        live |= nz & l;
        up |= nz & u;
        negative += (nz & (w < 0.0)) as u32;
    }
    if negative == 0 || !reached {
        p.live = live;
        p.up = up;
        p.negative_unreached = negative as usize;
        return p;
    }
    for ((&w, &live), &up) in row.iter().zip(live_out).zip(up_out) {
        // -0.0 == 0.0: no weight at all.
        if w == 0.0 {
            continue;
        }
        p.live |= live;
        p.up |= up;
        if w < 0.0 {
            if !reached {
                p.negative_unreached += 1;
            } else if !live {
                p.negative_dead += 1;
            } else {
                p.violating += 1;
                p.up = true;
                p.most_negative = min_negative(p.most_negative, w);
            }
        }
    }
    p
}
