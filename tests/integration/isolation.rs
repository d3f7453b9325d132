//! Isolation, written as the attacks: a page in session A, or A's CDP token, tries to reach
//! session B's browser, display and files, or the worker's own files, API and environment.
//! Every attack here succeeded before the egress proxy and the CDP allow-list; each must fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use browser_worker::browser::display::VncAddr;
use browser_worker::session::SessionId;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Socket, TestApp, eventually, fixtures, websocket};

/// A loopback listener that is not on the egress allow-list and counts who connects to it.
async fn canary() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, hits)
}

/// A raw CDP client on a session's passthrough.
pub(crate) struct Cdp {
    socket: Socket,
    next: u64,
    /// Every event received so far.
    pub events: Vec<Value>,
}

impl Cdp {
    pub(crate) async fn open(app: &TestApp, id: &str) -> Self {
        let (status, access) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/cdp-token"), None).await;
        assert_eq!(status, StatusCode::OK, "{access}");
        Self::at(access["cdp_url"].as_str().unwrap()).await
    }

    /// A client on any CDP endpoint (a passthrough URL with its token, or a browser's own).
    pub(crate) async fn at(url: &str) -> Self {
        let socket = websocket(url, None, None).await.expect("the endpoint accepts the connection");
        Self { socket, next: 100, events: Vec::new() }
    }

    /// Sends raw text and returns the reply to request `id` (keeping the events before it).
    async fn raw(&mut self, text: String, id: u64) -> Value {
        self.socket.send(Message::Text(text.into())).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let reply: Value = serde_json::from_str(&text).unwrap();
                        if reply["id"] == id {
                            return reply;
                        }
                        if reply["method"].is_string() {
                            self.events.push(reply);
                        }
                    }
                    other => panic!("the passthrough closed: {other:?}"),
                }
            }
        })
        .await
        .expect("CDP answers in time")
    }

    pub(crate) async fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next += 1;
        let mut message = json!({"id": self.next, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        self.raw(message.to_string(), self.next).await
    }

    /// Attaches to the first page target (flat) and returns its session id.
    pub(crate) async fn attach_page(&mut self) -> String {
        let targets = self.call("Target.getTargets", json!({}), None).await;
        let page = targets["result"]["targetInfos"].as_array().unwrap().iter().find(|t| t["type"] == "page").cloned();
        let attached = self
            .call("Target.attachToTarget", json!({"targetId": page.unwrap()["targetId"], "flatten": true}), None)
            .await;
        attached["result"]["sessionId"].as_str().unwrap().to_string()
    }

    pub(crate) async fn evaluate(&mut self, session: &str, expression: &str) -> Value {
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
                Some(session),
            )
            .await;
        reply["result"]["result"]["value"].clone()
    }
}

pub(crate) fn session_of(app: &TestApp, id: &str) -> Arc<browser_worker::session::Session> {
    let registry = &app.server.as_ref().unwrap().app.registry;
    registry.get(SessionId::parse(id).unwrap()).unwrap()
}

/// The pid of the x11vnc serving `socket`.
fn x11vnc_pid(socket: &std::path::Path) -> Option<i32> {
    let wanted = socket.to_str()?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args.first().is_some_and(|a| a.ends_with(b"x11vnc")) && args.contains(&wanted.as_bytes());
        ours.then_some(pid)
    })
}

/// TCP sockets in LISTEN state that process `pid` holds (from `/proc/net/tcp{,6}` and its fds).
fn tcp_listeners_of(pid: i32) -> Vec<String> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|link| link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(3) == Some(&"0A") && fields.get(9).is_some_and(|inode| inodes.iter().any(|i| i == inode))
        })
        .collect()
}

/// JavaScript that opens a WebSocket and says whether it opened.
fn ws_probe(url: &str) -> String {
    format!(
        "new Promise(done => {{ const ws = new WebSocket({url:?}); ws.onopen = () => {{ ws.close(); done('open'); }}; \
         ws.onerror = () => done('refused'); setTimeout(() => done('timeout'), 5000); }})"
    )
}

#[tokio::test]
async fn a_page_reaches_no_other_session_no_display_and_no_loopback_port() {
    let (port, hits) = canary().await;
    let app = TestApp::start_with(&["--display-mode", "per-session", "--max-sessions", "2"]).await;
    let a = app.create(json!({"url": format!("{}/pages/green.html", fixtures()), "display": false})).await;
    let b = app.create(json!({"display": true})).await;
    let (a, b) = (a["session_id"].as_str().unwrap(), b["session_id"].as_str().unwrap());
    let devtools = session_of(&app, b).cdp_endpoint().to_string();
    // B's VNC server has no TCP port at all, only a socket in the worker's private run dir.
    let Some(VncAddr::Unix(socket)) = session_of(&app, b).vnc_addr().cloned() else {
        panic!("B's VNC is a Unix socket")
    };
    use std::os::unix::fs::PermissionsExt;
    let dir_mode = std::fs::metadata(socket.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "the socket's directory is the worker's alone");
    let x11vnc = x11vnc_pid(&socket).expect("B's x11vnc runs");
    assert!(tcp_listeners_of(x11vnc).is_empty(), "x11vnc listens on TCP: {:?}", tcp_listeners_of(x11vnc));
    assert!(!tcp_listeners_of(std::process::id() as i32).is_empty(), "the check sees this process's API port");

    // A's page: a fetch and an image from a loopback port, a WebSocket to B's DevTools.
    let script = format!(
        "(async () => {{ \
           const fetched = await fetch('http://127.0.0.1:{port}/x', {{mode: 'no-cors'}}).then(() => 'answered', () => 'failed'); \
           new Image().src = 'http://127.0.0.1:{port}/img'; \
           return {{fetched, devtools: await {}}}; \
         }})()",
        ws_probe(&devtools),
    );
    let seen = app.page_eval(a, &script).await;
    assert_eq!(seen["devtools"], "refused", "{seen}");

    // A redirect and a navigation to loopback are refused where the traffic leaves.
    let bounce = format!("{}/bounce?to=http://127.0.0.1:{port}/redirected", fixtures());
    // Whatever the navigation answers, the canary below must see no connection.
    app.call(Method::POST, &format!("/api/v2/sessions/{a}/navigate"), Some(json!({"url": bounce}))).await;
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        "http://[::ffff:169.254.169.254]/latest/meta-data".to_string(),
        "http://[::ffff:0.0.0.0]/".to_string(),
        "http://metadata.google.internal./".to_string(),
    ] {
        let (status, answer) =
            app.call(Method::POST, &format!("/api/v2/sessions/{a}/navigate"), Some(json!({"url": url}))).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_url")), "{url}");
    }

    // A's CDP token: a target on B's DevTools listing, a page fetch of a loopback port.
    let mut cdp = Cdp::open(&app, a).await;
    let http_devtools = devtools.replace("ws://", "http://");
    let listing = http_devtools.split("/devtools").next().unwrap().to_string() + "/json/list";
    let created = cdp.call("Target.createTarget", json!({"url": listing}), None).await;
    let target = created["result"]["targetId"].as_str().expect("a web URL may be opened").to_string();
    let attached = cdp.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}), None).await;
    let session = attached["result"]["sessionId"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = cdp.evaluate(&session, "document.body ? document.body.innerText : ''").await;
    assert!(!body.to_string().contains("webSocketDebuggerUrl"), "B's DevTools listing was read: {body}");
    let page = cdp.attach_page().await;
    cdp.evaluate(&page, &format!("fetch('http://127.0.0.1:{port}/cdp', {{mode: 'no-cors'}}).catch(() => 0)")).await;
    cdp.call("Page.navigate", json!({"url": format!("http://127.0.0.1:{port}/navigated")}), Some(&page)).await;

    assert_eq!(hits.load(Ordering::SeqCst), 0, "a page or A's token reached a loopback port");
    // B is untouched and still works.
    let (status, info) = app.call(Method::GET, &format!("/api/v2/sessions/{b}"), None).await;
    assert_eq!((status, info["state"].as_str()), (StatusCode::OK, Some("ready")), "{info}");
    app.stop().await;
}

#[tokio::test]
async fn a_cdp_token_reads_no_files_closes_no_browser_and_drops_no_downloads_outside_its_session() {
    let app = TestApp::start().await;
    let session = app.create(json!({"url": format!("{}/pages/form.html", fixtures())})).await;
    let id = session["session_id"].as_str().unwrap();
    let data_dir = app.data_dir.path().to_path_buf();
    let mut cdp = Cdp::open(&app, id).await;

    // Attacks that must be answered with an error and never reach the browser.
    let api_key = format!("file://{}/api-key", data_dir.display());
    let refused = [
        json!({"id": 1, "method": "Target.createTarget", "params": {"url": api_key}}),
        json!({"id": 2, "method": "Target.createTarget", "params": {"url": format!("file://{}/", data_dir.display())}}),
        json!({"id": 3, "method": "Target.createTarget", "params": {"url": "chrome://version"}}),
        json!({"id": 4, "method": "Browser.crash"}),
        json!({"id": 5, "method": "Browser.close"}),
        json!({"id": 6, "method": "Target.exposeDevToolsProtocol", "params": {"targetId": "x"}}),
        json!({"id": 7, "method": "DOM.setFileInputFiles", "params": {"files": [format!("{}/api-key", data_dir.display())], "backendNodeId": 1}}),
        // A context with a proxy of its own would send its pages around the egress proxy.
        json!({"id": 11, "method": "Target.createBrowserContext", "params": {"proxyServer": "direct://"}}),
    ];
    for message in refused {
        let id = message["id"].as_u64().unwrap();
        let reply = cdp.raw(message.to_string(), id).await;
        assert!(reply["error"]["message"].is_string(), "{message} was not refused: {reply}");
    }
    // Escaped and duplicated method names are judged as the browser would read them.
    let reply = cdp.raw(r#"{"id":8,"method":"Browser.clos\u0065"}"#.into(), 8).await;
    assert!(reply["error"].is_object(), "{reply}");
    let reply = cdp.raw(r#"{"id":9,"method":"Page.enable","method":"Browser.close"}"#.into(), 9).await;
    assert!(reply["error"].is_object(), "{reply}");

    // Downloads: the client asks for the pid-record dir, the file lands in the session's own dir.
    let run_dir = data_dir.join("run");
    let reply =
        cdp.call("Browser.setDownloadBehavior", json!({"behavior": "allow", "downloadPath": run_dir}), None).await;
    assert!(reply["error"].is_null(), "{reply}");
    let page = cdp.attach_page().await;
    cdp.call("Page.navigate", json!({"url": format!("{}/download", fixtures())}), Some(&page)).await;
    let files_dir = session_of(&app, id).files_dir.clone();
    let downloaded = files_dir.join("downloads/999999.json");
    assert!(eventually(Duration::from_secs(15), || downloaded.exists()).await, "the download is in the session's dir");
    assert!(!run_dir.join("999999.json").exists(), "a download reached the pid records");

    // The browser is alive: the session still navigates.
    let (status, answer) = app
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{id}/navigate"),
            Some(json!({"url": format!("{}/pages/green.html", fixtures())})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A binary frame ends the connection.
    cdp.socket.send(Message::Binary(br#"{"id":10,"method":"Browser.close"}"#.to_vec().into())).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match cdp.socket.next().await {
                Some(Ok(Message::Text(_))) => continue,
                _ => return,
            }
        }
    });
    assert!(closed.await.is_ok(), "a binary frame closes the passthrough");
    let (status, info) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!((status, info["state"].as_str()), (StatusCode::OK, Some("ready")), "{info}");
    app.stop().await;
}

#[tokio::test]
async fn browsers_get_no_worker_environment_and_state_files_are_private() {
    let app = TestApp::start().await;
    let session = app.create(json!({})).await;
    let browser = app.browsers().into_iter().next().expect("a recorded browser");
    let environ = std::fs::read(format!("/proc/{}/environ", browser.pgid)).unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&environ)
        .split('\0')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    // The worker (this test process) has CARGO_* and more; none of it may reach the browser
    // beyond PATH and HOME (Debian's wrapper script adds CHROME_* variables of its own).
    let worker: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    assert!(worker.iter().any(|k| k.starts_with("CARGO")), "the test runs under cargo");
    for name in names.iter().filter(|n| worker.contains(n)) {
        assert!(["PATH", "HOME", "PWD"].contains(&name.as_str()), "the browser inherited {name}: {names:?}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data_dir = app.data_dir.path();
    // The browser user may pass through the data dir (to its own directories), not list it.
    assert_eq!(mode(data_dir), 0o711);
    for entry in std::fs::read_dir(data_dir).unwrap().flatten() {
        let passable = ["tmp", "profiles", "displays"].iter().any(|p| entry.file_name() == *p);
        let open = mode(&entry.path()) & 0o077;
        assert_eq!(open, if passable { 0o011 } else { 0 }, "{} is open to others", entry.path().display());
    }
    for entry in std::fs::read_dir(data_dir.join("run")).unwrap().flatten() {
        assert_eq!(mode(&entry.path()) & 0o077, 0, "{} is readable by others", entry.path().display());
    }
    assert_eq!(mode(&browser.user_data_dir) & 0o077, 0);
    app.delete(session["session_id"].as_str().unwrap()).await;
    app.stop().await;
}

#[tokio::test]
async fn start_up_deletes_nothing_a_pid_record_points_at() {
    // A record dropped into run/ (by a download, before the allow-list) naming a directory
    // elsewhere: the next start must leave that directory alone.
    let data_dir = crate::support::data_dir();
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("keep.txt"), "precious").unwrap();
    std::fs::create_dir_all(data_dir.path().join("run")).unwrap();
    let record = json!({"pgid": 999_999, "user_data_dir": victim.path(), "ephemeral": true});
    std::fs::write(data_dir.path().join("run/999999.json"), record.to_string()).unwrap();
    let server = browser_worker::Server::start(
        crate::support::test_config(data_dir.path(), &[]),
        vec![crate::support::KEY.into()],
    )
    .await
    .unwrap();
    assert!(victim.path().join("keep.txt").exists(), "start-up deleted a directory outside <data_dir>/tmp");
    assert!(!data_dir.path().join("run/999999.json").exists(), "the stale record is gone");
    server.stop().await;
}

#[tokio::test]
async fn random_methods_do_not_grow_the_metrics() {
    let app = TestApp::start().await;
    let client = reqwest::Client::new();
    for n in 0..20 {
        let method = Method::from_bytes(format!("ATTACK{n}X").as_bytes()).unwrap();
        let _ = client.request(method, format!("{}/nowhere/{n}", app.base)).send().await.unwrap();
    }
    let metrics = app.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("bw_http_request_duration_seconds"), "requests are still counted");
    assert!(!metrics.contains("ATTACK"), "a client-chosen method became a label");
    app.stop().await;
}

/// Runs xdotool on an X display, as a person at the session's viewer would type.
async fn xdotool(display: &str, args: &[&str]) {
    let status = tokio::process::Command::new("xdotool").env("DISPLAY", display).args(args).status().await;
    assert!(status.expect("xdotool runs").success(), "xdotool {args:?}");
}

#[tokio::test]
async fn a_person_at_the_viewer_opens_no_local_file_and_no_internal_page() {
    let app = TestApp::start_with(&["--display-mode", "per-session"]).await;
    let secret = app.data_dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-VALUE").unwrap();
    let session = app.create(json!({"display": true, "url": format!("{}/pages/green.html", fixtures())})).await;
    let id = session["session_id"].as_str().unwrap();
    let browser = app.browsers().into_iter().find(|r| !r.user_data_dir.as_os_str().is_empty()).expect("the browser");
    let environ = std::fs::read(format!("/proc/{}/environ", browser.pgid)).unwrap();
    let display = String::from_utf8_lossy(&environ)
        .split('\0')
        .find_map(|kv| kv.strip_prefix("DISPLAY=").map(str::to_string))
        .expect("a headful browser has a DISPLAY");

    // The address bar, a new tab, a new window: each asked for the file or Chromium's own pages.
    let file = format!("file://{}", secret.display());
    for (keys, url) in [("ctrl+l", file.as_str()), ("ctrl+t", file.as_str()), ("ctrl+n", "chrome://version")] {
        xdotool(&display, &["key", keys]).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        xdotool(&display, &["type", "--delay", "5", url]).await;
        xdotool(&display, &["key", "Return"]).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }

    // Every page the browser has shows neither the file nor an internal page.
    let mut cdp = Cdp::open(&app, id).await;
    let mut texts = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let settled = loop {
        texts.clear();
        let targets = cdp.call("Target.getTargets", json!({}), None).await;
        let pages: Vec<Value> = targets["result"]["targetInfos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["type"] == "page")
            .cloned()
            .collect();
        for page in &pages {
            let attached =
                cdp.call("Target.attachToTarget", json!({"targetId": page["targetId"], "flatten": true}), None).await;
            let Some(session) = attached["result"]["sessionId"].as_str() else { continue };
            let text =
                cdp.evaluate(session, "document.documentElement ? document.documentElement.innerText : ''").await;
            texts.push(format!("{} {}", page["url"], text));
        }
        let clean = pages.len() >= 2 && texts.iter().all(|t| !t.contains("chrome://") && !t.contains("Command Line"));
        if clean || std::time::Instant::now() > deadline {
            break clean;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(texts.iter().all(|t| !t.contains("TOP-SECRET-VALUE")), "a local file was shown: {texts:?}");
    assert!(settled, "an internal page stayed open, or the new tab and window never opened: {texts:?}");
    app.stop().await;
}

/// Reads from a socket until it closes; returns the close reason, if one came.
async fn closed_reason(socket: &mut Socket) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.reason.to_string()),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the socket closes")
}

#[tokio::test]
async fn a_newer_token_revokes_the_older_and_a_socket_ends_when_its_token_expires() {
    let app = TestApp::start_with(&["--token-secret", crate::support::SECRET]).await;
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap();
    let mint = async || {
        let (status, access) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/cdp-token"), None).await;
        assert_eq!(status, StatusCode::OK, "{access}");
        access["cdp_url"].as_str().unwrap().to_string()
    };
    let first = mint().await;
    let mut attached = websocket(&first, None, None).await.expect("the newest token opens the socket");
    let second = mint().await;
    assert_eq!(closed_reason(&mut attached).await.as_deref(), Some("token_revoked"));
    assert_eq!(websocket(&first, None, None).await.err(), Some(StatusCode::UNAUTHORIZED), "a revoked token");
    assert!(websocket(&second, None, None).await.is_ok(), "the newest token opens the socket");
    // A token of the newest generation (2) that lives 3 s: its socket is closed when it expires.
    let issuer = browser_worker::token::TokenIssuer::new(crate::support::SECRET.as_bytes(), Duration::from_secs(60));
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let short = issuer.mint_until(SessionId::parse(id).unwrap(), browser_worker::token::Scope::Cdp, 2, expires_at);
    let short = format!("{}?token={}", second.split('?').next().unwrap(), short.token);
    let mut attached = websocket(&short, None, None).await.expect("a short-lived token opens the socket");
    assert_eq!(closed_reason(&mut attached).await.as_deref(), Some("token_expired"));
    assert_eq!(websocket(&short, None, None).await.err(), Some(StatusCode::UNAUTHORIZED), "an expired token");
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::start_with(&["--header-timeout-secs", "1"]).await;
    let mut slow = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    // The server closes the connection (408 or a plain close); without a timeout it never would.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was still open after 20 s");
    // Idle keep-alive connections end the same way.
    let mut idle = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(20), idle.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "an idle keep-alive connection was still open after 20 s");
    app.stop().await;
}

#[tokio::test]
async fn a_session_takes_a_bounded_number_of_attached_clients() {
    let app = TestApp::start().await;
    let session = app.create(json!({})).await;
    let cdp = session["cdp_url"].as_str().unwrap();
    let mut open = Vec::new();
    for _ in 0..browser_worker::session::MAX_CLIENTS {
        open.push(websocket(cdp, Some(crate::support::KEY), None).await.expect("under the limit"));
    }
    assert_eq!(websocket(cdp, Some(crate::support::KEY), None).await.err(), Some(StatusCode::TOO_MANY_REQUESTS));
    open.pop().unwrap().close(None).await.unwrap();
    let reopened = crate::support::eventually_async(Duration::from_secs(10), || async {
        match websocket(cdp, Some(crate::support::KEY), None).await {
            Ok(socket) => {
                drop(socket);
                true
            }
            Err(_) => false,
        }
    });
    assert!(reopened.await, "a slot is free again once a client leaves");
    app.stop().await;
}

#[tokio::test]
async fn with_private_egress_allowed_the_workers_own_ports_stay_out_of_reach() {
    // Development mode (BW_ALLOW_PRIVATE_EGRESS=true) opens loopback, but not the worker's API,
    // its egress proxy or any browser's DevTools port.
    let app = TestApp::start_with(&["--allow-private-egress", "true", "--max-sessions", "2"]).await;
    let a = app.create(json!({})).await;
    let b = app.create(json!({})).await;
    let (a, b) = (a["session_id"].as_str().unwrap(), b["session_id"].as_str().unwrap());
    let devtools = session_of(&app, b).cdp_endpoint().replace("ws://", "http://");
    let listing = devtools.split("/devtools").next().unwrap().to_string() + "/json/list";
    let mut cdp = Cdp::open(&app, a).await;
    for (url, secret) in
        [(listing.as_str(), "webSocketDebuggerUrl"), (&format!("{}/health", app.base), "uptime_seconds")]
    {
        let created = cdp.call("Target.createTarget", json!({"url": url}), None).await;
        let target = created["result"]["targetId"].as_str().expect("a web URL may be opened").to_string();
        let attached = cdp.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}), None).await;
        let session = attached["result"]["sessionId"].as_str().unwrap().to_string();
        let mut body = Value::Null;
        for _ in 0..20 {
            body = cdp.evaluate(&session, "document.body ? document.body.innerText : ''").await;
            if body.as_str().is_some_and(|b| !b.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!body.to_string().contains(secret), "{url} was read: {body}");
        assert!(body.to_string().contains("own ports"), "the egress proxy refused {url}: {body}");
    }
    app.stop().await;
}
