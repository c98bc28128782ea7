//! Re-seating on an office closure or a capacity cut (issue 6 item 7), over
//! real HTTP with a real SMTP sink: every booking of the day is moved to the
//! nearest seat of its city or kept as `displaced`, none cancelled, the
//! slots' counts stay right, each citizen is mailed; concurrent citizens
//! never overbook.

use crate::support::*;
use pasaporte_core::application::Role;
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::jiff::civil::Date;
use pasaporte_core::jiff::tz::TimeZone;
use pasaporte_store::testing::{self, TestDb};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Offices for these tests: Cali has two (4 and 2 people a slot, four
/// slots a day), Pasto one with one seat a slot, two slots a day and a
/// five-day horizon (so a closure there finds no seat, and at any hour, with
/// a holiday tomorrow, at least two days still have seats).
const RESEAT_OFFICES_CSV: &str = "\
code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days
RS1,Cali Norte,department,Cali,COL,America/Bogota,08:00-10:00,08:00-10:00,4,16,08:00-10:00,30,30,20
RS2,Cali Sur,department,Cali,COL,America/Bogota,08:00-10:00,08:00-10:00,2,8,08:00-10:00,30,30,20
RSX,Pasto,department,Pasto,COL,America/Bogota,08:00-09:00,08:00-09:00,1,2,08:00-09:00,30,30,5
";

type Mails = Arc<Mutex<Vec<(Vec<String>, String)>>>;

#[derive(Clone, Default)]
struct Inbox {
    mails: Mails,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for Inbox {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> mailin_embedded::Response {
        let text = String::from_utf8_lossy(&self.data).into_owned();
        self.mails.lock().unwrap().push((self.to.clone(), text));
        mailin_embedded::response::OK
    }
}

/// A server on a fresh database with the test offices, mailing to a sink.
async fn spawn(db: TestDb) -> (TestApp, Mails) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Inbox::default();
    let mails = inbox.mails.clone();
    let mut server = mailin_embedded::Server::new(inbox);
    server.with_name("smtp.test").with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    let mut smtp = no_smtp();
    smtp.smtp_host = Some("127.0.0.1".into());
    smtp.smtp_port = port;
    let (store, url) = testing::fresh(db).await.unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    pasaporte::import_offices(&store, RESEAT_OFFICES_CSV)
        .await
        .unwrap();
    (spawn_on(store, url, smtp).await, mails)
}

/// The office's future slots by local day (`YYYY-MM-DD`), with their free seats.
async fn slots_by_day(app: &TestApp, office: &str) -> BTreeMap<String, Vec<(String, u64)>> {
    let (s, v) = app
        .get(&format!("/api/v1/offices/{office}/slots?days=21"))
        .await;
    assert_eq!(s, 200, "{v}");
    let now = Timestamp::now();
    let mut out: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for slot in v["slots"].as_array().unwrap() {
        let start = slot["start"].as_str().unwrap().to_string();
        if start.parse::<Timestamp>().unwrap() <= now {
            continue;
        }
        out.entry(start[..10].to_string())
            .or_default()
            .push((start, slot["remaining"].as_u64().unwrap()));
    }
    out
}

/// The first day whose every slot (`per_day` of them) is still ahead.
async fn first_whole_day(app: &TestApp, office: &str, per_day: usize) -> (String, Vec<String>) {
    slots_by_day(app, office)
        .await
        .into_iter()
        .find(|(_, s)| s.len() == per_day)
        .map(|(d, s)| (d, s.into_iter().map(|(start, _)| start).collect()))
        .expect("a whole day within the horizon")
}

#[derive(Clone, Debug)]
struct Made {
    code: String,
    token: String,
    email: String,
    seats: u64,
}

/// Books `sizes` families (in this order) into `start` at `office`.
async fn fill(
    app: &TestApp,
    office: &str,
    start: &str,
    sizes: &[u64],
    next: &mut u64,
) -> Vec<Made> {
    let mut out = Vec::new();
    for &n in sizes {
        // An adult and their minor children: only minors go in another's booking.
        let people = (0..n)
            .map(|i| {
                if i == 0 {
                    person(*next * 10)
                } else {
                    minor(*next * 10 + i)
                }
            })
            .collect();
        let email = format!("c{next}@example.co");
        let mut body = booking_body(office, start, people);
        body["email"] = json!(email);
        *next += 1;
        let (s, v) = app.book(&body).await;
        assert_eq!(s, 201, "booking {n} at {start}: {v}");
        out.push(Made {
            code: v["code"].as_str().unwrap().into(),
            token: v["manage_token"].as_str().unwrap().into(),
            email,
            seats: n,
        });
    }
    out
}

async fn booking(app: &TestApp, m: &Made) -> Value {
    let (s, v) = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/bookings/{}", m.code),
            &m.token,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// The local day `[start, end)` in unix ms at the Colombian offices.
fn day_bounds(day: &str) -> (i64, i64) {
    let d: Date = day.parse().unwrap();
    let tz = TimeZone::get("America/Bogota").unwrap();
    let from = d
        .to_zoned_datetime(tz.clone())
        .unwrap()
        .timestamp()
        .as_millisecond();
    let to = d
        .tomorrow()
        .unwrap()
        .to_zoned_datetime(tz)
        .unwrap()
        .timestamp()
        .as_millisecond();
    (from, to)
}

/// Waits until a mail to `to` containing `needle` (after undoing the
/// quoted-printable soft breaks) has arrived; returns its text.
async fn mail_to(mails: &Mails, to: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = mails.lock().unwrap().iter().find_map(|(rcpt, data)| {
            let text = data.replace("=\r\n", "").replace("=3D", "=");
            (rcpt.iter().any(|r| r == to) && text.contains(needle)).then_some(text)
        });
        if let Some(t) = found {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail to {to} with {needle}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

crate::both_databases!(
    a_closed_day_is_reseated_in_the_same_city,
    without_a_seat_a_booking_waits_displaced,
    a_capacity_cut_moves_only_the_excess,
    citizens_booking_during_a_closure_never_overbook,
    the_workers_reseat_a_closure_written_elsewhere,
    a_supervisor_closes_a_day_from_the_console,
);

async fn a_closed_day_is_reseated_in_the_same_city(db: TestDb) {
    let (app, mails) = spawn(db).await;
    let sup = staff(&app, "sup.cali", Role::Supervisor, &["RS1", "RS2"]).await;
    let (day, starts) = first_whole_day(&app, "RS1", 4).await;
    // Four slots of four seats, full, in families of one to three.
    let mut next = 1;
    let mut made = Vec::new();
    for (start, sizes) in starts
        .iter()
        .zip([&[3, 1][..], &[2, 2], &[2, 1, 1], &[1, 1, 1, 1]])
    {
        made.extend(fill(&app, "RS1", start, sizes, &mut next).await);
    }
    let active_before = app.store.active_bookings().await.unwrap();
    assert_eq!(active_before, made.len() as i64);

    // A clerk may not close an office; a supervisor may.
    let clerk = staff(&app, "clerk.cali", Role::Clerk, &["RS1"]).await;
    let body = json!({ "day": day, "reason": "Paro de transporte" });
    let path = "/api/v1/staff/offices/RS1/closures";
    let (s, _) = app
        .staff_call(&clerk, reqwest::Method::POST, path, Some(&body))
        .await;
    assert_eq!(s, 403);
    let (s, report) = app
        .staff_call(&sup, reqwest::Method::POST, path, Some(&body))
        .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["moved"], made.len(), "{report}");
    assert_eq!(report["displaced"], 0, "{report}");

    // Nothing vanished: every booking is active, in Cali, on a later day.
    assert_eq!(app.store.active_bookings().await.unwrap(), active_before);
    assert!(app.store.check_slots().await.unwrap().is_empty());
    let (from, to) = day_bounds(&day);
    assert_eq!(app.store.active_between("RS1", from, to).await.unwrap(), 0);
    let moves: Vec<&Value> = report["moves"].as_array().unwrap().iter().collect();
    for m in &made {
        let b = booking(&app, m).await;
        assert_eq!(b["status"], "active", "{b}");
        assert!(["RS1", "RS2"].contains(&b["office"].as_str().unwrap()));
        let start = b["start"].as_str().unwrap();
        assert!(start[..10] > *day.as_str(), "moved to a later day: {start}");
        assert_eq!(b["seats"], m.seats);
        // The report says the same as the citizen's page.
        let code_tail = &m.code[m.code.len() - 2..];
        assert!(
            moves
                .iter()
                .any(|r| r["to"] == start && r["code"].as_str().unwrap().ends_with(code_tail)),
            "{start} in the report"
        );
        // The citizen is mailed the new time and the link to choose another.
        let text = mail_to(&mails, &m.email, "Nueva fecha y hora").await;
        assert!(text.contains(&format!("/citas/{}?clave=", m.code)));
        assert!(
            text.contains(&format!("{} (America/Bogota)", &start[11..16])),
            "the mail names the new time {start}"
        );
    }
    // The same office is preferred: the next day of RS1 has all sixteen seats.
    let firsts: HashSet<&str> = moves
        .iter()
        .map(|r| r["to_office"].as_str().unwrap())
        .collect();
    assert_eq!(firsts, HashSet::from(["RS1"]));
    // The closed day takes no new booking.
    let (s, v) = app
        .book(&booking_body("RS1", &starts[0], vec![person(999)]))
        .await;
    assert_eq!(s, 422, "{v}");
}

async fn without_a_seat_a_booking_waits_displaced(db: TestDb) {
    let (app, mails) = spawn(db).await;
    let sup = staff(&app, "sup.pasto", Role::Supervisor, &["RSX"]).await;
    // Every future seat of Pasto's only office is taken.
    let days = slots_by_day(&app, "RSX").await;
    let mut next = 1;
    let mut made: BTreeMap<String, Vec<Made>> = BTreeMap::new();
    for (day, slots) in &days {
        for (start, _) in slots {
            made.entry(day.clone())
                .or_default()
                .extend(fill(&app, "RSX", start, &[1], &mut next).await);
        }
    }
    let (day, lost) = made
        .iter()
        .next()
        .map(|(d, m)| (d.clone(), m.clone()))
        .unwrap();
    let active_before = app.store.active_bookings().await.unwrap();
    let (s, report) = app
        .staff_call(
            &sup,
            reqwest::Method::POST,
            "/api/v1/staff/offices/RSX/closures",
            Some(&json!({ "day": day, "reason": "Corte de energía" })),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["moved"], 0, "{report}");
    assert_eq!(report["displaced"], lost.len(), "{report}");
    // Kept, not cancelled: displaced, still holding its person.
    for m in &lost {
        let b = booking(&app, m).await;
        assert_eq!(b["status"], "displaced", "{b}");
        let text = mail_to(&mails, &m.email, "Fecha y hora anterior").await;
        assert!(text.contains(&format!("/citas/{}?clave=", m.code)));
    }
    assert_eq!(
        app.store.active_bookings().await.unwrap() + lost.len() as i64,
        active_before
    );
    assert!(app.store.check_slots().await.unwrap().is_empty());
    // The same person cannot book elsewhere meanwhile: the hold stays.
    let other = slots_by_day(&app, "TST").await;
    let start = &other.values().next().unwrap()[0].0;
    // (`fill` named the first booking's person `person(10)`.)
    let (s, v) = app
        .book(&booking_body("TST", start, vec![person(10)]))
        .await;
    assert_eq!(s, 409, "{v}");
    // Listed for the supervisor.
    let (s, list) = app
        .staff_call(
            &sup,
            reqwest::Method::GET,
            "/api/v1/staff/offices/RSX/displaced",
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), lost.len(), "{list}");
    // A seat comes free on another day: the displaced citizen picks it.
    let (other_day, others) = made.iter().nth(1).unwrap();
    let freed = &others[0];
    let (s, _) = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{}/cancel", freed.code),
            &freed.token,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let start = &days[other_day][0].0;
    let (s, b) = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{}/reschedule", lost[0].code),
            &lost[0].token,
            Some(&json!({ "start": start })),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "active", "{b}");
    assert!(app.store.check_slots().await.unwrap().is_empty());
}

async fn a_capacity_cut_moves_only_the_excess(db: TestDb) {
    let (app, _mails) = spawn(db).await;
    let sup = staff(&app, "sup.cut", Role::Supervisor, &["RS1"]).await;
    let (day, starts) = first_whole_day(&app, "RS1", 4).await;
    let mut next = 1;
    // Slot 1: a family of three then one person; slot 2: three people.
    let slot1 = fill(&app, "RS1", &starts[0], &[3, 1], &mut next).await;
    let slot2 = fill(&app, "RS1", &starts[1], &[1, 1, 1], &mut next).await;
    let active_before = app.store.active_bookings().await.unwrap();
    // Two counters: two people a slot.
    let (s, report) = app
        .staff_call(
            &sup,
            reqwest::Method::POST,
            "/api/v1/staff/offices/RS1/capacity-cuts",
            Some(&json!({ "day": day, "counters": 2, "reason": "Dos ventanillas cerradas" })),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    // The rule: in each slot the earliest booked keep their seats while they
    // fit; the family of three no longer fits, the third single was last.
    assert_eq!(report["moved"], 2, "{report}");
    assert_eq!(report["untouched"], 3, "{report}");
    assert_eq!(report["displaced"], 0, "{report}");
    let stays = |m: &Made, start: &str| {
        let (app, m, start) = (&app, m.clone(), start.to_string());
        async move {
            let b = booking(app, &m).await;
            assert_eq!(b["status"], "active");
            b["start"] == start.as_str()
        }
    };
    assert!(!stays(&slot1[0], &starts[0]).await, "the family moved");
    assert!(stays(&slot1[1], &starts[0]).await);
    assert!(stays(&slot2[0], &starts[1]).await);
    assert!(stays(&slot2[1], &starts[1]).await);
    assert!(!stays(&slot2[2], &starts[1]).await, "the latest moved");
    assert_eq!(app.store.active_bookings().await.unwrap(), active_before);
    assert!(app.store.check_slots().await.unwrap().is_empty());
    // The cut holds: slot 2 is full at two.
    let (s, v) = app
        .book(&booking_body("RS1", &starts[1], vec![person(777)]))
        .await;
    assert_eq!(s, 409, "{v}");
}

async fn citizens_booking_during_a_closure_never_overbook(db: TestDb) {
    let (app, _mails) = spawn(db).await;
    let sup = staff(&app, "sup.race", Role::Supervisor, &["RS1"]).await;
    let days = slots_by_day(&app, "RS1").await;
    let (day, starts) = days
        .iter()
        .find(|(_, s)| s.len() == 4)
        .map(|(d, s)| (d.clone(), s.iter().map(|x| x.0.clone()).collect::<Vec<_>>()))
        .unwrap();
    let next_day: Vec<String> = days
        .range(day.clone()..)
        .nth(1)
        .unwrap()
        .1
        .iter()
        .map(|x| x.0.clone())
        .collect();
    let mut next = 1;
    for s in &starts {
        fill(&app, "RS1", s, &[2, 1], &mut next).await;
    }
    // Citizens keep booking the closed day and the day after while the
    // supervisor closes the day.
    let base = app.base.clone();
    let mut racers = Vec::new();
    for i in 0..24u64 {
        let start = if i % 2 == 0 {
            starts[(i as usize / 2) % starts.len()].clone()
        } else {
            next_day[(i as usize / 2) % next_day.len()].clone()
        };
        let base = base.clone();
        racers.push(tokio::spawn(async move {
            let body = booking_body("RS1", &start, vec![person(5_000 + i)]);
            let r = client()
                .post(format!("{base}/api/v1/bookings"))
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    let (s, report) = app
        .staff_call(
            &sup,
            reqwest::Method::POST,
            "/api/v1/staff/offices/RS1/closures",
            Some(&json!({ "day": day, "reason": "Paro" })),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    let mut booked = 0;
    for r in racers {
        let status = r.await.unwrap();
        assert!([201, 409, 422].contains(&status), "{status}");
        booked += i64::from(status == 201);
    }
    // Every booking made is active (or displaced), none in the closed day,
    // and no slot holds more than its capacity.
    assert!(app.store.check_slots().await.unwrap().is_empty());
    let (from, to) = day_bounds(&day);
    assert_eq!(app.store.active_between("RS1", from, to).await.unwrap(), 0);
    let displaced = app.store.displaced_bookings(None).await.unwrap().len() as i64;
    assert_eq!(
        app.store.active_bookings().await.unwrap() + displaced,
        8 + booked
    );
}

async fn the_workers_reseat_a_closure_written_elsewhere(db: TestDb) {
    let (app, mails) = spawn(db).await;
    let (day, starts) = first_whole_day(&app, "RS1", 4).await;
    let mut next = 1;
    let mut made = Vec::new();
    for s in &starts {
        made.extend(fill(&app, "RS1", s, &[2, 2], &mut next).await);
    }
    // A closure that reached the database without its re-seating (another
    // path, or a process that died): the workers' pass owes these bookings.
    let d: Date = day.parse().unwrap();
    app.store
        .add_closure("RS1", d, "Corte de energía")
        .await
        .unwrap();
    let (from, to) = day_bounds(&day);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.store.active_between("RS1", from, to).await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the workers did not re-seat the closed day"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for m in &made {
        let b = booking(&app, m).await;
        assert_eq!(b["status"], "active", "{b}");
        assert!(b["start"].as_str().unwrap()[..10] > *day.as_str());
        mail_to(&mails, &m.email, "Nueva fecha y hora").await;
    }
    assert!(app.store.check_slots().await.unwrap().is_empty());
}

async fn a_supervisor_closes_a_day_from_the_console(db: TestDb) {
    use crate::console::{Signed, location, page, post_form};
    let (app, _mails) = spawn(db).await;
    let sup = staff(&app, "sup.console", Role::Supervisor, &["RS1", "RSX"]).await;
    let sup = Signed {
        cookie: sup.cookie,
        csrf: sup.csrf,
    };
    let (s, html) = page(&app, &sup, "/console/supervisor?lang=es").await;
    assert_eq!(s, 200);
    assert!(html.contains("id=\"close-day\""), "the form is on the page");
    let (day, starts) = first_whole_day(&app, "RS1", 4).await;
    let mut next = 1;
    let made = fill(&app, "RS1", &starts[0], &[2, 1], &mut next).await;
    // A day that is not a date is refused on the page itself.
    let r = post_form(
        &app,
        &sup,
        "/console/supervisor/closures?lang=es",
        &[("office", "RS1"), ("day", "mañana"), ("reason", "Paro")],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("AAAA-MM-DD"));
    let r = post_form(
        &app,
        &sup,
        "/console/supervisor/closures?lang=es",
        &[
            ("office", "RS1"),
            ("day", &day),
            ("reason", "Paro de transporte"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("moved=2") && to.contains("displaced=0"), "{to}");
    let (s, html) = page(&app, &sup, &to).await;
    assert_eq!(s, 200);
    assert!(html.contains("2 citas reubicadas"), "{html}");
    for m in &made {
        assert_eq!(booking(&app, m).await["status"], "active");
    }
    // Displaced bookings are listed there too.
    let days = slots_by_day(&app, "RSX").await;
    let first = days.keys().next().unwrap().clone();
    let mut lost = Vec::new();
    for (d, slots) in &days {
        for (start, _) in slots {
            let m = fill(&app, "RSX", start, &[1], &mut next).await;
            if *d == first {
                lost.extend(m);
            }
        }
    }
    let r = post_form(
        &app,
        &sup,
        "/console/supervisor/closures?lang=en",
        &[("office", "RSX"), ("day", &first), ("reason", "Power cut")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(&app, &sup, "/console/supervisor?lang=en").await;
    for m in &lost {
        let n = m.code.chars().count();
        let masked: String = m
            .code
            .chars()
            .enumerate()
            .map(|(i, c)| if i + 2 < n { '•' } else { c })
            .collect();
        assert!(html.contains(&masked), "{} listed", m.code);
    }
}
