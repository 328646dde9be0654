//! API errors, rendered as the sr.ht envelope `{"errors":[{"field","reason"}]}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use builds_domain::api::{ApiError as ErrorItem, ErrorEnvelope};
use builds_domain::ports::StoreError;

/// An error response: a status and one or more reasons.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorItem>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        ApiError {
            status,
            errors: vec![ErrorItem {
                field: None,
                reason: reason.into(),
            }],
        }
    }

    /// A 400 about one field of the request.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            errors: vec![ErrorItem {
                field: Some(field.into()),
                reason: reason.into(),
            }],
        }
    }

    /// A 400 listing several problems.
    pub fn fields(errors: Vec<ErrorItem>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            errors,
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, reason)
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "404 not found")
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorEnvelope {
                errors: self.errors,
            }),
        )
            .into_response()
    }
}

/// The envelope for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// The envelope for a known path asked with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed")
}
