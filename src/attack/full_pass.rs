//! One row's full forward pass and gradient, for the attacker: the first layer's
//! pre-activation of a row, the skip connection's part of the logit, the layers above the
//! first on a block of rows, and the logit's gradient with respect to `z1`.

use super::scorer::{activate, Attacker, TargetState};
use super::RowRef;
use crate::kernels;
use crate::linalg::{matmul, Trans};

// Full forward and gradient of one row: the lead replaces these with model::Mlp::forward/backward.
impl Attacker<'_> {
    /// The first layer's activations for its pre-activations `z1`.
    pub(super) fn first_activations(&self, z1: &[f32]) -> Vec<f32> {
        let mut a = vec![0.0; z1.len()];
        self.act1.apply_row(z1, &mut a);
        a
    }

    /// The skip connection's contribution to the attacked logit at a row (0 without one).
    pub(super) fn start_skip(&self, row: RowRef) -> f32 {
        let Some(skip) = &self.model.mlp.skip else {
            return 0.0;
        };
        let w = |j: usize| skip.weight[j * skip.n_out + self.label];
        match row {
            RowRef::Dense(vals) => vals
                .iter()
                .enumerate()
                .map(|(j, &v)| self.scaled(j, v) * w(j))
                .sum(),
            RowRef::Sparse(idx, vals) => idx
                .iter()
                .zip(vals)
                .map(|(&j, &v)| self.scaled(j as usize, v) * w(j as usize))
                .sum(),
        }
    }

    /// The first layer's pre-activation of a row (no cache built).
    pub(super) fn start_z1(&self, row: RowRef) -> Vec<f32> {
        let first = &self.model.mlp.layers[0];
        let mut z1 = first.bias.clone();
        match row {
            RowRef::Dense(vals) => {
                let scaled: Vec<f32> = vals
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| self.scaled(j, v))
                    .collect();
                matmul(
                    &mut z1,
                    &scaled,
                    Trans::N,
                    &first.weight,
                    Trans::N,
                    1,
                    first.n_in,
                    self.h1,
                    true,
                );
            }
            RowRef::Sparse(idx, vals) => {
                for (&j, &v) in idx.iter().zip(vals) {
                    let s = self.scaled(j as usize, v);
                    let w = &first.weight[j as usize * self.h1..(j as usize + 1) * self.h1];
                    if s == 1.0 {
                        kernels::add_assign(&mut z1, w);
                    } else {
                        kernels::axpy(&mut z1, s, w);
                    }
                }
            }
        }
        z1
    }

    /// Runs the layers above the first from `upper[start]` on `rows` rows of `input`
    /// (the activations entering that layer); writes one logit per row.
    pub(super) fn run_upper(
        &self,
        start: usize,
        input: &[f32],
        rows: usize,
        ws_a: &mut Vec<f32>,
        ws_b: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        if self.upper.is_empty() {
            // No hidden layer: the first layer is the output.
            for r in 0..rows {
                out[r] = input[r * self.h1 + self.label];
            }
            return;
        }
        let layers = &self.upper[start..];
        for (k, layer) in layers.iter().enumerate() {
            ws_b.clear();
            for _ in 0..rows {
                ws_b.extend_from_slice(&layer.b);
            }
            let src: &[f32] = if k == 0 { input } else { ws_a };
            matmul(
                ws_b,
                &src[..rows * layer.n_in],
                Trans::N,
                &layer.w,
                Trans::N,
                rows,
                layer.n_in,
                layer.n_out,
                true,
            );
            activate(layer.act, ws_b, layer.n_out);
            std::mem::swap(ws_a, ws_b);
        }
        if layers.is_empty() {
            out[..rows].copy_from_slice(&input[..rows]);
        } else {
            out[..rows].copy_from_slice(&ws_a[..rows]);
        }
    }

    /// Gradient of the logit with respect to the first layer's pre-activation.
    pub(super) fn grad_z1(&self, st: &TargetState) -> Vec<f32> {
        if self.upper.is_empty() {
            let mut g = vec![0.0; self.h1];
            g[self.label] = 1.0;
            return g;
        }
        // Forward, keeping pre-activations and activations.
        let mut zs: Vec<Vec<f32>> = vec![st.z1.clone()];
        let mut acts: Vec<Vec<f32>> = vec![self.first_activations(&st.z1)];
        for layer in &self.upper {
            let mut z = layer.b.clone();
            matmul(
                &mut z,
                acts.last().unwrap(),
                Trans::N,
                &layer.w,
                Trans::N,
                1,
                layer.n_in,
                layer.n_out,
                true,
            );
            acts.push(
                z.iter()
                    .enumerate()
                    .map(|(u, &v)| layer.act.apply(v, u))
                    .collect(),
            );
            zs.push(z);
        }
        // Backward.
        let last = zs.len() - 1;
        let mut delta: Vec<f32> =
            vec![self.upper[last - 1]
                .act
                .derivative(zs[last][0], acts[last][0], 0)];
        for l in (0..self.upper.len()).rev() {
            let layer = &self.upper[l];
            // d/d a_in = W delta
            let mut da = vec![0.0f32; layer.n_in];
            for (i, v) in da.iter_mut().enumerate() {
                let row = &layer.w[i * layer.n_out..(i + 1) * layer.n_out];
                *v = row.iter().zip(&delta).map(|(w, d)| w * d).sum();
            }
            // through the activation of the layer below (upper[l-1], or the first layer)
            let act = if l == 0 {
                self.act1
            } else {
                self.upper[l - 1].act
            };
            delta = da
                .iter()
                .zip(zs[l].iter().zip(&acts[l]))
                .enumerate()
                .map(|(u, (g, (&z, &a)))| g * act.derivative(z, a, u))
                .collect();
        }
        delta
    }
}
