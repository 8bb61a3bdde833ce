//! The served models: each name's current model behind an atomic pointer, so a reload
//! swaps the whole model at once and a request scores with one consistent version.

use super::metrics::Metrics;
use crate::certify::{certify, Certificate};
use crate::error::{Error, Result};
use crate::model::Model;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One loaded model and what is computed once at load time.
pub struct Served {
    pub model: Model,
    /// The certificate for all features, computed when the file was loaded.
    pub certificate: Certificate,
    /// Feature name -> column, for rows given as name maps.
    pub feature_index: Option<HashMap<String, usize>>,
    /// 1 for the model loaded at start, +1 per successful reload.
    pub generation: u64,
}

impl Served {
    /// Loads and checks a model file; `Err` names the file.
    pub fn load(path: &Path, generation: u64) -> Result<Served> {
        let model = crate::model::io::load(path)?;
        if model.threshold.len() != model.mlp.n_labels() {
            return Err(Error::format(
                path,
                format!(
                    "{} thresholds for {} labels",
                    model.threshold.len(),
                    model.mlp.n_labels()
                ),
            ));
        }
        if let Some(spec) = &model.featurizer {
            if spec.n_features() != model.mlp.input_dim {
                return Err(Error::format(
                    path,
                    format!(
                        "the featurizer makes {} features, the network takes {}",
                        spec.n_features(),
                        model.mlp.input_dim
                    ),
                ));
            }
        }
        let certificate = certify(&model, None);
        let feature_index = crate::certify::feature_names(&model)
            .map(|names| names.into_iter().enumerate().map(|(i, n)| (n, i)).collect());
        Ok(Served {
            model,
            certificate,
            feature_index,
            generation,
        })
    }
}

/// A model name, its file and the version now serving.
pub struct Slot {
    pub path: PathBuf,
    pub current: ArcSwap<Served>,
}

/// What a reload did to one model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    pub model: String,
    pub ok: bool,
    /// The generation serving after the reload (unchanged when it failed).
    pub generation: u64,
    /// Why the new file was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every served model, by name. Names are fixed at start; files are re-read on reload.
pub struct Registry {
    slots: BTreeMap<String, Slot>,
    /// One reload at a time: two at once would race to swap.
    reloading: tokio::sync::Mutex<()>,
}

impl Registry {
    /// Loads every `(name, path)`; the first bad file or repeated name is an error.
    pub fn load(models: &[(String, PathBuf)]) -> Result<Registry> {
        if models.is_empty() {
            return Err(Error::invalid(
                "at least one model must be served, got none",
            ));
        }
        let mut slots = BTreeMap::new();
        for (name, path) in models {
            check_name(name)?;
            let served = Served::load(path, 1)?;
            let slot = Slot {
                path: path.clone(),
                current: ArcSwap::from_pointee(served),
            };
            if slots.insert(name.clone(), slot).is_some() {
                return Err(Error::invalid(format!(
                    "model name {name:?} is given twice"
                )));
            }
        }
        Ok(Registry {
            slots,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Served>> {
        self.slots.get(name).map(|s| s.current.load_full())
    }

    pub fn slots(&self) -> impl Iterator<Item = (&String, &Slot)> {
        self.slots.iter()
    }

    /// Re-reads every model file; a file that does not load and check keeps the old model
    /// serving. Outcomes are logged and counted in `metrics`.
    pub async fn reload(&self, metrics: &Metrics) -> Vec<ReloadOutcome> {
        let _one_at_a_time = self.reloading.lock().await;
        let mut outcomes = Vec::new();
        for (name, slot) in &self.slots {
            let next = slot.current.load().generation + 1;
            let path = slot.path.clone();
            // Reading and certifying a large model takes a while: off the async threads.
            let loaded = tokio::task::spawn_blocking(move || Served::load(&path, next))
                .await
                .unwrap_or_else(|e| Err(Error::invalid(format!("reload task failed: {e}"))));
            let outcome = match loaded {
                Ok(served) => {
                    slot.current.store(Arc::new(served));
                    tracing::info!(model = %name, generation = next, "reloaded {}", slot.path.display());
                    ReloadOutcome {
                        model: name.clone(),
                        ok: true,
                        generation: next,
                        error: None,
                    }
                }
                Err(e) => {
                    tracing::error!(model = %name, "reload failed, the old model keeps serving: {e}");
                    ReloadOutcome {
                        model: name.clone(),
                        ok: false,
                        generation: next - 1,
                        error: Some(e.to_string()),
                    }
                }
            };
            metrics.record_reload(name, outcome.ok);
            outcomes.push(outcome);
        }
        outcomes
    }
}

/// Names go into URLs and metric labels: keep them to a safe alphabet.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "model name {name:?} must be non-empty ASCII letters, digits, '-', '_' or '.'"
        )))
    }
}
