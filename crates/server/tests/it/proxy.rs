//! Behind a reverse proxy: the client's address for the rate limits comes
//! from `X-Forwarded-For` only when a trusted proxy sent it. (The browser
//! tests run every flow through a real proxy that forwards its own Host.)

use crate::support::*;
use pasaporte_store::testing::TestDb;
use std::net::IpAddr;

/// A client on its own loopback address.
fn client_at(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// The statuses of `n` booking writes (empty bodies: refused as bad input
/// when under the limit, 429 over it) sent by `client` with `forwarded_for`.
async fn writes(
    app: &TestApp,
    client: &reqwest::Client,
    forwarded_for: &str,
    n: usize,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let mut req = client
            .post(app.url("/api/v1/bookings"))
            .json(&serde_json::json!({}));
        if !forwarded_for.is_empty() {
            req = req.header("x-forwarded-for", forwarded_for);
        }
        statuses.push(req.send().await.unwrap().status().as_u16());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let app = spawn_app_limited(
        TestDb::Sqlite,
        no_smtp(),
        pasaporte::limits::LimitArgs {
            rate_client_per_min: 2,
            rate_client_burst: 2,
            trusted_proxies: "127.0.0.1".into(),
            ..pasaporte::limits::LimitArgs::off()
        },
    )
    .await;
    // Behind the trusted proxy (127.0.0.1), each citizen has a limit of its own.
    let proxy = client_at("127.0.0.1");
    assert_eq!(
        writes(&app, &proxy, "198.51.100.1", 3).await,
        [422, 422, 429]
    );
    assert_eq!(
        writes(&app, &proxy, "198.51.100.2", 2).await,
        [422, 422],
        "another citizen"
    );
    // A citizen's own forged hop, left of what the proxy appended, changes nothing.
    let forged = "203.0.113.77, 198.51.100.1";
    assert_eq!(writes(&app, &proxy, forged, 1).await, [429]);
    // From an untrusted peer the header is ignored: a new forged address per
    // request does not escape the limit.
    let direct = client_at("127.0.0.5");
    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses.extend(writes(&app, &direct, &format!("192.0.2.{n}"), 1).await);
    }
    assert_eq!(statuses, [422, 422, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trusted_proxies_setting_that_does_not_parse_stops_the_start() {
    let (_, url) = pasaporte_store::testing::fresh(TestDb::Sqlite)
        .await
        .unwrap();
    let e = pasaporte::serve(
        pasaporte::ServeArgs {
            db: pasaporte::DbArgs { database: url },
            keys: keys(),
            smtp: no_smtp(),
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            demo: false,
            work: pasaporte::WorkArgs::none(),
            limits: pasaporte::limits::LimitArgs {
                trusted_proxies: "10.0.0.0/8, proxy.internal".into(),
                ..pasaporte::limits::LimitArgs::off()
            },
        },
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("\"proxy.internal\" is neither an address nor a CIDR range"),
        "{e}"
    );
}
