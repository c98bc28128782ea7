//! The office workflow's use cases: check-in, calling to a counter, walk-ins,
//! no-shows, capture, the registry check, payment, adjudication and the
//! supervisor's decisions. Each reads like its name: open a write
//! transaction, load, ask the core's state machine, save, append the audit
//! event, commit. The audit event is always written in the same transaction
//! as the change it records.
//!
//! Layout: this file holds the shared steps ([`transition`], the error type,
//! sealed identity documents) and the counter's use cases; `workers.rs` runs
//! the ones nobody clicks (no-shows, registry checks, payment references,
//! refunds).

use crate::app::App;
use crate::crypto::{CryptoError, SealedAt, at};
use pasaporte_core::application::{
    Actor, Application, Command, NO_SHOW_GRACE_MINUTES, Role, State, TransitionError,
};
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::calendar;
use pasaporte_core::code::ConfirmationCode;
use pasaporte_core::jiff::{SignedDuration, Timestamp};
use pasaporte_core::office::OfficeKind;
use pasaporte_core::person::{Document, DocumentNumber, DocumentType};
use pasaporte_core::{FieldError, FieldErrors};
use pasaporte_store::{self as store, ApplicationRow, StateChange, StoreError, Tx};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A citizen may check in this long before the appointment (an early bus).
pub const CHECK_IN_EARLY_MINUTES: i64 = 120;
/// Walk-in tickets per counter and day at offices that take walk-ins
/// (ministry and departmental offices; consulates see people by appointment).
pub const WALK_INS_PER_COUNTER_DAY: i64 = 4;
/// A write transaction that lost a race (SQLite busy, a PostgreSQL
/// serialisation or audit-sequence conflict) is retried this many times.
pub const WRITE_ATTEMPTS_MAX: u32 = 6;
/// Counter names are short labels ("Ventanilla 12").
pub const COUNTER_CHARS_MAX: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// Unknown, or outside the offices the person may see: the same answer.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// A business rule refused it; `code` is stable, the messages are for people.
    #[error("{code}")]
    Refused {
        code: &'static str,
        es: &'static str,
        en: &'static str,
    },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A sealed value did not open for the row it was read from (moved
    /// between rows, damaged, or under an unknown key): logged at ERROR by
    /// `Keyring::open` with the place, answered with an opaque 500.
    #[error("{0}")]
    Integrity(String),
}

impl From<StoreError> for WorkError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => WorkError::NotFound,
            StoreError::Unavailable(m) => WorkError::Unavailable(m),
            other => WorkError::Internal(other.to_string()),
        }
    }
}

impl From<CryptoError> for WorkError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity { .. } => WorkError::Integrity(e.to_string()),
            CryptoError::Config(_) | CryptoError::Open | CryptoError::Random => {
                WorkError::Internal(e.to_string())
            }
        }
    }
}

impl WorkError {
    pub fn refused(code: &'static str, es: &'static str, en: &'static str) -> Self {
        WorkError::Refused { code, es, en }
    }

    /// Whether the whole transaction may be tried again.
    fn is_retryable(&self) -> bool {
        matches!(self, WorkError::Unavailable(_))
    }
}

/// Runs `$body` (an async block returning `Result<T, WorkError>` that opens
/// and commits its own transaction) until it succeeds or fails for a reason
/// other than a lost race. A constraint conflict on the audit sequence or a
/// changed version are lost races too.
macro_rules! retrying {
    ($body:expr) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match $body.await {
                Err(e) if e.retryable_race() && attempt < crate::workflow::WRITE_ATTEMPTS_MAX => {
                    tokio::time::sleep(crate::workflow::race_backoff(attempt)).await;
                }
                other => break other,
            }
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use retrying;

/// Back-off between attempts of a write that lost a race: 5, 10, 20... ms.
pub(crate) fn race_backoff(attempt: u32) -> Duration {
    Duration::from_millis(5u64 << attempt.min(8))
}

/// A raw store result inside a transaction body.
pub(crate) type TxResult<T> = Result<T, WorkError>;

impl WorkError {
    pub(crate) fn retryable_race(&self) -> bool {
        self.is_retryable()
            || matches!(self, WorkError::Internal(m) if m.contains("changed by someone else") || m.contains("audit_events"))
    }
}

/// The identity of an applicant as sealed in `applications.identity_enc`.
/// At check-in it holds what the booking said; capture completes it with
/// the civil-registry fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityDoc {
    pub document_type: String,
    pub document_number: String,
    pub surnames: String,
    pub given_names: String,
    pub birth_date: String,
    #[serde(default)]
    pub birth_place: String,
    #[serde(default)]
    pub sex: String,
    #[serde(default)]
    pub nationality: String,
}

impl IdentityDoc {
    /// Seals each field on its own (AES-256-GCM, the application's id, the
    /// column and the field's name as associated data, the current key id),
    /// as a JSON object of sealed strings: a field cannot be moved to
    /// another field or application, and old keys still open.
    pub fn seal(&self, app: &App, application_id: &str) -> Result<String, WorkError> {
        seal_fields(app, at::application_identity(application_id), self)
    }

    pub fn open(app: &App, application_id: &str, sealed: &str) -> Result<Self, WorkError> {
        open_fields(app, at::application_identity(application_id), sealed)
    }
}

/// Seals every string field of `value` separately at `doc.field(name)`.
pub fn seal_fields<T: Serialize>(
    app: &App,
    doc: SealedAt<'_>,
    value: &T,
) -> Result<String, WorkError> {
    let internal = |e: serde_json::Error| WorkError::Internal(e.to_string());
    let serde_json::Value::Object(fields) = serde_json::to_value(value).map_err(internal)? else {
        return Err(WorkError::Internal("sealed documents are objects".into()));
    };
    let mut out = serde_json::Map::new();
    for (name, v) in fields {
        let sealed = match v {
            serde_json::Value::String(text) => {
                serde_json::Value::String(app.keys.seal(doc.field(&name), &text)?)
            }
            serde_json::Value::Null => serde_json::Value::Null,
            other => {
                serde_json::Value::String(app.keys.seal(doc.field(&name), &other.to_string())?)
            }
        };
        out.insert(name, sealed);
    }
    serde_json::to_string(&out).map_err(internal)
}

/// Opens what [`seal_fields`] sealed.
pub fn open_fields<T: serde::de::DeserializeOwned>(
    app: &App,
    doc: SealedAt<'_>,
    sealed: &str,
) -> Result<T, WorkError> {
    let internal = |e: serde_json::Error| WorkError::Internal(e.to_string());
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(sealed).map_err(internal)?;
    let mut out = serde_json::Map::new();
    for (name, v) in fields {
        let open = match v {
            serde_json::Value::String(s) => {
                serde_json::Value::String(app.keys.open(doc.field(&name), &s)?)
            }
            other => other,
        };
        out.insert(name, open);
    }
    serde_json::from_value(serde_json::Value::Object(out)).map_err(internal)
}

/// An applicant's contact as captured (sealed field by field).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContactDoc {
    pub email: String,
    pub phone: Option<String>,
}

impl ContactDoc {
    pub fn open(app: &App, application_id: &str, sealed: &str) -> Result<Self, WorkError> {
        open_fields(app, at::application_contact(application_id), sealed)
    }
}

fn ts(ms: i64) -> Result<Timestamp, WorkError> {
    Timestamp::from_millisecond(ms).map_err(|e| WorkError::Internal(e.to_string()))
}

/// The core's view of a stored application.
pub fn domain(row: &ApplicationRow) -> Result<Application, WorkError> {
    let state = State::parse(&row.state)
        .ok_or_else(|| WorkError::Internal(format!("unknown state '{}'", row.state)))?;
    Ok(Application::restore(
        row.id.clone(),
        row.office.clone(),
        ts(row.appointment_ms)?,
        state,
        ts(row.state_since_ms)?,
    ))
}

/// Saves `next` (from the core) over `row` and appends `event`, in `tx`.
pub async fn save_transition(
    tx: &mut Tx,
    row: &ApplicationRow,
    next: &Application,
    event: &AuditEvent,
    now: Timestamp,
) -> TxResult<()> {
    store::save_state(
        tx,
        &StateChange {
            id: &row.id,
            version: row.version,
            state: next.state().as_str(),
            state_since_ms: next.state_since().as_millisecond(),
            deadline_ms: next.deadline().map(|d| d.as_millisecond()),
            queue: next.queue().as_str(),
            now_ms: now.as_millisecond(),
        },
    )
    .await?;
    store::append_audit_event(tx, event).await?;
    Ok(())
}

/// Loads the application in `tx`, applies `command`, saves and audits it;
/// returns the row as read and the next application. Not committed.
pub async fn transition(
    tx: &mut Tx,
    id: &str,
    command: &Command,
    actor: &Actor,
    now: Timestamp,
) -> TxResult<(ApplicationRow, Application)> {
    let row = store::application_in(tx, id).await?;
    let (next, event) = domain(&row)?.apply(command, actor, now)?;
    save_transition(tx, &row, &next, &event, now).await?;
    Ok((row, next))
}

/// Who may see which office: the signed-in staff member's assignment.
pub trait OfficeScope: Sync {
    fn may_use_office(&self, office: &str) -> bool;

    /// Told when something of `office` was refused to this scope (logged
    /// and counted for a staff member; nothing for the workers).
    fn refused(&self, _office: &str) {}
}

/// Whether `scope` covers `office`; when not, the refusal is reported
/// ([`OfficeScope::refused`]). For checks that refuse a request, not for
/// filtering a list.
pub fn in_scope(scope: &dyn OfficeScope, office: &str) -> bool {
    let ok = scope.may_use_office(office);
    if !ok {
        scope.refused(office);
    }
    ok
}

/// The workers' scope: they act for the whole service.
pub struct AllOffices;

impl OfficeScope for AllOffices {
    fn may_use_office(&self, _office: &str) -> bool {
        true
    }
}

/// How the clerk finds the citizen at check-in.
#[derive(Clone, Debug)]
pub enum Arrival {
    Code(String),
    Document {
        document_type: String,
        document_number: String,
    },
}

/// The applications created by a check-in (one per applicant).
#[derive(Clone, Debug)]
pub struct CheckedIn {
    pub booking_code: String,
    pub application_ids: Vec<String>,
    pub tickets: Vec<String>,
}

/// Finds the booking a citizen arrives with.
async fn find_booking(app: &App, by: &Arrival) -> Result<pasaporte_store::BookingRow, WorkError> {
    let code = match by {
        Arrival::Code(c) => ConfirmationCode::parse(c)
            .ok_or_else(|| {
                WorkError::Invalid(FieldErrors(vec![FieldError::new(
                    "code",
                    "code_invalid",
                    "El código de la cita tiene 8 letras y números, como K7M2Q9XH.",
                    "The booking code has 8 letters and digits, like K7M2Q9XH.",
                )]))
            })?
            .as_str()
            .to_string(),
        Arrival::Document {
            document_type,
            document_number,
        } => {
            let doc = parse_document(document_type, document_number)?;
            let key = app.keys.person_key(&doc.identity_text());
            app.store
                .active_booking_of(&key)
                .await?
                .ok_or(WorkError::NotFound)?
        }
    };
    Ok(app.store.booking_by_code(&code).await?)
}

pub fn parse_document(document_type: &str, number: &str) -> Result<Document, WorkError> {
    let mut errs = FieldErrors::default();
    let kind = DocumentType::parse(document_type.trim());
    if kind.is_none() {
        errs.push(FieldError::new(
            "document_type",
            "document_type_invalid",
            "Elija el tipo de documento.",
            "Choose the document type.",
        ));
    }
    let number = kind.and_then(|k| errs.take(DocumentNumber::parse(k, number, "document_number")));
    match (kind, number) {
        (Some(kind), Some(number)) if errs.is_empty() => Ok(Document { kind, number }),
        _ => Err(WorkError::Invalid(errs)),
    }
}

/// The office's local day of `now`, as `YYYY-MM-DD`.
fn local_day(app: &App, office: &str, now: Timestamp) -> Result<String, WorkError> {
    let entry = app.office(office).ok_or(WorkError::NotFound)?;
    Ok(calendar::local_today(&entry.office, now).to_string())
}

fn ticket(prefix: char, n: i64) -> String {
    format!("{prefix}-{n:03}")
}

/// A citizen with a booking arrives: one application per applicant, each
/// with a waiting-room ticket, in one transaction with their audit events.
pub async fn check_in(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    by: Arrival,
    now: Timestamp,
) -> Result<CheckedIn, WorkError> {
    let booking = find_booking(app, &by).await?;
    if !in_scope(scope, &booking.office) {
        return Err(WorkError::NotFound);
    }
    match booking.status.as_str() {
        "active" => {}
        "checked_in" => {
            return Err(WorkError::refused(
                "already_checked_in",
                "Esta cita ya se registró; las personas están en la fila.",
                "This booking is already checked in; the people are in the queue.",
            ));
        }
        _ => {
            return Err(WorkError::refused(
                "booking_not_active",
                "La cita fue cancelada o se marcó como inasistencia; el ciudadano puede pedir una nueva.",
                "The booking was cancelled or marked a no-show; the citizen may book again.",
            ));
        }
    }
    let appointment = ts(booking.start_ms)?;
    let opens = appointment
        .checked_sub(SignedDuration::from_mins(CHECK_IN_EARLY_MINUTES))
        .unwrap_or(appointment);
    let closes = appointment
        .checked_add(SignedDuration::from_mins(NO_SHOW_GRACE_MINUTES))
        .unwrap_or(appointment);
    if now < opens {
        return Err(WorkError::refused(
            "too_early",
            "La cita es más tarde: el registro abre dos horas antes de la hora de la cita.",
            "The appointment is later: check-in opens two hours before the appointment time.",
        ));
    }
    if now > closes {
        return Err(WorkError::refused(
            "too_late",
            "Pasó el tiempo de espera de la cita (30 minutos); atienda como turno sin cita si la oficina los recibe.",
            "The appointment's grace period (30 minutes) has passed; serve as a walk-in if the office takes them.",
        ));
    }
    let day = local_day(app, &booking.office, now)?;
    // The applications' ids first: each identity is sealed for its row.
    let ids: Vec<String> = booking
        .applicants
        .iter()
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let mut identities = Vec::with_capacity(booking.applicants.len());
    for ((position, a), id) in (0u32..).zip(&booking.applicants).zip(&ids) {
        let k = &app.keys;
        let b = booking.id.as_str();
        identities.push(
            IdentityDoc {
                document_type: a.document_type.clone(),
                document_number: k.open(
                    at::applicant_document_number(b, position),
                    &a.document_number_enc,
                )?,
                surnames: k.open(at::applicant_surnames(b, position), &a.surnames_enc)?,
                given_names: k.open(at::applicant_given_names(b, position), &a.given_names_enc)?,
                birth_date: k.open(at::applicant_birth_date(b, position), &a.birth_date_enc)?,
                ..IdentityDoc::default()
            }
            .seal(app, id)?,
        );
    }
    let tickets = retrying!(async {
        let mut tx = app.store.begin_write().await?;
        store::mark_booking_checked_in(&mut tx, &booking.id, now.as_millisecond())
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => WorkError::refused(
                    "booking_not_active",
                    "La cita ya no está activa (registrada, cancelada o inasistencia).",
                    "The booking is no longer active (checked in, cancelled or a no-show).",
                ),
                other => other.into(),
            })?;
        let mut tickets = Vec::new();
        for (i, a) in booking.applicants.iter().enumerate() {
            let booked =
                Application::booked(ids[i].clone(), booking.office.clone(), appointment, now);
            let (next, event) = booked.apply(&Command::CheckIn, actor, now)?;
            let n = store::next_ticket(&mut tx, &booking.office, &day).await?;
            let t = ticket('C', n);
            open_application(
                &mut tx,
                NewApplication {
                    booking_id: Some(booking.id.clone()),
                    position: i as i64,
                    doc_key: &a.doc_key,
                    ticket: &t,
                    identity_enc: &identities[i],
                },
                &next,
                &event,
                now,
            )
            .await?;
            tickets.push(t);
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(tickets)
    })?;
    Ok(CheckedIn {
        booking_code: booking.code,
        application_ids: ids,
        tickets,
    })
}

/// The one-live-application-per-person index refused an insert.
fn live_application_conflict(e: StoreError) -> WorkError {
    match e {
        StoreError::Conflict { constraint }
            if constraint.contains("doc_key") || constraint.contains("applications") =>
        {
            WorkError::refused(
                "application_in_progress",
                "Esta persona ya tiene una solicitud en curso; búsquela en la fila o en las colas.",
                "This person already has an application in progress; find it in the queue or the work lists.",
            )
        }
        other => other.into(),
    }
}

/// What differs between a booked applicant's application and a walk-in's.
struct NewApplication<'a> {
    booking_id: Option<String>,
    position: i64,
    doc_key: &'a str,
    ticket: &'a str,
    identity_enc: &'a str,
}

/// Inserts the application `next` (just checked in) with its sealed
/// identity, and appends `event`, in `tx`.
async fn open_application(
    tx: &mut Tx,
    new: NewApplication<'_>,
    next: &Application,
    event: &AuditEvent,
    now: Timestamp,
) -> TxResult<()> {
    store::insert_application(
        tx,
        &ApplicationRow {
            id: next.id().to_string(),
            booking_id: new.booking_id,
            position: new.position,
            office: next.office().to_string(),
            appointment_ms: next.appointment_at().as_millisecond(),
            doc_key: new.doc_key.to_string(),
            state: next.state().as_str().into(),
            state_since_ms: now.as_millisecond(),
            deadline_ms: next.deadline().map(|d| d.as_millisecond()),
            queue: next.queue().as_str().into(),
            ticket: new.ticket.to_string(),
            created_ms: now.as_millisecond(),
            ..ApplicationRow::default()
        },
    )
    .await
    .map_err(live_application_conflict)?;
    store::save_identity(tx, next.id(), new.identity_enc).await?;
    store::append_audit_event(tx, event).await?;
    Ok(())
}

/// What a clerk types for a walk-in (no booking).
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct WalkInInput {
    #[schema(schema_with = crate::http::openapi::document_type_enum)]
    pub document_type: String,
    pub document_number: String,
    pub surnames: String,
    pub given_names: String,
    #[schema(schema_with = crate::http::openapi::date_string)]
    pub birth_date: String,
}

/// A walk-in gets a ticket when the office takes walk-ins and today's quota
/// is not used up.
pub async fn walk_in(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    office: &str,
    input: &WalkInInput,
    now: Timestamp,
) -> Result<(String, String), WorkError> {
    let entry = app.office(office).ok_or(WorkError::NotFound)?;
    if !in_scope(scope, office) {
        return Err(WorkError::NotFound);
    }
    if entry.office.kind == OfficeKind::Consulate {
        return Err(WorkError::refused(
            "walk_ins_not_taken",
            "Esta oficina atiende solo con cita.",
            "This office serves by appointment only.",
        ));
    }
    let today = calendar::local_today(&entry.office, now);
    let mut errs = FieldErrors::default();
    let doc = match parse_document(&input.document_type, &input.document_number) {
        Ok(d) => Some(d),
        Err(WorkError::Invalid(e)) => {
            errs.0.extend(e.0);
            None
        }
        Err(other) => return Err(other),
    };
    let surnames = errs.take(pasaporte_core::person::PersonName::parse(
        &input.surnames,
        "surnames",
    ));
    let given = errs.take(pasaporte_core::person::PersonName::parse(
        &input.given_names,
        "given_names",
    ));
    let birth = errs.take(pasaporte_core::person::parse_birth_date(
        &input.birth_date,
        today,
        "birth_date",
    ));
    let (Some(doc), Some(surnames), Some(given), Some(birth)) = (doc, surnames, given, birth)
    else {
        return Err(WorkError::Invalid(errs));
    };
    let doc_key = app.keys.person_key(&doc.identity_text());
    if app.store.active_booking_of(&doc_key).await?.is_some() {
        return Err(WorkError::refused(
            "has_booking",
            "Esta persona tiene una cita: regístrela con su código o documento en «Registrar llegada».",
            "This person has a booking: check them in with its code or document under “Check in”.",
        ));
    }
    let identity = IdentityDoc {
        document_type: doc.kind.as_str().into(),
        document_number: doc.number.as_str().into(),
        surnames: surnames.as_str().into(),
        given_names: given.as_str().into(),
        birth_date: birth.to_string(),
        ..IdentityDoc::default()
    };
    let limit = i64::from(entry.office.counters) * WALK_INS_PER_COUNTER_DAY;
    let day = today.to_string();
    let id = uuid::Uuid::now_v7().to_string();
    let identity = identity.seal(app, &id)?;
    let t = retrying!(async {
        let mut tx = app.store.begin_write().await?;
        // Walk-in numbers have their own counter so that the quota is exact.
        let n = store::next_ticket(&mut tx, office, &format!("{day}/walk-in")).await?;
        if n > limit {
            return Err(WorkError::refused(
                "walk_ins_full",
                "Hoy no quedan turnos sin cita en esta oficina; la persona puede reservar una cita.",
                "No walk-in tickets are left today at this office; the person may book an appointment.",
            ));
        }
        let booked = Application::booked(id.clone(), office.to_string(), now, now);
        let (next, event) = booked.apply(&Command::CheckIn, actor, now)?;
        let t = ticket('T', n);
        let mut event = event;
        event.action = "application.walk_in".into();
        open_application(
            &mut tx,
            NewApplication {
                booking_id: None,
                position: 0,
                doc_key: &doc_key,
                ticket: &t,
                identity_enc: &identity,
            },
            &next,
            &event,
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(t)
    })?;
    Ok((id, t))
}

/// Calls a checked-in applicant to a counter: the named one, or the longest
/// waiting of the office.
pub async fn call_to_counter(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    office: &str,
    application_id: Option<&str>,
    counter: &str,
    now: Timestamp,
) -> Result<ApplicationRow, WorkError> {
    if !in_scope(scope, office) {
        return Err(WorkError::NotFound);
    }
    let counter = counter.trim();
    if counter.is_empty() || counter.chars().count() > COUNTER_CHARS_MAX {
        return Err(WorkError::Invalid(FieldErrors(vec![FieldError::new(
            "counter",
            "counter_invalid",
            "Escriba el nombre de su ventanilla (hasta 40 caracteres).",
            "Type your counter's name (up to 40 characters).",
        )])));
    }
    let id = match application_id {
        Some(id) => id.to_string(),
        None => {
            let waiting = app
                .store
                .applications_in_states(Some(office), &["checked_in"])
                .await?;
            waiting
                .into_iter()
                .filter(|a| a.counter.is_none())
                .min_by_key(|a| a.created_ms)
                .map(|a| a.id)
                .ok_or_else(|| {
                    WorkError::refused(
                        "queue_empty",
                        "No hay nadie esperando.",
                        "Nobody is waiting.",
                    )
                })?
        }
    };
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let row = store::application_in(&mut tx, &id).await?;
        if row.office != office {
            return Err(WorkError::NotFound);
        }
        if row.state != "checked_in" {
            return Err(WorkError::refused(
                "not_waiting",
                "Esta persona ya no está esperando.",
                "This person is no longer waiting.",
            ));
        }
        store::call_to_counter(&mut tx, &id, row.version, counter, now.as_millisecond()).await?;
        let mut event = AuditEvent::by(
            actor,
            now.as_millisecond(),
            "application.call_to_counter",
            office,
            &id,
        );
        event.detail = counter.to_string();
        store::append_audit_event(&mut tx, &event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(row)
    })
}

/// Marks bookings whose grace period passed without a check-in as no-shows
/// (the no-show worker's step); returns how many.
pub async fn mark_no_shows(app: &App, now: Timestamp, limit: u32) -> Result<usize, WorkError> {
    let cutoff = now
        .checked_sub(SignedDuration::from_mins(NO_SHOW_GRACE_MINUTES))
        .map_err(|e| WorkError::Internal(e.to_string()))?;
    let due = app
        .store
        .bookings_past_grace(cutoff.as_millisecond(), limit)
        .await?;
    let system = Actor {
        id: "system:no-show".into(),
        role: Role::System,
    };
    let mut marked = 0;
    for booking_id in due {
        let r = retrying!(async {
            let mut tx = app.store.begin_write().await?;
            let (id, office, start_ms, status) =
                store::booking_for_check_in(&mut tx, &booking_id).await?;
            if status != "active" {
                return Ok::<_, WorkError>(false);
            }
            let booked = Application::booked(id.clone(), office, ts(start_ms)?, ts(start_ms)?);
            let (_, mut event) = booked.apply(&Command::MarkNoShow, &system, now)?;
            event.action = "booking.no_show".into();
            store::mark_booking_no_show(&mut tx, &id, now.as_millisecond()).await?;
            store::append_audit_event(&mut tx, &event).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(true)
        });
        match r {
            Ok(true) => marked += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "marking a no-show failed; next round retries"),
        }
    }
    if marked > 0 {
        app.availability.clear();
    }
    Ok(marked)
}

/// A person's decision on an application (approve, reject, flag, cancel,
/// override an unavailable registry), checked by the state machine and
/// recorded with its audit event. Ending an application frees the person
/// to book again.
pub async fn decide(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    id: &str,
    command: Command,
    now: Timestamp,
) -> Result<Application, WorkError> {
    decide_if(app, actor, scope, id, command, None, now).await
}

/// [`decide`], refused unless the application is in `expected` (checked in
/// the transaction, so a concurrent change cannot slip in between).
async fn decide_if(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    id: &str,
    command: Command,
    expected: Option<State>,
    now: Timestamp,
) -> Result<Application, WorkError> {
    let next = retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let row = store::application_in(&mut tx, id).await?;
        if !in_scope(scope, &row.office) {
            return Err(WorkError::NotFound);
        }
        if let Some(expected) = expected
            && row.state != expected.as_str()
        {
            return Err(TransitionError::NotAllowedFrom {
                state: State::parse(&row.state).unwrap_or(expected),
                command: command.kind(),
            }
            .into());
        }
        // Read inside the transaction: a payment confirmed a moment ago
        // must be refunded if this cancels the application.
        let reference = store::payment_reference_of_in(&mut tx, id).await?;
        let (next, event) = domain(&row)?.apply(&command, actor, now)?;
        save_transition(&mut tx, &row, &next, &event, now).await?;
        after_transition(&mut tx, &row, &next, now).await?;
        // A paid application that ends without a passport is refunded: the
        // refund worker asks the gateway; its callback completes it.
        if let Some(r) = &reference
            && r.status == pasaporte_core::fees::PaymentStatus::Paid
            && next.state() == State::Cancelled
        {
            store::mark_refund_pending(&mut tx, &r.reference).await?;
            let mut e = AuditEvent::by(
                actor,
                now.as_millisecond(),
                "payment.refund_requested",
                &row.office,
                id,
            );
            e.detail = format!("{} {}", r.amount_minor, r.currency);
            store::append_audit_event(&mut tx, &e).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(next)
    })?;
    Ok(next)
}

/// A paid application that no automatic check flagged is approved (by a
/// clerk or a supervisor). A flagged one is a supervisor's decision and goes
/// through [`decide`] under `Action::Decide` (which asks for a fresh
/// sign-in): this route cannot be used to skip that.
pub async fn approve(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    id: &str,
    now: Timestamp,
) -> Result<Application, WorkError> {
    let row = app.store.application(id).await?;
    if !in_scope(scope, &row.office) {
        return Err(WorkError::NotFound);
    }
    if row.state != State::Paid.as_str() {
        let state = State::parse(&row.state)
            .ok_or_else(|| WorkError::Internal(format!("unknown state '{}'", row.state)))?;
        return Err(TransitionError::NotAllowedFrom {
            state,
            command: pasaporte_core::application::CommandKind::Approve,
        }
        .into());
    }
    decide_if(
        app,
        actor,
        scope,
        id,
        Command::Approve,
        Some(State::Paid),
        now,
    )
    .await
}

/// What follows a transition in the same transaction: an ended
/// application frees the person's hold.
pub async fn after_transition(
    tx: &mut Tx,
    row: &ApplicationRow,
    next: &Application,
    _now: Timestamp,
) -> TxResult<()> {
    match next.state() {
        State::Rejected | State::Cancelled | State::NoShow | State::Issued | State::Annulled => {
            store::release_person(tx, &row.doc_key).await?;
        }
        State::Booked
        | State::CheckedIn
        | State::Captured
        | State::PendingRegistry
        | State::RegistryMismatch
        | State::RegistryVerified
        | State::Paid
        | State::Flagged
        | State::Approved
        | State::InProduction
        | State::ReadyForPickup => {}
    }
    Ok(())
}

/// One application as staff see it: the row, the identity opened, and its
/// history from the audit trail.
#[derive(Clone, Debug)]
pub struct ApplicationView {
    pub row: ApplicationRow,
    pub identity: Option<IdentityDoc>,
    pub history: Vec<AuditEvent>,
}

/// Reads one application for a person allowed to see its office.
pub async fn view_application(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    id: &str,
    now: Timestamp,
) -> Result<ApplicationView, WorkError> {
    let row = app.store.application(id).await?;
    if !in_scope(scope, &row.office) {
        return Err(WorkError::NotFound);
    }
    let identity = row
        .identity_enc
        .as_deref()
        .map(|s| IdentityDoc::open(app, &row.id, s))
        .transpose()?;
    let history = app.store.audit_events_of(id).await?;
    record_read(app, actor, &row.office, id, store::READ_ACTIONS[0], now).await;
    Ok(ApplicationView {
        row,
        identity,
        history,
    })
}

/// Records that `actor` read application `id`'s personal data (`action`, one
/// of [`store::READ_ACTIONS`]): who, which application, its office, when;
/// nothing of what was shown. One small transaction of its own, after the
/// reads (a read takes no lock for it); a failure to record is logged and
/// the read still answered, as for the sign-in events.
pub async fn record_read(
    app: &App,
    actor: &Actor,
    office: &str,
    id: &str,
    action: &str,
    now: Timestamp,
) {
    let event = AuditEvent::by(actor, now.as_millisecond(), action, office, id);
    crate::auth::accounts::append_audit(&app.store, &event).await;
}

/// What a clerk captures at the counter, as a form or JSON with the same
/// flat keys (the keys are the field paths errors name). Everything a
/// string, so that every fault can be named at once.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CaptureForm {
    #[schema(schema_with = crate::http::openapi::passport_type_enum)]
    pub passport_type: String,
    pub surnames: String,
    pub given_names: String,
    #[schema(schema_with = crate::http::openapi::date_string)]
    pub birth_date: String,
    pub birth_place: String,
    pub sex: String,
    pub nationality: String,
    pub email: String,
    pub phone: String,
    #[serde(flatten)]
    pub extras: ExtrasForm,
}

/// The non-identity parts of a capture (fingerprints, reason, consent), as
/// typed; stored sealed once they parse.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ExtrasForm {
    #[serde(rename = "fingerprint.device_id")]
    pub fingerprint_device_id: String,
    #[serde(rename = "fingerprint.quality")]
    pub fingerprint_quality: String,
    #[serde(rename = "fingerprint.template_sha256")]
    pub fingerprint_template_sha256: String,
    #[serde(rename = "fingerprint.fingers_captured")]
    pub fingerprint_fingers_captured: String,
    #[serde(rename = "fingerprint.captured_at_ms")]
    pub fingerprint_captured_at_ms: String,
    /// `first`, `renewal` or `replacement`.
    pub reason: String,
    pub previous_passport_number: String,
    #[serde(rename = "loss.kind")]
    pub loss_kind: String,
    #[serde(rename = "loss.date")]
    #[schema(schema_with = crate::http::openapi::date_string)]
    pub loss_date: String,
    #[serde(rename = "loss.place")]
    pub loss_place: String,
    #[serde(rename = "loss.police_report")]
    pub loss_police_report: String,
    /// `guardians_present` or `notarised` (minors only).
    pub consent: String,
    #[serde(rename = "guardians[0].document_type")]
    pub guardian0_document_type: String,
    #[serde(rename = "guardians[0].document_number")]
    pub guardian0_document_number: String,
    #[serde(rename = "guardians[0].relationship")]
    pub guardian0_relationship: String,
    #[serde(rename = "guardians[1].document_type")]
    pub guardian1_document_type: String,
    #[serde(rename = "guardians[1].document_number")]
    pub guardian1_document_number: String,
    #[serde(rename = "guardians[1].relationship")]
    pub guardian1_relationship: String,
    pub notarial_reference: String,
}

fn some(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl ExtrasForm {
    fn input(&self) -> pasaporte_core::capture::CaptureExtrasInput {
        use pasaporte_core::capture::{
            CaptureExtrasInput, FingerprintInput, GuardianInput, LossDeclarationInput,
        };
        CaptureExtrasInput {
            fingerprint: FingerprintInput {
                device_id: some(&self.fingerprint_device_id),
                quality: some(&self.fingerprint_quality),
                template_sha256: some(&self.fingerprint_template_sha256),
                fingers_captured: some(&self.fingerprint_fingers_captured),
                captured_at_ms: some(&self.fingerprint_captured_at_ms),
            },
            reason: some(&self.reason),
            previous_passport_number: some(&self.previous_passport_number),
            loss: LossDeclarationInput {
                kind: some(&self.loss_kind),
                date: some(&self.loss_date),
                place: some(&self.loss_place),
                police_report: some(&self.loss_police_report),
            },
            consent: some(&self.consent),
            guardians: vec![
                GuardianInput {
                    document_type: some(&self.guardian0_document_type),
                    document_number: some(&self.guardian0_document_number),
                    relationship: some(&self.guardian0_relationship),
                },
                GuardianInput {
                    document_type: some(&self.guardian1_document_type),
                    document_number: some(&self.guardian1_document_number),
                    relationship: some(&self.guardian1_relationship),
                },
            ],
            notarial_reference: some(&self.notarial_reference),
        }
    }

    /// The previous passport's number named by a renewal or a replacement.
    pub fn previous_passport(&self) -> Option<String> {
        some(&self.previous_passport_number).map(|n| {
            n.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_uppercase()
        })
    }

    pub fn replaces_lost_or_stolen(&self) -> bool {
        self.reason.trim() == "replacement"
    }

    pub fn consent_recorded(&self) -> bool {
        match self.consent.trim() {
            "guardians_present" => some(&self.guardian0_document_number).is_some(),
            "notarised" => some(&self.notarial_reference).is_some(),
            _ => false,
        }
    }
}

/// The stored extras of an application, if captured.
pub fn open_extras(app: &App, row: &ApplicationRow) -> Result<Option<ExtrasForm>, WorkError> {
    row.extras_enc
        .as_deref()
        .map(|s| {
            let json = app.keys.open(at::application_extras(&row.id), s)?;
            serde_json::from_str(&json).map_err(|e| WorkError::Internal(e.to_string()))
        })
        .transpose()
}

/// Keyed hash of a passport number (lost/stolen reports, renewals).
pub fn passport_key(app: &App, number: &str) -> String {
    passport_key_with(&app.keys, number)
}

/// [`passport_key`] with a keyring.
pub fn passport_key_with(keys: &crate::crypto::Keyring, number: &str) -> String {
    keys.person_key(&format!("PASSPORT:{number}"))
}

/// The uploaded images of a capture, as received (JPEG or PNG bytes).
#[derive(Clone, Debug, Default)]
pub struct CaptureFiles {
    pub photo: Vec<u8>,
    pub signature: Vec<u8>,
}

/// A photo or signature the checks refused: its field and what to fix.
#[derive(Debug)]
pub struct ImageFault {
    pub field: &'static str,
    pub code: &'static str,
    pub es: String,
    pub en: String,
}

/// Every fault of a capture: the typed fields' and the images'.
#[derive(Debug, Default)]
pub struct CaptureFaults {
    pub fields: FieldErrors,
    pub images: Vec<ImageFault>,
}

/// Checks the capture of one applicant and moves the application to
/// `captured`: identity as in the civil registry, contact, passport type,
/// portrait and signature (decoded safely, re-encoded without metadata),
/// fingerprint record, and a minor's consent. The registry check is
/// scheduled for now, in the same transaction.
pub async fn capture(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    id: &str,
    form: &CaptureForm,
    files: CaptureFiles,
    now: Timestamp,
) -> Result<Result<Application, CaptureFaults>, WorkError> {
    let CaptureFiles { photo, signature } = files;
    use pasaporte_core::fees::PassportType;
    use pasaporte_core::person::{Email, PersonName, Phone, age_on, parse_birth_date};
    use pasaporte_core::registry::Sex;
    let row = app.store.application(id).await?;
    if !in_scope(scope, &row.office) {
        return Err(WorkError::NotFound);
    }
    let entry = app.office(&row.office).ok_or(WorkError::NotFound)?;
    let today = calendar::local_today(&entry.office, now);
    let mut errs = FieldErrors::default();
    let passport_type = PassportType::parse(form.passport_type.trim());
    if passport_type.is_none() {
        errs.push(FieldError::new(
            "passport_type",
            "passport_type_invalid",
            "Elija el tipo de pasaporte: ordinario, ejecutivo, emergencia o fronterizo.",
            "Choose the passport type: ordinario, ejecutivo, emergencia or fronterizo.",
        ));
    }
    let surnames = errs.take(PersonName::parse(&form.surnames, "surnames"));
    let given = errs.take(PersonName::parse(&form.given_names, "given_names"));
    let birth = errs.take(parse_birth_date(&form.birth_date, today, "birth_date"));
    let birth_place = form
        .birth_place
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if birth_place.is_empty() || birth_place.chars().count() > 100 {
        errs.push(FieldError::new(
            "birth_place",
            "birth_place_invalid",
            "Escriba el lugar de nacimiento como figura en el registro civil (hasta 100 caracteres).",
            "Type the place of birth as the civil registry has it (up to 100 characters).",
        ));
    }
    let sex = Sex::parse(&form.sex);
    if sex.is_none() {
        errs.push(FieldError::new(
            "sex",
            "sex_invalid",
            "Elija el sexo como figura en el registro civil: F, M o X.",
            "Choose the sex as the civil registry has it: F, M or X.",
        ));
    }
    let nationality = form.nationality.trim().to_ascii_uppercase();
    if nationality.len() != 3 || !nationality.bytes().all(|b| b.is_ascii_uppercase()) {
        errs.push(FieldError::new(
            "nationality",
            "nationality_invalid",
            "La nacionalidad es un código de tres letras, como COL.",
            "The nationality is a three-letter code, like COL.",
        ));
    }
    let email = errs.take(Email::parse(&form.email, "email"));
    let phone = if form.phone.trim().is_empty() {
        None
    } else {
        errs.take(Phone::parse(&form.phone, "phone"))
    };
    let minor = birth.is_some_and(|b| age_on(b, today) < 18);
    if let Err(e) =
        pasaporte_core::capture::parse_capture_extras(&form.extras.input(), minor, today)
    {
        errs.0.extend(e.0);
    }
    let images = tokio::task::spawn_blocking(move || {
        (
            crate::photo::check_portrait(&photo),
            crate::photo::check_signature(&signature),
        )
    })
    .await
    .map_err(|e| WorkError::Internal(e.to_string()))?;
    let mut faults = CaptureFaults::default();
    let fault = |field, p: &crate::photo::ImageProblem| ImageFault {
        field,
        code: p.code(),
        es: p.message(crate::i18n::Lang::Es),
        en: p.message(crate::i18n::Lang::En),
    };
    let portrait = match images.0 {
        Ok(p) => Some(p),
        Err(p) => {
            faults.images.push(fault("photo", &p));
            None
        }
    };
    let signed = match images.1 {
        Ok(s) => Some(s),
        Err(p) => {
            faults.images.push(fault("signature", &p));
            None
        }
    };
    let (
        Some(passport_type),
        Some(surnames),
        Some(given),
        Some(birth),
        Some(sex),
        Some(email),
        Some(portrait),
        Some(signed),
    ) = (
        passport_type,
        surnames,
        given,
        birth,
        sex,
        email,
        portrait,
        signed,
    )
    else {
        faults.fields = errs;
        return Ok(Err(faults));
    };
    if !errs.is_empty() {
        faults.fields = errs;
        return Ok(Err(faults));
    }
    let before = row
        .identity_enc
        .as_deref()
        .map(|s| IdentityDoc::open(app, &row.id, s))
        .transpose()?
        .ok_or_else(|| WorkError::Internal("application without identity".into()))?;
    let identity = IdentityDoc {
        document_type: before.document_type,
        document_number: before.document_number,
        surnames: surnames.as_str().into(),
        given_names: given.as_str().into(),
        birth_date: birth.to_string(),
        birth_place,
        sex: sex.as_str().into(),
        nationality,
    }
    .seal(app, id)?;
    let contact = seal_fields(
        app,
        at::application_contact(id),
        &ContactDoc {
            email: email.as_str().into(),
            phone: phone.as_ref().map(|p| p.as_str().into()),
        },
    )?;
    let extras_json =
        serde_json::to_string(&form.extras).map_err(|e| WorkError::Internal(e.to_string()))?;
    let extras = app.keys.seal(at::application_extras(id), &extras_json)?;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let photo_enc = app
        .keys
        .seal(at::application_photo(id), &b64.encode(portrait.png()))?;
    let signature_enc = app
        .keys
        .seal(at::application_signature(id), &b64.encode(signed.png()))?;
    // The chip's portrait, made once here (where a person waits anyway)
    // rather than at each personalisation.
    let chip_jpeg = crate::production::chip_portrait(portrait.png()).map_err(|e| {
        tracing::warn!(error = %e, "portrait not convertible for the chip");
        WorkError::Invalid(FieldErrors(vec![FieldError::new(
            "photo",
            "photo_chip",
            "La foto no se puede convertir para el chip del pasaporte: tome otra.",
            "The photo cannot be converted for the passport's chip: take another.",
        )]))
    })?;
    let chip_portrait_enc = app
        .keys
        .seal(at::chip_portrait(id), &b64.encode(&chip_jpeg))?;
    let lost = form
        .extras
        .replaces_lost_or_stolen()
        .then(|| form.extras.previous_passport())
        .flatten()
        .map(|n| {
            (
                passport_key(app, &n),
                form.extras.loss_kind.trim().to_string(),
            )
        });
    let next = retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let row = store::application_in(&mut tx, id).await?;
        let (next, event) = domain(&row)?.apply(&Command::Capture, actor, now)?;
        store::save_capture(
            &mut tx,
            id,
            row.version,
            &store::CaptureRow {
                passport_type: passport_type.as_str(),
                identity_enc: &identity,
                contact_enc: &contact,
                extras_enc: &extras,
                photo_enc: &photo_enc,
                photo_sha256: portrait.sha256_hex(),
                signature_enc: &signature_enc,
                chip_portrait_enc: &chip_portrait_enc,
            },
        )
        .await?;
        save_transition(&mut tx, &row, &next, &event, now).await?;
        store::schedule_registry_check(&mut tx, id, Some(now.as_millisecond()), 0).await?;
        if let Some((key, kind)) = &lost {
            store::report_passport(&mut tx, key, kind, id, now.as_millisecond()).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(next)
    })?;
    Ok(Ok(next))
}

/// A clerk asks that a verified application's fee be waived (a person in
/// need, a public servant on duty...), with a reason a supervisor reads.
pub async fn request_waiver(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    id: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), WorkError> {
    use pasaporte_core::application::{CommandKind, check_reason};
    let reason = check_reason(CommandKind::Flag, reason)?;
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let row = store::application_in(&mut tx, id).await?;
        if !in_scope(scope, &row.office) {
            return Err(WorkError::NotFound);
        }
        if row.state != State::RegistryVerified.as_str() {
            return Err(WorkError::refused(
                "waiver_not_now",
                "La exoneración se pide cuando la solicitud está verificada y por pagar.",
                "A waiver is asked for when the application is verified and awaiting payment.",
            ));
        }
        store::request_waiver(
            &mut tx,
            &store::WaiverRequest {
                application_id: id.to_string(),
                office_code: row.office.clone(),
                reason: reason.clone(),
                requested_by: actor.id.clone(),
                requested_ms: now.as_millisecond(),
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => WorkError::refused(
                "waiver_pending",
                "Ya hay una solicitud de exoneración para esta solicitud.",
                "A waiver is already requested for this application.",
            ),
            other => other.into(),
        })?;
        let mut event = AuditEvent::by(
            actor,
            now.as_millisecond(),
            "payment.waiver_requested",
            &row.office,
            id,
        );
        event.detail = reason.clone();
        store::append_audit_event(&mut tx, &event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(())
    })
}

/// A supervisor grants or refuses a requested waiver. Granting it counts as
/// the payment: the reference (if one was issued) is marked waived, the
/// application moves to `paid` and the automatic checks run, in one
/// transaction.
pub async fn decide_waiver(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    id: &str,
    approve: bool,
    now: Timestamp,
) -> Result<State, WorkError> {
    let row = app.store.application(id).await?;
    if !in_scope(scope, &row.office) {
        return Err(WorkError::NotFound);
    }
    let facts = crate::workers::facts_of(app, id).await?;
    if let Some(w) = app.store.waiver_of(id).await?
        && w.requested_by == actor.id
        && approve
    {
        return Err(WorkError::refused(
            "waiver_own_request",
            "Una exoneración la aprueba un supervisor distinto de quien la pidió.",
            "A waiver is granted by a supervisor other than the one who asked for it.",
        ));
    }
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let reference = store::payment_reference_of_in(&mut tx, id).await?;
        store::decide_waiver(&mut tx, id, approve, &actor.id, now.as_millisecond())
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } | StoreError::NotFound => WorkError::refused(
                    "no_waiver_requested",
                    "No hay una exoneración pendiente para esta solicitud.",
                    "There is no pending waiver for this application.",
                ),
                other => other.into(),
            })?;
        let row = store::application_in(&mut tx, id).await?;
        let mut event = AuditEvent::by(
            actor,
            now.as_millisecond(),
            if approve {
                "payment.waiver_approved"
            } else {
                "payment.waiver_refused"
            },
            &row.office,
            id,
        );
        event.detail = String::new();
        store::append_audit_event(&mut tx, &event).await?;
        let state = if approve {
            if let Some(r) = &reference {
                store::mark_reference_waived(&mut tx, &r.reference).await?;
            }
            let (_, paid) = transition(&mut tx, id, &Command::PaymentConfirmed, actor, now).await?;
            crate::workers::adjudicate_in(&mut tx, id, &facts, &paid, now).await?;
            store::application_in(&mut tx, id).await?.state
        } else {
            row.state.clone()
        };
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(State::parse(&state).unwrap_or(State::Paid))
    })
}
