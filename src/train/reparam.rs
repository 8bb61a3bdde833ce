//! NonNeg by reparametrisation (`--nonneg-mode abs|softplus`): the optimizer trains a free
//! parameter `t` and the layer uses `w = |t|` or `w = softplus(t)`, so constrained weights
//! are non-negative without a projection. Saved models hold the effective `w`.

use super::config::TrainConfig;
use super::update::TensorState;
use crate::model::init::non_negative_rows;
use crate::model::{Dense, NonNegMode};
use crate::optim::OptimizerConfig;

#[inline]
pub(super) fn reparam_forward(mode: NonNegMode, t: f32) -> f32 {
    match mode {
        NonNegMode::Abs => t.abs(),
        NonNegMode::Softplus => crate::model::activation::softplus(t),
        NonNegMode::Project => t,
    }
}

#[inline]
pub(super) fn reparam_grad(mode: NonNegMode, t: f32) -> f32 {
    match mode {
        NonNegMode::Abs => {
            if t >= 0.0 {
                1.0
            } else {
                -1.0
            }
        }
        NonNegMode::Softplus => crate::model::activation::sigmoid(t),
        NonNegMode::Project => 1.0,
    }
}

/// The free parameter giving effective weight `w >= 0` (keeping `t`'s sign for abs).
#[inline]
pub(super) fn reparam_inverse(mode: NonNegMode, w: f32, t: f32) -> f32 {
    match mode {
        NonNegMode::Abs => {
            if t < 0.0 {
                -w
            } else {
                w
            }
        }
        // softplus^-1(w) = w + log(-expm1(-w)), floored where w underflows.
        NonNegMode::Softplus => {
            if w > 20.0 {
                w
            } else {
                (w.max(1e-12) as f64 + (-(-(w.max(1e-12) as f64)).exp_m1()).ln()) as f32
            }
        }
        NonNegMode::Project => w,
    }
}

/// Optimizer state for a layer's kernel; in abs/softplus mode also the free parameter of
/// its non-negative rows, started from the projected init so `w = f(t)` is the same weight.
pub(super) fn weight_state_for(cfg: &TrainConfig, layer: &mut Dense) -> TensorState {
    let mut ws = TensorState::new(&cfg.optimizer, layer.weight.len(), layer.n_out);
    if cfg.nonneg_mode != NonNegMode::Project {
        let rows = non_negative_rows(layer);
        if rows.iter().any(|&r| r) {
            // Start from the projected init so that w = f(t) is the same weight.
            for (i, row) in layer.weight.chunks_exact_mut(layer.n_out).enumerate() {
                if rows[i] {
                    row.iter_mut().for_each(|w| *w = w.max(0.0));
                }
            }
            let raw: Vec<f32> = layer
                .weight
                .iter()
                .enumerate()
                .map(|(k, &w)| {
                    if rows[k / layer.n_out] {
                        reparam_inverse(cfg.nonneg_mode, w, 1.0)
                    } else {
                        w
                    }
                })
                .collect();
            for (k, w) in layer.weight.iter_mut().enumerate() {
                if rows[k / layer.n_out] {
                    *w = reparam_forward(cfg.nonneg_mode, raw[k]);
                }
            }
            ws.raw = Some(raw);
            ws.rows = rows;
        }
    }
    ws
}

/// Turns the gradient `g` of a tensor's weights into the gradient of its free parameter
/// on the reparametrised rows (chain rule through `w = f(t)`). Those rows decay the
/// effective weight `w`, not `t` (decaying `t` would pull a softplus weight towards
/// softplus(0)): an L2 term `wd * w` in w's gradient; the optimizer then updates `t`
/// without decay.
pub(super) fn grad_to_raw(
    opt: &OptimizerConfig,
    mode: NonNegMode,
    st: &TensorState,
    w: &[f32],
    g: &mut [f32],
) {
    let Some(raw) = st.raw.as_ref() else {
        return;
    };
    for (k, ((g, &t), &w)) in g.iter_mut().zip(raw.iter()).zip(w.iter()).enumerate() {
        if st.rows[k / st.cols] {
            *g = (*g + opt.weight_decay * w) * reparam_grad(mode, t);
        }
    }
}

/// Sets the weights from the free parameter after its update: `w = f(t)` on the
/// reparametrised rows, `w = t` on the others.
pub(super) fn raw_to_weights(mode: NonNegMode, st: &TensorState, w: &mut [f32]) {
    let Some(raw) = st.raw.as_ref() else {
        return;
    };
    for (k, (w, &t)) in w.iter_mut().zip(raw).enumerate() {
        *w = if st.rows[k / st.cols] {
            reparam_forward(mode, t)
        } else {
            t
        };
    }
}
