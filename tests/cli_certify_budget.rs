//! `certify --budget` through the command line on Spambase: the rates per budget, their
//! order, the monotone model's flat curve, the per-sample CSV and the errors.

mod common;

use common::{fails, path_in, run_stdout, split_spambase, tempdir, train_spambase};

fn budget_json(model: &str, data: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "certify",
        "--model",
        model,
        "--data",
        data,
        "--budget",
        "0,1,3,inf",
        "--json",
        "--label-column",
        "type",
        "--positive",
        "spam",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&run_stdout(&args)).unwrap()
}

#[test]
fn budget_certificates_shrink_with_the_budget_and_stay_flat_for_monotone_models() {
    let dir = tempdir();
    let (train, test) = split_spambase(dir.path());
    let free = path_in(dir.path(), "free.safetensors");
    let mono = path_in(dir.path(), "mono.safetensors");
    train_spambase(&train, &free, &["--epochs", "3", "--hidden", "16"]);
    train_spambase(
        &train,
        &mono,
        &["--epochs", "3", "--constraint", "monotone"],
    );

    let csv = path_in(dir.path(), "bounds.csv");
    let r = budget_json(&free, &test, &["--out", &csv]);
    let rates: Vec<f64> = r["rates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["rate"].as_f64().unwrap())
        .collect();
    // Budget 0 certifies exactly the detected positives; more additions, fewer.
    assert_eq!(rates[0], r["clean_rate"].as_f64().unwrap());
    assert!(rates.windows(2).all(|w| w[1] <= w[0]), "{rates:?}");
    assert!(
        rates[2] < rates[0],
        "3 additions certify as many as none: {rates:?}"
    );
    assert_eq!(r["monotone"], false);
    let positives = r["positives"].as_u64().unwrap() as usize;
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), positives + 1);
    assert!(text.starts_with("row,clean,bound_0,bound_1,bound_3,bound_inf"));

    let m = budget_json(&mono, &test, &[]);
    assert_eq!(m["monotone"], true);
    for b in m["rates"].as_array().unwrap() {
        assert_eq!(b["rate"], m["clean_rate"], "{m}");
    }

    let e = fails(&[
        "certify",
        "--model",
        &free,
        "--data",
        &test,
        "--budget",
        "1,x",
        "--label-column",
        "type",
        "--positive",
        "spam",
    ]);
    assert!(e.contains("--budget") && e.contains("'x'"), "{e}");
    let e = fails(&["certify", "--model", &free, "--budget", "5"]);
    assert!(e.contains("--data"), "{e}");
}
