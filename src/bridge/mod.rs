//! WebSocket bridges: a client socket joined to an upstream, either a browser's DevTools
//! WebSocket (CDP passthrough, here, on axum's WebSocket) or a VNC server's TCP port (noVNC,
//! `vnc.rs`, on the raw TCP socket).
//!
//! Bridges are handed an upstream address and never look sessions up: the caller says when to
//! stop (`Control::stop`, the session ending), how long an idle bridge lives, and what to call
//! while traffic flows (the session's activity clock). No HTTP here beyond the socket types.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{self, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self as ts, protocol::WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::token::TokenLimit;

mod cdp_policy;
mod cdp_scope;
mod vnc;

pub use cdp_policy::{CdpPolicy, Verdict};
pub use cdp_scope::{ContextScope, Scoped};
pub use vnc::{VncUpstream, websocket_to_vnc};

/// Largest CDP message relayed from the browser (full-page screenshots are big).
pub const CDP_MAX_MESSAGE: usize = 256 << 20;
/// Largest CDP message a client may send (commands are small; a fulfilled request's body is
/// the largest thing a client sends).
pub const CDP_MAX_CLIENT_MESSAGE: usize = 16 << 20;
/// How often traffic is turned into activity and the idle limit checked.
const TICK: Duration = Duration::from_secs(1);

/// A DevTools WebSocket connected by the worker.
pub type Upstream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a bridge is told by its owner.
pub struct Control {
    /// Fires when the bridge must end (the session closed, the worker stops).
    pub stop: CancellationToken,
    /// For a bridge opened with a session token: when it is revoked, and when it expires.
    pub token: Option<TokenLimit>,
    /// The bridge ends after this long without traffic in either direction.
    pub idle: Duration,
    /// Called at most once per second while traffic flows.
    pub activity: Box<dyn Fn() + Send + Sync>,
}

/// Why a bridge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Client,
    Upstream,
    Idle,
    Stopped,
    TokenExpired,
    TokenRevoked,
    /// The client sent what the protocol does not allow (a binary message to the live view).
    Protocol,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::Client => "client_closed",
            End::Upstream => "upstream_closed",
            End::Idle => "idle_timeout",
            End::Stopped => "session_closed",
            End::TokenExpired => "token_expired",
            End::TokenRevoked => "token_revoked",
            End::Protocol => "protocol_error",
        }
    }
}

/// Upstream connection failures.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot reach the browser's DevTools endpoint: {0}")]
    Devtools(String),
    #[error("cannot reach the VNC server: {0}")]
    Vnc(String),
}

/// Connects to a browser's DevTools endpoint as a fresh client: Chromium checks the `Host`
/// and `Origin` headers, so nothing of the caller's request is forwarded.
pub async fn connect_devtools(url: &str) -> Result<Upstream, BridgeError> {
    let config =
        WebSocketConfig::default().max_message_size(Some(CDP_MAX_MESSAGE)).max_frame_size(Some(CDP_MAX_MESSAGE));
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(BridgeError::Devtools(e.to_string())),
        Err(_) => Err(BridgeError::Devtools("timed out".into())),
    }
}

/// Connects to a VNC server on TCP (a shared display's).
pub async fn connect_vnc_tcp(addr: std::net::SocketAddr) -> Result<VncUpstream, BridgeError> {
    match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(VncUpstream::Tcp(stream))
        }
        Ok(Err(e)) => Err(BridgeError::Vnc(e.to_string())),
        Err(_) => Err(BridgeError::Vnc("timed out".into())),
    }
}

/// Connects to a VNC server on a Unix socket (a session's own x11vnc).
pub async fn connect_vnc_unix(path: &std::path::Path) -> Result<VncUpstream, BridgeError> {
    match tokio::time::timeout(Duration::from_secs(10), tokio::net::UnixStream::connect(path)).await {
        Ok(Ok(stream)) => Ok(VncUpstream::Unix(stream)),
        Ok(Err(e)) => Err(BridgeError::Vnc(e.to_string())),
        Err(_) => Err(BridgeError::Vnc("timed out".into())),
    }
}

/// Ends the bridge on `stop`, after `idle` without traffic, when its token is revoked or
/// expires, and reports traffic as activity.
pub(crate) async fn supervise(control: &Control, traffic: &AtomicBool) -> End {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = Duration::ZERO;
    let never = CancellationToken::new();
    let revoked = control.token.as_ref().map(|t| &t.revoked).unwrap_or(&never);
    let expiry = control.token.as_ref().map(|t| (t.expires_at - chrono::Utc::now()).to_std().unwrap_or_default());
    let expired = async {
        match expiry {
            Some(left) => tokio::time::sleep(left).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    loop {
        tokio::select! {
            _ = control.stop.cancelled() => return End::Stopped,
            _ = revoked.cancelled() => return End::TokenRevoked,
            _ = &mut expired => return End::TokenExpired,
            _ = ticker.tick() => {}
        }
        if traffic.swap(false, Ordering::Relaxed) {
            quiet = Duration::ZERO;
            (control.activity)();
        } else {
            quiet += TICK;
            if quiet >= control.idle {
                return End::Idle;
            }
        }
    }
}

/// Relays CDP messages both ways until either side closes. Each client message is judged by
/// `policy` first (and by `scope`, for a session sharing its browser): only what they forward
/// reaches the browser, refusals are answered here, and binary frames end the bridge. With a
/// scope, what the browser sends is filtered too.
pub async fn websocket_to_websocket(
    client: WebSocket,
    upstream: Upstream,
    policy: CdpPolicy,
    scope: Option<ContextScope>,
    control: Control,
) -> End {
    let traffic = AtomicBool::new(false);
    let (mut client_tx, mut client_rx) = client.split();
    let (mut up_tx, mut up_rx) = upstream.split();
    let (refusals, mut refused) = mpsc::channel::<String>(8);
    // The scope's own commands (letting another context's target go); a handful per target.
    let (own_tx, mut own_rx) = mpsc::unbounded_channel::<String>();
    let scope = std::sync::Mutex::new(scope);

    let end = {
        let to_upstream = async {
            loop {
                let message = tokio::select! {
                    message = client_rx.next() => match message {
                        Some(Ok(message)) => message,
                        _ => break,
                    },
                    Some(own) = own_rx.recv() => {
                        if up_tx.send(ts::Message::Text(own.into())).await.is_err() {
                            return End::Upstream;
                        }
                        continue;
                    }
                };
                traffic.store(true, Ordering::Relaxed);
                let text = match message {
                    ws::Message::Text(text) => text,
                    ws::Message::Ping(_) | ws::Message::Pong(_) => continue,
                    ws::Message::Binary(_) | ws::Message::Close(_) => break,
                };
                let verdict = match policy.parse(text.as_str()) {
                    Ok(message) => match scope.lock().unwrap().as_mut() {
                        None => Verdict::Forward(message.to_string()),
                        Some(scope) => match scope.outgoing(message) {
                            Scoped::Pass(message) => Verdict::Forward(message.to_string()),
                            Scoped::Refuse(reply) => Verdict::Refuse(reply.to_string()),
                            Scoped::Keep | Scoped::Drop(_) => continue,
                        },
                    },
                    Err(refusal) => refusal,
                };
                let forward = match verdict {
                    Verdict::Forward(text) => text,
                    Verdict::Refuse(reply) => {
                        let _ = refusals.send(reply).await;
                        continue;
                    }
                };
                if up_tx.send(ts::Message::Text(forward.into())).await.is_err() {
                    return End::Upstream;
                }
            }
            let _ = up_tx.close().await;
            End::Client
        };
        let to_client = async {
            loop {
                let forward = tokio::select! {
                    reply = refused.recv() => match reply {
                        Some(reply) => ws::Message::Text(reply.into()),
                        None => continue,
                    },
                    message = up_rx.next() => match message {
                        Some(Ok(ts::Message::Text(text))) => {
                            let text = match scope.lock().unwrap().as_mut() {
                                None => Some(text),
                                Some(scope) => match scope.incoming(serde_json::from_str(&text).unwrap_or_default()) {
                                    Scoped::Keep => Some(text),
                                    Scoped::Pass(message) => Some(message.to_string().into()),
                                    Scoped::Refuse(_) => None,
                                    Scoped::Drop(own) => {
                                        for command in own {
                                            let _ = own_tx.send(command.to_string());
                                        }
                                        None
                                    }
                                },
                            };
                            let Some(text) = text else { continue };
                            match ws::Utf8Bytes::try_from(Bytes::from(text)) {
                                Ok(text) => ws::Message::Text(text),
                                Err(_) => break,
                            }
                        }
                        // A shared browser's client gets text only (binary frames name no session).
                        Some(Ok(ts::Message::Binary(_))) if scope.lock().unwrap().is_some() => continue,
                        Some(Ok(ts::Message::Binary(data))) => ws::Message::Binary(data),
                        Some(Ok(ts::Message::Ping(_) | ts::Message::Pong(_) | ts::Message::Frame(_))) => continue,
                        Some(Ok(ts::Message::Close(_))) | Some(Err(_)) | None => break,
                    },
                };
                traffic.store(true, Ordering::Relaxed);
                if client_tx.send(forward).await.is_err() {
                    return End::Client;
                }
            }
            End::Upstream
        };
        tokio::select! {
            end = to_upstream => end,
            end = to_client => end,
            end = supervise(&control, &traffic) => end,
        }
    };
    // The client learns why (a revoked or expired token, the session's end, idleness).
    if end != End::Client {
        let frame = ws::CloseFrame { code: ws::close_code::NORMAL, reason: end.as_str().into() };
        let _ = tokio::time::timeout(Duration::from_secs(1), client_tx.send(ws::Message::Close(Some(frame)))).await;
    }
    end
}
