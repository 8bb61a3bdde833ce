//! `nonneg attack` end to end on the bundled Spambase data: an unconstrained model is
//! evaded and a monotone one never, every method runs, the JSON, CSV and plot outputs, and
//! errors (exit code 2, a clear message).

mod common;

use common::{fails, run, spambase, tempdir, train_spambase, SPAMBASE_LABEL};
use std::path::Path;

/// Spambase's feature names: its CSV header without the label column.
fn spambase_feature_names() -> Vec<String> {
    let text = std::fs::read_to_string(spambase()).unwrap();
    let header = text.lines().next().unwrap();
    header
        .split(',')
        .filter(|n| *n != "type")
        .map(str::to_string)
        .collect()
}

/// Trains 5 epochs on Spambase into `out`; returns its path.
fn train(data: &str, out: &Path, extra: &[&str]) -> String {
    let out = out.display().to_string();
    let mut args = vec!["--epochs", "5"];
    args.extend(extra);
    train_spambase(data, &out, &args);
    out
}

#[test]
fn spambase_unconstrained_is_evaded_monotone_never() {
    let dir = tempdir();
    let data = spambase();
    let free = train(&data, &dir.path().join("free.safetensors"), &[]);
    let mono = train(
        &data,
        &dir.path().join("mono.safetensors"),
        &["--constraint", "monotone"],
    );
    let json = dir.path().join("out.json");
    let csv = dir.path().join("out.csv");
    let png = dir.path().join("curve.png");
    let (js, cs, ps) = (
        json.display().to_string(),
        csv.display().to_string(),
        png.display().to_string(),
    );
    let mut args = vec![
        "attack", "--model", &free, "--model", &mono, "--data", &data, "--method", "greedy",
        "--budget", "1,5,10", "--limit", "150", "--out", &js, "--csv", &cs, "--plot", &ps, "-q",
    ];
    args.extend(SPAMBASE_LABEL);
    let out = run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("budget") && stdout.contains("evaded"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["method"], "greedy");
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        let results = m["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        for (r, b) in results.iter().zip([1, 5, 10]) {
            assert_eq!(r["budget"], b);
            for key in ["targets", "evaded", "evasion_rate", "mean_added", "queries"] {
                assert!(r.get(key).is_some(), "missing {key}: {r}");
            }
            assert_eq!(r["targets"], 150);
        }
    }
    // The monotone model is proven, so it is not searched: 0 evaded by proof, said on stdout
    // and in the JSON; the unconstrained one is searched.
    assert!(models[0].get("proof").is_none());
    assert!(models[1]["proof"]
        .as_str()
        .unwrap()
        .contains("cannot lower the logit"));
    assert!(stdout.contains("0 evaded by proof"), "{stdout}");
    assert!(models[1]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["added"].as_array().unwrap().is_empty()));
    let evaded = |i: usize| -> Vec<u64> {
        models[i]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["evaded"].as_u64().unwrap())
            .collect()
    };
    eprintln!(
        "unconstrained evaded {:?}, monotone {:?}",
        evaded(0),
        evaded(1)
    );
    assert!(
        evaded(0).iter().any(|&e| e > 0),
        "unconstrained never evaded"
    );
    assert!(evaded(1).iter().all(|&e| e == 0), "monotone evaded");
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with("model,budget,targets,evaded,evasion_rate,mean_added,queries"));
    assert_eq!(csv_text.lines().count(), 1 + 2 * 3);
    let png_bytes = std::fs::read(&png).unwrap();
    assert!(png_bytes.starts_with(b"\x89PNG"));
    assert!(png_bytes.len() > 5000);

    // One model: the single-model JSON shape; every method runs; --features by name.
    let feats = dir.path().join("features.txt");
    std::fs::write(&feats, "# words only\nmake\ngeorge\n4\n").unwrap();
    let fs = feats.display().to_string();
    for method in ["greedy", "gradient", "query", "random"] {
        let mut args = vec![
            "attack",
            "--model",
            &free,
            "--data",
            &data,
            "--method",
            method,
            "--budget",
            "1,2,3",
            "--limit",
            "20",
            "--json",
            "--features",
            &fs,
            "-q",
        ];
        args.extend(SPAMBASE_LABEL);
        // --json: one compact JSON object on stdout, no tables.
        let stdout = String::from_utf8(run(&args).stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["method"], method);
        let m = &v["models"][0];
        assert_eq!(m["model"], free.as_str());
        assert_eq!(m["results"].as_array().unwrap().len(), 3);
        // Every target lists what was added, by the model's feature names, in order: as
        // many as the steps it ran, and an evaded target is evaded after its last one.
        let targets = m["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 20);
        let names = spambase_feature_names();
        for t in targets {
            let added = t["added"].as_array().unwrap();
            assert!(!added.is_empty() && added.len() <= 3, "{t}");
            assert!(
                added
                    .iter()
                    .all(|a| names.contains(&a.as_str().unwrap().to_string())),
                "{t}"
            );
            if let Some(at) = t["evaded_at"].as_u64() {
                assert_eq!(at as usize, added.len(), "{t}");
            }
        }
    }

    // Errors: exit 2 with a clear message.
    let mut base = vec!["attack", "--model", &free, "--data", &data];
    base.extend(SPAMBASE_LABEL);
    let with = |extra: &[&'static str]| {
        let mut a = base.clone();
        a.extend(extra);
        a
    };
    let e = fails(&with(&["--budget", "1,x,5"]));
    assert!(e.contains("--budget") && e.contains("`x`"), "{e}");
    let e = fails(&with(&["--budget", "0"]));
    assert!(e.contains("--budget"), "{e}");
    std::fs::write(&feats, "make\nno_such_word\n").unwrap();
    let mut a = base.clone();
    a.extend(["--features", fs.as_str()]);
    let e = fails(&a);
    assert!(
        e.contains("unknown feature `no_such_word`") && e.contains(":2"),
        "{e}"
    );
    let e = fails(&with(&["--method", "magic"]));
    assert!(e.contains("--method"), "{e}");
    let e = fails(&with(&["--label", "nope"]));
    assert!(e.contains("--label"), "{e}");
}
