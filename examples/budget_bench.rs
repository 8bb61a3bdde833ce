//! Budget certificates on every positive of a data set, timed (loading excluded): the
//! threshold for a false positive rate on the clean negatives, then certified detection at
//! each budget, for IBP, CROWN and their maximum.
//!
//! `cargo run --release --example budget_bench -- --model M --data D [--index-base 0]
//!  [--budget 5,20,50,inf] [--fpr 0.01] [--threads 2] [--intermediate auto|ibp|crown]
//!  [--repeat 1] [--out per-sample.csv] [--check-greedy N]`
//!
//! Prints the report and one JSON line: the best time over the repeats and the rates.
//! `--check-greedy N`: runs the greedy attack (never stopping at a threshold) on the first
//! N positives up to the largest finite budget and checks that no attack gets below a
//! sample's bound at its budget.

use nonneg::attack::{attack_rows, AttackConfig, Method};
use nonneg::certify::budget::BudgetReport;
use nonneg::certify::budget::{
    certify_budgets, parse_budgets, threshold_at_fpr, BudgetConfig, Intermediate,
};
use nonneg::data::{self, Dataset, IndexBase, LoadOptions};
use nonneg::model::Model;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let model_path = PathBuf::from(arg(&args, "--model").ok_or("--model is required")?);
    let data_path = PathBuf::from(arg(&args, "--data").ok_or("--data is required")?);
    let budgets = parse_budgets(&arg(&args, "--budget").unwrap_or("5,20,50,inf".into()))?;
    let fpr: f64 = arg(&args, "--fpr").map_or(Ok(0.01), |v| v.parse())?;
    let threads: usize = arg(&args, "--threads").map_or(Ok(2), |v| v.parse())?;
    let repeat: usize = arg(&args, "--repeat").map_or(Ok(1), |v| v.parse())?;
    let intermediate = match arg(&args, "--intermediate").as_deref() {
        None | Some("auto") => Intermediate::Auto,
        Some("ibp") => Intermediate::Ibp,
        Some("crown") => Intermediate::Crown,
        Some(v) => return Err(format!("--intermediate auto|ibp|crown, got {v}").into()),
    };
    let index_base = match arg(&args, "--index-base").as_deref() {
        Some("0") => IndexBase::Zero,
        Some("1") => IndexBase::One,
        _ => IndexBase::Auto,
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let model = nonneg::model::io::load(&model_path)?;
    let opts = LoadOptions {
        index_base,
        n_features: Some(model.mlp.input_dim),
        ..LoadOptions::labelled()
    };
    let data = data::load(&data_path, &opts)?;
    let threshold = threshold_at_fpr(&model, &data, 0, fpr)?;
    let mut cfg = BudgetConfig::new(budgets);
    cfg.intermediate = intermediate;
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..repeat.max(1) {
        let t0 = Instant::now();
        report = Some(certify_budgets(&model, &data, &cfg, threshold)?);
        times.push(t0.elapsed().as_secs_f64());
    }
    let report = report.expect("at least one run");
    print!("{report}");
    if let Some(out) = arg(&args, "--out") {
        std::fs::write(out, report.csv_text())?;
    }
    let checked = match arg(&args, "--check-greedy") {
        Some(n) => Some(check_greedy(&model, &data, &report, n.parse()?)?),
        None => None,
    };
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let rates: Vec<_> = report
        .rates
        .iter()
        .map(|r| json!({"budget": r.budget, "certified": r.rate, "ibp": r.ibp_rate, "crown": r.crown_rate}))
        .collect();
    println!(
        "{}",
        json!({
            "seconds": best, "times": times, "threads": threads, "positives": report.positives,
            "clean": report.clean_rate, "monotone": report.monotone, "rates": rates,
            "greedy_checked": checked,
        })
    );
    Ok(())
}

/// Greedy attacks on the first `n` positives: the lowest logit within each finite budget
/// must not be below the sample's bound. Returns how many (sample, budget) pairs it checked.
fn check_greedy(
    model: &Model,
    data: &Dataset,
    report: &BudgetReport,
    n: usize,
) -> Result<usize, Box<dyn std::error::Error>> {
    let mut m = model.clone();
    m.threshold = vec![f32::NEG_INFINITY; m.threshold.len()];
    let kmax = report.rates.iter().filter_map(|r| r.budget.finite()).max();
    let Some(kmax) = kmax.filter(|&k| k > 0) else {
        return Ok(0);
    };
    let samples = &report.samples[..n.min(report.samples.len())];
    let rows: Vec<usize> = samples.iter().map(|s| s.row).collect();
    let cfg = AttackConfig::new(Method::Greedy, vec![kmax]);
    let (outcomes, _, _) = attack_rows(&m, data, &cfg, &rows)?;
    let mut checked = 0;
    for (s, o) in samples.iter().zip(&outcomes) {
        for (b, r) in report.rates.iter().enumerate() {
            let Some(k) = r.budget.finite() else { continue };
            let lowest = o.logits[..k.min(o.logits.len())]
                .iter()
                .fold(o.initial_logit, |a, &v| a.min(v));
            let tol = 1e-4 * (1.0 + lowest.abs());
            if lowest < s.bound[b] - tol {
                return Err(format!(
                    "row {}: greedy reaches {lowest} within {k} additions, below the bound {}",
                    s.row, s.bound[b]
                )
                .into());
            }
            checked += 1;
        }
    }
    Ok(checked)
}
