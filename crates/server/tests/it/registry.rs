//! The civil registry adapter against the simulator over real loopback HTTP:
//! answers, timeouts and retries, the circuit breaker opening and closing, the
//! outage switch, and `pasaporte registry-sim` through the built binary.

use pasaporte::registry::sim::{SimConfig, SimStats, spawn_registry_sim};
use pasaporte::registry::{
    BreakerState, CapturedIdentity, CivilRegistry, HttpRegistry, Lookup, Mismatch, RegistryConfig,
    RegistryError, RegistryQuery, Sex, Verdict, check, compare,
};
use pasaporte_core::jiff::civil::date;
use pasaporte_core::person::{DocumentNumber, DocumentType};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Generous bound for anything a test waits on, on a loaded shared machine.
const WAIT_MAX: Duration = Duration::from_secs(20);

fn query(kind: DocumentType, number: &str) -> RegistryQuery {
    RegistryQuery {
        document_type: kind,
        document_number: DocumentNumber::parse(kind, number, "n").unwrap(),
    }
}

fn cedula(number: &str) -> RegistryQuery {
    query(DocumentType::CedulaCiudadania, number)
}

/// Short limits so the tests run in well under a second each.
fn config(url: String) -> RegistryConfig {
    RegistryConfig {
        url,
        timeout_ms: 1_000,
        attempts: 3,
        backoff_first_ms: 10,
        breaker_failures: 5,
        cool_down_ms: 300,
    }
}

async fn stats(base: &str) -> SimStats {
    reqwest::get(format!("{base}/admin/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn found_not_found_and_compared() {
    let sim = spawn_registry_sim(SimConfig::demo().unwrap())
        .await
        .unwrap();
    let reg = HttpRegistry::new(config(sim.url())).unwrap();

    let Lookup::Found(record) = reg.lookup(&cedula("52123456")).await.unwrap() else {
        panic!("the demo person is in the registry");
    };
    // Typed at the counter with other accents, case and spacing: a match.
    let captured = CapturedIdentity {
        surnames: "Muñoz  Garcia".into(),
        given_names: "ana maria".into(),
        birth_date: date(1985, 4, 2),
        birth_place: "Bogota, D.C.".into(),
        sex: Sex::F,
        nationality: "COL".into(),
    };
    assert_eq!(compare(&captured, &record), []);
    let wrong = CapturedIdentity {
        given_names: "Ana Lucía".into(),
        ..captured.clone()
    };
    assert_eq!(compare(&wrong, &record), [Mismatch::GivenNames]);
    // The worker's one call: lookup and compare.
    assert_eq!(
        check(&reg, &cedula("52123456"), &wrong).await,
        Ok(Verdict::Mismatch(vec![Mismatch::GivenNames]))
    );
    assert_eq!(
        check(&reg, &cedula("52123456"), &captured).await,
        Ok(Verdict::Match)
    );
    assert_eq!(
        check(&reg, &cedula("99999998"), &captured).await,
        Ok(Verdict::NotFound)
    );

    // The deceased and the cancelled document come back as such.
    let Lookup::Found(dead) = reg.lookup(&cedula("7123456")).await.unwrap() else {
        panic!("deceased person missing");
    };
    assert!(compare(&captured, &dead).contains(&Mismatch::Deceased));
    let Lookup::Found(cancelled) = reg.lookup(&cedula("52987654")).await.unwrap() else {
        panic!("cancelled document missing");
    };
    assert!(compare(&captured, &cancelled).contains(&Mismatch::DocumentCancelled));

    // A minor by tarjeta de identidad.
    let minor = query(DocumentType::TarjetaIdentidad, "1011223344");
    assert!(matches!(
        reg.lookup(&minor).await.unwrap(),
        Lookup::Found(_)
    ));

    assert_eq!(
        reg.lookup(&cedula("99999999")).await.unwrap(),
        Lookup::NotFound
    );

    // Tests seed the people they book.
    let (status, _) = post(
        &sim.url(),
        "/admin/persons",
        &json!({"document_type": "cedula_ciudadania", "document_number": "10000042",
                "surnames": "MUÑOZ GARCÍA", "given_names": "ANA MARÍA",
                "birth_date": "1985-04-02", "birth_place": "BOGOTÁ D.C.", "sex": "F",
                "nationality": "COL", "status": "alive", "document_cancelled": false}),
    )
    .await;
    assert_eq!(status, 201);
    let Lookup::Found(seeded) = reg.lookup(&cedula("10000042")).await.unwrap() else {
        panic!("the seeded person is found");
    };
    assert_eq!(compare(&captured, &seeded), []);
    let (status, body) = post(&sim.url(), "/admin/persons", &json!({"document_type": "x"})).await;
    assert_eq!(status, 400, "{body}");

    let s = stats(&sim.url()).await;
    assert_eq!(s.lookups_received, 9);
    assert_eq!(s.failures_injected, 0);
    let st = reg.status();
    assert_eq!(st.breaker, BreakerState::Closed);
    assert_eq!(st.consecutive_failures, 0);
    assert!(st.last_success_ms.is_some());
}

#[tokio::test]
async fn the_wire_protocol_is_as_documented() {
    let sim = spawn_registry_sim(SimConfig::demo().unwrap())
        .await
        .unwrap();
    let lookup = "/v1/persons/lookup";
    let (status, body) = post(
        &sim.url(),
        lookup,
        &json!({"document_type": "cedula_ciudadania", "document_number": "52123456"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"found": true, "person": {"surnames": "MUÑOZ GARCÍA", "given_names": "ANA MARÍA",
               "birth_date": "1985-04-02", "birth_place": "BOGOTÁ D.C.", "sex": "F",
               "nationality": "COL", "status": "alive", "document_cancelled": false}})
    );
    let (status, body) = post(
        &sim.url(),
        lookup,
        &json!({"document_type": "cedula_ciudadania", "document_number": "99999999"}),
    )
    .await;
    assert_eq!((status, body), (200, json!({"found": false})));
    let (status, body) = post(
        &sim.url(),
        lookup,
        &json!({"document_type": "cedula_ciudadania", "document_number": "0x"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(!body.to_string().contains("0x"), "{body}");
}

#[tokio::test]
async fn a_slow_registry_is_unavailable_after_the_retries() {
    let sim = spawn_registry_sim(SimConfig {
        latency_ms: 2_000,
        ..SimConfig::demo().unwrap()
    })
    .await
    .unwrap();
    let reg = HttpRegistry::new(RegistryConfig {
        timeout_ms: 250,
        ..config(sim.url())
    })
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        reg.lookup(&cedula("52123456")).await,
        Err(RegistryError::Unavailable { reason: "timeout" })
    );
    // Three attempts of 250 ms plus back-offs: each gave up before the
    // registry's 2 s answer.
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "{:?}",
        started.elapsed()
    );
    // The simulator counts each attempt when it arrives.
    assert_eq!(stats(&sim.url()).await.lookups_received, 3);
    let st = reg.status();
    assert_eq!(st.consecutive_failures, 1);
    assert_eq!(st.breaker, BreakerState::Closed);
    assert_eq!(st.last_success_ms, None);
}

#[tokio::test]
async fn the_breaker_opens_refuses_then_a_probe_closes_it() {
    let sim = spawn_registry_sim(SimConfig {
        failure_rate: 1.0,
        ..SimConfig::demo().unwrap()
    })
    .await
    .unwrap();
    let reg = HttpRegistry::new(config(sim.url())).unwrap();
    let q = cedula("52123456");
    for i in 1..=5 {
        assert_eq!(
            reg.lookup(&q).await,
            Err(RegistryError::Unavailable {
                reason: "server error (5xx)"
            }),
            "lookup {i}"
        );
    }
    let before = stats(&sim.url()).await;
    // Every 500 was retried: 5 lookups × 3 attempts.
    assert_eq!(before.lookups_received, 15);
    assert_eq!(before.failures_injected, 15);
    let st = reg.status();
    assert!(matches!(st.breaker, BreakerState::Open { .. }), "{st:?}");
    assert_eq!(st.consecutive_failures, 5);
    assert!(!st.is_available());

    // Open: refused at once, the registry not called.
    let Err(RegistryError::CircuitOpen { retry_after_ms }) = reg.lookup(&q).await else {
        panic!("the circuit is open");
    };
    assert!(retry_after_ms <= 300);
    assert_eq!(stats(&sim.url()).await, before);

    // The registry recovers; after the cool-down one probe goes through and
    // closes the circuit.
    let (status, _) = post(&sim.url(), "/admin/faults", &json!({"failure_rate": 0.0})).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + WAIT_MAX;
    let answer = loop {
        match reg.lookup(&q).await {
            Err(RegistryError::CircuitOpen { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other,
        }
    };
    assert!(matches!(answer, Ok(Lookup::Found(_))), "{answer:?}");
    assert_eq!(stats(&sim.url()).await.lookups_received, 16);
    let st = reg.status();
    assert_eq!(st.breaker, BreakerState::Closed);
    assert_eq!(st.consecutive_failures, 0);
    assert!(st.last_success_ms.is_some());
}

#[tokio::test]
async fn a_failed_probe_keeps_the_circuit_open() {
    let sim = spawn_registry_sim(SimConfig::demo().unwrap())
        .await
        .unwrap();
    sim.controls.set_down(true);
    let reg = HttpRegistry::new(RegistryConfig {
        attempts: 1,
        breaker_failures: 1,
        ..config(sim.url())
    })
    .unwrap();
    let q = cedula("52123456");
    assert!(matches!(
        reg.lookup(&q).await,
        Err(RegistryError::Unavailable { .. })
    ));
    let BreakerState::Open { since_ms } = reg.status().breaker else {
        panic!("open after one failure");
    };
    // Poll until the probe has gone through (and failed).
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        match reg.lookup(&q).await {
            Err(RegistryError::CircuitOpen { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => {
                assert!(
                    matches!(other, Err(RegistryError::Unavailable { .. })),
                    "{other:?}"
                );
                break;
            }
        }
    }
    assert_eq!(stats(&sim.url()).await.outage_refusals, 2);
    // Still open, and still "down since" the first failure.
    assert_eq!(reg.status().breaker, BreakerState::Open { since_ms });
}

#[tokio::test]
async fn the_outage_switch() {
    let sim = spawn_registry_sim(SimConfig::demo().unwrap())
        .await
        .unwrap();
    let reg = HttpRegistry::new(config(sim.url())).unwrap();
    let q = cedula("52123456");
    let (status, body) = post(&sim.url(), "/admin/outage", &json!({"down": true})).await;
    assert_eq!(status, 200);
    assert_eq!(body["down"], true);
    assert!(sim.controls.is_down());
    let (status, _) = post(
        &sim.url(),
        "/v1/persons/lookup",
        &json!({"document_type": "cedula_ciudadania", "document_number": "52123456"}),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(
        reg.lookup(&q).await,
        Err(RegistryError::Unavailable {
            reason: "service unavailable (503)"
        })
    );
    let s = stats(&sim.url()).await;
    assert_eq!((s.lookups_received, s.outage_refusals), (4, 4));

    let (status, _) = post(&sim.url(), "/admin/outage", &json!({"down": false})).await;
    assert_eq!(status, 200);
    assert!(matches!(reg.lookup(&q).await, Ok(Lookup::Found(_))));
    assert_eq!(reg.status().consecutive_failures, 0);
}

/// A 4xx is an answer, not an outage: no retry, no strike against the breaker.
#[tokio::test]
async fn client_errors_are_not_retried() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/v1/persons/lookup",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                (axum::http::StatusCode::FORBIDDEN, "no")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let reg = HttpRegistry::new(config(format!("http://{addr}"))).unwrap();
    let r = reg.lookup(&cedula("52123456")).await;
    assert!(matches!(r, Err(RegistryError::Protocol(_))), "{r:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(reg.status().consecutive_failures, 0);

    // A wrong URL (a bare 404) is not "the person does not exist".
    let sim = spawn_registry_sim(SimConfig::demo().unwrap())
        .await
        .unwrap();
    let wrong = HttpRegistry::new(config(format!("{}/elsewhere", sim.url()))).unwrap();
    let r = wrong.lookup(&cedula("99999999")).await;
    assert!(matches!(r, Err(RegistryError::Protocol(_))), "{r:?}");
    server.abort();
}

#[tokio::test]
async fn a_registry_that_is_not_there_is_unavailable() {
    // Bind then drop, so the port is (very likely) closed.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let reg = HttpRegistry::new(config(format!("http://{addr}"))).unwrap();
    let r = reg.lookup(&cedula("52123456")).await;
    assert!(matches!(r, Err(RegistryError::Unavailable { .. })), "{r:?}");
}

#[tokio::test]
async fn the_cli_prints_its_address_and_serves() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pasaporte"))
        .args([
            "registry-sim",
            "--listen",
            "127.0.0.1:0",
            "--latency-ms",
            "5",
            "--jitter-ms",
            "5",
            "--failure-rate",
            "0",
            "--seed",
            "1",
        ])
        .env("PASAPORTE_LOG", "off")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT_MAX, lines.next_line())
        .await
        .expect("the simulator prints its address")
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("registry simulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(stats(&url).await.persons >= 40);
    let reg = HttpRegistry::new(config(url)).unwrap();
    assert!(matches!(
        reg.lookup(&cedula("52123456")).await,
        Ok(Lookup::Found(_))
    ));
    child.kill().await.unwrap();
}

/// Half-open lets one probe through, however many lookups arrive together.
#[tokio::test]
async fn half_open_lets_exactly_one_probe_through() {
    use std::sync::Arc;
    let sim = spawn_registry_sim(SimConfig {
        failure_rate: 1.0,
        ..SimConfig::demo().unwrap()
    })
    .await
    .unwrap();
    let reg = Arc::new(
        HttpRegistry::new(RegistryConfig {
            attempts: 1,
            breaker_failures: 1,
            cool_down_ms: 200,
            ..config(sim.url())
        })
        .unwrap(),
    );
    let q = cedula("52123456");
    assert!(reg.lookup(&q).await.is_err());
    assert!(matches!(reg.status().breaker, BreakerState::Open { .. }));
    sim.controls.set_failure_rate(0.0).unwrap();
    // A slow answer (within the 1 s timeout) keeps the probe in flight while
    // the others arrive.
    sim.controls.set_latency(500, 0).unwrap();
    let deadline = Instant::now() + WAIT_MAX;
    while reg.status().breaker != BreakerState::HalfOpen {
        assert!(Instant::now() < deadline, "never half-open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let reg = reg.clone();
        let q = q.clone();
        tasks.spawn(async move { reg.lookup(&q).await });
    }
    let (mut found, mut refused) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(Lookup::Found(_)) => found += 1,
            Err(RegistryError::CircuitOpen { .. }) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((found, refused), (1, 9));
    assert_eq!(stats(&sim.url()).await.lookups_received, 2);
    assert_eq!(reg.status().breaker, BreakerState::Closed);
}
