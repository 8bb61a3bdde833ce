//! `nonneg certify`: whether adding features can lower a model's score, from its weights.

use super::{load_model, Context};
use anyhow::{Context as _, Result};
use clap::Args;
use nonneg::certify::{certify, resolve_features};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CertifyArgs {
    /// The model (.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// The features to certify: one feature name or 0-based index a line, `#` comments
    /// (default: every feature).
    #[arg(long)]
    pub features: Option<PathBuf>,
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
    let cert = certify(&model, declared.as_deref());
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
