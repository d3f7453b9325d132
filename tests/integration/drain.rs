//! Drain (SPEC §3.8): a draining worker refuses new sessions and tasks with 503 `draining` and
//! `Retry-After`, while the sessions it holds go on; `/health` shows it; `undrain` undoes it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, fixtures};
use crate::tasks::task;

/// Expects 503 `draining` with `Retry-After: 30`.
async fn expect_draining(request: reqwest::RequestBuilder) {
    let response = request.send().await.expect("request is answered");
    let status = response.status();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("draining")), "{body}");
    assert_eq!(retry_after.as_deref(), Some("30"), "{body}");
}

async fn health(app: &TestApp) -> Value {
    app.client.get(format!("{}/health", app.base)).send().await.unwrap().json().await.unwrap()
}

/// Posts to `/api/v1/worker/{action}` with the key and returns the 200 answer.
async fn worker(app: &TestApp, action: &str) -> Value {
    let (status, body) = app.call(Method::POST, &format!("/api/v1/worker/{action}"), None).await;
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

#[tokio::test]
async fn drain_needs_the_key_and_shows_in_health() {
    let app = TestApp::start_with(&["--max-sessions", "2"]).await;
    for action in ["drain", "undrain"] {
        let anonymous = app.client.post(format!("{}/api/v1/worker/{action}", app.base)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{action} without the key");
    }
    let before = health(&app).await;
    assert_eq!((before["draining"].as_bool(), before["free_slots"].as_u64()), (Some(false), Some(2)), "{before}");

    let idle = json!({"draining": true, "active_sessions": 0, "free_slots": 2});
    assert_eq!(worker(&app, "drain").await, idle);
    assert_eq!(worker(&app, "drain").await, idle, "draining twice is draining");
    let draining = health(&app).await;
    assert_eq!(draining["status"], "healthy", "draining is not a fault: {draining}");
    assert_eq!(draining["draining"], true, "{draining}");

    let accepting = json!({"draining": false, "active_sessions": 0, "free_slots": 2});
    assert_eq!(worker(&app, "undrain").await, accepting);
    assert_eq!(worker(&app, "undrain").await, accepting, "undraining twice is undraining");
    assert_eq!(health(&app).await["draining"], false);
    app.stop().await;
}

#[tokio::test]
async fn a_draining_worker_refuses_new_work_and_finishes_what_it_holds() {
    let app = TestApp::start_with(&["--max-sessions", "3"]).await;
    let held = app.create(json!({})).await;
    let id = held["session_id"].as_str().unwrap().to_string();
    assert_eq!(worker(&app, "drain").await, json!({"draining": true, "active_sessions": 1, "free_slots": 2}));

    expect_draining(app.request(Method::POST, "/api/v2/sessions").json(&json!({}))).await;
    expect_draining(app.request(Method::POST, "/api/v2/sessions")).await;
    expect_draining(app.request(Method::POST, "/api/v1/tasks").json(&task("t-drain", "greenhouse/post"))).await;
    assert_eq!(app.browsers().len(), 1, "nothing was launched for the refused work");
    // `submit_only` finishes a session this worker holds: it is not refused (here the session
    // is unknown, so it gets as far as looking it up).
    let mut submit_only = task("t-drain", "greenhouse/post");
    submit_only["action"] = json!("submit_only");
    submit_only["session_id"] = json!(uuid::Uuid::new_v4());
    let (status, body) = app.call(Method::POST, "/api/v1/tasks", Some(submit_only)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("session_not_found")), "{body}");

    let draining = health(&app).await;
    assert_eq!(
        (&draining["status"], &draining["draining"], &draining["active_sessions"], &draining["free_slots"]),
        (&json!("healthy"), &json!(true), &json!(1), &json!(2)),
        "{draining}"
    );

    // The held session goes on: it navigates, hands out tokens and closes.
    let url = format!("{}/pages/green.html", fixtures());
    let (status, nav) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url}))).await;
    assert_eq!((status, nav["title"].as_str()), (StatusCode::OK, Some("Fixture Green")), "{nav}");
    let (status, token) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/cdp-token"), None).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let (status, closed) = app.delete(&id).await;
    assert_eq!((status, closed["state"].as_str()), (StatusCode::OK, Some("closed")), "{closed}");
    assert_eq!(health(&app).await["free_slots"], 3);

    assert_eq!(worker(&app, "undrain").await, json!({"draining": false, "active_sessions": 0, "free_slots": 3}));
    let fresh = app.create(json!({})).await;
    assert_eq!(fresh["state"], "ready");
    assert_eq!(app.delete(fresh["session_id"].as_str().unwrap()).await.0, StatusCode::OK);
    app.stop().await;
}
