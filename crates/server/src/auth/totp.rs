//! Time-based one-time codes (RFC 6238): SHA-1, 6 digits, 30-second steps,
//! one step of clock drift either way, as every authenticator app expects.
//! The caller stores the accepted step so a code works once
//! (`Store::use_totp_step`).

use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Seconds per step (RFC 6238's default; what authenticator apps assume).
pub const TOTP_STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const TOTP_DIGITS: u8 = 6;
/// Steps of drift accepted each way: a phone a little fast or slow still works.
pub const TOTP_SKEW_STEPS: u16 = 1;
/// Secret length: 160 bits, as RFC 4226 recommends.
pub const TOTP_SECRET_BYTES: usize = 20;
/// The issuer shown in authenticator apps.
pub const TOTP_ISSUER: &str = "Pasaporte";

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("the TOTP secret is not valid base32 of the right length")]
    BadSecret,
    #[error("the system's random source failed")]
    Random,
}

fn totp(secret: Vec<u8>, account: &str) -> Result<Totp, TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS)
        .with_skew(TOTP_SKEW_STEPS)
        .with_step_duration(TOTP_STEP_SECONDS)
        .with_secret(secret)
        .with_issuer(Some(TOTP_ISSUER))
        .with_account_name(account.replace(':', "_"))
        .build()
        .map_err(|_| TotpError::BadSecret)
}

fn decode(secret_base32: &str) -> Result<Vec<u8>, TotpError> {
    Secret::try_from_base32(secret_base32.trim())
        .map(|s| s.as_bytes().to_vec())
        .map_err(|_| TotpError::BadSecret)
}

/// A fresh secret, base32 (RFC 4648, no padding).
pub fn new_secret() -> Result<String, TotpError> {
    let bytes =
        crate::crypto::random_bytes::<TOTP_SECRET_BYTES>().map_err(|_| TotpError::Random)?;
    Ok(Secret::from(bytes.to_vec()).to_base32())
}

/// The `otpauth://totp/...` URI an authenticator app reads (as a QR code or typed).
pub fn otpauth_uri(secret_base32: &str, username: &str) -> Result<String, TotpError> {
    totp(decode(secret_base32)?, username)?
        .to_url()
        .map_err(|_| TotpError::BadSecret)
}

/// The step `code` belongs to if it is valid at `unix_s` (within the drift),
/// else `None`. Spaces in the code are ignored.
pub fn check(secret_base32: &str, code: &str, unix_s: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != usize::from(TOTP_DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(decode(secret_base32).ok()?, "x").ok()?;
    t.check(&code, unix_s)
}

/// The code at `unix_s`: what the authenticator app shows. For tests and
/// for tools; the server only checks codes.
pub fn code_at(secret_base32: &str, unix_s: u64) -> Result<String, TotpError> {
    Ok(totp(decode(secret_base32)?, "x")?
        .generate(unix_s)
        .to_string())
}

/// The code now.
pub fn current_code(secret_base32: &str) -> Result<String, TotpError> {
    code_at(secret_base32, now_s())
}

pub(crate) fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8 digits there; the last 6 here).
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors() {
        let b32 = Secret::from(RFC_SECRET.to_vec()).to_base32();
        for (t, code8) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(&b32, t).unwrap(), &code8[2..], "t={t}");
        }
    }

    #[test]
    fn drift_of_one_step_accepted() {
        let s = new_secret().unwrap();
        let t = 1_800_000_000;
        let code = code_at(&s, t).unwrap();
        let step = t / TOTP_STEP_SECONDS;
        assert_eq!(check(&s, &code, t), Some(step));
        assert_eq!(check(&s, &code, t + TOTP_STEP_SECONDS), Some(step));
        assert_eq!(check(&s, &code, t - TOTP_STEP_SECONDS), Some(step));
        assert_eq!(check(&s, &code, t + 2 * TOTP_STEP_SECONDS), None);
        assert_eq!(check(&s, "12345", t), None);
        assert_eq!(check(&s, "abcdef", t), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(check(&s, &spaced, t), Some(step));
        let uri = otpauth_uri(&s, "ana").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/") && uri.contains(&s),
            "{uri}"
        );
    }
}
