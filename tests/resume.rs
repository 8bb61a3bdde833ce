//! Stopping and resuming training: the stop flag ends a run at the next batch, and a run
//! checkpointed, killed and resumed ends with the same model bytes as one never stopped.

mod common;

use common::{dataset, dense_normal, random_labels, sparse};
use nonneg::data::Dataset;
use nonneg::model::{io, NonNegMode};
use nonneg::optim::{OptimizerConfig, OptimizerKind, Schedule};
use nonneg::pipeline::{self, FitOptions};
use nonneg::rng::Rng;
use nonneg::train::checkpoint::Plan;
use nonneg::train::{Monitor, Preset, Progress, RobustConfig, TrainConfig};
use nonneg::Error;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// 90 rows of 6 N(0, 1) features with random labels.
fn small_dense() -> Dataset {
    small_dense_seeded(7)
}

fn small_dense_seeded(seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let x = dense_normal(90, 6, &mut rng);
    let y = random_labels(90, 1, &mut rng);
    dataset(x, y, 1)
}

/// 90 rows of 40 sparse non-negative features with random labels.
fn small_sparse() -> Dataset {
    let mut rng = Rng::new(8);
    let x = sparse(90, 40, 4, &mut rng);
    let y = random_labels(90, 1, &mut rng);
    dataset(x, y, 1)
}

/// A model's bytes.
fn bytes(opts: &FitOptions, data: &Dataset, valid: Option<&Dataset>) -> Vec<u8> {
    let fitted = pipeline::fit(opts, data, valid, &mut |_| {}).expect("trains");
    io::to_bytes(&fitted.model).unwrap()
}

fn plan(dir: &Path, every: Option<usize>, resume: bool) -> Plan {
    Plan {
        dir: dir.to_path_buf(),
        every,
        resume,
        context: String::new(),
    }
}

/// Trains with a checkpoint after every batch, stops after batch `k` (counted over the
/// run; after the last one the run ends by itself), resumes, and returns the final
/// model's bytes.
fn stop_and_resume(
    opts: &FitOptions,
    data: &Dataset,
    valid: Option<&Dataset>,
    k: usize,
    dir: &Path,
) -> Vec<u8> {
    let _ = std::fs::remove_dir_all(dir);
    let stop = Arc::new(AtomicBool::new(false));
    let mut first = opts.clone();
    first.stop = Some(stop.clone());
    first.checkpoint = Some(plan(dir, Some(1), false));
    let mut done = 0;
    let result = pipeline::fit(&first, data, valid, &mut |p| {
        if let Progress::Batch { .. } = p {
            done += 1;
            stop.store(done == k, Ordering::Relaxed);
        }
    });
    match result {
        Err(Error::Interrupted) | Ok(_) => {}
        Err(e) => panic!("{e}"),
    }
    let mut resumed = opts.clone();
    resumed.checkpoint = Some(plan(dir, None, true));
    bytes(&resumed, data, valid)
}

/// Stops and resumes at every batch boundary of the run; each must end with the bytes of
/// the uninterrupted run.
fn resumes_identically_everywhere(opts: &FitOptions, data: &Dataset, valid: Option<&Dataset>) {
    let mut batches = 0;
    let fitted = pipeline::fit(opts, data, valid, &mut |p| {
        batches += matches!(p, Progress::Batch { .. }) as usize;
    })
    .unwrap();
    let whole = io::to_bytes(&fitted.model).unwrap();
    let dir = common::tempdir();
    let ckpt = dir.path().join("ckpt");
    for k in 1..=batches {
        let b = stop_and_resume(opts, data, valid, k, &ckpt);
        assert!(
            b == whole,
            "stopped after batch {k} of {batches}: the model differs"
        );
    }
}

#[test]
fn dense_adam_cosine_resumes_identically_at_every_batch() {
    let mut opts = options();
    opts.config.schedule = Schedule::Cosine { min_lr: 1e-4 };
    opts.config.clip_grad_norm = Some(1.0);
    resumes_identically_everywhere(&opts, &small_dense(), None);
}

#[test]
fn sparse_adamw_reparametrised_step_schedule_resumes_identically_at_every_batch() {
    let mut opts = options();
    opts.config.optimizer = OptimizerConfig::new(OptimizerKind::Adamw, 0.01);
    opts.config.optimizer.weight_decay = 0.01;
    opts.config.nonneg_mode = NonNegMode::Softplus;
    opts.config.schedule = Schedule::Step {
        every_epochs: 1,
        gamma: 0.5,
    };
    resumes_identically_everywhere(&opts, &small_sparse(), None);
}

#[test]
fn sgd_momentum_with_early_stopping_resumes_identically_at_every_batch() {
    let mut opts = options();
    opts.config.optimizer = OptimizerConfig::new(OptimizerKind::Sgd, 0.05);
    opts.config.optimizer.momentum = 0.9;
    opts.config.optimizer.nesterov = true;
    opts.config.epochs = 8;
    opts.config.patience = Some(2);
    opts.config.monitor = Monitor::Auc;
    opts.config.threshold_fpr = Some(0.1);
    let (data, valid) = (small_dense(), small_dense_seeded(9));
    let whole = pipeline::fit(&opts, &data, Some(&valid), &mut |_| {}).unwrap();
    // Stopped early, from a best epoch before the last.
    let run = whole.report.epochs.len();
    assert!(run < 8 && whole.report.best_epoch < Some(run), "{run}");
    resumes_identically_everywhere(&opts, &data, Some(&valid));
}

#[test]
fn verified_training_resumes_identically_at_every_batch() {
    let mut opts = options();
    opts.config.robust = Some(RobustConfig {
        weight: 0.5,
        warmup_epochs: 2,
        crown: 0.0,
        ..RobustConfig::new(2)
    });
    resumes_identically_everywhere(&opts, &small_sparse(), None);
}

#[test]
fn dropout_resumes_identically_at_every_batch() {
    // The dropout generator's state is part of the checkpoint: without it a resumed run
    // would draw other masks.
    let mut opts = options();
    (opts.config.dropout, opts.config.input_dropout) = (0.3, 0.2);
    resumes_identically_everywhere(&opts, &small_sparse(), None);
    opts.config.input_dropout = 0.0;
    resumes_identically_everywhere(&opts, &small_dense(), None);
}

#[test]
fn resuming_with_other_data_or_options_is_refused() {
    let dir = common::tempdir();
    let ckpt = dir.path().join("ckpt");
    let data = small_dense();
    let mut opts = options();
    opts.checkpoint = Some(plan(&ckpt, None, false));
    bytes(&opts, &data, None);
    assert!(ckpt.join("checkpoint.safetensors").exists());
    opts.checkpoint = Some(plan(&ckpt, None, true));
    let mut other = opts.clone();
    other.config.optimizer.lr *= 2.0;
    for (o, d) in [(&other, small_dense()), (&opts, small_dense_seeded(3))] {
        let e = pipeline::fit(o, &d, None, &mut |_| {})
            .err()
            .expect("refused");
        assert!(e.to_string().contains("other data or options"), "{e}");
    }
    // The same data and options resume (here: the finished run, to the same model).
    assert_eq!(bytes(&opts, &data, None), bytes(&options(), &data, None));
}

#[test]
fn an_ensemble_resumes_identically_in_between_and_after_members() {
    // Every batch of 3 members: stops in member 0, between members (after a member's last
    // batch), in members 1 and 2; with early stopping and the merged model's threshold too.
    let mut opts = options();
    (opts.ensemble, opts.config.epochs) = (3, 2);
    resumes_identically_everywhere(&opts, &small_sparse(), None);
    opts.config.patience = Some(1);
    opts.config.monitor = Monitor::Auc;
    opts.config.threshold_fpr = Some(0.1);
    opts.ensemble = 2;
    resumes_identically_everywhere(&opts, &small_dense(), Some(&small_dense_seeded(9)));
}

#[test]
fn a_resumed_ensemble_trains_only_what_is_left() {
    // Stopped 2 batches into member 1 of 3 (6 batches each): the resume loads member 0,
    // continues member 1 and trains member 2. Checkpoints every 4 batches: member 0's last
    // one is 2 batches before its end, so only its kept result spares training them again.
    let mut opts = options();
    (opts.ensemble, opts.config.epochs) = (3, 1);
    let data = small_dense();
    let dir = common::tempdir();
    let ckpt = dir.path().join("ckpt");
    let whole = bytes(&opts, &data, None);
    assert!(stop_and_resume(&opts, &data, None, 8, &ckpt) == whole);
    assert!(ckpt.join("member-0/finished.safetensors").exists());
    let _ = std::fs::remove_dir_all(&ckpt);
    let stop = Arc::new(AtomicBool::new(false));
    let mut first = opts.clone();
    first.stop = Some(stop.clone());
    first.checkpoint = Some(plan(&ckpt, Some(4), false));
    let mut done = 0;
    let _ = pipeline::fit(&first, &data, None, &mut |p| {
        done += matches!(p, Progress::Batch { .. }) as usize;
        stop.store(done == 8, Ordering::Relaxed);
    });
    let mut resumed = opts.clone();
    resumed.checkpoint = Some(plan(&ckpt, None, true));
    let mut left = 0;
    let fitted = pipeline::fit(&resumed, &data, None, &mut |p| {
        left += matches!(p, Progress::Batch { .. }) as usize;
    })
    .unwrap();
    assert_eq!(left, 18 - 8);
    assert!(io::to_bytes(&fitted.model).unwrap() == whole);
}

#[test]
fn resuming_an_ensemble_with_other_data_or_options_is_refused() {
    let dir = common::tempdir();
    let ckpt = dir.path().join("ckpt");
    let data = small_dense();
    let mut opts = options();
    opts.ensemble = 2;
    // Stopped in member 1: member 0 finished, member 1 checkpointed.
    let whole = bytes(&opts, &data, None);
    assert!(stop_and_resume(&opts, &data, None, 30, &ckpt) == whole);
    opts.checkpoint = Some(plan(&ckpt, None, true));
    let mut other = opts.clone();
    other.config.optimizer.lr *= 2.0;
    let mut seed = opts.clone();
    seed.config.seed += 1;
    for (o, d) in [
        (&other, data.clone()),
        (&opts, small_dense_seeded(3)),
        (&seed, data.clone()),
    ] {
        let e = pipeline::fit(o, &d, None, &mut |_| {})
            .err()
            .expect("refused");
        assert!(e.to_string().contains("other data or options"), "{e}");
    }
    // The same ones resume (the finished ensemble, to the same model).
    assert!(bytes(&opts, &data, None) == whole);
}

fn options() -> FitOptions {
    let mut cfg = TrainConfig::new(vec![8], Preset::Monotone);
    cfg.epochs = 4;
    cfg.batch_size = 16;
    FitOptions::new(cfg)
}

#[test]
fn the_stop_flag_ends_training_before_the_next_batch() {
    let data = small_dense();
    let mut opts = options();
    let stop = Arc::new(AtomicBool::new(false));
    opts.stop = Some(stop.clone());
    let mut batches = 0;
    let result = pipeline::fit(&opts, &data, None, &mut |p| {
        if let Progress::Batch { .. } = p {
            batches += 1;
            if batches == 3 {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    assert!(matches!(result, Err(Error::Interrupted)));
    assert_eq!(batches, 3);
}

#[test]
fn an_unset_stop_flag_changes_no_bit() {
    let data = small_dense();
    let plain = pipeline::fit(&options(), &data, None, &mut |_| {}).unwrap();
    let mut opts = options();
    opts.stop = Some(Arc::new(AtomicBool::new(false)));
    let flagged = pipeline::fit(&opts, &data, None, &mut |_| {}).unwrap();
    assert_eq!(
        io::to_bytes(&plain.model).unwrap(),
        io::to_bytes(&flagged.model).unwrap()
    );
}

// ---------------------------------------------------------------------------------------
// kill -9 of `nonneg train`, then `--resume`.

/// The training command of the kill tests: Spambase with validation, early stopping and a
/// cosine schedule, a checkpoint every 2 batches into `ckpt`.
fn train_args(out: &str, ckpt: &str) -> Vec<String> {
    let mut args: Vec<String> = ["train", "--data", &common::spambase(), "--out", out, "-q"]
        .map(String::from)
        .to_vec();
    args.extend(common::SPAMBASE_LABEL.map(String::from));
    let rest = "--epochs 20 --hidden 32,16 --valid-fraction 0.2 --patience 6 \
                --lr-schedule cosine --checkpoint-every 2 --checkpoint";
    args.extend(rest.split(' ').map(String::from));
    args.push(ckpt.into());
    args
}

/// Starts training; kills it (SIGKILL) when `when` says so or it ends by itself;
/// returns whether it was killed.
fn kill_when(args: &[String], when: &mut dyn FnMut() -> bool) -> bool {
    let mut child = common::command().args(args).spawn().expect("nonneg starts");
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if when() {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Resumes the run in `ckpt` (the same flags plus --resume) and returns the model bytes.
fn resume(args: &[String], ckpt: &str, out: &str) -> Vec<u8> {
    let mut args = args.to_vec();
    args.extend(["--resume".into(), ckpt.into()]);
    common::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::read(out).unwrap()
}

/// The uninterrupted run's model bytes and wall time.
fn reference(dir: &Path) -> (Vec<u8>, std::time::Duration) {
    let out = common::path_in(dir, "whole.safetensors");
    let args = train_args(&out, &common::path_in(dir, "whole-ckpt"));
    let t0 = std::time::Instant::now();
    common::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    (std::fs::read(&out).unwrap(), t0.elapsed())
}

/// A pseudo-random fraction in [0.05, 0.95) that differs between runs.
fn random_fraction(salt: u64) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    0.05 + 0.9 * Rng::new(nanos ^ salt).uniform_f64()
}

#[test]
fn killed_runs_resume_to_the_same_model_bytes() {
    let dir = common::tempdir();
    let (whole, took) = reference(dir.path());
    let ckpt = common::path_in(dir.path(), "ckpt");
    let file = Path::new(&ckpt).join("checkpoint.safetensors");
    let out = common::path_in(dir.path(), "model.safetensors");
    let args = train_args(&out, &ckpt);
    // 1: as soon as the first checkpoint appears; 2: after it has been replaced 20 times;
    // 3: at a random moment, resumed, killed again at another, resumed.
    let mut seen = Vec::new();
    let kills: [&mut dyn FnMut() -> bool; 2] = [&mut || file.exists(), &mut || {
        if let Ok(m) = std::fs::metadata(&file).and_then(|m| m.modified()) {
            if seen.last() != Some(&m) {
                seen.push(m);
            }
        }
        seen.len() >= 20
    }];
    for (i, when) in kills.into_iter().enumerate() {
        let _ = std::fs::remove_dir_all(&ckpt);
        assert!(kill_when(&args, when), "kill {i} came after the run ended");
        assert!(
            resume(&args, &ckpt, &out) == whole,
            "kill {i}: the model differs"
        );
    }
    let _ = std::fs::remove_dir_all(&ckpt);
    let mut resuming = args.clone();
    resuming.extend(["--resume".into(), ckpt.clone()]);
    for (salt, args) in [(1, &args), (2, &resuming)] {
        let at = took.mul_f64(random_fraction(salt));
        let t0 = std::time::Instant::now();
        let killed = kill_when(args, &mut || t0.elapsed() >= at);
        eprintln!("killed at {at:?}: {killed}");
    }
    assert!(
        resume(&args, &ckpt, &out) == whole,
        "random kills: the model differs"
    );
}

#[test]
fn ctrl_c_saves_the_run_which_resumes_to_the_same_model_bytes() {
    let dir = common::tempdir();
    let (whole, _) = reference(dir.path());
    let ckpt = common::path_in(dir.path(), "ckpt");
    let file = Path::new(&ckpt).join("checkpoint.safetensors");
    let out = common::path_in(dir.path(), "model.safetensors");
    let args = train_args(&out, &ckpt);
    let child = common::command()
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while !file.exists() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("continue it with --resume"), "{err}");
    assert!(!Path::new(&out).exists());
    assert!(resume(&args, &ckpt, &out) == whole, "the model differs");
}
