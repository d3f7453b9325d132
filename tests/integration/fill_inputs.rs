//! Fill's input policy (the event streams of `human`, `fast` and `off`) and its answers to bad
//! input: each a clear error that leaves the session usable.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::forms::{applicant, form_state, navigate, open, resume_inline};
use crate::support::{TestApp, fixtures};

fn events_of<'a>(events: &'a [Value], kind: &str, target: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind && e["target"] == target).collect()
}

/// Fills `generic/short` with a policy and returns (report, events, state).
async fn fill_short(app: &TestApp, id: &str, humanize: &str) -> (Value, Vec<Value>, Value) {
    navigate(app, id, "generic/short").await;
    let applicant = applicant();
    let (status, report) = app
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{id}/fill"),
            Some(json!({"user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"], "humanize": humanize})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let events = app.page_eval(id, "window.__events").await.as_array().unwrap().clone();
    (report, events, form_state(app, id).await)
}

/// Typed key by key: trusted keydowns, every typo (an extra key) followed by a Backspace; trusted
/// clicks inside the fields; the page scrolled to reach the form.
fn assert_typed_like_a_person(events: &[Value], state: &Value, policy: &str) {
    assert_eq!(state["full_name"], "Adam Tester", "{policy}");
    assert_eq!(state["email"], "adam.tester@example.com", "{policy}");
    assert_eq!(state["relocate"], true, "{policy}");
    for (field, text) in [("full_name", "Adam Tester"), ("email", "adam.tester@example.com")] {
        let keys = events_of(events, "keydown", field);
        assert!(keys.iter().all(|k| k["isTrusted"] == true), "{policy}: untrusted keys");
        let backspaces = keys.iter().filter(|k| k["key"] == "Backspace").count();
        let printable = keys.len() - backspaces;
        assert_eq!(
            printable,
            text.chars().count() + backspaces,
            "{policy}: one key per character plus corrected typos"
        );
        assert!(events_of(events, "input", field).len() >= text.len(), "{policy}: an input event per character");
        let clicks = events_of(events, "mousedown", field);
        assert_eq!(clicks.len(), 1, "{policy}: one click into {field}");
        assert_eq!(clicks[0]["isTrusted"], true);
    }
    let box_click = events_of(events, "click", "relocate");
    assert!(box_click.iter().any(|c| c["isTrusted"] == true), "{policy}: the checkbox was clicked like a person");
    assert!(events.iter().any(|e| e["type"] == "mousemove" && e["isTrusted"] == true), "{policy}: the mouse moved");
    assert!(events.iter().any(|e| e["type"] == "scroll"), "{policy}: the page scrolled to the form");
}

#[tokio::test]
async fn humanize_fast_and_human_send_real_key_and_mouse_events() {
    let app = TestApp::start().await;
    let id = open(&app, "generic/short").await;
    for policy in ["fast", "human"] {
        let (report, events, state) = fill_short(&app, &id, policy).await;
        assert_eq!(report["filled_fields"].as_array().unwrap().len(), 3, "{report}");
        assert_typed_like_a_person(&events, &state, policy);
    }
    // `off` inserts each value at once: no per-character keys, the same final state.
    let (_, events, state) = fill_short(&app, &id, "off").await;
    assert_eq!(state["full_name"], "Adam Tester");
    assert!(events_of(&events, "keydown", "full_name").is_empty());
    assert_eq!(events_of(&events, "input", "full_name").len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn bad_fill_input_gets_clear_errors_and_the_session_stays_usable() {
    let app = TestApp::start().await;
    let id = open(&app, "generic/plain").await;
    let path = format!("/api/v2/sessions/{id}/fill");
    let base = fixtures();
    let cases = [
        (
            json!({"resume_file_url": format!("{base}/forms/no-such-resume.pdf")}),
            StatusCode::BAD_GATEWAY,
            "resume_download_failed",
            "404",
        ),
        (
            json!({"resume_file_url": format!("{base}/big.pdf")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_resume",
            "10 MiB",
        ),
        (json!({"resume_file_url": "file:///etc/passwd"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_resume", "http"),
        (
            json!({"resume_file_url": "http://169.254.169.254/latest/meta-data/"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_resume",
            "metadata",
        ),
        (
            json!({"resume": {"filename": "cv.pdf", "content_base64": "not base64!"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_resume",
            "base64",
        ),
        (
            json!({"overrides": {"no_such_field": "x"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            "no_such_field",
        ),
        (json!({"engine": "llm"}), StatusCode::UNPROCESSABLE_ENTITY, "engine_unavailable", "LLM"),
        (json!({"humanize": "sometimes"}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "humanize"),
    ];
    for (body, status, code, words) in cases {
        let (got, answer) = app.call(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{body}: message {message:?} should mention {words:?}");
    }
    // Nothing was written by the refused calls, and the session still fills.
    assert_eq!(form_state(&app, &id).await["fname"], "");
    let applicant = applicant();
    let (status, report) = app
        .call(
            Method::POST,
            &path,
            Some(json!({"user_data": applicant["user_data"], "resume_file_url": format!("{base}/forms/resume.pdf"),
                "overrides": {"referrer_id": "E-1001"}, "humanize": "off"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let state = form_state(&app, &id).await;
    assert_eq!(state["fname"], "Adam");
    assert_eq!(state["referrer_id"], "E-1001", "an override fills a field the applicant has no data for");
    assert_eq!(state["cv"]["size"], std::fs::metadata(crate::support::forms_dir().join("resume.pdf")).unwrap().len());
    let filled = report["filled_fields"].as_array().unwrap();
    assert!(
        filled.iter().any(|f| f["field_id"] == "referrer_id" && f["source"] == "override" && f["verified"] == true)
    );
    // Without qa_answers the legal questions stay open: they are never answered from user_data.
    let missing: Vec<&str> =
        report["missing_required"].as_array().unwrap().iter().map(|m| m["field_id"].as_str().unwrap()).collect();
    assert_eq!(missing, ["work_auth", "sponsorship"], "{report}");

    // Loopback resumes are refused unless their address is listed (the fixture server is).
    let strict = TestApp::start().await;
    let other = open(&strict, "generic/plain").await;
    let (status, answer) = strict
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{other}/fill"),
            Some(json!({"resume": resume_inline(), "resume_file_url": format!("{base}/forms/resume.pdf")})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "both resume forms at once: {answer}");
    let (status, answer) = strict
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{other}/fill"),
            Some(json!({"resume_file_url": "http://127.0.0.1:9/forms/resume.pdf"})),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_resume")),
        "{answer}"
    );
    assert!(answer["error"]["message"].as_str().unwrap().contains("BW_EGRESS_ALLOW"));

    // Fill and analyze on a closed session: 410.
    strict.delete(&other).await;
    for op in ["fill", "analyze"] {
        let (status, answer) =
            strict.call(Method::POST, &format!("/api/v2/sessions/{other}/{op}"), Some(json!({}))).await;
        assert_eq!(status, StatusCode::GONE, "{op}: {answer}");
    }
    strict.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_value_over_the_typing_cap_is_inserted_at_once_even_for_people() {
    let app = TestApp::start().await;
    let id = open(&app, "generic/short").await;
    // 4,000 characters: key by key at 50–180 ms each, this fill would take about eight minutes.
    let long = "Ada Lovelace-".repeat(308);
    let body = json!({"user_data": {"full_name": long, "email": "ada@example.com"}, "humanize": "human"});
    let (status, report) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/fill"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let events = app.page_eval(&id, "window.__events").await.as_array().unwrap().clone();
    let state = form_state(&app, &id).await;
    assert_eq!(state["full_name"], long.as_str(), "the whole value, read back from the page");
    assert!(events_of(&events, "keydown", "full_name").is_empty(), "inserted, not typed");
    assert_eq!(events_of(&events, "input", "full_name").len(), 1, "one insertion");
    assert_eq!(state["email"], "ada@example.com");
    assert!(!events_of(&events, "keydown", "email").is_empty(), "a short value is still typed key by key");
    app.stop().await;
}
