//! The machine readable zone: generation from the data page's fields, parsing and
//! verification (Doc 9303 Parts 3 to 6).

use crate::check::{check_digit, check_digit_parts};
use crate::codes::{DocumentCode, DocumentCodeError, Format, StateCode, UnknownStateCode};
use crate::name;
use crate::translit::{TranslitError, Transliterated};
use std::fmt;

/// Characters in the largest MRZ (TD1: 3 × 30).
pub const MRZ_CHARS_MAX: usize = 90;

/// The fields of a data page, as a person typed them. Names in any case, with accents,
/// spaces, hyphens and apostrophes; dates as `YYMMDD` (with `<` for an unknown day or
/// month of birth) or `YYYY-MM-DD` (with `XX` for unknown parts); sex `M`, `F` or `X`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MrzFields<'a> {
    /// `P`, `PD`, `I`, `ID`, `AC`... (one letter is completed with `<`).
    pub document_code: &'a str,
    /// Issuing state or organization (`COL`, `D`, `UNO`...).
    pub issuing_state: &'a str,
    /// Primary identifier.
    pub surname: &'a str,
    /// Secondary identifier; may be empty.
    pub given_names: &'a str,
    /// Letters and digits, as printed (spaces are not allowed).
    pub document_number: &'a str,
    /// Nationality code.
    pub nationality: &'a str,
    /// Date of birth.
    pub birth_date: &'a str,
    /// `M`, `F`, `X` (or `<`).
    pub sex: &'a str,
    /// Date of expiry.
    pub expiry_date: &'a str,
    /// Optional data (TD3: personal number; TD1: line 1; TD2: line 2).
    pub optional_data: &'a str,
    /// TD1 only: the optional data of line 2.
    pub optional_data_2: &'a str,
}

/// A field of [`MrzFields`], named as in JSON input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `document_type`
    DocumentCode,
    /// `issuing_state`
    IssuingState,
    /// `surname`
    Surname,
    /// `given_names`
    GivenNames,
    /// `document_number`
    DocumentNumber,
    /// `nationality`
    Nationality,
    /// `birth_date`
    BirthDate,
    /// `sex`
    Sex,
    /// `expiry_date`
    ExpiryDate,
    /// `optional_data`
    OptionalData,
    /// `optional_data_2`
    OptionalData2,
}

impl Field {
    /// The field's name in JSON input and messages.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Field::DocumentCode => "document_type",
            Field::IssuingState => "issuing_state",
            Field::Surname => "surname",
            Field::GivenNames => "given_names",
            Field::DocumentNumber => "document_number",
            Field::Nationality => "nationality",
            Field::BirthDate => "birth_date",
            Field::Sex => "sex",
            Field::ExpiryDate => "expiry_date",
            Field::OptionalData => "optional_data",
            Field::OptionalData2 => "optional_data_2",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field that cannot be represented in the MRZ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct MrzError {
    /// Which field.
    pub field: Field,
    /// What is wrong with it.
    pub problem: FieldProblem,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    /// Name transliteration failed.
    #[error(transparent)]
    Transliteration(#[from] TranslitError),
    /// The surname has no letter left after transliteration.
    #[error("no letter left after transliteration; a primary identifier is required")]
    EmptyName,
    /// Document code refused.
    #[error(transparent)]
    DocumentCode(#[from] DocumentCodeError),
    /// State code refused.
    #[error(transparent)]
    StateCode(#[from] UnknownStateCode),
    /// Date refused.
    #[error(transparent)]
    Date(#[from] DateError),
    /// Sex other than M, F, X or `<`.
    #[error("{0:?} is not a sex marker: expected M, F or X")]
    Sex(String),
    /// A character outside `A`–`Z`, `0`–`9`.
    #[error("character {0:?} is not allowed: only letters A-Z and digits")]
    Character(char),
    /// Empty where a value is required.
    #[error("empty")]
    Empty,
    /// Too many characters.
    #[error("{len} characters, at most {max} fit in {format}")]
    TooLong {
        /// Characters given.
        len: usize,
        /// Characters that fit.
        max: usize,
        /// The format.
        format: Format,
    },
}

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not `YYMMDD` nor `YYYY-MM-DD`.
    #[error("{0:?} is not a date: expected YYMMDD or YYYY-MM-DD")]
    Syntax(String),
    /// Month or day out of range.
    #[error("{0:?} is not a calendar date")]
    Calendar(String),
    /// `<` or `XX` where the date must be complete.
    #[error("{0:?}: an unknown day, month or year is allowed only in the date of birth")]
    Unknown(String),
}

/// Whether a date may have unknown parts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DateKind {
    Birth,
    Expiry,
}

/// Parses a date into its six MRZ characters.
fn parse_date(text: &str, kind: DateKind) -> Result<[u8; 6], DateError> {
    let t = text.trim().as_bytes();
    let syntax = || DateError::Syntax(text.to_owned());
    let mut d = [b'<'; 6];
    let pair = |src: &[u8]| -> Option<[u8; 2]> {
        match src {
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Some([*a, *b]),
            [b'<', b'<'] | [b'X' | b'x', b'X' | b'x'] => Some([b'<', b'<']),
            _ => None,
        }
    };
    let (yy, mm, dd, century) = match t.len() {
        6 => (pair(&t[0..2]), pair(&t[2..4]), pair(&t[4..6]), None),
        10 if t[4] == b'-' && t[7] == b'-' => {
            let century = pair(&t[0..2]).filter(|c| c[0] != b'<');
            (
                pair(&t[2..4]),
                pair(&t[5..7]),
                pair(&t[8..10]),
                Some(century.ok_or_else(syntax)?),
            )
        }
        _ => return Err(syntax()),
    };
    let (yy, mm, dd) = (
        yy.ok_or_else(syntax)?,
        mm.ok_or_else(syntax)?,
        dd.ok_or_else(syntax)?,
    );
    d[0..2].copy_from_slice(&yy);
    d[2..4].copy_from_slice(&mm);
    d[4..6].copy_from_slice(&dd);
    let unknown = |p: [u8; 2]| p[0] == b'<';
    if unknown(yy) || (kind == DateKind::Expiry && (unknown(mm) || unknown(dd))) {
        return Err(DateError::Unknown(text.to_owned()));
    }
    if unknown(mm) && !unknown(dd) {
        // A day without a month cannot be a calendar date.
        return Err(DateError::Calendar(text.to_owned()));
    }
    let num = |p: [u8; 2]| u32::from(p[0] - b'0') * 10 + u32::from(p[1] - b'0');
    if !unknown(mm) {
        let month = num(mm);
        if !(1..=12).contains(&month) {
            return Err(DateError::Calendar(text.to_owned()));
        }
        if !unknown(dd) {
            let year = num(yy);
            let leap = match century {
                Some(c) => {
                    let full = num(c) * 100 + year;
                    (full % 4 == 0 && full % 100 != 0) || full % 400 == 0
                }
                // Without the century, 00 may be 2000 (leap) or 1900: allow 29 February.
                None => year % 4 == 0,
            };
            let days = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if !(1..=days).contains(&num(dd)) {
                return Err(DateError::Calendar(text.to_owned()));
            }
        }
    }
    Ok(d)
}

fn parse_sex(text: &str) -> Result<u8, FieldProblem> {
    match text.trim() {
        "M" | "m" => Ok(b'M'),
        "F" | "f" => Ok(b'F'),
        "X" | "x" | "<" => Ok(b'<'),
        other => Err(FieldProblem::Sex(other.to_owned())),
    }
}

/// Writes `text` (letters and digits, uppercased) into `out`, padding with `<`.
/// Returns the number of characters written.
fn write_alnum(text: &str, out: &mut [u8], format: Format) -> Result<usize, FieldProblem> {
    let t = text.trim().as_bytes();
    out.fill(b'<');
    let mut n = 0usize;
    for &c in t {
        let c = match c {
            b'a'..=b'z' => c - 32,
            b'A'..=b'Z' | b'0'..=b'9' | b'<' => c,
            b' ' => b'<',
            _ => {
                let ch = text
                    .trim()
                    .chars()
                    .find(|ch| !ch.is_ascii_alphanumeric() && *ch != ' ' && *ch != '<');
                return Err(FieldProblem::Character(ch.unwrap_or(char::from(c))));
            }
        };
        if n == out.len() {
            return Err(FieldProblem::TooLong {
                len: t.len(),
                max: out.len(),
                format,
            });
        }
        out[n] = c;
        n += 1;
    }
    Ok(n)
}

/// A generated or parsed MRZ: 2 or 3 lines of the format's width, in one buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Mrz {
    format: Format,
    buf: [u8; MRZ_CHARS_MAX],
}

impl fmt::Debug for Mrz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mrz")
            .field("format", &self.format)
            .field("lines", &self.lines().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Display for Mrz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(line)?;
        }
        Ok(())
    }
}

impl Mrz {
    /// Generates the MRZ of `format` from the data page's fields.
    ///
    /// Any field that cannot be represented gives an error naming it; a wrong MRZ is never
    /// produced. Allocates nothing.
    pub fn generate(format: Format, fields: &MrzFields<'_>) -> Result<Mrz, MrzError> {
        let err = |field: Field| move |problem: FieldProblem| MrzError { field, problem };
        let code = DocumentCode::parse(fields.document_code, format)
            .map_err(|e| err(Field::DocumentCode)(e.into()))?;
        let state = StateCode::parse(fields.issuing_state)
            .map_err(|e| err(Field::IssuingState)(e.into()))?;
        let nationality =
            StateCode::parse(fields.nationality).map_err(|e| err(Field::Nationality)(e.into()))?;
        let primary =
            Transliterated::new(fields.surname).map_err(|e| err(Field::Surname)(e.into()))?;
        if primary.is_empty() {
            return Err(err(Field::Surname)(FieldProblem::EmptyName));
        }
        let secondary = Transliterated::new(fields.given_names)
            .map_err(|e| err(Field::GivenNames)(e.into()))?;
        let birth = parse_date(fields.birth_date, DateKind::Birth)
            .map_err(|e| err(Field::BirthDate)(e.into()))?;
        let expiry = parse_date(fields.expiry_date, DateKind::Expiry)
            .map_err(|e| err(Field::ExpiryDate)(e.into()))?;
        let sex = parse_sex(fields.sex).map_err(err(Field::Sex))?;

        // The document number: at most 9 in its field; TD1 and TD2 carry the rest in the
        // optional data (Part 5 4.2.4, Part 6 4.2.4).
        let mut number = [b'<'; 32];
        let number_len = write_alnum(fields.document_number, &mut number, format)
            .map_err(err(Field::DocumentNumber))?;
        if number_len == 0 {
            return Err(err(Field::DocumentNumber)(FieldProblem::Empty));
        }
        if number[..number_len].contains(&b'<') {
            return Err(err(Field::DocumentNumber)(FieldProblem::Character(' ')));
        }
        let number = &number[..number_len];
        let number_check = check_digit(number).unwrap_or(b'0');

        let mut m = Mrz {
            format,
            buf: [b'<'; MRZ_CHARS_MAX],
        };
        let b = &mut m.buf;
        match format {
            Format::Td3 => {
                if number.len() > 9 {
                    return Err(err(Field::DocumentNumber)(FieldProblem::TooLong {
                        len: number.len(),
                        max: 9,
                        format,
                    }));
                }
                let (l1, l2) = b[..88].split_at_mut(44);
                l1[0..2].copy_from_slice(code.as_bytes());
                l1[2..5].copy_from_slice(state.as_bytes());
                name::compose(primary.as_bytes(), secondary.as_bytes(), &mut l1[5..44]);
                l2[..number.len()].copy_from_slice(number);
                l2[9] = number_check;
                l2[10..13].copy_from_slice(nationality.as_bytes());
                l2[13..19].copy_from_slice(&birth);
                l2[19] = check_digit(&birth).unwrap_or(b'0');
                l2[20] = sex;
                l2[21..27].copy_from_slice(&expiry);
                l2[27] = check_digit(&expiry).unwrap_or(b'0');
                let n = write_alnum(fields.optional_data, &mut l2[28..42], format)
                    .map_err(err(Field::OptionalData))?;
                // An unused personal number field has `<` as its check digit (Part 4 allows
                // `<` or 0; both weigh 0 in the composite check).
                l2[42] = if n == 0 {
                    b'<'
                } else {
                    check_digit(&l2[28..42]).unwrap_or(b'0')
                };
                l2[43] = check_digit_parts(&[&l2[0..10], &l2[13..20], &l2[21..43]]).unwrap_or(b'0');
                if !fields.optional_data_2.trim().is_empty() {
                    return Err(err(Field::OptionalData2)(FieldProblem::TooLong {
                        len: fields.optional_data_2.trim().len(),
                        max: 0,
                        format,
                    }));
                }
            }
            Format::Td2 => {
                let (l1, l2) = b[..72].split_at_mut(36);
                l1[0..2].copy_from_slice(code.as_bytes());
                l1[2..5].copy_from_slice(state.as_bytes());
                name::compose(primary.as_bytes(), secondary.as_bytes(), &mut l1[5..36]);
                let (head, tail) = l2.split_at_mut(28);
                write_number(
                    number,
                    number_check,
                    &mut head[0..10],
                    &mut tail[0..7],
                    fields.optional_data,
                    format,
                )?;
                l2[10..13].copy_from_slice(nationality.as_bytes());
                l2[13..19].copy_from_slice(&birth);
                l2[19] = check_digit(&birth).unwrap_or(b'0');
                l2[20] = sex;
                l2[21..27].copy_from_slice(&expiry);
                l2[27] = check_digit(&expiry).unwrap_or(b'0');
                l2[35] = check_digit_parts(&[&l2[0..10], &l2[13..20], &l2[21..35]]).unwrap_or(b'0');
                if !fields.optional_data_2.trim().is_empty() {
                    return Err(err(Field::OptionalData2)(FieldProblem::TooLong {
                        len: fields.optional_data_2.trim().len(),
                        max: 0,
                        format,
                    }));
                }
            }
            Format::Td1 => {
                let (l1, rest) = b.split_at_mut(30);
                let (l2, l3) = rest.split_at_mut(30);
                l1[0..2].copy_from_slice(code.as_bytes());
                l1[2..5].copy_from_slice(state.as_bytes());
                let (number_field, optional) = l1[5..30].split_at_mut(10);
                write_number(
                    number,
                    number_check,
                    number_field,
                    optional,
                    fields.optional_data,
                    format,
                )?;
                l2[0..6].copy_from_slice(&birth);
                l2[6] = check_digit(&birth).unwrap_or(b'0');
                l2[7] = sex;
                l2[8..14].copy_from_slice(&expiry);
                l2[14] = check_digit(&expiry).unwrap_or(b'0');
                l2[15..18].copy_from_slice(nationality.as_bytes());
                write_alnum(fields.optional_data_2, &mut l2[18..29], format)
                    .map_err(err(Field::OptionalData2))?;
                l2[29] = check_digit_parts(&[&l1[5..30], &l2[0..7], &l2[8..15], &l2[18..29]])
                    .unwrap_or(b'0');
                name::compose(primary.as_bytes(), secondary.as_bytes(), l3);
            }
        }
        Ok(m)
    }

    /// The format.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// All characters, line after line, without separators.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.format.total_len()]
    }

    /// Line `i` (0-based).
    #[must_use]
    pub fn line(&self, i: usize) -> &str {
        let w = self.format.line_len();
        let bytes = self.as_bytes().get(i * w..(i + 1) * w).unwrap_or(&[]);
        // Only MRZ characters (ASCII) are ever stored.
        std::str::from_utf8(bytes).unwrap_or("")
    }

    /// The lines.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        (0..self.format.line_count()).map(|i| self.line(i))
    }

    /// Reads MRZ lines (2 × 44, 2 × 36 or 3 × 30 characters of the MRZ alphabet). Blank
    /// lines and surrounding white space are ignored. Check digits are not judged here:
    /// see [`Mrz::checks`] and [`Mrz::parse`].
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<Mrz, ParseError> {
        let mut count = 0usize;
        let mut lens = [0usize; 3];
        let mut buf = [b'<'; MRZ_CHARS_MAX];
        for line in lines
            .iter()
            .map(|l| l.as_ref().trim())
            .filter(|l| !l.is_empty())
        {
            if count == 3 {
                return Err(ParseError::Shape {
                    lines: count + 1,
                    first_len: lens[0],
                });
            }
            lens[count] = line.len();
            count += 1;
            let at: usize = lens[..count - 1].iter().sum();
            if at + line.len() > MRZ_CHARS_MAX {
                return Err(ParseError::Shape {
                    lines: count,
                    first_len: lens[0],
                });
            }
            for (col, c) in line.bytes().enumerate() {
                if crate::check::char_value(c).is_none() {
                    let ch = line[col..].chars().next().unwrap_or('?');
                    return Err(ParseError::Character {
                        line: count,
                        column: col + 1,
                        found: ch,
                    });
                }
                buf[at + col] = c;
            }
        }
        let format = match (count, lens) {
            (2, [44, 44, _]) => Some(Format::Td3),
            (2, [36, 36, _]) => Some(Format::Td2),
            (3, [30, 30, 30]) => Some(Format::Td1),
            _ => None,
        };
        let format = format.ok_or(ParseError::Shape {
            lines: count,
            first_len: lens[0],
        })?;
        Ok(Mrz { format, buf })
    }

    /// Reads MRZ text (lines separated by newlines).
    pub fn from_text(text: &str) -> Result<Mrz, ParseError> {
        let mut lines = [""; 3];
        let mut n = 0usize;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if n == 3 {
                return Err(ParseError::Shape {
                    lines: 4,
                    first_len: lines[0].len(),
                });
            }
            lines[n] = line;
            n += 1;
        }
        Mrz::from_lines(&lines[..n])
    }

    /// Visits every check digit of this MRZ, allocation-free. Returns whether all agree.
    pub fn for_each_check(&self, mut visit: impl FnMut(&Check)) -> bool {
        let b = &self.buf;
        let mut ok = true;
        let mut emit = |c: Check| {
            ok &= c.is_ok();
            visit(&c);
        };
        let check = |field, line: u8, column: usize, found: u8, data: &[&[u8]]| Check {
            field,
            line,
            // Columns are at most 44: the cast cannot truncate.
            column: (column + 1) as u8,
            found,
            expected: check_digit_parts(data).unwrap_or(b'?'),
        };
        match self.format {
            Format::Td3 => {
                let l2 = &b[44..88];
                emit(check(
                    CheckedField::DocumentNumber,
                    2,
                    9,
                    l2[9],
                    &[&l2[0..9]],
                ));
                emit(check(
                    CheckedField::BirthDate,
                    2,
                    19,
                    l2[19],
                    &[&l2[13..19]],
                ));
                emit(check(
                    CheckedField::ExpiryDate,
                    2,
                    27,
                    l2[27],
                    &[&l2[21..27]],
                ));
                let mut personal = check(CheckedField::OptionalData, 2, 42, l2[42], &[&l2[28..42]]);
                if l2[28..42].iter().all(|&c| c == b'<') && l2[42] == b'<' {
                    // Part 4: an unused personal number may have `<` or 0 as check digit.
                    personal.expected = b'<';
                }
                emit(personal);
                emit(check(
                    CheckedField::Composite,
                    2,
                    43,
                    l2[43],
                    &[&l2[0..10], &l2[13..20], &l2[21..43]],
                ));
            }
            Format::Td2 => {
                let l2 = &b[36..72];
                emit(number_check(l2, 0, &l2[28..35], 28, 2));
                emit(check(
                    CheckedField::BirthDate,
                    2,
                    19,
                    l2[19],
                    &[&l2[13..19]],
                ));
                emit(check(
                    CheckedField::ExpiryDate,
                    2,
                    27,
                    l2[27],
                    &[&l2[21..27]],
                ));
                emit(check(
                    CheckedField::Composite,
                    2,
                    35,
                    l2[35],
                    &[&l2[0..10], &l2[13..20], &l2[21..35]],
                ));
            }
            Format::Td1 => {
                let (l1, l2) = (&b[0..30], &b[30..60]);
                emit(number_check(l1, 5, &l1[15..30], 15, 1));
                emit(check(CheckedField::BirthDate, 2, 6, l2[6], &[&l2[0..6]]));
                emit(check(
                    CheckedField::ExpiryDate,
                    2,
                    14,
                    l2[14],
                    &[&l2[8..14]],
                ));
                emit(check(
                    CheckedField::Composite,
                    2,
                    29,
                    l2[29],
                    &[&l1[5..30], &l2[0..7], &l2[8..15], &l2[18..29]],
                ));
            }
        }
        ok
    }

    /// Every check digit with its verdict.
    #[must_use]
    pub fn checks(&self) -> Vec<Check> {
        let mut v = Vec::with_capacity(5);
        self.for_each_check(|c| v.push(*c));
        v
    }

    /// Whether every check digit agrees (allocation-free).
    #[must_use]
    pub fn checks_ok(&self) -> bool {
        self.for_each_check(|_| {})
    }

    /// Reads MRZ text into its fields, with every check and every other problem found.
    pub fn parse(text: &str) -> Result<ParsedMrz, ParseError> {
        let mrz = Mrz::from_text(text)?;
        Ok(mrz.fields())
    }

    /// The fields of this MRZ.
    #[must_use]
    pub fn fields(&self) -> ParsedMrz {
        let b = &self.buf;
        let s = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let trim = |bytes: &[u8]| {
            let end = bytes.iter().rposition(|&c| c != b'<').map_or(0, |p| p + 1);
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        };
        let (
            l1,
            name_field,
            number_field,
            number_line_offset,
            optional,
            optional_2,
            dob,
            sex,
            expiry,
            nationality,
        );
        match self.format {
            Format::Td3 => {
                l1 = &b[0..44];
                let l2 = &b[44..88];
                name_field = &l1[5..44];
                number_field = &l2[0..10];
                number_line_offset = None;
                optional = &l2[28..42];
                optional_2 = &l2[0..0];
                dob = &l2[13..19];
                sex = l2[20];
                expiry = &l2[21..27];
                nationality = &l2[10..13];
            }
            Format::Td2 => {
                l1 = &b[0..36];
                let l2 = &b[36..72];
                name_field = &l1[5..36];
                number_field = &l2[0..10];
                number_line_offset = Some(&l2[28..35]);
                optional = &l2[28..35];
                optional_2 = &l2[0..0];
                dob = &l2[13..19];
                sex = l2[20];
                expiry = &l2[21..27];
                nationality = &l2[10..13];
            }
            Format::Td1 => {
                l1 = &b[0..30];
                let l2 = &b[30..60];
                name_field = &b[60..90];
                number_field = &l1[5..15];
                number_line_offset = Some(&l1[15..30]);
                optional = &l1[15..30];
                optional_2 = &l2[18..29];
                dob = &l2[0..6];
                sex = l2[7];
                expiry = &l2[8..14];
                nationality = &l2[15..18];
            }
        }
        let mut problems = Vec::new();
        let mut document_number = trim(&number_field[..9]);
        let mut optional_data = trim(optional);
        if let Some(opt) = number_line_offset
            && number_field[9] == b'<'
            && number_field[8] != b'<'
        {
            // A long document number: the rest and its check digit open the optional data.
            let end = opt.iter().position(|&c| c == b'<').unwrap_or(opt.len());
            if end >= 2 {
                document_number = s(&number_field[..9]) + &s(&opt[..end - 1]);
                optional_data = trim(opt.get(end + 1..).unwrap_or(&[]));
            } else {
                problems.push(Problem::new(Field::DocumentNumber, "the check digit position holds `<` but the optional data holds no continuation of the number"));
            }
        }
        let code_bytes = [l1[0], l1[1]];
        if let Err(e) = DocumentCode::from_mrz(&code_bytes, self.format) {
            problems.push(Problem::new(Field::DocumentCode, &e.to_string()));
        }
        for (field, bytes) in [
            (Field::IssuingState, &l1[2..5]),
            (Field::Nationality, nationality),
        ] {
            let code = [bytes[0], bytes[1], bytes[2]];
            if StateCode::from_mrz(&code).is_none() {
                problems.push(Problem::new(
                    field,
                    &UnknownStateCode(trim(bytes)).to_string(),
                ));
            }
        }
        for (field, date, kind) in [
            (Field::BirthDate, dob, DateKind::Birth),
            (Field::ExpiryDate, expiry, DateKind::Expiry),
        ] {
            if let Err(e) = parse_date(&s(date), kind) {
                problems.push(Problem::new(field, &e.to_string()));
            }
        }
        if !matches!(sex, b'M' | b'F' | b'<') {
            problems.push(Problem::new(
                Field::Sex,
                &FieldProblem::Sex(char::from(sex).to_string()).to_string(),
            ));
        }
        let name_end = name_field
            .iter()
            .rposition(|&c| c != b'<')
            .map_or(0, |p| p + 1);
        let name = &name_field[..name_end];
        let (primary, secondary) = match name.windows(2).position(|w| w == b"<<") {
            Some(p) => (&name[..p], &name[p + 2..]),
            None => (name, &name[..0]),
        };
        let words = |bytes: &[u8]| {
            s(bytes)
                .split('<')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        ParsedMrz {
            format: self.format,
            document_code: trim(&code_bytes),
            issuing_state: trim(&l1[2..5]),
            surname: words(primary),
            given_names: words(secondary),
            name_may_be_truncated: name_field.last().is_some_and(|&c| c != b'<'),
            document_number,
            nationality: trim(nationality),
            birth_date: s(dob),
            sex: match sex {
                b'<' => 'X',
                other => char::from(other),
            },
            expiry_date: s(expiry),
            optional_data,
            optional_data_2: trim(optional_2),
            checks: self.checks(),
            problems,
            lines: self.lines().map(str::to_owned).collect(),
        }
    }
}

/// The document number check of TD1/TD2, following the number into the optional data
/// when it is longer than nine characters.
fn number_check(line: &[u8], at: usize, optional: &[u8], optional_at: usize, line_no: u8) -> Check {
    let field = &line[at..at + 9];
    let found = line[at + 9];
    let mut c = Check {
        field: CheckedField::DocumentNumber,
        line: line_no,
        column: (at + 10) as u8,
        found,
        expected: check_digit(field).unwrap_or(b'?'),
    };
    if found == b'<' && field[8] != b'<' {
        let end = optional
            .iter()
            .position(|&ch| ch == b'<')
            .unwrap_or(optional.len());
        if end >= 2 {
            c.found = optional[end - 1];
            c.column = (optional_at + end) as u8;
            c.expected = check_digit_parts(&[field, &optional[..end - 1]]).unwrap_or(b'?');
        } else {
            c.expected = b'?';
        }
    }
    c
}

/// Writes a document number and its check digit into the number field (10 positions:
/// number and check digit), carrying the rest into `optional` when longer than 9, then
/// the optional data given by the person.
fn write_number(
    number: &[u8],
    check: u8,
    number_field: &mut [u8],
    optional: &mut [u8],
    optional_text: &str,
    format: Format,
) -> Result<(), MrzError> {
    let err = |problem| MrzError {
        field: Field::DocumentNumber,
        problem,
    };
    let opt_err = |problem| MrzError {
        field: Field::OptionalData,
        problem,
    };
    if number.len() <= 9 {
        number_field[..number.len()].copy_from_slice(number);
        number_field[9] = check;
        write_alnum(optional_text, optional, format).map_err(opt_err)?;
        return Ok(());
    }
    let rest = &number[9..];
    // The rest and its check digit must fit; a filler then ends the number.
    let max = 9 + optional.len() - 1;
    if number.len() > max {
        return Err(err(FieldProblem::TooLong {
            len: number.len(),
            max,
            format,
        }));
    }
    number_field[..9].copy_from_slice(&number[..9]);
    number_field[9] = b'<';
    optional[..rest.len()].copy_from_slice(rest);
    optional[rest.len()] = check;
    let used = rest.len() + 1;
    let text = optional_text.trim();
    if !text.is_empty() {
        // The person's optional data follows after one filler.
        let Some(room) = optional.get_mut(used + 1..) else {
            return Err(opt_err(FieldProblem::TooLong {
                len: text.len(),
                max: 0,
                format,
            }));
        };
        let max = room.len();
        write_alnum(text, room, format).map_err(|p| match p {
            FieldProblem::TooLong { len, format, .. } => {
                opt_err(FieldProblem::TooLong { len, max, format })
            }
            other => opt_err(other),
        })?;
    }
    Ok(())
}

/// Which field a check digit protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckedField {
    /// The document number (including its continuation in the optional data).
    DocumentNumber,
    /// The date of birth.
    BirthDate,
    /// The date of expiry.
    ExpiryDate,
    /// TD3's personal number / optional data.
    OptionalData,
    /// The composite check digit.
    Composite,
}

impl CheckedField {
    /// A name for messages and JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckedField::DocumentNumber => "document_number",
            CheckedField::BirthDate => "birth_date",
            CheckedField::ExpiryDate => "expiry_date",
            CheckedField::OptionalData => "optional_data",
            CheckedField::Composite => "composite",
        }
    }
}

/// One check digit: where it is, what it holds and what it should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The field it protects.
    pub field: CheckedField,
    /// Line, from 1.
    pub line: u8,
    /// Column, from 1.
    pub column: u8,
    /// The character found.
    pub found: u8,
    /// The digit expected (`?` when none can be computed).
    pub expected: u8,
}

impl Check {
    /// Whether the digit found is the one expected.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.found == self.expected
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_ok() { "ok" } else { "FAILED" };
        write!(
            f,
            "{} check digit at line {} column {}: found {}, expected {}: {verdict}",
            self.field.as_str(),
            self.line,
            self.column,
            char::from(self.found),
            char::from(self.expected)
        )
    }
}

/// A problem other than a check digit (an unknown code, an impossible date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field.
    pub field: Field,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn new(field: Field, message: &str) -> Self {
        Self {
            field,
            message: message.to_owned(),
        }
    }
}

/// The fields read back from an MRZ. Names are given with spaces between components
/// (the MRZ cannot tell a space from a hyphen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMrz {
    /// The format.
    pub format: Format,
    /// Document code without filler.
    pub document_code: String,
    /// Issuing state code without filler.
    pub issuing_state: String,
    /// Primary identifier.
    pub surname: String,
    /// Secondary identifier.
    pub given_names: String,
    /// Whether the name field is full: the MRZ's only sign of truncation, also true of a
    /// name that fits exactly.
    pub name_may_be_truncated: bool,
    /// The whole document number, including its continuation in the optional data.
    pub document_number: String,
    /// Nationality code without filler.
    pub nationality: String,
    /// `YYMMDD`, `<` for unknown parts.
    pub birth_date: String,
    /// `M`, `F` or `X`.
    pub sex: char,
    /// `YYMMDD`.
    pub expiry_date: String,
    /// Optional data without trailing fillers (and without a long number's continuation).
    pub optional_data: String,
    /// TD1 line 2 optional data.
    pub optional_data_2: String,
    /// Every check digit.
    pub checks: Vec<Check>,
    /// Other problems.
    pub problems: Vec<Problem>,
    /// The lines read.
    pub lines: Vec<String>,
}

impl ParsedMrz {
    /// Whether every check digit agrees and nothing else is wrong.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.checks.iter().all(Check::is_ok) && self.problems.is_empty()
    }
}

/// MRZ text that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not 2 × 44, 2 × 36 or 3 × 30.
    #[error(
        "{lines} line(s), the first of {first_len} characters: an MRZ is 2 × 44 (TD3), 2 × 36 (TD2) or 3 × 30 (TD1)"
    )]
    Shape {
        /// Lines found.
        lines: usize,
        /// Length of the first.
        first_len: usize,
    },
    /// A character outside the MRZ alphabet.
    #[error("line {line} column {column}: {found:?} is not an MRZ character (A-Z, 0-9, <)")]
    Character {
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// The character.
        found: char,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn anna(format: Format, code: &'static str, number: &'static str) -> MrzFields<'static> {
        MrzFields {
            document_code: code,
            issuing_state: "UTO",
            surname: "Eriksson",
            given_names: "Anna Maria",
            document_number: number,
            nationality: "UTO",
            birth_date: "740812",
            sex: "F",
            expiry_date: "120415",
            optional_data: if format == Format::Td3 {
                "ZE184226B"
            } else {
                ""
            },
            optional_data_2: "",
        }
    }

    fn lines(m: &Mrz) -> Vec<&str> {
        m.lines().collect()
    }

    #[test]
    fn td3_specimen_part_4() {
        let m = Mrz::generate(Format::Td3, &anna(Format::Td3, "P", "L898902C3")).unwrap();
        assert_eq!(
            lines(&m),
            [
                "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
                "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
            ]
        );
        let p = Mrz::parse(&m.to_string()).unwrap();
        assert!(p.is_valid(), "{p:?}");
        assert_eq!(p.surname, "ERIKSSON");
        assert_eq!(p.given_names, "ANNA MARIA");
        assert_eq!(p.optional_data, "ZE184226B");
    }

    #[test]
    fn td2_specimen_part_6() {
        let m = Mrz::generate(Format::Td2, &anna(Format::Td2, "I", "D23145890")).unwrap();
        assert_eq!(
            lines(&m),
            [
                "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
                "D231458907UTO7408122F1204159<<<<<<<6"
            ]
        );
        assert!(Mrz::parse(&m.to_string()).unwrap().is_valid());
    }

    #[test]
    fn td1_specimen_part_5() {
        let m = Mrz::generate(Format::Td1, &anna(Format::Td1, "I", "D23145890")).unwrap();
        assert_eq!(
            lines(&m),
            [
                "I<UTOD231458907<<<<<<<<<<<<<<<",
                "7408122F1204159UTO<<<<<<<<<<<6",
                "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"
            ]
        );
        assert!(Mrz::parse(&m.to_string()).unwrap().is_valid());
    }

    #[test]
    fn td1_long_document_number_part_5() {
        let m = Mrz::generate(Format::Td1, &anna(Format::Td1, "I", "D23145890734")).unwrap();
        assert_eq!(m.line(0), "I<UTOD23145890<7349<<<<<<<<<<<");
        let p = Mrz::parse(&m.to_string()).unwrap();
        assert!(p.is_valid(), "{p:?}");
        assert_eq!(p.document_number, "D23145890734");
        let number = p.checks[0];
        assert_eq!((number.line, number.column, number.found), (1, 19, b'9'));
    }

    #[test]
    fn td2_long_document_number_with_optional_data() {
        let mut f = anna(Format::Td2, "I", "D231458907");
        f.optional_data = "AB";
        let m = Mrz::generate(Format::Td2, &f).unwrap();
        assert_eq!(&m.line(1)[..10], "D23145890<");
        assert_eq!(&m.line(1)[28..35], "76<AB<<");
        let p = Mrz::parse(&m.to_string()).unwrap();
        assert!(p.is_valid(), "{p:?}");
        assert_eq!(p.document_number, "D231458907");
        assert_eq!(p.optional_data, "AB");
    }

    #[test]
    fn long_document_number_refused_in_td3() {
        let e = Mrz::generate(Format::Td3, &anna(Format::Td3, "P", "L898902C3X")).unwrap_err();
        assert_eq!(e.field, Field::DocumentNumber);
        let e =
            Mrz::generate(Format::Td2, &anna(Format::Td2, "I", "D231458901234567")).unwrap_err();
        assert_eq!(e.field, Field::DocumentNumber, "{e}");
    }

    #[test]
    fn failing_checks_name_field_position_and_digit() {
        let p = Mrz::parse("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C35UTO7408122F1204159ZE184226B<<<<<10").unwrap();
        let failed: Vec<_> = p.checks.iter().filter(|c| !c.is_ok()).collect();
        assert_eq!(failed.len(), 2);
        assert_eq!(
            (
                failed[0].field,
                failed[0].line,
                failed[0].column,
                failed[0].expected
            ),
            (CheckedField::DocumentNumber, 2, 10, b'6')
        );
        assert_eq!(failed[1].field, CheckedField::Composite);
        assert_eq!(failed[1].column, 44);
    }

    #[test]
    fn sex_x_and_unknown_birth_day() {
        let mut f = anna(Format::Td3, "P", "L898902C3");
        f.sex = "x";
        f.birth_date = "1974-08-XX";
        let m = Mrz::generate(Format::Td3, &f).unwrap();
        assert_eq!(&m.line(1)[13..21], "7408<<7<");
        let p = Mrz::parse(&m.to_string()).unwrap();
        assert!(p.is_valid(), "{p:?}");
        assert_eq!(p.sex, 'X');
        assert_eq!(p.birth_date, "7408<<");
    }

    #[test]
    fn errors_name_the_field() {
        type Change = fn(&mut MrzFields<'static>);
        let cases: [(Change, Field); 12] = [
            (|f| f.surname = "Иванов", Field::Surname),
            (|f| f.surname = " - ", Field::Surname),
            (|f| f.given_names = "Anna 2", Field::GivenNames),
            (|f| f.issuing_state = "XYZ", Field::IssuingState),
            (|f| f.nationality = "ZZ", Field::Nationality),
            (|f| f.birth_date = "741312", Field::BirthDate),
            (|f| f.expiry_date = "1204<<", Field::ExpiryDate),
            (|f| f.expiry_date = "2023-02-29", Field::ExpiryDate),
            (|f| f.sex = "Q", Field::Sex),
            (|f| f.document_number = "L898-902", Field::DocumentNumber),
            (|f| f.optional_data = "ZE184226B123456", Field::OptionalData),
            (|f| f.document_code = "I", Field::DocumentCode),
        ];
        for (change, field) in cases {
            let mut f = anna(Format::Td3, "P", "L898902C3");
            change(&mut f);
            let e = Mrz::generate(Format::Td3, &f).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().starts_with(field.as_str()), "{e}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2000-02-29", DateKind::Expiry), Ok(*b"000229"));
        assert!(parse_date("1900-02-29", DateKind::Expiry).is_err());
        assert_eq!(parse_date("74<<<<", DateKind::Birth), Ok(*b"74<<<<"));
        assert!(parse_date("74<<12", DateKind::Birth).is_err());
        assert!(parse_date("<<0812", DateKind::Birth).is_err());
        assert!(parse_date("1974/08/12", DateKind::Birth).is_err());
    }

    #[test]
    fn parse_refuses_shapes_and_characters() {
        assert!(matches!(Mrz::parse("P<UTO"), Err(ParseError::Shape { .. })));
        let bad = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<1o";
        assert_eq!(
            Mrz::parse(bad),
            Err(ParseError::Character {
                line: 2,
                column: 44,
                found: 'o'
            })
        );
    }
}
