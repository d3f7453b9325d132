//! Webhooks and the live event stream: the caller's token, the seed's payload, order, retries
//! only where they help, and a receiver that never answers does not hold the task up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, eventually, fixtures};
use crate::tasks::{run, task};

#[derive(Clone, Copy)]
enum Behaviour {
    Ok,
    FailTwice,
    BadRequest,
    Hang,
}

type Hits = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A webhook receiver on 127.0.0.1 that records every request it gets.
async fn receiver(behaviour: Behaviour) -> (String, Hits) {
    let hits: Hits = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State((hits, behaviour)): State<(Hits, Behaviour)>, headers: HeaderMap, body: String| async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let count = {
                        let mut hits = hits.lock().unwrap();
                        hits.push((auth, serde_json::from_str(&body).unwrap_or(Value::Null)));
                        hits.len()
                    };
                    match behaviour {
                        Behaviour::Ok => StatusCode::OK,
                        Behaviour::FailTwice if count <= 2 => StatusCode::INTERNAL_SERVER_ERROR,
                        Behaviour::FailTwice => StatusCode::OK,
                        Behaviour::BadRequest => StatusCode::BAD_REQUEST,
                        Behaviour::Hang => futures::future::pending().await,
                    }
                },
            ),
        )
        .with_state((hits.clone(), behaviour));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

/// A worker whose egress rules let it reach these loopback receivers (and the fixture pages).
async fn worker_reaching(urls: &[&str]) -> TestApp {
    let allowed: Vec<String> =
        urls.iter().map(|u| url::Url::parse(u).unwrap().socket_addrs(|| None).unwrap()[0].to_string()).collect();
    TestApp::start_with(&["--egress-allow", &allowed.join(",")]).await
}

fn kinds(hits: &Hits) -> Vec<String> {
    hits.lock().unwrap().iter().map(|(_, b)| b["type"].as_str().unwrap_or("?").to_string()).collect()
}

#[tokio::test]
async fn a_task_reports_its_progress_by_webhook_in_order() {
    let (url, hits) = receiver(Behaviour::Ok).await;
    let app = worker_reaching(&[&url]).await;
    let mut body = task("t-hooks", "greenhouse/post");
    body["callback_url"] = json!(url);
    body["callback_token"] = json!("cb-secret-token");
    let (_, result) = run(&app, body).await;
    assert_eq!(result["success"], true, "{result}");
    assert!(
        eventually(Duration::from_secs(5), || kinds(&hits).contains(&"completed".to_string())).await,
        "{:?}",
        kinds(&hits)
    );
    let hits = hits.lock().unwrap().clone();
    let session = result["session_id"].clone();
    for (auth, payload) in &hits {
        assert_eq!(auth.as_deref(), Some("Bearer cb-secret-token"));
        assert_eq!(payload["task_id"], "t-hooks", "{payload}");
        assert_eq!(payload["session_id"], session);
        assert!(payload["timestamp"].is_string() && payload["data"].is_object(), "{payload}");
    }
    let steps: Vec<(String, u64)> = hits
        .iter()
        .filter(|(_, p)| p["type"] == "progress")
        .map(|(_, p)| (p["data"]["step"].as_str().unwrap().to_string(), p["data"]["pct"].as_u64().unwrap()))
        .collect();
    let first =
        |name: &str| steps.iter().position(|(s, _)| s == name).unwrap_or_else(|| panic!("no {name}: {steps:?}"));
    assert!(
        first("navigating") < first("analyzing")
            && first("analyzing") < first("filling")
            && first("filling") < first("submitting")
    );
    assert_eq!(steps[first("navigating")].1, 10);
    assert_eq!(steps[first("submitting")].1, 90);
    let order: Vec<&str> = hits.iter().map(|(_, p)| p["type"].as_str().unwrap()).collect();
    let completed = order.iter().position(|k| *k == "completed").unwrap();
    assert!(completed > first("submitting"), "completed comes after submitting: {order:?}");
    app.stop().await;
}

#[tokio::test]
async fn receivers_get_retries_on_5xx_only_and_never_slow_the_task() {
    let (fail_url, fail_hits) = receiver(Behaviour::FailTwice).await;
    let (bad_url, bad_hits) = receiver(Behaviour::BadRequest).await;
    let (hang_url, hang_hits) = receiver(Behaviour::Hang).await;
    let app = worker_reaching(&[&fail_url, &bad_url, &hang_url]).await;
    // A session created through the V2 API with a callback gets the same webhooks.
    let session = app.create(json!({"callback_url": fail_url, "metadata": {"task_id": "v2-hooks"}})).await;
    assert!(
        eventually(Duration::from_secs(10), || fail_hits.lock().unwrap().len() >= 3).await,
        "two 500s, then delivered"
    );
    let bodies: Vec<Value> = fail_hits.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(bodies[0], bodies[2], "the same event, once more each time");
    assert_eq!(bodies[0]["type"], "state_change");
    assert_eq!(bodies[0]["task_id"], "v2-hooks");
    app.delete(session["session_id"].as_str().unwrap()).await;

    let session = app.create(json!({"callback_url": bad_url})).await;
    assert!(eventually(Duration::from_secs(5), || bad_hits.lock().unwrap().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bad_hits.lock().unwrap().len(), 1, "a 400 is not retried");
    app.delete(session["session_id"].as_str().unwrap()).await;

    // A receiver that never answers: the task still finishes while its webhooks hang.
    let mut body = task("t-hang", "greenhouse/post");
    body["callback_url"] = json!(hang_url);
    let (_, result) = run(&app, body).await;
    assert_eq!(result["success"], true, "{result}");
    let waiting = hang_hits.lock().unwrap().len();
    assert!(waiting >= 1, "the first webhook reached the receiver and is still unanswered");
    app.stop().await;
}

#[tokio::test]
async fn a_late_event_subscriber_gets_the_replay_then_live_events() {
    let app = TestApp::start().await;
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let url = format!("{}/pages/captcha-recaptcha.html", fixtures());
    let (status, _) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url}))).await;
    assert_eq!(status, StatusCode::OK);
    let mut stream = app.request(Method::GET, &format!("/api/v2/sessions/{id}/events")).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while !text.contains("event: captcha_detected") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.find("event: state_change").unwrap() < text.find("event: captcha_detected").unwrap(),
        "replayed in order"
    );
    app.delete(&id).await;
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("\"state\":\"closed\""), "the close is the last event and the stream ends: {text}");
    let (status, _) = app.call(Method::GET, &format!("/api/v2/sessions/{id}/events"), None).await;
    assert_eq!(status, StatusCode::GONE);
    app.stop().await;
}
