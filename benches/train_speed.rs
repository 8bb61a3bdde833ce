//! Training throughput of nonneg on the benchmark models (see bench/compare_train.py,
//! which runs PyTorch on the same models side by side and prints the ratio).
//!
//! `cargo bench --bench train_speed -- --case dense|sparse [--threads N] [--seconds S]`
//! prints one JSON line with samples per second.

use nonneg::data::{CsrMatrix, Dataset, DenseMatrix, Features};
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

fn labels(rows: usize, rng: &mut Rng) -> Vec<f32> {
    (0..rows).map(|_| rng.below(2) as f32).collect()
}

/// (a) dense: 16,384 rows of N(0,1) with 2381 features (the EMBER width).
fn dense_data(rng: &mut Rng) -> Dataset {
    let (rows, cols) = (16_384, 2381);
    let values = (0..rows * cols).map(|_| rng.normal_f32()).collect();
    Dataset {
        x: Features::Dense(DenseMatrix { rows, cols, values }),
        y: Some(labels(rows, rng)),
        n_labels: 1,
        label_names: vec!["label".into()],
        feature_names: None,
        source: "bench".into(),
    }
}

/// (b) sparse binary: 2^20 features, ~300 active per row drawn Zipf-like
/// (`floor(2^20 * u^3)`, de-duplicated), as hashed n-gram features are.
fn sparse_data(rows: usize, rng: &mut Rng) -> Dataset {
    let cols = 1usize << 20;
    let mut m = CsrMatrix {
        rows,
        cols,
        indptr: vec![0],
        indices: vec![],
        values: vec![],
    };
    for _ in 0..rows {
        let mut idx: Vec<u32> = (0..300)
            .map(|_| {
                let u = rng.uniform_f64();
                ((cols as f64) * u * u * u) as u32
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        m.values.extend(std::iter::repeat_n(1.0, idx.len()));
        m.indices.extend(idx);
        m.indptr.push(m.indices.len());
    }
    Dataset {
        x: Features::Sparse(m),
        y: Some(labels(rows, rng)),
        n_labels: 1,
        label_names: vec!["label".into()],
        feature_names: None,
        source: "bench".into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case: String = arg(&args, "--case", "dense".to_string());
    let threads: usize = arg(&args, "--threads", 2);
    let seconds: f64 = arg(&args, "--seconds", 10.0);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
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
    let mlp = build_network(&cfg, data.x.cols(), data.x.is_sparse(), 1).unwrap();
    let mut trainer = Trainer::new(mlp, &cfg);
    let pw = [1.0f32];
    let mut order: Vec<usize> = (0..data.rows()).collect();
    rng.shuffle(&mut order);
    let batches: Vec<&[usize]> = order.chunks_exact(batch).collect();
    for b in batches.iter().take(5) {
        trainer.step(&data, b, &pw, 1e-3);
    }
    let start = Instant::now();
    let mut steps = 0usize;
    while start.elapsed().as_secs_f64() < seconds || steps < 20 {
        trainer.step(&data, batches[steps % batches.len()], &pw, 1e-3);
        steps += 1;
    }
    let dt = start.elapsed().as_secs_f64();
    println!(
        "{{\"impl\":\"nonneg\",\"case\":\"{case}\",\"samples_per_s\":{:.1},\"steps\":{steps},\"batch\":{batch},\"threads\":{threads},\"hidden\":{hidden:?},\"input_dim\":{}}}",
        (steps * batch) as f64 / dt,
        data.x.cols()
    );
}
