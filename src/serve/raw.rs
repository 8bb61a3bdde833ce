//! Raw samples in a request: the body itself (an email, a file), or each part of a
//! multipart/form-data body.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};

/// One raw sample: its name (the part's file or field name, or `body`) and bytes.
pub struct RawSample {
    pub name: String,
    pub bytes: Bytes,
}

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
}

/// The samples of a request, at most `max_samples`; an empty sample is refused.
pub async fn samples(req: Request, max_samples: usize) -> Result<Vec<RawSample>, ApiError> {
    if !is_multipart(&req) {
        let bytes = Bytes::from_request(req, &())
            .await
            .map_err(|e| ApiError::new(e.status(), "body", e.body_text()))?;
        if bytes.is_empty() {
            return Err(ApiError::bad(
                "body",
                "empty: send the raw email or file as the body",
            ));
        }
        return Ok(vec![RawSample {
            name: "body".into(),
            bytes,
        }]);
    }
    let mut parts = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::new(e.status(), "multipart", e.body_text()))?;
    let mut out = Vec::new();
    loop {
        let field = match parts.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, out.len())),
        };
        if out.len() == max_samples {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "multipart",
                format!("more than {max_samples} parts, at most {max_samples} per request"),
            ));
        }
        let name = field
            .file_name()
            .or(field.name())
            .map_or_else(|| format!("part{}", out.len()), str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| multipart_error(e, out.len()))?;
        out.push(RawSample { name, bytes });
    }
    if out.is_empty() {
        return Err(ApiError::bad(
            "multipart",
            "no parts: send one part per sample",
        ));
    }
    Ok(out)
}

fn multipart_error(e: axum::extract::multipart::MultipartError, part: usize) -> ApiError {
    ApiError::new(e.status(), format!("multipart[{part}]"), e.body_text())
}
