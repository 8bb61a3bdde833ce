//! `nonneg predict`.

use super::{featurize_raw, load_data, load_model, write_output, Context, DataArgs};
use anyhow::Result;
use clap::{Args, ValueEnum};
use nonneg::data::write::csv_field;
use nonneg::data::Dataset;
use nonneg::model::explain::Contribution;
use nonneg::model::{Model, Prediction};
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
    /// Data to score (labels, if present, are ignored); several files or a quoted pattern
    /// are scored shard by shard, rows written as they are scored.
    #[arg(long, num_args = 1.., required_unless_present = "files")]
    pub data: Vec<PathBuf>,
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
    #[command(flatten)]
    pub operating_point: super::ThresholdArgs,
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
    csv_field(&text.join("|"))
}

/// What the output holds besides scores, logits and labels.
pub struct Columns<'a> {
    pub labels: usize,
    pub label_names: &'a [String],
    pub jsonl: bool,
    /// Per row: the sample's name (raw samples).
    pub names: Option<&'a [String]>,
    /// `--explain`: per row and label.
    pub explain: Option<&'a Explanations>,
    /// `[negative, positive]` class names of a binary model: each row names its class.
    pub classes: Option<[&'a str; 2]>,
}

impl Columns<'_> {
    /// Formats every row, in input order (CSV with a header, or one JSON value a line).
    pub fn format(&self, predictions: &[Prediction]) -> String {
        let mut out = self.header();
        out.push_str(&self.rows(predictions));
        out
    }

    /// The CSV header line (nothing for jsonl).
    pub fn header(&self) -> String {
        if self.jsonl {
            String::new()
        } else {
            self.csv_header()
        }
    }

    /// Formats every row, without the header.
    pub fn rows(&self, predictions: &[Prediction]) -> String {
        let mut out = String::new();
        for (r, row) in predictions.chunks_exact(self.labels.max(1)).enumerate() {
            out.push_str(&if self.jsonl {
                self.jsonl_row(r, row)
            } else {
                self.csv_row(r, row)
            });
            out.push('\n');
        }
        out
    }

    fn class_of(&self, p: &Prediction) -> Option<&str> {
        self.classes.map(|c| c[usize::from(p.label)])
    }

    fn csv_header(&self) -> String {
        let l = self.labels;
        let mut cols: Vec<String> = if l == 1 {
            vec!["score".into(), "logit".into(), "label".into()]
        } else {
            self.label_names
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
        if self.classes.is_some() {
            cols.push("class".into());
        }
        if self.explain.is_some() {
            for k in 0..l {
                cols.push(match self.label_names.get(k).filter(|_| l > 1) {
                    Some(n) => format!("explain_{n}"),
                    None => "explain".into(),
                });
            }
        }
        if self.names.is_some() {
            cols.push("sample".into());
        }
        cols.join(",") + "\n"
    }

    fn csv_row(&self, r: usize, row: &[Prediction]) -> String {
        let mut cells = Vec::new();
        for p in row {
            cells.extend([
                p.score.to_string(),
                p.logit.to_string(),
                p.label.to_string(),
            ]);
            cells.extend(self.class_of(p).map(csv_field));
        }
        if let Some(e) = self.explain {
            cells.extend((0..self.labels).map(|k| explain_cell(&e[r * self.labels + k])));
        }
        cells.extend(self.names.map(|n| csv_field(&n[r])));
        cells.join(",")
    }

    fn jsonl_row(&self, r: usize, row: &[Prediction]) -> String {
        let vals: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let class = self.class_of(p).map_or(String::new(), |c| {
                    format!(",\"class\":{}", serde_json::Value::from(c))
                });
                let why = self.explain.map_or(String::new(), |e| {
                    format!(",\"explain\":{}", serde_json::json!(e[r * self.labels + k]))
                });
                format!(
                    "{{\"score\":{},\"logit\":{},\"label\":{}{class}{why}}}",
                    p.score, p.logit, p.label
                )
            })
            .collect();
        match self.names.map(|n| n[r].as_str()) {
            Some(n) => format!(
                "{{\"sample\":{},\"scores\":[{}]}}",
                serde_json::Value::from(n),
                vals.join(",")
            ),
            None if self.labels == 1 => vals[0].clone(),
            None => format!("[{}]", vals.join(",")),
        }
    }
}

pub fn run(a: &PredictArgs, ctx: &Context) -> Result<ExitCode> {
    let mut model = load_model(&a.model)?;
    let calibration = match &a.calibration {
        Some(p) => Some(load_data(p, &a.data_args, Some(&model), true)?),
        None => None,
    };
    if a.operating_point.threshold_fpr.is_some() && calibration.is_none() {
        anyhow::bail!("--threshold-fpr needs --calibration DATA: labelled data whose negatives set the threshold");
    }
    super::operating_point(
        &mut model,
        &a.operating_point,
        calibration.as_ref(),
        ctx.quiet,
    )?;
    let paths = nonneg::data::stream::expand(&a.data)?;
    if paths.len() > 1 {
        super::stream::predict(a, &model, &paths)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (data, names) = match paths.first() {
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
    let text = format(a, &model, &data, names.as_deref(), true);
    write_output(a.out.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}

/// The output for the rows of `data` (with the CSV header when `header`).
pub fn format(
    a: &PredictArgs,
    model: &Model,
    data: &Dataset,
    names: Option<&[String]>,
    header: bool,
) -> String {
    let predictions = model.decide(&model.logits(&data.x));
    let l = model.threshold.len();
    let explanations: Option<Explanations> = a.explain.map(|n| {
        (0..data.rows() * l)
            .map(|i| model.explain(&data.x, i / l, i % l, n))
            .collect()
    });
    let columns = Columns {
        labels: l,
        label_names: &model.label_names,
        jsonl: a.format == Format::Jsonl,
        names,
        explain: explanations.as_ref(),
        classes: model.class_names(),
    };
    match header {
        true => columns.format(&predictions),
        false => columns.rows(&predictions),
    }
}
