//! The `rules` engine: maps fields to applicant data through platform conventions,
//! `autocomplete`, name/id patterns and label synonyms, and to `qa_answers` by question
//! similarity. Legal and EEO questions are answered only from `qa_answers`; choice answers go
//! through `matching::match_option`, so below the floor nothing is suggested.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::matching::{self, QUESTION_FLOOR};
use super::{Applicant, Field, FieldKind, FormEngine, PageContext, Suggestion};

/// How a canonical applicant key shows up on pages.
struct KeySpec {
    key: &'static str,
    autocomplete: &'static [&'static str],
    /// Substrings of the field's name/id, lowercased with punctuation removed.
    ident: &'static [&'static str],
    /// Label phrases that may appear inside a longer label.
    phrases: &'static [&'static str],
    /// Labels that must match exactly (too generic to look for inside others).
    exact: &'static [&'static str],
}

const KEYS: &[KeySpec] = &[
    KeySpec {
        key: "first_name",
        autocomplete: &["given-name"],
        ident: &["firstname", "givenname", "fname"],
        phrases: &["first name", "given name", "forename"],
        exact: &[],
    },
    KeySpec {
        key: "last_name",
        autocomplete: &["family-name"],
        ident: &["lastname", "familyname", "surname", "lname"],
        phrases: &["last name", "family name", "surname"],
        exact: &[],
    },
    KeySpec {
        key: "preferred_name",
        autocomplete: &["nickname"],
        ident: &["preferredname"],
        phrases: &["preferred name", "preferred first name"],
        exact: &[],
    },
    KeySpec {
        key: "full_name",
        autocomplete: &["name"],
        ident: &["fullname", "candidatename"],
        phrases: &["full name", "legal name", "your name"],
        exact: &["name"],
    },
    KeySpec { key: "email", autocomplete: &["email"], ident: &["email"], phrases: &["email", "e mail"], exact: &[] },
    KeySpec {
        key: "phone",
        autocomplete: &["tel", "tel-national"],
        ident: &["phone", "mobile", "telephone"],
        phrases: &["phone", "mobile number", "telephone", "cell number"],
        exact: &["mobile", "cell"],
    },
    KeySpec { key: "linkedin_url", autocomplete: &[], ident: &["linkedin"], phrases: &["linkedin"], exact: &[] },
    KeySpec { key: "github_url", autocomplete: &[], ident: &["github"], phrases: &["github"], exact: &[] },
    KeySpec {
        key: "website_url",
        autocomplete: &["url"],
        ident: &["website", "portfolio", "personalsite", "homepage"],
        phrases: &["website", "portfolio", "personal site", "blog url"],
        exact: &["url", "blog"],
    },
    KeySpec { key: "city", autocomplete: &["address-level2"], ident: &["city"], phrases: &["city"], exact: &[] },
    KeySpec {
        key: "country",
        autocomplete: &["country", "country-name"],
        ident: &["country"],
        phrases: &["country"],
        exact: &[],
    },
    KeySpec {
        key: "location",
        autocomplete: &[],
        ident: &["location"],
        phrases: &["location", "where are you based", "where do you live", "city and state"],
        exact: &[],
    },
    KeySpec {
        key: "current_company",
        autocomplete: &["organization"],
        ident: &["currentcompany", "employer"],
        phrases: &["current company", "current employer", "most recent employer", "company name"],
        exact: &["company", "employer", "organization"],
    },
    KeySpec {
        key: "current_title",
        autocomplete: &["organization-title"],
        ident: &["jobtitle", "currenttitle", "currentposition"],
        phrases: &["current title", "job title", "current position", "current role"],
        exact: &["title", "position"],
    },
    KeySpec {
        key: "years_experience",
        autocomplete: &[],
        ident: &["yearsexperience", "yearsofexperience", "experienceyears"],
        phrases: &["years of experience", "years of professional experience", "years experience"],
        exact: &[],
    },
    KeySpec {
        key: "education",
        autocomplete: &[],
        ident: &["education", "degree"],
        phrases: &["education", "highest degree", "degree"],
        exact: &["school", "university"],
    },
    KeySpec {
        key: "skills",
        autocomplete: &[],
        ident: &["skills"],
        phrases: &["skills", "which of these do you know", "technologies", "familiar with", "programming languages"],
        exact: &[],
    },
    KeySpec {
        key: "salary_expectation",
        autocomplete: &[],
        ident: &["salary", "compensation"],
        phrases: &["salary", "compensation expectation", "expected compensation", "desired pay"],
        exact: &[],
    },
    KeySpec { key: "pronouns", autocomplete: &[], ident: &["pronoun"], phrases: &["pronouns"], exact: &[] },
];

/// Keys whose words are specific enough to recognise inside a long question.
const DISTINCTIVE: &[&str] = &["salary_expectation", "linkedin_url", "github_url", "years_experience", "pronouns"];

/// Labels about someone else: the applicant's own data never goes there.
const OTHER_PERSON: &[&str] = &["referr", "reference", "emergency", "manager", "supervisor", "recruiter", "hiring"];
const MARKETING: &[&str] = &[
    "marketing",
    "newsletter",
    "job alert",
    "subscribe",
    "promotional",
    "future opportunities",
    "future job",
    "talent community",
    "updates about",
];
const ACKNOWLEDGE: &[&str] =
    &["i agree", "i acknowledge", "i certify", "i confirm", "i have read", "i understand", "privacy policy", "terms"];

/// The deterministic engine.
pub struct RulesEngine;

#[async_trait]
impl FormEngine for RulesEngine {
    fn name(&self) -> &'static str {
        "rules"
    }

    async fn suggest(&self, page: &PageContext<'_>, applicant: &Applicant) -> Vec<Option<Suggestion>> {
        page.fields.iter().map(|f| suggest_field(page, f, applicant)).collect()
    }
}

/// True for an opt-in to marketing mail or job alerts (never ticked).
pub fn is_marketing_opt_in(field: &Field) -> bool {
    let text = matching::normalize(&format!("{} {}", field.label, field.hints.own_label.as_deref().unwrap_or("")));
    field.kind == FieldKind::Checkbox && MARKETING.iter().any(|m| text.contains(m))
}

fn suggest_field(page: &PageContext<'_>, field: &Field, applicant: &Applicant) -> Option<Suggestion> {
    if field.trap {
        return None;
    }
    let key = canonical_key(page, field);
    if field.kind == FieldKind::File {
        // The scanner's role (label, section, accept) decides first: the resume only goes
        // into a resume input.
        if let Some(role) = field.hints.file_role.as_deref() {
            return if role == "resume" { resume_suggestion(applicant) } else { None };
        }
        return match key {
            Some("resume") => resume_suggestion(applicant),
            _ if key.is_none() && is_resume_label(field) => resume_suggestion(applicant),
            _ => None,
        };
    }
    if field.kind == FieldKind::Checkbox && is_marketing_opt_in(field) {
        return None;
    }
    let label = field.label.as_str();
    let field_topic = matching::topic(label);
    if field_topic.is_none()
        && let Some(key) = key
        && let Some((value, source)) = user_value(key, &applicant.user_data)
        && let Some(s) = fit(field, &value, source, 0.95)
    {
        return Some(s);
    }
    if key == Some("cover_letter")
        && field.kind == FieldKind::Textarea
        && let Some(text) = &applicant.cover_letter_text
    {
        return Some(Suggestion {
            value: json!(text),
            source: "cover_letter_text".into(),
            confidence: 0.95,
            ..Default::default()
        });
    }
    if let Some((question, answer, score)) = best_question(label, field_topic, &applicant.qa_answers)
        && let Some(s) = fit(field, answer, format!("qa_answers.{question}"), score)
    {
        return Some(s);
    }
    if field_topic.is_some() {
        return None;
    }
    if let Some(s) = extra_key(field, &applicant.user_data) {
        return Some(s);
    }
    let ack = matching::normalize(&format!("{} {}", label, field.hints.own_label.as_deref().unwrap_or("")));
    if field.kind == FieldKind::Checkbox && field.required && ACKNOWLEDGE.iter().any(|a| ack.contains(a)) {
        return Some(Suggestion {
            value: json!(true),
            source: "default".into(),
            confidence: 0.7,
            ..Default::default()
        });
    }
    None
}

/// The canonical key a field stands for: platform conventions, autocomplete, name/id, label.
fn canonical_key(page: &PageContext<'_>, field: &Field) -> Option<&'static str> {
    let label = matching::normalize(&field.label);
    if OTHER_PERSON.iter().any(|w| label.contains(w)) {
        return None;
    }
    if let Some(key) = page.platform.key_for(field) {
        return Some(key);
    }
    if let Some(ac) = field.hints.autocomplete.as_deref().map(str::to_ascii_lowercase)
        && let Some(spec) = KEYS.iter().find(|k| k.autocomplete.iter().any(|a| ac.split_whitespace().any(|t| t == *a)))
    {
        return Some(spec.key);
    }
    if label.contains("cover letter") {
        return Some("cover_letter");
    }
    if field.kind == FieldKind::File {
        return None;
    }
    let ident: String = format!("{} {}", field.name.as_deref().unwrap_or(""), field.html_id.as_deref().unwrap_or(""))
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .collect();
    let long_label = label.split(' ').count() > 6;
    for spec in KEYS {
        if spec.exact.contains(&label.as_str()) {
            return Some(spec.key);
        }
        let distinctive = DISTINCTIVE.contains(&spec.key) && field.kind.is_text_like();
        if (!long_label || distinctive) && spec.phrases.iter().any(|p| contains_words(&label, p)) {
            return Some(spec.key);
        }
    }
    let asks_years = label.contains("how many years") || label.starts_with("year") || label.contains("years of");
    if asks_years && label.contains("experience") && field.kind != FieldKind::Textarea {
        return Some("years_experience");
    }
    if !long_label {
        for spec in KEYS {
            if spec.ident.iter().any(|p| ident.contains(p)) {
                return Some(spec.key);
            }
        }
    }
    None
}

fn contains_words(text: &str, phrase: &str) -> bool {
    format!(" {text} ").contains(&format!(" {phrase} "))
}

fn is_resume_label(field: &Field) -> bool {
    let text = matching::normalize(&format!("{} {}", field.label, field.name.as_deref().unwrap_or("")));
    let resume = ["resume", "cv", "curriculum"].iter().any(|w| contains_words(&text, w) || text.contains("resume"));
    let not = ["cover", "autofill", "auto fill", "parse", "apply with", "transcript"].iter().any(|w| text.contains(w));
    resume && !not
}

fn resume_suggestion(applicant: &Applicant) -> Option<Suggestion> {
    let path = applicant.resume.as_ref()?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    Some(Suggestion { value: json!(name), source: "resume".into(), confidence: 0.95, ..Default::default() })
}

/// The applicant's value for a canonical key, with its source.
fn user_value(key: &str, data: &Map<String, Value>) -> Option<(Value, String)> {
    let get = |k: &str| data.get(k).filter(|v| !is_blank(v)).cloned();
    if let Some(v) = get(key) {
        return Some((v, format!("user_data.{key}")));
    }
    match key {
        "full_name" => {
            if let Some(v) = get("name") {
                return Some((v, "user_data.name".into()));
            }
            let (first, last) = (get("first_name")?, get("last_name")?);
            Some((json!(format!("{} {}", as_text(&first), as_text(&last))), "user_data.full_name".into()))
        }
        "location" => get("city").map(|v| (v, "user_data.city".into())),
        "city" => None,
        "website_url" => get("portfolio_url").map(|v| (v, "user_data.portfolio_url".into())),
        _ => None,
    }
}

/// The `qa_answers` question closest to a label, within the same legal/EEO topic.
fn best_question<'a>(
    label: &str,
    field_topic: Option<matching::Topic>,
    qa: &'a Map<String, Value>,
) -> Option<(&'a str, &'a Value, f64)> {
    if label.is_empty() {
        return None;
    }
    qa.iter()
        .filter(|(_, v)| !is_blank(v))
        .filter(|(q, _)| matching::topic(q) == field_topic)
        .filter(|(q, _)| {
            let (a, b) = (matching::intent(q), matching::intent(label));
            a.is_none() || b.is_none() || a == b
        })
        .map(|(q, v)| {
            let score = if matching::normalize(q) == matching::normalize(label) {
                1.0
            } else if matching::intent(q).is_some() && matching::intent(q) == matching::intent(label) {
                // The same kind of question in other words ("why do you want to join us?").
                matching::similarity(q, label).max(0.75)
            } else if field_topic.is_some() {
                // Same legal/EEO topic: the topic itself is the strongest evidence.
                matching::similarity(q, label).max(0.75)
            } else {
                matching::similarity(q, label)
            };
            (q.as_str(), v, score)
        })
        .filter(|(_, _, s)| *s >= QUESTION_FLOOR)
        .max_by(|a, b| a.2.total_cmp(&b.2))
}

/// A `user_data` key outside the canonical ones whose words match the label.
fn extra_key(field: &Field, data: &Map<String, Value>) -> Option<Suggestion> {
    let label = &field.label;
    data.iter()
        .filter(|(k, v)| !is_blank(v) && !KEYS.iter().any(|s| s.key == k.as_str()))
        .map(|(k, v)| (k, v, matching::similarity(&k.replace('_', " "), label)))
        .filter(|(_, _, s)| *s >= 0.7)
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .and_then(|(k, v, s)| fit(field, v, format!("user_data.{k}"), s))
}

/// Shapes an answer for the field's kind; choice answers must name one of the page's options.
pub(crate) fn fit(field: &Field, answer: &Value, source: String, confidence: f64) -> Option<Suggestion> {
    let labels: Vec<String> = field.options.iter().map(|o| o.label.clone()).collect();
    let (value, conf) = match field.kind {
        FieldKind::Checkbox => (json!(as_bool(answer)?), confidence),
        FieldKind::CheckboxGroup => {
            let wanted: Vec<String> = match answer {
                Value::Array(items) => items.iter().map(as_text).collect(),
                other => as_text(other).split([',', ';']).map(|s| s.trim().to_string()).collect(),
            };
            let mut chosen = Vec::new();
            for want in wanted.iter().filter(|w| !w.is_empty()) {
                if let Some((i, _)) = matching::match_option(want, &labels)
                    && !chosen.contains(&labels[i])
                {
                    chosen.push(labels[i].clone());
                }
            }
            if chosen.is_empty() {
                return None;
            }
            (json!(chosen), confidence * 0.95)
        }
        FieldKind::Select | FieldKind::RadioGroup => {
            let (i, c) = matching::match_option(&as_text(answer), &labels)?;
            (json!(labels[i]), confidence.min(c))
        }
        FieldKind::Combobox if !labels.is_empty() => {
            let (i, c) = matching::match_option(&as_text(answer), &labels)?;
            (json!(labels[i]), confidence.min(c))
        }
        FieldKind::Date => (json!(as_text(answer)), confidence),
        // A dropdown whose options could not be read takes no free text; a typeahead does.
        FieldKind::Combobox if field.hints.widget == "listbox_button" => return None,
        _ => (json!(as_text(answer)), if field.kind == FieldKind::Combobox { confidence.min(0.8) } else { confidence }),
    };
    let rounded = (conf * 100.0).round() / 100.0;
    Some(Suggestion { value, source, confidence: rounded, ..Default::default() })
}

pub(crate) fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A JSON value as the text a person would type.
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(as_text).collect::<Vec<_>>().join(", "),
        Value::Bool(true) => "Yes".into(),
        Value::Bool(false) => "No".into(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => match matching::polarity(&as_text(other)) {
            Some(matching::Polarity::Yes) => Some(true),
            Some(matching::Polarity::No) => Some(false),
            _ => None,
        },
    }
}
