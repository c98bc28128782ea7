//! Personal data at rest: every personal field is sealed on its own with
//! AES-256-GCM under a key id (so keys rotate and old rows still open), the
//! field's name as associated data (so a value moved to another column does
//! not open), and lookups by identity go through a keyed hash (HMAC-SHA256).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::Path;

/// The id an unknown booking code is checked against (no booking has it:
/// ids are UUIDs).
const NO_BOOKING_ID: &str = "no-booking";

/// Key ids are short names written in front of every sealed value.
pub const KEY_ID_CHARS_MAX: usize = 16;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key configuration: {0}")]
    Config(String),
    #[error("a sealed value is damaged or was sealed under an unknown key")]
    Open,
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

    /// Seals `plain` for the column `field`: `base64(id_len | id | nonce | ciphertext+tag)`.
    pub fn seal(&self, field: &str, plain: &str) -> Result<String, CryptoError> {
        let cipher = self.ciphers.get(&self.current).ok_or(CryptoError::Open)?;
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let nonce = Nonce::from(nonce_bytes);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: field.as_bytes(),
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

    /// Opens a value sealed by [`Keyring::seal`] for the same `field`.
    pub fn open(&self, field: &str, sealed: &str) -> Result<String, CryptoError> {
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
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: field.as_bytes(),
                },
            )
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

    #[test]
    fn seal_open_rotate() {
        let old = Keyring::parse(&format!("k1:{K1}"), K2).unwrap();
        let sealed = old.seal("surnames", "MUÑOZ").unwrap();
        assert!(!sealed.contains("MU"));
        assert_eq!(old.open("surnames", &sealed).unwrap(), "MUÑOZ");
        assert!(
            old.open("given_names", &sealed).is_err(),
            "bound to its column"
        );
        // After rotation the new key seals, the old one still opens.
        let new = Keyring::parse(&format!("k2:{K2},k1:{K1}"), K2).unwrap();
        assert_eq!(new.open("surnames", &sealed).unwrap(), "MUÑOZ");
        assert!(new.seal("x", "y").unwrap() != old.seal("x", "y").unwrap());
        let only_new = Keyring::parse(&format!("k2:{K2}"), K2).unwrap();
        assert!(only_new.open("surnames", &sealed).is_err());
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(old.open("surnames", &STANDARD.encode(tampered)).is_err());
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
