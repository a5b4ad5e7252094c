//! User groups and their price ratio (millionths). Routing uses the group through the
//! abilities table; billing multiplies every cost by the caller's group ratio.

use crate::store::db::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{StoreError, StoreResult, now_secs};

/// A group row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// Price multiplier in millionths (1.0 = 1_000_000).
    pub ratio_micro: i64,
    pub description: String,
    pub updated_at: i64,
    /// Users in the group.
    pub users: i64,
}

const SELECT: &str = "SELECT g.name, g.ratio_micro, g.description, g.updated_at,
    (SELECT COUNT(*) FROM users u WHERE u.\"group\" = g.name) FROM user_groups g";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<Group> {
    Ok(Group {
        name: r.get(0)?,
        ratio_micro: r.get(1)?,
        description: r.get(2)?,
        updated_at: r.get(3)?,
        users: r.get(4)?,
    })
}

fn check_name(name: &str) -> StoreResult<()> {
    let ok = name
        .chars()
        .all(|c| c.is_alphanumeric() || "_-.".contains(c));
    if name.is_empty() || name.chars().count() > 64 || !ok {
        return Err(StoreError::Invalid(
            "group name must be 1-64 letters, digits, '_', '-' or '.'".into(),
        ));
    }
    Ok(())
}

/// Every group by name.
pub fn list(conn: &Connection) -> StoreResult<Vec<Group>> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY g.name"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One group.
pub fn get(conn: &Connection, name: &str) -> StoreResult<Option<Group>> {
    Ok(conn
        .query_row(&format!("{SELECT} WHERE g.name = ?1"), [name], from_row)
        .optional()?)
}

/// Create or change a group; `description` None keeps the current one.
pub fn set(
    conn: &mut Connection,
    name: &str,
    ratio_micro: i64,
    description: Option<&str>,
) -> StoreResult<Group> {
    let name = name.trim();
    check_name(name)?;
    if ratio_micro < 0 {
        return Err(StoreError::Invalid("ratio must not be negative".into()));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO user_groups (name, ratio_micro, description, updated_at) VALUES (?1, ?2, COALESCE(CAST(?3 AS TEXT), ''), ?4)
         ON CONFLICT(name) DO UPDATE SET ratio_micro = excluded.ratio_micro,
           description = COALESCE(CAST(?3 AS TEXT), user_groups.description), updated_at = excluded.updated_at",
        params![name, ratio_micro, description, now_secs()],
    )?;
    let g = get(&tx, name)?.ok_or_else(|| StoreError::NotFound(name.to_string()))?;
    tx.commit()?;
    Ok(g)
}

/// Delete a group; refused for `default` and while users are in it.
pub fn delete(conn: &mut Connection, name: &str) -> StoreResult<()> {
    if name == "default" {
        return Err(StoreError::Conflict(
            "the default group cannot be deleted (new users join it)".into(),
        ));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let g = get(&tx, name)?.ok_or_else(|| StoreError::NotFound(format!("no group '{name}'")))?;
    if g.users > 0 {
        return Err(StoreError::Conflict(format!(
            "group '{name}' still has {} user(s): move them to another group first",
            g.users
        )));
    }
    tx.execute("DELETE FROM user_groups WHERE name = ?1", [name])?;
    tx.commit()?;
    Ok(())
}
