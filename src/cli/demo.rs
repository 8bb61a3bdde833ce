//! `nonneg demo`: the main job on bundled data, end to end. The experiment is
//! [`nonneg::pipeline::demo`]; this prints its tables (stdout) and progress (stderr).

use super::progress::{Spinner, TrainProgress};
use super::Context;
use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use nonneg::pipeline::demo::{self, AttackPlan, SpamAssassinRow, MODELS};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoData {
    Spamassassin,
    Spambase,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// spamassassin (raw emails, certify and attack) or spambase (tabular).
    #[arg(long, value_enum, default_value_t = DemoData::Spamassassin)]
    pub dataset: DemoData,
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

fn spamassassin(a: &DemoArgs, ctx: &Context) -> Result<()> {
    let plan = AttackPlan {
        budgets: nonneg::attack::parse_budgets(&a.budget)?,
        limit: (a.limit > 0).then_some(a.limit),
        seed: a.seed,
    };
    let spinner = Spinner::start(ctx.quiet, "featurizing the SpamAssassin corpus");
    let data = demo::load_spamassassin(&a.spamassassin);
    spinner.finish();
    let data = data?;
    crate::cli::outln!(
        "SpamAssassin, read from {}: train on *-1 ({} emails), test on *-2 ({} emails); \
         binary token presence, {} features (vocabulary from training only); featurized in {:.1}s",
        a.spamassassin.display(),
        data.train.rows(),
        data.test.rows(),
        data.spec.n_features(),
        data.seconds
    )?;
    let mut rows = Vec::new();
    let models = MODELS
        .iter()
        .map(|&(name, preset)| (name, demo::options(preset, a.seed)))
        .chain([(demo::VERIFIED, demo::verified_options(a.seed))]);
    for (name, opts) in models {
        let mut bar = TrainProgress::new(ctx.quiet, false);
        let r = demo::spamassassin_model(name, opts, &data, &plan, &a.out_dir, &mut |p| {
            bar.observe(p)
        })?;
        bar.finish()?;
        if !ctx.quiet {
            crate::cli::errln!(
                "{name}: trained in {:.1}s, certify: {}, greedy attack on {} detected spam \
                 and at 1% and 0.1% FPR, budget certificates, in {:.1}s",
                r.fitted.report.seconds,
                r.certified,
                r.evasion.first().map_or(0, |b| b.targets),
                r.attack_seconds
            )?;
        }
        rows.push(r);
    }
    print_evasion_table(&rows, &plan.budgets, a.limit)?;
    for f in 0..nonneg::pipeline::budget_eval::FPRS.len() {
        print_operating_point_table(&rows, f)?;
    }
    let plot = demo::write_spamassassin_outputs(&rows, &plan.budgets, &a.out_dir)?;
    crate::cli::outln!(
        "models and summary.json in {}, evasion plot {} (training took {:.1}s in all)",
        a.out_dir.display(),
        plot.display(),
        rows.iter().map(|r| r.fitted.report.seconds).sum::<f64>()
    )?;
    Ok(())
}

fn print_evasion_table(rows: &[SpamAssassinRow], budgets: &[usize], limit: usize) -> Result<()> {
    crate::cli::outln!(
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
    )?;
    for r in rows {
        crate::cli::outln!(
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
        )?;
    }
    crate::cli::outln!(
        "\nevasion = share of the detected test spam ({}) that the white-box greedy attack \
         pushes below the model's threshold by adding at most that many features",
        if limit > 0 {
            format!("the first {limit} per model; --limit 0 for all")
        } else {
            rows.iter()
                .map(|r| format!("{} {}", r.evasion.first().map_or(0, |b| b.targets), r.name))
                .collect::<Vec<_>>()
                .join(", ")
        }
    )?;
    Ok(())
}

fn print_operating_point_table(rows: &[SpamAssassinRow], f: usize) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let points = &first.detection[f].points;
    crate::cli::outln!(
        "\nAt {}% false positives on the test ham: share of ALL test spam detected, clean, \
         after the greedy attack (att.) and certified against ANY such additions (cert.)\n\
         {:<14} {:>6} {}",
        100.0 * first.detection[f].fpr,
        "model",
        "clean",
        points
            .iter()
            .map(|p| match p.empirical {
                Some(_) => format!(
                    "{:>8}{:>8}",
                    format!("att.{}", p.budget),
                    format!("cert.{}", p.budget)
                ),
                None => format!("{:>9}", format!("cert.{}", p.budget)),
            })
            .collect::<String>()
    )?;
    for r in rows {
        let d = &r.detection[f];
        crate::cli::outln!(
            "{:<14} {:>5.1}% {}",
            r.name,
            100.0 * d.clean,
            d.points
                .iter()
                .map(|p| match p.empirical {
                    Some(e) => format!("{:>7.1}%{:>7.1}%", 100.0 * e, 100.0 * p.certified),
                    None => format!("{:>8.1}%", 100.0 * p.certified),
                })
                .collect::<String>()
        )?;
    }
    Ok(())
}

fn spambase(a: &DemoArgs, ctx: &Context) -> Result<()> {
    let data = demo::load_spambase(&a.spambase, a.seed)
        .with_context(|| format!("the demo needs {}", a.spambase.display()))?;
    crate::cli::outln!(
        "Spambase: {} rows, {} features; stratified 80/20 split, seed {}: {} train, {} test",
        data.rows,
        data.features,
        a.seed,
        data.train.rows(),
        data.test.rows()
    )?;
    crate::cli::outln!(
        "\n{:<15} {:>8} {:>9} {:>10} {:>17} {:>10}",
        "model",
        "ROC AUC",
        "accuracy",
        "TPR@1%FPR",
        "negative weights",
        "certified"
    )?;
    for (name, preset) in MODELS {
        let mut bar = TrainProgress::new(ctx.quiet, false);
        let r = demo::spambase_model(name, preset, &data, a.seed, &a.out_dir, &mut |p| {
            bar.observe(p)
        })?;
        bar.finish()?;
        crate::cli::outln!(
            "{:<15} {:>8.4} {:>9.4} {:>10.4} {:>17} {:>10}",
            r.name,
            r.auc,
            r.accuracy,
            r.tpr1,
            r.negative,
            if r.certified { "yes" } else { "no" }
        )?;
    }
    crate::cli::outln!("\nmodels in {}", a.out_dir.display())?;
    Ok(())
}

pub fn run(a: &DemoArgs, ctx: &Context) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    match a.dataset {
        DemoData::Spambase => spambase(a, ctx)?,
        DemoData::Spamassassin => spamassassin(a, ctx)?,
    }
    Ok(ExitCode::SUCCESS)
}
