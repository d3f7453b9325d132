//! `/api/v1/profiles`: the breaker state of every known profile, and the manual transitions
//! (`resolve`, `disable`, `enable`). A profile becomes known when a session first uses it;
//! looking one up never creates it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::json::ApiJson;
use crate::app::App;
use crate::breaker::{BreakerError, ProfileRecord, ProfileState};
use crate::egress::route::{ProxySpec, ProxyView, SessionProxy};
use crate::error::{ApiError, ErrorBody};
use crate::guard::BlockReason;
use crate::session::{SessionId, validate_profile_id};

/// A profile and its breaker (the seed's fields plus the cooldown and the session using it).
#[derive(Serialize, ToSchema)]
pub struct Profile {
    pub profile_id: String,
    /// `healthy`, `cooling`, `needs_human` or `disabled`.
    pub status: ProfileState,
    pub consecutive_blocks: u32,
    pub consecutive_failures: u32,
    /// Sessions opened on the profile.
    pub total_tasks: u64,
    pub last_used_at: Option<DateTime<Utc>>,
    /// End of the cooldown while `cooling`.
    pub cooldown_until: Option<DateTime<Utc>>,
    /// Seconds until the profile may run again (`cooling` only).
    pub retry_after_secs: Option<u64>,
    pub last_block_reason: Option<BlockReason>,
    /// The open session using the profile now.
    pub in_use_by_session: Option<SessionId>,
    /// The proxy its sessions use unless they name one (password shown as `***`).
    pub proxy: Option<ProxyView>,
}

/// `GET /api/v1/profiles` answer.
#[derive(Serialize, ToSchema)]
pub struct ProfileList {
    pub profiles: Vec<Profile>,
}

fn view(app: &App, record: ProfileRecord) -> Profile {
    let now = app.breaker.now();
    let proxy = record.proxy.clone().map(|spec| match SessionProxy::new(spec.clone(), &app.config.egress()) {
        Ok(proxy) => proxy.view(),
        Err(e) => ProxyView {
            url: format!("<no longer valid: {e}>"),
            country: spec.country,
            timezone: None,
            locale: None,
            bypass: vec![],
        },
    });
    Profile {
        proxy,
        retry_after_secs: record.retry_after_secs(now),
        in_use_by_session: app.registry.profile_holder(&record.profile_id),
        profile_id: record.profile_id,
        status: record.state,
        consecutive_blocks: record.consecutive_blocks,
        consecutive_failures: record.consecutive_failures,
        total_tasks: record.total_tasks,
        last_used_at: record.last_used_at,
        cooldown_until: record.cooldown_until,
        last_block_reason: record.last_block_reason,
    }
}

/// The `{id}` path segment as a profile id; one that cannot name a profile is simply not found.
pub struct ProfileIdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ProfileIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let not_found = || ApiError::from(BreakerError::NotFound);
        let Path(id) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| not_found())?;
        validate_profile_id(&id).map_err(|_| not_found())?;
        Ok(Self(id))
    }
}

/// Every known profile with its breaker state.
#[utoipa::path(get, path = "/api/v1/profiles", tag = "profiles", responses((status = 200, body = ProfileList)))]
pub async fn list_profiles(State(app): State<Arc<App>>) -> Result<Json<ProfileList>, ApiError> {
    let records = app.breaker.list().await?;
    Ok(Json(ProfileList { profiles: records.into_iter().map(|r| view(&app, r)).collect() }))
}

/// Reset a profile from `needs_human` or `cooling` to `healthy` (a disabled one needs `enable`).
#[utoipa::path(post, path = "/api/v1/profiles/{id}/resolve", tag = "profiles", params(("id" = String, Path)),
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody, description = "profile_not_found"),
        (status = 409, body = ErrorBody, description = "invalid_state (disabled)")))]
pub async fn resolve_profile(
    State(app): State<Arc<App>>,
    ProfileIdPath(id): ProfileIdPath,
) -> Result<Json<Profile>, ApiError> {
    let record = app.breaker.resolve(&id).await?;
    Ok(Json(view(&app, record)))
}

/// Disable a profile by hand: no session opens on it until `enable`.
#[utoipa::path(post, path = "/api/v1/profiles/{id}/disable", tag = "profiles", params(("id" = String, Path)),
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody, description = "profile_not_found")))]
pub async fn disable_profile(
    State(app): State<Arc<App>>,
    ProfileIdPath(id): ProfileIdPath,
) -> Result<Json<Profile>, ApiError> {
    let record = app.breaker.disable(&id).await?;
    Ok(Json(view(&app, record)))
}

/// Re-enable a profile: `healthy`, counters and any stale cooldown cleared.
#[utoipa::path(post, path = "/api/v1/profiles/{id}/enable", tag = "profiles", params(("id" = String, Path)),
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody, description = "profile_not_found")))]
pub async fn enable_profile(
    State(app): State<Arc<App>>,
    ProfileIdPath(id): ProfileIdPath,
) -> Result<Json<Profile>, ApiError> {
    let record = app.breaker.enable(&id).await?;
    Ok(Json(view(&app, record)))
}

/// Set the profile's default proxy: sessions on the profile use it unless they name their own
/// (local Chromium; AdsPower profiles carry their own). The profile becomes known.
#[utoipa::path(put, path = "/api/v1/profiles/{id}/proxy", tag = "profiles", params(("id" = String, Path)),
    request_body = ProxySpec,
    responses((status = 200, body = Profile), (status = 422, body = ErrorBody, description = "validation_failed")))]
pub async fn set_profile_proxy(
    State(app): State<Arc<App>>,
    ProfileIdPath(id): ProfileIdPath,
    ApiJson(spec): ApiJson<ProxySpec>,
) -> Result<Json<Profile>, ApiError> {
    app.session_proxy(Some(spec.clone()), None).await?;
    let record = app.breaker.set_proxy(&id, Some(spec)).await?;
    Ok(Json(view(&app, record)))
}

/// Remove the profile's default proxy.
#[utoipa::path(delete, path = "/api/v1/profiles/{id}/proxy", tag = "profiles", params(("id" = String, Path)),
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody, description = "profile_not_found")))]
pub async fn clear_profile_proxy(
    State(app): State<Arc<App>>,
    ProfileIdPath(id): ProfileIdPath,
) -> Result<Json<Profile>, ApiError> {
    app.breaker.get(&id).await?;
    let record = app.breaker.set_proxy(&id, None).await?;
    Ok(Json(view(&app, record)))
}
