//! Gateways sharing one database: their heartbeats (`instances`) and quota leases
//! (`quota_leases`). A lease is the part of a token's quota or a user's balance that one
//! gateway may spend without asking the database again; the usage writer takes each
//! settled cost off the lease in the transaction that adds it to the used total, so
//! `used + the leases of live gateways` never passes the limit by more than the one
//! request each gateway may let run past its lease. A gateway whose heartbeat is older
//! than [`LIVE_MS`] holds nothing: its lease returns to the others (what it spent but
//! never stored is lost with it, never billed twice).

use super::StoreResult;
use super::db::{Connection, OptionalExtension, TransactionBehavior, params};

/// A heartbeat older than this (ms) means the gateway is gone.
pub const LIVE_MS: i64 = 10_000;

/// Whose quota a lease draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Token,
    User,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::User => "user",
        }
    }
}

/// A gateway's request for more of one account's quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub kind: Kind,
    /// The token id (as text) or the user id.
    pub account: String,
    /// The least worth asking for (about one request's reservation).
    pub at_least: i64,
}

/// The database's answer to a [`Want`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The account has no limit (any more).
    Unlimited,
    /// Nano-dollars added to this gateway's lease; `last`: nothing is left after it.
    Granted { nano: i64, last: bool },
    /// The account is gone.
    Gone,
}

/// Register or refresh this gateway's heartbeat; drop the leases of gateways gone for a
/// minute. The number of live gateways (this one included).
pub fn heartbeat(conn: &Connection, instance: &str, now_ms: i64) -> StoreResult<i64> {
    let updated = conn.execute(
        "UPDATE instances SET heartbeat_ms = ?2 WHERE id = ?1",
        params![instance, now_ms],
    )?;
    if updated == 0 {
        conn.execute(
            "INSERT INTO instances (id, started_ms, heartbeat_ms) VALUES (?1, ?2, ?2)",
            params![instance, now_ms],
        )?;
    }
    let gone = now_ms - 60_000;
    conn.execute(
        "DELETE FROM quota_leases WHERE instance IN (SELECT id FROM instances WHERE heartbeat_ms < ?1)",
        params![gone],
    )?;
    conn.execute(
        "DELETE FROM instances WHERE heartbeat_ms < ?1",
        params![gone],
    )?;
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM instances WHERE heartbeat_ms > ?1",
        params![now_ms - LIVE_MS],
        |r| r.get(0),
    )?)
}

/// Leave: this gateway's leases return to the others at once.
pub fn leave(conn: &mut Connection, instance: &str) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM quota_leases WHERE instance = ?1",
        params![instance],
    )?;
    tx.execute("DELETE FROM instances WHERE id = ?1", params![instance])?;
    tx.commit()?;
    Ok(())
}

/// Grant more of each wanted account to `instance`, in one transaction that every
/// gateway's grants take in turn. Each grant is a share of what is left (so gateways
/// that come later still find some), and at least `at_least` when that much is left.
pub fn top_up(
    conn: &mut Connection,
    instance: &str,
    wants: &[Want],
    now_ms: i64,
) -> StoreResult<Vec<Grant>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let live_since = now_ms - LIVE_MS;
    let gateways = tx
        .query_row(
            "SELECT COUNT(*) FROM instances WHERE heartbeat_ms > ?1",
            params![live_since],
            |r| r.get::<_, i64>(0),
        )?
        .max(1);
    let mut grants = Vec::with_capacity(wants.len());
    for want in wants {
        // One statement, so one snapshot: the usage writer moves a cost from a lease to
        // the used total in one transaction, and two reads could see it in neither or both.
        // A lease run past (negative) is a debt its own gateway repays from this grant, as
        // its ledger does; it frees nothing for the others.
        let held = "(SELECT COALESCE(SUM(CASE WHEN l.granted_nano > 0 OR l.instance = ?5 THEN l.granted_nano ELSE 0 END), 0)
                     FROM quota_leases l JOIN instances i ON i.id = l.instance
                     WHERE l.kind = ?2 AND l.account = ?3 AND i.heartbeat_ms > ?4)";
        let row: Option<(i64, i64, i64)> = match want.kind {
            Kind::Token => tx
                .query_row(
                    &format!(
                        "SELECT quota_limit_nano, used_quota_nano, {held} FROM tokens WHERE id = ?1"
                    ),
                    params![
                        want.account.parse::<i64>().unwrap_or(-1),
                        want.kind.as_str(),
                        want.account,
                        live_since,
                        instance
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?,
            Kind::User => tx
                .query_row(
                    &format!("SELECT quota_nano, used_quota_nano, {held} FROM users WHERE id = ?1"),
                    params![
                        want.account,
                        want.kind.as_str(),
                        want.account,
                        live_since,
                        instance
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?,
        };
        let Some((limit, used, held)) = row else {
            grants.push(Grant::Gone);
            continue;
        };
        if limit < 0 {
            grants.push(Grant::Unlimited);
            continue;
        }
        let left = limit - used - held;
        let nano = if left <= 0 {
            0
        } else {
            (left / (2 * gateways)).max(want.at_least).clamp(1, left)
        };
        if nano > 0 {
            let n = tx.execute(
                "UPDATE quota_leases SET granted_nano = granted_nano + ?4 WHERE instance = ?1 AND kind = ?2 AND account = ?3",
                params![instance, want.kind.as_str(), want.account, nano],
            )?;
            if n == 0 {
                tx.execute(
                    "INSERT INTO quota_leases (instance, kind, account, granted_nano) VALUES (?1, ?2, ?3, ?4)",
                    params![instance, want.kind.as_str(), want.account, nano],
                )?;
            }
        }
        grants.push(Grant::Granted {
            nano,
            last: left - nano <= 0,
        });
    }
    tx.commit()?;
    Ok(grants)
}

/// Take a stored cost off this gateway's lease (in the usage writer's transaction). A cost
/// larger than the lease leaves it negative, as the gateway's in-memory allowance is: the
/// overrun is then in `used` once and owed once, whether the next grant is computed before
/// or after this commit (clamped at 0, it was counted twice after it).
pub fn spend(
    conn: &Connection,
    instance: &str,
    kind: Kind,
    account: &str,
    cost: i64,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE quota_leases SET granted_nano = granted_nano - ?4
         WHERE instance = ?1 AND kind = ?2 AND account = ?3",
        params![instance, kind.as_str(), account, cost],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn setup() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        let (_, token) = store
            .with(|c| crate::store::testing::user_with_token(c, Some(1_000)))
            .unwrap();
        (dir, store, token)
    }

    #[test]
    fn leases_share_what_is_left_and_never_more() {
        let (_dir, store, token) = setup();
        let want = |at_least| Want {
            kind: Kind::Token,
            account: token.to_string(),
            at_least,
        };
        let grants = store
            .with(|c| {
                heartbeat(c, "a", 1_000_000)?;
                heartbeat(c, "b", 1_000_000)?;
                let mut out = Vec::new();
                for (who, at_least) in [("a", 1), ("b", 1), ("a", 600), ("b", 600), ("b", 1)] {
                    out.push(top_up(c, who, &[want(at_least)], 1_000_000)?[0]);
                }
                Ok(out)
            })
            .unwrap();
        // 1000 left, two gateways: a quarter each, then at least what is asked, capped
        // by what is left; then nothing.
        assert_eq!(
            grants,
            vec![
                Grant::Granted {
                    nano: 250,
                    last: false
                },
                Grant::Granted {
                    nano: 187,
                    last: false
                },
                Grant::Granted {
                    nano: 563,
                    last: true
                },
                Grant::Granted {
                    nano: 0,
                    last: true
                },
                Grant::Granted {
                    nano: 0,
                    last: true
                },
            ]
        );
        // Spending moves quota from the lease to used: still nothing left.
        let after = store
            .with(|c| {
                c.execute(
                    "UPDATE tokens SET used_quota_nano = 300 WHERE id = ?1",
                    params![token],
                )?;
                spend(c, "a", Kind::Token, &token.to_string(), 300)?;
                top_up(c, "b", &[want(1)], 1_000_000)
            })
            .unwrap();
        assert_eq!(
            after,
            vec![Grant::Granted {
                nano: 0,
                last: true
            }]
        );
        // A gateway that stops beating gives its lease back (a: 813 - 300 = 513).
        let back = store
            .with(|c| {
                heartbeat(c, "b", 1_000_000 + LIVE_MS + 1)?;
                top_up(c, "b", &[want(1)], 1_000_000 + LIVE_MS + 1)
            })
            .unwrap();
        assert_eq!(
            back,
            vec![Grant::Granted {
                nano: 256,
                last: false
            }]
        );
    }

    #[test]
    fn a_lease_run_past_is_owed_once_before_and_after_its_cost_is_stored() {
        let (_dir, store, token) = setup();
        let want = |at_least| Want {
            kind: Kind::Token,
            account: token.to_string(),
            at_least,
        };
        let account = token.to_string();
        let grants = store
            .with(|c| {
                heartbeat(c, "a", 1_000_000)?;
                heartbeat(c, "b", 1_000_000)?;
                // a holds 250 of the 1000 and serves a request that costs 400: its ledger
                // now allows -150.
                let first = top_up(c, "a", &[want(1)], 1_000_000)?[0];
                // Before the writer stores that cost: 1000 - 0 - 250 is left.
                let before = top_up(c, "a", &[want(1000)], 1_000_000)?[0];
                // Undo that grant, store the cost, ask again: the same 750 is left to a
                // (1000 - 400 used + the 150 a owes itself), and 600 to b (a's debt frees
                // nothing for b).
                c.execute(
                    "UPDATE quota_leases SET granted_nano = 250 WHERE instance = 'a'",
                    params![],
                )?;
                c.execute(
                    "UPDATE tokens SET used_quota_nano = 400 WHERE id = ?1",
                    params![token],
                )?;
                spend(c, "a", Kind::Token, &account, 400)?;
                let after = top_up(c, "a", &[want(1000)], 1_000_000)?[0];
                c.execute(
                    "UPDATE quota_leases SET granted_nano = -150 WHERE instance = 'a'",
                    params![],
                )?;
                let other = top_up(c, "b", &[want(1000)], 1_000_000)?[0];
                Ok([first, before, after, other])
            })
            .unwrap();
        let granted = |nano, last| Grant::Granted { nano, last };
        assert_eq!(
            grants,
            [
                granted(250, false),
                granted(750, true),
                granted(750, true),
                granted(600, true)
            ]
        );
    }

    #[test]
    fn unlimited_and_deleted_accounts() {
        let (_dir, store, token) = setup();
        let grants = store
            .with(|c| {
                heartbeat(c, "a", 5)?;
                c.execute(
                    "UPDATE tokens SET quota_limit_nano = -1 WHERE id = ?1",
                    params![token],
                )?;
                top_up(
                    c,
                    "a",
                    &[
                        Want {
                            kind: Kind::Token,
                            account: token.to_string(),
                            at_least: 1,
                        },
                        Want {
                            kind: Kind::Token,
                            account: "999".into(),
                            at_least: 1,
                        },
                        Want {
                            kind: Kind::User,
                            account: "nobody".into(),
                            at_least: 1,
                        },
                    ],
                    5,
                )
            })
            .unwrap();
        assert_eq!(grants, vec![Grant::Unlimited, Grant::Gone, Grant::Gone]);
    }
}
