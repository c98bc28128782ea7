//! `pasaporte staff add|list`: create accounts and list them (no secrets).
//!
//! The password never comes from the command line (it would sit in the shell
//! history and in `ps`): it is read from `PASAPORTE_STAFF_PASSWORD` or, without
//! it, from one line of standard input.

use super::accounts::{self, NewStaff};
use crate::{DbArgs, KeyArgs};
use anyhow::Context;
use std::io::BufRead;
use std::process::ExitCode;

/// The environment variable `staff add` reads the password from.
pub const PASSWORD_VAR: &str = "PASAPORTE_STAFF_PASSWORD";

#[derive(clap::Subcommand)]
pub enum StaffCommand {
    /// Create an account; prints its TOTP secret and otpauth:// URI once.
    /// The password comes from PASAPORTE_STAFF_PASSWORD or one line of stdin.
    Add {
        /// The sign-in handle: 3 to 64 of a-z, 0-9, '.', '_', '-'.
        #[arg(long)]
        username: String,
        /// clerk, supervisor, administrator or auditor.
        #[arg(long)]
        role: String,
        /// An office code the person works for; repeat for several; '*' for all.
        #[arg(long = "office", required = true)]
        offices: Vec<String>,
        /// Shown in the console header (the username when absent).
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// List accounts: username, role, offices, active. No secrets.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(PASSWORD_VAR) {
        return Ok(p);
    }
    eprintln!("password (one line, then Enter):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(cmd: StaffCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StaffCommand::Add {
            username,
            role,
            offices,
            display_name,
            db,
            keys,
        } => {
            let role = accounts::parse_staff_role(&role).ok_or_else(|| {
                anyhow::anyhow!("--role must be clerk, supervisor, administrator or auditor")
            })?;
            let password = read_password()?;
            if let Err(p) = super::password::check_policy(&password, &username) {
                eprintln!("{}", p.en());
                eprintln!("{}", p.es());
                return Ok(ExitCode::FAILURE);
            }
            let store = crate::open_store(&db).await?;
            let keyring = keys.keyring_for(&store).await?;
            let created = accounts::create_staff(
                &store,
                &keyring,
                NewStaff {
                    username,
                    display_name,
                    role,
                    offices,
                    password,
                },
                super::now_ms(),
            )
            .await?;
            println!("created {} (id {})", created.username, created.id);
            println!(
                "TOTP secret (base32, shown once): {}",
                created.totp_secret_base32
            );
            println!("otpauth URI (shown once): {}", created.otpauth_uri);
        }
        StaffCommand::List { db } => {
            let store = crate::open_store(&db).await?;
            for s in store.staff_list().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.username,
                    s.role,
                    s.offices.join(","),
                    if s.active { "active" } else { "inactive" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
