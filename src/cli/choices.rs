//! Value enums for the options whose choices are the command line's own (`auto` choices,
//! schedules whose parameters are flags of their own). The library's option enums derive
//! `clap::ValueEnum` themselves (with the `cli` feature) and are used directly.

use clap::ValueEnum;
use nonneg::model::Activation;

/// `--activation`: a hidden activation, or auto (the recipe's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    Auto,
    Relu,
    #[value(name = "leaky_relu", alias = "leaky-relu", alias = "leakyrelu")]
    LeakyRelu,
    Sigmoid,
    Tanh,
    Softplus,
    Mixed,
}

impl ActivationArg {
    /// `None` for auto.
    pub fn chosen(self) -> Option<Activation> {
        Some(match self {
            ActivationArg::Auto => return None,
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::LeakyRelu => Activation::LeakyRelu,
            ActivationArg::Sigmoid => Activation::Sigmoid,
            ActivationArg::Tanh => Activation::Tanh,
            ActivationArg::Softplus => Activation::Softplus,
            ActivationArg::Mixed => Activation::Mixed,
        })
    }
}

/// `--skip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SkipArg {
    Auto,
    On,
    Off,
    Free,
}

impl SkipArg {
    /// `None` for auto.
    pub fn chosen(self) -> Option<bool> {
        match self {
            SkipArg::Auto => None,
            SkipArg::On | SkipArg::Free => Some(true),
            SkipArg::Off => Some(false),
        }
    }

    /// Whether the skip connection goes without a sign constraint.
    pub fn free(self) -> bool {
        self == SkipArg::Free
    }
}

/// `--lr-schedule` (its parameters are flags of their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LrScheduleArg {
    Constant,
    Step,
    Cosine,
}

/// The name the command line gives a value (for messages).
pub fn name(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}
