//! Extractors: JSON bodies with precise errors, and the logged-in session.

use crate::vocab::status;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{ApiError, Session, Shared};
use crate::auth::AuthError;
use crate::store::users::{self};

/// A JSON body; malformed JSON, wrong types and oversize bodies become clear `ApiError`s.
/// The content type is not checked, so `curl -d` works as in the seed guide.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(e.status(), "request body too large")
            } else {
                ApiError::bad_request(format!("cannot read request body: {}", e.body_text()))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parse JSON naming the offending field: `weight: invalid type: string "x", expected i64`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty: expected a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        } else if path == "." || path.is_empty() {
            ApiError::bad_request(format!("invalid request: {inner}"))
        } else {
            ApiError::bad_request(format!("invalid field '{path}': {inner}"))
        }
    })
}

/// The bearer credential of a request, if any (`Authorization: Bearer x` or `x-api-key`).
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl FromRequestParts<Shared> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("missing Authorization: Bearer <token> header: log in first")
        })?;
        Session::for_token(state, token).await
    }
}

/// The web console's session cookie: an HttpOnly, SameSite=Strict copy of a login token.
pub const SESSION_COOKIE: &str = "burncloud_session";

impl Session {
    /// The user a login token names, if it is still good: signed by this gateway, not
    /// expired, not older than the user's last password change, the user enabled.
    pub async fn for_token(state: &Shared, token: &str) -> Result<Session, ApiError> {
        if token.starts_with("sk-") {
            return Err(ApiError::unauthorized(
                "the console API needs a login token (from /api/auth/login), not an sk- key",
            ));
        }
        let claims = state.jwt.verify(token).map_err(|e| match e {
            AuthError::Expired => ApiError::unauthorized("token has expired: log in again"),
            _ => ApiError::unauthorized("invalid token"),
        })?;
        let user = state
            .store
            .run({
                let sub = claims.sub.clone();
                move |c| users::get(c, &sub)
            })
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid token: the user no longer exists"))?;
        if user.status != status::ENABLED {
            return Err(ApiError::forbidden("this account is disabled"));
        }
        if claims.iat < user.password_changed_at {
            return Err(ApiError::unauthorized(
                "this login token was issued before a password change: log in again",
            ));
        }
        Ok(Session { user })
    }

    /// The web console's session: the login token in the [`SESSION_COOKIE`] cookie. Only
    /// the web console reads it; the JSON API takes `Authorization` headers, never cookies.
    pub async fn from_cookie(
        state: &Shared,
        headers: &axum::http::HeaderMap,
    ) -> Result<Session, ApiError> {
        let token = cookie(headers, SESSION_COOKIE)
            .ok_or_else(|| ApiError::unauthorized("not logged in"))?;
        Session::for_token(state, &token).await
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}
