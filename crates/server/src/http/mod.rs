//! HTTP: thin handlers that extract, call one use case and render JSON
//! ([`api`]) or a page (`pages`). Only this module knows JSON and HTML.
//!
//! Layout: `mod.rs` builds the router and holds what handlers share (the error
//! type, the JSON extractor, the language); `api.rs` is `/api/v1` with its
//! OpenAPI document; `pages.rs` the citizen pages.

pub mod api;
pub mod ballot_api;
pub mod client_ip;
pub mod console;
pub mod console_auth;
pub mod openapi;
pub mod pages;
pub mod production_api;
pub mod routes;
pub mod staff_api;

use crate::app::App;
use crate::i18n::Lang;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pasaporte_core::FieldErrors;
use pasaporte_core::policy::Action;
use routes::{ApiRoutes, Verb};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

/// Largest request body: a booking for five people is about 2 KiB.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

pub type AppState = Arc<App>;

/// Sent with every response (pages, console, API). Pages run no script
/// and load nothing from another origin: images are the service's own or
/// `data:` (the console's portraits), styles are the templates' own
/// `<style>` blocks and a few `style` attributes (hence `'unsafe-inline'`,
/// harmless without script: `img-src` and `default-src` leave an injected
/// style no way to send anything out). Forms post only here, no page may be
/// framed (clickjacking on the console's buttons), no `<base>` may move
/// relative links.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The JSON API and the health checks: every route the OpenAPI document
/// describes, with its table (see [`routes`]).
pub fn api_routes(app: &AppState) -> ApiRoutes {
    api::routes()
        .merge(ballot_api::routes())
        .map(|r| {
            r.route_layer(axum::middleware::from_fn_with_state(
                app.clone(),
                limit_client,
            ))
        })
        .merge(console_auth::api_routes(app))
        .merge(staff_api::routes(app))
        .route(Verb::Get, "/healthz", healthz)
        .route(Verb::Get, "/readyz", readyz)
}

/// The whole service.
pub fn router(app: AppState) -> Router {
    Router::new()
        .merge(api_routes(&app).into_router())
        .merge(console::routes(&app))
        .merge(console_auth::routes(&app))
        .merge(
            pages::routes().route_layer(axum::middleware::from_fn_with_state(
                app.clone(),
                limit_client,
            )),
        )
        .route(
            "/metrics",
            axum::routing::get(crate::auth::refusals::metrics),
        )
        // Below every route: the matched route and the counters for the
        // refusal checks (`auth/refusals.rs`).
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::auth::refusals::note_request,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            // Manage links carry a secret: no `Referer` ever leaves for
            // another site, while same-origin form posts keep a real
            // `Origin` (under `no-referrer` a browser sends `Origin: null`).
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // Outermost: the client's address (behind a trusted proxy, the one
        // it forwarded) before any limit or log reads it.
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            client_ip::find_client,
        ))
        .with_state(app)
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String))
)]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers, the writer runs and this node has every
/// key the deployment seals with.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "`ready`", content_type = "text/plain", body = String),
        (status = 503, description = "`writer stopped`, `database unavailable` or `keys differ from the deployment's`", content_type = "text/plain", body = String),
    )
)]
async fn readyz(axum::extract::State(app): axum::extract::State<AppState>) -> Response {
    match app.store.recorded_keys().await {
        Ok(recorded) if app.writer.is_running() => {
            match crate::deployment_keys::disagreement(&app.keys.checks(), &recorded) {
                None => (StatusCode::OK, "ready").into_response(),
                Some(d) => {
                    tracing::error!(reason = %d, "not ready");
                    let body = "keys differ from the deployment's";
                    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
                }
            }
        }
        Ok(_) => (StatusCode::SERVICE_UNAVAILABLE, "writer stopped").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// The action a staff route (API or console page) is checked against:
/// [`staff_api::STAFF_ROUTES`] and [`console::CONSOLE_ROUTES`] are the
/// route half of the policy; `pasaporte_core::policy::POLICY` the role half.
pub fn action_of(method: &axum::http::Method, path: &str) -> Option<Action> {
    staff_api::STAFF_ROUTES
        .iter()
        .chain(console::CONSOLE_ROUTES)
        .find(|(m, p, _)| m == method && *p == path)
        .map(|(_, _, a)| *a)
}

/// The answer to a client over its rate limit: 429 with `Retry-After`.
pub fn too_many(lang: Lang, wait: std::time::Duration) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        lang,
        "Demasiadas solicitudes seguidas desde aquí. Espere un momento y vuelva a intentarlo; su lugar no se pierde por esperar.",
        "Too many requests in a row from here. Wait a moment and try again; waiting does not cost you anything.",
    );
    e.retry_after = Some(crate::limits::retry_after_secs(wait));
    e
}

/// The client's address: the connection's peer (`None` for in-process
/// requests, as tests send through `oneshot`). A reverse proxy in front makes
/// every client the proxy; see ARCHITECTURE.md.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Counts every booking write (POST) of a citizen route, and every lookup
/// that found nothing (a 404: an unknown code, a wrong token, an unknown
/// release...), against the client's limit; over it, 429 with `Retry-After`
/// (JSON for the API, a short page for the pages). Counting failed lookups
/// keeps booking and request codes from being enumerated: after the burst a
/// client gets 429 whether the code it tries exists or not, while the
/// holder of a right token is still answered.
pub async fn limit_client(
    axum::extract::State(app): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let limits = app.clone();
    limit_posts(app, req, next, "booking write", true, move |ip| {
        limits.limits.check_client(ip)
    })
    .await
}

/// Counts every sign-in attempt (POST of the API session, the console form
/// and re-authentication) against the client's sign-in limit; over it, 429
/// with `Retry-After`, before any password is looked at.
pub async fn limit_sign_in(
    axum::extract::State(app): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let limits = app.clone();
    limit_posts(app, req, next, "sign-in", false, move |ip| {
        limits.limits.check_sign_in(ip)
    })
    .await
}

/// Checks `check` for each POST from a peer (and, with `count_not_found`,
/// again for each answer that found nothing).
async fn limit_posts(
    app: AppState,
    req: Request,
    next: axum::middleware::Next,
    what: &'static str,
    count_not_found: bool,
    check: impl Fn(std::net::IpAddr) -> Result<(), std::time::Duration>,
) -> Response {
    // In-process requests (tests through `oneshot`) carry no peer address.
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let Some(peer) = peer else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let Ok(ReqLang(lang)) = ReqLang::from_request_parts(&mut parts, &app).await;
    let api = parts.uri.path().starts_with("/api/");
    if parts.method == axum::http::Method::POST
        && let Err(wait) = check(peer.ip())
    {
        tracing::info!(client = %peer.ip(), what, "over the client's rate limit");
        return over_limit(lang, wait, api);
    }
    let resp = next.run(Request::from_parts(parts, body)).await;
    if count_not_found
        && resp.status() == StatusCode::NOT_FOUND
        && let Err(wait) = check(peer.ip())
    {
        tracing::info!(client = %peer.ip(), "failed lookups over the client's rate limit");
        return over_limit(lang, wait, api);
    }
    resp
}

/// 429 with `Retry-After`: JSON for the API, a short page for the pages.
fn over_limit(lang: Lang, wait: std::time::Duration, api: bool) -> Response {
    let err = too_many(lang, wait);
    if api {
        return err.into_response();
    }
    wait_page(
        StatusCode::TOO_MANY_REQUESTS,
        lang,
        lang.pick("Espere un momento", "Wait a moment"),
        &err.message,
        err.retry_after.unwrap_or(1),
    )
}

/// A short page asking to wait `retry_after_secs` (429 and 503 answers of
/// the pages), with `Retry-After`.
pub fn wait_page(
    status: StatusCode,
    lang: Lang,
    title: &str,
    message: &str,
    retry_after_secs: u64,
) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"{}\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><main><h1>{}</h1><p>{}</p></main></html>",
        lang.code(),
        title,
        title,
        message,
    );
    let mut resp = (status, axum::response::Html(page)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

/// Runs before every staff route's handler (and so before its body is
/// read): no session → 401 (API) or a redirect to sign-in (pages); a role
/// the policy table does not give the route's action → 403, or a request to
/// sign in again for decisions after 10 minutes. Office scoping is left to
/// the handler, which knows the office (and answers 404 for others').
pub async fn policy_gate(
    axum::extract::State(app): axum::extract::State<AppState>,
    matched: axum::extract::MatchedPath,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(action) = action_of(req.method(), matched.as_str()) else {
        // A staff route missing from the tables is a programming error:
        // refuse it rather than let it through unchecked.
        let path = matched.as_str();
        if path.starts_with("/api/v1/staff/") || path.starts_with("/console/") {
            tracing::error!(route = %path, "staff route without a policy entry");
            return StatusCode::FORBIDDEN.into_response();
        }
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let Ok(ReqLang(lang)) = ReqLang::from_request_parts(&mut parts, &app).await;
    let staff = match crate::auth::StaffSession::from_request_parts(&mut parts, &app).await {
        Ok(s) => s,
        Err(rejection) => return rejection.into_response(),
    };
    if let Err(refusal) = staff.require(action, None, &console::page_of(&parts.uri, lang), lang) {
        return refusal.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The language of a request: `?lang=` first, then `Accept-Language`, else Spanish.
pub struct ReqLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for ReqLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("lang="))
                .and_then(Lang::from_param)
        });
        let from_header = || {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(Lang::from_accept_language)
                .unwrap_or_default()
        };
        Ok(ReqLang(from_query.unwrap_or_else(from_header)))
    }
}

/// One field's problem in an error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// Where in the request: `email`, `applicants[1].birth_date`.
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `slot_full`, `already_booked`, `validation_failed`...
    pub code: String,
    /// For people, in the request's language (Spanish by default).
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

/// `{"error": {"code": ..., "message": ..., "fields": [...]}}`
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// An API error: 4xx say what to fix; 5xx say nothing of the cause, which goes
/// to the log (without personal data).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<(String, &'static str, String)>,
    /// Seconds for `Retry-After` (429 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, lang: Lang, es: &str, en: &str) -> Self {
        Self {
            status,
            code,
            message: lang.pick(es, en).to_string(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    pub fn invalid(lang: Lang, errs: &FieldErrors) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            lang,
            "Revise los campos señalados.",
            "Check the fields listed.",
        );
        e.message = format!(
            "{} {}",
            e.message,
            errs.0
                .iter()
                .map(|f| format!("{}: {}", f.field, lang.pick(f.es, f.en)))
                .collect::<Vec<_>>()
                .join(" ")
        );
        e.fields = errs
            .0
            .iter()
            .map(|f| (f.field.clone(), f.code, lang.pick(f.es, f.en).to_string()))
            .collect();
        e
    }

    pub fn internal(lang: Lang, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            lang,
            "Ocurrió un error interno. Intente de nuevo en unos minutos.",
            "An internal error occurred. Try again in a few minutes.",
        )
    }

    pub fn unavailable(lang: Lang, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            lang,
            "El servicio no está disponible en este momento. Intente de nuevo en unos minutos; su cita no se ha perdido.",
            "The service is unavailable right now. Try again in a few minutes; nothing was lost.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                fields: self
                    .fields
                    .into_iter()
                    .map(|(field, code, message)| FieldProblem {
                        field,
                        code: code.to_string(),
                        message,
                    })
                    .collect(),
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// JSON in: like `axum::Json`, but every rejection is an [`ApiError`] that
/// names what to fix, and a field of the wrong type is named by its path.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_accept_language(
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        );
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(JsonRejection::MissingJsonContentType(_)) => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    lang,
                    "Envíe el cuerpo como JSON con Content-Type: application/json.",
                    "Send the body as JSON with Content-Type: application/json.",
                ));
            }
            Err(JsonRejection::BytesRejection(r))
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    lang,
                    "El cuerpo de la petición es demasiado grande (máximo 64 KiB).",
                    "The request body is too large (at most 64 KiB).",
                ));
            }
            Err(e) => {
                let mut err = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    lang,
                    "El cuerpo no es JSON válido",
                    "The body is not valid JSON",
                );
                err.message = format!("{}: {}", err.message, e.body_text());
                return Err(err);
            }
        };
        serde_path_to_error::deserialize::<_, T>(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_type",
                    lang,
                    "Un campo tiene un tipo de dato incorrecto o falta",
                    "A field has the wrong type or is missing",
                );
                let field = if path == "." {
                    "body".to_string()
                } else {
                    path
                };
                err.message = format!("{} ({field}): {inner}", err.message);
                err.fields.push((field, "invalid_type", inner));
                err
            })
    }
}
