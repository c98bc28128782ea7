//! The mail outbox: rows written with the change they tell about, sent later by
//! a worker, retried with back-off until the mail server takes them.

use crate::{Result, Store, to_u32};
use sqlx::Row;

/// A queued mail, sealed as stored.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    pub id: String,
    pub attempts: u32,
    pub recipient_enc: String,
    pub subject: String,
    pub body_enc: String,
    pub ics_enc: Option<String>,
}

/// Counts for the operators' view of the outbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub waiting: i64,
    pub sent: i64,
    /// Waiting mails that failed at least once.
    pub failing: i64,
}

impl Store {
    /// Up to `limit` mails due at `now_ms`, oldest first.
    pub async fn due_mail(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(
            "SELECT id, attempts, recipient_enc, subject, body_enc, ics_enc FROM outbox
             WHERE sent_ms IS NULL AND next_attempt_ms <= $1 ORDER BY next_attempt_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get("id")?,
                    attempts: to_u32(r.try_get("attempts")?),
                    recipient_enc: r.try_get("recipient_enc")?,
                    subject: r.try_get("subject")?,
                    body_enc: r.try_get("body_enc")?,
                    ics_enc: r.try_get("ics_enc")?,
                })
            })
            .collect()
    }

    pub async fn mark_mail_sent(&self, id: &str, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE outbox SET sent_ms = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1")
            .bind(id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt; `error` must carry no personal data.
    pub async fn mark_mail_failed(
        &self,
        id: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = $2, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(next_attempt_ms)
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats> {
        let r = sqlx::query(
            "SELECT
               CAST(COALESCE(SUM(CASE WHEN sent_ms IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS waiting,
               CAST(COALESCE(SUM(CASE WHEN sent_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS sent,
               CAST(COALESCE(SUM(CASE WHEN sent_ms IS NULL AND attempts > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS failing
             FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats {
            waiting: r.try_get("waiting")?,
            sent: r.try_get("sent")?,
            failing: r.try_get("failing")?,
        })
    }
}
