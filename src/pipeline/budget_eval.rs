//! Detection under attack budgets, as `eval --budget` reports it: per label and per false
//! positive rate (threshold on the clean negatives), the clean TPR, the certified TPR at
//! each budget (budget certificates) and the empirical TPR after the greedy attack at each
//! finite budget. Certified <= empirical <= clean: a certified positive is detected after
//! any attack, and the attack starts from the detected positives.

use crate::attack::{attack_rows, AttackConfig, Method, TargetOutcome};
use crate::certify::budget::{
    certify_budgets, threshold_at_fpr, Budget, BudgetConfig, SampleBounds,
};
use crate::data::Dataset;
use crate::error::Result;
use crate::model::Model;
use serde::Serialize;

/// The false positive rates reported.
pub const FPRS: [f64; 2] = [0.01, 0.001];

/// Detection at one budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetPoint {
    pub budget: Budget,
    /// Share of positives whose certified bound reaches the threshold.
    pub certified: f64,
    /// Share of ALL positives still detected after the greedy attack (`None` at `inf`).
    pub empirical: Option<f64>,
}

/// One label at one false positive rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetDetection {
    pub label: usize,
    pub fpr: f64,
    pub threshold: f32,
    pub positives: usize,
    pub clean: f64,
    pub points: Vec<BudgetPoint>,
}

/// Clean, certified and attacked detection of every label of `data` at each of [`FPRS`]
/// (the attack on every detected positive: an independent check of the certificates).
pub fn budget_detection(
    model: &Model,
    data: &Dataset,
    budgets: &[Budget],
) -> Result<Vec<BudgetDetection>> {
    budget_detection_with(model, data, budgets, false)
}

/// [`budget_detection`]; with `skip_certified` the attack leaves out the positives
/// certified at the largest finite budget (certified at every smaller one too): their
/// certificate proves no attack within the budget evades them (tested against the
/// attacks, tests/budget_vs_attacks.rs), so the attacked share is the same, faster
/// (the demo's choice: a monotone model is not attacked at all).
pub fn budget_detection_with(
    model: &Model,
    data: &Dataset,
    budgets: &[Budget],
    skip_certified: bool,
) -> Result<Vec<BudgetDetection>> {
    let mut out = Vec::new();
    for label in 0..model.mlp.n_labels() {
        out.extend(one_label(model, data, budgets, label, skip_certified)?);
    }
    Ok(out)
}

/// Every false positive rate of one label. The bounds do not depend on the threshold,
/// and neither does the greedy attack's path (it stops once below the threshold), so both
/// run once: the attack at the lowest threshold, each higher threshold reading the first
/// step of the path that falls below it.
fn one_label(
    model: &Model,
    data: &Dataset,
    budgets: &[Budget],
    label: usize,
    skip_certified: bool,
) -> Result<Vec<BudgetDetection>> {
    let thresholds = FPRS
        .iter()
        .map(|&f| threshold_at_fpr(model, data, label, f))
        .collect::<Result<Vec<f32>>>()?;
    let lowest = thresholds.iter().copied().fold(f32::INFINITY, f32::min);
    let cfg = BudgetConfig {
        label,
        ..BudgetConfig::new(budgets.to_vec())
    };
    let samples = certify_budgets(model, data, &cfg, lowest)?.samples;
    let top = (0..budgets.len()).max_by_key(|&b| budgets[b].finite().map(|k| (1, k)));
    // A positive is a target at threshold `t` when detected there (and, with
    // `skip_certified`, not certified at the largest finite budget).
    let target = |s: &SampleBounds, t: f32| {
        s.clean >= t && !(skip_certified && top.is_some_and(|b| s.bound[b] >= t))
    };
    let rows: Vec<usize> = samples
        .iter()
        .filter(|s| thresholds.iter().any(|&t| target(s, t)))
        .map(|s| s.row)
        .collect();
    let outcomes = greedy_paths(model, data, label, lowest, budgets, &rows)?;
    let n = samples.len();
    Ok(FPRS
        .iter()
        .zip(&thresholds)
        .map(|(&fpr, &t)| {
            let detected = samples.iter().filter(|s| s.clean >= t).count();
            // Steps until the path first falls below `t`, for this threshold's targets.
            let evaded_at: Vec<Option<usize>> = outcomes
                .iter()
                .zip(
                    samples
                        .iter()
                        .filter(|s| thresholds.iter().any(|&u| target(s, u))),
                )
                .filter(|(_, s)| target(s, t))
                .map(|(o, _)| o.logits.iter().position(|&l| l < t).map(|i| i + 1))
                .collect();
            let points = points_at(budgets, &samples, t, detected, &evaded_at);
            BudgetDetection {
                label,
                fpr,
                threshold: t,
                positives: n,
                clean: share(detected, n),
                points,
            }
        })
        .collect())
}

/// The greedy attack's logit path on each of `rows`, at the lowest threshold and up to
/// the largest finite budget (none without a finite budget or a target).
fn greedy_paths(
    model: &Model,
    data: &Dataset,
    label: usize,
    lowest: f32,
    budgets: &[Budget],
    rows: &[usize],
) -> Result<Vec<TargetOutcome>> {
    let attack_budgets: Vec<usize> = budgets
        .iter()
        .filter_map(|b| b.finite())
        .filter(|&k| k > 0)
        .collect();
    if attack_budgets.is_empty() || rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut at = model.clone();
    at.threshold[label] = lowest;
    let acfg = AttackConfig {
        label,
        ..AttackConfig::new(Method::Greedy, attack_budgets)
    };
    Ok(attack_rows(&at, data, &acfg, rows)?.0)
}

/// Certified and attacked shares at threshold `t`: `detected` positives clean, and for
/// each attacked one the step at which its path first fell below `t`.
fn points_at(
    budgets: &[Budget],
    samples: &[SampleBounds],
    t: f32,
    detected: usize,
    evaded_at: &[Option<usize>],
) -> Vec<BudgetPoint> {
    let n = samples.len();
    budgets
        .iter()
        .enumerate()
        .map(|(b, &budget)| BudgetPoint {
            budget,
            certified: share(samples.iter().filter(|s| s.bound[b] >= t).count(), n),
            empirical: match budget {
                Budget::Unbounded => None,
                Budget::Finite(k) => {
                    let evaded = evaded_at.iter().filter(|e| e.is_some_and(|s| s <= k));
                    Some(share(detected - evaded.count(), n))
                }
            },
        })
        .collect()
}

fn share(count: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        count as f64 / of as f64
    }
}
