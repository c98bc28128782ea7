//! The ballot's citizen pages: the releases (`/sorteos`), the request form
//! of one release, the proof of email, and a request's page with its
//! result, an offered seat to accept, or the button to withdraw. A child of
//! `pages`: it shares its form fields, links and error pages.

use super::*;
use crate::ballot::{self as fair, PreferenceInput, RequestAct, RequestInput, RequestView};
use axum::routing::post;
use pasaporte_store::ReleaseRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sorteos", get(list))
        .route("/sorteos/{id}", get(form_page).post(submit))
        .route("/solicitudes/{code}", get(request_page))
        .route(
            "/solicitudes/{code}/verificar",
            get(verify_page).post(|s, l, p, h, f| act_submit(RequestAct::Verify, s, l, p, h, f)),
        )
        .route(
            "/solicitudes/{code}/aceptar",
            post(|s, l, p, h, f| act_submit(RequestAct::Accept, s, l, p, h, f)),
        )
        .route(
            "/solicitudes/{code}/retirar",
            post(|s, l, p, h, f| act_submit(RequestAct::Withdraw, s, l, p, h, f)),
        )
        .route("/citas/{code}/confirmar", post(confirm_submit))
}

/// Ranked preferences a request form offers.
const PREFERENCE_FIELDS: [&str; 3] = ["p0", "p1", "p2"];

fn when_ms(lang: Lang, app: &AppState, office: &str, ms: i64) -> String {
    match (app.office(office), Timestamp::from_millisecond(ms)) {
        (Some(e), Ok(t)) => i18n::local_when(lang, &e.office, t),
        _ => String::new(),
    }
}

struct ReleaseView {
    id: String,
    city: String,
    days: String,
    offices: String,
    open: bool,
    closes: String,
    commitment: String,
    seed: String,
    request_href: String,
    files: Vec<(String, String)>,
}

fn release_view(app: &AppState, lang: Lang, r: &ReleaseRow) -> ReleaseView {
    let open = r.state == "open" && Timestamp::now().as_millisecond() < r.close_ms;
    ReleaseView {
        id: r.id.clone(),
        city: r.city.clone(),
        days: if r.first_day == r.last_day {
            r.first_day.clone()
        } else {
            format!("{} – {}", r.first_day, r.last_day)
        },
        offices: r
            .offices
            .iter()
            .map(|c| {
                app.office(c)
                    .map(|e| e.office.name.clone())
                    .unwrap_or(c.clone())
            })
            .collect::<Vec<_>>()
            .join(", "),
        open,
        closes: r
            .offices
            .first()
            .map(|o| when_ms(lang, app, o, r.close_ms))
            .unwrap_or_default(),
        commitment: r.commitment.clone(),
        seed: r.seed.clone().unwrap_or_default(),
        request_href: href(&format!("/sorteos/{}", enc(&r.id)), &[], lang),
        files: fair::RELEASE_FILES
            .iter()
            .filter(|n| r.state == "drawn" || **n == "commitment.txt")
            .map(|n| {
                (
                    n.to_string(),
                    format!("/api/v1/releases/{}/files/{n}", enc(&r.id)),
                )
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "sorteos.html")]
struct ListPage {
    c: Chrome,
    releases: Vec<ReleaseView>,
}

async fn list(State(app): State<AppState>, ReqLang(lang): ReqLang) -> Result<Response, PageError> {
    let rows = app
        .store
        .releases()
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let page = ListPage {
        c: Chrome::new(
            lang,
            lang.pick("Sorteos de citas", "Appointment draws"),
            "/sorteos",
            &[],
        ),
        releases: rows.iter().map(|r| release_view(&app, lang, r)).collect(),
    };
    render(StatusCode::OK, lang, &page)
}

#[derive(Template)]
#[template(path = "sorteo.html")]
struct FormPage {
    c: Chrome,
    release: ReleaseView,
    action: String,
    errors: Vec<ErrView>,
    problem: Option<String>,
    first: PersonForm,
    minors: Vec<PersonForm>,
    contact: Vec<Input>,
    preferences: Vec<Input>,
}

fn preference_inputs(app: &AppState, lang: Lang, r: &ReleaseRow, form: &FormValues) -> Vec<Input> {
    let mut choices = vec![(
        format!("city:{}", r.city),
        format!(
            "{} {}",
            lang.pick(
                "La primera cita en cualquier oficina de",
                "The earliest seat at any office in"
            ),
            r.city
        ),
    )];
    let (first, last) = (
        r.first_day.parse::<Date>().ok(),
        r.last_day.parse::<Date>().ok(),
    );
    if let (Some(mut day), Some(last)) = (first, last) {
        while day <= last {
            for code in &r.offices {
                let name = app
                    .office(code)
                    .map(|e| e.office.name.clone())
                    .unwrap_or(code.clone());
                choices.push((
                    format!("slot:{code}:{day}"),
                    format!("{name}, {}", i18n::long_date(lang, day)),
                ));
            }
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
    }
    PREFERENCE_FIELDS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let chosen = form.get(name);
            let mut options = vec![Opt {
                value: String::new(),
                label: if i == 0 {
                    lang.pick("Elija una opción", "Choose an option").into()
                } else {
                    lang.pick("Ninguna", "None").into()
                },
                selected: chosen.is_empty(),
            }];
            options.extend(choices.iter().map(|(v, l)| Opt {
                value: v.clone(),
                label: l.clone(),
                selected: v == chosen,
            }));
            let label = match i {
                0 => lang.pick("Primera preferencia", "First preference"),
                1 => lang.pick("Segunda preferencia", "Second preference"),
                _ => lang.pick("Tercera preferencia", "Third preference"),
            };
            let input = Input {
                options,
                ..Input::text(name, name, label, "")
            };
            if i == 0 {
                input.required(lang)
            } else {
                input.optional(lang)
            }
        })
        .collect()
}

fn form_page_of(
    app: &AppState,
    lang: Lang,
    r: &ReleaseRow,
    form: &FormValues,
) -> Result<FormPage, PageError> {
    let path = format!("/sorteos/{}", enc(&r.id));
    let (first, minors) = person_forms(lang, form)?;
    Ok(FormPage {
        c: Chrome::new(
            lang,
            lang.pick(
                "Solicitar una cita por sorteo",
                "Request an appointment by draw",
            ),
            &path,
            &[],
        ),
        release: release_view(app, lang, r),
        action: path,
        errors: Vec::new(),
        problem: None,
        first,
        minors,
        contact: contact_inputs(lang, form),
        preferences: preference_inputs(app, lang, r, form),
    })
}

async fn release_or_404(app: &AppState, lang: Lang, id: &str) -> Result<ReleaseRow, PageError> {
    app.store.release(id).await.map_err(|e| match e {
        pasaporte_store::StoreError::NotFound => PageError::NotFound(lang),
        other => PageError::unavailable(lang, &other),
    })
}

async fn form_page(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let r = release_or_404(&app, lang, &id).await?;
    let page = form_page_of(&app, lang, &r, &FormValues::new(Vec::new()))?;
    render(StatusCode::OK, lang, &page)
}

/// `slot:OFFICE:DAY` or `city:NAME` from the form into a preference.
fn preference_of(value: &str) -> PreferenceInput {
    match value.split_once(':') {
        Some(("city", city)) => PreferenceInput {
            city: Some(city.into()),
            ..PreferenceInput::default()
        },
        Some(("slot", rest)) => {
            let (office, day) = rest.split_once(':').unwrap_or((rest, ""));
            PreferenceInput {
                office: Some(office.into()),
                day: Some(day.into()),
                city: None,
            }
        }
        _ => PreferenceInput::default(),
    }
}

async fn submit(
    State(app): State<AppState>,
    ReqLang(req_lang): ReqLang,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = FormValues::new(pairs);
    let lang = form.lang(req_lang);
    reject_cross_site(&app, &headers, lang)?;
    let r = release_or_404(&app, lang, &id).await?;
    let (indexes, applicants) = form.people();
    let phone = form.get("phone").trim();
    let input = RequestInput {
        applicants,
        email: form.get("email").to_string(),
        phone: (!phone.is_empty()).then(|| phone.to_string()),
        preferences: PREFERENCE_FIELDS
            .iter()
            .map(|n| form.get(n))
            .filter(|v| !v.is_empty())
            .map(preference_of)
            .collect(),
    };
    let device = headers
        .get("x-device-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("page")
        .to_string();
    let result = fair::submit_request(&app, &id, &input, &device, lang, Timestamp::now()).await;
    let mut page = form_page_of(&app, lang, &r, &form)?;
    let status = match result {
        Ok(done) => {
            let page = MessagePage {
                c: Chrome::new(lang, lang.pick("Revise su correo", "Check your email"), "/sorteos", &[]),
                heading: lang.pick("Revise su correo", "Check your email").into(),
                body: format!(
                    "{} {}",
                    lang.pick(
                        "Recibimos su solicitud. Le enviamos un correo con un enlace: ábralo para confirmar que el correo es suyo; solo entonces la solicitud entra al sorteo. Código de la solicitud:",
                        "We received your request. We sent you an email with a link: open it to confirm the address is yours; only then does the request enter the draw. Request code:",
                    ),
                    done.code
                ),
                home_href: href("/sorteos", &[], lang),
            };
            return render(StatusCode::ACCEPTED, lang, &page);
        }
        Err(BookError::Invalid(errs)) => {
            let (prefs, people): (Vec<_>, Vec<_>) = errs
                .0
                .into_iter()
                .partition(|e| e.field.starts_with("preferences") || e.field == "release");
            for e in prefs {
                let message = lang.pick(e.es, e.en).to_string();
                let n = e
                    .field
                    .strip_prefix("preferences[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0)
                    .min(PREFERENCE_FIELDS.len() - 1);
                if let Some(f) = page.preferences.get_mut(n)
                    && f.error.is_none()
                {
                    f.set_error(&message);
                }
                page.errors.push(ErrView {
                    href: format!("#{}", PREFERENCE_FIELDS[n]),
                    message,
                });
            }
            let mut form_people = PeopleForm {
                first: &mut page.first,
                minors: &mut page.minors,
                contact: &mut page.contact,
                errors: &mut page.errors,
            };
            form_people.set_errors(lang, &FieldErrors(people), &indexes);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(BookError::AlreadyBooked) => {
            page.problem = Some(lang.pick(
                "Una de las personas ya tiene una solicitud o una cita activa. Puede retirarla o cancelarla con el enlace de su correo antes de pedir otra.",
                "One of the people already has an active request or appointment. Withdraw or cancel it with the link in your email before asking for another.",
            ).into());
            StatusCode::CONFLICT
        }
        Err(BookError::RateLimited(wait)) => {
            page.problem = Some(lang.pick(
                "Hay demasiadas solicitudes seguidas para una de estas personas. Espere un rato y vuelva a intentarlo; sus datos siguen aquí.",
                "Too many requests in a row for one of these people. Wait a while and try again; your details are still here.",
            ).into());
            let mut resp = render(StatusCode::TOO_MANY_REQUESTS, lang, &page)?;
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::limits::retry_after_secs(wait)),
            );
            return Ok(resp);
        }
        Err(BookError::UnknownOffice) => return Err(PageError::NotFound(lang)),
        Err(BookError::Unavailable(m)) => return Err(PageError::unavailable(lang, &m)),
        Err(e) => return Err(PageError::internal(lang, &e)),
    };
    render(status, lang, &page)
}

#[derive(Deserialize)]
struct KeyQuery {
    clave: Option<String>,
}

#[derive(Template)]
#[template(path = "solicitud.html")]
struct RequestPage {
    c: Chrome,
    v: RequestView,
    status_text: String,
    notice: Option<String>,
    seat: String,
    deadline: String,
    verify_only: bool,
    key: String,
    code: String,
    booking_href: String,
    release_href: String,
}

fn status_text(lang: Lang, v: &RequestView) -> String {
    match v.status.as_str() {
        "unverified" => lang.pick(
            "Falta confirmar su correo: abra el enlace que le enviamos. Sin esa confirmación la solicitud no entra al sorteo.",
            "Your email is not confirmed yet: open the link we sent you. Without it the request does not enter the draw.",
        ).into(),
        "requested" => lang.pick(
            "Su solicitud está en el sorteo. Le escribiremos con el resultado cuando se cierren las solicitudes.",
            "Your request is in the draw. We will write to you with the result when requests close.",
        ).into(),
        "allocated" => lang.pick("Ganó un cupo: su cita está reservada.", "You won a seat: your appointment is booked.").into(),
        "waitlisted" => format!(
            "{} {}. {}",
            lang.pick("No obtuvo cupo en el sorteo. Su puesto en la lista de espera es el", "You got no seat in the draw. Your place on the waitlist is"),
            v.waitlist_position.unwrap_or(0),
            lang.pick("Si se libera un cupo le escribiremos con un plazo para aceptarlo.", "If a seat comes free we will write to you with a deadline to accept it."),
        ),
        "offered" => lang.pick("Se liberó un cupo para usted. Acéptelo antes del plazo.", "A seat came free for you. Accept it before the deadline.").into(),
        "expired" => lang.pick("Esta solicitud terminó sin cupo (no se confirmó el correo o venció el plazo de una oferta). Puede hacer otra.", "This request ended without a seat (the email was not confirmed or an offer lapsed). You can make another.").into(),
        _ => lang.pick("Retiró esta solicitud.", "You withdrew this request.").into(),
    }
}

fn request_page_of(
    app: &AppState,
    lang: Lang,
    v: RequestView,
    key: &str,
    notice: Option<String>,
    verify_only: bool,
) -> RequestPage {
    let seat = match (&v.office, v.start_ms) {
        (Some(o), Some(ms)) => {
            let name = app
                .office(o)
                .map(|e| e.office.name.clone())
                .unwrap_or(o.clone());
            format!("{name}, {}", when_ms(lang, app, o, ms))
        }
        _ => String::new(),
    };
    let deadline = match (&v.office, v.offer_deadline_ms) {
        (Some(o), Some(ms)) => when_ms(lang, app, o, ms),
        _ => String::new(),
    };
    let code = v.code.clone();
    RequestPage {
        c: Chrome::new(
            lang,
            lang.pick(
                "Su solicitud de cita por sorteo",
                "Your appointment request by draw",
            ),
            &format!("/solicitudes/{}", enc(&code)),
            &[("clave", key)],
        ),
        status_text: status_text(lang, &v),
        booking_href: href(&format!("/citas/{}", enc(&code)), &[("clave", key)], lang),
        release_href: href("/sorteos", &[], lang),
        v,
        notice,
        seat,
        deadline,
        verify_only,
        key: key.to_string(),
        code,
    }
}

fn request_error(lang: Lang, e: crate::workflow::WorkError) -> PageError {
    match e {
        crate::workflow::WorkError::NotFound => PageError::NoBooking(lang),
        crate::workflow::WorkError::Unavailable(m) => PageError::unavailable(lang, &m),
        other => PageError::internal(lang, &other),
    }
}

async fn request_page(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, PageError> {
    let key = q.clave.unwrap_or_default();
    let v = fair::request_view(&app, &code, &key)
        .await
        .map_err(|e| request_error(lang, e))?;
    render(
        StatusCode::OK,
        lang,
        &request_page_of(&app, lang, v, &key, None, false),
    )
}

/// The mail's link opens a page with a button: a mail scanner that follows
/// links proves nothing, the citizen's press does.
async fn verify_page(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Path(code): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, PageError> {
    let key = q.clave.unwrap_or_default();
    let v = fair::request_view(&app, &code, &key)
        .await
        .map_err(|e| request_error(lang, e))?;
    let verify_only = v.status == "unverified";
    render(
        StatusCode::OK,
        lang,
        &request_page_of(&app, lang, v, &key, None, verify_only),
    )
}

/// A button of the request page (verify, accept, withdraw): runs it and
/// shows the page again with what happened, or why not.
async fn act_submit(
    act: RequestAct,
    State(app): State<AppState>,
    ReqLang(req_lang): ReqLang,
    Path(code): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = FormValues::new(pairs);
    let lang = form.lang(req_lang);
    reject_cross_site(&app, &headers, lang)?;
    let key = form.get("clave").to_string();
    let done = match act {
        RequestAct::Verify => lang.pick(
            "Correo confirmado: su solicitud entra al sorteo.",
            "Email confirmed: your request enters the draw.",
        ),
        RequestAct::Accept => lang.pick(
            "Aceptó el cupo: su cita está reservada y le enviamos un correo.",
            "You took the seat: your appointment is booked and we sent you an email.",
        ),
        RequestAct::Withdraw => lang.pick(
            "Retiró la solicitud. Puede reservar o solicitar otra cita.",
            "You withdrew the request. You can book or request another appointment.",
        ),
    };
    let (status, notice) =
        match fair::act_on_request(&app, act, &code, &key, Timestamp::now()).await {
            Ok(_) => (StatusCode::OK, done.to_string()),
            Err(crate::workflow::WorkError::Refused { es, en, .. }) => {
                (StatusCode::CONFLICT, lang.pick(es, en).to_string())
            }
            Err(e) => return Err(request_error(lang, e)),
        };
    let v = fair::request_view(&app, &code, &key)
        .await
        .map_err(|e| request_error(lang, e))?;
    render(
        status,
        lang,
        &request_page_of(&app, lang, v, &key, Some(notice), false),
    )
}

/// The reconfirmation button of the manage page.
async fn confirm_submit(
    State(app): State<AppState>,
    ReqLang(req_lang): ReqLang,
    Path(code): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = FormValues::new(pairs);
    let lang = form.lang(req_lang);
    reject_cross_site(&app, &headers, lang)?;
    let key = form.get("clave").to_string();
    match fair::confirm_booking(&app, &code, &key, Timestamp::now()).await {
        Ok(_) => {
            let to = href(
                &format!("/citas/{}", enc(&code)),
                &[("clave", &key), ("hecho", "confirmada")],
                lang,
            );
            Ok(Redirect::to(&to).into_response())
        }
        Err(crate::workflow::WorkError::Refused { .. }) => Err(PageError::NoBooking(lang)),
        Err(e) => Err(request_error(lang, e)),
    }
}
