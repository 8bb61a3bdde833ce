//! The certified-accuracy acceptance on the SpamAssassin temporal split (bundled archives,
//! the demo's features): `nonneg train --constraint monotone` with nothing else is
//! certified and reaches test ROC AUC 0.975 (docs/certified-accuracy.md has the ablation).
//! Spambase's counterpart is in tests/cli.rs.

use std::path::Path;
use std::process::Command;

fn nonneg(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_nonneg"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    out
}

fn ok(args: &[&str]) -> String {
    let out = nonneg(args);
    assert!(
        out.status.success(),
        "nonneg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn featurize(dir: &Path) -> (String, String) {
    let a = |name: &str| format!("data/spamassassin/{name}.tar.gz");
    let (tr, te) = (
        dir.join("train.svm").display().to_string(),
        dir.join("test.svm").display().to_string(),
    );
    ok(&[
        "featurize",
        "text",
        "-q",
        "--class",
        &format!("spam={}", a("spam-1")),
        "--class",
        &format!("ham={}", a("easy-ham-1")),
        "--class",
        &format!("ham={}", a("hard-ham-1")),
        "--header-tokens",
        "--url-hosts",
        "--raw-headers",
        "--out",
        &tr,
    ]);
    ok(&[
        "featurize",
        "text",
        "-q",
        "--class",
        &format!("spam={}", a("spam-2")),
        "--class",
        &format!("ham={}", a("easy-ham-2")),
        "--vocab",
        &format!("{tr}.featurizer.json"),
        "--out",
        &te,
    ]);
    (tr, te)
}

#[test]
fn default_monotone_recipe_is_certified_at_auc_0_975_on_the_temporal_split() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = featurize(dir.path());
    let model = dir.path().join("m.safetensors").display().to_string();
    ok(&[
        "train",
        "--data",
        &tr,
        "--out",
        &model,
        "-q",
        "--constraint",
        "monotone",
    ]);
    let e: serde_json::Value =
        serde_json::from_str(&ok(&["eval", "--model", &model, "--data", &te, "--json"])).unwrap();
    eprintln!("{e}");
    let auc = e["auc"].as_f64().unwrap();
    assert!(auc >= 0.975, "default monotone AUC {auc}");
    assert!(e["tpr_at_fpr_1pct"].as_f64().unwrap() > 0.7, "{e}");
    // The recipe: tanh units, a skip connection, L2 1e-2 on sparse input.
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--model", &model, "--json"])).unwrap();
    assert!(info["skip"].is_object(), "{info}");
    assert_eq!(info["training"]["activation"], "tanh");
    assert_eq!(
        info["training"]["optimizer"]["weight_decay"].as_f64(),
        Some(0.01f32 as f64)
    );
    let cert = nonneg(&["certify", "--model", &model]);
    assert_eq!(
        cert.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&cert.stdout)
    );
    // Without the recipe's levers (the previous default) the same model is below 0.975.
    let old = dir.path().join("old.safetensors").display().to_string();
    ok(&[
        "train",
        "--data",
        &tr,
        "--out",
        &old,
        "-q",
        "--constraint",
        "monotone",
        "--skip",
        "off",
        "--weight-decay",
        "0",
    ]);
    let e: serde_json::Value =
        serde_json::from_str(&ok(&["eval", "--model", &old, "--data", &te, "--json"])).unwrap();
    assert!(e["auc"].as_f64().unwrap() < auc, "{e}");
}
