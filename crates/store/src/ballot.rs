//! Ballot releases and their requests, the waitlist's offers and the
//! reconfirmation of bookings (issue 6).
//!
//! A request is stored as a `bookings` row with no seat (its code, mail,
//! applicants and person holds are a booking's, so one person can hold one
//! request or booking across all offices, by the same primary key) plus a
//! `ballot_requests` row. The draw, an offer, an acceptance and the release
//! of an unconfirmed seat each change seats, statuses, holds and mail in one
//! transaction.

use crate::bookings::{
    MailRow, NewBooking, WriteError, add_seats, classify, insert_booking_rows, insert_mail,
    release_seats,
};
use crate::{
    CacheScope, Result, Store, StoreError, append_audit_event, bump_generations_in, to_u32,
};
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::shares::Pool;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

/// A release as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRow {
    pub id: String,
    pub city: String,
    pub offices: Vec<String>,
    pub first_day: String,
    pub last_day: String,
    pub opened_ms: i64,
    pub close_ms: i64,
    pub commitment: String,
    pub seed_enc: String,
    pub seed: Option<String>,
    pub state: String,
    pub drawn_ms: Option<i64>,
    pub inputs_digest: Option<String>,
    pub created_by: String,
}

/// The three published files of a drawn release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseFiles {
    pub offers: String,
    pub requests: String,
    pub outcome: String,
}

/// A new request: the booking rows (no seat: `start_ms` 0) and the ballot's.
#[derive(Clone, Debug)]
pub struct NewRequest {
    pub booking: NewBooking,
    pub release_id: String,
    pub preferences: String,
    pub person: String,
    pub device_key: String,
    pub phone_key: Option<String>,
}

/// A request as stored, personal fields sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    pub booking_id: String,
    pub code: String,
    pub release_id: String,
    pub status: String,
    pub office: String,
    pub start_ms: i64,
    pub seats: u32,
    pub email_enc: String,
    pub preferences: String,
    pub person: String,
    pub waitlist_position: Option<i64>,
    pub offer_deadline_ms: Option<i64>,
}

/// One allocation of the draw, to write as a booking's seat.
#[derive(Clone, Debug)]
pub struct SeatGrant {
    pub booking_id: String,
    pub office: String,
    pub start_ms: i64,
    /// The slot's capacity for the seat count's CHECK.
    pub capacity: u32,
    pub seats: u32,
    pub mail: MailRow,
}

/// Everything a draw writes, in one transaction.
#[derive(Clone, Debug)]
pub struct DrawWrite {
    pub release_id: String,
    pub seed: String,
    pub inputs_digest: String,
    pub files: ReleaseFiles,
    pub now_ms: i64,
    pub allocations: Vec<SeatGrant>,
    /// `(booking id, mail)` in draw order: the waitlist.
    pub waitlist: Vec<(String, MailRow)>,
    pub audit: AuditEvent,
}

/// A booking due for its reconfirmation reminder or release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueBooking {
    pub id: String,
    pub code: String,
    pub office: String,
    pub start_ms: i64,
    pub seats: u32,
    pub email_enc: String,
}

/// Requests that share a device or a phone: a possible reseller, for a
/// supervisor to look at (never acted on automatically).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalperSignal {
    /// `device` or `phone`.
    pub kind: String,
    /// The first characters of the keyed hash: enough to tell groups apart.
    pub key_prefix: String,
    pub requests: i64,
}

/// Request statuses that still hold their person (and so block a second
/// request or booking).
pub const OPEN_REQUEST_STATUSES: [&str; 4] = ["unverified", "requested", "waitlisted", "offered"];

fn release_from_row(r: &AnyRow) -> Result<ReleaseRow> {
    let offices: String = r.try_get("offices")?;
    Ok(ReleaseRow {
        id: r.try_get("id")?,
        city: r.try_get("city")?,
        offices: offices
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        first_day: r.try_get("first_day")?,
        last_day: r.try_get("last_day")?,
        opened_ms: r.try_get("opened_ms")?,
        close_ms: r.try_get("close_ms")?,
        commitment: r.try_get("commitment")?,
        seed_enc: r.try_get("seed_enc")?,
        seed: r.try_get("seed")?,
        state: r.try_get("state")?,
        drawn_ms: r.try_get("drawn_ms")?,
        inputs_digest: r.try_get("inputs_digest")?,
        created_by: r.try_get("created_by")?,
    })
}

const RELEASE_COLUMNS: &str = "id, city, offices, first_day, last_day, opened_ms, close_ms, commitment, seed_enc, seed, state, drawn_ms, inputs_digest, created_by";

const REQUEST_SELECT: &str =
    "SELECT b.id, b.code, r.release_id, b.status, b.office_code, b.start_ms, b.seats, b.email_enc,
        r.preferences, r.person, r.waitlist_position, r.offer_deadline_ms
 FROM ballot_requests r JOIN bookings b ON b.id = r.booking_id";

fn request_from_row(r: &AnyRow) -> Result<RequestRow> {
    Ok(RequestRow {
        booking_id: r.try_get("id")?,
        code: r.try_get("code")?,
        release_id: r.try_get("release_id")?,
        status: r.try_get("status")?,
        office: r.try_get("office_code")?,
        start_ms: r.try_get("start_ms")?,
        seats: to_u32(r.try_get("seats")?),
        email_enc: r.try_get("email_enc")?,
        preferences: r.try_get("preferences")?,
        person: r.try_get("person")?,
        waitlist_position: r.try_get("waitlist_position")?,
        offer_deadline_ms: r.try_get("offer_deadline_ms")?,
    })
}

fn due_from_row(r: &AnyRow) -> Result<DueBooking> {
    Ok(DueBooking {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        office: r.try_get("office_code")?,
        start_ms: r.try_get("start_ms")?,
        seats: to_u32(r.try_get("seats")?),
        email_enc: r.try_get("email_enc")?,
    })
}

/// Ends a request without a seat: its people may request or book again.
async fn end_request(
    tx: &mut crate::Tx,
    booking_id: &str,
    status: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query("UPDATE bookings SET status = $2, updated_ms = $3 WHERE id = $1")
        .bind(booking_id)
        .bind(status)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM person_holds WHERE booking_id = $1")
        .bind(booking_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn write_error(e: WriteError) -> StoreError {
    match e {
        WriteError::Store(s) => s,
        other => StoreError::Conflict {
            constraint: other.to_string(),
        },
    }
}

impl Store {
    /// Opens a release (its commitment is published from now on).
    pub async fn insert_release(&self, r: &ReleaseRow, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO releases (id, city, offices, first_day, last_day, opened_ms, close_ms, commitment, seed_enc, seed, state, drawn_ms, inputs_digest, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 'open', NULL, NULL, $10)",
        )
        .bind(&r.id)
        .bind(&r.city)
        .bind(r.offices.join(","))
        .bind(&r.first_day)
        .bind(&r.last_day)
        .bind(r.opened_ms)
        .bind(r.close_ms)
        .bind(&r.commitment)
        .bind(&r.seed_enc)
        .bind(&r.created_by)
        .execute(&mut *tx)
        .await?;
        append_audit_event(&mut tx, audit).await?;
        bump_generations_in(&mut tx, [CacheScope::Releases]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every release, newest first.
    pub async fn releases(&self) -> Result<Vec<ReleaseRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RELEASE_COLUMNS} FROM releases ORDER BY opened_ms DESC, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(release_from_row).collect()
    }

    pub async fn release(&self, id: &str) -> Result<ReleaseRow> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        release_from_row(&row)
    }

    /// The published files of a drawn release.
    pub async fn release_files(&self, id: &str) -> Result<Option<ReleaseFiles>> {
        let row = sqlx::query(
            "SELECT offers_txt, requests_txt, outcome_txt FROM releases WHERE id = $1 AND state = 'drawn'",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ReleaseFiles {
            offers: r
                .try_get::<Option<String>, _>("offers_txt")?
                .unwrap_or_default(),
            requests: r
                .try_get::<Option<String>, _>("requests_txt")?
                .unwrap_or_default(),
            outcome: r
                .try_get::<Option<String>, _>("outcome_txt")?
                .unwrap_or_default(),
        }))
    }

    /// Requests per status of a release.
    pub async fn request_counts(&self, release_id: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT b.status, COUNT(*) AS n FROM ballot_requests r JOIN bookings b ON b.id = r.booking_id
             WHERE r.release_id = $1 GROUP BY b.status ORDER BY b.status",
        )
        .bind(release_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    /// Stores a request and queues its proof-of-email mail. A person who
    /// already holds a request or booking anywhere is refused by the
    /// person-holds primary key ([`WriteError::AlreadyBooked`]).
    pub async fn insert_request(&self, n: &NewRequest) -> std::result::Result<(), WriteError> {
        let mut tx = self.pool.begin().await?;
        insert_booking_rows(&mut tx, &n.booking, "unverified").await?;
        sqlx::query(
            "INSERT INTO ballot_requests (booking_id, release_id, preferences, person, verified_ms, device_key, phone_key, waitlist_position, offer_deadline_ms)
             VALUES ($1, $2, $3, $4, NULL, $5, $6, NULL, NULL)",
        )
        .bind(&n.booking.id)
        .bind(&n.release_id)
        .bind(&n.preferences)
        .bind(&n.person)
        .bind(&n.device_key)
        .bind(n.phone_key.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        insert_mail(&mut tx, &n.booking.mail, n.booking.now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A request by its code.
    pub async fn request_by_code(&self, code: &str) -> Result<RequestRow> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{REQUEST_SELECT} WHERE b.code = $1"
        )))
        .bind(code)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        request_from_row(&row)
    }

    /// The requests of a release in one status, in waitlist order then id.
    pub async fn requests_in(&self, release_id: &str, status: &str) -> Result<Vec<RequestRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{REQUEST_SELECT} WHERE r.release_id = $1 AND b.status = $2 ORDER BY r.waitlist_position, b.id"
        )))
        .bind(release_id)
        .bind(status)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// The proof of email: `unverified` → `requested`, while the release is
    /// open. Whether it changed (false: already verified, or too late).
    pub async fn verify_request(&self, booking_id: &str, now_ms: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE bookings SET status = 'requested', updated_ms = $2 WHERE id = $1 AND status = 'unverified'
               AND EXISTS (SELECT 1 FROM ballot_requests r JOIN releases l ON l.id = r.release_id
                           WHERE r.booking_id = $1 AND l.state = 'open' AND l.close_ms > $2)",
        )
        .bind(booking_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            sqlx::query("UPDATE ballot_requests SET verified_ms = $2 WHERE booking_id = $1")
                .bind(booking_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// The citizen withdraws a request that has no seat yet: its people may
    /// book or request again. Whether it changed.
    pub async fn withdraw_request(&self, booking_id: &str, now_ms: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row =
            sqlx::query("SELECT status, office_code, start_ms, seats FROM bookings WHERE id = $1")
                .bind(booking_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
        let status: String = row.try_get("status")?;
        if !OPEN_REQUEST_STATUSES.contains(&status.as_str()) {
            return Ok(false);
        }
        // A waitlist may have emptied: the release's coverage may change.
        let mut scopes = vec![CacheScope::Releases];
        if status == "offered" {
            let office: String = row.try_get("office_code")?;
            release_seats(
                &mut tx,
                &office,
                row.try_get("start_ms")?,
                Pool::Online,
                row.try_get("seats")?,
            )
            .await
            .map_err(write_error)?;
            scopes.push(CacheScope::Seats(office));
        }
        end_request(&mut tx, booking_id, "withdrawn", now_ms).await?;
        bump_generations_in(&mut tx, scopes).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Writes a draw: seats for the allocated (their requests become
    /// active bookings), waitlist positions for the others, unverified
    /// requests expired, the release drawn with its published files. All or
    /// nothing; a release is drawn once (a second call finds it drawn and
    /// returns [`StoreError::Conflict`]).
    pub async fn apply_draw(&self, d: &DrawWrite) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let drawn = sqlx::query(
            "UPDATE releases SET state = 'drawn', seed = $2, drawn_ms = $3, inputs_digest = $4, offers_txt = $5, requests_txt = $6, outcome_txt = $7
             WHERE id = $1 AND state = 'open'",
        )
        .bind(&d.release_id)
        .bind(&d.seed)
        .bind(d.now_ms)
        .bind(&d.inputs_digest)
        .bind(&d.files.offers)
        .bind(&d.files.requests)
        .bind(&d.files.outcome)
        .execute(&mut *tx)
        .await?;
        if drawn.rows_affected() != 1 {
            return Err(StoreError::Conflict {
                constraint: "release_already_drawn".into(),
            });
        }
        for a in &d.allocations {
            add_seats(
                &mut tx,
                &a.office,
                a.start_ms,
                Pool::Online,
                a.capacity,
                a.seats,
            )
            .await
            .map_err(write_error)?;
            let seated = sqlx::query(
                "UPDATE bookings SET status = 'active', office_code = $2, start_ms = $3, updated_ms = $4
                 WHERE id = $1 AND status = 'requested'",
            )
            .bind(&a.booking_id)
            .bind(&a.office)
            .bind(a.start_ms)
            .bind(d.now_ms)
            .execute(&mut *tx)
            .await?;
            if seated.rows_affected() != 1 {
                return Err(StoreError::Conflict {
                    constraint: "request_changed_during_draw".into(),
                });
            }
            insert_mail(&mut tx, &a.mail, d.now_ms).await?;
        }
        for (position, (id, mail)) in d.waitlist.iter().enumerate() {
            sqlx::query(
                "UPDATE bookings SET status = 'waitlisted', updated_ms = $2 WHERE id = $1 AND status = 'requested'",
            )
            .bind(id)
            .bind(d.now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE ballot_requests SET waitlist_position = $2 WHERE booking_id = $1")
                .bind(id)
                .bind(i64::try_from(position).unwrap_or(i64::MAX) + 1)
                .execute(&mut *tx)
                .await?;
            insert_mail(&mut tx, mail, d.now_ms).await?;
        }
        let unverified = sqlx::query(
            "SELECT b.id FROM ballot_requests r JOIN bookings b ON b.id = r.booking_id
             WHERE r.release_id = $1 AND b.status = 'unverified'",
        )
        .bind(&d.release_id)
        .fetch_all(&mut *tx)
        .await?;
        for r in unverified {
            let id: String = r.try_get("id")?;
            end_request(&mut tx, &id, "expired", d.now_ms).await?;
        }
        append_audit_event(&mut tx, &d.audit).await?;
        let seated = d
            .allocations
            .iter()
            .map(|a| CacheScope::Seats(a.office.clone()));
        bump_generations_in(&mut tx, seated.chain(std::iter::once(CacheScope::Releases))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Holds a freed seat for the first waitlisted request: the seats are
    /// taken now (nobody else can book them) until the citizen answers or
    /// the deadline passes. Whether it was offered (false: the request left
    /// the waitlist meanwhile).
    pub async fn offer_seat(
        &self,
        grant: &SeatGrant,
        deadline_ms: i64,
        now_ms: i64,
    ) -> std::result::Result<bool, WriteError> {
        let mut tx = self.pool.begin().await?;
        add_seats(
            &mut tx,
            &grant.office,
            grant.start_ms,
            Pool::Online,
            grant.capacity,
            grant.seats,
        )
        .await?;
        let offered = sqlx::query(
            "UPDATE bookings SET status = 'offered', office_code = $2, start_ms = $3, updated_ms = $4
             WHERE id = $1 AND status = 'waitlisted'",
        )
        .bind(&grant.booking_id)
        .bind(&grant.office)
        .bind(grant.start_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if offered.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE ballot_requests SET offer_deadline_ms = $2 WHERE booking_id = $1")
            .bind(&grant.booking_id)
            .bind(deadline_ms)
            .execute(&mut *tx)
            .await?;
        insert_mail(&mut tx, &grant.mail, now_ms).await?;
        bump_generations_in(&mut tx, [CacheScope::Seats(grant.office.clone())]).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The citizen takes the offered seat before its deadline: the request
    /// becomes a confirmed booking. Whether it changed.
    pub async fn accept_offer(
        &self,
        booking_id: &str,
        now_ms: i64,
        mail: &MailRow,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let accepted = sqlx::query(
            "UPDATE bookings SET status = 'active', confirmed_ms = $2, updated_ms = $2
             WHERE id = $1 AND status = 'offered'
               AND EXISTS (SELECT 1 FROM ballot_requests r WHERE r.booking_id = $1 AND r.offer_deadline_ms > $2)",
        )
        .bind(booking_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if accepted {
            insert_mail(&mut tx, mail, now_ms).await?;
            // One fewer waiting: the release's coverage may change.
            bump_generations_in(&mut tx, [CacheScope::Releases]).await?;
        }
        tx.commit().await?;
        Ok(accepted)
    }

    /// Offers whose deadline passed: their seats go back (to the next person
    /// on the waitlist), their requests end. Returns the office and start of
    /// each seat given back.
    pub async fn expire_offers(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT b.id, b.office_code, b.start_ms, b.seats FROM bookings b JOIN ballot_requests r ON r.booking_id = b.id
             WHERE b.status = 'offered' AND r.offer_deadline_ms <= $1 ORDER BY r.offer_deadline_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id: String = r.try_get("id")?;
            let office: String = r.try_get("office_code")?;
            let start: i64 = r.try_get("start_ms")?;
            let mut tx = self.pool.begin().await?;
            let ended = sqlx::query(
                "UPDATE bookings SET status = 'expired', updated_ms = $2 WHERE id = $1 AND status = 'offered'",
            )
            .bind(&id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if ended.rows_affected() == 1 {
                release_seats(&mut tx, &office, start, Pool::Online, r.try_get("seats")?)
                    .await
                    .map_err(write_error)?;
                end_request(&mut tx, &id, "expired", now_ms).await?;
                bump_generations_in(
                    &mut tx,
                    [CacheScope::Releases, CacheScope::Seats(office.clone())],
                )
                .await?;
                out.push((office, start));
            }
            tx.commit().await?;
        }
        Ok(out)
    }

    /// Active, unconfirmed bookings whose appointment is within
    /// `window_ms` and that were made before that window opened (a booking
    /// made inside it counts as confirmed), not yet reminded.
    pub async fn bookings_to_remind(
        &self,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueBooking>> {
        let rows = sqlx::query(
            "SELECT id, code, office_code, start_ms, seats, email_enc FROM bookings
             WHERE status = 'active' AND start_ms > $1 AND start_ms <= $1 + $2
               AND confirmed_ms IS NULL AND reminded_ms IS NULL AND created_ms < start_ms - $2
             ORDER BY start_ms LIMIT $3",
        )
        .bind(now_ms)
        .bind(window_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(due_from_row).collect()
    }

    /// Records that the reminder went, with its mail.
    pub async fn mark_reminded(&self, id: &str, now_ms: i64, mail: &MailRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let marked = sqlx::query(
            "UPDATE bookings SET reminded_ms = $2 WHERE id = $1 AND reminded_ms IS NULL AND status = 'active'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() == 1 {
            insert_mail(&mut tx, mail, now_ms).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The citizen confirms they will come. Whether it changed.
    pub async fn confirm_booking(&self, id: &str, now_ms: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE bookings SET confirmed_ms = $2, updated_ms = $2 WHERE id = $1 AND status = 'active' AND confirmed_ms IS NULL",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Active bookings that needed a reconfirmation, did not get it, and
    /// whose appointment is within `deadline_ms`: due for release.
    pub async fn unconfirmed_due(
        &self,
        now_ms: i64,
        window_ms: i64,
        deadline_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueBooking>> {
        let rows = sqlx::query(
            "SELECT id, code, office_code, start_ms, seats, email_enc FROM bookings
             WHERE status = 'active' AND start_ms > $1 AND start_ms <= $1 + $3
               AND confirmed_ms IS NULL AND reminded_ms IS NOT NULL AND created_ms < start_ms - $2
             ORDER BY start_ms LIMIT $4",
        )
        .bind(now_ms)
        .bind(window_ms)
        .bind(deadline_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(due_from_row).collect()
    }

    /// Releases an unconfirmed booking's seats (status `unconfirmed`; its
    /// people may book again) and queues the mail that says so. Whether it
    /// changed (false: confirmed or cancelled meanwhile).
    pub async fn release_unconfirmed(
        &self,
        b: &DueBooking,
        now_ms: i64,
        mail: &MailRow,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let released = sqlx::query(
            "UPDATE bookings SET status = 'unconfirmed', updated_ms = $2 WHERE id = $1 AND status = 'active' AND confirmed_ms IS NULL",
        )
        .bind(&b.id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if released.rows_affected() != 1 {
            return Ok(false);
        }
        release_seats(
            &mut tx,
            &b.office,
            b.start_ms,
            Pool::Online,
            i64::from(b.seats),
        )
        .await
        .map_err(write_error)?;
        sqlx::query("DELETE FROM person_holds WHERE booking_id = $1")
            .bind(&b.id)
            .execute(&mut *tx)
            .await?;
        insert_mail(&mut tx, mail, now_ms).await?;
        bump_generations_in(&mut tx, [CacheScope::Seats(b.office.clone())]).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Unverified requests older than `before_ms`: expired, their people
    /// free again. How many.
    pub async fn expire_unverified(&self, before_ms: i64, now_ms: i64) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT b.id FROM bookings b JOIN ballot_requests r ON r.booking_id = b.id
             WHERE b.status = 'unverified' AND b.created_ms < $1",
        )
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut tx = self.pool.begin().await?;
        for r in &rows {
            let id: String = r.try_get("id")?;
            end_request(&mut tx, &id, "expired", now_ms).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Groups of at least `threshold` requests of a release that share a
    /// device or a phone.
    pub async fn scalper_signals(
        &self,
        release_id: &str,
        threshold: i64,
    ) -> Result<Vec<ScalperSignal>> {
        let mut out = Vec::new();
        for (kind, column) in [("device", "device_key"), ("phone", "phone_key")] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {column} AS k, COUNT(*) AS n FROM ballot_requests
                 WHERE release_id = $1 AND {column} IS NOT NULL
                 GROUP BY {column} HAVING COUNT(*) >= $2 ORDER BY COUNT(*) DESC"
            )))
            .bind(release_id)
            .bind(threshold)
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let k: String = r.try_get("k")?;
                out.push(ScalperSignal {
                    kind: kind.into(),
                    key_prefix: k.chars().take(12).collect(),
                    requests: r.try_get("n")?,
                });
            }
        }
        Ok(out)
    }

    /// Demand per office and day: the people of requests still waiting for
    /// a seat (in the draw, on a waitlist, offered) that name the office and
    /// day among their preferences, by `(office, YYYY-MM-DD)`.
    pub async fn ballot_demand(&self) -> Result<BTreeMap<(String, String), u32>> {
        let rows = sqlx::query(
            "SELECT r.preferences, b.seats FROM ballot_requests r JOIN bookings b ON b.id = r.booking_id
             WHERE b.status IN ('requested', 'waitlisted', 'offered')",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let prefs: String = r.try_get("preferences")?;
            let seats = to_u32(r.try_get("seats")?);
            for p in prefs.split('|') {
                if let Some((office, day)) = p.strip_prefix("slot:").and_then(|x| x.split_once(':'))
                {
                    *out.entry((office.to_string(), day.to_string()))
                        .or_insert(0) += seats;
                }
            }
        }
        Ok(out)
    }
}
