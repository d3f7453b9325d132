//! `/api/v2/sessions`: open, list, inspect, navigate, screenshot and close sessions.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::json::{ApiJson, OptionalJson};
use crate::app::App;
use crate::browser::humanize::Humanize;
use crate::browser::navigation::LoadState;
use crate::config::ProviderKind;
use crate::error::{ApiError, ErrorBody};
use crate::guard::Block;
use crate::notify::Callback;
use crate::session::registry::ClosedSession;
use crate::session::{self, CloseReason, CreateOptions, SessionError, SessionId, SessionInfo};

/// `POST /api/v2/sessions` body; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateSessionRequest {
    /// Persistent profile to use (`[A-Za-z0-9._-]`, 1–64); omitted: a fresh ephemeral profile.
    pub profile_id: Option<String>,
    /// Page to open right away (http or https).
    pub url: Option<String>,
    /// `false` runs the browser headful on a display (same as `display: true`); `true` means
    /// no display.
    pub headless: Option<bool>,
    /// Run on a virtual display a person can watch and drive over VNC (`vnc` in the answer);
    /// needs `BW_DISPLAY_MODE=per-session` or `shared`. On a per-session worker it defaults
    /// to true (unless `headless: true` or a `viewport` is given); `false` opts out.
    pub display: Option<bool>,
    /// Close the session after this many seconds without activity (1–86400).
    pub idle_timeout_secs: Option<u64>,
    /// Default input policy for fills on this session (`human`, `fast`, `off`; default `human`).
    pub humanize: Option<Humanize>,
    /// Where the session's events are POSTed (http/https; same egress rules as resumes).
    pub callback_url: Option<String>,
    /// Sent as `Authorization: Bearer` with each webhook.
    pub callback_token: Option<String>,
    pub viewport: Option<Viewport>,
    /// An upstream proxy for this session's traffic, with the identity of its exit (local
    /// Chromium only); omitted: the profile's default proxy, else `BW_DEFAULT_PROXY`, else none.
    pub proxy: Option<crate::egress::route::ProxySpec>,
    /// Record the session (its display, else its page) as `recording.mp4` among its artifacts,
    /// kept when it closes; `false`: never, whatever `BW_RECORDING` says. Needs ffmpeg.
    pub recording: Option<bool>,
    /// Caller's own data, returned as given (e.g. `task_id`, `user_id`).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

/// A viewport size in CSS pixels.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
}

/// `GET /api/v2/sessions` answer.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// `POST …/navigate` body.
#[derive(Deserialize, ToSchema)]
pub struct NavigateRequest {
    pub url: String,
}

/// `POST …/navigate` answer.
#[derive(Serialize, ToSchema)]
pub struct NavigateResponse {
    pub current_url: String,
    pub title: String,
    /// The block detected on the page, if any; the session is then `needs_human`.
    pub block: Option<Block>,
    pub navigate_ms: u64,
    /// How far the page had loaded when the navigation returned: `load` when the load event
    /// had fired, `interactive` when the DOM was interactive and settled but a sub-resource was
    /// still loading. Navigation waits for a usable page, never for `load`.
    pub load_state: LoadState,
}

/// `GET …/screenshot` query.
#[derive(Deserialize, IntoParams)]
pub struct ScreenshotQuery {
    /// Capture the whole page, not just the viewport.
    #[serde(default)]
    pub full_page: bool,
}

impl CreateSessionRequest {
    fn into_options(self, app: &App) -> Result<CreateOptions, ApiError> {
        // On a per-session worker a session gets a display unless it says otherwise, so that a
        // person can take over whenever it stops (SPEC §3.6).
        let by_default = self.display.is_none()
            && self.headless.is_none()
            && self.viewport.is_none()
            && app.registry.displays_by_default(self.profile_id.as_deref());
        let display = self.display == Some(true) || self.headless == Some(false) || by_default;
        if display && !app.registry.has_displays() {
            return Err(ApiError::validation(
                "this worker has no display (BW_DISPLAY_MODE=none): sessions are headless",
            ));
        }
        if self.display == Some(true) && self.headless == Some(true) {
            return Err(ApiError::validation("display: true needs a headful browser; leave headless out"));
        }
        if display && self.viewport.is_some() {
            return Err(ApiError::validation(
                "viewport cannot be combined with a display: the window fills the screen",
            ));
        }
        match &self.profile_id {
            Some(id) => session::validate_profile_id(id)?,
            None if app.config.provider == ProviderKind::AdsPower => {
                return Err(ApiError::validation("the adspower provider needs a profile_id (the AdsPower user_id)"));
            }
            None => {}
        }
        let egress = app.config.egress();
        let url = self.url.as_deref().map(|u| session::parse_target_url(u, &egress)).transpose()?;
        if let Some(secs) = self.idle_timeout_secs
            && !(1..=86_400).contains(&secs)
        {
            return Err(ApiError::validation("idle_timeout_secs must be between 1 and 86400"));
        }
        if let Some(v) = self.viewport
            && !((200..=7680).contains(&v.width) && (200..=4320).contains(&v.height))
        {
            return Err(ApiError::validation("viewport must be 200-7680 wide and 200-4320 high"));
        }
        let idle_timeout = self.idle_timeout_secs.map(Duration::from_secs).map(|t| t.min(app.config.max_lifetime()));
        Ok(CreateOptions {
            profile_id: self.profile_id,
            url,
            idle_timeout,
            viewport: self.viewport.map(|v| (v.width, v.height)),
            humanize: self.humanize.unwrap_or_default(),
            callback: callback(self.callback_url.as_deref(), self.callback_token)?,
            display,
            metadata: self.metadata.unwrap_or_default(),
            on_open: None,
            proxy: None,
            recording: app.recording_plan(self.recording)?,
        })
    }
}

/// A callback URL as given: http or https.
pub fn callback(url: Option<&str>, token: Option<String>) -> Result<Option<Callback>, ApiError> {
    let Some(url) = url else { return Ok(None) };
    let url = url::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_url", "callback_url must be an http or https URL")
    })?;
    Ok(Some(Callback { url, token }))
}

/// Refuses a callback URL the egress rules forbid (metadata, and private unless allowed).
pub async fn check_callback(app: &App, callback: &Option<Callback>) -> Result<(), ApiError> {
    if let Some(callback) = callback {
        app.notifier
            .check(&callback.url)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_url", format!("callback_url refused: {e}")))?;
    }
    Ok(())
}

/// The `{id}` path segment as a session id; anything that is not one names no session (404).
pub struct SessionIdPath(pub SessionId);

impl<S: Send + Sync> FromRequestParts<S> for SessionIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| SessionError::NotFound)?;
        Ok(Self(SessionId::parse(&id).map_err(|_| SessionError::NotFound)?))
    }
}

/// Open a session (a browser with one page).
#[utoipa::path(post, path = "/api/v2/sessions", tag = "sessions", request_body = CreateSessionRequest,
    responses((status = 201, body = SessionInfo), (status = 409, body = ErrorBody, description = "profile_in_use"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody, description = "capacity_exhausted"),
        (status = 502, body = ErrorBody, description = "browser_start_failed / navigation_failed"),
        (status = 503, body = ErrorBody, description = "draining (with `Retry-After`), shutting_down")))]
pub async fn create_session(
    State(app): State<Arc<App>>,
    OptionalJson(request): OptionalJson<CreateSessionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    super::worker::refuse_if_draining(&app)?;
    let proxy = request.proxy.clone();
    let mut options = request.into_options(&app)?;
    options.proxy = app.session_proxy(proxy, options.profile_id.as_deref()).await?;
    check_callback(&app, &options.callback).await?;
    // The takeover links exist before the first events: a first page may be a CAPTCHA.
    options.on_open = Some(app.mint_takeover());
    // Opening runs to the end even if the client goes away, so that a half-started browser is
    // never abandoned; an unclaimed session idles out.
    let registry = app.registry.clone();
    let session =
        app.registry.spawn(async move { registry.create(options).await }).await.map_err(|_| ApiError::internal())??;
    Ok((StatusCode::CREATED, Json(session.info(app.public_url()))))
}

/// List open sessions.
#[utoipa::path(get, path = "/api/v2/sessions", tag = "sessions", responses((status = 200, body = SessionList)))]
pub async fn list_sessions(State(app): State<Arc<App>>) -> Json<SessionList> {
    Json(SessionList { sessions: app.registry.list().iter().map(|s| s.info(app.public_url())).collect() })
}

/// A session's state. A closed or failed session answers 410 with the reason.
#[utoipa::path(get, path = "/api/v2/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = SessionInfo), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn get_session(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
) -> Result<Json<SessionInfo>, ApiError> {
    let session = app.registry.get(id)?;
    session.touch();
    Ok(Json(session.info(app.public_url())))
}

/// Close a session: the browser, its temp dir and its profile claim are released.
#[utoipa::path(delete, path = "/api/v2/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = ClosedSession), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn delete_session(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
) -> Result<Json<ClosedSession>, ApiError> {
    let mut closed = app.registry.close(id, CloseReason::Closed).await?;
    closed.artifacts = app.artifacts.list(id).await;
    Ok(Json(closed))
}

/// Navigate the session's page and wait until it is usable (DOM interactive and settled; not
/// for `load`, see `load_state`).
#[utoipa::path(post, path = "/api/v2/sessions/{id}/navigate", tag = "sessions", params(("id" = String, Path)),
    request_body = NavigateRequest,
    responses((status = 200, body = NavigateResponse), (status = 400, body = ErrorBody, description = "invalid_url"),
        (status = 409, body = ErrorBody, description = "session_busy"), (status = 410, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "navigation_failed"), (status = 504, body = ErrorBody)))]
pub async fn navigate(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    ApiJson(request): ApiJson<NavigateRequest>,
) -> Result<Json<NavigateResponse>, ApiError> {
    let url = session::parse_target_url(&request.url, &app.config.egress())?;
    let op = app.registry.begin(id)?;
    let (page, navigate_ms) = op.navigate(url.as_str()).await.map_err(SessionError::from)?;
    let block = app.registry.detect(&op, url.as_str()).await?;
    let load_state = page.load_state.unwrap_or(LoadState::Interactive);
    Ok(Json(NavigateResponse { current_url: page.url, title: page.title, block, navigate_ms, load_state }))
}

/// A PNG of the session's page.
#[utoipa::path(get, path = "/api/v2/sessions/{id}/screenshot", tag = "sessions", params(("id" = String, Path), ScreenshotQuery),
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn screenshot(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    query: Result<Query<ScreenshotQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query?;
    let op = app.registry.begin(id)?;
    let png = op.browser().screenshot(query.full_page).await.map_err(SessionError::from)?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], png))
}

/// The session's timeline: its events, submits with their evidence, screenshots and recording,
/// in one document; after it closed, as kept at closing.
#[utoipa::path(get, path = "/api/v2/sessions/{id}/timeline", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = crate::session::timeline::Timeline), (status = 404, body = ErrorBody)))]
pub async fn timeline(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let id = SessionId::parse(&id).map_err(|_| SessionError::NotFound)?;
    match app.registry.get(id) {
        Ok(session) => {
            let artifacts = app.artifacts.list(id).await;
            Ok(Json(crate::session::timeline::Timeline::of(&session, None, &artifacts)).into_response())
        }
        Err(SessionError::Closed { .. }) | Err(SessionError::NotFound) => {
            let kept =
                app.artifacts.read(id, crate::session::timeline::ARTIFACT).await.map_err(|_| SessionError::NotFound)?;
            Ok(([(header::CONTENT_TYPE, "application/json")], kept).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
