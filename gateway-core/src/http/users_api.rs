//! Users: admins list and change them (`/console/api/users`); everyone reads and changes
//! their own account (`/api/user/self`) and redeems codes (`/console/api/user/redeem`).

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::auth;
use crate::money::{nano_to_usd, signed_usd_from_f64, usd_from_f64};
use crate::store::redemptions;
use crate::store::users::{self, BalanceChange, Role, User, UserChange};

/// Balance of a user in USD: -1 when unlimited; spend not yet stored counts already.
pub fn balance_fields(state: &Shared, u: &User) -> Value {
    let used = state
        .relay
        .ledger
        .peek_user_used(&u.id)
        .map_or(u.used_quota_nano, |m| m.max(u.used_quota_nano));
    let balance = if u.quota_nano < 0 {
        json!(-1)
    } else {
        json!(nano_to_usd(u.quota_nano - used))
    };
    json!({"balance_usd": balance, "used_usd": nano_to_usd(used)})
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    role: Option<String>,
    status: Option<i64>,
    group: Option<String>,
    /// Set what is left to spend (USD); -1 unlimited.
    balance_usd: Option<f64>,
    /// Add (negative: take away) this much (USD).
    balance_delta_usd: Option<f64>,
}

pub async fn update(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult {
    session.require_admin()?;
    let balance = match (body.balance_usd, body.balance_delta_usd) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give balance_usd or balance_delta_usd, not both",
            ));
        }
        (Some(-1.0), None) => Some(BalanceChange::Unlimited),
        (Some(b), None) if b < 0.0 => {
            return Err(ApiError::bad_request(
                "balance_usd must be -1 (unlimited) or 0 and more",
            ));
        }
        (Some(b), None) => Some(BalanceChange::Set(usd_from_f64(b)?)),
        (None, Some(d)) => Some(BalanceChange::Adjust(signed_usd_from_f64(d)?)),
        (None, None) => None,
    };
    let change = UserChange {
        role: body.role.as_deref().map(Role::from_name).transpose()?,
        status: body.status,
        group: body.group,
        balance,
    };
    // Setting a balance counts what was spent: let the writer store it first.
    if matches!(change.balance, Some(BalanceChange::Set(_))) {
        state.relay.writer.flush().await;
    }
    let u = state
        .store
        .run(move |c| {
            let id = users::find(c, &id)?.id;
            users::update(c, &id, change)
        })
        .await?;
    tracing::info!(user = %u.username, by = %session.user.username, "user changed");
    state.config_changed().await;
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

/// Redeem `code` for a user: the amount credited (nano-USD) and the user after it. The JSON
/// API and the web console both redeem through this.
pub async fn redeem_for(
    state: &Shared,
    user_id: &str,
    code: String,
) -> Result<(i64, User), ApiError> {
    let id = user_id.to_string();
    let (amount, user) = state
        .store
        .run(move |c| {
            let amount = redemptions::redeem(c, &id, code.trim())?;
            Ok((amount, users::find(c, &id)?))
        })
        .await?;
    tracing::info!(user = %user.username, amount = amount, "redemption code redeemed");
    state.config_changed().await;
    Ok((amount, user))
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
