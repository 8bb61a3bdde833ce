//! Unit tests of [`super`] (npz.rs), kept apart so the reader stays short.

use super::*;
use std::io::Write;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/data")
        .join(name)
}

fn with_labels(name: &str) -> LoadOptions {
    LoadOptions {
        labels_path: Some(fixture(name)),
        ..LoadOptions::labelled()
    }
}

fn dense(ds: &Dataset) -> &DenseMatrix {
    match &ds.x {
        Features::Dense(m) => m,
        _ => panic!("expected dense"),
    }
}

fn csr(ds: &Dataset) -> &CsrMatrix {
    match &ds.x {
        Features::Sparse(m) => m,
        _ => panic!("expected sparse"),
    }
}

/// The X written by scripts/make_data_fixtures.py: r + c/8, +0.25 on the diagonal.
fn expected_x() -> Vec<f32> {
    let mut v = Vec::new();
    for r in 0..4 {
        for c in 0..3 {
            v.push(r as f32 + c as f32 / 8.0 + if r == c { 0.25 } else { 0.0 });
        }
    }
    v
}

fn fixture_err(name: &str, o: &LoadOptions) -> String {
    read(&fixture(name), o).unwrap_err().to_string()
}

// ---- Synthetic archives for cases numpy would not write.

fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    npy_with_header(
        &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"),
        data,
    )
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn npz(members: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("syn.npz");
    let mut z = zip::ZipWriter::new(File::create(&p).unwrap());
    for (name, bytes) in members {
        z.start_file(
            format!("{name}.npy"),
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    (dir, p)
}

fn syn_err(members: &[(&str, Vec<u8>)], o: &LoadOptions) -> String {
    let (_d, p) = npz(members);
    read(&p, o).unwrap_err().to_string()
}

fn good_x() -> Vec<u8> {
    npy("<f4", &[2, 2], &f32s(&[1.0, 2.0, 3.0, 4.0]))
}

fn good_y() -> Vec<u8> {
    npy("<i8", &[2], &i64s(&[0, 1]))
}

/// A 2x3 CSR [[0, 5, 0], [7, 0, 8]] as save_npz members, with overridable parts.
fn csr_members() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("format", npy("|S3", &[], b"csr")),
        ("shape", npy("<i8", &[2], &i64s(&[2, 3]))),
        (
            "indptr",
            npy("<i4", &[3], &[0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0]),
        ),
        ("indices", npy("<i8", &[3], &i64s(&[1, 0, 2]))),
        ("data", npy("<f4", &[3], &f32s(&[5.0, 7.0, 8.0]))),
    ]
}

fn replace(
    mut m: Vec<(&'static str, Vec<u8>)>,
    name: &str,
    bytes: Vec<u8>,
) -> Vec<(&'static str, Vec<u8>)> {
    for entry in &mut m {
        if entry.0 == name {
            entry.1 = bytes.clone();
        }
    }
    m
}

// ---- Fixtures written by numpy / scipy.

#[test]
fn dense_f32_binary() {
    let ds = read(&fixture("dense_f32.npz"), &LoadOptions::labelled()).unwrap();
    let m = dense(&ds);
    assert_eq!((m.rows, m.cols), (4, 3));
    assert_eq!(m.values, expected_x());
    assert_eq!(ds.y, Some(vec![0.0, 1.0, 1.0, 0.0]));
    assert_eq!(ds.n_labels, 1);
    assert_eq!(ds.label_names, vec!["label".to_string()]);
    assert_eq!(ds.feature_names, None);
    // Through the dispatcher as well.
    assert_eq!(
        crate::data::load(&fixture("dense_f32.npz"), &LoadOptions::labelled()).unwrap(),
        ds
    );
}

#[test]
fn dense_f64_minus_one_labels() {
    let ds = read(&fixture("dense_f64.npz"), &LoadOptions::labelled()).unwrap();
    assert_eq!(dense(&ds).values, expected_x());
    assert_eq!(ds.y, Some(vec![0.0, 1.0, 1.0, 0.0]));
}

#[test]
fn dense_compressed_bool_labels() {
    let ds = read(&fixture("dense_compressed.npz"), &LoadOptions::labelled()).unwrap();
    assert_eq!(dense(&ds).values, expected_x());
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 1.0, 0.0]));
}

#[test]
fn fortran_order_x() {
    let ds = read(&fixture("fortran.npz"), &LoadOptions::labelled()).unwrap();
    assert_eq!(dense(&ds).values, expected_x());
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 0.0, 1.0]));
}

#[test]
fn multilabel_y() {
    let ds = read(&fixture("multilabel.npz"), &LoadOptions::labelled()).unwrap();
    assert_eq!(ds.n_labels, 3);
    assert_eq!(ds.label_names, vec!["0", "1", "2"]);
    assert_eq!(
        ds.y,
        Some(vec![1., 0., 1., 0., 0., 0., 0., 1., 0., 1., 1., 1.])
    );
    let o = LoadOptions {
        label_names: Some(vec!["a".into(), "b".into(), "c".into()]),
        ..LoadOptions::labelled()
    };
    let ds = read(&fixture("multilabel.npz"), &o).unwrap();
    assert_eq!(ds.label_names, vec!["a", "b", "c"]);
    let o = LoadOptions {
        label_names: Some(vec!["a".into(), "b".into()]),
        ..LoadOptions::labelled()
    };
    let e = read(&fixture("multilabel.npz"), &o).unwrap_err();
    assert!(matches!(e, Error::Mismatch(_)), "{e}");
    let e = e.to_string();
    assert!(e.contains("multilabel.npz") && e.contains("'y'") && e.contains("3 label"));
}

#[test]
fn unlabelled_dense() {
    let o = LoadOptions {
        require_labels: false,
        ..Default::default()
    };
    let ds = read(&fixture("unlabelled.npz"), &o).unwrap();
    assert_eq!(ds.y, None);
    assert_eq!(dense(&ds).values, expected_x());
    let e = fixture_err("unlabelled.npz", &LoadOptions::labelled());
    assert!(
        e.contains("unlabelled.npz") && e.contains("no array 'y'"),
        "{e}"
    );
    // Labels may come from a separate file instead.
    let o = LoadOptions {
        labels_path: Some(fixture("dense_labels_dummy.npy")),
        ..LoadOptions::labelled()
    };
    let e = fixture_err("unlabelled.npz", &o);
    assert!(e.contains("dense_labels_dummy.npy"), "{e}");
}

#[test]
fn y_and_labels_file_conflict() {
    let e = fixture_err("dense_f32.npz", &with_labels("csr_labels.npy"));
    assert!(
        e.contains("dense_f32.npz") && e.contains("already contains labels"),
        "{e}"
    );
}

#[test]
fn nan_in_x_names_row() {
    let e = fixture_err("dense_nan.npz", &LoadOptions::labelled());
    assert!(e.contains("dense_nan.npz"), "{e}");
    assert!(e.contains("array 'X', row 2") && e.contains("NaN"), "{e}");
}

#[test]
fn big_endian_rejected() {
    let e = fixture_err("bigendian.npz", &LoadOptions::labelled());
    assert!(e.contains("bigendian.npz") && e.contains("'X'"), "{e}");
    assert!(e.contains("big-endian"), "{e}");
}

#[test]
fn non_binary_y_names_row() {
    let e = fixture_err("y_multiclass.npz", &LoadOptions::labelled());
    assert!(
        e.contains("y_multiclass.npz") && e.contains("array 'y', row 3"),
        "{e}"
    );
    assert!(e.contains("not binary") && e.contains("2-D"), "{e}");
}

#[test]
fn n_features_mismatch() {
    let o = LoadOptions {
        n_features: Some(4),
        ..LoadOptions::labelled()
    };
    let e = read(&fixture("dense_f32.npz"), &o).unwrap_err();
    assert!(matches!(e, Error::Mismatch(_)), "{e}");
    assert!(e.to_string().contains("3 features"), "{e}");
    let e = read(
        &fixture("csr.npz"),
        &LoadOptions {
            n_features: Some(4),
            ..with_labels("csr_labels.npy")
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Mismatch(_)), "{e}");
    assert!(e.to_string().contains("5 features"), "{e}");
}

#[test]
fn csr_with_labels() {
    let ds = read(&fixture("csr.npz"), &with_labels("csr_labels.npy")).unwrap();
    let m = csr(&ds);
    assert_eq!((m.rows, m.cols), (3, 5));
    assert_eq!(m.indptr, vec![0, 2, 2, 4]);
    assert_eq!(m.indices, vec![1, 4, 0, 3]);
    assert_eq!(m.values, vec![1.5, 2.0, 3.0, -4.0]);
    assert_eq!(ds.y, Some(vec![1.0, 0.0, 1.0]));
    assert_eq!(ds.feature_names, None);
    for v in ["csr_labels_v2.npy", "csr_labels_v3.npy"] {
        let ds2 = read(&fixture("csr.npz"), &with_labels(v)).unwrap();
        assert_eq!(ds2.y, ds.y, "{v}");
    }
}

#[test]
fn csr_with_multilabel_labels() {
    let ds = read(&fixture("csr.npz"), &with_labels("csr_labels_multi.npy")).unwrap();
    assert_eq!(ds.n_labels, 2);
    assert_eq!(ds.label_names, vec!["0", "1"]);
    assert_eq!(ds.y, Some(vec![1., 0., 0., 1., 1., 1.]));
}

#[test]
fn csr_without_labels() {
    let e = fixture_err("csr.npz", &LoadOptions::labelled());
    assert!(e.contains("csr.npz") && e.contains("labels"), "{e}");
    let o = LoadOptions {
        require_labels: false,
        ..Default::default()
    };
    let ds = read(&fixture("csr.npz"), &o).unwrap();
    assert_eq!(ds.y, None);
    assert_eq!(ds.rows(), 3);
}

#[test]
fn label_row_count_mismatch() {
    let e = fixture_err("csr.npz", &with_labels("labels_short.npy"));
    assert!(
        e.contains("labels_short.npy") && e.contains("2 rows"),
        "{e}"
    );
    assert!(e.contains("csr.npz") && e.contains("have 3"), "{e}");
}

#[test]
fn csr_unsorted_indices_are_sorted() {
    let o = LoadOptions {
        require_labels: false,
        ..Default::default()
    };
    let ds = read(&fixture("csr_unsorted.npz"), &o).unwrap();
    let m = csr(&ds);
    assert_eq!((m.rows, m.cols), (2, 4));
    assert_eq!(m.indptr, vec![0, 2, 4]);
    assert_eq!(m.indices, vec![0, 3, 1, 2]);
    assert_eq!(m.values, vec![1.0, 2.0, 3.0, 5.0]);
}

#[test]
fn csr_duplicates_rejected() {
    let o = LoadOptions {
        require_labels: false,
        ..Default::default()
    };
    let e = fixture_err("csr_duplicate.npz", &o);
    assert!(e.contains("csr_duplicate.npz"), "{e}");
    assert!(
        e.contains("array 'indices', row 1") && e.contains("column 2"),
        "{e}"
    );
}

#[test]
fn csc_rejected_with_hint() {
    let e = fixture_err("csc.npz", &with_labels("csr_labels.npy"));
    assert!(e.contains("csc.npz") && e.contains("'format'"), "{e}");
    assert!(e.contains("'csc'") && e.contains(".tocsr()"), "{e}");
}

#[test]
fn missing_labels_file_is_io_error() {
    let e = read(&fixture("csr.npz"), &with_labels("nope.npy")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("nope.npy"));
}

// ---- Synthetic archives.

#[test]
fn synthetic_dense_roundtrip_and_int_x() {
    let (_d, p) = npz(&[("X", good_x()), ("y", good_y())]);
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    assert_eq!(dense(&ds).values, vec![1.0, 2.0, 3.0, 4.0]);
    let (_d, p) = npz(&[
        ("X", npy("|u1", &[1, 3], &[0, 7, 255])),
        ("y", npy("|b1", &[1], &[1])),
    ]);
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    assert_eq!(dense(&ds).values, vec![0.0, 7.0, 255.0]);
    assert_eq!(ds.y, Some(vec![1.0]));
}

#[test]
fn y_column_vector_is_binary() {
    let (_d, p) = npz(&[("X", good_x()), ("y", npy("<i8", &[2, 1], &i64s(&[1, -1])))]);
    let ds = read(&p, &LoadOptions::labelled()).unwrap();
    assert_eq!(ds.n_labels, 1);
    assert_eq!(ds.y, Some(vec![1.0, 0.0]));
}

#[test]
fn y_mixing_zero_and_minus_one() {
    let e = syn_err(
        &[
            ("X", npy("<f4", &[3, 1], &f32s(&[1., 2., 3.]))),
            ("y", npy("<i8", &[3], &i64s(&[0, 1, -1]))),
        ],
        &LoadOptions::labelled(),
    );
    assert!(
        e.contains("syn.npz") && e.contains("array 'y', row 2") && e.contains("mix"),
        "{e}"
    );
}

#[test]
fn multilabel_value_not_01() {
    let e = syn_err(
        &[
            ("X", good_x()),
            ("y", npy("<i8", &[2, 2], &i64s(&[0, 1, 1, 3]))),
        ],
        &LoadOptions::labelled(),
    );
    assert!(
        e.contains("array 'y', row 1") && e.contains("column 1") && e.contains("not 0/1"),
        "{e}"
    );
}

#[test]
fn bad_x_shapes_and_types() {
    let e = syn_err(
        &[
            ("X", npy("<f4", &[4], &f32s(&[1., 2., 3., 4.]))),
            ("y", good_y()),
        ],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("'X'") && e.contains("2-D"), "{e}");
    let e = syn_err(
        &[
            ("X", npy("<f4", &[0, 2], &[])),
            ("y", npy("<i8", &[0], &[])),
        ],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("'X'") && e.contains("no rows"), "{e}");
    let e = syn_err(
        &[("X", npy("|O", &[1, 1], &[0; 8])), ("y", good_y())],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("'X'") && e.contains("object array"), "{e}");
    let e = syn_err(
        &[("X", npy("<c8", &[1, 1], &[0; 8])), ("y", good_y())],
        &LoadOptions::labelled(),
    );
    assert!(
        e.contains("'X'") && e.contains("unsupported dtype '<c8'"),
        "{e}"
    );
    let e = syn_err(
        &[("X", npy("|S2", &[1, 1], b"ab")), ("y", good_y())],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("'X'") && e.contains("not numeric"), "{e}");
    let e = syn_err(
        &[
            ("X", npy("<f8", &[1, 1], &f64::INFINITY.to_le_bytes())),
            ("y", good_y()),
        ],
        &LoadOptions::labelled(),
    );
    assert!(
        e.contains("array 'X', row 0") && e.contains("infinite"),
        "{e}"
    );
    let e = syn_err(
        &[
            ("X", npy("<f8", &[1, 1], &1e300f64.to_le_bytes())),
            ("y", good_y()),
        ],
        &LoadOptions::labelled(),
    );
    assert!(
        e.contains("array 'X', row 0") && e.contains("f32 range"),
        "{e}"
    );
}

#[test]
fn malformed_npy() {
    // Truncated data.
    let e = syn_err(
        &[
            ("X", npy("<f4", &[2, 2], &f32s(&[1., 2., 3.]))),
            ("y", good_y()),
        ],
        &LoadOptions::labelled(),
    );
    assert!(
        e.contains("syn.npz") && e.contains("'X'") && e.contains("truncated"),
        "{e}"
    );
    // Trailing garbage.
    let e = syn_err(
        &[
            ("X", npy("<f4", &[1, 1], &f32s(&[1., 2.]))),
            ("y", good_y()),
        ],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("'X'") && e.contains("unexpected bytes"), "{e}");
    // Bad magic.
    let e = syn_err(
        &[("X", b"not numpy at all".to_vec()), ("y", good_y())],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("'X'") && e.contains("magic"), "{e}");
    // Unknown version.
    let mut v = good_x();
    v[6] = 9;
    let e = syn_err(&[("X", v), ("y", good_y())], &LoadOptions::labelled());
    assert!(e.contains("version 9.0"), "{e}");
    // Structured dtype.
    let h = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    let e = syn_err(
        &[("X", npy_with_header(h, &[0; 4])), ("y", good_y())],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("structured"), "{e}");
    // Garbage header.
    let e = syn_err(
        &[
            ("X", npy_with_header("{'descr': <f4}", &[])),
            ("y", good_y()),
        ],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("'X'") && e.contains("unreadable header"), "{e}");
    let e = syn_err(
        &[
            (
                "X",
                npy_with_header("{'descr': '<f4', 'shape': (1, 1)}", &[0; 4]),
            ),
            ("y", good_y()),
        ],
        &LoadOptions::labelled(),
    );
    assert!(e.contains("fortran_order"), "{e}");
}

#[test]
fn not_a_zip_and_missing_x() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.npz");
    std::fs::write(&p, b"this is not a zip file").unwrap();
    let e = read(&p, &LoadOptions::labelled()).unwrap_err().to_string();
    assert!(e.contains("junk.npz") && e.contains("zip"), "{e}");
    let e = syn_err(&[("arr_0", good_x())], &LoadOptions::labelled());
    assert!(e.contains("no array 'X'") && e.contains("arr_0"), "{e}");
}

#[test]
fn synthetic_csr_ok_and_explicit_zero_dropped() {
    let m = replace(
        csr_members(),
        "data",
        npy("<f4", &[3], &f32s(&[5.0, 0.0, 8.0])),
    );
    let (_d, p) = npz(&m);
    let o = LoadOptions {
        require_labels: false,
        ..Default::default()
    };
    let ds = read(&p, &o).unwrap();
    let c = csr(&ds);
    assert_eq!(c.indptr, vec![0, 1, 2]);
    assert_eq!(c.indices, vec![1, 2]);
    assert_eq!(c.values, vec![5.0, 8.0]);
    // Unicode format string works too.
    let m = replace(
        csr_members(),
        "format",
        npy("<U3", &[], &[b'c', 0, 0, 0, b's', 0, 0, 0, b'r', 0, 0, 0]),
    );
    let (_d, p) = npz(&m);
    assert_eq!(read(&p, &o).unwrap().rows(), 2);
}

#[test]
fn synthetic_csr_errors() {
    let o = LoadOptions {
        require_labels: false,
        ..Default::default()
    };
    let e = syn_err(
        &replace(csr_members(), "format", npy("|S3", &[], b"coo")),
        &o,
    );
    assert!(e.contains("'coo'") && e.contains(".tocsr()"), "{e}");
    let e = syn_err(
        &replace(
            csr_members(),
            "indices",
            npy("<i8", &[3], &i64s(&[1, 0, 3])),
        ),
        &o,
    );
    assert!(
        e.contains("array 'indices', row 1") && e.contains("column index 3"),
        "{e}"
    );
    let e = syn_err(
        &replace(csr_members(), "indptr", npy("<i8", &[3], &i64s(&[0, 2, 1]))),
        &o,
    );
    assert!(
        e.contains("'indptr'") && e.contains("non-decreasing"),
        "{e}"
    );
    let e = syn_err(
        &replace(csr_members(), "indptr", npy("<i8", &[2], &i64s(&[0, 3]))),
        &o,
    );
    assert!(e.contains("'indptr'") && e.contains("rows + 1"), "{e}");
    let e = syn_err(
        &replace(csr_members(), "indptr", npy("<i8", &[3], &i64s(&[0, 1, 2]))),
        &o,
    );
    assert!(e.contains("'indptr'") && e.contains("ends at 2"), "{e}");
    let e = syn_err(
        &replace(csr_members(), "indptr", npy("<i8", &[3], &i64s(&[1, 1, 3]))),
        &o,
    );
    assert!(e.contains("'indptr'") && e.contains("start at 0"), "{e}");
    let e = syn_err(
        &replace(csr_members(), "data", npy("<f4", &[2], &f32s(&[1.0, 2.0]))),
        &o,
    );
    assert!(e.contains("'data'") && e.contains("2 entries"), "{e}");
    let e = syn_err(
        &replace(
            csr_members(),
            "data",
            npy("<f4", &[3], &f32s(&[1.0, f32::NAN, 2.0])),
        ),
        &o,
    );
    assert!(
        e.contains("array 'data', row 1") && e.contains("NaN"),
        "{e}"
    );
    let e = syn_err(
        &replace(
            csr_members(),
            "indices",
            npy("<f4", &[3], &f32s(&[1.0, 0.0, 2.0])),
        ),
        &o,
    );
    assert!(
        e.contains("'indices'") && e.contains("not an integer"),
        "{e}"
    );
    let e = syn_err(&csr_members()[..4], &o);
    assert!(e.contains("without array 'data'"), "{e}");
}
