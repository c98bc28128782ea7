//! Staff accounts, the offices they work for, their sessions and the sign-in
//! throttle. The rows hold what the server gives them: sealed display names and
//! TOTP secrets, Argon2id hashes, SHA-256 of session tokens, keyed hashes of
//! usernames. Policy (how many failures lock, for how long) is the caller's;
//! the store only applies it in one statement.
//!
//! Layout: accounts (`insert_staff`, `staff_by_username`, `staff_by_id`,
//! `staff_list`, `set_staff_active`, `use_totp_step`), the throttle
//! (`reserve_sign_in_attempt`, `forgive_sign_in_failures`, `sign_in_throttle`,
//! `record_sign_in_failure`, `clear_sign_in_failures`) and the account-wide ceiling
//! (`reserve_sign_in_check`, `release_sign_in_check`, `sign_in_ceiling`,
//! `forget_sign_in_attempts`), sessions (`insert_staff_session`,
//! `staff_session`, `touch_staff_session`, ...).
//!
//! Each reservation is one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`:
//! the row is locked (PostgreSQL) or the database is (SQLite) for the
//! statement, so concurrent attempts, from one server or several sharing a
//! PostgreSQL database, each see the count the previous one left.

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

/// How the throttle spaces and locks attempts; the store applies it in the
/// statement that counts an attempt.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy<'a> {
    /// `(failures, wait_ms)`, by increasing `failures`: once a key has
    /// counted at least `failures` attempts, the next one is refused until
    /// `wait_ms` after the last started (the largest `failures` reached
    /// applies). At most [`THROTTLE_BACKOFF_STEPS_MAX`] steps.
    pub backoff: &'a [(i64, i64)],
    /// The attempt that brings the count to this locks the key...
    pub lock_after_failures: i64,
    /// ...for this long from its start.
    pub lock_ms: i64,
}

/// Most back-off steps a [`ThrottlePolicy`] may have (each is a `WHEN` of
/// the statement).
pub const THROTTLE_BACKOFF_STEPS_MAX: usize = 16;

/// An attempt counted by [`Store::reserve_sign_in_attempt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Whether the attempt may be checked (not locked, not backing off).
    pub admitted: bool,
    /// The key's state after counting it.
    pub throttle: Throttle,
}

/// One account's password checks in the current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ceiling {
    pub window_start_ms: i64,
    pub checks: i64,
    /// Whether the last reservation was granted.
    pub admitted: bool,
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

fn ceiling_row(r: &AnyRow) -> Result<Ceiling> {
    Ok(Ceiling {
        window_start_ms: r.try_get("window_start_ms")?,
        checks: r.try_get("checks")?,
        admitted: r.try_get::<i64, _>("last_admitted")? == 1,
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

    /// Counts an attempt for `key` as it starts, and says in the same
    /// statement whether it may be checked: not while the key is locked,
    /// nor within the back-off after the last attempt, judged on the count
    /// before this one. Every attempt counts, refused or not (so an
    /// attacker who keeps trying stays locked); the attempt that reaches
    /// `lock_after_failures` locks the key until `now_ms + lock_ms`. A
    /// successful attempt is forgotten by [`Store::forgive_sign_in_failures`].
    ///
    /// Attempts started together may arrive with their clocks a little out
    /// of order (several servers, or a request that waited for a
    /// connection): `last_failure_ms` never goes back, and an attempt
    /// before any back-off applies is never refused for arriving "early".
    pub async fn reserve_sign_in_attempt(
        &self,
        key: &str,
        now_ms: i64,
        policy: &ThrottlePolicy<'_>,
    ) -> Result<Reservation> {
        assert!(
            policy.backoff.len() <= THROTTLE_BACKOFF_STEPS_MAX,
            "too many back-off steps"
        );
        assert!(
            policy.backoff.windows(2).all(|w| w[0].0 < w[1].0),
            "back-off steps by increasing failures"
        );
        // The largest step reached decides: test them from the largest down.
        let mut wait = String::from("CASE");
        for i in (0..policy.backoff.len()).rev() {
            let (f, w) = (5 + 2 * i, 6 + 2 * i);
            wait.push_str(&format!(
                " WHEN sign_in_throttle.failures >= ${f} THEN ${w}"
            ));
        }
        wait.push_str(" ELSE 0 END");
        let sql = format!(
            "INSERT INTO sign_in_throttle (key, failures, last_failure_ms, locked_until_ms, last_admitted)
             VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $4 ELSE 0 END, 1)
             ON CONFLICT (key) DO UPDATE SET
               failures = sign_in_throttle.failures + 1,
               last_failure_ms = CASE WHEN $2 > sign_in_throttle.last_failure_ms THEN $2
                                      ELSE sign_in_throttle.last_failure_ms END,
               locked_until_ms = CASE WHEN sign_in_throttle.failures + 1 >= $3 THEN $4
                                      ELSE sign_in_throttle.locked_until_ms END,
               last_admitted = CASE WHEN sign_in_throttle.locked_until_ms > $2 THEN 0
                                    WHEN ({wait}) > 0
                                     AND $2 < sign_in_throttle.last_failure_ms + ({wait}) THEN 0
                                    ELSE 1 END
             RETURNING failures, last_failure_ms, locked_until_ms, last_admitted"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(now_ms)
            .bind(policy.lock_after_failures)
            .bind(now_ms.saturating_add(policy.lock_ms));
        for &(failures, wait_ms) in policy.backoff {
            q = q.bind(failures).bind(wait_ms);
        }
        let r = q.fetch_one(&self.pool).await?;
        Ok(Reservation {
            admitted: r.try_get::<i64, _>("last_admitted")? == 1,
            throttle: Throttle {
                failures: r.try_get("failures")?,
                last_failure_ms: r.try_get("last_failure_ms")?,
                locked_until_ms: r.try_get("locked_until_ms")?,
            },
        })
    }

    /// After a successful attempt that counted `failures` (its own
    /// included): takes those off the key, keeping what other attempts
    /// counted meanwhile, and lifts the lock unless they alone still reach
    /// `lock_after_failures`. The row goes when nothing is left. (A plain
    /// delete would also forgive the guesses of a burst the success landed
    /// in the middle of.)
    pub async fn forgive_sign_in_failures(
        &self,
        key: &str,
        failures: i64,
        lock_after_failures: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE sign_in_throttle SET
               failures = CASE WHEN failures > $2 THEN failures - $2 ELSE 0 END,
               locked_until_ms = CASE WHEN failures - $2 >= $3 THEN locked_until_ms ELSE 0 END
             WHERE key = $1",
        )
        .bind(key)
        .bind(failures)
        .bind(lock_after_failures)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1 AND failures = 0")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub async fn clear_sign_in_failures(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // -- The account-wide ceiling --------------------------------------------

    /// Reserves one password check of `key` in its current window (of
    /// `window_ms`, starting at the first check after the last window
    /// ended): granted while fewer than `checks_max` were, refused (and not
    /// counted) after. One statement, so concurrent reservations never
    /// pass the ceiling.
    pub async fn reserve_sign_in_check(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
        checks_max: i64,
    ) -> Result<Ceiling> {
        assert!(
            checks_max >= 1 && window_ms >= 1,
            "a ceiling that lets nothing through"
        );
        let r = sqlx::query(
            "INSERT INTO sign_in_ceiling (key, window_start_ms, checks, last_admitted)
             VALUES ($1, $2, 1, 1)
             ON CONFLICT (key) DO UPDATE SET
               window_start_ms = CASE WHEN sign_in_ceiling.window_start_ms + $3 <= $2 THEN $2
                                      ELSE sign_in_ceiling.window_start_ms END,
               checks = CASE WHEN sign_in_ceiling.window_start_ms + $3 <= $2 THEN 1
                             WHEN sign_in_ceiling.checks < $4 THEN sign_in_ceiling.checks + 1
                             ELSE sign_in_ceiling.checks END,
               last_admitted = CASE WHEN sign_in_ceiling.window_start_ms + $3 <= $2 THEN 1
                                    WHEN sign_in_ceiling.checks < $4 THEN 1
                                    ELSE 0 END
             RETURNING window_start_ms, checks, last_admitted",
        )
        .bind(key)
        .bind(now_ms)
        .bind(window_ms)
        .bind(checks_max)
        .fetch_one(&self.pool)
        .await?;
        ceiling_row(&r)
    }

    /// Gives back a check reserved in the window starting at
    /// `window_start_ms` (it was not a wrong guess: the sign-in succeeded).
    pub async fn release_sign_in_check(&self, key: &str, window_start_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE sign_in_ceiling SET checks = checks - 1
             WHERE key = $1 AND window_start_ms = $2 AND checks > 0",
        )
        .bind(key)
        .bind(window_start_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn sign_in_ceiling(&self, key: &str) -> Result<Option<Ceiling>> {
        let row = sqlx::query(
            "SELECT window_start_ms, checks, last_admitted FROM sign_in_ceiling WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ceiling_row).transpose()
    }

    /// Deletes throttle rows whose last attempt started before `before_ms`
    /// and whose lock has run out, and ceiling windows that started before
    /// it, so the tables follow recent attempts, not every username and
    /// address ever tried. Returns how many rows went.
    pub async fn forget_sign_in_attempts(&self, before_ms: i64) -> Result<u64> {
        let a = sqlx::query(
            "DELETE FROM sign_in_throttle WHERE last_failure_ms < $1 AND locked_until_ms < $1",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?;
        let b = sqlx::query("DELETE FROM sign_in_ceiling WHERE window_start_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(a.rows_affected() + b.rows_affected())
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
