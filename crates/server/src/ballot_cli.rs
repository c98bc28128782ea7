//! `pasaporte ballot ...`: a ballot draw's ceremony with files anyone can
//! check (`pasaporte_core::ballot` is the draw).
//!
//! The files of one draw live in one directory:
//!
//! | file | written by | published |
//! |---|---|---|
//! | `commitment.txt` | `ballot seed` | when the request period opens |
//! | `seed.txt` | `ballot seed` | kept by its custodian until the draw, then published |
//! | `offers.txt`, `requests.txt` | the release (identities as keyed hashes) | when the request period closes, with `inputs-digest.txt` |
//! | `outcome.txt`, `inputs-digest.txt` | `ballot draw` | with the seed |
//!
//! `ballot replay` recomputes the draw from the published files and says
//! whether the published outcome is identical (exit status 0) or where it
//! differs (exit status 1).

use anyhow::Context;
use pasaporte_core::ballot;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Largest published file read (a million requests of about 150 bytes).
const FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

#[derive(clap::Subcommand)]
pub enum BallotCommand {
    /// Make a draw's secret seed (`seed.txt`, mode 0600: keep it with its
    /// custodian) and its public commitment (`commitment.txt`).
    Seed {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run the draw on `offers.txt` and `requests.txt` with `seed.txt`:
    /// writes `outcome.txt` and `inputs-digest.txt`.
    Draw {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Recompute a published draw and compare it with its outcome.
    Replay {
        #[arg(long)]
        dir: PathBuf,
    },
}

fn read(dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    let len = std::fs::metadata(&path)
        .with_context(|| format!("{} is missing", path.display()))?
        .len();
    anyhow::ensure!(
        len <= FILE_BYTES_MAX,
        "{} is {len} bytes, more than {FILE_BYTES_MAX}",
        path.display()
    );
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn run(cmd: BallotCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BallotCommand::Seed { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let seed = crate::crypto::random_bytes::<32>()?;
            let path = dir.join("seed.txt");
            anyhow::ensure!(
                !path.exists(),
                "{} exists: a draw has one seed",
                path.display()
            );
            crate::icao_cli::write_private(
                &path,
                format!("{}\n", ballot::seed_hex(&seed)).as_bytes(),
            )?;
            let commitment = ballot::seed_commitment(&seed);
            write(&dir, "commitment.txt", &format!("{commitment}\n"))?;
            println!(
                "commitment {commitment} (publish it now; keep seed.txt secret until the draw)"
            );
        }
        BallotCommand::Draw { dir } => {
            let seed = ballot::parse_seed(read(&dir, "seed.txt")?.trim())?;
            let offers = ballot::parse_offers(&read(&dir, "offers.txt")?)?;
            let requests = ballot::parse_requests(&read(&dir, "requests.txt")?)?;
            let outcome = ballot::draw(&seed, &offers, &requests)?;
            write(&dir, "outcome.txt", &ballot::write_outcome(&outcome))?;
            let digest = ballot::inputs_digest(&offers, &requests);
            write(&dir, "inputs-digest.txt", &format!("{digest}\n"))?;
            println!(
                "{} requests: {} allocated, {} to the waitlist; inputs digest {digest}",
                requests.len(),
                outcome.allocations.len(),
                outcome.unallocated.len()
            );
        }
        BallotCommand::Replay { dir } => {
            if !replay_dir(&dir)? {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Replays the draw published in `dir`; prints the verdict; whether it is
/// identical.
pub fn replay_dir(dir: &Path) -> anyhow::Result<bool> {
    let report = ballot::replay(
        read(dir, "seed.txt")?.trim(),
        read(dir, "commitment.txt")?.trim(),
        &read(dir, "offers.txt")?,
        &read(dir, "requests.txt")?,
        &read(dir, "outcome.txt")?,
    )?;
    if let Ok(published) = read(dir, "inputs-digest.txt")
        && published.trim() != report.inputs_digest
    {
        println!(
            "the offers and requests are not the ones published: digest {} (published {})",
            report.inputs_digest,
            published.trim()
        );
        return Ok(false);
    }
    match &report.difference {
        None => {
            println!(
                "identical: the seed matches its commitment and the draw gives the published outcome ({} allocated, {} unallocated)",
                report.outcome.allocations.len(),
                report.outcome.unallocated.len()
            );
            Ok(true)
        }
        Some(d) => {
            println!(
                "DIFFERENT at line {} of outcome.txt: published {:?}, recomputed {:?}",
                d.line, d.published, d.recomputed
            );
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OFFERS: &str = "pasaporte-ballot-offers v1\ncity;BOG-AME;Bogotá\ncity;BOG-CEN;Bogotá\nslot;BOG-AME;2026-12-01;1796130000000;2\nslot;BOG-CEN;2026-12-02;1796216400000;3\n";

    fn requests() -> String {
        let mut s = String::from("pasaporte-ballot-requests v1\n");
        for i in 0..8u32 {
            let person = format!("{:064x}", u64::from(i) * 7919 + 1);
            // Every request can take any seat in Bogotá, so however the seed
            // orders them the five seats are all given.
            let pref = if i % 2 == 0 {
                "slot:BOG-AME:2026-12-01|city:Bogotá"
            } else {
                "city:Bogotá"
            };
            s.push_str(&format!("r-{i:04};{person};1;{pref}\n"));
        }
        s
    }

    #[test]
    fn a_draw_replays_identically_and_a_tampered_outcome_does_not() {
        let dir = std::env::temp_dir().join(format!("pasaporte-ballot-{}", uuid::Uuid::now_v7()));
        run(BallotCommand::Seed { dir: dir.clone() }).unwrap();
        std::fs::write(dir.join("offers.txt"), OFFERS).unwrap();
        std::fs::write(dir.join("requests.txt"), requests()).unwrap();
        assert!(
            run(BallotCommand::Seed { dir: dir.clone() }).is_err(),
            "one seed per draw"
        );
        run(BallotCommand::Draw { dir: dir.clone() }).unwrap();
        let outcome = std::fs::read_to_string(dir.join("outcome.txt")).unwrap();
        assert_eq!(
            outcome.lines().filter(|l| l.starts_with("seat;")).count(),
            5
        );
        assert!(replay_dir(&dir).unwrap());
        // Swap two allocated requests: the replay names the difference.
        let mut lines: Vec<&str> = outcome.lines().collect();
        lines.swap(1, 2);
        std::fs::write(dir.join("outcome.txt"), lines.join("\n") + "\n").unwrap();
        assert!(!replay_dir(&dir).unwrap());
        // Another request list than the one published: refused by digest.
        std::fs::write(dir.join("outcome.txt"), &outcome).unwrap();
        let mut more = requests();
        more.push_str(&format!("r-9999;{:064x};1;city:Bogotá\n", 99_999));
        std::fs::write(dir.join("requests.txt"), more).unwrap();
        assert!(!replay_dir(&dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
