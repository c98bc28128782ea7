//! `pasaporte audit ...`: verify the audit trail, sign its head on demand,
//! and print the public key that goes with the configured signing key.

use crate::DbArgs;
use anyhow::Context;
use pasaporte_core::audit::{CheckpointKey, CheckpointSigner, Verdict};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Check every link of the trail and every checkpoint signature; prints
    /// "intact: N events" or the first broken link (exit status 1).
    Verify {
        #[command(flatten)]
        db: DbArgs,
        /// The checkpoint public key (Ed25519, 64 hex characters).
        #[arg(long, env = "PASAPORTE_AUDIT_PUBLIC_KEY")]
        public_key: String,
    },
    /// Sign the trail's current head now (before an export or a backup).
    Checkpoint {
        #[command(flatten)]
        db: DbArgs,
        /// The checkpoint signing key: an Ed25519 seed, 64 hex characters
        /// (e.g. from `openssl rand -hex 32`). Never printed.
        #[arg(long, env = "PASAPORTE_AUDIT_SIGNING_KEY", hide_env_values = true)]
        signing_key: String,
    },
    /// Print the public key (and its id) for the configured signing key.
    PublicKey {
        #[arg(long, env = "PASAPORTE_AUDIT_SIGNING_KEY", hide_env_values = true)]
        signing_key: String,
    },
}

pub async fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { db, public_key } => {
            let key = CheckpointKey::from_hex(&public_key).context("--public-key")?;
            let store = crate::open_store(&db).await?;
            let verdict = store.verify_audit(&key).await?;
            println!("{verdict}");
            Ok(match verdict {
                Verdict::Intact { .. } => ExitCode::SUCCESS,
                Verdict::Broken { .. } => ExitCode::FAILURE,
            })
        }
        AuditCommand::Checkpoint { db, signing_key } => {
            let signer = CheckpointSigner::from_seed_hex(&signing_key).context("--signing-key")?;
            let store = crate::open_store(&db).await?;
            let now_ms = pasaporte_core::jiff::Timestamp::now().as_millisecond();
            match store.checkpoint_audit(&signer, now_ms).await? {
                Some(cp) => println!(
                    "signed event {} with key {}",
                    cp.checkpoint.seq, cp.checkpoint.key_id
                ),
                None => println!("nothing to sign: the trail is empty or its head is signed"),
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::PublicKey { signing_key } => {
            let signer = CheckpointSigner::from_seed_hex(&signing_key).context("--signing-key")?;
            let key = signer.public();
            println!("{} {}", key.to_hex(), key.key_id());
            Ok(ExitCode::SUCCESS)
        }
    }
}
