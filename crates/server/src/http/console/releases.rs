//! The supervisors' ballot page (`/console/releases`): the releases with
//! their demand, a form to open one, the draw button once requests have
//! closed, and each release's scalper signals (looked at, never acted on
//! automatically). A child of `console`: it shares its session, forms and
//! error pages.

use super::*;
use crate::ballot::{self as fair, ReleaseInput};

pub struct ReleaseLine {
    pub id: String,
    pub city: String,
    pub days: String,
    pub offices: String,
    pub state: String,
    pub closes: String,
    pub demand: String,
    pub commitment: String,
    pub draw_action: Option<String>,
    pub signals: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/releases.html")]
struct ReleasesPage {
    c: ConsoleChrome,
    notice: Option<String>,
    errors: Vec<ErrorItem>,
    releases: Vec<ReleaseLine>,
    cities: Vec<Opt>,
    may_manage: bool,
    csrf: String,
    form: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
pub struct ReleasesQuery {
    done: Option<String>,
}

pub async fn page(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    s: StaffSession,
    uri: Uri,
    Query(q): Query<ReleasesQuery>,
) -> Response {
    if let Err(r) = s.require(Action::ManageReleases, None, &uri, lang) {
        return r.into_response();
    }
    let notice = q.done.as_deref().map(|d| match d {
        "opened" => lang
            .pick(
                "Sorteo abierto: el compromiso de la semilla ya está publicado.",
                "Release opened: the seed's commitment is published.",
            )
            .to_string(),
        _ => lang
            .pick(
                "Sorteo hecho: la semilla y los archivos están publicados.",
                "Draw done: the seed and the files are published.",
            )
            .to_string(),
    });
    releases_page(
        &app,
        &s,
        lang,
        notice,
        Vec::new(),
        HashMap::new(),
        StatusCode::OK,
    )
    .await
}

async fn releases_page(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    notice: Option<String>,
    errors: Vec<ErrorItem>,
    form: HashMap<String, String>,
    status: StatusCode,
) -> Response {
    let rows = match app.store.releases().await {
        Ok(r) => r,
        Err(e) => return store_failure(lang, e),
    };
    let may_manage = allows(s.role, Action::ManageReleases);
    let may_see_signals = allows(s.role, Action::ViewScalperSignals);
    let now_ms = Timestamp::now().as_millisecond();
    let mut releases = Vec::with_capacity(rows.len());
    // Releases of other offices are not this person's to draw or watch.
    for r in rows.iter().filter(|r| fair::release_in_scope(r, &Scope(s))) {
        let counts = match app.store.request_counts(&r.id).await {
            Ok(c) => c,
            Err(e) => return store_failure(lang, e),
        };
        let signals = if may_see_signals {
            match fair::signals(app, &Scope(s), &r.id).await {
                Ok(list) => list
                    .iter()
                    .map(|g| {
                        format!(
                            "{} {} · {} {}",
                            match (g.kind.as_str(), lang) {
                                ("device", Lang::Es) => "dispositivo",
                                ("device", Lang::En) => "device",
                                (_, Lang::Es) => "teléfono",
                                (_, Lang::En) => "phone",
                            },
                            g.key_prefix,
                            g.requests,
                            lang.pick("solicitudes", "requests"),
                        )
                    })
                    .collect(),
                Err(e) => return page_failure(lang, e),
            }
        } else {
            Vec::new()
        };
        let closes = Timestamp::from_millisecond(r.close_ms)
            .ok()
            .zip(r.offices.first().and_then(|o| app.office(o)))
            .map(|(t, e)| crate::i18n::local_when(lang, &e.office, t))
            .unwrap_or_default();
        releases.push(ReleaseLine {
            id: r.id.clone(),
            city: r.city.clone(),
            days: format!("{} – {}", r.first_day, r.last_day),
            offices: r.offices.join(", "),
            state: r.state.clone(),
            closes,
            demand: counts
                .iter()
                .map(|(st, n)| format!("{st}: {n}"))
                .collect::<Vec<_>>()
                .join(" · "),
            commitment: r.commitment.clone(),
            draw_action: (may_manage && r.state == "open" && r.close_ms <= now_ms)
                .then(|| format!("/console/releases/{}/draw?lang={}", r.id, lang.code())),
            signals,
        });
    }
    let mut cities: Vec<String> = app
        .offices()
        .values()
        .filter(|e| s.may_use_office(&e.office.code))
        .map(|e| e.office.city.clone())
        .collect();
    cities.sort();
    cities.dedup();
    let chosen = value(&form, "city");
    let title = lang.pick("Sorteos de citas", "Appointment draws");
    let page = ReleasesPage {
        c: ConsoleChrome::new(lang, title, "/console/releases", Some(s)),
        notice,
        errors,
        releases,
        cities: cities
            .into_iter()
            .map(|c| Opt {
                selected: c == chosen,
                label: c.clone(),
                value: c,
            })
            .collect(),
        may_manage,
        csrf: s.csrf.clone(),
        form,
    };
    render(status, lang, &page)
}

fn page_failure(lang: Lang, e: WorkError) -> Response {
    match failure(lang, e) {
        Failure::Page(r) => r,
        Failure::Fix(..) => internal_page(lang),
    }
}

async fn again(
    app: &crate::app::App,
    s: &StaffSession,
    lang: Lang,
    form: HashMap<String, String>,
    e: WorkError,
) -> Response {
    match failure(lang, e) {
        Failure::Page(r) => r,
        Failure::Fix(status, problems) => {
            let errors = problems
                .into_iter()
                .map(|p| ErrorItem {
                    href: format!("#{}", p.field.as_deref().unwrap_or("open-h")),
                    message: p.message,
                })
                .collect();
            releases_page(app, s, lang, None, errors, form, status).await
        }
    }
}

pub async fn open(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    uri: Uri,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::ManageReleases, None, &page_of(&uri, lang), lang) {
        return r.into_response();
    }
    let input = ReleaseInput {
        city: value(&form, "city"),
        first_day: value(&form, "first_day"),
        last_day: value(&form, "last_day"),
        requests_close_at: value(&form, "requests_close_at"),
        offices: None,
    };
    match fair::open_release(&app, &s.actor(), &Scope(&s), &input, Timestamp::now()).await {
        Ok(_) => see_other(&format!(
            "/console/releases?lang={}&done=opened",
            lang.code()
        )),
        Err(e) => again(&app, &s, lang, form, e).await,
    }
}

pub async fn draw(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    uri: Uri,
    Path(id): Path<String>,
    ConsoleForm { session: s, form }: ConsoleForm<HashMap<String, String>>,
) -> Response {
    if let Err(r) = s.require(Action::ManageReleases, None, &page_of(&uri, lang), lang) {
        return r.into_response();
    }
    match fair::draw_release(&app, &s.actor(), &Scope(&s), &id, Timestamp::now()).await {
        Ok(_) => see_other(&format!(
            "/console/releases?lang={}&done=drawn",
            lang.code()
        )),
        Err(e) => again(&app, &s, lang, form, e).await,
    }
}
