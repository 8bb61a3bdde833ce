//! Finite-difference checks of every backward pass: each activation, the loss with
//! pos_weight, dense and sparse first layers, single and multi-label, with and without
//! hidden layers, with and without a skip connection.

mod common;

use common::{dense_normal, random_labels, sparse};
use nonneg::data::{Dataset, Features};
use nonneg::model::{Activation, Grads, Input, Mlp, Tape};
use nonneg::rng::Rng;
use nonneg::train::{build_network, validate, Preset, TrainConfig, Trainer};

/// `x` with random labels.
fn dataset(x: Features, labels: usize, rng: &mut Rng) -> Dataset {
    let y = random_labels(x.rows(), labels, rng);
    common::dataset(x, y, labels)
}

fn loss_of(mlp: &Mlp, data: &Dataset, pw: &[f32]) -> f64 {
    validate(mlp, data, pw).0
}

/// Compares the analytic gradient of every parameter with central differences (f64 on the
/// f32 network), as one relative error over each tensor.
fn check(data: &Dataset, hidden: Vec<usize>, act: Activation, pw: Vec<f32>, seed: u64) {
    check_skip(data, hidden, act, pw, seed, false)
}

/// [`check`], optionally with a (random) skip connection, whose kernel is checked too.
fn check_skip(
    data: &Dataset,
    hidden: Vec<usize>,
    act: Activation,
    pw: Vec<f32>,
    seed: u64,
    skip: bool,
) {
    let mut cfg = TrainConfig::new(hidden.clone(), Preset::None);
    cfg.activation = act;
    cfg.seed = seed;
    cfg.skip = skip;
    cfg.batch_size = data.rows();
    let mut mlp = build_network(&cfg, data.x.cols(), data.x.is_sparse(), data.n_labels).unwrap();
    if let Some(s) = &mut mlp.skip {
        let mut rng = Rng::new(seed + 77);
        s.weight.iter_mut().for_each(|w| *w = rng.normal_f32());
    }
    if matches!(
        act,
        Activation::Relu | Activation::LeakyRelu | Activation::Mixed
    ) {
        avoid_kinks(&mut mlp, data);
    }
    let rows: Vec<usize> = (0..data.rows()).collect();
    let mut trainer = Trainer::new(mlp.clone(), &cfg);
    let (loss, gw, gb) = trainer.gradients(data, &rows, &pw);
    assert!((loss - loss_of(&mlp, data, &pw)).abs() < 1e-5);
    let n = mlp.layers.len();
    assert_eq!(gw.len(), n + skip as usize);
    let mut tensors: Vec<(usize, usize, &Vec<f32>)> = (0..n)
        .flat_map(|l| [(l, 0, &gw[l]), (l, 1, &gb[l])])
        .collect();
    if skip {
        tensors.push((n, 2, &gw[n]));
    }
    for (l, tensor, analytic) in tensors {
        // Large steps suffer from ReLU kinks and curvature, small ones from f32
        // round-off: a correct gradient agrees at one of them, a wrong one at none.
        let errors: Vec<f64> = [1e-2f32, 3e-3, 1e-3]
            .iter()
            .map(|&h| relative_error(&mlp, &|m| loss_of(m, data, &pw), l, tensor, analytic, h))
            .collect();
        let best = errors.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            best < 1e-2,
            "{act:?} hidden {hidden:?} layer {l} {}: relative errors {errors:?}",
            ["kernel", "bias", "skip kernel"][tensor]
        );
        assert!(
            analytic.iter().any(|&g| g != 0.0),
            "gradient is identically zero: the check would be vacuous"
        );
    }
}

/// Moves biases until no pre-activation of a kinked unit lies within 0.05 of its kink: a
/// central difference that straddles a kink measures neither one-sided derivative.
fn avoid_kinks(mlp: &mut Mlp, data: &Dataset) {
    let n = data.rows();
    let rows: Vec<usize> = (0..n).collect();
    for _ in 0..100 {
        let mut tape = Tape::new(mlp, n);
        let input = match &data.x {
            Features::Dense(m) => Input::Dense(&m.values),
            Features::Sparse(m) => Input::Sparse(m, &rows),
        };
        mlp.forward(input, &mut tape);
        let mut moved = false;
        for l in 0..mlp.layers.len() - 1 {
            let layer = &mut mlp.layers[l];
            let (width, z) = (layer.n_out, &tape.z[l][..n * layer.n_out]);
            // Kinks at 0, and at -1 and 1 for the saturating units of a mixed layer.
            let kinks: &[f32] = if layer.activation == Activation::Mixed {
                &[-1.0, 0.0, 1.0]
            } else {
                &[0.0]
            };
            for j in 0..width {
                let near = |v: &f32| kinks.iter().any(|k| (v - k).abs() < 0.05);
                if z.iter().skip(j).step_by(width).any(near) {
                    layer.bias[j] += 0.07;
                    moved = true;
                }
            }
            if moved {
                break;
            }
        }
        if !moved {
            return;
        }
    }
    panic!("could not move pre-activations away from the kinks");
}

fn relative_error(
    mlp: &Mlp,
    loss: &dyn Fn(&Mlp) -> f64,
    l: usize,
    tensor: usize,
    analytic: &[f32],
    h: f32,
) -> f64 {
    let (mut diff, mut norm) = (0f64, 0f64);
    for (i, &a) in analytic.iter().enumerate() {
        let mut plus = mlp.clone();
        let mut minus = mlp.clone();
        let (p, m) = match tensor {
            0 => (
                &mut plus.layers[l].weight[i],
                &mut minus.layers[l].weight[i],
            ),
            1 => (&mut plus.layers[l].bias[i], &mut minus.layers[l].bias[i]),
            _ => (
                &mut plus.skip.as_mut().unwrap().weight[i],
                &mut minus.skip.as_mut().unwrap().weight[i],
            ),
        };
        *p += h;
        *m -= h;
        let fd = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
        diff += (fd - a as f64).powi(2);
        norm += fd.powi(2);
    }
    diff.sqrt() / norm.sqrt().max(1e-12)
}

#[test]
fn dense_first_layer_every_activation_single_label() {
    for (k, act) in Activation::HIDDEN.into_iter().enumerate() {
        let mut rng = Rng::new(10 + k as u64);
        let data = dataset(dense_normal(12, 5, &mut rng), 1, &mut rng);
        check(&data, vec![6, 4], act, vec![2.5], k as u64);
    }
}

#[test]
fn dense_multi_label_with_per_label_pos_weight() {
    for (k, act) in Activation::HIDDEN.into_iter().enumerate() {
        let mut rng = Rng::new(20 + k as u64);
        let data = dataset(dense_normal(10, 4, &mut rng), 3, &mut rng);
        check(&data, vec![5], act, vec![1.0, 0.3, 4.0], k as u64);
    }
}

#[test]
fn sparse_first_layer_every_activation_single_and_multi_label() {
    for (k, act) in Activation::HIDDEN.into_iter().enumerate() {
        let mut rng = Rng::new(30 + k as u64);
        let data = dataset(sparse(14, 9, 3, &mut rng), 1, &mut rng);
        check(&data, vec![5, 3], act, vec![1.7], k as u64);
        let data = dataset(sparse(14, 9, 3, &mut rng), 2, &mut rng);
        check(&data, vec![4], act, vec![1.0, 2.0], k as u64);
    }
}

#[test]
fn logistic_regression_dense_and_sparse() {
    let mut rng = Rng::new(40);
    let data = dataset(dense_normal(15, 6, &mut rng), 1, &mut rng);
    check(&data, vec![], Activation::Relu, vec![1.0], 1);
    let data = dataset(sparse(15, 8, 3, &mut rng), 2, &mut rng);
    check(&data, vec![], Activation::Relu, vec![1.0, 3.0], 2);
}

#[test]
fn skip_connection_dense_and_sparse_single_and_multi_label() {
    for (k, act) in [Activation::Tanh, Activation::Relu].into_iter().enumerate() {
        let mut rng = Rng::new(60 + k as u64);
        let data = dataset(dense_normal(12, 5, &mut rng), 1, &mut rng);
        check_skip(&data, vec![6, 4], act, vec![2.0], k as u64, true);
        let data = dataset(dense_normal(10, 4, &mut rng), 2, &mut rng);
        check_skip(&data, vec![5], act, vec![1.0, 3.0], k as u64, true);
        let data = dataset(sparse(14, 9, 3, &mut rng), 1, &mut rng);
        check_skip(&data, vec![5, 3], act, vec![1.5], k as u64, true);
        let data = dataset(sparse(14, 9, 3, &mut rng), 2, &mut rng);
        check_skip(&data, vec![4], act, vec![1.0, 0.5], k as u64, true);
    }
}

/// The mean loss of `mlp` on dense `data` with `masks` on its hidden layers, and with
/// `grads` its gradients (the backward pass under the same masks).
fn masked_loss(
    mlp: &Mlp,
    data: &Dataset,
    masks: &[Vec<f32>],
    pw: &[f32],
    grads: Option<&mut Grads>,
) -> f64 {
    let Features::Dense(x) = &data.x else {
        panic!("dense data")
    };
    let mut tape = Tape::new(mlp, data.rows());
    tape.masks = masks.to_vec();
    mlp.forward(Input::Dense(&x.values), &mut tape);
    let y = data.y.as_ref().unwrap();
    let (logits, dlogits) = tape.logits_and_dlogits();
    let loss = nonneg::loss::mean_loss_and_grad(logits, y, pw, Some(dlogits));
    if let Some(g) = grads {
        mlp.backward(Input::Dense(&x.values), &mut tape, Some(g));
    }
    loss
}

#[test]
fn dropout_backward_matches_central_differences_under_a_fixed_mask() {
    for (k, act) in Activation::HIDDEN.into_iter().enumerate() {
        let mut rng = Rng::new(80 + k as u64);
        let data = dataset(dense_normal(12, 5, &mut rng), 1, &mut rng);
        let mut cfg = TrainConfig::new(vec![6, 4], Preset::None);
        (cfg.activation, cfg.seed) = (act, k as u64);
        let mut mlp = build_network(&cfg, 5, false, 1).unwrap();
        avoid_kinks(&mut mlp, &data);
        let mut masks = Vec::new();
        nonneg::train::dropout::draw_masks(&mut masks, &[6, 4], 12, 0.4, &mut rng);
        assert!(masks.concat().contains(&0.0), "some units dropped");
        let pw = [1.5];
        let mut grads = Grads::new(&mlp);
        masked_loss(&mlp, &data, &masks, &pw, Some(&mut grads));
        // The mask matters: without it the gradient is another one.
        let mut plain = Grads::new(&mlp);
        masked_loss(&mlp, &data, &[], &pw, Some(&mut plain));
        assert_ne!(plain.kernel, grads.kernel);
        let loss = |m: &Mlp| masked_loss(m, &data, &masks, &pw, None);
        for l in 0..mlp.layers.len() {
            for (tensor, analytic) in [(0, &grads.kernel[l]), (1, &grads.bias[l])] {
                let errors: Vec<f64> = [1e-2f32, 3e-3, 1e-3]
                    .iter()
                    .map(|&h| relative_error(&mlp, &loss, l, tensor, analytic, h))
                    .collect();
                let best = errors.iter().copied().fold(f64::INFINITY, f64::min);
                assert!(best < 1e-2, "{act:?} layer {l} tensor {tensor}: {errors:?}");
            }
        }
    }
}
