//! `POST /api/v1/tasks`: the seed's one-call application, a macro over the session steps.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, json};

use super::json::ApiJson;
use super::sessions::{callback, check_callback};
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::ids::SessionId;
use crate::notify::Callback;
use crate::session::CreateOptions;
use crate::tasks::{self, TaskAction, TaskRequest, TaskResult};

/// Run a whole application and wait for its result (the seed's `Task` → `TaskResult`).
/// Blocked and review stops return at once with the session left open. A draining worker
/// refuses new tasks (503 `draining`) but still finishes its own sessions (`submit_only`).
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = TaskRequest,
    responses((status = 200, body = TaskResult),
        (status = 400, body = ErrorBody, description = "invalid_url (job_url or callback_url)"),
        (status = 404, body = ErrorBody, description = "session_not_found (submit_only)"),
        (status = 410, body = ErrorBody), (status = 422, body = ErrorBody, description = "validation_failed, naming the field"),
        (status = 503, body = ErrorBody, description = "draining (with `Retry-After`), shutting_down")))]
pub async fn run_task(
    State(app): State<Arc<App>>,
    ApiJson(task): ApiJson<TaskRequest>,
) -> Result<Json<TaskResult>, ApiError> {
    // `submit_only` opens nothing: it finishes a session this worker already holds.
    if task.action != Some(TaskAction::SubmitOnly) {
        super::worker::refuse_if_draining(&app)?;
    }
    tasks::validate(&task, &app.config.egress())?;
    if task.action == Some(TaskAction::SubmitOnly)
        && let Some(id) = task.session_id
    {
        app.registry.get(SessionId(id))?;
    }
    let callback = callback(task.callback_url.as_deref(), task.callback_token.clone())?;
    check_callback(&app, &callback).await?;
    let open = match task.action {
        Some(TaskAction::SubmitOnly) => None,
        _ => Some(session_options(&app, &task, callback).await?),
    };
    // The task runs to its end even if the caller goes away, so that nothing is left half done.
    let run = app.clone();
    let result = app
        .registry
        .spawn(async move { tasks::run(&run.tasks(), task, open).await })
        .await
        .map_err(|_| ApiError::internal())?;
    Ok(Json(result))
}

/// The session a task opens, as `POST /api/v2/sessions` would open it: its profile, proxy,
/// recording, webhook and takeover links.
async fn session_options(
    app: &Arc<App>,
    task: &TaskRequest,
    callback: Option<Callback>,
) -> Result<CreateOptions, ApiError> {
    Ok(CreateOptions {
        profile_id: task.profile_id.clone(),
        callback,
        humanize: task.humanize.unwrap_or_default(),
        metadata: Map::from_iter([("task_id".to_string(), json!(task.task_id))]),
        // A task may stop for a person at any step: on a per-session worker it always has a
        // display to take over.
        display: app.registry.displays_by_default(task.profile_id.as_deref()),
        // Every task may stop for a person: the live view works with or without a display.
        on_open: Some(app.mint_takeover()),
        proxy: app.session_proxy(task.proxy.clone(), task.profile_id.as_deref()).await?,
        recording: app.recording_plan(task.recording)?,
        ..CreateOptions::default()
    })
}
