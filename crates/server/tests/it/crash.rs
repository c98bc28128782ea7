//! The real binary, killed with SIGKILL under load, and two servers on one
//! PostgreSQL database.

use crate::support::*;
use pasaporte_store::Store;
use pasaporte_store::testing::{self, TestDb};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pasaporte"));
    c.env("PASAPORTE_DATA_KEYS", DATA_KEYS)
        .env("PASAPORTE_LOOKUP_KEY", LOOKUP_KEY)
        .env("NO_COLOR", "1")
        .env("PASAPORTE_LOG", "warn")
        // The load comes from one address: no rate limit here.
        .env("PASAPORTE_RATE_CLIENT_PER_MIN", "0")
        .env("PASAPORTE_RATE_IDENTITY_PER_HOUR", "0")
        .kill_on_drop(true);
    c
}

async fn import_test_offices(db_url: &str) {
    let dir = std::env::temp_dir().join(format!("pasaporte-offices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.csv", db_url.len()));
    std::fs::write(&file, TEST_OFFICES_CSV).unwrap();
    let out = bin()
        .args(["offices", "import"])
        .arg(&file)
        .args(["--database", db_url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 offices imported"
    );
}

/// Starts `pasaporte serve` on `db_url` and returns it with its address.
async fn start_server(db_url: &str) -> (Child, String) {
    start_server_with(db_url, &[]).await
}

/// [`start_server`] with more flags.
async fn start_server_with(db_url: &str, flags: &[&str]) -> (Child, String) {
    let mut child = bin()
        .args(["serve", "--database", db_url, "--listen", "127.0.0.1:0"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = line
        .strip_prefix("pasaporte listening on ")
        .unwrap()
        .to_string();
    (child, base)
}

crate::both_databases!(kill_nine_loses_no_acknowledged_booking);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_nodes_work_is_taken_over_and_done_once() {
    killed_node_work_taken_over(TestDb::Postgres).await
}

async fn kill_nine_loses_no_acknowledged_booking(db: TestDb) {
    let db_url = testing::fresh_url(db).await.unwrap();
    import_test_offices(&db_url).await;
    let (mut server, base) = start_server(&db_url).await;
    let client = client();
    let slots = Arc::new(free_slots_at(&client, &base, "TST").await);
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, base, slots, acked, stop, next) = (
            client.clone(),
            base.clone(),
            slots.clone(),
            acked.clone(),
            stop.clone(),
            next.clone(),
        );
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let start = &slots[(n as usize / 40) % slots.len()];
                let body = booking_body("TST", start, vec![person(n)]);
                let r = client
                    .post(format!("{base}/api/v1/bookings"))
                    .json(&body)
                    .send()
                    .await;
                let Ok(r) = r else { continue };
                if r.status().as_u16() == 201
                    && let Ok(v) = r.json::<serde_json::Value>().await
                {
                    let code = v["code"].as_str().unwrap().to_string();
                    let token = v["manage_token"].as_str().unwrap().to_string();
                    acked.lock().unwrap().push((code, token));
                }
            }
        });
    }
    // Let the load run, then kill the server in the middle of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 300 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.start_kill().unwrap(); // SIGKILL
    server.wait().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "the load ran: {} acknowledged",
        acked.len()
    );

    // Restart on the same database: every acknowledged booking is there.
    let (_server, base) = start_server(&db_url).await;
    let mut missing = Vec::new();
    for (code, token) in &acked {
        let r = client
            .get(format!("{base}/api/v1/bookings/{code}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() != 200 {
            missing.push(code.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "acknowledged bookings lost: {missing:?}"
    );
    let store = Store::open(&db_url).await.unwrap();
    assert!(
        store.check_slots().await.unwrap().is_empty(),
        "no slot over capacity or miscounted"
    );
    assert!(store.active_bookings().await.unwrap() >= acked.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_never_oversell() {
    let db_url = testing::fresh_url(TestDb::Postgres).await.unwrap();
    import_test_offices(&db_url).await;
    let (_a, base_a) = start_server(&db_url).await;
    let (_b, base_b) = start_server(&db_url).await;
    let client = client();
    let start = free_slots_at(&client, &base_a, "TST").await.remove(0);
    let mut set = tokio::task::JoinSet::new();
    for n in 0..600u64 {
        let base = if n % 2 == 0 {
            base_a.clone()
        } else {
            base_b.clone()
        };
        let (client, start) = (client.clone(), start.clone());
        set.spawn(async move {
            let r = client
                .post(format!("{base}/api/v1/bookings"))
                .json(&booking_body("TST", &start, vec![person(n)]))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 50);
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        550,
        "{statuses:?}"
    );
    let store = Store::open(&db_url).await.unwrap();
    assert_eq!(store.active_bookings().await.unwrap(), 50);
    assert!(store.check_slots().await.unwrap().is_empty());
}

/// Two nodes on one database and one mail server: the node holding the
/// outbox's lease is killed with SIGKILL; the other takes the work over
/// once the lease runs out, and every mail goes out once.
async fn killed_node_work_taken_over(db: TestDb) {
    let db_url = testing::fresh_url(db).await.unwrap();
    import_test_offices(&db_url).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mails = crate::mail::start_smtp(listener);
    let flags = [
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        &port,
        "--smtp-security",
        "none",
        "--outbox-interval-ms",
        "50",
        "--worker-lease-ms",
        "1500",
    ];
    let client = client();
    let book = |base: String, n: u64| {
        let client = client.clone();
        async move {
            let start = free_slots_at(&client, &base, "TST").await.remove(0);
            let r = client
                .post(format!("{base}/api/v1/bookings"))
                .json(&booking_body("TST", &start, vec![person(n)]))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            let v: serde_json::Value = r.json().await.unwrap();
            v["code"].as_str().unwrap().to_string()
        }
    };
    let delivered = |n: usize| {
        let mails = mails.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while mails.lock().unwrap().len() < n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{n} mails never arrived"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    };
    // A starts alone and takes the outbox; B joins and sends nothing.
    let (mut a, base_a) = start_server_with(&db_url, &flags).await;
    let mut codes = vec![book(base_a.clone(), 0).await];
    delivered(1).await;
    let (_b, base_b) = start_server_with(&db_url, &flags).await;
    for n in 1..6 {
        codes.push(book(base_b.clone(), n).await);
    }
    delivered(6).await;
    // A dies holding the lease, once it recorded its mails as sent (a node
    // killed between sending and recording may leave its last batch to be
    // sent again, as docs/several-nodes.md says); B's bookings wait, then B
    // sends them.
    let store = Store::open(&db_url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.outbox_stats().await.unwrap().sent != 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never recorded its mails"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    a.start_kill().unwrap();
    a.wait().await.unwrap();
    for n in 6..12 {
        codes.push(book(base_b.clone(), n).await);
    }
    delivered(12).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.outbox_stats().await.unwrap().sent != 12 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all recorded as sent"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 12, "each mail once");
    for code in &codes {
        let n = mails
            .iter()
            .filter(|(_, data)| data.replace("=\r\n", "").contains(code.as_str()))
            .count();
        assert_eq!(n, 1, "booking {code}'s mail went out {n} times");
    }
}
