//! The quantile transform of [`ScaleKind::Quantile`](super::ScaleKind::Quantile): a
//! feature's value becomes its level in the training distribution, so a network's first
//! layer can place thresholds where the data is (what trees do on dense columns) instead
//! of where a long tail stretches a standardised axis.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Knots kept per feature: the training values at this many evenly spaced ranks.
pub const MAX_KNOTS: usize = 100;

/// One feature's transform: piecewise linear through `(at[i], level[i])`, constant below
/// the first knot and from the last one on, so non-decreasing everywhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Distinct training values, increasing.
    pub at: Vec<f32>,
    /// Their mid-rank levels, increasing, in (0, 1): (rows below + rows at or below) / 2n,
    /// so a value shared by many rows (a zero in most) sits in the middle of its mass.
    pub level: Vec<f32>,
}

impl Quantiles {
    /// Fits one feature on its training values (sorted here; at least one).
    pub fn fit(column: &mut [f32]) -> Self {
        column.sort_by(f32::total_cmp);
        let n = column.len();
        let mut at: Vec<f32> = (0..MAX_KNOTS.min(n))
            .map(|i| column[i * (n - 1) / (MAX_KNOTS.min(n) - 1).max(1)])
            .collect();
        at.dedup();
        let mut q = Quantiles {
            at: Vec::with_capacity(at.len()),
            level: Vec::with_capacity(at.len()),
        };
        for v in at {
            let below = column.partition_point(|&x| x < v);
            let at_or_below = column.partition_point(|&x| x <= v);
            let level = ((below + at_or_below) as f64 / (2 * n) as f64) as f32;
            // Distinct values have distinct mid-ranks, but not always distinct f32s.
            if q.level.last().is_none_or(|&l| l < level) {
                q.at.push(v);
                q.level.push(level);
            }
        }
        q
    }

    /// The level of raw value `v`. `export::onnx` builds the same arithmetic per segment
    /// (`level + rise * ((v - at) / width)`), so ONNX Runtime gives the same floats.
    #[inline]
    pub fn value(&self, v: f32) -> f32 {
        let i = self.at.partition_point(|&k| k <= v);
        if i == 0 {
            return self.level[0];
        }
        if i == self.at.len() {
            return self.level[i - 1];
        }
        let (k0, k1, l0, l1) = (self.at[i - 1], self.at[i], self.level[i - 1], self.level[i]);
        l0 + (l1 - l0) * ((v - k0) / (k1 - k0))
    }

    /// Checks the transform is non-decreasing: knots and levels finite and increasing.
    pub fn validate(&self, feature: usize) -> Result<()> {
        let increasing =
            |v: &[f32]| v.iter().all(|x| x.is_finite()) && v.windows(2).all(|w| w[0] < w[1]);
        if self.at.is_empty() || self.at.len() != self.level.len() {
            return Err(Error::invalid(format!(
                "quantile scaler of feature {feature}: {} knots and {} levels (at least one, as many of each)",
                self.at.len(),
                self.level.len()
            )));
        }
        if !increasing(&self.at) || !increasing(&self.level) {
            return Err(Error::invalid(format!(
                "quantile scaler of feature {feature}: knots and levels must be finite and increasing, so the scaling is non-decreasing"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_mid_ranks_and_the_transform_interpolates_and_clamps() {
        // Seven zeros, then 1, 2, 3: the zero's mass is 0.7, its mid-rank 0.35.
        let mut col = vec![0.0, 3.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let q = Quantiles::fit(&mut col);
        assert_eq!(q.at, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(q.level, vec![0.35, 0.75, 0.85, 0.95]);
        q.validate(0).unwrap();
        assert_eq!(q.value(-5.0), 0.35);
        assert_eq!(q.value(0.0), 0.35);
        assert!((q.value(0.25) - 0.45).abs() < 1e-6);
        assert_eq!(q.value(3.0), 0.95);
        assert_eq!(q.value(1e9), 0.95);
    }

    #[test]
    fn many_distinct_values_keep_at_most_max_knots_spanning_the_range() {
        let mut col: Vec<f32> = (0..1000).map(|i| (i * i) as f32).collect();
        let q = Quantiles::fit(&mut col);
        assert_eq!(q.at.len(), MAX_KNOTS);
        assert_eq!((q.at[0], q.at[MAX_KNOTS - 1]), (0.0, 999.0 * 999.0));
        q.validate(0).unwrap();
        // Ranks, not values: the middle knot is the median (~500^2), not half the maximum.
        let mid = q.at[MAX_KNOTS / 2];
        assert!((240_000.0..260_000.0).contains(&mid), "{mid}");
    }

    #[test]
    fn validate_refuses_decreasing_or_mismatched_knots() {
        let q = Quantiles {
            at: vec![1.0, 0.0],
            level: vec![0.2, 0.8],
        };
        assert!(q.validate(3).unwrap_err().to_string().contains("feature 3"));
        let q = Quantiles {
            at: vec![0.0],
            level: vec![],
        };
        assert!(q.validate(0).is_err());
    }
}
