//! The non-identity parts of what a clerk captures at the counter, parsed once
//! ("parse, don't validate"): the fingerprint capture record (no biometrics,
//! only what the device reports), the reason for the application (first,
//! renewal with the previous passport, replacement with a loss or theft
//! declaration) and, for minors, the consent (guardians present or a
//! notarised authorisation).
//!
//! Layout: the limits; the leaf values, each with `parse(input, field)`
//! ([`FingerprintRecord`], [`Guardian`], [`NotarialReference`],
//! [`PreviousPassport`], [`LossDeclaration`], [`PoliceReport`]); the whole
//! form, [`CaptureExtrasInput`] as typed and [`parse_capture_extras`], which
//! names every faulty field at once (`guardians[1].document_number`); tests.
//!
//! The input structs hold optional strings so that an HTML form and a JSON
//! body can both fill them; an empty or blank string counts as absent. The
//! core has no serde dependency (no IO, no wire formats): `http/` mirrors
//! these structs with `Deserialize` and copies them in.

use crate::field::{FieldError, FieldErrors};
use crate::person::{Document, DocumentNumber, DocumentType};
use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;

/// Longest fingerprint device id: serial numbers and model codes fit in 64.
pub const DEVICE_ID_CHARS_MAX: usize = 64;
/// Least acceptable capture quality on the 0–100 scale (NFIQ 2 style, higher
/// is better). Below 40 a template matches poorly in later one-to-one checks,
/// so the clerk captures again while the applicant is still there.
pub const FINGERPRINT_QUALITY_MIN: u8 = 40;
/// The top of the quality scale.
pub const FINGERPRINT_QUALITY_MAX: u8 = 100;
/// Ten fingers at most.
pub const FINGERS_CAPTURED_MAX: u8 = 10;
/// A capture record belongs to this visit: its UTC date may differ from the
/// office's `today` by at most one day (offices lie between UTC−8 and UTC+10),
/// never more, so an old record cannot be replayed onto another application.
pub const CAPTURE_DAYS_SKEW_MAX: i64 = 1;
/// A minor applies with one or both parents or legal guardians present.
pub const GUARDIANS_MAX: usize = 2;
/// Shortest notarial reference: a notary number and an act number.
pub const NOTARIAL_REFERENCE_CHARS_MIN: usize = 4;
/// Longest notarial reference ("NOTARIA 12 BOGOTA ESCRITURA 12345/2026" fits).
pub const NOTARIAL_REFERENCE_CHARS_MAX: usize = 40;
/// Colombian passports: two letters and seven digits (`AX1234567`) since
/// 2015, nine digits before; older booklets used fewer. 6–9 covers them all.
pub const PASSPORT_NUMBER_CHARS_MIN: usize = 6;
pub const PASSPORT_NUMBER_CHARS_MAX: usize = 9;
/// Earliest loss date accepted: no passport issued before 1990 is still
/// valid, and an earlier date is a typing mistake.
pub const LOSS_YEAR_MIN: i16 = 1990;
/// Longest place of loss: a city and a short description.
pub const LOSS_PLACE_CHARS_MAX: usize = 100;
/// Shortest police report number.
pub const POLICE_REPORT_CHARS_MIN: usize = 4;
/// Longest police report number: SPOA criminal-complaint numbers have 21
/// digits; 40 leaves room for a prefix and separators.
pub const POLICE_REPORT_CHARS_MAX: usize = 40;

/// The input with surrounding whitespace trimmed, `None` when blank.
fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn required(field: &str) -> FieldError {
    FieldError::new(
        field,
        "required",
        "Este campo es obligatorio.",
        "This field is required.",
    )
}

fn not_applicable(field: &str) -> FieldError {
    FieldError::new(
        field,
        "not_applicable",
        "Este dato no corresponde a la opción elegida: bórrelo o cambie la opción.",
        "This does not belong with the option chosen: clear it or change the option.",
    )
}

/// Spaces collapsed, upper case: how reference numbers are kept.
fn squeeze_upper(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

fn is_reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '/' | '.' | '-')
}

// --- Fingerprint --------------------------------------------------------------

/// What the fingerprint device reports, as typed or relayed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FingerprintInput {
    pub device_id: Option<String>,
    pub quality: Option<String>,
    pub template_sha256: Option<String>,
    pub fingers_captured: Option<String>,
    pub captured_at_ms: Option<String>,
}

/// A fingerprint capture record: which device, how good, a digest of the
/// template (the template itself stays in the biometric system), how many
/// fingers, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FingerprintRecord {
    device_id: String,
    quality: u8,
    template_sha256: String,
    fingers_captured: u8,
    captured_at_ms: i64,
}

impl FingerprintRecord {
    /// Checks the record's shape; `prefix` is the field path (`fingerprint`).
    /// Whether it belongs to today's visit is [`parse_capture_extras`]'s
    /// call, so a stored record parses again later.
    pub fn parse(input: &FingerprintInput, prefix: &str) -> Result<Self, FieldErrors> {
        let f = |name: &str| format!("{prefix}.{name}");
        let mut errs = FieldErrors::default();
        let device_id = errs.take(parse_device_id(&input.device_id, &f("device_id")));
        let quality = errs.take(parse_quality(&input.quality, &f("quality")));
        let template = errs.take(parse_sha256(&input.template_sha256, &f("template_sha256")));
        let fingers = errs.take(parse_fingers(
            &input.fingers_captured,
            &f("fingers_captured"),
        ));
        let at = errs.take(parse_millis(&input.captured_at_ms, &f("captured_at_ms")));
        match (device_id, quality, template, fingers, at) {
            (Some(device_id), Some(quality), Some(template_sha256), Some(fingers), Some(at))
                if errs.is_empty() =>
            {
                Ok(Self {
                    device_id,
                    quality,
                    template_sha256,
                    fingers_captured: fingers,
                    captured_at_ms: at,
                })
            }
            _ => Err(errs),
        }
    }

    pub fn device_id(&self) -> &str {
        &self.device_id
    }
    /// 0–100, at least [`FINGERPRINT_QUALITY_MIN`].
    pub fn quality(&self) -> u8 {
        self.quality
    }
    /// 64 lower-case hex characters.
    pub fn template_sha256(&self) -> &str {
        &self.template_sha256
    }
    /// 1–10.
    pub fn fingers_captured(&self) -> u8 {
        self.fingers_captured
    }
    /// Milliseconds since the Unix epoch.
    pub fn captured_at_ms(&self) -> i64 {
        self.captured_at_ms
    }
}

fn parse_device_id(input: &Option<String>, field: &str) -> Result<String, FieldError> {
    let s = present(input).ok_or_else(|| required(field))?;
    let ok = s.len() <= DEVICE_ID_CHARS_MAX
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(FieldError::new(
            field,
            "invalid_device_id",
            "El identificador del lector tiene de 1 a 64 letras, dígitos, puntos, guiones o guiones bajos.",
            "The reader's id has 1 to 64 letters, digits, dots, hyphens or underscores.",
        ))
    }
}

fn parse_quality(input: &Option<String>, field: &str) -> Result<u8, FieldError> {
    let s = present(input).ok_or_else(|| required(field))?;
    let q = s
        .parse::<u8>()
        .ok()
        .filter(|q| *q <= FINGERPRINT_QUALITY_MAX)
        .ok_or_else(|| {
            FieldError::new(
                field,
                "invalid_quality",
                "La calidad es un número entero de 0 a 100.",
                "The quality is a whole number from 0 to 100.",
            )
        })?;
    if q < FINGERPRINT_QUALITY_MIN {
        return Err(FieldError::new(
            field,
            "fingerprint_quality_low",
            "La calidad de la huella es menor que 40: limpie el lector y repita la captura.",
            "The fingerprint quality is below 40: clean the reader and repeat the capture.",
        ));
    }
    Ok(q)
}

fn parse_sha256(input: &Option<String>, field: &str) -> Result<String, FieldError> {
    let s = present(input).ok_or_else(|| required(field))?;
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(FieldError::new(
            field,
            "invalid_sha256",
            "El resumen de la plantilla son 64 caracteres hexadecimales (SHA-256).",
            "The template digest is 64 hexadecimal characters (SHA-256).",
        ))
    }
}

fn parse_fingers(input: &Option<String>, field: &str) -> Result<u8, FieldError> {
    let s = present(input).ok_or_else(|| required(field))?;
    s.parse::<u8>()
        .ok()
        .filter(|n| (1..=FINGERS_CAPTURED_MAX).contains(n))
        .ok_or_else(|| {
            FieldError::new(
                field,
                "invalid_fingers_captured",
                "Indique cuántos dedos se capturaron: de 1 a 10.",
                "Say how many fingers were captured: 1 to 10.",
            )
        })
}

fn parse_millis(input: &Option<String>, field: &str) -> Result<i64, FieldError> {
    let s = present(input).ok_or_else(|| required(field))?;
    s.parse::<i64>()
        .ok()
        .filter(|ms| *ms >= 0 && Timestamp::from_millisecond(*ms).is_ok())
        .ok_or_else(|| {
            FieldError::new(
                field,
                "invalid_timestamp",
                "La hora de captura son milisegundos desde 1970 (la envía el lector).",
                "The capture time is milliseconds since 1970 (the reader sends it).",
            )
        })
}

/// The record was taken during this visit (see [`CAPTURE_DAYS_SKEW_MAX`]).
fn check_fresh(record: &FingerprintRecord, today: Date, field: &str) -> Result<(), FieldError> {
    let day = Timestamp::from_millisecond(record.captured_at_ms)
        .map(|t| t.to_zoned_datetime(TimeZone::UTC).date())
        .map_err(|_| required(field))?;
    let skew_days = (day - today).get_days();
    // `Date - Date` is in days (jiff's default largest unit for dates).
    if i64::from(skew_days) > CAPTURE_DAYS_SKEW_MAX {
        return Err(FieldError::new(
            field,
            "fingerprint_capture_in_future",
            "La hora de captura está en el futuro: revise el reloj del lector y repita la captura.",
            "The capture time is in the future: check the reader's clock and repeat the capture.",
        ));
    }
    if i64::from(skew_days) < -CAPTURE_DAYS_SKEW_MAX {
        return Err(FieldError::new(
            field,
            "fingerprint_capture_stale",
            "La captura no es de hoy: repita la captura con el solicitante presente.",
            "The capture is not from today: repeat it with the applicant present.",
        ));
    }
    Ok(())
}

// --- Minor consent -----------------------------------------------------------

/// How a guardian relates to the minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relationship {
    Mother,
    Father,
    LegalGuardian,
}

impl Relationship {
    pub const ALL: [Relationship; 3] = [
        Relationship::Mother,
        Relationship::Father,
        Relationship::LegalGuardian,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Relationship::Mother => "mother",
            Relationship::Father => "father",
            Relationship::LegalGuardian => "legal_guardian",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label_es(self) -> &'static str {
        match self {
            Relationship::Mother => "Madre",
            Relationship::Father => "Padre",
            Relationship::LegalGuardian => "Tutor o representante legal",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Relationship::Mother => "Mother",
            Relationship::Father => "Father",
            Relationship::LegalGuardian => "Legal guardian",
        }
    }
}

/// One guardian as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardianInput {
    pub document_type: Option<String>,
    pub document_number: Option<String>,
    pub relationship: Option<String>,
}

impl GuardianInput {
    /// A form row left entirely empty (forms show two rows) is no guardian.
    fn is_blank(&self) -> bool {
        present(&self.document_type).is_none()
            && present(&self.document_number).is_none()
            && present(&self.relationship).is_none()
    }
}

/// A parent or legal guardian present at the counter, identified by an
/// adult's document (cédula or foreign passport).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guardian {
    pub document_type: DocumentType,
    pub document_number: DocumentNumber,
    pub relationship: Relationship,
}

impl Guardian {
    /// `prefix` is the field path (`guardians[0]`).
    pub fn parse(input: &GuardianInput, prefix: &str) -> Result<Self, FieldErrors> {
        let f = |name: &str| format!("{prefix}.{name}");
        let mut errs = FieldErrors::default();
        let kind = match present(&input.document_type).map(DocumentType::parse) {
            None => {
                errs.push(required(&f("document_type")));
                None
            }
            Some(None) => {
                errs.push(FieldError::new(
                    f("document_type"),
                    "invalid_document_type",
                    "Elija el tipo de documento del acudiente: cédula o pasaporte extranjero.",
                    "Choose the guardian's document type: cédula or foreign passport.",
                ));
                None
            }
            Some(Some(DocumentType::TarjetaIdentidad | DocumentType::RegistroCivil)) => {
                errs.push(FieldError::new(
                    f("document_type"),
                    "guardian_document_not_adult",
                    "El acudiente se identifica con cédula o pasaporte extranjero, no con un documento de menor.",
                    "The guardian identifies with a cédula or a foreign passport, not a minor's document.",
                ));
                None
            }
            Some(Some(
                k @ (DocumentType::CedulaCiudadania | DocumentType::PasaporteExtranjero),
            )) => Some(k),
        };
        let number = match (kind, present(&input.document_number)) {
            (_, None) => {
                errs.push(required(&f("document_number")));
                None
            }
            (Some(k), Some(n)) => errs.take(DocumentNumber::parse(k, n, &f("document_number"))),
            (None, Some(_)) => None,
        };
        let relationship = match present(&input.relationship) {
            None => {
                errs.push(required(&f("relationship")));
                None
            }
            Some(r) => {
                let r = Relationship::parse(r);
                if r.is_none() {
                    errs.push(FieldError::new(
                        f("relationship"),
                        "invalid_relationship",
                        "Elija el parentesco: madre, padre o tutor legal.",
                        "Choose the relationship: mother, father or legal guardian.",
                    ));
                }
                r
            }
        };
        match (kind, number, relationship) {
            (Some(document_type), Some(document_number), Some(relationship)) if errs.is_empty() => {
                Ok(Self {
                    document_type,
                    document_number,
                    relationship,
                })
            }
            _ => Err(errs),
        }
    }
}

/// A notarised authorisation's reference: notary and act number, upper case,
/// spaces collapsed, 4–40 characters of `A-Z 0-9 space / . -` with a digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotarialReference(String);

impl NotarialReference {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let s = squeeze_upper(input);
        if s.is_empty() {
            return Err(required(field));
        }
        let n = s.chars().count();
        let ok = (NOTARIAL_REFERENCE_CHARS_MIN..=NOTARIAL_REFERENCE_CHARS_MAX).contains(&n)
            && s.chars().all(is_reference_char)
            && s.chars().any(|c| c.is_ascii_digit());
        if ok {
            Ok(Self(s))
        } else {
            Err(FieldError::new(
                field,
                "invalid_notarial_reference",
                "Escriba la notaría y el número del acta (de 4 a 40 letras, dígitos, espacios, / . -), p. ej. «NOTARIA 12 ACTA 3456/2026».",
                "Write the notary and the act number (4 to 40 letters, digits, spaces, / . -), e.g. \"NOTARIA 12 ACTA 3456/2026\".",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a minor's application is consented to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MinorConsent {
    /// One or two guardians at the counter, no document twice.
    GuardiansPresent(Vec<Guardian>),
    /// The absent parent(s) authorised it before a notary.
    Notarised { reference: NotarialReference },
}

impl MinorConsent {
    pub fn as_str(&self) -> &'static str {
        match self {
            MinorConsent::GuardiansPresent(_) => "guardians_present",
            MinorConsent::Notarised { .. } => "notarised",
        }
    }
}

// --- Application reason --------------------------------------------------------

/// A previous Colombian passport's number, upper case without separators:
/// 6–9 letters and digits, at least one digit (`AX1234567`, `123456789`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousPassport {
    number: String,
}

impl PreviousPassport {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let s: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if s.is_empty() {
            return Err(FieldError::new(
                field,
                "required",
                "Escriba el número del pasaporte anterior.",
                "Enter the previous passport's number.",
            ));
        }
        let ok = (PASSPORT_NUMBER_CHARS_MIN..=PASSPORT_NUMBER_CHARS_MAX).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric())
            && s.bytes().any(|b| b.is_ascii_digit());
        if ok {
            Ok(Self { number: s })
        } else {
            Err(FieldError::new(
                field,
                "invalid_passport_number",
                "El número del pasaporte tiene de 6 a 9 letras y dígitos, p. ej. AX1234567.",
                "The passport number has 6 to 9 letters and digits, e.g. AX1234567.",
            ))
        }
    }

    pub fn number(&self) -> &str {
        &self.number
    }
}

/// Whether the previous passport was lost or stolen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossKind {
    Lost,
    Stolen,
}

impl LossKind {
    pub const ALL: [LossKind; 2] = [LossKind::Lost, LossKind::Stolen];

    pub fn as_str(self) -> &'static str {
        match self {
            LossKind::Lost => "lost",
            LossKind::Stolen => "stolen",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A police report's number, upper case, spaces collapsed: 4–40 characters
/// of `A-Z 0-9 space / . -` with a digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoliceReport(String);

impl PoliceReport {
    pub fn parse(input: &str, field: &str) -> Result<Self, FieldError> {
        let s = squeeze_upper(input);
        let n = s.chars().count();
        let ok = (POLICE_REPORT_CHARS_MIN..=POLICE_REPORT_CHARS_MAX).contains(&n)
            && s.chars().all(is_reference_char)
            && s.chars().any(|c| c.is_ascii_digit());
        if ok {
            Ok(Self(s))
        } else {
            Err(FieldError::new(
                field,
                "invalid_police_report",
                "Escriba el número de la denuncia (de 4 a 40 letras, dígitos, espacios, / . -).",
                "Enter the police report number (4 to 40 letters, digits, spaces, / . -).",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A loss or theft declaration as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LossDeclarationInput {
    /// `lost` or `stolen`.
    pub kind: Option<String>,
    /// `YYYY-MM-DD`.
    pub date: Option<String>,
    pub place: Option<String>,
    pub police_report: Option<String>,
}

impl LossDeclarationInput {
    fn is_blank(&self) -> bool {
        present(&self.kind).is_none()
            && present(&self.date).is_none()
            && present(&self.place).is_none()
            && present(&self.police_report).is_none()
    }
}

/// A declaration that the previous passport was lost or stolen: when (from
/// 1990 to today), where, and for a theft the police report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossDeclaration {
    kind: LossKind,
    date: Date,
    place: String,
    police_report: Option<PoliceReport>,
    lost_passport: Option<PreviousPassport>,
}

impl LossDeclaration {
    /// `prefix` is the field path (`loss`); `today` is the office's date.
    pub fn parse(
        input: &LossDeclarationInput,
        today: Date,
        prefix: &str,
    ) -> Result<Self, FieldErrors> {
        let f = |name: &str| format!("{prefix}.{name}");
        let mut errs = FieldErrors::default();
        let kind = match present(&input.kind) {
            None => {
                errs.push(required(&f("kind")));
                None
            }
            Some(k) => {
                let k = LossKind::parse(k);
                if k.is_none() {
                    errs.push(FieldError::new(
                        f("kind"),
                        "invalid_loss_kind",
                        "Indique si el pasaporte se perdió o fue robado.",
                        "Say whether the passport was lost or stolen.",
                    ));
                }
                k
            }
        };
        let date = errs.take(parse_loss_date(&input.date, today, &f("date")));
        let place = errs.take(parse_place(&input.place, &f("place")));
        let police_report = match (present(&input.police_report), kind) {
            (Some(r), _) => errs
                .take(PoliceReport::parse(r, &f("police_report")))
                .map(Some),
            (None, Some(LossKind::Stolen)) => {
                errs.push(FieldError::new(
                    f("police_report"),
                    "police_report_required",
                    "Por un robo se necesita el número de la denuncia.",
                    "A theft needs the police report number.",
                ));
                None
            }
            (None, Some(LossKind::Lost) | None) => Some(None),
        };
        match (kind, date, place, police_report) {
            (Some(kind), Some(date), Some(place), Some(police_report)) if errs.is_empty() => {
                Ok(Self {
                    kind,
                    date,
                    place,
                    police_report,
                    lost_passport: None,
                })
            }
            _ => Err(errs),
        }
    }

    pub fn kind(&self) -> LossKind {
        self.kind
    }
    pub fn date(&self) -> Date {
        self.date
    }
    /// 1–100 characters, spaces collapsed.
    pub fn place(&self) -> &str {
        &self.place
    }
    /// Always present for [`LossKind::Stolen`].
    pub fn police_report(&self) -> Option<&PoliceReport> {
        self.police_report.as_ref()
    }
    /// The lost or stolen passport's number, when the applicant knew it
    /// (`previous_passport_number` in the form).
    pub fn lost_passport(&self) -> Option<&PreviousPassport> {
        self.lost_passport.as_ref()
    }
    /// The same declaration naming the lost passport.
    pub fn with_lost_passport(mut self, passport: PreviousPassport) -> Self {
        self.lost_passport = Some(passport);
        self
    }
}

fn parse_loss_date(input: &Option<String>, today: Date, field: &str) -> Result<Date, FieldError> {
    let s = present(input).ok_or_else(|| required(field))?;
    let d: Date = s.parse().map_err(|_| {
        FieldError::new(
            field,
            "invalid_date",
            "Escriba la fecha como AAAA-MM-DD, por ejemplo 2026-07-20.",
            "Write the date as YYYY-MM-DD, for example 2026-07-20.",
        )
    })?;
    if d > today {
        return Err(FieldError::new(
            field,
            "loss_date_in_future",
            "La fecha de la pérdida no puede ser futura.",
            "The date of the loss cannot be in the future.",
        ));
    }
    if d < date(LOSS_YEAR_MIN, 1, 1) {
        return Err(FieldError::new(
            field,
            "loss_date_too_old",
            "La fecha de la pérdida no puede ser anterior a 1990.",
            "The date of the loss cannot be before 1990.",
        ));
    }
    Ok(d)
}

fn parse_place(input: &Option<String>, field: &str) -> Result<String, FieldError> {
    let s = present(input).ok_or_else(|| required(field))?;
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > LOSS_PLACE_CHARS_MAX {
        return Err(FieldError::new(
            field,
            "too_long",
            "Escriba como máximo 100 caracteres.",
            "Use at most 100 characters.",
        ));
    }
    if s.chars().any(char::is_control) || !s.chars().any(char::is_alphanumeric) {
        return Err(FieldError::new(
            field,
            "invalid_place",
            "Escriba el lugar: ciudad y, si la sabe, la dirección o el sitio.",
            "Enter the place: the city and, if known, the address or site.",
        ));
    }
    Ok(s)
}

/// Why this passport is applied for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplicationReason {
    First,
    Renewal(PreviousPassport),
    Replacement(LossDeclaration),
}

impl ApplicationReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            ApplicationReason::First => "first",
            ApplicationReason::Renewal(_) => "renewal",
            ApplicationReason::Replacement(_) => "replacement",
        }
    }
}

// --- The whole form ------------------------------------------------------------

/// Everything but identity, photo and signature, as typed. Blank strings
/// count as absent; blank guardian rows are skipped (keeping the row index
/// in field paths).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureExtrasInput {
    /// Field paths `fingerprint.device_id` and so on.
    pub fingerprint: FingerprintInput,
    /// `first`, `renewal` or `replacement`.
    pub reason: Option<String>,
    /// For `renewal`.
    pub previous_passport_number: Option<String>,
    /// For `replacement`; field paths `loss.kind` and so on.
    pub loss: LossDeclarationInput,
    /// For minors only: `guardians_present` or `notarised`.
    pub consent: Option<String>,
    /// For `guardians_present`; field paths `guardians[0].document_number`.
    pub guardians: Vec<GuardianInput>,
    /// For `notarised`.
    pub notarial_reference: Option<String>,
}

/// The parsed extras: a fingerprint record always, a reason, and a consent
/// exactly when the applicant is a minor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureExtras {
    fingerprint: FingerprintRecord,
    reason: ApplicationReason,
    consent: Option<MinorConsent>,
}

impl CaptureExtras {
    pub fn fingerprint(&self) -> &FingerprintRecord {
        &self.fingerprint
    }
    pub fn reason(&self) -> &ApplicationReason {
        &self.reason
    }
    /// `Some` exactly when the applicant is a minor.
    pub fn consent(&self) -> Option<&MinorConsent> {
        self.consent.as_ref()
    }
}

/// Parses the capture extras of one applicant, naming every faulty field.
/// `today` is the office's date (loss dates, capture freshness).
pub fn parse_capture_extras(
    input: &CaptureExtrasInput,
    applicant_is_minor: bool,
    today: Date,
) -> Result<CaptureExtras, FieldErrors> {
    let mut errs = FieldErrors::default();
    let fingerprint = match FingerprintRecord::parse(&input.fingerprint, "fingerprint") {
        Ok(r) => errs.take(check_fresh(&r, today, "fingerprint.captured_at_ms").map(|()| r)),
        Err(e) => {
            errs.0.extend(e.0);
            None
        }
    };
    let reason = parse_reason(input, today, &mut errs);
    let consent = parse_consent(input, applicant_is_minor, &mut errs);
    match (fingerprint, reason, consent) {
        (Some(fingerprint), Some(reason), Some(consent)) if errs.is_empty() => Ok(CaptureExtras {
            fingerprint,
            reason,
            consent,
        }),
        _ => Err(errs),
    }
}

/// The reason as chosen, before its own fields are parsed.
#[derive(Clone, Copy)]
enum ReasonKind {
    First,
    Renewal,
    Replacement,
}

fn parse_reason(
    input: &CaptureExtrasInput,
    today: Date,
    errs: &mut FieldErrors,
) -> Option<ApplicationReason> {
    let choose = |code| {
        FieldError::new(
            "reason",
            code,
            "Elija el motivo: primera vez, renovación o reposición por pérdida o robo.",
            "Choose the reason: first passport, renewal, or replacement after loss or theft.",
        )
    };
    let kind = match present(&input.reason) {
        None => {
            errs.push(choose("required"));
            return None;
        }
        Some("first") => ReasonKind::First,
        Some("renewal") => ReasonKind::Renewal,
        Some("replacement") => ReasonKind::Replacement,
        Some(_) => {
            errs.push(choose("invalid_reason"));
            return None;
        }
    };
    let previous = present(&input.previous_passport_number);
    match kind {
        ReasonKind::First => {
            if previous.is_some() {
                errs.push(not_applicable("previous_passport_number"));
            }
            if !input.loss.is_blank() {
                errs.push(not_applicable("loss"));
            }
            Some(ApplicationReason::First)
        }
        ReasonKind::Renewal => {
            if !input.loss.is_blank() {
                errs.push(not_applicable("loss"));
            }
            errs.take(PreviousPassport::parse(
                previous.unwrap_or(""),
                "previous_passport_number",
            ))
            .map(ApplicationReason::Renewal)
        }
        // The lost passport's number is kept when known (so it can be
        // cancelled), not required: people often do not know it.
        ReasonKind::Replacement => {
            let lost = match previous {
                Some(n) => errs
                    .take(PreviousPassport::parse(n, "previous_passport_number"))
                    .map(Some),
                None => Some(None),
            };
            match (LossDeclaration::parse(&input.loss, today, "loss"), lost) {
                (Ok(mut d), Some(lost)) => {
                    d.lost_passport = lost;
                    Some(ApplicationReason::Replacement(d))
                }
                (Ok(_), None) => None,
                (Err(e), _) => {
                    errs.0.extend(e.0);
                    None
                }
            }
        }
    }
}

/// `Some(None)` for an adult without consent data, `Some(Some(_))` for a
/// minor with a valid consent, `None` after recording errors.
fn parse_consent(
    input: &CaptureExtrasInput,
    minor: bool,
    errs: &mut FieldErrors,
) -> Option<Option<MinorConsent>> {
    let kind = present(&input.consent);
    let guardians: Vec<(usize, &GuardianInput)> = input
        .guardians
        .iter()
        .enumerate()
        .filter(|(_, g)| !g.is_blank())
        .collect();
    let notarial = present(&input.notarial_reference);
    if !minor {
        if kind.is_some() || !guardians.is_empty() || notarial.is_some() {
            errs.push(FieldError::new(
                "consent",
                "consent_not_for_adults",
                "El consentimiento de padres o tutores es solo para menores de edad: borre esos datos.",
                "Parents' or guardians' consent is only for minors: clear those fields.",
            ));
            return None;
        }
        return Some(None);
    }
    let consent_choice = || {
        FieldError::new(
            "consent",
            "consent_required",
            "Un menor necesita a sus padres o tutor presentes, o una autorización notarial: elija una.",
            "A minor needs their parents or guardian present, or a notarised authorisation: choose one.",
        )
    };
    match kind {
        None => {
            errs.push(consent_choice());
            None
        }
        Some("guardians_present") => {
            if notarial.is_some() {
                errs.push(not_applicable("notarial_reference"));
            }
            parse_guardians(&guardians, errs).map(|g| Some(MinorConsent::GuardiansPresent(g)))
        }
        Some("notarised") => {
            if !guardians.is_empty() {
                errs.push(not_applicable("guardians"));
            }
            errs.take(NotarialReference::parse(
                notarial.unwrap_or(""),
                "notarial_reference",
            ))
            .map(|reference| Some(MinorConsent::Notarised { reference }))
        }
        Some(_) => {
            errs.push(FieldError::new(
                "consent",
                "invalid_consent",
                "Elija: padres o tutor presentes, o autorización notarial.",
                "Choose: parents or guardian present, or a notarised authorisation.",
            ));
            None
        }
    }
}

fn parse_guardians(
    rows: &[(usize, &GuardianInput)],
    errs: &mut FieldErrors,
) -> Option<Vec<Guardian>> {
    if rows.is_empty() {
        errs.push(FieldError::new(
            "guardians",
            "no_guardians",
            "Registre al menos un padre, madre o tutor presente.",
            "Record at least one parent or guardian present.",
        ));
        return None;
    }
    if rows.len() > GUARDIANS_MAX {
        errs.push(FieldError::new(
            "guardians",
            "too_many_guardians",
            "Registre como máximo dos acudientes.",
            "Record at most two guardians.",
        ));
        return None;
    }
    let before = errs.0.len();
    let mut out: Vec<Guardian> = Vec::with_capacity(rows.len());
    for &(i, row) in rows {
        let prefix = format!("guardians[{i}]");
        match Guardian::parse(row, &prefix) {
            Ok(g) => {
                let identity = |g: &Guardian| {
                    Document {
                        kind: g.document_type,
                        number: g.document_number.clone(),
                    }
                    .identity_text()
                };
                if out.iter().any(|o| identity(o) == identity(&g)) {
                    errs.push(FieldError::new(
                        format!("{prefix}.document_number"),
                        "duplicate_guardian",
                        "Este acudiente ya está registrado.",
                        "This guardian is already recorded.",
                    ));
                }
                out.push(g);
            }
            Err(e) => errs.0.extend(e.0),
        }
    }
    (errs.0.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = date(2026, 11, 29);
    const DAY_MS: i64 = 86_400_000;
    /// 2026-11-29T15:00:00Z.
    const NOW_MS: i64 = 1_795_964_400_000;

    /// The (field, code) pairs a case expects; empty when accepted.
    type Expected = Vec<(&'static str, &'static str)>;
    /// A change to an otherwise good fingerprint input.
    type Change = fn(&mut FingerprintInput);

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn fingerprint() -> FingerprintInput {
        FingerprintInput {
            device_id: s("CROSSMATCH-LSCAN_100.7"),
            quality: s("87"),
            template_sha256: s(&"AB".repeat(32)),
            fingers_captured: s("10"),
            captured_at_ms: s(&NOW_MS.to_string()),
        }
    }

    fn guardian(doc: &str, rel: &str) -> GuardianInput {
        GuardianInput {
            document_type: s("cedula_ciudadania"),
            document_number: s(doc),
            relationship: s(rel),
        }
    }

    fn adult_first() -> CaptureExtrasInput {
        CaptureExtrasInput {
            fingerprint: fingerprint(),
            reason: s("first"),
            ..Default::default()
        }
    }

    fn minor_with_guardians(g: Vec<GuardianInput>) -> CaptureExtrasInput {
        CaptureExtrasInput {
            consent: s("guardians_present"),
            guardians: g,
            ..adult_first()
        }
    }

    fn errors(r: Result<CaptureExtras, FieldErrors>) -> Vec<(String, &'static str)> {
        match r {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|e| (e.field, e.code)).collect(),
        }
    }

    /// One case: the input, whether the applicant is a minor, and the
    /// (field, code) pairs expected (empty: accepted).
    fn check(input: CaptureExtrasInput, minor: bool, want: &[(&str, &str)]) {
        let got = errors(parse_capture_extras(&input, minor, TODAY));
        let want: Vec<(String, &str)> = want.iter().map(|(f, c)| (f.to_string(), *c)).collect();
        assert_eq!(got, want, "input: {input:?}");
    }

    #[test]
    fn now_ms_is_today() {
        let t = Timestamp::from_millisecond(NOW_MS).unwrap();
        assert_eq!(t.to_zoned_datetime(TimeZone::UTC).date(), TODAY);
    }

    #[test]
    fn an_adult_first_passport() {
        let r = parse_capture_extras(&adult_first(), false, TODAY).unwrap();
        assert_eq!(r.reason(), &ApplicationReason::First);
        assert_eq!(r.consent(), None);
        let f = r.fingerprint();
        assert_eq!(f.device_id(), "CROSSMATCH-LSCAN_100.7");
        assert_eq!(f.quality(), 87);
        assert_eq!(f.template_sha256(), "ab".repeat(32));
        assert_eq!(f.fingers_captured(), 10);
        assert_eq!(f.captured_at_ms(), NOW_MS);
    }

    #[test]
    fn fingerprint_records() {
        // (change to the fingerprint input, expected (field, code))
        let cases: Vec<(Change, Expected)> = vec![
            (|_| {}, vec![]),
            (
                |f| f.device_id = None,
                vec![("fingerprint.device_id", "required")],
            ),
            (
                |f| f.device_id = s("  "),
                vec![("fingerprint.device_id", "required")],
            ),
            (
                |f| f.device_id = s("lector 1"),
                vec![("fingerprint.device_id", "invalid_device_id")],
            ),
            (|f| f.device_id = s(&"a".repeat(64)), vec![]),
            (
                |f| f.device_id = s(&"a".repeat(65)),
                vec![("fingerprint.device_id", "invalid_device_id")],
            ),
            (|f| f.quality = s("40"), vec![]),
            (|f| f.quality = s("100"), vec![]),
            (
                |f| f.quality = s("39"),
                vec![("fingerprint.quality", "fingerprint_quality_low")],
            ),
            (
                |f| f.quality = s("0"),
                vec![("fingerprint.quality", "fingerprint_quality_low")],
            ),
            (
                |f| f.quality = s("101"),
                vec![("fingerprint.quality", "invalid_quality")],
            ),
            (
                |f| f.quality = s("-1"),
                vec![("fingerprint.quality", "invalid_quality")],
            ),
            (
                |f| f.quality = s("good"),
                vec![("fingerprint.quality", "invalid_quality")],
            ),
            (
                |f| f.template_sha256 = s(&"a".repeat(63)),
                vec![("fingerprint.template_sha256", "invalid_sha256")],
            ),
            (
                |f| f.template_sha256 = s(&"g".repeat(64)),
                vec![("fingerprint.template_sha256", "invalid_sha256")],
            ),
            (
                |f| f.template_sha256 = None,
                vec![("fingerprint.template_sha256", "required")],
            ),
            (|f| f.fingers_captured = s("1"), vec![]),
            (
                |f| f.fingers_captured = s("0"),
                vec![("fingerprint.fingers_captured", "invalid_fingers_captured")],
            ),
            (
                |f| f.fingers_captured = s("11"),
                vec![("fingerprint.fingers_captured", "invalid_fingers_captured")],
            ),
            (
                |f| f.captured_at_ms = s("yesterday"),
                vec![("fingerprint.captured_at_ms", "invalid_timestamp")],
            ),
            (
                |f| f.captured_at_ms = s("-5"),
                vec![("fingerprint.captured_at_ms", "invalid_timestamp")],
            ),
            (
                |f| f.captured_at_ms = s(&(NOW_MS - DAY_MS).to_string()),
                vec![],
            ),
            (
                |f| f.captured_at_ms = s(&(NOW_MS + DAY_MS).to_string()),
                vec![],
            ),
            (
                |f| f.captured_at_ms = s(&(NOW_MS - 3 * DAY_MS).to_string()),
                vec![("fingerprint.captured_at_ms", "fingerprint_capture_stale")],
            ),
            (
                |f| f.captured_at_ms = s(&(NOW_MS + 3 * DAY_MS).to_string()),
                vec![(
                    "fingerprint.captured_at_ms",
                    "fingerprint_capture_in_future",
                )],
            ),
            (
                |f| *f = FingerprintInput::default(),
                vec![
                    ("fingerprint.device_id", "required"),
                    ("fingerprint.quality", "required"),
                    ("fingerprint.template_sha256", "required"),
                    ("fingerprint.fingers_captured", "required"),
                    ("fingerprint.captured_at_ms", "required"),
                ],
            ),
        ];
        for (change, want) in cases {
            let mut input = adult_first();
            change(&mut input.fingerprint);
            check(input, false, &want);
        }
    }

    #[test]
    fn the_low_quality_message_names_the_minimum_and_says_repeat() {
        let e = parse_quality(&s("12"), "q").unwrap_err();
        assert!(e.es.contains(&FINGERPRINT_QUALITY_MIN.to_string()));
        assert!(e.es.contains("repita la captura"));
        assert!(e.en.contains(&FINGERPRINT_QUALITY_MIN.to_string()));
    }

    #[test]
    fn consent_is_required_exactly_for_minors() {
        check(adult_first(), true, &[("consent", "consent_required")]);
        check(
            minor_with_guardians(vec![guardian("52123456", "mother")]),
            false,
            &[("consent", "consent_not_for_adults")],
        );
        let notarised = CaptureExtrasInput {
            notarial_reference: s("Notaria 12 acta 3456/2026"),
            ..adult_first()
        };
        check(
            notarised.clone(),
            false,
            &[("consent", "consent_not_for_adults")],
        );
        check(notarised, true, &[("consent", "consent_required")]);
        // An adult's form with blank guardian rows (a rendered form) is fine.
        let blank_rows = CaptureExtrasInput {
            guardians: vec![GuardianInput::default(), GuardianInput::default()],
            consent: s(""),
            ..adult_first()
        };
        check(blank_rows, false, &[]);
    }

    #[test]
    fn guardians_present() {
        let one = minor_with_guardians(vec![guardian("52.123.456", "mother")]);
        let r = parse_capture_extras(&one, true, TODAY).unwrap();
        let Some(MinorConsent::GuardiansPresent(g)) = r.consent() else {
            panic!("{r:?}")
        };
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].document_number.as_str(), "52123456");
        assert_eq!(g[0].relationship, Relationship::Mother);

        let foreign = GuardianInput {
            document_type: s("pasaporte_extranjero"),
            document_number: s("x1234567"),
            relationship: s("father"),
        };
        // (guardian rows, expected)
        let cases: Vec<(Vec<GuardianInput>, Expected)> = vec![
            (
                vec![guardian("52123456", "mother"), foreign.clone()],
                vec![],
            ),
            (
                vec![
                    GuardianInput::default(),
                    guardian("52123456", "legal_guardian"),
                ],
                vec![],
            ),
            (vec![], vec![("guardians", "no_guardians")]),
            (
                vec![GuardianInput::default(), GuardianInput::default()],
                vec![("guardians", "no_guardians")],
            ),
            (
                vec![
                    guardian("52123456", "mother"),
                    guardian("79123456", "father"),
                    guardian("80123456", "legal_guardian"),
                ],
                vec![("guardians", "too_many_guardians")],
            ),
            (
                vec![
                    guardian("52123456", "mother"),
                    guardian("52.123.456", "father"),
                ],
                vec![("guardians[1].document_number", "duplicate_guardian")],
            ),
            (
                vec![guardian("0123", "aunt")],
                vec![
                    ("guardians[0].document_number", "invalid_document_number"),
                    ("guardians[0].relationship", "invalid_relationship"),
                ],
            ),
            (
                vec![
                    guardian("52123456", "mother"),
                    GuardianInput {
                        document_type: s("tarjeta_identidad"),
                        document_number: s("1012345678"),
                        relationship: s("father"),
                    },
                ],
                vec![("guardians[1].document_type", "guardian_document_not_adult")],
            ),
            (
                vec![GuardianInput {
                    document_type: s("dni"),
                    document_number: None,
                    relationship: None,
                }],
                vec![
                    ("guardians[0].document_type", "invalid_document_type"),
                    ("guardians[0].document_number", "required"),
                    ("guardians[0].relationship", "required"),
                ],
            ),
        ];
        for (rows, want) in cases {
            check(minor_with_guardians(rows), true, &want);
        }
    }

    #[test]
    fn notarised_consent() {
        let input = |r: Option<String>| CaptureExtrasInput {
            consent: s("notarised"),
            notarial_reference: r,
            ..adult_first()
        };
        let r =
            parse_capture_extras(&input(s("  notaria 12   acta 3456/2026 ")), true, TODAY).unwrap();
        assert_eq!(
            r.consent(),
            Some(&MinorConsent::Notarised {
                reference: NotarialReference("NOTARIA 12 ACTA 3456/2026".into())
            })
        );
        let bad = &[("notarial_reference", "invalid_notarial_reference")];
        check(input(s("N12")), true, bad);
        check(input(s("NOTARIA DOCE")), true, bad);
        check(input(s("12; DROP TABLE")), true, bad);
        check(input(s(&"1".repeat(41))), true, bad);
        check(input(s(&"1".repeat(40))), true, &[]);
        check(input(None), true, &[("notarial_reference", "required")]);
        // Both kinds of consent at once: the clerk must choose.
        let mut both = input(s("NOTARIA 12 ACTA 1"));
        both.guardians = vec![guardian("52123456", "mother")];
        check(both, true, &[("guardians", "not_applicable")]);
        let mut unknown = input(None);
        unknown.consent = s("phone_call");
        check(unknown, true, &[("consent", "invalid_consent")]);
    }

    #[test]
    fn previous_passports() {
        // (typed, normalised or None when refused)
        let cases = [
            ("AX1234567", Some("AX1234567")),
            ("ax 123-4567", Some("AX1234567")),
            ("123456789", Some("123456789")),
            ("C12345", Some("C12345")),
            ("12345", None),
            ("AX12345678", None),
            ("ABCDEFG", None),
            ("AX12345Ñ", None),
        ];
        for (typed, want) in cases {
            let got = PreviousPassport::parse(typed, "f").ok();
            assert_eq!(got.as_ref().map(PreviousPassport::number), want, "{typed}");
        }
        let renewal = |n: Option<String>| CaptureExtrasInput {
            reason: s("renewal"),
            previous_passport_number: n,
            ..adult_first()
        };
        let r = parse_capture_extras(&renewal(s("ax1234567")), false, TODAY).unwrap();
        assert!(matches!(r.reason(), ApplicationReason::Renewal(p) if p.number() == "AX1234567"));
        check(
            renewal(None),
            false,
            &[("previous_passport_number", "required")],
        );
        check(
            renewal(s("1234")),
            false,
            &[("previous_passport_number", "invalid_passport_number")],
        );
    }

    fn replacement(kind: &str, day: &str, place: &str, report: Option<&str>) -> CaptureExtrasInput {
        CaptureExtrasInput {
            reason: s("replacement"),
            loss: LossDeclarationInput {
                kind: s(kind),
                date: s(day),
                place: s(place),
                police_report: report.map(str::to_string),
            },
            ..adult_first()
        }
    }

    #[test]
    fn loss_declarations() {
        let r = parse_capture_extras(
            &replacement(
                "stolen",
                "2026-11-20",
                " Bogotá,  TransMilenio ",
                Some("110016000050202412345"),
            ),
            false,
            TODAY,
        )
        .unwrap();
        let ApplicationReason::Replacement(d) = r.reason() else {
            panic!("{r:?}")
        };
        assert_eq!(d.kind(), LossKind::Stolen);
        assert_eq!(d.date(), date(2026, 11, 20));
        assert_eq!(d.place(), "Bogotá, TransMilenio");
        assert_eq!(
            d.police_report().map(PoliceReport::as_str),
            Some("110016000050202412345")
        );
        // (input, expected)
        let long_place = "x".repeat(101);
        let cases = [
            (replacement("lost", "2026-11-29", "Medellín", None), vec![]),
            (replacement("lost", "1990-01-01", "Cali", Some("")), vec![]),
            (
                replacement("lost", "2026-11-28", "Cali", Some("PQ-2026/77")),
                vec![],
            ),
            (
                replacement("stolen", "2026-11-28", "Cali", None),
                vec![("loss.police_report", "police_report_required")],
            ),
            (
                replacement("stolen", "2026-11-28", "Cali", Some("12")),
                vec![("loss.police_report", "invalid_police_report")],
            ),
            (
                replacement("lost", "2026-11-30", "Cali", None),
                vec![("loss.date", "loss_date_in_future")],
            ),
            (
                replacement("lost", "1989-12-31", "Cali", None),
                vec![("loss.date", "loss_date_too_old")],
            ),
            (
                replacement("lost", "28/11/2026", "Cali", None),
                vec![("loss.date", "invalid_date")],
            ),
            (
                replacement("lost", "2026-11-28", &long_place, None),
                vec![("loss.place", "too_long")],
            ),
            (
                replacement("lost", "2026-11-28", "--", None),
                vec![("loss.place", "invalid_place")],
            ),
            (
                replacement("misplaced", "", "", None),
                vec![
                    ("loss.kind", "invalid_loss_kind"),
                    ("loss.date", "required"),
                    ("loss.place", "required"),
                ],
            ),
        ];
        for (input, want) in cases {
            check(input, false, &want);
        }
        let x100 = "x".repeat(100);
        check(replacement("lost", "2026-11-28", &x100, None), false, &[]);
    }

    #[test]
    fn reasons() {
        let with = |reason: Option<&str>| CaptureExtrasInput {
            reason: reason.map(str::to_string),
            ..adult_first()
        };
        check(with(None), false, &[("reason", "required")]);
        check(
            with(Some("upgrade")),
            false,
            &[("reason", "invalid_reason")],
        );
        // Fields of another reason are not silently dropped.
        let mut first_with_number = with(Some("first"));
        first_with_number.previous_passport_number = s("AX1234567");
        check(
            first_with_number,
            false,
            &[("previous_passport_number", "not_applicable")],
        );
        let mut renewal_with_loss = replacement("lost", "2026-11-28", "Cali", None);
        renewal_with_loss.reason = s("renewal");
        renewal_with_loss.previous_passport_number = s("AX1234567");
        check(renewal_with_loss, false, &[("loss", "not_applicable")]);
        // A replacement may name the lost passport's number, kept normalised.
        let mut with_number = replacement("lost", "2026-11-28", "Cali", None);
        with_number.previous_passport_number = s("ax 1234567");
        let r = parse_capture_extras(&with_number, false, TODAY).unwrap();
        let ApplicationReason::Replacement(d) = r.reason() else {
            panic!("{r:?}")
        };
        assert_eq!(
            d.lost_passport().map(PreviousPassport::number),
            Some("AX1234567")
        );
        with_number.previous_passport_number = s("??");
        check(
            with_number,
            false,
            &[("previous_passport_number", "invalid_passport_number")],
        );
    }

    #[test]
    fn every_faulty_field_is_named_at_once() {
        let input = CaptureExtrasInput {
            fingerprint: FingerprintInput {
                quality: s("20"),
                ..fingerprint()
            },
            reason: s("renewal"),
            previous_passport_number: s("x"),
            consent: s("guardians_present"),
            guardians: vec![
                guardian("52123456", "mother"),
                guardian("52123456", "father"),
            ],
            ..Default::default()
        };
        check(
            input,
            true,
            &[
                ("fingerprint.quality", "fingerprint_quality_low"),
                ("previous_passport_number", "invalid_passport_number"),
                ("guardians[1].document_number", "duplicate_guardian"),
            ],
        );
    }
}
