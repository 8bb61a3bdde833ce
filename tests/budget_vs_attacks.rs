//! Budget certificates against the attacks on real models: a positive whose certified
//! bound at budget k is at or above the model's threshold is never evaded within k
//! additions by the greedy or gradient attack (feature space, same threat model), nor by
//! the good-words attack on raw SpamAssassin emails; and the check is not vacuous (some
//! targets are certified, some evaded).

mod common;

use common::SPAMBASE_LABEL;
use common::{
    first_emails, path_in, run_stdout, small_email_training_set, split_spambase, tempdir,
    train_spambase,
};
use nonneg::attack::raw::{candidate_words, good_words_attack, GoodWordsConfig, WordSource};
use nonneg::attack::{attack, AttackConfig, Method, TargetOutcome};
use nonneg::certify::budget::{certify_budgets, Budget, BudgetConfig};
use nonneg::data::{CsrMatrix, Dataset, Features, LoadOptions};
use nonneg::features::FeaturizerSpec;
use nonneg::model::Model;
use std::collections::HashMap;
use std::path::Path;

const BUDGETS: [usize; 4] = [1, 3, 5, 10];

/// Certified and evaded counts, summed over budgets.
#[derive(Default, Debug)]
struct Tally {
    certified: usize,
    evaded: usize,
}

/// Each positive's certified bound per budget in [`BUDGETS`], by row.
fn bounds(
    model: &Model,
    data: &Dataset,
    addable: Option<Vec<usize>>,
    max_value: Option<f32>,
) -> HashMap<usize, Vec<f32>> {
    let cfg = BudgetConfig {
        addable,
        max_value,
        ..BudgetConfig::new(BUDGETS.iter().map(|&k| Budget::Finite(k)).collect())
    };
    let report = certify_budgets(model, data, &cfg, model.threshold[0]).unwrap();
    report
        .samples
        .into_iter()
        .map(|s| (s.row, s.bound))
        .collect()
}

/// Asserts that no outcome evades within a budget its bound certifies; counts both.
fn check(
    what: &str,
    model: &Model,
    bounds: &HashMap<usize, Vec<f32>>,
    outcomes: &[TargetOutcome],
    tally: &mut Tally,
) {
    let thr = model.threshold[0];
    for o in outcomes {
        let b = &bounds[&o.row];
        for (i, &k) in BUDGETS.iter().enumerate() {
            let evaded = o.evaded_at.is_some_and(|e| e <= k);
            tally.evaded += evaded as usize;
            if b[i] >= thr {
                tally.certified += 1;
                assert!(
                    !evaded,
                    "{what}: row {} certified at k={k} (bound {} >= threshold {thr}) but \
                     evaded after {:?} additions (logits {:?})",
                    o.row, b[i], o.evaded_at, o.logits
                );
            }
        }
    }
}

/// Greedy and gradient attacks in feature space with the certificate's threat model.
fn feature_space(what: &str, model: &Model, data: &Dataset, max_value: Option<f32>) -> Tally {
    let bounds = bounds(model, data, None, max_value);
    let mut tally = Tally::default();
    for method in [Method::Greedy, Method::Gradient] {
        let cfg = AttackConfig {
            max_value,
            ..AttackConfig::new(method, BUDGETS.to_vec())
        };
        let report = attack(model, data, &cfg).unwrap();
        check(
            &format!("{what}, {}", method.name()),
            model,
            &bounds,
            &report.outcomes,
            &mut tally,
        );
    }
    eprintln!("{what}: {tally:?}");
    tally
}

fn assert_not_vacuous(what: &str, t: &Tally) {
    assert!(t.certified > 0, "{what}: nothing certified ({t:?})");
    assert!(t.evaded > 0, "{what}: nothing evaded ({t:?})");
}

/// Raw emails featurized by `spec`, all labelled positive.
fn featurized(spec: &FeaturizerSpec, cols: usize, samples: &[(String, Vec<u8>)]) -> Dataset {
    let mut x = CsrMatrix::with_capacity(cols, samples.len(), 0);
    for (_, raw) in samples {
        let f = spec.featurize(raw);
        x.push_row(&f.indices, &f.values);
    }
    Dataset {
        x: Features::Sparse(x),
        y: Some(vec![1.0; samples.len()]),
        n_labels: 1,
        label_names: vec!["spam".into()],
        feature_names: None,
        source: "test spam".into(),
    }
}

/// A normally trained model, and one trained with the CROWN-IBP bound (its certificates
/// are much tighter, so the attacks meet many more certified emails).
#[test]
fn no_certified_email_is_evaded_by_any_attack() {
    let verified = [
        "--activation",
        "relu",
        "--robust-budget",
        "20",
        "--robust-crown",
        "1",
    ];
    for (name, extra) in [("free", &[][..]), ("crown-ibp", &verified[..])] {
        emails_against_attacks(name, extra);
    }
}

fn emails_against_attacks(name: &str, extra: &[&str]) {
    let dir = tempdir();
    let d = |n: &str| path_in(dir.path(), n);
    let (train_svm, ham) = small_email_training_set(dir.path());
    let model_path = d(&format!("{name}.safetensors"));
    let mut args = vec![
        "train",
        "--data",
        &train_svm,
        "--out",
        &model_path,
        "--hidden",
        "32",
        "--epochs",
        "5",
        "-q",
    ];
    args.extend_from_slice(extra);
    run_stdout(&args);
    let model = nonneg::model::io::load(Path::new(&model_path)).unwrap();
    let spec = model.featurizer.clone().unwrap();
    let test_spam = first_emails("spam-2", 60);
    let data = featurized(&spec, model.mlp.input_dim, &test_spam);

    // Feature space: every feature addable, binary (cap 1), as the attack's defaults here.
    let mut tally = feature_space(name, &model, &data, Some(1.0));

    // Raw space: the attacker's words only, each switching one binary feature on.
    let words = candidate_words(&spec, Some(&ham)).unwrap();
    let addable: Vec<usize> = words.iter().map(|(_, j)| *j as usize).collect();
    let bounds = bounds(&model, &data, Some(addable), Some(1.0));
    for source in [WordSource::Model, WordSource::Ham] {
        let cfg = GoodWordsConfig::new(source, BUDGETS.to_vec());
        let r = good_words_attack(&model, &spec, &test_spam, Some(&ham), &cfg).unwrap();
        let outcomes: Vec<TargetOutcome> = r.outcomes.into_iter().map(|o| o.outcome).collect();
        let what = format!("{name}, good words, {}", source.name());
        let mut t = Tally::default();
        check(&what, &model, &bounds, &outcomes, &mut t);
        eprintln!("{what}: {t:?}");
        tally.certified += t.certified;
        tally.evaded += t.evaded;
    }
    assert_not_vacuous(name, &tally);
}

#[test]
fn no_certified_spambase_row_is_evaded() {
    let dir = tempdir();
    let (train, test) = split_spambase(dir.path());
    let model_path = path_in(dir.path(), "m.safetensors");
    train_spambase(&train, &model_path, &["--hidden", "16", "--epochs", "5"]);
    let model = nonneg::model::io::load(Path::new(&model_path)).unwrap();
    let opts = LoadOptions {
        label_column: Some(SPAMBASE_LABEL[1].into()),
        positive: Some(SPAMBASE_LABEL[3].into()),
        ..LoadOptions::labelled()
    };
    let data = nonneg::data::load(Path::new(&test), &opts).unwrap();
    // Every feature raised to at most 0.5 (a word frequency of 0.5%): at the training
    // maximum one addition evades every row, which would leave nothing certified.
    let tally = feature_space("dense", &model, &data, Some(0.5));
    assert_not_vacuous("dense", &tally);
}
