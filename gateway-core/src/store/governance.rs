//! Governance settings (one JSON value under the `governance` settings key): who may
//! register, what a new user may spend, what invitations reward.

use crate::store::db::Connection;
use serde::{Deserialize, Serialize};

use super::{StoreError, StoreResult, settings};

/// The settings key.
pub const GOVERNANCE_KEY: &str = "governance";

/// Who may register (the very first account always may: it becomes the admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    Open,
    InviteOnly,
    /// The default on new installs: accounts are made by an admin or by invitation.
    #[default]
    Closed,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Open => "open",
            Registration::InviteOnly => "invite_only",
            Registration::Closed => "closed",
        }
    }

    /// `open`, `invite_only` (or `invite-only`), `closed`.
    pub fn parse(s: &str) -> StoreResult<Registration> {
        match s.trim() {
            "open" => Ok(Registration::Open),
            "invite_only" | "invite-only" => Ok(Registration::InviteOnly),
            "closed" => Ok(Registration::Closed),
            other => Err(StoreError::Invalid(format!(
                "registration must be open, invite_only or closed, not '{other}'"
            ))),
        }
    }
}

/// Governance settings, money in nano-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Governance {
    pub registration: Registration,
    /// Balance of a newly registered user; -1 unlimited.
    pub new_user_balance_nano: i64,
    /// Credited to the inviter per registration with their code.
    pub inviter_reward_nano: i64,
    /// Credited to the invitee on top of the new-user balance.
    pub invitee_reward_nano: i64,
    /// Non-admins may use cloud models that have no price (billed $0). Off by default:
    /// they get 402 "ask an admin to set a price".
    pub allow_unpriced_cloud: bool,
    /// How many registrations one non-admin's invitation code may admit.
    pub user_invite_max_uses: i64,
}

impl Default for Governance {
    fn default() -> Self {
        Governance {
            registration: Registration::Closed,
            new_user_balance_nano: 0,
            inviter_reward_nano: 0,
            invitee_reward_nano: 0,
            allow_unpriced_cloud: false,
            user_invite_max_uses: 5,
        }
    }
}

/// The saved settings, or the defaults.
pub fn load(conn: &Connection) -> StoreResult<Governance> {
    match settings::get(conn, GOVERNANCE_KEY)? {
        None => Ok(Governance::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            StoreError::Invalid(format!("the saved governance settings are invalid: {e}"))
        }),
    }
}

/// A change to the settings; `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default)]
pub struct GovernanceChange {
    pub registration: Option<Registration>,
    pub new_user_balance_nano: Option<i64>,
    pub inviter_reward_nano: Option<i64>,
    pub invitee_reward_nano: Option<i64>,
    pub allow_unpriced_cloud: Option<bool>,
    pub user_invite_max_uses: Option<i64>,
}

/// Apply a change and save the result.
pub fn update(conn: &mut Connection, change: GovernanceChange) -> StoreResult<Governance> {
    let tx = conn.transaction_with_behavior(crate::store::db::TransactionBehavior::Immediate)?;
    let mut g = load(&tx)?;
    if let Some(r) = change.registration {
        g.registration = r;
    }
    if let Some(b) = change.new_user_balance_nano {
        if b < -1 {
            return Err(StoreError::Invalid(
                "new_user_balance must be -1 (unlimited) or 0 and more".into(),
            ));
        }
        g.new_user_balance_nano = b;
    }
    for (name, v, slot) in [
        (
            "inviter_reward",
            change.inviter_reward_nano,
            &mut g.inviter_reward_nano,
        ),
        (
            "invitee_reward",
            change.invitee_reward_nano,
            &mut g.invitee_reward_nano,
        ),
    ] {
        if let Some(v) = v {
            if v < 0 {
                return Err(StoreError::Invalid(format!("{name} must be 0 or more")));
            }
            *slot = v;
        }
    }
    if let Some(v) = change.allow_unpriced_cloud {
        g.allow_unpriced_cloud = v;
    }
    if let Some(n) = change.user_invite_max_uses {
        if n < 1 {
            return Err(StoreError::Invalid(
                "user_invite_max_uses must be 1 or more".into(),
            ));
        }
        g.user_invite_max_uses = n;
    }
    let text = serde_json::to_string(&g).map_err(|e| StoreError::Invalid(e.to_string()))?;
    settings::set(&tx, GOVERNANCE_KEY, &text)?;
    tx.commit()?;
    Ok(g)
}
