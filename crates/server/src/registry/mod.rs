//! The civil registry (Registraduría) adapter: asks whether a person exists
//! and what the registry records about them. The registry can be slow or down;
//! callers get a typed answer quickly and keep the application in the
//! pending-registry queue until the registry is back.
//!
//! Layout: this file holds the trait ([`CivilRegistry`]), its answers
//! ([`Lookup`], [`RegistryError`], [`RegistryStatus`]), the configuration
//! ([`RegistryConfig`], the `serve` flags [`RegistryArgs`]) and the JSON shapes
//! shared by client and simulator (`wire`); `client.rs` is [`HttpRegistry`]
//! (timeouts, retries with back-off and jitter, circuit breaker);
//! `breaker.rs` the circuit breaker as a state machine driven by the caller's
//! clock; `sim.rs` a registry simulator served over local HTTP (its module doc
//! describes the protocol).

pub mod breaker;
pub mod client;
pub mod sim;

pub use client::HttpRegistry;
pub use pasaporte_core::registry::{
    CapturedIdentity, Mismatch, RegistryQuery, RegistryRecord, Sex, VitalStatus, compare,
};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// One attempt's time limit: the registry answers in tens of milliseconds when
/// healthy; two seconds covers its slow days without holding a worker long.
pub const TIMEOUT_MS_DEFAULT: u64 = 2_000;
/// Attempts per lookup (the first plus two retries): enough to ride out a
/// dropped connection, few enough not to pile onto a registry in trouble.
pub const ATTEMPTS_DEFAULT: u32 = 3;
/// Upper bound accepted for `--registry-attempts`.
pub const ATTEMPTS_MAX: u32 = 10;
/// Back-off before the first retry; doubles on each further retry
/// (100, 200, 400 ms), with jitter so workers do not retry in step.
pub const BACKOFF_FIRST_MS_DEFAULT: u64 = 100;
/// Ceiling on one back-off, whatever the doubling says.
pub const BACKOFF_MAX_MS: u64 = 10_000;
/// Consecutive failed lookups that open the circuit: five in a row is an
/// outage, not bad luck, and stops us adding load to a registry that is down.
pub const BREAKER_FAILURES_DEFAULT: u32 = 5;
/// How long the circuit stays open before one probe is let through.
pub const COOL_DOWN_MS_DEFAULT: u64 = 30_000;
/// Largest answer read from the registry: one person is well under 1 KiB.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// What the registry answered about a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(RegistryRecord),
    NotFound,
}

impl Lookup {
    /// What the answer means for the application, given what the clerk
    /// captured.
    pub fn verdict(&self, captured: &CapturedIdentity) -> Verdict {
        match self {
            Lookup::NotFound => Verdict::NotFound,
            Lookup::Found(record) => {
                let mismatches = compare(captured, record);
                if mismatches.is_empty() {
                    Verdict::Match
                } else {
                    Verdict::Mismatch(mismatches)
                }
            }
        }
    }
}

/// The registry check's result for one application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The registry knows the person and every field agrees.
    Match,
    /// The registry knows the person; these fields disagree, or the person is
    /// deceased or the document cancelled.
    Mismatch(Vec<Mismatch>),
    /// The registry does not know the document.
    NotFound,
}

/// Asks the registry about `q` and compares the answer with `captured`.
pub async fn check(
    registry: &dyn CivilRegistry,
    q: &RegistryQuery,
    captured: &CapturedIdentity,
) -> Result<Verdict, RegistryError> {
    Ok(registry.lookup(q).await?.verdict(captured))
}

/// Why no answer was obtained. Messages carry no personal data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Timeouts, refused connections, 5xx answers, after every retry: try
    /// again later.
    #[error("the civil registry is unavailable: {reason}")]
    Unavailable { reason: &'static str },
    /// The circuit is open: the registry was not called. Try again after
    /// `retry_after_ms`.
    #[error("the civil registry is considered down; not called (retry in {retry_after_ms} ms)")]
    CircuitOpen { retry_after_ms: u64 },
    /// The registry answered something this client does not understand, or
    /// refused the request (4xx other than 404): retrying will not help.
    #[error("unexpected answer from the civil registry: {0}")]
    Protocol(String),
}

impl RegistryError {
    /// Whether asking again later may succeed (`Unavailable`, `CircuitOpen`):
    /// keep the application in the pending-registry queue. `Protocol` needs a
    /// person (a wrong URL, a changed protocol): retrying will not help.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unavailable { .. } | RegistryError::CircuitOpen { .. } => true,
            RegistryError::Protocol(_) => false,
        }
    }

    /// When to ask again, if the adapter knows (the circuit's cool-down).
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            RegistryError::CircuitOpen { retry_after_ms } => Some(*retry_after_ms),
            RegistryError::Unavailable { .. } | RegistryError::Protocol(_) => None,
        }
    }
}

/// The circuit breaker's state, as shown on the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Lookups go to the registry.
    Closed,
    /// Lookups are refused without calling the registry; open since this unix
    /// time in milliseconds.
    Open { since_ms: i64 },
    /// The cool-down has passed: the next lookup is a probe.
    HalfOpen,
}

/// The adapter's health, for the console ("Registro civil: no disponible
/// desde …") and the worker's scheduling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryStatus {
    pub breaker: BreakerState,
    pub consecutive_failures: u32,
    /// Unix milliseconds of the last lookup the registry answered.
    pub last_success_ms: Option<i64>,
}

impl RegistryStatus {
    /// Whether lookups are being sent to the registry right now.
    pub fn is_available(&self) -> bool {
        match self.breaker {
            BreakerState::Closed | BreakerState::HalfOpen => true,
            BreakerState::Open { .. } => false,
        }
    }

    /// For "Registro civil: no disponible desde …": unix milliseconds since
    /// which the circuit has been open, while it is.
    pub fn unavailable_since_ms(&self) -> Option<i64> {
        match self.breaker {
            BreakerState::Open { since_ms } => Some(since_ms),
            BreakerState::Closed | BreakerState::HalfOpen => None,
        }
    }
}

/// The civil registry as the rest of pasaporte sees it. Dyn-compatible, so
/// the app holds an `Arc<dyn CivilRegistry>` (HTTP in production, the
/// simulator or a fake in tests).
pub trait CivilRegistry: Send + Sync {
    fn lookup<'a>(
        &'a self,
        q: &'a RegistryQuery,
    ) -> Pin<Box<dyn Future<Output = Result<Lookup, RegistryError>> + Send + 'a>>;

    fn status(&self) -> RegistryStatus;
}

/// How [`HttpRegistry`] talks to the registry. `Default` gives the
/// production values with an empty `url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://127.0.0.1:8090` (no trailing path).
    pub url: String,
    pub timeout_ms: u64,
    pub attempts: u32,
    pub backoff_first_ms: u64,
    pub breaker_failures: u32,
    pub cool_down_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout_ms: TIMEOUT_MS_DEFAULT,
            attempts: ATTEMPTS_DEFAULT,
            backoff_first_ms: BACKOFF_FIRST_MS_DEFAULT,
            breaker_failures: BREAKER_FAILURES_DEFAULT,
            cool_down_ms: COOL_DOWN_MS_DEFAULT,
        }
    }
}

impl RegistryConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.clamp(1, ATTEMPTS_MAX)
    }

    /// The back-off before retry `retry` (1 for the first retry), before jitter.
    pub(crate) fn backoff_ms(&self, retry: u32) -> u64 {
        let shift = retry.saturating_sub(1).min(20);
        self.backoff_first_ms
            .saturating_mul(1u64 << shift)
            .min(BACKOFF_MAX_MS)
    }
}

/// The `serve` flags for the civil registry.
#[derive(clap::Args, Clone, Debug)]
pub struct RegistryArgs {
    /// The civil registry's base URL (for development, `pasaporte
    /// registry-sim`). Without it, applications wait in the pending-registry
    /// queue.
    #[arg(long, env = "PASAPORTE_REGISTRY_URL")]
    pub registry_url: Option<String>,
    /// Milliseconds one attempt may take.
    #[arg(long, env = "PASAPORTE_REGISTRY_TIMEOUT_MS", default_value_t = TIMEOUT_MS_DEFAULT)]
    pub registry_timeout_ms: u64,
    /// Attempts per lookup (1 to 10).
    #[arg(long, env = "PASAPORTE_REGISTRY_ATTEMPTS", default_value_t = ATTEMPTS_DEFAULT)]
    pub registry_attempts: u32,
    /// Milliseconds before the first retry (doubling after, with jitter).
    #[arg(long, env = "PASAPORTE_REGISTRY_BACKOFF_MS", default_value_t = BACKOFF_FIRST_MS_DEFAULT)]
    pub registry_backoff_ms: u64,
    /// Consecutive failed lookups that stop calls to the registry.
    #[arg(long, env = "PASAPORTE_REGISTRY_BREAKER_FAILURES", default_value_t = BREAKER_FAILURES_DEFAULT)]
    pub registry_breaker_failures: u32,
    /// Milliseconds before a stopped registry is probed again.
    #[arg(long, env = "PASAPORTE_REGISTRY_COOL_DOWN_MS", default_value_t = COOL_DOWN_MS_DEFAULT)]
    pub registry_cool_down_ms: u64,
}

impl RegistryArgs {
    /// The adapter to hold in the app, or `None` when no registry URL was
    /// given (applications then stay in the pending-registry queue).
    pub fn registry(&self) -> Result<Option<std::sync::Arc<dyn CivilRegistry>>, RegistryError> {
        match self.config() {
            Some(c) => Ok(Some(std::sync::Arc::new(HttpRegistry::new(c)?))),
            None => Ok(None),
        }
    }

    /// The client configuration, or `None` when no registry URL was given.
    pub fn config(&self) -> Option<RegistryConfig> {
        let url = self.registry_url.as_deref()?.trim();
        if url.is_empty() {
            return None;
        }
        Some(RegistryConfig {
            url: url.to_owned(),
            timeout_ms: self.registry_timeout_ms,
            attempts: self.registry_attempts,
            backoff_first_ms: self.registry_backoff_ms,
            breaker_failures: self.registry_breaker_failures,
            cool_down_ms: self.registry_cool_down_ms,
        })
    }
}

/// A small seeded generator (SplitMix64) for jitter and the simulator's
/// injected faults: runs repeat from a seed, and no dependency is needed.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Seeded from the operating system, falling back to the clock (jitter
    /// only needs to differ between processes, not to be secret).
    pub(crate) fn from_entropy() -> Self {
        let seed = getrandom::u64().unwrap_or_else(|_| now_unix_ms().unsigned_abs());
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The wall clock in unix milliseconds (for display only; the breaker's
/// cool-down uses the monotonic clock).
pub(crate) fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The JSON the registry (and the simulator) speak.
pub(crate) mod wire {
    use super::{RegistryQuery, RegistryRecord, Sex, VitalStatus};
    use pasaporte_core::person::{DocumentNumber, DocumentType};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug)]
    pub struct LookupRequest {
        pub document_type: String,
        pub document_number: String,
    }

    impl LookupRequest {
        pub fn from_query(q: &RegistryQuery) -> Self {
            Self {
                document_type: q.document_type.as_str().to_owned(),
                document_number: q.document_number.as_str().to_owned(),
            }
        }

        /// Parses the request; the error names the faulty field, never its value.
        pub fn to_query(&self) -> Result<RegistryQuery, &'static str> {
            let document_type = DocumentType::parse(&self.document_type).ok_or("document_type")?;
            let document_number =
                DocumentNumber::parse(document_type, &self.document_number, "document_number")
                    .map_err(|_| "document_number")?;
            Ok(RegistryQuery {
                document_type,
                document_number,
            })
        }
    }

    #[derive(Serialize, Deserialize, Debug)]
    pub struct LookupResponse {
        pub found: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub person: Option<Person>,
    }

    /// A person as the registry answers it.
    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub struct Person {
        pub surnames: String,
        pub given_names: String,
        /// `YYYY-MM-DD`.
        pub birth_date: String,
        pub birth_place: String,
        /// `F`, `M` or `X`.
        pub sex: String,
        pub nationality: String,
        /// `alive` or `deceased`.
        pub status: String,
        pub document_cancelled: bool,
    }

    impl Person {
        pub fn from_record(r: &RegistryRecord) -> Self {
            Self {
                surnames: r.surnames.clone(),
                given_names: r.given_names.clone(),
                birth_date: r.birth_date.to_string(),
                birth_place: r.birth_place.clone(),
                sex: r.sex.as_str().to_owned(),
                nationality: r.nationality.clone(),
                status: r.status.as_str().to_owned(),
                document_cancelled: r.document_cancelled,
            }
        }

        /// The error names the faulty field only, never its value.
        pub fn to_record(&self) -> Result<RegistryRecord, &'static str> {
            Ok(RegistryRecord {
                surnames: self.surnames.clone(),
                given_names: self.given_names.clone(),
                birth_date: self.birth_date.trim().parse().map_err(|_| "birth_date")?,
                birth_place: self.birth_place.clone(),
                sex: Sex::parse(&self.sex).ok_or("sex")?,
                nationality: self.nationality.trim().to_uppercase(),
                status: VitalStatus::parse(&self.status).ok_or("status")?,
                document_cancelled: self.document_cancelled,
            })
        }
    }

    /// A person added to the simulator: the document and the record.
    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub struct Entry {
        pub document_type: String,
        pub document_number: String,
        #[serde(flatten)]
        pub person: Person,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = RegistryConfig::default();
        assert_eq!(
            (1..=4).map(|r| c.backoff_ms(r)).collect::<Vec<_>>(),
            [100, 200, 400, 800]
        );
        assert_eq!(c.backoff_ms(60), BACKOFF_MAX_MS);
        let zero = RegistryConfig {
            attempts: 0,
            ..RegistryConfig::default()
        };
        assert_eq!(zero.attempts(), 1);
    }

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        registry: RegistryArgs,
    }

    #[test]
    fn flags_make_the_config() {
        use clap::Parser;
        let f = Flags::try_parse_from(["x"]).unwrap();
        assert!(f.registry.config().is_none());
        assert!(f.registry.registry().unwrap().is_none());
        let f = Flags::try_parse_from([
            "x",
            "--registry-url",
            "http://127.0.0.1:8090/",
            "--registry-timeout-ms",
            "500",
            "--registry-cool-down-ms",
            "1000",
        ])
        .unwrap();
        assert_eq!(
            f.registry.config(),
            Some(RegistryConfig {
                url: "http://127.0.0.1:8090/".into(),
                timeout_ms: 500,
                cool_down_ms: 1000,
                ..RegistryConfig::default()
            })
        );
        let reg = f.registry.registry().unwrap().unwrap();
        assert_eq!(reg.status().breaker, BreakerState::Closed);
    }

    #[test]
    fn errors_say_whether_to_retry() {
        assert!(RegistryError::Unavailable { reason: "timeout" }.is_transient());
        let open = RegistryError::CircuitOpen { retry_after_ms: 42 };
        assert!(open.is_transient());
        assert_eq!(open.retry_after_ms(), Some(42));
        assert!(!RegistryError::Protocol("x".into()).is_transient());
    }

    #[test]
    fn seeded_randomness_repeats() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
            b.unit();
            assert!(a.up_to(10) <= 10);
            b.up_to(10);
        }
    }
}
