//! The session registry: opens sessions within capacity and profile rules, runs operations
//! one at a time, closes sessions exactly once, and remembers why closed ones ended.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use dashmap::DashMap;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use super::{CloseReason, OpGuard, Session, SessionError, SessionId, SessionState, SessionStore, Status, Timing};
use crate::breaker::Breaker;
use crate::browser::BrowserHandle;
use crate::browser::display::{Displays, SessionDisplay};
use crate::browser::humanize::Humanize;
use crate::browser::pool::WarmPool;
use crate::browser::{BrowserError, BrowserProvider, LaunchSpec};
use crate::guard::{self, Block};
use crate::notify::{Callback, EventLog, Notifier};

/// How many ended sessions are remembered for 410 answers.
const TOMBSTONES: usize = 4096;
/// How long `close` waits for a running operation before killing the browser under it.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Called with a new session before its first events go out: mints the takeover links (VNC and
/// live view tokens) that a first page already needing a person (a CAPTCHA) must carry. The
/// registry knows neither tokens nor the public URL; the caller does.
pub struct OnOpen(Box<dyn FnOnce(&Session) + Send>);

impl OnOpen {
    pub fn new(mint: impl FnOnce(&Session) + Send + 'static) -> Self {
        Self(Box::new(mint))
    }
}

impl std::fmt::Debug for OnOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnOpen")
    }
}

/// A validated request to open a session.
#[derive(Debug, Default)]
pub struct CreateOptions {
    pub profile_id: Option<String>,
    pub url: Option<url::Url>,
    pub idle_timeout: Option<Duration>,
    pub viewport: Option<(u32, u32)>,
    /// Default input policy for this session's fills.
    pub humanize: Humanize,
    /// Where the session's events are POSTed.
    pub callback: Option<Callback>,
    /// Run headful on a display a person can watch over VNC.
    pub display: bool,
    pub metadata: Map<String, Value>,
    /// Mints the session's takeover links before its first events (`OnOpen`).
    pub on_open: Option<OnOpen>,
    /// The session's own upstream proxy; `None`: the profile's default, else the worker's.
    pub proxy: Option<Arc<crate::egress::route::SessionProxy>>,
    /// Record the session (its display, else its page).
    pub recording: Option<super::recording::Plan>,
}

/// What `DELETE` reports.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClosedSession {
    pub session_id: SessionId,
    pub state: SessionState,
    pub reason: CloseReason,
    pub duration_ms: u64,
    /// Stored artifacts (screenshots) of the session.
    pub artifacts: Vec<String>,
}

/// A closed session, remembered so that later calls get 410 with the reason.
#[derive(Debug, Clone, Copy)]
struct Tombstone {
    state: SessionState,
    reason: CloseReason,
}

/// All sessions of this worker.
pub struct SessionRegistry {
    pub(super) provider: Arc<dyn BrowserProvider>,
    /// Per-profile circuit breakers: checked before a profile opens, fed by blocks and failures.
    breaker: Arc<Breaker>,
    pool: Option<Arc<WarmPool>>,
    pub(super) open: DashMap<SessionId, Arc<Session>>,
    /// Ended sessions, oldest first in the queue; a std mutex, never held across an await.
    closed: Mutex<(HashMap<SessionId, Tombstone>, VecDeque<SessionId>)>,
    /// profile id → the open session using it.
    pub(super) profiles: DashMap<String, SessionId>,
    pub(super) capacity: Arc<Semaphore>,
    max_sessions: usize,
    idle_timeout: Duration,
    max_lifetime: Duration,
    /// Parent of each session's own file dir (downloaded resumes), `<data_dir>/tmp`.
    pub(super) files_root: PathBuf,
    /// Delivers the webhooks of sessions with a callback.
    pub(super) notifier: Option<Arc<Notifier>>,
    /// Supervisor tasks (one per session, watching for a dead browser).
    pub(super) tracker: TaskTracker,
    pub(super) shutting_down: AtomicBool,
    /// Where displays come from; `None`: sessions are headless only.
    pub(super) displays: Option<Arc<Displays>>,
    /// Where sessions' records are kept for a restarted worker.
    pub(super) store: Option<Arc<SessionStore>>,
    /// Fleet mode: profile leases and the session directory.
    pub(super) fleet: Option<Arc<crate::fleet::Fleet>>,
    /// Where a closing session's recording and timeline are kept.
    pub(super) archive: Option<Arc<crate::artifacts::Artifacts>>,
}

/// Releases a profile claim if session creation does not finish (error or cancelled request).
struct ProfileClaim<'a> {
    registry: &'a SessionRegistry,
    profile_id: Option<String>,
}

impl ProfileClaim<'_> {
    /// The profile now belongs to the open session; `close` releases it.
    fn keep(mut self) {
        self.profile_id = None;
    }
}

impl Drop for ProfileClaim<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.profile_id.take() {
            self.registry.profiles.remove(&id);
        }
    }
}

/// How many sessions may be open and for how long, and where their files go.
pub struct Limits {
    pub max_sessions: usize,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    /// Parent of each session's own file dir.
    pub files_root: PathBuf,
}

impl SessionRegistry {
    pub fn new(
        provider: Arc<dyn BrowserProvider>,
        breaker: Arc<Breaker>,
        pool: Option<Arc<WarmPool>>,
        limits: Limits,
        tracker: TaskTracker,
    ) -> Self {
        let Limits { max_sessions, idle_timeout, max_lifetime, files_root } = limits;
        Self {
            provider,
            breaker,
            pool,
            open: DashMap::new(),
            closed: Mutex::new((HashMap::new(), VecDeque::new())),
            profiles: DashMap::new(),
            capacity: Arc::new(Semaphore::new(max_sessions)),
            max_sessions,
            idle_timeout,
            max_lifetime,
            files_root,
            notifier: None,
            tracker,
            shutting_down: AtomicBool::new(false),
            displays: None,
            store: None,
            fleet: None,
            archive: None,
        }
    }

    /// Keeps each closing session's recording and timeline in `artifacts`.
    pub fn with_archive(mut self, artifacts: Arc<crate::artifacts::Artifacts>) -> Self {
        self.archive = Some(artifacts);
        self
    }

    /// Takes a fleet lease for every profile session and names its sessions in the fleet's
    /// directory (SPEC §3.9).
    pub fn with_fleet(mut self, fleet: Arc<crate::fleet::Fleet>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Keeps every session's record in `store` (SPEC §3.8).
    pub fn with_store(mut self, store: Arc<SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where the sessions' browsers come from.
    pub fn provider(&self) -> &Arc<dyn BrowserProvider> {
        &self.provider
    }

    /// The session store, if sessions are recorded.
    pub fn store(&self) -> Option<&Arc<SessionStore>> {
        self.store.as_ref()
    }

    /// Runs `work` as a task the shutdown drain waits for (closes, creates and tasks that must
    /// finish even when their caller goes away).
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(work)
    }

    /// Sessions created with a callback will send their events through `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Lets sessions ask for a display (`display: true`).
    pub fn with_displays(mut self, displays: Arc<Displays>) -> Self {
        self.displays = Some(displays);
        self
    }

    /// True if sessions can have a display.
    pub fn has_displays(&self) -> bool {
        self.displays.is_some()
    }

    /// True if a session (with `profile_id` or without) gets its own display unless it opts
    /// out (per-session mode): takeover is then possible whenever a session stops for a person.
    /// Not for an ephemeral session in context mode: it shares a headless browser, and a person
    /// takes over through the live view.
    pub fn displays_by_default(&self, profile_id: Option<&str>) -> bool {
        let shared = profile_id.is_none() && self.provider.shares_browsers();
        !shared && self.displays.as_ref().is_some_and(|d| d.per_session_mode())
    }

    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    pub fn active(&self) -> usize {
        self.open.len()
    }

    /// The open session using a profile, if any.
    pub fn profile_holder(&self, profile_id: &str) -> Option<SessionId> {
        self.profiles.get(profile_id).map(|e| *e.value())
    }

    pub fn list(&self) -> Vec<Arc<Session>> {
        self.open.iter().map(|e| e.value().clone()).collect()
    }

    /// Opens a session: capacity, profile claim, a browser (from the warm pool when possible),
    /// optional viewport and first navigation.
    pub async fn create(self: &Arc<Self>, options: CreateOptions) -> Result<Arc<Session>, SessionError> {
        let started = Instant::now();
        let result = self.open_session(options).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(SessionError::Capacity { .. }) => "capacity_exhausted",
            Err(SessionError::ProfileInUse { .. }) => "profile_in_use",
            Err(SessionError::Browser(_)) => "browser_error",
            Err(_) => "rejected",
        };
        metrics::counter!("bw_sessions_created_total", "outcome" => outcome).increment(1);
        if result.is_ok() {
            metrics::histogram!("bw_session_create_seconds").record(started.elapsed().as_secs_f64());
            metrics::gauge!("bw_sessions_active").set(self.open.len() as f64);
        }
        result
    }

    async fn open_session(self: &Arc<Self>, options: CreateOptions) -> Result<Arc<Session>, SessionError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(SessionError::ShuttingDown);
        }
        let permit: OwnedSemaphorePermit = self
            .capacity
            .clone()
            .try_acquire_owned()
            .map_err(|_| SessionError::Capacity { max: self.max_sessions, retry_after_secs: 5 })?;
        let id = SessionId::new();
        let claim = self.claim_profile(options.profile_id.clone(), id)?;
        if let Some(profile) = &options.profile_id {
            self.breaker.admit(profile).await?;
        }
        // Given back if the session does not open (dropped), kept by the session otherwise.
        let lease = self.take_lease(options.profile_id.as_deref(), id).await?;

        let display = match (&self.displays, options.display) {
            (Some(displays), true) => Some(
                displays
                    .open()
                    .await
                    .map_err(|e| BrowserError::Launch(format!("the session's display could not be started: {e}")))?,
            ),
            (None, true) => {
                return Err(SessionError::Invalid("this worker has no displays (BW_DISPLAY_MODE=none)".into()));
            }
            (_, false) => None,
        };
        // The one way back: whatever failed, the display goes and the profile hears of it (the
        // browser was closed where it was started).
        let spec = LaunchSpec {
            profile_id: options.profile_id.clone(),
            display: display.as_ref().map(|d| d.display.clone()),
            proxy: options.proxy.clone(),
        };
        let started = self.start_browser(spec, options.viewport, options.url.as_ref()).await;
        let Started { handle, from_pool, page, navigate_ms, block } = match started {
            Ok(started) => started,
            Err(e) => {
                self.profile_failed(options.profile_id.as_deref(), &e).await;
                if let Some(display) = display {
                    display.stop().await;
                }
                return Err(e.into());
            }
        };
        if let (Some(profile), Some(block)) = (&options.profile_id, &block) {
            self.profile_blocked(profile, block).await;
        }
        let timing = Timing { browser_start_ms: if from_pool { 0 } else { handle.start_ms }, navigate_ms };

        let now = Utc::now();
        let lifetime = chrono::Duration::from_std(self.max_lifetime).unwrap_or(chrono::Duration::MAX);
        let session = self.assemble(Opening {
            id,
            profile_id: options.profile_id,
            created_at: now,
            expires_at: now + lifetime,
            idle_timeout: options.idle_timeout.unwrap_or(self.idle_timeout),
            humanize: options.humanize,
            metadata: options.metadata,
            callback: options.callback,
            status: Status {
                state: if block.is_some() { SessionState::NeedsHuman } else { SessionState::Ready },
                last_activity: Instant::now(),
                last_activity_at: now,
                current_url: page.url,
                title: page.title,
                timing,
                load_state: page.load_state,
                block,
                review: None,
            },
            viewport: options.viewport,
            handle,
            display,
            permit: Some(permit),
        });
        let task_id = session.metadata.get("task_id").and_then(Value::as_str).map(str::to_string);
        session.events.set_task(task_id);
        if let Some(OnOpen(mint)) = options.on_open {
            mint(&session);
        }
        self.open.insert(id, session.clone());
        claim.keep();
        let leased = lease.map(super::leases::LeaseGuard::keep).is_some();
        let block = session.block();
        session.events.emit("state_change", serde_json::json!({"state": session.state(), "block": block}));
        if block.as_ref().is_some_and(|b| b.reason == guard::BlockReason::Captcha) {
            let mut data = session.takeover_links();
            data.insert("block".into(), serde_json::json!(block));
            session.events.emit("captcha_detected", Value::Object(data));
        }
        if let (Some(plan), Some(archive)) = (&options.recording, &self.archive)
            && let Err(e) = super::recording::start(&session, plan, archive)
        {
            tracing::warn!(session_id = %id, error = %e, "the session is not recorded");
        }
        self.supervise(session.clone());
        if leased {
            self.watch_lease(session.clone());
        }
        self.announce(id).await;
        // Journaled before the caller learns the id: a restart finds it.
        session.persist();
        if self.shutting_down.load(Ordering::SeqCst) {
            // Shutdown began while this browser was starting and did not see the session.
            let _ = self.close(id, CloseReason::Shutdown).await;
            return Err(SessionError::ShuttingDown);
        }
        tracing::info!(session_id = %id, from_pool, "session opened");
        Ok(session)
    }

    /// A browser for a new session, from the warm pool when it may be (ephemeral, no display, no
    /// proxy of its own) or launched, with its viewport, first page and block detection. A browser
    /// that fails to get ready is closed here.
    async fn start_browser(
        &self,
        spec: LaunchSpec,
        viewport: Option<(u32, u32)>,
        url: Option<&url::Url>,
    ) -> Result<Started, BrowserError> {
        let pooled = if spec.profile_id.is_none() && spec.display.is_none() && spec.proxy.is_none() {
            self.pool.as_ref().and_then(|p| p.take())
        } else {
            None
        };
        let from_pool = pooled.is_some();
        let handle = match pooled {
            Some(handle) => handle,
            None => self.provider.launch(spec).await?,
        };
        let prepared = async {
            if let Some((width, height)) = viewport {
                handle.set_viewport(width, height).await?;
            }
            let mut navigate_ms = None;
            let mut block = None;
            let mut page = crate::browser::page::PageInfo { url: "about:blank".into(), ..Default::default() };
            if let Some(url) = url {
                let navigation = Instant::now();
                page = handle.navigate(url.as_str()).await?;
                navigate_ms = Some(navigation.elapsed().as_millis() as u64);
                block = guard::detect_block(&handle, url.as_str()).await?;
            }
            Ok::<_, BrowserError>((page, navigate_ms, block))
        }
        .await;
        match prepared {
            Ok((page, navigate_ms, block)) => Ok(Started { handle, from_pool, page, navigate_ms, block }),
            Err(e) => {
                handle.close(false).await;
                Err(e)
            }
        }
    }

    fn claim_profile(&self, profile_id: Option<String>, id: SessionId) -> Result<ProfileClaim<'_>, SessionError> {
        if let Some(profile) = &profile_id {
            match self.profiles.entry(profile.clone()) {
                dashmap::Entry::Occupied(holder) => {
                    return Err(SessionError::ProfileInUse { session_id: *holder.get() });
                }
                dashmap::Entry::Vacant(slot) => {
                    slot.insert(id);
                }
            }
        }
        Ok(ProfileClaim { registry: self, profile_id })
    }

    /// A session object for a browser that is open (new, or re-attached after a restart).
    pub(super) fn assemble(&self, o: Opening) -> Arc<Session> {
        let remaining = (o.expires_at - Utc::now()).to_std().unwrap_or_default();
        let callback = o.callback.zip(self.notifier.clone()).map(|(c, n)| (n, c));
        let saved_display = o.display.as_ref().map(SessionDisplay::saved);
        let blocked = o.status.block.is_some();
        Arc::new(Session {
            id: o.id,
            profile_id: o.profile_id,
            provider: self.provider.name(),
            created_at: o.created_at,
            expires_at: o.expires_at,
            deadline: Instant::now() + remaining,
            idle_timeout: o.idle_timeout,
            humanize: o.humanize,
            files_dir: self.files_root.join(format!("files-{}", o.id)),
            events: EventLog::new(o.id, callback),
            metadata: o.metadata,
            status: Mutex::new(o.status),
            pgid: o.handle.pgid(),
            dead: o.handle.dead(),
            limited: o.handle.limited(),
            lost: Mutex::new(o.handle.lost()),
            saved_browser: Mutex::new(o.handle.saved()),
            proxy: o.handle.proxy(),
            recording: Mutex::new(None),
            recording_url: Mutex::new(None),
            blocked_once: AtomicBool::new(blocked),
            submitted: AtomicBool::new(false),
            saved_display,
            cdp_endpoint: o.handle.ws_url().to_string(),
            vnc_addr: o.display.as_ref().map(|d| d.vnc_addr.clone()),
            display_dead: o.display.as_ref().map(|d| d.dead()).unwrap_or_default(),
            life: Mutex::new(super::Life::Open(super::Held { _permit: o.permit, display: o.display })),
            vnc: Mutex::new(None),
            live: Mutex::new(None),
            token_epochs: Mutex::new(Default::default()),
            attached: Default::default(),
            live_clients: Default::default(),
            live_hub: Mutex::new(Weak::new()),
            page_target: o.handle.target_id(),
            browser_context: o.handle.browser_context().map(str::to_string),
            viewport: o.viewport,
            browser: Arc::new(tokio::sync::Mutex::new(Some(o.handle))),
            ended: CancellationToken::new(),
            store: self.store.clone(),
        })
    }

    /// Watches the browser until the session ends: if it dies first, the session fails. A
    /// DevTools connection that drops while the browser runs is made again first.
    pub(super) fn supervise(self: &Arc<Self>, session: Arc<Session>) {
        let registry = self.clone();
        self.tracker.spawn(async move {
            loop {
                let lost = session.connection_lost();
                tokio::select! {
                    _ = session.ended.cancelled() => return,
                    _ = session.display_dead.cancelled() => {
                        if !session.is_closing() {
                            tracing::warn!(session_id = %session.id, "display (Xvfb or x11vnc) died; session failed");
                            let _ = registry.close(session.id, CloseReason::BrowserCrashed).await;
                        }
                        return;
                    }
                    _ = session.dead.cancelled() => break,
                    _ = lost.cancelled() => {
                        if !session.is_closing() && reconnect(&session).await {
                            continue;
                        }
                        if session.is_closing() {
                            // Closing dropped the connection; the close ends the session.
                            session.ended.cancelled().await;
                            return;
                        }
                        break;
                    }
                }
            }
            if session.is_closing() {
                return;
            }
            if session.limited.load(Ordering::SeqCst) {
                // The page's doing, not the profile's: the breaker is not told.
                tracing::warn!(session_id = %session.id, "browser reached its memory limit; session failed");
                let _ = registry.close(session.id, CloseReason::ResourceLimit).await;
            } else {
                tracing::warn!(session_id = %session.id, "browser died; session failed");
                let _ = registry.close(session.id, CloseReason::BrowserCrashed).await;
                registry.profile_failed(session.profile_id.as_deref(), &BrowserError::Disconnected).await;
            }
        });
    }

    /// Runs block detection on the operation's page (after a navigation, fill or submit):
    /// records the result on the session and, when a new block appears on a profile session,
    /// feeds the profile's breaker. `original_url` is the URL the operation aimed at.
    pub async fn detect(&self, op: &OpGuard, original_url: &str) -> Result<Option<Block>, SessionError> {
        let block = guard::detect_block(op.browser(), original_url).await?;
        let session = op.session();
        let new_block = block.is_some() && session.block().is_none();
        session.set_block(block.clone());
        if let (true, Some(profile), Some(block)) = (new_block, &session.profile_id, &block) {
            self.profile_blocked(profile, block).await;
        }
        Ok(block)
    }

    /// A failure of the profile's task that was not the browser's (e.g. a timeout).
    pub async fn record_profile_failure(&self, profile_id: &str) {
        if let Err(e) = self.breaker.record_failure(profile_id).await {
            tracing::warn!(error = %e, "cannot record a profile failure");
        }
    }

    /// A confirmed success on a profile (e.g. a verified submission): decays its breaker.
    pub async fn profile_succeeded(&self, profile_id: &str) {
        if let Err(e) = self.breaker.record_success(profile_id).await {
            tracing::warn!(error = %e, "cannot record a profile success");
        }
    }

    async fn profile_blocked(&self, profile_id: &str, block: &Block) {
        match self.breaker.record_block(profile_id, block.reason).await {
            Ok(record) => {
                tracing::info!(state = record.state.as_str(), reason = block.reason.as_str(), "profile blocked")
            }
            Err(e) => tracing::warn!(error = %e, "cannot record a profile block"),
        }
    }

    /// Counts a browser/provider failure against the profile. Navigation errors (the site's
    /// fault) and an unreachable provider (nobody's profile's fault) do not count.
    async fn profile_failed(&self, profile_id: Option<&str>, error: &BrowserError) {
        let Some(profile) = profile_id else { return };
        if !error.is_profile_failure() {
            return;
        }
        match self.breaker.record_failure(profile).await {
            Ok(record) => {
                tracing::warn!(state = record.state.as_str(), failures = record.consecutive_failures, "profile failure")
            }
            Err(e) => tracing::warn!(error = %e, "cannot record a profile failure"),
        }
    }

    /// The open session, or why it is not open.
    pub fn get(&self, id: SessionId) -> Result<Arc<Session>, SessionError> {
        if let Some(session) = self.open.get(&id) {
            return Ok(session.clone());
        }
        match self.closed.lock().unwrap().0.get(&id) {
            Some(t) => Err(SessionError::Closed { state: t.state, reason: Some(t.reason) }),
            None => Err(SessionError::NotFound),
        }
    }

    /// Takes the session's single operation slot, or answers busy/closed.
    pub fn begin(&self, id: SessionId) -> Result<OpGuard, SessionError> {
        let session = self.get(id)?;
        if session.is_closing() {
            return Err(SessionError::Closed { state: SessionState::Closing, reason: None });
        }
        let guard = session.browser.clone().try_lock_owned().map_err(|_| SessionError::Busy)?;
        match guard.as_ref() {
            None => return Err(SessionError::Closed { state: SessionState::Closing, reason: None }),
            Some(handle) if handle.is_dead() => {
                return Err(SessionError::Closed {
                    state: SessionState::Failed,
                    reason: Some(CloseReason::BrowserCrashed),
                });
            }
            Some(_) => {}
        }
        session.touch();
        session.set_state(SessionState::Busy);
        Ok(OpGuard { session, guard })
    }

    /// Closes a session exactly once: waits for a running operation (killing the browser if it
    /// does not finish in time), closes the browser and releases the profile.
    pub async fn close(&self, id: SessionId, reason: CloseReason) -> Result<ClosedSession, SessionError> {
        let session = self.get(id)?;
        let Some(mut held) = session.begin_close() else {
            return Err(SessionError::Closed { state: SessionState::Closing, reason: None });
        };
        session.set_state(SessionState::Closing);
        // Before the browser and its display go: the video ends on the session's last page.
        if let Some(archive) = &self.archive {
            super::recording::end(&session, reason.final_state(), archive).await;
        }
        let mut slot = match tokio::time::timeout(CLOSE_WAIT, session.browser.lock()).await {
            Ok(slot) => slot,
            Err(_) => {
                session.kill_browser();
                session.browser.lock().await
            }
        };
        if let Some(handle) = slot.take() {
            let graceful = session.profile_id.is_some()
                && !matches!(reason, CloseReason::BrowserCrashed | CloseReason::ResourceLimit);
            handle.close(graceful).await;
        }
        drop(slot);
        let _ = tokio::fs::remove_dir_all(&session.files_dir).await;
        if let Some(display) = held.display.take() {
            display.stop().await;
        }

        let state = reason.final_state();
        session.set_state(state);
        // Kept before the tombstone: whoever learns the session ended finds its timeline.
        if let Some(archive) = &self.archive {
            let timeline = super::timeline::Timeline::of(&session, Some((state, reason)), &archive.list(id).await);
            let kept = match serde_json::to_vec(&timeline) {
                Ok(json) => archive.save(id, super::timeline::ARTIFACT, &json).await.map(|_| ()),
                Err(e) => Err(crate::artifacts::ArtifactError::Remote(e.to_string())),
            };
            if let Err(e) = kept {
                tracing::warn!(session_id = %id, error = %e, "the session's timeline was not kept");
            }
        }
        self.retire(&session, state, reason, held).await;
        // The closing event is final: it is still delivered while the session's other
        // pending webhooks stop.
        session.events.close(serde_json::json!({"state": state, "reason": reason}));
        session.ended.cancel();
        metrics::counter!("bw_sessions_closed_total", "reason" => reason.as_str()).increment(1);
        metrics::gauge!("bw_sessions_active").set(self.open.len() as f64);
        tracing::info!(session_id = %id, reason = reason.as_str(), "session closed");
        let duration_ms = (Utc::now() - session.created_at).num_milliseconds().max(0) as u64;
        Ok(ClosedSession { session_id: id, state, reason, duration_ms, artifacts: Vec::new() })
    }

    /// The end of a close, in the order the close rules need: the tombstone (so the session
    /// answers 410 with its reason), its profile, record and fleet entry let go, out of the open
    /// set, and only then its capacity slot (consumed here: a new session can never be counted
    /// while the old one still shows as open).
    async fn retire(&self, session: &Session, state: SessionState, reason: CloseReason, held: super::Held) {
        let id = session.id;
        self.tombstone(id, state, reason);
        if let Some(profile) = &session.profile_id {
            self.profiles.remove_if(profile, |_, holder| *holder == id);
        }
        if let Some(store) = &self.store {
            store.remove(id.0);
        }
        self.let_go(id, session.profile_id.as_deref()).await;
        self.open.remove(&id);
        drop(held);
    }

    /// Remembers why a session ended (for 410 answers).
    pub(super) fn tombstone(&self, id: SessionId, state: SessionState, reason: CloseReason) {
        let mut closed = self.closed.lock().unwrap();
        closed.0.insert(id, Tombstone { state, reason });
        closed.1.push_back(id);
        while closed.1.len() > TOMBSTONES {
            if let Some(old) = closed.1.pop_front() {
                closed.0.remove(&old);
            }
        }
    }

    /// The pid records' dir (`<data_dir>/run`, next to the sessions' files dir).
    pub(super) fn run_dir(&self) -> PathBuf {
        self.files_root.with_file_name("run")
    }

    /// Sessions the reaper should close now, with the reason.
    pub fn expired(&self, now: Instant) -> Vec<(SessionId, CloseReason)> {
        self.open
            .iter()
            .filter(|e| !e.is_closing())
            .filter_map(|e| {
                if e.lifetime_expired(now) {
                    Some((e.id, CloseReason::MaxLifetime))
                } else if e.idle_expired(now) {
                    Some((e.id, CloseReason::IdleTimeout))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Refuses new sessions and closes every open one.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let ids: Vec<SessionId> = self.open.iter().map(|e| e.id).collect();
        futures::future::join_all(ids.into_iter().map(|id| self.close(id, CloseReason::Shutdown))).await;
    }

    /// Last resort when the grace period ran out: kill every browser still open.
    pub fn kill_all(&self) {
        for session in self.open.iter() {
            session.kill_browser();
            session.kill_display();
        }
    }
}

/// A new session's browser, ready (`SessionRegistry::start_browser`).
struct Started {
    handle: BrowserHandle,
    from_pool: bool,
    page: crate::browser::page::PageInfo,
    navigate_ms: Option<u64>,
    block: Option<Block>,
}

/// What a new or re-attached session starts with (`SessionRegistry::assemble`).
pub(super) struct Opening {
    pub id: SessionId,
    pub profile_id: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub expires_at: chrono::DateTime<Utc>,
    pub idle_timeout: Duration,
    pub humanize: Humanize,
    pub metadata: Map<String, Value>,
    pub callback: Option<Callback>,
    pub status: Status,
    pub viewport: Option<(u32, u32)>,
    pub handle: BrowserHandle,
    pub display: Option<SessionDisplay>,
    pub permit: Option<OwnedSemaphorePermit>,
}

/// Connects again to the browser of a session whose DevTools connection dropped; false if the
/// browser is gone (or will not answer). Waits for a running operation, which fails fast on
/// the dropped connection.
async fn reconnect(session: &Session) -> bool {
    let mut slot = session.browser.lock().await;
    let Some(handle) = slot.as_mut() else { return false };
    if !handle.lost().is_cancelled() {
        return true;
    }
    for attempt in 1..=3u32 {
        match handle.reconnect().await {
            Ok(()) => {
                if let Some((width, height)) = session.viewport {
                    let _ = handle.set_viewport(width, height).await;
                }
                *session.lost.lock().unwrap() = handle.lost();
                *session.saved_browser.lock().unwrap() = handle.saved();
                tracing::info!(session_id = %session.id, "DevTools connection lost and made again");
                drop(slot);
                session.persist();
                return true;
            }
            Err(e) if handle.dead().is_cancelled() => {
                tracing::debug!(error = %e, "the browser is gone");
                return false;
            }
            Err(e) => {
                tracing::warn!(session_id = %session.id, attempt, error = %e, "DevTools reconnect failed");
                tokio::time::sleep(Duration::from_millis(500) * attempt).await;
            }
        }
    }
    false
}
