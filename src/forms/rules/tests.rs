//! The rules engine on single fields, as data: consent policy, the jurisdiction rule, facts in
//! three languages, and one box per fact.

use serde_json::{Value, json};

use super::*;
use crate::forms::prompt::tests::field;
use crate::forms::{ConsentPolicy, Platform};

fn applicant(consent: ConsentPolicy) -> Applicant {
    let map = |v: Value| v.as_object().cloned().unwrap_or_default();
    Applicant {
        user_data: map(json!({
            "first_name": "Ana", "last_name": "Muster", "country": "United States", "country_code": "US",
            "city": "Austin", "state": "Texas", "salutation": "Ms", "phone": "+1 512 555 0100",
            "work_authorization": {"United States": {"authorized": true, "requires_sponsorship": false}},
        })),
        qa_answers: map(json!({"Will you require visa sponsorship?": "No"})),
        consent,
        ..Applicant::default()
    }
}

async fn suggest(fields: &[Field], applicant: &Applicant) -> Vec<Option<Value>> {
    let page = PageContext { platform: Platform::Generic, fields, title: "", heading: None };
    RulesEngine.suggest(&page, applicant).await.into_iter().map(|s| s.map(|s| s.value)).collect()
}

#[tokio::test]
async fn consent_follows_the_policy() {
    let privacy = field("I have read the privacy policy", FieldKind::Checkbox, &[]);
    let pool = field("Keep my data for future vacancies (talent pool)", FieldKind::Checkbox, &[]);
    let fields = [privacy, pool];
    for (policy, want) in [
        (ConsentPolicy::default(), [Some(json!(true)), None]),
        (ConsentPolicy { acknowledge_required: false, opt_ins: false }, [None, None]),
        (ConsentPolicy { acknowledge_required: true, opt_ins: true }, [Some(json!(true)), Some(json!(true))]),
    ] {
        assert_eq!(suggest(&fields, &applicant(policy)).await, want, "{policy:?}");
    }
}

#[tokio::test]
async fn legal_answers_stay_in_their_jurisdiction() {
    let yes_no = ["Yes", "No"];
    let cases = [
        ("Are you legally authorized to work in the United States?", Some(json!("Yes"))),
        ("Will you require visa sponsorship to work in the US?", Some(json!("No"))),
        ("Do you have the right to work in the UK?", None),
        ("Do you need sponsorship to work in Switzerland?", None),
        ("Are you authorized to work in the country of this job?", None),
    ];
    for (label, want) in cases {
        let f = [field(label, FieldKind::RadioGroup, &yes_no)];
        assert_eq!(suggest(&f, &applicant(ConsentPolicy::default())).await[0], want, "{label}");
        if want.is_none() {
            assert_eq!(missing_reason(&f[0]), "needs_human", "{label}");
        }
    }
}

#[tokio::test]
async fn facts_meet_the_pages_own_words() {
    let cases = [
        (field("Anrede", FieldKind::RadioGroup, &["Herr", "Frau"]), Some(json!("Frau"))),
        (field("Land", FieldKind::Select, &["Schweiz", "Vereinigte Staaten"]), Some(json!("Vereinigte Staaten"))),
        (field("Kanton / Bundesland", FieldKind::Text, &[]), Some(json!("Texas"))),
        (field("Title", FieldKind::Select, &["Dr.", "Prof."]), None),
    ];
    for (f, want) in cases {
        let label = f.label.clone();
        assert_eq!(suggest(&[f], &applicant(ConsentPolicy::default())).await[0], want, "{label}");
    }
}

#[tokio::test]
async fn a_fact_goes_into_the_first_box_that_asks_for_it() {
    let fields = [
        field("Telefon", FieldKind::Tel, &[]),
        field("Weiteres Telefon", FieldKind::Tel, &[]),
        field("Name", FieldKind::Text, &[]),
        field("Vorname", FieldKind::Text, &[]),
    ];
    let got = suggest(&fields, &applicant(ConsentPolicy::default())).await;
    assert_eq!(got, [Some(json!("+1 512 555 0100")), None, Some(json!("Muster")), Some(json!("Ana"))]);
}
