//! The model prepared for attacks: candidates and their caps, the layers above the first,
//! and exact scoring of every candidate addition (batched here, cached in `cached`).

use super::threat::{addable_features, feature_caps};
use super::{AttackConfig, Method, RowRef, Scoring};
use crate::error::{Error, Result};
use crate::kernels;
use crate::model::{Activation, Dense, Mlp, Model, Tape};

/// Rows scored per block (bounds the scratch memory).
pub(super) const BLOCK: usize = 256;
/// The cached scorer's per-target matrix `G` may use at most this many bytes (one per
/// worker thread, plus a shared reference)...
const CACHED_MAX_BYTES: usize = 64 << 20;
/// ... and its transposed copy of the first kernel at most this many.
const CACHED_MAX_TRANSPOSED_BYTES: usize = 1 << 30;

/// The model prepared for attacks under one configuration: caps, candidates and the
/// scorer's precomputed matrices. Build once, attack many targets.
pub struct Attacker<'m> {
    pub(super) model: &'m Model,
    pub(super) method: Method,
    /// Steps per target: the largest budget.
    pub(super) max_budget: usize,
    pub(super) seed: u64,
    pub(super) queries_per_step: usize,
    pub(super) label: usize,
    pub(super) threshold: f32,
    /// Whether rows come as sparse data (an implicit zero is scaled to 0).
    sparse: bool,
    /// Addable features (sorted); the attacker's candidates are those below their cap.
    pub(super) addable: Vec<u32>,
    /// Cap per addable feature.
    caps: Vec<f32>,
    pub(super) h1: usize,
    pub(super) act1: Activation,
    /// `W1` rows of the addable features `[A x h1]` (None: all features, use the model's).
    w1a: Option<Vec<f32>>,
    /// The layers above the first as a network of their own, whose input is the first
    /// layer's activation; the output layer keeps only the attacked label's column. None
    /// without a hidden layer (the first layer is the output).
    pub(super) upper: Option<Mlp>,
    pub(super) scoring: Scoring,
    /// Cached scorer: `W1a` transposed `[h1 x A]`.
    pub(super) w1a_t: Vec<f32>,
    /// Cached scorer: smallest and largest entry of each column of `W1a`.
    pub(super) col_min: Vec<f32>,
    pub(super) col_max: Vec<f32>,
    /// Cached scorer: reference slopes and `G_ref = W1a diag(s_ref) W2`.
    pub(super) reference: Option<(Vec<f32>, Vec<f32>)>,
    /// The skip connection's weight into the attacked logit, per addable entry: adding
    /// entry `a` moves the logit by `d_a * skip_a[a]` on top of the network's change.
    pub(super) skip_a: Option<Vec<f32>>,
}

/// A target under attack.
#[derive(Clone, Debug)]
pub struct TargetState {
    /// Scaled increase of each addable feature (0 once added or at its cap).
    pub(super) d: Vec<f32>,
    pub(super) alive: Vec<bool>,
    pub(super) n_alive: usize,
    /// First-layer pre-activation of the current row.
    pub(super) z1: Vec<f32>,
    /// Cached scorer: slopes at `z1`, and `G = W1a diag(slopes) W2`.
    pub(super) slopes: Vec<f32>,
    pub(super) g: Vec<f32>,
    /// Cached scorer: bounds on `d_a * W1a[a, i]` over the candidates, per unit.
    pub(super) lo: Vec<f32>,
    pub(super) hi: Vec<f32>,
    /// The skip connection's contribution to the attacked logit at the current row.
    pub(super) skip: f32,
}

impl TargetState {
    /// Candidates left (addable features below their cap).
    pub fn candidates(&self) -> usize {
        self.n_alive
    }
}

/// Scratch buffers of one worker.
#[derive(Default)]
pub struct Workspace {
    /// The upper network's forward pass, for up to a block of candidates.
    pub(super) tape: Option<Tape>,
    /// First-layer activations of a block of candidates.
    pub(super) a1: Vec<f32>,
    pub(super) b: Vec<f32>,
    pub(super) z2base: Vec<f32>,
    pub(super) changes: Vec<u32>,
    pub(super) gather: Vec<f32>,
    pub(super) corr: Vec<f32>,
    pub(super) dgather: Vec<f32>,
    pub(super) wgather: Vec<f32>,
    /// A spare `G` buffer.
    pub(super) g: Vec<f32>,
    /// The search's candidate ids and their scores.
    pub(super) ids: Vec<u32>,
    pub(super) scores: Vec<f32>,
}

/// The layers above the first as their own network (input: the first layer's activation),
/// the output layer restricted to `label`'s column; None without a hidden layer.
fn upper_network(mlp: &Mlp, label: usize) -> Option<Mlp> {
    let (first, rest) = mlp.layers.split_first()?;
    let (out, hidden) = rest.split_last()?;
    let mut layers = hidden.to_vec();
    let mut o = Dense::zeros(out.n_in, 1, out.activation);
    o.weight = (0..out.n_in)
        .map(|r| out.weight[r * out.n_out + label])
        .collect();
    o.bias = vec![out.bias[label]];
    layers.push(o);
    Some(Mlp {
        input_dim: first.n_out,
        sparse_input: false,
        layers,
        skip: None,
    })
}

/// The scorer for `cfg`: `Auto` takes the cached one for greedy when the first activation
/// is piecewise linear, there is a hidden layer, and its matrices fit the memory limits.
fn choose_scoring(
    cfg: &AttackConfig,
    act1: Activation,
    a: usize,
    h1: usize,
    h2: usize,
) -> Result<Scoring> {
    let piecewise = matches!(
        act1,
        Activation::Relu | Activation::LeakyRelu | Activation::Identity
    );
    let fits = a * h2 * 4 <= CACHED_MAX_BYTES && a * h1 * 4 <= CACHED_MAX_TRANSPOSED_BYTES;
    Ok(match cfg.scoring {
        Scoring::Auto if cfg.method == Method::Greedy && piecewise && h2 > 0 && fits => {
            Scoring::Cached
        }
        Scoring::Auto => Scoring::Batched,
        Scoring::Cached if !(piecewise && h2 > 0) => {
            return Err(Error::invalid(
                "cached scoring needs a hidden layer with relu, leaky_relu or identity",
            ))
        }
        s => s,
    })
}

impl<'m> Attacker<'m> {
    /// Prepares `model` for attacks under `cfg` on rows in the given format.
    pub fn new(model: &'m Model, cfg: &AttackConfig, sparse: bool) -> Result<Self> {
        let mlp = &model.mlp;
        let n_labels = mlp.n_labels();
        if cfg.label >= n_labels {
            return Err(Error::invalid(format!(
                "label {} is out of range: the model has {n_labels} label(s)",
                cfg.label
            )));
        }
        let addable = addable_features(model, cfg.addable.as_deref())?;
        let all_caps = feature_caps(model, cfg.max_value)?;
        let caps = addable.iter().map(|&j| all_caps[j as usize]).collect();
        let first = &mlp.layers[0];
        let h1 = first.n_out;
        let upper = upper_network(mlp, cfg.label);
        let h2 = upper.as_ref().map_or(0, |u| u.layers[0].n_out);
        let scoring = choose_scoring(cfg, first.activation, addable.len(), h1, h2)?;
        let w1a = (addable.len() != mlp.input_dim).then(|| {
            let mut w = Vec::with_capacity(addable.len() * h1);
            for &j in &addable {
                w.extend_from_slice(&first.weight[j as usize * h1..(j as usize + 1) * h1]);
            }
            w
        });
        let skip_a = mlp.skip.as_ref().map(|s| {
            addable
                .iter()
                .map(|&j| s.weight[j as usize * s.n_out + cfg.label])
                .collect()
        });
        let mut att = Attacker {
            model,
            method: cfg.method,
            max_budget: cfg.budgets.iter().copied().max().unwrap_or(0),
            seed: cfg.seed,
            queries_per_step: cfg.queries_per_step,
            label: cfg.label,
            threshold: model.threshold[cfg.label],
            sparse,
            addable,
            caps,
            h1,
            act1: first.activation,
            w1a,
            upper,
            scoring,
            w1a_t: Vec::new(),
            col_min: Vec::new(),
            col_max: Vec::new(),
            reference: None,
            skip_a,
        };
        if scoring == Scoring::Cached {
            att.build_cache();
        }
        Ok(att)
    }

    /// The scorer in use.
    pub fn scoring(&self) -> Scoring {
        self.scoring
    }

    /// Number of addable features.
    pub fn addable(&self) -> usize {
        self.addable.len()
    }

    /// The feature index of addable entry `a`.
    pub fn feature(&self, a: usize) -> usize {
        self.addable[a] as usize
    }

    pub(super) fn w1a(&self) -> &[f32] {
        self.w1a
            .as_deref()
            .unwrap_or(&self.model.mlp.layers[0].weight)
    }

    #[inline]
    pub(super) fn w1_row(&self, a: usize) -> &[f32] {
        &self.w1a()[a * self.h1..(a + 1) * self.h1]
    }

    /// The model's scaling of raw value `v` of feature `j` in this data format.
    #[inline]
    pub(super) fn scaled(&self, j: usize, v: f32) -> f32 {
        self.model.scaler.value(j, v, self.sparse)
    }

    /// Starts an attack on a row: its candidates, and the first layer's pre-activation.
    pub fn start(&self, row: RowRef) -> TargetState {
        self.start_with(row, Vec::new())
    }

    /// [`Attacker::start`], building the cached scorer's `G` in `g_buffer`.
    pub(super) fn start_with(&self, row: RowRef, g_buffer: Vec<f32>) -> TargetState {
        let x = self.addable_values(row);
        let a_n = self.addable.len();
        let z1 = self.start_z1(row);
        let mut d = vec![0.0f32; a_n];
        let mut alive = vec![false; a_n];
        let mut n_alive = 0;
        for a in 0..a_n {
            if x[a] < self.caps[a] {
                let j = self.addable[a] as usize;
                d[a] = self.scaled(j, self.caps[a]) - self.scaled(j, x[a]);
                alive[a] = true;
                n_alive += 1;
            }
        }
        let skip = self.start_skip(row);
        let mut st = TargetState {
            d,
            alive,
            n_alive,
            skip,
            z1,
            slopes: Vec::new(),
            g: Vec::new(),
            lo: Vec::new(),
            hi: Vec::new(),
        };
        if self.scoring == Scoring::Cached {
            self.init_cache(&mut st, g_buffer);
        }
        st
    }

    /// The raw value of each addable feature in a row.
    fn addable_values(&self, row: RowRef) -> Vec<f32> {
        let a_n = self.addable.len();
        let mut x = vec![0.0f32; a_n];
        match row {
            RowRef::Dense(vals) => {
                for (a, &j) in self.addable.iter().enumerate() {
                    x[a] = vals[j as usize];
                }
            }
            RowRef::Sparse(idx, vals) => {
                let mut p = 0;
                for (&j, &v) in idx.iter().zip(vals) {
                    while p < a_n && self.addable[p] < j {
                        p += 1;
                    }
                    if p < a_n && self.addable[p] == j {
                        x[p] = v;
                    }
                }
            }
        }
        x
    }

    /// The logit of the current row.
    pub fn logit(&self, st: &TargetState, ws: &mut Workspace) -> f32 {
        let mut out = [0.0f32];
        self.logits_from(0, &st.z1, 1, ws, &mut out);
        out[0] + st.skip
    }

    /// Scores addable entries `ids` (all candidates): `out[k]` is the logit after adding
    /// `ids[k]`, computed with the batched scorer.
    fn score_batched(&self, st: &TargetState, ids: &[u32], ws: &mut Workspace, out: &mut [f32]) {
        let h1 = self.h1;
        let mut z = std::mem::take(&mut ws.gather);
        for (block, o) in ids.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
            z.resize(block.len() * h1, 0.0);
            for (r, &a) in block.iter().enumerate() {
                let row = &mut z[r * h1..(r + 1) * h1];
                kernels::add_scaled(row, &st.z1, st.d[a as usize], self.w1_row(a as usize));
            }
            self.logits_from(0, &z, block.len(), ws, o);
        }
        ws.gather = z;
    }

    /// Logits after adding each candidate: `(feature, logit)` for every addable feature
    /// still below its cap, in feature order. Exact (up to float rounding).
    pub fn candidate_logits(&self, st: &TargetState, ws: &mut Workspace) -> Vec<(usize, f32)> {
        let ids: Vec<u32> = (0..self.addable.len() as u32)
            .filter(|&a| st.alive[a as usize])
            .collect();
        let mut out = vec![0.0; ids.len()];
        self.score(st, &ids, ws, &mut out);
        ids.iter()
            .zip(out)
            .map(|(&a, s)| (self.addable[a as usize] as usize, s))
            .collect()
    }

    /// `out[k]`: the logit after adding addable entry `ids[k]`, with the scorer in use.
    pub(super) fn score(&self, st: &TargetState, ids: &[u32], ws: &mut Workspace, out: &mut [f32]) {
        if self.scoring == Scoring::Cached {
            self.score_cached(st, ids, ws, out)
        } else {
            self.score_batched(st, ids, ws, out)
        }
        if let Some(skip) = &self.skip_a {
            for (o, &a) in out.iter_mut().zip(ids) {
                *o += st.skip + st.d[a as usize] * skip[a as usize];
            }
        }
    }

    /// Adds addable entry `a` (sets it to its cap) and updates the target.
    pub(super) fn add(&self, st: &mut TargetState, a: usize) {
        let d = st.d[a];
        let w = self.w1_row(a);
        kernels::axpy(&mut st.z1, d, w);
        if let Some(skip) = &self.skip_a {
            st.skip += d * skip[a];
        }
        st.d[a] = 0.0;
        st.alive[a] = false;
        st.n_alive -= 1;
        if self.scoring == Scoring::Cached {
            self.refresh_slopes(st);
        }
    }

    /// Adds `feature` to the target (for callers driving their own attack).
    pub fn add_feature(&self, st: &mut TargetState, feature: usize) -> Result<()> {
        let a = self
            .addable
            .binary_search(&(feature as u32))
            .map_err(|_| Error::invalid(format!("feature {feature} is not addable")))?;
        if !st.alive[a] {
            return Err(Error::invalid(format!(
                "feature {feature} is already at its cap"
            )));
        }
        self.add(st, a);
        Ok(())
    }
}
