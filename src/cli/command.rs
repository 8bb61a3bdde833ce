//! The command line: global flags, the subcommands, and which command runs what.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nonneg",
    version,
    about = "Train, evaluate, certify and attack neural classifiers that cannot be evaded by adding features"
)]
pub struct Cli {
    /// Worker threads, 1 to 1024 (default: all cores). Results do not depend on it.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// No progress bar or summaries on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a (constrained) MLP classifier and save it as .safetensors.
    Train(Box<super::train::TrainArgs>),
    /// Accuracy, AUC, TPR at low FPR and more for a model on labelled data.
    Eval(super::eval::EvalArgs),
    /// Score every row: probability, logit and label.
    Predict(super::predict::PredictArgs),
    /// Whether adding features can lower the score, decided from the weights (exit 0:
    /// certified, 1: not).
    Certify(super::certify::CertifyArgs),
    /// Architecture, constraints and per-layer weight statistics.
    Inspect(super::inspect::InspectArgs),
    /// Feature-addition attacks (greedy, gradient, query, random): evasion rate vs budget.
    Attack(Box<super::attack::AttackArgs>),
    /// Stratified train/test split of a data file.
    Split(super::split::SplitArgs),
    /// Turn raw samples (emails, text, binaries) into add-monotone features.
    Featurize(super::featurize::FeaturizeArgs),
    /// Train, evaluate and inspect unconstrained vs monotone models on bundled data.
    Demo(super::demo::DemoArgs),
    /// Stratified k-fold cross-validation of the train options: mean and spread of ROC AUC,
    /// average precision and TPR at 1% FPR.
    Cv(Box<super::cv::CvArgs>),
    /// Write the model as an ONNX graph that ONNX Runtime runs with no custom ops.
    Export(super::export::ExportArgs),
    /// HTTP scoring service: JSON rows and raw samples, certificate status, hot reload.
    #[cfg(feature = "serve")]
    Serve(super::serve::ServeArgs),
}

impl Command {
    /// Runs the command.
    pub fn run(&self, ctx: &super::Context) -> anyhow::Result<ExitCode> {
        match self {
            Command::Train(a) => super::train::run(a, ctx),
            Command::Eval(a) => super::eval::run(a, ctx),
            Command::Predict(a) => super::predict::run(a, ctx),
            Command::Certify(a) => super::certify::run(a, ctx),
            Command::Inspect(a) => super::inspect::run(a, ctx),
            Command::Split(a) => super::split::run(a, ctx),
            Command::Attack(a) => super::attack::run(a, ctx),
            Command::Featurize(a) => super::featurize::run(a, ctx),
            Command::Demo(a) => super::demo::run(a, ctx),
            Command::Cv(a) => super::cv::run(a, ctx),
            Command::Export(a) => super::export::run(a, ctx),
            #[cfg(feature = "serve")]
            Command::Serve(a) => super::serve::run(a, ctx),
        }
    }
}
