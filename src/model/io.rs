//! The model file: one `.safetensors` with float32 tensors `layers.N.weight` (PyTorch
//! layout `[out, in]`) and `layers.N.bias`, plus `skip.weight` (`[labels, in]`) when the
//! model has a linear skip connection from the input to the logits, and the rest as JSON
//! under the single `__metadata__` key `nonneg` (one key, so the header bytes are
//! deterministic).
//! Written atomically: a temp file in the same folder, then rename.

use super::{Activation, Constraint, Dense, Mlp, Model, NonNegMode, Scaler};
use crate::data::DataInfo;
use crate::error::{Error, Result};
use crate::features::FeaturizerSpec;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

pub const FORMAT: &str = "nonneg-model";
pub const FORMAT_VERSION: u32 = 1;
const METADATA_KEY: &str = "nonneg";

#[derive(Serialize, Deserialize)]
struct LayerMeta {
    #[serde(rename = "in")]
    n_in: usize,
    #[serde(rename = "out")]
    n_out: usize,
    activation: Activation,
    kernel_constraints: Vec<Constraint>,
    bias_constraints: Vec<Constraint>,
}

#[derive(Serialize, Deserialize)]
struct Metadata {
    format: String,
    format_version: u32,
    input_dim: usize,
    sparse_input: bool,
    n_labels: usize,
    layers: Vec<LayerMeta>,
    /// The skip connection's kernel constraints, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    skip: Option<Vec<Constraint>>,
    nonneg_mode: NonNegMode,
    scaler: Scaler,
    threshold: Vec<f32>,
    feature_names: Option<Vec<String>>,
    label_names: Vec<String>,
    /// The featurizer as JSON with sorted keys (as `serde_json::Value` writes it), so
    /// the bytes of a model file stay what they have always been.
    #[serde(default)]
    featurizer: Option<serde_json::Value>,
    /// How the training data was read; absent in older files (and then empty).
    #[serde(default, skip_serializing_if = "DataInfo::is_empty")]
    input: DataInfo,
    #[serde(default)]
    training: serde_json::Value,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Kernel `[in, out]` -> PyTorch `[out, in]`.
fn to_torch_layout(l: &Dense) -> Vec<f32> {
    let mut t = vec![0.0; l.weight.len()];
    for i in 0..l.n_in {
        for o in 0..l.n_out {
            t[o * l.n_in + i] = l.weight[i * l.n_out + o];
        }
    }
    t
}

/// PyTorch `[out, in]` -> kernel `[in, out]`.
fn from_torch_layout(w: &[f32], n_in: usize, n_out: usize) -> Vec<f32> {
    let mut k = vec![0.0; w.len()];
    for o in 0..n_out {
        for j in 0..n_in {
            k[j * n_out + o] = w[o * n_in + j];
        }
    }
    k
}

/// Serialises a model to bytes.
pub fn to_bytes(model: &Model) -> Result<Vec<u8>> {
    let mlp = &model.mlp;
    let meta = Metadata {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        input_dim: mlp.input_dim,
        sparse_input: mlp.sparse_input,
        n_labels: mlp.n_labels(),
        layers: mlp
            .layers
            .iter()
            .map(|l| LayerMeta {
                n_in: l.n_in,
                n_out: l.n_out,
                activation: l.activation,
                kernel_constraints: l.kernel_constraints.clone(),
                bias_constraints: l.bias_constraints.clone(),
            })
            .collect(),
        skip: mlp.skip.as_ref().map(|s| s.kernel_constraints.clone()),
        nonneg_mode: model.nonneg_mode,
        scaler: model.scaler.clone(),
        threshold: model.threshold.clone(),
        feature_names: model.feature_names.clone(),
        label_names: model.label_names.clone(),
        featurizer: model
            .featurizer
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::invalid(format!("cannot serialise the featurizer: {e}")))?,
        input: model.input.clone(),
        training: model.training.clone(),
    };
    let json = serde_json::to_string(&meta).map_err(|e| Error::invalid(e.to_string()))?;
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, l) in mlp.layers.iter().enumerate() {
        buffers.push((
            format!("layers.{i}.weight"),
            vec![l.n_out, l.n_in],
            f32_bytes(&to_torch_layout(l)),
        ));
        buffers.push((
            format!("layers.{i}.bias"),
            vec![l.n_out],
            f32_bytes(&l.bias),
        ));
    }
    if let Some(s) = &mlp.skip {
        buffers.push((
            "skip.weight".into(),
            vec![s.n_out, s.n_in],
            f32_bytes(&to_torch_layout(s)),
        ));
    }
    if let Some(max) = &model.feature_max {
        buffers.push(("input.max".into(), vec![max.len()], f32_bytes(max)));
    }
    let views: Vec<(String, TensorView)> = buffers
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::invalid(format!("tensor {name}: {e}")))
        })
        .collect::<Result<_>>()?;
    let metadata: HashMap<String, String> = [(METADATA_KEY.to_string(), json)].into();
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::invalid(e.to_string()))
}

pub fn save(model: &Model, path: &Path) -> Result<()> {
    crate::atomic::write_bytes(path, &to_bytes(model)?)
}

pub fn load(path: &Path) -> Result<Model> {
    crate::data::check_regular(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_bytes(&bytes, path)
}

fn read_f32(st: &SafeTensors, name: &str, shape: &[usize], path: &Path) -> Result<Vec<f32>> {
    let t = st
        .tensor(name)
        .map_err(|_| Error::format(path, format!("missing tensor `{name}`")))?;
    if t.dtype() != Dtype::F32 {
        return Err(Error::format(
            path,
            format!("tensor `{name}` is {:?}, expected F32", t.dtype()),
        ));
    }
    if t.shape() != shape {
        return Err(Error::format(
            path,
            format!(
                "tensor `{name}` has shape {:?}, the architecture says {shape:?}",
                t.shape()
            ),
        ));
    }
    let v: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::format(
            path,
            format!("tensor `{name}` has a non-finite value at {i}"),
        ));
    }
    Ok(v)
}

pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Model> {
    let meta = read_metadata(bytes, path)?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file ({e})")))?;
    let bad = |msg: String| Error::format(path, msg);
    let layers = read_layers(&st, &meta, path)?;
    let n_labels = layers.last().map_or(0, |l| l.n_out);
    if n_labels != meta.n_labels || meta.threshold.len() != n_labels {
        return Err(bad("architecture: label count mismatch".into()));
    }
    if let Some(t) = meta.threshold.iter().find(|t| !t.is_finite()) {
        return Err(bad(format!(
            "the decision threshold {t} is not a finite number"
        )));
    }
    check_names(&meta, path)?;
    let skip = read_skip(&st, &meta, n_labels, path)?;
    meta.scaler
        .validate(meta.input_dim)
        .map_err(|e| bad(e.to_string()))?;
    let featurizer = match meta.featurizer {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<FeaturizerSpec>(v)
                .map_err(|e| bad(format!("the model's featurizer is unreadable: {e}")))?,
        ),
    };
    let feature_max = match st.tensor("input.max") {
        Ok(_) => Some(read_f32(&st, "input.max", &[meta.input_dim], path)?),
        Err(_) => None,
    };
    Ok(Model {
        mlp: Mlp {
            input_dim: meta.input_dim,
            sparse_input: meta.sparse_input,
            layers,
            skip,
        },
        scaler: meta.scaler,
        threshold: meta.threshold,
        feature_names: meta.feature_names,
        label_names: meta.label_names,
        nonneg_mode: meta.nonneg_mode,
        feature_max,
        featurizer,
        input: meta.input,
        training: meta.training,
    })
}

/// The name lists must match the widths they name.
fn check_names(meta: &Metadata, path: &Path) -> Result<()> {
    let bad = |msg: String| Err(Error::format(path, msg));
    if let Some(n) = meta.feature_names.as_ref().map(Vec::len) {
        if n != meta.input_dim {
            return bad(format!(
                "{n} feature names for an input width of {}",
                meta.input_dim
            ));
        }
    }
    if meta.label_names.len() != meta.n_labels {
        return bad(format!(
            "{} label names for {} labels",
            meta.label_names.len(),
            meta.n_labels
        ));
    }
    Ok(())
}

/// The `nonneg` metadata of a safetensors file, in a format version this build reads.
fn read_metadata(bytes: &[u8], path: &Path) -> Result<Metadata> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file ({e})")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| {
            Error::format(
                path,
                "a safetensors file, but not a nonneg model (no `nonneg` metadata)",
            )
        })?;
    let meta: Metadata = serde_json::from_str(json)
        .map_err(|e| Error::format(path, format!("bad nonneg metadata: {e}")))?;
    if meta.format != FORMAT || meta.format_version != FORMAT_VERSION {
        return Err(Error::format(
            path,
            format!(
                "model format {} v{} is not supported (this build reads {FORMAT} v{FORMAT_VERSION})",
                meta.format, meta.format_version
            ),
        ));
    }
    Ok(meta)
}

/// The layers, checking that widths chain from the input and the output is identity.
fn read_layers(st: &SafeTensors, meta: &Metadata, path: &Path) -> Result<Vec<Dense>> {
    let bad = |msg: String| Error::format(path, msg);
    if meta.layers.is_empty() || meta.layers[0].n_in != meta.input_dim {
        return Err(bad(
            "architecture: no layers, or input width mismatch".into()
        ));
    }
    let mut layers = Vec::with_capacity(meta.layers.len());
    for (i, lm) in meta.layers.iter().enumerate() {
        if i > 0 && lm.n_in != meta.layers[i - 1].n_out {
            return Err(bad(format!("architecture: layer {i} input width mismatch")));
        }
        // A layer of width 0 has an empty tensor whatever its other width: without this,
        // a tiny file could declare 2^40 inputs and make every pass allocate for them.
        if lm.n_in == 0 || lm.n_out == 0 {
            return Err(bad(format!(
                "architecture: layer {i} is {} x {}; a layer needs at least one input and one unit",
                lm.n_in, lm.n_out
            )));
        }
        layers.push(read_layer(st, i, lm, path)?);
    }
    if let Some(out) = layers
        .last()
        .filter(|l| l.activation != Activation::Identity)
    {
        // The logits are the output layer's pre-activations: an activation there would be
        // ignored by every pass, so a file that asks for one is refused.
        return Err(bad(format!(
            "architecture: the output layer has activation {}, expected identity",
            out.activation.name()
        )));
    }
    Ok(layers)
}

/// Layer `i`: its tensors (PyTorch layout on disk) and constraints.
fn read_layer(st: &SafeTensors, i: usize, lm: &LayerMeta, path: &Path) -> Result<Dense> {
    let bad = |msg: String| Error::format(path, msg);
    let w = read_f32(
        st,
        &format!("layers.{i}.weight"),
        &[lm.n_out, lm.n_in],
        path,
    )?;
    let bias = read_f32(st, &format!("layers.{i}.bias"), &[lm.n_out], path)?;
    let weight = from_torch_layout(&w, lm.n_in, lm.n_out);
    for c in &lm.kernel_constraints {
        c.validate(lm.n_in, false)
            .map_err(|e| bad(format!("layer {i}: {e}")))?;
    }
    for c in &lm.bias_constraints {
        c.validate(lm.n_out, true)
            .map_err(|e| bad(format!("layer {i}: {e}")))?;
    }
    Ok(Dense {
        n_in: lm.n_in,
        n_out: lm.n_out,
        weight,
        bias,
        activation: lm.activation,
        kernel_constraints: lm.kernel_constraints.clone(),
        bias_constraints: lm.bias_constraints.clone(),
    })
}

/// The skip connection (input straight to the logits), if the model has one.
fn read_skip(
    st: &SafeTensors,
    meta: &Metadata,
    n_labels: usize,
    path: &Path,
) -> Result<Option<Dense>> {
    let Some(constraints) = &meta.skip else {
        return Ok(None);
    };
    let (n_in, n_out) = (meta.input_dim, n_labels);
    let w = read_f32(st, "skip.weight", &[n_out, n_in], path)?;
    let mut s = Dense::zeros(n_in, n_out, Activation::Identity);
    s.weight = from_torch_layout(&w, n_in, n_out);
    for c in constraints {
        c.validate(n_in, false)
            .map_err(|e| Error::format(path, format!("skip connection: {e}")))?;
    }
    s.kernel_constraints = constraints.clone();
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::{init_layer, InitScheme};
    use crate::rng::Rng;

    pub(crate) fn small_model() -> Model {
        let mut rng = Rng::new(5);
        let mut l0 = Dense::zeros(3, 4, Activation::Relu);
        l0.kernel_constraints = vec![Constraint::non_neg()];
        let mut l1 = Dense::zeros(4, 1, Activation::Identity);
        l1.bias_constraints = vec![Constraint::MaxNorm {
            max_value: 1.0,
            axis: 0,
        }];
        init_layer(&mut l0, InitScheme::Auto, &mut rng);
        init_layer(&mut l1, InitScheme::Auto, &mut rng);
        Model {
            threshold: vec![0.25],
            feature_names: Some(vec!["a".into(), "b".into(), "c".into()]),
            label_names: vec!["type".into()],
            feature_max: Some(vec![1.0, 2.0, 3.0]),
            training: serde_json::json!({"seed": 0}),
            ..Model::new(Mlp {
                input_dim: 3,
                sparse_input: false,
                layers: vec![l0, l1],
                skip: None,
            })
        }
    }

    #[test]
    fn round_trip_is_exact_and_deterministic() {
        let m = small_model();
        let bytes = to_bytes(&m).unwrap();
        assert_eq!(bytes, to_bytes(&m).unwrap());
        let back = from_bytes(&bytes, Path::new("m.safetensors")).unwrap();
        assert_eq!(back, m);
        // PyTorch layout on disk: weight[o][i] == kernel[i][o].
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let w = st.tensor("layers.0.weight").unwrap();
        assert_eq!(w.shape(), &[4, 3]);
        let first = f32::from_le_bytes(w.data()[4..8].try_into().unwrap());
        assert_eq!(first, m.mlp.layers[0].weight[4]); // [o=0][i=1] == kernel[1][0]
    }

    #[test]
    fn data_info_round_trips_and_is_absent_from_files_without_it() {
        use crate::data::{DataInfo, IndexBase, InputKind};
        let old = to_bytes(&small_model()).unwrap();
        assert!(!String::from_utf8_lossy(&old).contains("\\\"input\\\""));
        let mut m = small_model();
        m.input = DataInfo {
            kind: Some(InputKind::Svmlight),
            index_base: Some(IndexBase::Zero),
            label_column: None,
            positive: Some("spam".into()),
            negative: Some("ham".into()),
        };
        let back = from_bytes(&to_bytes(&m).unwrap(), Path::new("m.safetensors")).unwrap();
        assert_eq!(back.input, m.input);
        assert_eq!(back.class_names(), Some(["ham", "spam"]));
    }

    #[test]
    fn non_finite_thresholds_and_name_lists_of_the_wrong_length_are_refused() {
        let p = Path::new("m.safetensors");
        let mut m = small_model();
        m.threshold = vec![f32::INFINITY];
        let e = from_bytes(&to_bytes(&m).unwrap(), p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad nonneg metadata") || e.contains("not a finite"),
            "{e}"
        );
        let mut m = small_model();
        m.feature_names = Some(vec!["a".into()]);
        let e = from_bytes(&to_bytes(&m).unwrap(), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 feature names for an input width of 3"), "{e}");
    }

    #[test]
    fn skip_connection_round_trips_and_adds_to_the_logit() {
        let mut m = small_model();
        let x = crate::data::Features::Dense(crate::data::DenseMatrix {
            rows: 1,
            cols: 3,
            values: vec![1.0, 2.0, 3.0],
        });
        let before = m.logits(&x)[0];
        let mut skip = m.mlp.new_skip();
        assert_eq!(skip.kernel_constraints, vec![Constraint::non_neg()]);
        skip.weight = vec![0.5, 0.25, 0.125];
        m.mlp.skip = Some(skip);
        let after = m.logits(&x)[0];
        assert!((after - before - (0.5 + 0.5 + 0.375)).abs() < 1e-5);
        let bytes = to_bytes(&m).unwrap();
        let back = from_bytes(&bytes, Path::new("m.safetensors")).unwrap();
        assert_eq!(back, m);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("skip.weight").unwrap().shape(), &[1, 3]);
    }

    #[test]
    fn architectures_that_cannot_be_run_are_refused() {
        let p = Path::new("m.safetensors");
        // An output activation would be ignored by every pass.
        let mut m = small_model();
        m.mlp.layers[1].activation = Activation::Sigmoid;
        let e = from_bytes(&to_bytes(&m).unwrap(), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("output layer has activation sigmoid"), "{e}");
        // A layer of width 0 would let the file claim any input width for free.
        let mut m = small_model();
        m.mlp.input_dim = 1 << 40;
        m.mlp.layers[0] = Dense::zeros(1 << 40, 0, Activation::Relu);
        m.mlp.layers[1] = Dense::zeros(0, 1, Activation::Identity);
        m.feature_names = None;
        m.feature_max = None;
        let e = from_bytes(&to_bytes(&m).unwrap(), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer 0 is 1099511627776 x 0"), "{e}");
    }

    #[test]
    fn corrupt_truncated_and_foreign_files_are_errors_not_panics() {
        let bytes = to_bytes(&small_model()).unwrap();
        let p = Path::new("m.safetensors");
        for cut in [0, 3, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            let e = from_bytes(&bytes[..cut], p).unwrap_err().to_string();
            assert!(e.contains("m.safetensors"), "{e}");
        }
        let mut rng = Rng::new(9);
        for _ in 0..200 {
            let mut b = bytes.clone();
            let i = rng.below(b.len() as u64) as usize;
            b[i] ^= 1 << rng.below(8);
            let _ = from_bytes(&b, p); // must not panic
        }
        let foreign = safetensors::serialize(
            [(
                "x",
                TensorView::new(Dtype::F32, vec![1], &[0u8, 0, 0, 0]).unwrap(),
            )],
            None,
        )
        .unwrap();
        let e = from_bytes(&foreign, p).unwrap_err().to_string();
        assert!(e.contains("not a nonneg model"), "{e}");
        assert!(from_bytes(b"hello world, not a model", p).is_err());
    }

    #[test]
    fn featurizer_round_trips_and_an_unreadable_one_is_a_load_error() {
        use crate::features::{TextOptions, TextSpec, Vocabulary};
        let mut m = small_model();
        m.featurizer = Some(FeaturizerSpec::text(TextSpec {
            options: TextOptions::default(),
            vocabulary: Vocabulary::Terms(vec!["a".into(), "b".into(), "c".into()]),
            idf: None,
        }));
        let bytes = to_bytes(&m).unwrap();
        let p = Path::new("m.safetensors");
        assert_eq!(from_bytes(&bytes, p).unwrap(), m);
        // The stored JSON is the spec's own JSON with sorted keys.
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(&header.metadata().as_ref().unwrap()[METADATA_KEY]).unwrap();
        let spec = serde_json::to_value(m.featurizer.as_ref().unwrap()).unwrap();
        assert_eq!(meta["featurizer"], spec);
        // A spec version this build does not read: the load says so.
        let needle = br#"\"version\":1"#;
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut bad = bytes.clone();
        bad[at + needle.len() - 1] = b'9';
        let e = from_bytes(&bad, p).unwrap_err().to_string();
        assert!(e.contains("featurizer is unreadable"), "{e}");
    }
}
