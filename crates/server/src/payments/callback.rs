//! Verifying a payment gateway's callbacks (the simulator's, and a real
//! gateway speaking the same protocol), and signing them (for the simulator
//! and tests).
//!
//! A callback is a POST whose raw body is one JSON event (see [`WireEvent`])
//! with two headers: `x-pasaporte-timestamp` (unix seconds) and
//! `x-pasaporte-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! Several comma-separated `v1=` values are accepted (any one matching), so a
//! gateway can sign with an old and a new secret while the secret rotates.
//! The signature is checked before the body is read, in constant time; the
//! timestamp must be within [`TIMESTAMP_TOLERANCE_SECS`] of now, which bounds
//! how long a captured callback can be replayed. Replays inside that window
//! carry an `event_id` already recorded, and `record_payment_event` refuses
//! them.

use pasaporte_core::fees::PaymentEventKind;
use serde::{Deserialize, Serialize};

/// The signing scheme is [`crate::signing`]'s, shared with the vendors.
pub use crate::signing::{
    SIGNATURE_HEADER, SignatureError as CallbackError, TIMESTAMP_HEADER, TIMESTAMP_TOLERANCE_SECS,
    sign,
};

/// Largest callback body: an event is about 250 bytes.
pub const CALLBACK_BODY_BYTES_MAX: usize = 16 * 1024;
/// Longest id accepted in an event (event ids, references, currencies).
const EVENT_FIELD_CHARS_MAX: usize = 128;

/// A verified callback event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentEvent {
    /// The gateway's id of the event: the same on every delivery and replay.
    pub event_id: String,
    pub kind: PaymentEventKind,
    pub reference: String,
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When it happened at the gateway, unix ms.
    pub occurred_ms: i64,
}

/// A callback's body on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    pub event_id: String,
    /// `payment.confirmed` or `refund.completed`.
    pub kind: String,
    pub reference: String,
    pub amount_minor: i64,
    pub currency: String,
    pub occurred_ms: i64,
}

impl From<&PaymentEvent> for WireEvent {
    fn from(e: &PaymentEvent) -> Self {
        WireEvent {
            event_id: e.event_id.clone(),
            kind: e.kind.as_str().to_string(),
            reference: e.reference.clone(),
            amount_minor: e.amount_minor,
            currency: e.currency.clone(),
            occurred_ms: e.occurred_ms,
        }
    }
}

/// Checks a callback's headers and raw body against `secret` at `now_secs`
/// (unix seconds) and parses its event.
pub fn verify(
    secret: &[u8],
    headers: &axum::http::HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<PaymentEvent, CallbackError> {
    crate::signing::verify_within(&[secret], headers, body, now_secs, CALLBACK_BODY_BYTES_MAX)?;
    let wire: WireEvent = serde_json::from_slice(body).map_err(|_| CallbackError::Malformed)?;
    let kind = PaymentEventKind::parse(&wire.kind).ok_or(CallbackError::Malformed)?;
    let field_ok = |s: &str| !s.is_empty() && s.chars().count() <= EVENT_FIELD_CHARS_MAX;
    if !field_ok(&wire.event_id) || !field_ok(&wire.reference) || !field_ok(&wire.currency) {
        return Err(CallbackError::Malformed);
    }
    if wire.amount_minor < 0 {
        return Err(CallbackError::Malformed);
    }
    Ok(PaymentEvent {
        event_id: wire.event_id,
        kind,
        reference: wire.reference,
        amount_minor: wire.amount_minor,
        currency: wire.currency,
        occurred_ms: wire.occurred_ms,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    const SECRET: &[u8] = b"shared-secret";
    const NOW: i64 = 1_790_000_000;

    fn body() -> Vec<u8> {
        serde_json::to_vec(&WireEvent {
            event_id: "evt_1".into(),
            kind: "payment.confirmed".into(),
            reference: "ref_1".into(),
            amount_minor: 190_000,
            currency: "COP".into(),
            occurred_ms: NOW * 1000,
        })
        .unwrap()
    }

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if !ts.is_empty() {
            h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(ts).unwrap());
        }
        if !sig.is_empty() {
            h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).unwrap());
        }
        h
    }

    #[test]
    fn verify_accepts_only_the_signed_bytes_in_time() {
        let b = body();
        let good = sign(SECRET, NOW, &b);
        let other = sign(b"other", NOW, &b);
        let mut tampered = b.clone();
        tampered[20] ^= 1;
        let not_json = b"not json".to_vec();
        let not_json_sig = sign(SECRET, NOW, &not_json);
        let unknown_kind = String::from_utf8(b.clone())
            .unwrap()
            .replace("payment.confirmed", "payment.reversed")
            .into_bytes();
        let unknown_kind_sig = sign(SECRET, NOW, &unknown_kind);
        let ts = NOW.to_string();
        let old = sign(SECRET, NOW - 360, &b);
        let future = sign(SECRET, NOW + 360, &b);
        let edge = sign(SECRET, NOW - TIMESTAMP_TOLERANCE_SECS, &b);
        let rotated = format!("{other}, {good}");
        let cases: Vec<(HeaderMap, &[u8], Result<(), CallbackError>)> = vec![
            (headers(&ts, &good), &b, Ok(())),
            (headers(&ts, &rotated), &b, Ok(())),
            (
                headers(&(NOW - TIMESTAMP_TOLERANCE_SECS).to_string(), &edge),
                &b,
                Ok(()),
            ),
            (headers(&ts, &other), &b, Err(CallbackError::BadSignature)),
            (
                headers(&ts, &good),
                &tampered,
                Err(CallbackError::BadSignature),
            ),
            (headers(&ts, ""), &b, Err(CallbackError::BadSignature)),
            (headers(&ts, "v1=zz"), &b, Err(CallbackError::BadSignature)),
            (
                headers(&ts, &good.replace("v1=", "v0=")),
                &b,
                Err(CallbackError::BadSignature),
            ),
            // The timestamp is signed: changing it breaks the signature.
            (
                headers(&(NOW + 1).to_string(), &good),
                &b,
                Err(CallbackError::BadSignature),
            ),
            (
                headers(&(NOW - 360).to_string(), &old),
                &b,
                Err(CallbackError::Stale),
            ),
            (
                headers(&(NOW + 360).to_string(), &future),
                &b,
                Err(CallbackError::Stale),
            ),
            (headers("", &good), &b, Err(CallbackError::Malformed)),
            (headers("soon", &good), &b, Err(CallbackError::Malformed)),
            (
                headers(&ts, &not_json_sig),
                &not_json,
                Err(CallbackError::Malformed),
            ),
            (
                headers(&ts, &unknown_kind_sig),
                &unknown_kind,
                Err(CallbackError::Malformed),
            ),
        ];
        for (i, (h, body, want)) in cases.into_iter().enumerate() {
            let got = verify(SECRET, &h, body, NOW).map(|_| ());
            assert_eq!(got, want, "case {i}");
        }
        let e = verify(SECRET, &headers(&ts, &good), &b, NOW).unwrap();
        assert_eq!(
            (e.kind, e.reference.as_str(), e.amount_minor),
            (PaymentEventKind::PaymentConfirmed, "ref_1", 190_000)
        );
    }
}
