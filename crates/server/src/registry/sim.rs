//! A civil registry simulator served over local HTTP, for development
//! (`pasaporte registry-sim`) and tests ([`spawn_registry_sim`]). It speaks the
//! protocol [`super::HttpRegistry`] uses and injects the faults the adapter
//! must survive: latency, random failures, outages.
//!
//! Protocol:
//! - `POST /v1/persons/lookup` with `{"document_type":"cedula_ciudadania",
//!   "document_number":"52123456"}` answers 200 `{"found":true,"person":
//!   {"surnames","given_names","birth_date":"YYYY-MM-DD","birth_place",
//!   "sex":"F|M|X","nationality":"COL","status":"alive|deceased",
//!   "document_cancelled":false}}` or 200 `{"found":false}`; 400 for a
//!   malformed request; 503 while the registry is down; 500 for an injected
//!   failure. Colombian documents share one number space (a registro civil's
//!   NUIP carries to the tarjeta and the cédula), so the document type does
//!   not split the lookup.
//!
//! Administration (same port, simulator only):
//! - `POST /admin/outage {"down":true|false}`: switch the outage; answers the stats.
//! - `POST /admin/faults {"latency_ms"?,"jitter_ms"?,"failure_rate"?}`: change faults.
//! - `POST /admin/persons` with a person and its `document_type`,
//!   `document_number` (the CSV's columns as JSON): add or replace; 201.
//! - `GET /admin/stats`: `{"lookups_received","failures_injected",
//!   "outage_refusals","persons","down"}`.
//!
//! The data set is a CSV file with the columns of `data/registry-demo.csv`.
//! Latency is `latency_ms` plus a random `0..=jitter_ms`; each lookup fails
//! (500) with probability `failure_rate`. The randomness comes from `seed`, so
//! a run repeats. Every control is also a method of [`SimControls`].

use super::wire::{Entry, LookupRequest, LookupResponse, Person};
use super::{RegistryQuery, RegistryRecord, SplitMix64};
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pasaporte_core::person::{Document, DocumentNumber, DocumentType};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// The demo data set, compiled in so `registry-sim` works from any folder.
pub const DEMO_REGISTRY_CSV: &str = include_str!("../../../../data/registry-demo.csv");
/// Largest request body: a lookup or one person is well under 1 KiB.
pub const BODY_BYTES_MAX: usize = 16 * 1024;
/// Most persons the simulator holds (CSV plus additions): it lives in memory.
pub const PERSONS_MAX: usize = 1_000_000;
/// Longest simulated latency (fixed plus jitter): beyond a minute no client
/// waits anyway, and an unbounded sleep would be a typing mistake.
pub const LATENCY_MS_MAX: u64 = 60_000;
/// The columns of the data set, in order.
pub const CSV_COLUMNS: [&str; 10] = [
    "document_type",
    "document_number",
    "surnames",
    "given_names",
    "birth_date",
    "birth_place",
    "sex",
    "nationality",
    "status",
    "document_cancelled",
];

/// How a simulator starts. `Default`: port 0 on loopback, no persons, no
/// faults, seed 1.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub persons: Vec<(RegistryQuery, RegistryRecord)>,
    pub latency_ms: u64,
    pub jitter_ms: u64,
    pub failure_rate: f64,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            persons: Vec::new(),
            latency_ms: 0,
            jitter_ms: 0,
            failure_rate: 0.0,
            seed: 1,
        }
    }
}

impl SimConfig {
    /// The default configuration with the demo data set.
    pub fn demo() -> anyhow::Result<Self> {
        Ok(Self {
            persons: parse_registry_csv(DEMO_REGISTRY_CSV)?,
            ..Self::default()
        })
    }
}

/// Parses a data set (columns [`CSV_COLUMNS`], a header first, no quoting;
/// blank lines and lines starting with `#` skipped). Errors name the line and
/// column, never the value.
pub fn parse_registry_csv(text: &str) -> anyhow::Result<Vec<(RegistryQuery, RegistryRecord)>> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (_, header) = lines.next().context("the registry CSV is empty")?;
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    anyhow::ensure!(
        header == CSV_COLUMNS,
        "the registry CSV header must be: {}",
        CSV_COLUMNS.join(",")
    );
    let mut out = Vec::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        anyhow::ensure!(
            f.len() == CSV_COLUMNS.len(),
            "line {n}: expected {} columns, found {}",
            CSV_COLUMNS.len(),
            f.len()
        );
        anyhow::ensure!(out.len() < PERSONS_MAX, "more than {PERSONS_MAX} persons");
        let entry = Entry {
            document_type: f[0].to_owned(),
            document_number: f[1].to_owned(),
            person: Person {
                surnames: f[2].to_owned(),
                given_names: f[3].to_owned(),
                birth_date: f[4].to_owned(),
                birth_place: f[5].to_owned(),
                sex: f[6].to_owned(),
                nationality: f[7].to_owned(),
                status: f[8].to_owned(),
                document_cancelled: match f[9] {
                    "true" => true,
                    "false" => false,
                    _ => anyhow::bail!("line {n}: document_cancelled must be true or false"),
                },
            },
        };
        out.push(
            entry_to_pair(&entry).map_err(|field| anyhow::anyhow!("line {n}: invalid {field}"))?,
        );
    }
    Ok(out)
}

fn entry_to_pair(e: &Entry) -> Result<(RegistryQuery, RegistryRecord), &'static str> {
    let q = LookupRequest {
        document_type: e.document_type.clone(),
        document_number: e.document_number.clone(),
    }
    .to_query()?;
    let r = e.person.to_record()?;
    if r.surnames.trim().is_empty() {
        return Err("surnames");
    }
    if r.given_names.trim().is_empty() {
        return Err("given_names");
    }
    Ok((q, r))
}

/// The key persons are found by: Colombian documents share one number space.
fn key(document_type: DocumentType, number: &DocumentNumber) -> String {
    Document {
        kind: document_type,
        number: number.clone(),
    }
    .identity_text()
}

/// What the simulator has seen, for tests and the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    pub lookups_received: u64,
    pub failures_injected: u64,
    pub outage_refusals: u64,
    pub persons: u64,
    pub down: bool,
}

#[derive(Clone, Copy, Debug)]
struct Faults {
    latency_ms: u64,
    jitter_ms: u64,
    failure_rate: f64,
}

struct SimState {
    persons: RwLock<HashMap<String, RegistryRecord>>,
    down: AtomicBool,
    faults: Mutex<Faults>,
    rng: Mutex<SplitMix64>,
    lookups_received: AtomicU64,
    failures_injected: AtomicU64,
    outage_refusals: AtomicU64,
}

/// The simulator's switches, shared by its HTTP handlers and the process
/// that started it.
#[derive(Clone)]
pub struct SimControls {
    state: Arc<SimState>,
}

impl SimControls {
    fn new(config: &SimConfig) -> anyhow::Result<Self> {
        let controls = Self {
            state: Arc::new(SimState {
                persons: RwLock::new(HashMap::new()),
                down: AtomicBool::new(false),
                faults: Mutex::new(Faults {
                    latency_ms: 0,
                    jitter_ms: 0,
                    failure_rate: 0.0,
                }),
                rng: Mutex::new(SplitMix64::new(config.seed)),
                lookups_received: AtomicU64::new(0),
                failures_injected: AtomicU64::new(0),
                outage_refusals: AtomicU64::new(0),
            }),
        };
        controls.set_latency(config.latency_ms, config.jitter_ms)?;
        controls.set_failure_rate(config.failure_rate)?;
        for (q, r) in &config.persons {
            controls.add_person(q, r.clone())?;
        }
        Ok(controls)
    }

    /// Takes the registry down (503 to every lookup) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.state.down.load(Ordering::SeqCst)
    }

    /// The share of lookups answered 500, from 0 to 1.
    pub fn set_failure_rate(&self, rate: f64) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&rate),
            "the failure rate is between 0 and 1"
        );
        self.faults().failure_rate = rate;
        Ok(())
    }

    /// Each lookup waits `latency_ms` plus a random `0..=jitter_ms`.
    pub fn set_latency(&self, latency_ms: u64, jitter_ms: u64) -> anyhow::Result<()> {
        anyhow::ensure!(
            latency_ms.saturating_add(jitter_ms) <= LATENCY_MS_MAX,
            "latency plus jitter is at most {LATENCY_MS_MAX} ms"
        );
        let mut f = self.faults();
        f.latency_ms = latency_ms;
        f.jitter_ms = jitter_ms;
        Ok(())
    }

    /// Adds a person, or replaces the one with the same document.
    pub fn add_person(&self, q: &RegistryQuery, r: RegistryRecord) -> anyhow::Result<()> {
        let mut persons = self
            .state
            .persons
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let k = key(q.document_type, &q.document_number);
        anyhow::ensure!(
            persons.len() < PERSONS_MAX || persons.contains_key(&k),
            "the simulator holds at most {PERSONS_MAX} persons"
        );
        persons.insert(k, r);
        Ok(())
    }

    pub fn stats(&self) -> SimStats {
        let persons = self
            .state
            .persons
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        SimStats {
            lookups_received: self.state.lookups_received.load(Ordering::SeqCst),
            failures_injected: self.state.failures_injected.load(Ordering::SeqCst),
            outage_refusals: self.state.outage_refusals.load(Ordering::SeqCst),
            persons: u64::try_from(persons).unwrap_or(u64::MAX),
            down: self.is_down(),
        }
    }

    // The locks below guard plain values updated in one assignment, so a
    // poisoned lock still holds a consistent value.
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.state
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// This lookup's delay and whether it fails, drawn from the seeded generator.
    fn draw(&self) -> (Duration, bool) {
        let f = *self.faults();
        let mut rng = self
            .state
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let jitter = if f.jitter_ms > 0 {
            rng.up_to(f.jitter_ms)
        } else {
            0
        };
        let fail = f.failure_rate > 0.0 && rng.unit() < f.failure_rate;
        (Duration::from_millis(f.latency_ms + jitter), fail)
    }

    fn find(&self, q: &RegistryQuery) -> Option<RegistryRecord> {
        self.state
            .persons
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key(q.document_type, &q.document_number))
            .cloned()
    }
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({ "error": msg }))).into_response()
}

async fn lookup(State(c): State<SimControls>, body: Bytes) -> Response {
    c.state.lookups_received.fetch_add(1, Ordering::SeqCst);
    if c.is_down() {
        c.state.outage_refusals.fetch_add(1, Ordering::SeqCst);
        return error(StatusCode::SERVICE_UNAVAILABLE, "registry unavailable");
    }
    let (delay, fail) = c.draw();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if fail {
        c.state.failures_injected.fetch_add(1, Ordering::SeqCst);
        return error(StatusCode::INTERNAL_SERVER_ERROR, "injected failure");
    }
    let req: LookupRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected document_type and document_number",
            );
        }
    };
    let q = match req.to_query() {
        Ok(q) => q,
        Err(field) => return error(StatusCode::BAD_REQUEST, &format!("invalid {field}")),
    };
    let answer = match c.find(&q) {
        Some(r) => LookupResponse {
            found: true,
            person: Some(Person::from_record(&r)),
        },
        None => LookupResponse {
            found: false,
            person: None,
        },
    };
    axum::Json(answer).into_response()
}

#[derive(Deserialize)]
struct OutageRequest {
    down: bool,
}

async fn outage(State(c): State<SimControls>, body: Bytes) -> Response {
    match serde_json::from_slice::<OutageRequest>(&body) {
        Ok(r) => {
            c.set_down(r.down);
            axum::Json(c.stats()).into_response()
        }
        Err(_) => error(StatusCode::BAD_REQUEST, "expected {\"down\": true|false}"),
    }
}

#[derive(Deserialize)]
struct FaultsRequest {
    latency_ms: Option<u64>,
    jitter_ms: Option<u64>,
    failure_rate: Option<f64>,
}

async fn faults(State(c): State<SimControls>, body: Bytes) -> Response {
    let Ok(r) = serde_json::from_slice::<FaultsRequest>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected latency_ms, jitter_ms or failure_rate",
        );
    };
    let now = *c.faults();
    let applied = c
        .set_latency(
            r.latency_ms.unwrap_or(now.latency_ms),
            r.jitter_ms.unwrap_or(now.jitter_ms),
        )
        .and_then(|()| c.set_failure_rate(r.failure_rate.unwrap_or(now.failure_rate)));
    match applied {
        Ok(()) => axum::Json(c.stats()).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn add_person(State(c): State<SimControls>, body: Bytes) -> Response {
    let Ok(entry) = serde_json::from_slice::<Entry>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected the columns of the data set",
        );
    };
    let (q, r) = match entry_to_pair(&entry) {
        Ok(p) => p,
        Err(field) => return error(StatusCode::BAD_REQUEST, &format!("invalid {field}")),
    };
    match c.add_person(&q, r) {
        Ok(()) => (StatusCode::CREATED, axum::Json(c.stats())).into_response(),
        Err(e) => error(StatusCode::INSUFFICIENT_STORAGE, &e.to_string()),
    }
}

async fn stats(State(c): State<SimControls>) -> Response {
    axum::Json(c.stats()).into_response()
}

/// The simulator's routes.
pub fn router(controls: SimControls) -> Router {
    Router::new()
        .route("/v1/persons/lookup", post(lookup))
        .route("/admin/outage", post(outage))
        .route("/admin/faults", post(faults))
        .route("/admin/persons", post(add_person))
        .route("/admin/stats", get(stats))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(controls)
}

/// A simulator serving in the background. Dropping it stops accepting
/// connections (connections already open are served until they close): for an
/// outage use [`SimControls::set_down`].
pub struct RunningSim {
    pub addr: SocketAddr,
    pub controls: SimControls,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// The base URL to give [`super::RegistryConfig`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `config.listen` (port 0 picks a free one) and serves in the background.
pub async fn spawn_registry_sim(config: SimConfig) -> anyhow::Result<RunningSim> {
    let controls = SimControls::new(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = router(controls.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "registry simulator stopped");
        }
    });
    Ok(RunningSim {
        addr,
        controls,
        task,
    })
}

/// `pasaporte registry-sim`.
#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(
        long,
        env = "PASAPORTE_REGISTRY_SIM_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: SocketAddr,
    /// The data set (columns of data/registry-demo.csv); without it, the demo set.
    #[arg(long, env = "PASAPORTE_REGISTRY_SIM_DATA")]
    pub data: Option<PathBuf>,
    /// Fixed latency of each lookup, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra latency, 0 to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Share of lookups answered 500 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub failure_rate: f64,
    /// Seed of the latency and failure draws, so runs repeat.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let persons = match &args.data {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            parse_registry_csv(&text).with_context(|| format!("{}", path.display()))?
        }
        None => parse_registry_csv(DEMO_REGISTRY_CSV)?,
    };
    let n = persons.len();
    let sim = spawn_registry_sim(SimConfig {
        listen: args.listen,
        persons,
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        failure_rate: args.failure_rate,
        seed: args.seed,
    })
    .await?;
    tracing::info!(addr = %sim.addr, persons = n, "registry simulator listening");
    println!("registry simulator listening on {}", sim.url());
    crate::shutdown_signal().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Sex, VitalStatus};
    use super::*;

    #[test]
    fn the_demo_data_set_parses() {
        let persons = parse_registry_csv(DEMO_REGISTRY_CSV).unwrap();
        assert!(persons.len() >= 40, "{}", persons.len());
        let has = |f: &dyn Fn(&(RegistryQuery, RegistryRecord)) -> bool| persons.iter().any(f);
        assert!(has(&|(_, r)| r.status == VitalStatus::Deceased));
        assert!(has(&|(_, r)| r.document_cancelled));
        assert!(has(
            &|(q, _)| q.document_type == DocumentType::TarjetaIdentidad
        ));
        assert!(has(&|(q, _)| q.document_type == DocumentType::RegistroCivil));
        assert!(has(&|(_, r)| r.surnames.contains('Ñ')));
        assert!(has(&|(_, r)| r.sex == Sex::X));
        // No two persons share a document (they would shadow each other).
        let keys: std::collections::HashSet<_> = persons
            .iter()
            .map(|(q, _)| key(q.document_type, &q.document_number))
            .collect();
        assert_eq!(keys.len(), persons.len());
    }

    #[test]
    fn bad_rows_name_the_line_and_field_not_the_value() {
        let header = CSV_COLUMNS.join(",");
        for (row, expected) in [
            (
                "cedula_ciudadania,52123456,PÉREZ,ANA,1985-13-02,BOGOTÁ,F,COL,alive,false",
                "line 2: invalid birth_date",
            ),
            (
                "cedula,52123456,PÉREZ,ANA,1985-01-02,BOGOTÁ,F,COL,alive,false",
                "line 2: invalid document_type",
            ),
            (
                "cedula_ciudadania,52123456,PÉREZ,ANA,1985-01-02,BOGOTÁ,Q,COL,alive,false",
                "line 2: invalid sex",
            ),
            (
                "cedula_ciudadania,52123456,PÉREZ,ANA,1985-01-02,BOGOTÁ,F,COL,alive",
                "line 2: expected 10 columns, found 9",
            ),
        ] {
            let err = parse_registry_csv(&format!("{header}\n{row}\n"))
                .unwrap_err()
                .to_string();
            assert_eq!(err, expected);
            assert!(!err.contains("PÉREZ") && !err.contains("52123456"));
        }
        assert!(parse_registry_csv("a,b\n").is_err());
    }
}
