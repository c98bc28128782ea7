//! Who may do what: the one role-by-action table that every staff route is
//! checked against.
//!
//! A route names its [`Action`]; the HTTP layer asks [`allows`] with the
//! signed-in person's [`Role`] before the use case runs, and, for the actions
//! where [`Action::needs_fresh_sign_in`] is true, also asks for the password
//! again when the last sign-in is older than [`FRESH_SIGN_IN_MINUTES`].
//! Office scoping (a clerk of BOG sees only BOG) is checked beside it: every
//! action on an office's data names the office.
//!
//! Citizens are not in this table: a citizen reaches exactly one booking,
//! through its manage token, and nothing else.

use crate::application::Role;

/// Supervisor decisions ask for the password again after this long.
pub const FRESH_SIGN_IN_MINUTES: i64 = 10;

/// Everything staff can ask for. Exhaustive matches keep the table complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The day's appointments and queue of an office.
    ViewOfficeDay,
    /// Check a citizen in, call them to a counter, give a walk-in a ticket.
    CheckIn,
    /// Record photo, fingerprints, signature and the applicant's data.
    Capture,
    /// Read one application and its history.
    ViewApplication,
    /// Record a cash or card payment at the counter, ask for a fee waiver.
    TakePayment,
    /// Approve a paid application that no automatic check flagged.
    Approve,
    /// Decide flagged applications, reject, cancel.
    Decide,
    /// Let an application past an unavailable civil registry, with a reason.
    OverrideRegistry,
    /// Grant a fee waiver.
    ApproveWaiver,
    /// The supervisor queues: flagged, pending registry, waivers, overdue.
    ViewSupervisorQueues,
    /// References, payments and refunds.
    ViewReconciliation,
    /// Create staff accounts, assign roles and offices.
    ManageStaff,
    /// Read the audit trail and verify it.
    ViewAudit,
    /// Booklet stock levels and the forecast of days left, per type and site.
    ViewStock,
    /// Production orders, their vendors and states; the dead-letter queue.
    ViewProduction,
    /// Send a dead-lettered production order again.
    ResendOrder,
    /// Mark a printing vendor draining or active (the vendor switch).
    ManageVendors,
    /// Receive a booklet at the office (its MRZ checked against the record),
    /// hand it over, issue an emergency passport from the office's stock.
    HandOver,
    /// Open a ballot release of a city's seats and run its draw.
    ManageReleases,
    /// Requests that share a device or a phone: possible resellers.
    ViewScalperSignals,
    /// Set an office's release mode (live or ballot) and capacity split.
    ManageOfficePolicy,
    /// Book a seat from the urgent pool for a case with evidence.
    GrantUrgent,
    /// Close an office for a day or lower its capacity for a day; the
    /// affected bookings are re-seated (or left for the citizen's choice).
    ManageOfficeDays,
}

impl Action {
    pub const ALL: [Action; 23] = [
        Action::ViewOfficeDay,
        Action::CheckIn,
        Action::Capture,
        Action::ViewApplication,
        Action::TakePayment,
        Action::Approve,
        Action::Decide,
        Action::OverrideRegistry,
        Action::ApproveWaiver,
        Action::ViewSupervisorQueues,
        Action::ViewReconciliation,
        Action::ManageStaff,
        Action::ViewAudit,
        Action::ViewStock,
        Action::ViewProduction,
        Action::ResendOrder,
        Action::ManageVendors,
        Action::HandOver,
        Action::ManageReleases,
        Action::ViewScalperSignals,
        Action::ManageOfficePolicy,
        Action::GrantUrgent,
        Action::ManageOfficeDays,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewOfficeDay => "view_office_day",
            Action::CheckIn => "check_in",
            Action::Capture => "capture",
            Action::ViewApplication => "view_application",
            Action::TakePayment => "take_payment",
            Action::Approve => "approve",
            Action::Decide => "decide",
            Action::OverrideRegistry => "override_registry",
            Action::ApproveWaiver => "approve_waiver",
            Action::ViewSupervisorQueues => "view_supervisor_queues",
            Action::ViewReconciliation => "view_reconciliation",
            Action::ManageStaff => "manage_staff",
            Action::ViewAudit => "view_audit",
            Action::ViewStock => "view_stock",
            Action::ViewProduction => "view_production",
            Action::ResendOrder => "resend_order",
            Action::ManageVendors => "manage_vendors",
            Action::HandOver => "hand_over",
            Action::ManageReleases => "manage_releases",
            Action::ViewScalperSignals => "view_scalper_signals",
            Action::ManageOfficePolicy => "manage_office_policy",
            Action::GrantUrgent => "grant_urgent",
            Action::ManageOfficeDays => "manage_office_days",
        }
    }

    /// Decisions a supervisor takes alone ask for the password again when the
    /// sign-in is older than [`FRESH_SIGN_IN_MINUTES`].
    pub fn needs_fresh_sign_in(self) -> bool {
        match self {
            Action::Decide
            | Action::OverrideRegistry
            | Action::ApproveWaiver
            | Action::ManageStaff
            | Action::ManageVendors
            | Action::ManageOfficePolicy
            | Action::ManageOfficeDays => true,
            Action::ViewOfficeDay
            | Action::CheckIn
            | Action::Capture
            | Action::ViewApplication
            | Action::TakePayment
            | Action::Approve
            | Action::ViewSupervisorQueues
            | Action::ViewReconciliation
            | Action::ViewAudit
            | Action::ViewStock
            | Action::ViewProduction
            | Action::ResendOrder
            | Action::HandOver
            | Action::ManageReleases
            | Action::ViewScalperSignals
            | Action::GrantUrgent => false,
        }
    }

    /// Whether the action reads or changes one office's data (and so is
    /// limited to the offices the person is assigned to).
    pub fn is_office_scoped(self) -> bool {
        match self {
            Action::ViewOfficeDay
            | Action::CheckIn
            | Action::Capture
            | Action::ViewApplication
            | Action::TakePayment
            | Action::Approve
            | Action::Decide
            | Action::OverrideRegistry
            | Action::ApproveWaiver
            | Action::ViewSupervisorQueues
            | Action::ViewReconciliation
            | Action::HandOver
            | Action::GrantUrgent
            | Action::ManageOfficeDays
            // An order is its application's office's (it names the holder's
            // passport number, booklet and tracking): lists and re-sends
            // are limited to the person's offices.
            | Action::ViewProduction
            | Action::ResendOrder
            // A release spans a city's offices: opening, drawing and its
            // signals need every one of them in the assignment.
            | Action::ManageReleases
            | Action::ViewScalperSignals => true,
            // Stock levels are counts per site (vendors' sites and offices'
            // emergency stock), vendors are shared: no office's data.
            Action::ManageStaff
            | Action::ViewAudit
            | Action::ViewStock
            | Action::ManageVendors
            // Offices' policies are set centrally by administrators, who
            // are not assigned to offices.
            | Action::ManageOfficePolicy => false,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

use Role::{Administrator, Auditor, Clerk, Supervisor};

/// The table. Auditors read and change nothing; administrators manage staff
/// and read the trail but decide no application (separation of duties).
pub const POLICY: &[(Action, &[Role])] = &[
    (Action::ViewOfficeDay, &[Clerk, Supervisor]),
    (Action::CheckIn, &[Clerk, Supervisor]),
    (Action::Capture, &[Clerk, Supervisor]),
    (Action::ViewApplication, &[Clerk, Supervisor, Auditor]),
    (Action::TakePayment, &[Clerk, Supervisor]),
    (Action::Approve, &[Clerk, Supervisor]),
    (Action::Decide, &[Supervisor]),
    (Action::OverrideRegistry, &[Supervisor]),
    (Action::ApproveWaiver, &[Supervisor]),
    (Action::ViewSupervisorQueues, &[Supervisor, Auditor]),
    (Action::ViewReconciliation, &[Supervisor, Auditor]),
    (Action::ManageStaff, &[Administrator]),
    (Action::ViewAudit, &[Auditor, Administrator]),
    (Action::ViewStock, &[Supervisor, Administrator, Auditor]),
    (
        Action::ViewProduction,
        &[Supervisor, Administrator, Auditor],
    ),
    (Action::ResendOrder, &[Supervisor]),
    (Action::ManageVendors, &[Administrator]),
    (Action::HandOver, &[Clerk, Supervisor]),
    (Action::ManageReleases, &[Supervisor, Administrator]),
    (Action::ViewScalperSignals, &[Supervisor, Auditor]),
    (Action::ManageOfficePolicy, &[Administrator]),
    (Action::GrantUrgent, &[Supervisor]),
    (Action::ManageOfficeDays, &[Supervisor, Administrator]),
];

/// Whether `role` may do `action`.
pub fn allows(role: Role, action: Action) -> bool {
    POLICY
        .iter()
        .find(|(a, _)| *a == action)
        .is_some_and(|(_, roles)| roles.contains(&role))
}

/// The staff roles (those that sign in to the console).
pub const STAFF_ROLES: [Role; 4] = [Clerk, Supervisor, Administrator, Auditor];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_in_the_table_once() {
        for a in Action::ALL {
            assert_eq!(POLICY.iter().filter(|(x, _)| *x == a).count(), 1, "{a}");
        }
        assert_eq!(POLICY.len(), Action::ALL.len());
    }

    #[test]
    fn citizens_and_the_system_hold_no_staff_action() {
        for a in Action::ALL {
            assert!(!allows(Role::Citizen, a), "{a}");
            assert!(!allows(Role::System, a), "{a}");
        }
    }

    #[test]
    fn auditors_only_read() {
        for a in Action::ALL {
            let reads = matches!(
                a,
                Action::ViewApplication
                    | Action::ViewSupervisorQueues
                    | Action::ViewReconciliation
                    | Action::ViewAudit
                    | Action::ViewStock
                    | Action::ViewProduction
                    | Action::ViewScalperSignals
            );
            assert_eq!(allows(Role::Auditor, a), reads, "{a}");
        }
    }

    #[test]
    fn administrators_decide_no_application() {
        for a in [
            Action::Approve,
            Action::Decide,
            Action::OverrideRegistry,
            Action::ApproveWaiver,
            Action::CheckIn,
            Action::Capture,
            Action::HandOver,
            Action::ResendOrder,
        ] {
            assert!(!allows(Role::Administrator, a), "{a}");
        }
    }
}
