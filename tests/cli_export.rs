//! `nonneg export --onnx`: the file is a standard opset-17 ONNX model (decoded here with
//! prost) holding the saved weights, with named input and outputs, and what cannot be
//! exported is refused. `python/tests/test_onnx.py` runs the files in ONNX Runtime.

mod common;

use common::{fails, path_in, run, split_spambase, tempdir, train_spambase};
use nonneg::export::onnx_proto::{
    tensor_shape_proto::dimension::Value as Dim, type_proto, ModelProto, ValueInfoProto,
};
use nonneg::model::activation::LEAKY_SLOPE;
use prost::Message as _;
use std::path::Path;

fn export(model: &str, out: &str) -> ModelProto {
    run(&["export", "--model", model, "--onnx", out, "-q"]);
    ModelProto::decode(std::fs::read(out).unwrap().as_slice()).expect("a valid ModelProto")
}

/// A graph input or output's name and shape (`N` for the free batch dimension).
fn signature(v: &ValueInfoProto) -> (String, Vec<String>) {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.clone())
    else {
        panic!("{} is not a tensor", v.name)
    };
    assert_eq!(t.elem_type, 1, "float32");
    let dims = t.shape.unwrap().dim.into_iter().map(|d| match d.value {
        Some(Dim::DimValue(v)) => v.to_string(),
        Some(Dim::DimParam(p)) => p,
        None => "?".into(),
    });
    (v.name.clone(), dims.collect())
}

fn ops(m: &ModelProto) -> Vec<String> {
    let g = m.graph.as_ref().unwrap();
    g.node.iter().map(|n| n.op_type.clone()).collect()
}

fn count(m: &ModelProto, op: &str) -> usize {
    ops(m).iter().filter(|o| *o == op).count()
}

fn initializer(m: &ModelProto, name: &str) -> (Vec<i64>, Vec<f32>) {
    let g = m.graph.as_ref().unwrap();
    let t = g.initializer.iter().find(|t| t.name == name).unwrap();
    let v = t.raw_data.chunks_exact(4);
    (
        t.dims.clone(),
        v.map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
    )
}

#[test]
fn export_writes_the_saved_network_as_a_standard_opset_17_graph() {
    let dir = tempdir();
    let (train, _) = split_spambase(dir.path());
    let free = path_in(dir.path(), "free.safetensors");
    let mixed = path_in(dir.path(), "mixed.safetensors");
    let leaky = path_in(dir.path(), "leaky.safetensors");
    let quick = ["--epochs", "1", "--hidden", "8,4"];
    train_spambase(&train, &free, &quick);
    let monotone = ["--constraint", "monotone", "--activation", "mixed"];
    train_spambase(&train, &mixed, &[&quick[..], &monotone[..]].concat());
    train_spambase(
        &train,
        &leaky,
        &[&quick[..], &["--activation", "leaky_relu"]].concat(),
    );

    let m = export(&free, &path_in(dir.path(), "free.onnx"));
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!(
        (m.opset_import[0].domain.as_str(), m.opset_import[0].version),
        ("", 17)
    );
    let g = m.graph.as_ref().unwrap();
    let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        g.input.iter().map(signature).collect::<Vec<_>>(),
        [("features".into(), n(&["N", "57"]))]
    );
    assert_eq!(
        g.output.iter().map(signature).collect::<Vec<_>>(),
        [
            ("logit".into(), n(&["N", "1"])),
            ("score".into(), n(&["N", "1"]))
        ]
    );
    // Standard scaling (Sub, Mul), three layers, two ReLUs, the sigmoid; no custom ops.
    assert_eq!(
        ops(&m),
        n(&["Sub", "Mul", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Sigmoid"])
    );
    assert!(g.node.iter().all(|n| n.domain.is_empty()));
    // The saved weights, in the kernel layout Gemm reads ([in, out]).
    let saved = nonneg::model::io::load(Path::new(&free)).unwrap();
    for (l, layer) in saved.mlp.layers.iter().enumerate() {
        let (dims, w) = initializer(&m, &format!("layer{l}.weight"));
        assert_eq!(dims, [layer.n_in as i64, layer.n_out as i64]);
        assert_eq!(w, layer.weight);
        assert_eq!(initializer(&m, &format!("layer{l}.bias")).1, layer.bias);
    }
    assert_eq!(initializer(&m, "scaler.mult").1, saved.scaler.mult);

    // Monotone: log1p-standard scaling, mixed units as per-unit clamps, the skip connection.
    let m = export(&mixed, &path_in(dir.path(), "mixed.onnx"));
    assert_eq!((count(&m, "Log"), count(&m, "Sign")), (1, 1));
    assert_eq!(
        (count(&m, "Gemm"), count(&m, "Add")),
        (4, 2),
        "3 layers + skip; log1p's 1 + a, logit + skip"
    );
    assert_eq!((count(&m, "Max"), count(&m, "Min")), (2, 2));
    let (_, low) = initializer(&m, "layer0.low");
    let (_, high) = initializer(&m, "layer0.high");
    let inf = f32::INFINITY;
    assert_eq!(low, [0.0, -inf, -1.0, 0.0, -inf, -1.0, 0.0, -inf]);
    assert_eq!(high, [inf, 0.0, 1.0, inf, 0.0, 1.0, inf, 0.0]);
    let saved = nonneg::model::io::load(Path::new(&mixed)).unwrap();
    assert_eq!(
        initializer(&m, "skip.weight").1,
        saved.mlp.skip.unwrap().weight
    );

    let m = export(&leaky, &path_in(dir.path(), "leaky.onnx"));
    let g = m.graph.unwrap();
    let leaky: Vec<_> = g.node.iter().filter(|n| n.op_type == "LeakyRelu").collect();
    assert_eq!(leaky.len(), 2);
    assert!(leaky
        .iter()
        .all(|n| n.attribute[0].name == "alpha" && n.attribute[0].f == LEAKY_SLOPE));
}

#[test]
fn export_refuses_what_it_cannot_read_or_write_and_leaves_no_file() {
    let dir = tempdir();
    let not_a_model = path_in(dir.path(), "notes.safetensors");
    std::fs::write(&not_a_model, "not a model").unwrap();
    let out = path_in(dir.path(), "out.onnx");
    let e = fails(&["export", "--model", &not_a_model, "--onnx", &out]);
    assert!(e.contains("notes.safetensors"), "{e}");
    assert!(!Path::new(&out).exists());

    let (train, _) = split_spambase(dir.path());
    let model = path_in(dir.path(), "m.safetensors");
    train_spambase(&train, &model, &["--epochs", "1", "--hidden", "4"]);
    let nowhere = path_in(dir.path(), "missing/out.onnx");
    let e = fails(&["export", "--model", &model, "--onnx", &nowhere]);
    assert!(e.contains("missing/out.onnx"), "{e}");
    let e = fails(&["export", "--model", &model]);
    assert!(e.contains("--onnx"), "{e}");
}
