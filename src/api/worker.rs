//! `/api/v1/worker/drain` and `…/undrain` (SPEC §3.8): stop taking new sessions and tasks before
//! an upgrade or a scale-down, while the open sessions go on; and the check the creating routes
//! make first.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::error::ApiError;

/// Whether the worker takes new work, and how much it holds.
#[derive(Serialize, ToSchema)]
pub struct WorkerState {
    /// `true`: new sessions and tasks answer 503 `draining`.
    pub draining: bool,
    pub active_sessions: usize,
    /// `max_sessions` less the open sessions.
    pub free_slots: usize,
}

impl WorkerState {
    fn of(app: &App) -> Self {
        Self { draining: app.is_draining(), active_sessions: app.registry.active(), free_slots: app.free_slots() }
    }
}

/// Drain: new sessions and tasks answer 503 `draining` (with `Retry-After`) until `undrain`;
/// open sessions, their operations, sockets and closes go on. Idempotent.
#[utoipa::path(post, path = "/api/v1/worker/drain", tag = "worker", responses((status = 200, body = WorkerState)))]
pub async fn drain_worker(State(app): State<Arc<App>>) -> Json<WorkerState> {
    app.drain();
    Json(WorkerState::of(&app))
}

/// Undrain: take new sessions and tasks again. Idempotent.
#[utoipa::path(post, path = "/api/v1/worker/undrain", tag = "worker", responses((status = 200, body = WorkerState)))]
pub async fn undrain_worker(State(app): State<Arc<App>>) -> Json<WorkerState> {
    app.undrain();
    Json(WorkerState::of(&app))
}

/// 503 `draining` while the worker drains; the first thing a route that starts new work does.
pub fn refuse_if_draining(app: &App) -> Result<(), ApiError> {
    if app.is_draining() { Err(ApiError::draining()) } else { Ok(()) }
}
