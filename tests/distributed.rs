//! Data-parallel training over MPI on loopback (`mpirun`, Open MPI): one rank is the
//! single-process run to the bit, two ranks match it within a stated tolerance and repeat
//! themselves to the bit, rank 0 alone writes, and an error on one rank ends them all.
//! Over streamed shards each rank reads its own, and two ranks learn what one process
//! streaming the same shards learns.

mod common;

#[test]
#[cfg(not(feature = "distributed"))]
fn without_the_feature_distributed_says_how_to_build_it() {
    let dir = common::tempdir();
    let out = common::path_in(dir.path(), "m.st");
    let mut args = vec!["train", "--distributed", "--data", "data/spambase.csv"];
    args.extend(common::SPAMBASE_LABEL);
    args.extend(["--out", &out]);
    let err = common::fails(&args);
    assert!(err.contains("--features distributed"), "{err}");
}

#[cfg(feature = "distributed")]
mod under_mpirun {
    use super::common;
    use common::{path_in, random_labels, run, sparse_zipf_binary, tempdir, SPAMBASE_LABEL};
    use nonneg::data::Features;
    use nonneg::data::{self, Dataset, LoadOptions};
    use nonneg::model::{io, Model};
    use nonneg::rng::Rng;
    use std::io::{Read, Seek, SeekFrom};
    use std::path::Path;
    use std::process::{Command, Output};
    use std::time::{Duration, Instant};

    /// How far two ranks' model may be from the single-process one after the runs below: the
    /// largest weight difference relative to the largest weight, and the largest logit
    /// difference relative to the largest logit. The two sum each batch's gradient in
    /// another order (two half-batch sums, then their sum), which moves the last bits of
    /// every step's update.
    const TOLERANCE: f32 = 1e-5;

    /// `mpirun -np ranks nonneg args` on this machine; panics when it has not ended after
    /// [`HANG`] (a rank waits for another that is gone).
    fn mpirun(ranks: usize, args: &[&str]) -> Output {
        // Files, not pipes: a full pipe would stop the ranks, not a hang of theirs.
        let (mut out, mut err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        let mut child = mpirun_command(ranks, args)
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .spawn()
            .expect("mpirun runs (Open MPI installed)");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > HANG {
                // SIGTERM: mpirun passes it on to the ranks.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                child.wait().unwrap();
                panic!("mpirun -np {ranks} nonneg {args:?} still running after {HANG:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |f: &mut std::fs::File| {
            let mut bytes = Vec::new();
            f.seek(SeekFrom::Start(0)).unwrap();
            f.read_to_end(&mut bytes).unwrap();
            bytes
        };
        Output {
            status,
            stdout: read(&mut out),
            stderr: read(&mut err),
        }
    }

    /// `mpirun -np ranks nonneg args`, to be spawned.
    fn mpirun_command(ranks: usize, args: &[&str]) -> Command {
        let mut command = Command::new("mpirun");
        command
            .args(["--oversubscribe", "--allow-run-as-root", "-np"])
            .arg(ranks.to_string())
            .arg(env!("CARGO_BIN_EXE_nonneg"))
            .args(args)
            .current_dir(common::root());
        command
    }

    /// Longer than any run here takes (a few seconds on a loaded 2-core machine).
    const HANG: Duration = Duration::from_secs(60);

    /// `mpirun -np ranks nonneg train --distributed` with `args`; panics unless it succeeds.
    /// Returns stderr.
    fn train_ranks(ranks: usize, args: &[&str]) -> String {
        let mut all = vec!["train", "--distributed"];
        all.extend(args);
        let out = mpirun(ranks, &all);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{ranks} ranks: {all:?}: {err}");
        err
    }

    /// A sparse binary svmlight file (Zipf-distributed features, so that ranks share some
    /// and not others) in `dir`.
    fn sparse_file(dir: &Path) -> String {
        let mut rng = Rng::new(11);
        let x = sparse_zipf_binary(800, 2000, 12, &mut rng);
        let y = random_labels(800, 1, &mut rng);
        let path = path_in(dir, "sparse.svm");
        data::write::write_svmlight(&common::dataset(x, y, 1), Path::new(&path)).unwrap();
        path
    }

    /// The options of a dense and a sparse run. The sparse one has a skip connection; the
    /// dense one clips, and its last batch (4,601 rows in batches of 100) leaves rank 0 of
    /// two without rows.
    fn cases(dir: &Path) -> Vec<Vec<String>> {
        let common = ["--epochs", "2", "--seed", "3", "-q"];
        let mut dense: Vec<String> = ["--data", &common::spambase(), "--hidden", "32,16"]
            .iter()
            .chain(&SPAMBASE_LABEL)
            .chain(&["--batch-size", "100", "--clip-grad-norm", "1"])
            .map(|s| s.to_string())
            .collect();
        let svm = sparse_file(dir);
        let mut sparse: Vec<String> = ["--data", &svm, "--hidden", "16", "--skip", "on"]
            .iter()
            .chain(&["--batch-size", "33", "--lr", "0.01"])
            .map(|s| s.to_string())
            .collect();
        for c in [&mut dense, &mut sparse] {
            c.extend(common.iter().map(|s| s.to_string()));
        }
        vec![dense, sparse]
    }

    /// `args` plus `--out out`, as `&str`s.
    fn with_out<'a>(args: &'a [String], out: &'a str) -> Vec<&'a str> {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["--out", out]);
        all
    }

    /// The data a case trains on, read as the CLI reads it.
    fn case_data(args: &[String]) -> Dataset {
        let value = |flag: &str| {
            let i = args.iter().position(|a| a == flag)?;
            Some(args[i + 1].clone())
        };
        let opts = LoadOptions {
            label_column: value("--label-column"),
            positive: value("--positive"),
            ..Default::default()
        };
        data::load(Path::new(&value("--data").unwrap()), &opts).unwrap()
    }

    /// Every weight and bias of a model, in one list.
    fn parameters(m: &Model) -> Vec<f32> {
        let mut all = Vec::new();
        for l in m.mlp.layers.iter().chain(&m.mlp.skip) {
            all.extend(&l.weight);
            all.extend(&l.bias);
        }
        all
    }

    /// The largest difference between `a` and `b` relative to the largest magnitude in `a`.
    fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let gap = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        gap / scale
    }

    #[test]
    fn one_rank_under_mpirun_is_the_single_process_run_to_the_bit() {
        let dir = tempdir();
        for case in cases(dir.path()) {
            let (plain, one) = (
                path_in(dir.path(), "plain.st"),
                path_in(dir.path(), "one.st"),
            );
            let mut args = vec!["train"];
            args.extend(with_out(&case, &plain));
            run(&args);
            train_ranks(1, &with_out(&case, &one));
            let same = std::fs::read(&plain).unwrap() == std::fs::read(&one).unwrap();
            assert!(same, "{case:?}");
        }
    }

    #[test]
    fn two_ranks_match_the_single_process_run_and_repeat_themselves() {
        let dir = tempdir();
        for case in cases(dir.path()) {
            let plain = path_in(dir.path(), "plain.st");
            let (two, again) = (
                path_in(dir.path(), "two.st"),
                path_in(dir.path(), "again.st"),
            );
            let mut args = vec!["train"];
            args.extend(with_out(&case, &plain));
            run(&args);
            train_ranks(2, &with_out(&case, &two));
            train_ranks(2, &with_out(&case, &again));
            let bytes = |p: &str| std::fs::read(p).unwrap();
            assert!(bytes(&two) == bytes(&again), "two runs differ: {case:?}");
            let (a, b) = (
                io::load(plain.as_ref()).unwrap(),
                io::load(two.as_ref()).unwrap(),
            );
            let weights = relative_gap(&parameters(&a), &parameters(&b));
            let x = &case_data(&case).x;
            let logits = relative_gap(&a.logits(x), &b.logits(x));
            eprintln!("{}: weights {weights:.2e}, logits {logits:.2e}", case[1]);
            assert!(weights <= TOLERANCE && logits <= TOLERANCE, "{case:?}");
            // The sums are another order, not another model: the runs are not the same bits.
            assert!(weights > 0.0, "{case:?}");
        }
    }

    #[test]
    fn rank_zero_alone_writes_and_reports_the_traffic() {
        let dir = tempdir();
        let case = &cases(dir.path())[1];
        let (out, log) = (path_in(dir.path(), "m.st"), path_in(dir.path(), "log.csv"));
        let mut args = with_out(case, &out);
        args.retain(|a| *a != "-q");
        args.extend(["--log", &log]);
        let err = train_ranks(2, &args);
        // One summary, from rank 0, with the bytes of each step, dense and sparse.
        assert_eq!(err.matches("wrote ").count(), 1, "{err}");
        let line = err.lines().find(|l| l.starts_with("communication: "));
        let line = line.unwrap_or_else(|| panic!("no traffic line: {err}"));
        assert!(
            line.contains("2 ranks") && line.contains("sparse "),
            "{line}"
        );
        assert!(std::fs::read_to_string(&log).unwrap().lines().count() == 3);
    }

    #[test]
    fn an_error_on_one_rank_ends_every_rank_with_exit_2() {
        let dir = tempdir();
        let case = &cases(dir.path())[0];
        // Only rank 0 writes the log: it fails before the first step, when rank 1 is already
        // waiting for its gradients.
        let out = path_in(dir.path(), "m.st");
        let mut args = vec!["train", "--distributed"];
        args.extend(with_out(case, &out));
        args.extend(["--log", "/nonexistent-folder/log.csv"]);
        let result = mpirun(2, &args);
        let err = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{err}");
        assert!(
            err.contains("error: rank 0 of 2: ") && err.contains("log.csv"),
            "{err}"
        );
        assert!(!Path::new(&out).exists());
    }

    /// The processes below `pid` (children, their children, ...), from /proc.
    fn descendants(pid: i32) -> Vec<i32> {
        let parent_of = |p: i32| -> Option<i32> {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // "pid (comm) state ppid ...": the command may hold spaces and parentheses.
            stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
        };
        let all: Vec<i32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let mut found = vec![pid];
        let mut at = 0;
        while at < found.len() {
            let p = found[at];
            found.extend(all.iter().filter(|&&c| parent_of(c) == Some(p)));
            at += 1;
        }
        found.split_off(1)
    }

    #[test]
    fn a_run_killed_under_two_ranks_resumes_to_the_same_model_bytes() {
        let dir = tempdir();
        // The dense case (46 batches an epoch) made long enough to be killed on the way:
        // wider layers (a few ms a step), so the run outlasts the signal's way to the ranks.
        let mut case = cases(dir.path()).swap_remove(0);
        for (flag, value) in [("--epochs", "20"), ("--hidden", "256,256")] {
            let at = case.iter().position(|a| a == flag).unwrap() + 1;
            case[at] = value.into();
        }
        let whole = path_in(dir.path(), "whole.st");
        let whole_ckpt = path_in(dir.path(), "whole-ckpt");
        let mut args = with_out(&case, &whole);
        args.extend(["--checkpoint", &whole_ckpt, "--checkpoint-every", "20"]);
        train_ranks(2, &args);
        // Rank 0 alone wrote it: the checkpoint and nothing else in the folder.
        let files: Vec<_> = std::fs::read_dir(&whole_ckpt).unwrap().collect();
        assert_eq!(files.len(), 1, "{files:?}");

        let out = path_in(dir.path(), "resumed.st");
        let ckpt = path_in(dir.path(), "ckpt");
        let mut args = vec!["train", "--distributed"];
        args.extend(with_out(&case, &out));
        args.extend(["--checkpoint", &ckpt, "--checkpoint-every", "20"]);
        let mut child = mpirun_command(2, &args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mpirun runs");
        let saved = Path::new(&ckpt).join("checkpoint.safetensors");
        let start = Instant::now();
        let killed = loop {
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            if saved.exists() || start.elapsed() > HANG {
                // SIGKILL to the ranks themselves, at once (mpirun passes a signal on only
                // after a while, by when a short run may have ended), then mpirun.
                for pid in descendants(child.id() as i32) {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                child.wait().unwrap();
                break true;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(killed, "the run ended before its first checkpoint");
        assert!(saved.exists(), "no checkpoint after the kill");
        assert!(!Path::new(&out).exists(), "the killed run wrote its model");
        let mut args = with_out(&case, &out);
        args.extend(["--resume", &ckpt, "--checkpoint-every", "20"]);
        train_ranks(2, &args);
        assert_eq!(
            std::fs::read(&whole).unwrap(),
            std::fs::read(&out).unwrap(),
            "killed and resumed under two ranks, the model differs from the run never stopped"
        );
    }

    #[test]
    fn what_distributed_training_cannot_do_is_refused() {
        let dir = tempdir();
        let case = &cases(dir.path())[0];
        let out = path_in(dir.path(), "m.st");
        for (extra, says) in [
            (vec!["--robust-budget", "2"], "verified training"),
            (vec!["--autotune"], "--autotune"),
            (
                vec!["--input-dropout", "0.2"],
                "not supported in data-parallel training",
            ),
        ] {
            let mut args = vec!["train", "--distributed"];
            args.extend(with_out(case, &out));
            args.extend(extra);
            let err = common::fails(&args);
            assert!(err.contains(says), "{err}");
        }
    }

    /// How far the validation AUC of two ranks over shards may be from one process
    /// streaming the same shards: the ranks see the rows in another order (each its own
    /// shards' window), so the models differ by more than rounding.
    const SHARD_AUC_TOLERANCE: f64 = 0.01;

    /// 8 svmlight shards of `150 + 23 k` rows (sparse binary, labels from a planted linear
    /// rule, so that the AUC means something) in `dir`; returns their pattern and the rows
    /// of each.
    fn shards(dir: &Path) -> (String, Vec<usize>) {
        let mut rng = Rng::new(21);
        let weights: Vec<f32> = (0..2000).map(|_| rng.uniform_f64() as f32 - 0.4).collect();
        let rows: Vec<usize> = (0..8).map(|k| 150 + 23 * k).collect();
        for (k, &n) in rows.iter().enumerate() {
            let x = sparse_zipf_binary(n, 2000, 12, &mut rng);
            let Features::Sparse(m) = &x else {
                unreachable!()
            };
            let y = (0..n)
                .map(|r| {
                    let z: f32 = m.row(r).0.iter().map(|&j| weights[j as usize]).sum();
                    (z + rng.uniform_f64() as f32 - 0.5 > 0.0) as u8 as f32
                })
                .collect();
            let path = Path::new(&path_in(dir, &format!("part-{k}.svm"))).to_path_buf();
            data::write::write_svmlight(&common::dataset(x, y, 1), &path).unwrap();
        }
        (path_in(dir, "part-*.svm"), rows)
    }

    /// Training on the shards of [`shards`], the last 2 held out for validation.
    fn shard_args(pattern: &str) -> Vec<&str> {
        let flags = ["--valid-shards", "2", "--hidden", "16", "--epochs", "4"];
        let more = ["--batch-size", "32", "--lr", "0.01", "--seed", "5"];
        let mut args = vec!["--data", pattern];
        args.extend(flags.iter().chain(&more));
        args
    }

    /// One process streaming the shards of `pattern` with [`shard_args`] into `out`.
    fn train_streaming(pattern: &str, out: &str) {
        let mut args = vec!["train", "-q"];
        args.extend(shard_args(pattern));
        args.extend(["--out", out]);
        run(&args);
    }

    /// The AUC of the model in `path` on the validation shards (6 and 7) in `dir`.
    fn valid_auc(path: &str, dir: &Path) -> f64 {
        let model = io::load(path.as_ref()).unwrap();
        let (mut logits, mut y) = (Vec::new(), Vec::new());
        for k in [6, 7] {
            let p = path_in(dir, &format!("part-{k}.svm"));
            let d = data::load(Path::new(&p), &LoadOptions::labelled()).unwrap();
            logits.extend(model.logits(&d.x));
            y.extend(d.y.unwrap());
        }
        nonneg::metrics::roc_auc(&logits, &y).unwrap()
    }

    #[test]
    fn one_rank_over_shards_is_plain_streaming_to_the_bit() {
        let dir = tempdir();
        let (pattern, _) = shards(dir.path());
        let (plain, one) = (
            path_in(dir.path(), "plain.st"),
            path_in(dir.path(), "one.st"),
        );
        train_streaming(&pattern, &plain);
        let mut args = shard_args(&pattern);
        args.extend(["-q", "--out", &one]);
        train_ranks(1, &args);
        assert!(std::fs::read(&plain).unwrap() == std::fs::read(&one).unwrap());
    }

    #[test]
    fn two_ranks_read_their_own_shards_and_learn_as_one_process_streaming() {
        let dir = tempdir();
        let (pattern, rows) = shards(dir.path());
        let (plain, two, again) = (
            path_in(dir.path(), "plain.st"),
            path_in(dir.path(), "two.st"),
            path_in(dir.path(), "again.st"),
        );
        train_streaming(&pattern, &plain);
        let mut args = shard_args(&pattern);
        args.extend(["--out", &two]);
        let err = train_ranks(2, &args);
        // Rank r's statistics pass read shards r, r + 2 and r + 4 of the 6 training shards.
        for r in 0..2 {
            let own: usize = rows[..6].iter().skip(r).step_by(2).sum();
            let line = format!("rank {r} of 2: 3 training shards, {own} rows");
            assert!(err.contains(&line), "{line}: {err}");
        }
        assert!(err.contains("communication: 2 ranks"), "{err}");
        args.push("-q");
        *args.iter_mut().find(|a| **a == two).unwrap() = &again;
        train_ranks(2, &args);
        let bytes = |p: &str| std::fs::read(p).unwrap();
        assert!(bytes(&two) == bytes(&again), "two runs differ");
        let (one, both) = (valid_auc(&plain, dir.path()), valid_auc(&two, dir.path()));
        eprintln!("valid AUC: one process {one:.4}, two ranks {both:.4}");
        assert!(one > 0.8, "the task is learnt: {one}");
        assert!((one - both).abs() <= SHARD_AUC_TOLERANCE, "{one} vs {both}");
    }

    #[test]
    fn a_bad_shard_ends_every_rank_and_dense_scalings_add_up_over_ranks() {
        let dir = tempdir();
        let (pattern, _) = shards(dir.path());
        let out = path_in(dir.path(), "m.st");
        // Shard 3 is rank 1's (of 2): its error is rank 1's, and every rank ends.
        std::fs::write(path_in(dir.path(), "part-3.svm"), "1 7:1\nnot a row\n").unwrap();
        let mut args = vec!["train", "--distributed"];
        args.extend(shard_args(&pattern));
        args.extend(["--out", &out]);
        let result = mpirun(2, &args);
        let err = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{err}");
        assert!(
            err.contains("error: rank 1 of 2: ") && err.contains("part-3.svm"),
            "{err}"
        );
        assert!(!err.contains("error: rank 0 of 2"), "{err}");
        assert!(!Path::new(&out).exists());
        // More ranks than training shards; dense scalings fitted on sums over all rows.
        let one = path_in(dir.path(), "part-0.svm");
        let fewer = vec!["--data", &one, "--stream"];
        let text = std::fs::read_to_string(common::spambase()).unwrap();
        let (header, rows) = text.split_once('\n').unwrap();
        let rows: Vec<&str> = rows.lines().collect();
        for k in 0..2 {
            let part: Vec<&str> = rows.iter().skip(k).step_by(2).copied().collect();
            let text = format!("{header}\n{}\n", part.join("\n"));
            std::fs::write(path_in(dir.path(), &format!("dense-{k}.csv")), text).unwrap();
        }
        let mut args = vec!["train", "--distributed", "--out", &out];
        args.extend(fewer);
        let result = mpirun(2, &args);
        let err = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{err}");
        assert!(err.contains("at least one training shard on each"), "{err}");
        // Dense scalings fitted on sums over all rows: the ranks' sums are added up, so the
        // scaler is one process's over the same shards (to rounding: other sum order).
        let dense = path_in(dir.path(), "dense-*.csv");
        let single = path_in(dir.path(), "single.st");
        for scale in ["standard", "log1p-standard", "minmax"] {
            let mut args = vec!["--data", &dense, "--scale", scale, "--epochs", "1", "-q"];
            args.extend(SPAMBASE_LABEL);
            let mut one = vec!["train", "--out", &single];
            one.extend(&args);
            run(&one);
            args.extend(["--out", &out]);
            train_ranks(2, &args);
            let (a, b) = (
                io::load(Path::new(&single)).unwrap(),
                io::load(Path::new(&out)).unwrap(),
            );
            assert_eq!(a.scaler.kind, b.scaler.kind);
            for (x, y) in [
                (&a.scaler.shift, &b.scaler.shift),
                (&a.scaler.mult, &b.scaler.mult),
            ] {
                assert_eq!(x.len(), 57);
                assert!(relative_gap(x, y) <= 1e-6, "{scale}: {x:?} vs {y:?}");
            }
        }
    }
}
