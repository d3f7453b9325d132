//! The adspower provider against the fake AdsPower (real Chromium behind it): a full session,
//! paced and retried rate-limit answers, AdsPower down, the breaker on AdsPower profiles, and
//! `headless` following whether the worker has a display.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use browser_worker::browser::adspower::AdsPowerClient;

use crate::fake_adspower::{FakeAdsPower, FakeOptions};
use crate::support::{TestApp, eventually, eventually_async, fixtures, group_members};

const ADS_KEY: &str = "ads-local-key";

async fn fake(rate: usize) -> FakeAdsPower {
    let mut options = FakeOptions::new();
    options.api_key = Some(ADS_KEY.into());
    options.rate = rate;
    FakeAdsPower::start(options, "127.0.0.1:0").await
}

async fn worker(ads_base: &str, rate: &str) -> TestApp {
    TestApp::start_with(&[
        "--provider",
        "adspower",
        "--adspower-url",
        ads_base,
        "--adspower-api-key",
        ADS_KEY,
        "--adspower-rate",
        rate,
    ])
    .await
}

async fn profile(app: &TestApp, id: &str) -> Value {
    let (_, list) = app.call(Method::GET, "/api/v1/profiles", None).await;
    list["profiles"].as_array().unwrap().iter().find(|p| p["profile_id"] == id).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_full_session_on_an_adspower_profile() {
    let ads = fake(10).await;
    let app = worker(&ads.base, "10").await;
    let base = fixtures();
    let (_, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!((health["status"].as_str(), health["adspower"].as_str()), (Some("healthy"), Some("connected")));
    let (status, err) = app.call(Method::POST, "/api/v2/sessions", Some(json!({}))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
    // AdsPower's own profile list makes its profiles known.
    assert!(
        eventually_async(std::time::Duration::from_secs(5), || async { !profile(&app, "ads-2").await.is_null() }).await
    );

    // A profile AdsPower does not know: its refusal is a 502 and counts against the profile.
    let (status, err) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "ads-unknown"}))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("adspower_error")), "{err}");
    assert_eq!(profile(&app, "ads-unknown").await["consecutive_failures"], 1);

    let session = app.create(json!({"profile_id": "ads-1", "url": format!("{base}/pages/green.html")})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    assert_eq!(session["provider"], "adspower");
    assert_eq!(session["title"], "Fixture Green");
    let running = ads.running().await;
    let pgid = *running.get("ads-1").expect("the fake started the profile's browser");
    assert!(!group_members(pgid).is_empty());

    let (status, nav) = app
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{id}/navigate"),
            Some(json!({"url": format!("{base}/pages/tall.html")})),
        )
        .await;
    assert_eq!((status, nav["title"].as_str()), (StatusCode::OK, Some("Fixture Tall")));
    let shot = app.request(Method::GET, &format!("/api/v2/sessions/{id}/screenshot")).send().await.unwrap();
    assert_eq!(shot.status(), StatusCode::OK);
    assert!(shot.bytes().await.unwrap().starts_with(b"\x89PNG"));
    // Forms work on an AdsPower browser as on a local one.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{id}/navigate"),
            Some(json!({"url": format!("{base}/forms/lever/apply.html")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, analysis) = app
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{id}/analyze"),
            Some(json!({"user_data": {"email": "a@example.com"}})),
        )
        .await;
    assert_eq!((status, analysis["platform"].as_str()), (StatusCode::OK, Some("lever")), "{analysis}");
    let email = analysis["fields"].as_array().unwrap().iter().find(|f| f["name"] == "email").expect("the email field");
    assert_eq!(email["suggestion"]["value"], "a@example.com");

    let (status, closed) = app.delete(&id).await;
    assert_eq!((status, closed["state"].as_str()), (StatusCode::OK, Some("closed")));
    assert!(ads.running().await.is_empty(), "the worker asked AdsPower to browser/stop");
    assert!(eventually(std::time::Duration::from_secs(5), || group_members(pgid).is_empty()).await);

    // Three blocks in a row put the AdsPower profile in needs_human: 423 until resolved.
    let session = app.create(json!({"profile_id": "ads-2"})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    for page in ["captcha-recaptcha.html", "green.html", "captcha-hcaptcha.html", "green.html", "cloudflare.html"] {
        let url = format!("{base}/pages/{page}");
        let (status, _) =
            app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url}))).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(profile(&app, "ads-2").await["status"], "needs_human");
    app.delete(&id).await;
    let (status, err) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "ads-2"}))).await;
    assert_eq!(status.as_u16(), 423, "{err}");
    assert_eq!(err["error"]["details"]["state"], "needs_human");
    let (status, _) = app.call(Method::POST, "/api/v1/profiles/ads-2/resolve", None).await;
    assert_eq!(status, StatusCode::OK);
    let session = app.create(json!({"profile_id": "ads-2"})).await;
    app.delete(session["session_id"].as_str().unwrap()).await;

    app.stop().await;
    assert!(ads.running().await.is_empty());
    ads.shutdown().await;
}

/// A task's session is opened as a session create opens it: an AdsPower profile carries its
/// own proxy, so a task naming one is refused before any profile starts (not run and failed).
#[tokio::test]
async fn a_task_with_a_proxy_on_an_adspower_profile_is_refused_before_anything_starts() {
    let ads = fake(10).await;
    let app = worker(&ads.base, "10").await;
    let task = json!({
        "task_id": "t-proxy",
        "job_url": format!("{}/pages/green.html", fixtures()),
        "profile_id": "ads-1",
        "proxy": {"url": "http://203.0.113.7:3128"},
        "user_data": {},
    });
    let (status, err) = app.call(Method::POST, "/api/v1/tasks", Some(task)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
    assert!(err["error"]["message"].as_str().is_some_and(|m| m.contains("AdsPower")), "{err}");
    assert!(ads.queries("/api/v1/browser/start").is_empty(), "a profile was started");
    let (_, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!((health["active_sessions"].as_u64(), health["active_tasks"].as_u64()), (Some(0), Some(0)), "{health}");
    ads.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_are_retried_and_never_count_against_the_profile() {
    // The fake takes 1 request/s; this client sends up to 50/s and must back off.
    let ads = fake(1).await;
    let client = AdsPowerClient::new(ads.base.parse().unwrap(), Some(ADS_KEY.into()), 50.0);
    for _ in 0..3 {
        client.status().await.expect("a rate-limited call is retried until it passes");
    }
    assert!(ads.rate_limited() > 0, "the fake refused some calls");
    let wrong = AdsPowerClient::new(ads.base.parse().unwrap(), Some("wrong-key".into()), 50.0);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(wrong.status().await.is_err(), "a wrong key is refused");

    let app = worker(&ads.base, "50").await;
    let session = app.create(json!({"profile_id": "ads-1"})).await;
    app.delete(session["session_id"].as_str().unwrap()).await;
    let p = profile(&app, "ads-1").await;
    assert_eq!((p["status"].as_str(), p["consecutive_failures"].as_u64()), (Some("healthy"), Some(0)), "{p}");
    app.stop().await;
    assert!(ads.running().await.is_empty());
    ads.shutdown().await;
}

#[tokio::test]
async fn adspower_down_is_a_502_and_degrades_health() {
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = worker(&url, "10").await;
    let (status, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((health["status"].as_str(), health["adspower"].as_str()), (Some("degraded"), Some("disconnected")));
    let (status, err) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "ads-1"}))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("adspower_error")), "{err}");
    let p = profile(&app, "ads-1").await;
    assert_eq!(p["consecutive_failures"], 0, "AdsPower being down is not the profile's failure: {p}");
    app.stop().await;
}

#[tokio::test]
async fn a_browser_closed_behind_the_workers_back_fails_its_session() {
    let ads = fake(10).await;
    let app = worker(&ads.base, "10").await;
    let session = app.create(json!({"profile_id": "ads-1"})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    ads.kill_browser("ads-1").await;
    let failed = eventually_async(std::time::Duration::from_secs(5), || async {
        let (status, body) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
        status == StatusCode::GONE && body["error"]["details"]["reason"] == "browser_crashed"
    })
    .await;
    assert!(failed, "the lost DevTools connection fails the session");
    let p = profile(&app, "ads-1").await;
    assert_eq!((p["consecutive_failures"].as_u64(), p["in_use_by_session"].is_null()), (Some(1), true), "{p}");
    // The profile can be opened again.
    let session = app.create(json!({"profile_id": "ads-1"})).await;
    app.delete(session["session_id"].as_str().unwrap()).await;
    app.stop().await;
    assert!(ads.running().await.is_empty());
    ads.shutdown().await;
}

#[tokio::test]
async fn adspower_starts_headful_only_when_the_worker_has_a_display() {
    let ads = fake(10).await;
    let start = "/api/v1/browser/start";
    // No display: headless=1.
    let app = worker(&ads.base, "10").await;
    let session = app.create(json!({"profile_id": "ads-1"})).await;
    app.delete(session["session_id"].as_str().unwrap()).await;
    app.stop().await;
    let asked = ads.queries(start);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!((asked[0]["user_id"].as_str(), asked[0]["headless"].as_str()), ("ads-1", "1"));

    // A shared display (never drawn to here: the fake ignores `headless`): headless=0.
    let app = TestApp::start_with(&[
        "--provider",
        "adspower",
        "--adspower-url",
        &ads.base,
        "--adspower-api-key",
        ADS_KEY,
        "--display-mode",
        "shared",
        "--vnc-display",
        ":99",
        "--vnc-port",
        "5999",
    ])
    .await;
    let session = app.create(json!({"profile_id": "ads-1"})).await;
    app.delete(session["session_id"].as_str().unwrap()).await;
    app.stop().await;
    let asked = ads.queries(start);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!((asked[1]["user_id"].as_str(), asked[1]["headless"].as_str()), ("ads-1", "0"));
    ads.shutdown().await;
}
