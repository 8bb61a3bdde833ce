//! Raw samples end to end on the SpamAssassin corpus (see `common::spamassassin`):
//! featurize with a vocabulary from training data only, train, then score raw emails with
//! the featurizer stored in the model, bit for bit as the featurized file.

mod common;

use common::{path_in, run_stdout, spamassassin, tempdir};

#[test]
fn temporal_split_accuracy_and_raw_scoring_match_the_featurized_file() {
    let sa = spamassassin();
    let dir = tempdir();
    let d = |n: &str| path_in(dir.path(), n);
    let c = |name: &str, folder: &str| format!("{name}={}", sa.join(folder).display());
    run_stdout(&[
        "featurize",
        "text",
        "--class",
        &c("spam", "spam-1"),
        "--class",
        &c("ham", "easy-ham-1"),
        "--class",
        &c("ham", "hard-ham-1"),
        "--header-tokens",
        "--url-hosts",
        "--out",
        &d("train.svm"),
    ]);
    run_stdout(&[
        "featurize",
        "text",
        "--class",
        &c("spam", "spam-2"),
        "--class",
        &c("ham", "easy-ham-2"),
        "--vocab",
        &d("train.svm.featurizer.json"),
        "--out",
        &d("test.svm"),
    ]);
    // train picks up train.svm.featurizer.json and stores it in the model.
    run_stdout(&[
        "train",
        "--data",
        &d("train.svm"),
        "--out",
        &d("m.safetensors"),
        "--hidden",
        "256,64",
        "--epochs",
        "5",
        "-q",
    ]);
    let info: serde_json::Value = serde_json::from_str(&run_stdout(&[
        "inspect",
        "--model",
        &d("m.safetensors"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(info["featurizer"], true);
    let on_file: serde_json::Value = serde_json::from_str(&run_stdout(&[
        "eval",
        "--model",
        &d("m.safetensors"),
        "--data",
        &d("test.svm"),
        "--json",
    ]))
    .unwrap();
    let auc = on_file["auc"].as_f64().unwrap();
    eprintln!("unconstrained, train *-1, test *-2: {on_file}");
    assert!(auc >= 0.99, "test ROC AUC {auc}");
    assert_eq!(on_file["n"], 1396 + 1400);
    let on_raw: serde_json::Value = serde_json::from_str(&run_stdout(&[
        "eval",
        "--model",
        &d("m.safetensors"),
        "--class",
        &c("spam", "spam-2"),
        "--class",
        &c("ham", "easy-ham-2"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        on_raw, on_file,
        "eval on raw emails differs from eval on the featurized file"
    );
    let file_scores = run_stdout(&[
        "predict",
        "--model",
        &d("m.safetensors"),
        "--data",
        &d("test.svm"),
    ]);
    let raw_scores = run_stdout(&[
        "predict",
        "--model",
        &d("m.safetensors"),
        &sa.join("spam-2").display().to_string(),
        &sa.join("easy-ham-2").display().to_string(),
    ]);
    let raw_lines: Vec<&str> = raw_scores.lines().collect();
    let file_lines: Vec<&str> = file_scores.lines().collect();
    assert_eq!(raw_lines.len(), file_lines.len());
    assert_eq!(raw_lines[0], "score,logit,label,sample");
    for (r, f) in raw_lines[1..].iter().zip(&file_lines[1..]) {
        let (scores, name) = r.rsplit_once(',').unwrap();
        assert_eq!(scores, *f, "{name}: raw and featurized scores differ");
    }
}
