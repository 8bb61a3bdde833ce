//! `certify`: property tests over random models (certified models really are monotone in
//! their declared features; a single negative weight on a live path is found exactly and a
//! decreasing input pair exists; negative weights on dead paths are explained, not
//! flagged), featurizer and scaler reasons, feature lists. The command line is in
//! tests/cli_certify.rs.

use nonneg::certify::{certify, certify_directions, resolve_features, Certificate, Directions};
use nonneg::data::{CsrMatrix, DenseMatrix, Features};
use nonneg::features::{FeaturizerSpec, TextOptions, TextSpec, Vocabulary};
use nonneg::model::scaler::ScaleKind;
use nonneg::model::{Activation, Dense, Mlp, Model, Scaler};
use nonneg::rng::Rng;
use std::path::Path;

const CASES: u64 = 200;

// ---------------------------------------------------------------------------------------
// Random models.

#[derive(Clone, Debug)]
struct Shape {
    widths: Vec<usize>,
    acts: Vec<Activation>,
    sparse: bool,
}

impl Shape {
    fn n_layers(&self) -> usize {
        self.widths.len() - 1
    }
}

fn random_shape(rng: &mut Rng) -> Shape {
    let input = 1 + rng.below(10) as usize;
    let hidden = rng.below(4) as usize;
    let mut widths = vec![input];
    for _ in 0..hidden {
        widths.push(1 + rng.below(6) as usize);
    }
    widths.push(1 + rng.below(2) as usize);
    let mut acts: Vec<Activation> = (0..hidden)
        .map(|_| Activation::HIDDEN[rng.below(Activation::HIDDEN.len() as u64) as usize])
        .collect();
    acts.push(Activation::Identity);
    Shape {
        widths,
        acts,
        sparse: rng.below(2) == 0,
    }
}

/// A network of `shape` with weights from `weight` and biases from `bias(layer)`.
fn build(
    shape: &Shape,
    rng: &mut Rng,
    mut weight: impl FnMut(&mut Rng) -> f32,
    mut bias: impl FnMut(&mut Rng, usize) -> f32,
) -> Mlp {
    let layers = (0..shape.n_layers())
        .map(|l| {
            let (n_in, n_out) = (shape.widths[l], shape.widths[l + 1]);
            Dense {
                n_in,
                n_out,
                weight: (0..n_in * n_out).map(|_| weight(rng)).collect(),
                bias: (0..n_out).map(|_| bias(rng, l)).collect(),
                activation: shape.acts[l],
                kernel_constraints: vec![],
                bias_constraints: vec![],
            }
        })
        .collect();
    Mlp {
        input_dim: shape.widths[0],
        sparse_input: shape.sparse,
        layers,
        skip: None,
    }
}

/// Non-negative weights, a third of them zero (of either sign), biases of any sign.
fn random_monotone(shape: &Shape, rng: &mut Rng) -> Mlp {
    build(
        shape,
        rng,
        |r| match r.below(6) {
            0 => 0.0,
            1 => -0.0,
            2 => r.uniform_f32() * 1e-3,
            _ => r.uniform_f32() * 2.0,
        },
        |r, _| r.normal_f32(),
    )
}

/// Every weight in [0.05, 0.3]: every unit reaches the output and is reached. Hidden
/// biases in [0.2, 0.5]: on non-negative inputs every ReLU is on.
fn random_positive(shape: &Shape, rng: &mut Rng) -> Mlp {
    let last = shape.n_layers() - 1;
    build(
        shape,
        rng,
        |r| 0.05 + 0.25 * r.uniform_f32(),
        |r, l| {
            if l == last {
                r.normal_f32()
            } else {
                0.2 + 0.3 * r.uniform_f32()
            }
        },
    )
}

fn model(mlp: Mlp) -> Model {
    let labels = mlp.n_labels();
    Model {
        label_names: (0..labels).map(|k| format!("y{k}")).collect(),
        ..Model::new(mlp)
    }
}

fn set_weight(m: &mut Model, layer: usize, i: usize, o: usize, w: f32) {
    let l = &mut m.mlp.layers[layer];
    l.weight[i * l.n_out + o] = w;
}

// ---------------------------------------------------------------------------------------
// Evaluating.

/// Rows of dense values as the model's input kind (CSR of the non-zeros when sparse).
fn features(rows: &[Vec<f32>], cols: usize, sparse: bool) -> Features {
    if sparse {
        let mut m = CsrMatrix {
            rows: rows.len(),
            cols,
            indptr: vec![0],
            indices: vec![],
            values: vec![],
        };
        for r in rows {
            for (j, &v) in r.iter().enumerate() {
                if v != 0.0 {
                    m.indices.push(j as u32);
                    m.values.push(v);
                }
            }
            m.indptr.push(m.indices.len());
        }
        Features::Sparse(m)
    } else {
        Features::Dense(DenseMatrix {
            rows: rows.len(),
            cols,
            values: rows.concat(),
        })
    }
}

fn logits(m: &Model, rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let k = m.mlp.n_labels();
    let out = m.logits(&features(rows, m.mlp.input_dim, m.mlp.sparse_input));
    out.chunks(k).map(|c| c.to_vec()).collect()
}

fn random_input(rng: &mut Rng, n: usize, binary: bool) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if binary {
                (rng.below(3) == 0) as u8 as f32
            } else if rng.below(3) == 0 {
                0.0
            } else {
                rng.normal_f32() * 2.0
            }
        })
        .collect()
}

/// Adding declared features (one at a time, and several at once; binary 0 -> 1 or a
/// real-valued increase) never lowers a logit beyond float round-off of the sum.
fn assert_monotone(m: &Model, declared: &[usize], rng: &mut Rng, what: &str) {
    let n = m.mlp.input_dim;
    let binary = m.mlp.sparse_input && rng.below(2) == 0;
    let mut pairs: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
    for _ in 0..8 {
        let x = random_input(rng, n, binary);
        for &j in declared {
            let mut y = x.clone();
            if binary {
                if y[j] != 0.0 {
                    continue;
                }
                y[j] = 1.0;
            } else {
                y[j] += [1e-3, 0.5, 3.0][rng.below(3) as usize] * (0.1 + rng.uniform_f32());
            }
            pairs.push((x.clone(), y));
        }
        let mut y = x.clone();
        for &j in declared {
            if rng.below(2) == 0 {
                y[j] = if binary {
                    1.0
                } else {
                    y[j] + rng.uniform_f32() * 2.0
                };
            }
        }
        pairs.push((x, y));
    }
    let rows: Vec<Vec<f32>> = pairs
        .iter()
        .flat_map(|(x, y)| [x.clone(), y.clone()])
        .collect();
    let out = logits(m, &rows);
    for (p, pair) in out.chunks(2).zip(&pairs) {
        for (&before, &after) in p[0].iter().zip(&p[1]) {
            assert!(
                after >= before - 1e-6 * (1.0 + before.abs()),
                "{what}: logit {before} -> {after} adding to {:?} -> {:?}",
                pair.0,
                pair.1
            );
        }
    }
}

/// The activations of every level for one input (level 0: the input).
fn levels(mlp: &Mlp, x: &[f32]) -> Vec<Vec<f32>> {
    let mut out = vec![x.to_vec()];
    for l in &mlp.layers {
        let a = out.last().unwrap();
        let next = (0..l.n_out)
            .map(|o| {
                let z = l.bias[o]
                    + (0..l.n_in)
                        .map(|i| a[i] * l.weight[i * l.n_out + o])
                        .sum::<f32>();
                l.activation.apply(z, o)
            })
            .collect();
        out.push(next);
    }
    out
}

/// Brute force: an input and a declared feature whose increase lowers some logit.
fn find_decrease(m: &Model, rng: &mut Rng) -> Option<(Vec<f32>, Vec<f32>)> {
    let n = m.mlp.input_dim;
    let mut bases = vec![vec![0.0; n]];
    for _ in 0..4 {
        bases.push((0..n).map(|_| rng.uniform_f32() * 0.1).collect());
    }
    for x in bases {
        let before = &logits(m, std::slice::from_ref(&x))[0];
        for j in 0..n {
            for delta in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1.0] {
                let mut y = x.clone();
                y[j] += delta;
                let after = &logits(m, std::slice::from_ref(&y))[0];
                if before
                    .iter()
                    .zip(after)
                    .any(|(&b, &a)| a < b - 1e-5 * (1.0 + b.abs()))
                {
                    return Some((x, y));
                }
            }
        }
    }
    None
}

fn has_note(c: &Certificate, layer: usize, text: &str) -> bool {
    c.notes
        .iter()
        .any(|n| n.starts_with(&format!("layer {layer}:")) && n.contains(text))
}

// ---------------------------------------------------------------------------------------
// Properties.

#[test]
fn random_monotone_models_are_certified_and_really_monotone() {
    let mut rng = Rng::new(1);
    for case in 0..CASES {
        let shape = random_shape(&mut rng);
        let m = model(random_monotone(&shape, &mut rng));
        let c = certify(&m, None);
        assert!(c.certified, "case {case} {shape:?}: {c}");
        assert!(c.violations.is_empty() && c.reasons.is_empty() && c.notes.is_empty());
        assert_eq!(
            (c.declared, c.n_features),
            (shape.widths[0], shape.widths[0])
        );
        assert!(c.verdict().starts_with("CERTIFIED"));
        let all: Vec<usize> = (0..shape.widths[0]).collect();
        assert_monotone(&m, &all, &mut rng, &format!("case {case} {shape:?}"));
    }
}

#[test]
fn one_negative_weight_on_a_live_path_is_found_exactly_with_a_witness() {
    let mut rng = Rng::new(2);
    let mut by_layer = [0usize; 4];
    for case in 0..CASES {
        let mut shape = random_shape(&mut rng);
        // The witness needs every unit on its path in an increasing range; the concave
        // units of a mixed layer are flat on the positive inputs this model feeds them.
        for act in &mut shape.acts {
            if *act == Activation::Mixed {
                *act = Activation::Tanh;
            }
        }
        let mut m = model(random_positive(&shape, &mut rng));
        let l = rng.below(shape.n_layers() as u64) as usize;
        let (n_in, n_out) = (shape.widths[l], shape.widths[l + 1]);
        let (i, o) = (
            rng.below(n_in as u64) as usize,
            rng.below(n_out as u64) as usize,
        );
        let w = -(1.0 + rng.uniform_f32()) * 1000.0;
        set_weight(&mut m, l, i, o, w);
        // Put the unit the negative weight feeds in its increasing range at x = 0, so that
        // lowering its input lowers its output (a ReLU must not be off there).
        let z0 = levels(&m.mlp, &vec![0.0; shape.widths[0]]);
        let layer = &mut m.mlp.layers[l];
        let z = layer.bias[o]
            + (0..n_in)
                .map(|k| z0[l][k] * layer.weight[k * n_out + o])
                .sum::<f32>();
        layer.bias[o] += 0.5 - z;

        let what = format!("case {case} {shape:?}, layer {l} ({i} -> {o}) = {w}");
        let c = certify(&m, None);
        assert!(!c.certified, "{what}");
        assert_eq!(c.violations.len(), 1, "{what}: {c}");
        let v = &c.violations[0];
        assert_eq!((v.layer, v.count), (l, 1), "{what}");
        assert_eq!(v.most_negative, w, "{what}");
        let src = if l == 0 {
            format!("f{i}")
        } else {
            format!("unit {i}")
        };
        assert_eq!((v.sources.clone(), v.n_sources), (vec![src], 1), "{what}");
        assert_eq!((v.targets.clone(), v.n_targets), (vec![o], 1), "{what}");
        // Every other weight is non-zero: in layer 0 the one feature is uncovered, deeper
        // every feature reaches the violation.
        if l == 0 {
            assert_eq!(c.uncovered, vec![format!("f{i}")], "{what}");
        } else {
            assert_eq!(c.n_uncovered, shape.widths[0], "{what}");
        }
        assert!(c.verdict().starts_with("NOT CERTIFIED"));
        assert!(c.to_string().contains("most negative"));
        let witness = find_decrease(&m, &mut rng);
        assert!(witness.is_some(), "{what}: no input pair shows a decrease");
        by_layer[l] += 1;
    }
    assert!(by_layer.iter().take(3).all(|&n| n > 5), "{by_layer:?}");
}

/// A skip connection (input -> logits) is judged like any other edge: non-negative skip
/// weights keep a monotone network certified (and monotone); one negative skip weight on a
/// declared feature is a violation of that feature alone, with a decreasing input pair;
/// on an undeclared feature it is a note.
#[test]
fn skip_connections_are_certified_by_the_same_rule() {
    let mut rng = Rng::new(7);
    for case in 0..CASES {
        let shape = random_shape(&mut rng);
        let mut m = model(random_monotone(&shape, &mut rng));
        let mut skip = m.mlp.new_skip();
        skip.weight.iter_mut().for_each(|w| {
            *w = if rng.below(3) == 0 {
                0.0
            } else {
                rng.uniform_f32()
            }
        });
        m.mlp.skip = Some(skip);
        let what = format!("case {case} {shape:?}");
        let c = certify(&m, None);
        assert!(c.certified, "{what}: {c}");
        assert!(c.layers.last().unwrap().skip, "{what}");
        let all: Vec<usize> = (0..shape.widths[0]).collect();
        assert_monotone(&m, &all, &mut rng, &what);

        // One negative skip weight, large enough to beat the network's own slope.
        let (i, o) = (
            rng.below(shape.widths[0] as u64) as usize,
            rng.below(m.mlp.n_labels() as u64) as usize,
        );
        let labels = m.mlp.n_labels();
        let w = -1e4 * (1.0 + rng.uniform_f32());
        m.mlp.skip.as_mut().unwrap().weight[i * labels + o] = w;
        let c = certify(&m, None);
        assert!(!c.certified, "{what}");
        assert_eq!(c.violations.len(), 1, "{what}: {c}");
        let v = &c.violations[0];
        assert!(v.skip, "{what}");
        assert_eq!((v.count, v.most_negative), (1, w), "{what}");
        assert_eq!(v.sources, vec![format!("f{i}")], "{what}");
        assert_eq!(c.uncovered, vec![format!("f{i}")], "{what}");
        assert!(
            c.to_string().contains("skip connection: 1 violating"),
            "{what}"
        );
        assert!(
            find_decrease(&m, &mut rng).is_some(),
            "{what}: no decrease found"
        );
        // Not declared: a note, and certified for the others.
        let others: Vec<usize> = all.iter().copied().filter(|&k| k != i).collect();
        if !others.is_empty() {
            let c = certify(&m, Some(&others));
            assert!(c.certified, "{what}: {c}");
            assert!(
                c.notes.iter().any(|n| n.starts_with("skip connection:")),
                "{what}: {c}"
            );
        }
    }
}

/// Feature directions: a monotone network with the first-layer and skip rows of the
/// "down" features negated is certified for up/down, really never drops when up features
/// rise or down features fall, and is NOT certified when every feature is declared up; a
/// positive weight leaving a down feature is a violation naming it.
#[test]
fn directions_are_certified_by_negation_and_really_hold() {
    let mut rng = Rng::new(11);
    let mut checked = 0;
    for case in 0..CASES {
        let shape = random_shape(&mut rng);
        let n = shape.widths[0];
        if n < 2 {
            continue;
        }
        let mut m = model(random_positive(&shape, &mut rng));
        let mut skip = m.mlp.new_skip();
        skip.weight
            .iter_mut()
            .for_each(|w| *w = 0.1 + rng.uniform_f32());
        m.mlp.skip = Some(skip);
        let down: Vec<usize> = (0..n).filter(|&j| j % 2 == 1).collect();
        let up: Vec<usize> = (0..n).filter(|&j| j % 2 == 0).collect();
        for layer in m.mlp.layers.iter_mut().take(1).chain(m.mlp.skip.as_mut()) {
            let w = layer.n_out;
            for &j in &down {
                layer.weight[j * w..(j + 1) * w]
                    .iter_mut()
                    .for_each(|x| *x = -*x);
            }
        }
        let what = format!("case {case} {shape:?}");
        let dirs = Directions {
            up: up.clone(),
            down: down.clone(),
        };
        let c = certify_directions(&m, &dirs);
        assert!(c.certified, "{what}: {c}");
        assert_eq!((c.declared, c.decreasing), (n, down.len()), "{what}");
        assert!(c.verdict().contains("non-increasing in the"));
        // Really: raise the up features, lower the down ones, from random points.
        for _ in 0..8 {
            let x = random_input(&mut rng, n, false);
            let mut y = x.clone();
            for &j in &up {
                y[j] += rng.uniform_f32() * 2.0;
            }
            for &j in &down {
                y[j] -= rng.uniform_f32() * 2.0;
            }
            let out = logits(&m, &[x.clone(), y.clone()]);
            for (&before, &after) in out[0].iter().zip(&out[1]) {
                assert!(
                    after >= before - 1e-5 * (1.0 + before.abs()),
                    "{what}: {before} -> {after}"
                );
            }
        }
        // Declared all "up": the negated rows are violations.
        assert!(!certify(&m, None).certified, "{what}");
        // One positive weight leaving a down feature breaks the directions' certificate
        // (its skip weight zeroed: one above the MLP's Lipschitz bound would still prove
        // it, tests/lmn.rs).
        let j = down[0];
        let layer = &mut m.mlp.layers[0];
        layer.weight[j * layer.n_out] = 0.5;
        let skip = m.mlp.skip.as_mut().expect("set above");
        skip.weight[j * skip.n_out..(j + 1) * skip.n_out].fill(0.0);
        let c = certify_directions(&m, &dirs);
        assert!(!c.certified, "{what}");
        assert!(c.uncovered.contains(&format!("f{j}")), "{what}: {c}");
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn negative_weights_on_dead_paths_are_noted_not_flagged() {
    let mut rng = Rng::new(3);
    let (mut undeclared, mut dead, mut unreached) = (0, 0, 0);
    for case in 0..CASES {
        let mut shape = random_shape(&mut rng);
        if shape.widths[0] < 2 {
            shape.widths[0] = 2;
        }
        let n = shape.widths[0];
        let hidden = shape.n_layers() - 1;
        let kind = if hidden == 0 { 0 } else { rng.below(3) };
        let mut m = model(random_positive(&shape, &mut rng));
        let what = format!("case {case} kind {kind} {shape:?}");
        match kind {
            // A feature that is not declared: negative weights on its row.
            0 => {
                let j = rng.below(n as u64) as usize;
                let n1 = shape.widths[1];
                for o in 0..n1 {
                    if o == 0 || rng.below(2) == 0 {
                        set_weight(&mut m, 0, j, o, -rng.uniform_f32() - 1e-3);
                    }
                }
                let declared: Vec<usize> = (0..n).filter(|&k| k != j).collect();
                let c = certify(&m, Some(&declared));
                assert!(c.certified, "{what}: {c}");
                assert!(
                    has_note(&c, 0, "1 input features that are not declared"),
                    "{what}: {:?}",
                    c.notes
                );
                assert_monotone(&m, &declared, &mut rng, &what);
                // With every feature declared, exactly that one is uncovered.
                let c = certify(&m, None);
                assert!(!c.certified);
                assert_eq!(c.uncovered, vec![format!("f{j}")], "{what}");
                undeclared += 1;
            }
            // A hidden unit whose outgoing weights are all zero: negative weights into it.
            1 => {
                let l = rng.below(hidden as u64) as usize; // layer into a hidden level
                let (n_in, n_out) = (shape.widths[l], shape.widths[l + 1]);
                let o = rng.below(n_out as u64) as usize;
                for k in 0..shape.widths[l + 2] {
                    let z = if rng.below(2) == 0 { 0.0 } else { -0.0 };
                    set_weight(&mut m, l + 1, o, k, z);
                }
                let i = rng.below(n_in as u64) as usize;
                set_weight(&mut m, l, i, o, -5.0);
                let c = certify(&m, None);
                assert!(c.certified, "{what}: {c}");
                assert!(
                    has_note(&c, l, "1 units that do not reach the output"),
                    "{what}: {:?}",
                    c.notes
                );
                let all: Vec<usize> = (0..n).collect();
                assert_monotone(&m, &all, &mut rng, &what);
                dead += 1;
            }
            // A hidden unit no feature reaches (all incoming weights zero): negative
            // weights out of it.
            _ => {
                let l = 1 + rng.below(hidden as u64) as usize; // level of the unit
                let u = rng.below(shape.widths[l] as u64) as usize;
                for k in 0..shape.widths[l - 1] {
                    set_weight(&mut m, l - 1, k, u, 0.0);
                }
                for k in 0..shape.widths[l + 1] {
                    if k == 0 || rng.below(2) == 0 {
                        set_weight(&mut m, l, u, k, -3.0);
                    }
                }
                let c = certify(&m, None);
                assert!(c.certified, "{what}: {c}");
                assert!(
                    has_note(&c, l, "from 1 units no declared feature reaches"),
                    "{what}: {:?}",
                    c.notes
                );
                let all: Vec<usize> = (0..n).collect();
                assert_monotone(&m, &all, &mut rng, &what);
                unreached += 1;
            }
        }
    }
    assert!(undeclared > 10 && dead > 10 && unreached > 10);
}

#[test]
fn a_tiny_negative_weight_is_a_violation_and_negative_zero_is_not() {
    let mut rng = Rng::new(4);
    for case in 0..50 {
        let shape = random_shape(&mut rng);
        let mut m = model(random_positive(&shape, &mut rng));
        let l = rng.below(shape.n_layers() as u64) as usize;
        let i = rng.below(shape.widths[l] as u64) as usize;
        let o = rng.below(shape.widths[l + 1] as u64) as usize;
        set_weight(&mut m, l, i, o, -0.0);
        assert!(certify(&m, None).certified, "case {case}");
        set_weight(&mut m, l, i, o, -1e-12);
        let c = certify(&m, None);
        assert!(!c.certified, "case {case}");
        assert_eq!(c.violations.len(), 1);
        assert_eq!(c.violations[0].most_negative, -1e-12f32);
        assert_eq!(c.violations[0].layer, l);
        set_weight(&mut m, l, i, o, f32::MIN_POSITIVE * 1e-3); // subnormal positive
        assert!(certify(&m, None).certified, "case {case}");
    }
}

// ---------------------------------------------------------------------------------------
// Around the network.

fn terms(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{i:02}")).collect()
}

#[test]
fn a_tfidf_featurizer_is_not_certified_whatever_the_weights() {
    let mut rng = Rng::new(5);
    let shape = Shape {
        widths: vec![6, 3, 1],
        acts: vec![Activation::Relu, Activation::Identity],
        sparse: true,
    };
    let mut m = model(random_positive(&shape, &mut rng));
    let spec = FeaturizerSpec::text(TextSpec {
        options: TextOptions {
            tfidf: true,
            ..TextOptions::default()
        },
        vocabulary: Vocabulary::Terms(terms(6)),
        idf: Some(vec![1.5; 6]),
    });
    m.featurizer = Some(spec);
    let c = certify(&m, None);
    assert!(!c.certified);
    assert!(c.violations.is_empty());
    assert!(
        c.reasons.iter().any(|r| r.contains("tf-idf")),
        "{:?}",
        c.reasons
    );
    assert!(c.verdict().contains("tf-idf"), "{}", c.verdict());

    // The same model with a binary featurizer is certified; names come from its vocabulary.
    let spec = FeaturizerSpec::text(TextSpec {
        options: TextOptions::default(),
        vocabulary: Vocabulary::Terms(terms(6)),
        idf: None,
    });
    m.featurizer = Some(spec);
    assert!(certify(&m, None).certified);
    set_weight(&mut m, 0, 4, 1, -0.5);
    let c = certify(&m, None);
    assert_eq!(c.violations[0].sources, vec!["t04"]);
    assert_eq!(c.uncovered, vec!["t04"]);
    let list = resolve_features(&m, "t00\n# x\n5\n", Path::new("f.txt")).unwrap();
    assert_eq!(list, vec![0, 5]);
    assert!(certify(&m, Some(&list)).certified);

    // An unreadable featurizer cannot reach certify: the model does not load
    // (`model::io`'s tests).
}

#[test]
fn a_decreasing_scaler_is_a_reason() {
    let mut rng = Rng::new(6);
    let shape = Shape {
        widths: vec![3, 1],
        acts: vec![Activation::Identity],
        sparse: false,
    };
    let mut m = model(random_positive(&shape, &mut rng));
    m.scaler = Scaler {
        kind: ScaleKind::Standard,
        shift: vec![0.0; 3],
        mult: vec![1.0, -1.0, 1.0],
        ..Scaler::identity()
    };
    let c = certify(&m, None);
    assert!(!c.certified);
    assert!(c.reasons[0].contains("scaling"), "{:?}", c.reasons);
    m.scaler.mult[1] = 0.5;
    assert!(certify(&m, None).certified);
}

#[test]
fn feature_files_resolve_names_and_indices_and_name_bad_lines() {
    let mut rng = Rng::new(7);
    let shape = Shape {
        widths: vec![4, 1],
        acts: vec![Activation::Identity],
        sparse: false,
    };
    let mut m = model(random_positive(&shape, &mut rng));
    m.feature_names = Some(vec!["1".into(), "b".into(), "c#".into(), "d".into()]);
    let p = Path::new("dir/features.txt");
    // "1" is a name (feature 0), not index 1.
    assert_eq!(
        resolve_features(&m, "# header\n\n1\n  c#  \n3\nb\n", p).unwrap(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(resolve_features(&m, "1\n", p).unwrap(), vec![0]);
    let e = resolve_features(&m, "b\n\nnope\n", p)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dir/features.txt:3") && e.contains("nope"),
        "{e}"
    );
    let e = resolve_features(&m, "7\n", p).unwrap_err().to_string();
    assert!(
        e.contains("features.txt:1") && e.contains("out of range"),
        "{e}"
    );
    assert!(resolve_features(&m, "# nothing\n", p).is_err());
}

#[test]
fn a_wide_sparse_first_layer_is_certified_within_30_seconds() {
    // 2^18 x 64 first layer (a quarter of the size the algorithm is meant for), all free
    // rows but one declared feature.
    let n = 1 << 18;
    let h = 64;
    let mut rng = Rng::new(8);
    let mut first = Dense::zeros(n, h, Activation::Relu);
    for w in first.weight.iter_mut() {
        *w = rng.uniform_f32() - 0.5;
    }
    for o in 0..h {
        first.weight[12345 * h + o] = rng.uniform_f32();
    }
    let mut out = Dense::zeros(h, 1, Activation::Identity);
    out.weight.iter_mut().for_each(|w| *w = 0.1);
    let m = model(Mlp {
        input_dim: n,
        sparse_input: true,
        layers: vec![first, out],
        skip: None,
    });
    let t = std::time::Instant::now();
    let c = certify(&m, Some(&[12345]));
    assert!(c.certified, "{c}");
    assert!(c.notes[0].contains("not declared"));
    let c = certify(&m, None);
    assert!(!c.certified);
    assert_eq!(c.n_uncovered, n - 1);
    assert_eq!(c.uncovered.len(), nonneg::certify::UNCOVERED_CAP);
    assert_eq!(c.violations[0].sources.len(), nonneg::certify::LIST_CAP);
    assert!(t.elapsed().as_secs_f64() < 30.0);
}
