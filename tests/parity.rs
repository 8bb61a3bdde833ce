//! Parity with PyTorch: fixtures written by `scripts/make_parity_fixtures.py` (torch) hold
//! a small MLP's init, data and the weights after each of 20 steps of SGD+momentum,
//! SGD+Nesterov, Adam (coupled L2) and AdamW, with NonNeg on every kernel, MaxNorm on one
//! kernel and on one bias. We reproduce every step to 1e-5 relative. Also Keras' constraint
//! formulas on hand-made tensors.

mod common;

use nonneg::data::{DenseMatrix, Features};
use nonneg::model::{Activation, Constraint, Dense, Mlp};
use nonneg::optim::{OptimizerConfig, OptimizerKind};
use nonneg::train::{Preset, TrainConfig, Trainer};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = common::root().join("tests/fixtures/parity").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(f32s).collect()
}

fn constraints(v: &Value) -> Vec<Constraint> {
    serde_json::from_value(v.clone()).unwrap()
}

/// torch `[out][in]` -> our kernel `[in, out]`.
fn kernel(w: &[Vec<f32>]) -> Vec<f32> {
    let (out, inp) = (w.len(), w[0].len());
    let mut k = vec![0.0; out * inp];
    for o in 0..out {
        for i in 0..inp {
            k[i * out + o] = w[o][i];
        }
    }
    k
}

fn close(got: f32, want: f32) -> bool {
    (got - want).abs() <= 1e-5 * want.abs() + 1e-7
}

fn run_case(name: &str) {
    let f = fixture(&format!("{name}.json"));
    let o = &f["optimizer"];
    let kind = match o["name"].as_str().unwrap() {
        "sgd" => OptimizerKind::Sgd,
        "adam" => OptimizerKind::Adam,
        "adamw" => OptimizerKind::Adamw,
        other => panic!("unknown optimizer {other}"),
    };
    let optimizer = OptimizerConfig {
        kind,
        lr: o["lr"].as_f64().unwrap() as f32,
        momentum: o["momentum"].as_f64().unwrap_or(0.0) as f32,
        nesterov: o["nesterov"].as_bool().unwrap_or(false),
        beta1: o["beta1"].as_f64().unwrap_or(0.9) as f32,
        beta2: o["beta2"].as_f64().unwrap_or(0.999) as f32,
        eps: o["eps"].as_f64().unwrap_or(1e-8) as f32,
        weight_decay: o["weight_decay"].as_f64().unwrap_or(0.0) as f32,
    };
    let layers_spec = f["layers"].as_array().unwrap();
    let mut layers = Vec::new();
    for (l, spec) in layers_spec.iter().enumerate() {
        let act: Activation = serde_json::from_value(spec["activation"].clone()).unwrap();
        let (n_in, n_out) = (
            spec["in"].as_u64().unwrap() as usize,
            spec["out"].as_u64().unwrap() as usize,
        );
        let mut d = Dense::zeros(n_in, n_out, act);
        d.weight = kernel(&matrix(&f["init"][l]["weight"]));
        d.bias = f32s(&f["init"][l]["bias"]);
        d.kernel_constraints = constraints(&f["constraints"]["kernel"][l]);
        d.bias_constraints = constraints(&f["constraints"]["bias"][l]);
        layers.push(d);
    }
    let x = matrix(&f["x"]);
    let y = matrix(&f["y"]);
    let (rows, cols, labels) = (x.len(), x[0].len(), y[0].len());
    let data = common::dataset(
        Features::Dense(DenseMatrix {
            rows,
            cols,
            values: x.concat(),
        }),
        y.concat(),
        labels,
    );
    let mlp = Mlp {
        input_dim: cols,
        sparse_input: false,
        layers,
        skip: None,
    };
    let hidden: Vec<usize> = layers_spec[..layers_spec.len() - 1]
        .iter()
        .map(|s| s["out"].as_u64().unwrap() as usize)
        .collect();
    let mut cfg = TrainConfig::new(hidden, Preset::None);
    cfg.optimizer = optimizer.clone();
    cfg.batch_size = rows;
    let pos_weight = f32s(&f["pos_weight"]);
    let mut trainer = Trainer::new(mlp, &cfg);
    let all: Vec<usize> = (0..rows).collect();
    let steps = f["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 20);
    let mut worst = 0f32;
    for (t, step) in steps.iter().enumerate() {
        let loss = trainer.step(&data, &all, &pos_weight, optimizer.lr);
        let want_loss = step["loss"].as_f64().unwrap();
        assert!(
            (loss - want_loss).abs() <= 1e-5 * want_loss.abs(),
            "{name} step {}: loss {loss} vs torch {want_loss}",
            t + 1
        );
        for (l, p) in step["params"].as_array().unwrap().iter().enumerate() {
            let want_w = kernel(&matrix(&p["weight"]));
            let want_b = f32s(&p["bias"]);
            let layer = &trainer.mlp.layers[l];
            for (tensor, got, want) in [
                ("weight", &layer.weight, &want_w),
                ("bias", &layer.bias, &want_b),
            ] {
                for (i, (&g, &w)) in got.iter().zip(want.iter()).enumerate() {
                    worst = worst.max((g - w).abs() / w.abs().max(1e-3));
                    assert!(
                        close(g, w),
                        "{name} step {} layer {l} {tensor}[{i}]: {g} vs torch {w}",
                        t + 1
                    );
                }
            }
        }
    }
    // The constraints were active: NonNeg zeroed some weights, MaxNorm bounded layer 1.
    let zeros = trainer
        .mlp
        .layers
        .iter()
        .map(|l| l.weight.iter().filter(|&&w| w == 0.0).count())
        .sum::<usize>();
    assert!(
        zeros > 0,
        "{name}: NonNeg never clipped, the fixture does not exercise it"
    );
    eprintln!("{name}: worst relative deviation {worst:e}");
}

#[test]
fn sgd_momentum_matches_torch() {
    run_case("sgd_momentum");
}

#[test]
fn sgd_nesterov_matches_torch() {
    run_case("sgd_nesterov");
}

#[test]
fn adam_matches_torch() {
    run_case("adam");
}

#[test]
fn adamw_matches_torch() {
    run_case("adamw");
}

#[test]
fn keras_constraint_formulas_on_hand_made_tensors() {
    let f = fixture("constraints.json");
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let c: Constraint = serde_json::from_value(case["constraint"].clone()).unwrap();
        let (input, want, rows, cols) = match case["input"][0].is_array() {
            true => {
                let m = matrix(&case["input"]);
                (
                    m.concat(),
                    matrix(&case["output"]).concat(),
                    m.len(),
                    m[0].len(),
                )
            }
            false => {
                let v = f32s(&case["input"]);
                let n = v.len();
                (v, f32s(&case["output"]), n, 1)
            }
        };
        let mut got = input.clone();
        c.apply(&mut got, rows, cols);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{c:?} [{i}]: {g} vs keras {w}"
            );
        }
    }
}
