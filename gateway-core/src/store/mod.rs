//! The store: one connection behind a mutex, on SQLite (the embedded default: WAL, busy
//! timeout) or PostgreSQL (`DATABASE_URL=postgres://…`, several gateways on one database),
//! with embedded migrations for each (`migrations/sqlite`, `migrations/postgres`). The
//! modules below speak [`db`]'s rusqlite-shaped API, the same on both backends.
//!
//! Control-plane writes happen here, each in one transaction. The data plane never calls
//! into the store on a request's path: it reads the routing snapshot and hands usage to
//! the background writer (`crate::live::writer`).

pub mod catalog;
pub mod channels;
pub mod conversations;
pub mod db;
pub mod governance;
pub mod groups;
pub mod invitations;
pub mod leases;
pub mod logs;
pub mod prices;
pub mod ratios;
pub mod redemptions;
pub mod sealed;
pub mod settings;
pub mod testing;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use db::{Connection, Location};

mod embedded {
    refinery::embed_migrations!("../migrations/sqlite");
}

mod embedded_pg {
    refinery::embed_migrations!("../migrations/postgres");
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
    Db(#[from] db::Error),
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

/// A refused field of a write: the API's name for it (`base_url`, `weight`, …) and why, in
/// the words of the API's error message. A write's checks find every refused field (a
/// form marks them all at once); the write itself reports the first, as the API does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
    /// How the write reports it (`Invalid`, or `NotFound`/`Conflict` for what the
    /// database holds).
    pub kind: Refusal,
}

/// The kind of a [`FieldError`] as the write's [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    NotFound,
    Conflict,
}

impl FieldError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
            kind: Refusal::Invalid,
        }
    }
    pub fn not_found(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            kind: Refusal::NotFound,
            ..FieldError::invalid(field, message)
        }
    }
    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            kind: Refusal::Conflict,
            ..FieldError::invalid(field, message)
        }
    }
}

impl From<FieldError> for StoreError {
    fn from(e: FieldError) -> Self {
        match e.kind {
            Refusal::Invalid => StoreError::Invalid(e.message),
            Refusal::NotFound => StoreError::NotFound(e.message),
            Refusal::Conflict => StoreError::Conflict(e.message),
        }
    }
}

/// Ok when no field was refused, else the first refusal (what the API reports).
pub fn first_refusal(errors: Vec<FieldError>) -> StoreResult<()> {
    match errors.into_iter().next() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

impl StoreError {
    /// True when the database reported that the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Db(e) if e.is_disk_full())
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    location: Location,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location.display())
            .finish()
    }
}

impl Store {
    /// Open (creating if needed) the SQLite database at `path` and apply pending migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::connect(&Location::Sqlite(path.to_path_buf()))
    }

    /// Open the database at `location` and apply pending migrations.
    pub fn connect(location: &Location) -> StoreResult<Self> {
        if matches!(location, Location::Postgres { .. }) {
            return off_runtime(|| Self::connect_here(location));
        }
        Self::connect_here(location)
    }

    fn connect_here(location: &Location) -> StoreResult<Self> {
        let mut conn = Self::connection(location)?;
        match location {
            Location::Sqlite(path) => {
                // The database holds personal data and (sealed) provider keys: owner only.
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    let p = PathBuf::from(p);
                    if p.exists() {
                        let _ = crate::secure::set_mode(&p, 0o600);
                    }
                }
                let lite = conn.sqlite().expect("a SQLite connection");
                embedded::migrations::runner()
                    .run(lite)
                    .map_err(|e| StoreError::Migration(e.to_string()))?;
            }
            Location::Postgres { .. } => {
                let pg = conn.postgres().expect("a PostgreSQL connection");
                // Several gateways may start at once: one migrates, the others wait.
                pg.batch_execute("SELECT pg_advisory_lock(7)")
                    .map_err(|e| StoreError::Db(e.into()))?;
                let migrated = embedded_pg::migrations::runner()
                    .run(pg)
                    .map_err(|e| StoreError::Migration(e.to_string()));
                let unlocked = pg.batch_execute("SELECT pg_advisory_unlock(7)");
                migrated?;
                unlocked.map_err(|e| StoreError::Db(e.into()))?;
            }
        }
        sealed::seal_plain_keys(&mut conn)?;
        catalog::ensure_shipped(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            location: location.clone(),
        })
    }

    /// A new connection to `location` (no migrations): the config watcher's own.
    pub fn connection(location: &Location) -> StoreResult<Connection> {
        match location {
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Open {
                        path: path.to_path_buf(),
                        source,
                    })?;
                }
                Ok(db::open_sqlite(path)?)
            }
            Location::Postgres { url, secret } => Connection::connect_postgres(url, secret)
                .map_err(|e| {
                    StoreError::Migration(format!(
                        "cannot connect to PostgreSQL at {}: {e}",
                        location.display()
                    ))
                }),
        }
    }

    /// Where the database is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The SQLite database file (None on PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::Sqlite(p) => Some(p),
            Location::Postgres { .. } => None,
        }
    }

    /// Run `f` with the connection on the current thread (CLI, start-up, blocking contexts).
    pub fn with<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send,
        F: FnOnce(&mut Connection) -> StoreResult<R> + Send,
    {
        if matches!(self.location, Location::Postgres { .. }) {
            return off_runtime(|| self.locked(f));
        }
        self.locked(f)
    }

    fn locked<R>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<R>) -> StoreResult<R> {
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
        tokio::task::spawn_blocking(move || store.locked(f))
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

pub use crate::vocab::{now_ms, now_secs};

/// Run `f` where the PostgreSQL client may block: here, or on a plain thread when called
/// from inside a tokio runtime (the client blocks on its own small runtime, which tokio
/// refuses inside another).
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

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
            let mut conn = db::open_sqlite(&path).unwrap();
            embedded::migrations::runner()
                .set_target(refinery::Target::Version(4))
                .run(conn.sqlite().unwrap())
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
