//! The civil-registry check, without IO: what is asked of the national civil
//! registry (Registraduría), what it answers, and how an answer is compared
//! with the identity captured at the counter.
//!
//! Layout: [`RegistryQuery`] (a document), [`RegistryRecord`] (the registry's
//! person), [`CapturedIdentity`] (what the clerk typed), [`compare`] (which
//! fields disagree, as [`Mismatch`] values that name the field and never the
//! values, so they can go to the audit trail and logs), and [`normalise_name`]
//! (the form names are compared in).

use crate::person::{DocumentNumber, DocumentType};
use jiff::civil::Date;

/// Sex as recorded by the registry and printed in the MRZ (`X`: unspecified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sex {
    F,
    M,
    X,
}

impl Sex {
    pub const ALL: [Sex; 3] = [Sex::F, Sex::M, Sex::X];

    pub fn as_str(self) -> &'static str {
        match self {
            Sex::F => "F",
            Sex::M => "M",
            Sex::X => "X",
        }
    }

    /// Accepts `F`, `M` or `X` in either case, surrounding spaces ignored.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(s))
    }
}

/// Whether the registry records the person as alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VitalStatus {
    Alive,
    Deceased,
}

impl VitalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VitalStatus::Alive => "alive",
            VitalStatus::Deceased => "deceased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "alive" => Some(VitalStatus::Alive),
            "deceased" => Some(VitalStatus::Deceased),
            _ => None,
        }
    }
}

/// What the registry is asked: one document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegistryQuery {
    pub document_type: DocumentType,
    pub document_number: DocumentNumber,
}

/// The registry's record of a person, as it answers it (names in the
/// registry's spelling, usually upper case without accents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRecord {
    pub surnames: String,
    pub given_names: String,
    pub birth_date: Date,
    pub birth_place: String,
    pub sex: Sex,
    /// ISO 3166-1 alpha-3 (ICAO) code, `COL` for Colombians.
    pub nationality: String,
    pub status: VitalStatus,
    /// The document was cancelled (e.g. duplicated or fraudulent issue).
    pub document_cancelled: bool,
}

/// The identity as captured at the counter. Plain strings on purpose: the
/// worker reads them back from sealed storage, and [`compare`] normalises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedIdentity {
    pub surnames: String,
    pub given_names: String,
    pub birth_date: Date,
    pub birth_place: String,
    pub sex: Sex,
    pub nationality: String,
}

/// A field where the registry disagrees with the capture (or a registry fact
/// that stops issuance). Names the field only, never a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mismatch {
    Surnames,
    GivenNames,
    BirthDate,
    BirthPlace,
    Sex,
    Nationality,
    /// The registry records the person as deceased.
    Deceased,
    /// The registry records the document as cancelled.
    DocumentCancelled,
}

impl Mismatch {
    /// The field's name, for the audit trail, logs and API bodies.
    pub fn field(self) -> &'static str {
        match self {
            Mismatch::Surnames => "surnames",
            Mismatch::GivenNames => "given_names",
            Mismatch::BirthDate => "birth_date",
            Mismatch::BirthPlace => "birth_place",
            Mismatch::Sex => "sex",
            Mismatch::Nationality => "nationality",
            Mismatch::Deceased => "deceased",
            Mismatch::DocumentCancelled => "document_cancelled",
        }
    }

    pub fn label_es(self) -> &'static str {
        match self {
            Mismatch::Surnames => "Los apellidos no coinciden con el registro civil.",
            Mismatch::GivenNames => "Los nombres no coinciden con el registro civil.",
            Mismatch::BirthDate => "La fecha de nacimiento no coincide con el registro civil.",
            Mismatch::BirthPlace => "El lugar de nacimiento no coincide con el registro civil.",
            Mismatch::Sex => "El sexo no coincide con el registro civil.",
            Mismatch::Nationality => "La nacionalidad no coincide con el registro civil.",
            Mismatch::Deceased => "El registro civil reporta a la persona como fallecida.",
            Mismatch::DocumentCancelled => "El registro civil reporta el documento como cancelado.",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Mismatch::Surnames => "The surnames do not match the civil registry.",
            Mismatch::GivenNames => "The given names do not match the civil registry.",
            Mismatch::BirthDate => "The birth date does not match the civil registry.",
            Mismatch::BirthPlace => "The place of birth does not match the civil registry.",
            Mismatch::Sex => "The sex does not match the civil registry.",
            Mismatch::Nationality => "The nationality does not match the civil registry.",
            Mismatch::Deceased => "The civil registry records the person as deceased.",
            Mismatch::DocumentCancelled => "The civil registry records the document as cancelled.",
        }
    }
}

/// Every disagreement between the capture and the registry's record, in the
/// order of [`Mismatch`]'s variants; empty when they agree.
pub fn compare(captured: &CapturedIdentity, record: &RegistryRecord) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if normalise_name(&captured.surnames) != normalise_name(&record.surnames) {
        out.push(Mismatch::Surnames);
    }
    if normalise_name(&captured.given_names) != normalise_name(&record.given_names) {
        out.push(Mismatch::GivenNames);
    }
    if captured.birth_date != record.birth_date {
        out.push(Mismatch::BirthDate);
    }
    if normalise_place(&captured.birth_place) != normalise_place(&record.birth_place) {
        out.push(Mismatch::BirthPlace);
    }
    if captured.sex != record.sex {
        out.push(Mismatch::Sex);
    }
    if !captured
        .nationality
        .trim()
        .eq_ignore_ascii_case(record.nationality.trim())
    {
        out.push(Mismatch::Nationality);
    }
    match record.status {
        VitalStatus::Alive => {}
        VitalStatus::Deceased => out.push(Mismatch::Deceased),
    }
    if record.document_cancelled {
        out.push(Mismatch::DocumentCancelled);
    }
    out
}

/// The form names are compared in: upper case, accents and other diacritics
/// removed (Ñ becomes N: the registry's older records were typed without it),
/// typographic apostrophes made plain, runs of white space collapsed, trimmed.
pub fn normalise_name(s: &str) -> String {
    let mut folded = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_uppercase) {
        fold_char(c, &mut folded);
    }
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Places also ignore the punctuation people type in them ("Bogotá, D.C."
/// equals "BOGOTA DC").
fn normalise_place(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .filter_map(|c| match c {
            '.' => None,
            ',' | ';' | '(' | ')' => Some(' '),
            c => Some(c),
        })
        .collect();
    normalise_name(&cleaned)
}

/// Appends `c` (already upper case) without its diacritics. Combining marks
/// (decomposed input) are dropped; precomposed Latin letters map to their base.
fn fold_char(c: char, out: &mut String) {
    if ('\u{0300}'..='\u{036F}').contains(&c) {
        return;
    }
    let base = match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => 'A',
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => 'C',
        'Ð' | 'Ď' | 'Đ' => 'D',
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => 'E',
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => 'G',
        'Ĥ' | 'Ħ' => 'H',
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => 'I',
        'Ĵ' => 'J',
        'Ķ' => 'K',
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => 'L',
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => 'N',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => 'O',
        'Ŕ' | 'Ŗ' | 'Ř' => 'R',
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => 'S',
        'Ţ' | 'Ť' | 'Ŧ' => 'T',
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => 'U',
        'Ŵ' => 'W',
        'Ý' | 'Ÿ' | 'Ŷ' => 'Y',
        'Ź' | 'Ż' | 'Ž' => 'Z',
        '’' | '‘' | '`' | '´' => '\'',
        'Æ' => {
            out.push_str("AE");
            return;
        }
        'Œ' => {
            out.push_str("OE");
            return;
        }
        c => c,
    };
    out.push(base);
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn check_name(input: &str, expected: &str) {
        assert_eq!(normalise_name(input), expected, "{input:?}");
    }

    #[test]
    fn names_normalise() {
        for (input, expected) in [
            ("Muñoz García", "MUNOZ GARCIA"),
            ("  MUÑOZ   GARCÍA  ", "MUNOZ GARCIA"),
            ("muñoz\tgarcia", "MUNOZ GARCIA"),
            ("Peña", "PENA"),
            ("José Ángel", "JOSE ANGEL"),
            ("Zuñiga Güell", "ZUNIGA GUELL"),
            // Decomposed: "Jose\u{301}" is "José" typed with a combining accent.
            ("Jose\u{301} Mun\u{303}oz", "JOSE MUNOZ"),
            ("O’Neill", "O'NEILL"),
            ("Ibáñez-Öhman", "IBANEZ-OHMAN"),
            ("Çelik Łukasz", "CELIK LUKASZ"),
            ("", ""),
            ("   ", ""),
        ] {
            check_name(input, expected);
        }
    }

    fn record() -> RegistryRecord {
        RegistryRecord {
            surnames: "MUNOZ GARCIA".into(),
            given_names: "ANA MARIA".into(),
            birth_date: date(1985, 4, 2),
            birth_place: "BOGOTA D.C.".into(),
            sex: Sex::F,
            nationality: "COL".into(),
            status: VitalStatus::Alive,
            document_cancelled: false,
        }
    }

    fn captured() -> CapturedIdentity {
        CapturedIdentity {
            surnames: "Muñoz  García".into(),
            given_names: "Ana María".into(),
            birth_date: date(1985, 4, 2),
            birth_place: "Bogotá, D.C.".into(),
            sex: Sex::F,
            nationality: "col".into(),
        }
    }

    fn check(
        change_captured: fn(&mut CapturedIdentity),
        change_record: fn(&mut RegistryRecord),
        expected: &[Mismatch],
    ) {
        let mut c = captured();
        let mut r = record();
        change_captured(&mut c);
        change_record(&mut r);
        assert_eq!(compare(&c, &r), expected, "{c:?} vs {r:?}");
    }

    type Case = (
        fn(&mut CapturedIdentity),
        fn(&mut RegistryRecord),
        Vec<Mismatch>,
    );

    #[test]
    fn compare_table() {
        use Mismatch as M;
        let same_c: fn(&mut CapturedIdentity) = |_| {};
        let same_r: fn(&mut RegistryRecord) = |_| {};
        let cases: Vec<Case> = vec![
            (same_c, same_r, vec![]),
            (|c| c.surnames = "MUNOZ GARCIA".into(), same_r, vec![]),
            (|c| c.surnames = "Munoz Garcia".into(), same_r, vec![]),
            (same_c, |r| r.surnames = "MUÑOZ GARCÍA".into(), vec![]),
            (|c| c.surnames = "Muñoz".into(), same_r, vec![M::Surnames]),
            (
                |c| c.surnames = "García Muñoz".into(),
                same_r,
                vec![M::Surnames],
            ),
            (
                |c| c.given_names = "Ana".into(),
                same_r,
                vec![M::GivenNames],
            ),
            (
                |c| c.birth_date = date(1985, 2, 4),
                same_r,
                vec![M::BirthDate],
            ),
            (|c| c.birth_place = "BOGOTA DC".into(), same_r, vec![]),
            (
                |c| c.birth_place = "Medellín".into(),
                same_r,
                vec![M::BirthPlace],
            ),
            (|c| c.sex = Sex::M, same_r, vec![M::Sex]),
            (|c| c.sex = Sex::X, same_r, vec![M::Sex]),
            (
                |c| c.nationality = "VEN".into(),
                same_r,
                vec![M::Nationality],
            ),
            (
                same_c,
                |r| r.status = VitalStatus::Deceased,
                vec![M::Deceased],
            ),
            (
                same_c,
                |r| r.document_cancelled = true,
                vec![M::DocumentCancelled],
            ),
            (
                |c| {
                    c.surnames = "Pérez".into();
                    c.sex = Sex::M;
                },
                |r| {
                    r.status = VitalStatus::Deceased;
                    r.document_cancelled = true;
                },
                vec![M::Surnames, M::Sex, M::Deceased, M::DocumentCancelled],
            ),
        ];
        for (c, r, expected) in cases {
            check(c, r, &expected);
        }
    }

    #[test]
    fn mismatches_name_fields_only() {
        let c = CapturedIdentity {
            surnames: "Ramírez".into(),
            ..captured()
        };
        let found = compare(&c, &record());
        let text = format!(
            "{found:?} {:?}",
            found.iter().map(|m| m.field()).collect::<Vec<_>>()
        );
        assert!(!text.to_uppercase().contains("RAMIREZ"), "{text}");
        assert_eq!(found[0].field(), "surnames");
    }

    #[test]
    fn sex_and_status_parse() {
        assert_eq!(Sex::parse(" f "), Some(Sex::F));
        assert_eq!(Sex::parse("X"), Some(Sex::X));
        assert_eq!(Sex::parse("Q"), None);
        for s in Sex::ALL {
            assert_eq!(Sex::parse(s.as_str()), Some(s));
        }
        assert_eq!(VitalStatus::parse("deceased"), Some(VitalStatus::Deceased));
        assert_eq!(VitalStatus::parse("dead"), None);
    }
}
