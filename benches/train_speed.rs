//! Training throughput of nonneg on the benchmark models (see bench/compare_train.py,
//! which runs PyTorch on the same models side by side and prints the ratio).
//!
//! `cargo bench --bench train_speed -- --case dense|sparse [--threads N[,N...]] [--seconds S]`
//! prints one JSON line per thread count with samples per second and the CPU time the timed steps used
//! (all threads: above the wall time times the busy threads when threads spin or wait
//! on each other). bench/scaling.py runs it for 1-16 threads beside PyTorch.

// The random-data generators shared with the tests.
#[path = "../tests/common/mod.rs"]
mod common;

use nonneg::data::Dataset;
use nonneg::model::Activation;
use nonneg::rng::Rng;
use nonneg::train::{build_network, Preset, TrainConfig, Trainer};
use std::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (a) dense: 16,384 rows of N(0,1) with 2381 features (the EMBER width).
fn dense_data(rng: &mut Rng) -> Dataset {
    let (rows, cols) = (16_384, 2381);
    let x = common::dense_normal(rows, cols, rng);
    common::dataset(x, common::random_labels(rows, 1, rng), 1)
}

/// (b) sparse binary: 2^20 features, ~300 active per row drawn Zipf-like, as hashed
/// n-gram features are.
fn sparse_data(rows: usize, rng: &mut Rng) -> Dataset {
    let x = common::sparse_zipf_binary(rows, 1 << 20, 300, rng);
    common::dataset(x, common::random_labels(rows, 1, rng), 1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case: String = arg(&args, "--case", "dense".to_string());
    let threads: String = arg(&args, "--threads", "2".to_string());
    let seconds: f64 = arg(&args, "--seconds", 10.0);
    let mut rng = Rng::new(0);
    let (data, hidden, batch) = match case.as_str() {
        "dense" => (dense_data(&mut rng), vec![512, 512], 256),
        "sparse" => (sparse_data(16_384, &mut rng), vec![256, 64], 64),
        other => panic!("--case dense|sparse, not {other}"),
    };
    let mut cfg = TrainConfig::new(hidden.clone(), Preset::Monotone);
    // The same model as the PyTorch side: ReLU, no skip connection, no weight decay (the
    // monotone recipe's defaults are tanh, a skip and L2 1e-2).
    cfg.activation = Activation::Relu;
    cfg.skip = false;
    cfg.optimizer.weight_decay = 0.0;
    cfg.batch_size = batch;
    let mut order: Vec<usize> = (0..data.rows()).collect();
    rng.shuffle(&mut order);
    let batches: Vec<&[usize]> = order.chunks_exact(batch).collect();
    // `--threads 1,2,4`: one line per count, the data generated once.
    for threads in threads.split(',') {
        let threads: usize = threads.parse().expect("--threads N[,N...]");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (samples_per_s, cpu, dt, steps) = pool.install(|| {
            let mlp = build_network(&cfg, data.x.cols(), data.x.is_sparse(), 1).unwrap();
            let mut trainer = Trainer::new(mlp, &cfg);
            let pw = [1.0f32];
            for b in batches.iter().take(5) {
                trainer.step(&data, b, &pw, 1e-3);
            }
            let (start, cpu_start) = (Instant::now(), cpu_seconds());
            let mut steps = 0usize;
            while start.elapsed().as_secs_f64() < seconds || steps < 20 {
                trainer.step(&data, batches[steps % batches.len()], &pw, 1e-3);
                steps += 1;
            }
            let (dt, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu_start);
            ((steps * batch) as f64 / dt, cpu, dt, steps)
        });
        println!(
            "{{\"impl\":\"nonneg\",\"case\":\"{case}\",\"samples_per_s\":{samples_per_s:.1},\"cpu_seconds\":{cpu:.3},\"seconds\":{dt:.3},\"steps\":{steps},\"batch\":{batch},\"threads\":{threads},\"hidden\":{hidden:?},\"input_dim\":{}}}",
            data.x.cols()
        );
    }
}

/// User plus system CPU time of this process so far, all threads.
fn cpu_seconds() -> f64 {
    // Safety: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(u.ru_utime) + secs(u.ru_stime)
}
