//! Worker leases: with several nodes on one database, each background worker
//! runs on one node at a time (see `worker_leases` in the migrations).

use crate::{Result, Store};

impl Store {
    /// Takes or renews the lease `name` for `holder` until `until_ms`: true
    /// when `holder` holds it now. One statement, so two nodes asking at once
    /// cannot both get it; a lease whose holder stopped renewing it passes to
    /// the next node that asks after `until_ms`.
    pub async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO worker_leases (name, holder, until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
             WHERE worker_leases.holder = excluded.holder OR worker_leases.until_ms < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up every lease `holder` holds (a node stopping), so that
    /// another node takes the work over at once.
    pub async fn release_leases_of(&self, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM worker_leases WHERE holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
