//! Progress on stderr, kept apart from the work: the library reports (`Progress`), this
//! renders. On a terminal a bar (and a spinner for steps that report nothing until done);
//! elsewhere (CI logs, redirected stderr) one plain line per epoch, since a bar there is
//! invisible; nothing with --quiet. `--log FILE` keeps the epoch history as CSV.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nonneg::train::{EpochReport, Progress};
use std::path::PathBuf;
use std::time::Duration;

/// Training progress: a bar on a terminal, epoch lines elsewhere, and the CSV history.
pub struct TrainProgress {
    bar: Option<ProgressBar>,
    /// Print each epoch's line when there is no bar to print it above.
    lines: bool,
    log: Option<EpochLog>,
}

impl TrainProgress {
    /// `epoch_lines`: whether a run without a terminal prints a line per epoch (the demo,
    /// which trains several models and prints their tables, does not).
    pub fn new(quiet: bool, epoch_lines: bool) -> Self {
        let target = ProgressDrawTarget::stderr();
        let terminal = !target.is_hidden();
        let bar = (!quiet && terminal).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), target);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            b
        });
        TrainProgress {
            bar,
            lines: !quiet && !terminal && epoch_lines,
            log: None,
        }
    }

    /// Also keeps the epoch history in `path` as CSV, rewritten (atomically) after every
    /// epoch, so it is complete whenever it is read. The header is written at once: a path
    /// that cannot be written fails before training, not after it.
    pub fn log_to(&mut self, path: Option<PathBuf>) -> Result<()> {
        let Some(path) = path else { return Ok(()) };
        let text = String::from("epoch,train_loss,valid_loss,valid_auc,lr,seconds\n");
        nonneg::atomic::write_bytes(&path, text.as_bytes())
            .map_err(|e| anyhow::Error::new(e).context("--log"))?;
        self.log = Some(EpochLog {
            path,
            text,
            error: None,
        });
        Ok(())
    }

    pub fn observe(&mut self, p: Progress) {
        if let Progress::Epoch(r) = &p {
            if let Some(log) = &mut self.log {
                log.push(r);
            }
            if self.lines {
                // Best effort: a progress line that cannot be written is not an error.
                let _ = super::errln!("{}", r.line());
            }
        }
        let Some(b) = &self.bar else { return };
        match p {
            Progress::Start { epochs, batches } => b.set_length((epochs * batches) as u64),
            Progress::Batch { epoch, loss, .. } => {
                b.set_prefix(format!("epoch {}", epoch + 1));
                b.inc(1);
                b.set_message(format!("loss {loss:.4}"));
            }
            Progress::Epoch(r) => b.println(r.line()),
        }
    }

    /// Clears the bar; an error writing the log surfaces here.
    pub fn finish(self) -> Result<()> {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        match self.log.and_then(|l| l.error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The `--log` file: the history so far, and the first error writing it.
struct EpochLog {
    path: PathBuf,
    text: String,
    error: Option<anyhow::Error>,
}

impl EpochLog {
    fn push(&mut self, r: &EpochReport) {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        self.text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.epoch,
            r.train_loss,
            opt(r.valid_loss),
            opt(r.valid_auc),
            r.lr,
            r.seconds
        ));
        if self.error.is_none() {
            if let Err(e) = nonneg::atomic::write_bytes(&self.path, self.text.as_bytes()) {
                self.error = Some(anyhow::Error::new(e).context("--log"));
            }
        }
    }
}

/// A spinner with elapsed time for a step that reports nothing until it is done (an
/// attack, featurizing a corpus); only on a terminal and without --quiet.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn start(quiet: bool, message: impl Into<String>) -> Self {
        let target = ProgressDrawTarget::stderr();
        if quiet || target.is_hidden() {
            return Spinner(None);
        }
        let s = ProgressBar::with_draw_target(None, target);
        s.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("static template"),
        );
        s.set_message(message.into());
        s.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(s))
    }

    pub fn finish(self) {
        if let Some(s) = self.0 {
            s.finish_and_clear();
        }
    }
}
