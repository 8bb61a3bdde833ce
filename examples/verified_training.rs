//! The measurement of docs/verified-training.md: a model's clean TPR and its certified TPR
//! at each budget, with the budget certificates of `certify --budget` (the tightest of
//! IBP and CROWN; both also reported), at the threshold for a target FPR on the clean
//! negatives of the data.
//!
//! `cargo run --release --example verified_training -- --model M --data D
//!  [--budgets 5,20,50] [--fpr 0.01] [--attack]`
//!
//! `--data` is svmlight numbered from 1 (what `featurize` writes); prints one JSON line.
//! With `--attack`, the greedy attack runs on every certified spam up to the largest
//! budget, and `evaded` counts those it evades within the budget they are certified at
//! (soundness says 0).

use nonneg::attack::{attack_rows, AttackConfig, Method};
use nonneg::certify::budget::{certify_budgets, Budget, BudgetConfig};
use nonneg::data::{self, IndexBase, LoadOptions};
use nonneg::metrics::threshold_for_fpr;
use serde_json::json;
use std::path::PathBuf;

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
    let budgets: Vec<usize> = arg(&args, "--budgets")
        .unwrap_or_else(|| "5,20,50".into())
        .split(',')
        .map(|b| b.trim().parse())
        .collect::<Result<_, _>>()?;
    let fpr: f64 = arg(&args, "--fpr").map_or(Ok(0.01), |f| f.parse())?;
    let model = nonneg::model::io::load(&model_path)?;
    let mut opts = LoadOptions::labelled();
    opts.n_features = Some(model.mlp.input_dim);
    opts.index_base = IndexBase::One;
    let d = data::load(&data_path, &opts)?;
    let y = d.y.as_ref().ok_or("the data has no labels")?;
    let clean = model.logits(&d.x);
    let thr = threshold_for_fpr(&clean, y, fpr).ok_or("the data has no negatives")?;
    let positives = y.iter().filter(|&&t| t >= 0.5).count().max(1) as f64;
    let rate = |s: &[f32]| {
        let hit = s
            .iter()
            .zip(y)
            .filter(|(&s, &t)| t >= 0.5 && s >= thr)
            .count();
        hit as f64 / positives
    };
    // The tightest certificate: `certify --budget`'s engine, max(IBP, CROWN).
    let cfg = BudgetConfig::new(budgets.iter().map(|&k| Budget::Finite(k)).collect());
    let report = certify_budgets(&model, &d, &cfg, thr)?;
    let mut certified = serde_json::Map::new();
    let mut at = Vec::new();
    for (b, (&k, r)) in budgets.iter().zip(&report.rates).enumerate() {
        certified.insert(
            k.to_string(),
            json!({"tpr": r.rate, "ibp_tpr": r.ibp_rate, "crown_tpr": r.crown_rate}),
        );
        let rows: Vec<usize> = report
            .samples
            .iter()
            .filter(|s| s.bound[b] >= thr)
            .map(|s| s.row)
            .collect();
        at.push((k, rows));
    }
    certified.insert("seconds".into(), json!(report.seconds));
    let mut out = json!({"threshold": thr, "clean_tpr": rate(&clean), "certified": certified});
    if args.iter().any(|a| a == "--attack") {
        let mut m = model.clone();
        m.threshold = vec![thr];
        let top = budgets.iter().copied().max().unwrap_or(1);
        // Certified at the smallest budget: a superset of the others.
        let rows = at
            .iter()
            .min_by_key(|p| p.0)
            .map_or(vec![], |p| p.1.clone());
        let cfg = AttackConfig::new(Method::Greedy, vec![top]);
        let (outcomes, _, _) = attack_rows(&m, &d, &cfg, &rows)?;
        let evaded: usize = at
            .iter()
            .map(|(k, certified)| {
                outcomes
                    .iter()
                    .filter(|o| certified.binary_search(&o.row).is_ok())
                    .filter(|o| o.evaded_at.is_some_and(|s| s <= *k))
                    .count()
            })
            .sum();
        out["greedy_evaded_certified"] = json!(evaded);
        out["greedy_attacked"] = json!(rows.len());
    }
    println!("{out}");
    Ok(())
}
