//! The form routes of a live session: `analyze` (what the page asks), `fill` (answer it from
//! the applicant's data), `submit` (move on and know the outcome), `continue` (after a human),
//! and the artifacts those steps leave.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::json::{ApiJson, OptionalJson};
use super::sessions::SessionIdPath;
use crate::app::App;
use crate::browser::humanize::Humanize;
use crate::error::{ApiError, ErrorBody};
use crate::flow::{self, ContinueResponse, InlineResume, SubmitResponse};
use crate::forms::fill::FillReport;
use crate::forms::scan::Analysis;
use crate::forms::submit::SubmitAction;
use crate::forms::{Applicant, ConsentPolicy, FormEngine, FormsError};
use crate::session::{SessionError, SessionId};

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
    /// Which acknowledgements and opt-ins may be ticked (default: required acknowledgements
    /// yes, opt-ins never).
    #[serde(default)]
    pub consent: ConsentPolicy,
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
    /// As for analyze.
    #[serde(default)]
    pub consent: ConsentPolicy,
}

/// The engine for a request: `auto` is the rules alone when no LLM is configured.
fn engine(app: &App, choice: EngineChoice) -> Result<Arc<dyn FormEngine>, ApiError> {
    let engines = &app.engines;
    match (choice, &engines.llm) {
        (EngineChoice::Rules, _) => Ok(engines.rules.clone()),
        (EngineChoice::Auto, _) => Ok(engines.auto.clone()),
        (EngineChoice::Llm, Some(llm)) => Ok(llm.clone()),
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
        consent: request.consent,
        ..Applicant::default()
    };
    let analysis = flow::analyze(&app.flow(), &op, engine.as_ref(), &applicant).await?;
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
    let resume =
        flow::resume_file(&app.flow(), session, request.resume_file_url.as_deref(), request.resume.as_ref()).await?;
    let applicant = Applicant {
        user_data: request.user_data.unwrap_or_default(),
        qa_answers: request.qa_answers.unwrap_or_default(),
        resume,
        cover_letter_text: request.cover_letter_text,
        allow_generated_text: request.allow_generated_text,
        consent: request.consent,
    };
    let humanize = request.humanize.unwrap_or(session.humanize);
    let overrides = request.overrides.unwrap_or_default();
    let report = flow::fill(&app.flow(), &op, engine.as_ref(), &applicant, &overrides, humanize).await?;
    Ok(Json(report))
}

/// `POST …/submit` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SubmitRequest {
    pub action: Option<SubmitAction>,
    /// Input policy for the click; defaults to the session's.
    pub humanize: Option<Humanize>,
    /// Hold the submission back instead of sending it: a form post (document, XHR or fetch;
    /// anything but `GET`) is answered by the worker, and the answer is `outcome: intercepted`
    /// with the request it would have sent, values included. Steps that only navigate go on.
    #[serde(default)]
    pub dry_run: bool,
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
    let humanize = request.humanize.unwrap_or(op.session().humanize);
    Ok(Json(flow::submit(&app.flow(), &op, request.action.unwrap_or_default(), humanize, request.dry_run).await?))
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
    if !app.registry.get(id)?.waits_for_human() {
        return Err(SessionError::InvalidState(
            "the session is not waiting for a human (state is not needs_human)".into(),
        )
        .into());
    }
    let op = app.registry.begin(id)?;
    Ok(Json(flow::resume_after_human(&app.flow(), &op).await?))
}

/// A stored artifact, also after the session has closed: a screenshot (PNG), the recording
/// (MP4) or the timeline (JSON).
#[utoipa::path(get, path = "/api/v2/sessions/{id}/artifacts/{name}", tag = "forms",
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 200, content((Vec<u8> = "image/png"), (Vec<u8> = "video/mp4"), (Object = "application/json"))),
        (status = 404, body = ErrorBody, description = "artifact_not_found")))]
pub async fn artifact(
    State(app): State<Arc<App>>,
    Path((id, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "artifact_not_found", "no artifact with that name");
    let id = SessionId::parse(&id).map_err(|_| not_found())?;
    let bytes = app.artifacts.read(id, &name).await.map_err(|_| not_found())?;
    let kind = crate::artifacts::content_type(&name);
    Ok(([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-store")], bytes))
}
