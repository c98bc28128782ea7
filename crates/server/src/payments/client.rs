//! [`HttpPayments`]: the [`PaymentGateway`] over HTTP, speaking the protocol
//! of the simulator (`sim.rs`'s module doc). Each call is retried a few times
//! with doubling back-off when the gateway cannot be reached, times out, or
//! answers 5xx or 429; a 4xx is the gateway's refusal and is not retried.
//! Retrying is safe because every call carries an `idempotency-key` the
//! gateway honours: `reference:<application_id>` and `refund:<refund_id>`.

use super::{GatewayFuture, PaymentError, PaymentGateway};
use pasaporte_core::fees::Money;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Wait before the second attempt; doubled before each further one.
pub const BACKOFF_FIRST_MS: u64 = 200;
/// Longest wait between attempts, so a caller is answered within seconds.
pub const BACKOFF_MAX_MS: u64 = 3_000;
/// Longest refusal reason kept from a gateway's answer.
const REASON_CHARS_MAX: usize = 200;
/// The header the gateway deduplicates requests by.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The body of `POST /v1/references`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateReference {
    pub application_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub description: String,
}

/// The answer to `POST /v1/references`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceCreated {
    pub reference: String,
}

/// The body of `POST /v1/refunds`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefundRequest {
    pub reference: String,
    pub amount_minor: i64,
    pub currency: String,
    pub refund_id: String,
}

/// An error answer: `{"error": "..."}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// The payment gateway over HTTP.
#[derive(Clone, Debug)]
pub struct HttpPayments {
    base: String,
    http: reqwest::Client,
    attempt_timeout: Duration,
    attempts: u32,
    backoff_first: Duration,
}

impl HttpPayments {
    /// A client of the gateway at `base_url` (e.g. `http://127.0.0.1:8091`).
    pub fn new(base_url: &str, attempt_timeout: Duration, attempts: u32) -> anyhow::Result<Self> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("the payments URL must start with http:// or https://");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(attempt_timeout)
            .build()?;
        Ok(Self {
            base,
            http,
            attempt_timeout,
            attempts: attempts.max(1),
            backoff_first: Duration::from_millis(BACKOFF_FIRST_MS),
        })
    }

    /// Changes the wait before the second attempt (tests use a short one).
    pub fn with_backoff_first(mut self, first: Duration) -> Self {
        self.backoff_first = first;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// POSTs `body` with `key`, retrying; the successful answer's body.
    async fn post<B: Serialize>(
        &self,
        path: &str,
        key: &str,
        body: &B,
    ) -> Result<Vec<u8>, PaymentError> {
        let url = format!("{}{path}", self.base);
        let mut wait = self.backoff_first;
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(BACKOFF_MAX_MS));
            }
            let sent = self
                .http
                .post(&url)
                .timeout(self.attempt_timeout)
                .header(IDEMPOTENCY_HEADER, key)
                .json(body)
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(%path, attempt, error = %e, "payment gateway unreachable");
                    continue;
                }
            };
            let status = resp.status();
            let bytes = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(%path, attempt, error = %e, "payment gateway answer cut short");
                    continue;
                }
            };
            if status.is_success() {
                return Ok(bytes.to_vec());
            }
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                tracing::warn!(%path, attempt, %status, "payment gateway failing");
                continue;
            }
            let reason = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| status.to_string());
            tracing::warn!(%path, %status, "payment gateway refused");
            return Err(PaymentError::Refused(
                reason.chars().take(REASON_CHARS_MAX).collect(),
            ));
        }
        Err(PaymentError::Unavailable)
    }
}

impl PaymentGateway for HttpPayments {
    fn create_reference<'a>(
        &'a self,
        application_id: &'a str,
        amount: &'a Money,
        description: &'a str,
    ) -> GatewayFuture<'a, String> {
        Box::pin(async move {
            let body = CreateReference {
                application_id: application_id.to_string(),
                amount_minor: amount.amount_minor,
                currency: amount.currency.code().to_string(),
                description: description.to_string(),
            };
            let key = format!("reference:{application_id}");
            let answer = self.post("/v1/references", &key, &body).await?;
            let created: ReferenceCreated = serde_json::from_slice(&answer).map_err(|_| {
                tracing::warn!("payment gateway answered a reference without one");
                PaymentError::Unavailable
            })?;
            Ok(created.reference)
        })
    }

    fn refund<'a>(
        &'a self,
        reference: &'a str,
        amount: &'a Money,
        refund_id: &'a str,
    ) -> GatewayFuture<'a, ()> {
        Box::pin(async move {
            let body = RefundRequest {
                reference: reference.to_string(),
                amount_minor: amount.amount_minor,
                currency: amount.currency.code().to_string(),
                refund_id: refund_id.to_string(),
            };
            let key = format!("refund:{refund_id}");
            self.post("/v1/refunds", &key, &body).await?;
            Ok(())
        })
    }
}
