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
//! non-decreasing inputs, then a non-decreasing activation). In float arithmetic too:
//! rounding to nearest is monotone, so sums and products of non-negative weights with
//! larger inputs never come out smaller. There is no tolerance: a weight of `-1e-12` on such
//! a path is a violation; `-0.0` equals zero and is no weight at all; NaN is a violation.
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
//! Around the network: the input scaling must be strictly increasing
//! ([`Scaler::validate`](crate::model::Scaler::validate)), and a stored featurizer must be
//! add-monotone ([`FeaturizerSpec::add_monotone`]): adding content to a raw sample may then
//! only switch features on or increase them.
//!
//! [`FeaturizerSpec::add_monotone`]: crate::features::FeaturizerSpec::add_monotone

use crate::data::feature_list::resolve_feature_list;
pub use crate::data::feature_list::Directions;
use crate::error::Result;
use crate::model::{Dense, Model};
use rayon::prelude::*;
use serde::Serialize;
use std::fmt;
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
    /// Negative (or NaN) kernel entries on a path from a declared feature to an output.
    pub count: usize,
    /// The most negative of them (NaN only when every one is NaN).
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
    /// Every negative (or NaN) kernel entry, whether it matters or not.
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
    /// Why the model cannot be certified other than its weights (featurizer, scaling,
    /// activations, malformed model).
    pub reasons: Vec<String>,
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
    let mut reasons = Vec::new();
    let mut declared_mask = vec![declared.is_none(); n];
    if let Some(d) = declared {
        for &i in d {
            match declared_mask.get_mut(i) {
                Some(m) => *m = true,
                None => reasons.push(format!(
                    "declared feature index {i} is out of range (the model has {n} features)"
                )),
            }
        }
    }
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
    };

    // Around the network: the featurizer and the scaling.
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
    if let Some(r) = malformed(model) {
        reasons.push(r);
        cert.reasons = reasons;
        return cert;
    }

    let names = feature_names(model);
    let source_name = |l: usize, i: usize| -> String {
        if l > 0 {
            format!("unit {i}")
        } else {
            names
                .as_ref()
                .map_or_else(|| format!("f{i}"), |v| v[i].clone())
        }
    };

    // Forward reach: reach[l] over the inputs of layer l (reach[L]: the outputs).
    let n_layers = mlp.layers.len();
    let mut reach = Vec::with_capacity(n_layers + 1);
    reach.push(declared_mask.clone());
    for layer in &mlp.layers {
        let next = reach_forward(layer, reach.last().expect("pushed"));
        reach.push(next);
    }

    // Backward: live, up and the violations, from the outputs down.
    let mut live_out = vec![true; mlp.n_labels()];
    let mut up_out = vec![false; mlp.n_labels()];
    let mut layer_violations = Vec::new();
    let mut layer_notes = Vec::new();
    let mut summaries = Vec::with_capacity(n_layers);
    for (l, layer) in mlp.layers.iter().enumerate().rev() {
        let reach_out = &reach[l + 1];
        if !layer.activation.is_non_decreasing() {
            let mut bad = 0;
            for o in 0..layer.n_out {
                if reach_out[o] && live_out[o] {
                    up_out[o] = true;
                    bad += 1;
                }
            }
            if bad > 0 {
                reasons.push(format!(
                    "layer {l}: activation {} is not non-decreasing, and {bad} of its units \
                     are on paths from declared features to the output",
                    layer.activation.name()
                ));
            }
        }
        let pass = backward(layer, &reach[l], &live_out, &up_out);
        summaries.push(pass.summary(l, false, layer));
        layer_violations.extend(pass.violation(l, false, |i| source_name(l, i)));
        let mut notes = Vec::new();
        if pass.negative_unreached > 0 {
            notes.push(if l == 0 {
                format!(
                    "layer 0: {} negative weights on {} input features that are not declared",
                    pass.negative_unreached, pass.unreached_sources
                )
            } else {
                format!(
                    "layer {l}: {} negative weights from {} units no declared feature reaches",
                    pass.negative_unreached, pass.unreached_sources
                )
            });
        }
        if pass.negative_dead > 0 {
            notes.push(format!(
                "layer {l}: {} negative weights into {} units that do not reach the output",
                pass.negative_dead, pass.dead_targets
            ));
        }
        layer_notes.push(notes);
        live_out = pass.rows.iter().map(|r| r.live).collect();
        up_out = pass.rows.iter().map(|r| r.up).collect();
    }
    layer_violations.reverse();
    summaries.reverse();
    layer_notes.reverse();

    // The skip connection: edges from the inputs straight to the logits, which are live
    // and have nothing above them; a violating edge leaves its feature uncovered.
    if let Some(skip) = &mlp.skip {
        let labels = mlp.n_labels();
        let pass = backward(skip, &reach[0], &vec![true; labels], &vec![false; labels]);
        summaries.push(pass.summary(n_layers, true, skip));
        layer_violations.extend(pass.violation(n_layers, true, |i| source_name(0, i)));
        if pass.negative_unreached > 0 {
            layer_notes.push(vec![format!(
                "skip connection: {} negative weights on {} input features that are not declared",
                pass.negative_unreached, pass.unreached_sources
            )]);
        }
        for (u, r) in up_out.iter_mut().zip(&pass.rows) {
            *u |= r.up;
        }
    }

    let uncovered: Vec<usize> = (0..n).filter(|&i| declared_mask[i] && up_out[i]).collect();
    cert.n_uncovered = uncovered.len();
    cert.uncovered = uncovered
        .iter()
        .take(UNCOVERED_CAP)
        .map(|&i| source_name(0, i))
        .collect();
    cert.notes = layer_notes.into_iter().flatten().collect();
    if n_declared == 0 {
        cert.notes
            .push("no feature is declared: the certificate says nothing".to_string());
    }
    cert.certified = layer_violations.is_empty() && reasons.is_empty();
    cert.violations = layer_violations;
    cert.layers = summaries;
    cert.reasons = reasons;
    cert
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

/// Rows of a kernel handled per parallel task.
const MIN_ROWS_PER_TASK: usize = 64;

/// Units of the layer's output fed, through a non-zero weight, by a reached input.
fn reach_forward(layer: &Dense, reach_in: &[bool]) -> Vec<bool> {
    let n_out = layer.n_out;
    layer
        .weight
        .par_chunks(n_out)
        .with_min_len(MIN_ROWS_PER_TASK)
        .zip(reach_in.par_iter())
        .fold(
            || vec![false; n_out],
            |mut acc, (row, &r)| {
                if r {
                    for (a, &w) in acc.iter_mut().zip(row) {
                        *a |= w != 0.0;
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![false; n_out],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x |= y);
                a
            },
        )
}

/// What the backward pass finds about one input unit of a layer.
#[derive(Clone, Copy, Default)]
struct RowPass {
    /// A non-zero weight to a live unit.
    live: bool,
    /// A non-zero weight to a unit upstream of a violation, or a violating weight.
    up: bool,
    violating: usize,
    most_negative: f32,
    negative_unreached: usize,
    negative_dead: usize,
}

struct LayerPass {
    rows: Vec<RowPass>,
    targets: Vec<bool>,
    negative: usize,
    violating: usize,
    most_negative: f32,
    negative_unreached: usize,
    unreached_sources: usize,
    negative_dead: usize,
    dead_targets: usize,
}

impl LayerPass {
    /// The report-table line of `kernel` (layer index `layer`; `skip`: the skip connection).
    fn summary(&self, layer: usize, skip: bool, kernel: &Dense) -> LayerSummary {
        LayerSummary {
            layer,
            skip,
            n_in: kernel.n_in,
            n_out: kernel.n_out,
            activation: kernel.activation.name().to_string(),
            negative: self.negative,
            violating: self.violating,
        }
    }

    /// The violation entry, if any weight violates; `name(i)` names source unit `i`.
    fn violation(
        &self,
        layer: usize,
        skip: bool,
        name: impl Fn(usize) -> String,
    ) -> Option<LayerViolation> {
        if self.violating == 0 {
            return None;
        }
        let sources: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.rows[i].violating > 0)
            .collect();
        let targets: Vec<usize> = (0..self.targets.len())
            .filter(|&o| self.targets[o])
            .collect();
        Some(LayerViolation {
            layer,
            skip,
            count: self.violating,
            most_negative: self.most_negative,
            sources: sources.iter().take(LIST_CAP).map(|&i| name(i)).collect(),
            n_sources: sources.len(),
            targets: targets.iter().take(LIST_CAP).copied().collect(),
            n_targets: targets.len(),
        })
    }
}

/// Not `>= 0`: below zero (`-0.0` is not) or NaN.
#[inline]
fn negative_or_nan(w: f32) -> bool {
    w < 0.0 || w.is_nan()
}

/// The smaller of two values, ignoring NaN (NaN only when both are NaN).
fn min_negative(a: f32, b: f32) -> f32 {
    if a.is_nan() || b < a {
        b
    } else {
        a
    }
}

fn backward(layer: &Dense, reach_in: &[bool], live_out: &[bool], up_out: &[bool]) -> LayerPass {
    let n_out = layer.n_out;
    let rows: Vec<RowPass> = layer
        .weight
        .par_chunks(n_out)
        .with_min_len(MIN_ROWS_PER_TASK)
        .zip(reach_in.par_iter())
        .map(|(row, &reached)| {
            let mut p = RowPass {
                most_negative: f32::NAN,
                ..RowPass::default()
            };
            // Fast, branch-free pass; the detailed one only for rows with a negative.
            let (mut live, mut up, mut negative) = (false, false, 0u32);
            for ((&w, &l), &u) in row.iter().zip(live_out).zip(up_out) {
                let nz = w != 0.0;
                live |= nz & l;
                up |= nz & u;
                negative += (nz & negative_or_nan(w)) as u32;
            }
            if negative == 0 || !reached {
                p.live = live;
                p.up = up;
                p.negative_unreached = negative as usize;
                return p;
            }
            for ((&w, &live), &up) in row.iter().zip(live_out).zip(up_out) {
                // -0.0 == 0.0: no weight at all. NaN is non-zero and not >= 0.
                if w == 0.0 {
                    continue;
                }
                p.live |= live;
                p.up |= up;
                if negative_or_nan(w) {
                    if !reached {
                        p.negative_unreached += 1;
                    } else if !live {
                        p.negative_dead += 1;
                    } else {
                        p.violating += 1;
                        p.up = true;
                        p.most_negative = min_negative(p.most_negative, w);
                    }
                }
            }
            p
        })
        .collect();
    let mut pass = LayerPass {
        targets: vec![false; n_out],
        negative: 0,
        violating: 0,
        most_negative: f32::NAN,
        negative_unreached: 0,
        unreached_sources: 0,
        negative_dead: 0,
        dead_targets: 0,
        rows: Vec::new(),
    };
    let mut dead = vec![false; n_out];
    for (i, p) in rows.iter().enumerate() {
        pass.violating += p.violating;
        pass.negative_unreached += p.negative_unreached;
        pass.negative_dead += p.negative_dead;
        pass.negative += p.violating + p.negative_unreached + p.negative_dead;
        if p.negative_unreached > 0 {
            pass.unreached_sources += 1;
        }
        if p.violating > 0 || p.negative_dead > 0 {
            pass.most_negative = min_negative(pass.most_negative, p.most_negative);
            // Rare rows: find their targets.
            for (o, &w) in layer.weight[i * n_out..(i + 1) * n_out].iter().enumerate() {
                if negative_or_nan(w) {
                    if live_out[o] {
                        pass.targets[o] = true;
                    } else {
                        dead[o] = true;
                    }
                }
            }
        }
    }
    pass.dead_targets = dead.iter().filter(|&&d| d).count();
    pass.rows = rows;
    pass
}

impl Certificate {
    /// The one-line verdict.
    pub fn verdict(&self) -> String {
        let scores = if self.n_labels > 1 {
            "a score"
        } else {
            "the score"
        };
        let of = if self.all_declared {
            " (all features)".to_string()
        } else {
            format!(" (of {} features)", self.n_features)
        };
        if self.certified {
            let s = if self.n_labels > 1 {
                "no score can decrease"
            } else {
                "the score cannot decrease"
            };
            if self.decreasing > 0 {
                return format!(
                    "CERTIFIED: {s} when content is added: when any of the {} declared \
                     features that additions raise is raised, or any of the {} that additions \
                     lower is lowered{of}",
                    self.declared - self.decreasing,
                    self.decreasing
                );
            }
            return format!(
                "CERTIFIED: {s} when any of the {} declared features is added{of}",
                self.declared
            );
        }
        let mut why = Vec::new();
        if !self.violations.is_empty() {
            let count: usize = self.violations.iter().map(|v| v.count).sum();
            why.push(format!(
                "{} of the {} declared features may lower {scores} when added ({count} \
                 negative weights lie on their paths to the output)",
                self.n_uncovered, self.declared
            ));
        }
        why.extend(self.reasons.iter().cloned());
        format!("NOT CERTIFIED: {}", why.join("; "))
    }
}

fn list<T: fmt::Display>(items: &[T], total: usize) -> String {
    let mut s = items
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if total > items.len() {
        s += &format!(" ... and {} more", total - items.len());
    }
    s
}

/// The human report: verdict, per-layer table, violations, uncovered features, notes.
impl fmt::Display for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.verdict())?;
        if !self.layers.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:>5}  {:>9}  {:>7}  {:<10}  {:>9}  {:>9}  {:>13}",
                "layer", "in", "out", "activation", "negative", "violating", "most negative"
            )?;
            for s in &self.layers {
                let v = self.violations.iter().find(|v| v.layer == s.layer);
                let most = v.map_or("-".to_string(), |v| format!("{:e}", v.most_negative));
                let name = if s.skip {
                    "skip".to_string()
                } else {
                    s.layer.to_string()
                };
                writeln!(
                    f,
                    "{:>5}  {:>9}  {:>7}  {:<10}  {:>9}  {:>9}  {:>13}",
                    name, s.n_in, s.n_out, s.activation, s.negative, s.violating, most
                )?;
            }
        }
        for v in &self.violations {
            writeln!(f)?;
            let from = if v.layer == 0 || v.skip {
                "features"
            } else {
                "units"
            };
            let which = if v.skip {
                "skip connection".to_string()
            } else {
                format!("layer {}", v.layer)
            };
            writeln!(
                f,
                "{which}: {} violating weights, most negative {:e}",
                v.count, v.most_negative
            )?;
            writeln!(
                f,
                "  from {} {from}: {}",
                v.n_sources,
                list(&v.sources, v.n_sources)
            )?;
            writeln!(
                f,
                "  into {} units: {}",
                v.n_targets,
                list(&v.targets, v.n_targets)
            )?;
        }
        if self.n_uncovered > 0 {
            writeln!(f)?;
            writeln!(
                f,
                "declared features not covered ({}): {}",
                self.n_uncovered,
                list(&self.uncovered, self.n_uncovered)
            )?;
        }
        if !self.reasons.is_empty() {
            writeln!(f)?;
            writeln!(f, "reasons:")?;
            for r in &self.reasons {
                writeln!(f, "  - {r}")?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "notes (negative weights that do not break the certificate):"
            )?;
            for n in &self.notes {
                writeln!(f, "  - {n}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Mlp, NonNegMode, Scaler};

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
        Model {
            mlp: Mlp {
                input_dim: layers[0].n_in,
                sparse_input: false,
                layers,
                skip: None,
            },
            scaler: Scaler::identity(),
            threshold: vec![0.0],
            feature_names: None,
            label_names: vec!["y".into()],
            nonneg_mode: NonNegMode::Project,
            feature_max: None,
            featurizer: None,
            training: serde_json::Value::Null,
        }
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
    fn nan_and_tiny_negatives_are_violations_negative_zero_is_not() {
        for (w, ok) in [(-0.0, true), (-1e-12, false), (f32::NAN, false)] {
            let m = model(vec![dense(2, 1, vec![1.0, w], Activation::Identity)]);
            let c = certify(&m, None);
            assert_eq!(c.certified, ok, "{w}: {c}");
        }
    }
}
