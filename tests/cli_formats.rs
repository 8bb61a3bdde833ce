//! Output and input formats through the command line: predict's CSV and JSONL in input
//! order, eval's table and ROC plot, and training and scoring on svmlight (binary and
//! multi-label) and npz (dense and scipy CSR) files.

mod common;

use common::{root, run, split_spambase, tempdir, train_spambase, SPAMBASE_LABEL};

#[test]
fn predict_writes_scores_in_input_order_as_csv_and_jsonl() {
    let dir = tempdir();
    let (tr, te) = split_spambase(dir.path());
    let model = dir.path().join("m.safetensors").display().to_string();
    train_spambase(&tr, &model, &["--epochs", "5"]);
    let mut args = vec!["predict", "--model", &model, "--data", &te];
    args.extend(SPAMBASE_LABEL);
    let csv = String::from_utf8(run(&args).stdout).unwrap();
    let mut lines = csv.lines();
    // The model stores the class values of its string labels: each row names its class.
    assert_eq!(lines.next(), Some("score,logit,label,class"));
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for l in lines {
        let (numbers, class) = l.rsplit_once(',').unwrap();
        let r: Vec<f64> = numbers.split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(class, if r[2] == 1.0 { "spam" } else { "nonspam" }, "{l}");
        rows.push(r);
    }
    assert_eq!(rows.len(), 921);
    for r in &rows {
        let p = 1.0 / (1.0 + (-r[1]).exp());
        assert!((p - r[0]).abs() < 1e-6, "score is sigmoid(logit)");
        assert_eq!(
            r[2],
            (r[1] >= 0.0) as u8 as f64,
            "label at the logit-0 threshold"
        );
    }
    // Scores follow input order: the first test row scored alone matches.
    let first = dir.path().join("first.csv");
    let text = std::fs::read_to_string(&te).unwrap();
    let mut it = text.lines();
    std::fs::write(
        &first,
        format!("{}\n{}\n", it.next().unwrap(), it.next().unwrap()),
    )
    .unwrap();
    let first = first.display().to_string();
    let mut args = vec![
        "predict", "--model", &model, "--data", &first, "--format", "jsonl",
    ];
    args.extend(SPAMBASE_LABEL);
    let one: serde_json::Value = serde_json::from_slice(&run(&args).stdout).unwrap();
    assert!((one["logit"].as_f64().unwrap() - rows[0][1]).abs() < 1e-6);
    // --out writes a file.
    let out = dir.path().join("p.csv").display().to_string();
    let mut args = vec!["predict", "--model", &model, "--data", &te, "--out", &out];
    args.extend(SPAMBASE_LABEL);
    run(&args);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv);
}

#[test]
fn eval_draws_a_roc_png_and_prints_a_table() {
    let dir = tempdir();
    let (tr, te) = split_spambase(dir.path());
    let model = dir.path().join("m.safetensors").display().to_string();
    train_spambase(&tr, &model, &["--epochs", "3"]);
    let png = dir.path().join("roc.png").display().to_string();
    let mut args = vec!["eval", "--model", &model, "--data", &te, "--roc", &png];
    args.extend(SPAMBASE_LABEL);
    let table = String::from_utf8(run(&args).stdout).unwrap();
    assert!(
        table.contains("ROC AUC") && table.contains("TPR@1%FPR"),
        "{table}"
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 10_000, "a real plot, not an empty image");
}

#[test]
fn svmlight_multi_label_and_npz_inputs_train_and_score() {
    let dir = tempdir();
    let fx = root().join("tests/fixtures/data");
    // svmlight, multi-label svmlight and npz (dense and scipy CSR).
    let svm = dir.path().join("d.svm");
    let mut text = String::new();
    for i in 0..200 {
        let y = i % 3 == 0;
        text += &format!(
            "{} 1:{} 4:{}{}\n",
            if y { "+1" } else { "-1" },
            (i % 7) as f32 * 0.5 + 0.1,
            if y { 2.0 } else { 0.5 },
            if i % 2 == 0 { " 9:1" } else { "" }
        );
    }
    std::fs::write(&svm, text).unwrap();
    let svm = svm.display().to_string();
    let model = dir.path().join("s.safetensors").display().to_string();
    run(&[
        "train", "--data", &svm, "--out", &model, "--epochs", "30", "--hidden", "8", "-q",
    ]);
    let out = run(&["eval", "--model", &model, "--data", &svm, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["auc"].as_f64().unwrap() > 0.99, "{v}");
    let ml = dir.path().join("ml.svm");
    let mut text = String::new();
    for i in 0..300 {
        let labels: Vec<&str> = [(i % 2 == 0, "0"), (i % 3 == 0, "2")]
            .iter()
            .filter(|p| p.0)
            .map(|p| p.1)
            .collect();
        text += &format!(
            "{} 1:{} 2:{} 3:1\n",
            labels.join(","),
            (i % 2 == 0) as u8,
            (i % 3 == 0) as u8
        );
    }
    std::fs::write(&ml, text).unwrap();
    let ml = ml.display().to_string();
    let model = dir.path().join("ml.safetensors").display().to_string();
    run(&[
        "train",
        "--data",
        &ml,
        "--out",
        &model,
        "--epochs",
        "40",
        "--lr",
        "0.01",
        "--hidden",
        "8",
        "-q",
        "--constraint",
        "monotone",
    ]);
    let out = run(&["eval", "--model", &model, "--data", &ml, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["labels"].as_array().unwrap().len(), 2, "{v}");
    assert!(v["auc"].as_f64().unwrap() > 0.99, "{v}");
    let p = String::from_utf8(run(&["predict", "--model", &model, "--data", &ml]).stdout).unwrap();
    assert_eq!(
        p.lines().next(),
        Some("score_0,logit_0,label_0,score_2,logit_2,label_2")
    );
    for name in ["dense_f32.npz", "dense_f64.npz", "dense_compressed.npz"] {
        let npz = fx.join(name).display().to_string();
        let model = dir.path().join("n.safetensors").display().to_string();
        run(&[
            "train", "--data", &npz, "--out", &model, "--epochs", "2", "--hidden", "4", "-q",
        ]);
        run(&["eval", "--model", &model, "--data", &npz, "--json"]);
    }
    let csr = fx.join("csr.npz").display().to_string();
    let labels = fx.join("csr_labels.npy").display().to_string();
    let model = dir.path().join("c.safetensors").display().to_string();
    run(&[
        "train", "--data", &csr, "--labels", &labels, "--out", &model, "--epochs", "2", "--hidden",
        "4", "-q",
    ]);
    run(&["predict", "--model", &model, "--data", &csr]);
}
