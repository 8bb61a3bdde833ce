//! `nonneg cv` on the bundled Spambase: k folds with finite metrics, and a summary that is
//! the mean of the fold metrics.

mod common;

use common::{fails, run, spambase, SPAMBASE_LABEL};

fn cv_json(extra: &[&str]) -> serde_json::Value {
    let data = spambase();
    let mut args = vec!["cv", "--data", &data, "--json", "-q"];
    args.extend(SPAMBASE_LABEL);
    args.extend(extra);
    serde_json::from_slice(&run(&args).stdout).expect("one JSON object")
}

#[test]
fn spambase_five_folds_finite_and_means_of_the_folds() {
    let r = cv_json(&["--folds", "5", "--epochs", "5"]);
    assert_eq!(r["folds"], 5);
    let rows: Vec<u64> = r["fold_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(rows.iter().sum::<u64>(), 4601);
    assert!(rows.iter().all(|&n| n == 920 || n == 921), "{rows:?}");
    let folds = r["per_fold"].as_array().unwrap();
    assert_eq!(folds.len(), 5);
    for key in ["auc", "average_precision", "tpr_at_fpr_1pct"] {
        let values: Vec<f64> = folds.iter().map(|f| f[0][key].as_f64().unwrap()).collect();
        assert!(values
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / 5.0;
        let s = &r["summary"][0][key];
        assert!((s["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{key}");
        assert_eq!(s["n"], 5);
        assert!(s["std"].as_f64().unwrap().is_finite());
    }
    assert!(r["summary"][0]["auc"]["mean"].as_f64().unwrap() > 0.95);
    // The folds come from --seed: the same report again.
    assert_eq!(cv_json(&["--folds", "5", "--epochs", "5"]), r);
}

#[test]
fn text_table_and_bad_options() {
    let data = spambase();
    let mut args = vec!["cv", "--data", &data, "--folds", "3", "--epochs", "2", "-q"];
    args.extend(SPAMBASE_LABEL);
    let out = String::from_utf8(run(&args).stdout).unwrap();
    assert!(out.contains("3-fold stratified cross-validation"), "{out}");
    assert!(
        out.contains("ROC AUC") && out.contains("TPR at 1% FPR"),
        "{out}"
    );
    let mut bad = args.clone();
    bad[4] = "1";
    assert!(fails(&bad).contains("--folds 1"));
    let mut bad = args.clone();
    bad.extend(["--valid-fraction", "0.2"]);
    assert!(fails(&bad).contains("--valid"));
}
