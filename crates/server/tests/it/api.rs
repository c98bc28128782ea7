//! The booking API: capacity under concurrency, one booking per person,
//! idempotency, bad input, manage operations.

use crate::both_databases;
use crate::support::*;
use pasaporte_store::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

both_databases!(
    rate_limits_answer_429_while_ordinary_citizens_are_served,
    failed_lookups_count_against_the_client_limit,
    a_tarjeta_and_the_cedula_of_one_nuip_are_one_person,
    two_thousand_attempts_for_fifty_seats,
    one_active_booking_per_person,
    same_person_racing_gets_one_booking,
    idempotency_key_returns_the_first_booking,
    family_books_all_seats_or_none,
    bad_input_is_refused_and_stores_nothing,
    view_reschedule_cancel_and_calendar,
    availability_and_discovery,
);

async fn two_thousand_attempts_for_fifty_seats(db: TestDb) {
    let app = Arc::new(spawn_app(db).await);
    let start = app.free_slots("TST").await.remove(0);
    // At most 512 in flight: more than the listener's backlog (1,024) made a
    // loaded machine reset connections before the service saw them.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
    let mut set = tokio::task::JoinSet::new();
    for n in 0..2000u64 {
        let app = app.clone();
        let start = start.clone();
        let in_flight = in_flight.clone();
        set.spawn(async move {
            let _permit = in_flight.acquire_owned().await.unwrap();
            app.book(&booking_body("TST", &start, vec![person(n)]))
                .await
        });
    }
    let (mut created, mut full, mut other) = (0, 0, Vec::new());
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        match (status, body["error"]["code"].as_str()) {
            (201, _) => created += 1,
            (409, Some("slot_full")) => full += 1,
            _ => other.push((status, body)),
        }
    }
    assert_eq!(created, 50, "exactly the capacity is booked");
    assert_eq!(full, 1950, "everyone else is told the slot is full");
    assert!(other.is_empty(), "no other answers (no 5xx): {other:?}");
    assert_eq!(remaining(&app, "TST", &start).await, 0);
    assert_eq!(app.store.active_bookings().await.unwrap(), 50);
    assert!(app.store.check_slots().await.unwrap().is_empty());
}

async fn one_active_booking_per_person(db: TestDb) {
    let app = spawn_app(db).await;
    let a = app.free_slots("TST").await.remove(0);
    let b = app.free_slots("TS2").await.remove(3);
    let (s, first) = app.book(&booking_body("TST", &a, vec![person(7)])).await;
    assert_eq!(s, 201, "{first}");
    // The same person at another office, and at the same office.
    let (s, e) = app.book(&booking_body("TS2", &b, vec![person(7)])).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("already_booked"))
    );
    // The same cédula typed with dots is the same person.
    let mut dotted = person(7);
    dotted["document_number"] = json!("10.000.007");
    let (s, _) = app.book(&booking_body("TS2", &b, vec![dotted])).await;
    assert_eq!(s, 409);
    // As a companion in someone else's booking? Only minors go along; a minor
    // already booked cannot be booked twice either.
    let (s, _) = app
        .book(&booking_body("TST", &a, vec![person(8), minor(1)]))
        .await;
    assert_eq!(s, 201);
    let (s, e) = app
        .book(&booking_body("TS2", &b, vec![person(9), minor(1)]))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("already_booked"))
    );
    assert_eq!(app.store.active_bookings().await.unwrap(), 2);
    // After cancelling, the person may book again.
    let code = first["code"].as_str().unwrap();
    let token = first["manage_token"].as_str().unwrap();
    let (s, _) = app
        .authed(
            Method::POST,
            &format!("/api/v1/bookings/{code}/cancel"),
            token,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.book(&booking_body("TS2", &b, vec![person(7)])).await;
    assert_eq!(s, 201);
}

async fn same_person_racing_gets_one_booking(db: TestDb) {
    let app = Arc::new(spawn_app(db).await);
    let mut starts = app.free_slots("TST").await;
    starts.extend(
        app.free_slots("TS2")
            .await
            .into_iter()
            .map(|s| format!("TS2 {s}")),
    );
    let mut set = tokio::task::JoinSet::new();
    for start in starts.into_iter().take(40) {
        let app = app.clone();
        set.spawn(async move {
            let (office, start) = start
                .split_once(' ')
                .map_or(("TST", start.as_str()), |(o, s)| (o, s));
            app.book(&booking_body(office, start, vec![person(42)]))
                .await
                .0
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = set.join_next().await {
        statuses.push(r.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        statuses.len() - 1
    );
    assert_eq!(app.store.active_bookings().await.unwrap(), 1);
}

async fn idempotency_key_returns_the_first_booking(db: TestDb) {
    let app = Arc::new(spawn_app(db).await);
    let start = app.free_slots("TST").await.remove(0);
    let body = booking_body("TST", &start, vec![person(1)]);
    // Ten concurrent retries of one request: one booking, every answer the same.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, body) = (app.clone(), body.clone());
        set.spawn(async move {
            let r = app
                .client
                .post(app.url("/api/v1/bookings"))
                .header("Idempotency-Key", "retry-1")
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    let mut codes = Vec::new();
    while let Some(r) = set.join_next().await {
        let (status, v) = r.unwrap();
        assert!(status == 201 || status == 200, "{status} {v}");
        codes.push((
            v["code"].as_str().unwrap().to_string(),
            v["manage_token"].as_str().unwrap().to_string(),
        ));
    }
    codes.dedup();
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(app.store.active_bookings().await.unwrap(), 1);
    // The same key with a different request is refused.
    let other = booking_body("TST", &start, vec![person(2)]);
    let r = app
        .client
        .post(app.url("/api/v1/bookings"))
        .header("Idempotency-Key", "retry-1")
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.store.active_bookings().await.unwrap(), 1);
}

async fn family_books_all_seats_or_none(db: TestDb) {
    let app = spawn_app(db).await;
    let start = app.free_slots("TST").await.remove(0);
    // Fill the slot to 46 of 50.
    for n in 0..46 {
        assert_eq!(
            app.book(&booking_body("TST", &start, vec![person(n)]))
                .await
                .0,
            201
        );
    }
    let family = vec![person(100), minor(1), minor(2), minor(3), minor(4)];
    let (s, e) = app.book(&booking_body("TST", &start, family.clone())).await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("slot_full")));
    assert_eq!(
        remaining(&app, "TST", &start).await,
        4,
        "no seat of the family was taken"
    );
    // Nobody of the family holds a booking: they can book elsewhere.
    let later = app.free_slots("TST").await.remove(1);
    let (s, v) = app.book(&booking_body("TST", &later, family)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["booking"]["seats"], 5);
    assert_eq!(remaining(&app, "TST", &later).await, 45);
    assert!(app.store.check_slots().await.unwrap().is_empty());
}

async fn bad_input_is_refused_and_stores_nothing(db: TestDb) {
    let app = spawn_app(db).await;
    let start = app.free_slots("TST").await.remove(0);
    let good = booking_body("TST", &start, vec![person(1)]);
    let raw = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/bookings"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let check = |status: u16, v: &Value, want_status: u16, want_code: &str| {
        assert_eq!(status, want_status, "{v}");
        assert_eq!(v["error"]["code"], want_code, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().len() > 10,
            "a message a person can act on: {v}"
        );
    };
    // Malformed JSON.
    let r = raw("{\"office\": ").await.unwrap();
    check(
        r.status().as_u16(),
        &r.json().await.unwrap(),
        400,
        "malformed_json",
    );
    // Wrong types: the field is named.
    let mut wrong = good.clone();
    wrong["applicants"] = json!("Ana");
    let (s, v) = app.book(&wrong).await;
    check(s, &v, 422, "invalid_type");
    assert_eq!(v["error"]["fields"][0]["field"], "applicants");
    let mut wrong = good.clone();
    wrong["applicants"][0]["birth_date"] = json!(19850402);
    let (s, v) = app.book(&wrong).await;
    check(s, &v, 422, "invalid_type");
    assert_eq!(v["error"]["fields"][0]["field"], "applicants[0].birth_date");
    // A 10 MB body.
    let big = format!("{{\"office\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let r = app
        .client
        .post(app.url("/api/v1/bookings"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;
    match r {
        Ok(r) => check(
            r.status().as_u16(),
            &r.json().await.unwrap(),
            413,
            "body_too_large",
        ),
        // The server may close the connection before the client finished sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // Unknown office.
    let mut v = good.clone();
    v["office"] = json!("XXX");
    let (s, v) = app.book(&v).await;
    check(s, &v, 422, "unknown_office");
    // Fields the calendar refuses, each with its own code on the `start` field.
    let field_code = |v: &Value, field: &str| -> Vec<String> {
        v["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["field"] == field)
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    let with_start = |s: &str| {
        let mut v = good.clone();
        v["start"] = json!(s);
        v
    };
    let (s, v) = app.book(&with_start("2020-01-06T09:00:00-05:00")).await;
    check(s, &v, 422, "validation_failed");
    assert_eq!(field_code(&v, "start"), ["slot_in_past"]);
    let next_sunday = next_weekday_date(pasaporte_core::jiff::civil::Weekday::Sunday);
    let mut v = booking_body(
        "BOG-CEN",
        &format!("{next_sunday}T09:00:00-05:00"),
        vec![person(1)],
    );
    let (s, body) = app.book(&v).await;
    check(s, &body, 422, "validation_failed");
    assert_eq!(field_code(&body, "start"), ["office_closed"]);
    let next_monday = next_weekday_date(pasaporte_core::jiff::civil::Weekday::Monday);
    v["start"] = json!(format!("{next_monday}T18:00:00-05:00"));
    let (_, body) = app.book(&v).await;
    assert!(
        field_code(&body, "start") == ["not_a_slot"] || field_code(&body, "start") == ["holiday"],
        "{body}"
    );
    let holiday = next_colombian_holiday_on_weekday();
    v["start"] = json!(format!("{holiday}T09:00:00-05:00"));
    let (_, body) = app.book(&v).await;
    assert_eq!(field_code(&body, "start"), ["holiday"], "{body}");
    // Invalid email, birth date in the future, six applicants: all named at once.
    let mut v = good.clone();
    v["email"] = json!("ana-at-example");
    v["applicants"][0]["birth_date"] = json!("2999-01-01");
    let (s, body) = app.book(&v).await;
    check(s, &body, 422, "validation_failed");
    assert_eq!(field_code(&body, "email"), ["invalid_email"]);
    assert_eq!(
        field_code(&body, "applicants[0].birth_date"),
        ["birth_date_in_future"]
    );
    let six = booking_body(
        "TST",
        &start,
        vec![person(1), minor(1), minor(2), minor(3), minor(4), minor(5)],
    );
    let (s, body) = app.book(&six).await;
    check(s, &body, 422, "validation_failed");
    assert_eq!(field_code(&body, "applicants"), ["too_many_applicants"]);
    // English on request.
    let r = app
        .client
        .post(app.url("/api/v1/bookings"))
        .header("accept-language", "en")
        .json(&six)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Check the fields"),
        "{v}"
    );
    // Nothing was stored by any of them.
    assert_eq!(app.store.active_bookings().await.unwrap(), 0);
    assert_eq!(remaining(&app, "TST", &start).await, 50);
    assert_eq!(app.store.outbox_stats().await.unwrap().waiting, 0);
}

fn today() -> pasaporte_core::jiff::civil::Date {
    pasaporte_core::jiff::Timestamp::now()
        .in_tz("America/Bogota")
        .unwrap()
        .date()
}

fn next_weekday_date(w: pasaporte_core::jiff::civil::Weekday) -> pasaporte_core::jiff::civil::Date {
    let mut d = today().tomorrow().unwrap();
    while d.weekday() != w {
        d = d.tomorrow().unwrap();
    }
    d
}

fn next_colombian_holiday_on_weekday() -> pasaporte_core::jiff::civil::Date {
    let t = today();
    (t.year()..t.year() + 2)
        .flat_map(pasaporte_core::holidays::colombia)
        .map(|h| h.date)
        .find(|d| *d > t && d.weekday().to_monday_one_offset() <= 5)
        .unwrap()
}

async fn view_reschedule_cancel_and_calendar(db: TestDb) {
    let app = spawn_app(db).await;
    let slots = app.free_slots("TST").await;
    let (s, v) = app
        .book(&booking_body("TST", &slots[0], vec![person(1), minor(1)]))
        .await;
    assert_eq!(s, 201);
    let code = v["code"].as_str().unwrap().to_string();
    let token = v["manage_token"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    assert!(v["manage_url"].as_str().unwrap().contains(&code));
    // View: names back, the document number masked.
    let (s, b) = app
        .authed(
            Method::GET,
            &format!("/api/v1/bookings/{code}"),
            &token,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["applicants"][0]["surnames"], "Muñoz García");
    assert_eq!(b["applicants"][0]["document_number"], "••••0001");
    assert_eq!(b["start"], slots[0]);
    // Missing token 401; wrong token and unknown code: the same 404.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/bookings/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (s1, e1) = app
        .authed(
            Method::GET,
            &format!("/api/v1/bookings/{code}"),
            "wrong",
            None,
        )
        .await;
    let (s2, e2) = app
        .authed(Method::GET, "/api/v1/bookings/ACDEFGHJ", &token, None)
        .await;
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(e1, e2);
    // Another booking's token does not reach this one.
    let (_, other) = app
        .book(&booking_body("TST", &slots[0], vec![person(2)]))
        .await;
    let other_token = other["manage_token"].as_str().unwrap();
    let (s, _) = app
        .authed(
            Method::GET,
            &format!("/api/v1/bookings/{code}"),
            other_token,
            None,
        )
        .await;
    assert_eq!(s, 404);
    // Calendar file in the office's zone.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/bookings/{code}/calendar.ics")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let ics = r.text().await.unwrap();
    assert!(ics.contains("DTSTART;TZID=America/Bogota:"), "{ics}");
    assert!(ics.contains("BEGIN:VEVENT") && ics.contains(&code));
    // Reschedule: seats move atomically.
    let path = format!("/api/v1/bookings/{code}/reschedule");
    let (s, b) = app
        .authed(
            Method::POST,
            &path,
            &token,
            Some(&json!({ "start": slots[1] })),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["start"], slots[1]);
    assert_eq!(remaining(&app, "TST", &slots[0]).await, 49);
    assert_eq!(remaining(&app, "TST", &slots[1]).await, 48);
    // Into a full slot: refused, the old seats kept.
    for n in 0..50 {
        assert_eq!(
            app.book(&booking_body("TST", &slots[2], vec![person(1000 + n)]))
                .await
                .0,
            201
        );
    }
    let (s, e) = app
        .authed(
            Method::POST,
            &path,
            &token,
            Some(&json!({ "start": slots[2] })),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("slot_full")));
    assert_eq!(remaining(&app, "TST", &slots[1]).await, 48);
    let (s, e) = app
        .authed(
            Method::POST,
            &path,
            &token,
            Some(&json!({ "start": "2020-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("validation_failed"))
    );
    // Cancel frees the seats; a second cancel says it is cancelled.
    let cancel = format!("/api/v1/bookings/{code}/cancel");
    let (s, b) = app.authed(Method::POST, &cancel, &token, None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(remaining(&app, "TST", &slots[1]).await, 50);
    let (s, e) = app.authed(Method::POST, &cancel, &token, None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("booking_cancelled"))
    );
    assert!(app.store.check_slots().await.unwrap().is_empty());
    // Every change queued a mail in the same transaction.
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!(stats.waiting, 2 + 50 + 2);
}

async fn availability_and_discovery(db: TestDb) {
    let app = spawn_app(db).await;
    let (s, offices) = app.get("/api/v1/offices").await;
    assert_eq!(s, 200);
    assert_eq!(offices.as_array().unwrap().len(), 17);
    let nva = offices
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == "NVA")
        .unwrap();
    assert_eq!(nva["hours"]["monday"], "07:05-11:40;14:05-16:40");
    // Slots carry the office's offset; closed days say why.
    let (s, v) = app.get("/api/v1/offices/MAD/slots?days=31").await;
    assert_eq!(s, 200);
    assert_eq!(v["time_zone"], "Europe/Madrid");
    let first = v["slots"][0]["start"].as_str().unwrap();
    assert!(
        first.ends_with("+01:00") || first.ends_with("+02:00"),
        "{first}"
    );
    let reasons: Vec<&str> = v["unavailable_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"no_hours"),
        "weekends are listed with their reason: {reasons:?}"
    );
    // Bad queries.
    let (s, e) = app.get("/api/v1/offices/MAD/slots?days=500").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("validation_failed"))
    );
    let (s, _) = app.get("/api/v1/offices/MAD/slots?from=mañana").await;
    assert_eq!(s, 422);
    let (s, _) = app.get("/api/v1/offices/MAD/slots?days=x").await;
    assert_eq!(s, 422);
    let (s, e) = app.get("/api/v1/offices/NOPE/slots").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_office"))
    );
    // Earliest across offices, filtered by city and by country.
    let (s, v) = app
        .get("/api/v1/availability/earliest?city=bogot%C3%A1&limit=10")
        .await;
    assert_eq!(s, 200);
    let offices_found: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["office"].as_str().unwrap())
        .collect();
    assert!(
        offices_found.contains(&"TST") && offices_found.contains(&"BOG-CEN"),
        "{offices_found:?}"
    );
    assert!(!offices_found.contains(&"MDE"));
    let (_, v) = app.get("/api/v1/availability/earliest?country=USA").await;
    let found: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["office"].as_str().unwrap())
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    // Booking changes the count at once.
    let start = app.free_slots("TST").await.remove(0);
    app.book(&booking_body("TST", &start, vec![person(1), minor(1)]))
        .await;
    assert_eq!(remaining(&app, "TST", &start).await, 48);
    // Also on a future day whose answer was rendered (and kept) before.
    let later = app
        .free_slots("TST")
        .await
        .into_iter()
        .rev()
        .find(|s| !s.starts_with(&start[..10]))
        .unwrap();
    let day = later[..10].to_string();
    let read = || async {
        let (_, v) = app
            .get(&format!("/api/v1/offices/TST/slots?from={day}&days=1"))
            .await;
        v["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["start"] == later)
            .unwrap()["remaining"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(read().await, 50);
    assert_eq!(read().await, 50, "served again from the rendered day");
    app.book(&booking_body("TST", &later, vec![person(2)]))
        .await;
    assert_eq!(
        read().await,
        49,
        "the rendered day is not reused after a booking"
    );
    // The OpenAPI document and health checks.
    let (s, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/offices",
        "/api/v1/offices/{code}/slots",
        "/api/v1/bookings",
        "/api/v1/bookings/{code}/cancel",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} documented");
    }
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// A client that connects from `ip` (any 127.0.0.0/8 address is loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn book_from(app: &TestApp, ip: &str, body: &Value) -> (u16, Option<u64>, Value) {
    let r = client_from(ip)
        .post(app.url("/api/v1/bookings"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

async fn rate_limits_answer_429_while_ordinary_citizens_are_served(db: TestDb) {
    let app = crate::support::spawn_app_limited(
        db,
        crate::support::no_smtp(),
        pasaporte::limits::LimitArgs {
            rate_client_per_min: 6,
            rate_client_burst: 6,
            rate_identity_per_hour: 2,
            rate_identity_burst: 2,
            ..pasaporte::limits::LimitArgs::off()
        },
    )
    .await;
    let slots = app.free_slots("TST").await;
    // A script books person after person from one address: six go through,
    // then 429 with Retry-After, and nothing more is stored.
    let mut statuses = Vec::new();
    for n in 0..20 {
        let (s, retry, body) = book_from(
            &app,
            "127.0.0.2",
            &booking_body("TST", &slots[n % slots.len()], vec![person(500 + n as u64)]),
        )
        .await;
        if s == 429 {
            assert!(retry.is_some_and(|r| r >= 1), "Retry-After on a 429");
            assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
        }
        statuses.push(s);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        6,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        14,
        "{statuses:?}"
    );
    assert_eq!(app.store.active_bookings().await.unwrap(), 6);
    // Meanwhile ordinary citizens, each from their own address, are served.
    for (i, ip) in ["127.0.0.3", "127.0.0.4", "127.0.0.5"].iter().enumerate() {
        let (s, _, body) = book_from(
            &app,
            ip,
            &booking_body("TST", &slots[i], vec![person(900 + i as u64)]),
        )
        .await;
        assert_eq!(s, 201, "{body}");
    }
    // One person booked, cancelled and booked again from ever new addresses:
    // the identity's limit holds wherever the requests come from.
    let mut last = 0;
    for round in 0..3u8 {
        let ip = format!("127.0.1.{}", round + 1);
        let (s, retry, body) = book_from(
            &app,
            &ip,
            &booking_body("TS2", &slots[round as usize], vec![person(77)]),
        )
        .await;
        last = s;
        if s == 201 {
            let code = body["code"].as_str().unwrap();
            let token = body["manage_token"].as_str().unwrap();
            let (s, _) = app
                .authed(
                    Method::POST,
                    &format!("/api/v1/bookings/{code}/cancel"),
                    token,
                    None,
                )
                .await;
            assert_eq!(s, 200);
        } else {
            assert_eq!(s, 429, "{body}");
            assert!(
                retry.is_some_and(|r| r > 60),
                "an hour-scale wait: {retry:?}"
            );
            assert_eq!(round, 2, "the first two go through");
        }
    }
    assert_eq!(last, 429);
}

/// `GET /api/v1/bookings/{code}` from `ip` with `token`.
async fn look_up_from(app: &TestApp, ip: &str, code: &str, token: &str) -> (u16, Option<u64>) {
    let r = client_from(ip)
        .get(app.url(&format!("/api/v1/bookings/{code}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (r.status().as_u16(), retry)
}

async fn failed_lookups_count_against_the_client_limit(db: TestDb) {
    let app = crate::support::spawn_app_limited(
        db,
        crate::support::no_smtp(),
        pasaporte::limits::LimitArgs {
            rate_client_per_min: 6,
            rate_client_burst: 6,
            rate_identity_per_hour: 0,
            rate_identity_burst: 0,
            ..pasaporte::limits::LimitArgs::off()
        },
    )
    .await;
    let start = app.free_slots("TST").await.remove(0);
    let (s, _, booked) = book_from(
        &app,
        "127.0.0.3",
        &booking_body("TST", &start, vec![person(900)]),
    )
    .await;
    assert_eq!(s, 201, "{booked}");
    let code = booked["code"].as_str().unwrap();
    let token = booked["manage_token"].as_str().unwrap();
    // Someone guessing codes from one address: an unknown code and a known
    // one with a wrong token answer alike, and after the burst both are 429.
    let mut statuses = Vec::new();
    for n in 0..10 {
        let (s, retry) = if n % 2 == 0 {
            look_up_from(&app, "127.0.0.7", "ZZZZZZZZ", token).await
        } else {
            look_up_from(&app, "127.0.0.7", code, "not-the-token").await
        };
        if s == 429 {
            assert!(retry.is_some_and(|r| r >= 1), "Retry-After on a 429");
        }
        statuses.push(s);
    }
    assert_eq!(
        statuses,
        [404, 404, 404, 404, 404, 404, 429, 429, 429, 429],
        "six failed lookups, then refused"
    );
    // The holder of the token is still answered, from anywhere.
    assert_eq!(look_up_from(&app, "127.0.0.3", code, token).await.0, 200);
    assert_eq!(look_up_from(&app, "127.0.0.7", code, token).await.0, 200);
    // Successful lookups cost nothing: the holder looks as often as they like.
    for _ in 0..10 {
        assert_eq!(look_up_from(&app, "127.0.0.8", code, token).await.0, 200);
    }
}

fn with_document(kind: &str, number: &str, birth: &str) -> Value {
    json!({
        "document_type": kind,
        "document_number": number,
        "surnames": "Rojas Díaz",
        "given_names": "Camila",
        "birth_date": birth,
    })
}

/// A tarjeta printed with a leading zero and the cédula issued on the same
/// NUIP are one person: one booking between them, also for rows stored
/// under the key the tarjeta had before (re-keyed at start).
async fn a_tarjeta_and_the_cedula_of_one_nuip_are_one_person(db: TestDb) {
    let app = spawn_app(db).await;
    let start = app.free_slots("TST").await.remove(0);
    let tarjeta = with_document("tarjeta_identidad", "01033445566", "2009-05-06");
    let cedula = with_document("cedula_ciudadania", "1033445566", "2007-05-06");
    let (s, v) = app
        .book(&booking_body("TST", &start, vec![person(700), tarjeta]))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.book(&booking_body("TST", &start, vec![cedula])).await;
    assert_eq!(s, 409, "the cédula's NUIP holds a booking already: {v}");
    assert_eq!(v["error"]["code"], "already_booked", "{v}");

    // A tarjeta booked before the change: its rows carry the old key.
    let keys = keys().keyring().unwrap();
    let old = keys.person_key("COL:02044556677");
    let new = keys.person_key("COL:2044556677");
    let tarjeta = with_document("tarjeta_identidad", "02044556677", "2009-05-06");
    let (s, booked) = app
        .book(&booking_body("TST", &start, vec![person(701), tarjeta]))
        .await;
    assert_eq!(s, 201, "{booked}");
    app.store.rekey_person(&new, &old).await.unwrap();
    let cedula = with_document("cedula_ciudadania", "2044556677", "2007-05-06");
    let moved = pasaporte::person_keys::rekey_all(&app.store, &keys)
        .await
        .unwrap();
    assert_eq!(moved.moved, 1, "{moved:?}");
    assert_eq!(
        pasaporte::person_keys::rekey_all(&app.store, &keys)
            .await
            .unwrap(),
        Default::default(),
        "a second pass changes nothing"
    );
    let (s, v) = app
        .book(&booking_body("TST", &start, vec![cedula.clone()]))
        .await;
    assert_eq!(s, 409, "{v}");
    // Cancelling the tarjeta's booking frees the NUIP under its new key.
    let code = booked["code"].as_str().unwrap();
    let token = booked["manage_token"].as_str().unwrap();
    let (s, v) = app
        .authed(
            Method::POST,
            &format!("/api/v1/bookings/{code}/cancel"),
            token,
            Some(&json!({})),
        )
        .await;
    assert!(s == 200 || s == 204, "{s} {v}");
    let (s, v) = app.book(&booking_body("TST", &start, vec![cedula])).await;
    assert_eq!(s, 201, "{v}");
}
