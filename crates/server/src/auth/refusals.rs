//! Authorization refusals and failed sign-ins, logged and counted (issue 12
//! item 6).
//!
//! Every refusal of a signed-in staff member is logged at WARN with the staff
//! id, the route (method and matched path, e.g. `GET
//! /api/v1/staff/applications/{id}`: no ids from the path) and the office,
//! and counted by kind in the App's [`SecurityCounters`]; failed sign-ins are
//! counted there too (their audit event is in `accounts.rs`). The counters
//! are served at `GET /metrics` in the Prometheus text format: counts only,
//! no ids, so the route needs no session.
//!
//! Where refusals are seen: [`super::StaffSession::authorize`] (the role
//! half of the policy table, and the office named by the route) and
//! [`crate::workflow::in_scope`] (an object, such as an application, of an
//! office the person is not assigned to: answered like an unknown one).
//! Both sit below the handlers, which do not know the route or the App's
//! counters: [`note_request`], a route layer over the whole router, puts them
//! in a task-local for the request's task. A check made outside a request
//! (a unit test, a worker) is logged without a route and counted nowhere.

use crate::http::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a refusal was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// The role may not take this action anywhere.
    Role,
    /// The action names an office the person is not assigned to.
    Office,
    /// The thing asked for (an application, a booking...) belongs to such
    /// an office.
    Object,
}

impl RefusalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Role => "role",
            RefusalKind::Office => "office",
            RefusalKind::Object => "object",
        }
    }
}

/// Counters since the process started.
#[derive(Debug, Default)]
pub struct SecurityCounters {
    role: AtomicU64,
    office: AtomicU64,
    object: AtomicU64,
    failed_sign_ins: AtomicU64,
}

impl SecurityCounters {
    pub fn refusals(&self, kind: RefusalKind) -> u64 {
        self.cell(kind).load(Ordering::Relaxed)
    }

    pub fn failed_sign_ins(&self) -> u64 {
        self.failed_sign_ins.load(Ordering::Relaxed)
    }

    fn cell(&self, kind: RefusalKind) -> &AtomicU64 {
        match kind {
            RefusalKind::Role => &self.role,
            RefusalKind::Office => &self.office,
            RefusalKind::Object => &self.object,
        }
    }

    /// The Prometheus text exposition of the counters.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::from(
            "# HELP pasaporte_authorization_refusals_total Staff requests refused by the role or office policy.\n\
             # TYPE pasaporte_authorization_refusals_total counter\n",
        );
        for kind in [RefusalKind::Role, RefusalKind::Office, RefusalKind::Object] {
            out.push_str(&format!(
                "pasaporte_authorization_refusals_total{{kind=\"{}\"}} {}\n",
                kind.as_str(),
                self.refusals(kind)
            ));
        }
        out.push_str(&format!(
            "# HELP pasaporte_failed_sign_ins_total Staff sign-ins and re-authentications refused.\n\
             # TYPE pasaporte_failed_sign_ins_total counter\n\
             pasaporte_failed_sign_ins_total {}\n",
            self.failed_sign_ins()
        ));
        out
    }
}

/// What the request's task knows for the checks below the handlers.
#[derive(Clone, Debug)]
struct RequestNote {
    route: String,
    counters: Arc<SecurityCounters>,
}

tokio::task_local! {
    static REQUEST: RequestNote;
}

/// The route layer that notes the matched route and the App's counters for
/// the request's task.
pub async fn note_request(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
    let note = RequestNote {
        route: format!("{} {path}", req.method()),
        counters: app.security.clone(),
    };
    REQUEST.scope(note, next.run(req)).await
}

/// Logs and counts one refusal of `staff_id`.
pub fn record(staff_id: &str, office: Option<&str>, kind: RefusalKind) {
    let note = REQUEST.try_with(Clone::clone).ok();
    let route = note.as_ref().map_or("-", |n| n.route.as_str());
    tracing::warn!(
        staff_id,
        route,
        office = office.unwrap_or("-"),
        kind = kind.as_str(),
        "authorization refused"
    );
    if let Some(n) = note {
        n.counters.cell(kind).fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one refused sign-in or re-authentication.
pub fn count_failed_sign_in() {
    let _ = REQUEST.try_with(|n| n.counters.failed_sign_ins.fetch_add(1, Ordering::Relaxed));
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.security.to_prometheus(),
    )
        .into_response()
}
