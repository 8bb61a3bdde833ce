//! `nonneg featurize` on a subset of the SpamAssassin corpus (see `common::spamassassin`)
//! and the executables in `tests/fixtures/bin`: a vocabulary built on training data and
//! reused, and settings that contradict it refused.

mod common;

use common::{
    fails, first_emails, fixture_bin, per_folder, run, run_stdout, spamassassin_subset, tempdir,
    SPAMASSASSIN_FOLDERS,
};
use nonneg::features::corpus::spec_path_for;
use nonneg::features::FeaturizerSpec;
use std::path::Path;

#[test]
fn build_vocab_then_reuse() {
    let tmp = tempdir();
    let classes = spamassassin_subset(tmp.path());
    let s = |p: &Path| p.display().to_string();
    let vocab = tmp.path().join("v.json");
    let train = tmp.path().join("train.svm");
    let test = tmp.path().join("test.svm");
    let c = |i: usize| format!("{}={}", classes[i].0, s(&classes[i].1));
    run(&[
        "featurize",
        "text",
        "--class",
        &c(3),
        "--class",
        &c(0),
        "--class",
        &c(2),
        "--out",
        &s(&train),
        "--build-vocab",
        &s(&vocab),
        "--min-df",
        "2",
        "--header-tokens",
    ]);
    let train_text = std::fs::read_to_string(&train).unwrap();
    let n = |f: usize| per_folder().min(SPAMASSASSIN_FOLDERS[f].2);
    assert_eq!(train_text.lines().count(), n(3) + n(0) + n(2));
    assert_eq!(
        train_text.lines().filter(|l| l.starts_with("1 ")).count(),
        n(3)
    );
    assert!(!train_text.contains(" 0:"), "indices must be 1-based");
    let spec = FeaturizerSpec::load(&vocab).unwrap();
    assert_eq!(spec, FeaturizerSpec::load(&spec_path_for(&train)).unwrap());
    run(&[
        "featurize",
        "text",
        "--class",
        &c(4),
        "--class",
        &c(1),
        "--out",
        &s(&test),
        "--vocab",
        &s(&vocab),
        "--header-tokens",
    ]);
    assert_eq!(FeaturizerSpec::load(&spec_path_for(&test)).unwrap(), spec);
    // Max index within the vocabulary.
    let max_idx = std::fs::read_to_string(&test)
        .unwrap()
        .split_whitespace()
        .filter_map(|t| t.split_once(':').map(|(i, _)| i.parse::<usize>().unwrap()))
        .max()
        .unwrap();
    assert!(max_idx <= spec.n_features());
    // Settings that contradict the vocabulary are refused.
    fails(&[
        "featurize",
        "text",
        "--class",
        &c(4),
        "--out",
        &s(&test),
        "--vocab",
        &s(&vocab),
        "--url-hosts",
    ]);
    // Bytes.
    let bin = s(&fixture_bin(""));
    let out = tmp.path().join("bytes.svm");
    run(&[
        "featurize",
        "bytes",
        "--class",
        &format!("malicious={bin}"),
        "--class",
        &c(0),
        "--out",
        &s(&out),
        "--ngram",
        "3",
        "--hash-bits",
        "12",
        "--imports",
        "--positive",
        "malicious",
    ]);
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(lines.lines().count(), 8 + n(0)); // 7 executables + README + emails
    assert_eq!(lines.lines().filter(|l| l.starts_with("1 ")).count(), 8);
}

/// featurize -> split -> train -> predict on raw files: split carries the featurizer
/// sidecar to both parts, so the model scores raw samples; a split of data without one
/// removes a stale sidecar rather than leave it for train to pick up.
#[test]
fn split_carries_the_featurizer_to_predict_raw_files() {
    let tmp = tempdir();
    let classes = spamassassin_subset(tmp.path());
    let p = |name: &str| tmp.path().join(name).display().to_string();
    let c = |i: usize| format!("{}={}", classes[i].0, classes[i].1.display());
    let sms = tmp.path().join("sms.txt");
    std::fs::write(&sms, "URGENT: You have won a 1000 cash prize call now").unwrap();
    run(&[
        "featurize",
        "text",
        "--class",
        &c(3),
        "--class",
        &c(0),
        "--out",
        &p("all.svm"),
        "-q",
    ]);
    let spec = FeaturizerSpec::load(&spec_path_for(Path::new(&p("all.svm")))).unwrap();
    run(&[
        "split",
        "--data",
        &p("all.svm"),
        "--train-out",
        &p("tr.svm"),
        "--test-out",
        &p("te.svm"),
        "--seed",
        "1",
        "-q",
    ]);
    for part in ["tr.svm", "te.svm"] {
        let carried = FeaturizerSpec::load(&spec_path_for(Path::new(&p(part)))).unwrap();
        assert_eq!(carried, spec, "{part}");
    }
    run(&[
        "train",
        "--data",
        &p("tr.svm"),
        "--out",
        &p("m.safetensors"),
        "--hidden",
        "8",
        "--epochs",
        "2",
        "-q",
    ]);
    let email = classes[3].1.join(&first_emails("spam-1", 1)[0].0);
    let scores = run_stdout(&[
        "predict",
        "--model",
        &p("m.safetensors"),
        &email.display().to_string(),
        &sms.display().to_string(),
    ]);
    let lines: Vec<&str> = scores.lines().collect();
    assert_eq!(lines.len(), 3, "{scores}");
    assert_eq!(lines[0], "score,logit,label,sample");

    // Data without a sidecar: the stale one beside an output goes.
    let csv = p("spambase-part.csv");
    std::fs::write(
        &csv,
        "a,b,label\n1,2,1\n3,4,0\n5,6,1\n7,8,0\n1,1,1\n0,0,0\n",
    )
    .unwrap();
    run(&[
        "split",
        "--data",
        &csv,
        "--label-column",
        "label",
        "--train-out",
        &p("tr.svm"),
        "--test-out",
        &p("te.svm"),
        "--test-fraction",
        "0.5",
        "-q",
    ]);
    assert!(!spec_path_for(Path::new(&p("tr.svm"))).exists());
    assert!(!spec_path_for(Path::new(&p("te.svm"))).exists());
}

#[test]
fn input_kind_against_a_saved_spec_is_refused() {
    let tmp = tempdir();
    let classes = spamassassin_subset(tmp.path());
    let p = |name: &str| tmp.path().join(name).display().to_string();
    let c = format!("{}={}", classes[3].0, classes[3].1.display());
    run(&[
        "featurize",
        "text",
        "--class",
        &c,
        "--out",
        &p("a.svm"),
        "-q",
    ]);
    let spec = p("a.svm.featurizer.json");
    let e = fails(&[
        "featurize",
        "text",
        "--class",
        &c,
        "--out",
        &p("b.svm"),
        "--vocab",
        &spec,
        "--input-kind",
        "text",
    ]);
    assert!(e.contains("--input-kind"), "{e}");
    run(&[
        "featurize",
        "text",
        "--class",
        &c,
        "--out",
        &p("b.svm"),
        "--vocab",
        &spec,
        "--input-kind",
        "auto",
        "-q",
    ]);
}
