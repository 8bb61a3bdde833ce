//! One error type for the library. Every message names where the problem is:
//! the file, and for parse errors the line and field.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value in an input file that cannot be used.
    #[error("{path}:{line}: field {field}: {msg}")]
    Parse {
        path: String,
        line: usize,
        field: String,
        msg: String,
    },
    /// An I/O failure on a named file (the message includes the cause, so it is not also
    /// chained as a source: `{:#}` would print it twice).
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    /// A file that is not what it claims to be (corrupt, truncated, foreign).
    #[error("{path}: {msg}")]
    Format { path: String, msg: String },
    /// Data that does not fit the model (feature count or names differ).
    #[error("data does not match the model: {0}")]
    Mismatch(String),
    /// A bad option or configuration.
    #[error("{0}")]
    Invalid(String),
    /// Stopped on request (a stop flag was set) before finishing.
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn parse(
        path: impl AsRef<Path>,
        line: usize,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Error::Parse {
            path: path.as_ref().display().to_string(),
            line,
            field: field.into(),
            msg: msg.into(),
        }
    }
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            cause: source,
        }
    }
    pub fn format(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().display().to_string(),
            msg: msg.into(),
        }
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}
