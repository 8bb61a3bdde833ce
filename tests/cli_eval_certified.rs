//! `nonneg eval --budget`: certified, attacked and clean TPR at 1% and 0.1% FPR, on a
//! model trained on a SpamAssassin subset; certified <= attacked <= clean at every budget,
//! the option adds to the output and `--plot` draws the curves.

mod common;

use common::{fails, first_emails, path_in, run_stdout, tempdir};
use serde_json::Value;
use std::path::Path;

fn copy_to(dir: &Path, samples: &[(String, Vec<u8>)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for (n, b) in samples {
        std::fs::write(dir.join(n), b).unwrap();
    }
    dir.display().to_string()
}

#[test]
fn eval_budget_reports_certified_below_attacked_below_clean() {
    let dir = tempdir();
    let d = |n: &str| path_in(dir.path(), n);
    let spam = copy_to(&dir.path().join("spam"), &first_emails("spam-1", 150));
    let ham = copy_to(&dir.path().join("ham"), &first_emails("easy-ham-1", 300));
    run_stdout(&[
        "featurize",
        "text",
        "--class",
        &format!("spam={spam}"),
        "--class",
        &format!("ham={ham}"),
        "--header-tokens",
        "--out",
        &d("train.svm"),
    ]);
    let model = d("m.safetensors");
    run_stdout(&[
        "train",
        "--data",
        &d("train.svm"),
        "--out",
        &model,
        "--hidden",
        "32",
        "--epochs",
        "5",
        "-q",
    ]);
    let test_spam = copy_to(&dir.path().join("tspam"), &first_emails("spam-2", 80));
    let test_ham = copy_to(&dir.path().join("tham"), &first_emails("easy-ham-2", 300));
    let classes = [
        "--class".to_string(),
        format!("spam={test_spam}"),
        "--class".to_string(),
        format!("ham={test_ham}"),
    ];
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--model", &model];
        args.extend(classes.iter().map(String::as_str));
        args.extend(extra);
        run_stdout(&args)
    };

    let plain: Value = serde_json::from_str(&eval(&["--json"])).unwrap();
    assert!(plain.get("budgets").is_none());
    let png = d("budget.png");
    let v: Value =
        serde_json::from_str(&eval(&["--json", "--budget", "1,3,10,inf", "--plot", &png])).unwrap();
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    let rows = v["budgets"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "one row per FPR: {v}");
    let eps = 1e-9;
    let (mut some_certified, mut some_attacked) = (false, false);
    for (row, fpr) in rows.iter().zip([0.01, 0.001]) {
        assert_eq!(row["fpr"], fpr);
        let clean = row["clean"].as_f64().unwrap();
        let points = row["points"].as_array().unwrap();
        assert_eq!(points.len(), 4);
        let inf = points[3]["certified"].as_f64().unwrap();
        assert_eq!(points[3]["budget"], "inf");
        assert!(points[3]["empirical"].is_null());
        for p in &points[..3] {
            let c = p["certified"].as_f64().unwrap();
            let e = p["empirical"].as_f64().unwrap();
            assert!(inf <= c + eps && c <= e + eps && e <= clean + eps, "{row}");
            some_certified |= c > 0.0;
            some_attacked |= e < clean;
        }
    }
    assert!(some_certified && some_attacked, "{v}");

    // The text report gains the table.
    let text = eval(&["--budget", "1,inf"]);
    assert!(
        text.contains("certified") && text.contains("attacked"),
        "{text}"
    );
    assert!(!eval(&[]).contains("certified"));
    // --plot needs --budget; a bad budget is refused.
    fails(&[
        "eval",
        "--model",
        &model,
        "--data",
        &d("train.svm"),
        "--plot",
        &png,
    ]);
    let err = fails(&[
        "eval",
        "--model",
        &model,
        "--data",
        &d("train.svm"),
        "--budget",
        "x",
    ]);
    assert!(err.contains("--budget"), "{err}");
}
