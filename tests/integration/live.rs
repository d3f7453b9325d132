//! The live view (SPEC §3.7): JPEG frames from a headless session, trusted input from a control
//! token, none from a view token, tokens that open one session only, new tabs followed, several
//! viewers at once, and the human-in-the-loop flows of a V1 task through the viewer page (a
//! CAPTCHA solved, a copilot review corrected).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{SECRET, Socket, TestApp, eventually_async, fixtures, forge_token, node, submissions, websocket};
use crate::tasks::{held_for_review, run, task};

const LIVE_PAGE: &str = "/pages/live.html";

async fn worker() -> TestApp {
    TestApp::start_with(&["--token-secret", SECRET]).await
}

/// Opens a headless session on the live fixture and returns its id.
async fn session_on(app: &TestApp, page: &str) -> String {
    let session = app.create(json!({"url": format!("{}{page}", fixtures()), "headless": true})).await;
    session["session_id"].as_str().unwrap().to_string()
}

/// `POST …/live-token` with `mode` (asserts 200).
async fn live_token(app: &TestApp, id: &str, mode: Option<&str>) -> Value {
    let body = mode.map(|m| json!({"mode": m}));
    let (status, access) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/live-token"), body).await;
    assert_eq!(status, StatusCode::OK, "{access}");
    access
}

async fn connect(access: &Value) -> Socket {
    websocket(access["ws_url"].as_str().unwrap(), None, None).await.expect("the live socket upgrades")
}

/// What the server sent next: a frame (`Ok`) or a JSON message (`Err`); `None` once closed.
async fn next(socket: &mut Socket) -> Option<Result<Vec<u8>, Value>> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.expect("the server speaks");
        match message {
            Some(Ok(Message::Binary(data))) => return Some(Ok(data.to_vec())),
            Some(Ok(Message::Text(text))) => return Some(Err(serde_json::from_str(&text).unwrap())),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn next_frame(socket: &mut Socket) -> Vec<u8> {
    loop {
        match next(socket).await.expect("the socket stays open") {
            Ok(frame) => return frame,
            Err(_) => continue,
        }
    }
}

/// The next JSON message matching `wanted` (frames and other messages are skipped), within 20 s
/// in all (a page that keeps sending frames, or the server's pings, never make it wait forever).
async fn next_json(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    let wait = async {
        loop {
            if let Err(message) = next(socket).await.expect("the socket stays open")
                && wanted(&message)
            {
                return message;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait).await.expect("the awaited message arrives in 20 s")
}

/// Reads until the server closes the socket, within 20 s in all.
async fn closes(socket: &mut Socket) {
    let drain = async { while next(socket).await.is_some() {} };
    tokio::time::timeout(Duration::from_secs(20), drain).await.expect("the server closes the socket in 20 s");
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
}

fn is_jpeg(frame: &[u8]) -> bool {
    frame.starts_with(&[0xFF, 0xD8, 0xFF]) && frame.ends_with(&[0xFF, 0xD9])
}

async fn background(app: &TestApp, id: &str) -> String {
    app.page_eval(id, "getComputedStyle(document.body).backgroundColor").await.as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_control_viewer_sees_jpeg_frames_and_drives_the_page_with_trusted_input() {
    let app = worker().await;
    let id = session_on(&app, LIVE_PAGE).await;
    let access = live_token(&app, &id, None).await;
    assert_eq!(access["mode"], "control", "{access}");
    let mut socket = connect(&access).await;
    // The first page message and the first frame, in whichever order they come (a still page
    // sends its frame once).
    let (mut page, mut frame) = (None, None);
    while page.is_none() || frame.is_none() {
        match next(&mut socket).await.expect("the socket stays open") {
            Ok(f) if frame.is_none() => frame = Some(f),
            Err(m) if m["type"] == "page" && m["width"].as_u64() > Some(0) => page = Some(m),
            _ => {}
        }
    }
    let (page, frame) = (page.unwrap_or_default(), frame.unwrap_or_default());
    assert!(page["url"].as_str().unwrap().ends_with(LIVE_PAGE), "{page}");
    assert_eq!(page["title"], "Live fixture");
    assert!(is_jpeg(&frame), "a binary message is one JPEG frame");

    // Bad messages are answered, and the socket goes on.
    for (bad, code) in [
        (json!("not an object"), "invalid_message"),
        (json!({"type": "eval", "expression": "document.body.remove()"}), "invalid_message"),
        (json!({"type": "text", "text": "x".repeat(2_001)}), "invalid_input"),
    ] {
        send(&mut socket, bad.clone()).await;
        let error = next_json(&mut socket, |m| m["type"] == "error").await;
        assert_eq!(error["code"], code, "{bad}: {error}");
    }
    socket.send(Message::Text("{\"type\":".into())).await.unwrap();
    assert_eq!(next_json(&mut socket, |m| m["type"] == "error").await["code"], "invalid_message");

    assert_eq!(background(&app, &id).await, "rgb(255, 255, 255)");
    send(&mut socket, json!({"type": "mouse", "event": "click", "x": 100, "y": 100})).await;
    assert!(
        eventually_async(Duration::from_secs(10), || async { background(&app, &id).await == "rgb(255, 0, 0)" }).await,
        "the click reached the page"
    );
    let clicked = app.page_eval(&id, "window.__clicked").await;
    assert_eq!(clicked, json!({"x": 100, "y": 100, "trusted": true}));
    // A frame showing the change arrives (the page is red now).
    assert!(is_jpeg(&next_frame(&mut socket).await));

    // Typing: a click into the input, keys, then a paste of text.
    send(&mut socket, json!({"type": "mouse", "event": "click", "x": 100, "y": 350})).await;
    for key in ["A", "d", "a"] {
        send(&mut socket, json!({"type": "key", "key": key, "modifiers": ["Shift"]})).await;
    }
    send(&mut socket, json!({"type": "key", "key": "Backspace"})).await;
    send(&mut socket, json!({"type": "key", "key": "a"})).await;
    send(&mut socket, json!({"type": "text", "text": " Lovelace"})).await;
    let typed = || async { app.page_eval(&id, "document.getElementById('name').value").await == "Ada Lovelace" };
    assert!(
        eventually_async(Duration::from_secs(10), typed).await,
        "{}",
        app.page_eval(&id, "document.getElementById('name').value").await
    );

    // A binary message from the client closes the socket.
    socket.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    closes(&mut socket).await;
    app.stop().await;
}

#[tokio::test]
async fn a_view_token_watches_but_its_input_never_reaches_the_page() {
    let app = worker().await;
    let id = session_on(&app, LIVE_PAGE).await;
    let access = live_token(&app, &id, Some("view")).await;
    assert_eq!(access["mode"], "view");
    let viewer = app.client.get(access["viewer_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(viewer.status(), StatusCode::OK);
    assert!(viewer.text().await.unwrap().contains("data-mode=\"view\""), "the page says view only");

    let mut socket = connect(&access).await;
    assert!(is_jpeg(&next_frame(&mut socket).await));
    for input in [
        json!({"type": "mouse", "event": "click", "x": 100, "y": 100}),
        json!({"type": "mouse", "event": "click", "x": 100, "y": 350}),
        json!({"type": "text", "text": "typed by a watcher"}),
    ] {
        send(&mut socket, input.clone()).await;
        let error = next_json(&mut socket, |m| m["type"] == "error").await;
        assert_eq!(error["code"], "view_only", "{input}: {error}");
    }
    assert_eq!(background(&app, &id).await, "rgb(255, 255, 255)", "the click never reached the page");
    assert_eq!(app.page_eval(&id, "document.getElementById('name').value").await, "");
    assert!(app.page_eval(&id, "window.__clicked").await.is_null());
    app.stop().await;
}

/// The HTTP status an attempt to open the live socket at `url` gets (101 when it opens).
async fn status_of(url: &str) -> StatusCode {
    match websocket(url, None, None).await {
        Ok(_) => StatusCode::SWITCHING_PROTOCOLS,
        Err(status) => status,
    }
}

#[tokio::test]
async fn a_live_token_opens_its_own_session_only_until_replaced_expired_or_closed() {
    use browser_worker::token::Scope;
    let app = worker().await;
    let (a, b) = (session_on(&app, LIVE_PAGE).await, session_on(&app, "/pages/blue.html").await);
    let token_a = live_token(&app, &a, None).await;
    let base = app.base.replace("http://", "ws://");
    let socket_url = |id: &str, token: &str| format!("{base}/live/{id}?token={token}");
    let viewer_url = |id: &str, token: &str| format!("{}/live/{id}/viewer?token={token}", app.base);
    let token = token_a["token"].as_str().unwrap();

    let refused = [
        ("A's token on B", b.clone(), token.to_string()),
        ("no token", a.clone(), String::new()),
        ("a forged token", a.clone(), "eyJhbGciOiJIUzI1NiJ9.e30.AAAA".into()),
        ("an expired token", a.clone(), forge_token(&a, Scope::Live, -5)),
        ("a VNC token", a.clone(), forge_token(&a, Scope::Vnc, 600)),
        ("a CDP token", a.clone(), forge_token(&a, Scope::Cdp, 600)),
    ];
    for (what, id, token) in &refused {
        assert_eq!(status_of(&socket_url(id, token)).await, StatusCode::UNAUTHORIZED, "{what}");
        let page = app.client.get(viewer_url(id, token)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::UNAUTHORIZED, "{what} (viewer page)");
    }
    // A live token opens neither the VNC socket nor the CDP passthrough.
    let cdp = format!("{base}/api/v2/sessions/{a}/cdp?token={token}");
    assert_eq!(status_of(&cdp).await, StatusCode::UNAUTHORIZED);

    // A new control token replaces the old one (its open socket ends); a view token stays.
    let view = live_token(&app, &a, Some("view")).await;
    let mut old = connect(&token_a).await;
    let mut watcher = connect(&view).await;
    assert!(is_jpeg(&next_frame(&mut old).await));
    let newer = live_token(&app, &a, None).await;
    closes(&mut old).await;
    assert_eq!(status_of(&socket_url(&a, token)).await, StatusCode::UNAUTHORIZED, "a replaced token");
    assert!(is_jpeg(&next_frame(&mut watcher).await), "the view token still works");

    // Closing the session ends its sockets; its tokens then open nothing.
    let mut current = connect(&newer).await;
    assert!(is_jpeg(&next_frame(&mut current).await));
    app.delete(&a).await;
    closes(&mut current).await;
    closes(&mut watcher).await;
    assert_eq!(status_of(newer["ws_url"].as_str().unwrap()).await, StatusCode::GONE);
    app.stop().await;
}

#[tokio::test]
async fn the_live_view_follows_a_tab_the_page_opens_and_is_shared_by_several_viewers() {
    let app = worker().await;
    let id = session_on(&app, LIVE_PAGE).await;
    let control = live_token(&app, &id, None).await;
    let view = live_token(&app, &id, Some("view")).await;
    let (mut first, mut second) = (connect(&control).await, connect(&view).await);
    assert!(is_jpeg(&next_frame(&mut first).await) && is_jpeg(&next_frame(&mut second).await), "both get frames");
    let (_, session) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(session["live_clients"], 2, "{session}");

    send(&mut first, json!({"type": "mouse", "event": "click", "x": 50, "y": 410})).await;
    for socket in [&mut first, &mut second] {
        let page = next_json(socket, |m| {
            m["type"] == "page" && m["url"].as_str().is_some_and(|u| u.ends_with("/pages/blue.html"))
        })
        .await;
        assert!(page["width"].as_u64() > Some(0), "{page}");
    }

    drop(second);
    let counted = || async {
        let (_, session) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
        session["live_clients"] == 1
    };
    assert!(eventually_async(Duration::from_secs(10), counted).await, "a viewer that left is not counted");
    app.stop().await;
}

/// The centre of element `#html_id` in the session's viewport (scrolled into view first), as
/// the `x`, `y` arguments of `live_viewer.mjs`.
async fn centre_of(app: &TestApp, id: &str, html_id: &str) -> (String, String) {
    let script = format!(
        "(() => {{ const e = document.getElementById('{html_id}'); e.scrollIntoView({{block: 'center'}}); \
         const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
    );
    let point = app.page_eval(id, &script).await;
    (point[0].as_f64().unwrap().round().to_string(), point[1].as_f64().unwrap().round().to_string())
}

/// The seed's human-in-the-loop flow on a headless worker: a task meets a CAPTCHA, a person
/// clicks "I'm not a robot" through the live viewer page in a real browser, the orchestrator
/// continues and finishes with `submit_only`.
#[tokio::test]
async fn a_person_solves_a_captcha_through_the_live_viewer_and_the_task_finishes() {
    let app = worker().await;
    let (status, result) = run(&app, task("t-live-captcha", "generic/gated")).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["block_reason"], "captcha_detected", "{result}");
    assert!(result["vnc_url"].is_null(), "no display on this worker: {result}");
    let live_url = result["live_url"].as_str().expect("a task that needs a person has a live_url").to_string();
    let id = result["session_id"].as_str().unwrap().to_string();

    let (x, y) = centre_of(&app, &id, "solve-challenge").await;
    let chromium = app.server.as_ref().unwrap().app.config.chromium().to_str().unwrap().to_string();
    let (ok, out, err) = node("live_viewer.mjs", &[&live_url, &x, &y], &[("CHROMIUM", &chromium)]).await;
    assert!(ok, "the viewer page clicks through: {out} {err}");
    let shown: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(shown["mode"], "control", "{shown}");

    let solved = || async { app.page_eval(&id, "!document.getElementById('challenge')").await == true };
    assert!(eventually_async(Duration::from_secs(10), solved).await, "the click through the viewer solved it");
    let (status, resumed) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/continue"), None).await;
    assert_eq!((status, resumed["state"].as_str()), (StatusCode::OK, Some("ready")), "{resumed}");
    let mut finish = task("t-live-captcha", "generic/gated");
    finish["action"] = json!("submit_only");
    finish["session_id"] = json!(id);
    let (status, done) = run(&app, finish).await;
    assert_eq!((status, done["success"].as_bool()), (StatusCode::OK, Some(true)), "{done}");
    assert_eq!(done["confirmation_id"], "APP-12345");
    app.stop().await;
}

/// The copilot half of the flow: a task held for review, a person corrects a field the worker
/// filled (click into it, select all, type) through the live viewer page in a real browser, and
/// `submit_only` sends the form as the person left it: the employer receives the correction.
#[tokio::test]
async fn a_person_corrects_a_field_through_the_live_viewer_and_the_employer_receives_it() {
    const CORRECTED: &str = "Adelina";
    let app = worker().await;
    let (held, finish) = held_for_review(&app, "t-live-review", "greenhouse/post").await;
    let live_url = held["live_url"].as_str().expect("a task held for review has a live_url").to_string();
    let id = held["session_id"].as_str().unwrap().to_string();
    let value = || async { app.page_eval(&id, "document.getElementById('first_name').value").await };
    assert_eq!(value().await, "Adam", "the worker filled the field");

    let (x, y) = centre_of(&app, &id, "first_name").await;
    let chromium = app.server.as_ref().unwrap().app.config.chromium().to_str().unwrap().to_string();
    let (ok, out, err) = node("live_viewer.mjs", &[&live_url, &x, &y, CORRECTED], &[("CHROMIUM", &chromium)]).await;
    assert!(ok, "the viewer page types through: {out} {err}");
    assert!(
        eventually_async(Duration::from_secs(10), || async { value().await == CORRECTED }).await,
        "{}",
        value().await
    );

    let (status, done) = run(&app, finish).await;
    assert_eq!((status, done["success"].as_bool()), (StatusCode::OK, Some(true)), "{done}");
    assert_eq!(done["confirmation_id"], "APP-12345");
    let sent = submissions("greenhouse");
    let names: Vec<&Value> = sent.iter().map(|p| &p["job_application[first_name]"]).collect();
    assert!(names.iter().any(|n| *n == CORRECTED), "the correction reached the employer: {names:?}");
    app.stop().await;
}
