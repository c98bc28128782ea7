//! Booking use cases: availability, book, view, reschedule, cancel. Each reads
//! like its name: parse, ask the core, write through the group-commit writer.
//!
//! Seats come from pools (`pasaporte_core::shares`): citizens' calendars and
//! bookings use the online pool's share of each slot; a citizen declaring
//! priority access falls back to the priority pool when the online pool is
//! full; a supervisor grants urgent seats ([`book_urgent`]). Walk-in seats
//! are never bookable here.

use crate::app::{App, OfficeEntry};
use crate::crypto::{CryptoError, Keyring, at, random_bytes};
use crate::i18n::Lang;
use crate::mail::{self, MailKind};
use pasaporte_core::application::Actor;
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::booking::{BookingInput, BookingRequest, parse_request, parse_start};
use pasaporte_core::calendar::{self, ClosedReason, DayPlan, SlotError};
use pasaporte_core::code::{CODE_LEN, ConfirmationCode};
use pasaporte_core::jiff::civil::Date;
use pasaporte_core::jiff::{SignedDuration, Timestamp};
use pasaporte_core::person::DocumentType;
use pasaporte_core::shares::Pool;
use pasaporte_core::{FieldError, FieldErrors};
use pasaporte_store::{
    ApplicantRow, BookingRow, NewBooking, StoreError, UrgentGrant, WriteError, WriteOp,
    WriteOutcome,
};
use std::sync::Arc;

/// Longest Idempotency-Key accepted.
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 128;
/// Offices scanned for the earliest free slots, and results returned.
pub const EARLIEST_RESULTS_MAX: usize = 50;
/// Attempts at a fresh confirmation code when one is taken (1 in 10^5 at a
/// million bookings, so three tries are plenty).
const CODE_ATTEMPTS_MAX: usize = 3;
/// Longest urgent-case evidence a supervisor may write: a paragraph, enough
/// to name the document seen (a medical letter, a travel order) without
/// turning the booking into a file store.
pub const EVIDENCE_CHARS_MAX: usize = 2_000;
/// Age from which an applicant may ask for priority access as an older person.
pub const PRIORITY_AGE_YEARS: i16 = 60;

/// One slot as shown to citizens.
#[derive(Clone, Debug)]
pub struct SlotView {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The online pool's seats (what citizens may book).
    pub capacity: u32,
    /// Every seat of the slot, all pools.
    pub slot_capacity: u32,
    /// Online seats left.
    pub remaining: u32,
    /// `start` and `end` in RFC 3339 with the office's offset.
    pub start_text: String,
    pub end_text: String,
}

/// Why a day shows no bookable slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DayNote {
    Closed(ClosedReason),
    BeyondHorizon,
    Past,
}

#[derive(Clone, Debug)]
pub struct DayView {
    pub date: Date,
    pub note: Option<DayNote>,
    pub slots: Vec<SlotView>,
}

#[derive(Debug, thiserror::Error)]
pub enum AvailabilityError {
    #[error("unknown office")]
    UnknownOffice,
    #[error("invalid query")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The office's slots on one day with the seats left, past slots left out.
pub async fn office_day(
    app: &App,
    entry: &OfficeEntry,
    date: Date,
    now: Timestamp,
) -> Result<DayView, StoreError> {
    let today = calendar::local_today(&entry.office, now);
    if date < today {
        return Ok(DayView {
            date,
            note: Some(DayNote::Past),
            slots: Vec::new(),
        });
    }
    if date > calendar::horizon_end(&entry.office, now) {
        return Ok(DayView {
            date,
            note: Some(DayNote::BeyondHorizon),
            slots: Vec::new(),
        });
    }
    let planned = entry.planned_day(date);
    let slots = match &planned.plan {
        DayPlan::Closed(r) => {
            return Ok(DayView {
                date,
                note: Some(DayNote::Closed(r.clone())),
                slots: Vec::new(),
            });
        }
        DayPlan::Open(s) => s,
    };
    let (from, to) = planned.bounds_ms;
    let booked = app
        .availability
        .day(&app.store, &entry.office.code, date, from, to)
        .await?;
    let slots = slots
        .iter()
        .zip(&planned.texts)
        .filter(|(s, _)| s.start > now)
        .map(|(s, (start_text, end_text))| {
            let ms = s.start.as_millisecond();
            let taken = booked.taken(ms);
            let online = booked.capacity(ms, entry.policy.shares.split(s.capacity).online);
            SlotView {
                start: s.start,
                end: s.end,
                capacity: online,
                slot_capacity: s.capacity,
                remaining: online.saturating_sub(taken),
                start_text: start_text.clone(),
                end_text: end_text.clone(),
            }
        })
        .collect();
    Ok(DayView {
        date,
        note: None,
        slots,
    })
}

/// The office and the validated date range of an availability query.
pub fn office_range(
    app: &App,
    code: &str,
    from: Option<&str>,
    days: Option<u32>,
    now: Timestamp,
) -> Result<(Arc<OfficeEntry>, Date, u32), AvailabilityError> {
    let entry = app.office(code).ok_or(AvailabilityError::UnknownOffice)?;
    let mut errs = FieldErrors::default();
    let from = match from.map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(calendar::local_today(&entry.office, now)),
        Some(s) => errs.take(s.parse::<Date>().map_err(|_| {
            FieldError::new(
                "from",
                "invalid_date",
                "Escriba la fecha como AAAA-MM-DD.",
                "Write the date as YYYY-MM-DD.",
            )
        })),
    };
    let days = days.unwrap_or(7);
    if days == 0 || days > calendar::QUERY_DAYS_MAX {
        errs.push(FieldError::new(
            "days",
            "invalid_days",
            "Pida de 1 a 62 días.",
            "Ask for 1 to 62 days.",
        ));
    }
    match (from, errs.is_empty()) {
        (Some(from), true) => Ok((entry, from, days)),
        _ => Err(AvailabilityError::Invalid(errs)),
    }
}

/// `days` days of an office's calendar from `from` (the office's today if none).
pub async fn office_days(
    app: &App,
    code: &str,
    from: Option<&str>,
    days: Option<u32>,
    now: Timestamp,
) -> Result<(Arc<OfficeEntry>, Vec<DayView>), AvailabilityError> {
    let (entry, from, days) = office_range(app, code, from, days, now)?;
    let mut out = Vec::new();
    for date in calendar::dates(from, days) {
        out.push(office_day(app, &entry, date, now).await?);
    }
    Ok((entry, out))
}

/// The earliest slot with `seats` free at each office matching the filters,
/// soonest first.
pub async fn earliest(
    app: &App,
    city: Option<&str>,
    country: Option<&str>,
    seats: u32,
    limit: usize,
    now: Timestamp,
) -> Result<Vec<(Arc<OfficeEntry>, SlotView)>, StoreError> {
    let norm = |s: &str| s.trim().to_lowercase();
    let mut out = Vec::new();
    for entry in app.offices().values() {
        if city.is_some_and(|c| norm(c) != norm(&entry.office.city))
            || country.is_some_and(|c| norm(c) != norm(&entry.office.country))
        {
            continue;
        }
        let today = calendar::local_today(&entry.office, now);
        let days = entry.office.horizon_days + 1;
        for date in calendar::dates(today, days) {
            let day = office_day(app, entry, date, now).await?;
            if let Some(s) = day.slots.into_iter().find(|s| s.remaining >= seats) {
                out.push((entry.clone(), s));
                break;
            }
        }
    }
    out.sort_by_key(|(_, s)| s.start);
    out.truncate(limit.min(EARLIEST_RESULTS_MAX));
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("unknown office")]
    UnknownOffice,
    #[error("invalid request: {0}")]
    Invalid(FieldErrors),
    #[error("the slot is full")]
    SlotFull,
    #[error("a person already holds an active booking")]
    AlreadyBooked,
    #[error("the idempotency key was used for another request")]
    IdempotencyKeyReused,
    /// One of the people was named in too many bookings lately: the wait
    /// before another is accepted.
    #[error("too many bookings for one person; retry after {0:?}")]
    RateLimited(std::time::Duration),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CryptoError> for BookError {
    fn from(e: CryptoError) -> Self {
        BookError::Internal(e.to_string())
    }
}

impl From<StoreError> for BookError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => BookError::Unavailable(m),
            other => BookError::Internal(other.to_string()),
        }
    }
}

/// The answer to a successful booking.
#[derive(Clone, Debug)]
pub struct Booked {
    pub code: String,
    pub manage_token: String,
    /// True when an earlier request with the same Idempotency-Key made it.
    pub replayed: bool,
    /// The booking as made (none for a replay, which the caller reads back).
    pub view: Option<BookingView>,
    /// The pool its seats came from.
    pub pool: Pool,
}

/// Why a citizen asks for priority access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorityReason {
    /// Declared by the citizen.
    Disability,
    /// Checked: an applicant is [`PRIORITY_AGE_YEARS`] or older.
    Older,
}

impl PriorityReason {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "disability" => Some(PriorityReason::Disability),
            "older" => Some(PriorityReason::Older),
            _ => None,
        }
    }
}

/// Which pool a booking asks its seats from.
#[derive(Clone, Debug)]
pub enum SeatClaim {
    /// A citizen's booking: the online pool.
    Online,
    /// A citizen with priority access: the online pool, else the priority pool.
    Priority(PriorityReason),
    /// A supervisor's grant from the urgent pool, with the case's evidence.
    Urgent { actor: Actor, evidence: String },
}

impl SeatClaim {
    /// The pools to try, in order.
    fn pools(&self) -> &'static [Pool] {
        match self {
            SeatClaim::Online => &[Pool::Online],
            SeatClaim::Priority(_) => &[Pool::Online, Pool::Priority],
            SeatClaim::Urgent { .. } => &[Pool::Urgent],
        }
    }
}

/// The field error for a start time the calendar refuses.
pub fn slot_error(e: &SlotError) -> FieldError {
    let (code, es, en) = match e {
        SlotError::InPast => (
            "slot_in_past",
            "Esa hora ya pasó. Elija otra.",
            "That time has passed. Choose another.",
        ),
        SlotError::BeyondHorizon(_) => (
            "beyond_horizon",
            "Esa fecha aún no está abierta para citas. Elija una más cercana.",
            "That date is not open for booking yet. Choose an earlier one.",
        ),
        SlotError::Closed(ClosedReason::NoHours) => (
            "office_closed",
            "La oficina no atiende ese día.",
            "The office is closed that day.",
        ),
        SlotError::Closed(ClosedReason::Holiday(_) | ClosedReason::HostHoliday(_)) => (
            "holiday",
            "Ese día es festivo y la oficina está cerrada.",
            "That day is a public holiday; the office is closed.",
        ),
        SlotError::Closed(ClosedReason::Closure(_)) => (
            "office_closed",
            "La oficina está cerrada ese día.",
            "The office is closed that day.",
        ),
        SlotError::NotASlot => (
            "not_a_slot",
            "La oficina no tiene una cita a esa hora (fuera del horario o entre turnos). Elija una hora de la lista.",
            "The office has no appointment at that time (outside opening hours or between slots). Choose a time from the list.",
        ),
    };
    FieldError::new("start", code, es, en)
}

fn validate_idempotency_key(key: Option<&str>) -> Result<Option<String>, BookError> {
    let Some(k) = key else { return Ok(None) };
    if k.is_empty()
        || k.len() > IDEMPOTENCY_KEY_CHARS_MAX
        || !k.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(BookError::Invalid(FieldErrors(vec![FieldError::new(
            "Idempotency-Key",
            "invalid_idempotency_key",
            "La cabecera Idempotency-Key debe tener de 1 a 128 caracteres visibles.",
            "The Idempotency-Key header must have 1 to 128 visible characters.",
        )])));
    }
    Ok(Some(k.to_string()))
}

fn canonical(office: &str, input: &BookingInput) -> String {
    let mut s = format!(
        "{office}\n{}\n{}\n{}\n",
        input.start.trim(),
        input.email.trim(),
        input.phone.as_deref().unwrap_or("")
    );
    for a in &input.applicants {
        s.push_str(&format!(
            "{}|{}|{}|{}|{}\n",
            a.document_type, a.document_number, a.surnames, a.given_names, a.birth_date
        ));
    }
    s
}

/// Books a slot for one to five people, all seats or none, from the online
/// pool.
pub async fn book(
    app: &App,
    office_code: &str,
    input: &BookingInput,
    idempotency_key: Option<&str>,
    lang: Lang,
    now: Timestamp,
) -> Result<Booked, BookError> {
    book_from(
        app,
        office_code,
        input,
        idempotency_key,
        &SeatClaim::Online,
        lang,
        now,
    )
    .await
}

/// A supervisor books an urgent seat, with the case's evidence (sealed, and
/// the grant audited in the booking's transaction).
pub async fn book_urgent(
    app: &App,
    actor: &Actor,
    office_code: &str,
    input: &BookingInput,
    evidence: &str,
    lang: Lang,
    now: Timestamp,
) -> Result<Booked, BookError> {
    let evidence = evidence.trim();
    if evidence.is_empty() || evidence.chars().count() > EVIDENCE_CHARS_MAX {
        return Err(BookError::Invalid(FieldErrors(vec![FieldError::new(
            "evidence",
            "invalid_evidence",
            "Describa la evidencia del caso urgente (de 1 a 2000 caracteres).",
            "Describe the urgent case's evidence (1 to 2000 characters).",
        )])));
    }
    let claim = SeatClaim::Urgent {
        actor: actor.clone(),
        evidence: evidence.to_string(),
    };
    book_from(app, office_code, input, None, &claim, lang, now).await
}

/// Whether some applicant is [`PRIORITY_AGE_YEARS`] or older on `today`.
fn has_older_applicant(req: &BookingRequest, today: Date) -> bool {
    let years = pasaporte_core::jiff::Span::new().years(PRIORITY_AGE_YEARS);
    req.applicants
        .iter()
        .any(|a| a.birth_date.checked_add(years).is_ok_and(|d| d <= today))
}

/// Books a slot from the pools `claim` names, trying each in turn while the
/// previous one is full.
pub async fn book_from(
    app: &App,
    office_code: &str,
    input: &BookingInput,
    idempotency_key: Option<&str>,
    claim: &SeatClaim,
    lang: Lang,
    now: Timestamp,
) -> Result<Booked, BookError> {
    let entry = app.office(office_code).ok_or(BookError::UnknownOffice)?;
    let key = validate_idempotency_key(idempotency_key)?;
    let today = calendar::local_today(&entry.office, now);
    let req = parse_request(input, today).map_err(BookError::Invalid)?;
    if matches!(claim, SeatClaim::Priority(PriorityReason::Older))
        && !has_older_applicant(&req, today)
    {
        return Err(BookError::Invalid(FieldErrors(vec![FieldError::new(
            "priority",
            "not_older",
            "La atención prioritaria por edad es para solicitantes de 60 años o más.",
            "Priority access by age is for applicants aged 60 or over.",
        )])));
    }
    let slot = calendar::find_slot(&entry.office, &entry.closures, req.start, now)
        .map_err(|e| BookError::Invalid(FieldErrors(vec![slot_error(&e)])))?;
    // A ballot release gives the online seats of its days; urgent and
    // priority seats are not part of it.
    if matches!(claim, SeatClaim::Online) {
        let day = calendar::local_today(&entry.office, slot.start);
        if let Some(e) = crate::ballot::live_refusal(app, office_code, day).await? {
            return Err(BookError::Invalid(FieldErrors(vec![e])));
        }
    }
    let split = entry.policy.shares.split(slot.capacity);
    let keys = &app.keys;
    // The id first: every value is sealed for its row. It is kept across
    // the attempts below (each either writes the booking or writes nothing).
    let id = uuid::Uuid::now_v7().to_string();
    let applicants = seal_applicants(keys, &id, &req.applicants)?;
    // Against scripts that book, cancel and book again for one person:
    // counted per person named, whatever address the request comes from.
    for a in &applicants {
        app.limits
            .check_identity(&a.doc_key)
            .map_err(BookError::RateLimited)?;
    }
    // The claim is part of the request: the same key with another priority
    // is another request. Online bookings hash as before pools existed.
    let claim_text = match claim {
        SeatClaim::Online => "",
        SeatClaim::Priority(PriorityReason::Disability) => "priority:disability\n",
        SeatClaim::Priority(PriorityReason::Older) => "priority:older\n",
        SeatClaim::Urgent { .. } => "urgent\n",
    };
    let idempotency = key.map(|k| {
        let text = format!("{}{claim_text}", canonical(office_code, input));
        (k, keys.request_digest(&text))
    });
    let email_enc = keys.seal(at::booking_email(&id), req.email.as_str())?;
    let phone_enc = req
        .phone
        .as_ref()
        .map(|p| keys.seal(at::booking_phone(&id), p.as_str()))
        .transpose()?;
    let (evidence_enc, urgent_actor) = match claim {
        SeatClaim::Urgent { actor, evidence } => (
            Some(keys.seal(at::booking_evidence(&id), evidence)?),
            Some(actor),
        ),
        SeatClaim::Online | SeatClaim::Priority(_) => (None, None),
    };
    let pools = claim.pools();
    for (i, &pool) in pools.iter().enumerate() {
        let last = i + 1 == pools.len();
        let capacity = split.get(pool);
        match book_attempts(
            app,
            &id,
            &entry,
            &req,
            &slot,
            (pool, capacity),
            &applicants,
            (&email_enc, &phone_enc),
            &idempotency,
            (&evidence_enc, urgent_actor),
            lang,
            now,
        )
        .await
        {
            Err(BookError::SlotFull) if !last => continue,
            r => return r,
        }
    }
    Err(BookError::SlotFull)
}

/// The applicants' rows of booking `booking_id`, each value sealed for its
/// position (ballot requests are bookings too).
pub fn seal_applicants(
    keys: &Keyring,
    booking_id: &str,
    people: &[pasaporte_core::booking::Applicant],
) -> Result<Vec<ApplicantRow>, CryptoError> {
    let mut rows = Vec::with_capacity(people.len());
    for (i, a) in (0u32..).zip(people) {
        rows.push(ApplicantRow {
            doc_key: keys.person_key(&a.document.identity_text()),
            document_type: a.document.kind.as_str().to_string(),
            document_number_enc: keys.seal(
                at::applicant_document_number(booking_id, i),
                a.document.number.as_str(),
            )?,
            surnames_enc: keys.seal(at::applicant_surnames(booking_id, i), a.surnames.as_str())?,
            given_names_enc: keys.seal(
                at::applicant_given_names(booking_id, i),
                a.given_names.as_str(),
            )?,
            birth_date_enc: keys.seal(
                at::applicant_birth_date(booking_id, i),
                &a.birth_date.to_string(),
            )?,
        });
    }
    Ok(rows)
}

/// One pool's try: the write, again with a fresh code if the code is taken.
#[allow(clippy::too_many_arguments)]
async fn book_attempts(
    app: &App,
    id: &str,
    entry: &Arc<OfficeEntry>,
    req: &BookingRequest,
    slot: &calendar::Slot,
    (pool, capacity): (Pool, u32),
    applicants: &[ApplicantRow],
    (email_enc, phone_enc): (&String, &Option<String>),
    idempotency: &Option<(String, String)>,
    (evidence_enc, urgent_actor): (&Option<String>, Option<&Actor>),
    lang: Lang,
    now: Timestamp,
) -> Result<Booked, BookError> {
    let keys = &app.keys;
    let office_code = entry.office.code.as_str();
    for _ in 0..CODE_ATTEMPTS_MAX {
        let id = id.to_string();
        let code = ConfirmationCode::from_random(random_bytes::<CODE_LEN>()?).to_string();
        let token = keys.manage_token(&id);
        let mail = mail::booking_mail(
            app,
            MailKind::Confirmed,
            lang,
            &entry.office,
            &id,
            &code,
            &token,
            slot.start,
            slot.end,
            req.email.as_str(),
            now,
        )?;
        let op = WriteOp::Book(NewBooking {
            // A supervisor's urgent grant is theirs; any other booking the
            // citizen's own.
            actor: urgent_actor.cloned().unwrap_or_else(|| citizen(&id)),
            id: id.clone(),
            code: code.clone(),
            office: office_code.to_string(),
            start_ms: slot.start.as_millisecond(),
            pool,
            capacity,
            applicants: applicants.to_vec(),
            email_enc: email_enc.clone(),
            phone_enc: phone_enc.clone(),
            now_ms: now.as_millisecond(),
            idempotency: idempotency.clone(),
            mail,
            urgent: evidence_enc.as_ref().zip(urgent_actor).map(|(enc, a)| {
                let mut audit = AuditEvent::by(
                    a,
                    now.as_millisecond(),
                    "booking.urgent_granted",
                    office_code,
                    &id,
                );
                // Counts only: the evidence itself is personal and stays sealed.
                audit.detail = format!("seats={}", req.seats());
                Box::new(UrgentGrant {
                    evidence_enc: enc.clone(),
                    audit,
                })
            }),
        });
        return match app.writer.submit(op).await {
            Ok(WriteOutcome::Booked { code }) => {
                // The response is built from what was just written: no read back.
                let view = BookingView {
                    code: code.clone(),
                    office: entry.clone(),
                    start: slot.start,
                    end: slot.end,
                    seats: req.seats(),
                    active: true,
                    status: "active".into(),
                    email: req.email.as_str().to_string(),
                    phone: req.phone.as_ref().map(|p| p.as_str().to_string()),
                    applicants: req
                        .applicants
                        .iter()
                        .map(|a| ApplicantView {
                            document_type: a.document.kind,
                            document_number_masked: mask(a.document.number.as_str()),
                            surnames: a.surnames.as_str().to_string(),
                            given_names: a.given_names.as_str().to_string(),
                            birth_date: a.birth_date.to_string(),
                        })
                        .collect(),
                    manage_token: token.clone(),
                    pool,
                    id,
                };
                Ok(Booked {
                    code,
                    manage_token: token,
                    replayed: false,
                    view: Some(view),
                    pool,
                })
            }
            Ok(WriteOutcome::Replayed { code }) => {
                let b = app.store.booking_by_code(&code).await?;
                Ok(Booked {
                    code,
                    manage_token: keys.manage_token(&b.id),
                    replayed: true,
                    view: None,
                    pool: b.pool,
                })
            }
            Ok(other) => Err(BookError::Internal(format!("unexpected outcome {other:?}"))),
            Err(WriteError::CodeTaken) => continue,
            Err(WriteError::SlotFull) => Err(BookError::SlotFull),
            Err(WriteError::AlreadyBooked) => Err(BookError::AlreadyBooked),
            Err(WriteError::IdempotencyKeyReused) => Err(BookError::IdempotencyKeyReused),
            Err(WriteError::Store(e)) => Err(e.into()),
            Err(e @ (WriteError::NotActive | WriteError::SameSlot)) => {
                Err(BookError::Internal(e.to_string()))
            }
        };
    }
    Err(BookError::Internal("no free confirmation code".into()))
}

/// The citizen holding booking `id`, as the audit trail names them: by the
/// booking's id, never by a document number or a name.
pub(crate) fn citizen(id: &str) -> Actor {
    Actor {
        id: id.to_string(),
        role: pasaporte_core::application::Role::Citizen,
    }
}

/// One applicant as shown to the booking's holder: the document number masked.
#[derive(Clone, Debug)]
pub struct ApplicantView {
    pub document_type: DocumentType,
    pub document_number_masked: String,
    pub surnames: String,
    pub given_names: String,
    pub birth_date: String,
}

#[derive(Clone, Debug)]
pub struct BookingView {
    pub code: String,
    pub office: Arc<OfficeEntry>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub seats: u32,
    pub active: bool,
    /// As stored: `active`, `checked_in`, `no_show` or `cancelled`.
    pub status: String,
    pub email: String,
    pub phone: Option<String>,
    pub applicants: Vec<ApplicantView>,
    pub manage_token: String,
    /// The pool its seats came from.
    pub pool: Pool,
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// Unknown code or wrong token: the same answer for both, so a stranger
    /// learns nothing about which codes exist.
    #[error("no such booking")]
    NotFound,
    #[error("the booking was cancelled")]
    NotActive,
    #[error("invalid request: {0}")]
    Invalid(FieldErrors),
    #[error("the slot is full")]
    SlotFull,
    #[error("the booking is already at that time")]
    SameSlot,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ManageError::NotFound,
            StoreError::Unavailable(m) => ManageError::Unavailable(m),
            other => ManageError::Internal(other.to_string()),
        }
    }
}

impl From<CryptoError> for ManageError {
    fn from(e: CryptoError) -> Self {
        ManageError::Internal(e.to_string())
    }
}

fn mask(number: &str) -> String {
    let n = number.chars().count();
    number
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '•' } else { c })
        .collect()
}

/// The booking `code`, for the holder of its manage token.
/// The booking behind `code` when `token` is its own, else not found: an
/// unknown code and a wrong token get the same answer after the same work
/// (one read, one token derived and compared). The HTTP layer counts each
/// not-found against the client's rate limit (`http::limit_client`).
pub async fn own_booking(app: &App, code: &str, token: &str) -> Result<BookingRow, ManageError> {
    let row = match ConfirmationCode::parse(code) {
        Some(code) => match app.store.booking_by_code(code.as_str()).await {
            Ok(row) => Some(row),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let id = row.as_ref().map(|r| r.id.as_str());
    if !app.keys.check_manage_token_of(id, token) {
        return Err(ManageError::NotFound);
    }
    row.ok_or(ManageError::NotFound)
}

pub async fn view(app: &App, code: &str, token: &str) -> Result<BookingView, ManageError> {
    let row = own_booking(app, code, token).await?;
    let office = app.office(&row.office).ok_or(ManageError::NotFound)?;
    let k = &app.keys;
    let start = Timestamp::from_millisecond(row.start_ms)
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let end = start
        .checked_add(SignedDuration::from_mins(i64::from(
            office.office.slot_minutes,
        )))
        .map_err(|e| ManageError::Internal(e.to_string()))?;
    let mut applicants = Vec::new();
    let b = row.id.as_str();
    for (i, a) in (0u32..).zip(&row.applicants) {
        applicants.push(ApplicantView {
            document_type: DocumentType::parse(&a.document_type)
                .ok_or(ManageError::Internal("bad document type".into()))?,
            document_number_masked: mask(
                &k.open(at::applicant_document_number(b, i), &a.document_number_enc)?,
            ),
            surnames: k.open(at::applicant_surnames(b, i), &a.surnames_enc)?,
            given_names: k.open(at::applicant_given_names(b, i), &a.given_names_enc)?,
            birth_date: k.open(at::applicant_birth_date(b, i), &a.birth_date_enc)?,
        });
    }
    Ok(BookingView {
        code: row.code,
        office,
        start,
        end,
        seats: row.seats,
        // A displaced booking (its office closed) waits for the citizen's
        // choice: it can be moved or cancelled like an active one.
        active: row.status == "active" || row.status == "displaced",
        status: row.status.clone(),
        email: k.open(at::booking_email(&row.id), &row.email_enc)?,
        phone: row
            .phone_enc
            .as_deref()
            .map(|p| k.open(at::booking_phone(&row.id), p))
            .transpose()?,
        applicants,
        manage_token: token.to_string(),
        pool: row.pool,
        id: row.id,
    })
}

fn write_error(e: WriteError) -> ManageError {
    match e {
        WriteError::SlotFull => ManageError::SlotFull,
        WriteError::NotActive => ManageError::NotActive,
        WriteError::SameSlot => ManageError::SameSlot,
        WriteError::Store(s) => s.into(),
        other => ManageError::Internal(other.to_string()),
    }
}

/// The booking for its holder, refused if it was cancelled.
async fn active_view(app: &App, code: &str, token: &str) -> Result<BookingView, ManageError> {
    let b = view(app, code, token).await?;
    if !b.active {
        return Err(ManageError::NotActive);
    }
    Ok(b)
}

impl BookingView {
    /// The sealed mail telling the holder about `kind`, for a slot `start..end`.
    fn mail(
        &self,
        app: &App,
        kind: MailKind,
        lang: Lang,
        start: Timestamp,
        end: Timestamp,
        now: Timestamp,
    ) -> Result<pasaporte_store::MailRow, CryptoError> {
        let o = &self.office.office;
        mail::booking_mail(
            app,
            kind,
            lang,
            o,
            &self.id,
            &self.code,
            &self.manage_token,
            start,
            end,
            &self.email,
            now,
        )
    }
}

/// Moves a booking to another slot of the same office. The new seats are held
/// before the old ones are released; if the new slot is full, nothing changes.
pub async fn reschedule(
    app: &App,
    code: &str,
    token: &str,
    start: &str,
    lang: Lang,
    now: Timestamp,
) -> Result<BookingView, ManageError> {
    let b = active_view(app, code, token).await?;
    let start =
        parse_start(start, "start").map_err(|e| ManageError::Invalid(FieldErrors(vec![e])))?;
    let slot = calendar::find_slot(&b.office.office, &b.office.closures, start, now)
        .map_err(|e| ManageError::Invalid(FieldErrors(vec![slot_error(&e)])))?;
    let day = calendar::local_today(&b.office.office, slot.start);
    if let Some(e) = crate::ballot::live_refusal(app, &b.office.office.code, day).await? {
        return Err(ManageError::Invalid(FieldErrors(vec![e])));
    }
    let mail = b.mail(app, MailKind::Rescheduled, lang, slot.start, slot.end, now)?;
    let op = if b.status == "displaced" {
        // No seat to give back: the citizen picks the new one (the store
        // takes the booking's pool share of the whole slot).
        WriteOp::Move {
            actor: citizen(&b.id),
            booking_id: b.id.clone(),
            office: b.office.office.code.clone(),
            start_ms: slot.start.as_millisecond(),
            capacity: slot.capacity,
            now_ms: now.as_millisecond(),
            mail,
        }
    } else {
        // The booking keeps its pool: its share of the new slot.
        WriteOp::Reschedule {
            actor: citizen(&b.id),
            booking_id: b.id.clone(),
            start_ms: slot.start.as_millisecond(),
            capacity: b.office.policy.shares.split(slot.capacity).get(b.pool),
            now_ms: now.as_millisecond(),
            mail,
        }
    };
    let moved = matches!(op, WriteOp::Move { .. });
    app.writer.submit(op).await.map_err(write_error)?;
    if moved {
        app.availability.clear();
    }
    view(app, code, token).await
}

/// Cancels a booking and frees its seats.
pub async fn cancel(
    app: &App,
    code: &str,
    token: &str,
    lang: Lang,
    now: Timestamp,
) -> Result<BookingView, ManageError> {
    let b = active_view(app, code, token).await?;
    let op = WriteOp::Cancel {
        actor: citizen(&b.id),
        booking_id: b.id.clone(),
        now_ms: now.as_millisecond(),
        mail: b.mail(app, MailKind::Cancelled, lang, b.start, b.end, now)?,
    };
    app.writer.submit(op).await.map_err(write_error)?;
    view(app, code, token).await
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown office")]
    UnknownOffice,
    #[error("invalid policy: {0}")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sets an office's release mode and capacity split (audited), then reloads
/// the offices so that calendars and bookings use it at once. Seats already
/// booked stay; a pool that shrank below its bookings takes no new ones.
pub async fn set_office_policy(
    app: &App,
    actor: &Actor,
    office: &str,
    mode: &str,
    (online, urgent, walk_in, priority): (u32, u32, u32, u32),
    now: Timestamp,
) -> Result<pasaporte_core::shares::OfficePolicy, PolicyError> {
    use pasaporte_core::shares::{OfficePolicy, ReleaseMode, Shares};
    if app.office(office).is_none() {
        return Err(PolicyError::UnknownOffice);
    }
    let mut errs = FieldErrors::default();
    let mode = errs.take(ReleaseMode::parse(mode.trim()).ok_or_else(|| {
        FieldError::new(
            "release_mode",
            "unknown_release_mode",
            "El modo de asignación es live o ballot.",
            "The release mode is live or ballot.",
        )
    }));
    let shares = match Shares::new(online, urgent, walk_in, priority) {
        Ok(s) => Some(s),
        Err(e) => {
            errs.0.extend(e.0);
            None
        }
    };
    let (Some(mode), Some(shares)) = (mode, shares) else {
        return Err(PolicyError::Invalid(errs));
    };
    let policy = OfficePolicy { mode, shares };
    let mut event = AuditEvent::by(
        actor,
        now.as_millisecond(),
        "office.policy_set",
        office,
        office,
    );
    event.detail = format!(
        "mode={} online={online} urgent={urgent} walk_in={walk_in} priority={priority}",
        mode.as_str()
    );
    app.store
        .set_office_policy(office, &policy, &event, now.as_millisecond())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => PolicyError::UnknownOffice,
            other => PolicyError::Store(other),
        })?;
    app.reload_offices().await?;
    Ok(policy)
}
