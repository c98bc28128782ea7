//! Check digits (Doc 9303 Part 3, section 4.9).
//!
//! Each character gets a value (`0`–`9` as themselves, `A`–`Z` as 10–35, `<` as 0),
//! the values are multiplied by the repeating weights 7, 3, 1, and the check digit is
//! the sum modulo 10.

/// The weights, repeated over the input.
const WEIGHTS: [u32; 3] = [7, 3, 1];

/// The value of one MRZ character, or `None` for a character outside the MRZ alphabet.
#[inline]
#[must_use]
pub const fn char_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as u32),
        b'A'..=b'Z' => Some((c - b'A') as u32 + 10),
        b'<' => Some(0),
        _ => None,
    }
}

/// The check digit (as an ASCII digit) of `data`, or `None` if `data` holds a character
/// outside the MRZ alphabet (`0`–`9`, `A`–`Z`, `<`).
#[inline]
#[must_use]
pub fn check_digit(data: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, &c) in data.iter().enumerate() {
        sum += char_value(c)? * WEIGHTS[i % 3];
    }
    // `sum % 10` is below 10, so the cast cannot truncate.
    Some(b'0' + (sum % 10) as u8)
}

/// The check digit over several pieces taken as one string (the composite check digit).
/// Weights run on across the pieces.
#[inline]
#[must_use]
pub fn check_digit_parts(parts: &[&[u8]]) -> Option<u8> {
    let mut sum = 0u32;
    let mut i = 0usize;
    for part in parts {
        for &c in *part {
            sum += char_value(c)? * WEIGHTS[i % 3];
            i += 1;
        }
    }
    Some(b'0' + (sum % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data: &str, expected: char) {
        assert_eq!(check_digit(data.as_bytes()), Some(expected as u8), "{data}");
    }

    #[test]
    fn worked_examples_of_part_3() {
        // Part 3, 4.9.1 (date of birth 27 July 1952) and the specimens' fields.
        check("520727", '3');
        check("AB2134<<<", '5');
        check("L898902C3", '6');
        check("740812", '2');
        check("120415", '9');
        check("ZE184226B<<<<<", '1');
        check("D23145890", '7');
        check("", '0');
    }

    #[test]
    fn composite_equals_concatenation() {
        let a = check_digit_parts(&[b"L898902C36", b"7408122", b"1204159ZE184226B<<<<<1"]);
        let b = check_digit(b"L898902C3674081221204159ZE184226B<<<<<1");
        assert_eq!(a, b);
        assert_eq!(a, Some(b'0'));
    }

    #[test]
    fn refuses_lowercase_and_other_characters() {
        assert_eq!(check_digit(b"abc"), None);
        assert_eq!(check_digit(b"A B"), None);
    }
}
