//! The printing vendor protocol over real local HTTP: the client
//! ([`HttpVendor`]) against the simulator, and a small axum receiver standing
//! in for pasaporte's vendor callback route, which verifies every callback
//! with [`verify_vendor_callback`] and records the events.

use base64::Engine as _;
use pasaporte::signing::{KEY_ID_HEADER, SIGNATURE_HEADER, SigningKey, TIMESTAMP_HEADER, sign};
use pasaporte::vendors::protocol::{
    Batch, ChipFilesB64, DataPage, EventKind, Order, Outcome, PassportType, RejectReason,
};
use pasaporte::vendors::sim::{OutageView, SimOrderView};
use pasaporte::vendors::{
    HttpVendor, PrintingVendor, RunningVendorSim, VendorError, VendorEvent, VendorSimConfig,
    spawn_vendor_sim, verify_vendor_callback,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY_ID: &str = "vendor-test";
const SECRET: &[u8] = b"vendor-test-secret-0123";
/// How long a test waits for something to happen before failing.
const WAIT: Duration = Duration::from_secs(20);

fn key() -> SigningKey {
    SigningKey::new(KEY_ID, SECRET.to_vec()).unwrap()
}

/// The stand-in for pasaporte's callback route.
#[derive(Clone, Default)]
struct Receiver {
    events: Arc<Mutex<Vec<VendorEvent>>>,
    refused: Arc<Mutex<u32>>,
    /// Answer 503 to this many (valid) deliveries first.
    fail_first: Arc<Mutex<u32>>,
}

impl Receiver {
    fn events(&self) -> Vec<VendorEvent> {
        self.events.lock().unwrap().clone()
    }

    fn of(&self, order_id: &str) -> Vec<VendorEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.order_id == order_id)
            .collect()
    }

    /// Waits until every order in `order_ids` has a final event.
    async fn until_final(&self, order_ids: &[String]) {
        let deadline = Instant::now() + WAIT;
        loop {
            let done = order_ids
                .iter()
                .all(|id| self.of(id).iter().any(|e| e.kind.is_final()));
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "orders not finished in time: {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn spawn_receiver(rx: Receiver) -> String {
    async fn accept(
        axum::extract::State(rx): axum::extract::State<Receiver>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        let now = pasaporte::signing::now_secs();
        match verify_vendor_callback(&[key()], &headers, &body, now) {
            Ok(v) => {
                assert_eq!(v.key_id, KEY_ID);
                {
                    let mut fail = rx.fail_first.lock().unwrap();
                    if *fail > 0 {
                        *fail -= 1;
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                }
                rx.events.lock().unwrap().push(v.event);
                axum::http::StatusCode::NO_CONTENT
            }
            Err(e) => {
                *rx.refused.lock().unwrap() += 1;
                e.status()
            }
        }
    }
    let app = axum::Router::new()
        .route("/api/v1/vendors/callback", axum::routing::post(accept))
        .with_state(rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v1/vendors/callback")
}

/// A simulator calling back a fresh receiver, with `tune` applied.
async fn spawn(tune: impl FnOnce(&mut VendorSimConfig)) -> (RunningVendorSim, Receiver) {
    spawn_with(Receiver::default(), tune).await
}

async fn spawn_with(
    rx: Receiver,
    tune: impl FnOnce(&mut VendorSimConfig),
) -> (RunningVendorSim, Receiver) {
    let mut cfg = VendorSimConfig::local(spawn_receiver(rx.clone()).await, key());
    cfg.delivery_backoff_first = Duration::from_millis(20);
    cfg.orders_per_s = 200.0;
    tune(&mut cfg);
    (spawn_vendor_sim(cfg).await.unwrap(), rx)
}

fn client(sim: &RunningVendorSim, key: SigningKey) -> HttpVendor {
    HttpVendor::new(&sim.url(), key, Duration::from_secs(5), 10)
        .unwrap()
        .with_backoff_first(Duration::from_millis(50))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A well-formed order (fictitious person) whose MRZ and DG1 agree.
fn order(n: u32) -> Order {
    let number = format!("PT{n:07}");
    let mrz = icao9303::Mrz::generate(
        icao9303::Format::Td3,
        &icao9303::MrzFields {
            document_code: "P",
            issuing_state: "UTO",
            surname: "Ejemplo",
            given_names: "Prueba",
            document_number: &number,
            nationality: "UTO",
            birth_date: "1990-01-01",
            sex: "X",
            expiry_date: "2036-01-01",
            optional_data: "",
            optional_data_2: "",
        },
    )
    .unwrap();
    Order {
        order_id: format!("ord-{n}"),
        passport_number: number,
        passport_type: PassportType::Ordinary,
        booklet_pages: 32,
        booklet_serial: format!("VA{n:07}"),
        data_page: DataPage {
            surname: "EJEMPLO".into(),
            given_names: "PRUEBA".into(),
            nationality: "UTO".into(),
            birth_date: "1990-01-01".into(),
            sex: "X".into(),
            place_of_birth: "CIUDAD DE PRUEBA".into(),
            issue_date: "2026-01-01".into(),
            expiry_date: "2036-01-01".into(),
            issuing_authority: "OFICINA DE PRUEBA".into(),
        },
        mrz: mrz.lines().map(str::to_string).collect(),
        chip: ChipFilesB64 {
            ef_com: b64(&icao9303::build_ef_com(&[1, 2]).unwrap()),
            dg1: b64(&icao9303::build_dg1(&mrz)),
            dg2: b64(b"dg2 stand-in"),
            sod: b64(b"sod stand-in"),
        },
        delivery_office: "office-001".into(),
    }
}

fn batch(id: &str, orders: Vec<Order>) -> Batch {
    Batch {
        batch_id: id.into(),
        orders,
    }
}

async fn admin_orders(sim: &RunningVendorSim) -> Vec<SimOrderView> {
    reqwest::get(format!("{}/admin/orders", sim.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn set_outage(sim: &RunningVendorSim, down: bool) -> OutageView {
    reqwest::Client::new()
        .post(format!("{}/admin/outage", sim.url()))
        .json(&serde_json::json!({ "down": down }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn outcomes(results: &[pasaporte::vendors::OrderResult]) -> Vec<Outcome> {
    results.iter().map(|r| r.outcome.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_batch_is_printed_and_shipped_once_through_signed_callbacks() {
    let (sim, rx) = spawn(|_| {}).await;
    let vendor = client(&sim, key());
    let b = batch("batch-1", (1..=3).map(order).collect());
    let ids: Vec<String> = b.orders.iter().map(|o| o.order_id.clone()).collect();
    let results = vendor.send_batch(&b).await.unwrap();
    assert_eq!(outcomes(&results), vec![Outcome::Accepted; 3]);
    rx.until_final(&ids).await;
    for id in &ids {
        let events = rx.of(id);
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Accepted,
                EventKind::InProduction,
                EventKind::Printed,
                EventKind::QualityPassed,
                EventKind::Shipped
            ],
            "{id}"
        );
        let shipped = &events[4];
        // The booklet shipped is the one the order named.
        let serial = shipped.booklet_serial.as_deref().unwrap();
        let n: u32 = id.trim_start_matches("ord-").parse().unwrap();
        assert_eq!(serial, format!("VA{n:07}"));
        assert!(shipped.tracking.is_some());
    }
    assert_eq!(*rx.refused.lock().unwrap(), 0);

    // The same batch again: every order is a duplicate, nothing new is made.
    let again = vendor.send_batch(&b).await.unwrap();
    assert_eq!(outcomes(&again), vec![Outcome::Duplicate; 3]);
    let held = admin_orders(&sim).await;
    assert_eq!(held.len(), 3);
    assert!(
        held.iter()
            .all(|o| o.events.len() == 5 && o.status == EventKind::Shipped)
    );
    assert_eq!(rx.events().len(), 15);

    // The status route tells the same story.
    let status = vendor.order_status("ord-1").await.unwrap().unwrap();
    assert_eq!(status.status, EventKind::Shipped);
    assert_eq!(status.events.len(), 5);
    assert_eq!(vendor.order_status("ord-404").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_signatures_stale_timestamps_and_unknown_keys_are_refused_and_nothing_is_stored() {
    let (sim, _rx) = spawn(|_| {}).await;
    let body = serde_json::to_vec(&batch("batch-x", vec![order(1)])).unwrap();
    let now = pasaporte::signing::now_secs();
    let post = |key_id: &'static str, ts: i64, signature: String| {
        let url = format!("{}/v1/batches", sim.url());
        let body = body.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .header(KEY_ID_HEADER, key_id)
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(SIGNATURE_HEADER, signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let wrong_secret = sign(b"not-the-vendor-secret", now, &body);
    let stale = sign(SECRET, now - 400, &body);
    let good = sign(SECRET, now, &body);
    assert_eq!(post(KEY_ID, now, wrong_secret).await, 401);
    assert_eq!(post(KEY_ID, now - 400, stale).await, 401);
    assert_eq!(post("another-vendor", now, good.clone()).await, 401);
    // The right signature over other bytes.
    assert_eq!(
        post(KEY_ID, now, sign(SECRET, now, b"{}")).await,
        401,
        "a signature of other bytes"
    );
    let other_key = SigningKey::new(KEY_ID, b"a-different-secret-0123".to_vec()).unwrap();
    let refused = client(&sim, other_key)
        .send_batch(&batch("batch-y", vec![order(2)]))
        .await;
    assert!(
        matches!(&refused, Err(VendorError::Refused { status: 401, code, .. }) if code == "bad_signature"),
        "{refused:?}"
    );
    assert!(admin_orders(&sim).await.is_empty());
    // The untouched request goes through.
    assert_eq!(post(KEY_ID, now, good).await, 200);
    assert_eq!(admin_orders(&sim).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_the_vendor_cannot_print_are_rejected_with_a_reason() {
    let (sim, _rx) = spawn(|_| {}).await;
    let vendor = client(&sim, key());
    let mut bad_mrz = order(2);
    // Line 2, column 10: the document number's check digit.
    let digit = bad_mrz.mrz[1].as_bytes()[9];
    let wrong = if digit == b'0' { '1' } else { '0' };
    bad_mrz.mrz[1].replace_range(9..10, &wrong.to_string());
    let mut bad_booklet = order(3);
    bad_booklet.booklet_pages = 40;
    let mut bad_chip = order(4);
    bad_chip.chip.dg1 = order(5).chip.dg1;
    let results = vendor
        .send_batch(&batch(
            "batch-2",
            vec![order(1), bad_mrz, bad_booklet, bad_chip],
        ))
        .await
        .unwrap();
    let rejected = |reason| Outcome::Rejected { reason };
    assert_eq!(
        outcomes(&results),
        vec![
            Outcome::Accepted,
            rejected(RejectReason::BadMrz),
            rejected(RejectReason::UnknownBookletType),
            rejected(RejectReason::BadChip),
        ]
    );
    // The same order id with other content.
    let mut changed = order(1);
    changed.delivery_office = "office-002".into();
    let results = vendor
        .send_batch(&batch("batch-3", vec![changed]))
        .await
        .unwrap();
    assert_eq!(
        outcomes(&results),
        vec![rejected(RejectReason::OrderIdConflict)]
    );
    let held = admin_orders(&sim).await;
    assert_eq!(
        held.iter().map(|o| o.order_id.as_str()).collect::<Vec<_>>(),
        ["ord-1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn during_an_outage_the_client_retries_and_the_batch_arrives_once() {
    let (sim, rx) = spawn(|_| {}).await;
    set_outage(&sim, true).await;
    let vendor = client(&sim, key());
    let b = batch("batch-4", (1..=2).map(order).collect());
    let sending = tokio::spawn({
        let b = b.clone();
        async move { vendor.send_batch(&b).await }
    });
    let deadline = Instant::now() + WAIT;
    loop {
        let refused = reqwest::get(format!("{}/admin/outage", sim.url()))
            .await
            .unwrap()
            .json::<OutageView>()
            .await
            .unwrap()
            .refused;
        if refused >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the client did not retry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    set_outage(&sim, false).await;
    let results = sending.await.unwrap().unwrap();
    assert_eq!(outcomes(&results), vec![Outcome::Accepted; 2]);
    let ids: Vec<String> = b.orders.iter().map(|o| o.order_id.clone()).collect();
    rx.until_final(&ids).await;
    assert_eq!(admin_orders(&sim).await.len(), 2);
    for id in &ids {
        let accepted = rx
            .of(id)
            .iter()
            .filter(|e| e.kind == EventKind::Accepted)
            .count();
        assert_eq!(accepted, 1, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulated_failures_are_retried_without_duplicates() {
    let (sim, rx) = spawn(|c| {
        c.failure_rate = 0.5;
        c.seed = 42;
    })
    .await;
    let vendor = client(&sim, key());
    let b = batch("batch-5", (1..=5).map(order).collect());
    let results = vendor.send_batch(&b).await.unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Accepted | Outcome::Duplicate))
    );
    let ids: Vec<String> = b.orders.iter().map(|o| o.order_id.clone()).collect();
    rx.until_final(&ids).await;
    assert_eq!(admin_orders(&sim).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quality_reject_rate_of_one_fails_every_booklet_with_a_reason() {
    let (sim, rx) = spawn(|c| c.quality_reject_rate = 1.0).await;
    let vendor = client(&sim, key());
    let b = batch("batch-6", (1..=2).map(order).collect());
    vendor.send_batch(&b).await.unwrap();
    let ids: Vec<String> = b.orders.iter().map(|o| o.order_id.clone()).collect();
    rx.until_final(&ids).await;
    for id in &ids {
        let events = rx.of(id);
        let last = events.last().unwrap();
        assert_eq!(last.kind, EventKind::QualityFailed, "{id}");
        assert!(!last.reason.as_deref().unwrap_or("").is_empty());
        assert!(events.iter().all(|e| e.kind != EventKind::Shipped));
    }
    let held = admin_orders(&sim).await;
    assert!(held.iter().all(|o| o.status == EventKind::QualityFailed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_event_is_the_same_event() {
    let (sim, rx) = spawn(|_| {}).await;
    let vendor = client(&sim, key());
    let b = batch("batch-7", vec![order(1)]);
    vendor.send_batch(&b).await.unwrap();
    rx.until_final(&["ord-1".to_string()]).await;
    let first = rx.of("ord-1")[0].clone();
    let status = reqwest::Client::new()
        .post(format!("{}/admin/replay/{}", sim.url(), first.event_id))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let deadline = Instant::now() + WAIT;
    while rx.events().len() < 6 {
        assert!(Instant::now() < deadline, "the replay did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rx.events()[5], first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_are_retried_until_accepted_and_arrive_once_in_order() {
    let rx = Receiver::default();
    *rx.fail_first.lock().unwrap() = 4;
    let (sim, rx) = spawn_with(rx, |_| {}).await;
    let vendor = client(&sim, key());
    let b = batch("batch-8", (1..=2).map(order).collect());
    vendor.send_batch(&b).await.unwrap();
    let ids: Vec<String> = b.orders.iter().map(|o| o.order_id.clone()).collect();
    rx.until_final(&ids).await;
    assert_eq!(*rx.fail_first.lock().unwrap(), 0);
    for id in &ids {
        let kinds: Vec<EventKind> = rx.of(id).iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Accepted,
                EventKind::InProduction,
                EventKind::Printed,
                EventKind::QualityPassed,
                EventKind::Shipped
            ],
            "{id}"
        );
    }
    let held = admin_orders(&sim).await;
    let attempts: u32 = held
        .iter()
        .flat_map(|o| o.events.iter().map(|e| e.attempts))
        .sum();
    assert_eq!(attempts, 10 + 4, "each refused delivery was tried again");
}
