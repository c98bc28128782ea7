//! Public holidays computed by rule, so that no calendar file has to be kept up
//! to date by hand. Colombia's rules come from Law 51 of 1983 ("Ley Emiliani");
//! host countries' from their national law (see each function).

use jiff::civil::{Date, Weekday, date};

/// A holiday: the day it is observed and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holiday {
    pub date: Date,
    pub name: &'static str,
}

/// Gregorian Easter Sunday (the anonymous Gregorian algorithm, valid for all
/// years the civil calendar uses).
pub fn easter_sunday(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // month is 3 or 4 and day 1..=31 by construction of the algorithm.
    date(year, month as i8, day as i8)
}

fn plus_days(d: Date, n: i32) -> Date {
    // Holidays are computed for years 1900..=2200, far from jiff's range limits.
    d.checked_add(jiff::Span::new().days(n)).unwrap_or(d)
}

/// The same day if it is a Monday, else the next Monday.
fn next_monday(d: Date) -> Date {
    let offset = (7 - d.weekday().to_monday_zero_offset()) % 7;
    plus_days(d, i32::from(offset))
}

/// The `n`th (1-based) `weekday` of a month.
fn nth_weekday(year: i16, month: i8, weekday: Weekday, n: i8) -> Date {
    let first = date(year, month, 1);
    let delta =
        (weekday.to_monday_zero_offset() - first.weekday().to_monday_zero_offset()).rem_euclid(7);
    plus_days(first, i32::from(delta) + 7 * i32::from(n - 1))
}

/// The last `weekday` of a month.
fn last_weekday(year: i16, month: i8, weekday: Weekday) -> Date {
    let last = date(year, month, 1).last_of_month();
    let delta =
        (last.weekday().to_monday_zero_offset() - weekday.to_monday_zero_offset()).rem_euclid(7);
    plus_days(last, -i32::from(delta))
}

/// Colombia's public holidays of a year: six fixed dates, seven moved to the
/// following Monday (Law 51 of 1983), and five tied to Easter.
pub fn colombia(year: i16) -> Vec<Holiday> {
    let e = easter_sunday(year);
    let mut v = vec![
        Holiday {
            date: date(year, 1, 1),
            name: "Año Nuevo",
        },
        Holiday {
            date: next_monday(date(year, 1, 6)),
            name: "Día de los Reyes Magos",
        },
        Holiday {
            date: next_monday(date(year, 3, 19)),
            name: "Día de San José",
        },
        Holiday {
            date: plus_days(e, -3),
            name: "Jueves Santo",
        },
        Holiday {
            date: plus_days(e, -2),
            name: "Viernes Santo",
        },
        Holiday {
            date: date(year, 5, 1),
            name: "Día del Trabajo",
        },
        Holiday {
            date: plus_days(e, 43),
            name: "Ascensión del Señor",
        },
        Holiday {
            date: plus_days(e, 64),
            name: "Corpus Christi",
        },
        Holiday {
            date: plus_days(e, 71),
            name: "Sagrado Corazón de Jesús",
        },
        Holiday {
            date: next_monday(date(year, 6, 29)),
            name: "San Pedro y San Pablo",
        },
        Holiday {
            date: date(year, 7, 20),
            name: "Día de la Independencia",
        },
        Holiday {
            date: date(year, 8, 7),
            name: "Batalla de Boyacá",
        },
        Holiday {
            date: next_monday(date(year, 8, 15)),
            name: "Asunción de la Virgen",
        },
        Holiday {
            date: next_monday(date(year, 10, 12)),
            name: "Día de la Raza",
        },
        Holiday {
            date: next_monday(date(year, 11, 1)),
            name: "Todos los Santos",
        },
        Holiday {
            date: next_monday(date(year, 11, 11)),
            name: "Independencia de Cartagena",
        },
        Holiday {
            date: date(year, 12, 8),
            name: "Inmaculada Concepción",
        },
        Holiday {
            date: date(year, 12, 25),
            name: "Navidad",
        },
    ];
    v.sort_by_key(|h| h.date);
    v
}

/// United States federal holidays (5 U.S.C. 6103), with a fixed date falling on
/// a Saturday observed on the Friday before and on a Sunday the Monday after.
pub fn united_states(year: i16) -> Vec<Holiday> {
    let observed = |d: Date| match d.weekday() {
        Weekday::Saturday => plus_days(d, -1),
        Weekday::Sunday => plus_days(d, 1),
        _ => d,
    };
    vec![
        Holiday {
            date: observed(date(year, 1, 1)),
            name: "New Year's Day",
        },
        Holiday {
            date: nth_weekday(year, 1, Weekday::Monday, 3),
            name: "Martin Luther King Jr. Day",
        },
        Holiday {
            date: nth_weekday(year, 2, Weekday::Monday, 3),
            name: "Washington's Birthday",
        },
        Holiday {
            date: last_weekday(year, 5, Weekday::Monday),
            name: "Memorial Day",
        },
        Holiday {
            date: observed(date(year, 6, 19)),
            name: "Juneteenth",
        },
        Holiday {
            date: observed(date(year, 7, 4)),
            name: "Independence Day",
        },
        Holiday {
            date: nth_weekday(year, 9, Weekday::Monday, 1),
            name: "Labor Day",
        },
        Holiday {
            date: nth_weekday(year, 10, Weekday::Monday, 2),
            name: "Columbus Day",
        },
        Holiday {
            date: observed(date(year, 11, 11)),
            name: "Veterans Day",
        },
        Holiday {
            date: nth_weekday(year, 11, Weekday::Thursday, 4),
            name: "Thanksgiving Day",
        },
        Holiday {
            date: observed(date(year, 12, 25)),
            name: "Christmas Day",
        },
    ]
}

/// Spain's national holidays plus Holy Thursday, which every region but
/// Catalonia and Valencia keeps (Madrid among them). Regional moves of a
/// holiday that falls on a Sunday are decreed yearly: enter them as closures.
pub fn spain(year: i16) -> Vec<Holiday> {
    let e = easter_sunday(year);
    vec![
        Holiday {
            date: date(year, 1, 1),
            name: "Año Nuevo",
        },
        Holiday {
            date: date(year, 1, 6),
            name: "Epifanía del Señor",
        },
        Holiday {
            date: plus_days(e, -3),
            name: "Jueves Santo",
        },
        Holiday {
            date: plus_days(e, -2),
            name: "Viernes Santo",
        },
        Holiday {
            date: date(year, 5, 1),
            name: "Fiesta del Trabajo",
        },
        Holiday {
            date: date(year, 8, 15),
            name: "Asunción de la Virgen",
        },
        Holiday {
            date: date(year, 10, 12),
            name: "Fiesta Nacional de España",
        },
        Holiday {
            date: date(year, 11, 1),
            name: "Todos los Santos",
        },
        Holiday {
            date: date(year, 12, 6),
            name: "Día de la Constitución",
        },
        Holiday {
            date: date(year, 12, 8),
            name: "Inmaculada Concepción",
        },
        Holiday {
            date: date(year, 12, 25),
            name: "Navidad",
        },
    ]
}

/// Mexico's statutory rest days (Ley Federal del Trabajo, art. 74), with the
/// presidential inauguration every six years from 2024.
pub fn mexico(year: i16) -> Vec<Holiday> {
    let mut v = vec![
        Holiday {
            date: date(year, 1, 1),
            name: "Año Nuevo",
        },
        Holiday {
            date: nth_weekday(year, 2, Weekday::Monday, 1),
            name: "Día de la Constitución",
        },
        Holiday {
            date: nth_weekday(year, 3, Weekday::Monday, 3),
            name: "Natalicio de Benito Juárez",
        },
        Holiday {
            date: date(year, 5, 1),
            name: "Día del Trabajo",
        },
        Holiday {
            date: date(year, 9, 16),
            name: "Día de la Independencia",
        },
        Holiday {
            date: nth_weekday(year, 11, Weekday::Monday, 3),
            name: "Día de la Revolución",
        },
        Holiday {
            date: date(year, 12, 25),
            name: "Navidad",
        },
    ];
    if year >= 2024 && (year - 2024) % 6 == 0 {
        v.push(Holiday {
            date: date(year, 10, 1),
            name: "Transmisión del Poder Ejecutivo",
        });
        v.sort_by_key(|h| h.date);
    }
    v
}

/// Chile's national holidays. San Pedro y San Pablo and Encuentro de Dos Mundos
/// move to the nearest Monday (Law 19.668: Tuesday and Wednesday back, Thursday
/// and Friday forward); Reformation Day moves to Friday (Law 20.299: a Tuesday
/// back, a Wednesday forward). The Indigenous Peoples' day is the June solstice,
/// which falls on the 20th or 21st; 21 June is used (the decree fixes it yearly).
pub fn chile(year: i16) -> Vec<Holiday> {
    let e = easter_sunday(year);
    let nearest_monday = |d: Date| match d.weekday() {
        Weekday::Tuesday => plus_days(d, -1),
        Weekday::Wednesday => plus_days(d, -2),
        Weekday::Thursday => plus_days(d, 4),
        Weekday::Friday => plus_days(d, 3),
        _ => d,
    };
    let reformation = |d: Date| match d.weekday() {
        Weekday::Tuesday => plus_days(d, -4),
        Weekday::Wednesday => plus_days(d, 2),
        _ => d,
    };
    let mut v = vec![
        Holiday {
            date: date(year, 1, 1),
            name: "Año Nuevo",
        },
        Holiday {
            date: plus_days(e, -2),
            name: "Viernes Santo",
        },
        Holiday {
            date: plus_days(e, -1),
            name: "Sábado Santo",
        },
        Holiday {
            date: date(year, 5, 1),
            name: "Día del Trabajo",
        },
        Holiday {
            date: date(year, 5, 21),
            name: "Día de las Glorias Navales",
        },
        Holiday {
            date: date(year, 6, 21),
            name: "Día de los Pueblos Indígenas",
        },
        Holiday {
            date: nearest_monday(date(year, 6, 29)),
            name: "San Pedro y San Pablo",
        },
        Holiday {
            date: date(year, 7, 16),
            name: "Virgen del Carmen",
        },
        Holiday {
            date: date(year, 8, 15),
            name: "Asunción de la Virgen",
        },
        Holiday {
            date: date(year, 9, 18),
            name: "Independencia Nacional",
        },
        Holiday {
            date: date(year, 9, 19),
            name: "Glorias del Ejército",
        },
        Holiday {
            date: nearest_monday(date(year, 10, 12)),
            name: "Encuentro de Dos Mundos",
        },
        Holiday {
            date: reformation(date(year, 10, 31)),
            name: "Día de las Iglesias Evangélicas",
        },
        Holiday {
            date: date(year, 11, 1),
            name: "Todos los Santos",
        },
        Holiday {
            date: date(year, 12, 8),
            name: "Inmaculada Concepción",
        },
        Holiday {
            date: date(year, 12, 25),
            name: "Navidad",
        },
    ];
    v.sort_by_key(|h| h.date);
    v
}

/// The holidays of a host country by ISO 3166-1 alpha-3 code; empty for a
/// country without rules here (its closures are then entered one by one).
pub fn host_country(country: &str, year: i16) -> Vec<Holiday> {
    match country {
        "USA" => united_states(year),
        "ESP" => spain(year),
        "MEX" => mexico(year),
        "CHL" => chile(year),
        _ => Vec::new(),
    }
}

/// Countries whose holidays are computed by rule.
pub const HOST_COUNTRIES_WITH_RULES: [&str; 4] = ["USA", "ESP", "MEX", "CHL"];

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(v: &[Holiday]) -> Vec<String> {
        v.iter().map(|h| h.date.to_string()).collect()
    }

    #[test]
    fn easter() {
        for (y, m, d) in [
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(y), date(y, m, d), "{y}");
        }
    }

    /// The official calendar as published for 2026 (decree-free: Law 51 of 1983).
    #[test]
    fn colombia_2026_matches_the_official_calendar() {
        assert_eq!(
            dates(&colombia(2026)),
            [
                "2026-01-01",
                "2026-01-12",
                "2026-03-23",
                "2026-04-02",
                "2026-04-03",
                "2026-05-01",
                "2026-05-18",
                "2026-06-08",
                "2026-06-15",
                "2026-06-29",
                "2026-07-20",
                "2026-08-07",
                "2026-08-17",
                "2026-10-12",
                "2026-11-02",
                "2026-11-16",
                "2026-12-08",
                "2026-12-25",
            ]
        );
    }

    #[test]
    fn colombia_2027_matches_the_official_calendar() {
        assert_eq!(
            dates(&colombia(2027)),
            [
                "2027-01-01",
                "2027-01-11",
                "2027-03-22",
                "2027-03-25",
                "2027-03-26",
                "2027-05-01",
                "2027-05-10",
                "2027-05-31",
                "2027-06-07",
                "2027-07-05",
                "2027-07-20",
                "2027-08-07",
                "2027-08-16",
                "2027-10-18",
                "2027-11-01",
                "2027-11-15",
                "2027-12-08",
                "2027-12-25",
            ]
        );
    }

    #[test]
    fn colombia_moves_land_on_mondays() {
        for year in 2000..2100 {
            let h = colombia(year);
            assert_eq!(h.len(), 18);
            for name in [
                "Día de los Reyes Magos",
                "Ascensión del Señor",
                "Corpus Christi",
                "Todos los Santos",
            ] {
                let d = h.iter().find(|x| x.name == name).unwrap().date;
                assert_eq!(d.weekday(), Weekday::Monday, "{name} {year}");
            }
        }
    }

    #[test]
    fn united_states_2026() {
        assert_eq!(
            dates(&united_states(2026)),
            [
                "2026-01-01",
                "2026-01-19",
                "2026-02-16",
                "2026-05-25",
                "2026-06-19",
                "2026-07-03",
                "2026-09-07",
                "2026-10-12",
                "2026-11-11",
                "2026-11-26",
                "2026-12-25",
            ]
        );
    }

    #[test]
    fn mexico_and_chile_2026() {
        assert_eq!(
            dates(&mexico(2026)),
            [
                "2026-01-01",
                "2026-02-02",
                "2026-03-16",
                "2026-05-01",
                "2026-09-16",
                "2026-11-16",
                "2026-12-25"
            ]
        );
        let cl = dates(&chile(2026));
        assert!(cl.contains(&"2026-04-03".to_string()) && cl.contains(&"2026-04-04".to_string()));
        assert!(
            cl.contains(&"2026-06-29".to_string()),
            "29 June 2026 is a Monday"
        );
        assert!(
            cl.contains(&"2026-10-12".to_string()),
            "12 Oct 2026 is a Monday"
        );
        assert!(
            cl.contains(&"2026-10-31".to_string()),
            "31 Oct 2026 is a Saturday: it stays"
        );
    }
}
