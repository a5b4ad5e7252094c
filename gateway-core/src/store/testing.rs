//! The database a test runs on. Tests call [`location`] instead of naming a SQLite file,
//! so the same suite runs on both backends: SQLite by default, PostgreSQL when
//! `BURNCLOUD_TEST_BACKEND=postgres` (a fresh database per test directory on the server
//! `BURNCLOUD_TEST_POSTGRES` names, e.g. the one `cargo xtask test` starts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::Location;

/// The environment variable that selects the backend (`postgres`; else SQLite).
pub const BACKEND_ENV: &str = "BURNCLOUD_TEST_BACKEND";
/// The environment variable with the PostgreSQL server's URL (a role that may create databases).
pub const URL_ENV: &str = "BURNCLOUD_TEST_POSTGRES";

/// True when tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(BACKEND_ENV).is_ok_and(|v| v == "postgres")
}

/// The database of the test that works in `dir`: `dir/burncloud.db`, or a PostgreSQL
/// database made for `dir` on first call (the same one on later calls, as a second
/// process would see it). Panics with the reason when PostgreSQL is selected but unusable:
/// a missing prerequisite is a failure, not a skip.
pub fn location(dir: &Path) -> Location {
    if !on_postgres() {
        return Location::Sqlite(dir.join("burncloud.db"));
    }
    static MADE: OnceLock<Mutex<HashMap<PathBuf, Location>>> = OnceLock::new();
    let mut made = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    made.entry(dir.to_path_buf())
        .or_insert_with(create_database)
        .clone()
}

/// A new, empty PostgreSQL database on the test server.
pub fn create_database() -> Location {
    let admin = std::env::var(URL_ENV).unwrap_or_else(|_| {
        panic!("{BACKEND_ENV}=postgres needs {URL_ENV}=postgres://user:password@127.0.0.1:port/postgres (`cargo xtask postgres -- cargo test` starts one)")
    });
    let name = format!("bc_test_{}", uuid::Uuid::new_v4().simple());
    let run = || -> Result<(), postgres::Error> {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)?;
        client.batch_execute(&format!("CREATE DATABASE {name}"))
    };
    // A plain thread: the client blocks on its own runtime, which tokio refuses inside a test's.
    if let Err(e) = std::thread::scope(|s| s.spawn(run).join().expect("no panic")) {
        panic!(
            "cannot create a test database on {}: {e}",
            super::db::mask_password(&admin)
        );
    }
    Location::Postgres {
        url: with_database(&admin, &name),
        secret: format!("test-secret-{}", uuid::Uuid::new_v4().simple()),
    }
}

/// `postgres://u:p@h:port/postgres?x` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A user `u` with one token `t` (limited to `quota_limit_nano` when given): the user's id
/// and the token's.
pub fn user_with_token(
    conn: &mut super::Connection,
    quota_limit_nano: Option<i64>,
) -> super::StoreResult<(String, i64)> {
    let u = super::users::create(conn, "u", None, "x")?;
    let t = super::tokens::create(
        conn,
        &u.id,
        "hash",
        "sk-t",
        super::tokens::TokenFields {
            name: Some("t".into()),
            quota_limit_nano,
            ..Default::default()
        },
    )?;
    Ok((u.id, t.id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u:p@127.0.0.1:5/postgres", "x"),
            "postgres://u:p@127.0.0.1:5/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h:5", "x"),
            "postgres://h:5/x"
        );
    }
}
