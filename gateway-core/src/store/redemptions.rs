//! Redemption codes: admins generate batches; a user redeems a code once. Redeeming is one
//! conditional `UPDATE` inside an immediate transaction, so one code credits one user once
//! even when many redeem it at the same moment, from any process.

use crate::store::db::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;

use super::{StoreError, StoreResult, now_secs, users};

/// Most codes one batch may hold.
pub const MAX_BATCH: i64 = 1000;

/// A code row.
#[derive(Debug, Clone, Serialize)]
pub struct Redemption {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub amount_nano: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    /// Unix seconds; -1 never.
    pub expires_at: i64,
    pub redeemed_by: Option<String>,
    pub redeemed_at: Option<i64>,
}

impl Redemption {
    /// `unused`, `used` or `expired` at `now`.
    pub fn state(&self, now: i64) -> &'static str {
        if self.redeemed_at.is_some() {
            "used"
        } else if self.expires_at > 0 && self.expires_at <= now {
            "expired"
        } else {
            "unused"
        }
    }
}

const COLS: &str =
    "id, code, name, amount_nano, created_by, created_at, expires_at, redeemed_by, redeemed_at";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<Redemption> {
    Ok(Redemption {
        id: r.get(0)?,
        code: r.get(1)?,
        name: r.get(2)?,
        amount_nano: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        redeemed_by: r.get(7)?,
        redeemed_at: r.get(8)?,
    })
}

/// Generate `count` codes worth `amount_nano` each, in one transaction.
pub fn create_batch(
    conn: &mut Connection,
    name: &str,
    amount_nano: i64,
    count: i64,
    expires_at: i64,
    created_by: Option<&str>,
) -> StoreResult<Vec<Redemption>> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::Invalid("name must not be empty".into()));
    }
    if amount_nano <= 0 {
        return Err(StoreError::Invalid("amount must be more than 0".into()));
    }
    if !(1..=MAX_BATCH).contains(&count) {
        return Err(StoreError::Invalid(format!(
            "count must be 1 to {MAX_BATCH}"
        )));
    }
    let now = now_secs();
    if expires_at == 0 || expires_at < -1 || (expires_at > 0 && expires_at <= now) {
        return Err(StoreError::Invalid(
            "expires_at must be -1 (never) or a unix time in seconds in the future".into(),
        ));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Vec::with_capacity(count as usize);
    {
        let mut stmt = tx.prepare(
            "INSERT INTO redemptions (code, name, amount_nano, created_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for _ in 0..count {
            let code = crate::secure::random_alnum(32);
            stmt.execute(params![
                code,
                name,
                amount_nano,
                created_by,
                now,
                expires_at
            ])?;
            out.push(Redemption {
                id: tx.last_insert_rowid(),
                code,
                name: name.to_string(),
                amount_nano,
                created_by: created_by.map(str::to_string),
                created_at: now,
                expires_at,
                redeemed_by: None,
                redeemed_at: None,
            });
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Codes, newest first; `only_unused` leaves out used and expired ones.
pub fn list(conn: &Connection, only_unused: bool) -> StoreResult<Vec<Redemption>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM redemptions
         WHERE (?1 = 0 OR (redeemed_at IS NULL AND (expires_at < 0 OR expires_at > ?2)))
         ORDER BY id DESC"
    ))?;
    let rows = stmt.query_map(params![only_unused, now_secs()], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The header of [`csv`].
pub const CSV_HEADER: &str = "code,name,amount_usd,state,expires_at,redeemed_by";

/// Codes as CSV (RFC 4180: a field with a comma, quote or line break is quoted), one line
/// per code after [`CSV_HEADER`]: `expires_at` in unix seconds (-1 never), `state` at `now`.
/// The CLI's `--csv` and the consoles' export both write this.
pub fn csv(list: &[Redemption], now: i64) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = String::from(CSV_HEADER);
    for r in list {
        out.push_str(&format!(
            "\n{},{},{},{},{},{}",
            field(&r.code),
            field(&r.name),
            crate::money::format_usd(r.amount_nano),
            r.state(now),
            r.expires_at,
            field(r.redeemed_by.as_deref().unwrap_or(""))
        ));
    }
    out
}

/// Delete a code (used ones stay as a record unless deleted explicitly).
pub fn delete(conn: &Connection, id: i64) -> StoreResult<()> {
    if conn.execute("DELETE FROM redemptions WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound(format!("redemption {id} not found")));
    }
    Ok(())
}

/// Redeem `code` for `user_id`: marks it used and credits its amount, both or neither.
/// Returns the amount credited.
pub fn redeem(conn: &mut Connection, user_id: &str, code: &str) -> StoreResult<i64> {
    let code = code.trim();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_secs();
    let found = tx
        .query_row(
            &format!("SELECT {COLS} FROM redemptions WHERE code = ?1"),
            [code],
            from_row,
        )
        .optional()?
        .ok_or_else(|| StoreError::Invalid("unknown redemption code".into()))?;
    match found.state(now) {
        "used" => {
            return Err(StoreError::Invalid(
                "this redemption code has already been used".into(),
            ));
        }
        "expired" => {
            return Err(StoreError::Invalid(
                "this redemption code has expired".into(),
            ));
        }
        _ => {}
    }
    // The condition repeats the check so that the code is taken exactly once.
    let n = tx.execute(
        "UPDATE redemptions SET redeemed_by = ?1, redeemed_at = ?2 WHERE id = ?3 AND redeemed_at IS NULL",
        params![user_id, now, found.id],
    )?;
    if n != 1 {
        return Err(StoreError::Invalid(
            "this redemption code has already been used".into(),
        ));
    }
    users::credit(&tx, user_id, found.amount_nano)?;
    tx.commit()?;
    Ok(found.amount_nano)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(name: &str, redeemed_by: Option<&str>) -> Redemption {
        Redemption {
            id: 1,
            code: "ABC".into(),
            name: name.into(),
            amount_nano: 2_500_000_000,
            created_by: None,
            created_at: 0,
            expires_at: -1,
            redeemed_by: redeemed_by.map(str::to_string),
            redeemed_at: redeemed_by.map(|_| 5),
        }
    }

    #[test]
    fn csv_quotes_only_fields_that_need_it() {
        let text = csv(
            &[code("launch", None), code("spring, \"vip\"", Some("u-1"))],
            10,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "ABC,launch,2.50,unused,-1,");
        assert_eq!(lines[2], "ABC,\"spring, \"\"vip\"\"\",2.50,used,-1,u-1");
    }
}
