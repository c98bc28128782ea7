//! The workflow steps nobody clicks: the civil-registry check, payment
//! references, payment callbacks, refunds, no-shows, and re-seating the
//! bookings still sitting in a closed or cut day (`reseat::reseat_pending`). Each step is a
//! function a test can call once; [`run`] loops them.
//!
//! Nothing here blocks the counters: when the registry or the payment
//! gateway is down, applications wait in a visible queue (`pending_registry`,
//! `registry_verified` without a reference) and the next round tries again.

use crate::app::App;
use crate::payments::callback::PaymentEvent;
use crate::registry::{Lookup, RegistryError};
use crate::workflow::{
    self, IdentityDoc, TxResult, WorkError, after_transition, domain, retrying, save_transition,
};
use pasaporte_core::adjudication::{self, Facts};
use pasaporte_core::application::{Actor, Command, Role, State};
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::fees::{PassportType, PaymentEventKind};
use pasaporte_core::jiff::Timestamp;
use pasaporte_core::person::{DocumentNumber, DocumentType, age_on};
use pasaporte_core::registry::{CapturedIdentity, RegistryQuery, Sex, compare};
use pasaporte_store::{self as store, NewReference, StoreError};
use std::time::Duration;

/// Applications checked against the registry per round.
pub const REGISTRY_BATCH_MAX: u32 = 32;
/// First wait before asking an unavailable registry again; doubles per
/// attempt up to [`REGISTRY_RETRY_MAX_MS`].
pub const REGISTRY_RETRY_FIRST_MS: i64 = 2_000;
/// Longest wait between attempts for one application: a registry back
/// from an outage is noticed within five minutes.
pub const REGISTRY_RETRY_MAX_MS: i64 = 5 * 60_000;
/// No-show bookings marked per round.
pub const NO_SHOW_BATCH_MAX: u32 = 500;
/// Payment references or refunds requested per round.
pub const PAYMENT_BATCH_MAX: usize = 64;
/// The first wait before the payment worker looks again at an application
/// whose fee is missing; each wait is then as long as it has waited.
pub const FEE_RETRY_FIRST_MS: i64 = 1_000;
/// The longest such wait: a fee schedule fixed by a new release is picked up
/// within this.
pub const FEE_RETRY_MAX_MS: i64 = 10 * 60 * 1_000;

/// The actor of a worker's steps.
pub(crate) fn system(worker: &str) -> Actor {
    Actor {
        id: format!("system:{worker}"),
        role: Role::System,
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> WorkError {
    WorkError::Internal(e.to_string())
}

/// How often the housekeeping step runs (forgetting old sign-in attempts and
/// idle rate-limit keys): both only bound memory and table size.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(600);

/// Forgets sign-in throttle rows and ceiling windows older than a day, and
/// the rate limiters' idle keys.
pub async fn housekeeping(app: &App, now: Timestamp) {
    let before_ms =
        now.as_millisecond() - crate::auth::accounts::SIGN_IN_ATTEMPTS_KEPT_HOURS * 3_600_000;
    if let Err(e) = app.store.forget_sign_in_attempts(before_ms).await {
        tracing::warn!(error = %e, "old sign-in attempts not forgotten");
    }
    app.limits.forget_idle();
}

/// Runs every worker step each `interval`, until the process ends.
pub async fn run(
    app: std::sync::Arc<App>,
    interval: Duration,
    mut lease: crate::lease::WorkerLease,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_housekeeping: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        if !lease.hold(&app.store).await {
            continue;
        }
        let now = Timestamp::now();
        if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_INTERVAL) {
            housekeeping(&app, now).await;
            last_housekeeping = Some(std::time::Instant::now());
        }
        if let Err(e) = workflow::mark_no_shows(&app, now, NO_SHOW_BATCH_MAX).await {
            tracing::warn!(error = %e, "no-show round failed");
        }
        if let Err(e) = registry_round(&app, now).await {
            tracing::warn!(error = %e, "registry round failed");
        }
        if let Err(e) = payment_reference_round(&app, now).await {
            tracing::warn!(error = %e, "payment reference round failed");
        }
        if let Err(e) = refund_round(&app).await {
            tracing::warn!(error = %e, "refund round failed");
        }
        if let Err(e) = crate::ballot::round(&app, app.fair.reconfirm, now).await {
            tracing::warn!(error = %e, "ballot round failed");
        }
        if let Err(e) = crate::reseat::reseat_pending(&app, now).await {
            tracing::warn!(error = %e, "re-seating round failed");
        }
    }
}

/// Signs the audit trail's head every `interval` when it has grown, and
/// appends each signed checkpoint to `anchor_file` when one is given.
pub async fn run_checkpoints(
    app: std::sync::Arc<App>,
    interval: Duration,
    anchor_file: Option<std::path::PathBuf>,
    mut lease: crate::lease::WorkerLease,
) {
    let Some(signer) = &app.audit_signer else {
        return;
    };
    let mut anchors = anchor_file.map(AnchorFile::new);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !lease.hold(&app.store).await {
            continue;
        }
        match checkpoint_once(&app.store, signer, anchors.as_mut()).await {
            Ok(Some(cp)) => tracing::info!(
                seq = cp.checkpoint.seq,
                hash = %cp.checkpoint.hash,
                key_id = %cp.checkpoint.key_id,
                signature = %cp.signature,
                "audit checkpoint signed"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit checkpoint failed; next round retries"),
        }
    }
}

/// The append-only file every signed checkpoint is copied to, and the last
/// event it vouches for (read from the file once, then kept).
pub struct AnchorFile {
    path: std::path::PathBuf,
    held_seq: Option<i64>,
}

/// Checkpoints appended to the anchor file per round at most.
const ANCHOR_APPEND_MAX: i64 = 10_000;

impl AnchorFile {
    pub fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            held_seq: None,
        }
    }

    /// Appends (and syncs) the database's checkpoints the file does not
    /// hold yet: a round whose append failed is made good by the next.
    async fn catch_up(&mut self, store: &pasaporte_store::Store) -> anyhow::Result<()> {
        let held = match self.held_seq {
            Some(seq) => seq,
            None => {
                let path = self.path.clone();
                tokio::task::spawn_blocking(move || last_anchored_seq(&path)).await??
            }
        };
        let fresh = store
            .audit_checkpoints_after(held, ANCHOR_APPEND_MAX)
            .await?;
        let Some(last) = fresh.last().map(|c| c.checkpoint.seq) else {
            self.held_seq = Some(held);
            return Ok(());
        };
        let lines: String = fresh.iter().map(|c| c.to_line() + "\n").collect();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || append_lines(&path, &lines)).await??;
        self.held_seq = Some(last);
        Ok(())
    }
}

/// Signs the trail's head if it is not signed yet, then publishes the
/// checkpoint outside the database: appended (and synced) to the anchor
/// file when there is one. Deleting the tail together with its checkpoints
/// then still contradicts a record the database's writer cannot reach.
pub async fn checkpoint_once(
    store: &pasaporte_store::Store,
    signer: &pasaporte_core::audit::CheckpointSigner,
    anchors: Option<&mut AnchorFile>,
) -> anyhow::Result<Option<pasaporte_core::audit::SignedCheckpoint>> {
    let cp = store
        .checkpoint_audit(signer, Timestamp::now().as_millisecond())
        .await?;
    if let Some(file) = anchors {
        file.catch_up(store).await?;
    }
    Ok(cp)
}

/// The last event the anchor file vouches for (0 when there is no file).
fn last_anchored_seq(path: &std::path::Path) -> anyhow::Result<i64> {
    use anyhow::Context as _;
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(pasaporte_core::audit::SignedCheckpoint::parse_line)
            .map(|c| c.checkpoint.seq)
            .max()
            .unwrap_or(0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn append_lines(path: &std::path::Path, lines: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(lines.as_bytes())?;
    file.sync_data()?;
    Ok(())
}

/// Checks the applications due for a registry check; returns how many got
/// an answer (confirmed or mismatched).
pub async fn registry_round(app: &App, now: Timestamp) -> Result<usize, WorkError> {
    let due = app
        .store
        .due_registry_checks(now.as_millisecond(), REGISTRY_BATCH_MAX)
        .await?;
    let mut answered = 0;
    for id in due {
        match check_registry(app, &id, Timestamp::now()).await {
            Ok(true) => answered += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(application = %id, error = %e, "registry check failed"),
        }
    }
    Ok(answered)
}

fn query_of(identity: &IdentityDoc) -> Result<RegistryQuery, WorkError> {
    let document_type =
        DocumentType::parse(&identity.document_type).ok_or_else(|| internal("document type"))?;
    let document_number =
        DocumentNumber::parse(document_type, &identity.document_number, "document_number")
            .map_err(|e| internal(e.code))?;
    Ok(RegistryQuery {
        document_type,
        document_number,
    })
}

fn captured_of(identity: &IdentityDoc) -> Result<CapturedIdentity, WorkError> {
    Ok(CapturedIdentity {
        surnames: identity.surnames.clone(),
        given_names: identity.given_names.clone(),
        birth_date: identity.birth_date.parse().map_err(internal)?,
        birth_place: identity.birth_place.clone(),
        sex: Sex::parse(&identity.sex).ok_or_else(|| internal("sex"))?,
        nationality: identity.nationality.clone(),
    })
}

/// One application's registry check. `Ok(true)` when the registry answered.
pub async fn check_registry(app: &App, id: &str, now: Timestamp) -> Result<bool, WorkError> {
    let row = app.store.application(id).await?;
    let identity = IdentityDoc::open(
        app,
        &row.id,
        row.identity_enc
            .as_deref()
            .ok_or_else(|| internal("no identity"))?,
    )?;
    let answer = match &app.registry {
        Some(r) => r.lookup(&query_of(&identity)?).await,
        None => Err(RegistryError::Unavailable {
            reason: "no civil registry configured",
        }),
    };
    let actor = system("registry");
    let command = match answer {
        Ok(Lookup::Found(record)) => {
            let mismatches = compare(&captured_of(&identity)?, &record);
            if mismatches.is_empty() {
                Command::RegistryConfirmed
            } else {
                Command::RegistryMismatch {
                    reason: format!(
                        "the civil registry disagrees on: {}",
                        mismatches
                            .iter()
                            .map(|m| m.field())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
        }
        Ok(Lookup::NotFound) => Command::RegistryMismatch {
            reason: "the civil registry has no record of this document".into(),
        },
        Err(e) => {
            tracing::info!(application = %id, error = %e, "civil registry unavailable; the application waits");
            let attempts = row.registry_attempts + 1;
            let wait =
                (REGISTRY_RETRY_FIRST_MS << (attempts - 1).clamp(0, 16)).min(REGISTRY_RETRY_MAX_MS);
            retrying!(async {
                let mut tx = app.store.begin_write().await?;
                let current = store::application_in(&mut tx, id).await?;
                if current.state == State::Captured.as_str() {
                    let (next, event) =
                        domain(&current)?.apply(&Command::RegistryUnavailable, &actor, now)?;
                    save_transition(&mut tx, &current, &next, &event, now).await?;
                }
                store::schedule_registry_check(
                    &mut tx,
                    id,
                    Some(now.as_millisecond() + wait),
                    attempts,
                )
                .await?;
                tx.commit().await.map_err(StoreError::from)?;
                Ok::<_, WorkError>(())
            })?;
            return Ok(false);
        }
    };
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let (_, _) = workflow::transition(&mut tx, id, &command, &actor, now).await?;
        store::schedule_registry_check(&mut tx, id, None, row.registry_attempts + 1).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(())
    })?;
    Ok(true)
}

/// Asks the gateway for a payment reference for every verified application
/// that has none; returns how many were issued.
pub async fn payment_reference_round(app: &App, now: Timestamp) -> Result<usize, WorkError> {
    let Some(gateway) = &app.payments else {
        return Ok(0);
    };
    let waiting = app
        .store
        .verified_without_reference(PAYMENT_BATCH_MAX as u32, now.as_millisecond())
        .await?;
    let mut issued = 0;
    for (id, _) in waiting {
        let row = app.store.application(&id).await?;
        let Some(entry) = app.office(&row.office) else {
            continue;
        };
        let passport_type = row
            .passport_type
            .as_deref()
            .and_then(PassportType::parse)
            .ok_or_else(|| internal("passport type"))?;
        let amount = match app.fees.fee_for(passport_type, &entry.office) {
            Ok(m) => m,
            Err(e) => {
                // Only a new fee schedule (a release) helps: look again
                // after as long as it has waited (so the looks, and these
                // logs, double apart), at most FEE_RETRY_MAX_MS. Supervisors
                // see the gap on their page meanwhile (`fee_gaps`).
                let waited_ms = now.as_millisecond() - row.state_since_ms;
                let wait_ms = waited_ms.clamp(FEE_RETRY_FIRST_MS, FEE_RETRY_MAX_MS);
                tracing::error!(
                    office = %row.office, application = %row.id, error = %e, next_look_ms = wait_ms,
                    "no fee for this office; the application waits"
                );
                app.store
                    .put_off_payment_reference(&row.id, now.as_millisecond() + wait_ms)
                    .await?;
                continue;
            }
        };
        let description = format!("Pasaporte {} {}", passport_type.as_str(), row.ticket);
        let reference = match gateway
            .create_reference(&row.id, &amount, &description)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "payment gateway unavailable; the application waits");
                return Ok(issued);
            }
        };
        retrying!(async {
            let mut tx = app.store.begin_write().await?;
            store::insert_payment_reference(
                &mut tx,
                &NewReference {
                    reference: reference.clone(),
                    application_id: row.id.clone(),
                    office_code: row.office.clone(),
                    amount_minor: amount.amount_minor,
                    currency: amount.currency.code().to_string(),
                    created_ms: now.as_millisecond(),
                },
            )
            .await?;
            let mut event = AuditEvent::by(
                &system("payments"),
                now.as_millisecond(),
                "payment.reference_issued",
                row.office.clone(),
                row.id.clone(),
            );
            event.detail = format!("{} {}", amount.amount_minor, amount.currency.code());
            store::append_audit_event(&mut tx, &event).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok::<_, WorkError>(())
        })?;
        issued += 1;
    }
    Ok(issued)
}

/// Asks the gateway to refund every reference whose application was
/// cancelled after payment; the refund completes with a callback.
pub async fn refund_round(app: &App) -> Result<usize, WorkError> {
    match &app.payments {
        Some(gateway) => crate::payments::refund_pass(&app.store, gateway.as_ref())
            .await
            .map_err(internal),
        None => Ok(0),
    }
}

/// What a verified callback did.
#[derive(Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    Applied,
    /// The event was applied before: nothing changed.
    Replayed,
}

/// Applies a verified gateway event exactly once: the event id, the
/// reference's new status, the application's transition, the automatic
/// adjudication checks and their audit events commit together.
pub async fn apply_payment_event(
    app: &App,
    event: &PaymentEvent,
    now: Timestamp,
) -> Result<CallbackOutcome, WorkError> {
    let reference = app.store.payment_reference(&event.reference).await?;
    let facts = match event.kind {
        PaymentEventKind::PaymentConfirmed => Some(facts_of(app, &reference.application_id).await?),
        PaymentEventKind::RefundCompleted => None,
    };
    let actor = system("payments");
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let applied = crate::payments::apply_event(&mut tx, event, now.as_millisecond())
            .await
            .map_err(|e| match e {
                crate::payments::ApplyError::Mismatch => WorkError::refused(
                    "amount_mismatch",
                    "El valor o la moneda del pago no coinciden con la referencia.",
                    "The payment's amount or currency does not match the reference.",
                ),
                crate::payments::ApplyError::Store(StoreError::Conflict { .. }) => {
                    WorkError::refused(
                        "reference_not_payable",
                        "La referencia no admite este evento (ya pagada, exonerada o reembolsada).",
                        "The reference does not take this event (already paid, waived or refunded).",
                    )
                }
                crate::payments::ApplyError::Store(e) => e.into(),
            })?;
        if applied == crate::payments::Applied::Replayed {
            return Ok::<_, WorkError>(CallbackOutcome::Replayed);
        }
        match event.kind {
            PaymentEventKind::PaymentConfirmed => {
                let row = store::application_in(&mut tx, &reference.application_id).await?;
                if row.state == State::RegistryVerified.as_str() {
                    let (_, paid) = workflow::transition(
                        &mut tx,
                        &reference.application_id,
                        &Command::PaymentConfirmed,
                        &actor,
                        now,
                    )
                    .await?;
                    if let Some(facts) = &facts {
                        adjudicate_in(&mut tx, &reference.application_id, facts, &paid, now)
                            .await?;
                    }
                } else {
                    // The citizen paid for an application that can no longer
                    // take it (cancelled, or already paid by a waiver): the
                    // money is recorded and given back, never kept silently.
                    store::mark_refund_pending(&mut tx, &event.reference).await?;
                    let mut e = AuditEvent::by(
                        &actor,
                        now.as_millisecond(),
                        "payment.refund_requested",
                        reference.office_code.clone(),
                        reference.application_id.clone(),
                    );
                    e.detail = format!("paid while {}", row.state);
                    store::append_audit_event(&mut tx, &e).await?;
                }
            }
            PaymentEventKind::RefundCompleted => {
                let mut e = AuditEvent::by(
                    &actor,
                    now.as_millisecond(),
                    "payment.refunded",
                    reference.office_code.clone(),
                    reference.application_id.clone(),
                );
                e.detail = format!("{} {}", event.amount_minor, event.currency);
                store::append_audit_event(&mut tx, &e).await?;
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(CallbackOutcome::Applied)
    })
}

/// What adjudication's automatic checks need to know about an application.
pub async fn facts_of(app: &App, id: &str) -> Result<Facts, WorkError> {
    let row = app.store.application(id).await?;
    let identity = row
        .identity_enc
        .as_deref()
        .map(|s| IdentityDoc::open(app, &row.id, s))
        .transpose()?;
    let extras = workflow::open_extras(app, &row)?;
    let minor = identity
        .as_ref()
        .and_then(|i| i.birth_date.parse().ok())
        .zip(app.office(&row.office))
        .map(|(birth, entry)| {
            let today = pasaporte_core::calendar::local_today(&entry.office, Timestamp::now());
            age_on(birth, today) < 18
        })
        .unwrap_or(false);
    let previous_passport_reported = match extras.as_ref().and_then(|e| e.previous_passport()) {
        Some(number) => {
            app.store
                .passport_reported(&app.keys.person_key(&format!("PASSPORT:{number}")))
                .await?
        }
        None => false,
    };
    let history = app.store.audit_events_of(id).await?;
    Ok(Facts {
        other_live_applications: app.store.other_live_applications(&row.doc_key, id).await?,
        replaces_lost_or_stolen: extras.as_ref().is_some_and(|e| e.replaces_lost_or_stolen()),
        previous_passport_reported,
        minor,
        consent_recorded: extras.as_ref().is_some_and(|e| e.consent_recorded()),
        registry_overridden: history
            .iter()
            .any(|e| e.action == "application.supervisor_override_registry"),
    })
}

/// Runs the automatic checks on a just-paid application inside `tx`: any
/// finding sends it to the supervisors' queue with the findings as reason.
pub(crate) async fn adjudicate_in(
    tx: &mut store::Tx,
    id: &str,
    facts: &Facts,
    paid: &pasaporte_core::application::Application,
    now: Timestamp,
) -> TxResult<()> {
    let findings = adjudication::check(facts);
    let codes = adjudication::codes(&findings);
    store::save_flags(tx, id, &codes).await?;
    if findings.is_empty() {
        return Ok(());
    }
    let row = store::application_in(tx, id).await?;
    debug_assert_eq!(row.state, paid.state().as_str());
    let (next, event) = domain(&row)?.apply(
        &Command::Flag {
            reason: format!("automatic checks: {codes}"),
        },
        &system("adjudication"),
        now,
    )?;
    save_transition(tx, &row, &next, &event, now).await?;
    after_transition(tx, &row, &next, now).await?;
    Ok(())
}
