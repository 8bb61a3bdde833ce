//! The model: an MLP whose first layer takes dense or sparse input, with per-tensor
//! constraints, plus what the model file carries around it (scaling, threshold, names).

pub mod activation;
pub mod constraint;
pub mod init;
pub mod io;
pub mod scaler;

pub use activation::Activation;
pub use constraint::Constraint;
pub use scaler::Scaler;

use crate::data::{CsrMatrix, Features};
use crate::kernels;
use crate::linalg::{matmul, Trans};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How non-negativity is enforced on constrained entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NonNegMode {
    /// Projection after each step (`w * (w >= 0)`), as Keras.
    #[default]
    Project,
    /// Train a free parameter `t`, use `w = |t|`.
    Abs,
    /// Train a free parameter `t`, use `w = softplus(t)`.
    Softplus,
}

impl NonNegMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "project" => Some(NonNegMode::Project),
            "abs" => Some(NonNegMode::Abs),
            "softplus" => Some(NonNegMode::Softplus),
            _ => None,
        }
    }
}

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
            weight: crate::kernels::zeroed_buffer(n_in * n_out),
            bias: vec![0.0; n_out],
            activation,
            kernel_constraints: Vec::new(),
            bias_constraints: Vec::new(),
        }
    }

    /// Applies every kernel and bias constraint (the projection after a step).
    pub fn project(&mut self) {
        for c in &self.kernel_constraints {
            c.apply(&mut self.weight, self.n_in, self.n_out);
        }
        for c in &self.bias_constraints {
            c.apply(&mut self.bias, self.n_out, 1);
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

    /// `out[r] = b + sum_j x[r, j] * W[j]` over the active features of rows `start..end`.
    pub fn affine_sparse(&self, x: &CsrMatrix, start: usize, end: usize, out: &mut [f32]) {
        let rows: Vec<usize> = (start..end).collect();
        self.affine_sparse_rows(x, &rows, out);
    }

    /// The same for arbitrary `rows` (a training batch): a gather-add that never forms a
    /// dense row, parallel over rows (independent outputs). The rows of features a few
    /// ahead are prefetched: they are random in memory.
    pub fn affine_sparse_rows(&self, x: &CsrMatrix, rows: &[usize], out: &mut [f32]) {
        let n_out = self.n_out;
        debug_assert_eq!(out.len(), rows.len() * n_out);
        out.par_chunks_mut(n_out)
            .zip(rows.par_iter())
            .with_min_len(4)
            .for_each(|(o, &r)| {
                o.copy_from_slice(&self.bias);
                let (idx, val) = x.row(r);
                for (p, (&j, &v)) in idx.iter().zip(val).enumerate() {
                    if let Some(&ahead) = idx.get(p + crate::kernels::PREFETCH_AHEAD) {
                        let at = ahead as usize * n_out;
                        crate::kernels::prefetch(self.weight[at..].as_ptr(), n_out);
                    }
                    let w = &self.weight[j as usize * n_out..(j as usize + 1) * n_out];
                    if v == 1.0 {
                        crate::kernels::add_assign(o, w);
                    } else {
                        crate::kernels::axpy(o, v, w);
                    }
                }
            });
    }

    /// `a = act(z)` for rows of `n_out` units.
    pub fn activate(&self, z: &[f32], a: &mut [f32]) {
        for (a, z) in a
            .chunks_exact_mut(self.n_out)
            .zip(z.chunks_exact(self.n_out))
        {
            self.activation.apply_row(z, a);
        }
    }
}

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

/// Rows scored at once at inference: bounds memory for any data size.
const INFERENCE_BLOCK: usize = 2048;

impl Mlp {
    pub fn n_labels(&self) -> usize {
        self.layers.last().map_or(0, |l| l.n_out)
    }

    /// Output logits `[rows x n_labels]` for already-scaled features.
    pub fn logits(&self, x: &Features) -> Vec<f32> {
        let rows = x.rows();
        let mut out = Vec::with_capacity(rows * self.n_labels());
        let mut start = 0;
        while start < rows {
            let end = (start + INFERENCE_BLOCK).min(rows);
            out.extend(self.logits_block(x, start, end));
            start = end;
        }
        out
    }

    fn logits_block(&self, x: &Features, start: usize, end: usize) -> Vec<f32> {
        let n = end - start;
        let first = &self.layers[0];
        let mut z = vec![0.0; n * first.n_out];
        match x {
            Features::Dense(m) => {
                first.affine_dense(&m.values[start * m.cols..end * m.cols], n, &mut z)
            }
            Features::Sparse(m) => first.affine_sparse(m, start, end, &mut z),
        }
        let mut a = z.clone();
        first.activate(&z, &mut a);
        for layer in &self.layers[1..] {
            let mut z = vec![0.0; n * layer.n_out];
            layer.affine_dense(&a, n, &mut z);
            a = z.clone();
            layer.activate(&z, &mut a);
        }
        if let Some(skip) = &self.skip {
            let mut s = vec![0.0; n * skip.n_out];
            match x {
                Features::Dense(m) => {
                    skip.affine_dense(&m.values[start * m.cols..end * m.cols], n, &mut s)
                }
                Features::Sparse(m) => skip.affine_sparse(m, start, end, &mut s),
            }
            kernels::add_assign(&mut a, &s);
        }
        a
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

    /// Sizes of every layer's input then the output: `[in, h1, ..., labels]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.input_dim];
        w.extend(self.layers.iter().map(|l| l.n_out));
        w
    }
}

/// Everything a model file holds: the network and what turns raw data into its input and
/// its output into decisions.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub mlp: Mlp,
    /// Scaling applied to raw features before the network.
    pub scaler: Scaler,
    /// Decision threshold on the logit, per label (a row is positive when logit >= it).
    pub threshold: Vec<f32>,
    pub feature_names: Option<Vec<String>>,
    pub label_names: Vec<String>,
    pub nonneg_mode: NonNegMode,
    /// Largest value of each raw feature in the training data (bounds real-valued attacks).
    pub feature_max: Option<Vec<f32>>,
    /// The featurizer that turns raw samples into this model's features, if any.
    pub featurizer: Option<crate::features::FeaturizerSpec>,
    /// The training configuration, for the record.
    pub training: serde_json::Value,
}

impl Model {
    /// Scales raw features and returns logits `[rows x n_labels]`.
    pub fn logits(&self, x: &Features) -> Vec<f32> {
        if self.scaler.kind == scaler::ScaleKind::None {
            return self.mlp.logits(x);
        }
        let mut x = x.clone();
        self.scaler.apply(&mut x);
        self.mlp.logits(&x)
    }
}
