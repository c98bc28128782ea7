//! A booking request, checked as a whole: every faulty field is named at once.

use crate::field::{FieldError, FieldErrors};
use crate::person::{
    Document, DocumentNumber, DocumentType, Email, PersonName, Phone, age_on, parse_birth_date,
};
use jiff::Timestamp;
use jiff::civil::Date;

/// A parent and up to four children share one booking.
pub const APPLICANTS_MAX: usize = 5;
/// Adulthood in Colombia.
pub const ADULT_AGE: i16 = 18;

/// One applicant as typed, before parsing.
#[derive(Clone, Debug, Default)]
pub struct ApplicantInput {
    pub document_type: String,
    pub document_number: String,
    pub surnames: String,
    pub given_names: String,
    pub birth_date: String,
}

/// A booking request as typed, before parsing.
#[derive(Clone, Debug, Default)]
pub struct BookingInput {
    pub start: String,
    pub applicants: Vec<ApplicantInput>,
    pub email: String,
    pub phone: Option<String>,
}

/// One parsed applicant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applicant {
    pub document: Document,
    pub surnames: PersonName,
    pub given_names: PersonName,
    pub birth_date: Date,
}

/// A parsed booking request; whether its slot exists is the calendar's call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingRequest {
    pub start: Timestamp,
    pub applicants: Vec<Applicant>,
    pub email: Email,
    pub phone: Option<Phone>,
}

impl BookingRequest {
    pub fn seats(&self) -> u32 {
        // APPLICANTS_MAX bounds the length.
        self.applicants.len() as u32
    }
}

/// Parses the start of a slot: RFC 3339 with an offset (`2026-12-01T09:00:00-05:00`).
pub fn parse_start(input: &str, field: &str) -> Result<Timestamp, FieldError> {
    input.trim().parse::<Timestamp>().map_err(|_| {
        FieldError::new(
            field,
            "invalid_start",
            "Elija una hora de la lista (fecha y hora con zona, p. ej. 2026-12-01T09:00:00-05:00).",
            "Choose a time from the list (date and time with offset, e.g. 2026-12-01T09:00:00-05:00).",
        )
    })
}

/// Checks everything that does not need the office's calendar: the applicants
/// (one to five, the ones after the first minors, no document twice), the
/// email and phone, the shape of the start time. `today` is the citizen's date.
pub fn parse_request(input: &BookingInput, today: Date) -> Result<BookingRequest, FieldErrors> {
    let mut errs = FieldErrors::default();
    let start = errs.take(parse_start(&input.start, "start"));
    let party = parse_party_into(input, today, &mut errs);
    match (start, party, errs.is_empty()) {
        (Some(start), Some(p), true) => Ok(BookingRequest {
            start,
            applicants: p.applicants,
            email: p.email,
            phone: p.phone,
        }),
        _ => Err(errs),
    }
}

/// The people of a request and how to reach them, without a slot (a
/// ballot request names preferences instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    pub applicants: Vec<Applicant>,
    pub email: Email,
    pub phone: Option<Phone>,
}

impl Party {
    pub fn seats(&self) -> u32 {
        // APPLICANTS_MAX bounds the length.
        self.applicants.len() as u32
    }
}

/// Parses the people, email and phone of `input` (its `start` is ignored).
pub fn parse_party(input: &BookingInput, today: Date) -> Result<Party, FieldErrors> {
    let mut errs = FieldErrors::default();
    match parse_party_into(input, today, &mut errs) {
        Some(p) if errs.is_empty() => Ok(p),
        _ => Err(errs),
    }
}

fn parse_party_into(input: &BookingInput, today: Date, errs: &mut FieldErrors) -> Option<Party> {
    let email = errs.take(Email::parse(&input.email, "email"));
    let phone = match input
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) => errs.take(Phone::parse(p, "phone")).map(Some),
        None => Some(None),
    };
    if input.applicants.is_empty() {
        errs.push(FieldError::new(
            "applicants",
            "no_applicants",
            "Agregue al menos una persona.",
            "Add at least one person.",
        ));
    }
    if input.applicants.len() > APPLICANTS_MAX {
        errs.push(FieldError::new(
            "applicants",
            "too_many_applicants",
            "Una cita cubre como máximo 5 personas: un adulto y hasta cuatro menores.",
            "One appointment covers at most 5 people: an adult and up to four minors.",
        ));
    }
    let mut applicants = Vec::new();
    for (i, a) in input.applicants.iter().take(APPLICANTS_MAX).enumerate() {
        let f = |name: &str| format!("applicants[{i}].{name}");
        let kind = DocumentType::parse(a.document_type.trim());
        if kind.is_none() {
            errs.push(FieldError::new(
                f("document_type"),
                "invalid_document_type",
                "Elija el tipo de documento: cédula, tarjeta de identidad, registro civil o pasaporte extranjero.",
                "Choose the document type: cédula, identity card, birth registration or foreign passport.",
            ));
        }
        let number = kind.and_then(|k| {
            errs.take(DocumentNumber::parse(
                k,
                &a.document_number,
                &f("document_number"),
            ))
        });
        let surnames = errs.take(PersonName::parse(&a.surnames, &f("surnames")));
        let given = errs.take(PersonName::parse(&a.given_names, &f("given_names")));
        let birth = errs.take(parse_birth_date(&a.birth_date, today, &f("birth_date")));
        if let (Some(b), true) = (birth, i > 0)
            && age_on(b, today) >= ADULT_AGE
        {
            errs.push(FieldError::new(
                    f("birth_date"),
                    "companion_not_minor",
                    "Solo los menores de edad pueden ir en la cita de otra persona; los adultos reservan su propia cita.",
                    "Only minors can share another person's appointment; adults book their own.",
                ));
        }
        if let (Some(k), Some(n), Some(s), Some(g), Some(b)) =
            (kind, number, surnames, given, birth)
        {
            let doc = Document { kind: k, number: n };
            if applicants
                .iter()
                .any(|x: &Applicant| x.document.identity_text() == doc.identity_text())
            {
                errs.push(FieldError::new(
                    f("document_number"),
                    "duplicate_applicant",
                    "Esta persona ya está en la cita.",
                    "This person is already in the appointment.",
                ));
            }
            applicants.push(Applicant {
                document: doc,
                surnames: s,
                given_names: g,
                birth_date: b,
            });
        }
    }
    Some(Party {
        applicants,
        email: email?,
        phone: phone?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn person(doc: &str, birth: &str) -> ApplicantInput {
        ApplicantInput {
            document_type: if birth < "2008" {
                "cedula_ciudadania"
            } else {
                "tarjeta_identidad"
            }
            .into(),
            document_number: doc.into(),
            surnames: "Pérez Gómez".into(),
            given_names: "Ana María".into(),
            birth_date: birth.into(),
        }
    }

    fn input(applicants: Vec<ApplicantInput>) -> BookingInput {
        BookingInput {
            start: "2026-12-01T09:00:00-05:00".into(),
            applicants,
            email: "ana@example.co".into(),
            phone: Some("+57 300 123 4567".into()),
        }
    }

    fn codes(r: Result<BookingRequest, FieldErrors>) -> Vec<(String, &'static str)> {
        r.unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    const TODAY: Date = date(2026, 11, 29);

    #[test]
    fn a_family_of_five_is_fine() {
        let mut v = vec![person("52123456", "1985-04-02")];
        for i in 0..4 {
            v.push(person(&format!("101234567{i}"), "2015-01-01"));
        }
        let r = parse_request(&input(v), TODAY).unwrap();
        assert_eq!(r.seats(), 5);
    }

    #[test]
    fn six_applicants_are_refused() {
        let v = (0..6)
            .map(|i| person(&format!("5212345{i}"), "1985-04-02"))
            .collect();
        assert!(
            codes(parse_request(&input(v), TODAY))
                .contains(&("applicants".into(), "too_many_applicants"))
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut b = input(vec![
            person("0", "2030-01-01"),
            person("52123456", "1980-01-01"),
        ]);
        b.email = "nope".into();
        b.start = "tomorrow".into();
        b.phone = Some("12".into());
        let got = codes(parse_request(&b, TODAY));
        for want in [
            ("start", "invalid_start"),
            ("email", "invalid_email"),
            ("phone", "invalid_phone"),
            ("applicants[0].birth_date", "birth_date_in_future"),
            ("applicants[1].birth_date", "companion_not_minor"),
        ] {
            assert!(
                got.contains(&(want.0.to_string(), want.1)),
                "{want:?} in {got:?}"
            );
        }
    }

    #[test]
    fn the_same_person_twice_in_one_booking() {
        let v = vec![
            person("1012345670", "2015-01-01"),
            person("1012345670", "2015-01-01"),
        ];
        assert!(codes(parse_request(&input(v), TODAY)).contains(&(
            "applicants[1].document_number".into(),
            "duplicate_applicant"
        )));
    }

    #[test]
    fn no_applicants() {
        assert!(
            codes(parse_request(&input(vec![]), TODAY))
                .contains(&("applicants".into(), "no_applicants"))
        );
    }
}
