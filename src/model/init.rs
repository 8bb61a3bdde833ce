//! Initialisation.
//!
//! Free weights use PyTorch's `nn.Linear` default, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
//! Weights constrained to be non-negative start inside the feasible set instead:
//! `U(0, 2 / fan_in)`, mean `1 / fan_in`. With a zero-mean init the first NonNeg projection
//! would zero about half of them (the naive baseline, `--init default`). The scale is
//! fan-in-scaled as `1/fan_in`, not `1/sqrt(fan_in)`: all-positive weights add up the signal
//! their inputs share, so with mean `1/fan_in` each unit starts near the average of its
//! inputs and that shared signal passes each layer at gain ~1; at `1/sqrt(fan_in)` it grew
//! by ~sqrt(fan_in) a layer, saturated the logits and trained far worse (Spambase monotone
//! 64-32: test AUC 0.908 vs 0.948). Because positive weights on positive inputs push every
//! pre-activation up, the biases of constrained layers are then centred on a batch of
//! training data (see `train::center_biases`), so each unit starts alive about half the time.
//! Rows constrained non-positive (NonPos, features that additions lower) start at the
//! mirror image, `U(-2 / fan_in, 0)`.

use super::Dense;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum InitScheme {
    /// Positive init for non-negative entries, PyTorch's default elsewhere.
    #[default]
    Auto,
    /// PyTorch's default everywhere, constraints or not (the naive baseline).
    Default,
}

/// Rows of the kernel that must be non-negative (all of them, some, or none).
pub fn non_negative_rows(layer: &Dense) -> Vec<bool> {
    row_signs(layer).iter().map(|&s| s > 0.0).collect()
}

/// The sign forced on each row of the kernel: `1` (NonNeg), `-1` (NonPos) or `0` (free).
pub fn row_signs(layer: &Dense) -> Vec<f32> {
    let mut signs = vec![0.0; layer.n_in];
    for c in &layer.kernel_constraints {
        for (i, s) in signs.iter_mut().enumerate() {
            if let Some(sign) = c.sign_of_row(i) {
                *s = sign;
            }
        }
    }
    signs
}

pub fn init_layer(layer: &mut Dense, scheme: InitScheme, rng: &mut Rng) {
    let fan_in = layer.n_in.max(1) as f32;
    let bound = 1.0 / fan_in.sqrt();
    let positive_bound = 2.0 / fan_in;
    let signs = match scheme {
        InitScheme::Auto => row_signs(layer),
        InitScheme::Default => vec![0.0; layer.n_in],
    };
    for (i, row) in layer.weight.chunks_exact_mut(layer.n_out).enumerate() {
        for w in row {
            let u = rng.uniform_f32();
            *w = if signs[i] != 0.0 {
                signs[i] * u * positive_bound
            } else {
                (2.0 * u - 1.0) * bound
            };
        }
    }
    for b in &mut layer.bias {
        *b = (2.0 * rng.uniform_f32() - 1.0) * bound;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Constraint};

    #[test]
    fn constrained_rows_start_feasible_and_free_rows_are_zero_mean() {
        let mut layer = Dense::zeros(400, 50, Activation::Relu);
        layer.kernel_constraints = vec![Constraint::NonNeg {
            rows: Some((0..200).collect()),
        }];
        init_layer(&mut layer, InitScheme::Auto, &mut Rng::new(0));
        let (pos, free) = layer.weight.split_at(200 * 50);
        assert!(pos.iter().all(|&w| w >= 0.0));
        let mean = pos.iter().sum::<f32>() / pos.len() as f32;
        assert!(
            (mean * 400.0 - 1.0).abs() < 0.03,
            "mean {mean} should be 1/fan_in"
        );
        assert!(pos.iter().all(|&w| w <= 2.0 / 400.0));
        let mean = free.iter().sum::<f32>() / free.len() as f32;
        assert!(mean.abs() < 0.002);
        assert!(free.iter().any(|&w| w < 0.0));
        let mut naive = layer.clone();
        init_layer(&mut naive, InitScheme::Default, &mut Rng::new(0));
        let killed = naive.weight[..200 * 50]
            .iter()
            .filter(|&&w| w < 0.0)
            .count();
        assert!((killed as f32 / 10_000.0 - 0.5).abs() < 0.03);
    }
}
