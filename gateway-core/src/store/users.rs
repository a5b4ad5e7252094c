//! Users: the first one registered becomes admin.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;

use super::{StoreError, StoreResult, now_secs};

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
    pub balance_nano: i64,
    pub created_at: i64,
}

const COLS: &str = "id, username, email, role, \"group\", status, balance_nano, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        role: Role::parse(&r.get::<_, String>(3)?),
        group: r.get(4)?,
        status: r.get(5)?,
        balance_nano: r.get(6)?,
        created_at: r.get(7)?,
    })
}

/// Create a user in one transaction; the first user of the database is admin.
pub fn create(
    conn: &mut Connection,
    username: &str,
    email: Option<&str>,
    password_hash: &str,
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
    let role = if count == 0 { Role::Admin } else { Role::User };
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO users (id, username, email, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, username, email, password_hash, role.as_str(), now_secs()],
    )?;
    let user = tx.query_row(
        &format!("SELECT {COLS} FROM users WHERE id = ?1"),
        [&id],
        from_row,
    )?;
    tx.commit()?;
    Ok(user)
}

/// The user and their password hash, by name.
pub fn find_with_hash(conn: &Connection, username: &str) -> StoreResult<Option<(User, String)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLS}, password_hash FROM users WHERE username = ?1"),
            [username],
            |r| Ok((from_row(r)?, r.get::<_, String>(8)?)),
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
