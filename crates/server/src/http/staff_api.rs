//! The staff JSON API: the office workflow for counters, supervisors and
//! auditors. Every route names its [`Action`] in [`STAFF_ROUTES`]; each
//! handler asks the signed-in person's session for that action (and office)
//! before calling one use case. Writes need the session's CSRF token in the
//! `x-csrf-token` header.
//!
//! Offices a person is not assigned to answer like unknown ones (404), so a
//! clerk learns nothing about other offices' applications.

use super::routes::{
    ApiRoutes,
    Verb::{Get, Post, Put},
};
use super::{ApiError, ApiJson, AppState, ErrorBody, ReqLang, production_api};
use crate::auth::{Denied, StaffSession, StaffWrite};
use crate::i18n::Lang;
use crate::workflow::{self, Arrival, OfficeScope, WalkInInput, WorkError};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pasaporte_core::application::{Command, State as AppStateKind};
use pasaporte_core::calendar;
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::policy::Action;
use pasaporte_store::ApplicationRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Every staff API route with the action it is checked against: the route
/// matrix test walks this list for every role.
pub const STAFF_ROUTES: &[(Method, &str, Action)] = &[
    (
        Method::GET,
        "/api/v1/staff/offices/{office}/today",
        Action::ViewOfficeDay,
    ),
    (
        Method::POST,
        "/api/v1/staff/offices/{office}/check-ins",
        Action::CheckIn,
    ),
    (
        Method::POST,
        "/api/v1/staff/offices/{office}/walk-ins",
        Action::CheckIn,
    ),
    (
        Method::POST,
        "/api/v1/staff/offices/{office}/calls",
        Action::CheckIn,
    ),
    (
        Method::GET,
        "/api/v1/staff/applications/{id}",
        Action::ViewApplication,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/approve",
        Action::Approve,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/decision",
        Action::Decide,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/registry-override",
        Action::OverrideRegistry,
    ),
    (
        Method::GET,
        "/api/v1/staff/supervisor/queues",
        Action::ViewSupervisorQueues,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/capture",
        Action::Capture,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/waiver",
        Action::TakePayment,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/waiver/decision",
        Action::ApproveWaiver,
    ),
    (
        Method::GET,
        "/api/v1/staff/reconciliation",
        Action::ViewReconciliation,
    ),
    (Method::GET, "/api/v1/staff/audit/verify", Action::ViewAudit),
    (Method::GET, "/api/v1/staff/stock", Action::ViewStock),
    (Method::GET, "/api/v1/staff/orders", Action::ViewProduction),
    (
        Method::POST,
        "/api/v1/staff/orders/{id}/resend",
        Action::ResendOrder,
    ),
    (Method::GET, "/api/v1/staff/vendors", Action::ViewProduction),
    (
        Method::POST,
        "/api/v1/staff/vendors/{id}/state",
        Action::ManageVendors,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/receive",
        Action::HandOver,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/hand-over",
        Action::HandOver,
    ),
    (
        Method::POST,
        "/api/v1/staff/applications/{id}/emergency",
        Action::HandOver,
    ),
    (
        Method::POST,
        "/api/v1/staff/releases",
        Action::ManageReleases,
    ),
    (
        Method::POST,
        "/api/v1/staff/releases/{id}/draw",
        Action::ManageReleases,
    ),
    (
        Method::GET,
        "/api/v1/staff/releases/{id}/signals",
        Action::ViewScalperSignals,
    ),
    (
        Method::PUT,
        "/api/v1/staff/offices/{office}/policy",
        Action::ManageOfficePolicy,
    ),
    (
        Method::POST,
        "/api/v1/staff/offices/{office}/urgent-bookings",
        Action::GrantUrgent,
    ),
    (
        Method::POST,
        "/api/v1/staff/offices/{office}/closures",
        Action::ManageOfficeDays,
    ),
    (
        Method::POST,
        "/api/v1/staff/offices/{office}/capacity-cuts",
        Action::ManageOfficeDays,
    ),
    (
        Method::GET,
        "/api/v1/staff/offices/{office}/displaced",
        Action::ManageOfficeDays,
    ),
];

pub fn routes(app: &AppState) -> ApiRoutes {
    use super::ballot_api as ballot;
    use production_api as production;
    ApiRoutes::new()
        .route(Get, "/api/v1/staff/offices/{office}/today", today)
        .route(Post, "/api/v1/staff/offices/{office}/check-ins", check_in)
        .route(Post, "/api/v1/staff/offices/{office}/walk-ins", walk_in)
        .route(Post, "/api/v1/staff/offices/{office}/calls", call)
        .route(Get, "/api/v1/staff/applications/{id}", application)
        .route(Post, "/api/v1/staff/applications/{id}/approve", approve)
        .route(Post, "/api/v1/staff/applications/{id}/decision", decision)
        .route(
            Post,
            "/api/v1/staff/applications/{id}/registry-override",
            registry_override,
        )
        .route(Get, "/api/v1/staff/supervisor/queues", supervisor_queues)
        .route_with(
            Post,
            "/api/v1/staff/applications/{id}/capture",
            capture,
            |m| m.layer(axum::extract::DefaultBodyLimit::max(CAPTURE_BODY_BYTES_MAX)),
        )
        .route(Post, "/api/v1/staff/applications/{id}/waiver", waiver)
        .route(
            Post,
            "/api/v1/staff/applications/{id}/waiver/decision",
            waiver_decision,
        )
        .route(Get, "/api/v1/staff/reconciliation", reconciliation)
        .route(Get, "/api/v1/staff/audit/verify", audit_verify)
        .route(Get, "/api/v1/staff/stock", stock)
        .route(Get, "/api/v1/staff/orders", production::orders)
        .route(Post, "/api/v1/staff/orders/{id}/resend", production::resend)
        .route(Get, "/api/v1/staff/vendors", production::vendors)
        .route(
            Post,
            "/api/v1/staff/vendors/{id}/state",
            production::vendor_state,
        )
        .route(
            Post,
            "/api/v1/staff/applications/{id}/receive",
            production::receive,
        )
        .route(
            Post,
            "/api/v1/staff/applications/{id}/hand-over",
            production::hand_over,
        )
        .route(
            Post,
            "/api/v1/staff/applications/{id}/emergency",
            production::emergency,
        )
        .route(Post, "/api/v1/staff/releases", ballot::open)
        .route(Post, "/api/v1/staff/releases/{id}/draw", ballot::draw)
        .route(Get, "/api/v1/staff/releases/{id}/signals", ballot::signals)
        .route(Put, "/api/v1/staff/offices/{office}/policy", office_policy)
        .route(
            Post,
            "/api/v1/staff/offices/{office}/urgent-bookings",
            urgent_booking,
        )
        .route(Post, "/api/v1/staff/offices/{office}/closures", close_day)
        .route(
            Post,
            "/api/v1/staff/offices/{office}/capacity-cuts",
            cut_capacity,
        )
        .route(Get, "/api/v1/staff/offices/{office}/displaced", displaced)
        // Every route above is checked against the policy table before its
        // handler runs (and so before its body is read).
        .map(|r| {
            r.route_layer(axum::middleware::from_fn_with_state(
                app.clone(),
                super::policy_gate,
            ))
        })
        .route_with(Post, "/api/v1/payments/callback", payment_callback, |m| {
            m.layer(axum::extract::DefaultBodyLimit::max(
                crate::payments::callback::CALLBACK_BODY_BYTES_MAX,
            ))
        })
        .route_with(
            Post,
            "/api/v1/vendors/callback",
            production::vendor_callback,
            |m| {
                m.layer(axum::extract::DefaultBodyLimit::max(
                    crate::vendors::protocol::EVENT_BODY_BYTES_MAX,
                ))
            },
        )
}

/// The session's offices, for the use cases' scope checks.
pub struct Scope<'a>(pub &'a StaffSession);

impl OfficeScope for Scope<'_> {
    fn may_use_office(&self, office: &str) -> bool {
        self.0.may_use_office(office)
    }

    fn refused(&self, office: &str) {
        crate::auth::refusals::record(
            &self.0.staff_id,
            Some(office),
            crate::auth::refusals::RefusalKind::Object,
        );
    }
}

/// Asks the policy table; turns a refusal into the API's answer.
pub fn authorize(
    staff: &StaffSession,
    lang: Lang,
    action: Action,
    office: Option<&str>,
    now: Timestamp,
) -> Result<(), ApiError> {
    staff
        .authorize(action, office, now.as_millisecond())
        .map_err(|d| denied(lang, d))
}

pub fn denied(lang: Lang, d: Denied) -> ApiError {
    match d {
        Denied::Forbidden => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            lang,
            "Su rol no permite esta acción.",
            "Your role does not allow this action.",
        ),
        Denied::NeedsFreshSignIn => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "reauthentication_required",
            lang,
            "Esta decisión pide su contraseña de nuevo (el último ingreso fue hace más de 10 minutos).",
            "This decision asks for your password again (the last sign-in was over 10 minutes ago).",
        ),
    }
}

/// The API's answer for a use case's error.
pub fn work_error(lang: Lang, e: WorkError) -> ApiError {
    use pasaporte_core::application::TransitionError as T;
    match e {
        WorkError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            lang,
            "No existe, o no pertenece a sus oficinas.",
            "It does not exist, or it is not in your offices.",
        ),
        WorkError::Invalid(errs) => ApiError::invalid(lang, &errs),
        WorkError::Refused { code, es, en } => {
            ApiError::new(StatusCode::CONFLICT, code, lang, es, en)
        }
        WorkError::Transition(t) => {
            let (status, code) = match &t {
                T::NotAllowedFrom { .. } => (StatusCode::CONFLICT, "not_allowed_in_state"),
                T::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
                T::TooEarlyForNoShow { .. } => (StatusCode::CONFLICT, "too_early"),
                T::ReasonRequired { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "reason_required"),
                T::ReasonTooLong { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "reason_too_long"),
                T::ReasonLooksPersonal => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "reason_looks_personal")
                }
                T::ActorIdInvalid { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            };
            let es = transition_es(&t);
            let mut err = ApiError::new(status, code, lang, &es, &t.to_string());
            if code.starts_with("reason") {
                err.fields
                    .push(("reason".into(), code, err.message.clone()));
            }
            err
        }
        WorkError::Unavailable(m) => ApiError::unavailable(lang, &m),
        WorkError::Internal(m) | WorkError::Integrity(m) => ApiError::internal(lang, &m),
    }
}

/// The state machine's refusals in Spanish (the English text is the error's own).
pub fn transition_es(t: &pasaporte_core::application::TransitionError) -> String {
    use pasaporte_core::application::TransitionError as T;
    match t {
        T::NotAllowedFrom { state, command } => format!(
            "Una solicitud en estado «{}» no admite «{}».",
            crate::i18n::state_label(Lang::Es, *state),
            command
        ),
        T::Forbidden { .. } => "Su rol no puede dar este paso en este estado.".into(),
        T::ReasonRequired { .. } => "Escriba el motivo.".into(),
        T::ReasonTooLong { chars, max } => {
            format!("El motivo tiene {chars} caracteres; el máximo es {max}.")
        }
        T::ReasonLooksPersonal => "El motivo parece contener datos personales (un correo o un número largo); describa el caso sin ellos.".into(),
        T::ActorIdInvalid { .. } => "Identificador de usuario no válido.".into(),
        T::TooEarlyForNoShow { .. } => {
            "Aún no termina el tiempo de espera de la cita.".into()
        }
    }
}

/// An application as the staff API shows it (no photo bytes; its hash).
#[derive(Serialize, ToSchema)]
pub struct ApplicationJson {
    pub id: String,
    pub office: String,
    #[schema(schema_with = super::openapi::application_state_enum)]
    pub state: String,
    #[schema(schema_with = super::openapi::queue_enum)]
    pub queue: String,
    /// RFC 3339, UTC: when the current step is overdue.
    pub deadline: Option<String>,
    pub ticket: String,
    pub counter: Option<String>,
    #[schema(value_type = Option<String>)]
    pub passport_type: Option<String>,
    pub flags: Vec<String>,
    pub photo_sha256: Option<String>,
}

pub fn application_json(r: &ApplicationRow) -> ApplicationJson {
    ApplicationJson {
        id: r.id.clone(),
        office: r.office.clone(),
        state: r.state.clone(),
        queue: r.queue.clone(),
        deadline: r
            .deadline_ms
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .map(|t| t.to_string()),
        ticket: r.ticket.clone(),
        counter: r.counter.clone(),
        passport_type: r.passport_type.clone(),
        flags: r
            .flags
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        photo_sha256: r.photo_sha256.clone(),
    }
}

#[derive(Serialize, ToSchema)]
struct DayBookingJson {
    code: String,
    /// RFC 3339 with the office's offset.
    start: String,
    seats: u32,
    #[schema(schema_with = super::openapi::booking_status_enum)]
    status: String,
}

#[derive(Serialize, ToSchema)]
struct TodayJson {
    office: String,
    #[schema(schema_with = super::openapi::date_string)]
    date: String,
    time_zone: String,
    bookings: Vec<DayBookingJson>,
    applications: Vec<ApplicationJson>,
    no_shows: i64,
}

/// The day's appointments and applications of an office, in its local time.
pub async fn office_today(
    app: &crate::app::App,
    office: &str,
    now: Timestamp,
) -> Result<
    (
        Vec<pasaporte_store::DayBooking>,
        Vec<ApplicationRow>,
        i64,
        String,
    ),
    WorkError,
> {
    let entry = app.office(office).ok_or(WorkError::NotFound)?;
    let date = calendar::local_today(&entry.office, now);
    let (from, to) = entry.planned_day(date).bounds_ms;
    let bookings = app.store.bookings_of_day(office, from, to).await?;
    let applications = app.store.applications_of_day(office, from, to).await?;
    let no_shows = app.store.no_shows(office, from, to).await?;
    Ok((bookings, applications, no_shows, date.to_string()))
}

/// The office's appointments and applications of today, in its local time.
#[utoipa::path(
    get,
    path = "/api/v1/staff/offices/{office}/today",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    security(("staff_session" = [])),
    responses(
        (status = 200, body = TodayJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn today(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
    Path(office): Path<String>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    authorize(&staff, lang, Action::ViewOfficeDay, None, now)?;
    if !staff.covers(&office) {
        return Err(work_error(lang, WorkError::NotFound));
    }
    let entry = app
        .office(&office)
        .ok_or_else(|| work_error(lang, WorkError::NotFound))?;
    let (bookings, applications, no_shows, date) = office_today(&app, &office, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(TodayJson {
        office: office.clone(),
        date,
        time_zone: entry.office.time_zone_name().to_string(),
        bookings: bookings
            .iter()
            .map(|b| DayBookingJson {
                code: b.code.clone(),
                start: Timestamp::from_millisecond(b.start_ms)
                    .map(|t| calendar::rfc3339_local(&entry.office, t))
                    .unwrap_or_default(),
                seats: b.seats,
                status: b.status.clone(),
            })
            .collect(),
        applications: applications.iter().map(application_json).collect(),
        no_shows,
    })
    .into_response())
}

/// The booking's code, or an applicant's document type and number.
#[derive(Deserialize, ToSchema)]
struct CheckInBody {
    code: Option<String>,
    #[schema(schema_with = super::openapi::document_type_enum)]
    document_type: Option<String>,
    document_number: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct CheckedInJson {
    booking_code: String,
    applications: Vec<String>,
    tickets: Vec<String>,
}

/// Checks a booking's people in: one application and ticket each.
#[utoipa::path(
    post,
    path = "/api/v1/staff/offices/{office}/check-ins",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    request_body = CheckInBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, body = CheckedInJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn check_in(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(office): Path<String>,
    ApiJson(body): ApiJson<CheckInBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::CheckIn, None, now)?;
    let by = match (body.code, body.document_type, body.document_number) {
        (Some(code), _, _) => Arrival::Code(code),
        (None, Some(document_type), Some(document_number)) => Arrival::Document {
            document_type,
            document_number,
        },
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "arrival_missing",
                lang,
                "Escriba el código de la cita, o el tipo y número de documento.",
                "Type the booking code, or the document type and number.",
            ));
        }
    };
    let done = workflow::check_in(&app, &staff.actor(), &OfficeOnly(staff, &office), by, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok((
        StatusCode::CREATED,
        Json(CheckedInJson {
            booking_code: done.booking_code,
            applications: done.application_ids,
            tickets: done.tickets,
        }),
    )
        .into_response())
}

/// The session's offices narrowed to the office in the URL: a clerk of BOG
/// checking in at `/offices/BOG/...` cannot touch a MDE booking through it.
pub struct OfficeOnly<'a>(pub &'a StaffSession, pub &'a str);

impl OfficeScope for OfficeOnly<'_> {
    fn may_use_office(&self, office: &str) -> bool {
        office == self.1 && self.0.may_use_office(office)
    }

    fn refused(&self, office: &str) {
        Scope(self.0).refused(office);
    }
}

#[derive(Serialize, ToSchema)]
struct TicketJson {
    application: String,
    ticket: String,
}

/// A person without a booking gets an application and a ticket.
#[utoipa::path(
    post,
    path = "/api/v1/staff/offices/{office}/walk-ins",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    request_body = WalkInInput,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, body = TicketJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn walk_in(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(office): Path<String>,
    ApiJson(body): ApiJson<WalkInInput>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::CheckIn, None, now)?;
    let (id, ticket) = workflow::walk_in(&app, &staff.actor(), &Scope(staff), &office, &body, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok((
        StatusCode::CREATED,
        Json(TicketJson {
            application: id,
            ticket,
        }),
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
struct CallBody {
    /// The application to call (default: the next in line).
    application: Option<String>,
    counter: String,
}

/// Calls the next application (or the one named) to a counter.
#[utoipa::path(
    post,
    path = "/api/v1/staff/offices/{office}/calls",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    request_body = CallBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = TicketJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn call(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(office): Path<String>,
    ApiJson(body): ApiJson<CallBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::CheckIn, None, now)?;
    let row = workflow::call_to_counter(
        &app,
        &staff.actor(),
        &Scope(staff),
        &office,
        body.application.as_deref(),
        &body.counter,
        now,
    )
    .await
    .map_err(|e| work_error(lang, e))?;
    Ok(Json(TicketJson {
        application: row.id,
        ticket: row.ticket,
    })
    .into_response())
}

#[derive(Serialize, ToSchema)]
struct HistoryJson {
    /// RFC 3339, UTC.
    at: String,
    actor: String,
    role: String,
    action: String,
    from_state: Option<String>,
    to_state: Option<String>,
    detail: String,
}

#[derive(Serialize, ToSchema)]
struct ApplicationDetailJson {
    #[serde(flatten)]
    application: ApplicationJson,
    surnames: Option<String>,
    given_names: Option<String>,
    history: Vec<HistoryJson>,
}

/// An application with its holder's names and its history.
#[utoipa::path(
    get,
    path = "/api/v1/staff/applications/{id}",
    tag = "staff",
    params(("id" = String, Path, description = "The application's id")),
    security(("staff_session" = [])),
    responses(
        (status = 200, body = ApplicationDetailJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn application(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    authorize(&staff, lang, Action::ViewApplication, None, now)?;
    let v = workflow::view_application(&app, &staff.actor(), &Scope(&staff), &id, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(ApplicationDetailJson {
        application: application_json(&v.row),
        surnames: v.identity.as_ref().map(|i| i.surnames.clone()),
        given_names: v.identity.as_ref().map(|i| i.given_names.clone()),
        history: v
            .history
            .iter()
            .map(|e| HistoryJson {
                at: Timestamp::from_millisecond(e.at_ms)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                actor: e.actor.clone(),
                role: e.role.clone(),
                action: e.action.clone(),
                from_state: e.from_state.clone(),
                to_state: e.to_state.clone(),
                detail: e.detail.clone(),
            })
            .collect(),
    })
    .into_response())
}

#[derive(Serialize, ToSchema)]
struct StateJson {
    id: String,
    #[schema(schema_with = super::openapi::application_state_enum)]
    state: String,
    #[schema(schema_with = super::openapi::queue_enum)]
    queue: String,
}

fn state_json(a: &pasaporte_core::application::Application) -> Response {
    Json(StateJson {
        id: a.id().to_string(),
        state: a.state().as_str().to_string(),
        queue: a.queue().as_str().to_string(),
    })
    .into_response()
}

/// Approves an application at the counter.
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/approve",
    tag = "staff",
    params(("id" = String, Path, description = "The application's id")),
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = StateJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn approve(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::Approve, None, now)?;
    let next = workflow::approve(&app, &staff.actor(), &Scope(staff), &id, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(state_json(&next))
}

#[derive(Deserialize, ToSchema)]
struct DecisionBody {
    #[schema(schema_with = super::openapi::decision_enum)]
    decision: String,
    /// Required to reject or cancel; no personal data.
    #[serde(default)]
    reason: String,
}

/// A supervisor's decision on a flagged application (asks for a sign-in of the last 10 minutes).
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/decision",
    tag = "staff",
    params(("id" = String, Path, description = "The application's id")),
    request_body = DecisionBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = StateJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn decision(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::Decide, None, now)?;
    let command = match body.decision.as_str() {
        "approve" => Command::Approve,
        "reject" => Command::Reject {
            reason: body.reason,
        },
        "cancel" => Command::Cancel {
            reason: body.reason,
        },
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "decision_invalid",
                lang,
                "La decisión es «approve», «reject» o «cancel».",
                "The decision is “approve”, “reject” or “cancel”.",
            ));
        }
    };
    let next = workflow::decide(&app, &staff.actor(), &Scope(staff), &id, command, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(state_json(&next))
}

#[derive(Deserialize, ToSchema)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

/// A supervisor lets an application past a civil-registry mismatch, with a reason.
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/registry-override",
    tag = "staff",
    params(("id" = String, Path, description = "The application's id")),
    request_body = ReasonBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = StateJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn registry_override(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::OverrideRegistry, None, now)?;
    let next = workflow::decide(
        &app,
        &staff.actor(),
        &Scope(staff),
        &id,
        Command::SupervisorOverrideRegistry {
            reason: body.reason,
        },
        now,
    )
    .await
    .map_err(|e| work_error(lang, e))?;
    Ok(state_json(&next))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct QueuesQuery {
    /// One office (default: the person's offices).
    office: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct QueuesJson {
    flagged: Vec<ApplicationJson>,
    pending_registry: Vec<ApplicationJson>,
    overdue: Vec<ApplicationJson>,
    /// Fees the schedule lacks, with the applications waiting on each.
    fees_missing: Vec<FeeGap>,
}

/// A fee the schedule lacks and how many verified applications wait on it
/// for their payment reference.
#[derive(Serialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct FeeGap {
    pub office: String,
    #[schema(schema_with = super::openapi::passport_type_enum)]
    pub passport_type: String,
    pub currency: String,
    pub applications: usize,
}

/// Verified applications read per office to find missing fees: more than a
/// day's work of any office.
const FEE_GAP_SCAN_MAX: u32 = 500;

/// The fees missing for applications of the person's offices: the payments
/// worker cannot ask for a reference until the schedule has them.
pub async fn fee_gaps(
    app: &crate::app::App,
    staff: &StaffSession,
    office: Option<&str>,
) -> Result<Vec<FeeGap>, WorkError> {
    use pasaporte_core::fees::PassportType;
    let mut gaps: Vec<FeeGap> = Vec::new();
    for office in offices_to_read(staff, office) {
        for (_, code, kind) in app
            .store
            .waiting_for_reference(office, FEE_GAP_SCAN_MAX)
            .await?
        {
            let (Some(entry), Some(kind)) = (
                app.office(&code).filter(|_| staff.may_use_office(&code)),
                kind.as_deref().and_then(PassportType::parse),
            ) else {
                continue;
            };
            let Err(missing) = app.fees.fee_for(kind, &entry.office) else {
                continue;
            };
            match gaps
                .iter_mut()
                .find(|g| g.office == code && g.passport_type == missing.passport_type)
            {
                Some(g) => g.applications += 1,
                None => gaps.push(FeeGap {
                    office: code.clone(),
                    passport_type: missing.passport_type.to_string(),
                    currency: missing.currency.to_string(),
                    applications: 1,
                }),
            }
        }
    }
    Ok(gaps)
}

/// The offices a list is read for: the one asked for, else each office the
/// person is assigned to (so that the lists' row limits apply per office and
/// a large office elsewhere never crowds a small one out), else all.
pub fn offices_to_read<'a>(
    staff: &'a StaffSession,
    office: Option<&'a str>,
) -> Vec<Option<&'a str>> {
    match office {
        Some(o) => vec![Some(o)],
        None if staff.may_use_office(crate::auth::ALL_OFFICES) => vec![None],
        None => staff.offices.iter().map(|o| Some(o.as_str())).collect(),
    }
}

/// The supervisor's work lists, limited to the offices they may see.
pub async fn supervisor_lists(
    app: &crate::app::App,
    staff: &StaffSession,
    office: Option<&str>,
    now: Timestamp,
) -> Result<[Vec<ApplicationRow>; 3], WorkError> {
    let mut lists: [Vec<ApplicationRow>; 3] = Default::default();
    for office in offices_to_read(staff, office) {
        let flagged = app
            .store
            .applications_in_states(
                office,
                &[
                    AppStateKind::Flagged.as_str(),
                    AppStateKind::RegistryMismatch.as_str(),
                ],
            )
            .await?;
        let pending = app
            .store
            .applications_in_states(office, &[AppStateKind::PendingRegistry.as_str()])
            .await?;
        let overdue = app
            .store
            .overdue_applications(office, now.as_millisecond())
            .await?;
        for (list, rows) in lists.iter_mut().zip([flagged, pending, overdue]) {
            list.extend(rows.into_iter().filter(|r| staff.may_use_office(&r.office)));
        }
    }
    Ok(lists)
}

/// The supervisor's work lists.
#[utoipa::path(
    get,
    path = "/api/v1/staff/supervisor/queues",
    tag = "staff",
    params(QueuesQuery),
    security(("staff_session" = [])),
    responses(
        (status = 200, body = QueuesJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn supervisor_queues(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
    Query(q): Query<QueuesQuery>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    authorize(&staff, lang, Action::ViewSupervisorQueues, None, now)?;
    let [flagged, pending, overdue] = supervisor_lists(&app, &staff, q.office.as_deref(), now)
        .await
        .map_err(|e| work_error(lang, e))?;
    let fees_missing = fee_gaps(&app, &staff, q.office.as_deref())
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(QueuesJson {
        flagged: flagged.iter().map(application_json).collect(),
        pending_registry: pending.iter().map(application_json).collect(),
        overdue: overdue.iter().map(application_json).collect(),
        fees_missing,
    })
    .into_response())
}

/// The payment gateway's signed callback: verified (HMAC over timestamp and
/// body, within 5 minutes), then applied exactly once. No session: the
/// signature is the authentication. Answers 204 for applied and replayed
/// events (so the gateway stops), 401/400 for bad signatures or bodies.
#[utoipa::path(
    post,
    path = "/api/v1/payments/callback",
    tag = "callbacks",
    params(("x-pasaporte-timestamp" = i64, Header, description = "Unix seconds, within 5 minutes of the receiver's clock")),
    request_body = crate::payments::callback::WireEvent,
    security(("payment_signature" = [])),
    responses(
        (status = 204, description = "Applied, or a replay of an event already applied"),
        (status = 400, description = "A malformed event or timestamp", content_type = "text/plain", body = String),
        (status = 401, description = "A bad signature or a stale timestamp", content_type = "text/plain", body = String),
        (status = 404, description = "Payments are not configured (`text/plain`), or the reference is unknown (JSON `not_found`)", body = ErrorBody),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, description = "The body is over 16 KiB", content_type = "text/plain", body = String),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn payment_callback(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(secret) = &app.payments_secret else {
        return (StatusCode::NOT_FOUND, "payments are not configured").into_response();
    };
    let now = Timestamp::now();
    let event = match crate::payments::verify(secret, &headers, &body, now.as_second()) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "payment callback refused");
            return (e.status(), e.to_string()).into_response();
        }
    };
    match crate::workers::apply_payment_event(&app, &event, now).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::warn!(event = %event.event_id, reference = %event.reference, error = %e, "payment event not applied");
            work_error(Lang::En, e).into_response()
        }
    }
}

/// Largest capture request: a 2 MiB portrait and a 512 KiB signature in
/// base64 (4/3 larger) with the typed fields.
pub const CAPTURE_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The capture's typed fields (flat keys, as the errors name them) and its
/// images in base64.
#[derive(Deserialize, ToSchema)]
struct CaptureBody {
    #[serde(flatten)]
    form: workflow::CaptureForm,
    /// The portrait (JPEG or PNG, at most 2 MiB), base64.
    #[serde(default)]
    #[schema(content_encoding = "base64")]
    photo_base64: String,
    /// The signature image (at most 512 KiB), base64.
    #[serde(default)]
    #[schema(content_encoding = "base64")]
    signature_base64: String,
}

/// The API's answer for a capture's faults: every field and image named.
pub fn capture_faults(lang: Lang, f: &workflow::CaptureFaults) -> ApiError {
    let mut err = ApiError::invalid(lang, &f.fields);
    for i in &f.images {
        let msg = lang.pick(&i.es, &i.en).to_string();
        err.message = format!("{} {}: {msg}", err.message, i.field);
        err.fields.push((i.field.to_string(), i.code, msg));
    }
    err
}

/// Records the capture: identity, fingerprints, portrait and signature; every fault named at once.
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/capture",
    tag = "staff",
    params(("id" = String, Path, description = "The application's id")),
    request_body = CaptureBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = StateJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn capture(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CaptureBody>,
) -> Result<Response, ApiError> {
    use base64::Engine as _;
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::Capture, None, now)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |field: &'static str, s: &str| {
        b64.decode(s.trim()).map_err(|_| {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                lang,
                "La imagen no está en base64.",
                "The image is not base64.",
            );
            e.fields
                .push((field.into(), "base64_invalid", e.message.clone()));
            e
        })
    };
    let photo = decode("photo_base64", &body.photo_base64)?;
    let signature = decode("signature_base64", &body.signature_base64)?;
    match workflow::capture(
        &app,
        &staff.actor(),
        &Scope(staff),
        &id,
        &body.form,
        workflow::CaptureFiles { photo, signature },
        now,
    )
    .await
    .map_err(|e| work_error(lang, e))?
    {
        Ok(next) => Ok(state_json(&next)),
        Err(faults) => Err(capture_faults(lang, &faults)),
    }
}

/// Asks for a fee waiver, with a reason; a supervisor decides it.
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/waiver",
    tag = "staff",
    params(("id" = String, Path, description = "The application's id")),
    request_body = ReasonBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 202, description = "The waiver is requested"),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn waiver(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::TakePayment, None, now)?;
    workflow::request_waiver(&app, &staff.actor(), &Scope(staff), &id, &body.reason, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize, ToSchema)]
struct WaiverDecisionBody {
    approve: bool,
}

/// A supervisor grants or refuses a requested waiver.
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/waiver/decision",
    tag = "staff",
    params(("id" = String, Path, description = "The application's id")),
    request_body = WaiverDecisionBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = production_api::IdStateJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn waiver_decision(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WaiverDecisionBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::ApproveWaiver, None, now)?;
    let state =
        workflow::decide_waiver(&app, &staff.actor(), &Scope(staff), &id, body.approve, now)
            .await
            .map_err(|e| work_error(lang, e))?;
    Ok(Json(production_api::IdStateJson {
        id,
        state: state.as_str().to_string(),
    })
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconciliationQuery {
    /// One office (default: every office the person sees).
    pub office: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive; default: 30 days ago.
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<String>,
    /// `YYYY-MM-DD` (UTC), exclusive; default: tomorrow.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<String>,
}

/// The report's window in unix ms, from the query's dates.
pub fn reconciliation_window(
    q: &ReconciliationQuery,
    now: Timestamp,
) -> Result<(i64, i64), String> {
    use pasaporte_core::jiff::civil::Date;
    use pasaporte_core::jiff::tz::TimeZone;
    let day_ms = |d: Date| {
        d.to_zoned_datetime(TimeZone::UTC)
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| e.to_string())
    };
    let parse = |s: &Option<String>| -> Result<Option<Date>, String> {
        s.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<Date>()
                    .map_err(|_| format!("'{s}' is not YYYY-MM-DD"))
            })
            .transpose()
    };
    let to = match parse(&q.to)? {
        Some(d) => day_ms(d)?,
        None => now.as_millisecond() + 86_400_000,
    };
    let from = match parse(&q.from)? {
        Some(d) => day_ms(d)?,
        None => now.as_millisecond() - 30 * 86_400_000,
    };
    Ok((from, to))
}

#[derive(Serialize, ToSchema)]
struct ReconciliationRowJson {
    reference: String,
    application: String,
    office: String,
    amount_minor: i64,
    currency: String,
    #[schema(schema_with = super::openapi::payment_status_enum)]
    status: String,
    paid_minor: i64,
    refunded_minor: i64,
    waived: bool,
}

#[derive(Serialize, ToSchema)]
struct TotalsJson {
    currency: String,
    references: i64,
    expected_minor: i64,
    paid_minor: i64,
    refunded_minor: i64,
    waived_minor: i64,
}

/// The payments of a window, reference by reference, with totals per
/// currency (totals only to those who see every office, or for one office).
#[derive(Serialize, ToSchema)]
struct ReconciliationJson {
    rows: Vec<ReconciliationRowJson>,
    totals: Vec<TotalsJson>,
    /// True when the rows stop at the report's limit.
    truncated: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/staff/reconciliation",
    tag = "staff",
    params(ReconciliationQuery),
    security(("staff_session" = [])),
    responses(
        (status = 200, body = ReconciliationJson),
        (status = 422, body = super::ErrorBody, description = "`date_invalid`"),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn reconciliation(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
    Query(q): Query<ReconciliationQuery>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    authorize(
        &staff,
        lang,
        Action::ViewReconciliation,
        q.office.as_deref(),
        now,
    )?;
    let (from, to) = reconciliation_window(&q, now).map_err(|m| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "date_invalid",
            lang,
            &format!("Fecha no válida: {m}"),
            &format!("Invalid date: {m}"),
        )
    })?;
    let r = app
        .store
        .reconciliation(q.office.as_deref(), from, to)
        .await
        .map_err(|e| work_error(lang, e.into()))?;
    let rows: Vec<ReconciliationRowJson> = r
        .rows
        .iter()
        .filter(|row| staff.may_use_office(&row.office_code))
        .map(|row| ReconciliationRowJson {
            reference: row.reference.clone(),
            application: row.application_id.clone(),
            office: row.office_code.clone(),
            amount_minor: row.amount_minor,
            currency: row.currency.clone(),
            status: row.status.as_str().to_string(),
            paid_minor: row.paid_minor,
            refunded_minor: row.refunded_minor,
            waived: row.waived,
        })
        .collect();
    // Totals over every office are shown only to those who see every office.
    let totals: Vec<TotalsJson> = if q.office.is_some() || staff.may_use_office("*") {
        r.totals
            .iter()
            .map(|t| TotalsJson {
                currency: t.currency.clone(),
                references: t.references,
                expected_minor: t.expected_minor,
                paid_minor: t.paid_minor,
                refunded_minor: t.refunded_minor,
                waived_minor: t.waived_minor,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(ReconciliationJson {
        rows,
        totals,
        truncated: r.truncated,
    })
    .into_response())
}

/// The audit trail's verdict.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum VerdictJson {
    /// Every event chains to the one before; checkpoints verify.
    Intact {
        intact: bool,
        count: u64,
        checkpointed_through: i64,
    },
    /// The first event that does not verify, and why.
    Broken {
        intact: bool,
        seq: i64,
        fault: String,
    },
}

#[utoipa::path(
    get,
    path = "/api/v1/staff/audit/verify",
    tag = "audit",
    security(("staff_session" = [])),
    responses(
        (status = 200, body = VerdictJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn audit_verify(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
) -> Result<Response, ApiError> {
    use pasaporte_core::audit::Verdict;
    let now = Timestamp::now();
    authorize(&staff, lang, Action::ViewAudit, None, now)?;
    let Some(signer) = &app.audit_signer else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_key_missing",
            lang,
            "El servicio no tiene la clave de los puntos de control (PASAPORTE_AUDIT_SIGNING_KEY); use `pasaporte audit verify` con la clave pública.",
            "The service has no checkpoint key (PASAPORTE_AUDIT_SIGNING_KEY); use `pasaporte audit verify` with the public key.",
        ));
    };
    let verdict = app
        .store
        .verify_audit(&signer.public())
        .await
        .map_err(|e| work_error(lang, e.into()))?;
    Ok(Json(match verdict {
        Verdict::Intact {
            count,
            checkpointed_through,
        } => VerdictJson::Intact {
            intact: true,
            count,
            checkpointed_through,
        },
        Verdict::Broken { seq, fault } => VerdictJson::Broken {
            intact: false,
            seq,
            fault: fault.to_string(),
        },
    })
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StockQuery {
    /// One site (default: every site).
    site: Option<String>,
    /// Days of issues the forecast's rate is taken over (default 30).
    window_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct StockLevelJson {
    #[schema(schema_with = super::openapi::booklet_type_enum)]
    booklet_type: &'static str,
    #[schema(schema_with = super::openapi::booklet_state_enum)]
    state: &'static str,
    count: u64,
}

#[derive(Serialize, ToSchema)]
struct StockForecastJson {
    #[schema(schema_with = super::openapi::booklet_type_enum)]
    booklet_type: &'static str,
    in_stock: u64,
    issued: u64,
    window_days: u32,
    /// Null when none were issued in the window.
    days_left: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct StaffStockJson {
    site: Option<String>,
    levels: Vec<StockLevelJson>,
    forecasts: Vec<StockForecastJson>,
}

/// Days of issues a stock forecast looks back over by default.
pub const STOCK_WINDOW_DAYS_DEFAULT: u32 = 30;

/// Booklet stock per type and state, and the days of stock left at the
/// recent issue rate: visible, so that nobody rations in secret.
#[utoipa::path(
    get,
    path = "/api/v1/staff/stock",
    tag = "production",
    params(StockQuery),
    security(("staff_session" = [])),
    responses(
        (status = 200, body = StaffStockJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn stock(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
    Query(q): Query<StockQuery>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    authorize(&staff, lang, Action::ViewStock, None, now)?;
    let site = q.site.as_deref().filter(|s| !s.trim().is_empty());
    let window = q.window_days.unwrap_or(STOCK_WINDOW_DAYS_DEFAULT);
    let levels = app
        .store
        .stock_levels(site)
        .await
        .map_err(|e| work_error(lang, e.into()))?;
    let forecasts = app
        .store
        .stock_forecasts(site, now.as_millisecond(), window)
        .await
        .map_err(|e| work_error(lang, e.into()))?;
    Ok(Json(StaffStockJson {
        site: site.map(str::to_string),
        levels: levels
            .iter()
            .map(|l| StockLevelJson {
                booklet_type: l.booklet_type.as_str(),
                state: l.state.as_str(),
                count: l.count,
            })
            .collect(),
        forecasts: forecasts
            .iter()
            .map(|f| StockForecastJson {
                booklet_type: f.booklet_type.as_str(),
                in_stock: f.in_stock,
                issued: f.issued,
                window_days: f.window_days,
                days_left: f.days_left,
            })
            .collect(),
    })
    .into_response())
}

/// Percentages of each slot's seats per pool, adding up to 100.
#[derive(Deserialize, ToSchema)]
struct PolicyBody {
    #[schema(schema_with = super::openapi::release_mode_enum)]
    release_mode: String,
    online: u32,
    urgent: u32,
    walk_in: u32,
    priority: u32,
}

/// `PUT /api/v1/staff/offices/{office}/policy`: an administrator sets the
/// office's release mode and capacity split.
#[derive(Serialize, ToSchema)]
struct PolicyJson {
    office: String,
    #[schema(schema_with = super::openapi::release_mode_enum)]
    release_mode: &'static str,
    shares: super::api::SharesJson,
}

#[utoipa::path(
    put,
    path = "/api/v1/staff/offices/{office}/policy",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    request_body = PolicyBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = PolicyJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn office_policy(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(office): Path<String>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Response, ApiError> {
    use crate::booking::PolicyError;
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::ManageOfficePolicy, None, now)?;
    let policy = crate::booking::set_office_policy(
        &app,
        &staff.actor(),
        &office,
        &body.release_mode,
        (body.online, body.urgent, body.walk_in, body.priority),
        now,
    )
    .await
    .map_err(|e| match e {
        PolicyError::UnknownOffice => work_error(lang, WorkError::NotFound),
        PolicyError::Invalid(errs) => ApiError::invalid(lang, &errs),
        PolicyError::Store(e) => work_error(lang, e.into()),
    })?;
    Ok(Json(PolicyJson {
        office,
        release_mode: policy.mode.as_str(),
        shares: super::api::shares_json(&policy),
    })
    .into_response())
}

#[derive(Deserialize, ToSchema)]
struct UrgentBody {
    /// The slot's start as listed (RFC 3339 with offset).
    #[schema(schema_with = super::openapi::date_time_string)]
    start: String,
    applicants: Vec<super::api::ApplicantJson>,
    email: String,
    phone: Option<String>,
    /// Why the case is urgent and what was seen; sealed at rest.
    evidence: String,
}

#[derive(Serialize, ToSchema)]
struct UrgentJson {
    code: String,
    manage_token: String,
    #[schema(schema_with = super::openapi::pool_enum)]
    pool: String,
    booking: super::api::BookingJson,
}

/// `POST /api/v1/staff/offices/{office}/urgent-bookings`: a supervisor of
/// the office books a seat from the urgent pool, with evidence.
#[utoipa::path(
    post,
    path = "/api/v1/staff/offices/{office}/urgent-bookings",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    request_body = UrgentBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, body = UrgentJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn urgent_booking(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(office): Path<String>,
    ApiJson(body): ApiJson<UrgentBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::GrantUrgent, None, now)?;
    if !staff.covers(&office) {
        return Err(work_error(lang, WorkError::NotFound));
    }
    let input = pasaporte_core::booking::BookingInput {
        start: body.start,
        applicants: super::api::applicant_inputs(body.applicants),
        email: body.email,
        phone: body.phone,
    };
    let booked = crate::booking::book_urgent(
        &app,
        &staff.actor(),
        &office,
        &input,
        &body.evidence,
        lang,
        now,
    )
    .await
    .map_err(|e| super::api::book_error(lang, e))?;
    let view = match booked.view {
        Some(v) => v,
        None => crate::booking::view(&app, &booked.code, &booked.manage_token)
            .await
            .map_err(|e| super::api::manage_error(lang, e))?,
    };
    Ok((
        StatusCode::CREATED,
        Json(UrgentJson {
            code: booked.code,
            manage_token: booked.manage_token,
            pool: booked.pool.as_str().into(),
            booking: super::api::booking_json(&view),
        }),
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
struct CloseDayBody {
    #[schema(schema_with = super::openapi::date_string)]
    day: String,
    reason: String,
}

#[derive(Deserialize, ToSchema)]
struct CutBody {
    #[schema(schema_with = super::openapi::date_string)]
    day: String,
    counters: u32,
    reason: String,
}

#[derive(Serialize, ToSchema)]
struct MovedJson {
    code: String,
    from_office: String,
    from: String,
    to_office: String,
    to: String,
    seats: u32,
}

#[derive(Serialize, ToSchema)]
struct ReseatJson {
    moved: usize,
    displaced: usize,
    untouched: usize,
    moves: Vec<MovedJson>,
}

fn instant_text(app: &crate::app::App, office: &str, ms: i64) -> String {
    match (app.office(office), Timestamp::from_millisecond(ms)) {
        (Some(e), Ok(t)) => calendar::rfc3339_local(&e.office, t),
        (None, Ok(t)) => t.to_string(),
        (_, Err(_)) => ms.to_string(),
    }
}

fn reseat_json(app: &crate::app::App, r: crate::reseat::ReseatReport) -> ReseatJson {
    ReseatJson {
        moved: r.moved.len(),
        displaced: r.displaced,
        untouched: r.untouched,
        moves: r
            .moved
            .into_iter()
            .map(|m| MovedJson {
                from: instant_text(app, &m.from_office, m.from_ms),
                to: instant_text(app, &m.to_office, m.to_ms),
                code: m.code_masked,
                from_office: m.from_office,
                to_office: m.to_office,
                seats: m.seats,
            })
            .collect(),
    }
}

/// The office named in the path, for a person who works there (others get
/// the answer an unknown office gets).
fn office_of_staff(
    staff: &crate::auth::StaffSession,
    lang: Lang,
    office: &str,
) -> Result<(), ApiError> {
    if staff.covers(office) {
        Ok(())
    } else {
        Err(work_error(lang, WorkError::NotFound))
    }
}

fn day_of(lang: Lang, day: &str) -> Result<pasaporte_core::jiff::civil::Date, ApiError> {
    day.trim().parse().map_err(|_| {
        ApiError::invalid(
            lang,
            &pasaporte_core::FieldErrors(vec![pasaporte_core::FieldError::new(
                "day",
                "invalid_date",
                "Escriba la fecha como AAAA-MM-DD.",
                "Write the date as YYYY-MM-DD.",
            )]),
        )
    })
}

/// Closes the office for a day; its bookings are re-seated at once.
#[utoipa::path(
    post,
    path = "/api/v1/staff/offices/{office}/closures",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    request_body = CloseDayBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = ReseatJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn close_day(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(office): Path<String>,
    ApiJson(body): ApiJson<CloseDayBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::ManageOfficeDays, None, now)?;
    office_of_staff(staff, lang, &office)?;
    let day = day_of(lang, &body.day)?;
    let r = crate::reseat::close_office_day(&app, &office, day, &body.reason, &staff.actor(), now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(reseat_json(&app, r)).into_response())
}

/// Lowers the office's counters for a day; the bookings above the new
/// capacity are re-seated at once.
#[utoipa::path(
    post,
    path = "/api/v1/staff/offices/{office}/capacity-cuts",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    request_body = CutBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = ReseatJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn cut_capacity(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(office): Path<String>,
    ApiJson(body): ApiJson<CutBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::ManageOfficeDays, None, now)?;
    office_of_staff(staff, lang, &office)?;
    let day = day_of(lang, &body.day)?;
    let r = crate::reseat::cut_office_capacity(
        &app,
        &office,
        day,
        body.counters,
        &body.reason,
        &staff.actor(),
        now,
    )
    .await
    .map_err(|e| work_error(lang, e))?;
    Ok(Json(reseat_json(&app, r)).into_response())
}

#[derive(Serialize, ToSchema)]
struct DisplacedJson {
    code: String,
    office: String,
    lost_start: String,
    seats: u32,
}

/// Bookings of the office waiting for their citizens' choice.
#[utoipa::path(
    get,
    path = "/api/v1/staff/offices/{office}/displaced",
    tag = "staff",
    params(("office" = String, Path, description = "The office's code")),
    security(("staff_session" = [])),
    responses(
        (status = 200, body = Vec<DisplacedJson>),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn displaced(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
    Path(office): Path<String>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    authorize(&staff, lang, Action::ManageOfficeDays, None, now)?;
    office_of_staff(&staff, lang, &office)?;
    let rows = crate::reseat::displaced(&app, Some(&office))
        .await
        .map_err(|e| work_error(lang, e))?;
    let out: Vec<DisplacedJson> = rows
        .into_iter()
        .map(|r| DisplacedJson {
            lost_start: instant_text(&app, &r.office, r.start_ms),
            code: r.code,
            office: r.office,
            seats: r.seats,
        })
        .collect();
    Ok(Json(out).into_response())
}
