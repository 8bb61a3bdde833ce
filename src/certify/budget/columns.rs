//! The first layer, exact under a budget: for each column `c` of a matrix `M` (the first
//! kernel, plus the skip connection's column), the change of `x M[:, c]` is `sum_j
//! delta_j M[j, c]`, whose minimum over "at most `k` non-zero `delta_j in [0, d_j]`" is the
//! sum of the `k` most negative `d_j M[j, c]` (and its maximum the `k` most positive).
//!
//! Sparse rows: nearly every feature is absent and takes the same `d_j` in every row
//! (raw 0 -> cap), so each column's most negative (positive) absent contributions are
//! sorted once per model; a row walks its column's list skipping its own features, and
//! scans the whole column only when the list runs out.

use super::threat::{most_negative_sums, Increases, Threat};
use super::Budget;
use rayon::prelude::*;

/// Entries kept per sorted list beyond the largest budget: room for a row's own features.
const LIST_SLACK: usize = 512;

/// One column's absent contributions of one sign (stored negative: the upper side is
/// negated), most negative first.
struct List {
    items: Vec<(u32, f32)>,
    /// Sum of all of them, kept or not.
    total: f64,
    /// Whether `items` holds all of them.
    complete: bool,
}

pub(crate) struct Columns {
    /// `M`, `[in x q]` row-major.
    m: Vec<f32>,
    q: usize,
    /// Sparse rows: per side (0: lower, 1: upper), per column.
    lists: Option<[Vec<List>; 2]>,
}

/// Per budget and column: the exact smallest and largest change.
pub(crate) struct ColumnBounds {
    pub lo: Vec<Vec<f64>>,
    pub hi: Vec<Vec<f64>>,
}

/// A sparse row's own features' share of each column's sums (see [`Columns::bounds`]).
struct Own {
    cand: [Vec<Vec<f32>>; 2],
    adjust: [Vec<f64>; 2],
}

/// Features `present` as a bit set over `n` features.
fn bit_set(present: &[u32], n: usize) -> Vec<u64> {
    let mut bits = vec![0u64; n.div_ceil(64)];
    present
        .iter()
        .for_each(|&j| bits[j as usize / 64] |= 1 << (j % 64));
    bits
}

/// `+1` for the lower side, `-1` for the upper (its contributions are negated).
fn sign(side: usize) -> f32 {
    if side == 0 {
        1.0
    } else {
        -1.0
    }
}

impl Columns {
    pub fn new(m: Vec<f32>, q: usize, threat: &Threat, sparse: bool, budgets: &[Budget]) -> Self {
        let mut cols = Columns { m, q, lists: None };
        if sparse {
            let kmax = budgets.iter().filter_map(|b| b.finite()).max().unwrap_or(0);
            let len = if kmax == 0 { 0 } else { kmax + LIST_SLACK };
            let side = |s: usize| -> Vec<List> {
                (0..q)
                    .into_par_iter()
                    .map(|c| cols.build_list(threat, c, sign(s), len))
                    .collect()
            };
            cols.lists = Some([side(0), side(1)]);
        }
        cols
    }

    fn build_list(&self, threat: &Threat, c: usize, sign: f32, len: usize) -> List {
        let mut items: Vec<(u32, f32)> = threat
            .absent
            .iter()
            .enumerate()
            .filter_map(|(j, &a)| {
                let t = sign * a * self.m[j * self.q + c];
                (t < 0.0).then_some((j as u32, t))
            })
            .collect();
        let total = items.iter().map(|&(_, t)| t as f64).sum();
        let by_value = |a: &(u32, f32), b: &(u32, f32)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        let complete = items.len() <= len;
        if !complete {
            items.select_nth_unstable_by(len, by_value);
            items.truncate(len);
        }
        items.sort_unstable_by(by_value);
        List {
            items,
            total,
            complete,
        }
    }

    /// `sum_j v_j M[j, :]` for a row's `(feature, value)` pairs.
    pub fn product(&self, row: &[(u32, f32)]) -> Vec<f64> {
        let mut out = vec![0f64; self.q];
        for &(j, v) in row {
            let w = &self.m[j as usize * self.q..(j as usize + 1) * self.q];
            for (o, &w) in out.iter_mut().zip(w) {
                *o += (v * w) as f64;
            }
        }
        out
    }

    /// The exact smallest and largest change of every column under each budget.
    pub fn bounds(&self, threat: &Threat, inc: &Increases, budgets: &[Budget]) -> ColumnBounds {
        let nb = budgets.len();
        let mut out = ColumnBounds {
            lo: vec![vec![0.0; self.q]; nb],
            hi: vec![vec![0.0; self.q]; nb],
        };
        let mut put = |side: usize, c: usize, sums: Vec<f64>| {
            for (b, s) in sums.into_iter().enumerate() {
                match side {
                    0 => out.lo[b][c] = s,
                    _ => out.hi[b][c] = -s,
                }
            }
        };
        match (&self.lists, inc) {
            (Some(lists), Increases::Sparse { present, d }) => {
                let own = self.own_features(threat, present, d);
                let bits = bit_set(present, threat.absent.len());
                for (side, lists) in lists.iter().enumerate() {
                    for (c, list) in lists.iter().enumerate() {
                        let row = (&own.cand[side][c][..], own.adjust[side][c], &bits[..]);
                        put(
                            side,
                            c,
                            self.list_sums(threat, list, c, side, row, inc, budgets),
                        );
                    }
                }
            }
            _ => {
                let mut neg = Vec::new();
                for c in 0..self.q {
                    for side in 0..2 {
                        let col: Vec<f32> = (0..threat.absent.len())
                            .map(|j| sign(side) * self.m[j * self.q + c])
                            .collect();
                        threat.negatives(inc, &col, &mut neg);
                        put(side, c, most_negative_sums(&mut neg, budgets));
                    }
                }
            }
        }
        out
    }

    /// A sparse row's own features, read row by row from `M`: per side and column, their
    /// negative contributions (candidates) and how they change the unbounded sum (their
    /// own increase replaces the absent one).
    fn own_features(&self, threat: &Threat, present: &[u32], d: &[f32]) -> Own {
        let mut own = Own {
            cand: [vec![Vec::new(); self.q], vec![Vec::new(); self.q]],
            adjust: [vec![0.0; self.q], vec![0.0; self.q]],
        };
        for (&j, &dj) in present.iter().zip(d) {
            let a = threat.absent[j as usize];
            let row = &self.m[j as usize * self.q..(j as usize + 1) * self.q];
            for (c, &w) in row.iter().enumerate() {
                for side in 0..2 {
                    let w = sign(side) * w;
                    let (absent, t) = (w * a, w * dj);
                    if absent < 0.0 {
                        own.adjust[side][c] -= absent as f64;
                    }
                    if t < 0.0 {
                        own.cand[side][c].push(t);
                        own.adjust[side][c] += t as f64;
                    }
                }
            }
        }
        own
    }

    /// One column's sums for a sparse row from its sorted list (see the module doc),
    /// given the row's own candidates, their change of the unbounded sum, and the row's
    /// features as a bit set.
    #[allow(clippy::too_many_arguments)]
    fn list_sums(
        &self,
        threat: &Threat,
        list: &List,
        c: usize,
        side: usize,
        (own, adjust, bits): (&[f32], f64, &[u64]),
        inc: &Increases,
        budgets: &[Budget],
    ) -> Vec<f64> {
        let kmax = budgets.iter().filter_map(|b| b.finite()).max().unwrap_or(0);
        let mut cand = own.to_vec();
        let mut taken = 0;
        for &(j, t) in &list.items {
            if taken == kmax {
                break;
            }
            if bits[j as usize / 64] & (1 << (j % 64)) == 0 {
                cand.push(t);
                taken += 1;
            }
        }
        if taken < kmax && !list.complete {
            // The list ran out before the budget: scan the whole column.
            let col: Vec<f32> = (0..threat.absent.len())
                .map(|j| sign(side) * self.m[j * self.q + c])
                .collect();
            threat.negatives(inc, &col, &mut cand);
            return most_negative_sums(&mut cand, budgets);
        }
        let mut sums = most_negative_sums(&mut cand, budgets);
        for (s, b) in sums.iter_mut().zip(budgets) {
            if b.finite().is_none() {
                *s = list.total + adjust;
            }
        }
        sums
    }
}
