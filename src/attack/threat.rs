//! The threat model's two choices, shared by the attacks and the budget certificates
//! ([`crate::certify::budget`]): which features an attacker may add, and how far.

use crate::error::{Error, Result};
use crate::model::Model;

/// The features an attacker may add: the list given (checked, sorted, unique), else every
/// feature but those the model declares as lowered by additions (NonPos first-layer rows,
/// `train --feature-directions`): raising those is not an addition.
pub fn addable_features(model: &Model, list: Option<&[usize]>) -> Result<Vec<u32>> {
    let d = model.mlp.input_dim;
    let Some(list) = list else {
        let signs = crate::model::init::row_signs(&model.mlp.layers[0]);
        return Ok((0..d as u32)
            .filter(|&j| signs[j as usize] >= 0.0)
            .collect());
    };
    let mut v: Vec<u32> = Vec::with_capacity(list.len());
    for &j in list {
        if j >= d {
            return Err(Error::invalid(format!(
                "addable feature {j} is out of range (the model has {d} features)"
            )));
        }
        v.push(j as u32);
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// The most each feature may reach when added: `max_value` for all, else the model's
/// `feature_max` (its training maximum).
pub fn feature_caps(model: &Model, max_value: Option<f32>) -> Result<Vec<f32>> {
    let d = model.mlp.input_dim;
    match (max_value, &model.feature_max) {
        (Some(v), _) if !v.is_finite() => Err(Error::invalid(format!(
            "the cap of added features must be a finite number, got {v}"
        ))),
        (Some(v), _) => Ok(vec![v; d]),
        (None, Some(max)) if max.len() == d => Ok(max.clone()),
        (None, _) => Err(Error::invalid(
            "the model stores no per-feature maximum: give a cap (the `max_value` option)",
        )),
    }
}
