//! `spawn_app`: the real service on port 0 with a fresh database, and a small
//! typed client.

use pasaporte::{DbArgs, KeyArgs, SmtpArgs};
use pasaporte_store::Store;
use pasaporte_store::testing::{self, TestDb};
use serde_json::{Value, json};
use std::net::SocketAddr;

pub const DATA_KEYS: &str = "k1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
pub const LOOKUP_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/// Test offices open around the clock (so a test finds a slot at any hour),
/// 50 people a slot, in two cities.
pub const TEST_OFFICES_CSV: &str = "\
code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days
TST,Oficina de pruebas,ministry,Bogotá,COL,America/Bogota,00:00-24:00,00:00-24:00,50,2400,00:00-24:00,30,30,60
TS2,Oficina de pruebas 2,department,Medellín,COL,America/Bogota,00:00-24:00,00:00-24:00,50,2400,00:00-24:00,30,30,60
";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
}

pub fn keys() -> KeyArgs {
    KeyArgs {
        data_keys: Some(DATA_KEYS.into()),
        lookup_key: Some(LOOKUP_KEY.into()),
        key_file: "/nonexistent".into(),
    }
}

pub fn no_smtp() -> SmtpArgs {
    SmtpArgs {
        smtp_host: None,
        smtp_port: 25,
        smtp_security: "none".into(),
        smtp_user: None,
        smtp_password: None,
        mail_from: "Citas <citas@pasaporte.test>".into(),
        outbox_interval_ms: 50,
        smtp_retry_ms: 100,
    }
}

pub async fn spawn_app(db: TestDb) -> TestApp {
    spawn_app_with(db, no_smtp()).await
}

pub async fn spawn_app_with(db: TestDb, smtp: SmtpArgs) -> TestApp {
    let (store, db_url) = testing::fresh(db).await.expect("fresh database");
    pasaporte::import_offices(&store, pasaporte::DEMO_OFFICES_CSV)
        .await
        .unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    spawn_on(store, db_url, smtp).await
}

/// Starts another server on an existing database.
pub async fn spawn_on(store: Store, db_url: String, smtp: SmtpArgs) -> TestApp {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let args = DbArgs {
        database: db_url.clone(),
    };
    tokio::spawn(async move {
        let r = pasaporte::serve(
            args,
            keys(),
            smtp,
            "127.0.0.1:0".parse().unwrap(),
            None,
            false,
            pasaporte::WorkArgs::none(),
            Some(tx),
        )
        .await;
        if let Err(e) = r {
            eprintln!("server stopped: {e:#}");
        }
    });
    let addr: SocketAddr = rx.await.expect("server started");
    TestApp {
        base: format!("http://{addr}"),
        client: client(),
        store,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

/// A person with a unique cédula derived from `n`.
pub fn person(n: u64) -> Value {
    json!({
        "document_type": "cedula_ciudadania",
        "document_number": format!("{}", 10_000_000 + n),
        "surnames": "Muñoz García",
        "given_names": "Ana María",
        "birth_date": "1985-04-02",
    })
}

pub fn minor(n: u64) -> Value {
    json!({
        "document_type": "tarjeta_identidad",
        "document_number": format!("{}", 1_100_000_000 + n),
        "surnames": "Muñoz Pérez",
        "given_names": "Tomás",
        "birth_date": "2016-09-30",
    })
}

pub fn booking_body(office: &str, start: &str, applicants: Vec<Value>) -> Value {
    json!({ "office": office, "start": start, "applicants": applicants, "email": "ana@example.co", "phone": "+57 300 123 4567" })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn book(&self, body: &Value) -> (u16, Value) {
        self.post("/api/v1/bookings", body).await
    }

    pub async fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Starts of the office's free slots at least two hours away, soonest first.
    pub async fn free_slots(&self, office: &str) -> Vec<String> {
        free_slots_at(&self.client, &self.base, office).await
    }
}

pub async fn free_slots_at(client: &reqwest::Client, base: &str, office: &str) -> Vec<String> {
    let v: Value = client
        .get(format!("{base}/api/v1/offices/{office}/slots?days=14"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let soon = pasaporte_core::jiff::Timestamp::now()
        + pasaporte_core::jiff::SignedDuration::from_hours(2);
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["remaining"] == s["capacity"])
        .filter(|s| {
            s["start"]
                .as_str()
                .unwrap()
                .parse::<pasaporte_core::jiff::Timestamp>()
                .unwrap()
                > soon
        })
        .map(|s| s["start"].as_str().unwrap().to_string())
        .collect()
}

/// The slot's remaining seats as the API reports them.
pub async fn remaining(app: &TestApp, office: &str, start: &str) -> u64 {
    let (_, v) = app
        .get(&format!("/api/v1/offices/{office}/slots?days=14"))
        .await;
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["start"] == start)
        .unwrap()["remaining"]
        .as_u64()
        .unwrap()
}
