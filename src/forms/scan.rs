//! Scanning: one injected script (`scan/*.js`, one CDP round trip) turns the live page into
//! fields, actions and signals; `analyze` adds the platform, the page kind and an engine's
//! suggestions.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::platforms::{self, Platform, Signals};
use super::{Actions, Applicant, Field, FieldKind, FormEngine, FormsError, PageContext, PageKind, Step};
use crate::browser::port::PagePort;
use crate::guard::Block;

/// The page scanner: one Runtime.evaluate returns every control of the page (main frame,
/// same-origin iframes, open shadow roots) with its label, kind, options, value, section,
/// visibility and trap signals, and a stable selector, plus platform signals, the primary
/// actions and step hints. Selectors that cross a frame or shadow root are joined with
/// `" >>> "` (the executors resolve them the same way). Its parts share one async function.
const SCRIPT: &str = concat!(
    "(async () => {\n",
    include_str!("scan/page.js"),
    include_str!("scan/labels.js"),
    include_str!("scan/widgets.js"),
    include_str!("scan/walk.js"),
    "})()"
);

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
    /// What the scan was limited to: `form`, `modal` or nothing (the whole page).
    pub scope: Option<String>,
    /// Visible error messages not tied to one field.
    #[serde(default)]
    pub form_errors: Vec<String>,
    /// Visible confirmation wording (and an application id shown with it).
    pub confirmation: Option<SeenConfirmation>,
    #[serde(default)]
    pub body_sample: String,
    pub step: Option<RawStep>,
    pub heading: Option<String>,
}

/// Confirmation wording the scanner saw on the page.
#[derive(Debug, Clone, Deserialize)]
pub struct SeenConfirmation {
    pub message: String,
    pub confirmation_id: Option<String>,
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
    /// What went differently from the request: e.g. the LLM timed out and the rules'
    /// suggestions stand, or a model answer was dropped by validation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
}

/// A document younger than this may still be building its form (milliseconds since its
/// time origin, `performance.now()`); an older one is taken as it is.
const LATE_FORM_WINDOW_MS: f64 = 5_000.0;
/// The longest `scan_settled` waits for a late form.
const LATE_FORM_MAX_WAIT: Duration = Duration::from_millis(2_500);
/// Pause between scans while waiting.
const LATE_FORM_POLL: Duration = Duration::from_millis(200);

/// Runs the scanner on the page.
pub async fn scan(page: &dyn PagePort) -> Result<PageScan, FormsError> {
    let value = page.eval("scan page", SCRIPT).await?;
    serde_json::from_value(value).map_err(|e| FormsError::Scan(e.to_string()))
}

/// Runs the scanner, and gives a form that is built late a moment to appear. When the first
/// scan finds no field a person could fill and the document is young (a script, a custom
/// element or a shadow root still building the form after `DOMContentLoaded`), it scans again
/// until fields appear and their number holds for one more scan, within `LATE_FORM_MAX_WAIT`
/// and never past `LATE_FORM_WINDOW_MS` of the document's life. A form that is there at once
/// costs nothing more than one scan.
pub async fn scan_settled(page: &dyn PagePort) -> Result<PageScan, FormsError> {
    let first = scan(page).await?;
    if first.live_fields().next().is_some() {
        return Ok(first);
    }
    let age = page.eval("document age", "performance.now()").await?.as_f64().unwrap_or(f64::INFINITY);
    let left = (LATE_FORM_WINDOW_MS - age).max(0.0);
    let deadline = Instant::now() + LATE_FORM_MAX_WAIT.min(Duration::from_millis(left as u64));
    let mut current = first;
    while Instant::now() < deadline {
        tokio::time::sleep(LATE_FORM_POLL).await;
        let next = scan(page).await?;
        let (before, now) = (current.live_fields().count(), next.live_fields().count());
        current = next;
        if now > 0 && now == before {
            break;
        }
    }
    Ok(current)
}

impl PageScan {
    pub fn platform(&self) -> Platform {
        platforms::detect(&self.url, &self.signals)
    }

    /// Fields a person could fill now.
    pub fn live_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.trap && (f.hints.visible || f.kind == FieldKind::File))
    }

    /// What kind of page this is, from its fields, actions and text.
    pub fn page_kind(&self) -> PageKind {
        let live = self.live_fields().count();
        let has_file = self.live_fields().any(|f| f.kind == FieldKind::File);
        let progress = self.actions.next.is_some() || self.actions.review.is_some() || self.actions.submit.is_some();
        if self.confirmation.is_some() && live <= 1 && !progress {
            return PageKind::Confirmation;
        }
        if self.signals.password_fields > 0 && live <= 4 {
            return PageKind::Login;
        }
        if live >= 2 || has_file || self.scope.as_deref() == Some("modal") {
            return PageKind::ApplicationForm;
        }
        if self.actions.apply.is_some() {
            return PageKind::JobPosting;
        }
        if progress {
            return PageKind::ApplicationForm;
        }
        PageKind::Unknown
    }

    /// Where a multi-step form is; a single-page form is step 1 of 1.
    pub fn step(&self, kind: PageKind) -> Option<Step> {
        match (self.step, kind) {
            (Some(s), _) => Some(Step { index: Some(s.index), total: Some(s.total), title: self.heading.clone() }),
            (None, PageKind::ApplicationForm) if self.platform() == Platform::Linkedin => {
                Some(Step { index: None, total: None, title: self.heading.clone() })
            }
            (None, PageKind::ApplicationForm) => {
                Some(Step { index: Some(1), total: Some(1), title: self.heading.clone() })
            }
            _ => None,
        }
    }
}

/// The scanned fields with the engine's suggestions attached (none without applicant data),
/// and the engine's warnings.
pub async fn suggest(scan: &PageScan, engine: &dyn FormEngine, applicant: &Applicant) -> (Vec<Field>, Vec<String>) {
    let mut fields = scan.fields.clone();
    if applicant.is_empty() && applicant.cover_letter_text.is_none() {
        return (fields, Vec::new());
    }
    let context = PageContext {
        platform: scan.platform(),
        fields: &fields,
        title: &scan.title,
        heading: scan.heading.as_deref(),
    };
    let noted = engine.suggest_noted(&context, applicant).await;
    for (field, suggestion) in fields.iter_mut().zip(noted.suggestions) {
        field.suggestion = suggestion;
    }
    (fields, noted.warnings)
}

/// Describes the page for the caller: platform, kind, step, fields with suggestions, actions.
pub async fn analyze(
    page: &dyn PagePort,
    engine: &dyn FormEngine,
    applicant: &Applicant,
) -> Result<Analysis, FormsError> {
    let started = Instant::now();
    let scan = scan_settled(page).await?;
    let (fields, warnings) = suggest(&scan, engine, applicant).await;
    let page_kind = scan.page_kind();
    Ok(Analysis {
        platform: scan.platform(),
        step: scan.step(page_kind),
        page_kind,
        block: None,
        fields,
        actions: scan.actions.clone(),
        engine: engine.name().to_string(),
        warnings,
        url: scan.url,
        title: scan.title,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
