//! Unit tests of [`super`] (csv.rs), kept apart so the reader stays short.

use super::*;
use std::io::Write;

fn dense(ds: &Dataset) -> &DenseMatrix {
    match &ds.x {
        Features::Dense(m) => m,
        _ => panic!("expected dense"),
    }
}

fn err(content: &str, o: &LoadOptions) -> String {
    let (_d, p) = crate::data::write_temp("bad.csv", content);
    read(&p, o).unwrap_err().to_string()
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn basic_last_column_label() {
    let (_d, p) = crate::data::write_temp("a.csv", "a,b,y\n1,2.5,1\n-3, 4e1 ,0\n");
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    let m = dense(&ds);
    assert_eq!((m.rows, m.cols), (2, 2));
    assert_eq!(m.values, vec![1.0, 2.5, -3.0, 40.0]);
    assert_eq!(ds.y, Some(vec![1.0, 0.0]));
    assert_eq!(ds.n_labels, 1);
    assert_eq!(ds.label_names, names(&["y"]));
    assert_eq!(ds.feature_names, Some(names(&["a", "b"])));
    assert!(ds.source.ends_with("a.csv"));
}

#[test]
fn named_label_column_in_middle_and_trimmed_header() {
    let (_d, p) = crate::data::write_temp("a.csv", " a , target ,b\r\n1,-1,2\r\n3,+1,4\r\n");
    let o = LoadOptions {
        label_column: Some("target".into()),
        ..LoadOptions::labelled()
    };
    let ds = read(&p, &o).unwrap();
    assert_eq!(dense(&ds).values, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(ds.y, Some(vec![0.0, 1.0]));
    assert_eq!(ds.feature_names, Some(names(&["a", "b"])));
    assert_eq!(ds.label_names, names(&["target"]));
}

#[test]
fn bom_is_stripped() {
    let (_d, p) = crate::data::write_temp("a.csv", "\u{feff}a,y\n1,1\n");
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    assert_eq!(ds.feature_names, Some(names(&["a"])));
}

#[test]
fn boolean_and_float_labels() {
    let (_d, p) = crate::data::write_temp("a.csv", "a,y\n1,true\n2,FALSE\n3,1.0\n4,0.0\n");
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 1.0, 0.0]));
}

#[test]
fn gzip_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.csv.gz");
    let f = File::create(&p).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(b"a,b,y\n1,2,1\n3,4,0\n").unwrap();
    gz.finish().unwrap();
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    assert_eq!(dense(&ds).values, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(ds.y, Some(vec![1.0, 0.0]));
    // Through the extension dispatcher too.
    let ds2 = crate::data::load(&p, &LoadOptions::labelled()).unwrap();
    assert_eq!(ds, ds2);
}

#[test]
fn corrupt_gzip_is_io_error_naming_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.csv.gz");
    std::fs::write(&p, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]).unwrap();
    let e = read(&p, &LoadOptions::labelled()).unwrap_err().to_string();
    assert!(e.contains("broken.csv.gz"), "{e}");
}

#[test]
fn positive_value() {
    let (_d, p) = crate::data::write_temp("a.csv", "a,type\n1,spam\n2, nonspam\n3,spam \n");
    let o = LoadOptions {
        positive: Some("spam".into()),
        ..LoadOptions::labelled()
    };
    let ds = read(&p, &o).unwrap();
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 1.0]));
    assert_eq!(ds.label_names, names(&["type"]));
}

#[test]
fn positive_value_empty_label_is_error() {
    let o = LoadOptions {
        positive: Some("spam".into()),
        ..LoadOptions::labelled()
    };
    let e = err("a,type\n1,spam\n2,\n", &o);
    assert!(e.contains("bad.csv:3") && e.contains("field type") && e.contains("empty label"));
}

#[test]
fn positive_value_never_seen_is_error() {
    let o = LoadOptions {
        positive: Some("spma".into()),
        ..LoadOptions::labelled()
    };
    let e = err("a,type\n1,spam\n2,spam\n", &o);
    assert!(e.contains("bad.csv"), "{e}");
    assert!(e.contains("'spma' never occurs"), "{e}");
    assert!(e.contains("field type"), "{e}");
    assert!(e.contains("'spam'"), "{e}");
    // With two other values, the second is refused where it occurs.
    let e = err("a,type\n1,spam\n2,nonspam\n3,spam\n", &o);
    assert!(
        e.contains("bad.csv:3") && e.contains("'nonspam' is a third value"),
        "{e}"
    );
    assert!(e.contains("'spma' has not occurred yet"), "{e}");
}

#[test]
fn a_third_label_value_is_refused_unless_it_is_the_named_negative() {
    let o = LoadOptions {
        positive: Some("spam".into()),
        ..LoadOptions::labelled()
    };
    let typo = "a,y\n1,spam\n1,ham\n1,Spam\n1,ham\n";
    let e = err(typo, &o);
    assert!(
        e.contains("bad.csv:4") && e.contains("'Spam' is a third value"),
        "{e}"
    );
    let (_dir, p) = crate::data::write_temp("ok.csv", "a,y\n1,spam\n2,ham\n3,ham\n");
    let (ds, negative) = read_info(&p, &o).unwrap();
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 0.0]));
    assert_eq!(negative.as_deref(), Some("ham"));
    let named = LoadOptions {
        negative: Some("eggs".into()),
        ..o
    };
    let e = err("a,y\n1,spam\n2,ham\n", &named);
    assert!(
        e.contains("bad.csv:3")
            && e.contains("neither the positive 'spam' nor the negative 'eggs'"),
        "{e}"
    );
}

#[test]
fn non_binary_label_suggests_positive() {
    let e = err("a,y\n1,0\n2,spam\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv:3"), "{e}");
    assert!(e.contains("field y"), "{e}");
    assert!(e.contains("'spam'"), "{e}");
    assert!(e.contains("`positive` load option"), "{e}");
    let e = err("a,y\n1,0\n2,2\n", &LoadOptions::labelled());
    assert!(
        e.contains("bad.csv:3") && e.contains("`positive` load option"),
        "{e}"
    );
}

#[test]
fn mixed_zero_and_minus_one_is_error() {
    let e = err("a,y\n1,0\n2,1\n3,-1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv:4"), "{e}");
    assert!(e.contains("mix 0"), "{e}");
}

#[test]
fn empty_label_is_error() {
    let e = err("a,y\n1,\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv:2") && e.contains("field y") && e.contains("empty label"));
}

#[test]
fn bad_feature_cells() {
    for (cell, what) in [
        ("", "empty cell"),
        ("  ", "empty cell"),
        ("abc", "not a number"),
        ("NaN", "NaN"),
        ("nan", "NaN"),
        ("inf", "infinite"),
        ("-Infinity", "infinite"),
        ("1e40", "out of the f32 range"),
    ] {
        let e = err(
            &format!("a,b,y\n1,2,1\n3,{cell},0\n"),
            &LoadOptions::labelled(),
        );
        assert!(e.contains("bad.csv:3"), "{cell}: {e}");
        assert!(e.contains("field b"), "{cell}: {e}");
        assert!(e.contains(what), "{cell}: {e}");
    }
}

#[test]
fn wrong_field_counts() {
    let e = err("a,b,y\n1,2,1\n3,4\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv:3"), "{e}");
    assert!(e.contains("field y"), "{e}");
    assert!(e.contains("2 fields but the header has 3"), "{e}");
    let e = err("a,b,y\n1,2,1,9\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv:2") && e.contains("field #4"), "{e}");
    assert!(e.contains("4 fields"), "{e}");
}

#[test]
fn line_numbers_count_blank_and_quoted_lines() {
    let e = err(
        "a,b,y\n1,2,1\n\n\"x\ny\",5,0\n1,bad,1\n",
        &LoadOptions::labelled(),
    );
    // The quoted cell spans lines 4-5; the bad cell is on line 4's record first:
    assert!(e.contains("bad.csv:4") && e.contains("field a"), "{e}");
    let e = err("a,b,y\n1,2,1\n\n3,bad,1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv:4") && e.contains("field b"), "{e}");
    let e = err(
        "a,b,y\r\n1,2,1\r\n\r\n\r\n3,bad,1\r\n",
        &LoadOptions::labelled(),
    );
    assert!(e.contains("bad.csv:5") && e.contains("field b"), "{e}");
    let e = err(
        "\n\na,b,y\n1,2,1\n\" 7\n\",2,1\n\n3,bad,1\n",
        &LoadOptions::labelled(),
    );
    assert!(e.contains("bad.csv:8") && e.contains("field b"), "{e}");
}

#[test]
fn header_only_is_error() {
    let e = err("a,b,y\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv") && e.contains("no data rows"), "{e}");
    let e = err("", &LoadOptions::labelled());
    assert!(e.contains("bad.csv") && e.contains("header"), "{e}");
}

#[test]
fn duplicate_and_empty_column_names() {
    let e = err("a,a,y\n1,2,1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv:1") && e.contains("field a") && e.contains("duplicate"));
    let e = err("a,,y\n1,2,1\n", &LoadOptions::labelled());
    assert!(e.contains("bad.csv:1") && e.contains("#2") && e.contains("empty column name"));
}

#[test]
fn single_column_is_error() {
    let e = err("y\n1\n", &LoadOptions::labelled());
    assert!(e.contains("no feature columns"), "{e}");
}

#[test]
fn missing_label_column() {
    let content = "a,b\n1,2\n";
    let o = LoadOptions {
        label_column: Some("target".into()),
        ..LoadOptions::labelled()
    };
    let e = err(content, &o);
    assert!(e.contains("bad.csv") && e.contains("'target'"), "{e}");
    let o = LoadOptions {
        label_column: Some("target".into()),
        require_labels: false,
        ..Default::default()
    };
    let (_d, p) = crate::data::write_temp("a.csv", content);
    let ds = read(&p, &o).unwrap();
    assert_eq!(ds.y, None);
    assert_eq!(ds.feature_names, Some(names(&["a", "b"])));
    assert_eq!(ds.label_names, names(&["label"]));
    assert_eq!(dense(&ds).values, vec![1.0, 2.0]);
}

#[test]
fn expected_features_header_means_no_labels() {
    let (_d, p) = crate::data::write_temp("a.csv", "a,b\n1,2\n3,4\n");
    let o = LoadOptions {
        expected_features: Some(names(&["a", "b"])),
        require_labels: false,
        ..Default::default()
    };
    let ds = read(&p, &o).unwrap();
    assert_eq!(ds.y, None);
    assert_eq!(dense(&ds).values, vec![1.0, 2.0, 3.0, 4.0]);
    // With a label column present it is read as usual.
    let (_d2, p2) = crate::data::write_temp("b.csv", "a,b,y\n1,2,1\n");
    let ds = read(&p2, &o).unwrap();
    assert_eq!(ds.y, Some(vec![1.0]));
}

#[test]
fn expected_features_mismatch_messages() {
    let o = LoadOptions {
        expected_features: Some(names(&["a", "b", "c"])),
        ..LoadOptions::labelled()
    };
    let (_d, p) = crate::data::write_temp("m.csv", "a,b,d,y\n1,2,3,1\n");
    let e = read(&p, &o).unwrap_err();
    assert!(matches!(e, Error::Mismatch(_)));
    let e = e.to_string();
    assert!(e.contains("missing columns: 'c'"), "{e}");
    assert!(e.contains("extra columns: 'd'"), "{e}");

    let e = err("a,b,y\n1,2,1\n", &o);
    assert!(e.contains("2 feature columns, the model expects 3"), "{e}");
    assert!(e.contains("missing columns: 'c'"), "{e}");

    let e = err("b,a,c,y\n1,2,3,1\n", &o);
    assert!(e.contains("different order"), "{e}");
    assert!(e.contains("feature 1 is 'b'"), "{e}");

    // Header is the expected names in another order, no label: the hint explains.
    let e = err("a,c,b\n1,2,3\n", &o);
    assert!(e.contains("taken as the label"), "{e}");
}

#[test]
fn n_features_mismatch() {
    let o = LoadOptions {
        n_features: Some(3),
        ..LoadOptions::labelled()
    };
    let (_d, p) = crate::data::write_temp("a.csv", "a,b,y\n1,2,1\n");
    let e = read(&p, &o).unwrap_err();
    assert!(matches!(e, Error::Mismatch(_)), "{e}");
}

#[test]
fn invalid_utf8_cell() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("u.csv");
    std::fs::write(&p, b"a,y\n\xff\xfe,1\n").unwrap();
    let e = read(&p, &LoadOptions::labelled()).unwrap_err().to_string();
    assert!(e.contains("u.csv:2") && e.contains("field a") && e.contains("UTF-8"));
}

#[test]
fn missing_file_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.csv");
    let e = read(&p, &LoadOptions::labelled()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert!(e.to_string().contains("nope.csv"));
}

#[test]
fn bundled_spambase() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/spambase.csv");
    let o = LoadOptions {
        positive: Some("spam".into()),
        ..LoadOptions::labelled()
    };
    let ds = read(&p, &o).unwrap();
    assert_eq!(ds.rows(), 4601);
    assert_eq!(ds.x.cols(), 57);
    let pos = ds.y.as_ref().unwrap().iter().filter(|&&v| v == 1.0).count();
    assert_eq!(pos, 1813);
    assert_eq!(ds.label_names, names(&["type"]));
}
