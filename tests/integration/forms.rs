//! Forms as data: every page under `tests/fixtures/forms/<platform>/` is analyzed and filled in
//! real Chromium and compared with its `*.expected.json` (labels, kinds, options, suggestions,
//! traps) and with what the page's own code holds after the fill.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, fixtures, forms_dir};

/// Single-page fixtures with an expected analysis.
const PAGES: &[&str] = &[
    "greenhouse/board",
    "greenhouse/legacy",
    "lever/apply",
    "ashby/apply",
    "generic/plain",
    "generic/controlled",
    "generic/traps",
    "generic/short",
    "generic/widgets",
    "widgets/consent",
    "widgets/shadow_date",
    "widgets/places",
    "widgets/places_offline",
    "widgets/places_elsewhere",
    "widgets/phone_select",
    "widgets/phone_combo",
    "widgets/date_parts",
];

pub fn applicant() -> Value {
    serde_json::from_str(&std::fs::read_to_string(forms_dir().join("applicant.json")).unwrap()).unwrap()
}

/// The standard applicant with a page's own `user_data` additions (`"user_data"` in its
/// expected file: e.g. a Swiss phone number or a date of birth the standard applicant lacks).
fn applicant_for(page: &str, expected: &Value) -> Value {
    let mut applicant = applicant();
    if let Some(extra) = expected.get("user_data").and_then(Value::as_object) {
        let data = applicant["user_data"].as_object_mut().unwrap_or_else(|| panic!("{page}: no user_data"));
        data.extend(extra.clone());
    }
    applicant
}

fn expected(page: &str) -> Value {
    let path = forms_dir().join(format!("{page}.expected.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn resume_inline() -> Value {
    let bytes = std::fs::read(forms_dir().join("resume.pdf")).unwrap();
    json!({"filename": "resume.pdf", "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

/// Opens a session on a fixture page; returns its id.
pub async fn open(app: &TestApp, page: &str) -> String {
    let url = format!("{}/forms/{page}.html", fixtures());
    let session = app.create(json!({"url": url})).await;
    session["session_id"].as_str().unwrap().to_string()
}

pub async fn navigate(app: &TestApp, id: &str, page: &str) {
    let url = format!("{}/forms/{page}.html", fixtures());
    let (status, body) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The actual field an expected entry describes: by key (html id or name), else by label.
fn find<'a>(fields: &'a [Value], want: &Value) -> Option<&'a Value> {
    let key = want["key"].as_str().unwrap();
    fields
        .iter()
        .find(|f| f["html_id"] == key || f["name"] == key || f["field_id"] == key)
        .or_else(|| fields.iter().find(|f| f["label"] == want["label"] && f["kind"] == want["kind"]))
}

/// Every difference between an analysis and the expected file, as readable lines.
fn compare(page: &str, analysis: &Value, expected: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for top in ["platform", "page_kind"] {
        if analysis[top] != expected[top] {
            problems.push(format!("{page}: {top} is {} (expected {})", analysis[top], expected[top]));
        }
    }
    let fields = analysis["fields"].as_array().unwrap();
    let mut matched = Vec::new();
    for want in expected["fields"].as_array().unwrap() {
        let key = want["key"].as_str().unwrap();
        let Some(got) = find(fields, want) else {
            problems.push(format!("{page}: no field for {key} ({})", want["label"]));
            continue;
        };
        matched.push(got["field_id"].clone());
        let is_trap = want["trap"] == true;
        let mut checks = vec!["kind", "trap"];
        if !is_trap {
            checks.extend(["label", "required"]);
        }
        for attr in checks {
            if got[attr] != want[attr] {
                problems.push(format!("{page}: {key}.{attr} is {} (expected {})", got[attr], want[attr]));
            }
        }
        if let Some(options) = want.get("options") {
            let labels: Vec<Value> =
                got["options"].as_array().map(|o| o.iter().map(|x| x["label"].clone()).collect()).unwrap_or_default();
            if &Value::Array(labels.clone()) != options {
                problems.push(format!("{page}: {key}.options are {labels:?} (expected {options})"));
            }
        }
        let suggestion = &got["suggestion"];
        // analyze takes no resume, so file fields get their suggestion only in fill.
        let want_suggestion = if want["kind"] == "file" { &Value::Null } else { &want["suggestion"] };
        match want_suggestion {
            Value::Null => {
                if !suggestion.is_null() {
                    problems.push(format!("{page}: {key} suggests {suggestion} (expected none)"));
                }
            }
            w => {
                if suggestion["value"] != w["value"] || suggestion["source"] != w["source"] {
                    problems.push(format!("{page}: {key} suggests {suggestion} (expected {w})"));
                }
            }
        }
    }
    for field in fields {
        if field["trap"] == false && !matched.contains(&field["field_id"]) {
            problems.push(format!("{page}: unexpected field {} ({})", field["field_id"], field["label"]));
        }
    }
    problems
}

#[tokio::test]
async fn analyze_matches_every_expected_file() {
    let app = TestApp::start().await;
    let id = open(&app, PAGES[0]).await;
    let mut problems = Vec::new();
    for page in PAGES {
        navigate(&app, &id, page).await;
        let applicant = applicant_for(page, &expected(page));
        let (status, analysis) = app
            .call(
                Method::POST,
                &format!("/api/v2/sessions/{id}/analyze"),
                Some(json!({"user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}: {analysis}");
        problems.extend(compare(page, &analysis, &expected(page)));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
    app.stop().await;
}

/// The page's own view of its values.
pub async fn form_state(app: &TestApp, id: &str) -> Value {
    app.page_eval(id, "window.__formState()").await
}

#[tokio::test]
async fn fill_puts_every_expected_value_where_the_page_sees_it() {
    let app = TestApp::start().await;
    let id = open(&app, PAGES[0]).await;
    let mut problems = Vec::new();
    for page in PAGES {
        navigate(&app, &id, page).await;
        let expected = expected(page);
        let applicant = applicant_for(page, &expected);
        let before = form_state(&app, &id).await;
        let (status, report) = app
            .call(
                Method::POST,
                &format!("/api/v2/sessions/{id}/fill"),
                Some(json!({
                    "user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"],
                    "resume": resume_inline(), "humanize": "off",
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}: {report}");
        let after = form_state(&app, &id).await;
        for (key, want) in expected["state_after_fill"].as_object().unwrap() {
            if &after[key] != want {
                problems.push(format!("{page}: state {key} is {} (expected {want})", after[key]));
            }
        }
        for key in expected["untouched"].as_array().unwrap() {
            let key = key.as_str().unwrap();
            if after[key] != before[key] {
                problems.push(format!("{page}: {key} changed from {} to {}", before[key], after[key]));
            }
        }
        for error in report["errors"].as_array().unwrap() {
            problems.push(format!("{page}: error {error}"));
        }
        for filled in report["filled_fields"].as_array().unwrap() {
            if filled["verified"] != true {
                problems.push(format!("{page}: {} not verified", filled["field_id"]));
            }
        }
        let missing: Vec<&Value> =
            report["missing_required"].as_array().unwrap().iter().map(|m| &m["field_id"]).collect();
        let want_missing = expected.get("missing_required").and_then(Value::as_array).cloned().unwrap_or_default();
        if missing.len() != want_missing.len() || want_missing.iter().any(|k| !missing.contains(&k)) {
            problems.push(format!("{page}: missing_required is {missing:?} (expected {want_missing:?})"));
        }
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
    app.stop().await;
}
