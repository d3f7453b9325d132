//! Test support: the real server on port 0 with a temp data dir (`TestApp`), the worker binary
//! as a child process (`WorkerProcess`), a fixture web server on 127.0.0.1, and process probes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use browser_worker::{Config, Server};
use clap::Parser;
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const KEY: &str = "test-key-0123456789abcdef";

/// The worker, in this process, on an ephemeral port.
pub struct TestApp {
    pub server: Option<Server>,
    pub base: String,
    pub data_dir: DataDir,
    pub client: reqwest::Client,
}

/// Configuration for a test worker: loopback, port 0, the test key, a fresh data dir.
pub fn test_config(data_dir: &Path, extra: &[&str]) -> Config {
    let mut argv = vec!["browser-worker", "--bind", "127.0.0.1:0", "--api-keys", KEY, "--log", "warn"];
    let dir = data_dir.to_str().unwrap().to_string();
    argv.extend(["--data-dir", &dir]);
    // Pages and resumes come from the fixture server on loopback; nothing else on loopback is reachable.
    let fixture_addr = fixtures().trim_start_matches("http://");
    argv.extend(["--egress-allow", fixture_addr]);
    // The test matrix: `make test` runs the session, forms, isolation and takeover tests a
    // second time with ephemeral sessions as browser contexts in shared browsers.
    let mode = std::env::var("BW_TEST_EPHEMERAL_MODE").unwrap_or_default();
    if !mode.is_empty() && !extra.contains(&"--ephemeral-mode") {
        argv.extend(["--ephemeral-mode", mode.leak()]);
    }
    argv.extend_from_slice(extra);
    Config::try_parse_from(argv).expect("test flags parse").validated().expect("test config is valid")
}

/// A temporary data dir the browser user may pass through (as `/var/lib/browser-worker` with
/// mode 0711): the worker refuses one it cannot reach.
pub fn data_dir() -> DataDir {
    use std::os::unix::fs::PermissionsExt;
    DataDir(tempfile::Builder::new().permissions(std::fs::Permissions::from_mode(0o711)).tempdir().unwrap())
}

/// A test's data dir. Browsers outlive a killed worker (SPEC §3.8), so a test that fails half
/// way would leave them running: dropping the dir kills every process still recorded in it.
pub struct DataDir(tempfile::TempDir);

impl DataDir {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        for record in recorded_browsers(self.path()) {
            browser_worker::browser::process::kill_group(record.pgid);
        }
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a worker with extra command-line flags, e.g. `&["--max-sessions", "2"]`.
    pub async fn start_with(extra: &[&str]) -> Self {
        init();
        let data_dir = data_dir();
        let server = Server::start(test_config(data_dir.path(), extra), vec![KEY.into()]).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        Self { server: Some(server), base, data_dir, client: reqwest::Client::new() }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(KEY)
    }

    /// Sends a JSON body and returns (status, parsed body).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is answered");
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Opens a session and returns its JSON (asserts 201).
    pub async fn create(&self, body: Value) -> Value {
        let (status, session) = self.call(Method::POST, "/api/v2/sessions", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "create failed: {session}");
        session
    }

    pub async fn delete(&self, id: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await
    }

    /// Browsers recorded by the worker now.
    pub fn browsers(&self) -> Vec<Recorded> {
        recorded_browsers(self.data_dir.path())
    }

    /// Graceful stop; every session closes.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

/// One pid record of a running browser.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub pgid: i32,
    pub user_data_dir: PathBuf,
}

/// Removes the session store and its journal (the current file and any sealed one), as if the
/// worker had never recorded a session.
pub fn forget_session_records(data_dir: &Path) {
    std::fs::remove_file(data_dir.join("sessions.redb")).unwrap();
    for entry in std::fs::read_dir(data_dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("sessions.journal") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
}

pub fn recorded_browsers(data_dir: &Path) -> Vec<Recorded> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("run")) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .map(|v| Recorded {
            pgid: v["pgid"].as_i64().unwrap() as i32,
            user_data_dir: PathBuf::from(v["user_data_dir"].as_str().unwrap()),
        })
        .collect()
}

/// Processes (zombies included) in process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) {
            found.push(format!("{} {}", &stat[..close + 1], fields[0]));
        }
    }
    found
}

/// Exited-but-unreaped Chromium crash handlers parented to this process (they double-fork out
/// of the browser's process group, so group checks do not see them).
pub fn zombie_crash_handlers() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str()) && stat.contains("(chrome_crashpad") {
            found.push(stat[..close + 1].to_string());
        }
    }
    found
}

/// Waits until `check` holds, up to `limit`; returns whether it did.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// Like `eventually`, for checks that need to await (e.g. an HTTP call).
pub async fn eventually_async<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestApp {
    /// Ids of the sessions `GET /api/v2/sessions` lists (listing is not activity on them).
    pub async fn listed(&self) -> Vec<String> {
        let (_, list) = self.call(Method::GET, "/api/v2/sessions", None).await;
        list["sessions"].as_array().unwrap().iter().map(|s| s["session_id"].as_str().unwrap().to_string()).collect()
    }

    /// Evaluates a script in a session's page (awaiting promises) through the worker's own
    /// browser connection, as a test-side view of what the page's code sees.
    pub async fn page_eval(&self, id: &str, expression: &str) -> Value {
        use browser_worker::browser::port::PagePort;
        let app = &self.server.as_ref().unwrap().app;
        let op = app.registry.begin(browser_worker::session::SessionId::parse(id).unwrap()).expect("session is free");
        op.browser().eval("test eval", expression).await.expect("script runs")
    }

    /// Types into an element as a person would: a real click to focus it, then key events.
    pub async fn type_into(&self, id: &str, selector: &str, text: &str) {
        use browser_worker::browser::port::PagePort;
        self.click(id, selector).await;
        let app = &self.server.as_ref().unwrap().app;
        let op = app.registry.begin(browser_worker::session::SessionId::parse(id).unwrap()).expect("session is free");
        for c in text.chars() {
            op.browser().type_char(c).await.expect("key event");
        }
    }

    /// Clicks the middle of an element with real mouse events.
    pub async fn click(&self, id: &str, selector: &str) {
        use browser_worker::browser::port::PagePort;
        let app = &self.server.as_ref().unwrap().app;
        let op = app.registry.begin(browser_worker::session::SessionId::parse(id).unwrap()).expect("session is free");
        let script = format!(
            "(() => {{ const el = document.querySelector({}); el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
            serde_json::to_string(selector).unwrap()
        );
        let point = op.browser().eval("locate", &script).await.expect("element is on the page");
        let (x, y) = (point[0].as_f64().unwrap(), point[1].as_f64().unwrap());
        op.browser().click_at(x, y).await.expect("mouse events");
    }

    /// `warm_pool_ready` from `/health`.
    pub async fn pool_ready(&self) -> u64 {
        let (_, health) = self.call(Method::GET, "/health", None).await;
        health["warm_pool_ready"].as_u64().unwrap()
    }
}

/// Adopt orphans of killed workers so that their zombies can be reaped here.
fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(browser_worker::browser::process::become_subreaper);
}

/// Base URL of the fixture server (started once, on its own thread, for the whole test run).
pub fn fixtures() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, fixture_routes()).await.unwrap();
            });
        });
        let addr: SocketAddr = rx.recv().unwrap();
        format!("http://{addr}")
    })
}

fn fixture_routes() -> Router {
    Router::new()
        .route("/pages/{name}", get(page))
        .route("/forms/{*path}", get(form_file))
        .route("/submit/{name}", axum::routing::post(record_submission))
        .route("/hang", get(futures::future::pending::<Html<&'static str>>))
        // Answers at once with the start of an HTML page, then never ends the body: as a
        // document it never gets interactive; as a sub-resource, `load` never fires.
        .route(
            "/never-ends",
            get(|| async {
                let start = futures::stream::once(async {
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
                        b"<!doctype html><title>Never ends</title><p>",
                    ))
                });
                let body = axum::body::Body::from_stream(futures::StreamExt::chain(start, futures::stream::pending()));
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
            }),
        )
        .route(
            "/big.pdf",
            get(|| async { ([(header::CONTENT_TYPE, "application/pdf")], vec![b'%'; 11 * 1024 * 1024]) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Html("<title>Slow</title>slow")
            }),
        )
        // An open redirect, as attack pages use them: `/bounce?to=<url>`.
        .route(
            "/bounce",
            get(
                |axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    Redirect::temporary(q.get("to").map(String::as_str).unwrap_or("/"))
                },
            ),
        )
        // A download whose name and content look like one of the worker's pid records.
        .route(
            "/download",
            get(|| async {
                (
                    [(header::CONTENT_DISPOSITION, "attachment; filename=\"999999.json\"")],
                    r#"{"pgid":999999,"user_data_dir":"/","ephemeral":true}"#,
                )
            }),
        )
        // A LinkedIn-style job link that bounces a logged-out visitor to the authwall.
        .route("/jobs/view/{id}", get(|| async { Redirect::temporary("/authwall?trk=public_jobs_guest") }))
        .route("/authwall", get(|| page(UrlPath("authwall.html".to_string()))))
        .route(
            "/cookie/set",
            get(|| async {
                ([(header::SET_COOKIE, "bw_test=remembered; Max-Age=86400; Path=/")], Html("<title>Cookie set</title>"))
            }),
        )
        .route(
            "/cookie/show",
            get(|headers: HeaderMap| async move {
                let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("none").to_string();
                Html(format!("<title>cookie: {cookie}</title>"))
            }),
        )
}

async fn page(UrlPath(name): UrlPath<String>) -> impl IntoResponse {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pages");
    match std::fs::read_to_string(dir.join(name.replace('/', ""))) {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// What fixture forms posted to `/submit/<name>`: the employer's view of an application.
static SUBMISSIONS: std::sync::Mutex<Vec<(String, Value)>> = std::sync::Mutex::new(Vec::new());

/// The last payload posted to `/submit/<name>`, if any: fields by name (repeated names as
/// arrays), files as `{filename, size, base64}`, empty file parts as null.
pub fn submission(name: &str) -> Option<Value> {
    SUBMISSIONS.lock().unwrap().iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// Every payload posted to `/submit/<name>` so far, oldest first (tests running at the same time
/// may post to the same form: find yours by a value only it sends).
pub fn submissions(name: &str) -> Vec<Value> {
    SUBMISSIONS.lock().unwrap().iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
}

async fn record_submission(UrlPath(name): UrlPath<String>, mut form: axum::extract::Multipart) -> impl IntoResponse {
    use base64::Engine as _;
    let mut payload = serde_json::Map::new();
    while let Ok(Some(field)) = form.next_field().await {
        let key = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.unwrap_or_default();
        let value = match filename {
            Some(f) if f.is_empty() && bytes.is_empty() => Value::Null,
            Some(f) => serde_json::json!({"filename": f, "size": bytes.len(),
                "base64": base64::engine::general_purpose::STANDARD.encode(&bytes)}),
            None => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        };
        match payload.get_mut(&key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.clone(), value]),
            None => {
                payload.insert(key, value);
            }
        }
    }
    SUBMISSIONS.lock().unwrap().push((name, Value::Object(payload)));
    axum::response::Redirect::to("/forms/confirm.html?id=APP-12345")
}

/// Files under `tests/fixtures/forms`, with a content type from the extension.
async fn form_file(UrlPath(path): UrlPath<String>) -> impl IntoResponse {
    if path.split('/').any(|part| part == ".." || part.is_empty()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let file = forms_dir().join(&path);
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    };
    match std::fs::read(&file) {
        Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

pub fn forms_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/forms")
}

/// The `browser-worker` binary running as a child process.
pub struct WorkerProcess {
    pub child: tokio::process::Child,
    pub base: String,
}

impl WorkerProcess {
    /// The binary on an ephemeral port with `data_dir`, the test key and JSON logs.
    pub fn command(data_dir: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_browser-worker"));
        command
            .env("BW_BIND", "127.0.0.1:0")
            .env("BW_API_KEYS", KEY)
            .env("BW_DATA_DIR", data_dir)
            .env("BW_LOG_FORMAT", "json")
            .env("BW_LOG", "info")
            .env("BW_EGRESS_ALLOW", fixtures().trim_start_matches("http://"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Starts the binary with `data_dir` and extra variables, waiting until it listens.
    pub async fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Self::command(data_dir);
        command.envs(env.iter().copied());
        Self::start(command).await
    }

    /// Runs `command` (see `command`), waiting until the worker logs that it listens.
    pub async fn start(mut command: tokio::process::Command) -> Self {
        init();
        let mut child = command.spawn().expect("worker binary runs");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "browser-worker listening"
                {
                    return event["addr"].as_str().unwrap().to_string();
                }
            }
            panic!("worker exited before listening");
        })
        .await
        .expect("worker starts listening");
        // `BW_TEST_WORKER_LOG=1` shows what the worker logs after it listens.
        let show = std::env::var_os("BW_TEST_WORKER_LOG").is_some();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if show {
                    eprintln!("[worker] {line}");
                }
            }
        });
        Self { child, base: format!("http://{addr}") }
    }

    /// SIGTERM, then the exit code and everything the worker printed on stdout.
    pub async fn terminate(mut self) -> (Option<i32>, String) {
        use tokio::io::AsyncReadExt;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let mut stdout = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut stdout).await.unwrap();
        let status =
            tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.expect("exits in time").unwrap();
        (status.code(), stdout)
    }

    pub async fn create(&self) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v2/sessions", self.base))
            .bearer_auth(KEY)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        response.json().await.unwrap()
    }
}

/// The token-signing secret of test workers started with `TestApp::start_with(&["--token-secret", SECRET])`.
pub const SECRET: &str = "test-token-secret-0123456789abcdef";

/// A token signed with `SECRET` (e.g. an expired one), as the worker would mint it.
pub fn forge_token(session_id: &str, scope: browser_worker::token::Scope, expires_in_secs: i64) -> String {
    let issuer = browser_worker::token::TokenIssuer::new(SECRET.as_bytes(), Duration::from_secs(60));
    let id = browser_worker::session::SessionId(session_id.parse().unwrap());
    issuer.mint_until(id, scope, 0, chrono::Utc::now() + chrono::Duration::seconds(expires_in_secs)).token
}

/// Runs `tests/js/<script>` with node and returns (success, stdout, stderr).
pub async fn node(script: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    let output = tokio::process::Command::new("node")
        .current_dir(&dir)
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(Duration::from_secs(60), output).await.expect("node finishes").expect("node runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A WebSocket client connection.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket (with optional headers and subprotocol) and returns it, or the HTTP status
/// it was refused with.
pub async fn websocket(url: &str, bearer: Option<&str>, protocol: Option<&str>) -> Result<Socket, reqwest::StatusCode> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    if let Some(key) = bearer {
        request.headers_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    if let Some(protocol) = protocol {
        request.headers_mut().insert("sec-websocket-protocol", protocol.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(reqwest::StatusCode::from_u16(response.status().as_u16()).unwrap())
        }
        Err(e) => panic!("websocket {url}: {e}"),
    }
}

/// Evaluates `expression` in the session's page through the CDP passthrough at `cdp_url`
/// (a URL with `?token=`), as a second CDP client next to the worker's own, in plain CDP:
/// `Target.getTargets`, `Target.attachToTarget` (flat), `Runtime.evaluate`.
pub async fn evaluate_over_cdp(cdp_url: &str, expression: &str) -> Value {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut socket = websocket(cdp_url, None, None).await.expect("the passthrough accepts the token");
    let mut next_id = 0;
    let mut call = async |method: &str, params: Value, session: Option<&str>| -> Value {
        next_id += 1;
        let mut message = serde_json::json!({"id": next_id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        socket.send(Message::Text(message.to_string().into())).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let Some(Ok(Message::Text(text))) = socket.next().await else { panic!("the passthrough closed") };
                let reply: Value = serde_json::from_str(&text).unwrap();
                if reply["id"] == next_id {
                    return reply;
                }
            }
        });
        let reply = answer.await.expect("CDP answers in time");
        assert!(reply["error"].is_null(), "{method} failed: {reply}");
        reply["result"].clone()
    };
    let targets = call("Target.getTargets", serde_json::json!({}), None).await;
    let page =
        targets["targetInfos"].as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a page target").clone();
    let attached =
        call("Target.attachToTarget", serde_json::json!({"targetId": page["targetId"], "flatten": true}), None).await;
    let session = attached["sessionId"].as_str().unwrap().to_string();
    let result =
        call("Runtime.evaluate", serde_json::json!({"expression": expression, "returnByValue": true}), Some(&session))
            .await;
    result["result"]["value"].clone()
}

/// The worker binary with every line it prints (standard error and output) kept, unlike
/// `WorkerProcess`, which lets them go: this test reads the whole log.
pub struct LoggedWorker {
    pub child: tokio::process::Child,
    pub base: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl LoggedWorker {
    /// Starts `WorkerProcess::command` with extra variables, waiting until it listens.
    pub async fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        browser_worker::browser::process::become_subreaper();
        let mut command = WorkerProcess::command(data_dir);
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("worker binary runs");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (listening, addr) = tokio::sync::oneshot::channel::<String>();
        let stderr = Self::keep(child.stderr.take().unwrap(), log.clone(), Some(listening));
        let stdout = Self::keep(child.stdout.take().unwrap(), log.clone(), None);
        let addr = tokio::time::timeout(Duration::from_secs(30), addr)
            .await
            .expect("worker starts listening")
            .expect("worker exited before listening");
        Self { child, base: format!("http://{addr}"), log, readers: vec![stderr, stdout] }
    }

    /// Appends every line of `stream` to `log`; sends the address of the `listening` line.
    fn keep(
        stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        log: std::sync::Arc<std::sync::Mutex<String>>,
        mut listening: Option<tokio::sync::oneshot::Sender<String>>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "browser-worker listening"
                    && let (Some(tx), Some(addr)) = (listening.take(), event["addr"].as_str())
                {
                    let _ = tx.send(addr.to_string());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (reqwest::StatusCode, Value) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base)).bearer_auth(KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is answered");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// SIGTERM, then the exit code and the whole log.
    pub async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status =
            tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.expect("exits in time").unwrap();
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
        let log = self.log.lock().unwrap().clone();
        (status.code(), log)
    }
}
