//! One deployment, one set of keys: a node whose keys differ from those the
//! database records refuses to start and changes nothing; a node without
//! keys makes no key file for a database that holds data; keys rotate node
//! by node.

use crate::both_databases;
use crate::support::*;
use pasaporte::{DbArgs, KeyArgs};
use pasaporte_store::testing::TestDb;
use reqwest::Method;

both_databases!(
    a_node_with_other_keys_refuses_and_changes_nothing,
    keys_rotate_node_by_node,
);

const OTHER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const NEW_KEY: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn keys_of(data: &str, lookup: &str) -> KeyArgs {
    KeyArgs {
        data_keys: Some(data.into()),
        lookup_key: Some(lookup.into()),
        key_file: "/nonexistent".into(),
    }
}

/// Starts a node on `db_url`: its address, or why it refused to start.
async fn start(db_url: &str, keys: KeyArgs) -> Result<TestApp, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let args = pasaporte::ServeArgs {
        db: DbArgs {
            database: db_url.to_string(),
        },
        keys,
        smtp: no_smtp(),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        demo: false,
        work: pasaporte::WorkArgs::none(),
        limits: pasaporte::limits::LimitArgs::off(),
    };
    let server = tokio::spawn(pasaporte::serve(args, Some(tx)));
    match rx.await {
        Ok(addr) => Ok(TestApp {
            base: format!("http://{addr}"),
            client: client(),
            store: pasaporte::open_store(&DbArgs {
                database: db_url.to_string(),
            })
            .await
            .unwrap(),
        }),
        Err(_) => Err(format!("{:#}", server.await.unwrap().unwrap_err())),
    }
}

/// A booking made on `app`: its code and manage token.
async fn book(app: &TestApp, n: u64) -> (String, String) {
    let start = app.free_slots("TST").await.remove(0);
    let (s, v) = app
        .book(&booking_body("TST", &start, vec![person(n)]))
        .await;
    assert_eq!(s, 201, "{v}");
    (
        v["code"].as_str().unwrap().to_string(),
        v["manage_token"].as_str().unwrap().to_string(),
    )
}

/// The booking `code` as `app` reads it: its first applicant's surnames.
async fn surnames(app: &TestApp, (code, token): &(String, String)) -> String {
    let (s, v) = app
        .authed(
            Method::GET,
            &format!("/api/v1/bookings/{code}"),
            token,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["applicants"][0]["surnames"].as_str().unwrap().to_string()
}

async fn a_node_with_other_keys_refuses_and_changes_nothing(db: TestDb) {
    let (store, url) = pasaporte_store::testing::fresh(db).await.unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    let first = start(&url, keys()).await.expect("the first node starts");
    let booked = book(&first, 1).await;
    let recorded = store.recorded_keys().await.unwrap();
    assert_eq!(recorded.len(), 2, "the data key and the lookup key");

    let lookup = start(&url, keys_of(DATA_KEYS, OTHER_KEY)).await;
    let lookup = lookup.err().expect("another lookup key is refused");
    assert!(lookup.contains("PASAPORTE_LOOKUP_KEY"), "{lookup}");
    let data = start(&url, keys_of(&format!("k1:{OTHER_KEY}"), LOOKUP_KEY)).await;
    let data = data.err().expect("another k1 is refused");
    assert!(data.contains("data key k1 differs"), "{data}");
    for message in [&lookup, &data] {
        assert!(!message.contains(OTHER_KEY) && !message.contains(LOOKUP_KEY));
    }

    // No keys given and no key file: none is made for a database with data.
    let key_file = std::env::temp_dir().join(format!(
        "pasaporte-keys-{}-{}.keys",
        std::process::id(),
        pasaporte::auth::now_ms()
    ));
    let none = start(
        &url,
        KeyArgs {
            data_keys: None,
            lookup_key: None,
            key_file: key_file.clone(),
        },
    )
    .await
    .err()
    .expect("a node without the deployment's keys is refused");
    assert!(none.contains("PASAPORTE_DATA_KEYS"), "{none}");
    assert!(!key_file.exists(), "no key file was made");

    // Nothing changed: the same keys recorded, the booking still reads.
    assert_eq!(store.recorded_keys().await.unwrap(), recorded);
    let again = start(&url, keys())
        .await
        .expect("the right keys still start");
    assert_eq!(surnames(&again, &booked).await, "Muñoz García");
}

async fn keys_rotate_node_by_node(db: TestDb) {
    let (store, url) = pasaporte_store::testing::fresh(db).await.unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    let old = start(&url, keys()).await.unwrap();
    let before = book(&old, 1).await;
    // Step 1: every node gets k2 beside k1, k1 still sealing.
    let added = format!("{DATA_KEYS},k2:{NEW_KEY}");
    let adding = start(&url, keys_of(&added, LOOKUP_KEY)).await.unwrap();
    // A node not given k2 yet keeps working: k2 has sealed nothing.
    assert_eq!(old.get_text("/readyz").await.0, 200);
    start(&url, keys()).await.expect("k1 alone still starts");
    // Step 2: k2 seals, k1 still opens.
    let sealing = format!("k2:{NEW_KEY},{DATA_KEYS}");
    let rotated = start(&url, keys_of(&sealing, LOOKUP_KEY)).await.unwrap();
    let after = book(&rotated, 2).await;
    for node in [&adding, &rotated] {
        assert_eq!(surnames(node, &before).await, "Muñoz García");
    }
    assert_eq!(
        surnames(&rotated, &after).await,
        surnames(&adding, &after).await
    );
    // A node left with k1 alone would not open what k2 sealed: refused.
    let stale = start(&url, keys()).await.err().expect("k2 is required now");
    assert!(stale.contains("data key k2 has sealed"), "{stale}");
    // The node still running without k2 is no longer ready.
    let (status, body) = old.get_text("/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "keys differ from the deployment's")
    );
    assert_eq!(rotated.get_text("/readyz").await.0, 200);
    assert_eq!(store.recorded_keys().await.unwrap().len(), 3);
}
