//! `pasaporte`: the service and its command line (the binary is a thin `main`).
//!
//! Layout: `main.rs` parses the command line and runs one command; `app.rs`
//! holds what use cases share; `booking.rs` the booking use cases; `writer.rs`
//! the group-commit writer; `availability.rs` the in-memory seat view;
//! `cache_sync.rs` keeps it, the offices and the release coverage in step
//! with other nodes' writes;
//! `crypto.rs` personal-data sealing; `mail.rs` and `ics.rs` what citizens
//! receive; `workflow.rs` the office's use cases and `workers.rs` the steps
//! nobody clicks; `auth/` staff sign-in, sessions and CSRF; `photo.rs` the
//! portrait and signature checks; `registry/`, `payments/` and `vendors/` the
//! outside parties' adapters and simulators, `signing.rs` the HMAC scheme
//! they share; `production.rs` the personalisation record (data page, MRZ,
//! chip files) and its check; `http/` the API, the citizen pages and the
//! staff console; `bench.rs` the benchmark programs.

pub mod app;
pub mod audit_cli;
pub mod auth;
pub mod availability;
pub mod ballot;
pub mod ballot_cli;
pub mod bench;
pub mod bench_production;
pub mod booking;
pub mod cache_sync;
pub mod capacity;
pub mod crypto;
pub mod deployment_keys;
pub mod http;
pub mod i18n;
pub mod icao_cli;
pub mod ics;
pub mod lease;
pub mod limits;
pub mod mail;
pub mod payments;
pub mod person_keys;
pub mod photo;
pub mod pipeline;
pub mod production;
pub mod registry;
pub mod reseal;
pub mod reseat;
pub mod signing;
pub mod simulate;
pub mod stock_cli;
pub mod vendor_cli;
pub mod vendors;

pub mod workers;
pub mod workflow;
pub mod writer;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pasaporte",
    version,
    about = "Passport issuance: appointments, applications, production."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives and how it is sealed.
#[derive(clap::Args, Clone)]
pub struct DbArgs {
    /// A SQLite file path, or a postgres:// URL.
    #[arg(long, env = "PASAPORTE_DATABASE", default_value = "./pasaporte.db")]
    pub database: String,
}

#[derive(clap::Args, Clone)]
pub struct KeyArgs {
    /// Data keys, `id:hex64[,id:hex64...]`, the first one sealing new data.
    #[arg(long, env = "PASAPORTE_DATA_KEYS", hide_env_values = true)]
    pub data_keys: Option<String>,
    /// The key for lookups by identity (hex64).
    #[arg(long, env = "PASAPORTE_LOOKUP_KEY", hide_env_values = true)]
    pub lookup_key: Option<String>,
    /// Without keys in the environment, read (or create) them in this file.
    #[arg(long, env = "PASAPORTE_KEY_FILE", default_value = "./pasaporte.keys")]
    pub key_file: PathBuf,
}

impl KeyArgs {
    /// The keys for `store`, once they agree with the keys its data was
    /// written with ([`deployment_keys::agree`]). A key file is only made
    /// for a database that holds no sealed data yet.
    pub async fn keyring_for(
        &self,
        store: &pasaporte_store::Store,
    ) -> anyhow::Result<crypto::Keyring> {
        let given = self.data_keys.is_some() || self.lookup_key.is_some();
        if !given
            && !self.key_file.exists()
            && (!store.recorded_keys().await?.is_empty() || store.holds_sealed_data().await?)
        {
            anyhow::bail!(
                "this database already holds data sealed with keys this node was not given: set PASAPORTE_DATA_KEYS and PASAPORTE_LOOKUP_KEY (or --key-file) to the deployment's keys; no key file was made"
            );
        }
        let keyring = self.keyring()?;
        deployment_keys::agree(store, &keyring, auth::now_ms()).await?;
        Ok(keyring)
    }

    /// The keys as given, without asking a database: for tools and tests
    /// that make their own; a node uses [`KeyArgs::keyring_for`].
    pub fn keyring(&self) -> anyhow::Result<crypto::Keyring> {
        Ok(match (&self.data_keys, &self.lookup_key) {
            (Some(d), Some(l)) => crypto::Keyring::parse(d, l)?,
            (None, None) => {
                let k = crypto::Keyring::load_or_create(&self.key_file)?;
                tracing::warn!(
                    file = %self.key_file.display(),
                    "data keys read from a file next to the data; in production pass PASAPORTE_DATA_KEYS and PASAPORTE_LOOKUP_KEY from a secret store"
                );
                k
            }
            _ => {
                anyhow::bail!("give both PASAPORTE_DATA_KEYS and PASAPORTE_LOOKUP_KEY, or neither")
            }
        })
    }
}

#[derive(clap::Args, Clone)]
pub struct SmtpArgs {
    /// Mail server; without it mail waits in the outbox.
    #[arg(long, env = "PASAPORTE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "PASAPORTE_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    #[arg(long, env = "PASAPORTE_SMTP_SECURITY", default_value = "starttls")]
    pub smtp_security: String,
    #[arg(long, env = "PASAPORTE_SMTP_USER")]
    pub smtp_user: Option<String>,
    #[arg(long, env = "PASAPORTE_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    #[arg(
        long,
        env = "PASAPORTE_MAIL_FROM",
        default_value = "Citas de pasaporte <citas@pasaporte.invalid>"
    )]
    pub mail_from: String,
    /// Milliseconds between passes over the outbox.
    #[arg(long, env = "PASAPORTE_OUTBOX_INTERVAL_MS", default_value_t = 1000)]
    pub outbox_interval_ms: u64,
    /// Milliseconds before the first retry of a failed mail (doubling after).
    #[arg(long, env = "PASAPORTE_SMTP_RETRY_MS", default_value_t = 5000)]
    pub smtp_retry_ms: u64,
}

/// What `serve` runs with.
#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub smtp: SmtpArgs,
    /// Address to listen on.
    #[arg(long, env = "PASAPORTE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The address citizens reach the service at, for links in mail; forms
    /// must come from its origin (else from the `Host` they were sent to).
    #[arg(long, env = "PASAPORTE_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub limits: limits::LimitArgs,
    /// Load the demo offices (shared/data/offices.csv) if missing.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub work: WorkArgs,
}

/// The office workflow's outside parties and workers.
#[derive(clap::Args, Clone, Debug)]
pub struct WorkArgs {
    #[command(flatten)]
    pub registry: registry::RegistryArgs,
    #[command(flatten)]
    pub payments: payments::PaymentArgs,
    /// The audit checkpoint signing key: an Ed25519 seed, 64 hex characters
    /// (`openssl rand -hex 32`). Without it the trail is chained but unsigned.
    #[arg(long, env = "PASAPORTE_AUDIT_SIGNING_KEY", hide_env_values = true)]
    pub audit_signing_key: Option<String>,
    /// Milliseconds between the workers' rounds (no-shows, registry checks,
    /// payment references, refunds).
    #[arg(long, env = "PASAPORTE_WORKER_INTERVAL_MS", default_value_t = 1000)]
    pub worker_interval_ms: u64,
    /// Milliseconds a node keeps a background worker's lease without renewing
    /// it: with several nodes, how long a dead node's work waits for another.
    #[arg(long, env = "PASAPORTE_WORKER_LEASE_MS", default_value_t = lease::LEASE_MS_DEFAULT)]
    pub worker_lease_ms: u64,
    /// Milliseconds between signed audit checkpoints (when the trail grew).
    #[arg(long, env = "PASAPORTE_AUDIT_CHECKPOINT_MS", default_value_t = 60_000)]
    pub audit_checkpoint_ms: u64,
    /// A file, outside the database's reach (another disk, a log shipper's
    /// folder), that every signed audit checkpoint is appended to, one line
    /// each; `pasaporte audit verify --anchor-file` checks the trail
    /// against it.
    #[arg(long, env = "PASAPORTE_AUDIT_ANCHOR_FILE")]
    pub audit_anchor_file: Option<PathBuf>,
    /// The Document Signer's private key (PEM, `pasaporte pki init` writes a
    /// test one). Without it approved applications wait for their order.
    #[arg(long, env = "PASAPORTE_DS_KEY_FILE")]
    pub ds_key: Option<PathBuf>,
    /// The Document Signer's certificate (PEM).
    #[arg(long, env = "PASAPORTE_DS_CERT_FILE")]
    pub ds_cert: Option<PathBuf>,
    /// Milliseconds one attempt of a call to a printing vendor may take.
    #[arg(long, env = "PASAPORTE_VENDOR_TIMEOUT_MS", default_value_t = vendors::client::ATTEMPT_TIMEOUT_MS_DEFAULT)]
    pub vendor_timeout_ms: u64,
    /// Attempts per batch within one pass of the outbox (1 to 10).
    #[arg(long, env = "PASAPORTE_VENDOR_ATTEMPTS", default_value_t = 2)]
    pub vendor_attempts: u32,
    /// Milliseconds before an order that failed is sent again (doubling per
    /// failure, at most 10 minutes; dead letter after 8 failures).
    #[arg(long, env = "PASAPORTE_VENDOR_RETRY_MS", default_value_t = 2_000)]
    pub vendor_retry_ms: u64,
    /// Hours before an appointment booked earlier that its citizen is asked
    /// to confirm it (0: no reconfirmation).
    #[arg(long, env = "PASAPORTE_RECONFIRM_HOURS", default_value_t = 72)]
    pub reconfirm_hours: u32,
    /// Hours before the appointment an unconfirmed seat is given to the
    /// waitlist.
    #[arg(long, env = "PASAPORTE_RECONFIRM_KEEP_HOURS", default_value_t = 24)]
    pub reconfirm_keep_hours: u32,
    /// Shortest request period of a ballot release, hours.
    #[arg(long, env = "PASAPORTE_RELEASE_MIN_HOURS", default_value_t = ballot::REQUEST_PERIOD_MIN_HOURS)]
    pub release_min_hours: u32,
}

impl WorkArgs {
    /// No registry, no payments, no signing key: what `serve` gets from an
    /// empty environment.
    /// The lease a worker loop of this node holds its work under.
    pub fn lease(&self, name: &'static str, node: &str) -> lease::WorkerLease {
        lease::WorkerLease::new(
            name,
            node,
            Duration::from_millis(self.worker_lease_ms.max(100)),
        )
    }

    pub fn none() -> Self {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            work: WorkArgs,
        }
        match Only::try_parse_from(["pasaporte"]) {
            Ok(o) => o.work,
            // Every field has a default; parsing no arguments cannot fail.
            Err(e) => unreachable!("{e}"),
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(Box<ServeArgs>),
    /// Bring the database schema up to date.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage offices.
    Offices {
        #[command(subcommand)]
        cmd: OfficesCommand,
    },
    /// The tamper-evident audit trail: verify it, sign a checkpoint.
    Audit {
        #[command(subcommand)]
        cmd: audit_cli::AuditCommand,
    },
    /// Staff accounts: add, list.
    Staff {
        #[command(subcommand)]
        cmd: auth::cli::StaffCommand,
    },
    /// A ballot draw's files: seed and commitment, the draw, its replay.
    Ballot {
        #[command(subcommand)]
        cmd: ballot_cli::BallotCommand,
    },
    /// Printing vendors: add, list, drain (the vendor switch), activate.
    Vendor {
        #[command(subcommand)]
        cmd: vendor_cli::VendorCommand,
    },
    /// Blank booklets: receive a delivery, read the stock and its forecast.
    Stock {
        #[command(subcommand)]
        cmd: stock_cli::StockCommand,
    },
    /// Replays a crisis against a server on loopback and writes a report.
    Simulate {
        #[command(subcommand)]
        cmd: simulate::SimulateCommand,
    },
    /// Benchmark programs that print figures.
    Bench {
        #[command(subcommand)]
        cmd: bench::BenchCommand,
    },
    /// Machine readable zones (ICAO Doc 9303): generate and check.
    Mrz {
        #[command(subcommand)]
        cmd: icao_cli::MrzCommand,
    },
    /// Test CSCA and Document Signer keys and certificates.
    Pki {
        #[command(subcommand)]
        cmd: icao_cli::PkiCommand,
    },
    /// Chip files (EF.COM, EF.DG1, EF.DG2, EF.SOD): write and verify.
    Chip {
        #[command(subcommand)]
        cmd: icao_cli::ChipCommand,
    },
    /// A civil registry simulator over local HTTP (latency, failures, outages).
    RegistrySim {
        #[command(flatten)]
        args: registry::sim::SimArgs,
    },
    /// Run the payment gateway simulator (signed callbacks to pasaporte).
    PaymentSim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: SocketAddr,
        /// Where callbacks are POSTed.
        #[arg(long, default_value = "http://127.0.0.1:8080/api/v1/payments/callback")]
        callback_url: String,
        /// The environment variable holding the shared callback secret.
        #[arg(long, default_value = "PASAPORTE_PAYMENTS_SECRET")]
        secret_env: String,
    },
    /// Run the printing vendor simulator (signed batches in, signed callbacks out).
    VendorSim {
        #[command(flatten)]
        args: vendors::sim::VendorSimArgs,
    },
}

#[derive(Subcommand)]
pub enum OfficesCommand {
    /// Add or update offices from a CSV file (columns of data/offices.csv).
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set an office's release mode and capacity split per pool (percent,
    /// summing to 100). A running server uses it from its next start; the
    /// staff API (`PUT /api/v1/staff/offices/{office}/policy`) applies at once.
    Policy {
        #[arg(long)]
        office: String,
        /// `live` or `ballot`.
        #[arg(long)]
        mode: String,
        #[arg(long)]
        online: u32,
        #[arg(long)]
        urgent: u32,
        #[arg(long)]
        walk_in: u32,
        #[arg(long)]
        priority: u32,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// The demo offices, compiled in so `serve --demo` works from any folder.
pub const DEMO_OFFICES_CSV: &str = include_str!("../../../data/offices.csv");

/// Logs to stderr at `PASAPORTE_LOG`, else at `default` (`info` for the
/// service; a simulation, whose bots are refused thousands of times on
/// purpose, says only what goes wrong).
fn init_logs(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("PASAPORTE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub async fn open_store(db: &DbArgs) -> anyhow::Result<pasaporte_store::Store> {
    let store = pasaporte_store::Store::open(&db.database)
        .await
        .with_context(|| "cannot open the database (check --database)")?;
    store.migrate().await?;
    Ok(store)
}

pub async fn import_offices(store: &pasaporte_store::Store, csv: &str) -> anyhow::Result<usize> {
    let offices = pasaporte_core::office::parse_offices_csv(csv)?;
    for o in &offices {
        store.upsert_office(o).await?;
    }
    Ok(offices.len())
}

/// Runs the service until Ctrl-C or SIGTERM.
pub async fn serve(
    args: ServeArgs,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    let ServeArgs {
        db,
        keys,
        smtp,
        listen,
        public_url,
        demo,
        work,
        limits,
    } = args;
    let store = open_store(&db).await?;
    let keyring = keys.keyring_for(&store).await?;
    if demo && store.offices().await?.is_empty() {
        let n = import_offices(&store, DEMO_OFFICES_CSV).await?;
        tracing::info!(offices = n, "demo offices loaded");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let (mut adapters, _sims) = adapters(&work, demo, addr).await?;
    limits.trusted_proxies().map_err(anyhow::Error::msg)?;
    adapters.limits = limits::RateLimits::new(&limits);
    adapters.public_origin = public_url.as_deref().map(auth::origin_of);
    let public_url = public_url.unwrap_or_else(|| format!("http://{addr}"));
    // Before anything opens a sealed value: version 1 values are refused.
    reseal::reseal_legacy_values(&store, &keyring, auth::now_ms()).await?;
    person_keys::rekey_legacy_person_keys(&store, &keyring, auth::now_ms()).await?;
    let app = app::App::new(store, keyring, public_url, adapters).await?;
    let _demo_vendor = if demo {
        Some(demo_production(&app, addr).await?)
    } else {
        None
    };
    let node = lease::node_name();
    tracing::info!(node = %node, "background workers run here while this node holds their leases");
    spawn_workers(&app, &work, &node);
    match smtp.smtp_host.clone() {
        Some(host) => {
            let cfg = mail::SmtpConfig {
                host,
                port: smtp.smtp_port,
                security: smtp.smtp_security.clone(),
                username: smtp.smtp_user.clone(),
                password: smtp.smtp_password.clone(),
                from: smtp.mail_from.clone(),
                retry_first: Duration::from_millis(smtp.smtp_retry_ms),
            };
            let worker_app = app.clone();
            let interval = Duration::from_millis(smtp.outbox_interval_ms.max(10));
            let lease = work.lease(lease::OUTBOX, &node);
            tokio::spawn(async move {
                if let Err(e) = mail::run_outbox(worker_app, cfg, interval, lease).await {
                    tracing::error!(error = %e, "outbox worker stopped");
                }
            });
        }
        None => tracing::warn!("no SMTP server configured (--smtp-host): mail waits in the outbox"),
    }
    tracing::info!(%addr, "pasaporte listening");
    println!("pasaporte listening on http://{addr}");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    let router = http::router(app.clone());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    if let Err(e) = app.store.release_leases_of(&node).await {
        tracing::warn!(error = %e, "worker leases not given up; other nodes take them when they run out");
    }
    Ok(())
}

/// With `--demo`: a printing vendor simulator in-process, registered as
/// `demo-vendor` with a key made for this run, and blank booklets at its
/// site (and emergency booklets at every office) when there are none yet.
async fn demo_production(
    app: &app::App,
    addr: SocketAddr,
) -> anyhow::Result<vendors::RunningVendorSim> {
    use pasaporte_core::production::{BookletType, SerialRange};
    let secret = crypto::hex(&crypto::random_bytes::<32>()?);
    let key = signing::SigningKey::new("demo-vendor", secret.as_bytes().to_vec())?;
    let sim = vendors::spawn_vendor_sim(vendors::VendorSimConfig::local(
        format!("http://{addr}/api/v1/vendors/callback"),
        key,
    ))
    .await?;
    println!("demo printing vendor simulator on {}", sim.url());
    let now = pasaporte_core::jiff::Timestamp::now();
    pipeline::save_vendor(
        &app.store,
        &app.keys,
        "demo-vendor",
        &sim.url(),
        &secret,
        DEMO_SITE,
        1,
        "*",
        "*",
        now,
    )
    .await?;
    if app.store.stock_levels(Some(DEMO_SITE)).await?.is_empty() {
        let mut ranges = vec![
            (
                "DA0000001-DA0001000".to_string(),
                BookletType::Pages32,
                DEMO_SITE.to_string(),
            ),
            (
                "DB0000001-DB0000500".to_string(),
                BookletType::Pages48,
                DEMO_SITE.to_string(),
            ),
            (
                "DC0000001-DC0000200".to_string(),
                BookletType::Pages28,
                DEMO_SITE.to_string(),
            ),
        ];
        for (i, office) in app.offices().keys().enumerate() {
            let first = i * 100 + 1;
            ranges.push((
                format!("DE{first:07}-DE{:07}", first + 19),
                BookletType::Pages8,
                office.clone(),
            ));
        }
        let mut tx = app.store.begin_write().await?;
        for (range, kind, site) in &ranges {
            let range = SerialRange::parse(range).map_err(|e| anyhow::anyhow!("{e}"))?;
            pasaporte_store::receive_range(
                &mut tx,
                &range,
                *kind,
                site,
                "demo",
                now.as_millisecond(),
            )
            .await?;
        }
        tx.commit().await?;
        println!("demo booklet stock received at {DEMO_SITE} and at every office (emergency)");
    }
    Ok(sim)
}

/// The demo printing vendor's production site.
const DEMO_SITE: &str = "demo-site";

/// The registry, payment gateway and audit signer `serve` runs with. With
/// `--demo` and no registry or payments URL, the project's simulators run
/// in-process on loopback (returned, so they live as long as the server).
async fn adapters(
    work: &WorkArgs,
    demo: bool,
    addr: SocketAddr,
) -> anyhow::Result<(app::Adapters, Vec<Box<dyn std::any::Any + Send>>)> {
    let mut sims: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    let mut registry = work
        .registry
        .registry()
        .map_err(|e| anyhow::anyhow!("civil registry: {e}"))?;
    if registry.is_none() && demo {
        let sim = registry::sim::spawn_registry_sim(registry::sim::SimConfig::demo()?).await?;
        let client = registry::HttpRegistry::new(registry::RegistryConfig::new(sim.url()))
            .map_err(|e| anyhow::anyhow!("civil registry: {e}"))?;
        println!("demo civil registry simulator on {}", sim.url());
        registry = Some(std::sync::Arc::new(client));
        sims.push(Box::new(sim));
    }
    let (mut gateway, mut secret): (Option<std::sync::Arc<dyn payments::PaymentGateway>>, _) =
        match work.payments.config()? {
            Some(c) => (
                Some(std::sync::Arc::new(c.gateway)),
                Some(c.callback_secret),
            ),
            None => (None, None),
        };
    if gateway.is_none() && demo {
        let demo_secret = crypto::random_bytes::<32>()?.to_vec();
        let sim = payments::sim::spawn_payment_sim(payments::sim::PaymentSimConfig::local(
            format!("http://{addr}/api/v1/payments/callback"),
            demo_secret.clone(),
        ))
        .await?;
        println!("demo payment simulator on {}", sim.url());
        gateway = Some(std::sync::Arc::new(payments::HttpPayments::new(
            &sim.url(),
            Duration::from_millis(payments::ATTEMPT_TIMEOUT_MS_DEFAULT),
            payments::ATTEMPTS_DEFAULT,
        )?));
        secret = Some(demo_secret);
        sims.push(Box::new(sim));
    }
    let audit_signer = work
        .audit_signing_key
        .as_deref()
        .map(pasaporte_core::audit::CheckpointSigner::from_seed_hex)
        .transpose()
        .context("PASAPORTE_AUDIT_SIGNING_KEY")?;
    if registry.is_none() {
        tracing::warn!(
            "no civil registry configured (--registry-url): captured applications wait in 'pending registry'"
        );
    }
    if gateway.is_none() {
        tracing::warn!(
            "no payment gateway configured (--payments-url): verified applications wait for a payment reference"
        );
    }
    if !(1..=vendors::ATTEMPTS_MAX).contains(&work.vendor_attempts) {
        anyhow::bail!("--vendor-attempts must be 1 to {}", vendors::ATTEMPTS_MAX);
    }
    let document_signer = match (&work.ds_key, &work.ds_cert) {
        (Some(k), Some(c)) => {
            let key =
                std::fs::read_to_string(k).with_context(|| format!("reading {}", k.display()))?;
            let cert =
                std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?;
            Some(icao9303::DocumentSigner::from_pem(&key, &cert).context("the Document Signer")?)
        }
        (None, None) if demo => {
            let (_, ds) = icao9303::generate_test_pki(
                icao9303::StateCode::parse("COL")?,
                std::time::SystemTime::now(),
            )?;
            println!("demo Document Signer: a test key made for this run (not for production)");
            Some(icao9303::DocumentSigner::new(ds.key, ds.cert)?)
        }
        (None, None) => {
            tracing::warn!(
                "no Document Signer configured (--ds-key, --ds-cert): approved applications wait for their production order"
            );
            None
        }
        _ => anyhow::bail!("give both --ds-key and --ds-cert, or neither"),
    };
    let vendor_settings = pipeline::VendorSettings {
        attempt_timeout: Duration::from_millis(work.vendor_timeout_ms.max(1)),
        attempts: work.vendor_attempts,
        backoff_first: Duration::from_millis(vendors::client::BACKOFF_FIRST_MS),
        retry_first_ms: i64::try_from(work.vendor_retry_ms.max(1)).unwrap_or(i64::MAX),
    };
    Ok((
        app::Adapters {
            registry,
            payments: gateway,
            payments_secret: secret,
            audit_signer,
            document_signer,
            vendor_settings,
            limits: limits::RateLimits::default(),
            fair: ballot::FairSettings {
                period_min_hours: work.release_min_hours,
                reconfirm: (work.reconfirm_hours > 0).then_some(ballot::Reconfirm {
                    ask_hours: i64::from(work.reconfirm_hours),
                    keep_hours: i64::from(work.reconfirm_keep_hours.min(work.reconfirm_hours)),
                }),
            },
            public_origin: None,
        },
        sims,
    ))
}

/// Starts the workflow's workers and the audit checkpointer.
fn spawn_workers(app: &std::sync::Arc<app::App>, work: &WorkArgs, node: &str) {
    tokio::spawn(workers::run(
        app.clone(),
        Duration::from_millis(work.worker_interval_ms.max(10)),
        work.lease(lease::WORKFLOW, node),
    ));
    tokio::spawn(pipeline::run(
        app.clone(),
        Duration::from_millis(work.worker_interval_ms.max(10)),
        work.lease(lease::PRODUCTION, node),
    ));
    if app.audit_signer.is_some() {
        tokio::spawn(workers::run_checkpoints(
            app.clone(),
            Duration::from_millis(work.audit_checkpoint_ms.max(100)),
            work.audit_anchor_file.clone(),
            work.lease(lease::CHECKPOINTS, node),
        ));
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Parses the command line and runs one command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(match cli.command {
        Command::Simulate { .. } => "warn",
        _ => "info",
    });
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<ExitCode> = rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                serve(*args, None).await?;
            }
            Command::Migrate { db } => {
                open_store(&db).await?;
                println!("database is up to date");
            }
            Command::Offices {
                cmd: OfficesCommand::Import { file, db },
            } => {
                let csv = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let store = open_store(&db).await?;
                let n = import_offices(&store, &csv)
                    .await
                    .with_context(|| format!("{}", file.display()))?;
                println!("{n} offices imported");
            }
            Command::Offices {
                cmd:
                    OfficesCommand::Policy {
                        office,
                        mode,
                        online,
                        urgent,
                        walk_in,
                        priority,
                        db,
                    },
            } => {
                use pasaporte_core::shares::{OfficePolicy, ReleaseMode, Shares};
                let mode = ReleaseMode::parse(&mode)
                    .with_context(|| format!("--mode {mode}: use live or ballot"))?;
                let shares = Shares::new(online, urgent, walk_in, priority)?;
                let store = open_store(&db).await?;
                let actor = pasaporte_core::application::Actor {
                    id: "cli:offices".into(),
                    role: pasaporte_core::application::Role::Administrator,
                };
                let now = pasaporte_core::jiff::Timestamp::now().as_millisecond();
                let mut event = pasaporte_core::audit::AuditEvent::by(
                    &actor,
                    now,
                    "office.policy_set",
                    &office,
                    &office,
                );
                event.detail = format!(
                    "mode={} online={online} urgent={urgent} walk_in={walk_in} priority={priority}",
                    mode.as_str()
                );
                store
                    .set_office_policy(&office, &OfficePolicy { mode, shares }, &event, now)
                    .await
                    .with_context(|| format!("office {office}"))?;
                println!(
                    "office {office}: {} {online}/{urgent}/{walk_in}/{priority}",
                    mode.as_str()
                );
            }
            Command::Bench { cmd } => bench::run(cmd).await?,
            Command::Simulate { cmd } => simulate::run(cmd).await?,
            Command::Audit { cmd } => return audit_cli::run(cmd).await,
            Command::Staff { cmd } => return auth::cli::run(cmd).await,
            Command::Stock { cmd } => return stock_cli::run(cmd).await,
            Command::Vendor { cmd } => return vendor_cli::run(cmd).await,
            Command::Ballot { cmd } => return ballot_cli::run(cmd),
            Command::Mrz { cmd } => return icao_cli::run_mrz(cmd),
            Command::Pki { cmd } => return icao_cli::run_pki(cmd),
            Command::Chip { cmd } => return icao_cli::run_chip(cmd),
            Command::RegistrySim { args } => registry::sim::run(args).await?,
            Command::PaymentSim {
                listen,
                callback_url,
                secret_env,
            } => payments::sim::run_cli(listen, callback_url, secret_env).await?,
            Command::VendorSim { args } => vendors::sim::run_cli(args).await?,
        }
        Ok(ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// clap's own checks over every subcommand: a flag declared twice (as
    /// `vendor add --key-file` once was, beside the flattened `KeyArgs`), a
    /// default that does not parse, a required argument with a default...
    /// Without this, such a command fails only when someone runs it.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
