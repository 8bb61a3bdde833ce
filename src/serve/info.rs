//! What `GET /v1/models` says about a served model.

use super::state::Served;
use crate::features::{FeaturizerKind, FeaturizerSpec, Vocabulary};
use serde_json::{json, Value};
use std::path::Path;

/// Architecture, input kind, threshold, featurizer and the load-time certificate.
pub fn describe(name: &str, path: &Path, served: &Served) -> Value {
    let m = &served.model;
    let widths: Vec<usize> = std::iter::once(m.mlp.input_dim)
        .chain(m.mlp.layers.iter().map(|l| l.n_out))
        .collect();
    let activations: Vec<_> = m.mlp.layers.iter().map(|l| l.activation).collect();
    let input = match (&m.featurizer, m.mlp.sparse_input) {
        (Some(_), _) => "raw samples (score/raw) or sparse feature rows",
        (None, true) => "sparse feature rows",
        (None, false) => "dense feature rows",
    };
    let c = &served.certificate;
    json!({
        "name": name,
        "path": path.display().to_string(),
        "generation": served.generation,
        "architecture": {
            "widths": widths,
            "activations": activations,
            "skip": m.mlp.skip.is_some(),
            "sparse_input": m.mlp.sparse_input,
        },
        "input": input,
        "n_features": m.mlp.input_dim,
        "feature_names": served.feature_index.is_some(),
        "labels": m.label_names,
        "threshold": m.threshold,
        "scaler": m.scaler.kind,
        "featurizer": m.featurizer.as_ref().map(featurizer),
        "certificate": {
            "certified": c.certified,
            "verdict": c.verdict(),
            "violations": c.violations.iter().map(|v| v.count).sum::<usize>(),
            "uncovered_features": c.n_uncovered,
            "reasons": c.reasons,
        },
    })
}

/// The featurizer's settings, with a vocabulary given by its size, not its terms.
fn featurizer(spec: &FeaturizerSpec) -> Value {
    let mut v = match &spec.kind {
        FeaturizerKind::Text(t) => {
            let mut v = json!({ "kind": "text", "options": t.options });
            v["vocabulary"] = match &t.vocabulary {
                Vocabulary::Terms(terms) => json!({ "terms": terms.len() }),
                Vocabulary::Hashing { bits } => json!({ "hash_bits": bits }),
            };
            v
        }
        FeaturizerKind::Bytes(b) => json!({ "kind": "bytes", "options": b }),
    };
    v["n_features"] = json!(spec.n_features());
    v["add_monotone"] = json!(spec.add_monotone().is_ok());
    v
}
