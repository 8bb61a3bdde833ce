//! The constraints of a network beyond its preset: per-tensor overrides
//! (`LAYER.TENSOR=C1+C2`), a constraint file with one entry per layer, and sign rules
//! for some features (partial monotonicity, feature directions).

use crate::data::feature_list::Directions;
use crate::error::{Error, Result};
use crate::model::Constraint;
use crate::train::LayerConstraints;

/// Which features the network must be monotone in, merged into the configured
/// constraints (a full NonNeg stays full; other constraints stay).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeatureSigns {
    /// Non-decreasing in these features (0-based): NonNeg on their rows of the first
    /// kernel (Keras layout: rows are input features) and on every later kernel; the other
    /// features stay free.
    Monotone(Vec<usize>),
    /// Non-decreasing in `up`, non-increasing in `down`: NonNeg on the `up` rows of the
    /// first kernel, NonPos on the `down` rows, NonNeg on every later kernel.
    Directions(Directions),
}

impl FeatureSigns {
    /// Adds the sign constraints to `layers`.
    pub fn apply(&self, layers: &mut [LayerConstraints]) -> Result<()> {
        match self {
            FeatureSigns::Monotone(features) => partially_monotone(layers, features),
            FeatureSigns::Directions(dirs) => {
                partially_monotone(layers, &dirs.up);
                if !dirs.down.is_empty() {
                    let first = &mut layers[0].kernel;
                    if first
                        .iter()
                        .any(|c| matches!(c, Constraint::NonNeg { rows: None }))
                    {
                        return Err(Error::invalid(
                            "the first kernel is all non_neg, but some features have \
                             direction -1",
                        ));
                    }
                    first.push(Constraint::NonPos {
                        rows: Some(dirs.down.iter().map(|&i| i as u32).collect()),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Adds NonNeg on rows `features` of the first kernel and on every later kernel.
fn partially_monotone(layers: &mut [LayerConstraints], features: &[usize]) {
    for (l, layer) in layers.iter_mut().enumerate() {
        let mut rows: Vec<u32> = if l == 0 {
            features.iter().map(|&i| i as u32).collect()
        } else {
            Vec::new()
        };
        let mut full = l > 0;
        layer.kernel.retain(|c| match c {
            Constraint::NonNeg { rows: None } => {
                full = true;
                false
            }
            Constraint::NonNeg { rows: Some(r) } => {
                rows.extend(r);
                false
            }
            _ => true,
        });
        rows.sort_unstable();
        rows.dedup();
        let c = Constraint::NonNeg {
            rows: if full { None } else { Some(rows) },
        };
        layer.kernel.insert(0, c);
    }
}

/// Replaces the constraints of one tensor: `LAYER.TENSOR=C1+C2`, LAYER an index or
/// `last`, TENSOR `kernel` (or `weight`) or `bias`, `none` or nothing for no constraint.
pub fn apply_layer_constraint(spec: &str, layers: &mut [LayerConstraints]) -> Result<()> {
    let bad = |what: String| Error::invalid(format!("layer constraint `{spec}`: {what}"));
    let (target, list) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected LAYER.kernel=C or LAYER.bias=C".into()))?;
    let (layer, tensor) = target
        .split_once('.')
        .ok_or_else(|| bad("expected LAYER.kernel or LAYER.bias".into()))?;
    let n = layers.len();
    let index = match layer.trim() {
        "last" => n - 1,
        l => l
            .parse::<usize>()
            .ok()
            .filter(|&i| i < n)
            .ok_or_else(|| bad(format!("layer must be 0..{} or last", n - 1)))?,
    };
    let constraints = list
        .split('+')
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != "none")
        .map(Constraint::parse)
        .collect::<Result<Vec<_>>>()
        .map_err(|e| bad(e.to_string()))?;
    match tensor.trim() {
        "kernel" | "weight" => layers[index].kernel = constraints,
        "bias" => layers[index].bias = constraints,
        t => return Err(bad(format!("unknown tensor `{t}` (kernel or bias)"))),
    }
    Ok(())
}

/// Reads a constraint file, `{"layers": [{"kernel": [{"name": "non_neg"}], "bias": []},
/// ...]}` with Keras constraint names and arguments, for a network of `n_layers` layers.
pub fn parse_constraint_file(json: &str, n_layers: usize) -> Result<Vec<LayerConstraints>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        layers: Vec<LayerConstraints>,
    }
    let f: File = serde_json::from_str(json)
        .map_err(|e| Error::invalid(format!("not a constraint config: {e}")))?;
    if f.layers.len() != n_layers {
        return Err(Error::invalid(format!(
            "{} layer entries, the network has {n_layers} layers",
            f.layers.len()
        )));
    }
    Ok(f.layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Preset;

    #[test]
    fn signs_merge_with_existing_constraints() {
        let mut layers = Preset::None.layers(3);
        apply_layer_constraint("0.kernel=max_norm(2)", &mut layers).unwrap();
        layers[0].kernel.push(Constraint::NonNeg {
            rows: Some(vec![5]),
        });
        FeatureSigns::Monotone(vec![1, 5])
            .apply(&mut layers)
            .unwrap();
        assert_eq!(
            layers[0].kernel[0],
            Constraint::NonNeg {
                rows: Some(vec![1, 5])
            }
        );
        assert!(matches!(layers[0].kernel[1], Constraint::MaxNorm { .. }));
        assert_eq!(layers[0].kernel.len(), 2);
        assert_eq!(layers[2].kernel, vec![Constraint::non_neg()]);

        let mut full = Preset::Monotone.layers(2);
        let down = Directions {
            up: vec![0],
            down: vec![2],
        };
        let e = FeatureSigns::Directions(down.clone()).apply(&mut full);
        assert!(e.unwrap_err().to_string().contains("direction -1"));
        let mut free = Preset::None.layers(2);
        FeatureSigns::Directions(down).apply(&mut free).unwrap();
        assert_eq!(
            free[0].kernel[1],
            Constraint::NonPos {
                rows: Some(vec![2])
            }
        );
    }

    #[test]
    fn layer_constraint_errors_name_the_value() {
        let mut layers = Preset::None.layers(2);
        for (spec, msg) in [
            ("x", "expected LAYER.kernel=C"),
            ("0=non_neg", "expected LAYER.kernel or LAYER.bias"),
            ("2.kernel=non_neg", "layer must be 0..1 or last"),
            ("last.gamma=non_neg", "unknown tensor `gamma`"),
            ("0.kernel=max_norm(abc)", "max_norm"),
        ] {
            let e = apply_layer_constraint(spec, &mut layers).unwrap_err();
            let e = e.to_string();
            assert!(e.contains(msg) && e.contains(spec), "{spec}: {e}");
        }
        apply_layer_constraint("last.bias=max_norm(1)", &mut layers).unwrap();
        assert_eq!(layers[1].bias.len(), 1);
        let e = parse_constraint_file(r#"{"layers": []}"#, 2).unwrap_err();
        assert!(e.to_string().contains("the network has 2 layers"), "{e}");
    }
}
