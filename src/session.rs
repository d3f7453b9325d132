//! Sessions: one live browser each, its state machine, and the one-operation-at-a-time rule.
//!
//! States: `ready` ⇄ `busy` → `closing` → `closed`; any → `failed` when the browser dies.
//! A detected block (CAPTCHA, challenge, login wall) leaves the session in `needs_human`
//! instead of `ready` until an operation finds the page clear again.
//! Opening is the `POST` itself: a session is registered once its browser is ready.
//!
//! A session's browser sits behind an async mutex: an operation takes it with `try_lock` (a
//! second concurrent call gets `SessionError::Busy`), and closing takes it for good.

mod journal;
mod leases;
pub mod reaper;
pub mod recording;
pub mod registry;
mod restore;
pub mod store;
pub mod timeline;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::browser::SavedBrowser;
use crate::browser::display::{SavedDisplay, SessionDisplay, VncAddr};
use crate::browser::humanize::Humanize;
use crate::browser::navigation::LoadState;
use crate::browser::page::PageInfo;
use crate::browser::{BrowserError, BrowserHandle};
use crate::egress::EgressPolicy;
use crate::egress::route::ProxyView;
use crate::guard::{Block, BlockReason};
use crate::live::LiveHub;
use crate::token::{Grant, LiveMode, Minted, Scope, TokenError, TokenIssuer, TokenLimit};

pub use registry::{CreateOptions, OnOpen, SessionRegistry};
pub use restore::survivors;
pub use store::{SessionRecord, SessionStore};

pub use crate::ids::SessionId;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Ready,
    Busy,
    /// A block was detected on the page; a human should look (operations still run).
    NeedsHuman,
    Closing,
    Closed,
    Failed,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Ready => "ready",
            SessionState::Busy => "busy",
            SessionState::NeedsHuman => "needs_human",
            SessionState::Closing => "closing",
            SessionState::Closed => "closed",
            SessionState::Failed => "failed",
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// `DELETE` by the caller.
    Closed,
    IdleTimeout,
    MaxLifetime,
    BrowserCrashed,
    /// The browser reached its memory limit and was stopped.
    ResourceLimit,
    /// The profile's fleet lease was lost (expired, taken by another worker, Redis flushed):
    /// the session stops rather than run the profile twice.
    LeaseLost,
    /// The worker shut down.
    Shutdown,
}

impl CloseReason {
    fn final_state(self) -> SessionState {
        match self {
            CloseReason::BrowserCrashed | CloseReason::ResourceLimit | CloseReason::LeaseLost => SessionState::Failed,
            _ => SessionState::Closed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Closed => "closed",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::MaxLifetime => "max_lifetime",
            CloseReason::BrowserCrashed => "browser_crashed",
            CloseReason::ResourceLimit => "resource_limit",
            CloseReason::LeaseLost => "lease_lost",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// Session-level failures (no HTTP here; `error.rs` maps them).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no session with that id")]
    NotFound,
    #[error("the session is {} ({})", state.as_str(), reason.map(|r| r.as_str()).unwrap_or("closing"))]
    Closed { state: SessionState, reason: Option<CloseReason> },
    #[error("another operation is running on this session")]
    Busy,
    #[error("the profile is in use by another open session")]
    ProfileInUse { session_id: SessionId },
    #[error("all {max} session slots are in use")]
    Capacity { max: usize, retry_after_secs: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidUrl(String),
    /// The operation does not apply to the session's current state.
    #[error("{0}")]
    InvalidState(String),
    #[error("the worker is shutting down")]
    ShuttingDown,
    #[error("the session already has {max} attached CDP, VNC and live clients")]
    TooManyClients { max: usize },
    #[error(transparent)]
    Browser(#[from] BrowserError),
    #[error(transparent)]
    Profile(#[from] crate::breaker::BreakerError),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
}

/// How long the steps of a session took, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Timing {
    pub browser_start_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub navigate_ms: Option<u64>,
}

/// The public view of a session (`GET /api/v2/sessions/{id}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    pub session_id: SessionId,
    pub state: SessionState,
    pub profile_id: Option<String>,
    pub provider: String,
    pub current_url: String,
    pub title: String,
    /// The block detected on the page, or else a hold for a person's review before the final
    /// submit (`review_required`, copilot mode), if any (`{"reason", "detail"}`).
    pub block: Option<Block>,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_secs: u64,
    /// CDP passthrough (WebSocket): the API key as a Bearer header, or `?token=` (`cdp-token`).
    pub cdp_url: String,
    /// Viewer access; null when the session has no display. On a shared display
    /// (`BW_DISPLAY_MODE=shared`) it says `shared: true`: that display shows every session.
    pub vnc: Option<VncAccess>,
    /// Live viewers (`/live/{id}`) connected now.
    pub live_clients: usize,
    pub timing: Timing,
    /// How far the page had loaded when the worker's last navigation (the `url` at opening,
    /// `navigate`) returned: `load` when the load event had fired, `interactive` when the
    /// DOM was interactive and settled but a sub-resource was still loading (the page is usable
    /// all the same; navigation never waits for `load`). Null before any navigation.
    pub load_state: Option<LoadState>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// The upstream proxy the session's traffic leaves through (password shown as `***`),
    /// with the time zone and language its pages see; null: straight from the worker.
    pub proxy: Option<ProxyView>,
    /// The session's recording (`recording.mp4` among its artifacts, complete once the session
    /// closed); null when it is not recorded.
    pub recording: Option<String>,
}

/// How to watch (and take over) a session's display.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VncAccess {
    /// The VNC WebSocket (subprotocol `binary`), token included.
    pub ws_url: String,
    /// A noVNC page connected to `ws_url`.
    pub viewer_url: String,
    /// The token in both URLs (an HS256 JWT scoped to this session and to VNC).
    pub token: String,
    /// When the token expires; `POST …/vnc-token` mints a new one.
    pub expires_at: DateTime<Utc>,
    /// True on a shared display (`BW_DISPLAY_MODE=shared`): it shows every session's window,
    /// so this token is not isolated to this session. False for a per-session display.
    pub shared: bool,
}

/// How to watch (and drive) a session's page through the live view (`POST …/live-token`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LiveAccess {
    /// The live WebSocket (JPEG frames out, input in), token included.
    pub ws_url: String,
    /// A self-contained viewer page connected to `ws_url`.
    pub viewer_url: String,
    /// The token in both URLs (an HS256 JWT scoped to this session, to `live` and to `mode`).
    pub token: String,
    pub mode: LiveMode,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

impl LiveAccess {
    /// The URLs of session `id` under `public_url` with `token`.
    pub fn new(public_url: &str, id: SessionId, token: &Minted, mode: LiveMode) -> Self {
        Self {
            ws_url: format!("{}/live/{id}?token={}", ws_base(public_url), token.token),
            viewer_url: format!("{public_url}/live/{id}/viewer?token={}", token.token),
            token: token.token.clone(),
            mode,
            expires_at: token.expires_at,
        }
    }
}

/// `ws://` for `http://` (and `wss://` for `https://`) of a public base URL.
pub fn ws_base(public_url: &str) -> String {
    match public_url.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{public_url}"),
    }
}

impl VncAccess {
    /// The URLs of session `id` under `public_url` with `token`; `shared` for a shared display.
    pub fn new(public_url: &str, id: SessionId, token: &Minted, shared: bool) -> Self {
        Self {
            ws_url: format!("{}/vnc/{id}?token={}", ws_base(public_url), token.token),
            viewer_url: format!("{public_url}/vnc/{id}/viewer?token={}", token.token),
            token: token.token.clone(),
            expires_at: token.expires_at,
            shared,
        }
    }
}

/// What changes while a session lives; a std mutex, never held across an await.
#[derive(Debug)]
struct Status {
    state: SessionState,
    last_activity: Instant,
    last_activity_at: DateTime<Utc>,
    current_url: String,
    title: String,
    timing: Timing,
    /// How far the page had loaded when the worker's last navigation handed it over.
    load_state: Option<LoadState>,
    /// The block found by the last detection; while set, the session rests in `needs_human`.
    block: Option<Block>,
    /// A hold for a person's review before the final submit (copilot mode), with what it is
    /// for. Not a detection result: detection neither sets nor lifts it; the person's
    /// `continue` or the submit does. While set, the session rests in `needs_human` too.
    review: Option<String>,
}

impl Status {
    /// Whether the session waits for a person: a detected block or a review hold.
    fn waits_for_human(&self) -> bool {
        self.block.is_some() || self.review.is_some()
    }

    /// The block as the API shows it: the detected one first (a CAPTCHA on the page under
    /// review is what the person must deal with), else the review hold (`review_required`).
    fn shown_block(&self) -> Option<Block> {
        self.block
            .clone()
            .or_else(|| self.review.clone().map(|detail| Block { reason: BlockReason::ReviewRequired, detail }))
    }
}

/// Where a session is in its life, under one lock: `Open` with what it holds, until the first
/// closer takes that out (`Session::begin_close`) and leaves `Closing`. A session is so closed
/// once, and what it held goes to the one who closes it.
#[allow(clippy::large_enum_variant, reason = "one per session, held in place")]
pub(crate) enum Life {
    Open(Held),
    Closing,
}

/// What an open session holds until it is closed or left for the next worker.
pub(crate) struct Held {
    /// Its capacity slot, given back last (`SessionRegistry::retire`, after the tombstone).
    pub(crate) _permit: Option<OwnedSemaphorePermit>,
    /// Its own display (per-session mode), stopped after the browser.
    pub(crate) display: Option<SessionDisplay>,
}

/// One open session.
pub struct Session {
    pub id: SessionId,
    pub profile_id: Option<String>,
    provider: &'static str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// When the maximum lifetime runs out.
    deadline: Instant,
    idle_timeout: Duration,
    /// Default input policy for fills on this session.
    pub humanize: Humanize,
    /// The session's own files (downloaded resumes); removed when it closes.
    pub files_dir: PathBuf,
    /// The upstream proxy its traffic leaves through, as shown (no password).
    proxy: Option<ProxyView>,
    /// The running recording (`recording`), taken when the session closes.
    recording: Mutex<Option<recording::Active>>,
    /// Where the recording is (written in place while it runs; after the close, where it was
    /// kept, or none).
    recording_url: Mutex<Option<String>>,
    /// Set once a block was seen (a kept `on_failure` recording).
    blocked_once: AtomicBool,
    /// Set by a confirmed submission.
    submitted: AtomicBool,
    /// Its events (replayed to SSE subscribers, sent to its webhook).
    pub events: crate::notify::EventLog,
    pub(crate) metadata: Map<String, Value>,
    /// The target id of the session's page (where the live view starts).
    pub(crate) page_target: String,
    /// Its browser context in a shared browser (context mode): the CDP passthrough and the
    /// live view show only that context's targets.
    browser_context: Option<String>,
    status: Mutex<Status>,
    /// The browser; `None` once closed. Holding the lock is holding the session's one operation.
    browser: Arc<tokio::sync::Mutex<Option<BrowserHandle>>>,
    /// Process group, to force-kill without the lock (shutdown, stuck operations).
    pgid: Option<i32>,
    /// Open (holding its capacity slot and display) or closing; the first closer takes what
    /// it holds (`begin_close`), so later closers and operations see the session as gone.
    life: Mutex<Life>,
    /// Fires when the browser dies (process exit or lost connection).
    dead: CancellationToken,
    /// Set when the browser was stopped for reaching its memory limit (`resource_limit`).
    pub(crate) limited: Arc<std::sync::atomic::AtomicBool>,
    /// Fires once the session is fully closed and released.
    pub(crate) ended: CancellationToken,
    /// The browser's DevTools endpoint, for the CDP passthrough (no operation lock needed).
    cdp_endpoint: String,
    /// The VNC server showing this session's display, if it has one.
    vnc_addr: Option<VncAddr>,
    /// Fires if the display's processes die (never, without a display).
    display_dead: CancellationToken,
    /// The viewer access shown in the session object and in its takeover events (minted at
    /// create or by `vnc-token`).
    vnc: Mutex<Option<VncAccess>>,
    /// The live view access of takeover events and task results (the newest `control` token).
    live: Mutex<Option<LiveAccess>>,
    /// The newest token generation per scope (`[vnc, cdp, live control, live view]`): older
    /// tokens are refused, and bridges opened with them end.
    token_epochs: Mutex<[TokenEpoch; 4]>,
    /// Attached CDP, VNC and live clients: a session with one never idles out.
    attached: AtomicUsize,
    /// Attached live viewers (also counted in `attached`).
    live_clients: AtomicUsize,
    /// The screencast its live viewers share, while one is connected.
    live_hub: Mutex<Weak<LiveHub>>,
    /// The viewport set at opening (set again on a new DevTools connection).
    viewport: Option<(u32, u32)>,
    /// Fires when the browser's current DevTools connection drops (the supervisor reconnects).
    lost: Mutex<CancellationToken>,
    /// What the session's record keeps of its browser and display.
    saved_browser: Mutex<SavedBrowser>,
    saved_display: Option<SavedDisplay>,
    /// Where the session's record is written on every change.
    store: Option<Arc<SessionStore>>,
}

/// One scope's token generation and the signal that revokes it.
#[derive(Debug, Default)]
pub(crate) struct TokenEpoch {
    generation: u64,
    /// Cancelled when a newer token is minted (bridges of older tokens end on it).
    revoked: CancellationToken,
}

/// Live tokens of each mode have their own generation: a new `view` token does not end the
/// viewer of the person in control.
fn epoch_index(scope: Scope, mode: Option<LiveMode>) -> usize {
    match (scope, mode) {
        (Scope::Vnc, _) => 0,
        (Scope::Cdp, _) => 1,
        (Scope::Live, Some(LiveMode::View)) => 3,
        (Scope::Live, _) => 2,
    }
}

/// CDP, VNC and live clients attached to one session at once.
pub const MAX_CLIENTS: usize = 8;

/// An attached CDP, VNC or live client; detaching counts as activity.
pub struct Attachment {
    session: Arc<Session>,
    live: bool,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.live {
            self.session.live_clients.fetch_sub(1, Ordering::SeqCst);
        }
        self.session.attached.fetch_sub(1, Ordering::SeqCst);
        self.session.touch();
    }
}

/// Proof that the caller holds the session's single operation slot; restores `ready` on drop.
pub struct OpGuard {
    session: Arc<Session>,
    guard: OwnedMutexGuard<Option<BrowserHandle>>,
}

impl OpGuard {
    pub fn browser(&self) -> &BrowserHandle {
        self.guard.as_ref().expect("checked when the guard was taken")
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Navigates the session's page and records where it landed (URL, title, load state and
    /// `timing.navigate_ms`, in its record too); returns the page and how long it took.
    pub async fn navigate(&self, url: &str) -> Result<(PageInfo, u64), BrowserError> {
        let started = Instant::now();
        let page = self.browser().navigate(url).await?;
        let navigate_ms = started.elapsed().as_millis() as u64;
        self.session.navigated(&page, navigate_ms);
        Ok((page, navigate_ms))
    }
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        {
            let mut status = self.session.status.lock().unwrap();
            status.last_activity = Instant::now();
            status.last_activity_at = Utc::now();
            if status.state == SessionState::Busy {
                status.state = if status.waits_for_human() { SessionState::NeedsHuman } else { SessionState::Ready };
            }
        }
        self.session.persist();
    }
}

impl Session {
    /// The public view; links (CDP, VNC) point at `public_url`.
    pub fn info(&self, public_url: &str) -> SessionInfo {
        let vnc = self.vnc_access();
        let status = self.status.lock().unwrap();
        SessionInfo {
            session_id: self.id,
            state: status.state,
            profile_id: self.profile_id.clone(),
            provider: self.provider.to_string(),
            current_url: status.current_url.clone(),
            title: status.title.clone(),
            block: status.shown_block(),
            created_at: self.created_at,
            last_activity_at: status.last_activity_at,
            expires_at: self.expires_at,
            idle_timeout_secs: self.idle_timeout.as_secs(),
            cdp_url: format!("{}/api/v2/sessions/{}/cdp", ws_base(public_url), self.id),
            vnc,
            live_clients: self.live_clients.load(Ordering::SeqCst),
            timing: status.timing.clone(),
            load_state: status.load_state,
            metadata: self.metadata.clone(),
            proxy: self.proxy.clone(),
            recording: self.recording_url(),
        }
    }

    /// Where the session's recording is (its artifact URL), when it is recorded (and after it
    /// closed, kept).
    pub fn recording_url(&self) -> Option<String> {
        self.recording_url.lock().unwrap().clone()
    }

    /// A confirmed submission happened (an `on_failure` recording is not kept).
    pub fn mark_submitted(&self) {
        self.submitted.store(true, Ordering::SeqCst);
    }

    /// Records an API call or client activity (resets the idle timer).
    pub fn touch(&self) {
        {
            let mut status = self.status.lock().unwrap();
            status.last_activity = Instant::now();
            status.last_activity_at = Utc::now();
        }
        self.persist();
    }

    /// Writes the session's record (queued; see `store`). Not once it is closing: its record is
    /// being removed.
    pub(crate) fn persist(&self) {
        if let Some(store) = &self.store
            && !self.is_closing()
        {
            store.put(&self.record());
        }
    }

    /// Marks the session closing and hands over what it holds; `None` if it already was.
    pub(crate) fn begin_close(&self) -> Option<Held> {
        match std::mem::replace(&mut *self.life.lock().unwrap(), Life::Closing) {
            Life::Open(held) => Some(held),
            Life::Closing => None,
        }
    }

    /// The X display the session's browser shows on, while it is open.
    pub(crate) fn display_name(&self) -> Option<String> {
        match &*self.life.lock().unwrap() {
            Life::Open(held) => held.display.as_ref().map(|d| d.display.clone()),
            Life::Closing => None,
        }
    }

    /// Kills the session's display now (the last resort of shutdown; dropping it kills it).
    pub(crate) fn kill_display(&self) {
        if let Life::Open(held) = &mut *self.life.lock().unwrap() {
            held.display.take();
        }
    }

    /// Everything a restarted worker needs to re-attach this session.
    pub(crate) fn record(&self) -> SessionRecord {
        let generations = self.token_epochs.lock().unwrap().each_ref().map(|e| e.generation);
        let (vnc, live) = (self.vnc_access(), self.live_access());
        let browser = self.saved_browser.lock().unwrap().clone();
        let status = self.status.lock().unwrap();
        SessionRecord {
            id: self.id.0,
            profile_id: self.profile_id.clone(),
            provider: self.provider.to_string(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            idle_timeout_secs: self.idle_timeout.as_secs(),
            humanize: self.humanize,
            metadata: self.metadata.clone(),
            callback: self.events.callback().map(|c| (c.url.to_string(), c.token.clone())),
            state: status.state,
            block: status.block.clone(),
            review: status.review.clone(),
            current_url: status.current_url.clone(),
            title: status.title.clone(),
            timing: status.timing.clone(),
            load_state: status.load_state,
            last_activity_at: status.last_activity_at,
            viewport: self.viewport,
            browser,
            display: self.saved_display.clone(),
            token_generations: generations,
            vnc,
            live,
            last_event: self.events.last_seq(),
            task_id: self.events.task_id(),
        }
    }

    /// The token that fires when the browser's current DevTools connection drops.
    fn connection_lost(&self) -> CancellationToken {
        self.lost.lock().unwrap().clone()
    }

    /// The browser's DevTools WebSocket endpoint.
    pub fn cdp_endpoint(&self) -> &str {
        &self.cdp_endpoint
    }

    /// The VNC server of the session's display, or `None` without a display.
    pub fn vnc_addr(&self) -> Option<&VncAddr> {
        self.vnc_addr.as_ref()
    }

    /// Mints a token of a new generation for `scope`: every older token of that scope is
    /// refused from now on, and bridges opened with one end. `mint_vnc` also makes a VNC
    /// token the one the session object shows.
    pub fn mint_token(&self, issuer: &TokenIssuer, scope: Scope) -> Minted {
        let generation = self.next_generation(epoch_index(scope, None));
        issuer.mint(self.id, scope, generation)
    }

    /// Revokes the tokens of one epoch and returns the new generation.
    fn next_generation(&self, index: usize) -> u64 {
        let generation = {
            let mut epochs = self.token_epochs.lock().unwrap();
            let epoch = &mut epochs[index];
            epoch.revoked.cancel();
            epoch.generation += 1;
            epoch.revoked = CancellationToken::new();
            epoch.generation
        };
        self.persist();
        generation
    }

    /// Mints a live token of `mode` (older tokens of that mode are revoked; the other mode's
    /// stay) with its URLs under `public_url`. A `control` token becomes the one takeover
    /// events and task results show.
    pub fn mint_live(&self, issuer: &TokenIssuer, mode: LiveMode, public_url: &str) -> LiveAccess {
        let generation = self.next_generation(epoch_index(Scope::Live, Some(mode)));
        let access = LiveAccess::new(public_url, self.id, &issuer.mint_live(self.id, mode, generation), mode);
        if mode == LiveMode::Control {
            *self.live.lock().unwrap() = Some(access.clone());
            self.persist();
        }
        access
    }

    /// The newest `control` live access (`mint_live`), if one was minted.
    pub fn live_access(&self) -> Option<LiveAccess> {
        self.live.lock().unwrap().clone()
    }

    /// The live viewers connected now.
    pub fn live_clients(&self) -> usize {
        self.live_clients.load(Ordering::SeqCst)
    }

    /// The screencast live viewers share: the running one, or a new one from `start`.
    pub fn live_hub(&self, start: impl FnOnce() -> Arc<LiveHub>) -> Arc<LiveHub> {
        let mut slot = self.live_hub.lock().unwrap();
        if let Some(hub) = slot.upgrade().filter(|hub| !hub.has_ended()) {
            return hub;
        }
        let hub = start();
        *slot = Arc::downgrade(&hub);
        hub
    }

    /// The target id of the session's page.
    pub fn page_target(&self) -> &str {
        &self.page_target
    }

    /// The session's browser context in a shared browser (context mode).
    pub fn browser_context(&self) -> Option<&str> {
        self.browser_context.as_deref()
    }

    /// The local browser process the session's page runs in (shared, in context mode).
    pub fn browser_process(&self) -> Option<crate::browser::process::ProcessId> {
        self.saved_browser.lock().unwrap().process
    }

    /// Mints a new VNC token (older ones are revoked) and makes its URLs under `public_url`
    /// the ones the session object and its takeover events show. Call only with a display.
    pub fn mint_vnc(&self, issuer: &TokenIssuer, public_url: &str) -> VncAccess {
        let minted = self.mint_token(issuer, Scope::Vnc);
        let shared = self.vnc_addr.as_ref().is_some_and(VncAddr::is_shared);
        let access = VncAccess::new(public_url, self.id, &minted, shared);
        *self.vnc.lock().unwrap() = Some(access.clone());
        self.persist();
        access
    }

    /// The newest VNC access (`mint_vnc`); `None` without a display.
    pub fn vnc_access(&self) -> Option<VncAccess> {
        self.vnc.lock().unwrap().clone()
    }

    /// Where a person takes over, for takeover events and task results: `{"vnc_url",
    /// "viewer_url", "live_url"}`. The VNC links are null without a display and on a shared
    /// display (it shows every session's window: takeover goes through the live view there);
    /// `live_url` is the live viewer of the newest `control` token.
    pub fn takeover_links(&self) -> Map<String, Value> {
        let access = self.vnc_access().filter(|a| !a.shared);
        let live = self.live_access();
        Map::from_iter([
            ("vnc_url".to_string(), access.as_ref().map(|a| a.ws_url.clone()).into()),
            ("viewer_url".to_string(), access.map(|a| a.viewer_url).into()),
            ("live_url".to_string(), live.map(|a| a.viewer_url).into()),
        ])
    }

    /// Checks that a verified token is of the newest generation; returns where its bridge ends.
    pub fn check_grant(&self, scope: Scope, grant: Grant) -> Result<TokenLimit, TokenError> {
        let epochs = self.token_epochs.lock().unwrap();
        let epoch = &epochs[epoch_index(scope, grant.mode)];
        if epoch.generation != grant.generation {
            return Err(TokenError::Revoked);
        }
        Ok(TokenLimit { revoked: epoch.revoked.clone(), expires_at: grant.expires_at })
    }

    /// Fires once the session is closed and released (bridges end with it).
    pub fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// Registers an attached client until the returned guard drops, up to `MAX_CLIENTS` at
    /// once (each holds a socket, a bridge task and, for CDP, a DevTools connection).
    pub fn attach(self: &Arc<Self>) -> Result<Attachment, SessionError> {
        let counted =
            self.attached.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < MAX_CLIENTS).then_some(n + 1));
        if counted.is_err() {
            return Err(SessionError::TooManyClients { max: MAX_CLIENTS });
        }
        self.touch();
        Ok(Attachment { session: self.clone(), live: false })
    }

    /// Registers a live viewer (counted against the same `MAX_CLIENTS`, and in `live_clients`).
    pub fn attach_live(self: &Arc<Self>) -> Result<Attachment, SessionError> {
        let mut attachment = self.attach()?;
        self.live_clients.fetch_add(1, Ordering::SeqCst);
        attachment.live = true;
        Ok(attachment)
    }

    /// Records where the page is now.
    pub fn set_page(&self, url: String, title: String, navigate_ms: Option<u64>) {
        {
            let mut status = self.status.lock().unwrap();
            status.current_url = url;
            status.title = title;
            if navigate_ms.is_some() {
                status.timing.navigate_ms = navigate_ms;
            }
        }
        self.persist();
    }

    /// Records where a navigation by the worker left the page, and how long it took.
    fn navigated(&self, page: &PageInfo, navigate_ms: u64) {
        {
            let mut status = self.status.lock().unwrap();
            status.current_url = page.url.clone();
            status.title = page.title.clone();
            status.timing.navigate_ms = Some(navigate_ms);
            status.load_state = page.load_state;
        }
        self.persist();
    }

    /// Records the result of block detection; a block keeps the session in `needs_human`.
    /// A change is an event (`captcha_detected` for a CAPTCHA, else `state_change`).
    pub fn set_block(&self, block: Option<Block>) {
        if block.is_some() {
            self.blocked_once.store(true, Ordering::SeqCst);
        }
        let previous = {
            let mut status = self.status.lock().unwrap();
            if block.is_some() && status.state == SessionState::Ready {
                status.state = SessionState::NeedsHuman;
            }
            std::mem::replace(&mut status.block, block.clone())
        };
        self.persist();
        match (&previous, &block) {
            (None, Some(b)) | (Some(_), Some(b)) if previous.as_ref() != Some(b) => {
                let kind = if b.reason == BlockReason::Captcha { "captcha_detected" } else { "state_change" };
                self.emit_needs_human(kind, b);
            }
            (Some(_), None) if !self.under_review() => {
                self.events.emit("state_change", serde_json::json!({"state": "ready"}))
            }
            _ => {}
        }
    }

    fn emit_needs_human(&self, kind: &'static str, block: &Block) {
        let mut data = self.takeover_links();
        data.insert("state".into(), "needs_human".into());
        data.insert("block".into(), serde_json::json!(block));
        self.events.emit(kind, Value::Object(data));
    }

    /// Holds the session for a person's review before the final submit (copilot mode): it
    /// rests in `needs_human` with `review_required` until `lift_review`.
    pub fn hold_for_review(&self, detail: &str) {
        // A person looks at it: its recording is kept like a blocked session's.
        self.blocked_once.store(true, Ordering::SeqCst);
        {
            let mut status = self.status.lock().unwrap();
            status.review = Some(detail.to_string());
            if status.state == SessionState::Ready {
                status.state = SessionState::NeedsHuman;
            }
        }
        self.persist();
        let hold = Block { reason: BlockReason::ReviewRequired, detail: detail.to_string() };
        self.emit_needs_human("state_change", &hold);
    }

    /// Lifts a review hold, if there is one: the person's `continue`, or the submit it was for.
    pub fn lift_review(&self) {
        let (lifted, still_blocked) = {
            let mut status = self.status.lock().unwrap();
            (status.review.take().is_some(), status.block.is_some())
        };
        if lifted {
            self.persist();
            if !still_blocked {
                self.events.emit("state_change", serde_json::json!({"state": "ready"}));
            }
        }
    }

    /// Whether the session is held for a person's review.
    pub fn under_review(&self) -> bool {
        self.status.lock().unwrap().review.is_some()
    }

    /// Whether the session waits for a person (`needs_human`): a detected block or a review hold.
    pub fn waits_for_human(&self) -> bool {
        self.status.lock().unwrap().waits_for_human()
    }

    /// Where the session is in its life now.
    pub fn state(&self) -> SessionState {
        self.status.lock().unwrap().state
    }

    /// The block found by the last detection.
    pub fn block(&self) -> Option<Block> {
        self.status.lock().unwrap().block.clone()
    }

    fn set_state(&self, state: SessionState) {
        self.status.lock().unwrap().state = state;
        self.persist();
    }

    fn is_closing(&self) -> bool {
        matches!(*self.life.lock().unwrap(), Life::Closing)
    }

    /// True if the session has been idle longer than its timeout (a busy session, or one with an
    /// attached client, is not idle).
    fn idle_expired(&self, now: Instant) -> bool {
        if self.attached.load(Ordering::SeqCst) > 0 {
            return false;
        }
        let status = self.status.lock().unwrap();
        status.state != SessionState::Busy && now.duration_since(status.last_activity) >= self.idle_timeout
    }

    fn lifetime_expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    fn kill_browser(&self) {
        if let Some(pgid) = self.pgid {
            crate::browser::process::kill_group(pgid);
        }
    }
}

/// Checks a profile id: it names a directory, so only `[A-Za-z0-9._-]`, 1–64 characters.
pub fn validate_profile_id(id: &str) -> Result<(), SessionError> {
    let ok = (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SessionError::Invalid("profile_id must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'".into()))
    }
}

/// Parses a URL a session may open: http(s) only, and an address the egress rules allow when
/// it is written as one (names are checked by the egress proxy when the browser resolves them).
pub fn parse_target_url(text: &str, egress: &EgressPolicy) -> Result<url::Url, SessionError> {
    let url = url::Url::parse(text).map_err(|e| SessionError::InvalidUrl(format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SessionError::InvalidUrl(format!("only http and https URLs are allowed, not {}:", url.scheme())));
    }
    egress.precheck(&url).map_err(|e| SessionError::InvalidUrl(e.to_string()))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_and_never_metadata() {
        let egress =
            EgressPolicy { allow_private: false, allow: std::sync::Arc::from(["127.0.0.1:9000".parse().unwrap()]) };
        assert!(parse_target_url("https://boards.greenhouse.io/acme/jobs/1", &egress).is_ok());
        assert!(parse_target_url("http://127.0.0.1:9000/form", &egress).is_ok());
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:169.254.169.254]/",
            "http://[fe80::1]/",
            "not a url",
            "http://metadata.google.internal./",
            "http://127.0.0.1:9001/form",
            "http://10.0.0.1/",
        ] {
            assert!(parse_target_url(bad, &egress).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn profile_ids_cannot_escape_the_profiles_dir() {
        assert!(validate_profile_id("ads-profile_01.a").is_ok());
        for bad in ["", "..", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(validate_profile_id(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
