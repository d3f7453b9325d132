//! The local Chromium provider: launches Debian's Chromium in its own process group with a
//! fresh (ephemeral) or persistent (per `profile_id`) user-data dir and connects over CDP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::sandbox::Confinement;
use super::{
    BrowserError, BrowserHandle, BrowserProvider, Connection, Egress, LaunchSpec, Owner, PageOf, Phases, SavedBrowser,
    process,
};
use crate::egress::EgressPolicy;
use crate::egress::route::{Route, SessionProxy};

/// Flags every browser gets: headless, no background traffic on a closed network, no first-run UI.
/// Shared with `make bench` so that the baseline launches the same way.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-breakpad",
    "--disable-default-apps",
    "--disable-client-side-phishing-detection",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    // The browser UI's WebUI omnibox popups, preloaded in a renderer of their own per profile
    // (and per browser context): about 50 MiB each that no automated page ever shows. The spare
    // renderer Chromium keeps started for the next cross-site navigation: about 11 MiB per
    // browser, and in a shared browser it serves only the context that navigated last.
    "--disable-features=Translate,MediaRouter,OptimizationHints,WebUIOmniboxPopup,WebUIOmniboxFullPopup,\
     WebUIOmniboxAimPopup,PreloadTopChromeWebUI,SpareRendererForSitePerProcess",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--force-color-profile=srgb",
    "--window-size=1280,900",
];

/// Chromium's managed policy directory (Debian's build).
pub const POLICY_DIR: &str = "/etc/chromium/policies/managed";

/// Whether Chromium's managed policy keeps WebRTC's UDP from going around the proxy (no host
/// candidates: a page never learns this machine's addresses). This Chromium no longer honours
/// `--force-webrtc-ip-handling-policy`; the `WebRtcIPHandling` policy it does, and no page,
/// profile or CDP client can change it. `scripts/install-deps.sh` and the deploy kit install
/// `deploy/chromium/browser-worker-policy.json`.
pub fn webrtc_policy_installed() -> bool {
    let enforces = |path: PathBuf| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .is_ok_and(|policy| policy["WebRtcIPHandling"] == "disable_non_proxied_udp")
    };
    std::fs::read_dir(POLICY_DIR).into_iter().flatten().flatten().any(|entry| enforces(entry.path()))
}

/// Turns Chromium's sandbox off: for a browser that runs as root, or where neither user
/// namespaces nor the setuid helper work (`sandbox::Confinement`).
pub const NO_SANDBOX: &str = "--no-sandbox";

/// Launches local Chromium processes.
pub struct ChromiumProvider {
    executable: PathBuf,
    /// Pid records of running browsers (`<data_dir>/run`).
    run_dir: PathBuf,
    /// Parent of ephemeral user-data dirs (`<data_dir>/tmp`), wiped at start-up.
    tmp_dir: PathBuf,
    /// Parent of persistent profiles (`<data_dir>/profiles`).
    profiles_dir: PathBuf,
    /// Who the browsers run as, sandboxed or not, with what limits.
    confinement: Confinement,
    launch_timeout: Duration,
    op_timeout: Duration,
    /// The worker's egress proxy: every request of the browser goes through it.
    egress: Option<EgressPoint>,
}

/// Where the browsers' traffic leaves: the worker's shared egress listener (straight out, or
/// through `BW_DEFAULT_PROXY`), and what a browser's own listener needs (a session with its
/// own proxy gets one, chained to that proxy).
pub struct EgressPoint {
    pub policy: EgressPolicy,
    pub shared: SocketAddr,
    pub shared_route: Arc<Route>,
    /// Stops every listener (the worker is shutting down).
    pub stop: CancellationToken,
}

impl EgressPoint {
    /// The listener for a browser: its own for a session proxy (on `port`, 0 for a new one),
    /// else the shared one.
    fn listener(&self, proxy: Option<Arc<SessionProxy>>, port: u16) -> Result<(SocketAddr, Egress), BrowserError> {
        let Some(proxy) = proxy else {
            return Ok((self.shared, Egress { route: self.shared_route.clone(), own: None }));
        };
        let route = Route::new(Some(proxy));
        let stop = self.stop.child_token();
        let addr = crate::egress::proxy::start(self.policy.clone(), route.clone(), port, stop.clone())
            .map_err(|e| BrowserError::Launch(format!("cannot start the session's egress listener: {e}")))?;
        Ok((addr, Egress { route, own: Some((addr.port(), stop.drop_guard())) }))
    }
}

impl ChromiumProvider {
    /// Prepares the data dir layout (`run`, `tmp`, `profiles`; the browser user may pass
    /// through the last two, not list them); browsers left by a previous run are the caller's
    /// to re-attach or reap (`process::reap_orphans`).
    pub fn new(
        executable: PathBuf,
        data_dir: &std::path::Path,
        confinement: Confinement,
        launch_timeout: Duration,
        op_timeout: Duration,
    ) -> std::io::Result<Self> {
        let run_dir = data_dir.join("run");
        let tmp_dir = data_dir.join("tmp");
        let profiles_dir = data_dir.join("profiles");
        std::fs::create_dir_all(&run_dir)?;
        for dir in [&tmp_dir, &profiles_dir] {
            confinement.pass_through(dir).map_err(std::io::Error::other)?;
        }
        Ok(Self { executable, run_dir, tmp_dir, profiles_dir, confinement, launch_timeout, op_timeout, egress: None })
    }

    /// Sends every request of the browsers through the egress proxy (`EgressPoint`), loopback
    /// included (`<-loopback>` removes Chromium's implicit bypass; WebRTC's UDP is kept off by
    /// the managed policy, `webrtc_policy_installed`).
    pub fn with_egress(mut self, egress: EgressPoint) -> Self {
        self.egress = Some(egress);
        self
    }

    /// Points `command` at the egress listener `addr` and gives it the identity of the proxy
    /// behind it: the time zone for every process (`TZ`, so workers and frames see it too) and
    /// the languages for `Accept-Language` and `navigator.languages`.
    fn route_through(command: &mut tokio::process::Command, addr: SocketAddr, egress: &Egress) {
        command.args([
            format!("--proxy-server=http://{addr}"),
            "--proxy-bypass-list=<-loopback>".into(),
            "--disable-quic".into(),
        ]);
        let identity = egress.route.proxy().and_then(|p| p.identity.as_ref());
        if let Some(zone) = identity.and_then(|i| i.timezone.as_deref()) {
            command.env("TZ", zone);
        }
        if let Some(identity) = identity
            && let (Some(locale), Some(languages)) = (&identity.locale, identity.languages())
        {
            command.arg(format!("--lang={locale}")).arg(format!("--accept-lang={languages}"));
        }
    }
}

impl ChromiumProvider {
    /// A surviving browser's egress after a restart: its own listener again on its port with
    /// its proxy, or the shared one. A listener that cannot be started again leaves the browser
    /// without a network (its pages fail), which is logged.
    fn egress_again(&self, point: &EgressPoint, saved: &SavedBrowser) -> Result<Egress, BrowserError> {
        let Some(own) = &saved.egress else { return Ok(point.listener(None, 0)?.1) };
        let proxy = SessionProxy::new(own.proxy.clone(), &point.policy)
            .map_err(|e| BrowserError::Launch(format!("the session's saved proxy is no longer valid: {e}")))?;
        match point.listener(Some(Arc::new(proxy)), own.port) {
            Ok((_, egress)) => Ok(egress),
            Err(e) => {
                tracing::error!(port = own.port, error = %e, "a session's egress listener cannot take its port back");
                Err(e)
            }
        }
    }

    /// The egress of a new browser context (`shared`): its own listener for a session proxy
    /// (the address the context's `proxyServer` names), else the shared browser's.
    pub(crate) fn context_egress(
        &self,
        proxy: Option<Arc<SessionProxy>>,
    ) -> Result<(Option<SocketAddr>, Option<Egress>), BrowserError> {
        let Some(point) = &self.egress else { return Ok((None, None)) };
        let own = proxy.is_some();
        let (addr, egress) = point.listener(proxy, 0)?;
        Ok((own.then_some(addr), Some(egress)))
    }

    /// A re-attached context's egress: its own listener again on its port, or the shared one.
    pub(crate) fn context_egress_again(&self, saved: &SavedBrowser) -> Result<Option<Egress>, BrowserError> {
        self.egress.as_ref().map(|point| self.egress_again(point, saved)).transpose()
    }

    /// Removes what a killed browser process of an earlier run left: its pid record and temp dir.
    pub(crate) async fn forget(&self, pgid: i32, temp_dir: Option<&std::path::Path>) {
        let _ = tokio::fs::remove_file(self.run_dir.join(format!("{pgid}.json"))).await;
        if let Some(dir) = temp_dir {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
    }
}

#[async_trait]
impl BrowserProvider for ChromiumProvider {
    fn name(&self) -> &'static str {
        "chromium"
    }

    async fn launch(&self, spec: LaunchSpec) -> Result<BrowserHandle, BrowserError> {
        let started = Instant::now();
        let mut phases = Phases::start();
        let (name, ephemeral) = match &spec.profile_id {
            Some(id) => (id.clone(), false),
            None => (uuid::Uuid::new_v4().to_string(), true),
        };
        let user_data_dir = if ephemeral { self.tmp_dir.join(&name) } else { self.profiles_dir.join(&name) };
        // A profile may hold files of an earlier owner (a worker without a browser user).
        let foreign = self.confinement.foreign(&user_data_dir);
        let prepared = self
            .confinement
            .give(&user_data_dir)
            .and_then(|()| if foreign { self.confinement.give_tree(&user_data_dir) } else { Ok(()) });
        prepared.map_err(|e| BrowserError::Launch(format!("cannot prepare the profile dir: {e}")))?;
        let cage = self
            .confinement
            .limits()
            .cage(&name)
            .map_err(|e| BrowserError::Launch(format!("cannot set the browser's limits: {e}")))?;
        let mut command = process::command(&self.executable, &user_data_dir);
        self.confinement.confine(&mut command, Some(cage.entry()));
        super::child::yield_to_worker(&mut command);
        if !self.confinement.sandbox() {
            command.arg(NO_SANDBOX);
        }
        match &spec.display {
            // Headful on the session's display, the window filling the screen.
            Some(display) => {
                let (width, height) = super::display::SCREEN;
                command
                    .env("DISPLAY", display)
                    .args(CHROMIUM_FLAGS.iter().filter(|f| **f != "--headless=new" && !f.starts_with("--window-size=")))
                    .args(["--ozone-platform=x11", "--window-position=0,0"])
                    .arg(format!("--window-size={width},{height}"));
            }
            None => {
                command.args(CHROMIUM_FLAGS);
            }
        }
        let egress = match &self.egress {
            Some(point) => {
                let (addr, egress) = point.listener(spec.proxy.clone(), 0)?;
                Self::route_through(&mut command, addr, &egress);
                Some(egress)
            }
            None => None,
        };
        command
            .arg(format!("--user-data-dir={}", user_data_dir.display()))
            .arg("--remote-debugging-port=0")
            // No start-up tab: the session's page is created over CDP and is the only one.
            .arg("--no-startup-window");
        phases.lap("prepare");
        let dead = CancellationToken::new();
        let (process, ws_url) = process::spawn(
            command,
            &self.run_dir,
            user_data_dir,
            ephemeral,
            self.launch_timeout,
            dead.clone(),
            Some(cage),
        )
        .await?;
        phases.lap("spawn");
        let connection =
            match Connection::open(&ws_url, &PageOf::New, self.launch_timeout, self.op_timeout, &mut phases).await {
                Ok(connection) => connection,
                Err(e) => {
                    process.terminate().await;
                    return Err(e);
                }
            };
        let start_ms = started.elapsed().as_millis() as u64;
        let handle = BrowserHandle::new(connection, ws_url, dead, Owner::Process(process), self.op_timeout, start_ms);
        let handle = match egress {
            Some(egress) => handle.with_egress(egress).await?,
            None => handle,
        };
        phases.lap("settings");
        phases.publish();
        Ok(handle)
    }

    async fn reattach(&self, saved: &SavedBrowser, _profile_id: Option<&str>) -> Result<BrowserHandle, BrowserError> {
        let dead = CancellationToken::new();
        let process = saved
            .process
            .and_then(|id| {
                let cage = saved.cage.as_deref().map(|name| self.confinement.limits().existing(name));
                process::adopt(id, &self.run_dir, saved.temp_dir.clone(), dead.clone(), cage)
            })
            .ok_or(BrowserError::Disconnected)?;
        let page = PageOf::Target(saved.page_target.clone());
        match Connection::open(&saved.ws_url, &page, self.launch_timeout, self.op_timeout, &mut Phases::start()).await {
            Ok(connection) => {
                let owner = Owner::Process(process);
                let handle = BrowserHandle::new(connection, saved.ws_url.clone(), dead, owner, self.op_timeout, 0);
                match self.egress.as_ref().map(|point| self.egress_again(point, saved)).transpose()? {
                    Some(egress) => handle.with_egress(egress).await,
                    None => Ok(handle),
                }
            }
            Err(e) => {
                process.terminate().await;
                Err(e)
            }
        }
    }
}
