//! The printing vendor protocol's wire format (docs/vendor-protocol.md is the
//! spec): the batch pasaporte sends, the vendor's answer, an order's status,
//! and the status events the vendor calls back with. Shared by the client
//! ([`super::client`]), the callback verification ([`super::callback`]) and
//! the simulator ([`super::sim`]), so the three cannot disagree.
//!
//! Fields a vendor may judge (booklet pages, reasons) are kept loose on the
//! wire (a number, a string) so that one bad order is answered `rejected`
//! with a reason instead of failing the whole batch's parsing.

use serde::{Deserialize, Serialize};

/// Whether `s` is a protocol id: 1 to [`ID_CHARS_MAX`] characters of
/// `A-Z a-z 0-9 . _ -` (safe in a URL path and a log line).
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= ID_CHARS_MAX
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `POST /v1/batches`: where batches go on the vendor.
pub const BATCHES_PATH: &str = "/v1/batches";
/// `GET /v1/orders/{order_id}`: an order's status on the vendor.
pub const ORDERS_PATH: &str = "/v1/orders";

/// Most orders in one batch: a batch is answered in one response, and 50
/// orders with their chip files stay under [`BATCH_BODY_BYTES_MAX`].
pub const BATCH_ORDERS_MAX: usize = 50;
/// Largest chip file (decoded): a DG2 with an ICAO-sized face image is 15 to
/// 40 KB; twice the largest leaves room without letting a batch grow unbounded.
pub const CHIP_FILE_BYTES_MAX: usize = 96 * 1024;
/// Largest batch body: 50 orders × (4 chip files, base64) plus fields.
pub const BATCH_BODY_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Largest callback body: an event is about 300 bytes.
pub const EVENT_BODY_BYTES_MAX: usize = 16 * 1024;
/// Longest id (batch, order, event), office code or tracking number.
pub const ID_CHARS_MAX: usize = 64;
/// Longest data page text field (names, place of birth, authority).
pub const TEXT_CHARS_MAX: usize = 120;
/// Longest reason text in a `quality_failed` event.
pub const REASON_CHARS_MAX: usize = 200;

/// The body of `POST /v1/batches`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// pasaporte's id of the batch (for logs and support); orders, not
    /// batches, are the unit of idempotency.
    pub batch_id: String,
    /// 1 to [`BATCH_ORDERS_MAX`] orders, each `order_id` once.
    pub orders: Vec<Order>,
}

/// One personalisation order: one booklet to print, encode and ship.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// pasaporte's id of the order, unique forever: the vendor prints at most
    /// one booklet per order id.
    pub order_id: String,
    /// The document number printed and in the MRZ.
    pub passport_number: String,
    pub passport_type: PassportType,
    /// Pages of the booklet: 28, 32 or 48 (see [`BookletType`]).
    pub booklet_pages: u16,
    /// The blank booklet (from the authority's stock held at the vendor)
    /// to personalise; the `shipped` event names it back.
    pub booklet_serial: String,
    pub data_page: DataPage,
    /// The MRZ lines as printed (TD3: two lines of 44 characters).
    pub mrz: Vec<String>,
    pub chip: ChipFilesB64,
    /// The office the booklet is shipped to (pasaporte's office code).
    pub delivery_office: String,
}

/// The kind of passport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassportType {
    Ordinary,
    Official,
    Diplomatic,
}

/// The booklets a vendor prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookletType {
    Pages28,
    Pages32,
    Pages48,
}

impl BookletType {
    pub fn pages(self) -> u16 {
        match self {
            BookletType::Pages28 => 28,
            BookletType::Pages32 => 32,
            BookletType::Pages48 => 48,
        }
    }

    pub fn from_pages(pages: u16) -> Option<Self> {
        match pages {
            28 => Some(BookletType::Pages28),
            32 => Some(BookletType::Pages32),
            48 => Some(BookletType::Pages48),
            _ => None,
        }
    }
}

/// What the data page shows, as printed (dates `YYYY-MM-DD`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPage {
    pub surname: String,
    pub given_names: String,
    /// ISO 3166-1 alpha-3 (or an ICAO code).
    pub nationality: String,
    pub birth_date: String,
    /// `M`, `F` or `X`.
    pub sex: String,
    pub place_of_birth: String,
    pub issue_date: String,
    pub expiry_date: String,
    pub issuing_authority: String,
}

/// The chip's files, standard base64 (with padding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipFilesB64 {
    pub ef_com: String,
    pub dg1: String,
    pub dg2: String,
    pub sod: String,
}

/// The answer to `POST /v1/batches` (200): one result per order, in the
/// batch's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    pub batch_id: String,
    pub results: Vec<OrderResult>,
}

/// What the vendor did with one order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    pub order_id: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// `{"result": "accepted"}`, `{"result": "duplicate"}` or
/// `{"result": "rejected", "reason": "bad_mrz"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// New: it will be printed; an `accepted` event follows.
    Accepted,
    /// The vendor already holds this order (the same content): nothing new
    /// happens; its events come (or came) once.
    Duplicate,
    /// Not taken; nothing is kept, so a corrected order needs a new order id
    /// only when the vendor said `order_id_conflict`.
    Rejected { reason: RejectReason },
}

/// Why an order was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The MRZ does not parse, a check digit fails, or it does not carry
    /// the passport number.
    BadMrz,
    /// A chip file is missing, not base64, too large, or DG1 does not hold
    /// the MRZ.
    BadChip,
    /// `booklet_pages` is not a booklet the vendor prints.
    UnknownBookletType,
    /// A data page field or the delivery office is empty or too long.
    BadField,
    /// The order id was seen before with other content.
    OrderIdConflict,
    /// The vendor cannot take more orders now (try again later).
    CapacityExceeded,
    /// A reason this version does not know (a newer vendor).
    #[serde(other)]
    Other,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::BadMrz => "bad_mrz",
            RejectReason::BadChip => "bad_chip",
            RejectReason::UnknownBookletType => "unknown_booklet_type",
            RejectReason::BadField => "bad_field",
            RejectReason::OrderIdConflict => "order_id_conflict",
            RejectReason::CapacityExceeded => "capacity_exceeded",
            RejectReason::Other => "other",
        }
    }
}

/// An order's progress at the vendor, in order. `QualityFailed` and
/// `Shipped` are final.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Accepted,
    InProduction,
    Printed,
    QualityPassed,
    QualityFailed,
    Shipped,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Accepted => "accepted",
            EventKind::InProduction => "in_production",
            EventKind::Printed => "printed",
            EventKind::QualityPassed => "quality_passed",
            EventKind::QualityFailed => "quality_failed",
            EventKind::Shipped => "shipped",
        }
    }

    /// Whether no event follows this one.
    pub fn is_final(self) -> bool {
        match self {
            EventKind::QualityFailed | EventKind::Shipped => true,
            EventKind::Accepted
            | EventKind::InProduction
            | EventKind::Printed
            | EventKind::QualityPassed => false,
        }
    }
}

/// A status event, the body of a callback (`POST <callback_url>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorEvent {
    /// The vendor's id of the event: the same on every delivery and replay;
    /// pasaporte applies each event id once.
    pub event_id: String,
    pub order_id: String,
    pub kind: EventKind,
    /// Why quality failed (`quality_failed` only); no personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The booklet's serial number (`shipped` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booklet_serial: Option<String>,
    /// The carrier's tracking number (`shipped` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<String>,
    /// When it happened at the vendor, unix milliseconds.
    pub occurred_ms: i64,
}

impl VendorEvent {
    /// Whether the event carries what its kind needs and nothing too long:
    /// a reason on `quality_failed`, a serial and tracking on `shipped`.
    pub fn is_well_formed(&self) -> bool {
        let opt_ok = |o: &Option<String>, max: usize| {
            o.as_deref()
                .is_none_or(|s| !s.is_empty() && s.chars().count() <= max)
        };
        let fields_ok = is_id(&self.event_id)
            && is_id(&self.order_id)
            && opt_ok(&self.reason, REASON_CHARS_MAX)
            && opt_ok(&self.booklet_serial, ID_CHARS_MAX)
            && opt_ok(&self.tracking, ID_CHARS_MAX);
        let kind_ok = match self.kind {
            EventKind::QualityFailed => self.reason.is_some(),
            EventKind::Shipped => self.booklet_serial.is_some() && self.tracking.is_some(),
            EventKind::Accepted
            | EventKind::InProduction
            | EventKind::Printed
            | EventKind::QualityPassed => true,
        };
        fields_ok && kind_ok
    }
}

/// The answer to `GET /v1/orders/{order_id}` (200; 404 when unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatus {
    pub order_id: String,
    /// The latest event's kind.
    pub status: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booklet_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<String>,
    /// Every event so far, in order.
    pub events: Vec<VendorEvent>,
}

/// An error answer: `{"error": "<code>", "message": "..."}`; the codes are
/// listed in the spec. Never carries personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::signing::{SigningKey, verify_keyed};
    use axum::http::{HeaderMap, HeaderValue};
    use base64::Engine as _;

    /// The spec, whose examples must stay true.
    const SPEC: &str = include_str!("../../../../docs/vendor-protocol.md");

    /// The fenced block after `<!-- example:NAME -->`.
    fn example(name: &str) -> &'static str {
        let marker = format!("<!-- example:{name} -->");
        let at = SPEC.find(&marker).unwrap() + marker.len();
        let rest = &SPEC[at..];
        let open = rest.find("```").unwrap();
        let body_at = open + rest[open..].find('\n').unwrap() + 1;
        let close = body_at + rest[body_at..].find("\n```").unwrap();
        &rest[body_at..close]
    }

    #[test]
    fn the_spec_examples_are_the_wire_format() {
        let batch: Batch = serde_json::from_str(example("batch")).unwrap();
        let order = &batch.orders[0];
        assert_eq!(
            BookletType::from_pages(order.booklet_pages),
            Some(BookletType::Pages32)
        );
        let mrz = icao9303::Mrz::parse(&order.mrz.join("\n")).unwrap();
        assert!(mrz.is_valid());
        assert_eq!(mrz.document_number, order.passport_number);
        let ef_com = icao9303::build_ef_com(&[1, 2]).unwrap();
        assert_eq!(
            order.chip.ef_com,
            base64::engine::general_purpose::STANDARD.encode(ef_com)
        );
        let dg1 = base64::engine::general_purpose::STANDARD
            .decode(&order.chip.dg1)
            .unwrap();
        assert_eq!(
            icao9303::lds::parse_dg1(&dg1)
                .unwrap()
                .lines()
                .collect::<Vec<_>>(),
            order.mrz
        );

        let answer: BatchAnswer = serde_json::from_str(example("answer")).unwrap();
        assert_eq!(
            answer
                .results
                .iter()
                .map(|r| r.outcome.clone())
                .collect::<Vec<_>>(),
            [
                Outcome::Accepted,
                Outcome::Duplicate,
                Outcome::Rejected {
                    reason: RejectReason::BadMrz
                }
            ]
        );
        let status: OrderStatus = serde_json::from_str(example("status")).unwrap();
        assert_eq!(status.status, EventKind::Printed);
        assert!(status.events.iter().all(VendorEvent::is_well_formed));
    }

    #[test]
    fn the_spec_worked_signature_is_what_the_code_computes() {
        let key =
            SigningKey::new("vendor-example", b"example-secret-do-not-use-01".to_vec()).unwrap();
        let body = example("event");
        let event: VendorEvent = serde_json::from_str(body).unwrap();
        assert!(event.is_well_formed());
        // The body is exactly what the code sends for this event.
        assert_eq!(serde_json::to_string(&event).unwrap(), body);
        let request = example("signed-request");
        let mut headers = HeaderMap::new();
        for (name, value) in key.headers(1_790_000_000, body.as_bytes()) {
            let line = format!("{name}: {value}");
            assert!(request.lines().any(|l| l == line), "the spec lacks {line}");
            headers.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        assert_eq!(
            verify_keyed(
                std::slice::from_ref(&key),
                &headers,
                body.as_bytes(),
                1_790_000_000,
                EVENT_BODY_BYTES_MAX
            ),
            Ok(("vendor-example", 1_790_000_000))
        );
        let get_signature = format!(
            "x-pasaporte-signature: {}",
            key.signature(1_790_000_000, b"")
        );
        assert!(
            SPEC.contains(&get_signature),
            "the spec lacks {get_signature}"
        );
    }
}
