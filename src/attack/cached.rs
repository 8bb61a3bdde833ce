//! The cached incremental scorer (ReLU, leaky ReLU or identity first layer; see the
//! module documentation of [`crate::attack`]): per target `G = W1a diag(slopes) W2`, kept
//! up to date by rank-k products, and the second layer's pre-activation of each candidate
//! as `z2 + d_a G[a]` plus corrections for the units whose slope the candidate changes.

use super::scorer::{Attacker, TargetState, Workspace};
use crate::kernels;
use crate::linalg::{matmul, Trans};
use crate::model::Activation;

/// Candidates per block of the cached scorer.
pub(super) const CACHED_BLOCK: usize = 1024;

/// Slope of a piecewise-linear activation at or below 0.
fn low_slope(act: Activation) -> f32 {
    match act {
        Activation::LeakyRelu => crate::model::activation::LEAKY_SLOPE,
        Activation::Relu => 0.0,
        _ => 1.0,
    }
}

/// Slope of a piecewise-linear activation at `z`.
#[inline]
fn slope(act: Activation, z: f32) -> f32 {
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => (z > 0.0) as u32 as f32,
        _ => {
            if z > 0.0 {
                1.0
            } else {
                crate::model::activation::LEAKY_SLOPE
            }
        }
    }
}

impl Attacker<'_> {
    /// Precomputes `W1a` transposed and the extremes of each of its columns.
    pub(super) fn build_cache(&mut self) {
        let (a, h1) = (self.addable.len(), self.h1);
        let w = self.w1a();
        let mut t = vec![0.0f32; a * h1];
        // Tiled, so both sides stay in cache.
        const TILE: usize = 64;
        for r0 in (0..a).step_by(TILE) {
            for c0 in (0..h1).step_by(TILE) {
                for r in r0..(r0 + TILE).min(a) {
                    for c in c0..(c0 + TILE).min(h1) {
                        t[c * a + r] = w[r * h1 + c];
                    }
                }
            }
        }
        let (mut lo, mut hi) = (vec![0.0f32; h1], vec![0.0f32; h1]);
        if a > 0 {
            for (i, col) in t.chunks_exact(a).enumerate() {
                lo[i] = col.iter().copied().fold(f32::INFINITY, f32::min);
                hi[i] = col.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            }
        }
        self.w1a_t = t;
        self.col_min = lo;
        self.col_max = hi;
    }

    /// Builds a reference `G` from the majority slope of each first-layer unit over these
    /// pre-activations (typically the targets'), so that each target's `G` is the
    /// reference plus a product over the units where it differs. Optional: without it,
    /// each target's `G` is computed from scratch.
    pub fn set_reference(&mut self, z1s: &[Vec<f32>]) {
        if self.scoring != super::Scoring::Cached || z1s.is_empty() {
            return;
        }
        let h1 = self.h1;
        let mut s_ref = vec![0.0f32; h1];
        for (i, s) in s_ref.iter_mut().enumerate() {
            let pos = z1s.iter().filter(|z| z[i] > 0.0).count();
            *s = slope(self.act1, if pos * 2 >= z1s.len() { 1.0 } else { -1.0 });
        }
        let mut g = Vec::new();
        self.product_g_into(&s_ref, &mut g);
        self.reference = Some((s_ref, g));
    }

    /// `W1a diag(s) W2` from scratch, into `g`.
    fn product_g_into(&self, s: &[f32], g: &mut Vec<f32>) {
        let l2 = self.second_layer();
        let h2 = l2.n_out;
        let mut sw2 = l2.weight.clone();
        for (i, row) in sw2.chunks_exact_mut(h2).enumerate() {
            for v in row {
                *v *= s[i];
            }
        }
        let a_n = self.addable.len();
        g.clear();
        g.resize(a_n * h2, 0.0);
        matmul(
            g,
            self.w1a(),
            Trans::N,
            &sw2,
            Trans::N,
            a_n,
            self.h1,
            h2,
            false,
        );
    }

    /// `g += W1a[:, units] diag(delta) W2[units]`.
    fn update_g(&self, g: &mut [f32], units: &[u32], delta: &[f32]) {
        if units.is_empty() {
            return;
        }
        let l2 = self.second_layer();
        let h2 = l2.n_out;
        let a_n = self.addable.len();
        let k = units.len();
        let mut at = Vec::with_capacity(k * a_n);
        let mut b = Vec::with_capacity(k * h2);
        for (&u, &dl) in units.iter().zip(delta) {
            let u = u as usize;
            at.extend_from_slice(&self.w1a_t[u * a_n..(u + 1) * a_n]);
            b.extend(l2.weight[u * h2..(u + 1) * h2].iter().map(|&w| w * dl));
        }
        matmul(g, &at, Trans::T, &b, Trans::N, a_n, k, h2, true);
    }

    /// Builds the target's `G` (in `g`, a reused buffer, to spare page faults) and bounds.
    pub(super) fn init_cache(&self, st: &mut TargetState, mut g: Vec<f32>) {
        let slopes: Vec<f32> = st.z1.iter().map(|&z| slope(self.act1, z)).collect();
        match &self.reference {
            Some((s_ref, g_ref)) => {
                let (units, delta): (Vec<u32>, Vec<f32>) = (0..self.h1)
                    .filter(|&i| slopes[i] != s_ref[i])
                    .map(|i| (i as u32, slopes[i] - s_ref[i]))
                    .unzip();
                if units.len() < self.h1 {
                    g.clear();
                    g.extend_from_slice(g_ref);
                    self.update_g(&mut g, &units, &delta);
                } else {
                    self.product_g_into(&slopes, &mut g);
                }
            }
            None => self.product_g_into(&slopes, &mut g),
        }
        st.g = g;
        st.slopes = slopes;
        self.init_bounds(st);
    }

    /// Bounds on the first-layer change of any candidate, so a unit whose sign cannot
    /// change is skipped. With one increase `d0` for all candidates (binary features)
    /// they are `d0` times the column extremes; otherwise the largest increase times
    /// them. Rounding is monotone, so `z + lo > 0` proves `z + fl(d w) > 0` for all.
    fn init_bounds(&self, st: &mut TargetState) {
        let alive_d = || {
            st.d.iter()
                .zip(&st.alive)
                .filter(|(_, &al)| al)
                .map(|(&d, _)| d)
        };
        let d0 = alive_d().next().unwrap_or(0.0);
        let uniform = alive_d().all(|d| d == d0);
        let dmax = alive_d().fold(0.0f32, f32::max);
        if uniform {
            st.lo = self.col_min.iter().map(|&w| d0 * w).collect();
            st.hi = self.col_max.iter().map(|&w| d0 * w).collect();
        } else {
            st.lo = self.col_min.iter().map(|&w| dmax * w.min(0.0)).collect();
            st.hi = self.col_max.iter().map(|&w| dmax * w.max(0.0)).collect();
        }
    }

    /// After an addition moved `z1`: updates `G` and the slopes for the units whose
    /// slope changed.
    pub(super) fn refresh_slopes(&self, st: &mut TargetState) {
        let (units, delta): (Vec<u32>, Vec<f32>) = (0..self.h1)
            .filter_map(|i| {
                let s = slope(self.act1, st.z1[i]);
                (s != st.slopes[i]).then_some((i as u32, s - st.slopes[i]))
            })
            .unzip();
        let mut g = std::mem::take(&mut st.g);
        self.update_g(&mut g, &units, &delta);
        st.g = g;
        for &u in &units {
            st.slopes[u as usize] = slope(self.act1, st.z1[u as usize]);
        }
    }

    /// Scores addable entries `ids` with the cached scorer (see the module documentation).
    /// Units whose sign may change for some candidate ("critical") get their correction
    /// `(slope(t) - s) t` for every candidate of a block in a small matrix `C [k x block]`,
    /// added to `z2` as one product `C^T W2[crit]`.
    pub(super) fn score_cached(
        &self,
        st: &TargetState,
        ids: &[u32],
        ws: &mut Workspace,
        out: &mut [f32],
    ) {
        let l2 = self.second_layer();
        let h2 = l2.n_out;
        let mut z2base = std::mem::take(&mut ws.z2base);
        self.current_z2(st, &mut z2base);
        let mut crit = std::mem::take(&mut ws.changes);
        self.critical_units(st, &mut crit);
        let k = crit.len();
        let mut w2c = std::mem::take(&mut ws.b);
        w2c.clear();
        for &i in &crit {
            w2c.extend_from_slice(&l2.weight[i as usize * h2..(i as usize + 1) * h2]);
        }
        let mut z2 = std::mem::take(&mut ws.gather);
        let mut c = std::mem::take(&mut ws.corr);
        for (block, o) in ids.chunks(CACHED_BLOCK).zip(out.chunks_mut(CACHED_BLOCK)) {
            let n = block.len();
            // The linear part: z2 + d_a G[a].
            z2.resize(n * h2, 0.0);
            for (r, &a) in block.iter().enumerate() {
                let a = a as usize;
                kernels::add_scaled(
                    &mut z2[r * h2..(r + 1) * h2],
                    &z2base,
                    st.d[a],
                    &st.g[a * h2..(a + 1) * h2],
                );
            }
            if k > 0 {
                self.kink_corrections(st, block, &crit, ws, &mut c);
                matmul(&mut z2, &c, Trans::T, &w2c, Trans::N, n, k, h2, true);
            }
            // The second layer's activation, then the rest.
            self.logits_from(1, &z2, n, ws, o);
        }
        ws.z2base = z2base;
        ws.changes = crit;
        ws.b = w2c;
        ws.gather = z2;
        ws.corr = c;
    }

    /// The second layer's pre-activation at the current row, `b2 + act(z1) W2`, into `z2`.
    fn current_z2(&self, st: &TargetState, z2: &mut Vec<f32>) {
        let l2 = self.second_layer();
        z2.resize(l2.n_out, 0.0);
        l2.affine_dense(&self.first_activations(&st.z1), 1, z2);
    }

    /// First-layer units whose sign some candidate may flip: `z + lo <= 0 < z` or
    /// `z <= 0 < z + hi` (none for the identity).
    fn critical_units(&self, st: &TargetState, crit: &mut Vec<u32>) {
        crit.clear();
        if self.act1 == Activation::Identity {
            return;
        }
        for i in 0..self.h1 {
            let z = st.z1[i];
            let may_change = if z > 0.0 {
                z + st.lo[i] <= 0.0
            } else {
                z + st.hi[i] > 0.0
            };
            if may_change {
                crit.push(i as u32);
            }
        }
    }

    /// `C [k x n]`: row `ci` holds the correction of critical unit `crit[ci]` for each
    /// candidate of `block`. A block of consecutive features reads slices; otherwise the
    /// increases and weights are gathered (in the workspace).
    fn kink_corrections(
        &self,
        st: &TargetState,
        block: &[u32],
        crit: &[u32],
        ws: &mut Workspace,
        c: &mut Vec<f32>,
    ) {
        let (n, k, a_n) = (block.len(), crit.len(), self.addable.len());
        c.resize(k * n, 0.0);
        let first = block[0] as usize;
        let contiguous = block[n - 1] as usize - first + 1 == n;
        let mut dg = std::mem::take(&mut ws.dgather);
        let mut wg = std::mem::take(&mut ws.wgather);
        if !contiguous {
            dg.clear();
            dg.extend(block.iter().map(|&a| st.d[a as usize]));
        }
        let alpha = low_slope(self.act1);
        for (ci, &i) in crit.iter().enumerate() {
            let i = i as usize;
            let col = &self.w1a_t[i * a_n..(i + 1) * a_n];
            let (dv, wv): (&[f32], &[f32]) = if contiguous {
                (&st.d[first..first + n], &col[first..first + n])
            } else {
                wg.clear();
                wg.extend(block.iter().map(|&a| col[a as usize]));
                (&dg, &wg)
            };
            kernels::kink_correction(
                st.z1[i],
                st.slopes[i],
                alpha,
                dv,
                wv,
                &mut c[ci * n..(ci + 1) * n],
            );
        }
        ws.dgather = dg;
        ws.wgather = wg;
    }
}
