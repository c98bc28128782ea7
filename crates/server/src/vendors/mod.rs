//! Printing vendors: the protocol pasaporte speaks with the companies that
//! print and encode passport booklets (the spec is docs/vendor-protocol.md),
//! its client, the verification of the vendors' status callbacks, and a
//! simulator of a vendor that runs locally (`pasaporte vendor-sim`).
//!
//! Layout: `mod.rs` is the adapter trait [`PrintingVendor`] and its error
//! (vendors themselves are rows of the `vendors` table, see
//! [`crate::pipeline`]);
//! [`protocol`] the wire types and limits, shared by everything here;
//! [`client`] is [`HttpVendor`] (signed batches, retries); [`callback`]
//! verifies callbacks ([`verify_vendor_callback`]); [`sim`] is the simulator.
//! The signing scheme is [`crate::signing`]'s, shared with payments.
//!
//! The flow ([`crate::pipeline`] runs it): approved applications
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

use std::future::Future;
use std::pin::Pin;

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
