//! The application state machine: what happens to an application from the
//! booked appointment to the passport in its holder's hands, who may make
//! it happen, and who owns it while it waits.
//!
//! [`Application::apply`] is a pure function: given a [`Command`], the
//! [`Actor`] giving it and the time, it returns the next application and the
//! [`AuditEvent`] that records the step, or a [`TransitionError`] that says
//! why not. Nothing is stored here; the caller saves both in one transaction.
//!
//! The allowed edges are listed once, in [`EDGES`], which is both the
//! documentation and what [`Application::apply`] looks steps up in; a
//! property test walks random command sequences and checks that every
//! accepted step is an edge of [`EDGES`].
//!
//! No application sits unowned: every state that is not terminal names the
//! [`Queue`] that works it and has a [`deadline`](Application::deadline), after
//! which the step named in [`State`]'s table happens or the application shows
//! up as overdue to supervisors. Terminal states (`Rejected`, `Cancelled`,
//! `NoShow`, `Issued`, `Annulled`) accept no command.

use crate::audit::AuditEvent;
use jiff::{SignedDuration, Timestamp};

/// After the appointment time, how long a citizen may still arrive before the
/// system may mark the booking a no-show (a late bus, a long security line).
pub const NO_SHOW_GRACE_MINUTES: i64 = 30;
/// From check-in to capture: the citizen is in the building; half a day
/// covers the longest queue seen at a counter.
pub const CAPTURE_WITHIN_MINUTES: i64 = 240;
/// The civil registry normally answers in seconds; after this the registry
/// worker treats it as unavailable and the application waits for retries.
pub const REGISTRY_ANSWER_WITHIN_MINUTES: i64 = 10;
/// Retries against an unavailable registry before a supervisor decides
/// (override with a reason, or cancel): three days covers a long outage.
pub const REGISTRY_RETRY_HOURS: i64 = 72;
/// A payment reference is issued the same day; after this the application is
/// cancelled by the system so that abandoned applications do not pile up.
pub const PAYMENT_WITHIN_HOURS: i64 = 15 * 24;
/// Adjudication of a paid application (existing passport, lost/stolen
/// reports, minors' consent).
pub const ADJUDICATION_WITHIN_HOURS: i64 = 48;
/// A flagged application waits for a supervisor at most this long.
pub const SUPERVISOR_REVIEW_WITHIN_HOURS: i64 = 72;
/// An approved application gets a production order within this time.
pub const PRODUCTION_ORDER_WITHIN_HOURS: i64 = 24;
/// From the order to the booklet received at the office: vendors print and
/// ship in days; after a month the order shows up as overdue to production.
pub const PRODUCTION_WITHIN_DAYS: i64 = 30;
/// A passport waits this long for its holder, then it is annulled by the
/// system and its booklet recorded as annulled.
pub const PICKUP_WITHIN_DAYS: i64 = 183;
/// Reasons are short notes for the trail, not case files.
pub const REASON_CHARS_MAX: usize = 500;
/// Actor ids are staff ids, `system:<worker>`, or booking ids.
pub const ACTOR_ID_CHARS_MAX: usize = 64;

/// Where an application is. Deadlines count from entering the state
/// (`state_since`), except `Booked`'s, which counts from the appointment.
///
/// | state | queue (who works it) | deadline | at the deadline |
/// | --- | --- | --- | --- |
/// | `Booked` | `Arrivals` (office reception) | appointment + [`NO_SHOW_GRACE_MINUTES`] | the system marks a no-show |
/// | `CheckedIn` | `Counter` (clerks) | + [`CAPTURE_WITHIN_MINUTES`] | overdue to supervisors |
/// | `Captured` | `RegistryCheck` (registry worker) | + [`REGISTRY_ANSWER_WITHIN_MINUTES`] | the worker records `RegistryUnavailable` |
/// | `PendingRegistry` | `RegistryRetry` (registry worker, then supervisors) | + [`REGISTRY_RETRY_HOURS`] | a supervisor overrides or cancels |
/// | `RegistryMismatch` | `SupervisorReview` | + [`SUPERVISOR_REVIEW_WITHIN_HOURS`] | overdue to the office head |
/// | `RegistryVerified` | `Payment` (payments adapter) | + [`PAYMENT_WITHIN_HOURS`] | the system cancels it, unpaid |
/// | `Paid` | `Adjudication` (clerks, automatic checks) | + [`ADJUDICATION_WITHIN_HOURS`] | overdue to supervisors |
/// | `Flagged` | `SupervisorReview` | + [`SUPERVISOR_REVIEW_WITHIN_HOURS`] | overdue to the office head |
/// | `Approved` | `Production` | + [`PRODUCTION_ORDER_WITHIN_HOURS`] | overdue to production |
/// | `InProduction` | `Production` (pipeline, vendors) | + [`PRODUCTION_WITHIN_DAYS`] | overdue to production |
/// | `ReadyForPickup` | `Pickup` (office) | + [`PICKUP_WITHIN_DAYS`] | the system annuls it |
/// | `Rejected`, `Cancelled`, `NoShow`, `Issued`, `Annulled` | `Closed` | none | terminal |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Booked,
    CheckedIn,
    Captured,
    PendingRegistry,
    /// The registry disagreed (or has no record): a supervisor accepts the
    /// capture with a reason, rejects or cancels. Before payment, so
    /// accepting it leads to payment, never straight to approval.
    RegistryMismatch,
    RegistryVerified,
    Paid,
    Flagged,
    Approved,
    /// A production order is out (or being re-made after a quality failure
    /// or a booklet that did not match its record at receipt).
    InProduction,
    /// The booklet is at the office, its MRZ checked against the record.
    ReadyForPickup,
    /// Handed to its holder (or a guardian on record). Terminal.
    Issued,
    /// Not collected within [`PICKUP_WITHIN_DAYS`]: the passport is annulled
    /// and its booklet recorded as such. Terminal.
    Annulled,
    Rejected,
    Cancelled,
    NoShow,
}

impl State {
    pub const ALL: [State; 16] = [
        State::Booked,
        State::CheckedIn,
        State::Captured,
        State::PendingRegistry,
        State::RegistryMismatch,
        State::RegistryVerified,
        State::Paid,
        State::Flagged,
        State::Approved,
        State::InProduction,
        State::ReadyForPickup,
        State::Issued,
        State::Annulled,
        State::Rejected,
        State::Cancelled,
        State::NoShow,
    ];

    /// The name stored and written in audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Booked => "booked",
            State::CheckedIn => "checked_in",
            State::Captured => "captured",
            State::PendingRegistry => "pending_registry",
            State::RegistryMismatch => "registry_mismatch",
            State::RegistryVerified => "registry_verified",
            State::Paid => "paid",
            State::Flagged => "flagged",
            State::Approved => "approved",
            State::InProduction => "in_production",
            State::ReadyForPickup => "ready_for_pickup",
            State::Issued => "issued",
            State::Annulled => "annulled",
            State::Rejected => "rejected",
            State::Cancelled => "cancelled",
            State::NoShow => "no_show",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        match self {
            State::Rejected
            | State::Cancelled
            | State::NoShow
            | State::Issued
            | State::Annulled => true,
            State::Booked
            | State::CheckedIn
            | State::Captured
            | State::PendingRegistry
            | State::RegistryMismatch
            | State::RegistryVerified
            | State::Paid
            | State::Flagged
            | State::Approved
            | State::InProduction
            | State::ReadyForPickup => false,
        }
    }

    /// Who works an application in this state (see the table on [`State`]).
    pub fn queue(self) -> Queue {
        match self {
            State::Booked => Queue::Arrivals,
            State::CheckedIn => Queue::Counter,
            State::Captured => Queue::RegistryCheck,
            State::PendingRegistry => Queue::RegistryRetry,
            State::RegistryMismatch => Queue::SupervisorReview,
            State::RegistryVerified => Queue::Payment,
            State::Paid => Queue::Adjudication,
            State::Flagged => Queue::SupervisorReview,
            State::Approved | State::InProduction => Queue::Production,
            State::ReadyForPickup => Queue::Pickup,
            State::Rejected
            | State::Cancelled
            | State::NoShow
            | State::Issued
            | State::Annulled => Queue::Closed,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The named work lists; every non-terminal state is on exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Queue {
    /// The office's reception, waiting for the citizen to arrive.
    Arrivals,
    /// Clerks at the counters: photo, fingerprints, signature.
    Counter,
    /// The civil-registry worker's first check.
    RegistryCheck,
    /// The civil-registry worker's retries; supervisors after the deadline.
    RegistryRetry,
    /// The payments adapter, waiting for the bank.
    Payment,
    /// Clerks and automatic checks deciding the application.
    Adjudication,
    /// Supervisors deciding flagged applications.
    SupervisorReview,
    /// The production pipeline: orders to printing vendors, their progress.
    Production,
    /// The office's pick-up counter: the booklet waits for its holder.
    Pickup,
    /// Nobody: the application is finished.
    Closed,
}

impl Queue {
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Arrivals => "arrivals",
            Queue::Counter => "counter",
            Queue::RegistryCheck => "registry_check",
            Queue::RegistryRetry => "registry_retry",
            Queue::Payment => "payment",
            Queue::Adjudication => "adjudication",
            Queue::SupervisorReview => "supervisor_review",
            Queue::Production => "production",
            Queue::Pickup => "pickup",
            Queue::Closed => "closed",
        }
    }
}

/// What a person (or the system) may be acting as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Citizen,
    Clerk,
    Supervisor,
    /// Manages offices, calendars and staff; does not decide applications.
    Administrator,
    /// Reads the trail; changes nothing.
    Auditor,
    /// Workers and adapters (registry, payments, deadlines).
    System,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Citizen,
        Role::Clerk,
        Role::Supervisor,
        Role::Administrator,
        Role::Auditor,
        Role::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::Clerk => "clerk",
            Role::Supervisor => "supervisor",
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
            Role::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acts: an id that is not personal data (a staff id, `system:<worker>`,
/// or for a citizen their booking id) and the role they act in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub role: Role,
}

/// What someone asks to happen to an application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    CheckIn,
    MarkNoShow,
    Capture,
    RegistryUnavailable,
    RegistryConfirmed,
    RegistryMismatch {
        reason: String,
    },
    SupervisorOverrideRegistry {
        reason: String,
    },
    PaymentConfirmed,
    Flag {
        reason: String,
    },
    Approve,
    Reject {
        reason: String,
    },
    Cancel {
        reason: String,
    },
    /// The pipeline placed the production order.
    OrderProduction,
    /// An emergency passport personalised at the office from local stock.
    IssueAtOffice,
    /// The booklet arrived at the office and its MRZ matched the record.
    ReceiveBooklet,
    /// The booklet is made again (quality failure, MRZ mismatch at receipt).
    Reprint {
        reason: String,
    },
    /// Handed to its holder or a guardian on record, identity checked.
    HandOver,
    /// Not collected in time.
    AnnulUncollected,
}

/// A command's name without its data: for the edges table, errors and the
/// audit trail's action names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandKind {
    CheckIn,
    MarkNoShow,
    Capture,
    RegistryUnavailable,
    RegistryConfirmed,
    RegistryMismatch,
    SupervisorOverrideRegistry,
    PaymentConfirmed,
    Flag,
    Approve,
    Reject,
    Cancel,
    OrderProduction,
    IssueAtOffice,
    ReceiveBooklet,
    Reprint,
    HandOver,
    AnnulUncollected,
}

impl CommandKind {
    pub const ALL: [CommandKind; 18] = [
        CommandKind::CheckIn,
        CommandKind::MarkNoShow,
        CommandKind::Capture,
        CommandKind::RegistryUnavailable,
        CommandKind::RegistryConfirmed,
        CommandKind::RegistryMismatch,
        CommandKind::SupervisorOverrideRegistry,
        CommandKind::PaymentConfirmed,
        CommandKind::Flag,
        CommandKind::Approve,
        CommandKind::Reject,
        CommandKind::Cancel,
        CommandKind::OrderProduction,
        CommandKind::IssueAtOffice,
        CommandKind::ReceiveBooklet,
        CommandKind::Reprint,
        CommandKind::HandOver,
        CommandKind::AnnulUncollected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::CheckIn => "check_in",
            CommandKind::MarkNoShow => "mark_no_show",
            CommandKind::Capture => "capture",
            CommandKind::RegistryUnavailable => "registry_unavailable",
            CommandKind::RegistryConfirmed => "registry_confirmed",
            CommandKind::RegistryMismatch => "registry_mismatch",
            CommandKind::SupervisorOverrideRegistry => "supervisor_override_registry",
            CommandKind::PaymentConfirmed => "payment_confirmed",
            CommandKind::Flag => "flag",
            CommandKind::Approve => "approve",
            CommandKind::Reject => "reject",
            CommandKind::Cancel => "cancel",
            CommandKind::OrderProduction => "order_production",
            CommandKind::IssueAtOffice => "issue_at_office",
            CommandKind::ReceiveBooklet => "receive_booklet",
            CommandKind::Reprint => "reprint",
            CommandKind::HandOver => "hand_over",
            CommandKind::AnnulUncollected => "annul_uncollected",
        }
    }
}

impl std::fmt::Display for CommandKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::CheckIn => CommandKind::CheckIn,
            Command::MarkNoShow => CommandKind::MarkNoShow,
            Command::Capture => CommandKind::Capture,
            Command::RegistryUnavailable => CommandKind::RegistryUnavailable,
            Command::RegistryConfirmed => CommandKind::RegistryConfirmed,
            Command::RegistryMismatch { .. } => CommandKind::RegistryMismatch,
            Command::SupervisorOverrideRegistry { .. } => CommandKind::SupervisorOverrideRegistry,
            Command::PaymentConfirmed => CommandKind::PaymentConfirmed,
            Command::Flag { .. } => CommandKind::Flag,
            Command::Approve => CommandKind::Approve,
            Command::Reject { .. } => CommandKind::Reject,
            Command::Cancel { .. } => CommandKind::Cancel,
            Command::OrderProduction => CommandKind::OrderProduction,
            Command::IssueAtOffice => CommandKind::IssueAtOffice,
            Command::ReceiveBooklet => CommandKind::ReceiveBooklet,
            Command::Reprint { .. } => CommandKind::Reprint,
            Command::HandOver => CommandKind::HandOver,
            Command::AnnulUncollected => CommandKind::AnnulUncollected,
        }
    }

    /// The reason, for the commands that must carry one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Command::RegistryMismatch { reason }
            | Command::SupervisorOverrideRegistry { reason }
            | Command::Flag { reason }
            | Command::Reject { reason }
            | Command::Cancel { reason }
            | Command::Reprint { reason } => Some(reason),
            Command::CheckIn
            | Command::MarkNoShow
            | Command::Capture
            | Command::RegistryUnavailable
            | Command::RegistryConfirmed
            | Command::PaymentConfirmed
            | Command::Approve
            | Command::OrderProduction
            | Command::IssueAtOffice
            | Command::ReceiveBooklet
            | Command::HandOver
            | Command::AnnulUncollected => None,
        }
    }
}

/// Why a command was refused; each says what to do differently.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an application that is {state} cannot take '{command}'")]
    NotAllowedFrom { state: State, command: CommandKind },
    #[error("a {role} may not '{command}' an application that is {state}")]
    Forbidden {
        role: Role,
        command: CommandKind,
        state: State,
    },
    #[error("'{command}' needs a reason")]
    ReasonRequired { command: CommandKind },
    #[error("the reason has {chars} characters; at most {max} are allowed")]
    ReasonTooLong { chars: usize, max: usize },
    #[error(
        "the reason seems to hold personal data (an email address or a long number); describe the case without it"
    )]
    ReasonLooksPersonal,
    #[error("the actor id must be 1 to {max} letters, digits or '.', '-', '_', ':'")]
    ActorIdInvalid { max: usize },
    #[error("the appointment's grace period runs until {until}; a no-show cannot be marked before")]
    TooEarlyForNoShow { until: Timestamp },
}

/// One allowed step: from a state, a command, by one of these roles, to a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: State,
    pub command: CommandKind,
    pub to: State,
    pub roles: &'static [Role],
}

const fn edge(from: State, command: CommandKind, to: State, roles: &'static [Role]) -> Edge {
    Edge {
        from,
        command,
        to,
        roles,
    }
}

use CommandKind as K;
use Role::{Citizen, Clerk, Supervisor, System};
use State as S;

/// Every allowed step. Administrators and auditors appear nowhere: they
/// manage the system and read the trail, they do not decide applications.
pub const EDGES: &[Edge] = &[
    edge(S::Booked, K::CheckIn, S::CheckedIn, &[Clerk, Supervisor]),
    edge(
        S::Booked,
        K::MarkNoShow,
        S::NoShow,
        &[Clerk, Supervisor, System],
    ),
    edge(
        S::Booked,
        K::Cancel,
        S::Cancelled,
        &[Citizen, Clerk, Supervisor],
    ),
    edge(S::CheckedIn, K::Capture, S::Captured, &[Clerk, Supervisor]),
    edge(S::CheckedIn, K::Cancel, S::Cancelled, &[Clerk, Supervisor]),
    edge(
        S::Captured,
        K::RegistryConfirmed,
        S::RegistryVerified,
        &[System],
    ),
    edge(
        S::Captured,
        K::RegistryUnavailable,
        S::PendingRegistry,
        &[System],
    ),
    edge(
        S::Captured,
        K::RegistryMismatch,
        S::RegistryMismatch,
        &[System],
    ),
    edge(S::Captured, K::Cancel, S::Cancelled, &[Clerk, Supervisor]),
    edge(
        S::PendingRegistry,
        K::RegistryConfirmed,
        S::RegistryVerified,
        &[System],
    ),
    edge(
        S::PendingRegistry,
        K::RegistryMismatch,
        S::RegistryMismatch,
        &[System],
    ),
    edge(
        S::PendingRegistry,
        K::SupervisorOverrideRegistry,
        S::RegistryVerified,
        &[Supervisor],
    ),
    edge(S::PendingRegistry, K::Cancel, S::Cancelled, &[Supervisor]),
    edge(
        S::RegistryMismatch,
        K::SupervisorOverrideRegistry,
        S::RegistryVerified,
        &[Supervisor],
    ),
    edge(S::RegistryMismatch, K::Reject, S::Rejected, &[Supervisor]),
    edge(S::RegistryMismatch, K::Cancel, S::Cancelled, &[Supervisor]),
    edge(
        S::RegistryVerified,
        K::PaymentConfirmed,
        S::Paid,
        &[Clerk, Supervisor, System],
    ),
    edge(
        S::RegistryVerified,
        K::Cancel,
        S::Cancelled,
        &[Supervisor, System],
    ),
    edge(S::Paid, K::Approve, S::Approved, &[Clerk, Supervisor]),
    edge(S::Paid, K::Flag, S::Flagged, &[Clerk, Supervisor, System]),
    edge(S::Paid, K::Reject, S::Rejected, &[Supervisor]),
    edge(S::Paid, K::Cancel, S::Cancelled, &[Supervisor]),
    edge(S::Flagged, K::Approve, S::Approved, &[Supervisor]),
    edge(S::Flagged, K::Reject, S::Rejected, &[Supervisor]),
    edge(S::Flagged, K::Cancel, S::Cancelled, &[Supervisor]),
    edge(S::Approved, K::Cancel, S::Cancelled, &[Supervisor]),
    edge(S::Approved, K::OrderProduction, S::InProduction, &[System]),
    // Emergency passports only (the workflow checks the type).
    edge(
        S::Approved,
        K::IssueAtOffice,
        S::ReadyForPickup,
        &[Clerk, Supervisor],
    ),
    edge(
        S::InProduction,
        K::ReceiveBooklet,
        S::ReadyForPickup,
        &[Clerk, Supervisor],
    ),
    // The only self-loop: the state stays, the trail records why a new
    // booklet is made.
    edge(
        S::InProduction,
        K::Reprint,
        S::InProduction,
        &[Clerk, Supervisor, System],
    ),
    edge(
        S::ReadyForPickup,
        K::HandOver,
        S::Issued,
        &[Clerk, Supervisor],
    ),
    edge(
        S::ReadyForPickup,
        K::AnnulUncollected,
        S::Annulled,
        &[System],
    ),
];

/// An application as the state machine sees it: ids, not personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    id: String,
    office: String,
    appointment_at: Timestamp,
    state: State,
    state_since: Timestamp,
}

impl Application {
    /// A new application for a booked appointment.
    pub fn booked(
        id: impl Into<String>,
        office: impl Into<String>,
        appointment_at: Timestamp,
        now: Timestamp,
    ) -> Self {
        Self {
            id: id.into(),
            office: office.into(),
            appointment_at,
            state: State::Booked,
            state_since: now,
        }
    }

    /// An application as loaded from storage.
    pub fn restore(
        id: impl Into<String>,
        office: impl Into<String>,
        appointment_at: Timestamp,
        state: State,
        state_since: Timestamp,
    ) -> Self {
        Self {
            id: id.into(),
            office: office.into(),
            appointment_at,
            state,
            state_since,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn office(&self) -> &str {
        &self.office
    }

    pub fn appointment_at(&self) -> Timestamp {
        self.appointment_at
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn state_since(&self) -> Timestamp {
        self.state_since
    }

    /// Who works this application now.
    pub fn queue(&self) -> Queue {
        self.state.queue()
    }

    /// When this application must have left its state (`None` only when
    /// terminal); see the table on [`State`].
    pub fn deadline(&self) -> Option<Timestamp> {
        let minutes = |m: i64| SignedDuration::from_mins(m);
        let hours = |h: i64| SignedDuration::from_hours(h);
        let (from, after) = match self.state {
            State::Booked => (self.appointment_at, minutes(NO_SHOW_GRACE_MINUTES)),
            State::CheckedIn => (self.state_since, minutes(CAPTURE_WITHIN_MINUTES)),
            State::Captured => (self.state_since, minutes(REGISTRY_ANSWER_WITHIN_MINUTES)),
            State::PendingRegistry => (self.state_since, hours(REGISTRY_RETRY_HOURS)),
            State::RegistryMismatch => (self.state_since, hours(SUPERVISOR_REVIEW_WITHIN_HOURS)),
            State::RegistryVerified => (self.state_since, hours(PAYMENT_WITHIN_HOURS)),
            State::Paid => (self.state_since, hours(ADJUDICATION_WITHIN_HOURS)),
            State::Flagged => (self.state_since, hours(SUPERVISOR_REVIEW_WITHIN_HOURS)),
            State::Approved => (self.state_since, hours(PRODUCTION_ORDER_WITHIN_HOURS)),
            State::InProduction => (self.state_since, hours(PRODUCTION_WITHIN_DAYS * 24)),
            State::ReadyForPickup => (self.state_since, hours(PICKUP_WITHIN_DAYS * 24)),
            State::Rejected
            | State::Cancelled
            | State::NoShow
            | State::Issued
            | State::Annulled => return None,
        };
        // Saturates at the end of jiff's range, far beyond any real deadline.
        Some(from.saturating_add(after).unwrap_or(Timestamp::MAX))
    }

    /// Whether the deadline has passed at `now`.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.deadline().is_some_and(|d| now > d)
    }

    /// The step `command` makes from `state`, and who may give it: looked
    /// up in [`EDGES`], the one table of the graph.
    fn edge(state: State, command: CommandKind) -> Option<(State, &'static [Role])> {
        EDGES
            .iter()
            .find(|e| e.from == state && e.command == command)
            .map(|e| (e.to, e.roles))
    }

    /// Applies `command` given by `actor` at `now`: the next application and
    /// the audit event recording the step. Checks, in order: the state
    /// allows the command, the role may give it, the actor id, the reason,
    /// and timing (no-shows only after the grace period).
    pub fn apply(
        &self,
        command: &Command,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Application, AuditEvent), TransitionError> {
        let kind = command.kind();
        let (to, roles) = Self::edge(self.state, kind).ok_or(TransitionError::NotAllowedFrom {
            state: self.state,
            command: kind,
        })?;
        if !roles.contains(&actor.role) {
            return Err(TransitionError::Forbidden {
                role: actor.role,
                command: kind,
                state: self.state,
            });
        }
        check_actor_id(&actor.id)?;
        let detail = match command.reason() {
            Some(reason) => check_reason(kind, reason)?,
            None => String::new(),
        };
        if kind == CommandKind::MarkNoShow {
            let until = self
                .appointment_at
                .saturating_add(SignedDuration::from_mins(NO_SHOW_GRACE_MINUTES))
                .unwrap_or(Timestamp::MAX);
            if now < until {
                return Err(TransitionError::TooEarlyForNoShow { until });
            }
        }
        let next = Application {
            state: to,
            state_since: now,
            ..self.clone()
        };
        let mut event = AuditEvent::by(
            actor,
            now.as_millisecond(),
            format!("application.{}", kind.as_str()),
            self.office.clone(),
            self.id.clone(),
        );
        event.from_state = Some(self.state.as_str().to_string());
        event.to_state = Some(to.as_str().to_string());
        event.detail = detail;
        Ok((next, event))
    }
}

fn check_actor_id(id: &str) -> Result<(), TransitionError> {
    let ok = !id.is_empty()
        && id.len() <= ACTOR_ID_CHARS_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if ok {
        Ok(())
    } else {
        Err(TransitionError::ActorIdInvalid {
            max: ACTOR_ID_CHARS_MAX,
        })
    }
}

/// A reason kept in the audit trail: non-empty, short, one line, and without
/// the obvious shapes of personal data (an email address, a run of six or
/// more digits such as a document number). Returned trimmed.
pub fn check_reason(command: CommandKind, reason: &str) -> Result<String, TransitionError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(TransitionError::ReasonRequired { command });
    }
    let chars = reason.chars().count();
    if chars > REASON_CHARS_MAX {
        return Err(TransitionError::ReasonTooLong {
            chars,
            max: REASON_CHARS_MAX,
        });
    }
    let mut digit_run = 0;
    for c in reason.chars() {
        digit_run = if c.is_ascii_digit() { digit_run + 1 } else { 0 };
        if digit_run >= 6 || c == '@' {
            return Err(TransitionError::ReasonLooksPersonal);
        }
    }
    // Control characters (newlines included) would make the trail ambiguous
    // to read line by line.
    Ok(reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const APPOINTMENT_MS: i64 = 1_780_000_000_000;

    fn at(ms_after_appointment: i64) -> Timestamp {
        Timestamp::from_millisecond(APPOINTMENT_MS + ms_after_appointment).unwrap()
    }

    fn app(state: State) -> Application {
        Application::restore("app-1", "BOG1", at(0), state, at(-3_600_000))
    }

    fn actor(role: Role) -> Actor {
        Actor {
            id: format!("{}-1", role.as_str()),
            role,
        }
    }

    fn reason() -> String {
        "citizen asked".into()
    }

    fn command(kind: CommandKind) -> Command {
        match kind {
            K::CheckIn => Command::CheckIn,
            K::MarkNoShow => Command::MarkNoShow,
            K::Capture => Command::Capture,
            K::RegistryUnavailable => Command::RegistryUnavailable,
            K::RegistryConfirmed => Command::RegistryConfirmed,
            K::RegistryMismatch => Command::RegistryMismatch { reason: reason() },
            K::SupervisorOverrideRegistry => {
                Command::SupervisorOverrideRegistry { reason: reason() }
            }
            K::PaymentConfirmed => Command::PaymentConfirmed,
            K::Flag => Command::Flag { reason: reason() },
            K::Approve => Command::Approve,
            K::Reject => Command::Reject { reason: reason() },
            K::Cancel => Command::Cancel { reason: reason() },
            K::OrderProduction => Command::OrderProduction,
            K::IssueAtOffice => Command::IssueAtOffice,
            K::ReceiveBooklet => Command::ReceiveBooklet,
            K::Reprint => Command::Reprint { reason: reason() },
            K::HandOver => Command::HandOver,
            K::AnnulUncollected => Command::AnnulUncollected,
        }
    }

    /// Applies at an hour after the appointment (past the no-show grace).
    fn check(state: State, cmd: Command, role: Role, expected: Result<State, TransitionError>) {
        let got = app(state)
            .apply(&cmd, &actor(role), at(3_600_000))
            .map(|(a, _)| a.state());
        assert_eq!(got, expected, "{state} --{:?} by {role}-->", cmd);
    }

    #[test]
    fn transitions_table() {
        use TransitionError as E;
        let forbidden = |role, command, state| {
            Err(E::Forbidden {
                role,
                command,
                state,
            })
        };
        let not_from = |state, command| Err(E::NotAllowedFrom { state, command });
        #[rustfmt::skip]
        let cases: Vec<(State, Command, Role, Result<State, TransitionError>)> = vec![
            (S::Booked, Command::CheckIn, Clerk, Ok(S::CheckedIn)),
            (S::Booked, Command::CheckIn, Role::Citizen, forbidden(Citizen, K::CheckIn, S::Booked)),
            (S::Booked, Command::CheckIn, Role::Auditor, forbidden(Role::Auditor, K::CheckIn, S::Booked)),
            (S::Booked, Command::MarkNoShow, System, Ok(S::NoShow)),
            (S::Booked, Command::Capture, Clerk, not_from(S::Booked, K::Capture)),
            (S::Booked, command(K::Cancel), Citizen, Ok(S::Cancelled)),
            (S::CheckedIn, Command::Capture, Clerk, Ok(S::Captured)),
            (S::CheckedIn, Command::CheckIn, Clerk, not_from(S::CheckedIn, K::CheckIn)),
            (S::CheckedIn, command(K::Cancel), Citizen, forbidden(Citizen, K::Cancel, S::CheckedIn)),
            (S::Captured, Command::RegistryConfirmed, System, Ok(S::RegistryVerified)),
            (S::Captured, Command::RegistryConfirmed, Clerk, forbidden(Clerk, K::RegistryConfirmed, S::Captured)),
            (S::Captured, Command::RegistryUnavailable, System, Ok(S::PendingRegistry)),
            (S::Captured, command(K::RegistryMismatch), System, Ok(S::RegistryMismatch)),
            (S::RegistryMismatch, Command::Approve, Supervisor, not_from(S::RegistryMismatch, K::Approve)),
            (S::RegistryMismatch, command(K::SupervisorOverrideRegistry), Supervisor, Ok(S::RegistryVerified)),
            (S::Captured, command(K::SupervisorOverrideRegistry), Supervisor, not_from(S::Captured, K::SupervisorOverrideRegistry)),
            (S::PendingRegistry, command(K::SupervisorOverrideRegistry), Supervisor, Ok(S::RegistryVerified)),
            (S::PendingRegistry, command(K::SupervisorOverrideRegistry), Clerk, forbidden(Clerk, K::SupervisorOverrideRegistry, S::PendingRegistry)),
            (S::PendingRegistry, Command::RegistryUnavailable, System, not_from(S::PendingRegistry, K::RegistryUnavailable)),
            (S::PendingRegistry, Command::RegistryConfirmed, System, Ok(S::RegistryVerified)),
            (S::RegistryVerified, Command::PaymentConfirmed, System, Ok(S::Paid)),
            (S::RegistryVerified, command(K::Cancel), System, Ok(S::Cancelled)),
            (S::Paid, Command::Approve, Clerk, Ok(S::Approved)),
            (S::Paid, command(K::Flag), System, Ok(S::Flagged)),
            (S::Paid, command(K::Reject), Clerk, forbidden(Clerk, K::Reject, S::Paid)),
            (S::Flagged, Command::Approve, Supervisor, Ok(S::Approved)),
            (S::Flagged, Command::Approve, Clerk, forbidden(Clerk, K::Approve, S::Flagged)),
            (S::Flagged, command(K::Reject), Supervisor, Ok(S::Rejected)),
            (S::Approved, command(K::Cancel), Supervisor, Ok(S::Cancelled)),
            (S::Approved, Command::Approve, Supervisor, not_from(S::Approved, K::Approve)),
            (S::Rejected, Command::Approve, Supervisor, not_from(S::Rejected, K::Approve)),
            (S::Cancelled, command(K::Cancel), Supervisor, not_from(S::Cancelled, K::Cancel)),
            (S::NoShow, Command::CheckIn, Clerk, not_from(S::NoShow, K::CheckIn)),
            (S::Paid, Command::Approve, Role::Administrator, forbidden(Role::Administrator, K::Approve, S::Paid)),
            // Production and pick-up.
            (S::Approved, Command::OrderProduction, System, Ok(S::InProduction)),
            (S::Approved, Command::OrderProduction, Clerk, forbidden(Clerk, K::OrderProduction, S::Approved)),
            (S::Approved, Command::IssueAtOffice, Clerk, Ok(S::ReadyForPickup)),
            (S::Approved, Command::HandOver, Clerk, not_from(S::Approved, K::HandOver)),
            (S::InProduction, Command::ReceiveBooklet, Clerk, Ok(S::ReadyForPickup)),
            (S::InProduction, command(K::Reprint), System, Ok(S::InProduction)),
            (S::InProduction, Command::Reprint { reason: " ".into() }, Clerk, Err(E::ReasonRequired { command: K::Reprint })),
            (S::InProduction, command(K::Cancel), Supervisor, not_from(S::InProduction, K::Cancel)),
            (S::ReadyForPickup, Command::HandOver, Clerk, Ok(S::Issued)),
            (S::ReadyForPickup, Command::HandOver, Role::Auditor, forbidden(Role::Auditor, K::HandOver, S::ReadyForPickup)),
            (S::ReadyForPickup, Command::AnnulUncollected, System, Ok(S::Annulled)),
            (S::ReadyForPickup, Command::AnnulUncollected, Supervisor, forbidden(Supervisor, K::AnnulUncollected, S::ReadyForPickup)),
            (S::Issued, Command::HandOver, Clerk, not_from(S::Issued, K::HandOver)),
            (S::Annulled, Command::ReceiveBooklet, Clerk, not_from(S::Annulled, K::ReceiveBooklet)),
            // Reasons.
            (S::Paid, Command::Flag { reason: "  ".into() }, Clerk, Err(E::ReasonRequired { command: K::Flag })),
            (S::Flagged, Command::Reject { reason: "x".repeat(501) }, Supervisor, Err(E::ReasonTooLong { chars: 501, max: 500 })),
            (S::Flagged, Command::Reject { reason: "é".repeat(500) }, Supervisor, Ok(S::Rejected)),
            (S::Booked, Command::Cancel { reason: "write to ana@example.org".into() }, Clerk, Err(E::ReasonLooksPersonal)),
            (S::Booked, Command::Cancel { reason: "cédula 1020304050".into() }, Clerk, Err(E::ReasonLooksPersonal)),
            (S::Booked, Command::Cancel { reason: "ticket 12345, rescheduled".into() }, Clerk, Ok(S::Cancelled)),
        ];
        for (state, cmd, role, expected) in cases {
            check(state, cmd, role, expected);
        }
    }

    #[test]
    fn no_show_only_after_grace() {
        let a = app(S::Booked);
        let grace_ms = NO_SHOW_GRACE_MINUTES * 60_000;
        let early = a.apply(&Command::MarkNoShow, &actor(System), at(grace_ms - 1));
        assert_eq!(
            early,
            Err(TransitionError::TooEarlyForNoShow {
                until: at(grace_ms)
            })
        );
        let (next, _) = a
            .apply(&Command::MarkNoShow, &actor(System), at(grace_ms))
            .unwrap();
        assert_eq!(next.state(), S::NoShow);
    }

    #[test]
    fn actor_ids_are_checked() {
        let a = app(S::Booked);
        for bad in ["", "ana maría", &"x".repeat(65)] {
            let who = Actor {
                id: bad.to_string(),
                role: Clerk,
            };
            assert_eq!(
                a.apply(&Command::CheckIn, &who, at(0)),
                Err(TransitionError::ActorIdInvalid { max: 64 })
            );
        }
    }

    #[test]
    fn the_event_records_the_step_without_personal_data() {
        let a = app(S::Paid);
        let now = at(5_000);
        let (next, e) = a
            .apply(
                &Command::Flag {
                    reason: " lost passport report\npending ".into(),
                },
                &actor(Clerk),
                now,
            )
            .unwrap();
        assert_eq!(next.state(), S::Flagged);
        assert_eq!(next.state_since(), now);
        assert_eq!(next.id(), "app-1");
        assert_eq!(
            e,
            AuditEvent {
                at_ms: APPOINTMENT_MS + 5_000,
                actor: "clerk-1".into(),
                role: "clerk".into(),
                action: "application.flag".into(),
                office: "BOG1".into(),
                subject: "app-1".into(),
                from_state: Some("paid".into()),
                to_state: Some("flagged".into()),
                detail: "lost passport report pending".into(),
            }
        );
    }

    #[test]
    fn every_live_state_is_owned_and_has_a_deadline() {
        for state in State::ALL {
            let a = app(state);
            if state.is_terminal() {
                assert_eq!(a.queue(), Queue::Closed);
                assert_eq!(a.deadline(), None);
                assert!(
                    !EDGES.iter().any(|e| e.from == state),
                    "{state} is terminal"
                );
            } else {
                assert_ne!(a.queue(), Queue::Closed, "{state} has no queue");
                let d = a.deadline().unwrap();
                assert!(d > a.state_since(), "{state}'s deadline is in the past");
                assert!(!a.is_overdue(d));
                assert!(
                    EDGES.iter().any(|e| e.from == state),
                    "{state} is a dead end"
                );
            }
        }
        // The deadline counts from entering the state, Booked's from the
        // appointment.
        assert_eq!(app(S::Booked).deadline(), Some(at(30 * 60_000)));
        assert_eq!(
            app(S::Captured).deadline(),
            Some(at(-3_600_000 + 10 * 60_000))
        );
    }

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(State::parse("Booked"), None);
        // Every state is reachable from Booked.
        let mut seen = vec![S::Booked];
        let mut i = 0;
        while i < seen.len() {
            let from = seen[i];
            for e in EDGES.iter().filter(|e| e.from == from) {
                if !seen.contains(&e.to) {
                    seen.push(e.to);
                }
            }
            i += 1;
        }
        assert_eq!(seen.len(), State::ALL.len());
    }

    proptest! {
        #[test]
        fn random_walks_stay_on_the_graph(
            steps in proptest::collection::vec((any::<bool>(), 0..64usize, 0..64usize, 0i64..3_600_000), 1..60)
        ) {
            let mut a = Application::booked("app-9", "MAD", at(0), at(-86_400_000));
            let mut now = at(-7_200_000);
            for (along_an_edge, k, r, dt) in steps {
                now = Timestamp::from_millisecond(now.as_millisecond() + dt).unwrap();
                // Half the steps follow a documented edge (so walks go deep),
                // half are any command by any role (so refusals are tried).
                let out: Vec<&Edge> = EDGES.iter().filter(|e| e.from == a.state()).collect();
                let (kind, role) = match out.get(k % out.len().max(1)) {
                    Some(e) if along_an_edge => (e.command, e.roles[r % e.roles.len()]),
                    _ => (CommandKind::ALL[k % CommandKind::ALL.len()], Role::ALL[r % Role::ALL.len()]),
                };
                let who = actor(role);
                match a.apply(&command(kind), &who, now) {
                    Ok((next, event)) => {
                        prop_assert!(!a.state().is_terminal());
                        let on_graph = EDGES.iter().any(|e| e.from == a.state()
                            && e.command == kind
                            && e.to == next.state()
                            && e.roles.contains(&who.role));
                        prop_assert!(on_graph, "{} --{}--> {} by {}", a.state(), kind, next.state(), who.role);
                        prop_assert_eq!(event.from_state.as_deref(), Some(a.state().as_str()));
                        prop_assert_eq!(event.to_state.as_deref(), Some(next.state().as_str()));
                        prop_assert_eq!(event.at_ms, now.as_millisecond());
                        prop_assert_eq!(&event.subject, "app-9");
                        a = next;
                    }
                    Err(_) => {
                        // Refusals change nothing (apply takes &self), and
                        // from a terminal state everything is refused.
                    }
                }
                if a.state().is_terminal() {
                    for kind in CommandKind::ALL {
                        for role in Role::ALL {
                            prop_assert!(a.apply(&command(kind), &actor(role), now).is_err());
                        }
                    }
                }
            }
        }
    }
}
