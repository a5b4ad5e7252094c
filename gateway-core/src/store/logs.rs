//! Request logs (one record per data-plane request) and the billing summary built from them.

use crate::store::db::{Connection, Value, ValueRef, params, params_from_iter};
use serde::Serialize;
use std::borrow::Cow;

use super::StoreResult;

/// One request's record, as the data plane settles it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogRecord {
    pub request_id: String,
    pub created_at_ms: i64,
    pub user_id: Option<String>,
    pub token_id: Option<i64>,
    pub model: Option<String>,
    pub channel_id: Option<i64>,
    pub endpoint: Cow<'static, str>,
    pub status: i64,
    pub stream: bool,
    pub latency_ms: Option<i64>,
    pub ttfb_ms: Option<i64>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cost_nano: i64,
    pub error: Option<String>,
    /// The failover trail, e.g. `"3:502,5:timeout"`.
    pub failover: Option<String>,
    /// Comma list of flags (`unpriced`, `client_disconnected`, ...).
    pub flags: Option<String>,
    /// `local` or `cloud`: where the serving channel runs.
    pub locality: Option<Cow<'static, str>>,
    /// `mode,reason,sensitivity` where burst routing decided.
    pub burst: Option<String>,
    /// The client's wire format (`openai`, `anthropic`).
    pub ingress: Option<Cow<'static, str>>,
    /// The serving channel's wire format.
    pub upstream: Option<Cow<'static, str>>,
    /// Prompt tokens served from the provider's cache (part of `prompt_tokens`).
    pub cache_read_tokens: Option<i64>,
    /// Prompt tokens written to the provider's cache (part of `prompt_tokens`).
    pub cache_write_tokens: Option<i64>,
}

/// A stored log row.
#[derive(Debug, Clone, Serialize)]
pub struct LogRow {
    pub id: i64,
    #[serde(flatten)]
    pub record: LogRecord,
}

/// Filters and paging for the log listing.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub user_id: Option<String>,
    /// One request's records (its attempts share the id).
    pub request_id: Option<String>,
    pub model: Option<String>,
    /// Models whose name starts with this, letter case ignored (what a person typing in
    /// a filter box means: `gpt-4` finds `gpt-4o-mini`).
    pub model_prefix: Option<String>,
    pub channel_id: Option<i64>,
    pub token_id: Option<i64>,
    pub status: Option<i64>,
    /// Only failed requests (status ≥ 400) when true, only successful ones when false.
    pub failed: Option<bool>,
    /// Unix seconds, inclusive.
    pub start: Option<i64>,
    /// Unix seconds, exclusive.
    pub end: Option<i64>,
    /// 1-based.
    pub page: i64,
    pub page_size: i64,
}

fn where_clause(q: &LogQuery) -> (String, Vec<Value>) {
    let mut conds = vec!["1=1".to_string()];
    let mut args: Vec<Value> = vec![];
    if let Some(u) = &q.user_id {
        args.push(u.clone().into());
        conds.push(format!("user_id = ?{}", args.len()));
    }
    if let Some(r) = &q.request_id {
        args.push(r.clone().into());
        conds.push(format!("request_id = ?{}", args.len()));
    }
    if let Some(m) = &q.model {
        args.push(m.clone().into());
        conds.push(format!("model = ?{}", args.len()));
    }
    if let Some(p) = &q.model_prefix {
        args.push(p.to_lowercase().into());
        let n = args.len();
        conds.push(format!("lower(substr(model, 1, length(?{n}))) = ?{n}"));
    }
    if let Some(c) = q.channel_id {
        args.push(c.into());
        conds.push(format!("channel_id = ?{}", args.len()));
    }
    if let Some(t) = q.token_id {
        args.push(t.into());
        conds.push(format!("token_id = ?{}", args.len()));
    }
    if let Some(s) = q.status {
        args.push(s.into());
        conds.push(format!("status = ?{}", args.len()));
    }
    match q.failed {
        Some(true) => conds.push("status >= 400".into()),
        Some(false) => conds.push("status < 400".into()),
        None => {}
    }
    if let Some(s) = q.start {
        args.push((s * 1000).into());
        conds.push(format!("created_at_ms >= ?{}", args.len()));
    }
    if let Some(e) = q.end {
        args.push((e * 1000).into());
        conds.push(format!("created_at_ms < ?{}", args.len()));
    }
    (conds.join(" AND "), args)
}

/// A page of logs, newest first, and the total number matching.
pub fn query(conn: &Connection, q: &LogQuery) -> StoreResult<(Vec<LogRow>, i64)> {
    let (cond, args) = where_clause(q);
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM logs WHERE {cond}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let size = q.page_size.clamp(1, 500);
    let offset = (q.page.max(1) - 1) * size;
    let mut stmt = conn.prepare(&format!(
        "SELECT id, request_id, created_at_ms, user_id, token_id, model, channel_id, endpoint, status, stream, latency_ms,
         ttfb_ms, prompt_tokens, completion_tokens, cost_nano, error, failover, flags, locality, burst,
         ingress, upstream, cache_read_tokens, cache_write_tokens
         FROM logs WHERE {cond} ORDER BY id DESC LIMIT {size} OFFSET {offset}"
    ))?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        Ok(LogRow {
            id: r.get(0)?,
            record: LogRecord {
                request_id: r.get(1)?,
                created_at_ms: r.get(2)?,
                user_id: r.get(3)?,
                token_id: r.get(4)?,
                model: r.get(5)?,
                channel_id: r.get(6)?,
                endpoint: Cow::Owned(r.get(7)?),
                status: r.get(8)?,
                stream: r.get(9)?,
                latency_ms: r.get(10)?,
                ttfb_ms: r.get(11)?,
                prompt_tokens: r.get(12)?,
                completion_tokens: r.get(13)?,
                cost_nano: r.get(14)?,
                error: r.get(15)?,
                failover: r.get(16)?,
                flags: r.get(17)?,
                locality: r.get::<_, Option<String>>(18)?.map(Cow::Owned),
                burst: r.get(19)?,
                ingress: r.get::<_, Option<String>>(20)?.map(Cow::Owned),
                upstream: r.get::<_, Option<String>>(21)?.map(Cow::Owned),
                cache_read_tokens: r.get(22)?,
                cache_write_tokens: r.get(23)?,
            },
        })
    })?;
    Ok((rows.collect::<Result<_, _>>()?, total))
}

/// Per-model usage of one user (or everyone when `user_id` is None) in a time window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsage {
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nano: i64,
}

/// Billing summary rows plus the number of successful requests recorded without usage data
/// (reported as `pre_migration_requests`, the seed's name for requests that predate usage tracking).
pub fn billing_summary(
    conn: &Connection,
    user_id: Option<&str>,
    start: Option<i64>,
    end: Option<i64>,
) -> StoreResult<(Vec<ModelUsage>, i64)> {
    let q = LogQuery {
        user_id: user_id.map(str::to_string),
        start,
        end,
        ..Default::default()
    };
    let (cond, args) = where_clause(&q);
    let mut stmt = conn.prepare(&format!(
        "SELECT model, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_nano), 0)
         FROM logs WHERE {cond} AND model IS NOT NULL AND prompt_tokens IS NOT NULL GROUP BY model ORDER BY model"
    ))?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        Ok(ModelUsage {
            model: r.get(0)?,
            requests: r.get(1)?,
            prompt_tokens: r.get(2)?,
            completion_tokens: r.get(3)?,
            cost_nano: r.get(4)?,
        })
    })?;
    let models: Vec<ModelUsage> = rows.collect::<Result<_, _>>()?;
    let without_usage: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM logs WHERE {cond} AND model IS NOT NULL AND prompt_tokens IS NULL AND status BETWEEN 200 AND 299"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    Ok((models, without_usage))
}

/// Columns of a stored log record, in `insert_logs_sql`'s order.
const LOG_COLUMNS: usize = 23;

/// Row counts of the multi-row inserts: 64, then powers of two for the rest.
const INSERT_SHAPES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// A record's values in the order of [`insert_logs_sql`]'s columns (built directly: 23
/// calls through `&dyn ToSql` per record were 7 % of storing it).
fn log_values(r: &LogRecord) -> [ValueRef<'_>; LOG_COLUMNS] {
    fn int(v: Option<i64>) -> ValueRef<'static> {
        v.map_or(ValueRef::Null, ValueRef::Integer)
    }
    fn text(v: Option<&str>) -> ValueRef<'_> {
        v.map_or(ValueRef::Null, ValueRef::Text)
    }
    [
        ValueRef::Text(&r.request_id),
        ValueRef::Integer(r.created_at_ms),
        text(r.user_id.as_deref()),
        int(r.token_id),
        text(r.model.as_deref()),
        int(r.channel_id),
        ValueRef::Text(&r.endpoint),
        ValueRef::Integer(r.status),
        ValueRef::Integer(i64::from(r.stream)),
        int(r.latency_ms),
        int(r.ttfb_ms),
        int(r.prompt_tokens),
        int(r.completion_tokens),
        ValueRef::Integer(r.cost_nano),
        text(r.error.as_deref()),
        text(r.failover.as_deref()),
        text(r.flags.as_deref()),
        text(r.locality.as_deref()),
        text(r.burst.as_deref()),
        text(r.ingress.as_deref()),
        text(r.upstream.as_deref()),
        int(r.cache_read_tokens),
        int(r.cache_write_tokens),
    ]
}

/// `INSERT INTO logs … VALUES (…), (…)` for `rows` records (one of [`INSERT_SHAPES`]);
/// each shape's text is built once, not once per batch.
///
/// On SQLite the statement is `INSERT OR ROLLBACK`: a multi-row insert that may abort
/// halfway makes SQLite keep a statement journal of every page it touches, so that it can
/// undo just that statement (~6 % of a batch's instructions). The batch's transaction is
/// abandoned on any error anyway (`commit_usage` returns it and the transaction rolls
/// back), so rolling back the whole transaction at once loses nothing more.
fn insert_logs_sql(rows: usize, sqlite: bool) -> &'static str {
    use std::fmt::Write as _;
    type Shapes = [String; INSERT_SHAPES.len()];
    static SQL: std::sync::OnceLock<[Shapes; 2]> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        ["INSERT OR ROLLBACK INTO", "INSERT INTO"].map(|verb| {
            INSERT_SHAPES.map(|rows| {
                let mut sql = format!(
                    "{verb} logs (request_id, created_at_ms, user_id, token_id, model, channel_id, endpoint, status, stream,
         latency_ms, ttfb_ms, prompt_tokens, completion_tokens, cost_nano, error, failover, flags, locality, burst,
         ingress, upstream, cache_read_tokens, cache_write_tokens) VALUES ",
                );
                for row in 0..rows {
                    sql.push_str(if row == 0 { "(" } else { ", (" });
                    for col in 0..LOG_COLUMNS {
                        let sep = if col > 0 { ", " } else { "" };
                        let _ = write!(sql, "{sep}?{}", row * LOG_COLUMNS + col + 1);
                    }
                    sql.push(')');
                }
                sql
            })
        })
    });
    let shape = INSERT_SHAPES
        .iter()
        .position(|&n| n == rows)
        .expect("a row count from INSERT_SHAPES");
    &all[usize::from(!sqlite)][shape]
}

/// Store a batch of settled requests: their log records and the quota they used, in one
/// transaction, so a record and its deduction are never written apart. `lease`: this
/// gateway's instance id when gateways share the database; the costs then come off its
/// quota leases in the same transaction (see `store::leases`).
pub fn commit_usage(
    conn: &mut Connection,
    records: &[LogRecord],
    lease: Option<&str>,
) -> StoreResult<()> {
    // Ordered: gateways sharing a database lock the same rows in the same order.
    let mut deltas: std::collections::BTreeMap<i64, i64> = Default::default();
    let mut user_deltas: std::collections::BTreeMap<&str, i64> = Default::default();
    for r in records {
        if let Some(t) = r.token_id.filter(|_| r.cost_nano != 0) {
            *deltas.entry(t).or_default() += r.cost_nano;
        }
        if let Some(u) = r.user_id.as_deref().filter(|_| r.cost_nano != 0) {
            *user_deltas.entry(u).or_default() += r.cost_nano;
        }
    }
    let tx = conn.transaction()?;
    {
        // Many rows per statement (one round trip on PostgreSQL): chunks of 64, then the
        // rest by powers of two, so a handful of statement shapes are prepared and cached.
        let mut rest = records;
        while !rest.is_empty() {
            let n = if rest.len() >= 64 {
                64
            } else {
                1 << (usize::BITS - 1 - rest.len().leading_zeros())
            };
            let (chunk, tail) = rest.split_at(n);
            // Borrowed here, and (on SQLite) by the statement too: no value is copied.
            let values: Vec<ValueRef<'_>> = chunk.iter().flat_map(log_values).collect();
            tx.execute_borrowed(insert_logs_sql(n, !tx.is_postgres()), &values)?;
            rest = tail;
        }
        let mut upd = tx.prepare_cached(
            "UPDATE tokens SET used_quota_nano = used_quota_nano + ?1 WHERE id = ?2",
        )?;
        for (id, delta) in &deltas {
            upd.execute(crate::store::db::params![delta, id])?;
        }
        // A user's spend moves only used_quota_nano, which no config_rev trigger watches.
        let mut upd_user = tx.prepare_cached(
            "UPDATE users SET used_quota_nano = used_quota_nano + ?1 WHERE id = ?2",
        )?;
        for (id, delta) in &user_deltas {
            upd_user.execute(crate::store::db::params![delta, id])?;
        }
        if let Some(instance) = lease {
            use super::leases::{Kind, spend};
            for (id, delta) in &deltas {
                spend(&tx, instance, Kind::Token, &id.to_string(), *delta)?;
            }
            for (id, delta) in &user_deltas {
                spend(&tx, instance, Kind::User, id, *delta)?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// The settings key of the request-log retention in days (absent or 0: keep every record).
pub const RETENTION_KEY: &str = "log_retention_days";

/// The longest retention accepted (100 years).
pub const MAX_RETENTION_DAYS: i64 = 36_500;

/// How many days request-log records are kept (0: all).
pub fn retention_days(conn: &Connection) -> StoreResult<i64> {
    Ok(super::settings::get(conn, RETENTION_KEY)?
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|d| *d > 0)
        .unwrap_or(0))
}

/// Delete the records created before `before_ms`, a few thousand per statement so the
/// usage writer never waits long; returns how many went.
pub fn prune(conn: &Connection, before_ms: i64) -> StoreResult<usize> {
    const BATCH: usize = 5_000;
    let mut total = 0;
    loop {
        let n = conn.execute(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE created_at_ms < ?1 LIMIT ?2)",
            params![before_ms, BATCH as i64],
        )?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}

/// Apply the retention setting now: delete what is older than it; returns how many went.
pub fn apply_retention(conn: &Connection, now_ms: i64) -> StoreResult<usize> {
    match retention_days(conn)? {
        0 => Ok(0),
        days => prune(conn, now_ms - days * 86_400_000),
    }
}

/// Billed cost of requests served by cloud channels since `since_ms` (the burst budget).
pub fn cloud_spend_since(conn: &Connection, since_ms: i64) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(cost_nano), 0) FROM logs WHERE locality = 'cloud' AND created_at_ms >= ?1",
        [since_ms],
        |r| r.get(0),
    )?)
}

/// Traffic of one minute (for the desktop's charts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MinuteTotals {
    /// Unix minute (`created_at_ms / 60000`).
    pub minute: i64,
    pub requests: i64,
    pub tokens: i64,
    pub cost_nano: i64,
    pub errors: i64,
}

/// Requests, tokens, cost and errors per minute since `since_ms`, oldest first; minutes
/// without traffic are absent.
pub fn per_minute(conn: &Connection, since_ms: i64) -> StoreResult<Vec<MinuteTotals>> {
    let mut stmt = conn.prepare(
        "SELECT created_at_ms / 60000 AS m, COUNT(*),
                COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0),
                COALESCE(SUM(cost_nano), 0), COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0)
         FROM logs WHERE created_at_ms >= ?1 GROUP BY m ORDER BY m",
    )?;
    let rows = stmt.query_map([since_ms], |r| {
        Ok(MinuteTotals {
            minute: r.get(0)?,
            requests: r.get(1)?,
            tokens: r.get(2)?,
            cost_nano: r.get(3)?,
            errors: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Usage of one channel or token over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub requests: i64,
    pub tokens: i64,
    pub cost_nano: i64,
}

fn usage_by(conn: &Connection, column: &str, since_ms: i64) -> StoreResult<Vec<(i64, Usage)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {column}, COUNT(*),
                COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0),
                COALESCE(SUM(cost_nano), 0)
         FROM logs WHERE created_at_ms >= ?1 AND {column} IS NOT NULL GROUP BY {column}"
    ))?;
    let rows = stmt.query_map([since_ms], |r| {
        Ok((
            r.get(0)?,
            Usage {
                requests: r.get(1)?,
                tokens: r.get(2)?,
                cost_nano: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Usage per serving channel since `since_ms`.
pub fn usage_by_channel(conn: &Connection, since_ms: i64) -> StoreResult<Vec<(i64, Usage)>> {
    usage_by(conn, "channel_id", since_ms)
}

/// Usage per token since `since_ms`.
pub fn usage_by_token(conn: &Connection, since_ms: i64) -> StoreResult<Vec<(i64, Usage)>> {
    usage_by(conn, "token_id", since_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch whose insert fails on its 41st row (of 64 in one statement) leaves no
    /// record and no spend behind, on either backend, and the next batch is stored.
    #[test]
    fn a_batch_that_fails_halfway_leaves_nothing_and_the_next_one_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        let (user, token) = store
            .with(|c| crate::store::testing::user_with_token(c, None))
            .unwrap();
        // A unique request id makes a repeated one a constraint violation mid-statement.
        store
            .with(|c| {
                Ok(c.execute_batch("CREATE UNIQUE INDEX logs_test_request ON logs(request_id)")?)
            })
            .unwrap();
        let record = |i: usize| LogRecord {
            request_id: format!("r{i}"),
            created_at_ms: 1_000 + i as i64,
            user_id: Some(user.clone()),
            token_id: Some(token),
            status: 200,
            cost_nano: 10,
            ..Default::default()
        };
        let mut bad: Vec<LogRecord> = (0..70).map(record).collect();
        bad[40].request_id = "r3".into();
        let failed = store.with(|c| commit_usage(c, &bad, None));
        assert!(failed.is_err(), "a repeated request id must fail the batch");
        let counts = |store: &crate::store::Store| {
            store
                .with(|c| {
                    let logs: i64 = c.query_row("SELECT COUNT(*) FROM logs", [], |r| r.get(0))?;
                    let spent: i64 = c.query_row(
                        "SELECT used_quota_nano FROM tokens WHERE id = ?1",
                        [token],
                        |r| r.get(0),
                    )?;
                    let user_spent: i64 = c.query_row(
                        "SELECT used_quota_nano FROM users WHERE id = ?1",
                        [user.as_str()],
                        |r| r.get(0),
                    )?;
                    Ok((logs, spent, user_spent))
                })
                .unwrap()
        };
        assert_eq!(
            counts(&store),
            (0, 0, 0),
            "nothing of the failed batch stays"
        );
        let good: Vec<LogRecord> = (100..170).map(record).collect();
        store.with(|c| commit_usage(c, &good, None)).unwrap();
        assert_eq!(counts(&store), (70, 700, 700));
    }

    #[test]
    fn minutes_count_requests_and_errors_on_either_backend() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        let record = |id: &str, status: i64| LogRecord {
            request_id: id.into(),
            created_at_ms: 120_000 + status,
            status,
            prompt_tokens: Some(3),
            completion_tokens: Some(4),
            cost_nano: 10,
            ..Default::default()
        };
        let minutes = store
            .with(|c| {
                commit_usage(
                    c,
                    &[record("a", 200), record("b", 500), record("c", 200)],
                    None,
                )?;
                per_minute(c, 0)
            })
            .unwrap();
        assert_eq!(
            minutes,
            vec![MinuteTotals {
                minute: 2,
                requests: 3,
                tokens: 21,
                cost_nano: 30,
                errors: 1,
            }]
        );
    }
}
