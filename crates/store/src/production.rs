//! Production's storage: blank booklets with their custody record, and
//! passport numbers. Writes take the caller's transaction (from
//! [`Store::begin_write`]), so that a booklet's change and the application's
//! own change commit together or not at all.
//!
//! Invariants: every change of a booklet's state writes its `booklet_events`
//! row in the same transaction (seq 1..n, each from_state the previous
//! to_state), and the change itself is a conditional `UPDATE ... WHERE state =
//! <the state read>`, so two writers cannot both move the same booklet. A
//! passport number is a `passport_numbers` primary key: never given twice.
//!
//! Layout: limits; row types; the write functions on a transaction; the
//! reads on [`Store`].

use crate::{Result, Store, StoreError, Tx};
use pasaporte_core::production::{
    BookletState, BookletType, CustodyError, CustodyEvent, PassportNumber, SEQUENCE_MAX,
    SerialRange, stock_forecast,
};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Booklets inserted per statement when a range is received: 5 binds each
/// (booklets) keeps a statement far below SQLite's and PostgreSQL's bind limits
/// while a 100,000-booklet range takes 500 round trips, not 100,000.
pub const RECEIVE_ROWS_PER_STATEMENT: usize = 200;
/// Longest site code or actor kept: codes and staff ids, not prose.
pub const PRODUCTION_NAME_CHARS_MAX: usize = 64;
/// Times reserving looks for another booklet when a concurrent writer took
/// the one it found (PostgreSQL; on SQLite the write lock serialises them).
/// Each miss means another reservation succeeded, so this bounds the number
/// of reservers racing at one site for one type; past it the caller gets a
/// `Conflict` to retry, never a false "out of stock".
pub const RESERVE_ATTEMPTS_MAX: u32 = 64;
/// Most custody records returned for one booklet: its whole life is about ten.
pub const BOOKLET_HISTORY_MAX: u32 = 1_000;

/// Longest window a stock forecast looks back over: a year of issues says
/// what the rate is; longer mixes in seasons and contracts long gone.
pub const FORECAST_WINDOW_DAYS_MAX: u32 = 366;
const DAY_MS: i64 = 86_400_000;

/// The `event` column of a booklet's first record.
pub const RECEIVE_EVENT: &str = "receive";

/// Why a custody change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CustodyWriteError {
    /// The custody graph refused it (or its reason or witness is missing).
    #[error(transparent)]
    Custody(#[from] CustodyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many booklets of a type are in a state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockLevel {
    pub booklet_type: BookletType,
    pub state: BookletState,
    pub count: u64,
}

/// Days of stock of one booklet type at the recent issue rate.
#[derive(Clone, Debug, PartialEq)]
pub struct StockForecast {
    pub booklet_type: BookletType,
    pub in_stock: u64,
    /// Booklets personalised in the window.
    pub issued: u64,
    pub window_days: u32,
    /// `None` when nothing was issued in the window (no rate to divide by).
    pub days_left: Option<f64>,
}

/// A booklet as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookletRow {
    pub serial: String,
    pub booklet_type: BookletType,
    pub site: String,
    pub state: BookletState,
    pub state_since_ms: i64,
    pub application_id: Option<String>,
    pub passport_number: Option<String>,
}

/// One custody record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookletEventRow {
    pub serial: String,
    pub seq: i64,
    /// `None` for the receipt.
    pub from_state: Option<BookletState>,
    pub to_state: BookletState,
    /// A [`pasaporte_core::production::CustodyEventKind`] name, or [`RECEIVE_EVENT`].
    pub event: String,
    pub detail: Option<String>,
    pub actor: String,
    pub at_ms: i64,
}

fn check_name(what: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() || s.chars().count() > PRODUCTION_NAME_CHARS_MAX {
        return Err(StoreError::Conflict {
            constraint: format!("{what}: 1 to {PRODUCTION_NAME_CHARS_MAX} characters"),
        });
    }
    Ok(())
}

fn parse_state(s: &str) -> Result<BookletState> {
    BookletState::parse(s).ok_or_else(|| StoreError::Other(format!("unknown booklet state {s:?}")))
}

fn parse_type(s: &str) -> Result<BookletType> {
    BookletType::parse(s).ok_or_else(|| StoreError::Other(format!("unknown booklet type {s:?}")))
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Records a booklet's new state as the next entry of its custody record.
#[allow(clippy::too_many_arguments)]
async fn write_event(
    tx: &mut Tx,
    serial: &str,
    from: Option<BookletState>,
    to: BookletState,
    event: &str,
    detail: Option<&str>,
    actor: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO booklet_events (serial, seq, from_state, to_state, event, detail, actor, at_ms)
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7
         FROM booklet_events WHERE serial = $1",
    )
    .bind(serial)
    .bind(from.map(BookletState::as_str))
    .bind(to.as_str())
    .bind(event)
    .bind(detail)
    .bind(actor)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Receives a range of blank booklets at `site`: each in stock, each with its
/// receipt as custody record 1. A serial already known refuses the whole
/// range (`Conflict`); the caller rolls back and nothing is stored.
pub async fn receive_range(
    tx: &mut Tx,
    range: &SerialRange,
    booklet_type: BookletType,
    site: &str,
    actor: &str,
    now_ms: i64,
) -> Result<u32> {
    check_name("site", site)?;
    check_name("actor", actor)?;
    let serials: Vec<String> = range.iter().map(|s| s.to_string()).collect();
    for chunk in serials.chunks(RECEIVE_ROWS_PER_STATEMENT) {
        let mut booklets = String::from(
            "INSERT INTO booklets (serial, booklet_type, site, state, state_since_ms) VALUES ",
        );
        let mut events = String::from(
            "INSERT INTO booklet_events (serial, seq, from_state, to_state, event, detail, actor, at_ms) VALUES ",
        );
        for i in 0..chunk.len() {
            let sep = if i == 0 { "" } else { ", " };
            // Shared values come first; each serial is the bind after them.
            booklets.push_str(&format!("{sep}(${}, $1, $2, 'in_stock', $3)", 4 + i));
            events.push_str(&format!(
                "{sep}(${}, 1, NULL, 'in_stock', '{RECEIVE_EVENT}', NULL, $1, $2)",
                3 + i
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(booklets))
            .bind(booklet_type.as_str())
            .bind(site)
            .bind(now_ms);
        for serial in chunk {
            q = q.bind(serial.as_str());
        }
        q.execute(&mut **tx).await?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(events))
            .bind(actor)
            .bind(now_ms);
        for serial in chunk {
            q = q.bind(serial.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(range.len())
}

/// Reserves a booklet of `booklet_type` at `site` for `application_id`: the
/// one it already holds if any (a retried reservation), else the lowest
/// serial in stock. `None` when none is left.
///
/// A reservation of another type or site, or for another application,
/// never waits on this one beyond the row it takes.
pub async fn reserve_booklet(
    tx: &mut Tx,
    booklet_type: BookletType,
    site: &str,
    application_id: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Option<String>> {
    check_name("actor", actor)?;
    let held = sqlx::query(
        "SELECT serial FROM booklets WHERE application_id = $1 AND state = 'reserved'
         AND booklet_type = $2 AND site = $3",
    )
    .bind(application_id)
    .bind(booklet_type.as_str())
    .bind(site)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = held {
        return Ok(Some(row.try_get("serial")?));
    }
    let from = BookletState::InStock;
    let to = from
        .next(&CustodyEvent::Reserve)
        .map_err(|e| StoreError::Other(e.to_string()))?;
    for _ in 0..RESERVE_ATTEMPTS_MAX {
        let Some(row) = sqlx::query(
            "SELECT serial FROM booklets WHERE site = $1 AND booklet_type = $2 AND state = 'in_stock'
             ORDER BY serial LIMIT 1",
        )
        .bind(site)
        .bind(booklet_type.as_str())
        .fetch_optional(&mut **tx)
        .await?
        else {
            return Ok(None);
        };
        let serial: String = row.try_get("serial")?;
        let done = sqlx::query(
            "UPDATE booklets SET state = $2, state_since_ms = $3, application_id = $4
             WHERE serial = $1 AND state = $5",
        )
        .bind(&serial)
        .bind(to.as_str())
        .bind(now_ms)
        .bind(application_id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 1 {
            write_event(
                tx,
                &serial,
                Some(from),
                to,
                CustodyEvent::Reserve.kind().as_str(),
                None,
                actor,
                now_ms,
            )
            .await?;
            return Ok(Some(serial));
        }
    }
    Err(StoreError::Conflict {
        constraint: "booklets: reservations contended; retry".into(),
    })
}

/// Applies `event` to a booklet through the core's custody graph, with its
/// custody record. A release also frees the booklet from its application.
/// Returns the new state. Reserve through [`reserve_booklet`] (which names
/// the application) and personalise through [`personalise_booklet`] (which
/// records the number); here they change the state only.
pub async fn booklet_event(
    tx: &mut Tx,
    serial: &str,
    event: &CustodyEvent,
    actor: &str,
    now_ms: i64,
) -> Result<BookletState, CustodyWriteError> {
    apply_event(tx, serial, event, None, actor, now_ms).await
}

/// Personalises a reserved booklet with `number`: the custody change and the
/// number on the booklet's row, together.
pub async fn personalise_booklet(
    tx: &mut Tx,
    serial: &str,
    number: &PassportNumber,
    actor: &str,
    now_ms: i64,
) -> Result<BookletState, CustodyWriteError> {
    apply_event(
        tx,
        serial,
        &CustodyEvent::Personalise,
        Some(number),
        actor,
        now_ms,
    )
    .await
}

async fn apply_event(
    tx: &mut Tx,
    serial: &str,
    event: &CustodyEvent,
    number: Option<&PassportNumber>,
    actor: &str,
    now_ms: i64,
) -> Result<BookletState, CustodyWriteError> {
    check_name("actor", actor)?;
    let row = sqlx::query("SELECT state FROM booklets WHERE serial = $1")
        .bind(serial)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from)?
        .ok_or(StoreError::NotFound)?;
    let from = parse_state(
        &row.try_get::<String, _>("state")
            .map_err(StoreError::from)?,
    )?;
    let to = from.next(event)?;
    let release = matches!(event, CustodyEvent::Release);
    let done = sqlx::query(
        "UPDATE booklets SET state = $2, state_since_ms = $3,
           application_id = CASE WHEN $4 = 1 THEN NULL ELSE application_id END,
           passport_number = COALESCE($5, passport_number)
         WHERE serial = $1 AND state = $6",
    )
    .bind(serial)
    .bind(to.as_str())
    .bind(now_ms)
    .bind(i64::from(release))
    .bind(number.map(ToString::to_string))
    .bind(from.as_str())
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict {
            constraint: "booklets.state: changed by someone else; read it again".into(),
        }
        .into());
    }
    write_event(
        tx,
        serial,
        Some(from),
        to,
        event.kind().as_str(),
        event.detail(),
        actor,
        now_ms,
    )
    .await?;
    Ok(to)
}

/// The passport number of `holder` (a production order, or an emergency
/// issue at an office) of `application_id`: the one it already has, else the
/// next of `series`. Numbers are never given twice (the primary key) and a
/// series only counts up, so a number is never reused either.
///
/// The series row is locked first (a no-op update), so that two requests for
/// the same holder wait for each other and the second finds the first's
/// number instead of taking another; the counter has no gaps.
pub async fn allocate_passport_number(
    tx: &mut Tx,
    series: &str,
    holder: &str,
    application_id: &str,
    now_ms: i64,
) -> Result<PassportNumber> {
    allocate_passport_numbers(
        tx,
        series,
        &[(holder.to_string(), application_id.to_string())],
        now_ms,
    )
    .await?
    .pop()
    .ok_or_else(|| StoreError::Other("a holder got no number".into()))
}

/// Passport numbers for several holders at once (`(holder, application_id)`
/// pairs), in their order: the ones they already have, else the next of
/// `series` counted up once for all of them. Same guarantees as
/// [`allocate_passport_number`], a few statements for the whole batch.
pub async fn allocate_passport_numbers(
    tx: &mut Tx,
    series: &str,
    holders: &[(String, String)],
    now_ms: i64,
) -> Result<Vec<PassportNumber>> {
    PassportNumber::from_sequence(series, 1).map_err(|e| StoreError::Conflict {
        constraint: e.to_string(),
    })?;
    if holders.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(
        "INSERT INTO passport_number_series (series, next) VALUES ($1, 1)
         ON CONFLICT (series) DO NOTHING",
    )
    .bind(series)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE passport_number_series SET next = next WHERE series = $1")
        .bind(series)
        .execute(&mut **tx)
        .await?;
    let sql = format!(
        "SELECT holder, number FROM passport_numbers WHERE holder IN ({})",
        crate::binds(1, holders.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (h, _) in holders {
        q = q.bind(h);
    }
    let mut have = std::collections::HashMap::new();
    for r in q.fetch_all(&mut **tx).await? {
        let holder: String = r.try_get("holder")?;
        let number: String = r.try_get("number")?;
        have.insert(
            holder,
            PassportNumber::parse(&number).map_err(|e| StoreError::Other(e.to_string()))?,
        );
    }
    let missing: Vec<&(String, String)> = holders
        .iter()
        .filter(|(h, _)| !have.contains_key(h))
        .collect();
    if !missing.is_empty() {
        let k = missing.len() as i64;
        let row = sqlx::query(
            "UPDATE passport_number_series SET next = next + $2 WHERE series = $1 AND next + $2 - 1 <= $3
             RETURNING next",
        )
        .bind(series)
        .bind(k)
        .bind(i64::from(SEQUENCE_MAX))
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::Conflict {
            constraint: format!("passport_number_series: series {series} is used up"),
        })?;
        let next: i64 = row.try_get("next")?;
        let first = next - k;
        let mut sql = String::from(
            "INSERT INTO passport_numbers (number, holder, application_id, allocated_ms) VALUES ",
        );
        for i in 0..missing.len() {
            let b = i * 4;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, (holder, app)) in missing.iter().enumerate() {
            let n =
                u32::try_from(first + i as i64).map_err(|e| StoreError::Other(e.to_string()))?;
            let number = PassportNumber::from_sequence(series, n)
                .map_err(|e| StoreError::Other(e.to_string()))?;
            q = q
                .bind(number.to_string())
                .bind(holder)
                .bind(app)
                .bind(now_ms);
            have.insert(holder.clone(), number);
        }
        q.execute(&mut **tx).await?;
    }
    holders
        .iter()
        .map(|(h, _)| {
            have.get(h)
                .copied()
                .ok_or_else(|| StoreError::Other("a holder got no number".into()))
        })
        .collect()
}

/// Reserves a booklet of `booklet_type` at `site` for each application of
/// `application_ids`, in their order: the one it already holds, else the
/// lowest serials in stock; `None` for those left when stock runs out. The
/// same custody records as [`reserve_booklet`], a few statements in all.
pub async fn reserve_booklets(
    tx: &mut Tx,
    booklet_type: BookletType,
    site: &str,
    application_ids: &[String],
    actor: &str,
    now_ms: i64,
) -> Result<Vec<Option<String>>> {
    check_name("actor", actor)?;
    if application_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT serial, application_id FROM booklets WHERE state = 'reserved' AND booklet_type = $1
         AND site = $2 AND application_id IN ({})",
        crate::binds(3, application_ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(booklet_type.as_str())
        .bind(site);
    for id in application_ids {
        q = q.bind(id);
    }
    let mut held = std::collections::HashMap::new();
    for r in q.fetch_all(&mut **tx).await? {
        let app: String = r.try_get("application_id")?;
        held.insert(app, r.try_get::<String, _>("serial")?);
    }
    let needing: Vec<&String> = application_ids
        .iter()
        .filter(|a| !held.contains_key(*a))
        .collect();
    if !needing.is_empty() {
        let free: Vec<String> = sqlx::query(
            "SELECT serial FROM booklets WHERE site = $1 AND booklet_type = $2 AND state = 'in_stock'
             ORDER BY serial LIMIT $3",
        )
        .bind(site)
        .bind(booklet_type.as_str())
        .bind(needing.len() as i64)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("serial"))
        .collect::<std::result::Result<_, _>>()?;
        let pairs: Vec<(&String, &String)> = free.iter().zip(needing.iter().copied()).collect();
        if !pairs.is_empty() {
            let n = pairs.len();
            let mut case = String::from("CASE serial");
            for i in 0..n {
                case.push_str(&format!(" WHEN ${} THEN ${}", 3 + 2 * i, 4 + 2 * i));
            }
            case.push_str(" END");
            let sql = format!(
                "UPDATE booklets SET state = 'reserved', state_since_ms = $1, application_id = {case}
                 WHERE state = 'in_stock' AND site = $2 AND serial IN ({})",
                crate::binds(3 + 2 * n, n)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now_ms)
                .bind(site);
            for (serial, app) in &pairs {
                q = q.bind(*serial).bind(*app);
            }
            for (serial, _) in &pairs {
                q = q.bind(*serial);
            }
            let done = q.execute(&mut **tx).await?;
            if done.rows_affected() != n as u64 {
                return Err(StoreError::Conflict {
                    constraint: "booklets.state: changed by someone else; read it again".into(),
                });
            }
            let sql = format!(
                "INSERT INTO booklet_events (serial, seq, from_state, to_state, event, detail, actor, at_ms)
                 SELECT b.serial, (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM booklet_events e WHERE e.serial = b.serial),
                   'in_stock', 'reserved', 'reserve', NULL, $1, $2
                 FROM booklets b WHERE b.serial IN ({})",
                crate::binds(3, n)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(actor)
                .bind(now_ms);
            for (serial, _) in &pairs {
                q = q.bind(*serial);
            }
            q.execute(&mut **tx).await?;
            for (serial, app) in pairs {
                held.insert(app.clone(), serial.clone());
            }
        }
    }
    Ok(application_ids
        .iter()
        .map(|a| held.get(a).cloned())
        .collect())
}

/// A booklet read inside a transaction.
pub async fn booklet_in(tx: &mut Tx, serial: &str) -> Result<BookletRow> {
    let row = sqlx::query(
        "SELECT serial, booklet_type, site, state, state_since_ms, application_id, passport_number
         FROM booklets WHERE serial = $1",
    )
    .bind(serial)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    booklet_from_row(&row)
}

fn booklet_from_row(r: &AnyRow) -> Result<BookletRow> {
    Ok(BookletRow {
        serial: r.try_get("serial")?,
        booklet_type: parse_type(&r.try_get::<String, _>("booklet_type")?)?,
        site: r.try_get("site")?,
        state: parse_state(&r.try_get::<String, _>("state")?)?,
        state_since_ms: r.try_get("state_since_ms")?,
        application_id: r.try_get("application_id")?,
        passport_number: r.try_get("passport_number")?,
    })
}

impl Store {
    /// Booklets per type and state, at one site or everywhere. Only
    /// combinations that have booklets are listed.
    pub async fn stock_levels(&self, site: Option<&str>) -> Result<Vec<StockLevel>> {
        let rows = sqlx::query(
            "SELECT booklet_type, state, COUNT(*) AS n FROM booklets
             WHERE $1 IS NULL OR site = $1
             GROUP BY booklet_type, state ORDER BY booklet_type, state",
        )
        .bind(site)
        .fetch_all(&self.pool)
        .await?;
        let mut levels = rows
            .iter()
            .map(|r| {
                Ok(StockLevel {
                    booklet_type: parse_type(&r.try_get::<String, _>("booklet_type")?)?,
                    state: parse_state(&r.try_get::<String, _>("state")?)?,
                    count: to_u64(r.try_get("n")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        levels.sort_by_key(|l| (l.booklet_type, l.state));
        Ok(levels)
    }

    /// Booklets of each type personalised since `since_ms` (at one site or
    /// everywhere): the issue rate a stock forecast divides by.
    pub async fn booklets_personalised_since(
        &self,
        site: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<(BookletType, u64)>> {
        let rows = sqlx::query(
            "SELECT b.booklet_type AS booklet_type, COUNT(*) AS n
             FROM booklet_events e JOIN booklets b ON b.serial = e.serial
             WHERE e.event = 'personalise' AND e.at_ms >= $1 AND ($2 IS NULL OR b.site = $2)
             GROUP BY b.booklet_type ORDER BY b.booklet_type",
        )
        .bind(since_ms)
        .bind(site)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_type(&r.try_get::<String, _>("booklet_type")?)?,
                    to_u64(r.try_get("n")?),
                ))
            })
            .collect()
    }

    /// For every booklet type: stock, booklets personalised in the last
    /// `window_days` (at most [`FORECAST_WINDOW_DAYS_MAX`]) before `now_ms`,
    /// and the days of stock that rate leaves.
    pub async fn stock_forecasts(
        &self,
        site: Option<&str>,
        now_ms: i64,
        window_days: u32,
    ) -> Result<Vec<StockForecast>> {
        let window_days = window_days.clamp(1, FORECAST_WINDOW_DAYS_MAX);
        let levels = self.stock_levels(site).await?;
        let issued = self
            .booklets_personalised_since(site, now_ms - i64::from(window_days) * DAY_MS)
            .await?;
        Ok(BookletType::ALL
            .into_iter()
            .map(|t| {
                let in_stock = levels
                    .iter()
                    .filter(|l| l.booklet_type == t && l.state == BookletState::InStock)
                    .map(|l| l.count)
                    .sum();
                let issued = issued
                    .iter()
                    .filter(|(bt, _)| *bt == t)
                    .map(|(_, n)| *n)
                    .sum();
                StockForecast {
                    booklet_type: t,
                    in_stock,
                    issued,
                    window_days,
                    days_left: stock_forecast(in_stock, issued, window_days),
                }
            })
            .collect())
    }

    /// One booklet.
    pub async fn booklet(&self, serial: &str) -> Result<BookletRow> {
        let row = sqlx::query(
            "SELECT serial, booklet_type, site, state, state_since_ms, application_id, passport_number
             FROM booklets WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        booklet_from_row(&row)
    }

    /// A booklet's custody record, oldest first (at most [`BOOKLET_HISTORY_MAX`]).
    pub async fn booklet_history(&self, serial: &str) -> Result<Vec<BookletEventRow>> {
        let rows = sqlx::query(
            "SELECT serial, seq, from_state, to_state, event, detail, actor, at_ms
             FROM booklet_events WHERE serial = $1 ORDER BY seq LIMIT $2",
        )
        .bind(serial)
        .bind(i64::from(BOOKLET_HISTORY_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let from: Option<String> = r.try_get("from_state")?;
                Ok(BookletEventRow {
                    serial: r.try_get("serial")?,
                    seq: r.try_get("seq")?,
                    from_state: from.as_deref().map(parse_state).transpose()?,
                    to_state: parse_state(&r.try_get::<String, _>("to_state")?)?,
                    event: r.try_get("event")?,
                    detail: r.try_get("detail")?,
                    actor: r.try_get("actor")?,
                    at_ms: r.try_get("at_ms")?,
                })
            })
            .collect()
    }

    /// The passport number allocated to `holder` (an order, an emergency
    /// issue), if any.
    pub async fn passport_number_of(&self, holder: &str) -> Result<Option<PassportNumber>> {
        let row = sqlx::query("SELECT number FROM passport_numbers WHERE holder = $1")
            .bind(holder)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let n: String = r.try_get("number")?;
            PassportNumber::parse(&n).map_err(|e| StoreError::Other(e.to_string()))
        })
        .transpose()
    }
}
