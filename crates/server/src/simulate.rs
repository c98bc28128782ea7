//! `pasaporte simulate july-2025`: the July 2025 passport crisis replayed
//! against a real server on loopback (issue 6, item 9), seeded and
//! replayable, with a progress bar on stderr and a report (Markdown, or HTML
//! with SVG charts).
//!
//! The scenario, in order, each citizen and staff action only through the
//! service's HTTP API. Outside it: set-up as the CLI does it (offices,
//! staff accounts, vendors, booklet stock), the simulators' own controls
//! (the registry's people, paying at the payment simulator), the outbox
//! read as a mail client would, the payment reference the citizen is
//! handed, `Store::check_slots`, and the fair-access worker step run at
//! instants ahead (the request period's close, reconfirmation deadlines):
//! 1. a surge: requesters three times the seats of the Bogotá offices'
//!    release day, 20% of them bots sending 100 times as many requests as
//!    people, first under a live release (bookings race), then under a
//!    ballot release (requests, proof of email, then the draw);
//! 2. booklet stock falling to 10 days and the main printing vendor
//!    draining while orders go on to a second vendor;
//! 3. reconfirmation before the appointment;
//! 4. an office closing for a day (a strike), its bookings re-seated;
//! 5. the measures: appointments that vanished (must be 0), bookings
//!    re-seated, the bots' share of seats against their share of people,
//!    days to the next free seat per office, capacity offered against demand.
//!
//! Scale: the four Bogotá demo offices keep their codes, hours and relative
//! sizes, but their counters are scaled so that one day's seats are a third
//! of the requesters (`--people`), so a debug build runs the scenario in
//! seconds. Each simulated client sends from its own loopback address
//! (127.x.y.z), so the per-client rate limits see a crowd, not one host.
//!
//! Layout: `rng.rs` the seeded generator; this file the command, the world
//! (server, simulators, staff sessions) and the phases; `report.rs` the
//! figures' Markdown and HTML (with a small hand-written SVG writer).

pub mod report;
pub mod rng;

use crate::auth::{self, NewStaff};
use crate::crypto::Keyring;
use crate::i18n::Lang;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pasaporte_core::application::Role;
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::jiff::civil::Date;
use pasaporte_store::Store;
use reqwest::Method;
use rng::SplitMix64;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Requesters (people and bots) by default: enough for the shares to mean
/// something (a fifth are bots: 60), small enough that a debug build on two
/// cores finishes in well under a minute.
pub const PEOPLE_DEFAULT: usize = 300;
/// Fewest requesters: each Bogotá office keeps at least one counter (nine
/// seats a day), so below this the day's 36 seats are more than a third of
/// the requesters and demand is no longer tripled.
pub const PEOPLE_MIN: usize = 108;
/// Most requesters: each is a loopback address and a client; past it the
/// run stops being a quick replay.
pub const PEOPLE_MAX: usize = 20_000;
/// The share of requesters that are bots (resellers), from the issue.
pub const BOT_SHARE: f64 = 0.20;
/// Requests one bot sends for one of a person's, from the issue.
pub const BOT_REQUESTS: u32 = 100;
/// Requesters per seat of the release day: demand tripled.
pub const DEMAND_FACTOR: usize = 3;
/// Minutes over which people arrive after a release opens (bots are there
/// in its first second).
pub const ARRIVAL_MINUTES: u64 = 60;
/// A person tries at most this many seats before giving up on the day.
pub const PERSON_ATTEMPTS: u32 = 3;
/// One HTTP request's limit: the server is local; longer means it is stuck.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Days of the calendar searched for the scenario's whole working days.
pub const DAYS_SEARCHED: u32 = 21;
/// The city whose offices the surge hits (the demo data's Bogotá offices).
pub const CITY: &str = "Bogotá";
/// Days of stock the scenario brings the booklets down to, from the issue.
pub const STOCK_DAYS_TARGET: f64 = 10.0;
/// Applications walked to a production order on each side of the vendor
/// switch: few, each one is a whole office visit.
pub const APPLICATIONS_PER_VENDOR: usize = 3;
/// Seconds to wait for a worker step (registry check, payment, order).
pub const STEP_WAIT_SECS: u64 = 30;
/// Probability that a person confirms when asked to reconfirm.
pub const CONFIRM_PROBABILITY: f64 = 0.7;
/// Share of the unconfirmed who would not come (the 30% no-shows).
pub const NO_SHOW_OF_UNCONFIRMED: f64 = 0.3;

/// The data keys of the simulation's throw-away database (never real data).
const SIM_KEYS: &str = "s1:5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const SIM_LOOKUP: &str = "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
/// The simulated staff's password (made for this run's throw-away database).
const STAFF_PASSWORD: &str = "simulacro tormenta julio cuaderno verde";

#[derive(clap::Subcommand, Clone, Debug)]
pub enum SimulateCommand {
    /// July 2025: booklet stock down to 10 days, the main printing vendor
    /// draining, demand tripled, a fifth of the requesters bots; live
    /// release against ballot release.
    #[command(name = "july-2025")]
    July2025(July2025Args),
}

/// The report's format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Md,
    Html,
}

#[derive(clap::Args, Clone, Debug)]
pub struct July2025Args {
    /// The seed: the same seed gives the same figures.
    #[arg(long, default_value_t = 2025)]
    pub seed: u64,
    /// Requesters, people and bots (a fifth are bots).
    #[arg(long, default_value_t = PEOPLE_DEFAULT)]
    pub people: usize,
    /// The folder the report is written to.
    #[arg(long, default_value = "simulacion-julio-2025")]
    pub out: PathBuf,
    /// `md` (report.md) or `html` (report.html, with SVG charts).
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// An admin URL of a PostgreSQL server (a fresh database is created on
    /// it); without it, a SQLite file in a temporary folder.
    #[arg(long, env = "PASAPORTE_SIM_PG_URL")]
    pub postgres: Option<String>,
    /// The report's language: `es` or `en`.
    #[arg(long, default_value = "es")]
    pub lang: String,
}

pub async fn run(cmd: SimulateCommand) -> anyhow::Result<()> {
    match cmd {
        SimulateCommand::July2025(args) => {
            let outcome = july_2025(&args, true).await?;
            println!("{}", outcome.markdown);
            println!("{}", outcome.report_path.display());
            anyhow::ensure!(
                outcome.figures.vanished == 0 && outcome.figures.slot_mismatches == 0,
                "{} appointments vanished, {} slots miscounted",
                outcome.figures.vanished,
                outcome.figures.slot_mismatches
            );
        }
    }
    Ok(())
}

/// What a run leaves.
pub struct Outcome {
    pub figures: Figures,
    /// The written report.
    pub report_path: PathBuf,
    /// The report in Markdown (printed whatever the file's format).
    pub markdown: String,
}

/// A step the service may not have yet: done with its figures, or why not.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step<T> {
    Done(T),
    NotAvailable { why: String },
}

impl<T> Step<T> {
    pub fn done(&self) -> Option<&T> {
        match self {
            Step::Done(t) => Some(t),
            Step::NotAvailable { .. } => None,
        }
    }
}

/// One release's outcome.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReleaseFigures {
    pub day: String,
    /// Seats of the day at the Bogotá offices.
    pub seats_offered: u64,
    pub seats_to_people: u64,
    pub seats_to_bots: u64,
    pub people: u64,
    pub bots: u64,
    /// Booking (or request) writes sent.
    pub writes_by_people: u64,
    pub writes_by_bots: u64,
    /// Answers to the bots' writes by status and code (`429`, `409
    /// already_booked`...): depends on the clock (rate-limit buckets refill
    /// with time), so not part of the replayable figures.
    pub bot_answers: BTreeMap<String, u64>,
    /// Requests left waitlisted (ballot) or people left without a seat (live).
    pub people_without_seat: u64,
    /// Ballot: whether the draw replays identically from its published
    /// files (`None` for a live release: there is no draw).
    pub replayed: Option<bool>,
}

impl ReleaseFigures {
    pub fn bot_share_of_people(&self) -> f64 {
        ratio(self.bots, self.bots + self.people)
    }
    pub fn bot_share_of_seats(&self) -> f64 {
        ratio(
            self.seats_to_bots,
            self.seats_to_bots + self.seats_to_people,
        )
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        return 0.0;
    }
    // Counts far below 2^52: exact.
    #[allow(clippy::cast_precision_loss)]
    let r = a as f64 / b as f64;
    r
}

/// Booklet stock and the published rationing rule.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StockFigures {
    pub booklets_received: u64,
    pub personalised: u64,
    pub in_stock: u64,
    pub days_left: Option<f64>,
    pub rationing_applies: bool,
    pub rationing_rule: String,
}

/// The vendor switch.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VendorFigures {
    pub main_vendor: String,
    pub second_vendor: String,
    /// Orders to each vendor before and after the main one was drained.
    pub before_to_main: u64,
    pub before_to_second: u64,
    pub after_to_main: u64,
    pub after_to_second: u64,
}

/// Reconfirmation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReconfirmFigures {
    /// Reminders sent.
    pub asked: u64,
    pub confirmed: u64,
    /// Unconfirmed seats released at their deadline.
    pub released: u64,
    /// Seats offered to the ballot's waitlist (the ballot day's released
    /// seats; the live day's go back to live booking).
    pub freed_to_waitlist: u64,
    pub filled_from_waitlist: u64,
    pub no_shows_avoided: u64,
}

/// A strike: one office closed for a day.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StrikeFigures {
    pub office: String,
    pub day: String,
    pub bookings_affected: u64,
    pub reseated: u64,
    /// No equivalent seat free: kept, the citizen chooses (never dropped).
    pub displaced: u64,
}

/// Days from the live release's day to the next free seat at one office.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EarliestRow {
    pub office: String,
    /// Before the surge, and after both releases (`None`: no free seat in
    /// the fortnight searched).
    pub days_before: Option<i64>,
    pub days_after: Option<i64>,
}

/// The Bogotá offices' seats on one day, against what was asked for it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DayRow {
    pub day: String,
    pub offered: u64,
    pub booked: u64,
    pub withheld: u64,
    /// Requesters aiming at this day (people and bots, one each).
    pub demand: u64,
    /// Why seats were withheld (codes), if any.
    pub reasons: Vec<String>,
}

/// Everything the report says.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Figures {
    pub seed: u64,
    pub backend: String,
    pub requesters: u64,
    pub people: u64,
    pub bots: u64,
    pub live: ReleaseFigures,
    pub ballot: Step<ReleaseFigures>,
    pub strike: Step<StrikeFigures>,
    pub stock: Step<StockFigures>,
    pub vendors: Step<VendorFigures>,
    pub reconfirmation: Step<ReconfirmFigures>,
    /// Bookings the server acknowledged (201).
    pub acknowledged: u64,
    /// Of those, how many the API no longer shows as active, moved, checked
    /// in or cancelled by their citizen. Must be 0.
    pub vanished: u64,
    /// Of those, how many are at another seat than the one booked.
    pub moved: u64,
    /// Slots whose seat count disagrees with their bookings (`Store::check_slots`).
    pub slot_mismatches: u64,
    pub earliest: Vec<EarliestRow>,
    pub days: Vec<DayRow>,
    /// Wall-clock seconds the run took (not replayable).
    pub seconds: f64,
}

impl Figures {
    /// The figures a seed determines: the clock-dependent ones (answers by
    /// rate limit, seconds, days counted from today, the ballot's outcome,
    /// drawn with the server's own committed seed) left out.
    pub fn replayable(&self) -> Value {
        let mut live = self.live.clone();
        live.bot_answers.clear();
        json!({
            "seed": self.seed,
            "requesters": self.requesters,
            "people": self.people,
            "bots": self.bots,
            "live": live,
            "ballot_requests": self.ballot.done().map(|b| (b.people, b.bots, b.seats_offered)),
            "acknowledged": self.acknowledged,
            "vanished": self.vanished,
            "moved": self.moved,
            "slot_mismatches": self.slot_mismatches,
            "strike": self.strike,
            "stock": self.stock,
            "vendors": self.vendors,
            "demand": self.days.iter().map(|d| (d.offered, d.demand)).collect::<Vec<_>>(),
            "earliest": self.earliest,
        })
    }
}

/// Runs the scenario and writes the report into `args.out`.
pub async fn july_2025(args: &July2025Args, show_progress: bool) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        (PEOPLE_MIN..=PEOPLE_MAX).contains(&args.people),
        "--people goes from {PEOPLE_MIN} to {PEOPLE_MAX}"
    );
    let lang = match args.lang.as_str() {
        "es" => Lang::Es,
        "en" => Lang::En,
        other => anyhow::bail!("--lang is es or en, not {other}"),
    };
    let started = Instant::now();
    let bar = if show_progress {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let dir = std::env::temp_dir().join(format!(
        "pasaporte-sim-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir_all(&dir)?;
    let result = scenario(args, &dir, bar.clone(), lang).await;
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&dir);
    let mut figures = result?;
    figures.seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let markdown = report::markdown(&figures, lang);
    let (name, text) = match args.format {
        Format::Md => ("report.md", markdown.clone()),
        Format::Html => ("report.html", report::html(&figures, lang)),
    };
    let report_path = args.out.join(name);
    std::fs::write(&report_path, text)
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    std::fs::write(
        args.out.join("figures.json"),
        serde_json::to_string_pretty(&figures)?,
    )?;
    Ok(Outcome {
        figures,
        report_path,
        markdown,
    })
}

// --- The world ----------------------------------------------------------------

/// A signed-in staff member.
struct StaffLogin {
    cookie: String,
    csrf: String,
}

/// Who sends a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Person,
    Bot,
}

/// A simulated requester: their own loopback address and HTTP client.
struct Agent {
    who: Who,
    client: reqwest::Client,
}

/// A booking the server acknowledged (201), as its citizen keeps it.
struct Acknowledged {
    code: String,
    token: String,
    office: String,
    start: String,
}

/// The server and the outside parties of one run.
struct World {
    base: String,
    client: reqwest::Client,
    store: Store,
    keys: Keyring,
    supervisor: StaffLogin,
    admin: StaffLogin,
    bar: ProgressBar,
    server: Server,
    registry: crate::registry::sim::RunningSim,
    payments: crate::payments::RunningPaymentSim,
    payments_client: reqwest::Client,
    acknowledged: Vec<Acknowledged>,
    lang: Lang,
    /// The Bogotá offices of the scenario, largest first.
    offices: Vec<String>,
}

/// How a request is authenticated.
enum Auth<'a> {
    None,
    Staff(&'a StaffLogin),
    Bearer(&'a str),
}

impl World {
    /// One request; the answer's status and JSON body (`Null` when not JSON).
    async fn call(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: Auth<'_>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = client.request(method.clone(), format!("{}{path}", self.base));
        match auth {
            Auth::None => {}
            Auth::Staff(s) => {
                req = req.header(reqwest::header::COOKIE, &s.cookie);
                if method != Method::GET {
                    req = req.header("x-csrf-token", &s.csrf);
                }
            }
            Auth::Bearer(t) => req = req.bearer_auth(t),
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        self.bar.inc(1);
        Ok((status, v))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let (status, v) = self
            .call(&self.client, Method::GET, path, None, Auth::None)
            .await?;
        anyhow::ensure!(status == 200, "GET {path}: {status} {v}");
        Ok(v)
    }

    async fn staff(
        &self,
        who: &StaffLogin,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        self.call(&self.client, method, path, body, Auth::Staff(who))
            .await
    }

    fn phase(&self, msg: &'static str, more: u64) {
        self.bar.set_message(msg);
        self.bar.inc_length(more);
    }
}

/// A client sending from its own loopback address.
fn agent_client(ip: Ipv4Addr) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(Some(IpAddr::V4(ip)))
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .build()?)
}

/// Requester `n`'s loopback address: 127.(10 + group).x.y, one per requester.
fn agent_ip(group: u8, n: usize) -> Ipv4Addr {
    let hi = u8::try_from(n / 250).unwrap_or(u8::MAX);
    let lo = u8::try_from(n % 250 + 1).unwrap_or(1);
    Ipv4Addr::new(127, 10 + group, hi, lo)
}

/// The four Bogotá demo offices with their counters scaled so that a whole
/// day offers about `seats` seats (slots of an hour, one person per counter
/// per hour), keeping their hours and relative sizes.
fn scaled_offices_csv(seats: usize) -> anyhow::Result<(String, Vec<String>)> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for line in crate::DEMO_OFFICES_CSV.lines().skip(1) {
        let f: Vec<String> = line.split(',').map(str::to_string).collect();
        if f.len() >= 10 && f[3] == CITY {
            rows.push(f);
        }
    }
    anyhow::ensure!(!rows.is_empty(), "no {CITY} offices in the demo data");
    let counters: Vec<usize> = rows
        .iter()
        .map(|f| f[8].parse::<usize>().unwrap_or(1).max(1))
        .collect();
    let total: usize = counters.iter().sum();
    // Nine one-hour slots in the demo offices' weekday (07:00–16:00).
    let wanted = seats.div_ceil(9).max(rows.len());
    let mut scaled: Vec<usize> = counters
        .iter()
        .map(|c| (c * wanted / total).max(1))
        .collect();
    let (mut i, n) = (0, scaled.len());
    while scaled.iter().sum::<usize>() < wanted {
        scaled[i % n] += 1;
        i += 1;
    }
    let mut csv = String::from(
        "code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days\n",
    );
    let mut codes = Vec::new();
    for (f, c) in rows.iter().zip(&scaled) {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{c},{},,60,60,60\n",
            f[0],
            f[1],
            f[2],
            f[3],
            f[4],
            f[5],
            f[6],
            f[7],
            c * 9
        ));
        codes.push(f[0].clone());
    }
    Ok((csv, codes))
}

/// An office open around the clock, in a city of its own, where the
/// production step's applicants walk in whatever the hour of the run.
const PRODUCTION_OFFICE: &str = "SIM-PRO";
const PRODUCTION_OFFICE_CSV: &str = "code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days\nSIM-PRO,Oficina del simulacro,ministry,Tunja,COL,America/Bogota,00:00-24:00,00:00-24:00,10,480,00:00-24:00,30,30,60\n";

async fn fresh_database(args: &July2025Args, dir: &std::path::Path) -> anyhow::Result<String> {
    match &args.postgres {
        None => Ok(dir.join("sim.db").to_string_lossy().into_owned()),
        Some(admin) => {
            let store = Store::open(admin).await?;
            let url = store
                .create_database(
                    admin,
                    &format!(
                        "pasaporte_sim_{}_{}",
                        std::process::id(),
                        Timestamp::now().as_millisecond()
                    ),
                )
                .await?;
            store.close().await;
            Ok(url)
        }
    }
}

/// One running server: the service (as `serve` wires it) and its workers,
/// stopped when dropped.
struct Server {
    app: std::sync::Arc<crate::app::App>,
    base: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What the run's server is made of.
struct ServerParts {
    store: Store,
    registry_url: String,
    payments_url: String,
    payments_secret: Vec<u8>,
    document_signer: (String, String),
}

/// The run's ballot and reconfirmation settings: any request period (the
/// run cannot wait a day), reconfirmation as `serve` has it by default.
fn fair() -> crate::ballot::FairSettings {
    crate::ballot::FairSettings {
        period_min_hours: 0,
        reconfirm: Some(crate::ballot::Reconfirm::default()),
    }
}

/// Starts the service on a loopback port with the run's adapters, rate
/// limits and workers (what `pasaporte serve` does, with the ballot's
/// request period and reconfirmation set for a run of seconds).
async fn start_server_at(
    parts: &ServerParts,
    fair: crate::ballot::FairSettings,
    addr: SocketAddr,
) -> anyhow::Result<Server> {
    use crate::registry::{HttpRegistry, RegistryConfig};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut registry = RegistryConfig::new(parts.registry_url.clone());
    registry.timeout_ms = 2_000;
    registry.attempts = 2;
    registry.backoff_first_ms = 10;
    let registry =
        HttpRegistry::new(registry).map_err(|e| anyhow::anyhow!("civil registry: {e}"))?;
    let adapters = crate::app::Adapters {
        registry: Some(std::sync::Arc::new(registry)),
        payments: Some(std::sync::Arc::new(crate::payments::HttpPayments::new(
            &parts.payments_url,
            Duration::from_millis(2_000),
            2,
        )?)),
        payments_secret: Some(parts.payments_secret.clone()),
        audit_signer: None,
        document_signer: Some(icao9303::DocumentSigner::from_pem(
            &parts.document_signer.0,
            &parts.document_signer.1,
        )?),
        vendor_settings: crate::pipeline::VendorSettings {
            attempt_timeout: Duration::from_millis(2_000),
            attempts: 1,
            retry_first_ms: 100,
            ..crate::pipeline::VendorSettings::default()
        },
        limits: crate::limits::RateLimits::new(&default_limits()),
        fair,
        public_origin: None,
    };
    let app = crate::app::App::new(
        parts.store.clone(),
        Keyring::parse(SIM_KEYS, SIM_LOOKUP)?,
        base.clone(),
        adapters,
    )
    .await?;
    let router = crate::http::router(app.clone());
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        {
            tracing::error!(error = %e, "the simulation's server stopped");
        }
    })];
    let interval = Duration::from_millis(WORKER_INTERVAL_MS);
    let node = crate::lease::node_name();
    let lease = |name| {
        crate::lease::WorkerLease::new(
            name,
            &node,
            Duration::from_millis(crate::lease::LEASE_MS_DEFAULT),
        )
    };
    tasks.push(tokio::spawn(crate::workers::run(
        app.clone(),
        interval,
        lease(crate::lease::WORKFLOW),
    )));
    tasks.push(tokio::spawn(crate::pipeline::run(
        app.clone(),
        interval,
        lease(crate::lease::PRODUCTION),
    )));
    Ok(Server { app, base, tasks })
}

async fn spawn_world(
    args: &July2025Args,
    dir: &std::path::Path,
    bar: ProgressBar,
    lang: Lang,
) -> anyhow::Result<World> {
    use crate::payments::sim::{PaymentSimConfig, spawn_payment_sim};
    use crate::registry::sim::{SimConfig, spawn_registry_sim};
    let database = fresh_database(args, dir).await?;
    let store = crate::open_store(&crate::DbArgs { database }).await?;
    crate::import_offices(&store, crate::DEMO_OFFICES_CSV).await?;
    let (csv, offices) = scaled_offices_csv(args.people / DEMAND_FACTOR)?;
    crate::import_offices(&store, &csv).await?;
    crate::import_offices(&store, PRODUCTION_OFFICE_CSV).await?;
    let keys = Keyring::parse(SIM_KEYS, SIM_LOOKUP)?;

    // The Document Signer: a test key made for this run.
    let (_, ds) = icao9303::generate_test_pki(
        icao9303::StateCode::parse("COL")?,
        std::time::SystemTime::now(),
    )?;
    let registry = spawn_registry_sim(SimConfig::default()).await?;
    // The payment simulator calls back the server, whose port changes when
    // the reconfirmation step starts a later one: it is told the first
    // server's address, and the callbacks it makes go there while it lives.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let callback_addr: SocketAddr = listener.local_addr()?;
    drop(listener);
    let payments_secret = crate::crypto::random_bytes::<32>()?.to_vec();
    let mut pay_cfg = PaymentSimConfig::local(
        format!("http://{callback_addr}/api/v1/payments/callback"),
        payments_secret.clone(),
    );
    pay_cfg.delivery_backoff_first = Duration::from_millis(50);
    let payments = spawn_payment_sim(pay_cfg).await?;
    let parts = ServerParts {
        store: store.clone(),
        registry_url: registry.url(),
        payments_url: payments.url(),
        payments_secret,
        document_signer: (ds.key_pem()?, ds.cert_pem()?),
    };
    let server = start_server_at(&parts, fair(), callback_addr).await?;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .build()?;
    let supervisor = sign_in(
        &store,
        &keys,
        &client,
        &base,
        "sim.supervisor",
        Role::Supervisor,
    )
    .await
    .context("signing in the supervisor")?;
    let admin = sign_in(
        &store,
        &keys,
        &client,
        &base,
        "sim.admin",
        Role::Administrator,
    )
    .await
    .context("signing in the administrator")?;
    Ok(World {
        base,
        client,
        store,
        keys,
        supervisor,
        admin,
        bar,
        server,
        registry,
        payments_client: reqwest::Client::new(),
        payments,
        acknowledged: Vec::new(),
        lang,
        offices,
    })
}

/// The rate limits `serve` runs with by default (the scenario measures
/// them, it does not switch them off).
fn default_limits() -> crate::limits::LimitArgs {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        limits: crate::limits::LimitArgs,
    }
    match Only::try_parse_from(["pasaporte"]) {
        Ok(o) => o.limits,
        // Every field has a default; parsing no arguments cannot fail.
        Err(e) => unreachable!("{e}"),
    }
}

/// Creates a staff account (as `pasaporte staff add` does) and signs it in
/// over the API with its password and TOTP code.
async fn sign_in(
    store: &Store,
    keys: &Keyring,
    client: &reqwest::Client,
    base: &str,
    username: &str,
    role: Role,
) -> anyhow::Result<StaffLogin> {
    let created = auth::create_staff(
        store,
        keys,
        NewStaff {
            username: username.into(),
            display_name: None,
            role,
            offices: vec!["*".into()],
            password: STAFF_PASSWORD.into(),
        },
        auth::now_ms(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let now_s = u64::try_from(Timestamp::now().as_second()).unwrap_or(0);
    let code = auth::totp::code_at(&created.totp_secret_base32, now_s)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let r = client
        .post(format!("{base}/api/v1/staff/session"))
        .json(&json!({ "username": username, "password": STAFF_PASSWORD, "totp": code }))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "sign-in answered {}", r.status());
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("pasaporte_staff="))
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_string();
    let body: Value = r.json().await?;
    let csrf = body["csrf_token"]
        .as_str()
        .context("no CSRF token")?
        .to_string();
    Ok(StaffLogin { cookie, csrf })
}

// --- The scenario ---------------------------------------------------------------

/// The requesters: people first, then bots.
struct Cast {
    agents: Vec<Agent>,
}

impl Cast {
    /// The requesters of one release. Each release's clients send from
    /// their own addresses (`first_group` for people, the next for bots):
    /// the releases stand for different weeks, whose rate-limit buckets
    /// would long have refilled.
    fn new(requesters: usize, first_group: u8) -> anyhow::Result<Self> {
        let bots = bot_count(requesters);
        let mut agents = Vec::with_capacity(requesters);
        for n in 0..requesters {
            let who = if n < requesters - bots {
                Who::Person
            } else {
                Who::Bot
            };
            let group = if who == Who::Bot {
                first_group + 1
            } else {
                first_group
            };
            agents.push(Agent {
                who,
                client: agent_client(agent_ip(group, n))?,
            });
        }
        Ok(Self { agents })
    }

    fn count(&self, who: Who) -> u64 {
        self.agents.iter().filter(|a| a.who == who).count() as u64
    }
}

fn bot_count(requesters: usize) -> usize {
    // A fifth, rounded: exact for the sizes used.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let bots = (requesters as f64 * BOT_SHARE).round() as usize;
    bots
}

/// A person's identity for one release (a new person per release, so the
/// live release's bookings do not block the ballot's requests).
fn identity(release: u64, n: usize) -> Value {
    json!({
        "document_type": "cedula_ciudadania",
        "document_number": format!("{}", 20_000_000 + release * 1_000_000 + n as u64),
        "surnames": "Pérez Gómez",
        "given_names": "Laura Sofía",
        "birth_date": "1990-03-14",
    })
}

async fn scenario(
    args: &July2025Args,
    dir: &std::path::Path,
    bar: ProgressBar,
    lang: Lang,
) -> anyhow::Result<Figures> {
    bar.set_message("starting the server");
    let mut w = spawn_world(args, dir, bar, lang).await?;
    let backend = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let days = whole_days(&w).await?;
    anyhow::ensure!(
        days.len() >= 2,
        "fewer than two whole working days in the next {DAYS_SEARCHED} days"
    );
    let earliest_before = earliest(&w, days[0]).await?;
    // Address groups: 0 and 1 the live release's people and bots, 2 and 3
    // the devices confirming and accepting, 4 and 5 the ballot's.
    let cast = Cast::new(args.people, 0)?;
    let ballot_cast = Cast::new(args.people, 4)?;

    let live = live_release(&mut w, &cast, days[0], args.seed).await?;
    let (ballot, ballot_state) = ballot_release(&mut w, &ballot_cast, days[1]).await?;
    // At the surge's height: before reconfirmation frees seats.
    let earliest_after = earliest(&w, days[0]).await?;
    let (stock, vendors) = production(&mut w).await?;
    let reconfirmation = reconfirmation(
        &mut w,
        args.seed,
        &ballot_cast,
        &days[..2],
        ballot_state.as_ref(),
    )
    .await?;

    let strike = strike(&mut w, days[0]).await?;

    w.phase("measuring", w.acknowledged.len() as u64 + 2);
    let (vanished, moved) = vanished(&w).await?;
    let slot_mismatches = w.store.check_slots().await?.len() as u64;
    let earliest = w
        .offices
        .iter()
        .map(|o| EarliestRow {
            office: o.clone(),
            days_before: earliest_before.get(o).copied(),
            days_after: earliest_after.get(o).copied(),
        })
        .collect();
    let mut demand = BTreeMap::new();
    demand.insert(live.day.clone(), live.people + live.bots);
    if let Some(b) = ballot.done() {
        demand.insert(b.day.clone(), b.people + b.bots);
    }
    let day_rows = capacity_days(&w, days[0], &demand).await?;
    Ok(Figures {
        seed: args.seed,
        backend: backend.into(),
        requesters: cast.agents.len() as u64,
        people: cast.count(Who::Person),
        bots: cast.count(Who::Bot),
        live,
        ballot,
        strike,
        stock,
        vendors,
        reconfirmation,
        acknowledged: w.acknowledged.len() as u64,
        vanished,
        moved,
        slot_mismatches,
        earliest,
        days: day_rows,
        seconds: 0.0,
    })
}

/// The next days (from tomorrow) on which every Bogotá office of the
/// scenario opens its usual day: no holiday, no short hours.
async fn whole_days(w: &World) -> anyhow::Result<Vec<Date>> {
    let v = w
        .get(&format!("/api/v1/capacity?days={DAYS_SEARCHED}"))
        .await?;
    let mut per_day: BTreeMap<String, usize> = BTreeMap::new();
    let today = Timestamp::now().in_tz("America/Bogota")?.date();
    for o in v["offices"].as_array().into_iter().flatten() {
        let code = o["code"].as_str().unwrap_or_default();
        if !w.offices.iter().any(|c| c == code) {
            continue;
        }
        let usual = o["usual_day_seats"].as_u64().unwrap_or(0);
        for d in o["days"].as_array().into_iter().flatten() {
            let whole = d["offered"].as_u64() == Some(usual)
                && d["reasons"].as_array().is_none_or(Vec::is_empty);
            if whole {
                *per_day
                    .entry(d["date"].as_str().unwrap_or_default().to_string())
                    .or_default() += 1;
            }
        }
    }
    let mut out = Vec::new();
    for (day, n) in per_day {
        let date: Date = day.parse()?;
        if n == w.offices.len() && (date - today).get_days() >= FIRST_DAY_AFTER_DAYS as i32 {
            out.push(date);
        }
    }
    Ok(out)
}

/// Days from the live release's day to each Bogotá office's next free
/// seat on or after it (the slots API, a fortnight ahead; absent: none).
async fn earliest(w: &World, from: Date) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for o in &w.offices {
        let v = w
            .get(&format!(
                "/api/v1/offices/{o}/slots?from={from}&days={EARLIEST_DAYS}"
            ))
            .await?;
        let first = v["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["remaining"].as_u64().unwrap_or(0) > 0)
            .and_then(|s| s["start"].as_str())
            .and_then(|t| t.get(..10))
            .and_then(|d| d.parse::<Date>().ok());
        if let Some(day) = first {
            out.insert(o.clone(), i64::from((day - from).get_days()));
        }
    }
    Ok(out)
}

/// Days of slots searched for the next free seat.
const EARLIEST_DAYS: u32 = 14;

/// One office-day's slots: (start, capacity, remaining).
async fn slots_of(
    w: &World,
    client: &reqwest::Client,
    office: &str,
    day: Date,
) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let (status, v) = w
        .call(
            client,
            Method::GET,
            &format!("/api/v1/offices/{office}/slots?from={day}&days=1"),
            None,
            Auth::None,
        )
        .await?;
    anyhow::ensure!(status == 200, "slots of {office}: {status}");
    Ok(v["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["start"]
                .as_str()
                .is_some_and(|t| t.starts_with(&day.to_string()))
        })
        .map(|s| {
            (
                s["start"].as_str().unwrap_or_default().to_string(),
                s["capacity"].as_u64().unwrap_or(0),
                s["remaining"].as_u64().unwrap_or(0),
            )
        })
        .collect())
}

/// The answer's key for counting: the status and the error code.
fn answer_key(status: u16, v: &Value) -> String {
    match v["error"]["code"].as_str() {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}

/// The live release: the day's seats open at once; bots, polling, book in
/// its first second; people arrive over the next hour, each trying a few
/// seats. Run in the order of simulated time, one request at a time, so the
/// same seed gives the same seats to the same requesters.
async fn live_release(
    w: &mut World,
    cast: &Cast,
    day: Date,
    seed: u64,
) -> anyhow::Result<ReleaseFigures> {
    let mut rng = SplitMix64::stream(seed, 1);
    let bots = cast.count(Who::Bot);
    let people = cast.count(Who::Person);
    w.phase(
        "live release: bots and people booking",
        bots * u64::from(BOT_REQUESTS) * 2 + people * 6,
    );
    let mut seats_offered = 0;
    for o in &w.offices {
        seats_offered += slots_of(w, &w.client, o, day)
            .await?
            .iter()
            .map(|s| s.1)
            .sum::<u64>();
    }
    // (ms after opening, requester, the requester's n-th write)
    let mut events: Vec<(u64, usize, u32)> = Vec::new();
    for (n, a) in cast.agents.iter().enumerate() {
        match a.who {
            Who::Bot => {
                for k in 0..BOT_REQUESTS {
                    // Every 10 ms from the opening, staggered by bot.
                    events.push((u64::from(k) * 10 + (n as u64 % 10), n, k));
                }
            }
            Who::Person => {
                events.push((rng.below(ARRIVAL_MINUTES * 60_000), n, 0));
            }
        }
    }
    events.sort_unstable();
    let mut f = ReleaseFigures {
        day: day.to_string(),
        seats_offered,
        seats_to_people: 0,
        seats_to_bots: 0,
        people,
        bots,
        writes_by_people: 0,
        writes_by_bots: 0,
        bot_answers: BTreeMap::new(),
        people_without_seat: 0,
        replayed: None,
    };
    // A bot's seat in view (office, start) until told the slot is full.
    let mut bot_target: BTreeMap<usize, (String, String)> = BTreeMap::new();
    let offices = w.offices.clone();
    for (_, n, _) in events {
        let agent = &cast.agents[n];
        match agent.who {
            Who::Bot => {
                if !bot_target.contains_key(&n) {
                    // Poll: the first free seat in the offices' order.
                    'poll: for o in &offices {
                        for (start, _, remaining) in slots_of(w, &agent.client, o, day).await? {
                            if remaining > 0 {
                                bot_target.insert(n, (o.clone(), start));
                                break 'poll;
                            }
                        }
                    }
                }
                let Some((office, start)) = bot_target.get(&n).cloned() else {
                    *f.bot_answers.entry("no seat left".into()).or_default() += 1;
                    continue;
                };
                f.writes_by_bots += 1;
                let (status, v) = book(w, agent, n, &office, &start).await?;
                *f.bot_answers.entry(answer_key(status, &v)).or_default() += 1;
                if status == 201 {
                    f.seats_to_bots += 1;
                } else if v["error"]["code"] == "slot_full" {
                    bot_target.remove(&n);
                }
            }
            Who::Person => {
                let mut order = offices.clone();
                rng.shuffle(&mut order);
                let mut attempts = 0;
                let mut booked = false;
                'offices: for o in &order {
                    let free: Vec<String> = slots_of(w, &agent.client, o, day)
                        .await?
                        .into_iter()
                        .filter(|s| s.2 > 0)
                        .map(|s| s.0)
                        .collect();
                    if free.is_empty() {
                        continue;
                    }
                    let start = &free[rng.below(free.len() as u64) as usize];
                    attempts += 1;
                    f.writes_by_people += 1;
                    let (status, _) = book(w, agent, n, o, start).await?;
                    if status == 201 {
                        f.seats_to_people += 1;
                        booked = true;
                        break 'offices;
                    }
                    if attempts >= PERSON_ATTEMPTS {
                        break;
                    }
                }
                if !booked {
                    f.people_without_seat += 1;
                }
            }
        }
    }
    Ok(f)
}

/// One booking write by requester `n` (release 0: the live release).
async fn book(
    w: &mut World,
    agent: &Agent,
    n: usize,
    office: &str,
    start: &str,
) -> anyhow::Result<(u16, Value)> {
    let body = json!({
        "office": office,
        "start": start,
        "applicants": [identity(0, n)],
        "email": format!("persona{n}@example.co"),
    });
    let (status, v) = w
        .call(
            &agent.client,
            Method::POST,
            "/api/v1/bookings",
            Some(&body),
            Auth::None,
        )
        .await?;
    if status == 201 {
        w.acknowledged.push(Acknowledged {
            code: v["code"].as_str().unwrap_or_default().to_string(),
            token: v["manage_token"].as_str().unwrap_or_default().to_string(),
            office: office.to_string(),
            start: start.to_string(),
        });
    }
    Ok((status, v))
}

/// Whether the service answers this route at all (404 or 405 from the
/// router: the feature is not there).
async fn has_route(w: &World, method: Method, path: &str, staff: Option<&StaffLogin>) -> bool {
    let auth = match staff {
        Some(s) => Auth::Staff(s),
        None => Auth::None,
    };
    match w
        .call(&w.client, method, path, Some(&json!({})), auth)
        .await
    {
        Ok((404 | 405, v)) => v["error"]["code"].is_string() && v["error"]["code"] != "not_found",
        Ok(_) => true,
        Err(_) => false,
    }
}

/// One request, outside any `World` borrow (for concurrent senders).
async fn send(
    client: &reqwest::Client,
    method: Method,
    url: String,
    body: Option<Value>,
    bearer: Option<String>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = client.request(method, url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// Senders at once in the ballot's concurrent steps (each requester's own
/// writes stay in order).
const SENDERS_AT_ONCE: usize = 16;
/// The ballot's request period: every request, proof and bot's spam of the
/// run is in long before it closes; the draw then runs at its close
/// through the worker step (see [`reconfirmation`] on the run's clock).
const BALLOT_PERIOD_MINUTES: i64 = 60;
/// Mail rows read from the outbox at once to find the links (every mail of
/// the run is still there: no SMTP server).
const MAIL_READ_MAX: u32 = 100_000;

/// The links' tokens in the queued mail, by request code, read the way a
/// mail client would (the body opened with the run's keys).
async fn tokens_from_mail(w: &World) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let now = Timestamp::now().as_millisecond() + 60_000;
    for m in w.store.due_mail(now, MAIL_READ_MAX).await? {
        let body = w
            .keys
            .open(crate::crypto::at::mail_body(&m.id), &m.body_enc)?;
        for line in body.lines() {
            let Some(at) = line.find("/solicitudes/") else {
                continue;
            };
            let rest = &line[at + "/solicitudes/".len()..];
            let Some((code, tail)) = rest.split_once('/') else {
                continue;
            };
            if let Some(token) = tail.strip_prefix("verificar?clave=") {
                out.insert(code.to_string(), token.trim().to_string());
            }
        }
    }
    Ok(out)
}

/// Runs `f(i)` for `0..n`, [`SENDERS_AT_ONCE`] at a time; results in order.
async fn concurrently<F, Fut, T>(n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let mut set = tokio::task::JoinSet::new();
        let end = (i + SENDERS_AT_ONCE).min(n);
        for j in i..end {
            let fut = f(j);
            set.spawn(async move { (j, fut.await) });
        }
        let mut chunk = Vec::new();
        while let Some(r) = set.join_next().await {
            chunk.push(r?);
        }
        chunk.sort_by_key(|(j, _)| *j);
        for (_, r) in chunk {
            out.push(r?);
        }
        i = end;
    }
    Ok(out)
}

/// Downloads the drawn release's published files, as anyone may, and
/// replays the draw on them (`core::ballot::replay`, what `pasaporte
/// ballot replay` runs): whether the seed matches its commitment, the
/// inputs their published digest, and the draw the published outcome.
async fn replay_published(w: &World, release: &str) -> anyhow::Result<bool> {
    let mut files = BTreeMap::new();
    for name in [
        "seed.txt",
        "commitment.txt",
        "offers.txt",
        "requests.txt",
        "outcome.txt",
    ] {
        let r = w
            .client
            .get(format!("{}/api/v1/releases/{release}/files/{name}", w.base))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "{name}: {}", r.status());
        files.insert(name, r.text().await?);
        w.bar.inc(1);
    }
    let file = |n: &str| files.get(n).map_or("", String::as_str);
    let report = pasaporte_core::ballot::replay(
        file("seed.txt").trim(),
        file("commitment.txt").trim(),
        file("offers.txt"),
        file("requests.txt"),
        file("outcome.txt"),
    )
    .map_err(|e| anyhow::anyhow!("replaying the draw: {e}"))?;
    let published = w.get(&format!("/api/v1/releases/{release}")).await?;
    Ok(report.difference.is_none() && published["inputs_digest"] == report.inputs_digest.as_str())
}

/// A request as its requester keeps it.
struct Held {
    code: String,
    token: String,
}

/// What the ballot leaves for the reconfirmation step.
struct BallotState {
    /// Every requester's request (people then bots), if it was taken.
    held: Vec<Option<Held>>,
}

/// The ballot release (issue 6, the lead's API): the supervisor opens a
/// release of the same offices' next whole day; every requester sends a
/// request (a person once, a bot a hundred times) and proves the email
/// through the link of the mail; when the period closes the service draws;
/// each requester then looks at their request.
async fn ballot_release(
    w: &mut World,
    cast: &Cast,
    day: Date,
) -> anyhow::Result<(Step<ReleaseFigures>, Option<BallotState>)> {
    let bots = cast.count(Who::Bot);
    let people = cast.count(Who::Person);
    w.phase(
        "ballot release: requests, proof of email, the draw",
        bots * u64::from(BOT_REQUESTS) + (people + bots) * 4,
    );
    let mut seats_offered = 0;
    for o in &w.offices {
        seats_offered += slots_of(w, &w.client, o, day)
            .await?
            .iter()
            .map(|s| s.1)
            .sum::<u64>();
    }
    // The administrator turns the offices to ballot releases (every seat
    // online, as before pools).
    for o in &w.offices {
        let (status, v) = w
            .staff(
                &w.admin,
                Method::PUT,
                &format!("/api/v1/staff/offices/{o}/policy"),
                Some(&json!({
                    "release_mode": "ballot",
                    "online": 100,
                    "urgent": 0,
                    "walk_in": 0,
                    "priority": 0,
                })),
            )
            .await?;
        anyhow::ensure!(status == 200, "setting {o} to ballot: {status} {v}");
    }
    let close =
        Timestamp::now() + pasaporte_core::jiff::SignedDuration::from_mins(BALLOT_PERIOD_MINUTES);
    let (status, v) = w
        .staff(
            &w.supervisor,
            Method::POST,
            "/api/v1/staff/releases",
            Some(&json!({
                "city": CITY,
                "first_day": day.to_string(),
                "last_day": day.to_string(),
                "requests_close_at": close.to_string(),
                "offices": w.offices,
            })),
        )
        .await?;
    if matches!(status, 404 | 405) && v.is_null() {
        return Ok((
            Step::NotAvailable {
                why: "POST /api/v1/staff/releases: not in this build".into(),
            },
            None,
        ));
    }
    anyhow::ensure!(status == 201, "opening the release: {status} {v}");
    let release = v["id"].as_str().context("no release id")?.to_string();
    let url = |path: String| format!("{}{path}", w.base);
    let request_body = |n: usize| {
        json!({
            "email": format!("solicitante{n}@example.co"),
            "applicants": [identity(1, n)],
            "preferences": [{ "city": CITY }],
        })
    };
    // Every requester's first request.
    let bar = w.bar.clone();
    let first = concurrently(cast.agents.len(), |n| {
        let (client, u, b, bar) = (
            cast.agents[n].client.clone(),
            url(format!("/api/v1/releases/{release}/requests")),
            request_body(n),
            bar.clone(),
        );
        async move {
            let r = send(&client, Method::POST, u, Some(b), None).await;
            bar.inc(1);
            r
        }
    })
    .await?;
    let tokens = tokens_from_mail(w).await?;
    let mut held: Vec<Option<Held>> = Vec::new();
    let mut f = ReleaseFigures {
        day: day.to_string(),
        seats_offered,
        seats_to_people: 0,
        seats_to_bots: 0,
        people,
        bots,
        writes_by_people: 0,
        writes_by_bots: 0,
        bot_answers: BTreeMap::new(),
        people_without_seat: 0,
        replayed: None,
    };
    for (n, (status, v)) in first.iter().enumerate() {
        match cast.agents[n].who {
            Who::Person => f.writes_by_people += 1,
            Who::Bot => {
                f.writes_by_bots += 1;
                *f.bot_answers.entry(answer_key(*status, v)).or_default() += 1;
            }
        }
        let code = v["code"].as_str().filter(|_| *status == 202);
        held.push(code.and_then(|c| {
            tokens.get(c).map(|t| Held {
                code: c.to_string(),
                token: t.clone(),
            })
        }));
    }
    // The proof of email: the link of the mail, followed.
    let verified = concurrently(held.len(), |n| {
        let client = cast.agents[n].client.clone();
        let h = held[n].as_ref().map(|h| {
            (
                url(format!("/api/v1/requests/{}/verify", h.code)),
                h.token.clone(),
            )
        });
        let bar = bar.clone();
        async move {
            let Some((u, token)) = h else {
                return Ok(false);
            };
            let (status, _) = send(
                &client,
                Method::POST,
                u,
                Some(json!({ "token": token })),
                None,
            )
            .await?;
            bar.inc(1);
            Ok(status == 200)
        }
    })
    .await?;
    // The bots' spam: the rest of their hundred requests each.
    let bot_ids: Vec<usize> = (0..cast.agents.len())
        .filter(|n| cast.agents[*n].who == Who::Bot)
        .collect();
    let spam = concurrently(bot_ids.len(), |i| {
        let n = bot_ids[i];
        let (client, u, b, bar) = (
            cast.agents[n].client.clone(),
            url(format!("/api/v1/releases/{release}/requests")),
            request_body(n),
            bar.clone(),
        );
        async move {
            let mut answers: Vec<String> = Vec::new();
            for _ in 1..BOT_REQUESTS {
                let (status, v) =
                    send(&client, Method::POST, u.clone(), Some(b.clone()), None).await?;
                bar.inc(1);
                answers.push(answer_key(status, &v));
            }
            Ok(answers)
        }
    })
    .await?;
    for answers in spam {
        for a in answers {
            f.writes_by_bots += 1;
            *f.bot_answers.entry(a).or_default() += 1;
        }
    }
    // The draw: the worker step, run at the period's close, draws it.
    crate::ballot::round(
        &w.server.app,
        w.server.app.fair.reconfirm,
        close + pasaporte_core::jiff::SignedDuration::from_secs(1),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the fair-access worker step: {e}"))?;
    let v = w.get(&format!("/api/v1/releases/{release}")).await?;
    anyhow::ensure!(v["state"] == "drawn", "the release was not drawn: {v}");
    f.replayed = Some(replay_published(w, &release).await?);
    // Each requester looks at their request.
    for (n, h) in held.iter().enumerate() {
        let Some(h) = h.as_ref().filter(|_| verified[n]) else {
            if cast.agents[n].who == Who::Person {
                f.people_without_seat += 1;
            }
            continue;
        };
        let (status, v) = w
            .call(
                &cast.agents[n].client,
                Method::GET,
                &format!("/api/v1/requests/{}", h.code),
                None,
                Auth::Bearer(&h.token),
            )
            .await?;
        anyhow::ensure!(status == 200, "request {}: {status} {v}", h.code);
        let seated = v["status"] == "allocated";
        match (cast.agents[n].who, seated) {
            (Who::Person, true) => f.seats_to_people += 1,
            (Who::Bot, true) => f.seats_to_bots += 1,
            (Who::Person, false) => f.people_without_seat += 1,
            (Who::Bot, false) => {}
        }
        if let Some(code) = v["booking_code"].as_str().filter(|_| seated) {
            let (status, b) = w
                .call(
                    &w.client,
                    Method::GET,
                    &format!("/api/v1/bookings/{code}"),
                    None,
                    Auth::Bearer(&h.token),
                )
                .await?;
            anyhow::ensure!(status == 200, "allocated booking {code}: {status} {b}");
            w.acknowledged.push(Acknowledged {
                code: code.to_string(),
                token: h.token.clone(),
                office: b["office"].as_str().unwrap_or_default().to_string(),
                start: b["start"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    Ok((Step::Done(f), Some(BallotState { held })))
}

/// A strike: the largest Bogotá office closed on the live release's day,
/// by a supervisor over the staff API; the service re-seats its bookings
/// (the nearest equivalent seats: same city, that day or the next) or,
/// with none free, keeps them displaced for their citizens to choose.
async fn strike(w: &mut World, day: Date) -> anyhow::Result<Step<StrikeFigures>> {
    w.phase("strike: an office closed for a day", 1);
    let office = w.offices.first().cloned().unwrap_or_default();
    let path = format!("/api/v1/staff/offices/{office}/closures");
    let (status, v) = w
        .staff(
            &w.supervisor,
            Method::POST,
            &path,
            Some(&json!({ "day": day.to_string(), "reason": "Paro (simulacro julio 2025)" })),
        )
        .await?;
    if matches!(status, 404 | 405) && v.is_null() {
        return Ok(Step::NotAvailable {
            why: format!("POST {path}: not in this build"),
        });
    }
    anyhow::ensure!(status == 200, "closing {office} on {day}: {status} {v}");
    let moved = v["moved"].as_u64().unwrap_or(0);
    let displaced = v["displaced"].as_u64().unwrap_or(0);
    Ok(Step::Done(StrikeFigures {
        office,
        day: day.to_string(),
        bookings_affected: moved + displaced,
        reseated: moved,
        displaced,
    }))
}

/// The production step's two printing vendors (their simulators run
/// in-process) and their sites.
const MAIN_VENDOR: &str = "imprenta-principal";
const MAIN_SITE: &str = "sitio-principal";
const SECOND_VENDOR: &str = "imprenta-segunda";
const SECOND_SITE: &str = "sitio-segundo";

/// Booklet stock down to 10 days, the main vendor drained: applicants walk
/// in at the production office, are captured, checked by the registry
/// simulator, pay through the payment simulator and are approved (all over
/// the staff API); orders go to the main vendor, which is then drained over
/// the staff API while orders go on to the second vendor. Stock is received
/// (as `pasaporte stock receive` does) so that, once the orders are made,
/// ten days of it are left at the rate of the last thirty.
async fn production(w: &mut World) -> anyhow::Result<(Step<StockFigures>, Step<VendorFigures>)> {
    use crate::signing::SigningKey;
    use crate::vendors::{VendorSimConfig, spawn_vendor_sim};
    use pasaporte_core::production::{BookletType, SerialRange};
    let per_vendor = APPLICATIONS_PER_VENDOR as u64;
    w.phase(
        "production: stock, orders, the vendor switch",
        per_vendor * 2 * 12,
    );
    // Stock: every booklet these orders take, and what is left: `left` in
    // stock against `2 × per_vendor` issued over the forecast's window.
    let issued = 2 * per_vendor;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let left = ((STOCK_DAYS_TARGET * issued as f64) / f64::from(crate::capacity::STOCK_WINDOW_DAYS))
        .round() as u64;
    let per_site = per_vendor + left.div_ceil(2);
    let received = per_site * 2;
    let now = Timestamp::now();
    for (prefix, site) in [("SA", MAIN_SITE), ("SB", SECOND_SITE)] {
        let range = SerialRange::parse(&format!("{prefix}0000001-{prefix}{per_site:07}"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut tx = w.store.begin_write().await?;
        pasaporte_store::receive_range(
            &mut tx,
            &range,
            BookletType::Pages32,
            site,
            "simulacro",
            now.as_millisecond(),
        )
        .await?;
        tx.commit().await?;
    }
    let mut sims = Vec::new();
    let mut add_vendor = async |id: &str, site: &str| -> anyhow::Result<()> {
        let secret = crate::crypto::hex(&crate::crypto::random_bytes::<32>()?);
        let key = SigningKey::new(id, secret.as_bytes().to_vec())?;
        let mut cfg = VendorSimConfig::local(format!("{}/api/v1/vendors/callback", w.base), key);
        cfg.delivery_backoff_first = Duration::from_millis(50);
        let sim = spawn_vendor_sim(cfg).await?;
        crate::pipeline::save_vendor(
            &w.store,
            &w.keys,
            id,
            &sim.url(),
            &secret,
            site,
            1,
            "*",
            "*",
            Timestamp::now(),
        )
        .await?;
        sims.push(sim);
        Ok(())
    };
    add_vendor(MAIN_VENDOR, MAIN_SITE).await?;
    let first = walk_to_orders(w, 0, per_vendor).await?;
    // The vendor has them (accepted or further) before it drains: an order
    // still queued would move to the second vendor with the switch.
    let deadline = Instant::now() + Duration::from_secs(STEP_WAIT_SECS);
    while orders_held_by(w, MAIN_VENDOR).await? < per_vendor {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for the main vendor to take its orders"
        );
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    let before = orders_by_vendor(w).await?;
    add_vendor(SECOND_VENDOR, SECOND_SITE).await?;
    let (status, v) = w
        .staff(
            &w.admin,
            Method::POST,
            &format!("/api/v1/staff/vendors/{MAIN_VENDOR}/state"),
            Some(&json!({ "state": "draining" })),
        )
        .await?;
    anyhow::ensure!(status == 200, "draining the main vendor: {status} {v}");
    walk_to_orders(w, per_vendor, first + per_vendor).await?;
    let after = orders_by_vendor(w).await?;
    let count = |m: &BTreeMap<String, u64>, v: &str| m.get(v).copied().unwrap_or(0);
    let vendors = VendorFigures {
        main_vendor: MAIN_VENDOR.into(),
        second_vendor: SECOND_VENDOR.into(),
        before_to_main: count(&before, MAIN_VENDOR),
        before_to_second: count(&before, SECOND_VENDOR),
        after_to_main: count(&after, MAIN_VENDOR) - count(&before, MAIN_VENDOR),
        after_to_second: count(&after, SECOND_VENDOR) - count(&before, SECOND_VENDOR),
    };
    // Orders are placed with their booklets reserved; wait until every
    // one is personalised (the forecast's rate counts those).
    let deadline = Instant::now() + Duration::from_secs(STEP_WAIT_SECS);
    let line = loop {
        let (status, stock) = w
            .staff(&w.supervisor, Method::GET, "/api/v1/staff/stock", None)
            .await?;
        anyhow::ensure!(status == 200, "stock: {status} {stock}");
        let line = stock["forecasts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["booklet_type"] == BookletType::Pages32.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        if line["issued"].as_u64() >= Some(issued) {
            break line;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for the booklets to be personalised: {line}"
        );
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    };
    let published = w.get("/api/v1/capacity?days=1").await?;
    let stock = StockFigures {
        booklets_received: received,
        personalised: line["issued"].as_u64().unwrap_or(0),
        in_stock: line["in_stock"].as_u64().unwrap_or(0),
        days_left: line["days_left"].as_f64(),
        rationing_applies: published["rationing"]["applies"].as_bool().unwrap_or(false),
        rationing_rule: published["rationing"]
            .get(if w.lang == Lang::En {
                "rule_en"
            } else {
                "rule_es"
            })
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    drop(sims);
    Ok((Step::Done(stock), Step::Done(vendors)))
}

/// Orders placed per vendor, from the staff API.
async fn orders_by_vendor(w: &World) -> anyhow::Result<BTreeMap<String, u64>> {
    let (status, v) = w
        .staff(&w.supervisor, Method::GET, "/api/v1/staff/orders", None)
        .await?;
    anyhow::ensure!(status == 200, "orders: {status} {v}");
    let mut out = BTreeMap::new();
    for c in v["counts"].as_array().into_iter().flatten() {
        if let Some(vendor) = c["vendor"].as_str() {
            *out.entry(vendor.to_string()).or_default() += c["count"].as_u64().unwrap_or(0);
        }
    }
    Ok(out)
}

/// Orders a vendor holds (accepted by it, or further along).
async fn orders_held_by(w: &World, vendor: &str) -> anyhow::Result<u64> {
    let (status, v) = w
        .staff(&w.supervisor, Method::GET, "/api/v1/staff/orders", None)
        .await?;
    anyhow::ensure!(status == 200, "orders: {status} {v}");
    Ok(v["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["vendor"] == vendor && !matches!(c["state"].as_str(), Some("queued" | "dead"))
        })
        .map(|c| c["count"].as_u64().unwrap_or(0))
        .sum())
}

/// A portrait or signature that passes the capture checks (a smooth
/// pattern; the simulation needs no face).
fn png(width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// Polls until `ready` says so, or fails after [`STEP_WAIT_SECS`].
async fn wait_until<F, Fut>(what: &str, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs(STEP_WAIT_SECS);
    while !ready().await? {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    Ok(())
}

/// Between two looks at a worker's progress.
const POLL_MS: u64 = 25;
/// The workers' round: short, so the run does not wait on them.
const WORKER_INTERVAL_MS: u64 = 50;
/// The scenario's first day is at least this many days ahead, so that its
/// bookings are made before the reconfirmation window (72 hours) opens.
const FIRST_DAY_AFTER_DAYS: i64 = 4;

/// Walks applicants `from..to` from walking in to an order placed; returns
/// how many orders exist once theirs are.
async fn walk_to_orders(w: &World, from: u64, to: u64) -> anyhow::Result<u64> {
    use base64::Engine as _;
    use pasaporte_core::jiff::civil::date;
    use pasaporte_core::person::{DocumentNumber, DocumentType};
    use pasaporte_core::registry::{RegistryQuery, RegistryRecord, Sex, VitalStatus};
    let b64 = base64::engine::general_purpose::STANDARD;
    let photo = b64.encode(png(600, 750)?);
    let signature = b64.encode(png(600, 200)?);
    let mut ids = Vec::new();
    for n in from..to {
        let number = format!("{}", 79_000_000 + n);
        let kind = DocumentType::CedulaCiudadania;
        w.registry.controls.add_person(
            &RegistryQuery {
                document_type: kind,
                document_number: DocumentNumber::parse(kind, &number, "n")
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?,
            },
            RegistryRecord {
                surnames: "QUINTANILLA ZABALETA".into(),
                given_names: "XIMENA ROCIO".into(),
                birth_date: date(1988, 11, 23),
                birth_place: "BOGOTA D.C.".into(),
                sex: Sex::F,
                nationality: "COL".into(),
                status: VitalStatus::Alive,
                document_cancelled: false,
            },
        )?;
        let (status, v) = w
            .staff(
                &w.supervisor,
                Method::POST,
                &format!("/api/v1/staff/offices/{PRODUCTION_OFFICE}/walk-ins"),
                Some(&json!({
                    "document_type": "cedula_ciudadania",
                    "document_number": number,
                    "surnames": "Quintanilla Zabaleta",
                    "given_names": "Ximena Rocío",
                    "birth_date": "1988-11-23",
                })),
            )
            .await?;
        anyhow::ensure!(status == 201, "walk-in: {status} {v}");
        let id = v["application"]
            .as_str()
            .context("no application id")?
            .to_string();
        let (status, v) = w
            .staff(
                &w.supervisor,
                Method::POST,
                &format!("/api/v1/staff/applications/{id}/capture"),
                Some(&json!({
                    "passport_type": "ordinario",
                    "surnames": "Quintanilla Zabaleta",
                    "given_names": "Ximena Rocío",
                    "birth_date": "1988-11-23",
                    "birth_place": "Bogotá, D.C.",
                    "sex": "F",
                    "nationality": "COL",
                    "email": format!("solicitante{n}@example.co"),
                    "phone": "+57 310 555 0101",
                    "fingerprint.device_id": "scanner-07",
                    "fingerprint.quality": "82",
                    "fingerprint.template_sha256": "ab".repeat(32),
                    "fingerprint.fingers_captured": "10",
                    "fingerprint.captured_at_ms": Timestamp::now().as_millisecond().to_string(),
                    "reason": "first",
                    "photo_base64": photo,
                    "signature_base64": signature,
                })),
            )
            .await?;
        anyhow::ensure!(status == 200, "capture: {status} {v}");
        ids.push(id);
    }
    for id in &ids {
        wait_for_state(w, id, "registry_verified").await?;
    }
    for id in &ids {
        // The reference the citizen is given (at the counter and by mail);
        // then the citizen pays it at the gateway.
        let deadline = Instant::now() + Duration::from_secs(STEP_WAIT_SECS);
        let reference = loop {
            if let Some(r) = w.store.payment_reference_of(id).await? {
                break r;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "timed out waiting for a payment reference"
            );
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        };
        let r = w
            .payments_client
            .post(format!(
                "{}/v1/references/{}/pay",
                w.payments.url(),
                reference.reference
            ))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "paying: {}", r.status());
    }
    for id in &ids {
        wait_for_state(w, id, "paid").await?;
        let (status, v) = w
            .staff(
                &w.supervisor,
                Method::POST,
                &format!("/api/v1/staff/applications/{id}/approve"),
                None,
            )
            .await?;
        anyhow::ensure!(status == 200, "approve: {status} {v}");
    }
    let deadline = Instant::now() + Duration::from_secs(STEP_WAIT_SECS);
    loop {
        let placed = orders_by_vendor(w).await?.values().sum::<u64>();
        if placed >= to {
            return Ok(placed);
        }
        if Instant::now() >= deadline {
            let (_, v) = w
                .staff(
                    &w.supervisor,
                    Method::GET,
                    "/api/v1/staff/orders?state=queued",
                    None,
                )
                .await?;
            anyhow::bail!("timed out waiting for the production orders ({placed} of {to}): {v}");
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

async fn wait_for_state(w: &World, id: &str, state: &str) -> anyhow::Result<()> {
    wait_until(state, || async {
        let (status, v) = w
            .staff(
                &w.supervisor,
                Method::GET,
                &format!("/api/v1/staff/applications/{id}"),
                None,
            )
            .await?;
        anyhow::ensure!(status == 200, "application: {status} {v}");
        Ok(v["state"] == state)
    })
    .await
}

/// Reconfirmation (the lead's API), with the service's default windows
/// (asked 72 hours before, the seat kept until 24 hours before). The
/// scenario's days are [`FIRST_DAY_AFTER_DAYS`] ahead, so the run cannot
/// wait for those instants: the fair-access worker step
/// (`ballot::round`, what the server's worker loop runs every round) is
/// run at them, which is, with the ballot's draw at its period's close,
/// the simulation's only shift of the clock. Every
/// citizen and staff action stays over HTTP with the real clock: each
/// citizen confirms from the reminder's link with [`CONFIRM_PROBABILITY`];
/// the unconfirmed seats are released at their deadline, the ballot day's
/// offered to its waitlist in draw order, and the waitlisted accept. Of the
/// unconfirmed, [`NO_SHOW_OF_UNCONFIRMED`] would not have come: seats that
/// would have stood empty.
async fn reconfirmation(
    w: &mut World,
    seed: u64,
    cast: &Cast,
    days: &[Date],
    ballot: Option<&BallotState>,
) -> anyhow::Result<Step<ReconfirmFigures>> {
    use crate::ballot::Reconfirm;
    let mut rng = SplitMix64::stream(seed, 3);
    w.phase("reconfirmation", w.acknowledged.len() as u64 * 2);
    let Some(first) = w.acknowledged.first() else {
        return Ok(Step::NotAvailable {
            why: "no bookings to reconfirm".into(),
        });
    };
    let path = format!("/api/v1/bookings/{}/confirm", first.code);
    if !has_route(w, Method::POST, &path, None).await {
        return Ok(Step::NotAvailable {
            why: "POST /api/v1/bookings/{code}/confirm: not in this build".into(),
        });
    }
    let rc = Reconfirm::default();
    let midnight =
        |d: Date| -> anyhow::Result<Timestamp> { Ok(d.in_tz("America/Bogota")?.timestamp()) };
    let hours = |h: i64| pasaporte_core::jiff::SignedDuration::from_hours(h);
    let round = async |at: Timestamp| {
        crate::ballot::round(&w.server.app, Some(rc), at)
            .await
            .map_err(|e| anyhow::anyhow!("the fair-access worker step: {e}"))
    };
    let mut f = ReconfirmFigures {
        asked: 0,
        confirmed: 0,
        freed_to_waitlist: 0,
        filled_from_waitlist: 0,
        no_shows_avoided: 0,
        released: 0,
    };
    // The reminders: a day's appointments all fall in the window opened at
    // two days before its midnight.
    for d in days {
        f.asked += round(midnight(*d)? - hours(rc.ask_hours - 24))
            .await?
            .reminded as u64;
    }
    let mut unconfirmed = 0;
    for (i, b) in w.acknowledged.iter().enumerate() {
        if rng.chance(CONFIRM_PROBABILITY) {
            let device = agent_client(agent_ip(2, i))?;
            let (status, v) = w
                .call(
                    &device,
                    Method::POST,
                    &format!("/api/v1/bookings/{}/confirm", b.code),
                    Some(&json!({ "token": b.token })),
                    Auth::None,
                )
                .await?;
            anyhow::ensure!(status == 200, "confirming {}: {status} {v}", b.code);
            f.confirmed += 1;
        } else {
            unconfirmed += 1;
            if rng.chance(NO_SHOW_OF_UNCONFIRMED) {
                f.no_shows_avoided += 1;
            }
        }
    }
    // The deadlines: six hours before a day's midnight every appointment of
    // the day is within its last 24 hours.
    for d in days {
        f.released += round(midnight(*d)? - hours(6)).await?.released as u64;
    }
    anyhow::ensure!(
        f.released == unconfirmed,
        "{} of {unconfirmed} unconfirmed seats released",
        f.released
    );
    // The waitlisted find an offer on their request, and take it.
    for (n, h) in ballot
        .iter()
        .flat_map(|b| b.held.iter().enumerate())
        .filter_map(|(n, h)| h.as_ref().map(|h| (n, h)))
    {
        let (_, v) = w
            .call(
                &cast.agents[n].client,
                Method::GET,
                &format!("/api/v1/requests/{}", h.code),
                None,
                Auth::Bearer(&h.token),
            )
            .await?;
        if v["status"] != "offered" {
            continue;
        }
        f.freed_to_waitlist += 1;
        let device = agent_client(agent_ip(3, n))?;
        let (status, v) = w
            .call(
                &device,
                Method::POST,
                &format!("/api/v1/requests/{}/accept", h.code),
                Some(&json!({ "token": h.token })),
                Auth::None,
            )
            .await?;
        anyhow::ensure!(status == 200, "accepting an offer: {status} {v}");
        f.filled_from_waitlist += 1;
        let code = v["booking_code"].as_str().unwrap_or(&h.code).to_string();
        let (_, b) = w
            .call(
                &w.client,
                Method::GET,
                &format!("/api/v1/bookings/{code}"),
                None,
                Auth::Bearer(&h.token),
            )
            .await?;
        w.acknowledged.push(Acknowledged {
            code,
            token: h.token.clone(),
            office: b["office"].as_str().unwrap_or_default().to_string(),
            start: b["start"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(Step::Done(f))
}

/// Every acknowledged booking looked up with its own token: (vanished, moved).
async fn vanished(w: &World) -> anyhow::Result<(u64, u64)> {
    let (mut gone, mut moved) = (0, 0);
    for b in &w.acknowledged {
        let (status, v) = w
            .call(
                &w.client,
                Method::GET,
                &format!("/api/v1/bookings/{}", b.code),
                None,
                Auth::Bearer(&b.token),
            )
            .await?;
        let kept = status == 200
            && matches!(
                v["status"].as_str(),
                Some(
                    "active" | "checked_in" | "no_show" | "cancelled" | "unconfirmed" | "displaced"
                )
            );
        if !kept {
            gone += 1;
        } else if v["office"] != b.office.as_str() || !same_instant(&v["start"], &b.start) {
            moved += 1;
        }
    }
    Ok((gone, moved))
}

fn same_instant(a: &Value, b: &str) -> bool {
    let a = a.as_str().and_then(|s| s.parse::<Timestamp>().ok());
    a.is_some() && a == b.parse::<Timestamp>().ok()
}

/// The Bogotá offices' seats per day from the published capacity, with the
/// demand the scenario put on each day.
async fn capacity_days(
    w: &World,
    from: Date,
    demand: &BTreeMap<String, u64>,
) -> anyhow::Result<Vec<DayRow>> {
    let v = w
        .get(&format!("/api/v1/capacity?from={from}&days=7"))
        .await?;
    let mut rows: BTreeMap<String, DayRow> = BTreeMap::new();
    for o in v["offices"].as_array().into_iter().flatten() {
        if !w.offices.iter().any(|c| o["code"] == c.as_str()) {
            continue;
        }
        for d in o["days"].as_array().into_iter().flatten() {
            let day = d["date"].as_str().unwrap_or_default().to_string();
            let row = rows.entry(day.clone()).or_insert_with(|| DayRow {
                demand: demand.get(&day).copied().unwrap_or(0),
                day,
                offered: 0,
                booked: 0,
                withheld: 0,
                reasons: Vec::new(),
            });
            row.offered += d["offered"].as_u64().unwrap_or(0);
            row.booked += d["booked"].as_u64().unwrap_or(0);
            row.withheld += d["withheld"].as_u64().unwrap_or(0);
            for r in d["reasons"].as_array().into_iter().flatten() {
                if let Some(code) = r["code"].as_str()
                    && !row.reasons.iter().any(|c| c == code)
                {
                    row.reasons.push(code.to_string());
                }
            }
        }
    }
    Ok(rows.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_offices_keep_codes_and_reach_the_seats() {
        let (csv, codes) = scaled_offices_csv(100).unwrap();
        assert_eq!(codes, ["BOG-CEN", "BOG-NOR", "BOG-AME", "BOG-C13"]);
        let offices = pasaporte_core::office::parse_offices_csv(&csv).unwrap();
        let counters: u32 = offices.iter().map(|o| o.counters).sum();
        assert!(
            counters * 9 >= 100 && counters * 9 < 100 + 9 * 4,
            "{counters}"
        );
        assert!(offices[0].counters >= offices[2].counters);
    }

    #[test]
    fn a_fifth_are_bots_and_addresses_differ() {
        assert_eq!(bot_count(300), 60);
        assert_eq!(bot_count(PEOPLE_MIN), 22);
        assert_ne!(agent_ip(0, 1), agent_ip(0, 251));
        assert_ne!(agent_ip(0, 1), agent_ip(1, 1));
    }
}
