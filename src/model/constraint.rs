//! Keras-style weight constraints, applied as a projection after every optimizer step.
//!
//! Formulas and axis semantics follow Keras 3 (`keras/src/constraints/constraints.py`), on
//! the Keras kernel layout `[in, out]`: `axis = 0` takes the norm over the inputs of each
//! output unit, `axis = 1` over the outputs of each input. A bias is a column `[n, 1]`, so
//! its only axis, 0, is the whole vector. Epsilon is Keras' `backend.epsilon()`, 1e-7.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub const EPSILON: f32 = 1e-7;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum Constraint {
    /// `w * (w >= 0)`. With `rows`, only those rows (input features of a kernel) are
    /// constrained: partial monotonicity.
    NonNeg {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<Vec<u32>>,
    },
    /// `w * (w <= 0)` (not in Keras): the rows of input features that additions can only
    /// lower (direction -1), so that lowering them can only raise the score.
    NonPos {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<Vec<u32>>,
    },
    /// `w * clip(n, 0, max) / (eps + n)` with `n` the L2 norm along `axis`.
    MaxNorm {
        max_value: f32,
        #[serde(default)]
        axis: usize,
    },
    /// `w * (rate * clip(n, min, max) + (1 - rate) * n) / (eps + n)`.
    MinMaxNorm {
        min_value: f32,
        max_value: f32,
        rate: f32,
        #[serde(default)]
        axis: usize,
    },
    /// `w / (eps + n)`.
    UnitNorm {
        #[serde(default)]
        axis: usize,
    },
    /// The first kernel of a Lipschitz monotonic network (not in Keras): the skip
    /// connection's weight of each feature is kept at least the MLP's Lipschitz bound in
    /// it ([`crate::certify::lipschitz`]). A rule across tensors, applied by the trainer
    /// after each step; on its own tensor it changes nothing.
    Lmn,
}

impl Constraint {
    pub fn non_neg() -> Self {
        Constraint::NonNeg { rows: None }
    }

    /// Elementwise constraints can be applied to a few rows at a time (sparse updates);
    /// norm constraints need whole columns or rows.
    pub fn is_elementwise(&self) -> bool {
        matches!(self, Constraint::NonNeg { .. } | Constraint::NonPos { .. })
    }

    /// The sign this constraint forces on row `row_index` of its tensor: `1.0` (NonNeg),
    /// `-1.0` (NonPos), or `None`.
    pub fn sign_of_row(&self, row_index: usize) -> Option<f32> {
        let (rows, sign) = match self {
            Constraint::NonNeg { rows } => (rows, 1.0),
            Constraint::NonPos { rows } => (rows, -1.0),
            _ => return None,
        };
        match rows {
            None => Some(sign),
            Some(r) => r.binary_search(&(row_index as u32)).is_ok().then_some(sign),
        }
    }

    fn axis(&self) -> Option<usize> {
        match self {
            Constraint::NonNeg { .. } | Constraint::NonPos { .. } | Constraint::Lmn => None,
            Constraint::MaxNorm { axis, .. }
            | Constraint::MinMaxNorm { axis, .. }
            | Constraint::UnitNorm { axis } => Some(*axis),
        }
    }

    /// Checks the constraint fits a tensor of `rows x cols` (`is_bias`: a vector).
    pub fn validate(&self, rows: usize, is_bias: bool) -> Result<()> {
        if let Some(axis) = self.axis() {
            if axis > 1 || (is_bias && axis != 0) {
                return Err(Error::invalid(format!(
                    "{}: axis {axis} is out of range for a {} (use 0{})",
                    self.describe(),
                    if is_bias { "bias vector" } else { "kernel" },
                    if is_bias { "" } else { " or 1" }
                )));
            }
        }
        match self {
            Constraint::Lmn if is_bias => {
                return Err(Error::invalid("lmn applies to the first kernel only"))
            }
            Constraint::NonNeg { rows: Some(r) } | Constraint::NonPos { rows: Some(r) } => {
                let name = self.describe();
                if is_bias {
                    return Err(Error::invalid(format!(
                        "{name} with rows applies to kernels only"
                    )));
                }
                if let Some(&bad) = r.iter().find(|&&i| i as usize >= rows) {
                    return Err(Error::invalid(format!(
                        "{name}: row {bad} is out of range for a kernel with {rows} inputs"
                    )));
                }
                if r.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(Error::invalid(format!(
                        "{name}: rows must be sorted and unique"
                    )));
                }
            }
            Constraint::MaxNorm { max_value, .. } if max_value.is_nan() || *max_value < 0.0 => {
                return Err(Error::invalid("max_norm: max_value must be >= 0"))
            }
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                ..
            } if !(min_value.is_finite()
                && *min_value >= 0.0
                && max_value >= min_value
                && (0.0..=1.0).contains(rate)) =>
            {
                return Err(Error::invalid(
                    "min_max_norm: need 0 <= min_value <= max_value and 0 <= rate <= 1",
                ))
            }
            _ => {}
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        match self {
            Constraint::NonNeg { rows: None } => "non_neg".into(),
            Constraint::NonNeg { rows: Some(r) } => format!("non_neg(rows={})", r.len()),
            Constraint::NonPos { rows: None } => "non_pos".into(),
            Constraint::NonPos { rows: Some(r) } => format!("non_pos(rows={})", r.len()),
            Constraint::MaxNorm { max_value, axis } => {
                format!("max_norm({max_value}, axis={axis})")
            }
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axis,
            } => format!("min_max_norm({min_value}, {max_value}, rate={rate}, axis={axis})"),
            Constraint::UnitNorm { axis } => format!("unit_norm(axis={axis})"),
            Constraint::Lmn => "lmn".into(),
        }
    }

    /// Parses `non_neg`, `max_norm(2)`, `max_norm(max_value=2, axis=1)`,
    /// `min_max_norm(0.5, 1.5, 0.7, 0)`, `unit_norm(axis=1)` (Keras' argument order).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let (name, args) = match text.find('(') {
            Some(i) if text.ends_with(')') => (&text[..i], &text[i + 1..text.len() - 1]),
            Some(_) => return Err(Error::invalid(format!("constraint `{text}`: missing `)`"))),
            None => (text, ""),
        };
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        let (params, defaults): (&[&str], &[f32]) = match name.as_str() {
            "non_neg" | "nonneg" | "non_pos" | "nonpos" => (&[], &[]),
            "max_norm" | "maxnorm" => (&["max_value", "axis"], &[2.0, 0.0]),
            "min_max_norm" | "minmaxnorm" => (
                &["min_value", "max_value", "rate", "axis"],
                &[0.0, 1.0, 1.0, 0.0],
            ),
            "unit_norm" | "unitnorm" => (&["axis"], &[0.0]),
            _ => {
                return Err(Error::invalid(format!(
                "unknown constraint `{name}` (known: non_neg, non_pos, max_norm, min_max_norm, unit_norm)"
            )))
            }
        };
        let mut values = defaults.to_vec();
        let mut positional = true;
        for (i, arg) in args
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .enumerate()
        {
            let (slot, value) = match arg.split_once('=') {
                Some((k, v)) => {
                    positional = false;
                    let k = k.trim();
                    let slot = params.iter().position(|p| *p == k).ok_or_else(|| {
                        Error::invalid(format!("constraint `{text}`: unknown argument `{k}`"))
                    })?;
                    (slot, v.trim())
                }
                None if positional && i < params.len() => (i, arg),
                None => {
                    return Err(Error::invalid(format!(
                        "constraint `{text}`: too many or misplaced arguments"
                    )))
                }
            };
            values[slot] = value.parse::<f32>().map_err(|_| {
                Error::invalid(format!("constraint `{text}`: `{value}` is not a number"))
            })?;
        }
        let axis = |v: f32| -> Result<usize> {
            if v == 0.0 || v == 1.0 {
                Ok(v as usize)
            } else {
                Err(Error::invalid(format!(
                    "constraint `{text}`: axis must be 0 or 1"
                )))
            }
        };
        let c = match name.as_str() {
            "non_neg" | "nonneg" => Constraint::non_neg(),
            "non_pos" | "nonpos" => Constraint::NonPos { rows: None },
            "max_norm" | "maxnorm" => Constraint::MaxNorm {
                max_value: values[0],
                axis: axis(values[1])?,
            },
            "min_max_norm" | "minmaxnorm" => Constraint::MinMaxNorm {
                min_value: values[0],
                max_value: values[1],
                rate: values[2],
                axis: axis(values[3])?,
            },
            _ => Constraint::UnitNorm {
                axis: axis(values[0])?,
            },
        };
        Ok(c)
    }

    /// Applies the constraint in place to a row-major `rows x cols` tensor.
    pub fn apply(&self, w: &mut [f32], rows: usize, cols: usize) {
        debug_assert_eq!(w.len(), rows * cols);
        match self {
            Constraint::NonNeg { rows: None } => non_neg(w),
            Constraint::NonNeg { rows: Some(r) } => {
                for &i in r {
                    let i = i as usize;
                    non_neg(&mut w[i * cols..(i + 1) * cols]);
                }
            }
            Constraint::NonPos { rows: None } => non_pos(w),
            Constraint::NonPos { rows: Some(r) } => {
                for &i in r {
                    let i = i as usize;
                    non_pos(&mut w[i * cols..(i + 1) * cols]);
                }
            }
            // Needs the skip connection: `crate::train::projection::project_lmn`.
            Constraint::Lmn => {}
            _ => {
                let axis = self.axis().unwrap_or(0);
                let norms = l2_norms(w, rows, cols, axis);
                let scales: Vec<f32> = norms.iter().map(|&n| self.scale(n)).collect();
                for i in 0..rows {
                    let row = &mut w[i * cols..(i + 1) * cols];
                    if axis == 0 {
                        for (x, s) in row.iter_mut().zip(&scales) {
                            *x *= s;
                        }
                    } else {
                        let s = scales[i];
                        row.iter_mut().for_each(|x| *x *= s);
                    }
                }
            }
        }
    }

    /// Applies an elementwise constraint to one row `row` (sparse-layer updates).
    pub fn apply_to_row(&self, row_index: usize, row: &mut [f32]) {
        match self {
            Constraint::NonNeg { rows: None } => non_neg(row),
            Constraint::NonNeg { rows: Some(r) } => {
                if r.binary_search(&(row_index as u32)).is_ok() {
                    non_neg(row)
                }
            }
            Constraint::NonPos { rows: None } => non_pos(row),
            Constraint::NonPos { rows: Some(r) } => {
                if r.binary_search(&(row_index as u32)).is_ok() {
                    non_pos(row)
                }
            }
            _ => unreachable!("norm constraints are applied to whole tensors"),
        }
    }

    /// The factor multiplying every entry of a slice whose norm is `n` (Keras' formulas).
    fn scale(&self, n: f32) -> f32 {
        match *self {
            Constraint::MaxNorm { max_value, .. } => n.clamp(0.0, max_value) / (EPSILON + n),
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                ..
            } => (rate * n.clamp(min_value, max_value) + (1.0 - rate) * n) / (EPSILON + n),
            Constraint::UnitNorm { .. } => 1.0 / (EPSILON + n),
            Constraint::NonNeg { .. } | Constraint::NonPos { .. } | Constraint::Lmn => 1.0,
        }
    }
}

/// Keras' NonNeg: `w * (w >= 0)` (NaN becomes 0).
#[inline]
fn non_neg(w: &mut [f32]) {
    crate::kernels::non_neg(w)
}

/// `w * (w <= 0)` (NaN becomes 0).
#[inline]
fn non_pos(w: &mut [f32]) {
    for x in w {
        *x = if *x <= 0.0 { *x } else { 0.0 };
    }
}

/// L2 norms along `axis` of a row-major `rows x cols` tensor.
fn l2_norms(w: &[f32], rows: usize, cols: usize, axis: usize) -> Vec<f32> {
    if axis == 0 {
        let mut sq = vec![0f32; cols];
        for row in w.chunks_exact(cols.max(1)).take(rows) {
            for (s, x) in sq.iter_mut().zip(row) {
                *s += x * x;
            }
        }
        sq.into_iter().map(f32::sqrt).collect()
    } else {
        w.chunks_exact(cols.max(1))
            .take(rows)
            .map(|row| row.iter().map(|x| x * x).sum::<f32>().sqrt())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_keras_argument_order_and_names() {
        assert_eq!(Constraint::parse("nonneg").unwrap(), Constraint::non_neg());
        assert_eq!(
            Constraint::parse("max_norm(3)").unwrap(),
            Constraint::MaxNorm {
                max_value: 3.0,
                axis: 0
            }
        );
        assert_eq!(
            Constraint::parse("MaxNorm(max_value=1.5, axis=1)").unwrap(),
            Constraint::MaxNorm {
                max_value: 1.5,
                axis: 1
            }
        );
        assert_eq!(
            Constraint::parse("min_max_norm(0.5, 1.5, 0.7, 1)").unwrap(),
            Constraint::MinMaxNorm {
                min_value: 0.5,
                max_value: 1.5,
                rate: 0.7,
                axis: 1
            }
        );
        assert_eq!(
            Constraint::parse("unit_norm").unwrap(),
            Constraint::UnitNorm { axis: 0 }
        );
        for bad in [
            "max_norm(x)",
            "unit_norm(axis=2)",
            "l1(3)",
            "max_norm(1,0,3)",
            "max_norm(2",
        ] {
            assert!(Constraint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_uses_keras_names() {
        let c = Constraint::MaxNorm {
            max_value: 2.0,
            axis: 1,
        };
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(s, r#"{"name":"max_norm","max_value":2.0,"axis":1}"#);
        assert_eq!(serde_json::from_str::<Constraint>(&s).unwrap(), c);
        assert_eq!(
            serde_json::to_string(&Constraint::non_neg()).unwrap(),
            r#"{"name":"non_neg"}"#
        );
    }

    #[test]
    fn max_norm_axis_semantics_on_hand_made_tensor() {
        // Keras layout [in=2, out=2]: column 0 has norm 5, column 1 norm 0.5.
        let mut w = vec![3.0, 0.3, 4.0, 0.4];
        Constraint::MaxNorm {
            max_value: 1.0,
            axis: 0,
        }
        .apply(&mut w, 2, 2);
        let s = 1.0 / (EPSILON + 5.0);
        let t = 0.5 / (EPSILON + 0.5);
        let want = [3.0 * s, 0.3 * t, 4.0 * s, 0.4 * t];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{w:?}");
        }
        // axis 1: row norms.
        let mut w = vec![3.0, 4.0, 0.0, 0.0];
        Constraint::MaxNorm {
            max_value: 1.0,
            axis: 1,
        }
        .apply(&mut w, 2, 2);
        assert!((w[0] - 0.6).abs() < 1e-6 && (w[1] - 0.8).abs() < 1e-6);
        assert_eq!(
            &w[2..],
            &[0.0, 0.0],
            "a zero row stays zero (eps avoids 0/0)"
        );
    }

    #[test]
    fn partial_non_neg_only_touches_listed_rows() {
        let mut w = vec![-1.0, 2.0, -3.0, -4.0, 5.0, -6.0];
        Constraint::NonNeg {
            rows: Some(vec![1]),
        }
        .apply(&mut w, 3, 2);
        assert_eq!(w, vec![-1.0, 2.0, 0.0, 0.0, 5.0, -6.0]);
    }

    #[test]
    fn non_pos_clips_positive_entries_of_listed_rows_and_parses() {
        let mut w = vec![-1.0, 2.0, -3.0, 4.0, 5.0, f32::NAN];
        let c = Constraint::NonPos {
            rows: Some(vec![1, 2]),
        };
        c.apply(&mut w, 3, 2);
        assert_eq!(&w[..5], &[-1.0, 2.0, -3.0, 0.0, 0.0]);
        assert_eq!(w[5], 0.0);
        let mut row = vec![1.0, -1.0];
        c.apply_to_row(2, &mut row);
        assert_eq!(row, vec![0.0, -1.0]);
        assert_eq!((c.sign_of_row(1), c.sign_of_row(0)), (Some(-1.0), None));
        assert_eq!(Constraint::non_neg().sign_of_row(7), Some(1.0));
        assert_eq!(
            Constraint::parse("non_pos").unwrap(),
            Constraint::NonPos { rows: None }
        );
        assert!(Constraint::NonPos {
            rows: Some(vec![2, 1])
        }
        .validate(3, false)
        .is_err());
    }

    #[test]
    fn validate_rejects_bad_axes_and_values() {
        assert!(Constraint::UnitNorm { axis: 1 }.validate(3, true).is_err());
        assert!(Constraint::UnitNorm { axis: 1 }.validate(3, false).is_ok());
        assert!(Constraint::MaxNorm {
            max_value: -1.0,
            axis: 0
        }
        .validate(3, false)
        .is_err());
        assert!(Constraint::NonNeg {
            rows: Some(vec![5])
        }
        .validate(3, false)
        .is_err());
    }
}
