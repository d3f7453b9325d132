//! `analyze` and `fill` on a live session: what the page asks, and filling it from the
//! applicant's data.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::json::{ApiJson, OptionalJson};
use super::sessions::SessionIdPath;
use crate::app::App;
use crate::browser::humanize::Humanize;
use crate::error::{ApiError, ErrorBody};
use crate::forms::fill::{self, FillReport};
use crate::forms::rules::RulesEngine;
use crate::forms::scan::{self, Analysis};
use crate::forms::{Applicant, FormEngine, FormsError, PageKind, resume};

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
    /// Input policy for this call; defaults to the session's.
    pub humanize: Option<Humanize>,
}

fn engine(choice: EngineChoice) -> Result<&'static dyn FormEngine, ApiError> {
    match choice {
        EngineChoice::Rules | EngineChoice::Auto => Ok(&RulesEngine),
        EngineChoice::Llm => {
            Err(FormsError::EngineUnavailable("no LLM engine is configured on this worker".into()).into())
        }
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
    let engine = engine(request.engine.unwrap_or_default())?;
    let op = app.registry.begin(id)?;
    let applicant = Applicant {
        user_data: request.user_data.unwrap_or_default(),
        qa_answers: request.qa_answers.unwrap_or_default(),
        ..Applicant::default()
    };
    let mut analysis = scan::analyze(op.browser(), engine, &applicant).await?;
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
    let engine = engine(request.engine.unwrap_or_default())?;
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
    };
    let humanize = request.humanize.unwrap_or(session.humanize);
    let overrides = request.overrides.unwrap_or_default();
    let mut rng = StdRng::from_os_rng();
    let mut report = fill::fill(op.browser(), engine, &applicant, &overrides, humanize, &mut rng).await?;
    let page = op.browser().info().await.map_err(FormsError::from)?;
    session.set_page(page.url.clone(), page.title, None);
    report.block = app.registry.detect(&op, &page.url).await?;
    Ok(Json(report))
}
