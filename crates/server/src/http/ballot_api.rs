//! The ballot's JSON routes: releases and their published files (anyone),
//! requests and their proof of email, offers and reconfirmation (the
//! citizen, by the token their mail carries), opening a release, running
//! its draw and the scalper signals (staff, through the policy gate of
//! [`super::staff_api::STAFF_ROUTES`]).

use super::api::{ApplicantJson, applicant_inputs, book_error};
use super::routes::{
    ApiRoutes,
    Verb::{Get, Post},
};
use super::staff_api::{Scope, authorize, work_error};
use super::{ApiError, ApiJson, AppState, ReqLang};
use crate::auth::{StaffSession, StaffWrite};
use crate::ballot::{self, PreferenceInput, ReleaseInput, RequestAct, RequestInput};
use crate::i18n::Lang;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::policy::Action;
use pasaporte_store::ReleaseRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use utoipa::ToSchema;

/// Longest device id kept from `X-Device-Id` (it is hashed anyway).
const DEVICE_ID_CHARS_MAX: usize = 128;

/// The citizens' and the public's routes (rate limited with the API).
pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .route(Get, "/api/v1/releases", list)
        .route(Get, "/api/v1/releases/{id}", one)
        .route(Get, "/api/v1/releases/{id}/files/{name}", file)
        .route(Post, "/api/v1/releases/{id}/requests", submit)
        .route(Get, "/api/v1/requests/{code}", status)
        .route(Post, "/api/v1/requests/{code}/verify", verify)
        .route(Post, "/api/v1/requests/{code}/accept", accept)
        .route(Post, "/api/v1/requests/{code}/withdraw", withdraw)
        .route(Post, "/api/v1/bookings/{code}/confirm", confirm)
}

/// A release as the API shows it.
#[derive(Serialize, ToSchema)]
struct ReleaseJson {
    id: String,
    city: String,
    offices: Vec<String>,
    #[schema(schema_with = super::openapi::date_string)]
    first_day: String,
    #[schema(schema_with = super::openapi::date_string)]
    last_day: String,
    /// RFC 3339, UTC.
    #[schema(schema_with = super::openapi::date_time_string)]
    requests_close_at: String,
    #[schema(schema_with = super::openapi::release_state_enum)]
    state: String,
    /// The seed's commitment, published when the release opens.
    commitment: String,
    /// Published with the draw.
    seed: Option<String>,
    inputs_digest: Option<String>,
    /// Requests that count (proved email, not withdrawn).
    requests: i64,
    /// Requests per status.
    requests_by_status: BTreeMap<String, i64>,
    /// The published files' paths.
    files: Vec<String>,
}

async fn release_json(app: &AppState, r: &ReleaseRow) -> Result<ReleaseJson, ApiError> {
    let counts = app
        .store
        .request_counts(&r.id)
        .await
        .map_err(|e| work_error(Lang::Es, e.into()))?;
    let requests: i64 = counts
        .iter()
        .filter(|(s, _)| s != "unverified" && s != "withdrawn")
        .map(|(_, n)| n)
        .sum();
    let close = Timestamp::from_millisecond(r.close_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(ReleaseJson {
        id: r.id.clone(),
        city: r.city.clone(),
        offices: r.offices.clone(),
        first_day: r.first_day.clone(),
        last_day: r.last_day.clone(),
        requests_close_at: close,
        state: r.state.clone(),
        commitment: r.commitment.clone(),
        seed: r.seed.clone(),
        inputs_digest: r.inputs_digest.clone(),
        requests,
        requests_by_status: counts.iter().map(|(s, n)| (s.clone(), *n)).collect(),
        files: ballot::RELEASE_FILES
            .iter()
            .filter(|n| r.state == "drawn" || **n == "commitment.txt")
            .map(|n| format!("/api/v1/releases/{}/files/{n}", r.id))
            .collect(),
    })
}

/// `GET /api/v1/releases`: every release, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/releases",
    tag = "ballot",
    responses(
        (status = 200, body = Vec<ReleaseJson>),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn list(State(app): State<AppState>, ReqLang(lang): ReqLang) -> Result<Response, ApiError> {
    let rows = app
        .store
        .releases()
        .await
        .map_err(|e| work_error(lang, e.into()))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(release_json(&app, r).await?);
    }
    Ok(Json(out).into_response())
}

/// `GET /api/v1/releases/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}",
    tag = "ballot",
    params(("id" = String, Path, description = "The release's id")),
    responses(
        (status = 200, body = ReleaseJson),
        (status = 404, response = super::openapi::NotFound),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn one(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = app
        .store
        .release(&id)
        .await
        .map_err(|e| work_error(lang, e.into()))?;
    Ok(Json(release_json(&app, &r).await?).into_response())
}

/// `GET /api/v1/releases/{id}/files/{name}`: the published files that
/// `pasaporte ballot replay` checks.
#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}/files/{name}",
    tag = "ballot",
    params(
        ("id" = String, Path, description = "The release's id"),
        ("name" = String, Path, description = "One of the release's published files (`commitment.txt` from the opening; the others once drawn)"),
    ),
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 404, response = super::openapi::NotFound),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn file(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let text = ballot::release_file(&app, &id, &name)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[derive(Deserialize, ToSchema)]
struct RequestJson {
    /// One to five people: the first any age, the others minors.
    applicants: Vec<ApplicantJson>,
    email: String,
    phone: Option<String>,
    /// Ranked choices: an office and a day, or a city.
    preferences: Vec<PreferenceInput>,
}

/// A request taken, waiting for its proof of email.
#[derive(Serialize, ToSchema)]
struct SubmittedJson {
    code: String,
    /// Always `unverified` here.
    #[schema(schema_with = super::openapi::request_status_enum)]
    status: &'static str,
    message: String,
}

/// The client's device for scalper signals: the `X-Device-Id` the page or
/// app sends, else the client's address.
fn device_of(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    headers
        .get("x-device-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(DEVICE_ID_CHARS_MAX).collect())
        .or_else(|| peer.map(|p| format!("ip:{}", p.ip())))
        .unwrap_or_default()
}

/// `POST /api/v1/releases/{id}/requests`: 202, the request counts once the
/// mailed link proves the email.
#[utoipa::path(
    post,
    path = "/api/v1/releases/{id}/requests",
    tag = "ballot",
    params(
        ("id" = String, Path, description = "The release's id"),
        ("X-Device-Id" = Option<String>, Header, description = "The client's device, for scalper signals (the client's address otherwise)"),
    ),
    request_body = RequestJson,
    responses(
        (status = 202, body = SubmittedJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn submit(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RequestJson>,
) -> Result<Response, ApiError> {
    let input = RequestInput {
        applicants: applicant_inputs(req.applicants),
        email: req.email,
        phone: req.phone,
        preferences: req.preferences,
    };
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let device = device_of(&headers, peer);
    let done = ballot::submit_request(&app, &id, &input, &device, lang, Timestamp::now())
        .await
        .map_err(|e| match e {
            crate::booking::BookError::UnknownOffice => ApiError::new(
                StatusCode::NOT_FOUND,
                "release_not_found",
                lang,
                "No existe ese sorteo. Consulte /api/v1/releases.",
                "There is no such release. See /api/v1/releases.",
            ),
            crate::booking::BookError::AlreadyBooked => ApiError::new(
                StatusCode::CONFLICT,
                "already_booked",
                lang,
                "Una de las personas ya tiene una solicitud o una cita activa. Retírela o cancélela antes de pedir otra.",
                "One of the people already has an active request or appointment. Withdraw or cancel it before asking for another.",
            ),
            other => book_error(lang, other),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SubmittedJson {
            code: done.code,
            status: "unverified",
            message: lang
                .pick(
                    "Le enviamos un correo: abra su enlace para que la solicitud entre al sorteo.",
                    "We sent you a mail: open its link so that the request enters the draw.",
                )
                .to_string(),
        }),
    )
        .into_response())
}

/// The request's token in the body, for clients that cannot set
/// `Authorization`.
#[derive(Deserialize, ToSchema)]
struct TokenBody {
    token: String,
}

/// The citizen's token: `Authorization: Bearer`, or `{"token": ...}`.
fn token_of(headers: &HeaderMap, body: &Bytes, lang: Lang) -> Result<String, ApiError> {
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Ok(t.trim().to_string());
    }
    serde_json::from_slice::<TokenBody>(body)
        .map(|b| b.token)
        .map_err(|_| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                lang,
                "Envíe la clave de su correo como Authorization: Bearer <clave> o {\"token\": \"<clave>\"}.",
                "Send the token from your mail as Authorization: Bearer <token> or {\"token\": \"<token>\"}.",
            )
        })
}

fn request_not_found(lang: Lang, e: crate::workflow::WorkError) -> ApiError {
    match e {
        crate::workflow::WorkError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "request_not_found",
            lang,
            "No encontramos una solicitud con ese código y esa clave.",
            "No request matches that code and token.",
        ),
        other => work_error(lang, other),
    }
}

/// `GET /api/v1/requests/{code}`.
#[utoipa::path(
    get,
    path = "/api/v1/requests/{code}",
    tag = "ballot",
    params(("code" = String, Path, description = "The request's code")),
    security(("request_token" = [])),
    responses(
        (status = 200, body = crate::ballot::RequestView),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn status(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let token = token_of(&headers, &Bytes::new(), lang)?;
    let v = ballot::request_view(&app, &code, &token)
        .await
        .map_err(|e| request_not_found(lang, e))?;
    Ok(Json(v).into_response())
}

/// `POST /api/v1/requests/{code}/verify` (the proof of email), `…/accept`
/// (take an offered seat), `…/withdraw`.
async fn act(
    act: RequestAct,
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    headers: HeaderMap,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = token_of(&headers, &body, lang)?;
    let v = ballot::act_on_request(&app, act, &code, &token, Timestamp::now())
        .await
        .map_err(|e| request_not_found(lang, e))?;
    Ok(Json(v).into_response())
}

/// `POST /api/v1/requests/{code}/verify`: the proof of email.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{code}/verify",
    tag = "ballot",
    params(("code" = String, Path, description = "The request's code")),
    request_body(content = Option<TokenBody>, description = "The token, unless sent as `Authorization: Bearer`"),
    security(("request_token" = [])),
    responses(
        (status = 200, body = crate::ballot::RequestView),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn verify(
    app: State<AppState>,
    lang: ReqLang,
    headers: HeaderMap,
    code: Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    act(RequestAct::Verify, app, lang, headers, code, body).await
}

/// `POST /api/v1/requests/{code}/accept`: take an offered seat.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{code}/accept",
    tag = "ballot",
    params(("code" = String, Path, description = "The request's code")),
    request_body(content = Option<TokenBody>, description = "The token, unless sent as `Authorization: Bearer`"),
    security(("request_token" = [])),
    responses(
        (status = 200, body = crate::ballot::RequestView),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn accept(
    app: State<AppState>,
    lang: ReqLang,
    headers: HeaderMap,
    code: Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    act(RequestAct::Accept, app, lang, headers, code, body).await
}

/// `POST /api/v1/requests/{code}/withdraw`.
#[utoipa::path(
    post,
    path = "/api/v1/requests/{code}/withdraw",
    tag = "ballot",
    params(("code" = String, Path, description = "The request's code")),
    request_body(content = Option<TokenBody>, description = "The token, unless sent as `Authorization: Bearer`"),
    security(("request_token" = [])),
    responses(
        (status = 200, body = crate::ballot::RequestView),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn withdraw(
    app: State<AppState>,
    lang: ReqLang,
    headers: HeaderMap,
    code: Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    act(RequestAct::Withdraw, app, lang, headers, code, body).await
}

/// The answer to a reconfirmation.
#[derive(Serialize, ToSchema)]
struct ConfirmedJson {
    code: String,
    confirmed: bool,
    /// False when it was already confirmed.
    changed: bool,
}

/// `POST /api/v1/bookings/{code}/confirm`: the reconfirmation.
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{code}/confirm",
    tag = "ballot",
    params(("code" = String, Path, description = "The booking's code")),
    request_body(content = Option<TokenBody>, description = "The token, unless sent as `Authorization: Bearer`"),
    security(("request_token" = [])),
    responses(
        (status = 200, body = ConfirmedJson),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn confirm(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    headers: HeaderMap,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = token_of(&headers, &body, lang)?;
    let changed = ballot::confirm_booking(&app, &code, &token, Timestamp::now())
        .await
        .map_err(|e| request_not_found(lang, e))?;
    Ok(Json(ConfirmedJson {
        code,
        confirmed: true,
        changed,
    })
    .into_response())
}

// --- Staff ---------------------------------------------------------------------

/// `POST /api/v1/staff/releases`: open a release.
#[utoipa::path(
    post,
    path = "/api/v1/staff/releases",
    tag = "ballot",
    request_body = ReleaseInput,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, body = ReleaseJson),
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
pub async fn open(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    ApiJson(body): ApiJson<ReleaseInput>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::ManageReleases, None, now)?;
    let r = ballot::open_release(&app, &staff.actor(), &Scope(staff), &body, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok((StatusCode::CREATED, Json(release_json(&app, &r).await?)).into_response())
}

/// What a draw did.
#[derive(Serialize, ToSchema)]
struct DrawnJson {
    #[serde(flatten)]
    summary: ballot::DrawSummary,
    /// Always `drawn`.
    #[schema(schema_with = super::openapi::release_state_enum)]
    state: &'static str,
}

/// `POST /api/v1/staff/releases/{id}/draw`: run the draw (after the close).
#[utoipa::path(
    post,
    path = "/api/v1/staff/releases/{id}/draw",
    tag = "ballot",
    params(("id" = String, Path, description = "The release's id")),
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = DrawnJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn draw(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::ManageReleases, None, now)?;
    let s = ballot::draw_release(&app, &staff.actor(), &Scope(staff), &id, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(DrawnJson {
        summary: s,
        state: "drawn",
    })
    .into_response())
}

/// Requests sharing a device or a phone.
#[derive(Serialize, ToSchema)]
struct SignalsJson {
    release: String,
    /// Requests sharing a key from this many on are listed.
    threshold: i64,
    signals: Vec<SignalJson>,
}

#[derive(Serialize, ToSchema)]
struct SignalJson {
    /// `device` or `phone`.
    kind: String,
    /// The start of the keyed hash (no personal data).
    key: String,
    requests: i64,
}

/// `GET /api/v1/staff/releases/{id}/signals`: requests sharing a device or
/// a phone, for a supervisor to look at; nothing is cancelled for them.
#[utoipa::path(
    get,
    path = "/api/v1/staff/releases/{id}/signals",
    tag = "ballot",
    params(("id" = String, Path, description = "The release's id")),
    security(("staff_session" = [])),
    responses(
        (status = 200, body = SignalsJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn signals(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(
        &staff,
        lang,
        Action::ViewScalperSignals,
        None,
        Timestamp::now(),
    )?;
    let list = ballot::signals(&app, &Scope(&staff), &id)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(SignalsJson {
        release: id,
        threshold: ballot::SIGNAL_THRESHOLD,
        signals: list
            .iter()
            .map(|s| SignalJson {
                kind: s.kind.clone(),
                key: s.key_prefix.clone(),
                requests: s.requests,
            })
            .collect(),
    })
    .into_response())
}
