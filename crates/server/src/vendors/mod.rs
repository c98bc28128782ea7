//! Printing vendors: the protocol pasaporte speaks with the companies that
//! print and encode passport booklets (the spec is docs/vendor-protocol.md),
//! its client, the verification of the vendors' status callbacks, and a
//! simulator of a vendor that runs locally (`pasaporte vendor-sim`).
//!
//! Layout: `mod.rs` is the adapter trait [`PrintingVendor`], its error and
//! the command-line settings [`VendorArgs`];
//! [`protocol`] the wire types and limits, shared by everything here;
//! [`client`] is [`HttpVendor`] (signed batches, retries); [`callback`]
//! verifies callbacks ([`verify_vendor_callback`]); [`sim`] is the simulator.
//! The signing scheme is [`crate::signing`]'s, shared with payments.
//!
//! The flow (the production pipeline builds on it): approved applications
//! become orders with ids that never change; an outbox worker sends them in
//! batches with [`PrintingVendor::send_batch`] and records each order's
//! [`protocol::Outcome`] (`accepted` and `duplicate` both mean the vendor has
//! it; a batch that failed with `Unavailable` is sent again as is). The
//! vendor POSTs signed events to pasaporte's callback route, which verifies
//! them with [`verify_vendor_callback`] and applies each `event_id` once,
//! answering 2xx to replays.

pub mod callback;
pub mod client;
pub mod protocol;
pub mod sim;

pub use callback::{VerifiedEvent, verify_vendor_callback};
pub use client::HttpVendor;
pub use protocol::{Batch, EventKind, Order, OrderResult, OrderStatus, Outcome, VendorEvent};
pub use sim::{RunningVendorSim, VendorSimConfig, spawn_vendor_sim};

use crate::signing::SigningKey;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a vendor call ended with when it did not get an answer to use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VendorError {
    /// Unreachable, timed out or failing (5xx, 429) after every attempt, or
    /// an answer that does not fit the request: send the same batch later.
    #[error("printing vendor unavailable")]
    Unavailable,
    /// The vendor refused the whole request (4xx): its status and error code
    /// (see the spec), never personal data. Sending the same bytes again
    /// will not help.
    #[error("printing vendor refused ({status} {code})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The request was not sent: it breaks the protocol's limits.
    #[error("invalid request to the printing vendor: {0}")]
    Invalid(&'static str),
}

/// A vendor call in flight (boxed so the trait stays dyn-compatible).
pub type VendorFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, VendorError>> + Send + 'a>>;

/// A printing vendor: takes batches of orders and reports their status.
/// Progress arrives later as signed callbacks.
pub trait PrintingVendor: Send + Sync {
    /// Sends a batch (1 to [`protocol::BATCH_ORDERS_MAX`] orders) and returns
    /// one result per order, in the batch's order. Safe to repeat: an order
    /// the vendor already holds is answered `duplicate` and never printed twice.
    fn send_batch<'a>(&'a self, batch: &'a Batch) -> VendorFuture<'a, Vec<OrderResult>>;

    /// An order's status at the vendor, `None` when the vendor does not hold
    /// it (never received, or rejected). For reconciliation when callbacks
    /// seem lost.
    fn order_status<'a>(&'a self, order_id: &'a str) -> VendorFuture<'a, Option<OrderStatus>>;
}

/// The most attempts accepted from the command line: beyond it a worker
/// waits minutes on one batch instead of moving to its next pass.
pub const ATTEMPTS_MAX: u32 = 10;

/// A printing vendor's settings, for `serve` to flatten when the production
/// pipeline is wired in.
#[derive(clap::Args, Clone)]
pub struct VendorArgs {
    /// The printing vendor's (or simulator's) base URL; without it orders
    /// wait in the outbox.
    #[arg(long, env = "PASAPORTE_VENDOR_URL")]
    pub vendor_url: Option<String>,
    /// The id of the key shared with the vendor (`x-pasaporte-key-id`).
    #[arg(long, env = "PASAPORTE_VENDOR_KEY_ID", default_value = "vendor")]
    pub vendor_key_id: String,
    /// The key shared with the vendor: signs batches, verifies callbacks.
    #[arg(long, env = "PASAPORTE_VENDOR_KEY", hide_env_values = true)]
    pub vendor_key: Option<String>,
    /// The previous key while the key rotates (still signed with and accepted).
    #[arg(long, env = "PASAPORTE_VENDOR_PREVIOUS_KEY", hide_env_values = true)]
    pub vendor_previous_key: Option<String>,
    /// Milliseconds one attempt of a vendor call may take.
    #[arg(long, env = "PASAPORTE_VENDOR_TIMEOUT_MS", default_value_t = client::ATTEMPT_TIMEOUT_MS_DEFAULT)]
    pub vendor_timeout_ms: u64,
    /// Attempts per vendor call (1 to 10), with back-off between them.
    #[arg(long, env = "PASAPORTE_VENDOR_ATTEMPTS", default_value_t = client::ATTEMPTS_DEFAULT)]
    pub vendor_attempts: u32,
}

/// Names the URL and key id only: keys never reach a log.
impl std::fmt::Debug for VendorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorArgs")
            .field("vendor_url", &self.vendor_url)
            .field("vendor_key_id", &self.vendor_key_id)
            .field("vendor_timeout_ms", &self.vendor_timeout_ms)
            .field("vendor_attempts", &self.vendor_attempts)
            .finish_non_exhaustive()
    }
}

/// What the pipeline needs to talk to a vendor: the client and the key its
/// callbacks are verified with ([`verify_vendor_callback`]).
pub struct VendorConfig {
    pub vendor: HttpVendor,
    pub key: SigningKey,
}

impl VendorArgs {
    /// The client and key, or `None` when no vendor is configured (neither
    /// URL nor key); one without the other is an error.
    pub fn config(&self) -> anyhow::Result<Option<VendorConfig>> {
        match (&self.vendor_url, &self.vendor_key) {
            (None, None) => Ok(None),
            (Some(url), Some(secret)) => {
                let mut key = SigningKey::new(&self.vendor_key_id, secret.as_bytes().to_vec())
                    .map_err(|e| {
                        anyhow::anyhow!("PASAPORTE_VENDOR_KEY_ID / PASAPORTE_VENDOR_KEY: {e}")
                    })?;
                if let Some(previous) = &self.vendor_previous_key {
                    key = key
                        .with_previous(previous.as_bytes().to_vec())
                        .map_err(|e| anyhow::anyhow!("PASAPORTE_VENDOR_PREVIOUS_KEY: {e}"))?;
                }
                if !(1..=ATTEMPTS_MAX).contains(&self.vendor_attempts) {
                    anyhow::bail!("--vendor-attempts must be 1 to {ATTEMPTS_MAX}");
                }
                let vendor = HttpVendor::new(
                    url,
                    key.clone(),
                    Duration::from_millis(self.vendor_timeout_ms.max(1)),
                    self.vendor_attempts,
                )?;
                Ok(Some(VendorConfig { vendor, key }))
            }
            _ => {
                anyhow::bail!("give both PASAPORTE_VENDOR_URL and PASAPORTE_VENDOR_KEY, or neither")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn vendor_args_need_url_and_key_together() {
        let args = |url: Option<&str>, key: Option<&str>, attempts: u32| VendorArgs {
            vendor_url: url.map(str::to_string),
            vendor_key_id: "vendor-a".into(),
            vendor_key: key.map(str::to_string),
            vendor_previous_key: None,
            vendor_timeout_ms: client::ATTEMPT_TIMEOUT_MS_DEFAULT,
            vendor_attempts: attempts,
        };
        let key = Some("0123456789abcdef");
        let url = Some("http://127.0.0.1:8092");
        assert!(args(None, None, 3).config().unwrap().is_none());
        let c = args(url, key, 3).config().unwrap().unwrap();
        assert_eq!(c.key.id(), "vendor-a");
        for bad in [
            args(url, None, 3),
            args(None, key, 3),
            args(url, Some("short"), 3),
            args(url, key, 0),
            args(url, key, ATTEMPTS_MAX + 1),
            args(Some("127.0.0.1:8092"), key, 3),
        ] {
            assert!(bad.config().is_err(), "{bad:?}");
        }
        let shown = format!("{:?}", args(url, key, 3));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }
}
