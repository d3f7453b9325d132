//! A fake AdsPower Local API for tests and local development (`cargo run --example
//! fake_adspower`): `/status`, `/api/v1/browser/start|stop|active` and `/api/v1/user/list`.
//!
//! `browser/start` launches a real Chromium with remote debugging in its own process group and
//! answers with the real shapes (`ws.puppeteer`, `ws.selenium`, `debug_port`, `webdriver`).
//! Like the real app it answers every request with HTTP 200 and `{"code": 0|-1, …}`, checks the
//! Bearer key when one is set, and refuses more than `rate` requests per second with
//! `{"code": -1, "msg": "Too many request per second, please check"}`. Every request's path
//! and query parameters are recorded (`requests`), so tests can check what the worker asked for.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, response::IntoResponse};
use browser_worker::browser::chromium::{CHROMIUM_FLAGS, NO_SANDBOX};
use browser_worker::browser::process::{self, BrowserProcess};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Required as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    /// Requests accepted per second (a sliding one-second window).
    pub rate: usize,
    /// Profiles (`user_id`s) that exist.
    pub profiles: Vec<String>,
    pub chromium: PathBuf,
}

impl FakeOptions {
    /// Key `None`, 10 requests/s, profiles `ads-1` and `ads-2`, Chromium from `PATH`.
    pub fn new() -> Self {
        Self {
            api_key: None,
            rate: 10,
            profiles: vec!["ads-1".into(), "ads-2".into()],
            chromium: find_chromium().expect("a Chromium on PATH (or BW_CHROMIUM_PATH)"),
        }
    }
}

/// A browser the fake started.
struct Running {
    process: BrowserProcess,
    ws: String,
    port: u16,
    dead: CancellationToken,
}

struct Shared {
    options: FakeOptions,
    browsers: tokio::sync::Mutex<HashMap<String, Running>>,
    /// Arrival times of accepted requests in the last second.
    window: Mutex<VecDeque<Instant>>,
    rate_limited: AtomicU64,
    /// Every request received: its path and query parameters, in arrival order.
    requests: Mutex<Vec<(String, HashMap<String, String>)>>,
    /// Pid records and user-data dirs of the fake's browsers.
    dir: tempfile::TempDir,
}

/// A running fake AdsPower.
pub struct FakeAdsPower {
    pub base: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeAdsPower {
    /// Serves on `addr` (use `127.0.0.1:0` for any port).
    pub async fn start(options: FakeOptions, addr: &str) -> Self {
        let dir = tempfile::Builder::new().prefix(".tmp-fake-adspower").tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let shared = Arc::new(Shared {
            options,
            browsers: Default::default(),
            window: Default::default(),
            rate_limited: AtomicU64::new(0),
            requests: Default::default(),
            dir,
        });
        let app = Router::new()
            .route("/status", get(status))
            .route("/api/v1/browser/start", get(start))
            .route("/api/v1/browser/stop", get(stop))
            .route("/api/v1/browser/active", get(active))
            .route("/api/v1/user/list", get(user_list))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, shared, server }
    }

    /// Requests answered with the rate-limit error so far.
    pub fn rate_limited(&self) -> u64 {
        self.shared.rate_limited.load(Ordering::SeqCst)
    }

    /// The query parameters of each request to `path` so far (e.g. `/api/v1/browser/start`).
    pub fn queries(&self, path: &str) -> Vec<HashMap<String, String>> {
        let requests = self.shared.requests.lock().unwrap();
        requests.iter().filter(|(p, _)| p == path).map(|(_, q)| q.clone()).collect()
    }

    /// Process groups of the browsers running now, by profile.
    pub async fn running(&self) -> HashMap<String, i32> {
        self.shared.browsers.lock().await.iter().map(|(id, r)| (id.clone(), r.process.pgid())).collect()
    }

    /// Closes a profile's browser behind the worker's back (as a person closing its window would).
    pub async fn kill_browser(&self, user_id: &str) {
        if let Some(running) = self.shared.browsers.lock().await.remove(user_id) {
            running.process.terminate().await;
        }
    }

    /// Stops serving and terminates every browser it started.
    pub async fn shutdown(self) {
        self.server.abort();
        let browsers: Vec<Running> = self.shared.browsers.lock().await.drain().map(|(_, r)| r).collect();
        for running in browsers {
            running.process.terminate().await;
        }
    }
}

/// Records a request's path and query parameters before it is answered.
async fn record(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let query =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    shared.requests.lock().unwrap().push((request.uri().path().to_string(), query));
    next.run(request).await
}

fn ok(data: Value) -> axum::response::Response {
    Json(json!({"code": 0, "data": data, "msg": "success"})).into_response()
}

fn refused(msg: &str) -> axum::response::Response {
    Json(json!({"code": -1, "data": {}, "msg": msg})).into_response()
}

/// The key and rate checks every route goes through, as the real app answers them.
fn gate(shared: &Shared, headers: &HeaderMap) -> Option<axum::response::Response> {
    if let Some(key) = &shared.options.api_key {
        let sent = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(key.as_str()) {
            return Some(refused("Invalid api key"));
        }
    }
    let now = Instant::now();
    let mut window = shared.window.lock().unwrap();
    while window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
        window.pop_front();
    }
    if window.len() >= shared.options.rate {
        shared.rate_limited.fetch_add(1, Ordering::SeqCst);
        return Some(refused("Too many request per second, please check"));
    }
    window.push_back(now);
    None
}

fn shapes(running: &Running) -> Value {
    json!({
        "ws": {"selenium": format!("127.0.0.1:{}", running.port), "puppeteer": running.ws},
        "debug_port": running.port.to_string(),
        "webdriver": "/opt/fake-adspower/chromedriver",
    })
}

async fn status(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> axum::response::Response {
    if let Some(refusal) = gate(&shared, &headers) {
        return refusal;
    }
    ok(json!({}))
}

async fn start(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> axum::response::Response {
    if let Some(refusal) = gate(&shared, &headers) {
        return refusal;
    }
    let Some(user_id) = query.get("user_id").filter(|id| shared.options.profiles.contains(id)) else {
        return refused("Profile does not exist");
    };
    let mut browsers = shared.browsers.lock().await;
    if let Some(running) = browsers.get(user_id).filter(|r| !r.dead.is_cancelled()) {
        return ok(shapes(running));
    }
    if let Some(stale) = browsers.remove(user_id) {
        stale.process.terminate().await;
    }
    let launch_args: Vec<String> =
        query.get("launch_args").and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
    let user_data_dir = shared.dir.path().join(format!("profile-{user_id}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&user_data_dir).unwrap();
    let mut command = tokio::process::Command::new(&shared.options.chromium);
    command
        .args(CHROMIUM_FLAGS)
        // AdsPower's browsers are not the worker's: they run as the app's user.
        .arg(NO_SANDBOX)
        .arg(format!("--user-data-dir={}", user_data_dir.display()))
        .arg("--remote-debugging-port=0")
        .args(launch_args.iter().filter(|a| a.starts_with("--") && !a.starts_with("--user-data-dir")));
    let dead = CancellationToken::new();
    let run_dir = shared.dir.path().join("run");
    match process::spawn(command, &run_dir, user_data_dir, true, Duration::from_secs(20), dead.clone(), None).await {
        Ok((process, ws)) => {
            let port = ws.split(':').nth(2).and_then(|rest| rest.split('/').next()).and_then(|p| p.parse().ok());
            let running = Running { process, ws, port: port.unwrap_or_default(), dead };
            let answer = shapes(&running);
            browsers.insert(user_id.clone(), running);
            ok(answer)
        }
        Err(e) => refused(&format!("Failed to start browser: {e}")),
    }
}

async fn stop(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> axum::response::Response {
    if let Some(refusal) = gate(&shared, &headers) {
        return refusal;
    }
    let removed = match query.get("user_id") {
        Some(id) => shared.browsers.lock().await.remove(id),
        None => None,
    };
    match removed {
        Some(running) => {
            running.process.terminate().await;
            ok(json!({}))
        }
        None => refused("The browser is not open"),
    }
}

async fn active(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> axum::response::Response {
    if let Some(refusal) = gate(&shared, &headers) {
        return refusal;
    }
    let browsers = shared.browsers.lock().await;
    match query.get("user_id").and_then(|id| browsers.get(id)).filter(|r| !r.dead.is_cancelled()) {
        Some(running) => {
            let mut data = shapes(running);
            data["status"] = json!("Active");
            ok(data)
        }
        None => ok(json!({"status": "Inactive"})),
    }
}

async fn user_list(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> axum::response::Response {
    if let Some(refusal) = gate(&shared, &headers) {
        return refusal;
    }
    let list: Vec<Value> = shared
        .options
        .profiles
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"user_id": id, "serial_number": (i + 1).to_string(), "name": format!("profile {}", i + 1)}))
        .collect();
    ok(json!({"list": list, "page_info": {"page": 1, "page_size": 100, "total_count": list.len()}}))
}

/// `BW_CHROMIUM_PATH`, else `chromium`, `chromium-browser` or `google-chrome` on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BW_CHROMIUM_PATH") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}
