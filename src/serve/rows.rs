//! JSON feature rows -> the feature matrix `nonneg predict` would build from the same
//! data: dense arrays and name maps as a CSV gives them (dense), index lists as an
//! svmlight file gives them (sparse), so a row scores to the same bits either way.

use super::error::ApiError;
use super::state::Served;
use crate::data::{CsrMatrix, DenseMatrix, Features};
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// The three row formats; a request body holds exactly one of these keys.
const KINDS: [&str; 3] = ["rows", "named", "sparse"];

/// The common request, dense rows only, read straight into floats (the same `f64` ->
/// `f32` conversion as [`number`]); anything else goes the way that names the field.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DenseRows {
    rows: Vec<Vec<f32>>,
}

fn fast_dense(body: &[u8], n: usize, max_rows: usize) -> Option<Features> {
    let DenseRows { rows } = serde_json::from_slice(body).ok()?;
    let fits = !rows.is_empty() && rows.len() <= max_rows;
    if !fits
        || rows
            .iter()
            .any(|r| r.len() != n || !r.iter().all(|v| v.is_finite()))
    {
        return None;
    }
    Some(Features::Dense(DenseMatrix {
        rows: rows.len(),
        cols: n,
        values: rows.concat(),
    }))
}

/// Parses a score request body for `served`, at most `max_rows` rows.
pub fn parse(body: &[u8], served: &Served, max_rows: usize) -> Result<Features, ApiError> {
    if let Some(x) = fast_dense(body, served.model.mlp.input_dim, max_rows) {
        return Ok(x);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("not valid JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(ApiError::bad(
            "body",
            "expected a JSON object with `rows`, `named` or `sparse`",
        ));
    };
    let present: Vec<&str> = KINDS.into_iter().filter(|k| obj.contains_key(*k)).collect();
    let kind = match present.as_slice() {
        [one] => *one,
        [] => return Err(ApiError::bad("body", "expected one of `rows` (arrays of numbers), `named` (feature name -> value) or `sparse` (indices and values)")),
        _ => return Err(ApiError::bad(present[1], format!("give only one of {}", present.join(", ")))),
    };
    let Some(Value::Array(rows)) = obj.remove(kind) else {
        return Err(ApiError::bad(kind, "expected an array of rows"));
    };
    if rows.is_empty() {
        return Err(ApiError::bad(kind, "no rows: give at least one"));
    }
    if rows.len() > max_rows {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            kind,
            format!("{} rows, at most {max_rows} per request", rows.len()),
        ));
    }
    let n = served.model.mlp.input_dim;
    match kind {
        "rows" => dense(&rows, n),
        "named" => named(&rows, served),
        _ => sparse(&rows, n),
    }
}

/// A JSON number as a finite float32 (the precision the model computes in).
fn number(v: &Value, field: impl FnOnce() -> String) -> Result<f32, ApiError> {
    match v.as_f64() {
        Some(x) if (x as f32).is_finite() => Ok(x as f32),
        Some(x) => Err(ApiError::bad(
            field(),
            format!("{x} is not a finite float32"),
        )),
        None => Err(ApiError::bad(
            field(),
            format!("expected a number, got {}", type_name(v)),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn dense(rows: &[Value], n: usize) -> Result<Features, ApiError> {
    let mut values = Vec::with_capacity(rows.len() * n);
    for (r, row) in rows.iter().enumerate() {
        let Value::Array(row) = row else {
            return Err(ApiError::bad(
                format!("rows[{r}]"),
                format!("expected an array of {n} numbers, got {}", type_name(row)),
            ));
        };
        if row.len() != n {
            return Err(ApiError::bad(
                format!("rows[{r}]"),
                format!("has {} values, the model takes {n}", row.len()),
            ));
        }
        for (c, v) in row.iter().enumerate() {
            values.push(number(v, || format!("rows[{r}][{c}]"))?);
        }
    }
    Ok(Features::Dense(DenseMatrix {
        rows: rows.len(),
        cols: n,
        values,
    }))
}

/// Name maps: sparse models take the names present (absent features are 0, as in an
/// svmlight row); dense models need every feature, as a CSV row has.
fn named(rows: &[Value], served: &Served) -> Result<Features, ApiError> {
    let Some(index) = &served.feature_index else {
        return Err(ApiError::bad(
            "named",
            "this model has no feature names: send `rows` or `sparse`",
        ));
    };
    let n = served.model.mlp.input_dim;
    let mut pairs: Vec<Vec<(u32, f32)>> = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter().enumerate() {
        let Value::Object(map) = row else {
            return Err(ApiError::bad(
                format!("named[{r}]"),
                format!(
                    "expected an object of feature name -> number, got {}",
                    type_name(row)
                ),
            ));
        };
        pairs.push(named_row(map, index, r)?);
    }
    if served.model.mlp.sparse_input {
        return Ok(Features::Sparse(csr(n, &pairs)));
    }
    let mut values = vec![0f32; rows.len() * n];
    let names = crate::certify::feature_names(&served.model).unwrap_or_default();
    for (r, row) in pairs.iter().enumerate() {
        if row.len() != n {
            let mut seen = vec![false; n];
            row.iter().for_each(|&(j, _)| seen[j as usize] = true);
            let missing = seen.iter().position(|s| !s).unwrap_or(0);
            return Err(ApiError::bad(
                format!("named[{r}]"),
                format!(
                    "feature {:?} is missing ({} of {n} given)",
                    names.get(missing).map_or("?", |s| s.as_str()),
                    row.len()
                ),
            ));
        }
        for &(j, v) in row {
            values[r * n + j as usize] = v;
        }
    }
    Ok(Features::Dense(DenseMatrix {
        rows: rows.len(),
        cols: n,
        values,
    }))
}

fn named_row(
    map: &Map<String, Value>,
    index: &std::collections::HashMap<String, usize>,
    r: usize,
) -> Result<Vec<(u32, f32)>, ApiError> {
    let mut row = Vec::with_capacity(map.len());
    for (name, v) in map {
        let Some(&j) = index.get(name) else {
            return Err(ApiError::bad(
                format!("named[{r}].{name}"),
                format!("the model has no feature {name:?}"),
            ));
        };
        row.push((j as u32, number(v, || format!("named[{r}].{name}"))?));
    }
    row.sort_unstable_by_key(|&(j, _)| j);
    Ok(row)
}

/// `{"indices": [..], "values": [..]}` rows (0-based indices; values default to 1).
fn sparse(rows: &[Value], n: usize) -> Result<Features, ApiError> {
    let mut pairs: Vec<Vec<(u32, f32)>> = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter().enumerate() {
        let f = |s: &str| format!("sparse[{r}]{s}");
        let Some(Value::Array(indices)) = row.get("indices") else {
            return Err(ApiError::bad(
                f(".indices"),
                "expected an array of feature indices (0-based)",
            ));
        };
        let values = match row.get("values") {
            None => None,
            Some(Value::Array(v)) if v.len() == indices.len() => Some(v),
            Some(v) => {
                return Err(ApiError::bad(
                    f(".values"),
                    format!(
                        "expected an array of {} numbers, got {}",
                        indices.len(),
                        match v {
                            Value::Array(a) => format!("{} values", a.len()),
                            v => type_name(v).into(),
                        }
                    ),
                ))
            }
        };
        let mut row = Vec::with_capacity(indices.len());
        for (k, ix) in indices.iter().enumerate() {
            let j = match ix.as_u64() {
                Some(j) if (j as usize) < n => j as u32,
                _ => {
                    return Err(ApiError::bad(
                        f(&format!(".indices[{k}]")),
                        format!("{ix} is not a feature index in 0..{n}"),
                    ))
                }
            };
            let v = match values {
                Some(vs) => number(&vs[k], || f(&format!(".values[{k}]")))?,
                None => 1.0,
            };
            row.push((j, v));
        }
        row.sort_unstable_by_key(|&(j, _)| j);
        if let Some(w) = row.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ApiError::bad(
                f(".indices"),
                format!("index {} appears twice", w[0].0),
            ));
        }
        pairs.push(row);
    }
    Ok(Features::Sparse(csr(n, &pairs)))
}

fn csr(n: usize, rows: &[Vec<(u32, f32)>]) -> CsrMatrix {
    let nnz = rows.iter().map(Vec::len).sum();
    let mut m = CsrMatrix::with_capacity(n, rows.len(), nnz);
    for row in rows {
        let (idx, val): (Vec<u32>, Vec<f32>) = row.iter().copied().unzip();
        m.push_row(&idx, &val);
    }
    m
}
