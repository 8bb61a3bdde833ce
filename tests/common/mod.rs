//! Shared by every integration test (and `benches/train_speed.rs`): the `nonneg` binary and
//! its runners, the bundled Spambase data driven through the CLI, temporary folders, random
//! datasets, and where the SpamAssassin corpus is.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use nonneg::data::{CsrMatrix, Dataset, DenseMatrix, Features};
use nonneg::rng::Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------------------------------
// The binary.

/// The repository root (the crate's manifest folder).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `nonneg` binary, run from the repository root (relative data paths resolve there).
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nonneg"));
    c.current_dir(root());
    c
}

/// Runs `nonneg args` whatever its exit status.
pub fn exec(args: &[&str]) -> Output {
    command().args(args).output().expect("nonneg runs")
}

/// Runs `nonneg args`; panics with its stderr unless it succeeds.
pub fn run(args: &[&str]) -> Output {
    let out = exec(args);
    assert!(
        out.status.success(),
        "nonneg {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`run`], returning stdout as text.
pub fn run_stdout(args: &[&str]) -> String {
    String::from_utf8(run(args).stdout).expect("UTF-8 stdout")
}

/// Runs `nonneg args`, which must fail with exit code 2 (not a panic); returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = exec(args);
    assert_eq!(out.status.code(), Some(2), "nonneg {args:?} should exit 2");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Runs `nonneg args` and returns its peak resident set (KiB) and stderr.
// The child is reaped by wait4, which also gives its own rusage (not all children's).
#[allow(clippy::zombie_processes)]
pub fn peak_rss_kib(args: &[&str]) -> (u64, String) {
    let child = command()
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nonneg runs");
    let pid = child.id() as libc::pid_t;
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut child.stderr.unwrap(), &mut s).unwrap();
        s
    });
    let (mut status, mut usage) = (0, std::mem::MaybeUninit::<libc::rusage>::zeroed());
    // SAFETY: wait4 fills `status` and `usage` for our own child.
    let got = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
    assert_eq!(got, pid);
    let err = stderr.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?}: {err}"
    );
    // SAFETY: filled by wait4 above.
    (unsafe { usage.assume_init() }.ru_maxrss as u64, err)
}

// ---------------------------------------------------------------------------------------
// Files.

/// A temporary folder, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// `dir/name` as a command-line argument.
pub fn path_in(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

// ---------------------------------------------------------------------------------------
// Spambase through the CLI.

/// The label options of the bundled Spambase CSV.
pub const SPAMBASE_LABEL: [&str; 4] = ["--label-column", "type", "--positive", "spam"];

/// The bundled Spambase CSV.
pub fn spambase() -> String {
    root().join("data/spambase.csv").display().to_string()
}

/// Splits the bundled Spambase 80/20 (stratified, seed 0) into `dir`; returns the train
/// and test files.
pub fn split_spambase(dir: &Path) -> (String, String) {
    let train = path_in(dir, "train.csv");
    let test = path_in(dir, "test.csv");
    let data = spambase();
    let mut args = vec![
        "split",
        "--data",
        &data,
        "--test-fraction",
        "0.2",
        "--seed",
        "0",
    ];
    args.extend(SPAMBASE_LABEL);
    args.extend(["--train-out", &train, "--test-out", &test, "-q"]);
    run(&args);
    (train, test)
}

/// `nonneg train -q` on Spambase-labelled `data` into `out`, with `extra` options.
pub fn train_spambase(data: &str, out: &str, extra: &[&str]) {
    let mut args = vec!["train", "--data", data, "--out", out, "-q"];
    args.extend(SPAMBASE_LABEL);
    args.extend(extra);
    run(&args);
}

/// `nonneg eval --json` of `model` on Spambase-labelled `data`.
pub fn eval_spambase(model: &str, data: &str) -> serde_json::Value {
    let mut args = vec!["eval", "--model", model, "--data", data, "--json"];
    args.extend(SPAMBASE_LABEL);
    serde_json::from_slice(&run(&args).stdout).expect("one JSON object")
}

/// `nonneg inspect --json`.
pub fn inspect_json(model: &str) -> serde_json::Value {
    serde_json::from_slice(&run(&["inspect", "--model", model, "--json"]).stdout)
        .expect("one JSON object")
}

// ---------------------------------------------------------------------------------------
// Random datasets.

/// Dense `rows x cols` features, each value from `draw`, row by row.
pub fn dense_with(
    rows: usize,
    cols: usize,
    rng: &mut Rng,
    mut draw: impl FnMut(&mut Rng) -> f32,
) -> Features {
    Features::Dense(DenseMatrix {
        rows,
        cols,
        values: (0..rows * cols).map(|_| draw(rng)).collect(),
    })
}

/// Dense N(0, 1) features.
pub fn dense_normal(rows: usize, cols: usize, rng: &mut Rng) -> Features {
    dense_with(rows, cols, rng, |r| r.normal_f32())
}

/// Dense non-negative features, as counts are: a third zeros, the rest U(0, 2).
pub fn dense_non_negative(rows: usize, cols: usize, rng: &mut Rng) -> Features {
    dense_with(rows, cols, rng, |r| {
        if r.below(3) == 0 {
            0.0
        } else {
            2.0 * r.uniform_f32()
        }
    })
}

/// Sparse rows, each feature active with probability `1 / one_in`, with binary (1.0) and
/// real values (0.2 + U(0, 1)) mixed half and half.
pub fn sparse(rows: usize, cols: usize, one_in: u64, rng: &mut Rng) -> Features {
    let mut m = CsrMatrix {
        rows,
        cols,
        indptr: vec![0],
        indices: vec![],
        values: vec![],
    };
    for _ in 0..rows {
        for j in 0..cols as u32 {
            if rng.below(one_in) == 0 {
                m.indices.push(j);
                m.values.push(if rng.below(2) == 0 {
                    1.0
                } else {
                    0.2 + rng.uniform_f32()
                });
            }
        }
        m.indptr.push(m.indices.len());
    }
    Features::Sparse(m)
}

/// Sparse binary rows over `cols` features, `per_row` draws a row at
/// `floor(cols * u^3)` (Zipf-like, de-duplicated), as hashed n-gram features are.
pub fn sparse_zipf_binary(rows: usize, cols: usize, per_row: usize, rng: &mut Rng) -> Features {
    let mut m = CsrMatrix {
        rows,
        cols,
        indptr: vec![0],
        indices: vec![],
        values: vec![],
    };
    for _ in 0..rows {
        let mut idx: Vec<u32> = (0..per_row)
            .map(|_| {
                let u = rng.uniform_f64();
                ((cols as f64) * u * u * u) as u32
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        m.values.extend(std::iter::repeat_n(1.0, idx.len()));
        m.indices.extend(idx);
        m.indptr.push(m.indices.len());
    }
    Features::Sparse(m)
}

/// Uniformly random 0/1 labels, `rows x labels`.
pub fn random_labels(rows: usize, labels: usize, rng: &mut Rng) -> Vec<f32> {
    (0..rows * labels).map(|_| rng.below(2) as f32).collect()
}

/// A dataset of `x` with labels `y` (`rows x n_labels`), labels named 0, 1, ... (one
/// label: `label`).
pub fn dataset(x: Features, y: Vec<f32>, n_labels: usize) -> Dataset {
    assert_eq!(y.len(), x.rows() * n_labels);
    Dataset {
        x,
        y: Some(y),
        n_labels,
        label_names: if n_labels == 1 {
            vec!["label".into()]
        } else {
            (0..n_labels).map(|k| k.to_string()).collect()
        },
        feature_names: None,
        source: "test".into(),
    }
}

// ---------------------------------------------------------------------------------------
// The SpamAssassin corpus.

/// The corpus folders, their class and their number of emails.
pub const SPAMASSASSIN_FOLDERS: [(&str, &str, usize); 5] = [
    ("easy-ham-1", "ham", 2500),
    ("easy-ham-2", "ham", 1400),
    ("hard-ham-1", "ham", 250),
    ("spam-1", "spam", 500),
    ("spam-2", "spam", 1396),
];

/// The extracted SpamAssassin corpus: `$NONNEG_SPAMASSASSIN`, else
/// `../shared/data/spamassassin` beside the checkout. A missing corpus FAILS the tests
/// that need it (they do not skip).
pub fn spamassassin() -> PathBuf {
    let root = std::env::var_os("NONNEG_SPAMASSASSIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/data/spamassassin"));
    for (folder, _, _) in SPAMASSASSIN_FOLDERS {
        assert!(
            root.join(folder).is_dir(),
            "SpamAssassin corpus not found at {} (expected folders easy-ham-1, easy-ham-2, \
             hard-ham-1, spam-1, spam-2; set NONNEG_SPAMASSASSIN to override). \
             These tests need it and fail rather than pass silently.",
            root.display()
        );
    }
    root
}

/// The archive of one corpus folder vendored in the repository
/// (`data/spamassassin/<folder>.tar.gz`, what `nonneg demo` reads), relative to the root.
pub fn spamassassin_archive(folder: &str) -> String {
    let rel = format!("data/spamassassin/{folder}.tar.gz");
    assert!(root().join(&rel).is_file(), "{rel} is missing");
    rel
}

/// The first `n` files of a corpus folder (name order): their names and bytes.
pub fn first_emails(folder: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(spamassassin().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .take(n)
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Emails taken from each folder by [`spamassassin_subset`] (`NONNEG_TEST_PER_FOLDER`
/// overrides, e.g. 100000 to run every test on the whole corpus).
pub fn per_folder() -> usize {
    std::env::var("NONNEG_TEST_PER_FOLDER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

/// Copies the first [`per_folder`] emails of every corpus folder into `dir/<folder>/`;
/// returns each folder's class and copy, in [`SPAMASSASSIN_FOLDERS`] order.
pub fn spamassassin_subset(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut classes = Vec::new();
    for (folder, class, _) in SPAMASSASSIN_FOLDERS {
        let dst = dir.join(folder);
        std::fs::create_dir_all(&dst).unwrap();
        for (name, bytes) in first_emails(folder, per_folder()) {
            std::fs::write(dst.join(name), bytes).unwrap();
        }
        classes.push((class.to_owned(), dst));
    }
    classes
}

/// A file (or, with "", the folder) of the sample executables in `tests/fixtures/bin`.
pub fn fixture_bin(name: &str) -> PathBuf {
    root().join("tests/fixtures/bin").join(name)
}

/// Writes `samples` as files into `dir` (created); returns its path.
pub fn copy_to(dir: &Path, samples: &[(String, Vec<u8>)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for (n, b) in samples {
        std::fs::write(dir.join(n), b).unwrap();
    }
    dir.display().to_string()
}

/// A small raw-email training set, 150 spam-1 and 300 easy-ham-1 messages, featurized by
/// the command line with `--header-tokens` into `dir/train.svm` (featurizer beside it).
/// Returns that path and the ham messages (the good-words attack takes words from them).
pub fn small_email_training_set(dir: &Path) -> (String, Vec<(String, Vec<u8>)>) {
    let ham = first_emails("easy-ham-1", 300);
    let spam_dir = copy_to(&dir.join("spam"), &first_emails("spam-1", 150));
    let ham_dir = copy_to(&dir.join("ham"), &ham);
    let train = path_in(dir, "train.svm");
    run_stdout(&[
        "featurize",
        "text",
        "--class",
        &format!("spam={spam_dir}"),
        "--class",
        &format!("ham={ham_dir}"),
        "--header-tokens",
        "--out",
        &train,
    ]);
    (train, ham)
}

// ---------------------------------------------------------------------------------------
// Folders and archives.

/// The files in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The concatenation of `dir`'s `part-*.svm` shards, in name order.
pub fn concatenated_shards(dir: &Path) -> Vec<u8> {
    listing(dir)
        .iter()
        .filter(|n| n.starts_with("part-") && n.ends_with(".svm"))
        .flat_map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect()
}

/// A tar archive being written to `out`, compressed as its extension says (`.tar.gz`,
/// `.tar.bz2`, else none); finish with `into_inner()?.flush()`.
pub fn tar_builder(out: &Path) -> tar::Builder<Box<dyn std::io::Write>> {
    let f = std::fs::File::create(out).unwrap();
    let name = out.to_string_lossy().to_string();
    let w: Box<dyn std::io::Write> = if name.ends_with(".tar.gz") {
        Box::new(flate2::write::GzEncoder::new(
            f,
            flate2::Compression::fast(),
        ))
    } else if name.ends_with(".tar.bz2") {
        Box::new(bzip2::write::BzEncoder::new(f, bzip2::Compression::fast()))
    } else {
        Box::new(f)
    };
    tar::Builder::new(w)
}
