//! Request errors: a status and a JSON body naming the field at fault.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A refused request: `{"error": message, "field": field}` with a 4xx (or 503) status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// What was wrong, with the value when it helps.
    pub error: String,
    /// Where: `body`, `rows[3][7]`, `sparse[0].indices[2]`, `multipart`, `name`, ...
    pub field: String,
}

impl ApiError {
    pub fn new(status: StatusCode, field: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: field.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad(field: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, field, error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(&self)).into_response()
    }
}
