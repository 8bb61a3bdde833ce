//! Lipschitz monotonic networks (`--constraint lmn`): the projection, the certificate
//! (`certify::lipschitz`, a second sufficient condition beside the sign rule) and its
//! soundness against exhaustive and random additions.

mod common;

use common::{
    dataset, dense_non_negative, exec, fails, inspect_json, path_in, spambase, sparse, tempdir,
    train_spambase,
};
use nonneg::certify::lipschitz::{feature_bounds, project, CERTIFY_MARGIN, PROJECT_MARGIN};
use nonneg::certify::{certify, certify_directions, Directions};
use nonneg::data::{DenseMatrix, Features};
use nonneg::model::{Activation, Dense, Mlp, Model};
use nonneg::rng::Rng;
use nonneg::train::{build_network, train, Preset, TrainConfig};

fn dense(n_in: usize, n_out: usize, act: Activation, rng: &mut Rng) -> Dense {
    let mut d = Dense::zeros(n_in, n_out, act);
    d.weight.iter_mut().for_each(|w| *w = rng.normal_f32());
    d.bias.iter_mut().for_each(|b| *b = rng.normal_f32());
    d
}

/// A random free MLP `n -> widths -> labels` with a random (mostly infeasible) skip.
fn random_mlp(n: usize, widths: &[usize], labels: usize, act: Activation, rng: &mut Rng) -> Mlp {
    let mut sizes = vec![n];
    sizes.extend_from_slice(widths);
    sizes.push(labels);
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let last = i + 2 == sizes.len();
            dense(
                w[0],
                w[1],
                if last { Activation::Identity } else { act },
                rng,
            )
        })
        .collect();
    Mlp {
        input_dim: n,
        sparse_input: false,
        layers,
        skip: Some(dense(n, labels, Activation::Identity, rng)),
    }
}

fn logits(mlp: &Mlp, x: &[f32]) -> Vec<f32> {
    mlp.logits(&Features::Dense(DenseMatrix {
        rows: 1,
        cols: mlp.input_dim,
        values: x.to_vec(),
    }))
}

/// Float slack: the proof is about the real-valued function.
fn slack(v: &[f32]) -> f32 {
    1e-4 * (1.0 + v.iter().map(|x| x.abs()).fold(0.0, f32::max))
}

#[test]
fn projected_random_networks_never_decrease_under_any_additions() {
    let mut rng = Rng::new(7);
    let acts = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Mixed,
    ];
    for trial in 0..24 {
        let n = 6;
        let widths: &[usize] = if trial % 2 == 0 { &[5] } else { &[4, 3] };
        let labels = 1 + trial % 2;
        let mut mlp = random_mlp(n, widths, labels, acts[trial % acts.len()], &mut rng);
        assert!(
            !certify(&Model::new(mlp.clone()), None).certified,
            "{trial}: random skip"
        );
        project(&mut mlp);
        let cert = certify(&Model::new(mlp.clone()), None);
        assert!(cert.certified, "{trial}: {cert}");
        // Every binary x and every superset of it (exhaustive over 2^6 x 2^6 pairs).
        for from in 0u32..64 {
            let x: Vec<f32> = (0..n).map(|j| ((from >> j) & 1) as f32).collect();
            let base = logits(&mlp, &x);
            for to in (0u32..64).filter(|t| t & from == from) {
                let y: Vec<f32> = (0..n).map(|j| ((to >> j) & 1) as f32).collect();
                for (a, b) in base.iter().zip(logits(&mlp, &y)) {
                    assert!(
                        b >= a - slack(&base),
                        "{trial}: {from:b} -> {to:b}: {a} -> {b}"
                    );
                }
            }
        }
        // Real values raised at random within [x, 3].
        for _ in 0..200 {
            let x: Vec<f32> = (0..n).map(|_| 3.0 * rng.uniform_f32()).collect();
            let y: Vec<f32> = x
                .iter()
                .map(|&v| v + (3.0 - v) * rng.uniform_f32())
                .collect();
            let (a, b) = (logits(&mlp, &x), logits(&mlp, &y));
            for (a, b) in a.iter().zip(&b) {
                assert!(
                    *b >= a - slack(&[*a]),
                    "{trial}: {x:?} -> {y:?}: {a} -> {b}"
                );
            }
        }
    }
}

#[test]
fn without_the_projection_random_search_finds_a_decrease() {
    // The soundness test above can fail: the same search on the unprojected network finds
    // a decrease.
    let mut rng = Rng::new(3);
    let mlp = random_mlp(6, &[5], 1, Activation::Relu, &mut rng);
    let found = (0u32..64).any(|from| {
        let x: Vec<f32> = (0..6).map(|j| ((from >> j) & 1) as f32).collect();
        (0..6).any(|j| {
            let mut y = x.clone();
            y[j] = 1.0;
            logits(&mlp, &y)[0] < logits(&mlp, &x)[0] - 1e-3
        })
    });
    assert!(found);
}

#[test]
fn a_skip_weight_a_little_below_the_bound_is_refused_with_the_reason() {
    let mut rng = Rng::new(11);
    let mut mlp = random_mlp(8, &[6, 4], 1, Activation::Relu, &mut rng);
    project(&mut mlp);
    let bounds = feature_bounds(&mlp);
    assert!(certify(&Model::new(mlp.clone()), None).certified);
    // Within the certify margin: refused; just above it: accepted.
    for (factor, ok) in [
        (1.0 - 1e-3, false),
        (1.0, false),
        (1.0 + 0.5 * CERTIFY_MARGIN, false),
        (1.0 + 3.0 * CERTIFY_MARGIN, true),
    ] {
        let mut m = mlp.clone();
        m.skip.as_mut().unwrap().weight[5] = (bounds[5] * factor) as f32;
        let cert = certify(&Model::new(m), None);
        assert_eq!(cert.certified, ok, "{factor}: {cert}");
        if !ok {
            assert_eq!(cert.n_uncovered, 1, "{cert}");
            assert_eq!(cert.uncovered, vec!["f5"]);
            let p = cert.lipschitz.as_ref().unwrap();
            assert_eq!((p.checked - p.proved, p.worst_feature), (1, Some(5)));
            assert!(
                cert.verdict().contains("below the MLP's Lipschitz bound"),
                "{cert}"
            );
        }
    }
    // The feature left out of the declared set no longer matters.
    let mut m = mlp.clone();
    m.skip.as_mut().unwrap().weight[5] = 0.0;
    let others: Vec<usize> = (0..8).filter(|&j| j != 5).collect();
    assert!(certify(&Model::new(m.clone()), Some(&others)).certified);
    assert!(!certify(&Model::new(m), None).certified);
}

#[test]
fn decreasing_features_are_proved_by_a_skip_weight_at_most_minus_the_bound() {
    let mut rng = Rng::new(5);
    let mut mlp = random_mlp(4, &[5], 1, Activation::Tanh, &mut rng);
    project(&mut mlp);
    let dirs = Directions {
        up: vec![0, 1, 2],
        down: vec![3],
    };
    assert!(!certify_directions(&Model::new(mlp.clone()), &dirs).certified);
    let s = &mut mlp.skip.as_mut().unwrap().weight;
    s[3] = -s[3];
    assert!(certify_directions(&Model::new(mlp), &dirs).certified);
}

#[test]
fn the_projection_is_tight_and_no_farther_than_raising_the_skip_alone() {
    let mut rng = Rng::new(13);
    for _ in 0..20 {
        let before = random_mlp(7, &[6, 3], 1, Activation::Relu, &mut rng);
        let mut after = before.clone();
        project(&mut after);
        let (b0, a0) = (&before.layers[0].weight, &after.layers[0].weight);
        let (bs, as_) = (
            &before.skip.as_ref().unwrap().weight,
            &after.skip.as_ref().unwrap().weight,
        );
        // The alternative feasible point: the skip raised to the unchanged bound.
        let raise_only = feature_bounds(&before);
        let bounds = feature_bounds(&after);
        for j in 0..7 {
            let row = |w: &[f32]| w[j * 6..(j + 1) * 6].to_vec();
            let moved: f64 = row(b0)
                .iter()
                .zip(row(a0))
                .map(|(x, y)| ((x - y) as f64).powi(2))
                .sum::<f64>()
                + ((bs[j] - as_[j]) as f64).powi(2);
            let need = raise_only[j] * (1.0 + PROJECT_MARGIN);
            let alternative = (need - bs[j] as f64).max(0.0).powi(2);
            assert!(
                moved <= alternative * (1.0 + 1e-4) + 1e-12,
                "{j}: {moved} > {alternative}"
            );
            assert!(as_[j] as f64 >= bounds[j] * (1.0 + CERTIFY_MARGIN));
            if bs[j] as f64 >= need {
                assert_eq!((row(b0), bs[j]), (row(a0), as_[j]), "feasible rows stay");
            } else {
                // Shrinking the row as well moves less than raising the skip alone.
                assert!(moved < alternative, "{j}: {moved} vs {alternative}");
                // On the boundary, not beyond it.
                assert!(
                    (as_[j] as f64) <= bounds[j] * (1.0 + PROJECT_MARGIN) * (1.0 + 1e-5) + 1e-6
                );
            }
        }
    }
}

#[test]
fn training_with_the_preset_keeps_the_rule_dense_and_sparse() {
    let mut rng = Rng::new(1);
    for x in [
        dense_non_negative(300, 12, &mut rng),
        sparse(300, 40, 4, &mut rng),
    ] {
        let y = match &x {
            Features::Dense(m) => (0..300)
                .map(|r| (m.row(r)[0] > m.row(r)[1]) as u8 as f32)
                .collect(),
            Features::Sparse(_) => (0..300).map(|_| rng.below(2) as f32).collect(),
        };
        let data = dataset(x, y, 1);
        let mut cfg = TrainConfig::new(vec![8, 4], Preset::Lmn);
        cfg.use_recipe(data.x.is_sparse());
        cfg.epochs = 3;
        assert!(cfg.skip, "the recipe gives an LMN its skip connection");
        let l2 = if data.x.is_sparse() { 1e-2 } else { 0.0 };
        assert_eq!(cfg.optimizer.weight_decay, l2, "L2 on sparse input only");
        let (mlp, _) = train(&cfg, &data, None, &mut |_| {}).expect("trains");
        let cert = certify(&Model::new(mlp.clone()), None);
        assert!(cert.certified, "{cert}");
        assert!(
            cert.lipschitz.as_ref().is_some_and(|p| p.proved > 0),
            "{cert}"
        );
        // The MLP is free: it kept negative weights (the sign rule alone would refuse).
        assert!(mlp.layers[0].weight.iter().any(|&w| w < 0.0));
    }
}

#[test]
fn the_preset_needs_a_skip_connection() {
    let n = 5;
    let mut cfg = TrainConfig::new(vec![], Preset::Lmn);
    cfg.use_recipe(false);
    let e = build_network(&cfg, n, false, 1).unwrap_err();
    assert!(e.to_string().contains("lmn needs a skip connection"), "{e}");
    let mut cfg = TrainConfig::new(vec![4], Preset::Lmn);
    cfg.skip = false;
    assert!(build_network(&cfg, n, false, 1).is_err());
}

#[test]
fn cli_trains_an_lmn_that_certify_proves_and_refuses_one_without_a_hidden_layer() {
    let dir = tempdir();
    let (data, model) = (spambase(), path_in(dir.path(), "lmn.safetensors"));
    let lmn = ["--constraint", "lmn", "--hidden", "8", "--epochs", "2"];
    train_spambase(&data, &model, &lmn);
    let out = exec(&["certify", "--model", &model]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("by the Lipschitz proof"), "{text}");
    // Without --hidden the preset's own width: one layer of 16 units, not 64-32.
    let widths = |m: &str| -> Vec<u64> {
        let layers = inspect_json(m)["layers"].as_array().unwrap().clone();
        layers.iter().map(|l| l["out"].as_u64().unwrap()).collect()
    };
    train_spambase(&data, &model, &["--constraint", "lmn", "--epochs", "1"]);
    assert_eq!(widths(&model), [16, 1]);
    train_spambase(&data, &model, &["--epochs", "1"]);
    assert_eq!(widths(&model), [64, 32, 1]);
    let err = fails(&[
        "train",
        "--data",
        &data,
        "--label-column",
        "type",
        "--positive",
        "spam",
        "--out",
        &model,
        "--constraint",
        "lmn",
        "--hidden",
        "",
    ]);
    assert!(err.contains("lmn needs a skip connection"), "{err}");
}
