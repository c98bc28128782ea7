//! The ballot's JSON routes: releases and their published files (anyone),
//! requests and their proof of email, offers and reconfirmation (the
//! citizen, by the token their mail carries), opening a release, running
//! its draw and the scalper signals (staff, through the policy gate of
//! [`super::staff_api::STAFF_ROUTES`]).

use super::api::{ApplicantJson, applicant_inputs, book_error};
use super::staff_api::{Scope, authorize, work_error};
use super::{ApiError, ApiJson, AppState, ReqLang};
use crate::auth::{StaffSession, StaffWrite};
use crate::ballot::{self, PreferenceInput, ReleaseInput, RequestAct, RequestInput};
use crate::i18n::Lang;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::policy::Action;
use pasaporte_store::ReleaseRow;
use serde::Deserialize;
use std::net::SocketAddr;

/// Longest device id kept from `X-Device-Id` (it is hashed anyway).
const DEVICE_ID_CHARS_MAX: usize = 128;

/// The citizens' and the public's routes (rate limited with the API).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/releases", get(list))
        .route("/api/v1/releases/{id}", get(one))
        .route("/api/v1/releases/{id}/files/{name}", get(file))
        .route("/api/v1/releases/{id}/requests", post(submit))
        .route("/api/v1/requests/{code}", get(status))
        .route(
            "/api/v1/requests/{code}/verify",
            post(|s, l, h, p, b| act(RequestAct::Verify, s, l, h, p, b)),
        )
        .route(
            "/api/v1/requests/{code}/accept",
            post(|s, l, h, p, b| act(RequestAct::Accept, s, l, h, p, b)),
        )
        .route(
            "/api/v1/requests/{code}/withdraw",
            post(|s, l, h, p, b| act(RequestAct::Withdraw, s, l, h, p, b)),
        )
        .route("/api/v1/bookings/{code}/confirm", post(confirm))
}

async fn release_json(app: &AppState, r: &ReleaseRow) -> Result<serde_json::Value, ApiError> {
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
    Ok(serde_json::json!({
        "id": r.id,
        "city": r.city,
        "offices": r.offices,
        "first_day": r.first_day,
        "last_day": r.last_day,
        "requests_close_at": close,
        "state": r.state,
        "commitment": r.commitment,
        "seed": r.seed,
        "inputs_digest": r.inputs_digest,
        "requests": requests,
        "requests_by_status": counts.iter().map(|(s, n)| (s.clone(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        "files": ballot::RELEASE_FILES
            .iter()
            .filter(|n| r.state == "drawn" || **n == "commitment.txt")
            .map(|n| format!("/api/v1/releases/{}/files/{n}", r.id))
            .collect::<Vec<_>>(),
    }))
}

/// `GET /api/v1/releases`: every release, newest first.
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

#[derive(Deserialize)]
struct RequestJson {
    applicants: Vec<ApplicantJson>,
    email: String,
    phone: Option<String>,
    preferences: Vec<PreferenceInput>,
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
        Json(serde_json::json!({
            "code": done.code,
            "status": "unverified",
            "message": lang.pick(
                "Le enviamos un correo: abra su enlace para que la solicitud entre al sorteo.",
                "We sent you a mail: open its link so that the request enters the draw.",
            ),
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
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

/// `POST /api/v1/bookings/{code}/confirm`: the reconfirmation.
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
    Ok(
        Json(serde_json::json!({"code": code, "confirmed": true, "changed": changed}))
            .into_response(),
    )
}

// --- Staff ---------------------------------------------------------------------

/// `POST /api/v1/staff/releases`: open a release.
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

/// `POST /api/v1/staff/releases/{id}/draw`: run the draw (after the close).
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
    let mut v = serde_json::to_value(&s).map_err(|e| ApiError::internal(lang, &e.to_string()))?;
    v["state"] = "drawn".into();
    Ok(Json(v).into_response())
}

/// `GET /api/v1/staff/releases/{id}/signals`: requests sharing a device or
/// a phone, for a supervisor to look at; nothing is cancelled for them.
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
    Ok(Json(serde_json::json!({
        "release": id,
        "threshold": ballot::SIGNAL_THRESHOLD,
        "signals": list.iter().map(|s| serde_json::json!({
            "kind": s.kind, "key": s.key_prefix, "requests": s.requests,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}
