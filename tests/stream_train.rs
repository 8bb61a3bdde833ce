//! Streaming training from many shards: memory that does not grow with the number of
//! shards, the in-memory model when the stream reproduces its order, determinism, and
//! errors that name the shard.

mod common;

use common::{fails, path_in, peak_rss_kib, run, tempdir};
use nonneg::model::io;
use nonneg::rng::Rng;
use std::fmt::Write as _;
use std::path::Path;

/// Writes `shards` svmlight shards of `rows` rows (`nnz` features each over `features`,
/// label 1 when a planted feature is present), `part-KK.svm`, and the same rows in one
/// file `all.svm`; returns the shard paths. One shard at a time is in memory: a child's
/// peak RSS counts the memory of the test process it was forked from.
fn write_shards(dir: &Path, shards: usize, rows: usize, nnz: usize, features: u64) -> Vec<String> {
    let mut rng = Rng::new(7);
    let mut all = std::fs::File::create(dir.join("all.svm")).unwrap();
    let mut paths = Vec::new();
    for k in 0..shards {
        let mut text = String::new();
        for _ in 0..rows {
            let mut idx: Vec<u64> = (0..nnz).map(|_| 1 + rng.below(features)).collect();
            idx.sort_unstable();
            idx.dedup();
            let label = idx.iter().any(|&j| j % 50 == 0) as u8;
            text.push_str(&label.to_string());
            for j in idx {
                write!(text, " {j}:1").unwrap();
            }
            text.push('\n');
        }
        let p = path_in(dir, &format!("part-{k:02}.svm"));
        std::fs::write(&p, &text).unwrap();
        std::io::Write::write_all(&mut all, text.as_bytes()).unwrap();
        paths.push(p);
    }
    paths
}

/// The memory bound `train` prints for a streamed run, in KiB.
fn printed_bound_kib(stderr: &str) -> u64 {
    let tail = stderr
        .split("memory bound ")
        .nth(1)
        .expect("a memory bound line");
    let mib: u64 = tail.split(' ').next().unwrap().parse().unwrap();
    mib * 1024
}

#[test]
fn peak_memory_does_not_grow_with_the_number_of_shards() {
    let dir = tempdir();
    // 20 shards of 10,000 rows (about 4 MB each as text and in memory).
    let shards = write_shards(dir.path(), 20, 10_000, 60, 1 << 18);
    let out = path_in(dir.path(), "m.safetensors");
    let train = |data: &[String], extra: &[&str]| {
        let mut args = vec!["train", "--out", &out, "--hidden", "", "--epochs", "1"];
        args.extend(["--batch-size", "256", "--seed", "1", "--data"]);
        args.extend(data.iter().map(String::as_str));
        args.extend(extra);
        peak_rss_kib(&args)
    };
    let stream = ["--shuffle-buffer", "4096"];
    let (five, _) = train(&shards[..5], &stream);
    let (twenty, err) = train(&shards, &stream);
    let all = path_in(dir.path(), "all.svm");
    let (in_memory, _) = train(&[all], &[]);
    eprintln!(
        "peak RSS: 5 shards {} MiB, 20 shards {} MiB, in memory {} MiB",
        five / 1024,
        twenty / 1024,
        in_memory / 1024
    );
    // Four times the data, the same memory (within 8 MiB of allocator noise)...
    assert!(
        twenty < five + 8 * 1024,
        "5 shards {five} KiB, 20 shards {twenty} KiB"
    );
    // ... below the stated bound, and well below reading all rows into memory.
    assert!(twenty < printed_bound_kib(&err), "{twenty} KiB; {err}");
    assert!(
        twenty + 40 * 1024 < in_memory,
        "{twenty} KiB vs {in_memory} KiB"
    );
}

/// The model's tensors, scaling and per-feature maxima (what training computed).
fn trained_state(path: &str) -> impl PartialEq + std::fmt::Debug {
    let m = io::load(Path::new(path)).unwrap();
    (m.mlp, m.scaler, m.feature_max, m.threshold, m.label_names)
}

#[test]
fn a_stream_in_the_in_memory_order_trains_the_in_memory_model() {
    let dir = tempdir();
    let shards = write_shards(dir.path(), 20, 60, 12, 3000);
    let (mem, st) = (path_in(dir.path(), "mem.st"), path_in(dir.path(), "st.st"));
    let all = path_in(dir.path(), "all.svm");
    for extra in [
        &["--hidden", "8", "--constraint", "monotone"][..],
        &["--hidden", "", "--robust-budget", "3", "--scale", "minmax"][..],
        &[
            "--hidden",
            "8",
            "--dropout",
            "0.3",
            "--input-dropout",
            "0.2",
        ][..],
    ] {
        let common = ["--epochs", "3", "--batch-size", "32", "--seed", "5", "-q"];
        let mut a = vec!["train", "--data", &all, "--out", &mem];
        a.extend(common.iter().chain(extra));
        run(&a);
        let mut b = vec!["train", "--out", &st, "--shard-order", "given"];
        b.extend(["--shuffle-buffer", "1200", "--data"]);
        b.extend(shards.iter().map(String::as_str));
        b.extend(common.iter().chain(extra));
        run(&b);
        assert_eq!(trained_state(&mem), trained_state(&st), "{extra:?}");
    }
    // Dense CSV shards with fitted (log1p-standard) scaling.
    let spam = std::fs::read_to_string(common::spambase()).unwrap();
    let lines: Vec<&str> = spam.lines().collect();
    let mut parts = Vec::new();
    for (k, chunk) in lines[1..].chunks(1200).enumerate() {
        let p = path_in(dir.path(), &format!("sb-{k}.csv"));
        std::fs::write(&p, [&[lines[0]], chunk].concat().join("\n")).unwrap();
        parts.push(p);
    }
    let label = common::SPAMBASE_LABEL;
    let opts = ["--constraint", "monotone", "--epochs", "2", "-q"];
    let spambase = common::spambase();
    let mut a = vec!["train", "--data", &spambase, "--out", &mem];
    a.extend(label.iter().chain(&opts));
    run(&a);
    let mut b = vec!["train", "--out", &st, "--shard-order", "given"];
    b.extend(["--shuffle-buffer", "5000", "--data"]);
    b.extend(parts.iter().map(String::as_str));
    b.extend(label.iter().chain(&opts));
    run(&b);
    assert_eq!(trained_state(&mem), trained_state(&st));
}

#[test]
fn a_streamed_ensemble_is_the_in_memory_ensemble() {
    // K members, each a streaming run over the shards in the in-memory order, merged: the
    // in-memory ensemble, with the merged model's threshold on streamed validation shards.
    let dir = tempdir();
    let shards = write_shards(dir.path(), 10, 60, 12, 3000);
    let (mem, st) = (path_in(dir.path(), "mem.st"), path_in(dir.path(), "st.st"));
    let all = path_in(dir.path(), "all.svm");
    let valid = path_in(dir.path(), "valid.svm");
    let text = [&shards[0], &shards[1]].map(|p| std::fs::read_to_string(p).unwrap());
    std::fs::write(&valid, text.concat()).unwrap();
    let common = [
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--seed",
        "5",
        "-q",
        "--hidden",
        "8",
        "--constraint",
        "monotone",
        "--ensemble",
        "3",
        "--threshold-fpr",
        "0.2",
    ];
    let mut a = vec!["train", "--data", &all, "--out", &mem, "--valid", &valid];
    a.extend(common);
    run(&a);
    let mut b = vec!["train", "--out", &st, "--shard-order", "given"];
    b.extend([
        "--shuffle-buffer",
        "600",
        "--valid",
        &shards[0],
        &shards[1],
        "--data",
    ]);
    b.extend(shards.iter().map(String::as_str));
    b.extend(common);
    run(&b);
    assert_eq!(trained_state(&mem), trained_state(&st));
    let m = io::load(Path::new(&st)).unwrap();
    assert_eq!(m.training["ensemble_seeds"], serde_json::json!([5, 6, 7]));
    assert_eq!(m.mlp.layers[0].n_out, 3 * 8);
}

#[test]
fn shuffled_streams_are_deterministic_and_shuffle() {
    let dir = tempdir();
    let shards = write_shards(dir.path(), 6, 80, 10, 2000);
    let model = |name: &str, extra: &[&str]| {
        let out = path_in(dir.path(), name);
        let mut a = vec![
            "train", "--out", &out, "--hidden", "4", "--epochs", "2", "-q",
        ];
        a.extend(["--shuffle-buffer", "50", "--batch-size", "16", "--data"]);
        a.extend(shards.iter().map(String::as_str));
        a.extend(extra);
        run(&a);
        std::fs::read(&out).unwrap()
    };
    let a = model("a", &["--seed", "1"]);
    assert_eq!(
        a,
        model("b", &["--seed", "1", "--threads", "1", "--read-ahead", "3"])
    );
    assert_ne!(a, model("c", &["--seed", "2"]));
    assert_ne!(a, model("d", &["--seed", "1", "--shard-order", "given"]));
    let with_valid = model("e", &["--seed", "1", "--valid-shards", "2"]);
    let m = io::load(&dir.path().join("e")).unwrap();
    assert_eq!(m.training["train_rows"], 320);
    assert_eq!(m.training["valid_rows"], 160);
    assert_ne!(a, with_valid);
}

#[test]
fn errors_name_the_shard_and_line_and_refuse_checkpoints() {
    let dir = tempdir();
    let shards = write_shards(dir.path(), 4, 20, 5, 500);
    let mut text = std::fs::read_to_string(&shards[2]).unwrap();
    text.push_str("1 7:x\n");
    std::fs::write(&shards[2], text).unwrap();
    let out = path_in(dir.path(), "m");
    let pattern = path_in(dir.path(), "part-*.svm");
    let err = fails(&["train", "--data", &pattern, "--out", &out]);
    assert!(err.contains("part-02.svm") && err.contains(":21"), "{err}");
    let ok = &shards[..2];
    let mut a = vec!["train", "--out", &out, "--checkpoint", &out, "--data"];
    a.extend(ok.iter().map(String::as_str));
    let err = fails(&a);
    assert!(err.contains("cannot be checkpointed"), "{err}");
    let missing = path_in(dir.path(), "nothing-*.svm");
    let err = fails(&["train", "--data", &missing, "--out", &out]);
    assert!(err.contains("no file matches"), "{err}");
    let mut a = vec!["train", "--out", &out, "--max-memory", "1M", "--data"];
    a.extend(ok.iter().map(String::as_str));
    let err = fails(&a);
    assert!(err.contains("over --max-memory"), "{err}");
}

#[test]
fn eval_and_predict_read_shards_as_one_file() {
    let dir = tempdir();
    let shards = write_shards(dir.path(), 5, 40, 8, 1000);
    let (all, model) = (path_in(dir.path(), "all.svm"), path_in(dir.path(), "m"));
    run(&[
        "train", "--data", &all, "--out", &model, "--hidden", "4", "-q",
    ]);
    let pattern = path_in(dir.path(), "part-*.svm");
    let eval =
        |data: &str| common::run_stdout(&["eval", "--model", &model, "--data", data, "--json"]);
    assert_eq!(eval(&all), eval(&pattern));
    let (one, many) = (
        path_in(dir.path(), "one.csv"),
        path_in(dir.path(), "many.csv"),
    );
    run(&["predict", "--model", &model, "--data", &all, "--out", &one]);
    run(&[
        "predict", "--model", &model, "--data", &pattern, "--out", &many,
    ]);
    let text = std::fs::read_to_string(&many).unwrap();
    assert_eq!(std::fs::read_to_string(&one).unwrap(), text);
    assert_eq!(text.lines().count(), 1 + 5 * 40);
    // A bad last shard: an error naming it, and no output file at all.
    std::fs::write(&shards[4], "1 3:1\n0 2:oops\n").unwrap();
    let failed = path_in(dir.path(), "failed.csv");
    let err = fails(&[
        "predict", "--model", &model, "--data", &pattern, "--out", &failed,
    ]);
    assert!(err.contains("part-04.svm:2"), "{err}");
    assert!(!Path::new(&failed).exists());
}

#[test]
fn the_printed_memory_bound_counts_an_ensembles_members() {
    // 3,000 features into 256 units: about 0.77M parameters, 4 bytes each; an ensemble of
    // 4 holds its members and the merged network besides the one in training (8 bytes a
    // parameter a member more).
    let dir = tempdir();
    let shards = write_shards(dir.path(), 2, 60, 12, 3000);
    let out = path_in(dir.path(), "m.st");
    let bound = |k: &str| {
        let mut a = vec!["train", "--out", &out, "--hidden", "256", "--epochs", "1"];
        a.extend(["--shuffle-buffer", "64", "--ensemble", k, "--data"]);
        a.extend(shards.iter().map(String::as_str));
        let err = String::from_utf8_lossy(&run(&a).stderr).into_owned();
        printed_bound_kib(&err) / 1024
    };
    let (one, four) = (bound("1"), bound("4"));
    let params_mib = (3000 * 256 + 256 + 256 + 1) * 4 / (1 << 20);
    assert!(
        four >= one + 8 * params_mib,
        "bound {one} MiB alone, {four} MiB for 4 members ({params_mib} MiB of parameters)"
    );
}
