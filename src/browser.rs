//! Browsers: the `BrowserProvider` trait, the live `BrowserHandle` a session owns, and errors.
//!
//! A provider turns a `LaunchSpec` into a `BrowserHandle`: a chromiumoxide connection, one page,
//! a supervised CDP handler task and (for local browsers) the process group it runs in. The
//! handle's `dead` token fires as soon as the browser process exits or its CDP connection drops.

pub mod adspower;
pub(crate) mod child;
pub mod chromium;
pub mod confine;
pub mod display;
pub mod humanize;
pub mod limits;
pub mod navigation;
pub mod page;
pub mod pool;
pub mod port;
pub mod process;
pub mod sandbox;
pub mod script;
pub mod shared;
pub mod tap;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::Handler;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use process::BrowserProcess;

/// What a browser must be opened with.
#[derive(Debug, Clone, Default)]
pub struct LaunchSpec {
    /// A persistent profile (cookies survive between sessions); `None` is a fresh ephemeral one.
    pub profile_id: Option<String>,
    /// An X display (e.g. `:100`) to run headful on; `None` runs headless.
    pub display: Option<String>,
    /// The session's own upstream proxy (and identity); `None`: the worker's default, if any.
    pub proxy: Option<Arc<crate::egress::route::SessionProxy>>,
}

/// Something that can open browsers: the local Chromium launcher, later AdsPower.
#[async_trait]
pub trait BrowserProvider: Send + Sync + 'static {
    /// Name reported in the session's `provider` field.
    fn name(&self) -> &'static str;
    /// Opens a browser with one ready page.
    async fn launch(&self, spec: LaunchSpec) -> Result<BrowserHandle, BrowserError>;
    /// Connects again to the browser of a session an earlier run of the worker opened, if it
    /// still runs (`profile_id`: the session's profile).
    async fn reattach(&self, saved: &SavedBrowser, profile_id: Option<&str>) -> Result<BrowserHandle, BrowserError>;
    /// True when ephemeral sessions share browsers (context mode, `shared`).
    fn shares_browsers(&self) -> bool {
        false
    }
    /// Called once every recorded session has been re-attached or failed (`saved`: all of
    /// their browsers), to stop what no session took back.
    async fn restored(&self, _saved: &[SavedBrowser]) {}
    /// The worker stops: close what the provider holds beside the sessions' browsers, or leave
    /// it running for the next worker (`handover`).
    async fn stop(&self, _handover: bool) {}
}

/// Runs chromiumoxide's CDP handler until the connection fails (or the task is aborted), then
/// fires `lost`. The handler would otherwise keep yielding errors on a closed socket (see
/// dependencies notes).
pub(crate) fn drive_handler(mut handler: Handler, lost: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _lost = lost.drop_guard();
        while let Some(event) = handler.next().await {
            if let Err(e) = event
                && matches!(e, CdpError::Ws(_) | CdpError::Io(_) | CdpError::ChannelSendError(_))
            {
                break;
            }
        }
    })
}

/// How long each step of opening a browser took, published as
/// `bw_browser_launch_phase_seconds{phase}` for launches (the create bench reads it).
pub(crate) struct Phases {
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Phases {
    pub(crate) fn start() -> Self {
        Self { last: Instant::now(), laps: Vec::new() }
    }

    /// Ends the phase `name` now.
    pub(crate) fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.laps.push((name, now - self.last));
        self.last = now;
    }

    /// Records a phase that ran beside the others (not part of the sequence).
    pub(crate) fn beside(&mut self, name: &'static str, took: Duration) {
        self.laps.push((name, took));
    }

    pub(crate) fn publish(&self) {
        for (phase, took) in &self.laps {
            metrics::histogram!("bw_browser_launch_phase_seconds", "phase" => *phase).record(took.as_secs_f64());
        }
    }
}

/// Which page a new connection takes.
#[derive(Debug, Clone)]
pub(crate) enum PageOf {
    /// A new `about:blank` page (a browser just launched).
    New,
    /// The existing page with this target id (re-attaching).
    Target(String),
}

/// A DevTools connection to a running browser: chromiumoxide with its handler task, the
/// confining connection, and the session's page.
pub(crate) struct Connection {
    browser: Browser,
    page: Page,
    handler: JoinHandle<()>,
    confined: JoinHandle<()>,
    lost: CancellationToken,
}

impl Connection {
    /// Connects to `ws_url` within `limit` and takes the page `page`; CDP calls time out after
    /// `op_timeout`. The confining connection starts beside the main one (both are ready before
    /// this returns, so no page is handed out unconfined).
    pub(crate) async fn open(
        ws_url: &str,
        page: &PageOf,
        limit: Duration,
        op_timeout: Duration,
        phases: &mut Phases,
    ) -> Result<Self, BrowserError> {
        let confining = async {
            let started = Instant::now();
            confine::confine(ws_url).await.map(|task| (task, started.elapsed()))
        };
        let (main, confined) = tokio::join!(Self::connect(ws_url, page, limit, op_timeout, phases), confining);
        match (main, confined) {
            (Ok((browser, page, handler, lost)), Ok((confined, took))) => {
                phases.beside("confine", took);
                Ok(Self { browser, page, handler, confined, lost })
            }
            (main, confined) => {
                if let Ok((_, _, handler, _)) = &main {
                    handler.abort();
                }
                if let Ok((task, _)) = &confined {
                    task.abort();
                }
                Err(main.err().or(confined.err()).unwrap_or(BrowserError::Disconnected))
            }
        }
    }

    /// The chromiumoxide connection (its handler running) and the page it takes.
    async fn connect(
        ws_url: &str,
        page: &PageOf,
        limit: Duration,
        op_timeout: Duration,
        phases: &mut Phases,
    ) -> Result<(Browser, Page, JoinHandle<()>, CancellationToken), BrowserError> {
        // No viewport emulation (the window size is the viewport) and certificate errors are not ignored.
        let config = chromiumoxide::handler::HandlerConfig {
            viewport: None,
            ignore_https_errors: false,
            request_timeout: op_timeout,
            ..Default::default()
        };
        let (browser, handler) =
            match tokio::time::timeout(limit, Browser::connect_with_config(ws_url.to_string(), config)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(BrowserError::Launch(format!("cannot connect to DevTools: {e}"))),
                Err(_) => return Err(BrowserError::Timeout("DevTools connect")),
            };
        let lost = CancellationToken::new();
        let handler = drive_handler(handler, lost.clone());
        phases.lap("devtools_connect");
        let taken = match page {
            PageOf::New => match tokio::time::timeout(op_timeout, browser.new_page("about:blank")).await {
                Ok(Ok(page)) => Ok(page),
                Ok(Err(e)) => Err(BrowserError::Launch(format!("no page: {e}"))),
                Err(_) => Err(BrowserError::Timeout("first page")),
            },
            PageOf::Target(target) => existing_page(&browser, target, limit).await,
        };
        phases.lap("first_page");
        match taken {
            Ok(page) => Ok((browser, page, handler, lost)),
            Err(e) => {
                handler.abort();
                Err(e)
            }
        }
    }
}

/// The browser's page with target id `target`, once chromiumoxide has attached to it: the
/// handler asks for target discovery on connecting and attaches to every page it learns of.
/// (`fetch_targets` would make it start over with every target, and attach a second time.)
async fn existing_page(browser: &Browser, target: &str, limit: Duration) -> Result<Page, BrowserError> {
    let target_id = chromiumoxide::cdp::browser_protocol::target::TargetId::from(target.to_string());
    let found = tokio::time::timeout(limit.min(PAGE_ATTACH), async {
        loop {
            if let Ok(page) = browser.get_page(target_id.clone()).await {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    found.map_err(|_| BrowserError::Launch("the session's page is gone".into()))
}

/// How long a re-attached browser's page may take to show up.
const PAGE_ATTACH: Duration = Duration::from_secs(5);

/// Protects the loopback port of a DevTools URL (`ws://127.0.0.1:PORT/devtools/…`) from
/// every egress path for as long as the guard lives.
pub(crate) fn protect_devtools(ws_url: &str) -> Option<crate::egress::Protected> {
    let url = url::Url::parse(ws_url).ok()?;
    Some(crate::egress::protect(url.port_or_known_default()?))
}

/// Failures talking to or starting a browser.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("the browser could not be started: {0}")]
    Launch(String),
    #[error("the browser is gone (crashed or disconnected)")]
    Disconnected,
    #[error("the browser did not answer in time ({0})")]
    Timeout(&'static str),
    #[error("navigation failed: {0}")]
    Navigation(String),
    /// The page answered but its document never became interactive (no `DOMContentLoaded`)
    /// within the operation timeout.
    #[error("the page did not become interactive in time (its document never finished parsing)")]
    NotInteractive,
    #[error("the browser reported an error: {0}")]
    Cdp(String),
    /// The session's upstream proxy failed (down, wrong credentials, timed out): the page
    /// could not be reached through it. Never the profile's fault.
    #[error("{0}")]
    Proxy(String),
    /// The provider (AdsPower) failed; `profile_fault` when it refused this profile.
    #[error("{message}")]
    Provider { message: String, profile_fault: bool },
}

impl BrowserError {
    /// True for failures of the browser itself (start, crash, hang), which count against a
    /// profile's breaker; navigation errors do not.
    pub fn is_profile_failure(&self) -> bool {
        match self {
            BrowserError::Launch(_) | BrowserError::Disconnected | BrowserError::Timeout(_) => true,
            BrowserError::Provider { profile_fault, .. } => *profile_fault,
            BrowserError::Navigation(_)
            | BrowserError::NotInteractive
            | BrowserError::Cdp(_)
            | BrowserError::Proxy(_) => false,
        }
    }
}

/// What a session record keeps of a browser, to re-attach it after a restart.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedBrowser {
    /// The DevTools endpoint.
    pub ws_url: String,
    /// The session's page.
    pub page_target: String,
    /// A local browser's process group leader.
    pub process: Option<process::ProcessId>,
    /// A local browser's ephemeral user-data dir.
    pub temp_dir: Option<std::path::PathBuf>,
    /// A local browser's cgroup (`limits`).
    #[serde(default)]
    pub cage: Option<String>,
    /// A local browser's own egress listener and the proxy it chains to.
    #[serde(default)]
    pub egress: Option<SavedEgress>,
    /// The session's browser context in a shared browser (context mode): `process` and
    /// `temp_dir` are then the shared browser's, which other sessions use too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl SavedBrowser {
    /// True when the browser's process and temp dir are this session's alone.
    pub fn owns_process(&self) -> bool {
        self.context.is_none()
    }
}

/// A browser's own egress listener, to start again on the same port after a restart.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedEgress {
    pub port: u16,
    pub proxy: crate::egress::route::ProxySpec,
}

/// Where a local browser's traffic goes: the route of its egress listener (its own while the
/// browser lives, or the worker's shared one) and the language its pages are told.
pub(crate) struct Egress {
    pub route: Arc<crate::egress::route::Route>,
    /// The browser's own listener (stopped when the handle goes).
    pub own: Option<(u16, tokio_util::sync::DropGuard)>,
}

/// Who closes a browser: the worker, by killing its process group, or its provider.
pub(crate) enum Owner {
    Process(BrowserProcess),
    Provider(Release),
}

/// A provider's way of closing a browser it owns.
pub type Release = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// A live browser page owned by exactly one session (or the warm pool): a whole browser of its
/// own, or a browser context in a shared browser (`shared`, context mode).
pub struct BrowserHandle {
    page: Page,
    /// What the handle holds of its browser.
    link: Link,
    /// Fires when the browser is gone (its process exited, or AdsPower reports it stopped).
    dead: CancellationToken,
    /// Fires when the current DevTools connection drops (`reconnect` makes a new one).
    lost: CancellationToken,
    /// Time limit for each CDP call.
    op_timeout: Duration,
    /// The browser's DevTools WebSocket endpoint (`ws://127.0.0.1:PORT/devtools/browser/…`).
    ws_url: String,
    /// How long the launch took, for the session's `timing.browser_start_ms`.
    pub start_ms: u64,
    /// A local browser's (or context's) egress route (`None` for a provider's browser).
    egress: Option<Egress>,
}

/// What a handle holds of its browser.
enum Link {
    /// A browser of its own (boxed: the chromiumoxide connection is large).
    Own(Box<Own>),
    /// A browser context of a shared browser: closing the handle disposes the context.
    Context(shared::Lease),
}

/// A browser of the handle's own: its DevTools connection and who closes it.
struct Own {
    browser: Browser,
    handler: JoinHandle<()>,
    /// Keeps the browser's pages off local files and Chromium's own pages (`confine`).
    confined: JoinHandle<()>,
    /// Keeps the DevTools port out of every page's reach while the browser lives.
    _devtools_port: Option<crate::egress::Protected>,
    /// The local process group, when this worker launched the browser.
    process: Option<BrowserProcess>,
    /// Hands a provider-owned browser back (AdsPower: `browser/stop`) instead of quitting it over CDP.
    release: Option<Release>,
}

impl Drop for Own {
    /// Dropped without `close`: the handler stops; the process cleans up in its own `Drop`.
    fn drop(&mut self) {
        self.handler.abort();
        self.confined.abort();
        if let Some(release) = self.release.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(release());
        }
    }
}

impl BrowserHandle {
    /// Wraps a connection to a browser that `dead` watches; `process` is the local process
    /// group and `release` the provider's way of closing it, if any.
    pub(crate) fn new(
        connection: Connection,
        ws_url: String,
        dead: CancellationToken,
        owner: Owner,
        op_timeout: Duration,
        start_ms: u64,
    ) -> Self {
        let Connection { browser, page, handler, confined, lost } = connection;
        let (process, release) = match owner {
            Owner::Process(process) => (Some(process), None),
            Owner::Provider(release) => (None, Some(release)),
        };
        let own = Own { browser, handler, confined, _devtools_port: protect_devtools(&ws_url), process, release };
        Self { page, link: Link::Own(Box::new(own)), dead, lost, op_timeout, ws_url, start_ms, egress: None }
    }

    /// A handle on a page of a context in a shared browser (`shared`).
    pub(crate) fn in_context(page: Page, lease: shared::Lease, egress: Option<Egress>, start_ms: u64) -> Self {
        let core = lease.core();
        Self {
            page,
            dead: core.dead(),
            lost: core.lost(),
            op_timeout: core.op_timeout(),
            ws_url: core.ws_url().to_string(),
            link: Link::Context(lease),
            start_ms,
            egress,
        }
    }

    fn own(&self) -> Option<&Own> {
        match &self.link {
            Link::Own(own) => Some(own),
            Link::Context(_) => None,
        }
    }

    /// The chromiumoxide connection of a browser of the handle's own (a shared browser's core).
    pub(crate) fn connection(&self) -> Option<&Browser> {
        self.own().map(|own| &own.browser)
    }

    /// The browser context of a context-mode session; `None` for a browser of its own.
    pub fn browser_context(&self) -> Option<&str> {
        match &self.link {
            Link::Context(lease) => Some(lease.id()),
            Link::Own(_) => None,
        }
    }

    /// Sets the browser's egress route and tells its page the proxy's language.
    pub(crate) async fn with_egress(mut self, egress: Egress) -> Result<Self, BrowserError> {
        self.egress = Some(egress);
        self.present().await?;
        Ok(self)
    }

    /// The proxy the browser's traffic goes through, as the API shows it.
    pub fn proxy(&self) -> Option<crate::egress::route::ProxyView> {
        self.route()?.proxy().map(|p| p.view())
    }

    fn route(&self) -> Option<&Arc<crate::egress::route::Route>> {
        self.egress.as_ref().map(|e| &e.route)
    }

    /// Applies the proxy's identity to the page: its locale to `Intl` and `navigator.language`
    /// and, in a shared browser (where the process's `TZ` and `--accept-lang` are everyone's),
    /// its time zone and `Accept-Language` too. CDP overrides last as long as the connection:
    /// applied again on `reconnect`.
    pub(crate) async fn present(&self) -> Result<(), BrowserError> {
        use chromiumoxide::cdp::browser_protocol::emulation;
        let Some(identity) = self.route().and_then(|r| r.proxy()).and_then(|p| p.identity.clone()) else {
            return Ok(());
        };
        let page = &self.page;
        if let Some(locale) = identity.locale.clone() {
            let params = emulation::SetLocaleOverrideParams::builder().locale(locale).build();
            self.cdp("set locale", || async { page.execute(params.clone()).await.map(|_| ()) }).await?;
        }
        let Link::Context(lease) = &self.link else { return Ok(()) };
        if let Some(zone) = identity.timezone.clone() {
            let params = emulation::SetTimezoneOverrideParams::new(zone);
            self.cdp("set time zone", || async { page.execute(params.clone()).await.map(|_| ()) }).await?;
        }
        if let Some(languages) = identity.languages() {
            let mut params = emulation::SetUserAgentOverrideParams::new(lease.core().user_agent.clone());
            params.accept_language = Some(languages);
            self.cdp("set languages", || async { page.execute(params.clone()).await.map(|_| ()) }).await?;
        }
        Ok(())
    }

    /// A token that is cancelled when the browser is gone.
    pub fn dead(&self) -> CancellationToken {
        self.dead.clone()
    }

    /// Set once a local browser was stopped for exceeding its memory limit (its session fails
    /// with `resource_limit`); never for a provider's browser.
    pub fn limited(&self) -> Arc<AtomicBool> {
        match &self.link {
            Link::Own(own) => own.process.as_ref().map_or_else(Default::default, BrowserProcess::limited),
            Link::Context(lease) => lease.core().limited(),
        }
    }

    /// A token that is cancelled when the current DevTools connection drops.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// True once the browser is gone or its connection dropped (until `reconnect`).
    pub fn is_dead(&self) -> bool {
        self.dead.is_cancelled() || self.lost.is_cancelled()
    }

    /// Connects again to a browser that still runs after its DevTools connection dropped, to
    /// the same page. A context's page rides on its shared browser's connection: when that
    /// drops, the context's session ends with it.
    pub async fn reconnect(&mut self) -> Result<(), BrowserError> {
        let Link::Own(own) = &mut self.link else { return Err(BrowserError::Disconnected) };
        if self.dead.is_cancelled() {
            return Err(BrowserError::Disconnected);
        }
        let page = PageOf::Target(self.page.target_id().inner().clone());
        let connection =
            Connection::open(&self.ws_url, &page, self.op_timeout, self.op_timeout, &mut Phases::start()).await?;
        own.handler.abort();
        own.confined.abort();
        let Connection { browser, page, handler, confined, lost } = connection;
        (own.browser, own.handler, own.confined) = (browser, handler, confined);
        (self.page, self.lost) = (page, lost);
        self.present().await
    }

    /// Drops the DevTools connection while the browser runs on, as a broken socket would (for
    /// tests of `reconnect`).
    #[doc(hidden)]
    pub fn sever(&self) {
        if let Some(own) = self.own() {
            own.handler.abort();
        }
    }

    /// What a session record keeps of this browser to re-attach it after a restart.
    pub fn saved(&self) -> SavedBrowser {
        let (process, context) = match &self.link {
            Link::Own(own) => (own.process.as_ref(), None),
            Link::Context(lease) => (lease.core().process(), Some(lease.id().to_string())),
        };
        SavedBrowser {
            ws_url: self.ws_url.clone(),
            page_target: self.target_id(),
            process: process.map(|p| p.id()),
            temp_dir: process.and_then(|p| p.temp_dir().map(Into::into)),
            cage: process.and_then(BrowserProcess::cage_name),
            egress: self.egress.as_ref().and_then(|e| {
                let (port, _) = e.own.as_ref()?;
                Some(SavedEgress { port: *port, proxy: e.route.proxy()?.spec().clone() })
            }),
            context,
        }
    }

    /// Leaves the browser running for the next worker (handover at exit): its process group,
    /// pid record and temp dir stay, and a provider's browser is not stopped. A context stays
    /// in its shared browser, which stays too.
    pub fn detach(self) {
        let Self { link, .. } = self;
        match link {
            Link::Own(mut own) => {
                own.release = None;
                if let Some(process) = own.process.take() {
                    process.detach();
                }
            }
            Link::Context(lease) => lease.detach(),
        }
    }

    /// The browser's DevTools WebSocket endpoint.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The DevTools target id of the handle's page.
    pub fn target_id(&self) -> String {
        self.page.target_id().inner().clone()
    }

    /// Process group id of a browser of the handle's own (used to force-kill from outside the
    /// session lock); `None` for a context, whose shared browser is others' too.
    pub fn pgid(&self) -> Option<i32> {
        self.own()?.process.as_ref().map(|p| p.pgid())
    }

    /// Closes the browser and releases everything it held (process group, temp dir, pid record);
    /// a context is disposed of, with its pages. `graceful` asks Chromium to quit first so that
    /// a persistent profile is flushed to disk.
    pub async fn close(self, graceful: bool) {
        let dead = self.is_dead();
        let Self { link, .. } = self;
        let mut own = match link {
            Link::Own(own) => own,
            Link::Context(lease) => return lease.close().await,
        };
        own.confined.abort();
        if let Some(release) = own.release.take() {
            // Detach, then let the provider close its browser.
            own.handler.abort();
            release().await;
            return;
        }
        if graceful && !dead {
            let _ = tokio::time::timeout(Duration::from_secs(3), own.browser.close()).await;
            if let Some(process) = &own.process {
                process.wait_exit(Duration::from_secs(3)).await;
            }
        }
        own.handler.abort();
        if let Some(process) = own.process.take() {
            process.terminate().await;
        }
    }
}
