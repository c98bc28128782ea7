//! The simulation's report: Markdown (printed and `report.md`) or HTML
//! (`report.html`) with inline SVG bar charts drawn by [`BarChart`], a small
//! hand-written SVG writer (a chart crate would be a dependency for three
//! bar charts).

use super::{Figures, ReleaseFigures, Step};
use crate::i18n::Lang;
use std::fmt::Write as _;

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn days_text(d: Option<i64>, lang: Lang) -> String {
    match d {
        Some(d) => d.to_string(),
        None => lang
            .pick("ninguno en el horizonte", "none in the horizon")
            .into(),
    }
}

fn not_available(why: &str, lang: Lang) -> String {
    format!(
        "{} ({why})",
        lang.pick("**no disponible**", "**not available**")
    )
}

/// The report in Markdown.
pub fn markdown(f: &Figures, lang: Lang) -> String {
    let t = |es: &str, en: &str| lang.pick(es, en).to_string();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {}\n",
        t(
            "Simulacro julio 2025 (pasaporte simulate july-2025)",
            "July 2025 scenario (pasaporte simulate july-2025)"
        )
    );
    let _ = writeln!(
        s,
        "{}: {} · {}: {} · {}: {} ({} {}, {} bots) · {}: {:.1} s\n",
        t("Semilla", "Seed"),
        f.seed,
        t("Base de datos", "Database"),
        f.backend,
        t("Solicitantes", "Requesters"),
        f.requesters,
        f.people,
        t("personas", "people"),
        f.bots,
        t("duración", "run time"),
        f.seconds
    );
    let _ = writeln!(s, "## {}\n", t("Resumen", "Summary"));
    let _ = writeln!(s, "| {} | {} |", t("cifra", "figure"), t("valor", "value"));
    let _ = writeln!(s, "|---|---|");
    let _ = writeln!(
        s,
        "| {} | **{}** |",
        t(
            "citas desaparecidas (debe ser 0)",
            "appointments that vanished (must be 0)"
        ),
        f.vanished
    );
    let _ = writeln!(
        s,
        "| {} | {} |",
        t(
            "citas confirmadas por el servidor",
            "bookings the server acknowledged"
        ),
        f.acknowledged
    );
    let _ = writeln!(
        s,
        "| {} | {} |",
        t(
            "citas reubicadas (otra sede u hora)",
            "bookings re-seated (another office or time)"
        ),
        f.moved
    );
    let _ = writeln!(
        s,
        "| {} | {} |",
        t(
            "franjas con cupos mal contados (Store::check_slots)",
            "slots with miscounted seats (Store::check_slots)"
        ),
        f.slot_mismatches
    );
    let _ = writeln!(
        s,
        "| {} | **{}** ({} {}, {} {}, {} {}) |",
        t(
            "correo enviado exactamente una vez",
            "mail sent exactly once"
        ),
        if f.mail.exactly_once() {
            t("sí", "yes")
        } else {
            t("NO", "NO")
        },
        f.mail.outbox_sent,
        t(
            "enviados según el buzón de salida",
            "sent as the outbox records"
        ),
        f.mail.distinct,
        t("mensajes distintos recibidos", "distinct messages received"),
        f.mail.duplicates,
        t("duplicados", "duplicates"),
    );
    share_row(&mut s, lang, "live", Some(&f.live));
    share_row(&mut s, lang, "ballot", f.ballot.done());
    s.push('\n');

    let _ = writeln!(
        s,
        "## {}\n",
        t(
            "Bots frente a personas: sorteo y liberación en vivo",
            "Bots against people: ballot and live release"
        )
    );
    release_section(
        &mut s,
        lang,
        &t("Liberación en vivo", "Live release"),
        &Step::Done(f.live.clone()),
    );
    release_section(&mut s, lang, &t("Sorteo", "Ballot"), &f.ballot);

    let _ = writeln!(
        s,
        "## {}\n",
        t(
            "Paro: una sede cerrada un día",
            "Strike: an office closed for a day"
        )
    );
    match &f.strike {
        Step::Done(st) => {
            let _ = writeln!(
                s,
                "{} {} {}: {} {}, {} {}, {} {}.\n",
                st.office,
                t("cerrada el", "closed on"),
                st.day,
                st.bookings_affected,
                t("citas afectadas", "bookings affected"),
                st.reseated,
                t("reubicadas", "re-seated"),
                st.displaced,
                t(
                    "sin cupo equivalente, a elección de su titular",
                    "without an equivalent seat, for their citizen to choose"
                )
            );
        }
        Step::NotAvailable { why } => {
            let _ = writeln!(s, "{}\n", not_available(why, lang));
        }
    }

    let _ = writeln!(
        s,
        "## {}\n",
        t("Libretas y proveedores", "Booklets and vendors")
    );
    match &f.stock {
        Step::Done(st) => {
            let _ = writeln!(
                s,
                "{}: {} · {}: {} · {}: {} · {}: {} · {}: {}\n",
                t("libretas recibidas", "booklets received"),
                st.booklets_received,
                t("personalizadas", "personalised"),
                st.personalised,
                t("en existencia", "in stock"),
                st.in_stock,
                t("días de existencias", "days of stock"),
                st.days_left.map_or("—".into(), |d| format!("{d:.1}")),
                t("racionamiento publicado", "rationing published"),
                if st.rationing_applies {
                    t("sí", "yes")
                } else {
                    t("no", "no")
                }
            );
            let _ = writeln!(s, "> {}\n", st.rationing_rule);
        }
        Step::NotAvailable { why } => {
            let _ = writeln!(s, "{}\n", not_available(why, lang));
        }
    }
    match &f.vendors {
        Step::Done(v) => {
            let _ = writeln!(
                s,
                "| {} | {} | {} |\n|---|---|---|",
                t("órdenes", "orders"),
                v.main_vendor,
                v.second_vendor
            );
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                t("antes de drenar", "before draining"),
                v.before_to_main,
                v.before_to_second
            );
            let _ = writeln!(
                s,
                "| {} | {} | {} |\n",
                t("después de drenar", "after draining"),
                v.after_to_main,
                v.after_to_second
            );
        }
        Step::NotAvailable { why } => {
            let _ = writeln!(s, "{}\n", not_available(why, lang));
        }
    }

    let _ = writeln!(s, "## {}\n", t("Reconfirmación", "Reconfirmation"));
    match &f.reconfirmation {
        Step::Done(r) => {
            let _ = writeln!(
                s,
                "{}: {} · {}: {} · {}: {} · {}: {} · {}: {} · {}: {}\n",
                t("recordatorios enviados", "reminders sent"),
                r.asked,
                t("confirmadas", "confirmed"),
                r.confirmed,
                t(
                    "cupos sin confirmar liberados",
                    "unconfirmed seats released"
                ),
                r.released,
                t("ofrecidos a la lista de espera", "offered to the waitlist"),
                r.freed_to_waitlist,
                t("ocupados desde la lista", "filled from the waitlist"),
                r.filled_from_waitlist,
                t(
                    "inasistencias evitadas (30 % de los no confirmados)",
                    "no-shows avoided (30% of the unconfirmed)"
                ),
                r.no_shows_avoided
            );
        }
        Step::NotAvailable { why } => {
            let _ = writeln!(s, "{}\n", not_available(why, lang));
        }
    }

    let _ = writeln!(
        s,
        "## {}\n",
        t(
            "Días desde el día de la liberación hasta el próximo cupo libre",
            "Days from the release day to the next free seat"
        )
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} |\n|---|---|---|",
        t("sede", "office"),
        t("antes", "before"),
        t("tras las dos liberaciones", "after both releases")
    );
    for e in &f.earliest {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            e.office,
            days_text(e.days_before, lang),
            days_text(e.days_after, lang)
        );
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "## {}\n",
        t(
            "Capacidad ofrecida frente a demanda (sedes de Bogotá)",
            "Capacity offered against demand (Bogotá offices)"
        )
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} |\n|---|---|---|---|---|---|",
        t("día", "day"),
        t("ofrecidos", "offered"),
        t("reservados", "booked"),
        t("retenidos", "withheld"),
        t("demanda", "demand"),
        t("motivos", "reasons")
    );
    for d in &f.days {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            d.day,
            d.offered,
            d.booked,
            d.withheld,
            d.demand,
            d.reasons.join(", ")
        );
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "{}",
        t(
            "Escala: las cuatro sedes de Bogotá de los datos de demostración conservan códigos, horarios y tamaños relativos; sus ventanillas se escalan para que un día ofrezca un tercio de los solicitantes. Cada solicitante envía desde su propia dirección de loopback. Las respuestas por límite de tasa dependen del reloj y el resultado del sorteo de la semilla comprometida del servidor: no forman parte de las cifras que la semilla repite.",
            "Scale: the four Bogotá demo offices keep their codes, hours and relative sizes; their counters are scaled so that a day offers a third of the requesters. Each requester sends from its own loopback address. The answers by rate limit depend on the clock and the ballot's outcome on the server's committed seed: they are not among the figures the seed replays."
        )
    );
    load_section(&mut s, f, lang);
    s
}

fn share_row(s: &mut String, lang: Lang, which: &str, r: Option<&ReleaseFigures>) {
    let name = match which {
        "live" => lang.pick("en vivo", "live"),
        _ => lang.pick("sorteo", "ballot"),
    };
    match r {
        Some(r) => {
            let _ = writeln!(
                s,
                "| {} ({name}) | {} {} {} |",
                lang.pick("cupos de los bots", "bots' share of seats"),
                pct(r.bot_share_of_seats()),
                lang.pick("frente a", "against"),
                pct(r.bot_share_of_people())
            );
        }
        None => {
            let _ = writeln!(
                s,
                "| {} ({name}) | {} |",
                lang.pick("cupos de los bots", "bots' share of seats"),
                lang.pick("no disponible", "not available")
            );
        }
    }
}

fn release_section(s: &mut String, lang: Lang, title: &str, r: &Step<ReleaseFigures>) {
    let _ = writeln!(s, "### {title}\n");
    let r = match r {
        Step::Done(r) => r,
        Step::NotAvailable { why } => {
            let _ = writeln!(s, "{}\n", not_available(why, lang));
            return;
        }
    };
    let t = |es: &str, en: &str| lang.pick(es, en).to_string();
    let _ = writeln!(
        s,
        "| {} | {} |\n|---|---|",
        t("cifra", "figure"),
        t("valor", "value")
    );
    let rows = [
        (t("día", "day"), r.day.clone()),
        (
            t("cupos del día", "seats of the day"),
            r.seats_offered.to_string(),
        ),
        (
            t("personas / bots", "people / bots"),
            format!("{} / {}", r.people, r.bots),
        ),
        (
            t(
                "escrituras de personas / de bots",
                "writes by people / by bots",
            ),
            format!("{} / {}", r.writes_by_people, r.writes_by_bots),
        ),
        (
            t("cupos a personas / a bots", "seats to people / to bots"),
            format!("{} / {}", r.seats_to_people, r.seats_to_bots),
        ),
        (
            t(
                "parte de los bots: cupos / solicitantes",
                "bots' share: seats / requesters",
            ),
            format!(
                "{} / {}",
                pct(r.bot_share_of_seats()),
                pct(r.bot_share_of_people())
            ),
        ),
        (
            t("personas sin cupo", "people without a seat"),
            r.people_without_seat.to_string(),
        ),
        (
            t(
                "el sorteo se repite igual desde sus archivos publicados",
                "the draw replays identically from its published files",
            ),
            match r.replayed {
                None => "—".into(),
                Some(true) => t("sí", "yes"),
                Some(false) => t("**NO**", "**NO**"),
            },
        ),
        (
            t("respuestas a los bots", "answers to the bots"),
            r.bot_answers
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s.push('\n');
}

// --- HTML and SVG ------------------------------------------------------------------

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A grouped bar chart: categories along x, one bar per series in each.
pub struct BarChart {
    pub title: String,
    pub series: Vec<(String, &'static str)>,
    /// (category, one value per series)
    pub groups: Vec<(String, Vec<f64>)>,
    /// Formats a value for its label.
    pub label: fn(f64) -> String,
}

/// Chart size in SVG user units.
const CHART_W: f64 = 640.0;
const CHART_H: f64 = 260.0;
const MARGIN: f64 = 40.0;

impl BarChart {
    pub fn svg(&self) -> String {
        let max = self
            .groups
            .iter()
            .flat_map(|g| g.1.iter().copied())
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let n = self.groups.len().max(1) as f64;
        let k = self.series.len().max(1) as f64;
        let plot_w = CHART_W - 2.0 * MARGIN;
        let plot_h = CHART_H - 2.0 * MARGIN;
        let group_w = plot_w / n;
        let bar_w = group_w * 0.8 / k;
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {CHART_W} {CHART_H}\" width=\"{CHART_W}\" height=\"{CHART_H}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\" font-size=\"11\">",
            escape(&self.title)
        );
        let _ = write!(
            s,
            "<text x=\"{MARGIN}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>",
            escape(&self.title)
        );
        let base_y = CHART_H - MARGIN;
        let _ = write!(
            s,
            "<line x1=\"{MARGIN}\" y1=\"{base_y}\" x2=\"{}\" y2=\"{base_y}\" stroke=\"#333\"/>",
            CHART_W - MARGIN
        );
        for (gi, (cat, values)) in self.groups.iter().enumerate() {
            let gx = MARGIN + gi as f64 * group_w + group_w * 0.1;
            for (si, v) in values.iter().enumerate() {
                let h = (v / max) * plot_h;
                let x = gx + si as f64 * bar_w;
                let color = self.series.get(si).map_or("#888", |s| s.1);
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    base_y - h,
                    bar_w * 0.95,
                    x + bar_w / 2.0,
                    base_y - h - 3.0,
                    escape(&(self.label)(*v))
                );
            }
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                gx + group_w * 0.4,
                base_y + 14.0,
                escape(cat)
            );
        }
        for (si, (name, color)) in self.series.iter().enumerate() {
            let x = MARGIN + si as f64 * 170.0;
            let y = CHART_H - 10.0;
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{y}\">{}</text>",
                y - 9.0,
                x + 14.0,
                escape(name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// The report in HTML: the Markdown's tables as preformatted text beside
/// three SVG charts (no script, no external file).
pub fn html(f: &Figures, lang: Lang) -> String {
    let t = |es: &str, en: &str| lang.pick(es, en).to_string();
    let mut shares = Vec::new();
    shares.push((
        t("en vivo", "live"),
        vec![
            f.live.bot_share_of_people() * 100.0,
            f.live.bot_share_of_seats() * 100.0,
        ],
    ));
    if let Some(b) = f.ballot.done() {
        shares.push((
            t("sorteo", "ballot"),
            vec![
                b.bot_share_of_people() * 100.0,
                b.bot_share_of_seats() * 100.0,
            ],
        ));
    }
    let charts = [
        BarChart {
            title: t("Parte de los bots (%)", "Bots' share (%)"),
            series: vec![
                (t("de los solicitantes", "of requesters"), "#7a9cc6"),
                (t("de los cupos", "of seats"), "#c0504d"),
            ],
            groups: shares,
            label: |v| format!("{v:.0}"),
        },
        BarChart {
            title: t(
                "Capacidad ofrecida frente a demanda por día",
                "Capacity offered against demand per day",
            ),
            series: vec![
                (t("ofrecidos", "offered"), "#4f81bd"),
                (t("reservados", "booked"), "#9bbb59"),
                (t("demanda", "demand"), "#c0504d"),
            ],
            groups: f
                .days
                .iter()
                .map(|d| {
                    (
                        d.day.get(5..).unwrap_or(&d.day).to_string(),
                        vec![d.offered as f64, d.booked as f64, d.demand as f64],
                    )
                })
                .collect(),
            label: |v| format!("{v:.0}"),
        },
        BarChart {
            title: t(
                "Días desde el día de la liberación hasta el próximo cupo libre",
                "Days from the release day to the next free seat",
            ),
            series: vec![
                (t("antes", "before"), "#7a9cc6"),
                (
                    t("tras las dos liberaciones", "after both releases"),
                    "#c0504d",
                ),
            ],
            groups: f
                .earliest
                .iter()
                .map(|e| {
                    (
                        e.office.clone(),
                        vec![
                            e.days_before.unwrap_or(0) as f64,
                            e.days_after.unwrap_or(0) as f64,
                        ],
                    )
                })
                .collect(),
            label: |v| format!("{v:.0}"),
        },
    ];
    let mut s = format!(
        "<!doctype html><html lang=\"{}\"><meta charset=\"utf-8\"><title>{}</title><body style=\"font-family:sans-serif;max-width:56rem;margin:auto\">",
        lang.code(),
        escape(&t("Simulacro julio 2025", "July 2025 scenario"))
    );
    for c in &charts {
        s.push_str("<figure>");
        s.push_str(&c.svg());
        s.push_str("</figure>");
    }
    let _ = write!(s, "<pre>{}</pre></body></html>", escape(&markdown(f, lang)));
    s
}

/// The load reached: per phase, per node (numbered from 1, as operators
/// count them) and in total.
fn load_section(s: &mut String, f: &Figures, lang: Lang) {
    let t = |es: &str, en: &str| lang.pick(es, en).to_string();
    let _ = writeln!(
        s,
        "\n## {} ({} {})\n",
        t("Carga alcanzada", "Load reached"),
        f.nodes,
        if f.nodes == 1 {
            t("nodo", "node")
        } else {
            t("nodos", "nodes")
        }
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | p50 (ms) | p99 (ms) |",
        t("fase", "phase"),
        t("segundos", "seconds"),
        t("nodo", "node"),
        t("peticiones", "requests"),
        t("peticiones/s", "requests/s"),
    );
    let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---:|");
    for p in &f.load {
        let name = phase_name(&p.phase, lang);
        let mut row = |node: String, l: &super::load::NodeLoad| {
            let _ = writeln!(
                s,
                "| {name} | {:.1} | {node} | {} | {:.0} | {:.1} | {:.1} |",
                p.seconds, l.requests, l.per_s, l.p50_ms, l.p99_ms
            );
        };
        if p.nodes.len() > 1 {
            for (i, l) in p.nodes.iter().enumerate() {
                row(format!("{}", i + 1), l);
            }
        }
        row(t("**total**", "**total**"), &p.total);
    }
    let _ = writeln!(
        s,
        "\n{}",
        t(
            "Latencias vistas por el cliente (cola incluida), todas las peticiones HTTP de la fase; los clientes se reparten entre los nodos por dirección, como un balanceador.",
            "Latencies as the client sees them (queueing included), every HTTP request of the phase; clients are spread over the nodes by address, as a load balancer does."
        )
    );
}

fn phase_name(key: &str, lang: Lang) -> String {
    let (es, en) = match key {
        "setup" => ("preparación", "set-up"),
        "live" => ("apertura en vivo", "live release"),
        "ballot" => ("sorteo", "ballot"),
        "production" => ("producción", "production"),
        "reconfirmation" => ("reconfirmación", "reconfirmation"),
        "strike" => ("paro", "strike"),
        "measures" => ("medición", "measures"),
        "mail" => ("correo", "mail"),
        other => (other, other),
    };
    lang.pick(es, en).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_one_bar_per_value_and_escapes_labels() {
        let c = BarChart {
            title: "a <b>".into(),
            series: vec![("x".into(), "#000"), ("y".into(), "#fff")],
            groups: vec![("g1".into(), vec![1.0, 2.0]), ("g2".into(), vec![0.0, 4.0])],
            label: |v| format!("{v:.0}"),
        };
        let svg = c.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // Four bars and two legend squares.
        assert_eq!(svg.matches("<rect").count(), 6);
        assert!(svg.contains("a &lt;b&gt;"));
    }
}
