//! `nonneg train` end to end on the bundled Spambase data: the acceptance numbers,
//! byte-identical models across runs and thread counts, the FPR threshold, option
//! combinations, and a million sparse features in bounded memory.

mod common;

use common::{eval_spambase, exec, inspect_json, run, split_spambase, tempdir, train_spambase};

#[test]
fn spambase_acceptance_unconstrained_and_monotone() {
    let dir = tempdir();
    let (tr, te) = split_spambase(dir.path());
    let lines = std::fs::read_to_string(&te).unwrap().lines().count();
    assert_eq!(lines, 921 + 1, "20% of 4601 rows plus the header");
    let free = dir.path().join("free.safetensors").display().to_string();
    let mono = dir.path().join("mono.safetensors").display().to_string();
    train_spambase(&tr, &free, &[]);
    train_spambase(&tr, &mono, &["--constraint", "monotone"]);
    let f = eval_spambase(&free, &te);
    let m = eval_spambase(&mono, &te);
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
    let cert = exec(&["certify", "--model", &mono]);
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
    let dir = tempdir();
    let (tr, _) = split_spambase(dir.path());
    let mut files = Vec::new();
    for (i, threads) in ["1", "2", "2", "3"].iter().enumerate() {
        let out = dir
            .path()
            .join(format!("m{i}.safetensors"))
            .display()
            .to_string();
        // Big enough that the GEMMs and updates run in parallel.
        train_spambase(
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
    train_spambase(
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
    // Dropout's masks come from the seed alone, not from the threads that use them.
    let dropout = ["--dropout", "0.3", "--input-dropout", "0.1"];
    let mut dropped = Vec::new();
    for threads in ["1", "3"] {
        let out = dir.path().join(format!("d{threads}.safetensors"));
        let out = out.display().to_string();
        let mut args = vec!["--threads", threads, "--hidden", "256,256", "--epochs", "3"];
        args.extend(["--seed", "7", "--valid-fraction", "0.1"]);
        train_spambase(&tr, &out, &[&args[..], &dropout].concat());
        dropped.push(std::fs::read(&out).unwrap());
    }
    assert!(
        dropped[0] == dropped[1],
        "dropout differs between thread counts"
    );
}

#[test]
fn dropout_changes_training_and_is_recorded_but_never_applied_when_scoring() {
    let dir = tempdir();
    let (tr, te) = split_spambase(dir.path());
    let path = |n: &str| dir.path().join(n).display().to_string();
    let (plain, dropped) = (path("plain.st"), path("dropped.st"));
    let common = ["--epochs", "3", "--hidden", "16"];
    train_spambase(&tr, &plain, &common);
    train_spambase(
        &tr,
        &dropped,
        &[&common[..], &["--dropout", "0.5"]].concat(),
    );
    let (a, b) = (
        std::fs::read(&plain).unwrap(),
        std::fs::read(&dropped).unwrap(),
    );
    assert!(a != b, "dropout must change the trained model");
    let info = inspect_json(&dropped);
    assert_eq!(info["training"]["dropout"], 0.5, "{}", info["training"]);
    assert!(inspect_json(&plain)["training"].get("dropout").is_none());
    let text = common::run_stdout(&["inspect", "--model", &dropped]);
    assert!(text.contains("dropout 0.5"), "{text}");
    // Scoring drops nothing: a row scores the same wherever it stands in the file.
    let scores = |data: &str| {
        let mut args = vec!["predict", "--model", &dropped, "--data", data];
        args.extend(common::SPAMBASE_LABEL);
        let out = common::run_stdout(&args);
        out.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let all = scores(&te);
    let text = std::fs::read_to_string(&te).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    let reversed = path("reversed.csv");
    std::fs::write(&reversed, lines.join("\n")).unwrap();
    let mut back = scores(&reversed);
    back[1..].reverse();
    assert_eq!(back, all);
}

#[test]
fn threshold_fpr_holds_on_validation_data() {
    let dir = tempdir();
    let (tr, te) = split_spambase(dir.path());
    let model = dir.path().join("m.safetensors").display().to_string();
    train_spambase(
        &tr,
        &model,
        &["--valid", &te, "--threshold-fpr", "0.01", "--epochs", "5"],
    );
    let m = eval_spambase(&model, &te);
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
fn optimizer_schedule_and_constraint_combinations_train_to_auc_0_85() {
    let dir = tempdir();
    let (tr, te) = split_spambase(dir.path());
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
        train_spambase(&tr, &model, &args);
        let m = eval_spambase(&model, &te);
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
fn a_million_sparse_features_train_without_a_dense_batch() {
    let dir = tempdir();
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
fn skip_free_keeps_the_network_monotone_and_leaves_only_the_skip_signed_freely() {
    let dir = tempdir();
    let (tr, te) = split_spambase(dir.path());
    let model = |name: &str, skip: &str| {
        let out = common::path_in(dir.path(), name);
        let args = ["--constraint", "monotone", "--skip", skip, "--epochs", "3"];
        train_spambase(&tr, &out, &args);
        (inspect_json(&out), out)
    };
    let (free, free_path) = model("free.safetensors", "free");
    let (signed, signed_path) = model("on.safetensors", "on");
    for m in [&free, &signed] {
        let layers = m["layers"].as_array().unwrap();
        assert!(layers.iter().all(|l| l["negative_weights"] == 0), "{m}");
    }
    // Spambase has ham evidence (e.g. `word_freq_george`): a free skip uses it.
    assert!(free["skip"]["negative_weights"].as_u64().unwrap() > 0);
    assert_eq!(free["skip"]["kernel_constraints"], serde_json::json!([]));
    assert_eq!(free["training"]["free_skip"], true);
    assert_eq!(signed["skip"]["negative_weights"], 0);
    assert!(signed["training"].get("free_skip").is_none());
    // Not monotone any more: no certificate for any number of additions, one for a budget.
    assert_eq!(
        exec(&["certify", "--model", &signed_path]).status.code(),
        Some(0)
    );
    let refused = exec(&["certify", "--model", &free_path]);
    assert_eq!(refused.status.code(), Some(1));
    // It is no Lipschitz monotonic network: the reason names the negative weights only.
    let why = String::from_utf8_lossy(&refused.stdout);
    assert!(
        why.contains("negative weights") && !why.contains("Lipschitz"),
        "{why}"
    );
    let mut args = vec!["certify", "--model", &free_path, "--data", &te];
    args.extend(["--budget", "1,inf", "--json", "--label-column", "type"]);
    args.extend(["--positive", "spam"]);
    let out = run(&args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let certified = |i: usize| report["rates"][i]["certified"].as_u64().unwrap();
    assert_eq!(report["monotone"], false, "{report}");
    assert!(certified(0) > 0 && certified(1) == 0, "{report}");
    // An LMN's skip carries its proof: refused.
    let err = common::fails(&[
        "train",
        "--data",
        &tr,
        "--out",
        &free_path,
        "--label-column",
        "type",
        "--positive",
        "spam",
        "--constraint",
        "lmn",
        "--skip",
        "free",
    ]);
    assert!(err.contains("cannot be free"), "{err}");
}
