//! Unit tests of [`super`] (svmlight.rs), kept apart so the reader stays short.

use super::*;
use std::io::Write;

fn csr(ds: &Dataset) -> &CsrMatrix {
    match &ds.x {
        Features::Sparse(m) => m,
        _ => panic!("expected sparse"),
    }
}

fn load(content: &str, o: &LoadOptions) -> Dataset {
    let (_d, p) = crate::data::write_temp("d.svm", content);
    read(&p, o).unwrap()
}

fn err(content: &str, o: &LoadOptions) -> String {
    let (_d, p) = crate::data::write_temp("bad.svm", content);
    read(&p, o).unwrap_err().to_string()
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn basic_binary_one_based() {
    let ds = load(
        "# header comment\n1 1:0.5 3:2\n\n0 2:-1 # trailing\n0.0 qid:7 1:1e-3\n+1\n",
        &LoadOptions::labelled(),
    );
    let m = csr(&ds);
    assert_eq!((m.rows, m.cols), (4, 3));
    assert_eq!(m.indptr, vec![0, 2, 3, 4, 4]);
    assert_eq!(m.indices, vec![0, 2, 1, 0]);
    assert_eq!(m.values, vec![0.5, 2.0, -1.0, 1e-3]);
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 0.0, 1.0]));
    assert_eq!(ds.n_labels, 1);
    assert_eq!(ds.label_names, names(&["label"]));
    assert_eq!(ds.feature_names, None);
}

#[test]
fn binary_minus_one_plus_one() {
    let ds = load(
        "+1 1:1\n-1 2:1\n1.0 1:2\n-1.0 3:4\n",
        &LoadOptions::labelled(),
    );
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 1.0, 0.0]));
    let ds = load("1 1:1\n0 2:1\n0.0 1:2\r\n", &LoadOptions::labelled());
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 0.0]));
}

#[test]
fn mixed_zero_minus_one_is_error() {
    let e = err("1 1:1\n0 2:1\n\n-1 1:2\n", &LoadOptions::labelled());
    assert!(e.contains("bad.svm:4") && e.contains("field label"), "{e}");
    assert!(e.contains("mix 0") && e.contains("multi-label"), "{e}");
}

#[test]
fn non_binary_label_mentions_multilabel() {
    let e = err("1 1:1\n2 2:1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.svm:2") && e.contains("field label"), "{e}");
    assert!(e.contains("'2'") && e.contains("comma-separated"), "{e}");
    let e = err("yes 1:1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.svm:1") && e.contains("'yes'"), "{e}");
}

#[test]
fn zero_based_auto_and_explicit() {
    let ds = load("1 0:1 2:3\n0 1:2\n", &LoadOptions::labelled());
    let m = csr(&ds);
    assert_eq!(m.cols, 3);
    assert_eq!(m.indices, vec![0, 2, 1]);
    let o = LoadOptions {
        index_base: IndexBase::Zero,
        ..LoadOptions::labelled()
    };
    let ds = load("1 1:1 2:3\n", &o);
    assert_eq!(csr(&ds).indices, vec![1, 2]);
    assert_eq!(csr(&ds).cols, 3);
    let o = LoadOptions {
        index_base: IndexBase::One,
        ..LoadOptions::labelled()
    };
    let ds = load("1 1:1 2:3\n", &o);
    assert_eq!(csr(&ds).indices, vec![0, 1]);
    assert_eq!(csr(&ds).cols, 2);
}

#[test]
fn index_zero_in_one_based_is_error() {
    let o = LoadOptions {
        index_base: IndexBase::One,
        ..LoadOptions::labelled()
    };
    let e = err("1 1:1\n# c\n0 0:1 2:2\n", &o);
    assert!(e.contains("bad.svm:3") && e.contains("field index"), "{e}");
    assert!(e.contains("index 0"), "{e}");
}

#[test]
fn explicit_zeros_dropped_rows_kept() {
    let ds = load("1 1:0 2:5 3:0.0\n0 4:0\n", &LoadOptions::labelled());
    let m = csr(&ds);
    assert_eq!(m.rows, 2);
    assert_eq!(m.cols, 4); // the zero-valued index 4 still counts
    assert_eq!(m.indptr, vec![0, 1, 1]);
    assert_eq!(m.indices, vec![1]);
    assert_eq!(m.values, vec![5.0]);
}

#[test]
fn n_features_sets_width_and_rejects_wider() {
    let o = LoadOptions {
        n_features: Some(10),
        ..LoadOptions::labelled()
    };
    let ds = load("1 1:1 3:1\n", &o);
    assert_eq!(csr(&ds).cols, 10);
    let o = LoadOptions {
        n_features: Some(3),
        ..LoadOptions::labelled()
    };
    let e = err("1 1:1 3:1\n0 2:1 4:1\n", &o);
    assert!(e.contains("bad.svm:2") && e.contains("field index"), "{e}");
    assert!(
        e.contains("index 4") && e.contains("more features than the model"),
        "{e}"
    );
    // Zero-based: index 3 is the 4th feature.
    let o = LoadOptions {
        n_features: Some(3),
        index_base: IndexBase::Zero,
        ..LoadOptions::labelled()
    };
    let e = err("1 0:1\n1 3:1\n", &o);
    assert!(
        e.contains("bad.svm:2") && e.contains("index 3 (0-based)"),
        "{e}"
    );
}

#[test]
fn indices_must_increase() {
    let e = err("1 1:1 3:1 2:1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.svm:1") && e.contains("field index"), "{e}");
    assert!(e.contains("index 2 comes after index 3"), "{e}");
    let e = err("1 1:1\n1 3:1 3:2\n", &LoadOptions::labelled());
    assert!(
        e.contains("bad.svm:2") && e.contains("duplicate index 3"),
        "{e}"
    );
}

#[test]
fn bad_tokens() {
    let e = err("1 1:1 abc\n", &LoadOptions::labelled());
    assert!(e.contains("bad.svm:1") && e.contains("field index"), "{e}");
    assert!(e.contains("'abc'"), "{e}");
    let e = err("1 x:1\n", &LoadOptions::labelled());
    assert!(e.contains("field index") && e.contains("'x'"), "{e}");
    let e = err("1 -2:1\n", &LoadOptions::labelled());
    assert!(e.contains("field index") && e.contains("'-2'"), "{e}");
    let e = err("1 99999999999:1\n", &LoadOptions::labelled());
    assert!(e.contains("field index") && e.contains("too large"), "{e}");
    let e = err("1 1:\n", &LoadOptions::labelled());
    assert!(e.contains("field 1") && e.contains("missing value"), "{e}");
}

#[test]
fn bad_values() {
    for (v, what) in [
        ("nan", "is NaN"),
        ("NaN", "is NaN"),
        ("inf", "is infinite"),
        ("-inf", "is infinite"),
        ("1e39", "out of the f32 range"),
        ("1..2", "not a number"),
    ] {
        let e = err(&format!("1 1:1\n0 2:1 7:{v}\n"), &LoadOptions::labelled());
        assert!(e.contains("bad.svm:2"), "{v}: {e}");
        assert!(e.contains("field 7"), "{v}: {e}");
        assert!(e.contains(what), "{v}: {e}");
    }
}

#[test]
fn multilabel_by_comma() {
    let ds = load("1,3 1:1\n 2:1\n3 1:2\n10,1 2:2\n", &LoadOptions::labelled());
    assert_eq!(ds.label_names, names(&["1", "3", "10"]));
    assert_eq!(ds.n_labels, 3);
    assert_eq!(
        ds.y,
        Some(vec![
            1.0, 1.0, 0.0, //
            0.0, 0.0, 0.0, //
            0.0, 1.0, 0.0, //
            1.0, 0.0, 1.0,
        ])
    );
    assert_eq!(csr(&ds).rows, 4);
}

#[test]
fn multilabel_by_option_and_fixed_names() {
    let o = LoadOptions {
        multilabel: true,
        ..LoadOptions::labelled()
    };
    let ds = load("2 1:1\n0 1:1\n", &o);
    assert_eq!(ds.label_names, names(&["0", "2"]));
    assert_eq!(ds.y, Some(vec![0.0, 1.0, 1.0, 0.0]));

    let o = LoadOptions {
        multilabel: true,
        label_names: Some(names(&["5", "2", "0"])),
        ..LoadOptions::labelled()
    };
    let ds = load("2 1:1\n0,5 1:1\n 1:3\n", &o);
    assert_eq!(ds.label_names, names(&["5", "2", "0"]));
    assert_eq!(ds.n_labels, 3);
    assert_eq!(
        ds.y,
        Some(vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    );
    let e = err("2 1:1\n\n7 1:1\n", &o);
    assert!(e.contains("bad.svm:3") && e.contains("field label"), "{e}");
    assert!(e.contains("class id 7 is not one of"), "{e}");
}

#[test]
fn multilabel_bad_ids() {
    let e = err("1,a 1:1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.svm:1") && e.contains("field label") && e.contains("'a'"));
    let e = err("1, 1:1\n", &LoadOptions::labelled());
    assert!(
        e.contains("bad.svm:1") && e.contains("not a class id"),
        "{e}"
    );
    let e = err("1,-1 1:1\n", &LoadOptions::labelled());
    assert!(e.contains("'-1'"), "{e}");
    let e = err("1,1 1:1\n", &LoadOptions::labelled());
    assert!(e.contains("repeated"), "{e}");
    let e = err("0,1 1:1\n1.5 1:1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.svm:2") && e.contains("'1.5'"), "{e}");
}

#[test]
fn unlabelled_files() {
    let o = LoadOptions {
        require_labels: false,
        ..Default::default()
    };
    let ds = load("1:1 3:2\n2:5\n", &o);
    assert_eq!(ds.y, None);
    assert_eq!(csr(&ds).rows, 2);
    assert_eq!(csr(&ds).cols, 3);
    // Labelled files are still parsed when labels are optional.
    let ds = load("1 1:1\n0 2:1\n", &o);
    assert_eq!(ds.y, Some(vec![1.0, 0.0]));
    // Labels required: an unlabelled file is an error.
    let e = err("1:1 3:2\n", &LoadOptions::labelled());
    assert!(e.contains("bad.svm:1") && e.contains("field label"), "{e}");
    assert!(e.contains("no labels"), "{e}");
    // Some lines labelled, some not, binary mode: error on the unlabelled line.
    let e = err("1 1:1\n\n 2:1\n", &o);
    assert!(
        e.contains("bad.svm:3") && e.contains("missing label"),
        "{e}"
    );
    // Unlabelled multi-label predict input keeps the model's label names.
    let o2 = LoadOptions {
        multilabel: true,
        label_names: Some(names(&["1", "4"])),
        require_labels: false,
        ..Default::default()
    };
    let ds = load("1:1\n", &o2);
    assert_eq!(ds.y, None);
    assert_eq!(ds.n_labels, 2);
}

#[test]
fn multilabel_without_any_class_is_error() {
    let o = LoadOptions {
        multilabel: true,
        ..LoadOptions::labelled()
    };
    let e = err(" 1:1\n 2:1\n", &o);
    assert!(
        e.contains("bad.svm") && e.contains("without any class id"),
        "{e}"
    );
}

#[test]
fn empty_and_comment_only_files() {
    let e = err("", &LoadOptions::labelled());
    assert!(e.contains("bad.svm") && e.contains("no data rows"), "{e}");
    let e = err("# only\n   \n#x\n", &LoadOptions::labelled());
    assert!(e.contains("no data rows"), "{e}");
}

#[test]
fn tabs_crlf_and_no_trailing_newline() {
    let ds = load("1\t1:1\t2:2\r\n0 3:3", &LoadOptions::labelled());
    let m = csr(&ds);
    assert_eq!(m.values, vec![1.0, 2.0, 3.0]);
    assert_eq!(ds.y, Some(vec![1.0, 0.0]));
}

#[test]
fn gzip_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.svm.gz");
    let f = File::create(&p).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(b"1 1:1\n0 2:1\n").unwrap();
    gz.finish().unwrap();
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    assert_eq!(csr(&ds).indices, vec![0, 1]);
}

#[test]
fn invalid_utf8_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("u.svm");
    std::fs::write(&p, b"1 1:1 # \xff comment ok\n0 2:\xff\n").unwrap();
    let e = read(&p, &LoadOptions::labelled()).unwrap_err().to_string();
    assert!(e.contains("u.svm:2") && e.contains("field 2"), "{e}");
}

#[test]
fn large_file_parses_quickly() {
    // ~10 MB; the time bound is loose (debug-ish test profile on a small machine).
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.svm");
    let mut f = std::io::BufWriter::new(File::create(&p).unwrap());
    let mut rng = crate::rng::Rng::new(1);
    let mut expected_nnz = 0;
    for r in 0..50_000 {
        write!(f, "{}", r % 2).unwrap();
        let mut idx = 0u64;
        for _ in 0..20 {
            idx += 1 + rng.below(50);
            write!(f, " {}:{}", idx, rng.uniform_f32() + 0.5).unwrap();
            expected_nnz += 1;
        }
        writeln!(f).unwrap();
    }
    drop(f);
    let t = std::time::Instant::now();
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(csr(&ds).values.len(), expected_nnz);
    assert!(secs < 5.0, "took {secs}s");
}
