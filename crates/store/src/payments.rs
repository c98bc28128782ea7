//! Payments' storage: one payment reference per application, the gateway's
//! callback events (each applied once), refunds, fee waivers, and the
//! reconciliation report.
//!
//! Writes take the caller's transaction, like [`crate::append_audit_event`],
//! so that the payment change commits together with the application's
//! transition and its audit event, or not at all. Status changes are
//! conditional updates (`... WHERE status = 'created'`): the database, not a
//! read beforehand, decides that a reference is paid once.
//!
//! Layout: row types; the write functions on a transaction; the reads on
//! [`Store`].

use crate::{Result, Store, StoreError};
use pasaporte_core::fees::{PaymentEventKind, PaymentStatus};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// Most refunds handed to the refund worker in one pass: it calls the gateway
/// once per row, so a pass stays short.
pub const PENDING_REFUNDS_MAX: u32 = 200;
/// Most waiver requests listed at once: a supervisor's queue, not an archive.
pub const WAIVERS_LISTED_MAX: u32 = 500;
/// Most references in one reconciliation report (a month of the busiest
/// office is about 60,000); the totals always cover the whole window.
pub const RECONCILIATION_ROWS_MAX: u32 = 100_000;
/// Longest waiver reason kept: a sentence or two of staff text.
pub const WAIVER_REASON_CHARS_MAX: usize = 500;

/// The transaction the payment writes take: `store.pool().begin().await?`.
/// An alias so that crates without a direct sqlx dependency (the server) can
/// name it; it is the same type `append_audit_event` takes.
pub type PaymentTx = Transaction<'static, Any>;

/// A reference to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReference {
    pub reference: String,
    pub application_id: String,
    pub office_code: String,
    pub amount_minor: i64,
    /// ISO 4217 code (`COP`, `USD`, `EUR`).
    pub currency: String,
    pub created_ms: i64,
}

/// A payment reference as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentReference {
    pub reference: String,
    pub application_id: String,
    pub office_code: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub created_ms: i64,
    pub paid_ms: Option<i64>,
    pub refunded_ms: Option<i64>,
}

/// A verified callback event, to apply once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentEventRow {
    pub event_id: String,
    pub reference: String,
    pub kind: PaymentEventKind,
    pub amount_minor: i64,
    pub received_ms: i64,
}

/// A waiver to request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaiverRequest {
    pub application_id: String,
    pub office_code: String,
    /// Staff text, without personal data; at most [`WAIVER_REASON_CHARS_MAX`].
    pub reason: String,
    pub requested_by: String,
    pub requested_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaiverStatus {
    Requested,
    Approved,
    Refused,
}

impl WaiverStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WaiverStatus::Requested => "requested",
            WaiverStatus::Approved => "approved",
            WaiverStatus::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            WaiverStatus::Requested,
            WaiverStatus::Approved,
            WaiverStatus::Refused,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
    }
}

/// A waiver as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaiverRow {
    pub application_id: String,
    pub office_code: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_ms: i64,
    pub decided_by: Option<String>,
    pub decided_ms: Option<i64>,
    pub status: WaiverStatus,
}

/// One reference in a reconciliation report: what was asked, and what the
/// gateway's events say moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconciliationRow {
    pub reference: String,
    pub application_id: String,
    pub office_code: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub created_ms: i64,
    /// Sum of the reference's `payment.confirmed` events.
    pub paid_minor: i64,
    /// Sum of the reference's `refund.completed` events.
    pub refunded_minor: i64,
    pub waived: bool,
}

/// Totals of one currency over a report's whole window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrencyTotals {
    pub currency: String,
    pub references: i64,
    /// Amounts asked for, waived references excluded.
    pub expected_minor: i64,
    pub paid_minor: i64,
    pub refunded_minor: i64,
    pub waived_minor: i64,
}

/// The references created in a window, and totals per currency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// In creation order, at most [`RECONCILIATION_ROWS_MAX`].
    pub rows: Vec<ReconciliationRow>,
    /// More references than `rows` holds fall in the window.
    pub truncated: bool,
    /// Ordered by currency code.
    pub totals: Vec<CurrencyTotals>,
}

fn status_conflict() -> StoreError {
    StoreError::Conflict {
        constraint: "payment_references.status".into(),
    }
}

/// Inserts a reference in `created`. A second reference for the same
/// application (or a reused reference) is a `Conflict`.
pub async fn insert_payment_reference(
    tx: &mut Transaction<'static, Any>,
    r: &NewReference,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO payment_references (reference, application_id, office_code, amount_minor, currency, status, created_ms)
         VALUES ($1, $2, $3, $4, $5, 'created', $6)",
    )
    .bind(&r.reference)
    .bind(&r.application_id)
    .bind(&r.office_code)
    .bind(r.amount_minor)
    .bind(&r.currency)
    .bind(r.created_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a callback event; `false` when its `event_id` was already recorded
/// (a replay: nothing changes, and the caller applies nothing). The insert
/// itself decides (`ON CONFLICT DO NOTHING` on the primary key), so two
/// deliveries racing each other cannot both see `true`.
pub async fn record_payment_event(
    tx: &mut Transaction<'static, Any>,
    e: &PaymentEventRow,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO payment_events (event_id, reference, kind, amount_minor, received_ms)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&e.event_id)
    .bind(&e.reference)
    .bind(e.kind.as_str())
    .bind(e.amount_minor)
    .bind(e.received_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves `reference` from `from` to `to`, setting `time_column` to `at_ms`
/// when given (the time of the other changes is in their audit events); `NotFound` or a `Conflict` on the status otherwise.
async fn transition(
    tx: &mut Transaction<'static, Any>,
    reference: &str,
    from: PaymentStatus,
    to: PaymentStatus,
    time_column: Option<&'static str>,
    at_ms: i64,
) -> Result<()> {
    let done = match time_column {
        Some(col) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE payment_references SET status = $1, {col} = $2 WHERE reference = $3 AND status = $4"
            )))
            .bind(to.as_str())
            .bind(at_ms)
            .bind(reference)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?
        }
        None => {
            sqlx::query(
                "UPDATE payment_references SET status = $1 WHERE reference = $2 AND status = $3",
            )
            .bind(to.as_str())
            .bind(reference)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?
        }
    };
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let exists = sqlx::query("SELECT 1 FROM payment_references WHERE reference = $1")
        .bind(reference)
        .fetch_optional(&mut **tx)
        .await?;
    Err(match exists {
        Some(_) => status_conflict(),
        None => StoreError::NotFound,
    })
}

/// `created` → `paid`. Refused (`Conflict`) in any other status: a reference
/// is paid once.
pub async fn mark_reference_paid(
    tx: &mut Transaction<'static, Any>,
    reference: &str,
    at_ms: i64,
) -> Result<()> {
    transition(
        tx,
        reference,
        PaymentStatus::Created,
        PaymentStatus::Paid,
        Some("paid_ms"),
        at_ms,
    )
    .await
}

/// `paid` → `refund_pending`: a refund was decided; the refund worker finds
/// it in [`Store::pending_refunds`].
pub async fn mark_refund_pending(
    tx: &mut Transaction<'static, Any>,
    reference: &str,
) -> Result<()> {
    transition(
        tx,
        reference,
        PaymentStatus::Paid,
        PaymentStatus::RefundPending,
        None,
        0,
    )
    .await
}

/// `refund_pending` → `refunded`, when the gateway confirms the refund.
pub async fn mark_refunded(
    tx: &mut Transaction<'static, Any>,
    reference: &str,
    at_ms: i64,
) -> Result<()> {
    transition(
        tx,
        reference,
        PaymentStatus::RefundPending,
        PaymentStatus::Refunded,
        Some("refunded_ms"),
        at_ms,
    )
    .await
}

/// `created` → `waived`, after a waiver of the application was approved.
pub async fn mark_reference_waived(
    tx: &mut Transaction<'static, Any>,
    reference: &str,
) -> Result<()> {
    transition(
        tx,
        reference,
        PaymentStatus::Created,
        PaymentStatus::Waived,
        None,
        0,
    )
    .await
}

/// Requests a waiver for an application. A request while another is pending
/// or after one was approved is a `Conflict`; after a refusal staff may ask
/// again (the new request replaces the refused one).
pub async fn request_waiver(tx: &mut Transaction<'static, Any>, w: &WaiverRequest) -> Result<()> {
    if w.reason.trim().is_empty() || w.reason.chars().count() > WAIVER_REASON_CHARS_MAX {
        return Err(StoreError::Conflict {
            constraint: "waivers.reason".into(),
        });
    }
    let done = sqlx::query(
        "INSERT INTO waivers (application_id, office_code, reason, requested_by, requested_ms, status)
         VALUES ($1, $2, $3, $4, $5, 'requested')
         ON CONFLICT (application_id) DO UPDATE SET
             office_code = excluded.office_code, reason = excluded.reason,
             requested_by = excluded.requested_by, requested_ms = excluded.requested_ms,
             decided_by = NULL, decided_ms = NULL, status = 'requested'
         WHERE waivers.status = 'refused'",
    )
    .bind(&w.application_id)
    .bind(&w.office_code)
    .bind(&w.reason)
    .bind(&w.requested_by)
    .bind(w.requested_ms)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            constraint: "waivers.status".into(),
        })
    }
}

/// Approves or refuses a requested waiver. `NotFound` without a request,
/// `Conflict` when it was already decided. Approving does not touch the
/// payment reference: the use case calls [`mark_reference_waived`] too (or
/// [`mark_refund_pending`] if it was already paid), in the same transaction.
pub async fn decide_waiver(
    tx: &mut Transaction<'static, Any>,
    application_id: &str,
    approve: bool,
    decided_by: &str,
    decided_ms: i64,
) -> Result<()> {
    let to = if approve {
        WaiverStatus::Approved
    } else {
        WaiverStatus::Refused
    };
    let done = sqlx::query(
        "UPDATE waivers SET status = $1, decided_by = $2, decided_ms = $3
         WHERE application_id = $4 AND status = 'requested'",
    )
    .bind(to.as_str())
    .bind(decided_by)
    .bind(decided_ms)
    .bind(application_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let exists = sqlx::query("SELECT 1 FROM waivers WHERE application_id = $1")
        .bind(application_id)
        .fetch_optional(&mut **tx)
        .await?;
    Err(match exists {
        Some(_) => StoreError::Conflict {
            constraint: "waivers.status".into(),
        },
        None => StoreError::NotFound,
    })
}

const REFERENCE_COLUMNS: &str = "reference, application_id, office_code, amount_minor, currency, status, created_ms, paid_ms, refunded_ms";

fn bad_value(what: &str, value: &str) -> StoreError {
    StoreError::Other(format!("unknown {what} '{value}' in the database"))
}

fn reference_from_row(r: &AnyRow) -> Result<PaymentReference> {
    let status: String = r.try_get("status")?;
    Ok(PaymentReference {
        reference: r.try_get("reference")?,
        application_id: r.try_get("application_id")?,
        office_code: r.try_get("office_code")?,
        amount_minor: r.try_get("amount_minor")?,
        currency: r.try_get("currency")?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| bad_value("payment status", &status))?,
        created_ms: r.try_get("created_ms")?,
        paid_ms: r.try_get("paid_ms")?,
        refunded_ms: r.try_get("refunded_ms")?,
    })
}

fn waiver_from_row(r: &AnyRow) -> Result<WaiverRow> {
    let status: String = r.try_get("status")?;
    Ok(WaiverRow {
        application_id: r.try_get("application_id")?,
        office_code: r.try_get("office_code")?,
        reason: r.try_get("reason")?,
        requested_by: r.try_get("requested_by")?,
        requested_ms: r.try_get("requested_ms")?,
        decided_by: r.try_get("decided_by")?,
        decided_ms: r.try_get("decided_ms")?,
        status: WaiverStatus::parse(&status).ok_or_else(|| bad_value("waiver status", &status))?,
    })
}

/// The application's payment reference, read inside the caller's transaction.
pub async fn payment_reference_of_in(
    tx: &mut Transaction<'static, Any>,
    application_id: &str,
) -> Result<Option<PaymentReference>> {
    let reference =
        sqlx::query("SELECT reference FROM payment_references WHERE application_id = $1")
            .bind(application_id)
            .fetch_optional(&mut **tx)
            .await?;
    match reference {
        Some(r) => {
            let reference: String = r.try_get("reference")?;
            Ok(Some(payment_reference_in(tx, &reference).await?))
        }
        None => Ok(None),
    }
}

impl Store {
    /// `(application id, office)` of verified applications without a payment
    /// reference, oldest first.
    pub async fn verified_without_reference(
        &self,
        limit: u32,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>> {
        // `next_check_ms` is the payment worker's put-off (a missing fee):
        // those waiting out theirs take no place in the batch.
        let rows = sqlx::query(
            "SELECT a.id, a.office_code FROM applications a
             LEFT JOIN payment_references r ON r.application_id = a.id
             WHERE a.state = 'registry_verified' AND r.reference IS NULL
               AND (a.next_check_ms IS NULL OR a.next_check_ms <= $2)
             ORDER BY a.state_since_ms LIMIT $1",
        )
        .bind(i64::from(limit))
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("office_code")?)))
            .collect()
    }
}

impl Store {
    /// Puts off the payment worker's next look at a verified application
    /// (its fee is missing) until `next_ms`.
    pub async fn put_off_payment_reference(&self, id: &str, next_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE applications SET next_check_ms = $2 WHERE id = $1 AND state = 'registry_verified'",
        )
        .bind(id)
        .bind(next_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Verified applications of `office` (None: all) still without a payment
    /// reference, put off or not: `(id, office, passport type)`, oldest first.
    pub async fn waiting_for_reference(
        &self,
        office: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT a.id, a.office_code, a.passport_type FROM applications a
             LEFT JOIN payment_references r ON r.application_id = a.id
             WHERE a.state = 'registry_verified' AND r.reference IS NULL
               AND ($1 = '' OR a.office_code = $1)
             ORDER BY a.state_since_ms LIMIT $2",
        )
        .bind(office.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("office_code")?,
                    r.try_get("passport_type")?,
                ))
            })
            .collect()
    }

    /// The application's payment reference, if one was issued.
    pub async fn payment_reference_of(
        &self,
        application_id: &str,
    ) -> Result<Option<PaymentReference>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REFERENCE_COLUMNS} FROM payment_references WHERE application_id = $1"
        )))
        .bind(application_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(reference_from_row).transpose()
    }

    /// A reference by its code; `NotFound` if unknown.
    pub async fn payment_reference(&self, reference: &str) -> Result<PaymentReference> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REFERENCE_COLUMNS} FROM payment_references WHERE reference = $1"
        )))
        .bind(reference)
        .fetch_one(&self.pool)
        .await?;
        reference_from_row(&row)
    }

    /// Up to `limit` (at most [`PENDING_REFUNDS_MAX`]) references waiting for
    /// a refund, oldest first.
    pub async fn pending_refunds(&self, limit: u32) -> Result<Vec<PaymentReference>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REFERENCE_COLUMNS} FROM payment_references WHERE status = 'refund_pending'
             ORDER BY created_ms, reference LIMIT $1"
        )))
        .bind(i64::from(limit.min(PENDING_REFUNDS_MAX)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(reference_from_row).collect()
    }

    /// Waivers waiting for a decision, oldest first, of one office or all
    /// (at most [`WAIVERS_LISTED_MAX`]).
    pub async fn waivers_requested(&self, office: Option<&str>) -> Result<Vec<WaiverRow>> {
        let rows = sqlx::query(
            "SELECT application_id, office_code, reason, requested_by, requested_ms, decided_by, decided_ms, status
             FROM waivers WHERE status = 'requested' AND ($1 = '' OR office_code = $1)
             ORDER BY requested_ms, application_id LIMIT $2",
        )
        .bind(office.unwrap_or(""))
        .bind(i64::from(WAIVERS_LISTED_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(waiver_from_row).collect()
    }

    /// The waiver of an application, if any was requested.
    pub async fn waiver_of(&self, application_id: &str) -> Result<Option<WaiverRow>> {
        let row = sqlx::query(
            "SELECT application_id, office_code, reason, requested_by, requested_ms, decided_by, decided_ms, status
             FROM waivers WHERE application_id = $1",
        )
        .bind(application_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(waiver_from_row).transpose()
    }

    /// The references created in `[from_ms, to_ms)` (of one office or all),
    /// with what the gateway's events say was paid and refunded, and totals
    /// per currency over the whole window.
    pub async fn reconciliation(
        &self,
        office: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Reconciliation> {
        // SUM over BIGINT is NUMERIC on PostgreSQL, which sqlx::Any cannot
        // read: every sum is cast back to BIGINT.
        let per_reference = "SELECT r.reference, r.application_id, r.office_code, r.amount_minor, r.currency, r.status, r.created_ms,
                    CAST(COALESCE(SUM(CASE WHEN e.kind = 'payment.confirmed' THEN e.amount_minor ELSE 0 END), 0) AS BIGINT) AS paid_minor,
                    CAST(COALESCE(SUM(CASE WHEN e.kind = 'refund.completed' THEN e.amount_minor ELSE 0 END), 0) AS BIGINT) AS refunded_minor
             FROM payment_references r LEFT JOIN payment_events e ON e.reference = r.reference
             WHERE r.created_ms >= $1 AND r.created_ms < $2 AND ($3 = '' OR r.office_code = $3)
             GROUP BY r.reference, r.application_id, r.office_code, r.amount_minor, r.currency, r.status, r.created_ms";
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{per_reference} ORDER BY r.created_ms, r.reference LIMIT $4"
        )))
        .bind(from_ms)
        .bind(to_ms)
        .bind(office.unwrap_or(""))
        .bind(i64::from(RECONCILIATION_ROWS_MAX) + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Reconciliation::default();
        for r in &rows {
            if out.rows.len() == RECONCILIATION_ROWS_MAX as usize {
                out.truncated = true;
                break;
            }
            let status: String = r.try_get("status")?;
            let status = PaymentStatus::parse(&status)
                .ok_or_else(|| bad_value("payment status", &status))?;
            out.rows.push(ReconciliationRow {
                reference: r.try_get("reference")?,
                application_id: r.try_get("application_id")?,
                office_code: r.try_get("office_code")?,
                amount_minor: r.try_get("amount_minor")?,
                currency: r.try_get("currency")?,
                status,
                created_ms: r.try_get("created_ms")?,
                paid_minor: r.try_get("paid_minor")?,
                refunded_minor: r.try_get("refunded_minor")?,
                waived: status == PaymentStatus::Waived,
            });
        }
        let totals = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT currency, COUNT(*) AS refs,
                    CAST(COALESCE(SUM(CASE WHEN status = 'waived' THEN 0 ELSE amount_minor END), 0) AS BIGINT) AS expected_minor,
                    CAST(COALESCE(SUM(paid_minor), 0) AS BIGINT) AS paid_minor,
                    CAST(COALESCE(SUM(refunded_minor), 0) AS BIGINT) AS refunded_minor,
                    CAST(COALESCE(SUM(CASE WHEN status = 'waived' THEN amount_minor ELSE 0 END), 0) AS BIGINT) AS waived_minor
             FROM ({per_reference}) per_reference GROUP BY currency ORDER BY currency"
        )))
        .bind(from_ms)
        .bind(to_ms)
        .bind(office.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        for t in &totals {
            out.totals.push(CurrencyTotals {
                currency: t.try_get("currency")?,
                references: t.try_get("refs")?,
                expected_minor: t.try_get("expected_minor")?,
                paid_minor: t.try_get("paid_minor")?,
                refunded_minor: t.try_get("refunded_minor")?,
                waived_minor: t.try_get("waived_minor")?,
            });
        }
        Ok(out)
    }
}

/// A reference read inside `tx` (the callback route reads it with the event
/// it applies); `NotFound` if unknown.
pub async fn payment_reference_in(
    tx: &mut Transaction<'static, Any>,
    reference: &str,
) -> Result<PaymentReference> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REFERENCE_COLUMNS} FROM payment_references WHERE reference = $1"
    )))
    .bind(reference)
    .fetch_one(&mut **tx)
    .await?;
    reference_from_row(&row)
}
