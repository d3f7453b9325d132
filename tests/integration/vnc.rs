//! Human takeover: per-session displays, the token-gated VNC bridge and the noVNC viewer, seen
//! by a real noVNC client in a second (headless) Chromium.

use std::time::Duration;

use browser_worker::token::Scope;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

use crate::support::{SECRET, TestApp, eventually, eventually_async, fixtures, forge_token, group_members, websocket};

/// The colour at the centre and at two other points of a screenshot of session `id`.
async fn colours(app: &TestApp, id: &str) -> Vec<(u8, u8, u8)> {
    let shot = app.request(Method::GET, &format!("/api/v2/sessions/{id}/screenshot")).send().await.unwrap();
    let png = shot.bytes().await.unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png.as_ref())).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (w, h) = (info.width, info.height);
    [(w / 2, h / 2), (w / 3, h / 2), (2 * w / 3, 2 * h / 3)]
        .iter()
        .map(|&(x, y)| {
            let at = ((y * w + x) as usize) * channels;
            (buf[at], buf[at + 1], buf[at + 2])
        })
        .collect()
}

/// SysV shared memory segments created by any of `pids` that still exist (x11vnc makes ~60;
/// killed without SIGTERM, it leaks them until the machine runs out).
fn shm_segments_of(pids: &[i32]) -> usize {
    let table = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(4)?.parse::<i32>().ok())
        .filter(|cpid| pids.contains(cpid))
        .count()
}

/// A second worker whose pages may reach `app`'s API: it plays the person's browser.
async fn viewer_worker(app: &TestApp) -> TestApp {
    TestApp::start_with(&["--egress-allow", app.base.trim_start_matches("http://")]).await
}

fn greenish((r, g, b): (u8, u8, u8)) -> bool {
    g > 200 && r < 60 && b < 60
}

fn blueish((r, g, b): (u8, u8, u8)) -> bool {
    b > 200 && r < 60 && g < 60
}

#[tokio::test]
async fn each_viewer_sees_its_own_session_and_tokens_open_only_their_session() {
    let app =
        TestApp::start_with(&["--display-mode", "per-session", "--max-sessions", "4", "--token-secret", SECRET]).await;
    let green = app.create(json!({"display": true, "url": format!("{}/pages/green.html", fixtures())})).await;
    let blue = app.create(json!({"headless": false, "url": format!("{}/pages/blue.html", fixtures())})).await;
    let (green_id, blue_id) = (green["session_id"].as_str().unwrap(), blue["session_id"].as_str().unwrap());
    for session in [&green, &blue] {
        let vnc = &session["vnc"];
        assert!(vnc["ws_url"].as_str().unwrap().starts_with(&app.base.replace("http://", "ws://")), "{vnc}");
        assert!(vnc["viewer_url"].as_str().unwrap().contains("/viewer?token="), "{vnc}");
        assert!(vnc["expires_at"].is_string());
    }

    // A real noVNC client: each viewer page, opened in a headless session of another worker
    // (a person's browser; the worker's own pages can never reach its API).
    let watcher = viewer_worker(&app).await;
    let mut viewers = Vec::new();
    for session in [&green, &blue] {
        let viewer = watcher.create(json!({"url": session["vnc"]["viewer_url"]})).await;
        viewers.push(viewer["session_id"].as_str().unwrap().to_string());
    }
    let shows = |viewer: String, check: fn((u8, u8, u8)) -> bool| {
        let app = &watcher;
        async move {
            eventually_async(Duration::from_secs(30), || {
                let viewer = viewer.clone();
                async move { colours(app, &viewer).await.into_iter().all(check) }
            })
            .await
        }
    };
    assert!(
        shows(viewers[0].clone(), greenish).await,
        "the green session's viewer shows green: {:?}",
        colours(&watcher, &viewers[0]).await
    );
    assert!(
        shows(viewers[1].clone(), blueish).await,
        "the blue session's viewer shows blue: {:?}",
        colours(&watcher, &viewers[1]).await
    );
    assert!(!colours(&watcher, &viewers[0]).await.into_iter().any(blueish), "a viewer sees only its own session");

    // Tokens: the socket and the viewer page need a VNC token of that very session.
    let green_ws = green["vnc"]["ws_url"].as_str().unwrap();
    let base_ws = green_ws.split('?').next().unwrap();
    let blue_token = blue["vnc"]["token"].as_str().unwrap();
    for (why, token) in [
        ("a token of another session", blue_token.to_string()),
        ("an expired token", forge_token(green_id, Scope::Vnc, -5)),
        ("a CDP token", forge_token(green_id, Scope::Cdp, 600)),
        ("no token", String::new()),
    ] {
        let url = format!("{base_ws}?token={token}");
        assert_eq!(websocket(&url, None, Some("binary")).await.err(), Some(StatusCode::UNAUTHORIZED), "{why}");
        let page = app.client.get(format!("{}/vnc/{green_id}/viewer?token={token}", app.base)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::UNAUTHORIZED, "viewer with {why}");
    }
    // A new token works; the session object shows it.
    let (status, minted) = app.call(Method::POST, &format!("/api/v2/sessions/{green_id}/vnc-token"), None).await;
    assert_eq!(status, StatusCode::OK, "{minted}");
    let (_, info) = app.call(Method::GET, &format!("/api/v2/sessions/{green_id}"), None).await;
    assert_eq!(info["vnc"]["token"], minted["token"]);

    // The bridge speaks RFB; closing the session closes the socket and stops its display.
    let mut socket = websocket(minted["ws_url"].as_str().unwrap(), None, Some("binary")).await.unwrap();
    let greeting = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap().unwrap().unwrap();
    assert!(greeting.into_data().starts_with(b"RFB 003."), "the VNC server's greeting comes through");
    let displays_before = app.browsers().len();
    let (status, _) = app.delete(green_id).await;
    assert_eq!(status, StatusCode::OK);
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "closing the session closes the viewer's socket");
    // Its browser, Xvfb and x11vnc pid records are gone (three records fewer).
    assert!(eventually(Duration::from_secs(5), || app.browsers().len() == displays_before - 3).await);
    assert_eq!(app.call(Method::GET, &format!("/api/v2/sessions/{blue_id}"), None).await.0, StatusCode::OK);

    let data_dir = app.data_dir.path().to_path_buf();
    let groups: Vec<i32> = app.browsers().iter().map(|r| r.pgid).collect();
    assert!(shm_segments_of(&groups) > 0, "x11vnc's shared memory is seen while it runs");
    watcher.stop().await;
    app.stop().await;
    assert!(crate::support::recorded_browsers(&data_dir).is_empty(), "no process records remain");
    for &pgid in &groups {
        assert!(group_members(pgid).is_empty(), "no browser, Xvfb or x11vnc remains: {:?}", group_members(pgid));
    }
    assert_eq!(shm_segments_of(&groups), 0, "x11vnc's shared memory is released");
}

/// The next message that is not a ping, within 10 s.
async fn next_message(socket: &mut crate::support::Socket) -> Message {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => {}
            Ok(Some(Ok(message))) => return message,
            other => panic!("no message from the bridge: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_vnc_bridge_answers_pings_joins_fragments_and_closes_cleanly() {
    let app = TestApp::start_with(&["--display-mode", "per-session", "--token-secret", SECRET]).await;
    let session = app.create(json!({"display": true})).await;
    let url = session["vnc"]["ws_url"].as_str().unwrap();

    let mut socket = websocket(url, None, Some("binary")).await.unwrap();
    assert_eq!(next_message(&mut socket).await.into_data().as_ref(), b"RFB 003.008\n");
    socket.send(Message::Ping("still there?".into())).await.unwrap();
    assert_eq!(next_message(&mut socket).await, Message::Pong("still there?".into()));
    // Our version in two fragments reaches x11vnc as one: it goes on to offer security types.
    socket.send(Message::Frame(Frame::message(&b"RFB 003"[..], OpCode::Data(Data::Binary), false))).await.unwrap();
    socket.send(Message::Frame(Frame::message(&b".008\n"[..], OpCode::Data(Data::Continue), true))).await.unwrap();
    let offer = next_message(&mut socket).await.into_data();
    assert!(offer.len() >= 2 && offer[0] as usize == offer.len() - 1 && offer[1..].contains(&1), "{offer:?}");
    // Our Close is echoed with its code.
    socket.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() }))).await.unwrap();
    match next_message(&mut socket).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a Close, got {other:?}"),
    }

    // A client frame without a mask is a protocol error (RFC 6455 §5.1): Close 1002.
    let addr = url.trim_start_matches("ws://").split('/').next().unwrap().to_string();
    let path = &url[url.find("/vnc/").unwrap()..];
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    raw.write_all(&[0x82, 2, b'h', b'i']).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the bridge closes the connection");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "RFC 6455's example accept key: {text}");
    let close = [0x88, 16, 0x03, 0xEA];
    assert!(received.windows(4).any(|w| w == close), "Close 1002 after the greeting: {received:?}");

    // The session's display keeps serving new viewers.
    let mut again = websocket(url, None, Some("binary")).await.unwrap();
    assert_eq!(next_message(&mut again).await.into_data().as_ref(), b"RFB 003.008\n");
    app.stop().await;
}

#[tokio::test]
async fn a_display_that_dies_fails_its_session_and_everything_is_released() {
    let app = TestApp::start_with(&["--display-mode", "per-session"]).await;
    let session = app.create(json!({"display": true})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let records = app.browsers();
    assert_eq!(records.len(), 3, "a browser, an Xvfb and an x11vnc are recorded: {records:?}");
    let comm = |pgid: i32| std::fs::read_to_string(format!("/proc/{pgid}/comm")).unwrap_or_default().trim().to_string();
    let xvfb = records.iter().find(|r| comm(r.pgid) == "Xvfb").expect("Xvfb runs in its own process group").pgid;
    assert!(records.iter().any(|r| comm(r.pgid) == "x11vnc"), "x11vnc runs in its own process group");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(xvfb), nix::sys::signal::Signal::SIGKILL).unwrap();
    let failed = eventually_async(Duration::from_secs(10), || async {
        let (status, body) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
        status == StatusCode::GONE && body["error"]["details"]["state"] == "failed"
    })
    .await;
    assert!(failed, "the session fails when its display dies");
    assert!(
        eventually(Duration::from_secs(5), || app.browsers().is_empty()).await,
        "browser and x11vnc are stopped too"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_displays_sessions_are_headless_and_have_no_vnc() {
    let app = TestApp::start_with(&["--token-secret", SECRET]).await;
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap();
    assert!(session["vnc"].is_null());
    let (status, body) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/vnc-token"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")));
    let token = forge_token(id, Scope::Vnc, 600);
    let page = app.client.get(format!("{}/vnc/{id}/viewer?token={token}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::CONFLICT);
    // noVNC's static files are served without a token.
    let script = app.client.get(format!("{}/vnc/static/core/rfb.js", app.base)).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    let missing = app.client.get(format!("{}/vnc/static/nope.js", app.base)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.json::<serde_json::Value>().await.unwrap()["error"]["code"], "not_found");
    app.stop().await;
}

/// A shared display shows every session's window, so a session that stops for a person there
/// hands out no VNC link as if it were its own: its takeover webhook carries the live view.
#[tokio::test]
async fn on_a_shared_display_takeover_goes_through_the_live_view() {
    use crate::webhooks::{Behaviour, Receiver, worker_reaching};
    let existing = ExistingDisplay::start().await;
    let port = existing.port.to_string();
    let hook = Receiver::start(Behaviour::Ok).await;
    let flags = ["--display-mode", "shared", "--vnc-display", &existing.display, "--vnc-port", &port];
    let app = worker_reaching(&[&hook], &flags).await;
    let session = app.create(json!({"display": true, "callback_url": hook.url})).await;
    assert_eq!(session["vnc"]["shared"], true, "{session}");
    let id = session["session_id"].as_str().unwrap();
    let gated = json!({"url": format!("{}/forms/generic/gated.html", fixtures())});
    let (status, _) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(gated)).await;
    assert_eq!(status, StatusCode::OK);
    let captcha = || hook.bodies().into_iter().find(|b| b["type"] == "captcha_detected").map(|b| b["data"].clone());
    assert!(eventually(Duration::from_secs(10), || captcha().is_some()).await, "{:?}", hook.kinds());
    let data = captcha().unwrap();
    assert!(data["vnc_url"].is_null() && data["viewer_url"].is_null(), "no shared VNC link: {data}");
    assert!(data["live_url"].as_str().is_some_and(|u| u.contains(&format!("/live/{id}/viewer?token="))), "{data}");
    app.stop().await;
    existing.stop().await;
}

/// An Xvfb and an x11vnc started by the test, as an operator's existing display would be.
struct ExistingDisplay {
    display: String,
    port: u16,
    children: Vec<tokio::process::Child>,
}

impl ExistingDisplay {
    async fn start() -> Self {
        let number = (180..260).find(|n| !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()).unwrap();
        let display = format!(":{number}");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let xvfb = tokio::process::Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        assert!(
            eventually(Duration::from_secs(10), || std::path::Path::new(&format!("/tmp/.X11-unix/X{number}")).exists())
                .await
        );
        let vnc = tokio::process::Command::new("x11vnc")
            .args([
                "-display",
                &display,
                "-localhost",
                "-rfbport",
                &port.to_string(),
                "-forever",
                "-shared",
                "-nopw",
                "-noipv6",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let listening = eventually_async(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        assert!(listening, "x11vnc listens");
        Self { display, port, children: vec![vnc, xvfb] }
    }

    /// SIGTERM, so that Xvfb removes its lock file; SIGKILL if that is not enough.
    async fn stop(mut self) {
        for child in &mut self.children {
            if let Some(pid) = child.id() {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

#[tokio::test]
async fn shared_mode_shows_sessions_on_the_existing_display() {
    let existing = ExistingDisplay::start().await;
    let port = existing.port.to_string();
    let app =
        TestApp::start_with(&["--display-mode", "shared", "--vnc-display", &existing.display, "--vnc-port", &port])
            .await;
    let session = app.create(json!({"display": true, "url": format!("{}/pages/green.html", fixtures())})).await;
    assert_eq!(session["vnc"]["shared"], true, "the token opens a display every session shows on: {session}");
    let watcher = viewer_worker(&app).await;
    let viewer = watcher.create(json!({"url": session["vnc"]["viewer_url"]})).await;
    let viewer_id = viewer["session_id"].as_str().unwrap().to_string();
    let green = eventually_async(Duration::from_secs(30), || async {
        colours(&watcher, &viewer_id).await.into_iter().all(greenish)
    })
    .await;
    assert!(
        green,
        "the viewer shows the session's page on the shared display: {:?}",
        colours(&watcher, &viewer_id).await
    );
    watcher.stop().await;
    app.stop().await;
    // The worker stopped its browsers but left the operator's display alone.
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", existing.port)).await.is_ok(), "x11vnc still runs");
    existing.stop().await;
}

#[tokio::test]
async fn a_restart_reaps_displays_orphaned_by_kill_9() {
    use crate::support::{KEY, WorkerProcess, recorded_browsers};
    use browser_worker::browser::process::reap_adopted;
    let data = crate::support::data_dir();
    let mut worker = WorkerProcess::spawn(data.path(), &[("BW_DISPLAY_MODE", "per-session")]).await;
    let created = reqwest::Client::new()
        .post(format!("{}/api/v2/sessions", worker.base))
        .bearer_auth(KEY)
        .json(&json!({"display": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let orphans: Vec<i32> = recorded_browsers(data.path()).iter().map(|r| r.pgid).collect();
    assert_eq!(orphans.len(), 3, "browser, Xvfb and x11vnc are recorded");
    let xvfb = *orphans
        .iter()
        .find(|pgid| std::fs::read_to_string(format!("/proc/{pgid}/comm")).unwrap_or_default().trim() == "Xvfb")
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{xvfb}/cmdline")).unwrap();
    let display = String::from_utf8_lossy(cmdline.split(|b| *b == 0).nth(1).unwrap()).into_owned();
    let lock = format!("/tmp/.X{}-lock", display.trim_start_matches(':'));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker.child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    worker.child.wait().await.unwrap();
    assert!(!group_members(xvfb).is_empty(), "the display outlives the killed worker");
    // Without its session record, nothing is re-attached: the processes are orphans.
    crate::support::forget_session_records(data.path());

    let restarted = WorkerProcess::spawn(data.path(), &[("BW_DISPLAY_MODE", "per-session")]).await;
    let gone = eventually(Duration::from_secs(5), || {
        orphans.iter().for_each(|pgid| reap_adopted(*pgid));
        orphans.iter().all(|pgid| group_members(*pgid).is_empty())
    })
    .await;
    assert!(gone, "orphans still running: {:?}", orphans.iter().map(|p| group_members(*p)).collect::<Vec<_>>());
    // The number is free again: a display of a test running alongside may hold it by now.
    let holder = std::fs::read_to_string(&lock).unwrap_or_default();
    assert_ne!(holder.trim(), xvfb.to_string(), "the killed Xvfb's lock file is removed");
    assert_eq!(shm_segments_of(&orphans), 0, "the orphaned x11vnc released its shared memory");
    assert!(recorded_browsers(data.path()).is_empty());
    assert_eq!(restarted.terminate().await.0, Some(0));
}
