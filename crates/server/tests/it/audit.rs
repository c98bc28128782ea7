//! The audit trail kept outside the database (issue 12, item 5): the service
//! appends every signed checkpoint to an anchor file and serves them at
//! `/api/v1/audit/checkpoints.txt`; `pasaporte audit verify` finds against
//! them a trail cut together with its checkpoints, which the database's own
//! checkpoints cannot show.

use crate::both_databases;
use crate::support::*;
use pasaporte_core::application::{Actor, Role};
use pasaporte_core::audit::{AuditEvent, Verdict};
use pasaporte_store::append_audit_event;
use pasaporte_store::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

both_databases!(
    a_cut_trail_is_found_against_the_anchors_kept_outside,
    bookings_reschedules_and_cancellations_are_audited,
    failed_sign_ins_are_audited_with_throttle_key_and_address,
    refusals_are_logged_and_counted,
    staff_reads_of_personal_data_are_audited_under_concurrency,
);

/// Appends `n` events in one transaction; the head's seq and hash.
async fn append(w: &World, n: i64) -> (i64, String) {
    let clerk = Actor {
        id: "clerk-1".into(),
        role: Role::Clerk,
    };
    let mut tx = w.app.store.begin_write().await.unwrap();
    let mut head = None;
    for i in 0..n {
        let at_ms = pasaporte_core::jiff::Timestamp::now().as_millisecond();
        let e = AuditEvent::by(
            &clerk,
            at_ms,
            "application.capture",
            "TST",
            format!("app-{i}"),
        );
        head = Some(append_audit_event(&mut tx, &e).await.unwrap());
    }
    tx.commit().await.unwrap();
    let head = head.unwrap();
    (head.seq, head.hash.to_hex())
}

/// Waits until the anchor file vouches for event `seq`; its text.
async fn anchored(path: &Path, seq: i64) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.split(' ').next() == Some(seq.to_string().as_str()))
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {seq} never anchored:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `pasaporte audit verify` through the binary: success, and what it printed.
fn verify(w: &World, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pasaporte"))
        .args(["audit", "verify", "--database", &w.db_url])
        .args(["--public-key", &w.audit_key.to_hex()])
        .args(extra)
        .env_remove("PASAPORTE_AUDIT_ANCHOR_FILE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn a_cut_trail_is_found_against_the_anchors_kept_outside(db: TestDb) {
    let dir = std::env::temp_dir().join(format!("pasaporte-anchors-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("anchors.txt");
    let path = file.clone();
    let w = spawn_world_with(db, move |work| work.audit_anchor_file = Some(path)).await;
    let file_arg = file.to_str().unwrap();

    // Three rounds of events, each signed by the service's checkpointer
    // and appended to the anchor file.
    let mut heads = Vec::new();
    for _ in 0..3 {
        let head = append(&w, 4).await;
        anchored(&file, head.0).await;
        heads.push(head);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");

    // The same checkpoints, served for anyone to keep, paged by `after`.
    let (status, served) = w.app.get_text("/api/v1/audit/checkpoints.txt").await;
    assert_eq!(status, 200);
    assert_eq!(served, text, "the route serves what the file holds");
    let first_seq = lines[0].split(' ').next().unwrap();
    let (_, rest) = w
        .app
        .get_text(&format!("/api/v1/audit/checkpoints.txt?after={first_seq}"))
        .await;
    assert_eq!(rest.lines().count(), lines.len() - 1);

    let (ok, out) = verify(&w, &["--anchor-file", file_arg]);
    assert!(ok && out.contains("intact"), "{out}");

    // The attack: the last round deleted together with the checkpoints
    // that covered it.
    // One transaction, so the running checkpointer never sees the tail
    // without its checkpoint (and signs it again).
    let (cut_at, _) = heads[1];
    let mut tx = w.app.store.begin_write().await.unwrap();
    for sql in [
        "DELETE FROM audit_events WHERE seq > $1",
        "DELETE FROM audit_checkpoints WHERE seq > $1",
    ] {
        sqlx::query(sql)
            .bind(cut_at)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // The database alone cannot tell...
    assert!(matches!(
        w.app.store.verify_audit(&w.audit_key).await.unwrap(),
        Verdict::Intact { .. }
    ));
    let (ok, _) = verify(&w, &[]);
    assert!(
        ok,
        "without an anchor the cut passes: what the anchors are for"
    );
    // ...the anchor file, or one pair written down elsewhere, can.
    let (ok, out) = verify(&w, &["--anchor-file", file_arg]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("broken at event {}", cut_at + 1)) && out.contains("anchor"),
        "{out}"
    );
    let (last_seq, last_hash) = &heads[2];
    let (ok, out) = verify(&w, &["--anchor", &format!("{last_seq}:{last_hash}")]);
    assert!(!ok && out.contains("anchor"), "{out}");
    // A hash written down for a kept event still matches.
    let (kept_seq, kept_hash) = &heads[0];
    let (ok, out) = verify(&w, &["--anchor", &format!("{kept_seq}:{kept_hash}")]);
    assert!(ok, "{out}");

    // A forged line in the anchor file is refused, not believed.
    let forged = dir.join("forged.txt");
    let mut fields: Vec<&str> = lines[0].split(' ').collect();
    let zeros = "0".repeat(64);
    fields[1] = &zeros;
    let line = fields.join(" ");
    std::fs::write(&forged, format!("{line}\n")).unwrap();
    let (ok, out) = verify(&w, &["--anchor-file", forged.to_str().unwrap()]);
    assert!(!ok && out.contains("does not verify"), "{out}");
    let (ok, out) = verify(&w, &["--anchor", "12:nothex"]);
    assert!(!ok && out.contains("SEQ:HASH"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

/// How many events of each action the trail holds.
async fn actions(w: &World) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for r in w.app.store.audit_events(1, 10_000).await.unwrap() {
        *out.entry(r.event.action).or_default() += 1;
    }
    out
}

fn count(m: &std::collections::BTreeMap<String, usize>, action: &str) -> usize {
    m.get(action).copied().unwrap_or(0)
}

/// Issue 12 item 6: bookings, reschedules and cancellations made through
/// the API, many at once, are each one event of the trail, which `pasaporte
/// audit verify` finds intact.
async fn bookings_reschedules_and_cancellations_are_audited(db: TestDb) {
    const BOOKINGS: u64 = 40;
    const MOVED: usize = 10;
    const CANCELLED: usize = 10;
    let w = spawn_world(db).await;
    let app = &w.app;
    let slots = app.free_slots("TST").await;
    let mut set = tokio::task::JoinSet::new();
    for n in 0..BOOKINGS {
        let (client, url) = (app.client.clone(), app.url("/api/v1/bookings"));
        let body = booking_body("TST", &slots[(n % 4) as usize], vec![person(7_000 + n)]);
        set.spawn(async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    let booked: Vec<(String, String)> = set
        .join_all()
        .await
        .into_iter()
        .map(|(status, v)| {
            assert_eq!(status, 201, "{v}");
            (
                v["code"].as_str().unwrap().to_string(),
                v["manage_token"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut set = tokio::task::JoinSet::new();
    for (i, (code, token)) in booked.iter().take(MOVED + CANCELLED).enumerate() {
        let (client, token) = (app.client.clone(), token.clone());
        let (url, body) = if i < MOVED {
            (
                app.url(&format!("/api/v1/bookings/{code}/reschedule")),
                Some(json!({ "start": slots[5] })),
            )
        } else {
            (app.url(&format!("/api/v1/bookings/{code}/cancel")), None)
        };
        set.spawn(async move {
            let mut req = client.post(url).bearer_auth(token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
    }
    for (status, text) in set.join_all().await {
        assert_eq!(status, 200, "{text}");
    }
    let seen = actions(&w).await;
    assert_eq!(count(&seen, "booking.book"), BOOKINGS as usize, "{seen:?}");
    assert_eq!(count(&seen, "booking.reschedule"), MOVED, "{seen:?}");
    assert_eq!(count(&seen, "booking.cancel"), CANCELLED, "{seen:?}");
    // Ids, offices and slots only: no name, no document number.
    for r in w.app.store.audit_events(1, 10_000).await.unwrap() {
        let text = format!("{:?}", r.event);
        // `person(n)`'s document numbers are 1000 7nnn.
        assert!(
            !text.contains("100070") && !text.contains("Muñoz"),
            "{text}"
        );
        if r.event.action.starts_with("booking.") {
            assert_eq!(
                (r.event.role.as_str(), r.event.office.as_str()),
                ("citizen", "TST")
            );
        }
    }
    let (ok, text) = verify(&w, &[]);
    assert!(ok, "{text}");
}

/// Signs in through the API with a wrong password: the status.
async fn wrong_sign_in(app: &TestApp, username: &str) -> u16 {
    let r = app
        .client
        .post(app.url("/api/v1/staff/session"))
        .json(&json!({ "username": username, "password": "not the password at all", "totp": "000000" }))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

async fn metrics(app: &TestApp) -> String {
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    text
}

/// Issue 12 item 6: a refused sign-in (unknown user or wrong password) is
/// an event naming the account if any, the throttle key and the client's
/// address, and never the password; it is counted too.
async fn failed_sign_ins_are_audited_with_throttle_key_and_address(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.audit", Role::Clerk, &["TST"]).await;
    assert_eq!(wrong_sign_in(app, "clerk.audit").await, 401);
    assert_eq!(wrong_sign_in(app, "nobody.here").await, 401);
    let events: Vec<_> = app
        .store
        .audit_events(1, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| e.action == "staff.sign_in_failed")
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let keys = keys().keyring().unwrap();
    let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let key = pasaporte::auth::accounts::throttle_key(&keys, "clerk.audit", Some(local));
    assert_eq!(
        (events[0].actor.as_str(), events[0].subject.as_str()),
        (clerk.id.as_str(), key.as_str())
    );
    assert_eq!(events[0].detail, "client=127.0.0.1 reason=credentials");
    assert_eq!(events[0].office, "TST");
    let key = pasaporte::auth::accounts::throttle_key(&keys, "nobody.here", Some(local));
    assert_eq!(
        (events[1].actor.as_str(), events[1].subject.as_str()),
        ("unknown", key.as_str())
    );
    for e in &events {
        let text = format!("{e:?}");
        assert!(
            !text.contains("not the password") && !text.contains("nobody.here"),
            "{text}"
        );
    }
    assert!(
        metrics(app)
            .await
            .contains("pasaporte_failed_sign_ins_total 2"),
        "{}",
        metrics(app).await
    );
    let (ok, text) = verify(&w, &[]);
    assert!(ok, "{text}");
}

/// Issue 12 item 6: a refusal by role, by the office a route names, or by
/// the office of the thing asked for is counted by kind (and logged with
/// the staff id, the route and the office).
async fn refusals_are_logged_and_counted(db: TestDb) {
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST"]).await;
    let other = staff(app, "clerk.ts2", Role::Clerk, &["TS2"]).await;
    let (status, v) = app
        .staff_call(
            &other,
            Method::POST,
            "/api/v1/staff/offices/TS2/walk-ins",
            Some(&json!({
                "document_type": "cedula_ciudadania",
                "document_number": "79000321",
                "surnames": "Quintanilla Zabaleta",
                "given_names": "Ximena",
                "birth_date": "1988-11-23",
            })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let foreign = v["application"].as_str().unwrap().to_string();
    assert!(
        metrics(app)
            .await
            .contains("pasaporte_authorization_refusals_total{kind=\"role\"} 0")
    );
    // The role: a clerk may not see the supervisors' queues.
    let (status, _) = app
        .staff_call(&clerk, Method::GET, "/api/v1/staff/supervisor/queues", None)
        .await;
    assert_eq!(status, 403);
    // An application of another office: answered like an unknown one.
    let (status, _) = app
        .staff_call(
            &clerk,
            Method::GET,
            &format!("/api/v1/staff/applications/{foreign}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .staff_page(
            &clerk,
            &format!("/console/applications/{foreign}/photo.png"),
        )
        .await;
    assert_eq!(status, 404);
    let m = metrics(app).await;
    for line in [
        "pasaporte_authorization_refusals_total{kind=\"role\"} 1",
        "pasaporte_authorization_refusals_total{kind=\"object\"} 2",
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }
}

/// Issue 12 item 6 and issue 11 item 3: each staff read of an
/// application's detail or photo is an event (who, which application); 48
/// reads at once, each appending to the chain, all answer 200 (on
/// PostgreSQL too: no `audit_events_pkey` conflict), and the chain verifies.
async fn staff_reads_of_personal_data_are_audited_under_concurrency(db: TestDb) {
    const READS: usize = 48;
    let w = spawn_world(db).await;
    let app = &w.app;
    let clerk = staff(app, "clerk.tst", Role::Clerk, &["TST"]).await;
    let (status, v) = app
        .staff_call(
            &clerk,
            Method::POST,
            "/api/v1/staff/offices/TST/walk-ins",
            Some(&json!({
                "document_type": "cedula_ciudadania",
                "document_number": "79000654",
                "surnames": "Quintanilla Zabaleta",
                "given_names": "Ximena",
                "birth_date": "1988-11-23",
            })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let id = v["application"].as_str().unwrap().to_string();
    let path = format!("/api/v1/staff/applications/{id}");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..READS {
        let req = app
            .client
            .get(app.url(&path))
            .header(reqwest::header::COOKIE, &clerk.cookie);
        set.spawn(async move { req.send().await.unwrap().status().as_u16() });
    }
    let statuses = set.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let reads: Vec<_> = app
        .store
        .audit_events(1, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| e.action == "application.viewed")
        .collect();
    assert_eq!(reads.len(), READS);
    assert!(
        reads
            .iter()
            .all(|e| e.actor == clerk.id && e.subject == id && e.office == "TST")
    );
    // The application's own history stays its steps.
    let (_, v) = app.staff_call(&clerk, Method::GET, &path, None).await;
    let history = v["history"].as_array().unwrap();
    assert!(
        history.iter().all(|h| h["action"] != "application.viewed"),
        "{history:?}"
    );
    let (ok, text) = verify(&w, &[]);
    assert!(ok, "{text}");
}
