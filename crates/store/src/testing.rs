//! Throw-away databases for tests: a fresh SQLite file in a temporary folder,
//! or a fresh database on the PostgreSQL server that the test script started
//! (its URL in `PASAPORTE_TEST_PG_URL`).

use crate::{Result, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the PostgreSQL server for tests.
pub const PG_URL_VAR: &str = "PASAPORTE_TEST_PG_URL";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestDb {
    Sqlite,
    Postgres,
}

/// A fresh, migrated database and its address (for a second process to open).
pub async fn fresh(kind: TestDb) -> Result<(Store, String)> {
    let url = fresh_url(kind).await?;
    let store = Store::open(&url).await?;
    store.migrate().await?;
    Ok((store, url))
}

/// The address of a fresh, empty database.
pub async fn fresh_url(kind: TestDb) -> Result<String> {
    match kind {
        TestDb::Sqlite => {
            let dir = std::env::temp_dir().join(unique_name("pasaporte_test"));
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::Other(e.to_string()))?;
            Ok(dir.join("test.db").to_string_lossy().into_owned())
        }
        TestDb::Postgres => {
            let admin = std::env::var(PG_URL_VAR).map_err(|_| {
                StoreError::Unavailable(format!(
                    "{PG_URL_VAR} is not set: run the tests through ./test.sh, which starts PostgreSQL"
                ))
            })?;
            let admin_store = Store::open(&admin).await?;
            let url = admin_store.create_database(&admin, &unique_name("t")).await;
            admin_store.close().await;
            url
        }
    }
}

/// Writes everything committed to the database's own files (PostgreSQL's
/// `CHECKPOINT`; SQLite's WAL is searched as it is), so a test can search
/// them for what must not be there.
pub async fn flush_to_files(store: &Store) -> Result<()> {
    if store.backend() == crate::Backend::Postgres {
        sqlx::query("CHECKPOINT").execute(store.pool()).await?;
    }
    Ok(())
}

/// The folders holding this database's files below the server's data
/// folder: on PostgreSQL `base/<oid>` and the shared `pg_wal`; `None` on SQLite.
pub async fn pg_database_dirs(store: &Store) -> Result<Option<Vec<String>>> {
    use sqlx::Row;
    if store.backend() != crate::Backend::Postgres {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT CAST(oid AS BIGINT) AS oid FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(store.pool())
    .await?;
    let oid: i64 = row.try_get("oid")?;
    Ok(Some(vec![format!("base/{oid}"), "pg_wal".to_string()]))
}
