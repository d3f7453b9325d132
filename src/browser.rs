//! Browsers: the `BrowserProvider` trait, the live `BrowserHandle` a session owns, and errors.
//!
//! A provider turns a `LaunchSpec` into a `BrowserHandle`: a chromiumoxide connection, one page,
//! a supervised CDP handler task and (for local browsers) the process group it runs in. The
//! handle's `dead` token fires as soon as the browser process exits or its CDP connection drops.

pub mod adspower;
pub mod chromium;
pub mod confine;
pub mod display;
pub mod humanize;
pub mod navigation;
pub mod page;
pub mod pool;
pub mod process;

use std::time::Duration;

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
}

/// Something that can open browsers: the local Chromium launcher, later AdsPower.
#[async_trait]
pub trait BrowserProvider: Send + Sync + 'static {
    /// Name reported in the session's `provider` field.
    fn name(&self) -> &'static str;
    /// Opens a browser with one ready page.
    async fn launch(&self, spec: LaunchSpec) -> Result<BrowserHandle, BrowserError>;
}

/// Runs chromiumoxide's CDP handler until the connection fails, then fires `dead`. The
/// handler would otherwise keep yielding errors on a closed socket (see dependencies notes).
pub(crate) fn drive_handler(mut handler: Handler, dead: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = handler.next().await {
            if let Err(e) = event
                && matches!(e, CdpError::Ws(_) | CdpError::Io(_) | CdpError::ChannelSendError(_))
            {
                break;
            }
        }
        dead.cancel();
    })
}

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
            BrowserError::Navigation(_) | BrowserError::NotInteractive | BrowserError::Cdp(_) => false,
        }
    }
}

/// A provider's way of closing a browser it owns.
pub type Release = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// A live browser with one page, owned by exactly one session (or the warm pool).
pub struct BrowserHandle {
    browser: Browser,
    page: Page,
    handler: JoinHandle<()>,
    /// Keeps the browser's pages off local files and Chromium's own pages (`confine`).
    confined: JoinHandle<()>,
    /// Keeps the DevTools port out of every page's reach while the browser lives.
    _devtools_port: Option<crate::egress::Protected>,
    /// Fires when the process exits or the CDP connection drops.
    dead: CancellationToken,
    /// The local process group, when this worker launched the browser.
    process: Option<BrowserProcess>,
    /// Hands a provider-owned browser back (AdsPower: `browser/stop`) instead of quitting it over CDP.
    release: Option<Release>,
    /// Time limit for each CDP call.
    op_timeout: Duration,
    /// The browser's DevTools WebSocket endpoint (`ws://127.0.0.1:PORT/devtools/browser/…`).
    ws_url: String,
    /// How long the launch took, for the session's `timing.browser_start_ms`.
    pub start_ms: u64,
}

impl BrowserHandle {
    /// A token that is cancelled when the browser dies.
    pub fn dead(&self) -> CancellationToken {
        self.dead.clone()
    }

    /// True once the browser process exited or the connection dropped.
    pub fn is_dead(&self) -> bool {
        self.dead.is_cancelled()
    }

    /// The browser's DevTools WebSocket endpoint.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The DevTools target id of the handle's page.
    pub fn target_id(&self) -> String {
        self.page.target_id().inner().clone()
    }

    /// Process group id of a local browser (used to force-kill from outside the session lock).
    pub fn pgid(&self) -> Option<i32> {
        self.process.as_ref().map(|p| p.pgid())
    }

    /// Closes the browser and releases everything it held (process group, temp dir, pid record).
    /// `graceful` asks Chromium to quit first so that a persistent profile is flushed to disk.
    pub async fn close(mut self, graceful: bool) {
        self.confined.abort();
        if let Some(release) = self.release.take() {
            // Detach, then let the provider close its browser.
            self.handler.abort();
            release().await;
            return;
        }
        if graceful && !self.is_dead() {
            let _ = tokio::time::timeout(Duration::from_secs(3), self.browser.close()).await;
            if let Some(process) = &self.process {
                process.wait_exit(Duration::from_secs(3)).await;
            }
        }
        self.handler.abort();
        if let Some(process) = self.process.take() {
            process.terminate().await;
        }
    }
}

impl Drop for BrowserHandle {
    /// A handle dropped without `close` stops its handler; its process cleans up in its own `Drop`.
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
