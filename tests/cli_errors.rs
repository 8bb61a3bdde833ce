//! Bad input through the command line: a clear error (file, line, field; exit code 2),
//! never a panic or a partial file.

mod common;

use common::{fails, run, tempdir};
use std::path::Path;

#[test]
fn bad_input_is_a_clear_error_never_a_panic_or_a_partial_file() {
    let dir = tempdir();
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
