//! Session tokens and cookies. The browser holds a random 32-byte token; the
//! database holds only its SHA-256, so a copy of the sessions table signs no
//! one in. Each session also has a CSRF token, shown in forms and returned by
//! the API, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie.
pub const SESSION_COOKIE: &str = "pasaporte_staff";
/// The sign-in form's double-submit cookie (login CSRF: a session is never
/// started by a form another site posted).
pub const SIGN_IN_COOKIE: &str = "pasaporte_sign_in";
/// The header the JSON API expects the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field console forms carry the CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// A session ends after this long without a request (a counter left unattended).
pub const SESSION_IDLE_MINUTES: i64 = 30;
/// A session ends this long after sign-in whatever happens: a working day.
pub const SESSION_ABSOLUTE_HOURS: i64 = 12;
/// `last_seen_ms` is written at most this often, so reading pages does not
/// write the database on every request; the idle limit is late by at most this.
pub const SESSION_TOUCH_MS: i64 = 60_000;
/// Random bytes in a session token and a CSRF token.
pub const TOKEN_BYTES: usize = 32;

pub const SESSION_IDLE_MS: i64 = SESSION_IDLE_MINUTES * 60_000;
pub const SESSION_ABSOLUTE_MS: i64 = SESSION_ABSOLUTE_HOURS * 3_600_000;

/// A fresh random token, base64url without padding (43 characters).
pub fn new_token() -> Result<String, crate::crypto::CryptoError> {
    Ok(URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<TOKEN_BYTES>()?))
}

/// What the database keeps of a session token: SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time equality of two tokens (a length difference shows, the
/// content does not).
pub fn tokens_match(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether the session is over at `now_ms`.
pub fn expired(created_ms: i64, last_seen_ms: i64, now_ms: i64) -> bool {
    now_ms - last_seen_ms > SESSION_IDLE_MS || now_ms - created_ms > SESSION_ABSOLUTE_MS
}

fn attributes(secure: bool) -> &'static str {
    if secure {
        "HttpOnly; SameSite=Strict; Path=/; Secure"
    } else {
        "HttpOnly; SameSite=Strict; Path=/"
    }
}

/// `Set-Cookie` for a new session. No `Max-Age` would keep it for the browser
/// session; the server ends it after [`SESSION_ABSOLUTE_HOURS`] anyway, so the
/// cookie says the same.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; {}; Max-Age={}",
        attributes(secure),
        SESSION_ABSOLUTE_MS / 1000
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    format!("{SESSION_COOKIE}=; {}; Max-Age=0", attributes(secure))
}

/// `Set-Cookie` for the sign-in form's double-submit token.
pub fn sign_in_cookie(token: &str, secure: bool) -> String {
    format!(
        "{SIGN_IN_COOKIE}={token}; {}; Max-Age={}",
        attributes(secure),
        SESSION_IDLE_MS / 1000
    )
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn tokens() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 43);
        assert_ne!(t, new_token().unwrap());
        let h = token_hash(&t);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&t));
        assert!(tokens_match(&t, &t.clone()));
        assert!(!tokens_match(&t, &new_token().unwrap()));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pasaporte_staff=tok; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(session_cookie("x", true).ends_with("Secure; Max-Age=43200"));
        assert!(!session_cookie("x", false).contains("Secure"));
    }

    #[test]
    fn expiry() {
        assert!(!expired(0, 0, SESSION_IDLE_MS));
        assert!(expired(0, 0, SESSION_IDLE_MS + 1));
        assert!(expired(0, SESSION_ABSOLUTE_MS, SESSION_ABSOLUTE_MS + 1));
    }
}
