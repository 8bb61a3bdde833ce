//! The operating point after training: `eval`/`predict --threshold` and `--threshold-fpr`,
//! and `eval --out` writing the `--json` object.

mod common;

use common::{fails, path_in, run_stdout, split_spambase, tempdir, train_spambase, SPAMBASE_LABEL};
use serde_json::Value;

fn eval(model: &str, data: &str, extra: &[&str]) -> Value {
    let mut args = vec!["eval", "--model", model, "--data", data, "--json"];
    args.extend(SPAMBASE_LABEL);
    args.extend(extra);
    serde_json::from_str(&run_stdout(&args)).unwrap()
}

fn fpr(v: &Value) -> f64 {
    let c = &v["confusion"];
    let (fp, tn) = (c["fp"].as_f64().unwrap(), c["tn"].as_f64().unwrap());
    fp / (fp + tn)
}

#[test]
fn thresholds_set_at_eval_and_predict_time() {
    let dir = tempdir();
    let (train, test) = split_spambase(dir.path());
    let model = path_in(dir.path(), "m.safetensors");
    train_spambase(&train, &model, &["--epochs", "5"]);

    let default = eval(&model, &test, &[]);
    assert_eq!(default["threshold"], 0.0);
    assert!(
        fpr(&default) > 0.01,
        "the default threshold is not a 1% FPR one"
    );
    let at_1pct = eval(&model, &test, &["--threshold-fpr", "0.01"]);
    assert!(fpr(&at_1pct) <= 0.01, "{at_1pct}");
    assert!(at_1pct["threshold"].as_f64().unwrap() > 0.0);
    assert!(at_1pct["recall"].as_f64() < default["recall"].as_f64());
    // The same metrics as at that threshold given directly.
    let t = at_1pct["threshold"].as_f64().unwrap().to_string();
    let given = eval(&model, &test, &["--threshold", &t]);
    assert_eq!(given["confusion"], at_1pct["confusion"]);

    // --out writes the --json object.
    let out = path_in(dir.path(), "eval.json");
    let printed = eval(&model, &test, &["--out", &out]);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(printed, written);

    // predict: --threshold moves the labels; --threshold-fpr needs --calibration.
    let labels = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["predict", "--model", &model, "--data", &test];
        args.extend(SPAMBASE_LABEL);
        args.extend(extra);
        run_stdout(&args)
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().to_string())
            .collect()
    };
    assert!(labels(&["--threshold", "1000"]).iter().all(|l| l == "0"));
    assert!(labels(&["--threshold", "-1000"]).iter().all(|l| l == "1"));
    let calibrated = labels(&["--threshold-fpr", "0.01", "--calibration", &test]);
    let flagged = calibrated.iter().filter(|l| *l == "1").count();
    let expected =
        at_1pct["confusion"]["tp"].as_u64().unwrap() + at_1pct["confusion"]["fp"].as_u64().unwrap();
    assert_eq!(flagged as u64, expected);

    // Bad values: exit 2, naming the option.
    let refused = |command: &str, extra: &[&str]| -> String {
        let mut args = vec![command, "--model", &model, "--data", &test];
        args.extend(extra);
        args.extend(SPAMBASE_LABEL);
        fails(&args)
    };
    assert!(refused("eval", &["--threshold", "inf"]).contains("--threshold"));
    assert!(refused("eval", &["--threshold-fpr", "1.5"]).contains("--threshold-fpr"));
    assert!(refused("predict", &["--threshold-fpr", "0.01"]).contains("--calibration"));
}
