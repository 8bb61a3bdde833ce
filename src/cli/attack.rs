//! `nonneg attack`: feature-addition attacks on one or several models, on feature files
//! (`--data`) or raw samples (`--class NAME=PATH`), and the raw-space good-words attack.

use super::progress::Spinner;
use super::{featurize_raw, load_data, load_model, Context, DataArgs};
use anyhow::{bail, Context as _, Result};
use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};
use nonneg::attack::raw::{self, GoodWordsConfig, WordSource};
use nonneg::attack::report::{self, display_names, Run};
use nonneg::attack::{self, AttackConfig, BudgetResult, Method, Scoring};
use nonneg::data::feature_list::resolve_feature_list;
use nonneg::model::Model;
use std::path::PathBuf;
use std::process::ExitCode;

/// `--method`: a feature-space method, or the good-words attack on raw emails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodArg {
    Features(Method),
    GoodWords,
}

impl ValueEnum for MethodArg {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            MethodArg::Features(Method::Greedy),
            MethodArg::Features(Method::Gradient),
            MethodArg::Features(Method::Query),
            MethodArg::Features(Method::Random),
            MethodArg::GoodWords,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self {
            MethodArg::Features(m) => m.to_possible_value(),
            MethodArg::GoodWords => Some(PossibleValue::new("good-words")),
        }
    }
}

#[derive(Args, Debug)]
pub struct AttackArgs {
    /// Model(s) to attack; repeat (`--model A --model B`) to compare them on one chart.
    #[arg(long, required = true)]
    pub model: Vec<PathBuf>,
    /// Labelled data; the targets are its positives that the model detects.
    #[arg(long, required_unless_present = "classes")]
    pub data: Option<PathBuf>,
    /// Raw samples instead of --data, for a model with a featurizer: NAME=PATH (directory,
    /// file or .tar/.tar.gz/.tar.bz2), repeatable; the attacked class is --positive or the
    /// first NAME. Needed by --method good-words.
    #[arg(long = "class", value_name = "NAME=PATH", value_parser = super::featurize::parse_class, conflicts_with = "data")]
    pub classes: Vec<(String, PathBuf)>,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// greedy (white box, exact), gradient (white box, JSMA-like), query (black box,
    /// scores only), random, or good-words (append real words to raw emails; --class).
    #[arg(long, value_enum, default_value = "greedy")]
    pub method: MethodArg,
    /// good-words: pick words greedily on the model (model, white box) or take words much
    /// more frequent in ham than in spam, in that order (ham, black box; needs a
    /// non-attacked --class).
    #[arg(long, value_enum, default_value = "model")]
    pub good_words_source: WordSource,
    /// Budgets (features added), e.g. 1,5,10,20,50; the attack runs once to the largest.
    #[arg(long, default_value = "1,5,10,20,50")]
    pub budget: String,
    /// Features the attacker may add: one name or 0-based index per line, `#` comments
    /// (default: all).
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Raise an added feature to this value (default: its maximum in the training data).
    #[arg(long)]
    pub max_value: Option<f32>,
    /// Attack only the first N detected positives (row order); 0 means all, as in `demo`.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the query and random attacks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Query attack: candidates evaluated per step.
    #[arg(long, default_value_t = 64)]
    pub queries_per_step: usize,
    /// The attacked label: index or name (default: the first).
    #[arg(long)]
    pub label: Option<String>,
    /// Candidate scorer: auto, batched or cached (both exact; for benchmarks).
    #[arg(long, value_enum, default_value = "auto")]
    pub scoring: Scoring,
    /// Print the results as one JSON object on stdout instead of the tables
    /// (`{"method", "models": [{"model", "results", "targets"}]}`).
    #[arg(long)]
    pub json: bool,
    /// Write that JSON object to this file (the tables still print unless --json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the per-budget results as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Draw evasion rate against budget (one line per model) to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

fn resolve_label(model: &Model, label: Option<&str>) -> Result<usize> {
    let Some(s) = label else { return Ok(0) };
    if let Some(i) = model.label_names.iter().position(|n| n == s) {
        return Ok(i);
    }
    match s.parse::<usize>() {
        Ok(i) if i < model.mlp.n_labels() => Ok(i),
        _ => bail!(
            "--label `{s}`: not a label of the model (labels: {})",
            model.label_names.join(", ")
        ),
    }
}

pub fn run(a: &AttackArgs, ctx: &Context) -> Result<ExitCode> {
    let method = match a.method {
        MethodArg::GoodWords => return run_good_words(a, ctx),
        MethodArg::Features(m) => m,
    };
    let budgets = attack::parse_budgets(&a.budget)?;
    if method == Method::Query && a.queries_per_step == 0 {
        bail!("--queries-per-step must be at least 1");
    }
    if let Some(v) = a.max_value {
        // Adding a feature raises it: a negative (or zero) value would "add" nothing, and
        // report a model that is fully evadable as robust.
        if !(v > 0.0 && v.is_finite()) {
            bail!("--max-value must be a positive number, got {v}");
        }
    }
    let features_text = match &a.features {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| nonneg::Error::io(p, e))
                .context("cannot read --features")?,
        ),
        None => None,
    };
    let names = display_names(&a.model);
    let mut runs: Vec<Run> = Vec::new();
    for (path, name) in a.model.iter().zip(&names) {
        let model = load_model(path)?;
        let data = match &a.data {
            Some(d) => load_data(d, &a.data_args, Some(&model), true)?,
            None => featurize_raw(&model, &a.classes, &attacked_class(a), ctx.quiet)?.0,
        };
        let addable = match (&features_text, &a.features) {
            (Some(text), Some(p)) => {
                let names = model
                    .feature_names
                    .as_deref()
                    .or(data.feature_names.as_deref());
                Some(resolve_feature_list(names, model.mlp.input_dim, text, p)?)
            }
            _ => None,
        };
        let cfg = AttackConfig {
            method,
            budgets: budgets.clone(),
            addable,
            max_value: a.max_value,
            limit: a.limit.filter(|&n| n > 0),
            seed: a.seed,
            queries_per_step: a.queries_per_step,
            label: resolve_label(&model, a.label.as_deref())?,
            scoring: a.scoring,
        };
        let spinner = Spinner::start(ctx.quiet, format!("{name}: {} attack", method.name()));
        let report = attack::attack(&model, &data, &cfg);
        spinner.finish();
        let report = report.with_context(|| format!("attacking {}", path.display()))?;
        if !a.json {
            let sep = if runs.is_empty() { "" } else { "\n" };
            super::write_output(None, &format!("{sep}{}", report::table(name, &report)))?;
        }
        if !ctx.quiet {
            crate::cli::errln!(
                "{name}: {} targets attacked in {:.2}s ({} scoring)",
                report.outcomes.len(),
                report.seconds,
                report.scoring
            )?;
        }
        let feature_names = nonneg::certify::feature_names(&model);
        runs.push(Run::of_features(
            path.display().to_string(),
            &report,
            feature_names.as_deref(),
        ));
    }
    write_outputs(a, method.name(), &names, &runs)?;
    Ok(ExitCode::SUCCESS)
}

/// The attacked class of `--class` samples: --positive, else the first NAME.
fn attacked_class(a: &AttackArgs) -> String {
    a.data_args
        .positive
        .clone()
        .unwrap_or_else(|| a.classes[0].0.clone())
}

/// Reads every sample of the `--class` entries named (or not named) `positive`.
fn read_samples(
    a: &AttackArgs,
    positive: &str,
    of_positive: bool,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (name, path) in a
        .classes
        .iter()
        .filter(|(n, _)| (n == positive) == of_positive)
    {
        let listing = nonneg::features::source::list(path)
            .with_context(|| format!("cannot read --class {name}={}", path.display()))?;
        for s in &listing.samples {
            out.push((s.name.clone(), s.bytes()?.into_owned()));
        }
    }
    Ok(out)
}

fn run_good_words(a: &AttackArgs, ctx: &Context) -> Result<ExitCode> {
    if a.data.is_some() || a.classes.is_empty() {
        bail!("--method good-words edits raw emails: give them with --class NAME=PATH, not --data");
    }
    if a.features.is_some() || a.max_value.is_some() {
        bail!("--features and --max-value do not apply to --method good-words");
    }
    let source = a.good_words_source;
    let budgets = attack::parse_budgets(&a.budget)?;
    let positive = attacked_class(a);
    if !a.classes.iter().any(|(n, _)| *n == positive) {
        bail!("--positive `{positive}` is not one of the --class names");
    }
    let spam = read_samples(a, &positive, true)?;
    let ham = read_samples(a, &positive, false)?;
    if source == WordSource::Ham && ham.is_empty() {
        bail!("--good-words-source ham needs ham samples: add --class ham=PATH");
    }
    let names = display_names(&a.model);
    let mut runs: Vec<Run> = Vec::new();
    for (path, name) in a.model.iter().zip(&names) {
        let model = load_model(path)?;
        let Some(spec) = model.featurizer.clone() else {
            bail!(
                "{}: the model has no featurizer, so raw emails cannot be scored",
                path.display()
            );
        };
        let cfg = GoodWordsConfig {
            label: resolve_label(&model, a.label.as_deref())?,
            limit: a.limit.filter(|&n| n > 0),
            ..GoodWordsConfig::new(source, budgets.clone())
        };
        let spinner = Spinner::start(ctx.quiet, format!("{name}: good-words attack"));
        let report = raw::good_words_attack(
            &model,
            &spec,
            &spam,
            (!ham.is_empty()).then_some(&ham[..]),
            &cfg,
        );
        spinner.finish();
        let report = report.with_context(|| format!("attacking {}", path.display()))?;
        if !a.json {
            let sep = if runs.is_empty() { "" } else { "\n" };
            super::write_output(
                None,
                &format!("{sep}{}", report::good_words_table(name, &report)),
            )?;
        }
        if !ctx.quiet {
            crate::cli::errln!(
                "{name}: {} targets attacked in {:.2}s",
                report.outcomes.len(),
                report.seconds
            )?;
        }
        runs.push(Run::of_words(path.display().to_string(), &report));
    }
    write_outputs(a, "good-words", &names, &runs)?;
    Ok(ExitCode::SUCCESS)
}

fn write_outputs(a: &AttackArgs, method: &str, names: &[String], runs: &[Run]) -> Result<()> {
    let v = report::report_json(method, runs);
    if a.json {
        super::write_output(None, &format!("{v}\n"))?;
    }
    if let Some(p) = &a.out {
        super::write_output(Some(p), &format!("{v}\n"))?;
    }
    if let Some(p) = &a.csv {
        super::write_output(Some(p), &report::csv_text(runs))?;
    }
    if let Some(p) = &a.plot {
        let title = format!("Evasion rate vs budget ({method} attack)");
        let curves: Vec<(String, Vec<BudgetResult>)> = names
            .iter()
            .zip(runs)
            .map(|(n, r)| (n.clone(), r.results.clone()))
            .collect();
        report::plot_curves(&curves, &title, p)?;
    }
    Ok(())
}
