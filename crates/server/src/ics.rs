//! iCalendar (RFC 5545) for one appointment, in the office's time zone.

use pasaporte_core::jiff::Timestamp;
use pasaporte_core::office::Office;

/// Escapes TEXT values (RFC 5545 §3.3.11).
fn text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), on character boundaries.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
}

/// The appointment as an iCalendar object. The event is written in local time
/// with the office's IANA zone as TZID; the VTIMEZONE carries the offset in
/// force at that time, which is all a calendar needs for a single event.
pub fn appointment(
    office: &Office,
    uid: &str,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
    summary: &str,
    description: &str,
) -> String {
    let tz = office.time_zone.clone();
    let zs = start.to_zoned_datetime(tz.clone());
    let ze = end.to_zoned_datetime(tz.clone());
    let offset = offset_text(zs.offset().seconds());
    let tzid = office.time_zone_name();
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//pasaporte//citas//ES".into(),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
        "BEGIN:VTIMEZONE".into(),
        format!("TZID:{tzid}"),
        "BEGIN:STANDARD".into(),
        "DTSTART:19700101T000000".into(),
        format!("TZOFFSETFROM:{offset}"),
        format!("TZOFFSETTO:{offset}"),
        format!("TZNAME:{}", zs.strftime("%Z")),
        "END:STANDARD".into(),
        "END:VTIMEZONE".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{uid}@pasaporte"),
        format!("DTSTAMP:{}", now.strftime("%Y%m%dT%H%M%SZ")),
        format!("DTSTART;TZID={tzid}:{}", zs.strftime("%Y%m%dT%H%M%S")),
        format!("DTEND;TZID={tzid}:{}", ze.strftime("%Y%m%dT%H%M%S")),
        format!("SUMMARY:{}", text(summary)),
        format!(
            "LOCATION:{}",
            text(&format!("{}, {}", office.name, office.city))
        ),
        format!("DESCRIPTION:{}", text(description)),
        "STATUS:CONFIRMED".into(),
        "END:VEVENT".into(),
        "END:VCALENDAR".into(),
    ] {
        fold(&line, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pasaporte_core::office::parse_offices_csv;

    #[test]
    fn madrid_appointment_in_summer_time() {
        let o = parse_offices_csv(include_str!("../../../data/offices.csv"))
            .unwrap()
            .into_iter()
            .find(|o| o.code == "MAD")
            .unwrap();
        let start: Timestamp = "2026-06-02T08:30:00+02:00".parse().unwrap();
        let end: Timestamp = "2026-06-02T09:00:00+02:00".parse().unwrap();
        let ics = appointment(
            &o,
            "u1",
            start,
            end,
            start,
            "Cita de pasaporte",
            "Código ABC; traiga su cédula, por favor",
        );
        assert!(ics.contains("DTSTART;TZID=Europe/Madrid:20260602T083000\r\n"));
        assert!(ics.contains("DTEND;TZID=Europe/Madrid:20260602T090000\r\n"));
        assert!(ics.contains("TZOFFSETTO:+0200\r\n"));
        assert!(ics.contains("Código ABC\\; traiga su cédula\\, por favor"));
        assert!(ics.lines().all(|l| l.trim_end_matches('\r').len() <= 75));
    }
}
