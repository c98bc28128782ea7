//! Re-seating instead of vanishing (issue 6 item 7): when an office closes
//! for a day or runs fewer counters, every affected active booking is moved
//! at once to the nearest equivalent seat in the same city, or, when none is
//! free within the horizon, kept as `displaced` for the citizen's choice.
//! Nothing is cancelled.
//!
//! Layout: [`close_office_day`] and [`cut_office_capacity`] are the staff
//! use cases; [`reseat_pending`] is the workers' pass that re-seats bookings
//! still sitting in a closed or cut day (a closure entered by another path,
//! an office's counters lowered); all three run [`reseat_day`], which writes
//! in ONE transaction: the closure or cut, the day's slots capped (so no
//! citizen can book into them meanwhile, enforced by `slot_seats`' CHECK),
//! every move or displacement with its mail, and the audit events.
//!
//! Order of preference for a new seat, as the issue states it: the same
//! office first, then the nearest day, then the nearest time of day; never
//! before the lost day, never past the target office's horizon. Bookings are
//! placed in the order of their original start, then of when they were made.
//! A capacity cut keeps, in each slot, the bookings made earliest that still
//! fit the new capacity and moves the others (the latest booked move first).

use crate::app::{App, OfficeEntry};
use crate::crypto::at;
use crate::mail::{self, Reseated};
use crate::workflow::{TxResult, WorkError, retrying};
use pasaporte_core::application::{Actor, CommandKind, check_reason};
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::calendar::{self, Closure, DayPlan};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::jiff::civil::Date;
use pasaporte_core::office::{COUNTERS_MAX, Office};
use pasaporte_core::{FieldError, FieldErrors};
use pasaporte_store::{self as store, SeatedBooking, StoreError, WriteError, WriteOutcome};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Tries at one booking's next-best seat when concurrent bookings keep
/// filling the chosen ones (PostgreSQL; on SQLite the day is written alone):
/// past this the booking is displaced rather than holding the transaction.
pub const SEAT_ATTEMPTS_MAX: usize = 64;

/// A booking moved by re-seating; no personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The confirmation code with all but its last two characters hidden.
    pub code_masked: String,
    pub from_office: String,
    pub from_ms: i64,
    pub to_office: String,
    pub to_ms: i64,
    pub seats: u32,
}

/// What a closure or a capacity cut did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReseatReport {
    pub moved: Vec<Moved>,
    /// Bookings left without a seat, waiting for their citizens' choice.
    pub displaced: usize,
    /// Active bookings of the day that kept their seat (a capacity cut).
    pub untouched: usize,
}

impl ReseatReport {
    fn absorb(&mut self, other: ReseatReport) {
        self.moved.extend(other.moved);
        self.displaced += other.displaced;
        self.untouched += other.untouched;
    }
}

/// What happens to the day.
#[derive(Clone, Debug)]
enum DayChange {
    /// Close it (a closure row is written).
    Close { reason: String },
    /// Run it with `counters` counters (a capacity cut row is written).
    Cut { counters: u32, reason: String },
    /// Re-seat what still sits in an already closed or cut day.
    Pending,
}

fn invalid(
    field: &'static str,
    code: &'static str,
    es: &'static str,
    en: &'static str,
) -> WorkError {
    WorkError::Invalid(FieldErrors(vec![FieldError::new(field, code, es, en)]))
}

fn checked_reason(reason: &str) -> Result<String, WorkError> {
    check_reason(CommandKind::Cancel, reason).map_err(|_| {
        invalid(
            "reason",
            "invalid_reason",
            "Escriba el motivo (hasta 500 caracteres, sin correos ni números de documento).",
            "Write the reason (up to 500 characters, without emails or document numbers).",
        )
    })
}

fn office_entry(app: &App, office: &str) -> Result<Arc<OfficeEntry>, WorkError> {
    app.office(office).ok_or(WorkError::NotFound)
}

fn not_past(entry: &OfficeEntry, day: Date, now: Timestamp) -> Result<(), WorkError> {
    if day < calendar::local_today(&entry.office, now) {
        return Err(invalid(
            "day",
            "day_in_past",
            "Ese día ya pasó.",
            "That day has passed.",
        ));
    }
    Ok(())
}

/// Closes `office` on `day` and re-seats its active bookings of that day.
pub async fn close_office_day(
    app: &App,
    office: &str,
    day: Date,
    reason: &str,
    actor: &Actor,
    now: Timestamp,
) -> Result<ReseatReport, WorkError> {
    let entry = office_entry(app, office)?;
    not_past(&entry, day, now)?;
    let reason = checked_reason(reason)?;
    reseat_day(app, &entry, day, DayChange::Close { reason }, actor, now).await
}

/// Lowers `office`'s counters on `day` to `counters` and re-seats the
/// bookings above the new capacity of their slot.
pub async fn cut_office_capacity(
    app: &App,
    office: &str,
    day: Date,
    counters: u32,
    reason: &str,
    actor: &Actor,
    now: Timestamp,
) -> Result<ReseatReport, WorkError> {
    let entry = office_entry(app, office)?;
    not_past(&entry, day, now)?;
    let reason = checked_reason(reason)?;
    if counters > COUNTERS_MAX.min(entry.office.counters) {
        return Err(invalid(
            "counters",
            "invalid_counters",
            "Un recorte deja menos ventanillas que las habituales de la oficina.",
            "A cut leaves fewer counters than the office's usual number.",
        ));
    }
    reseat_day(
        app,
        &entry,
        day,
        DayChange::Cut { counters, reason },
        actor,
        now,
    )
    .await
}

/// The workers' pass: re-seats active bookings still sitting in a closed day
/// or above a capacity cut from today on (a closure entered through another
/// path, a crash between a closure and its re-seating in older versions).
pub async fn reseat_pending(app: &App, now: Timestamp) -> Result<ReseatReport, WorkError> {
    // Yesterday in UTC is on or before every office's today.
    let since = now
        .to_zoned_datetime(pasaporte_core::jiff::tz::TimeZone::UTC)
        .date()
        .yesterday()
        .map_err(crate::workers::internal)?;
    let mut owed = Vec::new();
    for (office, day) in app.store.closed_or_cut_days_since(since).await? {
        let Some(entry) = app.office(&office) else {
            continue;
        };
        if day < calendar::local_today(&entry.office, now) {
            continue;
        }
        let (from, to) = entry.planned_day(day).bounds_ms;
        if app.store.active_between(&office, from, to).await? > 0 {
            owed.push((office, day));
        }
    }
    let mut report = ReseatReport::default();
    if owed.is_empty() {
        return Ok(report);
    }
    // A closure written by another path is not in this process's cache yet.
    app.reload_offices().await?;
    let actor = crate::workers::system("reseat");
    for (office, day) in owed {
        let entry = office_entry(app, &office)?;
        let r = reseat_day(app, &entry, day, DayChange::Pending, &actor, now).await?;
        report.absorb(r);
    }
    Ok(report)
}

/// A seat re-seating may offer.
#[derive(Clone, Debug)]
struct Candidate {
    /// 0 for the lost booking's own office, 1 for the others of its city.
    group: u8,
    office: usize,
    date: Date,
    /// Minutes since local midnight.
    minute_of_day: i32,
    start: Timestamp,
    end: Timestamp,
    capacity: u32,
    remaining: u32,
}

/// An office of the city with its closures and cuts as re-seating sees them.
struct CityOffice {
    entry: Arc<OfficeEntry>,
    closures: Vec<Closure>,
    cuts: HashMap<Date, u32>,
}

impl CityOffice {
    /// The day's slots with the capacity they have after closures and cuts.
    fn slots(&self, date: Date) -> Vec<calendar::Slot> {
        let office = &self.entry.office;
        match calendar::day_plan(office, &self.closures, date) {
            DayPlan::Closed(_) => Vec::new(),
            DayPlan::Open(mut slots) => {
                if let Some(counters) = self.cuts.get(&date) {
                    let cut = Office {
                        counters: *counters,
                        ..office.clone()
                    };
                    for s in &mut slots {
                        let minutes =
                            u32::try_from(s.end.duration_since(s.start).as_mins()).unwrap_or(0);
                        // A cut to zero counters closes the slot (capacity_for
                        // keeps one seat for a working office).
                        s.capacity = if *counters == 0 {
                            0
                        } else {
                            cut.capacity_for(minutes)
                        };
                    }
                }
                slots
            }
        }
    }
}

fn minute_of_day(office: &Office, t: Timestamp) -> i32 {
    let z = t.to_zoned_datetime(office.time_zone.clone());
    i32::from(z.hour()) * 60 + i32::from(z.minute())
}

fn mask_code(code: &str) -> String {
    let n = code.chars().count();
    code.chars()
        .enumerate()
        .map(|(i, c)| if i + 2 < n { '•' } else { c })
        .collect()
}

fn store_err(e: StoreError) -> WorkError {
    e.into()
}

fn write_err(e: WriteError) -> WorkError {
    match e {
        WriteError::Store(s) => s.into(),
        other => WorkError::Internal(other.to_string()),
    }
}

/// Applies `change` to `entry`'s `day` and re-seats, in one transaction
/// (retried whole when it loses a race), then refreshes the office cache
/// and the availability view.
async fn reseat_day(
    app: &App,
    entry: &Arc<OfficeEntry>,
    day: Date,
    change: DayChange,
    actor: &Actor,
    now: Timestamp,
) -> Result<ReseatReport, WorkError> {
    // The city's offices, the lost office first.
    let mut city = Vec::new();
    for e in std::iter::once(entry.clone()).chain(
        app.offices()
            .values()
            .filter(|e| {
                e.office.code != entry.office.code
                    && e.office.city.trim().to_lowercase()
                        == entry.office.city.trim().to_lowercase()
            })
            .cloned(),
    ) {
        let cuts = app
            .store
            .capacity_cuts(&e.office.code)
            .await?
            .into_iter()
            .map(|c| (c.date, c.counters))
            .collect();
        city.push(CityOffice {
            closures: e.closures.clone(),
            entry: e,
            cuts,
        });
    }
    if let Some(lost) = city.first_mut() {
        // The day as it is about to become; the slots as they were, for
        // capping (a closure replaces the day's slots with none).
        match &change {
            DayChange::Close { reason } => {
                lost.closures.retain(|c| c.date != day);
                lost.closures.push(Closure {
                    date: day,
                    reason: reason.clone(),
                });
            }
            DayChange::Cut { counters, .. } => {
                lost.cuts.insert(day, *counters);
            }
            DayChange::Pending => {}
        }
    }
    let report = retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let r = reseat_in(app, &mut tx, &city, day, &change, actor, now).await?;
        // Every office of the city may have gained or lost seats, and the
        // day's closure or cut is an office rule: other nodes' caches follow
        // (once each, at the end, so the rows are held only for the commit).
        let seats = city
            .iter()
            .map(|c| store::CacheScope::Seats(c.entry.office.code.clone()));
        store::bump_generations_in(&mut tx, seats.chain([store::CacheScope::Offices])).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(r)
    })?;
    app.reload_offices().await.map_err(store_err)?;
    if !report.moved.is_empty() || report.displaced > 0 {
        tracing::info!(
            office = %entry.office.code,
            %day,
            moved = report.moved.len(),
            displaced = report.displaced,
            "bookings re-seated"
        );
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn reseat_in(
    app: &App,
    tx: &mut store::Tx,
    city: &[CityOffice],
    day: Date,
    change: &DayChange,
    actor: &Actor,
    now: Timestamp,
) -> TxResult<ReseatReport> {
    let Some(lost) = city.first() else {
        return Ok(ReseatReport::default());
    };
    let office = &lost.entry.office;
    let code = office.code.as_str();
    let now_ms = now.as_millisecond();
    let mut events = Vec::new();
    match change {
        DayChange::Close { reason } => {
            store::insert_closure_in(tx, code, day, reason).await?;
            let mut e = AuditEvent::by(actor, now_ms, "office.close_day", code, day.to_string());
            e.detail = reason.clone();
            events.push(e);
        }
        DayChange::Cut { counters, reason } => {
            store::insert_capacity_cut_in(tx, code, day, *counters, reason).await?;
            let mut e = AuditEvent::by(actor, now_ms, "office.cut_capacity", code, day.to_string());
            e.to_state = Some(counters.to_string());
            e.detail = reason.clone();
            events.push(e);
        }
        DayChange::Pending => {}
    }
    // 1. Cap the day's slots at their new capacity (never below what they
    //    hold): from here no one else can take a seat the day no longer has.
    let (day_from, day_to) = lost.entry.planned_day(day).bounds_ms;
    let new_caps: BTreeMap<i64, u32> = lost
        .slots(day)
        .iter()
        .map(|s| (s.start.as_millisecond(), s.capacity))
        .collect();
    let mut caps: Vec<(i64, u32)> = new_caps.iter().map(|(k, v)| (*k, *v)).collect();
    // The day's slots as if it were open: a closure already in the cache
    // (the workers' pass) must not hide the slots to cap.
    let open_closures: Vec<Closure> = lost
        .entry
        .closures
        .iter()
        .filter(|c| c.date != day)
        .cloned()
        .collect();
    let old_plan = calendar::day_plan(office, &open_closures, day);
    if let DayPlan::Open(slots) = &old_plan {
        for s in slots {
            let k = s.start.as_millisecond();
            if !new_caps.contains_key(&k) {
                caps.push((k, 0));
            }
        }
    }
    for c in store::slot_counts_in(tx, code, day_from, day_to).await? {
        if !new_caps.contains_key(&c.start_ms) && !caps.iter().any(|(k, _)| *k == c.start_ms) {
            caps.push((c.start_ms, 0));
        }
    }
    store::cap_slots_in(tx, code, &caps).await?;

    // 2. Which bookings lose their seat: in each slot, the earliest made keep
    //    theirs while they fit the new capacity.
    let day_bookings = store::active_between_in(tx, code, day_from, day_to).await?;
    let mut by_slot: BTreeMap<i64, Vec<SeatedBooking>> = BTreeMap::new();
    for b in day_bookings {
        by_slot.entry(b.start_ms).or_default().push(b);
    }
    let mut report = ReseatReport::default();
    let mut to_place = Vec::new();
    for (start, mut bookings) in by_slot {
        bookings.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        let mut left = new_caps.get(&start).copied().unwrap_or(0);
        for b in bookings {
            if b.seats <= left {
                left -= b.seats;
                report.untouched += 1;
            } else {
                to_place.push(b);
            }
        }
    }
    if to_place.is_empty() {
        store::cap_slots_in(tx, code, &caps).await?;
        store::append_audit_events(tx, &events).await?;
        return Ok(report);
    }
    to_place
        .sort_by(|a, b| (a.start_ms, a.created_ms, &a.id).cmp(&(b.start_ms, b.created_ms, &b.id)));

    // 3. The seats on offer: the city's slots from the lost day to each
    //    office's horizon, with what they hold now.
    let mut cands = Vec::new();
    for (i, o) in city.iter().enumerate() {
        let last = calendar::horizon_end(&o.entry.office, now);
        if last < day {
            continue;
        }
        let first_start = lost_day_start(o, day);
        let end_ms = o.entry.planned_day(last).bounds_ms.1;
        let counts: HashMap<i64, (u32, u32)> =
            store::slot_counts_in(tx, &o.entry.office.code, first_start, end_ms)
                .await?
                .into_iter()
                .map(|c| (c.start_ms, (c.capacity, c.booked)))
                .collect();
        let span = u32::try_from((last - day).get_days().max(0)).unwrap_or(0) + 1;
        for date in calendar::dates(day, span) {
            for s in o.slots(date) {
                if s.start <= now {
                    continue;
                }
                let k = s.start.as_millisecond();
                let (cap, booked) = match counts.get(&k) {
                    Some((row_cap, booked)) => (s.capacity.min(*row_cap), *booked),
                    None => (s.capacity, 0),
                };
                cands.push(Candidate {
                    group: u8::from(i != 0),
                    office: i,
                    date,
                    minute_of_day: minute_of_day(&o.entry.office, s.start),
                    start: s.start,
                    end: s.end,
                    capacity: s.capacity,
                    remaining: cap.saturating_sub(booked),
                });
            }
        }
    }

    // 4. Place each booking at its best seat, or keep it for the citizen.
    let k = &app.keys;
    for b in to_place {
        let lost_at = Timestamp::from_millisecond(b.start_ms).map_err(crate::workers::internal)?;
        let tod = minute_of_day(office, lost_at);
        let email = k.open(at::booking_email(&b.id), &b.email_enc)?;
        let token = k.manage_token(&b.id);
        let mut placed = false;
        for _ in 0..SEAT_ATTEMPTS_MAX {
            let best = cands
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.remaining >= b.seats
                        && !(c.office == 0 && c.start.as_millisecond() == b.start_ms)
                })
                .min_by_key(|(_, c)| {
                    (
                        c.group,
                        c.date,
                        (c.minute_of_day - tod).abs(),
                        c.office,
                        c.start,
                    )
                })
                .map(|(i, _)| i);
            let Some(i) = best else { break };
            let c = &cands[i];
            let to = &city[c.office].entry.office;
            let mail = mail::reseat_mail(
                app,
                Reseated::Moved {
                    office: to,
                    start: c.start,
                    end: c.end,
                },
                &b.id,
                &b.code,
                &token,
                &email,
                now,
            )?;
            match store::move_booking_in(
                tx,
                &b.id,
                &to.code,
                c.start.as_millisecond(),
                c.capacity,
                now_ms,
                &mail,
            )
            .await
            {
                Ok(WriteOutcome::Moved {
                    from_office,
                    from_ms,
                    to_office,
                    to_ms,
                    seats,
                    ..
                }) => {
                    let mut e =
                        AuditEvent::by(actor, now_ms, "booking.reseat", &from_office, &b.id);
                    e.from_state = Some("active".into());
                    e.to_state = Some("active".into());
                    e.detail = format!("{from_office} {from_ms} -> {to_office} {to_ms}");
                    events.push(e);
                    report.moved.push(Moved {
                        code_masked: mask_code(&b.code),
                        from_office,
                        from_ms,
                        to_office,
                        to_ms,
                        seats,
                    });
                    if let Some(c) = cands.get_mut(i) {
                        c.remaining = c.remaining.saturating_sub(seats);
                    }
                    placed = true;
                    break;
                }
                Ok(other) => {
                    return Err(WorkError::Internal(format!(
                        "unexpected move outcome {other:?}"
                    )));
                }
                // Filled by a concurrent booking since it was counted.
                Err(WriteError::SlotFull) => {
                    if let Some(c) = cands.get_mut(i) {
                        c.remaining = 0;
                    }
                }
                Err(e) => return Err(write_err(e)),
            }
        }
        if !placed {
            let mail = mail::reseat_mail(
                app,
                Reseated::Displaced {
                    office,
                    lost: lost_at,
                },
                &b.id,
                &b.code,
                &token,
                &email,
                now,
            )?;
            store::displace_booking_in(tx, &b.id, now_ms, &mail)
                .await
                .map_err(write_err)?;
            let mut e = AuditEvent::by(actor, now_ms, "booking.displace", code, &b.id);
            e.from_state = Some("active".into());
            e.to_state = Some("displaced".into());
            e.detail = format!("{code} {}", b.start_ms);
            events.push(e);
            report.displaced += 1;
        }
    }
    // 5. The day's slots down to their new capacity, now that they hold no more.
    store::cap_slots_in(tx, code, &caps).await?;
    store::append_audit_events(tx, &events).await?;
    Ok(report)
}

/// The start of `day` at office `o` (in its zone), in unix ms.
fn lost_day_start(o: &CityOffice, day: Date) -> i64 {
    o.entry.planned_day(day).bounds_ms.0
}

/// The displaced bookings of `office` (or of every office), for supervisors.
pub async fn displaced(
    app: &App,
    office: Option<&str>,
) -> Result<Vec<store::DisplacedRow>, WorkError> {
    let mut rows = app.store.displaced_bookings(office).await?;
    for r in &mut rows {
        r.code = mask_code(&r.code);
    }
    Ok(rows)
}
