//! Input scaling, fitted on training data, stored in the model and applied at predict
//! time. Every scaling is strictly increasing per feature (a positive factor after an
//! optional signed log1p), so a model monotone in its scaled inputs is monotone in the raw
//! features.

use crate::data::Features;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ScaleKind {
    None,
    Standard,
    Minmax,
    Log1p,
    /// log1p, then standardised: heavy-tailed counts and frequencies.
    #[cfg_attr(feature = "cli", value(alias = "log1p_standard"))]
    Log1pStandard,
}

/// `x' = (t(x) - shift) * mult`, with `t` the identity or `sign(x) * log1p(|x|)`, `mult > 0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub kind: ScaleKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shift: Vec<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mult: Vec<f32>,
}

#[inline]
fn signed_log1p(x: f32) -> f32 {
    x.signum() * x.abs().ln_1p()
}

impl Scaler {
    pub fn identity() -> Self {
        Scaler {
            kind: ScaleKind::None,
            shift: Vec::new(),
            mult: Vec::new(),
        }
    }

    fn log(&self) -> bool {
        matches!(self.kind, ScaleKind::Log1p | ScaleKind::Log1pStandard)
    }

    /// Fits on training features. Sparse data only takes scalings that keep zeros at zero.
    pub fn fit(kind: ScaleKind, x: &Features) -> Result<Self> {
        let mut fit = ScalerFit::new(kind);
        fit.add(x)?;
        Ok(fit.finish(x.cols()))
    }

    /// Scales features in place (the model's view of the data).
    pub fn apply(&self, x: &mut Features) {
        if self.kind == ScaleKind::None {
            return;
        }
        match x {
            Features::Dense(m) => {
                for row in m.values.chunks_exact_mut(m.cols.max(1)) {
                    for (c, v) in row.iter_mut().enumerate() {
                        *v = self.value(c, *v, false);
                    }
                }
            }
            Features::Sparse(m) => {
                for (&j, v) in m.indices.iter().zip(m.values.iter_mut()) {
                    *v = self.value(j as usize, *v, true);
                }
            }
        }
    }

    /// Raw value `v` of feature `j`, scaled: what [`Scaler::apply`] makes of it in dense
    /// or (`sparse`: no shift, so zeros stay zero) sparse data. The attacks and the budget
    /// certificates scale single values with it.
    #[inline]
    pub fn value(&self, j: usize, v: f32, sparse: bool) -> f32 {
        if self.kind == ScaleKind::None {
            return v;
        }
        let t = if self.log() { signed_log1p(v) } else { v };
        match (self.mult.is_empty(), sparse) {
            (true, _) => t,
            (false, true) => t * self.mult[j],
            (false, false) => (t - self.shift[j]) * self.mult[j],
        }
    }

    /// Checks the scaler fits `cols` features.
    pub fn validate(&self, cols: usize) -> Result<()> {
        if !self.mult.is_empty() && (self.mult.len() != cols || self.shift.len() != cols) {
            return Err(Error::invalid(format!(
                "scaler has {} features, the model {cols}",
                self.mult.len()
            )));
        }
        if self.mult.iter().any(|&m| !(m > 0.0 && m.is_finite())) {
            return Err(Error::invalid(
                "scaler factors must be positive: scaling must be increasing",
            ));
        }
        Ok(())
    }
}

/// A [`Scaler`] fitted over data that comes in parts (streamed shards): the statistics
/// are summed part by part in row order, so one part gives the bits of [`Scaler::fit`].
#[derive(Clone, Debug)]
pub struct ScalerFit {
    kind: ScaleKind,
    /// Whether the parts are sparse (then only `hi` is kept).
    sparse: bool,
    rows: usize,
    sum: Vec<f64>,
    sq: Vec<f64>,
    lo: Vec<f32>,
    hi: Vec<f32>,
}

impl ScalerFit {
    pub fn new(kind: ScaleKind) -> Self {
        ScalerFit {
            kind,
            sparse: false,
            rows: 0,
            sum: Vec::new(),
            sq: Vec::new(),
            lo: Vec::new(),
            hi: Vec::new(),
        }
    }

    /// Adds the rows of `x`; sparse parts may be narrower than the final width.
    pub fn add(&mut self, x: &Features) -> Result<()> {
        let kind = self.kind;
        if matches!(kind, ScaleKind::None | ScaleKind::Log1p) {
            return Ok(());
        }
        let log = kind == ScaleKind::Log1pStandard;
        let t = |v: f32| if log { signed_log1p(v) } else { v };
        self.grow(x.cols());
        match x {
            Features::Dense(m) => {
                self.rows += m.rows;
                for r in 0..m.rows {
                    for (c, &v) in m.row(r).iter().enumerate() {
                        let v = t(v);
                        self.sum[c] += v as f64;
                        self.sq[c] += (v as f64) * (v as f64);
                        self.lo[c] = self.lo[c].min(v);
                        self.hi[c] = self.hi[c].max(v);
                    }
                }
            }
            Features::Sparse(m) => {
                if kind != ScaleKind::Minmax {
                    return Err(Error::invalid(
                        format!(
                        "scaling {kind:?} (the `scale` option) would make sparse data dense; use none, log1p or minmax",
                    )
                        .to_lowercase(),
                    ));
                }
                for (&j, &v) in m.indices.iter().zip(&m.values) {
                    if v < 0.0 {
                        return Err(Error::invalid(
                            "minmax scaling (the `scale` option) on sparse data with negative values would make it dense",
                        ));
                    }
                    self.hi[j as usize] = self.hi[j as usize].max(v);
                }
                self.sparse = true;
            }
        }
        Ok(())
    }

    fn grow(&mut self, cols: usize) {
        if cols > self.sum.len() {
            self.sum.resize(cols, 0.0);
            self.sq.resize(cols, 0.0);
            self.lo.resize(cols, f32::INFINITY);
            self.hi.resize(cols, f32::NEG_INFINITY);
        }
    }

    /// The scaler for `cols` features.
    pub fn finish(mut self, cols: usize) -> Scaler {
        let kind = self.kind;
        let mut s = Scaler {
            kind,
            shift: Vec::new(),
            mult: Vec::new(),
        };
        if matches!(kind, ScaleKind::None | ScaleKind::Log1p) {
            return s;
        }
        self.grow(cols);
        if self.sparse {
            // Sparse minmax: implicit zeros make the minimum 0, and the maximum at least 0.
            s.shift = vec![0.0; cols];
            s.mult = (self.hi[..cols].iter())
                .map(|&h| if h > 0.0 { 1.0 / h } else { 1.0 })
                .collect();
            return s;
        }
        let n = self.rows.max(1) as f64;
        for c in 0..cols {
            let (shift, range) = match kind {
                ScaleKind::Minmax => (self.lo[c], (self.hi[c] - self.lo[c]) as f64),
                _ => {
                    let mean = self.sum[c] / n;
                    (mean as f32, (self.sq[c] / n - mean * mean).max(0.0).sqrt())
                }
            };
            s.shift.push(shift);
            s.mult.push(if range > 1e-12 {
                (1.0 / range) as f32
            } else {
                1.0
            });
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CsrMatrix, DenseMatrix};

    fn dense(values: Vec<f32>, cols: usize) -> Features {
        Features::Dense(DenseMatrix {
            rows: values.len() / cols,
            cols,
            values,
        })
    }

    #[test]
    fn every_scaling_is_strictly_increasing_per_feature() {
        let train = dense(vec![0.0, 5.0, 1.0, 5.0, 10.0, 5.0, 3.0, 5.0], 2);
        for kind in [
            ScaleKind::Standard,
            ScaleKind::Minmax,
            ScaleKind::Log1p,
            ScaleKind::Log1pStandard,
        ] {
            let s = Scaler::fit(kind, &train).unwrap();
            s.validate(2).unwrap();
            let mut grid = dense((-50..50).flat_map(|i| [i as f32 * 0.3; 2]).collect(), 2);
            s.apply(&mut grid);
            let Features::Dense(g) = grid else {
                unreachable!()
            };
            for c in 0..2 {
                for r in 1..g.rows {
                    assert!(g.row(r)[c] > g.row(r - 1)[c], "{kind:?} col {c} row {r}");
                }
            }
        }
    }

    #[test]
    fn standard_scaling_centres_training_data() {
        let train = dense(vec![1.0, 2.0, 3.0, 4.0], 1);
        let s = Scaler::fit(ScaleKind::Standard, &train).unwrap();
        let mut x = train.clone();
        s.apply(&mut x);
        let Features::Dense(m) = x else {
            unreachable!()
        };
        let mean: f32 = m.values.iter().sum::<f32>() / 4.0;
        let var: f32 = m.values.iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
    }

    #[test]
    fn sparse_keeps_zeros_and_refuses_densifying_scalings() {
        let x = Features::Sparse(CsrMatrix {
            rows: 2,
            cols: 3,
            indptr: vec![0, 1, 3],
            indices: vec![0, 0, 2],
            values: vec![2.0, 4.0, 1.0],
        });
        assert!(Scaler::fit(ScaleKind::Standard, &x).is_err());
        let s = Scaler::fit(ScaleKind::Minmax, &x).unwrap();
        let mut y = x.clone();
        s.apply(&mut y);
        let Features::Sparse(m) = y else {
            unreachable!()
        };
        assert_eq!(m.values, vec![0.5, 1.0, 1.0]);
    }
}
