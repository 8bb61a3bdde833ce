//! The HTTP handlers. Scoring reuses exactly what `nonneg predict` calls:
//! [`Model::logits`](crate::model::Model::logits), [`Model::decide`](crate::model::Model::decide)
//! and the model's own featurizer.

use super::error::ApiError;
use super::state::Served;
use super::{raw, rows, App};
use crate::data::{CsrMatrix, DenseMatrix, Features};
use crate::model::{Model, Prediction};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

/// Dense requests with bodies up to this many bytes score on the async thread that
/// received them; larger ones, and every sparse or raw request, go to the compute pool.
const INLINE_BODY_BYTES: usize = 1 << 16;

/// Runs CPU work on the rayon pool (where the library's parallel loops run without a
/// thread hop), or right here when it is small. A panic becomes a 500, never an abort.
async fn compute<T: Send + 'static>(
    inline: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let guarded = move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    let result = if inline {
        guarded()
    } else {
        let (tx, rx) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let _ = tx.send(guarded());
        });
        rx.await
            .unwrap_or_else(|_| Err(Box::new("the compute pool dropped the request")))
    };
    result.map_err(|_| {
        tracing::error!("scoring panicked");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "request",
            "internal error while scoring",
        )
    })
}

fn model(app: &App, name: &str) -> Result<Arc<Served>, ApiError> {
    app.registry.get(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "name",
            format!("no model named {name:?}"),
        )
    })
}

#[derive(Serialize)]
#[serde(untagged)]
enum Verdict<'a> {
    One(&'a Prediction),
    Many { scores: &'a [Prediction] },
}

#[derive(Serialize)]
struct Row<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sample: Option<&'a str>,
    #[serde(flatten)]
    verdict: Verdict<'a>,
    /// Decoding problems of a raw sample (never fatal, as in `nonneg featurize`).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    problems: &'a [String],
}

#[derive(Serialize)]
struct Scored<'a> {
    model: &'a str,
    generation: u64,
    labels: &'a [String],
    /// The decision threshold on the logit, per label.
    threshold: &'a [f32],
    results: Vec<Row<'a>>,
}

/// [`Model::logits`], as `nonneg predict` computes them. Its products take a matrix-vector
/// path for a single row, whose sums round differently from the matrix-matrix path of
/// every larger block: a lone row is scored as a block of two copies of itself.
fn logits(m: &Model, x: &Features) -> Vec<f32> {
    if x.rows() != 1 {
        return m.logits(x);
    }
    let twice = match x {
        Features::Dense(d) => Features::Dense(DenseMatrix {
            rows: 2,
            cols: d.cols,
            values: [d.values.as_slice(), d.values.as_slice()].concat(),
        }),
        Features::Sparse(s) => {
            let mut t = s.clone();
            let (idx, val) = s.row(0);
            t.push_row(idx, val);
            Features::Sparse(t)
        }
    };
    let mut z = m.logits(&twice);
    z.truncate(m.mlp.n_labels());
    z
}

/// The reply: `{"model", "generation", "labels", "threshold", "results": [...]}`.
fn scored(name: &str, served: &Served, x: &Features, samples: &[(String, Vec<String>)]) -> Vec<u8> {
    let m = &served.model;
    let predictions = m.decide(&logits(m, x));
    let l = m.threshold.len().max(1);
    let results: Vec<Row> = predictions
        .chunks_exact(l)
        .enumerate()
        .map(|(r, p)| Row {
            sample: samples.get(r).map(|s| s.0.as_str()),
            verdict: if l == 1 {
                Verdict::One(&p[0])
            } else {
                Verdict::Many { scores: p }
            },
            problems: samples.get(r).map_or(&[], |s| s.1.as_slice()),
        })
        .collect();
    let body = Scored {
        model: name,
        generation: served.generation,
        labels: &m.label_names,
        threshold: &m.threshold,
        results,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

fn json_bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `POST /v1/models/{name}/score`: JSON feature rows.
pub async fn score(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let served = model(&app, &name)?;
    let body = body.map_err(|e| ApiError::new(e.status(), "body", e.body_text()))?;
    let max_rows = app.limits.max_rows;
    let inline = body.len() <= INLINE_BODY_BYTES && !served.model.mlp.sparse_input;
    let model_name = name.clone();
    let (out, n) = compute(inline, move || {
        let x = rows::parse(&body, &served, max_rows)?;
        Ok::<_, ApiError>((scored(&model_name, &served, &x, &[]), x.rows()))
    })
    .await??;
    app.metrics.record_rows(&name, n);
    Ok(json_bytes(out))
}

/// `POST /v1/models/{name}/score/raw`: raw emails or files, featurized by the model's
/// stored featurizer exactly as `nonneg predict FILES` does.
pub async fn score_raw(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let served = model(&app, &name)?;
    if served.model.featurizer.is_none() {
        return Err(ApiError::bad("name", format!("model {name:?} has no featurizer: it scores feature rows at /v1/models/{name}/score")));
    }
    let samples = raw::samples(req, app.limits.max_rows).await?;
    let n = samples.len();
    let model_name = name.clone();
    let out = compute(false, move || {
        let Some(spec) = &served.model.featurizer else {
            return Vec::new();
        };
        let rows: Vec<_> = samples.iter().map(|s| spec.featurize(&s.bytes)).collect();
        let mut x = CsrMatrix::with_capacity(spec.n_features(), rows.len(), 0);
        rows.iter().for_each(|r| x.push_row(&r.indices, &r.values));
        let names: Vec<(String, Vec<String>)> = samples
            .into_iter()
            .zip(rows)
            .map(|(s, r)| (s.name, r.problems))
            .collect();
        scored(&model_name, &served, &Features::Sparse(x), &names)
    })
    .await?;
    app.metrics.record_rows(&name, n);
    Ok(json_bytes(out))
}

/// `GET /v1/models`: what each model is and whether it is certified.
pub async fn models(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let list: Vec<_> = app
        .registry
        .slots()
        .map(|(name, slot)| super::info::describe(name, &slot.path, &slot.current.load()))
        .collect();
    Json(json!({ "models": list }))
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while serving; 503 once shutdown has begun, so balancers stop sending.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
        let e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server", "shutting down");
        return e.into_response();
    }
    Json(json!({ "ready": true, "models": app.registry.slots().count() })).into_response()
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics.render(&app.registry);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `POST /v1/admin/reload`: re-reads every model file (bearer token when configured).
pub async fn reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = &app.admin_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authorization",
                "expected `Authorization: Bearer <admin token>`",
            ));
        }
    }
    let outcomes = app.registry.reload(&app.metrics).await;
    let status = if outcomes.iter().all(|o| o.ok) {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(json!({ "reloaded": outcomes }))).into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "path",
        "no such route (see GET /v1/models)",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        "this route does not take that method",
    )
}
