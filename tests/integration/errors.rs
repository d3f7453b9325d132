//! Every failure answers in the JSON error envelope with the right status and code.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{KEY, TestApp};

async fn envelope(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let body: Value = response.json().await.expect("error bodies are JSON");
    let code = body["error"]["code"].as_str().expect("error.code").to_string();
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "error.message: {body}");
    (status, code, body)
}

#[tokio::test]
async fn errors_use_the_json_envelope() {
    let app = TestApp::start().await;
    let url = |path: &str| format!("{}{path}", app.base);
    let client = &app.client;

    let (status, code, _) = envelope(client.get(url("/api/v2/sessions")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let wrong = client.get(url("/api/v2/sessions")).bearer_auth(format!("{KEY}x")).send().await.unwrap();
    assert_eq!(envelope(wrong).await.0, StatusCode::UNAUTHORIZED);
    let metrics = client.get(url("/metrics")).send().await.unwrap();
    assert_eq!(envelope(metrics).await.0, StatusCode::UNAUTHORIZED);
    // Auth comes first: an unknown API route does not reveal itself without a key.
    assert_eq!(envelope(client.get(url("/api/nope")).send().await.unwrap()).await.0, StatusCode::UNAUTHORIZED);

    let malformed = app
        .request(Method::POST, "/api/v2/sessions")
        .header("content-type", "application/json")
        .body("{\"profile_id\": ")
        .send()
        .await
        .unwrap();
    let (status, code, _) = envelope(malformed).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_json"));

    let wrong_type =
        app.request(Method::POST, "/api/v2/sessions").json(&json!({"idle_timeout_secs": "soon"})).send().await.unwrap();
    let (status, code, _) = envelope(wrong_type).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));

    let not_json = app
        .request(Method::POST, "/api/v2/sessions")
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(envelope(not_json).await.1, "unsupported_media_type");

    for (body, expected) in [
        (json!({"url": "file:///etc/passwd"}), "invalid_url"),
        (json!({"url": "http://169.254.169.254/latest/meta-data/"}), "invalid_url"),
        (json!({"profile_id": "../../etc"}), "validation_failed"),
        (json!({"idle_timeout_secs": 0}), "validation_failed"),
        (json!({"viewport": {"width": 10, "height": 10}}), "validation_failed"),
        (json!({"display": true}), "validation_failed"),
    ] {
        let (status, response) = app.call(Method::POST, "/api/v2/sessions", Some(body.clone())).await;
        assert_eq!(response["error"]["code"], expected, "{body} → {status} {response}");
    }

    let unknown = uuid::Uuid::new_v4();
    let (status, code, _) =
        envelope(app.request(Method::GET, &format!("/api/v2/sessions/{unknown}")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "session_not_found"));
    let (status, code, _) =
        envelope(app.request(Method::GET, "/api/v2/sessions/not-a-uuid").send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "session_not_found"));
    let (status, code, _) = envelope(app.request(Method::GET, "/no/such/route").send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));

    let (status, code, _) = envelope(app.request(Method::PUT, "/api/v2/sessions").send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    let huge = format!("{{\"metadata\": {{\"blob\": \"{}\"}}}}", "x".repeat(13 * 1024 * 1024));
    let too_big = app
        .request(Method::POST, "/api/v2/sessions")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (status, code, _) = envelope(too_big).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));

    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap();
    let (status, code, _) = envelope(
        app.request(Method::POST, &format!("/api/v2/sessions/{id}/navigate"))
            .json(&json!({"url": "ftp://x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_url"));
    let (status, code, _) = envelope(
        app.request(Method::GET, &format!("/api/v2/sessions/{id}/screenshot?full_page=maybe")).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_query"));
    let (status, code, _) = envelope(
        app.request(Method::POST, &format!("/api/v2/sessions/{id}/navigate"))
            .json(&json!({"url": "http://127.0.0.1:9/closed-port"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_GATEWAY, "navigation_failed"));

    assert_eq!(app.delete(id).await.0, StatusCode::OK);
    let (status, body) = app.delete(id).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"]["code"], "session_closed");
    assert_eq!(body["error"]["details"]["reason"], "closed");
    let (status, _) = app.call(Method::GET, &format!("/api/v2/sessions/{id}/screenshot"), None).await;
    assert_eq!(status, StatusCode::GONE);

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
