//! Training batches from streamed shards. Each epoch the shard order is shuffled (by the
//! seed), rows are read in that order into a window of `shuffle_buffer` rows, the window
//! is permuted by the run's shuffle stream, and its rows are batched in that order; the
//! permutation of one window is the previous window's permuted again, as in-memory
//! training permutes the previous epoch's order. So with one window holding all rows and
//! the shards in their given order, training sees exactly in-memory training's batches.

use super::{clear, empty, push_row, ShardReader, Shards, Stats, StreamOptions};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Mlp;
use crate::rng::Rng;
use crate::train::{BatchSource, TrainConfig, ValidSource};
use std::borrow::Cow;
use std::path::PathBuf;

/// Every rank's validation logits and labels from this rank's, concatenated in rank
/// order, on every rank.
pub type GatherScores = fn(&[f32], &[f32]) -> (Vec<f32>, Vec<f32>);

/// A rank's part in data-parallel training over shards: each rank streams its own shards
/// and contributes to every step a share of the global batch in proportion to its rows,
/// so that the steps of an epoch are the same on every rank and each rank's last row
/// falls in the epoch's last step.
#[derive(Clone, Debug)]
pub struct RankPart {
    pub rank: usize,
    /// The training rows of every rank's shards, in rank order.
    pub rows: Vec<usize>,
    /// Sends rank 0's rows to every rank (bias centring draws from rank 0's first window).
    pub broadcast: fn(&mut Dataset),
    /// Gathers the validation scores (each rank scores its share of the validation shards).
    pub gather: GatherScores,
}

impl RankPart {
    /// The shards of `paths` that rank `rank` of `ranks` reads: every `ranks`-th from its
    /// own rank on (a fixed assignment, so a node may hold only its own shards).
    pub fn own(paths: &[PathBuf], rank: usize, ranks: usize) -> Vec<PathBuf> {
        paths.iter().skip(rank).step_by(ranks).cloned().collect()
    }

    /// This rank's shards of `paths`.
    pub fn mine(&self, paths: &[PathBuf]) -> Vec<PathBuf> {
        Self::own(paths, self.rank, self.rows.len())
    }

    /// This rank's rows among the first `done` rows of the epoch (all ranks together).
    fn share(&self, done: usize) -> usize {
        let total: usize = self.rows.iter().sum();
        let mine = self.rows[self.rank] as u128 * done.min(total) as u128;
        (mine / total.max(1) as u128) as usize
    }

    /// This rank's rows in batch `bi` of `size` rows (all ranks together).
    pub fn batch_rows(&self, bi: usize, size: usize) -> usize {
        self.share((bi + 1) * size) - self.share(bi * size)
    }
}

/// A [`BatchSource`] over the training shards.
pub struct StreamBatches {
    shards: Shards,
    stats: Stats,
    opts: StreamOptions,
    /// Rows in the window: the shuffle buffer, or fewer when the data has fewer.
    window_rows: usize,
    shard_order: Vec<usize>,
    shard_rng: Rng,
    reader: Option<ShardReader>,
    /// The shard being read into the window, and its next row.
    shard: Option<(Dataset, usize)>,
    window: Dataset,
    /// The next position in the window's permutation.
    next: usize,
    batch: Dataset,
    identity: Vec<usize>,
    /// Rows handed out this epoch.
    served: usize,
    /// This rank's part, in data-parallel training.
    part: Option<RankPart>,
}

impl StreamBatches {
    /// Batches over `shards` (read with `stats.opts`, scaled) that `stats` describes.
    pub fn new(shards: Shards, stats: Stats, opts: StreamOptions, seed: u64) -> Result<Self> {
        if opts.shuffle_buffer == 0 {
            return Err(Error::invalid(
                "the `shuffle_buffer` option must be at least 1 row, got 0",
            ));
        }
        let window_rows = opts.shuffle_buffer.min(stats.rows);
        Ok(StreamBatches {
            window: empty(&shards.schema),
            batch: empty(&shards.schema),
            shard_order: (0..shards.paths.len()).collect(),
            shard_rng: Rng::new(seed ^ 0x5348_4152_4453_2121),
            shards,
            stats,
            opts,
            window_rows,
            reader: None,
            shard: None,
            next: 0,
            identity: Vec::new(),
            served: 0,
            part: None,
        })
    }

    /// These batches as `part` of a data-parallel run (`stats` are then all ranks').
    pub fn with_part(mut self, part: RankPart) -> Self {
        self.window_rows = self.opts.shuffle_buffer.min(part.rows[part.rank]);
        self.part = Some(part);
        self
    }

    /// The training rows this process reads.
    fn own_rows(&self) -> usize {
        self.part
            .as_ref()
            .map_or(self.stats.rows, |p| p.rows[p.rank])
    }

    /// A reader over the shards in the current shard order.
    fn start_reader(&mut self) {
        let paths = self
            .shard_order
            .iter()
            .map(|&i| self.shards.paths[i].clone());
        self.reader = None; // ends the previous epoch's thread first
        self.reader = Some(self.shards.reader(paths.collect(), self.opts.read_ahead));
        self.shard = None;
    }

    /// Refills the window with the next rows of the epoch; false when none are left.
    fn fill_window(&mut self) -> Result<bool> {
        clear(&mut self.window);
        while self.window.rows() < self.window_rows {
            let exhausted = self.shard.as_ref().is_none_or(|(d, r)| *r >= d.rows());
            if exhausted {
                let reader = self.reader.as_mut().expect("an epoch was started");
                match reader.next_shard() {
                    Some((_, shard)) => self.shard = Some((shard?, 0)),
                    None => break,
                }
                continue;
            }
            let (d, r) = self.shard.as_mut().expect("checked above");
            push_row(&mut self.window, d, *r);
            *r += 1;
        }
        Ok(self.window.rows() > 0)
    }
}

impl BatchSource for StreamBatches {
    fn rows(&self) -> usize {
        self.stats.rows
    }
    fn shape(&self) -> (usize, bool, usize) {
        let s = &self.shards.schema;
        (s.cols, s.sparse, s.n_labels)
    }
    fn pos_weights(&self, cfg: &TrainConfig) -> Result<Vec<f32>> {
        let s = &self.stats;
        crate::train::pos_weights_of_counts(cfg, &s.positives, s.rows, &s.schema.label_names)
    }
    fn feature_max(&self) -> Vec<f32> {
        let s = &self.shards.schema;
        let scale = |j: usize, v: f32| self.shards.scaler.value(j, v, s.sparse);
        let max = self.stats.feature_max.iter().enumerate();
        max.map(|(j, &v)| scale(j, v)).collect()
    }
    /// The first window of the shards in their given order, before any shuffling.
    /// In data-parallel training, rank 0's, on every rank.
    fn first_rows(&mut self) -> Result<Cow<'_, Dataset>> {
        clear(&mut self.window);
        if self.part.as_ref().is_none_or(|p| p.rank == 0) {
            self.start_reader();
            self.fill_window()?;
            self.reader = None;
        }
        if let Some(p) = &self.part {
            (p.broadcast)(&mut self.window);
        }
        Ok(Cow::Borrowed(&self.window))
    }
    fn order_len(&self) -> usize {
        self.window_rows
    }
    fn start_epoch(&mut self, order: &mut [usize], _: &mut Rng) -> Result<()> {
        if self.opts.shuffle_shards {
            self.shard_rng.shuffle(&mut self.shard_order);
        }
        self.start_reader();
        self.next = order.len();
        self.served = 0;
        Ok(())
    }
    fn batch<'a>(
        &'a mut self,
        order: &'a mut [usize],
        rng: &mut Rng,
        bi: usize,
        size: usize,
    ) -> Result<(&'a Dataset, &'a [usize])> {
        let size = self.part.as_ref().map_or(size, |p| p.batch_rows(bi, size));
        clear(&mut self.batch);
        while self.batch.rows() < size {
            if self.next >= order.len() {
                if !self.fill_window()? {
                    break;
                }
                rng.shuffle(order);
                self.next = 0;
            }
            let r = order[self.next];
            self.next += 1;
            if r < self.window.rows() {
                push_row(&mut self.batch, &self.window, r);
            }
        }
        let got = self.batch.rows();
        self.served += got;
        if (got == 0 && size > 0) || self.served > self.own_rows() {
            return Err(Error::invalid(format!(
                "the training shards changed while training: an epoch gave {} rows, the \
                 statistics pass counted {}",
                self.served,
                self.own_rows()
            )));
        }
        if self.identity.len() < got {
            self.identity = (0..got).collect();
        }
        Ok((&self.batch, &self.identity[..got]))
    }
}

/// Validation shards, scored shard by shard: memory holds one shard and the logits and
/// labels of all rows (4 bytes each per label).
pub struct StreamValid {
    pub shards: Shards,
    pub read_ahead: usize,
    /// Rows scored by the last pass.
    pub rows: usize,
    /// Data-parallel training: all ranks' logits and labels from this rank's
    /// ([`RankPart::gather`]).
    pub gather: Option<GatherScores>,
}

impl ValidSource for StreamValid {
    fn score(&mut self, mlp: &Mlp) -> Result<(Vec<f32>, Vec<f32>)> {
        let (mut logits, mut y) = (Vec::new(), Vec::new());
        let mut reader = self
            .shards
            .reader(self.shards.paths.clone(), self.read_ahead);
        while let Some((_, shard)) = reader.next_shard() {
            let d = shard?;
            logits.extend(mlp.logits(&d.x));
            y.extend_from_slice(d.y.as_deref().expect("shards are read with labels"));
        }
        if let Some(gather) = self.gather {
            (logits, y) = gather(&logits, &y);
        }
        self.rows = y.len() / mlp.n_labels().max(1);
        Ok((logits, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(rank: usize, rows: &[usize]) -> RankPart {
        RankPart {
            rank,
            rows: rows.to_vec(),
            broadcast: |_| {},
            gather: |l, y| (l.to_vec(), y.to_vec()),
        }
    }

    #[test]
    fn ranks_share_each_batch_in_proportion_and_use_all_their_rows() {
        let rows = [100, 37, 0, 250];
        let (total, size) = (387usize, 32);
        let mut used = [0; 4];
        for bi in 0..total.div_ceil(size) {
            let got: Vec<usize> = (0..4)
                .map(|r| part(r, &rows).batch_rows(bi, size))
                .collect();
            let want = size.min(total - bi * size);
            let sum: usize = got.iter().sum();
            assert!(sum.abs_diff(want) < 4, "batch {bi}: {got:?}");
            used.iter_mut().zip(&got).for_each(|(u, g)| *u += g);
        }
        assert_eq!(used, rows, "every rank's last row falls in the last batch");
        let one: Vec<usize> = (0..13)
            .map(|bi| part(0, &[387]).batch_rows(bi, 32))
            .collect();
        let mut plain = vec![32; 12];
        plain.push(3);
        assert_eq!(one, plain, "one rank: the batches of one process");
    }
}
