//! What training shows: one line per epoch when stderr is not a terminal (as here), none
//! with -q, and `--log FILE` keeps the same history as CSV either way.

mod common;

use common::{path_in, spambase, tempdir, train_spambase, SPAMBASE_LABEL};

/// The `--log` file's rows as (epoch, train loss, valid AUC).
fn log_rows(path: &str) -> Vec<(usize, f64, Option<f64>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "epoch,train_loss,valid_loss,valid_auc,lr,seconds"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 6, "{l}");
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[3].parse().ok(),
            )
        })
        .collect()
}

#[test]
fn epoch_lines_without_a_terminal_and_the_log_file() {
    let dir = tempdir();
    let data = spambase();
    let model = path_in(dir.path(), "m.safetensors");
    let log = path_in(dir.path(), "history.csv");
    let mut args = vec![
        "train",
        "--data",
        &data,
        "--out",
        &model,
        "--epochs",
        "3",
        "--log",
        &log,
        "--valid-fraction",
        "0.2",
    ];
    args.extend(SPAMBASE_LABEL);
    let out = common::run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    let rows = log_rows(&log);
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    for (epoch, loss, auc) in &rows {
        // The line on stderr shows the logged loss, rounded.
        let line = format!("epoch {epoch:>3}: train loss {loss:.4}");
        assert!(err.contains(&line), "{line} not in {err}");
        assert!(auc.is_some_and(|a| a > 0.5 && a <= 1.0), "{auc:?}");
    }

    // -q: no lines, the same log (training is deterministic).
    let quiet_log = path_in(dir.path(), "quiet.csv");
    let q = path_in(dir.path(), "q.safetensors");
    // (train_spambase passes -q.)
    let extra = [
        "--epochs",
        "3",
        "--log",
        &quiet_log,
        "--valid-fraction",
        "0.2",
    ];
    train_spambase(&data, &q, &extra);
    let losses = |r: &[(usize, f64, Option<f64>)]| r.iter().map(|x| x.1).collect::<Vec<_>>();
    assert_eq!(losses(&log_rows(&quiet_log)), losses(&rows));
    let mut args = vec!["train", "--data", &data, "--out", &q, "--epochs", "1", "-q"];
    args.extend(SPAMBASE_LABEL);
    let out = common::run(&args);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("epoch"));
}
