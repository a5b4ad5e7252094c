//! Register, login, who am I.

use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::auth;
use crate::store::{now_secs, users};

#[derive(Deserialize)]
pub struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    /// An invitation code (required when registration is invite-only).
    #[serde(default)]
    invite_code: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: String,
}

fn user_payload(state: &Shared, user: &users::User) -> serde_json::Value {
    json!({
        "id": user.id,
        "username": user.username,
        "roles": [user.role.as_str()],
        "token": state.jwt.issue(&user.id, &user.username, user.role, now_secs()),
    })
}

fn check_username(name: &str) -> Result<(), ApiError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_alphanumeric() || "_-.@".contains(c));
    if name.is_empty() || name.chars().count() > 64 || !ok_chars {
        return Err(ApiError::bad_request(
            "username must be 1-64 characters of letters, digits, '_', '-', '.', '@'",
        ));
    }
    Ok(())
}

pub async fn register(
    State(state): State<Shared>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult {
    let username = body.username.trim().to_string();
    check_username(&username)?;
    if let Some(why) = auth::password_weakness(&body.password, &username) {
        return Err(ApiError::bad_request(why));
    }
    let email = body
        .email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(ApiError::bad_request("email is not an email address"));
    }
    let password = body.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let user = state
        .store
        .run(move |c| {
            users::register(
                c,
                &username,
                email.as_deref(),
                &hash,
                body.invite_code.as_deref(),
            )
        })
        .await?;
    tracing::info!(user = %user.username, role = user.role.as_str(), "user registered");
    state.config_changed().await;
    Ok(ok(user_payload(&state, &user)))
}

pub async fn login(State(state): State<Shared>, ApiJson(body): ApiJson<LoginBody>) -> ApiResult {
    let username = body.username.trim().to_string();
    let found = state
        .store
        .run(move |c| users::find_with_hash(c, &username))
        .await?;
    let password = body.password;
    let verified = tokio::task::spawn_blocking(move || match found {
        Some((user, hash)) if auth::verify_password(&password, &hash) => Some(user),
        Some(_) => None,
        None => {
            // Spend the same time as a real check so names cannot be probed by timing.
            let _ = auth::verify_password(&password, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
            None
        }
    })
    .await
    .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let user = verified.ok_or_else(|| ApiError::unauthorized("wrong username or password"))?;
    if user.status != 1 {
        return Err(ApiError::forbidden("this account is disabled"));
    }
    Ok(ok(user_payload(&state, &user)))
}

pub async fn me(State(state): State<Shared>, session: Session) -> ApiResult {
    Ok(ok(super::users_api::view(&state, &session.user)))
}
