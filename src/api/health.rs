//! `GET /health` (public) and `GET /metrics` (Prometheus text, needs the key).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;

/// Worker health for load balancers and the orchestrator.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, or `degraded` while shutting down or while AdsPower is unreachable. A draining
    /// worker stays `healthy`: see `draining`.
    pub status: &'static str,
    /// `connected`, `disconnected`, or `not_configured` (this worker has no AdsPower provider).
    pub adspower: &'static str,
    pub active_sessions: usize,
    pub max_sessions: usize,
    /// `max_sessions` less the open sessions.
    pub free_slots: usize,
    /// `true` after `POST /api/v1/worker/drain`: the worker takes no new sessions or tasks, so
    /// a load balancer should send them elsewhere.
    pub draining: bool,
    /// Fleet mode: `connected` (Redis answered the last call), `unreachable`, or
    /// `not_configured` (no `BW_REDIS_URL`).
    pub fleet: &'static str,
    /// Whether local browsers run in Chromium's sandbox (`false`: `--no-sandbox`, because they
    /// would run as root or the machine allows neither user namespaces nor the setuid helper).
    pub sandbox: bool,
    /// The user local browsers run as; `null`: the worker's own.
    pub browser_user: Option<String>,
    /// How each local browser's memory and processes are limited: `cgroup2`, `cgroup1`,
    /// `rlimit` (memory per process only) or `none`.
    pub browser_limits: &'static str,
    /// Whether Chromium's managed policy keeps WebRTC's UDP from going around the egress
    /// proxy (`false`: pages may gather this machine's addresses; install
    /// `deploy/chromium/browser-worker-policy.json`).
    pub webrtc_policy: bool,
    /// V1 tasks in progress.
    pub active_tasks: usize,
    /// Browsers (or, in `context` mode, browser contexts) ready in the warm pool.
    pub warm_pool_ready: usize,
    /// How a session without a profile gets its browser: `process` (a Chromium of its own) or
    /// `context` (a browser context in a shared Chromium; `BW_EPHEMERAL_MODE`).
    pub ephemeral_mode: &'static str,
    pub uptime_seconds: u64,
    pub version: &'static str,
}

/// Health check (no auth).
#[utoipa::path(get, path = "/health", tag = "health", security(()), responses((status = 200, body = Health)))]
pub async fn health(State(app): State<Arc<App>>) -> Json<Health> {
    let adspower = match &app.adspower {
        None => "not_configured",
        Some(client) if client.connected().await => "connected",
        Some(_) => "disconnected",
    };
    let degraded = app.is_shutting_down() || adspower == "disconnected";
    Json(Health {
        status: if degraded { "degraded" } else { "healthy" },
        adspower,
        active_sessions: app.registry.active(),
        max_sessions: app.registry.max_sessions(),
        free_slots: app.free_slots(),
        draining: app.is_draining(),
        fleet: match &app.fleet {
            None => "not_configured",
            Some(fleet) if fleet.reachable() => "connected",
            Some(_) => "unreachable",
        },
        sandbox: app.confinement.sandbox(),
        browser_user: app.confinement.user().map(|u| u.name.clone()),
        browser_limits: app.confinement.limits().kind(),
        webrtc_policy: app.webrtc_policy,
        active_tasks: app.active_tasks.load(std::sync::atomic::Ordering::SeqCst),
        warm_pool_ready: app.pool.as_ref().map_or(0, |p| p.ready()),
        ephemeral_mode: if app.registry.provider().shares_browsers() { "context" } else { "process" },
        uptime_seconds: app.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::metrics().render())
}
