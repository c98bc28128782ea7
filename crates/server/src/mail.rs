//! Mail: messages are composed and sealed into the outbox in the same
//! transaction as the change they tell about; a worker sends them through a
//! real SMTP client and retries with back-off, so a mail server outage delays
//! mail but loses none.

use crate::app::App;
use crate::crypto::{CryptoError, at};
use crate::i18n::{Lang, local_when};
use crate::ics;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::office::Office;
use pasaporte_store::MailRow;
use std::sync::Arc;
use std::time::Duration;

/// Mails sent per pass of the worker.
pub const MAIL_BATCH_MAX: u32 = 50;
/// Longest wait between retries; the first wait is configurable
/// (`SmtpConfig::retry_first`) and doubles after each failure.
pub const RETRY_MAX: Duration = Duration::from_secs(3600);
/// How long one SMTP exchange may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    Confirmed,
    Rescheduled,
    Cancelled,
}

/// Where a citizen manages a booking.
pub fn manage_url(app: &App, code: &str, token: &str) -> String {
    format!("{}/citas/{code}?clave={token}", app.public_url)
}

/// Composes and seals the mail for a booking event.
#[allow(clippy::too_many_arguments)]
pub fn booking_mail(
    app: &App,
    kind: MailKind,
    lang: Lang,
    office: &Office,
    booking_id: &str,
    code: &str,
    token: &str,
    start: Timestamp,
    end: Timestamp,
    to: &str,
    now: Timestamp,
) -> Result<MailRow, CryptoError> {
    let when = local_when(lang, office, start);
    let url = manage_url(app, code, token);
    let (subject, lead) = match kind {
        MailKind::Confirmed => (
            lang.pick(
                "Su cita de pasaporte está confirmada",
                "Your passport appointment is confirmed",
            ),
            lang.pick("Su cita quedó reservada.", "Your appointment is booked."),
        ),
        MailKind::Rescheduled => (
            lang.pick(
                "Su cita de pasaporte cambió de hora",
                "Your passport appointment has a new time",
            ),
            lang.pick(
                "Su cita tiene una nueva hora.",
                "Your appointment has a new time.",
            ),
        ),
        MailKind::Cancelled => (
            lang.pick(
                "Su cita de pasaporte fue cancelada",
                "Your passport appointment was cancelled",
            ),
            lang.pick(
                "Su cita fue cancelada. Puede reservar otra cuando quiera.",
                "Your appointment was cancelled. You can book another at any time.",
            ),
        ),
    };
    let body = format!(
        "{lead}\n\n{}: {code}\n{}: {}, {}\n{}: {when}\n\n{}:\n{url}\n\n{}\n",
        lang.pick("Código", "Code"),
        lang.pick("Oficina", "Office"),
        office.name,
        office.city,
        lang.pick("Fecha y hora", "Date and time"),
        lang.pick("Para ver, cambiar o cancelar su cita", "To view, change or cancel your appointment"),
        lang.pick(
            "Traiga el documento de identidad original de cada persona de la cita. Este enlace es personal: no lo comparta.",
            "Bring the original identity document of each person in the appointment. This link is personal: do not share it.",
        ),
    );
    let ics = match kind {
        MailKind::Cancelled => None,
        MailKind::Confirmed | MailKind::Rescheduled => Some(ics::appointment(
            office,
            booking_id,
            start,
            end,
            now,
            lang.pick("Cita de pasaporte", "Passport appointment"),
            &format!("{}: {code}", lang.pick("Código", "Code")),
        )),
    };
    sealed(app, to, subject, &body, ics.as_deref())
}

/// Seals a composed mail for the outbox.
pub fn sealed(
    app: &App,
    to: &str,
    subject: &str,
    body: &str,
    ics: Option<&str>,
) -> Result<MailRow, CryptoError> {
    let keys = &app.keys;
    let id = uuid::Uuid::now_v7().to_string();
    Ok(MailRow {
        recipient_enc: keys.seal(at::mail_recipient(&id), to)?,
        subject: subject.to_string(),
        body_enc: keys.seal(at::mail_body(&id), body)?,
        ics_enc: ics.map(|i| keys.seal(at::mail_ics(&id), i)).transpose()?,
        id,
    })
}

/// What re-seating did to a booking, for its mail.
#[derive(Clone, Copy, Debug)]
pub enum Reseated<'a> {
    /// Moved to `office` at `start..end`.
    Moved {
        office: &'a Office,
        start: Timestamp,
        end: Timestamp,
    },
    /// No equivalent seat was free: the booking waits for the citizen's choice.
    Displaced { office: &'a Office, lost: Timestamp },
}

/// Composes and seals the mail telling a citizen that their office closed
/// (or lost counters) on the day of their appointment, and what became of it.
/// In Spanish then English: a booking does not record its holder's language.
#[allow(clippy::too_many_arguments)]
pub fn reseat_mail(
    app: &App,
    what: Reseated<'_>,
    booking_id: &str,
    code: &str,
    token: &str,
    to: &str,
    now: Timestamp,
) -> Result<MailRow, CryptoError> {
    let url = manage_url(app, code, token);
    let part = |lang: Lang| -> String {
        let (lead, detail) = match what {
            Reseated::Moved { office, start, .. } => (
                lang.pick(
                    "La oficina de su cita no puede atender ese día. Le reservamos el puesto equivalente más cercano:",
                    "The office of your appointment cannot serve that day. We booked you the nearest equivalent seat:",
                ),
                format!(
                    "{}: {}, {}\n{}: {}",
                    lang.pick("Oficina", "Office"),
                    office.name,
                    office.city,
                    lang.pick("Nueva fecha y hora", "New date and time"),
                    local_when(lang, office, start),
                ),
            ),
            Reseated::Displaced { office, lost } => (
                lang.pick(
                    "La oficina de su cita no puede atender ese día, y no hay un puesto equivalente libre en su ciudad dentro del plazo de reserva. Su cita sigue guardada a su nombre: elija otra hora con el enlace.",
                    "The office of your appointment cannot serve that day, and no equivalent seat is free in your city within the booking horizon. Your appointment is kept in your name: choose another time with the link.",
                ),
                format!(
                    "{}: {}, {}\n{}: {}",
                    lang.pick("Oficina", "Office"),
                    office.name,
                    office.city,
                    lang.pick("Fecha y hora anterior", "Previous date and time"),
                    local_when(lang, office, lost),
                ),
            ),
        };
        format!(
            "{lead}\n\n{}: {code}\n{detail}\n\n{}:\n{url}\n",
            lang.pick("Código", "Code"),
            lang.pick(
                "Para elegir otra hora o cancelar su cita",
                "To choose another time or cancel your appointment"
            ),
        )
    };
    let body = format!("{}\n---\n\n{}", part(Lang::Es), part(Lang::En));
    let (subject, ics) = match what {
        Reseated::Moved { office, start, end } => (
            "Su cita de pasaporte cambió / Your passport appointment has moved",
            Some(ics::appointment(
                office,
                booking_id,
                start,
                end,
                now,
                "Cita de pasaporte / Passport appointment",
                &format!("Código / Code: {code}"),
            )),
        ),
        Reseated::Displaced { .. } => (
            "Elija una nueva hora para su cita de pasaporte / Choose a new time for your passport appointment",
            None,
        ),
    };
    let keys = &app.keys;
    let id = uuid::Uuid::now_v7().to_string();
    Ok(MailRow {
        recipient_enc: keys.seal(at::mail_recipient(&id), to)?,
        subject: subject.to_string(),
        body_enc: keys.seal(at::mail_body(&id), &body)?,
        ics_enc: ics.map(|i| keys.seal(at::mail_ics(&id), &i)).transpose()?,
        id,
    })
}

/// How to reach the mail server.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `none` (plain, for a relay on the same machine), `starttls` or `tls`.
    pub security: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    /// Wait before the first retry of a failed mail.
    pub retry_first: Duration,
}

fn transport(cfg: &SmtpConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match cfg.security.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)?,
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)?,
        other => anyhow::bail!("SMTP security '{other}': use none, starttls or tls"),
    };
    let mut builder = builder.port(cfg.port).timeout(Some(SMTP_TIMEOUT));
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(builder.build())
}

fn compose(
    app: &App,
    cfg: &SmtpConfig,
    row: &pasaporte_store::OutboxRow,
) -> anyhow::Result<Message> {
    let keys = &app.keys;
    let to = keys.open(at::mail_recipient(&row.id), &row.recipient_enc)?;
    let body = keys.open(at::mail_body(&row.id), &row.body_enc)?;
    let builder = Message::builder()
        .from(cfg.from.parse()?)
        .to(to.parse()?)
        .subject(row.subject.clone())
        .message_id(Some(format!("<{}@pasaporte>", row.id)));
    // Quoted-printable keeps the ASCII parts (code, link) readable in any client.
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .header(ContentTransferEncoding::QuotedPrintable)
        .body(body);
    Ok(match &row.ics_enc {
        Some(ics) => {
            let ics = keys.open(at::mail_ics(&row.id), ics)?;
            let att = Attachment::new("cita.ics".into())
                .body(ics, ContentType::parse("text/calendar; charset=utf-8")?);
            builder.multipart(MultiPart::mixed().singlepart(text).singlepart(att))?
        }
        None => builder.singlepart(text)?,
    })
}

fn backoff(first: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.min(12);
    (first * factor).min(RETRY_MAX)
}

/// One pass over the due mails; returns how many were sent.
pub async fn send_due(
    app: &App,
    cfg: &SmtpConfig,
    smtp: &AsyncSmtpTransport<Tokio1Executor>,
) -> anyhow::Result<usize> {
    let now = Timestamp::now().as_millisecond();
    let mut sent = 0;
    for row in app.store.due_mail(now, MAIL_BATCH_MAX).await? {
        let result = match compose(app, cfg, &row) {
            Ok(msg) => smtp.send(msg).await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(format!("compose: {e}")),
        };
        match result {
            Ok(()) => {
                app.store
                    .mark_mail_sent(&row.id, Timestamp::now().as_millisecond())
                    .await?;
                sent += 1;
            }
            Err(e) => {
                // lettre's errors name the server and the SMTP reply, not the recipient.
                let retry = i64::try_from(backoff(cfg.retry_first, row.attempts).as_millis())
                    .unwrap_or(i64::MAX);
                tracing::warn!(mail = %row.id, attempts = row.attempts + 1, error = %e, "mail not sent; will retry");
                app.store
                    .mark_mail_failed(&row.id, now.saturating_add(retry), &e)
                    .await?;
            }
        }
    }
    Ok(sent)
}

/// Sends the outbox forever, polling every `interval`.
pub async fn run_outbox(
    app: Arc<App>,
    cfg: SmtpConfig,
    interval: Duration,
    mut lease: crate::lease::WorkerLease,
) -> anyhow::Result<()> {
    let smtp = transport(&cfg)?;
    loop {
        if !lease.hold(&app.store).await {
            tokio::time::sleep(interval).await;
            continue;
        }
        match send_due(&app, &cfg, &smtp).await {
            Ok(n) if n > 0 => tracing::info!(sent = n, "mail sent"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let first = Duration::from_secs(5);
        assert_eq!(backoff(first, 0), Duration::from_secs(5));
        assert_eq!(backoff(first, 1), Duration::from_secs(10));
        assert_eq!(backoff(first, 30), RETRY_MAX);
    }
}
