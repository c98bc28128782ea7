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

pub mod load;
pub mod pg;
pub mod report;
pub mod rng;
pub mod smtp;

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
/// Most requesters: each is a loopback address (two blocks of 62,500 per
/// address group fit in 127.0.0.0/8 beside the others).
pub const PEOPLE_MAX: usize = 125_000;
/// Up to this many requesters the live release runs one request at a time
/// in the order of simulated time, so a seed gives the same seats to the
/// same requesters; above it (`--scale national`) bots and people send at
/// once ([`SENDERS_AT_SCALE`] in flight), each requester's own writes in
/// order, and the live figures depend on the races (not replayable).
pub const SEQUENTIAL_LIVE_MAX: usize = 20_000;
/// `--scale national`: requesters (a third as many seats a release day:
/// about 33,000 across the Bogotá offices).
pub const NATIONAL_PEOPLE: usize = 100_000;
/// `--scale national`: nodes on the one PostgreSQL.
pub const NATIONAL_NODES: usize = 3;
/// Most nodes: each keeps a pool of database connections, a writer and
/// worker loops in this one process.
pub const NODES_MAX: usize = 8;
/// Seconds to wait for the outbox to send every queued mail (a national
/// run queues a few hundred thousand).
pub const MAIL_WAIT_SECS: u64 = 900;
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
/// Share of the unconfirmed who would not come (the issue's 30% no-shows).
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

/// A preset of the run's size.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// At least [`NATIONAL_PEOPLE`] requesters, [`NATIONAL_NODES`] nodes, a
    /// PostgreSQL started by the command (unless `--postgres URL`).
    National,
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
    /// it), or `start`: a throw-away PostgreSQL started (and removed) by the
    /// command; without it, a SQLite file in a temporary folder.
    #[arg(long, env = "PASAPORTE_SIM_PG_URL")]
    pub postgres: Option<String>,
    /// Nodes serving the run, each a server of its own (listener, writer,
    /// caches, worker loops) on the one database; clients are spread over
    /// them by address. More than one needs PostgreSQL.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// `national`: at least 100,000 requesters on 3 nodes and a PostgreSQL
    /// started by the command.
    #[arg(long, value_enum)]
    pub scale: Option<Scale>,
    /// The report's language: `es` or `en`.
    #[arg(long, default_value = "es")]
    pub lang: String,
}

pub async fn run(cmd: SimulateCommand) -> anyhow::Result<()> {
    match cmd {
        SimulateCommand::July2025(args) => {
            // Ctrl-C or SIGTERM drops the run, whose drop stops the nodes and
            // the PostgreSQL it started (and removes its files).
            let outcome = tokio::select! {
                r = july_2025(&args, true) => r?,
                () = crate::shutdown_signal() => anyhow::bail!("interrupted"),
            };
            println!("{}", outcome.markdown);
            println!("{}", outcome.report_path.display());
            anyhow::ensure!(
                outcome.figures.vanished == 0 && outcome.figures.slot_mismatches == 0,
                "{} appointments vanished, {} slots miscounted",
                outcome.figures.vanished,
                outcome.figures.slot_mismatches
            );
            anyhow::ensure!(
                outcome.figures.mail.exactly_once(),
                "mail not sent exactly once: {:?}",
                outcome.figures.mail
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
    /// Nodes that served the run.
    pub nodes: u64,
    /// Requests, rates and latencies per phase and node (not replayable).
    pub load: Vec<load::PhaseLoad>,
    /// Mail: what the outbox recorded sent against what the mail server got.
    pub mail: MailFigures,
}

/// Every mail of the run, sent by whichever node held the outbox's lease.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MailFigures {
    /// Mails the outbox recorded sent at the end.
    pub outbox_sent: u64,
    /// Mails queued at the run's later instants (reminders and offers of
    /// the worker step run days ahead): not due yet, so not sent.
    pub outbox_later: u64,
    /// Messages the run's mail server received, and how many distinct
    /// Message-IDs (one per outbox row) among them.
    pub received: u64,
    pub distinct: u64,
    /// Received more than once (must be 0).
    pub duplicates: u64,
}

impl MailFigures {
    /// Each mail sent, and received, exactly once.
    pub fn exactly_once(&self) -> bool {
        self.duplicates == 0 && self.received == self.distinct && self.distinct == self.outbox_sent
    }
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
    let mut args = args.clone();
    if args.scale == Some(Scale::National) {
        args.people = args.people.max(NATIONAL_PEOPLE);
        args.nodes = args.nodes.max(NATIONAL_NODES);
        if args.postgres.is_none() {
            args.postgres = Some("start".into());
        }
    }
    anyhow::ensure!(
        (1..=NODES_MAX).contains(&args.nodes),
        "--nodes goes from 1 to {NODES_MAX}"
    );
    anyhow::ensure!(
        args.nodes == 1 || args.postgres.is_some(),
        "several nodes share one PostgreSQL: add --postgres URL or --postgres start"
    );
    // Kept until the run ends: dropping it stops the server and removes
    // its files, also when the run fails.
    let mut started_pg = None;
    if args.postgres.as_deref() == Some("start") {
        let pg = pg::ThrowawayPg::start()?;
        args.postgres = Some(pg.url.clone());
        started_pg = Some(pg);
    }
    let result = july_2025_on(&args, show_progress).await;
    drop(started_pg);
    result
}

async fn july_2025_on(args: &July2025Args, show_progress: bool) -> anyhow::Result<Outcome> {
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
    tracing::info!(seconds = figures.seconds, "simulation finished");
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

/// A simulated requester: their own loopback address, and the node the
/// load balancer sends that address to. Their HTTP client is made when
/// they act and dropped after (a national run has 200,000 requesters: kept,
/// their idle connections would outnumber the process's files).
struct Agent {
    who: Who,
    ip: Ipv4Addr,
    node: usize,
}

impl Agent {
    fn client(&self) -> anyhow::Result<reqwest::Client> {
        agent_client(self.ip)
    }
}

/// A booking the server acknowledged (201), as its citizen keeps it.
struct Acknowledged {
    code: String,
    token: String,
    office: String,
    start: String,
}

/// What a request needs besides its client: the nodes' addresses, the
/// meter and the progress bar; cheap to clone into concurrent senders.
#[derive(Clone)]
struct Net {
    bases: std::sync::Arc<Vec<String>>,
    meter: load::Meter,
    bar: ProgressBar,
}

impl Net {
    /// One request to `node`; the answer's status and JSON body (`Null`
    /// when not JSON), timed for the report.
    async fn call(
        &self,
        node: usize,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: Auth<'_>,
    ) -> anyhow::Result<(u16, Value)> {
        let node = node % self.bases.len();
        let mut req = client.request(method.clone(), format!("{}{path}", self.bases[node]));
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
        self.send(node, req, &method, path).await
    }

    /// A POST of a body serialized once (a bot's repeated write).
    async fn post_json_bytes(
        &self,
        node: usize,
        client: &reqwest::Client,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        let node = node % self.bases.len();
        let req = client
            .post(format!("{}{path}", self.bases[node]))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(node, req, &Method::POST, path).await
    }

    async fn send(
        &self,
        node: usize,
        req: reqwest::RequestBuilder,
        method: &Method,
        path: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let started = Instant::now();
        let r = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        self.meter.record(node, started.elapsed());
        self.bar.inc(1);
        Ok((status, v))
    }
}

/// The server and the outside parties of one run.
struct World {
    /// Node 0's address: staff, set-up and measures go there.
    base: String,
    client: reqwest::Client,
    store: Store,
    keys: Keyring,
    supervisor: StaffLogin,
    admin: StaffLogin,
    bar: ProgressBar,
    net: Net,
    /// The nodes; node 0 is the one the payment simulator calls back.
    nodes: Vec<Server>,
    smtp: smtp::SmtpSink,
    /// Requests in flight at once in the concurrent steps.
    senders: usize,
    /// Whether the live release runs one request at a time (replayable).
    sequential_live: bool,
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
    /// One request to node 0.
    async fn call(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: Auth<'_>,
    ) -> anyhow::Result<(u16, Value)> {
        self.net.call(0, client, method, path, body, auth).await
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

    /// A new phase: `key` names it in the report's load table.
    fn phase(&self, key: &'static str, msg: &'static str, more: u64) {
        self.net.meter.start_phase(key);
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

/// Address groups in use (see [`scenario`]).
const ADDRESS_GROUPS: usize = 6;
/// Requesters per address block: 250 × 250 addresses.
const ADDRESS_BLOCK: usize = 62_500;

/// Requester `n`'s loopback address, one per requester: 127.(10 + group).x.y
/// for the first [`ADDRESS_BLOCK`], then 127.(10 + group + 6 × block).x.y.
fn agent_ip(group: u8, n: usize) -> Ipv4Addr {
    let block = n / ADDRESS_BLOCK;
    let m = n % ADDRESS_BLOCK;
    let second = u8::try_from(10 + usize::from(group) + ADDRESS_GROUPS * block).unwrap_or(u8::MAX);
    let hi = u8::try_from(m / 250).unwrap_or(u8::MAX);
    let lo = u8::try_from(m % 250 + 1).unwrap_or(1);
    Ipv4Addr::new(127, second, hi, lo)
}

/// The node a load balancer that balances by client address sends `ip` to
/// (sticky: a client's rate-limit buckets stay on one node).
fn node_of(ip: Ipv4Addr, nodes: usize) -> usize {
    (u32::from(ip) as usize) % nodes.max(1)
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
    let counters_max = pasaporte_core::office::COUNTERS_MAX as usize;
    // People one counter serves in an hour: one, unless the largest office
    // would need more counters than an office may have (a national run):
    // then shorter services, so the counters fit.
    let mut per_hour = 1;
    let scaled = loop {
        // Nine one-hour slots in the demo offices' weekday (07:00–16:00).
        let wanted = seats.div_ceil(9 * per_hour).max(rows.len());
        let mut scaled: Vec<usize> = counters
            .iter()
            .map(|c| (c * wanted / total).max(1))
            .collect();
        let (mut i, n) = (0, scaled.len());
        while scaled.iter().sum::<usize>() < wanted {
            scaled[i % n] += 1;
            i += 1;
        }
        if scaled.iter().all(|c| *c <= counters_max) || per_hour >= SERVICES_PER_HOUR_MAX {
            break scaled;
        }
        per_hour += 1;
    };
    let service_minutes = 60 / per_hour;
    let mut csv = String::from(
        "code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days\n",
    );
    let mut codes = Vec::new();
    for (f, c) in rows.iter().zip(&scaled) {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{c},{},,{service_minutes},60,60\n",
            f[0],
            f[1],
            f[2],
            f[3],
            f[4],
            f[5],
            f[6],
            f[7],
            c * 9 * per_hour
        ));
        codes.push(f[0].clone());
    }
    Ok((csv, codes))
}

/// Services per counter per hour at most when scaling (60 divides by each
/// number up to it: 5-minute services).
const SERVICES_PER_HOUR_MAX: usize = 12;

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
    store: Store,
    fair: crate::ballot::FairSettings,
    addr: SocketAddr,
    smtp: SocketAddr,
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
        store,
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
    // Every node runs the outbox too: the lease lets one send at a time.
    let mail = crate::mail::SmtpConfig {
        host: smtp.ip().to_string(),
        port: smtp.port(),
        security: "none".into(),
        username: None,
        password: None,
        from: "Citas de pasaporte <citas@pasaporte.invalid>".into(),
        retry_first: Duration::from_millis(100),
    };
    let (outbox_app, outbox_lease) = (app.clone(), lease(crate::lease::OUTBOX));
    tasks.push(tokio::spawn(async move {
        let interval = Duration::from_millis(OUTBOX_INTERVAL_MS);
        if let Err(e) = crate::mail::run_outbox(outbox_app, mail, interval, outbox_lease).await {
            tracing::error!(error = %e, "the simulation's outbox stopped");
        }
    }));
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
    let store = crate::open_store(&crate::DbArgs {
        database: database.clone(),
    })
    .await?;
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
        registry_url: registry.url(),
        payments_url: payments.url(),
        payments_secret,
        document_signer: (ds.key_pem()?, ds.cert_pem()?),
    };
    let smtp = smtp::SmtpSink::start().await?;
    let mut nodes =
        vec![start_server_at(&parts, store.clone(), fair(), callback_addr, smtp.addr).await?];
    for _ in 1..args.nodes {
        // A node of its own: its own pool of connections, writer, caches,
        // listener and worker loops, on the same database.
        let own = crate::open_store(&crate::DbArgs {
            database: database.clone(),
        })
        .await?;
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        nodes.push(start_server_at(&parts, own, fair(), any_port, smtp.addr).await?);
    }
    let base = nodes[0].base.clone();
    let net = Net {
        bases: std::sync::Arc::new(nodes.iter().map(|n| n.base.clone()).collect()),
        meter: load::Meter::new(nodes.len()),
        bar: bar.clone(),
    };
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
        net,
        nodes,
        smtp,
        senders: if args.people > SEQUENTIAL_LIVE_MAX {
            SENDERS_AT_SCALE
        } else {
            SENDERS_AT_ONCE
        },
        sequential_live: args.people <= SEQUENTIAL_LIVE_MAX,
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
    fn new(requesters: usize, first_group: u8, nodes: usize) -> anyhow::Result<Self> {
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
            let ip = agent_ip(group, n);
            agents.push(Agent {
                who,
                ip,
                node: node_of(ip, nodes),
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
    let cast = Cast::new(args.people, 0, args.nodes)?;
    let ballot_cast = Cast::new(args.people, 4, args.nodes)?;

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

    w.phase("measures", "measuring", w.acknowledged.len() as u64 + 2);
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
    // Mail: every node's outbox worker has run all along; once nothing
    // waits, what the outbox recorded sent against what the server got.
    w.phase("mail", "mail: the outbox drained", 0);
    let outbox = outbox_drained(&w).await?;
    let (received, distinct) = w.smtp.counts();
    let mail = MailFigures {
        outbox_sent: u64::try_from(outbox.sent).unwrap_or(0),
        outbox_later: u64::try_from(outbox.waiting).unwrap_or(0),
        received,
        distinct,
        duplicates: received.saturating_sub(distinct),
    };
    let load = w.net.meter.figures();
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
        nodes: w.nodes.len() as u64,
        load,
        mail,
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
    slots_on(&w.net, 0, client, office, day).await
}

/// One office-day's slots as `node` shows them.
async fn slots_on(
    net: &Net,
    node: usize,
    client: &reqwest::Client,
    office: &str,
    day: Date,
) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let (status, v) = net
        .call(
            node,
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
/// seats. Up to [`SEQUENTIAL_LIVE_MAX`] requesters, run in the order of
/// simulated time, one request at a time, so the same seed gives the same
/// seats to the same requesters; above it, concurrently (see
/// [`live_release_at_scale`]).
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
        "live",
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
    if !w.sequential_live {
        live_release_at_scale(w, cast, day, seed, &mut f).await?;
        return Ok(f);
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
    // A bot's seat in view (office, start) until told the slot is full.
    let mut bot_target: BTreeMap<usize, (String, String)> = BTreeMap::new();
    // The bots' clients, kept for their hundred writes.
    let mut bot_clients: BTreeMap<usize, reqwest::Client> = BTreeMap::new();
    let offices = w.offices.clone();
    for (_, n, _) in events {
        let agent = &cast.agents[n];
        match agent.who {
            Who::Bot => {
                let client = match bot_clients.get(&n) {
                    Some(c) => c.clone(),
                    None => {
                        let c = agent.client()?;
                        bot_clients.insert(n, c.clone());
                        c
                    }
                };
                if !bot_target.contains_key(&n) {
                    // Poll: the first free seat in the offices' order.
                    'poll: for o in &offices {
                        for (start, _, remaining) in
                            slots_on(&w.net, agent.node, &client, o, day).await?
                        {
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
                let (status, v) = book(w, agent, &client, n, &office, &start).await?;
                *f.bot_answers.entry(answer_key(status, &v)).or_default() += 1;
                if status == 201 {
                    f.seats_to_bots += 1;
                } else if v["error"]["code"] == "slot_full" {
                    bot_target.remove(&n);
                }
            }
            Who::Person => {
                let client = agent.client()?;
                let mut order = offices.clone();
                rng.shuffle(&mut order);
                let mut attempts = 0;
                let mut booked = false;
                'offices: for o in &order {
                    let free: Vec<String> = slots_on(&w.net, agent.node, &client, o, day)
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
                    let (status, _) = book(w, agent, &client, n, o, start).await?;
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

/// What one requester of the live release did at scale.
#[derive(Default)]
struct LiveOutcome {
    writes: u64,
    seated: bool,
    answers: BTreeMap<String, u64>,
    acknowledged: Option<Acknowledged>,
}

/// The live release above [`SEQUENTIAL_LIVE_MAX`] requesters: the bots
/// first (they are there in the release's first second), [`World::senders`]
/// of them at once, each sending its hundred writes in a row over one
/// connection with its body serialized once (so the bots' extra requests
/// cost the client little: most are answered 429 by the rate limits); then
/// the people in their order of arrival, as many at once, each choosing
/// with a stream of the seed of their own.
async fn live_release_at_scale(
    w: &mut World,
    cast: &Cast,
    day: Date,
    seed: u64,
    f: &mut ReleaseFigures,
) -> anyhow::Result<()> {
    let offices = std::sync::Arc::new(w.offices.clone());
    let bot_ids: Vec<usize> = (0..cast.agents.len())
        .filter(|n| cast.agents[*n].who == Who::Bot)
        .collect();
    let bot_outcomes = concurrently(w.senders, bot_ids.len(), |i| {
        let n = bot_ids[i];
        let (net, offices) = (w.net.clone(), offices.clone());
        let (node, client) = (cast.agents[n].node, cast.agents[n].client());
        async move {
            let client = client?;
            let mut out = LiveOutcome::default();
            // The seat in view and its booking body, serialized once.
            let mut target: Option<(String, String, Vec<u8>)> = None;
            for _ in 0..BOT_REQUESTS {
                if target.is_none() {
                    'poll: for o in offices.iter() {
                        for (start, _, remaining) in slots_on(&net, node, &client, o, day).await? {
                            if remaining > 0 {
                                let body = serde_json::to_vec(&booking_body(n, o, &start))?;
                                target = Some((o.clone(), start, body));
                                break 'poll;
                            }
                        }
                    }
                }
                let Some((office, start, body)) = target.as_ref() else {
                    *out.answers.entry("no seat left".into()).or_default() += 1;
                    continue;
                };
                out.writes += 1;
                let (status, v) = net
                    .post_json_bytes(node, &client, "/api/v1/bookings", body.clone())
                    .await?;
                *out.answers.entry(answer_key(status, &v)).or_default() += 1;
                if status == 201 {
                    out.seated = true;
                    out.acknowledged = Some(acknowledged(&v, office, start));
                } else if v["error"]["code"] == "slot_full" {
                    target = None;
                }
            }
            Ok(out)
        }
    })
    .await?;
    for o in bot_outcomes {
        f.writes_by_bots += o.writes;
        f.seats_to_bots += u64::from(o.seated);
        for (k, c) in o.answers {
            *f.bot_answers.entry(k).or_default() += c;
        }
        w.acknowledged.extend(o.acknowledged);
    }
    // People in their order of arrival.
    let mut rng = SplitMix64::stream(seed, 1);
    let mut people: Vec<(u64, usize)> = (0..cast.agents.len())
        .filter(|n| cast.agents[*n].who == Who::Person)
        .map(|n| (rng.below(ARRIVAL_MINUTES * 60_000), n))
        .collect();
    people.sort_unstable();
    let person_outcomes = concurrently(w.senders, people.len(), |i| {
        let n = people[i].1;
        let (net, offices) = (w.net.clone(), offices.clone());
        let (node, client) = (cast.agents[n].node, cast.agents[n].client());
        async move {
            let client = client?;
            let mut rng = SplitMix64::stream(seed, PERSON_STREAM_FIRST + n as u64);
            let mut order = offices.to_vec();
            rng.shuffle(&mut order);
            let mut out = LiveOutcome::default();
            for o in &order {
                let free: Vec<String> = slots_on(&net, node, &client, o, day)
                    .await?
                    .into_iter()
                    .filter(|s| s.2 > 0)
                    .map(|s| s.0)
                    .collect();
                if free.is_empty() {
                    continue;
                }
                let start = &free[rng.below(free.len() as u64) as usize];
                out.writes += 1;
                let (status, v) = net
                    .call(
                        node,
                        &client,
                        Method::POST,
                        "/api/v1/bookings",
                        Some(&booking_body(n, o, start)),
                        Auth::None,
                    )
                    .await?;
                if status == 201 {
                    out.seated = true;
                    out.acknowledged = Some(acknowledged(&v, o, start));
                    break;
                }
                if out.writes >= u64::from(PERSON_ATTEMPTS) {
                    break;
                }
            }
            Ok(out)
        }
    })
    .await?;
    for o in person_outcomes {
        f.writes_by_people += o.writes;
        if o.seated {
            f.seats_to_people += 1;
        } else {
            f.people_without_seat += 1;
        }
        w.acknowledged.extend(o.acknowledged);
    }
    Ok(())
}

/// The seed's streams of the people of a live release at scale start here
/// (1 and 3 are the live release's and reconfirmation's own).
const PERSON_STREAM_FIRST: u64 = 1_000;

/// Requester `n`'s booking of one seat (release 0: the live release).
fn booking_body(n: usize, office: &str, start: &str) -> Value {
    json!({
        "office": office,
        "start": start,
        "applicants": [identity(0, n)],
        "email": format!("persona{n}@example.co"),
    })
}

/// A 201's booking, as its citizen keeps it.
fn acknowledged(v: &Value, office: &str, start: &str) -> Acknowledged {
    Acknowledged {
        code: v["code"].as_str().unwrap_or_default().to_string(),
        token: v["manage_token"].as_str().unwrap_or_default().to_string(),
        office: office.to_string(),
        start: start.to_string(),
    }
}

/// One booking write by requester `n` (release 0: the live release).
async fn book(
    w: &mut World,
    agent: &Agent,
    client: &reqwest::Client,
    n: usize,
    office: &str,
    start: &str,
) -> anyhow::Result<(u16, Value)> {
    let (status, v) = w
        .net
        .call(
            agent.node,
            client,
            Method::POST,
            "/api/v1/bookings",
            Some(&booking_body(n, office, start)),
            Auth::None,
        )
        .await?;
    if status == 201 {
        w.acknowledged.push(acknowledged(&v, office, start));
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

/// Senders at once in the concurrent steps (each requester's own writes
/// stay in order).
const SENDERS_AT_ONCE: usize = 16;
/// Senders at once above [`SEQUENTIAL_LIVE_MAX`] requesters: enough to keep
/// two cores busy, few enough that latencies measure the servers, not a
/// queue of clients.
const SENDERS_AT_SCALE: usize = 64;
/// The ballot's request period: every request, proof and bot's spam of the
/// run is in long before it closes; the draw then runs at its close
/// through the worker step (see [`reconfirmation`] on the run's clock).
const BALLOT_PERIOD_MINUTES: i64 = 60;
/// The links' tokens in the mail of the run, by request code, read the
/// way a mail client would: once the outbox has sent every queued mail, from
/// the run's mail server.
async fn tokens_from_mail(w: &World) -> anyhow::Result<BTreeMap<String, String>> {
    outbox_drained(w).await?;
    Ok(w.smtp.verify_tokens())
}

/// Waits until the outbox has no mail due (every node's worker may send;
/// one at a time holds the lease). Mail queued by the worker step run at
/// the run's later instants (reminders, offers) is dated then: it waits,
/// not due yet, and is counted apart.
async fn outbox_drained(w: &World) -> anyhow::Result<pasaporte_store::OutboxStats> {
    let deadline = Instant::now() + Duration::from_secs(MAIL_WAIT_SECS);
    loop {
        // A mail reaches the mail server before it is recorded sent: once
        // none is due, every one recorded sent has been received.
        if w.store
            .due_mail(Timestamp::now().as_millisecond(), 1)
            .await?
            .is_empty()
        {
            return Ok(w.store.outbox_stats().await?);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for the outbox: {:?}",
            w.store.outbox_stats().await?
        );
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// Runs `f(i)` for `0..n`, `senders` at a time (a new one starts as one
/// ends); results in order.
async fn concurrently<F, Fut, T>(senders: usize, n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut out: Vec<Option<T>> = Vec::with_capacity(n);
    out.resize_with(n, || None);
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < n || !set.is_empty() {
        while next < n && set.len() < senders.max(1) {
            let fut = f(next);
            let j = next;
            set.spawn(async move { (j, fut.await) });
            next += 1;
        }
        if let Some(r) = set.join_next().await {
            let (j, r) = r?;
            out[j] = Some(r?);
        }
    }
    Ok(out.into_iter().flatten().collect())
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
        "ballot",
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
    let request_body = |n: usize| {
        json!({
            "email": format!("solicitante{n}@example.co"),
            "applicants": [identity(1, n)],
            "preferences": [{ "city": CITY }],
        })
    };
    let requests_path = format!("/api/v1/releases/{release}/requests");
    // Every requester's first request.
    let first = concurrently(w.senders, cast.agents.len(), |n| {
        let (net, node, client, path, b) = (
            w.net.clone(),
            cast.agents[n].node,
            cast.agents[n].client(),
            requests_path.clone(),
            request_body(n),
        );
        async move {
            net.call(node, &client?, Method::POST, &path, Some(&b), Auth::None)
                .await
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
    let verified = concurrently(w.senders, held.len(), |n| {
        let (net, node, client) = (w.net.clone(), cast.agents[n].node, cast.agents[n].client());
        let h = held[n].as_ref().map(|h| {
            (
                format!("/api/v1/requests/{}/verify", h.code),
                json!({ "token": h.token }),
            )
        });
        async move {
            let Some((path, body)) = h else {
                return Ok(false);
            };
            let (status, _) = net
                .call(node, &client?, Method::POST, &path, Some(&body), Auth::None)
                .await?;
            Ok(status == 200)
        }
    })
    .await?;
    // The bots' spam: the rest of their hundred requests each, over one
    // connection, the body serialized once.
    let bot_ids: Vec<usize> = (0..cast.agents.len())
        .filter(|n| cast.agents[*n].who == Who::Bot)
        .collect();
    let spam = concurrently(w.senders, bot_ids.len(), |i| {
        let n = bot_ids[i];
        let (net, node, client, path, b) = (
            w.net.clone(),
            cast.agents[n].node,
            cast.agents[n].client(),
            requests_path.clone(),
            serde_json::to_vec(&request_body(n)),
        );
        async move {
            let (client, b) = (client?, b?);
            let mut answers: BTreeMap<String, u64> = BTreeMap::new();
            for _ in 1..BOT_REQUESTS {
                let (status, v) = net.post_json_bytes(node, &client, &path, b.clone()).await?;
                *answers.entry(answer_key(status, &v)).or_default() += 1;
            }
            Ok(answers)
        }
    })
    .await?;
    for answers in spam {
        for (a, c) in answers {
            f.writes_by_bots += c;
            *f.bot_answers.entry(a).or_default() += c;
        }
    }
    // The draw: the worker step, run at the period's close, draws it.
    crate::ballot::round(
        &w.nodes[0].app,
        w.nodes[0].app.fair.reconfirm,
        close + pasaporte_core::jiff::SignedDuration::from_secs(1),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the fair-access worker step: {e}"))?;
    let v = w.get(&format!("/api/v1/releases/{release}")).await?;
    anyhow::ensure!(v["state"] == "drawn", "the release was not drawn: {v}");
    f.replayed = Some(replay_published(w, &release).await?);
    // Each requester looks at their request; the seated, at their booking.
    let looks = concurrently(w.senders, held.len(), |n| {
        let (net, node, client) = (w.net.clone(), cast.agents[n].node, cast.agents[n].client());
        let h = held[n]
            .as_ref()
            .filter(|_| verified[n])
            .map(|h| (h.code.clone(), h.token.clone()));
        async move {
            let Some((code, token)) = h else {
                return Ok(None);
            };
            let client = client?;
            let (status, v) = net
                .call(
                    node,
                    &client,
                    Method::GET,
                    &format!("/api/v1/requests/{code}"),
                    None,
                    Auth::Bearer(&token),
                )
                .await?;
            anyhow::ensure!(status == 200, "request {code}: {status} {v}");
            let seated = v["status"] == "allocated";
            let mut booking = None;
            if let Some(b) = v["booking_code"].as_str().filter(|_| seated) {
                let (status, v) = net
                    .call(
                        node,
                        &client,
                        Method::GET,
                        &format!("/api/v1/bookings/{b}"),
                        None,
                        Auth::Bearer(&token),
                    )
                    .await?;
                anyhow::ensure!(status == 200, "allocated booking {b}: {status} {v}");
                booking = Some(Acknowledged {
                    code: b.to_string(),
                    token: token.clone(),
                    office: v["office"].as_str().unwrap_or_default().to_string(),
                    start: v["start"].as_str().unwrap_or_default().to_string(),
                });
            }
            Ok(Some((seated, booking)))
        }
    })
    .await?;
    for (n, look) in looks.into_iter().enumerate() {
        let Some((seated, booking)) = look else {
            if cast.agents[n].who == Who::Person {
                f.people_without_seat += 1;
            }
            continue;
        };
        match (cast.agents[n].who, seated) {
            (Who::Person, true) => f.seats_to_people += 1,
            (Who::Bot, true) => f.seats_to_bots += 1,
            (Who::Person, false) => f.people_without_seat += 1,
            (Who::Bot, false) => {}
        }
        w.acknowledged.extend(booking);
    }
    Ok((Step::Done(f), Some(BallotState { held })))
}

/// A strike: the largest Bogotá office closed on the live release's day,
/// by a supervisor over the staff API; the service re-seats its bookings
/// (the nearest equivalent seats: same city, that day or the next) or,
/// with none free, keeps them displaced for their citizens to choose.
async fn strike(w: &mut World, day: Date) -> anyhow::Result<Step<StrikeFigures>> {
    w.phase("strike", "strike: an office closed for a day", 1);
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
        "production",
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
/// The outbox's round (a pass sends up to `mail::MAIL_BATCH_MAX`): short, so
/// a national run's few hundred thousand mails keep up.
const OUTBOX_INTERVAL_MS: u64 = 10;
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
    w.phase(
        "reconfirmation",
        "reconfirmation",
        w.acknowledged.len() as u64 * 2,
    );
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
        crate::ballot::round(&w.nodes[0].app, Some(rc), at)
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
    // Who confirms, decided in the bookings' order (the seed's stream).
    let mut unconfirmed = 0;
    let mut confirming = Vec::new();
    for (i, b) in w.acknowledged.iter().enumerate() {
        if rng.chance(CONFIRM_PROBABILITY) {
            confirming.push((i, b.code.clone(), b.token.clone()));
        } else {
            unconfirmed += 1;
            if rng.chance(NO_SHOW_OF_UNCONFIRMED) {
                f.no_shows_avoided += 1;
            }
        }
    }
    let nodes = w.nodes.len();
    concurrently(w.senders, confirming.len(), |j| {
        let (i, code, token) = confirming[j].clone();
        let net = w.net.clone();
        async move {
            let ip = agent_ip(2, i);
            let (status, v) = net
                .call(
                    node_of(ip, nodes),
                    &agent_client(ip)?,
                    Method::POST,
                    &format!("/api/v1/bookings/{code}/confirm"),
                    Some(&json!({ "token": token })),
                    Auth::None,
                )
                .await?;
            anyhow::ensure!(status == 200, "confirming {code}: {status} {v}");
            Ok(())
        }
    })
    .await?;
    f.confirmed = confirming.len() as u64;
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
    let waiting: Vec<(usize, String, String)> = ballot
        .iter()
        .flat_map(|b| b.held.iter().enumerate())
        .filter_map(|(n, h)| h.as_ref().map(|h| (n, h.code.clone(), h.token.clone())))
        .collect();
    let taken = concurrently(w.senders, waiting.len(), |j| {
        let (n, code, token) = waiting[j].clone();
        let (net, node, client) = (w.net.clone(), cast.agents[n].node, cast.agents[n].client());
        async move {
            let (_, v) = net
                .call(
                    node,
                    &client?,
                    Method::GET,
                    &format!("/api/v1/requests/{code}"),
                    None,
                    Auth::Bearer(&token),
                )
                .await?;
            if v["status"] != "offered" {
                return Ok(None);
            }
            let device_ip = agent_ip(3, n);
            let device = agent_client(device_ip)?;
            let device_node = node_of(device_ip, nodes);
            let (status, v) = net
                .call(
                    device_node,
                    &device,
                    Method::POST,
                    &format!("/api/v1/requests/{code}/accept"),
                    Some(&json!({ "token": token })),
                    Auth::None,
                )
                .await?;
            anyhow::ensure!(status == 200, "accepting an offer: {status} {v}");
            let booking = v["booking_code"].as_str().unwrap_or(&code).to_string();
            let (_, b) = net
                .call(
                    device_node,
                    &device,
                    Method::GET,
                    &format!("/api/v1/bookings/{booking}"),
                    None,
                    Auth::Bearer(&token),
                )
                .await?;
            Ok(Some(Acknowledged {
                code: booking,
                token,
                office: b["office"].as_str().unwrap_or_default().to_string(),
                start: b["start"].as_str().unwrap_or_default().to_string(),
            }))
        }
    })
    .await?;
    for a in taken.into_iter().flatten() {
        f.freed_to_waitlist += 1;
        f.filled_from_waitlist += 1;
        w.acknowledged.push(a);
    }
    Ok(Step::Done(f))
}

/// Every acknowledged booking looked up with its own token: (vanished, moved).
async fn vanished(w: &World) -> anyhow::Result<(u64, u64)> {
    let looks = concurrently(w.senders, w.acknowledged.len(), |i| {
        let b = &w.acknowledged[i];
        let (net, client) = (w.net.clone(), w.client.clone());
        let (code, token, office, start) = (
            b.code.clone(),
            b.token.clone(),
            b.office.clone(),
            b.start.clone(),
        );
        async move {
            let (status, v) = net
                .call(
                    0,
                    &client,
                    Method::GET,
                    &format!("/api/v1/bookings/{code}"),
                    None,
                    Auth::Bearer(&token),
                )
                .await?;
            let kept = status == 200
                && matches!(
                    v["status"].as_str(),
                    Some(
                        "active"
                            | "checked_in"
                            | "no_show"
                            | "cancelled"
                            | "unconfirmed"
                            | "displaced"
                    )
                );
            let moved =
                kept && (v["office"] != office.as_str() || !same_instant(&v["start"], &start));
            Ok((kept, moved))
        }
    })
    .await?;
    let gone = looks.iter().filter(|(kept, _)| !kept).count() as u64;
    let moved = looks.iter().filter(|(_, moved)| *moved).count() as u64;
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
        assert!(offices.iter().all(|o| o.service_minutes == 60));
        // A national run: more seats than 500 counters serve in hour-long
        // services; the services get shorter, the counters fit.
        let (csv, _) = scaled_offices_csv(NATIONAL_PEOPLE / DEMAND_FACTOR).unwrap();
        let offices = pasaporte_core::office::parse_offices_csv(&csv).unwrap();
        let per_day: u32 = offices
            .iter()
            .map(|o| o.counters * 9 * 60 / o.service_minutes)
            .sum();
        assert!(per_day >= 33_333, "{per_day}");
        assert!(offices.iter().all(|o| o.counters <= 500));
    }

    #[test]
    fn a_fifth_are_bots_and_addresses_differ() {
        assert_eq!(bot_count(300), 60);
        assert_eq!(bot_count(PEOPLE_MIN), 22);
        assert_ne!(agent_ip(0, 1), agent_ip(0, 251));
        assert_ne!(agent_ip(0, 1), agent_ip(1, 1));
        // Past the first block, still one address each, in no other group.
        let mut seen = std::collections::HashSet::new();
        for g in 0..ADDRESS_GROUPS as u8 {
            for n in (0..PEOPLE_MAX).step_by(997).chain([PEOPLE_MAX - 1]) {
                assert!(seen.insert(agent_ip(g, n)), "{g} {n}");
            }
        }
        assert_eq!(agent_ip(0, 300), Ipv4Addr::new(127, 10, 1, 51));
    }
}
