//! Navigation that ends when the page is usable, not when `load` fires.
//!
//! chromiumoxide's `goto` waits for the `load` event of the page and of every frame in it, and
//! queues each later navigation behind the one before: a single-page app that keeps one
//! request open (an analytics beacon, a long poll, a CDN that never answers) would fail every
//! navigation on its session. So the worker sends `Page.navigate` itself, on a short-lived
//! DevTools connection of its own (as `confine` does), and follows the new document's lifecycle
//! there: the navigation is done at `DOMContentLoaded`. `ready.js` then lets the DOM settle on
//! the session's page and says whether `load` has fired meanwhile.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::BrowserError;

/// How far the page had got when the worker handed it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadState {
    /// The `load` event fired: the document and all its sub-resources finished loading.
    Load,
    /// The DOM is interactive (`DOMContentLoaded`) and settled, but `load` has not fired:
    /// some sub-resource is still loading (or never answers). The page is usable.
    Interactive,
}

impl LoadState {
    /// From `document.readyState` (`complete` once `load` is dispatched).
    pub fn from_ready_state(state: &str) -> Self {
        if state == "complete" { LoadState::Load } else { LoadState::Interactive }
    }
}

/// Where the lifecycle of the navigated frame stands, fed with `Page.lifecycleEvent`s.
#[derive(Debug, Default)]
struct Lifecycle {
    /// The main frame and the loader of the document our navigation created (from the
    /// `Page.navigate` answer); `None` until answered.
    ours: Option<(String, String)>,
    /// Events that arrived before the answer, replayed once it is known.
    early: VecDeque<(String, String, String)>,
    /// Our document has started (`init`): from now on a newer document in the frame is one
    /// it redirected to (`location.replace` before `DOMContentLoaded`), and is followed.
    following: bool,
    /// The loader of the frame's document being followed (ours, or a redirect's).
    current: Option<String>,
}

impl Lifecycle {
    /// Records one lifecycle event (frame, loader, name); true once the document our
    /// navigation led to (or one it redirected to) is interactive.
    fn on_event(&mut self, frame: String, loader: String, name: String) -> bool {
        let Some((our_frame, our_loader)) = &self.ours else {
            self.early.push_back((frame, loader, name));
            return false;
        };
        if frame != *our_frame {
            return false;
        }
        if name == "init" && (loader == *our_loader || self.following) {
            self.following = true;
            self.current = Some(loader.clone());
        }
        let current = self.current.as_deref().unwrap_or(our_loader);
        matches!(name.as_str(), "DOMContentLoaded" | "load") && loader == current
    }

    /// The `Page.navigate` answer is in; true if an event seen before it already settles it.
    fn answered(&mut self, frame: String, loader: String) -> bool {
        self.ours = Some((frame, loader));
        let early = std::mem::take(&mut self.early);
        let mut done = false;
        for (frame, loader, name) in early {
            done |= self.on_event(frame, loader, name);
        }
        done
    }
}

/// Navigates the page target `target_id` of the browser at `ws_url` to `url` and waits until
/// the new document is interactive, up to `deadline`. A failed navigation (DNS, refused,
/// egress refused) is `Navigation`; no answer at all is `Timeout("navigate")`; a document that
/// never reaches `DOMContentLoaded` is `NotInteractive`.
pub async fn navigate(ws_url: &str, target_id: &str, url: &str, deadline: Instant) -> Result<(), BrowserError> {
    let connect = tokio_tungstenite::connect_async(ws_url);
    let (mut socket, _) = match tokio::time::timeout_at(deadline, connect).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(_)) => return Err(BrowserError::Disconnected),
        Err(_) => return Err(BrowserError::Timeout("navigate")),
    };
    let mut committed = false;
    let result = tokio::time::timeout_at(deadline, drive(&mut socket, target_id, url, &mut committed)).await;
    // Closing detaches our session; the page stays as it is.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.close(None)).await;
    match result {
        Ok(outcome) => outcome,
        // Answered, but the document never got to DOMContentLoaded.
        Err(_) if committed => Err(BrowserError::NotInteractive),
        Err(_) => Err(BrowserError::Timeout("navigate")),
    }
}

/// Attaches, navigates and follows the lifecycle; see `navigate`.
async fn drive<S>(socket: &mut S, target_id: &str, url: &str, committed: &mut bool) -> Result<(), BrowserError>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + futures::Sink<Message> + Unpin,
{
    let attach =
        json!({"id": 1, "method": "Target.attachToTarget", "params": {"targetId": target_id, "flatten": true}});
    send(socket, attach).await?;
    let session = loop {
        let message = receive(socket).await?;
        if message["id"] == 1 {
            break answer(&message)?["sessionId"].as_str().unwrap_or_default().to_string();
        }
    };
    let setup = [
        json!({"id": 2, "method": "Page.enable"}),
        json!({"id": 3, "method": "Page.setLifecycleEventsEnabled", "params": {"enabled": true}}),
        json!({"id": 4, "method": "Page.navigate", "params": {"url": url}}),
    ];
    for mut command in setup {
        command["sessionId"] = session.clone().into();
        send(socket, command).await?;
    }
    let mut lifecycle = Lifecycle::default();
    loop {
        let message = receive(socket).await?;
        if message["id"] == 2 || message["id"] == 3 {
            answer(&message)?;
        } else if message["id"] == 4 {
            let result = answer(&message)?;
            if let Some(error) = result["errorText"].as_str().filter(|e| !e.is_empty()) {
                return Err(navigation_error(error));
            }
            let frame = result["frameId"].as_str().unwrap_or_default().to_string();
            match result["loaderId"].as_str() {
                // Within the same document (a fragment): nothing to load.
                None | Some("") => return Ok(()),
                Some(loader) => {
                    *committed = true;
                    if lifecycle.answered(frame, loader.to_string()) {
                        return Ok(());
                    }
                }
            }
        } else if message["method"] == "Page.lifecycleEvent" {
            let params = &message["params"];
            let text = |key: &str| params[key].as_str().unwrap_or_default().to_string();
            if lifecycle.on_event(text("frameId"), text("loaderId"), text("name")) {
                return Ok(());
            }
        }
    }
}

/// The error for a `Page.navigate` answer's `errorText` (e.g. `net::ERR_NAME_NOT_RESOLVED`).
fn navigation_error(error: &str) -> BrowserError {
    if error.starts_with("net::") {
        BrowserError::Navigation(error.to_string())
    } else {
        BrowserError::Cdp(error.to_string())
    }
}

async fn send<S>(socket: &mut S, message: Value) -> Result<(), BrowserError>
where
    S: futures::Sink<Message> + Unpin,
{
    socket.send(Message::Text(message.to_string().into())).await.map_err(|_| BrowserError::Disconnected)
}

/// The next JSON message; a closed connection means the browser went away.
async fn receive<S>(socket: &mut S) -> Result<Value, BrowserError>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap_or_default()),
            Some(Ok(_)) => {}
            _ => return Err(BrowserError::Disconnected),
        }
    }
}

/// The `result` of a command's answer, or its error.
fn answer(message: &Value) -> Result<&Value, BrowserError> {
    match message["error"]["message"].as_str() {
        Some(error) => Err(BrowserError::Cdp(error.to_string())),
        None => Ok(&message["result"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Page.lifecycleEvent`: frame, loader, name.
    type Event = (&'static str, &'static str, &'static str);

    fn feed(lifecycle: &mut Lifecycle, events: &[Event]) -> bool {
        let mut done = false;
        for (frame, loader, name) in events {
            done |= lifecycle.on_event(frame.to_string(), loader.to_string(), name.to_string());
        }
        done
    }

    /// Lifecycle cases as data: events (before the answer, then after), whether interactive.
    #[test]
    fn the_navigated_document_is_followed() {
        let cases: &[(&str, &[Event], &[Event], bool)] = &[
            ("old document's events do not count", &[("F", "OLD", "DOMContentLoaded")], &[], false),
            ("DOMContentLoaded before the answer", &[("F", "L", "init"), ("F", "L", "DOMContentLoaded")], &[], true),
            ("DOMContentLoaded after the answer", &[("F", "L", "init")], &[("F", "L", "DOMContentLoaded")], true),
            ("another frame's events do not count", &[], &[("SUB", "L", "DOMContentLoaded")], false),
            ("still loading", &[("F", "L", "init")], &[("F", "L", "firstPaint")], false),
            (
                "a client-side redirect is followed",
                &[("F", "L", "init")],
                &[("F", "L2", "init"), ("F", "L", "DOMContentLoaded"), ("F", "L2", "DOMContentLoaded")],
                true,
            ),
            ("a redirect before ours has no say", &[("F", "L0", "init"), ("F", "L0", "DOMContentLoaded")], &[], false),
        ];
        for (name, before, after, expected) in cases {
            let mut lifecycle = Lifecycle::default();
            let mut done = feed(&mut lifecycle, before);
            done |= lifecycle.answered("F".into(), "L".into());
            done |= feed(&mut lifecycle, after);
            assert_eq!(done, *expected, "{name}");
        }
    }

    #[test]
    fn failed_navigations_are_navigation_errors() {
        assert!(matches!(navigation_error("net::ERR_NAME_NOT_RESOLVED"), BrowserError::Navigation(_)));
        assert!(matches!(navigation_error("Cannot navigate to invalid URL"), BrowserError::Cdp(_)));
        assert_eq!(LoadState::from_ready_state("complete"), LoadState::Load);
        assert_eq!(LoadState::from_ready_state("interactive"), LoadState::Interactive);
    }
}
