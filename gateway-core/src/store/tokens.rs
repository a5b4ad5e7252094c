//! Tokens: the `sk-` virtual keys. Only a SHA-256 of the key is stored.

use crate::store::db::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use crate::vocab::status;

use super::{FieldError, StoreError, StoreResult, first_refusal, now_secs, split_list};

/// A token row.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: i64,
    pub user_id: String,
    pub name: String,
    pub key_hash: String,
    /// A display form of the key (`sk-abcd...wxyz`); the key itself is never stored.
    pub key_prefix: String,
    pub status: i64,
    /// Nano-dollars; -1 unlimited.
    pub quota_limit_nano: i64,
    pub used_quota_nano: i64,
    /// Unix seconds; -1 never.
    pub expired_time: i64,
    pub models: Vec<String>,
    pub group: String,
    pub allow_ips: Vec<String>,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub created_at: i64,
    /// Never routed to cloud channels.
    pub local_only: bool,
    /// `edge_burst` / `cloud_burst`; None: the global mode.
    pub burst_mode: Option<String>,
}

/// Fields of a token change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct TokenFields {
    pub name: Option<String>,
    pub status: Option<i64>,
    pub quota_limit_nano: Option<i64>,
    pub expired_time: Option<i64>,
    pub models: Option<String>,
    pub group: Option<String>,
    pub allow_ips: Option<String>,
    pub rpm_limit: Option<Option<i64>>,
    pub tpm_limit: Option<Option<i64>>,
    pub local_only: Option<bool>,
    pub burst_mode: Option<Option<String>>,
}

const COLS: &str = "id, user_id, name, key_hash, key_prefix, status, quota_limit_nano, used_quota_nano, expired_time, models, \"group\", allow_ips, rpm_limit, tpm_limit, created_at, local_only, burst_mode";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<Token> {
    Ok(Token {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        key_hash: r.get(3)?,
        key_prefix: r.get(4)?,
        status: r.get(5)?,
        quota_limit_nano: r.get(6)?,
        used_quota_nano: r.get(7)?,
        expired_time: r.get(8)?,
        models: split_list(&r.get::<_, String>(9)?),
        group: r.get(10)?,
        allow_ips: split_list(&r.get::<_, String>(11)?),
        rpm_limit: r.get(12)?,
        tpm_limit: r.get(13)?,
        created_at: r.get(14)?,
        local_only: r.get(15)?,
        burst_mode: r.get(16)?,
    })
}

fn apply(t: &mut Token, f: TokenFields) -> StoreResult<()> {
    set_fields(t, f);
    first_refusal(check(t))
}

fn set_fields(t: &mut Token, f: TokenFields) {
    if let Some(v) = f.name {
        t.name = v.trim().to_string();
    }
    if let Some(v) = f.status {
        t.status = v;
    }
    if let Some(v) = f.quota_limit_nano {
        t.quota_limit_nano = v;
    }
    if let Some(v) = f.expired_time {
        t.expired_time = v;
    }
    if let Some(v) = f.models {
        t.models = split_list(&v);
    }
    if let Some(v) = f.group {
        t.group = v.trim().to_string();
    }
    if let Some(v) = f.allow_ips {
        t.allow_ips = split_list(&v);
    }
    if let Some(v) = f.rpm_limit {
        t.rpm_limit = v;
    }
    if let Some(v) = f.tpm_limit {
        t.tpm_limit = v;
    }
    if let Some(v) = f.local_only {
        t.local_only = v;
    }
    if let Some(v) = f.burst_mode {
        t.burst_mode = v.map(|m| m.trim().to_string()).filter(|m| !m.is_empty());
    }
}

/// Every refused field of a token (the API reports the first); fills the default group.
fn check(t: &mut Token) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(m) = &t.burst_mode
        && m != "edge_burst"
        && m != "cloud_burst"
    {
        errors.push(FieldError::invalid(
            "burst_mode",
            format!(
                "burst_mode must be edge_burst, cloud_burst or null (the global mode), not '{m}'"
            ),
        ));
    }
    if t.name.is_empty() {
        errors.push(FieldError::invalid("name", "name must not be empty"));
    }
    if t.group.is_empty() {
        t.group = "default".into();
    }
    if t.status != status::ENABLED && t.status != status::DISABLED {
        errors.push(FieldError::invalid(
            "status",
            "status must be 1 (enabled) or 2 (disabled)",
        ));
    }
    if t.quota_limit_nano < -1 {
        errors.push(FieldError::invalid(
            "quota_limit",
            "quota_limit must be -1 (unlimited) or 0 and more",
        ));
    }
    if t.expired_time < -1 || t.expired_time == 0 {
        errors.push(FieldError::invalid(
            "expired_time",
            "expired_time must be -1 (never) or a unix time in seconds",
        ));
    }
    for (name, v) in [("rpm_limit", t.rpm_limit), ("tpm_limit", t.tpm_limit)] {
        if v.is_some_and(|v| v < 1) {
            errors.push(FieldError::invalid(
                name,
                format!("{name} must be 1 or more, or null"),
            ));
        }
    }
    errors
}

/// Every field `create` would refuse in `fields` (a form marks them all; the write
/// reports the first).
pub fn field_errors(fields: TokenFields) -> Vec<FieldError> {
    let mut t = new_token("", "", "");
    set_fields(&mut t, fields);
    check(&mut t)
}

/// A token with the defaults of a new one.
fn new_token(user_id: &str, key_hash: &str, key_prefix: &str) -> Token {
    Token {
        id: 0,
        user_id: user_id.to_string(),
        name: String::new(),
        key_hash: key_hash.to_string(),
        key_prefix: key_prefix.to_string(),
        status: status::ENABLED,
        quota_limit_nano: -1,
        used_quota_nano: 0,
        expired_time: -1,
        models: vec![],
        group: "default".into(),
        allow_ips: vec![],
        rpm_limit: None,
        tpm_limit: None,
        created_at: now_secs(),
        local_only: false,
        burst_mode: None,
    }
}

/// Create a token for `user_id` with an already generated key (hash + display prefix).
pub fn create(
    conn: &mut Connection,
    user_id: &str,
    key_hash: &str,
    key_prefix: &str,
    fields: TokenFields,
) -> StoreResult<Token> {
    let mut t = new_token(user_id, key_hash, key_prefix);
    apply(&mut t, fields)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO tokens (user_id, name, key_hash, key_prefix, status, quota_limit_nano, expired_time, models, \"group\", allow_ips, rpm_limit, tpm_limit, created_at, local_only, burst_mode)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            t.user_id, t.name, t.key_hash, t.key_prefix, t.status, t.quota_limit_nano, t.expired_time,
            t.models.join(","), t.group, t.allow_ips.join(","), t.rpm_limit, t.tpm_limit, t.created_at,
            t.local_only, t.burst_mode
        ],
    )?;
    t.id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(t)
}

/// Change a token; `owner` limits the change to that user's tokens (None: any, for admins).
pub fn update(
    conn: &mut Connection,
    id: i64,
    owner: Option<&str>,
    fields: TokenFields,
) -> StoreResult<Token> {
    let actor = match owner {
        Some(o) => Actor::Owner(o),
        None => Actor::Admin(""),
    };
    update_as(conn, id, actor, fields)
}

/// Who changes a token.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// An admin (by id): any token. Changing someone else's token locks its limits.
    Admin(&'a str),
    /// The token's owner (by id): only their tokens, and limits an admin set only tighter.
    Owner(&'a str),
}

/// Change a token as `actor`: limits an admin set on someone else's token stick — its owner
/// may lower the quota, rates, expiry, models and addresses, never raise them.
pub fn update_as(
    conn: &mut Connection,
    id: i64,
    actor: Actor<'_>,
    fields: TokenFields,
) -> StoreResult<Token> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: Option<(Token, bool)> = tx
        .query_row(
            &format!("SELECT {COLS}, limits_locked FROM tokens WHERE id = ?1"),
            [id],
            |r| Ok((from_row(r)?, r.get(17)?)),
        )
        .optional()?;
    let (before, locked) = found
        .filter(|(t, _)| match actor {
            Actor::Owner(o) => o == t.user_id,
            Actor::Admin(_) => true,
        })
        .ok_or_else(|| StoreError::NotFound(format!("token {id} not found")))?;
    let mut t = before.clone();
    apply(&mut t, fields)?;
    let locked = match actor {
        Actor::Owner(_) => {
            if locked {
                check_tighter(&before, &t)?;
            }
            locked
        }
        Actor::Admin(admin) => locked || admin != t.user_id,
    };
    tx.execute(
        "UPDATE tokens SET name=?1, status=?2, quota_limit_nano=?3, expired_time=?4, models=?5, \"group\"=?6, allow_ips=?7, rpm_limit=?8, tpm_limit=?9, local_only=?10, burst_mode=?11, limits_locked=?12 WHERE id=?13",
        params![
            t.name, t.status, t.quota_limit_nano, t.expired_time, t.models.join(","), t.group,
            t.allow_ips.join(","), t.rpm_limit, t.tpm_limit, t.local_only, t.burst_mode, locked, t.id
        ],
    )?;
    tx.commit()?;
    Ok(t)
}

/// Refuse any change from `before` to `after` that loosens a limit.
fn check_tighter(before: &Token, after: &Token) -> StoreResult<()> {
    // -1 / None / empty: unlimited.
    let bound = |v: i64| if v < 0 { i64::MAX } else { v };
    let opt = |v: Option<i64>| v.unwrap_or(i64::MAX);
    let subset = |old: &[String], new: &[String]| {
        old.is_empty() || (!new.is_empty() && new.iter().all(|n| old.contains(n)))
    };
    let loosened = if bound(after.quota_limit_nano) > bound(before.quota_limit_nano) {
        Some("quota_limit")
    } else if bound(after.expired_time) > bound(before.expired_time) {
        Some("expired_time")
    } else if opt(after.rpm_limit) > opt(before.rpm_limit) {
        Some("rpm_limit")
    } else if opt(after.tpm_limit) > opt(before.tpm_limit) {
        Some("tpm_limit")
    } else if !subset(&before.models, &after.models) {
        Some("models")
    } else if !subset(&before.allow_ips, &after.allow_ips) {
        Some("allow_ips")
    } else if before.local_only && !after.local_only {
        Some("local_only")
    } else if before.status != status::ENABLED && after.status == status::ENABLED {
        Some("status")
    } else {
        None
    };
    match loosened {
        None => Ok(()),
        Some(field) => Err(StoreError::Forbidden(format!(
            "{field} of this key was set by an admin: you can tighten it, not loosen it"
        ))),
    }
}

/// Delete (revoke) a token; `owner` as in [`update`].
pub fn delete(conn: &mut Connection, id: i64, owner: Option<&str>) -> StoreResult<()> {
    let n = match owner {
        Some(o) => conn.execute(
            "DELETE FROM tokens WHERE id = ?1 AND user_id = ?2",
            params![id, o],
        )?,
        None => conn.execute("DELETE FROM tokens WHERE id = ?1", [id])?,
    };
    if n == 0 {
        return Err(StoreError::NotFound(format!("token {id} not found")));
    }
    Ok(())
}

/// One token; `owner` as in [`update`].
pub fn get(conn: &Connection, id: i64, owner: Option<&str>) -> StoreResult<Option<Token>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLS} FROM tokens WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
        .filter(|t| owner.is_none_or(|o| o == t.user_id)))
}

/// Tokens of one user, or all tokens when `owner` is None.
pub fn list(conn: &Connection, owner: Option<&str>) -> StoreResult<Vec<Token>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM tokens WHERE (CAST(?1 AS TEXT) IS NULL OR user_id = ?1) ORDER BY id"
    ))?;
    let rows = stmt.query_map([owner], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refused_field_is_found_at_once_and_the_write_reports_the_first() {
        let bad = TokenFields {
            name: Some(" ".into()),
            quota_limit_nano: Some(-5),
            rpm_limit: Some(Some(0)),
            ..Default::default()
        };
        let errors = field_errors(bad.clone());
        let named: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(named, ["name", "quota_limit", "rpm_limit"]);
        let mut t = new_token("u", "h", "p");
        match apply(&mut t, bad) {
            Err(StoreError::Invalid(m)) => assert_eq!(m, "name must not be empty"),
            other => panic!("{other:?}"),
        }
        assert!(
            field_errors(TokenFields {
                name: Some("ok".into()),
                ..Default::default()
            })
            .is_empty()
        );
    }
}
