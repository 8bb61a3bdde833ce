//! `nonneg demo`: the main job on bundled data, end to end.
//!
//! Spambase: a stratified 80/20 split (seed 0), then an unconstrained and a monotone MLP
//! trained with default settings, each evaluated on the held-out part and inspected.

use super::eval::label_metrics;
use super::train::{train_model, Trained};
use super::Context;
use anyhow::{Context as _, Result};
use clap::Args;
use nonneg::data::{self, split, LoadOptions};
use nonneg::train::{Preset, TrainConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The bundled Spambase CSV.
    #[arg(long, default_value = "data/spambase.csv")]
    pub spambase: PathBuf,
    /// Where models and plots go.
    #[arg(long, default_value = "out/demo")]
    pub out_dir: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

struct Row {
    name: &'static str,
    trained: Trained,
    auc: f64,
    accuracy: f64,
    tpr1: f64,
    negative: usize,
}

fn spambase(a: &DemoArgs, ctx: &Context) -> Result<Vec<Row>> {
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
    if !ctx.quiet {
        eprintln!(
            "Spambase: {} rows, {} features; stratified 80/20 split with seed {}: {} train, {} test",
            all.rows(),
            all.x.cols(),
            a.seed,
            train.rows(),
            test.rows()
        );
    }
    let mut rows = Vec::new();
    for (name, preset) in [
        ("unconstrained", Preset::None),
        ("last-nonneg", Preset::LastNonneg),
        ("monotone", Preset::Monotone),
    ] {
        let hidden = super::train::parse_hidden("64,32")?;
        let mut cfg = TrainConfig::new(hidden, preset);
        cfg.seed = a.seed;
        let t = train_model(&cfg, &train, None, None, ctx.quiet)?;
        let path = a.out_dir.join(format!("spambase-{name}.safetensors"));
        nonneg::model::io::save(&t.model, &path)?;
        let logits = t.model.logits(&test.x);
        let m = &label_metrics(&t.model, &logits, test.y.as_ref().unwrap())[0];
        let negative = t
            .model
            .mlp
            .layers
            .iter()
            .map(|l| l.weight.iter().filter(|&&w| w < 0.0).count())
            .sum();
        rows.push(Row {
            name,
            auc: m.auc.unwrap_or(f64::NAN),
            accuracy: m.accuracy,
            tpr1: m.tpr_at_fpr_1pct.unwrap_or(f64::NAN),
            negative,
            trained: t,
        });
    }
    Ok(rows)
}

pub fn run(a: &DemoArgs, ctx: &Context) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    let rows = spambase(a, ctx)?;
    println!("\nSpambase test set (20%, stratified, seed {}):", a.seed);
    println!(
        "{:<15} {:>8} {:>9} {:>10} {:>17} {:>9}",
        "model", "ROC AUC", "accuracy", "TPR@1%FPR", "negative weights", "time (s)"
    );
    for r in &rows {
        println!(
            "{:<15} {:>8.4} {:>9.4} {:>10.4} {:>17} {:>9.1}",
            r.name, r.auc, r.accuracy, r.tpr1, r.negative, r.trained.report.seconds
        );
    }
    println!(
        "\nmodels in {} (inspect them: nonneg inspect --model {})",
        a.out_dir.display(),
        Path::new(&a.out_dir)
            .join("spambase-monotone.safetensors")
            .display()
    );
    Ok(ExitCode::SUCCESS)
}
