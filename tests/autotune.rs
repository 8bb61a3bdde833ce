//! `nonneg train --autotune`: a bounded search is deterministic (same model bytes), its
//! record is stored in the model, and it picks the clearly better candidate.

mod common;

use common::{fails, inspect_json, path_in, run, split_spambase, tempdir, SPAMBASE_LABEL};
use nonneg::data::{Dataset, DenseMatrix, Features};
use nonneg::pipeline::{autotune, AutotuneOptions, FitOptions, TuneMetric};
use nonneg::rng::Rng;
use nonneg::train::{Preset, TrainConfig};

#[test]
fn bounded_autotune_is_deterministic_and_recorded() {
    let dir = tempdir();
    // The 20% part of the split: 921 rows keep three trials quick.
    let (_, small) = split_spambase(dir.path());
    let train = |out: &str| {
        let mut args = vec!["train", "--data", &small, "--out", out, "-q"];
        args.extend(SPAMBASE_LABEL);
        args.extend(["--autotune", "--autotune-trials", "3", "--seed", "4"]);
        run(&args);
        std::fs::read(out).unwrap()
    };
    let (a, b) = (
        path_in(dir.path(), "a.safetensors"),
        path_in(dir.path(), "b.safetensors"),
    );
    assert_eq!(
        train(&a),
        train(&b),
        "same seed and trial bound, same bytes"
    );
    let t = &inspect_json(&a)["training"];
    let rec = &t["autotune"];
    assert_eq!(rec["metric"], "auc");
    assert_eq!(rec["trial_limit"], 3);
    let trials = rec["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 3);
    let w = rec["winner"].as_u64().unwrap() as usize;
    let best = trials
        .iter()
        .map(|t| t["score"].as_f64().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(trials[w]["score"].as_f64().unwrap(), best);
    assert_eq!(rec["settings"], trials[w]["settings"]);
    // The refit: all rows, the winner's best epoch count, its layers.
    assert_eq!(t["train_rows"], 921);
    assert_eq!(t["epochs"], rec["epochs"]);
    assert_eq!(t["hidden"], trials[w]["settings"]["hidden"]);
}

#[test]
fn explicit_hidden_and_constraint_are_not_searched() {
    let dir = tempdir();
    let (_, small) = split_spambase(dir.path());
    let out = path_in(dir.path(), "m.safetensors");
    let mut args = vec!["train", "--data", &small, "--out", &out, "-q"];
    args.extend(SPAMBASE_LABEL);
    args.extend(["--autotune", "--autotune-trials", "4", "--hidden", "16"]);
    args.extend(["--constraint", "monotone"]);
    run(&args);
    let m = inspect_json(&out);
    for t in m["training"]["autotune"]["trials"].as_array().unwrap() {
        assert_eq!(t["settings"]["hidden"], serde_json::json!([16]));
    }
    assert_eq!(m["training"]["hidden"], serde_json::json!([16]));
    assert!(
        m["negative_weights"].as_u64() == Some(0),
        "{}",
        m["negative_weights"]
    );
}

#[test]
fn dropout_is_searched_only_with_autotune_dropout_and_a_given_rate_holds() {
    let dir = tempdir();
    let (_, small) = split_spambase(dir.path());
    let out = path_in(dir.path(), "m.safetensors");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec!["train", "--data", &small, "--out", &out, "-q"];
        a.extend(SPAMBASE_LABEL);
        a.extend(["--autotune", "--autotune-trials", "12", "--hidden", "16"]);
        a.extend(extra);
        a.into_iter().map(String::from).collect()
    };
    let rates = |extra: &[&str]| -> Vec<f64> {
        let a = args(extra);
        run(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let m = inspect_json(&out);
        let trials = m["training"]["autotune"]["trials"]
            .as_array()
            .unwrap()
            .clone();
        trials
            .iter()
            .map(|t| t["settings"]["dropout"].as_f64().unwrap())
            .collect()
    };
    assert!(rates(&[]).iter().all(|&p| p == 0.0));
    assert!(rates(&["--autotune-dropout"]).iter().any(|&p| p > 0.0));
    assert!(rates(&["--dropout", "0.25"]).iter().all(|&p| p == 0.25));
    let both = args(&["--autotune-dropout", "--dropout", "0.25"]);
    let err = fails(&both.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("--autotune-dropout"), "{err}");
}

/// XOR of two signs: no linear model ranks it, one hidden layer does.
fn xor(rows: usize) -> Dataset {
    let mut rng = Rng::new(9);
    let (mut values, mut y) = (Vec::new(), Vec::new());
    for _ in 0..rows {
        let (a, b) = (rng.normal_f32(), rng.normal_f32());
        values.extend([a, b]);
        y.push(((a > 0.0) != (b > 0.0)) as u8 as f32);
    }
    Dataset {
        x: Features::Dense(DenseMatrix {
            rows,
            cols: 2,
            values,
        }),
        y: Some(y),
        n_labels: 1,
        label_names: vec!["y".into()],
        feature_names: None,
        source: "xor".into(),
    }
}

#[test]
fn picks_the_clearly_better_candidate() {
    // Base without hidden layers: the first two grid candidates are linear, the third has
    // a hidden layer of 64 and is the only one that can fit XOR.
    let base = FitOptions::new(TrainConfig::new(vec![], Preset::None));
    let mut opts = AutotuneOptions::new(TuneMetric::Auc);
    opts.trials = Some(3);
    opts.hidden_preset = Some(Preset::None);
    let tuned = autotune(&base, &xor(600), None, &opts, &mut |_| {}).unwrap();
    let aucs: Vec<f64> = tuned.trials.iter().map(|t| t.auc.unwrap()).collect();
    assert!(tuned.trials[0].settings.hidden.is_empty(), "{aucs:?}");
    assert!(tuned.trials[1].settings.hidden.is_empty(), "{aucs:?}");
    assert_eq!(tuned.trials[2].settings.hidden, vec![64]);
    assert!(aucs[2] > 0.9 && aucs[0] < 0.7 && aucs[1] < 0.7, "{aucs:?}");
    assert_eq!(tuned.winner, 2);
    assert_eq!(tuned.fitted.model.mlp.layers.len(), 2);
    assert_eq!(tuned.fitted.model.training["autotune"]["winner"], 2);
}
