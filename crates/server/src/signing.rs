//! The request signing scheme pasaporte shares with every outside party that
//! talks to it over HTTP: payment gateway callbacks, and printing vendors in
//! both directions (batches to the vendor, status callbacks back).
//!
//! A signed request carries, next to its raw body:
//! - `x-pasaporte-timestamp`: the signing time, unix seconds;
//! - `x-pasaporte-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`,
//!   possibly several comma-separated `v1=` values (any one matching is
//!   enough), so a sender signs with the old and the new secret while a
//!   secret rotates;
//! - `x-pasaporte-key-id` (vendors): which shared key signed, so one receiver
//!   can hold the keys of several parties.
//!
//! The signature is compared in constant time and checked before the body is
//! parsed; the timestamp must be within [`TIMESTAMP_TOLERANCE_SECS`] of the
//! receiver's clock, which bounds how long captured bytes can be replayed.
//! Replays inside the window are the receiver's to refuse (by the event or
//! order id they carry).
//!
//! Layout: [`sign`] and [`verify`] are the primitive over one party's secrets;
//! [`SigningKey`] names a key (id and its secrets, newest first) and
//! [`verify_keyed`] picks the key by the key id header.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the signing time, unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-pasaporte-timestamp";
/// The header carrying the signature(s).
pub const SIGNATURE_HEADER: &str = "x-pasaporte-signature";
/// The header naming the key that signed (vendor traffic).
pub const KEY_ID_HEADER: &str = "x-pasaporte-key-id";
/// How far a timestamp may be from the receiver's clock: five minutes covers
/// clock skew and a sender's slow retries (each attempt is signed afresh),
/// and bounds replays of captured bytes.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;
/// Largest body [`verify`] accepts: the largest vendor batch
/// (`vendors::protocol::BATCH_BODY_BYTES_MAX`); callers with smaller messages
/// pass their own limit to [`verify_within`].
pub const BODY_BYTES_MAX: usize = 12 * 1024 * 1024;
/// Most signatures read from one header (two during a secret rotation; a few
/// more tolerated, not an unbounded list to hash against).
pub const SIGNATURES_PER_HEADER_MAX: usize = 4;
/// Longest key id accepted: ids are short names such as `vendor-a-2026`.
pub const KEY_ID_CHARS_MAX: usize = 64;

/// Why a signed request was refused. Carries nothing from the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Missing signature, an unknown key id, or no signature matching a secret.
    #[error("signature missing or wrong")]
    BadSignature,
    /// The timestamp is further than the tolerance from now.
    #[error("timestamp outside the accepted window")]
    Stale,
    /// Missing or unreadable timestamp, a body over the limit, or (for
    /// callers that parse after verifying) a body that is not a message.
    #[error("request malformed")]
    Malformed,
}

impl SignatureError {
    /// The HTTP status to answer with: 401 for a signature or time refusal
    /// (the sender should not retry the same bytes), 400 for a malformed one.
    pub fn status(self) -> axum::http::StatusCode {
        match self {
            SignatureError::BadSignature | SignatureError::Stale => {
                axum::http::StatusCode::UNAUTHORIZED
            }
            SignatureError::Malformed => axum::http::StatusCode::BAD_REQUEST,
        }
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length: new_from_slice cannot fail here.
    let mut m =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

use crate::crypto::hex;

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The `x-pasaporte-signature` value (`v1=<hex>`) for `body` signed at
/// `timestamp` (unix seconds) with `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hex(&mac(secret, timestamp, body)))
}

/// Checks a request's timestamp and signature headers against `secrets` (any
/// one may match) at `now_secs`, for a body of at most [`BODY_BYTES_MAX`].
/// Returns the signed timestamp.
pub fn verify(
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<i64, SignatureError> {
    verify_within(secrets, headers, body, now_secs, BODY_BYTES_MAX)
}

/// [`verify`] with the caller's body limit.
pub fn verify_within(
    secrets: &[&[u8]],
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
    body_bytes_max: usize,
) -> Result<i64, SignatureError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp: i64 = header(TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse().ok())
        .ok_or(SignatureError::Malformed)?;
    let signatures = header(SIGNATURE_HEADER).ok_or(SignatureError::BadSignature)?;
    if body.len() > body_bytes_max {
        return Err(SignatureError::Malformed);
    }
    let given: Vec<[u8; 32]> = signatures
        .split(',')
        .take(SIGNATURES_PER_HEADER_MAX)
        .filter_map(|sig| sig.trim().strip_prefix("v1=").and_then(unhex32))
        .collect();
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let want = mac(secret, timestamp, body);
        for got in &given {
            matched |= got.ct_eq(&want);
        }
    }
    if !bool::from(matched) {
        return Err(SignatureError::BadSignature);
    }
    if (now_secs - timestamp).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(timestamp)
}

/// A shared key: its id (sent in `x-pasaporte-key-id`) and its secrets, the
/// first one current, any others still accepted (and also signed with) while
/// the key rotates. `Debug` shows the id only.
#[derive(Clone)]
pub struct SigningKey {
    id: String,
    secrets: Vec<Vec<u8>>,
}

/// Shortest secret accepted: 16 bytes is the least that resists guessing
/// offline from one captured request.
pub const SECRET_BYTES_MIN: usize = 16;

/// Why a key could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key id must be 1 to {KEY_ID_CHARS_MAX} characters of A-Z a-z 0-9 . _ -")]
    BadId,
    #[error("a signing secret must be at least {SECRET_BYTES_MIN} bytes")]
    ShortSecret,
}

impl SigningKey {
    /// A key with one secret.
    pub fn new(id: &str, secret: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if id.is_empty() || id.len() > KEY_ID_CHARS_MAX || !id.chars().all(ok_char) {
            return Err(KeyError::BadId);
        }
        let secret = secret.into();
        if secret.len() < SECRET_BYTES_MIN {
            return Err(KeyError::ShortSecret);
        }
        Ok(Self {
            id: id.to_string(),
            secrets: vec![secret],
        })
    }

    /// Adds a previous secret, still accepted and signed with until the other
    /// side has the new one.
    pub fn with_previous(mut self, secret: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let secret = secret.into();
        if secret.len() < SECRET_BYTES_MIN {
            return Err(KeyError::ShortSecret);
        }
        if self.secrets.len() < SIGNATURES_PER_HEADER_MAX {
            self.secrets.push(secret);
        }
        Ok(self)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secrets, current first.
    pub fn secrets(&self) -> Vec<&[u8]> {
        self.secrets.iter().map(Vec::as_slice).collect()
    }

    /// The signature header value: one `v1=` per secret, comma-separated.
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        self.secrets
            .iter()
            .map(|s| sign(s, timestamp, body))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The three headers of a request signed at `timestamp`: key id,
    /// timestamp, signature.
    pub fn headers(&self, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            (KEY_ID_HEADER, self.id.clone()),
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, self.signature(timestamp, body)),
        ]
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Checks a request signed with one of `keys`, chosen by its
/// `x-pasaporte-key-id` header (an unknown or missing id is a bad signature).
/// Returns the key id and the signed timestamp.
pub fn verify_keyed<'k>(
    keys: &'k [SigningKey],
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
    body_bytes_max: usize,
) -> Result<(&'k str, i64), SignatureError> {
    let key_id = headers
        .get(KEY_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or(SignatureError::BadSignature)?;
    let key = keys
        .iter()
        .find(|k| k.id == key_id)
        .ok_or(SignatureError::BadSignature)?;
    let ts = verify_within(&key.secrets(), headers, body, now_secs, body_bytes_max)?;
    Ok((key.id(), ts))
}

/// Now, unix seconds (for callers outside the use cases' clock).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How the project's simulators deliver a signed callback: until the
/// receiver answers 2xx, the attempts run out (`attempts`) or `stop` turns
/// true; waiting `first_wait` after the first failure, doubling up to
/// `max_wait`. Each attempt takes the body from `body` (`None`: the event is
/// gone, stop) and is signed afresh by `sign(timestamp, body)`. Whether it
/// was delivered.
pub struct Delivery<'a> {
    pub http: &'a reqwest::Client,
    pub url: &'a str,
    pub event_id: &'a str,
    pub attempts: u32,
    pub first_wait: std::time::Duration,
    pub max_wait: std::time::Duration,
    pub attempt_timeout: std::time::Duration,
}

impl Delivery<'_> {
    pub async fn run<H>(
        &self,
        stop: &mut tokio::sync::watch::Receiver<bool>,
        mut body: impl FnMut() -> Option<std::sync::Arc<Vec<u8>>>,
        sign: impl Fn(i64, &[u8]) -> H,
    ) -> bool
    where
        H: IntoIterator<Item = (&'static str, String)>,
    {
        let event_id = self.event_id;
        let mut wait = self.first_wait;
        for attempt in 1..=self.attempts {
            let Some(bytes) = body() else {
                return false;
            };
            let ts = now_secs();
            let mut req = self
                .http
                .post(self.url)
                .timeout(self.attempt_timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            for (name, value) in sign(ts, &bytes) {
                req = req.header(name, value);
            }
            match req.body(bytes.as_ref().clone()).send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => {
                    tracing::info!(%event_id, attempt, status = %r.status(), "callback refused; will retry")
                }
                Err(e) => {
                    tracing::info!(%event_id, attempt, error = %e, "callback not delivered; will retry")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return false,
            }
            wait = (wait * 2).min(self.max_wait);
        }
        tracing::warn!(%event_id, attempts = self.attempts, "callback given up");
        false
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    const NOW: i64 = 1_790_000_000;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_known_signature() {
        // HMAC-SHA256("key", "1.x"), computed independently with openssl:
        // printf '1.x' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign(b"key", 1, b"x"),
            "v1=fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec"
        );
    }

    #[test]
    fn keyed_verification_picks_the_key_by_id() {
        let a = SigningKey::new("vendor-a", b"secret-a-0123456789".to_vec()).unwrap();
        let b = SigningKey::new("vendor-b", b"secret-b-0123456789".to_vec()).unwrap();
        let keys = [a.clone(), b.clone()];
        let body = b"{}";
        let h = headers(&a.headers(NOW, body));
        assert_eq!(
            verify_keyed(&keys, &h, body, NOW, 100),
            Ok(("vendor-a", NOW))
        );
        // a's signature under b's id.
        let mut wrong_id = a.headers(NOW, body);
        wrong_id[0].1 = "vendor-b".into();
        let mut unknown_id = a.headers(NOW, body);
        unknown_id[0].1 = "vendor-z".into();
        let no_id = [
            a.headers(NOW, body)[1].clone(),
            a.headers(NOW, body)[2].clone(),
        ];
        for h in [&wrong_id[..], &unknown_id[..], &no_id[..]] {
            assert_eq!(
                verify_keyed(&keys, &headers(h), body, NOW, 100),
                Err(SignatureError::BadSignature)
            );
        }
        assert_eq!(
            verify_keyed(&keys, &headers(&a.headers(NOW, body)), body, NOW, 1),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn a_rotating_key_signs_with_both_secrets_and_either_side_accepts() {
        let old = b"old-secret-0123456789".to_vec();
        let new = b"new-secret-0123456789".to_vec();
        let rotating = SigningKey::new("k", new.clone())
            .unwrap()
            .with_previous(old.clone())
            .unwrap();
        let body = b"payload";
        let h = headers(&rotating.headers(NOW, body));
        assert!(verify(&[&old], &h, body, NOW).is_ok());
        assert!(verify(&[&new], &h, body, NOW).is_ok());
        assert_eq!(
            verify(&[b"other-secret-0123456"], &h, body, NOW),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn keys_need_an_id_and_a_long_secret() {
        assert_eq!(
            SigningKey::new("", b"0123456789abcdef".to_vec()).err(),
            Some(KeyError::BadId)
        );
        assert_eq!(
            SigningKey::new("a b", b"0123456789abcdef".to_vec()).err(),
            Some(KeyError::BadId)
        );
        assert_eq!(
            SigningKey::new("a", b"short".to_vec()).err(),
            Some(KeyError::ShortSecret)
        );
        let k = SigningKey::new("a", b"0123456789abcdef".to_vec()).unwrap();
        assert!(!format!("{k:?}").contains("0123456789abcdef"));
    }
}
