//! `pasaporte vendor ...`: register printing vendors with their routing
//! rules, list them, and switch one to draining (no new orders; its orders
//! not yet accepted move to the others) or back to active.

use crate::{DbArgs, KeyArgs};
use anyhow::Context;
use pasaporte_core::jiff::Timestamp;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum VendorCommand {
    /// Add a vendor, or replace its settings (it becomes active).
    Add {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// The vendor's id, also the key id it signs with (`vendor-a`).
        #[arg(long)]
        id: String,
        /// Its base URL (`https://vendor.example`).
        #[arg(long)]
        url: String,
        /// A file holding the key shared with the vendor (at least 16
        /// bytes; `openssl rand -hex 32 > vendor-a.key`). Not `--key-file`:
        /// that is the data keys' file, which this command needs too.
        #[arg(long)]
        shared_key_file: PathBuf,
        /// The production site whose blank booklets it personalises.
        #[arg(long)]
        site: String,
        /// Its weight among the vendors a rule allows.
        #[arg(long, default_value_t = 1)]
        share: i64,
        /// Passport types it takes: `*` or a comma list (ordinario,ejecutivo,fronterizo).
        #[arg(long, default_value = "*")]
        types: String,
        /// Offices it delivers to: `*` or a comma list of office codes.
        #[arg(long, default_value = "*")]
        offices: String,
    },
    /// Every vendor with its state, routing and orders per state.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// No new orders to this vendor; its orders not yet accepted move.
    Drain {
        #[command(flatten)]
        db: DbArgs,
        id: String,
    },
    /// Orders go to this vendor again.
    Activate {
        #[command(flatten)]
        db: DbArgs,
        id: String,
    },
}

fn cli_actor() -> pasaporte_core::application::Actor {
    pasaporte_core::application::Actor {
        id: "cli:vendor".into(),
        role: pasaporte_core::application::Role::Administrator,
    }
}

pub async fn run(cmd: VendorCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VendorCommand::Add {
            db,
            keys,
            id,
            url,
            shared_key_file,
            site,
            share,
            types,
            offices,
        } => {
            let secret = std::fs::read_to_string(&shared_key_file)
                .with_context(|| format!("reading {}", shared_key_file.display()))?;
            let store = crate::open_store(&db).await?;
            crate::pipeline::save_vendor(
                &store,
                &keys.keyring_for(&store).await?,
                &id,
                &url,
                secret.trim(),
                &site,
                share,
                &types,
                &offices,
                Timestamp::now(),
            )
            .await?;
            println!(
                "vendor {id} active: {url}, site {site}, share {share}, types {types}, offices {offices}"
            );
        }
        VendorCommand::List { db } => {
            let store = crate::open_store(&db).await?;
            let counts = store.order_counts(None).await?;
            println!(
                "{:<16} {:<9} {:>5} {:<12} {:<24} {:<16} orders",
                "vendor", "state", "share", "site", "types", "offices"
            );
            for v in store.vendors().await? {
                let orders: Vec<String> = counts
                    .iter()
                    .filter(|c| c.vendor_id.as_deref() == Some(v.id.as_str()))
                    .map(|c| format!("{} {}", c.state, c.count))
                    .collect();
                println!(
                    "{:<16} {:<9} {:>5} {:<12} {:<24} {:<16} {}",
                    v.id,
                    v.state,
                    v.share,
                    v.site,
                    v.passport_types,
                    v.offices,
                    orders.join(", ")
                );
            }
            let waiting: u64 = counts
                .iter()
                .filter(|c| c.vendor_id.is_none() && c.state == pasaporte_store::OrderState::Queued)
                .map(|c| c.count)
                .sum();
            if waiting > 0 {
                println!("{waiting} orders wait for a vendor with stock");
            }
        }
        VendorCommand::Drain { db, id } => {
            let store = crate::open_store(&db).await?;
            crate::pipeline::set_vendor_state(
                &store,
                &cli_actor(),
                &id,
                "draining",
                Timestamp::now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("vendor {id}: {e}"))?;
            println!(
                "vendor {id} draining: no new orders; its orders not yet accepted move to active vendors"
            );
        }
        VendorCommand::Activate { db, id } => {
            let store = crate::open_store(&db).await?;
            crate::pipeline::set_vendor_state(
                &store,
                &cli_actor(),
                &id,
                "active",
                Timestamp::now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("vendor {id}: {e}"))?;
            println!("vendor {id} active");
        }
    }
    Ok(ExitCode::SUCCESS)
}
