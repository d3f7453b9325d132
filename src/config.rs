//! Configuration: flags and `BW_*` environment variables, validated before anything binds.
//!
//! This is the only module that reads the process environment (through clap's `env`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use rand::RngCore;

/// Everything the worker can be told at start-up.
#[derive(Debug, Clone, Parser)]
#[command(name = "browser-worker", version, about = "Runs real browsers behind an HTTP control plane")]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "BW_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// API keys accepted as `Authorization: Bearer <key>` (comma-separated, for rotation).
    /// When empty, a key is generated once and kept in `<data_dir>/api-key`.
    #[arg(long, env = "BW_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<String>,

    /// Directory for state: the generated API key, persistent profiles, pid records, temp dirs.
    #[arg(long, env = "BW_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Which browser provider opens sessions.
    #[arg(long, env = "BW_PROVIDER", value_enum, default_value_t = ProviderKind::Chromium)]
    pub provider: ProviderKind,

    /// AdsPower Local API base URL (provider `adspower`).
    #[arg(long, env = "BW_ADSPOWER_URL", default_value = "http://127.0.0.1:50325")]
    pub adspower_url: url::Url,

    /// AdsPower Local API key, sent as `Authorization: Bearer <key>` when set.
    #[arg(long, env = "BW_ADSPOWER_API_KEY", hide_env_values = true)]
    pub adspower_api_key: Option<String>,

    /// Requests per second this worker sends to the AdsPower Local API (it limits clients).
    #[arg(long, env = "BW_ADSPOWER_RATE", default_value_t = 1.0)]
    pub adspower_rate: f64,

    /// Chromium executable; auto-detected (`chromium`, `chromium-browser`, `google-chrome`) when unset.
    #[arg(long, env = "BW_CHROMIUM_PATH")]
    pub chromium_path: Option<PathBuf>,

    /// Maximum number of open sessions; further creates get 429.
    #[arg(long, env = "BW_MAX_SESSIONS", default_value_t = 3)]
    pub max_sessions: usize,

    /// Default idle timeout of a session, in seconds (a create request may lower or raise it).
    #[arg(long, env = "BW_IDLE_TIMEOUT_SECS", default_value_t = 600)]
    pub idle_timeout_secs: u64,

    /// Maximum lifetime of a session, in seconds.
    #[arg(long, env = "BW_MAX_LIFETIME_SECS", default_value_t = 3600)]
    pub max_lifetime_secs: u64,

    /// Number of ephemeral browsers kept launched and ready for fast creates.
    #[arg(long, env = "BW_WARM_POOL", default_value_t = 0)]
    pub warm_pool: usize,

    /// How an ephemeral session (no `profile_id`) gets its browser: a whole Chromium each
    /// (`process`), or a browser context of its own in a shared Chromium (`context`: a fraction
    /// of the memory; local Chromium only).
    #[arg(long, env = "BW_EPHEMERAL_MODE", value_enum, default_value_t = EphemeralMode::Process)]
    pub ephemeral_mode: EphemeralMode,

    /// `context` mode: how many sessions' contexts one shared Chromium takes.
    #[arg(long, env = "BW_CONTEXTS_PER_BROWSER", default_value_t = 8)]
    pub contexts_per_browser: usize,

    /// Log format.
    #[arg(long, env = "BW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "BW_LOG", default_value = "info")]
    pub log: String,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "BW_BODY_LIMIT_BYTES", default_value_t = 12 * 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Time limit for one browser operation (navigate, screenshot, …), in seconds.
    #[arg(long, env = "BW_OPERATION_TIMEOUT_SECS", default_value_t = 60)]
    pub operation_timeout_secs: u64,

    /// Fleet mode (SPEC §3.9): the Redis the workers share (`redis://`, `rediss://` for TLS,
    /// credentials in the URL). Unset: this worker is on its own.
    #[arg(long, env = "BW_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// This worker's name in the fleet (unique per worker); generated once into the data dir
    /// when unset.
    #[arg(long, env = "BW_WORKER_ID")]
    pub worker_id: Option<String>,

    /// How long a worker's heartbeat, a profile lease and a session's directory entry live in
    /// the fleet without renewal (renewed every third of it): how soon a dead worker's profiles
    /// are free again.
    #[arg(long, env = "BW_FLEET_TTL_SECS", default_value_t = 15)]
    pub fleet_ttl_secs: u64,

    /// Prefix of this fleet's Redis keys (several fleets may share one Redis).
    #[arg(long, env = "BW_FLEET_PREFIX", default_value = "bw")]
    pub fleet_prefix: String,

    /// The unprivileged user browsers, Xvfb and x11vnc run as when the worker may switch users
    /// (root, or CAP_SETUID + CAP_SETGID). Unset: `bw-browser` if it exists, else the worker's
    /// own user (with a warning); empty: always the worker's own user.
    #[arg(long, env = "BW_BROWSER_USER")]
    pub browser_user: Option<String>,

    /// Memory limit of each local browser (all its processes), in MiB; 0 for none. A browser
    /// that reaches it is stopped and its session fails with `resource_limit`.
    #[arg(long, env = "BW_BROWSER_MEMORY_MB", default_value_t = 2048)]
    pub browser_memory_mb: u64,

    /// Process (and thread) limit of each local browser; 0 for none.
    #[arg(long, env = "BW_BROWSER_PIDS_MAX", default_value_t = 2048)]
    pub browser_pids_max: u64,

    /// The cgroup (a path from the hierarchy's root) under which each browser gets its own
    /// cgroup for the limits; unset: `bw-browsers` beside the worker in its own cgroup; `off`:
    /// no cgroups, the memory limit is set per process (`RLIMIT_DATA`).
    #[arg(long, env = "BW_BROWSER_CGROUP")]
    pub browser_cgroup: Option<String>,

    /// Time limit for launching a browser, in seconds.
    #[arg(long, env = "BW_LAUNCH_TIMEOUT_SECS", default_value_t = 20)]
    pub launch_timeout_secs: u64,

    /// Time given to open sessions to close on SIGINT/SIGTERM, in seconds.
    #[arg(long, env = "BW_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Also store artifacts in this object store: `s3://bucket/prefix` (credentials from the
    /// `AWS_*` variables; `AWS_ENDPOINT` for S3-compatible stores) or `file:///dir`.
    #[arg(long, env = "BW_ARTIFACTS_URL", value_parser = parse_artifacts_url)]
    pub artifacts_url: Option<url::Url>,

    /// On SIGTERM, stop taking work, finish in-flight calls and exit leaving every session's
    /// browser running for the next worker on this data dir (SPEC §3.8); without it, SIGTERM
    /// closes every session.
    #[arg(long, env = "BW_HANDOVER", default_value_t = false, action = clap::ArgAction::Set)]
    pub handover: bool,

    /// Development and closed networks: let pages, resume downloads and webhooks reach private
    /// and loopback addresses, except the worker's own ports (API, egress proxy, browsers'
    /// DevTools). Link-local and metadata addresses are refused regardless.
    #[arg(long, env = "BW_ALLOW_PRIVATE_EGRESS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_private_egress: bool,

    /// Loopback or private `ip:port`s that pages, resumes and webhooks may reach all the same
    /// (comma-separated; e.g. a developer's own job board on `127.0.0.1:3000`). Loopback is
    /// otherwise never reached: the worker, its browsers' DevTools and VNC servers live there.
    #[arg(long, env = "BW_EGRESS_ALLOW", value_delimiter = ',')]
    pub egress_allow: Vec<SocketAddr>,

    /// Session recordings: `off` (only sessions and tasks that ask, `recording: true`, are
    /// recorded and kept), `on_failure` (every session is recorded; kept when it failed, was
    /// blocked or ended without a confirmed submission), `always` (every session, kept).
    #[arg(long, env = "BW_RECORDING", value_enum, default_value = "off")]
    pub recording: RecordingMode,

    /// A recording stops at this length (seconds).
    #[arg(long, env = "BW_RECORDING_MAX_SECS", default_value_t = 1800)]
    pub recording_max_secs: u64,

    /// A recording stops at this size (MB).
    #[arg(long, env = "BW_RECORDING_MAX_MB", default_value_t = 200)]
    pub recording_max_mb: u64,

    /// Upstream proxy for every local-Chromium session that names none of its own (nor has a
    /// profile default): a URL (`http://user:pass@host:port`, `socks5://…`) or a JSON object
    /// like the API's `proxy` (`{"url": …, "country": "DE"}`). Warm-pool browsers use it too.
    #[arg(long, env = "BW_DEFAULT_PROXY", hide_env_values = true, value_parser = parse_proxy)]
    pub default_proxy: Option<crate::egress::route::ProxySpec>,

    /// OpenAI-compatible API base for the `llm` form engine (e.g. `https://api.openai.com/v1`,
    /// `http://127.0.0.1:8000/v1`); the engine is off when unset.
    #[arg(long, env = "BW_LLM_BASE_URL")]
    pub llm_base_url: Option<url::Url>,

    /// API key for the LLM endpoint (sent as a Bearer token; also as `api-key` to Azure).
    #[arg(long, env = "BW_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,

    /// Model (or Azure deployment) name for the `llm` form engine.
    #[arg(long, env = "BW_LLM_MODEL", default_value = "gpt-4o-mini")]
    pub llm_model: String,

    /// Time limit for one page's LLM call, retries included, in seconds.
    #[arg(long, env = "BW_LLM_TIMEOUT_SECS", default_value_t = 20)]
    pub llm_timeout_secs: u64,

    /// Base URL clients reach this worker at (used in `cdp_url` and `vnc` links); default
    /// `http://<bound address>`.
    #[arg(long, env = "BW_PUBLIC_URL")]
    pub public_url: Option<url::Url>,

    /// Secret that signs session tokens (HS256, at least 32 characters); when unset, one is
    /// generated once and kept in `<data_dir>/token-secret`.
    #[arg(long, env = "BW_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,

    /// Lifetime of session tokens (VNC viewer, CDP), in seconds [default: 1800].
    #[arg(long, env = "BW_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<u64>,

    /// Older name of `BW_TOKEN_SECRET` (SPEC §2); used when that is unset.
    #[arg(long, env = "BW_VNC_SECRET", hide = true, hide_env_values = true)]
    pub vnc_secret: Option<String>,

    /// Older name of `BW_TOKEN_TTL_SECS` (SPEC §2); used when that is unset.
    #[arg(long, env = "BW_VNC_TOKEN_TTL_SECS", hide = true)]
    pub vnc_token_ttl_secs: Option<u64>,

    /// Displays for sessions created with `display: true`.
    #[arg(long, env = "BW_DISPLAY_MODE", value_enum, default_value_t = DisplayMode::None)]
    pub display_mode: DisplayMode,

    /// `shared` mode: the existing X display (e.g. `:99`).
    #[arg(long, env = "BW_VNC_DISPLAY")]
    pub vnc_display: Option<String>,

    /// `shared` mode: the port of the existing VNC server on 127.0.0.1.
    #[arg(long, env = "BW_VNC_PORT")]
    pub vnc_port: Option<u16>,

    /// Directory of noVNC's static files (`core/rfb.js`), served under `/vnc/static/`.
    #[arg(long, env = "BW_NOVNC_DIR", default_value = "/usr/share/novnc")]
    pub novnc_dir: PathBuf,

    /// A VNC or CDP bridge with no traffic for this long is closed, in seconds.
    #[arg(long, env = "BW_BRIDGE_IDLE_TIMEOUT_SECS", default_value_t = 600)]
    pub bridge_idle_timeout_secs: u64,

    /// Time a client has to send a request's headers, and an idle HTTP connection lives, in seconds.
    #[arg(long, env = "BW_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    pub header_timeout_secs: u64,
}

/// Which sessions are recorded, and which recordings kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordingMode {
    #[value(name = "off")]
    Off,
    #[value(name = "on_failure")]
    OnFailure,
    #[value(name = "always")]
    Always,
}

/// Where sessions' displays come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisplayMode {
    /// Headless sessions only; `display: true` is refused.
    None,
    /// Each session with `display: true` gets its own Xvfb and x11vnc.
    PerSession,
    /// Sessions with `display: true` share an existing display and VNC server.
    Shared,
}

/// How ephemeral sessions get their browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EphemeralMode {
    /// A whole Chromium per session.
    Process,
    /// A browser context per session in a few shared Chromiums.
    Context,
}

/// Where sessions' browsers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// A local Chromium launched by the worker.
    Chromium,
    /// AdsPower profiles started through its Local API (`profile_id` is the AdsPower `user_id`).
    #[value(name = "adspower")]
    AdsPower,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A configuration value that cannot be used; printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

const MIN_KEY_LEN: usize = 16;

/// Bytes of a generated token secret.
const TOKEN_SECRET_LEN: usize = 32;

impl Config {
    /// Parses flags and environment and validates the result. `--help`/`--version` exit here.
    pub fn load() -> Result<Self, ConfigError> {
        let config = match Config::try_parse() {
            Ok(config) => config,
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => {
                let text = e.to_string();
                let line = text.lines().next().unwrap_or("bad arguments");
                let line = line.trim_start_matches("error: ");
                return Err(ConfigError(line.to_string()));
            }
        };
        config.validated()
    }

    /// Checks values that clap's types cannot, and resolves the Chromium path.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        if self.max_sessions == 0 {
            return bad("BW_MAX_SESSIONS must be at least 1".into());
        }
        let name_ok =
            |n: &str| (1..=64).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if let Some(id) = self.worker_id.as_deref().filter(|id| !name_ok(id)) {
            return bad(format!("BW_WORKER_ID={id:?} must be 1-64 characters of [A-Za-z0-9._-]"));
        }
        if !(3..=300).contains(&self.fleet_ttl_secs) {
            return bad(format!("BW_FLEET_TTL_SECS={} must be between 3 and 300", self.fleet_ttl_secs));
        }
        if !name_ok(&self.fleet_prefix) {
            return bad(format!("BW_FLEET_PREFIX={:?} must be 1-64 characters of [A-Za-z0-9._-]", self.fleet_prefix));
        }
        const MONTH: u64 = 30 * 24 * 3600;
        if !(1..=MONTH).contains(&self.idle_timeout_secs) || !(1..=MONTH).contains(&self.max_lifetime_secs) {
            return bad(format!("BW_IDLE_TIMEOUT_SECS and BW_MAX_LIFETIME_SECS must be between 1 and {MONTH}"));
        }
        if self.warm_pool > 16 {
            return bad(format!("BW_WARM_POOL={} is more than 16", self.warm_pool));
        }
        if !(1..=64).contains(&self.contexts_per_browser) {
            return bad(format!("BW_CONTEXTS_PER_BROWSER={} must be between 1 and 64", self.contexts_per_browser));
        }
        if self.ephemeral_mode == EphemeralMode::Context && self.provider != ProviderKind::Chromium {
            return bad("BW_EPHEMERAL_MODE=context needs BW_PROVIDER=chromium (AdsPower sessions are profiles)".into());
        }
        let timeouts = [self.operation_timeout_secs, self.launch_timeout_secs, self.shutdown_grace_secs];
        if timeouts.iter().any(|t| !(1..=3600).contains(t)) {
            return bad("operation, launch and shutdown timeouts must be between 1 and 3600 seconds".into());
        }
        if let Some(spec) = &self.default_proxy
            && let Err(e) = crate::egress::route::SessionProxy::new(spec.clone(), &self.egress())
        {
            return bad(format!("BW_DEFAULT_PROXY: {e}"));
        }
        if !(1..=86_400).contains(&self.recording_max_secs) || !(1..=10_240).contains(&self.recording_max_mb) {
            return bad("BW_RECORDING_MAX_SECS must be 1-86400 and BW_RECORDING_MAX_MB 1-10240".into());
        }
        if self.body_limit_bytes < 1024 {
            return bad("BW_BODY_LIMIT_BYTES must be at least 1024".into());
        }
        if let Some(key) = self.api_keys.iter().find(|k| k.trim().len() < MIN_KEY_LEN) {
            let shown = if key.trim().is_empty() { "an empty key" } else { "a key" };
            return bad(format!("BW_API_KEYS has {shown} shorter than {MIN_KEY_LEN} characters"));
        }
        self.api_keys = self.api_keys.iter().map(|k| k.trim().to_string()).collect();
        if self.token_secret.is_none() {
            self.token_secret = self.vnc_secret.take();
        }
        if self.token_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return bad("BW_TOKEN_SECRET must be at least 32 characters".into());
        }
        self.token_ttl_secs = Some(self.token_ttl_secs.or(self.vnc_token_ttl_secs).unwrap_or(1800));
        if !(60..=86_400).contains(&self.token_ttl()) || !(1..=86_400).contains(&self.bridge_idle_timeout_secs) {
            return bad("BW_TOKEN_TTL_SECS must be 60-86400 and BW_BRIDGE_IDLE_TIMEOUT_SECS 1-86400".into());
        }
        if !(1..=600).contains(&self.header_timeout_secs) {
            return bad("BW_HEADER_TIMEOUT_SECS must be between 1 and 600".into());
        }
        if let Some(url) = &self.public_url
            && (!matches!(url.scheme(), "http" | "https") || url.host().is_none())
        {
            return bad(format!("BW_PUBLIC_URL {url} must be an http(s) URL with a host"));
        }
        if self.display_mode == DisplayMode::Shared
            && !(self.vnc_display.as_deref().is_some_and(|d| d.starts_with(':')) && self.vnc_port.is_some())
        {
            return bad("BW_DISPLAY_MODE=shared needs BW_VNC_DISPLAY (e.g. :99) and BW_VNC_PORT".into());
        }
        if self.display_mode == DisplayMode::PerSession
            && let Some(missing) = ["Xvfb", "x11vnc"].into_iter().find(|p| find_on_path(p).is_none())
        {
            return bad(format!("BW_DISPLAY_MODE=per-session needs {missing} (apt install xvfb x11vnc)"));
        }
        if self.display_mode != DisplayMode::None && !self.novnc_dir.join("core/rfb.js").is_file() {
            let dir = self.novnc_dir.display();
            return bad(format!("BW_NOVNC_DIR {dir} has no core/rfb.js (apt install novnc, or npm @novnc/novnc)"));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            return bad(format!("BW_LOG is not a valid filter: {e}"));
        }
        if !(self.adspower_rate > 0.0 && self.adspower_rate <= 100.0) {
            return bad("BW_ADSPOWER_RATE must be more than 0 and at most 100 requests per second".into());
        }
        if !matches!(self.adspower_url.scheme(), "http" | "https") {
            return bad("BW_ADSPOWER_URL must be an http(s) URL".into());
        }
        if let Some(url) = &self.llm_base_url
            && !matches!(url.scheme(), "http" | "https")
        {
            return bad("BW_LLM_BASE_URL must be an http(s) URL".into());
        }
        if !(1..=600).contains(&self.llm_timeout_secs) {
            return bad("BW_LLM_TIMEOUT_SECS must be between 1 and 600".into());
        }
        let needs_chromium = self.provider == ProviderKind::Chromium;
        self.chromium_path = match self.chromium_path.take() {
            Some(path) if is_executable(&path) => Some(path),
            Some(path) => return bad(format!("BW_CHROMIUM_PATH {} is not an executable file", path.display())),
            None => match detect_chromium() {
                Some(path) => Some(path),
                None if !needs_chromium => None,
                None => return bad("no Chromium found (install it with `make deps` or set BW_CHROMIUM_PATH)".into()),
            },
        };
        // The data dir holds the API key, profiles, resumes and cookie stores: the worker's user only.
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        if let Err(e) =
            std::fs::create_dir_all(&self.data_dir).and_then(|()| std::fs::set_permissions(&self.data_dir, private))
        {
            return bad(format!("BW_DATA_DIR {} cannot be created: {e}", self.data_dir.display()));
        }
        Ok(self)
    }

    /// The Chromium executable (resolved by validation).
    pub fn chromium(&self) -> &Path {
        self.chromium_path.as_deref().unwrap_or(Path::new("chromium"))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn max_lifetime(&self) -> Duration {
        Duration::from_secs(self.max_lifetime_secs)
    }

    /// The `llm` form engine's settings, when `BW_LLM_BASE_URL` is set.
    pub fn llm_settings(&self) -> Option<crate::forms::llm::LlmSettings> {
        Some(crate::forms::llm::LlmSettings {
            base_url: self.llm_base_url.clone()?,
            api_key: self.llm_api_key.clone().filter(|k| !k.is_empty()),
            model: self.llm_model.clone(),
            timeout: Duration::from_secs(self.llm_timeout_secs),
        })
    }

    pub fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.operation_timeout_secs)
    }

    pub fn launch_timeout(&self) -> Duration {
        Duration::from_secs(self.launch_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The checked default proxy (`validated` made sure it is valid).
    pub fn default_proxy(&self) -> Option<std::sync::Arc<crate::egress::route::SessionProxy>> {
        let spec = self.default_proxy.clone()?;
        crate::egress::route::SessionProxy::new(spec, &self.egress()).ok().map(std::sync::Arc::new)
    }

    pub fn egress(&self) -> crate::egress::EgressPolicy {
        crate::egress::EgressPolicy {
            allow_private: self.allow_private_egress,
            allow: self.egress_allow.iter().copied().collect(),
        }
    }

    /// Lifetime of session tokens, in seconds (resolved by validation).
    pub fn token_ttl(&self) -> u64 {
        self.token_ttl_secs.unwrap_or(1800)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    pub fn bridge_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.bridge_idle_timeout_secs)
    }

    /// `BW_PUBLIC_URL` without a trailing slash, or `http://<addr>` of the bound address
    /// (an unspecified address becomes loopback).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.as_str().trim_end_matches('/').to_string();
        }
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}")
    }

    /// The token-signing secret: `BW_TOKEN_SECRET`, or 32 random bytes generated once and kept
    /// in `<data_dir>/token-secret` (0600), so that viewer and CDP links outlive a restart.
    /// Call it with the data dir locked: two workers must not generate it at once.
    pub fn token_secret_bytes(&self) -> Result<Vec<u8>, ConfigError> {
        if let Some(secret) = &self.token_secret {
            return Ok(secret.as_bytes().to_vec());
        }
        let path = self.data_dir.join("token-secret");
        match std::fs::read(&path) {
            Ok(stored) => std::str::from_utf8(&stored).ok().and_then(|text| decode_hex(text.trim())).ok_or_else(|| {
                ConfigError(format!(
                    "{} is not a token secret ({} hex digits expected); set BW_TOKEN_SECRET, or delete the \
                     file to generate a new one (which ends every viewer and CDP link handed out)",
                    path.display(),
                    TOKEN_SECRET_LEN * 2
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; TOKEN_SECRET_LEN];
                rand::rng().fill_bytes(&mut bytes);
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                replace_private(&path, &hex)
                    .map_err(|e| ConfigError(format!("cannot store the token secret in {}: {e}", path.display())))?;
                Ok(bytes)
            }
            Err(e) => Err(ConfigError(format!("cannot read the token secret in {}: {e}", path.display()))),
        }
    }

    /// This worker's name in the fleet: `BW_WORKER_ID`, or `w-` and 12 random hex digits
    /// generated once into `<data_dir>/worker-id` (a restarted worker keeps its name, and so its
    /// sessions' directory entries and leases). Call under the data-dir lock.
    pub fn fleet_worker_id(&self) -> Result<String, ConfigError> {
        if let Some(id) = &self.worker_id {
            return Ok(id.clone());
        }
        let path = self.data_dir.join("worker-id");
        match std::fs::read_to_string(&path) {
            Ok(stored) => {
                let id = stored.trim();
                let valid =
                    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
                if valid {
                    Ok(id.to_string())
                } else {
                    Err(ConfigError(format!(
                        "{} is not a worker id; set BW_WORKER_ID or delete the file",
                        path.display()
                    )))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 6];
                rand::rng().fill_bytes(&mut bytes);
                let id: String =
                    std::iter::once("w-".to_string()).chain(bytes.iter().map(|b| format!("{b:02x}"))).collect();
                replace_private(&path, &id)
                    .map_err(|e| ConfigError(format!("cannot store the worker id in {}: {e}", path.display())))?;
                Ok(id)
            }
            Err(e) => Err(ConfigError(format!("cannot read the worker id in {}: {e}", path.display()))),
        }
    }

    /// Returns the configured keys, or the stored/generated one. A freshly generated key is
    /// also returned in the second slot so that the caller can print it once.
    pub fn resolve_api_keys(&self) -> Result<(Vec<String>, Option<String>), ConfigError> {
        if !self.api_keys.is_empty() {
            return Ok((self.api_keys.clone(), None));
        }
        let path = self.data_dir.join("api-key");
        if let Ok(stored) = std::fs::read_to_string(&path) {
            let key = stored.trim().to_string();
            if key.len() >= MIN_KEY_LEN {
                return Ok((vec![key], None));
            }
            return Err(ConfigError(format!("{} holds a key shorter than {MIN_KEY_LEN} characters", path.display())));
        }
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let key = format!("bw_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        write_private(&path, &key)
            .map_err(|e| ConfigError(format!("cannot store the API key in {}: {e}", path.display())))?;
        Ok((vec![key.clone()], Some(key)))
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

/// Writes `contents` to `path` (0600) through a temporary file and a rename, so that a crash
/// never leaves half a file behind.
fn replace_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let temp = path.with_extension("tmp");
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    write_private(&temp, contents)?;
    std::fs::File::open(&temp)?.sync_all()?;
    std::fs::rename(&temp, path)
}

/// Exactly `TOKEN_SECRET_LEN` bytes written as hex digits.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != TOKEN_SECRET_LEN * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn detect_chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find_map(find_on_path)
}

/// The executable `name` in a `PATH` directory.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
}

fn parse_artifacts_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if matches!(url.scheme(), "s3" | "s3a" | "file") {
        Ok(url)
    } else {
        Err("BW_ARTIFACTS_URL must be an s3:// or file:// URL".into())
    }
}

/// `BW_DEFAULT_PROXY`: a proxy URL, or a JSON object like the API's `proxy`. Errors never
/// repeat the value (it holds credentials).
fn parse_proxy(text: &str) -> Result<crate::egress::route::ProxySpec, String> {
    let text = text.trim();
    if text.starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not a proxy object (line {}, column {})", e.line(), e.column()))
    } else {
        Ok(crate::egress::route::ProxySpec {
            url: text.into(),
            country: None,
            timezone: None,
            locale: None,
            bypass: vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["browser-worker", "--chromium-path", "/bin/sh"];
        argv.extend_from_slice(args);
        Config::try_parse_from(argv).map_err(|e| ConfigError(e.to_string()))?.validated()
    }

    #[test]
    fn rejects_zero_sessions_and_short_keys() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        assert!(
            parse(&["--data-dir", data, "--max-sessions", "0"]).unwrap_err().to_string().contains("BW_MAX_SESSIONS")
        );
        assert!(parse(&["--data-dir", data, "--api-keys", "short"]).unwrap_err().to_string().contains("shorter"));
        assert!(parse(&["--data-dir", data, "--chromium-path", "/nonexistent"]).is_err());
        assert!(parse(&["--data-dir", data, "--log", "info,[[["]).is_err());
        assert!(
            parse(&["--data-dir", data, "--adspower-rate", "0"]).unwrap_err().to_string().contains("BW_ADSPOWER_RATE")
        );
        assert!(parse(&["--data-dir", data, "--adspower-url", "ftp://x"]).is_err());
        let ads = parse(&["--data-dir", data, "--provider", "adspower", "--adspower-rate", "2.5"]).unwrap();
        assert_eq!((ads.provider, ads.adspower_rate), (ProviderKind::AdsPower, 2.5));
        assert_eq!(ads.adspower_url.as_str(), "http://127.0.0.1:50325/");
        assert!(parse(&["--data-dir", data, "--max-lifetime-secs", "18446744073709551615"]).is_err());
        let ok = parse(&["--data-dir", data, "--api-keys", "0123456789abcdef, fedcba9876543210"]).unwrap();
        assert_eq!(ok.api_keys, vec!["0123456789abcdef", "fedcba9876543210"]);
    }

    #[test]
    fn display_token_and_public_url_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let err = |args: &[&str]| parse(&[&["--data-dir", data], args].concat()).unwrap_err().to_string();
        assert!(err(&["--display-mode", "shared"]).contains("BW_VNC_DISPLAY"));
        assert!(err(&["--token-secret", "short"]).contains("32"));
        assert!(err(&["--token-ttl-secs", "5"]).contains("BW_TOKEN_TTL_SECS"));
        assert!(err(&["--public-url", "ftp://x"]).contains("BW_PUBLIC_URL"));
        assert!(err(&["--display-mode", "per-session", "--novnc-dir", data]).contains("BW_NOVNC_DIR"));
        let shared =
            parse(&["--data-dir", data, "--display-mode", "shared", "--vnc-display", ":99", "--vnc-port", "5900"]);
        assert_eq!(shared.unwrap().display_mode, DisplayMode::Shared);
        let old_names =
            parse(&["--data-dir", data, "--vnc-secret", &"s".repeat(32), "--vnc-token-ttl-secs", "120"]).unwrap();
        assert_eq!((old_names.token_secret.as_deref().map(str::len), old_names.token_ttl()), (Some(32), 120));
        let config = parse(&["--data-dir", data]).unwrap();
        assert_eq!(config.token_ttl(), 1800);
        assert_eq!(config.public_url_for("0.0.0.0:8080".parse().unwrap()), "http://127.0.0.1:8080");
        let public = parse(&["--data-dir", data, "--public-url", "https://w1.example.com/"]).unwrap();
        assert_eq!(public.public_url_for("0.0.0.0:8080".parse().unwrap()), "https://w1.example.com");
    }

    #[test]
    fn generates_a_private_key_once_and_reuses_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = parse(&["--data-dir", dir.path().to_str().unwrap()]).unwrap();
        let (keys, fresh) = config.resolve_api_keys().unwrap();
        assert_eq!(Some(keys[0].clone()), fresh);
        let mode = std::fs::metadata(dir.path().join("api-key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, fresh_again) = config.resolve_api_keys().unwrap();
        assert_eq!(again, keys);
        assert_eq!(fresh_again, None);
    }

    #[test]
    fn generates_a_private_token_secret_once_and_the_environment_wins() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let path = dir.path().join("token-secret");
        let config = parse(&["--data-dir", data]).unwrap();
        let secret = config.token_secret_bytes().unwrap();
        assert_eq!(secret.len(), 32);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(config.token_secret_bytes().unwrap(), secret, "a later start reuses it");
        let stored = std::fs::read_to_string(&path).unwrap();
        let given = "g".repeat(32);
        let from_env = parse(&["--data-dir", data, "--token-secret", &given]).unwrap();
        assert_eq!(from_env.token_secret_bytes().unwrap(), given.as_bytes());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), stored, "BW_TOKEN_SECRET leaves the file alone");
    }

    #[test]
    fn a_damaged_token_secret_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse(&["--data-dir", dir.path().to_str().unwrap()]).unwrap();
        let path = dir.path().join("token-secret");
        let damaged: [&[u8]; 5] = [b"", b"abcd\n", &[b'a'; 63], &[b'z'; 64], &[0xff; 64]];
        for contents in damaged {
            std::fs::write(&path, contents).unwrap();
            let err = config.token_secret_bytes().unwrap_err().to_string();
            assert!(err.contains("is not a token secret"), "{contents:?}: {err}");
        }
        std::fs::write(&path, format!("{}\n", "0f".repeat(32))).unwrap();
        assert_eq!(config.token_secret_bytes().unwrap(), vec![0x0f; 32]);
    }
}
