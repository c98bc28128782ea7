//! Staff accounts, the offices they work for, their sessions and the sign-in
//! throttle. The rows hold what the server gives them: sealed display names and
//! TOTP secrets, Argon2id hashes, SHA-256 of session tokens, keyed hashes of
//! usernames. Policy (how many failures lock, for how long) is the caller's;
//! the store only applies it in one statement.
//!
//! Layout: accounts (`insert_staff`, `staff_by_username`, `staff_by_id`,
//! `staff_list`, `set_staff_active`, `use_totp_step`), the throttle
//! (`sign_in_throttle`, `record_sign_in_failure`, `clear_sign_in_failures`),
//! sessions (`insert_staff_session`, `staff_session`, `touch_staff_session`, ...).

use crate::{Result, Store};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Most accounts one listing returns: a ministry has a few thousand staff.
pub const STAFF_LIST_MAX: u32 = 10_000;
/// Most offices one account may be assigned (one per office in the country
/// and abroad, with room to spare).
pub const STAFF_OFFICES_MAX: usize = 512;

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffRow {
    pub id: String,
    pub username: String,
    pub display_name_enc: String,
    /// `clerk`, `supervisor`, `administrator` or `auditor`.
    pub role: String,
    pub password_hash: String,
    pub totp_secret_enc: String,
    /// The last accepted TOTP step (-1: none yet).
    pub totp_last_step: i64,
    pub active: bool,
    pub created_ms: i64,
    /// Office codes, sorted; `*` is every office.
    pub offices: Vec<String>,
}

/// A new account; `totp_last_step` starts at -1 and `active` at true.
#[derive(Clone, Debug)]
pub struct NewStaffRow {
    pub id: String,
    pub username: String,
    pub display_name_enc: String,
    pub role: String,
    pub password_hash: String,
    pub totp_secret_enc: String,
    pub created_ms: i64,
    pub offices: Vec<String>,
}

/// Consecutive failed sign-ins for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    pub failures: i64,
    pub last_failure_ms: i64,
    /// 0 when not locked.
    pub locked_until_ms: i64,
}

/// A staff session as stored (the token itself never is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub staff_id: String,
    pub csrf: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub authenticated_at_ms: i64,
}

const STAFF_COLUMNS: &str = "id, username, display_name_enc, role, password_hash, totp_secret_enc, totp_last_step, active, created_ms";
const SESSION_COLUMNS: &str =
    "token_hash, staff_id, csrf, created_ms, last_seen_ms, authenticated_at_ms";

fn staff_row(r: &AnyRow) -> Result<StaffRow> {
    Ok(StaffRow {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name_enc: r.try_get("display_name_enc")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        totp_secret_enc: r.try_get("totp_secret_enc")?,
        totp_last_step: r.try_get("totp_last_step")?,
        active: r.try_get::<i64, _>("active")? == 1,
        created_ms: r.try_get("created_ms")?,
        offices: Vec::new(),
    })
}

fn session_row(r: &AnyRow) -> Result<SessionRow> {
    Ok(SessionRow {
        token_hash: r.try_get("token_hash")?,
        staff_id: r.try_get("staff_id")?,
        csrf: r.try_get("csrf")?,
        created_ms: r.try_get("created_ms")?,
        last_seen_ms: r.try_get("last_seen_ms")?,
        authenticated_at_ms: r.try_get("authenticated_at_ms")?,
    })
}

impl Store {
    /// Creates an account with its offices in one transaction. A username
    /// already taken is `Conflict { constraint: "staff_username_unique" }` (or
    /// the database's message naming it).
    pub async fn insert_staff(&self, s: &NewStaffRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO staff (id, username, display_name_enc, role, password_hash, totp_secret_enc, totp_last_step, active, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, -1, 1, $7)",
        )
        .bind(&s.id)
        .bind(&s.username)
        .bind(&s.display_name_enc)
        .bind(&s.role)
        .bind(&s.password_hash)
        .bind(&s.totp_secret_enc)
        .bind(s.created_ms)
        .execute(&mut *tx)
        .await?;
        for office in s.offices.iter().take(STAFF_OFFICES_MAX) {
            sqlx::query("INSERT INTO staff_offices (staff_id, office_code) VALUES ($1, $2)")
                .bind(&s.id)
                .bind(office)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn with_offices(&self, mut row: StaffRow) -> Result<StaffRow> {
        let rows = sqlx::query(
            "SELECT office_code FROM staff_offices WHERE staff_id = $1 ORDER BY office_code",
        )
        .bind(&row.id)
        .fetch_all(&self.pool)
        .await?;
        row.offices = rows
            .iter()
            .map(|r| r.try_get("office_code"))
            .collect::<std::result::Result<_, _>>()?;
        Ok(row)
    }

    pub async fn staff_by_username(&self, username: &str) -> Result<Option<StaffRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE username = $1"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(self.with_offices(staff_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    pub async fn staff_by_id(&self, id: &str) -> Result<Option<StaffRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(self.with_offices(staff_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// Every account (at most [`STAFF_LIST_MAX`]), by username.
    pub async fn staff_list(&self) -> Result<Vec<StaffRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STAFF_COLUMNS} FROM staff ORDER BY username LIMIT $1"
        )))
        .bind(i64::from(STAFF_LIST_MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.with_offices(staff_row(r)?).await?);
        }
        Ok(out)
    }

    /// Activates or deactivates an account; deactivating also ends its sessions.
    pub async fn set_staff_active(&self, id: &str, active: bool) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE staff SET active = $2 WHERE id = $1")
            .bind(id)
            .bind(i64::from(active))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound);
        }
        if !active {
            sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks TOTP step `step` used by `staff_id`. False when that step (or a
    /// later one) was already used: one statement, so two requests racing
    /// with the same code cannot both win.
    pub async fn use_totp_step(&self, staff_id: &str, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE staff SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
        )
        .bind(staff_id)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // -- The throttle --------------------------------------------------------

    pub async fn sign_in_throttle(&self, key: &str) -> Result<Option<Throttle>> {
        let row = sqlx::query(
            "SELECT failures, last_failure_ms, locked_until_ms FROM sign_in_throttle WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Throttle {
                failures: r.try_get("failures")?,
                last_failure_ms: r.try_get("last_failure_ms")?,
                locked_until_ms: r.try_get("locked_until_ms")?,
            })
        })
        .transpose()
    }

    /// Counts one more failure for `key` at `now_ms`; when the count reaches
    /// `lock_after_failures`, the key is locked until `lock_until_ms`. One
    /// upsert, so concurrent failures all count.
    pub async fn record_sign_in_failure(
        &self,
        key: &str,
        now_ms: i64,
        lock_after_failures: i64,
        lock_until_ms: i64,
    ) -> Result<Throttle> {
        sqlx::query(
            "INSERT INTO sign_in_throttle (key, failures, last_failure_ms, locked_until_ms)
             VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $4 ELSE 0 END)
             ON CONFLICT (key) DO UPDATE SET
               failures = sign_in_throttle.failures + 1,
               last_failure_ms = $2,
               locked_until_ms = CASE WHEN sign_in_throttle.failures + 1 >= $3 THEN $4
                                      ELSE sign_in_throttle.locked_until_ms END",
        )
        .bind(key)
        .bind(now_ms)
        .bind(lock_after_failures)
        .bind(lock_until_ms)
        .execute(&self.pool)
        .await?;
        self.sign_in_throttle(key)
            .await?
            .ok_or(crate::StoreError::NotFound)
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub async fn clear_sign_in_failures(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // -- Sessions ------------------------------------------------------------

    pub async fn insert_staff_session(&self, s: &SessionRow) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO staff_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        )))
        .bind(&s.token_hash)
        .bind(&s.staff_id)
        .bind(&s.csrf)
        .bind(s.created_ms)
        .bind(s.last_seen_ms)
        .bind(s.authenticated_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn staff_session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM staff_sessions WHERE token_hash = $1"
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_row).transpose()
    }

    /// Every session of one account (for tests and for an administrator's view).
    pub async fn staff_sessions_of(&self, staff_id: &str) -> Result<Vec<SessionRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM staff_sessions WHERE staff_id = $1 ORDER BY created_ms"
        )))
        .bind(staff_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_row).collect()
    }

    pub async fn touch_staff_session(&self, token_hash: &str, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE staff_sessions SET last_seen_ms = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a password entry (re-authentication) at `at_ms`. Tests also
    /// use it to back-date a sign-in instead of waiting.
    pub async fn set_session_authenticated_at(&self, token_hash: &str, at_ms: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE staff_sessions SET authenticated_at_ms = $2, last_seen_ms = $2 WHERE token_hash = $1",
        )
        .bind(token_hash)
        .bind(at_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn delete_staff_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes sessions idle since before `idle_before_ms` or created before
    /// `created_before_ms`; returns how many.
    pub async fn delete_expired_staff_sessions(
        &self,
        idle_before_ms: i64,
        created_before_ms: i64,
    ) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM staff_sessions WHERE last_seen_ms < $1 OR created_ms < $2")
                .bind(idle_before_ms)
                .bind(created_before_ms)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }
}
