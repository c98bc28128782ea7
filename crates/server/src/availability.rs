//! The availability view: seats taken per slot, kept in memory in step with
//! the writer, so that reading a calendar rarely touches the database. The
//! database stays the source of truth: a day is (re)loaded from it when first
//! asked, again when another node's write moved the office's seat generation
//! ([`Availability::invalidate`], called by `cache_sync.rs`), and after
//! `ttl` at the latest (a backstop only).
//!
//! Only the online pool is counted here: it is the one citizens' calendars
//! offer (urgent, walk-in and priority seats are read from the store).

use pasaporte_core::jiff::civil::Date;
use pasaporte_core::shares::Pool;
use pasaporte_store::{SlotCount, Store, WriteOp, WriteOutcome};
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Inner {
    /// Seats taken, by office and slot start (unix ms).
    booked: HashMap<String, BTreeMap<i64, u32>>,
    /// The online pool's stored capacity, by office and slot start, where a
    /// slot has a row: lower than the calendar's after a capacity cut or a
    /// closure (re-seating caps the rows), never higher.
    capped: HashMap<String, BTreeMap<i64, u32>>,
    /// When each office-day was loaded.
    loaded: HashMap<(String, Date), Instant>,
    /// Per office, the value of `counter` at its last change (applied or
    /// invalidated): a load that raced a change is not trusted, and an
    /// answer rendered at an older generation is not reused.
    generation: HashMap<String, u64>,
    /// Counts every change and clear, so generations only go up.
    counter: u64,
    /// `counter` at the last [`Availability::clear`]: every office's
    /// generation is at least this.
    cleared_at: u64,
}

impl Inner {
    fn generation(&self, office: &str) -> u64 {
        self.generation
            .get(office)
            .copied()
            .unwrap_or(0)
            .max(self.cleared_at)
    }

    fn bump(&mut self, office: &str) {
        self.counter += 1;
        self.generation.insert(office.to_string(), self.counter);
    }
}

/// An office-day's online seats as the view has them, by slot start (unix ms).
#[derive(Debug, Default)]
pub struct DayCounts {
    pub booked: BTreeMap<i64, u32>,
    /// The stored capacity of the slots that have a row.
    pub capacity: BTreeMap<i64, u32>,
}

impl DayCounts {
    /// Seats taken in the slot.
    pub fn taken(&self, start_ms: i64) -> u32 {
        self.booked.get(&start_ms).copied().unwrap_or(0)
    }

    /// The slot's online capacity: the calendar's `planned`, or less where
    /// the stored row says so (a capacity cut, a closure).
    pub fn capacity(&self, start_ms: i64, planned: u32) -> u32 {
        self.capacity
            .get(&start_ms)
            .map_or(planned, |c| planned.min(*c))
    }
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
        inner.bump(office);
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
    /// `[from_ms, to_ms)`, and the stored capacities of those with a row.
    pub async fn day(
        &self,
        store: &Store,
        office: &str,
        date: Date,
        from_ms: i64,
        to_ms: i64,
    ) -> pasaporte_store::Result<DayCounts> {
        let key = (office.to_string(), date);
        let generation = {
            let inner = self.inner.read().map_err(|_| poisoned())?;
            if inner
                .loaded
                .get(&key)
                .is_some_and(|t| t.elapsed() < self.ttl)
            {
                let range = |m: Option<&BTreeMap<i64, u32>>| {
                    m.map(|m| m.range(from_ms..to_ms).map(|(k, v)| (*k, *v)).collect())
                        .unwrap_or_default()
                };
                return Ok(DayCounts {
                    booked: range(inner.booked.get(office)),
                    capacity: range(inner.capped.get(office)),
                });
            }
            inner.generation(office)
        };
        let counts = store.slot_counts(office, from_ms, to_ms).await?;
        let mut guard = self.inner.write().map_err(|_| poisoned())?;
        let inner = &mut *guard;
        for (map, value) in [
            (&mut inner.booked, (|c| c.booked) as fn(&SlotCount) -> u32),
            (&mut inner.capped, |c| c.capacity),
        ] {
            let m = map.entry(office.to_string()).or_default();
            let stale: Vec<i64> = m.range(from_ms..to_ms).map(|(k, _)| *k).collect();
            for k in stale {
                m.remove(&k);
            }
            for c in &counts {
                m.insert(c.start_ms, value(c));
            }
        }
        if inner.generation(office) == generation {
            inner.loaded.insert(key, Instant::now());
        }
        Ok(DayCounts {
            booked: counts.iter().map(|c| (c.start_ms, c.booked)).collect(),
            capacity: counts.iter().map(|c| (c.start_ms, c.capacity)).collect(),
        })
    }

    /// Where the office's counts stand: an answer computed at one generation
    /// is still right while the generation is the same (within `ttl`, the
    /// backstop). Only goes up.
    pub fn generation(&self, office: &str) -> u64 {
        self.inner
            .read()
            .map(|i| i.generation(office))
            .unwrap_or(u64::MAX)
    }

    /// Another node changed the office's seats: its days are read from the
    /// database again when next asked, and answers rendered before are not
    /// reused.
    pub fn invalidate(&self, office: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.loaded.retain(|(o, _), _| o != office);
            inner.bump(office);
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Forgets everything (after an import or a change of closures).
    /// Generations go on from where they were, so that nothing rendered
    /// before is taken for current.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.booked.clear();
            inner.capped.clear();
            inner.loaded.clear();
            inner.generation.clear();
            inner.counter += 1;
            inner.cleared_at = inner.counter;
        }
    }
}

fn poisoned() -> pasaporte_store::StoreError {
    pasaporte_store::StoreError::Other("availability view lock poisoned".into())
}
