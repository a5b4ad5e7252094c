//! Register, login, who am I.

use crate::vocab::status;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::extract::SESSION_COOKIE;
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
    /// The one-time setup token (needed for the first account unless it is made from
    /// this machine); also accepted as the `X-Setup-Token` header.
    #[serde(default)]
    setup_token: Option<String>,
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

/// Whether a request comes from this machine itself: a loopback peer that is not a
/// reverse proxy relaying someone else (no forwarding headers).
fn from_this_machine(peer: SocketAddr, headers: &HeaderMap) -> bool {
    peer.ip().is_loopback()
        && !["forwarded", "x-forwarded-for", "x-real-ip"]
            .iter()
            .any(|h| headers.contains_key(*h))
}

pub async fn register(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult {
    // This machine's own registrations (the owner, scripts) are not counted.
    let local = from_this_machine(peer, &headers);
    if !local {
        state.auth_throttle.check_register(peer.ip())?;
    }
    let username = body.username.trim().to_string();
    crate::console::users::check_username(&username)?;
    if let Some(why) = auth::password_weakness(&body.password, &username) {
        return Err(ApiError::bad_request(why));
    }
    let email = crate::console::users::check_email(body.email)?;
    let offered = body.setup_token.clone().or_else(|| {
        headers
            .get("x-setup-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let may_bootstrap = local || state.setup_token_matches(offered.as_deref());
    if !local {
        state.auth_throttle.registered(peer.ip());
    }
    let password = body.password;
    let hash = crate::console::hash_password(&state, password).await?;
    let user = state
        .store
        .run(move |c| {
            users::register_as(
                c,
                &username,
                email.as_deref(),
                &hash,
                body.invite_code.as_deref(),
                may_bootstrap,
            )
        })
        .await?;
    tracing::info!(user = %user.username, role = user.role.as_str(), "user registered");
    if user.role == users::Role::Admin {
        state.clear_setup_token();
    }
    state.config_changed().await;
    Ok(ok(user_payload(&state, &user)))
}

pub async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult {
    let user = verify_login(&state, peer, body).await?;
    Ok(ok(user_payload(&state, &user)))
}

/// `POST /console/api/session`: log in for the web console. Same checks and throttle as
/// `/api/auth/login`; the login token goes into an HttpOnly, SameSite=Strict cookie (page
/// scripts cannot read it, other sites' requests do not carry it) and is not in the body.
pub async fn session_login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let user = verify_login(&state, peer, body).await?;
    let token = state
        .jwt
        .issue(&user.id, &user.username, user.role, now_secs());
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        auth::JWT_TTL_SECS
    );
    let body = json!({"id": user.id, "username": user.username, "roles": [user.role.as_str()]});
    Ok(([(header::SET_COOKIE, cookie)], ok(body)).into_response())
}

/// `DELETE /console/api/session`: log out of the web console (the cookie is cleared).
pub async fn session_logout() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], ok(json!({}))).into_response()
}

/// Check a name and password (throttled, constant time for unknown names).
async fn verify_login(
    state: &Shared,
    peer: SocketAddr,
    body: LoginBody,
) -> Result<users::User, ApiError> {
    let username = body.username.trim().to_string();
    state.auth_throttle.check_login(peer.ip(), &username)?;
    let name = username.clone();
    let found = state
        .store
        .run(move |c| users::find_with_hash(c, &name))
        .await?;
    let password = body.password;
    let verified = state
        .auth_throttle
        .hash(move |mem| match found {
            Some((user, hash)) if auth::verify_password_with(&password, &hash, mem) => Some(user),
            Some(_) => None,
            None => {
                // Spend the same time as a real check so names cannot be probed by timing.
                let _ = auth::verify_password_with(&password, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", mem);
                None
            }
        })
        .await?;
    let Some(user) = verified else {
        state.auth_throttle.login_failed(peer.ip(), &username);
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    state.auth_throttle.login_succeeded(&username);
    if user.status != status::ENABLED {
        return Err(ApiError::forbidden("this account is disabled"));
    }
    Ok(user)
}

pub async fn me(State(state): State<Shared>, session: Session) -> ApiResult {
    Ok(ok(super::users_api::view(&state, &session.user)))
}
