//! `nonneg cv`: the train options, k stratified folds, and the report of
//! [`pipeline::cross_validate`] as a table or JSON.

use super::train::{self, TrainArgs};
use super::{write_output, Context};
use anyhow::{bail, Result};
use clap::Args;
use nonneg::pipeline;
use nonneg::pipeline::cv::{CvReport, Spread};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CvArgs {
    /// Every option of `nonneg train`; --out is where the report goes (default: stdout).
    #[command(flatten)]
    pub train: TrainArgs,
    /// Number of stratified folds (built from --seed).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &CvArgs, ctx: &Context) -> Result<ExitCode> {
    let t = &a.train;
    if t.autotune.autotune {
        bail!(
            "cv evaluates fixed settings; search them with `train --autotune --autotune-folds K`"
        );
    }
    if t.checkpoint.is_some() || t.resume.is_some() {
        bail!("--checkpoint and --resume save one training run; cv runs one per fold");
    }
    if t.distributed {
        bail!("cv trains every fold in one process; it takes no --distributed");
    }
    if t.stream.any() || nonneg::data::stream::expand(&t.data)?.len() > 1 {
        bail!(
            "cv holds every fold in memory: it takes one --data file and no streaming option \
             (--stream, --shuffle-buffer, --valid-shards, --max-memory)"
        );
    }
    if !t.valid.is_empty() || t.valid_fraction.is_some() {
        bail!("cv holds out each fold in turn; it takes no --valid or --valid-fraction");
    }
    let opts = train::fit_options(t)?;
    let featurizer = train::find_featurizer(t)?;
    let (data, _, _) = train::load_train_valid(t, featurizer.as_ref())?;
    let opts = pipeline::FitOptions {
        signs: train::feature_signs(t, &data, &opts.config)?,
        ..opts
    };
    let k = a.folds;
    let report = pipeline::cross_validate(&opts, &data, k, t.seed, &mut |f| {
        if !ctx.quiet {
            crate::cli::errln!("fold {}/{k}: training", f + 1).ok(); // progress only
        }
    })
    .map_err(|e| anyhow::anyhow!("--folds {k}: {e}"))?;
    let text = if a.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        table(&report, data.rows())
    };
    write_output(Some(&t.out), &text)?;
    Ok(ExitCode::SUCCESS)
}

fn cell(s: Option<Spread>) -> String {
    s.map_or("-".into(), |s| format!("{:.4} ± {:.4}", s.mean, s.std))
}

fn table(r: &CvReport, rows: usize) -> String {
    let mut out = format!(
        "{}-fold stratified cross-validation (seed {}), {rows} rows; mean ± standard deviation over the folds\n\n",
        r.folds, r.seed
    );
    out += &format!(
        "{:<16} {:>17} {:>17} {:>17}\n",
        "label", "ROC AUC", "average precision", "TPR at 1% FPR"
    );
    for s in &r.summary {
        out += &format!(
            "{:<16} {:>17} {:>17} {:>17}\n",
            s.label,
            cell(s.auc),
            cell(s.average_precision),
            cell(s.tpr_at_fpr_1pct)
        );
    }
    out
}
