//! Citizen pages (server-rendered, Spanish by default, usable without JavaScript).
//!
//! Layout: handlers first (choose an office, the calendar, the booking form,
//! the manage pages), then the view models the templates in
//! `crates/server/templates/` render, then small helpers (links that carry the
//! language, the cross-site check, the page error type).
//!
//! Every link and form carries `lang` so a citizen who chose English keeps it.
//! Every POST refuses cross-site requests (Sec-Fetch-Site, Origin vs Host); the
//! forms themselves carry no session, so this check is the CSRF defence.
//! Personal data never goes into a URL: forms POST it, and the only secrets in
//! URLs are the booking code and its manage token, which are made for that.

use super::{AppState, ReqLang};
use crate::booking::{self, AvailabilityError, BookError, DayNote, DayView, ManageError};
use crate::capacity::{self, CapacityError};
use crate::i18n::{self, Lang};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use pasaporte_core::FieldErrors;
use pasaporte_core::booking::{APPLICANTS_MAX, ApplicantInput, BookingInput, parse_start};
use pasaporte_core::calendar::{self, ClosedReason, hhmm, rfc3339_local};
use pasaporte_core::jiff::civil::Date;
use pasaporte_core::jiff::{Span, Timestamp};
use pasaporte_core::office::{Office, OfficeKind};
use pasaporte_core::person::DocumentType;
use serde::Deserialize;
use std::collections::BTreeMap;
use tower_http::set_header::SetResponseHeaderLayer;

mod ballot;

/// Days one calendar page shows: a week fits a phone screen when scrolled.
const CALENDAR_DAYS: u32 = 7;
/// Fields one form may post: five people of five fields, contact and hidden
/// fields, with room to spare. More is not a browser talking to us.
const FORM_FIELDS_MAX: usize = 64;
/// Earliest-slot results shown on the home page.
const EARLIEST_SHOWN_MAX: usize = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/primeras", get(earliest))
        .route("/capacidad", get(capacity_page))
        .route("/oficinas/{code}", get(calendar_page))
        .route(
            "/oficinas/{code}/reservar",
            get(book_form).post(book_submit),
        )
        .route("/citas/{code}", get(manage))
        .route("/citas/{code}/cita.ics", get(manage_ics))
        .route("/citas/{code}/cancelar", axum::routing::post(cancel_submit))
        .route(
            "/citas/{code}/cambiar",
            get(change_page).post(change_submit),
        )
        .merge(ballot::routes())
        .fallback(not_found)
        // Pages show live availability and, on the manage pages, personal data:
        // neither belongs in a cache.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

// ---------------------------------------------------------------------------
// Home: choose an office, or find the earliest free time in a city.

#[derive(Deserialize)]
struct EarliestQuery {
    ciudad: Option<String>,
    personas: Option<String>,
}

async fn home(State(app): State<AppState>, ReqLang(lang): ReqLang) -> Result<Response, PageError> {
    let page = home_page(&app, lang, "", 1, None, "/", &[]);
    render(StatusCode::OK, lang, &page)
}

async fn earliest(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Query(q): Query<EarliestQuery>,
) -> Result<Response, PageError> {
    let city = q.ciudad.as_deref().map(str::trim).unwrap_or("");
    let seats = q
        .personas
        .as_deref()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| (1..=APPLICANTS_MAX as u32).contains(n))
        .unwrap_or(1);
    let found = booking::earliest(
        &app,
        Some(city).filter(|c| !c.is_empty()),
        None,
        seats,
        EARLIEST_SHOWN_MAX,
        Timestamp::now(),
    )
    .await
    .map_err(|e| PageError::unavailable(lang, &e))?;
    let rows = found
        .into_iter()
        .map(|(e, s)| {
            let o = &e.office;
            let start = rfc3339_local(o, s.start);
            EarliestRow {
                office_name: o.name.clone(),
                city: o.city.clone(),
                when: i18n::local_when(lang, o, s.start),
                seats_text: seats_text(lang, s.remaining),
                book_href: href(
                    &format!("/oficinas/{}/reservar", enc(&o.code)),
                    &[("inicio", &start)],
                    lang,
                ),
                calendar_href: href(&format!("/oficinas/{}", enc(&o.code)), &[], lang),
            }
        })
        .collect();
    let seats_s = seats.to_string();
    let page = home_page(
        &app,
        lang,
        city,
        seats,
        Some(rows),
        "/primeras",
        &[("ciudad", city), ("personas", &seats_s)],
    );
    render(StatusCode::OK, lang, &page)
}

fn home_page(
    app: &AppState,
    lang: Lang,
    city: &str,
    seats: u32,
    results: Option<Vec<EarliestRow>>,
    path: &str,
    params: &[(&str, &str)],
) -> HomePage {
    let offices = app.offices();
    let group = |kind: OfficeKind, heading: &str| OfficeGroup {
        heading: heading.to_string(),
        offices: offices
            .values()
            .filter(|e| e.office.kind == kind)
            .map(|e| OfficeLink {
                name: e.office.name.clone(),
                place: office_place(&e.office),
                href: href(&format!("/oficinas/{}", enc(&e.office.code)), &[], lang),
            })
            .collect(),
    };
    let groups = vec![
        group(
            OfficeKind::Ministry,
            lang.pick(
                "Oficinas del Ministerio en Bogotá",
                "Ministry offices in Bogotá",
            ),
        ),
        group(
            OfficeKind::Department,
            lang.pick(
                "Oficinas de las gobernaciones",
                "Departmental government offices",
            ),
        ),
        group(
            OfficeKind::Consulate,
            lang.pick("Consulados en el exterior", "Consulates abroad"),
        ),
    ]
    .into_iter()
    .filter(|g| !g.offices.is_empty())
    .collect();
    let mut cities: Vec<String> = offices.values().map(|e| e.office.city.clone()).collect();
    cities.sort();
    cities.dedup();
    let mut city_options = vec![Opt {
        value: String::new(),
        label: lang.pick("Todas las ciudades", "All cities").into(),
        selected: city.is_empty(),
    }];
    city_options.extend(cities.into_iter().map(|c| Opt {
        selected: c.eq_ignore_ascii_case(city),
        label: c.clone(),
        value: c,
    }));
    let seat_options = (1..=APPLICANTS_MAX as u32)
        .map(|n| Opt {
            value: n.to_string(),
            label: n.to_string(),
            selected: n == seats,
        })
        .collect();
    HomePage {
        c: Chrome::new(
            lang,
            lang.pick("Citas para pasaporte", "Passport appointments"),
            path,
            params,
        ),
        groups,
        city_options,
        seat_options,
        results,
    }
}

fn office_place(o: &Office) -> String {
    match o.kind {
        OfficeKind::Consulate => format!("{} ({})", o.city, o.country),
        OfficeKind::Ministry | OfficeKind::Department => o.city.clone(),
    }
}

// ---------------------------------------------------------------------------
// An office's calendar.

#[derive(Deserialize)]
struct CalendarQuery {
    desde: Option<String>,
}

async fn calendar_page(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Query(q): Query<CalendarQuery>,
) -> Result<Response, PageError> {
    let now = Timestamp::now();
    let (entry, days, errors) = load_days(&app, &code, q.desde.as_deref(), now, lang).await?;
    let o = &entry.office;
    let path = format!("/oficinas/{}", enc(&o.code));
    let from = days.first().map(|d| d.date);
    let today = calendar::local_today(o, now);
    let week = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
    let desde = week(from);
    let book_path = format!("/oficinas/{}/reservar", enc(&o.code));
    let rows = days
        .iter()
        .map(|d| {
            day_row(lang, o, d, |s| {
                let link = (s.remaining > 0)
                    .then(|| href(&book_path, &[("inicio", &rfc3339_local(o, s.start))], lang));
                (link, None)
            })
        })
        .collect();
    let page = CalendarPage {
        c: Chrome::new(lang, &o.name, &path, &[("desde", &desde)]),
        office_name: o.name.clone(),
        place: office_place(o),
        tz: o.time_zone_name().to_string(),
        days: rows,
        nav: week_nav(&path, &[], from, today, lang),
        desde,
        action: path.clone(),
        home_href: href("/", &[], lang),
        errors,
    };
    render(StatusCode::OK, lang, &page)
}

/// An office, its days on one calendar page, and what was wrong with the query.
type Days = (
    std::sync::Arc<crate::app::OfficeEntry>,
    Vec<DayView>,
    Vec<ErrView>,
);

/// The office's days from `desde`, or from today with an error when `desde`
/// does not parse (the page still shows a calendar to choose from).
async fn load_days(
    app: &AppState,
    code: &str,
    desde: Option<&str>,
    now: Timestamp,
    lang: Lang,
) -> Result<Days, PageError> {
    let days = Some(CALENDAR_DAYS);
    match booking::office_days(app, code, desde, days, now).await {
        Ok((e, d)) => Ok((e, d, Vec::new())),
        Err(AvailabilityError::Invalid(errs)) => {
            let (e, d) = booking::office_days(app, code, None, days, now)
                .await
                .map_err(|e| availability_error(lang, e))?;
            let errors = errs
                .0
                .iter()
                .map(|f| ErrView {
                    href: "#desde".into(),
                    message: lang.pick(f.es, f.en).into(),
                })
                .collect();
            Ok((e, d, errors))
        }
        Err(e) => Err(availability_error(lang, e)),
    }
}

fn availability_error(lang: Lang, e: AvailabilityError) -> PageError {
    match e {
        AvailabilityError::UnknownOffice => PageError::NoOffice(lang),
        AvailabilityError::Invalid(errs) => PageError::internal(lang, &errs),
        AvailabilityError::Store(e) => PageError::unavailable(lang, &e),
    }
}

fn week_nav(
    path: &str,
    params: &[(&str, &str)],
    from: Option<Date>,
    today: Date,
    lang: Lang,
) -> WeekNav {
    let shift = |d: Date, n: i64| d.checked_add(Span::new().days(n)).ok();
    let link = |d: Date| {
        let mut p = params.to_vec();
        let s = d.to_string();
        p.push(("desde", &s));
        href(path, &p, lang)
    };
    let prev = from
        .filter(|f| *f > today)
        .and_then(|f| shift(f, -i64::from(CALENDAR_DAYS)))
        .map(|p| link(p.max(today)));
    let next = from
        .and_then(|f| shift(f, i64::from(CALENDAR_DAYS)))
        .map(link);
    WeekNav { prev, next }
}

fn day_row(
    lang: Lang,
    o: &Office,
    d: &DayView,
    mut link: impl FnMut(&booking::SlotView) -> (Option<String>, Option<String>),
) -> DayRow {
    let note = match &d.note {
        Some(n) => Some(day_note(lang, n)),
        None if d.slots.is_empty() => Some(
            lang.pick(
                "No quedan horas este día.",
                "No times are left on this day.",
            )
            .to_string(),
        ),
        None => None,
    };
    DayRow {
        heading: capitalize(&i18n::long_date(lang, d.date)),
        note,
        slots: d
            .slots
            .iter()
            .map(|s| {
                let (href, why_not) = link(s);
                SlotCell {
                    time: hhmm(s.start.to_zoned_datetime(o.time_zone.clone()).time()),
                    seats_text: why_not.unwrap_or_else(|| seats_text(lang, s.remaining)),
                    href,
                    start: rfc3339_local(o, s.start),
                }
            })
            .collect(),
    }
}

fn day_note(lang: Lang, n: &DayNote) -> String {
    match n {
        DayNote::Closed(ClosedReason::NoHours) => lang
            .pick(
                "No atiende este día de la semana.",
                "Closed on this day of the week.",
            )
            .into(),
        DayNote::Closed(ClosedReason::Holiday(name)) => format!(
            "{}: {name}. {}",
            lang.pick("Festivo", "Public holiday"),
            lang.pick("Oficina cerrada.", "Office closed.")
        ),
        DayNote::Closed(ClosedReason::HostHoliday(name)) => format!(
            "{}: {name}. {}",
            lang.pick("Festivo local", "Local public holiday"),
            lang.pick("Oficina cerrada.", "Office closed.")
        ),
        DayNote::Closed(ClosedReason::Closure(reason)) => format!(
            "{}: {reason}",
            lang.pick("Oficina cerrada", "Office closed")
        ),
        DayNote::BeyondHorizon => lang
            .pick("Aún no abierto para citas.", "Not open for booking yet.")
            .into(),
        DayNote::Past => lang.pick("Fecha pasada.", "This date has passed.").into(),
    }
}

fn seats_text(lang: Lang, n: u32) -> String {
    match (n, lang) {
        (0, _) => lang.pick("sin cupos", "no seats left").into(),
        (1, Lang::Es) => "1 cupo".into(),
        (1, Lang::En) => "1 seat".into(),
        (n, Lang::Es) => format!("{n} cupos"),
        (n, Lang::En) => format!("{n} seats"),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// The booking form.

#[derive(Deserialize)]
struct BookQuery {
    inicio: Option<String>,
}

/// What a form posted, field name to value (the last value wins).
struct FormValues(BTreeMap<String, String>);

impl FormValues {
    fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs.into_iter().take(FORM_FIELDS_MAX).collect())
    }
    fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }
    fn lang(&self, fallback: Lang) -> Lang {
        Lang::from_param(self.get("lang")).unwrap_or(fallback)
    }
    /// The people the form sent, and the form index of each, so errors land
    /// on the right fieldset even when a middle minor's was left blank.
    fn people(&self) -> (Vec<usize>, Vec<ApplicantInput>) {
        let mut indexes = Vec::new();
        let mut applicants = Vec::new();
        for i in 0..APPLICANTS_MAX {
            let v = |f: &str| self.get(&format!("a{i}_{f}")).to_string();
            let a = ApplicantInput {
                document_type: v("document_type"),
                document_number: v("document_number"),
                surnames: v("surnames"),
                given_names: v("given_names"),
                birth_date: v("birth_date"),
            };
            let blank = PERSON_FIELDS
                .iter()
                .all(|f| self.get(&format!("a{i}_{f}")).trim().is_empty());
            if i == 0 || !blank {
                indexes.push(i);
                applicants.push(a);
            }
        }
        (indexes, applicants)
    }
}

/// The applicant fields in form order: (field path name, form suffix).
const PERSON_FIELDS: [&str; 5] = [
    "document_type",
    "document_number",
    "surnames",
    "given_names",
    "birth_date",
];

async fn book_form(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Query(q): Query<BookQuery>,
) -> Result<Response, PageError> {
    let entry = app.office(&code).ok_or(PageError::NoOffice(lang))?;
    let inicio = q.inicio.unwrap_or_default();
    let mut page = book_page(&entry.office, lang, &inicio, &FormValues::new(Vec::new()))?;
    page.idem = random_token().map_err(|e| PageError::internal(lang, &e))?;
    let now = Timestamp::now();
    let slot_err = match parse_start(&inicio, "start") {
        Err(e) => Some(e),
        Ok(t) => calendar::find_slot(&entry.office, &entry.closures, t, now)
            .err()
            .map(|e| booking::slot_error(&e)),
    };
    if let Some(e) = slot_err {
        page.problem = Some(Problem {
            message: lang.pick(e.es, e.en).into(),
            link_href: page.calendar_href.clone(),
            link_text: lang.pick("Elegir una hora", "Choose a time").into(),
        });
        page.slot_ok = false;
        return render(StatusCode::UNPROCESSABLE_ENTITY, lang, &page);
    }
    render(StatusCode::OK, lang, &page)
}

async fn book_submit(
    State(app): State<AppState>,
    ReqLang(req_lang): ReqLang,
    Path(code): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = FormValues::new(pairs);
    let lang = form.lang(req_lang);
    reject_cross_site(&app, &headers, lang)?;
    let entry = app.office(&code).ok_or(PageError::NoOffice(lang))?;
    let inicio = form.get("inicio").to_string();
    let (indexes, applicants) = form.people();
    let phone = form.get("phone").trim();
    let input = BookingInput {
        start: inicio.clone(),
        applicants,
        email: form.get("email").to_string(),
        phone: (!phone.is_empty()).then(|| phone.to_string()),
    };
    let idem = form.get("idem");
    let key = (!idem.is_empty()).then_some(idem);
    // Priority access falls back to priority seats when the online ones are
    // full; anything but the two known values is no priority asked.
    let prioridad = form.get("prioridad").trim().to_string();
    let claim = match booking::PriorityReason::parse(&prioridad) {
        Some(r) => booking::SeatClaim::Priority(r),
        None => booking::SeatClaim::Online,
    };
    let result = booking::book_from(&app, &code, &input, key, &claim, lang, Timestamp::now()).await;
    let mut page = book_page(&entry.office, lang, &inicio, &form)?;
    page.prioridad = prioridad;
    page.idem = if idem.is_empty() {
        random_token().map_err(|e| PageError::internal(lang, &e))?
    } else {
        idem.to_string()
    };
    let again = |page: &mut BookPage, es: &str, en: &str| {
        page.problem = Some(Problem {
            message: lang.pick(es, en).into(),
            link_href: page.calendar_href.clone(),
            link_text: lang.pick("Elegir otra hora", "Choose another time").into(),
        });
    };
    let status = match result {
        Ok(b) => {
            let to = href(
                &format!("/citas/{}", enc(&b.code)),
                &[("clave", &b.manage_token)],
                lang,
            );
            return Ok(Redirect::to(&to).into_response());
        }
        Err(BookError::Invalid(errs)) => {
            page.set_errors(lang, &errs, &indexes);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(BookError::SlotFull) => {
            again(
                &mut page,
                "Esa hora se llenó mientras llenaba el formulario. Sus datos siguen aquí: elija otra hora y vuelva a enviarlos.",
                "That time filled up while you were filling in the form. Choose another time.",
            );
            StatusCode::CONFLICT
        }
        Err(BookError::AlreadyBooked) => {
            again(
                &mut page,
                "Una de las personas ya tiene una cita activa. Puede cambiarla o cancelarla con el enlace que recibió por correo antes de reservar otra.",
                "One of the people already has an active appointment. Change or cancel it with the link in your confirmation email before booking another.",
            );
            StatusCode::CONFLICT
        }
        Err(BookError::IdempotencyKeyReused) => {
            page.idem = random_token().map_err(|e| PageError::internal(lang, &e))?;
            again(
                &mut page,
                "Este formulario ya se envió con otros datos. Revise los datos y envíelo de nuevo.",
                "This form was already sent with other details. Check the details and send it again.",
            );
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(BookError::RateLimited(wait)) => {
            again(
                &mut page,
                "Hay demasiadas reservas seguidas para una de estas personas. Espere un rato y vuelva a intentarlo; sus datos siguen aquí.",
                "Too many bookings in a row for one of these people. Wait a while and try again; your details are still here.",
            );
            let mut resp = render(StatusCode::TOO_MANY_REQUESTS, lang, &page)?;
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(crate::limits::retry_after_secs(wait)),
            );
            return Ok(resp);
        }
        Err(BookError::UnknownOffice) => return Err(PageError::NoOffice(lang)),
        Err(BookError::Unavailable(m)) => return Err(PageError::unavailable(lang, &m)),
        Err(BookError::Internal(m)) => return Err(PageError::internal(lang, &m)),
    };
    render(status, lang, &page)
}

fn book_page(
    o: &Office,
    lang: Lang,
    inicio: &str,
    form: &FormValues,
) -> Result<BookPage, PageError> {
    let code = enc(&o.code);
    let path = format!("/oficinas/{code}/reservar");
    let start = parse_start(inicio, "start").ok();
    let calendar_href = href(
        &format!("/oficinas/{code}"),
        &start
            .map(|t| t.to_zoned_datetime(o.time_zone.clone()).date().to_string())
            .as_deref()
            .map(|d| vec![("desde", d)])
            .unwrap_or_default(),
        lang,
    );
    let (first, minors) = person_forms(lang, form)?;
    let contact = contact_inputs(lang, form);
    Ok(BookPage {
        c: Chrome::new(
            lang,
            lang.pick("Datos de la cita", "Appointment details"),
            &path,
            &[("inicio", inicio)],
        ),
        office_name: o.name.clone(),
        when: start
            .map(|t| i18n::local_when(lang, o, t))
            .unwrap_or_default(),
        inicio: inicio.to_string(),
        slot_ok: start.is_some(),
        action: path,
        calendar_href,
        idem: String::new(),
        errors: Vec::new(),
        problem: None,
        first,
        minors,
        contact,
        prioridad: String::new(),
    })
}

/// The form's fieldsets: the first person, then the minors.
fn person_forms(lang: Lang, form: &FormValues) -> Result<(PersonForm, Vec<PersonForm>), PageError> {
    let mut persons = (0..APPLICANTS_MAX).map(|i| person_form(lang, form, i));
    let first = persons
        .next()
        .ok_or_else(|| PageError::internal(lang, &"APPLICANTS_MAX is 0"))?;
    Ok((first, persons.collect()))
}

/// The email and phone fields.
fn contact_inputs(lang: Lang, form: &FormValues) -> Vec<Input> {
    vec![
        Input::text(
            "email",
            "email",
            lang.pick("Correo electrónico", "Email address"),
            form.get("email"),
        )
        .kind("email")
        .autocomplete("email")
        .required(lang)
        .hint(lang.pick(
            "Le enviaremos la confirmación y el enlace para cambiar o cancelar la cita.",
            "We will send the confirmation and the link to change or cancel the appointment.",
        )),
        Input::text(
            "phone",
            "phone",
            lang.pick("Teléfono", "Phone"),
            form.get("phone"),
        )
        .kind("tel")
        .autocomplete("tel")
        .optional(lang)
        .hint(lang.pick(
            "Con indicativo si es del exterior, por ejemplo +57 300 123 4567.",
            "With the country code if abroad, for example +57 300 123 4567.",
        )),
    ]
}

fn person_form(lang: Lang, form: &FormValues, i: usize) -> PersonForm {
    let name = |f: &str| format!("a{i}_{f}");
    let id = |f: &str| format!("applicants-{i}-{f}");
    let first = i == 0;
    let ac = |token: &'static str| if first { token } else { "off" };
    let chosen = form.get(&name("document_type"));
    let mut options = vec![Opt {
        value: String::new(),
        label: lang
            .pick("Elija el documento", "Choose the document")
            .into(),
        selected: chosen.is_empty(),
    }];
    options.extend(DocumentType::ALL.into_iter().map(|t| Opt {
        value: t.as_str().into(),
        label: lang.pick(t.label_es(), t.label_en()).into(),
        selected: t.as_str() == chosen,
    }));
    let mark = |input: Input| {
        if first { input.required(lang) } else { input }
    };
    let fields = vec![
        mark(Input {
            options,
            ..Input::text(
                &id("document_type"),
                &name("document_type"),
                lang.pick("Tipo de documento", "Document type"),
                "",
            )
        }),
        mark(
            Input::text(
                &id("document_number"),
                &name("document_number"),
                lang.pick("Número de documento", "Document number"),
                form.get(&name("document_number")),
            )
            .autocomplete("off")
            .hint(lang.pick("Sin puntos ni espacios.", "Without dots or spaces.")),
        ),
        mark(
            Input::text(
                &id("surnames"),
                &name("surnames"),
                lang.pick("Apellidos", "Surnames"),
                form.get(&name("surnames")),
            )
            .autocomplete(ac("family-name")),
        ),
        mark(
            Input::text(
                &id("given_names"),
                &name("given_names"),
                lang.pick("Nombres", "Given names"),
                form.get(&name("given_names")),
            )
            .autocomplete(ac("given-name")),
        ),
        mark(
            Input::text(
                &id("birth_date"),
                &name("birth_date"),
                lang.pick("Fecha de nacimiento", "Date of birth"),
                form.get(&name("birth_date")),
            )
            .kind("date")
            .autocomplete(ac("bday"))
            .hint(lang.pick(
                "Por ejemplo 1990-07-20 (año-mes-día).",
                "For example 1990-07-20 (year-month-day).",
            )),
        ),
    ];
    let filled = PERSON_FIELDS
        .iter()
        .any(|f| !form.get(&name(f)).trim().is_empty());
    PersonForm {
        legend: if first {
            lang.pick("Persona que solicita", "Applicant").into()
        } else {
            format!("{} {i}", lang.pick("Menor", "Minor"))
        },
        summary: format!(
            "{} ({} {i} {} {})",
            lang.pick("Agregar un menor", "Add a minor"),
            lang.pick("menor", "minor"),
            lang.pick("de", "of"),
            APPLICANTS_MAX - 1
        ),
        open: filled,
        fields,
    }
}

impl BookPage {
    fn set_errors(&mut self, lang: Lang, errs: &FieldErrors, indexes: &[usize]) {
        let mut people = PeopleForm {
            first: &mut self.first,
            minors: &mut self.minors,
            contact: &mut self.contact,
            errors: &mut self.errors,
        };
        people.set_errors(lang, errs, indexes);
    }
}

/// The people and contact fields of a form (a booking or a ballot
/// request), to put each field error next to its field and in the summary.
struct PeopleForm<'a> {
    first: &'a mut PersonForm,
    minors: &'a mut Vec<PersonForm>,
    contact: &'a mut Vec<Input>,
    errors: &'a mut Vec<ErrView>,
}

impl PeopleForm<'_> {
    fn set_errors(&mut self, lang: Lang, errs: &FieldErrors, indexes: &[usize]) {
        for e in &errs.0 {
            let id = field_id(&e.field, indexes);
            let message = lang.pick(e.es, e.en).to_string();
            // The summary names the field (and the minor) the message is about.
            let mut named = message.clone();
            let persons = std::iter::once(&mut *self.first).chain(self.minors.iter_mut());
            for (n, p) in persons.enumerate() {
                if let Some(f) = p.fields.iter_mut().find(|f| f.id == id) {
                    p.open = true;
                    named = if n == 0 {
                        format!("{}: {message}", f.label)
                    } else {
                        format!("{}, {}: {message}", p.legend, f.label)
                    };
                    if f.error.is_none() {
                        f.set_error(&message);
                    }
                }
            }
            if let Some(f) = self.contact.iter_mut().find(|f| f.id == id) {
                named = format!("{}: {message}", f.label);
                if f.error.is_none() {
                    f.set_error(&message);
                }
            }
            self.errors.push(ErrView {
                href: format!("#{id}"),
                message: named,
            });
        }
    }
}

/// The element id of a field path: `applicants[1].birth_date` becomes
/// `applicants-3-birth_date` when the second person sent was the form's
/// fourth fieldset (`indexes[1] == 3`).
fn field_id(path: &str, indexes: &[usize]) -> String {
    if let Some(rest) = path.strip_prefix("applicants[")
        && let Some((n, field)) = rest.split_once("].")
    {
        let i = n
            .parse::<usize>()
            .ok()
            .and_then(|k| indexes.get(k).copied())
            .unwrap_or(0);
        return format!("applicants-{i}-{field}");
    }
    match path {
        "applicants" => "applicants-0-document_type".into(),
        "email" | "phone" | "priority" => path.into(),
        _ => "slot".into(),
    }
}

// ---------------------------------------------------------------------------
// Managing a booking: view, download, cancel, change time.

#[derive(Deserialize)]
struct ManageQuery {
    clave: Option<String>,
    hecho: Option<String>,
    desde: Option<String>,
}

fn manage_path(code: &str) -> String {
    format!("/citas/{}", enc(code))
}

async fn manage(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Query(q): Query<ManageQuery>,
) -> Result<Response, PageError> {
    let token = q.clave.unwrap_or_default();
    let b = booking::view(&app, &code, &token)
        .await
        .map_err(|e| manage_error(lang, e))?;
    let done = match q.hecho.as_deref() {
        Some("cancelada") => Some(lang.pick(
            "Su cita fue cancelada y los cupos quedaron libres para otras personas.",
            "Your appointment was cancelled and its seats are free for others.",
        )),
        Some("cambiada") => Some(lang.pick(
            "Su cita cambió de hora. Le enviamos un correo con la nueva hora.",
            "Your appointment has a new time. We sent you an email with it.",
        )),
        Some("confirmada") => Some(lang.pick(
            "Gracias: su asistencia quedó confirmada y el cupo se mantiene.",
            "Thank you: your attendance is confirmed and the seat is kept.",
        )),
        _ => None,
    };
    let page = manage_page(lang, &b, done.map(str::to_string), Vec::new());
    render(StatusCode::OK, lang, &page)
}

fn manage_page(
    lang: Lang,
    b: &booking::BookingView,
    done: Option<String>,
    errors: Vec<ErrView>,
) -> ManagePage {
    let o = &b.office.office;
    let path = manage_path(&b.code);
    let token = b.manage_token.as_str();
    ManagePage {
        c: Chrome::new(
            lang,
            lang.pick("Su cita", "Your appointment"),
            &path,
            &[("clave", token)],
        ),
        code: b.code.clone(),
        office_name: o.name.clone(),
        place: office_place(o),
        when: i18n::local_when(lang, o, b.start),
        active: b.active,
        status_text: if b.status == "displaced" {
            lang.pick(
                "Sin hora: la oficina cerró ese día y no había otro cupo cercano. Elija una nueva hora o cancele; su lugar se mantiene mientras tanto.",
                "Without a time: the office closed that day and there was no nearby seat. Choose a new time or cancel; your place is kept meanwhile.",
            )
        } else if b.active {
            lang.pick("Activa", "Active")
        } else {
            lang.pick("Cancelada", "Cancelled")
        }
        .into(),
        people: b
            .applicants
            .iter()
            .map(|a| PersonRow {
                name: format!("{} {}", a.given_names, a.surnames),
                document: format!(
                    "{} {}",
                    lang.pick(a.document_type.label_es(), a.document_type.label_en()),
                    a.document_number_masked
                ),
                birth_date: a.birth_date.clone(),
            })
            .collect(),
        email: b.email.clone(),
        phone: b.phone.clone().unwrap_or_default(),
        ics_href: href(&format!("{path}/cita.ics"), &[("clave", token)], lang),
        change_href: href(&format!("{path}/cambiar"), &[("clave", token)], lang),
        cancel_action: format!("{path}/cancelar"),
        book_href: href(&format!("/oficinas/{}", enc(&o.code)), &[], lang),
        clave: token.to_string(),
        done,
        errors,
    }
}

fn manage_error(lang: Lang, e: ManageError) -> PageError {
    match e {
        ManageError::Unavailable(m) => PageError::unavailable(lang, &m),
        ManageError::Internal(m) => PageError::internal(lang, &m),
        // The pages handle the other answers where they can happen; reaching
        // here means the booking is not the caller's to see.
        ManageError::NotFound
        | ManageError::NotActive
        | ManageError::Invalid(_)
        | ManageError::SlotFull
        | ManageError::SameSlot => PageError::NoBooking(lang),
    }
}

async fn manage_ics(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Query(q): Query<ManageQuery>,
) -> Result<Response, PageError> {
    let token = q.clave.unwrap_or_default();
    let b = booking::view(&app, &code, &token)
        .await
        .map_err(|e| manage_error(lang, e))?;
    Ok(super::api::calendar_response(lang, &b))
}

async fn cancel_submit(
    State(app): State<AppState>,
    ReqLang(req_lang): ReqLang,
    Path(code): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = FormValues::new(pairs);
    let lang = form.lang(req_lang);
    reject_cross_site(&app, &headers, lang)?;
    let token = form.get("clave");
    let b = booking::view(&app, &code, token)
        .await
        .map_err(|e| manage_error(lang, e))?;
    let back = |hecho: Option<&str>| {
        let mut p = vec![("clave", token)];
        p.extend(hecho.map(|h| ("hecho", h)));
        Redirect::to(&href(&manage_path(&b.code), &p, lang)).into_response()
    };
    if !b.active {
        return Ok(back(None));
    }
    if form.get("confirmar") != "si" {
        let errors = vec![ErrView {
            href: "#confirmar".into(),
            message: lang
                .pick(
                    "Marque «Sí, quiero cancelar» para confirmar la cancelación.",
                    "Tick \"Yes, I want to cancel\" to confirm the cancellation.",
                )
                .into(),
        }];
        let page = manage_page(lang, &b, None, errors);
        return render(StatusCode::UNPROCESSABLE_ENTITY, lang, &page);
    }
    match booking::cancel(&app, &code, token, lang, Timestamp::now()).await {
        Ok(_) => Ok(back(Some("cancelada"))),
        // Cancelled meanwhile (a double submit): the page shows the state.
        Err(ManageError::NotActive) => Ok(back(None)),
        Err(e) => Err(manage_error(lang, e)),
    }
}

async fn change_page(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Query(q): Query<ManageQuery>,
) -> Result<Response, PageError> {
    let token = q.clave.unwrap_or_default();
    let b = booking::view(&app, &code, &token)
        .await
        .map_err(|e| manage_error(lang, e))?;
    let page = change_page_model(&app, lang, &b, q.desde.as_deref(), None).await?;
    render(StatusCode::OK, lang, &page)
}

async fn change_page_model(
    app: &AppState,
    lang: Lang,
    b: &booking::BookingView,
    desde: Option<&str>,
    problem: Option<String>,
) -> Result<ChangePage, PageError> {
    let now = Timestamp::now();
    let (entry, days, errors) = load_days(app, &b.office.office.code, desde, now, lang).await?;
    let o = &entry.office;
    let path = format!("{}/cambiar", manage_path(&b.code));
    let token = b.manage_token.as_str();
    let from = days.first().map(|d| d.date);
    let desde = from.map(|d| d.to_string()).unwrap_or_default();
    let current = b.start;
    let rows = days
        .iter()
        .map(|d| {
            day_row(lang, o, d, |s| {
                if s.start == current {
                    let now = lang.pick("su hora actual", "your current time");
                    (None, Some(now.to_string()))
                } else if s.remaining == 0 {
                    (None, None)
                } else if s.remaining < b.seats {
                    let few = format!(
                        "{} ({})",
                        seats_text(lang, s.remaining),
                        lang.pick("no alcanzan", "not enough")
                    );
                    (None, Some(few))
                } else {
                    (Some(String::new()), None)
                }
            })
        })
        .collect();
    Ok(ChangePage {
        c: Chrome::new(
            lang,
            lang.pick("Cambiar la hora", "Change the time"),
            &path,
            &[("clave", token), ("desde", &desde)],
        ),
        code: b.code.clone(),
        office_name: o.name.clone(),
        tz: o.time_zone_name().into(),
        when: i18n::local_when(lang, o, b.start),
        active: b.active,
        seats: b.seats,
        days: rows,
        nav: week_nav(
            &path,
            &[("clave", token)],
            from,
            calendar::local_today(o, now),
            lang,
        ),
        action: path.clone(),
        clave: token.to_string(),
        desde,
        back_href: href(&manage_path(&b.code), &[("clave", token)], lang),
        problem,
        errors,
    })
}

async fn change_submit(
    State(app): State<AppState>,
    ReqLang(req_lang): ReqLang,
    Path(code): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = FormValues::new(pairs);
    let lang = form.lang(req_lang);
    reject_cross_site(&app, &headers, lang)?;
    let token = form.get("clave");
    let inicio = form.get("inicio");
    let problem = match booking::reschedule(&app, &code, token, inicio, lang, Timestamp::now()).await
    {
        Ok(b) => {
            let to = href(
                &manage_path(&b.code),
                &[("clave", token), ("hecho", "cambiada")],
                lang,
            );
            return Ok(Redirect::to(&to).into_response());
        }
        Err(ManageError::SlotFull) => lang.pick(
            "Esa hora se llenó hace un momento; su cita sigue en la hora anterior. Elija otra.",
            "That time has just filled up; your appointment keeps its previous time. Choose another.",
        ),
        Err(ManageError::SameSlot) => lang.pick(
            "Su cita ya está a esa hora. Elija otra hora o vuelva a su cita.",
            "Your appointment is already at that time. Choose another time or go back.",
        ),
        Err(ManageError::NotActive) => lang.pick(
            "Esta cita fue cancelada; no se puede cambiar. Reserve una nueva.",
            "This appointment was cancelled and cannot be changed. Book a new one.",
        ),
        Err(ManageError::Invalid(errs)) => errs
            .0
            .first()
            .map(|e| lang.pick(e.es, e.en))
            .unwrap_or_else(|| lang.pick("Elija una hora de la lista.", "Choose a time from the list.")),
        Err(e) => return Err(manage_error(lang, e)),
    };
    let b = booking::view(&app, &code, token)
        .await
        .map_err(|e| manage_error(lang, e))?;
    let desde = parse_start(inicio, "start").ok().map(|t| {
        t.to_zoned_datetime(b.office.office.time_zone.clone())
            .date()
            .to_string()
    });
    let page = change_page_model(&app, lang, &b, desde.as_deref(), Some(problem.into())).await?;
    render(StatusCode::CONFLICT, lang, &page)
}

// ---------------------------------------------------------------------------
// Published capacity: seats per office and day, and why some days offer fewer.

#[derive(Deserialize)]
struct CapacityPageQuery {
    desde: Option<String>,
    dias: Option<String>,
    oficina: Option<String>,
}

async fn capacity_page(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Query(q): Query<CapacityPageQuery>,
) -> Result<Response, PageError> {
    let now = Timestamp::now();
    let office = q
        .oficina
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let desde = q.desde.as_deref().map(str::trim).unwrap_or("");
    let dias = q.dias.as_deref().map(str::trim).unwrap_or("");
    // Not a number reads as 0, which the use case refuses with its message.
    let days = Some(dias)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let (cap, errors) = match capacity::capacity(&app, office, Some(desde), days, now).await {
        Ok(c) => (c, Vec::new()),
        Err(CapacityError::Invalid(errs)) => {
            // The page still shows the default range to choose from.
            let c = capacity::capacity(&app, office, None, None, now)
                .await
                .map_err(|e| capacity_page_error(lang, e))?;
            let errors = errs
                .0
                .iter()
                .map(|f| ErrView {
                    href: if f.field == "from" { "#desde" } else { "#dias" }.into(),
                    message: lang.pick(f.es, f.en).into(),
                })
                .collect();
            (c, errors)
        }
        Err(e) => return Err(capacity_page_error(lang, e)),
    };
    let mut api_params = Vec::new();
    if let Some(o) = office {
        api_params.push(format!("office={}", enc(o)));
    }
    if errors.is_empty() {
        if !desde.is_empty() {
            api_params.push(format!("from={}", enc(desde)));
        }
        if !dias.is_empty() {
            api_params.push(format!("days={}", enc(dias)));
        }
    }
    let api_query = if api_params.is_empty() {
        String::new()
    } else {
        format!("?{}", api_params.join("&"))
    };
    let mut office_options = vec![Opt {
        value: String::new(),
        label: lang.pick("Todas las oficinas", "All offices").into(),
        selected: office.is_none(),
    }];
    office_options.extend(app.offices().values().map(|e| Opt {
        value: e.office.code.clone(),
        label: format!("{} ({})", e.office.name, office_place(&e.office)),
        selected: office == Some(e.office.code.as_str()),
    }));
    let offices = cap
        .offices
        .iter()
        .map(|oc| {
            let o = &oc.entry.office;
            CapacityOfficeView {
                id: format!("of-{}", enc(&o.code)),
                name: o.name.clone(),
                place: office_place(o),
                usual: format!(
                    "{}: {}",
                    lang.pick("Día normal de la oficina", "The office's usual day"),
                    seats_text(lang, oc.usual_day_seats)
                ),
                policy: policy_text(lang, &oc.entry.policy),
                caption: format!(
                    "{} — {}",
                    o.name,
                    lang.pick(
                        "cupos por día y motivos de los retenidos",
                        "seats per day and why any are withheld"
                    )
                ),
                rows: oc
                    .days
                    .iter()
                    .map(|d| CapacityRow {
                        date: capitalize(&i18n::long_date(lang, d.date)),
                        iso: d.date.to_string(),
                        offered: d.offered,
                        booked: d.booked,
                        free: d.free,
                        withheld: d.withheld,
                        demand: if d.by_ballot {
                            format!("{} ({})", d.demand, lang.pick("sorteo", "draw"))
                        } else {
                            "—".into()
                        },
                        reasons: d
                            .reasons
                            .iter()
                            .map(|r| r.text(lang))
                            .collect::<Vec<_>>()
                            .join("; "),
                        pools: d
                            .pools
                            .iter()
                            .filter(|p| p.offered > 0)
                            .map(|p| {
                                format!("{} {}/{}", pool_label(lang, p.pool), p.booked, p.offered)
                            })
                            .collect::<Vec<_>>()
                            .join(" · "),
                    })
                    .collect(),
            }
        })
        .collect();
    let stock = cap
        .stock
        .iter()
        .map(|s| StockRow {
            label: capitalize(&i18n::booklet_type_label(lang, s.booklet_type)),
            in_stock: s.in_stock,
            days_left: match s.days_left {
                Some(d) => format!("{d:.0}"),
                None => lang
                    .pick("sin emisiones recientes", "no recent issues")
                    .into(),
            },
        })
        .collect();
    let params = [
        ("oficina", office.unwrap_or("")),
        ("desde", desde),
        ("dias", dias),
    ];
    let page = CapacityPage {
        c: Chrome::new(
            lang,
            lang.pick("Capacidad publicada", "Published capacity"),
            "/capacidad",
            &params,
        ),
        errors,
        desde: cap.from.map(|d| d.to_string()).unwrap_or_default(),
        dias: cap.days.to_string(),
        office_options,
        json_href: format!("/api/v1/capacity{api_query}"),
        csv_href: format!("/api/v1/capacity.csv{api_query}"),
        pools_csv_href: format!("/api/v1/capacity/pools.csv{api_query}"),
        generated: cap.generated_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        offices,
        stock,
        rationing_applies: cap.rationing_applies,
        rule: lang
            .pick(capacity::RATIONING_RULE_ES, capacity::RATIONING_RULE_EN)
            .into(),
    };
    render(StatusCode::OK, lang, &page)
}

fn capacity_page_error(lang: Lang, e: CapacityError) -> PageError {
    match e {
        CapacityError::UnknownOffice => PageError::NoOffice(lang),
        CapacityError::Invalid(errs) => PageError::internal(lang, &errs),
        CapacityError::Store(e) => PageError::unavailable(lang, &e),
    }
}

// ---------------------------------------------------------------------------
// Not found, errors, cross-site refusals.

async fn not_found(ReqLang(lang): ReqLang, uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return super::ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            lang,
            "No existe esa ruta del API. Consulte /api/v1/openapi.json.",
            "There is no such API path. See /api/v1/openapi.json.",
        )
        .into_response();
    }
    PageError::NotFound(lang).into_response()
}

fn reject_cross_site(app: &AppState, headers: &HeaderMap, lang: Lang) -> Result<(), PageError> {
    if app.cross_site(headers) {
        tracing::warn!("cross-site form post refused");
        return Err(PageError::CrossSite(lang));
    }
    Ok(())
}

/// A page that is not the one asked for: each renders as a full page in the
/// citizen's language. 5xx pages say nothing of the cause (it goes to the log).
#[derive(Debug)]
enum PageError {
    NotFound(Lang),
    NoOffice(Lang),
    NoBooking(Lang),
    CrossSite(Lang),
    Unavailable(Lang),
    Internal(Lang),
}

impl PageError {
    fn internal(lang: Lang, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "page failed");
        PageError::Internal(lang)
    }
    fn unavailable(lang: Lang, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "storage unavailable");
        PageError::Unavailable(lang)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, lang, heading, body) = match self {
            PageError::NotFound(l) => (
                StatusCode::NOT_FOUND,
                l,
                l.pick("No encontramos esa página", "Page not found"),
                l.pick(
                    "Revise la dirección o vuelva al inicio.",
                    "Check the address or go back to the start.",
                ),
            ),
            PageError::NoOffice(l) => (
                StatusCode::NOT_FOUND,
                l,
                l.pick("No encontramos esa oficina", "Office not found"),
                l.pick(
                    "Elija una oficina de la lista.",
                    "Choose an office from the list.",
                ),
            ),
            PageError::NoBooking(l) => (
                StatusCode::NOT_FOUND,
                l,
                l.pick("No encontramos esa cita", "Appointment not found"),
                l.pick(
                    "Revise que el enlace esté completo: es el que recibió por correo al reservar. Si copió el enlace a mano, compruebe el código y la clave.",
                    "Check that the link is complete: it is the one in your confirmation email. If you copied it by hand, check the code and the key.",
                ),
            ),
            PageError::CrossSite(l) => (
                StatusCode::FORBIDDEN,
                l,
                l.pick("No pudimos aceptar el envío", "We could not accept this request"),
                l.pick(
                    "El formulario llegó desde otro sitio web. Por su seguridad solo aceptamos formularios enviados desde esta página. Vuelva al inicio y envíelo de nuevo.",
                    "The form came from another website. For your safety we only accept forms sent from this site. Go back to the start and send it again.",
                ),
            ),
            PageError::Unavailable(l) => (
                StatusCode::SERVICE_UNAVAILABLE,
                l,
                l.pick("El servicio no está disponible", "The service is unavailable"),
                l.pick(
                    "Intente de nuevo en unos minutos. Si estaba reservando, nada se perdió.",
                    "Try again in a few minutes. If you were booking, nothing was lost.",
                ),
            ),
            PageError::Internal(l) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                l,
                l.pick("Ocurrió un problema", "Something went wrong"),
                l.pick(
                    "Intente de nuevo en unos minutos.",
                    "Try again in a few minutes.",
                ),
            ),
        };
        let page = MessagePage {
            c: Chrome::new(lang, heading, "/", &[]),
            heading: heading.into(),
            body: body.into(),
            home_href: href("/", &[], lang),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                (status, body.to_string()).into_response()
            }
        }
    }
}

fn render(status: StatusCode, lang: Lang, page: &impl Template) -> Result<Response, PageError> {
    let html = page.render().map_err(|e| PageError::internal(lang, &e))?;
    Ok((status, Html(html)).into_response())
}

// ---------------------------------------------------------------------------
// Links and small helpers.

fn other(lang: Lang) -> Lang {
    match lang {
        Lang::Es => Lang::En,
        Lang::En => Lang::Es,
    }
}

/// Percent-encodes a query value or path segment (RFC 3986 unreserved kept).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A link within the site that keeps the language.
fn href(path: &str, params: &[(&str, &str)], lang: Lang) -> String {
    let mut s = String::from(path);
    let mut sep = '?';
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        s.push(sep);
        s.push_str(k);
        s.push('=');
        s.push_str(&enc(v));
        sep = '&';
    }
    s.push(sep);
    s.push_str("lang=");
    s.push_str(lang.code());
    s
}

/// A fresh random token for a form's Idempotency-Key.
fn random_token() -> Result<String, crate::crypto::CryptoError> {
    let b = crate::crypto::random_bytes::<16>()?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

// ---------------------------------------------------------------------------
// View models.

/// What every page shares: its language, title and the language switch.
struct Chrome {
    lang: Lang,
    title: String,
    switch_href: String,
    switch_label: &'static str,
    switch_lang: &'static str,
    home_href: String,
}

impl Chrome {
    fn new(lang: Lang, title: &str, path: &str, params: &[(&str, &str)]) -> Self {
        let to = other(lang);
        Self {
            lang,
            title: title.into(),
            switch_href: href(path, params, to),
            switch_label: to.pick("Español", "English"),
            switch_lang: to.code(),
            home_href: href("/", &[], lang),
        }
    }
}

struct ErrView {
    href: String,
    message: String,
}

struct Opt {
    value: String,
    label: String,
    selected: bool,
}

/// One form control with its label, hint and error.
struct Input {
    id: String,
    name: String,
    label: String,
    value: String,
    kind: &'static str,
    autocomplete: &'static str,
    required: bool,
    /// "(obligatorio)" / "(opcional)" after the label, or nothing.
    marker: &'static str,
    hint: Option<String>,
    error: Option<String>,
    /// A `<select>` when not empty.
    options: Vec<Opt>,
}

impl Input {
    fn text(id: &str, name: &str, label: &str, value: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            label: label.into(),
            value: value.into(),
            kind: "text",
            autocomplete: "off",
            required: false,
            marker: "",
            hint: None,
            error: None,
            options: Vec::new(),
        }
    }
    fn kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }
    fn autocomplete(mut self, token: &'static str) -> Self {
        self.autocomplete = token;
        self
    }
    fn required(mut self, lang: Lang) -> Self {
        self.required = true;
        self.marker = lang.pick("(obligatorio)", "(required)");
        self
    }
    fn optional(mut self, lang: Lang) -> Self {
        self.marker = lang.pick("(opcional)", "(optional)");
        self
    }
    fn hint(mut self, text: &str) -> Self {
        self.hint = Some(text.into());
        self
    }
    fn set_error(&mut self, message: &str) {
        self.error = Some(message.into());
    }
    /// The ids of the hint and the error, for `aria-describedby`.
    fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if self.error.is_some() {
            ids.push(format!("{}-error", self.id));
        }
        if self.hint.is_some() {
            ids.push(format!("{}-hint", self.id));
        }
        ids.join(" ")
    }
}

struct OfficeLink {
    name: String,
    place: String,
    href: String,
}

struct OfficeGroup {
    heading: String,
    offices: Vec<OfficeLink>,
}

struct EarliestRow {
    office_name: String,
    city: String,
    when: String,
    seats_text: String,
    book_href: String,
    calendar_href: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    c: Chrome,
    groups: Vec<OfficeGroup>,
    city_options: Vec<Opt>,
    seat_options: Vec<Opt>,
    results: Option<Vec<EarliestRow>>,
}

struct SlotCell {
    time: String,
    seats_text: String,
    /// Where choosing the slot leads (Some but empty on the change page, where
    /// choosing is a form); None when the slot cannot be chosen.
    href: Option<String>,
    start: String,
}

struct DayRow {
    heading: String,
    note: Option<String>,
    slots: Vec<SlotCell>,
}

struct WeekNav {
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarPage {
    c: Chrome,
    office_name: String,
    place: String,
    tz: String,
    days: Vec<DayRow>,
    nav: WeekNav,
    desde: String,
    action: String,
    home_href: String,
    errors: Vec<ErrView>,
}

struct PersonForm {
    legend: String,
    summary: String,
    open: bool,
    fields: Vec<Input>,
}

struct Problem {
    message: String,
    link_href: String,
    link_text: String,
}

#[derive(Template)]
#[template(path = "book.html")]
struct BookPage {
    c: Chrome,
    office_name: String,
    when: String,
    inicio: String,
    slot_ok: bool,
    action: String,
    calendar_href: String,
    idem: String,
    errors: Vec<ErrView>,
    problem: Option<Problem>,
    first: PersonForm,
    minors: Vec<PersonForm>,
    contact: Vec<Input>,
    /// Priority access asked for: ``, `disability` or `older`.
    prioridad: String,
}

struct PersonRow {
    name: String,
    document: String,
    birth_date: String,
}

impl CalendarPage {
    /// The manage token a date form must carry (none on the public calendar).
    fn clave_field(&self) -> Option<&str> {
        None
    }
}

impl ChangePage {
    fn clave_field(&self) -> Option<&str> {
        Some(&self.clave)
    }
}

#[derive(Template)]
#[template(path = "manage.html")]
struct ManagePage {
    c: Chrome,
    code: String,
    office_name: String,
    place: String,
    when: String,
    active: bool,
    status_text: String,
    people: Vec<PersonRow>,
    email: String,
    phone: String,
    ics_href: String,
    change_href: String,
    cancel_action: String,
    book_href: String,
    clave: String,
    done: Option<String>,
    errors: Vec<ErrView>,
}

#[derive(Template)]
#[template(path = "change.html")]
struct ChangePage {
    c: Chrome,
    code: String,
    office_name: String,
    tz: String,
    when: String,
    active: bool,
    seats: u32,
    days: Vec<DayRow>,
    nav: WeekNav,
    action: String,
    clave: String,
    desde: String,
    back_href: String,
    problem: Option<String>,
    errors: Vec<ErrView>,
}

struct CapacityRow {
    date: String,
    iso: String,
    offered: u32,
    booked: u32,
    free: u32,
    withheld: u32,
    /// Requests naming the day, when a ballot release gives it.
    demand: String,
    reasons: String,
    /// Booked of offered per pool, in words.
    pools: String,
}

struct CapacityOfficeView {
    id: String,
    name: String,
    place: String,
    usual: String,
    /// The release mode and the split per pool, in words.
    policy: String,
    caption: String,
    rows: Vec<CapacityRow>,
}

/// A pool's name on the capacity page.
fn pool_label(lang: Lang, pool: pasaporte_core::shares::Pool) -> &'static str {
    use pasaporte_core::shares::Pool;
    match pool {
        Pool::Online => lang.pick("en línea", "online"),
        Pool::Urgent => lang.pick("urgentes", "urgent"),
        Pool::WalkIn => lang.pick("sin cita", "walk-in"),
        Pool::Priority => lang.pick("prioritarios", "priority"),
    }
}

/// "Asignación: en vivo. Cupos: 70 % en línea, ..." for one office.
fn policy_text(lang: Lang, policy: &pasaporte_core::shares::OfficePolicy) -> String {
    use pasaporte_core::shares::{Pool, ReleaseMode};
    let mode = match policy.mode {
        ReleaseMode::Live => lang.pick(
            "en vivo (por orden de llegada)",
            "live (first come, first served)",
        ),
        ReleaseMode::Ballot => lang.pick("por sorteo", "by ballot"),
    };
    let shares: Vec<String> = Pool::ALL
        .into_iter()
        .map(|p| format!("{} % {}", policy.shares.get(p), pool_label(lang, p)))
        .collect();
    format!(
        "{}: {mode}. {}: {}",
        lang.pick("Asignación de cupos en línea", "Online seats released"),
        lang.pick("Reparto de cada hora", "Split of each slot"),
        shares.join(", ")
    )
}

struct StockRow {
    label: String,
    in_stock: u64,
    days_left: String,
}

#[derive(Template)]
#[template(path = "capacity.html")]
struct CapacityPage {
    c: Chrome,
    errors: Vec<ErrView>,
    desde: String,
    dias: String,
    office_options: Vec<Opt>,
    json_href: String,
    csv_href: String,
    pools_csv_href: String,
    generated: String,
    offices: Vec<CapacityOfficeView>,
    stock: Vec<StockRow>,
    rationing_applies: bool,
    rule: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    c: Chrome,
    heading: String,
    body: String,
    home_href: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::App;
    use axum::body::Body;
    use axum::http::Request;
    use pasaporte_core::jiff::civil::date;
    use std::sync::Arc;
    use tower::ServiceExt;

    const OFFICE: &str = "BOG-CEN";

    struct TestApp {
        app: Arc<App>,
        router: Router,
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Reply {
        fn location(&self) -> String {
            self.headers
                .get(header::LOCATION)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        }
    }

    async fn spawn() -> TestApp {
        let (store, _url) =
            pasaporte_store::testing::fresh(pasaporte_store::testing::TestDb::Sqlite)
                .await
                .unwrap();
        for mut o in pasaporte_core::office::parse_offices_csv(crate::DEMO_OFFICES_CSV).unwrap() {
            if o.code == OFFICE {
                // A year ahead, so the next 8 December is always bookable-range.
                o.horizon_days = 366;
            }
            store.upsert_office(&o).await.unwrap();
        }
        let keys =
            crate::crypto::Keyring::parse(&format!("k1:{}", "ab".repeat(32)), &"cd".repeat(32))
                .unwrap();
        let app = App::new(store, keys, "http://test".into(), Default::default())
            .await
            .unwrap();
        let router = crate::http::router(app.clone());
        TestApp { app, router }
    }

    impl TestApp {
        async fn send(&self, req: Request<Body>) -> Reply {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
                .await
                .unwrap();
            Reply {
                status,
                headers,
                body: String::from_utf8(bytes.to_vec()).unwrap(),
            }
        }

        async fn get(&self, uri: &str) -> Reply {
            self.send(Request::get(uri).body(Body::empty()).unwrap())
                .await
        }

        async fn post(&self, uri: &str, body: &str) -> Reply {
            self.post_with(uri, body, &[]).await
        }

        async fn post_with(&self, uri: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
            let mut req = Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::HOST, "test");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            self.send(req.body(Body::from(body.to_string())).unwrap())
                .await
        }

        /// The first bookable slot's `inicio`, percent-encoded as the calendar
        /// page links it.
        async fn first_slot(&self) -> String {
            let today =
                calendar::local_today(&self.app.office(OFFICE).unwrap().office, Timestamp::now());
            for week in 0..8 {
                let from = today.checked_add(Span::new().days(7 * week)).unwrap();
                let page = self.get(&format!("/oficinas/{OFFICE}?desde={from}")).await;
                assert_eq!(page.status, StatusCode::OK);
                let marker = format!("href=\"/oficinas/{OFFICE}/reservar?inicio=");
                if let Some(i) = page.body.find(&marker) {
                    let rest = &page.body[i + marker.len()..];
                    let end = rest.find(['&', '"']).unwrap();
                    return rest[..end].to_string();
                }
            }
            panic!("no bookable slot in eight weeks");
        }
    }

    fn unescape(s: &str) -> String {
        s.replace("&#38;", "&").replace("&amp;", "&")
    }

    fn form(inicio: &str, idem: &str, fields: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = vec![
            ("lang".into(), "es".into()),
            ("idem".into(), idem.into()),
            ("email".into(), String::new()),
            ("phone".into(), String::new()),
        ];
        for i in 0..APPLICANTS_MAX {
            for f in PERSON_FIELDS {
                pairs.push((format!("a{i}_{f}"), String::new()));
            }
        }
        for (k, v) in fields {
            match pairs.iter_mut().find(|(pk, _)| pk == k) {
                Some(p) => p.1 = v.to_string(),
                None => pairs.push((k.to_string(), v.to_string())),
            }
        }
        let mut body = format!("inicio={inicio}");
        for (k, v) in pairs {
            body.push_str(&format!("&{k}={}", enc(&v)));
        }
        body
    }

    fn adult(doc: &str) -> Vec<(&'static str, String)> {
        vec![
            ("a0_document_type", "cedula_ciudadania".into()),
            ("a0_document_number", doc.into()),
            ("a0_surnames", "Pérez Gómez".into()),
            ("a0_given_names", "Ana María".into()),
            ("a0_birth_date", "1985-04-02".into()),
            ("email", "ana@example.co".into()),
            ("phone", "+57 300 123 4567".into()),
        ]
    }

    fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        v.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// Books through the form and returns the manage page's path and query.
    async fn book(t: &TestApp, doc: &str, idem: &str) -> String {
        let inicio = t.first_slot().await;
        let r = t
            .post(
                &format!("/oficinas/{OFFICE}/reservar"),
                &form(&inicio, idem, &refs(&adult(doc))),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        r.location()
    }

    #[tokio::test]
    async fn office_list_in_spanish_and_english() {
        let t = spawn().await;
        let es = t.get("/").await;
        assert_eq!(es.status, StatusCode::OK);
        assert!(es.body.contains("<html lang=\"es\">"));
        assert!(es.body.contains("Oficinas del Ministerio en Bogotá"));
        assert!(es.body.contains("Consulados en el exterior"));
        assert!(es.body.contains("Bogotá Sede Centro"));
        assert!(
            es.body
                .contains(&format!("href=\"/oficinas/{OFFICE}?lang=es\""))
        );
        assert!(es.body.contains("href=\"/?lang=en\""), "language switch");
        assert!(es.body.contains("<main id=\"main\""));
        assert_eq!(es.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");

        let en = t.get("/?lang=en").await;
        assert!(en.body.contains("<html lang=\"en\">"));
        assert!(en.body.contains("Ministry offices in Bogotá"));
        assert!(
            en.body
                .contains(&format!("href=\"/oficinas/{OFFICE}?lang=en\""))
        );
        assert!(en.body.contains("name=\"lang\" value=\"en\""));

        let found = t
            .get("/primeras?ciudad=Bogot%C3%A1&personas=2&lang=es")
            .await;
        assert_eq!(found.status, StatusCode::OK);
        assert!(found.body.contains("Resultados"));
        assert!(found.body.contains("/reservar?inicio="), "{}", found.body);
    }

    #[tokio::test]
    async fn calendar_shows_seats_and_names_the_holiday() {
        let t = spawn().await;
        let now = Timestamp::now();
        let today = calendar::local_today(&t.app.office(OFFICE).unwrap().office, now);
        let this_year = date(today.year(), 12, 8);
        let dec8 = if today <= this_year {
            this_year
        } else {
            date(today.year() + 1, 12, 8)
        };
        let from = dec8.checked_sub(Span::new().days(3)).unwrap().max(today);
        let r = t.get(&format!("/oficinas/{OFFICE}?desde={from}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("America/Bogota"), "time zone named");
        assert!(
            r.body.contains("Festivo: Inmaculada Concepción"),
            "{}",
            r.body
        );
        assert!(r.body.contains(&format!("{} de diciembre", 8)));
        assert!(r.body.contains(" cupos</span>"), "seats shown");
        assert!(r.body.contains("Semana siguiente"));
        let en = t
            .get(&format!("/oficinas/{OFFICE}?desde={from}&lang=en"))
            .await;
        assert!(en.body.contains("Public holiday: Inmaculada Concepción"));
        assert!(en.body.contains(" seats</span>"));

        let bad = t.get(&format!("/oficinas/{OFFICE}?desde=mañana")).await;
        assert_eq!(bad.status, StatusCode::OK);
        assert!(bad.body.contains("href=\"#desde\""));
        assert_eq!(t.get("/oficinas/NOPE").await.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn booking_through_the_form_then_cancel() {
        let t = spawn().await;
        let inicio = t.first_slot().await;
        let page = t
            .get(&format!(
                "/oficinas/{OFFICE}/reservar?inicio={inicio}&lang=es"
            ))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        for want in [
            "for=\"applicants-0-surnames\"",
            "autocomplete=\"family-name\"",
            "autocomplete=\"given-name\"",
            "autocomplete=\"bday\"",
            "autocomplete=\"email\"",
            "autocomplete=\"tel\"",
            "type=\"date\"",
            "Cédula de ciudadanía",
            "Agregar un menor",
            "name=\"idem\" value=\"",
        ] {
            assert!(page.body.contains(want), "{want}");
        }

        let manage = book(&t, "52123456", "k-booking").await;
        assert!(manage.starts_with("/citas/"));
        assert!(manage.contains("clave="));
        let code = manage["/citas/".len()..manage.find('?').unwrap()].to_string();
        let m = t.get(&manage).await;
        assert_eq!(m.status, StatusCode::OK);
        assert!(m.body.contains(&code));
        assert!(m.body.contains("Activa"));
        assert!(m.body.contains("••••3456"), "masked document");
        assert!(!m.body.contains("52123456"));
        assert!(m.body.contains("cita.ics?clave="));
        assert_eq!(m.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let token = manage
            .split("clave=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string();

        let ics = t
            .get(&format!("/citas/{code}/cita.ics?clave={token}"))
            .await;
        assert_eq!(ics.status, StatusCode::OK);
        assert!(ics.body.contains("BEGIN:VCALENDAR"));

        let cancel = format!("/citas/{code}/cancelar");
        let unconfirmed = t.post(&cancel, &format!("lang=es&clave={token}")).await;
        assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(unconfirmed.body.contains("href=\"#confirmar\""));

        let done = t
            .post(&cancel, &format!("lang=es&clave={token}&confirmar=si"))
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        assert!(done.location().contains("hecho=cancelada"));
        let after = t.get(&done.location()).await;
        assert!(after.body.contains("Cancelada"));
        assert!(after.body.contains("Su cita fue cancelada"));
        assert!(!after.body.contains("Sí, quiero cancelar"));
    }

    #[tokio::test]
    async fn form_errors_are_linked_and_values_kept() {
        let t = spawn().await;
        let inicio = t.first_slot().await;
        let fields = [
            ("a0_document_type", "cedula_ciudadania"),
            ("a0_document_number", "52123456"),
            ("a0_given_names", "Ana <b>"),
            ("a0_birth_date", "1985-04-02"),
            ("email", "ana@"),
            // A minor in the third group, the first two left blank.
            ("a3_document_type", "tarjeta_identidad"),
            ("a3_document_number", "1012345678"),
            ("a3_surnames", "Pérez"),
            ("a3_given_names", "Luis"),
            ("a3_birth_date", "1980-01-01"),
        ];
        let r = t
            .post(
                &format!("/oficinas/{OFFICE}/reservar"),
                &form(&inicio, "k-errors", &fields),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let body = unescape(&r.body);
        assert!(body.contains("class=\"error-summary\""));
        assert!(body.contains("role=\"alert\""));
        for id in [
            "applicants-0-surnames",
            "applicants-0-given_names",
            "email",
            "applicants-3-birth_date",
        ] {
            assert!(
                body.contains(&format!("href=\"#{id}\"")),
                "summary links {id}"
            );
            assert!(
                body.contains(&format!("id=\"{id}-error\"")),
                "message by {id}"
            );
        }
        assert!(body.contains("aria-invalid=\"true\""));
        assert!(body.contains("aria-describedby=\"applicants-0-surnames-error\""));
        assert!(body.contains("value=\"52123456\""), "values kept");
        assert!(body.contains("value=\"Ana <b>\"") || r.body.contains("Ana &#60;b&#62;"));
        assert!(!r.body.contains("Ana <b>"), "escaped");
        assert!(body.contains("<option value=\"tarjeta_identidad\" selected>"));
        assert!(body.contains("name=\"idem\" value=\"k-errors\""));
        assert!(
            !body.contains("href=\"#applicants-1-"),
            "blank groups ignored"
        );
    }

    #[tokio::test]
    async fn a_double_submit_books_once() {
        let t = spawn().await;
        let first = book(&t, "79123456", "k-double").await;
        let second = book(&t, "79123456", "k-double").await;
        assert_eq!(first, second);
        // A different key for the same person is a second booking attempt,
        // which the one-active-booking rule refuses: so only one exists.
        let inicio = t.first_slot().await;
        let again = t
            .post(
                &format!("/oficinas/{OFFICE}/reservar"),
                &form(&inicio, "k-other", &refs(&adult("79123456"))),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.body.contains("ya tiene una cita activa"));
        assert!(again.body.contains("Elegir otra hora"));
    }

    #[tokio::test]
    async fn wrong_code_or_token_is_the_same_404() {
        let t = spawn().await;
        let manage = book(&t, "80123456", "k-404").await;
        let code = &manage["/citas/".len()..manage.find('?').unwrap()];
        let wrong_token = t.get(&format!("/citas/{code}?clave=nope")).await;
        assert_eq!(wrong_token.status, StatusCode::NOT_FOUND);
        assert!(wrong_token.body.contains("No encontramos esa cita"));
        let wrong_code = t.get("/citas/ACDEFGHJ?clave=nope").await;
        assert_eq!(wrong_code.status, StatusCode::NOT_FOUND);
        assert!(wrong_code.body.contains("No encontramos esa cita"));
        let cancel = t
            .post(
                &format!("/citas/{code}/cancelar"),
                "lang=es&clave=nope&confirmar=si",
            )
            .await;
        assert_eq!(cancel.status, StatusCode::NOT_FOUND);
        let page = t.get("/no-such-page").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(page.body.contains("No encontramos esa página"));
    }

    #[tokio::test]
    async fn reschedule_through_the_form() {
        let t = spawn().await;
        let manage = book(&t, "81123456", "k-move").await;
        let code = manage["/citas/".len()..manage.find('?').unwrap()].to_string();
        let token = manage
            .split("clave=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string();
        let page = t.get(&format!("/citas/{code}/cambiar?clave={token}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("su hora actual"));
        let marker = "name=\"inicio\" value=\"";
        let i = page.body.find(marker).unwrap() + marker.len();
        let start = &page.body[i..i + page.body[i..].find('"').unwrap()];
        let moved = t
            .post(
                &format!("/citas/{code}/cambiar"),
                &format!("lang=es&clave={token}&inicio={}", enc(&unescape(start))),
            )
            .await;
        assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
        assert!(moved.location().contains("hecho=cambiada"));
    }

    #[tokio::test]
    async fn cross_site_posts_are_refused() {
        let t = spawn().await;
        let inicio = t.first_slot().await;
        let body = form(&inicio, "k-csrf", &refs(&adult("52999888")));
        let uri = format!("/oficinas/{OFFICE}/reservar");
        let r = t
            .post_with(&uri, &body, &[("sec-fetch-site", "cross-site")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("No pudimos aceptar el envío"));
        let r = t
            .post_with(&uri, &body, &[("origin", "https://evil.example")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // The same form from this site goes through.
        let r = t
            .post_with(
                &uri,
                &body,
                &[("origin", "http://test"), ("sec-fetch-site", "same-origin")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let code = t
            .post_with(
                "/citas/ACDEFGHJ/cancelar",
                "clave=x&confirmar=si",
                &[("sec-fetch-site", "cross-site")],
            )
            .await;
        assert_eq!(code.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn field_paths_become_element_ids() {
        assert_eq!(
            field_id("applicants[1].birth_date", &[0, 3]),
            "applicants-3-birth_date"
        );
        assert_eq!(
            field_id("applicants[0].surnames", &[0]),
            "applicants-0-surnames"
        );
        assert_eq!(field_id("email", &[0]), "email");
        assert_eq!(field_id("start", &[0]), "slot");
        assert_eq!(
            enc("2026-12-01T09:00:00+01:00"),
            "2026-12-01T09%3A00%3A00%2B01%3A00"
        );
    }
}
