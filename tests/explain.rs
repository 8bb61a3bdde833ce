//! `Model::explain` and `predict --explain`: the linear parts are exact (they add up to the
//! logit without hidden layers), the hidden layers' share is gradient x input (checked by
//! central differences), the ranking and the count are as asked, and only the row's own
//! features appear.

mod common;

use common::{dense_normal, run_stdout, sparse, split_spambase, tempdir, train_spambase};
use nonneg::data::Features;
use nonneg::model::scaler::{ScaleKind, Scaler};
use nonneg::model::{Activation, Model};
use nonneg::rng::Rng;
use nonneg::train::{build_network, Preset, TrainConfig};

/// A random model with `hidden` widths (tanh: smooth, for the finite differences), a skip
/// connection with random weights when `skip`, and the given scaling fitted on `x`.
fn model(x: &Features, hidden: &[usize], skip: bool, scale: ScaleKind, seed: u64) -> Model {
    let mut cfg = TrainConfig::new(hidden.to_vec(), Preset::None);
    cfg.activation = Activation::Tanh;
    cfg.seed = seed;
    cfg.skip = skip;
    let mut mlp = build_network(&cfg, x.cols(), x.is_sparse(), 1).unwrap();
    let mut rng = Rng::new(seed + 7);
    if let Some(s) = &mut mlp.skip {
        s.weight
            .iter_mut()
            .for_each(|w| *w = rng.uniform_f32() - 0.5);
    }
    Model {
        scaler: if scale == ScaleKind::None {
            Scaler::identity()
        } else {
            Scaler::fit(scale, x).unwrap()
        },
        ..Model::new(mlp)
    }
}

/// Row `r` of a dense `x` with feature `j` set to `v`, as a one-row matrix.
fn with_value(x: &Features, r: usize, j: usize, v: f32) -> Features {
    let Features::Dense(m) = x else {
        unreachable!("dense only")
    };
    let mut row = nonneg::data::DenseMatrix {
        rows: 1,
        cols: m.cols,
        values: m.row(r).to_vec(),
    };
    row.values[j] = v;
    Features::Dense(row)
}

#[test]
fn without_hidden_layers_the_contributions_and_the_bias_are_the_logit() {
    let mut rng = Rng::new(1);
    let x = dense_normal(20, 7, &mut rng);
    let m = model(&x, &[], false, ScaleKind::Standard, 3);
    let logits = m.logits(&x);
    let bias = m.mlp.layers[0].bias[0];
    for (r, &logit) in logits.iter().enumerate() {
        let c = m.explain(&x, r, 0, 100);
        assert_eq!(
            c.len(),
            7,
            "every feature of a dense row (none is 0 after scaling)"
        );
        assert!(c.iter().all(|c| c.gradient == 0.0));
        let sum: f32 = c.iter().map(|c| c.linear).sum::<f32>() + bias;
        assert!((sum - logit).abs() < 1e-4, "{sum} vs {logit}");
        // Largest first, and `top` truncates.
        assert!(c
            .windows(2)
            .all(|w| w[0].total().abs() >= w[1].total().abs()));
        assert_eq!(m.explain(&x, r, 0, 3), c[..3].to_vec());
    }
}

#[test]
fn hidden_layers_get_gradient_times_input_and_the_skip_its_exact_share() {
    let mut rng = Rng::new(2);
    let x = dense_normal(5, 6, &mut rng);
    let m = model(&x, &[8, 4], true, ScaleKind::None, 4);
    let skip = m.mlp.skip.as_ref().unwrap();
    let h = 1e-2f32;
    for r in 0..5 {
        for c in m.explain(&x, r, 0, 100) {
            let j = c.feature;
            let Features::Dense(d) = &x else {
                unreachable!()
            };
            let v = d.row(r)[j];
            assert_eq!(c.value, v);
            assert_eq!(c.linear, skip.weight[j] * v);
            // d logit / d x_j by central differences, less the skip's own slope.
            let up = m.logits(&with_value(&x, r, j, v + h))[0];
            let down = m.logits(&with_value(&x, r, j, v - h))[0];
            let slope = (up - down) / (2.0 * h) - skip.weight[j];
            let want = slope * v;
            assert!(
                (c.gradient - want).abs() < 2e-3 + 2e-2 * want.abs(),
                "row {r} feature {j}: {} vs {want}",
                c.gradient
            );
        }
    }
}

#[test]
fn a_sparse_row_is_explained_by_its_own_features() {
    let mut rng = Rng::new(3);
    let x = sparse(10, 300, 20, &mut rng);
    let m = model(&x, &[16], false, ScaleKind::None, 5);
    let Features::Sparse(s) = &x else {
        unreachable!()
    };
    for r in 0..10 {
        let (idx, _) = s.row(r);
        let c = m.explain(&x, r, 0, 1000);
        assert_eq!(c.len(), idx.len());
        assert!(c.iter().all(|c| idx.contains(&(c.feature as u32))));
        assert!(c.iter().all(|c| c.name == format!("f{}", c.feature)));
    }
}

#[test]
fn predict_explain_lists_the_top_features_by_name() {
    let dir = tempdir();
    let (train, test) = split_spambase(dir.path());
    let model = dir.path().join("m.safetensors").display().to_string();
    train_spambase(&train, &model, &["--epochs", "3"]);
    let mut args = vec![
        "predict",
        "--model",
        &model,
        "--data",
        &test,
        "--explain",
        "3",
    ];
    args.extend(common::SPAMBASE_LABEL);
    let out = run_stdout(&args);
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), "score,logit,label,class,explain");
    let header = std::fs::read_to_string(&test).unwrap();
    let names: Vec<&str> = header.lines().next().unwrap().split(',').collect();
    let mut rows = 0;
    for line in lines {
        let cell = line.splitn(5, ',').nth(4).unwrap().trim_matches('"');
        let pairs: Vec<&str> = cell.split('|').collect();
        assert!(pairs.len() <= 3 && !pairs.is_empty(), "{line}");
        for p in pairs {
            let (name, value) = p.rsplit_once('=').unwrap();
            assert!(names.contains(&name), "{name}");
            assert!(value.parse::<f32>().unwrap().is_finite());
        }
        rows += 1;
    }
    assert!(rows > 100);
    // Without the option, no column.
    let mut args = vec!["predict", "--model", &model, "--data", &test];
    args.extend(common::SPAMBASE_LABEL);
    assert!(run_stdout(&args).starts_with("score,logit,label,class\n"));
}
