//! The application: everything a use case needs, built once at start-up.

use crate::availability::Availability;
use crate::crypto::Keyring;
use crate::payments::PaymentGateway;
use crate::registry::CivilRegistry;
use crate::writer::Writer;
use pasaporte_core::audit::CheckpointSigner;
use pasaporte_core::calendar::{self, Closure, DayPlan};
use pasaporte_core::fees::FeeSchedule;
use pasaporte_core::jiff::civil::Date;
use pasaporte_core::office::Office;
use pasaporte_core::shares::OfficePolicy;
use pasaporte_store::{Backend, Store};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long this node trusts a loaded office-day of its availability view
/// when several nodes share one PostgreSQL database. Not how other nodes'
/// bookings arrive (their generations do, within `cache_sync::CACHE_POLL_MS`):
/// a backstop should a write ever reach the database without bumping one.
pub const SHARED_VIEW_TTL: Duration = Duration::from_secs(30);

/// Days of computed slots kept per office; past that the memo starts afresh.
pub const PLANNED_DAYS_MAX: usize = 800;

/// One day's slots as computed from the rules, with their RFC 3339 texts:
/// computed once per office and day, since rules only change on reload.
#[derive(Debug)]
pub struct PlannedDay {
    pub plan: DayPlan,
    /// `(start, end)` of each open slot, RFC 3339 with the office's offset.
    pub texts: Vec<(String, String)>,
    /// The local day as `[start, end)` unix ms.
    pub bounds_ms: (i64, i64),
}

/// A day's availability answer as `http/` rendered it, reused while the
/// office's availability generation is unchanged (and within the view's TTL,
/// the backstop).
#[derive(Debug)]
pub struct RenderedDay {
    pub generation: u64,
    pub at: std::time::Instant,
    /// The day's slot objects, comma-separated, ready to go inside a JSON array.
    pub slots: String,
}

/// An office with its one-off closures, as the calendar needs them.
#[derive(Debug)]
pub struct OfficeEntry {
    pub office: Office,
    pub closures: Vec<Closure>,
    /// Its release mode and capacity split (the default, every seat online
    /// and live, when it has none stored).
    pub policy: OfficePolicy,
    planned: RwLock<HashMap<Date, Arc<PlannedDay>>>,
    /// Rendered future days; see [`RenderedDay`].
    pub rendered: RwLock<HashMap<Date, Arc<RenderedDay>>>,
}

impl OfficeEntry {
    pub fn new(office: Office, closures: Vec<Closure>) -> Self {
        Self {
            office,
            closures,
            policy: OfficePolicy::default(),
            planned: RwLock::new(HashMap::new()),
            rendered: RwLock::new(HashMap::new()),
        }
    }

    /// The entry with the office's stored policy.
    pub fn with_policy(mut self, policy: OfficePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The day's plan, from the memo or computed now.
    pub fn planned_day(&self, date: Date) -> Arc<PlannedDay> {
        if let Some(p) = self.planned.read().ok().and_then(|m| m.get(&date).cloned()) {
            return p;
        }
        let plan = calendar::day_plan(&self.office, &self.closures, date);
        let texts = match &plan {
            DayPlan::Open(slots) => slots
                .iter()
                .map(|s| {
                    (
                        calendar::rfc3339_local(&self.office, s.start),
                        calendar::rfc3339_local(&self.office, s.end),
                    )
                })
                .collect(),
            DayPlan::Closed(_) => Vec::new(),
        };
        let tz = self.office.time_zone.clone();
        let start = date
            .to_zoned_datetime(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(0);
        let end = date
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned_datetime(tz).ok())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(i64::MAX);
        let day = Arc::new(PlannedDay {
            plan,
            texts,
            bounds_ms: (start, end),
        });
        if let Ok(mut m) = self.planned.write() {
            if m.len() >= PLANNED_DAYS_MAX {
                m.clear();
            }
            m.insert(date, day.clone());
        }
        day
    }
}

/// The outside parties and keys the workflow uses; each may be absent (the
/// work then waits in its queue, visibly).
#[derive(Default)]
pub struct Adapters {
    pub registry: Option<Arc<dyn CivilRegistry>>,
    pub payments: Option<Arc<dyn PaymentGateway>>,
    /// The secret the payment gateway signs its callbacks with.
    pub payments_secret: Option<Vec<u8>>,
    /// Signs audit checkpoints; without it the trail is chained but unsigned.
    pub audit_signer: Option<CheckpointSigner>,
    /// Signs the chip data of every passport; without it approved
    /// applications wait for their production order.
    pub document_signer: Option<icao9303::DocumentSigner>,
    /// How the production pipeline calls printing vendors.
    pub vendor_settings: crate::pipeline::VendorSettings,
    /// Rate limits on the citizens' booking writes (none by default).
    pub limits: crate::limits::RateLimits,
    /// Ballot request periods and reconfirmation.
    pub fair: crate::ballot::FairSettings,
    /// The origin citizens reach the service at, when `--public-url` says so:
    /// the cross-site check compares a form's `Origin` with it (else with
    /// the request's `Host`).
    pub public_origin: Option<String>,
}

pub struct App {
    pub store: Store,
    pub writer: Writer,
    pub availability: Arc<Availability>,
    pub keys: Keyring,
    /// The service's public address, for links in mail (no trailing slash).
    pub public_url: String,
    /// The configured public origin, if any (see [`Adapters::public_origin`]).
    pub public_origin: Option<String>,
    pub registry: Option<Arc<dyn CivilRegistry>>,
    pub payments: Option<Arc<dyn PaymentGateway>>,
    pub payments_secret: Option<Vec<u8>>,
    pub audit_signer: Option<CheckpointSigner>,
    pub document_signer: Option<Arc<icao9303::DocumentSigner>>,
    pub vendor_settings: crate::pipeline::VendorSettings,
    /// The printing vendors' clients (from the `vendors` table).
    pub vendors: crate::pipeline::VendorCache,
    pub limits: crate::limits::RateLimits,
    pub fees: FeeSchedule,
    /// Which offices and days ballot releases cover (live booking asks).
    pub releases: crate::ballot::ReleaseCache,
    pub fair: crate::ballot::FairSettings,
    /// Refusals and failed sign-ins counted (`auth/refusals.rs`, `GET /metrics`).
    pub security: Arc<crate::auth::refusals::SecurityCounters>,
    /// The cache generations this node last read (see `cache_sync.rs`).
    pub cache_sync: crate::cache_sync::CacheSync,
    offices: RwLock<Arc<BTreeMap<String, Arc<OfficeEntry>>>>,
}

impl App {
    /// Whether a request that changes something came from another site
    /// (the one check of [`crate::auth::cross_site`]).
    pub fn cross_site(&self, headers: &axum::http::HeaderMap) -> bool {
        crate::auth::cross_site(headers, self.public_origin.as_deref())
    }

    pub async fn new(
        store: Store,
        keys: Keyring,
        public_url: String,
        adapters: Adapters,
    ) -> anyhow::Result<Arc<Self>> {
        let ttl = match store.backend() {
            Backend::Sqlite => Duration::from_secs(3600),
            Backend::Postgres => SHARED_VIEW_TTL,
        };
        let availability = Arc::new(Availability::new(ttl));
        // Before the caches are filled: no change falls between.
        let cache_sync = crate::cache_sync::CacheSync::start(&store).await?;
        let writer = Writer::start(store.clone(), availability.clone());
        let app = Arc::new(Self {
            store,
            writer,
            availability,
            keys,
            public_url: public_url.trim_end_matches('/').to_string(),
            public_origin: adapters.public_origin,
            registry: adapters.registry,
            payments: adapters.payments,
            payments_secret: adapters.payments_secret,
            audit_signer: adapters.audit_signer,
            document_signer: adapters.document_signer.map(Arc::new),
            vendor_settings: adapters.vendor_settings,
            vendors: crate::pipeline::VendorCache::default(),
            limits: adapters.limits,
            fees: crate::payments::fee_schedule()?,
            releases: crate::ballot::ReleaseCache::default(),
            fair: adapters.fair,
            security: Arc::default(),
            cache_sync,
            offices: RwLock::new(Arc::new(BTreeMap::new())),
        });
        app.reload_offices().await?;
        crate::cache_sync::spawn(&app);
        Ok(app)
    }

    /// Re-reads offices, closures and release policies from the database.
    pub async fn reload_offices(&self) -> pasaporte_store::Result<()> {
        let mut map = BTreeMap::new();
        let policies = self.store.office_policies().await?;
        for office in self.store.offices().await? {
            let closures = self.store.closures(&office.code).await?;
            let policy = policies.get(&office.code).copied().unwrap_or_default();
            map.insert(
                office.code.clone(),
                Arc::new(OfficeEntry::new(office, closures).with_policy(policy)),
            );
        }
        if let Ok(mut w) = self.offices.write() {
            *w = Arc::new(map);
        }
        self.availability.clear();
        Ok(())
    }

    pub fn offices(&self) -> Arc<BTreeMap<String, Arc<OfficeEntry>>> {
        self.offices.read().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn office(&self, code: &str) -> Option<Arc<OfficeEntry>> {
        self.offices().get(code).cloned()
    }
}
