//! Benchmark programs: figures printed, not timed tests. Each run measures the
//! same server's no-op request rate beside the figure, so a ratio can be
//! quoted on a shared, noisy machine.

use crate::crypto::at;
use crate::{DbArgs, KeyArgs, SmtpArgs};
use pasaporte_store::{ApplicantRow, MailRow, NewBooking, Store, WriteOp};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Bookings and availability over loopback HTTP, on SQLite and (with
    /// --postgres) on PostgreSQL.
    Booking {
        /// An admin URL of a PostgreSQL server to also measure (a fresh
        /// database is created on it).
        #[arg(long, env = "PASAPORTE_BENCH_PG_URL")]
        postgres: Option<String>,
        /// Bookings made over HTTP in the throughput run.
        #[arg(long, default_value_t = 20_000)]
        bookings: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Bookings in the database before availability is read.
        #[arg(long, default_value_t = 1_000_000)]
        existing: u64,
        /// Seconds for each rate measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Offered rate for the latency-at-load run.
        #[arg(long, default_value_t = 1000)]
        offered_per_s: u64,
    },
    /// Production: personalisation records per second (approved to a
    /// durable signed order, and to a batch handed to a vendor) and vendor
    /// callbacks applied per second.
    Production(crate::bench_production::ProductionBenchArgs),
}

pub(crate) const BENCH_KEYS: &str =
    "k1:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";
pub(crate) const BENCH_LOOKUP: &str =
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
/// Bench offices: open around the clock, 500 people a slot, so a million
/// bookings fit in ten offices' horizons.
const OFFICES: usize = 10;

fn offices_csv() -> String {
    let mut s = String::from(
        "code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days\n",
    );
    for i in 0..OFFICES {
        s.push_str(&format!(
            "BENCH{i},Banco de pruebas {i},ministry,Bogotá,COL,America/Bogota,00:00-24:00,00:00-24:00,500,24000,00:00-24:00,30,30,120\n"
        ));
    }
    s
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Booking {
            postgres,
            bookings,
            concurrency,
            existing,
            seconds,
            offered_per_s,
        } => {
            let opts = Opts {
                bookings,
                concurrency,
                existing,
                seconds: Duration::from_secs(seconds),
                offered_per_s,
            };
            println!(
                "pasaporte bench booking: {bookings} bookings by {concurrency} clients, {existing} existing bookings, {seconds} s per rate, {} cores",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            );
            let dir = std::env::temp_dir().join(format!("pasaporte-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let sqlite = dir.join("bench.db").to_string_lossy().into_owned();
            let mut rows = vec![("SQLite", bench_backend(&sqlite, &opts).await?)];
            if let Some(admin) = postgres {
                let url = fresh_pg(&admin).await?;
                rows.push(("PostgreSQL", bench_backend(&url, &opts).await?));
            }
            let _ = std::fs::remove_dir_all(&dir);
            print_table(&rows);
        }
        BenchCommand::Production(args) => crate::bench_production::run(args).await?,
    }
    Ok(())
}

async fn fresh_pg(admin: &str) -> anyhow::Result<String> {
    let store = Store::open(admin).await?;
    let url = store
        .create_database(admin, &format!("pasaporte_bench_{}", std::process::id()))
        .await?;
    store.close().await;
    Ok(url)
}

struct Opts {
    bookings: u64,
    concurrency: usize,
    existing: u64,
    seconds: Duration,
    offered_per_s: u64,
}

#[derive(Default)]
struct Figures {
    noop_per_s: f64,
    bookings_per_s: f64,
    booking_p50_ms: f64,
    booking_p99_ms: f64,
    booking_errors: u64,
    offered_per_s: u64,
    offered_p50_ms: f64,
    offered_p99_ms: f64,
    offered_achieved_per_s: f64,
    seed_per_s: f64,
    existing: i64,
    reads_per_s: f64,
    read_p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn person(n: u64) -> Value {
    json!({
        "document_type": "cedula_ciudadania",
        "document_number": format!("{}", 1_000_000_000 + n),
        "surnames": "Muñoz García",
        "given_names": "Ana María",
        "birth_date": "1985-04-02",
    })
}

async fn bench_backend(database: &str, o: &Opts) -> anyhow::Result<Figures> {
    let backend = if database.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    eprintln!("[{backend}] starting a server on a fresh database");
    let store = crate::open_store(&DbArgs {
        database: database.into(),
    })
    .await?;
    crate::import_offices(&store, &offices_csv()).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let keys = KeyArgs {
        data_keys: Some(BENCH_KEYS.into()),
        lookup_key: Some(BENCH_LOOKUP.into()),
        key_file: "/nonexistent".into(),
    };
    let smtp = SmtpArgs {
        smtp_host: None,
        smtp_port: 25,
        smtp_security: "none".into(),
        smtp_user: None,
        smtp_password: None,
        mail_from: "bench <bench@pasaporte.invalid>".into(),
        outbox_interval_ms: 1000,
        smtp_retry_ms: 1000,
    };
    let db = DbArgs {
        database: database.into(),
    };
    let server = tokio::spawn(async move {
        crate::serve(
            crate::ServeArgs {
                db,
                keys,
                smtp,
                listen: "127.0.0.1:0".parse()?,
                public_url: None,
                demo: false,
                work: crate::WorkArgs::none(),
                limits: crate::limits::LimitArgs::off(),
            },
            Some(tx),
        )
        .await
    });
    let base = format!("http://{}", rx.await?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency * 2)
        .build()?;
    let mut f = Figures::default();

    // Every bookable slot of every bench office.
    let mut slots: Vec<(String, String)> = Vec::new();
    for i in 0..OFFICES {
        let office = format!("BENCH{i}");
        for from_day in [0, 60] {
            let from = pasaporte_core::jiff::Timestamp::now()
                .in_tz("America/Bogota")?
                .date()
                .checked_add(pasaporte_core::jiff::Span::new().days(from_day))?;
            let v: Value = client
                .get(format!(
                    "{base}/api/v1/offices/{office}/slots?from={from}&days=60"
                ))
                .send()
                .await?
                .json()
                .await?;
            for s in v["slots"].as_array().into_iter().flatten() {
                slots.push((
                    office.clone(),
                    s["start"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    anyhow::ensure!(!slots.is_empty(), "no bench slots found");
    let slots = Arc::new(slots);

    eprintln!("[{backend}] no-op rate (GET /healthz)");
    f.noop_per_s = closed_loop(o.concurrency, o.seconds, {
        let (client, base) = (client.clone(), base.clone());
        move |_| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                match client.get(format!("{base}/healthz")).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        }
    })
    .await
    .0;

    eprintln!(
        "[{backend}] {} bookings by {} clients",
        o.bookings, o.concurrency
    );
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..o.concurrency {
        let (client, base, slots, next, errors, total) = (
            client.clone(),
            base.clone(),
            slots.clone(),
            next.clone(),
            errors.clone(),
            o.bookings,
        );
        set.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let (office, start) = &slots[(n as usize * 7919) % slots.len()];
                let body = json!({"office": office, "start": start, "applicants": [person(n)], "email": "bench@example.co"});
                let t = Instant::now();
                let ok = client.post(format!("{base}/api/v1/bookings")).json(&body).send().await.map(|r| r.status().as_u16() == 201);
                lat.push(t.elapsed());
                if !matches!(ok, Ok(true)) {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        lat.extend(r?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    f.booking_errors = errors.load(Ordering::Relaxed);
    f.bookings_per_s = (o.bookings - f.booking_errors) as f64 / elapsed;
    f.booking_p50_ms = percentile(&lat, 0.50);
    f.booking_p99_ms = percentile(&lat, 0.99);

    eprintln!(
        "[{backend}] latency at {} bookings/s offered",
        o.offered_per_s
    );
    f.offered_per_s = o.offered_per_s;
    let (p50, p99, achieved) = open_loop(
        &client,
        &base,
        &slots,
        o.offered_per_s,
        o.seconds,
        10_000_000,
    )
    .await;
    (f.offered_p50_ms, f.offered_p99_ms, f.offered_achieved_per_s) = (p50, p99, achieved);

    let have = store.active_bookings().await?;
    if (have as u64) < o.existing {
        let todo = o.existing - have as u64;
        eprintln!("[{backend}] seeding {todo} more bookings directly through the store");
        let t = Instant::now();
        seed(&store, &slots, todo).await?;
        f.seed_per_s = todo as f64 / t.elapsed().as_secs_f64();
    }
    f.existing = store.active_bookings().await?;

    eprintln!(
        "[{backend}] availability reads with {} bookings",
        f.existing
    );
    let (reads, mut read_lat) = closed_loop(o.concurrency, o.seconds, {
        let (client, base) = (client.clone(), base.clone());
        move |i| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let office = i % OFFICES;
                let day = (i / OFFICES) % 60;
                let from = pasaporte_core::jiff::Timestamp::now()
                    .in_tz("America/Bogota")
                    .ok()
                    .and_then(|z| {
                        z.date()
                            .checked_add(pasaporte_core::jiff::Span::new().days(day as i64))
                            .ok()
                    });
                let Some(from) = from else { return false };
                // The whole body is read, as a client would (so the
                // connection goes back to the pool).
                let url = format!("{base}/api/v1/offices/BENCH{office}/slots?from={from}&days=1");
                match client.get(url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        }
    })
    .await;
    read_lat.sort();
    f.reads_per_s = reads;
    f.read_p99_ms = percentile(&read_lat, 0.99);
    server.abort();
    store.close().await;
    Ok(f)
}

/// `clients` loops calling `op` for `dur`; returns successes per second and latencies.
async fn closed_loop<F, Fut>(clients: usize, dur: Duration, op: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let ok = Arc::new(AtomicUsize::new(0));
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (op, ok, counter) = (op.clone(), ok.clone(), counter.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            while started.elapsed() < dur {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if op(i).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                lat.push(t.elapsed());
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        lat.extend(r.unwrap_or_default());
    }
    (
        ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        lat,
    )
}

/// Offers bookings at a fixed rate whatever the answers' pace (open loop), so
/// latency includes any queueing; returns p50, p99 (ms) and the achieved rate.
async fn open_loop(
    client: &reqwest::Client,
    base: &str,
    slots: &Arc<Vec<(String, String)>>,
    per_s: u64,
    dur: Duration,
    first_person: u64,
) -> (f64, f64, f64) {
    let total = per_s * dur.as_secs();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut set = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..total {
        tick.tick().await;
        let (client, base, slots) = (client.clone(), base.to_string(), slots.clone());
        let n = first_person + i;
        set.spawn(async move {
            let (office, start) = &slots[(n as usize * 104_729) % slots.len()];
            let body = json!({"office": office, "start": start, "applicants": [person(n)], "email": "bench@example.co"});
            let t = Instant::now();
            let ok = client.post(format!("{base}/api/v1/bookings")).json(&body).send().await.map(|r| r.status().as_u16() == 201);
            (t.elapsed(), matches!(ok, Ok(true)))
        });
    }
    let mut lat = Vec::new();
    let mut ok = 0u64;
    while let Some(r) = set.join_next().await {
        if let Ok((d, success)) = r {
            lat.push(d);
            ok += u64::from(success);
        }
    }
    lat.sort();
    (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        ok as f64 / started.elapsed().as_secs_f64(),
    )
}

/// Fills the database with `count` bookings through the same batch writes the
/// service uses (sealed fields, seat counts, holds, outbox rows).
async fn seed(store: &Store, slots: &[(String, String)], count: u64) -> anyhow::Result<()> {
    let keys = crate::crypto::Keyring::parse(BENCH_KEYS, BENCH_LOOKUP)?;
    const BATCH: u64 = 2000;
    let mut done = 0;
    let mut last_report = Instant::now();
    while done < count {
        let n = BATCH.min(count - done);
        let mut ops = Vec::with_capacity(n as usize);
        for i in 0..n {
            let p = 2_000_000_000 + done + i;
            let (office, start) = &slots[(p as usize * 7919) % slots.len()];
            let start: pasaporte_core::jiff::Timestamp = start.parse()?;
            let id = uuid::Uuid::now_v7().to_string();
            let mail_id = uuid::Uuid::now_v7().to_string();
            ops.push(WriteOp::Book(NewBooking {
                actor: crate::booking::citizen(&id),
                code: format!("S{:07}", (done + i) % 10_000_000),
                office: office.clone(),
                start_ms: start.as_millisecond(),
                capacity: 500,
                applicants: vec![ApplicantRow {
                    doc_key: keys.person_key(&format!("COL:{p}")),
                    document_type: "cedula_ciudadania".into(),
                    document_number_enc: keys
                        .seal(at::applicant_document_number(&id, 0), &p.to_string())?,
                    surnames_enc: keys.seal(at::applicant_surnames(&id, 0), "Muñoz García")?,
                    given_names_enc: keys.seal(at::applicant_given_names(&id, 0), "Ana María")?,
                    birth_date_enc: keys.seal(at::applicant_birth_date(&id, 0), "1985-04-02")?,
                }],
                email_enc: keys.seal(at::booking_email(&id), "bench@example.co")?,
                phone_enc: None,
                now_ms: pasaporte_core::jiff::Timestamp::now().as_millisecond(),
                idempotency: None,
                mail: MailRow {
                    recipient_enc: keys.seal(at::mail_recipient(&mail_id), "bench@example.co")?,
                    subject: "bench".into(),
                    body_enc: keys.seal(at::mail_body(&mail_id), "bench")?,
                    ics_enc: None,
                    id: mail_id,
                },
                pool: pasaporte_core::shares::Pool::Online,
                urgent: None,
                id,
            }));
        }
        let results = store.apply_batch(&ops).await?;
        let failed = results.iter().filter(|r| r.is_err()).count();
        anyhow::ensure!(
            failed == 0,
            "{failed} seed bookings refused (are the bench slots full?)"
        );
        done += n;
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("  {done} / {count}");
            last_report = Instant::now();
        }
    }
    Ok(())
}

fn print_table(rows: &[(&str, Figures)]) {
    println!();
    println!(
        "| figure | {} |",
        rows.iter().map(|r| r.0).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|{}", "---|".repeat(rows.len()));
    let line = |name: &str, f: &dyn Fn(&Figures) -> String| {
        println!(
            "| {name} | {} |",
            rows.iter().map(|r| f(&r.1)).collect::<Vec<_>>().join(" | ")
        );
    };
    line("no-op requests/s (GET /healthz, the ceiling)", &|f| {
        format!("{:.0}", f.noop_per_s)
    });
    line("durable bookings/s (closed loop)", &|f| {
        format!("{:.0}", f.bookings_per_s)
    });
    line("bookings/s ÷ no-op requests/s", &|f| {
        format!("{:.2}", f.bookings_per_s / f.noop_per_s.max(1.0))
    });
    line("booking latency p50 / p99 (ms)", &|f| {
        format!("{:.1} / {:.1}", f.booking_p50_ms, f.booking_p99_ms)
    });
    line("booking errors", &|f| f.booking_errors.to_string());
    line("offered bookings/s (open loop) → achieved", &|f| {
        format!("{} → {:.0}", f.offered_per_s, f.offered_achieved_per_s)
    });
    line("booking latency at that load p50 / p99 (ms)", &|f| {
        format!("{:.1} / {:.1}", f.offered_p50_ms, f.offered_p99_ms)
    });
    line("bookings in the database for reads", &|f| {
        f.existing.to_string()
    });
    line("seeding through the store (bookings/s)", &|f| {
        format!("{:.0}", f.seed_per_s)
    });
    line("availability reads/s (one office-day)", &|f| {
        format!("{:.0}", f.reads_per_s)
    });
    line("availability reads/s ÷ no-op requests/s", &|f| {
        format!("{:.2}", f.reads_per_s / f.noop_per_s.max(1.0))
    });
    line("availability read p99 (ms)", &|f| {
        format!("{:.1}", f.read_p99_ms)
    });
}
