//! The local Chromium provider: launches Debian's Chromium in its own process group with a
//! fresh (ephemeral) or persistent (per `profile_id`) user-data dir and connects over CDP.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::sandbox::Confinement;
use super::{
    BrowserError, BrowserHandle, BrowserProvider, Connection, LaunchSpec, Owner, PageOf, SavedBrowser, process,
};

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
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--force-color-profile=srgb",
    "--window-size=1280,900",
];

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
    egress_proxy: Option<std::net::SocketAddr>,
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
        Ok(Self {
            executable,
            run_dir,
            tmp_dir,
            profiles_dir,
            confinement,
            launch_timeout,
            op_timeout,
            egress_proxy: None,
        })
    }

    /// Sends every request of the browsers through the egress proxy at `addr`, loopback
    /// included (`<-loopback>` removes Chromium's implicit bypass), and keeps WebRTC from
    /// sending UDP around it.
    pub fn with_egress_proxy(mut self, addr: std::net::SocketAddr) -> Self {
        self.egress_proxy = Some(addr);
        self
    }
}

#[async_trait]
impl BrowserProvider for ChromiumProvider {
    fn name(&self) -> &'static str {
        "chromium"
    }

    async fn launch(&self, spec: LaunchSpec) -> Result<BrowserHandle, BrowserError> {
        let started = Instant::now();
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
        if let Some(proxy) = self.egress_proxy {
            command.args([
                format!("--proxy-server=http://{proxy}"),
                "--proxy-bypass-list=<-loopback>".into(),
                "--force-webrtc-ip-handling-policy=disable_non_proxied_udp".into(),
                "--disable-quic".into(),
            ]);
        }
        command
            .arg(format!("--user-data-dir={}", user_data_dir.display()))
            .arg("--remote-debugging-port=0")
            // No start-up tab: the session's page is created over CDP and is the only one.
            .arg("--no-startup-window");
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
        let connection = match Connection::open(&ws_url, &PageOf::New, self.launch_timeout, self.op_timeout).await {
            Ok(connection) => connection,
            Err(e) => {
                process.terminate().await;
                return Err(e);
            }
        };
        let start_ms = started.elapsed().as_millis() as u64;
        Ok(BrowserHandle::new(connection, ws_url, dead, Owner::Process(process), self.op_timeout, start_ms))
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
        match Connection::open(&saved.ws_url, &page, self.launch_timeout, self.op_timeout).await {
            Ok(connection) => {
                let owner = Owner::Process(process);
                Ok(BrowserHandle::new(connection, saved.ws_url.clone(), dead, owner, self.op_timeout, 0))
            }
            Err(e) => {
                process.terminate().await;
                Err(e)
            }
        }
    }
}
