//! Production's vocabulary: blank booklets and their custody, passport numbers,
//! booklet serial ranges, and the stock forecast. Pure: no IO, no clock.
//!
//! Layout: [`BookletType`] (one per physical booklet, from
//! [`PassportType::pages`]); [`BookletState`], [`CustodyEvent`] and
//! [`BookletState::next`], the custody graph (table in [`CUSTODY_EDGES`]);
//! [`PassportNumber`] and [`BookletSerial`], both two letters + seven digits;
//! [`SerialRange`], a consignment of booklets; [`stock_forecast`]; tests.
//!
//! The custody graph (terminal: handed over, destroyed):
//! ```text
//! in_stock ──reserve──▶ reserved ──personalise──▶ personalised ──dispatch──▶ dispatched
//!    ▲  release ◀──────────┘                          │ receive_at_office      │ receive_at_office
//!    │                                                ▼                        ▼
//!    │                                            at_office ◀──────────────────┘
//!    │                                                │ hand_over
//!    │                                                ▼
//!    │                                            handed_over
//! spoil: from in_stock, reserved, personalised, dispatched, at_office → spoiled
//! annul: from personalised, dispatched, at_office → annulled
//! destroy (with witness): from in_stock, spoiled, annulled → destroyed
//! ```
//! `personalised → at_office` without dispatch is the emergency passport,
//! personalised at the office from its own stock.

use crate::fees::PassportType;
use std::fmt;

/// Longest spoil or annul reason, and witness name kept in custody records: a
/// short staff sentence, never personal data of a holder.
pub const CUSTODY_TEXT_CHARS_MAX: usize = 200;
/// Most booklets in one received range: a pallet of blank booklets is a few
/// thousand, a consignment from a state mint tens of thousands; a larger range
/// is almost surely a typing error in one of its ends.
pub const SERIAL_RANGE_BOOKLETS_MAX: u32 = 100_000;
/// Largest sequence a serial or passport number holds (seven digits).
pub const SEQUENCE_MAX: u32 = 9_999_999;

// --- Booklet types ---------------------------------------------------------

/// A blank booklet's physical type. The printer makes one booklet per page
/// count, so the 8-page emergency and the 28-page border booklets are their
/// own types (DOMAIN.md lists them with their own page counts) rather than
/// being taken from 32-page stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BookletType {
    /// 8 pages: emergencia.
    Pages8,
    /// 28 pages: fronterizo.
    Pages28,
    /// 32 pages: ordinario (and oficial).
    Pages32,
    /// 48 pages: ejecutivo (and diplomático).
    Pages48,
}

impl BookletType {
    pub const ALL: [BookletType; 4] = [
        BookletType::Pages8,
        BookletType::Pages28,
        BookletType::Pages32,
        BookletType::Pages48,
    ];

    /// The booklet a passport of `t` is personalised on.
    pub fn for_passport(t: PassportType) -> BookletType {
        // One arm per passport type, so a new type must choose its booklet;
        // the test `booklet_types_follow_pages` holds this to `pages()`.
        match t {
            PassportType::Ordinario => BookletType::Pages32,
            PassportType::Ejecutivo => BookletType::Pages48,
            PassportType::Emergencia => BookletType::Pages8,
            PassportType::Fronterizo => BookletType::Pages28,
        }
    }

    pub fn pages(self) -> u32 {
        match self {
            BookletType::Pages8 => 8,
            BookletType::Pages28 => 28,
            BookletType::Pages32 => 32,
            BookletType::Pages48 => 48,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BookletType::Pages8 => "pages8",
            BookletType::Pages28 => "pages28",
            BookletType::Pages32 => "pages32",
            BookletType::Pages48 => "pages48",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for BookletType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// --- Custody ---------------------------------------------------------------

/// Where a booklet is in its custody.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BookletState {
    InStock,
    Reserved,
    Personalised,
    Spoiled,
    Destroyed,
    Dispatched,
    AtOffice,
    HandedOver,
    Annulled,
}

/// What happens to a booklet. Spoil, destroy and annul carry the text that
/// justifies them (staff text, no personal data).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CustodyEvent {
    Reserve,
    Release,
    Personalise,
    Spoil { reason: String },
    Destroy { witness: String },
    Dispatch,
    ReceiveAtOffice,
    HandOver,
    Annul { reason: String },
}

/// A [`CustodyEvent`] without its text: what the custody graph is keyed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CustodyEventKind {
    Reserve,
    Release,
    Personalise,
    Spoil,
    Destroy,
    Dispatch,
    ReceiveAtOffice,
    HandOver,
    Annul,
}

/// Every allowed edge of the custody graph, `(from, event, to)`.
pub const CUSTODY_EDGES: [(BookletState, CustodyEventKind, BookletState); 18] = {
    use BookletState as S;
    use CustodyEventKind as E;
    [
        (S::InStock, E::Reserve, S::Reserved),
        (S::InStock, E::Spoil, S::Spoiled),
        (S::InStock, E::Destroy, S::Destroyed),
        (S::Reserved, E::Release, S::InStock),
        (S::Reserved, E::Personalise, S::Personalised),
        (S::Reserved, E::Spoil, S::Spoiled),
        (S::Personalised, E::Dispatch, S::Dispatched),
        (S::Personalised, E::ReceiveAtOffice, S::AtOffice),
        (S::Personalised, E::Spoil, S::Spoiled),
        (S::Personalised, E::Annul, S::Annulled),
        (S::Dispatched, E::ReceiveAtOffice, S::AtOffice),
        (S::Dispatched, E::Spoil, S::Spoiled),
        (S::Dispatched, E::Annul, S::Annulled),
        (S::AtOffice, E::HandOver, S::HandedOver),
        (S::AtOffice, E::Spoil, S::Spoiled),
        (S::AtOffice, E::Annul, S::Annulled),
        (S::Spoiled, E::Destroy, S::Destroyed),
        (S::Annulled, E::Destroy, S::Destroyed),
    ]
};

/// Why a custody event was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CustodyError {
    #[error("a booklet {from} cannot take '{event}'")]
    NotAllowed {
        from: BookletState,
        event: CustodyEventKind,
    },
    #[error("'{event}' needs a {what}: write it")]
    MissingText {
        event: CustodyEventKind,
        what: &'static str,
    },
    #[error("'{event}': the {what} is {chars} characters, at most {max} are kept", max = CUSTODY_TEXT_CHARS_MAX)]
    TextTooLong {
        event: CustodyEventKind,
        what: &'static str,
        chars: usize,
    },
}

impl BookletState {
    pub const ALL: [BookletState; 9] = [
        BookletState::InStock,
        BookletState::Reserved,
        BookletState::Personalised,
        BookletState::Spoiled,
        BookletState::Destroyed,
        BookletState::Dispatched,
        BookletState::AtOffice,
        BookletState::HandedOver,
        BookletState::Annulled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BookletState::InStock => "in_stock",
            BookletState::Reserved => "reserved",
            BookletState::Personalised => "personalised",
            BookletState::Spoiled => "spoiled",
            BookletState::Destroyed => "destroyed",
            BookletState::Dispatched => "dispatched",
            BookletState::AtOffice => "at_office",
            BookletState::HandedOver => "handed_over",
            BookletState::Annulled => "annulled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the booklet's custody has ended: with its holder, or destroyed.
    pub fn is_terminal(self) -> bool {
        match self {
            BookletState::HandedOver | BookletState::Destroyed => true,
            BookletState::InStock
            | BookletState::Reserved
            | BookletState::Personalised
            | BookletState::Spoiled
            | BookletState::Dispatched
            | BookletState::AtOffice
            | BookletState::Annulled => false,
        }
    }

    /// The state after `event`, or why the booklet cannot take it.
    pub fn next(self, event: &CustodyEvent) -> Result<BookletState, CustodyError> {
        use BookletState as S;
        use CustodyEventKind as E;
        event.check_text()?;
        let kind = event.kind();
        let refused = Err(CustodyError::NotAllowed {
            from: self,
            event: kind,
        });
        match (self, kind) {
            (S::InStock, E::Reserve) => Ok(S::Reserved),
            (S::Reserved, E::Release) => Ok(S::InStock),
            (S::Reserved, E::Personalise) => Ok(S::Personalised),
            (S::Personalised, E::Dispatch) => Ok(S::Dispatched),
            (S::Personalised | S::Dispatched, E::ReceiveAtOffice) => Ok(S::AtOffice),
            (S::AtOffice, E::HandOver) => Ok(S::HandedOver),
            (
                S::InStock | S::Reserved | S::Personalised | S::Dispatched | S::AtOffice,
                E::Spoil,
            ) => Ok(S::Spoiled),
            (S::Personalised | S::Dispatched | S::AtOffice, E::Annul) => Ok(S::Annulled),
            (S::InStock | S::Spoiled | S::Annulled, E::Destroy) => Ok(S::Destroyed),
            (
                S::HandedOver | S::Destroyed,
                E::Reserve
                | E::Release
                | E::Personalise
                | E::Spoil
                | E::Destroy
                | E::Dispatch
                | E::ReceiveAtOffice
                | E::HandOver
                | E::Annul,
            ) => refused,
            (
                S::InStock,
                E::Release
                | E::Personalise
                | E::Dispatch
                | E::ReceiveAtOffice
                | E::HandOver
                | E::Annul,
            )
            | (
                S::Reserved,
                E::Reserve | E::Destroy | E::Dispatch | E::ReceiveAtOffice | E::HandOver | E::Annul,
            )
            | (
                S::Personalised,
                E::Reserve | E::Release | E::Personalise | E::Destroy | E::HandOver,
            )
            | (
                S::Spoiled,
                E::Reserve
                | E::Release
                | E::Personalise
                | E::Spoil
                | E::Dispatch
                | E::ReceiveAtOffice
                | E::HandOver
                | E::Annul,
            )
            | (
                S::Dispatched,
                E::Reserve | E::Release | E::Personalise | E::Destroy | E::Dispatch | E::HandOver,
            )
            | (
                S::AtOffice,
                E::Reserve
                | E::Release
                | E::Personalise
                | E::Destroy
                | E::Dispatch
                | E::ReceiveAtOffice,
            )
            | (
                S::Annulled,
                E::Reserve
                | E::Release
                | E::Personalise
                | E::Spoil
                | E::Dispatch
                | E::ReceiveAtOffice
                | E::HandOver
                | E::Annul,
            ) => refused,
        }
    }
}

impl fmt::Display for BookletState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CustodyEventKind {
    pub const ALL: [CustodyEventKind; 9] = [
        CustodyEventKind::Reserve,
        CustodyEventKind::Release,
        CustodyEventKind::Personalise,
        CustodyEventKind::Spoil,
        CustodyEventKind::Destroy,
        CustodyEventKind::Dispatch,
        CustodyEventKind::ReceiveAtOffice,
        CustodyEventKind::HandOver,
        CustodyEventKind::Annul,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CustodyEventKind::Reserve => "reserve",
            CustodyEventKind::Release => "release",
            CustodyEventKind::Personalise => "personalise",
            CustodyEventKind::Spoil => "spoil",
            CustodyEventKind::Destroy => "destroy",
            CustodyEventKind::Dispatch => "dispatch",
            CustodyEventKind::ReceiveAtOffice => "receive_at_office",
            CustodyEventKind::HandOver => "hand_over",
            CustodyEventKind::Annul => "annul",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for CustodyEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CustodyEvent {
    pub fn kind(&self) -> CustodyEventKind {
        match self {
            CustodyEvent::Reserve => CustodyEventKind::Reserve,
            CustodyEvent::Release => CustodyEventKind::Release,
            CustodyEvent::Personalise => CustodyEventKind::Personalise,
            CustodyEvent::Spoil { .. } => CustodyEventKind::Spoil,
            CustodyEvent::Destroy { .. } => CustodyEventKind::Destroy,
            CustodyEvent::Dispatch => CustodyEventKind::Dispatch,
            CustodyEvent::ReceiveAtOffice => CustodyEventKind::ReceiveAtOffice,
            CustodyEvent::HandOver => CustodyEventKind::HandOver,
            CustodyEvent::Annul { .. } => CustodyEventKind::Annul,
        }
    }

    /// The reason or witness, trimmed, for the custody record.
    pub fn detail(&self) -> Option<&str> {
        match self {
            CustodyEvent::Spoil { reason } | CustodyEvent::Annul { reason } => Some(reason.trim()),
            CustodyEvent::Destroy { witness } => Some(witness.trim()),
            CustodyEvent::Reserve
            | CustodyEvent::Release
            | CustodyEvent::Personalise
            | CustodyEvent::Dispatch
            | CustodyEvent::ReceiveAtOffice
            | CustodyEvent::HandOver => None,
        }
    }

    fn check_text(&self) -> Result<(), CustodyError> {
        let what = match self {
            CustodyEvent::Spoil { .. } | CustodyEvent::Annul { .. } => "reason",
            CustodyEvent::Destroy { .. } => "witness",
            CustodyEvent::Reserve
            | CustodyEvent::Release
            | CustodyEvent::Personalise
            | CustodyEvent::Dispatch
            | CustodyEvent::ReceiveAtOffice
            | CustodyEvent::HandOver => return Ok(()),
        };
        let text = self.detail().unwrap_or("");
        let chars = text.chars().count();
        if chars == 0 {
            return Err(CustodyError::MissingText {
                event: self.kind(),
                what,
            });
        }
        if chars > CUSTODY_TEXT_CHARS_MAX {
            return Err(CustodyError::TextTooLong {
                event: self.kind(),
                what,
                chars,
            });
        }
        Ok(())
    }

    /// Rebuilds an event from its stored kind and detail.
    pub fn from_parts(kind: CustodyEventKind, detail: Option<&str>) -> CustodyEvent {
        let text = detail.unwrap_or("").to_string();
        match kind {
            CustodyEventKind::Reserve => CustodyEvent::Reserve,
            CustodyEventKind::Release => CustodyEvent::Release,
            CustodyEventKind::Personalise => CustodyEvent::Personalise,
            CustodyEventKind::Spoil => CustodyEvent::Spoil { reason: text },
            CustodyEventKind::Destroy => CustodyEvent::Destroy { witness: text },
            CustodyEventKind::Dispatch => CustodyEvent::Dispatch,
            CustodyEventKind::ReceiveAtOffice => CustodyEvent::ReceiveAtOffice,
            CustodyEventKind::HandOver => CustodyEvent::HandOver,
            CustodyEventKind::Annul => CustodyEvent::Annul { reason: text },
        }
    }
}

// --- Numbers: passport numbers and booklet serials --------------------------

/// Why a passport number or booklet serial was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the series '{0}' must be two letters A-Z, e.g. 'AX'")]
    Series(String),
    #[error("the sequence {0} must be between 1 and {max}", max = SEQUENCE_MAX)]
    Sequence(u32),
    #[error("'{0}' must be two letters A-Z and seven digits (9 characters), e.g. 'AX1234567'")]
    Shape(String),
}

/// Two letters then seven digits, sequence 1..=9,999,999.
fn parse_series_number(s: &str) -> Result<([u8; 2], u32), NumberError> {
    let b = s.as_bytes();
    let shape = || NumberError::Shape(s.chars().take(20).collect());
    if b.len() != 9
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..].iter().all(u8::is_ascii_digit)
    {
        return Err(shape());
    }
    let n: u32 = s[2..].parse().map_err(|_| shape())?;
    if n == 0 {
        return Err(NumberError::Sequence(0));
    }
    Ok(([b[0], b[1]], n))
}

fn check_series(series: &str) -> Result<[u8; 2], NumberError> {
    match series.as_bytes() {
        [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok([*a, *b]),
        _ => Err(NumberError::Series(series.chars().take(20).collect())),
    }
}

fn check_sequence(n: u32) -> Result<u32, NumberError> {
    if (1..=SEQUENCE_MAX).contains(&n) {
        Ok(n)
    } else {
        Err(NumberError::Sequence(n))
    }
}

/// A passport number: a two-letter series and a seven-digit counter
/// ("AX1234567"). Nine characters, exactly the TD3 document number field, so
/// the MRZ never needs the long-number continuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PassportNumber {
    series: [u8; 2],
    sequence: u32,
}

impl PassportNumber {
    /// The `n`th number of `series`.
    pub fn from_sequence(series: &str, n: u32) -> Result<PassportNumber, NumberError> {
        Ok(PassportNumber {
            series: check_series(series)?,
            sequence: check_sequence(n)?,
        })
    }

    pub fn parse(s: &str) -> Result<PassportNumber, NumberError> {
        let (series, sequence) = parse_series_number(s)?;
        Ok(PassportNumber { series, sequence })
    }

    pub fn series(&self) -> &str {
        // Built only from ASCII uppercase letters.
        std::str::from_utf8(&self.series).unwrap_or("??")
    }

    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

impl fmt::Display for PassportNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:07}", self.series(), self.sequence)
    }
}

/// A blank booklet's printed serial, in the same shape as a passport number
/// ("AB0000001"); the two are different numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BookletSerial {
    prefix: [u8; 2],
    sequence: u32,
}

impl BookletSerial {
    pub fn new(prefix: &str, n: u32) -> Result<BookletSerial, NumberError> {
        Ok(BookletSerial {
            prefix: check_series(prefix)?,
            sequence: check_sequence(n)?,
        })
    }

    pub fn parse(s: &str) -> Result<BookletSerial, NumberError> {
        let (prefix, sequence) = parse_series_number(s)?;
        Ok(BookletSerial { prefix, sequence })
    }

    pub fn prefix(&self) -> &str {
        // Built only from ASCII uppercase letters.
        std::str::from_utf8(&self.prefix).unwrap_or("??")
    }

    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

impl fmt::Display for BookletSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:07}", self.prefix(), self.sequence)
    }
}

/// Why a serial range was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("write the range as FIRST-LAST, e.g. 'AB0000001-AB0005000'")]
    Shape,
    #[error("the first serial: {0}")]
    First(NumberError),
    #[error("the last serial: {0}")]
    Last(NumberError),
    #[error("both ends must have the same two letters ({first} and {last} differ)")]
    PrefixMismatch { first: String, last: String },
    #[error("the last serial comes before the first: swap them")]
    Reversed,
    #[error("the range holds {count} booklets, at most {max} are received at once: split it", max = SERIAL_RANGE_BOOKLETS_MAX)]
    TooLarge { count: u64 },
}

/// A consignment of booklets with consecutive serials, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SerialRange {
    first: BookletSerial,
    last: BookletSerial,
}

impl SerialRange {
    /// Reads "AB0000001-AB0005000" (spaces around the dash allowed; one
    /// serial alone is a range of one).
    pub fn parse(s: &str) -> Result<SerialRange, RangeError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(RangeError::Shape);
        }
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        if b.contains('-') {
            return Err(RangeError::Shape);
        }
        let first = BookletSerial::parse(a.trim()).map_err(RangeError::First)?;
        let last = BookletSerial::parse(b.trim()).map_err(RangeError::Last)?;
        SerialRange::new(first, last)
    }

    pub fn new(first: BookletSerial, last: BookletSerial) -> Result<SerialRange, RangeError> {
        if first.prefix != last.prefix {
            return Err(RangeError::PrefixMismatch {
                first: first.prefix().to_string(),
                last: last.prefix().to_string(),
            });
        }
        if last.sequence < first.sequence {
            return Err(RangeError::Reversed);
        }
        let count = u64::from(last.sequence - first.sequence) + 1;
        if count > u64::from(SERIAL_RANGE_BOOKLETS_MAX) {
            return Err(RangeError::TooLarge { count });
        }
        Ok(SerialRange { first, last })
    }

    pub fn first(&self) -> BookletSerial {
        self.first
    }

    pub fn last(&self) -> BookletSerial {
        self.last
    }

    /// Booklets in the range (at most [`SERIAL_RANGE_BOOKLETS_MAX`]).
    pub fn len(&self) -> u32 {
        self.last.sequence - self.first.sequence + 1
    }

    /// Never: a range holds at least one booklet.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every serial, in order.
    pub fn iter(&self) -> impl Iterator<Item = BookletSerial> + use<> {
        let prefix = self.first.prefix;
        (self.first.sequence..=self.last.sequence)
            .map(move |sequence| BookletSerial { prefix, sequence })
    }
}

impl fmt::Display for SerialRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

// --- Forecast ----------------------------------------------------------------

/// Days of stock left at the recent issue rate: `in_stock` booklets, of which
/// `issued_last_days` were used in the last `days` days. `None` when nothing
/// was issued (or the window is empty): no rate, no forecast, never infinity.
pub fn stock_forecast(in_stock: u64, issued_last_days: u64, days: u32) -> Option<f64> {
    if issued_last_days == 0 || days == 0 {
        return None;
    }
    // Counts are far below 2^52, so the conversions are exact.
    #[allow(clippy::cast_precision_loss)]
    let (stock, issued) = (in_stock as f64, issued_last_days as f64);
    Some(stock * f64::from(days) / issued)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event_of(kind: CustodyEventKind) -> CustodyEvent {
        CustodyEvent::from_parts(kind, Some("texto"))
    }

    #[test]
    fn booklet_types_follow_pages() {
        let check = |t: PassportType, b: BookletType| {
            assert_eq!(BookletType::for_passport(t), b);
            assert_eq!(b.pages(), t.pages());
            assert_eq!(BookletType::parse(b.as_str()), Some(b));
        };
        check(PassportType::Ordinario, BookletType::Pages32);
        check(PassportType::Ejecutivo, BookletType::Pages48);
        check(PassportType::Emergencia, BookletType::Pages8);
        check(PassportType::Fronterizo, BookletType::Pages28);
    }

    /// The whole matrix: every state × every event against the edge table.
    #[test]
    fn custody_matrix_is_the_edge_table() {
        let mut allowed = 0;
        for from in BookletState::ALL {
            assert_eq!(BookletState::parse(from.as_str()), Some(from));
            for kind in CustodyEventKind::ALL {
                assert_eq!(CustodyEventKind::parse(kind.as_str()), Some(kind));
                let expected = CUSTODY_EDGES
                    .iter()
                    .find(|(f, k, _)| *f == from && *k == kind)
                    .map(|(_, _, to)| *to);
                match (from.next(&event_of(kind)), expected) {
                    (Ok(to), Some(want)) => {
                        assert_eq!(to, want, "{from} --{kind}-->");
                        allowed += 1;
                    }
                    (Err(CustodyError::NotAllowed { .. }), None) => {}
                    (got, want) => panic!("{from} --{kind}--> {got:?}, expected {want:?}"),
                }
            }
        }
        assert_eq!(allowed, CUSTODY_EDGES.len());
    }

    #[test]
    fn custody_table() {
        use BookletState as S;
        let check = |from: S, e: CustodyEvent, want: Result<S, CustodyError>| {
            assert_eq!(from.next(&e), want, "{from} {e:?}");
        };
        check(S::InStock, CustodyEvent::Reserve, Ok(S::Reserved));
        check(S::Reserved, CustodyEvent::Release, Ok(S::InStock));
        check(S::Reserved, CustodyEvent::Personalise, Ok(S::Personalised));
        check(S::Personalised, CustodyEvent::Dispatch, Ok(S::Dispatched));
        check(
            S::Dispatched,
            CustodyEvent::ReceiveAtOffice,
            Ok(S::AtOffice),
        );
        check(S::AtOffice, CustodyEvent::HandOver, Ok(S::HandedOver));
        check(
            S::Reserved,
            CustodyEvent::Spoil {
                reason: "tinta corrida".into(),
            },
            Ok(S::Spoiled),
        );
        check(
            S::Reserved,
            CustodyEvent::Spoil {
                reason: "  ".into(),
            },
            Err(CustodyError::MissingText {
                event: CustodyEventKind::Spoil,
                what: "reason",
            }),
        );
        check(
            S::Spoiled,
            CustodyEvent::Destroy { witness: "".into() },
            Err(CustodyError::MissingText {
                event: CustodyEventKind::Destroy,
                what: "witness",
            }),
        );
        check(
            S::Spoiled,
            CustodyEvent::Destroy {
                witness: "Supervisor 12".into(),
            },
            Ok(S::Destroyed),
        );
        check(
            S::AtOffice,
            CustodyEvent::Annul {
                reason: "x".repeat(CUSTODY_TEXT_CHARS_MAX + 1),
            },
            Err(CustodyError::TextTooLong {
                event: CustodyEventKind::Annul,
                what: "reason",
                chars: CUSTODY_TEXT_CHARS_MAX + 1,
            }),
        );
        check(
            S::HandedOver,
            CustodyEvent::Annul { reason: "r".into() },
            Err(CustodyError::NotAllowed {
                from: S::HandedOver,
                event: CustodyEventKind::Annul,
            }),
        );
        check(
            S::InStock,
            CustodyEvent::Dispatch,
            Err(CustodyError::NotAllowed {
                from: S::InStock,
                event: CustodyEventKind::Dispatch,
            }),
        );
    }

    proptest! {
        #[test]
        fn random_custody_follows_edges(kinds in proptest::collection::vec(0..9usize, 1..40)) {
            let mut state = BookletState::InStock;
            for k in kinds {
                let kind = CustodyEventKind::ALL[k];
                match state.next(&event_of(kind)) {
                    Ok(to) => {
                        prop_assert!(!state.is_terminal(), "terminal {} took {}", state, kind);
                        prop_assert!(CUSTODY_EDGES.contains(&(state, kind, to)));
                        state = to;
                    }
                    Err(CustodyError::NotAllowed { from, event }) => {
                        prop_assert_eq!((from, event), (state, kind));
                        prop_assert!(!CUSTODY_EDGES.iter().any(|(f, e, _)| *f == state && *e == kind));
                    }
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
        }
    }

    #[test]
    fn terminal_states_have_no_edges() {
        for s in BookletState::ALL {
            let out = CUSTODY_EDGES.iter().filter(|(f, _, _)| *f == s).count();
            assert_eq!(s.is_terminal(), out == 0, "{s}");
        }
    }

    #[test]
    fn passport_numbers() {
        let n = PassportNumber::from_sequence("AX", 1_234_567).unwrap();
        assert_eq!(n.to_string(), "AX1234567");
        assert_eq!(PassportNumber::parse("AX1234567"), Ok(n));
        assert_eq!(n.series(), "AX");
        assert_eq!(n.sequence(), 1_234_567);
        assert_eq!(
            PassportNumber::from_sequence("AX", 1).unwrap().to_string(),
            "AX0000001"
        );
        assert_eq!(
            PassportNumber::from_sequence("ax", 1),
            Err(NumberError::Series("ax".into()))
        );
        assert_eq!(
            PassportNumber::from_sequence("AXY", 1),
            Err(NumberError::Series("AXY".into()))
        );
        assert_eq!(
            PassportNumber::from_sequence("AX", 0),
            Err(NumberError::Sequence(0))
        );
        assert_eq!(
            PassportNumber::from_sequence("AX", 10_000_000),
            Err(NumberError::Sequence(10_000_000))
        );
        for bad in [
            "AX123456",
            "AX12345678",
            "A11234567",
            "ax1234567",
            "AX12345X7",
            "ÑX1234567",
        ] {
            assert!(
                matches!(PassportNumber::parse(bad), Err(NumberError::Shape(_))),
                "{bad}"
            );
        }
        assert_eq!(
            PassportNumber::parse("AX0000000"),
            Err(NumberError::Sequence(0))
        );
    }

    proptest! {
        #[test]
        fn passport_numbers_round_trip(a in 0u8..26, b in 0u8..26, n in 1..=SEQUENCE_MAX) {
            let series = String::from_utf8(vec![b'A' + a, b'A' + b]).unwrap();
            let p = PassportNumber::from_sequence(&series, n).unwrap();
            let s = p.to_string();
            prop_assert_eq!(s.len(), 9);
            prop_assert_eq!(PassportNumber::parse(&s), Ok(p));
        }
    }

    #[test]
    fn serial_ranges() {
        let r = SerialRange::parse("AB0000001-AB0005000").unwrap();
        assert_eq!(
            (r.len(), r.to_string()),
            (5000, "AB0000001-AB0005000".into())
        );
        assert_eq!(r.iter().count(), 5000);
        assert_eq!(r.iter().nth(1).unwrap().to_string(), "AB0000002");
        assert_eq!(SerialRange::parse(" AB0000007 ").unwrap().len(), 1);
        assert_eq!(
            SerialRange::parse("AB0000001 - AB0000003").unwrap().len(),
            3
        );
        let check = |s: &str, want: RangeError| assert_eq!(SerialRange::parse(s), Err(want), "{s}");
        check("", RangeError::Shape);
        check("AB0000001-AB0000002-AB0000003", RangeError::Shape);
        check(
            "AB000001-AB0000002",
            RangeError::First(NumberError::Shape("AB000001".into())),
        );
        check(
            "AB0000001-ab0000002",
            RangeError::Last(NumberError::Shape("ab0000002".into())),
        );
        check(
            "AB0000001-AC0000002",
            RangeError::PrefixMismatch {
                first: "AB".into(),
                last: "AC".into(),
            },
        );
        check("AB0000010-AB0000001", RangeError::Reversed);
        check(
            "AB0000001-AB0100001",
            RangeError::TooLarge { count: 100_001 },
        );
        assert_eq!(
            SerialRange::parse("AB0000001-AB0100000").unwrap().len(),
            100_000
        );
    }

    #[test]
    fn forecast() {
        let check = |stock, issued, days, want: Option<f64>| {
            assert_eq!(
                stock_forecast(stock, issued, days),
                want,
                "{stock} {issued} {days}"
            );
        };
        check(1000, 0, 30, None);
        check(1000, 10, 0, None);
        check(1000, 300, 30, Some(100.0));
        check(0, 300, 30, Some(0.0));
        check(5000, 700, 7, Some(50.0));
        check(10, 40, 2, Some(0.5));
    }
}
