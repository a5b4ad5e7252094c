//! One database API over two backends: SQLite (rusqlite, the embedded default) and
//! PostgreSQL (the `postgres` client, for several gateways on one database).
//!
//! The surface follows rusqlite's (`Connection`, `Transaction`, `Row::get`, `params!`,
//! `OptionalExtension`), so the store's modules read the same on both backends. SQL is
//! written once, in the subset both speak; numbered parameters `?1` become `$1` for
//! PostgreSQL (translated once per statement, and the prepared statement is cached).
//! Every integer column is BIGINT on PostgreSQL, flags are 0/1 integers on both, so values
//! cross as i64, f64, text, bytes or NULL ([`ValueRef`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use postgres::types::{FromSql as PgFromSql, IsNull, ToSql as PgToSql, Type, to_sql_checked};

/// Database errors of either backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("{msg} (statement: {sql})", msg = pg_message(.1), sql = .0)]
    Prepare(String, postgres::Error),
    #[error("query returned no rows")]
    QueryReturnedNoRows,
    #[error("column {0}: {1}")]
    Conversion(usize, String),
}

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

impl Error {
    /// True when the database reported that its disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            Error::Postgres(e) => e.code() == Some(&postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }

    /// True when a unique or primary-key constraint refused the change.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
                    && (e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
            }
            Error::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value passed to or read from the database.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// An owned [`ValueRef`], for parameter lists built at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for ValueRef<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as V};
        Ok(ToSqlOutput::Borrowed(match *self {
            ValueRef::Null => V::Null,
            ValueRef::Integer(i) => V::Integer(i),
            ValueRef::Real(f) => V::Real(f),
            ValueRef::Text(s) => V::Text(s.as_bytes()),
            ValueRef::Blob(b) => V::Blob(b),
        }))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl Value {
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// A Rust value that can be a statement parameter.
pub trait ToSql {
    fn to_value(&self) -> ValueRef<'_>;
}

macro_rules! int_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> ValueRef<'_> {
                ValueRef::Integer(*self as i64)
            }
        }
    )*};
}
int_to_sql!(i8, i16, i32, i64, u8, u16, u32);

impl ToSql for u64 {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToSql for usize {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToSql for bool {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::from(*self))
    }
}

impl ToSql for f64 {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}

impl ToSql for str {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToSql for String {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToSql for std::borrow::Cow<'_, str> {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToSql for [u8] {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToSql for Vec<u8> {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToSql for Value {
    fn to_value(&self) -> ValueRef<'_> {
        self.as_ref()
    }
}

impl ToSql for ValueRef<'_> {
    fn to_value(&self) -> ValueRef<'_> {
        *self
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> ValueRef<'_> {
        match self {
            Some(v) => v.to_value(),
            None => ValueRef::Null,
        }
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

impl<T: ToSql + ?Sized> ToSql for std::sync::Arc<T> {
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

/// A statement's parameters: `[]`, `[a]`, `params![a, b]`, `params_from_iter(list)` or a
/// slice of [`ValueRef`]s. They are bound borrowed: nothing is copied before the database
/// driver's own copy.
pub trait Params {
    /// Hand the parameters, borrowed, to `f`.
    fn bind<R>(self, f: impl FnOnce(&[ValueRef<'_>]) -> R) -> R;
}

impl Params for [&dyn ToSql; 0] {
    fn bind<R>(self, f: impl FnOnce(&[ValueRef<'_>]) -> R) -> R {
        f(&[])
    }
}

impl Params for &[&dyn ToSql] {
    fn bind<R>(self, f: impl FnOnce(&[ValueRef<'_>]) -> R) -> R {
        let values: Vec<ValueRef<'_>> = self.iter().map(|p| p.to_value()).collect();
        f(&values)
    }
}

impl Params for &[ValueRef<'_>] {
    fn bind<R>(self, f: impl FnOnce(&[ValueRef<'_>]) -> R) -> R {
        f(self)
    }
}

macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn bind<R>(self, f: impl FnOnce(&[ValueRef<'_>]) -> R) -> R {
                f(&self.each_ref().map(|p| p.to_value()))
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// Parameters from an iterator of values.
pub struct ParamsFromIter<I>(I);

/// Parameters from an iterator (rusqlite's `params_from_iter`).
pub fn params_from_iter<I>(iter: I) -> ParamsFromIter<I> {
    ParamsFromIter(iter)
}

impl<I> Params for ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    fn bind<R>(self, f: impl FnOnce(&[ValueRef<'_>]) -> R) -> R {
        let items: Vec<I::Item> = self.0.into_iter().collect();
        let values: Vec<ValueRef<'_>> = items.iter().map(|p| p.to_value()).collect();
        f(&values)
    }
}

/// `params![a, b, c]`: a parameter list of mixed types.
#[macro_export]
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::db::ToSql]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::ToSql),+] as &[&dyn $crate::store::db::ToSql]
    };
}
pub use crate::params;

/// A Rust value that can be read from a column.
pub trait FromSql: Sized {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String>;
}

impl FromSql for i64 {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Integer(i) => Ok(i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

macro_rules! int_from_sql {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_from_sql!(i32, u16, u32, u64, usize);

impl FromSql for bool {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}

impl FromSql for f64 {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromSql for String {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Text(s) => Ok(s.to_string()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromSql for Vec<u8> {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            ValueRef::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl FromSql for Value {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        Ok(match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(s) => Value::Text(s.to_string()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A column index (a position; rusqlite's name lookup is not used by the store).
pub trait RowIndex: Copy {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One result row.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// The value of column `idx` as `T`.
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        let i = idx.index();
        match self {
            Row::Sqlite(r) => {
                let v = r.get_ref(i)?;
                let v = match v {
                    rusqlite::types::ValueRef::Null => ValueRef::Null,
                    rusqlite::types::ValueRef::Integer(n) => ValueRef::Integer(n),
                    rusqlite::types::ValueRef::Real(f) => ValueRef::Real(f),
                    rusqlite::types::ValueRef::Text(t) => ValueRef::Text(
                        std::str::from_utf8(t).map_err(|e| Error::Conversion(i, e.to_string()))?,
                    ),
                    rusqlite::types::ValueRef::Blob(b) => ValueRef::Blob(b),
                };
                T::from_value(v).map_err(|e| Error::Conversion(i, e))
            }
            Row::Postgres(r) => {
                let cell: Cell = r.try_get(i)?;
                T::from_value(cell.0.as_ref()).map_err(|e| Error::Conversion(i, e))
            }
        }
    }
}

/// `.optional()` on a single-row result: no row is `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionBehavior {
    /// Reads see one state; writes wait for the write lock when they come.
    Deferred,
    /// Take the write lock now: read-modify-write without a lost update. On PostgreSQL an
    /// advisory lock held to the end of the transaction orders writers across processes,
    /// as SQLite's single writer does.
    Immediate,
}

/// The advisory-lock key of [`TransactionBehavior::Immediate`] on PostgreSQL.
const WRITE_LOCK: i64 = 0x4275_726e_436c_6f75; // "BurnClou"

/// Which database a store opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://user:password@host:port/db`), and the
    /// secret every gateway on it shares (`JWT_SECRET`), from which the provider-key
    /// sealing key is derived.
    Postgres { url: String, secret: String },
}

impl Location {
    /// The connection string with its password masked, for messages and logs.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres { url, .. } => mask_password(url),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

struct Pg {
    /// Always `Some` until dropped.
    client: Option<postgres::Client>,
    /// Prepared statements by their SQLite-dialect text.
    statements: HashMap<String, postgres::Statement>,
}

impl Pg {
    fn client(&mut self) -> &mut postgres::Client {
        self.client.as_mut().expect("an open PostgreSQL client")
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Closing blocks on the client's own runtime, which tokio refuses inside another:
        // a store dropped by an async task closes its connection on a plain thread.
        if let Some(client) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("burncloud-pg-close".into())
                    .spawn(move || drop(client));
            } else {
                drop(client);
            }
        }
    }
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<Pg>>),
}

/// A connection to either backend.
pub struct Connection {
    /// SQLite statements [`Connection::execute_borrowed`] prepared itself. Declared before
    /// `inner`: finalized before the connection they belong to is closed.
    borrowed: RefCell<Vec<Borrowed>>,
    inner: Inner,
    /// PostgreSQL: the shared secret the provider-key sealing key derives from.
    secret: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Sqlite(c) => f.debug_tuple("Sqlite").field(&c.path()).finish(),
            Inner::Postgres(_) => f.write_str("Postgres"),
        }
    }
}

impl Connection {
    /// Wrap an open SQLite connection.
    pub fn from_sqlite(conn: rusqlite::Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(256);
        Connection {
            borrowed: RefCell::new(Vec::new()),
            inner: Inner::Sqlite(conn),
            secret: None,
        }
    }

    /// Connect to PostgreSQL.
    pub fn connect_postgres(url: &str, secret: &str) -> Result<Self> {
        let client = postgres::Client::connect(url, postgres::NoTls)?;
        Ok(Connection {
            borrowed: RefCell::new(Vec::new()),
            inner: Inner::Postgres(Box::new(RefCell::new(Pg {
                client: Some(client),
                statements: HashMap::new(),
            }))),
            secret: Some(secret.to_string()),
        })
    }

    /// The shared secret of a PostgreSQL connection.
    pub fn shared_secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// True on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, Inner::Postgres(_))
    }

    /// The SQLite file (None on PostgreSQL and for in-memory databases).
    pub fn path(&self) -> Option<&str> {
        match &self.inner {
            Inner::Sqlite(c) => c.path(),
            Inner::Postgres(_) => None,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, migrations).
    pub fn sqlite(&mut self) -> Option<&mut rusqlite::Connection> {
        match &mut self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    /// The PostgreSQL client, for migrations.
    pub fn postgres(&mut self) -> Option<&mut postgres::Client> {
        match &mut self.inner {
            Inner::Sqlite(_) => None,
            Inner::Postgres(pg) => Some(pg.get_mut().client()),
        }
    }

    fn with_pg<R>(
        pg: &RefCell<Pg>,
        sql: &str,
        values: &[ValueRef<'_>],
        f: impl FnOnce(
            &mut postgres::Client,
            &postgres::Statement,
            &[&(dyn PgToSql + Sync)],
        ) -> Result<R>,
    ) -> Result<R> {
        let mut pg = pg.borrow_mut();
        let pg = &mut *pg;
        let stmt = match pg.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = pg
                    .client()
                    .prepare(&to_postgres(sql))
                    .map_err(|e| Error::Prepare(sql.to_string(), e))?;
                pg.statements.insert(sql.to_string(), s.clone());
                s
            }
        };
        let args: Vec<&(dyn PgToSql + Sync)> =
            values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
        f(pg.client(), &stmt, &args)
    }

    /// Run a statement; the number of rows changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        params.bind(|values| match &self.inner {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter()))?)
            }
            Inner::Postgres(pg) => Self::with_pg(pg, sql, values, |client, stmt, args| {
                Ok(client.execute(stmt, args)? as usize)
            }),
        })
    }

    /// [`Connection::execute`] for a statement whose text is a `'static` string, run many
    /// times with many text values (the usage writer's multi-row log insert). On SQLite
    /// its text values are bound where they lie (`SQLITE_STATIC`), not copied: rusqlite
    /// binds every text as `SQLITE_TRANSIENT`, a malloc, a copy and a free per value,
    /// ~30 % of what storing a log record cost. The statement is prepared once per
    /// connection and kept (by the address of its text).
    pub fn execute_borrowed(&self, sql: &'static str, values: &[ValueRef<'_>]) -> Result<usize> {
        let Inner::Sqlite(c) = &self.inner else {
            return self.execute(sql, values);
        };
        let mut cache = self.borrowed.borrow_mut();
        let at = match cache.iter().position(|b| std::ptr::eq(b.sql, sql)) {
            Some(at) => at,
            None => {
                cache.push(Borrowed::prepare(c, sql)?);
                cache.len() - 1
            }
        };
        cache[at].execute(c, values)
    }

    /// Run several statements without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(pg) => Ok(pg.borrow_mut().client().batch_execute(sql)?),
        }
    }

    /// Every row of a query, mapped by `f`.
    pub fn query_all<T, P, F>(&self, sql: &str, params: P, mut f: F) -> Result<Vec<T>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        params.bind(|values| match &self.inner {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Inner::Postgres(pg) => {
                let rows = Self::with_pg(pg, sql, values, |client, stmt, args| {
                    Ok(client.query(stmt, args)?)
                })?;
                rows.iter().map(|r| f(&Row::Postgres(r))).collect()
            }
        })
    }

    /// The first row of a query, mapped by `f`; no row is [`Error::QueryReturnedNoRows`].
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        params.bind(|values| match &self.inner {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(Error::QueryReturnedNoRows),
                }
            }
            Inner::Postgres(pg) => {
                let row = Self::with_pg(pg, sql, values, |client, stmt, args| {
                    Ok(client.query_opt(stmt, args)?)
                })?;
                match row {
                    Some(r) => f(&Row::Postgres(&r)),
                    None => Err(Error::QueryReturnedNoRows),
                }
            }
        })
    }

    /// A statement to run several times (the text is prepared and cached on first use).
    pub fn prepare<'c>(&'c self, sql: &str) -> Result<Statement<'c>> {
        Ok(Statement {
            conn: self,
            sql: sql.to_string(),
        })
    }

    /// Same as [`Connection::prepare`] (every statement is cached).
    pub fn prepare_cached<'c>(&'c self, sql: &str) -> Result<Statement<'c>> {
        self.prepare(sql)
    }

    /// The id the last INSERT into a table with a generated id received.
    pub fn last_insert_rowid(&self) -> i64 {
        match &self.inner {
            Inner::Sqlite(c) => c.last_insert_rowid(),
            Inner::Postgres(_) => self
                .query_row("SELECT lastval()", [], |r| r.get(0))
                .unwrap_or(0),
        }
    }

    /// Begin a deferred transaction.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.transaction_with_behavior(TransactionBehavior::Deferred)
    }

    /// Begin a transaction.
    pub fn transaction_with_behavior(
        &mut self,
        behavior: TransactionBehavior,
    ) -> Result<Transaction<'_>> {
        let begin = match (&self.inner, behavior) {
            (Inner::Sqlite(_), TransactionBehavior::Deferred) => "BEGIN DEFERRED".to_string(),
            (Inner::Sqlite(_), TransactionBehavior::Immediate) => "BEGIN IMMEDIATE".to_string(),
            (Inner::Postgres(_), TransactionBehavior::Deferred) => "BEGIN".to_string(),
            (Inner::Postgres(_), TransactionBehavior::Immediate) => {
                format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
            }
        };
        self.execute_batch(&begin)?;
        Ok(Transaction {
            conn: self,
            open: true,
        })
    }

    /// Begin a read-only transaction that sees one consistent state of the database.
    pub fn read_snapshot(&mut self) -> Result<Transaction<'_>> {
        let begin = match &self.inner {
            Inner::Sqlite(_) => "BEGIN DEFERRED",
            Inner::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        self.execute_batch(begin)?;
        Ok(Transaction {
            conn: self,
            open: true,
        })
    }
}

/// A SQLite statement prepared on the connection's handle, for
/// [`Connection::execute_borrowed`].
struct Borrowed {
    sql: &'static str,
    stmt: std::ptr::NonNull<rusqlite::ffi::sqlite3_stmt>,
}

// The statement is used only through its `Connection`, which is used by one thread at a
// time (as rusqlite's own cached statements are).
unsafe impl Send for Borrowed {}

impl Borrowed {
    fn prepare(conn: &rusqlite::Connection, sql: &'static str) -> Result<Borrowed> {
        use rusqlite::ffi;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: the handle is the open connection's; the text is read with its length
        // and copied by SQLite; `stmt` receives a new statement or null.
        let rc = unsafe {
            let db = conn.handle();
            ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr().cast(),
                i32::try_from(sql.len()).expect("statement text below 2 GB"),
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_error(conn, rc));
        }
        let stmt = std::ptr::NonNull::new(stmt)
            .ok_or_else(|| Error::Conversion(0, format!("no statement in {sql:?}")))?;
        Ok(Borrowed { sql, stmt })
    }

    /// Bind every parameter, step to the end, and unbind: the borrowed texts are not
    /// referred to after this returns.
    fn execute(&self, conn: &rusqlite::Connection, values: &[ValueRef<'_>]) -> Result<usize> {
        use rusqlite::ffi;
        let stmt = self.stmt.as_ptr();
        // SAFETY: `stmt` is a live statement of `conn` (finalized only when the
        // connection drops). Texts and blobs are bound SQLITE_STATIC: they must stay
        // valid while the statement may read them, which is until `sqlite3_reset` and
        // `sqlite3_clear_bindings` below, within this call, while `values` is borrowed.
        unsafe {
            let expected = ffi::sqlite3_bind_parameter_count(stmt);
            if usize::try_from(expected) != Ok(values.len()) {
                return Err(rusqlite::Error::InvalidParameterCount(
                    values.len(),
                    usize::try_from(expected).unwrap_or(0),
                )
                .into());
            }
            let mut rc = ffi::SQLITE_OK;
            for (i, v) in values.iter().enumerate() {
                let col = (i + 1) as std::ffi::c_int;
                rc = match *v {
                    ValueRef::Null => ffi::sqlite3_bind_null(stmt, col),
                    ValueRef::Integer(n) => ffi::sqlite3_bind_int64(stmt, col, n),
                    ValueRef::Real(f) => ffi::sqlite3_bind_double(stmt, col, f),
                    ValueRef::Text(t) => ffi::sqlite3_bind_text64(
                        stmt,
                        col,
                        if t.is_empty() {
                            c"".as_ptr()
                        } else {
                            t.as_ptr().cast()
                        },
                        t.len() as ffi::sqlite3_uint64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as std::ffi::c_uchar,
                    ),
                    ValueRef::Blob(b) => ffi::sqlite3_bind_blob64(
                        stmt,
                        col,
                        if b.is_empty() {
                            c"".as_ptr().cast()
                        } else {
                            b.as_ptr().cast()
                        },
                        b.len() as ffi::sqlite3_uint64,
                        ffi::SQLITE_STATIC(),
                    ),
                };
                if rc != ffi::SQLITE_OK {
                    break;
                }
            }
            if rc == ffi::SQLITE_OK {
                rc = loop {
                    match ffi::sqlite3_step(stmt) {
                        ffi::SQLITE_ROW => continue,
                        done => break done,
                    }
                };
            }
            let err = (rc != ffi::SQLITE_DONE).then(|| sqlite_error(conn, rc));
            let changes = ffi::sqlite3_changes64(conn.handle());
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
            match err {
                Some(e) => Err(e),
                None => Ok(usize::try_from(changes).unwrap_or(0)),
            }
        }
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        // SAFETY: the statement is finalized once, before its connection closes
        // (`Connection::borrowed` is declared before `Connection::inner`).
        unsafe {
            rusqlite::ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// The connection's error for result code `rc`, with SQLite's message.
fn sqlite_error(conn: &rusqlite::Connection, rc: std::ffi::c_int) -> Error {
    // SAFETY: the handle is the open connection's; the message is copied at once.
    let msg = unsafe {
        let db = conn.handle();
        let code = rusqlite::ffi::sqlite3_extended_errcode(db);
        let m = rusqlite::ffi::sqlite3_errmsg(db);
        let text =
            (!m.is_null()).then(|| std::ffi::CStr::from_ptr(m).to_string_lossy().into_owned());
        (code, text)
    };
    // The extended code says which constraint; fall back on `rc` if it was cleared.
    let code = if msg.0 & 0xff == rc & 0xff { msg.0 } else { rc };
    Error::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(code),
        msg.1,
    ))
}

/// A prepared statement (rusqlite's shape: `query_map`, `execute`).
pub struct Statement<'c> {
    conn: &'c Connection,
    sql: String,
}

impl Statement<'_> {
    /// Every row mapped by `f`.
    pub fn query_map<T, P, F>(&mut self, params: P, f: F) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        let mut f = f;
        let rows = self.conn.query_all(&self.sql, params, |r| Ok(f(r)))?;
        Ok(rows.into_iter())
    }

    /// Run the statement.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.conn.execute(&self.sql, params)
    }
}

/// A transaction; rolled back when dropped without [`Transaction::commit`].
pub struct Transaction<'c> {
    conn: &'c mut Connection,
    open: bool,
}

impl Transaction<'_> {
    /// Commit.
    pub fn commit(mut self) -> Result<()> {
        self.open = false;
        self.conn.execute_batch("COMMIT")
    }

    /// Roll back.
    pub fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.conn.execute_batch("ROLLBACK")
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// SQLite's `?N` and `?` parameters as PostgreSQL's `$N`, outside quotes.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next_bare = 0u32;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                out.push('$');
                if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    while let Some(d) = chars.peek().copied().filter(|d| d.is_ascii_digit()) {
                        out.push(d);
                        chars.next();
                    }
                } else {
                    next_bare += 1;
                    out.push_str(&next_bare.to_string());
                }
            }
            None => out.push(c),
        }
    }
    out
}

impl PgToSql for ValueRef<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (*self, ty) {
            (ValueRef::Null, _) => Ok(IsNull::Yes),
            (ValueRef::Integer(i), t) if *t == Type::INT8 => i.to_sql(ty, out),
            (ValueRef::Integer(i), t) if *t == Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
            (ValueRef::Integer(i), t) if *t == Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
            (ValueRef::Integer(i), t) if *t == Type::FLOAT8 => (i as f64).to_sql(ty, out),
            (ValueRef::Integer(i), t) if *t == Type::BOOL => (i != 0).to_sql(ty, out),
            (ValueRef::Integer(i), t) if is_text(t) => i.to_string().as_str().to_sql(ty, out),
            (ValueRef::Real(f), t) if *t == Type::FLOAT8 => f.to_sql(ty, out),
            (ValueRef::Real(f), t) if *t == Type::FLOAT4 => (f as f32).to_sql(ty, out),
            (ValueRef::Real(f), t) if is_text(t) => f.to_string().as_str().to_sql(ty, out),
            (ValueRef::Text(s), t) if is_text(t) => s.to_sql(ty, out),
            (ValueRef::Text(s), t) if *t == Type::INT8 => s.trim().parse::<i64>()?.to_sql(ty, out),
            (ValueRef::Blob(b), t) if *t == Type::BYTEA => b.to_sql(ty, out),
            (v, t) => Err(format!("cannot send {v:?} as a PostgreSQL {t}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(t: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(t)
}

/// A PostgreSQL value decoded into the shared value model.
struct Cell(Value);

impl<'a> PgFromSql<'a> for Cell {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let v = match ty {
            t if *t == Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            t if *t == Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            t if *t == Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            t if *t == Type::OID => Value::Integer(u32::from_sql(ty, raw)?.into()),
            t if *t == Type::BOOL => Value::Integer(bool::from_sql(ty, raw)?.into()),
            t if *t == Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            t if *t == Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            t if *t == Type::NUMERIC => numeric(raw)?,
            t if *t == Type::BYTEA => Value::Blob(raw.to_vec()),
            t if is_text(t) => Value::Text(String::from_sql(ty, raw)?),
            t => return Err(format!("unsupported PostgreSQL column type {t}").into()),
        };
        Ok(Cell(v))
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A binary NUMERIC (what `SUM` of BIGINT returns) as an integer when it has no fraction,
/// else a float. Layout: ndigits, weight, sign, dscale (i16 each), then base-10000 digits.
fn numeric(raw: &[u8]) -> std::result::Result<Value, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> std::result::Result<i16, String> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated NUMERIC".to_string())
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut int: i128 = 0;
    let mut frac = 0f64;
    for k in 0..ndigits.max(0) as usize {
        let d = i128::from(word(4 + k)?);
        let power = i32::from(weight) - k as i32;
        if power > 8 {
            return Err("NUMERIC out of range".into());
        } else if power >= 0 {
            int += d * 10_000i128.pow(power as u32);
        } else {
            frac += d as f64 * 10_000f64.powi(power);
        }
    }
    let negative = sign == 0x4000;
    if dscale == 0 || frac == 0.0 {
        let i = i64::try_from(if negative { -int } else { int })?;
        Ok(Value::Integer(i))
    } else {
        let f = int as f64 + frac;
        Ok(Value::Real(if negative { -f } else { f }))
    }
}

/// SQLite's process-wide settings, made once before its first connection (SQLite takes
/// them only before it initializes): no memory statistics. With them on (SQLite's
/// default), every allocation and free SQLite makes takes a global mutex to count bytes
/// nobody here reads; off, the usage writer's commit costs 6.4 % fewer instructions per
/// record (callgrind, 256-record batches: 16,386 → 15,332).
fn sqlite_process_settings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: called before any connection is opened (every one comes through
        // `open_sqlite`), with the int argument SQLITE_CONFIG_MEMSTATUS takes. Should
        // SQLite be initialized already, it answers SQLITE_MISUSE and changes nothing.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::os::raw::c_int,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialized already; memory statistics stay on"
            );
        }
    });
}

/// Open a SQLite file with the project's pragmas.
pub fn open_sqlite(path: &Path) -> Result<Connection> {
    sqlite_process_settings();
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement journals (a 64-row log INSERT needs one, and outgrows SQLite's 64 KiB
    // in-memory spill limit) and temporary indexes stay in memory: without this, the usage
    // writer created, wrote and deleted a file in /var/tmp ~40 times a second under load.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(Connection::from_sqlite(conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_counts_no_memory_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_sqlite(&dir.path().join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('some text')")
            .unwrap();
        // With statistics on, SQLite reports the heap it holds (the page cache, the
        // schema): hundreds of kilobytes by now.
        let used = unsafe { rusqlite::ffi::sqlite3_memory_used() };
        assert_eq!(
            used, 0,
            "SQLite counted {used} bytes: memory statistics are on"
        );
    }

    #[test]
    fn borrowed_parameters_are_stored_as_given_and_not_kept() {
        const INSERT: &str =
            "INSERT INTO t (a, b, c, d, e) VALUES (?1, ?2, ?3, ?4, ?5), (?6, ?7, ?8, ?9, ?10)";
        let dir = tempfile::tempdir().unwrap();
        let conn = open_sqlite(&dir.path().join("t.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE, b INTEGER, c REAL, d BLOB, e TEXT)",
        )
        .unwrap();
        let long = "x".repeat(100_000);
        let rows = [
            ("", 1, 0.5, b"".to_vec(), Some("naïve ✓ \0 inside\0")),
            (long.as_str(), -7, 1e300, vec![0u8, 255, 1], None),
            ("second statement", 3, -0.0, vec![9; 3], Some("")),
            ("fourth", i64::MAX, 2.0, vec![], Some("tail")),
        ];
        for pair in rows.chunks(2) {
            // Each value lives only in this iteration: the statement must not keep them.
            let owned: Vec<(String, Vec<u8>, Option<String>)> = pair
                .iter()
                .map(|r| (r.0.to_string(), r.3.clone(), r.4.map(str::to_string)))
                .collect();
            let values: Vec<ValueRef<'_>> = pair
                .iter()
                .zip(&owned)
                .flat_map(|(r, o)| {
                    [
                        ValueRef::Text(&o.0),
                        ValueRef::Integer(r.1),
                        ValueRef::Real(r.2),
                        ValueRef::Blob(&o.1),
                        o.2.as_deref().map_or(ValueRef::Null, ValueRef::Text),
                    ]
                })
                .collect();
            assert_eq!(conn.execute_borrowed(INSERT, &values).unwrap(), 2);
        }
        let stored = conn
            .query_all("SELECT a, b, c, d, e FROM t ORDER BY id", [], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .unwrap();
        let expected: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.0.to_string(),
                    r.1,
                    r.2,
                    r.3.clone(),
                    r.4.map(str::to_string),
                )
            })
            .collect();
        assert_eq!(stored, expected);
        // A wrong count is refused before anything runs.
        let err = conn
            .execute_borrowed(INSERT, &[ValueRef::Null])
            .unwrap_err();
        assert!(err.to_string().contains("parameter"), "{err}");
        // A constraint failure is reported as such, and the statement is usable after it.
        let rows = |names: [&'static str; 2]| -> Vec<ValueRef<'static>> {
            names
                .into_iter()
                .flat_map(|a| {
                    [
                        ValueRef::Text(a),
                        ValueRef::Integer(0),
                        ValueRef::Null,
                        ValueRef::Null,
                        ValueRef::Null,
                    ]
                })
                .collect()
        };
        let err = conn
            .execute_borrowed(INSERT, &rows(["fourth", "fifth"]))
            .unwrap_err();
        assert!(err.is_unique_violation(), "{err}");
        assert_eq!(
            conn.execute_borrowed(INSERT, &rows(["sixth", "seventh"]))
                .unwrap(),
            2
        );
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 6);
    }

    #[test]
    fn sqlite_keeps_temporary_files_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_sqlite(&dir.path().join("t.db")).unwrap();
        let mode: i64 = conn
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "temp_store = MEMORY");
    }

    #[test]
    fn parameters_are_numbered_for_postgres_outside_quotes() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?1 AND c = '?' AND \"d?\" = ?12 OR e = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND \"d?\" = $12 OR e = $1"
        );
    }

    #[test]
    fn numeric_decodes_integers_and_fractions() {
        // 123456789 = [1, 2345, 6789] base 10000, weight 2, positive, scale 0.
        let raw: Vec<u8> = [3i16, 2, 0, 0, 1, 2345, 6789]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(numeric(&raw).unwrap(), Value::Integer(123_456_789));
        // -12.5 = [12, 5000] weight 0, negative, scale 1.
        let raw: Vec<u8> = [2i16, 0, 0x4000, 1, 12, 5000]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(numeric(&raw).unwrap(), Value::Real(-12.5));
        // Zero has no digits.
        let raw: Vec<u8> = [0i16, 0, 0, 0]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(numeric(&raw).unwrap(), Value::Integer(0));
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://bc:s3cret@db:5432/x"),
            "postgres://bc:***@db:5432/x"
        );
        assert_eq!(mask_password("postgres://db/x"), "postgres://db/x");
    }
}
