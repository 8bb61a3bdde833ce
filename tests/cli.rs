//! The `nonneg` command line end to end on the bundled Spambase data: the acceptance
//! numbers, byte-identical models across runs and thread counts, every output format, and
//! clear errors (file, line, field; non-zero exit) on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nonneg"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("runs");
    if !out.status.success() {
        panic!(
            "nonneg {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn fails(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("runs");
    assert!(!out.status.success(), "nonneg {args:?} should fail");
    assert_eq!(out.status.code(), Some(2), "errors exit with 2");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    err
}

const LABEL: [&str; 4] = ["--label-column", "type", "--positive", "spam"];

/// Splits the bundled Spambase 80/20 (stratified, seed 0) into `dir`.
fn split(dir: &Path) -> (String, String) {
    let train = dir.join("train.csv").display().to_string();
    let test = dir.join("test.csv").display().to_string();
    let data = root().join("data/spambase.csv").display().to_string();
    let mut args = vec![
        "split",
        "--data",
        &data,
        "--test-fraction",
        "0.2",
        "--seed",
        "0",
    ];
    args.extend(LABEL);
    args.extend(["--train-out", &train, "--test-out", &test, "-q"]);
    run(&args);
    (train, test)
}

fn train(train: &str, out: &str, extra: &[&str]) {
    let mut args = vec!["train", "--data", train, "--out", out, "-q"];
    args.extend(LABEL);
    args.extend(extra);
    run(&args);
}

fn eval_json(model: &str, data: &str) -> serde_json::Value {
    let mut args = vec!["eval", "--model", model, "--data", data, "--json"];
    args.extend(LABEL);
    let out = run(&args);
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn inspect_json(model: &str) -> serde_json::Value {
    let out = run(&["inspect", "--model", model, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn spambase_acceptance_unconstrained_and_monotone() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = split(dir.path());
    let lines = std::fs::read_to_string(&te).unwrap().lines().count();
    assert_eq!(lines, 921 + 1, "20% of 4601 rows plus the header");
    let free = dir.path().join("free.safetensors").display().to_string();
    let mono = dir.path().join("mono.safetensors").display().to_string();
    train(&tr, &free, &[]);
    train(&tr, &mono, &["--constraint", "monotone"]);
    let f = eval_json(&free, &te);
    let m = eval_json(&mono, &te);
    eprintln!("unconstrained {f}\nmonotone {m}");
    for key in ["accuracy", "auc", "tpr_at_fpr_1pct", "n"] {
        assert!(
            f.get(key).is_some() && m.get(key).is_some(),
            "eval --json lacks {key}"
        );
    }
    assert_eq!(f["n"], 921);
    assert!(
        f["auc"].as_f64().unwrap() >= 0.97,
        "unconstrained AUC {}",
        f["auc"]
    );
    // The certified-accuracy acceptance: the default monotone recipe reaches 0.96.
    assert!(
        m["auc"].as_f64().unwrap() >= 0.96,
        "monotone AUC {}",
        m["auc"]
    );
    let mi = inspect_json(&mono);
    let layers = mi["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "default --hidden 64,32 then the output");
    for l in layers.iter().chain(std::iter::once(&mi["skip"])) {
        assert_eq!(
            l["negative_weights"], 0,
            "monotone kernel with negative entries: {l}"
        );
    }
    assert_eq!(mi["negative_weights"], 0);
    assert_eq!(mi["scaler"], "log1p_standard", "{mi}");
    let cert = Command::new(env!("CARGO_BIN_EXE_nonneg"))
        .args(["certify", "--model", &mono])
        .output()
        .unwrap();
    assert_eq!(cert.status.code(), Some(0), "{cert:?}");
    let fi = inspect_json(&free);
    let neg: u64 = fi["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["negative_weights"].as_u64().unwrap())
        .sum();
    assert!(
        neg > 1000,
        "an unconstrained model has many negative weights ({neg})"
    );
}

#[test]
fn same_seed_gives_byte_identical_models_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, _) = split(dir.path());
    let mut files = Vec::new();
    for (i, threads) in ["1", "2", "2", "3"].iter().enumerate() {
        let out = dir
            .path()
            .join(format!("m{i}.safetensors"))
            .display()
            .to_string();
        // Big enough that the GEMMs and updates run in parallel.
        train(
            &tr,
            &out,
            &[
                "--threads",
                threads,
                "--hidden",
                "256,256",
                "--epochs",
                "3",
                "--valid-fraction",
                "0.1",
                "--constraint",
                "monotone",
                "--seed",
                "7",
            ],
        );
        files.push(std::fs::read(&out).unwrap());
    }
    for f in &files[1..] {
        assert!(
            f == &files[0],
            "model files differ between runs or thread counts"
        );
    }
    let other = dir.path().join("other.safetensors").display().to_string();
    train(
        &tr,
        &other,
        &[
            "--hidden",
            "256,256",
            "--epochs",
            "3",
            "--valid-fraction",
            "0.1",
            "--constraint",
            "monotone",
            "--seed",
            "8",
        ],
    );
    assert!(
        std::fs::read(&other).unwrap() != files[0],
        "the seed must matter"
    );
}

#[test]
fn predict_writes_scores_in_input_order_as_csv_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = split(dir.path());
    let model = dir.path().join("m.safetensors").display().to_string();
    train(&tr, &model, &["--epochs", "5"]);
    let mut args = vec!["predict", "--model", &model, "--data", &te];
    args.extend(LABEL);
    let csv = String::from_utf8(run(&args).stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("score,logit,label"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
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
    args.extend(LABEL);
    let one: serde_json::Value = serde_json::from_slice(&run(&args).stdout).unwrap();
    assert!((one["logit"].as_f64().unwrap() - rows[0][1]).abs() < 1e-6);
    // --out writes a file.
    let out = dir.path().join("p.csv").display().to_string();
    let mut args = vec!["predict", "--model", &model, "--data", &te, "--out", &out];
    args.extend(LABEL);
    run(&args);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv);
}

#[test]
fn eval_draws_a_roc_png_and_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = split(dir.path());
    let model = dir.path().join("m.safetensors").display().to_string();
    train(&tr, &model, &["--epochs", "3"]);
    let png = dir.path().join("roc.png").display().to_string();
    let mut args = vec!["eval", "--model", &model, "--data", &te, "--roc", &png];
    args.extend(LABEL);
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
fn threshold_fpr_holds_on_validation_data() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = split(dir.path());
    let model = dir.path().join("m.safetensors").display().to_string();
    train(
        &tr,
        &model,
        &["--valid", &te, "--threshold-fpr", "0.01", "--epochs", "5"],
    );
    let m = eval_json(&model, &te);
    let fp = m["confusion"]["fp"].as_u64().unwrap() as f64;
    let negatives = (m["n"].as_u64().unwrap() - m["positives"].as_u64().unwrap()) as f64;
    assert!(
        fp <= 0.01 * negatives,
        "FPR {} above 1% on the data it was picked on",
        fp / negatives
    );
    assert!(m["threshold"].as_f64().unwrap() != 0.0);
}

#[test]
fn every_optimizer_schedule_and_constraint_option_trains() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = split(dir.path());
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, r#"{"layers": [{"kernel": [{"name": "non_neg"}, {"name": "max_norm", "max_value": 2.0, "axis": 0}], "bias": []}, {"kernel": [{"name": "unit_norm", "axis": 0}], "bias": [{"name": "max_norm", "max_value": 1.0}]}]}"#).unwrap();
    let cfg = cfg.display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--momentum",
            "0.9",
            "--nesterov",
            "--weight-decay",
            "1e-4",
            "--lr-schedule",
            "step",
            "--lr-step-epochs",
            "2",
        ],
        vec![
            "--optimizer",
            "adamw",
            "--weight-decay",
            "0.01",
            "--lr-schedule",
            "cosine",
            "--clip-grad-norm",
            "1.0",
        ],
        vec![
            "--constraint",
            "last-nonneg",
            "--activation",
            "tanh",
            "--hidden",
            "16",
        ],
        vec![
            "--constraint",
            "monotone",
            "--nonneg-mode",
            "abs",
            "--activation",
            "softplus",
        ],
        vec![
            "--constraint",
            "monotone",
            "--nonneg-mode",
            "softplus",
            "--activation",
            "sigmoid",
            "--lr",
            "0.01",
        ],
        vec![
            "--hidden",
            "",
            "--constraint",
            "monotone",
            "--scale",
            "log1p-standard",
        ],
        vec![
            "--hidden",
            "8",
            "--constraint-config",
            &cfg,
            "--scale",
            "minmax",
        ],
        vec![
            "--layer-constraint",
            "0.kernel=non_neg+max_norm(1.5)",
            "--layer-constraint",
            "last.bias=max_norm(0.5)",
            "--activation",
            "leaky_relu",
        ],
        vec![
            "--valid-fraction",
            "0.2",
            "--patience",
            "2",
            "--monitor",
            "auc",
            "--pos-weight",
            "none",
            "--scale",
            "log1p",
        ],
    ];
    for extra in cases {
        let model = dir.path().join("m.safetensors").display().to_string();
        let mut args = vec![
            "--epochs",
            if extra.contains(&"--patience") {
                "30"
            } else {
                "4"
            },
        ];
        args.extend(&extra);
        train(&tr, &model, &args);
        let m = eval_json(&model, &te);
        let auc = m["auc"].as_f64().unwrap();
        assert!(auc > 0.85, "{extra:?}: AUC {auc}");
        let info = inspect_json(&model);
        let layers = info["layers"].as_array().unwrap();
        if extra.contains(&"monotone") {
            assert!(
                layers.iter().all(|l| l["negative_weights"] == 0),
                "{extra:?}"
            );
        }
        if extra.contains(&"last-nonneg") {
            assert_eq!(layers.last().unwrap()["negative_weights"], 0);
            assert!(layers[0]["negative_weights"].as_u64().unwrap() > 0);
        }
        if extra.iter().any(|a| a.contains("max_norm(1.5)")) {
            assert!(layers[0]["max_unit_norm"].as_f64().unwrap() <= 1.5 + 1e-4);
            assert_eq!(layers[0]["negative_weights"], 0);
        }
        if extra.contains(&cfg.as_str()) {
            assert!(
                (layers[1]["max_unit_norm"].as_f64().unwrap() - 1.0).abs() < 1e-3,
                "unit_norm"
            );
        }
    }
}

#[test]
fn other_formats_train_and_score_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
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

#[test]
fn a_million_sparse_features_train_without_a_dense_batch() {
    let dir = tempfile::tempdir().unwrap();
    let svm = dir.path().join("wide.svm");
    let mut text = String::new();
    let mut state = 1u64;
    for i in 0..2000 {
        let y = i % 2 == 0;
        text += if y { "1" } else { "0" };
        let mut idx: Vec<u64> = (0..100)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1 + (state >> 33) % (1 << 20)
            })
            .collect();
        idx.push(if y { 5 } else { 6 });
        idx.push(1 << 20); // the last column, so the width is exactly 2^20
        idx.sort_unstable();
        idx.dedup();
        for j in idx {
            text += &format!(" {j}:1");
        }
        text += "\n";
    }
    std::fs::write(&svm, text).unwrap();
    let svm = svm.display().to_string();
    let model = dir.path().join("w.safetensors").display().to_string();
    let before = peak_child_rss_kib();
    run(&[
        "train",
        "--data",
        &svm,
        "--out",
        &model,
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--batch-size",
        "256",
        "-q",
        "--constraint",
        "monotone",
    ]);
    let peak = peak_child_rss_kib().max(before);
    // Weights + Adam state: 2^20 x 8 x 3 floats = 96 MiB. One dense [256 x 2^20] batch
    // alone would be 1 GiB.
    assert!(peak < 600 * 1024, "peak RSS {} MiB", peak / 1024);
    let info = inspect_json(&model);
    assert_eq!(info["input_dim"], 1 << 20);
    assert_eq!(info["sparse_input"], true);
    let out = run(&["eval", "--model", &model, "--data", &svm, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["auc"].as_f64().unwrap() > 0.99, "{v}");
}

fn peak_child_rss_kib() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    unsafe { usage.assume_init() }.ru_maxrss as u64
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic_or_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(p("nan.csv"), "a,b,label\n1,2,0\n3,nan,1\n").unwrap();
    let e = fails(&[
        "train",
        "--data",
        &p("nan.csv"),
        "--out",
        &p("m.safetensors"),
    ]);
    assert!(
        e.contains("nan.csv") && e.contains(":3") && e.contains("b"),
        "{e}"
    );
    assert!(
        !Path::new(&p("m.safetensors")).exists(),
        "no model written on error"
    );
    std::fs::write(p("inf.svm"), "1 1:2\n0 2:inf\n").unwrap();
    let e = fails(&[
        "train",
        "--data",
        &p("inf.svm"),
        "--out",
        &p("m.safetensors"),
    ]);
    assert!(e.contains("inf.svm") && e.contains(":2"), "{e}");
    let e = fails(&[
        "train",
        "--data",
        &p("missing.csv"),
        "--out",
        &p("m.safetensors"),
    ]);
    assert!(e.contains("missing.csv"), "{e}");
    // A model, then data whose features differ from it.
    std::fs::write(p("ok.csv"), "a,b,label\n1,2,0\n3,4,1\n5,1,0\n2,8,1\n").unwrap();
    run(&[
        "train",
        "--data",
        &p("ok.csv"),
        "--out",
        &p("m.safetensors"),
        "--epochs",
        "1",
        "-q",
    ]);
    std::fs::write(p("renamed.csv"), "a,c,label\n1,2,0\n").unwrap();
    let e = fails(&[
        "eval",
        "--model",
        &p("m.safetensors"),
        "--data",
        &p("renamed.csv"),
    ]);
    assert!(
        e.contains("c") && e.contains("b"),
        "names what differs: {e}"
    );
    std::fs::write(p("wider.csv"), "a,b,z,label\n1,2,3,0\n").unwrap();
    let e = fails(&[
        "predict",
        "--model",
        &p("m.safetensors"),
        "--data",
        &p("wider.csv"),
    ]);
    assert!(e.contains("z"), "{e}");
    // Corrupt, truncated and foreign model files.
    let bytes = std::fs::read(p("m.safetensors")).unwrap();
    std::fs::write(p("trunc.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&["inspect", "--model", &p("trunc.safetensors")]);
    assert!(e.contains("trunc.safetensors"), "{e}");
    std::fs::write(p("foreign.safetensors"), b"GIF89a not a model at all").unwrap();
    fails(&[
        "eval",
        "--model",
        &p("foreign.safetensors"),
        "--data",
        &p("ok.csv"),
    ]);
    // Bad options.
    let e = fails(&[
        "train",
        "--data",
        &p("ok.csv"),
        "--out",
        &p("x.safetensors"),
        "--layer-constraint",
        "0.kernel=max_norm(abc)",
    ]);
    assert!(e.contains("max_norm"), "{e}");
    let e = fails(&[
        "train",
        "--data",
        &p("ok.csv"),
        "--out",
        &p("x.safetensors"),
        "--hidden",
        "8,x",
    ]);
    assert!(e.contains("--hidden"), "{e}");
    let e = fails(&[
        "train",
        "--data",
        &p("ok.csv"),
        "--out",
        &p("x.safetensors"),
        "--threshold-fpr",
        "0.01",
    ]);
    assert!(e.contains("validation"), "{e}");
    // Nothing but the good model and the inputs remain: no temp files left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "foreign.safetensors",
            "inf.svm",
            "m.safetensors",
            "nan.csv",
            "ok.csv",
            "renamed.csv",
            "trunc.safetensors",
            "wider.csv"
        ]
    );
}
