//! The optimizer's update kernels: a whole tensor in parallel chunks, or the rows of a
//! sparse-fed kernel that the batch touched (lazy, as PyTorch's `SparseAdam`). Both end
//! each row with the projection onto the elementwise constraints ([`project_row`]).
//!
//! Determinism: chunks and rows are disjoint outputs; each sparse feature's gradient is
//! summed in batch order on one thread.

use super::projection::{fused_constraints, project_row};
use super::reparam::{grad_to_raw, raw_to_weights, reparam_forward, reparam_grad};
use crate::data::CsrMatrix;
use crate::kernels;
use crate::model::{Constraint, Dense, NonNegMode};
use crate::optim::{OptimizerConfig, StepScalars};
use rayon::prelude::*;

/// Elements per parallel task in elementwise updates.
const UPDATE_CHUNK: usize = 1 << 14;
/// Features per parallel task in sparse-row updates.
const SPARSE_CHUNK: usize = 64;

/// A raw pointer that may cross threads: each thread writes disjoint rows.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}
impl SyncPtr {
    /// The address `off` floats in (for prefetch hints; no access).
    fn at(self, off: usize) -> *const f32 {
        self.0.wrapping_add(off)
    }
    /// # Safety: `start..start+len` in bounds and not aliased by another thread.
    unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Optimizer state of one tensor, and its free parameter when reparametrised.
pub(super) struct TensorState {
    pub(super) m: Vec<f32>,
    pub(super) v: Vec<f32>,
    /// `Some` in abs/softplus mode: the free parameter `t` with `w = f(t)` on `rows`.
    pub(super) raw: Option<Vec<f32>>,
    /// Rows (of `cols` values) under the reparametrisation.
    pub(super) rows: Vec<bool>,
    pub(super) cols: usize,
}

impl TensorState {
    pub(super) fn new(cfg: &OptimizerConfig, len: usize, cols: usize) -> Self {
        let (m, v) = cfg.slots();
        TensorState {
            m: if m {
                kernels::zeroed_buffer(len)
            } else {
                vec![]
            },
            v: if v {
                kernels::zeroed_buffer(len)
            } else {
                vec![]
            },
            raw: None,
            rows: vec![],
            cols,
        }
    }

    /// The tensors that change in training, named `prefix.m`, `.v` and `.raw`.
    pub(super) fn tensors<'s>(
        &'s mut self,
        prefix: &str,
        out: &mut Vec<(String, &'s mut Vec<f32>)>,
    ) {
        out.push((format!("{prefix}.m"), &mut self.m));
        out.push((format!("{prefix}.v"), &mut self.v));
        if let Some(raw) = &mut self.raw {
            out.push((format!("{prefix}.raw"), raw));
        }
    }
}

/// Kernel rows of a sparse-fed tensor that get gradient besides the batch's active
/// features: the absent features verified training's bound chose ([`super::robust`]).
#[derive(Clone, Debug, Default)]
pub(super) struct ExtraRows {
    /// Sorted features.
    pub(super) features: Vec<u32>,
    /// One gradient row of `n_out` values per feature.
    pub(super) grads: Vec<f32>,
}

/// Lazy row-sparse update of a kernel fed by the sparse input (the first layer's or the
/// skip connection's, whose pre-activation gradients are `dz`): only active features and
/// the `extra` rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn update_sparse_rows(
    opt: &OptimizerConfig,
    s: &StepScalars,
    mode: NonNegMode,
    layer: &mut Dense,
    st: &mut TensorState,
    keys: &[u64],
    dz: &[f32],
    extra: &ExtraRows,
    x: &CsrMatrix,
    rows: &[usize],
    scale: f32,
    reset_clipped: bool,
) {
    let n_out = layer.n_out;
    let w = SyncPtr(layer.weight.as_mut_ptr());
    let m = SyncPtr(st.m.as_mut_ptr());
    let v = SyncPtr(st.v.as_mut_ptr());
    let (has_m, has_v) = (!st.m.is_empty(), !st.v.is_empty());
    let raw = st.raw.as_mut().map(|r| SyncPtr(r.as_mut_ptr()));
    let rep_rows = &st.rows;
    let free = opt.without_weight_decay();
    let fused = fused_constraints(&layer.kernel_constraints, raw.is_some());
    // Safety: each feature j appears once, so threads write disjoint rows.
    sparse_rows(
        keys,
        dz,
        n_out,
        extra,
        x,
        rows,
        |j, g| unsafe {
            let off = j * n_out;
            let wr = w.slice(off, n_out);
            let mr = if has_m { m.slice(off, n_out) } else { &mut [] };
            let vr = if has_v { v.slice(off, n_out) } else { &mut [] };
            let mut gs = [0f32; 0].to_vec();
            let g: &[f32] = if scale != 1.0 {
                gs.extend(g.iter().map(|x| x * scale));
                &gs
            } else {
                g
            };
            match raw {
                Some(raw) if rep_rows[j] => {
                    // Decay the effective weight, as in `update_tensor`.
                    let tr = raw.slice(off, n_out);
                    let gt: Vec<f32> = g
                        .iter()
                        .zip(tr.iter())
                        .zip(wr.iter())
                        .map(|((g, &t), &w)| (g + opt.weight_decay * w) * reparam_grad(mode, t))
                        .collect();
                    kernels::optimizer_update(&free, s, tr, &gt, mr, vr);
                    for (w, &t) in wr.iter_mut().zip(tr.iter()) {
                        *w = reparam_forward(mode, t);
                    }
                }
                Some(raw) => {
                    let tr = raw.slice(off, n_out);
                    kernels::optimizer_update(opt, s, tr, g, mr, vr);
                    wr.copy_from_slice(tr);
                }
                None => kernels::optimizer_update(opt, s, wr, g, mr, vr),
            }
            project_row(&fused, j, wr, mr, reset_clipped);
        },
        |j| {
            let off = j * n_out;
            kernels::prefetch(w.at(off), n_out);
            if has_m {
                kernels::prefetch(m.at(off), n_out);
            }
            if has_v {
                kernels::prefetch(v.at(off), n_out);
            }
        },
    );
}

/// Calls `f(feature, grad_row)` for every feature active in the batch or in `extra`, with
/// the gradient of the loss w.r.t. that kernel row (the batch's sum, in batch order, plus
/// the extra row); parallel over features.
#[allow(clippy::too_many_arguments)]
pub(super) fn sparse_rows<F, P>(
    keys: &[u64],
    dz: &[f32],
    n_out: usize,
    extra: &ExtraRows,
    x: &CsrMatrix,
    rows: &[usize],
    f: F,
    prefetch: P,
) where
    F: Fn(usize, &[f32]) + Sync,
    P: Fn(usize) + Sync,
{
    let plan = merged_features(keys, extra);
    let features = plan.len();
    (0..features)
        .into_par_iter()
        .with_min_len(SPARSE_CHUNK)
        .for_each_init(
            || vec![0f32; n_out],
            |g, i| {
                // The rows of a feature a few ahead are random in memory: ask for them
                // now so they arrive while this one is summed and updated.
                if i + kernels::PREFETCH_AHEAD < features {
                    prefetch(plan[i + kernels::PREFETCH_AHEAD].feature as usize);
                }
                g.fill(0.0);
                let p = &plan[i];
                let j = p.feature as usize;
                for &key in &keys[p.keys.clone()] {
                    let k = (key & 0xFFFF_FFFF) as usize;
                    let v = csr_value(x, rows[k], j as u32);
                    let d = &dz[k * n_out..(k + 1) * n_out];
                    if v == 1.0 {
                        kernels::add_assign(g, d);
                    } else {
                        kernels::axpy(g, v, d);
                    }
                }
                if let Some(e) = p.extra {
                    kernels::add_assign(g, &extra.grads[e * n_out..(e + 1) * n_out]);
                }
                f(j, g);
            },
        );
}

/// One kernel row to update: its run of batch keys and its extra row, if any.
struct RowPlan {
    feature: u32,
    keys: std::ops::Range<usize>,
    extra: Option<usize>,
}

/// The batch's features (runs of the sorted keys) and the extra rows', merged in feature
/// order.
fn merged_features(keys: &[u64], extra: &ExtraRows) -> Vec<RowPlan> {
    let mut plan = Vec::new();
    let mut e = 0;
    let push_extra_below = |plan: &mut Vec<RowPlan>, e: &mut usize, limit: u64| {
        while *e < extra.features.len() && (extra.features[*e] as u64) < limit {
            let feature = extra.features[*e];
            plan.push(RowPlan {
                feature,
                keys: 0..0,
                extra: Some(*e),
            });
            *e += 1;
        }
    };
    let mut i = 0;
    while i < keys.len() {
        let feature = (keys[i] >> 32) as u32;
        let mut end = i + 1;
        while end < keys.len() && keys[end] >> 32 == feature as u64 {
            end += 1;
        }
        push_extra_below(&mut plan, &mut e, feature as u64);
        let here = (e < extra.features.len() && extra.features[e] == feature).then(|| {
            e += 1;
            e - 1
        });
        plan.push(RowPlan {
            feature,
            keys: i..end,
            extra: here,
        });
        i = end;
    }
    push_extra_below(&mut plan, &mut e, u64::MAX);
    plan
}

/// The value of feature `j` in CSR row `r` (indices are sorted: binary search).
#[inline]
fn csr_value(x: &CsrMatrix, r: usize, j: u32) -> f32 {
    let (idx, val) = x.row(r);
    match idx.binary_search(&j) {
        Ok(p) => val[p],
        Err(_) => 0.0,
    }
}

/// Optimizer step on a whole tensor, in parallel chunks (elementwise: deterministic).
#[allow(clippy::too_many_arguments)]
pub(super) fn update_tensor(
    opt: &OptimizerConfig,
    s: &StepScalars,
    mode: NonNegMode,
    w: &mut [f32],
    g: &mut [f32],
    st: &mut TensorState,
    elementwise: &[Constraint],
    reset_clipped: bool,
) {
    let len = w.len();
    let free = opt.without_weight_decay();
    grad_to_raw(opt, mode, st, w, g);
    let rep_rows = &st.rows;
    // Elementwise constraints are projected row by row while the rows are in cache.
    let fused = fused_constraints(elementwise, st.raw.is_some());
    let target = match st.raw.as_mut() {
        Some(raw) => SyncPtr(raw.as_mut_ptr()),
        None => SyncPtr(w.as_mut_ptr()),
    };
    let (m, v) = (SyncPtr(st.m.as_mut_ptr()), SyncPtr(st.v.as_mut_ptr()));
    let (has_m, has_v) = (!st.m.is_empty(), !st.v.is_empty());
    let g = &*g;
    let cols = st.cols.max(1);
    let rows_per_chunk = (UPDATE_CHUNK / cols).max(1);
    let rows = len / cols;
    (0..rows.div_ceil(rows_per_chunk))
        .into_par_iter()
        .for_each(|c| {
            let first_row = c * rows_per_chunk;
            let start = first_row * cols;
            let n = (rows_per_chunk * cols).min(len - start);
            // Safety: chunks are disjoint.
            unsafe {
                let mut mm: &mut [f32] = &mut [];
                let mut vv: &mut [f32] = &mut [];
                if has_m {
                    mm = m.slice(start, n);
                }
                if has_v {
                    vv = v.slice(start, n);
                }
                let p = target.slice(start, n);
                if rep_rows.is_empty() {
                    kernels::optimizer_update(opt, s, p, &g[start..start + n], mm, vv);
                } else {
                    for (i, pr) in p.chunks_exact_mut(cols).enumerate() {
                        let o = (first_row + i) * cols;
                        let k = i * cols..(i + 1) * cols;
                        let (mr, vr) = (
                            if has_m {
                                &mut mm[k.clone()]
                            } else {
                                &mut [][..]
                            },
                            if has_v { &mut vv[k] } else { &mut [][..] },
                        );
                        let row_opt = if rep_rows[first_row + i] { &free } else { opt };
                        kernels::optimizer_update(row_opt, s, pr, &g[o..o + cols], mr, vr);
                    }
                }
                for (i, row) in p.chunks_exact_mut(cols).enumerate() {
                    let m = if has_m {
                        &mut mm[i * cols..(i + 1) * cols]
                    } else {
                        &mut [][..]
                    };
                    project_row(&fused, first_row + i, row, m, reset_clipped);
                }
            }
        });
    raw_to_weights(mode, st, w);
}

#[cfg(test)]
mod tests {
    use crate::data::{Dataset, DenseMatrix, Features};
    use crate::rng::Rng;
    use crate::train::{build_network, Preset, TrainConfig, Trainer};

    /// Training steps on products big enough to be cut into tiles (a 256-row batch of 600
    /// features into 256-256 layers) and tensors updated in many chunks.
    fn trained_weights(threads: usize) -> Vec<Vec<u32>> {
        let mut rng = Rng::new(5);
        let (rows, cols) = (512, 600);
        let x = Features::Dense(DenseMatrix {
            rows,
            cols,
            values: (0..rows * cols).map(|_| rng.normal_f32()).collect(),
        });
        let data = Dataset {
            x,
            y: Some((0..rows).map(|_| rng.below(2) as f32).collect()),
            n_labels: 1,
            label_names: vec!["label".into()],
            feature_names: None,
            source: "test".into(),
        };
        let mut cfg = TrainConfig::new(vec![256, 256], Preset::Monotone);
        cfg.batch_size = 256;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mlp = build_network(&cfg, cols, false, 1).unwrap();
            let mut trainer = Trainer::new(mlp, &cfg);
            let order: Vec<usize> = (0..rows).collect();
            for batch in order.chunks(256).cycle().take(4) {
                trainer.step(&data, batch, &[1.0], 1e-2);
            }
            let mlp = &trainer.mlp;
            let tensors = mlp.layers.iter().flat_map(|l| [&l.weight, &l.bias]);
            tensors
                .chain(mlp.skip.iter().map(|s| &s.weight))
                .map(|t| t.iter().map(|v| v.to_bits()).collect())
                .collect()
        })
    }

    #[test]
    fn training_steps_do_not_depend_on_the_thread_count() {
        let one = trained_weights(1);
        for threads in [2, 3, 8] {
            assert!(one == trained_weights(threads), "{threads} threads");
        }
    }
}
