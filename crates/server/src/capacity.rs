//! Capacity published with its reasons: for every office and day, the seats
//! the calendar offers, how many are booked and free, and, when a day offers
//! fewer than the office's usual day, how many are withheld and why; with the
//! booklet stock and the published rationing rule. Capacity is never cut in
//! silence: whatever the calendar does not offer is listed here with a reason.
//!
//! Layout: limits and the rationing rule first, then the reasons
//! ([`Withheld`]) and the per-day arithmetic (pure, unit-tested), then the
//! use case [`capacity`], which reuses [`booking::office_days`] (and so the
//! availability view) rather than computing slots again.
//!
//! Seats are split per pool by the office's policy (`pasaporte_core::shares`):
//! each day lists, per pool, the seats offered and booked ([`PoolDay`]);
//! `offered`, `booked` and `free` stay the totals over every pool.

use crate::app::{App, OfficeEntry};
use crate::booking::{self, AvailabilityError, DayNote, DayView};
use crate::i18n::Lang;
use pasaporte_core::calendar::{self, ClosedReason, DayPlan};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::jiff::civil::{Date, Weekday};
use pasaporte_core::office::{Office, minutes_between};
use pasaporte_core::production::BookletType;
use pasaporte_core::shares::{Pool, Shares};
use pasaporte_core::{FieldError, FieldErrors};
use pasaporte_store::{PoolCount, StockForecast, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Days one query shows when none are asked for: two weeks of calendar.
pub const DAYS_DEFAULT: u32 = 14;
/// Most days one query may span: a month, which is what vanished in 2025.
pub const DAYS_MAX: u32 = 31;
/// Most office-days one request computes: a month for 200 offices (every
/// passport office and consulate, with room), each day a lookup in the
/// availability view. Past it the caller asks for one office or fewer days.
pub const OFFICE_DAYS_MAX: usize = 31 * 200;
/// Days of issues the stock forecast looks back over.
pub const STOCK_WINDOW_DAYS: u32 = 30;
/// Below this many days of stock of any booklet type, the rationing rule applies.
pub const RATIONING_DAYS_LEFT: f64 = 30.0;

/// The published rationing rule, in Spanish.
pub const RATIONING_RULE_ES: &str = "Si las existencias de libretas bajan de 30 días, se atienden primero: 1) pasaportes de emergencia, 2) primeros pasaportes y reemplazos por pérdida, 3) renovaciones; la capacidad de citas no se reduce en silencio: cualquier reducción se publica aquí con su motivo.";
/// The published rationing rule, in English.
pub const RATIONING_RULE_EN: &str = "If booklet stock falls below 30 days, these come first: 1) emergency passports, 2) first passports and replacements for lost ones, 3) renewals; appointment capacity is never reduced in silence: any reduction is published here with its reason.";

/// Why a day offers fewer seats than the office's usual day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Withheld {
    /// A holiday, a host-country holiday, a closure, or no opening hours.
    Closed(ClosedReason),
    /// The day's opening hours are shorter than the office's usual day.
    ShortHours,
    /// Part of today has passed: its slots can no longer be booked.
    Elapsed,
    /// The day has passed.
    Past,
    /// The day is after the booking horizon: not open for booking yet.
    BeyondHorizon,
}

impl Withheld {
    /// Stable, for programs.
    pub fn code(&self) -> &'static str {
        match self {
            Withheld::Closed(r) => r.code(),
            Withheld::ShortHours => "short_hours",
            Withheld::Elapsed => "elapsed",
            Withheld::Past => "past",
            Withheld::BeyondHorizon => "beyond_horizon",
        }
    }

    /// For people, with the holiday's name or the closure's reason.
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Withheld::Closed(ClosedReason::Holiday(name)) => {
                format!("{}: {name}", lang.pick("Festivo", "Public holiday"))
            }
            Withheld::Closed(ClosedReason::HostHoliday(name)) => format!(
                "{}: {name}",
                lang.pick("Festivo del país sede", "Host-country public holiday")
            ),
            Withheld::Closed(ClosedReason::Closure(reason)) => {
                format!(
                    "{}: {reason}",
                    lang.pick("Oficina cerrada", "Office closed")
                )
            }
            Withheld::Closed(ClosedReason::NoHours) => lang
                .pick(
                    "La oficina no atiende este día de la semana",
                    "The office does not open on this day of the week",
                )
                .into(),
            Withheld::ShortHours => lang
                .pick(
                    "Horario de atención más corto este día",
                    "Shorter opening hours on this day",
                )
                .into(),
            Withheld::Elapsed => lang
                .pick(
                    "Parte del día ya pasó",
                    "Part of the day has already passed",
                )
                .into(),
            Withheld::Past => lang.pick("Fecha pasada", "This date has passed").into(),
            Withheld::BeyondHorizon => lang
                .pick(
                    "Aún no abierto para citas (fuera del plazo de reserva)",
                    "Not open for booking yet (beyond the booking horizon)",
                )
                .into(),
        }
    }
}

/// One office-day's seats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityDay {
    pub date: Date,
    /// Seats in the slots the calendar offers (still bookable).
    pub offered: u32,
    pub booked: u32,
    pub free: u32,
    /// The office's usual day less `offered`.
    pub withheld: u32,
    /// Why, when the day offers fewer seats than usual or none.
    pub reasons: Vec<Withheld>,
    /// The same seats per pool, in [`Pool::ALL`] order.
    pub pools: Vec<PoolDay>,
    /// People of ballot requests still waiting for a seat that name this
    /// office and day (`Store::ballot_demand`).
    pub demand: u32,
    /// Whether a ballot release gives this day's online seats.
    pub by_ballot: bool,
}

/// One pool's seats on one office-day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolDay {
    pub pool: Pool,
    pub offered: u32,
    pub booked: u32,
}

impl PoolDay {
    pub fn free(&self) -> u32 {
        self.offered.saturating_sub(self.booked)
    }
}

/// Seats taken per slot start and pool, as the store counts them.
pub type PoolBooked = BTreeMap<(i64, Pool), u32>;

/// The day's seats per pool: each offered slot cut by `shares`; the online
/// pool's bookings from the citizens' view, the other pools' from `booked`.
pub fn pool_days(view: &DayView, shares: &Shares, booked: &PoolBooked) -> Vec<PoolDay> {
    Pool::ALL
        .into_iter()
        .map(|pool| {
            let mut day = PoolDay {
                pool,
                offered: 0,
                booked: 0,
            };
            for s in &view.slots {
                let seats = shares.split(s.slot_capacity).get(pool);
                day.offered += seats;
                day.booked += match pool {
                    Pool::Online => s.capacity.saturating_sub(s.remaining),
                    Pool::Urgent | Pool::WalkIn | Pool::Priority => booked
                        .get(&(s.start.as_millisecond(), pool))
                        .copied()
                        .unwrap_or(0)
                        .min(seats),
                };
            }
            day
        })
        .collect()
}

/// `day` with its seats per pool, its totals taken over every pool.
pub fn with_pools(mut day: CapacityDay, pools: Vec<PoolDay>) -> CapacityDay {
    day.booked = pools.iter().map(|p| p.booked).sum();
    day.free = day.offered.saturating_sub(day.booked);
    day.pools = pools;
    day
}

fn pool_booked(counts: &[PoolCount]) -> PoolBooked {
    counts
        .iter()
        .map(|c| ((c.start_ms, c.pool), c.booked))
        .collect()
}

/// An office's days.
#[derive(Debug)]
pub struct OfficeCapacity {
    pub entry: Arc<OfficeEntry>,
    /// Seats the office's longest day of the week offers.
    pub usual_day_seats: u32,
    pub days: Vec<CapacityDay>,
}

/// Days of stock left of one booklet type.
#[derive(Clone, Debug, PartialEq)]
pub struct StockLine {
    pub booklet_type: BookletType,
    pub in_stock: u64,
    /// `None` when nothing was issued in the window (no rate to divide by).
    pub days_left: Option<f64>,
}

/// The whole published picture.
#[derive(Debug)]
pub struct Capacity {
    pub generated_at: Timestamp,
    /// The first date asked for, or the earliest of the offices' todays.
    pub from: Option<Date>,
    pub days: u32,
    pub offices: Vec<OfficeCapacity>,
    pub stock: Vec<StockLine>,
    pub rationing_applies: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("unknown office")]
    UnknownOffice,
    #[error("invalid query: {0}")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AvailabilityError> for CapacityError {
    fn from(e: AvailabilityError) -> Self {
        match e {
            AvailabilityError::UnknownOffice => CapacityError::UnknownOffice,
            AvailabilityError::Invalid(errs) => CapacityError::Invalid(errs),
            AvailabilityError::Store(e) => CapacityError::Store(e),
        }
    }
}

/// Seats one day of the week offers by the office's hours, the way
/// `calendar::day_plan` cuts them into slots (a clock change aside).
pub fn weekday_seats(office: &Office, day: Weekday) -> u32 {
    let step = i64::from(office.slot_minutes.max(1));
    office
        .hours
        .on(day)
        .iter()
        .map(|iv| {
            let total = minutes_between(iv.open, iv.close);
            let full = u32::try_from(total / step).unwrap_or(0);
            if full == 0 && total > 0 {
                office.capacity_for(u32::try_from(total).unwrap_or(0))
            } else {
                full * office.capacity_for(office.slot_minutes.max(1))
            }
        })
        .sum()
}

/// The office's usual day: the seats of its longest day of the week.
pub fn usual_day_seats(office: &Office) -> u32 {
    [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ]
    .into_iter()
    .map(|d| weekday_seats(office, d))
    .max()
    .unwrap_or(0)
}

/// The seats of one day as the citizens' calendar shows it (`view`), against
/// the day's plan by the rules (`plan`) and the office's usual day.
///
/// Every pool's seats are offered; `booked` and `free` here count the online
/// pool's bookings only, until [`with_pools`] adds the other pools'.
pub fn day_capacity(usual: u32, view: &DayView, plan: &DayPlan) -> CapacityDay {
    let offered: u32 = view.slots.iter().map(|s| s.slot_capacity).sum();
    let booked: u32 = view
        .slots
        .iter()
        .map(|s| s.capacity.saturating_sub(s.remaining))
        .sum();
    let free = offered.saturating_sub(booked);
    let withheld = usual.saturating_sub(offered);
    let mut reasons = Vec::new();
    if offered < usual || offered == 0 {
        match &view.note {
            Some(DayNote::Past) => reasons.push(Withheld::Past),
            Some(DayNote::BeyondHorizon) => reasons.push(Withheld::BeyondHorizon),
            // The plan below names it.
            Some(DayNote::Closed(_)) | None => {}
        }
        match plan {
            DayPlan::Closed(r) => reasons.push(Withheld::Closed(r.clone())),
            DayPlan::Open(slots) => {
                let planned: u32 = slots.iter().map(|s| s.capacity).sum();
                if planned < usual {
                    reasons.push(Withheld::ShortHours);
                }
                if view.note.is_none() && offered < planned {
                    reasons.push(Withheld::Elapsed);
                }
            }
        }
    }
    CapacityDay {
        date: view.date,
        offered,
        booked,
        free,
        withheld,
        reasons,
        pools: Vec::new(),
        demand: 0,
        by_ballot: false,
    }
}

/// Whether the rationing rule applies: some booklet type has less than
/// [`RATIONING_DAYS_LEFT`] days of stock at the recent rate.
pub fn rationing_applies(stock: &[StockLine]) -> bool {
    stock
        .iter()
        .any(|s| s.days_left.is_some_and(|d| d < RATIONING_DAYS_LEFT))
}

fn stock_line(f: &StockForecast) -> StockLine {
    StockLine {
        booklet_type: f.booklet_type,
        in_stock: f.in_stock,
        days_left: f.days_left,
    }
}

/// A checked query: the offices, the first date (each office's today when
/// none) and the number of days.
type Query = (Vec<Arc<OfficeEntry>>, Option<Date>, u32);

/// Checks the query: `from` a date, `days` in `1..=DAYS_MAX`, the office
/// known, and the work within [`OFFICE_DAYS_MAX`].
fn check_query(
    app: &App,
    office: Option<&str>,
    from: Option<&str>,
    days: Option<u32>,
) -> Result<Query, CapacityError> {
    let offices: Vec<Arc<OfficeEntry>> = match office.map(str::trim).filter(|s| !s.is_empty()) {
        Some(code) => vec![app.office(code).ok_or(CapacityError::UnknownOffice)?],
        None => app.offices().values().cloned().collect(),
    };
    let mut errs = FieldErrors::default();
    let from = match from.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        // On an error `from` stays `None`, and the error is returned below.
        Some(s) => errs.take(s.parse::<Date>().map_err(|_| {
            FieldError::new(
                "from",
                "invalid_date",
                "Escriba la fecha como AAAA-MM-DD.",
                "Write the date as YYYY-MM-DD.",
            )
        })),
    };
    let days = days.unwrap_or(DAYS_DEFAULT);
    if days == 0 || days > DAYS_MAX {
        errs.push(FieldError::new(
            "days",
            "invalid_days",
            "Pida de 1 a 31 días.",
            "Ask for 1 to 31 days.",
        ));
    } else if offices.len().saturating_mul(days as usize) > OFFICE_DAYS_MAX {
        errs.push(FieldError::new(
            "days",
            "too_much_work",
            "Demasiadas oficinas por días para una sola consulta: elija una oficina o menos días.",
            "Too many offices times days for one query: choose one office or fewer days.",
        ));
    }
    if !errs.is_empty() {
        return Err(CapacityError::Invalid(errs));
    }
    Ok((offices, from, days))
}

/// The seats offered, booked, free and withheld (with why) at `office` (all
/// offices when none) for `days` days from `from` (each office's today when
/// none), with the booklet stock and whether rationing applies.
pub async fn capacity(
    app: &App,
    office: Option<&str>,
    from: Option<&str>,
    days: Option<u32>,
    now: Timestamp,
) -> Result<Capacity, CapacityError> {
    let (entries, from_date, days) = check_query(app, office, from, days)?;
    let from_text = from_date.map(|d| d.to_string());
    let mut offices = Vec::with_capacity(entries.len());
    // One read for every office's ballot demand.
    let demand = app.store.ballot_demand().await?;
    for entry in entries {
        let (entry, views) = booking::office_days(
            app,
            &entry.office.code,
            from_text.as_deref(),
            Some(days),
            now,
        )
        .await?;
        let usual = usual_day_seats(&entry.office);
        // One read for the pools the availability view does not hold.
        let span = match (views.first(), views.last()) {
            (Some(a), Some(b)) => Some((
                entry.planned_day(a.date).bounds_ms.0,
                entry.planned_day(b.date).bounds_ms.1,
            )),
            _ => None,
        };
        let booked = match span {
            Some((from_ms, to_ms)) => pool_booked(
                &app.store
                    .pool_counts(&entry.office.code, from_ms, to_ms)
                    .await?,
            ),
            None => PoolBooked::new(),
        };
        let mut days = Vec::with_capacity(views.len());
        for v in &views {
            let day = day_capacity(usual, v, &entry.planned_day(v.date).plan);
            let mut day = with_pools(day, pool_days(v, &entry.policy.shares, &booked));
            day.demand = demand
                .get(&(entry.office.code.clone(), v.date.to_string()))
                .copied()
                .unwrap_or(0);
            day.by_ballot = crate::ballot::live_refusal(app, &entry.office.code, v.date)
                .await?
                .is_some();
            days.push(day);
        }
        offices.push(OfficeCapacity {
            entry,
            usual_day_seats: usual,
            days,
        });
    }
    let from = from_date.or_else(|| {
        offices
            .iter()
            .map(|o| calendar::local_today(&o.entry.office, now))
            .min()
    });
    let stock: Vec<StockLine> = app
        .store
        .stock_forecasts(None, now.as_millisecond(), STOCK_WINDOW_DAYS)
        .await?
        .iter()
        .map(stock_line)
        .collect();
    Ok(Capacity {
        generated_at: now,
        from,
        days,
        rationing_applies: rationing_applies(&stock),
        offices,
        stock,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::booking::SlotView;
    use pasaporte_core::calendar::Slot;
    use pasaporte_core::jiff::civil::date;
    use pasaporte_core::office::parse_offices_csv;

    fn office() -> Office {
        // Weekdays 08:00-12:00 (8 slots of 30 min, 10 seats each = 80),
        // Saturdays 08:00-10:00 (40), closed on Sundays.
        let csv = "code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity,sunday_hours,service_minutes,slot_minutes,horizon_days\n\
                   UNO,Uno,ministry,Bogotá,COL,America/Bogota,08:00-12:00,08:00-10:00,10,80,,30,30,60\n";
        parse_offices_csv(csv).unwrap().remove(0)
    }

    fn slot(capacity: u32, remaining: u32) -> SlotView {
        let t = Timestamp::UNIX_EPOCH;
        SlotView {
            start: t,
            end: t,
            capacity,
            slot_capacity: capacity,
            remaining,
            start_text: String::new(),
            end_text: String::new(),
        }
    }

    fn plan_slot(capacity: u32) -> Slot {
        Slot {
            start: Timestamp::UNIX_EPOCH,
            end: Timestamp::UNIX_EPOCH,
            local_start: date(2026, 1, 1).at(8, 0, 0, 0),
            capacity,
        }
    }

    fn check(
        note: Option<DayNote>,
        slots: Vec<SlotView>,
        plan: DayPlan,
        expected: (u32, u32, u32, u32, &[&str]),
    ) {
        let view = DayView {
            date: date(2026, 12, 8),
            note,
            slots,
        };
        let d = day_capacity(80, &view, &plan);
        let codes: Vec<&str> = d.reasons.iter().map(Withheld::code).collect();
        assert_eq!(
            (d.offered, d.booked, d.free, d.withheld, codes.as_slice()),
            expected,
            "{view:?}"
        );
    }

    #[test]
    fn usual_day_is_the_longest_day() {
        let o = office();
        assert_eq!(weekday_seats(&o, Weekday::Monday), 80);
        assert_eq!(weekday_seats(&o, Weekday::Saturday), 40);
        assert_eq!(weekday_seats(&o, Weekday::Sunday), 0);
        assert_eq!(usual_day_seats(&o), 80);
    }

    #[test]
    fn reasons_for_each_kind_of_day() {
        let full = || (0..8).map(|_| plan_slot(10)).collect::<Vec<_>>();
        let views = || (0..8).map(|_| slot(10, 10)).collect::<Vec<_>>();
        // An ordinary open day: nothing withheld, no reason.
        check(None, views(), DayPlan::Open(full()), (80, 0, 80, 0, &[]));
        // Bookings show as booked and not free.
        let mut v = views();
        v[0] = slot(10, 7);
        check(None, v, DayPlan::Open(full()), (80, 3, 77, 0, &[]));
        // A holiday, a closure, no hours: all withheld with the reason.
        let holiday = ClosedReason::Holiday("Inmaculada Concepción");
        check(
            Some(DayNote::Closed(holiday.clone())),
            vec![],
            DayPlan::Closed(holiday),
            (0, 0, 0, 80, &["holiday"]),
        );
        let closure = ClosedReason::Closure("Inventario".into());
        check(
            Some(DayNote::Closed(closure.clone())),
            vec![],
            DayPlan::Closed(closure),
            (0, 0, 0, 80, &["closure"]),
        );
        check(
            Some(DayNote::Closed(ClosedReason::NoHours)),
            vec![],
            DayPlan::Closed(ClosedReason::NoHours),
            (0, 0, 0, 80, &["no_hours"]),
        );
        // A Saturday's shorter hours.
        let short = (0..4).map(|_| plan_slot(10)).collect();
        let short_views = (0..4).map(|_| slot(10, 10)).collect();
        check(
            None,
            short_views,
            DayPlan::Open(short),
            (40, 0, 40, 40, &["short_hours"]),
        );
        // Today with half the slots gone.
        let half = (0..4).map(|_| slot(10, 10)).collect();
        check(
            None,
            half,
            DayPlan::Open(full()),
            (40, 0, 40, 40, &["elapsed"]),
        );
        // Past and beyond the horizon, with the rules' reason as well.
        check(
            Some(DayNote::Past),
            vec![],
            DayPlan::Open(full()),
            (0, 0, 0, 80, &["past"]),
        );
        check(
            Some(DayNote::BeyondHorizon),
            vec![],
            DayPlan::Closed(ClosedReason::Holiday("Navidad")),
            (0, 0, 0, 80, &["beyond_horizon", "holiday"]),
        );
    }

    #[test]
    fn pools_split_each_slot_and_count_their_bookings() {
        let shares = Shares::new(70, 5, 15, 10).unwrap();
        // Two slots of 10 (7/1/1/1 each); the first has 3 online seats taken
        // and its urgent seat granted.
        let mut first = slot(7, 4);
        first.slot_capacity = 10;
        let mut second = slot(7, 7);
        second.slot_capacity = 10;
        second.start = Timestamp::from_millisecond(1_800_000).unwrap();
        let view = DayView {
            date: date(2026, 1, 5),
            note: None,
            slots: vec![first, second],
        };
        let booked: PoolBooked = [((0, Pool::Urgent), 1), ((1_800_000, Pool::Priority), 1)]
            .into_iter()
            .collect();
        let pools = pool_days(&view, &shares, &booked);
        let got: Vec<(Pool, u32, u32)> = pools
            .iter()
            .map(|p| (p.pool, p.offered, p.booked))
            .collect();
        assert_eq!(
            got,
            vec![
                (Pool::Online, 14, 3),
                (Pool::Urgent, 2, 1),
                (Pool::WalkIn, 2, 0),
                (Pool::Priority, 2, 1),
            ]
        );
        let plan = DayPlan::Open((0..2).map(|_| plan_slot(10)).collect());
        let day = with_pools(day_capacity(20, &view, &plan), pools);
        assert_eq!(
            (day.offered, day.booked, day.free, day.withheld),
            (20, 5, 15, 0)
        );
    }

    #[test]
    fn reason_texts_name_the_holiday_and_the_closure() {
        let h = Withheld::Closed(ClosedReason::Holiday("Navidad"));
        assert_eq!(h.text(Lang::Es), "Festivo: Navidad");
        assert_eq!(h.text(Lang::En), "Public holiday: Navidad");
        let c = Withheld::Closed(ClosedReason::Closure("Inventario anual".into()));
        assert_eq!(c.text(Lang::Es), "Oficina cerrada: Inventario anual");
        assert_eq!(c.text(Lang::En), "Office closed: Inventario anual");
        assert_eq!(Withheld::Elapsed.code(), "elapsed");
    }

    #[test]
    fn rationing_applies_below_thirty_days_of_any_type() {
        let line = |t, days_left| StockLine {
            booklet_type: t,
            in_stock: 10,
            days_left,
        };
        assert!(!rationing_applies(&[]));
        assert!(!rationing_applies(&[line(BookletType::Pages32, None)]));
        assert!(!rationing_applies(&[line(
            BookletType::Pages32,
            Some(30.0)
        )]));
        assert!(rationing_applies(&[
            line(BookletType::Pages8, Some(400.0)),
            line(BookletType::Pages32, Some(29.5)),
        ]));
        assert!(RATIONING_RULE_ES.contains("30 días"));
        assert!(RATIONING_RULE_EN.contains("30 days"));
    }
}
