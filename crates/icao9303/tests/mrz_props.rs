//! Properties of generated MRZs: exact width and alphabet, check digits that verify, and
//! a parse that gives back the transliterated fields.
#![allow(clippy::unwrap_used)]

use icao9303::translit::transliterate;
use icao9303::{Format, Mrz, MrzFields};
use proptest::prelude::*;

/// Names with accents, apostrophes, hyphens and spaces, as typed on a data page.
fn name() -> impl Strategy<Value = String> {
    let word = prop::collection::vec(
        prop::sample::select(vec![
            'a', 'b', 'e', 'i', 'o', 'u', 'n', 'r', 's', 't', 'z', 'A', 'M', 'Z', 'á', 'é', 'ñ',
            'ü', 'ö', 'ä', 'å', 'ø', 'ç', 'ß', 'ł', 'ž', 'ş', 'ı', 'İ', 'Þ', 'œ',
        ]),
        1..12,
    )
    .prop_map(|cs| cs.into_iter().collect::<String>());
    let sep = prop::sample::select(vec![" ", "-", " ", "'"]);
    prop::collection::vec((word, sep), 1..6).prop_map(|parts| {
        let mut s = String::new();
        for (i, (w, sep)) in parts.iter().enumerate() {
            if i > 0 {
                s.push_str(sep);
            }
            s.push_str(w);
        }
        s
    })
}

fn date(unknown_allowed: bool) -> impl Strategy<Value = String> {
    (0u32..100, 1u32..=12, 1u32..=28, 0u8..4).prop_map(move |(y, m, d, u)| {
        match (unknown_allowed, u) {
            (true, 0) => format!("{y:02}{m:02}<<"),
            (true, 1) => format!("{y:02}<<<<"),
            _ => format!("{y:02}{m:02}{d:02}"),
        }
    })
}

fn alnum(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[A-Z0-9]{{0,{max}}}")).unwrap()
}

fn format() -> impl Strategy<Value = Format> {
    prop::sample::select(vec![Format::Td1, Format::Td2, Format::Td3])
}

prop_compose! {
    fn record()(format in format(), surname in name(), given in prop::option::of(name()),
                number in prop::string::string_regex("[A-Z0-9]{1,9}").unwrap(),
                long_tail in prop::string::string_regex("[A-Z0-9]{0,5}").unwrap(),
                birth in date(true), expiry in date(false),
                sex in prop::sample::select(vec!["M", "F", "X", "m", "f", "x", "<"]),
                state in prop::sample::select(vec!["COL", "UTO", "D", "ESP", "XXA", "UNO", "GBN"]),
                opt in alnum(14), opt2 in alnum(11))
        -> (Format, String, String, String, String, String, String, &'static str, &'static str, String, String) {
        let number = if format == Format::Td3 { number } else { number + &long_tail };
        let opt = match format {
            Format::Td3 => opt,
            Format::Td2 => opt.chars().take(if number.len() > 9 { 0 } else { 7 }).collect(),
            Format::Td1 => opt.chars().take(if number.len() > 9 { 15 - (number.len() - 9) - 2 } else { 15 }).collect(),
        };
        let opt2 = if format == Format::Td1 { opt2 } else { String::new() };
        (format, surname, given.unwrap_or_default(), number, birth, expiry, opt, sex, state, opt2, String::new())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_mrz_is_well_formed_and_parses_back(r in record()) {
        let (format, surname, given, number, birth, expiry, opt, sex, state, opt2, _) = r;
        let fields = MrzFields {
            document_code: if format == Format::Td3 { "P" } else { "I" },
            issuing_state: state,
            surname: &surname,
            given_names: &given,
            document_number: &number,
            nationality: state,
            birth_date: &birth,
            sex,
            expiry_date: &expiry,
            optional_data: &opt,
            optional_data_2: &opt2,
        };
        let mrz = match Mrz::generate(format, &fields) {
            Ok(m) => m,
            // Names made only of punctuation have no primary identifier: a clear error.
            Err(e) => { prop_assert_eq!(e.field, icao9303::Field::Surname); return Ok(()); }
        };
        // Width and alphabet.
        let lines: Vec<&str> = mrz.lines().collect();
        prop_assert_eq!(lines.len(), format.line_count());
        for l in &lines {
            prop_assert_eq!(l.len(), format.line_len());
            prop_assert!(l.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'<'), "{}", l);
        }
        // Check digits.
        prop_assert!(mrz.checks_ok(), "{:?}", mrz.checks());
        // Parse back.
        let p = Mrz::parse(&mrz.to_string()).unwrap();
        prop_assert!(p.is_valid(), "{:?}", p);
        prop_assert_eq!(&p.document_number, &number);
        prop_assert_eq!(&p.birth_date, &birth);
        prop_assert_eq!(&p.expiry_date, &expiry);
        prop_assert_eq!(&p.optional_data, &opt);
        prop_assert_eq!(&p.optional_data_2, &opt2);
        let want_sex = match sex { "M" | "m" => 'M', "F" | "f" => 'F', _ => 'X' };
        prop_assert_eq!(p.sex, want_sex);
        let words = |s: String| s.split('<').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        let primary = words(transliterate(&surname).unwrap());
        let secondary = words(transliterate(&given).unwrap());
        let primary_mrz = transliterate(&surname).unwrap();
        let secondary_mrz = transliterate(&given).unwrap();
        let full_len = primary_mrz.len() + if secondary_mrz.is_empty() { 0 } else { 2 + secondary_mrz.len() };
        if full_len <= format.name_len() {
            // Never cut a name that fits, even exactly.
            prop_assert_eq!(&p.surname, &primary);
            prop_assert_eq!(&p.given_names, &secondary);
            prop_assert_eq!(p.name_may_be_truncated, full_len == format.name_len());
        } else {
            // Truncated: the field is full, the surname is kept whole when it leaves room
            // for `<<` and an initial, and every given name kept is a prefix of the original.
            // (The one exception, documented in name.rs: given names all cut to initials
            // where a separator would fall on the last position.)
            prop_assert!(p.name_may_be_truncated || p.given_names.split(' ').all(|w| w.len() == 1));
            if primary_mrz.len() + 3 <= format.name_len() {
                prop_assert_eq!(&p.surname, &primary);
                let kept: Vec<&str> = p.given_names.split(' ').collect();
                let orig: Vec<&str> = secondary.split(' ').collect();
                prop_assert!(!kept.is_empty() && kept.len() <= orig.len());
                for (k, o) in kept.iter().zip(&orig) {
                    prop_assert!(!k.is_empty() && o.starts_with(k), "{} / {}", k, o);
                }
            }
        }
    }

    #[test]
    fn one_changed_character_is_caught(r in record(), pos in 0usize..90, delta in 1u8..10) {
        let (format, surname, given, number, birth, expiry, opt, sex, state, opt2, _) = r;
        let fields = MrzFields {
            document_code: if format == Format::Td3 { "P" } else { "I" },
            issuing_state: state, surname: &surname, given_names: &given, document_number: &number,
            nationality: state, birth_date: &birth, sex, expiry_date: &expiry,
            optional_data: &opt, optional_data_2: &opt2,
        };
        let Ok(mrz) = Mrz::generate(format, &fields) else { return Ok(()) };
        // Change one digit of the expiry date (always complete, always checked).
        let text = mrz.to_string();
        let mut lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
        let (line, cols) = match format { Format::Td1 => (1, 8..14), Format::Td2 | Format::Td3 => (1, 21..27) };
        let col = cols.start + pos % 6;
        let c = lines[line][col];
        prop_assert!(c.is_ascii_digit());
        lines[line][col] = b'0' + (c - b'0' + delta) % 10;
        let changed: Vec<String> = lines.into_iter().map(|l| String::from_utf8(l).unwrap()).collect();
        let p = Mrz::from_lines(&changed).unwrap();
        prop_assert!(!p.checks_ok());
    }
}
