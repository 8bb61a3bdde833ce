//! Input scaling, fitted on training data, stored in the model and applied at predict
//! time. Every scaling is non-decreasing per feature (a positive factor after an optional
//! signed log1p or quantile transform; all but the quantile transform strictly
//! increasing), so a model monotone in its scaled inputs is monotone in the raw features.

mod quantile;

pub use quantile::{Quantiles, MAX_KNOTS};

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
    /// The training quantile (piecewise linear, constant outside the training range),
    /// then standardised: dense data whose thresholds matter more than its scale.
    Quantile,
}

impl ScaleKind {
    /// The name on the command line (`--scale`).
    pub fn name(self) -> &'static str {
        match self {
            ScaleKind::None => "none",
            ScaleKind::Standard => "standard",
            ScaleKind::Minmax => "minmax",
            ScaleKind::Log1p => "log1p",
            ScaleKind::Log1pStandard => "log1p-standard",
            ScaleKind::Quantile => "quantile",
        }
    }
}

/// `x' = (t(x) - shift) * mult`, with `t` the identity, `sign(x) * log1p(|x|)` or the
/// feature's [`Quantiles`], `mult > 0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub kind: ScaleKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shift: Vec<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mult: Vec<f32>,
    /// Per feature, for [`ScaleKind::Quantile`] only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantiles: Vec<Quantiles>,
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
            quantiles: Vec::new(),
        }
    }

    /// `t`, the transform before the shift and factor.
    #[inline]
    fn transform(&self, j: usize, v: f32) -> f32 {
        match self.kind {
            ScaleKind::Log1p | ScaleKind::Log1pStandard => signed_log1p(v),
            ScaleKind::Quantile => self.quantiles[j].value(v),
            _ => v,
        }
    }

    /// Fits on training features. Sparse data only takes scalings that keep zeros at zero.
    pub fn fit(kind: ScaleKind, x: &Features) -> Result<Self> {
        let mut fit = ScalerFit::new(kind);
        if let (ScaleKind::Quantile, Features::Dense(m)) = (kind, x) {
            fit.base.quantiles = quantiles(m)?;
        }
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
        let t = self.transform(j, v);
        match (self.mult.is_empty(), sparse) {
            (true, _) => t,
            (false, true) => t * self.mult[j],
            (false, false) => (t - self.shift[j]) * self.mult[j],
        }
    }

    /// Checks the scaler fits `cols` features and is non-decreasing in each.
    pub fn validate(&self, cols: usize) -> Result<()> {
        if self.kind == ScaleKind::Quantile {
            if self.quantiles.len() != cols || self.mult.len() != cols {
                return Err(Error::invalid(format!(
                    "quantile scaler has {} features and {} factors, the model {cols}",
                    self.quantiles.len(),
                    self.mult.len()
                )));
            }
            for (j, q) in self.quantiles.iter().enumerate() {
                q.validate(j)?;
            }
        } else if !self.quantiles.is_empty() {
            return Err(Error::invalid(format!(
                "scaler {:?} has quantiles: only the quantile scaler takes them",
                self.kind
            )));
        }
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

/// Each dense column's [`Quantiles`]; data without rows has none to fit.
fn quantiles(m: &crate::data::DenseMatrix) -> Result<Vec<Quantiles>> {
    if m.rows == 0 {
        return Err(Error::invalid(
            "quantile scaling needs at least one training row, got 0",
        ));
    }
    Ok((0..m.cols)
        .map(|c| {
            let mut col: Vec<f32> = (0..m.rows).map(|r| m.row(r)[c]).collect();
            Quantiles::fit(&mut col)
        })
        .collect())
}

/// A [`Scaler`] fitted over data that comes in parts (streamed shards): the statistics
/// are summed part by part in row order, so one part gives the bits of [`Scaler::fit`].
#[derive(Clone, Debug)]
pub struct ScalerFit {
    /// The kind and, for the quantile scaling, the quantiles: the transform before the
    /// statistics (its shift and factors are what the fit finds).
    base: Scaler,
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
            base: Scaler {
                kind,
                ..Scaler::identity()
            },
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
        let kind = self.base.kind;
        if matches!(kind, ScaleKind::None | ScaleKind::Log1p) {
            return Ok(());
        }
        self.grow(x.cols());
        match x {
            Features::Dense(m) => {
                if kind == ScaleKind::Quantile && self.base.quantiles.len() < m.cols {
                    return Err(Error::invalid(
                        "quantile scaling (the `scale` option) needs all training rows at once: it cannot be fitted on streamed shards",
                    ));
                }
                self.rows += m.rows;
                for r in 0..m.rows {
                    for (c, &v) in m.row(r).iter().enumerate() {
                        let v = self.base.transform(c, v);
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

    /// The dense statistics of `cols` features as numbers, to add up fits made apart
    /// ([`ScalerFit::add_sums`]): rows, then the sums, squares, minima and maxima.
    pub fn sums(&self, cols: usize) -> Vec<f64> {
        let mut me = self.clone();
        me.grow(cols);
        let mut v = vec![me.rows as f64];
        v.extend(&me.sum[..cols]);
        v.extend(&me.sq[..cols]);
        v.extend(me.lo[..cols].iter().map(|&x| f64::from(x)));
        v.extend(me.hi[..cols].iter().map(|&x| f64::from(x)));
        v
    }

    /// Adds another fit's [`ScalerFit::sums`] (of dense data), as if its rows came after
    /// this fit's.
    pub fn add_sums(&mut self, v: &[f64]) {
        let cols = (v.len() - 1) / 4;
        self.grow(cols);
        self.rows += v[0] as usize;
        let part = |k: usize| &v[1 + k * cols..1 + (k + 1) * cols];
        for c in 0..cols {
            self.sum[c] += part(0)[c];
            self.sq[c] += part(1)[c];
            self.lo[c] = self.lo[c].min(part(2)[c] as f32);
            self.hi[c] = self.hi[c].max(part(3)[c] as f32);
        }
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
        let kind = self.base.kind;
        let mut s = std::mem::replace(&mut self.base, Scaler::identity());
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
    fn quantile_scaling_is_non_decreasing_standardised_and_dense_only() {
        let train = dense(vec![0.0, 0.0, 0.0, 1.0, 0.0, 5.0, 2.0, 40.0, 3.0, 900.0], 2);
        let s = Scaler::fit(ScaleKind::Quantile, &train).unwrap();
        s.validate(2).unwrap();
        let mut x = train.clone();
        s.apply(&mut x);
        let Features::Dense(m) = x else {
            unreachable!()
        };
        let col = |c: usize| (0..5).map(|r| m.row(r)[c]).collect::<Vec<f32>>();
        // Ranks, not values: 900 is one step above 40, as 40 is above 5.
        let c1 = col(1);
        assert!(((c1[4] - c1[3]) - (c1[3] - c1[2])).abs() < 1e-5, "{c1:?}");
        assert!(c1.iter().sum::<f32>().abs() < 1e-5);
        let mut grid = dense((-20..2000).flat_map(|i| [i as f32 * 0.5; 2]).collect(), 2);
        s.apply(&mut grid);
        let Features::Dense(g) = grid else {
            unreachable!()
        };
        for c in 0..2 {
            assert!(
                (1..g.rows).all(|r| g.row(r)[c] >= g.row(r - 1)[c]),
                "col {c}"
            );
        }
        let mut short = s.clone();
        short.quantiles.pop();
        assert!(short.validate(2).is_err());
        let sparse = Features::Sparse(CsrMatrix {
            rows: 1,
            cols: 1,
            indptr: vec![0, 1],
            indices: vec![0],
            values: vec![1.0],
        });
        let e = Scaler::fit(ScaleKind::Quantile, &sparse).unwrap_err();
        assert!(e.to_string().contains("dense"), "{e}");
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
