//! The V1 task macro (`POST /api/v1/tasks`): whole applications in one call, CAPTCHA and
//! copilot stops with `submit_only`, the timeout, and bad input.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::forms::applicant;
use crate::support::{TestApp, eventually_async, fixtures, submission, submissions};

/// A worker (it may fetch resumes from the fixture server, like every test worker).
pub async fn worker() -> TestApp {
    TestApp::start().await
}

pub fn task(task_id: &str, page: &str) -> Value {
    let applicant = applicant();
    json!({
        "task_id": task_id,
        "job_url": format!("{}/forms/{page}.html", fixtures()),
        "user_data": applicant["user_data"],
        "qa_answers": applicant["qa_answers"],
        "resume_file_url": format!("{}/forms/resume.pdf", fixtures()),
        "mode": "autopilot",
        "humanize": "off",
        "policy": {"timeout_seconds": 60, "save_artifacts": true},
    })
}

pub async fn run(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, "/api/v1/tasks", Some(body)).await
}

/// Runs a copilot task on the fixture `page` until it holds for review; returns the held result
/// and the task that finishes it (`submit_only` on the held session).
pub async fn held_for_review(app: &TestApp, task_id: &str, page: &str) -> (Value, Value) {
    let mut body = task(task_id, page);
    body["mode"] = json!("copilot");
    let (status, held) = run(app, body.clone()).await;
    assert_eq!(
        (status, held["blocked"].as_bool(), held["block_reason"].as_str()),
        (StatusCode::OK, Some(true), Some("review_required")),
        "{held}"
    );
    body["action"] = json!("submit_only");
    body["session_id"] = held["session_id"].clone();
    (held, body)
}

async fn png_at(app: &TestApp, url: &str) -> bool {
    let response = app.request(Method::GET, url).send().await.unwrap();
    response.status() == StatusCode::OK && response.bytes().await.unwrap().starts_with(b"\x89PNG")
}

#[tokio::test]
async fn autopilot_applies_on_single_page_and_multi_step_forms() {
    let app = worker().await;
    for (page, platform, recorded) in
        [("greenhouse/post", "greenhouse", "greenhouse"), ("lever/posting", "lever", "lever")]
    {
        let (status, result) = run(&app, task(&format!("t-{platform}"), page)).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        assert_eq!(result["success"], true, "{result}");
        assert_eq!(result["task_id"], format!("t-{platform}"));
        assert_eq!(result["platform"], platform);
        assert_eq!(result["confirmation_id"], "APP-12345");
        assert_eq!(result["next_action"], "continue");
        assert!(result["error"].is_null());
        for key in ["browser_start_ms", "navigate_ms", "fill_ms", "submit_ms", "total_ms"] {
            assert!(result["timing"][key].is_u64(), "timing.{key}: {result}");
        }
        let fields = result["filled_fields"].as_array().unwrap();
        assert!(fields.iter().any(|f| f["source"] == "user_data.email" && f["value"] == "adam.tester@example.com"));
        assert!(fields.iter().any(|f| f["source"] == "resume"), "{result}");
        for shot in ["form_filled", "confirmation"] {
            let url = result["screenshots"][shot].as_str().unwrap_or_else(|| panic!("no {shot} screenshot: {result}"));
            assert!(png_at(&app, url).await, "{shot} is served");
        }
        let payload = submission(recorded).unwrap();
        let email_key = if platform == "lever" { "email" } else { "job_application[email]" };
        assert_eq!(payload[email_key], "adam.tester@example.com");
        // The task's session is closed.
        let id = result["session_id"].as_str().unwrap();
        let (status, _) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
        assert_eq!(status, StatusCode::GONE);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_captcha_stops_the_task_for_a_person_and_submit_only_finishes_it() {
    let app = worker().await;
    let (status, result) = run(&app, task("t-captcha", "generic/gated")).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!((result["success"].as_bool(), result["blocked"].as_bool()), (Some(false), Some(true)), "{result}");
    assert_eq!(result["block_reason"], "captcha_detected");
    assert_eq!(result["next_action"], "needs_human");
    assert!(png_at(&app, result["screenshots"]["blocked"].as_str().unwrap()).await);
    let id = result["session_id"].as_str().unwrap().to_string();
    let (_, session) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(session["state"], "needs_human", "the session waits for a person");
    // The task's navigation is the session's own: its page and timing are recorded.
    assert!(session["current_url"].as_str().unwrap().contains("generic/gated"), "{session}");
    assert_eq!(session["timing"]["navigate_ms"], result["timing"]["navigate_ms"], "{session}");

    // The person solves the challenge, then the orchestrator continues.
    app.click(&id, "#solve-challenge").await;
    let (status, resumed) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/continue"), None).await;
    assert_eq!((status, resumed["state"].as_str()), (StatusCode::OK, Some("ready")), "{resumed}");
    let mut finish = task("t-captcha", "generic/gated");
    finish["action"] = json!("submit_only");
    finish["session_id"] = json!(id);
    let (status, done) = run(&app, finish).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(done["confirmation_id"], "APP-12345");
    assert_eq!(submission("captcha").unwrap()["full_name"], "Adam Tester");
    app.stop().await;
}

#[tokio::test]
async fn copilot_stops_before_submit_and_submit_only_completes() {
    let app = worker().await;
    let (held, finish) = held_for_review(&app, "t-copilot", "greenhouse/post").await;
    assert!(!held["filled_fields"].as_array().unwrap().is_empty());
    assert!(held["screenshots"]["form_filled"].is_string());
    let id = held["session_id"].as_str().unwrap().to_string();
    let (_, session) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(session["state"], "needs_human");
    let (_, done) = run(&app, finish).await;
    assert_eq!(
        (done["success"].as_bool(), done["confirmation_id"].as_str()),
        (Some(true), Some("APP-12345")),
        "{done}"
    );
    app.stop().await;
}

/// A review hold is the person's, not a detection result: the orchestrator reading the page
/// while the person reviews it (`analyze` detects blocks) does not lift it, and `submit_only`
/// then sends the page as the person left it instead of filling it again.
#[tokio::test]
async fn a_review_hold_outlasts_an_analyze_and_submit_only_keeps_the_persons_correction() {
    const CORRECTED: &str = "Adelheid";
    let app = worker().await;
    let (held, finish) = held_for_review(&app, "t-review-analyze", "greenhouse/post").await;
    let id = held["session_id"].as_str().unwrap().to_string();
    app.page_eval(&id, &format!("document.getElementById('first_name').value = '{CORRECTED}'")).await;

    let (status, analysis) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/analyze"), None).await;
    assert_eq!(status, StatusCode::OK, "{analysis}");
    let (_, session) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(
        (session["state"].as_str(), session["block"]["reason"].as_str()),
        (Some("needs_human"), Some("review_required")),
        "{session}"
    );

    let (_, done) = run(&app, finish).await;
    assert_eq!(done["success"], true, "{done}");
    let names: Vec<Value> =
        submissions("greenhouse").iter().map(|p| p["job_application[first_name]"].clone()).collect();
    assert!(names.iter().any(|n| n == CORRECTED), "the person's correction reached the employer: {names:?}");
    app.stop().await;
}

/// A page that refuses the reviewed submit (a required field the person emptied) leaves the
/// session held for the person; the submit that goes through lifts the hold.
#[tokio::test]
async fn a_refused_submit_keeps_the_review_hold_and_one_that_goes_through_lifts_it() {
    let app = worker().await;
    let (held, _) = held_for_review(&app, "t-review-refused", "greenhouse/post").await;
    let id = held["session_id"].as_str().unwrap().to_string();
    let (submit, session) = (format!("/api/v2/sessions/{id}/submit"), format!("/api/v2/sessions/{id}"));
    let humanize_off = || Some(json!({"humanize": "off"}));

    app.page_eval(&id, "document.getElementById('first_name').value = ''").await;
    let (_, refused) = app.call(Method::POST, &submit, humanize_off()).await;
    assert_eq!(refused["outcome"], "validation_errors", "{refused}");
    let (_, info) = app.call(Method::GET, &session, None).await;
    assert_eq!(
        (info["state"].as_str(), info["block"]["reason"].as_str()),
        (Some("needs_human"), Some("review_required"))
    );

    app.page_eval(&id, "document.getElementById('first_name').value = 'Adam'").await;
    let (_, sent) = app.call(Method::POST, &submit, humanize_off()).await;
    assert_eq!(sent["outcome"], "submitted", "{sent}");
    let (_, info) = app.call(Method::GET, &session, None).await;
    assert_eq!((info["state"].as_str(), &info["block"]), (Some("ready"), &Value::Null), "{info}");
    app.stop().await;
}

#[tokio::test]
async fn a_page_that_never_loads_times_out_and_counts_against_the_profile() {
    let app = worker().await;
    let mut body = task("t-timeout", "greenhouse/post");
    body["job_url"] = json!(format!("{}/hang", fixtures()));
    body["profile_id"] = json!("p-timeout");
    // Long enough for the session to open on a loaded machine (the page is what never loads).
    body["policy"]["timeout_seconds"] = json!(6);
    let (status, result) = run(&app, body).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!((result["success"].as_bool(), result["error"].as_str()), (Some(false), Some("timeout")), "{result}");
    let id = result["session_id"].as_str().unwrap();
    let (status, _) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::GONE, "the session was closed");
    assert_eq!(result["profile_status"]["consecutive_failures"], 1, "{result}");
    app.stop().await;
}

#[tokio::test]
async fn active_tasks_are_counted_in_health() {
    let app = worker().await;
    let mut body = task("t-health", "greenhouse/post");
    body["job_url"] = json!(format!("{}/hang", fixtures()));
    body["policy"]["timeout_seconds"] = json!(3);
    let request = app.request(Method::POST, "/api/v1/tasks").json(&body).send();
    let running = tokio::spawn(request);
    let busy = eventually_async(Duration::from_secs(3), || async {
        app.call(Method::GET, "/health", None).await.1["active_tasks"] == 1
    })
    .await;
    assert!(busy, "a running task shows in /health");
    running.await.unwrap().unwrap();
    assert_eq!(app.call(Method::GET, "/health", None).await.1["active_tasks"], 0);
    app.stop().await;
}

#[tokio::test]
async fn bad_task_input_is_refused_naming_the_field() {
    let app = worker().await;
    let mut cases = Vec::new();
    for missing in ["job_url", "task_id"] {
        let mut body = task("t-bad", "greenhouse/post");
        body.as_object_mut().unwrap().remove(missing);
        cases.push((body, StatusCode::UNPROCESSABLE_ENTITY, missing));
    }
    let mut body = task("t-bad", "greenhouse/post");
    body["mode"] = json!("sometimes");
    cases.push((body, StatusCode::UNPROCESSABLE_ENTITY, "mode"));
    let mut body = task("t-bad", "greenhouse/post");
    body["action"] = json!("submit_only");
    cases.push((body, StatusCode::UNPROCESSABLE_ENTITY, "session_id"));
    let mut body = task("t-bad", "greenhouse/post");
    body["job_url"] = json!("ftp://example.com/job");
    cases.push((body, StatusCode::BAD_REQUEST, "http"));
    let mut body = task("t-bad", "greenhouse/post");
    body["callback_url"] = json!("http://169.254.169.254/hook");
    cases.push((body, StatusCode::BAD_REQUEST, "callback_url"));
    for (body, status, words) in cases {
        let (got, answer) = run(&app, body).await;
        assert_eq!(got, status, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(words), "{words}: {answer}");
    }
    assert!(app.listed().await.is_empty(), "no session was opened for bad input");
    app.stop().await;
}

#[tokio::test]
async fn artifacts_go_to_the_object_store_when_one_is_configured() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let app = TestApp::start_with(&["--artifacts-url", &url]).await;
    let mut body = task("t-store", "greenhouse/post");
    body["mode"] = json!("copilot");
    let (_, held) = run(&app, body).await;
    let shot = held["screenshots"]["form_filled"].as_str().unwrap();
    assert!(shot.starts_with(&url), "{held}");
    let path = shot.strip_prefix("file://").unwrap();
    assert!(std::fs::read(path).unwrap().starts_with(b"\x89PNG"), "the object store holds the PNG");
    app.stop().await;
}
