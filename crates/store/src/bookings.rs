//! Bookings: batches of writes applied in one transaction (group commit: one
//! fsync for many bookings), each write inside its own savepoint so that one
//! refused booking does not undo its neighbours.
//!
//! Seats are counted per slot and pool (`slot_seats`, one row per office,
//! slot start and [`Pool`]): each pool's row has its own capacity, so the
//! CHECK keeps every pool within its share of the slot.

use crate::{Backend, Result, Store, StoreError, to_i64, to_u32};
use pasaporte_core::application::Actor;
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::shares::Pool;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// One applicant's row: identity as a keyed hash, everything else sealed.
#[derive(Clone, Debug)]
pub struct ApplicantRow {
    pub doc_key: String,
    pub document_type: String,
    pub document_number_enc: String,
    pub surnames_enc: String,
    pub given_names_enc: String,
    pub birth_date_enc: String,
}

/// A mail to queue in the same transaction as the change it tells about.
#[derive(Clone, Debug)]
pub struct MailRow {
    pub id: String,
    pub recipient_enc: String,
    pub subject: String,
    pub body_enc: String,
    pub ics_enc: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewBooking {
    /// Who books: the citizen (their actor id is the booking id) or the
    /// staff member booking for them; named by the audit event written with
    /// the booking.
    pub actor: Actor,
    pub id: String,
    pub code: String,
    pub office: String,
    pub start_ms: i64,
    /// The pool the seats come from.
    pub pool: Pool,
    /// The pool's share of the slot's capacity as the calendar and the
    /// office's policy compute it now.
    pub capacity: u32,
    pub applicants: Vec<ApplicantRow>,
    pub email_enc: String,
    pub phone_enc: Option<String>,
    pub now_ms: i64,
    /// `(Idempotency-Key, hash of the request)`.
    pub idempotency: Option<(String, String)>,
    pub mail: MailRow,
    /// A supervisor's urgent grant (urgent bookings only; boxed, as few
    /// bookings carry one).
    pub urgent: Option<Box<UrgentGrant>>,
}

/// Why an urgent seat was given, and by whom.
#[derive(Clone, Debug)]
pub struct UrgentGrant {
    /// The case's evidence, sealed like every personal field.
    pub evidence_enc: String,
    /// Written in the booking's transaction, before the booking's own event.
    pub audit: AuditEvent,
}

#[derive(Clone, Debug)]
pub enum WriteOp {
    Book(NewBooking),
    /// Moves a booking to another slot of the same office: the new seats are
    /// taken before the old ones are released, in one transaction.
    Reschedule {
        actor: Actor,
        booking_id: String,
        start_ms: i64,
        /// The capacity, in the new slot, of the pool the booking holds its
        /// seats in (`BookingRow::pool`).
        capacity: u32,
        now_ms: i64,
        mail: MailRow,
    },
    Cancel {
        actor: Actor,
        booking_id: String,
        now_ms: i64,
        mail: MailRow,
    },
    /// Moves a booking to a slot of any office (re-seating, or a displaced
    /// booking's citizen choosing a new time): the new seats are taken
    /// first, then the old ones released (a displaced booking holds none).
    /// An active or displaced booking becomes active at the new slot.
    Move {
        actor: Actor,
        booking_id: String,
        office: String,
        start_ms: i64,
        capacity: u32,
        now_ms: i64,
        mail: MailRow,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Booked {
        code: String,
    },
    /// The idempotency key was seen before with the same request.
    Replayed {
        code: String,
    },
    Rescheduled {
        office: String,
        from_ms: i64,
        to_ms: i64,
        seats: u32,
        pool: Pool,
    },
    /// `seats` released: none for a displaced booking, which held none.
    Cancelled {
        office: String,
        start_ms: i64,
        seats: u32,
        pool: Pool,
    },
    /// Re-seated, possibly at another office (see `move_booking_in`).
    Moved {
        from_office: String,
        from_ms: i64,
        to_office: String,
        to_ms: i64,
        seats: u32,
        /// Seats given back at `from_ms`: none for a displaced booking.
        released: u32,
    },
    /// Left without a seat, waiting for the citizen's choice.
    Displaced {
        office: String,
        start_ms: i64,
        seats: u32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the slot has no seats left")]
    SlotFull,
    #[error("a person in the request already holds an active booking")]
    AlreadyBooked,
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the confirmation code is taken")]
    CodeTaken,
    #[error("the booking is not active")]
    NotActive,
    #[error("the booking is already in that slot")]
    SameSlot,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Store(e.into())
    }
}

/// The offices whose seats the applied writes of a batch changed: the
/// generations the batch bumps (each once, whatever the number of writes).
pub(crate) fn seat_scopes(
    ops: &[WriteOp],
    results: &[std::result::Result<WriteOutcome, WriteError>],
) -> Vec<crate::CacheScope> {
    let mut offices: Vec<&str> = Vec::new();
    for (op, result) in ops.iter().zip(results) {
        match (op, result) {
            (WriteOp::Book(b), Ok(WriteOutcome::Booked { .. })) => offices.push(&b.office),
            (
                _,
                Ok(
                    WriteOutcome::Rescheduled { office, .. }
                    | WriteOutcome::Cancelled { office, .. }
                    | WriteOutcome::Displaced { office, .. },
                ),
            ) => offices.push(office),
            (
                _,
                Ok(WriteOutcome::Moved {
                    from_office,
                    to_office,
                    ..
                }),
            ) => {
                offices.push(from_office);
                offices.push(to_office);
            }
            (_, Ok(WriteOutcome::Booked { .. } | WriteOutcome::Replayed { .. }) | Err(_)) => {}
        }
    }
    offices.sort_unstable();
    offices.dedup();
    offices
        .into_iter()
        .map(|o| crate::CacheScope::Seats(o.to_string()))
        .collect()
}

/// Maps a refused statement to what it means for the booking.
pub(crate) fn classify(e: sqlx::Error) -> WriteError {
    match StoreError::from(e) {
        StoreError::Conflict { constraint } => classify_constraint(constraint),
        other => WriteError::Store(other),
    }
}

/// Which constraint refused a write, by its name (PostgreSQL) or message
/// (SQLite: "CHECK constraint failed: seats_within_capacity").
pub(crate) fn classify_constraint(constraint: String) -> WriteError {
    let c = constraint.to_ascii_lowercase();
    if c.contains("seats_within_capacity") || c.contains("check") {
        WriteError::SlotFull
    } else if c.contains("person_holds") {
        WriteError::AlreadyBooked
    } else if c.contains("idempotency") {
        WriteError::IdempotencyKeyReused
    } else if c.contains("code") {
        WriteError::CodeTaken
    } else {
        WriteError::Store(StoreError::Conflict { constraint })
    }
}

/// A booking as stored, personal fields still sealed.
#[derive(Clone, Debug)]
pub struct BookingRow {
    pub id: String,
    pub code: String,
    pub office: String,
    pub start_ms: i64,
    pub seats: u32,
    /// The pool its seats came from.
    pub pool: Pool,
    /// For an urgent seat, the supervisor's evidence (sealed).
    pub evidence_enc: Option<String>,
    pub status: String,
    pub email_enc: String,
    pub phone_enc: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub applicants: Vec<ApplicantRow>,
}

/// Seats taken in one slot (of one pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotCount {
    pub start_ms: i64,
    pub capacity: u32,
    pub booked: u32,
}

/// Seats taken in one pool of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolCount {
    pub start_ms: i64,
    pub pool: Pool,
    /// The pool's capacity when its last seat was taken.
    pub capacity: u32,
    pub booked: u32,
}

/// A stored pool name back to its [`Pool`].
pub(crate) fn parse_pool(s: &str) -> std::result::Result<Pool, StoreError> {
    Pool::parse(s).ok_or_else(|| StoreError::Other(format!("stored pool '{s}' is unknown")))
}

/// A slot whose seat count disagrees with its active bookings, or is over
/// capacity: the consistency check's finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMismatch {
    pub office: String,
    pub start_ms: i64,
    pub pool: String,
    pub capacity: i64,
    pub booked: i64,
    pub seats_in_bookings: i64,
}

pub(crate) async fn insert_mail(
    tx: &mut Transaction<'static, Any>,
    m: &MailRow,
    now_ms: i64,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (id, created_ms, next_attempt_ms, attempts, sent_ms, recipient_enc, subject, body_enc, ics_enc, last_error)
         VALUES ($1, $2, $2, 0, NULL, $3, $4, $5, $6, NULL)",
    )
    .bind(&m.id)
    .bind(now_ms)
    .bind(&m.recipient_enc)
    .bind(&m.subject)
    .bind(&m.body_enc)
    .bind(m.ics_enc.as_deref())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes `seats` in the pool's row of the slot. The row's capacity only
/// goes down: to the one computed now when smaller (a smaller share), never
/// above a lower one already there (a capacity cut the calendar does not
/// know). The CHECK refuses the row when the seats would pass it.
pub(crate) async fn add_seats(
    tx: &mut Transaction<'static, Any>,
    office: &str,
    start_ms: i64,
    pool: Pool,
    capacity: u32,
    seats: u32,
) -> std::result::Result<(), WriteError> {
    sqlx::query(
        "INSERT INTO slot_seats (office_code, start_ms, pool, capacity, booked) VALUES ($1, $2, $5, $3, $4)
         ON CONFLICT (office_code, start_ms, pool) DO UPDATE SET booked = slot_seats.booked + excluded.booked,
           capacity = CASE WHEN excluded.capacity < slot_seats.capacity THEN excluded.capacity ELSE slot_seats.capacity END",
    )
    .bind(office)
    .bind(start_ms)
    .bind(to_i64(capacity))
    .bind(to_i64(seats))
    .bind(pool.as_str())
    .execute(&mut **tx)
    .await
    .map_err(classify)?;
    Ok(())
}

pub(crate) async fn release_seats(
    tx: &mut Transaction<'static, Any>,
    office: &str,
    start_ms: i64,
    pool: Pool,
    seats: i64,
) -> std::result::Result<(), WriteError> {
    sqlx::query(
        "UPDATE slot_seats SET booked = booked - $3 WHERE office_code = $1 AND start_ms = $2 AND pool = $4",
    )
    .bind(office)
    .bind(start_ms)
    .bind(seats)
    .bind(pool.as_str())
    .execute(&mut **tx)
    .await
    .map_err(classify)?;
    Ok(())
}

/// The booking's own rows: the booking, its people's holds (the primary key
/// refuses a person who already holds one) and its applicants. A ballot
/// request is the same rows with another status and no seat yet.
pub(crate) async fn insert_booking_rows(
    tx: &mut Transaction<'static, Any>,
    b: &NewBooking,
    status: &str,
) -> std::result::Result<(), WriteError> {
    let seats = u32::try_from(b.applicants.len()).unwrap_or(u32::MAX);
    sqlx::query(
        "INSERT INTO bookings (id, code, office_code, start_ms, seats, status, email_enc, phone_enc, created_ms, updated_ms, pool, evidence_enc)
         VALUES ($1, $2, $3, $4, $5, $11, $6, $7, $8, $8, $9, $10)",
    )
    .bind(&b.id)
    .bind(&b.code)
    .bind(&b.office)
    .bind(b.start_ms)
    .bind(to_i64(seats))
    .bind(&b.email_enc)
    .bind(b.phone_enc.as_deref())
    .bind(b.now_ms)
    .bind(b.pool.as_str())
    .bind(b.urgent.as_ref().map(|u| u.evidence_enc.as_str()))
    .bind(status)
    .execute(&mut **tx)
    .await
    .map_err(classify)?;
    for (i, a) in b.applicants.iter().enumerate() {
        sqlx::query("INSERT INTO person_holds (doc_key, booking_id) VALUES ($1, $2)")
            .bind(&a.doc_key)
            .bind(&b.id)
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
        sqlx::query(
            "INSERT INTO applicants (booking_id, position, doc_key, document_type, document_number_enc, surnames_enc, given_names_enc, birth_date_enc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&b.id)
        .bind(i as i64)
        .bind(&a.doc_key)
        .bind(&a.document_type)
        .bind(&a.document_number_enc)
        .bind(&a.surnames_enc)
        .bind(&a.given_names_enc)
        .bind(&a.birth_date_enc)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    }
    Ok(())
}

async fn book(
    tx: &mut Transaction<'static, Any>,
    b: &NewBooking,
) -> std::result::Result<WriteOutcome, WriteError> {
    if let Some((key, hash)) = &b.idempotency {
        let seen = sqlx::query("SELECT request_hash, booking_code FROM idempotency WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(r) = seen {
            let first_hash: String = r.try_get("request_hash")?;
            return if &first_hash == hash {
                Ok(WriteOutcome::Replayed {
                    code: r.try_get("booking_code")?,
                })
            } else {
                Err(WriteError::IdempotencyKeyReused)
            };
        }
    }
    let seats = u32::try_from(b.applicants.len()).unwrap_or(u32::MAX);
    add_seats(tx, &b.office, b.start_ms, b.pool, b.capacity, seats).await?;
    insert_booking_rows(tx, b, "active").await?;
    if let Some((key, hash)) = &b.idempotency {
        sqlx::query("INSERT INTO idempotency (key, request_hash, booking_code, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(key)
            .bind(hash)
            .bind(&b.code)
            .bind(b.now_ms)
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
    }
    insert_mail(tx, &b.mail, b.now_ms).await?;
    Ok(WriteOutcome::Booked {
        code: b.code.clone(),
    })
}

/// An active booking's office, slot start, seats and pool.
async fn active_booking(
    tx: &mut Transaction<'static, Any>,
    id: &str,
) -> std::result::Result<(String, i64, i64, Pool), WriteError> {
    let row = sqlx::query(
        "SELECT office_code, start_ms, seats, status, pool FROM bookings WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(WriteError::Store(StoreError::NotFound))?;
    let status: String = row.try_get("status")?;
    if status != "active" {
        return Err(WriteError::NotActive);
    }
    let pool: String = row.try_get("pool")?;
    Ok((
        row.try_get("office_code")?,
        row.try_get("start_ms")?,
        row.try_get("seats")?,
        parse_pool(&pool)?,
    ))
}

async fn reschedule(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    start_ms: i64,
    capacity: u32,
    now_ms: i64,
    mail: &MailRow,
) -> std::result::Result<WriteOutcome, WriteError> {
    let (office, old_start, seats, pool) = active_booking(tx, id).await?;
    if old_start == start_ms {
        return Err(WriteError::SameSlot);
    }
    // Take the new seats first: if the slot is full, the old seat stays held.
    add_seats(tx, &office, start_ms, pool, capacity, to_u32(seats)).await?;
    release_seats(tx, &office, old_start, pool, seats).await?;
    // `status = 'active'` again: on PostgreSQL a check-in or the no-show
    // worker may have committed since the read above.
    let moved = sqlx::query(
        "UPDATE bookings SET start_ms = $2, updated_ms = $3 WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .bind(start_ms)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(WriteError::NotActive);
    }
    insert_mail(tx, mail, now_ms).await?;
    Ok(WriteOutcome::Rescheduled {
        office,
        from_ms: old_start,
        to_ms: start_ms,
        seats: to_u32(seats),
        pool,
    })
}

async fn cancel(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    now_ms: i64,
    mail: &MailRow,
) -> std::result::Result<WriteOutcome, WriteError> {
    let row = sqlx::query(
        "SELECT office_code, start_ms, seats, status, pool FROM bookings WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(WriteError::Store(StoreError::NotFound))?;
    let status: String = row.try_get("status")?;
    let pool: String = row.try_get("pool")?;
    let (office, start, seats, pool): (String, i64, i64, Pool) = (
        row.try_get("office_code")?,
        row.try_get("start_ms")?,
        row.try_get("seats")?,
        parse_pool(&pool)?,
    );
    // A displaced booking (see re-seating) holds its person but no seat.
    let held = match status.as_str() {
        "active" => seats,
        "displaced" => 0,
        _ => return Err(WriteError::NotActive),
    };
    // The status read above again: on PostgreSQL a check-in or the no-show
    // worker may have committed since the read.
    let cancelled = sqlx::query(
        "UPDATE bookings SET status = 'cancelled', updated_ms = $2 WHERE id = $1 AND status = $3",
    )
    .bind(id)
    .bind(now_ms)
    .bind(&status)
    .execute(&mut **tx)
    .await?;
    if cancelled.rows_affected() != 1 {
        return Err(WriteError::NotActive);
    }
    if held > 0 {
        release_seats(tx, &office, start, pool, held).await?;
    }
    sqlx::query("DELETE FROM person_holds WHERE booking_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    insert_mail(tx, mail, now_ms).await?;
    Ok(WriteOutcome::Cancelled {
        office,
        start_ms: start,
        seats: to_u32(held),
        pool,
    })
}

async fn apply_one(
    tx: &mut Transaction<'static, Any>,
    op: &WriteOp,
) -> std::result::Result<WriteOutcome, WriteError> {
    match op {
        WriteOp::Book(b) => book(tx, b).await,
        WriteOp::Reschedule {
            booking_id,
            start_ms,
            capacity,
            now_ms,
            mail,
            ..
        } => reschedule(tx, booking_id, *start_ms, *capacity, *now_ms, mail).await,
        WriteOp::Cancel {
            booking_id,
            now_ms,
            mail,
            ..
        } => cancel(tx, booking_id, *now_ms, mail).await,
        WriteOp::Move {
            actor: _,
            booking_id,
            office,
            start_ms,
            capacity,
            now_ms,
            mail,
        } => move_booking(tx, booking_id, office, *start_ms, *capacity, *now_ms, mail).await,
    }
}

/// The audit events of one write that changed something, in chain order:
/// an urgent grant's, then the booking's own. Ids, offices, slot instants
/// (unix ms) and seat counts only: never a name, a document number or the
/// evidence. A replayed request changed nothing and records nothing.
pub(crate) fn write_events(op: &WriteOp, outcome: &WriteOutcome, out: &mut Vec<AuditEvent>) {
    match (op, outcome) {
        (WriteOp::Book(b), WriteOutcome::Booked { .. }) => {
            if let Some(u) = &b.urgent {
                out.push(u.audit.clone());
            }
            let mut e = AuditEvent::by(&b.actor, b.now_ms, "booking.book", &b.office, &b.id);
            e.to_state = Some("active".into());
            e.detail = format!(
                "slot_ms={} seats={} pool={}",
                b.start_ms,
                b.applicants.len(),
                b.pool.as_str()
            );
            out.push(e);
        }
        (
            WriteOp::Reschedule {
                actor,
                booking_id,
                now_ms,
                ..
            },
            WriteOutcome::Rescheduled {
                office,
                from_ms,
                to_ms,
                seats,
                pool,
            },
        ) => {
            let mut e = AuditEvent::by(actor, *now_ms, "booking.reschedule", office, booking_id);
            e.detail = format!(
                "from_slot_ms={from_ms} to_slot_ms={to_ms} seats={seats} pool={}",
                pool.as_str()
            );
            out.push(e);
        }
        (
            WriteOp::Cancel {
                actor,
                booking_id,
                now_ms,
                ..
            },
            WriteOutcome::Cancelled {
                office,
                start_ms,
                seats,
                pool,
            },
        ) => {
            let mut e = AuditEvent::by(actor, *now_ms, "booking.cancel", office, booking_id);
            e.to_state = Some("cancelled".into());
            e.detail = format!(
                "slot_ms={start_ms} seats_released={seats} pool={}",
                pool.as_str()
            );
            out.push(e);
        }
        (
            WriteOp::Move {
                actor,
                booking_id,
                now_ms,
                ..
            },
            WriteOutcome::Moved {
                from_office,
                from_ms,
                to_office,
                to_ms,
                seats,
                released,
            },
        ) => {
            let mut e = AuditEvent::by(actor, *now_ms, "booking.move", to_office, booking_id);
            e.to_state = Some("active".into());
            e.detail = format!(
                "from={from_office}@{from_ms} to={to_office}@{to_ms} seats={seats} released={released}"
            );
            out.push(e);
        }
        // Nothing changed, or an outcome no write of this kind produces.
        (WriteOp::Book(_), _)
        | (WriteOp::Reschedule { .. }, _)
        | (WriteOp::Cancel { .. }, _)
        | (WriteOp::Move { .. }, _) => {}
    }
}

fn booking_from_row(r: &AnyRow) -> Result<BookingRow> {
    let pool: String = r.try_get("pool")?;
    Ok(BookingRow {
        pool: parse_pool(&pool)?,
        evidence_enc: r.try_get("evidence_enc")?,
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        office: r.try_get("office_code")?,
        start_ms: r.try_get("start_ms")?,
        seats: to_u32(r.try_get("seats")?),
        status: r.try_get("status")?,
        email_enc: r.try_get("email_enc")?,
        phone_enc: r.try_get("phone_enc")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        applicants: Vec::new(),
    })
}

impl Store {
    /// Applies `ops` in one transaction, each in its own savepoint, and
    /// commits once: the results are durable when this returns `Ok`. A refused
    /// write (full slot, person already booked...) is rolled back alone. If the
    /// transaction itself fails (a deadlock between two servers on PostgreSQL,
    /// say), nothing was applied and the caller may retry.
    ///
    /// Every write that changed something is audited in the same
    /// transaction (`write_events`): the batch's events are appended
    /// together after its last write, with one read of the chain's head and
    /// multi-row inserts, so the group commit keeps its rate and, on
    /// PostgreSQL, the chain's lock is held only from there to the commit.
    pub async fn apply_batch(
        &self,
        ops: &[WriteOp],
    ) -> Result<Vec<std::result::Result<WriteOutcome, WriteError>>> {
        if let Some(path) = &self.sqlite_path {
            let (writer, path, ops) = (self.sqlite_writer.clone(), path.clone(), ops.to_vec());
            return tokio::task::spawn_blocking(move || {
                let mut guard = writer
                    .lock()
                    .map_err(|_| StoreError::Other("sqlite writer lock poisoned".into()))?;
                if guard.is_none() {
                    *guard = Some(crate::sqlite_writer::SqliteWriter::open(&path)?);
                }
                match guard.as_mut() {
                    Some(w) => w.apply_batch(&ops),
                    None => Err(StoreError::Other("sqlite writer missing".into())),
                }
            })
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        }
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            sqlx::query("SAVEPOINT op").execute(&mut *tx).await?;
            match apply_one(&mut tx, op).await {
                Ok(o) => {
                    sqlx::query("RELEASE SAVEPOINT op")
                        .execute(&mut *tx)
                        .await?;
                    out.push(Ok(o));
                }
                Err(WriteError::Store(e @ (StoreError::Unavailable(_) | StoreError::Other(_)))) => {
                    // An error the savepoint cannot contain (connection lost,
                    // deadlock): give up the whole batch.
                    return Err(e);
                }
                Err(e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT op")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("RELEASE SAVEPOINT op")
                        .execute(&mut *tx)
                        .await?;
                    out.push(Err(e));
                }
            }
        }
        let mut events = Vec::new();
        for (op, result) in ops.iter().zip(&out) {
            if let Ok(outcome) = result {
                write_events(op, outcome, &mut events);
            }
        }
        crate::append_audit_events(&mut tx, &events).await?;
        crate::bump_generations_in(&mut tx, seat_scopes(ops, &out)).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// A booking by its confirmation code, with its applicants.
    pub async fn booking_by_code(&self, code: &str) -> Result<BookingRow> {
        let row = sqlx::query(
            "SELECT id, code, office_code, start_ms, seats, status, email_enc, phone_enc, created_ms, updated_ms, pool, evidence_enc
             FROM bookings WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let mut b = booking_from_row(&row)?;
        let rows = sqlx::query(
            "SELECT doc_key, document_type, document_number_enc, surnames_enc, given_names_enc, birth_date_enc
             FROM applicants WHERE booking_id = $1 ORDER BY position",
        )
        .bind(&b.id)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            b.applicants.push(ApplicantRow {
                doc_key: r.try_get("doc_key")?,
                document_type: r.try_get("document_type")?,
                document_number_enc: r.try_get("document_number_enc")?,
                surnames_enc: r.try_get("surnames_enc")?,
                given_names_enc: r.try_get("given_names_enc")?,
                birth_date_enc: r.try_get("birth_date_enc")?,
            });
        }
        Ok(b)
    }

    /// Whether the one-off data fix `name` ran already.
    pub async fn data_fix_done(&self, name: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM data_fixes WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Records the one-off data fix `name` as done.
    pub async fn record_data_fix(&self, name: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO data_fixes (name, done_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Applicants whose document is of one of `kinds`, after `(booking_id,
    /// position)` in that order, at most `limit`: `(booking_id, position,
    /// doc_key, document_type, document_number_enc)`.
    pub async fn applicants_of_kinds(
        &self,
        kinds: &[&str],
        after: (&str, i64),
        limit: u32,
    ) -> Result<Vec<(String, i64, String, String, String)>> {
        let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT booking_id, position, doc_key, document_type, document_number_enc FROM applicants
             WHERE (booking_id > $1 OR (booking_id = $1 AND position > $2)) AND document_type IN ({})
             ORDER BY booking_id, position LIMIT $3",
            if placeholders.is_empty() { "NULL".to_string() } else { placeholders.join(", ") }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.0.to_string())
            .bind(after.1)
            .bind(i64::from(limit));
        for k in kinds {
            q = q.bind(k.to_string());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("booking_id")?,
                    r.try_get("position")?,
                    r.try_get("doc_key")?,
                    r.try_get("document_type")?,
                    r.try_get("document_number_enc")?,
                ))
            })
            .collect()
    }

    /// Moves everything stored under the person key `old` to `new` (the
    /// applicants, the person's hold, the applications) in one transaction.
    /// When `new` already holds a booking or a live application (the same
    /// person booked under both keys before they were one), nothing moves:
    /// `Conflict`, and the rows stay as they were.
    pub async fn rekey_person(&self, old: &str, new: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "UPDATE person_holds SET doc_key = $2 WHERE doc_key = $1",
            "UPDATE applications SET doc_key = $2 WHERE doc_key = $1",
            "UPDATE applicants SET doc_key = $2 WHERE doc_key = $1",
        ] {
            sqlx::query(sql)
                .bind(old)
                .bind(new)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The code of the active booking a person holds, if any.
    pub async fn active_booking_of(&self, doc_key: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT b.code FROM person_holds h JOIN bookings b ON b.id = h.booking_id WHERE h.doc_key = $1",
        )
        .bind(doc_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("code")?),
            None => None,
        })
    }

    /// Online seats taken in the office's slots starting in `[from_ms,
    /// to_ms)`: what citizens' calendars count against (the other pools are
    /// in [`Store::pool_counts`]).
    pub async fn slot_counts(
        &self,
        office: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SlotCount>> {
        let rows = sqlx::query(SLOT_COUNTS_SQL)
            .bind(office)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(slot_count_from_row).collect()
    }

    /// Seats taken per pool in the office's slots starting in `[from_ms,
    /// to_ms)` (a local day, for the published capacity), by slot then pool.
    pub async fn pool_counts(
        &self,
        office: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<PoolCount>> {
        let rows = sqlx::query(
            "SELECT start_ms, pool, capacity, booked FROM slot_seats
             WHERE office_code = $1 AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms, pool",
        )
        .bind(office)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let pool: String = r.try_get("pool")?;
                Ok(PoolCount {
                    start_ms: r.try_get("start_ms")?,
                    pool: parse_pool(&pool)?,
                    capacity: to_u32(r.try_get("capacity")?),
                    booked: to_u32(r.try_get("booked")?),
                })
            })
            .collect()
    }

    /// Active bookings in the database.
    pub async fn active_bookings(&self) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM bookings WHERE status = 'active'")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Every slot pool whose seat count is over capacity or differs from the
    /// seats of its bookings in that pool that hold seats (active, offered to
    /// the waitlist, checked in, or no-show: a past seat is not given back).
    /// Empty on a healthy database.
    pub async fn check_slots(&self) -> Result<Vec<SlotMismatch>> {
        let rows = sqlx::query(
            "SELECT s.office_code, s.start_ms, s.pool, s.capacity, s.booked,
                    CAST(COALESCE((SELECT SUM(b.seats) FROM bookings b
                              WHERE b.office_code = s.office_code AND b.start_ms = s.start_ms AND b.pool = s.pool
                                AND b.status IN ('active', 'offered', 'checked_in', 'no_show')), 0) AS BIGINT) AS seats
             FROM slot_seats s",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let m = SlotMismatch {
                office: r.try_get("office_code")?,
                start_ms: r.try_get("start_ms")?,
                pool: r.try_get("pool")?,
                capacity: r.try_get("capacity")?,
                booked: r.try_get("booked")?,
                seats_in_bookings: r.try_get("seats")?,
            };
            if m.booked > m.capacity || m.booked != m.seats_in_bookings {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Whether this backend needs the caller to keep batches small because
    /// several servers may write at once (PostgreSQL) or not (SQLite).
    pub fn single_writer(&self) -> bool {
        self.backend == Backend::Sqlite
    }
}

// ---------------------------------------------------------------------------
// Re-seating (an office closed for a day, or its capacity cut): written inside
// the caller's transaction, so that the closure, every move and their audit
// events commit together. These run through sqlx on both backends (on SQLite
// the transaction is `BEGIN IMMEDIATE`, which waits for the rusqlite writer's
// batch and holds it off until the commit); the group-commit writer is for
// many small independent writes, this is one large dependent one.

use crate::Tx;
pub use crate::offices::{CapacityCut, insert_capacity_cut_in, insert_closure_in};

/// An active booking as re-seating needs it (personal fields still sealed).
#[derive(Clone, Debug)]
pub struct SeatedBooking {
    pub id: String,
    pub code: String,
    pub office: String,
    pub start_ms: i64,
    pub seats: u32,
    pub email_enc: String,
    pub created_ms: i64,
}

/// A booking waiting for its citizen's choice after a closure left it
/// without a seat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplacedRow {
    pub code: String,
    pub office: String,
    /// The start of the slot it lost.
    pub start_ms: i64,
    pub seats: u32,
    pub updated_ms: i64,
}

/// Most displaced bookings listed at once: a supervisor's page, not a dump.
pub const DISPLACED_LIST_MAX: u32 = 500;

/// Sets the capacity of the office's slots to `slots` (`(start_ms,
/// capacity)`), never below the seats a slot already holds: a slot that
/// holds more keeps exactly that many, so no one can book it until
/// re-seating has moved the excess out (calling this again then lowers it
/// the rest of the way). A slot without a row gets one with no seat taken.
/// The caller bumps the office's seat generation before it commits.
pub async fn cap_slots_in(
    tx: &mut Tx,
    office: &str,
    slots: &[(i64, u32)],
) -> std::result::Result<(), StoreError> {
    for (start_ms, capacity) in slots {
        sqlx::query(
            "INSERT INTO slot_seats (office_code, start_ms, pool, capacity, booked) VALUES ($1, $2, 'online', $3, 0)
             ON CONFLICT (office_code, start_ms, pool) DO UPDATE SET capacity =
               CASE WHEN slot_seats.booked > excluded.capacity THEN slot_seats.booked ELSE excluded.capacity END",
        )
        .bind(office)
        .bind(start_ms)
        .bind(to_i64(*capacity))
        .execute(&mut **tx)
        .await?;
        // The other pools' rows: none may offer more than the slot now has.
        sqlx::query(
            "UPDATE slot_seats SET capacity = CASE WHEN booked > $3 THEN booked ELSE $3 END
             WHERE office_code = $1 AND start_ms = $2 AND pool <> 'online' AND capacity > $3",
        )
        .bind(office)
        .bind(start_ms)
        .bind(to_i64(*capacity))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Seats taken in the office's slots starting in `[from_ms, to_ms)`, read
/// inside `tx`.
pub async fn slot_counts_in(
    tx: &mut Tx,
    office: &str,
    from_ms: i64,
    to_ms: i64,
) -> std::result::Result<Vec<SlotCount>, StoreError> {
    let rows = sqlx::query(SLOT_COUNTS_SQL)
        .bind(office)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(slot_count_from_row).collect()
}

/// The online pool's seat counts of an office's slots in `[$2, $3)`.
const SLOT_COUNTS_SQL: &str = "SELECT start_ms, capacity, booked FROM slot_seats
     WHERE office_code = $1 AND start_ms >= $2 AND start_ms < $3 AND pool = 'online' ORDER BY start_ms";

fn slot_count_from_row(r: &AnyRow) -> Result<SlotCount> {
    Ok(SlotCount {
        start_ms: r.try_get("start_ms")?,
        capacity: to_u32(r.try_get("capacity")?),
        booked: to_u32(r.try_get("booked")?),
    })
}

/// The office's active bookings starting in `[from_ms, to_ms)`, by start
/// then by when they were made.
pub async fn active_between_in(
    tx: &mut Tx,
    office: &str,
    from_ms: i64,
    to_ms: i64,
) -> std::result::Result<Vec<SeatedBooking>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, code, office_code, start_ms, seats, email_enc, created_ms FROM bookings
         WHERE office_code = $1 AND start_ms >= $2 AND start_ms < $3 AND status = 'active'
         ORDER BY start_ms, created_ms, id",
    )
    .bind(office)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SeatedBooking {
                id: r.try_get("id")?,
                code: r.try_get("code")?,
                office: r.try_get("office_code")?,
                start_ms: r.try_get("start_ms")?,
                seats: to_u32(r.try_get("seats")?),
                email_enc: r.try_get("email_enc")?,
                created_ms: r.try_get("created_ms")?,
            })
        })
        .collect()
}

/// [`WriteOp::Move`] inside the caller's transaction and its own savepoint: the new seats are taken first, then
/// the old ones released. A refusal (the slot filled meanwhile, the booking
/// no longer active) rolls back the savepoint alone and is returned, so the
/// caller can try the next seat. The caller bumps both offices' seat
/// generations before it commits (see `generations.rs`).
#[allow(clippy::too_many_arguments)]
pub async fn move_booking_in(
    tx: &mut Tx,
    booking_id: &str,
    office: &str,
    start_ms: i64,
    capacity: u32,
    now_ms: i64,
    mail: &MailRow,
) -> std::result::Result<WriteOutcome, WriteError> {
    sqlx::query("SAVEPOINT reseat").execute(&mut **tx).await?;
    let r = move_booking(tx, booking_id, office, start_ms, capacity, now_ms, mail).await;
    match &r {
        Ok(_) => {}
        Err(WriteError::Store(StoreError::Unavailable(_) | StoreError::Other(_))) => return r,
        Err(_) => {
            sqlx::query("ROLLBACK TO SAVEPOINT reseat")
                .execute(&mut **tx)
                .await?;
        }
    }
    sqlx::query("RELEASE SAVEPOINT reseat")
        .execute(&mut **tx)
        .await?;
    r
}

/// A pool's share of a slot of `capacity` seats at `office`, by its policy
/// (an office without one offers every seat online).
async fn pool_capacity_in(
    tx: &mut Tx,
    office: &str,
    pool: Pool,
    capacity: u32,
) -> std::result::Result<u32, WriteError> {
    let row = sqlx::query(
        "SELECT online_pct, urgent_pct, walk_in_pct, priority_pct FROM office_policies WHERE office_code = $1",
    )
    .bind(office)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else {
        return Ok(if pool == Pool::Online { capacity } else { 0 });
    };
    let pct = |c: &str| -> std::result::Result<u32, sqlx::Error> { Ok(to_u32(r.try_get(c)?)) };
    let shares = pasaporte_core::shares::Shares::new(
        pct("online_pct")?,
        pct("urgent_pct")?,
        pct("walk_in_pct")?,
        pct("priority_pct")?,
    )
    .map_err(|_| StoreError::Other(format!("stored shares of {office} are invalid")))?;
    Ok(shares.split(capacity).get(pool))
}

async fn move_booking(
    tx: &mut Tx,
    id: &str,
    office: &str,
    start_ms: i64,
    capacity: u32,
    now_ms: i64,
    mail: &MailRow,
) -> std::result::Result<WriteOutcome, WriteError> {
    let row = sqlx::query(
        "SELECT office_code, start_ms, seats, status, pool FROM bookings WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(WriteError::Store(StoreError::NotFound))?;
    let status: String = row.try_get("status")?;
    let pool: String = row.try_get("pool")?;
    let pool = parse_pool(&pool)?;
    let (from_office, from_ms, seats): (String, i64, i64) = (
        row.try_get("office_code")?,
        row.try_get("start_ms")?,
        row.try_get("seats")?,
    );
    let holds_seats = match status.as_str() {
        "active" => true,
        "displaced" => false,
        _ => return Err(WriteError::NotActive),
    };
    if holds_seats && from_office == office && from_ms == start_ms {
        return Err(WriteError::SameSlot);
    }
    // The booking keeps its pool: its share of the new slot.
    let capacity = pool_capacity_in(tx, office, pool, capacity).await?;
    add_seats(tx, office, start_ms, pool, capacity, to_u32(seats)).await?;
    if holds_seats {
        release_seats(tx, &from_office, from_ms, pool, seats).await?;
    }
    // The status read above again: on PostgreSQL a check-in or the no-show
    // worker may have committed since.
    let moved = sqlx::query(
        "UPDATE bookings SET office_code = $2, start_ms = $3, status = 'active', updated_ms = $4
         WHERE id = $1 AND status = $5",
    )
    .bind(id)
    .bind(office)
    .bind(start_ms)
    .bind(now_ms)
    .bind(&status)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(WriteError::NotActive);
    }
    insert_mail(tx, mail, now_ms).await?;
    Ok(WriteOutcome::Moved {
        from_office,
        from_ms,
        to_office: office.to_string(),
        to_ms: start_ms,
        seats: to_u32(seats),
        released: if holds_seats { to_u32(seats) } else { 0 },
    })
}

/// Marks an active booking `displaced`: its seats are released, its people
/// stay held (no one loses their place to the closure), and it waits for
/// the citizen's choice. The caller bumps the office's seat generation
/// before it commits.
pub async fn displace_booking_in(
    tx: &mut Tx,
    booking_id: &str,
    now_ms: i64,
    mail: &MailRow,
) -> std::result::Result<WriteOutcome, WriteError> {
    let (office, start_ms, seats, pool) = active_booking(tx, booking_id).await?;
    let done = sqlx::query(
        "UPDATE bookings SET status = 'displaced', updated_ms = $2 WHERE id = $1 AND status = 'active'",
    )
    .bind(booking_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(WriteError::NotActive);
    }
    release_seats(tx, &office, start_ms, pool, seats).await?;
    insert_mail(tx, mail, now_ms).await?;
    Ok(WriteOutcome::Displaced {
        office,
        start_ms,
        seats: to_u32(seats),
    })
}

impl Store {
    /// `(office, day)` of every closure and capacity cut on or after `from`
    /// (local dates), by office then day: the days re-seating may still owe.
    pub async fn closed_or_cut_days_since(
        &self,
        from: pasaporte_core::jiff::civil::Date,
    ) -> Result<Vec<(String, pasaporte_core::jiff::civil::Date)>> {
        let rows = sqlx::query(
            "SELECT office_code, day FROM closures WHERE day >= $1
             UNION SELECT office_code, day FROM capacity_cuts WHERE day >= $1
             ORDER BY office_code, day",
        )
        .bind(from.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let day: String = r.try_get("day")?;
                Ok((
                    r.try_get("office_code")?,
                    day.parse()
                        .map_err(|_| StoreError::Other("stored day is not a date".into()))?,
                ))
            })
            .collect()
    }

    /// How many active bookings the office has starting in `[from_ms, to_ms)`.
    pub async fn active_between(&self, office: &str, from_ms: i64, to_ms: i64) -> Result<i64> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM bookings
             WHERE office_code = $1 AND start_ms >= $2 AND start_ms < $3 AND status = 'active'",
        )
        .bind(office)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get("n")?)
    }

    /// Displaced bookings, oldest first, of `office` or of every office.
    pub async fn displaced_bookings(&self, office: Option<&str>) -> Result<Vec<DisplacedRow>> {
        let rows = sqlx::query(
            "SELECT code, office_code, start_ms, seats, updated_ms FROM bookings
             WHERE status = 'displaced' AND ($1 = '' OR office_code = $1)
             ORDER BY updated_ms, code LIMIT $2",
        )
        .bind(office.unwrap_or(""))
        .bind(i64::from(DISPLACED_LIST_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DisplacedRow {
                    code: r.try_get("code")?,
                    office: r.try_get("office_code")?,
                    start_ms: r.try_get("start_ms")?,
                    seats: to_u32(r.try_get("seats")?),
                    updated_ms: r.try_get("updated_ms")?,
                })
            })
            .collect()
    }
}
