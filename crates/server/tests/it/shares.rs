//! Capacity split per slot over real HTTP: an office's policy set by an
//! administrator, citizens held to the online share, priority access taking
//! priority seats when the online ones are full, urgent seats granted by a
//! supervisor only, and the pools published in the capacity data.

use crate::both_databases;
use crate::support::*;
use pasaporte_core::application::Role;
use pasaporte_core::jiff::civil::Date;
use pasaporte_store::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};

both_databases!(
    an_office_split_holds_citizens_to_the_online_share,
    only_administrators_set_a_policy,
    the_booking_page_offers_priority_access,
);

/// TST's slots hold 50 people; at 70/5/15/10 that is 35 online, 3 urgent,
/// 7 walk-in and 5 priority seats (largest remainder: urgent's half seat
/// wins the tie with walk-in's).
const POLICY: (u64, u64, u64, u64) = (35, 3, 7, 5);

fn policy_body() -> Value {
    json!({"release_mode": "live", "online": 70, "urgent": 5, "walk_in": 15, "priority": 10})
}

/// A family of one adult and four minors, numbered from `n`.
fn family(n: u64) -> Vec<Value> {
    let mut people = vec![person(n)];
    people.extend((0..4).map(|i| minor(n * 10 + i)));
    people
}

fn older(n: u64) -> Value {
    let mut p = person(n);
    p["birth_date"] = json!("1950-03-01");
    p
}

async fn slot_capacity(app: &TestApp, start: &str) -> (u64, u64) {
    let (_, v) = app.get("/api/v1/offices/TST/slots?days=14").await;
    let s = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["start"] == start)
        .unwrap()
        .clone();
    (
        s["capacity"].as_u64().unwrap(),
        s["remaining"].as_u64().unwrap(),
    )
}

async fn an_office_split_holds_citizens_to_the_online_share(db: TestDb) {
    let app = spawn_app(db).await;
    let admin = staff(&app, "admin", Role::Administrator, &["*"]).await;
    let (s, v) = app
        .staff_call(
            &admin,
            Method::PUT,
            "/api/v1/staff/offices/TST/policy",
            Some(&policy_body()),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // The public office list shows the mode and the shares.
    let (_, offices) = app.get("/api/v1/offices").await;
    let tst = offices
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == "TST")
        .unwrap();
    assert_eq!(tst["release_mode"], "live");
    assert_eq!(
        tst["shares"],
        json!({"online": 70, "urgent": 5, "walk_in": 15, "priority": 10})
    );
    // Citizens are offered the online share of each slot only.
    let start = app.free_slots("TST").await.remove(0);
    assert_eq!(slot_capacity(&app, &start).await, (POLICY.0, POLICY.0));
    for f in 0..7 {
        let (s, b) = app
            .book(&booking_body("TST", &start, family(100 + f)))
            .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["pool"], "online", "{b}");
    }
    assert_eq!(slot_capacity(&app, &start).await, (POLICY.0, 0));
    // The 71st percent of the slot is not a citizen's.
    let (s, b) = app
        .book(&booking_body("TST", &start, vec![person(200)]))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "slot_full", "{b}");
    // Priority access takes a priority seat when the online ones are full.
    let mut body = booking_body("TST", &start, vec![older(201)]);
    body["priority"] = json!("older");
    let (s, b) = app.book(&body).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["pool"], "priority", "{b}");
    assert_eq!(b["booking"]["pool"], "priority", "{b}");
    assert!(!b["pool_note"].as_str().unwrap().is_empty());
    // "older" is checked by birth date; disability is declared.
    let mut body = booking_body("TST", &start, vec![person(202)]);
    body["priority"] = json!("older");
    let (s, b) = app.book(&body).await;
    assert_eq!(s, 422, "{b}");
    body["priority"] = json!("disability");
    let (s, b) = app.book(&body).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["pool"], "priority", "{b}");
    // Urgent seats: a supervisor of the office, with evidence; never a clerk.
    let supervisor = staff(&app, "sup.tst", Role::Supervisor, &["TST"]).await;
    let clerk = staff(&app, "clerk.tst", Role::Clerk, &["TST"]).await;
    let mut urgent = booking_body("TST", &start, vec![person(300)]);
    urgent["evidence"] = json!("Carta médica: tratamiento en el exterior el lunes.");
    let path = "/api/v1/staff/offices/TST/urgent-bookings";
    let (s, b) = app
        .staff_call(&clerk, Method::POST, path, Some(&urgent))
        .await;
    assert_eq!(s, 403, "{b}");
    let mut no_evidence = urgent.clone();
    no_evidence["evidence"] = json!("  ");
    let (s, b) = app
        .staff_call(&supervisor, Method::POST, path, Some(&no_evidence))
        .await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = app
        .staff_call(&supervisor, Method::POST, path, Some(&urgent))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["pool"], "urgent", "{b}");
    // The evidence is sealed at rest and the grant is in the audit trail.
    let code = b["code"].as_str().unwrap();
    let row = app.store.booking_by_code(code).await.unwrap();
    let sealed = row
        .evidence_enc
        .expect("an urgent booking keeps its evidence");
    assert!(!sealed.contains("Carta"), "evidence stored in clear");
    assert_eq!(
        keys()
            .keyring()
            .unwrap()
            .open(pasaporte::crypto::at::booking_evidence(&row.id), &sealed)
            .unwrap(),
        urgent["evidence"].as_str().unwrap()
    );
    let events = app.store.audit_events(0, 10_000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.action == "booking.urgent_granted" && e.event.office == "TST")
    );
    // Citizens still see the slot full: urgent and priority seats are not theirs.
    assert_eq!(slot_capacity(&app, &start).await, (POLICY.0, 0));
    assert!(app.store.check_slots().await.unwrap().is_empty());
    // The capacity data shows each pool, and the totals include them.
    let date: Date = start[..10].parse().unwrap();
    let (s, v) = app
        .get(&format!("/api/v1/capacity?office=TST&from={date}&days=1"))
        .await;
    assert_eq!(s, 200, "{v}");
    let office = &v["offices"][0];
    assert_eq!(office["release_mode"], "live");
    assert_eq!(office["shares"]["walk_in"], 15);
    let day = &office["days"][0];
    let pool = |name: &str| {
        day["pools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pool"] == name)
            .unwrap_or_else(|| panic!("no pool {name} in {day}"))
            .clone()
    };
    let slots = day["offered"].as_u64().unwrap() / 50;
    assert!(slots >= 1, "{day}");
    assert_eq!(pool("online")["offered"], POLICY.0 * slots, "{day}");
    assert_eq!(pool("urgent")["offered"], POLICY.1 * slots, "{day}");
    assert_eq!(pool("walk_in")["offered"], POLICY.2 * slots, "{day}");
    assert_eq!(pool("priority")["offered"], POLICY.3 * slots, "{day}");
    assert_eq!(pool("online")["booked"], 35, "{day}");
    assert_eq!(pool("priority")["booked"], 2, "{day}");
    assert_eq!(pool("urgent")["booked"], 1, "{day}");
    assert_eq!(pool("walk_in")["booked"], 0, "{day}");
    assert_eq!(day["booked"], 38, "{day}");
    let csv = app
        .client
        .get(app.url(&format!(
            "/api/v1/capacity/pools.csv?office=TST&from={date}&days=1"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "office,date,release_mode,pool,offered,booked,free"
    );
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines.contains(
            &format!(
                "TST,{date},live,urgent,{},1,{}",
                POLICY.1 * slots,
                POLICY.1 * slots - 1
            )
            .as_str()
        ),
        "{csv}"
    );
}

async fn only_administrators_set_a_policy(db: TestDb) {
    let app = spawn_app(db).await;
    let supervisor = staff(&app, "sup.tst", Role::Supervisor, &["TST"]).await;
    let admin = staff(&app, "admin", Role::Administrator, &["*"]).await;
    let path = "/api/v1/staff/offices/TST/policy";
    let (s, b) = app
        .staff_call(&supervisor, Method::PUT, path, Some(&policy_body()))
        .await;
    assert_eq!(s, 403, "{b}");
    // Nothing changed: citizens still get every seat.
    let start = app.free_slots("TST").await.remove(0);
    assert_eq!(slot_capacity(&app, &start).await, (50, 50));
    // Shares that do not add up are refused, naming the field.
    let mut bad = policy_body();
    bad["priority"] = json!(11);
    let (s, b) = app.staff_call(&admin, Method::PUT, path, Some(&bad)).await;
    assert_eq!(s, 422, "{b}");
    assert!(b.to_string().contains("shares_sum"), "{b}");
    let mut bad = policy_body();
    bad["release_mode"] = json!("lottery");
    let (s, b) = app.staff_call(&admin, Method::PUT, path, Some(&bad)).await;
    assert_eq!(s, 422, "{b}");
    assert!(b.to_string().contains("release_mode"), "{b}");
    let (s, b) = app
        .staff_call(
            &admin,
            Method::PUT,
            "/api/v1/staff/offices/NOPE/policy",
            Some(&policy_body()),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    let mut ballot = policy_body();
    ballot["release_mode"] = json!("ballot");
    let (s, b) = app
        .staff_call(&admin, Method::PUT, path, Some(&ballot))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["release_mode"], "ballot");
    assert_eq!(slot_capacity(&app, &start).await, (POLICY.0, POLICY.0));
    assert_eq!(
        app.store
            .office_policy("TST")
            .await
            .unwrap()
            .map(|p| p.mode.as_str()),
        Some("ballot")
    );
    let events = app.store.audit_events(0, 10_000).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.action == "office.policy_set")
            .count(),
        1
    );
}

/// `application/x-www-form-urlencoded`, every byte but letters and digits escaped.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |v: &str| {
        v.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn the_booking_page_offers_priority_access(db: TestDb) {
    let app = spawn_app(db).await;
    let admin = staff(&app, "admin", Role::Administrator, &["*"]).await;
    let (s, v) = app
        .staff_call(
            &admin,
            Method::PUT,
            "/api/v1/staff/offices/TST/policy",
            Some(&policy_body()),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let start = app.free_slots("TST").await.remove(0);
    let page = app
        .client
        .get(app.url(&format!(
            "/oficinas/TST/reservar?inicio={}",
            form_body(&[("x", &start)]).trim_start_matches("x=")
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"prioridad\" value=\"older\""),
        "{page}"
    );
    for f in 0..7 {
        let (s, b) = app
            .book(&booking_body("TST", &start, family(400 + f)))
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let post = |prioridad: &'static str, n: u64| {
        let start = start.clone();
        let client = app.client.clone();
        let url = app.url("/oficinas/TST/reservar");
        async move {
            let doc = format!("{}", 20_000_000 + n);
            let body = form_body(&[
                ("inicio", &start),
                ("a0_document_type", "cedula_ciudadania"),
                ("a0_document_number", &doc),
                ("a0_surnames", "Pérez Gómez"),
                ("a0_given_names", "Luis"),
                ("a0_birth_date", "1950-03-01"),
                ("email", "luis@example.co"),
                ("prioridad", prioridad),
            ]);
            let r = client
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.url().path().to_string())
        }
    };
    // Without priority the full slot is refused; with it, a priority seat.
    let (s, _) = post("", 1).await;
    assert_eq!(s, 409);
    let (s, path) = post("older", 1).await;
    assert_eq!(s, 200);
    assert!(path.starts_with("/citas/"), "{path}");
    let date: Date = start[..10].parse().unwrap();
    let (_, v) = app
        .get(&format!("/api/v1/capacity?office=TST&from={date}&days=1"))
        .await;
    let priority = v["offices"][0]["days"][0]["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool"] == "priority")
        .unwrap()
        .clone();
    assert_eq!(priority["booked"], 1, "{v}");
}
