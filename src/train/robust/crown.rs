//! CROWN-IBP's bound for verified training (Zhang et al., ICLR 2020), for a network with
//! one hidden layer of ReLU units (and an optional skip connection).
//!
//! The hidden units' pre-activation intervals `[l_i, u_i]` are the exact first-layer ones
//! of the IBP bound ([`super::Intervals`]). Each unit is replaced by a linear bound on its
//! interval, chosen by the sign of its output weight `w_i`: below it (`w_i >= 0`) the
//! adaptive line `a z` (`a = 1` when `u > -l`, else 0, as CROWN), above it (`w_i < 0`) the
//! chord `s (z - l)`, `s = u / (u - l)`; stable units are exact. The logit is then at
//! least a LINEAR function of the additions, `c + sum_j delta_j g_j` with
//! `g = W1 lam + S` (`lam_i = w_i slope_i`, `S` the skip column), whose exact minimum
//! under the budget is the sum of the K most negative `d_j g_j`: one worst set SHARED by
//! every unit, where IBP lets each unit take its own.
//!
//! It is the relaxation `certify --budget` uses ([`crate::certify`]'s CROWN) restricted to
//! what verified training needs a gradient of; its gradient is written here: through
//! `lam` into both kernels and the clean pre-activation, through the chosen set `T`
//! (`d_j lam_i` on `W1[j, i]`), and through the chord's slope into `l_i` and `u_i`, which
//! the IBP machinery routes into the first layer's own chosen sets.

use super::{keep_best, skip_clean, Intervals, Threat};
use crate::attack::RowRef;
use crate::error::{Error, Result};
use crate::model::{Activation, Mlp};

/// Whether CROWN-IBP's bound is implemented for `mlp`.
pub(crate) fn supported(hidden: &[usize], act: Activation) -> Result<()> {
    match (hidden.len(), act) {
        (1, Activation::Relu) => Ok(()),
        _ => Err(Error::invalid(format!(
            "the CROWN-IBP bound needs one hidden layer of relu units, got {} hidden layer(s) of {act:?} units",
            hidden.len()
        ))),
    }
}

/// The line `slope * z + icpt` that bounds one unit on its interval; only the chord's
/// depends on the interval's ends.
#[derive(Clone, Copy)]
struct Line {
    slope: f32,
    icpt: f32,
    chord: bool,
}

fn line(l: f32, u: f32, w: f32) -> Line {
    let exact = |slope| Line {
        slope,
        icpt: 0.0,
        chord: false,
    };
    if l >= 0.0 {
        exact(1.0)
    } else if u <= 0.0 {
        exact(0.0)
    } else if w >= 0.0 {
        exact(if u >= -l { 1.0 } else { 0.0 })
    } else {
        let s = u / (u - l);
        Line {
            slope: s,
            icpt: -l * s,
            chord: true,
        }
    }
}

/// One label's CROWN-IBP bound on one row, with what its gradient needs.
pub(super) struct CrownLabel {
    pub label: usize,
    pub value: f32,
    /// `w_i * slope_i`: the bound's gradient on the clean pre-activation `z_i`.
    pub lam: Vec<f32>,
    /// The bound's gradient on `w_i`: the line's value at the worst point.
    pub dw: Vec<f32>,
    /// The bound's gradient on each unit's interval ends (chords only).
    pub d_lo: Vec<f32>,
    pub d_hi: Vec<f32>,
    /// The worst set of additions: `(feature, increase)`.
    pub chosen: Vec<(u32, f32)>,
}

/// Each feature's scaled increase on this row (0 where additions cannot raise it).
fn increases(row: RowRef, threat: &Threat) -> Vec<f32> {
    let d = threat.cap.len();
    match row {
        RowRef::Dense(x) => (0..d).map(|j| threat.increase(j, x[j])).collect(),
        RowRef::Sparse(idx, val) => {
            let mut inc: Vec<f32> = (0..d).map(|j| threat.increase(j, 0.0)).collect();
            for (&j, &v) in idx.iter().zip(val) {
                inc[j as usize] = threat.increase(j as usize, v);
            }
            inc
        }
    }
}

/// CROWN-IBP's lower bound of label `c`'s logit for one row with clean first-layer
/// pre-activation `z1`, under at most `k` additions.
pub(super) fn bound(
    mlp: &Mlp,
    threat: &Threat,
    row: RowRef,
    z1: &[f32],
    iv: &Intervals,
    k: usize,
    labels: &[usize],
) -> Vec<CrownLabel> {
    let (w1, w2) = (&mlp.layers[0], &mlp.layers[1]);
    let (h, n_lab) = (w1.n_out, w2.n_out);
    let inc = increases(row, threat);
    let skip_at = mlp.skip.as_ref().map(|s| skip_clean(s, row));
    labels
        .iter()
        .map(|&c| {
            let lines: Vec<Line> = (0..h)
                .map(|i| line(iv.lo[0][i], iv.hi[0][i], w2.weight[i * n_lab + c]))
                .collect();
            let w: Vec<f32> = (0..h).map(|i| w2.weight[i * n_lab + c]).collect();
            let lam: Vec<f32> = lines.iter().zip(&w).map(|(l, w)| w * l.slope).collect();
            let mut keys: Vec<(f32, u32)> = inc
                .iter()
                .enumerate()
                .filter(|(_, &d)| d > 0.0)
                .filter_map(|(j, &d)| {
                    let row_w = &w1.weight[j * h..(j + 1) * h];
                    let mut g: f32 = row_w.iter().zip(&lam).map(|(a, b)| a * b).sum();
                    g += mlp.skip.as_ref().map_or(0.0, |s| s.weight[j * n_lab + c]);
                    let key = d * g;
                    (key < 0.0).then_some((key, j as u32))
                })
                .collect();
            keep_best(&mut keys, k);
            let chosen: Vec<(u32, f32)> = keys.iter().map(|&(_, j)| (j, inc[j as usize])).collect();
            // The worst point's pre-activations.
            let mut zt = z1.to_vec();
            for &(j, d) in &chosen {
                let row_w = &w1.weight[j as usize * h..(j as usize + 1) * h];
                zt.iter_mut().zip(row_w).for_each(|(z, w)| *z += d * w);
            }
            let mut value = w2.bias[c] + skip_at.as_ref().map_or(0.0, |s| s[c]);
            value += keys.iter().map(|k| k.0).sum::<f32>();
            let (mut dw, mut d_lo, mut d_hi) = (vec![0f32; h], vec![0f32; h], vec![0f32; h]);
            for i in 0..h {
                let ln = lines[i];
                value += lam[i] * z1[i] + w[i] * ln.icpt;
                dw[i] = ln.slope * zt[i] + ln.icpt;
                if ln.chord {
                    // w s (z - l) with s = u / (u - l).
                    let (l, u) = (iv.lo[0][i], iv.hi[0][i]);
                    let (gap, sq) = (zt[i] - l, (u - l) * (u - l));
                    d_lo[i] = w[i] * (gap * u / sq - ln.slope);
                    d_hi[i] = w[i] * gap * (-l) / sq;
                }
            }
            CrownLabel {
                label: c,
                value,
                lam,
                dw,
                d_lo,
                d_hi,
                chosen,
            }
        })
        .collect()
}
