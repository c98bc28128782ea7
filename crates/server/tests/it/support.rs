//! `spawn_app`: the real service on port 0 with a fresh database, and a small
//! typed client.

use pasaporte::{DbArgs, KeyArgs, SmtpArgs};
use pasaporte_core::application::Role;
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
    spawn_app_limited(db, smtp, pasaporte::limits::LimitArgs::off()).await
}

/// A server with these rate limits on the citizens' booking writes.
pub async fn spawn_app_limited(
    db: TestDb,
    smtp: SmtpArgs,
    limits: pasaporte::limits::LimitArgs,
) -> TestApp {
    let (store, db_url) = testing::fresh(db).await.expect("fresh database");
    pasaporte::import_offices(&store, pasaporte::DEMO_OFFICES_CSV)
        .await
        .unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    spawn_on_limited(store, db_url, smtp, limits).await
}

/// Starts another server on an existing database.
pub async fn spawn_on(store: Store, db_url: String, smtp: SmtpArgs) -> TestApp {
    spawn_on_limited(store, db_url, smtp, pasaporte::limits::LimitArgs::off()).await
}

async fn spawn_on_limited(
    store: Store,
    db_url: String,
    smtp: SmtpArgs,
    limits: pasaporte::limits::LimitArgs,
) -> TestApp {
    spawn_on_work(store, db_url, smtp, limits, pasaporte::WorkArgs::none()).await
}

/// Starts a server on an existing database with these worker settings.
pub async fn spawn_on_work(
    store: Store,
    db_url: String,
    smtp: SmtpArgs,
    limits: pasaporte::limits::LimitArgs,
    work: pasaporte::WorkArgs,
) -> TestApp {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let args = DbArgs {
        database: db_url.clone(),
    };
    tokio::spawn(async move {
        let r = pasaporte::serve(
            pasaporte::ServeArgs {
                db: args,
                keys: keys(),
                smtp,
                listen: "127.0.0.1:0".parse().unwrap(),
                public_url: None,
                demo: false,
                work,
                limits,
            },
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

    /// A GET whose body is text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
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

/// The office workflow's outside parties, run as the project's simulators
/// on loopback, and the server wired to them.
pub struct World {
    pub app: TestApp,
    pub registry: pasaporte::registry::sim::RunningSim,
    pub payments: pasaporte::payments::RunningPaymentSim,
    pub payments_secret: Vec<u8>,
    pub audit_key: pasaporte_core::audit::CheckpointKey,
    /// The database the service runs on, for the command line.
    pub db_url: String,
}

pub const PAYMENTS_SECRET: &str = "test-payments-secret-0123456789abcdef";
pub const AUDIT_SEED: &str = "0101010101010101010101010101010101010101010101010101010101010101";

/// A free loopback port (bound then released: the server binds it next).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub async fn spawn_world(db: TestDb) -> World {
    spawn_world_with(db, |_| {}).await
}

/// [`spawn_world`] with the workers' settings changed by `tweak`.
pub async fn spawn_world_with(db: TestDb, tweak: impl FnOnce(&mut pasaporte::WorkArgs)) -> World {
    use pasaporte::payments::sim::{PaymentSimConfig, spawn_payment_sim};
    use pasaporte::registry::sim::{SimConfig, spawn_registry_sim};
    let registry = spawn_registry_sim(SimConfig::default()).await.unwrap();
    let addr = free_addr();
    let mut cfg = PaymentSimConfig::local(
        format!("http://{addr}/api/v1/payments/callback"),
        PAYMENTS_SECRET.as_bytes().to_vec(),
    );
    cfg.delivery_backoff_first = std::time::Duration::from_millis(50);
    let payments = spawn_payment_sim(cfg).await.unwrap();
    let mut work = pasaporte::WorkArgs::none();
    work.registry.registry_url = Some(registry.url());
    work.registry.registry_timeout_ms = 500;
    work.registry.registry_attempts = 2;
    work.registry.registry_backoff_ms = 10;
    work.registry.registry_cool_down_ms = 300;
    work.payments.payments_url = Some(payments.url());
    work.payments.payments_secret = Some(PAYMENTS_SECRET.into());
    work.payments.payments_attempts = 2;
    work.payments.payments_timeout_ms = 1000;
    work.audit_signing_key = Some(AUDIT_SEED.into());
    work.worker_interval_ms = 50;
    work.audit_checkpoint_ms = 200;
    tweak(&mut work);
    let (store, db_url) = testing::fresh(db).await.expect("fresh database");
    pasaporte::import_offices(&store, pasaporte::DEMO_OFFICES_CSV)
        .await
        .unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let args = DbArgs {
        database: db_url.clone(),
    };
    tokio::spawn(async move {
        let r = pasaporte::serve(
            pasaporte::ServeArgs {
                db: args,
                keys: keys(),
                smtp: no_smtp(),
                listen: addr,
                public_url: None,
                demo: false,
                work,
                limits: pasaporte::limits::LimitArgs::off(),
            },
            Some(tx),
        )
        .await;
        if let Err(e) = r {
            eprintln!("server stopped: {e:#}");
        }
    });
    let addr: SocketAddr = rx.await.expect("server started");
    let audit_key = pasaporte_core::audit::CheckpointSigner::from_seed_hex(AUDIT_SEED)
        .unwrap()
        .public();
    World {
        app: TestApp {
            base: format!("http://{addr}"),
            client: client(),
            store,
        },
        registry,
        payments,
        payments_secret: PAYMENTS_SECRET.as_bytes().to_vec(),
        audit_key,
        db_url,
    }
}

pub const STAFF_PASSWORD: &str = "caballo cuaderno lluvia tenaz";

/// A signed-in staff member of the API.
pub struct Staff {
    pub id: String,
    pub cookie: String,
    pub csrf: String,
    pub totp_secret: String,
}

/// Creates a staff account and signs it in through the API.
pub async fn staff(app: &TestApp, username: &str, role: Role, offices: &[&str]) -> Staff {
    use pasaporte::auth::{self, NewStaff, totp};
    let created = auth::create_staff(
        &app.store,
        &keys().keyring().unwrap(),
        NewStaff {
            username: username.into(),
            display_name: None,
            role,
            offices: offices.iter().map(|s| s.to_string()).collect(),
            password: STAFF_PASSWORD.into(),
        },
        auth::now_ms(),
    )
    .await
    .unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = totp::code_at(&created.totp_secret_base32, now_s).unwrap();
    let r = app
        .client
        .post(app.url("/api/v1/staff/session"))
        .json(&json!({ "username": username, "password": STAFF_PASSWORD, "totp": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign-in of {username}");
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("pasaporte_staff="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    Staff {
        id: created.id,
        totp_secret: created.totp_secret_base32,
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    }
}

impl TestApp {
    /// A staff request: the session cookie, and the CSRF header on writes.
    pub async fn staff_call(
        &self,
        who: &Staff,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.clone(), self.url(path))
            .header(reqwest::header::COOKIE, &who.cookie);
        if method != reqwest::Method::GET {
            req = req.header("x-csrf-token", &who.csrf);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A console page as `who` sees it: the status and the HTML.
    pub async fn staff_page(&self, who: &Staff, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(self.url(path))
            .header(reqwest::header::COOKIE, &who.cookie)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// The start of the office's next slot with `seats` free (for check-in,
    /// which opens two hours before).
    pub async fn next_slot(&self, office: &str, seats: u64) -> String {
        let v: Value = self
            .client
            .get(self.url(&format!("/api/v1/offices/{office}/slots?days=2")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let now = pasaporte_core::jiff::Timestamp::now();
        v["slots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["remaining"].as_u64().unwrap() >= seats)
            .map(|s| s["start"].as_str().unwrap().to_string())
            .find(|s| s.parse::<pasaporte_core::jiff::Timestamp>().unwrap() > now)
            .expect("a slot today")
    }
}
