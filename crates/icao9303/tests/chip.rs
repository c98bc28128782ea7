//! Chip round trip: write, verify, tamper, verify fails; and OpenSSL accepts the SOD.
#![allow(clippy::unwrap_used)]

use icao9303::{ChipFiles, DocumentSigner, Format, Mrz, MrzFields, StateCode, generate_test_pki};
use std::process::Command;
use std::time::{Duration, SystemTime};

fn jpeg() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/face.jpg")).unwrap()
}

fn files() -> (ChipFiles, icao9303::pki::Issued, icao9303::pki::Issued) {
    let (csca, ds) =
        generate_test_pki(StateCode::parse("COL").unwrap(), SystemTime::now()).unwrap();
    let signer = DocumentSigner::from_pem(&ds.key_pem().unwrap(), &ds.cert_pem().unwrap()).unwrap();
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
            optional_data: "1020304050",
            optional_data_2: "",
        },
    )
    .unwrap();
    (
        ChipFiles::personalise(&mrz, &jpeg(), &signer).unwrap(),
        csca,
        ds,
    )
}

#[test]
fn write_verify_tamper() {
    let (files, csca, _) = files();
    let report = files.verify(&csca.cert, SystemTime::now());
    assert!(report.is_ok(), "{report:#?}");

    let mut tampered = files.clone();
    let i = tampered.dg2.len() - 10;
    tampered.dg2[i] ^= 0x01;
    let report = tampered.verify(&csca.cert, SystemTime::now());
    assert!(!report.is_ok());
    let failed: Vec<_> = report
        .verdicts
        .iter()
        .filter(|v| !v.ok)
        .map(|v| v.check.as_str())
        .collect();
    assert_eq!(failed, ["DG2 hash"]);

    // Another CSCA does not vouch for this Document Signer.
    let (other, _) =
        generate_test_pki(StateCode::parse("COL").unwrap(), SystemTime::now()).unwrap();
    let report = files.verify(&other.cert, SystemTime::now());
    assert!(
        report
            .verdicts
            .iter()
            .any(|v| v.check == "Document Signer certificate signed by the CSCA" && !v.ok)
    );

    // Expired by then.
    let later = SystemTime::now() + Duration::from_secs(86_400 * 365 * 20);
    assert!(!files.verify(&csca.cert, later).is_ok());

    // A flipped bit in the signature.
    let mut bad_sig = files.clone();
    let n = bad_sig.sod.len();
    bad_sig.sod[n - 5] ^= 0x01;
    assert!(!bad_sig.verify(&csca.cert, SystemTime::now()).is_ok());
}

#[test]
fn openssl_accepts_the_sod() {
    let (files, csca, ds) = files();
    let dir = std::env::temp_dir().join(format!("icao9303-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // EF.SOD minus its 0x77 TLV header is the CMS ContentInfo.
    let (tlv, _) = icao9303::tlv::Tlv::read(&files.sod).unwrap();
    std::fs::write(dir.join("sod.der"), tlv.value).unwrap();
    std::fs::write(dir.join("csca.pem"), csca.cert_pem().unwrap()).unwrap();
    std::fs::write(dir.join("ds.pem"), ds.cert_pem().unwrap()).unwrap();
    let out = Command::new("/usr/bin/openssl")
        .args([
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "sod.der",
            "-CAfile",
            "csca.pem",
            "-purpose",
            "any",
            "-binary",
            "-out",
            "content.der",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Verification successful"));
    // The content OpenSSL hands back is the LDS Security Object itself: one OCTET STRING
    // layer, not two.
    let content = std::fs::read(dir.join("content.der")).unwrap();
    assert_eq!(
        content[0], 0x30,
        "eContent must be the DER SEQUENCE, not a nested OCTET STRING"
    );
    let lso = icao9303::sod::Sod::parse(&files.sod)
        .unwrap()
        .security_object;
    assert_eq!(lso.data_group_hash_values.len(), 2);

    // The DS certificate verifies against the CSCA for OpenSSL too.
    let out = Command::new("/usr/bin/openssl")
        .args(["verify", "-CAfile", "csca.pem", "-purpose", "any", "ds.pem"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
