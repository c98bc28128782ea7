//! Citizen pages (server-rendered, Spanish by default, usable without JavaScript).

use super::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
