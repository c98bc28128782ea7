//! Cache generations: with several nodes on one database, what a node keeps
//! in memory (seats taken per slot, offices and their rules, the ballot
//! releases' coverage) must follow writes made on the other nodes. Every
//! write that changes one of those adds one to its [`CacheScope`]'s row of
//! `cache_generations` in the same transaction; a node reads the table
//! ([`Store::cache_generations`]) and drops the entries whose generation
//! moved. A write bumps each scope once: the booking batch bumps each office
//! it touched once, at the end, in code order (two nodes' batches then lock
//! the rows in the same order and hold them only for the commit).

use crate::applications::Tx;
use crate::{Result, Store, StoreError};
use sqlx::Row;

/// What a generation counts changes of.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CacheScope {
    /// Seats taken (or slot capacities) of one office's slots.
    Seats(String),
    /// Offices, closures, capacity cuts and release policies.
    Offices,
    /// Ballot releases and whether a drawn one still has people waiting.
    Releases,
}

const SEATS_PREFIX: &str = "seats:";

impl CacheScope {
    /// The row's key in `cache_generations`.
    pub fn key(&self) -> String {
        match self {
            CacheScope::Seats(office) => format!("{SEATS_PREFIX}{office}"),
            CacheScope::Offices => "offices".into(),
            CacheScope::Releases => "releases".into(),
        }
    }

    /// The scope of a stored key (`None` for one this version does not know).
    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "offices" => Some(CacheScope::Offices),
            "releases" => Some(CacheScope::Releases),
            _ => key
                .strip_prefix(SEATS_PREFIX)
                .map(|o| CacheScope::Seats(o.to_string())),
        }
    }
}

/// One more change in `scope`, in its own row (one statement on both
/// databases).
const BUMP_SQL: &str = "INSERT INTO cache_generations (scope, generation) VALUES ($1, 1)
     ON CONFLICT (scope) DO UPDATE SET generation = cache_generations.generation + 1";

/// Adds one to each scope's generation inside `tx`, each once, in key order.
pub async fn bump_generations_in(
    tx: &mut Tx,
    scopes: impl IntoIterator<Item = CacheScope>,
) -> std::result::Result<(), StoreError> {
    let mut keys: Vec<String> = scopes.into_iter().map(|s| s.key()).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query(BUMP_SQL).bind(key).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Every scope's generation (a scope never written has no row: read it
    /// as 0). One small read, made by each node a few times a second.
    pub async fn cache_generations(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT scope, generation FROM cache_generations")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("scope")?, r.try_get("generation")?)))
            .collect()
    }

    /// Adds one to each scope's generation in a transaction of its own (a
    /// change committed without one, such as an import from the command
    /// line).
    pub async fn bump_generations(
        &self,
        scopes: impl IntoIterator<Item = CacheScope>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        bump_generations_in(&mut tx, scopes).await?;
        tx.commit().await?;
        Ok(())
    }
}
