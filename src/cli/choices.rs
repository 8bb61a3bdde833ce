//! The command line's names for enum options (clap value enums), each turned into the
//! library's type. The library enums live in modules that keep clap out, so the names
//! are spelled here, once.

use clap::ValueEnum;
use nonneg::data::IndexBase;
use nonneg::model::init::InitScheme;
use nonneg::model::scaler::ScaleKind;
use nonneg::model::{Activation, NonNegMode};
use nonneg::optim::OptimizerKind;
use nonneg::train::{Monitor, Preset};

/// `--index-base`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum IndexBaseArg {
    /// 1-based unless a 0 appears.
    #[default]
    Auto,
    #[value(name = "0")]
    Zero,
    #[value(name = "1")]
    One,
}

impl From<IndexBaseArg> for IndexBase {
    fn from(a: IndexBaseArg) -> Self {
        match a {
            IndexBaseArg::Auto => IndexBase::Auto,
            IndexBaseArg::Zero => IndexBase::Zero,
            IndexBaseArg::One => IndexBase::One,
        }
    }
}

/// `--constraint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    None,
    LastNonneg,
    Monotone,
}

impl From<PresetArg> for Preset {
    fn from(a: PresetArg) -> Self {
        match a {
            PresetArg::None => Preset::None,
            PresetArg::LastNonneg => Preset::LastNonneg,
            PresetArg::Monotone => Preset::Monotone,
        }
    }
}

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
}

impl SkipArg {
    /// `None` for auto.
    pub fn chosen(self) -> Option<bool> {
        match self {
            SkipArg::Auto => None,
            SkipArg::On => Some(true),
            SkipArg::Off => Some(false),
        }
    }
}

/// `--nonneg-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NonNegModeArg {
    Project,
    Abs,
    Softplus,
}

impl From<NonNegModeArg> for NonNegMode {
    fn from(a: NonNegModeArg) -> Self {
        match a {
            NonNegModeArg::Project => NonNegMode::Project,
            NonNegModeArg::Abs => NonNegMode::Abs,
            NonNegModeArg::Softplus => NonNegMode::Softplus,
        }
    }
}

/// `--init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    Auto,
    Default,
}

impl From<InitArg> for InitScheme {
    fn from(a: InitArg) -> Self {
        match a {
            InitArg::Auto => InitScheme::Auto,
            InitArg::Default => InitScheme::Default,
        }
    }
}

/// `--scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScaleArg {
    None,
    Standard,
    Minmax,
    Log1p,
    #[value(name = "log1p-standard", alias = "log1p_standard")]
    Log1pStandard,
}

impl From<ScaleArg> for ScaleKind {
    fn from(a: ScaleArg) -> Self {
        match a {
            ScaleArg::None => ScaleKind::None,
            ScaleArg::Standard => ScaleKind::Standard,
            ScaleArg::Minmax => ScaleKind::Minmax,
            ScaleArg::Log1p => ScaleKind::Log1p,
            ScaleArg::Log1pStandard => ScaleKind::Log1pStandard,
        }
    }
}

/// `--optimizer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

impl From<OptimizerArg> for OptimizerKind {
    fn from(a: OptimizerArg) -> Self {
        match a {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Adamw => OptimizerKind::Adamw,
        }
    }
}

/// `--lr-schedule` (its parameters are flags of their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LrScheduleArg {
    Constant,
    Step,
    Cosine,
}

/// `--monitor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MonitorArg {
    Loss,
    Auc,
}

impl From<MonitorArg> for Monitor {
    fn from(a: MonitorArg) -> Self {
        match a {
            MonitorArg::Loss => Monitor::Loss,
            MonitorArg::Auc => Monitor::Auc,
        }
    }
}

/// The name the command line gives a value (for messages).
pub fn name(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}
