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
use serde::Deserialize;

fn order_json(o: &OrderRow) -> serde_json::Value {
    serde_json::json!({
        "order_id": o.order_id,
        "application_id": o.application_id,
        "office": o.office,
        "vendor": o.vendor_id,
        "state": o.state.as_str(),
        "passport_number": o.passport_number,
        "booklet_type": o.booklet_type,
        "booklet_serial": o.booklet_serial,
        "sends": o.sends,
        "failures": o.failures,
        "last_error": o.last_error,
        "tracking": o.tracking,
        "created_ms": o.created_ms,
        "updated_ms": o.updated_ms,
    })
}

#[derive(Deserialize)]
pub struct OrdersQuery {
    /// One order state (`queued`, `dead`, ...); every state's counts come
    /// with any answer.
    state: Option<String>,
    vendor: Option<String>,
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
    Ok(Json(serde_json::json!({
        "counts": counts.iter().map(|c| serde_json::json!({
            "vendor": c.vendor_id, "state": c.state.as_str(), "count": c.count,
        })).collect::<Vec<_>>(),
        "state": state.as_str(),
        "orders": list.iter().map(order_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `GET /api/v1/staff/vendors`: the vendors and their routing (never keys).
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
    Ok(Json(serde_json::json!({
        "vendors": list.iter().map(|v| serde_json::json!({
            "id": v.id, "base_url": v.base_url, "site": v.site, "state": v.state,
            "share": v.share, "passport_types": v.passport_types, "offices": v.offices,
            "updated_ms": v.updated_ms,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct VendorStateBody {
    /// `active` or `draining`.
    state: String,
}

/// `POST /api/v1/staff/vendors/{id}/state`: the vendor switch.
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
    Ok(Json(serde_json::json!({"id": id, "state": body.state})).into_response())
}

/// `POST /api/v1/staff/orders/{id}/resend`: a dead letter goes back to the
/// outbox.
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

#[derive(Deserialize)]
pub struct ReceiveBody {
    /// The booklet's MRZ as scanned or typed: two lines of 44 characters.
    mrz: String,
}

/// `POST /api/v1/staff/applications/{id}/receive`.
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
    Ok(
        Json(serde_json::json!({"id": id, "result": result, "state": state, "message": message}))
            .into_response(),
    )
}

/// `POST /api/v1/staff/applications/{id}/hand-over`.
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
    Ok(Json(serde_json::json!({"id": id, "state": "issued"})).into_response())
}

/// `POST /api/v1/staff/applications/{id}/emergency`: issue an emergency
/// passport at the office.
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
    Ok(Json(serde_json::json!({
        "id": id,
        "state": "ready_for_pickup",
        "passport_number": record.passport_number.to_string(),
        "booklet_serial": serial,
        "issue_date": record.issue_date.to_string(),
        "expiry_date": record.expiry_date.to_string(),
        "mrz": record.mrz,
    }))
    .into_response())
}

/// `POST /api/v1/vendors/callback`: a vendor's signed status event. 2xx for
/// an event applied, replayed or ignored (so the vendor stops sending it);
/// 401 for a bad signature or a stale timestamp; 400 for a malformed event.
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
            Json(serde_json::json!({"event_id": verified.event.event_id, "outcome": word}))
                .into_response()
        }
        Err(e) => {
            tracing::warn!(event = %verified.event.event_id, error = %e, "vendor event not applied");
            work_error(Lang::En, e).into_response()
        }
    }
}
