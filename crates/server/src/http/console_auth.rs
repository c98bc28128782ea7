//! The console's sign-in pages and the staff session API.
//!
//! Pages (Spanish by default, `?lang=en`; no JavaScript): `GET/POST
//! /console/sign-in`, `POST /console/sign-out`, `GET/POST /console/reauth`,
//! `GET /console` (links to what the role may use). API: `POST/DELETE
//! /api/v1/staff/session`, `POST /api/v1/staff/session/reauth`, `GET
//! /api/v1/staff/me`, `GET /api/v1/staff/authorize?action=&office=`.
//!
//! Layout: routes, then pages, then the API, then [`ConsoleChrome`] (what
//! every console page's `templates/console/base.html` needs; other console
//! pages build one with [`ConsoleChrome::new`] and name it `c`) and the views.
//!
//! Login CSRF: the sign-in form carries a random token that must equal the
//! `pasaporte_sign_in` cookie set with the form (double submit; the cookie is
//! SameSite=Strict), and cross-site posts are refused. The JSON sign-in needs
//! `Content-Type: application/json`, which no cross-site form can send without
//! a CORS preflight, and is refused cross-site too.
//!
//! Floods: the sign-in posts (API, form, re-authentication, both kinds) go
//! through the per-client sign-in rate limit (`http::limit_sign_in`, 429);
//! when every password check is taken they are answered 503 with
//! `Retry-After` at once (JSON on the API, a console page in the request's
//! language otherwise).

use super::routes::{
    ApiRoutes,
    Verb::{Delete, Get, Post},
};
use super::{ApiError, ApiJson, AppState, ClientAddr, ReqLang};
use crate::auth::accounts::{self, Attempt, SignInError};
use crate::auth::session::{self, SIGN_IN_COOKIE};
use crate::auth::{self, AuthRejection, ConsoleForm, StaffSession, StaffWrite, enc, local_next};
use crate::i18n::Lang;
use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use pasaporte_core::application::Role;
use pasaporte_core::policy::{Action, allows};
use serde::{Deserialize, Serialize};
use tower_http::set_header::SetResponseHeaderLayer;

pub fn routes(app: &AppState) -> Router<AppState> {
    // The per-client sign-in limit, on the posts that check a password only
    // (a method router's layer wraps the handlers added before it).
    let limited = || axum::middleware::from_fn_with_state(app.clone(), super::limit_sign_in);
    Router::new()
        .route("/console", get(home))
        .route(
            "/console/sign-in",
            post(sign_in_submit).layer(limited()).get(sign_in_page),
        )
        .route("/console/sign-out", post(sign_out_submit))
        .route(
            "/console/reauth",
            post(reauth_submit).layer(limited()).get(reauth_page),
        )
        // Sessions, CSRF tokens and personal data: nothing here is cacheable.
        .layer(no_store())
}

fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// The staff session API (JSON), with the pages' no-store header.
pub fn api_routes(app: &AppState) -> ApiRoutes {
    let limited = || axum::middleware::from_fn_with_state(app.clone(), super::limit_sign_in);
    ApiRoutes::new()
        .route_with(Post, "/api/v1/staff/session", api_sign_in, |m| {
            m.layer(limited())
        })
        .route(Delete, "/api/v1/staff/session", api_sign_out)
        .route_with(Post, "/api/v1/staff/session/reauth", api_reauth, |m| {
            m.layer(limited())
        })
        .route(Get, "/api/v1/staff/me", api_me)
        .route(Get, "/api/v1/staff/authorize", api_authorize)
        .map(|r| r.layer(no_store()))
}

fn refused_es() -> &'static str {
    "Usuario, contraseña o código incorrectos."
}
fn refused_en() -> &'static str {
    "Wrong username, password or code."
}

fn secure(app: &AppState) -> bool {
    app.public_url.starts_with("https")
}

fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    match HeaderValue::from_str(cookie) {
        Ok(v) => {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
        Err(_) => tracing::error!("a cookie could not be written as a header"),
    }
    resp
}

/// A console page with a heading and one paragraph (errors, refusals).
pub(crate) fn message(status: StatusCode, lang: Lang, title: &str, body: &str) -> Response {
    let page = MessagePage {
        c: ConsoleChrome::new(lang, title, "/console", None),
        body: body.to_string(),
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console message page failed to render");
            (status, body.to_string()).into_response()
        }
    }
}

fn render(status: StatusCode, lang: Lang, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console page failed to render");
            AuthRejection::Internal { api: false, lang }.into_response()
        }
    }
}

fn busy_es() -> &'static str {
    "Hay demasiados inicios de sesión en este momento. Espere un segundo y vuelva a intentarlo."
}
fn busy_en() -> &'static str {
    "Too many sign-ins at this moment. Wait a second and try again."
}

/// The attempt a request makes, for the throttle and the password checks.
fn attempt(app: &AppState, client: ClientAddr) -> Attempt<'_> {
    Attempt {
        checks: &app.limits.sign_in_checks,
        client: client.0,
        now_ms: auth::now_ms(),
    }
}

fn sign_in_failure_page(lang: Lang, e: &SignInError) -> Response {
    match e {
        SignInError::Refused => message(
            StatusCode::UNAUTHORIZED,
            lang,
            lang.pick("Inicio de sesión", "Sign in"),
            lang.pick(refused_es(), refused_en()),
        ),
        SignInError::Busy => {
            let mut resp = message(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                lang.pick("Espere un momento", "Wait a moment"),
                lang.pick(busy_es(), busy_en()),
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(accounts::SIGN_IN_BUSY_RETRY_SECONDS),
            );
            resp
        }
        SignInError::Store(e) => {
            tracing::warn!(error = %e, "storage unavailable during sign-in");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                lang.pick(
                    "El servicio no está disponible",
                    "The service is unavailable",
                ),
                lang.pick(
                    "Intente de nuevo en unos minutos.",
                    "Try again in a few minutes.",
                ),
            )
        }
        SignInError::Internal(e) => {
            tracing::error!(error = %e, "sign-in failed");
            AuthRejection::Internal { api: false, lang }.into_response()
        }
    }
}

fn with_lang(path: &str, lang: Lang) -> String {
    if lang == Lang::Es || path.contains("lang=") {
        return path.to_string();
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}lang=en")
}

// ---------------------------------------------------------------------------
// Pages.

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: String,
    #[serde(default)]
    sign_in_token: String,
}

fn sign_in_view(
    lang: Lang,
    next: &str,
    username: &str,
    error: Option<String>,
    token: &str,
) -> SignInPage {
    let title = lang.pick("Iniciar sesión", "Sign in");
    SignInPage {
        c: ConsoleChrome::new(
            lang,
            title,
            &format!("/console/sign-in?next={}", enc(next)),
            None,
        ),
        heading: title.into(),
        intro: String::new(),
        error,
        first_field: "username".into(),
        action: format!("/console/sign-in?next={}&lang={}", enc(next), lang.code()),
        token_name: "sign_in_token".into(),
        token: token.into(),
        show_username: true,
        username: username.into(),
        submit: lang.pick("Iniciar sesión", "Sign in").into(),
    }
}

async fn sign_in_page(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = local_next(q.next.as_deref());
    let token = match session::new_token() {
        Ok(t) => t,
        Err(e) => return sign_in_failure_page(lang, &SignInError::Internal(e.to_string())),
    };
    let page = sign_in_view(lang, &next, "", None, &token);
    with_cookie(
        render(StatusCode::OK, lang, &page),
        &session::sign_in_cookie(&token, secure(&app)),
    )
}

async fn sign_in_submit(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    client: ClientAddr,
    Query(q): Query<NextQuery>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    if app.cross_site(&headers) || !session::tokens_match(expected, &f.sign_in_token) {
        tracing::warn!("sign-in form without its cookie token, or cross-site, refused");
        return AuthRejection::Csrf { api: false, lang }.into_response();
    }
    let next = local_next(q.next.as_deref());
    match accounts::sign_in(
        &app.store,
        &app.keys,
        attempt(&app, client),
        &f.username,
        &f.password,
        &f.totp,
    )
    .await
    {
        Ok(signed) => with_cookie(
            Redirect::to(&with_lang(&next, lang)).into_response(),
            &session::session_cookie(&signed.token, secure(&app)),
        ),
        Err(SignInError::Refused) => {
            let page = sign_in_view(
                lang,
                &next,
                f.username.trim(),
                Some(lang.pick(refused_es(), refused_en()).into()),
                &f.sign_in_token,
            );
            render(StatusCode::UNAUTHORIZED, lang, &page)
        }
        Err(e) => sign_in_failure_page(lang, &e),
    }
}

#[derive(Deserialize)]
struct NoFields {}

async fn sign_out_submit(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    ConsoleForm { session, .. }: ConsoleForm<NoFields>,
) -> Response {
    if let Err(e) = accounts::sign_out(&app.store, &session).await {
        return sign_in_failure_page(lang, &SignInError::Store(e));
    }
    with_cookie(
        Redirect::to(&with_lang("/console/sign-in", lang)).into_response(),
        &session::clear_session_cookie(secure(&app)),
    )
}

fn reauth_view(lang: Lang, s: &StaffSession, next: &str, error: Option<String>) -> SignInPage {
    let title = lang.pick("Confirme que es usted", "Confirm it is you");
    SignInPage {
        c: ConsoleChrome::new(
            lang,
            title,
            &format!("/console/reauth?next={}", enc(next)),
            Some(s),
        ),
        heading: title.into(),
        intro: lang
            .pick(
                "Esta acción pide su contraseña y un código otra vez, porque inició sesión hace más de 10 minutos.",
                "This action asks for your password and a code again, because you signed in more than 10 minutes ago.",
            )
            .into(),
        error,
        first_field: "password".into(),
        action: format!("/console/reauth?next={}&lang={}", enc(next), lang.code()),
        token_name: "csrf".into(),
        token: s.csrf.clone(),
        show_username: false,
        username: String::new(),
        submit: lang.pick("Continuar", "Continue").into(),
    }
}

async fn reauth_page(
    s: StaffSession,
    ReqLang(lang): ReqLang,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = local_next(q.next.as_deref());
    render(StatusCode::OK, lang, &reauth_view(lang, &s, &next, None))
}

#[derive(Deserialize)]
struct ReauthForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: String,
}

async fn reauth_submit(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    client: ClientAddr,
    Query(q): Query<NextQuery>,
    ConsoleForm { session: s, form }: ConsoleForm<ReauthForm>,
) -> Response {
    let next = local_next(q.next.as_deref());
    match accounts::reauthenticate(
        &app.store,
        &app.keys,
        attempt(&app, client),
        &s,
        &form.password,
        &form.totp,
    )
    .await
    {
        Ok(()) => Redirect::to(&with_lang(&next, lang)).into_response(),
        Err(SignInError::Refused) => render(
            StatusCode::UNAUTHORIZED,
            lang,
            &reauth_view(
                lang,
                &s,
                &next,
                Some(lang.pick(refused_es(), refused_en()).into()),
            ),
        ),
        Err(e) => sign_in_failure_page(lang, &e),
    }
}

async fn home(State(app): State<AppState>, s: StaffSession, ReqLang(lang): ReqLang) -> Response {
    let title = lang.pick("Inicio de la consola", "Console home");
    let mut offices = Vec::new();
    if allows(s.role, Action::ViewOfficeDay) {
        let all = app.offices();
        let codes: Vec<String> = if s.offices.iter().any(|o| o == auth::ALL_OFFICES) {
            all.keys().cloned().collect()
        } else {
            s.offices.clone()
        };
        for code in codes {
            let name = all
                .get(&code)
                .map(|e| format!("{code} · {}", e.office.name))
                .unwrap_or_else(|| code.clone());
            offices.push(NavLink {
                href: format!("/console/office/{}/today?lang={}", enc(&code), lang.code()),
                label: name,
                current: false,
            });
        }
    }
    let c = ConsoleChrome::new(lang, title, "/console", Some(&s));
    let links = c.nav.iter().filter(|n| !n.current).cloned().collect();
    render(StatusCode::OK, lang, &HomePage { c, links, offices })
}

// ---------------------------------------------------------------------------
// The API.

#[derive(Deserialize, utoipa::ToSchema)]
struct SignInBody {
    username: String,
    password: String,
    /// The current code of the person's authenticator (RFC 6238).
    totp: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ReauthBody {
    password: String,
    totp: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct StaffOut {
    id: String,
    username: String,
    #[schema(schema_with = super::openapi::role_enum)]
    role: &'static str,
    /// The offices the person works for (`*`: every office).
    offices: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SessionOut {
    /// Send as `x-csrf-token` with every staff write.
    csrf_token: String,
    staff: StaffOut,
    /// The last sign-in or re-authentication, unix milliseconds.
    authenticated_at_ms: i64,
}

fn session_out(s: &StaffSession) -> SessionOut {
    SessionOut {
        csrf_token: s.csrf.clone(),
        staff: StaffOut {
            id: s.staff_id.clone(),
            username: s.username.clone(),
            role: s.role.as_str(),
            offices: s.offices.clone(),
        },
        authenticated_at_ms: s.authenticated_at_ms,
    }
}

fn api_sign_in_error(lang: Lang, e: SignInError) -> Response {
    match e {
        SignInError::Refused => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "sign_in_failed",
            lang,
            refused_es(),
            refused_en(),
        )
        .into_response(),
        SignInError::Busy => {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "sign_in_busy",
                lang,
                busy_es(),
                busy_en(),
            );
            e.retry_after = Some(accounts::SIGN_IN_BUSY_RETRY_SECONDS);
            e.into_response()
        }
        SignInError::Store(e) => ApiError::unavailable(lang, &e).into_response(),
        SignInError::Internal(e) => ApiError::internal(lang, &e).into_response(),
    }
}

/// Signs in: the session cookie is set; its CSRF token is in the body.
#[utoipa::path(
    post,
    path = "/api/v1/staff/session",
    tag = "staff",
    request_body = SignInBody,
    security(()),
    responses(
        (status = 200, body = SessionOut, headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, body = super::ErrorBody, description = "`sign_in_failed`: wrong username, password or code"),
        (status = 403, body = super::ErrorBody, description = "`csrf_failed`: a cross-site request"),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn api_sign_in(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    client: ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignInBody>,
) -> Response {
    if app.cross_site(&headers) {
        return AuthRejection::Csrf { api: true, lang }.into_response();
    }
    match accounts::sign_in(
        &app.store,
        &app.keys,
        attempt(&app, client),
        &body.username,
        &body.password,
        &body.totp,
    )
    .await
    {
        Ok(signed) => with_cookie(
            axum::Json(session_out(&signed.session)).into_response(),
            &session::session_cookie(&signed.token, secure(&app)),
        ),
        Err(e) => api_sign_in_error(lang, e),
    }
}

/// Signs out: the session ends and its cookie is cleared.
#[utoipa::path(
    delete,
    path = "/api/v1/staff/session",
    tag = "staff",
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn api_sign_out(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    StaffWrite(s): StaffWrite,
) -> Response {
    match accounts::sign_out(&app.store, &s).await {
        Ok(()) => with_cookie(
            StatusCode::NO_CONTENT.into_response(),
            &session::clear_session_cookie(secure(&app)),
        ),
        Err(e) => ApiError::unavailable(lang, &e).into_response(),
    }
}

/// Signs in again within the session, for decisions that ask for a recent
/// sign-in.
#[utoipa::path(
    post,
    path = "/api/v1/staff/session/reauth",
    tag = "staff",
    request_body = ReauthBody,
    security(("staff_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, body = SessionOut),
        (status = 400, response = super::openapi::BadJson),
        (status = 401, body = super::ErrorBody, description = "`unauthenticated`, or `sign_in_failed`: wrong password or code"),
        (status = 403, response = super::openapi::Forbidden),
        (status = 413, response = super::openapi::TooLarge),
        (status = 415, response = super::openapi::UnsupportedMediaType),
        (status = 422, response = super::openapi::Invalid),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn api_reauth(
    State(app): State<AppState>,
    ReqLang(lang): ReqLang,
    client: ClientAddr,
    StaffWrite(s): StaffWrite,
    ApiJson(body): ApiJson<ReauthBody>,
) -> Response {
    let attempt = attempt(&app, client);
    let now = attempt.now_ms;
    match accounts::reauthenticate(
        &app.store,
        &app.keys,
        attempt,
        &s,
        &body.password,
        &body.totp,
    )
    .await
    {
        Ok(()) => {
            let mut out = session_out(&s);
            out.authenticated_at_ms = now;
            axum::Json(out).into_response()
        }
        Err(e) => api_sign_in_error(lang, e),
    }
}

/// The signed-in person and the session's CSRF token.
#[utoipa::path(
    get,
    path = "/api/v1/staff/me",
    tag = "staff",
    security(("staff_session" = [])),
    responses(
        (status = 200, body = SessionOut),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn api_me(s: StaffSession) -> Response {
    axum::Json(session_out(&s)).into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuthorizeQuery {
    /// The action of the policy table.
    #[param(schema_with = super::openapi::action_enum)]
    action: String,
    /// The office it would be done in.
    office: Option<String>,
}

/// 204 when the signed-in person may do `action` (in `office`) now; else the
/// refusal the action's route would give. For clients deciding what to show.
#[utoipa::path(
    get,
    path = "/api/v1/staff/authorize",
    tag = "staff",
    params(AuthorizeQuery),
    security(("staff_session" = [])),
    responses(
        (status = 204, description = "Allowed now"),
        (status = 401, response = super::openapi::Unauthenticated),
        (status = 403, response = super::openapi::Forbidden),
        (status = 422, body = super::ErrorBody, description = "`unknown_action`"),
        (status = 503, response = super::openapi::Unavailable),
    )
)]
async fn api_authorize(
    s: StaffSession,
    ReqLang(lang): ReqLang,
    uri: Uri,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let Some(action) = Action::ALL.into_iter().find(|a| a.as_str() == q.action) else {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_action",
            lang,
            "Acción desconocida.",
            "Unknown action.",
        )
        .into_response();
    };
    match s.require(action, q.office.as_deref(), &uri, lang) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    }
}

// ---------------------------------------------------------------------------
// What console pages share, and the views.

/// The signed-in person as the header shows them, with the sign-out form's token.
#[derive(Clone, Debug)]
pub struct StaffBar {
    pub username: String,
    pub role_label: String,
    pub csrf: String,
}

#[derive(Clone, Debug)]
pub struct NavLink {
    pub href: String,
    pub label: String,
    /// This page: marked `aria-current="page"`.
    pub current: bool,
}

/// What `templates/console/base.html` needs: language, title, the language
/// switch, who is signed in (with the sign-out form) and the sections the role
/// may use. Console page structs hold one as `c`.
#[derive(Clone, Debug)]
pub struct ConsoleChrome {
    pub lang: Lang,
    pub title: String,
    pub switch_href: String,
    pub switch_label: &'static str,
    pub switch_lang: &'static str,
    pub staff: Option<StaffBar>,
    pub nav: Vec<NavLink>,
}

/// A role's name for people.
pub fn role_label(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Clerk => lang.pick("Funcionario de atención", "Clerk"),
        Role::Supervisor => lang.pick("Supervisor", "Supervisor"),
        Role::Administrator => lang.pick("Administrador", "Administrator"),
        Role::Auditor => lang.pick("Auditor", "Auditor"),
        Role::Citizen => lang.pick("Ciudadano", "Citizen"),
        Role::System => lang.pick("Sistema", "System"),
    }
}

impl ConsoleChrome {
    /// `path` is this page's path and query without `lang` (for the switch
    /// and to mark the current section).
    pub fn new(lang: Lang, title: &str, path: &str, session: Option<&StaffSession>) -> Self {
        let to = match lang {
            Lang::Es => Lang::En,
            Lang::En => Lang::Es,
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let here = path.split('?').next().unwrap_or(path);
        let nav = session
            .map(|s| {
                let sections: [(&str, Option<Action>, &str, &str); 8] = [
                    ("/console", None, "Inicio", "Home"),
                    (
                        "/console/supervisor",
                        Some(Action::ViewSupervisorQueues),
                        "Supervisión",
                        "Supervision",
                    ),
                    (
                        "/console/reconciliation",
                        Some(Action::ViewReconciliation),
                        "Conciliación",
                        "Reconciliation",
                    ),
                    (
                        "/console/stock",
                        Some(Action::ViewStock),
                        "Existencias",
                        "Stock",
                    ),
                    (
                        "/console/production",
                        Some(Action::ViewProduction),
                        "Producción",
                        "Production",
                    ),
                    (
                        "/console/releases",
                        Some(Action::ManageReleases),
                        "Sorteos",
                        "Draws",
                    ),
                    (
                        "/console/audit",
                        Some(Action::ViewAudit),
                        "Auditoría",
                        "Audit trail",
                    ),
                    (
                        "/console/staff",
                        Some(Action::ManageStaff),
                        "Personal",
                        "Staff",
                    ),
                ];
                sections
                    .into_iter()
                    .filter(|(_, a, _, _)| a.is_none_or(|a| allows(s.role, a)))
                    .map(|(href, _, es, en)| NavLink {
                        href: format!("{href}?lang={}", lang.code()),
                        label: lang.pick(es, en).to_string(),
                        current: here == href,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            lang,
            title: title.to_string(),
            switch_href: format!("{path}{sep}lang={}", to.code()),
            switch_label: to.pick("Español", "English"),
            switch_lang: to.code(),
            staff: session.map(|s| StaffBar {
                username: s.username.clone(),
                role_label: role_label(lang, s.role).to_string(),
                csrf: s.csrf.clone(),
            }),
            nav,
        }
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    c: ConsoleChrome,
    heading: String,
    intro: String,
    error: Option<String>,
    first_field: String,
    action: String,
    token_name: String,
    token: String,
    show_username: bool,
    username: String,
    submit: String,
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    c: ConsoleChrome,
    links: Vec<NavLink>,
    offices: Vec<NavLink>,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    c: ConsoleChrome,
    body: String,
}
