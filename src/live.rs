//! Live view (SPEC §3.7): any session, headless included, watched and driven from a browser
//! tab through a WebSocket fed by CDP `Page.startScreencast`.
//!
//! - `hub`: one screencast per session, shared by its viewers, following new tabs and popups,
//!   with acks paced by the fastest viewer and frames dropped (newest kept) for slow ones.
//! - `input`: the client messages (mouse, scroll, key, text), checked and bounded, and the CDP
//!   `Input.*` commands they become.
//! - here: one viewer's socket. Binary messages out are JPEG frames; text messages out are
//!   `page` and `error` JSON; text messages in are input, refused with `view_only` on a view
//!   token before they reach the hub. A binary message in closes the socket.
//!
//! Like the other bridges, a viewer is handed its hub and told when to stop (`bridge::Control`);
//! it never looks a session up.

pub mod hub;
pub mod input;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ws::{self, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;

use crate::bridge::{Control, End};
use crate::token::LiveMode;

pub use hub::{LiveHub, PageView};

/// Largest message a viewer may send (input messages are small; a paste is at most
/// `input::MAX_TEXT_CHARS` characters).
pub const MAX_CLIENT_MESSAGE: usize = 64 << 10;
/// How often an otherwise quiet socket is pinged (its pongs keep it from idling out).
const PING_EVERY: Duration = Duration::from_secs(20);

/// The viewer page (`/live/{id}/viewer`): self-contained, no external resources.
pub const VIEWER_HTML: &str = include_str!("live/viewer.html");

/// An `error` message.
fn error_message(code: &str, message: &str) -> String {
    json!({"type": "error", "code": code, "message": message}).to_string()
}

/// Serves one viewer until it leaves, its token or session ends, or the hub stops.
pub async fn serve(socket: WebSocket, hub: Arc<LiveHub>, mode: LiveMode, control: Control) -> End {
    let traffic = AtomicBool::new(false);
    let (mut tx, mut rx) = socket.split();
    let (errors, mut refused) = mpsc::channel::<String>(8);
    let input = hub.input();
    let mut frames = hub.frames();
    let mut page = hub.page();
    let hub_ended = hub.ended();

    let end = {
        let from_client = async {
            while let Some(Ok(message)) = rx.next().await {
                traffic.store(true, Ordering::Relaxed);
                let text = match message {
                    ws::Message::Text(text) => text,
                    ws::Message::Ping(_) | ws::Message::Pong(_) => continue,
                    ws::Message::Close(_) => return End::Client,
                    ws::Message::Binary(_) => return End::Protocol,
                };
                let reply = match input::parse(text.as_str()) {
                    Err(e) => Some(error_message(e.code, &e.message)),
                    Ok(_) if mode == LiveMode::View => {
                        Some(error_message("view_only", "this live token only watches; input is refused"))
                    }
                    Ok(event) => {
                        if input.send(event).await.is_err() {
                            return End::Upstream;
                        }
                        None
                    }
                };
                // Replies beyond a few pending are dropped: a client that floods bad messages
                // gets no unbounded queue.
                if let Some(reply) = reply {
                    let _ = errors.try_send(reply);
                }
            }
            End::Client
        };
        let to_client = async {
            let mut ping = tokio::time::interval(PING_EVERY);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let message = tokio::select! {
                    changed = page.changed() => {
                        if changed.is_err() { return End::Upstream; }
                        let view = page.borrow_and_update().clone();
                        if view == PageView::default() { continue; }
                        let mut body = json!(view);
                        body["type"] = json!("page");
                        ws::Message::Text(body.to_string().into())
                    }
                    changed = frames.changed() => {
                        if changed.is_err() { return End::Upstream; }
                        // The newest frame only: older ones not sent yet are dropped.
                        let frame = frames.borrow_and_update().clone();
                        if frame.is_empty() { continue; }
                        ws::Message::Binary(frame)
                    }
                    Some(reply) = refused.recv() => ws::Message::Text(reply.into()),
                    _ = ping.tick() => ws::Message::Ping(Default::default()),
                    _ = hub_ended.cancelled() => {
                        let failure = hub.failure();
                        let (code, text) = failure.as_ref().map(|f| (f.code, f.message.as_str()))
                            .unwrap_or(("browser_disconnected", "the live view ended"));
                        let _ = tx.send(ws::Message::Text(error_message(code, text).into())).await;
                        return End::Upstream;
                    }
                };
                let frame = matches!(message, ws::Message::Binary(_));
                let ping = matches!(message, ws::Message::Ping(_));
                if tx.send(message).await.is_err() {
                    return End::Client;
                }
                // Our own pings are not traffic: the client's pongs are.
                if !ping {
                    traffic.store(true, Ordering::Relaxed);
                }
                if frame {
                    hub.frame_sent();
                }
            }
        };
        tokio::select! {
            end = from_client => end,
            end = to_client => end,
            end = crate::bridge::supervise(&control, &traffic) => end,
        }
    };
    if end != End::Client {
        let code = if end == End::Protocol { ws::close_code::UNSUPPORTED } else { ws::close_code::NORMAL };
        let frame = ws::CloseFrame { code, reason: end.as_str().into() };
        let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(ws::Message::Close(Some(frame)))).await;
    }
    end
}
