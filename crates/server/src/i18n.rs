//! Languages: Spanish by default, English on request.

use pasaporte_core::jiff::Timestamp;
use pasaporte_core::jiff::civil::{Date, Weekday};
use pasaporte_core::office::Office;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Es,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }

    /// From a `lang` parameter (`es`, `en`).
    pub fn from_param(s: &str) -> Option<Self> {
        match s {
            "es" => Some(Lang::Es),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// From an `Accept-Language` header: the first of es/en named, else Spanish.
    pub fn from_accept_language(header: &str) -> Self {
        for part in header.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("es") {
                return Lang::Es;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Es
    }

    /// Picks the text for this language.
    pub fn pick<'a>(self, es: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Es => es,
            Lang::En => en,
        }
    }
}

fn weekday_name(lang: Lang, d: Weekday) -> &'static str {
    let i = d.to_monday_zero_offset() as usize;
    match lang {
        Lang::Es => [
            "lunes",
            "martes",
            "miércoles",
            "jueves",
            "viernes",
            "sábado",
            "domingo",
        ][i],
        Lang::En => [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ][i],
    }
}

fn month_name(lang: Lang, m: i8) -> &'static str {
    let i = (m.clamp(1, 12) - 1) as usize;
    match lang {
        Lang::Es => [
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ][i],
        Lang::En => [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ][i],
    }
}

/// "martes 1 de diciembre de 2026" / "Tuesday 1 December 2026".
pub fn long_date(lang: Lang, d: Date) -> String {
    match lang {
        Lang::Es => format!(
            "{} {} de {} de {}",
            weekday_name(lang, d.weekday()),
            d.day(),
            month_name(lang, d.month()),
            d.year()
        ),
        Lang::En => format!(
            "{} {} {} {}",
            weekday_name(lang, d.weekday()),
            d.day(),
            month_name(lang, d.month()),
            d.year()
        ),
    }
}

/// The appointment time as the office's clock shows it, with its zone.
pub fn local_when(lang: Lang, office: &Office, t: Timestamp) -> String {
    let z = t.to_zoned_datetime(office.time_zone.clone());
    format!(
        "{}, {} ({})",
        long_date(lang, z.date()),
        z.strftime("%H:%M"),
        office.time_zone_name()
    )
}

/// An application state as staff read it.
pub fn state_label(lang: Lang, s: pasaporte_core::application::State) -> &'static str {
    use pasaporte_core::application::State as S;
    let (es, en) = match s {
        S::Booked => ("con cita", "booked"),
        S::CheckedIn => ("en espera", "checked in"),
        S::Captured => ("datos tomados", "captured"),
        S::PendingRegistry => (
            "esperando al registro civil",
            "waiting for the civil registry",
        ),
        S::RegistryMismatch => (
            "el registro civil no coincide: revisión del supervisor",
            "civil registry mismatch: supervisor review",
        ),
        S::RegistryVerified => ("verificada, por pagar", "verified, awaiting payment"),
        S::Paid => ("pagada, por decidir", "paid, awaiting decision"),
        S::Flagged => ("en revisión del supervisor", "in supervisor review"),
        S::Approved => ("aprobada", "approved"),
        S::InProduction => ("en producción", "in production"),
        S::ReadyForPickup => ("lista para entregar", "ready for pick-up"),
        S::Issued => ("entregada", "handed over"),
        S::Annulled => ("anulada por no recogerse", "annulled, not collected"),
        S::Rejected => ("rechazada", "rejected"),
        S::Cancelled => ("cancelada", "cancelled"),
        S::NoShow => ("no se presentó", "no-show"),
    };
    lang.pick(es, en)
}

/// A production order's state, for people.
pub fn order_state_label(lang: Lang, s: pasaporte_store::OrderState) -> &'static str {
    use pasaporte_store::OrderState as O;
    let (es, en) = match s {
        O::Queued => ("en cola para enviar", "queued to send"),
        O::Dead => ("fallido: no se pudo enviar", "dead: could not be sent"),
        O::Accepted => ("aceptado por el proveedor", "accepted by the vendor"),
        O::InProduction => ("en fabricación", "being made"),
        O::Printed => ("impreso", "printed"),
        O::QualityPassed => ("control de calidad superado", "passed quality control"),
        O::Shipped => ("enviado a la oficina", "shipped to the office"),
        O::Received => ("recibido en la oficina", "received at the office"),
        O::QualityFailed => ("rechazado en control de calidad", "failed quality control"),
        O::Mismatch => (
            "no coincide con el registro: rehecho",
            "did not match the record: made again",
        ),
    };
    lang.pick(es, en)
}

/// A printing vendor's state (`active`, `draining`), for people.
pub fn vendor_state_label(lang: Lang, state: &str) -> &str {
    match state {
        "active" => lang.pick("activo", "active"),
        "draining" => lang.pick("en drenaje", "draining"),
        other => other,
    }
}

/// A blank booklet's type, for people.
pub fn booklet_type_label(lang: Lang, t: pasaporte_core::production::BookletType) -> String {
    use pasaporte_core::production::BookletType as B;
    let (es, en) = match t {
        B::Pages8 => ("emergencia", "emergency"),
        B::Pages28 => ("fronterizo", "border"),
        B::Pages32 => ("ordinario", "ordinary"),
        B::Pages48 => ("ejecutivo", "executive"),
    };
    format!(
        "{} {} ({})",
        t.pages(),
        lang.pick("páginas", "pages"),
        lang.pick(es, en)
    )
}

/// Where a booklet is in its custody, for people.
pub fn booklet_state_label(
    lang: Lang,
    s: pasaporte_core::production::BookletState,
) -> &'static str {
    use pasaporte_core::production::BookletState as B;
    let (es, en) = match s {
        B::InStock => ("en existencia", "in stock"),
        B::Reserved => ("reservada", "reserved"),
        B::Personalised => ("personalizada", "personalised"),
        B::Spoiled => ("anulada por defecto", "spoiled"),
        B::Destroyed => ("destruida", "destroyed"),
        B::Dispatched => ("despachada", "dispatched"),
        B::AtOffice => ("en la oficina", "at the office"),
        B::HandedOver => ("entregada", "handed over"),
        B::Annulled => ("anulada por no recogerse", "annulled, not collected"),
    };
    lang.pick(es, en)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pasaporte_core::jiff::civil::date;

    #[test]
    fn dates_read_naturally() {
        assert_eq!(
            long_date(Lang::Es, date(2026, 12, 1)),
            "martes 1 de diciembre de 2026"
        );
        assert_eq!(
            long_date(Lang::En, date(2026, 12, 1)),
            "Tuesday 1 December 2026"
        );
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr, es;q=0.5"), Lang::Es);
        assert_eq!(Lang::from_accept_language(""), Lang::Es);
    }
}
