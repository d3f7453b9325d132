//! Scanning: one injected script (`scan.js`, one CDP round trip) turns the live page into
//! fields, actions and signals; `analyze` adds the platform, the page kind and an engine's
//! suggestions.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::platforms::{self, Platform, Signals};
use super::{Actions, Applicant, Field, FieldKind, FormEngine, FormPage, FormsError, PageContext, PageKind, Step};
use crate::guard::Block;

const SCRIPT: &str = include_str!("scan.js");

/// Confirmation wording seen on real thank-you pages.
const CONFIRMATION: &[&str] = &[
    "thank you for applying",
    "thanks for applying",
    "application submitted",
    "application has been submitted",
    "we've received your application",
    "we have received your application",
    "your application was sent",
    "application received",
];

/// What the scanner returns.
#[derive(Debug, Deserialize)]
pub struct PageScan {
    pub url: String,
    pub title: String,
    pub fields: Vec<Field>,
    #[serde(default)]
    pub actions: Actions,
    #[serde(default)]
    pub signals: Signals,
    /// True when the scan was limited to one form or modal.
    #[serde(default)]
    pub scoped: bool,
    #[serde(default)]
    pub body_sample: String,
    pub step: Option<RawStep>,
    pub heading: Option<String>,
    #[serde(default)]
    pub scan_ms: f64,
}

/// "Step n of m" as the page shows it.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct RawStep {
    pub index: u32,
    pub total: u32,
}

/// The `analyze` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Analysis {
    pub url: String,
    pub title: String,
    pub platform: Platform,
    pub page_kind: PageKind,
    /// A CAPTCHA, challenge or login wall on the page; the session is then `needs_human`.
    pub block: Option<Block>,
    pub step: Option<Step>,
    pub fields: Vec<Field>,
    pub actions: Actions,
    pub engine: String,
    pub elapsed_ms: u64,
}

/// Runs the scanner on the page.
pub async fn scan(page: &dyn FormPage) -> Result<PageScan, FormsError> {
    let value = page.eval("scan page", SCRIPT).await?;
    serde_json::from_value(value).map_err(|e| FormsError::Scan(e.to_string()))
}

impl PageScan {
    pub fn platform(&self) -> Platform {
        platforms::detect(&self.url, &self.signals)
    }

    /// What kind of page this is, from its fields, actions and text.
    pub fn page_kind(&self) -> PageKind {
        let live: Vec<&Field> =
            self.fields.iter().filter(|f| !f.trap && (f.hints.visible || f.kind == FieldKind::File)).collect();
        let text = self.body_sample.to_lowercase();
        if live.len() <= 1 && CONFIRMATION.iter().any(|c| text.contains(c)) {
            return PageKind::Confirmation;
        }
        if self.signals.password_fields > 0 && live.len() <= 4 {
            return PageKind::Login;
        }
        if live.len() >= 2 || live.iter().any(|f| f.kind == FieldKind::File) {
            return PageKind::ApplicationForm;
        }
        if self.actions.apply.is_some() {
            return PageKind::JobPosting;
        }
        PageKind::Unknown
    }

    fn step(&self, kind: PageKind) -> Option<Step> {
        match (self.step, kind) {
            (Some(s), _) => Some(Step { index: s.index, total: s.total, title: self.heading.clone() }),
            (None, PageKind::ApplicationForm) => Some(Step { index: 1, total: 1, title: self.heading.clone() }),
            _ => None,
        }
    }
}

/// The scanned fields with the engine's suggestions attached (none without applicant data).
pub async fn suggest(scan: &PageScan, engine: &dyn FormEngine, applicant: &Applicant) -> Vec<Field> {
    let mut fields = scan.fields.clone();
    if applicant.is_empty() && applicant.cover_letter_text.is_none() {
        return fields;
    }
    let context = PageContext { platform: scan.platform(), fields: &fields, title: &scan.title };
    let suggestions = engine.suggest(&context, applicant).await;
    for (field, suggestion) in fields.iter_mut().zip(suggestions) {
        field.suggestion = suggestion;
    }
    fields
}

/// Describes the page for the caller: platform, kind, step, fields with suggestions, actions.
pub async fn analyze(
    page: &dyn FormPage,
    engine: &dyn FormEngine,
    applicant: &Applicant,
) -> Result<Analysis, FormsError> {
    let started = Instant::now();
    let scan = scan(page).await?;
    let fields = suggest(&scan, engine, applicant).await;
    let page_kind = scan.page_kind();
    Ok(Analysis {
        platform: scan.platform(),
        step: scan.step(page_kind),
        page_kind,
        block: None,
        fields,
        actions: scan.actions.clone(),
        engine: engine.name().to_string(),
        url: scan.url,
        title: scan.title,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
