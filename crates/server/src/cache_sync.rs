//! Caches that agree across nodes. Several `pasaporte serve` nodes share one
//! database; each keeps in memory the availability view (seats taken per
//! slot), the offices with their closures and policies, and the ballot
//! releases' coverage. Every write that changes one of those bumps its
//! generation in the database in the same transaction (see the store's
//! `generations.rs`); [`spawn`] reads the generations every
//! [`CACHE_POLL_MS`] on each node, one small query shared by all of the
//! node's requests, and drops what moved: a booking or a cancellation on
//! one node shows on every other node's calendar within about that.
//!
//! A node's own writes also move the generations, so it reloads what it had
//! just updated in place: one more read per office-day, not a wrong answer.
//! There is no LISTEN/NOTIFY: the poll alone meets the bound, works the same
//! on SQLite (another process writing the same file), and a missed
//! notification could not leave a cache stale.

use crate::app::App;
use pasaporte_store::{CacheScope, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a node reads the generations: the bound on how long another
/// node's change takes to reach this node's caches (plus one query). Ten
/// reads a second of a table of a few rows per office, whatever the load.
pub const CACHE_POLL_MS: u64 = 100;

/// The generations this node last read.
#[derive(Default)]
pub struct CacheSync {
    seen: Mutex<HashMap<String, i64>>,
}

impl CacheSync {
    /// Reads the generations as they are now. Read before the caches are
    /// first filled: a change committed after this read is acted on by the
    /// first [`CacheSync::pass`], so none falls between.
    pub async fn start(store: &Store) -> Result<Self, StoreError> {
        let me = Self::default();
        me.changed(store).await?;
        Ok(me)
    }

    /// The scopes whose generation moved since the last read; records the
    /// new ones.
    async fn changed(&self, store: &Store) -> Result<Vec<CacheScope>, StoreError> {
        let now = store.cache_generations().await?;
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| StoreError::Other("cache generations lock poisoned".into()))?;
        let mut moved = Vec::new();
        for (key, generation) in now {
            if seen.get(&key) != Some(&generation) {
                if let Some(scope) = CacheScope::parse(&key) {
                    moved.push(scope);
                }
                seen.insert(key, generation);
            }
        }
        Ok(moved)
    }

    /// Drops what other writes changed since the last pass; how many scopes
    /// moved.
    pub async fn pass(&self, app: &App) -> Result<usize, StoreError> {
        let moved = self.changed(&app.store).await?;
        for scope in &moved {
            match scope {
                CacheScope::Seats(office) => app.availability.invalidate(office),
                CacheScope::Releases => app.releases.clear(),
                CacheScope::Offices => {
                    if let Err(e) = app.reload_offices().await {
                        // Acted on again next pass.
                        if let Ok(mut seen) = self.seen.lock() {
                            seen.remove(&scope.key());
                        }
                        return Err(e);
                    }
                }
            }
        }
        Ok(moved.len())
    }
}

/// Runs [`CacheSync::pass`] every [`CACHE_POLL_MS`] for as long as the app
/// lives.
pub fn spawn(app: &Arc<App>) {
    let app = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(CACHE_POLL_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            let Some(app) = app.upgrade() else {
                return;
            };
            match app.cache_sync.pass(&app).await {
                Ok(_) => failing = false,
                // Once per outage, not ten times a second.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cache generations not read; caches may lag other nodes");
                }
                Err(_) => {}
            }
        }
    });
}
