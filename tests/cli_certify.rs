//! `certify` through the command line on Spambase: partial monotone training and presets,
//! feature directions, exit codes (0 certified, 1 not, 2 errors) and JSON.

mod common;

use common::{exec, spambase, tempdir, train_spambase, SPAMBASE_LABEL};
use std::path::Path;

/// 20 Spambase columns the partial model is monotone in.
const MONOTONE: [&str; 20] = [
    "make",
    "address",
    "all",
    "our",
    "over",
    "remove",
    "internet",
    "order",
    "mail",
    "receive",
    "free",
    "business",
    "email",
    "credit",
    "money",
    "num000",
    "charExclamation",
    "charDollar",
    "capitalAve",
    "capitalLong",
];

/// Trains a 16-unit network for 4 epochs on Spambase into `out`.
fn train(out: &Path, extra: &[&str]) {
    let mut args = vec!["--hidden", "16", "--epochs", "4"];
    args.extend(extra);
    train_spambase(&spambase(), out.to_str().unwrap(), &args);
}

/// Runs certify; returns the exit code and the parsed JSON (or the text).
fn certify_cli(model: &Path, features: Option<&Path>, json: bool) -> (i32, String) {
    let mut args = vec!["certify", "--model", model.to_str().unwrap()];
    if let Some(f) = features {
        args.extend(["--features", f.to_str().unwrap()]);
    }
    if json {
        args.push("--json");
    }
    let o = exec(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    (
        o.status.code().expect("exit code"),
        String::from_utf8(o.stdout).unwrap() + &err,
    )
}

fn json(text: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(text).expect("exactly one JSON object");
    assert!(
        v["certified"].is_boolean() && v["violations"].is_array(),
        "{v}"
    );
    v
}

#[test]
fn partial_monotone_training_and_presets() {
    let dir = tempdir();
    let d = dir.path();
    let list = d.join("monotone.txt");
    std::fs::write(
        &list,
        format!("# spammy features\n\n{}\n", MONOTONE.join("\n")),
    )
    .unwrap();

    // Partial: certified for the listed features, not for all of them.
    let partial = d.join("partial.safetensors");
    train(&partial, &["--monotone-features", list.to_str().unwrap()]);
    let (code, out) = certify_cli(&partial, Some(&list), false);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(
            "CERTIFIED: the score cannot decrease when any of the 20 declared features is added"
        ),
        "{out}"
    );
    let (code, out) = certify_cli(&partial, Some(&list), true);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["certified"], true);
    assert_eq!(v["declared"], 20);
    assert!(v["notes"][0]
        .as_str()
        .unwrap()
        .contains("input features that are not declared"));

    let (code, out) = certify_cli(&partial, None, true);
    assert_eq!(code, 1, "{out}");
    let v = json(&out);
    assert_eq!(v["certified"], false);
    let uncovered: Vec<&str> = v["uncovered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(!uncovered.is_empty());
    assert!(
        uncovered.iter().all(|u| !MONOTONE.contains(u)),
        "{uncovered:?}"
    );
    // The first layer and the skip connection (on by default for monotone networks) are
    // free on the unlisted features; nothing deeper is.
    assert_eq!(v["violations"][0]["layer"], 0);
    assert_eq!(v["violations"][1]["skip"], true, "{v}");
    assert_eq!(v["violations"].as_array().unwrap().len(), 2, "{v}");
    let (code, out) = certify_cli(&partial, None, false);
    assert_eq!(code, 1);
    assert!(out.starts_with("NOT CERTIFIED"), "{out}");
    assert!(out.contains(uncovered[0]), "{out}");

    // The partial model trains: it separates spam on its training data.
    let data = spambase();
    let mut args = vec![
        "eval",
        "--model",
        partial.to_str().unwrap(),
        "--data",
        &data,
        "--json",
    ];
    args.extend(SPAMBASE_LABEL);
    let o = exec(&args);
    assert!(o.status.success());
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(e["auc"].as_f64().unwrap() > 0.9, "{e}");

    // Presets.
    for (preset, want) in [("none", 1), ("monotone", 0), ("last-nonneg", 1)] {
        let path = d.join(format!("{preset}.safetensors"));
        train(&path, &["--constraint", preset]);
        let (code, out) = certify_cli(&path, None, true);
        assert_eq!(code, want, "{preset}: {out}");
        let v = json(&out);
        assert_eq!(v["certified"], want == 0, "{preset}");
        if preset == "last-nonneg" {
            // The output layer is fine; the free hidden layer is not.
            assert!(v["violations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["layer"] == 0));
        }
    }
}

#[test]
fn feature_directions_train_and_certify() {
    let dir = tempdir();
    let d = dir.path();
    let dirs = d.join("dirs.txt");
    std::fs::write(
        &dirs,
        "# additions raise these\nfree +1\nmoney 1\ncharDollar up\n# and lower these\nhp -1\ngeorge down\nedu 0\n",
    )
    .unwrap();
    let model = d.join("m.safetensors");
    train(&model, &["--feature-directions", dirs.to_str().unwrap()]);
    let info = exec(&["inspect", "--model", model.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("non_neg(rows=3) + non_pos(rows=2)"), "{text}");
    let run = |extra: &[&str]| {
        let mut args = vec!["certify", "--model", model.to_str().unwrap(), "--json"];
        args.extend(extra);
        let o = exec(&args);
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (code, out) = run(&["--directions", dirs.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let v = json(&out);
    assert_eq!(
        (v["declared"].as_u64(), v["decreasing"].as_u64()),
        (Some(5), Some(2))
    );
    // The same five features all declared +1: the NonPos rows are violations.
    let up = d.join("up.txt");
    std::fs::write(&up, "free\nmoney\ncharDollar\nhp\ngeorge\n").unwrap();
    let (code, out) = run(&["--features", up.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let v = json(&out);
    let mut uncovered: Vec<&str> = v["uncovered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    uncovered.sort_unstable();
    assert_eq!(uncovered, ["george", "hp"], "{v}");
    // A bad direction: file, line and field.
    std::fs::write(&up, "free +1\nhp sideways\n").unwrap();
    let o = exec(&[
        "certify",
        "--model",
        model.to_str().unwrap(),
        "--directions",
        up.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("up.txt:2") && err.contains("direction"),
        "{err}"
    );
}

#[test]
fn monotone_feature_list_and_certify_errors_exit_2() {
    let dir = tempdir();
    let d = dir.path();
    let list = d.join("bad.txt");
    std::fs::write(&list, "make\nno_such_column\n").unwrap();
    let data = spambase();
    let out = d.join("m.safetensors");
    // --monotone-features with an explicit preset.
    let mut args = vec![
        "train",
        "--data",
        &data,
        "--out",
        out.to_str().unwrap(),
        "--monotone-features",
        list.to_str().unwrap(),
        "--constraint",
        "monotone",
        "-q",
    ];
    args.extend(SPAMBASE_LABEL);
    let o = exec(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--constraint"));
    // An unknown name in the list: file and line.
    args.truncate(7);
    args.extend(["--epochs", "1", "-q"]);
    args.extend(SPAMBASE_LABEL);
    let o = exec(&args);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.txt:2") && err.contains("no_such_column"),
        "{err}"
    );
    assert!(!out.exists());

    // certify: unknown feature, missing model.
    std::fs::write(&list, "make\nno_such_column\n").unwrap();
    train(&out, &[]);
    let (code, text) = certify_cli(&out, Some(&list), false);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("bad.txt:2"), "{text}");
    let (code, _) = certify_cli(&d.join("missing.safetensors"), None, false);
    assert_eq!(code, 2);
}
