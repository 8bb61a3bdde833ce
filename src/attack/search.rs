//! The search: one target attacked step by step, each step adding the feature that the
//! method picks (one function per method; see the module documentation of
//! [`crate::attack`]).

use super::scorer::{Attacker, TargetState, Workspace};
use super::{Method, RowRef, Scoring, TargetOutcome};
use crate::rng::Rng;

/// Whether a candidate's logit is really below the current one: incremental scoring sums
/// in another order than a full pass, so differences within float round-off are noise.
pub(super) fn lowers(candidate: f32, current: f32) -> bool {
    candidate < current - 1e-5 * (1.0 + current.abs())
}

/// The lowest score and its id; ties go to the first (lowest feature index).
fn argmin_with(ids: &[u32], scores: &[f32]) -> (usize, f32) {
    let mut best = 0;
    for k in 1..scores.len() {
        if scores[k] < scores[best] {
            best = k;
        }
    }
    (ids[best] as usize, scores[best])
}

/// The candidates (addable entries below their cap), in order, into `ids`.
fn alive_ids(st: &TargetState, ids: &mut Vec<u32>) {
    ids.clear();
    ids.extend((0..st.alive.len() as u32).filter(|&a| st.alive[a as usize]));
}

impl Attacker<'_> {
    /// Attacks one target with the configured method, up to the largest budget.
    pub fn run_target(&self, row: usize, values: RowRef, ws: &mut Workspace) -> TargetOutcome {
        let mut st = self.start_with(values, std::mem::take(&mut ws.g));
        let initial = self.logit(&st, ws);
        let mut out = TargetOutcome::start(row, initial);
        if initial < self.threshold {
            out.evaded_at = Some(0);
            ws.g = st.g;
            return out;
        }
        let mut rng = Rng::new(self.seed ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut queries = 0u64;
        for step in 1..=self.max_budget {
            if st.n_alive == 0 {
                break;
            }
            let pick = match self.method {
                Method::Greedy => self.greedy_pick(&st, ws, &mut queries, out.final_logit),
                Method::Query => Some(self.query_pick(&st, ws, &mut queries, &mut rng)),
                Method::Gradient => Some(self.gradient_pick(&st, &mut queries)),
                Method::Random => Some(random_pick(&st, &mut queries, &mut rng)),
            };
            // None: a local minimum, where no single addition lowers the logit.
            let Some(pick) = pick else { break };
            self.add(&mut st, pick);
            let logit = self.logit(&st, ws);
            out.added.push(self.addable[pick] as usize);
            out.logits.push(logit);
            out.queries.push(queries);
            out.final_logit = logit;
            if logit < self.threshold {
                out.evaded_at = Some(step);
                break;
            }
        }
        ws.g = st.g;
        out
    }

    /// Greedy: scores every candidate exactly and returns the best, or None when it does
    /// not lower `current`.
    fn greedy_pick(
        &self,
        st: &TargetState,
        ws: &mut Workspace,
        queries: &mut u64,
        current: f32,
    ) -> Option<usize> {
        let mut ids = std::mem::take(&mut ws.ids);
        let mut scores = std::mem::take(&mut ws.scores);
        if self.scoring == Scoring::Cached {
            // Score every addable entry (consecutive blocks read slices), then drop
            // those that are not candidates.
            ids.clear();
            ids.extend(0..self.addable.len() as u32);
            scores.resize(ids.len(), 0.0);
            self.score(st, &ids, ws, &mut scores);
            for (s, &al) in scores.iter_mut().zip(&st.alive) {
                if !al {
                    *s = f32::INFINITY;
                }
            }
        } else {
            alive_ids(st, &mut ids);
            scores.resize(ids.len(), 0.0);
            self.score(st, &ids, ws, &mut scores);
        }
        *queries += st.n_alive as u64;
        let (pick, best) = argmin_with(&ids, &scores);
        ws.ids = ids;
        ws.scores = scores;
        lowers(best, current).then_some(pick)
    }

    /// Query (black box): scores a uniform sample of `queries_per_step` candidates (all
    /// if fewer) and returns the best.
    fn query_pick(
        &self,
        st: &TargetState,
        ws: &mut Workspace,
        queries: &mut u64,
        rng: &mut Rng,
    ) -> usize {
        let mut ids = std::mem::take(&mut ws.ids);
        let mut scores = std::mem::take(&mut ws.scores);
        alive_ids(st, &mut ids);
        let k_max = self.queries_per_step;
        if ids.len() > k_max {
            // A uniform sample without replacement (partial Fisher-Yates).
            for k in 0..k_max {
                let j = k + rng.below((ids.len() - k) as u64) as usize;
                ids.swap(k, j);
            }
            ids.truncate(k_max);
            ids.sort_unstable();
        }
        scores.resize(ids.len(), 0.0);
        self.score(st, &ids, ws, &mut scores);
        *queries += ids.len() as u64;
        let (pick, _) = argmin_with(&ids, &scores);
        ws.ids = ids;
        ws.scores = scores;
        pick
    }

    /// Gradient (JSMA-like): the candidate whose first-order change of the logit,
    /// gradient times increase, is lowest (one forward and backward pass).
    fn gradient_pick(&self, st: &TargetState, queries: &mut u64) -> usize {
        let g = self.grad_z1(&st.z1);
        *queries += 1;
        let mut best = (f32::INFINITY, usize::MAX);
        for a in 0..self.addable.len() {
            if st.alive[a] {
                let w = self.w1_row(a);
                let through_skip = self.skip_a.as_ref().map_or(0.0, |s| s[a]);
                let s =
                    st.d[a] * (w.iter().zip(&g).map(|(x, y)| x * y).sum::<f32>() + through_skip);
                if s < best.0 || best.1 == usize::MAX {
                    best = (s, a);
                }
            }
        }
        best.1
    }
}

/// Random (baseline): a uniformly drawn candidate; one query to see whether it evaded.
fn random_pick(st: &TargetState, queries: &mut u64, rng: &mut Rng) -> usize {
    *queries += 1;
    let k = rng.below(st.n_alive as u64) as usize;
    (0..st.alive.len())
        .filter(|&a| st.alive[a])
        .nth(k)
        .expect("k < alive")
}
