//! Profiles and their breakers through the API: blocks feed the breaker, a cooling or
//! `needs_human` profile answers 423, the manual transitions, and state that survives a
//! `kill -9` of the worker.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use std::time::Duration;

use browser_worker::browser::process::reap_adopted;

use crate::support::{KEY, TestApp, WorkerProcess, eventually, fixtures, group_members, recorded_browsers};

async fn call(base: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn profile<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list["profiles"].as_array().unwrap().iter().find(|p| p["profile_id"] == id)
}

#[tokio::test]
async fn a_block_cools_the_profile_and_enable_clears_it() {
    let app = TestApp::start().await;
    let base = fixtures();
    let (status, err) = app.call(Method::POST, "/api/v1/profiles/never-seen/resolve", None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("profile_not_found")));
    let (status, _) = app.call(Method::POST, "/api/v1/profiles/..%2Fx/enable", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
    assert_eq!(list, json!({"profiles": []}), "lookups create nothing");

    let session =
        app.create(json!({"profile_id": "p-cool", "url": format!("{base}/pages/captcha-recaptcha.html")})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    assert_eq!(session["state"], "needs_human");
    let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
    let p = profile(&list, "p-cool").expect("the profile is known once used");
    assert_eq!(p["status"], "cooling");
    assert_eq!(p["consecutive_blocks"], 1);
    assert_eq!(p["total_tasks"], 1);
    assert_eq!(p["last_block_reason"], "captcha");
    assert_eq!(p["in_use_by_session"], id.as_str());
    let retry = p["retry_after_secs"].as_u64().unwrap();
    assert!((719..=2160).contains(&retry), "1 block cools 720-2160 s, got {retry}");
    app.delete(&id).await;

    let response =
        app.request(Method::POST, "/api/v2/sessions").json(&json!({"profile_id": "p-cool"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 423);
    let header: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let err: Value = response.json().await.unwrap();
    assert_eq!(err["error"]["code"], "profile_unavailable");
    assert_eq!(err["error"]["details"]["state"], "cooling");
    let retry = err["error"]["details"]["retry_after_secs"].as_u64().unwrap();
    assert!((700..=2160).contains(&retry) && header == retry, "{err}");

    let (status, enabled) = app.call(Method::POST, "/api/v1/profiles/p-cool/enable", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((enabled["status"].as_str(), enabled["retry_after_secs"].is_null()), (Some("healthy"), true));
    let (status, disabled) = app.call(Method::POST, "/api/v1/profiles/p-cool/disable", None).await;
    assert_eq!((status, disabled["status"].as_str()), (StatusCode::OK, Some("disabled")));
    let (status, err) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-cool"}))).await;
    assert_eq!(status.as_u16(), 423);
    assert_eq!(err["error"]["details"], json!({"state": "disabled", "retry_after_secs": null}));
    let (status, err) = app.call(Method::POST, "/api/v1/profiles/p-cool/resolve", None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")));
    app.call(Method::POST, "/api/v1/profiles/p-cool/enable", None).await;
    let session = app.create(json!({"profile_id": "p-cool"})).await;
    app.delete(session["session_id"].as_str().unwrap()).await;
    app.stop().await;
}

#[tokio::test]
async fn needs_human_survives_kill_9_and_opens_only_after_resolve() {
    let data = crate::support::data_dir();
    let base = fixtures();
    let mut worker = WorkerProcess::spawn(data.path(), &[]).await;
    let (status, session) = call(
        &worker.base,
        Method::POST,
        "/api/v2/sessions",
        Some(json!({"profile_id": "p-human", "url": format!("{base}/pages/captcha-recaptcha.html")})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["session_id"].as_str().unwrap();
    // Three blocks in a row (each a new one: the page is clear in between).
    for page in ["green.html", "captcha-hcaptcha.html", "green.html", "cloudflare.html"] {
        let url = format!("{base}/pages/{page}");
        let (status, _) =
            call(&worker.base, Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url})))
                .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, list) = call(&worker.base, Method::GET, "/api/v1/profiles", None).await;
    let p = profile(&list, "p-human").unwrap();
    assert_eq!((p["status"].as_str(), p["consecutive_blocks"].as_u64()), (Some("needs_human"), Some(3)), "{p}");
    let orphan = recorded_browsers(data.path()).pop().expect("a recorded browser");
    kill(Pid::from_raw(worker.child.id().unwrap() as i32), Signal::SIGKILL).unwrap();
    worker.child.wait().await.unwrap();

    let worker = WorkerProcess::spawn(data.path(), &[]).await;
    let (_, list) = call(&worker.base, Method::GET, "/api/v1/profiles", None).await;
    let p = profile(&list, "p-human").expect("the profile survives the kill");
    assert_eq!((p["status"].as_str(), p["consecutive_blocks"].as_u64()), (Some("needs_human"), Some(3)));
    // The session survived the kill too (SPEC §3.8) and still holds the profile; closing it
    // stops the killed worker's browser.
    assert_eq!(p["in_use_by_session"].as_str(), Some(id), "{p}");
    assert_eq!(call(&worker.base, Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await.0, StatusCode::OK);
    let (_, list) = call(&worker.base, Method::GET, "/api/v1/profiles", None).await;
    assert!(profile(&list, "p-human").unwrap()["in_use_by_session"].is_null());
    let (status, err) =
        call(&worker.base, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-human"}))).await;
    assert_eq!(status.as_u16(), 423, "{err}");
    assert_eq!(err["error"]["details"], json!({"state": "needs_human", "retry_after_secs": null}));

    let (status, resolved) = call(&worker.base, Method::POST, "/api/v1/profiles/p-human/resolve", None).await;
    assert_eq!((status, resolved["status"].as_str()), (StatusCode::OK, Some("healthy")));
    assert_eq!(resolved["consecutive_blocks"], 0);
    let (status, session) =
        call(&worker.base, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-human"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let (code, _) = worker.terminate().await;
    assert_eq!(code, Some(0));
    let gone = eventually(Duration::from_secs(5), || {
        reap_adopted(orphan.pgid);
        group_members(orphan.pgid).is_empty()
    })
    .await;
    assert!(gone, "the killed worker's browser is stopped when its session closes");
}

#[tokio::test]
async fn five_failed_starts_disable_a_profile() {
    // A "browser" that exits at once: every start fails.
    let app = TestApp::start_with(&["--chromium-path", "/bin/false"]).await;
    for n in 1..=5 {
        let (status, err) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-broken"}))).await;
        assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("browser_start_failed")));
        let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
        assert_eq!(profile(&list, "p-broken").unwrap()["consecutive_failures"], n);
    }
    let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
    assert_eq!(profile(&list, "p-broken").unwrap()["status"], "disabled");
    let (status, err) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-broken"}))).await;
    assert_eq!((status.as_u16(), err["error"]["details"]["state"].as_str()), (423, Some("disabled")));
    // Sessions without a profile never touch the breaker.
    let (status, _) = app.call(Method::POST, "/api/v2/sessions", Some(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
    assert_eq!(list["profiles"].as_array().unwrap().len(), 1);
    app.stop().await;
}

/// A page that cannot be reached is the page's fault, not the profile's: neither a create nor
/// a navigate that fails that way counts against the profile's breaker.
#[tokio::test]
async fn an_unreachable_page_does_not_count_against_the_profile() {
    let app = TestApp::start().await;
    let unreachable = json!({"url": "https://localhost:9/closed-port"});
    let mut create = unreachable.clone();
    create["profile_id"] = json!("p-nav");
    let (status, body) = app.call(Method::POST, "/api/v2/sessions", Some(create)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("navigation_failed")),
        "{body}"
    );
    let session = app.create(json!({"profile_id": "p-nav"})).await;
    let id = session["session_id"].as_str().unwrap();
    let (status, body) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(unreachable)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
    let record = profile(&list, "p-nav").expect("the profile is known");
    assert_eq!(
        (record["consecutive_failures"].as_u64(), record["status"].as_str()),
        (Some(0), Some("healthy")),
        "{record}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_crashed_browser_counts_as_a_profile_failure() {
    let app = TestApp::start().await;
    let session = app.create(json!({"profile_id": "p-crash"})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let browser = app.browsers()[0].clone();
    kill(Pid::from_raw(browser.pgid), Signal::SIGKILL).unwrap();
    let counted = crate::support::eventually_async(Duration::from_secs(5), || async {
        let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
        profile(&list, "p-crash").is_some_and(|p| p["consecutive_failures"] == 1 && p["in_use_by_session"].is_null())
    })
    .await;
    assert!(counted, "the crash is recorded and the profile released");
    let (status, _) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(eventually(Duration::from_secs(3), || group_members(browser.pgid).is_empty()).await);
    app.stop().await;
}
