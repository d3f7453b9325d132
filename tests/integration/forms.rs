//! Forms as data: every page under `tests/fixtures/forms/<platform>/` is analyzed and filled in
//! real Chromium and compared with its `*.expected.json` (labels, kinds, options, suggestions,
//! traps) and with what the page's own code holds after the fill. A page may name its applicant
//! (`"applicant": "applicant_ch.json"`, default `applicant.json`) and list `pending` keys: known
//! engine gaps whose intended expectation stays in the file (see the fixtures' README).

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
    "de/bewerbung",
    "fr/candidature",
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
    applicant_named("applicant.json")
}

/// A fixture applicant by file name under `tests/fixtures/forms/`.
pub fn applicant_named(file: &str) -> Value {
    let path = forms_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The applicant a page's expected file names, else the standard one.
fn applicant_of(expected: &Value) -> Value {
    applicant_named(expected["applicant"].as_str().unwrap_or("applicant.json"))
}

/// A difference about one key (or about the page, with an empty key).
type Problem = (String, String);

/// The real differences: those on keys the expected file lists under `pending.<stage>` are
/// printed, not counted; a pending key that shows no difference is one (remove it from the list).
fn settle(page: &str, expected: &Value, stage: &str, found: Vec<Problem>) -> Vec<String> {
    let pending = expected["pending"][stage].as_object().cloned().unwrap_or_default();
    let mut real = Vec::new();
    for (key, message) in &found {
        if pending.contains_key(key) {
            eprintln!("pending ({stage}) {message}");
        } else {
            real.push(message.clone());
        }
    }
    for (key, why) in &pending {
        if !found.iter().any(|(k, _)| k == key) {
            real.push(format!("{page}: {key} is pending in {stage} ({why}) but now holds: remove it from pending"));
        }
    }
    real
}

/// The page's applicant with its own `user_data` additions (`"user_data"` in its expected
/// file: e.g. a Swiss phone number or a date of birth the standard applicant lacks).
fn applicant_for(page: &str, expected: &Value) -> Value {
    let mut applicant = applicant_of(expected);
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
fn compare(page: &str, analysis: &Value, expected: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut note = |key: &str, message: String| problems.push((key.to_string(), message));
    for top in ["platform", "page_kind"] {
        if analysis[top] != expected[top] {
            note("", format!("{page}: {top} is {} (expected {})", analysis[top], expected[top]));
        }
    }
    let fields = analysis["fields"].as_array().unwrap();
    let mut matched = Vec::new();
    for want in expected["fields"].as_array().unwrap() {
        let key = want["key"].as_str().unwrap();
        let Some(got) = find(fields, want) else {
            note(key, format!("{page}: no field for {key} ({})", want["label"]));
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
                note(key, format!("{page}: {key}.{attr} is {} (expected {})", got[attr], want[attr]));
            }
        }
        if let Some(options) = want.get("options") {
            let labels: Vec<Value> =
                got["options"].as_array().map(|o| o.iter().map(|x| x["label"].clone()).collect()).unwrap_or_default();
            if &Value::Array(labels.clone()) != options {
                note(key, format!("{page}: {key}.options are {labels:?} (expected {options})"));
            }
        }
        let suggestion = &got["suggestion"];
        // analyze takes no resume, so file fields get their suggestion only in fill.
        let want_suggestion = if want["kind"] == "file" { &Value::Null } else { &want["suggestion"] };
        match want_suggestion {
            Value::Null => {
                if !suggestion.is_null() {
                    note(key, format!("{page}: {key} suggests {suggestion} (expected none)"));
                }
            }
            w => {
                if suggestion["value"] != w["value"] || suggestion["source"] != w["source"] {
                    note(key, format!("{page}: {key} suggests {suggestion} (expected {w})"));
                }
            }
        }
    }
    for field in fields {
        if field["trap"] == false && !matched.contains(&field["field_id"]) {
            let id = field["field_id"].as_str().unwrap_or_default();
            note(id, format!("{page}: unexpected field {id} ({})", field["label"]));
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
        let expected = expected(page);
        let applicant = applicant_for(page, &expected);
        let analysis = analyze(&app, &id, page, &applicant).await;
        problems.extend(settle(page, &expected, "analyze", compare(page, &analysis, &expected)));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
    app.stop().await;
}

/// `analyze` with an applicant's facts and answers; panics unless it answers 200.
pub async fn analyze(app: &TestApp, id: &str, page: &str, applicant: &Value) -> Value {
    let (status, analysis) = app
        .call(
            Method::POST,
            &format!("/api/v2/sessions/{id}/analyze"),
            Some(json!({"user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}: {analysis}");
    analysis
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
        let mut found: Vec<Problem> = Vec::new();
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
                found.push((key.clone(), format!("{page}: state {key} is {} (expected {want})", after[key])));
            }
        }
        for key in expected["untouched"].as_array().unwrap() {
            let key = key.as_str().unwrap();
            if after[key] != before[key] {
                found.push((key.into(), format!("{page}: {key} changed from {} to {}", before[key], after[key])));
            }
        }
        for error in report["errors"].as_array().unwrap() {
            found.push((String::new(), format!("{page}: error {error}")));
        }
        for filled in report["filled_fields"].as_array().unwrap() {
            if filled["verified"] != true {
                let key = filled["field_id"].as_str().unwrap_or_default();
                found.push((key.into(), format!("{page}: {key} not verified")));
            }
        }
        found.extend(missing_differences(page, &expected, &report));
        problems.extend(settle(page, &expected, "fill", found));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
    app.stop().await;
}

/// `missing_required` against the expected list, whose entries are a key or `{"key", "reason"}`.
fn missing_differences(page: &str, expected: &Value, report: &Value) -> Vec<Problem> {
    let got = report["missing_required"].as_array().unwrap();
    let wanted: Vec<(String, Option<String>)> = expected["missing_required"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| match m.as_str() {
                    Some(key) => (key.to_string(), None),
                    None => (m["key"].as_str().unwrap().to_string(), m["reason"].as_str().map(str::to_string)),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    for (key, reason) in &wanted {
        match got.iter().find(|m| m["field_id"] == key.as_str()) {
            None => found.push((key.clone(), format!("{page}: {key} is not in missing_required"))),
            Some(m) if reason.as_ref().is_some_and(|r| m["reason"] != r.as_str()) => found.push((
                key.clone(),
                format!("{page}: {key} is missing_required with reason {} (expected {reason:?})", m["reason"]),
            )),
            Some(_) => {}
        }
    }
    for m in got {
        let key = m["field_id"].as_str().unwrap_or_default();
        if !wanted.iter().any(|(k, _)| k == key) {
            found.push((key.into(), format!("{page}: {key} is in missing_required ({}) unexpectedly", m["reason"])));
        }
    }
    found
}
