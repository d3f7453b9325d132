//! Per-session proxies (issue 19): a session's traffic leaves through the upstream proxy given
//! at create (HTTP with Basic auth, or SOCKS5 with user/password), its page sees the identity
//! that goes with it (time zone, language, Accept-Language), WebRTC gives away no address of
//! the host, failures of the proxy answer `502 proxy_error`, and no credential ever shows in
//! answers, metrics or logs.
//!
//! The proxies are real ones from Debian (`scripts/install-deps.sh` installs them), started
//! here on loopback and made to connect out FROM 127.0.0.2, so the test's own page server can
//! tell a request that went through the proxy (peer 127.0.0.2) from one that did not
//! (peer 127.0.0.1). Checked by hand with tinyproxy 1.11.1 and microsocks 1.0.3:
//!
//! - `tinyproxy -d -c FILE` with `Port P`, `Listen 127.0.0.1`, `Bind 127.0.0.2`, `Timeout 30`,
//!   `MaxClients 50`, `Allow 127.0.0.1`, `BasicAuth user pass`, `ConnectPort X`,
//!   `LogLevel Info`, `LogFile "DIR/tinyproxy.log"` (runs in the foreground, also as root
//!   without `User`): `curl -x http://user:pass@127.0.0.1:P http://127.0.0.1:X/` and the same
//!   with `-p` (CONNECT) answer 200 and reach the server from 127.0.0.2; CONNECT to a port
//!   that is not a `ConnectPort` is refused; no credentials answer 407, but WRONG credentials
//!   answer `401 Unauthorized` with `WWW-Authenticate` (absolute-form and CONNECT alike: the
//!   bug of tinyproxy issue #532, fixed upstream after 1.11.1), so a 401 to CONNECT is an auth
//!   failure of the proxy too. Its log names requests (`CONNECT 127.0.0.1:X`) but never the
//!   credentials.
//! - `microsocks -i 127.0.0.1 -p P -b 127.0.0.2 -u user -P pass`:
//!   `curl -x socks5://user:pass@127.0.0.1:P http://127.0.0.1:X/` (and `socks5h://` with a
//!   host name) reaches the server from 127.0.0.2; a wrong password or none is refused in the
//!   user/password sub-negotiation (curl: "User was rejected by the SOCKS5 server (1 2)").
//!   It blanks its own argv, so `ps` does not show the password.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    KEY, LoggedWorker, TestApp, WorkerProcess, data_dir, evaluate_over_cdp, eventually, eventually_async, fixtures,
};
use crate::tasks::{run as run_task, task};

/// The proxies' user name (not a secret: it shows in redacted URLs).
const USER: &str = "bw-user";

/// The address every proxy here connects out from: what the page server sees when a request
/// went through a proxy.
const PROXIED_FROM: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

// ---------------------------------------------------------------------------------------------
// Ports and processes
// ---------------------------------------------------------------------------------------------

/// A loopback port nobody listens on now (bound to port 0, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts on `127.0.0.1:port`.
async fn wait_listening(port: u16, what: &str) {
    let up = eventually_async(Duration::from_secs(10), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await;
    assert!(up, "{what} listens on 127.0.0.1:{port}");
}

/// `scheme://user:password@127.0.0.1:port`.
fn proxy_url(scheme: &str, password: &str, port: u16) -> String {
    format!("{scheme}://{USER}:{password}@127.0.0.1:{port}")
}

/// What the worker must show instead: the same URL with the password as `***`.
fn redacted_url(scheme: &str, port: u16) -> String {
    format!("{scheme}://{USER}:***@127.0.0.1:{port}")
}

/// Every form a credential could leak in: the password itself and the Basic token carrying it.
fn secrets(password: &str) -> [String; 2] {
    [password.to_string(), base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"))]
}

/// Asserts that `text` (an answer, metrics, a log) holds none of `password`'s forms.
fn assert_no_secret(text: &str, password: &str, what: &str) {
    for secret in secrets(password) {
        assert!(!text.contains(&secret), "{what} gives away a credential ({secret}):\n{text}");
    }
}

/// Debian's `tinyproxy`, HTTP with Basic auth, in the foreground, killed when dropped.
struct Tinyproxy {
    dir: tempfile::TempDir,
    port: u16,
    _child: tokio::process::Child,
}

impl Tinyproxy {
    /// Starts one that accepts `USER`/`password`, connects out from 127.0.0.2 and allows
    /// CONNECT to `connect_ports` only.
    async fn start(password: &str, connect_ports: &[u16]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nBind {PROXIED_FROM}\nTimeout 30\nMaxClients 50\nAllow 127.0.0.1\n\
             BasicAuth {USER} {password}\nLogLevel Info\nLogFile \"{}\"\n",
            log.display()
        );
        for connect in connect_ports {
            config.push_str(&format!("ConnectPort {connect}\n"));
        }
        let file = dir.path().join("tinyproxy.conf");
        std::fs::write(&file, config).unwrap();
        let child = tokio::process::Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("tinyproxy.stderr")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("tinyproxy runs (scripts/install-deps.sh installs it)");
        wait_listening(port, "tinyproxy").await;
        Self { dir, port, _child: child }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What it logged so far (requests it forwarded, refusals).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

/// Debian's `microsocks`, SOCKS5 with user/password, killed when dropped (or `stop`ped).
struct Microsocks {
    port: u16,
    child: tokio::process::Child,
}

impl Microsocks {
    /// Starts one that accepts `USER`/`password` and connects out from 127.0.0.2.
    async fn start(password: &str) -> Self {
        let port = free_port();
        let child = tokio::process::Command::new("microsocks")
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-b", &PROXIED_FROM.to_string()])
            .args(["-u", USER, "-P", password])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("microsocks runs (scripts/install-deps.sh installs it)");
        wait_listening(port, "microsocks").await;
        Self { port, child }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it and waits until it is gone: its port refuses connections from then on.
    async fn stop(mut self) {
        self.child.kill().await.expect("microsocks is killed");
        let port = self.port;
        let closed = eventually_async(Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err()
        })
        .await;
        assert!(closed, "nothing listens on 127.0.0.1:{port} any more");
    }
}

// ---------------------------------------------------------------------------------------------
// The test's own page server
// ---------------------------------------------------------------------------------------------

/// One request the page server answered.
#[derive(Debug, Clone)]
struct Visit {
    peer: IpAddr,
    /// Path and query.
    target: String,
    accept_language: Option<String>,
}

type Visits = Arc<Mutex<Vec<Visit>>>;

/// A page server on 127.0.0.1 that records who asked for what: `/identity` (a plain page) and
/// `/ice` (gathers WebRTC candidates). Stops when dropped.
struct PageServer {
    addr: SocketAddr,
    visits: Visits,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    async fn start() -> Self {
        let visits = Visits::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(serve_page).with_state(visits.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
        });
        Self { addr, visits, task }
    }

    fn url(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }

    /// `127.0.0.1:port`, for `--egress-allow`.
    fn egress(&self) -> String {
        self.addr.to_string()
    }

    fn visits(&self) -> Vec<Visit> {
        self.visits.lock().unwrap().clone()
    }

    /// Visits whose path and query start with `target`.
    fn visits_to(&self, target: &str) -> Vec<Visit> {
        self.visits().into_iter().filter(|v| v.target.starts_with(target)).collect()
    }

    /// Asserts that every request so far came through a proxy (none straight from the host).
    fn assert_all_proxied(&self) {
        let direct: Vec<Visit> = self.visits().into_iter().filter(|v| v.peer != PROXIED_FROM).collect();
        assert!(direct.is_empty(), "requests that did not go through the proxy: {direct:?}");
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Records the request, then serves the page for its path.
async fn serve_page(
    State(visits): State<Visits>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let accept_language = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let target = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    visits.lock().unwrap().push(Visit { peer: peer.ip(), target, accept_language });
    match uri.path() {
        "/identity" => Html("<!doctype html><title>Identity</title><p>Who am I?</p>").into_response(),
        "/ice" => Html(ICE_PAGE).into_response(),
        _ => AxumStatus::NOT_FOUND.into_response(),
    }
}

/// Gathers ICE candidates of a data-channel offer with no ICE servers, for up to 3 s (until
/// the null candidate), into `window.candidates`; `window.ice` resolves to the candidates and
/// the offer's SDP (or to `{error}` when WebRTC is not there at all).
const ICE_PAGE: &str = r#"<!doctype html><title>ICE</title><script>
window.candidates = [];
window.ice = (async () => {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.createDataChannel('probe');
  const gathered = new Promise(resolve => {
    pc.onicecandidate = event => {
      if (event.candidate) window.candidates.push(event.candidate.candidate); else resolve();
    };
    setTimeout(resolve, 3000);
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered;
  const sdp = pc.localDescription ? pc.localDescription.sdp : '';
  pc.close();
  return {candidates: window.candidates, sdp};
})().catch(error => ({candidates: window.candidates, sdp: '', error: String(error)}));
</script>"#;

/// Every IP literal in the ICE candidates and in the offer's `c=` and `a=candidate` lines, with
/// the line it is in (`o=` is left out: Chromium always writes 127.0.0.1 there).
fn ice_addresses(ice: &Value) -> Vec<(IpAddr, String)> {
    let candidates = ice["candidates"].as_array().cloned().unwrap_or_default();
    let sdp = ice["sdp"].as_str().unwrap_or_default();
    let lines = candidates
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .chain(sdp.lines().filter(|l| l.starts_with("c=") || l.starts_with("a=candidate")).map(str::to_string));
    let mut found = Vec::new();
    for line in lines {
        for token in line.split_whitespace() {
            if let Ok(ip) = token.parse::<IpAddr>() {
                found.push((ip, line.clone()));
            }
        }
    }
    found
}

/// This machine's own addresses: local IPv4 routes, every IPv6 interface address and what
/// `hostname -I` lists.
fn host_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    // `/proc/net/fib_trie`: an address line `|-- 192.0.2.2` followed by `/32 host LOCAL`.
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let mut last = None;
    for line in trie.lines() {
        if let Some(ip) = line.trim_start().strip_prefix("|-- ").and_then(|a| a.trim().parse::<Ipv4Addr>().ok()) {
            last = Some(ip);
        } else if line.contains("/32 host LOCAL")
            && let Some(ip) = last
        {
            found.push(IpAddr::V4(ip));
        }
    }
    // `/proc/net/if_inet6`: 32 hex digits per address.
    let inet6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    for line in inet6.lines() {
        if let Some(bits) = line.split_whitespace().next().and_then(|hex| u128::from_str_radix(hex, 16).ok()) {
            found.push(IpAddr::V6(Ipv6Addr::from(bits)));
        }
    }
    if let Ok(output) = std::process::Command::new("hostname").arg("-I").output() {
        found.extend(
            String::from_utf8_lossy(&output.stdout).split_whitespace().filter_map(|a| a.parse::<IpAddr>().ok()),
        );
    }
    found.sort();
    found.dedup();
    found
}

// ---------------------------------------------------------------------------------------------
// Worker helpers
// ---------------------------------------------------------------------------------------------

/// A test worker that may reach `addrs` on loopback (the fixture server is always allowed).
async fn worker_allowing(addrs: &[&str]) -> TestApp {
    let flags: Vec<&str> = addrs.iter().flat_map(|addr| ["--egress-allow", *addr]).collect();
    TestApp::start_with(&flags).await
}

/// `/metrics` as text.
async fn metrics(app: &TestApp) -> String {
    app.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap()
}

/// The value of the series `name` whose labels include every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let set = series.strip_prefix(name)?.strip_prefix('{')?.strip_suffix('}')?;
        let pairs: Vec<&str> = set.split(',').collect();
        let matches = labels.iter().all(|(key, want)| pairs.contains(&format!("{key}=\"{want}\"").as_str()));
        if matches { value.parse().ok() } else { None }
    })
}

/// A script that returns what the page's code sees of its identity.
const IDENTITY_SCRIPT: &str = "({timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone, \
                               language: navigator.language, languages: navigator.languages})";

/// What the page's code sees of its identity.
async fn page_identity(app: &TestApp, id: &str) -> Value {
    app.page_eval(id, IDENTITY_SCRIPT).await
}

/// Sends a JSON body to the worker binary at `base` and returns (status, parsed body).
async fn call_at(base: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request is answered");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `kill -9` of a worker binary: its browsers live on (SPEC §3.8), its listeners are gone.
async fn kill_9(mut worker: WorkerProcess) {
    let pid = nix::unistd::Pid::from_raw(worker.child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    worker.child.wait().await.unwrap();
}

/// The profile `id` in a `GET /api/v1/profiles` answer.
fn profile_in<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list["profiles"].as_array()?.iter().find(|p| p["profile_id"] == id)
}

/// Asserts that the page server saw `target` and only from `peer`.
fn assert_seen_from(pages: &PageServer, target: &str, peer: IpAddr) {
    let visits = pages.visits_to(target);
    assert!(!visits.is_empty(), "the page server saw no request for {target}");
    assert!(visits.iter().all(|v| v.peer == peer), "{target} wanted from {peer} only: {visits:?}");
}

/// Checks a session's `proxy` object: the URL redacted, the identity fields as expected.
fn assert_proxy_json(session: &Value, url: &str, identity: &[(&str, &str)], password: &str) {
    assert_eq!(session["proxy"]["url"].as_str(), Some(url), "{session}");
    for (field, want) in identity {
        assert_eq!(session["proxy"][*field].as_str(), Some(*want), "proxy.{field}: {session}");
    }
    assert_no_secret(&session.to_string(), password, "the session JSON");
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_http_proxy_with_auth_carries_the_session_and_its_country_identity() {
    const PASSWORD: &str = "tiny-Secret-4711";
    let pages = PageServer::start().await;
    let proxy = Tinyproxy::start(PASSWORD, &[pages.addr.port()]).await;
    let app = worker_allowing(&[&proxy.addr(), &pages.egress()]).await;

    let body = json!({
        "url": pages.url("/identity"),
        "proxy": {"url": proxy_url("http", PASSWORD, proxy.port), "country": "DE"},
    });
    let session = app.create(body).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let identity = [("country", "DE"), ("timezone", "Europe/Berlin"), ("locale", "de-DE")];
    assert_proxy_json(&session, &redacted_url("http", proxy.port), &identity, PASSWORD);
    let (status, got) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_proxy_json(&got, &redacted_url("http", proxy.port), &identity, PASSWORD);
    let (_, list) = app.call(Method::GET, "/api/v2/sessions", None).await;
    assert_no_secret(&list.to_string(), PASSWORD, "the session list");

    // The page was fetched through tinyproxy, with the German Accept-Language.
    let visits = pages.visits_to("/identity");
    assert!(!visits.is_empty(), "the page server saw no request for /identity");
    pages.assert_all_proxied();
    for visit in &visits {
        let language = visit.accept_language.as_deref().unwrap_or_default();
        assert!(language.starts_with("de-DE"), "Accept-Language {language:?} in {visit:?}");
    }
    let seen = page_identity(&app, &id).await;
    assert_eq!(seen["timeZone"], "Europe/Berlin", "{seen}");
    assert_eq!(seen["language"], "de-DE", "{seen}");
    assert_eq!(seen["languages"], json!(["de-DE", "de"]), "{seen}");

    // WebRTC gathers no address of the host: no UDP candidate at all, not even an mDNS-named
    // host candidate (Chromium lifts the mDNS mask for pages granted the camera), since UDP
    // cannot go through the proxy.
    let (status, nav) = app
        .call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": pages.url("/ice")})))
        .await;
    assert_eq!(status, StatusCode::OK, "{nav}");
    let ice = app.page_eval(&id, "window.ice").await;
    let leaked: Vec<(IpAddr, String)> =
        ice_addresses(&ice).into_iter().filter(|(ip, _)| !ip.is_unspecified()).collect();
    assert!(leaked.is_empty(), "WebRTC gives away addresses: {leaked:?}\n{ice}");
    let udp: Vec<&Value> = ice["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c.as_str().is_some_and(|c| c.contains(" udp ")))
        .collect();
    assert!(udp.is_empty(), "WebRTC gathers UDP candidates around the proxy: {udp:?}");
    let host = host_addresses();
    assert!(!host.is_empty(), "the host's own addresses are known");
    let of_host: Vec<(IpAddr, String)> = ice_addresses(&ice).into_iter().filter(|(ip, _)| host.contains(ip)).collect();
    assert!(of_host.is_empty(), "WebRTC gives away the host's addresses {host:?}: {of_host:?}");
    pages.assert_all_proxied();

    // Bytes through the proxy are counted under its address, never its credentials.
    let counted = eventually_async(Duration::from_secs(10), || async {
        let text = metrics(&app).await;
        ["sent", "received"].iter().all(|direction| {
            let labels = [("proxy", proxy.addr()), ("direction", direction.to_string())];
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            sample(&text, "bw_proxy_bytes_total", &labels).is_some_and(|bytes| bytes > 0.0)
        })
    })
    .await;
    let text = metrics(&app).await;
    assert!(counted, "bw_proxy_bytes_total for {} in both directions:\n{text}", proxy.addr());
    assert_no_secret(&text, PASSWORD, "/metrics");
    assert_no_secret(&proxy.log(), PASSWORD, "tinyproxy's log");

    assert_eq!(app.delete(&id).await.0, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_socks5_proxy_with_auth_carries_the_session_with_an_explicit_identity() {
    const PASSWORD: &str = "socks-Secret-0815";
    let pages = PageServer::start().await;
    let proxy = Microsocks::start(PASSWORD).await;
    let app = worker_allowing(&[&proxy.addr(), &pages.egress()]).await;

    let body = json!({
        "url": pages.url("/identity"),
        "proxy": {"url": proxy_url("socks5", PASSWORD, proxy.port), "timezone": "Asia/Tokyo", "locale": "ja-JP"},
    });
    let session = app.create(body).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let identity = [("timezone", "Asia/Tokyo"), ("locale", "ja-JP")];
    assert_proxy_json(&session, &redacted_url("socks5", proxy.port), &identity, PASSWORD);

    let visits = pages.visits_to("/identity");
    assert!(!visits.is_empty(), "the page server saw no request for /identity");
    pages.assert_all_proxied();
    for visit in &visits {
        let language = visit.accept_language.as_deref().unwrap_or_default();
        assert!(language.starts_with("ja-JP"), "Accept-Language {language:?} in {visit:?}");
    }
    let seen = page_identity(&app, &id).await;
    assert_eq!(seen["timeZone"], "Asia/Tokyo", "{seen}");
    assert_eq!(seen["language"], "ja-JP", "{seen}");
    assert_eq!(seen["languages"][0], "ja-JP", "{seen}");

    let counted = eventually_async(Duration::from_secs(10), || async {
        let labels = [("proxy", proxy.addr()), ("direction", "received".to_string())];
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sample(&metrics(&app).await, "bw_proxy_bytes_total", &labels).is_some_and(|bytes| bytes > 0.0)
    })
    .await;
    assert!(counted, "bw_proxy_bytes_total for {}:\n{}", proxy.addr(), metrics(&app).await);
    assert_no_secret(&metrics(&app).await, PASSWORD, "/metrics");

    assert_eq!(app.delete(&id).await.0, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_proxy_that_refuses_the_credentials_or_is_not_there_answers_502_proxy_error() {
    const PASSWORD: &str = "right-Secret-1234";
    const WRONG: &str = "wrong-Secret-9876";
    let pages = PageServer::start().await;
    let http = Tinyproxy::start(PASSWORD, &[pages.addr.port()]).await;
    let socks = Microsocks::start(PASSWORD).await;
    let closed = free_port();
    let closed_addr = format!("127.0.0.1:{closed}");
    let app = worker_allowing(&[&http.addr(), &socks.addr(), &closed_addr, &pages.egress()]).await;

    // (what, proxy URL, its host:port, the error kind counted). tinyproxy 1.11 answers wrong
    // credentials with 401 rather than 407 (see the top of this file): still an auth failure.
    let cases = [
        ("HTTP, wrong password", proxy_url("http", WRONG, http.port), http.addr(), "auth"),
        ("SOCKS5, wrong password", proxy_url("socks5", WRONG, socks.port), socks.addr(), "auth"),
        ("a closed port", proxy_url("http", WRONG, closed), closed_addr.clone(), "unreachable"),
    ];
    let mut problems = Vec::new();
    for (n, (what, url, addr, _)) in cases.iter().enumerate() {
        // On a profile: a proxy failure is not the profile's (its breaker counts nothing).
        let body =
            json!({"url": pages.url(&format!("/identity?case={n}")), "proxy": {"url": url}, "profile_id": "p-fails"});
        let (status, answer) = app.call(Method::POST, "/api/v2/sessions", Some(body)).await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        if status != StatusCode::BAD_GATEWAY
            || answer["error"]["code"] != "proxy_error"
            || !message.contains(addr.as_str())
        {
            problems.push(format!("{what}: {status} {answer} (wanted 502 proxy_error naming {addr})"));
        }
        let text = answer.to_string();
        if [WRONG, PASSWORD].iter().flat_map(|p| secrets(p)).any(|secret| text.contains(&secret)) {
            problems.push(format!("{what}: the answer gives away a credential: {text}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let (_, profiles) = app.call(Method::GET, "/api/v1/profiles", None).await;
    let profile = &profiles["profiles"][0];
    assert_eq!(
        (profile["profile_id"].as_str(), profile["consecutive_failures"].as_u64()),
        (Some("p-fails"), Some(0)),
        "{profiles}"
    );
    // Nothing went around the proxy, and no browser is left behind.
    assert!(pages.visits().is_empty(), "requests reached the page without the proxy: {:?}", pages.visits());
    let gone = eventually(Duration::from_secs(10), || app.browsers().is_empty()).await;
    assert!(gone, "no browser is left behind: {:?}", app.browsers());

    let counted = eventually_async(Duration::from_secs(10), || async {
        let text = metrics(&app).await;
        cases.iter().all(|(_, _, addr, kind)| {
            sample(&text, "bw_proxy_errors_total", &[("proxy", addr), ("kind", kind)]).is_some_and(|n| n >= 1.0)
        })
    })
    .await;
    let text = metrics(&app).await;
    assert!(counted, "bw_proxy_errors_total counts every failure by proxy and kind:\n{text}");
    assert_no_secret(&text, WRONG, "/metrics");
    assert_no_secret(&text, PASSWORD, "/metrics");
    app.stop().await;
}

#[tokio::test]
async fn proxy_settings_are_validated_before_any_browser_starts() {
    const PASSWORD: &str = "valid-Secret-2468";
    let closed = free_port();
    let closed_addr = format!("127.0.0.1:{closed}");
    let app = worker_allowing(&[&closed_addr]).await;
    let http = proxy_url("http", PASSWORD, closed);
    // (what, proxy object, words the answer must hold)
    let cases = [
        ("an ftp:// proxy", json!({"url": proxy_url("ftp", PASSWORD, closed)}), None),
        (
            "a country of several zones without a time zone",
            json!({"url": http, "country": "US"}),
            Some("America/New_York"),
        ),
        ("an unknown time zone", json!({"url": http, "timezone": "Mars/Base"}), None),
        ("an unknown country", json!({"url": http, "country": "ZZ"}), None),
    ];
    let mut problems = Vec::new();
    for (what, proxy, words) in cases {
        let (status, answer) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"proxy": proxy}))).await;
        let text = answer.to_string();
        if status != StatusCode::UNPROCESSABLE_ENTITY || answer["error"]["code"] != "validation_failed" {
            problems.push(format!("{what}: {status} {answer} (wanted 422 validation_failed)"));
        }
        if let Some(words) = words
            && !text.contains(words)
        {
            problems.push(format!("{what}: the answer does not mention {words}: {text}"));
        }
        if secrets(PASSWORD).iter().any(|secret| text.contains(secret)) {
            problems.push(format!("{what}: the answer gives away the password: {text}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(app.browsers().is_empty(), "a refused create started a browser: {:?}", app.browsers());
    app.stop().await;
}

#[tokio::test]
async fn credentials_stay_out_of_the_log_and_a_default_proxy_serves_sessions_without_one() {
    const DEFAULT_PASSWORD: &str = "default-Secret-1357";
    const SESSION_PASSWORD: &str = "session-Secret-8642";
    let pages = PageServer::start().await;
    let default_proxy = Tinyproxy::start(DEFAULT_PASSWORD, &[pages.addr.port()]).await;
    let socks = Microsocks::start(SESSION_PASSWORD).await;
    let data = data_dir();
    let fixture_addr = fixtures().trim_start_matches("http://");
    let allow = [fixture_addr, &default_proxy.addr(), &socks.addr(), &pages.egress()].join(",");
    let default_url = proxy_url("http", DEFAULT_PASSWORD, default_proxy.port);
    let env = [("BW_LOG", "debug"), ("BW_EGRESS_ALLOW", allow.as_str()), ("BW_DEFAULT_PROXY", default_url.as_str())];
    let worker = LoggedWorker::spawn(data.path(), &env).await;

    // A session with a proxy of its own, opened and closed.
    let body = json!({
        "url": pages.url("/identity?via=session"),
        "proxy": {"url": proxy_url("socks5", SESSION_PASSWORD, socks.port), "country": "DE"},
    });
    let (status, session) = worker.call(Method::POST, "/api/v2/sessions", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["session_id"].as_str().unwrap();
    assert_eq!(worker.call(Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await.0, StatusCode::OK);
    assert!(!pages.visits_to("/identity?via=session").is_empty(), "the proxied session reached the page");

    // A session without one goes through the default proxy (tinyproxy, not microsocks).
    let body = json!({"url": pages.url("/identity?via=default")});
    let (status, session) = worker.call(Method::POST, "/api/v2/sessions", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_no_secret(&session.to_string(), DEFAULT_PASSWORD, "the session JSON");
    let id = session["session_id"].as_str().unwrap();
    assert!(!pages.visits_to("/identity?via=default").is_empty(), "the default-proxied session reached the page");
    pages.assert_all_proxied();
    let page_addr = pages.egress();
    let through_default = eventually(Duration::from_secs(10), || default_proxy.log().contains(&page_addr)).await;
    assert!(through_default, "tinyproxy forwarded no request to {page_addr}:\n{}", default_proxy.log());
    assert_eq!(worker.call(Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await.0, StatusCode::OK);

    let (code, log) = worker.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("browser-worker listening"), "the whole log was read:\n{log}");
    assert_no_secret(&log, DEFAULT_PASSWORD, "the worker's log");
    assert_no_secret(&log, SESSION_PASSWORD, "the worker's log");
}

#[tokio::test]
async fn a_proxied_session_keeps_its_proxy_and_identity_across_a_kill_9_restart() {
    const PASSWORD: &str = "restart-Secret-3141";
    let pages = PageServer::start().await;
    let proxy = Tinyproxy::start(PASSWORD, &[pages.addr.port()]).await;
    let data = data_dir();
    let fixture_addr = fixtures().trim_start_matches("http://");
    let allow = [fixture_addr, &proxy.addr(), &pages.egress()].join(",");
    let env = [("BW_EGRESS_ALLOW", allow.as_str())];
    let worker = WorkerProcess::spawn(data.path(), &env).await;
    let body = json!({
        "url": pages.url("/identity?at=create"),
        "proxy": {"url": proxy_url("http", PASSWORD, proxy.port), "country": "DE"},
    });
    let (status, session) = call_at(&worker.base, Method::POST, "/api/v2/sessions", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["session_id"].as_str().unwrap().to_string();
    let identity = [("country", "DE"), ("timezone", "Europe/Berlin"), ("locale", "de-DE")];
    assert_proxy_json(&session, &redacted_url("http", proxy.port), &identity, PASSWORD);
    assert_seen_from(&pages, "/identity?at=create", PROXIED_FROM);

    // The browser outlives the worker; the new one takes the session's own egress listener
    // back on its port, chained to the same proxy (straight out, the page would see 127.0.0.1).
    kill_9(worker).await;
    let restarted = WorkerProcess::spawn(data.path(), &env).await;
    let (status, got) = call_at(&restarted.base, Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["proxy"], session["proxy"], "the same proxy view after the restart: {got}");
    assert_no_secret(&got.to_string(), PASSWORD, "the session JSON after the restart");
    let navigate = format!("/api/v2/sessions/{id}/navigate");
    let (status, nav) =
        call_at(&restarted.base, Method::POST, &navigate, Some(json!({"url": pages.url("/identity?at=restart")})))
            .await;
    assert_eq!(status, StatusCode::OK, "{nav}");
    assert_seen_from(&pages, "/identity?at=restart", PROXIED_FROM);
    pages.assert_all_proxied();

    // The page still sees the German identity (through a CDP client of the new worker).
    let (status, cdp) = call_at(&restarted.base, Method::POST, &format!("/api/v2/sessions/{id}/cdp-token"), None).await;
    assert_eq!(status, StatusCode::OK, "{cdp}");
    let seen = evaluate_over_cdp(cdp["cdp_url"].as_str().unwrap(), IDENTITY_SCRIPT).await;
    assert_eq!(seen["timeZone"], "Europe/Berlin", "{seen}");
    assert_eq!(seen["language"], "de-DE", "{seen}");

    let (status, closed) = call_at(&restarted.base, Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let browsers = crate::support::recorded_browsers(data.path());
    assert!(browsers.is_empty(), "no browser is left behind: {browsers:?}");
    assert_eq!(restarted.terminate().await.0, Some(0));
}

#[tokio::test]
async fn a_profile_default_proxy_serves_the_profiles_sessions_and_no_other() {
    const PASSWORD: &str = "profile-Secret-2718";
    let pages = PageServer::start().await;
    let proxy = Microsocks::start(PASSWORD).await;
    let app = worker_allowing(&[&proxy.addr(), &pages.egress()]).await;
    let redacted = redacted_url("socks5", proxy.port);
    let identity = [("timezone", "Asia/Tokyo"), ("locale", "ja-JP")];

    let spec = json!({"url": proxy_url("socks5", PASSWORD, proxy.port), "timezone": "Asia/Tokyo", "locale": "ja-JP"});
    let (status, profile) = app.call(Method::PUT, "/api/v1/profiles/p-proxied/proxy", Some(spec)).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_proxy_json(&profile, &redacted, &identity, PASSWORD);
    let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
    assert_proxy_json(profile_in(&list, "p-proxied").expect("the profile is listed"), &redacted, &identity, PASSWORD);
    assert_no_secret(&list.to_string(), PASSWORD, "the profile list");

    // A session on the profile naming no proxy goes through the profile's.
    let session = app.create(json!({"profile_id": "p-proxied", "url": pages.url("/identity?profile=proxied")})).await;
    assert_proxy_json(&session, &redacted, &identity, PASSWORD);
    assert_seen_from(&pages, "/identity?profile=proxied", PROXIED_FROM);
    assert_eq!(app.delete(session["session_id"].as_str().unwrap()).await.0, StatusCode::OK);

    // A session on another profile (no default) goes straight out.
    let session = app.create(json!({"profile_id": "p-direct", "url": pages.url("/identity?profile=direct")})).await;
    assert!(session["proxy"].is_null(), "{session}");
    assert_seen_from(&pages, "/identity?profile=direct", IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(app.delete(session["session_id"].as_str().unwrap()).await.0, StatusCode::OK);

    let (status, cleared) = app.call(Method::DELETE, "/api/v1/profiles/p-proxied/proxy", None).await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert!(cleared["proxy"].is_null(), "{cleared}");
    // (what, path, body, status, error code)
    let cases = [
        (
            "a country of several zones without a time zone",
            "/api/v1/profiles/p-proxied/proxy",
            json!({"url": proxy_url("socks5", PASSWORD, proxy.port), "country": "US"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "a profile id that names none",
            "/api/v1/profiles/..%2Fx/proxy",
            json!({"url": proxy_url("socks5", PASSWORD, proxy.port)}),
            StatusCode::NOT_FOUND,
            "profile_not_found",
        ),
    ];
    for (what, path, body, want, code) in cases {
        let (status, answer) = app.call(Method::PUT, path, Some(body)).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (want, Some(code)), "{what}: {answer}");
        assert_no_secret(&answer.to_string(), PASSWORD, what);
    }
    let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
    assert!(profile_in(&list, "p-proxied").is_some_and(|p| p["proxy"].is_null()), "a refused PUT sets nothing: {list}");
    assert!(profile_in(&list, "..").is_none() && profile_in(&list, "../x").is_none(), "{list}");
    app.stop().await;
}

#[tokio::test]
async fn a_proxy_that_dies_mid_session_fails_navigation_but_not_the_profile_or_the_session() {
    const PASSWORD: &str = "dying-Secret-1618";
    let pages = PageServer::start().await;
    let proxy = Microsocks::start(PASSWORD).await;
    let addr = proxy.addr();
    let app = worker_allowing(&[&addr, &pages.egress()]).await;
    let body = json!({
        "profile_id": "p-dying",
        "url": pages.url("/identity?proxy=up"),
        "proxy": {"url": proxy_url("socks5", PASSWORD, proxy.port)},
    });
    let session = app.create(body).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    assert_seen_from(&pages, "/identity?proxy=up", PROXIED_FROM);

    proxy.stop().await;
    let navigate = format!("/api/v2/sessions/{id}/navigate");
    let (status, answer) =
        app.call(Method::POST, &navigate, Some(json!({"url": pages.url("/identity?proxy=down")}))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("proxy_error")), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&addr), "the error names the proxy {addr}: {answer}");
    assert_no_secret(&answer.to_string(), PASSWORD, "the proxy error");
    assert!(pages.visits_to("/identity?proxy=down").is_empty(), "went around the dead proxy: {:?}", pages.visits());

    // The session stays open (the breaker side is the create test's: navigate never feeds it).
    let (status, got) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!((status, got["state"].as_str()), (StatusCode::OK, Some("ready")), "{got}");
    assert_eq!(app.delete(&id).await.0, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_v1_task_goes_through_its_proxy_and_a_bad_proxy_is_refused_before_any_browser() {
    const PASSWORD: &str = "task-Secret-1414";
    let pages = PageServer::start().await;
    let proxy = Tinyproxy::start(PASSWORD, &[pages.addr.port()]).await;
    let app = worker_allowing(&[&proxy.addr(), &pages.egress()]).await;

    let mut body = task("t-proxy-bad", "greenhouse/post");
    body["proxy"] = json!({"url": proxy_url("ftp", PASSWORD, proxy.port)});
    let (status, answer) = run_task(&app, body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "{answer}"
    );
    assert!(answer["error"]["message"].as_str().unwrap_or_default().contains("proxy"), "names the field: {answer}");
    assert_no_secret(&answer.to_string(), PASSWORD, "the refusal");
    assert!(app.browsers().is_empty(), "a refused task started a browser: {:?}", app.browsers());

    // Any page will do: the task may end without a form to fill.
    let mut body = task("t-proxy", "greenhouse/post");
    body["job_url"] = json!(pages.url("/identity?task=t-proxy"));
    body.as_object_mut().unwrap().remove("resume_file_url");
    body["proxy"] = json!({"url": proxy_url("http", PASSWORD, proxy.port), "country": "DE"});
    let (status, result) = run_task(&app, body).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["task_id"], "t-proxy", "{result}");
    assert_seen_from(&pages, "/identity?task=t-proxy", PROXIED_FROM);
    pages.assert_all_proxied();
    assert_no_secret(&result.to_string(), PASSWORD, "the task result");
    app.stop().await;
}

/// The loopback port of the egress listener the browser of process group `pgid` goes through.
fn listener_port(pgid: i32) -> u16 {
    let cmdline = std::fs::read(format!("/proc/{pgid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    let server = cmdline.split('\0').find_map(|arg| arg.strip_prefix("--proxy-server=http://127.0.0.1:")).unwrap();
    server.parse().unwrap()
}

#[tokio::test]
async fn a_page_of_one_session_cannot_reach_another_sessions_proxy_listener() {
    const PASSWORD: &str = "listener-Secret-2468";
    let pages = PageServer::start().await;
    let http = Tinyproxy::start(PASSWORD, &[pages.addr.port()]).await;
    // Private egress open: only the worker's protection of its own ports stands in the way.
    let (proxy_addr, pages_addr) = (http.addr(), pages.egress());
    let flags = ["--allow-private-egress", "true", "--egress-allow", &proxy_addr, "--egress-allow", &pages_addr];
    let app = TestApp::start_with(&flags).await;
    let body =
        json!({"url": pages.url("/identity?session=b"), "proxy": {"url": proxy_url("http", PASSWORD, http.port)}});
    let b = app.create(body).await;
    let b_port = listener_port(app.browsers()[0].pgid);
    let a = app.create(json!({"url": pages.url("/identity?session=a")})).await;

    // A's page asks for B's listener, as a plain request and as a tunnel: the egress rules
    // refuse the worker's own port before anything reaches it.
    let refused = |text: &str| sample(text, "bw_egress_refused_total", &[("reason", "worker")]).unwrap_or(0.0);
    let before = refused(&metrics(&app).await);
    let a_id = a["session_id"].as_str().unwrap();
    let script = format!(
        "Promise.all([fetch('http://127.0.0.1:{b_port}/', {{mode: 'no-cors'}}).then(() => 'ok', () => 'failed'), \
         fetch('https://127.0.0.1:{b_port}/', {{mode: 'no-cors'}}).then(() => 'ok', () => 'failed')])"
    );
    let outcome = app.page_eval(a_id, &script).await;
    assert_eq!(outcome[1], "failed", "the tunnel to B's listener is refused: {outcome}");
    let after = refused(&metrics(&app).await);
    assert!(after >= before + 2.0, "both requests were refused as the worker's own port ({before} → {after})");
    app.delete(a_id).await;
    app.delete(b["session_id"].as_str().unwrap()).await;
}
