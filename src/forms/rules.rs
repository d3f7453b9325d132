//! The `rules` engine: reads what each field asks (`intent`), answers facts from `user_data`
//! (`facts`), legal questions only within their jurisdiction (`legal`), EEO questions only from
//! the applicant's own answers, consent by policy, and matches `qa_answers` through the same
//! intents, then by similarity. Choice answers go through `matching::match_option`, so below
//! the floor nothing is suggested.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::intent::{self, Intent};
use super::matching::{self, QUESTION_FLOOR};
use super::{Applicant, Field, FieldKind, FormEngine, PageContext, Suggestion, facts, legal};

/// Name/id fragments (lowercased, punctuation removed) of fields whose label says nothing.
const IDENT: &[(&str, Intent)] = &[
    ("firstname", Intent::FirstName),
    ("givenname", Intent::FirstName),
    ("fname", Intent::FirstName),
    ("lastname", Intent::LastName),
    ("familyname", Intent::LastName),
    ("surname", Intent::LastName),
    ("lname", Intent::LastName),
    ("preferredname", Intent::PreferredName),
    ("fullname", Intent::FullName),
    ("email", Intent::Email),
    ("phone", Intent::Phone),
    ("mobile", Intent::Phone),
    ("linkedin", Intent::Linkedin),
    ("github", Intent::Github),
    ("website", Intent::Website),
    ("portfolio", Intent::Website),
    ("city", Intent::City),
    ("country", Intent::Country),
    ("postalcode", Intent::PostalCode),
    ("zip", Intent::PostalCode),
    ("location", Intent::Location),
    ("salary", Intent::Salary),
];

/// `autocomplete` tokens.
const AUTOCOMPLETE: &[(&str, Intent)] = &[
    ("given-name", Intent::FirstName),
    ("family-name", Intent::LastName),
    ("nickname", Intent::PreferredName),
    ("name", Intent::FullName),
    ("email", Intent::Email),
    ("tel", Intent::Phone),
    ("tel-national", Intent::Phone),
    ("url", Intent::Website),
    ("address-level2", Intent::City),
    ("address-level1", Intent::Region),
    ("postal-code", Intent::PostalCode),
    ("street-address", Intent::StreetAddress),
    ("address-line1", Intent::StreetAddress),
    ("country", Intent::Country),
    ("country-name", Intent::Country),
    ("organization", Intent::CurrentCompany),
    ("organization-title", Intent::CurrentTitle),
    ("bday", Intent::DateOfBirth),
    ("sex", Intent::Gender),
    ("honorific-prefix", Intent::Salutation),
];

/// Options that make a "Title" an honorific (a salutation) rather than a job title.
const SALUTATIONS: &[&str] = &["mr", "mrs", "ms", "miss", "mx", "herr", "frau", "monsieur", "madame", "mme"];

/// The deterministic engine.
pub struct RulesEngine;

#[async_trait]
impl FormEngine for RulesEngine {
    fn name(&self) -> &'static str {
        "rules"
    }

    async fn suggest(&self, page: &PageContext<'_>, applicant: &Applicant) -> Vec<Option<Suggestion>> {
        let mut suggestions: Vec<Option<Suggestion>> =
            page.fields.iter().map(|f| suggest_field(page, f, applicant)).collect();
        once_per_fact(page.fields, &mut suggestions);
        suggestions
    }
}

/// A fact goes into the first box that asks for it; a later one ("Other website", a second
/// phone) stays empty unless it asks to confirm the value ("Confirm email").
fn once_per_fact(fields: &[Field], suggestions: &mut [Option<Suggestion>]) {
    const CONFIRM: &[&str] = &["confirm", "repeat", "again", "bestatig", "wiederhol", "confirmer", "retaper", "verify"];
    let mut seen: Vec<String> = Vec::new();
    for (field, slot) in fields.iter().zip(suggestions.iter_mut()) {
        let Some(s) = slot else { continue };
        if !s.source.starts_with("user_data.") || field.kind == FieldKind::File {
            continue;
        }
        let key = format!("{}={}", s.source, s.value);
        if seen.contains(&key) {
            let label = matching::fold(&field.label);
            if !CONFIRM.iter().any(|c| label.contains(c)) {
                *slot = None;
            }
        } else {
            seen.push(key);
        }
    }
}

/// True for an opt-in to marketing mail, job alerts or a talent pool (never ticked).
pub fn is_marketing_opt_in(field: &Field) -> bool {
    field.kind == FieldKind::Checkbox && checkbox_intent(field) == Some(Intent::MarketingOptIn)
}

/// A single checkbox's intent: its own text first (the group label may be a heading).
fn checkbox_intent(field: &Field) -> Option<Intent> {
    let own = field.hints.own_label.as_deref().map(intent::classify);
    match own.flatten() {
        Some(i) => Some(i),
        None => intent::classify(&field.label),
    }
}

/// What a field asks, from its label, else its platform name, autocomplete, name/id and kind.
pub fn intent_of(field: &Field) -> Option<Intent> {
    let label = matching::fold(&field.label);
    let options: Vec<String> = field.options.iter().map(|o| matching::fold(&o.label)).collect();
    if label == "title" || label == "titel" || label == "titre" {
        let honorific = options.iter().any(|o| SALUTATIONS.contains(&o.as_str()));
        return if honorific {
            Some(Intent::Salutation)
        } else {
            (field.kind.is_text_like() && options.is_empty()).then_some(Intent::CurrentTitle)
        };
    }
    let from_label =
        if field.kind == FieldKind::Checkbox { checkbox_intent(field) } else { intent::classify(&field.label) };
    let intent = from_label.or_else(|| {
        if let Some(ac) = field.hints.autocomplete.as_deref().map(str::to_ascii_lowercase)
            && let Some((_, i)) = AUTOCOMPLETE.iter().find(|(a, _)| ac.split_whitespace().any(|t| t == *a))
        {
            return Some(*i);
        }
        let ident: String =
            format!("{} {}", field.name.as_deref().unwrap_or(""), field.html_id.as_deref().unwrap_or(""))
                .to_ascii_lowercase()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
                .collect();
        if label.split(' ').count() <= 6
            && let Some((_, i)) = IDENT.iter().find(|(p, _)| ident.contains(p))
        {
            return Some(*i);
        }
        match field.kind {
            FieldKind::Tel => Some(Intent::Phone),
            FieldKind::Email => Some(Intent::Email),
            _ => None,
        }
    })?;
    // A phone label on a long option list is the dial-code picker beside the number.
    if intent == Intent::Phone && field.kind.is_choice() && field.options.len() > 20 {
        return Some(Intent::PhoneCountryCode);
    }
    Some(intent)
}

/// The intent a platform's own field name stands for.
fn platform_intent(page: &PageContext<'_>, field: &Field) -> Option<Intent> {
    Some(match page.platform.key_for(field)? {
        "first_name" => Intent::FirstName,
        "last_name" => Intent::LastName,
        "preferred_name" => Intent::PreferredName,
        "full_name" => Intent::FullName,
        "email" => Intent::Email,
        "phone" => Intent::Phone,
        "country"
            if field.kind.is_choice()
                && field.options.len() > 20
                && intent_of(field) == Some(Intent::PhoneCountryCode) =>
        {
            Intent::PhoneCountryCode
        }
        "country" => Intent::Country,
        "location" => Intent::Location,
        "city" => Intent::City,
        "postal_code" => Intent::PostalCode,
        "address" => Intent::StreetAddress,
        "resume" => Intent::Resume,
        "cover_letter" => Intent::CoverLetter,
        "linkedin_url" => Intent::Linkedin,
        _ => return None,
    })
}

/// The intent with the page around it: the platform's naming first; a bare "Name" beside a
/// first-name box is the last name.
fn intent_in(page: &PageContext<'_>, field: &Field) -> Option<Intent> {
    let fields = page.fields;
    let intent = platform_intent(page, field).or_else(|| intent_of(field));
    let others = || fields.iter().filter(|f| !f.trap && f.field_id != field.field_id);
    if intent == Some(Intent::FullName)
        && matches!(matching::fold(&field.label).as_str(), "name" | "nom")
        && others().any(|f| intent_of(f) == Some(Intent::FirstName))
        && !others().any(|f| intent_of(f) == Some(Intent::LastName))
    {
        return Some(Intent::LastName);
    }
    intent
}

/// Why a required field stays empty: `needs_human` (legal or EEO), `needs_text` (free text the
/// rules engine does not write) or `no_data`.
pub fn missing_reason(field: &Field) -> &'static str {
    match intent_of(field) {
        Some(i) if i.is_legal() || i.is_eeo() => "needs_human",
        _ if field.kind == FieldKind::Textarea => "needs_text",
        Some(Intent::Motivation | Intent::AdditionalInfo | Intent::CoverLetter) => "needs_text",
        _ => "no_data",
    }
}

fn suggest_field(page: &PageContext<'_>, field: &Field, applicant: &Applicant) -> Option<Suggestion> {
    if field.trap {
        return None;
    }
    let fields = page.fields;
    let intent = intent_in(page, field);
    if field.kind == FieldKind::File {
        // The scanner's role (label, section, accept) decides first: the resume only goes into
        // a resume input.
        let resume = match field.hints.file_role.as_deref() {
            Some(role) => role == "resume",
            None => intent == Some(Intent::Resume),
        };
        return resume.then(|| resume_suggestion(applicant)).flatten();
    }
    let tick =
        |source: &str| Suggestion { value: json!(true), source: source.into(), confidence: 0.9, ..Default::default() };
    match intent {
        Some(Intent::MarketingOptIn) if field.kind == FieldKind::Checkbox && applicant.consent.opt_ins => {
            Some(tick("consent.opt_ins"))
        }
        Some(Intent::MarketingOptIn) => None,
        Some(Intent::PrivacyConsent) if field.kind == FieldKind::Checkbox => {
            applicant.consent.acknowledge_required.then(|| tick("consent.acknowledge_required"))
        }
        Some(i) if i.is_legal() => legal::answers(i, field, applicant).iter().find_map(|a| fit_answer(field, a, 0.9)),
        Some(i) if i.is_eeo() => same_intent_question(field, i, &applicant.qa_answers)
            .or_else(|| facts::answer(i, field, fields, &applicant.user_data).and_then(|a| fit_answer(field, &a, 0.9))),
        Some(Intent::CoverLetter) if field.kind == FieldKind::Textarea => {
            applicant.cover_letter_text.as_ref().map(|text| Suggestion {
                value: json!(text),
                source: "cover_letter_text".into(),
                confidence: 0.95,
                ..Default::default()
            })
        }
        Some(i) => facts::answer(i, field, fields, &applicant.user_data)
            .and_then(|a| fit_answer(field, &a, 0.95))
            .or_else(|| same_intent_question(field, i, &applicant.qa_answers)),
        None => similar_question(&field.label, &applicant.qa_answers)
            .and_then(|(q, v, score)| fit(field, v, format!("qa_answers.{q}"), score))
            .or_else(|| extra_key(field, &applicant.user_data)),
    }
}

/// The first candidate of an answer that fits the field: on a choice, every candidate's exact
/// option first ("Suisse" among the names of Switzerland), only then a fuzzy one.
fn fit_answer(field: &Field, answer: &facts::Answer, confidence: f64) -> Option<Suggestion> {
    let fitted = |c: &String| fit(field, &json!(c), answer.source.clone(), confidence);
    if field.kind.is_choice() && !field.options.is_empty() {
        let labels: Vec<String> = field.options.iter().map(|o| o.label.clone()).collect();
        if let Some(s) = answer
            .candidates
            .iter()
            .filter(|c| matching::match_option(c, &labels).is_some_and(|(_, conf)| conf >= 0.97))
            .find_map(fitted)
        {
            return Some(s);
        }
    }
    answer.candidates.iter().find_map(fitted)
}

fn resume_suggestion(applicant: &Applicant) -> Option<Suggestion> {
    let path = applicant.resume.as_ref()?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    Some(Suggestion { value: json!(name), source: "resume".into(), confidence: 0.95, ..Default::default() })
}

/// A `qa_answers` question with the same intent (the closest in words when several).
fn same_intent_question(field: &Field, wanted: Intent, qa: &Map<String, Value>) -> Option<Suggestion> {
    qa.iter()
        .filter(|(q, v)| !is_blank(v) && intent::classify(q) == Some(wanted))
        .map(|(q, v)| (q, v, matching::similarity(q, &field.label).max(0.8)))
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .and_then(|(q, v, score)| fit(field, v, format!("qa_answers.{q}"), score))
}

/// The `qa_answers` question closest in words to a label no intent covers; never a legal or
/// EEO one.
fn similar_question<'a>(label: &str, qa: &'a Map<String, Value>) -> Option<(&'a str, &'a Value, f64)> {
    if label.is_empty() {
        return None;
    }
    qa.iter()
        .filter(|(q, v)| !is_blank(v) && !intent::classify(q).is_some_and(|i| i.is_legal() || i.is_eeo()))
        .map(|(q, v)| {
            let score =
                if matching::normalize(q) == matching::normalize(label) { 1.0 } else { matching::similarity(q, label) };
            (q.as_str(), v, score)
        })
        .filter(|(_, _, s)| *s >= QUESTION_FLOOR)
        .max_by(|a, b| a.2.total_cmp(&b.2))
}

/// A `user_data` key outside the known facts whose words match the label.
fn extra_key(field: &Field, data: &Map<String, Value>) -> Option<Suggestion> {
    let label = &field.label;
    data.iter()
        .filter(|(k, v)| !is_blank(v) && intent::classify(&k.replace('_', " ")).is_none())
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

#[cfg(test)]
mod tests;
