//! `pasaporte bench production`: the production pipeline's figures, printed.
//!
//! 1. Personalisation: approved applications (seeded with a sealed identity
//!    and a chip portrait, as capture leaves them) become durable, signed
//!    orders (numbers, vendor routing, booklet reservations, MRZ, chip files
//!    signed by a Document Signer, sealed, audited) — records per second; then
//!    the same orders handed to a vendor simulator over loopback HTTP in
//!    signed batches — records per second from approved to handed over.
//! 2. Vendor callbacks: signed `in_production`, `printed`, `quality_passed`
//!    and `shipped` events POSTed by concurrent clients to the server's
//!    callback route, each applied once with the booklet's custody —
//!    callbacks applied per second.
//! 3. The same server's no-op rate (`GET /healthz`) in the same run, for a
//!    ratio that survives a noisy machine.
//!
//! SQLite by default (a fresh file); `--postgres` adds a fresh PostgreSQL
//! database.

use crate::app::{Adapters, App};
use crate::crypto::at;
use crate::pipeline::{self, VendorSettings};
use crate::signing::SigningKey;
use crate::vendors::{EventKind, VendorEvent, VendorSimConfig, spawn_vendor_sim};
use crate::workflow::IdentityDoc;
use pasaporte_core::application::{Application, State};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::production::{BookletType, SerialRange};
use pasaporte_store::{ApplicationRow, CaptureRow, OrderState, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::bench::{BENCH_KEYS, BENCH_LOOKUP};
const OFFICE_CSV: &str = "code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days\nPBENCH,Banco de producción,ministry,Bogotá,COL,America/Bogota,00:00-24:00,00:00-24:00,500,24000,00:00-24:00,30,30,60\n";
const VENDOR: &str = "bench-vendor";
const VENDOR_SECRET: &str = "bench-vendor-shared-secret-0123456789";
const SITE: &str = "bench-site";
/// Deliveries of one callback before the bench gives it up.
const CALLBACK_ATTEMPTS: u32 = 20;
/// Applications seeded per transaction.
const SEED_BATCH: usize = 1_000;

#[derive(clap::Args, Clone, Debug)]
pub struct ProductionBenchArgs {
    /// Approved applications personalised and handed to the vendor.
    #[arg(long, default_value_t = 10_000)]
    pub records: usize,
    /// Concurrent clients posting vendor callbacks (and no-op requests).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds of the no-op rate measurement.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// An admin URL of a PostgreSQL server to also measure (a fresh database
    /// is created on it).
    #[arg(long, env = "PASAPORTE_BENCH_PG_URL")]
    pub postgres: Option<String>,
}

struct Figures {
    backend: &'static str,
    records: usize,
    portrait_bytes: usize,
    personalised_per_s: f64,
    handed_over_per_s: f64,
    callbacks: usize,
    callbacks_per_s: f64,
    noop_per_s: f64,
}

pub async fn run(args: ProductionBenchArgs) -> anyhow::Result<()> {
    println!(
        "pasaporte bench production: {} records, {} clients, {} cores",
        args.records,
        args.concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let dir = std::env::temp_dir().join(format!("pasaporte-bench-prod-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = dir.join("bench.db").to_string_lossy().into_owned();
    let mut rows = vec![bench(&sqlite, "SQLite", &args).await?];
    if let Some(admin) = &args.postgres {
        let store = Store::open(admin).await?;
        let url = store
            .create_database(
                admin,
                &format!("pasaporte_bench_prod_{}", std::process::id()),
            )
            .await?;
        store.close().await;
        rows.push(bench(&url, "PostgreSQL", &args).await?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!(
        "| database | records | chip portrait | personalised, durable /s | approved → handed to vendor /s | callbacks applied /s | no-op requests /s | callbacks / no-op |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for f in &rows {
        println!(
            "| {} | {} | {} KB | {:.0} | {:.0} | {:.0} ({} events) | {:.0} | {:.2} |",
            f.backend,
            f.records,
            f.portrait_bytes / 1024,
            f.personalised_per_s,
            f.handed_over_per_s,
            f.callbacks_per_s,
            f.callbacks,
            f.noop_per_s,
            f.callbacks_per_s / f.noop_per_s.max(1.0),
        );
    }
    Ok(())
}

/// A portrait with a photograph's detail (a smooth face-like oval over a
/// textured background), so its JPEG is as large as a real one's.
fn synthetic_portrait() -> anyhow::Result<Vec<u8>> {
    let (w, h) = (600u32, 750u32);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = (seed % 24) as i32 - 12;
        let (dx, dy) = (x as f32 - 300.0, y as f32 - 360.0);
        let face = (dx * dx) / (190.0 * 190.0) + (dy * dy) / (250.0 * 250.0) < 1.0;
        let base: [i32; 3] = if face {
            [205 - (dy / 8.0) as i32, 160, 130]
        } else {
            [70 + (x / 12) as i32, 90 + (y / 15) as i32, 120]
        };
        let c = |v: i32| (v + noise).clamp(0, 255) as u8;
        image::Rgb([c(base[0]), c(base[1]), c(base[2])])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)?;
    crate::production::chip_portrait(png.get_ref()).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn bench(
    database: &str,
    backend: &'static str,
    args: &ProductionBenchArgs,
) -> anyhow::Result<Figures> {
    eprintln!(
        "[{backend}] fresh database, {} approved applications",
        args.records
    );
    let store = crate::open_store(&crate::DbArgs {
        database: database.into(),
    })
    .await?;
    crate::import_offices(&store, OFFICE_CSV).await?;
    let keys = crate::crypto::Keyring::parse(BENCH_KEYS, BENCH_LOOKUP)?;
    let jpeg = synthetic_portrait()?;
    seed(&store, &keys, &jpeg, args.records).await?;
    let mut tx = store.begin_write().await?;
    let range = SerialRange::parse(&format!("BB0000001-BB{:07}", args.records + 10))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    pasaporte_store::receive_range(
        &mut tx,
        &range,
        BookletType::Pages32,
        SITE,
        "bench",
        Timestamp::now().as_millisecond(),
    )
    .await?;
    tx.commit().await?;

    let (_, ds) = icao9303::generate_test_pki(
        icao9303::StateCode::parse("COL")?,
        std::time::SystemTime::now(),
    )?;
    let adapters = Adapters {
        document_signer: Some(icao9303::DocumentSigner::new(ds.key, ds.cert)?),
        vendor_settings: VendorSettings {
            attempts: 3,
            ..VendorSettings::default()
        },
        ..Adapters::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let app = App::new(
        store.clone(),
        crate::crypto::Keyring::parse(BENCH_KEYS, BENCH_LOOKUP)?,
        base.clone(),
        adapters,
    )
    .await?;
    let router = crate::http::router(app.clone());
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    // A vendor that takes every batch and prints nothing during the run
    // (its `accepted` events still arrive, as they would).
    let key = SigningKey::new(VENDOR, VENDOR_SECRET.as_bytes().to_vec())?;
    let mut cfg = VendorSimConfig::local(format!("{base}/api/v1/vendors/callback"), key.clone());
    cfg.orders_per_s = 0.001;
    let sim = spawn_vendor_sim(cfg).await?;
    pipeline::save_vendor(
        &store,
        &keys,
        VENDOR,
        &sim.url(),
        VENDOR_SECRET,
        SITE,
        1,
        "*",
        "*",
        Timestamp::now(),
    )
    .await?;

    eprintln!("[{backend}] personalising");
    let t0 = Instant::now();
    loop {
        let n = pipeline::order_round(&app, Timestamp::now()).await?;
        if n == 0 {
            break;
        }
    }
    let personalised = t0.elapsed();
    let placed = store
        .order_counts(None)
        .await?
        .iter()
        .map(|c| c.count)
        .sum::<u64>() as usize;
    anyhow::ensure!(
        placed == args.records,
        "{placed} orders placed of {}",
        args.records
    );
    eprintln!("[{backend}] handing the orders to the vendor");
    loop {
        let queued = store
            .orders_in_state(OrderState::Queued, Some(VENDOR), None, 1)
            .await?;
        if queued.is_empty() {
            break;
        }
        pipeline::send_round(&app, Timestamp::now()).await?;
    }
    let handed = t0.elapsed();

    eprintln!("[{backend}] vendor callbacks");
    let mut events = Vec::with_capacity(args.records * 4);
    let mut orders = Vec::new();
    for state in [OrderState::Accepted, OrderState::Queued] {
        orders.extend(
            store
                .orders_in_state(state, Some(VENDOR), None, u32::MAX / 2)
                .await?,
        );
    }
    for (i, o) in orders.iter().enumerate() {
        for (k, kind) in [
            EventKind::InProduction,
            EventKind::Printed,
            EventKind::QualityPassed,
            EventKind::Shipped,
        ]
        .into_iter()
        .enumerate()
        {
            let shipped = kind == EventKind::Shipped;
            events.push(VendorEvent {
                event_id: format!("bench-{i}-{k}"),
                order_id: o.order_id.clone(),
                kind,
                reason: None,
                booklet_serial: shipped.then(|| o.booklet_serial.clone().unwrap_or_default()),
                tracking: shipped.then(|| format!("TRK{i:09}")),
                occurred_ms: Timestamp::now().as_millisecond(),
            });
        }
    }
    // Each client takes one order's events in order (a vendor reports an
    // order's steps one after the other), orders in parallel.
    let per_order: Vec<Vec<VendorEvent>> = events.chunks(4).map(<[VendorEvent]>::to_vec).collect();
    let per_order = Arc::new(per_order);
    let next = Arc::new(AtomicUsize::new(0));
    let applied = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let t1 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (per_order, next, applied, client, key, base) = (
            per_order.clone(),
            next.clone(),
            applied.clone(),
            client.clone(),
            key.clone(),
            base.clone(),
        );
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(evs) = per_order.get(i) else { break };
                for e in evs {
                    let Ok(body) = serde_json::to_vec(e) else {
                        continue;
                    };
                    // As a vendor does: the same event again until a 2xx
                    // (a transaction that lost a race answers 5xx).
                    for attempt in 0..CALLBACK_ATTEMPTS {
                        let mut req = client
                            .post(format!("{base}/api/v1/vendors/callback"))
                            .header("content-type", "application/json");
                        for (k, v) in key.headers(crate::signing::now_secs(), &body) {
                            req = req.header(k, v);
                        }
                        if let Ok(r) = req.body(body.clone()).send().await
                            && r.status().is_success()
                        {
                            applied.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5 << attempt.min(6))).await;
                    }
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let callbacks_time = t1.elapsed();
    let callbacks = applied.load(Ordering::Relaxed);
    let shipped = store
        .orders_in_state(OrderState::Shipped, Some(VENDOR), None, u32::MAX / 2)
        .await?
        .len();
    anyhow::ensure!(
        shipped == orders.len(),
        "{shipped} of {} orders shipped",
        orders.len()
    );

    eprintln!("[{backend}] no-op rate");
    let noop = Arc::new(AtomicUsize::new(0));
    let t2 = Instant::now();
    let dur = Duration::from_secs(args.seconds);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (noop, client, base) = (noop.clone(), client.clone(), base.clone());
        set.spawn(async move {
            while t2.elapsed() < dur {
                if let Ok(r) = client.get(format!("{base}/healthz")).send().await
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    noop.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let noop_per_s = noop.load(Ordering::Relaxed) as f64 / t2.elapsed().as_secs_f64();
    sim.shutdown().await;
    Ok(Figures {
        backend,
        records: args.records,
        portrait_bytes: jpeg.len(),
        personalised_per_s: args.records as f64 / personalised.as_secs_f64(),
        handed_over_per_s: args.records as f64 / handed.as_secs_f64(),
        callbacks,
        callbacks_per_s: callbacks as f64 / callbacks_time.as_secs_f64(),
        noop_per_s,
    })
}

/// Approved applications as capture and approval leave them.
async fn seed(
    store: &Store,
    keys: &crate::crypto::Keyring,
    jpeg: &[u8],
    count: usize,
) -> anyhow::Result<()> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let identity = serde_json::to_value(IdentityDoc {
        document_type: "cedula_ciudadania".into(),
        document_number: "1020304050".into(),
        surnames: "MUÑOZ GARCÍA".into(),
        given_names: "ANA MARÍA".into(),
        birth_date: "1985-04-02".into(),
        birth_place: "BOGOTÁ D.C.".into(),
        sex: "F".into(),
        nationality: "COL".into(),
    })?;
    let chip_b64 = b64.encode(jpeg);
    let now = Timestamp::now();
    let now_ms = now.as_millisecond();
    let mut done = 0;
    while done < count {
        let n = SEED_BATCH.min(count - done);
        let mut tx = store.begin_write().await?;
        for i in 0..n {
            let id = uuid::Uuid::now_v7().to_string();
            // Every value is sealed for its row, as capture seals it.
            let mut sealed = serde_json::Map::new();
            for (k, v) in identity.as_object().into_iter().flatten() {
                let text = v.as_str().unwrap_or_default();
                let place = at::application_identity(&id).field(k);
                sealed.insert(k.clone(), keys.seal(place, text)?.into());
            }
            let identity_enc = serde_json::Value::Object(sealed).to_string();
            let contact_enc = serde_json::json!({
                "email": keys.seal(
                    at::application_contact(&id).field("email"),
                    "bench@example.co",
                )?,
            })
            .to_string();
            let extras_enc = keys.seal(at::application_extras(&id), "{}")?;
            let chip_enc = keys.seal(at::chip_portrait(&id), &chip_b64)?;
            let approved = Application::restore(id.clone(), "PBENCH", now, State::Approved, now);
            let row = ApplicationRow {
                id: id.clone(),
                position: 0,
                office: "PBENCH".into(),
                appointment_ms: now_ms,
                doc_key: keys.person_key(&format!("BENCH:{}", done + i)),
                state: State::Approved.as_str().into(),
                state_since_ms: now_ms,
                deadline_ms: approved.deadline().map(|d| d.as_millisecond()),
                queue: approved.queue().as_str().into(),
                ticket: format!("B{}", done + i),
                created_ms: now_ms,
                ..ApplicationRow::default()
            };
            pasaporte_store::insert_application(&mut tx, &row).await?;
            pasaporte_store::save_capture(
                &mut tx,
                &id,
                1,
                &CaptureRow {
                    passport_type: "ordinario",
                    identity_enc: &identity_enc,
                    contact_enc: &contact_enc,
                    extras_enc: &extras_enc,
                    photo_enc: "",
                    photo_sha256: "",
                    signature_enc: "",
                    chip_portrait_enc: &chip_enc,
                },
            )
            .await?;
        }
        tx.commit().await?;
        done += n;
    }
    Ok(())
}
