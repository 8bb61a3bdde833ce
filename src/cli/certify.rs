//! `nonneg certify`: whether adding features can lower a model's score, from its weights.

use super::{load_data, load_model, write_output, Context, DataArgs};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use nonneg::certify::budget::{
    certify_budgets, parse_budgets, threshold_at_fpr, BudgetConfig, Intermediate,
};
use nonneg::certify::resolve_features;
use nonneg::certify::{certify, certify_directions, feature_names};
use nonneg::data::feature_list::resolve_direction_list;
use nonneg::model::Model;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CertifyArgs {
    /// The model (.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// The features to certify: one feature name or 0-based index a line, `#` comments
    /// (default: every feature).
    #[arg(long, conflicts_with = "directions")]
    pub features: Option<PathBuf>,
    /// Feature directions, as for `train --feature-directions`: `FEATURE DIRECTION` a line,
    /// +1 (additions raise it), -1 (additions lower it) or 0 (not attacker-controlled).
    /// Certifies that raising a +1 feature or lowering a -1 feature cannot lower a score.
    #[arg(long)]
    pub directions: Option<PathBuf>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Budget certificates: for each positive sample of --data, a sound lower bound on its
    /// logit after any set of at most k additions, for each k of this list (`inf`: any
    /// number), and the share of positives still detected at the --fpr threshold. With
    /// --features, only those features may be added.
    #[arg(long, requires = "data")]
    pub budget: Option<String>,
    /// Labelled data for --budget (its negatives set the threshold).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// --budget: the threshold is the one that gives this false positive rate on the clean
    /// negatives of --data.
    #[arg(long, default_value_t = 0.01)]
    pub fpr: f64,
    /// --budget: the label whose logit is bounded (multi-label models).
    #[arg(long, default_value_t = 0)]
    pub label: usize,
    /// --budget: the most any added feature may reach (default: each feature's training
    /// maximum, stored in the model).
    #[arg(long)]
    pub max_value: Option<f32>,
    /// --budget: how hidden layers' intervals are bounded: ibp, crown (tighter, slower) or
    /// auto (crown where it is cheap).
    #[arg(long, value_enum, default_value_t = Intermediate::Auto)]
    pub intermediate: Intermediate,
    /// --budget: write every positive sample's bounds as CSV here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Exit code 0 when certified, 1 when not (2 on errors, from `main`).
pub fn run(a: &CertifyArgs, _ctx: &Context) -> Result<ExitCode> {
    let model = load_model(&a.model)?;
    let declared = match &a.features {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Some(resolve_features(&model, &text, p)?)
        }
        None => None,
    };
    if let Some(budgets) = &a.budget {
        return run_budget(a, &model, budgets, declared);
    }
    let cert = match &a.directions {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let names = feature_names(&model);
            let dirs = resolve_direction_list(names.as_deref(), model.mlp.input_dim, &text, p)?;
            certify_directions(&model, &dirs)
        }
        None => certify(&model, declared.as_deref()),
    };
    let text = if a.json {
        serde_json::to_string(&cert)? + "\n"
    } else {
        cert.to_string()
    };
    super::write_output(None, &text)?;
    Ok(if cert.certified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--budget`: the report of budget certificates (exit 0 when it was computed).
fn run_budget(
    a: &CertifyArgs,
    model: &Model,
    budgets: &str,
    addable: Option<Vec<usize>>,
) -> Result<ExitCode> {
    if a.directions.is_some() {
        bail!("--budget takes the attacker's features from --features, not --directions");
    }
    let data_path = a.data.as_ref().expect("clap requires --data");
    let data = load_data(data_path, &a.data_args, Some(model), true)?;
    let mut cfg = BudgetConfig::new(parse_budgets(budgets).context("--budget")?);
    cfg.addable = addable;
    cfg.max_value = a.max_value;
    cfg.label = a.label;
    cfg.intermediate = a.intermediate;
    let threshold = threshold_at_fpr(model, &data, cfg.label, a.fpr).context("--fpr")?;
    let report = certify_budgets(model, &data, &cfg, threshold)?;
    if let Some(out) = &a.out {
        write_output(Some(out), &report.csv_text())?;
    }
    let text = if a.json {
        serde_json::to_string(&report)?
    } else {
        report.to_string()
    };
    let text = text.trim_end().to_string() + "\n";
    write_output(None, &text)?;
    Ok(ExitCode::SUCCESS)
}
