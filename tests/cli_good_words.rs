//! The raw-space good-words attack on SpamAssassin emails (see `common::spamassassin` for
//! where the corpus is), on models trained by the CLI: an unconstrained model trained on a
//! small subset is evaded, a monotone one never (no appended word lowers its logit); the
//! attack command end to end.

mod common;

use common::{copy_to, exec, first_emails, path_in, run_stdout, small_email_training_set, tempdir};
use nonneg::attack::raw::{
    feature_value, good_words_attack, keeps_features, GoodWordsConfig, GoodWordsReport, WordSource,
};
use nonneg::features::FeaturizerSpec;
use nonneg::model::Model;
use std::path::Path;

fn load(path: &Path) -> (Model, FeaturizerSpec) {
    let m = nonneg::model::io::load(path).unwrap();
    let spec = m.featurizer.clone().unwrap();
    (m, spec)
}

fn check_appended(spec: &FeaturizerSpec, spam: &[(String, Vec<u8>)], r: &GoodWordsReport) {
    for o in &r.outcomes {
        let raw = o.raw.as_ref().unwrap();
        let orig = spec.featurize(&spam[o.outcome.row].1);
        let now = spec.featurize(raw);
        assert!(keeps_features(&orig, &now), "{}", o.name);
        let text = String::from_utf8_lossy(raw);
        for ((w, &j), &p) in o.words.iter().zip(&o.outcome.added).zip(&o.placed) {
            if p {
                assert!(
                    text.contains(w.as_str()),
                    "{}: {w} not in the email",
                    o.name
                );
                assert!(
                    feature_value(&now, j as u32) > 0.0,
                    "{}: {w} not featurized",
                    o.name
                );
            }
        }
        assert_eq!(o.words.len(), o.outcome.logits.len());
    }
}

#[test]
fn unconstrained_is_evaded_monotone_never_in_raw_space() {
    let dir = tempdir();
    let d = |n: &str| path_in(dir.path(), n);
    let (train_svm, ham) = small_email_training_set(dir.path());
    let ham_dir = path_in(dir.path(), "ham");
    for (out, extra) in [("free", None), ("mono", Some("monotone"))] {
        let o = d(&format!("{out}.safetensors"));
        let mut args = vec![
            "train", "--data", &train_svm, "--out", &o, "--hidden", "32", "--epochs", "5", "-q",
        ];
        if let Some(c) = extra {
            args.extend(["--constraint", c]);
        }
        run_stdout(&args);
    }
    let test_spam = first_emails("spam-2", 60);
    let budgets = vec![5, 20];
    for source in [WordSource::Model, WordSource::Ham] {
        let cfg = GoodWordsConfig {
            limit: Some(30),
            keep_raw: true,
            ..GoodWordsConfig::new(source, budgets.clone())
        };
        let (free, spec) = load(&dir.path().join("free.safetensors"));
        let r = good_words_attack(&free, &spec, &test_spam, Some(&ham), &cfg).unwrap();
        eprintln!(
            "unconstrained, {}: {} of {} detected, {} words, {} failed: {:?}",
            source.name(),
            r.detected,
            r.positives,
            r.words,
            r.failed_steps,
            r.results
        );
        assert!(r.outcomes.len() >= 20, "{} targets", r.outcomes.len());
        check_appended(&spec, &test_spam, &r);
        if source == WordSource::Model {
            assert!(r.results[1].evaded > 0, "{:?}", r.results);
        }

        let (mono, spec) = load(&dir.path().join("mono.safetensors"));
        let r = good_words_attack(&mono, &spec, &test_spam, Some(&ham), &cfg).unwrap();
        eprintln!(
            "monotone, {}: {} of {} detected, {} failed: {:?}",
            source.name(),
            r.detected,
            r.positives,
            r.failed_steps,
            r.results
        );
        assert!(r.outcomes.len() >= 20, "{} targets", r.outcomes.len());
        check_appended(&spec, &test_spam, &r);
        for b in &r.results {
            assert_eq!(b.evaded, 0, "{:?}", r.results);
        }
        let mut steps = 0;
        for o in &r.outcomes {
            let mut prev = o.outcome.initial_logit;
            for &l in &o.outcome.logits {
                assert!(
                    l >= prev - 1e-4 * (1.0 + prev.abs()),
                    "{}: a word lowered the logit {prev} -> {l}",
                    o.name
                );
                prev = l;
                steps += 1;
            }
        }
        if source == WordSource::Ham {
            assert!(steps > 0, "the black-box attack appended nothing");
        }
    }

    // CLI: both models on one chart, black box.
    let spam2 = copy_to(&dir.path().join("spam2"), &test_spam);
    let out = run_stdout(&[
        "attack",
        "--model",
        &d("free.safetensors"),
        "--model",
        &d("mono.safetensors"),
        "--class",
        &format!("spam={spam2}"),
        "--class",
        &format!("ham={ham_dir}"),
        "--method",
        "good-words",
        "--good-words-source",
        "ham",
        "--budget",
        "5,20",
        "--limit",
        "10",
        "--out",
        &d("gw.json"),
        "--csv",
        &d("gw.csv"),
        "--plot",
        &d("gw.png"),
        "-q",
    ]);
    assert!(
        out.contains("good-words (ham)") && out.contains("evaded"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d("gw.json")).unwrap()).unwrap();
    assert_eq!(v["method"], "good-words");
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        let res = m["results"].as_array().unwrap();
        assert_eq!(res.len(), 2);
        for key in ["targets", "evaded", "evasion_rate", "mean_added", "queries"] {
            assert!(res[0].get(key).is_some(), "missing {key}");
        }
        assert_eq!(res[0]["targets"], 10);
    }
    assert_eq!(models[1]["results"][1]["evaded"], 0);
    let csv = std::fs::read_to_string(d("gw.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(std::fs::metadata(d("gw.png")).unwrap().len() > 1000);
    // good-words needs raw emails.
    let bad = exec(&[
        "attack",
        "--model",
        &d("free.safetensors"),
        "--data",
        &d("train.svm"),
        "--method",
        "good-words",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--class"));
}
