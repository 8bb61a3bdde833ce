//! Budget certificates: for each sample, a sound lower bound on the attacked label's logit
//! after ANY set of at most `k` additions, and the share of positives still detected under
//! every such attack (certified detection) at a threshold.
//!
//! **Threat model** ([`threat`]): `attack`'s. Only addable features are raised (all by
//! default, except those the model declares as lowered by additions: NonPos first-layer
//! rows); feature `j` goes at most up to its cap, which moves the network's scaled input
//! by `delta_j in [0, d_j]`, `d_j = s(cap_j) - s(x_j)` (every scaling is increasing). An
//! attack with budget `k` raises at most `k` features.
//!
//! **Bounds.** With `z_0 = x W_1 + b_1` the first layer's pre-activation:
//! - *Exact first layer* ([`columns`]): each unit's (and the skip connection's) change is
//!   `sum_j delta_j W_1[j, i]`, whose minimum (maximum) under the budget is the sum of the
//!   `k` most negative (positive) `d_j W_1[j, i]`: the extremes of a linear function over
//!   a box with at most `k` non-zero coordinates sit at vertices with the `k` best
//!   coordinates moved to their bound. Without hidden layers the logit itself is this
//!   linear function (skip included), so the bound is the exact minimum.
//! - *IBP*: those intervals propagated through the upper layers (every activation is
//!   non-decreasing, so a unit's output interval is the activation of its input's ends;
//!   an affine layer takes each weight's worst end). The skip connection's own exact
//!   minimum is added: a sum of lower bounds is a lower bound of the sum.
//! - *CROWN* ([`relax`]): sound linear lower/upper bounds on every activation over its
//!   pre-activation interval, back-substituted from the logit to a linear function
//!   `c + sum_j g_j delta_j` that is below the logit for every input within the bounds;
//!   its exact minimum under the budget is the sum of the `k` most negative `g_j d_j`.
//!   Intermediate intervals come from IBP, intersected with CROWN's own where affordable
//!   ([`Intermediate`]).
//!
//! A sample's bound is `min(clean, max(IBP, CROWN))` (the empty attack is always allowed).
//! A model whose weights certify that no addable feature lowers the logit
//! ([`crate::certify::certify`]) keeps its clean logit at every budget. The arithmetic is
//! f64 on f32 weights; the network itself rounds in f32, so the bounds hold up to that
//! rounding (about 1e-6 relative), with smooth activations widened to cover it.

mod bound;
mod columns;
mod relax;
mod threat;

pub use bound::BudgetCertifier;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::metrics::threshold_for_fpr;
use crate::model::Model;
use serde::{Serialize, Serializer};
use std::fmt;

/// How many features an attacker may add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Budget {
    Finite(usize),
    Unbounded,
}

impl Budget {
    /// `Some(k)` for a finite budget.
    pub fn finite(self) -> Option<usize> {
        match self {
            Budget::Finite(k) => Some(k),
            Budget::Unbounded => None,
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Budget::Finite(k) => write!(f, "{k}"),
            Budget::Unbounded => f.write_str("inf"),
        }
    }
}

impl Serialize for Budget {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Budget::Finite(k) => s.serialize_u64(*k as u64),
            Budget::Unbounded => s.serialize_str("inf"),
        }
    }
}

/// Parses budgets such as `5,20,50,inf`: sorted, duplicates dropped.
pub fn parse_budgets(s: &str) -> Result<Vec<Budget>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        out.push(match part {
            "inf" | "unbounded" => Budget::Unbounded,
            p => Budget::Finite(p.parse().map_err(|_| {
                Error::invalid(format!(
                    "a budget is a non-negative integer or inf, got '{p}'"
                ))
            })?),
        });
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// How intermediate layers' pre-activation intervals are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Intermediate {
    /// IBP always (cheap).
    Ibp,
    /// IBP intersected with CROWN (one back-substitution per unit and budget).
    Crown,
    /// CROWN when its products to the input are small (tabular data), else IBP.
    #[default]
    Auto,
}

/// What to certify.
#[derive(Clone, Debug)]
pub struct BudgetConfig {
    pub budgets: Vec<Budget>,
    /// Features the attacker may add (0-based); `None`: all but those the model declares
    /// as lowered by additions (NonPos first-layer rows).
    pub addable: Option<Vec<usize>>,
    /// Cap for every feature; `None`: the model's `feature_max`.
    pub max_value: Option<f32>,
    /// The label whose logit is bounded.
    pub label: usize,
    pub intermediate: Intermediate,
}

impl BudgetConfig {
    pub fn new(budgets: Vec<Budget>) -> Self {
        BudgetConfig {
            budgets,
            addable: None,
            max_value: None,
            label: 0,
            intermediate: Intermediate::Auto,
        }
    }
}

/// One sample's lower bounds, per budget (in the configuration's order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleBounds {
    pub row: usize,
    pub clean: f32,
    /// `min(clean, max(ibp, crown))`.
    pub bound: Vec<f32>,
    pub ibp: Vec<f32>,
    pub crown: Vec<f32>,
}

/// Certified detection at one budget: positives whose bound is at or above the threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetRate {
    pub budget: Budget,
    pub certified: usize,
    pub rate: f64,
    pub ibp_rate: f64,
    pub crown_rate: f64,
}

/// Budget certificates for the positives of one label.
#[derive(Clone, Debug, Serialize)]
pub struct BudgetReport {
    pub label: usize,
    pub threshold: f32,
    pub positives: usize,
    /// Positives detected without an attack, and their share.
    pub detected: usize,
    pub clean_rate: f64,
    pub addable: usize,
    /// The weights prove no addition lowers the logit: every bound is the clean logit.
    pub monotone: bool,
    pub crown_intermediate: bool,
    pub rates: Vec<BudgetRate>,
    #[serde(skip)]
    pub samples: Vec<SampleBounds>,
    pub seconds: f64,
}

/// The logit threshold with at most `fpr` false positives on the clean negatives of
/// `label` in `data`.
pub fn threshold_at_fpr(model: &Model, data: &Dataset, label: usize, fpr: f64) -> Result<f32> {
    if !(0.0..=1.0).contains(&fpr) {
        return Err(Error::invalid(format!(
            "a false positive rate is between 0 and 1, got {fpr}"
        )));
    }
    let (y, labels) = labels_of(model, data, label)?;
    let logits = model.logits(&data.x);
    let scores: Vec<f32> = (0..data.rows())
        .map(|r| logits[r * labels + label])
        .collect();
    threshold_for_fpr(&scores, &y, fpr)
        .ok_or_else(|| Error::invalid("the data has no negatives to set a threshold on"))
}

/// Label column `label` of `data`, and the model's number of labels.
fn labels_of(model: &Model, data: &Dataset, label: usize) -> Result<(Vec<f32>, usize)> {
    let y = data
        .y
        .as_ref()
        .ok_or_else(|| Error::invalid("budget certificates need labelled data"))?;
    let labels = model.mlp.n_labels();
    if label >= labels || label >= data.n_labels {
        return Err(Error::invalid(format!(
            "label {label} is out of range: the model has {labels} label(s)"
        )));
    }
    let col = (0..data.rows())
        .map(|r| y[r * data.n_labels + label])
        .collect();
    Ok((col, labels))
}

/// Bounds every positive of `cfg.label` in `data` and reports certified detection at
/// `threshold` (a sample counts when its bound is `>= threshold`, as the model decides).
pub fn certify_budgets(
    model: &Model,
    data: &Dataset,
    cfg: &BudgetConfig,
    threshold: f32,
) -> Result<BudgetReport> {
    let t0 = std::time::Instant::now();
    let (y, _) = labels_of(model, data, cfg.label)?;
    let rows: Vec<usize> = (0..data.rows()).filter(|&r| y[r] == 1.0).collect();
    let certifier = BudgetCertifier::new(model, cfg, data.x.is_sparse())?;
    let samples = certifier.bounds(&data.x, &rows)?;
    let n = rows.len();
    let share = |c: usize| if n == 0 { 0.0 } else { c as f64 / n as f64 };
    let count =
        |f: &dyn Fn(&SampleBounds) -> f32| samples.iter().filter(|s| f(s) >= threshold).count();
    let detected = count(&|s| s.clean);
    let rates = cfg
        .budgets
        .iter()
        .enumerate()
        .map(|(b, &budget)| {
            let certified = count(&|s| s.bound[b]);
            BudgetRate {
                budget,
                certified,
                rate: share(certified),
                ibp_rate: share(count(&|s| s.ibp[b])),
                crown_rate: share(count(&|s| s.crown[b])),
            }
        })
        .collect();
    Ok(BudgetReport {
        label: cfg.label,
        threshold,
        positives: n,
        detected,
        clean_rate: share(detected),
        addable: certifier.addable(),
        monotone: certifier.monotone(),
        crown_intermediate: certifier.crown_intermediate(),
        rates,
        samples,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

impl BudgetReport {
    /// One line per sample: `row,clean,bound_<k>...,ibp_<k>...,crown_<k>...`.
    pub fn csv_text(&self) -> String {
        let names = |p: &str| -> Vec<String> {
            self.rates
                .iter()
                .map(|r| format!("{p}_{}", r.budget))
                .collect()
        };
        let mut head = vec!["row".to_string(), "clean".to_string()];
        for p in ["bound", "ibp", "crown"] {
            head.extend(names(p));
        }
        let mut out = head.join(",") + "\n";
        for s in &self.samples {
            let mut cells = vec![s.row.to_string(), s.clean.to_string()];
            for v in [&s.bound, &s.ibp, &s.crown] {
                cells.extend(v.iter().map(|x| x.to_string()));
            }
            out += &(cells.join(",") + "\n");
        }
        out
    }
}

impl fmt::Display for BudgetReport {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(
            f,
            "label {}: {} positives, threshold {}, clean detection {:.1}% ({} addable features{})",
            self.label,
            self.positives,
            self.threshold,
            100.0 * self.clean_rate,
            self.addable,
            if self.monotone {
                ", monotone: certified at every budget"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "{:>8} {:>10} {:>8} {:>8}",
            "budget", "certified", "IBP", "CROWN"
        )?;
        for r in &self.rates {
            writeln!(
                f,
                "{:>8} {:>9.1}% {:>7.1}% {:>7.1}%",
                r.budget.to_string(),
                100.0 * r.rate,
                100.0 * r.ibp_rate,
                100.0 * r.crown_rate
            )?;
        }
        Ok(())
    }
}
