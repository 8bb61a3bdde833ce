//! Deep ensembles (`train --ensemble K`): the merged network's logit is the mean of the
//! members' (trained alone with seeds seed, seed + 1, ...) for every shape the merge
//! handles; a monotone or Lipschitz ensemble stays certified; the FPR threshold is the
//! merged model's; autotune searches single models; K = 1 is the plain model to the byte;
//! the CLI records K and the seeds and gives the same bytes at any thread count.

mod common;

use common::{dataset, dense_non_negative, dense_normal, inspect_json, run, sparse, tempdir};
use nonneg::data::{Dataset, Features};
use nonneg::model::ensemble::merge;
use nonneg::model::{Activation, Model, NonNegMode};
use nonneg::pipeline::{self, AutotuneOptions, FitOptions, RecipeOverrides, TuneMetric};
use nonneg::rng::Rng;
use nonneg::train::{Preset, TrainConfig};

/// `rows` rows of `x`, each label positive when its share of the features sums high.
fn labelled(x: Features, labels: usize) -> Dataset {
    let (rows, cols) = (x.rows(), x.cols());
    let row = |r: usize| -> Vec<f32> {
        match &x {
            Features::Dense(m) => m.row(r).to_vec(),
            Features::Sparse(m) => {
                let mut v = vec![0.0; cols];
                let (idx, val) = m.row(r);
                idx.iter().zip(val).for_each(|(&j, &x)| v[j as usize] = x);
                v
            }
        }
    };
    let y = (0..rows)
        .flat_map(|r| {
            let row = row(r);
            (0..labels)
                .map(|k| {
                    let s: f32 = row.iter().skip(k).step_by(labels).sum();
                    (s > 0.3 * (cols / labels) as f32) as u8 as f32
                })
                .collect::<Vec<_>>()
        })
        .collect();
    dataset(x, y, labels)
}

fn options(hidden: &[usize], preset: Preset, seed: u64) -> FitOptions {
    let mut cfg = TrainConfig::new(hidden.to_vec(), preset);
    cfg.epochs = 3;
    cfg.batch_size = 16;
    cfg.seed = seed;
    FitOptions::new(cfg)
}

/// Fits `opts` as an ensemble of `k` and as `k` single models; checks the merged logits
/// against the mean of the singles' and returns the merged model.
fn check_mean(name: &str, opts: &FitOptions, data: &Dataset, k: usize) -> Model {
    let merged = pipeline::fit(
        &FitOptions {
            ensemble: k,
            ..opts.clone()
        },
        data,
        None,
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
    .model;
    let seed = opts.config.seed;
    let members: Vec<Model> = (0..k as u64)
        .map(|j| {
            let mut o = opts.clone();
            o.config.seed = seed + j;
            pipeline::fit(&o, data, None, &mut |_| {}).unwrap().model
        })
        .collect();
    let got = merged.logits(&data.x);
    let each: Vec<Vec<f32>> = members.iter().map(|m| m.logits(&data.x)).collect();
    let mut spread = 0f32;
    for (i, &z) in got.iter().enumerate() {
        let mean = each.iter().map(|l| f64::from(l[i])).sum::<f64>() / k as f64;
        let tol = 1e-5 * (1.0 + mean.abs());
        assert!(
            (f64::from(z) - mean).abs() <= tol,
            "{name}: logit {i}: merged {z}, mean of members {mean}"
        );
        spread = spread.max((each[0][i] - each[1][i]).abs());
    }
    assert!(spread > 1e-3, "{name}: the members should differ (seeds)");
    assert_eq!(merged.scaler, members[0].scaler, "{name}: one scaler");
    merged
}

#[test]
fn merged_logits_are_the_mean_of_the_members_logits() {
    let mut rng = Rng::new(7);
    let dense = labelled(dense_normal(90, 6, &mut rng), 1);
    let counts = labelled(dense_non_negative(90, 6, &mut rng), 1);
    let sparse = labelled(sparse(90, 30, 4, &mut rng), 1);
    let multi = labelled(dense_normal(90, 6, &mut rng), 3);
    let k = 3;

    let m = check_mean(
        "dense, one hidden layer",
        &options(&[5], Preset::None, 0),
        &dense,
        k,
    );
    assert_eq!(m.mlp.layers[0].n_out, 15);
    assert_eq!(m.mlp.layers[1].n_in, 15);

    let m = check_mean(
        "dense, two hidden, skip",
        &options(&[4, 3], Preset::Monotone, 1),
        &counts,
        k,
    );
    assert!(m.mlp.skip.is_some());
    assert_eq!((m.mlp.layers[1].n_in, m.mlp.layers[1].n_out), (12, 9));
    // Block-diagonal: member 0's units feed none of member 1's.
    let l1 = &m.mlp.layers[1];
    assert!((0..4).all(|i| (3..9).all(|u| l1.weight[i * 9 + u] == 0.0)));

    let m = check_mean(
        "sparse, two hidden, skip",
        &options(&[6, 4], Preset::Monotone, 2),
        &sparse,
        k,
    );
    assert!(m.mlp.sparse_input && m.mlp.skip.is_some());

    let m = check_mean("multi-label", &options(&[4], Preset::None, 3), &multi, k);
    assert_eq!(m.mlp.n_labels(), 3);

    let solo = check_mean("no hidden layer", &options(&[], Preset::None, 4), &dense, k);
    assert_eq!(solo.mlp.layers.len(), 1, "the mean linear model");
    assert_eq!(solo.mlp.layers[0].n_out, 1);

    // Mixed units take their kind from their index mod 3: widths 4 and 5 are padded to 6.
    let mut mixed = options(&[4, 5], Preset::Monotone, 5);
    mixed.overrides = RecipeOverrides {
        activation: Some(Activation::Mixed),
        ..Default::default()
    };
    let m = check_mean("mixed, widths not divisible by 3", &mixed, &counts, k);
    assert_eq!(m.mlp.layers[0].n_out, 18);

    let m = check_mean(
        "lipschitz monotonic",
        &options(&[8], Preset::Lmn, 6),
        &counts,
        k,
    );
    assert!(nonneg::certify::certify(&m, None).certified, "lmn ensemble");

    let mut soft = options(&[4], Preset::Monotone, 7);
    soft.config.nonneg_mode = NonNegMode::Softplus;
    let m = check_mean("softplus reparametrisation", &soft, &counts, k);
    assert!(
        nonneg::certify::certify(&m, None).certified,
        "softplus ensemble"
    );
}

#[test]
fn a_monotone_ensemble_keeps_every_kernel_non_negative_and_certifies() {
    let mut rng = Rng::new(11);
    let data = labelled(sparse(120, 40, 5, &mut rng), 1);
    let opts = FitOptions {
        ensemble: 4,
        ..options(&[6, 3], Preset::Monotone, 0)
    };
    let m = pipeline::fit(&opts, &data, None, &mut |_| {})
        .unwrap()
        .model;
    for l in m.mlp.layers.iter().chain(&m.mlp.skip) {
        assert!(l.weight.iter().all(|&w| w >= 0.0), "a negative weight");
    }
    let cert = nonneg::certify::certify(&m, None);
    assert!(cert.certified, "{cert:?}");
}

#[test]
fn the_fpr_threshold_is_the_merged_models() {
    let mut rng = Rng::new(3);
    let data = labelled(dense_normal(200, 6, &mut rng), 1);
    let valid = labelled(dense_normal(200, 6, &mut rng), 1);
    let mut opts = options(&[5], Preset::None, 0);
    opts.config.threshold_fpr = Some(0.1);
    let single = pipeline::fit(&opts, &data, Some(&valid), &mut |_| {}).unwrap();
    opts.ensemble = 3;
    let merged = pipeline::fit(&opts, &data, Some(&valid), &mut |_| {}).unwrap();
    let m = &merged.model;
    let y = valid.y.as_deref().unwrap();
    let want = nonneg::metrics::thresholds_for_fpr(&m.logits(&valid.x), y, 1, 0.1).unwrap();
    assert_eq!(m.threshold, want);
    assert_ne!(m.threshold, single.model.threshold, "member 0's threshold");
}

#[test]
fn refused_combinations_say_why() {
    let mut rng = Rng::new(5);
    let data = labelled(dense_normal(60, 4, &mut rng), 1);
    let mut opts = options(&[4], Preset::None, 0);
    opts.ensemble = 0;
    let e = pipeline::fit(&opts, &data, None, &mut |_| {})
        .err()
        .unwrap();
    assert!(e.to_string().contains("must be at least 1, got 0"), "{e}");
    opts.ensemble = 2;
    pipeline::apply_layer_constraint("0.kernel=max_norm(3)", &mut opts.config.constraints).unwrap();
    let mut trained = false;
    let e = pipeline::fit(&opts, &data, None, &mut |_| trained = true)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("max_norm(3, axis=0) would not hold"),
        "{e}"
    );
    assert!(!trained, "refused before training");

    let a = pipeline::fit(&options(&[4], Preset::None, 0), &data, None, &mut |_| {});
    let b = pipeline::fit(&options(&[5], Preset::None, 0), &data, None, &mut |_| {});
    let e = merge(&[a.unwrap().model.mlp, b.unwrap().model.mlp])
        .err()
        .unwrap();
    assert!(e.to_string().contains("member 1 differs"), "{e}");
}

#[test]
fn autotune_searches_single_models_and_refits_an_ensemble() {
    let mut rng = Rng::new(9);
    let data = labelled(dense_normal(120, 5, &mut rng), 1);
    let mut tune = AutotuneOptions::new(TuneMetric::Auc);
    tune.trials = Some(2);
    tune.hidden_preset = Some(Preset::None);
    let run = |k: usize| {
        let base = FitOptions {
            ensemble: k,
            ..options(&[4], Preset::None, 0)
        };
        pipeline::autotune(&base, &data, None, &tune, &mut |_| {}).unwrap()
    };
    let (one, three) = (run(1), run(3));
    let record = |t: &pipeline::Tuned| t.fitted.model.training["autotune"].clone();
    assert_eq!(record(&one), record(&three), "the search is unchanged");
    let width = |t: &pipeline::Tuned| t.fitted.model.mlp.layers[0].n_out;
    let hidden = one.fitted.model.mlp.layers.len() > 1;
    assert_eq!(width(&three), if hidden { 3 * width(&one) } else { 1 });
    assert_eq!(three.fitted.model.training["ensemble"], 3);
}

/// A small dense CSV with a learnable label.
fn csv(dir: &std::path::Path) -> String {
    let mut rng = Rng::new(1);
    let mut text = String::from("a,b,c,d,label\n");
    for _ in 0..150 {
        let v: Vec<f32> = (0..4).map(|_| 3.0 * rng.uniform_f32()).collect();
        let y = (v[0] + v[1] - v[2] > 1.5) as u8;
        text += &format!("{},{},{},{},{y}\n", v[0], v[1], v[2], v[3]);
    }
    let path = dir.join("d.csv");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn train(data: &str, out: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["train", "-q", "--data", data, "--out", out, "--hidden", "6"];
    args.extend(["--epochs", "3"]);
    args.extend(extra);
    run(&args);
    std::fs::read(out).unwrap()
}

#[test]
fn cli_ensemble_1_is_the_plain_model_to_the_byte() {
    let dir = tempdir();
    let data = csv(dir.path());
    let p = |n: &str| dir.path().join(n).display().to_string();
    let plain = train(&data, &p("a.st"), &[]);
    assert_eq!(plain, train(&data, &p("b.st"), &["--ensemble", "1"]));
    // The model file of before ensembles: no ensemble in its record.
    let record = &inspect_json(&p("b.st"))["training"];
    assert!(record.get("ensemble").is_none() && record.get("ensemble_seeds").is_none());
    assert_ne!(plain, train(&data, &p("c.st"), &["--ensemble", "2"]));
}

#[test]
fn cli_records_k_and_seeds_certifies_and_is_the_same_at_any_thread_count() {
    let dir = tempdir();
    let data = csv(dir.path());
    let p = |n: &str| dir.path().join(n).display().to_string();
    let ens = ["--ensemble", "3", "--seed", "5", "--constraint", "monotone"];
    let one = train(
        &data,
        &p("t1.st"),
        &[&ens[..], &["--threads", "1"]].concat(),
    );
    let three = train(
        &data,
        &p("t3.st"),
        &[&ens[..], &["--threads", "3"]].concat(),
    );
    assert!(one == three, "ensemble models differ between thread counts");
    let j = inspect_json(&p("t1.st"));
    assert_eq!(j["training"]["ensemble"], 3, "{}", j["training"]);
    assert_eq!(
        j["training"]["ensemble_seeds"],
        serde_json::json!([5, 6, 7])
    );
    assert_eq!(j["layers"][0]["out"], 18, "{}", j["layers"][0]);
    run(&["certify", "--model", &p("t1.st")]);
    let text = common::run_stdout(&["inspect", "--model", &p("t1.st")]);
    assert!(
        text.contains("ensemble: 3 members (seeds [5,6,7])"),
        "{text}"
    );
}
