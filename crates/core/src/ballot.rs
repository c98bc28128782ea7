//! Ballot releases: when more people want a release window's slots than it
//! holds, the seats are requested over a request period and then allocated by
//! a draw that anyone can replay. First come, first served turns a scarce
//! release into a race that bots win; a draw makes the moment of asking
//! irrelevant, so there is nothing to race for.
//!
//! What is published, and when:
//! 1. When the request period opens: [`seed_commitment`] of a fresh random
//!    32-byte seed (the seed itself stays secret), and the offers file
//!    ([`write_offers`]).
//! 2. When it closes: the requests file ([`write_requests`]; request ids and
//!    keyed person hashes only, never an identity) and [`inputs_digest`] of
//!    both files, which freezes the inputs.
//! 3. When the draw runs: the seed, and the outcome file ([`write_outcome`]).
//!
//! Anyone can then [`replay`]: the seed must match the commitment, and
//! [`draw`] on the published files must give the published outcome, line for
//! line. The draw is a pure function of the seed and those files.
//!
//! The order: requests are ranked by [`order_key`], `SHA-256(tag || seed ||
//! person)`, ties (never seen in practice) by request id. It depends on neither
//! the order of the list, nor submission time, nor any earlier draw: each draw
//! has a fresh seed, so a person who lost one draw has the same chance as
//! anyone in the next. In that order each request gets its first ranked
//! preference that still has a slot with room for the whole family (a family
//! is seated in one slot, together, or not at all); a request with no such
//! preference is unallocated, and [`Outcome::unallocated`] keeps draw order so
//! a waitlist can follow it.
//!
//! What the commitment does not prevent: whoever holds the seed before the
//! draw can compute the order in advance. Keep the seed with a custodian
//! outside the booking system until the draw. And the requests file shows
//! each request's person hash: give each draw a hash keyed for that draw (not
//! the long-lived lookup hash), so published files cannot link one person's
//! entries across draws.
//!
//! Layout: limits; the types ([`SeatKey`], [`Offer`], [`Offers`],
//! [`Preference`], [`Request`], [`Allocation`], [`Outcome`]) and
//! [`BallotError`]; validation; the seed commitment; the draw ([`draw`] and
//! its seat pools); the text files (format at [`write_offers`],
//! [`write_requests`], [`write_outcome`]); [`replay`]; tests.

use jiff::civil::Date;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

// --- Limits ----------------------------------------------------------------

/// Most people seated together by one request: a half-hour slot at a small
/// office fits a family of five (see `office::SLOT_MINUTES_DEFAULT`).
pub const FAMILY_MAX: u32 = 5;
/// Most ranked preferences per request: enough for "near home, near work,
/// anywhere in the city", too few for one request to sweep a whole release.
pub const PREFERENCES_MAX: usize = 3;
/// Most requests in one draw: more than a year of the country's passport
/// demand; a longer list is a mistake or an attack, and the bound keeps the
/// draw's memory to a few hundred megabytes.
pub const REQUESTS_MAX: usize = 1_000_000;
/// Most slots offered in one draw: every office, every slot, for a
/// two-month window, with room to spare.
pub const SLOTS_MAX: usize = 500_000;
/// Most seats in one slot: a slot cannot seat more people than an office has
/// counters.
pub const SEATS_PER_SLOT_MAX: u32 = crate::office::COUNTERS_MAX;
/// Longest request id: a UUID is 36 characters.
pub const REQUEST_ID_CHARS_MAX: usize = 64;
/// Longest city name; the longest Colombian municipality name is about 40.
pub const CITY_CHARS_MAX: usize = 80;
/// A person is the lowercase hex of an HMAC-SHA256 keyed hash of the
/// identity (the server's `person_key`).
pub const PERSON_HEX_CHARS: usize = 64;

/// Domain-separation tags: a hash made for one purpose never equals one made
/// for another. Changing one breaks every published draw: add a new version.
const ORDER_TAG: &[u8] = b"pasaporte.ballot.order.v1\0";
const COMMITMENT_TAG: &[u8] = b"pasaporte.ballot.seed-commitment.v1\0";
const INPUTS_TAG: &[u8] = b"pasaporte.ballot.inputs.v1\0";

/// First line of each published file: names the file and its format version.
const OFFERS_HEADER: &str = "pasaporte-ballot-offers v1";
const REQUESTS_HEADER: &str = "pasaporte-ballot-requests v1";
const OUTCOME_HEADER: &str = "pasaporte-ballot-outcome v1";

// --- Types -----------------------------------------------------------------

/// One slot: an office, a day, and the slot's start (unix milliseconds, as
/// the calendar gives it). Ordered by office, day, start.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatKey {
    pub office: String,
    pub day: Date,
    pub start_ms: i64,
}

/// The seats of one slot offered to the ballot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub seat: SeatKey,
    pub seats: u32,
}

/// Everything a draw can give: the slots, and the city of each office (for
/// [`Preference::EarliestInCity`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offers {
    pub slots: Vec<Offer>,
    /// Office code → city name.
    pub city_of: BTreeMap<String, String>,
}

/// One ranked choice of a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Preference {
    /// Any slot of this office on this day (the earliest with room).
    Slot { office: String, day: Date },
    /// Any office of this city: the earliest day, then the earliest slot, ties
    /// by office code.
    EarliestInCity { city: String },
}

/// One person's entry in a draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    /// Keyed hash of the identity, lowercase hex; never the identity.
    pub person: String,
    /// People who must be seated together in one slot, 1 to [`FAMILY_MAX`].
    pub family: u32,
    /// 1 to [`PREFERENCES_MAX`], best first.
    pub preferences: Vec<Preference>,
}

/// A request's seats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub request_id: String,
    pub seat: SeatKey,
    pub seats: u32,
}

/// What a draw decided. Both lists are in draw order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub allocations: Vec<Allocation>,
    /// Request ids that got none of their preferences (for the waitlist).
    pub unallocated: Vec<String>,
}

/// One of the three published files, to say where a line is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFile {
    Offers,
    Requests,
    Outcome,
}

impl fmt::Display for TextFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextFile::Offers => "offers",
            TextFile::Requests => "requests",
            TextFile::Outcome => "outcome",
        })
    }
}

/// Why a draw, a file or a replay was refused. Names requests by id and
/// never carries a person hash.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum BallotError {
    #[error("request id '{id}' appears twice; give each request its own id")]
    DuplicateRequest { id: String },
    #[error(
        "requests '{first}' and '{second}' are from the same person; a person enters a draw once"
    )]
    SamePerson { first: String, second: String },
    #[error(
        "request '{id}': a family of {family}; a family is 1 to {FAMILY_MAX} people seated together"
    )]
    FamilySize { id: String, family: u32 },
    #[error("request '{id}': {count} preferences; give 1 to {PREFERENCES_MAX}, best first")]
    PreferenceCount { id: String, count: usize },
    #[error("request '{id}': preference {rank} repeats an earlier one; list each choice once")]
    RepeatedPreference { id: String, rank: usize },
    #[error("request '{id}': office '{office}' (asked for {day}) is not in this draw")]
    SlotNotOffered {
        id: String,
        office: String,
        day: Date,
    },
    #[error("request '{id}': no office of city '{city}' is in this draw")]
    CityNotOffered { id: String, city: String },
    #[error("request id '{id}': use 1 to {REQUEST_ID_CHARS_MAX} letters, digits, '-', '_' or '.'")]
    BadRequestId { id: String },
    #[error(
        "request '{id}': the person is a keyed hash, {PERSON_HEX_CHARS} lowercase hexadecimal characters"
    )]
    BadPerson { id: String },
    #[error("{count} requests; a draw takes at most {REQUESTS_MAX}")]
    TooManyRequests { count: usize },
    #[error("{count} slots offered; a draw takes at most {SLOTS_MAX}")]
    TooManySlots { count: usize },
    #[error("office code '{office}': use 2 to 12 capital letters, digits or '-'")]
    BadOfficeCode { office: String },
    #[error(
        "city '{city}': use 1 to {CITY_CHARS_MAX} characters without ';', '|', ':', control characters or spaces at either end"
    )]
    BadCity { city: String },
    #[error("office '{office}' offers slots but has no city; add it to the city map")]
    OfficeWithoutCity { office: String },
    #[error("slot {office} {day} {start_ms} is offered twice; merge its seats into one offer")]
    DuplicateSlot {
        office: String,
        day: Date,
        start_ms: i64,
    },
    #[error("slot {office} {day} {start_ms} offers {seats} seats; offer 1 to {SEATS_PER_SLOT_MAX}")]
    SeatCount {
        office: String,
        day: Date,
        start_ms: i64,
        seats: u32,
    },
    #[error("{file} line {line}: {reason}")]
    Malformed {
        file: TextFile,
        line: usize,
        reason: String,
    },
    #[error("the seed is 64 hexadecimal characters (32 bytes)")]
    BadSeed,
    #[error("the seed does not match the commitment published when the request period opened")]
    CommitmentMismatch,
}

// --- Validation ------------------------------------------------------------

fn valid_request_id(id: &str) -> bool {
    (1..=REQUEST_ID_CHARS_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_person(person: &str) -> bool {
    person.len() == PERSON_HEX_CHARS
        && person
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A city name fits the text files: no separators, no line breaks.
fn valid_city(city: &str) -> bool {
    let chars = city.chars().count();
    (1..=CITY_CHARS_MAX).contains(&chars)
        && city.trim() == city
        && !city
            .chars()
            .any(|c| c.is_control() || matches!(c, ';' | '|' | ':'))
}

fn check_office(office: &str) -> Result<(), BallotError> {
    if crate::office::valid_office_code(office) {
        Ok(())
    } else {
        Err(BallotError::BadOfficeCode {
            office: office.to_string(),
        })
    }
}

/// What the offers make available, for checking preferences against.
/// The offices and cities of a draw (from its city map, whether or not
/// they have a free slot: a preference for a day without one is valid and
/// simply finds no room).
struct Offered<'o> {
    offices: BTreeSet<&'o str>,
    cities: BTreeSet<&'o str>,
}

impl Offers {
    /// Checks every slot and the city map; returns what is on offer.
    fn check(&self) -> Result<Offered<'_>, BallotError> {
        if self.slots.len() > SLOTS_MAX {
            return Err(BallotError::TooManySlots {
                count: self.slots.len(),
            });
        }
        for (office, city) in &self.city_of {
            check_office(office)?;
            if !valid_city(city) {
                return Err(BallotError::BadCity { city: city.clone() });
            }
        }
        let mut seen = BTreeSet::new();
        let offered = Offered {
            offices: self.city_of.keys().map(String::as_str).collect(),
            cities: self.city_of.values().map(String::as_str).collect(),
        };
        for offer in &self.slots {
            let s = &offer.seat;
            check_office(&s.office)?;
            if !(1..=SEATS_PER_SLOT_MAX).contains(&offer.seats) {
                return Err(BallotError::SeatCount {
                    office: s.office.clone(),
                    day: s.day,
                    start_ms: s.start_ms,
                    seats: offer.seats,
                });
            }
            if !seen.insert(s) {
                return Err(BallotError::DuplicateSlot {
                    office: s.office.clone(),
                    day: s.day,
                    start_ms: s.start_ms,
                });
            }
            if !self.city_of.contains_key(&s.office) {
                return Err(BallotError::OfficeWithoutCity {
                    office: s.office.clone(),
                });
            }
        }
        Ok(offered)
    }

    /// Checks the offers on their own: every slot, seat count and city.
    pub fn validate(&self) -> Result<(), BallotError> {
        self.check().map(|_| ())
    }
}

impl Request {
    /// Checks this request on its own (not against offers or other requests).
    pub fn validate(&self) -> Result<(), BallotError> {
        let id = || self.id.clone();
        if !valid_request_id(&self.id) {
            return Err(BallotError::BadRequestId { id: id() });
        }
        if !valid_person(&self.person) {
            return Err(BallotError::BadPerson { id: id() });
        }
        if !(1..=FAMILY_MAX).contains(&self.family) {
            return Err(BallotError::FamilySize {
                id: id(),
                family: self.family,
            });
        }
        let count = self.preferences.len();
        if !(1..=PREFERENCES_MAX).contains(&count) {
            return Err(BallotError::PreferenceCount { id: id(), count });
        }
        for (i, p) in self.preferences.iter().enumerate() {
            check_preference_syntax(p)?;
            if self.preferences[..i].contains(p) {
                return Err(BallotError::RepeatedPreference {
                    id: id(),
                    rank: i + 1,
                });
            }
        }
        Ok(())
    }

    fn check_offered(&self, offered: &Offered<'_>) -> Result<(), BallotError> {
        for p in &self.preferences {
            match p {
                Preference::Slot { office, day } if !offered.offices.contains(office.as_str()) => {
                    return Err(BallotError::SlotNotOffered {
                        id: self.id.clone(),
                        office: office.clone(),
                        day: *day,
                    });
                }
                Preference::EarliestInCity { city } if !offered.cities.contains(city.as_str()) => {
                    return Err(BallotError::CityNotOffered {
                        id: self.id.clone(),
                        city: city.clone(),
                    });
                }
                Preference::Slot { .. } | Preference::EarliestInCity { .. } => {}
            }
        }
        Ok(())
    }
}

fn check_preference_syntax(p: &Preference) -> Result<(), BallotError> {
    match p {
        Preference::Slot { office, .. } => check_office(office),
        Preference::EarliestInCity { city } if valid_city(city) => Ok(()),
        Preference::EarliestInCity { city } => Err(BallotError::BadCity { city: city.clone() }),
    }
}

/// One request per id, one request per person.
fn check_unique(requests: &[Request]) -> Result<(), BallotError> {
    let mut ids = BTreeSet::new();
    let mut people: HashMap<&str, &str> = HashMap::with_capacity(requests.len());
    for r in requests {
        if !ids.insert(r.id.as_str()) {
            return Err(BallotError::DuplicateRequest { id: r.id.clone() });
        }
        if let Some(first) = people.insert(r.person.as_str(), r.id.as_str()) {
            return Err(BallotError::SamePerson {
                first: first.to_string(),
                second: r.id.clone(),
            });
        }
    }
    Ok(())
}

/// Everything [`draw`] refuses: bad offers, bad requests, duplicate ids or
/// people, and preferences naming an office-day or city not on offer.
pub fn validate(offers: &Offers, requests: &[Request]) -> Result<(), BallotError> {
    let offered = offers.check()?;
    if requests.len() > REQUESTS_MAX {
        return Err(BallotError::TooManyRequests {
            count: requests.len(),
        });
    }
    for r in requests {
        r.validate()?;
        r.check_offered(&offered)?;
    }
    check_unique(requests)
}

// --- Seed commitment -------------------------------------------------------

/// Lowercase hex SHA-256 of a tag and the seed: published when the request
/// period opens, so the seed cannot be chosen after seeing the requests.
pub fn seed_commitment(seed: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(COMMITMENT_TAG);
    h.update(seed);
    hex(&h.finalize())
}

/// Whether `seed` is the one `commitment` (hex, any case) promised.
pub fn verify_commitment(seed: &[u8; 32], commitment: &str) -> bool {
    seed_commitment(seed).eq_ignore_ascii_case(commitment.trim())
}

/// Reads a seed written as 64 hexadecimal characters.
pub fn parse_seed(text: &str) -> Result<[u8; 32], BallotError> {
    from_hex(text.trim())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(BallotError::BadSeed)
}

/// A seed as published: lowercase hex.
pub fn seed_hex(seed: &[u8; 32]) -> String {
    hex(seed)
}

// --- The draw --------------------------------------------------------------

/// A request's place in the draw: `SHA-256(tag || seed || person)`, lowest
/// first. It depends on the seed and the person only: not on the other
/// requests, the list's order, the time of asking, or any earlier draw.
pub fn order_key(seed: &[u8; 32], person: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ORDER_TAG);
    h.update(seed);
    h.update(person.as_bytes());
    h.finalize().into()
}

/// The requests in draw order (by [`order_key`], ties by id).
pub fn draw_order<'r>(seed: &[u8; 32], requests: &'r [Request]) -> Vec<&'r Request> {
    let mut keyed: Vec<([u8; 32], &Request)> = requests
        .iter()
        .map(|r| (order_key(seed, &r.person), r))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// Allocates the offered seats to the requests. Deterministic: the same
/// seed and inputs (in any list order) give the same outcome. Never seats
/// more than offered; seats a family in one slot or not at all.
pub fn draw(
    seed: &[u8; 32],
    offers: &Offers,
    requests: &[Request],
) -> Result<Outcome, BallotError> {
    validate(offers, requests)?;
    let mut seats = Seats::new(offers);
    let mut outcome = Outcome::default();
    for r in draw_order(seed, requests) {
        // `take` changes nothing when it finds no room, so trying the
        // preferences in rank order and stopping at the first success is safe.
        match r.preferences.iter().find_map(|p| seats.take(p, r.family)) {
            Some(seat) => outcome.allocations.push(Allocation {
                request_id: r.id.clone(),
                seat: seat.clone(),
                seats: r.family,
            }),
            None => outcome.unallocated.push(r.id.clone()),
        }
    }
    Ok(outcome)
}

/// A list of slots in preference order (earliest first) with, for each
/// family size, the first slot that may still have room for it. Seats only
/// ever decrease, so a slot skipped for a size never has room for it again:
/// each cursor only moves forward, and a whole draw walks each pool at most
/// [`FAMILY_MAX`] times.
struct Pool {
    slots: Vec<usize>,
    cursor: [usize; FAMILY_MAX as usize],
}

impl Pool {
    fn new() -> Self {
        Self {
            slots: Vec::new(),
            cursor: [0; FAMILY_MAX as usize],
        }
    }

    /// Seats `family` in the earliest slot with room; `None` changes nothing.
    fn take(&mut self, left: &mut [u32], family: u32) -> Option<usize> {
        let size = usize::try_from(family).ok()?.checked_sub(1)?;
        let cursor = self.cursor.get_mut(size)?;
        while let Some(&slot) = self.slots.get(*cursor) {
            let room = left.get_mut(slot)?;
            if *room >= family {
                *room -= family;
                return Some(slot);
            }
            *cursor += 1;
        }
        None
    }
}

/// The seats left in every slot, and the pools that preferences draw from.
struct Seats<'o> {
    /// Every slot, by day, start, office: the order "earliest" means.
    keys: Vec<&'o SeatKey>,
    left: Vec<u32>,
    by_office_day: BTreeMap<&'o str, BTreeMap<Date, Pool>>,
    by_city: BTreeMap<&'o str, Pool>,
}

impl<'o> Seats<'o> {
    /// `offers` must have passed [`Offers::check`].
    fn new(offers: &'o Offers) -> Self {
        let mut sorted: Vec<&Offer> = offers.slots.iter().collect();
        sorted.sort_by(|a, b| {
            let (a, b) = (&a.seat, &b.seat);
            (a.day, a.start_ms, &a.office).cmp(&(b.day, b.start_ms, &b.office))
        });
        let mut seats = Seats {
            keys: sorted.iter().map(|o| &o.seat).collect(),
            left: sorted.iter().map(|o| o.seats).collect(),
            by_office_day: BTreeMap::new(),
            by_city: BTreeMap::new(),
        };
        for (i, offer) in sorted.iter().enumerate() {
            let office = offer.seat.office.as_str();
            seats
                .by_office_day
                .entry(office)
                .or_default()
                .entry(offer.seat.day)
                .or_insert_with(Pool::new)
                .slots
                .push(i);
            if let Some(city) = offers.city_of.get(office) {
                seats
                    .by_city
                    .entry(city.as_str())
                    .or_insert_with(Pool::new)
                    .slots
                    .push(i);
            }
        }
        seats
    }

    /// Seats `family` for preference `p`, if it has room.
    fn take(&mut self, p: &Preference, family: u32) -> Option<&'o SeatKey> {
        let pool = match p {
            Preference::Slot { office, day } => {
                self.by_office_day.get_mut(office.as_str())?.get_mut(day)?
            }
            Preference::EarliestInCity { city } => self.by_city.get_mut(city.as_str())?,
        };
        let slot = pool.take(&mut self.left, family)?;
        self.keys.get(slot).copied()
    }
}

// --- Text files ------------------------------------------------------------

/// The offers file, canonical: a header line, then one `city` line per
/// office (by office code), then one `slot` line per slot (by office, day,
/// start), each line ending in `\n`:
///
/// ```text
/// pasaporte-ballot-offers v1
/// city;BOG-AME;Bogotá
/// slot;BOG-AME;2026-12-01;1796130000000;4
/// ```
///
/// `slot;OFFICE;YYYY-MM-DD;START_MS;SEATS`, START_MS the slot's start in
/// unix milliseconds.
pub fn write_offers(offers: &Offers) -> String {
    let mut out = format!("{OFFERS_HEADER}\n");
    for (office, city) in &offers.city_of {
        out.push_str(&format!("city;{office};{city}\n"));
    }
    let mut slots: Vec<&Offer> = offers.slots.iter().collect();
    slots.sort_by(|a, b| a.seat.cmp(&b.seat));
    for o in slots {
        let s = &o.seat;
        out.push_str(&format!(
            "slot;{};{};{};{}\n",
            s.office, s.day, s.start_ms, o.seats
        ));
    }
    out
}

/// Reads an offers file (any line order) and checks it as [`draw`] would.
pub fn parse_offers(text: &str) -> Result<Offers, BallotError> {
    let mut offers = Offers::default();
    for (line, content) in body_lines(text, TextFile::Offers, OFFERS_HEADER)? {
        let at_line = |reason: String| malformed(TextFile::Offers, line, reason);
        let fields: Vec<&str> = content.split(';').collect();
        match fields.as_slice() {
            ["city", office, city] => {
                check_office(office).map_err(|e| at_line(e.to_string()))?;
                if !valid_city(city) {
                    let e = BallotError::BadCity {
                        city: city.to_string(),
                    };
                    return Err(at_line(e.to_string()));
                }
                if offers
                    .city_of
                    .insert(office.to_string(), city.to_string())
                    .is_some()
                {
                    return Err(at_line(format!("office '{office}' has a second city")));
                }
            }
            ["slot", office, day, start_ms, seats] => {
                offers.slots.push(Offer {
                    seat: SeatKey {
                        office: office.to_string(),
                        day: parse_day(day).map_err(at_line)?,
                        start_ms: parse_number(start_ms, "start").map_err(at_line)?,
                    },
                    seats: parse_number(seats, "seats").map_err(at_line)?,
                });
            }
            _ => {
                return Err(at_line(
                    "expected city;OFFICE;CITY or slot;OFFICE;YYYY-MM-DD;START_MS;SEATS".into(),
                ));
            }
        }
        if offers.slots.len() > SLOTS_MAX {
            return Err(at_line(format!("more than {SLOTS_MAX} slots")));
        }
    }
    offers.validate()?;
    Ok(offers)
}

/// The requests file, canonical: a header line, then one line per request
/// by id, `ID;PERSON;FAMILY;PREF|PREF|PREF` with the preferences best first,
/// each `slot:OFFICE:YYYY-MM-DD` or `city:NAME`:
///
/// ```text
/// pasaporte-ballot-requests v1
/// r-0001;3f…(64 hex);3;slot:BOG-AME:2026-12-01|city:Bogotá
/// ```
pub fn write_requests(requests: &[Request]) -> String {
    let mut sorted: Vec<&Request> = requests.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = format!("{REQUESTS_HEADER}\n");
    for r in sorted {
        out.push_str(&format!(
            "{};{};{};{}\n",
            r.id,
            r.person,
            r.family,
            preferences_text(&r.preferences)
        ));
    }
    out
}

/// Ranked preferences as the requests file writes them: `slot:OFFICE:DAY`
/// or `city:NAME`, joined by `|`.
pub fn preferences_text(prefs: &[Preference]) -> String {
    prefs
        .iter()
        .map(preference_text)
        .collect::<Vec<_>>()
        .join("|")
}

/// Reads what [`preferences_text`] wrote.
pub fn parse_preferences(text: &str) -> Result<Vec<Preference>, String> {
    text.split('|').map(parse_preference).collect()
}

fn preference_text(p: &Preference) -> String {
    match p {
        Preference::Slot { office, day } => format!("slot:{office}:{day}"),
        Preference::EarliestInCity { city } => format!("city:{city}"),
    }
}

/// Reads a requests file (any line order): each request must be valid on
/// its own, and ids and people unique. Offers are checked by [`draw`].
pub fn parse_requests(text: &str) -> Result<Vec<Request>, BallotError> {
    let mut requests = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut people: HashMap<String, usize> = HashMap::new();
    for (line, content) in body_lines(text, TextFile::Requests, REQUESTS_HEADER)? {
        let at_line = |reason: String| malformed(TextFile::Requests, line, reason);
        if requests.len() == REQUESTS_MAX {
            return Err(at_line(format!("more than {REQUESTS_MAX} requests")));
        }
        let r = parse_request(content).map_err(at_line)?;
        r.validate().map_err(|e| at_line(e.to_string()))?;
        if let Some(first) = ids.insert(r.id.clone(), line) {
            return Err(at_line(format!(
                "request id '{}' is already on line {first}",
                r.id
            )));
        }
        if let Some(first) = people.insert(r.person.clone(), line) {
            return Err(at_line(format!(
                "the same person already made the request on line {first}; a person enters a draw once"
            )));
        }
        requests.push(r);
    }
    Ok(requests)
}

fn parse_request(content: &str) -> Result<Request, String> {
    let [id, person, family, prefs] =
        split_exact(content, ';').ok_or("expected ID;PERSON;FAMILY;PREF|PREF|PREF")?;
    Ok(Request {
        id: id.to_string(),
        person: person.to_string(),
        family: parse_number(family, "family")?,
        preferences: parse_preferences(prefs)?,
    })
}

fn parse_preference(text: &str) -> Result<Preference, String> {
    let bad = || format!("preference '{text}': write slot:OFFICE:YYYY-MM-DD or city:NAME");
    match text.split_once(':') {
        Some(("slot", rest)) => {
            let (office, day) = rest.split_once(':').ok_or_else(bad)?;
            Ok(Preference::Slot {
                office: office.to_string(),
                day: parse_day(day)?,
            })
        }
        Some(("city", city)) => Ok(Preference::EarliestInCity {
            city: city.to_string(),
        }),
        _ => Err(bad()),
    }
}

/// The outcome file, canonical: a header line, one `seat` line per
/// allocation in draw order, then one `none` line per unallocated request in
/// draw order:
///
/// ```text
/// pasaporte-ballot-outcome v1
/// seat;r-0007;BOG-AME;2026-12-01;1796130000000;3
/// none;r-0002
/// ```
///
/// `seat;REQUEST;OFFICE;YYYY-MM-DD;START_MS;SEATS`.
pub fn write_outcome(outcome: &Outcome) -> String {
    let mut out = format!("{OUTCOME_HEADER}\n");
    for a in &outcome.allocations {
        let s = &a.seat;
        out.push_str(&format!(
            "seat;{};{};{};{};{}\n",
            a.request_id, s.office, s.day, s.start_ms, a.seats
        ));
    }
    for id in &outcome.unallocated {
        out.push_str(&format!("none;{id}\n"));
    }
    out
}

/// Reads an outcome file. Lines keep their order within each list.
pub fn parse_outcome(text: &str) -> Result<Outcome, BallotError> {
    let mut outcome = Outcome::default();
    for (line, content) in body_lines(text, TextFile::Outcome, OUTCOME_HEADER)? {
        let at_line = |reason: String| malformed(TextFile::Outcome, line, reason);
        if outcome.allocations.len() + outcome.unallocated.len() == REQUESTS_MAX {
            return Err(at_line(format!("more than {REQUESTS_MAX} requests")));
        }
        let fields: Vec<&str> = content.split(';').collect();
        match fields.as_slice() {
            ["seat", id, office, day, start_ms, seats] => {
                outcome.allocations.push(Allocation {
                    request_id: outcome_id(id).map_err(at_line)?,
                    seat: SeatKey {
                        office: outcome_office(office).map_err(at_line)?,
                        day: parse_day(day).map_err(at_line)?,
                        start_ms: parse_number(start_ms, "start").map_err(at_line)?,
                    },
                    seats: outcome_seats(seats).map_err(at_line)?,
                });
            }
            ["none", id] => outcome.unallocated.push(outcome_id(id).map_err(at_line)?),
            _ => {
                return Err(at_line(
                    "expected seat;REQUEST;OFFICE;YYYY-MM-DD;START_MS;SEATS or none;REQUEST".into(),
                ));
            }
        }
    }
    Ok(outcome)
}

fn outcome_id(id: &str) -> Result<String, String> {
    if valid_request_id(id) {
        Ok(id.to_string())
    } else {
        Err(BallotError::BadRequestId { id: id.to_string() }.to_string())
    }
}

fn outcome_seats(text: &str) -> Result<u32, String> {
    let seats = parse_number(text, "seats")?;
    if (1..=FAMILY_MAX).contains(&seats) {
        Ok(seats)
    } else {
        Err(format!(
            "seats {seats}: a request is given 1 to {FAMILY_MAX}"
        ))
    }
}

fn outcome_office(office: &str) -> Result<String, String> {
    check_office(office)
        .map(|()| office.to_string())
        .map_err(|e| e.to_string())
}

/// SHA-256 (lowercase hex) of the canonical offers and requests files:
/// published when the request period closes, it freezes the draw's inputs.
/// The offers text's length comes first so the two texts cannot be
/// re-split.
pub fn inputs_digest(offers: &Offers, requests: &[Request]) -> String {
    let offers_text = write_offers(offers);
    let requests_text = write_requests(requests);
    let offers_len = u64::try_from(offers_text.len()).unwrap_or(u64::MAX);
    let mut h = Sha256::new();
    h.update(INPUTS_TAG);
    h.update(offers_len.to_be_bytes());
    h.update(offers_text.as_bytes());
    h.update(requests_text.as_bytes());
    hex(&h.finalize())
}

/// The lines after the header, numbered from 2 (the header is line 1).
fn body_lines<'t>(
    text: &'t str,
    file: TextFile,
    header: &str,
) -> Result<impl Iterator<Item = (usize, &'t str)>, BallotError> {
    let mut lines = text.lines();
    if lines.next() != Some(header) {
        return Err(malformed(
            file,
            1,
            format!("the first line must be '{header}'"),
        ));
    }
    let body: Vec<(usize, &str)> = lines.enumerate().map(|(i, l)| (i + 2, l)).collect();
    if let Some((line, _)) = body.iter().find(|(_, l)| l.is_empty()) {
        return Err(malformed(file, *line, "empty line".into()));
    }
    Ok(body.into_iter())
}

fn malformed(file: TextFile, line: usize, reason: String) -> BallotError {
    BallotError::Malformed { file, line, reason }
}

fn split_exact<const N: usize>(text: &str, sep: char) -> Option<[&str; N]> {
    let parts: Vec<&str> = text.split(sep).collect();
    parts.try_into().ok()
}

/// A day written exactly `YYYY-MM-DD` (jiff also reads longer forms; the
/// files are canonical, so only the form it writes is accepted).
fn parse_day(text: &str) -> Result<Date, String> {
    text.parse::<Date>()
        .ok()
        .filter(|d| d.to_string() == text)
        .ok_or_else(|| format!("day '{text}': write YYYY-MM-DD"))
}

/// A decimal number in canonical form (no sign for positives, no padding).
fn parse_number<T: std::str::FromStr + ToString>(text: &str, what: &str) -> Result<T, String> {
    text.parse::<T>()
        .ok()
        .filter(|n| n.to_string() == text)
        .ok_or_else(|| format!("{what} '{text}' is not a whole number"))
}

// --- Replay ----------------------------------------------------------------

/// The first line where a published outcome and the recomputed one differ
/// (numbered from 1, the header); `None` where a file has no such line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineDifference {
    pub line: usize,
    pub published: Option<String>,
    pub recomputed: Option<String>,
}

/// What a replay found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// [`inputs_digest`] of the files as read: compare it with the one
    /// published when the request period closed.
    pub inputs_digest: String,
    /// The outcome the draw gives.
    pub outcome: Outcome,
    /// `None` when the published outcome is identical.
    pub difference: Option<LineDifference>,
}

impl ReplayReport {
    pub fn identical(&self) -> bool {
        self.difference.is_none()
    }
}

/// Replays a published draw: the seed must match its commitment; the draw
/// is run again on the published offers and requests and compared, line by
/// line, with the published outcome.
pub fn replay(
    seed_hex: &str,
    commitment: &str,
    offers_text: &str,
    requests_text: &str,
    outcome_text: &str,
) -> Result<ReplayReport, BallotError> {
    let seed = parse_seed(seed_hex)?;
    if !verify_commitment(&seed, commitment) {
        return Err(BallotError::CommitmentMismatch);
    }
    let offers = parse_offers(offers_text)?;
    let requests = parse_requests(requests_text)?;
    let outcome = draw(&seed, &offers, &requests)?;
    let difference = first_difference(outcome_text, &write_outcome(&outcome));
    Ok(ReplayReport {
        inputs_digest: inputs_digest(&offers, &requests),
        outcome,
        difference,
    })
}

fn first_difference(published: &str, recomputed: &str) -> Option<LineDifference> {
    let (mut a, mut b) = (published.lines(), recomputed.lines());
    let mut line = 0;
    loop {
        line += 1;
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => {}
            (x, y) => {
                return Some(LineDifference {
                    line,
                    published: x.map(str::to_string),
                    recomputed: y.map(str::to_string),
                });
            }
        }
    }
}

// --- Hex -------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    // from_str_radix alone would accept a '+' sign.
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    const SEED: [u8; 32] = [7; 32];
    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;

    fn day(d: i8) -> Date {
        date(2026, 12, d)
    }

    fn seat(office: &str, d: i8, hour: i64) -> SeatKey {
        SeatKey {
            office: office.into(),
            day: day(d),
            start_ms: i64::from(d) * DAY_MS + hour * HOUR_MS,
        }
    }

    fn person(n: u32) -> String {
        format!("{n:064x}")
    }

    /// Offers of `(office, day, hour, seats)`; BOG-* offices are in Bogotá,
    /// MED-* in Medellín.
    fn offers(slots: &[(&str, i8, i64, u32)]) -> Offers {
        Offers {
            slots: slots
                .iter()
                .map(|&(office, d, hour, seats)| Offer {
                    seat: seat(office, d, hour),
                    seats,
                })
                .collect(),
            city_of: [
                ("BOG-A", "Bogotá"),
                ("BOG-B", "Bogotá"),
                ("MED-A", "Medellín"),
            ]
            .into_iter()
            .map(|(o, c)| (o.to_string(), c.to_string()))
            .collect(),
        }
    }

    fn slot(office: &str, d: i8) -> Preference {
        Preference::Slot {
            office: office.into(),
            day: day(d),
        }
    }

    fn city(name: &str) -> Preference {
        Preference::EarliestInCity { city: name.into() }
    }

    fn req(n: u32, family: u32, preferences: Vec<Preference>) -> Request {
        Request {
            id: format!("r-{n:04}"),
            person: person(n),
            family,
            preferences,
        }
    }

    fn seat_of<'a>(o: &'a Outcome, id: &str) -> Option<&'a SeatKey> {
        o.allocations
            .iter()
            .find(|a| a.request_id == id)
            .map(|a| &a.seat)
    }

    fn crowd(n: u32) -> Vec<Request> {
        (0..n)
            .map(|i| {
                let prefs = match i % 3 {
                    0 => vec![slot("BOG-A", 1), city("Bogotá")],
                    1 => vec![city("Medellín"), slot("BOG-B", 2)],
                    _ => vec![slot("MED-A", 2), slot("BOG-A", 1), city("Bogotá")],
                };
                req(i, 1 + i % 5, prefs)
            })
            .collect()
    }

    fn standard_offers() -> Offers {
        offers(&[
            ("BOG-A", 1, 8, 4),
            ("BOG-A", 1, 9, 3),
            ("BOG-B", 2, 8, 5),
            ("MED-A", 1, 10, 2),
            ("MED-A", 2, 8, 6),
        ])
    }

    #[test]
    fn draw_is_deterministic_and_ignores_list_order() {
        let (o, mut rs) = (standard_offers(), crowd(30));
        let first = draw(&SEED, &o, &rs).unwrap();
        assert_eq!(draw(&SEED, &o, &rs).unwrap(), first);
        rs.reverse();
        assert_eq!(draw(&SEED, &o, &rs).unwrap(), first);
        rs.rotate_left(7);
        assert_eq!(draw(&SEED, &o, &rs).unwrap(), first);
        assert!(!first.allocations.is_empty() && !first.unallocated.is_empty());
    }

    #[test]
    fn a_different_seed_gives_a_different_order() {
        let rs = crowd(20);
        let ids = |seed: &[u8; 32]| -> Vec<String> {
            draw_order(seed, &rs).iter().map(|r| r.id.clone()).collect()
        };
        assert_ne!(ids(&[1; 32]), ids(&[2; 32]));
        assert_eq!(ids(&[1; 32]), ids(&[1; 32]));
        let o = standard_offers();
        assert_ne!(
            draw(&[1; 32], &o, &rs).unwrap(),
            draw(&[2; 32], &o, &rs).unwrap()
        );
    }

    #[test]
    fn a_family_is_seated_together_or_not_at_all() {
        // Two seats left in the first slot: a family of three takes the
        // later slot with three, never 2 + 1.
        let o = offers(&[("BOG-A", 1, 8, 2), ("BOG-A", 1, 9, 3)]);
        let out = draw(&SEED, &o, &[req(1, 3, vec![slot("BOG-A", 1)])]).unwrap();
        assert_eq!(
            out.allocations,
            vec![Allocation {
                request_id: "r-0001".into(),
                seat: seat("BOG-A", 1, 9),
                seats: 3
            }]
        );
        // Only two seats anywhere: a family of three is unallocated, and the
        // seats stay for a smaller request.
        let o = offers(&[("BOG-A", 1, 8, 2)]);
        let rs = [
            req(1, 3, vec![slot("BOG-A", 1)]),
            req(2, 2, vec![slot("BOG-A", 1)]),
        ];
        let out = draw(&SEED, &o, &rs).unwrap();
        assert_eq!(out.unallocated, vec!["r-0001".to_string()]);
        assert_eq!(seat_of(&out, "r-0002"), Some(&seat("BOG-A", 1, 8)));
    }

    #[test]
    fn ranked_preferences_are_honoured() {
        let o = standard_offers();
        // Room everywhere: the first choice, even though the second is earlier.
        let r = req(1, 1, vec![slot("MED-A", 2), city("Bogotá")]);
        let out = draw(&SEED, &o, std::slice::from_ref(&r)).unwrap();
        assert_eq!(seat_of(&out, "r-0001"), Some(&seat("MED-A", 2, 8)));
        // One seat at MED-A day 1: whoever comes first has it, the other gets
        // their second choice.
        let o = offers(&[("MED-A", 1, 10, 1), ("BOG-B", 2, 8, 5)]);
        let rs = [
            req(1, 1, vec![slot("MED-A", 1), slot("BOG-B", 2)]),
            req(2, 1, vec![slot("MED-A", 1), slot("BOG-B", 2)]),
        ];
        let out = draw(&SEED, &o, &rs).unwrap();
        let order = draw_order(&SEED, &rs);
        assert_eq!(seat_of(&out, &order[0].id), Some(&seat("MED-A", 1, 10)));
        assert_eq!(seat_of(&out, &order[1].id), Some(&seat("BOG-B", 2, 8)));
    }

    #[test]
    fn earliest_in_city_takes_the_earliest_day_then_slot_then_office() {
        let o = offers(&[
            ("BOG-A", 2, 8, 5),
            ("BOG-A", 1, 11, 5),
            ("BOG-B", 1, 10, 5),
            ("MED-A", 1, 7, 5),
        ]);
        let out = draw(&SEED, &o, &[req(1, 1, vec![city("Bogotá")])]).unwrap();
        assert_eq!(seat_of(&out, "r-0001"), Some(&seat("BOG-B", 1, 10)));
        // Same day and start at two offices: the lower office code.
        let o = offers(&[("BOG-B", 1, 8, 5), ("BOG-A", 1, 8, 5)]);
        let out = draw(&SEED, &o, &[req(1, 1, vec![city("Bogotá")])]).unwrap();
        assert_eq!(seat_of(&out, "r-0001"), Some(&seat("BOG-A", 1, 8)));
        // A slot of an office-day: the earliest slot with room that day.
        let o = offers(&[("BOG-A", 1, 9, 5), ("BOG-A", 1, 8, 1), ("BOG-A", 2, 7, 5)]);
        let out = draw(&SEED, &o, &[req(1, 2, vec![slot("BOG-A", 1)])]).unwrap();
        assert_eq!(seat_of(&out, "r-0001"), Some(&seat("BOG-A", 1, 9)));
    }

    #[test]
    fn validation_names_what_to_fix() {
        let o = standard_offers();
        let check = |rs: Vec<Request>, want: BallotError| {
            assert_eq!(draw(&SEED, &o, &rs), Err(want.clone()), "{want}");
            assert_eq!(validate(&o, &rs), Err(want));
        };
        let ok = || req(1, 1, vec![city("Bogotá")]);
        let with = |f: &dyn Fn(&mut Request)| {
            let mut r = ok();
            f(&mut r);
            vec![r]
        };
        let id = || "r-0001".to_string();
        check(
            vec![
                ok(),
                Request {
                    person: person(2),
                    ..ok()
                },
            ],
            BallotError::DuplicateRequest { id: id() },
        );
        check(
            vec![
                ok(),
                Request {
                    id: "r-0002".into(),
                    ..ok()
                },
            ],
            BallotError::SamePerson {
                first: id(),
                second: "r-0002".into(),
            },
        );
        check(
            with(&|r| r.family = 0),
            BallotError::FamilySize {
                id: id(),
                family: 0,
            },
        );
        check(
            with(&|r| r.family = 6),
            BallotError::FamilySize {
                id: id(),
                family: 6,
            },
        );
        check(
            with(&|r| r.preferences.clear()),
            BallotError::PreferenceCount { id: id(), count: 0 },
        );
        check(
            with(&|r| {
                r.preferences = vec![
                    city("Bogotá"),
                    slot("BOG-A", 1),
                    slot("MED-A", 1),
                    slot("MED-A", 2),
                ]
            }),
            BallotError::PreferenceCount { id: id(), count: 4 },
        );
        check(
            with(&|r| r.preferences = vec![slot("BOG-A", 1), slot("BOG-A", 1)]),
            BallotError::RepeatedPreference { id: id(), rank: 2 },
        );
        check(
            with(&|r| r.preferences = vec![slot("CAL-A", 1)]),
            BallotError::SlotNotOffered {
                id: id(),
                office: "CAL-A".into(),
                day: day(1),
            },
        );
        check(
            with(&|r| r.preferences = vec![city("Cali")]),
            BallotError::CityNotOffered {
                id: id(),
                city: "Cali".into(),
            },
        );
        check(
            with(&|r| r.person = "ABC".into()),
            BallotError::BadPerson { id: id() },
        );
        check(
            with(&|r| r.person = person(0xabc).to_uppercase()),
            BallotError::BadPerson { id: id() },
        );
        check(
            with(&|r| r.id = "r 1".into()),
            BallotError::BadRequestId { id: "r 1".into() },
        );
        check(
            with(&|r| r.preferences = vec![city("Bogotá;x")]),
            BallotError::BadCity {
                city: "Bogotá;x".into(),
            },
        );
        // Offers.
        let check_offers = |o: Offers, want: BallotError| {
            assert_eq!(draw(&SEED, &o, &[]), Err(want.clone()), "{want}");
        };
        check_offers(
            offers(&[("BOG-A", 1, 8, 0)]),
            BallotError::SeatCount {
                office: "BOG-A".into(),
                day: day(1),
                start_ms: seat("BOG-A", 1, 8).start_ms,
                seats: 0,
            },
        );
        check_offers(
            offers(&[("BOG-A", 1, 8, 1), ("BOG-A", 1, 8, 2)]),
            BallotError::DuplicateSlot {
                office: "BOG-A".into(),
                day: day(1),
                start_ms: seat("BOG-A", 1, 8).start_ms,
            },
        );
        check_offers(
            offers(&[("CAL-A", 1, 8, 1)]),
            BallotError::OfficeWithoutCity {
                office: "CAL-A".into(),
            },
        );
        check_offers(
            offers(&[("bog", 1, 8, 1)]),
            BallotError::BadOfficeCode {
                office: "bog".into(),
            },
        );
        assert!(draw(&SEED, &o, &[]).unwrap() == Outcome::default());
    }

    #[test]
    fn errors_carry_no_person_hash() {
        let o = standard_offers();
        let rs = [
            req(1, 1, vec![city("Bogotá")]),
            Request {
                id: "r-0002".into(),
                ..req(1, 1, vec![city("Bogotá")])
            },
        ];
        let e = draw(&SEED, &o, &rs).unwrap_err().to_string();
        assert!(!e.contains(&person(1)), "{e}");
        let text = write_requests(&rs);
        let e = parse_requests(&text).unwrap_err().to_string();
        assert!(!e.contains(&person(1)) && e.contains("line 3"), "{e}");
    }

    #[test]
    fn text_files_round_trip_in_canonical_order() {
        let o = standard_offers();
        let rs = crowd(12);
        let text = write_offers(&o);
        let back = parse_offers(&text).unwrap();
        assert_eq!(back.city_of, o.city_of);
        let mut sorted = o.slots.clone();
        sorted.sort_by(|a, b| a.seat.cmp(&b.seat));
        assert_eq!(back.slots, sorted);
        assert_eq!(write_offers(&back), text);
        assert!(text.starts_with("pasaporte-ballot-offers v1\ncity;BOG-A;Bogotá\n"));
        assert!(text.contains(&format!(
            "\nslot;BOG-A;2026-12-01;{};4\n",
            seat("BOG-A", 1, 8).start_ms
        )));

        let mut shuffled = rs.clone();
        shuffled.reverse();
        let text = write_requests(&shuffled);
        assert_eq!(text, write_requests(&rs));
        assert_eq!(parse_requests(&text).unwrap(), rs);
        assert!(text.contains(&format!(
            "\nr-0002;{};3;slot:MED-A:2026-12-02|slot:BOG-A:2026-12-01|city:Bogotá\n",
            person(2)
        )));

        let out = draw(&SEED, &o, &rs).unwrap();
        let text = write_outcome(&out);
        assert_eq!(parse_outcome(&text).unwrap(), out);
        assert_eq!(
            inputs_digest(&o, &rs),
            inputs_digest(&parse_offers(&write_offers(&o)).unwrap(), &shuffled)
        );
        assert_ne!(inputs_digest(&o, &rs), inputs_digest(&o, &rs[1..]));
    }

    #[test]
    fn malformed_lines_are_named() {
        let p = person(1);
        let check = |result: Result<(), BallotError>, file: TextFile, line: usize| match result {
            Err(BallotError::Malformed {
                file: f,
                line: l,
                reason,
            }) => {
                assert_eq!((f, l), (file, line), "{reason}");
            }
            other => panic!("{file} line {line}: got {other:?}"),
        };
        let requests = |body: &str| {
            parse_requests(&format!(
                "pasaporte-ballot-requests v1\nr-1;{p};1;city:Bogotá\n{body}\n"
            ))
            .map(|_| ())
        };
        check(
            requests(&format!("r-2;{p}x;1;city:Bogotá")),
            TextFile::Requests,
            3,
        );
        check(
            requests(&format!("r-2;{};1;town:Bogotá", person(2))),
            TextFile::Requests,
            3,
        );
        check(
            requests(&format!("r-2;{};01;city:Bogotá", person(2))),
            TextFile::Requests,
            3,
        );
        check(
            requests(&format!("r-2;{};6;city:Bogotá", person(2))),
            TextFile::Requests,
            3,
        );
        check(
            requests(&format!("r-2;{};1;slot:BOG-A:2026-12-1", person(2))),
            TextFile::Requests,
            3,
        );
        check(
            requests(&format!("r-2;{};1;slot:BOG-A:2026-12-01T10:00", person(2))),
            TextFile::Requests,
            3,
        );
        check(
            requests(&format!("r-2;{};1", person(2))),
            TextFile::Requests,
            3,
        );
        check(
            requests(&format!("r-1;{};1;city:Bogotá", person(2))),
            TextFile::Requests,
            3,
        );
        check(
            requests(&format!("r-2;{p};1;city:Bogotá")),
            TextFile::Requests,
            3,
        );
        check(requests(""), TextFile::Requests, 3);
        check(
            parse_requests("r-1;x;1;city:Bogotá\n").map(|_| ()),
            TextFile::Requests,
            1,
        );
        assert!(
            requests(&format!(
                "r-2;{};5;slot:BOG-A:2026-12-01|city:Cali",
                person(2)
            ))
            .is_ok()
        );

        let offers = |body: &str| {
            parse_offers(&format!(
                "pasaporte-ballot-offers v1\ncity;BOG-A;Bogotá\n{body}\n"
            ))
            .map(|_| ())
        };
        check(offers("city;BOG-A;Cali"), TextFile::Offers, 3);
        check(offers("city;BOG-B;Bo|gotá"), TextFile::Offers, 3);
        check(offers("slot;BOG-A;2026-12-01;x;4"), TextFile::Offers, 3);
        check(offers("slot;BOG-A;2026-12-01;5;-1"), TextFile::Offers, 3);
        check(offers("slot;BOG-A;2026-12-01;5"), TextFile::Offers, 3);
        assert_eq!(
            offers("slot;BOG-B;2026-12-01;5;1"),
            Err(BallotError::OfficeWithoutCity {
                office: "BOG-B".into()
            })
        );
        assert!(offers("slot;BOG-A;2026-12-01;-5;1").is_ok());

        let outcome = |body: &str| {
            parse_outcome(&format!("pasaporte-ballot-outcome v1\nnone;r-1\n{body}\n")).map(|_| ())
        };
        check(outcome("seat;r-2;BOG-A;2026-12-01;5"), TextFile::Outcome, 3);
        check(outcome("seat;r-2;bog;2026-12-01;5;1"), TextFile::Outcome, 3);
        check(outcome("maybe;r-2"), TextFile::Outcome, 3);
        check(
            outcome("seat;r-2;BOG-A;2026-12-01;5;6"),
            TextFile::Outcome,
            3,
        );
        assert!(outcome("seat;r-2;BOG-A;2026-12-01;5;1").is_ok());
    }

    #[test]
    fn commitment_verifies_only_its_seed() {
        let c = seed_commitment(&SEED);
        assert_eq!(c.len(), 64);
        assert!(verify_commitment(&SEED, &c));
        assert!(verify_commitment(&SEED, &c.to_uppercase()));
        assert!(verify_commitment(&SEED, &format!(" {c}\n")));
        assert!(!verify_commitment(&[8; 32], &c));
        assert!(!verify_commitment(&SEED, ""));
        // Known answer: the tag, then the seed.
        let mut h = Sha256::new();
        h.update(b"pasaporte.ballot.seed-commitment.v1\0");
        h.update(SEED);
        assert_eq!(c, hex(&h.finalize()));
        assert_ne!(c, hex(&Sha256::digest(SEED)));
        // Seeds in hex.
        assert_eq!(parse_seed(&seed_hex(&SEED)), Ok(SEED));
        assert_eq!(parse_seed(&seed_hex(&SEED).to_uppercase()), Ok(SEED));
        assert_eq!(parse_seed("07"), Err(BallotError::BadSeed));
        assert_eq!(
            parse_seed(&format!("+7{}", "07".repeat(31))),
            Err(BallotError::BadSeed)
        );
        assert_eq!(parse_seed(&"zz".repeat(32)), Err(BallotError::BadSeed));
    }

    fn published() -> (String, String, String, String, String) {
        let (o, rs) = (standard_offers(), crowd(30));
        let out = draw(&SEED, &o, &rs).unwrap();
        (
            seed_hex(&SEED),
            seed_commitment(&SEED),
            write_offers(&o),
            write_requests(&rs),
            write_outcome(&out),
        )
    }

    #[test]
    fn replay_confirms_a_true_outcome() {
        let (seed, commitment, offers_text, requests_text, outcome_text) = published();
        let report = replay(
            &seed,
            &commitment,
            &offers_text,
            &requests_text,
            &outcome_text,
        )
        .unwrap();
        assert!(report.identical());
        assert_eq!(report.outcome, parse_outcome(&outcome_text).unwrap());
        assert_eq!(
            report.inputs_digest,
            inputs_digest(&standard_offers(), &crowd(30))
        );
    }

    #[test]
    fn replay_names_the_first_tampered_line() {
        let (seed, commitment, offers_text, requests_text, outcome_text) = published();
        let mut lines: Vec<String> = outcome_text.lines().map(String::from).collect();
        // Swap the first two allocations' requests: same seats, wrong people.
        let swap = |l: &str, from: &str, to: &str| l.replacen(from, to, 1);
        let id = |l: &str| l.split(';').nth(1).unwrap().to_string();
        let (a, b) = (id(&lines[1]), id(&lines[2]));
        let original = lines[1].clone();
        lines[1] = swap(&lines[1], &a, &b);
        lines[2] = swap(&lines[2], &b, &a);
        let tampered = lines.join("\n") + "\n";
        let report = replay(&seed, &commitment, &offers_text, &requests_text, &tampered).unwrap();
        assert!(!report.identical());
        assert_eq!(
            report.difference,
            Some(LineDifference {
                line: 2,
                published: Some(lines[1].clone()),
                recomputed: Some(original),
            })
        );
        // A line left out at the end.
        let cut: String = outcome_text
            .lines()
            .take(5)
            .map(|l| format!("{l}\n"))
            .collect();
        let report = replay(&seed, &commitment, &offers_text, &requests_text, &cut).unwrap();
        let d = report.difference.unwrap();
        assert_eq!((d.line, d.published), (6, None));
        assert!(d.recomputed.is_some());
    }

    #[test]
    fn replay_refuses_a_seed_that_is_not_the_committed_one() {
        let (_, commitment, offers_text, requests_text, outcome_text) = published();
        let other = seed_hex(&[8; 32]);
        assert_eq!(
            replay(
                &other,
                &commitment,
                &offers_text,
                &requests_text,
                &outcome_text
            ),
            Err(BallotError::CommitmentMismatch)
        );
        assert_eq!(
            replay(
                "nope",
                &commitment,
                &offers_text,
                &requests_text,
                &outcome_text
            ),
            Err(BallotError::BadSeed)
        );
    }

    /// A person's place depends on the seed and the person only, so losing
    /// one draw says nothing about the next: over many seeds, someone who
    /// lost a draw wins the next one as often as anyone.
    #[test]
    fn a_previous_draw_does_not_change_a_persons_chance() {
        let others_a = crowd(5);
        let others_b = crowd(40);
        let me = person(1_000);
        let rank = |seed: &[u8; 32], others: &[Request]| {
            let mut rs = others.to_vec();
            rs.push(Request {
                id: "me".into(),
                person: me.clone(),
                family: 1,
                preferences: vec![city("Bogotá")],
            });
            let order = draw_order(seed, &rs);
            let my_key = order_key(seed, &me);
            // Everyone ahead of me has a lower key, whoever else entered.
            order
                .iter()
                .take_while(|r| r.id != "me")
                .all(|r| order_key(seed, &r.person) < my_key)
        };
        assert!(rank(&SEED, &others_a) && rank(&SEED, &others_b));

        // Two people, one seat, 400 draws with fresh seeds.
        let o = offers(&[("BOG-A", 1, 8, 1)]);
        let rs = [
            req(1, 1, vec![city("Bogotá")]),
            req(2, 1, vec![city("Bogotá")]),
        ];
        let wins: Vec<bool> = (0u32..400)
            .map(|i| {
                let seed: [u8; 32] = Sha256::digest(i.to_be_bytes()).into();
                let out = draw(&seed, &o, &rs).unwrap();
                seat_of(&out, "r-0001").is_some()
            })
            .collect();
        let won = wins.iter().filter(|w| **w).count();
        let after_a_loss: Vec<bool> = wins.windows(2).filter(|w| !w[0]).map(|w| w[1]).collect();
        let won_after_loss = after_a_loss.iter().filter(|w| **w).count();
        assert!((160..=240).contains(&won), "{won} of 400");
        let share = won_after_loss as f64 / after_a_loss.len() as f64;
        assert!((0.38..=0.62).contains(&share), "{share}");
    }

    // --- Properties ---------------------------------------------------------

    const OFFICES: [&str; 3] = ["BOG-A", "BOG-B", "MED-A"];

    /// Random offers over 3 offices × 3 days × 4 hours (0 seats = no slot),
    /// and requests whose preferences name what is offered.
    fn scenario() -> impl Strategy<Value = (Offers, Vec<Request>)> {
        let seats = proptest::collection::vec(0u32..=6, 36);
        let prefs = proptest::collection::vec((any::<bool>(), 0usize..64, 0usize..2), 1..=3);
        let requests = proptest::collection::vec((1u32..=5, prefs), 0..60);
        (seats, requests).prop_map(|(seats, requests)| {
            let mut slots = Vec::new();
            for (i, &n) in seats.iter().enumerate() {
                if n > 0 || i == 0 {
                    let office = OFFICES[i / 12];
                    let d = i8::try_from(1 + (i / 4) % 3).unwrap();
                    let hour = i64::try_from(8 + i % 4).unwrap();
                    slots.push((office, d, hour, n.max(1)));
                }
            }
            let o = offers(&slots);
            let office_days: Vec<(String, Date)> = o
                .slots
                .iter()
                .map(|s| (s.seat.office.clone(), s.seat.day))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let cities: Vec<String> = o
                .slots
                .iter()
                .map(|s| o.city_of[&s.seat.office].clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let rs = requests
                .into_iter()
                .enumerate()
                .map(|(n, (family, picks))| {
                    let mut preferences: Vec<Preference> = Vec::new();
                    for (by_city, i, _) in picks {
                        let p = if by_city {
                            city(&cities[i % cities.len()])
                        } else {
                            let (office, day) = &office_days[i % office_days.len()];
                            Preference::Slot {
                                office: office.clone(),
                                day: *day,
                            }
                        };
                        if !preferences.contains(&p) {
                            preferences.push(p);
                        }
                    }
                    req(u32::try_from(n).unwrap(), family, preferences)
                })
                .collect();
            (o, rs)
        })
    }

    fn matches(p: &Preference, seat: &SeatKey, o: &Offers) -> bool {
        match p {
            Preference::Slot { office, day } => *office == seat.office && *day == seat.day,
            Preference::EarliestInCity { city } => o.city_of.get(&seat.office) == Some(city),
        }
    }

    /// The draw's rule stated as plainly as possible: in draw order, the first
    /// preference with a slot that has room, scanning every slot by day,
    /// start, office. [`draw`] must agree with it.
    fn reference_draw(seed: &[u8; 32], o: &Offers, rs: &[Request]) -> Outcome {
        let mut slots: Vec<Offer> = o.slots.clone();
        slots.sort_by(|a, b| {
            let (a, b) = (&a.seat, &b.seat);
            (a.day, a.start_ms, &a.office).cmp(&(b.day, b.start_ms, &b.office))
        });
        let mut out = Outcome::default();
        for r in draw_order(seed, rs) {
            let found = r.preferences.iter().find_map(|p| {
                slots
                    .iter()
                    .position(|s| matches(p, &s.seat, o) && s.seats >= r.family)
            });
            match found {
                Some(i) => {
                    slots[i].seats -= r.family;
                    out.allocations.push(Allocation {
                        request_id: r.id.clone(),
                        seat: slots[i].seat.clone(),
                        seats: r.family,
                    });
                }
                None => out.unallocated.push(r.id.clone()),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn draw_follows_the_rule((o, rs) in scenario(), seed in any::<[u8; 32]>()) {
            prop_assert_eq!(draw(&seed, &o, &rs).unwrap(), reference_draw(&seed, &o, &rs));
        }

        #[test]
        fn draw_invariants((o, rs) in scenario(), seed in any::<[u8; 32]>(), rotate in 0usize..60) {
            let out = draw(&seed, &o, &rs).unwrap();
            // Same outcome whatever the list's order.
            let mut shuffled = rs.clone();
            if !shuffled.is_empty() {
                let k = rotate % shuffled.len();
                shuffled.rotate_left(k);
                shuffled.reverse();
            }
            prop_assert_eq!(&draw(&seed, &o, &shuffled).unwrap(), &out);

            // Every request exactly once: allocated or not.
            let mut seen: Vec<&str> = out.allocations.iter().map(|a| a.request_id.as_str())
                .chain(out.unallocated.iter().map(String::as_str)).collect();
            seen.sort_unstable();
            let mut ids: Vec<&str> = rs.iter().map(|r| r.id.as_str()).collect();
            ids.sort_unstable();
            prop_assert_eq!(seen, ids);

            // No slot over its seats; a family whole, in a slot it asked for.
            let mut used: BTreeMap<&SeatKey, u32> = BTreeMap::new();
            for a in &out.allocations {
                let r = rs.iter().find(|r| r.id == a.request_id).unwrap();
                prop_assert_eq!(a.seats, r.family);
                prop_assert!(r.preferences.iter().any(|p| matches(p, &a.seat, &o)));
                *used.entry(&a.seat).or_default() += a.seats;
            }
            for (key, n) in used {
                let offered = o.slots.iter().find(|s| &s.seat == key).unwrap().seats;
                prop_assert!(n <= offered, "{:?}: {} of {}", key, n, offered);
            }

            // An unallocated request found no room anywhere it asked at the
            // end either (seats only ever decrease).
            let mut left: BTreeMap<&SeatKey, u32> = o.slots.iter().map(|s| (&s.seat, s.seats)).collect();
            for a in &out.allocations {
                *left.get_mut(&a.seat).unwrap() -= a.seats;
            }
            for id in &out.unallocated {
                let r = rs.iter().find(|r| &r.id == id).unwrap();
                for (key, n) in &left {
                    let wanted = r.preferences.iter().any(|p| matches(p, key, &o));
                    prop_assert!(!wanted || *n < r.family, "{} left room at {:?}", id, key);
                }
            }

            // The files round-trip and replay agrees.
            let offers_text = write_offers(&o);
            let requests_text = write_requests(&rs);
            let outcome_text = write_outcome(&out);
            prop_assert_eq!(write_offers(&parse_offers(&offers_text).unwrap()), offers_text.clone());
            prop_assert_eq!(write_requests(&parse_requests(&requests_text).unwrap()), requests_text.clone());
            prop_assert_eq!(&parse_outcome(&outcome_text).unwrap(), &out);
            let report = replay(&seed_hex(&seed), &seed_commitment(&seed), &offers_text, &requests_text, &outcome_text).unwrap();
            prop_assert!(report.identical());
        }

        #[test]
        fn order_keys_depend_on_seed_and_person_only(seed in any::<[u8; 32]>(), other in any::<[u8; 32]>(), n in any::<u32>()) {
            let p = person(n);
            prop_assert_eq!(order_key(&seed, &p), order_key(&seed, &p.clone()));
            if other != seed {
                prop_assert_ne!(order_key(&seed, &p), order_key(&other, &p));
            }
            prop_assert_ne!(order_key(&seed, &p), order_key(&seed, &person(n.wrapping_add(1))));
        }
    }
}
