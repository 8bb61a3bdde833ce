//! Data-parallel training over MPI (the `distributed` feature): every rank holds the same
//! network and walks the same shuffled batches; each takes a contiguous slice of every
//! batch, and the gradients of the slices are summed before the same update runs on every
//! rank.
//!
//! Sums are formed at rank 0 in rank order and broadcast (MPI's own all-reduce may add in
//! any order), so a run is the same to the bit from one time to the next; with one rank it
//! is the single-process run to the bit. The sparse first layer (and skip connection) send
//! only the rows of the features their slice touched: rank 0 merges them by feature and
//! broadcasts the union's rows.
//!
//! Over streamed shards ([`Session::own_batches`]) each rank instead reads its own shards
//! and brings its own rows to every step ([`crate::data::stream::RankPart`]): the sums are
//! the same, without slicing. The helpers below share what the ranks must agree on: the
//! statistics pass ([`share_stats`]), bias centring's rows ([`broadcast_rows`]) and the
//! validation scores ([`gather_scores`]).
//!
//! MPI lives for the [`Session`]; a [`super::Trainer`] made while one is open is a rank of
//! it. MPI calls come from the thread that started the session only.

use super::trainer::SparseRows;
use super::update::ExtraRows;
use super::TrainConfig;
use crate::data::stream::stats::Partial;
use crate::data::stream::Stats;
use crate::data::{Dataset, Features};
use crate::error::{Error, Result};
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Whether a session is open (MPI is initialised and not yet finalised).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether this process is a rank other than 0 of an open session (it writes no files).
static FOLLOWER: AtomicBool = AtomicBool::new(false);
/// Whether each rank's batches are its own rows (streamed shards), not a shared batch's.
static OWN_BATCHES: AtomicBool = AtomicBool::new(false);
/// Traffic counters of the open session (see [`Traffic`]).
static STEPS: AtomicU64 = AtomicU64::new(0);
static DENSE_BYTES: AtomicU64 = AtomicU64::new(0);
static SPARSE_BYTES: AtomicU64 = AtomicU64::new(0);
static UNION_ROWS: AtomicU64 = AtomicU64::new(0);

/// MPI, initialised for this process until dropped (which finalises it).
pub struct Session {
    universe: Universe,
    rank: usize,
    size: usize,
}

impl Session {
    /// Initialises MPI: a process started by `mpirun -np K` becomes one of K ranks; one
    /// started alone is the only rank.
    pub fn start() -> Result<Session> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| Error::invalid("MPI is already initialised in this process"))?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        for counter in [&STEPS, &DENSE_BYTES, &SPARSE_BYTES, &UNION_ROWS] {
            counter.store(0, Ordering::Relaxed);
        }
        OWN_BATCHES.store(false, Ordering::Release);
        FOLLOWER.store(rank > 0, Ordering::Release);
        ACTIVE.store(true, Ordering::Release);
        Ok(Session {
            universe,
            rank,
            size,
        })
    }

    /// This process's rank, 0..size.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// From now on each rank's batches are its own rows (of its own shards), summed
    /// without slicing: a step's batch is all ranks' rows together.
    pub fn own_batches(&self) {
        OWN_BATCHES.store(true, Ordering::Release);
    }

    /// Ends every rank at once with exit code `code` (after an error on this one, which
    /// the others would otherwise wait for forever).
    pub fn abort(&self, code: i32) -> ! {
        self.universe.world().abort(code)
    }

    /// What the steps so far sent and received.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            ranks: self.size,
            steps: STEPS.load(Ordering::Relaxed),
            dense_bytes: DENSE_BYTES.load(Ordering::Relaxed),
            sparse_bytes: SPARSE_BYTES.load(Ordering::Relaxed),
            union_rows: UNION_ROWS.load(Ordering::Relaxed),
        }
    }
}

/// Whether this process writes the run's files: the only process, or rank 0 of a session.
/// Every rank holds the same network and optimizer state after each step, so rank 0's
/// checkpoint is every rank's, and all of them resume from it.
pub fn writes_files() -> bool {
    !FOLLOWER.load(Ordering::Acquire)
}

impl Drop for Session {
    fn drop(&mut self) {
        FOLLOWER.store(false, Ordering::Release);
        ACTIVE.store(false, Ordering::Release);
    }
}

/// Communication of a run: bytes through rank 0 (every message goes to or from it), which
/// is the whole job's traffic.
#[derive(Clone, Debug, Serialize)]
pub struct Traffic {
    pub ranks: usize,
    pub steps: u64,
    /// Dense gradients (and the loss): gathered to rank 0, the sums broadcast.
    pub dense_bytes: u64,
    /// Sparse-fed rows: each rank's touched features and rows in, the union's out.
    pub sparse_bytes: u64,
    /// Rows in the unions, summed over steps.
    pub union_rows: u64,
}

impl Traffic {
    /// The per-step figures in one line.
    pub fn line(&self) -> String {
        let per = |b: u64| b as f64 / self.steps.max(1) as f64;
        let mut line = format!(
            "{} ranks, {} steps: {:.0} bytes per step (dense {:.0}",
            self.ranks,
            self.steps,
            per(self.dense_bytes + self.sparse_bytes),
            per(self.dense_bytes)
        );
        if self.sparse_bytes > 0 {
            line += &format!(
                ", sparse {:.0}: {:.1} rows",
                per(self.sparse_bytes),
                per(self.union_rows)
            );
        }
        line + ")"
    }
}

/// What data-parallel training cannot do (yet): refused rather than done wrong.
pub fn check_supported(cfg: &TrainConfig) -> Result<()> {
    if cfg.robust.as_ref().is_some_and(|r| r.active()) {
        return Err(Error::invalid(
            "verified training (a robust budget above 0) is not supported in data-parallel \
             training: its bound's extra rows are per rank",
        ));
    }
    Ok(())
}

/// A trainer's part in the open session: its slice of each batch and the sums.
pub(super) struct Reducer {
    rank: usize,
    size: usize,
    /// Each rank's batches are its own rows ([`Session::own_batches`]).
    own: bool,
    /// Rank 0's receive buffer, kept between steps.
    gathered: Vec<f32>,
}

impl Reducer {
    /// A rank of the open session, if there is one.
    pub(super) fn if_active() -> Option<Reducer> {
        ACTIVE.load(Ordering::Acquire).then(|| {
            let world = SimpleCommunicator::world();
            Reducer {
                rank: world.rank() as usize,
                size: world.size() as usize,
                own: OWN_BATCHES.load(Ordering::Acquire),
                gathered: Vec::new(),
            }
        })
    }

    /// This rank's rows of a step and the step's rows on all ranks together: a shared
    /// batch's contiguous slice (empty when the batch has fewer rows than there are ranks
    /// and this one is left out), or with [`Session::own_batches`] all of `batch`.
    pub(super) fn part<'r>(&self, batch: &'r [usize]) -> (&'r [usize], usize) {
        if !self.own {
            let n = batch.len();
            return (
                &batch[self.rank * n / self.size..(self.rank + 1) * n / self.size],
                n,
            );
        }
        let mut rows = [batch.len() as u64];
        fold_at_root(&mut rows, &mut Vec::new(), |s, v| *s += v);
        DENSE_BYTES.fetch_add(16 * (self.size as u64 - 1), Ordering::Relaxed);
        (batch, rows[0] as usize)
    }

    /// Replaces `parts` (each rank's, in the same shapes) and `loss` by their sums over
    /// ranks; returns the summed loss.
    pub(super) fn sum_dense<'g>(
        &mut self,
        parts: impl Iterator<Item = &'g mut Vec<f32>>,
        loss: f64,
    ) -> f64 {
        let mut parts: Vec<&mut Vec<f32>> = parts.collect();
        let mut flat: Vec<f32> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        fold_at_root(&mut flat, &mut self.gathered, |s, v| *s += v);
        let mut offset = 0;
        for p in parts.iter_mut() {
            let n = p.len();
            p.copy_from_slice(&flat[offset..offset + n]);
            offset += n;
        }
        let mut loss = [loss];
        fold_at_root(&mut loss, &mut Vec::new(), |s, v| *s += v);
        let bytes = (flat.len() * 4 + 8) as u64 * 2 * (self.size as u64 - 1);
        DENSE_BYTES.fetch_add(bytes, Ordering::Relaxed);
        STEPS.fetch_add(1, Ordering::Relaxed);
        loss[0]
    }

    /// All ranks' sparse-fed gradient rows summed by feature, over the union of their
    /// features; `[w1, w2]`: the first layer's and skip connection's row widths (0: none).
    pub(super) fn sum_sparse(&mut self, mine: SparseRows, [w1, w2]: [usize; 2]) -> SparseRows {
        let world = SimpleCommunicator::world();
        let root = world.process_at_rank(0);
        let features = mine.first.features;
        let tensors = [(mine.first.grads, w1), (mine.skip.grads, w2)];
        let tensors = &tensors[..if w2 > 0 { 2 } else { 1 }];
        let mut size = [0u64];
        let (mut union, mut sums) = (Vec::new(), Vec::new());
        if self.rank == 0 {
            let mut counts = vec![0 as Count; self.size];
            root.gather_into_root(&(features.len() as Count), &mut counts[..]);
            let all = gather_varcount(&root, &features, &counts);
            let order = by_feature(&all);
            for (rows, width) in tensors {
                let row_counts: Vec<Count> = counts.iter().map(|&c| c * *width as Count).collect();
                let all_rows = gather_varcount(&root, rows, &row_counts);
                let summed;
                (union, summed) = sum_by_feature(&all, &order, &all_rows, *width);
                sums.push(summed);
            }
            size[0] = union.len() as u64;
            // In: every other rank's count, features and rows; out: the union's, to each.
            let width: usize = tensors.iter().map(|t| t.1).sum();
            let received = 4 * (self.size - 1) + (all.len() - features.len()) * 4 * (1 + width);
            let sent = (8 + union.len() * 4 * (1 + width)) * (self.size - 1);
            SPARSE_BYTES.fetch_add((received + sent) as u64, Ordering::Relaxed);
        } else {
            root.gather_into(&(features.len() as Count));
            root.gather_varcount_into(&features[..]);
            for (rows, _) in tensors {
                root.gather_varcount_into(&rows[..]);
            }
            sums = vec![Vec::new(); tensors.len()];
        }
        root.broadcast_into(&mut size[..]);
        union.resize(size[0] as usize, 0);
        root.broadcast_into(&mut union[..]);
        for (sum, (_, width)) in sums.iter_mut().zip(tensors) {
            sum.resize(union.len() * width, 0.0);
            root.broadcast_into(&mut sum[..]);
        }
        UNION_ROWS.fetch_add(union.len() as u64, Ordering::Relaxed);
        let mut sums = sums.into_iter();
        let first = sums.next().unwrap_or_default();
        let skip = match sums.next() {
            Some(grads) => ExtraRows {
                features: union.clone(),
                grads,
            },
            None => ExtraRows::default(),
        };
        SparseRows {
            first: ExtraRows {
                features: union,
                grads: first,
            },
            skip,
        }
    }
}

/// Rank 0's side of a gather of `counts[r]` values from each rank `r`, in rank order.
fn gather_varcount<T, R>(root: &R, mine: &[T], counts: &[Count]) -> Vec<T>
where
    T: Equivalence + Default + Clone,
    R: Root,
{
    let displs: Vec<Count> = counts
        .iter()
        .scan(0, |at, &c| {
            *at += c;
            Some(*at - c)
        })
        .collect();
    let total = counts.iter().sum::<Count>() as usize;
    let mut all = vec![T::default(); total];
    let mut partition = PartitionMut::new(&mut all[..], counts, &displs[..]);
    root.gather_varcount_into_root(mine, &mut partition);
    all
}

/// The positions of `features` (ranks' sorted runs, concatenated in rank order) sorted
/// by feature, each feature's in rank order.
fn by_feature(features: &[u32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..features.len()).collect();
    order.sort_by_key(|&i| features[i]); // stable
    order
}

/// The union of `features` (in `order`, from [`by_feature`]) and its rows of `width`: each
/// the first rank's row plus the later ranks' in rank order.
fn sum_by_feature(
    features: &[u32],
    order: &[usize],
    rows: &[f32],
    width: usize,
) -> (Vec<u32>, Vec<f32>) {
    let (mut union, mut sums) = (Vec::new(), Vec::<f32>::new());
    for &i in order {
        let row = &rows[i * width..(i + 1) * width];
        if union.last() == Some(&features[i]) {
            let at = sums.len() - width;
            sums[at..].iter_mut().zip(row).for_each(|(s, v)| *s += v);
        } else {
            union.push(features[i]);
            sums.extend_from_slice(row);
        }
    }
    (union, sums)
}

/// Replaces `values` on every rank by `add` of all ranks' values, formed at rank 0 in rank
/// order (`gathered`: rank 0's buffer for all ranks' values).
fn fold_at_root<T>(values: &mut [T], gathered: &mut Vec<T>, add: impl Fn(&mut T, T))
where
    T: Equivalence + Default + Copy,
{
    let world = SimpleCommunicator::world();
    let root = world.process_at_rank(0);
    if world.rank() == 0 {
        let n = values.len();
        gathered.resize(n * world.size() as usize, T::default());
        root.gather_into_root(&*values, &mut gathered[..]);
        for part in gathered[n..].chunks_exact(n.max(1)) {
            values.iter_mut().zip(part).for_each(|(s, &v)| add(s, v));
        }
    } else {
        root.gather_into(&*values);
    }
    root.broadcast_into(values);
}

/// Every rank's `mine`, concatenated in rank order, on every rank.
fn gather_all<T: Equivalence + Default + Clone>(mine: &[T]) -> Vec<T> {
    let world = SimpleCommunicator::world();
    let root = world.process_at_rank(0);
    let mut counts = vec![0 as Count; world.size() as usize];
    let mut all = if world.rank() == 0 {
        root.gather_into_root(&(mine.len() as Count), &mut counts[..]);
        gather_varcount(&root, mine, &counts)
    } else {
        root.gather_into(&(mine.len() as Count));
        root.gather_varcount_into(mine);
        Vec::new()
    };
    broadcast_vec(&mut all);
    all
}

/// Rank 0's `values` on every rank.
fn broadcast_vec<T: Equivalence + Default + Clone>(values: &mut Vec<T>) {
    let world = SimpleCommunicator::world();
    let root = world.process_at_rank(0);
    let mut len = [values.len() as u64];
    root.broadcast_into(&mut len[..]);
    values.resize(len[0] as usize, T::default());
    root.broadcast_into(&mut values[..]);
}

/// Rank 0's rows (of every rank's shape) on every rank.
pub fn broadcast_rows(d: &mut Dataset) {
    match &mut d.x {
        Features::Dense(m) => {
            broadcast_vec(&mut m.values);
            m.rows = m.values.len() / m.cols.max(1);
        }
        Features::Sparse(m) => {
            broadcast_vec(&mut m.indptr);
            broadcast_vec(&mut m.indices);
            broadcast_vec(&mut m.values);
            m.rows = m.indptr.len() - 1;
        }
    }
    if let Some(y) = &mut d.y {
        broadcast_vec(y);
    }
}

/// Every rank's validation logits and labels, in rank order, on every rank.
pub fn gather_scores(logits: &[f32], y: &[f32]) -> (Vec<f32>, Vec<f32>) {
    (gather_all(logits), gather_all(y))
}

/// Makes each rank's statistics pass (over its own shards) the run's, on every rank
/// alike: the rows, positives, widths and other parts added up in rank order, the
/// feature maxima taken over ranks. `regather` reads this rank's shards again with
/// 0-based svmlight indices, when another rank's turned out 0-based and this one's not
/// (as one file of all shards would be read). Returns every rank's training rows.
pub fn share_stats(
    stats: &mut Stats,
    regather: impl FnOnce() -> Result<Stats>,
    auto_base: bool,
) -> Result<Vec<usize>> {
    use crate::data::IndexBase;
    let mut parts = exchange(&stats.partial())?;
    let bases = |parts: &[Partial]| {
        parts
            .iter()
            .filter_map(|p| p.index_base)
            .collect::<Vec<_>>()
    };
    let zero = bases(&parts).contains(&IndexBase::Zero);
    if auto_base && zero && bases(&parts).contains(&IndexBase::One) {
        if stats.info.index_base == Some(IndexBase::One) {
            *stats = regather()?;
        }
        parts = exchange(&stats.partial())?;
    }
    let cols = parts.iter().map(|p| p.cols).max().unwrap_or(0);
    let mut max = stats.feature_max.clone();
    max.resize(cols, 0.0); // sparse: a narrower shard's missing features are zeros
    fold_at_root(&mut max, &mut Vec::new(), |m, v| *m = m.max(v));
    if zero {
        stats.opts.index_base = IndexBase::Zero;
        stats.info.index_base = Some(IndexBase::Zero);
    }
    stats.merge(&parts, max)?;
    // Every rank has the same width here (merge checks it), so the same number of sums.
    let sums = gather_all(&stats.fit_sums());
    stats.add_fit_sums(&sums, parts.len());
    Ok(parts.iter().map(|p| p.rows).collect())
}

/// Every rank's `mine`, in rank order, on every rank.
fn exchange(mine: &Partial) -> Result<Vec<Partial>> {
    let bytes = serde_json::to_vec(mine).map_err(|e| Error::invalid(e.to_string()))?;
    let lens = gather_all(&[bytes.len() as u64]);
    let all = gather_all(&bytes);
    let mut at = 0;
    lens.iter()
        .map(|&n| {
            let part = &all[at..at + n as usize];
            at += n as usize;
            serde_json::from_slice(part).map_err(|e| Error::invalid(e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_shared_features_in_rank_order() {
        // Rank 0 touched features 2 and 5, rank 1 features 1 and 5 (rows of width 2).
        let features = [2, 5, 1, 5];
        let rows = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 0.5, 0.25];
        let (union, sums) = sum_by_feature(&features, &by_feature(&features), &rows, 2);
        assert_eq!(union, vec![1, 2, 5]);
        assert_eq!(sums, vec![10.0, 20.0, 1.0, 2.0, 3.5, 4.25]);
    }
}
