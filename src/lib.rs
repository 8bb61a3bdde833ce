//! nonneg: neural classifiers that cannot be evaded by adding features.
//!
//! Architecture, one module a concept:
//! data -> features -> model (layers, constraints, optimizers) -> train ->
//! eval / certify / attack -> CLI.

pub mod data;
pub mod error;
pub mod features;

pub use error::{Error, Result};
