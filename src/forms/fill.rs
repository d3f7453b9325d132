//! Filling: writes each suggested value with the executor for its widget, following the
//! humanize policy, and reads every write back (`verified`). Traps are never touched, opt-ins
//! stay unticked, and a field that already holds the right value is left alone.

use std::collections::HashSet;
use std::time::Instant;

use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::matching;
use super::rules::as_text;
use super::scan;
use super::{Applicant, Field, FieldKind, FormEngine, FormsError, Suggestion};
use crate::browser::BrowserError;
use crate::browser::humanize::Humanize;
use crate::browser::port::PagePort;
use crate::guard::Block;

/// One written field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilledField {
    pub field_id: String,
    pub selector: String,
    pub label: String,
    #[schema(value_type = Object)]
    pub value: Value,
    pub source: String,
    /// The value was read back from the page after the write.
    pub verified: bool,
}

/// A field left alone, and why (`no_data`, `trap`, `already_filled`, `unsupported`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedField {
    pub field_id: String,
    pub label: String,
    pub reason: &'static str,
}

/// A required field with no value and nothing to fill it with.
#[derive(Debug, Serialize, ToSchema)]
pub struct MissingField {
    pub field_id: String,
    pub label: String,
    /// `needs_human` (a legal or EEO question the data does not answer for this jurisdiction),
    /// `needs_text` (free text the rules engine does not write) or `no_data`.
    pub reason: &'static str,
}

/// A write that failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    pub field_id: String,
    pub message: String,
}

/// What `fill` did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct FillReport {
    pub filled_fields: Vec<FilledField>,
    pub skipped: Vec<SkippedField>,
    pub missing_required: Vec<MissingField>,
    pub errors: Vec<FieldError>,
    /// A block that appeared while filling (e.g. a CAPTCHA on submit-less validation).
    pub block: Option<Block>,
    /// Notes from the engine (e.g. the LLM failed and the rules' suggestions were used).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
}

/// Fills the page: scan, suggest, apply overrides, write and verify; a second pass covers
/// questions that appeared because of the first (e.g. "If yes, please explain").
pub async fn fill(
    page: &dyn PagePort,
    engine: &dyn FormEngine,
    applicant: &Applicant,
    overrides: &Map<String, Value>,
    humanize: Humanize,
    rng: &mut StdRng,
) -> Result<FillReport, FormsError> {
    let started = Instant::now();
    let first = scan::scan_settled(page).await?;
    let unknown: Vec<String> = overrides
        .keys()
        .filter(|k| !first.fields.iter().any(|f| &f.field_id == *k || &f.selector == *k))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(FormsError::UnknownOverride(unknown));
    }
    let mut report = FillReport::default();
    let mut done: HashSet<String> = HashSet::new();
    let mut current = first;
    for _pass in 0..2 {
        let (fields, warnings) = scan::suggest(&current, engine, applicant).await;
        for warning in warnings {
            if !report.warnings.contains(&warning) {
                report.warnings.push(warning);
            }
        }
        let mut wrote = false;
        let all = fields.clone();
        for mut field in fields {
            if !done.insert(field.field_id.clone()) {
                continue;
            }
            // A dial-code picker is written together with the number beside it.
            if all
                .iter()
                .any(|n| n.hints.dial_picker.as_ref() == Some(&field.selector) && !n.trap && n.suggestion.is_some())
            {
                continue;
            }
            let picker =
                field.hints.dial_picker.as_ref().and_then(|s| all.iter().find(|p| &p.selector == s && !p.trap));
            if let Some(value) = overrides.get(&field.field_id).or_else(|| overrides.get(&field.selector)) {
                field.suggestion = Some(Suggestion {
                    value: value.clone(),
                    source: "override".into(),
                    confidence: 1.0,
                    ..Default::default()
                });
            }
            wrote |= fill_field(page, &field, picker, applicant, humanize, rng, &mut report).await?;
        }
        if !wrote {
            break;
        }
        current = scan::scan(page).await?;
        if current.fields.iter().all(|f| done.contains(&f.field_id) || f.trap || !f.hints.visible) {
            break;
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Handles one field (with the dial-code picker beside a phone number); returns whether it
/// wrote anything.
async fn fill_field(
    page: &dyn PagePort,
    field: &Field,
    picker: Option<&Field>,
    applicant: &Applicant,
    humanize: Humanize,
    rng: &mut StdRng,
    report: &mut FillReport,
) -> Result<bool, FormsError> {
    let skip = |reason| SkippedField { field_id: field.field_id.clone(), label: field.label.clone(), reason };
    if field.trap {
        report.skipped.push(skip("trap"));
        return Ok(false);
    }
    let Some(suggestion) = &field.suggestion else {
        if field.required && is_empty(&field.value) {
            let reason = super::rules::missing_reason(field);
            report.missing_required.push(MissingField {
                field_id: field.field_id.clone(),
                label: field.label.clone(),
                reason,
            });
        } else if super::rules::is_marketing_opt_in(field) {
            report.skipped.push(skip("opt_in"));
        } else {
            report.skipped.push(skip("no_data"));
        }
        return Ok(false);
    };
    if holds(field, &suggestion.value) {
        report.skipped.push(skip("already_filled"));
        return Ok(false);
    }
    let executor = Executor { page, humanize };
    let mut picked = None;
    let result = if let (FieldKind::Tel | FieldKind::Text, Some(picker)) = (field.kind, picker) {
        let number = as_text(&suggestion.value);
        executor.phone(field, picker, &number, &applicant.user_data, rng).await.map(|w| {
            picked = Some(match w.picker {
                Ok((value, verified)) => Ok(FilledField {
                    field_id: picker.field_id.clone(),
                    selector: picker.selector.clone(),
                    label: picker.label.clone(),
                    value,
                    source: suggestion.source.clone(),
                    verified,
                }),
                Err(reason) => {
                    Err(SkippedField { field_id: picker.field_id.clone(), label: picker.label.clone(), reason })
                }
            });
            (w.value, w.verified)
        })
    } else {
        match field.kind {
            FieldKind::File => match &applicant.resume {
                Some(path) if suggestion.source == "resume" || suggestion.source == "override" => {
                    executor.file(field, path, rng).await
                }
                _ => {
                    report.skipped.push(skip("unsupported"));
                    return Ok(false);
                }
            },
            FieldKind::Select => executor.select(field, &as_text(&suggestion.value)).await,
            FieldKind::RadioGroup => executor.choose(field, &[as_text(&suggestion.value)], rng).await,
            FieldKind::CheckboxGroup => {
                let wanted: Vec<String> = match &suggestion.value {
                    Value::Array(items) => items.iter().map(as_text).collect(),
                    other => vec![as_text(other)],
                };
                executor.choose(field, &wanted, rng).await
            }
            FieldKind::Checkbox => executor.checkbox(field, suggestion.value.as_bool().unwrap_or(false), rng).await,
            FieldKind::Combobox => executor.combobox(field, &as_text(&suggestion.value), rng).await,
            _ if field.hints.widget == "typeahead" => executor.combobox(field, &as_text(&suggestion.value), rng).await,
            FieldKind::Date => executor.date(field, &as_text(&suggestion.value), rng).await,
            FieldKind::Text if date::asked_format(field).is_some() => {
                executor.date(field, &as_text(&suggestion.value), rng).await
            }
            _ => executor.text(field, &as_text(&suggestion.value), rng).await,
        }
    };
    match result {
        Ok((value, verified)) => {
            report.filled_fields.push(FilledField {
                field_id: field.field_id.clone(),
                selector: field.selector.clone(),
                label: field.label.clone(),
                value,
                source: suggestion.source.clone(),
                verified,
            });
            match picked {
                Some(Ok(filled)) => report.filled_fields.push(filled),
                Some(Err(skipped)) => report.skipped.push(skipped),
                None => {}
            }
            Ok(true)
        }
        Err(FillError::Browser(e @ (BrowserError::Disconnected | BrowserError::Timeout(_)))) => Err(e.into()),
        Err(e) => {
            report.errors.push(FieldError { field_id: field.field_id.clone(), message: e.to_string() });
            Ok(true)
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// True when the field already shows the wanted value.
fn holds(field: &Field, wanted: &Value) -> bool {
    match (&field.value, wanted) {
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => {
            let norm = |v: &Vec<Value>| {
                let mut s: Vec<String> = v.iter().map(|x| matching::normalize(&as_text(x))).collect();
                s.sort();
                s
            };
            norm(a) == norm(b)
        }
        (Value::String(a), b) => !a.is_empty() && same_text(field.kind, a, &as_text(b)),
        _ => false,
    }
}

/// Compares what the page shows with what was written (phone masks keep the digits).
fn same_text(kind: FieldKind, shown: &str, wanted: &str) -> bool {
    if kind == FieldKind::Tel || kind == FieldKind::Number {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        return digits(shown) == digits(wanted);
    }
    shown.trim() == wanted.trim() || matching::normalize(shown) == matching::normalize(wanted)
}

/// Failures writing one field (reported per field; the fill goes on).
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Browser(#[from] BrowserError),
    #[error("the element is no longer on the page")]
    Gone,
    #[error("no option matching {0:?} appeared")]
    NoOption(String),
}

mod choice;
mod combobox;
pub(crate) mod date;
mod executor;
mod file;
mod phone;
mod text;

pub(super) use executor::Executor;

#[cfg(test)]
mod tests;
