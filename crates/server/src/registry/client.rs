//! [`HttpRegistry`]: the civil registry over HTTP (the protocol is described
//! in `sim.rs`). Each attempt has its own timeout; failed attempts (timeouts,
//! connection errors, 5xx) are retried with exponential back-off and jitter;
//! a 4xx is not retried (a 404 means "not found" only with the protocol's
//! `{"found":false}` body). A lookup that fails after its retries
//! counts against the circuit breaker; while the circuit is open lookups are
//! refused at once, without calling the registry.

use super::breaker::Breaker;
use super::wire::{LookupRequest, LookupResponse};
use super::{
    CivilRegistry, Lookup, RESPONSE_BYTES_MAX, RegistryConfig, RegistryError, RegistryQuery,
    RegistryStatus, SplitMix64, now_unix_ms,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct HttpRegistry {
    http: reqwest::Client,
    lookup_url: String,
    config: RegistryConfig,
    breaker: Mutex<Breaker>,
    jitter: Mutex<SplitMix64>,
}

/// How one attempt ended.
enum Attempt {
    Answer(Lookup),
    /// Worth retrying (timeout, connection, 5xx).
    Retry(&'static str),
    /// The registry answered, but not usefully; retrying will not help.
    Fatal(String),
}

impl HttpRegistry {
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout())
            .build()
            .map_err(|_| RegistryError::Protocol("cannot build the HTTP client".into()))?;
        let lookup_url = format!("{}/v1/persons/lookup", config.url.trim_end_matches('/'));
        let breaker = Breaker::new(
            config.breaker_failures,
            Duration::from_millis(config.cool_down_ms),
        );
        Ok(Self {
            http,
            lookup_url,
            config,
            breaker: Mutex::new(breaker),
            jitter: Mutex::new(SplitMix64::from_entropy()),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // A panic while holding the lock cannot leave the breaker half
        // updated (each method is a few assignments), so a poisoned lock is
        // still usable.
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// "Equal jitter": half the back-off fixed, half random, so retries of
    /// many workers spread out but none retries at once.
    fn backoff(&self, retry: u32) -> Duration {
        let base = self.config.backoff_ms(retry);
        let half = base / 2;
        let random = self
            .jitter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .up_to(base - half);
        Duration::from_millis(half + random)
    }

    async fn lookup_inner(&self, q: &RegistryQuery) -> Result<Lookup, RegistryError> {
        if let Err(retry_after_ms) = self.breaker().admit(Instant::now()) {
            return Err(RegistryError::CircuitOpen { retry_after_ms });
        }
        let body = LookupRequest::from_query(q);
        let attempts = self.config.attempts();
        let mut reason = "no attempt made";
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            match self.attempt(&body).await {
                Attempt::Answer(lookup) => {
                    self.breaker().record_success(now_unix_ms());
                    return Ok(lookup);
                }
                Attempt::Fatal(msg) => {
                    // The registry is up (it answered): this is not an outage.
                    self.breaker().record_success(now_unix_ms());
                    tracing::warn!(error = %msg, "civil registry: unusable answer");
                    return Err(RegistryError::Protocol(msg));
                }
                Attempt::Retry(why) => {
                    tracing::debug!(
                        attempt,
                        attempts,
                        reason = why,
                        "civil registry attempt failed"
                    );
                    reason = why;
                }
            }
        }
        self.breaker().record_failure(Instant::now(), now_unix_ms());
        tracing::warn!(attempts, reason, "civil registry unavailable");
        Err(RegistryError::Unavailable { reason })
    }

    async fn attempt(&self, body: &LookupRequest) -> Attempt {
        let sent = self
            .http
            .post(&self.lookup_url)
            .timeout(self.config.timeout())
            .json(body)
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Attempt::Retry("timeout"),
            Err(e) if e.is_connect() => return Attempt::Retry("connection refused or failed"),
            Err(_) => return Attempt::Retry("request failed"),
        };
        let status = resp.status();
        if status.is_server_error() {
            return Attempt::Retry(if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                "service unavailable (503)"
            } else {
                "server error (5xx)"
            });
        }
        // A 404 is "not found" only when the body says so: a 404 from a wrong
        // URL must not turn every applicant into a person the registry lacks.
        let not_found = status == reqwest::StatusCode::NOT_FOUND;
        if !status.is_success() && !not_found {
            return Attempt::Fatal(format!("the registry refused the request ({status})"));
        }
        let mut bytes = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > RESPONSE_BYTES_MAX {
                        return Attempt::Fatal("answer too large".into());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Attempt::Retry("timeout"),
                Err(_) => return Attempt::Retry("answer interrupted"),
            }
        }
        let parsed: LookupResponse = match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(_) if not_found => {
                return Attempt::Fatal(
                    "no lookup route at this URL (404): check the registry URL".into(),
                );
            }
            Err(_) => return Attempt::Fatal("answer is not the expected JSON".into()),
        };
        if not_found && parsed.found {
            return Attempt::Fatal("found with a 404 status".into());
        }
        match (parsed.found, parsed.person) {
            (false, _) => Attempt::Answer(Lookup::NotFound),
            (true, None) => Attempt::Fatal("found without a person".into()),
            (true, Some(p)) => match p.to_record() {
                Ok(r) => Attempt::Answer(Lookup::Found(r)),
                Err(field) => Attempt::Fatal(format!("invalid field in the answer: {field}")),
            },
        }
    }
}

impl CivilRegistry for HttpRegistry {
    fn lookup<'a>(
        &'a self,
        q: &'a RegistryQuery,
    ) -> Pin<Box<dyn Future<Output = Result<Lookup, RegistryError>> + Send + 'a>> {
        Box::pin(self.lookup_inner(q))
    }

    fn status(&self) -> RegistryStatus {
        self.breaker().status(Instant::now())
    }
}
