//! Invitation codes: any user creates them; registration with a code uses one of its uses
//! (in the registering transaction) and credits the configured rewards.

use crate::store::db::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{StoreError, StoreResult, now_secs};

/// An invitation row.
#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    pub code: String,
    pub inviter_id: String,
    /// 0: unlimited.
    pub max_uses: i64,
    pub uses: i64,
    /// Unix seconds; -1 never.
    pub expires_at: i64,
    pub created_at: i64,
}

const COLS: &str = "code, inviter_id, max_uses, uses, expires_at, created_at";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<Invitation> {
    Ok(Invitation {
        code: r.get(0)?,
        inviter_id: r.get(1)?,
        max_uses: r.get(2)?,
        uses: r.get(3)?,
        expires_at: r.get(4)?,
        created_at: r.get(5)?,
    })
}

/// Create an invitation from `inviter_id`.
pub fn create(
    conn: &Connection,
    inviter_id: &str,
    max_uses: i64,
    expires_at: i64,
) -> StoreResult<Invitation> {
    let now = now_secs();
    if max_uses < 0 {
        return Err(StoreError::Invalid(
            "max_uses must be 0 (unlimited) or more".into(),
        ));
    }
    if expires_at == 0 || expires_at < -1 || (expires_at > 0 && expires_at <= now) {
        return Err(StoreError::Invalid(
            "expires_at must be -1 (never) or a unix time in seconds in the future".into(),
        ));
    }
    let code = crate::secure::random_alnum(16);
    conn.execute(
        "INSERT INTO invitations (code, inviter_id, max_uses, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![code, inviter_id, max_uses, expires_at, now],
    )?;
    Ok(Invitation {
        code,
        inviter_id: inviter_id.to_string(),
        max_uses,
        uses: 0,
        expires_at,
        created_at: now,
    })
}

/// Invitations of one inviter, or all when `owner` is None; newest first.
pub fn list(conn: &Connection, owner: Option<&str>) -> StoreResult<Vec<Invitation>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM invitations WHERE (CAST(?1 AS TEXT) IS NULL OR inviter_id = ?1) ORDER BY created_at DESC, code"
    ))?;
    let rows = stmt.query_map([owner], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Use one of a code's uses (inside the registering transaction); returns the inviter.
pub(crate) fn use_code(conn: &Connection, code: &str) -> StoreResult<String> {
    let inv = conn
        .query_row(
            &format!("SELECT {COLS} FROM invitations WHERE code = ?1"),
            [code],
            from_row,
        )
        .optional()?
        .ok_or_else(|| StoreError::Invalid("unknown invitation code".into()))?;
    if inv.expires_at > 0 && inv.expires_at <= now_secs() {
        return Err(StoreError::Invalid("this invitation has expired".into()));
    }
    let n = conn.execute(
        "UPDATE invitations SET uses = uses + 1 WHERE code = ?1 AND (max_uses = 0 OR uses < max_uses)",
        [code],
    )?;
    if n != 1 {
        return Err(StoreError::Invalid(
            "this invitation has been used up".into(),
        ));
    }
    Ok(inv.inviter_id)
}

/// Delete an invitation; `owner` limits it to that inviter's codes.
pub fn delete(conn: &Connection, code: &str, owner: Option<&str>) -> StoreResult<()> {
    let n = conn.execute(
        "DELETE FROM invitations WHERE code = ?1 AND (CAST(?2 AS TEXT) IS NULL OR inviter_id = ?2)",
        params![code, owner],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("invitation {code} not found")));
    }
    Ok(())
}
