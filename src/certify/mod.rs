//! Certification: decides from the weights alone, soundly, whether every output logit is
//! non-decreasing in every declared feature, so that *adding* a declared feature (switching
//! it on, or increasing it) can never lower a score.
//!
//! **Criterion.** A path from a declared input to an output is *safe* when every weight on
//! it is `>= 0` and every activation on it is non-decreasing. If every path through
//! non-zero weights from a declared input to an output is safe, the logits are
//! non-decreasing in the declared inputs (whatever the other inputs are, held fixed):
//! a unit no declared input reaches through non-zero weights is constant, a unit whose
//! outgoing non-zero weights lead to no output cannot matter, and every other unit is, by
//! induction over the layers, a non-decreasing function (non-negative weights on
//! non-decreasing inputs, then a non-decreasing activation). Every activation nonneg has
//! is non-decreasing, so only the weights are examined. In float arithmetic too:
//! rounding to nearest is monotone, so sums and products of non-negative weights with
//! larger inputs never come out smaller. There is no tolerance: a weight of `-1e-12` on such
//! a path is a violation; `-0.0` equals zero and is no weight at all. A non-finite weight
//! or bias (NaN, infinity) is not judged: it is a reason the model cannot be certified,
//! found before the paths are examined, so the passes below only see finite weights.
//!
//! **Algorithm**, O(parameters), two passes over each kernel (Keras layout `[in, out]`,
//! row `i` = the weights leaving unit `i`):
//! 1. forward *reach*: the declared inputs, then every unit fed by a reached unit through a
//!    non-zero weight;
//! 2. backward, from the outputs: *live* (the unit has a path of non-zero weights to an
//!    output), the violations (an edge `u -> v` with `reach(u) && live(v) && w != 0` is on a
//!    declared path; a violation when also `!(w >= 0)`) and *up* (the unit has a path of
//!    non-zero weights through a violation to an output). A declared feature with `up` is
//!    not covered by the certificate.
//!
//! A linear skip connection (input -> logits) is one more set of edges into the outputs,
//! judged by the same rule: the logit is then a sum of two non-decreasing functions.
//!
//! Around the network: the input scaling must be non-decreasing per feature
//! ([`Scaler::validate`](crate::model::Scaler::validate)), and a stored featurizer must be
//! add-monotone ([`FeaturizerSpec::add_monotone`]): adding content to a raw sample may then
//! only switch features on or increase them.
//!
//! **A second proof** ([`lipschitz`]): a declared feature the sign rule leaves uncovered
//! is still covered when its skip weight outweighs the MLP's Lipschitz bound in it (a
//! Lipschitz monotonic network, `train --constraint lmn`). Each covered feature, by either
//! proof, leaves every logit non-decreasing in it whatever the other features are, so any
//! set of additions (one feature after another) cannot lower a logit.
//!
//! [`FeaturizerSpec::add_monotone`]: crate::features::FeaturizerSpec::add_monotone

pub mod budget;
pub mod lipschitz;
mod paths;
mod report;

use crate::data::feature_list::resolve_feature_list;
pub use crate::data::feature_list::Directions;
use crate::error::Result;
use crate::model::Model;
use lipschitz::LipschitzProof;
use paths::{backward, reach_forward};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Longest list of sources or targets kept per layer (the counts are always exact).
pub const LIST_CAP: usize = 20;
/// Longest list of uncovered features kept (the count is always exact).
pub const UNCOVERED_CAP: usize = 50;

/// The weights of one layer that break the certificate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerViolation {
    /// Index of the layer (0 = the first, fed by the input features; the skip connection
    /// has the index after the output layer's).
    pub layer: usize,
    /// The skip connection from the input features to the logits.
    #[serde(skip_serializing_if = "is_false")]
    pub skip: bool,
    /// Negative kernel entries on a path from a declared feature to an output.
    pub count: usize,
    /// The most negative of them.
    pub most_negative: f32,
    /// Source units of the violating entries (layer 0: feature names), the first
    /// [`LIST_CAP`].
    pub sources: Vec<String>,
    pub n_sources: usize,
    /// Target units (outputs of this layer) of the violating entries, the first
    /// [`LIST_CAP`].
    pub targets: Vec<usize>,
    pub n_targets: usize,
}

/// Shape and weight counts of one layer, for the report table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSummary {
    pub layer: usize,
    #[serde(skip_serializing_if = "is_false")]
    pub skip: bool,
    #[serde(rename = "in")]
    pub n_in: usize,
    #[serde(rename = "out")]
    pub n_out: usize,
    pub activation: String,
    /// Every negative kernel entry, whether it matters or not.
    pub negative: usize,
    /// The negative entries that break the certificate.
    pub violating: usize,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The verdict on a model and what it rests on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Certificate {
    /// No violation and no reason: no declared feature, added, can lower any logit.
    pub certified: bool,
    /// How many features were declared.
    pub declared: usize,
    /// How many of them have direction -1: additions lower them, and the certificate says
    /// the score is non-increasing in them, so lowering them cannot lower it (the weights
    /// leaving them must be `<= 0`).
    pub decreasing: usize,
    /// Whether every feature was declared.
    pub all_declared: bool,
    pub n_features: usize,
    pub n_labels: usize,
    pub layers: Vec<LayerSummary>,
    /// One entry per layer with violating weights.
    pub violations: Vec<LayerViolation>,
    /// Declared features with a path to an output through a violation, the first
    /// [`UNCOVERED_CAP`].
    pub uncovered: Vec<String>,
    pub n_uncovered: usize,
    /// Negative weights that do not break the certificate, and why.
    pub notes: Vec<String>,
    /// Why the model cannot be certified other than its weights' signs (featurizer,
    /// scaling, malformed model or non-finite weights).
    pub reasons: Vec<String>,
    /// The Lipschitz proof, tried on the features the sign rule left uncovered when the
    /// model has a skip connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lipschitz: Option<LipschitzProof>,
}

/// Names of the model's input features: its own, else its featurizer's, else none.
pub fn feature_names(model: &Model) -> Option<Vec<String>> {
    let n = model.mlp.input_dim;
    if let Some(names) = model.feature_names.as_ref().filter(|v| v.len() == n) {
        return Some(names.clone());
    }
    model
        .featurizer
        .as_ref()
        .and_then(|s| s.feature_names())
        .filter(|v| v.len() == n)
}

/// Reads a feature list for `model` (the grammar of [`crate::data::feature_list`]).
pub fn resolve_features(model: &Model, lines: &str, path: &Path) -> Result<Vec<usize>> {
    let names = feature_names(model);
    resolve_feature_list(names.as_deref(), model.mlp.input_dim, lines, path)
}

/// Certifies `model` for features with directions: non-decreasing in `up`, non-increasing
/// in `down`. Sound by reduction: a function is non-increasing in `x_j` exactly when it is
/// non-decreasing in `-x_j`, and `f(x)` with the weights leaving `x_j` negated (in the first
/// layer and the skip connection, the only kernels the input feeds) is `f` of `x` with
/// `x_j` negated. So the negated copy is certified for `up` and `down` by the usual rule.
pub fn certify_directions(model: &Model, dirs: &Directions) -> Certificate {
    let mut flipped = model.clone();
    let n = flipped.mlp.input_dim;
    let mlp = &mut flipped.mlp;
    for layer in mlp.layers.iter_mut().take(1).chain(mlp.skip.as_mut()) {
        for &j in dirs.down.iter().filter(|&&j| j < n) {
            let w = layer.n_out;
            if layer.weight.len() >= (j + 1) * w {
                layer.weight[j * w..(j + 1) * w]
                    .iter_mut()
                    .for_each(|x| *x = -*x);
            }
        }
    }
    let mut declared: Vec<usize> = dirs.up.iter().chain(&dirs.down).copied().collect();
    declared.sort_unstable();
    declared.dedup();
    let mut cert = certify(&flipped, Some(&declared));
    cert.decreasing = dirs.down.iter().filter(|&&j| j < n).count();
    cert
}

/// Certifies `model` for the `declared` features (0-based indices; `None`: all of them).
pub fn certify(model: &Model, declared: Option<&[usize]>) -> Certificate {
    let mlp = &model.mlp;
    let n = mlp.input_dim;
    let (declared_mask, mut reasons) = declared_mask(n, declared);
    let n_declared = declared_mask.iter().filter(|&&d| d).count();
    let mut cert = Certificate {
        certified: false,
        declared: n_declared,
        decreasing: 0,
        all_declared: n_declared == n,
        n_features: n,
        n_labels: mlp.n_labels(),
        layers: Vec::new(),
        violations: Vec::new(),
        uncovered: Vec::new(),
        n_uncovered: 0,
        notes: Vec::new(),
        reasons: Vec::new(),
        lipschitz: None,
    };
    reasons.extend(reasons_around_network(model));
    if let Some(r) = malformed(model) {
        reasons.push(r);
        cert.reasons = reasons;
        return cert;
    }
    let names = feature_names(model);
    let source_name = |l: usize, i: usize| -> String {
        match (l, &names) {
            (0, Some(v)) => v[i].clone(),
            (0, None) => format!("f{i}"),
            _ => format!("unit {i}"),
        }
    };
    let found = weight_passes(model, &declared_mask, &source_name);
    let mut uncovered: Vec<usize> = (0..n)
        .filter(|&i| declared_mask[i] && found.up_inputs[i])
        .collect();
    if !uncovered.is_empty() && mlp.skip.is_some() {
        let (held, proof) = lipschitz::check(mlp, &uncovered);
        let mut held = held.into_iter();
        uncovered.retain(|_| !held.next().expect("one per feature"));
        cert.lipschitz = Some(proof);
    }
    cert.n_uncovered = uncovered.len();
    cert.uncovered = uncovered
        .iter()
        .take(UNCOVERED_CAP)
        .map(|&i| source_name(0, i))
        .collect();
    cert.notes = found.notes;
    if n_declared == 0 {
        cert.notes
            .push("no feature is declared: the certificate says nothing".to_string());
    }
    // Violations are fine only where the Lipschitz proof covered their features.
    cert.certified = uncovered.is_empty()
        && reasons.is_empty()
        && (found.violations.is_empty() || cert.lipschitz.is_some());
    cert.violations = found.violations;
    cert.layers = found.summaries;
    cert.reasons = reasons;
    cert
}

/// Which features are declared, and a reason for each declared index out of range.
fn declared_mask(n: usize, declared: Option<&[usize]>) -> (Vec<bool>, Vec<String>) {
    let mut mask = vec![declared.is_none(); n];
    let mut reasons = Vec::new();
    for &i in declared.unwrap_or_default() {
        match mask.get_mut(i) {
            Some(m) => *m = true,
            None => reasons.push(format!(
                "declared feature index {i} is out of range (the model has {n} features)"
            )),
        }
    }
    (mask, reasons)
}

/// Reasons around the network: the featurizer must be add-monotone and fit the model, and
/// the input scaling non-decreasing per feature.
fn reasons_around_network(model: &Model) -> Vec<String> {
    let n = model.mlp.input_dim;
    let mut reasons = Vec::new();
    if let Some(s) = &model.featurizer {
        if let Err(r) = s.add_monotone() {
            reasons.push(format!(
                "the featurizer is not add-monotone: {r} (adding content to a sample can \
                 lower a feature)"
            ));
        }
        if s.n_features() != n {
            reasons.push(format!(
                "the featurizer makes {} features, the model takes {n}",
                s.n_features()
            ));
        }
    }
    if let Err(e) = model.scaler.validate(n) {
        reasons.push(format!("input scaling: {e}"));
    }
    reasons
}

/// What the passes over the weights find.
struct Found {
    summaries: Vec<LayerSummary>,
    violations: Vec<LayerViolation>,
    notes: Vec<String>,
    /// Input features with a path to an output through a violation.
    up_inputs: Vec<bool>,
}

/// Forward reach from the declared features, then the backward pass from the outputs over
/// every layer and the skip connection (`malformed` ensured the shapes chain).
fn weight_passes(
    model: &Model,
    declared_mask: &[bool],
    source_name: &dyn Fn(usize, usize) -> String,
) -> Found {
    let mlp = &model.mlp;
    let n_layers = mlp.layers.len();
    let mut reach = vec![declared_mask.to_vec()];
    for layer in &mlp.layers[..n_layers - 1] {
        let next = reach_forward(layer, reach.last().expect("pushed"));
        reach.push(next);
    }
    let mut live_out = vec![true; mlp.n_labels()];
    let mut up_out = vec![false; mlp.n_labels()];
    let (mut summaries, mut violations, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for (l, layer) in mlp.layers.iter().enumerate().rev() {
        let pass = backward(layer, &reach[l], &live_out, &up_out);
        summaries.push(pass.summary(l, false, layer));
        violations.extend(pass.violation(l, false, |i| source_name(l, i)));
        notes.push(pass.notes(&format!("layer {l}"), l == 0));
        live_out = pass.rows.iter().map(|r| r.live).collect();
        up_out = pass.rows.iter().map(|r| r.up).collect();
    }
    violations.reverse();
    summaries.reverse();
    notes.reverse();
    // The skip connection: edges from the inputs straight to the logits, which are live
    // and have nothing above them; a violating edge leaves its feature uncovered.
    if let Some(skip) = &mlp.skip {
        let labels = mlp.n_labels();
        let pass = backward(skip, &reach[0], &vec![true; labels], &vec![false; labels]);
        summaries.push(pass.summary(n_layers, true, skip));
        violations.extend(pass.violation(n_layers, true, |i| source_name(0, i)));
        // Every logit is live: no skip weight is dead, only undeclared.
        notes.push(pass.notes("skip connection", true));
        for (u, r) in up_out.iter_mut().zip(&pass.rows) {
            *u |= r.up;
        }
    }
    Found {
        summaries,
        violations,
        notes: notes.into_iter().flatten().collect(),
        up_inputs: up_out,
    }
}

/// Shapes that do not chain, or a non-finite value: the weights cannot be judged.
fn malformed(model: &Model) -> Option<String> {
    let mlp = &model.mlp;
    if mlp.layers.is_empty() {
        return Some("the model has no layers".into());
    }
    let mut width = mlp.input_dim;
    for (l, layer) in mlp.layers.iter().enumerate() {
        if layer.n_in != width
            || layer.weight.len() != layer.n_in * layer.n_out
            || layer.bias.len() != layer.n_out
        {
            return Some(format!(
                "layer {l}: malformed (takes {} inputs, {width} arrive; {} weights for {} x {})",
                layer.n_in,
                layer.weight.len(),
                layer.n_in,
                layer.n_out
            ));
        }
        if layer.n_out == 0 {
            return Some(format!("layer {l} has no units"));
        }
        if layer.bias.iter().any(|b| !b.is_finite())
            || layer.weight.par_iter().any(|w| !w.is_finite())
        {
            return Some(format!("layer {l} has non-finite weights or biases"));
        }
        width = layer.n_out;
    }
    if let Some(skip) = &mlp.skip {
        if skip.n_in != mlp.input_dim
            || skip.n_out != width
            || skip.weight.len() != skip.n_in * skip.n_out
        {
            return Some("the skip connection is malformed".into());
        }
        if skip.weight.par_iter().any(|w| !w.is_finite()) {
            return Some("the skip connection has non-finite weights".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Dense, Mlp};

    fn dense(n_in: usize, n_out: usize, w: Vec<f32>, act: Activation) -> Dense {
        assert_eq!(w.len(), n_in * n_out);
        Dense {
            n_in,
            n_out,
            weight: w,
            bias: vec![0.0; n_out],
            activation: act,
            kernel_constraints: vec![],
            bias_constraints: vec![],
        }
    }

    fn model(layers: Vec<Dense>) -> Model {
        Model::new(Mlp {
            input_dim: layers[0].n_in,
            sparse_input: false,
            layers,
            skip: None,
        })
    }

    #[test]
    fn hand_made_paths() {
        // 3 inputs -> 2 hidden -> 1 output.
        // f0 -> h0 (1), f1 -> h0 (-1), f2 -> h1 (-2); h0 -> out (1), h1 -> out (0).
        let m = model(vec![
            dense(3, 2, vec![1.0, 0.0, -1.0, 0.0, 0.0, -2.0], Activation::Relu),
            dense(2, 1, vec![1.0, -0.0], Activation::Identity),
        ]);
        let c = certify(&m, None);
        assert!(!c.certified);
        assert_eq!(c.violations.len(), 1);
        let v = &c.violations[0];
        assert_eq!((v.layer, v.count, v.most_negative), (0, 1, -1.0));
        assert_eq!(v.sources, vec!["f1"]);
        assert_eq!(v.targets, vec![0]);
        assert_eq!(c.uncovered, vec!["f1"]);
        assert!(
            c.notes[0].contains("do not reach the output"),
            "{:?}",
            c.notes
        );

        let c = certify(&m, Some(&[0, 2]));
        assert!(c.certified, "{c}");
        assert!(c.notes.iter().any(|n| n.contains("not declared")));
        assert!(c.notes.iter().any(|n| n.contains("do not reach")));
        assert!(c.to_string().starts_with("CERTIFIED"));
    }

    #[test]
    fn tiny_negatives_are_violations_negative_zero_is_not_non_finite_is_a_reason() {
        for (w, ok) in [(-0.0, true), (-1e-12, false)] {
            let m = model(vec![dense(2, 1, vec![1.0, w], Activation::Identity)]);
            let c = certify(&m, None);
            assert_eq!(c.certified, ok, "{w}: {c}");
        }
        // Non-finite weights are not judged as signs: the model is refused with a reason.
        for w in [f32::NAN, f32::INFINITY] {
            let m = model(vec![dense(2, 1, vec![1.0, w], Activation::Identity)]);
            let c = certify(&m, None);
            assert!(!c.certified && c.violations.is_empty(), "{w}: {c}");
            assert!(
                c.reasons.iter().any(|r| r.contains("non-finite")),
                "{w}: {c}"
            );
        }
    }
}
