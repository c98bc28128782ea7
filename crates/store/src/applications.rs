//! Applications: the office workflow's rows. Writes take the caller's
//! transaction (from [`Store::begin_write`]), so that a state change, the
//! rows it touches and its audit event commit together or not at all.
//!
//! Concurrency: every change names the `version` it read; an `UPDATE ... WHERE
//! version = $n` that matches no row means someone else changed the
//! application first, and the caller gets `StoreError::Conflict` (and retries
//! from a fresh read, or tells the clerk).

use crate::{Backend, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// Most rows a list returns (a day's queue at the largest office is ~2,400).
pub const APPLICATION_LIST_MAX: u32 = 5_000;

/// The states in which an application no longer moves.
pub const TERMINAL_STATES: [&str; 3] = ["rejected", "cancelled", "no_show"];

pub type Tx = Transaction<'static, Any>;

/// An application as stored; personal fields still sealed. The large sealed
/// columns (photo, signature) are only filled by [`Store::application`].
#[derive(Clone, Debug, Default)]
pub struct ApplicationRow {
    pub id: String,
    pub booking_id: Option<String>,
    pub position: i64,
    pub office: String,
    pub appointment_ms: i64,
    pub doc_key: String,
    pub state: String,
    pub state_since_ms: i64,
    pub deadline_ms: Option<i64>,
    pub queue: String,
    pub ticket: String,
    pub counter: Option<String>,
    pub called_ms: Option<i64>,
    pub passport_type: Option<String>,
    pub identity_enc: Option<String>,
    pub contact_enc: Option<String>,
    pub extras_enc: Option<String>,
    pub photo_enc: Option<String>,
    pub photo_sha256: Option<String>,
    pub signature_enc: Option<String>,
    pub chip_portrait_enc: Option<String>,
    pub flags: String,
    pub next_check_ms: Option<i64>,
    pub registry_attempts: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub version: i64,
}

/// A state change to save: where the application goes and who owns it next.
#[derive(Clone, Debug)]
pub struct StateChange<'a> {
    pub id: &'a str,
    /// The version the caller read.
    pub version: i64,
    pub state: &'a str,
    pub state_since_ms: i64,
    pub deadline_ms: Option<i64>,
    pub queue: &'a str,
    pub now_ms: i64,
}

/// What a clerk captured at the counter, sealed by the caller.
#[derive(Clone, Debug)]
pub struct CaptureRow<'a> {
    pub passport_type: &'a str,
    pub identity_enc: &'a str,
    pub contact_enc: &'a str,
    pub extras_enc: &'a str,
    pub photo_enc: &'a str,
    pub photo_sha256: &'a str,
    pub signature_enc: &'a str,
    /// The chip's JPEG portrait, sealed.
    pub chip_portrait_enc: &'a str,
}

/// One booking of an office's day, with its applications (if checked in).
#[derive(Clone, Debug)]
pub struct DayBooking {
    pub booking_id: String,
    pub code: String,
    pub start_ms: i64,
    pub seats: u32,
    pub status: String,
}

const LIST_COLUMNS: &str = "id, booking_id, position, office_code, appointment_ms, doc_key, state, state_since_ms, deadline_ms, queue, ticket, counter_name, called_ms, passport_type, identity_enc, contact_enc, extras_enc, photo_sha256, flags, next_check_ms, registry_attempts, created_ms, updated_ms, version";

fn from_row(r: &AnyRow, full: bool) -> Result<ApplicationRow> {
    Ok(ApplicationRow {
        id: r.try_get("id")?,
        booking_id: r.try_get("booking_id")?,
        position: r.try_get("position")?,
        office: r.try_get("office_code")?,
        appointment_ms: r.try_get("appointment_ms")?,
        doc_key: r.try_get("doc_key")?,
        state: r.try_get("state")?,
        state_since_ms: r.try_get("state_since_ms")?,
        deadline_ms: r.try_get("deadline_ms")?,
        queue: r.try_get("queue")?,
        ticket: r.try_get("ticket")?,
        counter: r.try_get("counter_name")?,
        called_ms: r.try_get("called_ms")?,
        passport_type: r.try_get("passport_type")?,
        identity_enc: r.try_get("identity_enc")?,
        contact_enc: r.try_get("contact_enc")?,
        extras_enc: r.try_get("extras_enc")?,
        photo_enc: if full { r.try_get("photo_enc")? } else { None },
        photo_sha256: r.try_get("photo_sha256")?,
        signature_enc: if full {
            r.try_get("signature_enc")?
        } else {
            None
        },
        chip_portrait_enc: if full {
            r.try_get("chip_portrait_enc")?
        } else {
            None
        },
        flags: r.try_get("flags")?,
        next_check_ms: r.try_get("next_check_ms")?,
        registry_attempts: r.try_get("registry_attempts")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        version: r.try_get("version")?,
    })
}

/// Refuses a write that matched no row: the application changed since it was read.
fn one_row(affected: u64, what: &str) -> Result<()> {
    if affected == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            constraint: format!("{what}: changed by someone else; read it again"),
        })
    }
}

/// Inserts a new application (at check-in or for a walk-in).
pub async fn insert_application(tx: &mut Tx, a: &ApplicationRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO applications (id, booking_id, position, office_code, appointment_ms, doc_key, state, state_since_ms, deadline_ms, queue, ticket, counter_name, called_ms, passport_type, identity_enc, contact_enc, extras_enc, photo_enc, photo_sha256, signature_enc, flags, next_check_ms, registry_attempts, created_ms, updated_ms, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', NULL, 0, $12, $12, 1)",
    )
    .bind(&a.id)
    .bind(a.booking_id.as_deref())
    .bind(a.position)
    .bind(&a.office)
    .bind(a.appointment_ms)
    .bind(&a.doc_key)
    .bind(&a.state)
    .bind(a.state_since_ms)
    .bind(a.deadline_ms)
    .bind(&a.queue)
    .bind(&a.ticket)
    .bind(a.created_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Several applications read inside a transaction (list columns), in no
/// particular order.
pub async fn applications_in(tx: &mut Tx, ids: &[String]) -> Result<Vec<ApplicationRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {LIST_COLUMNS} FROM applications WHERE id IN ({})",
        crate::binds(1, ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&mut **tx).await?;
    rows.iter().map(|r| from_row(r, false)).collect()
}

/// Moves the applications `ids`, all in `from`, to the same next state at
/// once (a batch of the same step, with its deadline and queue); a
/// `Conflict` unless every one of them was still in `from`.
pub async fn move_applications(
    tx: &mut Tx,
    ids: &[String],
    from: &str,
    to: &StateChange<'_>,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE applications SET state = $1, state_since_ms = $2, deadline_ms = $3, queue = $4, updated_ms = $5, version = version + 1
         WHERE state = $6 AND id IN ({})",
        crate::binds(7, ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.state)
        .bind(to.state_since_ms)
        .bind(to.deadline_ms)
        .bind(to.queue)
        .bind(to.now_ms)
        .bind(from);
    for id in ids {
        q = q.bind(id);
    }
    let done = q.execute(&mut **tx).await?;
    if done.rows_affected() != ids.len() as u64 {
        return Err(StoreError::Conflict {
            constraint: "applications.state: changed by someone else; read it again".into(),
        });
    }
    Ok(())
}

/// Saves a state change made by the core's state machine.
pub async fn save_state(tx: &mut Tx, c: &StateChange<'_>) -> Result<()> {
    let done = sqlx::query(
        "UPDATE applications SET state = $3, state_since_ms = $4, deadline_ms = $5, queue = $6, updated_ms = $7, version = version + 1
         WHERE id = $1 AND version = $2",
    )
    .bind(c.id)
    .bind(c.version)
    .bind(c.state)
    .bind(c.state_since_ms)
    .bind(c.deadline_ms)
    .bind(c.queue)
    .bind(c.now_ms)
    .execute(&mut **tx)
    .await?;
    one_row(done.rows_affected(), "application")
}

/// Stores what was captured (same transaction as the `capture` transition,
/// whose `save_state` bumps the version afterwards).
pub async fn save_capture(tx: &mut Tx, id: &str, version: i64, c: &CaptureRow<'_>) -> Result<()> {
    let done = sqlx::query(
        "UPDATE applications SET passport_type = $3, identity_enc = $4, contact_enc = $5, extras_enc = $6, photo_enc = $7, photo_sha256 = $8, signature_enc = $9
         WHERE id = $1 AND version = $2",
    )
    .bind(id)
    .bind(version)
    .bind(c.passport_type)
    .bind(c.identity_enc)
    .bind(c.contact_enc)
    .bind(c.extras_enc)
    .bind(c.photo_enc)
    .bind(c.photo_sha256)
    .bind(c.signature_enc)
    .execute(&mut **tx)
    .await?;
    one_row(done.rows_affected(), "application")?;
    sqlx::query(
        "INSERT INTO application_portraits (application_id, chip_portrait_enc) VALUES ($1, $2)
         ON CONFLICT (application_id) DO UPDATE SET chip_portrait_enc = $2",
    )
    .bind(id)
    .bind(c.chip_portrait_enc)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores the sealed identity document of an application.
pub async fn save_identity(tx: &mut Tx, id: &str, identity_enc: &str) -> Result<()> {
    sqlx::query("UPDATE applications SET identity_enc = $2 WHERE id = $1")
        .bind(id)
        .bind(identity_enc)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records the automatic checks' findings (codes, no personal data).
pub async fn save_flags(tx: &mut Tx, id: &str, flags: &str) -> Result<()> {
    sqlx::query("UPDATE applications SET flags = $2 WHERE id = $1")
        .bind(id)
        .bind(flags)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Schedules the registry worker's next attempt (`None`: no more attempts).
pub async fn schedule_registry_check(
    tx: &mut Tx,
    id: &str,
    next_check_ms: Option<i64>,
    attempts: i64,
) -> Result<()> {
    sqlx::query("UPDATE applications SET next_check_ms = $2, registry_attempts = $3 WHERE id = $1")
        .bind(id)
        .bind(next_check_ms)
        .bind(attempts)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A clerk calls the applicant to a counter.
pub async fn call_to_counter(
    tx: &mut Tx,
    id: &str,
    version: i64,
    counter: &str,
    now_ms: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE applications SET counter_name = $3, called_ms = $4, updated_ms = $4, version = version + 1
         WHERE id = $1 AND version = $2 AND state = 'checked_in'",
    )
    .bind(id)
    .bind(version)
    .bind(counter)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    one_row(done.rows_affected(), "application")
}

/// The next waiting-room number of an office's local day (1, 2, ...).
pub async fn next_ticket(tx: &mut Tx, office: &str, day: &str) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO tickets (office_code, day, last) VALUES ($1, $2, 1)
         ON CONFLICT (office_code, day) DO UPDATE SET last = tickets.last + 1
         RETURNING last",
    )
    .bind(office)
    .bind(day)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("last")?)
}

/// Marks a booking as arrived: it can no longer be cancelled or moved by
/// the citizen, and its holds now stand for the live applications.
pub async fn mark_booking_checked_in(tx: &mut Tx, booking_id: &str, now_ms: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE bookings SET status = 'checked_in', updated_ms = $2 WHERE id = $1 AND status = 'active'",
    )
    .bind(booking_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    one_row(done.rows_affected(), "booking")
}

/// Marks an active booking whose grace period passed as a no-show: the
/// person may book again, and the slot counts the no-show.
pub async fn mark_booking_no_show(tx: &mut Tx, booking_id: &str, now_ms: i64) -> Result<()> {
    let row = sqlx::query(
        "UPDATE bookings SET status = 'no_show', updated_ms = $2 WHERE id = $1 AND status = 'active'
         RETURNING office_code, start_ms, seats, pool",
    )
    .bind(booking_id)
    .bind(now_ms)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::Conflict {
        constraint: "booking: no longer active".into(),
    })?;
    let (office, start, seats, pool): (String, i64, i64, String) = (
        row.try_get("office_code")?,
        row.try_get("start_ms")?,
        row.try_get("seats")?,
        row.try_get("pool")?,
    );
    // The pool's row only: a slot has one row per pool.
    sqlx::query(
        "UPDATE slot_seats SET no_shows = no_shows + $3 WHERE office_code = $1 AND start_ms = $2 AND pool = $4",
    )
    .bind(office)
    .bind(start)
    .bind(seats)
    .bind(pool)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM person_holds WHERE booking_id = $1")
        .bind(booking_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Frees a person's hold when their application ends (rejected, cancelled),
/// so that they may book again.
pub async fn release_person(tx: &mut Tx, doc_key: &str) -> Result<()> {
    sqlx::query("DELETE FROM person_holds WHERE doc_key = $1")
        .bind(doc_key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records a passport reported lost or stolen (by keyed hash of its number).
pub async fn report_passport(
    tx: &mut Tx,
    number_key: &str,
    kind: &str,
    application_id: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO reported_passports (number_key, kind, application_id, reported_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (number_key) DO NOTHING",
    )
    .bind(number_key)
    .bind(kind)
    .bind(application_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The application, read inside a write transaction.
pub async fn application_in(tx: &mut Tx, id: &str) -> Result<ApplicationRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {LIST_COLUMNS} FROM applications WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    from_row(&row, false)
}

/// The booking's row for check-in: `(id, office, start_ms, status)`.
pub async fn booking_for_check_in(
    tx: &mut Tx,
    booking_id: &str,
) -> Result<(String, String, i64, String)> {
    let r = sqlx::query("SELECT id, office_code, start_ms, status FROM bookings WHERE id = $1")
        .bind(booking_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((
        r.try_get("id")?,
        r.try_get("office_code")?,
        r.try_get("start_ms")?,
        r.try_get("status")?,
    ))
}

/// The audit actions of a staff member reading an application's personal
/// data: its detail (identity, contact, history) and its photo.
pub const READ_ACTIONS: [&str; 2] = ["application.viewed", "application.photo_viewed"];

impl Store {
    /// A write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads then writes cannot
    /// fail halfway for a lock upgrade; on PostgreSQL a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// One application with every column (photo and signature included).
    /// What personalisation reads of several applications: the list
    /// columns, the chip portrait, and the photo only where no chip
    /// portrait was kept.
    pub async fn personalisation_rows(&self, ids: &[String]) -> Result<Vec<ApplicationRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {LIST_COLUMNS}, p.chip_portrait_enc,
               CASE WHEN p.chip_portrait_enc IS NULL THEN a.photo_enc ELSE NULL END AS photo_enc,
               CAST(NULL AS TEXT) AS signature_enc
             FROM applications a LEFT JOIN application_portraits p ON p.application_id = a.id
             WHERE a.id IN ({})",
            crate::binds(1, ids.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| from_row(r, true)).collect()
    }

    /// The sealed chip portraits of several applications, by id.
    pub async fn chip_portraits_of(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT application_id AS id, chip_portrait_enc FROM application_portraits WHERE application_id IN ({})",
            crate::binds(1, ids.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        for r in q.fetch_all(&self.pool).await? {
            out.insert(r.try_get("id")?, r.try_get("chip_portrait_enc")?);
        }
        Ok(out)
    }

    pub async fn application(&self, id: &str) -> Result<ApplicationRow> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS}, photo_enc, signature_enc, (SELECT p.chip_portrait_enc FROM application_portraits p WHERE p.application_id = applications.id) AS chip_portrait_enc FROM applications WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        from_row(&row, true)
    }

    /// The applications of a booking, in applicant order.
    pub async fn applications_of_booking(&self, booking_id: &str) -> Result<Vec<ApplicationRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS} FROM applications WHERE booking_id = $1 ORDER BY position"
        )))
        .bind(booking_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| from_row(r, false)).collect()
    }

    /// An office's applications created in `[from_ms, to_ms)` (a local day),
    /// oldest ticket first.
    pub async fn applications_of_day(
        &self,
        office: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ApplicationRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS} FROM applications WHERE office_code = $1 AND created_ms >= $2 AND created_ms < $3
             ORDER BY created_ms, position LIMIT {APPLICATION_LIST_MAX}"
        )))
        .bind(office)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| from_row(r, false)).collect()
    }

    /// Applications in any of `states`, of one office or all, oldest first.
    pub async fn applications_in_states(
        &self,
        office: Option<&str>,
        states: &[&str],
    ) -> Result<Vec<ApplicationRow>> {
        let placeholders: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM applications WHERE ($1 = '' OR office_code = $1) AND state IN ({})
             ORDER BY state_since_ms LIMIT {APPLICATION_LIST_MAX}",
            if placeholders.is_empty() {
                "NULL".to_string()
            } else {
                placeholders.join(", ")
            }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(office.unwrap_or(""));
        for s in states {
            q = q.bind(*s);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| from_row(r, false)).collect()
    }

    /// Live applications whose deadline has passed, oldest deadline first.
    pub async fn overdue_applications(
        &self,
        office: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<ApplicationRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS} FROM applications WHERE ($1 = '' OR office_code = $1) AND deadline_ms IS NOT NULL AND deadline_ms < $2
             ORDER BY deadline_ms LIMIT {APPLICATION_LIST_MAX}"
        )))
        .bind(office.unwrap_or(""))
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| from_row(r, false)).collect()
    }

    /// Applications the registry worker should try now, oldest first.
    pub async fn due_registry_checks(&self, now_ms: i64, limit: u32) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM applications WHERE next_check_ms IS NOT NULL AND next_check_ms <= $1
             AND state IN ('captured', 'pending_registry') ORDER BY next_check_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit.min(APPLICATION_LIST_MAX)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// Other applications of the same person that are live or approved.
    pub async fn other_live_applications(&self, doc_key: &str, except_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM applications WHERE doc_key = $1 AND id <> $2
             AND state NOT IN ('rejected', 'cancelled', 'no_show', 'issued', 'annulled')",
        )
        .bind(doc_key)
        .bind(except_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Whether a passport number (keyed hash) was reported lost or stolen.
    pub async fn passport_reported(&self, number_key: &str) -> Result<bool> {
        Ok(self
            .reported_passport_kind(number_key)
            .await?
            .is_some_and(|k| k != "cancelled"))
    }

    /// What is recorded against a passport number (keyed hash): `lost`,
    /// `stolen`, or `cancelled` (replaced by a renewal handed over).
    pub async fn reported_passport_kind(&self, number_key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT kind FROM reported_passports WHERE number_key = $1")
            .bind(number_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("kind")).transpose()?)
    }

    /// Active bookings of an office in `[from_ms, to_ms)`, by time.
    pub async fn bookings_of_day(
        &self,
        office: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<DayBooking>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, code, start_ms, seats, status FROM bookings WHERE office_code = $1 AND start_ms >= $2 AND start_ms < $3
             AND status IN ('active', 'checked_in', 'no_show') ORDER BY start_ms, code LIMIT {APPLICATION_LIST_MAX}"
        )))
        .bind(office)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DayBooking {
                    booking_id: r.try_get("id")?,
                    code: r.try_get("code")?,
                    start_ms: r.try_get("start_ms")?,
                    seats: crate::to_u32(r.try_get("seats")?),
                    status: r.try_get("status")?,
                })
            })
            .collect()
    }

    /// Active bookings whose appointment started before `before_ms`: the
    /// no-show worker's list.
    pub async fn bookings_past_grace(&self, before_ms: i64, limit: u32) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM bookings WHERE status = 'active' AND start_ms < $1 ORDER BY start_ms LIMIT $2",
        )
        .bind(before_ms)
        .bind(i64::from(limit.min(APPLICATION_LIST_MAX)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// An application's audit events, in order: its history. Staff reads
    /// of it ([`READ_ACTIONS`]) are in the trail but not in its history: an
    /// often-read application would otherwise push its own steps past the
    /// page's limit.
    pub async fn audit_events_of(
        &self,
        subject: &str,
    ) -> Result<Vec<pasaporte_core::audit::AuditEvent>> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, role, action, office, subject, from_state, to_state, detail
             FROM audit_events WHERE subject = $1 AND action <> $2 AND action <> $3
             ORDER BY seq LIMIT 1000",
        )
        .bind(subject)
        .bind(READ_ACTIONS[0])
        .bind(READ_ACTIONS[1])
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(pasaporte_core::audit::AuditEvent {
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    role: r.try_get("role")?,
                    action: r.try_get("action")?,
                    office: r.try_get("office")?,
                    subject: r.try_get("subject")?,
                    from_state: r.try_get("from_state")?,
                    to_state: r.try_get("to_state")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// No-shows counted in an office's slots in `[from_ms, to_ms)`.
    pub async fn no_shows(&self, office: &str, from_ms: i64, to_ms: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(no_shows), 0) AS BIGINT) AS n FROM slot_seats WHERE office_code = $1 AND start_ms >= $2 AND start_ms < $3",
        )
        .bind(office)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}
