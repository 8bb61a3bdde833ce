//! ONNX export: the model's whole inference path (scaler, layers, activations, skip
//! connection, sigmoid) as a standard `ai.onnx` opset-17 graph, so ONNX Runtime (or any
//! ONNX runtime) scores rows as `nonneg predict` does, with no custom ops.
//!
//! The graph reads `features`, float32 `[N, input_dim]` of raw (unscaled) feature values:
//! a sparse-input model takes its rows dense, vocabulary-wide (zeros for absent features).
//! It writes `logit` and `score = sigmoid(logit)`, both `[N, n_labels]`.

use super::onnx_proto::{self as pb, tensor_shape_proto::dimension, type_proto};
use crate::error::{Error, Result};
use crate::model::activation::LEAKY_SLOPE;
use crate::model::scaler::{Quantiles, ScaleKind, MAX_KNOTS};
use crate::model::{Activation, Dense, Model, Scaler};
use prost::Message as _;
use std::path::Path;

/// The `ai.onnx` operator set the graph uses.
pub const OPSET: i64 = 17;
/// IR version 8 is the one that came with opset 17.
const IR_VERSION: i64 = 8;
/// The graph's input: raw feature values `[N, input_dim]`.
pub const INPUT: &str = "features";
/// The graph's outputs, `[N, n_labels]` each.
pub const LOGIT: &str = "logit";
pub const SCORE: &str = "score";
/// Protobuf refuses messages of 2 GiB and more; keep room for the graph around the weights.
const MAX_TENSOR_BYTES: usize = (1 << 31) - (64 << 20);

/// The model as ONNX file bytes.
pub fn to_onnx_bytes(model: &Model) -> Result<Vec<u8>> {
    Ok(to_onnx_proto(model)?.encode_to_vec())
}

/// Writes the model as an ONNX file, atomically.
pub fn save_onnx(model: &Model, path: &Path) -> Result<()> {
    crate::atomic::write_bytes(path, &to_onnx_bytes(model)?)
}

/// The model as an ONNX `ModelProto`.
pub fn to_onnx_proto(model: &Model) -> Result<pb::ModelProto> {
    let mlp = &model.mlp;
    let n_labels = mlp.n_labels();
    if n_labels == 0 {
        return Err(Error::invalid("the model has no layers: nothing to export"));
    }
    check_size(model)?;
    let mut g = Graph::default();
    let x = scale(&mut g, &model.scaler, INPUT.to_string());
    let mut h = x.clone();
    let last = mlp.layers.len() - 1;
    for (l, layer) in mlp.layers.iter().enumerate() {
        let z = match (l == last, &mlp.skip) {
            (true, None) => LOGIT.to_string(),
            _ => format!("layer{l}.z"),
        };
        let wide = l == 0 && mlp.sparse_input;
        affine(&mut g, &format!("layer{l}"), layer, &h, &z, wide);
        h = if l == last {
            z
        } else {
            activate(&mut g, &format!("layer{l}"), layer, z)
        };
    }
    if let Some(skip) = &mlp.skip {
        let s = affine(&mut g, "skip", skip, &x, "skip.z", mlp.sparse_input);
        g.node("Add", &[&h, &s], LOGIT, vec![]);
    }
    g.node("Sigmoid", &[LOGIT], SCORE, vec![]);
    let graph = pb::GraphProto {
        node: g.nodes,
        name: "nonneg".into(),
        initializer: g.initializers,
        doc_string: String::new(),
        input: vec![value_info(
            INPUT,
            mlp.input_dim,
            "raw feature values (scaled inside the graph); sparse models: dense rows, vocabulary-wide",
        )],
        output: vec![
            value_info(LOGIT, n_labels, "logits, one per label (skip connection included)"),
            value_info(SCORE, n_labels, "sigmoid(logit)"),
        ],
    };
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "nonneg".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: "A nonneg classifier: a row is positive for a label when its logit reaches the label's threshold (metadata `threshold`).".into(),
        graph: Some(graph),
        metadata_props: metadata(model),
    })
}

/// Refuses a model whose weights do not fit in one protobuf message, before copying them.
fn check_size(model: &Model) -> Result<()> {
    let floats: usize = model
        .mlp
        .layers
        .iter()
        .chain(&model.mlp.skip)
        .map(|l| (l.n_in + 1) * l.n_out)
        .sum::<usize>()
        + model.scaler.shift.len()
        + model.scaler.mult.len()
        // The quantile graph's five per-segment tensors.
        + model.scaler.quantiles.len() * 5 * MAX_KNOTS;
    let names: usize = model
        .feature_names
        .iter()
        .flatten()
        .map(|n| n.len() + 3)
        .sum();
    let bytes = floats * 4 + names;
    if bytes > MAX_TENSOR_BYTES {
        return Err(Error::invalid(format!(
            "the model's weights take {bytes} bytes; an ONNX file holds at most {MAX_TENSOR_BYTES} (protobuf's 2 GiB limit)"
        )));
    }
    Ok(())
}

/// What a runtime user needs beside the graph: label names, thresholds, feature names
/// (JSON arrays).
fn metadata(model: &Model) -> Vec<pb::StringStringEntryProto> {
    let json = |v: serde_json::Value| v.to_string();
    let mut props = vec![
        ("label_names", json(model.label_names.clone().into())),
        ("threshold", json(model.threshold.clone().into())),
    ];
    if let Some(names) = &model.feature_names {
        props.push(("feature_names", json(names.clone().into())));
    }
    props
        .into_iter()
        .map(|(key, value)| pb::StringStringEntryProto {
            key: key.into(),
            value,
        })
        .collect()
}

/// The nodes and constants of a graph under construction.
#[derive(Default)]
struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
}

impl Graph {
    /// A float32 constant named `name` of shape `dims`; returns its name.
    fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        self.initializers.push(pb::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: pb::DATA_TYPE_FLOAT,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.into()
    }

    /// `Cast(input) -> output` to the ONNX data type `to`; returns the output's name. A
    /// cast already in the graph (the input widened for layer 0 and the skip) is reused.
    fn cast(&mut self, input: &str, output: &str, to: i32) -> String {
        if self.nodes.iter().any(|n| n.output[0] == output) {
            return output.into();
        }
        let to = pb::AttributeProto {
            name: "to".into(),
            r#type: pb::ATTRIBUTE_INT,
            i: to.into(),
            ..Default::default()
        };
        self.node("Cast", &[input], output, vec![to])
    }

    /// A node `op(inputs) -> output`, named after its output; returns the output's name.
    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<pb::AttributeProto>,
    ) -> String {
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: format!("{op}:{output}"),
            op_type: op.into(),
            domain: String::new(),
            attribute,
        });
        output.into()
    }
}

/// The scaler's `(t(x) - shift) * mult` ([`Scaler::value`] on dense rows); a sparse-input
/// model's shift is zero, so its sparse and dense views agree.
fn scale(g: &mut Graph, s: &Scaler, x: String) -> String {
    let mut x = x;
    if matches!(s.kind, ScaleKind::Log1p | ScaleKind::Log1pStandard) {
        x = signed_log1p(g, &x);
    }
    if s.kind == ScaleKind::Quantile {
        x = quantile(g, &s.quantiles, &x);
    }
    if s.kind == ScaleKind::None || s.mult.is_empty() {
        return x;
    }
    let n = s.mult.len();
    if s.shift.iter().any(|&v| v != 0.0) {
        let shift = g.constant("scaler.shift", &[n], &s.shift);
        x = g.node("Sub", &[&x, &shift], "scaler.centred", vec![]);
    }
    let mult = g.constant("scaler.mult", &[n], &s.mult);
    g.node("Mul", &[&x, &mult], "scaler.out", vec![])
}

/// `sign(x) * log1p(|x|)`. ONNX has no log1p and `Log(1 + a)` loses the low bits of a
/// small `a`, so it is Goldberg's exact form: `log(u) * a / (u - 1)` with `u = 1 + a`,
/// and `a` itself where `u` rounds to 1 (Spambase monotone model in ONNX Runtime: largest
/// logit difference to `nonneg predict` 1.0e-6, 1.3e-6 with `Log(1 + a)`).
fn signed_log1p(g: &mut Graph, x: &str) -> String {
    let one = g.constant("scaler.one", &[], &[1.0]);
    let zero = g.constant("scaler.zero", &[], &[0.0]);
    let a = g.node("Abs", &[x], "scaler.abs", vec![]);
    let u = g.node("Add", &[&a, &one], "scaler.u", vec![]);
    let d = g.node("Sub", &[&u, &one], "scaler.u_minus_1", vec![]);
    let ratio = g.node("Div", &[&a, &d], "scaler.ratio", vec![]);
    let log_u = g.node("Log", &[&u], "scaler.log_u", vec![]);
    let product = g.node("Mul", &[&log_u, &ratio], "scaler.log1p_wide", vec![]);
    let tiny = g.node("Equal", &[&d, &zero], "scaler.u_is_1", vec![]);
    let log1p = g.node("Where", &[&tiny, &a, &product], "scaler.log1p", vec![]);
    let sign = g.node("Sign", &[x], "scaler.sign", vec![]);
    g.node("Mul", &[&sign, &log1p], "scaler.log", vec![])
}

/// The quantile transform ([`Quantiles::value`]) of `[N, d]` rows. Segment `s` of feature
/// `j` is `[at_s, at_s+1)` (features with fewer knots padded with empty segments); the one
/// segment holding `x` gives `level + rise * ((x - at) / width)`, the same float steps as
/// `Quantiles::value`, the others 0, and ReduceMax over segments picks it (levels are
/// positive); values outside the knots take the end levels.
fn quantile(g: &mut Graph, qs: &[Quantiles], x: &str) -> String {
    let d = qs.len();
    let segments = qs.iter().map(|q| q.at.len() - 1).max().unwrap_or(0).max(1);
    let mut t = [(); 5].map(|_| vec![0f32; segments * d]); // lo, hi, width, level, rise
    for (j, q) in qs.iter().enumerate() {
        let last = q.at[q.at.len() - 1];
        for s in 0..segments {
            let row = if s + 1 < q.at.len() {
                let (k0, k1, l0, l1) = (q.at[s], q.at[s + 1], q.level[s], q.level[s + 1]);
                [k0, k1, k1 - k0, l0, l1 - l0]
            } else {
                [last, last, 1.0, 0.0, 0.0] // empty: nothing is >= last and < last
            };
            for (tensor, v) in t.iter_mut().zip(row) {
                tensor[s * d + j] = v;
            }
        }
    }
    let shape = [segments, 1, d];
    let names = ["lo", "hi", "width", "level", "rise"];
    let [lo, hi, width, level, rise] =
        [0, 1, 2, 3, 4].map(|i| g.constant(&format!("quantile.{}", names[i]), &shape, &t[i]));
    let ends = |f: fn(&Quantiles) -> f32| qs.iter().map(f).collect::<Vec<f32>>();
    let first = g.constant("quantile.first", &[d], &ends(|q| q.at[0]));
    let last = g.constant("quantile.last", &[d], &ends(|q| q.at[q.at.len() - 1]));
    let first_level = g.constant("quantile.first_level", &[d], &ends(|q| q.level[0]));
    let last_level = g.constant(
        "quantile.last_level",
        &[d],
        &ends(|q| q.level[q.level.len() - 1]),
    );
    let zero = g.constant("quantile.zero", &[], &[0.0]);
    let from = g.node("GreaterOrEqual", &[x, &lo], "quantile.from", vec![]);
    let before = g.node("Less", &[x, &hi], "quantile.before", vec![]);
    let inside = g.node("And", &[&from, &before], "quantile.inside", vec![]);
    let offset = g.node("Sub", &[x, &lo], "quantile.offset", vec![]);
    let frac = g.node("Div", &[&offset, &width], "quantile.frac", vec![]);
    let step = g.node("Mul", &[&rise, &frac], "quantile.step", vec![]);
    let value = g.node("Add", &[&level, &step], "quantile.value", vec![]);
    let held = g.node("Where", &[&inside, &value, &zero], "quantile.held", vec![]);
    let axes = pb::AttributeProto {
        name: "axes".into(),
        r#type: pb::ATTRIBUTE_INTS,
        ints: vec![0],
        ..Default::default()
    };
    let keepdims = pb::AttributeProto {
        name: "keepdims".into(),
        r#type: pb::ATTRIBUTE_INT,
        i: 0,
        ..Default::default()
    };
    let inner = g.node(
        "ReduceMax",
        &[&held],
        "quantile.inner",
        vec![axes, keepdims],
    );
    let below = g.node("Less", &[x, &first], "quantile.below", vec![]);
    let above = g.node("GreaterOrEqual", &[x, &last], "quantile.above", vec![]);
    let top = g.node(
        "Where",
        &[&above, &last_level, &inner],
        "quantile.top",
        vec![],
    );
    g.node(
        "Where",
        &[&below, &first_level, &top],
        "quantile.out",
        vec![],
    )
}

/// `out = x W + b` (the kernel is stored `[in, out]`, as Gemm's B); returns `out`.
/// `wide`: computed in float64 and rounded once, as nonneg sums a sparse-input model's
/// first layer and skip connection (`Dense::affine_sparse_rows`); the weights stay float32
/// in the file and are widened in the graph.
fn affine(g: &mut Graph, name: &str, layer: &Dense, x: &str, out: &str, wide: bool) -> String {
    let w = g.constant(
        &format!("{name}.weight"),
        &[layer.n_in, layer.n_out],
        &layer.weight,
    );
    let b = g.constant(&format!("{name}.bias"), &[layer.n_out], &layer.bias);
    if !wide {
        return g.node("Gemm", &[x, &w, &b], out, vec![]);
    }
    let [x, w, b] = [x, &w, &b].map(|t| g.cast(t, &format!("{t}.f64"), pb::DATA_TYPE_DOUBLE));
    let z = g.node("Gemm", &[&x, &w, &b], &format!("{out}.f64"), vec![]);
    g.cast(&z, out, pb::DATA_TYPE_FLOAT)
}

/// The layer's activation applied to its pre-activations `z`; returns the output's name.
fn activate(g: &mut Graph, name: &str, layer: &Dense, z: String) -> String {
    let out = format!("{name}.a");
    match layer.activation {
        Activation::Identity => z,
        Activation::Relu => g.node("Relu", &[&z], &out, vec![]),
        Activation::LeakyRelu => g.node(
            "LeakyRelu",
            &[&z],
            &out,
            vec![pb::AttributeProto {
                name: "alpha".into(),
                r#type: pb::ATTRIBUTE_FLOAT,
                f: LEAKY_SLOPE,
                ..Default::default()
            }],
        ),
        Activation::Sigmoid => g.node("Sigmoid", &[&z], &out, vec![]),
        Activation::Tanh => g.node("Tanh", &[&z], &out, vec![]),
        Activation::Softplus => g.node("Softplus", &[&z], &out, vec![]),
        Activation::Mixed => {
            // Each mixed unit is a clamp between its limits at -inf and +inf (relu:
            // [0, inf], min(z, 0): [-inf, 0], saturating: [-1, 1]): Max then Min with
            // per-unit bounds, exact.
            let limit = |z: f32| -> Vec<f32> {
                (0..layer.n_out)
                    .map(|u| Activation::Mixed.apply(z, u))
                    .collect()
            };
            let lo = g.constant(
                &format!("{name}.low"),
                &[layer.n_out],
                &limit(f32::NEG_INFINITY),
            );
            let hi = g.constant(
                &format!("{name}.high"),
                &[layer.n_out],
                &limit(f32::INFINITY),
            );
            let raised = g.node("Max", &[&z, &lo], &format!("{name}.raised"), vec![]);
            g.node("Min", &[&raised, &hi], &out, vec![])
        }
    }
}

/// A float32 graph input or output of shape `[N, width]`.
fn value_info(name: &str, width: usize, doc: &str) -> pb::ValueInfoProto {
    let dim = |v| pb::tensor_shape_proto::Dimension { value: Some(v) };
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: pb::DATA_TYPE_FLOAT,
                shape: Some(pb::TensorShapeProto {
                    dim: vec![
                        dim(dimension::Value::DimParam("N".into())),
                        dim(dimension::Value::DimValue(width as i64)),
                    ],
                }),
            })),
        }),
        doc_string: doc.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mlp;

    fn model(layers: Vec<Dense>) -> Model {
        Model::new(Mlp {
            input_dim: layers.first().map_or(0, |l| l.n_in),
            sparse_input: false,
            layers,
            skip: None,
        })
    }

    #[test]
    fn mixed_units_are_clamps_between_their_limits() {
        for u in 0..6 {
            let lo = Activation::Mixed.apply(f32::NEG_INFINITY, u);
            let hi = Activation::Mixed.apply(f32::INFINITY, u);
            for i in -300..=300 {
                let z = i as f32 * 0.01;
                assert_eq!(
                    z.max(lo).min(hi),
                    Activation::Mixed.apply(z, u),
                    "unit {u} at {z}"
                );
            }
        }
    }

    #[test]
    fn refuses_models_it_cannot_write() {
        let e = to_onnx_bytes(&model(vec![])).unwrap_err().to_string();
        assert!(e.contains("no layers"), "{e}");
        // Sized by its shape alone (no weights allocated): 2^20 x 1024 float32 is 4 GiB.
        let mut huge = Dense::zeros(0, 1024, Activation::Identity);
        huge.n_in = 1 << 20;
        let e = to_onnx_bytes(&model(vec![huge])).unwrap_err().to_string();
        assert!(e.contains("4294971392 bytes") && e.contains("2 GiB"), "{e}");
    }
}
