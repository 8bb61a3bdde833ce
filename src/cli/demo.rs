//! `nonneg demo`: the main job on bundled data, end to end.
//!
//! SpamAssassin (default): featurize the bundled corpus straight from its archives
//! (vocabulary from the older `*-1` collections only, test on the newer `*-2`), train an
//! unconstrained, a last-layer-NonNeg and a monotone model, certify each, attack each with
//! the white-box greedy feature-addition attack, and print one table plus an evasion plot.
//! Spambase (`--dataset spambase`): the tabular version, without attacks.

use super::eval::label_metrics;
use super::train::{parse_hidden, train_model, Trained};
use super::Context;
use anyhow::{bail, Context as _, Result};
use clap::Args;
use nonneg::attack::{self, AttackConfig, BudgetResult, Method};
use nonneg::data::{self, split, Dataset, Features, LoadOptions};
use nonneg::features::corpus::{featurize_corpus, SpecSource};
use nonneg::features::text::{TextOptions, ValueMode};
use nonneg::train::{Preset, TrainConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// spamassassin (raw emails, certify and attack) or spambase (tabular).
    #[arg(long, default_value = "spamassassin", value_parser = ["spamassassin", "spambase"])]
    pub dataset: String,
    /// Folder with the SpamAssassin collections as `<name>.tar.gz` (or folders).
    #[arg(long, default_value = "data/spamassassin")]
    pub spamassassin: PathBuf,
    /// The bundled Spambase CSV.
    #[arg(long, default_value = "data/spambase.csv")]
    pub spambase: PathBuf,
    /// Where models and plots go.
    #[arg(long, default_value = "out/demo")]
    pub out_dir: PathBuf,
    /// Greedy attack budgets (features added).
    #[arg(long, default_value = "5,20,50")]
    pub budget: String,
    /// Attack the first this many detected spam emails per model (0: all of them, about a
    /// minute: the monotone model's tanh units need the exact batched scorer).
    #[arg(long, default_value_t = 300)]
    pub limit: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The three models of the comparison: `nonneg train`'s defaults for each constraint
/// preset (the monotone one with its recipe: tanh, a skip connection, L2 1e-2).
fn configs(seed: u64) -> Result<Vec<(&'static str, TrainConfig)>> {
    let mut out = Vec::new();
    for (name, preset) in [
        ("unconstrained", Preset::None),
        ("last-nonneg", Preset::LastNonneg),
        ("monotone", Preset::Monotone),
    ] {
        let mut cfg = TrainConfig::new(parse_hidden("64,32")?, preset);
        cfg.use_recipe(true);
        cfg.seed = seed;
        out.push((name, cfg));
    }
    Ok(out)
}

/// Looks for `<name>.tar.gz`, then `<name>/`.
fn collection(dir: &Path, name: &str) -> Result<PathBuf> {
    for p in [dir.join(format!("{name}.tar.gz")), dir.join(name)] {
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "the demo needs the SpamAssassin collection {name} in {}",
        dir.display()
    )
}

fn sparse_dataset(x: nonneg::data::CsrMatrix, y: Vec<f32>, source: &str) -> Dataset {
    Dataset {
        x: Features::Sparse(x),
        y: Some(y),
        n_labels: 1,
        label_names: vec!["spam".into()],
        feature_names: None,
        source: source.into(),
    }
}

struct Row {
    name: &'static str,
    trained: Trained,
    auc: f64,
    accuracy: f64,
    tpr1: f64,
    certified: bool,
    evasion: Vec<BudgetResult>,
    /// At the test threshold giving 1% false positives: the share of all test spam detected
    /// before the attack, and the greedy attack's results there.
    detected_at_1pct: f64,
    evasion_at_1pct: Vec<BudgetResult>,
}

impl Row {
    /// Share of all test spam still detected after the greedy attack with `budget`
    /// additions, at the 1%-FPR threshold (the evasion rate is measured on the attacked
    /// targets: all of them with `--limit 0`, else the first ones).
    fn detected_under_attack(&self, k: usize) -> f64 {
        self.detected_at_1pct * (1.0 - self.evasion_at_1pct[k].evasion_rate)
    }
}

fn spamassassin(a: &DemoArgs, ctx: &Context) -> Result<()> {
    let dir = &a.spamassassin;
    let c = |class: &str, name: &str| -> Result<(String, PathBuf)> {
        Ok((class.to_string(), collection(dir, name)?))
    };
    let train_classes = [
        c("spam", "spam-1")?,
        c("ham", "easy-ham-1")?,
        c("ham", "hard-ham-1")?,
    ];
    let test_classes = [c("spam", "spam-2")?, c("ham", "easy-ham-2")?];
    let options = TextOptions {
        header_tokens: true,
        url_hosts: true,
        raw_headers: true,
        value: ValueMode::Binary,
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let train_corpus = featurize_corpus(
        &train_classes,
        "spam",
        SpecSource::BuildVocabulary {
            options,
            min_df: 2,
            max_features: None,
        },
    )?;
    let spec = train_corpus.spec.clone();
    let test_corpus = featurize_corpus(&test_classes, "spam", SpecSource::Fixed(spec.clone()))?;
    println!(
        "SpamAssassin, read from {}: train on *-1 ({} emails), test on *-2 ({} emails); \
         binary token presence, {} features (vocabulary from training only); featurized in {:.1}s",
        dir.display(),
        train_corpus.x.rows,
        test_corpus.x.rows,
        spec.n_features(),
        t0.elapsed().as_secs_f64()
    );
    let train = sparse_dataset(train_corpus.x, train_corpus.y, "spamassassin *-1");
    let test = sparse_dataset(test_corpus.x, test_corpus.y, "spamassassin *-2");
    let budgets = attack::parse_budgets(&a.budget)?;
    let mut rows = Vec::new();
    for (name, cfg) in configs(a.seed)? {
        let mut t = train_model(&cfg, &train, None, None, ctx.quiet)?;
        t.model.featurizer = Some(serde_json::to_value(&spec)?);
        let path = a.out_dir.join(format!("spamassassin-{name}.safetensors"));
        nonneg::model::io::save(&t.model, &path)?;
        let logits = t.model.logits(&test.x);
        let m = &label_metrics(&t.model, &logits, test.y.as_ref().unwrap())[0];
        let certificate = nonneg::certify::certify(&t.model, None);
        let mut acfg = AttackConfig::new(Method::Greedy, budgets.clone());
        acfg.seed = a.seed;
        acfg.limit = (a.limit > 0).then_some(a.limit);
        let report = attack::attack(&t.model, &test, &acfg)?;
        // The same attack at a common operating point: 1% false positives on the test ham.
        let y = test.y.as_ref().unwrap();
        let thr = nonneg::metrics::threshold_for_fpr(&logits, y, 0.01)
            .context("the test data has no ham")?;
        let mut at_1pct = t.model.clone();
        at_1pct.threshold = vec![thr];
        let report_1pct = attack::attack(&at_1pct, &test, &acfg)?;
        let spam = y.iter().filter(|&&v| v > 0.5).count();
        let detected = logits
            .iter()
            .zip(y)
            .filter(|(&l, &v)| v > 0.5 && l >= thr)
            .count();
        if !ctx.quiet {
            eprintln!(
                "{name}: trained in {:.1}s, certify: {}, greedy attack on {} + {} detected spam in {:.1}s",
                t.report.seconds,
                certificate.certified,
                report.results.first().map_or(0, |r| r.targets),
                report_1pct.results.first().map_or(0, |r| r.targets),
                report.seconds + report_1pct.seconds
            );
        }
        rows.push(Row {
            name,
            auc: m.auc.unwrap_or(f64::NAN),
            accuracy: m.accuracy,
            tpr1: m.tpr_at_fpr_1pct.unwrap_or(f64::NAN),
            certified: certificate.certified,
            evasion: report.results,
            detected_at_1pct: detected as f64 / spam.max(1) as f64,
            evasion_at_1pct: report_1pct.results,
            trained: t,
        });
    }
    println!(
        "\n{:<14} {:>8} {:>8} {:>10} {:>10} {}",
        "model",
        "accuracy",
        "ROC AUC",
        "TPR@1%FPR",
        "certified",
        budgets
            .iter()
            .map(|b| format!("{:>12}", format!("evasion@{b}")))
            .collect::<String>()
    );
    for r in &rows {
        println!(
            "{:<14} {:>8.4} {:>8.4} {:>10.4} {:>10} {}",
            r.name,
            r.accuracy,
            r.auc,
            r.tpr1,
            if r.certified { "yes" } else { "no" },
            r.evasion
                .iter()
                .map(|b| format!("{:>12}", format!("{:.1}%", 100.0 * b.evasion_rate)))
                .collect::<String>()
        );
    }
    println!(
        "\nevasion = share of the detected test spam ({}) that the white-box greedy attack \
         pushes below the model's threshold by adding at most that many features",
        if a.limit > 0 {
            format!("the first {} per model; --limit 0 for all", a.limit)
        } else {
            rows.iter()
                .map(|r| format!("{} {}", r.evasion.first().map_or(0, |b| b.targets), r.name))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "\nAt a common operating point, 1% false positives on the test ham: share of ALL test \
         spam detected after the same attack\n{:<14} {}",
        "model",
        std::iter::once("no attack".to_string())
            .chain(budgets.iter().map(|b| format!("budget {b}")))
            .map(|h| format!("{h:>11}"))
            .collect::<String>()
    );
    for r in &rows {
        println!(
            "{:<14} {:>10.1}% {}",
            r.name,
            100.0 * r.detected_at_1pct,
            (0..budgets.len())
                .map(|k| format!("{:>10.1}%", 100.0 * r.detected_under_attack(k)))
                .collect::<String>()
        );
    }
    let summary: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "model": r.name, "accuracy": r.accuracy, "auc": r.auc,
                "tpr_at_fpr_1pct": r.tpr1, "certified": r.certified, "evasion": r.evasion,
                "at_fpr_1pct": {
                    "detected": r.detected_at_1pct,
                    "detected_under_attack": (0..budgets.len())
                        .map(|k| serde_json::json!({
                            "budget": budgets[k], "detected": r.detected_under_attack(k)
                        }))
                        .collect::<Vec<_>>(),
                    "evasion": r.evasion_at_1pct,
                },
            })
        })
        .collect();
    attack::write_json(
        &a.out_dir.join("summary.json"),
        &serde_json::json!({ "models": summary }),
    )?;
    let plot = a.out_dir.join("evasion.png");
    let runs: Vec<(String, Vec<BudgetResult>)> = rows
        .iter()
        .map(|r| (r.name.to_string(), r.evasion.clone()))
        .collect();
    attack::plot_curves(
        &runs,
        "Greedy feature-addition attack, SpamAssassin *-2",
        &plot,
    )?;
    println!(
        "models and summary.json in {}, evasion plot {} (training took {:.1}s in all)",
        a.out_dir.display(),
        plot.display(),
        rows.iter().map(|r| r.trained.report.seconds).sum::<f64>()
    );
    Ok(())
}

fn spambase(a: &DemoArgs, ctx: &Context) -> Result<()> {
    let opts = LoadOptions {
        label_column: Some("type".into()),
        positive: Some("spam".into()),
        require_labels: true,
        ..Default::default()
    };
    let all = data::load(&a.spambase, &opts)
        .with_context(|| format!("the demo needs {}", a.spambase.display()))?;
    let (tr, te) = split::stratified_split(&all, 0.2, a.seed)?;
    let (train, test) = (split::subset(&all, &tr), split::subset(&all, &te));
    println!(
        "Spambase: {} rows, {} features; stratified 80/20 split, seed {}: {} train, {} test",
        all.rows(),
        all.x.cols(),
        a.seed,
        train.rows(),
        test.rows()
    );
    println!(
        "\n{:<15} {:>8} {:>9} {:>10} {:>17} {:>10}",
        "model", "ROC AUC", "accuracy", "TPR@1%FPR", "negative weights", "certified"
    );
    for (name, preset) in [
        ("unconstrained", Preset::None),
        ("last-nonneg", Preset::LastNonneg),
        ("monotone", Preset::Monotone),
    ] {
        let mut cfg = TrainConfig::new(parse_hidden("64,32")?, preset);
        cfg.seed = a.seed;
        let t = train_model(&cfg, &train, None, None, ctx.quiet)?;
        nonneg::model::io::save(
            &t.model,
            &a.out_dir.join(format!("spambase-{name}.safetensors")),
        )?;
        let logits = t.model.logits(&test.x);
        let m = &label_metrics(&t.model, &logits, test.y.as_ref().unwrap())[0];
        let negative: usize = t
            .model
            .mlp
            .layers
            .iter()
            .chain(&t.model.mlp.skip)
            .map(|l| l.weight.iter().filter(|&&w| w < 0.0).count())
            .sum();
        println!(
            "{:<15} {:>8.4} {:>9.4} {:>10.4} {:>17} {:>10}",
            name,
            m.auc.unwrap_or(f64::NAN),
            m.accuracy,
            m.tpr_at_fpr_1pct.unwrap_or(f64::NAN),
            negative,
            if nonneg::certify::certify(&t.model, None).certified {
                "yes"
            } else {
                "no"
            }
        );
    }
    println!("\nmodels in {}", a.out_dir.display());
    Ok(())
}

pub fn run(a: &DemoArgs, ctx: &Context) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    match a.dataset.as_str() {
        "spambase" => spambase(a, ctx)?,
        _ => spamassassin(a, ctx)?,
    }
    Ok(ExitCode::SUCCESS)
}
