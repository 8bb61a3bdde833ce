//! `--scale quantile`: a small network finds a band in a heavy-tailed feature through the
//! quantile transform where standard scaling squashes it; the transform is stored in the
//! model (saved and loaded, the logits are the same); a monotone network on it is
//! certified, and raising a raw feature (beyond the training range too) never lowers its
//! logit; autotune searches it for dense data and keeps it when it wins.

mod common;

use common::{dataset, dense_with, tempdir};
use nonneg::certify::certify;
use nonneg::data::{Dataset, DenseMatrix, Features};
use nonneg::metrics::roc_auc;
use nonneg::model::scaler::ScaleKind;
use nonneg::pipeline::{autotune, fit, AutotuneOptions, FitOptions, TuneMetric};
use nonneg::rng::Rng;
use nonneg::train::{Preset, TrainConfig};

/// Two lognormal features (median 1, a tail to e^12); the label: feature 0 in [0.5, 2].
fn band(rows: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let x = dense_with(rows, 2, &mut rng, |r| (3.0 * r.normal_f32()).exp());
    let Features::Dense(m) = &x else {
        unreachable!()
    };
    let y = (0..rows)
        .map(|r| (0.5..=2.0).contains(&m.row(r)[0]) as u8 as f32)
        .collect();
    dataset(x, y, 1)
}

fn options(scale: ScaleKind, preset: Preset) -> FitOptions {
    let mut cfg = TrainConfig::new(vec![16], preset);
    cfg.epochs = 30;
    cfg.optimizer.lr = 1e-2;
    let mut o = FitOptions::new(cfg);
    o.scale = Some(scale);
    o
}

fn test_auc(o: &FitOptions) -> f64 {
    let fitted = fit(o, &band(800, 1), None, &mut |_| {}).unwrap();
    let test = band(800, 2);
    roc_auc(&fitted.model.logits(&test.x), test.y.as_ref().unwrap()).unwrap()
}

#[test]
fn quantile_inputs_find_a_band_that_standard_scaling_squashes() {
    let quantile = test_auc(&options(ScaleKind::Quantile, Preset::None));
    let standard = test_auc(&options(ScaleKind::Standard, Preset::None));
    assert!(quantile > 0.97, "quantile {quantile:.4}");
    assert!(standard < quantile - 0.1, "standard {standard:.4}");
}

#[test]
fn a_monotone_network_on_quantiles_is_certified_and_never_drops_when_a_feature_rises() {
    // Label rising in both features: feature 0 + feature 1 above their median sum.
    let mut rng = Rng::new(3);
    let x = dense_with(600, 2, &mut rng, |r| (2.0 * r.normal_f32()).exp());
    let Features::Dense(m) = &x else {
        unreachable!()
    };
    let y = (0..600)
        .map(|r| (m.row(r)[0] + m.row(r)[1] > 2.0) as u8 as f32)
        .collect();
    let data = dataset(x.clone(), y, 1);
    let model = fit(
        &options(ScaleKind::Quantile, Preset::Monotone),
        &data,
        None,
        &mut |_| {},
    )
    .unwrap()
    .model;
    assert_eq!(model.scaler.kind, ScaleKind::Quantile);
    assert!(certify(&model, None).certified);
    // The weights' proof, checked on values: below, between (many per knot interval) and
    // far beyond the knots.
    let mut grid = vec![-1.0, 0.0];
    grid.extend((0..4000).map(|i| 10f32.powf(-4.0 + i as f32 * 0.003)));
    for &other in &[0.0, 0.5, 3.0, 1e6] {
        for j in 0..2 {
            let rows: Vec<f32> = grid
                .iter()
                .flat_map(|&v| if j == 0 { [v, other] } else { [other, v] })
                .collect();
            let logits = model.logits(&Features::Dense(DenseMatrix {
                rows: grid.len(),
                cols: 2,
                values: rows,
            }));
            assert!(
                logits.windows(2).all(|w| w[1] >= w[0]),
                "feature {j}, other {other}: {logits:?}"
            );
            assert!(logits[grid.len() - 1] > logits[0], "{logits:?}");
        }
    }
    // Stored in the model file: the loaded model scores the same.
    let dir = tempdir();
    let path = dir.path().join("q.safetensors");
    nonneg::model::io::save(&model, &path).unwrap();
    let loaded = nonneg::model::io::load(&path).unwrap();
    assert_eq!(loaded.scaler, model.scaler);
    assert_eq!(loaded.logits(&x), model.logits(&x));
}

#[test]
fn autotune_searches_the_quantile_transform_for_dense_data_and_keeps_the_winner() {
    // Hidden layers fixed at 16: the grid's four standard-scaled candidates, then its
    // three quantile ones.
    let base = FitOptions::new(TrainConfig::new(vec![16], Preset::None));
    let mut opts = AutotuneOptions::new(TuneMetric::Auc);
    opts.trials = Some(7);
    let tuned = autotune(&base, &band(800, 1), None, &opts, &mut |_| {}).unwrap();
    let best = |quantile: bool| {
        tuned
            .trials
            .iter()
            .filter(|t| (t.settings.scale == Some(ScaleKind::Quantile)) == quantile)
            .map(|t| t.auc.unwrap())
            .fold(0.0, f64::max)
    };
    assert_eq!(tuned.trials.len(), 7);
    assert!(best(true) > best(false) + 0.05, "{:?}", tuned.trials);
    let w = &tuned.trials[tuned.winner];
    assert_eq!(w.settings.scale, Some(ScaleKind::Quantile));
    assert_eq!(tuned.fitted.model.scaler.kind, ScaleKind::Quantile);
    assert_eq!(
        tuned.fitted.model.training["autotune"]["settings"]["scale"],
        "quantile"
    );
    assert_eq!(tuned.fitted.model.training["scale"], "quantile");
}
