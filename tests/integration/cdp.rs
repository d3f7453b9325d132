//! The CDP passthrough: Playwright and Puppeteer attached to a session, auth before the upgrade,
//! attached clients as activity, and sockets closed with their session.

use std::time::Duration;

use browser_worker::token::Scope;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    KEY, SECRET, TestApp, evaluate_over_cdp, eventually_async, fixtures, forge_token, node, websocket,
};

/// A `cdp-token` URL for session `id`.
async fn token_url(app: &TestApp, id: &str) -> String {
    let (status, access) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/cdp-token"), None).await;
    assert_eq!(status, StatusCode::OK, "{access}");
    access["cdp_url"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn playwright_and_puppeteer_drive_a_session_through_the_passthrough() {
    let app = TestApp::start().await;
    let session = app.create(json!({"url": format!("{}/pages/form.html", fixtures())})).await;
    let id = session["session_id"].as_str().unwrap();
    let cdp_url = session["cdp_url"].as_str().unwrap();
    assert_eq!(cdp_url, format!("{}/api/v2/sessions/{id}/cdp", app.base.replace("http://", "ws://")));

    // Playwright with the API key as a header.
    let (ok, out, err) = node("cdp_client.mjs", &["playwright", cdp_url, "Ada"], &[("BW_KEY", KEY)]).await;
    assert!(ok, "playwright failed: {err}");
    let result: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(result["title"], "Passthrough form");
    assert_eq!(result["typed"], "Ada");
    let with_token = token_url(&app, id).await;
    assert_eq!(evaluate_over_cdp(&with_token, "document.querySelector('#name').value").await, "Ada");

    // Puppeteer with a session token in the URL; it types after what Playwright left.
    let (ok, out, err) = node("cdp_client.mjs", &["puppeteer", &with_token, " Lovelace"], &[]).await;
    assert!(ok, "puppeteer failed: {err}");
    let result: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(result["title"], "Passthrough form");
    // The worker's own analyze sees what the developer's tools typed.
    let (status, analysis) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/analyze"), None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{analysis}");
    let name = analysis["fields"].as_array().unwrap().iter().find(|f| f["html_id"] == "name").expect("the #name field");
    assert_eq!(name["value"], "Ada Lovelace", "{analysis}");

    // Playwright over HTTP: it reads the per-session /json/version, which points back at the passthrough.
    let http_endpoint = format!("{}/api/v2/sessions/{id}", app.base);
    let (ok, out, err) = node("cdp_client.mjs", &["playwright", &http_endpoint, "!"], &[("BW_KEY", KEY)]).await;
    assert!(ok, "playwright over http failed: {err}");
    assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap()["typed"], "Ada Lovelace!");

    // A wrong key is refused before the upgrade, as Playwright reports it.
    let (ok, _, err) =
        node("cdp_client.mjs", &["playwright", cdp_url], &[("BW_KEY", "wrong-key-0123456789abcdef")]).await;
    assert!(!ok && err.contains("401"), "a wrong key is refused: {err}");

    // The clients detached without closing the browser: the session still works.
    let (status, info) = app
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{id}/navigate"),
            Some(json!({"url": format!("{}/pages/green.html", fixtures())})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    app.stop().await;
}

#[tokio::test]
async fn the_passthrough_refuses_bad_credentials_before_upgrading() {
    let app = TestApp::start_with(&["--token-secret", SECRET]).await;
    let a = app.create(json!({})).await;
    let b = app.create(json!({})).await;
    let (a_id, b_id) = (a["session_id"].as_str().unwrap(), b["session_id"].as_str().unwrap());
    let cdp = a["cdp_url"].as_str().unwrap();

    assert_eq!(websocket(cdp, None, None).await.err(), Some(StatusCode::UNAUTHORIZED), "no credentials");
    assert_eq!(
        websocket(cdp, Some("wrong-key-0123456789abcdef"), None).await.err(),
        Some(StatusCode::UNAUTHORIZED),
        "wrong key"
    );
    for (why, token) in [
        ("a token of another session", forge_token(b_id, Scope::Cdp, 600)),
        ("a VNC token", forge_token(a_id, Scope::Vnc, 600)),
        ("an expired token", forge_token(a_id, Scope::Cdp, -5)),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        let url = format!("{cdp}?token={token}");
        assert_eq!(websocket(&url, None, None).await.err(), Some(StatusCode::UNAUTHORIZED), "{why}");
    }
    // A token does not open other routes of the session.
    let token = forge_token(a_id, Scope::Cdp, 600);
    let response = app.client.get(format!("{}/api/v2/sessions/{a_id}?token={token}", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The right token, and the key, both open it.
    assert!(websocket(&format!("{cdp}?token={token}"), None, None).await.is_ok());
    assert!(websocket(cdp, Some(KEY), None).await.is_ok());

    // /json/version advertises the passthrough; a plain GET of the socket route is a clear 400.
    let (status, version) = app.call(Method::GET, &format!("/api/v2/sessions/{a_id}/json/version"), None).await;
    assert_eq!(status, StatusCode::OK, "{version}");
    assert_eq!(version["webSocketDebuggerUrl"], cdp);
    assert!(version["Browser"].as_str().unwrap().contains("Chrome"));
    let (status, body) = app.call(Method::GET, &format!("/api/v2/sessions/{a_id}/cdp"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("websocket_required")));
    app.stop().await;
}

#[tokio::test]
async fn an_attached_client_keeps_the_session_open_and_closing_the_session_ends_it() {
    let app = TestApp::start().await;
    let session = app.create(json!({"idle_timeout_secs": 2})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let mut socket = websocket(session["cdp_url"].as_str().unwrap(), Some(KEY), None).await.unwrap();

    // Well past the idle timeout, the session is still listed (listing is not activity).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(app.listed().await.contains(&id), "an attached client keeps the session from idling out");

    let (status, _) = app.delete(&id).await;
    assert_eq!(status, StatusCode::OK);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "closing the session closes the attached socket");

    // Without a client, the next session idles out as before.
    let idle = app.create(json!({"idle_timeout_secs": 1})).await;
    let idle_id = idle["session_id"].as_str().unwrap().to_string();
    assert!(eventually_async(Duration::from_secs(10), || async { !app.listed().await.contains(&idle_id) }).await);
    app.stop().await;
}

#[tokio::test]
async fn a_bridge_without_traffic_closes_after_its_idle_limit() {
    let app = TestApp::start_with(&["--bridge-idle-timeout-secs", "1"]).await;
    let session = app.create(json!({})).await;
    let mut socket = websocket(session["cdp_url"].as_str().unwrap(), Some(KEY), None).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle CDP socket is closed by the worker");
    // The session itself lives on.
    let (status, _) =
        app.call(Method::GET, &format!("/api/v2/sessions/{}", session["session_id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}
