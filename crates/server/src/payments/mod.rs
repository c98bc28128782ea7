//! Payments: the adapter to a payment gateway, the verification of its signed
//! callbacks, and a simulator of the gateway that runs locally.
//!
//! Layout: `mod.rs` is the adapter trait [`PaymentGateway`], its error, the
//! command-line arguments [`PaymentArgs`] and the fee schedule the service
//! charges ([`fee_schedule`], from data/fees.csv); [`client`] is
//! [`HttpPayments`], the gateway over HTTP (retries, idempotency); [`callback`]
//! verifies and signs callbacks; [`sim`] is the simulator (its protocol is in
//! its module doc) and `pasaporte payment-sim`.
//!
//! The flow: after the registry check the application use case asks
//! [`PaymentGateway::create_reference`] (idempotent per application) and stores
//! the reference (`pasaporte_store::insert_payment_reference`) with the
//! application's transition and audit event. The gateway later POSTs a signed
//! `payment.confirmed` callback; the callback route verifies it
//! ([`callback::verify`]), then in one transaction records the event
//! (`record_payment_event`, false on a replay), marks the reference paid and
//! moves the application on. Refunds go the other way: a use case marks the
//! reference `refund_pending`; a worker calls [`PaymentGateway::refund`] for
//! each of `Store::pending_refunds`; the `refund.completed` callback marks it
//! refunded.

pub mod callback;
pub mod client;
pub mod sim;

pub use callback::{CallbackError, PaymentEvent, sign, verify};
pub use client::HttpPayments;
pub use sim::{PaymentSimConfig, RunningPaymentSim, payment_sim_router, spawn_payment_sim};

use pasaporte_core::fees::{
    Currency, FeeError, FeeSchedule, Money, PaymentEventKind, PaymentStatus,
};
use pasaporte_store::{PaymentEventRow, PaymentTx, Store, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The fee schedule, compiled in from the repository's data/fees.csv.
pub const FEES_CSV: &str = include_str!("../../../../data/fees.csv");

/// The fees the service charges.
pub fn fee_schedule() -> Result<FeeSchedule, FeeError> {
    FeeSchedule::parse_csv(FEES_CSV)
}

/// What the gateway answered when it did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// Unreachable, timed out or failing (5xx) after every attempt: try later.
    #[error("payment gateway unavailable")]
    Unavailable,
    /// The gateway said no (4xx); its reason, which never carries personal data.
    #[error("payment gateway refused: {0}")]
    Refused(String),
}

/// A gateway call in flight (boxed so the trait stays dyn-compatible).
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PaymentError>> + Send + 'a>>;

/// A payment gateway: issues payment references and refunds them. The payment
/// itself and refund completions arrive later as signed callbacks.
pub trait PaymentGateway: Send + Sync {
    /// Issues a reference for the application to pay `amount`. Idempotent: the
    /// same application gets the same reference however often it is asked.
    /// `description` is shown to the citizen by the bank: no personal data.
    fn create_reference<'a>(
        &'a self,
        application_id: &'a str,
        amount: &'a Money,
        description: &'a str,
    ) -> GatewayFuture<'a, String>;

    /// Asks for `amount` of a paid reference back. Idempotent per `refund_id`;
    /// accepted means in progress: a `refund.completed` callback follows.
    fn refund<'a>(
        &'a self,
        reference: &'a str,
        amount: &'a Money,
        refund_id: &'a str,
    ) -> GatewayFuture<'a, ()>;
}

/// How long one call to the gateway may take before it is retried.
pub const ATTEMPT_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// Attempts per gateway call: a short outage is ridden out, a long one is
/// reported as `Unavailable` while the caller still waits for an answer.
pub const ATTEMPTS_DEFAULT: u32 = 4;
/// The most attempts accepted from the command line: beyond it a caller waits
/// minutes for an answer.
pub const ATTEMPTS_MAX: u32 = 10;

/// The payment gateway's settings, flattened into `serve`.
#[derive(clap::Args, Clone)]
pub struct PaymentArgs {
    /// The payment gateway's (or simulator's) base URL; without it no payment
    /// reference can be issued.
    #[arg(long, env = "PASAPORTE_PAYMENTS_URL")]
    pub payments_url: Option<String>,
    /// The secret shared with the gateway that signs its callbacks.
    #[arg(long, env = "PASAPORTE_PAYMENTS_SECRET", hide_env_values = true)]
    pub payments_secret: Option<String>,
    /// Milliseconds one attempt of a gateway call may take.
    #[arg(long, env = "PASAPORTE_PAYMENTS_TIMEOUT_MS", default_value_t = ATTEMPT_TIMEOUT_MS_DEFAULT)]
    pub payments_timeout_ms: u64,
    /// Attempts per gateway call (1 to 10), with back-off between them.
    #[arg(long, env = "PASAPORTE_PAYMENTS_ATTEMPTS", default_value_t = ATTEMPTS_DEFAULT)]
    pub payments_attempts: u32,
}

/// Names the URL only: the secret never reaches a log.
impl std::fmt::Debug for PaymentArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentArgs")
            .field("payments_url", &self.payments_url)
            .field(
                "payments_secret",
                &self.payments_secret.as_ref().map(|_| "***"),
            )
            .field("payments_timeout_ms", &self.payments_timeout_ms)
            .field("payments_attempts", &self.payments_attempts)
            .finish()
    }
}

/// What `serve` needs to take payments: the gateway and the callback secret.
pub struct PaymentsConfig {
    pub gateway: HttpPayments,
    pub callback_secret: Vec<u8>,
}

impl PaymentArgs {
    /// The gateway and callback secret, or `None` when payments are not
    /// configured (neither URL nor secret); one without the other is an error.
    pub fn config(&self) -> anyhow::Result<Option<PaymentsConfig>> {
        match (&self.payments_url, &self.payments_secret) {
            (None, None) => Ok(None),
            (Some(url), Some(secret)) => {
                if secret.len() < SECRET_BYTES_MIN {
                    anyhow::bail!(
                        "PASAPORTE_PAYMENTS_SECRET is too short: use at least {SECRET_BYTES_MIN} characters"
                    );
                }
                if !(1..=ATTEMPTS_MAX).contains(&self.payments_attempts) {
                    anyhow::bail!("--payments-attempts must be 1 to {ATTEMPTS_MAX}");
                }
                let gateway = HttpPayments::new(
                    url,
                    Duration::from_millis(self.payments_timeout_ms.max(1)),
                    self.payments_attempts,
                )?;
                Ok(Some(PaymentsConfig {
                    gateway,
                    callback_secret: secret.as_bytes().to_vec(),
                }))
            }
            _ => anyhow::bail!(
                "give both PASAPORTE_PAYMENTS_URL and PASAPORTE_PAYMENTS_SECRET, or neither"
            ),
        }
    }
}

/// Shortest callback secret accepted (the signing scheme's minimum).
pub use crate::signing::SECRET_BYTES_MIN;

/// What applying a verified callback event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A new event: the reference moved to `status`; the caller moves the
    /// application on in the same transaction.
    Changed {
        application_id: String,
        reference: String,
        status: PaymentStatus,
    },
    /// The event was applied before (a retry or a replay): nothing changed.
    /// Answer 2xx so the gateway stops sending it.
    Replayed,
}

/// Why a verified event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event's currency, or its amount, does not fit the reference: a
    /// gateway fault for staff to look at; nothing was recorded.
    #[error("the event does not match its reference's amount or currency")]
    Mismatch,
    /// `NotFound`: an unknown reference; `Conflict`: the reference is not in a
    /// state the event applies to (e.g. a payment of a waived reference).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies a verified callback event inside `tx`: records it once
/// (`record_payment_event`) and, if new, marks the reference paid or refunded
/// (at the event's `occurred_ms`). The caller adds the application's
/// transition and audit event to `tx`, then commits.
pub async fn apply_event(
    tx: &mut PaymentTx,
    event: &PaymentEvent,
    received_ms: i64,
) -> Result<Applied, ApplyError> {
    let r = pasaporte_store::payment_reference_in(tx, &event.reference).await?;
    let amount_fits = match event.kind {
        PaymentEventKind::PaymentConfirmed => event.amount_minor == r.amount_minor,
        PaymentEventKind::RefundCompleted => event.amount_minor <= r.amount_minor,
    };
    if r.currency != event.currency || !amount_fits {
        return Err(ApplyError::Mismatch);
    }
    let fresh = pasaporte_store::record_payment_event(
        tx,
        &PaymentEventRow {
            event_id: event.event_id.clone(),
            reference: event.reference.clone(),
            kind: event.kind,
            amount_minor: event.amount_minor,
            received_ms,
        },
    )
    .await?;
    if !fresh {
        return Ok(Applied::Replayed);
    }
    let status = match event.kind {
        PaymentEventKind::PaymentConfirmed => {
            pasaporte_store::mark_reference_paid(tx, &event.reference, event.occurred_ms).await?;
            PaymentStatus::Paid
        }
        PaymentEventKind::RefundCompleted => {
            pasaporte_store::mark_refunded(tx, &event.reference, event.occurred_ms).await?;
            PaymentStatus::Refunded
        }
    };
    Ok(Applied::Changed {
        application_id: r.application_id,
        reference: r.reference,
        status,
    })
}

/// The refund id sent for a reference's (single, whole) refund: the same on
/// every pass, so a pass repeated before the callback arrives refunds once.
pub fn refund_id_of(reference: &str) -> String {
    format!("refund:{reference}")
}

/// Refunds asked for per pass of [`refund_pass`].
pub const REFUNDS_PER_PASS_MAX: u32 = 50;
/// Time between refund passes: refunds are not urgent, the gateway is not
/// hammered, and a refund asked for during an outage is asked again soon.
pub const REFUND_PASS_INTERVAL_MS: u64 = 30_000;

/// One pass of the refund worker: asks the gateway to refund each reference
/// in `refund_pending` (whole amount). A reference stays pending until the
/// `refund.completed` callback arrives; asking again is harmless (same
/// refund id). Returns how many the gateway accepted.
pub async fn refund_pass(store: &Store, gateway: &dyn PaymentGateway) -> anyhow::Result<usize> {
    let mut accepted = 0;
    for r in store.pending_refunds(REFUNDS_PER_PASS_MAX).await? {
        let Some(currency) = Currency::parse(&r.currency) else {
            tracing::error!(reference = %r.reference, "pending refund in an unknown currency");
            continue;
        };
        let amount = Money {
            currency,
            amount_minor: r.amount_minor,
        };
        match gateway
            .refund(&r.reference, &amount, &refund_id_of(&r.reference))
            .await
        {
            Ok(()) => accepted += 1,
            Err(PaymentError::Unavailable) => {
                tracing::warn!("payment gateway unavailable; refunds wait for the next pass");
                break;
            }
            Err(PaymentError::Refused(reason)) => {
                tracing::error!(reference = %r.reference, %reason, "refund refused by the gateway");
            }
        }
    }
    Ok(accepted)
}

/// The refund worker: [`refund_pass`] every `interval`, forever.
pub async fn run_refunds(
    store: Store,
    gateway: std::sync::Arc<dyn PaymentGateway>,
    interval: Duration,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = refund_pass(&store, gateway.as_ref()).await {
            tracing::warn!(error = %e, "refund pass failed");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_compiled_fee_schedule_reads() {
        let s = fee_schedule().unwrap();
        assert_eq!(s.rows().len(), 12);
    }

    #[test]
    fn payment_args_need_url_and_secret_together() {
        let args = |url: Option<&str>, secret: Option<&str>, attempts: u32| PaymentArgs {
            payments_url: url.map(str::to_string),
            payments_secret: secret.map(str::to_string),
            payments_timeout_ms: ATTEMPT_TIMEOUT_MS_DEFAULT,
            payments_attempts: attempts,
        };
        let good_secret = Some("0123456789abcdef");
        let url = Some("http://127.0.0.1:8091");
        assert!(args(None, None, 3).config().unwrap().is_none());
        assert!(args(url, good_secret, 3).config().unwrap().is_some());
        for bad in [
            args(url, None, 3),
            args(None, good_secret, 3),
            args(url, Some("short"), 3),
            args(url, good_secret, 0),
            args(url, good_secret, ATTEMPTS_MAX + 1),
            args(Some("127.0.0.1:8091"), good_secret, 3),
        ] {
            assert!(bad.config().is_err(), "{bad:?}");
        }
        let shown = format!("{:?}", args(url, good_secret, 3));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }
}
