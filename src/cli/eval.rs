//! `nonneg eval`.

use super::{featurize_raw, load_data, load_model, Context, DataArgs};
use anyhow::Result;
use clap::Args;
use nonneg::metrics::{self, LabelMetrics};
use nonneg::model::Model;
use nonneg::pipeline::label_metrics;
use nonneg::plot::{self, Chart, Series};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled data, read as for training.
    #[arg(long, required_unless_present = "classes")]
    pub data: Option<PathBuf>,
    /// Raw samples instead of --data, for a model with a featurizer: NAME=PATH (directory,
    /// file or .tar/.tar.gz/.tar.bz2), repeatable; the positive class is --positive or the
    /// first NAME.
    #[arg(long = "class", value_name = "NAME=PATH", value_parser = nonneg::features::cli::parse_class, conflicts_with = "data")]
    pub classes: Vec<(String, PathBuf)>,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Draw the ROC curve(s) to this PNG.
    #[arg(long)]
    pub roc: Option<PathBuf>,
}

fn to_json(m: &LabelMetrics) -> Value {
    json!({
        "n": m.n, "positives": m.positives, "threshold": m.threshold,
        "accuracy": m.accuracy, "precision": m.precision, "recall": m.recall, "f1": m.f1,
        "auc": m.auc, "pr_auc": m.pr_auc,
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
        "pr_auc": avg(|m| m.pr_auc),
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

pub fn print_table(model: &Model, per: &[LabelMetrics]) {
    println!(
        "{:<16} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>11}",
        "label",
        "n",
        "accuracy",
        "precis.",
        "recall",
        "F1",
        "ROC AUC",
        "PR AUC",
        "TPR@1%FPR",
        "TPR@.1%FPR"
    );
    for (m, name) in per.iter().zip(&model.label_names) {
        println!(
            "{:<16} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8} {:>8} {:>10} {:>11}",
            name,
            m.n,
            m.accuracy,
            m.precision,
            m.recall,
            m.f1,
            fmt(m.auc),
            fmt(m.pr_auc),
            fmt(m.tpr_at_fpr_1pct),
            fmt(m.tpr_at_fpr_0_1pct)
        );
        println!(
            "{:<16} threshold (logit) {}: tp {} fp {} tn {} fn {}",
            "", m.threshold, m.tp, m.fp, m.tn, m.fn_
        );
    }
}

pub fn run(a: &EvalArgs, ctx: &Context) -> Result<ExitCode> {
    let model = load_model(&a.model)?;
    let data = match &a.data {
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
    let logits = model.logits(&data.x);
    let y = data.y.as_ref().expect("labels required");
    let per = label_metrics(&model, &logits, y);
    if a.json {
        println!("{}", report_json(&model, &per));
    } else {
        print_table(&model, &per);
    }
    if let Some(path) = &a.roc {
        let l = model.mlp.n_labels();
        let series = (0..l)
            .map(|k| {
                let s: Vec<f32> = logits.iter().skip(k).step_by(l).copied().collect();
                let t: Vec<f32> = y.iter().skip(k).step_by(l).copied().collect();
                Series {
                    name: format!("{} (AUC {})", model.label_names[k], fmt(per[k].auc)),
                    points: metrics::roc_curve(&s, &t),
                }
            })
            .collect();
        plot::draw(
            &Chart {
                title: "ROC curve",
                x_label: "false positive rate",
                y_label: "true positive rate",
                x_range: (0.0, 1.0),
                y_range: (0.0, 1.0),
                series,
                diagonal: true,
                markers: false,
            },
            path,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
