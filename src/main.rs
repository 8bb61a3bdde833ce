//! The `nonneg` command-line tool.

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nonneg",
    version,
    about = "Train, evaluate, certify and attack neural classifiers that cannot be evaded by adding features"
)]
struct Cli {
    /// Worker threads, 1 to 1024 (default: all cores). Results do not depend on it.
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
    /// Write the model as an ONNX graph that ONNX Runtime runs with no custom ops.
    Export(cli::export::ExportArgs),
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
    if !(1..=MAX_THREADS).contains(&threads) {
        return fail(&format!(
            "--threads must be between 1 and {MAX_THREADS}, got {threads}"
        ));
    }
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        return fail(&format!("cannot start {threads} threads: {e}"));
    }
    let (inputs, outputs) = io_paths(&cli.command);
    let checked = cli::guard::check_inputs(&inputs)
        .and_then(|()| cli::guard::check_outputs(&inputs, &outputs));
    if let Err(e) = checked {
        return fail(&format!("{e:#}"));
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
        Command::Export(a) => cli::export::run(a, &ctx),
        #[cfg(feature = "serve")]
        Command::Serve(a) => cli::serve::run(a, &ctx),
    };
    match result {
        Ok(code) => code,
        Err(e) => fail(&cli::with_flag_names(&format!("{e:#}"))),
    }
}

type Flagged = Vec<(&'static str, PathBuf)>;

/// Each command's input and output files, by flag, for [`cli::guard::check_outputs`].
fn io_paths(command: &Command) -> (Flagged, Flagged) {
    let one = |flag: &'static str, p: &Option<PathBuf>| -> Flagged {
        p.iter().map(|p| (flag, p.clone())).collect()
    };
    let data_args = |a: &cli::DataArgs| one("--labels", &a.labels);
    match command {
        Command::Train(a) => train_paths(a, "--out"),
        Command::Cv(a) => train_paths(&a.train, "--out"),
        Command::Eval(a) => (
            [
                vec![("--model", a.model.clone())],
                one("--data", &a.data),
                data_args(&a.data_args),
            ]
            .concat(),
            [
                one("--roc", &a.roc),
                one("--plot", &a.plot),
                one("--out", &a.out),
            ]
            .concat(),
        ),
        Command::Predict(a) => (
            [
                vec![("--model", a.model.clone())],
                one("--data", &a.data),
                one("--calibration", &a.calibration),
                data_args(&a.data_args),
            ]
            .concat(),
            one("--out", &a.out),
        ),
        Command::Certify(a) => (
            [
                vec![("--model", a.model.clone())],
                one("--data", &a.data),
                one("--features", &a.features),
                one("--directions", &a.directions),
            ]
            .concat(),
            one("--out", &a.out),
        ),
        Command::Attack(a) => (
            [
                a.model.iter().map(|m| ("--model", m.clone())).collect(),
                one("--data", &a.data),
                one("--features", &a.features),
                data_args(&a.data_args),
            ]
            .concat(),
            [
                one("--out", &a.out),
                one("--csv", &a.csv),
                one("--plot", &a.plot),
            ]
            .concat(),
        ),
        Command::Split(a) => (
            [vec![("--data", a.data.clone())], data_args(&a.data_args)].concat(),
            vec![
                ("--train-out", a.train_out.clone()),
                ("--test-out", a.test_out.clone()),
            ],
        ),
        Command::Featurize(a) => featurize_paths(a),
        Command::Export(a) => (
            vec![("--model", a.model.clone())],
            vec![("--onnx", a.onnx.clone())],
        ),
        Command::Inspect(_) | Command::Demo(_) => (vec![], vec![]),
        // Reads its models (and re-reads them on reload); writes nothing.
        #[cfg(feature = "serve")]
        Command::Serve(_) => (vec![], vec![]),
    }
}

fn train_paths(a: &cli::train::TrainArgs, out_flag: &'static str) -> (Flagged, Flagged) {
    let one = |flag: &'static str, p: &Option<PathBuf>| -> Flagged {
        p.iter().map(|p| (flag, p.clone())).collect()
    };
    let inputs = [
        vec![("--data", a.data.clone())],
        one("--valid", &a.valid),
        one("--featurizer", &a.featurizer),
        one("--labels", &a.data_args.labels),
        one("--constraint-config", &a.constraint_config),
        one("--monotone-features", &a.monotone_features),
        one("--feature-directions", &a.feature_directions),
    ]
    .concat();
    let outputs = [vec![(out_flag, a.out.clone())], one("--log", &a.log)].concat();
    (inputs, outputs)
}

fn featurize_paths(a: &cli::featurize::FeaturizeArgs) -> (Flagged, Flagged) {
    use cli::featurize::FeaturizeKind;
    let (corpus, vocab, build) = match &a.kind {
        FeaturizeKind::Text(t) => (&t.corpus, t.vocab.clone(), t.build_vocab.clone()),
        FeaturizeKind::Bytes(b) => (&b.corpus, None, None),
    };
    let mut inputs: Flagged = corpus
        .classes
        .iter()
        .map(|(_, p)| ("--class", p.clone()))
        .collect();
    inputs.extend(vocab.map(|v| ("--vocab", v)));
    let spec = nonneg::features::corpus::spec_path_for(&corpus.out);
    let mut outputs = vec![("--out", corpus.out.clone()), ("--out's featurizer", spec)];
    outputs.extend(build.map(|b| ("--build-vocab", b)));
    (inputs, outputs)
}

/// More threads than any machine this runs on has cores: a typo, or a way to exhaust memory.
const MAX_THREADS: usize = 1024;

/// Reports an error on stderr (if it can be written at all) and exits with code 2.
fn fail(message: &str) -> ExitCode {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::from(2)
}
