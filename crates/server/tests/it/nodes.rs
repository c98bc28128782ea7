//! Several nodes on one database (issue 11 item 4): what one node writes
//! reaches the other nodes' in-memory caches (availability, offices and
//! their rules) within a second, and a surge split across nodes never
//! oversells nor gives a person two bookings.

use crate::support::*;
use pasaporte_core::application::Role;
use pasaporte_store::testing::{self, TestDb};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

crate::both_databases!(
    a_booking_and_a_cancellation_on_one_node_show_on_another,
    a_closure_and_a_capacity_cut_on_one_node_show_on_another,
    a_surge_across_three_nodes_never_oversells,
);

/// An office with two seats a slot (two counters, one person each per
/// half hour), open around the clock.
const NODE_OFFICES_CSV: &str = "\
code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days
NOD,Oficina de nodos,department,Tunja,COL,America/Bogota,00:00-24:00,00:00-24:00,2,96,00:00-24:00,30,30,30
";

/// How long another node's write may take to show (the bound).
const ACROSS_NODES: Duration = Duration::from_secs(1);

/// `nodes` servers on one fresh database with the test offices.
async fn nodes(db: TestDb, nodes: usize) -> Vec<TestApp> {
    let (store, url) = testing::fresh(db).await.unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    pasaporte::import_offices(&store, NODE_OFFICES_CSV)
        .await
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..nodes {
        out.push(spawn_on(store.clone(), url.clone(), no_smtp()).await);
    }
    out
}

/// The slot's `(remaining, capacity)` as `app` reports it, if it lists it.
async fn seats(app: &TestApp, office: &str, start: &str) -> Option<(u64, u64)> {
    let day = &start[..10];
    let (s, v) = app
        .get(&format!("/api/v1/offices/{office}/slots?from={day}&days=1"))
        .await;
    assert_eq!(s, 200, "{v}");
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["start"] == start)
        .map(|s| {
            (
                s["remaining"].as_u64().unwrap(),
                s["capacity"].as_u64().unwrap(),
            )
        })
}

/// Polls `app`'s answer for the slot until it is `want`, for at most
/// [`ACROSS_NODES`] after `since` (when the other node's write was
/// acknowledged).
async fn shows(
    app: &TestApp,
    office: &str,
    start: &str,
    want: Option<(u64, u64)>,
    since: Instant,
    what: &str,
) {
    loop {
        let got = seats(app, office, start).await;
        if got == want {
            return;
        }
        assert!(
            since.elapsed() < ACROSS_NODES,
            "{what}: still {got:?} after {:?}, want {want:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_booking_and_a_cancellation_on_one_node_show_on_another(db: TestDb) {
    let n = nodes(db, 2).await;
    let (a, b) = (&n[0], &n[1]);
    let start = a.free_slots("NOD").await.remove(3);
    // Node B has the day in memory, both seats free.
    assert_eq!(seats(b, "NOD", &start).await, Some((2, 2)));
    assert_eq!(seats(b, "NOD", &start).await, Some((2, 2)));

    // A family of two takes the slot's last seats on node A.
    let (s, v) = a
        .book(&booking_body("NOD", &start, vec![person(1), minor(1)]))
        .await;
    assert_eq!(s, 201, "{v}");
    let booked = Instant::now();
    let code = v["code"].as_str().unwrap().to_string();
    let token = v["manage_token"].as_str().unwrap().to_string();
    shows(b, "NOD", &start, Some((0, 2)), booked, "the booking on B").await;
    // B refuses the full slot (the database would anyway).
    let (s, v) = b.book(&booking_body("NOD", &start, vec![person(2)])).await;
    assert_eq!(s, 409, "{v}");

    // Cancelled on node A: node B offers the seats again.
    let (s, v) = a
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{code}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let cancelled = Instant::now();
    shows(
        b,
        "NOD",
        &start,
        Some((2, 2)),
        cancelled,
        "the cancellation on B",
    )
    .await;
    let (s, v) = b.book(&booking_body("NOD", &start, vec![person(2)])).await;
    assert_eq!(s, 201, "{v}");
    let booked = Instant::now();
    shows(a, "NOD", &start, Some((1, 2)), booked, "B's booking on A").await;
}

async fn a_closure_and_a_capacity_cut_on_one_node_show_on_another(db: TestDb) {
    let n = nodes(db, 2).await;
    let (a, b) = (&n[0], &n[1]);
    let sup = staff(a, "sup.tunja", Role::Supervisor, &["NOD"]).await;
    let slots = a.free_slots("NOD").await;
    // Two days after today, whole on both nodes.
    let first = slots
        .iter()
        .filter(|s| s.contains("T10:00"))
        .nth(1)
        .unwrap()
        .clone();
    let closed_day = first[..10].to_string();
    let later = slots
        .iter()
        .find(|s| s.contains("T10:00") && s[..10] > *closed_day)
        .unwrap()
        .clone();
    let cut_day = later[..10].to_string();
    assert_eq!(seats(b, "NOD", &first).await, Some((2, 2)));
    assert_eq!(seats(b, "NOD", &later).await, Some((2, 2)));

    // A supervisor on node A closes the first day: node B stops offering it.
    let (s, v) = a
        .staff_call(
            &sup,
            reqwest::Method::POST,
            "/api/v1/staff/offices/NOD/closures",
            Some(&json!({ "day": closed_day, "reason": "Corte de energía" })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let closed = Instant::now();
    shows(b, "NOD", &first, None, closed, "the closure on B").await;
    let (_, v) = b
        .get(&format!(
            "/api/v1/offices/NOD/slots?from={closed_day}&days=1"
        ))
        .await;
    assert_eq!(v["unavailable_days"][0]["date"], closed_day.as_str(), "{v}");
    let (s, v) = b.book(&booking_body("NOD", &first, vec![person(3)])).await;
    assert_eq!(s, 422, "B refuses the closed day: {v}");

    // A capacity cut to one counter on the later day: one seat a slot on B.
    let (s, v) = a
        .staff_call(
            &sup,
            reqwest::Method::POST,
            "/api/v1/staff/offices/NOD/capacity-cuts",
            Some(&json!({ "day": cut_day, "counters": 1, "reason": "Una ventanilla" })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let cut = Instant::now();
    shows(b, "NOD", &later, Some((1, 1)), cut, "the capacity cut on B").await;
}

/// 600 attempts for the 50 seats of one slot, spread over three nodes, at
/// most 256 at once; 300 people, each trying on two nodes at the same time.
async fn a_surge_across_three_nodes_never_oversells(db: TestDb) {
    const PEOPLE: u64 = 300;
    const IN_FLIGHT_MAX: usize = 256;
    let n = Arc::new(nodes(db, 3).await);
    let start = n[0].free_slots("TST").await.remove(0);
    // Every node has the slot in memory before the surge.
    for node in n.iter() {
        assert_eq!(seats(node, "TST", &start).await, Some((50, 50)));
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_MAX));
    let mut tasks = Vec::new();
    for p in 0..PEOPLE {
        for node in [p % 3, (p + 1) % 3] {
            let (n, gate, start) = (n.clone(), gate.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let (s, v) = n[node as usize]
                    .book(&booking_body("TST", &start, vec![person(p)]))
                    .await;
                (p, s, v)
            }));
        }
    }
    let mut booked: HashMap<u64, Vec<String>> = HashMap::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for t in tasks {
        let (p, s, v) = t.await.unwrap();
        *statuses.entry(s).or_default() += 1;
        match s {
            201 => booked
                .entry(p)
                .or_default()
                .push(v["code"].as_str().unwrap().to_string()),
            409 => {}
            _ => panic!("person {p}: {s} {v}"),
        }
    }
    let done = Instant::now();
    assert_eq!(statuses.values().sum::<usize>(), 600);
    // The slot filled exactly, one booking per person at most.
    let seats_taken: usize = booked.values().map(Vec::len).sum();
    assert_eq!(seats_taken, 50, "{statuses:?}");
    assert!(
        booked.values().all(|codes| codes.len() == 1),
        "a person got two bookings: {booked:?}"
    );
    let store = &n[0].store;
    assert_eq!(store.active_bookings().await.unwrap(), 50);
    assert!(store.check_slots().await.unwrap().is_empty());
    // And every node's calendar says so.
    for (i, node) in n.iter().enumerate() {
        shows(
            node,
            "TST",
            &start,
            Some((0, 50)),
            done,
            &format!("node {i}"),
        )
        .await;
    }
}
