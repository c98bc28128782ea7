//! Verifying a printing vendor's status callbacks (pasaporte's side): the
//! signature with the vendor's key (chosen by `x-pasaporte-key-id`), the
//! time window, then the event's shape. Applying the event exactly once (by
//! its `event_id`) is the caller's: the production pipeline records the
//! event id in the same transaction as the order's change and answers 2xx to
//! a replay.

use super::protocol::{EVENT_BODY_BYTES_MAX, VendorEvent};
use crate::signing::{SignatureError, SigningKey, verify_keyed};
use axum::http::HeaderMap;

/// A callback that verified: which key signed it (so which vendor) and its
/// event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvent {
    pub key_id: String,
    pub event: VendorEvent,
}

/// Checks a callback's headers and raw body against the vendors' `keys` at
/// `now_secs` (unix seconds) and parses its event. 401 for
/// `BadSignature`/`Stale` and 400 for `Malformed` ([`SignatureError::status`]).
pub fn verify_vendor_callback(
    keys: &[SigningKey],
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<VerifiedEvent, SignatureError> {
    let (key_id, _) = verify_keyed(keys, headers, body, now_secs, EVENT_BODY_BYTES_MAX)?;
    let event: VendorEvent = serde_json::from_slice(body).map_err(|_| SignatureError::Malformed)?;
    if !event.is_well_formed() {
        return Err(SignatureError::Malformed);
    }
    Ok(VerifiedEvent {
        key_id: key_id.to_string(),
        event,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::vendors::protocol::EventKind;
    use axum::http::HeaderValue;

    const NOW: i64 = 1_790_000_000;

    fn key() -> SigningKey {
        SigningKey::new("vendor-a", b"vendor-a-secret-0123".to_vec()).unwrap()
    }

    fn signed(key: &SigningKey, ts: i64, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in key.headers(ts, body) {
            h.insert(k, HeaderValue::from_str(&v).unwrap());
        }
        h
    }

    fn event(kind: EventKind) -> VendorEvent {
        VendorEvent {
            event_id: "ev_1".into(),
            order_id: "ord_1".into(),
            kind,
            reason: None,
            booklet_serial: None,
            tracking: None,
            occurred_ms: NOW * 1000,
        }
    }

    fn check(body: &[u8], headers: &HeaderMap, want: Result<EventKind, SignatureError>) {
        let got = verify_vendor_callback(&[key()], headers, body, NOW).map(|v| v.event.kind);
        assert_eq!(got, want, "{}", String::from_utf8_lossy(body));
    }

    #[test]
    fn callbacks_verify_by_key_time_and_shape() {
        let k = key();
        let good = serde_json::to_vec(&event(EventKind::Printed)).unwrap();
        check(&good, &signed(&k, NOW, &good), Ok(EventKind::Printed));
        let mut shipped = event(EventKind::Shipped);
        shipped.booklet_serial = Some("VS0000001".into());
        shipped.tracking = Some("TRK1".into());
        let shipped = serde_json::to_vec(&shipped).unwrap();
        check(&shipped, &signed(&k, NOW, &shipped), Ok(EventKind::Shipped));
        let other = SigningKey::new("vendor-a", b"not-the-right-secret".to_vec()).unwrap();
        check(
            &good,
            &signed(&other, NOW, &good),
            Err(SignatureError::BadSignature),
        );
        check(
            &good,
            &signed(&k, NOW - 301, &good),
            Err(SignatureError::Stale),
        );
        for bad in [
            serde_json::to_vec(&event(EventKind::Shipped)).unwrap(),
            serde_json::to_vec(&event(EventKind::QualityFailed)).unwrap(),
            br#"{"event_id":"e","order_id":"o","kind":"lost","occurred_ms":1}"#.to_vec(),
            b"not json".to_vec(),
        ] {
            check(&bad, &signed(&k, NOW, &bad), Err(SignatureError::Malformed));
        }
    }
}
