//! Feature-addition attacks: an attacker who may only ADD features (a binary feature 0 -> 1,
//! a real-valued one up to a cap) tries to make a detected positive look negative.
//!
//! Threat model. Adding feature `j` sets it to `max(current, cap_j)` with `cap_j` the
//! training maximum stored in the model (`feature_max`) or one value for all features;
//! only declared features may be added. Each step adds ONE feature; an attack on a target
//! runs up to the largest budget and records the step at which the logit fell below the
//! threshold, so every budget is answered by one run.
//!
//! Methods:
//! - [`Method::Greedy`] (white box): each step adds the feature that lowers the logit most,
//!   scored EXACTLY over every candidate; it stops at a local minimum, where no single
//!   addition lowers the logit (always, at once, on a monotone model).
//! - [`Method::Gradient`] (white box, JSMA-like): ranks candidates by the gradient of the
//!   logit with respect to the feature times the increase available, adds the best, and
//!   recomputes the gradient. Both are taken after the model's scaling (the first-order
//!   change of the network's input), which for the affine scalings equals the raw gradient
//!   times the raw increase, and stays meaningful for the log scalings.
//! - [`Method::Query`] (black box): each step scores a random sample of candidates through
//!   the model (one query each) and keeps the best.
//! - [`Method::Random`]: adds random candidates (baseline).
//!
//! Speed. Adding feature `j` moves the first layer's pre-activation by
//! `(s(b) - s(a)) * W1[j]` (row `j` of the Keras-layout kernel, `s` the model's scaling), so
//! scoring a candidate never needs a full forward pass. Two exact scorers:
//! - *batched*: for a block of candidates, `H = act(z1 + d_j W1[j])`, then the upper layers
//!   as GEMMs on the block. Any activation.
//! - *cached* (ReLU, leaky ReLU, identity first layer): with `s` the slopes of the first
//!   activation at the current `z1`, the second layer's pre-activation after adding `j` is
//!   `z2 = b2 + act(z1) W2 + d_j G[j] + sum over units whose slope changes of
//!   (slope(t_i) - s_i) t_i W2[i]`, with `G = W1 diag(s) W2` kept per target and updated by
//!   a rank-k product when an added feature changes slopes, and `t = z1 + d_j W1[j]`. Slopes
//!   change for few units, so a candidate costs one pass over its `W1` row (to find them)
//!   plus `O(h2)` per change, instead of an `h1 x h2` product.
//!
//! Targets are independent: they run in parallel (rayon) and results are aggregated in
//! target order, so they do not depend on the thread count.
//!
//! Queries: every model evaluation the attacker makes counts, the target's initial score
//! excepted: greedy scores every candidate each step, the query attack its sample, the
//! gradient attack one evaluation (forward and backward) per step, the random attack one
//! per step (to see whether it evaded).

use crate::data::{Dataset, Features};
use crate::error::{Error, Result};
use crate::kernels;
use crate::linalg::{matmul, Trans};
use crate::model::scaler::ScaleKind;
use crate::model::{Activation, Model};
use crate::plot::{self, Chart, Series};
use crate::rng::Rng;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::Path;

/// How the attacker picks the feature to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Greedy,
    Gradient,
    Query,
    Random,
}

impl Method {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "greedy" => Some(Method::Greedy),
            "gradient" => Some(Method::Gradient),
            "query" => Some(Method::Query),
            "random" => Some(Method::Random),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Method::Greedy => "greedy",
            Method::Gradient => "gradient",
            Method::Query => "query",
            Method::Random => "random",
        }
    }
}

/// How candidates are scored (both exact; see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scoring {
    /// Cached for greedy when the first activation is piecewise linear and memory allows,
    /// batched otherwise.
    #[default]
    Auto,
    Batched,
    Cached,
}

impl Scoring {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Scoring::Auto),
            "batched" => Some(Scoring::Batched),
            "cached" => Some(Scoring::Cached),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Scoring::Auto => "auto",
            Scoring::Batched => "batched",
            Scoring::Cached => "cached",
        }
    }
}

/// What to attack and how.
#[derive(Clone, Debug)]
pub struct AttackConfig {
    pub method: Method,
    /// Budgets (features added) to report; the attack runs up to the largest.
    pub budgets: Vec<usize>,
    /// Features the attacker may add (0-based); `None`: all but those the model declares
    /// as lowered by additions (NonPos first-layer rows).
    pub addable: Option<Vec<usize>>,
    /// Cap for every feature; `None`: the model's `feature_max`.
    pub max_value: Option<f32>,
    /// Attack only the first N targets (row order).
    pub limit: Option<usize>,
    pub seed: u64,
    /// Query attack: candidates evaluated per step.
    pub queries_per_step: usize,
    /// The label whose positives are attacked.
    pub label: usize,
    pub scoring: Scoring,
}

impl AttackConfig {
    pub fn new(method: Method, budgets: Vec<usize>) -> Self {
        AttackConfig {
            method,
            budgets,
            addable: None,
            max_value: None,
            limit: None,
            seed: 0,
            queries_per_step: 64,
            label: 0,
            scoring: Scoring::Auto,
        }
    }
}

/// What happened to one target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetOutcome {
    /// Row of the data set.
    pub row: usize,
    pub initial_logit: f32,
    pub final_logit: f32,
    /// Steps (features added) after which the logit fell below the threshold.
    pub evaded_at: Option<usize>,
    /// Features added, in order.
    pub added: Vec<usize>,
    /// The logit after each step.
    pub logits: Vec<f32>,
    /// Model evaluations used, cumulative after each step.
    pub queries: Vec<u64>,
}

/// The attack's result at one budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetResult {
    pub budget: usize,
    pub targets: usize,
    pub evaded: usize,
    pub evasion_rate: f64,
    /// Mean features added among the targets evaded within the budget (`None` if none).
    pub mean_added: Option<f64>,
    /// Model evaluations over all targets, each counted up to its evasion or the budget.
    pub queries: u64,
    /// `queries / targets`.
    pub mean_queries: f64,
}

/// An attack run on one model.
#[derive(Clone, Debug, Serialize)]
pub struct AttackReport {
    pub method: Method,
    pub label: usize,
    /// Positives of the label in the data, detected positives, and targets attacked.
    pub positives: usize,
    pub detected: usize,
    /// Features the attacker may add.
    pub addable: usize,
    /// The scorer used (`batched` or `cached`).
    pub scoring: &'static str,
    pub results: Vec<BudgetResult>,
    pub outcomes: Vec<TargetOutcome>,
    pub seconds: f64,
}

/// Per-budget summary of target outcomes (`budgets` in the order given).
///
/// Queries: a target evaded at step `s <= B` counts its queries up to step `s`, any other
/// its queries up to step `B` (or its last step, if it ran out of candidates).
pub fn summarize(outcomes: &[TargetOutcome], budgets: &[usize]) -> Vec<BudgetResult> {
    budgets
        .iter()
        .map(|&b| {
            let mut evaded = 0usize;
            let mut added = 0usize;
            let mut queries = 0u64;
            for o in outcomes {
                let steps = match o.evaded_at {
                    Some(s) if s <= b => {
                        evaded += 1;
                        added += s;
                        s
                    }
                    _ => b.min(o.queries.len()),
                };
                if steps > 0 {
                    queries += o.queries[steps - 1];
                }
            }
            let targets = outcomes.len();
            BudgetResult {
                budget: b,
                targets,
                evaded,
                evasion_rate: if targets > 0 {
                    evaded as f64 / targets as f64
                } else {
                    0.0
                },
                mean_added: (evaded > 0).then(|| added as f64 / evaded as f64),
                queries,
                mean_queries: if targets > 0 {
                    queries as f64 / targets as f64
                } else {
                    0.0
                },
            }
        })
        .collect()
}

/// Budgets from `1,5,10`: positive, duplicates removed, ascending.
pub fn parse_budgets(s: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        match p.parse::<usize>() {
            Ok(b) if b > 0 => out.push(b),
            _ => {
                return Err(Error::invalid(format!(
                    "--budget: `{p}` is not a positive whole number (expected e.g. 1,5,10,20,50)"
                )))
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Reads a feature list: one feature name or 0-based index per line; blank lines and lines
/// starting with `#` are skipped; a name takes precedence over a number; ` # comment` after
/// an entry is allowed. Returns sorted unique indices.
pub fn parse_feature_list(
    text: &str,
    names: Option<&[String]>,
    n_features: usize,
    source: &str,
) -> Result<Vec<usize>> {
    let lookup = |s: &str| -> Option<usize> {
        if let Some(i) = names.and_then(|n| n.iter().position(|x| x == s)) {
            return Some(i);
        }
        s.parse::<usize>().ok().filter(|&i| i < n_features)
    };
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let found = lookup(entry).or_else(|| {
            entry
                .find(" #")
                .or_else(|| entry.find("\t#"))
                .and_then(|p| lookup(entry[..p].trim()))
        });
        match found {
            Some(i) => out.push(i),
            None => {
                let why = if entry.parse::<usize>().is_ok() {
                    format!("feature index {entry} is out of range (the model has {n_features} features)")
                } else if names.is_none() {
                    format!("unknown feature `{entry}` (the model has no feature names; use 0-based indices)")
                } else {
                    format!("unknown feature `{entry}`")
                };
                return Err(Error::parse(source, ln + 1, "feature", why));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The `--json` object: one model as `{"method", "model", "results"}`, several as
/// `{"method", "models": [{"model", "results"}, ...]}`.
pub fn report_json(method: &str, runs: &[(String, Vec<BudgetResult>)]) -> Value {
    if runs.len() == 1 {
        return json!({"method": method, "model": runs[0].0, "results": runs[0].1});
    }
    json!({
        "method": method,
        "models": runs.iter().map(|(m, r)| json!({"model": m, "results": r})).collect::<Vec<_>>(),
    })
}

/// Writes a JSON value to a file atomically (pretty-printed, newline-terminated).
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| Error::invalid(e.to_string()))?;
    text.push('\n');
    crate::model::io::write_atomic(path, text.as_bytes())
}

/// The per-budget results as CSV, one row per model and budget.
pub fn csv_text(runs: &[(String, Vec<BudgetResult>)]) -> String {
    let mut s =
        String::from("model,budget,targets,evaded,evasion_rate,mean_added,queries,mean_queries\n");
    for (model, results) in runs {
        let m = crate::data::write::csv_field(model);
        for r in results {
            s.push_str(&format!(
                "{m},{},{},{},{},{},{},{}\n",
                r.budget,
                r.targets,
                r.evaded,
                r.evasion_rate,
                r.mean_added.map_or(String::new(), |v| v.to_string()),
                r.queries,
                r.mean_queries
            ));
        }
    }
    s
}

/// Draws evasion rate against budget, one line per run, to a PNG (atomically).
pub fn plot_curves(runs: &[(String, Vec<BudgetResult>)], title: &str, path: &Path) -> Result<()> {
    let max_b = runs
        .iter()
        .flat_map(|(_, r)| r.iter().map(|b| b.budget))
        .max()
        .unwrap_or(1) as f64;
    let series = runs
        .iter()
        .map(|(name, r)| {
            let mut points = vec![(0.0, 0.0)];
            points.extend(r.iter().map(|b| (b.budget as f64, b.evasion_rate)));
            Series {
                name: name.clone(),
                points,
            }
        })
        .collect();
    plot::draw(
        &Chart {
            title,
            x_label: "budget (features added)",
            y_label: "evasion rate",
            x_range: (0.0, max_b),
            y_range: (0.0, 1.0),
            series,
            diagonal: false,
            markers: true,
        },
        path,
    )
}

/// A row's raw values.
#[derive(Clone, Copy, Debug)]
pub enum RowRef<'a> {
    Dense(&'a [f32]),
    Sparse(&'a [u32], &'a [f32]),
}

impl<'a> RowRef<'a> {
    pub fn of(x: &'a Features, r: usize) -> Self {
        match x {
            Features::Dense(m) => RowRef::Dense(m.row(r)),
            Features::Sparse(m) => {
                let (i, v) = m.row(r);
                RowRef::Sparse(i, v)
            }
        }
    }
}

/// One layer above the first, restricted to the attacked label's column if it is the output.
#[derive(Clone, Debug)]
struct Layer {
    n_in: usize,
    n_out: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    act: Activation,
}

/// Rows scored per block (bounds the scratch memory).
const BLOCK: usize = 256;
/// Candidates per block of the cached scorer.
const CACHED_BLOCK: usize = 1024;
/// The cached scorer's per-target matrix `G` may use at most this many bytes (one per
/// worker thread, plus a shared reference)...
const CACHED_MAX_BYTES: usize = 64 << 20;
/// ... and its transposed copy of the first kernel at most this many.
const CACHED_MAX_TRANSPOSED_BYTES: usize = 1 << 30;

/// The model prepared for attacks under one configuration: caps, candidates and the
/// scorer's precomputed matrices. Build once, attack many targets.
pub struct Attacker<'m> {
    model: &'m Model,
    method: Method,
    /// Steps per target: the largest budget.
    max_budget: usize,
    seed: u64,
    queries_per_step: usize,
    label: usize,
    threshold: f32,
    /// Whether rows come as sparse data (an implicit zero is scaled to 0).
    sparse: bool,
    /// Addable features (sorted); the attacker's candidates are those below their cap.
    addable: Vec<u32>,
    /// Cap per addable feature.
    caps: Vec<f32>,
    h1: usize,
    act1: Activation,
    /// `W1` rows of the addable features `[A x h1]` (None: all features, use the model's).
    w1a: Option<Vec<f32>>,
    upper: Vec<Layer>,
    scoring: Scoring,
    /// Cached scorer: `W1a` transposed `[h1 x A]`.
    w1a_t: Vec<f32>,
    /// Cached scorer: smallest and largest entry of each column of `W1a`.
    col_min: Vec<f32>,
    col_max: Vec<f32>,
    /// Cached scorer: reference slopes and `G_ref = W1a diag(s_ref) W2`.
    reference: Option<(Vec<f32>, Vec<f32>)>,
    /// The skip connection's weight into the attacked logit, per addable entry: adding
    /// entry `a` moves the logit by `d_a * skip_a[a]` on top of the network's change.
    skip_a: Option<Vec<f32>>,
}

/// A target under attack.
#[derive(Clone, Debug)]
pub struct TargetState {
    /// Current raw value of each addable feature.
    x: Vec<f32>,
    /// Scaled increase of each addable feature (0 once added or at its cap).
    d: Vec<f32>,
    alive: Vec<bool>,
    n_alive: usize,
    /// First-layer pre-activation of the current row.
    z1: Vec<f32>,
    /// Cached scorer: slopes at `z1`, and `G = W1a diag(slopes) W2`.
    slopes: Vec<f32>,
    g: Vec<f32>,
    /// Cached scorer: bounds on `d_a * W1a[a, i]` over the candidates, per unit.
    lo: Vec<f32>,
    hi: Vec<f32>,
    /// The skip connection's contribution to the attacked logit at the current row.
    skip: f32,
}

impl TargetState {
    /// Candidates left (addable features below their cap).
    pub fn candidates(&self) -> usize {
        self.n_alive
    }
}

/// Scratch buffers of one worker.
#[derive(Default)]
pub struct Workspace {
    a: Vec<f32>,
    b: Vec<f32>,
    ids: Vec<u32>,
    z2base: Vec<f32>,
    changes: Vec<u32>,
    gather: Vec<f32>,
    z2tmp: Vec<f32>,
    corr: Vec<f32>,
    dgather: Vec<f32>,
    wgather: Vec<f32>,
    /// A spare `G` buffer.
    g: Vec<f32>,
    scores: Vec<f32>,
}

/// Applies an activation in place to rows of `width` units (vectorised for the
/// piecewise-linear ones), bitwise as `Activation::apply`.
fn activate(act: Activation, v: &mut [f32], width: usize) {
    match act {
        Activation::Identity => {}
        Activation::Relu => kernels::leaky_relu(v, 0.0),
        Activation::LeakyRelu => kernels::leaky_relu(v, crate::model::activation::LEAKY_SLOPE),
        _ => {
            for row in v.chunks_exact_mut(width) {
                for (u, x) in row.iter_mut().enumerate() {
                    *x = act.apply(*x, u);
                }
            }
        }
    }
}

/// Slope of a piecewise-linear activation at or below 0.
fn low_slope(act: Activation) -> f32 {
    match act {
        Activation::LeakyRelu => crate::model::activation::LEAKY_SLOPE,
        Activation::Relu => 0.0,
        _ => 1.0,
    }
}

#[inline]
fn slope(act: Activation, z: f32) -> f32 {
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => (z > 0.0) as u32 as f32,
        _ => {
            if z > 0.0 {
                1.0
            } else {
                crate::model::activation::LEAKY_SLOPE
            }
        }
    }
}

impl<'m> Attacker<'m> {
    /// Prepares `model` for attacks under `cfg` on rows in the given format.
    pub fn new(model: &'m Model, cfg: &AttackConfig, sparse: bool) -> Result<Self> {
        let mlp = &model.mlp;
        let d = mlp.input_dim;
        let n_labels = mlp.n_labels();
        if cfg.label >= n_labels {
            return Err(Error::invalid(format!(
                "--label {}: the model has {n_labels} label(s)",
                cfg.label
            )));
        }
        // Features the model declares as lowered by additions (NonPos first-layer rows,
        // `train --feature-directions`) are never raised: that is not an addition.
        let signs = crate::model::init::row_signs(&mlp.layers[0]);
        let addable: Vec<u32> = match &cfg.addable {
            None => (0..d as u32)
                .filter(|&j| signs[j as usize] >= 0.0)
                .collect(),
            Some(list) => {
                let mut v: Vec<u32> = Vec::with_capacity(list.len());
                for &j in list {
                    if j >= d {
                        return Err(Error::invalid(format!(
                            "addable feature {j} is out of range (the model has {d} features)"
                        )));
                    }
                    v.push(j as u32);
                }
                v.sort_unstable();
                v.dedup();
                v
            }
        };
        let caps: Vec<f32> = match (cfg.max_value, &model.feature_max) {
            (Some(v), _) => {
                if !v.is_finite() {
                    return Err(Error::invalid("--max-value must be a finite number"));
                }
                vec![v; addable.len()]
            }
            (None, Some(max)) if max.len() == d => {
                addable.iter().map(|&j| max[j as usize]).collect()
            }
            (None, _) => {
                return Err(Error::invalid(
                    "the model stores no per-feature maximum: give --max-value",
                ))
            }
        };
        let first = &mlp.layers[0];
        let h1 = first.n_out;
        let n_layers = mlp.layers.len();
        let upper: Vec<Layer> = mlp.layers[1..]
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i + 2 == n_layers {
                    // The output layer: only the attacked label's column.
                    Layer {
                        n_in: l.n_in,
                        n_out: 1,
                        w: (0..l.n_in)
                            .map(|r| l.weight[r * l.n_out + cfg.label])
                            .collect(),
                        b: vec![l.bias[cfg.label]],
                        act: l.activation,
                    }
                } else {
                    Layer {
                        n_in: l.n_in,
                        n_out: l.n_out,
                        w: l.weight.clone(),
                        b: l.bias.clone(),
                        act: l.activation,
                    }
                }
            })
            .collect();
        let a = addable.len();
        let w1a = (a != d).then(|| {
            let mut w = Vec::with_capacity(a * h1);
            for &j in &addable {
                w.extend_from_slice(&first.weight[j as usize * h1..(j as usize + 1) * h1]);
            }
            w
        });
        let piecewise = matches!(
            first.activation,
            Activation::Relu | Activation::LeakyRelu | Activation::Identity
        );
        let h2 = upper.first().map_or(0, |l| l.n_out);
        let fits = a * h2 * 4 <= CACHED_MAX_BYTES && a * h1 * 4 <= CACHED_MAX_TRANSPOSED_BYTES;
        let scoring = match cfg.scoring {
            Scoring::Auto if cfg.method == Method::Greedy && piecewise && h2 > 0 && fits => {
                Scoring::Cached
            }
            Scoring::Auto => Scoring::Batched,
            Scoring::Cached if !(piecewise && h2 > 0) => {
                return Err(Error::invalid(
                    "cached scoring needs a hidden layer with relu, leaky_relu or identity",
                ))
            }
            s => s,
        };
        let skip_a = mlp.skip.as_ref().map(|s| {
            addable
                .iter()
                .map(|&j| s.weight[j as usize * s.n_out + cfg.label])
                .collect()
        });
        let mut att = Attacker {
            model,
            method: cfg.method,
            max_budget: cfg.budgets.iter().copied().max().unwrap_or(0),
            seed: cfg.seed,
            queries_per_step: cfg.queries_per_step,
            label: cfg.label,
            threshold: model.threshold[cfg.label],
            sparse,
            addable,
            caps,
            h1,
            act1: first.activation,
            w1a,
            upper,
            scoring,
            w1a_t: Vec::new(),
            col_min: Vec::new(),
            col_max: Vec::new(),
            reference: None,
            skip_a,
        };
        if scoring == Scoring::Cached {
            let w = att.w1a();
            let mut t = vec![0.0f32; a * h1];
            const TILE: usize = 64;
            for r0 in (0..a).step_by(TILE) {
                for c0 in (0..h1).step_by(TILE) {
                    for r in r0..(r0 + TILE).min(a) {
                        for c in c0..(c0 + TILE).min(h1) {
                            t[c * a + r] = w[r * h1 + c];
                        }
                    }
                }
            }
            att.w1a_t = t;
            let (mut lo, mut hi) = (vec![0.0f32; h1], vec![0.0f32; h1]);
            if a > 0 {
                for (i, col) in att.w1a_t.chunks_exact(a).enumerate() {
                    lo[i] = col.iter().copied().fold(f32::INFINITY, f32::min);
                    hi[i] = col.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                }
            }
            att.col_min = lo;
            att.col_max = hi;
        }
        Ok(att)
    }

    /// The scorer in use.
    pub fn scoring(&self) -> Scoring {
        self.scoring
    }

    /// Number of addable features.
    pub fn addable(&self) -> usize {
        self.addable.len()
    }

    /// The feature index of addable entry `a`.
    pub fn feature(&self, a: usize) -> usize {
        self.addable[a] as usize
    }

    fn w1a(&self) -> &[f32] {
        self.w1a
            .as_deref()
            .unwrap_or(&self.model.mlp.layers[0].weight)
    }

    #[inline]
    fn w1_row(&self, a: usize) -> &[f32] {
        &self.w1a()[a * self.h1..(a + 1) * self.h1]
    }

    /// The model's scaling of raw value `v` of feature `j`, exactly as `Scaler::apply` for
    /// this data format.
    #[inline]
    fn scaled(&self, j: usize, v: f32) -> f32 {
        let s = &self.model.scaler;
        if s.kind == ScaleKind::None {
            return v;
        }
        let t = if matches!(s.kind, ScaleKind::Log1p | ScaleKind::Log1pStandard) {
            v.signum() * v.abs().ln_1p()
        } else {
            v
        };
        if s.mult.is_empty() {
            t
        } else if self.sparse {
            t * s.mult[j]
        } else {
            (t - s.shift[j]) * s.mult[j]
        }
    }

    /// Starts an attack on a row: its candidates, and the first layer's pre-activation.
    pub fn start(&self, row: RowRef) -> TargetState {
        self.start_with(row, Vec::new())
    }

    fn start_with(&self, row: RowRef, g_buffer: Vec<f32>) -> TargetState {
        let a_n = self.addable.len();
        let mut x = vec![0.0f32; a_n];
        match row {
            RowRef::Dense(vals) => {
                for (a, &j) in self.addable.iter().enumerate() {
                    x[a] = vals[j as usize];
                }
            }
            RowRef::Sparse(idx, vals) => {
                let mut p = 0;
                for (&j, &v) in idx.iter().zip(vals) {
                    while p < a_n && self.addable[p] < j {
                        p += 1;
                    }
                    if p < a_n && self.addable[p] == j {
                        x[p] = v;
                    }
                }
            }
        }
        let z1 = self.start_z1(row);
        let mut d = vec![0.0f32; a_n];
        let mut alive = vec![false; a_n];
        let mut n_alive = 0;
        for a in 0..a_n {
            if x[a] < self.caps[a] {
                let j = self.addable[a] as usize;
                d[a] = self.scaled(j, self.caps[a]) - self.scaled(j, x[a]);
                alive[a] = true;
                n_alive += 1;
            }
        }
        let skip = self.start_skip(row);
        let mut st = TargetState {
            x,
            d,
            alive,
            n_alive,
            skip,
            z1,
            slopes: Vec::new(),
            g: Vec::new(),
            lo: Vec::new(),
            hi: Vec::new(),
        };
        if self.scoring == Scoring::Cached {
            self.init_cache(&mut st, g_buffer);
        }
        st
    }

    /// Builds a reference `G` from the majority slope of each first-layer unit over these
    /// pre-activations (typically the targets'), so that each target's `G` is the
    /// reference plus a product over the units where it differs. Optional: without it,
    /// each target's `G` is computed from scratch.
    pub fn set_reference(&mut self, z1s: &[Vec<f32>]) {
        if self.scoring != Scoring::Cached || z1s.is_empty() {
            return;
        }
        let h1 = self.h1;
        let mut s_ref = vec![0.0f32; h1];
        for (i, s) in s_ref.iter_mut().enumerate() {
            let pos = z1s.iter().filter(|z| z[i] > 0.0).count();
            *s = slope(self.act1, if pos * 2 >= z1s.len() { 1.0 } else { -1.0 });
        }
        let g = self.product_g(&s_ref);
        self.reference = Some((s_ref, g));
    }

    /// `W1a diag(s) W2` from scratch.
    fn product_g(&self, s: &[f32]) -> Vec<f32> {
        let mut g = Vec::new();
        self.product_g_into(s, &mut g);
        g
    }

    fn product_g_into(&self, s: &[f32], g: &mut Vec<f32>) {
        let l2 = &self.upper[0];
        let h2 = l2.n_out;
        let mut sw2 = l2.w.clone();
        for (i, row) in sw2.chunks_exact_mut(h2).enumerate() {
            for v in row {
                *v *= s[i];
            }
        }
        let a_n = self.addable.len();
        g.clear();
        g.resize(a_n * h2, 0.0);
        matmul(
            g,
            self.w1a(),
            Trans::N,
            &sw2,
            Trans::N,
            a_n,
            self.h1,
            h2,
            false,
        );
    }

    /// `g += W1a[:, units] diag(delta) W2[units]`.
    fn update_g(&self, g: &mut [f32], units: &[u32], delta: &[f32]) {
        if units.is_empty() {
            return;
        }
        let l2 = &self.upper[0];
        let h2 = l2.n_out;
        let a_n = self.addable.len();
        let k = units.len();
        let mut at = Vec::with_capacity(k * a_n);
        let mut b = Vec::with_capacity(k * h2);
        for (&u, &dl) in units.iter().zip(delta) {
            let u = u as usize;
            at.extend_from_slice(&self.w1a_t[u * a_n..(u + 1) * a_n]);
            b.extend(l2.w[u * h2..(u + 1) * h2].iter().map(|&w| w * dl));
        }
        matmul(g, &at, Trans::T, &b, Trans::N, a_n, k, h2, true);
    }

    /// Builds the target's `G` (in `buffer`, reused to spare page faults) and bounds.
    fn init_cache(&self, st: &mut TargetState, mut g: Vec<f32>) {
        let slopes: Vec<f32> = st.z1.iter().map(|&z| slope(self.act1, z)).collect();
        match &self.reference {
            Some((s_ref, g_ref)) => {
                let (units, delta): (Vec<u32>, Vec<f32>) = (0..self.h1)
                    .filter(|&i| slopes[i] != s_ref[i])
                    .map(|i| (i as u32, slopes[i] - s_ref[i]))
                    .unzip();
                if units.len() < self.h1 {
                    g.clear();
                    g.extend_from_slice(g_ref);
                    self.update_g(&mut g, &units, &delta);
                } else {
                    self.product_g_into(&slopes, &mut g);
                }
            }
            None => self.product_g_into(&slopes, &mut g),
        }
        st.g = g;
        st.slopes = slopes;
        // Bounds on the first-layer change of any candidate, so a unit whose sign cannot
        // change is skipped. With one increase `d0` for all candidates (binary features)
        // they are `d0` times the column extremes; otherwise the largest increase times
        // them. Rounding is monotone, so `z + lo > 0` proves `z + fl(d w) > 0` for all.
        let alive_d = || {
            st.d.iter()
                .zip(&st.alive)
                .filter(|(_, &al)| al)
                .map(|(&d, _)| d)
        };
        let d0 = alive_d().next().unwrap_or(0.0);
        let uniform = alive_d().all(|d| d == d0);
        let dmax = alive_d().fold(0.0f32, f32::max);
        if uniform {
            st.lo = self.col_min.iter().map(|&w| d0 * w).collect();
            st.hi = self.col_max.iter().map(|&w| d0 * w).collect();
        } else {
            st.lo = self.col_min.iter().map(|&w| dmax * w.min(0.0)).collect();
            st.hi = self.col_max.iter().map(|&w| dmax * w.max(0.0)).collect();
        }
    }

    /// Runs the layers above the first from `upper[start]` on `rows` rows of `input`
    /// (the activations entering that layer); writes one logit per row.
    fn run_upper(
        &self,
        start: usize,
        input: &[f32],
        rows: usize,
        ws_a: &mut Vec<f32>,
        ws_b: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        if self.upper.is_empty() {
            // No hidden layer: the first layer is the output.
            for r in 0..rows {
                out[r] = input[r * self.h1 + self.label];
            }
            return;
        }
        let layers = &self.upper[start..];
        for (k, layer) in layers.iter().enumerate() {
            ws_b.clear();
            for _ in 0..rows {
                ws_b.extend_from_slice(&layer.b);
            }
            let src: &[f32] = if k == 0 { input } else { ws_a };
            matmul(
                ws_b,
                &src[..rows * layer.n_in],
                Trans::N,
                &layer.w,
                Trans::N,
                rows,
                layer.n_in,
                layer.n_out,
                true,
            );
            activate(layer.act, ws_b, layer.n_out);
            std::mem::swap(ws_a, ws_b);
        }
        if layers.is_empty() {
            out[..rows].copy_from_slice(&input[..rows]);
        } else {
            out[..rows].copy_from_slice(&ws_a[..rows]);
        }
    }

    /// The logit of the current row.
    pub fn logit(&self, st: &TargetState, ws: &mut Workspace) -> f32 {
        let a1 = self.first_activations(&st.z1);
        let mut out = [0.0f32];
        self.run_upper(0, &a1, 1, &mut ws.a, &mut ws.b, &mut out);
        out[0] + st.skip
    }

    /// Scores addable entries `ids` (all candidates): `out[k]` is the logit after adding
    /// `ids[k]`, computed with the batched scorer.
    fn score_batched(&self, st: &TargetState, ids: &[u32], ws: &mut Workspace, out: &mut [f32]) {
        let h1 = self.h1;
        let act = self.act1;
        let mut h = std::mem::take(&mut ws.gather);
        for (block, o) in ids.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
            h.resize(block.len() * h1, 0.0);
            for (r, &a) in block.iter().enumerate() {
                let row = &mut h[r * h1..(r + 1) * h1];
                kernels::add_scaled(row, &st.z1, st.d[a as usize], self.w1_row(a as usize));
                activate(act, row, h1);
            }
            self.run_upper(0, &h, block.len(), &mut ws.a, &mut ws.b, o);
        }
        ws.gather = h;
    }

    /// Scores addable entries `ids` with the cached scorer (see the module documentation).
    /// Units whose sign may change for some candidate ("critical": `z + lo <= 0 < z` or
    /// `z <= 0 < z + hi`) get their correction `(slope(t) - s) t` for every candidate of a
    /// block in a small matrix `C [k x block]`, added to `z2` as one product `C^T W2[crit]`.
    fn score_cached(&self, st: &TargetState, ids: &[u32], ws: &mut Workspace, out: &mut [f32]) {
        let h1 = self.h1;
        let l2 = &self.upper[0];
        let h2 = l2.n_out;
        let a_n = self.addable.len();
        // z2 at the current row.
        let mut z2base = std::mem::take(&mut ws.z2base);
        z2base.clear();
        z2base.extend_from_slice(&l2.b);
        let a1 = self.first_activations(&st.z1);
        matmul(&mut z2base, &a1, Trans::N, &l2.w, Trans::N, 1, h1, h2, true);
        let mut crit = std::mem::take(&mut ws.changes);
        crit.clear();
        if self.act1 != Activation::Identity {
            for i in 0..h1 {
                let z = st.z1[i];
                let may_change = if z > 0.0 {
                    z + st.lo[i] <= 0.0
                } else {
                    z + st.hi[i] > 0.0
                };
                if may_change {
                    crit.push(i as u32);
                }
            }
        }
        let k = crit.len();
        let mut w2c = std::mem::take(&mut ws.b);
        w2c.clear();
        for &i in &crit {
            w2c.extend_from_slice(&l2.w[i as usize * h2..(i as usize + 1) * h2]);
        }
        let mut z2 = std::mem::take(&mut ws.gather);
        let mut c = std::mem::take(&mut ws.corr);
        let mut ws_a = std::mem::take(&mut ws.a);
        let mut ws_b = std::mem::take(&mut ws.z2tmp);
        for (block, o) in ids.chunks(CACHED_BLOCK).zip(out.chunks_mut(CACHED_BLOCK)) {
            let n = block.len();
            z2.resize(n * h2, 0.0);
            for (r, &a) in block.iter().enumerate() {
                let a = a as usize;
                kernels::add_scaled(
                    &mut z2[r * h2..(r + 1) * h2],
                    &z2base,
                    st.d[a],
                    &st.g[a * h2..(a + 1) * h2],
                );
            }
            if k > 0 {
                c.resize(k * n, 0.0);
                // A block of consecutive features reads slices; otherwise gather.
                let first = block[0] as usize;
                let contiguous = block[n - 1] as usize - first + 1 == n;
                let mut dg = std::mem::take(&mut ws.dgather);
                let mut wg = std::mem::take(&mut ws.wgather);
                if !contiguous {
                    dg.clear();
                    dg.extend(block.iter().map(|&a| st.d[a as usize]));
                }
                let alpha = low_slope(self.act1);
                for (ci, &i) in crit.iter().enumerate() {
                    let i = i as usize;
                    let col = &self.w1a_t[i * a_n..(i + 1) * a_n];
                    let (dv, wv): (&[f32], &[f32]) = if contiguous {
                        (&st.d[first..first + n], &col[first..first + n])
                    } else {
                        wg.clear();
                        wg.extend(block.iter().map(|&a| col[a as usize]));
                        (&dg, &wg)
                    };
                    kernels::kink_correction(
                        st.z1[i],
                        st.slopes[i],
                        alpha,
                        dv,
                        wv,
                        &mut c[ci * n..(ci + 1) * n],
                    );
                }
                ws.dgather = dg;
                ws.wgather = wg;
                matmul(&mut z2, &c, Trans::T, &w2c, Trans::N, n, k, h2, true);
            }
            // The second layer's activation, then the rest.
            activate(l2.act, &mut z2, h2);
            self.run_upper(1, &z2, n, &mut ws_a, &mut ws_b, o);
        }
        ws.z2base = z2base;
        ws.changes = crit;
        ws.b = w2c;
        ws.gather = z2;
        ws.corr = c;
        ws.a = ws_a;
        ws.z2tmp = ws_b;
    }

    /// Logits after adding each candidate: `(feature, logit)` for every addable feature
    /// still below its cap, in feature order. Exact (up to float rounding).
    pub fn candidate_logits(&self, st: &TargetState, ws: &mut Workspace) -> Vec<(usize, f32)> {
        let ids: Vec<u32> = (0..self.addable.len() as u32)
            .filter(|&a| st.alive[a as usize])
            .collect();
        let mut out = vec![0.0; ids.len()];
        self.score(st, &ids, ws, &mut out);
        ids.iter()
            .zip(out)
            .map(|(&a, s)| (self.addable[a as usize] as usize, s))
            .collect()
    }

    fn score(&self, st: &TargetState, ids: &[u32], ws: &mut Workspace, out: &mut [f32]) {
        if self.scoring == Scoring::Cached {
            self.score_cached(st, ids, ws, out)
        } else {
            self.score_batched(st, ids, ws, out)
        }
        if let Some(skip) = &self.skip_a {
            for (o, &a) in out.iter_mut().zip(ids) {
                *o += st.skip + st.d[a as usize] * skip[a as usize];
            }
        }
    }

    /// Adds addable entry `a` (sets it to its cap) and updates the target.
    fn add(&self, st: &mut TargetState, a: usize) {
        let d = st.d[a];
        let w = self.w1_row(a);
        kernels::axpy(&mut st.z1, d, w);
        if let Some(skip) = &self.skip_a {
            st.skip += d * skip[a];
        }
        st.x[a] = self.caps[a];
        st.d[a] = 0.0;
        st.alive[a] = false;
        st.n_alive -= 1;
        if self.scoring == Scoring::Cached {
            let (units, delta): (Vec<u32>, Vec<f32>) = (0..self.h1)
                .filter_map(|i| {
                    let s = slope(self.act1, st.z1[i]);
                    (s != st.slopes[i]).then_some((i as u32, s - st.slopes[i]))
                })
                .unzip();
            let mut g = std::mem::take(&mut st.g);
            self.update_g(&mut g, &units, &delta);
            st.g = g;
            for &u in &units {
                st.slopes[u as usize] = slope(self.act1, st.z1[u as usize]);
            }
        }
    }

    /// Gradient of the logit with respect to the first layer's pre-activation.
    fn grad_z1(&self, st: &TargetState) -> Vec<f32> {
        if self.upper.is_empty() {
            let mut g = vec![0.0; self.h1];
            g[self.label] = 1.0;
            return g;
        }
        // Forward, keeping pre-activations and activations.
        let mut zs: Vec<Vec<f32>> = vec![st.z1.clone()];
        let mut acts: Vec<Vec<f32>> = vec![self.first_activations(&st.z1)];
        for layer in &self.upper {
            let mut z = layer.b.clone();
            matmul(
                &mut z,
                acts.last().unwrap(),
                Trans::N,
                &layer.w,
                Trans::N,
                1,
                layer.n_in,
                layer.n_out,
                true,
            );
            acts.push(
                z.iter()
                    .enumerate()
                    .map(|(u, &v)| layer.act.apply(v, u))
                    .collect(),
            );
            zs.push(z);
        }
        // Backward.
        let last = zs.len() - 1;
        let mut delta: Vec<f32> =
            vec![self.upper[last - 1]
                .act
                .derivative(zs[last][0], acts[last][0], 0)];
        for l in (0..self.upper.len()).rev() {
            let layer = &self.upper[l];
            // d/d a_in = W delta
            let mut da = vec![0.0f32; layer.n_in];
            for (i, v) in da.iter_mut().enumerate() {
                let row = &layer.w[i * layer.n_out..(i + 1) * layer.n_out];
                *v = row.iter().zip(&delta).map(|(w, d)| w * d).sum();
            }
            // through the activation of the layer below (upper[l-1], or the first layer)
            let act = if l == 0 {
                self.act1
            } else {
                self.upper[l - 1].act
            };
            delta = da
                .iter()
                .zip(zs[l].iter().zip(&acts[l]))
                .enumerate()
                .map(|(u, (g, (&z, &a)))| g * act.derivative(z, a, u))
                .collect();
        }
        delta
    }

    /// Attacks one target with the configured method, up to the largest budget.
    pub fn run_target(&self, row: usize, values: RowRef, ws: &mut Workspace) -> TargetOutcome {
        let (method, max_budget, seed, queries_per_step) = (
            self.method,
            self.max_budget,
            self.seed,
            self.queries_per_step,
        );
        let mut st = self.start_with(values, std::mem::take(&mut ws.g));
        let initial = self.logit(&st, ws);
        let mut out = TargetOutcome {
            row,
            initial_logit: initial,
            final_logit: initial,
            evaded_at: None,
            added: Vec::new(),
            logits: Vec::new(),
            queries: Vec::new(),
        };
        if initial < self.threshold {
            out.evaded_at = Some(0);
            ws.g = st.g;
            return out;
        }
        let mut rng = Rng::new(seed ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut queries = 0u64;
        let mut ids = std::mem::take(&mut ws.ids);
        let mut scores = std::mem::take(&mut ws.scores);
        for step in 1..=max_budget {
            if st.n_alive == 0 {
                break;
            }
            let pick = match method {
                Method::Greedy if self.scoring == Scoring::Cached => {
                    // Score every addable entry (consecutive blocks read slices), then
                    // drop those that are not candidates.
                    ids.clear();
                    ids.extend(0..self.addable.len() as u32);
                    scores.resize(ids.len(), 0.0);
                    self.score(&st, &ids, ws, &mut scores);
                    for (s, &al) in scores.iter_mut().zip(&st.alive) {
                        if !al {
                            *s = f32::INFINITY;
                        }
                    }
                    queries += st.n_alive as u64;
                    let (pick, best) = argmin_with(&ids, &scores);
                    if !lowers(best, out.final_logit) {
                        // A local minimum: no single addition lowers the logit.
                        break;
                    }
                    pick
                }
                Method::Greedy | Method::Query => {
                    ids.clear();
                    ids.extend((0..self.addable.len() as u32).filter(|&a| st.alive[a as usize]));
                    if method == Method::Query && ids.len() > queries_per_step {
                        // A uniform sample without replacement (partial Fisher-Yates).
                        for k in 0..queries_per_step {
                            let j = k + rng.below((ids.len() - k) as u64) as usize;
                            ids.swap(k, j);
                        }
                        ids.truncate(queries_per_step);
                        ids.sort_unstable();
                    }
                    scores.resize(ids.len(), 0.0);
                    self.score(&st, &ids, ws, &mut scores);
                    queries += ids.len() as u64;
                    let (pick, best) = argmin_with(&ids, &scores);
                    if method == Method::Greedy && !lowers(best, out.final_logit) {
                        // A local minimum: no single addition lowers the logit.
                        break;
                    }
                    pick
                }
                Method::Gradient => {
                    let g = self.grad_z1(&st);
                    queries += 1;
                    let mut best = (f32::INFINITY, usize::MAX);
                    for a in 0..self.addable.len() {
                        if st.alive[a] {
                            let w = self.w1_row(a);
                            let through_skip = self.skip_a.as_ref().map_or(0.0, |s| s[a]);
                            let s = st.d[a]
                                * (w.iter().zip(&g).map(|(x, y)| x * y).sum::<f32>()
                                    + through_skip);
                            if s < best.0 || best.1 == usize::MAX {
                                best = (s, a);
                            }
                        }
                    }
                    best.1
                }
                Method::Random => {
                    queries += 1;
                    let k = rng.below(st.n_alive as u64) as usize;
                    (0..self.addable.len())
                        .filter(|&a| st.alive[a])
                        .nth(k)
                        .expect("k < alive")
                }
            };
            self.add(&mut st, pick);
            let logit = self.logit(&st, ws);
            out.added.push(self.addable[pick] as usize);
            out.logits.push(logit);
            out.queries.push(queries);
            out.final_logit = logit;
            if logit < self.threshold {
                out.evaded_at = Some(step);
                break;
            }
        }
        ws.ids = ids;
        ws.scores = scores;
        ws.g = st.g;
        out
    }

    /// Adds `a` to the target (for callers driving their own attack).
    pub fn add_feature(&self, st: &mut TargetState, feature: usize) -> Result<()> {
        let a = self
            .addable
            .binary_search(&(feature as u32))
            .map_err(|_| Error::invalid(format!("feature {feature} is not addable")))?;
        if !st.alive[a] {
            return Err(Error::invalid(format!(
                "feature {feature} is already at its cap"
            )));
        }
        self.add(st, a);
        Ok(())
    }

    /// The attacked label's threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }
}

/// Whether a candidate's logit is really below the current one: incremental scoring sums
/// in another order than a full pass, so differences within float round-off are noise.
fn lowers(candidate: f32, current: f32) -> bool {
    candidate < current - 1e-5 * (1.0 + current.abs())
}

/// The lowest score and its id; ties go to the first (lowest feature index).
fn argmin_with(ids: &[u32], scores: &[f32]) -> (usize, f32) {
    let mut best = 0;
    for k in 1..scores.len() {
        if scores[k] < scores[best] {
            best = k;
        }
    }
    (ids[best] as usize, scores[best])
}

/// Rows that are positive for `label` and that the model detects (logit >= threshold),
/// in row order, with their logits. Also returns the number of positives.
pub fn find_targets(model: &Model, data: &Dataset, label: usize) -> Result<(Vec<usize>, usize)> {
    let y = data
        .y
        .as_ref()
        .ok_or_else(|| Error::invalid("attacks need labelled data"))?;
    let l = model.mlp.n_labels();
    if label >= l || label >= data.n_labels {
        return Err(Error::invalid(format!(
            "--label {label}: the model has {l} label(s)"
        )));
    }
    let logits = model.logits(&data.x);
    let thr = model.threshold[label];
    let mut positives = 0;
    let mut targets = Vec::new();
    for r in 0..data.rows() {
        if y[r * data.n_labels + label] == 1.0 {
            positives += 1;
            if logits[r * l + label] >= thr {
                targets.push(r);
            }
        }
    }
    Ok((targets, positives))
}

/// Attacks the detected positives of `cfg.label` in `data`.
pub fn attack(model: &Model, data: &Dataset, cfg: &AttackConfig) -> Result<AttackReport> {
    let t0 = std::time::Instant::now();
    if cfg.budgets.is_empty() || cfg.budgets.contains(&0) {
        return Err(Error::invalid("budgets must be positive"));
    }
    if cfg.method == Method::Query && cfg.queries_per_step == 0 {
        return Err(Error::invalid("--queries-per-step must be at least 1"));
    }
    if data.x.cols() != model.mlp.input_dim {
        return Err(Error::Mismatch(format!(
            "the data has {} features, the model expects {}",
            data.x.cols(),
            model.mlp.input_dim
        )));
    }
    let (mut targets, positives) = find_targets(model, data, cfg.label)?;
    let detected = targets.len();
    if let Some(n) = cfg.limit {
        targets.truncate(n);
    }
    let (outcomes, scoring, addable) = attack_rows(model, data, cfg, &targets)?;
    let mut budgets = cfg.budgets.clone();
    budgets.sort_unstable();
    budgets.dedup();
    Ok(AttackReport {
        method: cfg.method,
        label: cfg.label,
        positives,
        detected,
        addable,
        scoring: scoring.name(),
        results: summarize(&outcomes, &budgets),
        outcomes,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Attacks the given rows (each should be a detected positive; one that is not is
/// reported as evaded at step 0) up to the largest budget, in parallel. Returns the
/// outcomes in row order, the scorer used and the number of addable features.
pub fn attack_rows(
    model: &Model,
    data: &Dataset,
    cfg: &AttackConfig,
    rows: &[usize],
) -> Result<(Vec<TargetOutcome>, Scoring, usize)> {
    let mut attacker = Attacker::new(model, cfg, data.x.is_sparse())?;
    if attacker.scoring() == Scoring::Cached && rows.len() > 1 {
        let z1s: Vec<Vec<f32>> = rows
            .par_iter()
            .map(|&r| attacker.start_z1(RowRef::of(&data.x, r)))
            .collect();
        attacker.set_reference(&z1s);
    }
    let outcomes: Vec<TargetOutcome> = rows
        .par_iter()
        .with_max_len(1)
        .map_init(Workspace::default, |ws, &r| {
            attacker.run_target(r, RowRef::of(&data.x, r), ws)
        })
        .collect();
    Ok((outcomes, attacker.scoring(), attacker.addable()))
}

impl Attacker<'_> {
    /// The first layer's activations for its pre-activations `z1`.
    fn first_activations(&self, z1: &[f32]) -> Vec<f32> {
        let mut a = vec![0.0; z1.len()];
        self.act1.apply_row(z1, &mut a);
        a
    }

    /// The skip connection's contribution to the attacked logit at a row (0 without one).
    fn start_skip(&self, row: RowRef) -> f32 {
        let Some(skip) = &self.model.mlp.skip else {
            return 0.0;
        };
        let w = |j: usize| skip.weight[j * skip.n_out + self.label];
        match row {
            RowRef::Dense(vals) => vals
                .iter()
                .enumerate()
                .map(|(j, &v)| self.scaled(j, v) * w(j))
                .sum(),
            RowRef::Sparse(idx, vals) => idx
                .iter()
                .zip(vals)
                .map(|(&j, &v)| self.scaled(j as usize, v) * w(j as usize))
                .sum(),
        }
    }

    /// The first layer's pre-activation of a row (no cache built).
    fn start_z1(&self, row: RowRef) -> Vec<f32> {
        let first = &self.model.mlp.layers[0];
        let mut z1 = first.bias.clone();
        match row {
            RowRef::Dense(vals) => {
                let scaled: Vec<f32> = vals
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| self.scaled(j, v))
                    .collect();
                matmul(
                    &mut z1,
                    &scaled,
                    Trans::N,
                    &first.weight,
                    Trans::N,
                    1,
                    first.n_in,
                    self.h1,
                    true,
                );
            }
            RowRef::Sparse(idx, vals) => {
                for (&j, &v) in idx.iter().zip(vals) {
                    let s = self.scaled(j as usize, v);
                    let w = &first.weight[j as usize * self.h1..(j as usize + 1) * self.h1];
                    if s == 1.0 {
                        kernels::add_assign(&mut z1, w);
                    } else {
                        kernels::axpy(&mut z1, s, w);
                    }
                }
            }
        }
        z1
    }
}
