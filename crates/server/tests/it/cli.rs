//! The command line through the real binary: every subcommand's `--help`,
//! and `vendor add` (which once refused every invocation) then `vendor list`.

use clap::CommandFactory;
use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pasaporte");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PASAPORTE_LOG", "off")
        .env_remove("PASAPORTE_DATA_KEYS")
        .env_remove("PASAPORTE_LOOKUP_KEY")
        .env_remove("PASAPORTE_DATABASE")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every command path below `cmd`: `["vendor", "add"]`, ...
fn paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for sub in cmd.get_subcommands() {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_string());
        out.push(path.clone());
        paths(sub, &path, out);
    }
}

#[test]
fn every_subcommand_answers_help() {
    let mut all = Vec::new();
    paths(&pasaporte::Cli::command(), &[], &mut all);
    assert!(all.len() > 30, "{} commands", all.len());
    assert!(all.contains(&vec!["vendor".to_string(), "add".to_string()]));
    for path in &all {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = run(&args);
        assert!(
            o.status.success(),
            "pasaporte {}: {}",
            args.join(" "),
            text(&o.stderr)
        );
        assert!(text(&o.stdout).contains("Usage: pasaporte"), "{path:?}");
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pasaporte-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn vendor_add_registers_a_vendor_that_vendor_list_shows() {
    let dir = scratch("vendor-add");
    let db = dir.join("pasaporte.db");
    let data_keys = dir.join("pasaporte.keys");
    let shared = dir.join("vendor-a.key");
    std::fs::write(
        &shared,
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .unwrap();
    let (db, data_keys, shared) = (
        db.to_str().unwrap(),
        data_keys.to_str().unwrap(),
        shared.to_str().unwrap(),
    );
    let o = run(&[
        "vendor",
        "add",
        "--database",
        db,
        "--key-file",
        data_keys,
        "--id",
        "vendor-a",
        "--url",
        "http://127.0.0.1:9/",
        "--shared-key-file",
        shared,
        "--site",
        "site-a",
        "--share",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("vendor vendor-a active"),
        "{}",
        text(&o.stdout)
    );
    let secret = std::fs::read_to_string(shared).unwrap();
    assert!(!text(&o.stdout).contains(secret.trim()) && !text(&o.stderr).contains(secret.trim()));

    let o = run(&["vendor", "list", "--database", db]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let list = text(&o.stdout);
    let row = list
        .lines()
        .find(|l| l.starts_with("vendor-a "))
        .unwrap_or_else(|| panic!("{list}"));
    for word in ["active", "3", "site-a"] {
        assert!(row.split_whitespace().any(|w| w == word), "{word} in {row}");
    }

    // A missing shared key file is named, and nothing is registered.
    let o = run(&[
        "vendor",
        "add",
        "--database",
        db,
        "--key-file",
        data_keys,
        "--id",
        "vendor-b",
        "--url",
        "http://127.0.0.1:9/",
        "--shared-key-file",
        "/nonexistent/b.key",
        "--site",
        "site-b",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("/nonexistent/b.key"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["vendor", "list", "--database", db]);
    assert!(!text(&o.stdout).contains("vendor-b"));
    let _ = std::fs::remove_dir_all(&dir);
}
