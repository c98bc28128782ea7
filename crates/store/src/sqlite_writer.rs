//! The SQLite write path, through rusqlite on the calling thread: sqlx's
//! SQLite driver sends every statement to a worker thread and back, which
//! costs more than the statement itself; the group-commit batch runs here
//! with cached prepared statements instead (the benchmark decided, as
//! shared/STACK.md suggested). Same schema, same constraints, same outcomes
//! as the portable path in `bookings.rs`; the conformance suite runs both.

use crate::bookings::{
    MailRow, NewBooking, WriteError, WriteOp, WriteOutcome, classify_constraint, parse_pool,
    write_events,
};
use crate::{SQLITE_BUSY_TIMEOUT_MS, StoreError, to_i64, to_u32};
use pasaporte_core::audit::{AuditEvent, AuditRecord, ChainHash};
use pasaporte_core::shares::Pool;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

/// `generations::BUMP_SQL` with SQLite's placeholder.
const BUMP_SQL: &str = "INSERT INTO cache_generations (scope, generation) VALUES (?1, 1)
     ON CONFLICT (scope) DO UPDATE SET generation = cache_generations.generation + 1";

pub(crate) struct SqliteWriter {
    conn: Connection,
}

fn store_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict {
                constraint: msg.clone().unwrap_or_default(),
            }
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        _ => StoreError::Other(e.to_string()),
    }
}

fn write_err(e: rusqlite::Error) -> WriteError {
    match store_err(e) {
        StoreError::Conflict { constraint } => classify_constraint(constraint),
        other => WriteError::Store(other),
    }
}

impl SqliteWriter {
    pub(crate) fn open(path: &str) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(store_err)?;
        conn.busy_timeout(std::time::Duration::from_millis(u64::from(
            SQLITE_BUSY_TIMEOUT_MS,
        )))
        .map_err(store_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(store_err)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Self { conn })
    }

    /// See `Store::apply_batch`: one transaction, a savepoint per write, one commit.
    pub(crate) fn apply_batch(
        &mut self,
        ops: &[WriteOp],
    ) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        // IMMEDIATE: take the write lock at the start, so a reader's snapshot
        // can never force this transaction to abort half-way.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(store_err)?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            tx.execute_batch("SAVEPOINT op").map_err(store_err)?;
            match apply_one(&tx, op) {
                Ok(o) => {
                    tx.execute_batch("RELEASE SAVEPOINT op")
                        .map_err(store_err)?;
                    out.push(Ok(o));
                }
                Err(WriteError::Store(e @ (StoreError::Unavailable(_) | StoreError::Other(_)))) => {
                    return Err(e);
                }
                Err(e) => {
                    tx.execute_batch("ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op")
                        .map_err(store_err)?;
                    out.push(Err(e));
                }
            }
        }
        // The batch's audit events, after its last write (see
        // `Store::apply_batch`).
        let mut events = Vec::new();
        for (op, result) in ops.iter().zip(&out) {
            if let Ok(outcome) = result {
                write_events(op, outcome, &mut events);
            }
        }
        append_audit_events(&tx, &events)?;
        // One bump per office the batch changed (see `generations.rs`).
        for scope in crate::bookings::seat_scopes(ops, &out) {
            tx.prepare_cached(BUMP_SQL)
                .and_then(|mut s| s.execute(params![scope.key()]))
                .map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        Ok(out)
    }
}

fn insert_mail(tx: &Transaction<'_>, m: &MailRow, now_ms: i64) -> Result<(), WriteError> {
    tx.prepare_cached(
        "INSERT INTO outbox (id, created_ms, next_attempt_ms, attempts, sent_ms, recipient_enc, subject, body_enc, ics_enc, last_error)
         VALUES (?1, ?2, ?2, 0, NULL, ?3, ?4, ?5, ?6, NULL)",
    )
    .and_then(|mut s| s.execute(params![m.id, now_ms, m.recipient_enc, m.subject, m.body_enc, m.ics_enc]))
    .map_err(write_err)?;
    Ok(())
}

/// As `bookings::add_seats`: the pool's row, its capacity set to the one
/// computed now, the CHECK refusing seats past it.
fn add_seats(
    tx: &Transaction<'_>,
    office: &str,
    start_ms: i64,
    pool: Pool,
    capacity: u32,
    seats: u32,
) -> Result<(), WriteError> {
    tx.prepare_cached(
        "INSERT INTO slot_seats (office_code, start_ms, pool, capacity, booked) VALUES (?1, ?2, ?5, ?3, ?4)
         ON CONFLICT (office_code, start_ms, pool) DO UPDATE SET booked = slot_seats.booked + excluded.booked,
           capacity = CASE WHEN excluded.capacity < slot_seats.capacity THEN excluded.capacity ELSE slot_seats.capacity END",
    )
    .and_then(|mut s| {
        s.execute(params![
            office,
            start_ms,
            to_i64(capacity),
            to_i64(seats),
            pool.as_str()
        ])
    })
    .map_err(write_err)?;
    Ok(())
}

fn release_seats(
    tx: &Transaction<'_>,
    office: &str,
    start_ms: i64,
    pool: Pool,
    seats: i64,
) -> Result<(), WriteError> {
    tx.prepare_cached(
        "UPDATE slot_seats SET booked = booked - ?3 WHERE office_code = ?1 AND start_ms = ?2 AND pool = ?4",
    )
    .and_then(|mut s| s.execute(params![office, start_ms, seats, pool.as_str()]))
    .map_err(write_err)?;
    Ok(())
}

fn book(tx: &Transaction<'_>, b: &NewBooking) -> Result<WriteOutcome, WriteError> {
    if let Some((key, hash)) = &b.idempotency {
        let seen: Option<(String, String)> = tx
            .prepare_cached("SELECT request_hash, booking_code FROM idempotency WHERE key = ?1")
            .and_then(|mut s| {
                s.query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(write_err)?;
        if let Some((first_hash, code)) = seen {
            return if &first_hash == hash {
                Ok(WriteOutcome::Replayed { code })
            } else {
                Err(WriteError::IdempotencyKeyReused)
            };
        }
    }
    let seats = u32::try_from(b.applicants.len()).unwrap_or(u32::MAX);
    add_seats(tx, &b.office, b.start_ms, b.pool, b.capacity, seats)?;
    tx.prepare_cached(
        "INSERT INTO bookings (id, code, office_code, start_ms, seats, status, email_enc, phone_enc, created_ms, updated_ms, pool, evidence_enc)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?8, ?8, ?9, ?10)",
    )
    .and_then(|mut s| s.execute(params![b.id, b.code, b.office, b.start_ms, to_i64(seats), b.email_enc, b.phone_enc, b.now_ms, b.pool.as_str(), b.urgent.as_ref().map(|u| u.evidence_enc.as_str())]))
    .map_err(write_err)?;
    for (i, a) in b.applicants.iter().enumerate() {
        tx.prepare_cached("INSERT INTO person_holds (doc_key, booking_id) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![a.doc_key, b.id]))
            .map_err(write_err)?;
        tx.prepare_cached(
            "INSERT INTO applicants (booking_id, position, doc_key, document_type, document_number_enc, surnames_enc, given_names_enc, birth_date_enc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                b.id,
                i as i64,
                a.doc_key,
                a.document_type,
                a.document_number_enc,
                a.surnames_enc,
                a.given_names_enc,
                a.birth_date_enc
            ])
        })
        .map_err(write_err)?;
    }
    if let Some((key, hash)) = &b.idempotency {
        tx.prepare_cached("INSERT INTO idempotency (key, request_hash, booking_code, created_ms) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![key, hash, b.code, b.now_ms]))
            .map_err(write_err)?;
    }
    insert_mail(tx, &b.mail, b.now_ms)?;
    Ok(WriteOutcome::Booked {
        code: b.code.clone(),
    })
}

/// As `audit::append_audit_events`, through this connection: the chain's
/// head is read once and the records inserted in the batch's transaction,
/// which holds the database's write lock (`BEGIN IMMEDIATE`), so the head
/// cannot move in between. The insert is one cached statement run per event:
/// on SQLite a prepared single-row insert costs microseconds, no less than a
/// multi-row one of the same rows.
fn append_audit_events(tx: &Transaction<'_>, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let head: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(store_err)?;
    let mut head = match head {
        None => None,
        Some((seq, hash)) => Some((
            seq,
            ChainHash::from_hex(&hash).ok_or_else(|| {
                StoreError::Other(format!("audit event {seq} has a malformed hash"))
            })?,
        )),
    };
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO audit_events (seq, prev_hash, hash, at_ms, actor, role, action, office, subject, from_state, to_state, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(store_err)?;
    for event in events {
        let record = AuditRecord::next(head.as_ref().map(|(s, h)| (*s, h)), event.clone());
        insert
            .execute(params![
                record.seq,
                record.prev_hash,
                record.hash,
                event.at_ms,
                event.actor,
                event.role,
                event.action,
                event.office,
                event.subject,
                event.from_state,
                event.to_state,
                event.detail
            ])
            .map_err(store_err)?;
        let hash = ChainHash::from_hex(&record.hash)
            .ok_or_else(|| StoreError::Other("a computed hash did not parse".into()))?;
        head = Some((record.seq, hash));
    }
    Ok(())
}

/// An active booking's office, slot start, seats and pool.
fn active_booking(tx: &Transaction<'_>, id: &str) -> Result<(String, i64, i64, Pool), WriteError> {
    let row: Option<(String, i64, i64, String, String)> = tx
        .prepare_cached(
            "SELECT office_code, start_ms, seats, status, pool FROM bookings WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
        })
        .map_err(write_err)?;
    let (office, start, seats, status, pool) =
        row.ok_or(WriteError::Store(StoreError::NotFound))?;
    if status != "active" {
        return Err(WriteError::NotActive);
    }
    Ok((office, start, seats, parse_pool(&pool)?))
}

/// See `pool_capacity_in` in `bookings.rs`.
fn pool_capacity(
    tx: &Transaction<'_>,
    office: &str,
    pool: Pool,
    capacity: u32,
) -> Result<u32, WriteError> {
    let row: Option<(i64, i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT online_pct, urgent_pct, walk_in_pct, priority_pct FROM office_policies WHERE office_code = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![office], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(write_err)?;
    let Some((o, u, w, p)) = row else {
        return Ok(if pool == Pool::Online { capacity } else { 0 });
    };
    let shares = pasaporte_core::shares::Shares::new(to_u32(o), to_u32(u), to_u32(w), to_u32(p))
        .map_err(|_| {
            WriteError::Store(StoreError::Other(format!(
                "stored shares of {office} are invalid"
            )))
        })?;
    Ok(shares.split(capacity).get(pool))
}

/// See `WriteOp::Move` (and `move_booking` in `bookings.rs`).
#[allow(clippy::too_many_arguments)]
fn move_booking(
    tx: &Transaction<'_>,
    id: &str,
    office: &str,
    start_ms: i64,
    capacity: u32,
    now_ms: i64,
    mail: &MailRow,
) -> Result<WriteOutcome, WriteError> {
    let row: Option<(String, i64, i64, String, String)> = tx
        .prepare_cached(
            "SELECT office_code, start_ms, seats, status, pool FROM bookings WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
        })
        .map_err(write_err)?;
    let (from_office, from_ms, seats, status, pool) =
        row.ok_or(WriteError::Store(StoreError::NotFound))?;
    let pool = parse_pool(&pool)?;
    let holds_seats = match status.as_str() {
        "active" => true,
        "displaced" => false,
        _ => return Err(WriteError::NotActive),
    };
    if holds_seats && from_office == office && from_ms == start_ms {
        return Err(WriteError::SameSlot);
    }
    // The booking keeps its pool: its share of the new slot.
    let capacity = pool_capacity(tx, office, pool, capacity)?;
    add_seats(tx, office, start_ms, pool, capacity, to_u32(seats))?;
    if holds_seats {
        release_seats(tx, &from_office, from_ms, pool, seats)?;
    }
    tx.prepare_cached(
        "UPDATE bookings SET office_code = ?2, start_ms = ?3, status = 'active', updated_ms = ?4 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, office, start_ms, now_ms]))
    .map_err(write_err)?;
    insert_mail(tx, mail, now_ms)?;
    Ok(WriteOutcome::Moved {
        from_office,
        from_ms,
        to_office: office.to_string(),
        to_ms: start_ms,
        seats: to_u32(seats),
        released: if holds_seats { to_u32(seats) } else { 0 },
    })
}

fn apply_one(tx: &Transaction<'_>, op: &WriteOp) -> Result<WriteOutcome, WriteError> {
    match op {
        WriteOp::Book(b) => book(tx, b),
        WriteOp::Reschedule {
            booking_id,
            start_ms,
            capacity,
            now_ms,
            mail,
            ..
        } => {
            let (office, old_start, seats, pool) = active_booking(tx, booking_id)?;
            if old_start == *start_ms {
                return Err(WriteError::SameSlot);
            }
            add_seats(tx, &office, *start_ms, pool, *capacity, to_u32(seats))?;
            release_seats(tx, &office, old_start, pool, seats)?;
            tx.prepare_cached("UPDATE bookings SET start_ms = ?2, updated_ms = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![booking_id, start_ms, now_ms]))
                .map_err(write_err)?;
            insert_mail(tx, mail, *now_ms)?;
            Ok(WriteOutcome::Rescheduled {
                office,
                from_ms: old_start,
                to_ms: *start_ms,
                seats: to_u32(seats),
                pool,
            })
        }
        WriteOp::Cancel {
            booking_id,
            now_ms,
            mail,
            ..
        } => {
            let row: Option<(String, i64, i64, String, String)> = tx
                .prepare_cached(
                    "SELECT office_code, start_ms, seats, status, pool FROM bookings WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row(params![booking_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                })
                .map_err(write_err)?;
            let (office, start, seats, status, pool) =
                row.ok_or(WriteError::Store(StoreError::NotFound))?;
            let pool = parse_pool(&pool)?;
            // A displaced booking (see re-seating) holds its person but no seat.
            let seats = match status.as_str() {
                "active" => seats,
                "displaced" => 0,
                _ => return Err(WriteError::NotActive),
            };
            tx.prepare_cached(
                "UPDATE bookings SET status = 'cancelled', updated_ms = ?2 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![booking_id, now_ms]))
            .map_err(write_err)?;
            if seats > 0 {
                release_seats(tx, &office, start, pool, seats)?;
            }
            tx.prepare_cached("DELETE FROM person_holds WHERE booking_id = ?1")
                .and_then(|mut s| s.execute(params![booking_id]))
                .map_err(write_err)?;
            insert_mail(tx, mail, *now_ms)?;
            Ok(WriteOutcome::Cancelled {
                office,
                start_ms: start,
                seats: to_u32(seats),
                pool,
            })
        }
        WriteOp::Move {
            actor: _,
            booking_id,
            office,
            start_ms,
            capacity,
            now_ms,
            mail,
        } => move_booking(tx, booking_id, office, *start_ms, *capacity, *now_ms, mail),
    }
}
