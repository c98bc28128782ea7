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
