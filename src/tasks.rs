//! The V1 task macro (`POST /api/v1/tasks`, the seed's §2 contract): open a session on the
//! profile, navigate, detect blocks, click Apply on a posting, then loop {analyze, fill,
//! submit} through the same `flow` steps as the V2 routes, confirm, take screenshots and
//! close. Progress goes out as events (and so as webhooks): navigating 10, analyzing 30,
//! filling 60, submitting 90, then `completed`, `captcha_detected`, `review_required` or `error`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::breaker::{Breaker, BreakerError, ProfileState};
use crate::flow::{self, FlowError};
use crate::forms::submit::{Outcome, SubmitAction};
use crate::forms::{Applicant, FormEngine, FormsError, PageKind};
use crate::guard::{Block, BlockReason};
use crate::session::{CloseReason, CreateOptions, OpGuard, Session, SessionError, SessionId};

/// At most this many form steps per task.
const MAX_STEPS: usize = 10;

/// What the macro needs of the worker (`App::tasks`): the form steps' context (and through it
/// the sessions), the profile breaker, the form engine and the public URL of the takeover
/// links. The task's own session comes opened as the API would open it (`run`'s `open`).
pub struct Context<'a> {
    pub flow: flow::Context<'a>,
    pub breaker: &'a Breaker,
    pub engine: &'a dyn FormEngine,
    pub public_url: &'a str,
    /// Tasks running now (`/health.active_tasks`).
    pub active: &'a AtomicUsize,
}

/// `autopilot` submits; `copilot` stops before the final submit for a person to review.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Autopilot,
    Copilot,
}

/// `submit_only`: finish the application on an open session (after a CAPTCHA or a review).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskAction {
    SubmitOnly,
}

/// The task's limits.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Policy {
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_true")]
    pub save_artifacts: bool,
    /// Which acknowledgements and opt-ins may be ticked (SPEC §4.1).
    #[serde(default)]
    pub consent: crate::forms::ConsentPolicy,
}

fn default_timeout() -> u64 {
    180
}

fn default_true() -> bool {
    true
}

impl Default for Policy {
    fn default() -> Self {
        Self { timeout_seconds: default_timeout(), save_artifacts: true, consent: Default::default() }
    }
}

/// The seed's `Task`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TaskRequest {
    pub task_id: String,
    pub profile_id: Option<String>,
    pub job_url: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub user_data: Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub qa_answers: Map<String, Value>,
    pub resume_file_url: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    pub callback_url: Option<String>,
    pub callback_token: Option<String>,
    #[serde(default)]
    pub policy: Policy,
    pub action: Option<TaskAction>,
    /// Input policy (an extension of the seed's contract; default `human`).
    pub humanize: Option<crate::browser::humanize::Humanize>,
    /// Hold the final submission back instead of sending it (as `submit`'s `dry_run`): the
    /// result has `outcome: intercepted` and `intercepted`, the request it would have sent.
    #[serde(default)]
    pub dry_run: bool,
    /// Record the task's session (as on `POST /api/v2/sessions`); the video is in the result's
    /// `evidence.video` and the session's artifacts.
    pub recording: Option<bool>,
    /// An upstream proxy for the task's session (as on `POST /api/v2/sessions`).
    pub proxy: Option<crate::egress::route::ProxySpec>,
    /// The open session to finish (`action: "submit_only"`).
    #[schema(value_type = Option<String>)]
    pub session_id: Option<uuid::Uuid>,
}

/// One written field, as the seed reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskField {
    pub name: String,
    pub label: String,
    #[schema(value_type = Object)]
    pub value: Value,
    pub source: String,
    pub verified: bool,
}

/// How long the steps took.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct TaskTiming {
    pub browser_start_ms: u64,
    pub navigate_ms: u64,
    pub fill_ms: u64,
    pub submit_ms: u64,
    pub total_ms: u64,
}

/// The profile's breaker state after the task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileStatus {
    pub state: ProfileState,
    pub consecutive_blocks: u32,
    pub consecutive_failures: u32,
    pub total_tasks: u64,
}

/// The seed's `TaskResult`, plus `session_id`, `vnc_url`, `viewer_url` and `live_url`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskResult {
    pub task_id: String,
    pub success: bool,
    pub blocked: bool,
    pub block_reason: Option<String>,
    /// `continue`, `cooldown`, `needs_human` or `disable_profile`.
    pub next_action: &'static str,
    pub platform: Option<String>,
    pub confirmation_id: Option<String>,
    pub confirmation_message: Option<String>,
    pub filled_fields: Vec<TaskField>,
    /// `form_filled`, `confirmation`, `blocked` → artifact URL.
    pub screenshots: BTreeMap<String, String>,
    pub timing: TaskTiming,
    pub profile_status: Option<ProfileStatus>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
    #[schema(value_type = Option<String>)]
    pub session_id: Option<SessionId>,
    /// The VNC WebSocket of the session's display (its `vnc.ws_url`), when a person is needed
    /// and the session has a display of its own (null on a shared display, which shows every
    /// session: take over through `live_url` there).
    pub vnc_url: Option<String>,
    /// A noVNC page connected to `vnc_url` (the session's `vnc.viewer_url`), when `vnc_url` is set.
    pub viewer_url: Option<String>,
    /// The live viewer page (SPEC §3.7, a `control` token in its URL), whenever a person is
    /// needed, headless sessions included.
    pub live_url: Option<String>,
    /// The last submit's outcome (`submitted`, `intercepted` for a dry run, …).
    pub outcome: Option<Outcome>,
    /// What the submission sent and what came back (`submit`'s `evidence`).
    pub evidence: Option<crate::flow::Evidence>,
    /// Dry run: the submission held back, with its values.
    pub intercepted: Option<crate::browser::tap::HeldRequest>,
}

/// Failures before a task starts (the caller's input).
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// A task in progress: what the result will say.
struct Run {
    started: Instant,
    result: TaskResult,
}

impl Run {
    fn new(task_id: &str) -> Self {
        let now = Utc::now();
        Self {
            started: Instant::now(),
            result: TaskResult {
                task_id: task_id.to_string(),
                success: false,
                blocked: false,
                block_reason: None,
                next_action: "continue",
                platform: None,
                confirmation_id: None,
                confirmation_message: None,
                filled_fields: Vec::new(),
                screenshots: BTreeMap::new(),
                timing: TaskTiming::default(),
                profile_status: None,
                error: None,
                started_at: now,
                finished_at: now,
                duration_ms: 0,
                session_id: None,
                vnc_url: None,
                viewer_url: None,
                live_url: None,
                outcome: None,
                evidence: None,
                intercepted: None,
            },
        }
    }
}

/// Checks a task's input before anything starts.
pub fn validate(task: &TaskRequest, egress: &crate::egress::EgressPolicy) -> Result<(), TaskError> {
    if task.task_id.trim().is_empty() {
        return Err(TaskError::Invalid("task_id must not be empty".into()));
    }
    if task.action == Some(TaskAction::SubmitOnly) && task.session_id.is_none() {
        return Err(TaskError::Invalid("session_id is required with action \"submit_only\"".into()));
    }
    if !(1..=3600).contains(&task.policy.timeout_seconds) {
        return Err(TaskError::Invalid("policy.timeout_seconds must be between 1 and 3600".into()));
    }
    if let Some(profile) = &task.profile_id {
        crate::session::validate_profile_id(profile)?;
    }
    crate::session::parse_target_url(&task.job_url, egress)?;
    if let Some(spec) = &task.proxy {
        crate::egress::route::SessionProxy::new(spec.clone(), egress)
            .map_err(|e| TaskError::Invalid(format!("proxy: {e}")))?;
    }
    Ok(())
}

/// Runs a task to its end (or its timeout) and returns the seed's result. Never fails: what
/// went wrong is in `error`. `open` is the session the task opens (`None` with `submit_only`,
/// which finishes one that is open).
pub async fn run(cx: &Context<'_>, task: TaskRequest, open: Option<CreateOptions>) -> TaskResult {
    let _active = Active::count(cx.active);
    let mut run = Run::new(&task.task_id);
    let limit = Duration::from_secs(task.policy.timeout_seconds);
    let session_slot = Arc::new(std::sync::Mutex::new(None::<SessionId>));
    let work = steps(cx, &task, open, &mut run, session_slot.clone());
    let outcome = tokio::time::timeout(limit, work).await;
    let session = *session_slot.lock().unwrap();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => fail(cx, &mut run, session, e.to_string()).await,
        Err(_) => {
            fail(cx, &mut run, session, "timeout".into()).await;
            if let Some(profile) = &task.profile_id {
                cx.flow.registry.record_profile_failure(profile).await;
            }
        }
    }
    if let Some(profile) = &task.profile_id
        && let Ok(record) = cx.breaker.get(profile).await
    {
        run.result.profile_status = Some(ProfileStatus {
            state: record.state,
            consecutive_blocks: record.consecutive_blocks,
            consecutive_failures: record.consecutive_failures,
            total_tasks: record.total_tasks,
        });
        if !run.result.blocked && run.result.next_action == "continue" {
            run.result.next_action = next_action(record.state);
        }
    }
    // Whatever made a person necessary, the open session is where they take over.
    if run.result.next_action == "needs_human"
        && run.result.live_url.is_none()
        && let Some(session) = run.result.session_id.and_then(|id| cx.flow.registry.get(id).ok())
    {
        takeover(&session, &mut run);
    }
    let finished = Utc::now();
    run.result.finished_at = finished;
    run.result.duration_ms = run.started.elapsed().as_millis() as u64;
    run.result.timing.total_ms = run.result.duration_ms;
    run.result
}

/// A task counted in `/health.active_tasks` until it ends, however it ends (a panic too).
struct Active<'a>(&'a AtomicUsize);

impl<'a> Active<'a> {
    fn count(active: &'a AtomicUsize) -> Self {
        active.fetch_add(1, Ordering::SeqCst);
        Self(active)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Closes the session of a failed task and reports the error.
async fn fail(cx: &Context<'_>, run: &mut Run, session: Option<SessionId>, error: String) {
    if let Some(id) = session
        && let Ok(s) = cx.flow.registry.get(id)
    {
        s.events.emit("error", json!({"message": error}));
        let _ = cx.flow.registry.close(id, CloseReason::Closed).await;
    }
    run.result.success = false;
    run.result.error = Some(error);
}

fn next_action(state: ProfileState) -> &'static str {
    match state {
        ProfileState::Healthy => "continue",
        ProfileState::Cooling => "cooldown",
        ProfileState::NeedsHuman => "needs_human",
        ProfileState::Disabled => "disable_profile",
    }
}

fn progress(op: &OpGuard, step: &str, pct: u32, message: &str) {
    op.session().events.emit("progress", json!({"step": step, "pct": pct, "message": message}));
}

/// The task's steps; returns early (Ok) when blocked or waiting for review.
async fn steps(
    cx: &Context<'_>,
    task: &TaskRequest,
    open: Option<CreateOptions>,
    run: &mut Run,
    slot: Arc<std::sync::Mutex<Option<SessionId>>>,
) -> Result<(), FlowError> {
    let registry = cx.flow.registry;
    let id = match (task.session_id, open) {
        (Some(id), None) => SessionId(id),
        (_, Some(options)) => {
            let session = match registry.create(options).await {
                Ok(session) => session,
                Err(SessionError::Profile(BreakerError::Unavailable(why))) => {
                    run.result.blocked = true;
                    run.result.block_reason = Some("profile_unavailable".into());
                    run.result.next_action = next_action(why.state);
                    run.result.error = Some(format!("the profile may not run now ({})", why.state.as_str()));
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            run.result.timing.browser_start_ms = session.info(cx.public_url).timing.browser_start_ms;
            session.id
        }
        (None, None) => return Err(FlowError::Stopped("the task has no session to work in".into())),
    };
    *slot.lock().unwrap() = Some(id);
    run.result.session_id = Some(id);
    let session = registry.get(id)?;
    session.events.set_task(Some(task.task_id.clone()));
    let applicant_resume;
    {
        let op = registry.begin(id)?;
        applicant_resume = flow::resume_file(&cx.flow, op.session(), task.resume_file_url.as_deref(), None).await?;
        if task.action != Some(TaskAction::SubmitOnly) {
            progress(&op, "navigating", 10, "opening the job page");
            let (_, navigate_ms) = op.navigate(&task.job_url).await.map_err(FormsError::from)?;
            run.result.timing.navigate_ms = navigate_ms;
            if let Some(block) = registry.detect(&op, &task.job_url).await? {
                return blocked(cx, &op, task, run, block).await;
            }
        }
    }
    let applicant = Applicant {
        user_data: task.user_data.clone(),
        qa_answers: task.qa_answers.clone(),
        resume: applicant_resume,
        consent: task.policy.consent,
        ..Applicant::default()
    };
    let submit_only = task.action == Some(TaskAction::SubmitOnly);
    // A page a person reviewed (copilot) is submitted as they left it: filling it again would
    // overwrite their corrections. Later steps are filled as usual.
    let mut reviewed = submit_only && session.under_review();
    for _ in 0..MAX_STEPS {
        let as_left = std::mem::take(&mut reviewed);
        let op = registry.begin(id)?;
        progress(&op, "analyzing", 30, "reading the page");
        let analysis = flow::analyze(&cx.flow, &op, cx.engine, &applicant).await?;
        run.result.platform = Some(analysis.platform.as_str().to_string());
        if let Some(block) = analysis.block.clone() {
            return blocked(cx, &op, task, run, block).await;
        }
        if analysis.page_kind == PageKind::ApplicationForm && !as_left {
            progress(&op, "filling", 60, "filling the form");
            let started = Instant::now();
            let report = flow::fill(&cx.flow, &op, cx.engine, &applicant, &Map::new(), op.session().humanize).await?;
            run.result.timing.fill_ms += started.elapsed().as_millis() as u64;
            for f in report.filled_fields {
                run.result.filled_fields.push(TaskField {
                    name: f.field_id,
                    label: f.label,
                    value: f.value,
                    source: f.source,
                    verified: f.verified,
                });
            }
            if let Some(block) = report.block {
                return blocked(cx, &op, task, run, block).await;
            }
            if !report.missing_required.is_empty() {
                let names: Vec<&str> = report.missing_required.iter().map(|m| m.label.as_str()).collect();
                return Err(FlowError::Stopped(format!("required fields have no data: {}", names.join(", "))));
            }
            let last_step = analysis.actions.next.is_none() && analysis.actions.review.is_none();
            if task.policy.save_artifacts
                && last_step
                && let Some(url) = flow::snapshot(&cx.flow, &op, "form_filled").await
            {
                run.result.screenshots.insert("form_filled".into(), url);
            }
            if task.mode == Mode::Copilot && !submit_only && last_step && analysis.actions.submit.is_some() {
                run.result.blocked = true;
                run.result.block_reason = Some("review_required".into());
                run.result.next_action = "needs_human";
                takeover(op.session(), run);
                op.session().hold_for_review("copilot: review before submit");
                let mut data = op.session().takeover_links();
                data.insert("filled_fields".into(), json!(run.result.filled_fields.len()));
                op.session().events.emit("review_required", Value::Object(data));
                return Ok(());
            }
        }
        progress(&op, "submitting", 90, "submitting");
        let started = Instant::now();
        let answer = flow::submit(&cx.flow, &op, SubmitAction::Auto, op.session().humanize, task.dry_run).await?;
        run.result.timing.submit_ms += started.elapsed().as_millis() as u64;
        run.result.outcome = Some(answer.outcome);
        run.result.evidence = answer.evidence.clone().or(run.result.evidence.take());
        match answer.outcome {
            Outcome::Intercepted => {
                run.result.intercepted = answer.intercepted;
                if task.policy.save_artifacts
                    && let Some(url) = answer.screenshot
                {
                    run.result.screenshots.insert("dry_run".into(), url);
                }
                op.session().events.emit("completed", json!({"success": false, "outcome": "intercepted"}));
                drop(op);
                let _ = registry.close(id, CloseReason::Closed).await;
                return Ok(());
            }
            Outcome::Submitted => {
                run.result.success = true;
                if let Some(confirmation) = answer.confirmation {
                    run.result.confirmation_id = confirmation.confirmation_id;
                    run.result.confirmation_message = Some(confirmation.message);
                }
                if task.policy.save_artifacts
                    && let Some(url) = answer.screenshot
                {
                    run.result.screenshots.insert("confirmation".into(), url);
                }
                op.session()
                    .events
                    .emit("completed", json!({"success": true, "confirmation_id": run.result.confirmation_id}));
                drop(op);
                let _ = registry.close(id, CloseReason::Closed).await;
                return Ok(());
            }
            Outcome::NextStep => continue,
            Outcome::Blocked => {
                let block =
                    answer.block.unwrap_or_else(|| Block { reason: BlockReason::ChallengePage, detail: String::new() });
                return blocked(cx, &op, task, run, block).await;
            }
            Outcome::ValidationErrors => {
                let messages: Vec<String> = answer.errors.iter().map(|e| e.message.clone()).collect();
                return Err(FlowError::Stopped(format!("the form reported errors: {}", messages.join("; "))));
            }
            Outcome::NoControl => {
                return Err(FlowError::Stopped("no apply, next or submit control on the page".into()));
            }
        }
    }
    Err(FormsError::NoProgress(format!("{MAX_STEPS} steps")).into())
}

/// Puts where a person takes over the session in the result: the links of its takeover events
/// (its own display's VNC access, and the live view).
fn takeover(session: &Session, run: &mut Run) {
    let links = session.takeover_links();
    let link = |key: &str| links.get(key).and_then(Value::as_str).map(str::to_string);
    run.result.vnc_url = link("vnc_url");
    run.result.viewer_url = link("viewer_url");
    run.result.live_url = link("live_url");
}

/// Ends the task as blocked, leaving the session open for a person.
async fn blocked(
    cx: &Context<'_>,
    op: &OpGuard,
    task: &TaskRequest,
    run: &mut Run,
    block: Block,
) -> Result<(), FlowError> {
    run.result.blocked = true;
    run.result.block_reason = Some(if block.reason == BlockReason::Captcha {
        "captcha_detected".into()
    } else {
        block.reason.as_str().into()
    });
    run.result.next_action = "needs_human";
    takeover(op.session(), run);
    if task.policy.save_artifacts
        && let Some(url) = flow::snapshot(&cx.flow, op, "blocked").await
    {
        run.result.screenshots.insert("blocked".into(), url);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_that_panics_is_no_longer_counted() {
        let active = AtomicUsize::new(0);
        let panicked = std::panic::catch_unwind(|| {
            let _active = Active::count(&active);
            assert_eq!(active.load(Ordering::SeqCst), 1);
            panic!("a task's step panics");
        });
        assert!(panicked.is_err());
        assert_eq!(active.load(Ordering::SeqCst), 0);
    }
}
