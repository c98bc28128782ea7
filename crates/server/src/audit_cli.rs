//! `pasaporte audit ...`: verify the audit trail, sign its head on demand,
//! and print the public key that goes with the configured signing key.

use crate::DbArgs;
use anyhow::Context;
use pasaporte_core::audit::{Anchor, CheckpointKey, CheckpointSigner, SignedCheckpoint, Verdict};
use std::path::{Path, PathBuf};
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
        /// The anchor file the service appends its signed checkpoints to
        /// (`--audit-anchor-file`), or a copy of
        /// `/api/v1/audit/checkpoints.txt`: the trail must reach and match
        /// every line (each line's signature is checked).
        #[arg(long, env = "PASAPORTE_AUDIT_ANCHOR_FILE")]
        anchor_file: Option<PathBuf>,
        /// The chain's hash at an event, as written down elsewhere:
        /// `SEQ:HASH` (repeatable).
        #[arg(long = "anchor", value_name = "SEQ:HASH")]
        anchors: Vec<String>,
        /// Milliseconds between the service's checkpoints (as `serve` has
        /// it): an event left unsigned for more than twice this and a
        /// minute fails the check (checkpoints removed, or the signer
        /// stopped). 0 turns that check off.
        #[arg(long, env = "PASAPORTE_AUDIT_CHECKPOINT_MS", default_value_t = 60_000)]
        checkpoint_ms: u64,
    },
    /// Sign the trail's current head now (before an export or a backup).
    Checkpoint {
        #[command(flatten)]
        db: DbArgs,
        /// The checkpoint signing key: an Ed25519 seed, 64 hex characters
        /// (e.g. from `openssl rand -hex 32`). Never printed.
        #[arg(long, env = "PASAPORTE_AUDIT_SIGNING_KEY", hide_env_values = true)]
        signing_key: String,
        /// Also append the checkpoint to this anchor file.
        #[arg(long, env = "PASAPORTE_AUDIT_ANCHOR_FILE")]
        anchor_file: Option<PathBuf>,
    },
    /// Print the public key (and its id) for the configured signing key.
    PublicKey {
        #[arg(long, env = "PASAPORTE_AUDIT_SIGNING_KEY", hide_env_values = true)]
        signing_key: String,
    },
}

pub async fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify {
            db,
            public_key,
            anchor_file,
            anchors,
            checkpoint_ms,
        } => {
            let key = CheckpointKey::from_hex(&public_key).context("--public-key")?;
            let mut kept = Vec::new();
            for text in &anchors {
                kept.push(Anchor::parse(text).with_context(|| {
                    format!(
                        "--anchor {text}: write SEQ:HASH, the hash in 64 hexadecimal characters"
                    )
                })?);
            }
            if let Some(path) = &anchor_file {
                kept.extend(read_anchor_file(path, &key)?);
            }
            let now_ms = pasaporte_core::jiff::Timestamp::now().as_millisecond();
            let freshness = (checkpoint_ms > 0).then(|| {
                let interval = i64::try_from(checkpoint_ms).unwrap_or(i64::MAX);
                (now_ms, interval.saturating_mul(2).saturating_add(60_000))
            });
            let store = crate::open_store(&db).await?;
            let verdict = store.verify_audit_kept(&key, &kept, freshness).await?;
            println!("{verdict}");
            Ok(match verdict {
                Verdict::Intact { .. } => ExitCode::SUCCESS,
                Verdict::Broken { .. } => ExitCode::FAILURE,
            })
        }
        AuditCommand::Checkpoint {
            db,
            signing_key,
            anchor_file,
        } => {
            let signer = CheckpointSigner::from_seed_hex(&signing_key).context("--signing-key")?;
            let store = crate::open_store(&db).await?;
            let mut file = anchor_file.map(crate::workers::AnchorFile::new);
            match crate::workers::checkpoint_once(&store, &signer, file.as_mut()).await? {
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

/// The anchors of an anchor file: every line a checkpoint signed by `key`.
fn read_anchor_file(path: &Path, key: &CheckpointKey) -> anyhow::Result<Vec<Anchor>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--anchor-file {}", path.display()))?;
    let mut anchors = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let n = i + 1;
        let cp = SignedCheckpoint::parse_line(line).with_context(|| {
            format!(
                "{}:{n}: not a checkpoint line (seq hash signed_at_ms key_id signature)",
                path.display()
            )
        })?;
        if !key.verifies(&cp) {
            anyhow::bail!(
                "{}:{n}: the checkpoint's signature does not verify with the public key given",
                path.display()
            );
        }
        let hash = pasaporte_core::audit::ChainHash::from_hex(&cp.checkpoint.hash)
            .with_context(|| format!("{}:{n}: malformed hash", path.display()))?;
        anchors.push(Anchor {
            seq: cp.checkpoint.seq,
            hash,
        });
    }
    Ok(anchors)
}
