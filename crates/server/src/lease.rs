//! One node at a time runs each background worker. Every node runs the same
//! worker loops; before each pass a loop takes or renews its lease in the
//! database (`Store::hold_lease`) and skips the pass when another node holds
//! it. So N nodes send each mail, make each order and sign each checkpoint
//! once, and when the holder dies its lease runs out and another node takes
//! the work over where the database says it stands.
//!
//! A lease lasts [`LEASE_MS_DEFAULT`] (or `--worker-lease-ms`), renewed every
//! pass, so it must exceed the longest pass (passes are bounded by their
//! batch limits). A node that loses the database cannot renew and stops
//! working once its lease has run out.

use pasaporte_store::Store;
use std::time::Duration;

/// How long a worker's lease lasts without renewal: long enough for the
/// slowest pass (a batch of vendor calls with their timeouts), short enough
/// that the work of a dead node waits less than a minute.
pub const LEASE_MS_DEFAULT: u64 = 30_000;

/// The names the worker loops hold their leases under.
pub const WORKFLOW: &str = "workflow";
pub const PRODUCTION: &str = "production";
pub const CHECKPOINTS: &str = "audit_checkpoints";
pub const OUTBOX: &str = "outbox";

/// A worker loop's claim on its work, for one node.
#[derive(Clone, Debug)]
pub struct WorkerLease {
    name: &'static str,
    node: String,
    lease: Duration,
    /// Whether this node held the lease at the last pass (to log changes).
    held: bool,
}

impl WorkerLease {
    pub fn new(name: &'static str, node: &str, lease: Duration) -> Self {
        Self {
            name,
            node: node.to_string(),
            lease,
            held: false,
        }
    }

    /// Whether this node runs the next pass: takes or renews the lease.
    /// A database error counts as not holding it.
    pub async fn hold(&mut self, store: &Store) -> bool {
        let now_ms = crate::auth::now_ms();
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let held = match store
            .hold_lease(
                self.name,
                &self.node,
                now_ms,
                now_ms.saturating_add(lease_ms),
            )
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(worker = self.name, error = %e, "worker lease not renewed");
                false
            }
        };
        if held != self.held {
            tracing::info!(worker = self.name, node = %self.node, held, "worker lease changed hands");
            self.held = held;
        }
        held
    }
}

/// A name for this node among the deployment's, new at every start.
pub fn node_name() -> String {
    let suffix = crate::crypto::random_bytes::<6>()
        .map(|b| crate::crypto::hex(&b))
        .unwrap_or_default();
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".into());
    format!("{host}:{}:{suffix}", std::process::id())
}
