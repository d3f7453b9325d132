//! Block detection on live pages in Chromium: visible CAPTCHA widgets, a Cloudflare-style
//! interstitial, an authwall redirect and a sign-in form standing in for the page block; an
//! invisible reCAPTCHA badge does not.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, fixtures};

async fn navigate(app: &TestApp, id: &str, url: &str) -> Value {
    let (status, nav) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url}))).await;
    assert_eq!(status, StatusCode::OK, "{nav}");
    nav
}

async fn state(app: &TestApp, id: &str) -> Value {
    let (status, info) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    info
}

#[tokio::test]
async fn live_pages_block_or_not() {
    let app = TestApp::start().await;
    let base = fixtures();

    // Detection runs after the first navigation of a create.
    let session = app.create(json!({"url": format!("{base}/pages/captcha-recaptcha.html")})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    assert_eq!(session["state"], "needs_human", "{session}");
    assert_eq!(session["block"], json!({"reason": "captcha", "detail": "recaptcha"}));

    // An ordinary job page with an invisible reCAPTCHA badge: no block, the session is ready again.
    let nav = navigate(&app, &id, &format!("{base}/pages/job-invisible-recaptcha.html")).await;
    assert!(nav["block"].is_null(), "the invisible badge must not block: {nav}");
    let info = state(&app, &id).await;
    assert_eq!(info["state"], "ready");
    assert!(info["block"].is_null());

    let nav = navigate(&app, &id, &format!("{base}/pages/captcha-hcaptcha.html")).await;
    assert_eq!(nav["block"], json!({"reason": "captcha", "detail": "hcaptcha"}));
    let info = state(&app, &id).await;
    assert_eq!(info["state"], "needs_human");
    assert_eq!(info["block"]["reason"], "captcha");

    // Operations still run in needs_human (a screenshot keeps the state).
    let shot = app.request(Method::GET, &format!("/api/v2/sessions/{id}/screenshot")).send().await.unwrap();
    assert_eq!(shot.status(), StatusCode::OK);
    assert_eq!(state(&app, &id).await["state"], "needs_human");

    let nav = navigate(&app, &id, &format!("{base}/pages/cloudflare.html")).await;
    assert_eq!(nav["block"]["reason"], "challenge_page", "{nav}");

    let nav = navigate(&app, &id, &format!("{base}/jobs/view/4012345")).await;
    assert_eq!(nav["current_url"], format!("{base}/authwall?trk=public_jobs_guest"));
    assert_eq!(nav["block"]["reason"], "login_required", "{nav}");

    // A sign-in form where the page should be, at a URL that names no login.
    let nav = navigate(&app, &id, &format!("{base}/pages/welcome.html")).await;
    assert_eq!(nav["block"]["reason"], "login_required", "{nav}");

    let nav = navigate(&app, &id, &format!("{base}/pages/green.html")).await;
    assert!(nav["block"].is_null());
    assert_eq!(state(&app, &id).await["state"], "ready");

    let (status, _) = app.delete(&id).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}
