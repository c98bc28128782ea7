//! A test PKI, a chip written from an MRZ and a photo, verified, then tampered with.
//!
//! `cargo run -p icao9303 --example chip`

use icao9303::{ChipFiles, DocumentSigner, Format, Mrz, MrzFields, StateCode, generate_test_pki};
use std::time::SystemTime;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (csca, ds) = generate_test_pki(StateCode::parse("COL")?, SystemTime::now())?;
    // In production the Document Signer comes from PEM files (or an HSM-backed signer).
    let signer = DocumentSigner::from_pem(&ds.key_pem()?, &ds.cert_pem()?)?;
    let mrz = Mrz::generate(
        Format::Td3,
        &MrzFields {
            document_code: "P",
            issuing_state: "COL",
            surname: "Muñoz Peña",
            given_names: "José Ángel",
            document_number: "AB1234567",
            nationality: "COL",
            birth_date: "1990-02-28",
            sex: "M",
            expiry_date: "2035-02-27",
            optional_data: "",
            optional_data_2: "",
        },
    )?;
    let photo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/face.jpg"))?;
    let mut files = ChipFiles::personalise(&mrz, &photo, &signer)?;
    for (name, bytes) in files.named() {
        println!("{name}: {} bytes", bytes.len());
    }
    let report = files.verify(&csca.cert, SystemTime::now());
    for v in &report.verdicts {
        println!("{v}");
    }
    println!("valid: {}\n", report.is_ok());

    let i = files.dg2.len() / 2;
    files.dg2[i] ^= 1;
    let report = files.verify(&csca.cert, SystemTime::now());
    for v in report.verdicts.iter().filter(|v| !v.ok) {
        println!("{v}");
    }
    println!("valid after changing one byte of DG2: {}", report.is_ok());
    Ok(())
}
