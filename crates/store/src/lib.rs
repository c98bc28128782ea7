//! pasaporte's storage: one domain-shaped interface, [`Store`], over SQLite (the
//! embedded default) and PostgreSQL, through `sqlx::Any` with portable SQL and
//! one migration folder. SQL lives only here, next to the function that runs it.
//!
//! Layout: [`Store`] opens a database and runs migrations; `offices.rs` keeps
//! offices, closures and release policies; `bookings.rs` applies batches of booking writes in one
//! transaction (group commit) and reads bookings and seat counts; `outbox.rs`
//! keeps mail until it is sent; `applications.rs` the office workflow's rows
//! (written inside the caller's transaction with their audit event); `audit.rs`
//! the hash-chained trail; `keys.rs` the check values of the deployment's
//! keys; `leases.rs` which node runs each background worker; `generations.rs`
//! the cache generations every write bumps so that other nodes' caches follow; `production.rs`
//! booklets, their custody record and passport numbers; `sealed.rs` lists the
//! columns of sealed values and pages through them for the server's one-off
//! re-seal; [`testing`] makes throw-away databases for tests.
//!
//! Invariants the database itself enforces (not code that reads then writes):
//! a slot's pool never holds more than its share (`slot_seats` CHECK, one row
//! per slot and pool), one person
//! holds at most one active booking (`person_holds` primary key), an
//! idempotency key names one booking (`idempotency` primary key).

mod applications;
mod audit;
mod ballot;
mod bookings;
mod generations;
mod keys;
mod leases;
mod offices;
mod orders;
mod outbox;
mod payments;
mod production;
mod sealed;
mod sqlite_writer;
mod staff;
pub mod testing;

pub use applications::*;
pub use audit::*;
pub use ballot::*;
pub use bookings::*;
pub use generations::*;
pub use keys::*;
pub use orders::*;
pub use outbox::*;
pub use payments::*;
pub use production::*;
pub use sealed::*;
pub use staff::*;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};
use std::str::FromStr;
use std::time::Duration;

/// Connections for readers; writes go through one connection at a time.
pub const POOL_CONNECTIONS_MAX: u32 = 16;
/// How long a statement waits for SQLite's write lock before giving up.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("constraint {constraint} refused the change")]
    Conflict { constraint: String },
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) => match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation
                | sqlx::error::ErrorKind::CheckViolation
                | sqlx::error::ErrorKind::ForeignKeyViolation
                | sqlx::error::ErrorKind::NotNullViolation => StoreError::Conflict {
                    constraint: db
                        .constraint()
                        .map_or_else(|| db.message().to_string(), str::to_string),
                },
                // Lost races the caller may retry: PostgreSQL serialization
                // failures and deadlocks, SQLite's lock after its busy timeout.
                _ if matches!(db.code().as_deref(), Some("40001" | "40P01"))
                    || db.message().contains("database is locked") =>
                {
                    StoreError::Unavailable(e.to_string())
                }
                _ => StoreError::Other(e.to_string()),
            },
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database: a pool and which backend is behind it.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: the file, and the connection batches are written through
    /// (opened on first use; see `sqlite_writer.rs`).
    sqlite_path: Option<String>,
    sqlite_writer: std::sync::Arc<std::sync::Mutex<Option<sqlite_writer::SqliteWriter>>>,
}

impl Store {
    /// Opens `database`: a `postgres://` URL, or a SQLite file path (created if
    /// missing), in WAL mode with `synchronous=FULL` so that a commit is on disk
    /// before anyone is told it happened.
    pub async fn open(database: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (url, backend, sqlite_path) =
            if database.starts_with("postgres://") || database.starts_with("postgresql://") {
                (database.to_string(), Backend::Postgres, None)
            } else {
                let path = database.strip_prefix("sqlite://").unwrap_or(database);
                (
                    format!("sqlite://{path}?mode=rwc"),
                    Backend::Sqlite,
                    Some(path.to_string()),
                )
            };
        let opts = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Other(format!("bad database address: {e}")))?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                            // 16 MiB of page cache per reader connection.
                            "PRAGMA cache_size = -16384",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
            backend,
            sqlite_path,
            sqlite_writer: Default::default(),
        })
    }

    /// The SQLite file (its `-wal` and `-shm` files lie beside it); `None`
    /// on PostgreSQL.
    pub fn database_path(&self) -> Option<&str> {
        self.sqlite_path.as_deref()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Brings the schema up to date (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                // A newer pasaporte migrated this database: an older node
                // must not write to a schema it does not know.
                sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Other(format!(
                    "the database's schema is newer than this pasaporte (it has migration {v}, which this version does not know): run this node on the version that migrated it or a later one"
                )),
                e => StoreError::Other(format!("migration failed: {e}")),
            })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Creates an empty database on this PostgreSQL server (dropping one of
    /// the same name first) and returns its URL; for tests and benchmarks.
    pub async fn create_database(&self, admin_url: &str, name: &str) -> Result<String> {
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Other(format!(
                "database name '{name}': use a-z, 0-9 and _"
            )));
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&self.pool)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&self.pool)
            .await?;
        let (base, _) = admin_url
            .rsplit_once('/')
            .ok_or_else(|| StoreError::Other("bad PostgreSQL URL".into()))?;
        Ok(format!("{base}/{name}"))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn to_i64(v: u32) -> i64 {
    i64::from(v)
}

/// `$first, $first+1, ...` for `n` binds (an `IN (...)` list).
pub(crate) fn binds(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}
