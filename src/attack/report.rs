//! The attacks' outputs, apart from the algorithms: per-budget results as text tables,
//! JSON and CSV, and the evasion-rate chart.

use super::raw::GoodWordsReport;
use super::{AttackReport, BudgetResult};
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
    let head = format!(
        "{name}: {} attack on label {}: {} targets ({} of {} positives detected), {} addable features\n",
        r.method.name(),
        r.label,
        r.outcomes.len(),
        r.detected,
        r.positives,
        r.addable
    );
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

/// A JSON value as written: pretty-printed, newline-terminated.
pub fn json_text(value: &Value) -> Result<String> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| Error::invalid(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Writes a JSON value to a file atomically (as [`json_text`]).
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    crate::model::io::write_atomic(path, json_text(value)?.as_bytes())
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
