//! The availability view: seats taken per slot, kept in memory in step with
//! the writer, so that reading a calendar rarely touches the database. The
//! database stays the source of truth: a day is (re)loaded from it when first
//! asked, and again after `ttl` (which matters when several servers share one
//! PostgreSQL database; with SQLite this process is the only writer).
//!
//! Only the online pool is counted here: it is the one citizens' calendars
//! offer (urgent, walk-in and priority seats are read from the store).

use pasaporte_core::jiff::civil::Date;
use pasaporte_core::shares::Pool;
use pasaporte_store::{Store, WriteOp, WriteOutcome};
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Inner {
    /// Seats taken, by office and slot start (unix ms).
    booked: HashMap<String, BTreeMap<i64, u32>>,
    /// When each office-day was loaded, and the office's generation then.
    loaded: HashMap<(String, Date), Instant>,
    /// Bumped on every change applied, per office: a load that raced a change
    /// is not trusted.
    generation: HashMap<String, u64>,
}

pub struct Availability {
    inner: RwLock<Inner>,
    ttl: Duration,
}

impl Availability {
    pub fn new(ttl: Duration) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            ttl,
        }
    }

    fn add(inner: &mut Inner, office: &str, start_ms: i64, delta: i64) {
        let m = inner.booked.entry(office.to_string()).or_default();
        let v = m.entry(start_ms).or_insert(0);
        *v = u32::try_from((i64::from(*v) + delta).max(0)).unwrap_or(u32::MAX);
        *inner.generation.entry(office.to_string()).or_insert(0) += 1;
    }

    /// Applies a committed write.
    pub fn apply(&self, op: &WriteOp, outcome: &WriteOutcome) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        match (op, outcome) {
            (WriteOp::Book(b), WriteOutcome::Booked { .. }) if b.pool == Pool::Online => {
                Self::add(&mut inner, &b.office, b.start_ms, b.applicants.len() as i64);
            }
            (
                _,
                WriteOutcome::Rescheduled {
                    office,
                    from_ms,
                    to_ms,
                    seats,
                    pool: Pool::Online,
                },
            ) => {
                Self::add(&mut inner, office, *to_ms, i64::from(*seats));
                Self::add(&mut inner, office, *from_ms, -i64::from(*seats));
            }
            (
                _,
                WriteOutcome::Cancelled {
                    office,
                    start_ms,
                    seats,
                    pool: Pool::Online,
                },
            ) => {
                Self::add(&mut inner, office, *start_ms, -i64::from(*seats));
            }
            _ => {}
        }
    }

    /// Seats taken in the office's slots of local `date`, which spans
    /// `[from_ms, to_ms)`.
    pub async fn day(
        &self,
        store: &Store,
        office: &str,
        date: Date,
        from_ms: i64,
        to_ms: i64,
    ) -> pasaporte_store::Result<BTreeMap<i64, u32>> {
        let key = (office.to_string(), date);
        let generation = {
            let inner = self.inner.read().map_err(|_| poisoned())?;
            if inner
                .loaded
                .get(&key)
                .is_some_and(|t| t.elapsed() < self.ttl)
            {
                let m = inner.booked.get(office);
                return Ok(m
                    .map(|m| m.range(from_ms..to_ms).map(|(k, v)| (*k, *v)).collect())
                    .unwrap_or_default());
            }
            inner.generation.get(office).copied().unwrap_or(0)
        };
        let counts = store.slot_counts(office, from_ms, to_ms).await?;
        let mut inner = self.inner.write().map_err(|_| poisoned())?;
        let m = inner.booked.entry(office.to_string()).or_default();
        let stale: Vec<i64> = m.range(from_ms..to_ms).map(|(k, _)| *k).collect();
        for k in stale {
            m.remove(&k);
        }
        for c in &counts {
            m.insert(c.start_ms, c.booked);
        }
        if inner.generation.get(office).copied().unwrap_or(0) == generation {
            inner.loaded.insert(key, Instant::now());
        }
        Ok(counts.iter().map(|c| (c.start_ms, c.booked)).collect())
    }

    /// Changes applied so far to the office's counts: an answer computed at
    /// one generation is still right while the generation is the same (and
    /// within `ttl`, for other servers' changes).
    pub fn generation(&self, office: &str) -> u64 {
        self.inner
            .read()
            .ok()
            .and_then(|i| i.generation.get(office).copied())
            .unwrap_or(0)
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Forgets everything (after an import or a change of closures).
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            *inner = Inner::default();
        }
    }
}

fn poisoned() -> pasaporte_store::StoreError {
    pasaporte_store::StoreError::Other("availability view lock poisoned".into())
}
