//! Staff sign-in: accounts, password + TOTP in one step, sessions, CSRF,
//! lock-out and re-authentication, and the extractors every console page and
//! staff API handler starts with.
//!
//! Layout: `accounts.rs` the use cases (`create_staff`, `sign_in`,
//! `reauthenticate`, `sign_out`, `session_for_token`) and the throttle;
//! `password.rs` the password policy and Argon2id; `totp.rs` RFC 6238 codes;
//! `refusals.rs` refusals and failed sign-ins logged and counted (`GET /metrics`);
//! `session.rs` tokens and cookies; `cli.rs` `pasaporte staff add|list`; this
//! file the extractors ([`StaffSession`], [`ConsoleForm`], [`StaffWrite`]) and
//! [`Denied`]. The pages and `/api/v1/staff/...` routes are in
//! `http/console_auth.rs`.
//!
//! # Using it
//!
//! A console page reads the session and asks the policy:
//!
//! ```ignore
//! async fn today(s: StaffSession, ReqLang(lang): ReqLang, uri: Uri, Path(code): Path<String>)
//!     -> Result<Response, Response> {
//!     s.require(Action::ViewOfficeDay, Some(&code), &uri, lang)?; // 403 page or redirect to reauth
//!     ...
//! }
//! ```
//!
//! A console form that changes something uses [`ConsoleForm`]: it refuses
//! (403) a cross-site post or a missing or wrong `csrf` field before the
//! handler runs. Templates put the token in the form:
//! `<input type="hidden" name="csrf" value="{{ c.csrf() }}">` (or the
//! session's `csrf` field). `T` need not declare `csrf` (but must not use
//! `deny_unknown_fields`).
//!
//! ```ignore
//! async fn check_in(ConsoleForm { session, form }: ConsoleForm<CheckInForm>, ...) { ... }
//! ```
//!
//! A JSON API handler that changes something takes [`StaffWrite`]: on POST,
//! PUT, PATCH and DELETE it wants the header `x-csrf-token` equal to the
//! `csrf_token` the sign-in answer (or `GET /api/v1/staff/me`) gave, and a
//! same-site request. Without a session, API paths answer 401
//! `unauthenticated` JSON and pages redirect (303) to
//! `/console/sign-in?next=<path>`.
//!
//! ```ignore
//! async fn decide(StaffWrite(s): StaffWrite, ReqLang(lang): ReqLang, uri: Uri, ...) -> Result<Response, Response> {
//!     s.require(Action::Decide, Some(&office), &uri, lang)?; // 403 forbidden / 401 reauthentication_required
//!     ...
//! }
//! ```

pub mod accounts;
pub mod cli;
mod cross_site;
pub mod password;
pub mod refusals;
pub mod session;
pub mod totp;

pub use accounts::{
    CreateStaffError, CreatedStaff, NewStaff, SignInError, SignedIn, create_staff,
    parse_staff_role, parse_username,
};
pub use cross_site::{cross_site, origin_of};

use crate::http::{ApiError, AppState, BODY_BYTES_MAX, ReqLang};
use crate::i18n::Lang;
use axum::body::Body;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use pasaporte_core::application::{Actor, Role};
use pasaporte_core::policy::{Action, FRESH_SIGN_IN_MINUTES, allows};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The office code that stands for every office.
pub const ALL_OFFICES: &str = "*";

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    pasaporte_core::jiff::Timestamp::now().as_millisecond()
}

/// The signed-in staff member. Extract it in any handler of the console or
/// the staff API; see the module doc for what happens without a session.
#[derive(Clone, Debug)]
pub struct StaffSession {
    pub staff_id: String,
    pub username: String,
    pub role: Role,
    /// Office codes; `*` is every office.
    pub offices: Vec<String>,
    /// The session's CSRF token: hidden `csrf` field in forms, `x-csrf-token`
    /// header in the API.
    pub csrf: String,
    /// The last time the password and a code were entered.
    pub authenticated_at_ms: i64,
    pub(crate) token_hash: String,
}

/// Why the policy said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The role may not do this, or not in this office.
    Forbidden,
    /// Allowed, but the password must be entered again first.
    NeedsFreshSignIn,
}

impl StaffSession {
    /// Whether this person works for `office` (or for every office).
    pub fn may_use_office(&self, office: &str) -> bool {
        self.offices
            .iter()
            .any(|o| o == ALL_OFFICES || o.eq_ignore_ascii_case(office))
    }

    /// [`may_use_office`](Self::may_use_office) for a check that refuses
    /// the request (an object or a named office outside the assignment,
    /// answered like an unknown one): a refusal is logged and counted.
    pub fn covers(&self, office: &str) -> bool {
        let ok = self.may_use_office(office);
        if !ok {
            refusals::record(&self.staff_id, Some(office), refusals::RefusalKind::Object);
        }
        ok
    }

    /// Asks the policy table: the role, the office when the action is
    /// office-scoped and one is named, and a fresh sign-in for the actions
    /// that need one. A forbidden request is logged and counted
    /// ([`refusals::record`]); one that only needs a fresh sign-in is not a
    /// refusal.
    pub fn authorize(
        &self,
        action: Action,
        office: Option<&str>,
        now_ms: i64,
    ) -> Result<(), Denied> {
        if !allows(self.role, action) {
            refusals::record(&self.staff_id, office, refusals::RefusalKind::Role);
            return Err(Denied::Forbidden);
        }
        if action.is_office_scoped()
            && let Some(o) = office
            && !self.may_use_office(o)
        {
            refusals::record(&self.staff_id, Some(o), refusals::RefusalKind::Office);
            return Err(Denied::Forbidden);
        }
        if action.needs_fresh_sign_in()
            && now_ms - self.authenticated_at_ms > FRESH_SIGN_IN_MINUTES * 60_000
        {
            return Err(Denied::NeedsFreshSignIn);
        }
        Ok(())
    }

    /// [`authorize`](Self::authorize) now, with the refusal ready to answer
    /// `uri` (JSON under `/api`, else a page or a redirect). A [`Refusal`] is
    /// `IntoResponse` and converts into `Response`, so `?` works in handlers
    /// returning `Result<_, Response>`.
    pub fn require(
        &self,
        action: Action,
        office: Option<&str>,
        uri: &Uri,
        lang: Lang,
    ) -> Result<(), Refusal> {
        self.authorize(action, office, now_ms())
            .map_err(|denied| Refusal {
                denied,
                uri: uri.clone(),
                lang,
            })
    }

    /// Who acts, for the application state machine and the audit trail.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.staff_id.clone(),
            role: self.role,
        }
    }
}

fn is_api(uri: &Uri) -> bool {
    uri.path() == "/api" || uri.path().starts_with("/api/")
}

/// The path and query, if it is a console path to come back to.
pub fn local_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == "/console" || n.starts_with("/console/") || n.starts_with("/console?"))
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n.to_string()
        }
        _ => "/console".to_string(),
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved kept).
pub fn enc(s: &str) -> String {
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

fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string())
}

/// A [`Denied`] with what it takes to answer it; see [`denied_response`].
#[derive(Debug)]
pub struct Refusal {
    pub denied: Denied,
    pub uri: Uri,
    pub lang: Lang,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        denied_response(self.denied, &self.uri, self.lang)
    }
}

impl From<Refusal> for Response {
    fn from(r: Refusal) -> Response {
        r.into_response()
    }
}

/// The response for a refusal: API → 403 `forbidden` or 401
/// `reauthentication_required`; pages → a 403 page or a redirect to
/// `/console/reauth?next=<this page>`.
pub fn denied_response(denied: Denied, uri: &Uri, lang: Lang) -> Response {
    match (denied, is_api(uri)) {
        (Denied::Forbidden, true) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            lang,
            "Su función no permite esta acción o esta oficina.",
            "Your role does not allow this action or this office.",
        )
        .into_response(),
        (Denied::NeedsFreshSignIn, true) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "reauthentication_required",
            lang,
            "Esta acción pide su contraseña y un código otra vez: POST /api/v1/staff/session/reauth.",
            "This action asks for your password and a code again: POST /api/v1/staff/session/reauth.",
        )
        .into_response(),
        (Denied::Forbidden, false) => crate::http::console_auth::message(
            StatusCode::FORBIDDEN,
            lang,
            lang.pick("No tiene permiso", "Not allowed"),
            lang.pick(
                "Su función no permite esta acción o esta oficina. Si cree que debería poder, hable con la administración del sistema.",
                "Your role does not allow this action or this office. If you think it should, ask the system administrators.",
            ),
        ),
        (Denied::NeedsFreshSignIn, false) => Redirect::to(&format!(
            "/console/reauth?next={}&lang={}",
            enc(&path_and_query(uri)),
            lang.code()
        ))
        .into_response(),
    }
}

/// Why a request did not get past the session or CSRF checks.
#[derive(Debug)]
pub enum AuthRejection {
    /// No valid session: 401 JSON or a redirect to the sign-in page.
    Unauthenticated {
        api: bool,
        lang: Lang,
        next: String,
    },
    /// Missing or wrong CSRF token, or a cross-site request: 403.
    Csrf {
        api: bool,
        lang: Lang,
    },
    /// The form's body could not be read into the expected fields: 400.
    BadForm {
        lang: Lang,
    },
    Internal {
        api: bool,
        lang: Lang,
    },
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Unauthenticated { api: true, lang, .. } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                lang,
                "Inicie sesión: POST /api/v1/staff/session.",
                "Sign in first: POST /api/v1/staff/session.",
            )
            .into_response(),
            AuthRejection::Unauthenticated {
                api: false,
                lang,
                next,
            } => {
                let mut to = format!("/console/sign-in?next={}", enc(&next));
                if lang == Lang::En {
                    to.push_str("&lang=en");
                }
                Redirect::to(&to).into_response()
            }
            AuthRejection::Csrf { api: true, lang } => ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                lang,
                "Falta el encabezado x-csrf-token de su sesión, no coincide, o la petición viene de otro sitio.",
                "The x-csrf-token header of your session is missing or wrong, or the request came from another site.",
            )
            .into_response(),
            AuthRejection::Csrf { api: false, lang } => crate::http::console_auth::message(
                StatusCode::FORBIDDEN,
                lang,
                lang.pick("No pudimos aceptar el envío", "We could not accept this request"),
                lang.pick(
                    "El formulario no venía de esta página o caducó. Vuelva a la página anterior, recárguela y envíelo de nuevo.",
                    "The form did not come from this page or it expired. Go back, reload the page and send it again.",
                ),
            ),
            AuthRejection::BadForm { lang } => crate::http::console_auth::message(
                StatusCode::BAD_REQUEST,
                lang,
                lang.pick("Formulario incompleto", "Incomplete form"),
                lang.pick(
                    "Faltan campos o tienen un formato incorrecto. Vuelva a la página anterior y revíselos.",
                    "Fields are missing or malformed. Go back and check them.",
                ),
            ),
            AuthRejection::Internal { api: true, lang } => {
                ApiError::internal(lang, &"staff session lookup failed").into_response()
            }
            AuthRejection::Internal { api: false, lang } => crate::http::console_auth::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                lang,
                lang.pick("Ocurrió un problema", "Something went wrong"),
                lang.pick("Intente de nuevo en unos minutos.", "Try again in a few minutes."),
            ),
        }
    }
}

async fn lang_of(parts: &mut Parts) -> Lang {
    match ReqLang::from_request_parts(parts, &()).await {
        Ok(ReqLang(l)) => l,
        Err(never) => match never {},
    }
}

impl FromRequestParts<AppState> for StaffSession {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(s) = parts.extensions.get::<StaffSession>() {
            return Ok(s.clone());
        }
        let lang = lang_of(parts).await;
        let api = is_api(&parts.uri);
        let unauthenticated = || AuthRejection::Unauthenticated {
            api,
            lang,
            next: path_and_query(&parts.uri),
        };
        let Some(token) = session::cookie(&parts.headers, session::SESSION_COOKIE) else {
            return Err(unauthenticated());
        };
        match accounts::session_for_token(&app.store, token, now_ms()).await {
            Ok(Some(s)) => {
                parts.extensions.insert(s.clone());
                Ok(s)
            }
            Ok(None) => Err(unauthenticated()),
            Err(e) => {
                tracing::warn!(error = %e, "staff session lookup failed");
                Err(AuthRejection::Internal { api, lang })
            }
        }
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

/// Reads an urlencoded body into `T` (axum's `Form` on a copy of the bytes).
async fn parse_form<T: DeserializeOwned>(bytes: &axum::body::Bytes) -> Option<T> {
    let req = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(bytes.clone()))
        .ok()?;
    Form::<T>::from_request(req, &())
        .await
        .ok()
        .map(|Form(t)| t)
}

/// A console form post from the signed-in person: the session, and the form
/// `T`, only if the `csrf` field matches the session's token and the request
/// is not cross-site (else 403 before the handler runs).
pub struct ConsoleForm<T> {
    pub session: StaffSession,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for ConsoleForm<T> {
    type Rejection = AuthRejection;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = StaffSession::from_request_parts(&mut parts, app).await?;
        let lang = lang_of(&mut parts).await;
        let api = is_api(&parts.uri);
        if app.cross_site(&parts.headers) {
            tracing::warn!(staff_id = %session.staff_id, "cross-site console form refused");
            return Err(AuthRejection::Csrf { api, lang });
        }
        let bytes = axum::body::to_bytes(body, BODY_BYTES_MAX)
            .await
            .map_err(|_| AuthRejection::BadForm { lang })?;
        let given = parse_form::<CsrfOnly>(&bytes).await.and_then(|c| c.csrf);
        if !given.is_some_and(|g| session::tokens_match(&session.csrf, &g)) {
            tracing::warn!(staff_id = %session.staff_id, "console form without a valid csrf token refused");
            return Err(AuthRejection::Csrf { api, lang });
        }
        let form = parse_form::<T>(&bytes)
            .await
            .ok_or(AuthRejection::BadForm { lang })?;
        Ok(ConsoleForm { session, form })
    }
}

/// The session of a staff API request that may change something: on POST,
/// PUT, PATCH and DELETE, the header `x-csrf-token` must match and the request
/// must not be cross-site (else 403 `csrf_failed`). GET and HEAD pass.
pub struct StaffWrite(pub StaffSession);

impl FromRequestParts<AppState> for StaffWrite {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = StaffSession::from_request_parts(parts, app).await?;
        let changes = matches!(
            parts.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if changes {
            let lang = lang_of(parts).await;
            let api = is_api(&parts.uri);
            let header_ok = parts
                .headers
                .get(session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| session::tokens_match(&session.csrf, v));
            if !header_ok || app.cross_site(&parts.headers) {
                tracing::warn!(staff_id = %session.staff_id, "staff API write without a valid csrf token refused");
                return Err(AuthRejection::Csrf { api, lang });
            }
        }
        Ok(StaffWrite(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(role: Role, offices: &[&str], authenticated_at_ms: i64) -> StaffSession {
        StaffSession {
            staff_id: "s".into(),
            username: "u".into(),
            role,
            offices: offices.iter().map(|s| s.to_string()).collect(),
            csrf: "c".into(),
            authenticated_at_ms,
            token_hash: "h".into(),
        }
    }

    #[test]
    fn authorize_follows_the_table_offices_and_freshness() {
        let min = 60_000;
        let clerk = session(Role::Clerk, &["BOG"], 0);
        assert_eq!(clerk.authorize(Action::CheckIn, Some("BOG"), 0), Ok(()));
        assert_eq!(clerk.authorize(Action::CheckIn, Some("bog"), 0), Ok(()));
        assert_eq!(
            clerk.authorize(Action::CheckIn, Some("MED"), 0),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            clerk.authorize(Action::Decide, Some("BOG"), 0),
            Err(Denied::Forbidden)
        );
        let sup = session(Role::Supervisor, &["*"], 0);
        assert_eq!(sup.authorize(Action::Decide, Some("MED"), 10 * min), Ok(()));
        assert_eq!(
            sup.authorize(Action::Decide, Some("MED"), 10 * min + 1),
            Err(Denied::NeedsFreshSignIn)
        );
        assert_eq!(
            sup.authorize(Action::CheckIn, Some("MED"), 100 * min),
            Ok(())
        );
        let admin = session(Role::Administrator, &[], 0);
        assert_eq!(admin.authorize(Action::ManageStaff, None, 0), Ok(()));
        assert_eq!(
            admin.authorize(Action::ViewAudit, Some("X"), 0),
            Ok(()),
            "not scoped"
        );
        assert_eq!(
            sup.actor(),
            Actor {
                id: "s".into(),
                role: Role::Supervisor
            }
        );
    }

    #[test]
    fn refusals_answer_pages_and_api_differently() {
        let page: Uri = "/console/supervisor?x=1"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let api: Uri = "/api/v1/x".parse().unwrap_or_else(|_| unreachable!());
        let r = denied_response(Denied::NeedsFreshSignIn, &page, Lang::Es);
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[header::LOCATION],
            "/console/reauth?next=%2Fconsole%2Fsupervisor%3Fx%3D1&lang=es"
        );
        assert_eq!(
            denied_response(Denied::Forbidden, &page, Lang::Es).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            denied_response(Denied::NeedsFreshSignIn, &api, Lang::Es).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            denied_response(Denied::Forbidden, &api, Lang::Es).status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(local_next(Some("/console/audit?x=1")), "/console/audit?x=1");
        assert_eq!(local_next(Some("https://evil.example/console")), "/console");
        assert_eq!(local_next(Some("//evil.example/console")), "/console");
        assert_eq!(local_next(Some("/console//evil")), "/console");
        assert_eq!(local_next(Some("/consolex")), "/console");
        assert_eq!(local_next(None), "/console");
    }
}
