//! The columns that hold sealed values, walked by the server's one-off
//! re-seal (`reseal.rs` in the server): a page of rows at a time in key
//! order, and each changed value written back only if the row still holds
//! the value that was read (compare and set), so two servers re-sealing at
//! once, or a use case writing meanwhile, never lose a write.

use crate::{Result, Store, StoreError};
use sqlx::Row;

/// A table with sealed columns, keyed by one text column and, for
/// applicants, an integer position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedTable {
    pub table: &'static str,
    pub key: &'static str,
    pub position: Option<&'static str>,
    pub columns: &'static [&'static str],
}

/// Every table and column holding sealed values. SQL below is built only
/// from these names.
pub const SEALED_TABLES: &[SealedTable] = &[
    SealedTable {
        table: "bookings",
        key: "id",
        position: None,
        columns: &["email_enc", "phone_enc", "evidence_enc"],
    },
    SealedTable {
        table: "applicants",
        key: "booking_id",
        position: Some("position"),
        columns: &[
            "document_number_enc",
            "surnames_enc",
            "given_names_enc",
            "birth_date_enc",
        ],
    },
    SealedTable {
        table: "outbox",
        key: "id",
        position: None,
        columns: &["recipient_enc", "body_enc", "ics_enc"],
    },
    SealedTable {
        table: "staff",
        key: "id",
        position: None,
        columns: &["display_name_enc", "totp_secret_enc"],
    },
    SealedTable {
        table: "applications",
        key: "id",
        position: None,
        columns: &[
            "identity_enc",
            "contact_enc",
            "extras_enc",
            "photo_enc",
            "signature_enc",
        ],
    },
    SealedTable {
        table: "application_portraits",
        key: "application_id",
        position: None,
        columns: &["chip_portrait_enc"],
    },
    SealedTable {
        table: "vendors",
        key: "id",
        position: None,
        columns: &["key_enc"],
    },
    SealedTable {
        table: "production_orders",
        key: "order_id",
        position: None,
        columns: &["body_enc"],
    },
    SealedTable {
        table: "releases",
        key: "id",
        position: None,
        columns: &["seed_enc"],
    },
];

/// One row's sealed values, in the order of its table's `columns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedRow {
    pub key: String,
    /// The position for applicants; 0 elsewhere.
    pub position: i64,
    pub values: Vec<Option<String>>,
}

/// One value to write back: `new` replaces `old` if `old` is still there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resealed {
    pub key: String,
    pub position: i64,
    pub column: &'static str,
    pub old: String,
    pub new: String,
}

fn known(t: &SealedTable) -> Result<()> {
    if SEALED_TABLES.contains(t) {
        Ok(())
    } else {
        Err(StoreError::Other(format!(
            "{} is not a table of sealed values",
            t.table
        )))
    }
}

impl Store {
    /// Rows of `t` after `after` (key, position) in key order, at most `limit`.
    pub async fn sealed_rows(
        &self,
        t: &SealedTable,
        after: (&str, i64),
        limit: u32,
    ) -> Result<Vec<SealedRow>> {
        known(t)?;
        let cols = t.columns.join(", ");
        let (key, table) = (t.key, t.table);
        let rows = match t.position {
            Some(pos) => {
                let sql = format!(
                    "SELECT {key} AS k, {pos} AS p, {cols} FROM {table}
                     WHERE ({key} > $1 OR ({key} = $1 AND {pos} > $2))
                     ORDER BY {key}, {pos} LIMIT $3"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(after.0.to_string())
                    .bind(after.1)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {key} AS k, {cols} FROM {table} WHERE {key} > $1 ORDER BY {key} LIMIT $2"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(after.0.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(SealedRow {
                    key: r.try_get("k")?,
                    position: match t.position {
                        Some(_) => r.try_get("p")?,
                        None => 0,
                    },
                    values: t
                        .columns
                        .iter()
                        .map(|c| r.try_get::<Option<String>, _>(*c))
                        .collect::<std::result::Result<_, _>>()?,
                })
            })
            .collect()
    }

    /// Writes `changes` to `t` in one transaction, each only where the row
    /// still holds the value it replaces; returns how many were written.
    pub async fn reseal(&self, t: &SealedTable, changes: &[Resealed]) -> Result<usize> {
        known(t)?;
        let mut written = 0;
        let mut tx = self.begin_write().await?;
        for c in changes {
            if !t.columns.contains(&c.column) {
                return Err(StoreError::Other(format!(
                    "{} is not a sealed column of {}",
                    c.column, t.table
                )));
            }
            let (table, col, key) = (t.table, c.column, t.key);
            let sql = match t.position {
                Some(pos) => format!(
                    "UPDATE {table} SET {col} = $1 WHERE {key} = $2 AND {col} = $3 AND {pos} = $4"
                ),
                None => format!("UPDATE {table} SET {col} = $1 WHERE {key} = $2 AND {col} = $3"),
            };
            let q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&c.new)
                .bind(&c.key)
                .bind(&c.old);
            let q = match t.position {
                Some(_) => q.bind(c.position),
                None => q,
            };
            let done = q.execute(&mut *tx).await?;
            written += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        tx.commit().await?;
        Ok(written)
    }
}
