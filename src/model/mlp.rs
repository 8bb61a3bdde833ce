//! The network: hidden layers, an output layer with one logit per label, and an optional
//! linear skip connection from the input to the logits. Its forward and backward pass
//! live here, once, for training, inference, bias centring and the attacks.

use super::{Activation, Dense};
use crate::data::{CsrMatrix, Features};
use crate::kernels;

/// A multi-layer perceptron: hidden layers then one output logit per label.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub input_dim: usize,
    /// Whether the first layer takes sparse input (gather-add) in training.
    pub sparse_input: bool,
    pub layers: Vec<Dense>,
    /// A linear skip connection from the input straight to the output logits (identity
    /// activation, no bias of its own: the output layer's bias serves both). With a NonNeg
    /// kernel the model is a monotone linear part plus a monotone MLP.
    pub skip: Option<Dense>,
}

/// The rows a forward pass reads (already scaled).
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// Dense rows laid out one after the other, `input_dim` values each.
    Dense(&'a [f32]),
    /// These rows of a sparse matrix.
    Sparse(&'a CsrMatrix, &'a [usize]),
}

impl Input<'_> {
    /// `layer`'s pre-activation `z = x W + b` for these rows.
    pub fn affine(&self, layer: &Dense, rows: usize, z: &mut [f32]) {
        match *self {
            Input::Dense(x) => layer.affine_dense(&x[..rows * layer.n_in], rows, z),
            Input::Sparse(x, r) => layer.affine_sparse_rows(x, &r[..rows], z),
        }
    }

    fn rows(&self, input_dim: usize) -> usize {
        match *self {
            Input::Dense(x) => x.len() / input_dim.max(1),
            Input::Sparse(_, r) => r.len(),
        }
    }
}

/// What a forward pass keeps for the backward pass: each layer's pre-activation `z` and
/// activation `a` (the output layer has no activation: its `z` are the logits, skip
/// connection included), and the backward pass's `dz = d loss / d z`. Sized for `capacity` rows, reused across
/// batches.
pub struct Tape {
    pub z: Vec<Vec<f32>>,
    pub a: Vec<Vec<f32>>,
    pub dz: Vec<Vec<f32>>,
    /// Dropout in training: `masks[l]` (`rows x width`, 0 or 1 / (1 - p)) multiplies hidden
    /// layer `l`'s activations in the forward pass and their gradient in the backward pass;
    /// a layer without a mask (inference: none has one) is left as it is.
    pub masks: Vec<Vec<f32>>,
    /// The backward pass's activations of a masked layer before the mask (tanh and sigmoid
    /// take their derivative from them).
    unmasked: Vec<f32>,
    /// Rows of the last forward pass.
    pub rows: usize,
    capacity: usize,
    labels: usize,
}

impl Tape {
    pub fn new(mlp: &Mlp, capacity: usize) -> Self {
        let buffers = || -> Vec<Vec<f32>> {
            mlp.layers
                .iter()
                .map(|l| vec![0.0; capacity * l.n_out])
                .collect()
        };
        Tape {
            z: buffers(),
            a: buffers(),
            dz: Vec::new(),
            masks: Vec::new(),
            unmasked: Vec::new(),
            rows: 0,
            capacity,
            labels: mlp.n_labels(),
        }
    }

    /// The logits `[rows x labels]` of the last forward pass.
    pub fn logits(&self) -> &[f32] {
        &self.z[self.z.len() - 1][..self.rows * self.labels]
    }

    /// The logits and `d loss / d logits` (for the caller to fill before
    /// [`Mlp::backward`]) of the last forward pass.
    pub fn logits_and_dlogits(&mut self) -> (&[f32], &mut [f32]) {
        if self.dz.len() != self.z.len() {
            // Inference never needs them: allocated on the first backward pass.
            self.dz = self.z.iter().map(|z| vec![0.0; z.len()]).collect();
        }
        let (last, len) = (self.z.len() - 1, self.rows * self.labels);
        (&self.z[last][..len], &mut self.dz[last][..len])
    }
}

/// Gradients of the parameters the backward pass forms densely: every kernel fed by
/// dense activations (`kernel[0]` and `skip` stay empty for sparse input: the trainer
/// forms their rows lazily from `dz`), and every bias.
pub struct Grads {
    pub kernel: Vec<Vec<f32>>,
    pub bias: Vec<Vec<f32>>,
    pub skip: Vec<f32>,
}

impl Grads {
    pub fn new(mlp: &Mlp) -> Self {
        let sparse = mlp.sparse_input;
        Grads {
            kernel: mlp
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| match i == 0 && sparse {
                    true => vec![],
                    false => vec![0.0; l.weight.len()],
                })
                .collect(),
            bias: mlp.layers.iter().map(|l| vec![0.0; l.n_out]).collect(),
            skip: match &mlp.skip {
                Some(s) if !sparse => vec![0.0; s.weight.len()],
                _ => vec![],
            },
        }
    }
}

/// Multiplies `v` by a dropout mask, element by element.
fn apply_mask(v: &mut [f32], mask: &[f32]) {
    v.iter_mut().zip(mask).for_each(|(v, m)| *v *= m);
}

/// Rows scored at once at inference: bounds memory for any data size.
const INFERENCE_BLOCK: usize = 2048;

impl Mlp {
    pub fn n_labels(&self) -> usize {
        self.layers.last().map_or(0, |l| l.n_out)
    }

    /// The forward pass over `input`, kept on `tape`; returns the logits `[rows x labels]`.
    pub fn forward<'t>(&self, input: Input, tape: &'t mut Tape) -> &'t [f32] {
        self.forward_with(input, tape, |_, _, _| {});
        tape.logits()
    }

    /// The forward pass, calling `hook(l, layer, z)` on each layer's pre-activations
    /// before its activation (bias centring shifts them there).
    pub fn forward_with(
        &self,
        input: Input,
        tape: &mut Tape,
        hook: impl FnMut(usize, &Dense, &mut [f32]),
    ) {
        let b = input.rows(self.input_dim);
        tape.rows = b;
        self.run_layers(Some(input), 0, tape, hook);
        if let Some(skip) = &self.skip {
            let mut s = vec![0.0; b * skip.n_out];
            input.affine(skip, b, &mut s);
            let n = self.layers.len();
            kernels::add_assign(&mut tape.z[n - 1][..b * skip.n_out], &s);
        }
    }

    /// The layers from `from >= 1` up, on `rows` rows of the activations entering layer
    /// `from`, which the caller wrote into `tape.a[from - 1]`; returns the logits without
    /// the skip connection. The attacks score candidate additions this way: only the
    /// layers above the ones a candidate changes are run.
    pub fn forward_from<'t>(&self, from: usize, rows: usize, tape: &'t mut Tape) -> &'t [f32] {
        assert!(from >= 1 && from < self.layers.len());
        tape.rows = rows;
        self.run_layers(None, from, tape, |_, _, _| {});
        tape.logits()
    }

    /// Layers `from..`: the first reads `input` when given, every other one the
    /// activations below it on the tape.
    fn run_layers(
        &self,
        input: Option<Input>,
        from: usize,
        tape: &mut Tape,
        mut hook: impl FnMut(usize, &Dense, &mut [f32]),
    ) {
        let b = tape.rows;
        assert!(b <= tape.capacity, "batch larger than the tape");
        let n = self.layers.len();
        for (l, layer) in self.layers.iter().enumerate().skip(from) {
            let (below, here) = tape.a.split_at_mut(l);
            let z = &mut tape.z[l][..b * layer.n_out];
            match (l, input) {
                (0, Some(input)) => input.affine(layer, b, z),
                _ => layer.affine_dense(&below[l - 1][..b * layer.n_in], b, z),
            }
            hook(l, layer, z);
            if l + 1 < n {
                let a = &mut here[0][..b * layer.n_out];
                layer.activate(z, a);
                if let Some(m) = tape.masks.get(l).filter(|m| !m.is_empty()) {
                    apply_mask(a, m);
                }
            }
        }
    }

    /// The backward pass of the last forward pass on `tape`, whose `dlogits` the caller
    /// filled ([`Tape::logits_and_dlogits`]): leaves `d / d z` of every layer in `tape.dz` and, with
    /// `grads`, the kernel gradients of dense-fed layers and the bias gradients.
    pub fn backward(&self, input: Input, tape: &mut Tape, mut grads: Option<&mut Grads>) {
        let b = tape.rows;
        let n = self.layers.len();
        if let (Some(g), Some(skip), Input::Dense(x)) = (grads.as_deref_mut(), &self.skip, input) {
            skip.kernel_grad(
                &x[..b * skip.n_in],
                &tape.dz[n - 1][..b * skip.n_out],
                b,
                &mut g.skip,
            );
        }
        for l in (0..n).rev() {
            let layer = &self.layers[l];
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            let (lower, upper) = tape.dz.split_at_mut(l);
            let dz = &upper[0][..b * n_out];
            if let Some(g) = grads.as_deref_mut() {
                layer.bias_grad(dz, &mut g.bias[l]);
            }
            if l == 0 {
                if let (Some(g), Input::Dense(x)) = (grads.as_deref_mut(), input) {
                    layer.kernel_grad(&x[..b * n_in], dz, b, &mut g.kernel[0]);
                }
                break;
            }
            // The kernel gradient and d loss / d a_{l-1} = dz W^T are independent
            // products: run them side by side.
            let da = &mut lower[l - 1][..b * n_in];
            let a_prev = &tape.a[l - 1][..b * n_in];
            match grads.as_deref_mut() {
                Some(g) => {
                    let gw = &mut g.kernel[l];
                    rayon::join(
                        || layer.kernel_grad(a_prev, dz, b, gw),
                        || layer.input_grad(dz, b, da),
                    );
                }
                None => layer.input_grad(dz, b, da),
            }
            let (below, z_below) = (&self.layers[l - 1], &tape.z[l - 1][..b * n_in]);
            match tape.masks.get(l - 1).filter(|m| !m.is_empty()) {
                Some(m) => {
                    apply_mask(da, m);
                    tape.unmasked.resize(da.len(), 0.0);
                    below.activate(z_below, &mut tape.unmasked);
                    below.scale_by_derivative(z_below, &tape.unmasked, da);
                }
                None => below.scale_by_derivative(z_below, a_prev, da),
            }
        }
    }

    /// Output logits `[rows x n_labels]` for already-scaled features, in blocks.
    pub fn logits(&self, x: &Features) -> Vec<f32> {
        let rows = x.rows();
        let mut tape = Tape::new(self, rows.min(INFERENCE_BLOCK));
        let mut out = Vec::with_capacity(rows * self.n_labels());
        let mut start = 0;
        while start < rows {
            let end = (start + INFERENCE_BLOCK).min(rows);
            let ids: Vec<usize>;
            let input = match x {
                Features::Dense(m) => Input::Dense(&m.values[start * m.cols..end * m.cols]),
                Features::Sparse(m) => {
                    ids = (start..end).collect();
                    Input::Sparse(m, &ids)
                }
            };
            out.extend_from_slice(self.forward(input, &mut tape));
            start = end;
        }
        out
    }

    /// The skip connection for this network: `input_dim x labels`, zero (a feasible start
    /// for any sign constraint), with the elementwise (per-feature) constraints of the
    /// first layer's kernel, so each feature keeps the same sign rule on both its paths.
    pub fn new_skip(&self) -> Dense {
        let mut skip = Dense::zeros(self.input_dim, self.n_labels(), Activation::Identity);
        skip.kernel_constraints = self.layers[0]
            .kernel_constraints
            .iter()
            .filter(|c| c.is_elementwise())
            .cloned()
            .collect();
        skip
    }
}
