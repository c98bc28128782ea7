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
pub use sim::{PaymentSimConfig, RunningPaymentSim, spawn_payment_sim};

use pasaporte_core::fees::{FeeError, FeeSchedule, Money};
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

/// Shortest callback secret accepted: 16 characters is the least that resists
/// guessing offline from one captured callback.
pub const SECRET_BYTES_MIN: usize = 16;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_compiled_fee_schedule_reads() {
        let s = fee_schedule().unwrap();
        assert_eq!(s.rows().len(), 12);
    }
}
