//! The attacker's full passes through the network, on the model's own forward and
//! backward pass: the first layer's pre-activation of a row and the skip connection's part
//! of the logit (the layer primitives), the logits of rows from any layer's
//! pre-activations up ([`Mlp::forward_from`] on the upper network), and the logit's
//! gradient with respect to `z1` ([`Mlp::backward`]).

use super::cached::CACHED_BLOCK;
use super::scorer::{Attacker, Workspace, BLOCK};
use super::RowRef;
use crate::data::CsrMatrix;
use crate::model::{Dense, Input, Tape};

impl Attacker<'_> {
    /// The first layer.
    fn first_layer(&self) -> &Dense {
        &self.model.mlp.layers[0]
    }

    /// The layer above the first (the cached scorer's `W2`); only with a hidden layer.
    pub(super) fn second_layer(&self) -> &Dense {
        &self.upper.as_ref().expect("a hidden layer").layers[0]
    }

    /// The first layer's activations for its pre-activations `z1`.
    pub(super) fn first_activations(&self, z1: &[f32]) -> Vec<f32> {
        let mut a = vec![0.0; z1.len()];
        self.first_layer().activate(z1, &mut a);
        a
    }

    /// `f(input)` on a row scaled as the model scales it.
    fn with_scaled_row<T>(&self, row: RowRef, f: impl FnOnce(Input) -> T) -> T {
        match row {
            RowRef::Dense(vals) => {
                let scaled: Vec<f32> = (0..vals.len()).map(|j| self.scaled(j, vals[j])).collect();
                f(Input::Dense(&scaled))
            }
            RowRef::Sparse(idx, vals) => {
                let one = CsrMatrix {
                    rows: 1,
                    cols: self.model.mlp.input_dim,
                    indptr: vec![0, idx.len()],
                    indices: idx.to_vec(),
                    values: idx
                        .iter()
                        .zip(vals)
                        .map(|(&j, &v)| self.scaled(j as usize, v))
                        .collect(),
                };
                f(Input::Sparse(&one, &[0]))
            }
        }
    }

    /// The first layer's pre-activation of a row (no cache built).
    pub(super) fn start_z1(&self, row: RowRef) -> Vec<f32> {
        let first = self.first_layer();
        let mut z1 = vec![0.0; first.n_out];
        self.with_scaled_row(row, |input| input.affine(first, 1, &mut z1));
        z1
    }

    /// The skip connection's contribution to the attacked logit at a row (0 without one):
    /// a dot product summed in feature order. (A one-row GEMM sums in another order, and a
    /// target whose logit sits on the threshold would then flip; see the notes of issue 12.)
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

    /// The attacked logits (without the skip connection) of `rows` rows whose
    /// pre-activations at layer `l` (0: the first layer, 1: the first of the upper network)
    /// are `z`, into `out`.
    pub(super) fn logits_from(
        &self,
        l: usize,
        z: &[f32],
        rows: usize,
        ws: &mut Workspace,
        out: &mut [f32],
    ) {
        let Some(upper) = &self.upper else {
            // No hidden layer: the first layer is the output.
            for (o, z) in out[..rows].iter_mut().zip(z.chunks_exact(self.h1)) {
                *o = z[self.label];
            }
            return;
        };
        // Layer `l` of the model is layer `l - 1` of the upper network.
        if l == upper.layers.len() {
            out[..rows].copy_from_slice(&z[..rows]);
            return;
        }
        let layer = if l == 0 {
            self.first_layer()
        } else {
            &upper.layers[l - 1]
        };
        let tape = ws
            .tape
            .get_or_insert_with(|| Tape::new(upper, CACHED_BLOCK.max(BLOCK)));
        let width = layer.n_out;
        if l == 0 {
            // The upper network's input is the first layer's activation.
            let a = &mut ws.a1;
            a.resize(rows * width, 0.0);
            layer.activate(&z[..rows * width], a);
            out[..rows].copy_from_slice(upper.forward(Input::Dense(a), tape));
        } else {
            layer.activate(&z[..rows * width], &mut tape.a[l - 1][..rows * width]);
            out[..rows].copy_from_slice(upper.forward_from(l, rows, tape));
        }
    }

    /// Gradient of the attacked logit with respect to the first layer's pre-activation.
    pub(super) fn grad_z1(&self, z1: &[f32]) -> Vec<f32> {
        let Some(upper) = &self.upper else {
            let mut g = vec![0.0; self.h1];
            g[self.label] = 1.0;
            return g;
        };
        let a1 = self.first_activations(z1);
        let mut tape = Tape::new(upper, 1);
        upper.forward(Input::Dense(&a1), &mut tape);
        tape.logits_and_dlogits().1[0] = 1.0;
        upper.backward(Input::Dense(&a1), &mut tape, None);
        // Through the upper network's first kernel and the first layer's activation.
        let mut g = vec![0.0; self.h1];
        upper.layers[0].input_grad(&tape.dz[0][..upper.layers[0].n_out], 1, &mut g);
        self.first_layer().scale_by_derivative(z1, &a1, &mut g);
        g
    }
}
