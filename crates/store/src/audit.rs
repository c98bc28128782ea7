//! The audit trail's storage: events appended to the hash chain inside the
//! caller's transaction (so an event is committed with the change it records,
//! or not at all), signed checkpoints, and reading both back page by page.
//!
//! Concurrency: appending reads the chain's head and inserts `head + 1` in the
//! same transaction, so appends must queue. On SQLite writers are serialised
//! by the database (`BEGIN IMMEDIATE`, and the group-commit writer's
//! connection), so the head cannot move in between. On PostgreSQL an append
//! first takes a transaction-scoped advisory lock ([`AUDIT_CHAIN_LOCK`]):
//! a second transaction appending at the same time waits at that statement
//! until the first commits or rolls back, then reads the new head (under READ
//! COMMITTED each statement sees what committed before it). Without it, two
//! transactions read the same head and the `seq` primary key refused the
//! second with a `Conflict` that reached clients as a 500 (issue 11 item 3).
//! The lock is held until the commit: take it as late as possible, which is
//! why batches append their events at the end (`Store::apply_batch`).
//! The primary key still stands behind the lock: no gap or fork can be
//! committed, whatever a future caller forgets.

use crate::{Result, Store, StoreError};
use pasaporte_core::audit::{
    Anchor, AuditEvent, AuditRecord, ChainHash, Checkpoint, CheckpointKey, CheckpointSigner,
    SignedCheckpoint, Verdict, Verifier, checkpoint_due,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// Most events read in one page: bounds the memory of a read (events are a
/// few hundred bytes each).
pub const AUDIT_PAGE_EVENTS_MAX: u32 = 10_000;

/// The chain's last event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: ChainHash,
}

/// The key of the PostgreSQL advisory lock that serialises appends to the
/// chain (`pg_advisory_xact_lock`): an arbitrary constant, ASCII
/// "pasaudit" read as a big-endian integer, unlikely to meet another
/// application's lock on a shared server.
pub const AUDIT_CHAIN_LOCK: i64 = 0x7061_7361_7564_6974;

/// On PostgreSQL, waits for and takes the chain's advisory lock for the rest
/// of `tx` (taking it again in the same transaction is free); on SQLite
/// nothing: the transaction already holds the database's write lock or will
/// take it at its first write.
pub async fn lock_audit_chain(tx: &mut Transaction<'static, Any>) -> Result<()> {
    if tx.backend_name() == "PostgreSQL" {
        // `pg_advisory_xact_lock` returns `void`, a type `sqlx::Any` cannot
        // decode: select a constant from it instead.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 AS locked FROM pg_advisory_xact_lock({AUDIT_CHAIN_LOCK})"
        )))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The head, after taking the chain's lock: what an append builds on.
async fn head_for_append(tx: &mut Transaction<'static, Any>) -> Result<Option<AuditHead>> {
    lock_audit_chain(tx).await?;
    head_in(tx).await
}

async fn head_in(tx: &mut Transaction<'static, Any>) -> Result<Option<AuditHead>> {
    let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| {
        let seq: i64 = r.try_get("seq")?;
        let hash: String = r.try_get("hash")?;
        let hash = ChainHash::from_hex(&hash).ok_or_else(|| {
            // Appending to a damaged head would bury the damage under a valid
            // link; refuse and let `verify` name it.
            StoreError::Other(format!("audit event {seq} has a malformed hash"))
        })?;
        Ok(AuditHead { seq, hash })
    })
    .transpose()
}

/// Appends `event` to the chain inside `tx`; returns the new head. The event
/// is durable only if `tx` commits.
pub async fn append_audit_event(
    tx: &mut Transaction<'static, Any>,
    event: &AuditEvent,
) -> Result<AuditHead> {
    let head = head_for_append(tx).await?;
    let record = AuditRecord::next(head.as_ref().map(|h| (h.seq, &h.hash)), event.clone());
    sqlx::query(
        "INSERT INTO audit_events (seq, prev_hash, hash, at_ms, actor, role, action, office, subject, from_state, to_state, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(record.seq)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .bind(event.at_ms)
    .bind(&event.actor)
    .bind(&event.role)
    .bind(&event.action)
    .bind(&event.office)
    .bind(&event.subject)
    .bind(event.from_state.as_deref())
    .bind(event.to_state.as_deref())
    .bind(&event.detail)
    .execute(&mut **tx)
    .await?;
    let hash = ChainHash::from_hex(&record.hash)
        .ok_or_else(|| StoreError::Other("a computed hash did not parse".into()))?;
    Ok(AuditHead {
        seq: record.seq,
        hash,
    })
}

/// Appends `events` in order to the chain inside `tx`, with one read of the
/// head and one insert (a batch of the pipeline's steps). Empty is a no-op.
pub async fn append_audit_events(
    tx: &mut Transaction<'static, Any>,
    events: &[AuditEvent],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut head = head_for_append(tx).await?;
    let mut records = Vec::with_capacity(events.len());
    for e in events {
        let r = AuditRecord::next(head.as_ref().map(|h| (h.seq, &h.hash)), e.clone());
        let hash = ChainHash::from_hex(&r.hash)
            .ok_or_else(|| StoreError::Other("a computed hash did not parse".into()))?;
        head = Some(AuditHead { seq: r.seq, hash });
        records.push(r);
    }
    for chunk in records.chunks(AUDIT_INSERT_ROWS) {
        let mut sql = String::from(
            "INSERT INTO audit_events (seq, prev_hash, hash, at_ms, actor, role, action, office, subject, from_state, to_state, detail) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 12;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(
                &(1..=12)
                    .map(|k| format!("${}", b + k))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            sql.push(')');
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            let e = &r.event;
            q = q
                .bind(r.seq)
                .bind(&r.prev_hash)
                .bind(&r.hash)
                .bind(e.at_ms)
                .bind(&e.actor)
                .bind(&e.role)
                .bind(&e.action)
                .bind(&e.office)
                .bind(&e.subject)
                .bind(e.from_state.as_deref())
                .bind(e.to_state.as_deref())
                .bind(&e.detail);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Audit rows per insert statement: 12 binds each stays far below both
/// databases' bind limits.
const AUDIT_INSERT_ROWS: usize = 100;

/// Appends `event` and, when the interval says so
/// ([`pasaporte_core::audit::CHECKPOINT_EVERY_EVENTS`]), a checkpoint signed
/// with `signer` at `now_ms`, both inside `tx`.
pub async fn append_audit_event_signed(
    tx: &mut Transaction<'static, Any>,
    event: &AuditEvent,
    signer: &CheckpointSigner,
    now_ms: i64,
) -> Result<AuditHead> {
    let head = append_audit_event(tx, event).await?;
    if checkpoint_due(head.seq) {
        append_audit_checkpoint(tx, &signer.sign(head.seq, &head.hash, now_ms)).await?;
    }
    Ok(head)
}

/// Stores a signed checkpoint inside `tx`. One per seq: a second for the same
/// head is a `Conflict`.
pub async fn append_audit_checkpoint(
    tx: &mut Transaction<'static, Any>,
    cp: &SignedCheckpoint,
) -> Result<()> {
    let c = &cp.checkpoint;
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, signed_at_ms, key_id, signature) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(c.seq)
    .bind(&c.hash)
    .bind(c.signed_at_ms)
    .bind(&c.key_id)
    .bind(&cp.signature)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn record_from_row(r: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        event: AuditEvent {
            at_ms: r.try_get("at_ms")?,
            actor: r.try_get("actor")?,
            role: r.try_get("role")?,
            action: r.try_get("action")?,
            office: r.try_get("office")?,
            subject: r.try_get("subject")?,
            from_state: r.try_get("from_state")?,
            to_state: r.try_get("to_state")?,
            detail: r.try_get("detail")?,
        },
    })
}

impl Store {
    /// Up to `limit` (at most [`AUDIT_PAGE_EVENTS_MAX`]) events from
    /// `from_seq` on, in seq order.
    pub async fn audit_events(&self, from_seq: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let limit = limit.min(AUDIT_PAGE_EVENTS_MAX);
        let rows = sqlx::query(
            "SELECT seq, prev_hash, hash, at_ms, actor, role, action, office, subject, from_state, to_state, detail
             FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Every checkpoint, in seq order (one per
    /// [`pasaporte_core::audit::CHECKPOINT_EVERY_EVENTS`] events, and one per
    /// checkpoint interval while the trail grows).
    pub async fn audit_checkpoints(&self) -> Result<Vec<SignedCheckpoint>> {
        self.audit_checkpoints_after(0, i64::MAX).await
    }

    /// The first `limit` checkpoints after event `after_seq`, in seq order
    /// (what an auditor or the anchor file does not hold yet).
    pub async fn audit_checkpoints_after(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<SignedCheckpoint>> {
        let rows = sqlx::query(
            "SELECT seq, hash, signed_at_ms, key_id, signature FROM audit_checkpoints \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SignedCheckpoint {
                    checkpoint: Checkpoint {
                        seq: r.try_get("seq")?,
                        hash: r.try_get("hash")?,
                        signed_at_ms: r.try_get("signed_at_ms")?,
                        key_id: r.try_get("key_id")?,
                    },
                    signature: r.try_get("signature")?,
                })
            })
            .collect()
    }

    /// The chain's last event, if any.
    pub async fn audit_head(&self) -> Result<Option<AuditHead>> {
        let mut tx = self.pool.begin().await?;
        let head = head_in(&mut tx).await?;
        tx.commit().await?;
        Ok(head)
    }

    /// Signs the current head now (on demand: before an export, at
    /// shutdown). `None` when the trail is empty or the head is already
    /// signed.
    pub async fn checkpoint_audit(
        &self,
        signer: &CheckpointSigner,
        now_ms: i64,
    ) -> Result<Option<SignedCheckpoint>> {
        let mut tx = self.pool.begin().await?;
        // Locked like an append, so that two checkpoints of one head do not
        // race to the primary key.
        let Some(head) = head_for_append(&mut tx).await? else {
            return Ok(None);
        };
        let signed = sqlx::query("SELECT seq FROM audit_checkpoints WHERE seq = $1")
            .bind(head.seq)
            .fetch_optional(&mut *tx)
            .await?;
        if signed.is_some() {
            return Ok(None);
        }
        let cp = signer.sign(head.seq, &head.hash, now_ms);
        append_audit_checkpoint(&mut tx, &cp).await?;
        tx.commit().await?;
        Ok(Some(cp))
    }

    /// Verifies the whole trail against `key`, reading it page by page.
    pub async fn verify_audit(&self, key: &CheckpointKey) -> Result<Verdict> {
        self.verify_audit_kept(key, &[], None).await
    }

    /// [`Store::verify_audit`], also against anchors kept outside the
    /// database and, with `freshness = (now_ms, max_ms)`, refusing a trail
    /// whose oldest event no checkpoint covers is older than `max_ms`.
    pub async fn verify_audit_kept(
        &self,
        key: &CheckpointKey,
        anchors: &[Anchor],
        freshness: Option<(i64, i64)>,
    ) -> Result<Verdict> {
        let checkpoints = self.audit_checkpoints().await?;
        let mut verifier = Verifier::new(&checkpoints, key).with_anchors(anchors);
        if let Some((now_ms, max_ms)) = freshness {
            verifier = verifier.with_freshness(now_ms, max_ms);
        }
        let mut from_seq = i64::MIN;
        loop {
            let page = self.audit_events(from_seq, AUDIT_PAGE_EVENTS_MAX).await?;
            for r in &page {
                if let Err(broken) = verifier.push(r) {
                    return Ok(broken);
                }
            }
            match page.last() {
                Some(last) if page.len() == AUDIT_PAGE_EVENTS_MAX as usize => {
                    from_seq = last.seq.saturating_add(1);
                }
                Some(_) | None => return Ok(verifier.finish()),
            }
        }
    }
}
