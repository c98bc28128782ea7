//! Confirmation codes: short, read aloud at a counter or over the phone, so the
//! alphabet leaves out characters people confuse (0/O, 1/I/L, 2/Z, 5/S, 8/B).

/// 25 symbols, none easy to confuse with another.
pub const ALPHABET: &[u8; 25] = b"34679ACDEFGHJKMNPQRTUVWXY";
/// 8 symbols: 25^8 ≈ 1.5e11 codes, so a random guess hits one of a million
/// active bookings about once in 150,000 tries (and guesses are rate limited).
pub const CODE_LEN: usize = 8;

/// A booking's confirmation code, always `CODE_LEN` symbols of `ALPHABET`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfirmationCode(String);

impl ConfirmationCode {
    /// Makes a code from random bytes supplied by the caller (the core has no
    /// randomness of its own). Each byte picks a symbol; the slight modulo bias
    /// (256 = 10·25 + 6) does not matter for an identifier that is not a secret.
    pub fn from_random(bytes: [u8; CODE_LEN]) -> Self {
        let s = bytes
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect();
        Self(s)
    }

    /// Parses what a person typed: case-insensitive, spaces and dashes ignored.
    pub fn parse(input: &str) -> Option<Self> {
        let s: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (s.len() == CODE_LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConfirmationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_reject_ambiguous_symbols() {
        let c = ConfirmationCode::from_random([0, 1, 2, 3, 250, 255, 100, 7]);
        assert_eq!(c.as_str().len(), CODE_LEN);
        assert_eq!(
            ConfirmationCode::parse(&c.as_str().to_lowercase()),
            Some(c.clone())
        );
        assert_eq!(
            ConfirmationCode::parse("ACDE-FGHJ"),
            ConfirmationCode::parse("acdefghj")
        );
        assert!(
            ConfirmationCode::parse("ACDEFGH0").is_none(),
            "0 is not in the alphabet"
        );
        assert!(
            ConfirmationCode::parse("ACDEFGHI").is_none(),
            "I is not in the alphabet"
        );
        assert!(ConfirmationCode::parse("ACDEFGH").is_none());
        for ambiguous in b"01258BILOSZ" {
            assert!(!ALPHABET.contains(ambiguous));
        }
    }
}
