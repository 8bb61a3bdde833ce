//! The raw-space good-words attack on SpamAssassin emails (`../shared/data/spamassassin`,
//! or `$NONNEG_SPAMASSASSIN`): words appended to a raw email are really read by the
//! featurizer and never switch a feature off; an unconstrained model trained on a small
//! subset is evaded, a monotone one never (no appended word lowers its logit); CLI end to
//! end.

use nonneg::attack::raw::{
    feature_value, good_words_attack, insert_word, keeps_features, word_slots, GoodWordsConfig,
    GoodWordsReport, RawEmail, WordSource,
};
use nonneg::features::{FeaturizerSpec, TextOptions, TextSpec, Vocabulary};
use nonneg::model::Model;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    let p = std::env::var_os("NONNEG_SPAMASSASSIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/spamassassin")
        });
    assert!(
        p.join("spam-2").is_dir() && p.join("easy-ham-1").is_dir(),
        "SpamAssassin corpus not found at {} (expected spam-1, spam-2, easy-ham-1, ...; set \
         NONNEG_SPAMASSASSIN to its folder)",
        p.display()
    );
    p
}

/// The first `n` files of a corpus folder (name order), with their names.
fn first(folder: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(corpus().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    names
        .into_iter()
        .take(n)
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Writes samples into a new folder.
fn copy_to(dir: &Path, samples: &[(String, Vec<u8>)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for (n, b) in samples {
        std::fs::write(dir.join(n), b).unwrap();
    }
    dir.display().to_string()
}

fn nonneg(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nonneg"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nonneg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn hashed_spec() -> FeaturizerSpec {
    FeaturizerSpec::text(TextSpec {
        options: TextOptions {
            header_tokens: true,
            url_hosts: true,
            ..TextOptions::default()
        },
        vocabulary: Vocabulary::Hashing { bits: 22 },
        idf: None,
    })
}

#[test]
fn raw_insertion_is_read_and_keeps_every_feature_on() {
    let spec = hashed_spec();
    let word = "zqxgoodword";
    let j = match &spec.kind {
        nonneg::features::FeaturizerKind::Text(t) => t.index_of(word).unwrap(),
        _ => unreachable!(),
    };
    let mut emails = Vec::new();
    for folder in ["spam-1", "spam-2", "easy-ham-1", "hard-ham-1"] {
        emails.extend(first(folder, 400).into_iter().step_by(5));
    }
    let (mut placed, mut multipart) = (0, 0);
    for (name, raw) in &emails {
        let before = spec.featurize(raw);
        let slots = word_slots(raw);
        if slots.len() > 1 {
            multipart += 1;
        }
        // Every slot: wherever the word is read, nothing that was on goes off.
        for &slot in &slots {
            let (out, _) = insert_word(raw, slot, word);
            let after = spec.featurize(&out);
            if feature_value(&after, j) > 0.0 {
                assert!(
                    keeps_features(&before, &after),
                    "{name}: inserting at {slot:?} switched a feature off"
                );
            }
        }
        // Three words in a row, each read, all earlier features kept.
        let mut email = RawEmail::new(&spec, raw.clone());
        let mut ok = true;
        for w in ["zqxone", "zqxtwo", "zqxthree"] {
            let f = match &spec.kind {
                nonneg::features::FeaturizerKind::Text(t) => t.index_of(w).unwrap(),
                _ => unreachable!(),
            };
            let prev = email.features.clone();
            if email.append_word(&spec, w, f) {
                assert!(keeps_features(&prev, &email.features), "{name}");
                assert!(keeps_features(&before, &email.features), "{name}");
                assert!(feature_value(&email.features, f) > 0.0);
                let text = String::from_utf8_lossy(&email.raw);
                assert!(text.contains(w), "{name}");
                assert_eq!(
                    spec.featurize(&email.raw),
                    email.features,
                    "{name}: features are those of the bytes"
                );
            } else {
                eprintln!("{name}: {w} could not be placed");
                ok = false;
            }
        }
        placed += ok as usize;
    }
    eprintln!(
        "{placed} of {} emails took 3 words ({multipart} multipart)",
        emails.len()
    );
    assert!(multipart > 10, "{multipart}");
    assert!(
        placed * 100 >= emails.len() * 97,
        "only {placed} of {} emails took the words",
        emails.len()
    );
}

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
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).display().to_string();
    let ham = first("easy-ham-1", 300);
    let spam_dir = copy_to(&dir.path().join("spam"), &first("spam-1", 150));
    let ham_dir = copy_to(&dir.path().join("ham"), &ham);
    nonneg(&[
        "featurize",
        "text",
        "--class",
        &format!("spam={spam_dir}"),
        "--class",
        &format!("ham={ham_dir}"),
        "--header-tokens",
        "--out",
        &d("train.svm"),
    ]);
    let train_svm = d("train.svm");
    for (out, extra) in [("free", None), ("mono", Some("monotone"))] {
        let o = d(&format!("{out}.safetensors"));
        let mut args = vec![
            "train", "--data", &train_svm, "--out", &o, "--hidden", "32", "--epochs", "5", "-q",
        ];
        if let Some(c) = extra {
            args.extend(["--constraint", c]);
        }
        nonneg(&args);
    }
    let test_spam = first("spam-2", 60);
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
    let out = nonneg(&[
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
        "--json",
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
    let bad = Command::new(env!("CARGO_BIN_EXE_nonneg"))
        .args([
            "attack",
            "--model",
            &d("free.safetensors"),
            "--data",
            &d("train.svm"),
            "--method",
            "good-words",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--class"));
}
