//! The production pipeline end to end over real HTTP: approved applications
//! become signed orders to the project's vendor simulators, come back as
//! shipped booklets, are received at the office (MRZ checked, a mismatch
//! re-made) and handed over; a vendor down then back, and a vendor switch
//! in the middle of the work, lose and duplicate nothing; forged, stale and
//! replayed callbacks change nothing; every record's MRZ and SOD verify;
//! every booklet's custody has no gap; emergency passports are issued at the
//! office from its own stock.

use crate::both_databases;
use crate::support::{Staff, World, keys, spawn_world_with, staff};
use crate::workflow::{
    STEP_WAIT, booked_and_checked_in, capture_body, pay, register, state_of, wait_for_reference,
    wait_for_state,
};
use pasaporte::signing::SigningKey;
use pasaporte::vendors::{Order, RunningVendorSim, VendorSimConfig, spawn_vendor_sim};
use pasaporte_core::application::Role;
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::production::{BookletType, SerialRange};
use pasaporte_store::testing::TestDb;
use pasaporte_store::{OrderRow, OrderState};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

both_databases!(
    approved_to_handed_over_through_the_vendor_simulator,
    vendor_down_then_back_delivers_every_order_once,
    vendor_switch_in_the_middle_loses_and_duplicates_nothing,
    emergency_passports_are_issued_at_the_office,
    a_minors_passport_goes_only_to_a_guardian_and_a_renewal_cancels_the_old_one,
    a_refused_order_is_a_dead_letter_until_a_supervisor_sends_it_again,
);

pub(crate) struct Prod {
    pub(crate) w: World,
    pub(crate) csca: icao9303::Certificate,
    pub(crate) clerk: Staff,
    pub(crate) dir: std::path::PathBuf,
}

impl Drop for Prod {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A world whose server has a Document Signer, with blank booklets at two
/// vendor sites and emergency booklets at the test office.
pub(crate) async fn spawn_prod(db: TestDb) -> Prod {
    let dir = std::env::temp_dir().join(format!("pasaporte-pki-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csca, ds) = icao9303::generate_test_pki(
        icao9303::StateCode::parse("COL").unwrap(),
        SystemTime::now(),
    )
    .unwrap();
    std::fs::write(dir.join("ds.key.pem"), ds.key_pem().unwrap()).unwrap();
    std::fs::write(dir.join("ds.pem"), ds.cert_pem().unwrap()).unwrap();
    let (key, cert) = (dir.join("ds.key.pem"), dir.join("ds.pem"));
    let w = spawn_world_with(db, |work| {
        work.ds_key = Some(key);
        work.ds_cert = Some(cert);
        work.vendor_retry_ms = 100;
        work.vendor_attempts = 1;
        work.vendor_timeout_ms = 2_000;
    })
    .await;
    for (range, kind, site) in [
        ("VA0000001-VA0000200", BookletType::Pages32, "site-a"),
        ("VB0000001-VB0000200", BookletType::Pages32, "site-b"),
        ("VE0000001-VE0000020", BookletType::Pages8, "TST"),
    ] {
        let mut tx = w.app.store.begin_write().await.unwrap();
        pasaporte_store::receive_range(
            &mut tx,
            &SerialRange::parse(range).unwrap(),
            kind,
            site,
            "test",
            Timestamp::now().as_millisecond(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let clerk = staff(&w.app, "clerk.tst", Role::Clerk, &["TST"]).await;
    Prod {
        w,
        csca: csca.cert,
        clerk,
        dir,
    }
}

fn vendor_secret(id: &str) -> String {
    format!("{id}-shared-secret-0123456789")
}

/// Starts a vendor simulator and registers it (through the CLI's code path).
pub(crate) async fn add_vendor(p: &Prod, id: &str, site: &str) -> RunningVendorSim {
    add_vendor_at(p, id, site, 20.0).await
}

/// A vendor printing `per_s` booklets a second.
async fn add_vendor_at(p: &Prod, id: &str, site: &str, per_s: f64) -> RunningVendorSim {
    let key = SigningKey::new(id, vendor_secret(id).into_bytes()).unwrap();
    let mut cfg = VendorSimConfig::local(format!("{}/api/v1/vendors/callback", p.w.app.base), key);
    cfg.delivery_backoff_first = Duration::from_millis(50);
    cfg.orders_per_s = per_s;
    let sim = spawn_vendor_sim(cfg).await.unwrap();
    pasaporte::pipeline::save_vendor(
        &p.w.app.store,
        &keys().keyring().unwrap(),
        id,
        &sim.url(),
        &vendor_secret(id),
        site,
        1,
        "*",
        "*",
        Timestamp::now(),
    )
    .await
    .unwrap();
    sim
}

/// Walks person `n` from booking to an approved application.
pub(crate) async fn approved(p: &Prod, n: u64) -> String {
    approved_as(p, n, "ordinario").await
}

/// Walks person `n` from booking to an approved application of
/// `passport_type`.
async fn approved_as(p: &Prod, n: u64, passport_type: &str) -> String {
    let w = &p.w;
    register(w, n);
    let id = booked_and_checked_in(w, &p.clerk, n).await;
    let mut body = capture_body();
    body["passport_type"] = json!(passport_type);
    let (status, v) = w
        .app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/capture"),
            Some(&body),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    wait_for_state(&w.app, &p.clerk, &id, "registry_verified").await;
    let reference = wait_for_reference(&w.app, &id).await;
    pay(w, &reference.reference).await;
    wait_for_state(&w.app, &p.clerk, &id, "paid").await;
    let (status, v) = w
        .app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    id
}

pub(crate) async fn approve_all(p: &Prod, people: std::ops::Range<u64>) -> Vec<String> {
    let mut ids = Vec::new();
    for n in people {
        ids.push(approved(p, n).await);
    }
    ids
}

pub(crate) async fn orders_of(p: &Prod, id: &str) -> Vec<OrderRow> {
    p.w.app.store.orders_of_application(id).await.unwrap()
}

/// Polls until the application's latest order is in `state`.
pub(crate) async fn wait_for_order(p: &Prod, id: &str, state: OrderState) -> OrderRow {
    let deadline = tokio::time::Instant::now() + STEP_WAIT * 2;
    loop {
        let orders = orders_of(p, id).await;
        if let Some(o) = orders.last()
            && o.state == state
        {
            return o.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waiting for an order {state}: {orders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The order as its vendor got it.
pub(crate) async fn body_of(p: &Prod, o: &OrderRow) -> Order {
    pasaporte::pipeline::order_as_sent(&p.w.app.store, &keys().keyring().unwrap(), o)
        .await
        .unwrap()
}

/// The booklet's custody: seq 1..n, each from_state the previous to_state.
pub(crate) async fn custody(p: &Prod, serial: &str) -> Vec<String> {
    let h = p.w.app.store.booklet_history(serial).await.unwrap();
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "{serial}: {h:?}");
        if i > 0 {
            assert_eq!(e.from_state, Some(h[i - 1].to_state), "{serial}: {h:?}");
        }
    }
    h.iter().map(|e| e.event.clone()).collect()
}

async fn sim_orders(sim: &RunningVendorSim) -> Vec<pasaporte::vendors::sim::SimOrderView> {
    reqwest::get(format!("{}/admin/orders", sim.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn set_down(sim: &RunningVendorSim, down: bool) {
    let r = reqwest::Client::new()
        .post(format!("{}/admin/outage", sim.url()))
        .json(&json!({ "down": down }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn post_event(p: &Prod, key: &SigningKey, ts: i64, body: &[u8]) -> (u16, Value) {
    let mut req =
        p.w.app
            .client
            .post(p.w.app.url("/api/v1/vendors/callback"))
            .header("content-type", "application/json");
    for (k, v) in key.headers(ts, body) {
        req = req.header(k, v);
    }
    let r = req.body(body.to_vec()).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn approved_to_handed_over_through_the_vendor_simulator(db: TestDb) {
    let p = spawn_prod(db).await;
    let app = &p.w.app;
    let sim = add_vendor(&p, "vendor-a", "site-a").await;
    let id = approved(&p, 1).await;
    wait_for_state(app, &p.clerk, &id, "in_production").await;
    let first = wait_for_order(&p, &id, OrderState::Shipped).await;
    assert_eq!(first.vendor_id.as_deref(), Some("vendor-a"));
    let serial1 = first.booklet_serial.clone().unwrap();
    assert!(serial1.starts_with("VA"), "{serial1}");
    let order = body_of(&p, &first).await;
    assert_eq!(order.booklet_serial, serial1);
    assert_eq!(order.data_page.surname, "QUINTANILLA ZABALETA");
    assert_eq!(order.booklet_pages, 32);
    pasaporte::production::verify_order(&order, &p.csca, SystemTime::now()).unwrap();

    // Callbacks: a forged signature and a stale timestamp are refused; a
    // replay of an applied event changes nothing.
    let event = json!({
        "event_id": "ev_forged_1", "order_id": first.order_id, "kind": "quality_failed",
        "reason": "forged", "occurred_ms": Timestamp::now().as_millisecond(),
    });
    let body = serde_json::to_vec(&event).unwrap();
    let now = Timestamp::now().as_second();
    let wrong = SigningKey::new("vendor-a", b"not-the-vendor-secret-at-all".to_vec()).unwrap();
    assert_eq!(post_event(&p, &wrong, now, &body).await.0, 401);
    let right = SigningKey::new("vendor-a", vendor_secret("vendor-a").into_bytes()).unwrap();
    assert_eq!(post_event(&p, &right, now - 301, &body).await.0, 401);
    let events_before = app.store.vendor_event_count("applied").await.unwrap();
    let held = sim_orders(&sim).await;
    let shipped_event = held[0].events.last().unwrap().event_id.clone();
    let r = reqwest::Client::new()
        .post(format!("{}/admin/replay/{shipped_event}", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.store.vendor_event_count("applied").await.unwrap(),
        events_before
    );
    let after = orders_of(&p, &id).await;
    assert_eq!(
        after.last().unwrap().version,
        first.version,
        "a replay changes nothing"
    );
    assert_eq!(after.last().unwrap().state, OrderState::Shipped);

    // Receipt: a booklet whose MRZ is not the record's is spoiled and made
    // again, with a new passport number on a new booklet.
    let mut wrong_mrz = order.mrz.clone();
    wrong_mrz[0] = wrong_mrz[0].replacen("QUINTANILLA", "QUINTANILLO", 1);
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/receive"),
            Some(&json!({ "mrz": wrong_mrz.join("\n") })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"], "reprint");
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/receive"),
            Some(&json!({ "mrz": "P<COL" })),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    let second = wait_for_order(&p, &id, OrderState::Shipped).await;
    assert_ne!(second.order_id, first.order_id);
    assert_ne!(second.passport_number, first.passport_number);
    let serial2 = second.booklet_serial.clone().unwrap();
    assert_ne!(serial2, serial1);
    let order2 = body_of(&p, &second).await;
    pasaporte::production::verify_order(&order2, &p.csca, SystemTime::now()).unwrap();

    // The right MRZ, scanned with stray blanks and in lower case.
    let scanned = format!("{}\n {} ", order2.mrz[0].to_lowercase(), order2.mrz[1]);
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/receive"),
            Some(&json!({ "mrz": scanned })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"], "ready");
    wait_for_state(app, &p.clerk, &id, "ready_for_pickup").await;
    let mail = app.store.due_mail(i64::MAX, 50).await.unwrap();
    assert!(
        mail.iter().any(|m| m.subject.contains("listo")),
        "the citizen is told: {:?}",
        mail.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // Hand-over: another person's document is refused; the holder's is not.
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/hand-over"),
            Some(&json!({ "document_number": "123456" })),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "identity_does_not_match");
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/hand-over"),
            Some(&json!({ "document_number": crate::workflow::document(1) })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let v = state_of(app, &p.clerk, &id).await;
    assert_eq!(v["state"], "issued");

    // Custody without gaps: the spoiled booklet and the one handed over.
    assert_eq!(
        custody(&p, &serial1).await,
        [
            "receive",
            "reserve",
            "personalise",
            "dispatch",
            "receive_at_office",
            "spoil"
        ]
    );
    assert_eq!(
        custody(&p, &serial2).await,
        [
            "receive",
            "reserve",
            "personalise",
            "dispatch",
            "receive_at_office",
            "hand_over"
        ]
    );
    // The vendor made each order once.
    let held = sim_orders(&sim).await;
    assert_eq!(held.len(), 2, "{held:?}");

    // The history tells the whole story, and the trail verifies.
    let actions: Vec<String> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    // The vendor's `accepted` callback may come before the batch's answer
    // is recorded: one of the two records the hand-over to the vendor.
    assert!(
        actions
            .iter()
            .any(|a| a == "production.sent" || a == "production.accepted"),
        "{actions:?}"
    );
    for step in [
        "application.approve",
        "application.order_production",
        "production.shipped",
        "application.reprint",
        "production.reorder",
        "application.receive_booklet",
        "application.hand_over",
    ] {
        assert!(actions.iter().any(|a| a == step), "{step} in {actions:?}");
    }
    let verdict = app.store.verify_audit(&p.w.audit_key).await.unwrap();
    assert!(
        matches!(verdict, pasaporte_core::audit::Verdict::Intact { .. }),
        "{verdict:?}"
    );
}

async fn vendor_down_then_back_delivers_every_order_once(db: TestDb) {
    let p = spawn_prod(db).await;
    let sim = add_vendor(&p, "vendor-a", "site-a").await;
    set_down(&sim, true).await;
    let ids = approve_all(&p, 10..14).await;
    // Each order went out at least once and failed; none is lost.
    for id in &ids {
        let deadline = tokio::time::Instant::now() + STEP_WAIT;
        loop {
            let o = orders_of(&p, id).await;
            if o.len() == 1 && o[0].failures > 0 {
                assert_eq!(o[0].state, OrderState::Queued);
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{o:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    set_down(&sim, false).await;
    for id in &ids {
        wait_for_order(&p, id, OrderState::Shipped).await;
    }
    let held = sim_orders(&sim).await;
    assert_eq!(held.len(), ids.len(), "{held:?}");
    for o in &held {
        let shipped = o
            .events
            .iter()
            .filter(|e| e.kind == pasaporte::vendors::EventKind::Shipped)
            .count();
        assert_eq!(shipped, 1, "{o:?}");
    }
    for id in &ids {
        assert_eq!(orders_of(&p, id).await.len(), 1);
    }
}

async fn vendor_switch_in_the_middle_loses_and_duplicates_nothing(db: TestDb) {
    let p = spawn_prod(db).await;
    // A slow vendor A: its orders are still being made when it drains.
    let a = add_vendor_at(&p, "vendor-a", "site-a", 1.0).await;
    // Three orders reach vendor A...
    let early = approve_all(&p, 20..23).await;
    for id in &early {
        let deadline = tokio::time::Instant::now() + STEP_WAIT;
        while !orders_of(&p, id)
            .await
            .last()
            .is_some_and(|o| o.state.vendor_has_it())
        {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // ...then A stops answering with three more sent (or not) to it, and
    // the administrator switches to vendor B.
    set_down(&a, true).await;
    let late = approve_all(&p, 23..26).await;
    for id in &late {
        let deadline = tokio::time::Instant::now() + STEP_WAIT;
        while orders_of(&p, id).await.is_empty() {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let b = add_vendor(&p, "vendor-b", "site-b").await;
    let admin = staff(&p.w.app, "admin", Role::Administrator, &["*"]).await;
    let (status, v) =
        p.w.app
            .staff_call(
                &admin,
                Method::POST,
                "/api/v1/staff/vendors/vendor-a/state",
                Some(&json!({ "state": "draining" })),
            )
            .await;
    assert_eq!(status, 200, "{v}");
    // A answers again (its orders in hand finish there; the others are
    // asked about and move). A batch already on its way when the switch
    // was made could still reach A: the switch applies from the next batch,
    // so wait out the round in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    set_down(&a, false).await;
    for id in early.iter().chain(&late) {
        wait_for_order(&p, id, OrderState::Shipped).await;
    }
    let at_a = sim_orders(&a).await;
    let at_b = sim_orders(&b).await;
    let mut all: Vec<String> = at_a
        .iter()
        .chain(&at_b)
        .map(|o| o.order_id.clone())
        .collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "an order printed twice: {all:?}");
    assert_eq!(all.len(), 6, "{all:?}");
    for id in &early {
        let o = orders_of(&p, id).await;
        assert_eq!(o.len(), 1);
        assert_eq!(
            o[0].vendor_id.as_deref(),
            Some("vendor-a"),
            "finished where it was"
        );
    }
    for id in &late {
        let o = orders_of(&p, id).await;
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].vendor_id.as_deref(), Some("vendor-b"), "moved");
        let serial = o[0].booklet_serial.clone().unwrap();
        assert!(serial.starts_with("VB"), "{serial}");
        custody(&p, &serial).await;
    }
    // The booklets reserved at A for the moved orders went back to stock.
    let levels = p.w.app.store.stock_levels(Some("site-a")).await.unwrap();
    let reserved: u64 = levels
        .iter()
        .filter(|l| l.state == pasaporte_core::production::BookletState::Reserved)
        .map(|l| l.count)
        .sum();
    assert_eq!(reserved, 0, "{levels:?}");
    // The console's API shows each order's vendor and state.
    let sup = staff(&p.w.app, "sup", Role::Supervisor, &["TST"]).await;
    let (status, v) =
        p.w.app
            .staff_call(
                &sup,
                Method::GET,
                "/api/v1/staff/orders?state=shipped",
                None,
            )
            .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["orders"].as_array().unwrap().len(), 6, "{v}");
}

/// Walks person `n` to an approved emergency application.
pub(crate) async fn approved_emergency(p: &Prod, n: u64) -> String {
    approved_as(p, n, "emergencia").await
}

async fn emergency_passports_are_issued_at_the_office(db: TestDb) {
    let p = spawn_prod(db).await;
    let w = &p.w;
    let n = 40;
    let id = approved_emergency(&p, n).await;
    // No vendor order is placed for it (there is no vendor at all here).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state_of(&w.app, &p.clerk, &id).await["state"], "approved");
    let (status, v) = w
        .app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/emergency"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "ready_for_pickup");
    let issued: pasaporte_core::jiff::civil::Date =
        v["issue_date"].as_str().unwrap().parse().unwrap();
    let expiry: pasaporte_core::jiff::civil::Date =
        v["expiry_date"].as_str().unwrap().parse().unwrap();
    let months = (expiry.year() as i32 - issued.year() as i32) * 12 + expiry.month() as i32
        - issued.month() as i32;
    assert!(
        (6..=7).contains(&months),
        "valid 7 months: {issued} to {expiry}"
    );
    let serial = v["booklet_serial"].as_str().unwrap().to_string();
    assert!(
        serial.starts_with("VE"),
        "from the office's own stock: {serial}"
    );
    let o = wait_for_order(&p, &id, OrderState::Received).await;
    pasaporte::production::verify_order(&body_of(&p, &o).await, &p.csca, SystemTime::now())
        .unwrap();
    // An ordinary application cannot be issued this way; a second issue of
    // the same one is refused by the state machine.
    let (status, _) = w
        .app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/emergency"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (status, v) = w
        .app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/hand-over"),
            Some(&json!({ "document_number": crate::workflow::document(n) })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        custody(&p, &serial).await,
        [
            "receive",
            "reserve",
            "personalise",
            "receive_at_office",
            "hand_over"
        ]
    );

    // One not collected: the scheduled job annuls it after six months, not
    // before, and its booklet's custody ends annulled.
    let other = approved_emergency(&p, n + 1).await;
    let (status, v) = w
        .app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{other}/emergency"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let other_serial = v["booklet_serial"].as_str().unwrap().to_string();
    let job = pasaporte::app::App::new(
        w.app.store.clone(),
        keys().keyring().unwrap(),
        w.app.base.clone(),
        pasaporte::app::Adapters::default(),
    )
    .await
    .unwrap();
    let now = Timestamp::now();
    assert_eq!(
        pasaporte::pipeline::annul_round(&job, now).await.unwrap(),
        0
    );
    let later = now
        .checked_add(pasaporte_core::jiff::SignedDuration::from_hours(184 * 24))
        .unwrap();
    assert_eq!(
        pasaporte::pipeline::annul_round(&job, later).await.unwrap(),
        1
    );
    assert_eq!(
        state_of(&w.app, &p.clerk, &other).await["state"],
        "annulled"
    );
    assert_eq!(
        custody(&p, &other_serial).await,
        [
            "receive",
            "reserve",
            "personalise",
            "receive_at_office",
            "annul"
        ]
    );
    let (status, _) = w
        .app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{other}/hand-over"),
            Some(&json!({ "document_number": crate::workflow::document(n + 1) })),
        )
        .await;
    assert_eq!(status, 409, "an annulled passport is not handed over");
}

async fn a_minors_passport_goes_only_to_a_guardian_and_a_renewal_cancels_the_old_one(db: TestDb) {
    use pasaporte_core::person::{DocumentNumber, DocumentType};
    use pasaporte_core::registry::{RegistryQuery, RegistryRecord, Sex, VitalStatus};
    let p = spawn_prod(db).await;
    let w = &p.w;
    let app = &w.app;
    let _sim = add_vendor(&p, "vendor-a", "site-a").await;
    let number = "1100000077";
    let kind = DocumentType::TarjetaIdentidad;
    w.registry
        .controls
        .add_person(
            &RegistryQuery {
                document_type: kind,
                document_number: DocumentNumber::parse(kind, number, "n").unwrap(),
            },
            RegistryRecord {
                surnames: "MUÑOZ PEREZ".into(),
                given_names: "TOMAS".into(),
                birth_date: pasaporte_core::jiff::civil::date(2016, 9, 30),
                birth_place: "BOGOTA D.C.".into(),
                sex: Sex::M,
                nationality: "COL".into(),
                status: VitalStatus::Alive,
                document_cancelled: false,
            },
        )
        .unwrap();
    let start = app.next_slot("TST", 1).await;
    let mut minor = crate::support::minor(77);
    minor["document_number"] = json!(number);
    let (status, booked) = app
        .book(&crate::support::booking_body("TST", &start, vec![minor]))
        .await;
    assert_eq!(status, 201, "{booked}");
    let (status, done) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            "/api/v1/staff/offices/TST/check-ins",
            Some(&json!({ "document_type": "tarjeta_identidad", "document_number": number })),
        )
        .await;
    assert_eq!(status, 201, "{done}");
    let id = done["applications"][0].as_str().unwrap().to_string();
    let mut body = capture_body();
    for (k, v) in [
        ("surnames", "Muñoz Pérez"),
        ("given_names", "Tomás"),
        ("birth_date", "2016-09-30"),
        ("sex", "M"),
        ("reason", "renewal"),
        ("previous_passport_number", "AQ1234567"),
        ("consent", "guardians_present"),
        ("guardians[0].document_type", "cedula_ciudadania"),
        ("guardians[0].document_number", "52123456"),
        ("guardians[0].relationship", "mother"),
    ] {
        body[k] = json!(v);
    }
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/capture"),
            Some(&body),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    wait_for_state(app, &p.clerk, &id, "registry_verified").await;
    let reference = wait_for_reference(app, &id).await;
    pay(w, &reference.reference).await;
    wait_for_state(app, &p.clerk, &id, "paid").await;
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let o = wait_for_order(&p, &id, OrderState::Shipped).await;
    let order = body_of(&p, &o).await;
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/receive"),
            Some(&json!({ "mrz": order.mrz.join("\n") })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // The minor's own document does not collect it; nor does a stranger's.
    for (holder, guardian) in [(number, ""), ("", "79111222")] {
        let (status, v) = app
            .staff_call(
                &p.clerk,
                Method::POST,
                &format!("/api/v1/staff/applications/{id}/hand-over"),
                Some(&json!({ "document_number": holder, "guardian_document_number": guardian })),
            )
            .await;
        assert_eq!(status, 409, "{v}");
        assert_eq!(v["error"]["code"], "not_a_guardian_on_record");
    }
    let old_key = pasaporte::workflow::passport_key_with(&keys().keyring().unwrap(), "AQ1234567");
    assert_eq!(
        app.store.reported_passport_kind(&old_key).await.unwrap(),
        None
    );
    let (status, v) = app
        .staff_call(
            &p.clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/hand-over"),
            Some(&json!({ "guardian_document_number": "52.123.456" })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(state_of(app, &p.clerk, &id).await["state"], "issued");
    assert_eq!(
        app.store
            .reported_passport_kind(&old_key)
            .await
            .unwrap()
            .as_deref(),
        Some("cancelled"),
        "the renewed passport is cancelled at hand-over"
    );
}

async fn a_refused_order_is_a_dead_letter_until_a_supervisor_sends_it_again(db: TestDb) {
    let p = spawn_prod(db).await;
    let sim = add_vendor(&p, "vendor-a", "site-a").await;
    // pasaporte holds a key the vendor does not know: every batch is
    // refused (401), which retrying cannot mend.
    let save = |secret: String| {
        let store = p.w.app.store.clone();
        let url = sim.url();
        async move {
            pasaporte::pipeline::save_vendor(
                &store,
                &keys().keyring().unwrap(),
                "vendor-a",
                &url,
                &secret,
                "site-a",
                1,
                "*",
                "*",
                Timestamp::now(),
            )
            .await
            .unwrap()
        }
    };
    save("a-key-the-vendor-never-got-0123".into()).await;
    let id = approved(&p, 60).await;
    let dead = wait_for_order(&p, &id, OrderState::Dead).await;
    assert_eq!(
        dead.last_error.as_deref(),
        Some("refused: 401 bad_signature")
    );
    let sup = staff(&p.w.app, "sup.tst", Role::Supervisor, &["TST"]).await;
    let (status, v) =
        p.w.app
            .staff_call(&sup, Method::GET, "/api/v1/staff/orders", None)
            .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["orders"][0]["order_id"], dead.order_id.as_str(), "{v}");
    // The key is put right; the supervisor sends it again; it is made once.
    save(vendor_secret("vendor-a")).await;
    let path = format!("/api/v1/staff/orders/{}/resend", dead.order_id);
    let (status, v) = p.w.app.staff_call(&sup, Method::POST, &path, None).await;
    assert_eq!(status, 200, "{v}");
    let shipped = wait_for_order(&p, &id, OrderState::Shipped).await;
    assert_eq!(shipped.order_id, dead.order_id);
    assert_eq!(sim_orders(&sim).await.len(), 1);
    // Only dead letters are sent again.
    let (status, _) = p.w.app.staff_call(&sup, Method::POST, &path, None).await;
    assert_eq!(status, 409);
}
