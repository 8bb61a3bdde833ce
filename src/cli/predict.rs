//! `nonneg predict`.

use super::{featurize_raw, load_data, load_model, write_output, Context, DataArgs};
use anyhow::Result;
use clap::{Args, ValueEnum};
use nonneg::model::explain::Contribution;
use nonneg::model::Prediction;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The model file (.safetensors) that scores.
    #[arg(long)]
    pub model: PathBuf,
    /// Data to score (labels, if present, are ignored).
    #[arg(long, required_unless_present = "files")]
    pub data: Option<PathBuf>,
    /// Raw samples to score with the model's featurizer (files, directories or
    /// .tar/.tar.gz/.tar.bz2 archives); output adds a `sample` column.
    #[arg(conflicts_with = "data")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// csv (header: score,logit,label) or jsonl.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Write here (atomically) instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Add each row's N features with the largest contributions to each logit: exact for
    /// the linear parts (skip connection, no hidden layer), gradient x input for the hidden
    /// layers. CSV: a column `explain` of `name=contribution` pairs joined by `|`; jsonl:
    /// an `explain` list per label.
    #[arg(long, value_name = "N")]
    pub explain: Option<usize>,
    /// Decide at this logit instead of the model's threshold.
    #[arg(
        long,
        value_name = "LOGIT",
        conflicts_with = "threshold_fpr",
        allow_negative_numbers = true
    )]
    pub threshold: Option<f32>,
    /// Decide at the threshold that gives this false positive rate on the negatives of
    /// --calibration.
    #[arg(long, value_name = "FPR", requires = "calibration")]
    pub threshold_fpr: Option<f64>,
    /// Labelled data (read like --data) whose negatives set --threshold-fpr.
    #[arg(long, value_name = "DATA", requires = "threshold_fpr")]
    pub calibration: Option<PathBuf>,
}

/// Per row, per label: the explanation's entries (empty without `--explain`).
type Explanations = Vec<Vec<Contribution>>;

/// `name=contribution|...` for a CSV cell (quoted when a name needs it).
fn explain_cell(c: &[Contribution]) -> String {
    let text: Vec<String> = c
        .iter()
        .map(|c| format!("{}={}", c.name, c.total()))
        .collect();
    nonneg::data::write::csv_field(&text.join("|"))
}

/// Formats scores, logits and labels for every row, in input order; with `classes`
/// (`[negative, positive]` of a binary model) each row also names its class.
pub fn format_predictions(
    predictions: &[Prediction],
    labels: usize,
    label_names: &[String],
    jsonl: bool,
    names: Option<&[String]>,
    explain: Option<&Explanations>,
    classes: Option<[&str; 2]>,
) -> String {
    let class_of = |p: &Prediction| classes.map(|c| c[usize::from(p.label)]);
    let l = labels;
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
        if classes.is_some() {
            out.push_str(",class");
        }
        if explain.is_some() {
            for k in 0..l {
                match label_names.get(k).filter(|_| l > 1) {
                    Some(n) => out.push_str(&format!(",explain_{n}")),
                    None => out.push_str(",explain"),
                }
            }
        }
        if names.is_some() {
            out.push_str(",sample");
        }
        out.push('\n');
    }
    for (r, row) in predictions.chunks_exact(l.max(1)).enumerate() {
        let name = names.map(|n| n[r].as_str());
        if jsonl {
            let vals: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    let class = class_of(p).map_or(String::new(), |c| {
                        format!(",\"class\":{}", serde_json::Value::from(c))
                    });
                    let why = explain.map_or(String::new(), |e| {
                        format!(",\"explain\":{}", serde_json::json!(e[r * l + k]))
                    });
                    format!(
                        "{{\"score\":{},\"logit\":{},\"label\":{}{class}{why}}}",
                        p.score, p.logit, p.label
                    )
                })
                .collect();
            if let Some(n) = name {
                let joined = vals.join(",");
                let _ = write!(
                    out,
                    "{{\"sample\":{},\"scores\":[{joined}]}}",
                    serde_json::Value::from(n)
                );
            } else if l == 1 {
                out.push_str(&vals[0]);
            } else {
                out.push('[');
                out.push_str(&vals.join(","));
                out.push(']');
            }
        } else {
            for (k, p) in row.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{},{},{}", p.score, p.logit, p.label);
                if let Some(c) = class_of(p) {
                    out.push(',');
                    out.push_str(&nonneg::data::write::csv_field(c));
                }
            }
            if let Some(e) = explain {
                for k in 0..l {
                    out.push(',');
                    out.push_str(&explain_cell(&e[r * l + k]));
                }
            }
            if let Some(n) = name {
                out.push(',');
                out.push_str(&nonneg::data::write::csv_field(n));
            }
        }
        out.push('\n');
    }
    out
}

pub fn run(a: &PredictArgs, ctx: &Context) -> Result<ExitCode> {
    let model = load_model(&a.model)?;
    let (data, names) = match &a.data {
        Some(d) => (load_data(d, &a.data_args, Some(&model), false)?, None),
        None => {
            let classes: Vec<(String, PathBuf)> = a
                .files
                .iter()
                .map(|p| ("input".to_string(), p.clone()))
                .collect();
            let (ds, names) =
                featurize_raw(&model, &classes, "input", ctx.quiet || a.out.is_none())?;
            (ds, Some(names))
        }
    };
    let calibration = match &a.calibration {
        Some(p) => Some(load_data(p, &a.data_args, Some(&model), true)?),
        None => None,
    };
    let mut model = model;
    super::operating_point(
        &mut model,
        a.threshold,
        a.threshold_fpr.zip(calibration.as_ref()),
    )?;
    let predictions = model.decide(&model.logits(&data.x));
    let l = model.threshold.len();
    let explanations: Option<Explanations> = a.explain.map(|n| {
        (0..data.rows() * l)
            .map(|i| model.explain(&data.x, i / l, i % l, n))
            .collect()
    });
    let text = format_predictions(
        &predictions,
        l,
        &model.label_names,
        a.format == Format::Jsonl,
        names.as_deref(),
        explanations.as_ref(),
        model.class_names(),
    );
    write_output(a.out.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}
