//! `nonneg attack`: feature-addition attacks on one or several models.

use super::{load_data, load_model, Context, DataArgs};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use nonneg::attack::{self, AttackConfig, AttackReport, BudgetResult, Method, Scoring};
use nonneg::model::Model;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct AttackArgs {
    /// Model(s) to attack; repeat (`--model A --model B`) to compare them on one chart.
    #[arg(long, required = true)]
    pub model: Vec<PathBuf>,
    /// Labelled data; the targets are its positives that the model detects.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// greedy (white box, exact), gradient (white box, JSMA-like), query (black box,
    /// scores only) or random.
    #[arg(long, default_value = "greedy")]
    pub method: String,
    /// Budgets (features added), e.g. 1,5,10,20,50; the attack runs once to the largest.
    #[arg(long, default_value = "1,5,10,20,50")]
    pub budget: String,
    /// Features the attacker may add: one name or 0-based index per line, `#` comments
    /// (default: all).
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Raise an added feature to this value (default: its maximum in the training data).
    #[arg(long)]
    pub max_value: Option<f32>,
    /// Attack only the first N detected positives (row order).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the query and random attacks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Query attack: candidates evaluated per step.
    #[arg(long, default_value_t = 64)]
    pub queries_per_step: usize,
    /// The attacked label: index or name (default: the first).
    #[arg(long)]
    pub label: Option<String>,
    /// Candidate scorer: auto, batched or cached (both exact; for benchmarks).
    #[arg(long, default_value = "auto", value_parser = ["auto", "batched", "cached"])]
    pub scoring: String,
    /// Write the per-budget results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the per-budget results as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Draw evasion rate against budget (one line per model) to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

fn resolve_label(model: &Model, label: Option<&str>) -> Result<usize> {
    let Some(s) = label else { return Ok(0) };
    if let Some(i) = model.label_names.iter().position(|n| n == s) {
        return Ok(i);
    }
    match s.parse::<usize>() {
        Ok(i) if i < model.mlp.n_labels() => Ok(i),
        _ => bail!(
            "--label `{s}`: not a label of the model (labels: {})",
            model.label_names.join(", ")
        ),
    }
}

/// Names of the models on the chart and in the outputs: the file stems, or the paths
/// when stems repeat.
fn display_names(paths: &[PathBuf]) -> Vec<String> {
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

fn table(name: &str, r: &AttackReport) -> String {
    let mut s = format!(
        "{name}: {} attack on label {}: {} targets ({} of {} positives detected), {} addable features\n",
        r.method.name(),
        r.label,
        r.outcomes.len(),
        r.detected,
        r.positives,
        r.addable
    );
    s.push_str(&format!(
        "{:>7} {:>8} {:>7} {:>9} {:>11} {:>12} {:>13}\n",
        "budget", "targets", "evaded", "evasion", "mean_added", "queries", "mean_queries"
    ));
    for b in &r.results {
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

pub fn run(a: &AttackArgs, ctx: &Context) -> Result<ExitCode> {
    let method = Method::parse(&a.method).with_context(|| {
        format!(
            "--method `{}`: use greedy, gradient, query or random",
            a.method
        )
    })?;
    let budgets = attack::parse_budgets(&a.budget)?;
    if method == Method::Query && a.queries_per_step == 0 {
        bail!("--queries-per-step must be at least 1");
    }
    if let Some(v) = a.max_value {
        if !v.is_finite() {
            bail!("--max-value must be a finite number");
        }
    }
    let features_text = match &a.features {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| nonneg::Error::io(p, e))
                .context("cannot read --features")?,
        ),
        None => None,
    };
    let names = display_names(&a.model);
    let mut runs: Vec<(String, Vec<BudgetResult>)> = Vec::new();
    for (path, name) in a.model.iter().zip(&names) {
        let model = load_model(path)?;
        let data = load_data(&a.data, &a.data_args, Some(&model), true)?;
        let addable = match (&features_text, &a.features) {
            (Some(text), Some(p)) => {
                let names = model
                    .feature_names
                    .as_deref()
                    .or(data.feature_names.as_deref());
                Some(attack::parse_feature_list(
                    text,
                    names,
                    model.mlp.input_dim,
                    &p.display().to_string(),
                )?)
            }
            _ => None,
        };
        let cfg = AttackConfig {
            method,
            budgets: budgets.clone(),
            addable,
            max_value: a.max_value,
            limit: a.limit,
            seed: a.seed,
            queries_per_step: a.queries_per_step,
            label: resolve_label(&model, a.label.as_deref())?,
            scoring: Scoring::parse(&a.scoring).expect("clap checked"),
        };
        let report = attack::attack(&model, &data, &cfg)
            .with_context(|| format!("attacking {}", path.display()))?;
        let sep = if runs.is_empty() { "" } else { "\n" };
        super::write_output(None, &format!("{sep}{}", table(name, &report)))?;
        if !ctx.quiet {
            eprintln!(
                "{name}: {} targets attacked in {:.2}s ({} scoring)",
                report.outcomes.len(),
                report.seconds,
                report.scoring
            );
        }
        runs.push((path.display().to_string(), report.results));
    }
    if let Some(p) = &a.json {
        let v = attack::report_json(method.name(), &runs);
        if p == Path::new("-") {
            super::write_output(None, &format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        } else {
            attack::write_json(p, &v)?;
        }
    }
    if let Some(p) = &a.csv {
        super::write_output(Some(p), &attack::csv_text(&runs))?;
    }
    if let Some(p) = &a.plot {
        let title = format!("Evasion rate vs budget ({} attack)", method.name());
        let curves: Vec<(String, Vec<BudgetResult>)> = names
            .iter()
            .zip(&runs)
            .map(|(n, (_, r))| (n.clone(), r.clone()))
            .collect();
        attack::plot_curves(&curves, &title, p)?;
    }
    Ok(ExitCode::SUCCESS)
}
