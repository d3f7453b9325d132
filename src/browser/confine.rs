//! Keeps a browser on the web: no page of it shows a local file or one of Chromium's own pages,
//! whoever asks (a person at the viewer typing into the address bar or opening a new window, a
//! page, or a CDP client).
//!
//! The worker holds one extra DevTools connection per browser for this. On it, browser-wide
//! `Fetch` interception fails every `file:` load before it happens; and `chrome:`, `devtools:`
//! and `chrome-untrusted:` pages, which no interception sees, are sent back to `about:blank` as
//! soon as a page target shows one. The connection ends with the browser.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::BrowserError;

/// URL patterns failed before they load (browser-wide `Fetch` interception).
const INTERCEPTED: &[&str] = &["file:*", "filesystem:*"];
/// Schemes of Chromium's own pages: a page target showing one is sent back to `about:blank`.
const INTERNAL: &[&str] = &["chrome:", "chrome-untrusted:", "devtools:", "chrome-extension:"];

/// Connects to the browser at `ws_url`, turns the guards on (answered before this returns) and
/// keeps them running until the browser goes away.
pub async fn confine(ws_url: &str) -> Result<JoinHandle<()>, BrowserError> {
    let connect = tokio_tungstenite::connect_async(ws_url);
    let (mut socket, _) = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(BrowserError::Launch(format!("cannot confine the browser: {e}"))),
        Err(_) => return Err(BrowserError::Timeout("confine")),
    };
    let patterns: Vec<Value> =
        INTERCEPTED.iter().map(|p| json!({"urlPattern": p, "requestStage": "Request"})).collect();
    let setup = [
        json!({"id": 1, "method": "Fetch.enable", "params": {"patterns": patterns}}),
        json!({"id": 2, "method": "Target.setDiscoverTargets", "params": {"discover": true}}),
    ];
    for message in &setup {
        socket.send(Message::Text(message.to_string().into())).await.map_err(|_| BrowserError::Disconnected)?;
    }
    // Both answered before the browser is handed out: no page loads before the guard is on.
    let mut answered = 0;
    let ready = async {
        while answered < setup.len() {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let reply: Value = serde_json::from_str(&text).unwrap_or_default();
                    if reply["id"].is_u64() {
                        if !reply["error"].is_null() {
                            return Err(BrowserError::Cdp(format!("confine: {}", reply["error"])));
                        }
                        answered += 1;
                    }
                }
                Some(Ok(_)) => {}
                _ => return Err(BrowserError::Disconnected),
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), ready).await.map_err(|_| BrowserError::Timeout("confine"))??;
    Ok(tokio::spawn(guard(socket)))
}

/// Answers interceptions and sends internal pages back, until the connection ends.
async fn guard<S>(mut socket: S)
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + futures::Sink<Message> + Unpin,
{
    let mut next_id: u64 = 10;
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else { continue };
        let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
        let params = &event["params"];
        let mut replies = Vec::new();
        match event["method"].as_str() {
            Some("Fetch.requestPaused") => {
                metrics::counter!("bw_confined_total", "kind" => "file").increment(1);
                replies.push(json!({"method": "Fetch.failRequest",
                    "params": {"requestId": params["requestId"], "errorReason": "AccessDenied"}}));
            }
            Some("Target.targetCreated" | "Target.targetInfoChanged") => {
                let info = &params["targetInfo"];
                let url = info["url"].as_str().unwrap_or_default();
                if info["type"] == "page" && INTERNAL.iter().any(|s| url.starts_with(s)) {
                    metrics::counter!("bw_confined_total", "kind" => "internal_page").increment(1);
                    // Attached (flat) just long enough to send the page back.
                    replies.push(json!({"method": "Target.attachToTarget",
                        "params": {"targetId": info["targetId"], "flatten": true}}));
                }
            }
            Some("Target.attachedToTarget") => {
                let session = &params["sessionId"];
                replies
                    .push(json!({"method": "Page.navigate", "params": {"url": "about:blank"}, "sessionId": session}));
                replies.push(json!({"method": "Target.detachFromTarget", "params": {"sessionId": session}}));
            }
            _ => {}
        }
        for mut reply in replies {
            next_id += 1;
            reply["id"] = next_id.into();
            if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                return;
            }
        }
    }
}
