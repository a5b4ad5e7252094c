//! Data-plane errors in the OpenAI shape: `{"error": {"message", "type", "code"}}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to a `/v1` caller.
#[derive(Debug, Clone)]
pub struct OpenAiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (a local model still loading, a rate limit).
    pub retry_after: Option<u64>,
    /// A per-minute limit that refused the request: (`requests` or `tokens`, the limit),
    /// reported in OpenAI's `x-ratelimit-*` headers.
    pub rate_limit: Option<(&'static str, i64)>,
}

impl OpenAiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OpenAiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            rate_limit: None,
        }
    }

    /// A per-minute limit of `kind` (`requests`/`tokens`) was reached: 429 with
    /// `Retry-After` until the next minute and OpenAI's `x-ratelimit-*` headers.
    pub fn minute_limit(kind: &'static str, limit: i64, message: impl Into<String>) -> Self {
        let mut e = Self::rate_limited(message).with_retry_after(super::seconds_to_next_minute());
        e.rate_limit = Some((kind, limit));
        e
    }

    /// The same error with a `Retry-After: secs` header.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Add the headers this error carries to a rendered response.
    pub fn add_headers(&self, resp: &mut Response) {
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        if let Some((kind, limit)) = self.rate_limit {
            let h = resp.headers_mut();
            let name = |what: &str| {
                axum::http::HeaderName::from_bytes(format!("x-ratelimit-{what}-{kind}").as_bytes())
            };
            if let (Ok(l), Ok(r), Ok(t)) = (name("limit"), name("remaining"), name("reset")) {
                h.insert(l, HeaderValue::from(limit));
                h.insert(r, HeaderValue::from(0));
                if let Ok(v) =
                    HeaderValue::from_str(&format!("{}s", self.retry_after.unwrap_or(60)))
                {
                    h.insert(t, v);
                }
            }
        }
    }

    /// The contract's `type` for this status.
    pub fn error_type(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 401 | 413 => "invalid_request_error",
            402 => "insufficient_quota_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            _ => "server_error",
        }
    }

    pub fn invalid_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", m)
    }
    pub fn invalid_token(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", m)
    }
    pub fn token_expired() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "Token has expired",
        )
    }
    pub fn insufficient_quota() -> Self {
        Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_quota",
            "Insufficient quota",
        )
    }
    pub fn permission_denied(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_denied", m)
    }
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("The model '{model}' does not exist or no channel serves it"),
        )
    }
    pub fn rate_limited(m: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", m)
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("request body larger than {limit} bytes"),
        )
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.error_type(), "code": self.code}});
        let mut resp = (self.status, axum::Json(body)).into_response();
        self.add_headers(&mut resp);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
