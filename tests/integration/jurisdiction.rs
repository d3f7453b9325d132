//! The jurisdiction rule (SPEC §4.1) in a real browser: on a page asking US, UK and Swiss
//! work-authorisation and sponsorship questions (all required), each applicant's answers reach
//! only the questions about the same country. The others get no suggestion, keep the page's own
//! empty value after fill and are reported as `missing_required` with `reason: "needs_human"`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::forms::{applicant_named, form_state, navigate, open};
use crate::support::TestApp;

/// The fixture page: `tests/fixtures/forms/legal/jurisdiction.html`.
const PAGE: &str = "legal/jurisdiction";

/// A question answered: its key, the option suggested, where the answer came from and the value
/// the page holds after fill.
type Answered = (&'static str, &'static str, &'static str, &'static str);

/// One applicant on the page.
struct Case {
    applicant: &'static str,
    /// Whether the applicant's `qa_answers` are sent (else `user_data` alone).
    with_qa: bool,
    answered: &'static [Answered],
    /// Legal questions about another jurisdiction: left for a person.
    left: &'static [&'static str],
}

impl Case {
    fn name(&self) -> String {
        if self.with_qa { self.applicant.to_string() } else { format!("{} without qa_answers", self.applicant) }
    }
}

const CASES: &[Case] = &[
    // Only US answers; "Will you require visa sponsorship?" names no country, so it counts for
    // the applicant's country of residence (the United States) and nowhere else.
    Case {
        applicant: "applicant.json",
        with_qa: true,
        answered: &[
            ("us_authorized", "Yes", "qa_answers.Are you authorized to work in the US?", "yes"),
            ("us_sponsorship", "No", "qa_answers.Will you require visa sponsorship?", "N"),
        ],
        left: &["uk_right_to_work", "uk_sponsorship", "ch_eligible", "ch_sponsorship"],
    },
    // Swiss and EU answers: the United Kingdom is in neither, the United States neither.
    Case {
        applicant: "applicant_ch.json",
        with_qa: true,
        answered: &[
            ("ch_eligible", "Yes", "qa_answers.Do you hold a valid Swiss work permit?", "yes"),
            ("ch_sponsorship", "No", "qa_answers.Do you need sponsorship to work in Switzerland?", "N"),
        ],
        left: &["us_authorized", "us_sponsorship", "uk_right_to_work", "uk_sponsorship"],
    },
    // Without its answers, the same applicant's `work_authorization` answers the Swiss questions
    // (the Switzerland entry, not the European Union one) and still nothing else.
    Case {
        applicant: "applicant_ch.json",
        with_qa: false,
        answered: &[
            ("ch_eligible", "Yes", "user_data.work_authorization.Switzerland", "yes"),
            ("ch_sponsorship", "No", "user_data.work_authorization.Switzerland", "N"),
        ],
        left: &["us_authorized", "us_sponsorship", "uk_right_to_work", "uk_sponsorship"],
    },
];

fn field<'a>(fields: &'a Value, key: &str) -> Option<&'a Value> {
    fields.as_array()?.iter().find(|f| f["field_id"] == key || f["name"] == key)
}

/// What analyze suggests for each legal question, against the case.
fn analyze_differences(case: &Case, analysis: &Value) -> Vec<String> {
    let who = case.name();
    let mut problems = Vec::new();
    for (key, option, source, _) in case.answered {
        match field(&analysis["fields"], key) {
            None => problems.push(format!("{who}: no field {key}")),
            Some(f) if f["suggestion"]["value"] != *option || f["suggestion"]["source"] != *source => {
                problems.push(format!("{who}: {key} suggests {} (expected {option:?} from {source})", f["suggestion"]))
            }
            Some(_) => {}
        }
    }
    for key in case.left {
        match field(&analysis["fields"], key) {
            None => problems.push(format!("{who}: no field {key}")),
            Some(f) if !f["suggestion"].is_null() => problems
                .push(format!("{who}: {key} suggests {} (expected none: another jurisdiction)", f["suggestion"])),
            Some(_) => {}
        }
    }
    problems
}

/// What fill left in the page and reported, against the case.
fn fill_differences(case: &Case, before: &Value, after: &Value, report: &Value) -> Vec<String> {
    let who = case.name();
    let mut problems = Vec::new();
    let missing = report["missing_required"].as_array().cloned().unwrap_or_default();
    let missing_of = |key: &str| missing.iter().find(|m| m["field_id"] == key).cloned();
    for (key, _, _, state) in case.answered {
        if after[key] != *state {
            problems.push(format!("{who}: state {key} is {} (expected {state:?})", after[key]));
        }
        if let Some(m) = missing_of(key) {
            problems.push(format!("{who}: {key} is in missing_required ({})", m["reason"]));
        }
    }
    for key in case.left {
        if after[key] != before[key] {
            problems.push(format!("{who}: {key} changed from {} to {}", before[key], after[key]));
        }
        match missing_of(key) {
            None => problems.push(format!("{who}: {key} is not in missing_required")),
            Some(m) if m["reason"] != "needs_human" => problems
                .push(format!("{who}: {key} is missing_required with reason {} (expected needs_human)", m["reason"])),
            Some(_) => {}
        }
    }
    problems
}

#[tokio::test]
async fn legal_answers_stay_within_their_jurisdiction() {
    let app = TestApp::start().await;
    let id = open(&app, PAGE).await;
    let mut problems = Vec::new();
    for case in CASES {
        let applicant = applicant_named(case.applicant);
        let qa = if case.with_qa { applicant["qa_answers"].clone() } else { json!({}) };
        let data = json!({"user_data": applicant["user_data"], "qa_answers": qa});
        navigate(&app, &id, PAGE).await;
        let (status, analysis) =
            app.call(Method::POST, &format!("/api/v2/sessions/{id}/analyze"), Some(data.clone())).await;
        assert_eq!(status, StatusCode::OK, "{}: {analysis}", case.name());
        problems.extend(analyze_differences(case, &analysis));

        navigate(&app, &id, PAGE).await;
        let before = form_state(&app, &id).await;
        let mut fill = data;
        fill["humanize"] = json!("off");
        let (status, report) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/fill"), Some(fill)).await;
        assert_eq!(status, StatusCode::OK, "{}: {report}", case.name());
        let after = form_state(&app, &id).await;
        problems.extend(fill_differences(case, &before, &after, &report));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
    app.stop().await;
}
