//! Users: admins list and change them (`/console/api/users`); everyone reads and changes
//! their own account (`/api/user/self`) and redeems codes (`/console/api/user/redeem`).

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::auth;
use crate::console::users::{
    NewUserBody, UserBody, balance_fields, change_user, create_user, redeem_for,
};
use crate::money::nano_to_usd;
use crate::store::users::{self, User};

/// The client-facing form of a user (never the password hash).
pub fn view(state: &Shared, u: &User) -> Value {
    let mut v = json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "role": u.role.as_str(),
        "roles": [u.role.as_str()],
        "group": u.group,
        "status": u.status,
        "invited_by": u.invited_by,
        "created_at": u.created_at,
    });
    if let (Value::Object(m), Value::Object(b)) = (&mut v, balance_fields(state, u)) {
        m.extend(b);
    }
    v
}

pub async fn list(State(state): State<Shared>, session: Session) -> ApiResult {
    session.require_admin()?;
    let list = state.store.run(|c| users::list(c)).await?;
    Ok(ok(list.iter().map(|u| view(&state, u)).collect::<Vec<_>>()))
}

pub async fn get_one(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult {
    if id != session.user.id {
        session.require_admin()?;
    }
    let u = state.store.run(move |c| users::find(c, &id)).await?;
    Ok(ok(view(&state, &u)))
}

pub async fn create(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<NewUserBody>,
) -> ApiResult {
    let u = create_user(&state, &session, body).await?;
    Ok(ok(view(&state, &u)))
}

pub async fn update(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult {
    let u = change_user(&state, &session, &id, body).await?;
    Ok(ok(view(&state, &u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfBody {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// Change one's own password: the current one is required; older login tokens stop
/// working and a fresh token is returned.
pub async fn update_self(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<SelfBody>,
) -> ApiResult {
    let (Some(current), Some(new)) = (body.current_password, body.new_password) else {
        return Err(ApiError::bad_request(
            "missing field(s): current_password and new_password",
        ));
    };
    if let Some(why) = auth::password_weakness(&new, &session.user.username) {
        return Err(ApiError::bad_request(why));
    }
    let id = session.user.id.clone();
    let stored = state
        .store
        .run(move |c| users::password_hash(c, &id))
        .await?
        .unwrap_or_default();
    let hashed = tokio::task::spawn_blocking(move || {
        if !auth::verify_password(&current, &stored) {
            return Ok(None);
        }
        auth::hash_password(&new).map(Some)
    })
    .await
    .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let Some(hash) = hashed else {
        return Err(ApiError::bad_request("current_password is wrong"));
    };
    let id = session.user.id.clone();
    let changed_at = state
        .store
        .run(move |c| users::set_password(c, &id, &hash))
        .await?;
    state.config_changed().await;
    let u = session.user;
    Ok(ok(json!({
        "id": u.id,
        "username": u.username,
        "token": state.jwt.issue(&u.id, &u.username, u.role, changed_at),
    })))
}

#[derive(Deserialize)]
pub struct RedeemBody {
    code: String,
}

/// Redeem a code for the caller: credited once, whoever else tries the same code.
pub async fn redeem(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<RedeemBody>,
) -> ApiResult {
    if body.code.trim().is_empty() {
        return Err(ApiError::bad_request("missing field: code"));
    }
    let (amount, user) = redeem_for(&state, &session.user.id, body.code).await?;
    let mut v = json!({"credited_usd": nano_to_usd(amount)});
    if let (Value::Object(m), Value::Object(b)) = (&mut v, balance_fields(&state, &user)) {
        m.extend(b);
    }
    Ok(ok(v))
}
