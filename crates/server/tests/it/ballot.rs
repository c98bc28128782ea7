//! Ballot releases end to end over HTTP (issue 6): a supervisor opens a
//! release, citizens request and prove their email, the draw runs, anyone
//! replays it from the published files, freed seats go to the waitlist by
//! offer, unconfirmed seats too; one request or booking per person holds
//! under concurrency; a family is seated together or not at all.

use crate::both_databases;
use crate::support::*;
use pasaporte_core::application::Role;
use pasaporte_core::jiff::{SignedDuration, Timestamp};
use pasaporte_store::Store;
use pasaporte_store::testing::{self, TestDb};
use serde_json::{Value, json};
use std::time::Duration;

/// A small office in its own city: two slots of two seats a day.
const BALLOT_OFFICE_CSV: &str = "\
code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days
BAL,Oficina del sorteo,ministry,Sorteópolis,COL,America/Bogota,08:00-09:00,08:00-09:00,2,4,08:00-09:00,30,30,60
";

/// Long enough for a loaded 2-core machine to serve a few dozen requests.
const REQUEST_PERIOD: SignedDuration = SignedDuration::from_secs(6);
const POLL_DEADLINE: Duration = Duration::from_secs(20);

async fn spawn_ballot_app(db: TestDb) -> TestApp {
    let (store, url) = testing::fresh(db).await.unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    pasaporte::import_offices(&store, BALLOT_OFFICE_CSV)
        .await
        .unwrap();
    // The office allocates its online seats by draw.
    let policy = pasaporte_core::shares::OfficePolicy {
        mode: pasaporte_core::shares::ReleaseMode::Ballot,
        shares: pasaporte_core::shares::Shares::new(100, 0, 0, 0).unwrap(),
    };
    let event = pasaporte_core::audit::AuditEvent {
        at_ms: Timestamp::now().as_millisecond(),
        actor: "test".into(),
        role: "administrator".into(),
        action: "office.policy".into(),
        office: "BAL".into(),
        subject: "BAL".into(),
        from_state: None,
        to_state: None,
        detail: String::new(),
    };
    store
        .set_office_policy("BAL", &policy, &event, Timestamp::now().as_millisecond())
        .await
        .unwrap();
    let mut work = pasaporte::WorkArgs::none();
    work.release_min_hours = 0;
    work.worker_interval_ms = 100;
    spawn_on_work(
        store,
        url,
        no_smtp(),
        pasaporte::limits::LimitArgs::off(),
        work,
    )
    .await
}

/// The first two local days with open slots at `office`.
async fn two_open_days(app: &TestApp, office: &str) -> (String, String) {
    let (s, v) = app
        .get(&format!("/api/v1/offices/{office}/slots?days=14"))
        .await;
    assert_eq!(s, 200, "{v}");
    let today = Timestamp::now()
        .to_zoned_datetime(pasaporte_core::jiff::tz::TimeZone::get("America/Bogota").unwrap())
        .date()
        .to_string();
    let mut days: Vec<String> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap()[..10].to_string())
        .filter(|d| *d > today)
        .collect();
    days.dedup();
    (days[0].clone(), days[1].clone())
}

fn manage_token(id: &str) -> String {
    keys().keyring().unwrap().manage_token(id)
}

async fn token_of(store: &Store, code: &str) -> String {
    manage_token(&store.request_by_code(code).await.unwrap().booking_id)
}

fn request_body(applicants: Vec<Value>, preferences: Value) -> Value {
    json!({
        "applicants": applicants,
        "email": "ana@example.co",
        "phone": "+57 300 123 4567",
        "preferences": preferences,
    })
}

async fn open_release(app: &TestApp, sup: &Staff, d1: &str, d2: &str) -> Value {
    let close = Timestamp::now() + REQUEST_PERIOD;
    let (s, r) = app
        .staff_call(
            sup,
            reqwest::Method::POST,
            "/api/v1/staff/releases",
            Some(&json!({
                "city": "Sorteópolis", "first_day": d1, "last_day": d2,
                "requests_close_at": close.to_string(),
            })),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    r
}

async fn wait_for_close(r: &Value) {
    let close: Timestamp = r["requests_close_at"].as_str().unwrap().parse().unwrap();
    while Timestamp::now() <= close {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status_of(app: &TestApp, store: &Store, code: &str) -> Value {
    let (s, v) = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/requests/{code}"),
            &token_of(store, code).await,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn ballot_release_end_to_end(db: TestDb) {
    let app = spawn_ballot_app(db).await;
    let sup = staff(&app, "sup", Role::Supervisor, &["BAL"]).await;
    let clerk = staff(&app, "clerk", Role::Clerk, &["BAL"]).await;
    let (d1, d2) = two_open_days(&app, "BAL").await;
    let live_slot = app
        .free_slots("BAL")
        .await
        .into_iter()
        .find(|s| s.starts_with(&d1));

    // A clerk may not open a release.
    let (s, _) = app
        .staff_call(
            &clerk,
            reqwest::Method::POST,
            "/api/v1/staff/releases",
            Some(
                &json!({"city": "Sorteópolis", "first_day": d1, "last_day": d2,
                "requests_close_at": (Timestamp::now() + REQUEST_PERIOD).to_string()}),
            ),
        )
        .await;
    assert_eq!(s, 403);
    // A city whose offices book live has nothing to draw.
    let (s, v) = app
        .staff_call(
            &sup,
            reqwest::Method::POST,
            "/api/v1/staff/releases",
            Some(&json!({"city": "Medellín", "first_day": d1, "last_day": d2,
                "requests_close_at": (Timestamp::now() + REQUEST_PERIOD).to_string()})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("no_ballot_offices"), "{v}");
    let release = open_release(&app, &sup, &d1, &d2).await;
    let id = release["id"].as_str().unwrap().to_string();
    let commitment = release["commitment"].as_str().unwrap().to_string();
    assert_eq!(commitment.len(), 64);
    assert_eq!(release["state"], "open");
    assert_eq!(
        release["seed"],
        Value::Null,
        "the seed stays secret until the draw"
    );

    // Those days are no longer a race: live booking is refused with why.
    if let Some(start) = live_slot {
        let (s, v) = app
            .book(&booking_body("BAL", &start, vec![person(900)]))
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v.to_string().contains("ballot_release"), "{v}");
    }

    // Twelve requests: one family of three, the others alone; two never
    // prove their email.
    let path = format!("/api/v1/releases/{id}/requests");
    let mut codes = Vec::new();
    let family = vec![person(1), minor(1), minor(2)];
    let (s, v) = app
        .post(
            &path,
            &request_body(family, json!([{"city": "Sorteópolis"}])),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let family_code = v["code"].as_str().unwrap().to_string();
    codes.push(family_code.clone());
    for n in 2..=12u64 {
        let pref = if n % 2 == 0 {
            json!([{"office": "BAL", "day": d1}, {"city": "Sorteópolis"}])
        } else {
            json!([{"city": "Sorteópolis"}])
        };
        let (s, v) = app.post(&path, &request_body(vec![person(n)], pref)).await;
        assert_eq!(s, 202, "{v}");
        assert_eq!(v["status"], "unverified");
        codes.push(v["code"].as_str().unwrap().to_string());
    }
    // The same person again: refused by the database, whatever the route.
    let (s, v) = app
        .post(
            &path,
            &request_body(vec![person(5)], json!([{"city": "Sorteópolis"}])),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "already_booked");
    // Four preferences, an office not in the release: each field named.
    let (s, v) = app
        .post(
            &path,
            &request_body(
                vec![person(50)],
                json!([{"city": "Sorteópolis"}, {"city": "Sorteópolis"}, {"city": "Sorteópolis"}, {"city": "Sorteópolis"}]),
            ),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("preferences_count"), "{v}");
    let (s, v) = app
        .post(
            &path,
            &request_body(vec![person(51)], json!([{"office": "TST", "day": d1}])),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("preference_not_offered"), "{v}");

    // A wrong token proves nothing; the right one (from the mail) does.
    let (s, _) = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/requests/{}/verify", codes[0]),
            "not-the-token",
            None,
        )
        .await;
    assert_eq!(s, 404);
    for code in &codes[..10] {
        let (s, v) = app
            .post(
                &format!("/api/v1/requests/{code}/verify"),
                &json!({"token": token_of(&app.store, code).await}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "requested");
    }
    // The demand is published with the capacity: five verified people name
    // the office's first day, whose seats go by draw.
    let (s, cap) = app
        .get(&format!("/api/v1/capacity?office=BAL&from={d1}&days=1"))
        .await;
    assert_eq!(s, 200, "{cap}");
    let day = &cap["offices"][0]["days"][0];
    assert_eq!(day["by_ballot"], true, "{cap}");
    assert_eq!(day["requests"], 5, "{cap}");
    // A draw before the close is refused.
    let (s, v) = app
        .staff_call(
            &sup,
            reqwest::Method::POST,
            &format!("/api/v1/staff/releases/{id}/draw"),
            None,
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "requests_still_open");

    wait_for_close(&release).await;
    // The supervisor's draw, or the worker's if it came first: once only.
    let (s, v) = app
        .staff_call(
            &sup,
            reqwest::Method::POST,
            &format!("/api/v1/staff/releases/{id}/draw"),
            None,
        )
        .await;
    assert!(
        s == 200 || (s == 409 && v["error"]["code"] == "release_drawn"),
        "{s} {v}"
    );
    let (s, v) = app
        .staff_call(
            &sup,
            reqwest::Method::POST,
            &format!("/api/v1/staff/releases/{id}/draw"),
            None,
        )
        .await;
    assert_eq!(s, 409, "a release is drawn once: {v}");
    let (_, release) = app.get(&format!("/api/v1/releases/{id}")).await;
    assert_eq!(release["state"], "drawn");
    assert_eq!(release["commitment"], commitment.as_str());

    // Eight seats (two days of two slots of two); ten verified requests of
    // twelve people.
    let mut seated_people = 0;
    let mut waitlisted = Vec::new();
    for code in &codes[..10] {
        let v = status_of(&app, &app.store, code).await;
        match v["status"].as_str().unwrap() {
            "allocated" => {
                seated_people += v["seats"].as_u64().unwrap();
                assert_eq!(v["booking_code"], code.as_str());
            }
            "waitlisted" => {
                waitlisted.push((v["waitlist_position"].as_i64().unwrap(), code.clone()))
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(seated_people <= 8, "never more people than seats");
    assert!(seated_people >= 7, "the seats are used: {seated_people}");
    assert!(!waitlisted.is_empty());
    waitlisted.sort();
    let positions: Vec<i64> = waitlisted.iter().map(|w| w.0).collect();
    assert_eq!(positions, (1..=waitlisted.len() as i64).collect::<Vec<_>>());
    for code in &codes[10..] {
        assert_eq!(status_of(&app, &app.store, code).await["status"], "expired");
    }
    // The family: three seats in one slot, or on the waitlist whole.
    let fam = status_of(&app, &app.store, &family_code).await;
    if fam["status"] == "allocated" {
        let b = app.store.booking_by_code(&family_code).await.unwrap();
        assert_eq!(b.seats, 3);
        assert_eq!(b.applicants.len(), 3);
    } else {
        assert_eq!(fam["status"], "waitlisted");
    }
    assert!(app.store.check_slots().await.unwrap().is_empty());

    // Anyone replays the draw from the published files.
    let dir = std::env::temp_dir().join(format!("pasaporte-replay-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "commitment.txt",
        "offers.txt",
        "requests.txt",
        "outcome.txt",
        "seed.txt",
        "inputs-digest.txt",
    ] {
        let r = app
            .client
            .get(app.url(&format!("/api/v1/releases/{id}/files/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        std::fs::write(dir.join(name), r.text().await.unwrap()).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("commitment.txt"))
            .unwrap()
            .trim(),
        commitment
    );
    assert!(pasaporte::ballot_cli::replay_dir(&dir).unwrap());
    let requests_file = std::fs::read_to_string(dir.join("requests.txt")).unwrap();
    assert!(
        !requests_file.contains("10000005"),
        "no document number is published"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // A seat comes free: it is offered to the first on the waitlist, by
    // mail, with a deadline, and taken by accepting.
    let winner = codes[..10]
        .iter()
        .find(|c| *c != &family_code && waitlisted.iter().all(|w| &w.1 != *c))
        .unwrap()
        .clone();
    let (s, v) = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{winner}/cancel"),
            &token_of(&app.store, &winner).await,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let first = waitlisted[0].1.clone();
    let deadline = std::time::Instant::now() + POLL_DEADLINE;
    let offered = loop {
        let mut found = None;
        for (_, code) in &waitlisted {
            let v = status_of(&app, &app.store, code).await;
            if v["status"] == "offered" {
                found = Some((code.clone(), v));
            }
        }
        if let Some(f) = found {
            break f;
        }
        assert!(std::time::Instant::now() < deadline, "no offer was made");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The first in line who fits the seat: a family of three does not fit
    // one freed seat, the first single person does.
    if fam["status"] != "waitlisted" || first != family_code {
        assert_eq!(offered.0, first, "offers go in waitlist order");
    }
    assert!(offered.1["offer_deadline_ms"].as_i64().unwrap() > Timestamp::now().as_millisecond());
    let (s, v) = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/requests/{}/accept", offered.0),
            &token_of(&app.store, &offered.0).await,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "allocated");
    assert!(app.store.check_slots().await.unwrap().is_empty());

    // Every request came from one address: flagged for a supervisor, and
    // nothing was cancelled for it.
    let (s, v) = app
        .staff_call(
            &sup,
            reqwest::Method::GET,
            &format!("/api/v1/staff/releases/{id}/signals"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let signals = v["signals"].as_array().unwrap();
    assert!(
        signals
            .iter()
            .any(|g| g["kind"] == "device" && g["requests"].as_i64().unwrap() >= 12),
        "{v}"
    );
    assert!(signals.iter().any(|g| g["kind"] == "phone"), "{v}");
    let (s, _) = app
        .staff_call(
            &clerk,
            reqwest::Method::GET,
            &format!("/api/v1/staff/releases/{id}/signals"),
            None,
        )
        .await;
    assert_eq!(s, 403);
}

/// Twenty clients try to book or request for one person at once, across
/// two offices and both routes: exactly one wins.
async fn one_request_or_booking_per_person_under_concurrency(db: TestDb) {
    let app = spawn_ballot_app(db).await;
    let sup = staff(&app, "sup", Role::Supervisor, &["BAL"]).await;
    let (d1, d2) = two_open_days(&app, "BAL").await;
    let release = open_release(&app, &sup, &d1, &d2).await;
    let id = release["id"].as_str().unwrap().to_string();
    let slots = app.free_slots("TST").await;
    let mut tasks = Vec::new();
    for (i, slot) in slots.iter().take(20).enumerate() {
        let (client, base) = (app.client.clone(), app.base.clone());
        let (path, body) = if i % 2 == 0 {
            (
                "/api/v1/bookings".to_string(),
                booking_body("TST", slot, vec![person(77)]),
            )
        } else {
            (
                format!("/api/v1/releases/{id}/requests"),
                request_body(vec![person(77)], json!([{"city": "Sorteópolis"}])),
            )
        };
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let won = statuses.iter().filter(|s| **s == 201 || **s == 202).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [201, 202, 409].contains(s)),
        "{statuses:?}"
    );
}

/// A booking not reconfirmed in time is released and its seat offered to
/// the waitlist; the worker's clock is the test's.
async fn unconfirmed_seats_move_to_the_waitlist(db: TestDb) {
    let app = spawn_ballot_app(db).await;
    let sup = staff(&app, "sup", Role::Supervisor, &["BAL"]).await;
    let (d1, d2) = two_open_days(&app, "BAL").await;
    let release = open_release(&app, &sup, &d1, &d2).await;
    let id = release["id"].as_str().unwrap().to_string();
    let mut codes = Vec::new();
    for n in 0..11u64 {
        let (s, v) = app
            .post(
                &format!("/api/v1/releases/{id}/requests"),
                &request_body(
                    vec![person(300 + n)],
                    json!([{"office": "BAL", "day": d1}, {"city": "Sorteópolis"}]),
                ),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        let code = v["code"].as_str().unwrap().to_string();
        let (s, _) = app
            .post(
                &format!("/api/v1/requests/{code}/verify"),
                &json!({"token": token_of(&app.store, &code).await}),
            )
            .await;
        assert_eq!(s, 200);
        codes.push(code);
    }
    wait_for_close(&release).await;
    let _ = app
        .staff_call(
            &sup,
            reqwest::Method::POST,
            &format!("/api/v1/staff/releases/{id}/draw"),
            None,
        )
        .await;
    // The earliest seated booking, and the waitlist.
    let mut seated = Vec::new();
    let mut waiting = Vec::new();
    for code in &codes {
        let v = status_of(&app, &app.store, code).await;
        match v["status"].as_str().unwrap() {
            "allocated" => seated.push((v["start_ms"].as_i64().unwrap(), code.clone())),
            "waitlisted" => waiting.push(code.clone()),
            other => panic!("{other}"),
        }
    }
    assert_eq!(seated.len(), 8);
    assert_eq!(waiting.len(), 3);
    seated.sort();
    let (start_ms, first) = seated[0].clone();
    // One seated citizen confirms; the others of the first slot do not.
    let confirmed = seated
        .iter()
        .find(|s| s.0 == start_ms && s.1 != first)
        .unwrap()
        .1
        .clone();
    let (s, v) = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{confirmed}/confirm"),
            &token_of(&app.store, &confirmed).await,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // The worker's steps, on this database, at chosen times before the
    // first appointment: ask six hours before, keep five.
    let (store, _) = (app.store.clone(), ());
    let worker = pasaporte::app::App::new(
        store,
        keys().keyring().unwrap(),
        "http://127.0.0.1".into(),
        pasaporte::app::Adapters::default(),
    )
    .await
    .unwrap();
    let rc = pasaporte::ballot::Reconfirm {
        ask_hours: 6,
        keep_hours: 5,
    };
    let start = Timestamp::from_millisecond(start_ms).unwrap();
    let r = pasaporte::ballot::round(&worker, Some(rc), start - SignedDuration::from_mins(330))
        .await
        .unwrap();
    assert!(r.reminded >= 1, "{r:?}");
    assert_eq!(r.released, 0, "{r:?}");
    let r = pasaporte::ballot::round(&worker, Some(rc), start - SignedDuration::from_hours(4))
        .await
        .unwrap();
    assert!(r.released >= 1, "{r:?}");
    let b = app.store.booking_by_code(&first).await.unwrap();
    assert_eq!(b.status, "unconfirmed");
    let c = app.store.booking_by_code(&confirmed).await.unwrap();
    assert_eq!(c.status, "active", "a confirmed booking is kept");
    // The freed seats went to the waitlist, in order, as offers.
    let mut offered = 0;
    for code in &waiting {
        if status_of(&app, &app.store, code).await["status"] == "offered" {
            offered += 1;
        }
    }
    assert!(
        offered >= 1,
        "the released seat was offered to the waitlist"
    );
    assert!(app.store.check_slots().await.unwrap().is_empty());
}

/// Fewer requests than seats: after the draw nobody waits, and the seats
/// left go back to live booking instead of going to waste.
async fn leftover_seats_go_back_to_live_booking(db: TestDb) {
    let app = spawn_ballot_app(db).await;
    let sup = staff(&app, "sup", Role::Supervisor, &["BAL"]).await;
    let (d1, d2) = two_open_days(&app, "BAL").await;
    let slot = app
        .free_slots("BAL")
        .await
        .into_iter()
        .find(|s| s.starts_with(&d1))
        .unwrap();
    let release = open_release(&app, &sup, &d1, &d2).await;
    let id = release["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .post(
            &format!("/api/v1/releases/{id}/requests"),
            &request_body(vec![person(600)], json!([{"city": "Sorteópolis"}])),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let code = v["code"].as_str().unwrap().to_string();
    let (s, _) = app
        .post(
            &format!("/api/v1/requests/{code}/verify"),
            &json!({"token": token_of(&app.store, &code).await}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .book(&booking_body("BAL", &slot, vec![person(601)]))
        .await;
    assert_eq!(s, 422, "refused while the release is open");
    wait_for_close(&release).await;
    let deadline = std::time::Instant::now() + POLL_DEADLINE;
    while app.store.release(&id).await.unwrap().state != "drawn" {
        let _ = app
            .staff_call(
                &sup,
                reqwest::Method::POST,
                &format!("/api/v1/staff/releases/{id}/draw"),
                None,
            )
            .await;
        assert!(std::time::Instant::now() < deadline);
    }
    assert_eq!(
        status_of(&app, &app.store, &code).await["status"],
        "allocated"
    );
    loop {
        let (s, v) = app
            .book(&booking_body("BAL", &slot, vec![person(601)]))
            .await;
        if s == 201 {
            break;
        }
        assert_eq!(s, 422, "{v}");
        assert!(
            std::time::Instant::now() < deadline,
            "the seats never came back: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

both_databases!(
    leftover_seats_go_back_to_live_booking,
    releases_belong_to_the_staff_of_their_offices,
    ballot_release_end_to_end,
    one_request_or_booking_per_person_under_concurrency,
    unconfirmed_seats_move_to_the_waitlist,
);

/// The same release run in the browser: the supervisor opens and draws it
/// on the console; a citizen finds it on `/sorteos`, requests with the
/// form, proves the email with the mailed link's button, and reads the
/// result on the request's page.
async fn ballot_in_the_browser(db: TestDb) {
    use crate::console::{Signed, page, post_form};
    let app = spawn_ballot_app(db).await;
    let sup = staff(&app, "sup", Role::Supervisor, &["BAL"]).await;
    let s = Signed {
        cookie: sup.cookie.clone(),
        csrf: sup.csrf.clone(),
    };
    let (d1, d2) = two_open_days(&app, "BAL").await;
    // A wrong day is named on the form, nothing is opened.
    let r = post_form(
        &app,
        &s,
        "/console/releases",
        &[
            ("city", "Sorteópolis"),
            ("first_day", "mañana"),
            ("last_day", &d2),
            ("requests_close_at", ""),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("AAAA-MM-DD"), "{html}");
    assert!(app.store.releases().await.unwrap().is_empty());
    let close = (Timestamp::now() + REQUEST_PERIOD).to_string();
    let r = post_form(
        &app,
        &s,
        "/console/releases",
        &[
            ("city", "Sorteópolis"),
            ("first_day", &d1),
            ("last_day", &d2),
            ("requests_close_at", &close),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let release = app.store.releases().await.unwrap().remove(0);
    let (st, html) = page(&app, &s, "/console/releases").await;
    assert_eq!(st, 200);
    assert!(
        html.contains(&release.commitment),
        "the commitment is shown"
    );

    // The citizen's side.
    let home = app.client.get(app.url("/sorteos")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(
        html.contains(&release.commitment) && html.contains("Sorteópolis"),
        "{html}"
    );
    let form_path = format!("/sorteos/{}", release.id);
    let html = app
        .client
        .get(app.url(&form_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Primera preferencia"), "{html}");
    let post = |fields: Vec<(&'static str, String)>| {
        let (client, url) = (app.client.clone(), app.url(&form_path));
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(crate::console::form_body(&pairs))
                .send()
                .await
                .unwrap()
        }
    };
    // A missing preference and a bad email: both named, in Spanish.
    let r = post(vec![
        ("a0_document_type", "cedula_ciudadania".into()),
        ("a0_document_number", "10000999".into()),
        ("a0_surnames", "Muñoz García".into()),
        ("a0_given_names", "Ana María".into()),
        ("a0_birth_date", "1985-04-02".into()),
        ("email", "no-es-correo".into()),
    ])
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("href=\"#p0\"") && html.contains("href=\"#email\""),
        "{html}"
    );
    let r = post(vec![
        ("a0_document_type", "cedula_ciudadania".into()),
        ("a0_document_number", "10000999".into()),
        ("a0_surnames", "Muñoz García".into()),
        ("a0_given_names", "Ana María".into()),
        ("a0_birth_date", "1985-04-02".into()),
        ("email", "ana@example.co".into()),
        ("p0", format!("slot:BAL:{d1}")),
        ("p1", "city:Sorteópolis".into()),
    ])
    .await;
    assert_eq!(r.status(), 202);
    let html = r.text().await.unwrap();
    assert!(html.contains("Revise su correo"), "{html}");
    let code = html
        .split("Código de la solicitud: ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>();
    let key = token_of(&app.store, &code).await;
    // The mailed link shows a button; pressing it proves the email.
    let verify = format!("/solicitudes/{code}/verificar?clave={key}");
    let html = app
        .client
        .get(app.url(&verify))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Confirmar mi correo"), "{html}");
    assert_eq!(
        status_of(&app, &app.store, &code).await["status"],
        "unverified",
        "opening the link alone proves nothing"
    );
    let r = app
        .client
        .post(app.url(&format!("/solicitudes/{code}/verificar")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(crate::console::form_body(&[
            ("clave", key.as_str()),
            ("lang", "es"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Correo confirmado"));
    // A post from another site is refused.
    let r = app
        .client
        .post(app.url(&format!("/solicitudes/{code}/retirar")))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(crate::console::form_body(&[("clave", key.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    wait_for_close(&json!({"requests_close_at": close})).await;
    let (st, html) = page(&app, &s, "/console/releases").await;
    assert_eq!(st, 200);
    if html.contains("Sortear") {
        let r = post_form(
            &app,
            &s,
            &format!("/console/releases/{}/draw", release.id),
            &[],
        )
        .await;
        assert!(r.status() == 303 || r.status() == 409, "{}", r.status());
    }
    let deadline = std::time::Instant::now() + POLL_DEADLINE;
    while app.store.release(&release.id).await.unwrap().state != "drawn" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let html = app
        .client
        .get(app.url(&format!("/solicitudes/{code}?clave={key}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Ganó un cupo"), "{html}");
    assert!(html.contains(&format!("/citas/{code}?clave=")), "{html}");
}

both_databases!(ballot_in_the_browser);

/// A supervisor of another city's office may not open a release for BAL
/// (which would refuse BAL's live bookings), draw it, read its signals or
/// see it on the console; BAL's supervisor may.
async fn releases_belong_to_the_staff_of_their_offices(db: TestDb) {
    use reqwest::Method;
    let app = spawn_ballot_app(db).await;
    let sup = staff(&app, "sup", Role::Supervisor, &["BAL"]).await;
    let elsewhere = staff(&app, "sup.tst", Role::Supervisor, &["TST"]).await;
    let (d1, d2) = two_open_days(&app, "BAL").await;
    let body = json!({"city": "Sorteópolis", "first_day": d1, "last_day": d2,
        "requests_close_at": (Timestamp::now() + REQUEST_PERIOD).to_string()});
    let (s, v) = app
        .staff_call(
            &elsewhere,
            Method::POST,
            "/api/v1/staff/releases",
            Some(&body),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let mut named = body.clone();
    named["offices"] = json!(["BAL"]);
    let (s, v) = app
        .staff_call(
            &elsewhere,
            Method::POST,
            "/api/v1/staff/releases",
            Some(&named),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert!(
        app.store.releases().await.unwrap().is_empty(),
        "nothing opened"
    );
    // Live booking at BAL still works.
    let (s, _) = app
        .book(&booking_body(
            "BAL",
            &app.free_slots("BAL").await[0],
            vec![person(40)],
        ))
        .await;
    assert_eq!(s, 201);

    let release = open_release(&app, &sup, &d1, &d2).await;
    let id = release["id"].as_str().unwrap();
    wait_for_close(&release).await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/staff/releases/{id}/signals")),
        (Method::POST, format!("/api/v1/staff/releases/{id}/draw")),
    ] {
        let (s, v) = app.staff_call(&elsewhere, method, &path, None).await;
        assert_eq!(s, 404, "{path}: {v}");
    }
    let (s, page) = app.staff_page(&elsewhere, "/console/releases").await;
    assert_eq!(s, 200);
    assert!(
        !page.contains(id),
        "another office's release on the console"
    );
    assert!(
        !page.contains("Sorteópolis"),
        "nor its city among the choices"
    );
    let (s, page) = app.staff_page(&sup, "/console/releases").await;
    assert_eq!(s, 200);
    assert!(page.contains(id));
    let (s, v) = app
        .staff_call(
            &sup,
            Method::GET,
            &format!("/api/v1/staff/releases/{id}/signals"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
}
