//! The application: everything a use case needs, built once at start-up.

use crate::availability::Availability;
use crate::crypto::Keyring;
use crate::writer::Writer;
use pasaporte_core::calendar::Closure;
use pasaporte_core::office::Office;
use pasaporte_store::{Backend, Store};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long another server's bookings may take to show in this server's
/// availability view when several share one PostgreSQL database.
pub const SHARED_VIEW_TTL: Duration = Duration::from_secs(1);

/// An office with its one-off closures, as the calendar needs them.
#[derive(Debug)]
pub struct OfficeEntry {
    pub office: Office,
    pub closures: Vec<Closure>,
}

pub struct App {
    pub store: Store,
    pub writer: Writer,
    pub availability: Arc<Availability>,
    pub keys: Keyring,
    /// The service's public address, for links in mail (no trailing slash).
    pub public_url: String,
    offices: RwLock<Arc<BTreeMap<String, Arc<OfficeEntry>>>>,
}

impl App {
    pub async fn new(store: Store, keys: Keyring, public_url: String) -> anyhow::Result<Arc<Self>> {
        let ttl = match store.backend() {
            Backend::Sqlite => Duration::from_secs(3600),
            Backend::Postgres => SHARED_VIEW_TTL,
        };
        let availability = Arc::new(Availability::new(ttl));
        let writer = Writer::start(store.clone(), availability.clone());
        let app = Arc::new(Self {
            store,
            writer,
            availability,
            keys,
            public_url: public_url.trim_end_matches('/').to_string(),
            offices: RwLock::new(Arc::new(BTreeMap::new())),
        });
        app.reload_offices().await?;
        Ok(app)
    }

    /// Re-reads offices and closures from the database.
    pub async fn reload_offices(&self) -> pasaporte_store::Result<()> {
        let mut map = BTreeMap::new();
        for office in self.store.offices().await? {
            let closures = self.store.closures(&office.code).await?;
            map.insert(
                office.code.clone(),
                Arc::new(OfficeEntry { office, closures }),
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
