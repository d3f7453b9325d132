//! Whole applications through the session API, step by step (analyze → fill → submit), ending
//! in a confirmed submission; the fixture server records what each form posted, which is what
//! the employer would receive.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::forms::{applicant, open, resume_inline};
use crate::support::{TestApp, forms_dir, submission};

fn expected(page: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(forms_dir().join(format!("{page}.expected.json"))).unwrap()).unwrap()
}

async fn post(app: &TestApp, id: &str, op: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, &format!("/api/v2/sessions/{id}/{op}"), Some(body)).await
}

/// Overrides for fields whose label contains one of `by_label`'s keys.
fn overrides_for(analysis: &Value, by_label: &[(&str, Value)]) -> Map<String, Value> {
    let mut overrides = Map::new();
    for field in analysis["fields"].as_array().unwrap() {
        let label = field["label"].as_str().unwrap_or_default().to_lowercase();
        for (words, value) in by_label {
            if field["trap"] == false && label.contains(words) {
                overrides.insert(field["field_id"].as_str().unwrap().to_string(), value.clone());
            }
        }
    }
    overrides
}

/// Drives analyze → fill → submit(auto) until the application is submitted; returns every
/// submit answer. Panics on an unexpected outcome.
async fn apply(app: &TestApp, id: &str, humanize: &str, by_label: &[(&str, Value)]) -> Vec<Value> {
    let applicant = applicant();
    let mut answers = Vec::new();
    for _ in 0..12 {
        let (status, analysis) = post(app, id, "analyze", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{analysis}");
        if analysis["page_kind"] == "application_form" {
            let body = json!({
                "user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"],
                "resume": resume_inline(), "humanize": humanize, "overrides": overrides_for(&analysis, by_label),
            });
            let (status, report) = post(app, id, "fill", body).await;
            assert_eq!(status, StatusCode::OK, "{report}");
            assert!(report["errors"].as_array().unwrap().is_empty(), "fill errors: {report}");
            assert!(report["missing_required"].as_array().unwrap().is_empty(), "missing: {report}");
        }
        let (status, answer) = post(app, id, "submit", json!({"humanize": humanize})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let outcome = answer["outcome"].as_str().unwrap().to_string();
        answers.push(answer);
        match outcome.as_str() {
            "submitted" => return answers,
            "next_step" => {}
            other => panic!("unexpected outcome {other}: {}", answers.last().unwrap()),
        }
    }
    panic!("no submission after 12 steps: {answers:?}");
}

/// The recorded payload holds exactly the expected fields and values.
fn assert_payload(name: &str, want: &Value) {
    let got = submission(name).unwrap_or_else(|| panic!("{name}: nothing was submitted"));
    let (got, want) = (got.as_object().unwrap(), want.as_object().unwrap());
    let mut problems = Vec::new();
    for (key, value) in want {
        let actual = got.get(key).cloned().unwrap_or(Value::Null);
        let same = &actual == value || (value.as_array().is_some_and(|a| a.len() == 1 && a[0] == actual));
        if !same {
            problems.push(format!("{key}: got {actual}, expected {value}"));
        }
    }
    for key in got.keys().filter(|k| !want.contains_key(*k)) {
        problems.push(format!("{key}: submitted but not expected ({})", got[key]));
    }
    assert!(problems.is_empty(), "{name} payload:\n{}", problems.join("\n"));
}

fn assert_confirmed(last: &Value, id: Option<&str>, evidence: &str) {
    assert_eq!(last["outcome"], "submitted", "{last}");
    assert_eq!(last["confirmation"]["confirmation_id"].as_str(), id, "{last}");
    assert_eq!(last["confirmation"]["evidence"], evidence, "{last}");
    assert!(last["screenshot"].as_str().unwrap().contains("/artifacts/"), "{last}");
}

#[tokio::test]
async fn greenhouse_and_lever_applications_are_submitted_and_confirmed() {
    let app = TestApp::start().await;
    let id = open(&app, "greenhouse/post").await;
    let answers = apply(&app, &id, "off", &[]).await;
    assert_confirmed(answers.last().unwrap(), Some("APP-12345"), "url");
    assert_payload("greenhouse", &expected("greenhouse/post")["submitted_payload"]);
    // The confirmation screenshot is served, and listed when the session closes.
    let shot = answers.last().unwrap()["screenshot"].as_str().unwrap().to_string();
    let png = app.request(Method::GET, &shot).send().await.unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let (_, closed) = app.delete(&id).await;
    assert!(closed["artifacts"].as_array().unwrap().iter().any(|a| a == &json!(shot)), "{closed}");
    let traversal =
        app.request(Method::GET, &format!("/api/v2/sessions/{id}/artifacts/..%2F..%2Fapi-key")).send().await.unwrap();
    assert_eq!(traversal.status(), StatusCode::NOT_FOUND);

    // Lever from its posting page, with humanize `fast` end to end.
    let id = open(&app, "lever/posting").await;
    let answers = apply(&app, &id, "fast", &[]).await;
    assert_eq!(answers[0]["clicked"]["text"], "Apply for this job", "{}", answers[0]);
    assert_eq!(answers[0]["page_kind"], "application_form");
    assert_confirmed(answers.last().unwrap(), Some("APP-12345"), "text");
    assert_payload("lever", &expected("lever/post")["submitted_payload"]);
    app.stop().await;
}

#[tokio::test]
async fn linkedin_easy_apply_walks_the_modal_to_the_done_dialog() {
    let app = TestApp::start().await;
    let id = open(&app, "linkedin/easy_apply").await;
    let (_, analysis) = post(&app, &id, "analyze", json!({})).await;
    assert_eq!(analysis["page_kind"], "job_posting");
    assert_eq!(analysis["actions"]["apply"]["text"], "Easy Apply");
    let answers = apply(&app, &id, "off", &[]).await;
    let titles: Vec<&str> = answers.iter().filter_map(|a| a["step"]["title"].as_str()).collect();
    assert_eq!(titles, ["Contact info", "Resume", "Additional questions", "Review your application"], "{answers:?}");
    assert_confirmed(answers.last().unwrap(), None, "text");
    assert_payload("linkedin", &expected("linkedin/easy_apply")["submitted_payload"]);
    app.stop().await;
}

#[tokio::test]
async fn workday_wizard_with_a_sign_in_step_waits_for_a_person() {
    let app = TestApp::start().await;
    // "…authorized to work in the country to which you are applying?" names no country, so the
    // jurisdiction rule leaves it for a person (SPEC §4.1); the test answers it as that person.
    let terms = [("terms", json!(true)), ("country to which you are applying", json!("Yes"))];
    let id = open(&app, "workday/posting").await;
    let answers = apply(&app, &id, "off", &terms).await;
    assert_eq!(answers[0]["step"]["title"], "My Information", "apply then Apply Manually: {}", answers[0]);
    assert_confirmed(answers.last().unwrap(), Some("APP-12345"), "text");
    assert_payload("workday", &expected("workday/posting")["submitted_payload"]);

    // The sign-in variant: the session waits in needs_human until a person signs in.
    let id = open(&app, "workday/posting_signin").await;
    let (status, answer) = post(&app, &id, "submit", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["page_kind"].as_str(), answer["block"]["reason"].as_str()),
        (Some("login"), Some("login_required")),
        "{answer}"
    );
    let (_, session) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(session["state"], "needs_human");
    let (status, still) = post(&app, &id, "continue", json!({})).await;
    assert_eq!((status, still["state"].as_str()), (StatusCode::OK, Some("needs_human")), "{still}");
    // A person signs in (real key and mouse events through the session's browser).
    app.type_into(&id, "[data-automation-id=email]", "adam.tester@example.com").await;
    app.type_into(&id, "[data-automation-id=password]", "correct horse battery").await;
    app.click(&id, "[data-automation-id=click_filter]").await;
    let (status, resumed) = post(&app, &id, "continue", json!({})).await;
    assert_eq!((status, resumed["state"].as_str()), (StatusCode::OK, Some("ready")), "{resumed}");
    assert_eq!(resumed["analysis"]["page_kind"], "application_form");
    let (status, again) = post(&app, &id, "continue", json!({})).await;
    assert_eq!((status, again["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")));
    let answers = apply(&app, &id, "off", &terms).await;
    assert_confirmed(answers.last().unwrap(), Some("APP-12345"), "text");
    assert_payload("workday_signin", &expected("workday/posting_signin")["submitted_payload"]);
    app.stop().await;
}

#[tokio::test]
async fn validation_errors_name_the_field_and_a_stuck_next_trips_the_loop_guard() {
    let app = TestApp::start().await;
    let id = open(&app, "generic/validation").await;
    let applicant = applicant();
    let body = json!({"user_data": applicant["user_data"], "resume": resume_inline(), "humanize": "off"});
    let (_, report) = post(&app, &id, "fill", body.clone()).await;
    let missing = report["missing_required"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{report}");
    let field_id = missing[0]["field_id"].as_str().unwrap().to_string();
    // The hidden "Thank you for applying" already in the page is not a confirmation.
    let (status, failed) = post(&app, &id, "submit", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["outcome"], "validation_errors", "{failed}");
    assert!(failed["errors"].as_array().unwrap().iter().any(|e| e["field_id"] == json!(field_id)), "{failed}");
    assert!(submission("validation").is_none(), "nothing was posted");
    let mut body = body;
    body["overrides"] = json!({ field_id.clone(): "2 weeks" });
    let (_, report) = post(&app, &id, "fill", body).await;
    assert!(report["missing_required"].as_array().unwrap().is_empty(), "{report}");
    let (_, done) = post(&app, &id, "submit", json!({})).await;
    assert_confirmed(&done, Some("APP-12345"), "text");
    assert_payload("validation", &expected("generic/validation")["submitted_payload"]);

    let id = open(&app, "generic/stuck").await;
    let (_, report) = post(&app, &id, "fill", json!({"user_data": applicant["user_data"], "humanize": "off"})).await;
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
    let (status, stuck) = post(&app, &id, "submit", json!({})).await;
    assert_eq!((status, stuck["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("no_progress")), "{stuck}");
    let (status, _) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "the session is still usable");
    app.stop().await;
}
