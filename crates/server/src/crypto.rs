//! Personal data at rest: every personal field is sealed on its own with
//! AES-256-GCM under a key id (so keys rotate and old rows still open), its
//! place as associated data (table, column, row id and the part of the row:
//! [`SealedAt`]), so a value moved to another column, row or table does not
//! open, and lookups by identity go through a keyed hash (HMAC-SHA256).
//!
//! Layout: [`SealedAt`] names a place and encodes it; [`Keyring`] seals and
//! opens (`v2.` values; the field-only version 1 opens only through
//! [`Keyring::open_v1`], for the one-off re-seal in `reseal.rs`), and
//! derives lookup keys and manage tokens.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The id an unknown booking code is checked against (no booking has it:
/// ids are UUIDs).
const NO_BOOKING_ID: &str = "no-booking";

/// Key ids are short names written in front of every sealed value.
pub const KEY_ID_CHARS_MAX: usize = 16;
const NONCE_LEN: usize = 12;
/// Written before the base64 of every value sealed with its place as
/// associated data. Version 1 values (the field name only) are bare base64,
/// which never contains a `.`, so the two cannot be mistaken.
pub const V2_PREFIX: &str = "v2.";
/// The first bytes of every version 2 associated data.
const AAD_V2_TAG: &[u8] = b"pasaporte/sealed/v2";

/// Sealed values that failed to open since the process started.
static INTEGRITY_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many sealed values failed to open (moved, damaged, or under an
/// unknown key) since the process started; each was logged at ERROR.
pub fn integrity_failures() -> u64 {
    INTEGRITY_FAILURES.load(Ordering::Relaxed)
}

/// Where a sealed value lives: its table, column and row (the primary key),
/// and which part of the row when one column or row holds several values:
/// `part` for an applicant's position in a booking, `field` for one field
/// of a sealed JSON document (`applications.identity_enc`). The value is
/// bound to all of it, so a value moved anywhere else does not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedAt<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row: &'a str,
    pub part: Option<u32>,
    pub field: Option<&'a str>,
}

impl<'a> SealedAt<'a> {
    pub const fn new(table: &'static str, column: &'static str, row: &'a str) -> Self {
        Self {
            table,
            column,
            row,
            part: None,
            field: None,
        }
    }

    /// The applicant at `position` of a row that holds several.
    pub const fn part(self, position: u32) -> Self {
        Self {
            part: Some(position),
            ..self
        }
    }

    /// One field of a sealed document.
    pub const fn field(self, name: &'a str) -> Self {
        Self {
            field: Some(name),
            ..self
        }
    }

    /// The associated data: a version tag, then each component length
    /// prefixed (so `("ab", "c")` and `("a", "bc")` differ), the optional
    /// ones behind a presence byte.
    fn aad(&self) -> Vec<u8> {
        fn text(out: &mut Vec<u8>, s: &str) {
            // Names and ids are short; u32 lengths cannot overflow here.
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        let mut out = Vec::with_capacity(64 + self.row.len());
        out.extend_from_slice(AAD_V2_TAG);
        text(&mut out, self.table);
        text(&mut out, self.column);
        text(&mut out, self.row);
        match self.part {
            Some(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_be_bytes());
            }
            None => out.push(0),
        }
        match self.field {
            Some(f) => {
                out.push(1);
                text(&mut out, f);
            }
            None => out.push(0),
        }
        out
    }
}

/// Every place personal data or a secret is sealed at, one function per
/// column: the seal, every open and the re-seal (`reseal.rs`) name a place
/// the same way. Applicants are rows of `applicants` keyed by booking id and
/// position; the identity and contact documents of an application seal each
/// field on its own.
pub mod at {
    use super::SealedAt;

    pub fn booking_email(id: &str) -> SealedAt<'_> {
        SealedAt::new("bookings", "email_enc", id)
    }
    pub fn booking_phone(id: &str) -> SealedAt<'_> {
        SealedAt::new("bookings", "phone_enc", id)
    }
    pub fn booking_evidence(id: &str) -> SealedAt<'_> {
        SealedAt::new("bookings", "evidence_enc", id)
    }
    pub fn applicant_document_number(booking_id: &str, position: u32) -> SealedAt<'_> {
        SealedAt::new("applicants", "document_number_enc", booking_id).part(position)
    }
    pub fn applicant_surnames(booking_id: &str, position: u32) -> SealedAt<'_> {
        SealedAt::new("applicants", "surnames_enc", booking_id).part(position)
    }
    pub fn applicant_given_names(booking_id: &str, position: u32) -> SealedAt<'_> {
        SealedAt::new("applicants", "given_names_enc", booking_id).part(position)
    }
    pub fn applicant_birth_date(booking_id: &str, position: u32) -> SealedAt<'_> {
        SealedAt::new("applicants", "birth_date_enc", booking_id).part(position)
    }
    pub fn mail_recipient(id: &str) -> SealedAt<'_> {
        SealedAt::new("outbox", "recipient_enc", id)
    }
    pub fn mail_body(id: &str) -> SealedAt<'_> {
        SealedAt::new("outbox", "body_enc", id)
    }
    pub fn mail_ics(id: &str) -> SealedAt<'_> {
        SealedAt::new("outbox", "ics_enc", id)
    }
    pub fn staff_display_name(id: &str) -> SealedAt<'_> {
        SealedAt::new("staff", "display_name_enc", id)
    }
    pub fn staff_totp_secret(id: &str) -> SealedAt<'_> {
        SealedAt::new("staff", "totp_secret_enc", id)
    }
    /// The document of `applications.identity_enc` (each field sealed at
    /// `.field(name)`).
    pub fn application_identity(id: &str) -> SealedAt<'_> {
        SealedAt::new("applications", "identity_enc", id)
    }
    /// The document of `applications.contact_enc` (each field at `.field(name)`).
    pub fn application_contact(id: &str) -> SealedAt<'_> {
        SealedAt::new("applications", "contact_enc", id)
    }
    pub fn application_extras(id: &str) -> SealedAt<'_> {
        SealedAt::new("applications", "extras_enc", id)
    }
    pub fn application_photo(id: &str) -> SealedAt<'_> {
        SealedAt::new("applications", "photo_enc", id)
    }
    pub fn application_signature(id: &str) -> SealedAt<'_> {
        SealedAt::new("applications", "signature_enc", id)
    }
    pub fn chip_portrait(application_id: &str) -> SealedAt<'_> {
        SealedAt::new("application_portraits", "chip_portrait_enc", application_id)
    }
    pub fn vendor_key(id: &str) -> SealedAt<'_> {
        SealedAt::new("vendors", "key_enc", id)
    }
    pub fn order_body(order_id: &str) -> SealedAt<'_> {
        SealedAt::new("production_orders", "body_enc", order_id)
    }
    pub fn release_seed(id: &str) -> SealedAt<'_> {
        SealedAt::new("releases", "seed_enc", id)
    }
}

/// `table.column[row]`, `#part` and `/field` when present: names and ids only.
impl std::fmt::Display for SealedAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}[{}]", self.table, self.column, self.row)?;
        if let Some(n) = self.part {
            write!(f, "#{n}")?;
        }
        if let Some(field) = self.field {
            write!(f, "/{field}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key configuration: {0}")]
    Config(String),
    #[error("a sealed value is damaged or was sealed under an unknown key")]
    Open,
    /// A stored value does not open for the place it was read from.
    #[error("data integrity: the sealed value at {place} does not open for its row")]
    Integrity { place: String },
    #[error("the system's random source failed")]
    Random,
}

/// Fills `buf` from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| CryptoError::Random)?;
    Ok(b)
}

/// The data keys (the first seals, all open) and the lookup key.
pub struct Keyring {
    current: String,
    ciphers: HashMap<String, Aes256Gcm>,
    /// Each data key's check value, by id (see [`key_check`]).
    checks: HashMap<String, String>,
    lookup_key: [u8; 32],
}

/// A key's check value: a keyed hash of a fixed text, which tells two keys
/// apart (so nodes can agree on them through the database) and reveals
/// nothing of the key.
fn key_check(key: &[u8; 32]) -> String {
    // HMAC accepts keys of any length: new_from_slice cannot fail here.
    let mut m =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(b"pasaporte key check v1");
    hex(&m.finalize().into_bytes()[..16])
}

/// The identity of a keyring without its secrets, as the database records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChecks {
    /// The id of the key that seals new data.
    pub current: String,
    /// `(id, check value)` of every data key, sorted by id.
    pub data: Vec<(String, String)>,
    /// The lookup key's check value.
    pub lookup: String,
}

fn parse_hex32(s: &str, what: &str) -> Result<[u8; 32], CryptoError> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CryptoError::Config(format!(
            "{what} must be 64 hexadecimal characters (32 bytes)"
        )));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .map_err(|_| CryptoError::Config(format!("{what} is not hex")))?;
    }
    Ok(out)
}

/// Lower-case hex of `bytes` (digests, keys, signatures).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Names the key ids only: keys never reach a log or a test failure message.
impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// `data_keys` is `id:hex64[,id:hex64...]`, the first one current;
    /// `lookup_key` is 64 hex characters.
    pub fn parse(data_keys: &str, lookup_key: &str) -> Result<Self, CryptoError> {
        let mut current = None;
        let mut ciphers = HashMap::new();
        let mut checks = HashMap::new();
        for part in data_keys
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (id, key) = part.split_once(':').ok_or_else(|| {
                CryptoError::Config("data keys are written id:hex64, separated by commas".into())
            })?;
            if id.is_empty()
                || id.len() > KEY_ID_CHARS_MAX
                || !id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(CryptoError::Config(format!(
                    "key id must be 1 to {KEY_ID_CHARS_MAX} letters or digits"
                )));
            }
            let key = parse_hex32(key, "a data key")?;
            let cipher = Aes256Gcm::new_from_slice(&key)
                .map_err(|_| CryptoError::Config("bad key length".into()))?;
            if ciphers.insert(id.to_string(), cipher).is_some() {
                return Err(CryptoError::Config(format!("key id {id} appears twice")));
            }
            checks.insert(id.to_string(), key_check(&key));
            current.get_or_insert_with(|| id.to_string());
        }
        let current = current.ok_or_else(|| CryptoError::Config("no data key given".into()))?;
        Ok(Self {
            current,
            ciphers,
            checks,
            lookup_key: parse_hex32(lookup_key, "the lookup key")?,
        })
    }

    /// The key ids and check values of this keyring (no secrets).
    pub fn checks(&self) -> KeyChecks {
        let mut data: Vec<(String, String)> = self
            .checks
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect();
        data.sort();
        KeyChecks {
            current: self.current.clone(),
            data,
            lookup: key_check(&self.lookup_key),
        }
    }

    /// Reads the keys from `path`, or creates the file with fresh keys (mode
    /// 0600) when it does not exist. For demos and single machines; production
    /// passes keys through the environment from a secret store.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        let io =
            |e: std::io::Error| CryptoError::Config(format!("key file {}: {e}", path.display()));
        if !path.exists() {
            let text = format!(
                "PASAPORTE_DATA_KEYS=k1:{}\nPASAPORTE_LOOKUP_KEY={}\n",
                hex(&random_bytes::<32>()?),
                hex(&random_bytes::<32>()?)
            );
            write_private(path, &text).map_err(io)?;
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let get = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .map(str::to_string)
                .ok_or_else(|| {
                    CryptoError::Config(format!("key file {} has no {name}", path.display()))
                })
        };
        Self::parse(&get("PASAPORTE_DATA_KEYS")?, &get("PASAPORTE_LOOKUP_KEY")?)
    }

    /// Seals `plain` for the place `at` (table, column, row, part):
    /// `v2.` + `base64(id_len | id | nonce | ciphertext+tag)`, with
    /// [`SealedAt::aad`] as associated data, so the value opens only where
    /// it was written.
    pub fn seal(&self, at: SealedAt<'_>, plain: &str) -> Result<String, CryptoError> {
        let sealed = self.seal_raw(&at.aad(), plain)?;
        Ok(format!("{V2_PREFIX}{sealed}"))
    }

    /// Opens a value sealed by [`Keyring::seal`] for the same place. Any
    /// failure (moved from another row, column or table; a version 1 value;
    /// damaged; an unknown key) is logged at ERROR with the place (names
    /// and ids, never the value), counted in [`integrity_failures`], and
    /// returned as [`CryptoError::Integrity`]: nothing is ever shown instead.
    pub fn open(&self, at: SealedAt<'_>, sealed: &str) -> Result<String, CryptoError> {
        let opened = sealed
            .strip_prefix(V2_PREFIX)
            .ok_or(CryptoError::Open)
            .and_then(|body| self.open_raw(&at.aad(), body));
        opened.map_err(|_| {
            INTEGRITY_FAILURES.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                table = at.table,
                column = at.column,
                row = at.row,
                part = at.part,
                field = at.field,
                "a sealed value does not open for its row: moved, damaged or sealed under an unknown key; refused"
            );
            CryptoError::Integrity {
                place: at.to_string(),
            }
        })
    }

    /// Whether `sealed` is in the current format (the re-seal skips those).
    pub fn is_current(sealed: &str) -> bool {
        sealed.starts_with(V2_PREFIX)
    }

    /// Opens a version 1 value (associated data: the field name only). Only
    /// the one-off re-seal (`reseal.rs`) calls this: a v1 value can be moved
    /// between rows, so nothing that shows data accepts one.
    pub fn open_v1(&self, field: &str, sealed: &str) -> Result<String, CryptoError> {
        self.open_raw(field.as_bytes(), sealed)
    }

    /// Seals the way versions before row binding did. Nothing in the server
    /// writes these; tests of the re-seal make them.
    #[doc(hidden)]
    pub fn seal_v1(&self, field: &str, plain: &str) -> Result<String, CryptoError> {
        self.seal_raw(field.as_bytes(), plain)
    }

    fn seal_raw(&self, aad: &[u8], plain: &str) -> Result<String, CryptoError> {
        let cipher = self.ciphers.get(&self.current).ok_or(CryptoError::Open)?;
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let nonce = Nonce::from(nonce_bytes);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad,
                },
            )
            .map_err(|_| CryptoError::Open)?;
        let id = self.current.as_bytes();
        let mut out = Vec::with_capacity(1 + id.len() + NONCE_LEN + ct.len());
        out.push(id.len() as u8); // KEY_ID_CHARS_MAX < 256
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(STANDARD.encode(out))
    }

    fn open_raw(&self, aad: &[u8], sealed: &str) -> Result<String, CryptoError> {
        let raw = STANDARD.decode(sealed).map_err(|_| CryptoError::Open)?;
        let (&id_len, rest) = raw.split_first().ok_or(CryptoError::Open)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let id = std::str::from_utf8(id).map_err(|_| CryptoError::Open)?;
        let cipher = self.ciphers.get(id).ok_or(CryptoError::Open)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Open)?;
        let plain = cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
            .map_err(|_| CryptoError::Open)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Open)
    }

    fn mac(&self, domain: &str, text: &str) -> [u8; 32] {
        // HMAC accepts keys of any length: new_from_slice cannot fail here.
        let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.lookup_key)
            .unwrap_or_else(|_| unreachable!());
        m.update(domain.as_bytes());
        m.update(b"\0");
        m.update(text.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// The keyed hash that finds a person without storing who they are.
    pub fn person_key(&self, identity_text: &str) -> String {
        hex(&self.mac("person", identity_text))
    }

    /// The secret that lets a citizen manage one booking. Derived, not stored,
    /// so a retried request gets the same token and a database leak reveals none.
    pub fn manage_token(&self, booking_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(&self.mac("manage", booking_id)[..24])
    }

    /// Whether `token` is the manage token of `booking_id` (constant time).
    pub fn check_manage_token(&self, booking_id: &str, token: &str) -> bool {
        let want = self.manage_token(booking_id);
        let (a, b) = (want.as_bytes(), token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Whether `token` is the manage token of the booking a code named
    /// (`None`: no booking has that code). The unknown case derives and
    /// compares a token too, for an id no booking has, so that a stranger
    /// cannot tell an unknown code from a known one by the time the answer
    /// takes.
    pub fn check_manage_token_of(&self, booking_id: Option<&str>, token: &str) -> bool {
        let matches = self.check_manage_token(booking_id.unwrap_or(NO_BOOKING_ID), token);
        matches && booking_id.is_some()
    }

    /// A stable digest of a request body, to tell a retry from a new request.
    pub fn request_digest(&self, body: &str) -> String {
        hex(&self.mac("request", body))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn at(row: &str) -> SealedAt<'_> {
        SealedAt::new("applicants", "surnames_enc", row)
    }

    #[test]
    fn seal_open_rotate() {
        let old = Keyring::parse(&format!("k1:{K1}"), K2).unwrap();
        let sealed = old.seal(at("b1").part(0), "MUÑOZ").unwrap();
        assert!(!sealed.contains("MU"));
        assert!(sealed.starts_with("v2."), "{sealed}");
        assert_eq!(old.open(at("b1").part(0), &sealed).unwrap(), "MUÑOZ");
        // After rotation the new key seals, the old one still opens.
        let new = Keyring::parse(&format!("k2:{K2},k1:{K1}"), K2).unwrap();
        assert_eq!(new.open(at("b1").part(0), &sealed).unwrap(), "MUÑOZ");
        let fresh = new.seal(at("b1").part(0), "MUÑOZ").unwrap();
        assert_eq!(new.open(at("b1").part(0), &fresh).unwrap(), "MUÑOZ");
        assert!(
            old.open(at("b1").part(0), &fresh).is_err(),
            "k2 unknown to old"
        );
        let only_new = Keyring::parse(&format!("k2:{K2}"), K2).unwrap();
        assert!(only_new.open(at("b1").part(0), &sealed).is_err());
        let body = sealed.strip_prefix("v2.").unwrap();
        let mut tampered = STANDARD.decode(body).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let tampered = format!("v2.{}", STANDARD.encode(tampered));
        assert!(old.open(at("b1").part(0), &tampered).is_err());
    }

    /// A value opens only at the place it was sealed for: another row,
    /// column, table, applicant position or document field refuses it.
    #[test]
    fn a_value_is_bound_to_its_place() {
        let k = Keyring::parse(&format!("k1:{K1}"), K2).unwrap();
        let here = SealedAt::new("applications", "identity_enc", "a1").field("surnames");
        let sealed = k.seal(here, "MUÑOZ").unwrap();
        assert_eq!(k.open(here, &sealed).unwrap(), "MUÑOZ");
        let before = integrity_failures();
        for elsewhere in [
            SealedAt::new("applications", "identity_enc", "a2").field("surnames"),
            SealedAt::new("applications", "identity_enc", "a1").field("given_names"),
            SealedAt::new("applications", "identity_enc", "a1"),
            SealedAt::new("applications", "contact_enc", "a1").field("surnames"),
            SealedAt::new("bookings", "identity_enc", "a1").field("surnames"),
            SealedAt::new("applications", "identity_enc", "a1")
                .field("surnames")
                .part(0),
        ] {
            let e = k.open(elsewhere, &sealed).unwrap_err();
            assert!(
                matches!(&e, CryptoError::Integrity { place } if *place == elsewhere.to_string()),
                "{elsewhere}: {e}"
            );
            assert!(!e.to_string().contains("MU"), "{e}");
        }
        assert!(integrity_failures() >= before + 6, "each refusal counted");
        let first = k.seal(at("b1").part(0), "x").unwrap();
        assert!(
            k.open(at("b1").part(1), &first).is_err(),
            "another applicant"
        );
        assert!(k.open(at("b1"), &first).is_err(), "no position");
    }

    /// Log lines captured in memory.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// A refusal is reported: one ERROR line naming the table, column and
    /// row it was read from, and nothing of the value.
    #[test]
    fn a_refusal_is_logged_with_its_place_and_no_data() {
        let k = Keyring::parse(&format!("k1:{K1}"), K2).unwrap();
        let sealed = k.seal(at::booking_email("b-1"), "ana@example.co").unwrap();
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            assert!(k.open(at::booking_email("b-2"), &sealed).is_err());
        });
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        for part in [
            "ERROR",
            "table=\"bookings\"",
            "column=\"email_enc\"",
            "row=\"b-2\"",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        assert!(!text.contains("ana@") && !text.contains(&sealed), "{text}");
    }

    /// Components are length-prefixed: moving a character from the row id
    /// to the column name (or any such shift) gives another place.
    #[test]
    fn places_are_encoded_unambiguously() {
        let a = SealedAt::new("t", "ab", "c").aad();
        let b = SealedAt::new("t", "a", "bc").aad();
        assert_ne!(a, b);
        assert_ne!(
            SealedAt::new("t", "c", "r").field("").aad(),
            SealedAt::new("t", "c", "r").aad()
        );
        assert_ne!(
            SealedAt::new("t", "c", "r").part(0).aad(),
            SealedAt::new("t", "c", "r").aad()
        );
        assert_eq!(
            SealedAt::new("applicants", "surnames_enc", "b1")
                .part(2)
                .to_string(),
            "applicants.surnames_enc[b1]#2"
        );
    }

    /// Version 1 values (field-only associated data) open only through the
    /// re-seal's `open_v1`: the normal `open` refuses them, so an old value
    /// swapped into a row is not shown.
    #[test]
    fn version_1_opens_only_for_the_reseal() {
        let k = Keyring::parse(&format!("k1:{K1}"), K2).unwrap();
        let v1 = k.seal_v1("surnames", "MUÑOZ").unwrap();
        assert!(!Keyring::is_current(&v1));
        assert!(!v1.contains('.'), "v1 values are bare base64");
        assert!(k.open(at("b1").part(0), &v1).is_err());
        assert!(k.open(at("b1").part(0), &format!("v2.{v1}")).is_err());
        assert_eq!(k.open_v1("surnames", &v1).unwrap(), "MUÑOZ");
        assert!(
            k.open_v1("given_names", &v1).is_err(),
            "bound to its column"
        );
        let v2 = k.seal(at("b1").part(0), "MUÑOZ").unwrap();
        assert!(Keyring::is_current(&v2));
        assert!(k.open_v1("surnames", &v2).is_err());
    }

    #[test]
    fn tokens_and_keys() {
        let k = Keyring::parse(&format!("k1:{K1}"), K2).unwrap();
        let t = k.manage_token("b1");
        assert_eq!(t.len(), 32);
        assert!(k.check_manage_token("b1", &t));
        assert!(!k.check_manage_token("b2", &t));
        assert!(!k.check_manage_token("b1", ""));
        // An unknown code is compared like a known one, and never matches,
        // not even the token of the id it is compared against.
        assert!(k.check_manage_token_of(Some("b1"), &t));
        assert!(!k.check_manage_token_of(None, &t));
        assert!(!k.check_manage_token_of(None, &k.manage_token(NO_BOOKING_ID)));
        assert_eq!(k.person_key("COL:123"), k.person_key("COL:123"));
        assert_ne!(k.person_key("COL:123"), k.person_key("COL:124"));
    }

    #[test]
    fn bad_configuration_says_what_to_fix() {
        assert!(Keyring::parse("", K2).is_err());
        assert!(
            Keyring::parse("k1:abc", K2)
                .unwrap_err()
                .to_string()
                .contains("64 hexadecimal")
        );
        assert!(
            Keyring::parse(&format!("k1:{K1},k1:{K2}"), K2)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
