//! `nonneg certify`: whether adding features can lower a model's score, from its weights.

use super::{load_model, Context};
use anyhow::{Context as _, Result};
use clap::Args;
use nonneg::certify::resolve_features;
use nonneg::certify::{certify, certify_directions, feature_names};
use nonneg::data::feature_list::resolve_direction_list;
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
        serde_json::to_string_pretty(&cert)? + "\n"
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
