//! Accounts: made and changed by admins, balances read with spend not yet stored,
//! redemption codes redeemed.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Session, hash_password};
use crate::auth;
use crate::money::{nano_to_usd, signed_usd_from_f64, usd_from_f64};
use crate::state::Shared;
use crate::store::redemptions;
use crate::store::users::{self, BalanceChange, Role, User, UserChange};

/// What a user has spent (nano-dollars), counting spend the writer has not stored yet.
pub fn used_nano(state: &Shared, u: &User) -> i64 {
    state
        .relay
        .ledger
        .peek_user_used(&u.id)
        .map_or(u.used_quota_nano, |m| m.max(u.used_quota_nano))
}

/// Balance of a user in USD: -1 when unlimited; spend not yet stored counts already.
pub fn balance_fields(state: &Shared, u: &User) -> Value {
    let used = used_nano(state, u);
    let balance = if u.quota_nano < 0 {
        json!(-1)
    } else {
        json!(nano_to_usd(u.quota_nano - used))
    };
    json!({"balance_usd": balance, "used_usd": nano_to_usd(used)})
}

/// A username's rule (registration and admin-made accounts alike).
pub(crate) fn check_username(name: &str) -> Result<(), ApiError> {
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

/// An email as given (trimmed; empty is none), or why it is refused.
pub(crate) fn check_email(email: Option<String>) -> Result<Option<String>, ApiError> {
    let email = email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(ApiError::bad_request("email is not an email address"));
    }
    Ok(email)
}

/// A new account made by an admin (`POST /console/api/users`).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
    /// `admin` or `user` (default).
    #[serde(default)]
    pub role: Option<String>,
    /// Default `default`.
    #[serde(default)]
    pub group: Option<String>,
    /// What the account may spend (USD); -1 unlimited; absent: the new-user balance.
    #[serde(default)]
    pub balance_usd: Option<f64>,
}

/// Make an account as the admin `by`: the name, password and email rules of registration,
/// any registration mode, the role, group and balance chosen. The JSON API and the
/// consoles both create accounts through this.
pub async fn create_user(
    state: &Shared,
    by: &Session,
    body: NewUserBody,
) -> Result<User, ApiError> {
    by.require_admin()?;
    let username = body.username.trim().to_string();
    check_username(&username)?;
    if let Some(why) = auth::password_weakness(&body.password, &username) {
        return Err(ApiError::bad_request(why));
    }
    let email = check_email(body.email)?;
    let role = body
        .role
        .as_deref()
        .map(Role::from_name)
        .transpose()?
        .unwrap_or(Role::User);
    let group = body
        .group
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| "default".into());
    let balance = body.balance_usd.map(balance_usd).transpose()?;
    let password = body.password;
    let hash = hash_password(state, password).await?;
    let u = state
        .store
        .run(move |c| {
            users::create_by_admin(
                c,
                users::NewAccount {
                    username: &username,
                    email: email.as_deref(),
                    password_hash: &hash,
                    role,
                    group: &group,
                    balance_nano: balance,
                },
            )
        })
        .await?;
    tracing::info!(user = %u.username, role = u.role.as_str(), by = %by.user.username, "user created");
    state.config_changed().await;
    Ok(u)
}

/// `balance_usd`: -1 (unlimited) or 0 and more.
fn balance_usd(b: f64) -> Result<i64, ApiError> {
    if b == -1.0 {
        Ok(-1)
    } else if b < 0.0 {
        Err(ApiError::bad_request(
            "balance_usd must be -1 (unlimited) or 0 and more",
        ))
    } else {
        Ok(usd_from_f64(b)?)
    }
}

/// An admin's change to a user (`PUT /console/api/users/{id}`); absent fields stay.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub role: Option<String>,
    pub status: Option<i64>,
    pub group: Option<String>,
    /// Set what is left to spend (USD); -1 unlimited.
    pub balance_usd: Option<f64>,
    /// Add (negative: take away) this much (USD).
    pub balance_delta_usd: Option<f64>,
}

/// Change the user `id` (or name) as the admin `by`. The last enabled admin cannot be
/// demoted or disabled; the group must exist; a balance may not drop below 0. The JSON
/// API and the consoles both change users through this.
pub async fn change_user(
    state: &Shared,
    by: &Session,
    id: &str,
    body: UserBody,
) -> Result<User, ApiError> {
    by.require_admin()?;
    let balance = match (body.balance_usd, body.balance_delta_usd) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give balance_usd or balance_delta_usd, not both",
            ));
        }
        (Some(b), None) => Some(match balance_usd(b)? {
            -1 => BalanceChange::Unlimited,
            n => BalanceChange::Set(n),
        }),
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
    let id = id.to_string();
    let u = state
        .store
        .run(move |c| {
            let id = users::find(c, &id)?.id;
            users::update(c, &id, change)
        })
        .await?;
    tracing::info!(user = %u.username, by = %by.user.username, "user changed");
    state.config_changed().await;
    Ok(u)
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
