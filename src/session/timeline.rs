//! A session's timeline (`GET /api/v2/sessions/{id}/timeline`): its events, the submits with
//! their evidence, its screenshots and its recording, in one document a support tool can
//! render. Kept as the artifact `timeline.json` when the session closes, so it outlives it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{CloseReason, Session, SessionId, SessionState};

/// The artifact a closed session's timeline is kept as.
pub const ARTIFACT: &str = "timeline.json";

/// Everything that happened in a session, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    #[schema(value_type = String)]
    pub session_id: SessionId,
    pub state: SessionState,
    /// Why it ended (closed sessions).
    pub reason: Option<CloseReason>,
    pub profile_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub current_url: String,
    /// The session's events (the last 1,000), as the event stream sent them.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// The `submit` events' data: outcome, clicked control, evidence.
    #[schema(value_type = Vec<Object>)]
    pub submits: Vec<Value>,
    /// Screenshot URLs, oldest first.
    pub screenshots: Vec<String>,
    /// The recording's URL (stored when the session closes), if it is recorded and kept.
    pub video: Option<String>,
}

impl Timeline {
    /// The timeline of `session` now; `closed` gives its final state and reason once it ended.
    /// `artifacts` are its artifact URLs.
    pub fn of(session: &Session, closed: Option<(SessionState, CloseReason)>, artifacts: &[String]) -> Self {
        let events: Vec<Value> = session.events.history().iter().filter_map(|e| serde_json::to_value(e).ok()).collect();
        let submits = events.iter().filter(|e| e["type"] == "submit").map(|e| e["data"].clone()).collect();
        let info = session.status.lock().unwrap().current_url.clone();
        Self {
            session_id: session.id,
            state: closed.map_or_else(|| session.state(), |(state, _)| state),
            reason: closed.map(|(_, reason)| reason),
            profile_id: session.profile_id.clone(),
            created_at: session.created_at,
            closed_at: closed.map(|_| Utc::now()),
            current_url: info,
            events,
            submits,
            screenshots: artifacts.iter().filter(|a| a.ends_with(".png")).cloned().collect(),
            video: session
                .recording_url()
                .filter(|_| closed.is_none() || artifacts.iter().any(|a| a.ends_with(".mp4"))),
        }
    }
}
