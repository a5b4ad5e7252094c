//! Users: the first one registered becomes admin (with unlimited balance). Registration
//! follows the governance settings (open / invite-only / closed, new-user balance, invite
//! rewards); admins change roles, status, groups and balances.

use crate::store::db::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use crate::vocab::status;
use serde::Serialize;

use super::governance::{self, Registration};
use super::{StoreError, StoreResult, groups, invitations, now_secs};

/// Roles a user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
    /// `admin` or `user`; anything else is refused.
    pub fn from_name(s: &str) -> StoreResult<Role> {
        match s.trim() {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(StoreError::Invalid(format!(
                "role must be admin or user, not '{other}'"
            ))),
        }
    }
    fn parse(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// A user row (without the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub role: Role,
    pub group: String,
    pub status: i64,
    /// Credit granted, nano-dollars; -1 unlimited.
    pub quota_nano: i64,
    /// Spent so far (as far as the usage writer has stored it).
    pub used_quota_nano: i64,
    pub created_at: i64,
    pub invited_by: Option<String>,
    /// Login tokens issued before this (unix seconds) are refused.
    pub password_changed_at: i64,
}

impl User {
    /// What is left to spend; None: unlimited.
    pub fn balance_nano(&self) -> Option<i64> {
        (self.quota_nano >= 0).then(|| self.quota_nano - self.used_quota_nano)
    }
}

const COLS: &str = "id, username, email, role, \"group\", status, quota_nano, created_at, used_quota_nano, invited_by, password_changed_at";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        role: Role::parse(&r.get::<_, String>(3)?),
        group: r.get(4)?,
        status: r.get(5)?,
        quota_nano: r.get(6)?,
        created_at: r.get(7)?,
        used_quota_nano: r.get(8)?,
        invited_by: r.get(9)?,
        password_changed_at: r.get(10)?,
    })
}

/// Create a user as registration does, without an invitation (see [`register`]).
pub fn create(
    conn: &mut Connection,
    username: &str,
    email: Option<&str>,
    password_hash: &str,
) -> StoreResult<User> {
    register_as(conn, username, email, password_hash, None, true)
}

/// Register as [`register_as`] does for a caller who may create the first admin.
pub fn register(
    conn: &mut Connection,
    username: &str,
    email: Option<&str>,
    password_hash: &str,
    invite_code: Option<&str>,
) -> StoreResult<User> {
    register_as(conn, username, email, password_hash, invite_code, true)
}

/// Register a user in one transaction, following the governance settings: the first user
/// of the database is admin with unlimited balance and needs no invitation; later ones are
/// `user`s with the configured new-user balance, admitted by the registration mode, and an
/// invitation code (checked and used up here) credits its rewards to both sides.
///
/// With no user yet, the account becomes the admin only when `may_bootstrap` (the caller
/// is on this machine or holds the setup token); otherwise it is refused.
pub fn register_as(
    conn: &mut Connection,
    username: &str,
    email: Option<&str>,
    password_hash: &str,
    invite_code: Option<&str>,
    may_bootstrap: bool,
) -> StoreResult<User> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE username = ?1)",
        [username],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "username '{username}' is already taken"
        )));
    }
    let count: i64 = tx.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
    if count == 0 && !may_bootstrap {
        return Err(StoreError::Forbidden(
            "no admin account exists yet: create it from the machine BurnCloud runs on, or send the one-time setup token that `burncloud router` printed (also in <data dir>/setup-token) as \"setup_token\"".into(),
        ));
    }
    let gov = governance::load(&tx)?;
    let invite_code = invite_code.map(str::trim).filter(|c| !c.is_empty());
    let (role, mut quota) = if count == 0 {
        (Role::Admin, -1)
    } else {
        (Role::User, gov.new_user_balance_nano)
    };
    let mut invited_by = None;
    if count > 0 {
        match (gov.registration, invite_code) {
            (Registration::Closed, _) => {
                return Err(StoreError::Forbidden(
                    "registration is closed: ask an admin for an account".into(),
                ));
            }
            (Registration::InviteOnly, None) => {
                return Err(StoreError::Forbidden(
                    "registration needs an invitation: send invite_code".into(),
                ));
            }
            _ => {}
        }
    }
    if let Some(code) = invite_code {
        let inviter = invitations::use_code(&tx, code)?;
        if quota >= 0 {
            quota += gov.invitee_reward_nano;
        }
        if gov.inviter_reward_nano > 0 {
            tx.execute(
                "UPDATE users SET quota_nano = quota_nano + ?1 WHERE id = ?2 AND quota_nano >= 0 AND status = 1",
                params![gov.inviter_reward_nano, inviter],
            )?;
        }
        invited_by = Some(inviter);
    }
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO users (id, username, email, password_hash, role, quota_nano, invited_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, username, email, password_hash, role.as_str(), quota, invited_by, now_secs()],
    )?;
    let user = tx.query_row(
        &format!("SELECT {COLS} FROM users WHERE id = ?1"),
        [&id],
        from_row,
    )?;
    tx.commit()?;
    Ok(user)
}

/// An account an admin makes (see [`create_by_admin`]).
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: Role,
    pub group: &'a str,
    /// What the account may spend (nano-dollars; -1 unlimited); None: the new-user
    /// balance of the governance settings.
    pub balance_nano: Option<i64>,
}

/// Make an account as an admin: in any registration mode (closed means "accounts are made
/// by an admin or by invitation"), with the role and group chosen. The name must be free,
/// the group must exist, the balance -1 (unlimited) or 0 and more.
pub fn create_by_admin(conn: &mut Connection, a: NewAccount<'_>) -> StoreResult<User> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE username = ?1)",
        [a.username],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "username '{}' is already taken",
            a.username
        )));
    }
    let group = a.group.trim();
    require_group(&tx, group)?;
    let quota = match a.balance_nano {
        Some(b) if b < -1 => {
            return Err(StoreError::Invalid(
                "balance must be -1 (unlimited) or 0 and more".into(),
            ));
        }
        Some(b) => b,
        None => governance::load(&tx)?.new_user_balance_nano,
    };
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO users (id, username, email, password_hash, role, \"group\", quota_nano, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, a.username, a.email, a.password_hash, a.role.as_str(), group, quota, now_secs()],
    )?;
    let user = tx.query_row(
        &format!("SELECT {COLS} FROM users WHERE id = ?1"),
        [&id],
        from_row,
    )?;
    tx.commit()?;
    Ok(user)
}

/// Refuse a group that does not exist, saying how to make it.
fn require_group(conn: &Connection, g: &str) -> StoreResult<()> {
    if groups::get(conn, g)?.is_none() {
        return Err(StoreError::Invalid(format!(
            "no group '{g}': create it first (PUT /console/api/groups/{g} or burncloud group set {g} --ratio 1)"
        )));
    }
    Ok(())
}

/// The user and their password hash, by name.
pub fn find_with_hash(conn: &Connection, username: &str) -> StoreResult<Option<(User, String)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLS}, password_hash FROM users WHERE username = ?1"),
            [username],
            |r| Ok((from_row(r)?, r.get::<_, String>(11)?)),
        )
        .optional()?)
}

/// A user by id.
pub fn get(conn: &Connection, id: &str) -> StoreResult<Option<User>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLS} FROM users WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// All users, oldest first.
pub fn list(conn: &Connection) -> StoreResult<Vec<User>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM users ORDER BY created_at, username"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A user by id, or else by name (the CLI takes either).
pub fn find(conn: &Connection, id_or_name: &str) -> StoreResult<User> {
    if let Some(u) = get(conn, id_or_name)? {
        return Ok(u);
    }
    conn.query_row(
        &format!("SELECT {COLS} FROM users WHERE username = ?1"),
        [id_or_name],
        from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("no user '{id_or_name}'")))
}

/// How an admin changes a user's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalanceChange {
    /// Unlimited from now on.
    Unlimited,
    /// Set what is left to spend to this (nano-dollars, 0 or more).
    Set(i64),
    /// Add (or, negative, take away) this much; the balance may not drop below 0.
    Adjust(i64),
}

/// An admin's change to a user; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub status: Option<i64>,
    pub group: Option<String>,
    pub balance: Option<BalanceChange>,
}

/// Apply an admin's change in one transaction. The last enabled admin cannot be demoted or
/// disabled (someone must be able to administer); the group must exist.
pub fn update(conn: &mut Connection, id: &str, change: UserChange) -> StoreResult<User> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut u = tx
        .query_row(
            &format!("SELECT {COLS} FROM users WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no user '{id}'")))?;
    if let Some(s) = change.status {
        if s != 1 && s != 2 {
            return Err(StoreError::Invalid(
                "status must be 1 (enabled) or 2 (disabled)".into(),
            ));
        }
        u.status = s;
    }
    if let Some(r) = change.role {
        u.role = r;
    }
    let was_admin: bool = tx.query_row(
        "SELECT role = 'admin' AND status = 1 FROM users WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if was_admin && (u.role != Role::Admin || u.status != status::ENABLED) {
        let admins: i64 = tx.query_row(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND status = 1",
            [],
            |r| r.get(0),
        )?;
        if admins <= 1 {
            return Err(StoreError::Conflict(format!(
                "'{}' is the last enabled admin: make another admin first",
                u.username
            )));
        }
    }
    if let Some(g) = change.group {
        let g = g.trim().to_string();
        require_group(&tx, &g)?;
        u.group = g;
    }
    match change.balance {
        None => {}
        Some(BalanceChange::Unlimited) => u.quota_nano = -1,
        Some(BalanceChange::Set(b)) => {
            if b < 0 {
                return Err(StoreError::Invalid(
                    "balance must be -1 (unlimited) or 0 and more".into(),
                ));
            }
            u.quota_nano = u.used_quota_nano.saturating_add(b);
        }
        Some(BalanceChange::Adjust(d)) => {
            let Some(left) = u.balance_nano() else {
                return Err(StoreError::Invalid(format!(
                    "'{}' has an unlimited balance: set a balance instead of adjusting it",
                    u.username
                )));
            };
            if left.saturating_add(d) < 0 {
                return Err(StoreError::Invalid(format!(
                    "the balance of '{}' would drop below 0",
                    u.username
                )));
            }
            u.quota_nano = u.quota_nano.saturating_add(d);
        }
    }
    tx.execute(
        "UPDATE users SET role = ?1, status = ?2, \"group\" = ?3, quota_nano = ?4 WHERE id = ?5",
        params![u.role.as_str(), u.status, u.group, u.quota_nano, u.id],
    )?;
    tx.commit()?;
    Ok(u)
}

/// Replace a user's password hash; login tokens issued before now stop working.
pub fn set_password(conn: &Connection, id: &str, password_hash: &str) -> StoreResult<i64> {
    let now = now_secs();
    let n = conn.execute(
        "UPDATE users SET password_hash = ?1, password_changed_at = ?2 WHERE id = ?3",
        params![password_hash, now, id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no user '{id}'")));
    }
    Ok(now)
}

/// The password hash of a user by id.
pub fn password_hash(conn: &Connection, id: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Credit `amount` to a user's balance (redemptions, rewards); refused for unlimited users.
pub(crate) fn credit(conn: &Connection, id: &str, amount: i64) -> StoreResult<()> {
    let n = conn.execute(
        "UPDATE users SET quota_nano = quota_nano + ?1 WHERE id = ?2 AND quota_nano >= 0 AND status = 1",
        params![amount, id],
    )?;
    if n == 0 {
        return Err(StoreError::Invalid(
            "your balance is unlimited: there is nothing to credit".into(),
        ));
    }
    Ok(())
}
