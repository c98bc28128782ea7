//! The JSON API under `/api/v1`, described by the OpenAPI document at
//! `/api/v1/openapi.json`. API types are separate from domain types so the
//! domain can change without breaking clients.

use super::routes::{
    ApiRoutes,
    Verb::{Get, Post},
};
use super::{ApiError, ApiJson, AppState, ReqLang};
use crate::app::{OfficeEntry, RenderedDay};
use crate::booking::{self, AvailabilityError, BookError, BookingView, DayNote, ManageError};
use crate::capacity::{self, Capacity, CapacityError};
use crate::i18n::Lang;
use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pasaporte_core::booking::{ApplicantInput, BookingInput};
use pasaporte_core::calendar::rfc3339_local;
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::jiff::civil::Weekday;
use pasaporte_core::office::Office;
use pasaporte_core::shares::{OfficePolicy, Pool};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .route(Get, "/api/v1/openapi.json", openapi)
        .route(Get, "/api/v1/offices", list_offices)
        .route(Get, "/api/v1/offices/{code}/slots", office_slots)
        .route(Get, "/api/v1/availability/earliest", earliest)
        .route(Get, "/api/v1/capacity", capacity_json)
        .route(Get, "/api/v1/capacity.csv", capacity_csv)
        .route(Get, "/api/v1/capacity/pools.csv", capacity_pools_csv)
        .route(Post, "/api/v1/bookings", create_booking)
        .route(Get, "/api/v1/bookings/{code}", get_booking)
        .route(
            Post,
            "/api/v1/bookings/{code}/reschedule",
            reschedule_booking,
        )
        .route(Post, "/api/v1/bookings/{code}/cancel", cancel_booking)
        .route(
            Get,
            "/api/v1/bookings/{code}/calendar.ics",
            booking_calendar,
        )
        .route(Get, "/api/v1/audit/checkpoints.txt", audit_checkpoints)
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "citizens",
    responses((status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json", body = Object))
)]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(super::openapi::openapi_document())
}

#[derive(Serialize, ToSchema)]
struct HoursJson {
    /// `HH:MM-HH:MM`, split days joined by `;`, empty when closed.
    monday: String,
    tuesday: String,
    wednesday: String,
    thursday: String,
    friday: String,
    saturday: String,
    sunday: String,
}

#[derive(Serialize, ToSchema)]
struct OfficeJson {
    code: String,
    name: String,
    #[schema(schema_with = super::openapi::office_kind_enum)]
    kind: String,
    city: String,
    /// ISO 3166-1 alpha-3.
    country: String,
    /// IANA time zone of the office's wall clock.
    time_zone: String,
    hours: HoursJson,
    counters: u32,
    service_minutes: u32,
    slot_minutes: u32,
    /// People one full slot holds.
    slot_capacity: u32,
    horizon_days: u32,
    /// `live` (seats bookable first come, first served) or `ballot`
    /// (requested, then allocated by a draw).
    #[schema(schema_with = super::openapi::release_mode_enum)]
    release_mode: String,
    /// The percentage of each slot's seats per pool.
    shares: SharesJson,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SharesJson {
    /// Offered by live booking or by the ballot.
    online: u32,
    /// Granted by a supervisor for urgent cases, with evidence.
    urgent: u32,
    /// Kept for people who come without a booking; never bookable online.
    walk_in: u32,
    /// Priority access: disability, people aged 60 or over.
    priority: u32,
}

pub(crate) fn shares_json(p: &OfficePolicy) -> SharesJson {
    SharesJson {
        online: p.shares.online(),
        urgent: p.shares.urgent(),
        walk_in: p.shares.walk_in(),
        priority: p.shares.priority(),
    }
}

fn office_json(e: &OfficeEntry) -> OfficeJson {
    let o: &Office = &e.office;
    let h = |d| o.hours.format_day(d);
    OfficeJson {
        code: o.code.clone(),
        name: o.name.clone(),
        kind: o.kind.as_str().into(),
        city: o.city.clone(),
        country: o.country.clone(),
        time_zone: o.time_zone_name().into(),
        hours: HoursJson {
            monday: h(Weekday::Monday),
            tuesday: h(Weekday::Tuesday),
            wednesday: h(Weekday::Wednesday),
            thursday: h(Weekday::Thursday),
            friday: h(Weekday::Friday),
            saturday: h(Weekday::Saturday),
            sunday: h(Weekday::Sunday),
        },
        counters: o.counters,
        service_minutes: o.service_minutes,
        slot_minutes: o.slot_minutes,
        slot_capacity: o.capacity_for(o.slot_minutes),
        horizon_days: o.horizon_days,
        release_mode: e.policy.mode.as_str().into(),
        shares: shares_json(&e.policy),
    }
}

/// List offices.
#[utoipa::path(
    get,
    path = "/api/v1/offices",
    tag = "citizens",
    responses((status = 200, body = Vec<OfficeJson>), (status = 429, response = super::openapi::TooManyRequests))
)]
async fn list_offices(State(app): State<AppState>) -> Json<Vec<OfficeJson>> {
    Json(app.offices().values().map(|e| office_json(e)).collect())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SlotsQuery {
    /// First local date, `YYYY-MM-DD` (default: the office's today).
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Number of days, 1 to 62 (default 7).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 62)]
    days: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct SlotJson {
    /// RFC 3339 with the office's UTC offset at that instant.
    #[schema(schema_with = super::openapi::date_time_string)]
    start: String,
    #[schema(schema_with = super::openapi::date_time_string)]
    end: String,
    capacity: u32,
    remaining: u32,
}

#[derive(Serialize, ToSchema)]
struct DayNoteJson {
    #[schema(schema_with = super::openapi::date_string)]
    date: String,
    #[schema(schema_with = super::openapi::day_note_enum)]
    reason: String,
    /// The holiday's name or the closure's reason.
    detail: String,
}

#[derive(Serialize, ToSchema)]
struct SlotsJson {
    office: String,
    time_zone: String,
    slots: Vec<SlotJson>,
    /// Days without bookable slots, and why: capacity is never hidden.
    unavailable_days: Vec<DayNoteJson>,
}

fn parse_u32_param(
    s: Option<&str>,
    field: &'static str,
    lang: Lang,
) -> Result<Option<u32>, ApiError> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                lang,
                "Un parámetro debe ser un número entero",
                "A parameter must be a whole number",
            );
            e.message = format!("{} ({field}).", e.message);
            e.fields
                .push((field.into(), "invalid_number", e.message.clone()));
            e
        }),
    }
}

fn availability_error(lang: Lang, e: AvailabilityError) -> ApiError {
    match e {
        AvailabilityError::UnknownOffice => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_office",
            lang,
            "No existe una oficina con ese código. Consulte /api/v1/offices.",
            "There is no office with that code. See /api/v1/offices.",
        ),
        AvailabilityError::Invalid(errs) => ApiError::invalid(lang, &errs),
        AvailabilityError::Store(e) => ApiError::unavailable(lang, &e),
    }
}

/// An office's slots with the seats left, over a date range.
#[utoipa::path(
    get,
    path = "/api/v1/offices/{code}/slots",
    tag = "citizens",
    params(("code" = String, Path, description = "Office code"), SlotsQuery),
    responses(
        (status = 200, body = SlotsJson),
        (status = 404, response = super::openapi::NotFound),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn office_slots(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Query(q): Query<SlotsQuery>,
) -> Result<Response, ApiError> {
    let days = parse_u32_param(q.days.as_deref(), "days", lang)?;
    let now = Timestamp::now();
    let (entry, from, days) = booking::office_range(&app, &code, q.from.as_deref(), days, now)
        .map_err(|e| availability_error(lang, e))?;
    let o = &entry.office;
    let today = pasaporte_core::calendar::local_today(o, now);
    let horizon = pasaporte_core::calendar::horizon_end(o, now);
    // Assembled by hand from per-day fragments: a future day's fragment is
    // reused until a booking changes the office's counts (see RenderedDay).
    let mut slots = String::new();
    let mut notes = Vec::new();
    for date in pasaporte_core::calendar::dates(from, days) {
        let cacheable = date > today && date <= horizon;
        let generation = app.availability.generation(&o.code);
        if cacheable {
            let hit = entry
                .rendered
                .read()
                .ok()
                .and_then(|m| m.get(&date).cloned())
                .filter(|r| r.generation == generation && r.at.elapsed() < app.availability.ttl());
            if let Some(r) = hit {
                push_fragment(&mut slots, &r.slots);
                continue;
            }
        }
        let d = booking::office_day(&app, &entry, date, now)
            .await
            .map_err(|e| ApiError::unavailable(lang, &e))?;
        if let Some(note) = &d.note {
            let (reason, detail) = match note {
                DayNote::Closed(r) => (r.code(), r.detail().to_string()),
                DayNote::BeyondHorizon => ("beyond_horizon", String::new()),
                DayNote::Past => ("past", String::new()),
            };
            notes.push(DayNoteJson {
                date: d.date.to_string(),
                reason: reason.into(),
                detail,
            });
        }
        let mut fragment = String::new();
        for s in d.slots {
            let json = SlotJson {
                start: s.start_text,
                end: s.end_text,
                capacity: s.capacity,
                remaining: s.remaining,
            };
            push_fragment(
                &mut fragment,
                &serde_json::to_string(&json).map_err(|e| ApiError::internal(lang, &e))?,
            );
        }
        push_fragment(&mut slots, &fragment);
        if cacheable && d.note.is_none() {
            let rendered = Arc::new(RenderedDay {
                generation,
                at: std::time::Instant::now(),
                slots: fragment,
            });
            if let Ok(mut m) = entry.rendered.write() {
                if m.len() >= crate::app::PLANNED_DAYS_MAX {
                    m.clear();
                }
                m.insert(date, rendered);
            }
        }
    }
    let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let body = format!(
        "{{\"office\":{},\"time_zone\":{},\"slots\":[{slots}],\"unavailable_days\":{}}}",
        text(&o.code),
        text(o.time_zone_name()),
        serde_json::to_string(&notes).map_err(|e| ApiError::internal(lang, &e))?
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Appends a comma-separated JSON fragment to another.
fn push_fragment(out: &mut String, fragment: &str) {
    if fragment.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(fragment);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EarliestQuery {
    /// Only offices in this city (case-insensitive).
    city: Option<String>,
    /// Only offices in this country (ISO 3166-1 alpha-3).
    country: Option<String>,
    /// Seats needed together (1 to 5, default 1).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5)]
    seats: Option<String>,
    /// Results (1 to 50, default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 50)]
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct EarliestJson {
    office: String,
    office_name: String,
    city: String,
    country: String,
    #[schema(schema_with = super::openapi::date_time_string)]
    start: String,
    #[schema(schema_with = super::openapi::date_time_string)]
    end: String,
    remaining: u32,
}

/// The earliest free slot at each office, soonest first.
#[utoipa::path(
    get,
    path = "/api/v1/availability/earliest",
    tag = "citizens",
    params(EarliestQuery),
    responses(
        (status = 200, body = Vec<EarliestJson>),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn earliest(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Query(q): Query<EarliestQuery>,
) -> Result<Json<Vec<EarliestJson>>, ApiError> {
    let seats = parse_u32_param(q.seats.as_deref(), "seats", lang)?.unwrap_or(1);
    let limit = parse_u32_param(q.limit.as_deref(), "limit", lang)?.unwrap_or(10);
    if !(1..=5).contains(&seats) || !(1..=50).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            lang,
            "seats va de 1 a 5 y limit de 1 a 50.",
            "seats goes from 1 to 5 and limit from 1 to 50.",
        ));
    }
    let found = booking::earliest(
        &app,
        q.city.as_deref(),
        q.country.as_deref(),
        seats,
        limit as usize,
        Timestamp::now(),
    )
    .await
    .map_err(|e| ApiError::unavailable(lang, &e))?;
    Ok(Json(
        found
            .into_iter()
            .map(|(e, s)| EarliestJson {
                office: e.office.code.clone(),
                office_name: e.office.name.clone(),
                city: e.office.city.clone(),
                country: e.office.country.clone(),
                start: s.start_text,
                end: s.end_text,
                remaining: s.remaining,
            })
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CapacityQuery {
    /// First local date, `YYYY-MM-DD` (default: each office's today).
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Number of days, 1 to 31 (default 14).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 31)]
    days: Option<String>,
    /// One office's code (default: every office).
    office: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ReasonJson {
    #[schema(schema_with = super::openapi::withheld_enum)]
    code: String,
    /// In words, with the holiday's name or the closure's reason.
    es: String,
    en: String,
}

#[derive(Serialize, ToSchema)]
struct CapacityDayJson {
    #[schema(schema_with = super::openapi::date_string)]
    date: String,
    /// Seats in the slots the calendar offers (still bookable).
    offered: u32,
    booked: u32,
    free: u32,
    /// The office's usual day less `offered`.
    withheld: u32,
    /// Why fewer seats than usual (or none) are offered; empty otherwise.
    reasons: Vec<ReasonJson>,
    /// The same seats per pool (`offered`, `booked` and `free` above are
    /// their sums).
    pools: Vec<PoolJson>,
    /// Whether a ballot release gives this day's online seats (not booked
    /// live).
    by_ballot: bool,
    /// Demand: people of ballot requests still waiting for a seat that name
    /// this office and day.
    requests: u32,
}

#[derive(Serialize, ToSchema)]
struct PoolJson {
    #[schema(schema_with = super::openapi::pool_enum)]
    pool: String,
    offered: u32,
    booked: u32,
    free: u32,
}

#[derive(Serialize, ToSchema)]
struct OfficeCapacityJson {
    code: String,
    name: String,
    city: String,
    /// Seats of the office's longest day of the week.
    usual_day_seats: u32,
    #[schema(schema_with = super::openapi::release_mode_enum)]
    release_mode: String,
    /// The percentage of each slot's seats per pool.
    shares: SharesJson,
    days: Vec<CapacityDayJson>,
}

#[derive(Serialize, ToSchema)]
struct StockJson {
    #[schema(schema_with = super::openapi::booklet_type_enum)]
    booklet_type: String,
    in_stock: u64,
    /// Days of stock at the rate of the last 30 days; null when none were issued.
    days_left: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct RationingJson {
    /// True when some booklet type has less than 30 days of stock left.
    applies: bool,
    rule_es: String,
    rule_en: String,
}

#[derive(Serialize, ToSchema)]
struct CapacityJson {
    /// RFC 3339, UTC.
    generated_at: String,
    /// The first date asked for, or the earliest of the offices' todays.
    #[schema(value_type = Option<String>, format = Date)]
    from: Option<String>,
    days: u32,
    offices: Vec<OfficeCapacityJson>,
    stock: Vec<StockJson>,
    rationing: RationingJson,
}

pub(crate) fn capacity_error(lang: Lang, e: CapacityError) -> ApiError {
    match e {
        CapacityError::UnknownOffice => {
            let mut err = ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_office",
                lang,
                "No existe una oficina con ese código. Consulte /api/v1/offices.",
                "There is no office with that code. See /api/v1/offices.",
            );
            err.fields
                .push(("office".into(), "unknown_office", err.message.clone()));
            err
        }
        CapacityError::Invalid(errs) => ApiError::invalid(lang, &errs),
        CapacityError::Store(e) => ApiError::unavailable(lang, &e),
    }
}

async fn load_capacity(
    app: &AppState,
    lang: Lang,
    q: &CapacityQuery,
) -> Result<Capacity, ApiError> {
    let days = parse_u32_param(q.days.as_deref(), "days", lang)?;
    capacity::capacity(
        app,
        q.office.as_deref(),
        q.from.as_deref(),
        days,
        Timestamp::now(),
    )
    .await
    .map_err(|e| capacity_error(lang, e))
}

fn capacity_body(c: &Capacity) -> CapacityJson {
    CapacityJson {
        generated_at: c.generated_at.to_string(),
        from: c.from.map(|d| d.to_string()),
        days: c.days,
        offices: c
            .offices
            .iter()
            .map(|o| OfficeCapacityJson {
                code: o.entry.office.code.clone(),
                name: o.entry.office.name.clone(),
                city: o.entry.office.city.clone(),
                usual_day_seats: o.usual_day_seats,
                release_mode: o.entry.policy.mode.as_str().into(),
                shares: shares_json(&o.entry.policy),
                days: o
                    .days
                    .iter()
                    .map(|d| CapacityDayJson {
                        date: d.date.to_string(),
                        offered: d.offered,
                        booked: d.booked,
                        free: d.free,
                        withheld: d.withheld,
                        by_ballot: d.by_ballot,
                        requests: d.demand,
                        reasons: d
                            .reasons
                            .iter()
                            .map(|r| ReasonJson {
                                code: r.code().into(),
                                es: r.text(Lang::Es),
                                en: r.text(Lang::En),
                            })
                            .collect(),
                        pools: d
                            .pools
                            .iter()
                            .map(|p| PoolJson {
                                pool: p.pool.as_str().into(),
                                offered: p.offered,
                                booked: p.booked,
                                free: p.free(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        stock: c
            .stock
            .iter()
            .map(|s| StockJson {
                booklet_type: s.booklet_type.as_str().into(),
                in_stock: s.in_stock,
                days_left: s.days_left,
            })
            .collect(),
        rationing: RationingJson {
            applies: c.rationing_applies,
            rule_es: capacity::RATIONING_RULE_ES.into(),
            rule_en: capacity::RATIONING_RULE_EN.into(),
        },
    }
}

/// Published capacity: per office and day the seats offered, booked, free and
/// withheld with the reasons; the booklet stock and the rationing rule.
#[utoipa::path(
    get,
    path = "/api/v1/capacity",
    tag = "citizens",
    params(CapacityQuery),
    responses(
        (status = 200, body = CapacityJson),
        (status = 404, response = super::openapi::NotFound),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn capacity_json(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Query(q): Query<CapacityQuery>,
) -> Result<Json<CapacityJson>, ApiError> {
    let c = load_capacity(&app, lang, &q).await?;
    Ok(Json(capacity_body(&c)))
}

/// The published capacity as CSV: one line per office-day, reasons as codes
/// joined by `|` (per pool: `/api/v1/capacity/pools.csv`).
#[utoipa::path(
    get,
    path = "/api/v1/capacity.csv",
    tag = "citizens",
    params(CapacityQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 404, response = super::openapi::NotFound),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn capacity_csv(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Query(q): Query<CapacityQuery>,
) -> Result<Response, ApiError> {
    let c = load_capacity(&app, lang, &q).await?;
    let mut csv = String::from("office,date,offered,booked,free,withheld,reasons\n");
    for o in &c.offices {
        for d in &o.days {
            // Office codes and reason codes hold no comma or quote.
            let reasons: Vec<&str> = d.reasons.iter().map(|r| r.code()).collect();
            csv.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                o.entry.office.code,
                d.date,
                d.offered,
                d.booked,
                d.free,
                d.withheld,
                reasons.join("|")
            ));
        }
    }
    Ok(csv_response(csv, "capacidad.csv"))
}

/// Checkpoints served per request at most (page on with `after`).
const CHECKPOINTS_PAGE_MAX: i64 = 10_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CheckpointsQuery {
    /// Only checkpoints of events after this one (the last `seq` you hold).
    after: Option<i64>,
}

/// The audit trail's signed checkpoints, one per line (`seq hash
/// signed_at_ms key_id signature`), oldest first, at most 10,000 a page.
/// They hold no personal data: anyone may keep a copy, and `pasaporte audit
/// verify --anchor-file` checks the trail against it, so a trail cut
/// together with its checkpoints in the database is still found.
#[utoipa::path(
    get,
    path = "/api/v1/audit/checkpoints.txt",
    tag = "audit",
    params(CheckpointsQuery),
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn audit_checkpoints(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Query(q): Query<CheckpointsQuery>,
) -> Result<Response, ApiError> {
    let list = app
        .store
        .audit_checkpoints_after(q.after.unwrap_or(0).max(0), CHECKPOINTS_PAGE_MAX)
        .await
        .map_err(|e| ApiError::unavailable(lang, &e))?;
    let text: String = list.iter().map(|c| c.to_line() + "\n").collect();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

fn csv_response(csv: String, filename: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
        ],
        csv,
    )
        .into_response()
}

/// The published capacity per pool as CSV: one line per office, day and
/// pool (`online`, `urgent`, `walk_in`, `priority`), with the office's
/// release mode. A separate file, so that the per-day file keeps its columns.
#[utoipa::path(
    get,
    path = "/api/v1/capacity/pools.csv",
    tag = "citizens",
    params(CapacityQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 404, response = super::openapi::NotFound),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn capacity_pools_csv(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Query(q): Query<CapacityQuery>,
) -> Result<Response, ApiError> {
    let c = load_capacity(&app, lang, &q).await?;
    let mut csv = String::from("office,date,release_mode,pool,offered,booked,free\n");
    for o in &c.offices {
        for d in &o.days {
            for p in &d.pools {
                csv.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    o.entry.office.code,
                    d.date,
                    o.entry.policy.mode.as_str(),
                    p.pool,
                    p.offered,
                    p.booked,
                    p.free()
                ));
            }
        }
    }
    Ok(csv_response(csv, "capacidad-por-cupo.csv"))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct ApplicantJson {
    #[schema(schema_with = super::openapi::document_type_enum)]
    document_type: String,
    document_number: String,
    surnames: String,
    given_names: String,
    #[schema(schema_with = super::openapi::date_string)]
    birth_date: String,
}

/// The API's applicants as the booking use case takes them.
pub(crate) fn applicant_inputs(applicants: Vec<ApplicantJson>) -> Vec<ApplicantInput> {
    applicants
        .into_iter()
        .map(|a| ApplicantInput {
            document_type: a.document_type,
            document_number: a.document_number,
            surnames: a.surnames,
            given_names: a.given_names,
            birth_date: a.birth_date,
        })
        .collect()
}

#[derive(Deserialize, ToSchema)]
struct BookingRequestJson {
    office: String,
    /// The slot's start as listed (RFC 3339 with offset).
    #[schema(schema_with = super::openapi::date_time_string)]
    start: String,
    /// One to five people: the first any age, the others minors.
    applicants: Vec<ApplicantJson>,
    email: String,
    phone: Option<String>,
    /// Priority access: `disability` (declared) or `older` (an applicant aged
    /// 60 or over, checked by birth date). The booking takes a priority seat
    /// when the slot's online seats are full.
    #[schema(schema_with = super::openapi::priority_enum)]
    priority: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ApplicantOutJson {
    #[schema(schema_with = super::openapi::document_type_enum)]
    document_type: String,
    /// Only the last four characters are shown.
    document_number: String,
    surnames: String,
    given_names: String,
    #[schema(schema_with = super::openapi::date_string)]
    birth_date: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct BookingJson {
    code: String,
    /// `active`, `checked_in` (the citizen arrived), `no_show` or `cancelled`.
    #[schema(schema_with = super::openapi::booking_status_enum)]
    status: String,
    office: String,
    office_name: String,
    time_zone: String,
    #[schema(schema_with = super::openapi::date_time_string)]
    start: String,
    #[schema(schema_with = super::openapi::date_time_string)]
    end: String,
    seats: u32,
    applicants: Vec<ApplicantOutJson>,
    email: String,
    phone: Option<String>,
    /// The pool its seats came from: `online`, `priority` or `urgent`.
    #[schema(schema_with = super::openapi::pool_enum)]
    pool: String,
}

#[derive(Serialize, ToSchema)]
struct BookedJson {
    code: String,
    /// Send as `Authorization: Bearer {manage_token}` to view, reschedule or cancel.
    manage_token: String,
    /// The citizen's page for this booking.
    manage_url: String,
    booking: BookingJson,
    /// The pool the seats came from: `online`, or `priority` when the slot's
    /// online seats were full and priority access was asked for.
    #[schema(schema_with = super::openapi::pool_enum)]
    pool: String,
    /// Which pool was used, in words.
    pool_note: String,
}

/// Tells the citizen which pool their seats came from.
pub(crate) fn pool_note(lang: Lang, pool: Pool) -> String {
    match pool {
        Pool::Online => lang.pick("Cupo en línea.", "Online seat."),
        Pool::Priority => lang.pick(
            "Los cupos en línea de esa hora estaban llenos: se le asignó un cupo de atención prioritaria.",
            "That time's online seats were full: you were given a priority-access seat.",
        ),
        Pool::Urgent => lang.pick(
            "Cupo de atención urgente concedido por un supervisor.",
            "Urgent seat granted by a supervisor.",
        ),
        Pool::WalkIn => lang.pick("Cupo de atención sin cita.", "Walk-in seat."),
    }
    .to_string()
}

pub(crate) fn booking_json(b: &BookingView) -> BookingJson {
    let o = &b.office.office;
    BookingJson {
        code: b.code.clone(),
        status: b.status.clone(),
        office: o.code.clone(),
        office_name: o.name.clone(),
        time_zone: o.time_zone_name().into(),
        start: rfc3339_local(o, b.start),
        end: rfc3339_local(o, b.end),
        seats: b.seats,
        applicants: b
            .applicants
            .iter()
            .map(|a| ApplicantOutJson {
                document_type: a.document_type.as_str().into(),
                document_number: a.document_number_masked.clone(),
                surnames: a.surnames.clone(),
                given_names: a.given_names.clone(),
                birth_date: a.birth_date.clone(),
            })
            .collect(),
        email: b.email.clone(),
        phone: b.phone.clone(),
        pool: b.pool.as_str().into(),
    }
}

pub(crate) fn book_error(lang: Lang, e: BookError) -> ApiError {
    match e {
        BookError::UnknownOffice => {
            let mut err = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_office",
                lang,
                "No existe una oficina con ese código. Consulte /api/v1/offices.",
                "There is no office with that code. See /api/v1/offices.",
            );
            err.fields
                .push(("office".into(), "unknown_office", err.message.clone()));
            err
        }
        BookError::Invalid(errs) => ApiError::invalid(lang, &errs),
        BookError::RateLimited(wait) => super::too_many(lang, wait),
        BookError::SlotFull => ApiError::new(
            StatusCode::CONFLICT,
            "slot_full",
            lang,
            "Esa hora ya no tiene cupos. Elija otra hora.",
            "That time has no seats left. Choose another time.",
        ),
        BookError::AlreadyBooked => ApiError::new(
            StatusCode::CONFLICT,
            "already_booked",
            lang,
            "Una de las personas ya tiene una cita activa. Cámbiela o cancélela antes de reservar otra.",
            "One of the people already has an active appointment. Change or cancel it before booking another.",
        ),
        BookError::IdempotencyKeyReused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            lang,
            "Esa Idempotency-Key ya se usó con otra petición. Use una clave nueva para cada reserva.",
            "That Idempotency-Key was already used with another request. Use a new key for each booking.",
        ),
        BookError::Unavailable(m) => ApiError::unavailable(lang, &m),
        BookError::Internal(m) => ApiError::internal(lang, &m),
    }
}

/// Book a slot for one to five people (all seats or none).
#[utoipa::path(
    post,
    path = "/api/v1/bookings",
    tag = "citizens",
    request_body = BookingRequestJson,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 201, body = BookedJson),
        (status = 200, body = BookedJson, description = "A retry with the same Idempotency-Key"),
        (status = 400, response = super::openapi::BadJson),
        (status = 409, body = super::ErrorBody, description = "`slot_full` or `already_booked`"),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, body = super::ErrorBody, description = "Invalid fields, each named; `unknown_office`, `idempotency_key_reused`, `invalid_idempotency_key`"),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn create_booking(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    headers: HeaderMap,
    ApiJson(req): ApiJson<BookingRequestJson>,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_idempotency_key",
                lang,
                "La cabecera Idempotency-Key debe ser texto visible.",
                "The Idempotency-Key header must be visible text.",
            )
        })?),
    };
    let claim = match req.priority.as_deref().map(str::trim) {
        None | Some("") => booking::SeatClaim::Online,
        Some(p) => match booking::PriorityReason::parse(p) {
            Some(r) => booking::SeatClaim::Priority(r),
            None => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    lang,
                    "La atención prioritaria es disability u older.",
                    "Priority access is disability or older.",
                );
                err.fields
                    .push(("priority".into(), "unknown_priority", err.message.clone()));
                return Err(err);
            }
        },
    };
    let input = BookingInput {
        start: req.start,
        applicants: applicant_inputs(req.applicants),
        email: req.email,
        phone: req.phone,
    };
    let now = Timestamp::now();
    let booked = booking::book_from(&app, &req.office, &input, key, &claim, lang, now)
        .await
        .map_err(|e| book_error(lang, e))?;
    let view = match booked.view {
        Some(v) => v,
        None => booking::view(&app, &booked.code, &booked.manage_token)
            .await
            .map_err(|e| manage_error(lang, e))?,
    };
    let status = if booked.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = BookedJson {
        manage_url: crate::mail::manage_url(&app, &booked.code, &booked.manage_token),
        code: booked.code,
        manage_token: booked.manage_token,
        booking: booking_json(&view),
        pool: booked.pool.as_str().into(),
        pool_note: pool_note(lang, booked.pool),
    };
    Ok((status, Json(body)).into_response())
}

/// The manage token from `Authorization: Bearer ...`.
pub(crate) struct Bearer(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let lang = super::ReqLang::from_request_parts(parts, &())
            .await
            .map(|l| l.0)
            .unwrap_or_default();
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Bearer(t.trim().to_string()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_token",
                    lang,
                    "Envíe la clave de su cita como Authorization: Bearer <clave>.",
                    "Send your booking's token as Authorization: Bearer <token>.",
                )
            })
    }
}

pub(crate) fn manage_error(lang: Lang, e: ManageError) -> ApiError {
    match e {
        ManageError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "booking_not_found",
            lang,
            "No encontramos una cita con ese código y esa clave.",
            "No appointment matches that code and token.",
        ),
        ManageError::NotActive => ApiError::new(
            StatusCode::CONFLICT,
            "booking_cancelled",
            lang,
            "Esta cita fue cancelada; reserve una nueva.",
            "This appointment was cancelled; book a new one.",
        ),
        ManageError::Invalid(errs) => ApiError::invalid(lang, &errs),
        ManageError::SlotFull => ApiError::new(
            StatusCode::CONFLICT,
            "slot_full",
            lang,
            "Esa hora ya no tiene cupos; su cita sigue en la hora anterior.",
            "That time has no seats left; your appointment keeps its previous time.",
        ),
        ManageError::SameSlot => ApiError::new(
            StatusCode::CONFLICT,
            "same_slot",
            lang,
            "Su cita ya está a esa hora.",
            "Your appointment is already at that time.",
        ),
        ManageError::Unavailable(m) => ApiError::unavailable(lang, &m),
        ManageError::Internal(m) => ApiError::internal(lang, &m),
    }
}

/// View a booking (its manage token as Bearer).
#[utoipa::path(
    get,
    path = "/api/v1/bookings/{code}",
    tag = "citizens",
    params(("code" = String, Path, description = "The booking's code")),
    security(("manage_token" = [])),
    responses(
        (status = 200, body = BookingJson),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn get_booking(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Bearer(token): Bearer,
) -> Result<Json<BookingJson>, ApiError> {
    let b = booking::view(&app, &code, &token)
        .await
        .map_err(|e| manage_error(lang, e))?;
    Ok(Json(booking_json(&b)))
}

#[derive(Deserialize, ToSchema)]
struct RescheduleJson {
    /// The new slot's start, at the same office.
    #[schema(schema_with = super::openapi::date_time_string)]
    start: String,
}

/// Move a booking to another slot of the same office (atomic).
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{code}/reschedule",
    tag = "citizens",
    params(("code" = String, Path, description = "The booking's code")),
    request_body = RescheduleJson,
    security(("manage_token" = [])),
    responses(
        (status = 200, body = BookingJson),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, body = super::ErrorBody, description = "`slot_full`, `same_slot` or `booking_cancelled`"),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn reschedule_booking(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Bearer(token): Bearer,
    ApiJson(req): ApiJson<RescheduleJson>,
) -> Result<Json<BookingJson>, ApiError> {
    let b = booking::reschedule(&app, &code, &token, &req.start, lang, Timestamp::now())
        .await
        .map_err(|e| manage_error(lang, e))?;
    Ok(Json(booking_json(&b)))
}

/// Cancel a booking and free its seats.
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{code}/cancel",
    tag = "citizens",
    params(("code" = String, Path, description = "The booking's code")),
    security(("manage_token" = [])),
    responses(
        (status = 200, body = BookingJson),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, body = super::ErrorBody, description = "`booking_cancelled`"),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn cancel_booking(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Bearer(token): Bearer,
) -> Result<Json<BookingJson>, ApiError> {
    let b = booking::cancel(&app, &code, &token, lang, Timestamp::now())
        .await
        .map_err(|e| manage_error(lang, e))?;
    Ok(Json(booking_json(&b)))
}

/// The appointment as an iCalendar file in the office's time zone.
#[utoipa::path(
    get,
    path = "/api/v1/bookings/{code}/calendar.ics",
    tag = "citizens",
    params(("code" = String, Path, description = "The booking's code")),
    security(("manage_token" = [])),
    responses(
        (status = 200, content_type = "text/calendar", body = String),
        (status = 401, response = super::openapi::MissingToken),
        (status = 404, response = super::openapi::NotFound),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn booking_calendar(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Bearer(token): Bearer,
) -> Result<Response, ApiError> {
    let b = booking::view(&app, &code, &token)
        .await
        .map_err(|e| manage_error(lang, e))?;
    Ok(calendar_response(lang, &b))
}

/// The `.ics` download of a booking (shared with the pages).
pub(crate) fn calendar_response(lang: Lang, b: &BookingView) -> Response {
    let ics = crate::ics::appointment(
        &b.office.office,
        &b.id,
        b.start,
        b.end,
        Timestamp::now(),
        lang.pick("Cita de pasaporte", "Passport appointment"),
        &format!("{}: {}", lang.pick("Código", "Code"), b.code),
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"cita-{}.ics\"", b.code),
            ),
        ],
        ics,
    )
        .into_response()
}
