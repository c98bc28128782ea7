//! An office: where it is, its time zone, its weekly opening hours and how many
//! people it can serve.

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

/// Default length of a bookable slot. Half an hour keeps a day's list short on
/// a phone and lets a family of five fit one slot at a small office.
pub const SLOT_MINUTES_DEFAULT: u32 = 30;
/// Default booking horizon: how far ahead an office's calendar is open.
pub const HORIZON_DAYS_DEFAULT: u32 = 60;
/// Longest horizon accepted: a calendar a year out is already a promise the
/// production pipeline cannot plan for.
pub const HORIZON_DAYS_MAX: u32 = 366;
/// Most counters an office may declare (the largest real one has 40).
pub const COUNTERS_MAX: u32 = 500;
/// Opening intervals in one day (split days have two).
pub const INTERVALS_PER_DAY_MAX: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OfficeKind {
    /// The ministry's own offices (Bogotá).
    Ministry,
    /// A departmental government (Gobernación) office.
    Department,
    /// A consulate abroad.
    Consulate,
}

impl OfficeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OfficeKind::Ministry => "ministry",
            OfficeKind::Department => "department",
            OfficeKind::Consulate => "consulate",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            OfficeKind::Ministry,
            OfficeKind::Department,
            OfficeKind::Consulate,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One opening interval in local wall time, `open < close`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub open: Time,
    pub close: Time,
}

/// Opening hours for each weekday, Monday first; an empty day is closed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeeklyHours {
    days: [Vec<Interval>; 7],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HoursError {
    #[error("'{0}' is not HH:MM-HH:MM (intervals separated by ';')")]
    Syntax(String),
    #[error("interval '{0}' closes before it opens")]
    Reversed(String),
    #[error("intervals '{0}' overlap or are out of order")]
    Overlap(String),
    #[error("at most {INTERVALS_PER_DAY_MAX} intervals a day")]
    TooMany,
}

impl WeeklyHours {
    /// Parses one day's hours: `07:00-16:00`, or a split day
    /// `07:05-11:40;14:05-16:40`; an empty string means closed.
    pub fn parse_day(s: &str) -> Result<Vec<Interval>, HoursError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Vec::new());
        }
        let mut out: Vec<Interval> = Vec::new();
        for part in s.split(';') {
            let part = part.trim();
            let (a, b) = part
                .split_once('-')
                .ok_or_else(|| HoursError::Syntax(part.into()))?;
            let parse = |t: &str| -> Result<Time, HoursError> {
                let (h, m) = t
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| HoursError::Syntax(part.into()))?;
                let h: i8 = h.parse().map_err(|_| HoursError::Syntax(part.into()))?;
                let m: i8 = m.parse().map_err(|_| HoursError::Syntax(part.into()))?;
                if h == 24 && m == 0 {
                    return Ok(Time::MAX);
                }
                Time::new(h, m, 0, 0).map_err(|_| HoursError::Syntax(part.into()))
            };
            let iv = Interval {
                open: parse(a)?,
                close: parse(b)?,
            };
            if iv.open >= iv.close {
                return Err(HoursError::Reversed(part.into()));
            }
            if let Some(prev) = out.last()
                && prev.close > iv.open
            {
                return Err(HoursError::Overlap(s.into()));
            }
            out.push(iv);
        }
        if out.len() > INTERVALS_PER_DAY_MAX {
            return Err(HoursError::TooMany);
        }
        Ok(out)
    }

    pub fn set(&mut self, day: Weekday, intervals: Vec<Interval>) {
        self.days[day.to_monday_zero_offset() as usize] = intervals;
    }

    pub fn on(&self, day: Weekday) -> &[Interval] {
        &self.days[day.to_monday_zero_offset() as usize]
    }

    /// `HH:MM-HH:MM;...` for one day, the inverse of [`WeeklyHours::parse_day`].
    pub fn format_day(&self, day: Weekday) -> String {
        self.on(day)
            .iter()
            .map(|iv| {
                let close = if iv.close == Time::MAX {
                    "24:00".to_string()
                } else {
                    iv.close.strftime("%H:%M").to_string()
                };
                format!("{}-{}", iv.open.strftime("%H:%M"), close)
            })
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// An office as the calendar needs it.
#[derive(Clone, Debug)]
pub struct Office {
    pub code: String,
    pub name: String,
    pub kind: OfficeKind,
    pub city: String,
    /// ISO 3166-1 alpha-3 of the country the office is in.
    pub country: String,
    pub time_zone: TimeZone,
    pub hours: WeeklyHours,
    pub counters: u32,
    /// Minutes one applicant takes at a counter.
    pub service_minutes: u32,
    pub slot_minutes: u32,
    /// How many days ahead (from the office's today) slots can be booked.
    pub horizon_days: u32,
}

impl Office {
    pub fn time_zone_name(&self) -> &str {
        self.time_zone.iana_name().unwrap_or("UTC")
    }

    /// People a slot of `minutes` holds: every counter serves one applicant
    /// every `service_minutes`.
    pub fn capacity_for(&self, minutes: u32) -> u32 {
        (self.counters * minutes / self.service_minutes.max(1)).max(1)
    }

    /// Whether the office closes on Colombian holidays only, or also on its
    /// host country's.
    pub fn observes_host_holidays(&self) -> bool {
        matches!(self.kind, OfficeKind::Consulate) && self.country != "COL"
    }
}

/// A line of an offices CSV that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

/// Office-code syntax: 2 to 12 upper-case letters, digits or dashes.
pub fn valid_office_code(code: &str) -> bool {
    (2..=12).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// Reads offices from CSV text with the columns of shared/data/offices.csv:
/// `code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity`,
/// and optionally `sunday_hours`, `service_minutes`, `slot_minutes`, `horizon_days`.
/// Without `service_minutes`, it is derived from the daily capacity so that a
/// weekday's slots hold about that many people.
pub fn parse_offices_csv(text: &str) -> Result<Vec<Office>, CsvError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(CsvError {
            line: 1,
            message: "empty file".into(),
        });
    };
    let header: Vec<&str> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let required = [
        "code",
        "name",
        "kind",
        "city",
        "country",
        "time_zone",
        "weekday_hours",
        "saturday_hours",
        "counters",
        "daily_capacity",
    ];
    let mut idx = Vec::new();
    for name in required {
        idx.push(col(name).ok_or_else(|| CsvError {
            line: 1,
            message: format!("missing column '{name}'"),
        })?);
    }
    let opt = |name| col(name);
    let (sun_i, svc_i, slot_i, hor_i) = (
        opt("sunday_hours"),
        opt("service_minutes"),
        opt("slot_minutes"),
        opt("horizon_days"),
    );
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (n, line) in lines {
        let line_no = n + 1;
        let err = |message: String| CsvError {
            line: line_no,
            message,
        };
        if line.contains('"') {
            return Err(err(
                "quoted fields are not supported; remove the quotes".into()
            ));
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != header.len() {
            return Err(err(format!(
                "{} fields, the header has {}",
                f.len(),
                header.len()
            )));
        }
        let get = |i: usize| f[idx[i]];
        let code = get(0).to_string();
        if !valid_office_code(&code) {
            return Err(err(format!(
                "code '{code}': use 2 to 12 capital letters, digits or '-'"
            )));
        }
        if !seen.insert(code.clone()) {
            return Err(err(format!("code '{code}' appears twice")));
        }
        let kind = OfficeKind::parse(get(2)).ok_or_else(|| {
            err(format!(
                "kind '{}': use ministry, department or consulate",
                get(2)
            ))
        })?;
        let country = get(4).to_string();
        if country.len() != 3 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(format!(
                "country '{country}': use an ISO 3166-1 alpha-3 code such as COL"
            )));
        }
        let time_zone = TimeZone::get(get(5))
            .map_err(|_| err(format!("time zone '{}' is not an IANA zone", get(5))))?;
        let weekday =
            WeeklyHours::parse_day(get(6)).map_err(|e| err(format!("weekday_hours: {e}")))?;
        let saturday =
            WeeklyHours::parse_day(get(7)).map_err(|e| err(format!("saturday_hours: {e}")))?;
        let sunday = match sun_i {
            Some(i) => {
                WeeklyHours::parse_day(f[i]).map_err(|e| err(format!("sunday_hours: {e}")))?
            }
            None => Vec::new(),
        };
        let num = |name: &str, s: &str, max: u32| -> Result<u32, CsvError> {
            let v: u32 = s
                .parse()
                .map_err(|_| err(format!("{name} '{s}' is not a whole number")))?;
            if v == 0 || v > max {
                return Err(err(format!("{name} {v} is out of range 1..={max}")));
            }
            Ok(v)
        };
        let counters = num("counters", get(8), COUNTERS_MAX)?;
        let daily_capacity = num("daily_capacity", get(9), 100_000)?;
        let mut hours = WeeklyHours::default();
        for d in [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ] {
            hours.set(d, weekday.clone());
        }
        hours.set(Weekday::Saturday, saturday);
        hours.set(Weekday::Sunday, sunday);
        let open_minutes: i64 = weekday
            .iter()
            .map(|iv| minutes_between(iv.open, iv.close))
            .sum();
        let service_minutes = match svc_i.map(|i| f[i]).filter(|s| !s.is_empty()) {
            Some(s) => num("service_minutes", s, 240)?,
            None => {
                let derived = (i64::from(counters) * open_minutes + i64::from(daily_capacity) / 2)
                    / i64::from(daily_capacity);
                u32::try_from(derived.clamp(1, 240)).unwrap_or(1)
            }
        };
        let slot_minutes = match slot_i.map(|i| f[i]).filter(|s| !s.is_empty()) {
            Some(s) => num("slot_minutes", s, 240)?,
            None => SLOT_MINUTES_DEFAULT,
        };
        let horizon_days = match hor_i.map(|i| f[i]).filter(|s| !s.is_empty()) {
            Some(s) => num("horizon_days", s, HORIZON_DAYS_MAX)?,
            None => HORIZON_DAYS_DEFAULT,
        };
        out.push(Office {
            code,
            name: get(1).to_string(),
            kind,
            city: get(3).to_string(),
            country,
            time_zone,
            hours,
            counters,
            service_minutes,
            slot_minutes,
            horizon_days,
        });
    }
    Ok(out)
}

/// Minutes from `a` to `b` on one day (24:00 counts as the end of the day).
pub fn minutes_between(a: Time, b: Time) -> i64 {
    let m = |t: Time| {
        if t == Time::MAX {
            24 * 60
        } else {
            i64::from(t.hour()) * 60 + i64::from(t.minute())
        }
    };
    m(b) - m(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../data/offices.csv");

    #[test]
    fn the_demo_offices_load() {
        let offices = parse_offices_csv(DEMO).unwrap();
        assert_eq!(offices.len(), 15);
        let nva = offices.iter().find(|o| o.code == "NVA").unwrap();
        assert_eq!(
            nva.hours.on(Weekday::Monday).len(),
            2,
            "Neiva has a split day"
        );
        assert_eq!(
            nva.hours.format_day(Weekday::Monday),
            "07:05-11:40;14:05-16:40"
        );
        assert!(nva.hours.on(Weekday::Saturday).is_empty());
        let ame = offices.iter().find(|o| o.code == "BOG-AME").unwrap();
        assert_eq!(ame.hours.format_day(Weekday::Saturday), "07:00-12:00");
        let cen = offices.iter().find(|o| o.code == "BOG-CEN").unwrap();
        // 28 counters over 9 hours for 2,400 a day: about one applicant every 6 minutes.
        assert_eq!(cen.service_minutes, 6);
        assert_eq!(cen.capacity_for(30), 140);
        let scl = offices.iter().find(|o| o.code == "SCL").unwrap();
        assert_eq!(scl.time_zone_name(), "America/Santiago");
        assert!(scl.observes_host_holidays());
    }

    #[test]
    fn bad_csv_names_the_line_and_the_problem() {
        let head = "code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity\n";
        let check = |row: &str, want: &str| {
            let e = parse_offices_csv(&format!("{head}{row}")).unwrap_err();
            assert_eq!(e.line, 2);
            assert!(
                e.message.contains(want),
                "{} should mention {want}",
                e.message
            );
        };
        check(
            "X,N,ministry,C,COL,America/Bogota,07:00-16:00,,1,10",
            "code",
        );
        check(
            "XX,N,embassy,C,COL,America/Bogota,07:00-16:00,,1,10",
            "kind",
        );
        check(
            "XX,N,ministry,C,COL,Mars/Olympus,07:00-16:00,,1,10",
            "time zone",
        );
        check(
            "XX,N,ministry,C,COL,America/Bogota,16:00-07:00,,1,10",
            "closes before",
        );
        check(
            "XX,N,ministry,C,COL,America/Bogota,07:00-16:00,,0,10",
            "counters",
        );
        check("XX,N,ministry,C,COL,America/Bogota,07:00-16:00", "fields");
        assert!(
            parse_offices_csv("code,name\nA,B")
                .unwrap_err()
                .message
                .contains("missing column")
        );
    }
}
