//! The deployment's keys as the database knows them: their check values,
//! never the keys (see `deployment_keys` in the migrations).

use crate::{Result, Store};
use sqlx::Row;

/// A row of any table that carries sealed values: a database with one was
/// written with some keys, whether or not it recorded them.
const ANY_SEALED_ROW: &str = "SELECT 1 AS one FROM bookings
    UNION ALL SELECT 1 FROM applications UNION ALL SELECT 1 FROM staff
    UNION ALL SELECT 1 FROM vendors UNION ALL SELECT 1 FROM production_orders
    UNION ALL SELECT 1 FROM outbox UNION ALL SELECT 1 FROM releases
    LIMIT 1";

/// One recorded key: `kind` is `data` or `lookup` (whose id is `lookup`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedKey {
    pub kind: String,
    pub key_id: String,
    pub check_value: String,
    /// Whether a node has sealed with this data key (then every node needs it).
    pub sealing: bool,
}

impl Store {
    /// The keys recorded for this database, by kind and id.
    pub async fn recorded_keys(&self) -> Result<Vec<RecordedKey>> {
        let rows = sqlx::query(
            "SELECT kind, key_id, check_value, sealing_since_ms FROM deployment_keys ORDER BY kind, key_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecordedKey {
                    kind: r.try_get("kind")?,
                    key_id: r.try_get("key_id")?,
                    check_value: r.try_get("check_value")?,
                    sealing: r.try_get::<Option<i64>, _>("sealing_since_ms")?.is_some(),
                })
            })
            .collect()
    }

    /// Records keys not yet recorded, and marks the ones given as `sealing`
    /// as having sealed from now on; a key recorded already keeps its first
    /// check value (the caller compared them before), so two nodes starting
    /// at once with the same keys both succeed.
    pub async fn record_keys(&self, keys: &[RecordedKey], now_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for k in keys {
            sqlx::query(
                "INSERT INTO deployment_keys (kind, key_id, check_value, first_seen_ms)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (kind, key_id) DO NOTHING",
            )
            .bind(&k.kind)
            .bind(&k.key_id)
            .bind(&k.check_value)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if k.sealing {
                sqlx::query(
                    "UPDATE deployment_keys SET sealing_since_ms = $3
                     WHERE kind = $1 AND key_id = $2 AND sealing_since_ms IS NULL",
                )
                .bind(&k.kind)
                .bind(&k.key_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether any table that carries sealed values has a row.
    pub async fn holds_sealed_data(&self) -> Result<bool> {
        Ok(sqlx::query(ANY_SEALED_ROW)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }
}
