//! Detection under attack budgets, as `eval --budget` reports it: per label and per false
//! positive rate (threshold on the clean negatives), the clean TPR, the certified TPR at
//! each budget (budget certificates) and the empirical TPR after the greedy attack at each
//! finite budget. Certified <= empirical <= clean: a certified positive is detected after
//! any attack, and the attack starts from the detected positives.

use crate::attack::{attack_rows, AttackConfig, Method};
use crate::certify::budget::{certify_budgets, threshold_at_fpr, Budget, BudgetConfig};
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
        for fpr in FPRS {
            out.push(one(model, data, budgets, label, fpr, skip_certified)?);
        }
    }
    Ok(out)
}

fn one(
    model: &Model,
    data: &Dataset,
    budgets: &[Budget],
    label: usize,
    fpr: f64,
    skip_certified: bool,
) -> Result<BudgetDetection> {
    let threshold = threshold_at_fpr(model, data, label, fpr)?;
    let cfg = BudgetConfig {
        label,
        ..BudgetConfig::new(budgets.to_vec())
    };
    let cert = certify_budgets(model, data, &cfg, threshold)?;
    let attack_budgets: Vec<usize> = budgets
        .iter()
        .filter_map(|b| b.finite())
        .filter(|&k| k > 0)
        .collect();
    let top = (0..budgets.len()).max_by_key(|&b| budgets[b].finite().map(|k| (1, k)));
    // The attack's targets: the positives detected at this threshold (less the certified).
    let targets: Vec<usize> = cert
        .samples
        .iter()
        .filter(|s| s.clean >= threshold)
        .filter(|s| !skip_certified || top.is_none_or(|b| s.bound[b] < threshold))
        .map(|s| s.row)
        .collect();
    let outcomes = if attack_budgets.is_empty() || targets.is_empty() {
        Vec::new()
    } else {
        let mut at = model.clone();
        at.threshold[label] = threshold;
        let acfg = AttackConfig {
            label,
            ..AttackConfig::new(Method::Greedy, attack_budgets)
        };
        attack_rows(&at, data, &acfg, &targets)?.0
    };
    let n = cert.positives;
    let share = |c: usize| if n == 0 { 0.0 } else { c as f64 / n as f64 };
    let evaded = |k: usize| {
        outcomes
            .iter()
            .filter(|o| o.evaded_at.is_some_and(|s| s <= k))
            .count()
    };
    let points = budgets
        .iter()
        .zip(&cert.rates)
        .map(|(&budget, rate)| BudgetPoint {
            budget,
            certified: rate.rate,
            empirical: match budget {
                Budget::Unbounded => None,
                Budget::Finite(0) => Some(cert.clean_rate),
                Budget::Finite(k) => Some(share(cert.detected - evaded(k))),
            },
        })
        .collect();
    Ok(BudgetDetection {
        label,
        fpr,
        threshold,
        positives: n,
        clean: cert.clean_rate,
        points,
    })
}
