//! The office workflow end to end over real HTTP: a booked citizen taken to
//! an approved application through the staff API, with the project's civil
//! registry and payment simulators on loopback; the registry down then back;
//! payment callbacks forged, stale and replayed; the role-by-route matrix;
//! and the database files searched for personal data in clear.

use crate::both_databases;
use crate::support::{Staff, TestApp, World, booking_body, spawn_world, staff};
use pasaporte::http::staff_api::STAFF_ROUTES;
use pasaporte_core::application::Role;
use pasaporte_core::jiff::civil::date;
use pasaporte_core::person::{DocumentNumber, DocumentType};
use pasaporte_core::policy::allows;
use pasaporte_core::registry::{RegistryQuery, RegistryRecord, Sex, VitalStatus};
use pasaporte_store::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

both_databases!(
    booked_citizen_to_approved_application,
    registry_down_then_back,
    forged_stale_and_replayed_callbacks_change_nothing,
    every_route_answers_each_role_as_the_policy_says,
    no_personal_data_in_clear_in_the_database_files,
    supervisors_decide_mismatches_waivers_and_cancellations,
    walk_ins_and_no_shows,
    concurrent_counters_keep_the_trail_intact,
    booklet_stock_is_visible_and_received_from_the_command_line,
    a_missing_fee_is_looked_at_less_and_less_and_shown_to_supervisors,
);

/// How long a test waits for a worker's step (they run every 50 ms).
pub(crate) const STEP_WAIT: Duration = Duration::from_secs(20);

const SURNAMES: &str = "Quintanilla Zabaleta";
const GIVEN: &str = "Ximena Rocío";
const BIRTH: &str = "1988-11-23";

pub(crate) fn document(n: u64) -> String {
    format!("{}", 79_000_000 + n)
}

pub(crate) fn applicant(n: u64) -> Value {
    json!({
        "document_type": "cedula_ciudadania",
        "document_number": document(n),
        "surnames": SURNAMES,
        "given_names": GIVEN,
        "birth_date": BIRTH,
    })
}

/// The registry knows the person as the civil registry spells names.
pub(crate) fn register(world: &World, n: u64) {
    let kind = DocumentType::CedulaCiudadania;
    world
        .registry
        .controls
        .add_person(
            &RegistryQuery {
                document_type: kind,
                document_number: DocumentNumber::parse(kind, &document(n), "n").unwrap(),
            },
            RegistryRecord {
                surnames: "QUINTANILLA ZABALETA".into(),
                given_names: "XIMENA ROCIO".into(),
                birth_date: date(1988, 11, 23),
                birth_place: "BOGOTA D.C.".into(),
                sex: Sex::F,
                nationality: "COL".into(),
                status: VitalStatus::Alive,
                document_cancelled: false,
            },
        )
        .unwrap();
}

pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub(crate) fn capture_body() -> Value {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let now_ms = pasaporte_core::jiff::Timestamp::now().as_millisecond();
    json!({
        "passport_type": "ordinario",
        "surnames": SURNAMES,
        "given_names": GIVEN,
        "birth_date": BIRTH,
        "birth_place": "Bogotá, D.C.",
        "sex": "F",
        "nationality": "COL",
        "email": "ximena.quintanilla@example.co",
        "phone": "+57 310 555 0101",
        "fingerprint.device_id": "scanner-07",
        "fingerprint.quality": "82",
        "fingerprint.template_sha256": "ab".repeat(32),
        "fingerprint.fingers_captured": "10",
        "fingerprint.captured_at_ms": now_ms.to_string(),
        "reason": "first",
        "photo_base64": b64.encode(png(600, 750)),
        "signature_base64": b64.encode(png(600, 200)),
    })
}

/// Books the next slot of TST for person `n` and checks them in; returns
/// the application id.
pub(crate) async fn booked_and_checked_in(w: &World, clerk: &Staff, n: u64) -> String {
    booked_and_checked_in_at(w, "TST", clerk, n).await
}

/// [`booked_and_checked_in`] at `office`.
pub(crate) async fn booked_and_checked_in_at(
    w: &World,
    office: &str,
    clerk: &Staff,
    n: u64,
) -> String {
    let app = &w.app;
    let start = app.next_slot(office, 1).await;
    let (status, booked) = app
        .book(&booking_body(office, &start, vec![applicant(n)]))
        .await;
    assert_eq!(status, 201, "{booked}");
    let (status, done) = app
        .staff_call(
            clerk,
            Method::POST,
            &format!("/api/v1/staff/offices/{office}/check-ins"),
            Some(&json!({ "document_type": "cedula_ciudadania", "document_number": document(n) })),
        )
        .await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["booking_code"], booked["code"]);
    done["applications"][0].as_str().unwrap().to_string()
}

pub(crate) async fn state_of(app: &TestApp, who: &Staff, id: &str) -> Value {
    let (status, v) = app
        .staff_call(
            who,
            Method::GET,
            &format!("/api/v1/staff/applications/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Polls until the application reaches `state` (workers run every 50 ms).
pub(crate) async fn wait_for_state(app: &TestApp, who: &Staff, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + STEP_WAIT;
    loop {
        let v = state_of(app, who, id).await;
        if v["state"] == state {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {} waiting for {state}: {v}",
            v["state"]
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub(crate) async fn wait_for_reference(
    app: &TestApp,
    id: &str,
) -> pasaporte_store::PaymentReference {
    let deadline = tokio::time::Instant::now() + STEP_WAIT;
    loop {
        if let Some(r) = app.store.payment_reference_of(id).await.unwrap() {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no payment reference"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub(crate) async fn pay(w: &World, reference: &str) {
    let r = w
        .app
        .client
        .post(format!(
            "{}/v1/references/{reference}/pay",
            w.payments.url()
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn booked_citizen_to_approved_application(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST"]).await;
    let auditor = staff(app, "auditor", Role::Auditor, &["*"]).await;
    register(&w, 1);
    let id = booked_and_checked_in(&w, &clerk, 1).await;

    // The day's page shows the booking as arrived and the application waiting.
    let (status, today) = app
        .staff_call(&clerk, Method::GET, "/api/v1/staff/offices/TST/today", None)
        .await;
    assert_eq!(status, 200, "{today}");
    assert!(
        today["applications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str())
    );
    assert!(
        today["bookings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["status"] == "checked_in")
    );

    let (status, called) = app
        .staff_call(
            &clerk,
            Method::POST,
            "/api/v1/staff/offices/TST/calls",
            Some(&json!({ "counter": "Ventanilla 3" })),
        )
        .await;
    assert_eq!(status, 200, "{called}");
    assert_eq!(called["application"], id.as_str());

    let (status, captured) = app
        .staff_call(
            &clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/capture"),
            Some(&capture_body()),
        )
        .await;
    assert_eq!(status, 200, "{captured}");
    assert_eq!(captured["state"], "captured");

    // The registry worker confirms; the payment worker asks for a reference.
    wait_for_state(app, &clerk, &id, "registry_verified").await;
    let reference = wait_for_reference(app, &id).await;
    assert_eq!(
        reference.amount_minor, 190_000,
        "ordinario in Bogotá, in pesos"
    );
    assert_eq!(reference.currency, "COP");
    pay(&w, &reference.reference).await;
    let paid = wait_for_state(app, &clerk, &id, "paid").await;
    assert_eq!(paid["flags"], json!([]), "no automatic check flagged it");

    let (status, approved) = app
        .staff_call(
            &clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["queue"], "production");

    // Every step is in the history, attributed, in order.
    let v = state_of(app, &clerk, &id).await;
    let actions: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "application.check_in",
            "application.call_to_counter",
            "application.capture",
            "application.registry_confirmed",
            "payment.reference_issued",
            "application.payment_confirmed",
            "application.approve",
        ]
    );
    assert_eq!(v["history"][0]["actor"], clerk.id.as_str());
    assert_eq!(v["history"][3]["actor"], "system:registry");

    // The trail verifies, through the API and through the store.
    let (status, verdict) = app
        .staff_call(&auditor, Method::GET, "/api/v1/staff/audit/verify", None)
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["intact"], true, "{verdict}");
    assert!(verdict["count"].as_u64().unwrap() >= 7);
    let verdict = app.store.verify_audit(&w.audit_key).await.unwrap();
    assert!(
        matches!(verdict, pasaporte_core::audit::Verdict::Intact { .. }),
        "{verdict:?}"
    );

    // The citizen's booking has become this one application.
    let booking_id = app
        .store
        .application(&id)
        .await
        .unwrap()
        .booking_id
        .unwrap();
    let apps = app
        .store
        .applications_of_booking(&booking_id)
        .await
        .unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].state, "approved");
}

async fn registry_down_then_back(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST"]).await;
    let supervisor = staff(app, "sup.tst", Role::Supervisor, &["TST"]).await;
    w.registry.controls.set_down(true);
    let mut ids = Vec::new();
    for n in 10..13 {
        register(&w, n);
        let id = booked_and_checked_in(&w, &clerk, n).await;
        let (status, v) = app
            .staff_call(
                &clerk,
                Method::POST,
                &format!("/api/v1/staff/applications/{id}/capture"),
                Some(&capture_body()),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        ids.push(id);
    }
    for id in &ids {
        wait_for_state(app, &clerk, id, "pending_registry").await;
    }
    // Visible to supervisors while they wait.
    let (status, queues) = app
        .staff_call(
            &supervisor,
            Method::GET,
            "/api/v1/staff/supervisor/queues",
            None,
        )
        .await;
    assert_eq!(status, 200, "{queues}");
    let pending: Vec<&str> = queues["pending_registry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    for id in &ids {
        assert!(pending.contains(&id.as_str()), "{id} not listed: {queues}");
    }
    // The registry returns: every application proceeds, none lost.
    w.registry.controls.set_down(false);
    for id in &ids {
        wait_for_state(app, &clerk, id, "registry_verified").await;
    }
}

async fn post_callback(w: &World, body: &[u8], timestamp: i64, secret: &[u8]) -> u16 {
    let sig = pasaporte::payments::sign(secret, timestamp, body);
    w.app
        .client
        .post(w.app.url("/api/v1/payments/callback"))
        .header("x-pasaporte-timestamp", timestamp.to_string())
        .header("x-pasaporte-signature", sig)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn forged_stale_and_replayed_callbacks_change_nothing(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST"]).await;
    register(&w, 20);
    let id = booked_and_checked_in(&w, &clerk, 20).await;
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/capture"),
            Some(&capture_body()),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    wait_for_state(app, &clerk, &id, "registry_verified").await;
    let reference = wait_for_reference(app, &id).await;
    let now_s = pasaporte_core::jiff::Timestamp::now().as_second();
    let body = json!({
        "event_id": "evt-forged-1",
        "kind": "payment.confirmed",
        "reference": reference.reference,
        "amount_minor": reference.amount_minor,
        "currency": reference.currency,
        "occurred_ms": now_s * 1000,
    })
    .to_string();
    let history_len = |v: &Value| v["history"].as_array().unwrap().len();
    let before = state_of(app, &clerk, &id).await;

    // A wrong secret, a tampered body, a timestamp six minutes old.
    assert_eq!(
        post_callback(&w, body.as_bytes(), now_s, b"not-the-secret").await,
        401
    );
    let sig = pasaporte::payments::sign(&w.payments_secret, now_s, body.as_bytes());
    let tampered = body.replace("payment.confirmed", "refund.completed");
    let r = app
        .client
        .post(app.url("/api/v1/payments/callback"))
        .header("x-pasaporte-timestamp", now_s.to_string())
        .header("x-pasaporte-signature", sig)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        post_callback(&w, body.as_bytes(), now_s - 360, &w.payments_secret).await,
        401
    );
    let after = state_of(app, &clerk, &id).await;
    assert_eq!(after["state"], "registry_verified");
    assert_eq!(history_len(&after), history_len(&before));
    assert_eq!(
        app.store
            .payment_reference_of(&id)
            .await
            .unwrap()
            .unwrap()
            .status,
        reference.status
    );

    // The real payment, then the gateway's replay of the same event.
    pay(&w, &reference.reference).await;
    let paid = wait_for_state(app, &clerk, &id, "paid").await;
    let events: Vec<Value> = app
        .client
        .get(format!("{}/admin/events", w.payments.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = events[0]["event_id"].as_str().unwrap().to_string();
    let r = app
        .client
        .post(format!("{}/admin/replay/{event_id}", w.payments.url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // And the same signed body posted again by anyone who captured it.
    let replay = json!({
        "event_id": event_id,
        "kind": "payment.confirmed",
        "reference": reference.reference,
        "amount_minor": reference.amount_minor,
        "currency": reference.currency,
        "occurred_ms": now_s * 1000,
    })
    .to_string();
    assert_eq!(
        post_callback(&w, replay.as_bytes(), now_s, &w.payments_secret).await,
        204
    );
    let again = state_of(app, &clerk, &id).await;
    assert_eq!(again["state"], "paid");
    assert_eq!(history_len(&again), history_len(&paid), "{again}");
}

/// The expected answer of `role` (None: anonymous) on a route of `action`.
fn allowed(role: Option<Role>, action: pasaporte_core::policy::Action) -> bool {
    role.is_some_and(|r| allows(r, action))
}

async fn every_route_answers_each_role_as_the_policy_says(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST"]).await;
    register(&w, 30);
    let id = booked_and_checked_in(&w, &clerk, 30).await;
    let people = [
        (Some(Role::Clerk), Some(clerk)),
        (
            Some(Role::Supervisor),
            Some(staff(app, "sup.tst", Role::Supervisor, &["TST"]).await),
        ),
        (
            Some(Role::Administrator),
            Some(staff(app, "admin", Role::Administrator, &["*"]).await),
        ),
        (
            Some(Role::Auditor),
            Some(staff(app, "auditor", Role::Auditor, &["*"]).await),
        ),
        (None, None),
    ];
    for (method, template, action) in STAFF_ROUTES {
        let path = template.replace("{office}", "TST").replace("{id}", &id);
        for (role, who) in &people {
            let (status, body) = match who {
                Some(s) => {
                    app.staff_call(
                        s,
                        method.clone(),
                        &path,
                        (*method != Method::GET).then_some(&json!({})),
                    )
                    .await
                }
                None => {
                    let r = app
                        .client
                        .request(method.clone(), app.url(&path))
                        .json(&json!({}))
                        .send()
                        .await
                        .unwrap();
                    let s = r.status().as_u16();
                    (s, r.json().await.unwrap_or(Value::Null))
                }
            };
            let what = format!("{method} {path} as {role:?}: {status} {body}");
            match (role, allowed(*role, *action)) {
                (None, _) => assert_eq!(status, 401, "{what}"),
                (Some(_), false) => assert_eq!(status, 403, "{what}"),
                (Some(_), true) => {
                    assert!(![401, 403].contains(&status), "{what}");
                    assert!(status < 500, "{what}");
                }
            }
        }
    }
    // Another office's clerk gets the same 404 as for an unknown office or id.
    let other = staff(app, "clerk.ts2", Role::Clerk, &["TS2"]).await;
    let (status, _) = app
        .staff_call(
            &other,
            Method::GET,
            &format!("/api/v1/staff/applications/{id}"),
            None,
        )
        .await;
    let (unknown, _) = app
        .staff_call(
            &other,
            Method::GET,
            "/api/v1/staff/applications/00000000-0000-7000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!((status, unknown), (404, 404));
    let (status, _) = app
        .staff_call(&other, Method::GET, "/api/v1/staff/offices/TST/today", None)
        .await;
    assert_eq!(status, 404, "another office answers like an unknown one");
    every_list_shows_only_the_persons_offices(&w, &id, &other).await;
    // A citizen's manage token reaches only its own booking.
    let start = app.next_slot("TST", 1).await;
    let (_, mine) = app
        .book(&booking_body("TST", &start, vec![applicant(31)]))
        .await;
    let (_, theirs) = app
        .book(&booking_body("TST", &start, vec![applicant(32)]))
        .await;
    let token = mine["manage_token"].as_str().unwrap();
    let (other_booking, _) = app
        .authed(
            Method::GET,
            &format!("/api/v1/bookings/{}", theirs["code"].as_str().unwrap()),
            token,
            None,
        )
        .await;
    let (no_booking, _) = app
        .authed(Method::GET, "/api/v1/bookings/ZZZZZZZZ", token, None)
        .await;
    assert_eq!((other_booking, no_booking), (404, 404));
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

async fn no_personal_data_in_clear_in_the_database_files(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST"]).await;
    register(&w, 40);
    let id = booked_and_checked_in(&w, &clerk, 40).await;
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/capture"),
            Some(&capture_body()),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    wait_for_state(app, &clerk, &id, "registry_verified").await;
    let needles: Vec<Vec<u8>> = [
        SURNAMES,
        "Quintanilla",
        "QUINTANILLA",
        "Zabaleta",
        "Ximena",
        &document(40),
        "1988-11-23",
        "ximena.quintanilla@example.co",
        "555 0101",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut files = Vec::new();
    match db {
        TestDb::Sqlite => {
            let url = app.store.database_path().expect("a SQLite file");
            let dir = std::path::Path::new(&url).parent().unwrap().to_path_buf();
            files_under(&dir, &mut files);
        }
        TestDb::Postgres => {
            // Flush everything to the heap files, then read them all.
            pasaporte_store::testing::flush_to_files(&app.store)
                .await
                .unwrap();
            let data = std::env::var("PASAPORTE_TEST_PG_DATA")
                .expect("scripts/pg.sh exports PASAPORTE_TEST_PG_DATA");
            for sub in pasaporte_store::testing::pg_database_dirs(&app.store)
                .await
                .unwrap()
                .unwrap()
            {
                files_under(&std::path::Path::new(&data).join(sub), &mut files);
            }
        }
    }
    assert!(!files.is_empty());
    let mut searched = 0;
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        searched += bytes.len();
        for n in &needles {
            assert!(
                memchr::memmem::find(&bytes, n).is_none(),
                "{} holds '{}' in clear",
                f.display(),
                String::from_utf8_lossy(n)
            );
        }
    }
    assert!(searched > 10_000, "searched only {searched} bytes");
}

async fn capture(w: &World, clerk: &Staff, id: &str) {
    let (status, v) = w
        .app
        .staff_call(
            clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/capture"),
            Some(&capture_body()),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

async fn supervisors_decide_mismatches_waivers_and_cancellations(db: TestDb) {
    use pasaporte::auth::{session::token_hash, totp};
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST"]).await;
    let sup = staff(app, "sup.tst", Role::Supervisor, &["TST"]).await;

    // The registry knows person 50 with another birth date: a mismatch,
    // which waits for a supervisor and never skips payment.
    let kind = DocumentType::CedulaCiudadania;
    w.registry
        .controls
        .add_person(
            &RegistryQuery {
                document_type: kind,
                document_number: DocumentNumber::parse(kind, &document(50), "n").unwrap(),
            },
            RegistryRecord {
                surnames: "QUINTANILLA ZABALETA".into(),
                given_names: "XIMENA ROCIO".into(),
                birth_date: date(1989, 11, 23),
                birth_place: "BOGOTA D.C.".into(),
                sex: Sex::F,
                nationality: "COL".into(),
                status: VitalStatus::Alive,
                document_cancelled: false,
            },
        )
        .unwrap();
    let id = booked_and_checked_in(&w, &clerk, 50).await;
    capture(&w, &clerk, &id).await;
    let v = wait_for_state(app, &clerk, &id, "registry_mismatch").await;
    let reason = v["history"].as_array().unwrap().last().unwrap()["detail"].clone();
    assert_eq!(
        reason, "the civil registry disagrees on: birth_date",
        "fields only, no values"
    );
    let (_, queues) = app
        .staff_call(&sup, Method::GET, "/api/v1/staff/supervisor/queues", None)
        .await;
    assert!(
        queues["flagged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str())
    );

    // A clerk may not override; a supervisor signed in 11 minutes ago must
    // give the password again first.
    let path = format!("/api/v1/staff/applications/{id}/registry-override");
    let body = json!({ "reason": "Registro desactualizado; se verificó el documento original" });
    let (status, _) = app
        .staff_call(&clerk, Method::POST, &path, Some(&body))
        .await;
    assert_eq!(status, 403);
    let token = sup.cookie.split_once('=').unwrap().1;
    let eleven_minutes_ago = pasaporte_core::jiff::Timestamp::now().as_millisecond() - 11 * 60_000;
    app.store
        .set_session_authenticated_at(&token_hash(token), eleven_minutes_ago)
        .await
        .unwrap();
    let (status, v) = app.staff_call(&sup, Method::POST, &path, Some(&body)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("reauthentication_required"))
    );
    let next_code = totp::code_at(
        &sup.totp_secret,
        pasaporte_core::jiff::Timestamp::now().as_second() as u64 + totp::TOTP_STEP_SECONDS,
    )
    .unwrap();
    let (status, v) = app
        .staff_call(
            &sup,
            Method::POST,
            "/api/v1/staff/session/reauth",
            Some(&json!({ "password": crate::support::STAFF_PASSWORD, "totp": next_code })),
        )
        .await;
    assert!(status < 300, "{status} {v}");
    let (status, v) = app.staff_call(&sup, Method::POST, &path, Some(&body)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "registry_verified");

    // A fee waiver: asked by the clerk, granted by the supervisor; it counts
    // as the payment, and the automatic checks flag the override.
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/waiver"),
            Some(&json!({ "reason": "Persona en situación de desplazamiento" })),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let (status, v) = app
        .staff_call(
            &sup,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/waiver/decision"),
            Some(&json!({ "approve": true })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let v = state_of(app, &sup, &id).await;
    assert_eq!(v["state"], "flagged", "{v}");
    assert_eq!(v["flags"], json!(["registry_not_verified"]));
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(
        status, 409,
        "a clerk cannot approve a flagged application: {v}"
    );
    // The approve route cannot be used to skip the decision's fresh sign-in.
    let (status, v) = app
        .staff_call(
            &sup,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("not_allowed_in_state"))
    );
    let (status, v) = app
        .staff_call(
            &sup,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/decision"),
            Some(&json!({ "decision": "approve", "reason": "Identidad verificada con el documento original" })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "approved");

    // A paid application cancelled by a supervisor is refunded through the
    // gateway, whose callback completes the refund.
    register(&w, 51);
    let id = booked_and_checked_in(&w, &clerk, 51).await;
    capture(&w, &clerk, &id).await;
    wait_for_state(app, &clerk, &id, "registry_verified").await;
    let reference = wait_for_reference(app, &id).await;
    // A supervisor does not grant a waiver they asked for themselves.
    let (status, _) = app
        .staff_call(
            &sup,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/waiver"),
            Some(&json!({ "reason": "Prueba de doble control" })),
        )
        .await;
    assert_eq!(status, 202);
    let (status, v) = app
        .staff_call(
            &sup,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/waiver/decision"),
            Some(&json!({ "approve": true })),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("waiver_own_request"))
    );
    pay(&w, &reference.reference).await;
    wait_for_state(app, &clerk, &id, "paid").await;
    let (status, v) = app
        .staff_call(
            &sup,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/decision"),
            Some(&json!({ "decision": "cancel", "reason": "El ciudadano desistió del trámite" })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "cancelled");
    let deadline = tokio::time::Instant::now() + STEP_WAIT;
    loop {
        let r = app.store.payment_reference_of(&id).await.unwrap().unwrap();
        if r.status == pasaporte_core::fees::PaymentStatus::Refunded {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not refunded: {:?}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let v = state_of(app, &sup, &id).await;
    let actions: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.ends_with(&[
            "application.cancel",
            "payment.refund_requested",
            "payment.refunded"
        ]),
        "{actions:?}"
    );
    // The person may book again.
    let start = app.next_slot("TST", 1).await;
    let (status, v) = app
        .book(&booking_body("TST", &start, vec![applicant(51)]))
        .await;
    assert_eq!(status, 201, "{v}");
}

async fn walk_ins_and_no_shows(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST", "MIA"]).await;
    let walk_in = json!({
        "document_type": "cedula_ciudadania",
        "document_number": document(60),
        "surnames": SURNAMES,
        "given_names": GIVEN,
        "birth_date": BIRTH,
    });
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            "/api/v1/staff/offices/TST/walk-ins",
            Some(&walk_in),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["ticket"], "T-001");
    // The same person cannot hold two live applications.
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            "/api/v1/staff/offices/TST/walk-ins",
            Some(&walk_in),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("application_in_progress"))
    );
    // Consulates serve by appointment only; bad input names every field.
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            "/api/v1/staff/offices/MIA/walk-ins",
            Some(&walk_in),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("walk_ins_not_taken"))
    );
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            "/api/v1/staff/offices/TST/walk-ins",
            Some(&json!({ "document_type": "cedula_ciudadania", "document_number": "12", "surnames": "", "given_names": "Ana", "birth_date": "2990-01-01" })),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["document_number", "surnames", "birth_date"], "{v}");

    // A booking nobody checks in becomes a no-show once its grace period
    // has passed (the worker's step, run here as of tomorrow); the person
    // may book again, and the booking can no longer be checked in.
    let start = app.next_slot("TST", 1).await;
    let (status, booked) = app
        .book(&booking_body("TST", &start, vec![applicant(61)]))
        .await;
    assert_eq!(status, 201, "{booked}");
    let (store, url) = (
        app.store.clone(),
        app.store.database_path().map(str::to_string),
    );
    let keys = crate::support::keys().keyring().unwrap();
    let worker = pasaporte::app::App::new(store, keys, "http://test".into(), Default::default())
        .await
        .unwrap();
    let tomorrow = pasaporte_core::jiff::Timestamp::now()
        + pasaporte_core::jiff::SignedDuration::from_hours(24);
    let marked = pasaporte::workflow::mark_no_shows(&worker, tomorrow, 100)
        .await
        .unwrap();
    assert!(marked >= 1, "{marked} marked ({url:?})");
    let (_, v) = app
        .authed(
            Method::GET,
            &format!("/api/v1/bookings/{}", booked["code"].as_str().unwrap()),
            booked["manage_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(v["status"], "no_show", "{v}");
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            "/api/v1/staff/offices/TST/check-ins",
            Some(&json!({ "code": booked["code"] })),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("booking_not_active"))
    );
    let (status, today) = app
        .staff_call(&clerk, Method::GET, "/api/v1/staff/offices/TST/today", None)
        .await;
    assert_eq!(status, 200);
    assert!(today["no_shows"].as_i64().unwrap() >= 1, "{today}");
    let (status, v) = app
        .book(&booking_body(
            "TST",
            &app.next_slot("TST", 1).await,
            vec![applicant(61)],
        ))
        .await;
    assert_eq!(status, 201, "the no-show's hold is released: {v}");
    let history = app
        .store
        .audit_events_of(
            &app.store
                .booking_by_code(booked["code"].as_str().unwrap())
                .await
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert_eq!(history.last().unwrap().action, "booking.no_show");
    assert_eq!(history.last().unwrap().actor, "system:no-show");
}

async fn concurrent_counters_keep_the_trail_intact(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerks = [
        staff(app, "clerk.a", Role::Clerk, &["TST"]).await,
        staff(app, "clerk.b", Role::Clerk, &["TST"]).await,
        staff(app, "clerk.c", Role::Clerk, &["TST"]).await,
    ];
    // One staff write sent from its own task.
    let post = |who: &Staff, path: &str, body: Value| {
        let req = app
            .client
            .post(app.url(path))
            .header(reqwest::header::COOKIE, &who.cookie)
            .header("x-csrf-token", &who.csrf)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let mut codes = Vec::new();
    for n in 70..82 {
        let start = app.next_slot("TST", 1).await;
        let (status, v) = app
            .book(&booking_body("TST", &start, vec![applicant(n)]))
            .await;
        assert_eq!(status, 201, "{v}");
        codes.push(v["code"].as_str().unwrap().to_string());
    }
    // Three counters check in twelve bookings and take six walk-ins at once,
    // each booking attempted by two clerks: exactly one wins each.
    let mut set = tokio::task::JoinSet::new();
    for (i, code) in codes.iter().enumerate() {
        for k in 0..2 {
            set.spawn(post(
                &clerks[(i + k) % 3],
                "/api/v1/staff/offices/TST/check-ins",
                json!({ "code": code }),
            ));
        }
    }
    for (i, n) in (90..96).enumerate() {
        set.spawn(post(
            &clerks[i % 3],
            "/api/v1/staff/offices/TST/walk-ins",
            json!({
                "document_type": "cedula_ciudadania",
                "document_number": document(n),
                "surnames": SURNAMES,
                "given_names": GIVEN,
                "birth_date": BIRTH,
            }),
        ));
    }
    let results = set.join_all().await;
    let checked_in = results
        .iter()
        .filter(|(s, v)| *s == 201 && v["booking_code"].is_string())
        .count();
    let refused = results
        .iter()
        .filter(|(s, v)| {
            *s == 409
                && ["already_checked_in", "booking_not_active"]
                    .contains(&v["error"]["code"].as_str().unwrap_or(""))
        })
        .count();
    let mut tickets: Vec<String> = results
        .iter()
        .filter(|(s, v)| *s == 201 && v["ticket"].is_string())
        .map(|(_, v)| v["ticket"].as_str().unwrap().to_string())
        .collect();
    tickets.sort();
    assert_eq!((checked_in, refused), (12, 12), "{results:?}");
    assert_eq!(
        tickets,
        ["T-001", "T-002", "T-003", "T-004", "T-005", "T-006"]
    );
    // Every step recorded once (the three accounts and sign-ins, the twelve
    // bookings, the eighteen check-ins and walk-ins), in one unbroken chain.
    match app.store.verify_audit(&w.audit_key).await.unwrap() {
        pasaporte_core::audit::Verdict::Intact { count, .. } => {
            assert_eq!(count, 3 + 3 + 12 + 18)
        }
        other => panic!("{other:?}"),
    }
}

async fn booklet_stock_is_visible_and_received_from_the_command_line(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let sup = staff(app, "sup.tst", Role::Supervisor, &["TST"]).await;
    // The command line runs against the SQLite file; on PostgreSQL the same
    // store function records the delivery.
    let url = app
        .store
        .database_path()
        .map(str::to_string)
        .unwrap_or_default();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pasaporte"))
            .args(args)
            .env("PASAPORTE_DATABASE", &url)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    if db == TestDb::Sqlite {
        let (ok, out, err) = cli(&[
            "stock",
            "receive",
            "--range",
            "AB0000001-AB0000100",
            "--type",
            "pages32",
            "--site",
            "BOG-IMPRENTA",
        ]);
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("received 100 pages32 booklets at BOG-IMPRENTA"),
            "{out}"
        );
        // A range written backwards says what to fix and stores nothing.
        let (ok, _, err) = cli(&[
            "stock",
            "receive",
            "--range",
            "AB0000200-AB0000101",
            "--type",
            "pages32",
            "--site",
            "BOG-IMPRENTA",
        ]);
        assert!(!ok);
        assert!(err.contains("--range"), "{err}");
        let (ok, out, _) = cli(&["stock", "levels"]);
        assert!(ok);
        assert!(out.contains("pages32\tin_stock\t100"), "{out}");
    } else {
        let mut tx = app.store.begin_write().await.unwrap();
        pasaporte_store::receive_range(
            &mut tx,
            &pasaporte_core::production::SerialRange::parse("AB0000001-AB0000100").unwrap(),
            pasaporte_core::production::BookletType::Pages32,
            "BOG-IMPRENTA",
            "test",
            pasaporte_core::jiff::Timestamp::now().as_millisecond(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let (status, v) = app
        .staff_call(&sup, Method::GET, "/api/v1/staff/stock", None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["levels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["booklet_type"] == "pages32"
                && l["state"] == "in_stock"
                && l["count"] == 100),
        "{v}"
    );
    let f = v["forecasts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["booklet_type"] == "pages32")
        .unwrap();
    assert_eq!(
        (f["in_stock"].as_u64(), f["days_left"].clone()),
        (Some(100), Value::Null),
        "nothing issued yet: no rate"
    );
}

async fn a_missing_fee_is_looked_at_less_and_less_and_shown_to_supervisors(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    // TS2 is a department office without its own row in data/fees.csv.
    let clerk = staff(app, "clerk.ts2", Role::Clerk, &["TS2"]).await;
    let sup = staff(app, "sup.ts2", Role::Supervisor, &["TS2"]).await;
    let other = staff(app, "sup.tst", Role::Supervisor, &["TST"]).await;
    register(&w, 61);
    let id = booked_and_checked_in_at(&w, "TS2", &clerk, 61).await;
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            &format!("/api/v1/staff/applications/{id}/capture"),
            Some(&capture_body()),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    wait_for_state(app, &clerk, &id, "registry_verified").await;
    // The worker runs every 50 ms: 3 seconds are 60 rounds. Each look at the
    // application (and its ERROR log) puts it off for as long as it has
    // waited, so there are a handful of looks, not 60.
    let mut looks = std::collections::BTreeSet::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        if let Some(next) = app.store.application(&id).await.unwrap().next_check_ms {
            looks.insert(next);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!looks.is_empty(), "the worker put the application off");
    assert!(looks.len() <= 4, "looks at {looks:?}");
    let gaps: Vec<i64> = looks
        .iter()
        .zip(looks.iter().skip(1))
        .map(|(a, b)| b - a)
        .collect();
    assert!(
        gaps.iter().all(|g| *g >= 900),
        "looks a second or more apart: {gaps:?}"
    );
    assert!(app.store.payment_reference_of(&id).await.unwrap().is_none());
    // The office's supervisors see why; another office's do not.
    let (status, q) = app
        .staff_call(&sup, Method::GET, "/api/v1/staff/supervisor/queues", None)
        .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        q["fees_missing"],
        json!([{"office": "TS2", "passport_type": "ordinario", "currency": "COP", "applications": 1}]),
        "{q}"
    );
    let (_, q) = app
        .staff_call(&other, Method::GET, "/api/v1/staff/supervisor/queues", None)
        .await;
    assert_eq!(q["fees_missing"], json!([]), "{q}");
    let (status, page) = app.staff_page(&sup, "/console/supervisor?lang=en").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(
            "No fee configured for the ordinario passport at office TS2 (COP): 1 applications wait"
        ),
        "{page}"
    );
}

/// A dead production order (the orders list's default) of `application`,
/// whose passport number, booklet serial and tracking all contain `mark`.
async fn dead_order(app: &TestApp, application: &str, office: &str, mark: &str) {
    use pasaporte_store::{NewOrder, OrderState, insert_order, order_in, update_order};
    let order_id = format!("{application}-o1");
    let serial = format!("S{mark}");
    let mut tx = app.store.begin_write().await.unwrap();
    insert_order(
        &mut tx,
        &NewOrder {
            order_id: &order_id,
            application_id: application,
            office,
            vendor_id: None,
            passport_number: mark,
            booklet_type: "32",
            booklet_serial: Some(&serial),
            body_enc: "sealed",
            now_ms: pasaporte_core::jiff::Timestamp::now().as_millisecond(),
        },
    )
    .await
    .unwrap();
    let mut o = order_in(&mut tx, &order_id).await.unwrap();
    let version = o.version;
    o.state = OrderState::Dead;
    o.tracking = Some(format!("T{mark}"));
    update_order(&mut tx, &o, version).await.unwrap();
    tx.commit().await.unwrap();
}

/// Object scope: with rows in TST and TS2, every list (each GET of the
/// staff API and the console) shows staff of TST nothing of TS2's, and
/// TS2's staff see their own.
async fn every_list_shows_only_the_persons_offices(w: &World, id: &str, clerk2: &Staff) {
    use pasaporte::http::console::CONSOLE_ROUTES;
    let app = &w.app;
    register(w, 33);
    let id2 = booked_and_checked_in_at(w, "TS2", clerk2, 33).await;
    dead_order(app, id, "TST", "AA1000001").await;
    dead_order(app, &id2, "TS2", "AA1000002").await;
    let tst = [
        staff(app, "scope.sup.tst", Role::Supervisor, &["TST"]).await,
        staff(app, "scope.clerk.tst", Role::Clerk, &["TST"]).await,
        staff(app, "scope.aud.tst", Role::Auditor, &["TST"]).await,
    ];
    // Nothing of TS2's: its application, its order's passport number,
    // booklet and tracking.
    let theirs = [id2.as_str(), "AA1000002"];
    for (method, template, _) in STAFF_ROUTES.iter().chain(CONSOLE_ROUTES) {
        if *method != Method::GET {
            continue;
        }
        let path = template
            .replace("{office}", "TST")
            .replace("{code}", "TST")
            .replace("{id}", id);
        for who in &tst {
            let (status, body) = app.staff_page(who, &path).await;
            for t in theirs {
                assert!(
                    !body.contains(t),
                    "GET {path} ({status}) shows TS2's {t} to TST's staff"
                );
            }
        }
    }
    // The lists are not empty for want of rows: each office sees its own.
    let sup2 = staff(app, "scope.sup.ts2", Role::Supervisor, &["TS2"]).await;
    for (who, mine, not) in [
        (&tst[0], "AA1000001", "AA1000002"),
        (&sup2, "AA1000002", "AA1000001"),
    ] {
        for path in ["/api/v1/staff/orders", "/console/production"] {
            let (status, body) = app.staff_page(who, path).await;
            assert_eq!(status, 200, "{path}");
            assert!(body.contains(mine), "{path} lacks {mine}");
            assert!(!body.contains(not), "{path} shows {not}");
        }
        let (status, _) = app
            .staff_call(
                who,
                Method::POST,
                &format!(
                    "/api/v1/staff/orders/{}-o1/resend",
                    if not == "AA1000002" { id2.as_str() } else { id }
                ),
                None,
            )
            .await;
        assert_eq!(status, 404, "another office's order is not found");
    }
    let all = staff(app, "scope.aud.all", Role::Auditor, &["*"]).await;
    let (_, body) = app.staff_page(&all, "/api/v1/staff/orders").await;
    assert!(
        body.contains("AA1000001") && body.contains("AA1000002"),
        "{body}"
    );
}
