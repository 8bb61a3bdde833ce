//! nonneg: neural classifiers that cannot be evaded by adding features.
//!
//! Architecture, one module a concept, in data-flow order:
//! [`data`] -> [`features`] -> [`model`] (layers, one forward/backward pass, constraints)
//! -> [`train`] (with [`optim`], [`loss`]) -> [`pipeline`] (data + options -> model) ->
//! [`metrics`] / [`certify`] / [`attack`]. The `nonneg` binary only parses and prints.

pub mod atomic;
pub mod attack;
pub mod certify;
pub mod data;
pub mod error;
pub mod export;
pub mod features;
pub mod kernels;
pub mod linalg;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod pipeline;
pub mod plot;
pub mod rng;
#[cfg(feature = "serve")]
pub mod serve;
pub mod train;

pub use error::{Error, Result};
