//! The ICAO commands through the real binary: mrz generate/check, pki init, chip
//! write/verify, and a tampered chip refused.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pasaporte");

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("PASAPORTE_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const ANNA: &str = r#"{"format":"TD3","document_type":"P","issuing_state":"UTO","surname":"Eriksson","given_names":"Anna María","document_number":"L898902C3","nationality":"UTO","birth_date":"740812","sex":"F","expiry_date":"2012-04-15","optional_data":"ZE184226B"}"#;

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("pasaporte-cli-icao-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn mrz_generate_and_check() {
    let o = run(&["mrz", "generate"], ANNA);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        stdout(&o),
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10\n"
    );
    let o = run(&["mrz", "check"], &stdout(&o));
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("composite check digit at line 2 column 44: found 0, expected 0: ok")
    );

    let bad = run(
        &["mrz", "generate"],
        &ANNA.replace("UTO\",\"surname", "XYZ\",\"surname"),
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("issuing_state"));

    let o = run(
        &["mrz", "check", "--json"],
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408121F1204159ZE184226B<<<<<10\n",
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["checks"][1]["field"], "birth_date");
    assert_eq!(v["checks"][1]["expected"], "2");
    assert_eq!(v["checks"][1]["column"], 20);
}

#[test]
fn mrz_generate_jsonl() {
    let input = format!("{ANNA}\n{}\n", ANNA.replace("740812", "741312"));
    let o = run(&["mrz", "generate", "--jsonl"], &input);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["lines"][0],
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    );
    assert_eq!(lines[1]["field"], "birth_date");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn pki_chip_write_verify_tamper() {
    let dir = temp_dir("chip");
    let pki = dir.join("pki");
    let o = run(
        &[
            "pki",
            "init",
            "--country",
            "COL",
            "--out",
            pki.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        files_in(&pki),
        ["csca.key.pem", "csca.pem", "ds.key.pem", "ds.pem"]
    );

    let fields = dir.join("fields.json");
    std::fs::write(
        &fields,
        ANNA.replace("UTO", "COL")
            .replace("2012-04-15", "2034-04-15"),
    )
    .unwrap();
    let photo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../icao9303/tests/data/face.jpg"
    );
    let chip = dir.join("chip");
    let o = run(
        &[
            "chip",
            "write",
            "--fields",
            fields.to_str().unwrap(),
            "--photo",
            photo,
            "--ds-key",
            pki.join("ds.key.pem").to_str().unwrap(),
            "--ds-cert",
            pki.join("ds.pem").to_str().unwrap(),
            "--out",
            chip.to_str().unwrap(),
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files_in(&chip), ["EF.COM", "EF.DG1", "EF.DG2", "EF.SOD"]);

    let verify = |json: bool| {
        let mut args = vec!["chip", "verify", "--dir", chip.to_str().unwrap(), "--csca"];
        let csca = pki.join("csca.pem");
        args.push(csca.to_str().unwrap());
        if json {
            args.push("--json");
        }
        run(&args, "")
    };
    let o = verify(false);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).ends_with("valid\n"));

    let dg2 = chip.join("EF.DG2");
    let mut bytes = std::fs::read(&dg2).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(&dg2, bytes).unwrap();
    let o = verify(true);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["DG2 hash"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
