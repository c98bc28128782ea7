//! The production pipeline's JSON routes: orders and vendors for
//! supervisors, administrators and auditors; receipt, hand-over and
//! emergency issue for the office's clerks; the printing vendors' signed
//! callbacks. The routes and their actions are listed in
//! [`super::staff_api::STAFF_ROUTES`] with the others, so one policy gate
//! checks them all.

use super::staff_api::{Scope, authorize, offices_to_read, work_error};
use super::{ApiError, ApiJson, AppState, ReqLang};
use crate::auth::{StaffSession, StaffWrite};
use crate::i18n::Lang;
use crate::pipeline::{self, EventOutcome, HandOverForm, Receipt};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::policy::Action;
use pasaporte_store::{ORDER_LIST_MAX, OrderCount, OrderRow, OrderState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A production order.
#[derive(Serialize, ToSchema)]
pub struct OrderJson {
    order_id: String,
    application_id: String,
    office: String,
    vendor: Option<String>,
    #[schema(schema_with = super::openapi::order_state_enum)]
    state: &'static str,
    passport_number: String,
    #[schema(schema_with = super::openapi::booklet_type_enum)]
    booklet_type: String,
    booklet_serial: Option<String>,
    sends: i64,
    failures: i64,
    last_error: Option<String>,
    tracking: Option<String>,
    /// Unix milliseconds.
    created_ms: i64,
    updated_ms: i64,
}

fn order_json(o: &OrderRow) -> OrderJson {
    OrderJson {
        order_id: o.order_id.clone(),
        application_id: o.application_id.clone(),
        office: o.office.clone(),
        vendor: o.vendor_id.clone(),
        state: o.state.as_str(),
        passport_number: o.passport_number.clone(),
        booklet_type: o.booklet_type.clone(),
        booklet_serial: o.booklet_serial.clone(),
        sends: o.sends,
        failures: o.failures,
        last_error: o.last_error.clone(),
        tracking: o.tracking.clone(),
        created_ms: o.created_ms,
        updated_ms: o.updated_ms,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// One order state (`dead` by default); every state's counts come with
    /// any answer.
    #[param(schema_with = super::openapi::order_state_enum)]
    state: Option<String>,
    /// One vendor's orders.
    vendor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderCountJson {
    vendor: Option<String>,
    #[schema(schema_with = super::openapi::order_state_enum)]
    state: &'static str,
    count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct OrdersJson {
    /// Per vendor and state, over the person's offices.
    counts: Vec<OrderCountJson>,
    /// The state listed.
    #[schema(schema_with = super::openapi::order_state_enum)]
    state: &'static str,
    orders: Vec<OrderJson>,
}

fn bad_state(lang: Lang) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "unknown_order_state",
        lang,
        "Estado de pedido desconocido: use queued, dead, accepted, in_production, printed, quality_passed, shipped, received, quality_failed o mismatch.",
        "Unknown order state: use queued, dead, accepted, in_production, printed, quality_passed, shipped, received, quality_failed or mismatch.",
    )
}

/// The order counts and the orders in `state` of the offices the person
/// works for (an order carries its holder's passport number, booklet and
/// tracking: office data). Read office by office, so that one large office
/// never crowds a small one out of the list's limit.
pub async fn scoped_orders(
    app: &crate::app::App,
    staff: &StaffSession,
    state: OrderState,
    vendor: Option<&str>,
) -> Result<(Vec<OrderCount>, Vec<OrderRow>), pasaporte_store::StoreError> {
    let mut counts: Vec<OrderCount> = Vec::new();
    let mut list = Vec::new();
    for office in offices_to_read(staff, None) {
        for c in app.store.order_counts(office).await? {
            match counts
                .iter_mut()
                .find(|x| x.vendor_id == c.vendor_id && x.state == c.state)
            {
                Some(x) => x.count += c.count,
                None => counts.push(c),
            }
        }
        list.extend(
            app.store
                .orders_in_state(state, vendor, office, ORDER_LIST_MAX)
                .await?
                .into_iter()
                .filter(|o| staff.may_use_office(&o.office)),
        );
    }
    counts.sort_by(|a, b| (&a.vendor_id, a.state.as_str()).cmp(&(&b.vendor_id, b.state.as_str())));
    list.sort_by(|a, b| (a.created_ms, &a.order_id).cmp(&(b.created_ms, &b.order_id)));
    Ok((counts, list))
}

/// `GET /api/v1/staff/orders`: counts per vendor and state, and the orders
/// of one state (the dead letters by default).
#[utoipa::path(
    get,
    path = "/api/v1/staff/orders",
    tag = "production",
    params(OrdersQuery),
    security(("staff_session" = [])),
    responses(
        (status = 200, body = OrdersJson),
        (status = 400, body = super::ErrorBody, description = "`unknown_order_state`"),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn orders(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
    Query(q): Query<OrdersQuery>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    authorize(&staff, lang, Action::ViewProduction, None, now)?;
    let state = match q.state.as_deref() {
        None | Some("") => OrderState::Dead,
        Some(s) => OrderState::parse(s).ok_or_else(|| bad_state(lang))?,
    };
    let (counts, list) = scoped_orders(&app, &staff, state, q.vendor.as_deref())
        .await
        .map_err(|e| work_error(lang, e.into()))?;
    Ok(Json(OrdersJson {
        counts: counts
            .iter()
            .map(|c| OrderCountJson {
                vendor: c.vendor_id.clone(),
                state: c.state.as_str(),
                count: c.count,
            })
            .collect(),
        state: state.as_str(),
        orders: list.iter().map(order_json).collect(),
    })
    .into_response())
}

/// A printing vendor and its routing (never its key).
#[derive(Serialize, ToSchema)]
pub struct VendorJson {
    id: String,
    base_url: String,
    site: String,
    #[schema(schema_with = super::openapi::vendor_state_enum)]
    state: String,
    /// Its share of the orders it may take, in percent.
    share: i64,
    /// Comma-separated passport types it prints (empty: every type).
    passport_types: String,
    /// Comma-separated offices it serves (empty: every office).
    offices: String,
    updated_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct VendorsJson {
    vendors: Vec<VendorJson>,
}

/// `GET /api/v1/staff/vendors`: the vendors and their routing (never keys).
#[utoipa::path(
    get,
    path = "/api/v1/staff/vendors",
    tag = "production",
    security(("staff_session" = [])),
    responses(
        (status = 200, body = VendorsJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn vendors(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffSession,
) -> Result<Response, ApiError> {
    authorize(&staff, lang, Action::ViewProduction, None, Timestamp::now())?;
    let list = app
        .store
        .vendors()
        .await
        .map_err(|e| work_error(lang, e.into()))?;
    Ok(Json(VendorsJson {
        vendors: list
            .iter()
            .map(|v| VendorJson {
                id: v.id.clone(),
                base_url: v.base_url.clone(),
                site: v.site.clone(),
                state: v.state.clone(),
                share: v.share,
                passport_types: v.passport_types.clone(),
                offices: v.offices.clone(),
                updated_ms: v.updated_ms,
            })
            .collect(),
    })
    .into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct VendorStateBody {
    #[schema(schema_with = super::openapi::vendor_state_enum)]
    state: String,
}

/// An object's id and its new state.
#[derive(Serialize, ToSchema)]
pub struct IdStateJson {
    pub id: String,
    pub state: String,
}

/// `POST /api/v1/staff/vendors/{id}/state`: the vendor switch.
#[utoipa::path(
    post,
    path = "/api/v1/staff/vendors/{id}/state",
    tag = "production",
    params(("id" = String, Path, description = "The vendor's id")),
    request_body = VendorStateBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = IdStateJson),
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
pub async fn vendor_state(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VendorStateBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::ManageVendors, None, now)?;
    if !matches!(body.state.as_str(), "active" | "draining") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_vendor_state",
            lang,
            "El estado de un proveedor es active o draining.",
            "A vendor's state is active or draining.",
        ));
    }
    pipeline::set_vendor_state(&app.store, &staff.actor(), &id, &body.state, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(IdStateJson {
        id,
        state: body.state,
    })
    .into_response())
}

/// `POST /api/v1/staff/orders/{id}/resend`: a dead letter goes back to the
/// outbox.
#[utoipa::path(
    post,
    path = "/api/v1/staff/orders/{id}/resend",
    tag = "production",
    params(("id" = String, Path, description = "The order's id")),
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = OrderJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn resend(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::ResendOrder, None, now)?;
    let o = pipeline::resend_order(&app, &staff.actor(), &Scope(staff), &id, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(order_json(&o)).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct ReceiveBody {
    /// The booklet's MRZ as scanned or typed: two lines of 44 characters.
    mrz: String,
}

/// The booklet received at the office.
#[derive(Serialize, ToSchema)]
pub struct ReceivedJson {
    id: String,
    /// `ready` (it matches the record) or `reprint` (spoiled, another ordered).
    result: &'static str,
    #[schema(schema_with = super::openapi::application_state_enum)]
    state: &'static str,
    message: String,
}

/// `POST /api/v1/staff/applications/{id}/receive`.
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/receive",
    tag = "production",
    params(("id" = String, Path, description = "The application's id")),
    request_body = ReceiveBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = ReceivedJson),
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
pub async fn receive(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReceiveBody>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::HandOver, None, now)?;
    let r = pipeline::receive_booklet(&app, &staff.actor(), &Scope(staff), &id, &body.mrz, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    let (result, state, message) = match r {
        Receipt::Ready => (
            "ready",
            "ready_for_pickup",
            lang.pick(
                "La libreta coincide con el registro: lista para entregar; se avisó al ciudadano.",
                "The booklet matches the record: ready for pick-up; the citizen was told.",
            ),
        ),
        Receipt::Reprint => (
            "reprint",
            "in_production",
            lang.pick(
                "La zona de lectura mecánica no coincide con el registro: la libreta se anuló y se pidió otra.",
                "The machine readable zone does not match the record: the booklet was spoiled and a new one ordered.",
            ),
        ),
    };
    Ok(Json(ReceivedJson {
        id,
        result,
        state,
        message: message.to_string(),
    })
    .into_response())
}

/// `POST /api/v1/staff/applications/{id}/hand-over`.
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/hand-over",
    tag = "production",
    params(("id" = String, Path, description = "The application's id")),
    request_body = HandOverForm,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = IdStateJson, description = "The state is `issued`"),
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
pub async fn hand_over(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HandOverForm>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::HandOver, None, now)?;
    pipeline::hand_over(&app, &staff.actor(), &Scope(staff), &id, &body, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(IdStateJson {
        id,
        state: "issued".into(),
    })
    .into_response())
}

/// An emergency passport issued at the office.
#[derive(Serialize, ToSchema)]
pub struct EmergencyJson {
    id: String,
    /// Always `ready_for_pickup`.
    #[schema(schema_with = super::openapi::application_state_enum)]
    state: &'static str,
    passport_number: String,
    booklet_serial: String,
    #[schema(schema_with = super::openapi::date_string)]
    issue_date: String,
    #[schema(schema_with = super::openapi::date_string)]
    expiry_date: String,
    /// The two MRZ lines.
    mrz: Vec<String>,
}

/// `POST /api/v1/staff/applications/{id}/emergency`: issue an emergency
/// passport at the office.
#[utoipa::path(
    post,
    path = "/api/v1/staff/applications/{id}/emergency",
    tag = "production",
    params(("id" = String, Path, description = "The application's id")),
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = EmergencyJson),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn emergency(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    staff: StaffWrite,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let staff = &staff.0;
    let now = Timestamp::now();
    authorize(staff, lang, Action::HandOver, None, now)?;
    let (record, serial) = pipeline::issue_emergency(&app, &staff.actor(), &Scope(staff), &id, now)
        .await
        .map_err(|e| work_error(lang, e))?;
    Ok(Json(EmergencyJson {
        id,
        state: "ready_for_pickup",
        passport_number: record.passport_number.to_string(),
        booklet_serial: serial,
        issue_date: record.issue_date.to_string(),
        expiry_date: record.expiry_date.to_string(),
        mrz: record.mrz.to_vec(),
    })
    .into_response())
}

/// What became of a vendor's event.
#[derive(Serialize, ToSchema)]
pub struct EventOutcomeJson {
    event_id: String,
    /// `applied`, `replay` (already applied) or `ignored`.
    outcome: &'static str,
}

/// `POST /api/v1/vendors/callback`: a vendor's signed status event. 2xx for
/// an event applied, replayed or ignored (so the vendor stops sending it);
/// 401 for a bad signature or a stale timestamp; 400 for a malformed event.
#[utoipa::path(
    post,
    path = "/api/v1/vendors/callback",
    tag = "callbacks",
    params(
        ("x-pasaporte-key-id" = String, Header, description = "The vendor key that signed"),
        ("x-pasaporte-timestamp" = i64, Header, description = "Unix seconds, within 5 minutes of the receiver's clock"),
    ),
    request_body = crate::vendors::protocol::VendorEvent,
    security(("vendor_signature" = [])),
    responses(
        (status = 200, body = EventOutcomeJson),
        (status = 400, description = "A malformed event or timestamp", content_type = "text/plain", body = String),
        (status = 401, description = "A bad signature or a stale timestamp", content_type = "text/plain", body = String),
        (status = 404, response = super::openapi::NotFound),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, description = "The body is over 16 KiB", content_type = "text/plain", body = String),
        (status = 422, response = super::openapi::Invalid),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
pub async fn vendor_callback(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let vendors = match app.vendors.load(&app).await {
        Ok(v) => v,
        Err(e) => return work_error(Lang::En, e).into_response(),
    };
    let keys: Vec<_> = vendors.iter().map(|v| v.key.clone()).collect();
    let now = Timestamp::now();
    let verified =
        match crate::vendors::verify_vendor_callback(&keys, &headers, &body, now.as_second()) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "vendor callback refused");
                return (e.status(), e.to_string()).into_response();
            }
        };
    match pipeline::apply_vendor_event(&app, &verified.key_id, &verified.event, now).await {
        Ok(outcome) => {
            let word = match outcome {
                EventOutcome::Applied => "applied",
                EventOutcome::Replay => "replay",
                EventOutcome::Ignored => "ignored",
            };
            Json(EventOutcomeJson {
                event_id: verified.event.event_id,
                outcome: word,
            })
            .into_response()
        }
        Err(e) => {
            tracing::warn!(event = %verified.event.event_id, error = %e, "vendor event not applied");
            work_error(Lang::En, e).into_response()
        }
    }
}
