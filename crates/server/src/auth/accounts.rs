//! The staff use cases: create an account, sign in (password and code in one
//! step), re-authenticate, sign out, and find the session a token names.
//!
//! Every refusal of a sign-in is the same [`SignInError::Refused`], whether the
//! username is unknown, the password or the code wrong, the code used before,
//! or the account locked or inactive: the answer tells an attacker nothing. An
//! unknown username is still checked against a dummy Argon2 hash so the time
//! taken tells nothing either.
//!
//! Guessing is bounded twice, and both bounds hold for unknown usernames too
//! (keys are keyed hashes of the username, so no username is stored in clear):
//!
//! - **Per account and client address** ([`throttle_key`]; an IPv6 client by
//!   its /64): from the [`SIGN_IN_BACKOFF_AFTER_FAILURES`]th attempt since the
//!   last success on, attempts within `2^(failures - 2)` seconds of the last
//!   are refused without checking; the [`SIGN_IN_LOCK_AFTER_FAILURES`]th locks
//!   the pair for [`SIGN_IN_LOCK_MINUTES`]. An attempt is counted when it
//!   starts, in the statement that decides whether it may be checked
//!   (`Store::reserve_sign_in_attempt`), so attempts sent together, to one
//!   server or several sharing PostgreSQL, cannot all read the count before
//!   any writes it. Refused attempts count too (an attacker who keeps trying
//!   stays locked). A lock-out from one address does not lock the account out
//!   from another: five anonymous requests no longer shut its owner out.
//! - **Per account, from everywhere** ([`account_key`]): at most
//!   [`SIGN_IN_ACCOUNT_CHECKS_MAX`] password checks per
//!   [`SIGN_IN_ACCOUNT_WINDOW_MINUTES`] (`Store::reserve_sign_in_check`), so
//!   a guess spread over many addresses still gets few tries; a successful
//!   sign-in gives its check back (it was not a guess).
//!
//! A successful sign-in forgives the attempts its (account, address) pair
//! had counted up to and including it (not those counted meanwhile by a
//! burst it landed in). Refusing
//! (rather than sleeping) holds no connection open for the attacker and no
//! task for us, and a refused attempt runs no Argon2 (the refusal depends on
//! the key alone, so it says nothing about the account).
//!
//! Password checks run under [`password::PasswordChecks`]: when every permit
//! is taken the attempt is answered [`SignInError::Busy`] at once, before it
//! is counted.

use super::session::{self, expired, new_token, token_hash};
use super::{StaffSession, password, totp};
use crate::crypto::{Keyring, at};
use pasaporte_core::application::Role;
use pasaporte_core::policy::STAFF_ROLES;
use pasaporte_store::{NewStaffRow, SessionRow, StaffRow, Store, StoreError, ThrottlePolicy};
use std::net::IpAddr;

/// Shortest username.
pub const USERNAME_CHARS_MIN: usize = 3;
/// Longest username (fits a column on every screen and a TOTP label).
pub const USERNAME_CHARS_MAX: usize = 64;
/// Longest display name.
pub const DISPLAY_NAME_CHARS_MAX: usize = 200;
/// Longest office code accepted for an assignment (codes are short: `BOG-CEN`).
pub const OFFICE_CODE_CHARS_MAX: usize = 32;
/// From this many consecutive failures on, attempts are spaced out.
pub const SIGN_IN_BACKOFF_AFTER_FAILURES: i64 = 3;
/// This many consecutive failures lock the username from that address.
pub const SIGN_IN_LOCK_AFTER_FAILURES: i64 = 5;
/// How long a lock lasts: long enough to make guessing hopeless (at most
/// 5 guesses per 15 minutes), short enough that a person who mistyped can
/// work again before their queue grows.
pub const SIGN_IN_LOCK_MINUTES: i64 = 15;
/// Longest back-off between attempts (before the lock takes over).
pub const SIGN_IN_BACKOFF_SECONDS_MAX: i64 = 60;
/// Password checks one account may take per window from all addresses
/// together. Twenty addresses' worth of lock-outs: a distributed guess gets
/// 100 tries per 15 minutes (under 10,000 a day, against passwords zxcvbn
/// puts at 10^10 guesses, and a TOTP code besides), while locking the
/// owner out this way takes many addresses, not five requests.
pub const SIGN_IN_ACCOUNT_CHECKS_MAX: i64 = 100;
/// The account-wide window.
pub const SIGN_IN_ACCOUNT_WINDOW_MINUTES: i64 = 15;
/// What a busy answer (every password check taken) asks the client to wait:
/// a check takes tens of milliseconds, so permits free up within a second.
pub const SIGN_IN_BUSY_RETRY_SECONDS: u64 = 1;
/// How long throttle rows and ceiling windows are kept after their last
/// attempt (locks last 15 minutes; a day is plenty to see a pattern).
pub const SIGN_IN_ATTEMPTS_KEPT_HOURS: i64 = 24;

/// Why a username was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a username has 3 to 64 characters: lowercase letters a-z, digits, '.', '_' or '-'")]
pub struct BadUsername;

/// A username as stored: trimmed, lowercase, 3–64 of `[a-z0-9._-]`.
pub fn parse_username(s: &str) -> Result<String, BadUsername> {
    let u = s.trim().to_lowercase();
    let ok = (USERNAME_CHARS_MIN..=USERNAME_CHARS_MAX).contains(&u.len())
        && u.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok { Ok(u) } else { Err(BadUsername) }
}

/// A staff role by name (`clerk`, `supervisor`, `administrator`, `auditor`).
pub fn parse_staff_role(s: &str) -> Option<Role> {
    Role::parse(s.trim()).filter(|r| STAFF_ROLES.contains(r))
}

/// What it takes to create an account.
#[derive(Clone, Debug)]
pub struct NewStaff {
    pub username: String,
    /// Shown in the console header; the username when absent.
    pub display_name: Option<String>,
    pub role: Role,
    /// Office codes; `*` is every office.
    pub offices: Vec<String>,
    pub password: String,
}

/// A created account and its TOTP secret, shown once to be enrolled in an
/// authenticator app and never again.
#[derive(Clone, Debug)]
pub struct CreatedStaff {
    pub id: String,
    pub username: String,
    pub totp_secret_base32: String,
    pub otpauth_uri: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateStaffError {
    #[error(transparent)]
    Username(#[from] BadUsername),
    #[error("{0}")]
    Password(password::PasswordProblem),
    #[error("the role must be clerk, supervisor, administrator or auditor")]
    Role,
    #[error("give at least one office code, or '*' for every office")]
    NoOffice,
    #[error("office code '{0}' is not valid (letters, digits and '-', or '*')")]
    Office(String),
    #[error("the display name has more than {DISPLAY_NAME_CHARS_MAX} characters")]
    DisplayName,
    #[error("that username is already taken")]
    Taken,
    #[error(transparent)]
    Store(StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

/// Creates an account: checks the username, role, offices and password
/// policy, hashes the password, seals the display name and a fresh TOTP secret.
pub async fn create_staff(
    store: &Store,
    keys: &Keyring,
    new: NewStaff,
    now_ms: i64,
) -> Result<CreatedStaff, CreateStaffError> {
    let username = parse_username(&new.username)?;
    if !STAFF_ROLES.contains(&new.role) {
        return Err(CreateStaffError::Role);
    }
    let mut offices: Vec<String> = Vec::new();
    for o in &new.offices {
        let o = o.trim().to_uppercase();
        let valid = o == "*"
            || (!o.is_empty()
                && o.len() <= OFFICE_CODE_CHARS_MAX
                && o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !valid {
            return Err(CreateStaffError::Office(o));
        }
        if !offices.contains(&o) {
            offices.push(o);
        }
    }
    if offices.is_empty() {
        return Err(CreateStaffError::NoOffice);
    }
    if offices.len() > pasaporte_store::STAFF_OFFICES_MAX {
        return Err(CreateStaffError::Office(format!(
            "more than {} offices",
            pasaporte_store::STAFF_OFFICES_MAX
        )));
    }
    let display_name = new
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(&username)
        .to_string();
    if display_name.chars().count() > DISPLAY_NAME_CHARS_MAX {
        return Err(CreateStaffError::DisplayName);
    }
    password::check_policy(&new.password, &username).map_err(CreateStaffError::Password)?;
    let internal = |e: &dyn std::fmt::Display| CreateStaffError::Internal(e.to_string());
    let password_hash = password::hash(&new.password)
        .await
        .map_err(|e| internal(&e))?;
    let secret = totp::new_secret().map_err(|e| internal(&e))?;
    let otpauth_uri = totp::otpauth_uri(&secret, &username).map_err(|e| internal(&e))?;
    let id = uuid::Uuid::now_v7().to_string();
    let row = NewStaffRow {
        id: id.clone(),
        username: username.clone(),
        display_name_enc: keys
            .seal(at::staff_display_name(&id), &display_name)
            .map_err(|e| internal(&e))?,
        role: new.role.as_str().to_string(),
        password_hash,
        totp_secret_enc: keys
            .seal(at::staff_totp_secret(&id), &secret)
            .map_err(|e| internal(&e))?,
        created_ms: now_ms,
        offices,
    };
    match store.insert_staff(&row).await {
        Ok(()) => {}
        // The only unique column a new row can collide on is the username
        // (SQLite names the column, PostgreSQL the constraint).
        Err(StoreError::Conflict { constraint }) if constraint.contains("username") => {
            return Err(CreateStaffError::Taken);
        }
        Err(e) => return Err(CreateStaffError::Store(e)),
    }
    tracing::info!(staff_id = %id, role = %new.role, "staff account created");
    let mut event = pasaporte_core::audit::AuditEvent::by(
        &pasaporte_core::application::Actor {
            id: "cli:staff-add".into(),
            role: Role::Administrator,
        },
        now_ms,
        "staff.created",
        row.offices.join(" "),
        id.clone(),
    );
    event.detail = format!("role {}", new.role.as_str());
    append_audit(store, &event).await;
    Ok(CreatedStaff {
        id,
        username,
        totp_secret_base32: secret,
        otpauth_uri,
    })
}

/// A new session: the token goes to the browser, the CSRF token to forms and
/// API clients.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub token: String,
    pub session: StaffSession,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown user, wrong password or code, a code used before, locked or
    /// inactive: deliberately one case.
    #[error("wrong username, password or code")]
    Refused,
    /// Every password check is taken: try again in
    /// [`SIGN_IN_BUSY_RETRY_SECONDS`]. Nothing was counted or checked.
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

/// Who tries to sign in, from where and when, and the password checks it
/// may take a permit from.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    pub checks: &'a password::PasswordChecks,
    /// The client's address (the connection's peer); `None` in process.
    pub client: Option<IpAddr>,
    pub now_ms: i64,
}

/// The part of a client address the throttle keys by: an IPv4 address
/// whole, an IPv6 one by its /64 (one subscriber's network: a host picks
/// any address in it at will).
pub fn client_prefix(client: Option<IpAddr>) -> String {
    match client.map(|ip| ip.to_canonical()) {
        None => String::new(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The throttle key of a username tried from `client`: a keyed hash, so the
/// table names no one. (`person_key` is the Keyring's keyed hash; the
/// prefix keeps its inputs apart from the identity texts it hashes for
/// citizens.)
pub fn throttle_key(keys: &Keyring, username: &str, client: Option<IpAddr>) -> String {
    keys.person_key(&format!(
        "staff-sign-in\u{0}{}\u{0}{}",
        username.trim().to_lowercase(),
        client_prefix(client)
    ))
}

/// The account-wide ceiling's key of a username (from every address).
pub fn account_key(keys: &Keyring, username: &str) -> String {
    keys.person_key(&format!(
        "staff-sign-in-account\u{0}{}",
        username.trim().to_lowercase()
    ))
}

/// Seconds an attempt must wait after `failures` consecutive failures.
pub fn backoff_seconds(failures: i64) -> i64 {
    if failures < SIGN_IN_BACKOFF_AFTER_FAILURES {
        return 0;
    }
    let exp = u32::try_from(failures - 2).unwrap_or(u32::MAX).min(16);
    (1i64 << exp).min(SIGN_IN_BACKOFF_SECONDS_MAX)
}

/// The back-off as the store applies it: `(failures, wait_ms)` from the
/// first failure count that waits to the first that waits the longest.
fn backoff_steps() -> Vec<(i64, i64)> {
    let mut steps = Vec::new();
    let mut failures = SIGN_IN_BACKOFF_AFTER_FAILURES;
    loop {
        let wait = backoff_seconds(failures);
        steps.push((failures, wait * 1000));
        if wait >= SIGN_IN_BACKOFF_SECONDS_MAX {
            return steps;
        }
        failures += 1;
    }
}

/// Why a checked or unchecked attempt was refused, as the audit trail
/// records it (`staff.sign_in_failed`, `staff.reauthenticate_failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailedBecause {
    /// Spaced out or locked by the (account, address) throttle: not checked.
    Throttled,
    /// The account's ceiling of checks is reached: not checked.
    AccountCeiling,
    /// Checked: unknown user, wrong password or code, a code used before,
    /// or an inactive account (one case, as the answer is one case).
    Credentials,
    /// Re-authentication with another account's password.
    OtherAccount,
}

impl FailedBecause {
    fn as_str(self) -> &'static str {
        match self {
            FailedBecause::Throttled => "throttled",
            FailedBecause::AccountCeiling => "account_ceiling",
            FailedBecause::Credentials => "credentials",
            FailedBecause::OtherAccount => "other_account",
        }
    }
}

/// Records a refused sign-in or re-authentication (issue 12 item 6): the
/// account when the username names one (its staff id; `unknown` otherwise),
/// the throttle key (a keyed hash of username and address: no username in
/// clear, and the key the throttle's rows carry), the client's address and
/// why. Never the password or the code. Appended in its own transaction
/// like the sign-in's own event; the client limiter in front of the sign-in
/// routes (`http::limit_sign_in`) bounds how fast these can be made to grow.
async fn audit_failure(
    store: &Store,
    attempt: Attempt<'_>,
    action: &str,
    username: &str,
    throttle_key: &str,
    because: FailedBecause,
    known: Option<Option<&StaffRow>>,
) {
    let looked_up;
    // `Some(..)`: the check already looked the username up (found or not):
    // no second read, so an unknown username costs what a known one does.
    let account = match known {
        Some(a) => a,
        None => {
            looked_up = match parse_username(username) {
                Ok(u) => store.staff_by_username(&u).await.ok().flatten(),
                Err(_) => None,
            };
            looked_up.as_ref()
        }
    };
    let client = attempt
        .client
        .map_or_else(|| "-".to_string(), |ip| ip.to_canonical().to_string());
    let event = pasaporte_core::audit::AuditEvent {
        at_ms: attempt.now_ms,
        actor: account.map_or_else(|| "unknown".to_string(), |a| a.id.clone()),
        // Nobody is signed in: the role claimed is not known to be theirs.
        role: "unauthenticated".into(),
        action: action.into(),
        office: account.map_or_else(String::new, |a| a.offices.join(" ")),
        subject: throttle_key.into(),
        from_state: None,
        to_state: None,
        detail: format!("client={client} reason={}", because.as_str()),
    };
    append_audit(store, &event).await;
    super::refusals::count_failed_sign_in();
}

/// Checks `username`'s password and code under the throttle and the
/// account's ceiling; the account on success. A refusal is audited as
/// `action`.
async fn check_credentials(
    store: &Store,
    keys: &Keyring,
    attempt: Attempt<'_>,
    action: &str,
    username: &str,
    password_text: &str,
    code: &str,
) -> Result<StaffRow, SignInError> {
    let now_ms = attempt.now_ms;
    let Some(permit) = attempt.checks.try_start() else {
        tracing::warn!(
            checks_max = attempt.checks.max(),
            "staff sign-in answered busy: every password check is taken"
        );
        return Err(SignInError::Busy);
    };
    let key = throttle_key(keys, username, attempt.client);
    let backoff = backoff_steps();
    let policy = ThrottlePolicy {
        backoff: &backoff,
        lock_after_failures: SIGN_IN_LOCK_AFTER_FAILURES,
        lock_ms: SIGN_IN_LOCK_MINUTES * 60_000,
    };
    let reservation = store.reserve_sign_in_attempt(&key, now_ms, &policy).await?;
    let t = reservation.throttle;
    if !reservation.admitted {
        tracing::info!(
            failures = t.failures,
            locked = t.locked_until_ms > now_ms,
            "staff sign-in refused unchecked (throttled)"
        );
        let because = FailedBecause::Throttled;
        audit_failure(store, attempt, action, username, &key, because, None).await;
        return Err(SignInError::Refused);
    }
    let ceiling_key = account_key(keys, username);
    let ceiling = store
        .reserve_sign_in_check(
            &ceiling_key,
            now_ms,
            SIGN_IN_ACCOUNT_WINDOW_MINUTES * 60_000,
            SIGN_IN_ACCOUNT_CHECKS_MAX,
        )
        .await?;
    if !ceiling.admitted {
        tracing::warn!(
            checks = ceiling.checks,
            "staff sign-in refused unchecked: the account's ceiling of checks is reached"
        );
        let because = FailedBecause::AccountCeiling;
        audit_failure(store, attempt, action, username, &key, because, None).await;
        return Err(SignInError::Refused);
    }
    let account = match parse_username(username) {
        Ok(u) => store.staff_by_username(&u).await?,
        Err(_) => None,
    };
    // One Argon2 verification on every checked path, so time tells nothing.
    let hash = match &account {
        Some(a) => a.password_hash.clone(),
        None => password::dummy_hash().await.to_string(),
    };
    let password_ok = password::verify_with(permit, password_text, &hash).await;
    let accepted = match &account {
        Some(a) if password_ok && a.active => {
            let secret = keys
                .open(at::staff_totp_secret(&a.id), &a.totp_secret_enc)
                .map_err(|e| SignInError::Internal(e.to_string()))?;
            let now_s = u64::try_from(now_ms / 1000).unwrap_or(0);
            match totp::check(&secret, code, now_s) {
                Some(step) => {
                    let step = i64::try_from(step).unwrap_or(i64::MAX);
                    if store.use_totp_step(&a.id, step).await? {
                        Some(a.clone())
                    } else {
                        None
                    }
                }
                None => None,
            }
        }
        _ => None,
    };
    match accepted {
        Some(a) => {
            store
                .forgive_sign_in_failures(&key, t.failures, SIGN_IN_LOCK_AFTER_FAILURES)
                .await?;
            store
                .release_sign_in_check(&ceiling_key, ceiling.window_start_ms)
                .await?;
            Ok(a)
        }
        None => {
            tracing::info!(
                failures = t.failures,
                locked = t.locked_until_ms > now_ms,
                "staff sign-in refused"
            );
            let because = FailedBecause::Credentials;
            let known = Some(account.as_ref());
            audit_failure(store, attempt, action, username, &key, because, known).await;
            Err(SignInError::Refused)
        }
    }
}

fn staff_session(a: &StaffRow, s: &SessionRow) -> Option<StaffSession> {
    let role = parse_staff_role(&a.role)?;
    Some(StaffSession {
        staff_id: a.id.clone(),
        username: a.username.clone(),
        role,
        offices: a.offices.clone(),
        csrf: s.csrf.clone(),
        authenticated_at_ms: s.authenticated_at_ms,
        token_hash: s.token_hash.clone(),
    })
}

/// Signs in with username, password and the current code: a new session.
pub async fn sign_in(
    store: &Store,
    keys: &Keyring,
    attempt: Attempt<'_>,
    username: &str,
    password_text: &str,
    code: &str,
) -> Result<SignedIn, SignInError> {
    let now_ms = attempt.now_ms;
    let account = check_credentials(
        store,
        keys,
        attempt,
        "staff.sign_in_failed",
        username,
        password_text,
        code,
    )
    .await?;
    let internal = |e: crate::crypto::CryptoError| SignInError::Internal(e.to_string());
    let token = new_token().map_err(internal)?;
    let row = SessionRow {
        token_hash: token_hash(&token),
        staff_id: account.id.clone(),
        csrf: new_token().map_err(internal)?,
        created_ms: now_ms,
        last_seen_ms: now_ms,
        authenticated_at_ms: now_ms,
    };
    store.insert_staff_session(&row).await?;
    // Housekeeping: sessions past their limits are useless; drop them here
    // rather than in a worker (sign-ins are rare, the statement is indexed-free
    // but the table is small).
    if let Err(e) = store
        .delete_expired_staff_sessions(
            now_ms - session::SESSION_IDLE_MS,
            now_ms - session::SESSION_ABSOLUTE_MS,
        )
        .await
    {
        tracing::warn!(error = %e, "expired sessions not cleared");
    }
    let session = staff_session(&account, &row)
        .ok_or_else(|| SignInError::Internal("account has no staff role".into()))?;
    tracing::info!(staff_id = %account.id, "staff signed in");
    audit_staff(store, &session, "staff.sign_in", now_ms).await;
    Ok(SignedIn { token, session })
}

/// Asks the signed-in person for their password and a code again; on success
/// the session counts as freshly signed in. Throttled like a sign-in.
pub async fn reauthenticate(
    store: &Store,
    keys: &Keyring,
    attempt: Attempt<'_>,
    session: &StaffSession,
    password_text: &str,
    code: &str,
) -> Result<(), SignInError> {
    let now_ms = attempt.now_ms;
    const ACTION: &str = "staff.reauthenticate_failed";
    let username = session.username.as_str();
    let account =
        check_credentials(store, keys, attempt, ACTION, username, password_text, code).await?;
    if account.id != session.staff_id {
        let key = throttle_key(keys, username, attempt.client);
        let because = FailedBecause::OtherAccount;
        audit_failure(store, attempt, ACTION, username, &key, because, None).await;
        return Err(SignInError::Refused);
    }
    match store
        .set_session_authenticated_at(&session.token_hash, now_ms)
        .await
    {
        Ok(()) => {
            audit_staff(store, session, "staff.reauthenticate", now_ms).await;
            Ok(())
        }
        Err(StoreError::NotFound) => Err(SignInError::Refused),
        Err(e) => Err(e.into()),
    }
}

/// Ends the session.
pub async fn sign_out(store: &Store, session: &StaffSession) -> Result<(), StoreError> {
    store.delete_staff_session(&session.token_hash).await?;
    tracing::info!(staff_id = %session.staff_id, "staff signed out");
    audit_staff(store, session, "staff.sign_out", super::now_ms()).await;
    Ok(())
}

/// Records a sign-in, re-authentication or sign-out in the audit trail (who,
/// as what role, when; no session token, no name). A failure to record it is
/// logged, not shown: the person is already signed in or out.
async fn audit_staff(store: &Store, session: &StaffSession, action: &str, at_ms: i64) {
    let event = pasaporte_core::audit::AuditEvent::by(
        &session.actor(),
        at_ms,
        action,
        session.offices.join(" "),
        session.staff_id.clone(),
    );
    append_audit(store, &event).await;
}

/// Appends one event in its own transaction, retrying a lost race; a
/// failure is logged (the caller's answer does not wait on the trail).
pub(crate) async fn append_audit(store: &Store, event: &pasaporte_core::audit::AuditEvent) {
    let action = event.action.as_str();
    for attempt in 1..=crate::workflow::WRITE_ATTEMPTS_MAX {
        let done = async {
            let mut tx = store.begin_write().await?;
            pasaporte_store::append_audit_event(&mut tx, event).await?;
            tx.commit().await.map_err(pasaporte_store::StoreError::from)
        }
        .await;
        match done {
            Ok(()) => return,
            Err(e) if attempt == crate::workflow::WRITE_ATTEMPTS_MAX => {
                tracing::warn!(error = %e, action, "staff audit event not recorded");
            }
            Err(_) => tokio::time::sleep(crate::workflow::race_backoff(attempt)).await,
        }
    }
}

/// The live session a cookie token names, if any. Expired sessions and those
/// of deactivated accounts are deleted on sight.
pub async fn session_for_token(
    store: &Store,
    token: &str,
    now_ms: i64,
) -> Result<Option<StaffSession>, StoreError> {
    let hash = token_hash(token);
    let Some(row) = store.staff_session(&hash).await? else {
        return Ok(None);
    };
    if expired(row.created_ms, row.last_seen_ms, now_ms) {
        store.delete_staff_session(&hash).await?;
        return Ok(None);
    }
    let account = match store.staff_by_id(&row.staff_id).await? {
        Some(a) if a.active => a,
        _ => {
            store.delete_staff_session(&hash).await?;
            return Ok(None);
        }
    };
    if now_ms - row.last_seen_ms > session::SESSION_TOUCH_MS {
        store.touch_staff_session(&hash, now_ms).await?;
    }
    Ok(staff_session(&account, &row))
}

/// The display name of an account, opened.
pub fn display_name(keys: &Keyring, a: &StaffRow) -> Option<String> {
    keys.open(at::staff_display_name(&a.id), &a.display_name_enc)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(parse_username(" Ana.Lopez "), Ok("ana.lopez".into()));
        assert_eq!(parse_username("a_b-c.9"), Ok("a_b-c.9".into()));
        assert_eq!(parse_username("ab"), Err(BadUsername));
        assert_eq!(parse_username(&"a".repeat(65)), Err(BadUsername));
        assert_eq!(parse_username("ana lópez"), Err(BadUsername));
        assert_eq!(parse_username("ana@x"), Err(BadUsername));
    }

    #[test]
    fn roles_and_backoff() {
        assert_eq!(parse_staff_role("clerk"), Some(Role::Clerk));
        assert_eq!(parse_staff_role("citizen"), None);
        assert_eq!(parse_staff_role("system"), None);
        assert_eq!(backoff_seconds(2), 0);
        assert_eq!(backoff_seconds(3), 2);
        assert_eq!(backoff_seconds(4), 4);
        assert_eq!(backoff_seconds(40), SIGN_IN_BACKOFF_SECONDS_MAX);
        assert_eq!(
            backoff_steps(),
            vec![
                (3, 2_000),
                (4, 4_000),
                (5, 8_000),
                (6, 16_000),
                (7, 32_000),
                (8, 60_000)
            ]
        );
    }

    #[test]
    fn clients_are_keyed_by_address_or_ipv6_network() {
        let check = |ip: Option<&str>, expected: &str| {
            let ip = ip.map(|s| s.parse::<IpAddr>().unwrap_or_else(|_| unreachable!()));
            assert_eq!(client_prefix(ip), expected, "{ip:?}");
        };
        check(None, "");
        check(Some("192.0.2.7"), "192.0.2.7");
        check(Some("::ffff:192.0.2.7"), "192.0.2.7");
        check(Some("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        check(Some("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::/64");
        check(Some("2001:db8:1:3::1"), "2001:db8:1:3::/64");
    }
}
