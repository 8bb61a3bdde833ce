//! `nonneg inspect`.

use super::{load_model, Context};
use anyhow::Result;
use clap::Args;
use nonneg::model::{Dense, Model};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The model file (.safetensors) to describe.
    #[arg(long)]
    pub model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn stats(values: &[f32]) -> (f32, f32, usize, f64) {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let neg = values.iter().filter(|&&v| v < 0.0).count();
    let norm = values
        .iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt();
    (min, max, neg, norm)
}

pub fn layer_json(i: usize, l: &Dense) -> Value {
    let (wmin, wmax, neg, norm) = stats(&l.weight);
    let (bmin, bmax, bneg, _) = stats(&l.bias);
    // Norm of each unit's incoming weights (Keras axis 0).
    let mut unit_sq = vec![0f64; l.n_out];
    for row in l.weight.chunks_exact(l.n_out) {
        for (s, &w) in unit_sq.iter_mut().zip(row) {
            *s += (w as f64) * (w as f64);
        }
    }
    let max_unit_norm = unit_sq.iter().copied().fold(0.0, f64::max).sqrt();
    json!({
        "index": i,
        "in": l.n_in,
        "out": l.n_out,
        "activation": l.activation.name(),
        "kernel_constraints": l.kernel_constraints,
        "bias_constraints": l.bias_constraints,
        "weights": l.weight.len(),
        "negative_weights": neg,
        "fraction_negative": neg as f64 / l.weight.len().max(1) as f64,
        "weight_min": wmin,
        "weight_max": wmax,
        "weight_norm": norm,
        "max_unit_norm": max_unit_norm,
        "bias_min": bmin,
        "bias_max": bmax,
        "negative_biases": bneg,
    })
}

pub fn model_json(m: &Model) -> Value {
    json!({
        "input_dim": m.mlp.input_dim,
        "sparse_input": m.mlp.sparse_input,
        "n_labels": m.mlp.n_labels(),
        "label_names": m.label_names,
        "has_feature_names": m.feature_names.is_some(),
        "nonneg_mode": m.nonneg_mode,
        "scaler": m.scaler.kind,
        "threshold": m.threshold,
        "parameters": m.mlp.layers.iter().map(|l| l.weight.len() + l.bias.len()).sum::<usize>()
            + m.mlp.skip.as_ref().map_or(0, |s| s.weight.len()),
        "negative_weights": m.mlp.layers.iter().chain(&m.mlp.skip).map(|l| l.weight.iter().filter(|&&w| w < 0.0).count()).sum::<usize>(),
        "layers": m.mlp.layers.iter().enumerate().map(|(i, l)| layer_json(i, l)).collect::<Vec<_>>(),
        "skip": m.mlp.skip.as_ref().map(|s| layer_json(m.mlp.layers.len(), s)),
        "featurizer": m.featurizer.is_some(),
        "input": m.input,
        "training": m.training,
    })
}

/// A value's name on the command line (`log1p-standard`, not `Log1pStandard`).
fn cli_name(v: &impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

/// The stored data info in words ("CSV, label column type, classes ham (0) / spam (1)").
pub fn describe_input(i: &nonneg::data::DataInfo) -> String {
    let mut parts = vec![i
        .kind
        .map_or("format not recorded", |k| k.name())
        .to_string()];
    if let Some(b) = i.index_base {
        parts.push(format!(
            "{}-based indices",
            u8::from(b == nonneg::data::IndexBase::One)
        ));
    }
    if let Some(c) = &i.label_column {
        parts.push(format!("label column {c}"));
    }
    if let Some([neg, pos]) = i.class_names() {
        parts.push(format!("classes {neg} (0) / {pos} (1)"));
    }
    parts.join(", ")
}

/// The training record's dropout in words ("dropout 0.2, input dropout 0.1"), if any.
fn dropout_line(training: &Value) -> Option<String> {
    let parts: Vec<String> = [("dropout", "dropout"), ("input_dropout", "input dropout")]
        .iter()
        .filter_map(|(key, name)| Some(format!("{name} {}", training.get(key)?.as_f64()? as f32)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

pub fn run(a: &InspectArgs, _ctx: &Context) -> Result<ExitCode> {
    let m = load_model(&a.model)?;
    let j = model_json(&m);
    if a.json {
        crate::cli::outln!("{j}")?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::cli::outln!(
        "model: {} inputs ({}), {} label(s) {:?}, {} parameters, scaling {}, non-negativity by {}",
        m.mlp.input_dim,
        if m.mlp.sparse_input {
            "sparse"
        } else {
            "dense"
        },
        m.mlp.n_labels(),
        m.label_names,
        j["parameters"],
        cli_name(&m.scaler.kind),
        cli_name(&m.nonneg_mode)
    )?;
    crate::cli::outln!("threshold (logit): {:?}", m.threshold)?;
    crate::cli::outln!("input: {}", describe_input(&m.input))?;
    if let Some(d) = dropout_line(&m.training) {
        crate::cli::outln!("training: {d}")?;
    }
    if let Some(k) = m.training.get("ensemble") {
        let seeds = &m.training["ensemble_seeds"];
        crate::cli::outln!("ensemble: {k} members (seeds {seeds}), the mean of their logits")?;
    }
    let named = m
        .mlp
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("layer {i}"), l));
    let skip = m.mlp.skip.iter().map(|s| ("skip".to_string(), s));
    for (i, (name, l)) in named.chain(skip).enumerate() {
        let v = layer_json(i, l);
        let cons = |c: &[nonneg::model::Constraint]| {
            if c.is_empty() {
                "none".to_string()
            } else {
                c.iter()
                    .map(|c| c.describe())
                    .collect::<Vec<_>>()
                    .join(" + ")
            }
        };
        crate::cli::outln!(
            "{name}: {} -> {} {:<10} kernel [{}] bias [{}]",
            l.n_in,
            l.n_out,
            l.activation.name(),
            cons(&l.kernel_constraints),
            cons(&l.bias_constraints)
        )?;
        crate::cli::outln!(
            "         weights min {:.4} max {:.4}, negative {} ({:.1}%), norm {:.3}, max unit norm {:.3}; bias min {:.4} max {:.4}",
            l.weight.iter().copied().fold(f32::INFINITY, f32::min),
            l.weight.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            v["negative_weights"],
            100.0 * v["fraction_negative"].as_f64().unwrap_or(0.0),
            v["weight_norm"].as_f64().unwrap_or(0.0),
            v["max_unit_norm"].as_f64().unwrap_or(0.0),
            v["bias_min"].as_f64().unwrap_or(0.0),
            v["bias_max"].as_f64().unwrap_or(0.0),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
