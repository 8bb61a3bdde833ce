//! The `nonneg` command-line tool.

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nonneg",
    version,
    about = "Train, evaluate, certify and attack neural classifiers that cannot be evaded by adding features"
)]
struct Cli {
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// No progress bar or summaries on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a (constrained) MLP classifier and save it as .safetensors.
    Train(Box<cli::train::TrainArgs>),
    /// Accuracy, AUC, TPR at low FPR and more for a model on labelled data.
    Eval(cli::eval::EvalArgs),
    /// Score every row: probability, logit and label.
    Predict(cli::predict::PredictArgs),
    /// Whether adding features can lower the score, decided from the weights (exit 0:
    /// certified, 1: not).
    Certify(cli::certify::CertifyArgs),
    /// Architecture, constraints and per-layer weight statistics.
    Inspect(cli::inspect::InspectArgs),
    /// Feature-addition attacks (greedy, gradient, query, random): evasion rate vs budget.
    Attack(Box<cli::attack::AttackArgs>),
    /// Stratified train/test split of a data file.
    Split(cli::split::SplitArgs),
    /// Turn raw samples (emails, text, binaries) into add-monotone features.
    Featurize(cli::featurize::FeaturizeArgs),
    /// Train, evaluate and inspect unconstrained vs monotone models on bundled data.
    Demo(cli::demo::DemoArgs),
    /// Stratified k-fold cross-validation of the train options: mean and spread of ROC AUC,
    /// average precision and TPR at 1% FPR.
    Cv(Box<cli::cv::CvArgs>),
    /// HTTP scoring service: JSON rows and raw samples, certificate status, hot reload.
    #[cfg(feature = "serve")]
    Serve(cli::serve::ServeArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`nonneg inspect ... | head`), like other Unix tools.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // `cv` takes every train option; its --out is the report's file, stdout by default.
    let command = Cli::command().mut_subcommand("cv", |c| {
        c.mut_arg("out", |a| {
            a.required(false)
                .default_value("-")
                .help("Where to write the report (default: stdout)")
        })
    });
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        eprintln!("error: --threads must be at least 1");
        return ExitCode::from(2);
    }
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        eprintln!("error: cannot start {threads} threads: {e}");
        return ExitCode::from(2);
    }
    let ctx = cli::Context { quiet: cli.quiet };
    let result = match &cli.command {
        Command::Train(a) => cli::train::run(a, &ctx),
        Command::Eval(a) => cli::eval::run(a, &ctx),
        Command::Predict(a) => cli::predict::run(a, &ctx),
        Command::Certify(a) => cli::certify::run(a, &ctx),
        Command::Inspect(a) => cli::inspect::run(a, &ctx),
        Command::Split(a) => cli::split::run(a, &ctx),
        Command::Attack(a) => cli::attack::run(a, &ctx),
        Command::Featurize(a) => cli::featurize::run(a, &ctx),
        Command::Demo(a) => cli::demo::run(a, &ctx),
        Command::Cv(a) => cli::cv::run(a, &ctx),
        #[cfg(feature = "serve")]
        Command::Serve(a) => cli::serve::run(a, &ctx),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::with_flag_names(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}
