//! Where constraints are applied. Every optimizer step ends with a projection onto the
//! constraints (Keras semantics), in two parts:
//! - [`project_row`]: elementwise constraints (NonNeg / NonPos, on whole kernels or on
//!   listed rows) are applied to each row right after its update, while it is in cache;
//!   the dense update ([`super::update::update_tensor`]) and the lazy sparse-row update
//!   ([`super::update::update_sparse_rows`]) both call it;
//! - [`project_after_step`]: the constraints that need a whole tensor (max-norm, min-max
//!   norm, unit norm) on the kernel, and every bias constraint, once the layer's step is
//!   done.
//!
//! With the abs or softplus reparametrisation (`NonNegMode::Abs/Softplus`) non-negativity
//! comes from `w = f(t)` instead, and NonNeg is not projected ([`fused_constraints`]).
//! [`project_layer`] applies every constraint at once, at init and after bias centring.
//!
//! [`project_lmn`]: the one rule across tensors, a Lipschitz monotonic network's skip
//! weights and first kernel brought to the Lipschitz rule, once the whole step is done.

use super::reparam::reparam_inverse;
use super::update::TensorState;
use crate::certify::lipschitz;
use crate::error::{Error, Result};
use crate::model::{Constraint, Dense, Mlp, NonNegMode};

/// The elementwise constraints [`project_row`] applies for a tensor with constraints
/// `constraints`: all elementwise ones, but NonNeg only when not reparametrised.
pub(super) fn fused_constraints(constraints: &[Constraint], reparam: bool) -> Vec<&Constraint> {
    constraints
        .iter()
        .filter(|c| c.is_elementwise() && !(reparam && matches!(c, Constraint::NonNeg { .. })))
        .collect()
}

/// Projects row `row_index` of a tensor (just updated) onto the elementwise constraints;
/// with `reset_clipped`, first zeroes the momentum `m` of the weights about to be clipped,
/// so stale momentum does not push them out again.
#[inline]
pub(super) fn project_row(
    fused: &[&Constraint],
    row_index: usize,
    row: &mut [f32],
    m: &mut [f32],
    reset_clipped: bool,
) {
    if reset_clipped && !m.is_empty() {
        if let Some(sign) = fused.iter().find_map(|c| c.sign_of_row(row_index)) {
            reset_clipped_moment(row, m, sign);
        }
    }
    for c in fused {
        c.apply_to_row(row_index, row);
    }
}

/// Zeroes the momentum of the weights about to be clipped to zero (of the wrong `sign`,
/// or NaN).
#[inline]
fn reset_clipped_moment(w: &[f32], m: &mut [f32], sign: f32) {
    for (w, m) in w.iter().zip(m) {
        // Wrong sign or NaN: the projection sets it to zero.
        let kept = *w * sign >= 0.0;
        if !kept {
            *m = 0.0;
        }
    }
}

/// The projection after a layer's step: its kernel's whole-tensor constraints and every
/// bias constraint (elementwise kernel constraints were applied row by row). A
/// reparametrised kernel's free parameter is moved to match the projected weight.
pub(super) fn project_after_step(layer: &mut Dense, st: &mut TensorState, mode: NonNegMode) {
    let mut changed = false;
    for c in layer
        .kernel_constraints
        .iter()
        .filter(|c| !c.is_elementwise())
    {
        c.apply(&mut layer.weight, layer.n_in, layer.n_out);
        changed = true;
    }
    if let (Some(raw), true) = (st.raw.as_mut(), changed) {
        for (k, (t, &w)) in raw.iter_mut().zip(&layer.weight).enumerate() {
            *t = if st.rows[k / st.cols] {
                reparam_inverse(mode, w, *t)
            } else {
                w
            };
        }
    }
    for c in &layer.bias_constraints {
        c.apply(&mut layer.bias, layer.n_out, 1);
    }
}

/// Applies every kernel and bias constraint of `layer`, in the order given.
pub fn project_layer(layer: &mut Dense) {
    for c in &layer.kernel_constraints {
        c.apply(&mut layer.weight, layer.n_in, layer.n_out);
    }
    for c in &layer.bias_constraints {
        c.apply(&mut layer.bias, layer.n_out, 1);
    }
}

/// Checks that [`Constraint::Lmn`] sits where its rule can hold: on the first kernel of a
/// network with a skip connection.
pub fn check_lmn(mlp: &Mlp) -> Result<()> {
    let on = |l: &Dense| l.kernel_constraints.contains(&Constraint::Lmn);
    if mlp.layers.iter().skip(1).any(on) {
        return Err(Error::invalid(
            "lmn applies to the first kernel only (the one the input feeds)",
        ));
    }
    if mlp.layers.first().is_some_and(on) && mlp.skip.is_none() {
        return Err(Error::invalid(
            "lmn needs a skip connection, hence a hidden layer (its proof is that the skip \
             weights outweigh the MLP)",
        ));
    }
    Ok(())
}

/// The Lipschitz monotonic network's projection after a whole step (every tensor
/// updated): each feature's skip weight and first-kernel row moved to the nearest point
/// where the skip weight covers the MLP's Lipschitz bound. No-op for other networks.
pub fn project_lmn(mlp: &mut Mlp) {
    if mlp
        .layers
        .first()
        .is_some_and(|l| l.kernel_constraints.contains(&Constraint::Lmn))
    {
        lipschitz::project(mlp);
    }
}
