//! The model: an MLP whose first layer takes dense or sparse input, with per-tensor
//! constraints, plus what the model file carries around it (scaling, threshold, names).

pub mod activation;
pub mod constraint;
pub mod dense;
pub mod ensemble;
pub mod explain;
pub mod init;
pub mod io;
pub mod mlp;
pub mod scaler;
pub mod threshold;

pub use activation::Activation;
pub use constraint::Constraint;
pub use dense::Dense;
pub use mlp::{Grads, Input, Mlp, Tape};
pub use scaler::Scaler;

use crate::data::Features;
use serde::{Deserialize, Serialize};

/// How non-negativity is enforced on constrained entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum NonNegMode {
    /// Projection after each step (`w * (w >= 0)`), as Keras.
    #[default]
    Project,
    /// Train a free parameter `t`, use `w = |t|`.
    Abs,
    /// Train a free parameter `t`, use `w = softplus(t)`.
    Softplus,
}

/// Everything a model file holds: the network and what turns raw data into its input and
/// its output into decisions.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub mlp: Mlp,
    /// Scaling applied to raw features before the network.
    pub scaler: Scaler,
    /// Decision threshold on the logit, per label (a row is positive when logit >= it).
    pub threshold: Vec<f32>,
    pub feature_names: Option<Vec<String>>,
    pub label_names: Vec<String>,
    pub nonneg_mode: NonNegMode,
    /// Largest value of each raw feature in the training data (bounds real-valued attacks).
    pub feature_max: Option<Vec<f32>>,
    /// The featurizer that turns raw samples into this model's features, if any.
    pub featurizer: Option<crate::features::FeaturizerSpec>,
    /// How the training data was read (format, index base, class names), so other files
    /// are read the same way; empty for models from before it was stored.
    pub input: crate::data::DataInfo,
    /// The training configuration, for the record.
    pub training: serde_json::Value,
}

impl Model {
    /// `mlp` as a model with nothing around it: no scaling, threshold 0 and labels named
    /// `label` (`label0`, `label1`, ... with several), no names, featurizer or record.
    pub fn new(mlp: Mlp) -> Self {
        let labels = mlp.n_labels();
        Model {
            mlp,
            scaler: Scaler::identity(),
            threshold: vec![0.0; labels],
            feature_names: None,
            label_names: match labels {
                1 => vec!["label".into()],
                n => (0..n).map(|k| format!("label{k}")).collect(),
            },
            nonneg_mode: NonNegMode::Project,
            feature_max: None,
            featurizer: None,
            input: Default::default(),
            training: serde_json::Value::Null,
        }
    }

    /// The class names `[negative, positive]` of a binary model trained on string labels.
    pub fn class_names(&self) -> Option<[&str; 2]> {
        (self.mlp.n_labels() == 1)
            .then(|| self.input.class_names())
            .flatten()
    }
}

impl Model {
    /// Scales raw features and returns logits `[rows x n_labels]`.
    pub fn logits(&self, x: &Features) -> Vec<f32> {
        if self.scaler.kind == scaler::ScaleKind::None {
            return self.mlp.logits(x);
        }
        let mut x = x.clone();
        self.scaler.apply(&mut x);
        self.mlp.logits(&x)
    }
}

/// One label's verdict on one row.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// `sigmoid(logit)`.
    pub score: f32,
    pub logit: f32,
    /// 1 when the logit reaches the label's threshold.
    pub label: u8,
}

impl Model {
    /// Per row, per label: score, logit and decision at the model's thresholds, for
    /// logits `[rows x labels]` of this model.
    pub fn decide(&self, logits: &[f32]) -> Vec<Prediction> {
        let l = self.threshold.len().max(1);
        logits
            .chunks_exact(l)
            .flat_map(|row| {
                row.iter().zip(&self.threshold).map(|(&z, &t)| Prediction {
                    score: activation::sigmoid(z),
                    logit: z,
                    label: (z >= t) as u8,
                })
            })
            .collect()
    }
}
