//! Budget certificates: on random small models every bound (IBP and CROWN) is at most the
//! exact minimum found by exhaustive search over all sets of at most k additions, equals it
//! without hidden layers, and a monotone model keeps its clean logit; the sparse fast path
//! agrees with the dense one; the report and threshold helpers do what they say.

use nonneg::certify::budget::{
    certify_budgets, parse_budgets, threshold_at_fpr, Budget, BudgetCertifier, BudgetConfig,
    Intermediate, SampleBounds,
};
use nonneg::data::{CsrMatrix, Dataset, DenseMatrix, Features};
use nonneg::model::scaler::{ScaleKind, Scaler};
use nonneg::model::{Activation, Constraint, Dense, Mlp, Model};
use nonneg::rng::Rng;

const ACTS: [Activation; 6] = Activation::HIDDEN;
const K: [Budget; 5] = [
    Budget::Finite(0),
    Budget::Finite(1),
    Budget::Finite(2),
    Budget::Finite(3),
    Budget::Unbounded,
];

/// Rows of `cols` features: binary (sparse-like presence) or real values in [0, 2).
fn rows(n: usize, cols: usize, binary: bool, rng: &mut Rng) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            (0..cols)
                .map(|_| match (binary, rng.below(3)) {
                    (_, 0) => 0.0,
                    (true, _) => (rng.below(2) as f32).min(1.0),
                    (false, _) => 2.0 * rng.uniform_f32(),
                })
                .collect()
        })
        .collect()
}

fn features(rows: &[Vec<f32>], sparse: bool) -> Features {
    let cols = rows[0].len();
    if !sparse {
        return Features::Dense(DenseMatrix {
            rows: rows.len(),
            cols,
            values: rows.concat(),
        });
    }
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
}

fn layer(n_in: usize, n_out: usize, act: Activation, scale: f32, rng: &mut Rng) -> Dense {
    let mut l = Dense::zeros(n_in, n_out, act);
    l.weight
        .iter_mut()
        .for_each(|w| *w = scale * rng.normal_f32());
    l.bias.iter_mut().for_each(|b| *b = 0.5 * rng.normal_f32());
    l
}

/// A random model: `hidden` widths, `act`, optional skip, some NonPos rows (never added),
/// monotone (every weight made non-negative) or not, caps at or above the data's values.
fn model(case: &Case, rows: &[Vec<f32>], rng: &mut Rng) -> Model {
    let d = rows[0].len();
    let mut widths = vec![d];
    widths.extend(&case.hidden);
    widths.push(1);
    let mut layers: Vec<Dense> = widths
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let act = if i + 2 == widths.len() {
                Activation::Identity
            } else {
                case.act
            };
            layer(w[0], w[1], act, 1.5 / (w[0] as f32).sqrt(), rng)
        })
        .collect();
    let mut skip = case
        .skip
        .then(|| layer(d, 1, Activation::Identity, 0.5, rng));
    if let Some(s) = &mut skip {
        s.bias = vec![0.0];
    }
    if case.monotone {
        for l in layers.iter_mut().chain(skip.iter_mut()) {
            l.weight.iter_mut().for_each(|w| *w = w.abs());
        }
    } else if case.nonpos {
        // Feature 0 is declared lowered by additions: NonPos on its first-layer row.
        let l0 = &mut layers[0];
        let n = l0.n_out;
        l0.weight[..n].iter_mut().for_each(|w| *w = -w.abs());
        l0.kernel_constraints = vec![Constraint::NonPos {
            rows: Some(vec![0]),
        }];
    }
    let mut feature_max: Vec<f32> = (0..d)
        .map(|j| rows.iter().map(|r| r[j]).fold(0.0, f32::max))
        .collect();
    if !case.binary {
        // Some caps above every value: real-valued raises that move every row.
        feature_max
            .iter_mut()
            .for_each(|m| *m += rng.below(2) as f32);
    }
    let scaler = match (case.scale, case.sparse) {
        (ScaleKind::None, _) => Scaler::identity(),
        (kind, true) => Scaler {
            kind,
            shift: vec![0.0; d],
            mult: (0..d).map(|_| 0.5 + rng.uniform_f32()).collect(),
            ..Scaler::identity()
        },
        (kind, false) => Scaler::fit(kind, &features(rows, false)).unwrap(),
    };
    Model {
        scaler,
        feature_max: Some(feature_max),
        ..Model::new(Mlp {
            input_dim: d,
            sparse_input: case.sparse,
            layers,
            skip,
        })
    }
}

#[derive(Clone, Debug)]
struct Case {
    hidden: Vec<usize>,
    act: Activation,
    skip: bool,
    sparse: bool,
    binary: bool,
    monotone: bool,
    nonpos: bool,
    scale: ScaleKind,
    intermediate: Intermediate,
}

fn random_case(i: u64, rng: &mut Rng) -> Case {
    let depth = (i % 3) as usize;
    let sparse = rng.below(2) == 0;
    let scales = if sparse {
        [ScaleKind::None, ScaleKind::Log1p, ScaleKind::Minmax]
    } else {
        [
            ScaleKind::None,
            ScaleKind::Standard,
            ScaleKind::Log1pStandard,
        ]
    };
    Case {
        hidden: (0..depth).map(|_| 2 + rng.below(5) as usize).collect(),
        act: ACTS[(i / 3) as usize % ACTS.len()],
        skip: rng.below(2) == 0,
        sparse,
        binary: rng.below(2) == 0,
        monotone: false,
        nonpos: rng.below(4) == 0,
        scale: scales[rng.below(3) as usize],
        intermediate: [Intermediate::Ibp, Intermediate::Crown][rng.below(2) as usize],
    }
}

/// The exact minimum of the logit over every set of at most `k` additions (each raised
/// feature set to its cap, as `attack` does), for each finite `k` of [`K`]; the unbounded
/// budget is every addable feature, i.e. the largest set searched.
fn exhaustive(model: &Model, row: &[f32], sparse: bool) -> Vec<f32> {
    let d = row.len();
    let caps = model.feature_max.as_ref().unwrap();
    let signs = nonneg::model::init::row_signs(&model.mlp.layers[0]);
    let cand: Vec<usize> = (0..d)
        .filter(|&j| signs[j] >= 0.0 && row[j] < caps[j])
        .collect();
    let mut sets: Vec<Vec<usize>> = vec![vec![]];
    let mut by_size = vec![vec![vec![]]];
    for _ in 1..=cand.len() {
        let next: Vec<Vec<usize>> = by_size
            .last()
            .unwrap()
            .iter()
            .flat_map(|s: &Vec<usize>| {
                let start = s
                    .last()
                    .map_or(0, |&j| cand.iter().position(|&c| c == j).unwrap() + 1);
                cand[start..]
                    .iter()
                    .map(move |&j| [s.clone(), vec![j]].concat())
            })
            .collect();
        sets.extend(next.iter().cloned());
        by_size.push(next);
    }
    let attacked: Vec<Vec<f32>> = sets
        .iter()
        .map(|s| {
            let mut r = row.to_vec();
            s.iter().for_each(|&j| r[j] = caps[j]);
            r
        })
        .collect();
    let logits = model.logits(&features(&attacked, sparse));
    K.iter()
        .map(|b| {
            let k = b.finite().unwrap_or(usize::MAX);
            sets.iter()
                .zip(&logits)
                .filter(|(s, _)| s.len() <= k)
                .map(|(_, &l)| l)
                .fold(f32::INFINITY, f32::min)
        })
        .collect()
}

fn tol(v: f32) -> f32 {
    1e-4 * (1.0 + v.abs())
}

fn bounds_of(model: &Model, rows: &[Vec<f32>], case: &Case) -> Vec<SampleBounds> {
    let mut cfg = BudgetConfig::new(K.to_vec());
    cfg.intermediate = case.intermediate;
    let c = BudgetCertifier::new(model, &cfg, case.sparse).unwrap();
    // A random model may happen to be monotone; a monotone one always is recognised.
    assert!(c.monotone() || !case.monotone, "{case:?}");
    let ids: Vec<usize> = (0..rows.len()).collect();
    c.bounds(&features(rows, case.sparse), &ids).unwrap()
}

#[test]
fn bounds_are_sound_on_random_models_and_exact_without_hidden_layers() {
    let mut rng = Rng::new(7);
    let (mut checked, mut crown_tighter, mut ibp_tighter, mut with_hidden) = (0, 0, 0, 0);
    for i in 0..240u64 {
        let case = random_case(i, &mut rng);
        let d = 4 + rng.below(7) as usize;
        let data = rows(3, d, case.binary, &mut rng);
        let m = model(&case, &data, &mut rng);
        let bounds = bounds_of(&m, &data, &case);
        for (row, b) in data.iter().zip(&bounds) {
            let exact = exhaustive(&m, row, case.sparse);
            assert!((b.clean - exact[0]).abs() <= tol(exact[0]), "{case:?}");
            for (k, &e) in exact.iter().enumerate() {
                for (name, v) in [
                    ("bound", b.bound[k]),
                    ("ibp", b.ibp[k]),
                    ("crown", b.crown[k]),
                ] {
                    assert!(
                        v <= e + tol(e),
                        "{name} {v} above the exact minimum {e} at budget {} ({case:?})",
                        K[k]
                    );
                }
                if case.hidden.is_empty() {
                    assert!(
                        (b.bound[k] - e).abs() <= tol(e),
                        "linear model: bound {} != exact {e} at budget {} ({case:?})",
                        b.bound[k],
                        K[k]
                    );
                } else {
                    with_hidden += 1;
                    crown_tighter += usize::from(b.crown[k] > b.ibp[k] + tol(e));
                    ibp_tighter += usize::from(b.ibp[k] > b.crown[k] + tol(e));
                }
                checked += 1;
            }
        }
    }
    eprintln!(
        "{checked} bounds checked; with hidden layers ({with_hidden}): CROWN tighter than IBP \
         in {crown_tighter}, IBP tighter in {ibp_tighter}"
    );
}

#[test]
fn monotone_models_keep_their_clean_logit_at_every_budget() {
    let mut rng = Rng::new(11);
    for i in 0..36u64 {
        let mut case = random_case(i, &mut rng);
        case.monotone = true;
        case.nonpos = false;
        let data = rows(3, 6, case.binary, &mut rng);
        let m = model(&case, &data, &mut rng);
        for b in bounds_of(&m, &data, &case) {
            assert!(b.bound.iter().all(|&v| v == b.clean), "{case:?}: {b:?}");
        }
    }
}

#[test]
fn the_sparse_lists_agree_with_the_dense_scan_on_long_rows() {
    // 1,500 features; rows with about half of them present walk the sorted lists (kept:
    // largest budget + 512) past their own features; rows with all but r of them present
    // run the lists out, forcing the full-column scan.
    let mut rng = Rng::new(3);
    let d = 1500;
    let mut data: Vec<Vec<f32>> = (0..3)
        .map(|_| (0..d).map(|_| (rng.below(2) as f32).min(1.0)).collect())
        .collect();
    for r in 0..4 {
        let mut row = vec![1.0; d];
        (0..r).for_each(|_| row[rng.below(d as u64) as usize] = 0.0);
        data.push(row);
    }
    for act in [Activation::Relu, Activation::Tanh] {
        let case = Case {
            hidden: vec![8],
            act,
            skip: true,
            sparse: true,
            binary: true,
            monotone: false,
            nonpos: false,
            scale: ScaleKind::None,
            intermediate: Intermediate::Ibp,
        };
        let mut m = model(&case, &data, &mut rng);
        m.feature_max = Some(vec![1.0; d]);
        let sparse = bounds_of(&m, &data, &case);
        let dense = bounds_of(
            &m,
            &data,
            &Case {
                sparse: false,
                ..case.clone()
            },
        );
        for (s, dn) in sparse.iter().zip(&dense) {
            for (k, budget) in K.iter().enumerate() {
                for (a, b) in [(s.ibp[k], dn.ibp[k]), (s.crown[k], dn.crown[k])] {
                    assert!(
                        (a - b).abs() <= tol(b),
                        "{act:?} budget {budget}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn bounds_do_not_depend_on_the_thread_count() {
    let mut rng = Rng::new(5);
    let case = Case {
        hidden: vec![6, 4],
        act: Activation::Sigmoid,
        skip: true,
        sparse: true,
        binary: true,
        monotone: false,
        nonpos: false,
        scale: ScaleKind::None,
        intermediate: Intermediate::Crown,
    };
    let data = rows(150, 40, true, &mut rng);
    let m = model(&case, &data, &mut rng);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| bounds_of(&m, &data, &case))
    };
    assert_eq!(run(1), run(2));
}

fn dataset(rows: &[Vec<f32>], y: Vec<f32>) -> Dataset {
    Dataset {
        x: features(rows, true),
        y: Some(y),
        n_labels: 1,
        label_names: vec!["label".into()],
        feature_names: None,
        source: "test".into(),
    }
}

#[test]
fn the_report_counts_positives_certified_at_the_threshold() {
    let mut rng = Rng::new(9);
    let case = Case {
        hidden: vec![5],
        act: Activation::Relu,
        skip: false,
        sparse: true,
        binary: true,
        monotone: false,
        nonpos: false,
        scale: ScaleKind::None,
        intermediate: Intermediate::Auto,
    };
    let data = rows(60, 12, true, &mut rng);
    let m = model(&case, &data, &mut rng);
    let y: Vec<f32> = (0..60).map(|r| (r % 2) as f32).collect();
    let ds = dataset(&data, y.clone());
    let thr = threshold_at_fpr(&m, &ds, 0, 0.1).unwrap();
    let logits = m.logits(&ds.x);
    let fp = (0..60).filter(|&r| y[r] == 0.0 && logits[r] >= thr).count();
    assert!(fp <= 3, "{fp} false positives of 30 at 10%");
    let cfg = BudgetConfig::new(parse_budgets("2,inf,0").unwrap());
    assert_eq!(
        cfg.budgets,
        vec![Budget::Finite(0), Budget::Finite(2), Budget::Unbounded]
    );
    let rep = certify_budgets(&m, &ds, &cfg, thr).unwrap();
    assert_eq!(rep.positives, 30);
    assert_eq!(rep.samples.len(), 30);
    for (b, r) in rep.rates.iter().enumerate() {
        let n = rep.samples.iter().filter(|s| s.bound[b] >= thr).count();
        assert_eq!(r.certified, n);
        assert!(r.rate >= r.ibp_rate.max(r.crown_rate) - 1e-12);
    }
    // Budget 0 certifies exactly the clean detections; larger budgets never more.
    assert_eq!(rep.rates[0].certified, rep.detected);
    assert!(rep
        .rates
        .windows(2)
        .all(|w| w[1].certified <= w[0].certified));
    let csv = rep.csv_text();
    assert!(csv.starts_with("row,clean,bound_0,bound_2,bound_inf,ibp_0"));
    assert_eq!(csv.lines().count(), 31);
    assert!(parse_budgets("5,x").is_err());
}
