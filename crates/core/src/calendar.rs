//! Slots computed from an office's rules when asked: weekly hours, Colombian
//! and host-country holidays, one-off closures, the booking horizon.
//!
//! A slot starts at a wall time in the office's zone. Clock changes are handled
//! deliberately: a wall time that does not exist (the hour skipped when clocks
//! go forward) starts no slot; a wall time that happens twice (the hour
//! repeated when clocks go back) starts one slot, at its first occurrence, and
//! the repeated hour starts none, so no wall time ever names two slots. A slot
//! lasts `slot_minutes` of real time, so its end is its start plus that.

use crate::holidays;
use crate::office::{Office, minutes_between};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::AmbiguousOffset;
use jiff::{SignedDuration, Timestamp};

/// Most days one availability query may span: a page of a calendar, not a dump.
pub const QUERY_DAYS_MAX: u32 = 62;

/// A one-off closure of one office on one local date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closure {
    pub date: Date,
    pub reason: String,
}

/// Why an office takes no bookings on a day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClosedReason {
    /// The office does not open on this weekday.
    NoHours,
    /// A Colombian public holiday.
    Holiday(&'static str),
    /// A public holiday of the consulate's host country.
    HostHoliday(&'static str),
    /// A one-off closure entered for this office.
    Closure(String),
}

impl ClosedReason {
    pub fn code(&self) -> &'static str {
        match self {
            ClosedReason::NoHours => "no_hours",
            ClosedReason::Holiday(_) => "holiday",
            ClosedReason::HostHoliday(_) => "host_holiday",
            ClosedReason::Closure(_) => "closure",
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            ClosedReason::NoHours => "",
            ClosedReason::Holiday(n) | ClosedReason::HostHoliday(n) => n,
            ClosedReason::Closure(r) => r,
        }
    }
}

/// One bookable slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The wall time the slot starts at, in the office's zone.
    pub local_start: DateTime,
    pub capacity: u32,
}

/// An office's day: open with its slots, or closed with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DayPlan {
    Open(Vec<Slot>),
    Closed(ClosedReason),
}

/// Why the office is closed on `date`, if it is.
pub fn closed_reason(office: &Office, closures: &[Closure], date: Date) -> Option<ClosedReason> {
    if let Some(c) = closures.iter().find(|c| c.date == date) {
        return Some(ClosedReason::Closure(c.reason.clone()));
    }
    if let Some(h) = holidays::colombia(date.year())
        .into_iter()
        .find(|h| h.date == date)
    {
        return Some(ClosedReason::Holiday(h.name));
    }
    if office.observes_host_holidays()
        && let Some(h) = holidays::host_country(&office.country, date.year())
            .into_iter()
            .find(|h| h.date == date)
    {
        return Some(ClosedReason::HostHoliday(h.name));
    }
    if office.hours.on(date.weekday()).is_empty() {
        return Some(ClosedReason::NoHours);
    }
    None
}

/// The slots of one office on one local date.
pub fn day_plan(office: &Office, closures: &[Closure], date: Date) -> DayPlan {
    if let Some(reason) = closed_reason(office, closures, date) {
        return DayPlan::Closed(reason);
    }
    let step = i64::from(office.slot_minutes.max(1));
    let mut slots = Vec::new();
    for iv in office.hours.on(date.weekday()) {
        let total = minutes_between(iv.open, iv.close);
        let mut at = 0;
        // A slot must end by closing time; an interval shorter than a slot
        // offers one short slot rather than none.
        while at + step <= total || (at == 0 && total > 0) {
            let len = step.min(total - at);
            let wall = date
                .to_datetime(iv.open)
                .checked_add(SignedDuration::from_mins(at));
            at += step;
            let Ok(wall) = wall else { continue };
            let offset = match office.time_zone.to_ambiguous_timestamp(wall).offset() {
                AmbiguousOffset::Unambiguous { offset } => offset,
                // Skipped wall time: no slot starts here.
                AmbiguousOffset::Gap { .. } => continue,
                AmbiguousOffset::Fold { before, .. } => before,
            };
            let Ok(start) = offset.to_timestamp(wall) else {
                continue;
            };
            let Ok(end) = start.checked_add(SignedDuration::from_mins(len)) else {
                continue;
            };
            let minutes = u32::try_from(len).unwrap_or(0);
            slots.push(Slot {
                start,
                end,
                local_start: wall,
                capacity: office.capacity_for(minutes),
            });
        }
    }
    DayPlan::Open(slots)
}

/// The office's local date at `now`.
pub fn local_today(office: &Office, now: Timestamp) -> Date {
    now.to_zoned_datetime(office.time_zone.clone()).date()
}

/// Last local date that can be booked at `now`.
pub fn horizon_end(office: &Office, now: Timestamp) -> Date {
    let today = local_today(office, now);
    today
        .checked_add(jiff::Span::new().days(i64::from(office.horizon_days)))
        .unwrap_or(today)
}

/// Why a requested start time is not a bookable slot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("the slot has already started or is in the past")]
    InPast,
    #[error("the slot is after the booking horizon ({0})")]
    BeyondHorizon(Date),
    #[error("the office is closed that day")]
    Closed(ClosedReason),
    #[error("the office has no slot starting at that time")]
    NotASlot,
}

/// The slot starting exactly at `start`, if the office offers it and it can
/// still be booked at `now`.
pub fn find_slot(
    office: &Office,
    closures: &[Closure],
    start: Timestamp,
    now: Timestamp,
) -> Result<Slot, SlotError> {
    if start <= now {
        return Err(SlotError::InPast);
    }
    let date = start.to_zoned_datetime(office.time_zone.clone()).date();
    let last = horizon_end(office, now);
    if date > last {
        return Err(SlotError::BeyondHorizon(last));
    }
    match day_plan(office, closures, date) {
        DayPlan::Closed(reason) => Err(SlotError::Closed(reason)),
        DayPlan::Open(slots) => slots
            .into_iter()
            .find(|s| s.start == start)
            .ok_or(SlotError::NotASlot),
    }
}

/// RFC 3339 with the office's UTC offset at that instant (`2026-03-09T09:00:00-04:00`).
pub fn rfc3339_local(office: &Office, t: Timestamp) -> String {
    let z = t.to_zoned_datetime(office.time_zone.clone());
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The office's dates from `from` for `days` days.
pub fn dates(from: Date, days: u32) -> impl Iterator<Item = Date> {
    (0..i64::from(days)).filter_map(move |i| from.checked_add(jiff::Span::new().days(i)).ok())
}

/// Local time of day as `HH:MM`.
pub fn hhmm(t: Time) -> String {
    t.strftime("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::office::{OfficeKind, WeeklyHours, parse_offices_csv};
    use jiff::civil::{Weekday, date};
    use jiff::tz::TimeZone;

    fn demo(code: &str) -> Office {
        parse_offices_csv(include_str!("../../../data/offices.csv"))
            .unwrap()
            .into_iter()
            .find(|o| o.code == code)
            .unwrap()
    }

    fn open(plan: DayPlan) -> Vec<Slot> {
        match plan {
            DayPlan::Open(s) => s,
            DayPlan::Closed(r) => panic!("closed: {r:?}"),
        }
    }

    fn starts(office: &Office, d: Date) -> Vec<String> {
        open(day_plan(office, &[], d))
            .iter()
            .map(|s| rfc3339_local(office, s.start))
            .collect()
    }

    #[test]
    fn bogota_has_no_dst_and_a_full_day() {
        let o = demo("BOG-CEN");
        let s = starts(&o, date(2026, 3, 9));
        assert_eq!(s.len(), 18);
        assert_eq!(s[0], "2026-03-09T07:00:00-05:00");
        assert_eq!(s[17], "2026-03-09T15:30:00-05:00");
        assert_eq!(
            starts(&o, date(2026, 11, 3))[0],
            "2026-11-03T07:00:00-05:00"
        );
    }

    #[test]
    fn split_day_in_neiva() {
        let s = starts(&demo("NVA"), date(2026, 12, 1));
        assert_eq!(s.first().unwrap(), "2026-12-01T07:05:00-05:00");
        assert!(s.contains(&"2026-12-01T11:05:00-05:00".to_string()));
        assert!(
            !s.iter().any(|x| x.contains("T11:35")),
            "11:35 + 30 min passes 11:40"
        );
        assert!(s.contains(&"2026-12-01T14:05:00-05:00".to_string()));
    }

    #[test]
    fn new_york_offsets_across_both_changes() {
        let o = demo("NYC");
        // DST begins Sunday 8 March 2026; ends Sunday 1 November 2026.
        assert_eq!(starts(&o, date(2026, 3, 6))[0], "2026-03-06T08:00:00-05:00");
        assert_eq!(starts(&o, date(2026, 3, 9))[0], "2026-03-09T08:00:00-04:00");
        assert_eq!(
            starts(&o, date(2026, 10, 30))[0],
            "2026-10-30T08:00:00-04:00"
        );
        assert_eq!(
            starts(&o, date(2026, 11, 3))[0],
            "2026-11-03T08:00:00-05:00"
        );
    }

    #[test]
    fn madrid_offsets_across_both_changes() {
        let o = demo("MAD");
        // Summer time begins 29 March 2026 and ends 25 October 2026.
        assert_eq!(
            starts(&o, date(2026, 3, 27))[0],
            "2026-03-27T08:30:00+01:00"
        );
        assert_eq!(
            starts(&o, date(2026, 3, 30))[0],
            "2026-03-30T08:30:00+02:00"
        );
        assert_eq!(
            starts(&o, date(2026, 10, 23))[0],
            "2026-10-23T08:30:00+02:00"
        );
        assert_eq!(
            starts(&o, date(2026, 10, 26))[0],
            "2026-10-26T08:30:00+01:00"
        );
    }

    #[test]
    fn santiago_southern_dst() {
        let o = demo("SCL");
        // Chile leaves summer time on Sunday 5 April 2026 and returns on Sunday 6 September 2026.
        assert!(matches!(
            day_plan(&o, &[], date(2026, 4, 3)),
            DayPlan::Closed(ClosedReason::Holiday(_))
        ));
        assert_eq!(starts(&o, date(2026, 4, 1))[0], "2026-04-01T09:00:00-03:00");
        assert_eq!(starts(&o, date(2026, 4, 6))[0], "2026-04-06T09:00:00-04:00");
        assert_eq!(starts(&o, date(2026, 9, 4))[0], "2026-09-04T09:00:00-04:00");
        assert_eq!(starts(&o, date(2026, 9, 7))[0], "2026-09-07T09:00:00-03:00");
    }

    fn all_night(zone: &str) -> Office {
        let mut hours = WeeklyHours::default();
        for d in [Weekday::Sunday, Weekday::Monday] {
            hours.set(d, WeeklyHours::parse_day("00:00-24:00").unwrap());
        }
        Office {
            code: "TEST".into(),
            name: "Test".into(),
            kind: OfficeKind::Ministry,
            city: "Test".into(),
            country: "COL".into(),
            time_zone: TimeZone::get(zone).unwrap(),
            hours,
            counters: 1,
            service_minutes: 10,
            slot_minutes: 30,
            horizon_days: 60,
        }
    }

    #[test]
    fn skipped_hour_starts_no_slot() {
        let o = all_night("America/New_York");
        let s = starts(&o, date(2026, 3, 8));
        assert_eq!(s.len(), 46, "a 23-hour day has 46 half-hour wall times");
        assert!(s.contains(&"2026-03-08T01:30:00-05:00".to_string()));
        assert!(
            !s.iter().any(|x| x.contains("T02:")),
            "02:00-02:59 does not exist"
        );
        assert!(s.contains(&"2026-03-08T03:00:00-04:00".to_string()));
    }

    #[test]
    fn repeated_hour_starts_one_slot_per_wall_time() {
        let o = all_night("America/New_York");
        let slots = open(day_plan(&o, &[], date(2026, 11, 1)));
        let s: Vec<_> = slots.iter().map(|x| rfc3339_local(&o, x.start)).collect();
        assert_eq!(s.len(), 48);
        assert!(
            s.contains(&"2026-11-01T01:30:00-04:00".to_string()),
            "first occurrence"
        );
        assert!(
            !s.contains(&"2026-11-01T01:30:00-05:00".to_string()),
            "never twice"
        );
        // Starts strictly increase and no two slots overlap in real time.
        for w in slots.windows(2) {
            assert!(w[0].end <= w[1].start);
        }
    }

    #[test]
    fn consulates_close_on_both_countries_holidays() {
        let mia = demo("MIA");
        // Thanksgiving (US) and 20 July (Colombia).
        assert_eq!(
            day_plan(&mia, &[], date(2026, 11, 26)),
            DayPlan::Closed(ClosedReason::HostHoliday("Thanksgiving Day"))
        );
        assert_eq!(
            day_plan(&mia, &[], date(2026, 7, 20)),
            DayPlan::Closed(ClosedReason::Holiday("Día de la Independencia"))
        );
        // A Bogotá office does not close for Thanksgiving.
        assert!(matches!(
            day_plan(&demo("BOG-CEN"), &[], date(2026, 11, 26)),
            DayPlan::Open(_)
        ));
        let mad = demo("MAD");
        assert_eq!(
            day_plan(&mad, &[], date(2026, 12, 7)),
            DayPlan::Open(open(day_plan(&mad, &[], date(2026, 12, 7))))
        );
        assert!(matches!(
            day_plan(&mad, &[], date(2026, 12, 6)),
            DayPlan::Closed(_)
        ));
    }

    #[test]
    fn closures_weekends_and_find_slot() {
        let o = demo("BOG-CEN");
        let closures = [Closure {
            date: date(2026, 12, 2),
            reason: "Paro".into(),
        }];
        assert_eq!(
            day_plan(&o, &closures, date(2026, 12, 2)),
            DayPlan::Closed(ClosedReason::Closure("Paro".into()))
        );
        assert_eq!(
            day_plan(&o, &[], date(2026, 12, 5)),
            DayPlan::Closed(ClosedReason::NoHours)
        );
        assert_eq!(
            day_plan(&o, &[], date(2026, 12, 8)),
            DayPlan::Closed(ClosedReason::Holiday("Inmaculada Concepción"))
        );
        let now: Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let ok: Timestamp = "2026-12-01T09:30:00-05:00".parse().unwrap();
        assert_eq!(find_slot(&o, &[], ok, now).unwrap().capacity, 140);
        let odd: Timestamp = "2026-12-01T09:10:00-05:00".parse().unwrap();
        assert_eq!(find_slot(&o, &[], odd, now), Err(SlotError::NotASlot));
        let late: Timestamp = "2026-12-01T16:00:00-05:00".parse().unwrap();
        assert_eq!(find_slot(&o, &[], late, now), Err(SlotError::NotASlot));
        let past: Timestamp = "2026-11-27T09:30:00-05:00".parse().unwrap();
        assert_eq!(find_slot(&o, &[], past, now), Err(SlotError::InPast));
        let far: Timestamp = "2027-06-01T09:30:00-05:00".parse().unwrap();
        assert!(matches!(
            find_slot(&o, &[], far, now),
            Err(SlotError::BeyondHorizon(_))
        ));
        let holiday: Timestamp = "2026-12-08T09:30:00-05:00".parse().unwrap();
        assert!(matches!(
            find_slot(&o, &[], holiday, now),
            Err(SlotError::Closed(ClosedReason::Holiday(_)))
        ));
    }
}
