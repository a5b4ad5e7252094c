//! SQLite store: one connection behind a mutex, WAL, busy timeout, embedded migrations.
//!
//! Control-plane writes happen here, each in one transaction. The data plane never calls
//! into the store on a request's path: it reads the routing snapshot and hands usage to
//! the background writer (`crate::live::writer`).

pub mod catalog;
pub mod channels;
pub mod governance;
pub mod groups;
pub mod invitations;
pub mod logs;
pub mod prices;
pub mod ratios;
pub mod redemptions;
pub mod sealed;
pub mod settings;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// Store errors. `NotFound`, `Conflict`, `Invalid` and `Forbidden` carry messages meant
/// for the caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// True when SQLite reported that the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DiskFull)
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (creating if needed) the database at `path` and apply pending migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let mut conn = open_connection(path)?;
        // The database holds personal data and (sealed) provider keys: owner only.
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            if p.exists() {
                let _ = crate::secure::set_mode(&p, 0o600);
            }
        }
        embedded::migrations::runner()
            .run(&mut conn)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        sealed::seal_plain_keys(&mut conn)?;
        catalog::ensure_shipped(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` with the connection on the current thread (CLI, start-up, blocking contexts).
    pub fn with<R>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<R>) -> StoreResult<R> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Run `f` with the connection on tokio's blocking pool (async handlers).
    pub async fn run<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<R> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.with(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The routing configuration revision; moves on every routing-relevant change by any process.
    pub fn config_rev(conn: &Connection) -> StoreResult<i64> {
        Ok(
            conn.query_row("SELECT v FROM meta WHERE k = 'config_rev'", [], |r| {
                r.get(0)
            })?,
        )
    }
}

/// Open a connection with the project's pragmas (also used by the config watcher).
pub fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

pub use crate::vocab::{now_ms, now_secs};

/// Split a comma list, trimming blanks and dropping empties and duplicates (order kept).
pub fn split_list(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/burncloud.db");
        Store::open(&path).unwrap();
        let store = Store::open(&path).unwrap();
        let n: i64 = store
            .with(|c| {
                Ok(
                    c.query_row("SELECT COUNT(*) FROM refinery_schema_history", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap();
        assert!(n >= 1);
        let mode: String = store
            .with(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn users_from_before_governance_keep_unlimited_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = open_connection(&path).unwrap();
            embedded::migrations::runner()
                .set_target(refinery::Target::Version(4))
                .run(&mut conn)
                .unwrap();
            conn.execute(
                "INSERT INTO users (id, username, password_hash, role, created_at) VALUES ('u1', 'old', 'x', 'user', 0)",
                [],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let u = store.with(|c| users::find(c, "old")).unwrap();
        assert_eq!(u.quota_nano, -1);
        assert_eq!(u.balance_nano(), None);
        // New registrations follow the governance defaults instead.
        let n = store.with(|c| users::create(c, "new", None, "x")).unwrap();
        assert_eq!((n.role, n.balance_nano()), (users::Role::User, Some(0)));
    }

    #[test]
    fn split_list_trims_and_dedups() {
        assert_eq!(split_list(" a, b,,a ,c "), vec!["a", "b", "c"]);
        assert!(split_list(" , ").is_empty());
    }
}
