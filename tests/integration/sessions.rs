//! Sessions through the HTTP API: open, navigate, screenshot, close, and the rules around them.

use std::time::Duration;

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, eventually, eventually_async, fixtures, group_members, zombie_crash_handlers};

/// For tests of what a session's own browser process does (context mode shares browsers: see
/// `contexts`).
const OWN_BROWSER: [&str; 2] = ["--ephemeral-mode", "process"];

/// Decodes a PNG and returns the RGB colour of pixel (x, y).
fn pixel(png_bytes: &[u8], x: u32, y: u32) -> (u8, u8, u8, u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let at = ((y * info.width + x) as usize) * channels;
    (buf[at], buf[at + 1], buf[at + 2], info.width, info.height)
}

#[tokio::test]
async fn create_navigate_screenshot_delete_releases_everything() {
    let app = TestApp::start_with(&OWN_BROWSER).await;
    let session = app.create(json!({"metadata": {"task_id": "t-1"}})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    assert_eq!(session["state"], "ready");
    assert_eq!(session["provider"], "chromium");
    assert_eq!(session["metadata"]["task_id"], "t-1");
    assert!(session["timing"]["browser_start_ms"].as_u64().unwrap() > 0);
    let browsers = app.browsers();
    assert_eq!(browsers.len(), 1, "one browser runs for the session");
    let browser = browsers[0].clone();
    assert!(browser.user_data_dir.is_dir());
    assert!(!group_members(browser.pgid).is_empty());

    let url = format!("{}/pages/green.html", fixtures());
    let (status, nav) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url}))).await;
    assert_eq!(status, StatusCode::OK, "{nav}");
    assert_eq!(nav["current_url"], url);
    assert_eq!(nav["title"], "Fixture Green");
    assert!(nav["block"].is_null());

    let (_, info) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(info["current_url"], url);
    assert_eq!(info["title"], "Fixture Green");
    assert!(info["timing"]["navigate_ms"].is_u64());

    let shot = app.request(Method::GET, &format!("/api/v2/sessions/{id}/screenshot")).send().await.unwrap();
    assert_eq!(shot.status(), StatusCode::OK);
    assert_eq!(shot.headers()["content-type"], "image/png");
    let png = shot.bytes().await.unwrap();
    let (r, g, b, width, _) = pixel(&png, 5, 700);
    assert_eq!((r, g, b), (0, 255, 0), "the page's green background is in the screenshot");
    assert_eq!(width, 1280);

    let (status, closed) = app.delete(&id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(closed["state"], "closed");
    assert!(group_members(browser.pgid).is_empty(), "browser processes remain: {:?}", group_members(browser.pgid));
    assert!(!browser.user_data_dir.exists(), "the ephemeral profile dir is removed");
    assert!(app.browsers().is_empty(), "the pid record is removed");
    assert!(
        eventually(Duration::from_secs(3), || zombie_crash_handlers().is_empty()).await,
        "crash handlers are reaped: {:?}",
        zombie_crash_handlers()
    );
    app.stop().await;
}

#[tokio::test]
async fn full_page_screenshot_and_create_with_url_and_viewport() {
    let app = TestApp::start().await;
    let url = format!("{}/pages/tall.html", fixtures());
    let session = app.create(json!({"url": url, "viewport": {"width": 800, "height": 600}})).await;
    let id = session["session_id"].as_str().unwrap();
    assert_eq!(session["title"], "Fixture Tall");
    assert!(session["timing"]["navigate_ms"].is_u64());
    let viewport = app.request(Method::GET, &format!("/api/v2/sessions/{id}/screenshot")).send().await.unwrap();
    let (r, g, b, width, height) = pixel(&viewport.bytes().await.unwrap(), 10, 10);
    assert_eq!(((r, g, b), width, height), ((255, 0, 0), 800, 600));
    let full =
        app.request(Method::GET, &format!("/api/v2/sessions/{id}/screenshot?full_page=true")).send().await.unwrap();
    let (r, g, b, _, height) = pixel(&full.bytes().await.unwrap(), 10, 2500);
    assert_eq!((r, g, b), (0, 0, 255), "the bottom of the page is captured");
    assert_eq!(height, 3000);
    app.stop().await;
}

#[tokio::test]
async fn capacity_is_enforced_and_released() {
    let app = TestApp::start_with(&["--max-sessions", "2"]).await;
    let first = app.create(json!({})).await;
    app.create(json!({})).await;
    let response = app.request(Method::POST, "/api/v2/sessions").json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "capacity_exhausted");
    let (status, _) = app.delete(first["session_id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    app.create(json!({})).await;
    app.stop().await;
}

/// Closers racing (DELETEs here; the reaper, the crash supervisor and shutdown close the same
/// way): one closes, the others are told the session is closed, and its one slot comes back once.
#[tokio::test]
async fn a_session_is_closed_exactly_once() {
    let app = TestApp::start_with(&["--max-sessions", "1"]).await;
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap();
    let deletes = futures::future::join_all((0..5).map(|_| app.delete(id))).await;
    let statuses: Vec<StatusCode> = deletes.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{deletes:?}");
    assert!(statuses.iter().all(|s| [StatusCode::OK, StatusCode::GONE].contains(s)), "{deletes:?}");
    app.create(json!({})).await;
    let response = app.request(Method::POST, "/api/v2/sessions").json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "the slot came back twice");
    app.stop().await;
}

#[tokio::test]
async fn one_operation_at_a_time() {
    let app = TestApp::start().await;
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap();
    let navigate = format!("/api/v2/sessions/{id}/navigate");
    let slow = app.call(Method::POST, &navigate, Some(json!({"url": format!("{}/slow", fixtures())})));
    let second = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, state) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
        let busy = app.call(Method::GET, &format!("/api/v2/sessions/{id}/screenshot"), None).await;
        (state, busy)
    };
    let ((slow_status, _), (state, (busy_status, busy))) = tokio::join!(slow, second);
    assert_eq!(slow_status, StatusCode::OK);
    assert_eq!(state["state"], "busy");
    assert_eq!(busy_status, StatusCode::CONFLICT);
    assert_eq!(busy["error"]["code"], "session_busy");
    let (_, after) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(after["state"], "ready");
    app.stop().await;
}

#[tokio::test]
async fn a_profile_is_used_once_and_keeps_its_cookies() {
    let app = TestApp::start().await;
    let first = app.create(json!({"profile_id": "p1"})).await;
    let id = first["session_id"].as_str().unwrap().to_string();
    assert_eq!(first["profile_id"], "p1");
    let (status, body) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p1"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "profile_in_use");
    assert_eq!(body["error"]["details"]["session_id"], id.as_str());

    let set = json!({"url": format!("{}/cookie/set", fixtures())});
    let (status, _) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(set)).await;
    assert_eq!(status, StatusCode::OK);
    app.delete(&id).await;

    let again = app.create(json!({"profile_id": "p1", "url": format!("{}/cookie/show", fixtures())})).await;
    assert_eq!(again["title"], "cookie: bw_test=remembered");
    assert!(app.data_dir.path().join("profiles/p1").is_dir(), "the profile stays on disk");
    app.delete(again["session_id"].as_str().unwrap()).await;
    assert!(app.data_dir.path().join("profiles/p1").is_dir(), "closing keeps a persistent profile");
    app.stop().await;
}

#[tokio::test]
async fn idle_sessions_are_reaped() {
    let app = TestApp::start_with(&["--max-sessions", "1"]).await;
    let session = app.create(json!({"idle_timeout_secs": 1})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    // A browser of its own goes with the session; a context leaves its shared browser running.
    let own = crate::isolation::session_of(&app, &id).browser_context().is_none();
    let pgid = app.browsers()[0].pgid;
    let reaped = eventually_async(Duration::from_secs(10), || async { !app.listed().await.contains(&id) }).await;
    assert!(reaped, "the idle session was not reaped");
    let (status, body) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"]["details"]["reason"], "idle_timeout");
    if own {
        assert!(eventually(Duration::from_secs(5), || group_members(pgid).is_empty()).await);
    }
    // Its slot is free again.
    app.create(json!({})).await;
    app.stop().await;
}

#[tokio::test]
async fn a_killed_browser_fails_its_session() {
    let app = TestApp::start_with(&OWN_BROWSER).await;
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let browser = app.browsers()[0].clone();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(browser.pgid), nix::sys::signal::Signal::SIGKILL).unwrap();

    // SPEC: the session is failed within 2 s.
    let mut failed = None;
    for _ in 0..40 {
        let (status, body) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
        if status == StatusCode::GONE {
            failed = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = failed.expect("session marked failed within 2 s");
    assert_eq!(failed["error"]["details"]["state"], "failed");
    assert_eq!(failed["error"]["details"]["reason"], "browser_crashed");
    let nav = json!({"url": format!("{}/pages/green.html", fixtures())});
    let (status, body) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(nav)).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"]["details"]["reason"], "browser_crashed");
    assert!(
        eventually(Duration::from_secs(3), || group_members(browser.pgid).is_empty()).await,
        "no zombie or helper remains: {:?}",
        group_members(browser.pgid)
    );
    assert!(!browser.user_data_dir.exists());
    // The slot is free again.
    app.create(json!({})).await;
    app.stop().await;
}

#[tokio::test]
async fn warm_pool_hands_over_ready_browsers() {
    let app = TestApp::start_with(&["--warm-pool", "1", "--ephemeral-mode", "process"]).await;
    let full = || async { app.pool_ready().await == 1 };
    assert!(eventually_async(Duration::from_secs(15), full).await, "the pool filled");
    let session = app.create(json!({"url": format!("{}/pages/green.html", fixtures())})).await;
    assert_eq!(session["timing"]["browser_start_ms"], 0, "a pooled browser needs no launch");
    assert_eq!(session["title"], "Fixture Green");
    assert!(eventually_async(Duration::from_secs(15), full).await, "the pool refilled");
    assert_eq!(app.browsers().len(), 2, "one session browser and one pooled browser");
    let pgids: Vec<i32> = app.browsers().iter().map(|b| b.pgid).collect();
    app.stop().await;
    for pgid in pgids {
        assert!(group_members(pgid).is_empty(), "stop closes pooled browsers too");
    }
}

#[tokio::test]
async fn an_abandoned_create_leaves_nothing_behind() {
    let app = TestApp::start_with(&OWN_BROWSER).await;
    let abandoned =
        app.request(Method::POST, "/api/v2/sessions").json(&json!({})).timeout(Duration::from_millis(20)).send().await;
    assert!(abandoned.is_err(), "the client gave up before the browser started");
    // The browser finishes starting and becomes a listed session instead of a stray process.
    assert!(eventually_async(Duration::from_secs(10), || async { app.listed().await.len() == 1 }).await);
    let browsers = app.browsers();
    app.stop().await;
    for browser in browsers {
        assert!(group_members(browser.pgid).is_empty());
        assert!(!browser.user_data_dir.exists());
    }
}

#[tokio::test]
async fn sessions_end_at_their_maximum_lifetime() {
    let app = TestApp::start_with(&["--max-lifetime-secs", "1"]).await;
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    assert!(eventually_async(Duration::from_secs(10), || async { !app.listed().await.contains(&id) }).await);
    let (status, body) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"]["details"]["reason"], "max_lifetime");
    app.stop().await;
}

#[tokio::test]
async fn a_browser_that_cannot_start_is_a_502_and_frees_its_slot() {
    let app = TestApp::start_with(&["--chromium-path", "/bin/false", "--max-sessions", "1"]).await;
    for _ in 0..2 {
        let (status, body) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p1"}))).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(body["error"]["code"], "browser_start_failed");
    }
    assert!(app.browsers().is_empty(), "no pid record is left for a failed launch");
    app.stop().await;
}
