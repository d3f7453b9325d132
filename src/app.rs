//! `App`: the worker's shared state (configuration, keys, the session registry, the warm
//! pool) and its background tasks, plus `Server`, which binds, serves and shuts down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::artifacts::Artifacts;
use crate::breaker::Breaker;
use crate::browser;
use crate::browser::BrowserProvider;
use crate::browser::adspower::{AdsPowerClient, AdsPowerProvider};
use crate::browser::chromium::{ChromiumProvider, EgressPoint};
use crate::browser::display::Displays;
use crate::browser::pool::WarmPool;
use crate::browser::process::{self, DataDirLock};
use crate::browser::sandbox::Confinement;
use crate::browser::shared::ContextProvider;
use crate::config::{Config, DisplayMode, EphemeralMode, ProviderKind};
use crate::egress;
use crate::egress::route::{ProxySpec, SessionProxy};
use crate::fleet::{Fleet, WorkerInfo};
use crate::forms::cache::MappingCache;
use crate::forms::llm::LlmEngine;
use crate::notify::Notifier;
use crate::session::recording::Plan as RecordingPlan;
use crate::session::registry::Limits;
use crate::session::{OnOpen, SessionError, SessionRecord, SessionRegistry, SessionStore, reaper};
use crate::token::{LiveMode, TokenIssuer};

/// Artifacts older than this are deleted at start-up (they show the applicant's data).
const ARTIFACT_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Everything handlers share.
pub struct App {
    pub config: Config,
    /// Accepted API keys (several, for rotation).
    pub api_keys: Vec<String>,
    pub registry: Arc<SessionRegistry>,
    /// The AdsPower Local API client, with the `adspower` provider.
    pub adspower: Option<Arc<AdsPowerClient>>,
    /// Per-profile circuit breakers (`<data_dir>/profiles.redb`).
    pub breaker: Arc<Breaker>,
    pub pool: Option<Arc<WarmPool>>,
    /// Screenshots of sessions' steps.
    pub artifacts: Arc<Artifacts>,
    /// Webhook delivery.
    pub notifier: Arc<Notifier>,
    /// V1 tasks running now (`/health.active_tasks`).
    pub active_tasks: std::sync::atomic::AtomicUsize,
    /// The form engines (the `llm` one when `BW_LLM_BASE_URL` is set).
    pub engines: crate::flow::Engines,
    /// Fleet mode (`BW_REDIS_URL`): the Redis the workers share.
    pub fleet: Option<Arc<Fleet>>,
    /// This worker's name in the fleet (`BW_WORKER_ID`, or generated once).
    pub worker_id: String,
    pub started: Instant,
    /// Mints and checks the session tokens of the VNC viewer and the CDP passthrough.
    pub tokens: TokenIssuer,
    /// Base URL of links handed to clients; set once the server is bound.
    public_url: OnceLock<String>,
    /// Set by `drain` (the API, or a handover): new sessions and tasks are refused, existing
    /// sessions go on (SPEC §3.8).
    draining: AtomicBool,
    /// Who local browsers run as, sandboxed or not, with what limits (`/health`).
    pub confinement: Confinement,
    /// Chromium's managed policy keeps WebRTC's UDP off the host's addresses (`/health`).
    pub webrtc_policy: bool,
    /// Cancelled at shutdown: stops the reaper, the pool filler and the HTTP server.
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Keeps other workers off this data dir while this one runs.
    _data_dir_lock: DataDirLock,
    /// The sessions of an earlier run to re-attach before serving (taken by `Server::start`),
    /// and whether their browsers' egress proxy port could be taken back.
    restore: std::sync::Mutex<Option<(Vec<SessionRecord>, bool)>>,
}

impl App {
    /// Builds the provider, the pool and the registry, and starts the background tasks.
    /// Must run inside a Tokio runtime.
    pub fn build(config: Config, api_keys: Vec<String>) -> anyhow::Result<Arc<Self>> {
        // Everything the worker and its browsers create is theirs alone (0600 files, 0700 dirs).
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let data_dir_lock = DataDirLock::acquire(&config.data_dir).context("locking the data dir")?;
        // Under the lock (it may be generated), and before anything starts that a failure would leave running.
        let token_secret = config.token_secret_bytes()?;
        process::become_subreaper();
        crate::telemetry::metrics();
        let cancel = CancellationToken::new();
        let (store, records) =
            SessionStore::open(&config.data_dir.join("sessions.redb")).context("opening the session store")?;
        let store = Arc::new(store);
        let confinement = confinement(&config)?;
        prepare_data_dir(&config.data_dir, &records, &confinement).context("preparing the data dir")?;
        let adspower = (config.provider == ProviderKind::AdsPower).then(|| {
            Arc::new(AdsPowerClient::new(
                config.adspower_url.clone(),
                config.adspower_api_key.clone(),
                config.adspower_rate,
            ))
        });
        // False if the egress proxy could not take back the port the surviving browsers use.
        let mut network = true;
        let provider: Arc<dyn BrowserProvider> = match config.provider {
            ProviderKind::AdsPower => Arc::new(
                AdsPowerProvider::new(
                    adspower.clone().expect("built above"),
                    config.launch_timeout(),
                    config.operation_timeout(),
                )
                .with_display(config.display_mode != DisplayMode::None),
            ),
            ProviderKind::Chromium => {
                let chromium = Arc::new(
                    ChromiumProvider::new(
                        config.chromium().to_path_buf(),
                        &config.data_dir,
                        confinement.clone(),
                        config.launch_timeout(),
                        config.operation_timeout(),
                    )
                    .context("preparing the data dir")?
                    .with_egress({
                        let shared_route = egress::route::Route::new(config.default_proxy());
                        let (addr, same) = start_egress_proxy(&config, &shared_route, &store, cancel.clone())?;
                        network = same;
                        EgressPoint { policy: config.egress(), shared: addr, shared_route, stop: cancel.clone() }
                    }),
                );
                match config.ephemeral_mode {
                    EphemeralMode::Process => chromium,
                    EphemeralMode::Context => Arc::new(ContextProvider::new(chromium, config.contexts_per_browser)),
                }
            }
        };
        let webrtc_policy = config.provider != ProviderKind::Chromium || browser::chromium::webrtc_policy_installed();
        if !webrtc_policy {
            tracing::warn!(
                dir = browser::chromium::POLICY_DIR,
                "Chromium's WebRTC policy is not installed: pages may learn this machine's addresses \
                 (install deploy/chromium/browser-worker-policy.json there, or run scripts/install-deps.sh)"
            );
        }
        let worker_id = config.fleet_worker_id()?;
        let fleet = match &config.redis_url {
            Some(url) => {
                let ttl = std::time::Duration::from_secs(config.fleet_ttl_secs);
                let fleet = Fleet::new(url, worker_id.clone(), config.fleet_prefix.clone(), ttl)
                    .context("joining the fleet")?;
                Some(Arc::new(fleet))
            }
            None => None,
        };
        let mut breaker = Breaker::open(&config.data_dir.join("profiles.redb")).context("opening the profile store")?;
        if let Some(fleet) = &fleet {
            breaker = breaker.shared_by(fleet.clone());
        }
        let breaker = Arc::new(breaker);
        let tracker = TaskTracker::new();
        // Pooled browsers are ephemeral; AdsPower sessions always have a profile.
        let pool = (config.warm_pool > 0 && config.provider == ProviderKind::Chromium)
            .then(|| WarmPool::start(provider.clone(), config.warm_pool, cancel.clone(), &tracker));
        // Not stopped by `cancel`: the sessions' final events go out after they close.
        let notifier = Notifier::start(config.egress(), &tracker);
        let artifacts = Arc::new(
            Artifacts::new(config.data_dir.join("artifacts"), ARTIFACT_RETENTION, config.artifacts_url.as_ref())
                .context("preparing the artifact store")?,
        );
        let mut registry = SessionRegistry::new(
            provider,
            breaker.clone(),
            pool.clone(),
            Limits {
                max_sessions: config.max_sessions,
                idle_timeout: config.idle_timeout(),
                max_lifetime: config.max_lifetime(),
                files_root: config.data_dir.join("tmp"),
            },
            tracker.clone(),
        )
        .with_notifier(notifier.clone())
        .with_store(store)
        .with_archive(artifacts.clone());
        if let Some(fleet) = &fleet {
            registry = registry.with_fleet(fleet.clone());
        }
        match (config.display_mode, &config.vnc_display, config.vnc_port) {
            (DisplayMode::PerSession, _, _) => {
                let displays = Displays::per_session(&config.data_dir, confinement.clone())
                    .context("preparing the displays' directory")?;
                registry = registry.with_displays(Arc::new(displays));
            }
            (DisplayMode::Shared, Some(display), Some(port)) => {
                let vnc = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
                registry = registry.with_displays(Arc::new(Displays::shared(display.clone(), vnc)));
            }
            _ => {}
        }
        let registry = Arc::new(registry);
        let tokens = TokenIssuer::new(&token_secret, std::time::Duration::from_secs(config.token_ttl()));
        tracker.spawn(reaper::run(registry.clone(), cancel.clone()));
        if let Some(client) = adspower.clone() {
            tracker.spawn(learn_profiles(client, breaker.clone(), cancel.clone()));
        }
        let llm = config.llm_settings().map(|settings| {
            let cache = MappingCache::open(&config.data_dir.join("llm-cache.redb"))
                .map_err(|e| tracing::warn!(error = %e, "LLM mapping cache disabled"))
                .ok();
            Arc::new(LlmEngine::new(&settings, cache))
        });
        Ok(Arc::new(Self {
            engines: crate::flow::Engines::new(llm),
            fleet,
            worker_id,
            artifacts,
            notifier,
            active_tasks: std::sync::atomic::AtomicUsize::new(0),
            config,
            api_keys,
            registry,
            breaker,
            adspower,
            pool,
            started: Instant::now(),
            tokens,
            public_url: OnceLock::new(),
            draining: AtomicBool::new(false),
            confinement,
            webrtc_policy,
            cancel,
            tracker,
            _data_dir_lock: data_dir_lock,
            restore: std::sync::Mutex::new(Some((records, network))),
        }))
    }

    /// Base URL for links handed to clients (`BW_PUBLIC_URL`, or the bound address).
    pub fn public_url(&self) -> &str {
        self.public_url.get_or_init(|| self.config.public_url_for(self.config.bind))
    }

    /// The proxy a new session's traffic goes through: its own, else its profile's default
    /// (`PUT /api/v1/profiles/{id}/proxy`); `None` leaves it to the worker's default.
    /// AdsPower profiles carry their own proxy, set in AdsPower.
    pub async fn session_proxy(
        &self,
        spec: Option<ProxySpec>,
        profile_id: Option<&str>,
    ) -> Result<Option<Arc<SessionProxy>>, SessionError> {
        let spec = match (spec, profile_id) {
            (Some(spec), _) => Some(spec),
            (None, Some(profile)) if self.config.provider == ProviderKind::Chromium => {
                self.breaker.get(profile).await.ok().and_then(|record| record.proxy)
            }
            (None, _) => None,
        };
        let Some(spec) = spec else { return Ok(None) };
        if self.config.provider == ProviderKind::AdsPower {
            return Err(SessionError::Invalid("AdsPower profiles carry their own proxy: set it in AdsPower".into()));
        }
        let proxy =
            SessionProxy::new(spec, &self.config.egress()).map_err(|e| SessionError::Invalid(format!("proxy: {e}")))?;
        Ok(Some(Arc::new(proxy)))
    }

    /// How a new session is recorded: `asked` is its `recording` (`true` records and keeps it,
    /// `false` never records), else `BW_RECORDING` decides. Recording needs ffmpeg.
    pub fn recording_plan(&self, asked: Option<bool>) -> Result<Option<RecordingPlan>, SessionError> {
        use crate::config::RecordingMode;
        use crate::session::recording::Keep;
        let keep = match (asked, self.config.recording) {
            (Some(false), _) | (None, RecordingMode::Off) => return Ok(None),
            (Some(true), _) | (None, RecordingMode::Always) => Keep::Always,
            (None, RecordingMode::OnFailure) => Keep::OnFailure,
        };
        let ffmpeg = crate::recording::ffmpeg_path()
            .ok_or_else(|| SessionError::Invalid("recording needs ffmpeg, which this machine does not have".into()))?;
        let limits = crate::recording::Limits {
            fps: 5,
            max_secs: self.config.recording_max_secs,
            max_bytes: self.config.recording_max_mb * 1024 * 1024,
        };
        Ok(Some(RecordingPlan { ffmpeg, limits, keep }))
    }

    /// Mints a new session's takeover links under the public URL (its VNC token when it has a
    /// display, and a live `control` token) before its first events go out, so that a first
    /// page that already needs a person (a CAPTCHA) is announced with them.
    pub fn mint_takeover(self: &Arc<Self>) -> OnOpen {
        let app = self.clone();
        OnOpen::new(move |session| {
            if session.vnc_addr().is_some() {
                session.mint_vnc(&app.tokens, app.public_url());
            }
            session.mint_live(&app.tokens, LiveMode::Control, app.public_url());
        })
    }

    /// Stops taking new sessions and tasks; existing sessions, their operations and sockets go
    /// on. Idempotent; returns whether the worker was draining already.
    pub fn drain(&self) -> bool {
        let was = self.draining.swap(true, Ordering::SeqCst);
        if !was {
            tracing::info!(active_sessions = self.registry.active(), "draining: new sessions and tasks are refused");
        }
        was
    }

    /// Takes new sessions and tasks again. Idempotent; returns whether the worker was draining.
    pub fn undrain(&self) -> bool {
        let was = self.draining.swap(false, Ordering::SeqCst);
        if was {
            tracing::info!("undrained: new sessions and tasks are accepted again");
        }
        was
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Sessions this worker could still open: `max_sessions` less the open ones.
    pub fn free_slots(&self) -> usize {
        self.registry.max_sessions().saturating_sub(self.registry.active())
    }

    /// What this worker announces to the fleet.
    pub fn worker_info(&self) -> WorkerInfo {
        WorkerInfo {
            worker_id: self.worker_id.clone(),
            public_url: self.public_url().to_string(),
            max_sessions: self.registry.max_sessions(),
            active_sessions: self.registry.active(),
            free_slots: self.free_slots(),
            draining: self.is_draining(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            last_seen: chrono::Utc::now(),
        }
    }

    /// Announces this worker and its sessions to the fleet every few seconds, until shutdown.
    fn start_heartbeat(self: &Arc<Self>) {
        let Some(fleet) = self.fleet.clone() else { return };
        let app = Arc::downgrade(self);
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            loop {
                let Some(app) = app.upgrade() else { return };
                let sessions: Vec<_> = app.registry.list().iter().map(|s| s.id).collect();
                let _ = fleet.heartbeat(&app.worker_info(), &sessions).await;
                drop(app);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(fleet.renew_every()) => {}
                }
            }
        });
    }

    /// What the form steps (`flow`) run with.
    pub fn flow(&self) -> crate::flow::Context<'_> {
        crate::flow::Context {
            registry: &self.registry,
            artifacts: &self.artifacts,
            egress: self.config.egress(),
            confinement: &self.confinement,
        }
    }

    /// What the V1 task macro needs of the worker.
    pub fn tasks(&self) -> crate::tasks::Context<'_> {
        crate::tasks::Context {
            flow: self.flow(),
            breaker: &self.breaker,
            engine: self.engines.auto.as_ref(),
            public_url: self.public_url(),
            active: &self.active_tasks,
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Closes every session and pooled browser, then delivers the sessions' final webhooks,
    /// all within the grace period; browsers still open after it are killed, webhooks still
    /// pending are dropped.
    pub async fn shutdown(&self) {
        let grace = self.config.shutdown_grace();
        let deadline = tokio::time::Instant::now() + grace;
        self.cancel.cancel();
        let closed = async {
            self.registry.shutdown().await;
            if let Some(pool) = &self.pool {
                pool.drain().await;
            }
            self.registry.provider().stop(false).await;
        };
        if tokio::time::timeout_at(deadline, closed).await.is_err() {
            tracing::warn!(?grace, "shutdown did not complete in the grace period; killing browsers");
            self.registry.kill_all();
            self.registry.provider().stop(false).await;
        }
        if let Some(store) = self.registry.store() {
            store.flush().await;
        }
        // Sessions are closed: their final events go out until the deadline, then the
        // notifier's tasks stop.
        self.notifier.drain(deadline).await;
        self.tracker.close();
        // Past the deadline every task has been told to stop; give them a moment to end.
        let settle = deadline.max(tokio::time::Instant::now() + std::time::Duration::from_secs(1));
        if tokio::time::timeout_at(settle, self.tracker.wait()).await.is_err() {
            tracing::warn!(?grace, "background tasks still running after the grace period; killing browsers");
            self.registry.kill_all();
        }
    }
}

/// Lays out the data dir (`run`, `tmp`) and clears what an earlier run left behind, except what
/// the recorded sessions still use: recorded processes of no session are reaped, temp dirs of
/// no session removed.
fn prepare_data_dir(
    data_dir: &std::path::Path,
    records: &[SessionRecord],
    confinement: &Confinement,
) -> anyhow::Result<()> {
    let (run_dir, tmp_dir) = (data_dir.join("run"), data_dir.join("tmp"));
    for dir in [&run_dir, &tmp_dir] {
        std::fs::create_dir_all(dir)?;
    }
    make_private(data_dir, confinement)?;
    let (groups, dirs) = crate::session::survivors(records, &tmp_dir);
    let killed = process::reap_orphans(&run_dir, &groups);
    if !killed.is_empty() {
        tracing::warn!(count = killed.len(), "killed processes orphaned by a previous run");
    }
    confinement.limits().remove_empty();
    for leftover in std::fs::read_dir(&tmp_dir)?.flatten().filter(|e| !dirs.contains(&e.path())) {
        let _ = std::fs::remove_dir_all(leftover.path());
    }
    Ok(())
}

/// Who local browsers run as and how they are limited; AdsPower's browsers are its own, so
/// files handed to them stay the worker's.
fn confinement(config: &Config) -> anyhow::Result<Confinement> {
    if config.provider != ProviderKind::Chromium {
        return Ok(Confinement::unconfined());
    }
    let limits = browser::limits::Limits::detect(
        config.browser_memory_mb,
        config.browser_pids_max,
        config.browser_cgroup.as_deref(),
        &config.fleet_worker_id()?,
    );
    let confinement = Confinement::detect(config.browser_user.as_deref(), limits)?;
    confinement.check_reachable(&config.data_dir)?;
    tracing::info!(
        browser_user = confinement.user().map(|u| u.name.as_str()),
        sandbox = confinement.sandbox(),
        limits = confinement.limits().kind(),
        "browser confinement"
    );
    Ok(confinement)
}

/// The data dir: the worker's own files are private; with a browser user, the data dir lets
/// it pass (0711) to the directories handed to it, and nothing else there is open to others.
fn make_private(data_dir: &std::path::Path, confinement: &Confinement) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let passable = ["tmp", "profiles", "displays"];
    let mode = if confinement.user().is_some() { 0o711 } else { 0o700 };
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("making {} private", data_dir.display()))?;
    for entry in std::fs::read_dir(data_dir)?.flatten() {
        if passable.iter().any(|p| entry.file_name() == *p) {
            continue;
        }
        let meta = entry.metadata()?;
        let private = meta.permissions().mode() & !0o077;
        if private != meta.permissions().mode() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(private))?;
        }
    }
    Ok(())
}

/// Starts the egress proxy on the port of the previous run (its surviving browsers were started
/// with it), or on a new one, which is recorded. Says whether the old port was taken back.
fn start_egress_proxy(
    config: &Config,
    route: &Arc<egress::route::Route>,
    store: &SessionStore,
    cancel: CancellationToken,
) -> anyhow::Result<(SocketAddr, bool)> {
    const KEY: &str = "egress_proxy_port";
    let old = store.worker_value(KEY)?.and_then(|v| <[u8; 2]>::try_from(v).ok()).map(u16::from_be_bytes);
    let started = match old {
        Some(port) => egress::proxy::start(config.egress(), route.clone(), port, cancel.clone())
            .inspect_err(|e| tracing::error!(port, error = %e, "the egress proxy cannot take its old port back"))
            .ok(),
        None => None,
    };
    let same = started.is_some() || old.is_none();
    let addr = match started {
        Some(addr) => addr,
        None => egress::proxy::start(config.egress(), route.clone(), 0, cancel).context("starting the egress proxy")?,
    };
    store.set_worker_value(KEY, &addr.port().to_be_bytes())?;
    Ok((addr, same))
}

/// Makes AdsPower's profiles (first page of `user/list`) known to the breaker, once.
async fn learn_profiles(client: Arc<AdsPowerClient>, breaker: Arc<Breaker>, cancel: CancellationToken) {
    let listed = tokio::select! {
        _ = cancel.cancelled() => return,
        listed = client.list_users() => listed,
    };
    match listed {
        Ok(ids) => {
            let ids: Vec<String> =
                ids.into_iter().filter(|id| crate::session::validate_profile_id(id).is_ok()).collect();
            if let Err(e) = breaker.learn(ids).await {
                tracing::warn!(error = %e, "cannot store AdsPower's profiles");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list AdsPower profiles"),
    }
}

/// A running HTTP server and its app.
pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    serving: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Builds the app (locking the data dir), binds `config.bind` and starts serving.
    pub async fn start(config: Config, api_keys: Vec<String>) -> anyhow::Result<Self> {
        let bind = config.bind;
        let app = App::build(config, api_keys)?;
        let listener = match tokio::net::TcpListener::bind(bind).await {
            Ok(listener) => listener,
            Err(e) => {
                app.shutdown().await;
                return Err(anyhow::Error::new(e).context(format!("cannot listen on {bind}")));
            }
        };
        let addr = listener.local_addr()?;
        let _ = app.public_url.set(app.config.public_url_for(addr));
        // Sessions of an earlier run come back before the first request (their links use the
        // public URL, set above).
        let pending = app.restore.lock().unwrap().take();
        if let Some((records, network)) = pending.filter(|(records, _)| !records.is_empty()) {
            let (reattached, failed) = app.registry.restore(records, network, app.public_url()).await;
            tracing::info!(reattached, failed, "sessions of the previous run");
        }
        app.start_heartbeat();
        let router = crate::api::router(app.clone());
        let serving =
            tokio::spawn(crate::api::serve::serve(listener, router, app.config.header_timeout(), app.cancel.clone()));
        Ok(Self { addr, app, serving })
    }

    /// Hands the sessions over to the next worker (`BW_HANDOVER`): stops taking new sessions
    /// and tasks, lets running tasks finish within the grace period, stops the server, and
    /// exits leaving every session's browser running and recorded.
    pub async fn handover(self) {
        let grace = self.app.config.shutdown_grace();
        self.app.drain();
        let tasks_done = async {
            while self.app.active_tasks.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        if tokio::time::timeout(grace, tasks_done).await.is_err() {
            tracing::warn!(?grace, "tasks still running after the grace period; handing over all the same");
        }
        self.app.cancel.cancel();
        if let Some(pool) = &self.app.pool {
            pool.drain().await;
        }
        if tokio::time::timeout(grace, self.app.registry.detach_all()).await.is_err() {
            tracing::warn!(?grace, "an operation did not finish in the grace period");
        }
        self.app.registry.provider().stop(true).await;
        let deadline = tokio::time::Instant::now() + grace;
        self.app.notifier.drain(deadline).await;
        if tokio::time::timeout(grace, self.serving).await.is_err() {
            tracing::warn!("HTTP connections still open after the grace period");
        }
    }

    /// Stops accepting, closes every session within the grace period, and waits for the server.
    pub async fn stop(self) {
        self.app.shutdown().await;
        let grace = self.app.config.shutdown_grace();
        if tokio::time::timeout(grace, self.serving).await.is_err() {
            tracing::warn!("HTTP connections still open after the grace period");
        }
    }
}
