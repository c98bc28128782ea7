//! [`HttpVendor`]: a [`PrintingVendor`] over HTTP (docs/vendor-protocol.md).
//! Every request is signed afresh at each attempt with the vendor's key.
//! A batch is retried with doubling back-off when the vendor cannot be
//! reached, times out, or answers 5xx or 429; that is safe because the
//! vendor keeps orders by `order_id` and answers `duplicate` to an order it
//! already holds. A 4xx other than 429 is a refusal of the whole batch and
//! is not retried.

use super::protocol::{
    BATCH_BODY_BYTES_MAX, BATCH_ORDERS_MAX, BATCHES_PATH, Batch, BatchAnswer, ErrorBody,
    ORDERS_PATH, OrderResult, OrderStatus,
};
use super::{PrintingVendor, VendorError, VendorFuture};
use crate::signing::SigningKey;
use std::time::Duration;

/// How long one attempt may take by default: a batch of 50 orders is a few
/// MB to upload and check.
pub const ATTEMPT_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Attempts per call by default: rides out a minute-long outage; the
/// pipeline's outbox retries longer ones on its next pass.
pub const ATTEMPTS_DEFAULT: u32 = 6;
/// Wait before the second attempt; doubled before each further one.
pub const BACKOFF_FIRST_MS: u64 = 500;
/// Longest wait between attempts.
pub const BACKOFF_MAX_MS: u64 = 15_000;
/// Longest refusal message kept from a vendor's answer.
const MESSAGE_CHARS_MAX: usize = 200;

/// One printing vendor over HTTP.
#[derive(Clone, Debug)]
pub struct HttpVendor {
    base: String,
    key: SigningKey,
    http: reqwest::Client,
    attempt_timeout: Duration,
    attempts: u32,
    backoff_first: Duration,
}

impl HttpVendor {
    /// A client of the vendor at `base_url` (e.g. `http://127.0.0.1:8092`)
    /// signing with `key`.
    pub fn new(
        base_url: &str,
        key: SigningKey,
        attempt_timeout: Duration,
        attempts: u32,
    ) -> anyhow::Result<Self> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("the vendor URL must start with http:// or https://");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(attempt_timeout)
            .build()?;
        Ok(Self {
            base,
            key,
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

    /// Sends one signed request, retrying; the successful answer's status
    /// and body (a 404 is returned, not retried, for the caller to judge).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), VendorError> {
        let url = format!("{}{path}", self.base);
        let mut wait = self.backoff_first;
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(BACKOFF_MAX_MS));
            }
            let ts = crate::signing::now_secs();
            let mut req = self
                .http
                .request(method.clone(), &url)
                .timeout(self.attempt_timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            for (name, value) in self.key.headers(ts, &body) {
                req = req.header(name, value);
            }
            let resp = match req.body(body.clone()).send().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(%path, attempt, error = %e, "printing vendor unreachable");
                    continue;
                }
            };
            let status = resp.status();
            let bytes = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(%path, attempt, error = %e, "printing vendor answer cut short");
                    continue;
                }
            };
            if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
                return Ok((status, bytes.to_vec()));
            }
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                tracing::warn!(%path, attempt, %status, "printing vendor failing");
                continue;
            }
            let (code, message) = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| (e.error, e.message))
                .unwrap_or_else(|_| (status.as_str().to_string(), String::new()));
            tracing::warn!(%path, %status, %code, "printing vendor refused");
            return Err(VendorError::Refused {
                status: status.as_u16(),
                code: code.chars().take(MESSAGE_CHARS_MAX).collect(),
                message: message.chars().take(MESSAGE_CHARS_MAX).collect(),
            });
        }
        Err(VendorError::Unavailable)
    }
}

impl PrintingVendor for HttpVendor {
    fn send_batch<'a>(&'a self, batch: &'a Batch) -> VendorFuture<'a, Vec<OrderResult>> {
        Box::pin(async move {
            if batch.orders.is_empty() || batch.orders.len() > BATCH_ORDERS_MAX {
                return Err(VendorError::Invalid("a batch holds 1 to 50 orders"));
            }
            let body = serde_json::to_vec(batch)
                .map_err(|_| VendorError::Invalid("the batch cannot be encoded"))?;
            if body.len() > BATCH_BODY_BYTES_MAX {
                return Err(VendorError::Invalid("the batch is too large"));
            }
            let (status, answer) = self.call(reqwest::Method::POST, BATCHES_PATH, body).await?;
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(VendorError::Unavailable);
            }
            let answer: BatchAnswer = serde_json::from_slice(&answer).map_err(|_| {
                tracing::warn!("printing vendor answered a batch without results");
                VendorError::Unavailable
            })?;
            // Every order must have its answer, or the batch is not known
            // to be delivered: send again (duplicates are answered as such).
            let complete = answer.results.len() == batch.orders.len()
                && batch
                    .orders
                    .iter()
                    .zip(&answer.results)
                    .all(|(o, r)| o.order_id == r.order_id);
            if !complete {
                tracing::warn!(batch = %batch.batch_id, "printing vendor's answer does not match the batch");
                return Err(VendorError::Unavailable);
            }
            Ok(answer.results)
        })
    }

    fn order_status<'a>(&'a self, order_id: &'a str) -> VendorFuture<'a, Option<OrderStatus>> {
        Box::pin(async move {
            if !super::protocol::is_id(order_id) {
                return Err(VendorError::Invalid("an order id is A-Z a-z 0-9 - _ ."));
            }
            let path = format!("{ORDERS_PATH}/{order_id}");
            let (status, answer) = self.call(reqwest::Method::GET, &path, Vec::new()).await?;
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            serde_json::from_slice(&answer).map(Some).map_err(|_| {
                tracing::warn!("printing vendor answered a status without one");
                VendorError::Unavailable
            })
        })
    }
}
