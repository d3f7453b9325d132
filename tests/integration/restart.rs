//! Sessions outlive the worker (SPEC §3.8): after `kill -9` a restart on the same data dir
//! re-attaches them (same ids, states, review holds, page values, tokens); a browser that died
//! meanwhile fails; `BW_HANDOVER` leaves them to the next worker on SIGTERM; an AdsPower session
//! comes back the same way; and a dropped DevTools connection is made again.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fake_adspower::{FakeAdsPower, FakeOptions};
use crate::support::{
    KEY, TestApp, WorkerProcess, evaluate_over_cdp, eventually, fixtures, group_members, recorded_browsers, websocket,
};
use browser_worker::browser::process::reap_adopted;

async fn call(base: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(base: &str, body: Value) -> Value {
    let (status, session) = call(base, Method::POST, "/api/v2/sessions", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    session
}

async fn kill_9(mut worker: WorkerProcess) {
    kill(Pid::from_raw(worker.child.id().unwrap() as i32), Signal::SIGKILL).unwrap();
    worker.child.wait().await.unwrap();
}

/// The first message of a VNC viewer socket is the server's RFB greeting.
async fn rfb_greeting(url: &str) -> Vec<u8> {
    let mut socket = websocket(url, None, Some("binary")).await.expect("the viewer token is accepted");
    let greeting = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a greeting in time");
    greeting.unwrap().unwrap().into_data().to_vec()
}

fn states(list: &Value) -> Vec<(String, String)> {
    let mut states: Vec<(String, String)> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["session_id"].as_str().unwrap().into(), s["state"].as_str().unwrap().into()))
        .collect();
    states.sort();
    states
}

/// Every recorded process of `data` is gone once reaped (they were adopted by this process).
async fn all_gone(data: &Path, pgids: &[i32]) -> bool {
    let _ = data;
    eventually(Duration::from_secs(10), || {
        pgids.iter().for_each(|pgid| reap_adopted(*pgid));
        pgids.iter().all(|pgid| group_members(*pgid).is_empty())
    })
    .await
}

#[tokio::test]
async fn sessions_survive_kill_9_and_a_restart_on_the_same_data_dir() {
    let data = crate::support::data_dir();
    let env = [("BW_DISPLAY_MODE", "per-session")];
    let worker = WorkerProcess::spawn(data.path(), &env).await;
    let pages = fixtures();
    // A CAPTCHA on its own display, a person's viewer attached; a half-filled form.
    let gated = create(&worker.base, json!({"url": format!("{pages}/pages/captcha-recaptcha.html")})).await;
    assert_eq!(gated["state"], "needs_human", "{gated}");
    let gated_id = gated["session_id"].as_str().unwrap().to_string();
    let vnc_url = gated["vnc"]["ws_url"].as_str().expect("a display of its own").to_string();
    assert!(rfb_greeting(&vnc_url).await.starts_with(b"RFB 003."));
    let form =
        create(&worker.base, json!({"url": format!("{pages}/forms/generic/short.html"), "display": false})).await;
    let form_id = form["session_id"].as_str().unwrap().to_string();
    let (_, cdp) = call(&worker.base, Method::POST, &format!("/api/v2/sessions/{form_id}/cdp-token"), None).await;
    let cdp_url = cdp["cdp_url"].as_str().unwrap().to_string();
    let typed = "document.querySelector('#full_name').value = 'Ada Halfway'";
    assert_eq!(evaluate_over_cdp(&cdp_url, typed).await, "Ada Halfway");
    let (_, before) = call(&worker.base, Method::GET, "/api/v2/sessions", None).await;
    let worker_ws = worker.base.replace("http://", "ws://");
    let pgids: Vec<i32> = recorded_browsers(data.path()).iter().map(|r| r.pgid).collect();
    assert_eq!(pgids.len(), 4, "two browsers, an Xvfb and an x11vnc");

    kill_9(worker).await;
    assert!(pgids.iter().all(|pgid| !group_members(*pgid).is_empty()), "browsers and display outlive the worker");
    let restarted = WorkerProcess::spawn(data.path(), &env).await;
    // The restarted worker listens on another port here (in production its public URL stays).
    let moved = |url: &str| url.replace(&worker_ws, &restarted.base.replace("http://", "ws://"));
    let (vnc_url, cdp_url) = (moved(&vnc_url), moved(&cdp_url));

    let (_, after) = call(&restarted.base, Method::GET, "/api/v2/sessions", None).await;
    assert_eq!(states(&after), states(&before), "the same sessions in the same states");
    let (_, info) = call(&restarted.base, Method::GET, &format!("/api/v2/sessions/{gated_id}"), None).await;
    assert_eq!(info["vnc"]["ws_url"].as_str(), Some(vnc_url.as_str()), "the same token under the worker's URL");
    // The tokens handed out before still work: the viewer sees the same display, the CDP
    // client the same page with what was typed into it.
    assert!(rfb_greeting(&vnc_url).await.starts_with(b"RFB 003."));
    let value = evaluate_over_cdp(&cdp_url, "document.querySelector('#full_name').value").await;
    assert_eq!(value, "Ada Halfway", "the half-filled form holds its value");
    // The worker drives them again.
    let (status, resumed) =
        call(&restarted.base, Method::POST, &format!("/api/v2/sessions/{gated_id}/continue"), None).await;
    assert_eq!((status, resumed["state"].as_str()), (StatusCode::OK, Some("needs_human")), "{resumed}");
    let (status, analysis) =
        call(&restarted.base, Method::POST, &format!("/api/v2/sessions/{form_id}/analyze"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{analysis}");
    let name = analysis["fields"].as_array().unwrap().iter().find(|f| f["html_id"] == "full_name").cloned();
    assert_eq!(name.map(|f| f["value"].clone()), Some(json!("Ada Halfway")), "{analysis}");
    let (status, submitted) =
        call(&restarted.base, Method::POST, &format!("/api/v2/sessions/{form_id}/submit"), Some(json!({}))).await;
    assert!(status == StatusCode::OK || submitted["error"]["code"] == "no_progress", "{status} {submitted}");

    for id in [&gated_id, &form_id] {
        let (status, closed) = call(&restarted.base, Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{closed}");
    }
    assert!(
        all_gone(data.path(), &pgids).await,
        "left behind: {:?}",
        pgids.iter().map(|p| group_members(*p)).collect::<Vec<_>>()
    );
    assert!(recorded_browsers(data.path()).is_empty());
    assert_eq!(restarted.terminate().await.0, Some(0));
}

#[tokio::test]
async fn a_browser_that_died_while_the_worker_was_down_fails_and_drain_spares_sessions() {
    let data = crate::support::data_dir();
    let worker = WorkerProcess::spawn(data.path(), &[]).await;
    let doomed = create(&worker.base, json!({"url": format!("{}/pages/green.html", fixtures())})).await;
    let kept = create(&worker.base, json!({})).await;
    let doomed_pgid = recorded_browsers(data.path()).first().map(|r| r.pgid).unwrap();
    let all: Vec<i32> = recorded_browsers(data.path()).iter().map(|r| r.pgid).collect();
    kill_9(worker).await;
    // Which recorded browser is which does not matter: one dies, the other lives.
    browser_worker::browser::process::kill_group(doomed_pgid);
    assert!(all_gone(data.path(), &[doomed_pgid]).await);

    let restarted = WorkerProcess::spawn(data.path(), &[]).await;
    let (_, list) = call(&restarted.base, Method::GET, "/api/v2/sessions", None).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");
    let survivor = list["sessions"][0]["session_id"].as_str().unwrap().to_string();
    let dead = [&doomed, &kept].into_iter().map(|s| s["session_id"].as_str().unwrap()).find(|id| *id != survivor);
    let (status, gone) = call(&restarted.base, Method::GET, &format!("/api/v2/sessions/{}", dead.unwrap()), None).await;
    assert_eq!(status, StatusCode::GONE, "{gone}");
    assert!(gone.to_string().contains("browser_crashed"), "{gone}");

    // Drain: no new sessions, the existing one goes on.
    assert_eq!(call(&restarted.base, Method::POST, "/api/v1/worker/drain", None).await.0, StatusCode::OK);
    let (status, refused) = call(&restarted.base, Method::POST, "/api/v2/sessions", Some(json!({}))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("draining")));
    let navigate = json!({"url": format!("{}/pages/blue.html", fixtures())});
    let (status, _) =
        call(&restarted.base, Method::POST, &format!("/api/v2/sessions/{survivor}/navigate"), Some(navigate)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        call(&restarted.base, Method::DELETE, &format!("/api/v2/sessions/{survivor}"), None).await.0,
        StatusCode::OK
    );
    assert!(all_gone(data.path(), &all).await);
    assert_eq!(restarted.terminate().await.0, Some(0));
}

/// A copilot task's review hold is part of the session's record: after `kill -9` the restarted
/// worker still shows the session waiting for the person's review, and `submit_only` sends the
/// page as it was left.
#[tokio::test]
async fn a_review_hold_survives_kill_9_and_submit_only_finishes_it() {
    let data = crate::support::data_dir();
    let worker = WorkerProcess::spawn(data.path(), &[]).await;
    let mut body = crate::tasks::task("t-restart-review", "greenhouse/post");
    body["mode"] = json!("copilot");
    let (_, held) = call(&worker.base, Method::POST, "/api/v1/tasks", Some(body.clone())).await;
    assert_eq!(held["block_reason"], "review_required", "{held}");
    let id = held["session_id"].as_str().unwrap().to_string();
    kill_9(worker).await;

    let restarted = WorkerProcess::spawn(data.path(), &[]).await;
    let (_, info) = call(&restarted.base, Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(
        (info["state"].as_str(), info["block"]["reason"].as_str()),
        (Some("needs_human"), Some("review_required")),
        "{info}"
    );
    body["action"] = json!("submit_only");
    body["session_id"] = json!(id);
    let (_, done) = call(&restarted.base, Method::POST, "/api/v1/tasks", Some(body)).await;
    assert_eq!(
        (done["success"].as_bool(), done["confirmation_id"].as_str()),
        (Some(true), Some("APP-12345")),
        "{done}"
    );
    assert_eq!(restarted.terminate().await.0, Some(0));
}

#[tokio::test]
async fn handover_on_sigterm_leaves_the_sessions_to_the_next_worker() {
    let data = crate::support::data_dir();
    let env = [("BW_HANDOVER", "true")];
    let worker = WorkerProcess::spawn(data.path(), &env).await;
    let session = create(&worker.base, json!({"url": format!("{}/pages/green.html", fixtures())})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let pgids: Vec<i32> = recorded_browsers(data.path()).iter().map(|r| r.pgid).collect();
    assert_eq!(worker.terminate().await.0, Some(0), "exits 0");
    assert!(pgids.iter().all(|pgid| !group_members(*pgid).is_empty()), "the browser runs on");

    let next = WorkerProcess::spawn(data.path(), &[]).await;
    let (status, info) = call(&next.base, Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!((status, info["state"].as_str()), (StatusCode::OK, Some("ready")), "{info}");
    assert!(info["current_url"].as_str().unwrap().ends_with("/pages/green.html"), "{info}");
    // Without handover, SIGTERM closes it.
    assert_eq!(next.terminate().await.0, Some(0));
    assert!(all_gone(data.path(), &pgids).await);
    assert!(recorded_browsers(data.path()).is_empty());
}

#[tokio::test]
async fn an_adspower_session_is_reattached_after_kill_9() {
    let mut options = FakeOptions::new();
    options.api_key = Some("ads-key".into());
    let ads = FakeAdsPower::start(options, "127.0.0.1:0").await;
    let env = [("BW_PROVIDER", "adspower"), ("BW_ADSPOWER_URL", ads.base.as_str()), ("BW_ADSPOWER_API_KEY", "ads-key")];
    let data = crate::support::data_dir();
    let worker = WorkerProcess::spawn(data.path(), &env).await;
    let url = format!("{}/pages/green.html", fixtures());
    let session = create(&worker.base, json!({"profile_id": "ads-1", "url": url})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    kill_9(worker).await;
    assert!(ads.running().await.contains_key("ads-1"), "the profile's browser runs on");

    let restarted = WorkerProcess::spawn(data.path(), &env).await;
    let (status, info) = call(&restarted.base, Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!((status, info["provider"].as_str()), (StatusCode::OK, Some("adspower")), "{info}");
    let (status, shot) =
        call(&restarted.base, Method::POST, &format!("/api/v2/sessions/{id}/analyze"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{shot}");
    // A second session on the same profile is still refused: the claim came back too.
    let (status, _) =
        call(&restarted.base, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "ads-1"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(call(&restarted.base, Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await.0, StatusCode::OK);
    assert!(!ads.running().await.contains_key("ads-1"), "closing stops the profile's browser");
    assert_eq!(restarted.terminate().await.0, Some(0));
    ads.shutdown().await;
}

#[tokio::test]
/// (A browser of its own: a context rides on its shared browser's connection, whose loss ends it.)
async fn a_dropped_devtools_connection_is_made_again() {
    let app = TestApp::start_with(&["--ephemeral-mode", "process"]).await;
    let session = app.create(json!({"url": format!("{}/forms/generic/short.html", fixtures())})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    app.page_eval(&id, "document.querySelector('#email').value = 'ada@example.com'").await;
    {
        let registry = &app.server.as_ref().unwrap().app.registry;
        let op = registry.begin(browser_worker::session::SessionId::parse(&id).unwrap()).unwrap();
        op.browser().sever();
        let lost = tokio::time::timeout(Duration::from_secs(5), op.browser().lost().cancelled()).await;
        assert!(lost.is_ok(), "the connection is gone");
    }
    let back = eventually(Duration::from_secs(20), || {
        let registry = &app.server.as_ref().unwrap().app.registry;
        registry.begin(browser_worker::session::SessionId::parse(&id).unwrap()).is_ok_and(|op| !op.browser().is_dead())
    })
    .await;
    assert!(back, "the session has a live connection again");
    assert_eq!(app.page_eval(&id, "document.querySelector('#email').value").await, "ada@example.com");
    let (_, info) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(info["state"], "ready", "{info}");
    app.stop().await;
}
