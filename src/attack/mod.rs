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
//!
//! Layout: this file holds the configuration, the outcome types and the entry points;
//! `scorer` prepares the model ([`Attacker`]) and scores candidates (`cached` the
//! incremental scorer, `full_pass` one row's full forward and gradient), `search` holds
//! one function per method, [`raw`] the good-words attack on raw emails, [`report`] the
//! text, JSON, CSV and PNG outputs.

mod cached;
mod full_pass;
pub mod raw;
pub mod report;
mod scorer;
mod search;
pub mod threat;

pub use report::{csv_text, plot_curves, report_json, write_json};
pub use scorer::{Attacker, TargetState, Workspace};

use crate::data::{Dataset, Features};
use crate::error::{Error, Result};
use crate::model::Model;
use rayon::prelude::*;
use serde::Serialize;

/// How the attacker picks the feature to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Greedy,
    Gradient,
    Query,
    Random,
}

impl Method {
    /// The name in outputs (the same as on the command line).
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
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Scoring {
    /// Cached for greedy when the first activation is piecewise linear and memory allows,
    /// batched otherwise.
    #[default]
    Auto,
    Batched,
    Cached,
}

impl Scoring {
    /// The name in outputs (the same as on the command line).
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

impl TargetOutcome {
    /// A target before its first addition, at logit `initial`.
    pub fn start(row: usize, initial: f32) -> Self {
        TargetOutcome {
            row,
            initial_logit: initial,
            final_logit: initial,
            evaded_at: None,
            added: Vec::new(),
            logits: Vec::new(),
            queries: Vec::new(),
        }
    }
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
    /// The scorer used (`batched` or `cached`; `proof` when [`Self::proof`] is set).
    pub scoring: &'static str,
    /// Set when the weights prove that no addition of the addable features can lower the
    /// logit ([`crate::certify::certify`] for those features): the attack is not run and
    /// no target is evaded, at any budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
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
                    "the `budget` option: `{p}` is not a positive whole number (expected e.g. 1,5,10,20,50)"
                )))
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
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

/// Rows that are positive for `label` and that the model detects (logit >= threshold),
/// in row order, and the number of positives.
pub fn find_targets(model: &Model, data: &Dataset, label: usize) -> Result<(Vec<usize>, usize)> {
    detected_positives(model, data, label).map(|(targets, positives, _)| (targets, positives))
}

/// [`find_targets`] and the logits `[rows x labels]` it read them from.
fn detected_positives(
    model: &Model,
    data: &Dataset,
    label: usize,
) -> Result<(Vec<usize>, usize, Vec<f32>)> {
    let y = data
        .y
        .as_ref()
        .ok_or_else(|| Error::invalid("attacks need labelled data"))?;
    let l = model.mlp.n_labels();
    if label >= l {
        return Err(Error::invalid(format!(
            "label {label} is out of range: the model has {l} label(s)"
        )));
    }
    if label >= data.n_labels {
        return Err(Error::invalid(format!(
            "label {label} is out of range: the data has {} label(s)",
            data.n_labels
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
    Ok((targets, positives, logits))
}

/// Attacks the detected positives of `cfg.label` in `data`.
pub fn attack(model: &Model, data: &Dataset, cfg: &AttackConfig) -> Result<AttackReport> {
    let t0 = std::time::Instant::now();
    if cfg.budgets.is_empty() || cfg.budgets.contains(&0) {
        return Err(Error::invalid("budgets must be positive"));
    }
    if cfg.method == Method::Query && cfg.queries_per_step == 0 {
        return Err(Error::invalid(
            "the query attack needs at least 1 query per step, got 0",
        ));
    }
    if data.x.cols() != model.mlp.input_dim {
        return Err(Error::Mismatch(format!(
            "the data has {} features, the model expects {}",
            data.x.cols(),
            model.mlp.input_dim
        )));
    }
    let (mut targets, positives, logits) = detected_positives(model, data, cfg.label)?;
    let detected = targets.len();
    if let Some(n) = cfg.limit {
        targets.truncate(n);
    }
    let proof = proof_of_robustness(model, cfg)?;
    let (outcomes, scoring, addable) = match &proof {
        // Searching a proven model only confirms the proof, at full cost (seconds to
        // minutes on large vocabularies): report its targets as not evaded at once.
        Some((_, addable)) => (
            unattacked(&logits, model.mlp.n_labels(), &targets, cfg.label),
            "proof",
            *addable,
        ),
        None => {
            let (o, s, a) = attack_rows(model, data, cfg, &targets)?;
            (o, s.name(), a)
        }
    };
    let mut budgets = cfg.budgets.clone();
    budgets.sort_unstable();
    budgets.dedup();
    Ok(AttackReport {
        method: cfg.method,
        label: cfg.label,
        positives,
        detected,
        addable,
        scoring,
        proof: proof.map(|(p, _)| p),
        results: summarize(&outcomes, &budgets),
        outcomes,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// When the weights prove that no addition the attacker may make can lower the logit of
/// `cfg.label`, the proof (one sentence) and the number of addable features.
fn proof_of_robustness(model: &Model, cfg: &AttackConfig) -> Result<Option<(String, usize)>> {
    let addable = threat::addable_features(model, cfg.addable.as_deref())?;
    let declared: Vec<usize> = addable.iter().map(|&j| j as usize).collect();
    let cert = crate::certify::certify(model, Some(&declared));
    // Directions: a first-layer row the model declares NonPos is not addable, so the
    // certificate over the addable rows is the whole claim.
    Ok(cert.certified.then(|| {
        (
            format!(
                "the weights prove that adding any of the {} addable features cannot lower the logit (certify)",
                declared.len()
            ),
            declared.len(),
        )
    }))
}

/// The targets' outcomes when no addition can lower their logits: nothing added, not
/// evaded; `logits` are every row's `[rows x labels]`.
fn unattacked(logits: &[f32], labels: usize, rows: &[usize], label: usize) -> Vec<TargetOutcome> {
    rows.iter()
        .map(|&r| TargetOutcome::start(r, logits[r * labels + label]))
        .collect()
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
