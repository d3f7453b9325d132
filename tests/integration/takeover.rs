//! Takeover whenever a session stops for a person (SPEC §3.6): on a per-session worker every
//! session and every V1 task has a display unless it opts out, and a task that needs a person
//! hands out its VNC socket and viewer, and its live viewer, in its result and in its webhooks;
//! so does a session whose very first page is a CAPTCHA, in its first event.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, eventually, websocket};
use crate::tasks::{run, task};
use crate::webhooks::{Behaviour, Receiver, worker_reaching};

/// A worker where each session has a display of its own unless it opts out (in context mode an
/// ephemeral session shares a headless browser instead: these tests are about displays).
const PER_SESSION: [&str; 6] = ["--display-mode", "per-session", "--max-sessions", "3", "--ephemeral-mode", "process"];

#[tokio::test]
async fn on_a_per_session_worker_a_session_has_a_display_unless_it_opts_out() {
    let app = TestApp::start_with(&PER_SESSION).await;
    let shown = app.create(json!({})).await;
    let vnc = &shown["vnc"];
    assert!(vnc["ws_url"].is_string() && vnc["viewer_url"].is_string(), "a display by default: {shown}");
    assert_eq!(vnc["shared"], false, "a per-session display is the session's own: {vnc}");
    for opt_out in [json!({"display": false}), json!({"headless": true})] {
        let session = app.create(opt_out.clone()).await;
        assert!(session["vnc"].is_null(), "{opt_out} has no display: {session}");
    }
    app.stop().await;
}

/// The `data` of the first webhook of `kind` received so far.
fn event(hook: &Receiver, kind: &str) -> Option<Value> {
    hook.bodies().into_iter().find(|b| b["type"] == kind).map(|b| b["data"].clone())
}

/// Checks that a task's `vnc_url` upgrades to the VNC server and its `viewer_url` serves the viewer.
async fn opens_the_viewer(app: &TestApp, result: &Value) {
    let (vnc_url, viewer_url) = (result["vnc_url"].as_str(), result["viewer_url"].as_str());
    let (Some(vnc_url), Some(viewer_url)) = (vnc_url, viewer_url) else {
        panic!("a task that needs a person says where to take over: {result}");
    };
    let id = result["session_id"].as_str().unwrap();
    let (_, session) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(
        (Some(vnc_url), Some(viewer_url)),
        (session["vnc"]["ws_url"].as_str(), session["vnc"]["viewer_url"].as_str())
    );
    // The viewer needs no API key: the token in its URL is the access.
    let page = app.client.get(viewer_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{viewer_url}");
    let mut socket = websocket(vnc_url, None, Some("binary")).await.expect("the VNC socket upgrades");
    let greeting = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap().unwrap().unwrap();
    assert!(greeting.into_data().starts_with(b"RFB 003."), "the session's VNC server answers");
}

#[tokio::test]
async fn a_task_stopped_for_a_person_hands_out_its_vnc_and_viewer_in_result_and_webhooks() {
    let hook = Receiver::start(Behaviour::Ok).await;
    let app = worker_reaching(&[&hook], &PER_SESSION).await;

    // A CAPTCHA.
    let mut body = task("t-takeover-captcha", "generic/gated");
    body["callback_url"] = json!(hook.url);
    let (status, result) = run(&app, body).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(
        (result["block_reason"].as_str(), result["next_action"].as_str()),
        (Some("captcha_detected"), Some("needs_human")),
        "{result}"
    );
    opens_the_viewer(&app, &result).await;
    assert!(
        eventually(Duration::from_secs(5), || event(&hook, "captcha_detected").is_some()).await,
        "{:?}",
        hook.kinds()
    );
    let data = event(&hook, "captcha_detected").unwrap();
    assert_eq!((&data["vnc_url"], &data["viewer_url"]), (&result["vnc_url"], &result["viewer_url"]), "{data}");
    assert!(result["live_url"].as_str().is_some_and(|u| u.contains("/live/")), "{result}");
    assert_eq!(data["live_url"], result["live_url"], "{data}");

    // A copilot review.
    let mut body = task("t-takeover-review", "greenhouse/post");
    body["mode"] = json!("copilot");
    body["callback_url"] = json!(hook.url);
    let (_, held) = run(&app, body).await;
    assert_eq!(held["block_reason"], "review_required", "{held}");
    opens_the_viewer(&app, &held).await;
    assert!(
        eventually(Duration::from_secs(5), || event(&hook, "review_required").is_some()).await,
        "{:?}",
        hook.kinds()
    );
    let data = event(&hook, "review_required").unwrap();
    assert_eq!((&data["vnc_url"], &data["viewer_url"]), (&held["vnc_url"], &held["viewer_url"]), "{data}");
    assert!(held["live_url"].as_str().is_some_and(|u| u.contains("/live/")), "{held}");
    assert_eq!(data["live_url"], held["live_url"], "{data}");
    app.stop().await;
}

/// A session whose very first page is a CAPTCHA announces it with its takeover links: they are
/// minted before the create's first events, with a display (VNC and live view) and without one
/// (live view only).
#[tokio::test]
async fn a_session_created_on_a_captcha_announces_it_with_takeover_links() {
    let hook = Receiver::start(Behaviour::Ok).await;
    let app = worker_reaching(&[&hook], &PER_SESSION).await;
    let url = format!("{}/forms/generic/gated.html", crate::support::fixtures());
    for (display, has_vnc) in [(json!(null), true), (json!(false), false)] {
        let shown = app.create(json!({"url": url, "display": display, "callback_url": hook.url})).await;
        let id = shown["session_id"].as_str().unwrap().to_string();
        assert_eq!(
            (shown["state"].as_str(), shown["block"]["reason"].as_str()),
            (Some("needs_human"), Some("captcha"))
        );
        let announced = || hook.bodies_of(&id).into_iter().find(|b| b["type"] == "captcha_detected");
        assert!(eventually(Duration::from_secs(5), || announced().is_some()).await, "{:?}", hook.kinds());
        let data = announced().unwrap()["data"].clone();
        assert_eq!(data["block"]["reason"], "captcha", "{data}");
        let live_url = data["live_url"].as_str().unwrap_or_else(|| panic!("the first event has a live_url: {data}"));
        assert_eq!(app.client.get(live_url).send().await.unwrap().status(), StatusCode::OK, "{live_url}");
        if has_vnc {
            assert_eq!((&data["vnc_url"], &data["viewer_url"]), (&shown["vnc"]["ws_url"], &shown["vnc"]["viewer_url"]));
            assert!(data["vnc_url"].is_string(), "{data}");
        } else {
            assert!(data["vnc_url"].is_null() && data["viewer_url"].is_null(), "no display: {data}");
        }
    }
    app.stop().await;
}
