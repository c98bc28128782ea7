//! The staff console's work pages, server-rendered (Spanish by default,
//! `?lang=en`; no JavaScript; usable with the keyboard alone): an office's
//! day with check-in, walk-ins and calls; one application with its history
//! and the forms its state and the person's role allow (capture as
//! `multipart/form-data`, approve, decide, registry override, waivers); the
//! photo; the supervisor's work lists; the reconciliation report (and its
//! CSV); the audit trail's verdict; booklet stock with its forecast; the
//! production orders and vendors (re-send a dead letter, the vendor
//! switch); at the office, receipt of a booklet (its MRZ), hand-over and
//! emergency issue on the application's page.
//!
//! Every handler asks the session for its [`Action`] first (the list is
//! [`CONSOLE_ROUTES`]); offices outside the person's assignment answer 404
//! like unknown ones. Forms post with the session's CSRF token
//! ([`ConsoleForm`], or by hand for the multipart capture), then redirect
//! (303) back with a short notice code in the query (never personal data),
//! or re-render with an error summary and the typed values kept.
//!
//! Layout: routes and the route table; shared pieces (inputs, forms,
//! failures); then one section per page; the page structs at the end.

use super::console_auth::{ConsoleChrome, message};
use super::staff_api::{self, OfficeOnly, Scope};
use super::{AppState, ReqLang};
use crate::auth::{ConsoleForm, StaffSession, enc};
use crate::i18n::{Lang, state_label};
use crate::i18n::{booklet_state_label, booklet_type_label, order_state_label, vendor_state_label};
use crate::pipeline::{self, HandOverForm, Receipt};
use crate::workflow::{self, Arrival, CaptureForm, IdentityDoc, WalkInInput, WorkError};
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use pasaporte_core::application::{Command, State as AppStateKind};
use pasaporte_core::fees::{Currency, Money, PassportType};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::office::Office;
use pasaporte_core::person::DocumentType;
use pasaporte_core::policy::{Action, allows};
use pasaporte_store::{ORDER_LIST_MAX, OrderRow, OrderState};
use serde::Deserialize;
use std::collections::HashMap;
use tower_http::set_header::SetResponseHeaderLayer;

/// Every console work page with the action it is checked against: the route
/// matrix test walks this list (with `staff_api::STAFF_ROUTES`) for every role.
mod releases;

pub const CONSOLE_ROUTES: &[(Method, &str, Action)] = &[
    (Method::GET, "/console/releases", Action::ManageReleases),
    (Method::POST, "/console/releases", Action::ManageReleases),
    (
        Method::POST,
        "/console/releases/{id}/draw",
        Action::ManageReleases,
    ),
    (
        Method::GET,
        "/console/office/{code}/today",
        Action::ViewOfficeDay,
    ),
    (
        Method::POST,
        "/console/office/{code}/check-in",
        Action::CheckIn,
    ),
    (
        Method::POST,
        "/console/office/{code}/walk-in",
        Action::CheckIn,
    ),
    (Method::POST, "/console/office/{code}/call", Action::CheckIn),
    (
        Method::GET,
        "/console/applications/{id}",
        Action::ViewApplication,
    ),
    (
        Method::GET,
        "/console/applications/{id}/photo.png",
        Action::ViewApplication,
    ),
    (
        Method::POST,
        "/console/applications/{id}/capture",
        Action::Capture,
    ),
    (
        Method::POST,
        "/console/applications/{id}/approve",
        Action::Approve,
    ),
    (
        Method::POST,
        "/console/applications/{id}/decision",
        Action::Decide,
    ),
    (
        Method::POST,
        "/console/applications/{id}/registry-override",
        Action::OverrideRegistry,
    ),
    (
        Method::POST,
        "/console/applications/{id}/waiver",
        Action::TakePayment,
    ),
    (
        Method::POST,
        "/console/applications/{id}/waiver/decision",
        Action::ApproveWaiver,
    ),
    (
        Method::GET,
        "/console/supervisor",
        Action::ViewSupervisorQueues,
    ),
    (
        Method::POST,
        "/console/supervisor/closures",
        Action::ManageOfficeDays,
    ),
    (
        Method::GET,
        "/console/reconciliation",
        Action::ViewReconciliation,
    ),
    (
        Method::GET,
        "/console/reconciliation.csv",
        Action::ViewReconciliation,
    ),
    (Method::GET, "/console/audit", Action::ViewAudit),
    (
        Method::POST,
        "/console/applications/{id}/receive",
        Action::HandOver,
    ),
    (
        Method::POST,
        "/console/applications/{id}/hand-over",
        Action::HandOver,
    ),
    (
        Method::POST,
        "/console/applications/{id}/emergency",
        Action::HandOver,
    ),
    (Method::GET, "/console/stock", Action::ViewStock),
    (Method::GET, "/console/production", Action::ViewProduction),
    (
        Method::POST,
        "/console/production/orders/{id}/resend",
        Action::ResendOrder,
    ),
    (
        Method::POST,
        "/console/production/vendors/{id}/state",
        Action::ManageVendors,
    ),
];

/// Largest capture post: a 2 MiB portrait, a 512 KiB signature, the typed
/// fields and the multipart framing.
pub const CAPTURE_FORM_BYTES_MAX: usize =
    crate::photo::PORTRAIT_BYTES_MAX + crate::photo::SIGNATURE_BYTES_MAX + 64 * 1024;
/// A typed field of the capture form: the longest legitimate one (a place of
/// birth, a police report) is about 100 characters.
pub const CAPTURE_TEXT_BYTES_MAX: usize = 1024;
/// Parts in a capture post: the form has about 35 fields.
pub const CAPTURE_PARTS_MAX: usize = 64;
/// Waivers shown on the supervisor page (each one reads its application).
pub const WAIVERS_SHOWN_MAX: usize = 200;
/// People named in an application's history (each one is a lookup); past
/// this, ids are shown as they are.
pub const HISTORY_NAMES_MAX: usize = 32;
/// Tickets named in a check-in notice (a booking holds at most five people).
const NOTICE_CHARS_MAX: usize = 64;
/// Sites whose stock is shown one by one (each one is a query): the vendors'
/// sites and the offices' emergency stock, a few dozen at most.
pub const STOCK_SITES_SHOWN_MAX: usize = 64;
/// A booklet type with fewer days of stock left than this is flagged on the
/// stock page: a new delivery takes about a month to arrive.
pub const STOCK_DAYS_LOW: f64 = 30.0;

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route("/console/office/{code}/today", get(today))
        .route("/console/office/{code}/check-in", post(check_in))
        .route("/console/office/{code}/walk-in", post(walk_in))
        .route("/console/office/{code}/call", post(call))
        .route("/console/applications/{id}", get(application))
        .route("/console/applications/{id}/photo.png", get(photo))
        .route(
            "/console/applications/{id}/capture",
            post(capture).layer(DefaultBodyLimit::max(CAPTURE_FORM_BYTES_MAX)),
        )
        .route("/console/applications/{id}/approve", post(approve))
        .route("/console/applications/{id}/decision", post(decision))
        .route(
            "/console/applications/{id}/registry-override",
            post(registry_override),
        )
        .route("/console/applications/{id}/waiver", post(waiver))
        .route(
            "/console/applications/{id}/waiver/decision",
            post(waiver_decision),
        )
        .route("/console/supervisor", get(supervisor))
        .route("/console/supervisor/closures", post(close_day))
        .route("/console/reconciliation", get(reconciliation))
        .route("/console/reconciliation.csv", get(reconciliation_csv))
        .route("/console/audit", get(audit))
        .route("/console/applications/{id}/receive", post(receive))
        .route("/console/applications/{id}/hand-over", post(hand_over))
        .route("/console/applications/{id}/emergency", post(emergency))
        .route("/console/stock", get(stock))
        .route(
            "/console/releases",
            get(releases::page).post(releases::open),
        )
        .route("/console/releases/{id}/draw", post(releases::draw))
        .route("/console/production", get(production))
        .route("/console/production/orders/{id}/resend", post(resend))
        .route("/console/production/vendors/{id}/state", post(vendor_state))
        // Every route above is checked against the policy table before its
        // handler runs, and so before a form or an upload is read.
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::policy_gate,
        ))
        // Personal data and CSRF tokens: nothing here is cacheable.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// The page a refusal sends the person back to (after re-authentication):
/// an application's page for its forms, an office's day for its forms, the
/// production page for its forms, else the page itself.
pub fn page_of(uri: &Uri, lang: Lang) -> Uri {
    let path = uri.path();
    let segments: Vec<&str> = path.split('/').collect();
    let back = match segments.as_slice() {
        ["", "console", "applications", id, _, ..] => {
            Some(format!("/console/applications/{id}?lang={}", lang.code()))
        }
        ["", "console", "office", code, _, ..] => {
            Some(format!("/console/office/{code}/today?lang={}", lang.code()))
        }
        ["", "console", "production", _, ..] => {
            Some(format!("/console/production?lang={}", lang.code()))
        }
        _ => None,
    };
    back.and_then(|b| b.parse().ok())
        .unwrap_or_else(|| uri.clone())
}

// ---------------------------------------------------------------------------
// Shared pieces.

/// One option of a select.
#[derive(Clone, Debug)]
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One form control with its label, hint and error.
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub id: String,
    pub name: String,
    pub label: String,
    /// `text`, `email`, `tel`, `hidden`, `file`, `select`, `textarea`.
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Opt>,
    pub hint: String,
    pub error: Option<String>,
    pub accept: &'static str,
    pub autocomplete: &'static str,
    pub autofocus: bool,
}

impl Input {
    pub fn is_hidden(&self) -> bool {
        self.kind == "hidden"
    }
    pub fn is_select(&self) -> bool {
        self.kind == "select"
    }
    pub fn is_textarea(&self) -> bool {
        self.kind == "textarea"
    }
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.hint.is_empty() {
            ids.push(format!("{}-hint", self.id));
        }
        if self.error.is_some() {
            ids.push(format!("{}-error", self.id));
        }
        ids.join(" ")
    }
}

/// A labelled group of inputs (`<fieldset>`).
#[derive(Clone, Debug)]
pub struct Group {
    pub legend: String,
    pub inputs: Vec<Input>,
}

/// A form as the page shows it.
#[derive(Clone, Debug)]
pub struct FormView {
    pub id: &'static str,
    pub heading: String,
    pub intro: String,
    pub action: String,
    pub multipart: bool,
    pub csrf: String,
    pub groups: Vec<Group>,
    pub submit: String,
}

/// A link in the error summary.
#[derive(Clone, Debug)]
pub struct ErrorItem {
    pub href: String,
    pub message: String,
}

/// What is wrong with a submitted form: a field (by the use case's path) or
/// the form as a whole.
#[derive(Clone, Debug)]
pub struct Problem {
    pub field: Option<String>,
    pub message: String,
}

/// The form that was submitted, with what was typed and what is wrong.
#[derive(Clone, Debug, Default)]
pub struct Submitted {
    pub form: &'static str,
    pub values: HashMap<String, String>,
    pub problems: Vec<Problem>,
}

/// An id for a field path: `guardians[0].document_number` →
/// `capture-guardians-0--document_number`.
fn field_id(form: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{form}-{clean}")
}

/// Builds one form's inputs with the submitted values and errors.
struct Fields<'a> {
    form: &'static str,
    lang: Lang,
    sub: Option<&'a Submitted>,
}

impl<'a> Fields<'a> {
    fn new(form: &'static str, lang: Lang, sub: &'a Option<Submitted>) -> Self {
        Self {
            form,
            lang,
            sub: sub.as_ref().filter(|s| s.form == form),
        }
    }

    fn input(&self, name: &str, kind: &'static str, es: &str, en: &str) -> Input {
        let value = self
            .sub
            .and_then(|s| s.values.get(name).cloned())
            .unwrap_or_default();
        let error = self.sub.and_then(|s| {
            let msgs: Vec<&str> = s
                .problems
                .iter()
                .filter(|p| p.field.as_deref() == Some(name))
                .map(|p| p.message.as_str())
                .collect();
            (!msgs.is_empty()).then(|| msgs.join(" "))
        });
        Input {
            id: field_id(self.form, name),
            name: name.to_string(),
            label: self.lang.pick(es, en).to_string(),
            kind,
            value,
            error,
            autocomplete: "off",
            ..Input::default()
        }
    }

    /// A select; `choices` are `(value, es, en)`; the first is the default.
    fn select(&self, name: &str, es: &str, en: &str, choices: &[(&str, &str, &str)]) -> Input {
        let mut i = self.input(name, "select", es, en);
        i.options = choices
            .iter()
            .map(|(v, les, len)| Opt {
                value: v.to_string(),
                label: self.lang.pick(les, len).to_string(),
                selected: i.value == *v,
            })
            .collect();
        i
    }

    fn submitted(&self) -> bool {
        self.sub.is_some()
    }
}

fn with_hint(mut i: Input, lang: Lang, es: &str, en: &str) -> Input {
    i.hint = lang.pick(es, en).to_string();
    i
}

fn with_default(mut i: Input, value: &str) -> Input {
    if i.value.is_empty() {
        i.value = value.to_string();
        for o in &mut i.options {
            o.selected = o.value == value;
        }
    }
    i
}

/// The error summary for the submitted form: each problem links to its
/// field, or to the form's heading when no field of the form is named.
fn summary(forms: &[FormView], sub: &Option<Submitted>) -> Vec<ErrorItem> {
    let Some(sub) = sub else {
        return Vec::new();
    };
    let ids: Vec<&str> = forms
        .iter()
        .filter(|f| f.id == sub.form)
        .flat_map(|f| f.groups.iter())
        .flat_map(|g| g.inputs.iter())
        .filter(|i| !i.is_hidden())
        .map(|i| i.id.as_str())
        .collect();
    sub.problems
        .iter()
        .map(|p| {
            let id = p
                .field
                .as_deref()
                .map(|f| field_id(sub.form, f))
                .filter(|id| ids.contains(&id.as_str()))
                .unwrap_or_else(|| format!("{}-h", sub.form));
            ErrorItem {
                href: format!("#{id}"),
                message: p.message.clone(),
            }
        })
        .collect()
}

fn render(status: StatusCode, lang: Lang, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console page failed to render");
            internal_page(lang)
        }
    }
}

fn not_found(lang: Lang) -> Response {
    message(
        StatusCode::NOT_FOUND,
        lang,
        lang.pick("No encontrado", "Not found"),
        lang.pick(
            "No existe, o no pertenece a sus oficinas.",
            "It does not exist, or it is not in your offices.",
        ),
    )
}

fn internal_page(lang: Lang) -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang,
        lang.pick("Ocurrió un problema", "Something went wrong"),
        lang.pick(
            "Intente de nuevo en unos minutos.",
            "Try again in a few minutes.",
        ),
    )
}

fn unavailable_page(lang: Lang) -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        lang,
        lang.pick(
            "El servicio no está disponible",
            "The service is unavailable",
        ),
        lang.pick(
            "Intente de nuevo en unos minutos; no se perdió nada.",
            "Try again in a few minutes; nothing was lost.",
        ),
    )
}

/// A use case's error: a page of its own (not found, unavailable, internal)
/// or problems to show on the form.
enum Failure {
    Page(Response),
    Fix(StatusCode, Vec<Problem>),
}

fn failure(lang: Lang, e: WorkError) -> Failure {
    use pasaporte_core::application::TransitionError as T;
    match e {
        WorkError::NotFound => Failure::Page(not_found(lang)),
        WorkError::Invalid(errs) => Failure::Fix(
            StatusCode::UNPROCESSABLE_ENTITY,
            errs.0
                .iter()
                .map(|f| Problem {
                    field: Some(f.field.clone()),
                    message: lang.pick(f.es, f.en).to_string(),
                })
                .collect(),
        ),
        WorkError::Refused { es, en, .. } => Failure::Fix(
            StatusCode::CONFLICT,
            vec![Problem {
                field: None,
                message: lang.pick(es, en).to_string(),
            }],
        ),
        WorkError::Transition(t) => {
            let status = match &t {
                T::NotAllowedFrom { .. } | T::TooEarlyForNoShow { .. } => StatusCode::CONFLICT,
                T::Forbidden { .. } | T::ActorIdInvalid { .. } => StatusCode::FORBIDDEN,
                T::ReasonRequired { .. } | T::ReasonTooLong { .. } | T::ReasonLooksPersonal => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
            };
            let field = matches!(
                t,
                T::ReasonRequired { .. } | T::ReasonTooLong { .. } | T::ReasonLooksPersonal
            )
            .then(|| "reason".to_string());
            let es = staff_api::transition_es(&t);
            Failure::Fix(
                status,
                vec![Problem {
                    field,
                    message: lang.pick(&es, &t.to_string()).to_string(),
                }],
            )
        }
        WorkError::Unavailable(m) => {
            tracing::warn!(error = %m, "storage unavailable");
            Failure::Page(unavailable_page(lang))
        }
        WorkError::Internal(m) | WorkError::Integrity(m) => {
            tracing::error!(error = %m, "console use case failed");
            Failure::Page(internal_page(lang))
        }
    }
}

fn store_failure(lang: Lang, e: pasaporte_store::StoreError) -> Response {
    match failure(lang, e.into()) {
        Failure::Page(r) => r,
        Failure::Fix(..) => internal_page(lang),
    }
}

fn ts(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(ms).ok()
}

/// `2026-11-29 14:05` on the office's clock.
fn local_minute(office: &Office, ms: i64) -> String {
    ts(ms)
        .map(|t| {
            t.to_zoned_datetime(office.time_zone.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// `2026-11-29 19:05 UTC`, where no single office's clock applies.
fn utc_minute(ms: i64) -> String {
    ts(ms)
        .map(|t| format!("{} UTC", t.strftime("%Y-%m-%d %H:%M")))
        .unwrap_or_default()
}

/// A time on the office's clock if the office is known, else in UTC.
fn when(app: &crate::app::App, office: &str, ms: i64) -> String {
    match app.office(office) {
        Some(e) => local_minute(&e.office, ms),
        None => utc_minute(ms),
    }
}

/// "Registro civil: disponible" / "no disponible desde HH:MM".
fn registry_line(app: &crate::app::App, lang: Lang, office: Option<&Office>) -> String {
    let head = lang.pick("Registro civil", "Civil registry");
    match app.registry.as_ref().map(|r| r.status()) {
        None => format!(
            "{head}: {}",
            lang.pick(
                "no conectado; las verificaciones esperan en su cola",
                "not connected; checks wait in their queue"
            )
        ),
        Some(s) => match s.unavailable_since_ms() {
            None => format!("{head}: {}", lang.pick("disponible", "available")),
            Some(ms) => {
                let at = match office {
                    Some(o) => ts(ms)
                        .map(|t| {
                            t.to_zoned_datetime(o.time_zone.clone())
                                .strftime("%H:%M")
                                .to_string()
                        })
                        .unwrap_or_default(),
                    None => utc_minute(ms),
                };
                format!(
                    "{head}: {} {at}",
                    lang.pick("no disponible desde", "unavailable since")
                )
            }
        },
    }
}

fn state_text(lang: Lang, s: &str) -> String {
    AppStateKind::parse(s)
        .map(|st| state_label(lang, st).to_string())
        .unwrap_or_else(|| s.to_string())
}

/// Who holds an application now, for people (the stored queue name).
fn queue_label(lang: Lang, queue: &str) -> &str {
    match queue {
        "arrivals" => lang.pick("recepción", "reception"),
        "counter" => lang.pick("ventanillas", "counters"),
        "registry_check" => lang.pick("verificación en el registro civil", "civil registry check"),
        "registry_retry" => lang.pick("reintentos del registro civil", "civil registry retries"),
        "payment" => lang.pick("pago", "payment"),
        "adjudication" => lang.pick("decisión", "adjudication"),
        "supervisor_review" => lang.pick("revisión del supervisor", "supervisor review"),
        "production" => lang.pick("producción", "production"),
        "closed" => lang.pick("cerrada", "closed"),
        other => other,
    }
}

fn app_href(id: &str, lang: Lang) -> String {
    format!("/console/applications/{}?lang={}", enc(id), lang.code())
}

/// All but the last four characters hidden.
fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let keep = chars.len().min(4);
    let hidden = chars.len() - keep;
    let tail: String = chars[hidden..].iter().collect();
    format!("{}{tail}", "•".repeat(hidden))
}

fn document_types(lang: Lang, blank: bool) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if blank {
        v.push((String::new(), lang.pick("(elija)", "(choose)").to_string()));
    }
    for d in DocumentType::ALL {
        v.push((
            d.as_str().to_string(),
            lang.pick(d.label_es(), d.label_en()).to_string(),
        ));
    }
    v
}

fn doc_select(f: &Fields, name: &str, es: &str, en: &str, blank: bool) -> Input {
    let choices = document_types(f.lang, blank);
    let refs: Vec<(&str, &str, &str)> = choices
        .iter()
        .map(|(v, l)| (v.as_str(), l.as_str(), l.as_str()))
        .collect();
    f.select(name, es, en, &refs)
}

/// Keeps a notice from the query only if it is short and plain (tickets,
/// counters): anything else is ignored, so a link cannot put text here.
fn plain(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= NOTICE_CHARS_MAX)
        .filter(|s| {
            s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | ',' | ' ' | '.'))
        })
        .map(str::to_string)
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

// ---------------------------------------------------------------------------
// The office's day.

#[derive(Deserialize, Default)]
struct TodayQuery {
    done: Option<String>,
    tickets: Option<String>,
}

/// Role check, then the office: unknown and unassigned offices are both 404.
fn office_gate(
    app: &crate::app::App,
    s: &StaffSession,
    action: Action,
    code: &str,
    lang: Lang,
) -> Result<std::sync::Arc<crate::app::OfficeEntry>, Box<Response>> {
    let uri: Uri = format!("/console/office/{}/today?lang={}", enc(code), lang.code())
        .parse()
        .map_err(|_| Box::new(not_found(lang)))?;
    s.require(action, None, &uri, lang)
        .map_err(|r| Box::new(r.into_response()))?;
    if !s.covers(code) {
        return Err(Box::new(not_found(lang)));
    }
    app.office(code).ok_or_else(|| Box::new(not_found(lang)))
}

async fn today(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    Path(code): Path<String>,
    Query(q): Query<TodayQuery>,
) -> Response {
    let entry = match office_gate(&app, &s, Action::ViewOfficeDay, &code, lang) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let notice = match q.done.as_deref() {
        Some("check_in") => Some(format!(
            "{} {}",
            lang.pick("Llegada registrada. Turnos:", "Checked in. Tickets:"),
            plain(&q.tickets).unwrap_or_default()
        )),
        Some("walk_in") => Some(format!(
            "{} {}",
            lang.pick("Turno sin cita entregado:", "Walk-in ticket given:"),
            plain(&q.tickets).unwrap_or_default()
        )),
        _ => None,
    };
    today_page(&app, &s, lang, &entry, notice, None, StatusCode::OK).await
}

async fn today_page(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    entry: &crate::app::OfficeEntry,
    notice: Option<String>,
    sub: Option<Submitted>,
    status: StatusCode,
) -> Response {
    let office = &entry.office;
    let now = Timestamp::now();
    let (bookings, applications, no_shows, date) =
        match staff_api::office_today(app, &office.code, now).await {
            Ok(v) => v,
            Err(e) => {
                return match failure(lang, e) {
                    Failure::Page(r) => r,
                    Failure::Fix(..) => internal_page(lang),
                };
            }
        };
    let date_label = date
        .parse()
        .map(|d| crate::i18n::long_date(lang, d))
        .unwrap_or(date);
    let booking_status = |st: &str| -> String {
        match st {
            "active" => lang.pick("con cita", "booked"),
            "checked_in" => lang.pick("registrada", "checked in"),
            "no_show" => lang.pick("no se presentó", "no-show"),
            "cancelled" => lang.pick("cancelada", "cancelled"),
            other => other,
        }
        .to_string()
    };
    let bookings = bookings
        .iter()
        .map(|b| BookingLine {
            time: ts(b.start_ms)
                .map(|t| {
                    t.to_zoned_datetime(office.time_zone.clone())
                        .strftime("%H:%M")
                        .to_string()
                })
                .unwrap_or_default(),
            code: b.code.clone(),
            seats: b.seats,
            status: booking_status(&b.status),
        })
        .collect();
    let waiting: Vec<(String, String)> = applications
        .iter()
        .filter(|a| a.state == AppStateKind::CheckedIn.as_str() && a.counter.is_none())
        .map(|a| (a.id.clone(), a.ticket.clone()))
        .collect();
    let queue = applications
        .iter()
        .map(|a| QueueLine {
            ticket: a.ticket.clone(),
            state: state_text(lang, &a.state),
            counter: a.counter.clone().unwrap_or_default(),
            href: app_href(&a.id, lang),
        })
        .collect();
    let code_enc = enc(&office.code);
    let action = |what: &str| format!("/console/office/{code_enc}/{what}?lang={}", lang.code());
    let mut forms = Vec::new();
    if allows(s.role, Action::CheckIn) {
        let f = Fields::new("checkin", lang, &sub);
        let mut code_input = with_hint(
            f.input("code", "text", "Código de la cita", "Booking code"),
            lang,
            "8 letras y números, como K7M2Q9XH. O deje el código vacío y use el documento.",
            "8 letters and digits, like K7M2Q9XH. Or leave it empty and use the document.",
        );
        code_input.autofocus = !f.submitted() && sub.is_none();
        forms.push(FormView {
            id: "checkin",
            heading: lang.pick("Registrar llegada", "Check in").into(),
            intro: String::new(),
            action: action("check-in"),
            multipart: false,
            csrf: s.csrf.clone(),
            groups: vec![Group {
                legend: lang.pick("Cita", "Booking").into(),
                inputs: vec![
                    code_input,
                    doc_select(
                        &f,
                        "document_type",
                        "Tipo de documento",
                        "Document type",
                        true,
                    ),
                    f.input(
                        "document_number",
                        "text",
                        "Número de documento",
                        "Document number",
                    ),
                ],
            }],
            submit: lang.pick("Registrar llegada", "Check in").into(),
        });
        let f = Fields::new("walkin", lang, &sub);
        forms.push(FormView {
            id: "walkin",
            heading: lang.pick("Turno sin cita", "Walk-in").into(),
            intro: String::new(),
            action: action("walk-in"),
            multipart: false,
            csrf: s.csrf.clone(),
            groups: vec![Group {
                legend: lang.pick("Persona", "Person").into(),
                inputs: vec![
                    doc_select(
                        &f,
                        "document_type",
                        "Tipo de documento",
                        "Document type",
                        true,
                    ),
                    f.input(
                        "document_number",
                        "text",
                        "Número de documento",
                        "Document number",
                    ),
                    f.input("surnames", "text", "Apellidos", "Surnames"),
                    f.input("given_names", "text", "Nombres", "Given names"),
                    with_hint(
                        f.input("birth_date", "text", "Fecha de nacimiento", "Date of birth"),
                        lang,
                        "AAAA-MM-DD, por ejemplo 1985-04-02.",
                        "YYYY-MM-DD, for example 1985-04-02.",
                    ),
                ],
            }],
            submit: lang.pick("Dar turno", "Give a ticket").into(),
        });
        let f = Fields::new("call", lang, &sub);
        let mut choices: Vec<(String, String)> = vec![(
            String::new(),
            lang.pick("El siguiente en la fila", "The next in line")
                .to_string(),
        )];
        choices.extend(waiting.iter().map(|(id, t)| (id.clone(), t.clone())));
        let refs: Vec<(&str, &str, &str)> = choices
            .iter()
            .map(|(v, l)| (v.as_str(), l.as_str(), l.as_str()))
            .collect();
        forms.push(FormView {
            id: "call",
            heading: lang.pick("Llamar a ventanilla", "Call to a counter").into(),
            intro: String::new(),
            action: action("call"),
            multipart: false,
            csrf: s.csrf.clone(),
            groups: vec![Group {
                legend: lang.pick("Llamado", "Call").into(),
                inputs: vec![
                    f.select("application", "Turno", "Ticket", &refs),
                    with_hint(
                        f.input("counter", "text", "Ventanilla", "Counter"),
                        lang,
                        "Por ejemplo «Ventanilla 3».",
                        "For example “Counter 3”.",
                    ),
                ],
            }],
            submit: lang.pick("Llamar", "Call").into(),
        });
    }
    let errors = summary(&forms, &sub);
    let title = format!("{} · {}", lang.pick("Hoy", "Today"), office.code);
    let path = format!("/console/office/{code_enc}/today");
    let page = TodayPage {
        c: ConsoleChrome::new(lang, &title, &path, Some(s)),
        office_code: office.code.clone(),
        office_name: office.name.clone(),
        date_label,
        time_zone: office.time_zone_name().to_string(),
        registry: registry_line(app, lang, Some(office)),
        notice,
        errors,
        bookings,
        queue,
        no_shows,
        forms,
    };
    render(status, lang, &page)
}

/// The submitted form's problems on the day page, or the failure's own page.
async fn today_again(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    entry: &crate::app::OfficeEntry,
    form: &'static str,
    values: HashMap<String, String>,
    e: WorkError,
) -> Response {
    match failure(lang, e) {
        Failure::Page(r) => r,
        Failure::Fix(status, problems) => {
            let sub = Submitted {
                form,
                values,
                problems,
            };
            today_page(app, s, lang, entry, None, Some(sub), status).await
        }
    }
}

fn value(values: &HashMap<String, String>, key: &str) -> String {
    values
        .get(key)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

async fn check_in(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    let entry = match office_gate(&app, &s, Action::CheckIn, &code, lang) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let booking_code = value(&form, "code");
    let document_type = value(&form, "document_type");
    let document_number = value(&form, "document_number");
    let by = if !booking_code.is_empty() {
        Arrival::Code(booking_code)
    } else if !document_type.is_empty() || !document_number.is_empty() {
        Arrival::Document {
            document_type,
            document_number,
        }
    } else {
        return today_again(
            &app,
            &s,
            lang,
            &entry,
            "checkin",
            form,
            WorkError::Invalid(pasaporte_core::FieldErrors(vec![
                pasaporte_core::FieldError::new(
                    "code",
                    "arrival_missing",
                    "Escriba el código de la cita, o el tipo y número de documento.",
                    "Type the booking code, or the document type and number.",
                ),
            ])),
        )
        .await;
    };
    let office = entry.office.code.clone();
    match workflow::check_in(
        &app,
        &s.actor(),
        &OfficeOnly(&s, &office),
        by,
        Timestamp::now(),
    )
    .await
    {
        Ok(done) => see_other(&format!(
            "/console/office/{}/today?lang={}&done=check_in&tickets={}",
            enc(&office),
            lang.code(),
            enc(&done.tickets.join(","))
        )),
        Err(WorkError::NotFound) => {
            // A booking of another office, or none: say so on the form.
            today_again(
                &app,
                &s,
                lang,
                &entry,
                "checkin",
                form,
                WorkError::refused(
                    "booking_not_found",
                    "No hay una cita activa con ese código o documento en esta oficina.",
                    "There is no active booking with that code or document at this office.",
                ),
            )
            .await
        }
        Err(e) => today_again(&app, &s, lang, &entry, "checkin", form, e).await,
    }
}

async fn walk_in(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    let entry = match office_gate(&app, &s, Action::CheckIn, &code, lang) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let input = WalkInInput {
        document_type: value(&form, "document_type"),
        document_number: value(&form, "document_number"),
        surnames: value(&form, "surnames"),
        given_names: value(&form, "given_names"),
        birth_date: value(&form, "birth_date"),
    };
    let office = entry.office.code.clone();
    match workflow::walk_in(
        &app,
        &s.actor(),
        &Scope(&s),
        &office,
        &input,
        Timestamp::now(),
    )
    .await
    {
        Ok((_, ticket)) => see_other(&format!(
            "/console/office/{}/today?lang={}&done=walk_in&tickets={}",
            enc(&office),
            lang.code(),
            enc(&ticket)
        )),
        Err(e) => today_again(&app, &s, lang, &entry, "walkin", form, e).await,
    }
}

async fn call(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    let entry = match office_gate(&app, &s, Action::CheckIn, &code, lang) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let application = value(&form, "application");
    let counter = value(&form, "counter");
    let office = entry.office.code.clone();
    match workflow::call_to_counter(
        &app,
        &s.actor(),
        &Scope(&s),
        &office,
        (!application.is_empty()).then_some(application.as_str()),
        &counter,
        Timestamp::now(),
    )
    .await
    {
        Ok(row) => see_other(&format!(
            "/console/applications/{}?lang={}&done=called&counter={}",
            enc(&row.id),
            lang.code(),
            enc(&counter)
        )),
        Err(e) => today_again(&app, &s, lang, &entry, "call", form, e).await,
    }
}

// ---------------------------------------------------------------------------
// One application.

#[derive(Deserialize, Default)]
struct AppQuery {
    done: Option<String>,
    counter: Option<String>,
}

fn application_uri(id: &str, lang: Lang) -> Uri {
    app_href(id, lang)
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/console"))
}

async fn application(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    Path(id): Path<String>,
    Query(q): Query<AppQuery>,
) -> Response {
    if let Err(r) = s.require(
        Action::ViewApplication,
        None,
        &application_uri(&id, lang),
        lang,
    ) {
        return r.into_response();
    }
    let notice = match q.done.as_deref() {
        Some("called") => Some(format!(
            "{} {}",
            lang.pick("Llamado a", "Called to"),
            plain(&q.counter).unwrap_or_default()
        )),
        Some("captured") => Some(lang.pick("Datos tomados.", "Captured.").into()),
        Some("decided") => Some(
            lang.pick("Decisión registrada.", "Decision recorded.")
                .into(),
        ),
        Some("waiver") => Some(
            lang.pick("Exoneración solicitada.", "Waiver requested.")
                .into(),
        ),
        Some("received") => Some(
            lang.pick(
                "La libreta coincide con el registro: lista para entregar; se avisó al ciudadano.",
                "The booklet matches the record: ready for pick-up; the citizen was told.",
            )
            .into(),
        ),
        Some("reprint") => Some(
            lang.pick(
                "La zona de lectura mecánica no coincide con el registro: la libreta se anuló y se pidió otra.",
                "The machine readable zone does not match the record: the booklet was spoiled and a new one ordered.",
            )
            .into(),
        ),
        Some("handed_over") => Some(
            lang.pick(
                "Pasaporte entregado al titular.",
                "Passport handed over to the holder.",
            )
            .into(),
        ),
        Some("emergency") => Some(
            lang.pick(
                "Pasaporte de emergencia expedido: listo para entregar.",
                "Emergency passport issued: ready for pick-up.",
            )
            .into(),
        ),
        _ => None,
    };
    let show_issued = q.done.as_deref() == Some("emergency");
    application_page_with(
        &app,
        &s,
        lang,
        &id,
        notice,
        None,
        show_issued,
        StatusCode::OK,
    )
    .await
}

fn payment_text(lang: Lang, r: &pasaporte_store::PaymentReference) -> String {
    use pasaporte_core::fees::PaymentStatus as P;
    let status = match r.status {
        P::Created => lang.pick("por pagar", "awaiting payment"),
        P::Paid => lang.pick("pagada", "paid"),
        P::RefundPending => lang.pick("reembolso en curso", "refund pending"),
        P::Refunded => lang.pick("reembolsada", "refunded"),
        P::Waived => lang.pick("exonerada", "waived"),
    };
    format!(
        "{} · {} · {status}",
        r.reference,
        money(r.amount_minor, &r.currency)
    )
}

fn waiver_text(lang: Lang, w: &pasaporte_store::WaiverRow) -> String {
    use pasaporte_store::WaiverStatus as W;
    let status = match w.status {
        W::Requested => lang.pick("solicitada", "requested"),
        W::Approved => lang.pick("aprobada", "approved"),
        W::Refused => lang.pick("rechazada", "refused"),
    };
    format!("{status} · {}", w.reason)
}

fn money(amount_minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Some(currency) => Money {
            currency,
            amount_minor,
        }
        .to_string(),
        None => format!("{amount_minor} {currency}"),
    }
}

fn is_live(s: AppStateKind) -> bool {
    match s {
        AppStateKind::Approved
        | AppStateKind::InProduction
        | AppStateKind::ReadyForPickup
        | AppStateKind::Issued
        | AppStateKind::Annulled
        | AppStateKind::Rejected
        | AppStateKind::Cancelled
        | AppStateKind::NoShow => false,
        AppStateKind::Booked
        | AppStateKind::CheckedIn
        | AppStateKind::Captured
        | AppStateKind::PendingRegistry
        | AppStateKind::RegistryMismatch
        | AppStateKind::RegistryVerified
        | AppStateKind::Paid
        | AppStateKind::Flagged => true,
    }
}

async fn application_page(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    id: &str,
    notice: Option<String>,
    sub: Option<Submitted>,
    status: StatusCode,
) -> Response {
    application_page_with(app, s, lang, id, notice, sub, false, status).await
}

/// Whether an application has reached production (so it has orders).
fn in_production_or_later(s: AppStateKind) -> bool {
    match s {
        AppStateKind::InProduction
        | AppStateKind::ReadyForPickup
        | AppStateKind::Issued
        | AppStateKind::Annulled => true,
        AppStateKind::Booked
        | AppStateKind::CheckedIn
        | AppStateKind::Captured
        | AppStateKind::PendingRegistry
        | AppStateKind::RegistryMismatch
        | AppStateKind::RegistryVerified
        | AppStateKind::Paid
        | AppStateKind::Flagged
        | AppStateKind::Approved
        | AppStateKind::Rejected
        | AppStateKind::Cancelled
        | AppStateKind::NoShow => false,
    }
}

/// "sin proveedor" for an order no vendor took yet.
fn vendor_text(lang: Lang, o: &OrderRow) -> String {
    o.vendor_id
        .clone()
        .unwrap_or_else(|| lang.pick("sin proveedor", "no vendor yet").to_string())
}

/// The application's page; with `show_issued`, the passport an emergency
/// issue just made (number, booklet, MRZ) for the office's printer.
#[allow(clippy::too_many_arguments)]
async fn application_page_with(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    id: &str,
    notice: Option<String>,
    sub: Option<Submitted>,
    show_issued: bool,
    status: StatusCode,
) -> Response {
    let now = Timestamp::now();
    let v = match workflow::view_application(app, &s.actor(), &Scope(s), id, now).await {
        Ok(v) => v,
        Err(e) => {
            return match failure(lang, e) {
                Failure::Page(r) => r,
                Failure::Fix(..) => not_found(lang),
            };
        }
    };
    let payment = match app.store.payment_reference_of(id).await {
        Ok(p) => p,
        Err(e) => return store_failure(lang, e),
    };
    let waiver = match app.store.waiver_of(id).await {
        Ok(w) => w,
        Err(e) => return store_failure(lang, e),
    };
    let row = &v.row;
    let entry = app.office(&row.office);
    let state = AppStateKind::parse(&row.state);
    let deadline = row
        .deadline_ms
        .and_then(ts)
        .map(|t| match &entry {
            Some(e) => crate::i18n::local_when(lang, &e.office, t),
            None => t.to_string(),
        })
        .unwrap_or_else(|| lang.pick("sin plazo", "none").to_string());
    let passport_type = row
        .passport_type
        .clone()
        .unwrap_or_else(|| lang.pick("sin elegir", "not chosen").to_string());
    let flags = row
        .flags
        .split(',')
        .filter(|f| !f.is_empty())
        .map(
            |f| match pasaporte_core::adjudication::Finding::parse(f.trim()) {
                Some(finding) => lang.pick(finding.es(), finding.en()).to_string(),
                None => f.to_string(),
            },
        )
        .collect();
    let (surnames, given_names, document) = match &v.identity {
        Some(i) => (
            i.surnames.clone(),
            i.given_names.clone(),
            format!(
                "{} {}",
                DocumentType::parse(&i.document_type)
                    .map(|d| lang.pick(d.label_es(), d.label_en()).to_string())
                    .unwrap_or_else(|| i.document_type.clone()),
                mask(&i.document_number)
            ),
        ),
        None => Default::default(),
    };
    // Staff are named by their username; citizens and workers by their id.
    let mut names: HashMap<String, String> = HashMap::new();
    for e in &v.history {
        if names.len() >= HISTORY_NAMES_MAX || names.contains_key(&e.actor) {
            continue;
        }
        let name = match app.store.staff_by_id(&e.actor).await {
            Ok(Some(staff)) => staff.username,
            Ok(None) => e.actor.clone(),
            Err(e) => return store_failure(lang, e),
        };
        names.insert(e.actor.clone(), name);
    }
    let history = v
        .history
        .iter()
        .map(|e| HistoryLine {
            at: when(app, &row.office, e.at_ms),
            actor: names.get(&e.actor).unwrap_or(&e.actor).clone(),
            role: pasaporte_core::application::Role::parse(&e.role)
                .map(|r| super::console_auth::role_label(lang, r).to_string())
                .unwrap_or_else(|| e.role.clone()),
            action: e.action.clone(),
            change: match (&e.from_state, &e.to_state) {
                (Some(f), Some(t)) => {
                    format!("{} → {}", state_text(lang, f), state_text(lang, t))
                }
                (None, Some(t)) => format!("→ {}", state_text(lang, t)),
                (Some(f), None) => state_text(lang, f),
                (None, None) => String::new(),
            },
            reason: e.detail.clone(),
        })
        .collect();
    let orders = match state {
        Some(st) if in_production_or_later(st) => match app.store.orders_of_application(id).await {
            Ok(o) => o,
            Err(e) => return store_failure(lang, e),
        },
        _ => Vec::new(),
    };
    let emergency_type = row.passport_type.as_deref() == Some(PassportType::Emergencia.as_str());
    let issued = match orders.last() {
        Some(o) if show_issued && emergency_type && state == Some(AppStateKind::ReadyForPickup) => {
            match pipeline::open_order(app, o) {
                Ok(body) => Some(IssuedView {
                    passport_number: o.passport_number.clone(),
                    booklet_serial: o.booklet_serial.clone().unwrap_or_default(),
                    mrz: body.mrz.to_vec(),
                }),
                Err(e) => {
                    return match failure(lang, e) {
                        Failure::Page(r) => r,
                        Failure::Fix(..) => internal_page(lang),
                    };
                }
            }
        }
        _ => None,
    };
    let order_lines = orders
        .iter()
        .map(|o| OrderLine {
            order_id: o.order_id.clone(),
            vendor: vendor_text(lang, o),
            state: order_state_label(lang, o.state).to_string(),
            passport_number: o.passport_number.clone(),
            booklet_serial: o.booklet_serial.clone().unwrap_or_default(),
            tracking: o.tracking.clone().unwrap_or_default(),
        })
        .collect();
    let base = format!("/console/applications/{}", enc(id));
    let action = |what: &str| format!("{base}/{what}?lang={}", lang.code());
    let mut forms = Vec::new();
    if let Some(st) = state
        && allows(s.role, Action::HandOver)
    {
        let shipped = orders
            .last()
            .is_some_and(|o| o.state == OrderState::Shipped);
        if st == AppStateKind::InProduction && shipped {
            let f = Fields::new("receive", lang, &sub);
            forms.push(FormView {
                id: "receive",
                heading: lang.pick("Recibir libreta", "Receive booklet").into(),
                intro: lang
                    .pick(
                        "El proveedor envió la libreta a esta oficina. Si la zona de lectura mecánica no coincide con el registro, la libreta se anula y se pide otra.",
                        "The vendor shipped the booklet to this office. If its machine readable zone does not match the record, the booklet is spoiled and another one ordered.",
                    )
                    .into(),
                action: action("receive"),
                multipart: false,
                csrf: s.csrf.clone(),
                groups: vec![Group {
                    legend: lang.pick("Libreta recibida", "Booklet received").into(),
                    inputs: vec![with_hint(
                        f.input(
                            "mrz",
                            "textarea",
                            "Zona de lectura mecánica (MRZ)",
                            "Machine readable zone (MRZ)",
                        ),
                        lang,
                        "Léala con el lector o escríbala desde la página de datos: dos líneas de 44 caracteres, con los signos <.",
                        "Scan it with the reader or type it from the data page: two lines of 44 characters, with the < signs.",
                    )],
                }],
                submit: lang.pick("Recibir libreta", "Receive booklet").into(),
            });
        }
        if st == AppStateKind::ReadyForPickup {
            let f = Fields::new("handover", lang, &sub);
            forms.push(FormView {
                id: "handover",
                heading: lang.pick("Entregar pasaporte", "Hand over passport").into(),
                intro: lang
                    .pick(
                        "Verifique la identidad de quien recoge el pasaporte.",
                        "Check the identity of the person collecting the passport.",
                    )
                    .into(),
                action: action("hand-over"),
                multipart: false,
                csrf: s.csrf.clone(),
                groups: vec![Group {
                    legend: lang.pick("Quién lo recoge", "Who collects it").into(),
                    inputs: vec![
                        with_hint(
                            f.input(
                                "document_number",
                                "text",
                                "Número de documento del titular",
                                "The holder's document number",
                            ),
                            lang,
                            "El documento que presenta el titular mayor de edad.",
                            "The document an adult holder shows.",
                        ),
                        with_hint(
                            f.input(
                                "guardian_document_number",
                                "text",
                                "Número de documento del padre, madre o tutor",
                                "The parent's or guardian's document number",
                            ),
                            lang,
                            "Solo para menores de edad: el documento de quien lo recoge, que debe ser uno de los registrados en la solicitud.",
                            "For minors only: the document of the person collecting it, one of those recorded in the application.",
                        ),
                    ],
                }],
                submit: lang.pick("Entregar pasaporte", "Hand over passport").into(),
            });
        }
        if st == AppStateKind::Approved && emergency_type {
            forms.push(FormView {
                id: "emergency",
                heading: lang
                    .pick(
                        "Expedir pasaporte de emergencia",
                        "Issue emergency passport",
                    )
                    .into(),
                intro: lang
                    .pick(
                        "Se personaliza hoy en esta oficina, con una libreta de 8 páginas de su propia existencia; vale 7 meses.",
                        "It is personalised today at this office, on an 8-page booklet from its own stock; it is valid for 7 months.",
                    )
                    .into(),
                action: action("emergency"),
                multipart: false,
                csrf: s.csrf.clone(),
                groups: Vec::new(),
                submit: lang
                    .pick(
                        "Expedir pasaporte de emergencia",
                        "Issue emergency passport",
                    )
                    .into(),
            });
        }
    }
    if let Some(st) = state {
        if st == AppStateKind::CheckedIn && allows(s.role, Action::Capture) {
            forms.push(capture_form(lang, s, &action("capture"), &v.identity, &sub));
        }
        if st == AppStateKind::Paid && allows(s.role, Action::Approve) {
            forms.push(FormView {
                id: "approve",
                heading: lang.pick("Aprobar", "Approve").into(),
                intro: lang
                    .pick(
                        "Ninguna verificación automática marcó esta solicitud.",
                        "No automatic check flagged this application.",
                    )
                    .into(),
                action: action("approve"),
                multipart: false,
                csrf: s.csrf.clone(),
                groups: Vec::new(),
                submit: lang
                    .pick("Aprobar la solicitud", "Approve the application")
                    .into(),
            });
        }
        if is_live(st) && allows(s.role, Action::Decide) {
            let f = Fields::new("decision", lang, &sub);
            forms.push(FormView {
                id: "decision",
                heading: lang
                    .pick("Decisión del supervisor", "Supervisor decision")
                    .into(),
                intro: String::new(),
                action: action("decision"),
                multipart: false,
                csrf: s.csrf.clone(),
                groups: vec![Group {
                    legend: lang.pick("Decisión", "Decision").into(),
                    inputs: vec![
                        f.select(
                            "decision",
                            "Decisión",
                            "Decision",
                            &[
                                ("approve", "Aprobar", "Approve"),
                                ("reject", "Rechazar", "Reject"),
                                ("cancel", "Cancelar", "Cancel"),
                            ],
                        ),
                        with_hint(
                            f.input("reason", "textarea", "Motivo", "Reason"),
                            lang,
                            "Obligatorio para rechazar o cancelar. Sin datos personales.",
                            "Required to reject or cancel. No personal data.",
                        ),
                    ],
                }],
                submit: lang
                    .pick("Registrar la decisión", "Record the decision")
                    .into(),
            });
        }
        if matches!(
            st,
            AppStateKind::PendingRegistry | AppStateKind::RegistryMismatch
        ) && allows(s.role, Action::OverrideRegistry)
        {
            let f = Fields::new("override", lang, &sub);
            forms.push(FormView {
                id: "override",
                heading: lang
                    .pick(
                        "Continuar sin la confirmación del registro civil",
                        "Continue without the civil registry's confirmation",
                    )
                    .into(),
                intro: String::new(),
                action: action("registry-override"),
                multipart: false,
                csrf: s.csrf.clone(),
                groups: vec![Group {
                    legend: lang.pick("Motivo", "Reason").into(),
                    inputs: vec![f.input("reason", "textarea", "Motivo", "Reason")],
                }],
                submit: lang.pick("Continuar", "Continue").into(),
            });
        }
        let waiver_pending = waiver
            .as_ref()
            .is_some_and(|w| w.status == pasaporte_store::WaiverStatus::Requested);
        if st == AppStateKind::RegistryVerified
            && waiver.is_none()
            && allows(s.role, Action::TakePayment)
        {
            let f = Fields::new("waiver", lang, &sub);
            forms.push(FormView {
                id: "waiver",
                heading: lang
                    .pick("Pedir exoneración del pago", "Ask for a fee waiver")
                    .into(),
                intro: String::new(),
                action: action("waiver"),
                multipart: false,
                csrf: s.csrf.clone(),
                groups: vec![Group {
                    legend: lang.pick("Motivo", "Reason").into(),
                    inputs: vec![f.input("reason", "textarea", "Motivo", "Reason")],
                }],
                submit: lang.pick("Pedir exoneración", "Ask for a waiver").into(),
            });
        }
        if waiver_pending && allows(s.role, Action::ApproveWaiver) {
            let f = Fields::new("waiver_decision", lang, &sub);
            forms.push(FormView {
                id: "waiver_decision",
                heading: lang
                    .pick("Decidir la exoneración", "Decide the waiver")
                    .into(),
                intro: String::new(),
                action: action("waiver/decision"),
                multipart: false,
                csrf: s.csrf.clone(),
                groups: vec![Group {
                    legend: lang.pick("Decisión", "Decision").into(),
                    inputs: vec![f.select(
                        "approve",
                        "Decisión",
                        "Decision",
                        &[("true", "Conceder", "Grant"), ("false", "Negar", "Refuse")],
                    )],
                }],
                submit: lang.pick("Registrar", "Record").into(),
            });
        }
    }
    let errors = summary(&forms, &sub);
    let title = format!("{} {}", lang.pick("Solicitud", "Application"), row.ticket);
    let page = ApplicationPage {
        c: ConsoleChrome::new(lang, &title, &base, Some(s)),
        notice,
        errors,
        ticket: row.ticket.clone(),
        office: row.office.clone(),
        office_href: format!(
            "/console/office/{}/today?lang={}",
            enc(&row.office),
            lang.code()
        ),
        state: state_text(lang, &row.state),
        queue: queue_label(lang, &row.queue).to_string(),
        counter: row.counter.clone().unwrap_or_default(),
        deadline,
        passport_type,
        flags,
        surnames,
        given_names,
        document,
        photo: row.photo_enc.is_some().then(|| format!("{base}/photo.png")),
        payment: payment.as_ref().map(|p| payment_text(lang, p)),
        waiver: waiver.as_ref().map(|w| waiver_text(lang, w)),
        history,
        orders: order_lines,
        issued,
        forms,
    };
    render(status, lang, &page)
}

/// The capture form, prefilled from the check-in identity until typed.
fn capture_form(
    lang: Lang,
    s: &StaffSession,
    action: &str,
    identity: &Option<IdentityDoc>,
    sub: &Option<Submitted>,
) -> FormView {
    let f = Fields::new("capture", lang, sub);
    let prefill = |i: Input, v: Option<&String>| -> Input {
        if f.submitted() {
            i
        } else {
            with_default(i, v.map(String::as_str).unwrap_or(""))
        }
    };
    let id = identity.as_ref();
    let passport_types: Vec<(String, String)> = PassportType::ALL
        .iter()
        .map(|t| (t.as_str().to_string(), t.as_str().to_string()))
        .collect();
    let pt: Vec<(&str, &str, &str)> = passport_types
        .iter()
        .map(|(v, l)| (v.as_str(), l.as_str(), l.as_str()))
        .collect();
    let relationships = [
        ("", "(elija)", "(choose)"),
        ("mother", "Madre", "Mother"),
        ("father", "Padre", "Father"),
        (
            "legal_guardian",
            "Tutor o representante legal",
            "Legal guardian",
        ),
    ];
    let mut captured_at = f.input(
        "fingerprint.captured_at_ms",
        "hidden",
        "Hora de captura",
        "Capture time",
    );
    captured_at.value = Timestamp::now().as_millisecond().to_string();
    let mut photo = with_hint(
        f.input("photo", "file", "Foto (retrato)", "Photo (portrait)"),
        lang,
        "JPEG o PNG, al menos 420×525 píxeles, hasta 2 MiB. Si la página muestra errores, vuelva a elegir los archivos.",
        "JPEG or PNG, at least 420×525 pixels, up to 2 MiB. If the page shows errors, choose the files again.",
    );
    photo.accept = "image/jpeg,image/png";
    photo.value.clear();
    let mut signature = with_hint(
        f.input("signature", "file", "Firma", "Signature"),
        lang,
        "JPEG o PNG, al menos 200×50 píxeles, hasta 512 KiB.",
        "JPEG or PNG, at least 200×50 pixels, up to 512 KiB.",
    );
    signature.accept = "image/jpeg,image/png";
    signature.value.clear();
    let guardian = |n: usize| -> Vec<Input> {
        vec![
            doc_select(
                &f,
                &format!("guardians[{n}].document_type"),
                "Tipo de documento",
                "Document type",
                true,
            ),
            f.input(
                &format!("guardians[{n}].document_number"),
                "text",
                "Número de documento",
                "Document number",
            ),
            f.select(
                &format!("guardians[{n}].relationship"),
                "Parentesco",
                "Relationship",
                &relationships,
            ),
        ]
    };
    let groups = vec![
        Group {
            legend: lang.pick("Pasaporte", "Passport").into(),
            inputs: vec![f.select("passport_type", "Tipo de pasaporte", "Passport type", &pt)],
        },
        Group {
            legend: lang
                .pick(
                    "Identidad, como figura en el registro civil",
                    "Identity, as the civil registry has it",
                )
                .into(),
            inputs: vec![
                prefill(
                    f.input("surnames", "text", "Apellidos", "Surnames"),
                    id.map(|i| &i.surnames),
                ),
                prefill(
                    f.input("given_names", "text", "Nombres", "Given names"),
                    id.map(|i| &i.given_names),
                ),
                with_hint(
                    prefill(
                        f.input("birth_date", "text", "Fecha de nacimiento", "Date of birth"),
                        id.map(|i| &i.birth_date),
                    ),
                    lang,
                    "AAAA-MM-DD.",
                    "YYYY-MM-DD.",
                ),
                f.input(
                    "birth_place",
                    "text",
                    "Lugar de nacimiento",
                    "Place of birth",
                ),
                f.select(
                    "sex",
                    "Sexo",
                    "Sex",
                    &[
                        ("", "(elija)", "(choose)"),
                        ("F", "F", "F"),
                        ("M", "M", "M"),
                        ("X", "X", "X"),
                    ],
                ),
                with_hint(
                    prefill(
                        f.input("nationality", "text", "Nacionalidad", "Nationality"),
                        Some(&"COL".to_string()),
                    ),
                    lang,
                    "Código de tres letras, como COL.",
                    "Three-letter code, like COL.",
                ),
            ],
        },
        Group {
            legend: lang.pick("Contacto", "Contact").into(),
            inputs: vec![
                f.input("email", "email", "Correo electrónico", "Email"),
                with_hint(
                    f.input("phone", "tel", "Teléfono (opcional)", "Phone (optional)"),
                    lang,
                    "Con indicativo, como +57 300 123 4567.",
                    "With the country code, like +57 300 123 4567.",
                ),
            ],
        },
        Group {
            legend: lang.pick("Foto y firma", "Photo and signature").into(),
            inputs: vec![photo, signature],
        },
        Group {
            legend: lang.pick("Huellas", "Fingerprints").into(),
            inputs: vec![
                f.input(
                    "fingerprint.device_id",
                    "text",
                    "Identificador del lector",
                    "Reader id",
                ),
                with_hint(
                    f.input("fingerprint.quality", "text", "Calidad", "Quality"),
                    lang,
                    "De 40 a 100.",
                    "40 to 100.",
                ),
                f.input(
                    "fingerprint.template_sha256",
                    "text",
                    "Resumen SHA-256 de la plantilla",
                    "Template SHA-256 digest",
                ),
                f.input(
                    "fingerprint.fingers_captured",
                    "text",
                    "Dedos capturados",
                    "Fingers captured",
                ),
                captured_at,
            ],
        },
        Group {
            legend: lang
                .pick("Motivo de la solicitud", "Reason for applying")
                .into(),
            inputs: vec![
                f.select(
                    "reason",
                    "Motivo",
                    "Reason",
                    &[
                        ("first", "Primera vez", "First passport"),
                        ("renewal", "Renovación", "Renewal"),
                        (
                            "replacement",
                            "Reposición (pérdida o robo)",
                            "Replacement (lost or stolen)",
                        ),
                    ],
                ),
                f.input(
                    "previous_passport_number",
                    "text",
                    "Número del pasaporte anterior",
                    "Previous passport number",
                ),
                f.select(
                    "loss.kind",
                    "Pérdida o robo",
                    "Lost or stolen",
                    &[
                        ("", "(no aplica)", "(not applicable)"),
                        ("lost", "Pérdida", "Lost"),
                        ("stolen", "Robo", "Stolen"),
                    ],
                ),
                f.input(
                    "loss.date",
                    "text",
                    "Fecha de la pérdida",
                    "Date of the loss",
                ),
                f.input(
                    "loss.place",
                    "text",
                    "Lugar de la pérdida",
                    "Place of the loss",
                ),
                f.input(
                    "loss.police_report",
                    "text",
                    "Número de la denuncia",
                    "Police report number",
                ),
            ],
        },
        Group {
            legend: lang
                .pick("Consentimiento (menores de edad)", "Consent (minors)")
                .into(),
            inputs: {
                let mut v = vec![f.select(
                    "consent",
                    "Consentimiento",
                    "Consent",
                    &[
                        ("", "(no aplica)", "(not applicable)"),
                        (
                            "guardians_present",
                            "Padres o tutores presentes",
                            "Guardians present",
                        ),
                        ("notarised", "Permiso notarial", "Notarised permission"),
                    ],
                )];
                v.extend(guardian(0));
                v.extend(guardian(1));
                v.push(f.input(
                    "notarial_reference",
                    "text",
                    "Referencia notarial",
                    "Notarial reference",
                ));
                v
            },
        },
    ];
    FormView {
        id: "capture",
        heading: lang.pick("Toma de datos", "Capture").into(),
        intro: String::new(),
        action: action.to_string(),
        multipart: true,
        csrf: s.csrf.clone(),
        groups,
        submit: lang
            .pick("Guardar la toma de datos", "Save the capture")
            .into(),
    }
}

/// A decision form's failure: its problems on the application page.
async fn application_again(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    id: &str,
    form: &'static str,
    values: HashMap<String, String>,
    e: WorkError,
) -> Response {
    match failure(lang, e) {
        Failure::Page(r) => r,
        Failure::Fix(status, problems) => {
            let sub = Submitted {
                form,
                values,
                problems,
            };
            application_page(app, s, lang, id, None, Some(sub), status).await
        }
    }
}

fn back_to(id: &str, lang: Lang, done: &str) -> Response {
    see_other(&format!("{}&done={done}", app_href(id, lang)))
}

/// What a capture post holds: the typed fields, the two files, the token.
type CapturePost = (HashMap<String, String>, Vec<u8>, Vec<u8>, Option<String>);

/// Why a capture post could not be read.
enum Unreadable {
    TooLarge,
    Malformed,
}

/// Reads the capture post: text fields (each bounded), the two files, and
/// the CSRF token.
async fn read_capture(mut mp: Multipart) -> Result<CapturePost, Unreadable> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Unreadable::TooLarge
        } else {
            Unreadable::Malformed
        }
    };
    let mut values = HashMap::new();
    let (mut photo, mut signature, mut csrf) = (Vec::new(), Vec::new(), None);
    let mut parts = 0usize;
    while let Some(field) = mp.next_field().await.map_err(unreadable)? {
        parts += 1;
        if parts > CAPTURE_PARTS_MAX {
            return Err(Unreadable::Malformed);
        }
        let name = field.name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(unreadable)?;
        let text = || String::from_utf8(bytes.to_vec()).map_err(|_| Unreadable::Malformed);
        match name.as_str() {
            "photo" => photo = bytes.to_vec(),
            "signature" => signature = bytes.to_vec(),
            _ if bytes.len() > CAPTURE_TEXT_BYTES_MAX => return Err(Unreadable::Malformed),
            "csrf" => csrf = Some(text()?),
            _ => {
                values.insert(name, text()?);
            }
        }
    }
    Ok((values, photo, signature, csrf))
}

async fn capture(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    mp: Multipart,
) -> Response {
    use subtle::ConstantTimeEq;
    let csrf_refused = || crate::auth::AuthRejection::Csrf { api: false, lang }.into_response();
    if app.cross_site(&headers) {
        tracing::warn!(staff_id = %s.staff_id, "cross-site capture form refused");
        return csrf_refused();
    }
    if let Err(r) = s.require(Action::Capture, None, &application_uri(&id, lang), lang) {
        return r.into_response();
    }
    let (values, photo, signature, csrf) = match read_capture(mp).await {
        Ok(post) => post,
        Err(Unreadable::Malformed) => {
            return crate::auth::AuthRejection::BadForm { lang }.into_response();
        }
        Err(Unreadable::TooLarge) => {
            return message(
                StatusCode::PAYLOAD_TOO_LARGE,
                lang,
                lang.pick("Archivos demasiado grandes", "Files too large"),
                lang.pick(
                    "La foto puede pesar hasta 2 MiB y la firma hasta 512 KiB. Vuelva a la página anterior y elija archivos más pequeños.",
                    "The photo may be up to 2 MiB and the signature up to 512 KiB. Go back and choose smaller files.",
                ),
            );
        }
    };
    let csrf_ok = csrf.is_some_and(|c| {
        c.len() == s.csrf.len() && bool::from(c.as_bytes().ct_eq(s.csrf.as_bytes()))
    });
    if !csrf_ok {
        tracing::warn!(staff_id = %s.staff_id, "capture form without a valid csrf token refused");
        return csrf_refused();
    }
    let object: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let form: CaptureForm = match serde_json::from_value(serde_json::Value::Object(object)) {
        Ok(f) => f,
        Err(_) => return crate::auth::AuthRejection::BadForm { lang }.into_response(),
    };
    match workflow::capture(
        &app,
        &s.actor(),
        &Scope(&s),
        &id,
        &form,
        workflow::CaptureFiles { photo, signature },
        Timestamp::now(),
    )
    .await
    {
        Ok(Ok(_)) => back_to(&id, lang, "captured"),
        Ok(Err(faults)) => {
            let mut problems: Vec<Problem> = faults
                .fields
                .0
                .iter()
                .map(|f| Problem {
                    field: Some(f.field.clone()),
                    message: lang.pick(f.es, f.en).to_string(),
                })
                .collect();
            problems.extend(faults.images.iter().map(|i| Problem {
                field: Some(i.field.to_string()),
                message: lang.pick(&i.es, &i.en).to_string(),
            }));
            let sub = Submitted {
                form: "capture",
                values,
                problems,
            };
            application_page(
                &app,
                &s,
                lang,
                &id,
                None,
                Some(sub),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => application_again(&app, &s, lang, &id, "capture", values, e).await,
    }
}

async fn approve(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::Approve, None, &application_uri(&id, lang), lang) {
        return r.into_response();
    }
    let r = workflow::approve(&app, &s.actor(), &Scope(&s), &id, Timestamp::now()).await;
    match r {
        Ok(_) => back_to(&id, lang, "decided"),
        Err(e) => application_again(&app, &s, lang, &id, "approve", form, e).await,
    }
}

async fn decision(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::Decide, None, &application_uri(&id, lang), lang) {
        return r.into_response();
    }
    let reason = value(&form, "reason");
    let command = match value(&form, "decision").as_str() {
        "approve" => Command::Approve,
        "reject" => Command::Reject { reason },
        "cancel" => Command::Cancel { reason },
        _ => {
            return application_again(
                &app,
                &s,
                lang,
                &id,
                "decision",
                form,
                WorkError::Invalid(pasaporte_core::FieldErrors(vec![
                    pasaporte_core::FieldError::new(
                        "decision",
                        "decision_invalid",
                        "Elija aprobar, rechazar o cancelar.",
                        "Choose approve, reject or cancel.",
                    ),
                ])),
            )
            .await;
        }
    };
    match workflow::decide(&app, &s.actor(), &Scope(&s), &id, command, Timestamp::now()).await {
        Ok(_) => back_to(&id, lang, "decided"),
        Err(e) => application_again(&app, &s, lang, &id, "decision", form, e).await,
    }
}

async fn registry_override(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(
        Action::OverrideRegistry,
        None,
        &application_uri(&id, lang),
        lang,
    ) {
        return r.into_response();
    }
    let command = Command::SupervisorOverrideRegistry {
        reason: value(&form, "reason"),
    };
    match workflow::decide(&app, &s.actor(), &Scope(&s), &id, command, Timestamp::now()).await {
        Ok(_) => back_to(&id, lang, "decided"),
        Err(e) => application_again(&app, &s, lang, &id, "override", form, e).await,
    }
}

async fn waiver(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::TakePayment, None, &application_uri(&id, lang), lang) {
        return r.into_response();
    }
    let reason = value(&form, "reason");
    match workflow::request_waiver(&app, &s.actor(), &Scope(&s), &id, &reason, Timestamp::now())
        .await
    {
        Ok(()) => back_to(&id, lang, "waiver"),
        Err(e) => application_again(&app, &s, lang, &id, "waiver", form, e).await,
    }
}

async fn waiver_decision(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(
        Action::ApproveWaiver,
        None,
        &application_uri(&id, lang),
        lang,
    ) {
        return r.into_response();
    }
    let approve = value(&form, "approve") == "true";
    match workflow::decide_waiver(&app, &s.actor(), &Scope(&s), &id, approve, Timestamp::now())
        .await
    {
        Ok(_) => back_to(&id, lang, "decided"),
        Err(e) => application_again(&app, &s, lang, &id, "waiver_decision", form, e).await,
    }
}

async fn receive(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::HandOver, None, &application_uri(&id, lang), lang) {
        return r.into_response();
    }
    // Kept as typed: the use case takes out blanks and line breaks itself.
    let mrz = form.get("mrz").cloned().unwrap_or_default();
    match pipeline::receive_booklet(&app, &s.actor(), &Scope(&s), &id, &mrz, Timestamp::now()).await
    {
        Ok(Receipt::Ready) => back_to(&id, lang, "received"),
        Ok(Receipt::Reprint) => back_to(&id, lang, "reprint"),
        Err(e) => application_again(&app, &s, lang, &id, "receive", form, e).await,
    }
}

async fn hand_over(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::HandOver, None, &application_uri(&id, lang), lang) {
        return r.into_response();
    }
    let who = HandOverForm {
        document_number: value(&form, "document_number"),
        guardian_document_number: value(&form, "guardian_document_number"),
    };
    match pipeline::hand_over(&app, &s.actor(), &Scope(&s), &id, &who, Timestamp::now()).await {
        Ok(()) => back_to(&id, lang, "handed_over"),
        Err(e) => application_again(&app, &s, lang, &id, "handover", form, e).await,
    }
}

async fn emergency(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::HandOver, None, &application_uri(&id, lang), lang) {
        return r.into_response();
    }
    // The page after the redirect reads the passport back from its order,
    // so a reload shows it again rather than posting a second issue.
    match pipeline::issue_emergency(&app, &s.actor(), &Scope(&s), &id, Timestamp::now()).await {
        Ok(_) => back_to(&id, lang, "emergency"),
        Err(e) => application_again(&app, &s, lang, &id, "emergency", form, e).await,
    }
}

async fn photo(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    Path(id): Path<String>,
) -> Response {
    use base64::Engine as _;
    if let Err(r) = s.require(
        Action::ViewApplication,
        None,
        &application_uri(&id, lang),
        lang,
    ) {
        return r.into_response();
    }
    let row = match app.store.application(&id).await {
        Ok(r) if s.covers(&r.office) => r,
        Ok(_) | Err(pasaporte_store::StoreError::NotFound) => return not_found(lang),
        Err(e) => return store_failure(lang, e),
    };
    let Some(sealed) = row.photo_enc.as_deref() else {
        return not_found(lang);
    };
    let action = pasaporte_store::READ_ACTIONS[1];
    workflow::record_read(&app, &s.actor(), &row.office, &id, action, Timestamp::now()).await;
    let png = app
        .keys
        .open(crate::crypto::at::application_photo(&row.id), sealed)
        .map_err(|e| e.to_string())
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| e.to_string())
        })
        .and_then(|bytes| {
            // The digest is stored in clear beside the sealed photo: one
            // moved without the other is refused too.
            use sha2::Digest as _;
            let digest = crate::crypto::hex(&sha2::Sha256::digest(&bytes));
            if row.photo_sha256.as_deref() == Some(digest.as_str()) {
                Ok(bytes)
            } else {
                Err(format!(
                    "data integrity: applications.photo_sha256[{}] does not match its photo",
                    row.id
                ))
            }
        });
    match png {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a stored photo could not be opened");
            internal_page(lang)
        }
    }
}

// ---------------------------------------------------------------------------
// Supervisor, reconciliation, audit.

#[derive(Deserialize, Default)]
struct OfficeQuery {
    office: Option<String>,
    /// After a closure: bookings moved and displaced.
    moved: Option<usize>,
    displaced: Option<usize>,
}

/// The offices a person may pick in a filter, with "all" first.
fn office_choices(app: &crate::app::App, s: &StaffSession, lang: Lang, chosen: &str) -> Vec<Opt> {
    let mut v = vec![Opt {
        value: String::new(),
        label: lang.pick("Todas mis oficinas", "All my offices").into(),
        selected: chosen.is_empty(),
    }];
    for (code, e) in app.offices().iter() {
        if s.may_use_office(code) {
            v.push(Opt {
                value: code.clone(),
                label: format!("{code} · {}", e.office.name),
                selected: chosen == code,
            });
        }
    }
    v
}

fn work_line(app: &crate::app::App, lang: Lang, r: &pasaporte_store::ApplicationRow) -> WorkLine {
    WorkLine {
        ticket: r.ticket.clone(),
        office: r.office.clone(),
        state: state_text(lang, &r.state),
        since: when(app, &r.office, r.state_since_ms),
        deadline: r
            .deadline_ms
            .map(|ms| when(app, &r.office, ms))
            .unwrap_or_default(),
        href: app_href(&r.id, lang),
    }
}

async fn supervisor(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    uri: Uri,
    Query(q): Query<OfficeQuery>,
) -> Response {
    let office = q.office.filter(|o| !o.trim().is_empty());
    if let Err(r) = s.require(Action::ViewSupervisorQueues, None, &uri, lang) {
        return r.into_response();
    }
    if let Some(o) = &office
        && (!s.covers(o) || app.office(o).is_none())
    {
        return not_found(lang);
    }
    let notice = q.moved.map(|m| {
        let d = q.displaced.unwrap_or(0);
        match lang {
            Lang::Es => format!(
                "Día cerrado: {m} citas reubicadas, {d} esperan que el ciudadano elija otra hora."
            ),
            Lang::En => format!(
                "Day closed: {m} bookings re-seated, {d} waiting for the citizen to choose a time."
            ),
        }
    });
    supervisor_page(&app, &s, lang, office, notice, Vec::new(), StatusCode::OK).await
}

/// The supervisor page: the queues, the form to close an office's day and
/// the bookings a closure left waiting for their citizens' choice.
async fn supervisor_page(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    office: Option<String>,
    notice: Option<String>,
    errors: Vec<ErrorItem>,
    status: StatusCode,
) -> Response {
    let now = Timestamp::now();
    let [flagged, pending, overdue] =
        match staff_api::supervisor_lists(app, s, office.as_deref(), now).await {
            Ok(l) => l,
            Err(e) => {
                return match failure(lang, e) {
                    Failure::Page(r) => r,
                    Failure::Fix(..) => internal_page(lang),
                };
            }
        };
    let waivers = match app.store.waivers_requested(office.as_deref()).await {
        Ok(w) => w,
        Err(e) => return store_failure(lang, e),
    };
    let mut waiver_lines = Vec::new();
    for w in waivers
        .iter()
        .filter(|w| s.may_use_office(&w.office_code))
        .take(WAIVERS_SHOWN_MAX)
    {
        match app.store.application(&w.application_id).await {
            Ok(r) => {
                let mut line = work_line(app, lang, &r);
                line.since = when(app, &r.office, w.requested_ms);
                waiver_lines.push(line);
            }
            Err(pasaporte_store::StoreError::NotFound) => {}
            Err(e) => return store_failure(lang, e),
        }
    }
    let line = |r: &pasaporte_store::ApplicationRow| work_line(app, lang, r);
    let tables = vec![
        WorkTable {
            id: "flagged",
            caption: lang
                .pick("En revisión del supervisor", "In supervisor review")
                .into(),
            rows: flagged.iter().map(line).collect(),
        },
        WorkTable {
            id: "pending-registry",
            caption: lang
                .pick(
                    "Esperando al registro civil",
                    "Waiting for the civil registry",
                )
                .into(),
            rows: pending.iter().map(line).collect(),
        },
        WorkTable {
            id: "waivers",
            caption: lang
                .pick("Exoneraciones solicitadas", "Waivers requested")
                .into(),
            rows: waiver_lines,
        },
        WorkTable {
            id: "overdue",
            caption: lang
                .pick("Vencidas (plazo cumplido)", "Overdue (deadline passed)")
                .into(),
            rows: overdue.iter().map(line).collect(),
        },
    ];
    let title = lang.pick("Supervisión", "Supervision");
    let path = match &office {
        Some(o) => format!("/console/supervisor?office={}", enc(o)),
        None => "/console/supervisor".to_string(),
    };
    let displaced = match crate::reseat::displaced(app, office.as_deref()).await {
        Ok(rows) => rows
            .into_iter()
            .filter(|r| s.may_use_office(&r.office))
            .map(|r| DisplacedLine {
                lost: when(app, &r.office, r.start_ms),
                since: when(app, &r.office, r.updated_ms),
                code: r.code,
                office: r.office,
                seats: r.seats,
            })
            .collect(),
        Err(e) => {
            return match failure(lang, e) {
                Failure::Page(r) => r,
                Failure::Fix(..) => internal_page(lang),
            };
        }
    };
    let fees_missing = match staff_api::fee_gaps(app, s, office.as_deref()).await {
        Ok(gaps) => gaps
            .into_iter()
            .map(|g| match lang {
                Lang::Es => format!(
                    "No hay tarifa configurada para el pasaporte {} en la oficina {} ({}): {} solicitudes esperan su referencia de pago.",
                    g.passport_type, g.office, g.currency, g.applications
                ),
                Lang::En => format!(
                    "No fee configured for the {} passport at office {} ({}): {} applications wait for their payment reference.",
                    g.passport_type, g.office, g.currency, g.applications
                ),
            })
            .collect(),
        Err(e) => {
            return match failure(lang, e) {
                Failure::Page(r) => r,
                Failure::Fix(..) => internal_page(lang),
            };
        }
    };
    let may_close = allows(s.role, Action::ManageOfficeDays);
    let mut close_offices = office_choices(app, s, lang, office.as_deref().unwrap_or(""));
    close_offices.retain(|o| !o.value.is_empty());
    let page = SupervisorPage {
        c: ConsoleChrome::new(lang, title, &path, Some(s)),
        registry: registry_line(app, lang, None),
        offices: office_choices(app, s, lang, office.as_deref().unwrap_or("")),
        tables,
        notice,
        errors,
        may_close,
        close_offices,
        csrf: s.csrf.clone(),
        displaced,
        fees_missing,
    };
    render(status, lang, &page)
}

/// Closes an office for a day from the supervisor page; its bookings are
/// re-seated at once (see `reseat`).
async fn close_day(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    uri: Uri,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    let office = value(&form, "office");
    if let Err(r) = s.require(
        Action::ManageOfficeDays,
        Some(&office),
        &page_of(&uri, lang),
        lang,
    ) {
        return r.into_response();
    }
    if !s.covers(&office) || app.office(&office).is_none() {
        return not_found(lang);
    }
    let day = value(&form, "day").trim().parse();
    let result = match day {
        Ok(day) => {
            crate::reseat::close_office_day(
                &app,
                &office,
                day,
                &value(&form, "reason"),
                &s.actor(),
                Timestamp::now(),
            )
            .await
        }
        Err(_) => Err(WorkError::Invalid(pasaporte_core::FieldErrors(vec![
            pasaporte_core::FieldError::new(
                "day",
                "invalid_date",
                "Escriba la fecha como AAAA-MM-DD.",
                "Write the date as YYYY-MM-DD.",
            ),
        ]))),
    };
    match result {
        Ok(r) => see_other(&format!(
            "/console/supervisor?lang={}&moved={}&displaced={}",
            lang.code(),
            r.moved.len(),
            r.displaced
        )),
        Err(e) => match failure(lang, e) {
            Failure::Page(r) => r,
            Failure::Fix(status, problems) => {
                let errors = problems
                    .into_iter()
                    .map(|p| ErrorItem {
                        href: format!("#close-{}", p.field.as_deref().unwrap_or("day")),
                        message: p.message,
                    })
                    .collect();
                supervisor_page(&app, &s, lang, None, None, errors, status).await
            }
        },
    }
}

/// The reconciliation's rows and totals as this person may see them.
async fn reconciliation_data(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    uri: &Uri,
    q: &staff_api::ReconciliationQuery,
) -> Result<(pasaporte_store::Reconciliation, Option<String>), Response> {
    s.require(Action::ViewReconciliation, None, uri, lang)?;
    if let Some(o) = &q.office
        && (!s.covers(o) || app.office(o).is_none())
    {
        return Err(not_found(lang));
    }
    let (from, to) = match staff_api::reconciliation_window(q, Timestamp::now()) {
        Ok(w) => w,
        Err(_) => {
            return Ok((
                pasaporte_store::Reconciliation::default(),
                Some(
                    lang.pick(
                        "Escriba las fechas como AAAA-MM-DD.",
                        "Type the dates as YYYY-MM-DD.",
                    )
                    .to_string(),
                ),
            ));
        }
    };
    let mut r = app
        .store
        .reconciliation(q.office.as_deref(), from, to)
        .await
        .map_err(|e| store_failure(lang, e))?;
    r.rows.retain(|row| s.may_use_office(&row.office_code));
    // Totals over every office are shown only to those who see every office.
    if q.office.is_none() && !s.may_use_office(crate::auth::ALL_OFFICES) {
        r.totals.clear();
    }
    Ok((r, None))
}

fn reconciliation_query(q: ReconQuery) -> staff_api::ReconciliationQuery {
    let keep = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    staff_api::ReconciliationQuery {
        office: keep(q.office),
        from: keep(q.from),
        to: keep(q.to),
    }
}

#[derive(Deserialize, Default)]
struct ReconQuery {
    office: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn status_label(lang: Lang, s: pasaporte_core::fees::PaymentStatus) -> &'static str {
    use pasaporte_core::fees::PaymentStatus as P;
    match s {
        P::Created => lang.pick("por pagar", "awaiting payment"),
        P::Paid => lang.pick("pagada", "paid"),
        P::RefundPending => lang.pick("reembolso en curso", "refund pending"),
        P::Refunded => lang.pick("reembolsada", "refunded"),
        P::Waived => lang.pick("exonerada", "waived"),
    }
}

async fn reconciliation(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    uri: Uri,
    Query(q): Query<ReconQuery>,
) -> Response {
    let q = reconciliation_query(q);
    let (r, error) = match reconciliation_data(&app, &s, lang, &uri, &q).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let mut query = Vec::new();
    if let Some(o) = &q.office {
        query.push(format!("office={}", enc(o)));
    }
    if let Some(f) = &q.from {
        query.push(format!("from={}", enc(f)));
    }
    if let Some(t) = &q.to {
        query.push(format!("to={}", enc(t)));
    }
    query.push(format!("lang={}", lang.code()));
    let rows = r
        .rows
        .iter()
        .map(|row| ReconLine {
            reference: row.reference.clone(),
            href: app_href(&row.application_id, lang),
            office: row.office_code.clone(),
            created: when(&app, &row.office_code, row.created_ms),
            amount: money(row.amount_minor, &row.currency),
            status: status_label(lang, row.status).to_string(),
            paid: money(row.paid_minor, &row.currency),
            refunded: money(row.refunded_minor, &row.currency),
            waived: if row.waived {
                lang.pick("sí", "yes")
            } else {
                lang.pick("no", "no")
            }
            .to_string(),
        })
        .collect();
    let totals = r
        .totals
        .iter()
        .map(|t| TotalLine {
            currency: t.currency.clone(),
            references: t.references,
            expected: money(t.expected_minor, &t.currency),
            paid: money(t.paid_minor, &t.currency),
            refunded: money(t.refunded_minor, &t.currency),
            waived: money(t.waived_minor, &t.currency),
        })
        .collect();
    let title = lang.pick("Conciliación", "Reconciliation");
    let page = ReconciliationPage {
        c: ConsoleChrome::new(lang, title, "/console/reconciliation", Some(&s)),
        error,
        offices: office_choices(&app, &s, lang, q.office.as_deref().unwrap_or("")),
        from: q.from.clone().unwrap_or_default(),
        to: q.to.clone().unwrap_or_default(),
        csv_href: format!("/console/reconciliation.csv?{}", query.join("&")),
        rows,
        totals,
        truncated: r.truncated,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(status, lang, &page)
}

/// One CSV cell, quoted when it holds a separator, a quote or a line break.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

async fn reconciliation_csv(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    uri: Uri,
    Query(q): Query<ReconQuery>,
) -> Response {
    let q = reconciliation_query(q);
    let (r, error) = match reconciliation_data(&app, &s, lang, &uri, &q).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if let Some(e) = error {
        return (StatusCode::UNPROCESSABLE_ENTITY, e).into_response();
    }
    let mut out = String::from(
        "reference,application,office,created_utc,currency,amount_minor,status,paid_minor,refunded_minor,waived\r\n",
    );
    for row in &r.rows {
        let cells = [
            csv_cell(&row.reference),
            csv_cell(&row.application_id),
            csv_cell(&row.office_code),
            ts(row.created_ms)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            csv_cell(&row.currency),
            row.amount_minor.to_string(),
            row.status.as_str().to_string(),
            row.paid_minor.to_string(),
            row.refunded_minor.to_string(),
            row.waived.to_string(),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"reconciliation.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}

async fn audit(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    uri: Uri,
) -> Response {
    use pasaporte_core::audit::Verdict;
    if let Err(r) = s.require(Action::ViewAudit, None, &uri, lang) {
        return r.into_response();
    }
    let (intact, verdict) = match &app.audit_signer {
        None => (
            None,
            lang.pick(
                "El servicio no tiene la clave de los puntos de control (PASAPORTE_AUDIT_SIGNING_KEY), así que no verifica la cadena aquí. Verifíquela con la clave pública: pasaporte audit verify.",
                "The service has no checkpoint key (PASAPORTE_AUDIT_SIGNING_KEY), so it does not verify the chain here. Verify it with the public key: pasaporte audit verify.",
            )
            .to_string(),
        ),
        Some(signer) => match app.store.verify_audit(&signer.public()).await {
            Ok(Verdict::Intact {
                count,
                checkpointed_through,
            }) => (
                Some(true),
                match lang {
                    Lang::Es => format!(
                        "Íntegro: {count} eventos, firmados hasta el {checkpointed_through}."
                    ),
                    Lang::En => format!(
                        "Intact: {count} events, signed through {checkpointed_through}."
                    ),
                },
            ),
            Ok(Verdict::Broken { seq, fault }) => (
                Some(false),
                match lang {
                    Lang::Es => format!("Roto en el evento {seq}: {fault}"),
                    Lang::En => format!("Broken at event {seq}: {fault}"),
                },
            ),
            Err(e) => return store_failure(lang, e),
        },
    };
    let title = lang.pick("Auditoría", "Audit trail");
    let page = AuditPage {
        c: ConsoleChrome::new(lang, title, "/console/audit", Some(&s)),
        intact,
        verdict,
    };
    render(StatusCode::OK, lang, &page)
}

// ---------------------------------------------------------------------------
// Booklet stock and production.

/// The sites whose stock is shown one by one: the vendors' sites, then the
/// offices (their emergency stock).
async fn stock_sites(app: &crate::app::App) -> Result<Vec<String>, pasaporte_store::StoreError> {
    let mut sites: Vec<String> = app
        .store
        .vendors()
        .await?
        .into_iter()
        .map(|v| v.site)
        .collect();
    sites.sort();
    sites.dedup();
    for code in app.offices().keys() {
        if !sites.contains(code) {
            sites.push(code.clone());
        }
    }
    sites.truncate(STOCK_SITES_SHOWN_MAX);
    Ok(sites)
}

fn stock_lines(lang: Lang, levels: &[pasaporte_store::StockLevel]) -> Vec<StockLine> {
    levels
        .iter()
        .map(|l| StockLine {
            booklet_type: booklet_type_label(lang, l.booklet_type),
            state: booklet_state_label(lang, l.state).to_string(),
            count: l.count,
        })
        .collect()
}

/// Whether a forecast leaves too few days of stock.
fn stock_is_low(f: &pasaporte_store::StockForecast) -> bool {
    f.days_left.is_some_and(|d| d < STOCK_DAYS_LOW)
}

async fn stock(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    uri: Uri,
) -> Response {
    if let Err(r) = s.require(Action::ViewStock, None, &uri, lang) {
        return r.into_response();
    }
    let now = Timestamp::now();
    let window = staff_api::STOCK_WINDOW_DAYS_DEFAULT;
    let all = match app.store.stock_levels(None).await {
        Ok(l) => l,
        Err(e) => return store_failure(lang, e),
    };
    let forecasts = match app
        .store
        .stock_forecasts(None, now.as_millisecond(), window)
        .await
    {
        Ok(f) => f,
        Err(e) => return store_failure(lang, e),
    };
    let sites = match stock_sites(&app).await {
        Ok(s) => s,
        Err(e) => return store_failure(lang, e),
    };
    let mut tables = vec![StockTable {
        id: "stock-all".into(),
        caption: lang.pick("Todas las sedes", "All sites").to_string(),
        rows: stock_lines(lang, &all),
    }];
    for site in &sites {
        let levels = match app.store.stock_levels(Some(site)).await {
            Ok(l) => l,
            Err(e) => return store_failure(lang, e),
        };
        if levels.is_empty() {
            continue;
        }
        tables.push(StockTable {
            id: field_id("stock", site),
            caption: format!("{} {site}", lang.pick("Sede", "Site")),
            rows: stock_lines(lang, &levels),
        });
    }
    let warnings = forecasts
        .iter()
        .filter(|f| stock_is_low(f))
        .map(|f| {
            let days = f.days_left.unwrap_or_default().floor();
            let kind = booklet_type_label(lang, f.booklet_type);
            match lang {
                Lang::Es => format!(
                    "Quedan menos de {STOCK_DAYS_LOW} días de libretas de {kind}: unos {days} días al ritmo de los últimos {window} días."
                ),
                Lang::En => format!(
                    "Fewer than {STOCK_DAYS_LOW} days of {kind} booklets left: about {days} days at the rate of the last {window} days."
                ),
            }
        })
        .collect();
    let forecast_lines = forecasts
        .iter()
        .map(|f| ForecastLine {
            booklet_type: booklet_type_label(lang, f.booklet_type),
            in_stock: f.in_stock,
            issued: f.issued,
            days_left: match f.days_left {
                Some(d) => format!("{}", d.floor()),
                None => lang
                    .pick("sin consumo en el periodo", "none issued in the window")
                    .to_string(),
            },
            low: stock_is_low(f),
        })
        .collect();
    let title = lang.pick("Existencias de libretas", "Booklet stock");
    let page = StockPage {
        c: ConsoleChrome::new(lang, title, "/console/stock", Some(&s)),
        window_days: window,
        warnings,
        forecasts: forecast_lines,
        tables,
    };
    render(StatusCode::OK, lang, &page)
}

#[derive(Deserialize, Default)]
struct ProductionQuery {
    state: Option<String>,
    done: Option<String>,
}

async fn production(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    uri: Uri,
    Query(q): Query<ProductionQuery>,
) -> Response {
    if let Err(r) = s.require(Action::ViewProduction, None, &uri, lang) {
        return r.into_response();
    }
    let (state, errors) = match q.state.as_deref().map(str::trim) {
        None | Some("") => (OrderState::Dead, Vec::new()),
        Some(text) => match OrderState::parse(text) {
            Some(st) => (st, Vec::new()),
            None => (
                OrderState::Dead,
                vec![ErrorItem {
                    href: "#state".into(),
                    message: lang
                        .pick(
                            "Elija un estado de pedido de la lista.",
                            "Choose an order state from the list.",
                        )
                        .into(),
                }],
            ),
        },
    };
    let notice = match q.done.as_deref() {
        Some("resent") => Some(lang.pick(
            "Pedido reenviado: volvió a la cola de envío.",
            "Order sent again: it is back in the outbox.",
        )),
        Some("draining") => Some(lang.pick(
            "Proveedor en drenaje: no recibe pedidos nuevos; los que aún no aceptó pasan a otro proveedor.",
            "Vendor draining: it gets no new orders; those it has not accepted yet move to another vendor.",
        )),
        Some("active") => Some(lang.pick(
            "Proveedor activo: vuelve a recibir pedidos.",
            "Vendor active: it gets orders again.",
        )),
        _ => None,
    }
    .map(str::to_string);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    production_page(&app, &s, lang, state, notice, errors, status).await
}

async fn production_page(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    state: OrderState,
    notice: Option<String>,
    errors: Vec<ErrorItem>,
    status: StatusCode,
) -> Response {
    let (counts, orders) = match super::production_api::scoped_orders(app, s, state, None).await {
        Ok(c) => c,
        Err(e) => return store_failure(lang, e),
    };
    let vendors = match app.store.vendors().await {
        Ok(v) => v,
        Err(e) => return store_failure(lang, e),
    };
    let all = |v: &str| -> String {
        if v.trim() == "*" {
            lang.pick("todos", "all").to_string()
        } else {
            v.replace(',', ", ")
        }
    };
    let may_switch = allows(s.role, Action::ManageVendors);
    let may_resend = allows(s.role, Action::ResendOrder);
    let vendor_lines = vendors
        .iter()
        .map(|v| {
            let (to, es, en) = if v.is_active() {
                ("draining", "Pasar a drenaje", "Start draining")
            } else {
                ("active", "Volver a activar", "Make active again")
            };
            VendorLine {
                id: v.id.clone(),
                state: vendor_state_label(lang, &v.state).to_string(),
                share: v.share,
                site: v.site.clone(),
                passport_types: all(&v.passport_types),
                offices: all(&v.offices),
                action: may_switch.then(|| {
                    format!(
                        "/console/production/vendors/{}/state?lang={}",
                        enc(&v.id),
                        lang.code()
                    )
                }),
                to_state: to,
                switch_label: lang.pick(es, en).to_string(),
            }
        })
        .collect();
    let count_lines = counts
        .iter()
        .map(|c| CountLine {
            vendor: c
                .vendor_id
                .clone()
                .unwrap_or_else(|| lang.pick("sin proveedor", "no vendor yet").to_string()),
            state: order_state_label(lang, c.state).to_string(),
            count: c.count,
        })
        .collect();
    let order_lines: Vec<ProductionLine> = orders
        .iter()
        .map(|o| ProductionLine {
            order_id: o.order_id.clone(),
            application_id: o.application_id.clone(),
            href: app_href(&o.application_id, lang),
            office: o.office.clone(),
            vendor: vendor_text(lang, o),
            state: order_state_label(lang, o.state).to_string(),
            passport_number: o.passport_number.clone(),
            booklet_serial: o.booklet_serial.clone().unwrap_or_default(),
            sends: o.sends,
            failures: o.failures,
            last_error: o.last_error.clone().unwrap_or_default(),
            tracking: o.tracking.clone().unwrap_or_default(),
            resend: (may_resend && o.state == OrderState::Dead).then(|| {
                format!(
                    "/console/production/orders/{}/resend?lang={}",
                    enc(&o.order_id),
                    lang.code()
                )
            }),
        })
        .collect();
    let states = OrderState::ALL
        .iter()
        .map(|st| Opt {
            value: st.as_str().to_string(),
            label: order_state_label(lang, *st).to_string(),
            selected: *st == state,
        })
        .collect();
    let title = lang.pick("Producción", "Production");
    let path = format!("/console/production?state={}", state.as_str());
    let page = ProductionPage {
        c: ConsoleChrome::new(lang, title, &path, Some(s)),
        notice,
        errors,
        counts: count_lines,
        vendors: vendor_lines,
        states,
        state_label: order_state_label(lang, state).to_string(),
        truncated: orders.len() >= ORDER_LIST_MAX as usize,
        orders: order_lines,
        may_switch,
        csrf: s.csrf.clone(),
    };
    render(status, lang, &page)
}

/// A production form's refusal, shown on the production page's summary.
async fn production_again(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    state: OrderState,
    anchor: &str,
    e: WorkError,
) -> Response {
    match failure(lang, e) {
        Failure::Page(r) => r,
        Failure::Fix(status, problems) => {
            let errors = problems
                .into_iter()
                .map(|p| ErrorItem {
                    href: format!("#{anchor}"),
                    message: p.message,
                })
                .collect();
            production_page(app, s, lang, state, None, errors, status).await
        }
    }
}

async fn resend(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    uri: Uri,
    Path(id): Path<String>,
    ConsoleForm { session: s, .. }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::ResendOrder, None, &page_of(&uri, lang), lang) {
        return r.into_response();
    }
    match pipeline::resend_order(&app, &s.actor(), &Scope(&s), &id, Timestamp::now()).await {
        Ok(_) => see_other(&format!(
            "/console/production?lang={}&state=dead&done=resent",
            lang.code()
        )),
        Err(e) => production_again(&app, &s, lang, OrderState::Dead, "orders-h", e).await,
    }
}

async fn vendor_state(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    uri: Uri,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::ManageVendors, None, &page_of(&uri, lang), lang) {
        return r.into_response();
    }
    let state = value(&form, "state");
    if !matches!(state.as_str(), "active" | "draining") {
        let e = WorkError::Invalid(pasaporte_core::FieldErrors(vec![
            pasaporte_core::FieldError::new(
                "state",
                "unknown_vendor_state",
                "El estado de un proveedor es activo o en drenaje.",
                "A vendor's state is active or draining.",
            ),
        ]));
        return production_again(&app, &s, lang, OrderState::Dead, "vendors-h", e).await;
    }
    match pipeline::set_vendor_state(&app.store, &s.actor(), &id, &state, Timestamp::now()).await {
        Ok(()) => see_other(&format!(
            "/console/production?lang={}&done={state}",
            lang.code()
        )),
        Err(e) => production_again(&app, &s, lang, OrderState::Dead, "vendors-h", e).await,
    }
}

// ---------------------------------------------------------------------------
// Views.

pub struct BookingLine {
    pub time: String,
    pub code: String,
    pub seats: u32,
    pub status: String,
}

pub struct QueueLine {
    pub ticket: String,
    pub state: String,
    pub counter: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "console/today.html")]
struct TodayPage {
    c: ConsoleChrome,
    office_code: String,
    office_name: String,
    date_label: String,
    time_zone: String,
    registry: String,
    notice: Option<String>,
    errors: Vec<ErrorItem>,
    bookings: Vec<BookingLine>,
    queue: Vec<QueueLine>,
    no_shows: i64,
    forms: Vec<FormView>,
}

pub struct HistoryLine {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub change: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "console/application.html")]
struct ApplicationPage {
    c: ConsoleChrome,
    notice: Option<String>,
    errors: Vec<ErrorItem>,
    ticket: String,
    office: String,
    office_href: String,
    state: String,
    queue: String,
    counter: String,
    deadline: String,
    passport_type: String,
    flags: Vec<String>,
    surnames: String,
    given_names: String,
    document: String,
    photo: Option<String>,
    payment: Option<String>,
    waiver: Option<String>,
    history: Vec<HistoryLine>,
    orders: Vec<OrderLine>,
    issued: Option<IssuedView>,
    forms: Vec<FormView>,
}

/// One production order of an application.
pub struct OrderLine {
    pub order_id: String,
    pub vendor: String,
    pub state: String,
    pub passport_number: String,
    pub booklet_serial: String,
    pub tracking: String,
}

/// An emergency passport just issued, for the office's printer.
pub struct IssuedView {
    pub passport_number: String,
    pub booklet_serial: String,
    pub mrz: Vec<String>,
}

pub struct WorkLine {
    pub ticket: String,
    pub office: String,
    pub state: String,
    pub since: String,
    pub deadline: String,
    pub href: String,
}

pub struct WorkTable {
    pub id: &'static str,
    pub caption: String,
    pub rows: Vec<WorkLine>,
}

#[derive(Template)]
#[template(path = "console/supervisor.html")]
struct SupervisorPage {
    c: ConsoleChrome,
    registry: String,
    offices: Vec<Opt>,
    tables: Vec<WorkTable>,
    notice: Option<String>,
    errors: Vec<ErrorItem>,
    may_close: bool,
    close_offices: Vec<Opt>,
    csrf: String,
    displaced: Vec<DisplacedLine>,
    /// Fees the schedule lacks, said in a sentence each.
    fees_missing: Vec<String>,
}

/// A booking a closure left without a seat, as supervisors see it.
pub struct DisplacedLine {
    pub code: String,
    pub office: String,
    pub lost: String,
    pub since: String,
    pub seats: u32,
}

pub struct ReconLine {
    pub reference: String,
    pub href: String,
    pub office: String,
    pub created: String,
    pub amount: String,
    pub status: String,
    pub paid: String,
    pub refunded: String,
    pub waived: String,
}

pub struct TotalLine {
    pub currency: String,
    pub references: i64,
    pub expected: String,
    pub paid: String,
    pub refunded: String,
    pub waived: String,
}

#[derive(Template)]
#[template(path = "console/reconciliation.html")]
struct ReconciliationPage {
    c: ConsoleChrome,
    error: Option<String>,
    offices: Vec<Opt>,
    from: String,
    to: String,
    csv_href: String,
    rows: Vec<ReconLine>,
    totals: Vec<TotalLine>,
    truncated: bool,
}

pub struct StockLine {
    pub booklet_type: String,
    pub state: String,
    pub count: u64,
}

pub struct StockTable {
    pub id: String,
    pub caption: String,
    pub rows: Vec<StockLine>,
}

pub struct ForecastLine {
    pub booklet_type: String,
    pub in_stock: u64,
    pub issued: u64,
    pub days_left: String,
    pub low: bool,
}

#[derive(Template)]
#[template(path = "console/stock.html")]
struct StockPage {
    c: ConsoleChrome,
    window_days: u32,
    warnings: Vec<String>,
    forecasts: Vec<ForecastLine>,
    tables: Vec<StockTable>,
}

pub struct CountLine {
    pub vendor: String,
    pub state: String,
    pub count: u64,
}

pub struct VendorLine {
    pub id: String,
    pub state: String,
    pub share: i64,
    pub site: String,
    pub passport_types: String,
    pub offices: String,
    /// The switch form's action, for those who may use it.
    pub action: Option<String>,
    pub to_state: &'static str,
    pub switch_label: String,
}

pub struct ProductionLine {
    pub order_id: String,
    pub application_id: String,
    pub href: String,
    pub office: String,
    pub vendor: String,
    pub state: String,
    pub passport_number: String,
    pub booklet_serial: String,
    pub sends: i64,
    pub failures: i64,
    pub last_error: String,
    pub tracking: String,
    /// The re-send form's action, on dead orders for those who may.
    pub resend: Option<String>,
}

#[derive(Template)]
#[template(path = "console/production.html")]
struct ProductionPage {
    c: ConsoleChrome,
    notice: Option<String>,
    errors: Vec<ErrorItem>,
    counts: Vec<CountLine>,
    vendors: Vec<VendorLine>,
    states: Vec<Opt>,
    state_label: String,
    truncated: bool,
    orders: Vec<ProductionLine>,
    may_switch: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    c: ConsoleChrome,
    intact: Option<bool>,
    verdict: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four() {
        assert_eq!(mask("1020304050"), "••••••4050");
        assert_eq!(mask("123"), "123");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn field_ids_are_plain() {
        assert_eq!(
            field_id("capture", "guardians[0].document_number"),
            "capture-guardians-0--document_number"
        );
        assert_eq!(
            field_id("capture", "fingerprint.device_id"),
            "capture-fingerprint-device_id"
        );
    }

    #[test]
    fn notices_take_only_plain_text() {
        assert_eq!(
            plain(&Some("C-001,C-002".into())),
            Some("C-001,C-002".into())
        );
        assert_eq!(plain(&Some("<script>".into())), None);
        assert_eq!(plain(&Some("x".repeat(100))), None);
    }

    #[test]
    fn production_forms_come_back_to_the_production_page() {
        let back = |path: &str| page_of(&path.parse().unwrap(), Lang::En).to_string();
        assert_eq!(
            back("/console/production/vendors/vendor-a/state"),
            "/console/production?lang=en"
        );
        assert_eq!(
            back("/console/production/orders/x-o1/resend"),
            "/console/production?lang=en"
        );
        assert_eq!(
            back("/console/applications/a1/receive"),
            "/console/applications/a1?lang=en"
        );
        assert_eq!(back("/console/production"), "/console/production");
    }

    #[test]
    fn low_stock_is_under_thirty_days() {
        use pasaporte_core::production::BookletType;
        let f = |days_left| pasaporte_store::StockForecast {
            booklet_type: BookletType::Pages32,
            in_stock: 10,
            issued: 10,
            window_days: 30,
            days_left,
        };
        assert!(stock_is_low(&f(Some(29.9))));
        assert!(stock_is_low(&f(Some(0.0))));
        assert!(!stock_is_low(&f(Some(30.0))));
        assert!(!stock_is_low(&f(None)), "nothing issued: no rate");
    }

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(csv_cell("abc"), "abc");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("a\"b"), "\"a\"\"b\"");
    }
}
