//! `pasaporte stock ...`: receive blank booklets at a production site and
//! read the stock levels with the forecast of days left.

use crate::DbArgs;
use anyhow::Context;
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::production::{BookletType, SerialRange};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum StockCommand {
    /// Record a delivery of blank booklets: one serial range of one type at
    /// one site (each booklet's custody starts here).
    Receive {
        #[command(flatten)]
        db: DbArgs,
        /// First and last serial, e.g. `AB0000001-AB0005000`.
        #[arg(long)]
        range: String,
        /// `pages32`, `pages48`, `pages28` or `pages8`.
        #[arg(long = "type")]
        booklet_type: String,
        /// The production site that holds them.
        #[arg(long)]
        site: String,
        /// Who signs for the delivery (a staff id or a name of the site's
        /// custody officer role; no personal data).
        #[arg(long, default_value = "cli:stock-receive")]
        actor: String,
    },
    /// Stock per type and state, and the days of stock left at the issue
    /// rate of the last `--window-days`.
    Levels {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        site: Option<String>,
        #[arg(long, default_value_t = 30)]
        window_days: u32,
    },
}

pub async fn run(cmd: StockCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StockCommand::Receive {
            db,
            range,
            booklet_type,
            site,
            actor,
        } => {
            let range = SerialRange::parse(&range).map_err(|e| anyhow::anyhow!("--range: {e}"))?;
            let booklet_type = BookletType::parse(&booklet_type).with_context(|| {
                format!("--type: '{booklet_type}' is not one of pages32, pages48, pages28, pages8")
            })?;
            let store = crate::open_store(&db).await?;
            let mut tx = store.begin_write().await?;
            let n = pasaporte_store::receive_range(
                &mut tx,
                &range,
                booklet_type,
                &site,
                &actor,
                Timestamp::now().as_millisecond(),
            )
            .await
            .context("the range was not recorded (nothing was stored)")?;
            tx.commit()
                .await
                .map_err(pasaporte_store::StoreError::from)?;
            println!("received {n} {} booklets at {site}", booklet_type.as_str());
            Ok(ExitCode::SUCCESS)
        }
        StockCommand::Levels {
            db,
            site,
            window_days,
        } => {
            let store = crate::open_store(&db).await?;
            let now = Timestamp::now().as_millisecond();
            for l in store.stock_levels(site.as_deref()).await? {
                println!(
                    "{}\t{}\t{}",
                    l.booklet_type.as_str(),
                    l.state.as_str(),
                    l.count
                );
            }
            for f in store
                .stock_forecasts(site.as_deref(), now, window_days)
                .await?
            {
                let days = f.days_left.map_or_else(
                    || "no issues in the window".to_string(),
                    |d| format!("{d:.1} days left"),
                );
                println!(
                    "{}: {} in stock, {} issued in {} days: {days}",
                    f.booklet_type.as_str(),
                    f.in_stock,
                    f.issued,
                    f.window_days
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
