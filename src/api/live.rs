//! Live view routes (SPEC §3.7): `POST /api/v2/sessions/{id}/live-token`, the `GET /live/{id}`
//! WebSocket (JPEG frames out, input in) and the `GET /live/{id}/viewer` page.
//!
//! The socket and the page need a live token of that session (`?token=`), under the rules of
//! VNC tokens: another session's, an expired, a forged or a replaced token is a 401, a closed
//! session a 410. Live viewers count against the session's attached-client cap.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::cdp::{TokenQuery, websocket_required};
use super::json::OptionalJson;
use super::sessions::SessionIdPath;
use crate::app::App;
use crate::bridge::Control;
use crate::error::{ApiError, ErrorBody};
use crate::live::{self, LiveHub};
use crate::session::{LiveAccess, Session, SessionId};
use crate::token::{LiveMode, Scope, TokenLimit};

/// `POST …/live-token` request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveTokenRequest {
    /// `control` (watch and drive, the default) or `view` (watch only).
    #[serde(default)]
    pub mode: LiveMode,
}

/// The open session `id`, for a caller holding its newest live token of the token's mode; the
/// mode, and when that token stops working.
fn authorized(app: &App, id: SessionId, query: &TokenQuery) -> Result<(Arc<Session>, LiveMode, TokenLimit), ApiError> {
    let grant = app.tokens.verify(query.token.as_deref(), id, Scope::Live)?;
    let session = app.registry.get(id)?;
    let limit = session.check_grant(Scope::Live, grant)?;
    Ok((session, grant.mode.unwrap_or(LiveMode::View), limit))
}

/// Mint a live view token (`control` or `view`); a new token of a mode replaces the older ones
/// of that mode (their viewers are disconnected).
#[utoipa::path(post, path = "/api/v2/sessions/{id}/live-token", tag = "access", params(("id" = String, Path)),
    request_body(content = Option<LiveTokenRequest>),
    responses((status = 200, body = LiveAccess), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn live_token(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    OptionalJson(request): OptionalJson<LiveTokenRequest>,
) -> Result<Json<LiveAccess>, ApiError> {
    let session = app.registry.get(id)?;
    session.touch();
    let access = session.mint_live(&app.tokens, request.mode, app.public_url());
    Ok(Json(access))
}

/// The session's page, live (WebSocket upgrade): binary JPEG frames and `page`/`error` JSON out,
/// `mouse`/`scroll`/`key`/`text` JSON in (refused with `view_only` on a view token).
#[utoipa::path(get, path = "/live/{id}", tag = "access", params(("id" = String, Path), TokenQuery), security(()),
    responses((status = 101, description = "switching to the live view WebSocket"),
        (status = 400, body = ErrorBody, description = "websocket_required"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too_many_clients")))]
pub async fn live_socket(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    query: Result<Query<TokenQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let (session, mode, limit) = authorized(&app, id, &query.map(|q| q.0).unwrap_or_default())?;
    let upgrade = upgrade.map_err(|_| websocket_required())?;
    let attached = session.attach_live()?;
    let hub = session.live_hub(|| {
        LiveHub::start(
            session.cdp_endpoint().to_string(),
            session.page_target().to_string(),
            session.browser_context().map(str::to_string),
        )
    });
    let idle = app.config.bridge_idle_timeout();
    let size = live::MAX_CLIENT_MESSAGE;
    Ok(upgrade.max_message_size(size).max_frame_size(size).on_upgrade(move |socket| async move {
        let _attached = attached;
        let toucher = session.clone();
        let control =
            Control { stop: session.ended(), token: Some(limit), idle, activity: Box::new(move || toucher.touch()) };
        metrics::gauge!("bw_bridges_active", "kind" => "live").increment(1.0);
        let end = live::serve(socket, hub, mode, control).await;
        metrics::gauge!("bw_bridges_active", "kind" => "live").decrement(1.0);
        metrics::counter!("bw_bridges_closed_total", "kind" => "live", "reason" => end.as_str()).increment(1);
        tracing::info!(session_id = %session.id, mode = mode.as_str(), reason = end.as_str(), "live viewer detached");
    }))
}

/// A self-contained page showing the session's page live and sending mouse, wheel, keyboard
/// and paste (for a browser tab or an iframe); it says "view only" for a view token.
#[utoipa::path(get, path = "/live/{id}/viewer", tag = "access", params(("id" = String, Path), TokenQuery), security(()),
    responses((status = 200, content_type = "text/html", body = String), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn live_viewer(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (_, mode, _) = authorized(&app, id, &query.map(|q| q.0).unwrap_or_default())?;
    let page = live::VIEWER_HTML.replace("{mode}", mode.as_str());
    // The token is in the URL: never cache the page, never send it on as a referrer; it loads
    // nothing from elsewhere.
    let policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob: data:; \
                  connect-src 'self'; frame-ancestors *";
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, policy),
        ],
        Html(page),
    )
        .into_response())
}
