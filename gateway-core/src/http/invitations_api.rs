//! `/console/api/invitations` (any user invites; each sees their own, admins see all) and
//! `/console/api/settings/governance` (admins: registration mode, new-user balance, rewards).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiJson, ApiResult, Session, Shared, ok};
use crate::console::invitations::{
    SettingsBody, create_for, delete_invitation, link, update_governance,
};
use crate::money::nano_to_usd;
use crate::store::governance::{self, Governance};
use crate::store::invitations::{self, Invitation};

fn view(i: &Invitation, headers: &HeaderMap) -> Value {
    json!({
        "code": i.code,
        "link": link(headers, &i.code),
        "inviter_id": i.inviter_id,
        "max_uses": i.max_uses,
        "uses": i.uses,
        "expires_at": i.expires_at,
        "created_at": i.created_at,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InvitationBody {
    /// 0: unlimited; default 1.
    max_uses: Option<i64>,
    /// Unix seconds; -1 or absent: never.
    expires_at: Option<i64>,
}

pub async fn create(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> ApiResult {
    // The body is optional: `POST` with nothing creates a single-use code.
    let body: InvitationBody = if body.iter().all(u8::is_ascii_whitespace) {
        InvitationBody::default()
    } else {
        super::extract::parse_json(&body)?
    };
    let inv = create_for(&state, &session.user, body.max_uses, body.expires_at).await?;
    Ok(ok(view(&inv, &headers)))
}

pub async fn list(State(state): State<Shared>, session: Session, headers: HeaderMap) -> ApiResult {
    let owner = session.owner_filter();
    let list = state
        .store
        .run(move |c| invitations::list(c, owner.as_deref()))
        .await?;
    Ok(ok(list
        .iter()
        .map(|i| view(i, &headers))
        .collect::<Vec<_>>()))
}

pub async fn delete(
    State(state): State<Shared>,
    session: Session,
    Path(code): Path<String>,
) -> ApiResult {
    delete_invitation(&state, &session, &code).await?;
    Ok(ok(json!({"code": code})))
}

fn money_or_unlimited(nano: i64) -> Value {
    if nano < 0 {
        json!(-1)
    } else {
        json!(nano_to_usd(nano))
    }
}

pub fn settings_view(g: &Governance) -> Value {
    json!({
        "registration": g.registration.as_str(),
        "new_user_balance_usd": money_or_unlimited(g.new_user_balance_nano),
        "inviter_reward_usd": nano_to_usd(g.inviter_reward_nano),
        "invitee_reward_usd": nano_to_usd(g.invitee_reward_nano),
        "allow_unpriced_cloud": g.allow_unpriced_cloud,
        "user_invite_max_uses": g.user_invite_max_uses,
    })
}

pub async fn get_settings(State(state): State<Shared>, session: Session) -> ApiResult {
    session.require_admin()?;
    let g = state.store.run(|c| governance::load(c)).await?;
    Ok(ok(settings_view(&g)))
}

pub async fn put_settings(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult {
    let g = update_governance(&state, &session, body).await?;
    Ok(ok(settings_view(&g)))
}
