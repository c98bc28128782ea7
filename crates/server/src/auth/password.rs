//! Staff passwords: the policy (length and guessability, no composition
//! rules, as NIST SP 800-63B advises) and Argon2id hashing.
//!
//! Hashing costs tens of milliseconds of one core on purpose; callers run it on
//! the blocking pool ([`hash`] and [`verify`] are `async` for that reason).
//!
//! Each verification also holds about 19 MiB while it runs, so sign-in checks
//! go through [`PasswordChecks`]: a fixed number of permits, and an attempt
//! that finds none is answered "busy" at once instead of queueing (100
//! queued sign-ins once took the process from 23 MB to 3.1 GB). The permit
//! travels into the blocking task, so a client that hangs up does not free
//! it while its hash is still being computed.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;

/// Shortest password: 12 characters make a passphrase of a few words.
pub const PASSWORD_CHARS_MIN: usize = 12;
/// Longest password: enough for any passphrase or manager-generated secret,
/// short enough that hashing it costs nothing extra.
pub const PASSWORD_CHARS_MAX: usize = 128;
/// Lowest zxcvbn score accepted: 3 means about 10^10 guesses, out of reach of
/// an online attack and costly offline against Argon2id.
pub const PASSWORD_SCORE_MIN: u8 = 3;

/// Why a password was refused, with what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password is shorter than {PASSWORD_CHARS_MIN} characters")]
    TooShort,
    #[error("the password is longer than {PASSWORD_CHARS_MAX} characters")]
    TooLong,
    #[error("the password is too easy to guess")]
    Guessable,
    #[error("the password contains the username")]
    ContainsUsername,
}

impl PasswordProblem {
    pub fn code(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "password_too_short",
            PasswordProblem::TooLong => "password_too_long",
            PasswordProblem::Guessable => "password_guessable",
            PasswordProblem::ContainsUsername => "password_contains_username",
        }
    }

    /// What to fix, in Spanish.
    pub fn es(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => {
                "La contraseña debe tener al menos 12 caracteres. Una frase de varias palabras es fácil de recordar y difícil de adivinar."
            }
            PasswordProblem::TooLong => "La contraseña puede tener como máximo 128 caracteres.",
            PasswordProblem::Guessable => {
                "Esa contraseña es demasiado fácil de adivinar (es común o sigue un patrón conocido). Use una frase de varias palabras poco relacionadas."
            }
            PasswordProblem::ContainsUsername => {
                "La contraseña no puede contener el nombre de usuario. Use una frase de varias palabras poco relacionadas."
            }
        }
    }

    /// What to fix, in English.
    pub fn en(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => {
                "The password must have at least 12 characters. A phrase of several words is easy to remember and hard to guess."
            }
            PasswordProblem::TooLong => "The password may have at most 128 characters.",
            PasswordProblem::Guessable => {
                "That password is too easy to guess (it is common or follows a known pattern). Use a phrase of several unrelated words."
            }
            PasswordProblem::ContainsUsername => {
                "The password must not contain the username. Use a phrase of several unrelated words."
            }
        }
    }
}

/// Checks the policy for `username`'s new password. Characters are counted,
/// not bytes, so "contraseña" is 10 long.
pub fn check_policy(password: &str, username: &str) -> Result<(), PasswordProblem> {
    let chars = password.chars().count();
    if chars < PASSWORD_CHARS_MIN {
        return Err(PasswordProblem::TooShort);
    }
    if chars > PASSWORD_CHARS_MAX {
        return Err(PasswordProblem::TooLong);
    }
    let user = username.trim().to_lowercase();
    if !user.is_empty() && password.to_lowercase().contains(&user) {
        // However long the rest, an attacker who knows the account starts
        // from its name (and zxcvbn often scores such passwords well).
        return Err(PasswordProblem::ContainsUsername);
    }
    let entropy = zxcvbn::zxcvbn(
        password,
        &[username, "pasaporte", "cancilleria", "passport"],
    );
    if u8::from(entropy.score()) < PASSWORD_SCORE_MIN {
        return Err(PasswordProblem::Guessable);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// The Argon2id PHC string of `password` (argon2's default parameters:
/// m=19 MiB, t=2, p=1, the OWASP minimum).
pub async fn hash(password: &str) -> Result<String, HashError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| HashError(e.to_string()))?
}

fn hash_now(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Password verifications running at once, per core. Each holds one core
/// for tens of milliseconds and about 19 MiB: two per core keep every core
/// busy while another attempt waits for the database, and bound the memory
/// to `2 × cores × 19 MiB` (76 MiB on two cores), whatever arrives.
pub const CHECKS_PER_CORE: usize = 2;

/// The permits for password verifications of sign-ins (see the module doc).
#[derive(Clone, Debug)]
pub struct PasswordChecks {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    max: usize,
}

impl PasswordChecks {
    /// `max` permits; 0 means [`CHECKS_PER_CORE`] per core of this machine.
    pub fn new(max: usize) -> Self {
        let max = if max == 0 {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            CHECKS_PER_CORE * cores
        } else {
            max
        };
        Self {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(max)),
            max,
        }
    }

    /// How many verifications may run at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A permit, or `None` when every one is taken (answer "busy").
    pub fn try_start(&self) -> Option<CheckPermit> {
        self.permits
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|p| CheckPermit { _permit: p })
    }
}

impl Default for PasswordChecks {
    /// [`CHECKS_PER_CORE`] per core.
    fn default() -> Self {
        Self::new(0)
    }
}

/// The right to run one verification; see [`verify_with`].
#[derive(Debug)]
pub struct CheckPermit {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Whether `password` matches the PHC string `phc`. A malformed hash matches
/// nothing. Unbounded: sign-ins use [`verify_with`].
pub async fn verify(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_string(), phc.to_string());
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// [`verify`] holding `permit` until the hash is computed, not merely until
/// the caller stops waiting for it.
pub async fn verify_with(permit: CheckPermit, password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_string(), phc.to_string());
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, checked against when the username is unknown
/// so that the answer takes as long as for a known one.
pub async fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return h;
    }
    let random = crate::crypto::random_bytes::<16>()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        .unwrap_or_else(|_| "dummy-password-for-timing".into());
    let h = hash(&random).await.unwrap_or_default();
    DUMMY.get_or_init(|| h)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(password: &str, username: &str, expected: Result<(), PasswordProblem>) {
        assert_eq!(check_policy(password, username), expected, "{password:?}");
    }

    #[test]
    fn policy() {
        use PasswordProblem::*;
        check("corto", "ana", Err(TooShort));
        // Eleven characters, counted as characters: ñ is one.
        check("ñandú-azul1", "ana", Err(TooShort));
        check(&"x".repeat(129), "ana", Err(TooLong));
        check("password1234", "ana", Err(Guessable));
        check("123456789012", "ana", Err(Guessable));
        check("qwertyuiopasdf", "ana", Err(Guessable));
        check("maria.lopez2024", "maria.lopez", Err(ContainsUsername));
        check("funcionario.bog", "funcionario.bog", Err(ContainsUsername));
        // Long enough to score well, but the name is in it (any case).
        check(
            "Maria.Lopez caballo cuaderno lluvia tenaz",
            "maria.lopez",
            Err(ContainsUsername),
        );
        check(
            "caballo MARIA.LOPEZ cuaderno lluvia tenaz",
            " Maria.Lopez ",
            Err(ContainsUsername),
        );
        check("caballo cuaderno lluvia tenaz", "ana", Ok(()));
        check("correct horse battery staple", "ana", Ok(()));
        // 128 characters of passphrase are fine.
        let long: String = "violeta tranvía número "
            .repeat(6)
            .chars()
            .take(128)
            .collect();
        check(&long, "ana", Ok(()));
    }

    #[test]
    fn messages_say_what_to_fix() {
        for p in [
            PasswordProblem::TooShort,
            PasswordProblem::TooLong,
            PasswordProblem::Guessable,
            PasswordProblem::ContainsUsername,
        ] {
            assert!(!p.es().is_empty() && !p.en().is_empty() && !p.code().is_empty());
        }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("caballo cuaderno lluvia tenaz").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("caballo cuaderno lluvia tenaz", &h).await);
        assert!(!verify("caballo cuaderno lluvia tenaZ", &h).await);
        assert!(!verify("x", "not a hash").await);
        assert!(dummy_hash().await.starts_with("$argon2id$"));
    }
}
