//! A fully connected layer: a small struct and its forward and backward primitives.

use super::{Activation, Constraint};
use crate::data::CsrMatrix;
use crate::kernels;
use crate::linalg::{matmul, Trans};
use rayon::prelude::*;

/// Elements per parallel task in elementwise loops over a batch.
pub(crate) const ROW_CHUNK_ELEMS: usize = 1 << 14;

/// A fully connected layer. The kernel is stored in the Keras layout `[in, out]`
/// (row `i` = the weights leaving input `i`): a sparse input gathers whole rows, and the
/// Keras constraint axes apply as written. The model file stores PyTorch's `[out, in]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub n_in: usize,
    pub n_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub activation: Activation,
    pub kernel_constraints: Vec<Constraint>,
    pub bias_constraints: Vec<Constraint>,
}

impl Dense {
    pub fn zeros(n_in: usize, n_out: usize, activation: Activation) -> Self {
        Dense {
            n_in,
            n_out,
            weight: kernels::zeroed_buffer(n_in * n_out),
            bias: vec![0.0; n_out],
            activation,
            kernel_constraints: Vec::new(),
            bias_constraints: Vec::new(),
        }
    }

    /// `out[rows x n_out] = x[rows x n_in] @ W + b`.
    pub fn affine_dense(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        for r in out.chunks_exact_mut(self.n_out) {
            r.copy_from_slice(&self.bias);
        }
        matmul(
            out,
            x,
            Trans::N,
            &self.weight,
            Trans::N,
            rows,
            self.n_in,
            self.n_out,
            true,
        );
    }

    /// `out[k] = b + sum_j x[rows[k], j] * W[j]`: a gather-add over the active features
    /// that never forms a dense row, parallel over rows (independent outputs). The rows of
    /// features a few ahead are prefetched: they are random in memory.
    pub fn affine_sparse_rows(&self, x: &CsrMatrix, rows: &[usize], out: &mut [f32]) {
        let n_out = self.n_out;
        debug_assert_eq!(out.len(), rows.len() * n_out);
        out.par_chunks_mut(n_out)
            .zip(rows.par_iter())
            .with_min_len(4)
            .for_each_init(
                || vec![0.0f64; n_out],
                |acc, (o, &r)| {
                    // Summed in f64 and rounded once: a row of a thousand features summed
                    // in f32 drifts by several ulps (1.3e-5 at a logit of 29 on SpamAssassin),
                    // which an exported ONNX graph or any other runtime cannot reproduce.
                    acc.fill(0.0);
                    let (idx, val) = x.row(r);
                    for (p, (&j, &v)) in idx.iter().zip(val).enumerate() {
                        if let Some(&ahead) = idx.get(p + kernels::PREFETCH_AHEAD) {
                            let at = ahead as usize * n_out;
                            kernels::prefetch(self.weight[at..].as_ptr(), n_out);
                        }
                        let w = &self.weight[j as usize * n_out..(j as usize + 1) * n_out];
                        if v == 1.0 {
                            kernels::add_assign_wide(acc, w);
                        } else {
                            kernels::axpy_wide(acc, f64::from(v), w);
                        }
                    }
                    for ((o, &a), &b) in o.iter_mut().zip(acc.iter()).zip(&self.bias) {
                        *o = (a + f64::from(b)) as f32;
                    }
                },
            );
    }

    /// `a = act(z)` for rows of `n_out` units, whole rows per parallel task (a `mixed`
    /// layer's units are numbered from the start of each row). Small blocks (the attacks'
    /// candidate blocks, one-row passes) stay on the calling thread.
    pub fn activate(&self, z: &[f32], a: &mut [f32]) {
        let (act, width) = (self.activation, self.n_out);
        let chunk = (ROW_CHUNK_ELEMS / width).max(1) * width;
        if z.len() <= chunk {
            return activate_rows(act, width, z, a);
        }
        a.par_chunks_mut(chunk)
            .zip(z.par_chunks(chunk))
            .for_each(|(a, z)| activate_rows(act, width, z, a));
    }

    /// `d *= act'(z)` for rows of `n_out` units (`a = act(z)`): the backward pass through
    /// this layer's activation.
    pub fn scale_by_derivative(&self, z: &[f32], a: &[f32], d: &mut [f32]) {
        let (act, width) = (self.activation, self.n_out);
        let chunk = (ROW_CHUNK_ELEMS / width).max(1) * width;
        d.par_chunks_mut(chunk)
            .zip(z.par_chunks(chunk).zip(a.par_chunks(chunk)))
            .for_each(|(d, (z, a))| {
                let rows = d
                    .chunks_exact_mut(width)
                    .zip(z.chunks_exact(width).zip(a.chunks_exact(width)));
                for (d, (z, a)) in rows {
                    act.scale_by_derivative_row(z, a, d);
                }
            });
    }

    /// The kernel's gradient `gw = x^T dz` for `rows` input rows `x` and output
    /// gradients `dz`.
    pub fn kernel_grad(&self, x: &[f32], dz: &[f32], rows: usize, gw: &mut [f32]) {
        matmul(
            gw,
            x,
            Trans::T,
            dz,
            Trans::N,
            self.n_in,
            rows,
            self.n_out,
            false,
        );
    }

    /// The gradient reaching the input, `dx = dz W^T`.
    pub fn input_grad(&self, dz: &[f32], rows: usize, dx: &mut [f32]) {
        matmul(
            dx,
            dz,
            Trans::N,
            &self.weight,
            Trans::T,
            rows,
            self.n_out,
            self.n_in,
            false,
        );
    }

    /// The bias gradient: column sums of `dz`, each summed in row order on one thread.
    pub fn bias_grad(&self, dz: &[f32], gb: &mut [f32]) {
        gb.fill(0.0);
        for row in dz.chunks_exact(self.n_out) {
            for (g, d) in gb.iter_mut().zip(row) {
                *g += d;
            }
        }
    }
}

/// `a = act(z)` over whole rows of `width` units; the piecewise-linear activations through
/// the vectorised kernel (bitwise the same as [`Activation::apply`]).
fn activate_rows(act: Activation, width: usize, z: &[f32], a: &mut [f32]) {
    match act {
        Activation::Identity => a.copy_from_slice(z),
        Activation::Relu => kernels::leaky_relu_into(a, z, 0.0),
        Activation::LeakyRelu => kernels::leaky_relu_into(a, z, super::activation::LEAKY_SLOPE),
        _ => {
            for (a, z) in a.chunks_exact_mut(width).zip(z.chunks_exact(width)) {
                act.apply_row(z, a);
            }
        }
    }
}
