//! Submission evidence and dry runs (issue 20): `submit` reports the request the form sent
//! (field names, a digest, status, timing; never values) and the confirmation page's text; a
//! dry run holds the submission back and says exactly what it would have sent. The fixture
//! server records what reached it, which is the employer's side.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::forms::{applicant, open, resume_inline};
use crate::support::{TestApp, submissions};

async fn post(app: &TestApp, id: &str, op: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, &format!("/api/v2/sessions/{id}/{op}"), Some(body)).await
}

/// Fills the session's form as `first_name` (a value only this test sends).
async fn fill_as(app: &TestApp, id: &str, first_name: &str) {
    let mut applicant = applicant();
    applicant["user_data"]["first_name"] = json!(first_name);
    let body = json!({"user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"],
        "resume": resume_inline(), "humanize": "off"});
    let (status, report) = post(app, id, "fill", body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(report["missing_required"].as_array().unwrap().is_empty(), "{report}");
}

/// The greenhouse fixture's payloads that carry `first_name`.
fn received(first_name: &str) -> Vec<Value> {
    submissions("greenhouse").into_iter().filter(|p| p["job_application[first_name]"] == first_name).collect()
}

#[tokio::test]
async fn submit_evidence_is_the_request_the_employer_received_without_its_values() {
    let app = TestApp::start().await;
    let id = open(&app, "greenhouse/post").await;
    let marker = format!("Evidence{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    fill_as(&app, &id, &marker).await;
    let (status, answer) = post(&app, &id, "submit", json!({"humanize": "off"})).await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("submitted")), "{answer}");

    let payloads = received(&marker);
    assert_eq!(payloads.len(), 1, "the employer received the application once");
    let evidence = &answer["evidence"];
    let request = &evidence["request"];
    assert_eq!(
        (request["method"].as_str(), request["resource_type"].as_str()),
        (Some("POST"), Some("Document")),
        "{evidence}"
    );
    assert!(request["url"].as_str().unwrap().ends_with("/submit/greenhouse"), "{evidence}");
    assert!(request["duration_ms"].is_u64(), "{evidence}");
    assert!(matches!(evidence["response_status"].as_u64(), Some(200 | 303)), "{evidence}");
    // The names sent are the names the employer got; no value is in the evidence.
    let sent: BTreeSet<&str> = request["fields"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let got: BTreeSet<&str> = payloads[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(sent, got, "{evidence}");
    assert!(request["body_sha256"].as_str().is_some_and(|d| d.len() == 64), "{evidence}");
    assert!(!evidence.to_string().contains(&marker), "evidence carries a value: {evidence}");
    assert!(evidence["confirmation_text"].as_str().unwrap().contains("APP-12345"), "{evidence}");
    assert_eq!(evidence["screenshot"], answer["screenshot"]);
    app.stop().await;
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_returns_exactly_what_it_would_have_sent() {
    let app = TestApp::start().await;
    let id = open(&app, "greenhouse/post").await;
    let marker = format!("DryRun{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    fill_as(&app, &id, &marker).await;
    let (status, answer) = post(&app, &id, "submit", json!({"humanize": "off", "dry_run": true})).await;
    assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("intercepted")), "{answer}");
    let held = &answer["intercepted"];
    assert_eq!((held["method"].as_str(), held["resource_type"].as_str()), (Some("POST"), Some("Document")), "{held}");
    let fields: Vec<(&str, &str)> = held["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    assert!(fields.contains(&("job_application[first_name]", marker.as_str())), "{held}");
    assert!(fields.contains(&("job_application[resume]", "<file resume.pdf>")), "{held}");

    // Nothing reached the employer; the same form sent for real carries the same fields.
    assert!(received(&marker).is_empty(), "a dry run posted the application");
    let (_, page) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(page["state"], "ready", "{page}");
    let id = open(&app, "greenhouse/post").await;
    fill_as(&app, &id, &marker).await;
    let (_, answer) = post(&app, &id, "submit", json!({"humanize": "off"})).await;
    assert_eq!(answer["outcome"], "submitted", "{answer}");
    let payload = received(&marker).pop().expect("submitted for real");
    for (name, value) in fields.iter().filter(|(_, v)| !v.starts_with("<file")) {
        assert_eq!(payload[*name].as_str(), Some(*value), "{name} as held back vs as received");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_fetch_submission_and_a_v1_task_are_held_back_by_a_dry_run() {
    let app = TestApp::start().await;
    // `validation` posts FormData with fetch() once the form is valid.
    let id = open(&app, "generic/validation").await;
    let marker = format!("Fetch{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut applicant = applicant();
    applicant["user_data"]["first_name"] = json!(marker);
    let body = json!({"user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"],
        "resume": resume_inline(), "humanize": "off", "overrides": {"notice_period": "Two weeks"}});
    let (status, report) = post(&app, &id, "fill", body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, answer) = post(&app, &id, "submit", json!({"humanize": "off", "dry_run": true})).await;
    assert_eq!(answer["outcome"], "intercepted", "{answer}");
    // Chromium calls a fetch() "XHR" or "Fetch" depending on the version.
    assert!(matches!(answer["intercepted"]["resource_type"].as_str(), Some("XHR" | "Fetch")), "{answer}");
    assert!(answer["intercepted"].to_string().contains(&marker), "{answer}");
    assert!(
        !submissions("validation").iter().any(|p| p.to_string().contains(&marker)),
        "the held-back fetch reached the server"
    );

    // A V1 task with `dry_run`: the result says what it would have sent.
    let mut body = crate::tasks::task("t-dry-run", "greenhouse/post");
    body["user_data"]["first_name"] = json!(marker);
    body["dry_run"] = json!(true);
    let (status, result) = crate::tasks::run(&app, body).await;
    assert_eq!((status, result["outcome"].as_str()), (StatusCode::OK, Some("intercepted")), "{result}");
    assert_eq!(result["success"], false, "{result}");
    assert!(result["intercepted"]["fields"].to_string().contains(&marker), "{result}");
    assert!(received(&marker).is_empty(), "a dry-run task posted the application");
    app.stop().await;
}

#[tokio::test]
async fn no_applicant_value_reaches_the_log_of_an_evidenced_or_dry_run_submit() {
    let data = crate::support::data_dir();
    let worker = crate::support::LoggedWorker::spawn(data.path(), &[("BW_LOG", "debug")]).await;
    let marker = format!("Logged{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    for dry_run in [true, false] {
        let url = format!("{}/forms/greenhouse/post.html", crate::support::fixtures());
        let (status, session) = worker.call(Method::POST, "/api/v2/sessions", Some(json!({"url": url}))).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        let id = session["session_id"].as_str().unwrap().to_string();
        let mut applicant = applicant();
        applicant["user_data"]["first_name"] = json!(marker);
        let body = json!({"user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"],
            "resume": resume_inline(), "humanize": "off"});
        let (status, _) = worker.call(Method::POST, &format!("/api/v2/sessions/{id}/fill"), Some(body)).await;
        assert_eq!(status, StatusCode::OK);
        let submit = json!({"humanize": "off", "dry_run": dry_run});
        let (_, answer) = worker.call(Method::POST, &format!("/api/v2/sessions/{id}/submit"), Some(submit)).await;
        let wanted = if dry_run { "intercepted" } else { "submitted" };
        assert_eq!(answer["outcome"], wanted, "{answer}");
        // The timeline (what a support tool shows) carries no value either.
        let (_, timeline) = worker.call(Method::GET, &format!("/api/v2/sessions/{id}/timeline"), None).await;
        assert!(!timeline.to_string().contains(&marker), "the timeline carries a value: {timeline}");
        worker.call(Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await;
    }
    let (code, log) = worker.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("session closed"), "the whole log was read");
    assert!(!log.contains(&marker), "an applicant value is in the log");
}
