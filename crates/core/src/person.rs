//! What a citizen types about a person, parsed once into values that are valid
//! everywhere after ("parse, don't validate").

use crate::field::FieldError;
use jiff::civil::Date;

/// Longest name part accepted (surnames or given names). The data page prints
/// more than the MRZ holds; 60 characters covers the longest Colombian names
/// seen in the registry with room to spare.
pub const NAME_CHARS_MAX: usize = 60;
/// RFC 5321 limits an address path to 254 characters.
pub const EMAIL_CHARS_MAX: usize = 254;
/// Oldest birth year accepted: older dates are typing mistakes.
pub const BIRTH_YEAR_MIN: i16 = 1900;

/// The identity documents a citizen books with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocumentType {
    /// Cédula de ciudadanía: adults.
    CedulaCiudadania,
    /// Tarjeta de identidad: minors from 7.
    TarjetaIdentidad,
    /// Registro civil de nacimiento (NUIP): minors, from birth.
    RegistroCivil,
    /// A foreign passport (dual nationals, first applications abroad).
    PasaporteExtranjero,
}

impl DocumentType {
    pub const ALL: [DocumentType; 4] = [
        DocumentType::CedulaCiudadania,
        DocumentType::TarjetaIdentidad,
        DocumentType::RegistroCivil,
        DocumentType::PasaporteExtranjero,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::CedulaCiudadania => "cedula_ciudadania",
            DocumentType::TarjetaIdentidad => "tarjeta_identidad",
            DocumentType::RegistroCivil => "registro_civil",
            DocumentType::PasaporteExtranjero => "pasaporte_extranjero",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn label_es(self) -> &'static str {
        match self {
            DocumentType::CedulaCiudadania => "Cédula de ciudadanía",
            DocumentType::TarjetaIdentidad => "Tarjeta de identidad",
            DocumentType::RegistroCivil => "Registro civil de nacimiento",
            DocumentType::PasaporteExtranjero => "Pasaporte extranjero",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            DocumentType::CedulaCiudadania => "Citizenship card (cédula)",
            DocumentType::TarjetaIdentidad => "Identity card (minors)",
            DocumentType::RegistroCivil => "Birth registration",
            DocumentType::PasaporteExtranjero => "Foreign passport",
        }
    }
}

/// A document number in canonical form: digits only for Colombian documents,
/// upper-case letters and digits for foreign passports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DocumentNumber(String);

impl DocumentNumber {
    /// Dots, spaces and dashes people type inside numbers are dropped.
    pub fn parse(kind: DocumentType, input: &str, field: &str) -> Result<Self, FieldError> {
        let s: String = input
            .chars()
            .filter(|c| !matches!(c, '.' | ' ' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let (ok, es, en) = match kind {
            DocumentType::CedulaCiudadania => (
                (3..=10).contains(&s.len())
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && !s.starts_with('0'),
                "La cédula tiene de 3 a 10 dígitos, sin cero inicial.",
                "A cédula has 3 to 10 digits, without a leading zero.",
            ),
            DocumentType::TarjetaIdentidad | DocumentType::RegistroCivil => (
                (10..=11).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()),
                "El número (NUIP) tiene 10 u 11 dígitos.",
                "The number (NUIP) has 10 or 11 digits.",
            ),
            DocumentType::PasaporteExtranjero => (
                (5..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()),
                "El pasaporte extranjero tiene de 5 a 20 letras o dígitos.",
                "A foreign passport number has 5 to 20 letters or digits.",
            ),
        };
        if s.is_empty() {
            return Err(FieldError::new(
                field,
                "required",
                "Escriba el número del documento.",
                "Enter the document number.",
            ));
        }
        if ok {
            Ok(Self(s))
        } else {
            Err(FieldError::new(field, "invalid_document_number", es, en))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One person's document: what makes "one active booking per person" checkable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Document {
    pub kind: DocumentType,
    pub number: DocumentNumber,
}

impl Document {
    /// The text that identifies the person across offices, fed to a keyed hash
    /// by the caller. Colombian documents share one number space (the NUIP
    /// carries from registro civil to tarjeta to cédula), so they share a key;
    /// the NUIP is a number, so leading zeros (a tarjeta printed with 11
    /// digits, `01033445566`) do not make another person than the cédula
    /// `1033445566` issued on it at 18.
    pub fn identity_text(&self) -> String {
        match self.kind {
            DocumentType::CedulaCiudadania
            | DocumentType::TarjetaIdentidad
            | DocumentType::RegistroCivil => {
                let digits = self.number.as_str().trim_start_matches('0');
                format!("COL:{}", if digits.is_empty() { "0" } else { digits })
            }
            DocumentType::PasaporteExtranjero => format!("PAS:{}", self.number.as_str()),
        }
    }

    /// The identity text keys were derived from before leading zeros were
    /// dropped (December 2026), when it differs from [`Self::identity_text`]:
    /// the server re-keys rows stored under it once, at start.
    pub fn legacy_identity_text(&self) -> Option<String> {
        let legacy = match self.kind {
            DocumentType::CedulaCiudadania
            | DocumentType::TarjetaIdentidad
            | DocumentType::RegistroCivil => format!("COL:{}", self.number.as_str()),
            DocumentType::PasaporteExtranjero => return None,
        };
        (legacy != self.identity_text()).then_some(legacy)
    }
}

/// Surnames or given names as printed on the data page: letters (any script
/// with accents), spaces, hyphens and apostrophes; spaces collapsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let s = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.is_empty() {
            return Err(FieldError::new(
                field,
                "required",
                "Este campo es obligatorio.",
                "This field is required.",
            ));
        }
        if s.chars().count() > NAME_CHARS_MAX {
            return Err(FieldError::new(
                field,
                "too_long",
                "Escriba como máximo 60 caracteres.",
                "Use at most 60 characters.",
            ));
        }
        let ok = s
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '’'))
            && s.chars().any(char::is_alphabetic);
        if !ok {
            return Err(FieldError::new(
                field,
                "invalid_name",
                "Use solo letras, espacios, guiones y apóstrofos, como en el registro civil.",
                "Use only letters, spaces, hyphens and apostrophes, as in the civil registry.",
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, checked for shape (the confirmation mail proves the rest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        let bad = || {
            FieldError::new(
                field,
                "invalid_email",
                "Escriba un correo válido, por ejemplo nombre@dominio.co.",
                "Enter a valid email address, for example name@domain.co.",
            )
        };
        if s.is_empty() {
            return Err(FieldError::new(
                field,
                "required",
                "Escriba su correo electrónico.",
                "Enter your email address.",
            ));
        }
        if s.len() > EMAIL_CHARS_MAX || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(bad());
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(bad());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number: an optional leading +, then 7 to 15 digits (ITU E.164);
/// spaces, dashes and parentheses people type are dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let t = input.trim();
        let (plus, rest) = t.strip_prefix('+').map_or((false, t), |r| (true, r));
        let digits: String = rest
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                "invalid_phone",
                "Escriba un teléfono de 7 a 15 dígitos, con indicativo si es del exterior (+57 …).",
                "Enter a phone number of 7 to 15 digits, with the country code if abroad (+57 …).",
            ));
        }
        Ok(Self(if plus { format!("+{digits}") } else { digits }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a birth date (`YYYY-MM-DD`) that is not in the future of `today`.
pub fn parse_birth_date(input: &str, today: Date, field: &str) -> Result<Date, FieldError> {
    let d: Date = input.trim().parse().map_err(|_| {
        FieldError::new(
            field,
            "invalid_date",
            "Escriba la fecha como AAAA-MM-DD, por ejemplo 1990-07-20.",
            "Write the date as YYYY-MM-DD, for example 1990-07-20.",
        )
    })?;
    if d > today {
        return Err(FieldError::new(
            field,
            "birth_date_in_future",
            "La fecha de nacimiento no puede ser futura.",
            "The birth date cannot be in the future.",
        ));
    }
    if d.year() < BIRTH_YEAR_MIN {
        return Err(FieldError::new(
            field,
            "birth_date_too_old",
            "Revise el año de nacimiento.",
            "Check the year of birth.",
        ));
    }
    Ok(d)
}

/// Whole years between `birth` and `on`.
pub fn age_on(birth: Date, on: Date) -> i16 {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn document_numbers() {
        let cc = DocumentType::CedulaCiudadania;
        assert_eq!(
            DocumentNumber::parse(cc, "1.020.304.050", "f").map(|d| d.0),
            Ok("1020304050".into())
        );
        assert!(DocumentNumber::parse(cc, "0123", "f").is_err());
        assert!(DocumentNumber::parse(cc, "12345678901", "f").is_err());
        assert!(DocumentNumber::parse(cc, "12a45", "f").is_err());
        assert_eq!(
            DocumentNumber::parse(cc, "", "f").unwrap_err().code,
            "required"
        );
        let ti = DocumentType::TarjetaIdentidad;
        assert!(DocumentNumber::parse(ti, "1234567890", "f").is_ok());
        assert!(DocumentNumber::parse(ti, "123456789", "f").is_err());
        let pe = DocumentType::PasaporteExtranjero;
        assert_eq!(
            DocumentNumber::parse(pe, "x1234-567", "f").map(|d| d.0),
            Ok("X1234567".into())
        );
    }

    #[test]
    fn colombian_documents_share_one_identity() {
        let n = |k| Document {
            kind: k,
            number: DocumentNumber::parse(k, "1020304050", "f").unwrap(),
        };
        assert_eq!(
            n(DocumentType::RegistroCivil).identity_text(),
            n(DocumentType::TarjetaIdentidad).identity_text()
        );
        assert_ne!(
            n(DocumentType::RegistroCivil).identity_text(),
            n(DocumentType::PasaporteExtranjero).identity_text()
        );
        assert_eq!(
            n(DocumentType::CedulaCiudadania).legacy_identity_text(),
            None
        );
    }

    #[test]
    fn a_nuip_with_leading_zeros_is_the_same_person() {
        let d = |k, num: &str| Document {
            kind: k,
            number: DocumentNumber::parse(k, num, "f").unwrap(),
        };
        let tarjeta = d(DocumentType::TarjetaIdentidad, "01033445566");
        let cedula = d(DocumentType::CedulaCiudadania, "1033445566");
        assert_eq!(tarjeta.identity_text(), cedula.identity_text());
        assert_eq!(tarjeta.identity_text(), "COL:1033445566");
        assert_eq!(
            tarjeta.legacy_identity_text().as_deref(),
            Some("COL:01033445566")
        );
        assert_eq!(cedula.legacy_identity_text(), None);
        // Other numbers stay apart.
        assert_ne!(
            tarjeta.identity_text(),
            d(DocumentType::TarjetaIdentidad, "10334455660").identity_text()
        );
        // A foreign passport's zeros are letters of its number.
        assert_ne!(
            d(DocumentType::PasaporteExtranjero, "0AB12345").identity_text(),
            d(DocumentType::PasaporteExtranjero, "AB12345").identity_text()
        );
    }

    #[test]
    fn names() {
        assert_eq!(
            PersonName::parse("  García   Márquez ", "f")
                .unwrap()
                .as_str(),
            "García Márquez"
        );
        assert!(PersonName::parse("O'Neill-Muñoz", "f").is_ok());
        assert!(PersonName::parse("Ana3", "f").is_err());
        assert!(PersonName::parse("<script>", "f").is_err());
        assert!(PersonName::parse("   ", "f").is_err());
        assert!(PersonName::parse(&"a".repeat(61), "f").is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ana@Correo.CO ", "f").unwrap().as_str(),
            "Ana@correo.co"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.co",
            "ana@co",
            "ana@x..co",
            "a b@x.co",
            "ana@x.co.",
        ] {
            assert!(Email::parse(bad, "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(
            Phone::parse("+57 (601) 555-1234", "f").unwrap().as_str(),
            "+576015551234"
        );
        assert!(Phone::parse("12345", "f").is_err());
        assert!(Phone::parse("call me", "f").is_err());
    }

    #[test]
    fn birth_dates_and_ages() {
        let today = date(2026, 11, 29);
        assert_eq!(
            parse_birth_date("2026-11-30", today, "f").unwrap_err().code,
            "birth_date_in_future"
        );
        assert_eq!(
            parse_birth_date("29/11/1990", today, "f").unwrap_err().code,
            "invalid_date"
        );
        assert_eq!(
            parse_birth_date("1899-12-31", today, "f").unwrap_err().code,
            "birth_date_too_old"
        );
        assert_eq!(age_on(date(2008, 11, 30), today), 17);
        assert_eq!(age_on(date(2008, 11, 29), today), 18);
    }
}
