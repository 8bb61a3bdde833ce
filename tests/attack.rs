//! Feature-addition attacks: the incremental scores are exact (against full forward passes
//! on the modified rows, dense and sparse, with scalings), greedy picks the true best
//! feature, unconstrained models are evaded and monotone ones never are, and the budget,
//! feature, cap, query and seed options do what they say. The CLI is in tests/cli_attack.rs.

mod common;

use common::{dense_non_negative, sparse};
use nonneg::attack::{
    self, attack, AttackConfig, Attacker, Method, RowRef, Scoring, TargetOutcome, Workspace,
};
use nonneg::data::feature_list::resolve_feature_list;
use nonneg::data::{CsrMatrix, Dataset, DenseMatrix, Features};
use nonneg::model::scaler::{ScaleKind, Scaler};
use nonneg::model::{Activation, Constraint, Model};
use nonneg::rng::Rng;
use nonneg::train::{build_network, Preset, TrainConfig};
use std::path::Path;

const METHODS: [Method; 4] = [
    Method::Greedy,
    Method::Gradient,
    Method::Query,
    Method::Random,
];

/// A random model (`hidden` widths, `act`), scaler fitted on `x`, threshold 0.
fn model(
    x: &Features,
    hidden: &[usize],
    act: Activation,
    preset: Preset,
    scale: ScaleKind,
    seed: u64,
) -> Model {
    let mut cfg = TrainConfig::new(hidden.to_vec(), preset);
    cfg.activation = act;
    cfg.seed = seed;
    let mut mlp = build_network(&cfg, x.cols(), x.is_sparse(), 1).unwrap();
    if preset == Preset::Monotone {
        for l in &mut mlp.layers {
            for w in &mut l.weight {
                *w = w.abs();
            }
        }
        // The monotone recipe's skip connection starts at zero: give it weight.
        let mut rng = Rng::new(seed + 2000);
        if let Some(s) = &mut mlp.skip {
            s.weight
                .iter_mut()
                .for_each(|w| *w = 0.2 * rng.uniform_f32());
        }
    }
    let scaler = match (scale, x) {
        (ScaleKind::None, _) => Scaler::identity(),
        // Sparse data keeps zeros at zero: a positive factor per feature.
        (ScaleKind::Standard, Features::Sparse(_)) => {
            let mut rng = Rng::new(seed + 100);
            Scaler {
                kind: ScaleKind::Standard,
                shift: vec![0.0; x.cols()],
                mult: (0..x.cols()).map(|_| 0.5 + rng.uniform_f32()).collect(),
                ..Scaler::identity()
            }
        }
        (kind, _) => Scaler::fit(kind, x).unwrap(),
    };
    Model {
        scaler,
        feature_max: Some(nonneg::pipeline::feature_max(x)),
        ..Model::new(mlp)
    }
}

/// `x` with every row labelled positive.
fn dataset(x: Features) -> Dataset {
    let rows = x.rows();
    common::dataset(x, vec![1.0; rows], 1)
}

/// Row `r` of `x` with feature `j` raised to `max(current, cap)`, as a one-row matrix in
/// the same format.
fn modified_row(x: &Features, r: usize, j: usize, cap: f32) -> Features {
    match x {
        Features::Dense(m) => {
            let mut v = m.row(r).to_vec();
            v[j] = v[j].max(cap);
            Features::Dense(DenseMatrix {
                rows: 1,
                cols: m.cols,
                values: v,
            })
        }
        Features::Sparse(m) => {
            let (idx, val) = m.row(r);
            let mut pairs: Vec<(u32, f32)> = idx.iter().copied().zip(val.iter().copied()).collect();
            match pairs.iter_mut().find(|(i, _)| *i as usize == j) {
                Some(p) => p.1 = p.1.max(cap),
                None => pairs.push((j as u32, cap)),
            }
            pairs.sort_by_key(|p| p.0);
            Features::Sparse(CsrMatrix {
                rows: 1,
                cols: m.cols,
                indptr: vec![0, pairs.len()],
                indices: pairs.iter().map(|p| p.0).collect(),
                values: pairs.iter().map(|p| p.1).collect(),
            })
        }
    }
}

fn with_rows(x: &Features, r: usize, changes: &[(usize, f32)]) -> Features {
    let mut f = match x {
        Features::Dense(m) => Features::Dense(DenseMatrix {
            rows: 1,
            cols: m.cols,
            values: m.row(r).to_vec(),
        }),
        Features::Sparse(m) => {
            let (i, v) = m.row(r);
            Features::Sparse(CsrMatrix {
                rows: 1,
                cols: m.cols,
                indptr: vec![0, i.len()],
                indices: i.to_vec(),
                values: v.to_vec(),
            })
        }
    };
    for &(j, cap) in changes {
        f = modified_row(&f, 0, j, cap);
    }
    f
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

struct Case {
    name: &'static str,
    sparse: bool,
    scale: ScaleKind,
    hidden: &'static [usize],
    act: Activation,
    max_value: Option<f32>,
    /// A random linear skip connection from the input to the logit.
    skip: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "dense none relu 1 layer",
        sparse: false,
        scale: ScaleKind::None,
        hidden: &[16],
        act: Activation::Relu,
        max_value: None,
        skip: false,
    },
    Case {
        name: "dense standard relu 2 layers",
        sparse: false,
        scale: ScaleKind::Standard,
        hidden: &[24, 8],
        act: Activation::Relu,
        max_value: None,
        skip: true,
    },
    Case {
        name: "dense log1p-standard leaky 2 layers, max-value",
        sparse: false,
        scale: ScaleKind::Log1pStandard,
        hidden: &[20, 6],
        act: Activation::LeakyRelu,
        max_value: Some(3.0),
        skip: true,
    },
    Case {
        name: "dense standard tanh 2 layers",
        sparse: false,
        scale: ScaleKind::Standard,
        hidden: &[12, 5],
        act: Activation::Tanh,
        max_value: None,
        skip: true,
    },
    Case {
        name: "sparse none relu 2 layers",
        sparse: true,
        scale: ScaleKind::None,
        hidden: &[32, 8],
        act: Activation::Relu,
        max_value: None,
        skip: true,
    },
    Case {
        name: "sparse standard-like relu 1 layer",
        sparse: true,
        scale: ScaleKind::Standard,
        hidden: &[16],
        act: Activation::Relu,
        max_value: None,
        skip: false,
    },
    Case {
        name: "sparse minmax sigmoid 2 layers, max-value",
        sparse: true,
        scale: ScaleKind::Minmax,
        hidden: &[10, 4],
        act: Activation::Sigmoid,
        max_value: Some(1.5),
        skip: false,
    },
    Case {
        name: "sparse log1p leaky 1 layer",
        sparse: true,
        scale: ScaleKind::Log1p,
        hidden: &[12],
        act: Activation::LeakyRelu,
        max_value: None,
        skip: true,
    },
    Case {
        name: "sparse none mixed 2 layers",
        sparse: true,
        scale: ScaleKind::None,
        hidden: &[9, 4],
        act: Activation::Mixed,
        max_value: None,
        skip: true,
    },
    Case {
        name: "dense none logistic regression",
        sparse: false,
        scale: ScaleKind::None,
        hidden: &[],
        act: Activation::Relu,
        max_value: None,
        skip: false,
    },
];

/// The unconstrained model of a case, with a random skip connection when it asks for one.
fn case_model(x: &Features, case: &Case, seed: u64) -> Model {
    let mut m = model(x, case.hidden, case.act, Preset::None, case.scale, seed);
    if case.skip {
        let mut rng = Rng::new(seed + 1000);
        let mut skip = m.mlp.new_skip();
        skip.weight
            .iter_mut()
            .for_each(|w| *w = rng.uniform_f32() - 0.5);
        m.mlp.skip = Some(skip);
    }
    m
}

fn scorings(act: Activation, hidden: &[usize]) -> Vec<Scoring> {
    let piecewise = matches!(act, Activation::Relu | Activation::LeakyRelu);
    if piecewise && !hidden.is_empty() {
        vec![Scoring::Batched, Scoring::Cached]
    } else {
        vec![Scoring::Batched]
    }
}

#[test]
fn incremental_scores_equal_full_forward_passes_and_greedy_picks_the_true_best() {
    for (ci, case) in CASES.iter().enumerate() {
        let mut rng = Rng::new(ci as u64);
        let cols = 30;
        let x = if case.sparse {
            sparse(12, cols, 4, &mut rng)
        } else {
            dense_non_negative(12, cols, &mut rng)
        };
        let m = case_model(&x, case, ci as u64);
        let fmax = m.feature_max.clone().unwrap();
        let cap = |j: usize| case.max_value.unwrap_or(fmax[j]);
        for scoring in scorings(case.act, case.hidden) {
            let mut cfg = AttackConfig::new(Method::Greedy, vec![3]);
            cfg.max_value = case.max_value;
            cfg.scoring = scoring;
            let att = Attacker::new(&m, &cfg, case.sparse).unwrap();
            assert_eq!(att.scoring(), scoring);
            let mut ws = Workspace::default();
            for r in 0..4 {
                let mut st = att.start(RowRef::of(&x, r));
                let mut changes: Vec<(usize, f32)> = Vec::new();
                // Score, add the best, score again: checks the updates too.
                for step in 0..3 {
                    let base = with_rows(&x, r, &changes);
                    let current = m.logits(&base)[0];
                    assert!(
                        close(att.logit(&st, &mut ws), current),
                        "{}: current logit",
                        case.name
                    );
                    let scores = att.candidate_logits(&st, &mut ws);
                    assert_eq!(scores.len(), st.candidates());
                    assert!(!scores.is_empty(), "{}: no candidates", case.name);
                    let mut best = (usize::MAX, f32::INFINITY);
                    for &(j, s) in &scores {
                        let full = m.logits(&modified_row(&base, 0, j, cap(j)))[0];
                        assert!(
                            close(s, full),
                            "{} {scoring:?} row {r} step {step} feature {j}: incremental {s} vs full {full}",
                            case.name
                        );
                        if full < best.1 {
                            best = (j, full);
                        }
                    }
                    // Greedy's choice (from a fresh start replaying `changes`).
                    let mut cfg1 = cfg.clone();
                    cfg1.budgets = vec![changes.len() + 1];
                    let mut ws1 = Workspace::default();
                    let att1 = Attacker::new(&m, &cfg1, case.sparse).unwrap();
                    let mut st1 = att1.start(RowRef::of(&x, r));
                    for &(j, _) in &changes {
                        att1.add_feature(&mut st1, j).unwrap();
                    }
                    let pick = att1
                        .candidate_logits(&st1, &mut ws1)
                        .into_iter()
                        .min_by(|a, b| a.1.total_cmp(&b.1))
                        .unwrap()
                        .0;
                    let pick_full = m.logits(&modified_row(&base, 0, pick, cap(pick)))[0];
                    assert!(
                        pick == best.0 || close(pick_full, best.1),
                        "{}: greedy picked {pick} ({pick_full}), brute force {} ({})",
                        case.name,
                        best.0,
                        best.1
                    );
                    att.add_feature(&mut st, best.0).unwrap();
                    changes.push((best.0, cap(best.0)));
                }
            }
        }
    }
}

#[test]
fn greedy_first_step_is_the_brute_force_argmin() {
    for (ci, case) in CASES.iter().enumerate() {
        let mut rng = Rng::new(50 + ci as u64);
        let x = if case.sparse {
            sparse(20, 25, 4, &mut rng)
        } else {
            dense_non_negative(20, 25, &mut rng)
        };
        let mut m = case_model(&x, case, 7);
        // Every row detected.
        m.threshold = vec![m.logits(&x).iter().copied().fold(f32::INFINITY, f32::min) - 1.0];
        let fmax = m.feature_max.clone().unwrap();
        let data = dataset(x.clone());
        for scoring in scorings(case.act, case.hidden) {
            let mut cfg = AttackConfig::new(Method::Greedy, vec![1]);
            cfg.max_value = case.max_value;
            cfg.scoring = scoring;
            let report = attack(&m, &data, &cfg).unwrap();
            assert_eq!(report.outcomes.len(), 20);
            for o in &report.outcomes {
                let r = o.row;
                let mut best = f32::INFINITY;
                for j in 0..25 {
                    let c = case.max_value.unwrap_or(fmax[j]);
                    let cur = match RowRef::of(&x, r) {
                        RowRef::Dense(v) => v[j],
                        RowRef::Sparse(i, v) => i
                            .iter()
                            .position(|&k| k as usize == j)
                            .map_or(0.0, |p| v[p]),
                    };
                    if cur < c {
                        best = best.min(m.logits(&modified_row(&x, r, j, c))[0]);
                    }
                }
                let Some(&j) = o.added.first() else {
                    // Greedy stopped at once: no single addition lowers the logit.
                    assert!(
                        best >= o.initial_logit - 1e-4 * (1.0 + o.initial_logit.abs()),
                        "{} {scoring:?}: row {r} stopped although {best} < {}",
                        case.name,
                        o.initial_logit
                    );
                    continue;
                };
                let got = m.logits(&modified_row(&x, r, j, case.max_value.unwrap_or(fmax[j])))[0];
                assert!(
                    close(got, best),
                    "{} {scoring:?}: row {r} picked {j} ({got}), best {best}",
                    case.name
                );
                assert!(close(o.logits[0], got));
            }
        }
    }
}

#[test]
fn cached_and_batched_scorers_agree_over_many_steps() {
    for (ci, case) in CASES.iter().enumerate() {
        if scorings(case.act, case.hidden).len() < 2 {
            continue;
        }
        let mut rng = Rng::new(90 + ci as u64);
        let x = if case.sparse {
            sparse(30, 60, 4, &mut rng)
        } else {
            dense_non_negative(30, 60, &mut rng)
        };
        let mut m = case_model(&x, case, 9);
        m.threshold = vec![f32::NEG_INFINITY];
        let data = dataset(x);
        let run = |scoring| {
            let mut cfg = AttackConfig::new(Method::Greedy, vec![12]);
            cfg.max_value = case.max_value;
            cfg.scoring = scoring;
            attack(&m, &data, &cfg).unwrap()
        };
        let (a, b) = (run(Scoring::Cached), run(Scoring::Batched));
        assert_eq!(a.scoring, "cached");
        assert_eq!(b.scoring, "batched");
        for (oa, ob) in a.outcomes.iter().zip(&b.outcomes) {
            assert_eq!(oa.added, ob.added, "{}: row {}", case.name, oa.row);
            assert_eq!(oa.added.len(), 12);
            for (la, lb) in oa.logits.iter().zip(&ob.logits) {
                assert!(close(*la, *lb), "{}: {la} vs {lb}", case.name);
            }
        }
    }
}

/// Random data and a model whose threshold makes half the rows detected.
fn setup(preset: Preset, sparse_input: bool, seed: u64) -> (Model, Dataset) {
    let mut rng = Rng::new(seed);
    let x = if sparse_input {
        sparse(60, 40, 4, &mut rng)
    } else {
        dense_non_negative(60, 40, &mut rng)
    };
    let scale = if sparse_input {
        ScaleKind::None
    } else {
        ScaleKind::Standard
    };
    let mut m = model(&x, &[32, 16], Activation::Relu, preset, scale, seed);
    let mut l = m.logits(&x);
    l.sort_by(f32::total_cmp);
    m.threshold = vec![l[l.len() / 2]];
    (m, dataset(x))
}

fn run(
    m: &Model,
    d: &Dataset,
    method: Method,
    f: impl Fn(&mut AttackConfig),
) -> attack::AttackReport {
    let mut cfg = AttackConfig::new(method, vec![1, 2, 5, 10, 20]);
    cfg.queries_per_step = 8;
    f(&mut cfg);
    attack(m, d, &cfg).unwrap()
}

#[test]
fn unconstrained_models_are_evaded_and_monotone_ones_never() {
    for sparse_input in [false, true] {
        let (free, data) = setup(Preset::None, sparse_input, 3);
        for method in METHODS {
            let r = run(&free, &data, method, |_| {});
            assert!(r.outcomes.len() >= 20);
            let best = r.results.iter().map(|b| b.evaded).max().unwrap();
            if method != Method::Random {
                assert!(
                    best > 0,
                    "{method:?} sparse={sparse_input}: unconstrained model never evaded"
                );
            }
        }
        let (mono, data) = setup(Preset::Monotone, sparse_input, 4);
        for method in METHODS {
            for scoring in [Scoring::Auto, Scoring::Batched] {
                let r = run(&mono, &data, method, |c| c.scoring = scoring);
                assert!(!r.outcomes.is_empty());
                for b in &r.results {
                    assert_eq!(b.evaded, 0, "{method:?}: monotone model evaded");
                }
                for o in &r.outcomes {
                    let mut prev = o.initial_logit;
                    for &l in &o.logits {
                        assert!(
                            l >= prev - 1e-6 * prev.abs().max(1.0),
                            "{method:?}: a step lowered a monotone logit {prev} -> {l}"
                        );
                        prev = l;
                    }
                    assert!(o.added.len() <= 20);
                }
            }
        }
        // No candidate ever scores below the current logit.
        let cfg = AttackConfig::new(Method::Greedy, vec![1]);
        let att = Attacker::new(&mono, &cfg, sparse_input).unwrap();
        let mut ws = Workspace::default();
        for r in 0..10 {
            let st = att.start(RowRef::of(&data.x, r));
            let now = att.logit(&st, &mut ws);
            for (j, s) in att.candidate_logits(&st, &mut ws) {
                assert!(
                    s >= now - 1e-6 * now.abs().max(1.0),
                    "feature {j}: {now} -> {s}"
                );
            }
        }
    }
}

#[test]
fn budgets_features_caps_queries_and_seeds() {
    let (m, data) = setup(Preset::None, false, 5);
    for method in METHODS {
        let r = run(&m, &data, method, |_| {});
        // Evasion is non-decreasing in the budget; one run answers every budget.
        for w in r.results.windows(2) {
            assert!(w[1].evasion_rate >= w[0].evasion_rate, "{method:?}");
            assert!(w[1].queries >= w[0].queries);
        }
        for b in &r.results {
            assert_eq!(b.targets, r.outcomes.len());
            let ev: Vec<&TargetOutcome> = r
                .outcomes
                .iter()
                .filter(|o| o.evaded_at.is_some_and(|s| s <= b.budget))
                .collect();
            assert_eq!(b.evaded, ev.len());
            if let Some(mean) = b.mean_added {
                let want = ev.iter().map(|o| o.added.len()).sum::<usize>() as f64 / ev.len() as f64;
                assert!((mean - want).abs() < 1e-9);
            }
        }
        for o in &r.outcomes {
            assert!(o.added.len() <= 20);
            match o.evaded_at {
                Some(s) => {
                    assert_eq!(s, o.added.len());
                    assert!(o.final_logit < m.threshold[0]);
                }
                None => assert!(o.final_logit >= m.threshold[0]),
            }
        }
    }

    // --features: only declared features are added.
    let allowed = vec![1, 4, 9, 16, 25, 36];
    for method in METHODS {
        let r = run(&m, &data, method, |c| c.addable = Some(allowed.clone()));
        assert_eq!(r.addable, allowed.len());
        for o in &r.outcomes {
            assert!(
                o.added.iter().all(|j| allowed.contains(j)),
                "{method:?}: {:?}",
                o.added
            );
            assert!(o.added.len() <= allowed.len());
        }
    }

    // --max-value: below every value, nothing can be added; the caps set the scores.
    let r = run(&m, &data, Method::Greedy, |c| c.max_value = Some(-1.0));
    assert!(r.outcomes.iter().all(|o| o.added.is_empty()));
    assert!(r.results.iter().all(|b| b.evaded == 0 && b.queries == 0));

    // Queries: K per step for the query attack, candidates per step for greedy, one per
    // step for gradient and random.
    let r = run(&m, &data, Method::Query, |c| c.queries_per_step = 5);
    for o in &r.outcomes {
        for (k, &q) in o.queries.iter().enumerate() {
            assert_eq!(q, 5 * (k as u64 + 1));
        }
    }
    let total: u64 = r
        .outcomes
        .iter()
        .map(|o| o.queries.last().copied().unwrap_or(0))
        .sum();
    let last = r.results.last().unwrap();
    assert_eq!(last.queries, total);
    assert!((last.mean_queries - total as f64 / r.outcomes.len() as f64).abs() < 1e-9);
    let r = run(&m, &data, Method::Greedy, |_| {});
    let fmax = m.feature_max.as_ref().unwrap();
    for o in &r.outcomes {
        let RowRef::Dense(row) = RowRef::of(&data.x, o.row) else {
            unreachable!()
        };
        let cands = row.iter().zip(fmax).filter(|(v, c)| v < c).count() as u64;
        // Step k scores the candidates left: one fewer each step.
        let mut want = 0;
        for (k, &q) in o.queries.iter().enumerate() {
            want += cands - k as u64;
            assert_eq!(q, want);
        }
    }
    for method in [Method::Gradient, Method::Random] {
        let r = run(&m, &data, method, |_| {});
        for o in &r.outcomes {
            assert_eq!(*o.queries.last().unwrap(), o.added.len() as u64);
        }
    }

    // Determinism: same seed, any thread count -> identical outcomes; seeds matter.
    for method in METHODS {
        let a = run(&m, &data, method, |c| c.seed = 11);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| run(&m, &data, method, |c| c.seed = 11));
        assert_eq!(a.outcomes, b.outcomes, "{method:?}");
        assert_eq!(a.results, b.results);
        if matches!(method, Method::Query | Method::Random) {
            let c = run(&m, &data, method, |c| c.seed = 12);
            assert_ne!(a.outcomes, c.outcomes, "{method:?}: the seed must matter");
        }
    }
    // --limit: the first N targets in row order.
    let all = run(&m, &data, Method::Greedy, |_| {});
    let some = run(&m, &data, Method::Greedy, |c| c.limit = Some(3));
    assert_eq!(some.outcomes.len(), 3);
    assert_eq!(some.outcomes[..], all.outcomes[..3]);
}

#[test]
fn summaries_parsers_and_outputs() {
    let o = |evaded_at: Option<usize>, steps: usize| TargetOutcome {
        row: 0,
        initial_logit: 1.0,
        final_logit: 0.0,
        evaded_at,
        added: (0..steps).collect(),
        logits: vec![0.0; steps],
        queries: (1..=steps as u64).map(|s| 10 * s).collect(),
    };
    let outs = vec![o(Some(2), 2), o(None, 5), o(Some(4), 4)];
    let s = attack::summarize(&outs, &[1, 3, 5]);
    assert_eq!(s[0].evaded, 0);
    assert_eq!(s[0].mean_added, None);
    assert_eq!(s[0].queries, 30);
    assert_eq!(s[1].evaded, 1);
    assert_eq!(s[1].mean_added, Some(2.0));
    assert_eq!(s[1].queries, 20 + 30 + 30);
    assert_eq!(s[2].evaded, 2);
    assert_eq!(s[2].mean_added, Some(3.0));
    assert_eq!(s[2].queries, 20 + 50 + 40);
    assert!((s[2].evasion_rate - 2.0 / 3.0).abs() < 1e-12);

    assert_eq!(attack::parse_budgets("50, 1,5,5").unwrap(), vec![1, 5, 50]);
    for bad in ["", "1,,2", "0", "-1", "x", "1.5"] {
        assert!(attack::parse_budgets(bad).is_err(), "{bad}");
    }
    let names: Vec<String> = ["word_freq_make", "char_freq_#", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let text = "# comment\nword_freq_make\n\n  char_freq_#  \n3\n1 # by index\n";
    assert_eq!(
        resolve_feature_list(Some(&names), 3, text, Path::new("f")).unwrap(),
        vec![0, 1, 2]
    );
    let e = resolve_feature_list(Some(&names), 3, "nope\n", Path::new("f.txt")).unwrap_err();
    assert!(e.to_string().contains("unknown feature `nope`"), "{e}");
    assert!(e.to_string().contains("f.txt:1"), "{e}");
    assert!(resolve_feature_list(None, 3, "7\n", Path::new("f")).is_err());

    let run = |model: &str, results: Vec<attack::BudgetResult>| attack::report::Run {
        model: model.to_string(),
        results,
        targets: Vec::new(),
        proof: None,
    };
    let runs = vec![run("a", s.clone()), run("b,c", s)];
    // One model or several: the same shape.
    let one = attack::report_json("greedy", &runs[..1]);
    assert_eq!(one["method"], "greedy");
    assert_eq!(one["models"][0]["model"], "a");
    assert_eq!(one["models"][0]["results"].as_array().unwrap().len(), 3);
    assert!(one["models"][0].get("proof").is_none());
    let two = attack::report_json("greedy", &runs);
    assert_eq!(two["models"].as_array().unwrap().len(), 2);
    assert_eq!(two["models"][1]["model"], "b,c");
    let csv = attack::csv_text(&runs);
    assert_eq!(csv.lines().count(), 7);
    assert!(csv
        .lines()
        .nth(4)
        .unwrap()
        .starts_with("\"b,c\",1,3,0,0,,30,"));
}

/// Features the model declares as lowered by additions (NonPos first-layer rows) are not
/// candidates: raising them is not an addition.
#[test]
fn features_declared_lowered_by_additions_are_not_addable() {
    let mut rng = Rng::new(77);
    let x = dense_non_negative(10, 8, &mut rng);
    let mut m = model(
        &x,
        &[6],
        Activation::Tanh,
        Preset::Monotone,
        ScaleKind::None,
        3,
    );
    assert_eq!(
        Attacker::new(&m, &AttackConfig::new(Method::Greedy, vec![3]), false)
            .unwrap()
            .addable(),
        8
    );
    m.mlp.layers[0].kernel_constraints = vec![
        Constraint::NonNeg {
            rows: Some(vec![0, 1, 2, 3, 4, 5]),
        },
        Constraint::NonPos {
            rows: Some(vec![6, 7]),
        },
    ];
    let att = Attacker::new(&m, &AttackConfig::new(Method::Greedy, vec![3]), false).unwrap();
    assert_eq!(att.addable(), 6);
    assert!((0..6).all(|a| att.feature(a) < 6));
    // An explicit list is the caller's word.
    let mut cfg = AttackConfig::new(Method::Greedy, vec![3]);
    cfg.addable = Some(vec![6, 7]);
    assert_eq!(Attacker::new(&m, &cfg, false).unwrap().addable(), 2);
}
