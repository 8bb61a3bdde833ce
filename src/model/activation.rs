//! Activations. Every one is non-decreasing, which is what makes a network with
//! non-negative weights monotone.

use serde::{Deserialize, Serialize};

/// Slope of leaky ReLU for negative inputs (PyTorch's default).
pub const LEAKY_SLOPE: f32 = 0.01;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Activation {
    /// The output layer: logits.
    #[cfg_attr(feature = "cli", value(skip))]
    Identity,
    Relu,
    #[cfg_attr(feature = "cli", value(name = "leaky_relu"))]
    LeakyRelu,
    Sigmoid,
    Tanh,
    Softplus,
    /// Units of three kinds in turn (unit `u` by `u % 3`), the constrained-monotone-network
    /// idea (Runje & Shankaranarayana, 2023): convex `relu(z)`, concave `min(z, 0)` and
    /// saturating `clamp(z, -1, 1)`. With non-negative weights ReLU units alone can only
    /// build convex functions; the mix can build any monotone shape.
    Mixed,
}

impl Activation {
    pub const HIDDEN: [Activation; 6] = [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Mixed => "mixed",
        }
    }

    /// Whether `apply` is non-decreasing everywhere (all of ours are; certify asks).
    pub fn is_non_decreasing(self) -> bool {
        true
    }

    /// The activation of unit `unit` of its layer (only [`Activation::Mixed`] asks).
    #[inline]
    pub fn apply(self, z: f32, unit: usize) -> f32 {
        match self {
            Activation::Identity => z,
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu => {
                if z > 0.0 {
                    z
                } else {
                    LEAKY_SLOPE * z
                }
            }
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Softplus => softplus(z),
            Activation::Mixed => match unit % 3 {
                0 => z.max(0.0),
                1 => z.min(0.0),
                _ => z.clamp(-1.0, 1.0),
            },
        }
    }

    /// Applies the activation to a row of pre-activations (one per unit) into `a`.
    #[inline]
    pub fn apply_row(self, z: &[f32], a: &mut [f32]) {
        for (u, (a, &z)) in a.iter_mut().zip(z).enumerate() {
            *a = self.apply(z, u);
        }
    }

    /// `d *= derivative` over a row of units (pre-activations `z`, outputs `a`).
    #[inline]
    pub fn scale_by_derivative_row(self, z: &[f32], a: &[f32], d: &mut [f32]) {
        for (u, ((d, &z), &a)) in d.iter_mut().zip(z).zip(a).enumerate() {
            *d *= self.derivative(z, a, u);
        }
    }

    /// Derivative, given the pre-activation `z` and the output `a = apply(z, unit)`.
    #[inline]
    pub fn derivative(self, z: f32, a: f32, unit: usize) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu => {
                if z > 0.0 {
                    1.0
                } else {
                    LEAKY_SLOPE
                }
            }
            Activation::Sigmoid => a * (1.0 - a),
            Activation::Tanh => 1.0 - a * a,
            Activation::Softplus => sigmoid(z),
            Activation::Mixed => {
                let live = match unit % 3 {
                    0 => z > 0.0,
                    1 => z < 0.0,
                    _ => z.abs() < 1.0,
                };
                if live {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

#[inline]
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// softplus(z) = log(1 + e^z), computed without overflow; linear above 20 as in PyTorch.
#[inline]
pub fn softplus(z: f32) -> f32 {
    if z > 20.0 {
        z
    } else {
        z.max(0.0) + (-z.abs()).exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences_and_are_non_negative() {
        for act in Activation::HIDDEN.into_iter().chain([Activation::Identity]) {
            for unit in 0..3 {
                for &z in &[-3.0f64, -0.7, -0.05, 0.05, 0.4, 2.5] {
                    let h = 1e-3;
                    let f = |z: f64| act.apply(z as f32, unit) as f64;
                    let fd = (f(z + h) - f(z - h)) / (2.0 * h);
                    let d = act.derivative(z as f32, act.apply(z as f32, unit), unit) as f64;
                    assert!(
                        (fd - d).abs() < 2e-3,
                        "{act:?} unit {unit} at {z}: fd {fd} vs {d}"
                    );
                    assert!(d >= 0.0, "{act:?} decreasing at {z}");
                }
            }
        }
    }

    #[test]
    fn activations_are_non_decreasing_on_a_grid() {
        for act in Activation::HIDDEN {
            for unit in 0..3 {
                let mut prev = f32::NEG_INFINITY;
                for i in -4000..=4000 {
                    let v = act.apply(i as f32 * 0.01, unit);
                    assert!(v >= prev, "{act:?} decreases at {}", i as f32 * 0.01);
                    prev = v;
                }
            }
        }
    }

    #[test]
    fn mixed_units_are_convex_concave_and_saturating_in_turn() {
        let m = Activation::Mixed;
        assert_eq!([m.apply(-2.0, 0), m.apply(2.0, 0)], [0.0, 2.0]);
        assert_eq!([m.apply(-2.0, 1), m.apply(2.0, 1)], [-2.0, 0.0]);
        assert_eq!(
            [m.apply(-2.0, 2), m.apply(0.5, 2), m.apply(2.0, 2)],
            [-1.0, 0.5, 1.0]
        );
        assert_eq!(m.apply(3.0, 3), 3.0);
    }

    #[test]
    fn names_are_the_model_file_names() {
        for act in Activation::HIDDEN.into_iter().chain([Activation::Identity]) {
            let json = serde_json::to_value(act).unwrap();
            assert_eq!(json, act.name());
            assert_eq!(serde_json::from_value::<Activation>(json).unwrap(), act);
        }
        assert!(serde_json::from_value::<Activation>("gelu".into()).is_err());
    }
}
