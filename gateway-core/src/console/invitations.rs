//! Invitations and the governance settings (registration mode, balances, rewards).

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{ApiError, Session};
use crate::money::usd_from_f64;
use crate::state::Shared;
use crate::store::governance::{self, Governance, GovernanceChange, Registration};
use crate::store::invitations::{self, Invitation};

/// Where the invitation link points: this gateway's registration page.
pub fn link(headers: &HeaderMap, code: &str) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:3000");
    format!("http://{host}/register?invite_code={code}")
}

/// Create an invitation from `user` (single use unless they say otherwise): refused while
/// registration is closed unless they are an admin, and a user's code never has more uses
/// than the admin's cap. The JSON API and the web console both create through this.
pub async fn create_for(
    state: &Shared,
    user: &crate::store::users::User,
    max_uses: Option<i64>,
    expires_at: Option<i64>,
) -> Result<Invitation, ApiError> {
    let admin = user.role == crate::store::users::Role::Admin;
    let gov = state.store.run(|c| governance::load(c)).await?;
    if gov.registration == Registration::Closed && !admin {
        return Err(ApiError::forbidden(
            "registration is closed: invitations cannot be used",
        ));
    }
    let max_uses = max_uses.unwrap_or(1);
    // A user's code cannot open the door wide: at most the admin's cap, never unlimited.
    if !admin && !(1..=gov.user_invite_max_uses).contains(&max_uses) {
        return Err(ApiError::bad_request(format!(
            "max_uses must be between 1 and {} for your invitations",
            gov.user_invite_max_uses
        )));
    }
    let id = user.id.clone();
    Ok(state
        .store
        .run(move |c| invitations::create(c, &id, max_uses, expires_at.unwrap_or(-1)))
        .await?)
}

/// Delete an invitation as `by`: an admin any, a user only their own. The JSON API and
/// the consoles both delete through this.
pub async fn delete_invitation(state: &Shared, by: &Session, code: &str) -> Result<(), ApiError> {
    let owner = by.owner_filter();
    let code = code.to_string();
    state
        .store
        .run(move |c| invitations::delete(c, &code, owner.as_deref()))
        .await?;
    Ok(())
}

/// A change to the governance settings (`PUT /console/api/settings/governance`); absent
/// fields stay.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// `open`, `invite_only` or `closed`.
    pub registration: Option<String>,
    /// -1: unlimited.
    pub new_user_balance_usd: Option<f64>,
    pub inviter_reward_usd: Option<f64>,
    pub invitee_reward_usd: Option<f64>,
    pub allow_unpriced_cloud: Option<bool>,
    pub user_invite_max_uses: Option<i64>,
}

/// Change the governance settings as the admin `by`. The JSON API and the consoles both
/// save them through this.
pub async fn update_governance(
    state: &Shared,
    by: &Session,
    body: SettingsBody,
) -> Result<Governance, ApiError> {
    by.require_admin()?;
    let reward = |name: &str, v: Option<f64>| -> Result<Option<i64>, ApiError> {
        v.map(|v| usd_from_f64(v).map_err(|e| ApiError::bad_request(format!("{name}: {e}"))))
            .transpose()
    };
    let change = GovernanceChange {
        registration: body
            .registration
            .as_deref()
            .map(Registration::parse)
            .transpose()?,
        new_user_balance_nano: match body.new_user_balance_usd {
            None => None,
            Some(-1.0) => Some(-1),
            v => reward("new_user_balance_usd", v)?,
        },
        inviter_reward_nano: reward("inviter_reward_usd", body.inviter_reward_usd)?,
        invitee_reward_nano: reward("invitee_reward_usd", body.invitee_reward_usd)?,
        allow_unpriced_cloud: body.allow_unpriced_cloud,
        user_invite_max_uses: body.user_invite_max_uses,
    };
    let g = state
        .store
        .run(move |c| governance::update(c, change))
        .await?;
    // The data plane reads `allow_unpriced_cloud` from the snapshot.
    state.config_changed().await;
    tracing::info!(
        registration = g.registration.as_str(),
        by = %by.user.username,
        "governance settings changed"
    );
    Ok(g)
}
