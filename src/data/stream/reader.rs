//! The reader thread: loads shards in a given order ahead of their use, through a bounded
//! channel, so that parsing overlaps training and at most `read_ahead` loaded shards wait.

use crate::data::Dataset;
use crate::error::Result;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// Shards loaded by a background thread, in order; the first error ends the stream.
pub struct ShardReader<T: Send + 'static = Dataset> {
    rx: Option<Receiver<(PathBuf, Result<T>)>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> ShardReader<T> {
    /// Starts loading `paths` with `load`: one shard is loaded while the consumer holds
    /// another, and at most `read_ahead - 1` more wait in the channel (`read_ahead` >= 1).
    pub fn start<F>(paths: Vec<PathBuf>, read_ahead: usize, load: F) -> Self
    where
        F: Fn(&Path) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = sync_channel(read_ahead.max(1) - 1);
        let thread = std::thread::Builder::new()
            .name("nonneg-shards".into())
            .spawn(move || {
                for p in paths {
                    let shard = load(&p);
                    let failed = shard.is_err();
                    // A closed channel: the consumer stopped early.
                    if tx.send((p, shard)).is_err() || failed {
                        break;
                    }
                }
            })
            .expect("spawning the shard reader thread");
        ShardReader {
            rx: Some(rx),
            thread: Some(thread),
        }
    }

    /// The next shard and its path; `None` after the last.
    pub fn next_shard(&mut self) -> Option<(PathBuf, Result<T>)> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl<T: Send + 'static> Drop for ShardReader<T> {
    fn drop(&mut self) {
        // Closing the channel ends the thread at its next send.
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DenseMatrix, Features};
    use crate::error::Error;

    fn one_row(v: f32) -> Dataset {
        Dataset {
            x: Features::Dense(DenseMatrix {
                rows: 1,
                cols: 1,
                values: vec![v],
            }),
            y: Some(vec![0.0]),
            n_labels: 1,
            label_names: vec!["label".into()],
            feature_names: None,
            source: String::new(),
        }
    }

    #[test]
    fn shards_come_in_order_and_the_first_error_ends_the_stream() {
        let paths: Vec<PathBuf> = ["1", "2", "bad", "4"].iter().map(PathBuf::from).collect();
        let mut r = ShardReader::start(paths, 2, |p| {
            let s = p.to_string_lossy();
            s.parse::<f32>()
                .map(one_row)
                .map_err(|_| Error::format(p, "not a number"))
        });
        let mut got = Vec::new();
        while let Some((p, d)) = r.next_shard() {
            got.push((p.display().to_string(), d.is_ok()));
        }
        let want = [("1", true), ("2", true), ("bad", false)];
        let want: Vec<_> = want.iter().map(|(p, ok)| (p.to_string(), *ok)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn dropping_a_reader_early_ends_its_thread() {
        let paths: Vec<PathBuf> = (0..1000).map(|i| PathBuf::from(i.to_string())).collect();
        let mut r = ShardReader::start(paths, 1, |_| Ok(one_row(0.0)));
        assert!(r.next_shard().is_some());
        drop(r); // joins: would hang if the thread kept loading into a full channel
    }
}
