//! CDP passthrough: `GET /api/v2/sessions/{id}/cdp` upgrades to a WebSocket bridged to the
//! session's browser, `GET …/json/version` advertises it, `POST …/cdp-token` mints a token.
//!
//! Auth: the API key (`Authorization: Bearer`), or `?token=` with a CDP token of that session.
//! The worker connects to the DevTools endpoint itself, so Chromium sees a loopback `Host` and
//! no `Origin`, whatever the client sent.

use std::sync::Arc;

use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::KeyAuthenticated;
use super::sessions::SessionIdPath;
use crate::app::App;
use crate::bridge::{self, CdpPolicy, Control};
use crate::error::{ApiError, ErrorBody};
use crate::session::{Session, ws_base};
use crate::token::{Scope, TokenLimit};

/// The `?token=` of token-gated routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct TokenQuery {
    /// A session token (`vnc-token` / `cdp-token`).
    pub token: Option<String>,
}

/// `POST …/cdp-token` answer.
#[derive(Serialize, ToSchema)]
pub struct CdpAccess {
    /// The passthrough URL with the token in its query (no header needed).
    pub cdp_url: String,
    /// An HS256 JWT scoped to this session and to CDP.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Checks auth, then the session; both before any upgrade. The caller presented the key, or
/// the session's newest CDP token.
pub struct CdpTarget {
    session: Arc<Session>,
    /// The token it came with (kept in advertised URLs) and when it stops working, if any.
    token: Option<(String, TokenLimit)>,
}

impl FromRequestParts<Arc<App>> for CdpTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let SessionIdPath(id) = SessionIdPath::from_request_parts(parts, app).await?;
        let Query(query) = Query::<TokenQuery>::from_request_parts(parts, &()).await.unwrap_or_default();
        if parts.extensions.get::<KeyAuthenticated>().is_some() {
            return Ok(Self { session: app.registry.get(id)?, token: None });
        }
        let grant = app.tokens.verify(query.token.as_deref(), id, Scope::Cdp)?;
        let session = app.registry.get(id)?;
        let limit = session.check_grant(Scope::Cdp, grant)?;
        Ok(Self { session, token: query.token.map(|t| (t, limit)) })
    }
}

/// The session's browser over CDP (WebSocket upgrade). Playwright `connectOverCDP` and
/// Puppeteer `connect` work through it. Only an allow-list of methods passes (`bridge::CdpPolicy`):
/// no browser-level calls such as `Browser.close`, no `file:`/`chrome:` targets, downloads only into
/// the session's own directory.
#[utoipa::path(get, path = "/api/v2/sessions/{id}/cdp", tag = "access", params(("id" = String, Path), TokenQuery),
    security(("bearer" = []), ()),
    responses((status = 101, description = "switching to the CDP WebSocket"),
        (status = 400, body = ErrorBody, description = "websocket_required"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too_many_clients"),
        (status = 502, body = ErrorBody, description = "browser_disconnected")))]
pub async fn cdp_socket(
    State(app): State<Arc<App>>,
    target: CdpTarget,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let CdpTarget { session, token } = target;
    let upgrade = upgrade.map_err(|_| websocket_required())?;
    let attached = session.attach()?;
    let upstream = bridge::connect_devtools(session.cdp_endpoint()).await.map_err(|e| {
        tracing::warn!(session_id = %session.id, error = %e, "CDP passthrough cannot reach the browser");
        ApiError::new(StatusCode::BAD_GATEWAY, "browser_disconnected", "the session's browser cannot be reached")
    })?;
    // Downloads a client asks for are written there by the browser, as the browser user.
    app.confinement.give(&session.files_dir).map_err(|e| {
        tracing::warn!(session_id = %session.id, error = %e, "cannot prepare the session's files dir");
        ApiError::internal()
    })?;
    let policy = CdpPolicy { downloads_dir: session.files_dir.join("downloads"), files_dir: session.files_dir.clone() };
    let idle = app.config.bridge_idle_timeout();
    let limit = bridge::CDP_MAX_CLIENT_MESSAGE;
    Ok(upgrade.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| async move {
        let _attached = attached;
        let toucher = session.clone();
        let control = Control {
            stop: session.ended(),
            token: token.map(|(_, limit)| limit),
            idle,
            activity: Box::new(move || toucher.touch()),
        };
        metrics::gauge!("bw_bridges_active", "kind" => "cdp").increment(1.0);
        let scope = session.browser_context().map(|c| bridge::ContextScope::new(c, session.page_target()));
        let end = bridge::websocket_to_websocket(socket, upstream, policy, scope, control).await;
        metrics::gauge!("bw_bridges_active", "kind" => "cdp").decrement(1.0);
        metrics::counter!("bw_bridges_closed_total", "kind" => "cdp", "reason" => end.as_str()).increment(1);
        tracing::info!(session_id = %session.id, reason = end.as_str(), "CDP client detached");
    }))
}

/// A 400 for a plain request to a WebSocket route.
pub fn websocket_required() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "websocket_required", "this route needs a WebSocket upgrade request")
}

/// The browser's `/json/version`, with `webSocketDebuggerUrl` pointing at the passthrough
/// (what `connectOverCDP("http://…/api/v2/sessions/{id}")` reads).
#[utoipa::path(get, path = "/api/v2/sessions/{id}/json/version", tag = "access", params(("id" = String, Path), TokenQuery),
    security(("bearer" = []), ()),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn json_version(State(app): State<Arc<App>>, target: CdpTarget) -> Result<Json<Value>, ApiError> {
    let session = &target.session;
    let unreachable =
        || ApiError::new(StatusCode::BAD_GATEWAY, "browser_disconnected", "the session's browser cannot be reached");
    let endpoint = url::Url::parse(session.cdp_endpoint()).map_err(|_| unreachable())?;
    let host = endpoint.host_str().ok_or_else(unreachable)?;
    let port = endpoint.port_or_known_default().ok_or_else(unreachable)?;
    let client =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().map_err(|_| unreachable())?;
    let mut version: Value =
        async { client.get(format!("http://{host}:{port}/json/version")).send().await?.json().await }
            .await
            .map_err(|_: reqwest::Error| unreachable())?;
    let mut url = format!("{}/api/v2/sessions/{}/cdp", ws_base(app.public_url()), session.id);
    if let Some((token, _)) = &target.token {
        url = format!("{url}?token={token}");
    }
    version["webSocketDebuggerUrl"] = Value::String(url);
    Ok(Json(version))
}

/// A token that opens this session's CDP passthrough without the API key.
#[utoipa::path(post, path = "/api/v2/sessions/{id}/cdp-token", tag = "access", params(("id" = String, Path)),
    responses((status = 200, body = CdpAccess), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn cdp_token(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
) -> Result<Json<CdpAccess>, ApiError> {
    let session = app.registry.get(id)?;
    session.touch();
    let minted = session.mint_token(&app.tokens, Scope::Cdp);
    Ok(Json(CdpAccess {
        cdp_url: format!("{}/api/v2/sessions/{id}/cdp?token={}", ws_base(app.public_url()), minted.token),
        token: minted.token,
        expires_at: minted.expires_at,
    }))
}
