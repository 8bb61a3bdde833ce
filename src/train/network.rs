//! The network a training run starts from: layers built from the config, initialised
//! inside their constraints, and biases centred on the data so units start alive.

use super::config::TrainConfig;
use super::projection::project_layer;
use crate::data::Features;
use crate::error::{Error, Result};
use crate::model::init::{init_layer, row_signs};
use crate::model::{Activation, Constraint, Dense, Input, Mlp, NonNegMode, Tape};
use crate::rng::Rng;

/// Builds the network for this config and data shape, initialised and with constraints.
pub fn build_network(
    cfg: &TrainConfig,
    input_dim: usize,
    sparse: bool,
    n_labels: usize,
) -> Result<Mlp> {
    let mut widths = vec![input_dim];
    widths.extend(&cfg.hidden);
    widths.push(n_labels);
    let n_layers = widths.len() - 1;
    if cfg.constraints.len() != n_layers {
        return Err(Error::invalid(format!(
            "constraints are given for {} layers, the network has {n_layers}",
            cfg.constraints.len()
        )));
    }
    if cfg.hidden.contains(&0) {
        return Err(Error::invalid("a hidden layer needs at least one unit"));
    }
    let mut rng = Rng::new(cfg.seed);
    let mut layers = Vec::with_capacity(n_layers);
    for l in 0..n_layers {
        let act = if l + 1 == n_layers {
            Activation::Identity
        } else {
            cfg.activation
        };
        let mut layer = Dense::zeros(widths[l], widths[l + 1], act);
        for c in &cfg.constraints[l].kernel {
            c.validate(layer.n_in, false)
                .map_err(|e| Error::invalid(format!("layer {l} kernel: {e}")))?;
        }
        for c in &cfg.constraints[l].bias {
            c.validate(layer.n_out, true)
                .map_err(|e| Error::invalid(format!("layer {l} bias: {e}")))?;
        }
        if cfg.nonneg_mode != NonNegMode::Project
            && cfg.constraints[l]
                .kernel
                .iter()
                .any(|c| matches!(c, Constraint::NonPos { .. }))
        {
            return Err(Error::invalid(format!(
                "layer {l}: non_pos is enforced by projection, not by the {:?} reparametrisation",
                cfg.nonneg_mode
            )));
        }
        layer.kernel_constraints = cfg.constraints[l].kernel.clone();
        layer.bias_constraints = cfg.constraints[l].bias.clone();
        init_layer(&mut layer, cfg.init, &mut rng);
        layers.push(layer);
    }
    let mut mlp = Mlp {
        input_dim,
        sparse_input: sparse,
        layers,
        skip: None,
    };
    if cfg.skip {
        if cfg.hidden.is_empty() {
            return Err(Error::invalid(
                "a skip connection needs a hidden layer (without one the model is already linear)",
            ));
        }
        let mut skip = mlp.new_skip();
        if cfg.free_skip {
            if super::config::is_lmn(&cfg.constraints) {
                return Err(Error::invalid(
                    "a Lipschitz monotonic network's skip connection carries its proof; it \
                     cannot be free",
                ));
            }
            skip.kernel_constraints.clear();
        }
        mlp.skip = Some(skip);
    }
    super::projection::check_lmn(&mlp)?;
    super::projection::project_lmn(&mut mlp);
    Ok(mlp)
}

/// Sets the biases of layers with non-negative kernels so that each unit's pre-activation
/// has mean zero on `rows` of the (scaled) training data: units start alive. Each layer is
/// centred before the next one sees its activations.
pub fn center_biases(mlp: &mut Mlp, x: &Features, rows: &[usize]) {
    let n = rows.len();
    if n == 0 {
        return;
    }
    let gathered: Vec<f32>;
    let input = match x {
        Features::Dense(m) => {
            gathered = rows
                .iter()
                .flat_map(|&r| m.row(r).iter().copied())
                .collect();
            Input::Dense(&gathered)
        }
        Features::Sparse(m) => Input::Sparse(m, rows),
    };
    let mut shifts: Vec<Option<Vec<f32>>> = vec![None; mlp.layers.len()];
    let mut tape = Tape::new(mlp, n);
    mlp.forward_with(input, &mut tape, |l, layer, z| {
        if row_signs(layer).iter().all(|&s| s == 0.0) {
            return;
        }
        let mut mean = vec![0f64; layer.n_out];
        for row in z.chunks_exact(layer.n_out) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        let shift: Vec<f32> = mean.iter().map(|m| (*m / n as f64) as f32).collect();
        for row in z.chunks_exact_mut(layer.n_out) {
            for (v, s) in row.iter_mut().zip(&shift) {
                *v -= s;
            }
        }
        shifts[l] = Some(shift);
    });
    for (layer, shift) in mlp.layers.iter_mut().zip(shifts) {
        if let Some(shift) = shift {
            for (b, s) in layer.bias.iter_mut().zip(shift) {
                *b -= s;
            }
            project_layer(layer);
        }
    }
}
