//! Benchmark program (not a timed test): prints absolute figures and ratios measured in
//! one run on this machine.
//!
//! ```text
//! cargo run --release -p icao9303 --example bench -- [--pasaporte PATH] [--seconds N]
//! ```
//!
//! 1. MRZ generate-and-validate on one core (TD3, transliteration and check digits).
//! 2. `pasaporte mrz generate --jsonl` end to end through the binary given with
//!    `--pasaporte` (skipped without it).
//! 3. EF.SOD built and signed per second (ECDSA P-256 over DG1 and a DG2 with a photo;
//!    AWS-LC with the default `aws-lc` feature, `p256` without it),
//!    beside `openssl speed -seconds 3 ecdsap256`'s signing rate.

use icao9303::{
    ChipFiles, DocumentSigner, Format, Mrz, MrzFields, StateCode, build_dg1, build_dg2, build_sod,
};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const SURNAMES: [&str; 8] = [
    "Eriksson",
    "Muñoz Peña",
    "O'Brien",
    "Gonçalves da Silva",
    "Müller-Lüdenscheidt",
    "Nilavadhanananda",
    "Øster",
    "Dvořák",
];
const GIVEN: [&str; 8] = [
    "Anna María",
    "José Ángel",
    "Siobhán",
    "João Pedro",
    "Hans-Jürgen",
    "Chayapa Dejthamrong Krasuang",
    "Åsa",
    "Antonín Leopold",
];
const TARGET_MRZ_PER_S: f64 = 2_000_000.0;
const TARGET_SOD_RATIO: f64 = 0.8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let budget = Duration::from_secs_f64(seconds);

    // 1. MRZ generate-and-validate.
    let numbers: Vec<String> = (0..64)
        .map(|i| format!("AB{:07}", 1_234_567 + i * 7919))
        .collect();
    let records: Vec<MrzFields<'_>> = (0..64)
        .map(|i| MrzFields {
            document_code: "P",
            issuing_state: "COL",
            surname: SURNAMES[i % 8],
            given_names: GIVEN[(i / 8) % 8],
            document_number: &numbers[i],
            nationality: "COL",
            birth_date: "1974-08-12",
            sex: if i % 2 == 0 { "F" } else { "M" },
            expiry_date: "2034-04-15",
            optional_data: "ZE184226B",
            optional_data_2: "",
        })
        .collect();
    let mut n = 0u64;
    let mut ok = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        for r in &records {
            let mrz = Mrz::generate(Format::Td3, std::hint::black_box(r))?;
            ok += u64::from(std::hint::black_box(&mrz).checks_ok());
        }
        n += records.len() as u64;
    }
    let mrz_rate = n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(ok, n, "every generated MRZ must validate");
    println!(
        "MRZ TD3 generate+validate, 1 core: {mrz_rate:>12.0} records/s  ({:.2}× the 2,000,000/s target)",
        mrz_rate / TARGET_MRZ_PER_S
    );

    // 2. The binary, end to end.
    match arg("--pasaporte") {
        Some(bin) => {
            let count = 500_000usize;
            let mut child = Command::new(&bin)
                .args(["mrz", "generate", "--jsonl"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let mut stdin = child.stdin.take().ok_or("no stdin")?;
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let lines: Vec<String> = (0..64)
                .map(|i| {
                    format!(
                        r#"{{"format":"TD3","document_type":"P","issuing_state":"COL","surname":"{}","given_names":"{}","document_number":"AB{:07}","nationality":"COL","birth_date":"1974-08-12","sex":"F","expiry_date":"2034-04-15","optional_data":"ZE184226B"}}"#,
                        SURNAMES[i % 8], GIVEN[(i / 8) % 8], 1_000_000 + i
                    ) + "\n"
                })
                .collect();
            let start = Instant::now();
            let writer = std::thread::spawn(move || -> std::io::Result<()> {
                let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut stdin);
                for i in 0..count {
                    w.write_all(lines[i % lines.len()].as_bytes())?;
                }
                w.flush()
            });
            let mut out = 0usize;
            let mut errors = 0usize;
            for line in BufReader::with_capacity(1 << 16, stdout).lines() {
                let line = line?;
                out += 1;
                errors += usize::from(!line.starts_with("{\"lines\""));
            }
            writer.join().map_err(|_| "writer panicked")??;
            let status = child.wait()?;
            let secs = start.elapsed().as_secs_f64();
            assert_eq!((out, errors), (count, 0), "binary exit {status}");
            println!(
                "`pasaporte mrz generate --jsonl` end to end: {:>10.0} records/s  ({count} records in {secs:.2} s; {:.2}× the in-process rate)",
                count as f64 / secs,
                count as f64 / secs / mrz_rate
            );
        }
        None => println!(
            "`mrz generate --jsonl` end to end: skipped (pass --pasaporte PATH to the release binary)"
        ),
    }

    // 3. SODs signed per second vs. OpenSSL's ECDSA P-256 signing.
    let (_, ds) = icao9303::generate_test_pki(StateCode::parse("COL")?, SystemTime::now())?;
    let signer = DocumentSigner::new(ds.key, ds.cert)?;
    let jpeg = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/face.jpg"))?;
    let mrz = Mrz::generate(Format::Td3, &records[0])?;
    let dg1 = build_dg1(&mrz);
    let dg2 = build_dg2(&jpeg, icao9303::lds::Gender::Female)?;
    let mut sods = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        let sod = build_sod(&[(1, &dg1), (2, &dg2)], &signer)?;
        std::hint::black_box(sod);
        sods += 1;
    }
    let sod_rate = sods as f64 / start.elapsed().as_secs_f64();
    // The full personalisation (DG1, DG2 and EF.COM built too) for reference.
    let mut full = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget / 3 {
        std::hint::black_box(ChipFiles::personalise(&mrz, &jpeg, &signer)?);
        full += 1;
    }
    let full_rate = full as f64 / start.elapsed().as_secs_f64();
    let openssl = Command::new("openssl")
        .args(["speed", "-seconds", "3", "ecdsap256"])
        .output();
    let openssl_rate = openssl.ok().and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let line = text.lines().find(|l| l.contains("nistp256"))?.to_owned();
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.get(cols.len().checked_sub(2)?)?.parse::<f64>().ok()
    });
    print!(
        "EF.SOD built+signed (DG1 + {} B DG2), 1 core: {sod_rate:>8.0} SOD/s",
        dg2.len()
    );
    match openssl_rate {
        Some(o) => println!(
            "  vs openssl speed ecdsap256 sign {o:.0}/s: {:.2}× ({}target {TARGET_SOD_RATIO:.2}×)",
            sod_rate / o,
            if sod_rate / o >= TARGET_SOD_RATIO {
                "meets "
            } else {
                "BELOW "
            }
        ),
        None => println!("  (openssl speed not available)"),
    }
    println!("full personalisation (EF.COM, DG1, DG2, SOD), 1 core: {full_rate:>8.0} chips/s");
    Ok(())
}
