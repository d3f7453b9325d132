//! Records real submits on the fixture forms as the cases the unit tests replay without a
//! browser (`src/forms/submit/cases/<name>.json`: what the page answered to every script, and
//! the verdict). With `UPDATE_EXPECT=1` the cases are written anew; otherwise each live submit
//! must still come to its recorded verdict, so the recordings stay true to the fixtures.

use browser_worker::browser::humanize::Humanize;
use browser_worker::browser::script::Recorder;
use browser_worker::forms::submit::{self, RECORDED_SEED, RecordedSubmit, SubmitAction};
use browser_worker::session::SessionId;
use rand::SeedableRng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::forms::{applicant, open, resume_inline};
use crate::support::TestApp;

/// (case, fixture form, fill with the résumé too, values for fields the applicant data leave open)
type Case = (&'static str, &'static str, bool, &'static [(&'static str, &'static str)]);

const CASES: &[Case] = &[
    ("a_filled_form_is_submitted", "generic/validation", true, &[("notice_period", "2 weeks")]),
    ("a_field_left_empty_is_a_validation_error", "generic/validation", true, &[]),
    ("a_next_that_does_nothing_is_no_progress", "generic/stuck", false, &[]),
    ("apply_on_a_posting_leads_to_the_form", "lever/posting", false, &[]),
];

fn case_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/forms/submit/cases/{name}.json"))
}

#[tokio::test]
async fn live_submits_come_to_their_recorded_verdicts() {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let app = TestApp::start().await;
    let registry = app.server.as_ref().unwrap().app.registry.clone();
    for &(name, page, with_resume, overrides) in CASES {
        let id = open(&app, page).await;
        let overrides: serde_json::Map<String, Value> =
            overrides.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let mut fill = json!({"user_data": applicant()["user_data"], "humanize": "off", "overrides": overrides});
        if with_resume {
            fill["resume"] = resume_inline();
        }
        let (status, report) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/fill"), Some(fill.clone())).await;
        assert_eq!(status, StatusCode::OK, "{name}: {report}");
        let op = registry.begin(SessionId::parse(&id).unwrap()).unwrap();
        let recorder = Recorder::new(op.browser());
        let mut rng = rand::rngs::StdRng::seed_from_u64(RECORDED_SEED);
        let result = submit::submit(&recorder, SubmitAction::Auto, Humanize::Off, &mut rng).await;
        let (verdict, script) = (submit::verdict(&result), recorder.script());
        drop(op);
        let (status, _) = app.call(Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        if update {
            let case = RecordedSubmit {
                page: page.to_string(),
                fill: json!({"resume": with_resume, "overrides": fill["overrides"]}),
                action: SubmitAction::Auto,
                verdict,
                script,
            };
            std::fs::write(case_path(name), serde_json::to_vec_pretty(&case).unwrap()).unwrap();
        } else {
            let recorded: Value = serde_json::from_slice(&std::fs::read(case_path(name)).unwrap()).unwrap();
            assert_eq!(
                verdict, recorded["verdict"],
                "{name}: the live submit differs from its recording (UPDATE_EXPECT=1 records it anew)"
            );
        }
    }
    app.stop().await;
}
