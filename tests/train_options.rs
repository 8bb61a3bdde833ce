//! Training options take effect, through the library (`nonneg::train::train`): early
//! stopping returns the best epoch's model, gradient clipping bounds the step, the step and
//! cosine schedules set each epoch's rate, and pos_weight, the init scheme and bias
//! centring change what is trained. Each test checks the option's effect, not only that
//! training still reaches a good AUC.

mod common;

use common::{dataset, dense_non_negative, dense_normal, random_labels, sparse};
use nonneg::data::{Dataset, Features};
use nonneg::model::init::InitScheme;
use nonneg::model::Mlp;
use nonneg::optim::{OptimizerConfig, OptimizerKind, Schedule};
use nonneg::rng::Rng;
use nonneg::train::{
    build_network, train, validate, Monitor, PosWeight, Preset, TrainConfig, TrainReport,
};

fn fit(cfg: &TrainConfig, data: &Dataset, valid: Option<&Dataset>) -> (Mlp, TrainReport) {
    train(cfg, data, valid, &mut |_| {}).expect("trains")
}

/// `cfg` with plain SGD (no momentum, no weight decay) at `lr`.
fn sgd(mut cfg: TrainConfig, lr: f32) -> TrainConfig {
    cfg.optimizer = OptimizerConfig::new(OptimizerKind::Sgd, lr);
    cfg
}

/// Random labels on `x`.
fn random(x: Features, rng: &mut Rng) -> Dataset {
    let y = random_labels(x.rows(), 1, rng);
    dataset(x, y, 1)
}

/// 20 N(0, 1) features; the label is `x0 + x1` plus much noise, so a wide network
/// overfits the training rows within a few epochs.
fn noisy(rows: usize, rng: &mut Rng) -> Dataset {
    let x = dense_normal(rows, 20, rng);
    let Features::Dense(m) = &x else {
        unreachable!()
    };
    let y = (0..rows)
        .map(|r| (m.row(r)[0] + m.row(r)[1] + 2.0 * rng.normal_f32() > 0.0) as u8 as f32)
        .collect();
    dataset(x, y, 1)
}

#[test]
fn early_stopping_returns_the_best_epochs_model_and_stops_patience_epochs_later() {
    let mut rng = Rng::new(1);
    let data = noisy(200, &mut rng);
    let valid = noisy(400, &mut rng);
    // Slow enough that the best epoch comes after several, and the best by loss and by
    // AUC differ (so the monitor is seen to matter).
    let mut cfg = TrainConfig::new(vec![64, 64], Preset::None);
    cfg.optimizer = OptimizerConfig::new(OptimizerKind::Adam, 5e-4);
    cfg.epochs = 100;
    cfg.batch_size = 20;
    let patience = 3;
    cfg.patience = Some(patience);
    let mut best_epochs = Vec::new();
    for monitor in [Monitor::Loss, Monitor::Auc] {
        cfg.monitor = monitor;
        let (mlp, report) = fit(&cfg, &data, Some(&valid));
        let score = |e: usize| match monitor {
            Monitor::Loss => -report.epochs[e].valid_loss.unwrap(),
            Monitor::Auc => report.epochs[e].valid_auc.unwrap(),
        };
        // The first epoch with the best score (ties keep the earlier one).
        let best = (0..report.epochs.len()).fold(0, |b, e| if score(e) > score(b) { e } else { b });
        eprintln!(
            "{monitor:?}: best epoch {} of {}",
            best + 1,
            report.epochs.len()
        );
        assert_eq!(report.best_epoch, Some(best + 1), "{monitor:?}");
        assert_eq!(report.epochs[best].epoch, best + 1);
        assert!(
            best > 0,
            "{monitor:?}: the first epoch was best; pick harder data"
        );
        best_epochs.push(best);
        assert!(
            report.epochs.len() < cfg.epochs,
            "{monitor:?}: never stopped early, the test would be vacuous"
        );
        assert_eq!(
            report.epochs.len(),
            best + 1 + patience,
            "{monitor:?}: stops `patience` epochs after the best"
        );
        // The returned model is the best epoch's (its validation numbers), not the last.
        let (loss, auc) = validate(&mlp, &valid, &report.pos_weight);
        let at_best = &report.epochs[best];
        assert_eq!(loss, at_best.valid_loss.unwrap(), "{monitor:?}");
        assert_eq!(auc, at_best.valid_auc, "{monitor:?}");
        let last = report.epochs.last().unwrap();
        assert_ne!(
            (Some(loss), auc),
            (last.valid_loss, last.valid_auc),
            "{monitor:?}: the last epoch's model"
        );
        if monitor == Monitor::Loss {
            let min = report
                .epochs
                .iter()
                .map(|e| e.valid_loss.unwrap())
                .fold(f64::INFINITY, f64::min);
            assert_eq!(loss, min);
        }
    }
    assert_ne!(
        best_epochs[0], best_epochs[1],
        "the same best epoch by loss and by AUC: the monitor is not seen to matter"
    );
}

/// The global L2 norm of the change of every parameter (kernels, biases, skip kernel).
fn distance(a: &Mlp, b: &Mlp) -> f64 {
    let pairs = a.layers.iter().zip(&b.layers).flat_map(|(x, y)| {
        [
            (x.weight.as_slice(), y.weight.as_slice()),
            (x.bias.as_slice(), y.bias.as_slice()),
        ]
    });
    let skip = a
        .skip
        .iter()
        .zip(&b.skip)
        .map(|(x, y)| (x.weight.as_slice(), y.weight.as_slice()));
    pairs
        .chain(skip)
        .flat_map(|(x, y)| x.iter().zip(y))
        .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn gradient_clipping_makes_one_sgd_step_exactly_lr_times_the_clip_norm() {
    let (lr, clip) = (0.5f32, 0.01f32);
    let want = (lr * clip) as f64;
    for sparse_input in [false, true] {
        let mut rng = Rng::new(2);
        let x = if sparse_input {
            sparse(64, 12, 3, &mut rng)
        } else {
            dense_normal(64, 12, &mut rng)
        };
        let data = random(x, &mut rng);
        let mut cfg = sgd(TrainConfig::new(vec![8], Preset::None), lr);
        cfg.skip = true;
        cfg.center_bias = false;
        cfg.epochs = 1;
        cfg.batch_size = data.rows(); // one step
        let start = build_network(&cfg, data.x.cols(), sparse_input, 1).unwrap();
        cfg.clip_grad_norm = Some(clip);
        let (clipped, _) = fit(&cfg, &data, None);
        let moved = distance(&start, &clipped);
        eprintln!("sparse={sparse_input}: clipped step {moved}, want {want}");
        assert!(
            (moved - want).abs() <= 1e-4 * want,
            "sparse={sparse_input}: clipped step moved {moved}, want lr * clip = {want}"
        );
        cfg.clip_grad_norm = None;
        let (free, _) = fit(&cfg, &data, None);
        let moved = distance(&start, &free);
        eprintln!("sparse={sparse_input}: unclipped step {moved}");
        assert!(
            moved > 2.0 * want,
            "sparse={sparse_input}: unclipped step moved only {moved}; the clip would not bind"
        );
    }
}

/// 100 rows of random data, 4 batches an epoch.
fn schedule_run(schedule: Schedule, epochs: usize) -> TrainReport {
    let mut rng = Rng::new(3);
    let data = random(dense_normal(100, 5, &mut rng), &mut rng);
    let mut cfg = sgd(TrainConfig::new(vec![4], Preset::None), 0.1);
    cfg.schedule = schedule;
    cfg.epochs = epochs;
    cfg.batch_size = 25;
    let (_, report) = fit(&cfg, &data, None);
    assert_eq!(report.epochs.len(), epochs);
    report
}

fn assert_close(got: f32, want: f64, what: &str) {
    assert!(
        (got as f64 - want).abs() <= 1e-6 * want.abs(),
        "{what}: lr {got}, want {want}"
    );
}

#[test]
fn step_schedule_multiplies_the_lr_by_gamma_every_n_epochs() {
    let report = schedule_run(
        Schedule::Step {
            every_epochs: 2,
            gamma: 0.5,
        },
        7,
    );
    for (e, r) in report.epochs.iter().enumerate() {
        assert_close(
            r.lr,
            0.1 * 0.5f64.powi((e / 2) as i32),
            &format!("epoch {}", e + 1),
        );
    }
}

#[test]
fn cosine_schedule_anneals_from_the_lr_to_min_lr_over_all_steps() {
    let (base, min, epochs, batches) = (0.1f64, 0.01f64, 5, 4);
    let report = schedule_run(Schedule::Cosine { min_lr: min as f32 }, epochs);
    let total = (epochs * batches) as f64;
    for (e, r) in report.epochs.iter().enumerate() {
        // An epoch reports the rate of its last step, 0-based step (e + 1) * batches - 1.
        let step = ((e + 1) * batches - 1) as f64;
        let want = min + 0.5 * (base - min) * (1.0 + (std::f64::consts::PI * step / total).cos());
        assert_close(r.lr, want, &format!("epoch {}", e + 1));
    }
}

/// Mean logit of `mlp` over `data`.
fn mean_logit(mlp: &Mlp, data: &Dataset) -> f64 {
    let l = mlp.logits(&data.x);
    l.iter().map(|&v| v as f64).sum::<f64>() / l.len() as f64
}

#[test]
fn pos_weight_auto_none_and_explicit_weigh_positives() {
    // One row in five positive, with a weak signal on feature 0.
    let mut rng = Rng::new(4);
    let rows = 400;
    let y: Vec<f32> = (0..rows)
        .map(|_| (rng.below(5) == 0) as u8 as f32)
        .collect();
    let Features::Dense(mut m) = dense_normal(rows, 10, &mut rng) else {
        unreachable!()
    };
    for (r, &label) in y.iter().enumerate() {
        m.values[r * 10] += label;
    }
    let positives = y.iter().filter(|&&v| v > 0.5).count() as f32;
    let data = dataset(Features::Dense(m), y, 1);
    let mut cfg = TrainConfig::new(vec![8], Preset::None);
    cfg.optimizer = OptimizerConfig::new(OptimizerKind::Adam, 1e-2);
    cfg.epochs = 30;
    cfg.batch_size = 32;

    cfg.pos_weight_mode = PosWeight::Auto;
    let (auto, report) = fit(&cfg, &data, None);
    assert_eq!(report.pos_weight, [(rows as f32 - positives) / positives]);
    cfg.pos_weight_mode = PosWeight::None;
    let (none, report) = fit(&cfg, &data, None);
    assert_eq!(report.pos_weight, [1.0]);
    cfg.pos_weight = Some(vec![2.5]);
    let (_, report) = fit(&cfg, &data, None);
    assert_eq!(
        report.pos_weight,
        [2.5],
        "an explicit weight overrides the mode"
    );
    // Weighting the positives about 4x shifts every score up (log 4 at the optimum).
    let (a, n) = (mean_logit(&auto, &data), mean_logit(&none, &data));
    eprintln!("mean logit: auto weights {a}, none {n}");
    assert!(a > n + 0.5, "mean logit with auto weights {a}, without {n}");
}

/// Fraction of exactly-zero entries in the first kernel.
fn zero_fraction(mlp: &Mlp) -> f64 {
    let w = &mlp.layers[0].weight;
    w.iter().filter(|&&v| v == 0.0).count() as f64 / w.len() as f64
}

#[test]
fn init_auto_starts_non_negative_kernels_feasible_and_default_does_not() {
    let mut rng = Rng::new(5);
    let data = random(dense_non_negative(200, 30, &mut rng), &mut rng);
    // One tiny step: what is left is the init after the NonNeg projection.
    let mut cfg = sgd(TrainConfig::new(vec![16], Preset::Monotone), 1e-4);
    cfg.epochs = 1;
    cfg.batch_size = data.rows();
    cfg.init = InitScheme::Auto;
    let (auto, _) = fit(&cfg, &data, None);
    cfg.init = InitScheme::Default;
    let (default, _) = fit(&cfg, &data, None);
    let (a, d) = (zero_fraction(&auto), zero_fraction(&default));
    eprintln!("zero fraction of the first kernel: auto {a}, default {d}");
    assert!(
        a < 0.02,
        "auto init: {a} of the first kernel clipped to zero"
    );
    assert!(
        d > 0.3,
        "default init: only {d} of the first kernel clipped to zero (about half expected)"
    );
}

/// Per-unit mean over `data` of the first layer's pre-activations.
fn first_pre_activation_means(mlp: &Mlp, data: &Dataset) -> Vec<f64> {
    let Features::Dense(x) = &data.x else {
        unreachable!()
    };
    let l = &mlp.layers[0];
    let mut mean = vec![0f64; l.n_out];
    for r in 0..x.rows {
        for (o, m) in mean.iter_mut().enumerate() {
            let z: f64 = (0..l.n_in)
                .map(|i| x.row(r)[i] as f64 * l.weight[i * l.n_out + o] as f64)
                .sum();
            *m += (z + l.bias[o] as f64) / x.rows as f64;
        }
    }
    mean
}

#[test]
fn center_bias_centres_the_pre_activations_of_non_negative_layers() {
    let mut rng = Rng::new(6);
    // 300 rows: the centring batch (up to 1024 rows) is all of them.
    let data = random(dense_non_negative(300, 30, &mut rng), &mut rng);
    let mut cfg = sgd(TrainConfig::new(vec![16], Preset::Monotone), 1e-6);
    cfg.epochs = 1;
    cfg.batch_size = data.rows();
    cfg.center_bias = true;
    let (centred, _) = fit(&cfg, &data, None);
    cfg.center_bias = false;
    let (raw, _) = fit(&cfg, &data, None);
    let centred = first_pre_activation_means(&centred, &data);
    let raw = first_pre_activation_means(&raw, &data);
    eprintln!("mean pre-activations: centred {centred:?}, not {raw:?}");
    for (o, m) in centred.iter().enumerate() {
        assert!(
            m.abs() < 1e-3,
            "unit {o}: mean pre-activation {m} after centring"
        );
    }
    // Positive weights on non-negative inputs: every unit starts well above zero.
    for (o, m) in raw.iter().enumerate() {
        assert!(
            *m > 0.2,
            "unit {o}: mean pre-activation {m} without centring"
        );
    }
}
