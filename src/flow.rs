//! The session's form steps with their side effects, shared by the V2 routes and the V1 task
//! macro (one code path): analyze, fill, submit and continue, each followed by block detection
//! (a guard block, or a sign-in page, puts the session in `needs_human`), with screenshots
//! stored as artifacts and events emitted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::browser::humanize::Humanize;
use crate::browser::tap::{HeldRequest, SentRequest};
use crate::forms::fill::{self, FillReport};
use crate::forms::scan::{self, Analysis};
use crate::forms::submit::{self, Confirmation, Outcome, StepError, SubmitAction};
use crate::forms::{Actions, Applicant, Control, FormEngine, FormsError, PageKind, Platform, Step, resume};
use crate::guard::{Block, BlockReason};
use crate::session::{OpGuard, Session, SessionError, SessionState};

/// What the steps need of the worker, and no more: the registry (block detection, the
/// profile's breaker), the artifact store (screenshots), the egress rules (resume downloads)
/// and the confinement (files the browser reads). `App::flow` makes one.
pub struct Context<'a> {
    /// An `Arc`: opening a session (the task macro) starts its supervisor.
    pub registry: &'a std::sync::Arc<crate::session::SessionRegistry>,
    pub artifacts: &'a crate::artifacts::Artifacts,
    pub egress: crate::egress::EgressPolicy,
    pub confinement: &'a crate::browser::sandbox::Confinement,
}

/// Failures of a step: the session's or the form's.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Forms(#[from] FormsError),
    /// A task cannot go on (missing data, the form's own errors, no control).
    #[error("{0}")]
    Stopped(String),
}

/// A resume given inline.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct InlineResume {
    pub filename: String,
    pub content_base64: String,
}

/// `submit`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitResponse {
    pub outcome: Outcome,
    pub clicked: Option<Control>,
    pub page_kind: PageKind,
    pub step: Option<Step>,
    pub confirmation: Option<Confirmation>,
    pub errors: Vec<StepError>,
    pub block: Option<Block>,
    /// URL of the screenshot taken after the outcome.
    pub screenshot: Option<String>,
    /// What the page sent while submitting: the submission request (field names and a digest,
    /// no values) and, once submitted, the confirmation page's text. Null when the click sent
    /// no form data (a step moved on without posting).
    pub evidence: Option<Evidence>,
    /// Dry run (`outcome: intercepted`): the submission the page would have sent, with its
    /// values, held back.
    pub intercepted: Option<HeldRequest>,
    pub elapsed_ms: u64,
}

/// Proof of what a submit sent and what came back.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Evidence {
    /// The submission: a posted document, else the largest XHR/fetch body sent.
    pub request: Option<SentRequest>,
    /// Every non-GET request the page sent during the submit, in order.
    pub requests: Vec<SentRequest>,
    /// The submission's HTTP status.
    pub response_status: Option<u16>,
    /// The confirmation page's visible text (first 2,000 characters), once submitted.
    pub confirmation_text: Option<String>,
    /// The screenshot taken after the outcome.
    pub screenshot: Option<String>,
    /// The session's recording, when it is recorded (stored when the session closes).
    pub video: Option<String>,
}

/// How much of a confirmation page's text evidence keeps.
const CONFIRMATION_TEXT: usize = 2000;

/// What `continue` reports about the page now.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageSummary {
    pub platform: Platform,
    pub page_kind: PageKind,
    pub step: Option<Step>,
    /// Fields a person could fill now (not traps, visible).
    pub fields: usize,
    pub actions: Actions,
}

/// `continue`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContinueResponse {
    pub state: SessionState,
    pub block: Option<Block>,
    pub url: String,
    pub title: String,
    pub analysis: PageSummary,
}

/// The worker's form engines, built once at start.
pub struct Engines {
    /// The per-platform rules alone.
    pub rules: Arc<dyn FormEngine>,
    /// Rules first, the LLM for what they leave open when one is configured (else the rules).
    pub auto: Arc<dyn FormEngine>,
    /// The LLM engine, when `BW_LLM_BASE_URL` is set.
    pub llm: Option<Arc<dyn FormEngine>>,
}

impl Engines {
    pub fn new(llm: Option<Arc<crate::forms::llm::LlmEngine>>) -> Self {
        let rules: Arc<dyn FormEngine> = Arc::new(crate::forms::rules::RulesEngine);
        let auto: Arc<dyn FormEngine> = match &llm {
            Some(llm) => Arc::new(crate::forms::llm::AutoEngine { llm: llm.clone() }),
            None => rules.clone(),
        };
        Self { rules, auto, llm: llm.map(|llm| llm as Arc<dyn FormEngine>) }
    }
}

/// Block detection plus the login rule: a guard block, or a sign-in page.
async fn detect(cx: &Context<'_>, op: &OpGuard, url: &str, kind: PageKind) -> Result<Option<Block>, FlowError> {
    let mut block = cx.registry.detect(op, url).await?;
    if block.is_none() && kind == PageKind::Login {
        block = Some(Block { reason: BlockReason::LoginRequired, detail: "the page asks to sign in".into() });
        op.session().set_block(block.clone());
    }
    Ok(block)
}

/// The page kind as callers see it: a blocked page is `blocked` (a sign-in page stays `login`).
fn shown_kind(kind: PageKind, block: &Option<Block>) -> PageKind {
    if block.is_some() && kind != PageKind::Login { PageKind::Blocked } else { kind }
}

/// A screenshot stored as an artifact (and announced as an event); a failure is logged, not fatal.
pub async fn snapshot(cx: &Context<'_>, op: &OpGuard, label: &str) -> Option<String> {
    let png = op.browser().screenshot(false).await.map_err(|e| tracing::warn!(error = %e, "no screenshot")).ok()?;
    let url = cx
        .artifacts
        .save_png(op.session().id, label, &png)
        .await
        .map_err(|e| tracing::warn!(error = %e, "screenshot not stored"))
        .ok()?;
    op.session().events.emit("screenshot", json!({"name": label, "screenshot_url": url}));
    Some(url)
}

/// Describes the page, with suggestions for the applicant.
pub async fn analyze(
    cx: &Context<'_>,
    op: &OpGuard,
    engine: &dyn FormEngine,
    applicant: &Applicant,
) -> Result<Analysis, FlowError> {
    let mut analysis = scan::analyze(op.browser(), engine, applicant).await?;
    op.session().set_page(analysis.url.clone(), analysis.title.clone(), None);
    analysis.block = detect(cx, op, &analysis.url, analysis.page_kind).await?;
    analysis.page_kind = shown_kind(analysis.page_kind, &analysis.block);
    Ok(analysis)
}

/// The resume for this call, kept in the session's own dir: downloaded once, or decoded.
pub async fn resume_file(
    cx: &Context<'_>,
    session: &Session,
    url: Option<&str>,
    inline: Option<&InlineResume>,
) -> Result<Option<PathBuf>, FlowError> {
    let path = match (url, inline) {
        (Some(url), _) => {
            Some(resume::download(&session.files_dir, url, cx.egress.clone()).await.map_err(FormsError::from)?)
        }
        (None, Some(inline)) => Some(
            resume::store_inline(&session.files_dir, &inline.filename, &inline.content_base64)
                .await
                .map_err(FormsError::from)?,
        ),
        (None, None) => None,
    };
    if path.is_some() {
        // The browser reads it as the browser user.
        let shared =
            cx.confinement.give(&session.files_dir).and_then(|()| cx.confinement.give_tree(&session.files_dir));
        shared.map_err(|e| FormsError::from(resume::ResumeError::Io(std::io::Error::other(e))))?;
    }
    Ok(path)
}

/// Fills the page and detects a block afterwards.
pub async fn fill(
    cx: &Context<'_>,
    op: &OpGuard,
    engine: &dyn FormEngine,
    applicant: &Applicant,
    overrides: &Map<String, Value>,
    humanize: Humanize,
) -> Result<FillReport, FlowError> {
    let mut rng = StdRng::from_os_rng();
    let mut report = fill::fill(op.browser(), engine, applicant, overrides, humanize, &mut rng).await?;
    let page = op.browser().info().await.map_err(FormsError::from)?;
    op.session().set_page(page.url.clone(), page.title, None);
    report.block = detect(cx, op, &page.url, PageKind::ApplicationForm).await?;
    Ok(report)
}

/// Clicks the step's control, judges the outcome, takes a screenshot; a confirmed submission
/// counts as a success for the profile.
pub async fn submit(
    cx: &Context<'_>,
    op: &OpGuard,
    action: SubmitAction,
    humanize: Humanize,
    dry_run: bool,
) -> Result<SubmitResponse, FlowError> {
    let started = Instant::now();
    let mut rng = StdRng::from_os_rng();
    let tap = op.browser().tap(dry_run).await.map_err(FormsError::from)?;
    let result = submit::submit(op.browser(), action, humanize, &mut rng).await;
    let tapped = tap.stop().await;
    if let Some(held) = tapped.held_submission() {
        return Ok(held_back(cx, op, held.clone(), started).await);
    }
    let result = result?;
    // The submit a review hold waited for went out and the page moved on. A page that refused
    // it (validation errors) stays held for the person.
    if matches!(result.outcome, Outcome::Submitted | Outcome::NextStep) {
        op.session().lift_review();
    }
    let block = detect(cx, op, &result.url, result.page_kind).await?;
    let outcome =
        if block.is_some() && result.outcome != Outcome::Submitted { Outcome::Blocked } else { result.outcome };
    if outcome == Outcome::Submitted {
        op.session().mark_submitted();
    }
    if outcome == Outcome::Submitted
        && let Some(profile) = &op.session().profile_id
    {
        cx.registry.profile_succeeded(profile).await;
    }
    if let Ok(page) = op.browser().info().await {
        op.session().set_page(page.url, page.title, None);
    }
    let label = match outcome {
        Outcome::NextStep => "next_step",
        Outcome::Submitted => "confirmation",
        Outcome::ValidationErrors => "validation_errors",
        Outcome::Blocked => "blocked",
        Outcome::NoControl => "no_control",
        Outcome::Intercepted => "dry_run",
    };
    let screenshot = snapshot(cx, op, label).await;
    let evidence = match tapped.submission() {
        None if outcome != Outcome::Submitted => None,
        request => Some(Evidence {
            request: request.cloned(),
            response_status: request.and_then(|r| r.status),
            requests: tapped.sent.clone(),
            confirmation_text: match outcome {
                Outcome::Submitted => op.browser().text(CONFIRMATION_TEXT).await.ok(),
                _ => None,
            },
            screenshot: screenshot.clone(),
            video: op.session().recording_url(),
        }),
    };
    op.session().events.emit(
        "submit",
        json!({"outcome": outcome, "clicked": result.clicked, "url": result.url, "evidence": evidence, "screenshot": screenshot}),
    );
    Ok(SubmitResponse {
        outcome,
        clicked: result.clicked,
        page_kind: shown_kind(result.page_kind, &block),
        step: result.step,
        confirmation: result.confirmation,
        errors: result.errors,
        block,
        screenshot,
        evidence,
        intercepted: None,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// A dry run's answer: the submission held back, the page as it is now (showing the dry run's
/// own answer), nothing counted for the profile.
async fn held_back(cx: &Context<'_>, op: &OpGuard, held: HeldRequest, started: Instant) -> SubmitResponse {
    let scan = scan::scan(op.browser()).await.ok();
    if let Ok(page) = op.browser().info().await {
        op.session().set_page(page.url, page.title, None);
    }
    let kind = scan.as_ref().map_or(PageKind::Unknown, |s| s.page_kind());
    // Events go to webhooks and logs of the caller's: the held request's names, never its values.
    let names: Vec<&str> = held.fields.iter().map(|f| f.name.as_str()).collect();
    op.session().events.emit(
        "submit",
        json!({"outcome": Outcome::Intercepted, "intercepted": {"method": held.method, "url": held.url, "fields": names}}),
    );
    SubmitResponse {
        outcome: Outcome::Intercepted,
        clicked: None,
        page_kind: kind,
        step: scan.as_ref().and_then(|s| s.step(kind)),
        confirmation: None,
        errors: Vec::new(),
        block: None,
        screenshot: snapshot(cx, op, "dry_run").await,
        evidence: None,
        intercepted: Some(held),
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// After a person has dealt with the page: detect again; a clear page means `ready`.
pub async fn resume_after_human(cx: &Context<'_>, op: &OpGuard) -> Result<ContinueResponse, FlowError> {
    let scan = scan::scan(op.browser()).await?;
    let kind = scan.page_kind();
    // A review hold is lifted by the person's `continue` itself.
    op.session().lift_review();
    let block = detect(cx, op, &scan.url, kind).await?;
    op.session().set_page(scan.url.clone(), scan.title.clone(), None);
    Ok(ContinueResponse {
        state: if block.is_some() { SessionState::NeedsHuman } else { SessionState::Ready },
        analysis: PageSummary {
            platform: scan.platform(),
            page_kind: shown_kind(kind, &block),
            step: scan.step(kind),
            fields: scan.live_fields().count(),
            actions: scan.actions.clone(),
        },
        block,
        url: scan.url,
        title: scan.title,
    })
}
