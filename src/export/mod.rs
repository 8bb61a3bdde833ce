//! Exporting a model to formats other runtimes execute.

pub mod onnx;
pub mod onnx_proto;
