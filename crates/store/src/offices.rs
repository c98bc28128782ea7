//! Offices, their one-off closures, their capacity cuts (days with fewer
//! counters; the last two also written inside a caller's transaction by
//! re-seating, see `bookings.rs`), and their release policies (mode and
//! capacity split per pool).

use crate::{CacheScope, Result, Store, StoreError, Tx, bump_generations_in, to_i64, to_u32};
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::calendar::Closure;
use pasaporte_core::jiff::civil::{Date, Weekday};
use pasaporte_core::jiff::tz::TimeZone;
use pasaporte_core::office::{Office, OfficeKind, WeeklyHours};
use pasaporte_core::shares::{OfficePolicy, ReleaseMode, Shares};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

const WEEK: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

fn hours_text(h: &WeeklyHours) -> String {
    WEEK.iter()
        .map(|d| h.format_day(*d))
        .collect::<Vec<_>>()
        .join("|")
}

fn office_from_row(r: &AnyRow) -> Result<Office> {
    let bad = |what: &str| StoreError::Other(format!("stored office has a bad {what}"));
    let mut hours = WeeklyHours::default();
    let text: String = r.try_get("hours")?;
    for (d, spec) in WEEK.iter().zip(text.split('|')) {
        hours.set(*d, WeeklyHours::parse_day(spec).map_err(|_| bad("hours"))?);
    }
    let tz: String = r.try_get("time_zone")?;
    let kind: String = r.try_get("kind")?;
    Ok(Office {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        kind: OfficeKind::parse(&kind).ok_or_else(|| bad("kind"))?,
        city: r.try_get("city")?,
        country: r.try_get("country")?,
        time_zone: TimeZone::get(&tz).map_err(|_| bad("time zone"))?,
        hours,
        counters: to_u32(r.try_get("counters")?),
        service_minutes: to_u32(r.try_get("service_minutes")?),
        slot_minutes: to_u32(r.try_get("slot_minutes")?),
        horizon_days: to_u32(r.try_get("horizon_days")?),
    })
}

fn policy_from_row(r: &AnyRow) -> Result<OfficePolicy> {
    let bad = || StoreError::Other("stored office policy is not valid".into());
    let pct =
        |col: &str| -> Result<u32> { u32::try_from(r.try_get::<i64, _>(col)?).map_err(|_| bad()) };
    let mode: String = r.try_get("release_mode")?;
    Ok(OfficePolicy {
        mode: ReleaseMode::parse(&mode).ok_or_else(bad)?,
        shares: Shares::new(
            pct("online_pct")?,
            pct("urgent_pct")?,
            pct("walk_in_pct")?,
            pct("priority_pct")?,
        )
        .map_err(|_| bad())?,
    })
}

const POLICY_COLUMNS: &str =
    "office_code, release_mode, online_pct, urgent_pct, walk_in_pct, priority_pct";

const OFFICE_COLUMNS: &str = "code, name, kind, city, country, time_zone, hours, counters, service_minutes, slot_minutes, horizon_days";

impl Store {
    /// Adds an office or replaces its description (bookings are untouched).
    pub async fn upsert_office(&self, o: &Office) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO offices (code, name, kind, city, country, time_zone, hours, counters, service_minutes, slot_minutes, horizon_days)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, city = excluded.city,
               country = excluded.country, time_zone = excluded.time_zone, hours = excluded.hours,
               counters = excluded.counters, service_minutes = excluded.service_minutes,
               slot_minutes = excluded.slot_minutes, horizon_days = excluded.horizon_days",
        )
        .bind(&o.code)
        .bind(&o.name)
        .bind(o.kind.as_str())
        .bind(&o.city)
        .bind(&o.country)
        .bind(o.time_zone_name().to_string())
        .bind(hours_text(&o.hours))
        .bind(to_i64(o.counters))
        .bind(to_i64(o.service_minutes))
        .bind(to_i64(o.slot_minutes))
        .bind(to_i64(o.horizon_days))
        .execute(&mut *tx)
        .await?;
        bump_generations_in(&mut tx, [CacheScope::Offices]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// All offices, by code.
    pub async fn offices(&self) -> Result<Vec<Office>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {OFFICE_COLUMNS} FROM offices ORDER BY code"
        ));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(office_from_row).collect()
    }

    pub async fn office(&self, code: &str) -> Result<Office> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {OFFICE_COLUMNS} FROM offices WHERE code = $1"
        ));
        let row = sqlx::query(sql)
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        office_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    /// Closes an office for one local date (replacing the reason if already closed).
    pub async fn add_closure(&self, office: &str, day: Date, reason: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_closure_in(&mut tx, office, day, reason).await?;
        bump_generations_in(&mut tx, [CacheScope::Offices]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reopens the office on `day`. Re-seating capped the day's slots at no
    /// seat; the empty ones are forgotten so the calendar's capacity applies
    /// again (unless the day also has a capacity cut, whose capped slots
    /// stay: post the cut again to set them to its capacity).
    pub async fn remove_closure(&self, office: &str, day: Date) -> Result<()> {
        let bounds = match self.office(office).await {
            Ok(o) => {
                let tz = o.time_zone.clone();
                let ms = |d: Date| {
                    d.to_zoned_datetime(tz.clone())
                        .map(|z| z.timestamp().as_millisecond())
                        .map_err(|e| StoreError::Other(e.to_string()))
                };
                let next = day
                    .tomorrow()
                    .map_err(|e| StoreError::Other(e.to_string()))?;
                Some((ms(day)?, ms(next)?))
            }
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM closures WHERE office_code = $1 AND day = $2")
            .bind(office)
            .bind(day.to_string())
            .execute(&mut *tx)
            .await?;
        if let Some((from, to)) = bounds {
            sqlx::query(
                "DELETE FROM slot_seats WHERE office_code = $1 AND start_ms >= $2 AND start_ms < $3 AND booked = 0
                   AND NOT EXISTS (SELECT 1 FROM capacity_cuts c WHERE c.office_code = $1 AND c.day = $4)",
            )
            .bind(office)
            .bind(from)
            .bind(to)
            .bind(day.to_string())
            .execute(&mut *tx)
            .await?;
        }
        bump_generations_in(
            &mut tx,
            [CacheScope::Offices, CacheScope::Seats(office.to_string())],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The office's closures, oldest first.
    pub async fn closures(&self, office: &str) -> Result<Vec<Closure>> {
        let rows =
            sqlx::query("SELECT day, reason FROM closures WHERE office_code = $1 ORDER BY day")
                .bind(office)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let day: String = r.try_get("day")?;
                Ok(Closure {
                    date: day
                        .parse()
                        .map_err(|_| StoreError::Other("stored closure has a bad date".into()))?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// The office's stored release policy; `None` when it has none (and so
    /// gets [`OfficePolicy::default`]).
    pub async fn office_policy(&self, code: &str) -> Result<Option<OfficePolicy>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {POLICY_COLUMNS} FROM office_policies WHERE office_code = $1"
        ));
        let row = sqlx::query(sql)
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    /// Every stored policy, by office code.
    pub async fn office_policies(&self) -> Result<BTreeMap<String, OfficePolicy>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {POLICY_COLUMNS} FROM office_policies"));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("office_code")?, policy_from_row(r)?)))
            .collect()
    }

    /// Sets the office's release policy, with `event` (its audit record) in
    /// the same transaction. `NotFound` for an unknown office.
    pub async fn set_office_policy(
        &self,
        code: &str,
        policy: &OfficePolicy,
        event: &AuditEvent,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let known = sqlx::query("SELECT code FROM offices WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(StoreError::NotFound);
        }
        let s = &policy.shares;
        sqlx::query(
            "INSERT INTO office_policies (office_code, release_mode, online_pct, urgent_pct, walk_in_pct, priority_pct, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (office_code) DO UPDATE SET release_mode = excluded.release_mode,
               online_pct = excluded.online_pct, urgent_pct = excluded.urgent_pct,
               walk_in_pct = excluded.walk_in_pct, priority_pct = excluded.priority_pct,
               updated_ms = excluded.updated_ms",
        )
        .bind(code)
        .bind(policy.mode.as_str())
        .bind(to_i64(s.online()))
        .bind(to_i64(s.urgent()))
        .bind(to_i64(s.walk_in()))
        .bind(to_i64(s.priority()))
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        crate::append_audit_event(&mut tx, event).await?;
        bump_generations_in(&mut tx, [CacheScope::Offices]).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A day on which an office runs `counters` counters instead of its usual number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityCut {
    pub date: Date,
    pub counters: u32,
    pub reason: String,
}

/// Closes an office for one local date inside `tx` (replacing the reason if
/// already closed): visible only with the re-seating it is committed with.
/// The caller bumps [`CacheScope::Offices`] before it commits.
pub async fn insert_closure_in(tx: &mut Tx, office: &str, day: Date, reason: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO closures (office_code, day, reason) VALUES ($1, $2, $3)
         ON CONFLICT (office_code, day) DO UPDATE SET reason = excluded.reason",
    )
    .bind(office)
    .bind(day.to_string())
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a capacity cut inside `tx` (replacing an earlier one for the day).
/// The caller bumps [`CacheScope::Offices`] before it commits.
pub async fn insert_capacity_cut_in(
    tx: &mut Tx,
    office: &str,
    day: Date,
    counters: u32,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO capacity_cuts (office_code, day, counters, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (office_code, day) DO UPDATE SET counters = excluded.counters, reason = excluded.reason",
    )
    .bind(office)
    .bind(day.to_string())
    .bind(to_i64(counters))
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The office's capacity cuts, oldest first.
    pub async fn capacity_cuts(&self, office: &str) -> Result<Vec<CapacityCut>> {
        let rows = sqlx::query(
            "SELECT day, counters, reason FROM capacity_cuts WHERE office_code = $1 ORDER BY day",
        )
        .bind(office)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let day: String = r.try_get("day")?;
                Ok(CapacityCut {
                    date: day.parse().map_err(|_| {
                        StoreError::Other("stored capacity cut has a bad date".into())
                    })?,
                    counters: to_u32(r.try_get("counters")?),
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }
}
