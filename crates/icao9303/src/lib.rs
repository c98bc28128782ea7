//! ICAO Doc 9303 travel documents: the machine readable zone (MRZ) of TD1, TD2 and TD3
//! documents, the transliteration of names, and the chip's data (EF.COM, EF.DG1, EF.DG2
//! and the Document Security Object EF.SOD) with its signature and verification.
//!
//! ```
//! use icao9303::{Format, Mrz, MrzFields};
//!
//! let mrz = Mrz::generate(Format::Td3, &MrzFields {
//!     document_code: "P",
//!     issuing_state: "UTO",
//!     surname: "Eriksson",
//!     given_names: "Anna María",
//!     document_number: "L898902C3",
//!     nationality: "UTO",
//!     birth_date: "1974-08-12",
//!     sex: "F",
//!     expiry_date: "2012-04-15",
//!     optional_data: "ZE184226B",
//!     optional_data_2: "",
//! })?;
//! assert_eq!(mrz.line(0), "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<");
//! assert_eq!(mrz.line(1), "L898902C36UTO7408122F1204159ZE184226B<<<<<10");
//! assert!(mrz.checks_ok());
//! # Ok::<(), icao9303::MrzError>(())
//! ```
//!
//! # Layout
//!
//! - `check.rs`: check digits (Part 3 4.9).
//! - `codes.rs`: [`Format`], [`DocumentCode`] and [`StateCode`] (ISO 3166-1 alpha-3 and the
//!   codes of Part 3 of ICAO's own).
//! - `translit.rs`: Latin transliteration (Part 3 section 6) and the options chosen.
//! - `name.rs`: composing and truncating the name field.
//! - `mrz.rs`: [`Mrz::generate`] from [`MrzFields`], [`Mrz::parse`] to [`ParsedMrz`] with
//!   every [`Check`].
//! - `tlv.rs`: a bounded BER-TLV reader and a DER-TLV writer for the LDS files.
//! - `lds.rs`: EF.COM, EF.DG1, EF.DG2 (with the ISO/IEC 19794-5 facial record) (Part 10).
//! - `sod.rs`: the LDS Security Object and EF.SOD, signing and verification (Parts 10
//!   and 12).
//! - `pki.rs`: CSCA and Document Signer keys and certificates with ICAO profiles.
//!
//! Nothing here does IO beyond what a caller passes in; no part depends on the rest of
//! pasaporte.

mod check;
pub mod chip;
mod codes;
pub mod lds;
mod mrz;
mod name;
pub mod pki;
pub mod sod;
pub mod tlv;
pub mod translit;

pub use check::{char_value, check_digit, check_digit_parts};
pub use chip::{ChipError, ChipFiles};
pub use codes::{
    DocumentCode, DocumentCodeError, Format, StateCode, UnknownFormat, UnknownStateCode,
};
pub use lds::{build_dg1, build_dg2, build_ef_com};
pub use mrz::{
    Check, CheckedField, DateError, Field, FieldProblem, MRZ_CHARS_MAX, Mrz, MrzError, MrzFields,
    ParseError, ParsedMrz, Problem,
};
/// The ECDSA P-256 private key type of a Document Signer.
pub use p256::ecdsa::SigningKey;
pub use pki::{
    DocumentSigner, PkiError, generate_test_pki, load_certificate_pem, load_signing_key_pem,
};
pub use sod::{Report, SodError, Verdict, build_sod, verify_sod};
/// The X.509 certificate type used for CSCA and Document Signer certificates.
pub use x509_cert::certificate::Certificate;
