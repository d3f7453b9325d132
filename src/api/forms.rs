//! The form routes of a live session: `analyze` (what the page asks), `fill` (answer it from
//! the applicant's data), `submit` (move on and know the outcome), `continue` (after a human),
//! and the artifacts those steps leave.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::json::{ApiJson, OptionalJson};
use super::sessions::SessionIdPath;
use crate::app::App;
use crate::browser::humanize::Humanize;
use crate::error::{ApiError, ErrorBody};
use crate::forms::fill::{self, FillReport};
use crate::forms::llm::AutoEngine;
use crate::forms::rules::RulesEngine;
use crate::forms::scan::{self, Analysis};
use crate::forms::submit::{self, Confirmation, Outcome, StepError, SubmitAction};
use crate::forms::{Actions, Applicant, Control, FormEngine, FormsError, PageKind, Platform, Step, resume};
use crate::guard::{Block, BlockReason};
use crate::session::{OpGuard, SessionError, SessionId, SessionState};

/// Which engine maps fields to applicant data.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EngineChoice {
    Rules,
    Llm,
    /// Rules first, the LLM (when configured) for what the rules left open.
    #[default]
    Auto,
}

/// `POST …/analyze` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AnalyzeRequest {
    #[schema(value_type = Option<Object>)]
    pub user_data: Option<Map<String, Value>>,
    /// Answers keyed by the question as the caller words it.
    #[schema(value_type = Option<Object>)]
    pub qa_answers: Option<Map<String, Value>>,
    pub engine: Option<EngineChoice>,
    /// Let the `llm` engine write short answers to open questions no fact answers (only the
    /// question, the job title and `user_data.skills` are sent for that). Default false.
    #[serde(default)]
    pub allow_generated_text: bool,
}

/// A resume given inline.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InlineResume {
    pub filename: String,
    pub content_base64: String,
}

/// `POST …/fill` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct FillRequest {
    #[schema(value_type = Option<Object>)]
    pub user_data: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    pub qa_answers: Option<Map<String, Value>>,
    /// Downloaded once (http/https, at most 10 MiB) into the session's own dir.
    pub resume_file_url: Option<String>,
    pub resume: Option<InlineResume>,
    pub cover_letter_text: Option<String>,
    /// Values by `field_id` or selector; they win over the engine's suggestions.
    #[schema(value_type = Option<Object>)]
    pub overrides: Option<Map<String, Value>>,
    pub engine: Option<EngineChoice>,
    /// As for analyze: allow short generated answers to open questions. Default false.
    #[serde(default)]
    pub allow_generated_text: bool,
    /// Input policy for this call; defaults to the session's.
    pub humanize: Option<Humanize>,
}

/// The engine for a request: `auto` is the rules alone when no LLM is configured.
fn engine(app: &App, choice: EngineChoice) -> Result<Arc<dyn FormEngine>, ApiError> {
    match (choice, &app.llm) {
        (EngineChoice::Rules, _) | (EngineChoice::Auto, None) => Ok(Arc::new(RulesEngine)),
        (EngineChoice::Llm, Some(llm)) => Ok(llm.clone()),
        (EngineChoice::Auto, Some(llm)) => Ok(Arc::new(AutoEngine { llm: llm.clone() })),
        (EngineChoice::Llm, None) => Err(FormsError::EngineUnavailable(
            "no LLM engine is configured on this worker (set BW_LLM_BASE_URL)".into(),
        )
        .into()),
    }
}

/// Describe the session's page: platform, page kind, step, fields (with suggestions when
/// applicant data is given) and the primary actions.
#[utoipa::path(post, path = "/api/v2/sessions/{id}/analyze", tag = "forms", params(("id" = String, Path)),
    request_body = AnalyzeRequest,
    responses((status = 200, body = Analysis), (status = 409, body = ErrorBody, description = "session_busy"),
        (status = 410, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn analyze(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    OptionalJson(request): OptionalJson<AnalyzeRequest>,
) -> Result<Json<Analysis>, ApiError> {
    let engine = engine(&app, request.engine.unwrap_or_default())?;
    let op = app.registry.begin(id)?;
    let applicant = Applicant {
        user_data: request.user_data.unwrap_or_default(),
        qa_answers: request.qa_answers.unwrap_or_default(),
        allow_generated_text: request.allow_generated_text,
        ..Applicant::default()
    };
    let mut analysis = scan::analyze(op.browser(), engine.as_ref(), &applicant).await?;
    op.session().set_page(analysis.url.clone(), analysis.title.clone(), None);
    analysis.block = app.registry.detect(&op, &analysis.url).await?;
    if analysis.block.is_some() {
        analysis.page_kind = PageKind::Blocked;
    }
    Ok(Json(analysis))
}

/// Fill the session's page from the applicant's data and report every field's outcome.
#[utoipa::path(post, path = "/api/v2/sessions/{id}/fill", tag = "forms", params(("id" = String, Path)),
    request_body = FillRequest,
    responses((status = 200, body = FillReport), (status = 409, body = ErrorBody, description = "session_busy"),
        (status = 410, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "unknown_field / invalid_resume / validation_failed"),
        (status = 502, body = ErrorBody, description = "resume_download_failed / browser errors")))]
pub async fn fill(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    ApiJson(request): ApiJson<FillRequest>,
) -> Result<Json<FillReport>, ApiError> {
    let engine = engine(&app, request.engine.unwrap_or_default())?;
    if request.resume_file_url.is_some() && request.resume.is_some() {
        return Err(ApiError::validation("give resume_file_url or resume, not both"));
    }
    let op = app.registry.begin(id)?;
    let session = op.session();
    let resume = match (&request.resume_file_url, &request.resume) {
        (Some(url), _) => {
            Some(resume::download(&session.files_dir, url, app.config.egress()).await.map_err(FormsError::from)?)
        }
        (None, Some(inline)) => Some(
            resume::store_inline(&session.files_dir, &inline.filename, &inline.content_base64)
                .await
                .map_err(FormsError::from)?,
        ),
        (None, None) => None,
    };
    let applicant = Applicant {
        user_data: request.user_data.unwrap_or_default(),
        qa_answers: request.qa_answers.unwrap_or_default(),
        resume,
        cover_letter_text: request.cover_letter_text,
        allow_generated_text: request.allow_generated_text,
    };
    let humanize = request.humanize.unwrap_or(session.humanize);
    let overrides = request.overrides.unwrap_or_default();
    let mut rng = StdRng::from_os_rng();
    let mut report = fill::fill(op.browser(), engine.as_ref(), &applicant, &overrides, humanize, &mut rng).await?;
    let page = op.browser().info().await.map_err(FormsError::from)?;
    session.set_page(page.url.clone(), page.title, None);
    report.block = app.registry.detect(&op, &page.url).await?;
    Ok(Json(report))
}

/// `POST …/submit` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SubmitRequest {
    pub action: Option<SubmitAction>,
    /// Input policy for the click; defaults to the session's.
    pub humanize: Option<Humanize>,
}

/// `POST …/submit` answer.
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
    pub elapsed_ms: u64,
}

/// A sign-in page is a human's job: the session waits in `needs_human` with this block.
fn login_block() -> Block {
    Block { reason: BlockReason::LoginRequired, detail: "the page asks to sign in".into() }
}

/// Block detection plus the login rule: a guard block, or a sign-in page.
async fn detect(app: &App, op: &OpGuard, url: &str, kind: PageKind) -> Result<Option<Block>, ApiError> {
    let mut block = app.registry.detect(op, url).await?;
    if block.is_none() && kind == PageKind::Login {
        block = Some(login_block());
        op.session().set_block(block.clone());
    }
    Ok(block)
}

/// A screenshot stored as an artifact; a failure to take or store it is logged, not fatal.
async fn snapshot(app: &App, op: &OpGuard, label: &str) -> Option<String> {
    let png = op.browser().screenshot(false).await.map_err(|e| tracing::warn!(error = %e, "no screenshot")).ok()?;
    app.artifacts
        .save_png(op.session().id, label, &png)
        .await
        .map_err(|e| tracing::warn!(error = %e, "screenshot not stored"))
        .ok()
}

/// Click the step's primary control (or the one `action` names) and report what happened:
/// the next step, validation errors, a confirmed submission, a block, or no control.
#[utoipa::path(post, path = "/api/v2/sessions/{id}/submit", tag = "forms", params(("id" = String, Path)),
    request_body = SubmitRequest,
    responses((status = 200, body = SubmitResponse),
        (status = 409, body = ErrorBody, description = "session_busy / no_progress (the click changed nothing)"),
        (status = 410, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn submit(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    OptionalJson(request): OptionalJson<SubmitRequest>,
) -> Result<Json<SubmitResponse>, ApiError> {
    let op = app.registry.begin(id)?;
    let started = std::time::Instant::now();
    let humanize = request.humanize.unwrap_or(op.session().humanize);
    let mut rng = StdRng::from_os_rng();
    let result = submit::submit(op.browser(), request.action.unwrap_or_default(), humanize, &mut rng).await?;
    let block = detect(&app, &op, &result.url, result.page_kind).await?;
    let outcome =
        if block.is_some() && result.outcome != Outcome::Submitted { Outcome::Blocked } else { result.outcome };
    if outcome == Outcome::Submitted
        && let Some(profile) = &op.session().profile_id
    {
        app.registry.profile_succeeded(profile).await;
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
    };
    let screenshot = snapshot(&app, &op, label).await;
    Ok(Json(SubmitResponse {
        outcome,
        clicked: result.clicked,
        page_kind: if block.is_some() && result.page_kind != PageKind::Login {
            PageKind::Blocked
        } else {
            result.page_kind
        },
        step: result.step,
        confirmation: result.confirmation,
        errors: result.errors,
        block,
        screenshot,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }))
}

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

/// `POST …/continue` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContinueResponse {
    pub state: SessionState,
    pub block: Option<Block>,
    pub url: String,
    pub title: String,
    pub analysis: PageSummary,
}

/// After a person has dealt with a CAPTCHA, sign-in or review: detect again; a clear page
/// returns the session to `ready`.
#[utoipa::path(post, path = "/api/v2/sessions/{id}/continue", tag = "forms", params(("id" = String, Path)),
    responses((status = 200, body = ContinueResponse),
        (status = 409, body = ErrorBody, description = "invalid_state (not in needs_human) / session_busy"),
        (status = 410, body = ErrorBody)))]
pub async fn continue_session(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
) -> Result<Json<ContinueResponse>, ApiError> {
    if app.registry.get(id)?.block().is_none() {
        return Err(SessionError::InvalidState(
            "the session is not waiting for a human (state is not needs_human)".into(),
        )
        .into());
    }
    let op = app.registry.begin(id)?;
    let scan = scan::scan(op.browser()).await?;
    let kind = scan.page_kind();
    let block = detect(&app, &op, &scan.url, kind).await?;
    op.session().set_page(scan.url.clone(), scan.title.clone(), None);
    let state = if block.is_some() { SessionState::NeedsHuman } else { SessionState::Ready };
    Ok(Json(ContinueResponse {
        state,
        analysis: PageSummary {
            platform: scan.platform(),
            page_kind: if block.is_some() && kind != PageKind::Login { PageKind::Blocked } else { kind },
            step: scan.step(kind),
            fields: scan.live_fields().count(),
            actions: scan.actions.clone(),
        },
        block,
        url: scan.url,
        title: scan.title,
    }))
}

/// A stored artifact (PNG), also after the session has closed.
#[utoipa::path(get, path = "/api/v2/sessions/{id}/artifacts/{name}", tag = "forms",
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 404, body = ErrorBody, description = "artifact_not_found")))]
pub async fn artifact(
    State(app): State<Arc<App>>,
    Path((id, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "artifact_not_found", "no artifact with that name");
    let id = SessionId::parse(&id).map_err(|_| not_found())?;
    let png = app.artifacts.read(id, &name).await.map_err(|_| not_found())?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], png))
}
