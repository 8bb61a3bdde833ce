//! Training: mini-batch gradient descent on the mean BCE-with-logits loss, with a
//! projection (or reparametrisation) after every step so constrained weights stay feasible.
//!
//! - [`config`]: what a run is asked to do, and the recipe of defaults for monotone networks;
//! - [`network`]: the initial network (constraints, init inside them, bias centring);
//! - [`trainer`]: one step: forward, loss, backward, clipping, update;
//! - [`dropout`]: the masks of dropout in training, drawn from the run's seed;
//! - [`update`]: the optimizer's update kernels (dense tensors and lazy sparse rows);
//! - [`projection`]: where constraints are applied after each step;
//! - [`reparam`]: NonNeg by `w = |t|` or `w = softplus(t)` instead of projection;
//! - [`robust`]: verified training, the loss on a sound lower bound under K additions;
//! - [`fit`]: epochs, validation, early stopping, thresholds;
//! - [`checkpoint`]: the run's state saved between batches, to resume after a kill;
//! - `distributed` (feature `distributed`): data-parallel steps over MPI ranks.
//!
//! Determinism: one seed drives the init and the shuffles; every parallel loop splits over
//! independent outputs (rows of a batch, units, features of a sparse layer) and no
//! floating-point reduction is split across threads, so the thread count never changes a
//! bit.

pub mod checkpoint;
pub mod config;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod dropout;
pub mod fit;
pub mod network;
pub mod projection;
mod reparam;
pub mod robust;
pub mod trainer;
mod update;

pub use config::{
    is_monotone, pos_weights, pos_weights_of_counts, recipe, LayerConstraints, Monitor, PosWeight,
    Preset, Recipe, TrainConfig,
};
pub use fit::{
    macro_auc, train, train_source, train_with, validate, BatchSource, Control, EpochReport,
    Progress, TrainReport, ValidSource,
};
pub use network::{build_network, center_biases};
pub use robust::RobustConfig;
pub use trainer::Trainer;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CsrMatrix, Dataset, DenseMatrix, Features};

    /// A logistic regression whose every weight the first Adam step drives below zero
    /// (all labels 0, all inputs positive, weights at 1e-4): each one is clipped.
    fn clipped_step(reset: bool, sparse: bool) -> (Vec<f32>, Vec<f32>) {
        let mut cfg = TrainConfig::new(vec![], Preset::Monotone);
        cfg.reset_clipped_moments = reset;
        cfg.optimizer.lr = 0.1;
        cfg.batch_size = 4;
        let values = vec![1.0, 2.0, 0.5, 0.3, 1.0, 1.0, 2.0, 0.1, 0.7, 1.5, 1.5, 0.2];
        let x = if sparse {
            // The same values as CSR (every entry stored): the lazy row-sparse update.
            Features::Sparse(CsrMatrix {
                rows: 4,
                cols: 3,
                indptr: vec![0, 3, 6, 9, 12],
                indices: vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2],
                values,
            })
        } else {
            Features::Dense(DenseMatrix {
                rows: 4,
                cols: 3,
                values,
            })
        };
        let data = Dataset {
            x,
            y: Some(vec![0.0, 0.0, 0.0, 1.0]),
            n_labels: 1,
            label_names: vec!["y".into()],
            feature_names: None,
            source: "test".into(),
        };
        let mut mlp = build_network(&cfg, 3, sparse, 1).unwrap();
        mlp.layers[0].weight = vec![1e-4, 1e-4, 5.0];
        let mut t = Trainer::new(mlp, &cfg);
        t.step(&data, &[0, 1, 2, 3], &[1.0], 0.1);
        (t.mlp.layers[0].weight.clone(), t.weight_state[0].m.clone())
    }

    #[test]
    fn reset_clipped_moments_zeroes_the_momentum_of_clipped_weights_only() {
        for sparse in [false, true] {
            let (w, m) = clipped_step(false, sparse);
            assert_eq!(&w[..2], &[0.0, 0.0]);
            assert!(w[2] > 0.0);
            assert!(m.iter().all(|&m| m != 0.0), "{m:?}");
            let (w2, m2) = clipped_step(true, sparse);
            assert_eq!(w2, w);
            assert_eq!(&m2[..2], &[0.0, 0.0], "sparse {sparse}");
            assert_eq!(m2[2], m[2]);
        }
    }
}
