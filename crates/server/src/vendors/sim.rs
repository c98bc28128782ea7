//! The vendor simulator: a local stand-in for a printing vendor speaking
//! docs/vendor-protocol.md, for development, demos and tests. State lives in
//! memory; nothing is persisted.
//!
//! It verifies every request's signature, re-checks every order (booklet
//! type, fields, the MRZ with [`icao9303::Mrz::parse`], EF.COM and DG1 against
//! the MRZ), keeps orders by `order_id` so a re-sent batch is answered
//! `duplicate` and never prints twice, and "prints" at `orders_per_s`:
//! accepted → in_production → printed → quality_passed → shipped (or
//! quality_failed at `quality_reject_rate`), each step a signed callback.
//! An order's events are delivered in order, each retried with back-off until
//! the callback URL answers 2xx; production of an order starts once its
//! `accepted` event was acknowledged.
//!
//! Besides the protocol's routes it has (unsigned, simulator only):
//! `GET /admin/orders`, `POST /admin/outage {"down": bool}` and
//! `GET /admin/outage` (while down every `/v1` request is answered 503;
//! callbacks still go out), and `POST /admin/replay/{event_id}` (sends a past
//! event again, same body, fresh signature). A configurable share of `/v1`
//! requests fails with 500 before doing anything (`failure_rate`).
//! Randomness is seeded (`seed`), so a run can be repeated.

use super::protocol::{
    BATCH_BODY_BYTES_MAX, BATCH_ORDERS_MAX, BATCHES_PATH, Batch, BatchAnswer, BookletType,
    CHIP_FILE_BYTES_MAX, ErrorBody, EventKind, ORDERS_PATH, Order, OrderResult, OrderStatus,
    Outcome, RejectReason, TEXT_CHARS_MAX, VendorEvent, is_id,
};
use crate::signing::{SignatureError, SigningKey, verify_keyed};
use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most orders the simulator keeps: a long demo, bounded memory (an order
/// keeps a digest and its events, not its chip files).
pub const ORDERS_MAX: usize = 200_000;
/// Fastest production rate accepted: beyond it the callbacks, not the
/// simulator, are what is measured.
pub const ORDERS_PER_S_MAX: f64 = 10_000.0;
/// How often the production loop runs.
pub const PRODUCTION_TICK_MS: u64 = 20;
/// Most queued orders looked at per production tick beyond those produced:
/// orders whose `accepted` is not yet acknowledged are skipped, and a
/// callback URL that is down must not make every tick walk the whole queue.
pub const PRODUCTION_SCAN_MAX: usize = 1_000;
/// Most delivery attempts of one callback: with back-off capped at
/// [`DELIVERY_BACKOFF_MAX_MS`] that is about ten minutes of trying.
pub const DELIVERY_ATTEMPTS_MAX: u32 = 40;
/// Wait after the first failed delivery; doubled after each further one.
pub const DELIVERY_BACKOFF_FIRST_MS: u64 = 100;
/// Longest wait between delivery attempts.
pub const DELIVERY_BACKOFF_MAX_MS: u64 = 15_000;
/// How long one delivery attempt may take.
pub const DELIVERY_TIMEOUT_MS: u64 = 5_000;
/// Reasons a booklet fails quality control (no personal data).
const QUALITY_REASONS: [&str; 4] = [
    "print_defect_data_page",
    "chip_encoding_failed",
    "laminate_bubble",
    "mrz_print_unreadable",
];

/// How to run the simulator.
#[derive(Clone)]
pub struct VendorSimConfig {
    /// Where to listen (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where callbacks are POSTed (pasaporte's vendor callback route).
    pub callback_url: String,
    /// The key shared with pasaporte: verifies requests, signs callbacks.
    pub key: SigningKey,
    /// Booklets finished per second.
    pub orders_per_s: f64,
    /// Share of booklets failing quality control, 0 to 1.
    pub quality_reject_rate: f64,
    /// Share of `/v1` requests answered 500 (before doing anything), 0 to 1.
    pub failure_rate: f64,
    /// Seed of the simulator's randomness.
    pub seed: u64,
    /// Wait after the first failed delivery (tests use a short one).
    pub delivery_backoff_first: Duration,
}

impl VendorSimConfig {
    /// On 127.0.0.1, a free port, 50 booklets/s, no rejects, no failures.
    pub fn local(callback_url: impl Into<String>, key: SigningKey) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            callback_url: callback_url.into(),
            key,
            orders_per_s: 50.0,
            quality_reject_rate: 0.0,
            failure_rate: 0.0,
            seed: 1,
            delivery_backoff_first: Duration::from_millis(DELIVERY_BACKOFF_FIRST_MS),
        }
    }
}

/// Names the settings only: the key's secret never reaches a log.
impl std::fmt::Debug for VendorSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorSimConfig")
            .field("listen", &self.listen)
            .field("callback_url", &self.callback_url)
            .field("key", &self.key)
            .field("orders_per_s", &self.orders_per_s)
            .field("quality_reject_rate", &self.quality_reject_rate)
            .field("failure_rate", &self.failure_rate)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// `pasaporte vendor-sim`'s arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct VendorSimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8092")]
    pub listen: SocketAddr,
    /// Where status callbacks are POSTed.
    #[arg(long, default_value = "http://127.0.0.1:8080/api/v1/vendors/callback")]
    pub callback_url: String,
    /// The environment variable holding the key shared with pasaporte.
    #[arg(long, default_value = "PASAPORTE_VENDOR_KEY")]
    pub key_env: String,
    /// The key's id (`x-pasaporte-key-id`).
    #[arg(long, default_value = "vendor-sim")]
    pub key_id: String,
    /// Booklets finished per second.
    #[arg(long, default_value_t = 50.0)]
    pub orders_per_s: f64,
    /// Share of booklets failing quality control (0 to 1).
    #[arg(long, default_value_t = 0.02)]
    pub quality_reject_rate: f64,
    /// Share of requests answered 500 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub failure_rate: f64,
    /// Seed of the simulator's randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// SplitMix64: small, seeded, good enough to roll dice for a simulator.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        // 53 random bits fit an f64's mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, rate: f64) -> bool {
        self.next_f64() < rate
    }
}

struct SimOrder {
    batch_id: String,
    /// SHA-256 of the order's JSON: the same id with other content is a conflict.
    digest: [u8; 32],
    /// Indices into `SimState::events`, in order.
    events: Vec<usize>,
    /// The blank booklet pasaporte named: the one shipped.
    booklet_serial: String,
}

struct SimEvent {
    event: VendorEvent,
    /// The exact bytes delivered, so a replay is the same body.
    body: Arc<Vec<u8>>,
    delivered: bool,
    attempts: u32,
}

struct SimState {
    orders: HashMap<String, SimOrder>,
    /// Orders accepted and not yet produced, oldest first.
    queue: VecDeque<String>,
    events: Vec<SimEvent>,
    event_index: HashMap<String, usize>,
    down: bool,
    refused: u64,
    rng: Rng,
}

struct Sim {
    cfg: VendorSimConfig,
    state: Mutex<SimState>,
    http: reqwest::Client,
    /// Set to true to stop production and deliveries; held here so the
    /// channel stays open as long as the simulator lives.
    stop_tx: tokio::sync::watch::Sender<bool>,
}

type SimRef = Arc<Sim>;

/// One event as `GET /admin/orders` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimEventView {
    pub event_id: String,
    pub kind: EventKind,
    pub delivered: bool,
    pub attempts: u32,
}

/// One order as `GET /admin/orders` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimOrderView {
    pub order_id: String,
    pub batch_id: String,
    pub status: EventKind,
    pub booklet_serial: Option<String>,
    pub tracking: Option<String>,
    pub reason: Option<String>,
    pub events: Vec<SimEventView>,
}

/// The outage switch and what it refused.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutageView {
    pub down: bool,
    pub refused: u64,
}

#[derive(Deserialize)]
struct OutageSet {
    down: bool,
}

fn err(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: code.to_string(),
            message: message.to_string(),
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

impl Sim {
    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer to a `/v1` request before it is read: 503 in an outage,
    /// 500 for a simulated failure, 401/400 for a bad signature.
    fn gate(&self, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
        {
            let mut s = self.lock();
            if s.down {
                s.refused += 1;
                return Some(err(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "vendor down (simulated outage)",
                ));
            }
            if s.rng.chance(self.cfg.failure_rate) {
                return Some(err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "simulated failure",
                ));
            }
        }
        let keys = std::slice::from_ref(&self.cfg.key);
        match verify_keyed(
            keys,
            headers,
            body,
            crate::signing::now_secs(),
            BATCH_BODY_BYTES_MAX,
        ) {
            Ok(_) => None,
            Err(e) => {
                let code = match e {
                    SignatureError::BadSignature => "bad_signature",
                    SignatureError::Stale => "stale_timestamp",
                    SignatureError::Malformed => "malformed_request",
                };
                Some(err(e.status(), code, &e.to_string()))
            }
        }
    }
}

/// The simulator's routes (its state inside).
fn router(sim: SimRef) -> Router {
    Router::new()
        .route(BATCHES_PATH, post(receive_batch))
        .route(&format!("{ORDERS_PATH}/{{order_id}}"), get(order_status))
        .route("/admin/orders", get(admin_orders))
        .route("/admin/outage", get(outage_get).post(outage_set))
        .route("/admin/replay/{event_id}", post(replay))
        .layer(axum::extract::DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX))
        .with_state(sim)
}

fn text_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= TEXT_CHARS_MAX
}

fn decode(b64: &str) -> Option<Vec<u8>> {
    // Base64 of the largest file, not more: refuse before decoding.
    if b64.len() > CHIP_FILE_BYTES_MAX / 3 * 4 + 4 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (!bytes.is_empty()).then_some(bytes)
}

/// What the vendor makes of one order on its own (without its history).
fn judge(order: &Order) -> Result<(), RejectReason> {
    if BookletType::from_pages(order.booklet_pages).is_none() {
        return Err(RejectReason::UnknownBookletType);
    }
    let p = &order.data_page;
    let fields_ok = [
        &p.surname,
        &p.given_names,
        &p.nationality,
        &p.birth_date,
        &p.sex,
        &p.place_of_birth,
        &p.issue_date,
        &p.expiry_date,
        &p.issuing_authority,
    ]
    .iter()
    .all(|f| text_ok(f))
        && is_id(&order.delivery_office)
        && is_id(&order.passport_number)
        && is_id(&order.booklet_serial);
    if !fields_ok {
        return Err(RejectReason::BadField);
    }
    let parsed = icao9303::Mrz::parse(&order.mrz.join("\n")).map_err(|_| RejectReason::BadMrz)?;
    if parsed.format != icao9303::Format::Td3
        || !parsed.is_valid()
        || parsed.document_number != order.passport_number
    {
        return Err(RejectReason::BadMrz);
    }
    let c = &order.chip;
    let (Some(ef_com), Some(dg1), Some(_dg2), Some(_sod)) = (
        decode(&c.ef_com),
        decode(&c.dg1),
        decode(&c.dg2),
        decode(&c.sod),
    ) else {
        return Err(RejectReason::BadChip);
    };
    let com_ok = icao9303::lds::parse_ef_com(&ef_com).is_ok();
    let dg1_ok = icao9303::lds::parse_dg1(&dg1)
        .map(|m| m.lines().eq(parsed.lines.iter().map(String::as_str)))
        .unwrap_or(false);
    if !com_ok || !dg1_ok {
        return Err(RejectReason::BadChip);
    }
    Ok(())
}

/// Records a new event of `order_id` (no delivery); its index.
fn record(s: &mut SimState, order_id: &str, event: VendorEvent) -> usize {
    // A struct of strings and numbers always encodes.
    let body = serde_json::to_vec(&event).unwrap_or_default();
    let i = s.events.len();
    s.event_index.insert(event.event_id.clone(), i);
    s.events.push(SimEvent {
        event,
        body: Arc::new(body),
        delivered: false,
        attempts: 0,
    });
    if let Some(o) = s.orders.get_mut(order_id) {
        o.events.push(i);
    }
    i
}

fn new_event(order_id: &str, kind: EventKind) -> VendorEvent {
    VendorEvent {
        event_id: format!("ev_{}", uuid::Uuid::now_v7().simple()),
        order_id: order_id.to_string(),
        kind,
        reason: None,
        booklet_serial: None,
        tracking: None,
        occurred_ms: now_ms(),
    }
}

fn answer_for(
    s: &mut SimState,
    batch_id: &str,
    order: &Order,
    digest: [u8; 32],
    judged: Result<(), RejectReason>,
) -> (Outcome, Option<String>) {
    if let Some(known) = s.orders.get(&order.order_id) {
        return if known.digest == digest {
            (Outcome::Duplicate, None)
        } else {
            (
                Outcome::Rejected {
                    reason: RejectReason::OrderIdConflict,
                },
                None,
            )
        };
    }
    if let Err(reason) = judged {
        return (Outcome::Rejected { reason }, None);
    }
    if s.orders.len() >= ORDERS_MAX {
        return (
            Outcome::Rejected {
                reason: RejectReason::CapacityExceeded,
            },
            None,
        );
    }
    s.orders.insert(
        order.order_id.clone(),
        SimOrder {
            batch_id: batch_id.to_string(),
            digest,
            events: Vec::new(),
            booklet_serial: order.booklet_serial.clone(),
        },
    );
    s.queue.push_back(order.order_id.clone());
    let i = record(
        s,
        &order.order_id,
        new_event(&order.order_id, EventKind::Accepted),
    );
    (Outcome::Accepted, Some(s.events[i].event.event_id.clone()))
}

async fn receive_batch(
    State(sim): State<SimRef>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = sim.gate(&headers, &body) {
        return r;
    }
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(_) => {
            return err(
                StatusCode::BAD_REQUEST,
                "malformed_batch",
                "the body is not a batch (see the protocol's fields)",
            );
        }
    };
    let mut ids = std::collections::HashSet::new();
    let ids_ok = batch
        .orders
        .iter()
        .all(|o| is_id(&o.order_id) && ids.insert(o.order_id.as_str()));
    if !is_id(&batch.batch_id)
        || batch.orders.is_empty()
        || batch.orders.len() > BATCH_ORDERS_MAX
        || !ids_ok
    {
        return err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_batch",
            "a batch has an id and 1 to 50 orders, each with its own id",
        );
    }
    // Judged outside the lock: parsing MRZs and chip files is the slow part.
    let judged: Vec<_> = batch
        .orders
        .iter()
        .map(|o| {
            let digest: [u8; 32] = Sha256::digest(serde_json::to_vec(o).unwrap_or_default()).into();
            (digest, judge(o))
        })
        .collect();
    let mut results = Vec::with_capacity(batch.orders.len());
    let mut deliveries = Vec::new();
    {
        let mut s = sim.lock();
        for (order, (digest, judged)) in batch.orders.iter().zip(judged) {
            let (outcome, event) = answer_for(&mut s, &batch.batch_id, order, digest, judged);
            if let Outcome::Rejected { reason } = &outcome {
                tracing::info!(batch = %batch.batch_id, order = %order.order_id, reason = reason.as_str(), "order rejected");
            }
            deliveries.extend(event);
            results.push(OrderResult {
                order_id: order.order_id.clone(),
                outcome,
            });
        }
    }
    for event_id in deliveries {
        tokio::spawn(deliver_in_order(sim.clone(), vec![event_id]));
    }
    Json(BatchAnswer {
        batch_id: batch.batch_id,
        results,
    })
    .into_response()
}

fn status_of(s: &SimState, order_id: &str, order: &SimOrder) -> Option<OrderStatus> {
    let events: Vec<VendorEvent> = order
        .events
        .iter()
        .map(|&i| s.events[i].event.clone())
        .collect();
    let last = events.last()?;
    let find = |f: fn(&VendorEvent) -> Option<String>| events.iter().rev().find_map(f);
    Some(OrderStatus {
        order_id: order_id.to_string(),
        status: last.kind,
        reason: find(|e| e.reason.clone()),
        booklet_serial: find(|e| e.booklet_serial.clone()),
        tracking: find(|e| e.tracking.clone()),
        events,
    })
}

async fn order_status(
    State(sim): State<SimRef>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = sim.gate(&headers, &body) {
        return r;
    }
    let s = sim.lock();
    match s
        .orders
        .get(&order_id)
        .and_then(|o| status_of(&s, &order_id, o))
    {
        Some(st) => Json(st).into_response(),
        None => err(StatusCode::NOT_FOUND, "unknown_order", "no such order"),
    }
}

async fn admin_orders(State(sim): State<SimRef>) -> Json<Vec<SimOrderView>> {
    let s = sim.lock();
    let mut views: Vec<SimOrderView> = s
        .orders
        .iter()
        .filter_map(|(id, o)| {
            let st = status_of(&s, id, o)?;
            Some(SimOrderView {
                order_id: id.clone(),
                batch_id: o.batch_id.clone(),
                status: st.status,
                booklet_serial: st.booklet_serial,
                tracking: st.tracking,
                reason: st.reason,
                events: o
                    .events
                    .iter()
                    .map(|&i| SimEventView {
                        event_id: s.events[i].event.event_id.clone(),
                        kind: s.events[i].event.kind,
                        delivered: s.events[i].delivered,
                        attempts: s.events[i].attempts,
                    })
                    .collect(),
            })
        })
        .collect();
    views.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    Json(views)
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

async fn replay(State(sim): State<SimRef>, Path(event_id): Path<String>) -> Response {
    if !sim.lock().event_index.contains_key(&event_id) {
        return err(StatusCode::NOT_FOUND, "unknown_event", "no such event");
    }
    tokio::spawn(deliver_in_order(sim.clone(), vec![event_id.clone()]));
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "event_id": event_id })),
    )
        .into_response()
}

/// Produces up to `n` booklets: takes the oldest queued orders whose
/// `accepted` was acknowledged, records their remaining events and starts
/// delivering them (in order).
fn produce(sim: &SimRef, n: usize) {
    let mut batches = Vec::new();
    {
        let mut s = sim.lock();
        let mut taken = 0;
        let mut waiting = VecDeque::new();
        while taken < n && waiting.len() < PRODUCTION_SCAN_MAX {
            let Some(order_id) = s.queue.pop_front() else {
                break;
            };
            let acknowledged = s
                .orders
                .get(&order_id)
                .and_then(|o| o.events.first())
                .is_some_and(|&i| s.events[i].delivered);
            if !acknowledged {
                waiting.push_back(order_id);
                continue;
            }
            taken += 1;
            let rejected = s.rng.chance(sim.cfg.quality_reject_rate);
            let mut kinds = vec![EventKind::InProduction, EventKind::Printed];
            let mut last = if rejected {
                let pick = s.rng.next_u64() % QUALITY_REASONS.len() as u64;
                let mut e = new_event(&order_id, EventKind::QualityFailed);
                e.reason = Some(QUALITY_REASONS[pick as usize].to_string());
                e
            } else {
                kinds.push(EventKind::QualityPassed);
                let mut e = new_event(&order_id, EventKind::Shipped);
                e.booklet_serial = s.orders.get(&order_id).map(|o| o.booklet_serial.clone());
                e.tracking = Some(format!("TRK{:012}", s.rng.next_u64() % 1_000_000_000_000));
                e
            };
            let mut ids = Vec::new();
            for kind in kinds {
                let i = record(&mut s, &order_id, new_event(&order_id, kind));
                ids.push(s.events[i].event.event_id.clone());
            }
            last.occurred_ms = now_ms();
            let i = record(&mut s, &order_id, last);
            ids.push(s.events[i].event.event_id.clone());
            batches.push(ids);
        }
        // Orders still waiting for their `accepted` to be acknowledged keep
        // their place at the front.
        while let Some(o) = waiting.pop_back() {
            s.queue.push_front(o);
        }
    }
    for ids in batches {
        tokio::spawn(deliver_in_order(sim.clone(), ids));
    }
}

/// The production loop: [`produce`] at `orders_per_s`, until stopped.
async fn run_production(sim: SimRef) {
    let mut stop = sim.stop_tx.subscribe();
    let tick = Duration::from_millis(PRODUCTION_TICK_MS);
    let rate = sim.cfg.orders_per_s;
    let mut budget = 0.0f64;
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        // At most one second's worth of booklets at once.
        budget = (budget + rate * tick.as_secs_f64()).min(rate.max(1.0));
        let n = budget.floor();
        if n >= 1.0 {
            budget -= n;
            // n is at most ORDERS_PER_S_MAX: the cast cannot truncate.
            produce(&sim, n as usize);
        }
    }
}

/// Delivers `event_ids` one after the other, each until the callback URL
/// answers 2xx (signed afresh at each attempt), the attempts run out or the
/// simulator stops; a given-up event stops the rest.
async fn deliver_in_order(sim: SimRef, event_ids: Vec<String>) {
    for event_id in event_ids {
        if !deliver(&sim, &event_id).await {
            return;
        }
    }
}

async fn deliver(sim: &SimRef, event_id: &str) -> bool {
    let mut stop = sim.stop_tx.subscribe();
    let delivered = crate::signing::Delivery {
        http: &sim.http,
        url: &sim.cfg.callback_url,
        event_id,
        attempts: DELIVERY_ATTEMPTS_MAX,
        first_wait: sim.cfg.delivery_backoff_first,
        max_wait: Duration::from_millis(DELIVERY_BACKOFF_MAX_MS),
        attempt_timeout: Duration::from_millis(DELIVERY_TIMEOUT_MS),
    }
    .run(
        &mut stop,
        || {
            let mut s = sim.lock();
            let i = *s.event_index.get(event_id)?;
            s.events[i].attempts += 1;
            Some(s.events[i].body.clone())
        },
        |ts, body| sim.cfg.key.headers(ts, body),
    )
    .await;
    if delivered {
        let mut s = sim.lock();
        if let Some(&i) = s.event_index.get(event_id) {
            s.events[i].delivered = true;
        }
    }
    delivered
}

/// A simulator serving in the background; stops when dropped.
pub struct RunningVendorSim {
    pub addr: SocketAddr,
    sim: SimRef,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningVendorSim {
    /// `http://ADDR`, the base URL for [`super::HttpVendor`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving, producing and delivering; waits for the server to end.
    pub async fn shutdown(mut self) {
        let _ = self.sim.stop_tx.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningVendorSim {
    fn drop(&mut self) {
        let _ = self.sim.stop_tx.send(true);
    }
}

fn build(cfg: VendorSimConfig) -> anyhow::Result<SimRef> {
    if !(cfg.callback_url.starts_with("http://") || cfg.callback_url.starts_with("https://")) {
        anyhow::bail!("the callback URL must start with http:// or https://");
    }
    if !(cfg.orders_per_s > 0.0 && cfg.orders_per_s <= ORDERS_PER_S_MAX) {
        anyhow::bail!("orders per second must be above 0 and at most {ORDERS_PER_S_MAX}");
    }
    for (name, rate) in [
        ("the quality reject rate", cfg.quality_reject_rate),
        ("the failure rate", cfg.failure_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            anyhow::bail!("{name} must be between 0 and 1");
        }
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(DELIVERY_TIMEOUT_MS))
        .build()?;
    let rng = Rng(cfg.seed);
    Ok(Arc::new(Sim {
        state: Mutex::new(SimState {
            orders: HashMap::new(),
            queue: VecDeque::new(),
            events: Vec::new(),
            event_index: HashMap::new(),
            down: false,
            refused: 0,
            rng,
        }),
        cfg,
        http,
        stop_tx: tokio::sync::watch::channel(false).0,
    }))
}

/// Starts the simulator on `cfg.listen` (port 0 allowed) in the background,
/// with its production loop.
pub async fn spawn_vendor_sim(cfg: VendorSimConfig) -> anyhow::Result<RunningVendorSim> {
    let listen = cfg.listen;
    let sim = build(cfg)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let app = router(sim.clone());
    tokio::spawn(run_production(sim.clone()));
    let mut stop = sim.stop_tx.subscribe();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "vendor simulator stopped");
        }
    });
    Ok(RunningVendorSim {
        addr,
        sim,
        task: Some(task),
    })
}

/// `pasaporte vendor-sim`: runs the simulator until Ctrl-C or SIGTERM.
pub async fn run_cli(args: VendorSimArgs) -> anyhow::Result<()> {
    let secret = std::env::var(&args.key_env).with_context(|| {
        format!(
            "set the key shared with pasaporte in the environment variable {}",
            args.key_env
        )
    })?;
    let key = SigningKey::new(&args.key_id, secret.into_bytes())
        .with_context(|| format!("{} / --key-id", args.key_env))?;
    let mut cfg = VendorSimConfig::local(args.callback_url, key);
    cfg.listen = args.listen;
    cfg.orders_per_s = args.orders_per_s;
    cfg.quality_reject_rate = args.quality_reject_rate;
    cfg.failure_rate = args.failure_rate;
    cfg.seed = args.seed;
    let sim = spawn_vendor_sim(cfg).await?;
    println!("vendor simulator listening on http://{}", sim.addr);
    crate::shutdown_signal().await;
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vendors::protocol::ID_CHARS_MAX;

    #[test]
    fn the_dice_are_seeded_and_fair_enough() {
        let roll = |seed| {
            let mut r = Rng(seed);
            (0..10_000).filter(|_| r.chance(0.25)).count()
        };
        assert_eq!(roll(7), roll(7));
        assert!((2_300..2_700).contains(&roll(7)), "{}", roll(7));
        let mut r = Rng(1);
        assert!((0..1000).all(|_| !r.chance(0.0)));
        assert!((0..1000).all(|_| r.chance(1.0)));
    }

    #[test]
    fn ids_are_bounded() {
        assert!(is_id("ord-2026.000001_a"));
        assert!(!is_id(""));
        assert!(!is_id("a/b"));
        assert!(!is_id(&"a".repeat(ID_CHARS_MAX + 1)));
    }
}
