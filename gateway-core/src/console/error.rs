//! The console service's error: a status and a message in the user's words.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// A control-plane error: `{"success": false, "message": "..."}` with a fitting status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// `Retry-After` seconds, for 429s.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(json!({"success": false, "message": self.message})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        r
    }
}

impl From<crate::throttle::Throttled> for ApiError {
    fn from(t: crate::throttle::Throttled) -> Self {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, t.message);
        e.retry_after = Some(t.retry_after.as_secs_f64().ceil().max(1.0) as u64);
        e
    }
}

impl From<crate::throttle::HashError> for ApiError {
    fn from(e: crate::throttle::HashError) -> Self {
        match e {
            crate::throttle::HashError::Busy(t) => t.into(),
            crate::throttle::HashError::Failed => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "password hashing failed")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Forbidden(m) => ApiError::forbidden(m),
            e if e.is_disk_full() => {
                tracing::error!(error = %e, "disk full");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "disk full: the change was not saved",
                )
            }
            e => {
                tracing::error!(error = %e, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: the change was not saved (see the gateway log)",
                )
            }
        }
    }
}

impl From<crate::money::MoneyError> for ApiError {
    fn from(e: crate::money::MoneyError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}
