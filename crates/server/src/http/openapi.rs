//! The OpenAPI 3 document of the JSON API, served at `/api/v1/openapi.json`:
//! every route of [`super::api_routes`] (citizens, ballot, staff,
//! production, callbacks, audit, health) with its parameters, bodies, error
//! answers and security scheme.
//!
//! Layout: [`ApiDoc`] lists the handlers (each carries its own
//! `#[utoipa::path]`); the error answers are shared response components
//! (one body, [`ErrorBody`], for every JSON error); the security schemes are
//! added by [`SecuritySchemes`]; enum-valued strings are described by the
//! `*_enum` functions below from the domain's own lists, so the document
//! cannot name a value the service does not know. The tests hold the
//! document against the route table ([`super::routes::ApiRoutes`]).

use super::ErrorBody;
use utoipa::OpenApi;
use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Ref, RefOr};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pasaporte",
        description = "Passport issuance: offices, availability and bookings; the ballot; the staff's office workflow; production; the payment gateway's and printing vendors' callbacks. Errors are `{\"error\": {\"code\", \"message\", \"fields\"}}` (ErrorBody); messages follow `?lang=` or `Accept-Language` (Spanish by default)."
    ),
    paths(
        super::api::openapi,
        super::api::list_offices,
        super::api::office_slots,
        super::api::earliest,
        super::api::capacity_json,
        super::api::capacity_csv,
        super::api::capacity_pools_csv,
        super::api::create_booking,
        super::api::get_booking,
        super::api::reschedule_booking,
        super::api::cancel_booking,
        super::api::booking_calendar,
        super::api::audit_checkpoints,
        super::ballot_api::list,
        super::ballot_api::one,
        super::ballot_api::file,
        super::ballot_api::submit,
        super::ballot_api::status,
        super::ballot_api::verify,
        super::ballot_api::accept,
        super::ballot_api::withdraw,
        super::ballot_api::confirm,
        super::ballot_api::open,
        super::ballot_api::draw,
        super::ballot_api::signals,
        super::console_auth::api_sign_in,
        super::console_auth::api_sign_out,
        super::console_auth::api_reauth,
        super::console_auth::api_me,
        super::console_auth::api_authorize,
        super::staff_api::today,
        super::staff_api::check_in,
        super::staff_api::walk_in,
        super::staff_api::call,
        super::staff_api::application,
        super::staff_api::approve,
        super::staff_api::decision,
        super::staff_api::registry_override,
        super::staff_api::supervisor_queues,
        super::staff_api::capture,
        super::staff_api::waiver,
        super::staff_api::waiver_decision,
        super::staff_api::reconciliation,
        super::staff_api::audit_verify,
        super::staff_api::stock,
        super::staff_api::office_policy,
        super::staff_api::urgent_booking,
        super::staff_api::close_day,
        super::staff_api::cut_capacity,
        super::staff_api::displaced,
        super::staff_api::payment_callback,
        super::production_api::orders,
        super::production_api::resend,
        super::production_api::vendors,
        super::production_api::vendor_state,
        super::production_api::receive,
        super::production_api::hand_over,
        super::production_api::emergency,
        super::production_api::vendor_callback,
        super::healthz,
        super::readyz,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadJson,
            MissingToken,
            Unauthenticated,
            Forbidden,
            NotFound,
            Conflict,
            TooLarge,
            UnsupportedMediaType,
            Invalid,
            TooManyRequests,
            Internal,
            Unavailable
        )
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "citizens", description = "Offices, availability, capacity and bookings (rate limited per client)."),
        (name = "ballot", description = "Releases by ballot: requests, proof of email, offers, reconfirmation."),
        (name = "staff", description = "The staff session and the office workflow; every route is checked against the policy table."),
        (name = "production", description = "Orders to printing vendors, receipt, hand-over, emergency issue."),
        (name = "callbacks", description = "Signed callbacks of the payment gateway and the printing vendors."),
        (name = "audit", description = "The audit trail's signed checkpoints."),
        (name = "health", description = "Liveness and readiness."),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3 document of the JSON API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The session cookie's name and the CSRF header, as `crate::auth` uses them.
const STAFF_SESSION_DESCRIPTION: &str =
    "The staff session cookie set by `POST /api/v1/staff/session` (HttpOnly, SameSite=Strict).";

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use crate::auth::session::{CSRF_HEADER, SESSION_COOKIE};
        use crate::signing::SIGNATURE_HEADER;
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let Some(c) = openapi.components.as_mut() else {
            return;
        };
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        c.add_security_scheme(
            "manage_token",
            bearer("A booking's manage token, from the booking's answer or its mail."),
        );
        c.add_security_scheme(
            "request_token",
            bearer("The token of a ballot request's mail (or `{\"token\": ...}` in the body of a POST)."),
        );
        c.add_security_scheme(
            "staff_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                STAFF_SESSION_DESCRIPTION,
            ))),
        );
        c.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                CSRF_HEADER,
                "The session's `csrf_token` (from the sign-in answer or `GET /api/v1/staff/me`), required on every staff write.",
            ))),
        );
        c.add_security_scheme(
            "payment_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                SIGNATURE_HEADER,
                "`v1=<hex HMAC-SHA256(secret, \"<x-pasaporte-timestamp>.<body>\")>`, with the gateway's shared secret; several comma-separated values while the secret rotates.",
            ))),
        );
        c.add_security_scheme(
            "vendor_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                SIGNATURE_HEADER,
                "`v1=<hex HMAC-SHA256(key, \"<x-pasaporte-timestamp>.<body>\")>` with the key named by `x-pasaporte-key-id`.",
            ))),
        );
    }
}

/// A shared error answer: [`ErrorBody`] as JSON, with a description of the
/// codes it carries and the headers it sets.
macro_rules! error_response {
    ($name:ident, $description:expr $(, $header:literal => $header_description:literal)*) => {
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                #[allow(unused_mut)]
                let mut b = ResponseBuilder::new()
                    .description($description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    );
                $(
                    b = b.header(
                        $header,
                        utoipa::openapi::header::HeaderBuilder::from(Header::default())
                            .description(Some($header_description))
                            .build(),
                    );
                )*
                (stringify!($name), b.build().into())
            }
        }
    };
}

error_response!(BadJson, "`malformed_json`: the body is not JSON.");
error_response!(
    MissingToken,
    "`missing_token`: no `Authorization: Bearer` token (or, on a ballot POST, no `{\"token\"}` body).",
    "WWW-Authenticate" => "`Bearer`"
);
error_response!(
    Unauthenticated,
    "`unauthenticated`: no staff session (sign in with `POST /api/v1/staff/session`); `reauthentication_required`: a decision more than 10 minutes after the last sign-in (`POST /api/v1/staff/session/reauth`).",
    "WWW-Authenticate" => "`Bearer`"
);
error_response!(
    Forbidden,
    "`forbidden`: the person's role may not do this; `csrf_failed`: a write without the session's `x-csrf-token`, or from another site."
);
error_response!(
    NotFound,
    "Nothing with that code, id or office, or not in the person's offices (staff): `not_found`, `booking_not_found`, `request_not_found`, `release_not_found`, `unknown_office`."
);
error_response!(
    Conflict,
    "The state does not allow it; `code` says why (`slot_full`, `already_booked`, `same_slot`, `booking_cancelled`, `not_allowed_in_state`, `too_early`, or a use case's refusal)."
);
error_response!(TooLarge, "`body_too_large`: the body is over its limit.");
error_response!(
    UnsupportedMediaType,
    "`unsupported_media_type`: send the body with `Content-Type: application/json`."
);
error_response!(
    Invalid,
    "`validation_failed` (each field named in `fields`), `invalid_type` (a field of the wrong type or missing), or a route's own code."
);
error_response!(
    TooManyRequests,
    "`too_many_requests`: over the client's limit (booking writes and failed lookups, or sign-in attempts).",
    "Retry-After" => "Seconds to wait."
);
error_response!(
    Internal,
    "`internal`: an internal error (the cause is logged, never sent)."
);
error_response!(
    Unavailable,
    "`unavailable`: storage is unavailable (or `sign_in_busy`, `audit_key_missing`); try again later.",
    "Retry-After" => "Seconds to wait (`sign_in_busy`)."
);

/// A string limited to `values`.
fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(seen))
        .build()
}

pub fn pool_enum() -> Object {
    string_enum(pasaporte_core::shares::Pool::ALL.map(|p| p.as_str()))
}

pub fn release_mode_enum() -> Object {
    use pasaporte_core::shares::ReleaseMode;
    string_enum([ReleaseMode::Live, ReleaseMode::Ballot].map(|m| m.as_str()))
}

pub fn office_kind_enum() -> Object {
    use pasaporte_core::office::OfficeKind;
    string_enum(
        [
            OfficeKind::Ministry,
            OfficeKind::Department,
            OfficeKind::Consulate,
        ]
        .map(|k| k.as_str()),
    )
}

pub fn document_type_enum() -> Object {
    string_enum(pasaporte_core::person::DocumentType::ALL.map(|d| d.as_str()))
}

pub fn passport_type_enum() -> Object {
    string_enum(pasaporte_core::fees::PassportType::ALL.map(|t| t.as_str()))
}

pub fn application_state_enum() -> Object {
    string_enum(pasaporte_core::application::State::ALL.map(|s| s.as_str()))
}

pub fn queue_enum() -> Object {
    string_enum(pasaporte_core::application::State::ALL.map(|s| s.queue().as_str()))
}

pub fn role_enum() -> Object {
    string_enum(pasaporte_core::application::Role::ALL.map(|r| r.as_str()))
}

pub fn action_enum() -> Object {
    string_enum(pasaporte_core::policy::Action::ALL.map(|a| a.as_str()))
}

pub fn order_state_enum() -> Object {
    string_enum(pasaporte_store::OrderState::ALL.map(|s| s.as_str()))
}

pub fn booklet_type_enum() -> Object {
    string_enum(pasaporte_core::production::BookletType::ALL.map(|t| t.as_str()))
}

pub fn booklet_state_enum() -> Object {
    string_enum(pasaporte_core::production::BookletState::ALL.map(|s| s.as_str()))
}

pub fn payment_status_enum() -> Object {
    string_enum(pasaporte_core::fees::PaymentStatus::ALL.map(|s| s.as_str()))
}

pub fn booking_status_enum() -> Object {
    string_enum(["active", "checked_in", "no_show", "cancelled"])
}

pub fn priority_enum() -> Object {
    string_enum(["disability", "older"])
}

pub fn decision_enum() -> Object {
    string_enum(["approve", "reject", "cancel"])
}

pub fn vendor_state_enum() -> Object {
    string_enum(["active", "draining"])
}

pub fn release_state_enum() -> Object {
    string_enum(["open", "drawn"])
}

pub fn request_status_enum() -> Object {
    string_enum([
        "unverified",
        "requested",
        "allocated",
        "waitlisted",
        "offered",
        "expired",
        "withdrawn",
    ])
}

pub fn day_note_enum() -> Object {
    string_enum([
        "holiday",
        "host_holiday",
        "closure",
        "no_hours",
        "beyond_horizon",
        "past",
    ])
}

pub fn withheld_enum() -> Object {
    string_enum([
        "holiday",
        "host_holiday",
        "closure",
        "no_hours",
        "short_hours",
        "elapsed",
        "past",
        "beyond_horizon",
    ])
}

/// A calendar date, `YYYY-MM-DD`.
pub fn date_string() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .build()
}

/// An instant, RFC 3339.
pub fn date_time_string() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn document() -> Value {
        serde_json::to_value(openapi_document()).unwrap()
    }

    /// Every (METHOD, path) the document describes.
    fn documented(doc: &Value) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                if item.get(method).is_some() {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    async fn app() -> crate::http::AppState {
        let (store, _url) =
            pasaporte_store::testing::fresh(pasaporte_store::testing::TestDb::Sqlite)
                .await
                .unwrap();
        let keys =
            crate::crypto::Keyring::parse(&format!("k1:{}", "ab".repeat(32)), &"cd".repeat(32))
                .unwrap();
        crate::app::App::new(store, keys, "http://test".into(), Default::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_json_route_is_documented_and_every_documented_route_exists() {
        let app = app().await;
        let routed: BTreeSet<(String, String)> = crate::http::api_routes(&app)
            .table()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert!(
            routed.len() > 50,
            "the table holds the JSON routes: {routed:?}"
        );
        // The table is the JSON API: every route under /api/ plus the health
        // checks; pages and the console (HTML) are deliberately left out.
        for (_, p) in &routed {
            assert!(
                p.starts_with("/api/") || p == "/healthz" || p == "/readyz",
                "{p} is not a JSON route"
            );
        }
        let doc = document();
        let documented = documented(&doc);
        let missing: Vec<_> = routed.difference(&documented).collect();
        let phantom: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routes without documentation: {missing:?}"
        );
        assert!(phantom.is_empty(), "documented but not routed: {phantom:?}");
    }

    /// Every `$ref` in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    /// The structural checks a validator would make, with no network: the
    /// version, every `$ref` resolving, path parameters declared exactly,
    /// operation ids unique, security naming declared schemes, a JSON error
    /// body for every 4xx of the API's own handlers.
    #[test]
    fn the_document_is_structurally_valid_openapi_3() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{r} is not local"));
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }

        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        let mut operation_ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let in_template: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            for (method, op) in item.as_object().unwrap() {
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .inspect(|p| {
                                assert_eq!(p["required"], true, "{method} {path}: {p}");
                                assert!(p["schema"].is_object(), "{method} {path}: {p}");
                            })
                            .map(|p| p["name"].as_str().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(
                    declared, in_template,
                    "{method} {path}: path parameters declared"
                );
                if let Some(ps) = op["parameters"].as_array() {
                    for p in ps {
                        let place = p["in"].as_str().unwrap();
                        assert!(
                            ["path", "query", "header", "cookie"].contains(&place),
                            "{method} {path}: {p}"
                        );
                    }
                }
                let id = op["operationId"].as_str().unwrap_or("");
                assert!(!id.is_empty(), "{method} {path}: an operationId");
                assert!(
                    operation_ids.insert(id.to_string()),
                    "{method} {path}: operationId {id} is taken"
                );
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}: a success answer"
                );
                if let Some(reqs) = op["security"].as_array() {
                    for req in reqs {
                        for name in req.as_object().unwrap().keys() {
                            assert!(schemes.contains_key(name), "{method} {path}: {name}");
                        }
                    }
                }
                // JSON handlers answer errors with ErrorBody; only the
                // callbacks' signature checks answer in plain text.
                let callback = path.ends_with("/callback");
                if path.starts_with("/api/") && !callback {
                    for (status, r) in responses {
                        if status.starts_with('4') {
                            let mut rs = Vec::new();
                            refs(r, &mut rs);
                            assert!(
                                rs.iter().any(|r| r.ends_with("/ErrorBody")
                                    || r.starts_with("#/components/responses/")),
                                "{method} {path} {status}: an ErrorBody"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The parameters and schemas are typed: dates as `format: date`,
    /// enumerations as enums, staff routes secured by the session (writes
    /// also by the CSRF header), callbacks by their signatures.
    #[test]
    fn parameters_schemas_and_security_are_typed() {
        let doc = document();
        let op = |m: &str, p: &str| doc["paths"][p][m].clone();
        let param = |o: &Value, name: &str| {
            o["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name} in {o}"))
        };
        let slots = op("get", "/api/v1/offices/{code}/slots");
        assert_eq!(param(&slots, "from")["schema"]["format"], "date");
        assert_eq!(param(&slots, "from")["in"], "query");
        let days = param(&slots, "days");
        assert!(
            days["schema"]["type"] == "integer" || days["schema"]["type"][0] == "integer",
            "{days}"
        );
        let recon = op("get", "/api/v1/staff/reconciliation");
        assert_eq!(param(&recon, "to")["schema"]["format"], "date");
        let orders = op("get", "/api/v1/staff/orders");
        let states = param(&orders, "state")["schema"]["enum"].clone();
        for s in pasaporte_store::OrderState::ALL {
            assert!(
                states.as_array().unwrap().contains(&s.as_str().into()),
                "{states}"
            );
        }
        let authorize = op("get", "/api/v1/staff/authorize");
        assert_eq!(
            param(&authorize, "action")["schema"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            pasaporte_core::policy::Action::ALL.len()
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["ApplicantJson"]["properties"]["birth_date"]["format"],
            "date"
        );
        assert_eq!(
            schemas["ApplicantJson"]["properties"]["document_type"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            pasaporte_core::person::DocumentType::ALL.len()
        );
        assert!(schemas["BookingJson"]["properties"]["status"]["enum"].is_array());
        assert!(schemas["ApplicationJson"]["properties"]["state"]["enum"].is_array());

        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["staff_session"]["type"], "apiKey");
        assert_eq!(schemes["staff_session"]["in"], "cookie");
        assert_eq!(
            schemes["staff_session"]["name"],
            crate::auth::session::SESSION_COOKIE
        );
        assert_eq!(schemes["csrf_token"]["in"], "header");
        assert_eq!(
            schemes["csrf_token"]["name"],
            crate::auth::session::CSRF_HEADER
        );
        assert_eq!(schemes["manage_token"]["scheme"], "bearer");
        assert_eq!(
            schemes["payment_signature"]["name"],
            crate::signing::SIGNATURE_HEADER
        );
        // Every staff route needs the session; its writes the CSRF header too.
        for (method, path, _) in crate::http::staff_api::STAFF_ROUTES {
            let o = op(&method.as_str().to_lowercase(), path);
            let req = &o["security"][0];
            assert!(req.get("staff_session").is_some(), "{method} {path}: {o}");
            assert_eq!(
                req.get("csrf_token").is_some(),
                *method != axum::http::Method::GET,
                "{method} {path}"
            );
            assert!(o["responses"]["401"].is_object(), "{method} {path}: 401");
            assert!(o["responses"]["403"].is_object(), "{method} {path}: 403");
        }
        for (path, scheme) in [
            ("/api/v1/payments/callback", "payment_signature"),
            ("/api/v1/vendors/callback", "vendor_signature"),
        ] {
            let o = op("post", path);
            assert!(o["security"][0].get(scheme).is_some(), "{path}: {o}");
            assert_eq!(param(&o, "x-pasaporte-timestamp")["in"], "header");
        }
        // Bodies read as JSON name 415 and 422.
        for (m, p) in [
            ("post", "/api/v1/bookings"),
            ("post", "/api/v1/staff/offices/{office}/check-ins"),
            ("put", "/api/v1/staff/offices/{office}/policy"),
            ("post", "/api/v1/staff/session"),
        ] {
            let o = op(m, p);
            assert!(o["requestBody"].is_object(), "{m} {p}");
            for s in ["415", "422"] {
                assert!(o["responses"][s].is_object(), "{m} {p}: {s}");
            }
        }
        assert!(
            doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object()
        );
    }

    /// A JSON route added with axum's own `.route(...)` would escape the
    /// table and so the check above: none may be, anywhere in the crate.
    #[test]
    fn no_json_route_bypasses_the_table() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 10);
        let mut found = Vec::new();
        for f in files {
            let text: String = std::fs::read_to_string(&f)
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            for call in [
                ".route(\"",
                ".route_service(\"",
                ".nest(\"",
                ".nest_service(\"",
            ] {
                for (i, _) in text.match_indices(call) {
                    let path = &text[i + call.len()..];
                    if path.starts_with("/api")
                        || path.starts_with("/healthz")
                        || path.starts_with("/readyz")
                    {
                        found.push(format!(
                            "{}: {}",
                            f.display(),
                            &text[i..(i + 60).min(text.len())]
                        ));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "JSON routes outside ApiRoutes: {found:#?}"
        );
    }
}
