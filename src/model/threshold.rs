//! The operating point after training: the logit threshold a model decides at, set to a
//! value or chosen for a false positive rate on labelled data.

use super::Model;
use crate::data::Dataset;
use crate::error::{Error, Result};

impl Model {
    /// Decides every label at logit `t`.
    pub fn set_threshold(&mut self, t: f32) -> Result<()> {
        if !t.is_finite() {
            return Err(Error::invalid(format!(
                "the `threshold` option must be a finite logit, got {t}"
            )));
        }
        self.threshold.iter_mut().for_each(|x| *x = t);
        Ok(())
    }

    /// Sets each label's threshold to give a false positive rate of at most `fpr` on the
    /// negatives of `data` (labelled, raw features); returns the thresholds.
    pub fn set_threshold_for_fpr(&mut self, data: &Dataset, fpr: f64) -> Result<Vec<f32>> {
        if !(fpr > 0.0 && fpr < 1.0) {
            return Err(Error::invalid(format!(
                "the `threshold_fpr` option must be between 0 and 1 (exclusive), got {fpr}"
            )));
        }
        let y = data.y.as_ref().ok_or_else(|| {
            Error::invalid("a threshold for a false positive rate needs labelled data")
        })?;
        if data.n_labels != self.mlp.n_labels() || data.x.cols() != self.mlp.input_dim {
            return Err(Error::Mismatch(format!(
                "the data has {} label(s) and {} features, the model {} and {}",
                data.n_labels,
                data.x.cols(),
                self.mlp.n_labels(),
                self.mlp.input_dim
            )));
        }
        let logits = self.logits(&data.x);
        let t = crate::metrics::thresholds_for_fpr(&logits, y, data.n_labels, fpr).ok_or_else(
            || {
                Error::invalid(
                    "no threshold for the false positive rate: the data has no negatives",
                )
            },
        )?;
        self.threshold = t.clone();
        Ok(t)
    }
}
