//! The personalisation record of an approved application: every field of the
//! data page, the TD3 machine readable zone and the chip's files (EF.COM,
//! EF.DG1, EF.DG2, EF.SOD signed by the Document Signer), made with the
//! `icao9303` crate; and its verification (MRZ check digits, the MRZ against
//! the record, the SOD against the CSCA).
//!
//! Layout: the constants of the issuing authority and the chip portrait;
//! [`PersonalisationInput`] (what the data page says; built from a stored
//! application by [`input_from_application`], which opens its sealed identity
//! and portrait) and [`PersonalisationRecord`] (what is printed and written);
//! [`personalise`]; [`verify_record`]; the portrait's conversion to the JPEG
//! DG2 holds; tests.
//!
//! Names keep their accents and Ñ on the data page; the MRZ and DG1 carry
//! their ICAO transliteration (Doc 9303 Part 3: "MUÑOZ" → "MUNOZ"). Errors
//! name the field and what is wrong with it, never its value.

use crate::app::App;
use crate::crypto::at;
use crate::workflow::IdentityDoc;
use icao9303::{
    Certificate, ChipError, ChipFiles, DocumentSigner, Format, Mrz, MrzError, MrzFields,
};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageReader, Limits};
use pasaporte_core::fees::PassportType;
use pasaporte_core::jiff::civil::Date;
use pasaporte_core::production::PassportNumber;
use pasaporte_core::registry::Sex;
use pasaporte_store::ApplicationRow;
use std::io::Cursor;
use std::time::SystemTime;

/// The authority printed on the data page.
pub const ISSUING_AUTHORITY: &str = "CANCILLERÍA DE COLOMBIA";
/// Colombia's issuing-state code (ICAO Doc 9303 Part 3, ISO 3166-1 alpha-3).
pub const ISSUING_STATE: &str = "COL";
/// The document code of a passport (TD3).
pub const DOCUMENT_CODE: &str = "P";
/// Largest portrait accepted for personalisation: the capture step keeps at
/// most 2 MiB (`photo::PORTRAIT_BYTES_MAX`), re-encoded as PNG, which can
/// grow; twice that bounds the input without refusing a captured portrait.
pub const PORTRAIT_INPUT_BYTES_MAX: usize = 2 * crate::photo::PORTRAIT_BYTES_MAX;
/// Longest side of a portrait decoded here (as at capture: 2500 px).
pub const PORTRAIT_INPUT_SIDE_MAX: u32 = crate::photo::PORTRAIT_HEIGHT_MAX;
/// The chip portrait's box: 480 × 600 keeps 90+ px between the eyes of an
/// ICAO-cropped face (ISO/IEC 19794-5) while the JPEG stays in the tens of
/// kilobytes a chip's DG2 usually holds.
pub const CHIP_PORTRAIT_WIDTH_MAX: u32 = 480;
pub const CHIP_PORTRAIT_HEIGHT_MAX: u32 = 600;
/// JPEG quality of the chip portrait: 85 keeps a face's detail at about
/// 30–60 KB for 480 × 600.
pub const CHIP_PORTRAIT_JPEG_QUALITY: u8 = 85;
/// Largest chip portrait: what a DG2 may hold within the vendor protocol's
/// chip file limit (96 KiB), with room for DG2's headers.
pub const CHIP_PORTRAIT_BYTES_MAX: usize = 90 * 1024;
/// The lowest JPEG quality tried to fit a portrait into
/// [`CHIP_PORTRAIT_BYTES_MAX`].
pub const CHIP_PORTRAIT_JPEG_QUALITY_MIN: u8 = 45;
/// Longest personal number in the TD3 optional data field.
pub const PERSONAL_NUMBER_CHARS_MAX: usize = 14;

/// What the data page will say, from the application's (opened) identity,
/// its passport type and the allocated number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalisationInput {
    /// As the civil registry writes them, accents and Ñ included.
    pub surnames: String,
    pub given_names: String,
    /// ICAO code of the nationality (`COL`).
    pub nationality: String,
    pub birth_date: Date,
    pub sex: Sex,
    pub birth_place: String,
    pub passport_type: PassportType,
    pub passport_number: PassportNumber,
    pub issue_date: Date,
    /// The cédula's digits, carried in the MRZ's optional data; may be empty.
    pub personal_number: String,
    /// The portrait, PNG (as sealed in `applications.photo_enc`) or JPEG.
    pub portrait: Vec<u8>,
    /// Whether `portrait` is already the chip's JPEG ([`chip_portrait`]'s
    /// output, kept since capture): signed as it is, not decoded again.
    pub chip_ready: bool,
}

/// What is printed on the data page and written to the chip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalisationRecord {
    pub document_code: String,
    pub issuing_state: String,
    pub passport_number: PassportNumber,
    pub passport_type: PassportType,
    pub surnames: String,
    pub given_names: String,
    pub nationality: String,
    pub birth_date: Date,
    pub sex: Sex,
    pub birth_place: String,
    pub issue_date: Date,
    pub expiry_date: Date,
    pub authority: String,
    pub personal_number: String,
    /// The two TD3 lines, 44 characters each.
    pub mrz: [String; 2],
    /// EF.COM, EF.DG1, EF.DG2 and EF.SOD.
    pub chip: ChipFiles,
}

/// Why an application could not be personalised.
#[derive(Debug, thiserror::Error)]
pub enum PersonaliseError {
    #[error("the expiry date of a passport issued on {issued} is past year 9999")]
    Expiry { issued: Date },
    #[error("the personal number must be at most {PERSONAL_NUMBER_CHARS_MAX} letters or digits")]
    PersonalNumber,
    /// A field the MRZ cannot hold (its name and the problem, not its value).
    #[error("the MRZ cannot hold the {0}")]
    Mrz(#[from] MrzError),
    #[error("the portrait: {0}")]
    Portrait(String),
    #[error("the chip files: {0}")]
    Chip(#[from] ChipError),
    /// The application lacks a field, or holds one that cannot be read.
    #[error("the application's {0} is missing or unreadable")]
    Application(&'static str),
}

/// Why a record does not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the MRZ cannot be read: {0}")]
    MrzUnreadable(String),
    #[error("the MRZ's check digits or fields are wrong: {0}")]
    MrzInvalid(String),
    #[error("the MRZ does not match the record's {0}")]
    MrzMismatch(&'static str),
    #[error("EF.DG1 does not hold the record's MRZ")]
    Dg1Mismatch,
    /// The names of the failed chip checks (their details may hold the MRZ).
    #[error("the chip does not verify: {}", .0.join(", "))]
    Chip(Vec<String>),
}

impl PersonalisationInput {
    /// The input from an opened identity: birth date `YYYY-MM-DD`, sex
    /// `F`/`M`/`X`, nationality `COL` when the identity has none; the
    /// identity document's number is the personal number when it is a
    /// number the MRZ can hold (a cédula or NUIP), else it is left out.
    pub fn from_identity(
        identity: &IdentityDoc,
        passport_type: PassportType,
        passport_number: PassportNumber,
        issue_date: Date,
        portrait: Vec<u8>,
    ) -> Result<PersonalisationInput, PersonaliseError> {
        let birth_date: Date = identity
            .birth_date
            .trim()
            .parse()
            .map_err(|_| PersonaliseError::Application("birth date"))?;
        let sex = Sex::parse(&identity.sex).ok_or(PersonaliseError::Application("sex"))?;
        let nationality = match identity.nationality.trim() {
            "" => ISSUING_STATE.to_string(),
            n => n.to_ascii_uppercase(),
        };
        let number = identity.document_number.trim();
        let personal_number = if !number.is_empty()
            && number.len() <= PERSONAL_NUMBER_CHARS_MAX
            && number.bytes().all(|b| b.is_ascii_digit())
        {
            number.to_string()
        } else {
            String::new()
        };
        Ok(PersonalisationInput {
            surnames: identity.surnames.clone(),
            given_names: identity.given_names.clone(),
            nationality,
            birth_date,
            sex,
            birth_place: identity.birth_place.clone(),
            passport_type,
            passport_number,
            issue_date,
            personal_number,
            portrait,
            chip_ready: false,
        })
    }
}

/// The input of a stored application (read with every column:
/// `Store::application`), its identity and portrait opened with the
/// service's keys.
pub fn input_from_application(
    app: &App,
    row: &ApplicationRow,
    passport_number: PassportNumber,
    issue_date: Date,
) -> Result<PersonalisationInput, PersonaliseError> {
    let passport_type = row
        .passport_type
        .as_deref()
        .and_then(PassportType::parse)
        .ok_or(PersonaliseError::Application("passport type"))?;
    let identity = row
        .identity_enc
        .as_deref()
        .map(|s| IdentityDoc::open(app, &row.id, s))
        .transpose()
        .map_err(|_| PersonaliseError::Application("identity"))?
        .ok_or(PersonaliseError::Application("identity"))?;
    let portrait = chip_jpeg(
        &app.keys,
        &row.id,
        row.chip_portrait_enc.as_deref(),
        row.photo_enc.as_deref(),
    )?;
    let mut input = PersonalisationInput::from_identity(
        &identity,
        passport_type,
        passport_number,
        issue_date,
        portrait,
    )?;
    input.chip_ready = true;
    Ok(input)
}

/// The chip's JPEG portrait of an application: the one kept since capture,
/// else made from the captured photo ([`chip_portrait`] is deterministic,
/// so both ways give the same bytes every time they are asked).
pub fn chip_jpeg(
    keys: &crate::crypto::Keyring,
    application_id: &str,
    chip_portrait_enc: Option<&str>,
    photo_enc: Option<&str>,
) -> Result<Vec<u8>, PersonaliseError> {
    use base64::Engine as _;
    let open = |at: crate::crypto::SealedAt<'_>, sealed: &str| {
        keys.open(at, sealed)
            .ok()
            .and_then(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
            })
            .ok_or(PersonaliseError::Application("photo"))
    };
    match (chip_portrait_enc, photo_enc) {
        (Some(chip), _) => open(at::chip_portrait(application_id), chip),
        (None, Some(photo)) => chip_portrait(&open(at::application_photo(application_id), photo)?),
        (None, None) => Err(PersonaliseError::Application("photo")),
    }
}

/// EF.DG2 for a JPEG portrait and the MRZ's sex, exactly as
/// [`ChipFiles::personalise`] builds it.
pub fn dg2_of(jpeg: &[u8], mrz: &Mrz) -> Result<Vec<u8>, PersonaliseError> {
    Ok(
        icao9303::lds::build_dg2(jpeg, icao9303::lds::Gender::from_mrz(mrz.fields().sex))
            .map_err(ChipError::from)?,
    )
}

fn yymmdd(d: Date) -> String {
    format!(
        "{:02}{:02}{:02}",
        d.year().rem_euclid(100),
        d.month(),
        d.day()
    )
}

/// Builds the record: MRZ, expiry from the passport type (10 years;
/// emergencia 7 months), chip files signed by `signer`.
pub fn personalise(
    input: &PersonalisationInput,
    signer: &DocumentSigner,
) -> Result<PersonalisationRecord, PersonaliseError> {
    let expiry_date =
        input
            .passport_type
            .expiry_date(input.issue_date)
            .ok_or(PersonaliseError::Expiry {
                issued: input.issue_date,
            })?;
    let personal_number = input.personal_number.trim();
    if personal_number.chars().count() > PERSONAL_NUMBER_CHARS_MAX
        || !personal_number.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(PersonaliseError::PersonalNumber);
    }
    let number = input.passport_number.to_string();
    let birth = input.birth_date.to_string();
    let expiry = expiry_date.to_string();
    let mrz = Mrz::generate(
        Format::Td3,
        &MrzFields {
            document_code: DOCUMENT_CODE,
            issuing_state: ISSUING_STATE,
            surname: input.surnames.trim(),
            given_names: input.given_names.trim(),
            document_number: &number,
            nationality: input.nationality.trim(),
            birth_date: &birth,
            sex: input.sex.as_str(),
            expiry_date: &expiry,
            optional_data: personal_number,
            optional_data_2: "",
        },
    )?;
    let jpeg = if input.chip_ready {
        std::borrow::Cow::Borrowed(input.portrait.as_slice())
    } else {
        std::borrow::Cow::Owned(chip_portrait(&input.portrait)?)
    };
    let chip = ChipFiles::personalise(&mrz, &jpeg, signer)?;
    Ok(PersonalisationRecord {
        document_code: DOCUMENT_CODE.into(),
        issuing_state: ISSUING_STATE.into(),
        passport_number: input.passport_number,
        passport_type: input.passport_type,
        surnames: input.surnames.trim().into(),
        given_names: input.given_names.trim().into(),
        nationality: input.nationality.trim().into(),
        birth_date: input.birth_date,
        sex: input.sex,
        birth_place: input.birth_place.trim().into(),
        issue_date: input.issue_date,
        expiry_date,
        authority: ISSUING_AUTHORITY.into(),
        personal_number: personal_number.into(),
        mrz: [mrz.line(0).to_string(), mrz.line(1).to_string()],
        chip,
    })
}

/// Re-reads the record's MRZ (check digits, and its fields against the
/// record's), checks DG1 holds that MRZ, and verifies the chip (EF.COM, DG2,
/// the SOD's hashes and signature, the Document Signer against `csca`).
pub fn verify_record(
    record: &PersonalisationRecord,
    csca: &Certificate,
    now: SystemTime,
) -> Result<(), VerifyError> {
    let mrz =
        Mrz::from_lines(&record.mrz).map_err(|e| VerifyError::MrzUnreadable(e.to_string()))?;
    let parsed = mrz.fields();
    if !parsed.is_valid() {
        let failed: Vec<String> = parsed
            .checks
            .iter()
            .filter(|c| !c.is_ok())
            .map(|c| format!("{:?}", c.field))
            .chain(parsed.problems.iter().map(|p| format!("{:?}", p.field)))
            .collect();
        return Err(VerifyError::MrzInvalid(failed.join(", ")));
    }
    let expect = |ok: bool, what: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(VerifyError::MrzMismatch(what))
        }
    };
    expect(
        parsed.document_code == record.document_code,
        "document code",
    )?;
    expect(
        parsed.issuing_state == record.issuing_state,
        "issuing state",
    )?;
    expect(
        parsed.document_number == record.passport_number.to_string(),
        "passport number",
    )?;
    expect(parsed.nationality == record.nationality, "nationality")?;
    expect(parsed.birth_date == yymmdd(record.birth_date), "birth date")?;
    expect(
        parsed.expiry_date == yymmdd(record.expiry_date),
        "expiry date",
    )?;
    expect(parsed.sex.to_string() == record.sex.as_str(), "sex")?;
    expect(
        parsed.optional_data == record.personal_number,
        "personal number",
    )?;
    verify_chip(&mrz, &record.chip, csca, now)
}

/// Checks a production order as a vendor receives it: its MRZ (check digits,
/// the document number is the order's passport number), DG1 holds that MRZ,
/// and the chip verifies against `csca`.
pub fn verify_order(
    order: &crate::vendors::Order,
    csca: &Certificate,
    now: SystemTime,
) -> Result<(), VerifyError> {
    use base64::Engine as _;
    let mrz = Mrz::from_lines(&order.mrz).map_err(|e| VerifyError::MrzUnreadable(e.to_string()))?;
    let parsed = mrz.fields();
    if !parsed.is_valid() {
        return Err(VerifyError::MrzInvalid("check digits".into()));
    }
    if parsed.document_number != order.passport_number {
        return Err(VerifyError::MrzMismatch("passport number"));
    }
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| VerifyError::Chip(vec!["base64".into()]))
    };
    let chip = ChipFiles {
        ef_com: b64(&order.chip.ef_com)?,
        dg1: b64(&order.chip.dg1)?,
        dg2: b64(&order.chip.dg2)?,
        sod: b64(&order.chip.sod)?,
    };
    verify_chip(&mrz, &chip, csca, now)
}

/// DG1 holds `mrz` and the chip's SOD verifies against `csca`.
fn verify_chip(
    mrz: &Mrz,
    chip: &ChipFiles,
    csca: &Certificate,
    now: SystemTime,
) -> Result<(), VerifyError> {
    match icao9303::lds::parse_dg1(&chip.dg1) {
        Ok(dg1) if &dg1 == mrz => {}
        Ok(_) | Err(_) => return Err(VerifyError::Dg1Mismatch),
    }
    let report = chip.verify(csca, now);
    if report.is_ok() {
        Ok(())
    } else {
        Err(VerifyError::Chip(
            report
                .verdicts
                .iter()
                .filter(|v| !v.ok)
                .map(|v| v.check.clone())
                .collect(),
        ))
    }
}

/// The portrait as DG2 holds it: decoded (PNG or JPEG) under limits, scaled
/// into the chip's box, encoded as baseline JPEG (no metadata survives).
pub fn chip_portrait(bytes: &[u8]) -> Result<Vec<u8>, PersonaliseError> {
    let bad = |e: String| PersonaliseError::Portrait(e);
    if bytes.len() > PORTRAIT_INPUT_BYTES_MAX {
        return Err(bad(format!(
            "{} bytes, at most {PORTRAIT_INPUT_BYTES_MAX} accepted",
            bytes.len()
        )));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    match reader.format() {
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
        _ => return Err(bad("only PNG or JPEG portraits are accepted".into())),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(PORTRAIT_INPUT_SIDE_MAX);
    limits.max_image_height = Some(PORTRAIT_INPUT_SIDE_MAX);
    limits.max_alloc = Some(crate::photo::DECODE_ALLOC_BYTES_MAX);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| bad(e.to_string()))?;
    let img = if img.width() > CHIP_PORTRAIT_WIDTH_MAX || img.height() > CHIP_PORTRAIT_HEIGHT_MAX {
        img.resize(
            CHIP_PORTRAIT_WIDTH_MAX,
            CHIP_PORTRAIT_HEIGHT_MAX,
            image::imageops::FilterType::Triangle,
        )
    } else {
        img
    };
    let rgb = img.to_rgb8();
    // A busy picture can come out larger than a chip file may be: lower the
    // quality step by step until it fits (a face never needs to go far).
    let mut quality = CHIP_PORTRAIT_JPEG_QUALITY;
    loop {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(&rgb)
            .map_err(|e| bad(e.to_string()))?;
        if out.len() <= CHIP_PORTRAIT_BYTES_MAX {
            return Ok(out);
        }
        if quality <= CHIP_PORTRAIT_JPEG_QUALITY_MIN {
            return Err(bad(format!(
                "{} bytes as JPEG at quality {quality}, more than a chip file holds",
                out.len()
            )));
        }
        quality = quality
            .saturating_sub(10)
            .max(CHIP_PORTRAIT_JPEG_QUALITY_MIN);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use icao9303::{StateCode, generate_test_pki};
    use image::{ImageEncoder, RgbImage, codecs::png::PngEncoder};
    use pasaporte_core::jiff::civil::date;
    use std::sync::OnceLock;

    struct Pki {
        csca: Certificate,
        signer: DocumentSigner,
    }

    fn pki() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| {
            let (csca, ds) =
                generate_test_pki(StateCode::parse("COL").unwrap(), SystemTime::now()).unwrap();
            Pki {
                csca: csca.cert,
                signer: DocumentSigner::new(ds.key, ds.cert).unwrap(),
            }
        })
    }

    fn portrait_png() -> Vec<u8> {
        let img = RgbImage::from_fn(840, 1050, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        let mut v = Vec::new();
        PngEncoder::new(&mut v)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        v
    }

    fn input(t: PassportType, issued: Date) -> PersonalisationInput {
        PersonalisationInput {
            surnames: "Muñoz Peña".into(),
            given_names: "José Ángel".into(),
            nationality: "COL".into(),
            birth_date: date(1990, 2, 28),
            sex: Sex::M,
            birth_place: "Bogotá D.C.".into(),
            passport_type: t,
            passport_number: PassportNumber::from_sequence("AX", 1_234_567).unwrap(),
            issue_date: issued,
            personal_number: "1020304050".into(),
            portrait: portrait_png(),
            chip_ready: false,
        }
    }

    #[test]
    fn a_record_parses_and_verifies() {
        let r = personalise(
            &input(PassportType::Ordinario, date(2026, 11, 29)),
            &pki().signer,
        )
        .unwrap();
        assert_eq!(r.mrz[0].len(), 44);
        assert_eq!(r.mrz[1].len(), 44);
        assert!(r.mrz[0].starts_with("P<COL"));
        assert!(r.mrz[1].starts_with("AX1234567"));
        let parsed = Mrz::parse(&r.mrz.join("\n")).unwrap();
        assert!(parsed.is_valid(), "{parsed:?}");
        assert_eq!(parsed.document_number, "AX1234567");
        assert_eq!(parsed.expiry_date, "361129");
        assert_eq!(r.expiry_date, date(2036, 11, 29));
        assert_eq!(r.authority, "CANCILLERÍA DE COLOMBIA");
        assert_eq!(
            (r.issuing_state.as_str(), r.document_code.as_str()),
            ("COL", "P")
        );
        assert_eq!(r.birth_place, "Bogotá D.C.");
        verify_record(&r, &pki().csca, SystemTime::now()).unwrap();
        // The DG2 holds a JPEG within the chip's box.
        let face = icao9303::lds::parse_dg2(&r.chip.dg2).unwrap();
        assert!(
            face.width <= 480 && face.height <= 600,
            "{}x{}",
            face.width,
            face.height
        );
        assert_eq!(&face.image[..2], &[0xFF, 0xD8]);
    }

    #[test]
    fn names_are_transliterated_in_the_mrz_only() {
        let r = personalise(
            &input(PassportType::Ejecutivo, date(2026, 1, 15)),
            &pki().signer,
        )
        .unwrap();
        assert_eq!(r.surnames, "Muñoz Peña");
        assert_eq!(r.given_names, "José Ángel");
        assert!(
            r.mrz[0].starts_with("P<COLMUNOZ<PENA<<JOSE<ANGEL<"),
            "{}",
            r.mrz[0]
        );
    }

    #[test]
    fn emergencia_expires_in_seven_months() {
        let r = personalise(
            &input(PassportType::Emergencia, date(2026, 7, 31)),
            &pki().signer,
        )
        .unwrap();
        assert_eq!(r.expiry_date, date(2027, 2, 28));
        assert_eq!(Mrz::parse(&r.mrz.join("\n")).unwrap().expiry_date, "270228");
        verify_record(&r, &pki().csca, SystemTime::now()).unwrap();
    }

    #[test]
    fn tampering_fails_verification() {
        let good = personalise(
            &input(PassportType::Ordinario, date(2026, 3, 2)),
            &pki().signer,
        )
        .unwrap();
        // One byte of DG1 changed (in the MRZ text, at its end).
        let mut r = good.clone();
        let last = r.chip.dg1.len() - 1;
        r.chip.dg1[last] = if r.chip.dg1[last] == b'1' { b'2' } else { b'1' };
        assert_eq!(
            verify_record(&r, &pki().csca, SystemTime::now()),
            Err(VerifyError::Dg1Mismatch)
        );
        // ... and the SOD alone catches it too: DG1's hash no longer matches.
        assert!(!r.chip.verify(&pki().csca, SystemTime::now()).is_ok());
        // DG2 changed: the SOD's hash no longer matches.
        let mut r = good.clone();
        let i = r.chip.dg2.len() / 2;
        r.chip.dg2[i] ^= 1;
        assert!(matches!(
            verify_record(&r, &pki().csca, SystemTime::now()),
            Err(VerifyError::Chip(_))
        ));
        // The printed MRZ with a wrong check digit.
        let mut r = good.clone();
        let mut line: Vec<u8> = r.mrz[1].clone().into_bytes();
        line[9] = if line[9] == b'0' { b'1' } else { b'0' };
        r.mrz[1] = String::from_utf8(line).unwrap();
        assert!(matches!(
            verify_record(&r, &pki().csca, SystemTime::now()),
            Err(VerifyError::MrzInvalid(_))
        ));
        // The record's fields no longer match a (valid) MRZ.
        let mut r = good.clone();
        r.expiry_date = date(2040, 1, 1);
        assert_eq!(
            verify_record(&r, &pki().csca, SystemTime::now()),
            Err(VerifyError::MrzMismatch("expiry date"))
        );
        // Another CSCA does not vouch for this Document Signer.
        let (other, _) =
            generate_test_pki(StateCode::parse("COL").unwrap(), SystemTime::now()).unwrap();
        assert!(matches!(
            verify_record(&good, &other.cert, SystemTime::now()),
            Err(VerifyError::Chip(_))
        ));
    }

    /// A stored application (identity and portrait sealed as capture seals
    /// them) becomes a record that verifies.
    #[tokio::test]
    async fn a_stored_application_is_personalised() {
        use base64::Engine as _;
        let (store, _) = pasaporte_store::testing::fresh(pasaporte_store::testing::TestDb::Sqlite)
            .await
            .unwrap();
        let keys =
            crate::crypto::Keyring::parse(&format!("k1:{}", "ab".repeat(32)), &"cd".repeat(32))
                .unwrap();
        let app = App::new(store, keys, "http://test".into(), Default::default())
            .await
            .unwrap();
        let identity = IdentityDoc {
            document_type: "cedula_ciudadania".into(),
            document_number: "1020304050".into(),
            surnames: "Núñez Ñañez".into(),
            given_names: "María José".into(),
            birth_date: "1985-12-31".into(),
            birth_place: "Medellín".into(),
            sex: "F".into(),
            nationality: "COL".into(),
        };
        let photo = base64::engine::general_purpose::STANDARD.encode(portrait_png());
        let row = ApplicationRow {
            id: "app-1".into(),
            passport_type: Some("fronterizo".into()),
            identity_enc: Some(identity.seal(&app, "app-1").unwrap()),
            photo_enc: Some(
                app.keys
                    .seal(at::application_photo("app-1"), &photo)
                    .unwrap(),
            ),
            ..Default::default()
        };
        let number = PassportNumber::from_sequence("AX", 42).unwrap();
        let input = input_from_application(&app, &row, number, date(2026, 11, 29)).unwrap();
        assert_eq!(input.personal_number, "1020304050");
        assert_eq!(input.sex, Sex::F);
        let r = personalise(&input, &pki().signer).unwrap();
        assert_eq!(r.surnames, "Núñez Ñañez");
        assert_eq!(r.birth_place, "Medellín");
        assert_eq!(r.expiry_date, date(2036, 11, 29));
        assert!(
            r.mrz[0].starts_with("P<COLNUNEZ<NANEZ<<MARIA<JOSE<"),
            "{}",
            r.mrz[0]
        );
        assert!(r.mrz[1].starts_with("AX0000042"), "{}", r.mrz[1]);
        assert!(r.mrz[1].contains("1020304050"), "{}", r.mrz[1]);
        verify_record(&r, &pki().csca, SystemTime::now()).unwrap();
        // Without a photo the application cannot be personalised.
        let no_photo = ApplicationRow {
            photo_enc: None,
            ..row
        };
        assert!(matches!(
            input_from_application(&app, &no_photo, number, date(2026, 11, 29)),
            Err(PersonaliseError::Application("photo"))
        ));
    }

    #[test]
    fn bad_inputs_name_the_field_not_the_value() {
        let mut i = input(PassportType::Ordinario, date(2026, 3, 2));
        i.surnames = "Σωκράτης".into();
        let e = personalise(&i, &pki().signer).unwrap_err();
        assert!(matches!(e, PersonaliseError::Mrz(_)), "{e}");
        assert!(!e.to_string().contains("Σωκράτης"), "{e}");
        let mut i = input(PassportType::Ordinario, date(2026, 3, 2));
        i.personal_number = "123-456".into();
        assert!(matches!(
            personalise(&i, &pki().signer),
            Err(PersonaliseError::PersonalNumber)
        ));
        let mut i = input(PassportType::Ordinario, date(2026, 3, 2));
        i.portrait = b"GIF89a not a portrait".to_vec();
        assert!(matches!(
            personalise(&i, &pki().signer),
            Err(PersonaliseError::Portrait(_))
        ));
    }
}
