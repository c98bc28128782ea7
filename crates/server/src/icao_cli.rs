//! `pasaporte mrz`, `pasaporte pki` and `pasaporte chip`: the ICAO Doc 9303 commands, thin
//! wrappers over the `icao9303` crate (JSON in, lines or JSON out, exit codes for scripts).

use anyhow::Context;
use icao9303::{ChipFiles, DocumentSigner, Format, Mrz, MrzFields, StateCode};
use serde::Deserialize;
use std::borrow::Cow;
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// The largest JSON document read from standard input for one record (a data page's fields
/// are a few hundred bytes; 64 KiB refuses garbage early).
const RECORD_BYTES_MAX: usize = 64 * 1024;
/// The largest MRZ text read by `mrz check` (three lines of 30 plus white space fit easily).
const MRZ_TEXT_BYTES_MAX: usize = 4 * 1024;
/// The largest photo read by `chip write`.
const PHOTO_BYTES_MAX: usize = icao9303::lds::FACE_IMAGE_BYTES_MAX;
/// The largest chip file read by `chip verify`.
const CHIP_FILE_BYTES_MAX: usize = 2 * 1024 * 1024;

/// `pasaporte mrz ...`
#[derive(clap::Subcommand)]
pub enum MrzCommand {
    /// Read one JSON object of data page fields on stdin and print the MRZ lines.
    ///
    /// Fields: format (TD1, TD2, TD3), document_type, issuing_state, surname, given_names,
    /// document_number, nationality, birth_date, sex, expiry_date, optional_data,
    /// optional_data_2 (TD1 line 2). Dates as YYMMDD (`<` for an unknown day or month of
    /// birth) or YYYY-MM-DD (XX for unknown parts). Exit 1 when a field cannot be
    /// represented (the message names it).
    Generate {
        /// One JSON object per input line, one JSON result per output line:
        /// {"lines":[...]} or {"field":"...","error":"..."}. Exit 1 if any record failed.
        #[arg(long)]
        jsonl: bool,
    },
    /// Read MRZ lines on stdin; print each field and each check digit's verdict.
    /// Exit 1 when a check fails or a field is invalid.
    Check {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `pasaporte pki ...`
#[derive(clap::Subcommand)]
pub enum PkiCommand {
    /// Create a test CSCA and a Document Signer (ECDSA P-256) for tests and demos:
    /// csca.pem, csca.key.pem, ds.pem, ds.key.pem (PKCS#8) in DIR.
    Init {
        /// The issuing state (ISO 3166-1 alpha-3, or an ICAO code with an alpha-2 country).
        #[arg(long)]
        country: String,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `pasaporte chip ...`
#[derive(clap::Subcommand)]
pub enum ChipCommand {
    /// Write EF.COM, EF.DG1, EF.DG2 and EF.SOD (raw files) into DIR.
    Write {
        /// JSON data page fields (as `mrz generate`).
        #[arg(long)]
        fields: PathBuf,
        /// The holder's photo (JPEG).
        #[arg(long)]
        photo: PathBuf,
        /// The Document Signer's PKCS#8 PEM private key.
        #[arg(long)]
        ds_key: PathBuf,
        /// The Document Signer's PEM certificate.
        #[arg(long)]
        ds_cert: PathBuf,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify the chip files in DIR against a CSCA: SOD signature, certificate chain,
    /// validity, every data group hash, EF.COM and DG1's check digits. Exit 1 on failure.
    Verify {
        /// Directory holding EF.COM, EF.DG1, EF.DG2, EF.SOD.
        #[arg(long)]
        dir: PathBuf,
        /// The CSCA certificate (PEM).
        #[arg(long)]
        csca: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The JSON fields of a data page. Strings borrow from the input when they hold no escape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsJson<'a> {
    #[serde(borrow)]
    format: Cow<'a, str>,
    #[serde(borrow)]
    document_type: Cow<'a, str>,
    #[serde(borrow)]
    issuing_state: Cow<'a, str>,
    #[serde(borrow)]
    surname: Cow<'a, str>,
    #[serde(borrow, default)]
    given_names: Cow<'a, str>,
    #[serde(borrow)]
    document_number: Cow<'a, str>,
    #[serde(borrow)]
    nationality: Cow<'a, str>,
    #[serde(borrow)]
    birth_date: Cow<'a, str>,
    #[serde(borrow)]
    sex: Cow<'a, str>,
    #[serde(borrow)]
    expiry_date: Cow<'a, str>,
    #[serde(borrow, default)]
    optional_data: Cow<'a, str>,
    #[serde(borrow, default)]
    optional_data_2: Cow<'a, str>,
}

/// What went wrong with one record: the field (when one is to blame) and a message.
struct RecordError {
    field: Option<&'static str>,
    message: String,
}

impl FieldsJson<'_> {
    fn generate(&self) -> Result<Mrz, RecordError> {
        let format: Format =
            self.format
                .parse()
                .map_err(|e: icao9303::UnknownFormat| RecordError {
                    field: Some("format"),
                    message: format!("format: {e}"),
                })?;
        let fields = MrzFields {
            document_code: &self.document_type,
            issuing_state: &self.issuing_state,
            surname: &self.surname,
            given_names: &self.given_names,
            document_number: &self.document_number,
            nationality: &self.nationality,
            birth_date: &self.birth_date,
            sex: &self.sex,
            expiry_date: &self.expiry_date,
            optional_data: &self.optional_data,
            optional_data_2: &self.optional_data_2,
        };
        Mrz::generate(format, &fields).map_err(|e| RecordError {
            field: Some(e.field.as_str()),
            message: e.to_string(),
        })
    }
}

fn generate_record(json: &str) -> Result<Mrz, RecordError> {
    let fields: FieldsJson<'_> = serde_json::from_str(json).map_err(|e| RecordError {
        // serde names a missing or unknown field in its message.
        field: None,
        message: format!("invalid input: {e}"),
    })?;
    fields.generate()
}

fn read_limited(reader: impl Read, max: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    // `max + 1` tells "exactly at the limit" from "over it"; usize to u64 is lossless here.
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {what}"))?;
    anyhow::ensure!(buf.len() <= max, "{what} is larger than {max} bytes");
    Ok(buf)
}

fn read_file(path: &Path, max: usize) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    read_limited(file, max, &path.display().to_string())
}

/// Runs `pasaporte mrz ...`.
pub fn run_mrz(cmd: MrzCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MrzCommand::Generate { jsonl: false } => {
            let input = read_limited(std::io::stdin().lock(), RECORD_BYTES_MAX, "standard input")?;
            let text = std::str::from_utf8(&input).context("standard input is not UTF-8")?;
            match generate_record(text) {
                Ok(mrz) => {
                    println!("{mrz}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {}", e.message);
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        MrzCommand::Generate { jsonl: true } => {
            generate_jsonl(std::io::stdin().lock(), std::io::stdout().lock())
        }
        MrzCommand::Check { json } => {
            let input = read_limited(
                std::io::stdin().lock(),
                MRZ_TEXT_BYTES_MAX,
                "standard input",
            )?;
            let text = String::from_utf8_lossy(&input);
            check_mrz(&text, json, &mut std::io::stdout().lock())
        }
    }
}

/// The `--jsonl` loop: one record per line in, one JSON result per line out. The line
/// buffer and the output are reused; MRZ characters need no JSON escaping.
fn generate_jsonl(mut input: impl BufRead, output: impl Write) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::with_capacity(1 << 16, output);
    let mut line = String::new();
    let mut failed = false;
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut input)
            .take(RECORD_BYTES_MAX as u64 + 1)
            .read_line(&mut line)
            .with_context(|| format!("reading line {}", number + 1))?;
        if n == 0 {
            break;
        }
        number += 1;
        let record = line.trim();
        if record.is_empty() {
            continue;
        }
        let result = if n > RECORD_BYTES_MAX {
            // Skip the rest of an oversized line.
            let mut sink = Vec::new();
            input.read_until(b'\n', &mut sink)?;
            Err(RecordError {
                field: None,
                message: format!("line longer than {RECORD_BYTES_MAX} bytes"),
            })
        } else {
            generate_record(record)
        };
        match result {
            Ok(mrz) => {
                out.write_all(b"{\"lines\":[")?;
                for (i, l) in mrz.lines().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    out.write_all(b"\"")?;
                    out.write_all(l.as_bytes())?;
                    out.write_all(b"\"")?;
                }
                out.write_all(b"]}\n")?;
            }
            Err(e) => {
                failed = true;
                let value =
                    serde_json::json!({ "line": number, "field": e.field, "error": e.message });
                serde_json::to_writer(&mut out, &value)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn check_mrz(text: &str, json: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let parsed = match Mrz::parse(text) {
        Ok(p) => p,
        Err(e) => {
            if json {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({ "valid": false, "error": e.to_string() }),
                )?;
                writeln!(out)?;
            } else {
                eprintln!("error: {e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let fields = [
        ("format", parsed.format.as_str().to_owned()),
        ("document_type", parsed.document_code.clone()),
        ("issuing_state", parsed.issuing_state.clone()),
        ("surname", parsed.surname.clone()),
        ("given_names", parsed.given_names.clone()),
        ("document_number", parsed.document_number.clone()),
        ("nationality", parsed.nationality.clone()),
        ("birth_date", parsed.birth_date.clone()),
        ("sex", parsed.sex.to_string()),
        ("expiry_date", parsed.expiry_date.clone()),
        ("optional_data", parsed.optional_data.clone()),
        ("optional_data_2", parsed.optional_data_2.clone()),
    ];
    let valid = parsed.is_valid();
    if json {
        let mut f = serde_json::Map::new();
        for (k, v) in &fields {
            f.insert((*k).to_owned(), serde_json::Value::String(v.clone()));
        }
        f.insert(
            "name_may_be_truncated".into(),
            parsed.name_may_be_truncated.into(),
        );
        let checks: Vec<_> = parsed
            .checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "field": c.field.as_str(),
                    "line": c.line,
                    "column": c.column,
                    "found": char::from(c.found).to_string(),
                    "expected": char::from(c.expected).to_string(),
                    "ok": c.is_ok(),
                })
            })
            .collect();
        let problems: Vec<_> = parsed
            .problems
            .iter()
            .map(|p| serde_json::json!({ "field": p.field.as_str(), "error": p.message }))
            .collect();
        let value = serde_json::json!({ "valid": valid, "fields": f, "checks": checks, "problems": problems });
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
    } else {
        for (k, v) in &fields {
            writeln!(out, "{k:>16}: {v}")?;
        }
        if parsed.name_may_be_truncated {
            writeln!(
                out,
                "{:>16}: the name fills its field and may be truncated",
                "note"
            )?;
        }
        for c in &parsed.checks {
            writeln!(out, "{c}")?;
        }
        for p in &parsed.problems {
            writeln!(out, "{}: {}: FAILED", p.field, p.message)?;
        }
        writeln!(out, "{}", if valid { "valid" } else { "INVALID" })?;
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes a file readable only by its owner (private keys).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

/// Runs `pasaporte pki ...`.
pub fn run_pki(cmd: PkiCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PkiCommand::Init { country, out } => {
            let state = StateCode::parse(&country)?;
            let (csca, ds) = icao9303::generate_test_pki(state, SystemTime::now())?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let write = |name: &str, text: &str| {
                std::fs::write(out.join(name), text).with_context(|| format!("writing {name}"))
            };
            write("csca.pem", &csca.cert_pem()?)?;
            write("ds.pem", &ds.cert_pem()?)?;
            write_private(&out.join("csca.key.pem"), csca.key_pem()?.as_bytes())?;
            write_private(&out.join("ds.key.pem"), ds.key_pem()?.as_bytes())?;
            println!("CSCA:            {}", csca.cert.tbs_certificate().subject());
            println!("Document Signer: {}", ds.cert.tbs_certificate().subject());
            println!(
                "written to {}: csca.pem csca.key.pem ds.pem ds.key.pem (test keys, not for production)",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `pasaporte chip ...`.
pub fn run_chip(cmd: ChipCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ChipCommand::Write {
            fields,
            photo,
            ds_key,
            ds_cert,
            out,
        } => {
            let json = read_file(&fields, RECORD_BYTES_MAX)?;
            let json = std::str::from_utf8(&json)
                .with_context(|| format!("{} is not UTF-8", fields.display()))?;
            let mrz = match generate_record(json) {
                Ok(m) => m,
                Err(e) => anyhow::bail!("{}: {}", fields.display(), e.message),
            };
            let jpeg = read_file(&photo, PHOTO_BYTES_MAX)?;
            let key = String::from_utf8(read_file(&ds_key, RECORD_BYTES_MAX)?)
                .context("DS key is not PEM text")?;
            let cert = String::from_utf8(read_file(&ds_cert, RECORD_BYTES_MAX)?)
                .context("DS certificate is not PEM text")?;
            let signer = DocumentSigner::from_pem(&key, &cert)?;
            let files = ChipFiles::personalise(&mrz, &jpeg, &signer)?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for (name, bytes) in files.named() {
                std::fs::write(out.join(name), bytes).with_context(|| format!("writing {name}"))?;
                println!("{name}: {} bytes", bytes.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        ChipCommand::Verify { dir, csca, json } => {
            let pem = String::from_utf8(read_file(&csca, RECORD_BYTES_MAX)?)
                .context("CSCA certificate is not PEM text")?;
            let csca = icao9303::load_certificate_pem(&pem)?;
            let read = |name: &str| read_file(&dir.join(name), CHIP_FILE_BYTES_MAX);
            let files = ChipFiles {
                ef_com: read("EF.COM")?,
                dg1: read("EF.DG1")?,
                dg2: read("EF.DG2")?,
                sod: read("EF.SOD")?,
            };
            let report = files.verify(&csca, SystemTime::now());
            let stdout = &mut std::io::stdout().lock();
            if json {
                let verdicts: Vec<_> = report
                    .verdicts
                    .iter()
                    .map(
                        |v| serde_json::json!({ "check": v.check, "ok": v.ok, "detail": v.detail }),
                    )
                    .collect();
                serde_json::to_writer_pretty(
                    &mut *stdout,
                    &serde_json::json!({ "valid": report.is_ok(), "checks": verdicts }),
                )?;
                writeln!(stdout)?;
            } else {
                for v in &report.verdicts {
                    writeln!(stdout, "{v}")?;
                }
                writeln!(
                    stdout,
                    "{}",
                    if report.is_ok() { "valid" } else { "INVALID" }
                )?;
            }
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ANNA: &str = r#"{"format":"TD3","document_type":"P","issuing_state":"UTO","surname":"Eriksson","given_names":"Anna María","document_number":"L898902C3","nationality":"UTO","birth_date":"740812","sex":"F","expiry_date":"2012-04-15","optional_data":"ZE184226B"}"#;

    #[test]
    fn jsonl_streams_results_and_names_fields() {
        let input = format!(
            "{ANNA}\n\n{}\nnot json\n",
            ANNA.replace("Eriksson", "Eriks9on")
        );
        let mut out = Vec::new();
        let code = generate_jsonl(input.as_bytes(), &mut out).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0]["lines"][1],
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
        );
        assert_eq!(lines[1]["field"], "surname");
        assert_eq!(lines[1]["line"], 3);
        assert!(
            lines[2]["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid input")
        );
    }

    #[test]
    fn check_reports_position_and_expected_digit() {
        let bad = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C35UTO7408122F1204159ZE184226B<<<<<10\n";
        let mut out = Vec::new();
        assert_eq!(check_mrz(bad, true, &mut out).unwrap(), ExitCode::FAILURE);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["valid"], false);
        assert_eq!(v["checks"][0]["field"], "document_number");
        assert_eq!(v["checks"][0]["line"], 2);
        assert_eq!(v["checks"][0]["column"], 10);
        assert_eq!(v["checks"][0]["expected"], "6");
        let good = bad.replace("C35UTO", "C36UTO");
        let mut out = Vec::new();
        assert_eq!(
            check_mrz(&good, false, &mut out).unwrap(),
            ExitCode::SUCCESS
        );
        assert!(String::from_utf8(out).unwrap().contains("ERIKSSON"));
    }
}
