//! The main job (`nonneg demo`) on the bundled SpamAssassin archives: the robustness
//! acceptance numbers. Unconstrained and last-layer-NonNeg models are evaded by adding
//! words; the monotone model is certified and never evaded.

mod common;

use common::{command, tempdir};

#[test]
fn demo_shows_why_the_last_layer_is_not_enough() {
    let dir = tempdir();
    let out = command()
        .args(["demo", "--limit", "150", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let models = s["models"].as_array().unwrap();
    let get = |name: &str| models.iter().find(|m| m["model"] == name).unwrap().clone();
    let rate = |m: &serde_json::Value, budget: u64| {
        m["evasion"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["budget"] == budget)
            .unwrap()["evasion_rate"]
            .as_f64()
            .unwrap()
    };
    let free = get("unconstrained");
    let last = get("last-nonneg");
    let mono = get("monotone");
    assert_eq!(free["certified"], false);
    assert!(free["auc"].as_f64().unwrap() >= 0.99, "{free}");
    assert!(
        rate(&free, 20) >= 0.5,
        "greedy at budget 20 evades {:.3} of the unconstrained model",
        rate(&free, 20)
    );
    assert_eq!(
        last["certified"], false,
        "constraining the last layer does not make a monotone network"
    );
    assert!(rate(&last, 50) > 0.5, "{last}");
    assert_eq!(mono["certified"], true);
    for b in [5, 20, 50] {
        assert_eq!(
            rate(&mono, b),
            0.0,
            "the certified model was evaded at budget {b}"
        );
    }
    for m in models {
        let targets = m["evasion"][0]["targets"].as_u64().unwrap();
        assert_eq!(targets, 150, "{m}");
    }
    // At 1% false positives: the certified model keeps every detection under attack, the
    // unconstrained one loses most of them by budget 50.
    let under = |m: &serde_json::Value, k: usize| {
        m["at_fpr_1pct"]["detected_under_attack"][k]["detected"]
            .as_f64()
            .unwrap()
    };
    let clean = |m: &serde_json::Value| m["at_fpr_1pct"]["detected"].as_f64().unwrap();
    assert!(clean(&mono) > 0.7, "{mono}");
    for k in 0..3 {
        assert_eq!(under(&mono, k), clean(&mono), "{mono}");
    }
    assert!(under(&free, 2) < 0.5 * clean(&free), "{free}");
    assert!(under(&free, 2) < under(&mono, 2), "{free}");
    // Budget certificates at 1% and 0.1% FPR: certified <= attacked <= clean everywhere;
    // the monotone model certified at every budget, the verified one far above the
    // unconstrained one at budget 20.
    let points = |m: &serde_json::Value, f: usize| m["budget_detection"][f].clone();
    for m in models {
        for f in 0..2 {
            let d = points(m, f);
            let clean = d["clean"].as_f64().unwrap();
            for p in d["points"].as_array().unwrap() {
                let cert = p["certified"].as_f64().unwrap();
                assert!(cert <= clean + 1e-12, "{m}");
                if let Some(att) = p["empirical"].as_f64() {
                    assert!(cert <= att + 1e-12 && att <= clean + 1e-12, "{p} in {m}");
                }
            }
        }
    }
    let cert_at = |m: &serde_json::Value, budget: serde_json::Value| {
        points(m, 0)["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["budget"] == budget)
            .unwrap()["certified"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(cert_at(&mono, "inf".into()), clean(&mono), "{mono}");
    let verified = get("verified");
    assert!(cert_at(&verified, 20.into()) > 0.9, "{verified}");
    assert!(cert_at(&free, 20.into()) < 0.5, "{free}");
    let png = std::fs::read(dir.path().join("evasion.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}
