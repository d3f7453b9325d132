//! The `llm` and `auto` engines against a scripted OpenAI-compatible server: oddly worded
//! questions filled through `auto`, what leaves the machine, the mapping cache, and a slow,
//! failing or nonsense-answering model leaving the rules' result in place.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fake_llm::{Answer, FakeLlm, Reply};
use crate::forms::{applicant, form_state, open};
use crate::support::{TestApp, submission};

/// The answers a sensible model gives for `generic/odd`.
fn odd_mapper(label: &str) -> Option<Answer> {
    let answer = match label {
        "What should we call you?" => (Some("first_name"), None, None, false),
        "Best number to ring you on" => (Some("phone"), None, None, false),
        "Seasons of hands-on engineering practice" => (Some("years_experience"), None, None, false),
        "Do you code in any of these?" => (Some("skills"), None, None, false),
        "Would you require a visa to work for us now or later?" => {
            (None, Some("Will you require visa sponsorship?"), Some("No"), false)
        }
        "Can you take up employment in the United States without restriction?" => {
            (None, Some("Are you authorized to work in the US?"), Some("Yes"), false)
        }
        "Tell us about something you built" => (None, None, None, true),
        _ => return None,
    };
    Some(answer)
}

async fn start(fake: &FakeLlm, timeout_secs: &'static str) -> TestApp {
    let flags = fake.flags(timeout_secs);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestApp::start_with(&flags).await
}

async fn analyze(app: &TestApp, id: &str, mut body: Value) -> Value {
    let a = applicant();
    body["user_data"] = body.get("user_data").cloned().unwrap_or_else(|| a["user_data"].clone());
    body["qa_answers"] = a["qa_answers"].clone();
    let (status, analysis) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/analyze"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{analysis}");
    analysis
}

fn field<'a>(analysis: &'a Value, id: &str) -> &'a Value {
    analysis["fields"].as_array().unwrap().iter().find(|f| f["field_id"] == id || f["name"] == id).unwrap()
}

fn warnings(v: &Value) -> String {
    v["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

#[tokio::test]
async fn auto_fills_odd_questions_through_the_model_and_sends_no_values() {
    let fake = FakeLlm::start(odd_mapper, "I built a Rust scheduler that runs our Kubernetes batch jobs.").await;
    let app = start(&fake, "10").await;
    let id = open(&app, "generic/odd").await;

    let analysis = analyze(&app, &id, json!({"engine": "auto"})).await;
    assert_eq!(analysis["engine"], "auto");
    assert_eq!(fake.count(), 1, "one call for the page");
    let moniker = &field(&analysis, "moniker")["suggestion"];
    assert_eq!(moniker["value"], "Adam", "{analysis}");
    assert_eq!(moniker["source"], "llm");
    assert_eq!(moniker["engine"], "llm");
    assert_eq!(moniker["basis"], "user_data.first_name");
    assert_eq!(field(&analysis, "langs")["suggestion"]["value"], json!(["Rust", "Python"]));
    assert_eq!(field(&analysis, "permit")["suggestion"]["value"], "Yes");
    assert_eq!(field(&analysis, "permit")["suggestion"]["basis"], "qa_answers.Are you authorized to work in the US?");
    // The rules answer the visa question from qa_answers themselves: auto does not ask the model.
    let visa = &field(&analysis, "visa")["suggestion"];
    assert_eq!((&visa["value"], &visa["engine"]), (&json!("No"), &json!("rules")), "{analysis}");
    assert!(field(&analysis, "story")["suggestion"].is_null(), "no free text unless allowed");

    // What left the machine: descriptions, key names and questions, never a value.
    let request = fake.requests()[0].to_string();
    let a = applicant();
    for secret in ["adam.tester@example.com", "+1 415 555 0142", "Adam", "Tester", "San Francisco", "Acme Robotics"] {
        assert!(!request.contains(secret), "the request carries {secret:?}: {request}");
    }
    assert!(!request.contains(a["qa_answers"]["Why do you want to work here?"].as_str().unwrap()));
    let user = fake.requests()[0]["messages"][1]["content"].as_str().unwrap().to_string();
    let open_at = user.find("<<<PAGE DATA").expect("fenced page data");
    let close_at = user.find("<<<END PAGE DATA").expect("fence closed");
    let injected = user.find("Seasons of hands-on engineering practice").unwrap();
    assert!(open_at < injected && injected < close_at, "page text inside the fence: {user}");
    assert!(user.contains("UNTRUSTED DATA"));
    assert!(user.contains("\"first_name\"") && user.contains("Are you authorized to work in the US?"));
    assert!(!user.contains("Would you require a visa"), "fields the rules mapped are not sent: {user}");
    assert_eq!(fake.requests()[0]["response_format"]["json_schema"]["strict"], true);

    // The same form again: the cached mapping, no call.
    analyze(&app, &id, json!({"engine": "auto"})).await;
    assert_eq!(fake.count(), 1, "a repeated form costs no call");

    // Fill and submit through auto: the page and the employer hold the right options.
    let fill_body = json!({"user_data": a["user_data"], "qa_answers": a["qa_answers"], "engine": "auto"});
    let (status, report) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/fill"), Some(fill_body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(fake.count(), 1, "fill replays the cached mapping");
    assert!(report["missing_required"].as_array().unwrap().is_empty(), "{report}");
    let state = form_state(&app, &id).await;
    assert_eq!(state["moniker"], "Adam", "{state}");
    assert_eq!(state["ring"], "+1 415 555 0142");
    assert_eq!(state["seasons"], "7");
    assert_eq!(state["langs"], json!(["rust", "python"]));
    assert_eq!((&state["visa"], &state["permit"]), (&json!("no"), &json!("yes")), "{state}");
    let (status, submitted) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/submit"), Some(json!({"action": "submit"}))).await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    let posted =
        crate::support::eventually_async(std::time::Duration::from_secs(10), || async { submission("odd").is_some() })
            .await;
    assert!(posted, "the form was posted: {submitted}");
    let payload = submission("odd").unwrap();
    assert_eq!((&payload["visa"], &payload["permit"]), (&json!("no"), &json!("yes")), "{payload}");

    // A replay that no longer fits (the applicant has no phone now) asks the model again.
    let mut without_phone = a["user_data"].clone();
    without_phone.as_object_mut().unwrap().remove("phone");
    let id2 = open(&app, "generic/odd").await;
    analyze(&app, &id2, json!({"engine": "auto", "user_data": without_phone})).await;
    assert_eq!(fake.count(), 2, "a failed replay calls the model");

    // Free text only when allowed, and then only the question, the job title and the skills.
    let analysis = analyze(&app, &id2, json!({"engine": "llm", "allow_generated_text": true})).await;
    let story = &field(&analysis, "story")["suggestion"];
    assert_eq!(story["basis"], "generated", "{analysis}");
    assert!(story["value"].as_str().unwrap().contains("Rust scheduler"));
    let generation = fake.requests().into_iter().rfind(|r| r["response_format"].is_null()).expect("a generation call");
    let sent = generation["messages"][1]["content"].as_str().unwrap();
    let sent: Value = serde_json::from_str(sent).unwrap();
    assert_eq!(sent["question"], "Tell us about something you built");
    assert_eq!(sent["skills"], a["user_data"]["skills"]);
    assert_eq!(sent.as_object().unwrap().len(), 3, "{sent}");

    let metrics = app.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    for needle in ["bw_llm_tokens_total{kind=\"prompt\"}", "bw_llm_request_seconds", "outcome=\"cache_hit\""] {
        assert!(metrics.contains(needle), "/metrics lacks {needle}:\n{metrics}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_slow_failing_or_nonsense_model_leaves_the_rules_result_and_says_so() {
    let fake = FakeLlm::start(odd_mapper, "unused").await;
    let app = start(&fake, "2").await;
    let id = open(&app, "generic/odd").await;
    let run = |expect: &'static str| {
        let (app, id) = (&app, &id);
        async move {
            let analysis = analyze(app, id, json!({"engine": "llm"})).await;
            let text = warnings(&analysis);
            assert!(text.contains(expect), "warnings lack {expect:?}: {analysis}");
            // The rules' answer stands for the visa question; nothing the model said was used.
            let visa = &field(&analysis, "visa")["suggestion"];
            assert_eq!((&visa["value"], &visa["engine"]), (&json!("No"), &json!("rules")), "{analysis}");
            analysis
        }
    };

    fake.script([Reply::Hang]);
    let analysis = run("did not answer").await;
    assert!(field(&analysis, "moniker")["suggestion"].is_null());

    let before = fake.count();
    // async-openai retries 5xx three times: four answers in all.
    fake.script([Reply::Status(500), Reply::Status(500), Reply::Status(500), Reply::Status(500)]);
    run("HTTP 500").await;
    assert_eq!(fake.count() - before, 4, "5xx answers are retried");

    fake.script([Reply::Content("{\"answers\": [{\"field\": 1,".into())]);
    run("not the expected JSON").await;
    fake.script([Reply::Refusal("I can't help with that.".into())]);
    run("refused").await;

    // Nonsense: a field the page does not have, an option it does not offer, and a sponsorship
    // question answered from a user_data key (the legal/EEO guard).
    fn nonsense(body: &Value) -> Value {
        let fields = crate::fake_llm::page_fields(body);
        let n = |label: &str| fields.iter().find(|(_, l)| l.starts_with(label)).unwrap().0;
        json!([
            {"field": 99, "key": "email", "question": null, "option": null, "generate": false, "confidence": 0.9},
            {"field": n("Can you take up"), "key": null, "question": "Are you authorized to work in the US?",
             "option": "Maybe", "generate": false, "confidence": 0.9},
            {"field": n("Would you require a visa"), "key": "country", "question": null, "option": "Yes",
             "generate": false, "confidence": 0.9}
        ])
    }
    fake.script([Reply::Build(nonsense)]);
    let analysis = run("field 99").await;
    let text = warnings(&analysis);
    assert!(text.contains("\"Maybe\" is not on the page"), "{text}");
    assert!(text.contains("only be answered from qa_answers"), "{text}");
    assert!(field(&analysis, "permit")["suggestion"].is_null(), "{analysis}");

    // A 429 and a 500, then a good answer: the retries get it and the model's suggestions are used.
    fake.script([Reply::Status(429), Reply::Status(500)]);
    let analysis = analyze(&app, &id, json!({"engine": "llm"})).await;
    assert!(analysis["warnings"].is_null(), "{analysis}");
    assert_eq!(field(&analysis, "moniker")["suggestion"]["value"], "Adam", "{analysis}");
    assert_eq!(field(&analysis, "visa")["suggestion"]["engine"], "llm", "{analysis}");

    let metrics = app.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    for needle in ["outcome=\"timeout\"", "outcome=\"error\"", "outcome=\"refused\"", "bw_llm_request_seconds"] {
        assert!(metrics.contains(needle), "/metrics lacks {needle}:\n{metrics}");
    }
    app.stop().await;
}
