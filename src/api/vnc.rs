//! Human takeover: `GET /vnc/{id}` (WebSocket, subprotocol `binary`) bridged to the session's
//! VNC server, `GET /vnc/{id}/viewer` (a noVNC page connected to it), noVNC's static files
//! under `/vnc/static/`, and `POST /api/v2/sessions/{id}/vnc-token`.
//!
//! The socket and the viewer page need a VNC token of that session (`?token=`); static files
//! need nothing.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::{Method, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::cdp::{TokenQuery, websocket_required};
use super::sessions::SessionIdPath;
use crate::app::App;
use crate::bridge::{self, Control};
use crate::browser::display::VncAddr;
use crate::error::{ApiError, ErrorBody};
use crate::session::{Session, SessionId, VncAccess};
use crate::token::{Scope, TokenLimit};

/// The open session `id` with a display, for a caller holding its newest VNC token, and when
/// that token stops working.
fn authorized(app: &App, id: SessionId, query: &TokenQuery) -> Result<(Arc<Session>, TokenLimit), ApiError> {
    let grant = app.tokens.verify(query.token.as_deref(), id, Scope::Vnc)?;
    let session = app.registry.get(id)?;
    let limit = session.check_grant(Scope::Vnc, grant)?;
    if session.vnc_addr().is_none() {
        return Err(no_display());
    }
    Ok((session, limit))
}

fn no_display() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "invalid_state", "the session has no display (create it with `display: true`)")
}

/// The session's screen over VNC (WebSocket upgrade, subprotocol `binary`); what noVNC connects to.
#[utoipa::path(get, path = "/vnc/{id}", tag = "access", params(("id" = String, Path), TokenQuery), security(()),
    responses((status = 101, description = "switching to the VNC WebSocket"),
        (status = 400, body = ErrorBody, description = "websocket_required"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "invalid_state: no display"),
        (status = 410, body = ErrorBody), (status = 429, body = ErrorBody, description = "too_many_clients"),
        (status = 502, body = ErrorBody, description = "vnc_unavailable")))]
pub async fn vnc_socket(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    query: Result<Query<TokenQuery>, QueryRejection>,
    upgrade: Result<RawUpgrade, ApiError>,
) -> Result<Response, ApiError> {
    let (session, limit) = authorized(&app, id, &query.map(|q| q.0).unwrap_or_default())?;
    let upgrade = upgrade?;
    let addr = session.vnc_addr().ok_or_else(no_display)?;
    let upstream = match addr {
        VncAddr::Unix(path) => bridge::connect_vnc_unix(path).await,
        VncAddr::Tcp(addr) => bridge::connect_vnc_tcp(*addr).await,
    };
    let upstream = upstream.map_err(|e| {
        tracing::warn!(session_id = %id, error = %e, "VNC bridge cannot reach the VNC server");
        ApiError::new(StatusCode::BAD_GATEWAY, "vnc_unavailable", "the session's VNC server cannot be reached")
    })?;
    let attached = session.attach()?;
    let idle = app.config.bridge_idle_timeout();
    Ok(upgrade.respond(move |client, early| async move {
        let _attached = attached;
        let toucher = session.clone();
        let control =
            Control { stop: session.ended(), token: Some(limit), idle, activity: Box::new(move || toucher.touch()) };
        metrics::gauge!("bw_bridges_active", "kind" => "vnc").increment(1.0);
        let end = bridge::websocket_to_vnc(client, early, upstream, control).await;
        metrics::gauge!("bw_bridges_active", "kind" => "vnc").decrement(1.0);
        metrics::counter!("bw_bridges_closed_total", "kind" => "vnc", "reason" => end.as_str()).increment(1);
        tracing::info!(session_id = %session.id, reason = end.as_str(), "VNC viewer detached");
    }))
}

/// A WebSocket upgrade request, answered by hand: the VNC bridge moves screen data with
/// `splice(2)`, so it needs the TCP socket itself, which axum's `WebSocketUpgrade` keeps.
pub struct RawUpgrade {
    on_upgrade: OnUpgrade,
    accept: String,
    /// The client offered the `binary` subprotocol (noVNC does).
    binary: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for RawUpgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let has = |name: header::HeaderName, token: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        let upgrade = parts.method == Method::GET
            && has(header::CONNECTION, "upgrade")
            && has(header::UPGRADE, "websocket")
            && has(header::SEC_WEBSOCKET_VERSION, "13");
        let key = headers.get(header::SEC_WEBSOCKET_KEY).filter(|_| upgrade).ok_or_else(websocket_required)?;
        let accept = derive_accept_key(key.as_bytes());
        let binary = has(header::SEC_WEBSOCKET_PROTOCOL, "binary");
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(websocket_required)?;
        Ok(Self { on_upgrade, accept, binary })
    }
}

impl RawUpgrade {
    /// The 101 answer; once the connection has switched, `relay` gets its TCP socket and any
    /// bytes the server read past the request.
    fn respond<F, Fut>(self, relay: F) -> Response
    where
        F: FnOnce(TcpStream, axum::body::Bytes) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => return tracing::debug!(error = %e, "the VNC client left during the upgrade"),
            };
            match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
                Ok(parts) => relay(parts.io.into_inner(), parts.read_buf).await,
                Err(_) => tracing::error!("the upgraded VNC connection is not a TCP socket"),
            }
        });
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        if self.binary {
            response = response.header(header::SEC_WEBSOCKET_PROTOCOL, "binary");
        }
        response.body(axum::body::Body::empty()).unwrap_or_default()
    }
}

/// A noVNC page showing the session's screen (for a browser tab or an iframe).
#[utoipa::path(get, path = "/vnc/{id}/viewer", tag = "access", params(("id" = String, Path), TokenQuery), security(()),
    responses((status = 200, content_type = "text/html", body = String), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn viewer(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorized(&app, id, &query.map(|q| q.0).unwrap_or_default())?;
    let page = VIEWER.replace("{session_id}", &id.to_string());
    // The token is in the URL: never cache the page, never send it on as a referrer.
    Ok(([(header::CACHE_CONTROL, "no-store"), (header::REFERRER_POLICY, "no-referrer")], Html(page)).into_response())
}

/// Mint a new viewer token (the session object shows the latest one).
#[utoipa::path(post, path = "/api/v2/sessions/{id}/vnc-token", tag = "access", params(("id" = String, Path)),
    responses((status = 200, body = VncAccess), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "invalid_state: no display"), (status = 410, body = ErrorBody)))]
pub async fn vnc_token(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
) -> Result<Json<VncAccess>, ApiError> {
    let session = app.registry.get(id)?;
    if session.vnc_addr().is_none() {
        return Err(no_display());
    }
    session.touch();
    let access = session.mint_vnc(&app.tokens, app.public_url());
    Ok(Json(access))
}

/// The viewer: noVNC's RFB client from `/vnc/static/`, connected to `/vnc/{id}` with the
/// page's own query (the token), scaled to the window. `document.title` and `body[data-state]`
/// say whether it is connected.
const VIEWER: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>connecting</title>
<style>html, body { margin: 0; height: 100%; background: #202020; overflow: hidden; } #screen { width: 100%; height: 100%; }</style>
</head>
<body data-state="connecting">
<div id="screen"></div>
<script type="module">
import RFB from "../static/core/rfb.js";
const path = location.pathname.replace(/\/viewer\/?$/, "");
const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path + location.search;
const rfb = new RFB(document.getElementById("screen"), url, { wsProtocols: ["binary"] });
rfb.scaleViewport = true;
rfb.resizeSession = false;
const show = (state) => { document.body.dataset.state = state; document.title = state + " - session {session_id}"; };
rfb.addEventListener("connect", () => show("connected"));
rfb.addEventListener("disconnect", () => show("disconnected"));
</script>
</body>
</html>
"#;
