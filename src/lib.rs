//! nonneg: neural classifiers that cannot be evaded by adding features.
//!
//! Architecture, one module a concept:
//! data -> features -> model (layers, constraints, optimizers) -> train ->
//! eval / certify / attack -> CLI.

pub mod attack;
pub mod attack_raw;
pub mod certify;
pub mod certify_budget;
pub mod data;
pub mod error;
pub mod features;
pub mod kernels;
pub mod linalg;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod rng;
pub mod train;

pub use error::{Error, Result};
