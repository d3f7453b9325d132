//! Every failure answers in the JSON error envelope with the right status and code.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{KEY, TestApp};

/// Sends `request` and checks that it fails with `status` and `code` in the JSON envelope.
async fn expect_error(request: reqwest::RequestBuilder, status: StatusCode, code: &str) -> Value {
    let response = request.send().await.expect("request is answered");
    let got = response.status();
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "error.message: {body}");
    body
}

#[tokio::test]
async fn errors_use_the_json_envelope() {
    use StatusCode as S;
    let app = TestApp::start().await;
    let anonymous = |path: &str| app.client.get(format!("{}{path}", app.base));
    let post = |path: &str| app.request(Method::POST, path);

    expect_error(anonymous("/api/v2/sessions"), S::UNAUTHORIZED, "unauthorized").await;
    expect_error(anonymous("/api/v2/sessions").bearer_auth(format!("{KEY}x")), S::UNAUTHORIZED, "unauthorized").await;
    expect_error(anonymous("/metrics"), S::UNAUTHORIZED, "unauthorized").await;
    // Auth comes first: an unknown API route does not reveal itself without a key.
    expect_error(anonymous("/api/nope"), S::UNAUTHORIZED, "unauthorized").await;

    let json = "application/json";
    let malformed = post("/api/v2/sessions").header("content-type", json).body("{\"profile_id\": ");
    expect_error(malformed, S::BAD_REQUEST, "invalid_json").await;
    let wrong_type = post("/api/v2/sessions").json(&json!({"idle_timeout_secs": "soon"}));
    expect_error(wrong_type, S::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let not_json = post("/api/v2/sessions").header("content-type", "text/plain").body("hello");
    expect_error(not_json, S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let huge = format!("{{\"metadata\": {{\"blob\": \"{}\"}}}}", "x".repeat(13 * 1024 * 1024));
    expect_error(
        post("/api/v2/sessions").header("content-type", json).body(huge),
        S::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    for (body, status, code) in [
        (json!({"url": "file:///etc/passwd"}), S::BAD_REQUEST, "invalid_url"),
        (json!({"url": "http://169.254.169.254/latest/meta-data/"}), S::BAD_REQUEST, "invalid_url"),
        (json!({"profile_id": "../../etc"}), S::UNPROCESSABLE_ENTITY, "validation_failed"),
        (json!({"idle_timeout_secs": 0}), S::UNPROCESSABLE_ENTITY, "validation_failed"),
        (json!({"viewport": {"width": 10, "height": 10}}), S::UNPROCESSABLE_ENTITY, "validation_failed"),
        (json!({"display": true}), S::UNPROCESSABLE_ENTITY, "validation_failed"),
    ] {
        expect_error(post("/api/v2/sessions").json(&body), status, code).await;
    }

    let unknown = uuid::Uuid::new_v4().to_string();
    for bad_id in [unknown.as_str(), "not-a-uuid", "%FF", "%FF/screenshot"] {
        let request = app.request(Method::GET, &format!("/api/v2/sessions/{bad_id}"));
        expect_error(request, S::NOT_FOUND, "session_not_found").await;
    }
    expect_error(app.request(Method::GET, "/no/such/route"), S::NOT_FOUND, "not_found").await;
    expect_error(app.request(Method::PUT, "/api/v2/sessions"), S::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap();
    let navigate = format!("/api/v2/sessions/{id}/navigate");
    let screenshot = format!("/api/v2/sessions/{id}/screenshot");
    expect_error(post(&navigate).json(&json!({"url": "ftp://x"})), S::BAD_REQUEST, "invalid_url").await;
    let bad_query = app.request(Method::GET, &format!("{screenshot}?full_page=maybe"));
    expect_error(bad_query, S::BAD_REQUEST, "invalid_query").await;
    let refused_by_egress = post(&navigate).json(&json!({"url": "https://localhost:9/closed-port"}));
    expect_error(refused_by_egress, S::BAD_GATEWAY, "navigation_failed").await;

    assert_eq!(app.delete(id).await.0, S::OK);
    let gone =
        expect_error(app.request(Method::DELETE, &format!("/api/v2/sessions/{id}")), S::GONE, "session_closed").await;
    assert_eq!(gone["error"]["details"]["reason"], "closed");
    expect_error(app.request(Method::GET, &screenshot), S::GONE, "session_closed").await;

    let response = app.request(Method::GET, "/health").send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"), "responses carry a request id");
    app.stop().await;
}

#[tokio::test]
async fn health_is_public_and_metrics_count_sessions() {
    let app = TestApp::start().await;
    let health: Value = app.client.get(format!("{}/health", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["adspower"], "not_configured");
    assert_eq!(health["max_sessions"], 3);
    assert_eq!(health["active_sessions"], 0);
    let session = app.create(json!({})).await;
    let (_, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!(health["active_sessions"], 1);
    let metrics = app.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    for needle in [
        "bw_sessions_active",
        "bw_sessions_created_total{outcome=\"ok\"}",
        "bw_session_create_seconds_bucket",
        "bw_http_request_duration_seconds_bucket{route=\"/api/v2/sessions\",method=\"POST\",status=\"201\"",
    ] {
        assert!(metrics.contains(needle), "/metrics lacks {needle}:\n{metrics}");
    }
    app.delete(session["session_id"].as_str().unwrap()).await;
    app.stop().await;
}
