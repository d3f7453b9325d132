//! Context mode (`BW_EPHEMERAL_MODE=context`): an ephemeral session gets a browser context of
//! its own (`Target.createBrowserContext`, disposed of when the session closes) in one of a few
//! shared browsers, instead of a whole browser. A context has its own cookies, storage, cache
//! and proxy (the session's egress listener); the CDP passthrough and the live view show it
//! only its own targets (`bridge::cdp_scope`, `live::hub`).
//!
//! A shared browser (a `Core`) is an ordinary local browser launched by `ChromiumProvider`; it
//! takes up to `per_browser` contexts. Its death fails exactly its sessions (their handles
//! watch its `dead` token). One idle core stays up for the next create; other cores close when
//! their last context goes. Sessions with a profile, a display or a provider other than the
//! local Chromium keep a browser each.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chromiumoxide::cdp::browser_protocol::browser::{BrowserContextId, GetVersionParams};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams, DisposeBrowserContextParams,
};
use tokio_util::sync::CancellationToken;

use super::chromium::ChromiumProvider;
use super::process::{BrowserProcess, ProcessId};
use super::{BrowserError, BrowserHandle, BrowserProvider, LaunchSpec, SavedBrowser};

/// Launches sessions' browsers: contexts in shared browsers for ephemeral sessions, whole
/// browsers (`inner`) for the rest.
pub struct ContextProvider {
    inner: Arc<ChromiumProvider>,
    cores: Arc<Cores>,
    /// One shared browser starts at a time; creates arriving meanwhile wait for it.
    launching: tokio::sync::Mutex<()>,
}

/// The shared browsers and how many contexts each may take.
struct Cores {
    list: Mutex<Vec<Arc<Core>>>,
    per_browser: usize,
}

/// A shared browser.
pub(crate) struct Core {
    /// The browser (its own page closed once launched); taken by `Drop`.
    handle: Option<BrowserHandle>,
    /// Contexts open or being opened in it.
    contexts: AtomicUsize,
    /// Set at handover: the browser stays for the next worker.
    handed_over: AtomicBool,
    /// The browser's user agent (a context's `Accept-Language` override needs it).
    pub(crate) user_agent: String,
}

impl Core {
    fn handle(&self) -> &BrowserHandle {
        self.handle.as_ref().expect("a core has its browser until dropped")
    }

    fn connection(&self) -> &chromiumoxide::Browser {
        self.handle().connection().expect("a shared browser is the worker's own")
    }

    pub(crate) fn dead(&self) -> CancellationToken {
        self.handle().dead()
    }

    pub(crate) fn lost(&self) -> CancellationToken {
        self.handle().lost()
    }

    pub(crate) fn op_timeout(&self) -> Duration {
        self.handle().op_timeout
    }

    pub(crate) fn ws_url(&self) -> &str {
        self.handle().ws_url()
    }

    pub(crate) fn limited(&self) -> Arc<AtomicBool> {
        self.handle().limited()
    }

    pub(crate) fn process(&self) -> Option<&BrowserProcess> {
        self.handle().own()?.process.as_ref()
    }

    fn process_id(&self) -> Option<ProcessId> {
        self.process().map(BrowserProcess::id)
    }

    fn is_dead(&self) -> bool {
        self.handle().is_dead()
    }

    /// One browser-level CDP call on the shared connection (the handle's timeout and death rules).
    async fn execute<C>(&self, what: &'static str, command: C) -> Result<C::Response, BrowserError>
    where
        C: chromiumoxide::types::Command + Clone,
    {
        call(self.handle(), what, command).await
    }

    async fn dispose(&self, context: &str) -> Result<(), BrowserError> {
        let params = DisposeBrowserContextParams::new(BrowserContextId::from(context.to_string()));
        self.execute("dispose of a browser context", params).await.map(|_| ())
    }
}

/// One browser-level CDP call on `handle`'s own connection.
async fn call<C>(handle: &BrowserHandle, what: &'static str, command: C) -> Result<C::Response, BrowserError>
where
    C: chromiumoxide::types::Command + Clone,
{
    let browser =
        handle.connection().ok_or_else(|| BrowserError::Launch("a shared browser must be a local one".into()))?;
    handle.cdp(what, || async { browser.execute(command.clone()).await.map(|r| r.result) }).await
}

/// A failed step of opening a context is a failed launch.
fn launch_failed(what: &str) -> impl Fn(BrowserError) -> BrowserError + '_ {
    move |e| match e {
        BrowserError::Cdp(m) => BrowserError::Launch(format!("{what}: {m}")),
        e => e,
    }
}

impl Drop for Core {
    /// The last lease and the provider let go: the browser stops (its process group is killed
    /// and its temp dir removed by the process's own `Drop`), unless it was handed over.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take()
            && self.handed_over.load(Ordering::SeqCst)
        {
            handle.detach();
        }
    }
}

/// A session's hold on its context: closing it disposes of the context.
pub(crate) struct Lease {
    core: Arc<Core>,
    cores: Arc<Cores>,
    id: String,
    /// Set by `close` or `detach`; a lease dropped without either disposes in the background.
    done: bool,
}

impl Lease {
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Disposes of the context (closing its pages) and gives its place back.
    pub(crate) async fn close(mut self) {
        self.done = true;
        if !self.core.is_dead()
            && let Err(e) = self.core.dispose(&self.id).await
        {
            tracing::warn!(context = %self.id, error = %e, "cannot dispose of a browser context");
        }
        self.cores.release(&self.core);
    }

    /// Leaves the context and its browser running for the next worker.
    pub(crate) fn detach(mut self) {
        self.done = true;
        self.core.handed_over.store(true, Ordering::SeqCst);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (core, cores, id) = (self.core.clone(), self.cores.clone(), self.id.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = core.dispose(&id).await;
                cores.release(&core);
            });
        }
    }
}

/// A place taken in a core: given back when dropped, unless it became a `Lease`.
struct Place {
    core: Arc<Core>,
    cores: Arc<Cores>,
    kept: bool,
}

impl Place {
    fn new(core: Arc<Core>, cores: &Arc<Cores>) -> Self {
        core.contexts.fetch_add(1, Ordering::SeqCst);
        Self { core, cores: cores.clone(), kept: false }
    }

    /// The place now holds the context `id`.
    fn lease(mut self, id: String) -> Lease {
        self.kept = true;
        Lease { core: self.core.clone(), cores: self.cores.clone(), id, done: false }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if !self.kept {
            self.cores.release(&self.core);
        }
    }
}

impl Cores {
    /// A place in a live core with room, if there is one.
    fn reserve(self: &Arc<Self>) -> Option<Place> {
        let list = self.list.lock().unwrap();
        let core =
            list.iter().find(|core| !core.is_dead() && core.contexts.load(Ordering::SeqCst) < self.per_browser)?;
        Some(Place::new(core.clone(), self))
    }

    /// Adds a core, and drops it from the list as soon as its browser dies (its sessions'
    /// leases hold it until they close; then its processes are reaped).
    fn add(self: &Arc<Self>, core: Arc<Core>) {
        self.list.lock().unwrap().push(core.clone());
        let (cores, dead) = (Arc::downgrade(self), core.dead());
        let core = Arc::downgrade(&core);
        tokio::spawn(async move {
            dead.cancelled().await;
            if let (Some(cores), Some(core)) = (cores.upgrade(), core.upgrade()) {
                cores.list.lock().unwrap().retain(|c| !Arc::ptr_eq(c, &core));
            }
        });
    }

    /// Gives a place back; a core left empty closes unless it is the last one up.
    fn release(&self, core: &Arc<Core>) {
        let mut list = self.list.lock().unwrap();
        let left = core.contexts.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && list.len() > 1 {
            list.retain(|c| !Arc::ptr_eq(c, core));
        }
    }

    /// The core running as process `id`, if adopted.
    fn find(&self, id: ProcessId) -> Option<Arc<Core>> {
        self.list.lock().unwrap().iter().find(|c| c.process_id() == Some(id)).cloned()
    }
}

impl ContextProvider {
    pub fn new(inner: Arc<ChromiumProvider>, per_browser: usize) -> Self {
        let cores = Arc::new(Cores { list: Mutex::default(), per_browser: per_browser.max(1) });
        Self { inner, cores, launching: tokio::sync::Mutex::new(()) }
    }

    /// A place in a shared browser, starting one when none has room.
    async fn place(&self) -> Result<Place, BrowserError> {
        if let Some(place) = self.cores.reserve() {
            return Ok(place);
        }
        let _one = self.launching.lock().await;
        if let Some(place) = self.cores.reserve() {
            return Ok(place);
        }
        let handle = self.inner.launch(LaunchSpec::default()).await?;
        // The launch's blank page is nobody's: its renderer would cost every context a share.
        let _ = handle.cdp("close the launch page", || handle.page.clone().close()).await;
        let core = Arc::new(Self::core(handle).await?);
        let place = Place::new(core.clone(), &self.cores);
        self.cores.add(core);
        Ok(place)
    }

    /// A launched (or adopted) browser as a core.
    async fn core(handle: BrowserHandle) -> Result<Core, BrowserError> {
        let user_agent = call(&handle, "browser version", GetVersionParams::default()).await?.user_agent;
        Ok(Core {
            handle: Some(handle),
            contexts: AtomicUsize::new(0),
            handed_over: AtomicBool::new(false),
            user_agent,
        })
    }

    /// A new context in the place taken, with its page and egress.
    async fn open(&self, place: Place, spec: &LaunchSpec, started: Instant) -> Result<BrowserHandle, BrowserError> {
        let core = place.core.clone();
        let (listener, egress) = self.inner.context_egress(spec.proxy.clone())?;
        let mut params = CreateBrowserContextParams::builder().dispose_on_detach(false).build();
        if let Some(addr) = listener {
            params.proxy_server = Some(format!("http://{addr}"));
            params.proxy_bypass_list = Some("<-loopback>".into());
        }
        let created = core.execute("create a browser context", params).await;
        let id = created.map_err(launch_failed("cannot create a browser context"))?.browser_context_id.inner().clone();
        // From here the lease disposes of the context whatever happens.
        let lease = place.lease(id.clone());
        let target = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(BrowserContextId::from(id))
            .build()
            .map_err(BrowserError::Launch)?;
        let page = core.handle().cdp("first page", || core.connection().new_page(target.clone())).await;
        let page = match page.map_err(launch_failed("no page in the browser context")) {
            Ok(page) => page,
            Err(e) => {
                lease.close().await;
                return Err(e);
            }
        };
        let handle = BrowserHandle::in_context(page, lease, egress, started.elapsed().as_millis() as u64);
        if let Err(e) = handle.present().await {
            handle.close(false).await;
            return Err(e);
        }
        Ok(handle)
    }
}

#[async_trait]
impl BrowserProvider for ContextProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn shares_browsers(&self) -> bool {
        true
    }

    async fn launch(&self, spec: LaunchSpec) -> Result<BrowserHandle, BrowserError> {
        if spec.profile_id.is_some() || spec.display.is_some() {
            return self.inner.launch(spec).await;
        }
        let started = Instant::now();
        let place = self.place().await?;
        let handle = self.open(place, &spec, started).await?;
        metrics::histogram!("bw_context_create_seconds").record(started.elapsed().as_secs_f64());
        Ok(handle)
    }

    async fn reattach(&self, saved: &SavedBrowser, profile_id: Option<&str>) -> Result<BrowserHandle, BrowserError> {
        let Some(context) = &saved.context else { return self.inner.reattach(saved, profile_id).await };
        let process = saved.process.ok_or(BrowserError::Disconnected)?;
        let core = match self.cores.find(process) {
            Some(core) => core,
            None => {
                // The first of its sessions adopts the shared browser (through that session's page).
                let own = SavedBrowser { egress: None, context: None, ..saved.clone() };
                let core = Arc::new(Self::core(self.inner.reattach(&own, None).await?).await?);
                self.cores.add(core.clone());
                core
            }
        };
        let lease = Place::new(core.clone(), &self.cores).lease(context.clone());
        let page = match super::existing_page(core.connection(), &saved.page_target, core.op_timeout()).await {
            Ok(page) => page,
            Err(e) => {
                lease.close().await;
                return Err(e);
            }
        };
        let egress = match self.inner.context_egress_again(saved) {
            Ok(egress) => egress,
            Err(e) => {
                lease.close().await;
                return Err(e);
            }
        };
        let handle = BrowserHandle::in_context(page, lease, egress, 0);
        handle.present().await?;
        Ok(handle)
    }

    async fn restored(&self, saved: &[SavedBrowser]) {
        // Adopted shared browsers none of whose sessions came back close; shared browsers no
        // session adopted (they all failed) are killed.
        self.cores.list.lock().unwrap().retain(|c| c.contexts.load(Ordering::SeqCst) > 0);
        for browser in saved.iter().filter(|b| !b.owns_process()) {
            let Some(id) = browser.process.filter(|id| id.alive() && self.cores.find(*id).is_none()) else { continue };
            tracing::info!(pgid = id.pgid, "a shared browser none of whose sessions came back; stopping it");
            super::process::kill_group(id.pgid);
            self.inner.forget(id.pgid, browser.temp_dir.as_deref()).await;
        }
    }

    async fn stop(&self, handover: bool) {
        // The sessions are closed or handed over by now; a browser still held by a session
        // stuck past the grace period is killed here rather than outliving the worker.
        let cores = std::mem::take(&mut *self.cores.list.lock().unwrap());
        for core in &cores {
            if handover {
                core.handed_over.store(true, Ordering::SeqCst);
            } else if let Some(process) = core.process() {
                super::process::kill_group(process.pgid());
            }
        }
    }
}
