//! `nonneg featurize` on a subset of the SpamAssassin corpus (see `common::spamassassin`)
//! and the executables in `tests/fixtures/bin`: a vocabulary built on training data and
//! reused, and settings that contradict it refused.

mod common;

use common::{
    fails, fixture_bin, per_folder, run, spamassassin_subset, tempdir, SPAMASSASSIN_FOLDERS,
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
