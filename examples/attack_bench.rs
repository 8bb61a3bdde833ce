//! The nonneg side of `bench/attack_bench.py`: the greedy feature-addition attack on the
//! first N detected positives, timed (target selection and loading excluded, as on the
//! PyTorch side).
//!
//! `cargo run --release --example attack_bench -- --model M --data D [--index-base 0]
//!  [--targets 200] [--budget 50] [--threads 2] [--scoring auto|batched|cached]
//!  [--repeat 1] [--out result.json]`
//!
//! Prints one JSON object: the best time over the repeats, every time, the least CPU time
//! (user + system, all threads), and per target the
//! row, the step at which it was evaded and the features added (for the cross-check).

use nonneg::attack::{self, AttackConfig, Method, Scoring};
use nonneg::data::{self, IndexBase, LoadOptions};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// CPU seconds (user + system, all threads) this process has used.
fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // Safety: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let model_path = PathBuf::from(arg(&args, "--model").ok_or("--model is required")?);
    let data_path = PathBuf::from(arg(&args, "--data").ok_or("--data is required")?);
    let n_targets: usize = arg(&args, "--targets").map_or(Ok(200), |v| v.parse())?;
    let budget: usize = arg(&args, "--budget").map_or(Ok(50), |v| v.parse())?;
    let threads: usize = arg(&args, "--threads").map_or(Ok(2), |v| v.parse())?;
    let repeat: usize = arg(&args, "--repeat").map_or(Ok(1), |v| v.parse())?;
    let scoring_name = arg(&args, "--scoring").unwrap_or_else(|| "auto".into());
    let scoring = [Scoring::Auto, Scoring::Batched, Scoring::Cached]
        .into_iter()
        .find(|s| s.name() == scoring_name)
        .ok_or("--scoring: auto, batched or cached")?;
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
        require_labels: true,
        ..Default::default()
    };
    let data = data::load(&data_path, &opts)?;
    let mut cfg = AttackConfig::new(Method::Greedy, vec![budget]);
    cfg.scoring = scoring;
    let (mut rows, _) = attack::find_targets(&model, &data, 0)?;
    rows.truncate(n_targets);

    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut result = None;
    for _ in 0..repeat.max(1) {
        let (t, c) = (Instant::now(), cpu_seconds());
        let r = attack::attack_rows(&model, &data, &cfg, &rows)?;
        times.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
        result = Some(r);
    }
    let (outcomes, used, addable) = result.expect("ran at least once");
    let steps: usize = outcomes.iter().map(|o| o.added.len()).sum();
    let evaded = outcomes.iter().filter(|o| o.evaded_at.is_some()).count();
    let out = json!({
        "seconds": times.iter().copied().fold(f64::INFINITY, f64::min),
        "all_seconds": times,
        "cpu_seconds": cpu.iter().copied().fold(f64::INFINITY, f64::min),
        "scoring": used.name(),
        "threads": threads,
        "targets": outcomes.len(),
        "addable": addable,
        "steps": steps,
        "evaded": evaded,
        "rows": outcomes.iter().map(|o| o.row).collect::<Vec<_>>(),
        "evaded_at": outcomes.iter().map(|o| o.evaded_at).collect::<Vec<_>>(),
        "added": outcomes.iter().map(|o| o.added.clone()).collect::<Vec<_>>(),
    });
    match arg(&args, "--out") {
        Some(p) => std::fs::write(p, out.to_string())?,
        None => println!("{out}"),
    }
    Ok(())
}
