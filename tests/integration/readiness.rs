//! Page readiness: a page is usable once its DOM is interactive and settled, not when `load`
//! fires; a navigation that fails, or a document that never gets interactive, still fails
//! clearly; a form built late (in a shadow root) is found by `analyze`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, eventually, fixtures, group_members};

fn page(name: &str) -> String {
    format!("{}/pages/{name}", fixtures())
}

async fn navigate(app: &TestApp, id: &str, url: &str) -> Value {
    let (status, nav) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url}))).await;
    assert_eq!(status, StatusCode::OK, "{url}: {nav}");
    nav
}

async fn analyze(app: &TestApp, id: &str) -> Value {
    let (status, analysis) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/analyze"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{analysis}");
    analysis
}

/// The labels of the fields `analyze` found.
fn labels(analysis: &Value) -> Vec<String> {
    analysis["fields"].as_array().unwrap().iter().map(|f| f["label"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn a_page_whose_load_never_fires_is_usable() {
    let app = TestApp::start().await;
    let url = page("never-loads.html");
    let session = app.create(json!({"url": url})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    assert_eq!(session["state"], "ready", "{session}");
    assert_eq!(session["load_state"], "interactive", "{session}");
    assert_eq!(
        (session["current_url"].as_str(), session["title"].as_str()),
        (Some(url.as_str()), Some("Apply (load never fires)"))
    );
    let browser = app.browsers()[0].clone();

    let analysis = analyze(&app, &id).await;
    assert_eq!(analysis["page_kind"], "application_form", "{analysis}");
    assert_eq!(labels(&analysis), ["First name", "Last name", "Email"], "{analysis}");

    // The page still loading holds no later navigation up, either way round.
    let (green, never) = (page("green.html"), page("never-loads.html"));
    for (url, state) in [(&green, "load"), (&never, "interactive"), (&green, "load")] {
        let nav = navigate(&app, &id, url).await;
        assert_eq!(
            (nav["current_url"].as_str(), nav["load_state"].as_str()),
            (Some(url.as_str()), Some(state)),
            "{nav}"
        );
    }
    let (_, info) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(info["load_state"], "load", "the last navigation's state: {info}");

    navigate(&app, &id, &never).await;
    let (status, closed) = app.delete(&id).await;
    assert_eq!((status, closed["state"].as_str()), (StatusCode::OK, Some("closed")), "{closed}");
    assert!(group_members(browser.pgid).is_empty(), "browser processes remain: {:?}", group_members(browser.pgid));
    assert!(app.browsers().is_empty(), "the pid record is removed");
    app.stop().await;
}

#[tokio::test]
async fn a_form_built_late_in_a_shadow_root_is_found() {
    let app = TestApp::start().await;
    let session = app.create(json!({"url": page("late-shadow-form.html")})).await;
    let id = session["session_id"].as_str().unwrap();
    assert_eq!(session["load_state"], "load", "{session}");
    let analysis = analyze(&app, id).await;
    assert_eq!(analysis["page_kind"], "application_form", "{analysis}");
    assert_eq!(labels(&analysis), ["First name", "Last name", "Email", "Phone"], "{analysis}");
    app.stop().await;
}

#[tokio::test]
async fn navigations_that_cannot_give_a_usable_page_still_fail_clearly() {
    let app = TestApp::start_with(&["--operation-timeout-secs", "3"]).await;
    let never_ends = format!("{}/never-ends", fixtures());
    let hang = format!("{}/hang", fixtures());
    // (what, URL, status, code, words in the message)
    let cases = [
        ("a document that never gets interactive", never_ends.as_str(), 504, "operation_timeout", "interactive"),
        ("a server that never answers", hang.as_str(), 504, "operation_timeout", "navigate"),
        ("a refused connection", "https://localhost:9/closed-port", 502, "navigation_failed", "net::"),
    ];
    let mut problems = Vec::new();
    for (what, url, status, code, words) in cases {
        let (got, body) = app.call(Method::POST, "/api/v2/sessions", Some(json!({"url": url}))).await;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        if got.as_u16() != status || body["error"]["code"] != code || !message.contains(words) {
            problems.push(format!("{what}: {got} {body}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let gone = eventually(Duration::from_secs(5), || app.browsers().is_empty()).await;
    assert!(gone, "no browser is left behind: {:?}", app.browsers());
    // The same on an open session's navigate, and the session stays usable.
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap();
    let (got, body) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": never_ends}))).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (StatusCode::GATEWAY_TIMEOUT, Some("operation_timeout")),
        "{body}"
    );
    let nav = navigate(&app, id, &page("green.html")).await;
    assert_eq!(nav["load_state"], "load", "{nav}");
    app.stop().await;
}
