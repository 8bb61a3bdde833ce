//! The attacks' outputs, apart from the algorithms: per-budget results as text tables,
//! JSON and CSV, and the evasion-rate chart.

use super::raw::GoodWordsReport;
use super::{AttackReport, BudgetResult, TargetOutcome};
use crate::error::{Error, Result};
use crate::plot::{self, Chart, Series};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Names of the models on the chart and in the outputs: the file stems, or the paths
/// when stems repeat.
pub fn display_names(paths: &[PathBuf]) -> Vec<String> {
    let stems: Vec<String> = paths
        .iter()
        .map(|p| {
            p.file_stem()
                .map_or_else(|| p.display().to_string(), |s| s.to_string_lossy().into())
        })
        .collect();
    let unique = stems
        .iter()
        .enumerate()
        .all(|(i, s)| !stems[..i].contains(s));
    if unique {
        stems
    } else {
        paths.iter().map(|p| p.display().to_string()).collect()
    }
}

/// The per-budget results of one model as a text table, under a one-line summary.
pub fn table(name: &str, r: &AttackReport) -> String {
    let mut head = format!(
        "{name}: {} attack on label {}: {} targets ({} of {} positives detected), {} addable features\n",
        r.method.name(),
        r.label,
        r.outcomes.len(),
        r.detected,
        r.positives,
        r.addable
    );
    if let Some(p) = &r.proof {
        head.push_str(&format!("0 evaded by proof, not searched: {p}\n"));
    }
    results_table(head, &r.results)
}

/// [`table`] for the good-words attack.
pub fn good_words_table(name: &str, r: &GoodWordsReport) -> String {
    let head = format!(
        "{name}: good-words ({}) attack on label {}: {} targets ({} of {} samples detected), {} candidate words, {} failed placements\n",
        r.source.name(),
        r.label,
        r.outcomes.len(),
        r.detected,
        r.positives,
        r.words,
        r.failed_steps
    );
    results_table(head, &r.results)
}

fn results_table(mut s: String, results: &[BudgetResult]) -> String {
    s.push_str(&format!(
        "{:>7} {:>8} {:>7} {:>9} {:>11} {:>12} {:>13}\n",
        "budget", "targets", "evaded", "evasion", "mean_added", "queries", "mean_queries"
    ));
    for b in results {
        s.push_str(&format!(
            "{:>7} {:>8} {:>7} {:>9.4} {:>11} {:>12} {:>13.1}\n",
            b.budget,
            b.targets,
            b.evaded,
            b.evasion_rate,
            b.mean_added.map_or("-".into(), |v| format!("{v:.2}")),
            b.queries,
            b.mean_queries
        ));
    }
    s
}

/// One model's attack as the outputs write it.
#[derive(Clone, Debug)]
pub struct Run {
    /// The model file.
    pub model: String,
    pub results: Vec<BudgetResult>,
    /// Per target: row (and sample name), logits, the step it was evaded at and what was
    /// added, by name ([`feature_targets`], [`word_targets`]).
    pub targets: Vec<Value>,
    /// Why nothing was searched ([`AttackReport::proof`]).
    pub proof: Option<String>,
}

impl Run {
    /// A feature-addition attack's run; features are named by the model when it can.
    pub fn of_features(model: String, report: &AttackReport, names: Option<&[String]>) -> Self {
        Run {
            model,
            results: report.results.clone(),
            targets: feature_targets(report, names),
            proof: report.proof.clone(),
        }
    }

    /// A good-words attack's run.
    pub fn of_words(model: String, report: &GoodWordsReport) -> Self {
        Run {
            model,
            results: report.results.clone(),
            targets: word_targets(report),
            proof: None,
        }
    }
}

fn target_json(o: &TargetOutcome, added: Vec<String>) -> Value {
    json!({
        "row": o.row,
        "initial_logit": o.initial_logit,
        "final_logit": o.final_logit,
        "evaded_at": o.evaded_at,
        "added": added,
    })
}

/// Each target with the features added, in order (named `f{j}` when the model has no names).
pub fn feature_targets(report: &AttackReport, names: Option<&[String]>) -> Vec<Value> {
    let name = |j: usize| {
        names
            .and_then(|n| n.get(j))
            .cloned()
            .unwrap_or_else(|| format!("f{j}"))
    };
    report
        .outcomes
        .iter()
        .map(|o| target_json(o, o.added.iter().map(|&j| name(j)).collect()))
        .collect()
}

/// Each target (with its sample name) and the words appended, in order.
pub fn word_targets(report: &GoodWordsReport) -> Vec<Value> {
    report
        .outcomes
        .iter()
        .map(|g| {
            let mut v = target_json(&g.outcome, g.words.clone());
            v["name"] = json!(g.name);
            v
        })
        .collect()
}

/// The `--json` object, the same shape for one model or several:
/// `{"method", "models": [{"model", "results", "targets", "proof"?}, ...]}`.
pub fn report_json(method: &str, runs: &[Run]) -> Value {
    let models: Vec<Value> = runs
        .iter()
        .map(|r| {
            let mut m = json!({"model": r.model, "results": r.results, "targets": r.targets});
            if let Some(p) = &r.proof {
                m["proof"] = json!(p);
            }
            m
        })
        .collect();
    json!({"method": method, "models": models})
}

/// A JSON value as written: pretty-printed, newline-terminated.
pub fn json_text(value: &Value) -> Result<String> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| Error::invalid(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Writes a JSON value to a file atomically (as [`json_text`]).
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    crate::atomic::write_bytes(path, json_text(value)?.as_bytes())
}

/// The per-budget results as CSV, one row per model and budget.
pub fn csv_text(runs: &[Run]) -> String {
    let mut s =
        String::from("model,budget,targets,evaded,evasion_rate,mean_added,queries,mean_queries\n");
    for run in runs {
        let m = crate::data::write::csv_field(&run.model);
        for r in &run.results {
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
            log_x: false,
        },
        path,
    )
}
