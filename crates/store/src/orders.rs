//! Production orders' storage: the printing vendors with their routing
//! settings, the orders (each one an outbox entry until its vendor has it),
//! and the vendors' status events, each applied once.
//!
//! Invariants: an order's row is written in the same transaction as its
//! application's change, its booklet's reservation and its audit event; an
//! order changes only through [`update_order`], conditional on the version
//! read, so two workers (or a worker and a callback) cannot both move it; a
//! vendor event id is a primary key, so a replayed event finds its row and
//! changes nothing; one live order per application (a unique index).
//!
//! Layout: limits and states; row types; writes on a transaction; reads on
//! [`Store`].

use crate::{MailRow, Result, Store, StoreError, Tx};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Most orders listed at once on the console or the API.
pub const ORDER_LIST_MAX: u32 = 500;

/// Where an order is. `Queued` orders are the outbox; `Dead` ones the
/// dead-letter queue a supervisor re-sends; `QualityFailed` and `Mismatch`
/// end an order (the application gets a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderState {
    Queued,
    Dead,
    Accepted,
    InProduction,
    Printed,
    QualityPassed,
    Shipped,
    Received,
    QualityFailed,
    Mismatch,
}

impl OrderState {
    pub const ALL: [OrderState; 10] = [
        OrderState::Queued,
        OrderState::Dead,
        OrderState::Accepted,
        OrderState::InProduction,
        OrderState::Printed,
        OrderState::QualityPassed,
        OrderState::Shipped,
        OrderState::Received,
        OrderState::QualityFailed,
        OrderState::Mismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Queued => "queued",
            OrderState::Dead => "dead",
            OrderState::Accepted => "accepted",
            OrderState::InProduction => "in_production",
            OrderState::Printed => "printed",
            OrderState::QualityPassed => "quality_passed",
            OrderState::Shipped => "shipped",
            OrderState::Received => "received",
            OrderState::QualityFailed => "quality_failed",
            OrderState::Mismatch => "mismatch",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// How far along the vendor's steps: events only move an order forward.
    pub fn rank(self) -> u8 {
        match self {
            OrderState::Queued | OrderState::Dead => 0,
            OrderState::Accepted => 1,
            OrderState::InProduction => 2,
            OrderState::Printed => 3,
            OrderState::QualityPassed => 4,
            OrderState::Shipped | OrderState::QualityFailed => 5,
            OrderState::Received | OrderState::Mismatch => 6,
        }
    }

    /// Whether the order's vendor holds it (so it finishes there).
    pub fn vendor_has_it(self) -> bool {
        self.rank() >= 1
    }

    /// Whether the order has ended (the application needs another, or the
    /// booklet is at the office).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderState::Received | OrderState::QualityFailed | OrderState::Mismatch
        )
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A printing vendor as stored; its key still sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorRow {
    pub id: String,
    pub base_url: String,
    pub key_enc: String,
    pub site: String,
    /// `active` or `draining`.
    pub state: String,
    pub share: i64,
    /// `*` or a comma list.
    pub passport_types: String,
    /// `*` or a comma list.
    pub offices: String,
    pub updated_ms: i64,
}

fn listed(list: &str, item: &str) -> bool {
    list.trim() == "*" || list.split(',').any(|x| x.trim() == item)
}

impl VendorRow {
    pub fn is_active(&self) -> bool {
        self.state == "active"
    }

    /// Whether the routing rules let this vendor take an order of this
    /// passport type for this office (ignoring its state).
    pub fn takes(&self, passport_type: &str, office: &str) -> bool {
        listed(&self.passport_types, passport_type) && listed(&self.offices, office)
    }
}

/// A new order: everything but its progress.
#[derive(Clone, Debug)]
pub struct NewOrder<'a> {
    pub order_id: &'a str,
    pub application_id: &'a str,
    pub office: &'a str,
    pub vendor_id: Option<&'a str>,
    pub passport_number: &'a str,
    pub booklet_type: &'a str,
    pub booklet_serial: Option<&'a str>,
    pub body_enc: &'a str,
    pub now_ms: i64,
}

/// An order as stored; its body still sealed (and left out of `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub order_id: String,
    pub application_id: String,
    pub office: String,
    pub vendor_id: Option<String>,
    pub state: OrderState,
    pub passport_number: String,
    pub booklet_type: String,
    pub booklet_serial: Option<String>,
    pub body_enc: String,
    pub sends: i64,
    pub failures: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub tracking: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub version: i64,
}

impl std::fmt::Debug for OrderRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderRow")
            .field("order_id", &self.order_id)
            .field("application_id", &self.application_id)
            .field("vendor_id", &self.vendor_id)
            .field("state", &self.state)
            .field("passport_number", &self.passport_number)
            .field("booklet_serial", &self.booklet_serial)
            .field("sends", &self.sends)
            .field("failures", &self.failures)
            .field("last_error", &self.last_error)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Orders per vendor and state, for the console and the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderCount {
    pub vendor_id: Option<String>,
    pub state: OrderState,
    pub count: u64,
}

const ORDER_COLUMNS: &str = "order_id, application_id, office_code, vendor_id, state, passport_number, booklet_type, booklet_serial, body_enc, sends, failures, next_attempt_ms, last_error, tracking, created_ms, updated_ms, version";
const VENDOR_COLUMNS: &str =
    "id, base_url, key_enc, site, state, share, passport_types, offices, updated_ms";

fn order_from_row(r: &AnyRow) -> Result<OrderRow> {
    let state: String = r.try_get("state")?;
    Ok(OrderRow {
        order_id: r.try_get("order_id")?,
        application_id: r.try_get("application_id")?,
        office: r.try_get("office_code")?,
        vendor_id: r.try_get("vendor_id")?,
        state: OrderState::parse(&state)
            .ok_or_else(|| StoreError::Other(format!("unknown order state {state:?}")))?,
        passport_number: r.try_get("passport_number")?,
        booklet_type: r.try_get("booklet_type")?,
        booklet_serial: r.try_get("booklet_serial")?,
        body_enc: r.try_get("body_enc")?,
        sends: r.try_get("sends")?,
        failures: r.try_get("failures")?,
        next_attempt_ms: r.try_get("next_attempt_ms")?,
        last_error: r.try_get("last_error")?,
        tracking: r.try_get("tracking")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        version: r.try_get("version")?,
    })
}

fn vendor_from_row(r: &AnyRow) -> Result<VendorRow> {
    Ok(VendorRow {
        id: r.try_get("id")?,
        base_url: r.try_get("base_url")?,
        key_enc: r.try_get("key_enc")?,
        site: r.try_get("site")?,
        state: r.try_get("state")?,
        share: r.try_get("share")?,
        passport_types: r.try_get("passport_types")?,
        offices: r.try_get("offices")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

/// Inserts a new order, queued for its vendor (or for a vendor to be
/// chosen, when `vendor_id` is `None`).
pub async fn insert_order(tx: &mut Tx, o: &NewOrder<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO production_orders (order_id, application_id, office_code, vendor_id, state,
           passport_number, booklet_type, booklet_serial, body_enc, sends, failures, next_attempt_ms,
           last_error, tracking, created_ms, updated_ms, version)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, 0, 0, $9, NULL, NULL, $9, $9, 1)",
    )
    .bind(o.order_id)
    .bind(o.application_id)
    .bind(o.office)
    .bind(o.vendor_id)
    .bind(o.passport_number)
    .bind(o.booklet_type)
    .bind(o.booklet_serial)
    .bind(o.body_enc)
    .bind(o.now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts new orders (each queued) with one statement per
/// [`ORDER_INSERT_ROWS`].
pub async fn insert_orders(tx: &mut Tx, orders: &[NewOrder<'_>]) -> Result<()> {
    for chunk in orders.chunks(ORDER_INSERT_ROWS) {
        let mut sql = String::from(
            "INSERT INTO production_orders (order_id, application_id, office_code, vendor_id, state,
               passport_number, booklet_type, booklet_serial, body_enc, sends, failures, next_attempt_ms,
               last_error, tracking, created_ms, updated_ms, version) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 9;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, 'queued', ${}, ${}, ${}, ${}, 0, 0, ${}, NULL, NULL, ${}, ${}, 1)",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 9,
                b + 9
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for o in chunk {
            q = q
                .bind(o.order_id)
                .bind(o.application_id)
                .bind(o.office)
                .bind(o.vendor_id)
                .bind(o.passport_number)
                .bind(o.booklet_type)
                .bind(o.booklet_serial)
                .bind(o.body_enc)
                .bind(o.now_ms);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Orders per insert statement (9 binds each).
pub const ORDER_INSERT_ROWS: usize = 100;

/// The applications among `ids` that have a live order, and how many
/// orders each has had (for the next order's id), read in `tx`.
pub async fn order_facts_in(
    tx: &mut Tx,
    ids: &[String],
) -> Result<(
    std::collections::HashSet<String>,
    std::collections::HashMap<String, i64>,
)> {
    let mut live = std::collections::HashSet::new();
    let mut counts = std::collections::HashMap::new();
    if ids.is_empty() {
        return Ok((live, counts));
    }
    let sql = format!(
        "SELECT application_id, state FROM production_orders WHERE application_id IN ({})",
        crate::binds(1, ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    for r in q.fetch_all(&mut **tx).await? {
        let app: String = r.try_get("application_id")?;
        let state: String = r.try_get("state")?;
        if !matches!(state.as_str(), "quality_failed" | "mismatch") {
            live.insert(app.clone());
        }
        *counts.entry(app).or_insert(0) += 1;
    }
    Ok((live, counts))
}

/// Saves `next` over the order whose version was `read_version`; a
/// `Conflict` when someone else changed it since (read it again).
pub async fn update_order(tx: &mut Tx, next: &OrderRow, read_version: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE production_orders SET vendor_id = $2, state = $3, booklet_serial = $4, sends = $5,
           failures = $6, next_attempt_ms = $7, last_error = $8, tracking = $9, updated_ms = $10,
           version = version + 1
         WHERE order_id = $1 AND version = $11",
    )
    .bind(&next.order_id)
    .bind(next.vendor_id.as_deref())
    .bind(next.state.as_str())
    .bind(next.booklet_serial.as_deref())
    .bind(next.sends)
    .bind(next.failures)
    .bind(next.next_attempt_ms)
    .bind(next.last_error.as_deref())
    .bind(next.tracking.as_deref())
    .bind(next.updated_ms)
    .bind(read_version)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict {
            constraint: "production_orders.version: changed by someone else; read it again".into(),
        });
    }
    Ok(())
}

/// An order read inside a transaction.
pub async fn order_in(tx: &mut Tx, order_id: &str) -> Result<OrderRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM production_orders WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    order_from_row(&row)
}

/// Several orders read inside a transaction, in no particular order.
pub async fn orders_in(tx: &mut Tx, ids: &[String]) -> Result<Vec<OrderRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM production_orders WHERE order_id IN ({})",
        crate::binds(1, ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&mut **tx).await?;
    rows.iter().map(order_from_row).collect()
}

/// Marks the orders of `ids` still queued at `vendor_id` as held by it (its
/// answer to a batch), all at once; returns those it marked (one the
/// vendor's own `accepted` callback marked meanwhile is left as it is).
pub async fn mark_orders_accepted(
    tx: &mut Tx,
    ids: &[String],
    vendor_id: &str,
    now_ms: i64,
) -> Result<std::collections::HashSet<String>> {
    if ids.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let sql = format!(
        "UPDATE production_orders SET state = 'accepted', sends = sends + 1, failures = 0,
           last_error = NULL, updated_ms = $1, version = version + 1
         WHERE state = 'queued' AND vendor_id = $2 AND order_id IN ({})
         RETURNING order_id",
        crate::binds(3, ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now_ms)
        .bind(vendor_id);
    for id in ids {
        q = q.bind(id);
    }
    q.fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("order_id").map_err(StoreError::from))
        .collect()
}

/// The application's live order (not ended by a failure), read in `tx`.
pub async fn live_order_in(tx: &mut Tx, application_id: &str) -> Result<Option<OrderRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM production_orders
         WHERE application_id = $1 AND state NOT IN ('quality_failed', 'mismatch')"
    )))
    .bind(application_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// Marks a vendor active or draining, with its audit event, in `tx`.
pub async fn set_vendor_state(
    tx: &mut Tx,
    id: &str,
    state: &str,
    event: &pasaporte_core::audit::AuditEvent,
    now_ms: i64,
) -> Result<()> {
    if !matches!(state, "active" | "draining") {
        return Err(StoreError::Conflict {
            constraint: "vendors.state: active or draining".into(),
        });
    }
    let done = sqlx::query("UPDATE vendors SET state = $2, updated_ms = $3 WHERE id = $1")
        .bind(id)
        .bind(state)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    crate::append_audit_event(tx, event).await?;
    Ok(())
}

/// Replaces an order's sealed body (a re-route names another booklet).
pub async fn save_order_body(tx: &mut Tx, order_id: &str, body_enc: &str) -> Result<()> {
    sqlx::query("UPDATE production_orders SET body_enc = $2 WHERE order_id = $1")
        .bind(order_id)
        .bind(body_enc)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a new order received (an emergency passport made at the office).
pub async fn mark_order_received(tx: &mut Tx, order_id: &str, now_ms: i64) -> Result<()> {
    sqlx::query(
        "UPDATE production_orders SET state = 'received', updated_ms = $2, version = version + 1
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a vendor event as seen: `false` when this vendor's event id was
/// seen before (a replay: change nothing).
pub async fn record_vendor_event(
    tx: &mut Tx,
    vendor_id: &str,
    event_id: &str,
    order_id: &str,
    kind: &str,
    outcome: &str,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO vendor_events (vendor_id, event_id, order_id, kind, outcome, received_ms)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vendor_id, event_id) DO NOTHING",
    )
    .bind(vendor_id)
    .bind(event_id)
    .bind(order_id)
    .bind(kind)
    .bind(outcome)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Queues a mail in the outbox, in the transaction of the change it tells
/// about.
pub async fn queue_mail(tx: &mut Tx, m: &MailRow, now_ms: i64) -> Result<()> {
    crate::bookings::insert_mail(tx, m, now_ms).await?;
    Ok(())
}

impl Store {
    /// Every vendor, by id.
    pub async fn vendors(&self) -> Result<Vec<VendorRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VENDOR_COLUMNS} FROM vendors ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(vendor_from_row).collect()
    }

    /// Adds a vendor or replaces its settings.
    pub async fn upsert_vendor(&self, v: &VendorRow) -> Result<()> {
        if !matches!(v.state.as_str(), "active" | "draining") {
            return Err(StoreError::Conflict {
                constraint: "vendors.state: active or draining".into(),
            });
        }
        sqlx::query(
            "INSERT INTO vendors (id, base_url, key_enc, site, state, share, passport_types, offices, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET base_url = $2, key_enc = $3, site = $4, state = $5,
               share = $6, passport_types = $7, offices = $8, updated_ms = $9",
        )
        .bind(&v.id)
        .bind(&v.base_url)
        .bind(&v.key_enc)
        .bind(&v.site)
        .bind(&v.state)
        .bind(v.share)
        .bind(&v.passport_types)
        .bind(&v.offices)
        .bind(v.updated_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn order(&self, order_id: &str) -> Result<OrderRow> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM production_orders WHERE order_id = $1"
        )))
        .bind(order_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        order_from_row(&row)
    }

    /// Every order of an application, oldest first.
    pub async fn orders_of_application(&self, application_id: &str) -> Result<Vec<OrderRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM production_orders WHERE application_id = $1
             ORDER BY created_ms, order_id"
        )))
        .bind(application_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Orders in `state` (of one vendor, or all; `Some("")` for those
    /// without a vendor), oldest first, at most `limit`.
    pub async fn orders_in_state(
        &self,
        state: OrderState,
        vendor_id: Option<&str>,
        office: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OrderRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM production_orders
             WHERE state = $1 AND ($2 = '*' OR COALESCE(vendor_id, '') = $2)
               AND ($3 = '' OR office_code = $3)
             ORDER BY created_ms, order_id LIMIT $4"
        )))
        .bind(state.as_str())
        .bind(vendor_id.unwrap_or("*"))
        .bind(office.unwrap_or(""))
        .bind(i64::from(limit.min(ORDER_LIST_MAX * 20)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Queued orders of `vendor_id` whose next attempt is due, oldest
    /// attempt first: what the next batch to that vendor holds.
    pub async fn due_orders(
        &self,
        vendor_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OrderRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM production_orders
             WHERE state = 'queued' AND vendor_id = $1 AND next_attempt_ms <= $2
             ORDER BY next_attempt_ms, created_ms, order_id LIMIT $3"
        )))
        .bind(vendor_id)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Orders per vendor and state, of one office or (None) of all.
    pub async fn order_counts(&self, office: Option<&str>) -> Result<Vec<OrderCount>> {
        let rows = sqlx::query(
            "SELECT vendor_id, state, COUNT(*) AS n FROM production_orders
             WHERE ($1 = '' OR office_code = $1)
             GROUP BY vendor_id, state ORDER BY vendor_id, state",
        )
        .bind(office.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok(OrderCount {
                    vendor_id: r.try_get("vendor_id")?,
                    state: OrderState::parse(&state).ok_or_else(|| {
                        StoreError::Other(format!("unknown order state {state:?}"))
                    })?,
                    count: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Applications that need a production order, oldest first: approved
    /// ones (but emergency passports, made at the office) and those in
    /// production whose last order ended in a failure.
    pub async fn applications_needing_order(&self, limit: u32) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT a.id FROM applications a
             WHERE (a.state = 'approved' AND COALESCE(a.passport_type, '') <> 'emergencia')
                OR (a.state = 'in_production' AND NOT EXISTS (
                      SELECT 1 FROM production_orders o WHERE o.application_id = a.id
                      AND o.state NOT IN ('quality_failed', 'mismatch')))
             ORDER BY a.state_since_ms, a.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(StoreError::from))
            .collect()
    }

    /// Applications ready for pick-up since before `cutoff_ms`: the
    /// annulment job's work.
    pub async fn uncollected_before(&self, cutoff_ms: i64, limit: u32) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM applications WHERE state = 'ready_for_pickup' AND state_since_ms < $1
             ORDER BY state_since_ms, id LIMIT $2",
        )
        .bind(cutoff_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(StoreError::from))
            .collect()
    }

    /// How many vendor events were received, by outcome (`applied`,
    /// `ignored`).
    pub async fn vendor_event_count(&self, outcome: &str) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM vendor_events WHERE outcome = $1")
            .bind(outcome)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }
}
