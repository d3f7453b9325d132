//! Fleet mode over HTTP (SPEC §3.9): `GET /api/v1/fleet` lists the workers (for placing work
//! where the free slots are), and a request for a session this worker does not know is sent
//! with a 307 to the worker that holds it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::error::ApiError;
use crate::fleet::WorkerInfo;
use crate::session::{SessionError, SessionId};

/// The fleet's workers.
#[derive(Serialize, ToSchema)]
pub struct FleetView {
    /// `false`: this worker is on its own (no `BW_REDIS_URL`); `workers` is itself.
    pub fleet: bool,
    /// This worker's id in the fleet.
    pub worker_id: String,
    /// Every worker whose heartbeat is current, by id: public URL, free slots, drain state.
    pub workers: Vec<WorkerInfo>,
}

/// The fleet's workers, from their heartbeats (503 `fleet_unavailable` while Redis does not
/// answer).
#[utoipa::path(get, path = "/api/v1/fleet", tag = "worker",
    responses((status = 200, body = FleetView), (status = 503, body = crate::error::ErrorBody, description = "fleet_unavailable")))]
pub async fn list_fleet(State(app): State<Arc<App>>) -> Result<Json<FleetView>, ApiError> {
    let Some(fleet) = &app.fleet else {
        return Ok(Json(FleetView {
            fleet: false,
            worker_id: app.worker_id.clone(),
            workers: vec![app.worker_info()],
        }));
    };
    let workers = fleet.workers().await.map_err(SessionError::from)?;
    Ok(Json(FleetView { fleet: true, worker_id: fleet.worker_id().to_string(), workers }))
}

/// The session a path is about: `/api/v2/sessions/{id}…`, `/vnc/{id}…`, `/live/{id}…`.
fn session_in_path(path: &str) -> Option<SessionId> {
    let rest = ["/api/v2/sessions/", "/vnc/", "/live/"].iter().find_map(|prefix| path.strip_prefix(prefix))?;
    SessionId::parse(rest.split('/').next()?).ok()
}

/// Sends a request for a session held by another worker of the fleet there (307, same path and
/// query); sessions this worker knows (open or recently closed) and unknown ones are answered
/// here as without a fleet. Runs after authentication.
pub async fn redirect_to_holder(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(fleet) = app.fleet.clone() else { return next.run(request).await };
    let Some(id) = session_in_path(request.uri().path()) else { return next.run(request).await };
    if !matches!(app.registry.get(id), Err(SessionError::NotFound)) {
        return next.run(request).await;
    }
    match fleet.locate(id).await {
        Ok(Some(holder)) => {
            let target = request.uri().path_and_query().map_or("", |p| p.as_str());
            let location = format!("{}{target}", holder.public_url.trim_end_matches('/'));
            match HeaderValue::from_str(&location) {
                Ok(value) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, value)]).into_response(),
                Err(_) => next.run(request).await,
            }
        }
        Ok(None) => next.run(request).await,
        Err(e) => {
            tracing::warn!(session_id = %id, error = %e, "cannot ask the fleet who holds a session");
            next.run(request).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_routes_name_their_session() {
        let id = SessionId::new();
        let cases = [
            (format!("/api/v2/sessions/{id}"), true),
            (format!("/api/v2/sessions/{id}/fill"), true),
            (format!("/vnc/{id}/viewer"), true),
            (format!("/live/{id}"), true),
            ("/api/v2/sessions".to_string(), false),
            ("/api/v2/sessions/not-an-id".to_string(), false),
            (format!("/api/v1/profiles/{id}"), false),
        ];
        for (path, named) in cases {
            assert_eq!(session_in_path(&path) == Some(id), named, "{path}");
        }
    }
}
