//! Ballot releases run by the service (issue 6): a supervisor opens a
//! release of a city's seats for some days (the seed's commitment is
//! published at once); citizens request with ranked preferences and prove
//! their email; when the request period ends the draw (`core::ballot`) runs
//! on the published offers and requests, its files are published with the
//! seed, the allocated become bookings and the others a waitlist. Seats that
//! come free later (cancelled, unconfirmed, an offer let lapse) are offered
//! to the waitlist in draw order, each by mail with a deadline: never a race.
//!
//! Layout: releases (open, offers, draw), requests (submit, verify, view,
//! accept, withdraw), reconfirmation, then [`round`], the worker step.

use crate::app::App;
use crate::booking::{BookError, DayView};
use crate::crypto::{at, random_bytes};
use crate::i18n::{Lang, local_when};
use crate::mail;
use crate::workflow::{AllOffices, OfficeScope, WorkError};
use pasaporte_core::application::Actor;
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::ballot::{self, Offer, Offers, Preference, Request, SeatKey};
use pasaporte_core::booking::{ApplicantInput, BookingInput, parse_party};
use pasaporte_core::calendar;
use pasaporte_core::code::{CODE_LEN, ConfirmationCode};
use pasaporte_core::jiff::civil::Date;
use pasaporte_core::jiff::{SignedDuration, Timestamp};
use pasaporte_core::shares::ReleaseMode;
use pasaporte_core::{FieldError, FieldErrors};
use pasaporte_store::{
    DrawWrite, DueBooking, MailRow, NewBooking, NewRequest, ReleaseFiles, ReleaseRow, RequestRow,
    SeatGrant, StoreError, WriteError,
};
use std::collections::{BTreeMap, HashMap};

/// Longest release: two months of days, as far as offices publish seats.
pub const RELEASE_DAYS_MAX: i64 = 62;
/// Shortest request period by default: a day, so that everyone can hear of
/// it, not only those watching the page (`--release-min-hours`).
pub const REQUEST_PERIOD_MIN_HOURS: u32 = 24;
/// An unverified request ends after this: the email was not proven.
pub const VERIFY_HOURS: i64 = 24;
/// How long a waitlisted citizen has to take an offered seat.
pub const OFFER_HOURS: i64 = 24;
/// No seat is offered that starts sooner than this: time to get there.
pub const OFFER_LEAD_HOURS: i64 = 3;
/// Requests sharing one device or phone from which a group is flagged.
pub const SIGNAL_THRESHOLD: i64 = 5;
/// Rows handled per worker step and kind.
pub const ROUND_MAX: u32 = 200;

/// Reconfirmation: how long before an appointment the citizen is asked to
/// confirm, and until when before it the seat is kept without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconfirm {
    pub ask_hours: i64,
    pub keep_hours: i64,
}

impl Default for Reconfirm {
    fn default() -> Self {
        Self {
            ask_hours: 72,
            keep_hours: 24,
        }
    }
}

/// How this server runs releases and reconfirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FairSettings {
    /// Shortest request period, hours (0: any period that ends in the
    /// future, for simulations and tests).
    pub period_min_hours: u32,
    /// `None`: bookings are not asked to reconfirm.
    pub reconfirm: Option<Reconfirm>,
}

impl Default for FairSettings {
    fn default() -> Self {
        Self {
            period_min_hours: REQUEST_PERIOD_MIN_HOURS,
            reconfirm: Some(Reconfirm::default()),
        }
    }
}

fn refused(code: &'static str, es: &'static str, en: &'static str) -> WorkError {
    WorkError::Refused { code, es, en }
}

fn internal(e: impl std::fmt::Display) -> WorkError {
    WorkError::Internal(e.to_string())
}

fn invalid(field: &str, code: &'static str, es: &'static str, en: &'static str) -> WorkError {
    WorkError::Invalid(FieldErrors(vec![FieldError::new(field, code, es, en)]))
}

// --- Releases ----------------------------------------------------------------

#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct ReleaseInput {
    pub city: String,
    #[schema(schema_with = crate::http::openapi::date_string)]
    pub first_day: String,
    #[schema(schema_with = crate::http::openapi::date_string)]
    pub last_day: String,
    /// RFC 3339.
    #[schema(schema_with = crate::http::openapi::date_time_string)]
    pub requests_close_at: String,
    /// Default: the city's offices.
    #[serde(default)]
    pub offices: Option<Vec<String>>,
}

fn parse_day(text: &str, field: &str) -> Result<Date, WorkError> {
    text.trim().parse::<Date>().map_err(|_| {
        invalid(
            field,
            "invalid_day",
            "Escriba la fecha como AAAA-MM-DD.",
            "Write the date as YYYY-MM-DD.",
        )
    })
}

/// Opens a release: checks it, draws and seals its seed, publishes the
/// seed's commitment.
pub async fn open_release(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    input: &ReleaseInput,
    now: Timestamp,
) -> Result<ReleaseRow, WorkError> {
    let city = input.city.trim();
    let first = parse_day(&input.first_day, "first_day")?;
    let last = parse_day(&input.last_day, "last_day")?;
    let close: Timestamp = input.requests_close_at.trim().parse().map_err(|_| {
        invalid(
            "requests_close_at",
            "invalid_instant",
            "Escriba el cierre como fecha y hora RFC 3339 (2026-12-03T17:00:00-05:00).",
            "Write the close as an RFC 3339 date and time (2026-12-03T17:00:00-05:00).",
        )
    })?;
    let offices = app.offices();
    let chosen: Vec<String> = match &input.offices {
        Some(list) if !list.is_empty() => list.iter().map(|s| s.trim().to_string()).collect(),
        // The city's offices whose release mode is the ballot.
        _ => offices
            .values()
            .filter(|e| e.office.city == city && e.policy.mode == ReleaseMode::Ballot)
            .map(|e| e.office.code.clone())
            .collect(),
    };
    // A release refuses live bookings at every office it covers: only staff
    // of all of them may open it. Offices outside the assignment answer like
    // unknown ones.
    if chosen
        .iter()
        .any(|code| !crate::workflow::in_scope(scope, code))
    {
        return Err(WorkError::NotFound);
    }
    if chosen.is_empty() {
        return Err(invalid(
            "city",
            "no_ballot_offices",
            "Esa ciudad no tiene oficinas en modo sorteo. Un administrador fija el modo de cada oficina (PUT /api/v1/staff/offices/{office}/policy).",
            "That city has no office in ballot mode. An administrator sets each office's mode (PUT /api/v1/staff/offices/{office}/policy).",
        ));
    }
    for code in &chosen {
        match offices.get(code) {
            Some(e) if e.office.city == city && e.policy.mode == ReleaseMode::Ballot => {}
            _ => {
                return Err(invalid(
                    "offices",
                    "office_not_in_city",
                    "Cada oficina del sorteo debe existir, estar en la ciudad indicada y en modo sorteo.",
                    "Each office of the release must exist, be in the city given and in ballot mode.",
                ));
            }
        }
    }
    let first_office = offices
        .get(&chosen[0])
        .ok_or(WorkError::NotFound)?
        .office
        .clone();
    let today = calendar::local_today(&first_office, now);
    if first <= today || last < first || (last - first).get_days() >= RELEASE_DAYS_MAX as i32 {
        return Err(invalid(
            "last_day",
            "bad_release_days",
            "Los días van de mañana en adelante, el último no antes del primero, y a lo sumo 62 días.",
            "The days start tomorrow or later, the last is not before the first, and at most 62 days.",
        ));
    }
    let first_start_ms = offices
        .get(&chosen[0])
        .ok_or(WorkError::NotFound)?
        .planned_day(first)
        .bounds_ms
        .0;
    let min_close = now + SignedDuration::from_hours(i64::from(app.fair.period_min_hours));
    if close <= min_close || close.as_millisecond() >= first_start_ms {
        return Err(invalid(
            "requests_close_at",
            "bad_request_period",
            "Las solicitudes deben quedar abiertas el plazo mínimo (24 horas salvo otra configuración) y cerrar antes del primer día del sorteo.",
            "Requests must stay open the minimum period (24 hours unless configured otherwise) and close before the release's first day.",
        ));
    }
    for r in app.store.releases().await? {
        let overlaps = r.first_day.as_str() <= last.to_string().as_str()
            && r.last_day.as_str() >= first.to_string().as_str()
            && r.offices.iter().any(|o| chosen.contains(o));
        if overlaps {
            return Err(refused(
                "release_overlaps",
                "Ya hay un sorteo para alguna de esas oficinas y días.",
                "A release already covers some of those offices and days.",
            ));
        }
    }
    let seed = random_bytes::<32>().map_err(internal)?;
    let id = uuid::Uuid::now_v7().to_string();
    let row = ReleaseRow {
        id: id.clone(),
        city: city.to_string(),
        offices: chosen,
        first_day: first.to_string(),
        last_day: last.to_string(),
        opened_ms: now.as_millisecond(),
        close_ms: close.as_millisecond(),
        commitment: ballot::seed_commitment(&seed),
        seed_enc: app
            .keys
            .seal(at::release_seed(&id), &ballot::seed_hex(&seed))
            .map_err(internal)?,
        seed: None,
        state: "open".into(),
        drawn_ms: None,
        inputs_digest: None,
        created_by: actor.id.clone(),
    };
    let mut event = AuditEvent::by(actor, now.as_millisecond(), "release.open", "*", &id);
    event.detail = format!("{} {}..{}", row.city, row.first_day, row.last_day);
    app.store.insert_release(&row, &event).await?;
    app.releases.clear();
    app.availability.clear();
    Ok(row)
}

/// A slot's seats as the draw and the waitlist see them: free now, and the
/// slot's capacity (for the seat count's CHECK).
struct FreeSeats {
    offers: Offers,
    capacity: HashMap<(String, i64), u32>,
}

/// The free seats of a release's offices and days, from `from` on.
async fn free_seats(app: &App, r: &ReleaseRow, from: Timestamp) -> Result<FreeSeats, WorkError> {
    let first = parse_day(&r.first_day, "first_day")?;
    let last = parse_day(&r.last_day, "last_day")?;
    let mut offers = Offers {
        slots: Vec::new(),
        city_of: BTreeMap::new(),
    };
    let mut capacity = HashMap::new();
    for code in &r.offices {
        let Some(entry) = app.office(code) else {
            continue;
        };
        offers
            .city_of
            .insert(code.clone(), entry.office.city.clone());
        let mut day = first;
        while day <= last {
            let view: DayView = crate::booking::office_day(app, &entry, day, from).await?;
            for s in view.slots.iter().filter(|s| s.remaining > 0) {
                let start_ms = s.start.as_millisecond();
                capacity.insert((code.clone(), start_ms), s.capacity);
                offers.slots.push(Offer {
                    seat: SeatKey {
                        office: code.clone(),
                        day,
                        start_ms,
                    },
                    seats: s.remaining,
                });
            }
            day = day.tomorrow().map_err(internal)?;
        }
    }
    Ok(FreeSeats { offers, capacity })
}

/// The release's requests as the draw reads them (in `status`).
async fn draw_requests(
    app: &App,
    release_id: &str,
    status: &str,
) -> Result<(Vec<Request>, HashMap<String, RequestRow>), WorkError> {
    let rows = app.store.requests_in(release_id, status).await?;
    let mut requests = Vec::with_capacity(rows.len());
    let mut by_id = HashMap::with_capacity(rows.len());
    for r in rows {
        let preferences = ballot::parse_preferences(&r.preferences).map_err(internal)?;
        requests.push(Request {
            id: r.booking_id.clone(),
            person: r.person.clone(),
            family: r.seats,
            preferences,
        });
        by_id.insert(r.booking_id.clone(), r);
    }
    Ok((requests, by_id))
}

/// What a draw did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DrawSummary {
    pub id: String,
    pub seed: String,
    pub inputs_digest: String,
    pub allocated: usize,
    pub waitlisted: usize,
    pub seats_offered: u32,
}

fn seed_of(app: &App, r: &ReleaseRow) -> Result<[u8; 32], WorkError> {
    let hex = app
        .keys
        .open(at::release_seed(&r.id), &r.seed_enc)
        .map_err(internal)?;
    ballot::parse_seed(&hex).map_err(internal)
}

/// Runs a release's draw once its request period has ended: offers are the
/// free seats now, requests the verified ones; the files and the seed are
/// published with the outcome, in one transaction.
pub async fn draw_release(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    id: &str,
    now: Timestamp,
) -> Result<DrawSummary, WorkError> {
    let r = app.store.release(id).await?;
    if !release_in_scope(&r, scope) {
        return Err(WorkError::NotFound);
    }
    if r.state != "open" {
        return Err(refused(
            "release_drawn",
            "El sorteo ya se hizo; sus archivos están publicados.",
            "The draw already ran; its files are published.",
        ));
    }
    if now.as_millisecond() < r.close_ms {
        return Err(refused(
            "requests_still_open",
            "Las solicitudes siguen abiertas: el sorteo se hace después del cierre.",
            "Requests are still open: the draw runs after they close.",
        ));
    }
    let seed = seed_of(app, &r)?;
    let free = free_seats(app, &r, now).await?;
    let (requests, rows) = draw_requests(app, id, "requested").await?;
    let outcome = ballot::draw(&seed, &free.offers, &requests).map_err(internal)?;
    let digest = ballot::inputs_digest(&free.offers, &requests);
    let files = ReleaseFiles {
        offers: ballot::write_offers(&free.offers),
        requests: ballot::write_requests(&requests),
        outcome: ballot::write_outcome(&outcome),
    };
    let mut allocations = Vec::with_capacity(outcome.allocations.len());
    for a in &outcome.allocations {
        let row = rows.get(&a.request_id).ok_or(WorkError::NotFound)?;
        let capacity = free
            .capacity
            .get(&(a.seat.office.clone(), a.seat.start_ms))
            .copied()
            .unwrap_or(a.seats);
        let entry = app.office(&a.seat.office).ok_or(WorkError::NotFound)?;
        let start = Timestamp::from_millisecond(a.seat.start_ms).map_err(internal)?;
        let email = app
            .keys
            .open(at::booking_email(&row.booking_id), &row.email_enc)?;
        let mail = mail::sealed(
            app,
            &email,
            "Ganó un cupo en el sorteo de citas de pasaporte / You won a passport appointment",
            &format!(
                "Su solicitud {code} ganó un cupo en el sorteo.\nOficina: {office}, {city}\nFecha y hora: {es}\n\nPara ver, cambiar o cancelar su cita:\n{url}\n\nYour request {code} won a seat in the draw.\nOffice: {office}, {city}\nDate and time: {en}\n",
                code = row.code,
                office = entry.office.name,
                city = entry.office.city,
                es = local_when(Lang::Es, &entry.office, start),
                en = local_when(Lang::En, &entry.office, start),
                url = mail::manage_url(app, &row.code, &app.keys.manage_token(&row.booking_id)),
            ),
            None,
        )
        .map_err(internal)?;
        allocations.push(SeatGrant {
            booking_id: a.request_id.clone(),
            office: a.seat.office.clone(),
            start_ms: a.seat.start_ms,
            capacity,
            seats: a.seats,
            mail,
        });
    }
    let mut waitlist = Vec::with_capacity(outcome.unallocated.len());
    for (i, rid) in outcome.unallocated.iter().enumerate() {
        let row = rows.get(rid).ok_or(WorkError::NotFound)?;
        let email = app
            .keys
            .open(at::booking_email(&row.booking_id), &row.email_enc)?;
        let mail = mail::sealed(
            app,
            &email,
            "Resultado del sorteo de citas: lista de espera / Draw result: waitlist",
            &format!(
                "Su solicitud {code} no obtuvo cupo en este sorteo. Está en el puesto {n} de la lista de espera: si un cupo se libera le escribiremos con un plazo para aceptarlo. Perder un sorteo no le resta opciones en el siguiente.\n\nSu solicitud:\n{url}\n\nYour request {code} got no seat in this draw. You are number {n} on the waitlist: if a seat comes free we will write to you with a deadline to accept it. Losing a draw does not lower your chances in the next one.\n",
                code = row.code,
                n = i + 1,
                url = request_url(app, &row.code, &app.keys.manage_token(&row.booking_id)),
            ),
            None,
        )
        .map_err(internal)?;
        waitlist.push((rid.clone(), mail));
    }
    let seed_text = ballot::seed_hex(&seed);
    let mut event = AuditEvent::by(actor, now.as_millisecond(), "release.draw", "*", id);
    event.detail = format!(
        "{} allocated, {} waitlisted, digest {digest}",
        allocations.len(),
        waitlist.len()
    );
    let summary = DrawSummary {
        id: id.to_string(),
        seed: seed_text.clone(),
        inputs_digest: digest.clone(),
        allocated: allocations.len(),
        waitlisted: waitlist.len(),
        seats_offered: free.offers.slots.iter().map(|o| o.seats).sum(),
    };
    app.store
        .apply_draw(&DrawWrite {
            release_id: id.to_string(),
            seed: seed_text,
            inputs_digest: digest,
            files,
            now_ms: now.as_millisecond(),
            allocations,
            waitlist,
            audit: event,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => refused(
                "release_drawn",
                "El sorteo ya se hizo; sus archivos están publicados.",
                "The draw already ran; its files are published.",
            ),
            other => other.into(),
        })?;
    app.availability.clear();
    Ok(summary)
}

/// The files anyone can download to replay a release's draw, by name.
pub async fn release_file(app: &App, id: &str, name: &str) -> Result<String, WorkError> {
    let r = app.store.release(id).await?;
    if name == "commitment.txt" {
        return Ok(format!("{}\n", r.commitment));
    }
    let files = app
        .store
        .release_files(id)
        .await?
        .ok_or(WorkError::NotFound)?;
    Ok(match name {
        "offers.txt" => files.offers,
        "requests.txt" => files.requests,
        "outcome.txt" => files.outcome,
        "seed.txt" => format!("{}\n", r.seed.unwrap_or_default()),
        "inputs-digest.txt" => format!("{}\n", r.inputs_digest.unwrap_or_default()),
        _ => return Err(WorkError::NotFound),
    })
}

/// The names [`release_file`] serves.
pub const RELEASE_FILES: [&str; 6] = [
    "commitment.txt",
    "offers.txt",
    "requests.txt",
    "outcome.txt",
    "seed.txt",
    "inputs-digest.txt",
];

// --- Requests ----------------------------------------------------------------

/// One ranked choice as typed: an office and a day, or a city.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct PreferenceInput {
    #[serde(default)]
    pub office: Option<String>,
    /// `YYYY-MM-DD`, with `office`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub day: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct RequestInput {
    pub applicants: Vec<ApplicantInput>,
    pub email: String,
    pub phone: Option<String>,
    pub preferences: Vec<PreferenceInput>,
}

/// Where a citizen follows a request.
pub fn request_url(app: &App, code: &str, token: &str) -> String {
    format!("{}/solicitudes/{code}?clave={token}", app.public_url)
}

fn parse_preferences(
    r: &ReleaseRow,
    input: &[PreferenceInput],
) -> Result<Vec<Preference>, FieldErrors> {
    let mut errs = FieldErrors::default();
    if input.is_empty() || input.len() > ballot::PREFERENCES_MAX {
        errs.push(FieldError::new(
            "preferences",
            "preferences_count",
            "Indique de 1 a 3 preferencias: oficina y día, o la primera cita en la ciudad.",
            "Give 1 to 3 preferences: an office and a day, or the earliest seat in the city.",
        ));
        return Err(errs);
    }
    let mut out = Vec::new();
    for (i, p) in input.iter().enumerate() {
        let field = format!("preferences[{i}]");
        let office = p.office.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let day = p.day.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let city = p.city.as_deref().map(str::trim).filter(|s| !s.is_empty());
        match (office, day, city) {
            (Some(o), Some(d), None) => {
                let in_range = d.parse::<Date>().ok().filter(|d| {
                    let t = d.to_string();
                    t >= r.first_day && t <= r.last_day
                });
                match in_range {
                    Some(day) if r.offices.iter().any(|x| x == o) => {
                        out.push(Preference::Slot {
                            office: o.to_string(),
                            day,
                        });
                    }
                    _ => errs.push(FieldError::new(
                        field,
                        "preference_not_offered",
                        "Esa oficina o ese día no están en este sorteo. Elija entre sus oficinas y días.",
                        "That office or day is not in this release. Choose among its offices and days.",
                    )),
                }
            }
            (None, None, Some(c)) if c == r.city => out.push(Preference::EarliestInCity {
                city: c.to_string(),
            }),
            _ => errs.push(FieldError::new(
                field,
                "invalid_preference",
                "Cada preferencia es una oficina con un día, o la ciudad del sorteo.",
                "Each preference is an office with a day, or the release's city.",
            )),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// A request taken: its code; the proof-of-email mail is queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub code: String,
}

/// Takes a ballot request: one to five people (a family, seated together
/// or not at all), one to three preferences. It counts once its email is
/// proven. A person holding a request or booking anywhere is refused.
pub async fn submit_request(
    app: &App,
    release_id: &str,
    input: &RequestInput,
    device: &str,
    lang: Lang,
    now: Timestamp,
) -> Result<Submitted, BookError> {
    let r = match app.store.release(release_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Err(BookError::UnknownOffice),
        Err(e) => return Err(e.into()),
    };
    if r.state != "open" || now.as_millisecond() >= r.close_ms {
        return Err(BookError::Invalid(FieldErrors(vec![FieldError::new(
            "release",
            "requests_closed",
            "Las solicitudes de este sorteo están cerradas. Consulte los próximos sorteos.",
            "Requests for this release are closed. See the next releases.",
        )])));
    }
    let entry = r
        .offices
        .first()
        .and_then(|c| app.office(c))
        .ok_or(BookError::UnknownOffice)?;
    let today = calendar::local_today(&entry.office, now);
    let people = BookingInput {
        start: String::new(),
        applicants: input.applicants.clone(),
        email: input.email.clone(),
        phone: input.phone.clone(),
    };
    let party = parse_party(&people, today);
    let prefs = parse_preferences(&r, &input.preferences);
    let (party, prefs) = match (party, prefs) {
        (Ok(p), Ok(q)) => (p, q),
        (a, b) => {
            let mut errs = a.err().unwrap_or_default();
            errs.0.extend(b.err().unwrap_or_default().0);
            return Err(BookError::Invalid(errs));
        }
    };
    let keys = &app.keys;
    let id = uuid::Uuid::now_v7().to_string();
    let applicants = crate::booking::seal_applicants(keys, &id, &party.applicants)?;
    for a in &applicants {
        app.limits
            .check_identity(&a.doc_key)
            .map_err(BookError::RateLimited)?;
    }
    // The published person: keyed per release, so draws cannot be linked.
    let person = keys.person_key(&format!("ballot:{release_id}:{}", applicants[0].doc_key));
    let email_enc = keys.seal(at::booking_email(&id), party.email.as_str())?;
    let phone_enc = party
        .phone
        .as_ref()
        .map(|p| keys.seal(at::booking_phone(&id), p.as_str()))
        .transpose()?;
    let code = ConfirmationCode::from_random(random_bytes::<CODE_LEN>()?).to_string();
    let token = keys.manage_token(&id);
    let url = format!(
        "{}/solicitudes/{code}/verificar?clave={token}",
        app.public_url
    );
    let body = format!(
        "{}\n\n{}: {code}\n\n{}:\n{url}\n\n{}\n",
        lang.pick(
            "Recibimos su solicitud para el sorteo de citas de pasaporte. Solo entra al sorteo si confirma que este correo es suyo.",
            "We received your request for the passport appointment draw. It only enters the draw once you confirm this email is yours.",
        ),
        lang.pick("Código", "Code"),
        lang.pick("Para confirmar su correo", "To confirm your email"),
        lang.pick(
            "Si no hizo esta solicitud, ignore este mensaje: sin confirmación vence en 24 horas.",
            "If you did not make this request, ignore this message: unconfirmed, it lapses in 24 hours.",
        ),
    );
    let mail = mail::sealed(
        app,
        party.email.as_str(),
        lang.pick(
            "Confirme su correo para el sorteo de citas de pasaporte",
            "Confirm your email for the passport appointment draw",
        ),
        &body,
        None,
    )?;
    let request = NewRequest {
        booking: NewBooking {
            actor: crate::booking::citizen(&id),
            id,
            code: code.clone(),
            office: entry.office.code.clone(),
            start_ms: 0,
            capacity: 0,
            applicants,
            email_enc,
            phone_enc,
            now_ms: now.as_millisecond(),
            idempotency: None,
            mail,
            pool: pasaporte_core::shares::Pool::Online,
            urgent: None,
        },
        release_id: release_id.to_string(),
        preferences: ballot::preferences_text(&prefs),
        person,
        device_key: keys.person_key(&format!("device:{device}")),
        phone_key: party
            .phone
            .as_ref()
            .map(|p| keys.person_key(&format!("phone:{}", p.as_str()))),
    };
    match app.store.insert_request(&request).await {
        Ok(()) => Ok(Submitted { code }),
        Err(WriteError::AlreadyBooked) => Err(BookError::AlreadyBooked),
        Err(WriteError::Store(e)) => Err(e.into()),
        Err(e) => Err(BookError::Internal(e.to_string())),
    }
}

/// A request as its citizen sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub code: String,
    /// The id in the published files.
    pub request_id: String,
    /// The keyed hash in the published files.
    pub person: String,
    pub release_id: String,
    /// `unverified`, `requested`, `allocated`, `waitlisted`, `offered`,
    /// `expired`, `withdrawn`.
    #[schema(schema_with = crate::http::openapi::request_status_enum)]
    pub status: String,
    pub seats: u32,
    pub preferences: String,
    pub waitlist_position: Option<i64>,
    /// When allocated or offered: the office and start.
    pub office: Option<String>,
    pub start_ms: Option<i64>,
    pub offer_deadline_ms: Option<i64>,
    /// When allocated: the booking's code (the same as the request's).
    pub booking_code: Option<String>,
}

fn view_of(r: RequestRow) -> RequestView {
    let seated = !matches!(
        r.status.as_str(),
        "unverified" | "requested" | "waitlisted" | "offered" | "expired" | "withdrawn"
    );
    let status = if seated {
        "allocated".to_string()
    } else {
        r.status.clone()
    };
    let has_seat = seated || r.status == "offered";
    RequestView {
        code: r.code.clone(),
        request_id: r.booking_id,
        person: r.person,
        release_id: r.release_id,
        status,
        seats: r.seats,
        preferences: r.preferences,
        waitlist_position: r.waitlist_position.filter(|_| r.status == "waitlisted"),
        office: has_seat.then_some(r.office),
        start_ms: has_seat.then_some(r.start_ms),
        offer_deadline_ms: r.offer_deadline_ms.filter(|_| r.status == "offered"),
        booking_code: seated.then_some(r.code),
    }
}

/// The request behind `code` when `token` is its own; otherwise not found
/// (the same answer for a wrong code and a wrong token).
async fn own_request(app: &App, code: &str, token: &str) -> Result<RequestRow, WorkError> {
    let r = match app.store.request_by_code(code).await {
        Ok(r) => Some(r),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    // The same work for an unknown code as for a wrong token.
    let id = r.as_ref().map(|r| r.booking_id.as_str());
    if !app.keys.check_manage_token_of(id, token) {
        return Err(WorkError::NotFound);
    }
    r.ok_or(WorkError::NotFound)
}

pub async fn request_view(app: &App, code: &str, token: &str) -> Result<RequestView, WorkError> {
    Ok(view_of(own_request(app, code, token).await?))
}

/// The proof of email: the link of the mail was opened.
pub async fn verify_request(
    app: &App,
    code: &str,
    token: &str,
    now: Timestamp,
) -> Result<RequestView, WorkError> {
    let r = own_request(app, code, token).await?;
    if r.status == "unverified"
        && !app
            .store
            .verify_request(&r.booking_id, now.as_millisecond())
            .await?
    {
        return Err(refused(
            "requests_closed",
            "Las solicitudes de este sorteo ya cerraron: la confirmación llegó tarde.",
            "Requests for this release have closed: the confirmation came too late.",
        ));
    }
    request_view(app, code, token).await
}

/// The citizen takes an offered seat.
pub async fn accept_offer(
    app: &App,
    code: &str,
    token: &str,
    now: Timestamp,
) -> Result<RequestView, WorkError> {
    let r = own_request(app, code, token).await?;
    let entry = app.office(&r.office).ok_or(WorkError::NotFound)?;
    let start = Timestamp::from_millisecond(r.start_ms).map_err(internal)?;
    let email = app
        .keys
        .open(at::booking_email(&r.booking_id), &r.email_enc)?;
    let mail = mail::sealed(
        app,
        &email,
        "Su cita de pasaporte está confirmada / Your passport appointment is confirmed",
        &format!(
            "Aceptó el cupo: su cita {code} es en {office}, {es}.\n{url}\n\nYou took the seat: your appointment {code} is at {office}, {en}.\n",
            office = entry.office.name,
            es = local_when(Lang::Es, &entry.office, start),
            en = local_when(Lang::En, &entry.office, start),
            url = mail::manage_url(app, code, token),
        ),
        None,
    )
    .map_err(internal)?;
    if !app
        .store
        .accept_offer(&r.booking_id, now.as_millisecond(), &mail)
        .await?
    {
        return Err(refused(
            "no_open_offer",
            "No hay un cupo ofrecido vigente para esta solicitud (el plazo pudo vencer).",
            "There is no open offer for this request (its deadline may have passed).",
        ));
    }
    request_view(app, code, token).await
}

/// The citizen withdraws a request without a seat.
pub async fn withdraw_request(
    app: &App,
    code: &str,
    token: &str,
    now: Timestamp,
) -> Result<RequestView, WorkError> {
    let r = own_request(app, code, token).await?;
    if !app
        .store
        .withdraw_request(&r.booking_id, now.as_millisecond())
        .await?
    {
        return Err(refused(
            "not_withdrawable",
            "Esta solicitud ya tiene cita o ya terminó: gestione la cita desde su enlace.",
            "This request already has an appointment or has ended: manage the appointment from its link.",
        ));
    }
    app.availability.clear();
    request_view(app, code, token).await
}

/// What a citizen does to their request: prove the email, take an
/// offered seat, or withdraw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestAct {
    Verify,
    Accept,
    Withdraw,
}

/// Runs `act` on the request behind `code` and `token`.
pub async fn act_on_request(
    app: &App,
    act: RequestAct,
    code: &str,
    token: &str,
    now: Timestamp,
) -> Result<RequestView, WorkError> {
    match act {
        RequestAct::Verify => verify_request(app, code, token, now).await,
        RequestAct::Accept => accept_offer(app, code, token, now).await,
        RequestAct::Withdraw => withdraw_request(app, code, token, now).await,
    }
}

// --- Reconfirmation ----------------------------------------------------------

/// The citizen confirms they will come (the link of the reminder).
pub async fn confirm_booking(
    app: &App,
    code: &str,
    token: &str,
    now: Timestamp,
) -> Result<bool, WorkError> {
    let b = crate::booking::own_booking(app, code, token)
        .await
        .map_err(|e| match e {
            crate::booking::ManageError::Unavailable(m) => WorkError::Unavailable(m),
            crate::booking::ManageError::Internal(m) => WorkError::Internal(m),
            _ => WorkError::NotFound,
        })?;
    if b.status != "active" {
        return Err(refused(
            "not_active",
            "La cita no está activa.",
            "The appointment is not active.",
        ));
    }
    Ok(app
        .store
        .confirm_booking(&b.id, now.as_millisecond())
        .await?)
}

fn due_mail(app: &App, b: &DueBooking, reminder: bool) -> Result<MailRow, WorkError> {
    let entry = app.office(&b.office).ok_or(WorkError::NotFound)?;
    let start = Timestamp::from_millisecond(b.start_ms).map_err(internal)?;
    let email = app.keys.open(at::booking_email(&b.id), &b.email_enc)?;
    let url = mail::manage_url(app, &b.code, &app.keys.manage_token(&b.id));
    let (subject, body) = if reminder {
        (
            "Confirme su cita de pasaporte / Confirm your passport appointment",
            format!(
                "Su cita {code} es en {office}, {es}. Confírmela desde este enlace; si no la confirma, el cupo se libera para otra persona 24 horas antes.\n{url}\n\nYour appointment {code} is at {office}, {en}. Confirm it from this link; unconfirmed, the seat goes to someone else 24 hours before.\n",
                code = b.code,
                office = entry.office.name,
                es = local_when(Lang::Es, &entry.office, start),
                en = local_when(Lang::En, &entry.office, start),
            ),
        )
    } else {
        (
            "Su cita de pasaporte se liberó / Your passport appointment was released",
            format!(
                "Su cita {code} en {office}, {es}, no se confirmó y el cupo pasó a la lista de espera. Puede reservar o solicitar otra cita.\n\nYour appointment {code} at {office}, {en}, was not confirmed and the seat went to the waitlist. You can book or request another.\n",
                code = b.code,
                office = entry.office.name,
                es = local_when(Lang::Es, &entry.office, start),
                en = local_when(Lang::En, &entry.office, start),
            ),
        )
    };
    mail::sealed(app, &email, subject, &body, None).map_err(internal)
}

// --- The worker step -----------------------------------------------------------

/// What one [`round`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub drawn: usize,
    pub unverified_expired: u64,
    pub offers_expired: usize,
    pub offered: usize,
    pub reminded: usize,
    pub released: usize,
}

fn system() -> Actor {
    crate::workers::system("ballot")
}

/// Offers free seats of drawn releases to their waitlists, in draw order.
async fn offer_round(app: &App, now: Timestamp) -> Result<usize, WorkError> {
    let mut offered = 0;
    let from = now + SignedDuration::from_hours(OFFER_LEAD_HOURS);
    for r in app.store.releases().await? {
        let today = now
            .to_zoned_datetime(pasaporte_core::jiff::tz::TimeZone::UTC)
            .date()
            .to_string();
        if r.state != "drawn" || r.last_day < today {
            continue;
        }
        let (waiting, rows) = draw_requests(app, &r.id, "waitlisted").await?;
        if waiting.is_empty() {
            continue;
        }
        let free = free_seats(app, &r, from).await?;
        if free.offers.slots.is_empty() {
            continue;
        }
        // The same seed and people give the waitlist's own order.
        let seed = seed_of(app, &r)?;
        let outcome = ballot::draw(&seed, &free.offers, &waiting).map_err(internal)?;
        for a in outcome.allocations.iter().take(ROUND_MAX as usize) {
            let Some(row) = rows.get(&a.request_id) else {
                continue;
            };
            let start = Timestamp::from_millisecond(a.seat.start_ms).map_err(internal)?;
            let deadline = (now + SignedDuration::from_hours(OFFER_HOURS))
                .min(start - SignedDuration::from_hours(OFFER_LEAD_HOURS / 2 + 1));
            let entry = app.office(&a.seat.office).ok_or(WorkError::NotFound)?;
            let email = app
                .keys
                .open(at::booking_email(&row.booking_id), &row.email_enc)?;
            let url = request_url(app, &row.code, &app.keys.manage_token(&row.booking_id));
            let mail = mail::sealed(
                app,
                &email,
                "Se liberó un cupo para su cita de pasaporte / A passport appointment seat is free for you",
                &format!(
                    "Se liberó un cupo para su solicitud {code}: {office}, {es}. Lo guardamos para usted hasta {dl_es}. Acéptelo desde su solicitud:\n{url}\n\nA seat came free for your request {code}: {office}, {en}. It is held for you until {dl_en}. Accept it from your request.\n",
                    code = row.code,
                    office = entry.office.name,
                    es = local_when(Lang::Es, &entry.office, start),
                    en = local_when(Lang::En, &entry.office, start),
                    dl_es = local_when(Lang::Es, &entry.office, deadline),
                    dl_en = local_when(Lang::En, &entry.office, deadline),
                ),
                None,
            )
            .map_err(internal)?;
            let capacity = free
                .capacity
                .get(&(a.seat.office.clone(), a.seat.start_ms))
                .copied()
                .unwrap_or(a.seats);
            let grant = SeatGrant {
                booking_id: a.request_id.clone(),
                office: a.seat.office.clone(),
                start_ms: a.seat.start_ms,
                capacity,
                seats: a.seats,
                mail,
            };
            match app
                .store
                .offer_seat(&grant, deadline.as_millisecond(), now.as_millisecond())
                .await
            {
                Ok(true) => offered += 1,
                // Left the waitlist, or the seat went meanwhile: next round.
                Ok(false) | Err(WriteError::SlotFull) => {}
                Err(WriteError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(internal(e)),
            }
        }
    }
    Ok(offered)
}

/// One pass of the fair-access worker: draws whose period ended, lapsed
/// proofs and offers, offers to waitlists, reminders, unconfirmed seats.
pub async fn round(
    app: &App,
    reconfirm: Option<Reconfirm>,
    now: Timestamp,
) -> Result<RoundReport, WorkError> {
    let mut report = RoundReport::default();
    let now_ms = now.as_millisecond();
    for r in app.store.releases().await? {
        if r.state == "open" && r.close_ms <= now_ms {
            match draw_release(app, &system(), &AllOffices, &r.id, now).await {
                Ok(_) => report.drawn += 1,
                Err(WorkError::Refused { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    report.unverified_expired = app
        .store
        .expire_unverified(now_ms - VERIFY_HOURS * 3_600_000, now_ms)
        .await?;
    report.offers_expired = app.store.expire_offers(now_ms, ROUND_MAX).await?.len();
    if let Some(rc) = reconfirm {
        let ask = rc.ask_hours * 3_600_000;
        let keep = rc.keep_hours * 3_600_000;
        for b in app
            .store
            .unconfirmed_due(now_ms, ask, keep, ROUND_MAX)
            .await?
        {
            let mail = due_mail(app, &b, false)?;
            if app.store.release_unconfirmed(&b, now_ms, &mail).await? {
                report.released += 1;
            }
        }
        for b in app.store.bookings_to_remind(now_ms, ask, ROUND_MAX).await? {
            // Inside the keep window already: the reminder comes with a
            // day's notice at least, or not at all (the seat is kept).
            if b.start_ms - now_ms <= keep {
                continue;
            }
            let mail = due_mail(app, &b, true)?;
            app.store.mark_reminded(&b.id, now_ms, &mail).await?;
            report.reminded += 1;
        }
    }
    if report.drawn + report.offers_expired + report.released > 0 {
        app.availability.clear();
    }
    report.offered = offer_round(app, now).await?;
    if report.offered > 0 {
        app.availability.clear();
    }
    Ok(report)
}

/// Scalper signals of a release: groups of requests sharing a device or a
/// phone, for a supervisor to look at. Nothing is cancelled automatically.
pub async fn signals(
    app: &App,
    scope: &dyn OfficeScope,
    release_id: &str,
) -> Result<Vec<pasaporte_store::ScalperSignal>, WorkError> {
    let r = app.store.release(release_id).await?;
    if !release_in_scope(&r, scope) {
        return Err(WorkError::NotFound);
    }
    Ok(app
        .store
        .scalper_signals(release_id, SIGNAL_THRESHOLD)
        .await?)
}

/// Whether every office of the release is one the person works for: drawing
/// a release or reading its signals touches all of its offices' requests.
pub fn release_in_scope(r: &ReleaseRow, scope: &dyn OfficeScope) -> bool {
    r.offices.iter().all(|o| scope.may_use_office(o))
}

/// How long this node trusts its copy of the releases' coverage at most. Not
/// how other nodes' changes arrive (the `releases` generation does, see
/// `cache_sync.rs`): a backstop should a write ever miss its bump.
pub const RELEASE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The offices and days each release still covers (open, or drawn with
/// people waiting), read again after [`ReleaseCache::clear`] (a change on
/// this node or another) or [`RELEASE_CACHE_TTL`].
#[derive(Default)]
pub struct ReleaseCache {
    inner: std::sync::RwLock<Option<(std::time::Instant, std::sync::Arc<Vec<Coverage>>)>>,
    /// Counts clears: a read that raced one is not kept.
    cleared: std::sync::atomic::AtomicU64,
}

/// `(offices, first day, last day)` of one release.
type Coverage = (Vec<String>, String, String);

impl ReleaseCache {
    pub fn clear(&self) {
        if let Ok(mut w) = self.inner.write() {
            self.cleared
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            *w = None;
        }
    }

    async fn get(&self, app: &App) -> Result<std::sync::Arc<Vec<Coverage>>, StoreError> {
        if let Ok(r) = self.inner.read()
            && let Some((at, c)) = r.as_ref()
            && at.elapsed() < RELEASE_CACHE_TTL
        {
            return Ok(c.clone());
        }
        let cleared = self.cleared.load(std::sync::atomic::Ordering::SeqCst);
        let mut covering = Vec::new();
        for r in app.store.releases().await? {
            // A drawn release whose waitlist is empty has no one to give
            // freed seats to: they go back to live booking, not to waste.
            if r.state == "drawn" {
                let waiting: i64 = app
                    .store
                    .request_counts(&r.id)
                    .await?
                    .iter()
                    .filter(|(s, _)| s == "waitlisted" || s == "offered")
                    .map(|(_, n)| n)
                    .sum();
                if waiting == 0 {
                    continue;
                }
            }
            covering.push((r.offices, r.first_day, r.last_day));
        }
        let c = std::sync::Arc::new(covering);
        if let Ok(mut w) = self.inner.write()
            && self.cleared.load(std::sync::atomic::Ordering::SeqCst) == cleared
        {
            *w = Some((std::time::Instant::now(), c.clone()));
        }
        Ok(c)
    }
}

/// Why the office's seats on `day` cannot be booked live: a ballot release
/// gives them (then freed seats go to its waitlist, not to a race) until
/// it is drawn and its waitlist is empty.
pub async fn live_refusal(
    app: &App,
    office: &str,
    day: Date,
) -> Result<Option<FieldError>, StoreError> {
    let day = day.to_string();
    let covered = app
        .releases
        .get(app)
        .await?
        .iter()
        .any(|(offices, first, last)| {
            *first <= day && day <= *last && offices.iter().any(|o| o == office)
        });
    Ok(covered.then(|| FieldError::new(
            "start",
            "ballot_release",
            "Los cupos de esta oficina para ese día se asignan por sorteo, no por orden de llegada. Solicítelos en /sorteos; los cupos que se liberen van a la lista de espera.",
            "This office's seats for that day are allocated by a draw, not first come first served. Request them at /sorteos; seats that come free go to the waitlist.",
        )))
}
