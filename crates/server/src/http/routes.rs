//! The JSON API's route table: a router that remembers the method and path
//! of every route added to it, so that a test can hold the OpenAPI document
//! against the routes the service really answers (axum's `Router` does not
//! list its routes).
//!
//! Every route under `/api/` and the health checks are added through
//! [`ApiRoutes`]; pages and console pages (HTML) use axum's `Router` directly
//! and are not part of the document. The test in `http/openapi.rs` refuses a
//! plain axum route call with an `/api/` path anywhere under `src/`, so a
//! JSON route cannot
//! bypass the table.

use super::AppState;
use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};

/// The methods the JSON API uses. A closed set, so that the method recorded
/// and the method the router answers come from one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }
}

/// A router of JSON routes and the table of what it holds.
pub struct ApiRoutes {
    router: Router<AppState>,
    table: Vec<(Verb, &'static str)>,
}

impl Default for ApiRoutes {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiRoutes {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// `handler` answers `verb` at `path`.
    pub fn route<H, T>(self, verb: Verb, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route_with(verb, path, handler, |m| m)
    }

    /// Like [`Self::route`], with `wrap` applied to the one method's router
    /// (a body limit, a rate limit of that method only).
    pub fn route_with<H, T>(
        mut self,
        verb: Verb,
        path: &'static str,
        handler: H,
        wrap: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        // A second method on a path already routed is merged into it by axum.
        self.router = self
            .router
            .route(path, wrap(axum::routing::on(verb.filter(), handler)));
        self.table.push((verb, path));
        self
    }

    /// The router with `f` applied (`route_layer`, `layer`), for the routes
    /// added so far.
    pub fn map(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    pub fn merge(mut self, other: ApiRoutes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Every (method, path) added, in order.
    pub fn table(&self) -> Vec<(Method, &'static str)> {
        self.table.iter().map(|(v, p)| (v.method(), *p)).collect()
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}
