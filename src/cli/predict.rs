//! `nonneg predict`.

use super::{load_data, load_model, write_output, Context, DataArgs};
use anyhow::Result;
use clap::Args;
use nonneg::model::activation::sigmoid;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Data to score (labels, if present, are ignored).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// csv (header: score,logit,label) or jsonl.
    #[arg(long, default_value = "csv", value_parser = ["csv", "jsonl"])]
    pub format: String,
    /// Write here (atomically) instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Formats scores, logits and labels for every row, in input order.
pub fn format_predictions(
    logits: &[f32],
    threshold: &[f32],
    label_names: &[String],
    jsonl: bool,
) -> String {
    let l = threshold.len();
    let mut out = String::new();
    if !jsonl {
        let cols: Vec<String> = if l == 1 {
            vec!["score".into(), "logit".into(), "label".into()]
        } else {
            label_names
                .iter()
                .flat_map(|n| {
                    [
                        format!("score_{n}"),
                        format!("logit_{n}"),
                        format!("label_{n}"),
                    ]
                })
                .collect()
        };
        out.push_str(&cols.join(","));
        out.push('\n');
    }
    for row in logits.chunks_exact(l.max(1)) {
        if jsonl {
            let vals: Vec<String> = row
                .iter()
                .zip(threshold)
                .map(|(&z, &t)| {
                    format!(
                        "{{\"score\":{},\"logit\":{},\"label\":{}}}",
                        sigmoid(z),
                        z,
                        (z >= t) as u8
                    )
                })
                .collect();
            if l == 1 {
                out.push_str(&vals[0]);
            } else {
                out.push('[');
                out.push_str(&vals.join(","));
                out.push(']');
            }
        } else {
            for (k, (&z, &t)) in row.iter().zip(threshold).enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{},{},{}", sigmoid(z), z, (z >= t) as u8);
            }
        }
        out.push('\n');
    }
    out
}

pub fn run(a: &PredictArgs, _ctx: &Context) -> Result<ExitCode> {
    let model = load_model(&a.model)?;
    let data = load_data(&a.data, &a.data_args, Some(&model), false)?;
    let logits = model.logits(&data.x);
    let text = format_predictions(
        &logits,
        &model.threshold,
        &model.label_names,
        a.format == "jsonl",
    );
    write_output(a.out.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}
