//! `nonneg export`.

use super::{load_model, Context};
use anyhow::{Context as _, Result};
use clap::Args;
use nonneg::export::onnx;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The model file (.safetensors) to export.
    #[arg(long)]
    pub model: PathBuf,
    /// Write an ONNX graph (opset 17): input `features` [N, input_dim] of raw feature
    /// values (dense, also for sparse models), outputs `logit` and `score` [N, labels].
    #[arg(long)]
    pub onnx: PathBuf,
}

pub fn run(args: &ExportArgs, ctx: &Context) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    onnx::save_onnx(&model, &args.onnx)
        .with_context(|| format!("cannot export {} to ONNX", args.model.display()))?;
    if !ctx.quiet {
        crate::cli::errln!(
            "wrote {} (ONNX opset {}: `{}` [N, {}] -> `{}`, `{}` [N, {}])",
            args.onnx.display(),
            onnx::OPSET,
            onnx::INPUT,
            model.mlp.input_dim,
            onnx::LOGIT,
            onnx::SCORE,
            model.mlp.n_labels()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
