//! One screencast per session, shared by all its live viewers.
//!
//! The hub holds its own DevTools connection to the session's browser (as `confine` and
//! `navigation` do), so it never waits for the session's operation lock. It attaches (flat) to
//! the page being shown, runs `Page.startScreencast` there and publishes each JPEG frame into a
//! `watch` channel: a viewer always takes the newest frame, and frames a slow viewer did not
//! get to are dropped, never queued. A frame is acked (`Page.screencastFrameAck`) once the
//! fastest viewer has sent the one before it on, so Chromium produces frames no faster than
//! the quickest viewer takes them. A new page target (a tab or popup the page opened) becomes
//! the page shown; when it closes, the one before it is shown again.
//!
//! Input from control viewers arrives on one bounded channel and is dispatched in arrival
//! order on the shown page. The hub stops when its last viewer lets go of it (`Drop`), or when
//! the browser goes away.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::input::{self, Input, Viewport};
use crate::bridge::{self, Upstream};

/// JPEG quality of screencast frames (0–100).
const QUALITY: u8 = 70;
/// Inputs queued towards the page at most; a control viewer sending faster waits.
const INPUT_QUEUE: usize = 64;
/// Frames left unacked at most (Chromium itself keeps only a few in flight).
const MAX_UNACKED: usize = 4;
/// Schemes of pages the hub never switches to (Chromium's own, sent back by `confine`).
const INTERNAL: &[&str] = &["chrome:", "chrome-untrusted:", "devtools:", "chrome-extension:"];

/// What the page shown looks like (the `page` message of the protocol).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PageView {
    pub url: String,
    pub title: String,
    /// The viewport in CSS pixels (0 until the first frame).
    pub width: u32,
    pub height: u32,
}

/// Why a hub stopped on its own.
#[derive(Debug, Clone)]
pub struct HubFailure {
    pub code: &'static str,
    pub message: String,
}

/// The shared screencast of one session; viewers hold it, the last one dropping it stops it.
pub struct LiveHub {
    frames: watch::Receiver<Bytes>,
    page: watch::Receiver<PageView>,
    input: mpsc::Sender<Input>,
    /// Signalled by a viewer that has sent a frame on: the hub acks what it holds.
    sent: Arc<Notify>,
    /// Fires when the hub's task has ended (`failure` says why).
    ended: CancellationToken,
    failure: Arc<OnceLock<HubFailure>>,
    /// Stops the hub's task (on drop).
    stop: CancellationToken,
}

impl Drop for LiveHub {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl LiveHub {
    /// Starts a screencast of the browser at `devtools_url` showing `page_target` first; in a
    /// shared browser, `context` is the session's browser context, and only its pages are shown.
    pub fn start(devtools_url: String, page_target: String, context: Option<String>) -> Arc<Self> {
        let (frames_tx, frames) = watch::channel(Bytes::new());
        let (page_tx, page) = watch::channel(PageView::default());
        let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (sent, ended, stop) = (Arc::new(Notify::new()), CancellationToken::new(), CancellationToken::new());
        let failure = Arc::new(OnceLock::new());
        let task = Task {
            frames: frames_tx,
            page: page_tx,
            input: input_rx,
            sent: sent.clone(),
            stop: stop.clone(),
            context,
            targets: HashMap::new(),
            shown: Vec::new(),
            attached: None,
            attaching: None,
            unacked: Vec::new(),
            next_id: 0,
        };
        let (done, why) = (ended.clone(), failure.clone());
        tokio::spawn(async move {
            let outcome = match bridge::connect_devtools(&devtools_url).await {
                Ok(socket) => task.run(socket, page_target).await,
                Err(e) => Err(HubFailure { code: "browser_disconnected", message: e.to_string() }),
            };
            if let Err(failure) = outcome {
                tracing::debug!(code = failure.code, message = %failure.message, "live view screencast ended");
                let _ = why.set(failure);
            }
            done.cancel();
        });
        Arc::new(Self { frames, page, input, sent, ended, failure, stop })
    }

    /// True once the hub's task has ended (a new viewer needs a new hub).
    pub fn has_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// Fires when the hub's task ends.
    pub fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// Why the hub ended, if it ended on its own.
    pub fn failure(&self) -> Option<HubFailure> {
        self.failure.get().cloned()
    }

    /// The newest frame (empty before the first); a fresh receiver sees the current one as new.
    pub fn frames(&self) -> watch::Receiver<Bytes> {
        self.frames.clone()
    }

    /// The page shown (a fresh receiver sees the current one as new once it is known).
    pub fn page(&self) -> watch::Receiver<PageView> {
        self.page.clone()
    }

    /// Where control viewers send their input, applied in arrival order.
    pub fn input(&self) -> mpsc::Sender<Input> {
        self.input.clone()
    }

    /// A viewer has sent the newest frame on: the next may come.
    pub fn frame_sent(&self) {
        self.sent.notify_one();
    }
}

/// The hub's side: one DevTools connection and what it follows.
struct Task {
    frames: watch::Sender<Bytes>,
    page: watch::Sender<PageView>,
    input: mpsc::Receiver<Input>,
    sent: Arc<Notify>,
    stop: CancellationToken,
    /// The session's browser context, in a shared browser: other contexts' pages are not its.
    context: Option<String>,
    /// Page targets: id → (url, title).
    targets: HashMap<String, (String, String)>,
    /// Pages in the order they were shown; the last is the one shown now.
    shown: Vec<String>,
    /// The flat session attached to the page shown, once attached.
    attached: Option<String>,
    /// The id of a pending `Target.attachToTarget`, and the target it attaches.
    attaching: Option<(u64, String)>,
    /// Frames published but not yet acked: (flat session, frame number).
    unacked: Vec<(String, i64)>,
    next_id: u64,
}

type Outcome = Result<(), HubFailure>;

fn gone() -> HubFailure {
    HubFailure { code: "browser_disconnected", message: "the session's browser went away".into() }
}

impl Task {
    async fn run(mut self, mut socket: Upstream, page_target: String) -> Outcome {
        let targets = tokio::time::timeout(Duration::from_secs(10), self.call(&mut socket, "Target.getTargets"))
            .await
            .map_err(|_| gone())??;
        for info in targets["targetInfos"].as_array().into_iter().flatten() {
            self.learn(info);
        }
        let first = if self.targets.contains_key(&page_target) {
            Some(page_target)
        } else {
            self.targets.keys().next().cloned()
        };
        let first =
            first.ok_or_else(|| HubFailure { code: "page_closed", message: "the session has no page".into() })?;
        self.send(&mut socket, "Target.setDiscoverTargets", json!({"discover": true}), None).await?;
        self.show(&mut socket, first).await?;
        let outcome = self.relay(&mut socket).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
        outcome
    }

    /// Serves until stopped, or until the browser or the last page goes away.
    async fn relay(&mut self, socket: &mut Upstream) -> Outcome {
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                message = socket.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(message) = serde_json::from_str::<Value>(&text) else { continue };
                        self.on_message(socket, message).await?;
                    }
                    Some(Ok(_)) => {}
                    _ => return Err(gone()),
                },
                Some(input) = self.input.recv() => self.dispatch(socket, &input).await?,
                _ = self.sent.notified() => self.ack(socket).await?,
            }
        }
    }

    async fn on_message(&mut self, socket: &mut Upstream, message: Value) -> Outcome {
        let params = &message["params"];
        let session = message["sessionId"].as_str();
        if let Some((id, target)) = self.attaching.clone()
            && message["id"] == id
        {
            self.attaching = None;
            match message["result"]["sessionId"].as_str() {
                Some(flat) => self.start_screencast(socket, flat.to_string(), &target).await?,
                // The page went away meanwhile: show the one before.
                None => self.forget(socket, &target).await?,
            }
            return Ok(());
        }
        match message["method"].as_str() {
            Some("Page.screencastFrame") if session.is_some() && session == self.attached.as_deref() => {
                let Ok(jpeg) = base64::engine::general_purpose::STANDARD.decode(params["data"].as_str().unwrap_or(""))
                else {
                    return Ok(());
                };
                let meta = &params["metadata"];
                let (width, height) =
                    (meta["deviceWidth"].as_f64().unwrap_or(0.0), meta["deviceHeight"].as_f64().unwrap_or(0.0));
                self.page.send_if_modified(|page| {
                    let size = (width.round() as u32, height.round() as u32);
                    let changed = (page.width, page.height) != size;
                    (page.width, page.height) = size;
                    changed
                });
                self.frames.send_replace(Bytes::from(jpeg));
                self.unacked.push((session.unwrap_or_default().to_string(), params["sessionId"].as_i64().unwrap_or(0)));
                if self.unacked.len() > MAX_UNACKED {
                    self.ack(socket).await?;
                }
            }
            Some("Target.targetCreated") => {
                let info = &params["targetInfo"];
                let id = info["targetId"].as_str().unwrap_or_default().to_string();
                if info["type"] == "page" && !self.targets.contains_key(&id) && self.learn(info) {
                    // A tab or popup opened: it is what a person would look at now.
                    self.show(socket, id).await?;
                }
            }
            Some("Target.targetInfoChanged") => {
                let info = &params["targetInfo"];
                if info["type"] == "page" && self.targets.contains_key(info["targetId"].as_str().unwrap_or_default()) {
                    self.learn(info);
                    self.describe();
                }
            }
            Some("Target.targetDestroyed" | "Target.targetCrashed") => {
                let id = params["targetId"].as_str().unwrap_or_default().to_string();
                self.forget(socket, &id).await?;
            }
            Some("Target.detachedFromTarget")
                if session.is_none()
                    && params["sessionId"].as_str().is_some()
                    && params["sessionId"].as_str() == self.attached.as_deref() =>
            {
                let id = params["targetId"].as_str().unwrap_or_default().to_string();
                self.attached = None;
                self.forget(socket, &id).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a page target's URL and title; false for Chromium's own pages and for pages of
    /// another session's context.
    fn learn(&mut self, info: &Value) -> bool {
        let url = info["url"].as_str().unwrap_or_default();
        let theirs = self.context.as_ref().is_some_and(|c| info["browserContextId"].as_str() != Some(c.as_str()));
        if info["type"] != "page" || theirs || INTERNAL.iter().any(|s| url.starts_with(s)) {
            return false;
        }
        let id = info["targetId"].as_str().unwrap_or_default().to_string();
        self.targets.insert(id, (url.to_string(), info["title"].as_str().unwrap_or_default().to_string()));
        true
    }

    /// Publishes the URL and title of the page shown.
    fn describe(&self) {
        let Some((url, title)) = self.shown.last().and_then(|id| self.targets.get(id)) else { return };
        self.page.send_if_modified(|page| {
            let changed = page.url != *url || page.title != *title;
            page.url.clone_from(url);
            page.title.clone_from(title);
            changed
        });
    }

    /// Shows `target`: detaches from the page shown before and attaches to this one.
    async fn show(&mut self, socket: &mut Upstream, target: String) -> Outcome {
        if let Some(old) = self.attached.take() {
            self.send(socket, "Target.detachFromTarget", json!({"sessionId": old}), None).await?;
        }
        self.unacked.clear();
        self.shown.retain(|t| *t != target);
        self.shown.push(target.clone());
        let id = self.send(socket, "Target.attachToTarget", json!({"targetId": target, "flatten": true}), None).await?;
        self.attaching = Some((id, target));
        self.describe();
        Ok(())
    }

    /// A page went away: if it was the one shown, the one shown before it comes back.
    async fn forget(&mut self, socket: &mut Upstream, target: &str) -> Outcome {
        self.targets.remove(target);
        let was_shown = self.shown.last().map(String::as_str) == Some(target);
        self.shown.retain(|t| t != target);
        if !was_shown {
            return Ok(());
        }
        self.attached = None;
        match self.shown.pop() {
            Some(previous) => self.show(socket, previous).await,
            None => Err(HubFailure { code: "page_closed", message: "the session's page was closed".into() }),
        }
    }

    async fn start_screencast(&mut self, socket: &mut Upstream, flat: String, target: &str) -> Outcome {
        if self.shown.last().map(String::as_str) != Some(target) {
            // Another page was shown meanwhile.
            return self.send(socket, "Target.detachFromTarget", json!({"sessionId": flat}), None).await.map(|_| ());
        }
        let on = Some(flat.as_str());
        self.send(socket, "Page.enable", json!({}), on).await?;
        // A page in a background or headless window still takes focus and keys.
        self.send(socket, "Emulation.setFocusEmulationEnabled", json!({"enabled": true}), on).await?;
        let params = json!({"format": "jpeg", "quality": QUALITY, "everyNthFrame": 1});
        self.send(socket, "Page.startScreencast", params, on).await?;
        self.attached = Some(flat);
        Ok(())
    }

    /// Acks the frames held, so that Chromium sends the next.
    async fn ack(&mut self, socket: &mut Upstream) -> Outcome {
        for (flat, frame) in std::mem::take(&mut self.unacked) {
            if Some(flat.as_str()) == self.attached.as_deref() {
                self.send(socket, "Page.screencastFrameAck", json!({"sessionId": frame}), Some(&flat)).await?;
            }
        }
        Ok(())
    }

    /// Carries out one input on the page shown (dropped while no page is attached).
    async fn dispatch(&mut self, socket: &mut Upstream, input: &Input) -> Outcome {
        let Some(flat) = self.attached.clone() else { return Ok(()) };
        let page = self.page.borrow().clone();
        let viewport = Viewport { width: page.width as f64, height: page.height as f64 };
        for command in input::commands(input, viewport) {
            let method = command["method"].as_str().unwrap_or_default().to_string();
            self.send(socket, &method, command["params"].clone(), Some(&flat)).await?;
        }
        Ok(())
    }

    /// Sends a command and returns its id (answers are read by `on_message`).
    async fn send(
        &mut self,
        socket: &mut Upstream,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Result<u64, HubFailure> {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        socket.send(Message::Text(message.to_string().into())).await.map_err(|_| gone())?;
        Ok(self.next_id)
    }

    /// Sends a browser-level command and waits for its answer (only before relaying starts).
    async fn call(&mut self, socket: &mut Upstream, method: &str) -> Result<Value, HubFailure> {
        let id = self.send(socket, method, json!({}), None).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).unwrap_or_default();
                    if message["id"] == id {
                        return Ok(message["result"].clone());
                    }
                }
                Some(Ok(_)) => {}
                _ => return Err(gone()),
            }
        }
    }
}
