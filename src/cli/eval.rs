//! `nonneg eval`.

use super::{featurize_raw, load_data, load_model, Context, DataArgs};
use anyhow::{Context as _, Result};
use clap::Args;
use nonneg::certify::budget::parse_budgets;
use nonneg::metrics::{self, LabelMetrics};
use nonneg::model::Model;
use nonneg::pipeline::budget_eval::{budget_detection, BudgetDetection};
use nonneg::pipeline::label_metrics;
use nonneg::plot::{self, Chart, Series};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model file (.safetensors) to evaluate.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled data, read as for training; several files or a quoted pattern are read
    /// shard by shard (keeping 8 bytes per row: the logit and the label).
    #[arg(long, num_args = 1.., required_unless_present = "classes")]
    pub data: Vec<PathBuf>,
    /// Raw samples instead of --data, for a model with a featurizer: NAME=PATH (directory,
    /// file or .tar/.tar.gz/.tar.bz2), repeatable; the positive class is --positive or the
    /// first NAME.
    #[arg(long = "class", value_name = "NAME=PATH", value_parser = super::featurize::parse_class, conflicts_with = "data")]
    pub classes: Vec<(String, PathBuf)>,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Draw the ROC curve(s) to this PNG.
    #[arg(long)]
    pub roc: Option<PathBuf>,
    /// Also report, at 1% and 0.1% FPR on the clean negatives, the TPR certified against
    /// any N additions and the TPR left after the greedy attack with N additions, for each
    /// budget N of this list (e.g. 5,20,50,inf).
    #[arg(long, value_name = "N,...")]
    pub budget: Option<String>,
    /// With --budget: draw the certified and attacked TPR at 1% FPR against the budget to
    /// this PNG (finite budgets).
    #[arg(long, requires = "budget")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub operating_point: super::ThresholdArgs,
    /// Also write the --json object to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn to_json(m: &LabelMetrics) -> Value {
    json!({
        "n": m.n, "positives": m.positives, "threshold": m.threshold,
        "accuracy": m.accuracy, "precision": m.precision, "recall": m.recall, "f1": m.f1,
        "auc": m.auc, "average_precision": m.average_precision,
        "tpr_at_fpr_1pct": m.tpr_at_fpr_1pct, "tpr_at_fpr_0_1pct": m.tpr_at_fpr_0_1pct,
        "log_loss": m.mean_loss,
        "confusion": {"tp": m.tp, "fp": m.fp, "tn": m.tn, "fn": m.fn_},
    })
}

fn mean(vals: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = vals.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The `--json` object: one label's metrics, or macro averages plus per-label detail.
pub fn report_json(model: &Model, per: &[LabelMetrics]) -> Value {
    if per.len() == 1 {
        let mut v = to_json(&per[0]);
        v["label"] = json!(model.label_names.first());
        return v;
    }
    let avg = |f: fn(&LabelMetrics) -> Option<f64>| mean(per.iter().map(f));
    json!({
        "n": per[0].n,
        "averaging": "macro",
        "accuracy": avg(|m| Some(m.accuracy)),
        "precision": avg(|m| Some(m.precision)),
        "recall": avg(|m| Some(m.recall)),
        "f1": avg(|m| Some(m.f1)),
        "auc": avg(|m| m.auc),
        "average_precision": avg(|m| m.average_precision),
        "tpr_at_fpr_1pct": avg(|m| m.tpr_at_fpr_1pct),
        "tpr_at_fpr_0_1pct": avg(|m| m.tpr_at_fpr_0_1pct),
        "labels": per.iter().zip(&model.label_names).map(|(m, name)| {
            let mut v = to_json(m);
            v["label"] = json!(name);
            v
        }).collect::<Vec<_>>(),
    })
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.4}"))
}

pub fn print_table(model: &Model, per: &[LabelMetrics]) -> Result<()> {
    crate::cli::outln!(
        "{:<16} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>11}",
        "label",
        "n",
        "accuracy",
        "precis.",
        "recall",
        "F1",
        "ROC AUC",
        "avg prec",
        "TPR@1%FPR",
        "TPR@.1%FPR"
    )?;
    for (m, name) in per.iter().zip(&model.label_names) {
        crate::cli::outln!(
            "{:<16} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8} {:>8} {:>10} {:>11}",
            name,
            m.n,
            m.accuracy,
            m.precision,
            m.recall,
            m.f1,
            fmt(m.auc),
            fmt(m.average_precision),
            fmt(m.tpr_at_fpr_1pct),
            fmt(m.tpr_at_fpr_0_1pct)
        )?;
        crate::cli::outln!(
            "{:<16} threshold (logit) {}: tp {} fp {} tn {} fn {}",
            "",
            m.threshold,
            m.tp,
            m.fp,
            m.tn,
            m.fn_
        )?;
    }
    Ok(())
}

fn print_budgets(model: &Model, rows: &[BudgetDetection]) -> Result<()> {
    for d in rows {
        crate::cli::outln!(
            "\n{} at {}% FPR (threshold {}): clean TPR {:.4} of {} positives",
            model.label_names[d.label],
            d.fpr * 100.0,
            d.threshold,
            d.clean,
            d.positives
        )?;
        crate::cli::outln!("{:>8} {:>10} {:>10}", "budget", "certified", "attacked")?;
        for p in &d.points {
            crate::cli::outln!(
                "{:>8} {:>10.4} {:>10}",
                p.budget.to_string(),
                p.certified,
                fmt(p.empirical)
            )?;
        }
    }
    Ok(())
}

/// Certified and attacked TPR at 1% FPR against the (finite) budget, per label.
fn plot_budgets(model: &Model, rows: &[BudgetDetection], path: &std::path::Path) -> Result<()> {
    let mut series = Vec::new();
    let mut max_k = 1.0f64;
    for d in rows.iter().filter(|d| d.fpr == 0.01) {
        let name = &model.label_names[d.label];
        let finite = || {
            d.points
                .iter()
                .filter_map(|p| p.budget.finite().map(|k| (k as f64, p)))
        };
        max_k = finite().map(|(k, _)| k).fold(max_k, f64::max);
        series.push(Series {
            name: format!("{name}: certified"),
            points: finite().map(|(k, p)| (k, p.certified)).collect(),
        });
        series.push(Series {
            name: format!("{name}: greedy attack"),
            points: finite()
                .filter_map(|(k, p)| p.empirical.map(|e| (k, e)))
                .collect(),
        });
    }
    plot::draw(
        &Chart {
            title: "TPR at 1% FPR under additions",
            x_label: "budget (features added)",
            y_label: "true positive rate",
            x_range: (0.0, max_k),
            y_range: (0.0, 1.0),
            series,
            diagonal: false,
            markers: true,
            log_x: false,
        },
        path,
    )?;
    Ok(())
}

/// One ROC curve per label on a log FPR axis, the model file named in the legend.
fn plot_roc(
    model: &Model,
    file: &std::path::Path,
    logits: &[f32],
    y: &[f32],
    per: &[LabelMetrics],
    path: &std::path::Path,
) -> Result<()> {
    let model_name = nonneg::attack::report::display_names(&[file.to_path_buf()]).remove(0);
    let l = model.mlp.n_labels();
    let series = (0..l)
        .map(|k| {
            let s = metrics::label_column(logits, l, k);
            let t = metrics::label_column(y, l, k);
            Series {
                name: format!(
                    "{model_name}: {} (AUC {})",
                    model.label_names[k],
                    fmt(per[k].auc)
                ),
                points: metrics::roc_curve(&s, &t),
            }
        })
        .collect();
    plot::draw(
        &Chart {
            title: "ROC curve",
            x_label: "false positive rate (log scale)",
            y_label: "true positive rate",
            x_range: (1e-4, 1.0),
            y_range: (0.0, 1.0),
            series,
            diagonal: true,
            markers: false,
            log_x: true,
        },
        path,
    )?;
    Ok(())
}

pub fn run(a: &EvalArgs, ctx: &Context) -> Result<ExitCode> {
    let model = load_model(&a.model)?;
    let paths = nonneg::data::stream::expand(&a.data)?;
    if paths.len() > 1 {
        if a.budget.is_some() || a.operating_point.threshold_fpr.is_some() {
            anyhow::bail!(
                "--budget and --threshold-fpr read one file into memory; --data names {} shards",
                paths.len()
            );
        }
        let mut model = model;
        super::operating_point(&mut model, &a.operating_point, None, ctx.quiet)?;
        let (logits, y) = super::stream::scores(&paths, &a.data_args, &model)?;
        return report(a, &model, &logits, &y, None);
    }
    let data = match paths.first() {
        Some(d) => load_data(d, &a.data_args, Some(&model), true)?,
        None => {
            let positive = a
                .data_args
                .positive
                .clone()
                .unwrap_or_else(|| a.classes[0].0.clone());
            featurize_raw(&model, &a.classes, &positive, ctx.quiet || a.json)?.0
        }
    };
    let mut model = model;
    super::operating_point(&mut model, &a.operating_point, Some(&data), ctx.quiet)?;
    let logits = model.logits(&data.x);
    let y = data
        .y
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{}: no labels to evaluate against", data.source))?;
    let budgets = match &a.budget {
        Some(b) => {
            let budgets = parse_budgets(b).context("--budget")?;
            Some(budget_detection(&model, &data, &budgets).context("--budget")?)
        }
        None => None,
    };
    report(a, &model, &logits, y, budgets.as_deref())
}

/// Prints (and writes, and plots) the metrics of `logits` against `y`.
fn report(
    a: &EvalArgs,
    model: &Model,
    logits: &[f32],
    y: &[f32],
    budgets: Option<&[BudgetDetection]>,
) -> Result<ExitCode> {
    let per = label_metrics(model, logits, y);
    let mut v = report_json(model, &per);
    if let Some([neg, pos]) = model.class_names() {
        v["classes"] = json!({"negative": neg, "positive": pos});
    }
    if let Some(b) = budgets {
        v["budgets"] = json!(b);
    }
    if let Some(p) = &a.out {
        super::write_output(Some(p), &format!("{v}\n"))?;
    }
    if a.json {
        crate::cli::outln!("{v}")?;
    } else {
        print_table(model, &per)?;
        if let Some([neg, pos]) = model.class_names() {
            crate::cli::outln!("classes: positive (1) {pos}, negative (0) {neg}")?;
        }
        if let Some(b) = budgets {
            print_budgets(model, b)?;
        }
    }
    if let (Some(path), Some(b)) = (&a.plot, budgets) {
        plot_budgets(model, b, path)?;
    }
    if let Some(path) = &a.roc {
        plot_roc(model, &a.model, logits, y, &per, path)?;
    }
    Ok(ExitCode::SUCCESS)
}
