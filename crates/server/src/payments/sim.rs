//! The payment simulator: a local stand-in for the payment gateway, for
//! development, demos and tests. State lives in memory; nothing is persisted.
//!
//! Protocol (JSON bodies; errors are `{"error": "..."}`):
//! - `POST /v1/references` `{application_id, amount_minor, currency,
//!   description}` → 201 `{reference}`. With an `idempotency-key` header a
//!   repeated request gets the first answer (200); the same key with another
//!   body is 409.
//! - `POST /v1/references/{reference}/pay` stands for the citizen paying at a
//!   bank or online → 200 `{event_id}`; then a signed `payment.confirmed`
//!   callback is delivered to the callback URL. 404 unknown, 409 already paid.
//! - `POST /v1/refunds` `{reference, amount_minor, currency, refund_id}` → 202
//!   `{event_id}` and a signed `refund.completed` callback. The same
//!   `refund_id` again answers the same event without a second refund; 409
//!   when the reference is not paid, 422 for an amount above the payment or
//!   another currency.
//! - `POST /admin/replay/{event_id}` re-sends a past event, byte for byte,
//!   with a fresh timestamp and signature → 202.
//! - `GET /admin/events` → every event with its delivery state.
//! - `POST /admin/outage` `{"down": bool}` and `GET /admin/outage` →
//!   `{down, refused}`: while down every `/v1` request is answered 503
//!   (`refused` counts them); callbacks still go out.
//!
//! Callbacks are POSTed with the headers of `callback.rs`, signed afresh at
//! each attempt, and retried with doubling back-off until a 2xx answer (at
//! most [`DELIVERY_ATTEMPTS_MAX`] attempts).

use super::callback::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WireEvent, sign};
use super::client::{
    CreateReference, ErrorBody, IDEMPOTENCY_HEADER, ReferenceCreated, RefundRequest,
};
use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pasaporte_core::fees::PaymentEventKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most references the simulator keeps: a long demo, bounded memory.
pub const REFERENCES_MAX: usize = 100_000;
/// Most events kept (each is a few hundred bytes).
pub const EVENTS_MAX: usize = 200_000;
/// Most delivery attempts of one callback: with back-off capped at
/// [`DELIVERY_BACKOFF_MAX_MS`] that is about ten minutes of trying.
pub const DELIVERY_ATTEMPTS_MAX: u32 = 40;
/// Wait after the first failed delivery; doubled after each further one.
pub const DELIVERY_BACKOFF_FIRST_MS: u64 = 100;
/// Longest wait between delivery attempts.
pub const DELIVERY_BACKOFF_MAX_MS: u64 = 15_000;
/// How long one delivery attempt may take.
pub const DELIVERY_TIMEOUT_MS: u64 = 5_000;
/// Largest request body the simulator reads.
pub const SIM_BODY_BYTES_MAX: usize = 16 * 1024;
/// Longest description, id or key accepted.
const FIELD_CHARS_MAX: usize = 200;

/// How to run the simulator.
#[derive(Clone)]
pub struct PaymentSimConfig {
    /// Where to listen (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where callbacks are POSTed (pasaporte's callback route).
    pub callback_url: String,
    /// The secret callbacks are signed with, shared with pasaporte.
    pub secret: Vec<u8>,
    /// Wait after the first failed delivery (tests use a short one).
    pub delivery_backoff_first: Duration,
}

impl PaymentSimConfig {
    /// On 127.0.0.1, a free port, the default back-off.
    pub fn local(callback_url: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            callback_url: callback_url.into(),
            secret: secret.into(),
            delivery_backoff_first: Duration::from_millis(DELIVERY_BACKOFF_FIRST_MS),
        }
    }
}

/// Names the callback URL only: the secret never reaches a log.
impl std::fmt::Debug for PaymentSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSimConfig")
            .field("listen", &self.listen)
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SimStatus {
    Created,
    Paid,
}

struct SimReference {
    amount_minor: i64,
    currency: String,
    status: SimStatus,
    refunded_minor: i64,
}

struct SimEvent {
    event: WireEvent,
    /// The exact bytes delivered, so a replay is the same body.
    body: Arc<Vec<u8>>,
    delivered: bool,
    attempts: u32,
}

#[derive(Default)]
struct SimState {
    references: HashMap<String, SimReference>,
    /// Idempotency key → (request body, answer).
    idempotency: HashMap<String, (Value, Value)>,
    /// Refund id → its event id.
    refunds: HashMap<String, String>,
    events: Vec<SimEvent>,
    event_index: HashMap<String, usize>,
    down: bool,
    refused: u64,
}

struct Sim {
    cfg: PaymentSimConfig,
    state: Mutex<SimState>,
    http: reqwest::Client,
    /// Set to true to stop deliveries; held here so the channel stays open
    /// (a closed channel would read as "stop") as long as the simulator lives.
    stop_tx: tokio::sync::watch::Sender<bool>,
}

type SimRef = Arc<Sim>;

/// One event as `GET /admin/events` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimEventView {
    pub event_id: String,
    pub kind: String,
    pub reference: String,
    pub amount_minor: i64,
    pub currency: String,
    pub occurred_ms: i64,
    pub delivered: bool,
    pub attempts: u32,
}

/// The simulator's outage switch and what it refused.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutageView {
    pub down: bool,
    pub refused: u64,
}

#[derive(Deserialize)]
struct OutageSet {
    down: bool,
}

/// A refusal, rendered as `{"error": ...}` with its status.
struct SimError(StatusCode, String);

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        err(self.0, &self.1)
    }
}

fn fail(status: StatusCode, message: &str) -> SimError {
    SimError(status, message.to_string())
}

fn err(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.to_string(),
        }),
    )
        .into_response()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl Sim {
    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts and refuses a `/v1` request during an outage.
    fn outage(&self) -> Option<Response> {
        let mut s = self.lock();
        if s.down {
            s.refused += 1;
            return Some(err(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment gateway down (simulated outage)",
            ));
        }
        None
    }
}

/// The simulator's routes (its state inside).
fn router(sim: SimRef) -> Router {
    Router::new()
        .route("/v1/references", post(create_reference))
        .route("/v1/references/{reference}/pay", post(pay))
        .route("/v1/refunds", post(refund))
        .route("/admin/replay/{event_id}", post(replay))
        .route("/admin/events", get(events))
        .route("/admin/outage", get(outage_get).post(outage_set))
        .layer(axum::extract::DefaultBodyLimit::max(SIM_BODY_BYTES_MAX))
        .with_state(sim)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(T, Value), SimError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| fail(StatusCode::BAD_REQUEST, "the body is not JSON"))?;
    let t = serde_json::from_value(value.clone())
        .map_err(|e| fail(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))?;
    Ok((t, value))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, SimError> {
    match headers.get(IDEMPOTENCY_HEADER) {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= FIELD_CHARS_MAX => Ok(Some(k.to_string())),
            _ => Err(fail(StatusCode::BAD_REQUEST, "bad idempotency-key")),
        },
    }
}

async fn create_reference(
    State(sim): State<SimRef>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = sim.outage() {
        return r;
    }
    let (req, value): (CreateReference, Value) = match parse_json(&body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    if req.amount_minor <= 0
        || req.currency.len() != 3
        || req.application_id.is_empty()
        || req.application_id.len() > FIELD_CHARS_MAX
        || req.description.chars().count() > FIELD_CHARS_MAX
    {
        return err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "application_id, a positive amount_minor, a 3-letter currency and a short description are needed",
        );
    }
    let mut s = sim.lock();
    if let Some(k) = &key
        && let Some((seen, answer)) = s.idempotency.get(k)
    {
        if *seen != value {
            return err(
                StatusCode::CONFLICT,
                "idempotency-key reused with another request",
            );
        }
        return (StatusCode::OK, Json(answer.clone())).into_response();
    }
    if s.references.len() >= REFERENCES_MAX {
        return err(StatusCode::INSUFFICIENT_STORAGE, "simulator full");
    }
    let reference = new_id("ref");
    s.references.insert(
        reference.clone(),
        SimReference {
            amount_minor: req.amount_minor,
            currency: req.currency,
            status: SimStatus::Created,
            refunded_minor: 0,
        },
    );
    let answer = json!(ReferenceCreated {
        reference: reference.clone()
    });
    if let Some(k) = key
        && s.idempotency.len() < REFERENCES_MAX
    {
        s.idempotency.insert(k, (value, answer.clone()));
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// Records a new event and starts delivering it; its id.
fn emit(
    sim: &SimRef,
    s: &mut SimState,
    kind: PaymentEventKind,
    reference: &str,
    amount_minor: i64,
    currency: &str,
) -> Result<String, SimError> {
    if s.events.len() >= EVENTS_MAX {
        return Err(fail(StatusCode::INSUFFICIENT_STORAGE, "simulator full"));
    }
    let event = WireEvent {
        event_id: new_id("evt"),
        kind: kind.as_str().to_string(),
        reference: reference.to_string(),
        amount_minor,
        currency: currency.to_string(),
        occurred_ms: now_ms(),
    };
    let body = serde_json::to_vec(&event)
        .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the event"))?;
    let id = event.event_id.clone();
    s.event_index.insert(id.clone(), s.events.len());
    s.events.push(SimEvent {
        event,
        body: Arc::new(body),
        delivered: false,
        attempts: 0,
    });
    tokio::spawn(deliver(sim.clone(), id.clone()));
    Ok(id)
}

async fn pay(State(sim): State<SimRef>, Path(reference): Path<String>) -> Response {
    if let Some(r) = sim.outage() {
        return r;
    }
    let mut s = sim.lock();
    let Some(r) = s.references.get_mut(&reference) else {
        return err(StatusCode::NOT_FOUND, "unknown reference");
    };
    if r.status != SimStatus::Created {
        return err(StatusCode::CONFLICT, "reference already paid");
    }
    r.status = SimStatus::Paid;
    let (amount, currency) = (r.amount_minor, r.currency.clone());
    match emit(
        &sim,
        &mut s,
        PaymentEventKind::PaymentConfirmed,
        &reference,
        amount,
        &currency,
    ) {
        Ok(event_id) => (StatusCode::OK, Json(json!({ "event_id": event_id }))).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn refund(State(sim): State<SimRef>, body: axum::body::Bytes) -> Response {
    if let Some(r) = sim.outage() {
        return r;
    }
    let (req, _): (RefundRequest, Value) = match parse_json(&body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    if req.refund_id.is_empty() || req.refund_id.len() > FIELD_CHARS_MAX {
        return err(StatusCode::UNPROCESSABLE_ENTITY, "a refund_id is needed");
    }
    let mut s = sim.lock();
    if let Some(event_id) = s.refunds.get(&req.refund_id) {
        return (StatusCode::ACCEPTED, Json(json!({ "event_id": event_id }))).into_response();
    }
    let Some(r) = s.references.get_mut(&req.reference) else {
        return err(StatusCode::NOT_FOUND, "unknown reference");
    };
    if r.status != SimStatus::Paid {
        return err(StatusCode::CONFLICT, "reference not paid");
    }
    if req.currency != r.currency
        || req.amount_minor <= 0
        || req.amount_minor > r.amount_minor - r.refunded_minor
    {
        return err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the refund must be in the payment's currency and not above what is left of it",
        );
    }
    r.refunded_minor += req.amount_minor;
    match emit(
        &sim,
        &mut s,
        PaymentEventKind::RefundCompleted,
        &req.reference,
        req.amount_minor,
        &req.currency,
    ) {
        Ok(event_id) => {
            s.refunds.insert(req.refund_id, event_id.clone());
            (StatusCode::ACCEPTED, Json(json!({ "event_id": event_id }))).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn replay(State(sim): State<SimRef>, Path(event_id): Path<String>) -> Response {
    if !sim.lock().event_index.contains_key(&event_id) {
        return err(StatusCode::NOT_FOUND, "unknown event");
    }
    tokio::spawn(deliver(sim.clone(), event_id.clone()));
    (StatusCode::ACCEPTED, Json(json!({ "event_id": event_id }))).into_response()
}

async fn events(State(sim): State<SimRef>) -> Json<Vec<SimEventView>> {
    let s = sim.lock();
    Json(
        s.events
            .iter()
            .map(|e| SimEventView {
                event_id: e.event.event_id.clone(),
                kind: e.event.kind.clone(),
                reference: e.event.reference.clone(),
                amount_minor: e.event.amount_minor,
                currency: e.event.currency.clone(),
                occurred_ms: e.event.occurred_ms,
                delivered: e.delivered,
                attempts: e.attempts,
            })
            .collect(),
    )
}

fn outage_view(s: &SimState) -> OutageView {
    OutageView {
        down: s.down,
        refused: s.refused,
    }
}

async fn outage_get(State(sim): State<SimRef>) -> Json<OutageView> {
    Json(outage_view(&sim.lock()))
}

async fn outage_set(State(sim): State<SimRef>, Json(set): Json<OutageSet>) -> Json<OutageView> {
    let mut s = sim.lock();
    s.down = set.down;
    Json(outage_view(&s))
}

/// Delivers one event until the callback URL answers 2xx, the attempts run
/// out or the simulator stops. Each attempt is signed with its own timestamp.
async fn deliver(sim: SimRef, event_id: String) {
    let mut stop = sim.stop_tx.subscribe();
    let delivered = crate::signing::Delivery {
        http: &sim.http,
        url: &sim.cfg.callback_url,
        event_id: &event_id,
        attempts: DELIVERY_ATTEMPTS_MAX,
        first_wait: sim.cfg.delivery_backoff_first,
        max_wait: Duration::from_millis(DELIVERY_BACKOFF_MAX_MS),
        attempt_timeout: Duration::from_millis(DELIVERY_TIMEOUT_MS),
    }
    .run(
        &mut stop,
        || {
            let mut s = sim.lock();
            let i = *s.event_index.get(&event_id)?;
            s.events[i].attempts += 1;
            Some(s.events[i].body.clone())
        },
        |ts, body| {
            [
                (TIMESTAMP_HEADER, ts.to_string()),
                (SIGNATURE_HEADER, sign(&sim.cfg.secret, ts, body)),
            ]
        },
    )
    .await;
    if delivered {
        let mut s = sim.lock();
        if let Some(&i) = s.event_index.get(&event_id) {
            s.events[i].delivered = true;
        }
    }
}

/// A simulator serving in the background; stops when dropped.
pub struct RunningPaymentSim {
    pub addr: SocketAddr,
    sim: SimRef,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningPaymentSim {
    /// `http://ADDR`, the base URL for [`super::HttpPayments`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and delivering, and waits for the server to finish.
    pub async fn shutdown(mut self) {
        let _ = self.sim.stop_tx.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningPaymentSim {
    fn drop(&mut self) {
        let _ = self.sim.stop_tx.send(true);
    }
}

fn build(cfg: PaymentSimConfig) -> anyhow::Result<SimRef> {
    if !(cfg.callback_url.starts_with("http://") || cfg.callback_url.starts_with("https://")) {
        anyhow::bail!("the callback URL must start with http:// or https://");
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(DELIVERY_TIMEOUT_MS))
        .build()?;
    Ok(Arc::new(Sim {
        cfg,
        state: Mutex::new(SimState::default()),
        http,
        stop_tx: tokio::sync::watch::channel(false).0,
    }))
}

/// The simulator as a Router, to serve or nest elsewhere (`cfg.listen` is
/// not used). Its deliveries run until they succeed or their attempts end.
pub fn payment_sim_router(cfg: PaymentSimConfig) -> anyhow::Result<Router> {
    Ok(router(build(cfg)?))
}

/// Starts the simulator on `cfg.listen` (port 0 allowed) in the background.
pub async fn spawn_payment_sim(cfg: PaymentSimConfig) -> anyhow::Result<RunningPaymentSim> {
    let listen = cfg.listen;
    let sim = build(cfg)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let app = router(sim.clone());
    let mut stop = sim.stop_tx.subscribe();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "payment simulator stopped");
        }
    });
    Ok(RunningPaymentSim {
        addr,
        sim,
        task: Some(task),
    })
}

/// `pasaporte payment-sim`: runs the simulator until Ctrl-C or SIGTERM.
pub async fn run_cli(
    listen: SocketAddr,
    callback_url: String,
    secret_env: String,
) -> anyhow::Result<()> {
    let secret = std::env::var(&secret_env).with_context(|| {
        format!("set the callback secret in the environment variable {secret_env}")
    })?;
    if secret.len() < super::SECRET_BYTES_MIN {
        anyhow::bail!(
            "{secret_env} is too short: use at least {} characters",
            super::SECRET_BYTES_MIN
        );
    }
    let mut cfg = PaymentSimConfig::local(callback_url, secret.into_bytes());
    cfg.listen = listen;
    let sim = spawn_payment_sim(cfg).await?;
    println!("payment simulator listening on http://{}", sim.addr);
    crate::shutdown_signal().await;
    sim.shutdown().await;
    Ok(())
}
