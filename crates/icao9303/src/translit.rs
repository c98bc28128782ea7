//! Transliteration of Latin characters into the MRZ alphabet (Doc 9303 Part 3, section 6).
//!
//! Where the table offers two options this crate takes one, always the same:
//!
//! | character | Part 3 options | this crate |
//! | --- | --- | --- |
//! | Ä ä | AE or A | `AE` |
//! | Å å | AA or A | `AA` |
//! | Ö ö | OE or O | `OE` |
//! | Ü ü | UE, UXX or U | `UE` |
//! | Ñ ñ | N or NXX | `N` |
//!
//! The German, Nordic and Spanish practice of the issuing states follows these choices;
//! a state that wants the other option transliterates before calling this crate.
//!
//! Punctuation: apostrophes (`'`, `’`, `‘`, `ʼ`, `` ` ``, `´`) and full stops are dropped;
//! spaces, hyphens, commas and `<` separate name components and become one `<`
//! (a run of separators is one separator; leading and trailing ones are removed).
//! Digits and characters of other scripts are refused.

/// What transliteration produces for one character.
enum Out {
    /// MRZ letters (one to three).
    Letters(&'static [u8]),
    /// A component separator.
    Separator,
    /// Nothing (punctuation that the MRZ omits).
    Drop,
}

/// The Part 3 table, upper and lower case.
fn map(c: char) -> Option<Out> {
    use Out::{Drop, Letters, Separator};
    let out = match c {
        'A'..='Z' => return Some(Letters(ascii_upper(c as u8 - b'A'))),
        'a'..='z' => return Some(Letters(ascii_upper(c as u8 - b'a'))),
        ' ' | '-' | ',' | '<' | '\u{2010}' | '\u{2011}' | '\u{00A0}' => Separator,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '\u{00B4}' | '.' => Drop,
        'À' | 'Á' | 'Â' | 'Ã' | 'Ā' | 'Ă' | 'Ą' | 'Ǎ' | 'à' | 'á' | 'â' | 'ã' | 'ā' | 'ă' | 'ą'
        | 'ǎ' => Letters(b"A"),
        'Ä' | 'ä' => Letters(b"AE"),
        'Å' | 'å' => Letters(b"AA"),
        'Æ' | 'æ' => Letters(b"AE"),
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' | 'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => Letters(b"C"),
        'Ď' | 'Đ' | 'ď' | 'đ' => Letters(b"D"),
        'Ð' | 'ð' => Letters(b"D"),
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' | 'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ'
        | 'ė' | 'ę' | 'ě' => Letters(b"E"),
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' | 'ĝ' | 'ğ' | 'ġ' | 'ģ' => Letters(b"G"),
        'Ĥ' | 'Ħ' | 'ĥ' | 'ħ' => Letters(b"H"),
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' | 'Ǐ' | 'ì' | 'í' | 'î' | 'ï' | 'ĩ'
        | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' => Letters(b"I"),
        'Ĳ' | 'ĳ' => Letters(b"IJ"),
        'Ĵ' | 'ĵ' => Letters(b"J"),
        'Ķ' | 'ķ' | 'ĸ' => Letters(b"K"),
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' | 'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => Letters(b"L"),
        'Ñ' | 'ñ' | 'Ń' | 'Ņ' | 'Ň' | 'Ŋ' | 'ń' | 'ņ' | 'ň' | 'ŋ' | 'ŉ' => Letters(b"N"),
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ō' | 'Ŏ' | 'Ő' | 'Ǒ' | 'ò' | 'ó' | 'ô' | 'õ' | 'ō' | 'ŏ' | 'ő'
        | 'ǒ' => Letters(b"O"),
        'Ö' | 'ö' | 'Ø' | 'ø' | 'Œ' | 'œ' => Letters(b"OE"),
        'Ŕ' | 'Ŗ' | 'Ř' | 'ŕ' | 'ŗ' | 'ř' => Letters(b"R"),
        'Ś' | 'Ŝ' | 'Ş' | 'Š' | 'Ș' | 'ś' | 'ŝ' | 'ş' | 'š' | 'ș' | 'ſ' => Letters(b"S"),
        'ß' | 'ẞ' => Letters(b"SS"),
        'Ţ' | 'Ť' | 'Ŧ' | 'Ț' | 'ţ' | 'ť' | 'ŧ' | 'ț' => Letters(b"T"),
        'Þ' | 'þ' => Letters(b"TH"),
        'Ù' | 'Ú' | 'Û' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' | 'Ǔ' | 'ù' | 'ú' | 'û' | 'ũ' | 'ū'
        | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ǔ' => Letters(b"U"),
        'Ü' | 'ü' => Letters(b"UE"),
        'Ŵ' | 'ŵ' => Letters(b"W"),
        'Ý' | 'Ŷ' | 'Ÿ' | 'ý' | 'ŷ' | 'ÿ' => Letters(b"Y"),
        'Ź' | 'Ż' | 'Ž' | 'ź' | 'ż' | 'ž' => Letters(b"Z"),
        _ => return None,
    };
    Some(out)
}

/// `A`..`Z` as static one-byte slices, so the table needs no allocation.
fn ascii_upper(index: u8) -> &'static [u8] {
    const LETTERS: &[u8; 26] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let i = usize::from(index);
    &LETTERS[i..=i]
}

/// The longest transliterated name this crate accepts, in MRZ characters. The widest name
/// field has 39 positions; 128 leaves room for the initials of many components while
/// bounding the work per name.
pub const NAME_CHARS_MAX: usize = 128;

/// A transliterated name: MRZ letters and single `<` between components.
#[derive(Clone, Copy)]
pub struct Transliterated {
    bytes: [u8; NAME_CHARS_MAX],
    len: usize,
}

/// Why a name could not be transliterated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslitError {
    /// A character outside the Latin table of Part 3 (a digit, another script, a symbol).
    #[error("character {0:?} has no transliteration in Doc 9303 Part 3 (Latin table)")]
    Unsupported(char),
    /// Longer than [`NAME_CHARS_MAX`] once transliterated.
    #[error("longer than {NAME_CHARS_MAX} characters once transliterated")]
    TooLong,
}

impl Transliterated {
    /// Transliterates `text` (see the module docs for the rules).
    pub fn new(text: &str) -> Result<Self, TranslitError> {
        let mut t = Self {
            bytes: [b'<'; NAME_CHARS_MAX],
            len: 0,
        };
        let mut pending_separator = false;
        for c in text.chars() {
            match map(c).ok_or(TranslitError::Unsupported(c))? {
                Out::Letters(letters) => {
                    let sep = usize::from(pending_separator && t.len > 0);
                    if t.len + sep + letters.len() > NAME_CHARS_MAX {
                        return Err(TranslitError::TooLong);
                    }
                    // The buffer is prefilled with `<`, so a separator is a skipped byte.
                    t.len += sep;
                    t.bytes[t.len..t.len + letters.len()].copy_from_slice(letters);
                    t.len += letters.len();
                    pending_separator = false;
                }
                Out::Separator => pending_separator = true,
                Out::Drop => {}
            }
        }
        Ok(t)
    }

    /// The MRZ characters.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Whether nothing remained.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Transliterates into an owned string (a convenience for callers off the hot path).
pub fn transliterate(text: &str) -> Result<String, TranslitError> {
    let t = Transliterated::new(text)?;
    Ok(String::from_utf8_lossy(t.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(transliterate(input).as_deref(), Ok(expected), "{input}");
    }

    #[test]
    fn table() {
        check("Eriksson", "ERIKSSON");
        check("Anna María", "ANNA<MARIA");
        check("Muñoz", "MUNOZ");
        check("Gonçalves São João", "GONCALVES<SAO<JOAO");
        check("Françoise Hélène", "FRANCOISE<HELENE");
        check("Müller-Lüdenscheidt", "MUELLER<LUEDENSCHEIDT");
        check("Straße", "STRASSE");
        check("Åsa Øberg Ærø Björk", "AASA<OEBERG<AEROE<BJOERK");
        check("Þórunn Guðmundsdóttir", "THORUNN<GUDMUNDSDOTTIR");
        check("Łukasz Żółć Wąs", "LUKASZ<ZOLC<WAS");
        check("Dvořák Šťastný Kůň", "DVORAK<STASTNY<KUN");
        check("Çağlar Işık Şükrü İnce", "CAGLAR<ISIK<SUEKRUE<INCE");
        check("Ștefan Țurcanu", "STEFAN<TURCANU");
        check("Ĳsselmeer", "IJSSELMEER");
    }

    #[test]
    fn punctuation() {
        check("O'Brien", "OBRIEN");
        check("D’Alembert", "DALEMBERT");
        check("  Jean -  Luc  ", "JEAN<LUC");
        check("St. John", "ST<JOHN");
        check("de la Cruz", "DE<LA<CRUZ");
        check("", "");
        check(" - ", "");
    }

    #[test]
    fn refusals() {
        assert_eq!(transliterate("Anna2"), Err(TranslitError::Unsupported('2')));
        assert_eq!(transliterate("Иван"), Err(TranslitError::Unsupported('И')));
        assert_eq!(
            transliterate(&"A".repeat(NAME_CHARS_MAX + 1)),
            Err(TranslitError::TooLong)
        );
        assert!(transliterate(&"A".repeat(NAME_CHARS_MAX)).is_ok());
    }
}
