//! The payment adapter against the simulator over real local HTTP. A small
//! axum receiver stands in for pasaporte's callback route: it records each
//! callback's headers and raw body, and can be told to fail the first ones.

use pasaporte::payments::callback::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use pasaporte::payments::sim::{OutageView, SimEventView};
use pasaporte::payments::{
    Applied, ApplyError, CallbackError, HttpPayments, PaymentError, PaymentGateway,
    PaymentSimConfig, RunningPaymentSim, apply_event, refund_pass, sign, spawn_payment_sim, verify,
};
use pasaporte_core::fees::{Currency, Money, PaymentEventKind, PaymentStatus};
use pasaporte_store::testing::{self, TestDb};
use pasaporte_store::{NewReference, insert_payment_reference, mark_refund_pending};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"test-secret-0123456789";
/// How long a test waits for something to happen before failing.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Clone)]
struct Received {
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many deliveries first.
    fail_first: Arc<Mutex<u32>>,
}

impl Receiver {
    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` callbacks were accepted; the `n`th.
    async fn nth(&self, n: usize) -> Received {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(r) = self.all().get(n - 1) {
                return r.clone();
            }
            assert!(
                Instant::now() < deadline,
                "callback {n} did not arrive in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts the stand-in callback route; its URL.
async fn spawn_receiver(rx: Receiver) -> String {
    async fn accept(
        axum::extract::State(rx): axum::extract::State<Receiver>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        {
            let mut fail = rx.fail_first.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
            }
        }
        rx.got.lock().unwrap().push(Received {
            headers,
            body: body.to_vec(),
        });
        axum::http::StatusCode::NO_CONTENT
    }
    let app = axum::Router::new()
        .route("/api/v1/payments/callback", axum::routing::post(accept))
        .with_state(rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v1/payments/callback")
}

struct Setup {
    rx: Receiver,
    sim: RunningPaymentSim,
    gateway: HttpPayments,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let rx = Receiver::default();
    let callback = spawn_receiver(rx.clone()).await;
    let mut cfg = PaymentSimConfig::local(callback, SECRET);
    cfg.delivery_backoff_first = Duration::from_millis(20);
    let sim = spawn_payment_sim(cfg).await.unwrap();
    let gateway = HttpPayments::new(&sim.url(), Duration::from_secs(5), 3)
        .unwrap()
        .with_backoff_first(Duration::from_millis(20));
    Setup {
        rx,
        sim,
        gateway,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    async fn pay(&self, reference: &str) -> u16 {
        self.http
            .post(format!("{}/v1/references/{reference}/pay", self.sim.url()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn events(&self) -> Vec<SimEventView> {
        self.http
            .get(format!("{}/admin/events", self.sim.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn outage(&self, down: bool) -> OutageView {
        self.http
            .post(format!("{}/admin/outage", self.sim.url()))
            .json(&serde_json::json!({ "down": down }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn outage_state(&self) -> OutageView {
        self.http
            .get(format!("{}/admin/outage", self.sim.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn cop(amount_minor: i64) -> Money {
    Money {
        currency: Currency::Cop,
        amount_minor,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_arrives_as_a_signed_callback() {
    let s = setup().await;
    let fee = cop(190_000);
    let reference = s
        .gateway
        .create_reference("app-1", &fee, "Pasaporte ordinario")
        .await
        .unwrap();
    let again = s
        .gateway
        .create_reference("app-1", &fee, "Pasaporte ordinario")
        .await
        .unwrap();
    assert_eq!(reference, again, "one reference per application");
    let other = s
        .gateway
        .create_reference("app-2", &fee, "Pasaporte ordinario")
        .await
        .unwrap();
    assert_ne!(reference, other);
    // The same application with another amount is the gateway's refusal, not a retry.
    assert!(matches!(
        s.gateway.create_reference("app-1", &cop(1), "x").await,
        Err(PaymentError::Refused(_))
    ));

    assert_eq!(s.pay(&reference).await, 200);
    let got = s.rx.nth(1).await;
    let event = verify(SECRET, &got.headers, &got.body, now_secs()).unwrap();
    assert_eq!(
        (
            event.kind,
            event.reference.as_str(),
            event.amount_minor,
            event.currency.as_str()
        ),
        (
            PaymentEventKind::PaymentConfirmed,
            reference.as_str(),
            190_000,
            "COP"
        )
    );
    assert_eq!(s.pay(&reference).await, 409, "a reference is paid once");
    assert_eq!(s.pay("ref_unknown").await, 404);

    // A tampered body, a wrong secret and a six-minute-old timestamp are refused.
    let mut tampered = got.body.clone();
    let text = String::from_utf8(tampered.clone()).unwrap();
    tampered = text.replace("190000", "1").into_bytes();
    assert_eq!(
        verify(SECRET, &got.headers, &tampered, now_secs()),
        Err(CallbackError::BadSignature)
    );
    assert_eq!(
        verify(
            b"another-secret-0123456",
            &got.headers,
            &got.body,
            now_secs()
        ),
        Err(CallbackError::BadSignature)
    );
    let old = now_secs() - 6 * 60;
    let mut stale = got.headers.clone();
    stale.insert(TIMESTAMP_HEADER, old.to_string().parse().unwrap());
    stale.insert(
        SIGNATURE_HEADER,
        sign(SECRET, old, &got.body).parse().unwrap(),
    );
    assert_eq!(
        verify(SECRET, &stale, &got.body, now_secs()),
        Err(CallbackError::Stale)
    );
    // The delivered callback itself is stale six minutes later.
    assert_eq!(
        verify(SECRET, &got.headers, &got.body, now_secs() + 6 * 60),
        Err(CallbackError::Stale)
    );
    let events = s.events().await;
    assert_eq!(events.len(), 1);
    assert!(events[0].delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_retried_until_accepted() {
    let s = setup().await;
    *s.rx.fail_first.lock().unwrap() = 2;
    let reference = s
        .gateway
        .create_reference("app-1", &cop(100_000), "Pasaporte fronterizo")
        .await
        .unwrap();
    assert_eq!(s.pay(&reference).await, 200);
    let got = s.rx.nth(1).await;
    assert!(verify(SECRET, &got.headers, &got.body, now_secs()).is_ok());
    let events = s.events().await;
    assert_eq!((events[0].delivered, events[0].attempts), (true, 3));
}

crate::both_databases!(
    a_replayed_callback_is_applied_once,
    a_refund_completes_with_a_callback
);

/// What the callback route will do: verify, then apply the event in one
/// transaction; whether it was new.
async fn apply(store: &pasaporte_store::Store, got: &Received) -> bool {
    let event = verify(SECRET, &got.headers, &got.body, now_secs()).unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let applied = apply_event(&mut tx, &event, now_secs() * 1000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    match applied {
        Applied::Changed {
            application_id,
            reference,
            ..
        } => {
            assert_eq!(
                (application_id.as_str(), reference.as_str()),
                ("app-1", event.reference.as_str())
            );
            true
        }
        Applied::Replayed => false,
    }
}

async fn store_with_reference(db: TestDb, reference: &str, fee: Money) -> pasaporte_store::Store {
    let (store, _) = testing::fresh(db).await.unwrap();
    pasaporte::import_offices(&store, pasaporte::DEMO_OFFICES_CSV)
        .await
        .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    insert_payment_reference(
        &mut tx,
        &NewReference {
            reference: reference.into(),
            application_id: "app-1".into(),
            office_code: "MAD".into(),
            amount_minor: fee.amount_minor,
            currency: fee.currency.code().into(),
            created_ms: now_secs() * 1000,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    store
}

async fn a_replayed_callback_is_applied_once(db: TestDb) {
    let s = setup().await;
    let fee = Money {
        currency: Currency::Eur,
        amount_minor: 6_000,
    };
    let reference = s
        .gateway
        .create_reference("app-1", &fee, "Pasaporte ordinario")
        .await
        .unwrap();
    let store = store_with_reference(db, &reference, fee).await;
    assert_eq!(s.pay(&reference).await, 200);
    let first = s.rx.nth(1).await;
    assert!(apply(&store, &first).await);
    let paid = store.payment_reference(&reference).await.unwrap();
    assert_eq!(paid.status, PaymentStatus::Paid);

    let event_id = s.events().await[0].event_id.clone();
    let replayed = s
        .http
        .post(format!("{}/admin/replay/{event_id}", s.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status().as_u16(), 202);
    let second = s.rx.nth(2).await;
    // A fresh, valid signature over the same event.
    let again = verify(SECRET, &second.headers, &second.body, now_secs()).unwrap();
    assert_eq!(again.event_id, event_id);
    assert_eq!(second.body, first.body);
    assert!(!apply(&store, &second).await, "the replay changes nothing");
    assert_eq!(store.payment_reference(&reference).await.unwrap(), paid);
    let rec = store.reconciliation(None, 0, i64::MAX).await.unwrap();
    assert_eq!(rec.totals[0].paid_minor, 6_000, "counted once");
    // An event whose amount does not fit its reference is not applied.
    let mut odd = again.clone();
    odd.event_id = "evt_other".into();
    odd.amount_minor = 1;
    let mut tx = store.begin_write().await.unwrap();
    assert!(matches!(
        apply_event(&mut tx, &odd, 0).await,
        Err(ApplyError::Mismatch)
    ));
    drop(tx);
    let unknown = s
        .http
        .post(format!("{}/admin/replay/evt_unknown", s.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

async fn a_refund_completes_with_a_callback(db: TestDb) {
    let s = setup().await;
    let fee = Money {
        currency: Currency::Eur,
        amount_minor: 6_000,
    };
    let reference = s
        .gateway
        .create_reference("app-1", &fee, "Pasaporte ordinario")
        .await
        .unwrap();
    let store = store_with_reference(db, &reference, fee).await;
    // Not paid yet: the gateway refuses the refund.
    assert!(matches!(
        s.gateway.refund(&reference, &fee, "refund-1").await,
        Err(PaymentError::Refused(_))
    ));
    assert_eq!(s.pay(&reference).await, 200);
    assert!(apply(&store, &s.rx.nth(1).await).await);

    let mut tx = store.begin_write().await.unwrap();
    mark_refund_pending(&mut tx, &reference).await.unwrap();
    tx.commit().await.unwrap();
    // The refund worker; a second pass before the callback asks again, harmlessly.
    assert_eq!(refund_pass(&store, &s.gateway).await.unwrap(), 1);
    assert_eq!(refund_pass(&store, &s.gateway).await.unwrap(), 1);
    let got = s.rx.nth(2).await;
    let event = verify(SECRET, &got.headers, &got.body, now_secs()).unwrap();
    assert_eq!(
        (event.kind, event.amount_minor),
        (PaymentEventKind::RefundCompleted, 6_000)
    );
    assert!(apply(&store, &got).await);
    let r = store.payment_reference(&reference).await.unwrap();
    assert_eq!(r.status, PaymentStatus::Refunded);
    assert!(store.pending_refunds(10).await.unwrap().is_empty());
    assert_eq!(s.events().await.len(), 2, "one payment, one refund");
    // Nothing is left to refund.
    assert!(matches!(
        s.gateway.refund(&reference, &fee, "refund-2").await,
        Err(PaymentError::Refused(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_retries_through_an_outage() {
    let s = setup().await;
    assert!(s.outage(true).await.down);
    // A steady outage: every attempt fails, the caller hears Unavailable.
    assert_eq!(
        s.gateway
            .create_reference("app-1", &cop(190_000), "Pasaporte ordinario")
            .await,
        Err(PaymentError::Unavailable)
    );
    assert_eq!(s.outage_state().await.refused, 3, "three attempts");

    // An outage that ends while the client is retrying.
    let patient = HttpPayments::new(&s.sim.url(), Duration::from_secs(5), 10)
        .unwrap()
        .with_backoff_first(Duration::from_millis(50));
    let call = tokio::spawn(async move {
        patient
            .create_reference("app-1", &cop(190_000), "Pasaporte ordinario")
            .await
    });
    let deadline = Instant::now() + WAIT;
    while s.outage_state().await.refused < 4 {
        assert!(Instant::now() < deadline, "the client never tried");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.outage(false).await;
    let reference = call.await.unwrap().unwrap();
    assert!(reference.starts_with("ref_"));
    // The refused attempts created nothing: the same application gets the same reference.
    assert_eq!(
        s.gateway
            .create_reference("app-1", &cop(190_000), "Pasaporte ordinario")
            .await
            .unwrap(),
        reference
    );

    // Nothing listening: Unavailable, not a hang.
    let addr = s.sim.addr;
    s.sim.shutdown().await;
    let gone = HttpPayments::new(&format!("http://{addr}"), Duration::from_secs(2), 2)
        .unwrap()
        .with_backoff_first(Duration::from_millis(10));
    assert_eq!(
        gone.create_reference("app-9", &cop(1), "x").await,
        Err(PaymentError::Unavailable)
    );
}
