//! `GET /api/v2/sessions/{id}/events`: the session's events as Server-Sent Events, starting
//! with the last 100 (so a late subscriber sees what it missed); the stream ends with the
//! session.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use futures::stream::{self, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::sessions::SessionIdPath;
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::notify::Event;

fn sse(event: &Event) -> SseEvent {
    SseEvent::default()
        .event(event.kind)
        .json_data(event)
        .unwrap_or_else(|_| SseEvent::default().comment("unencodable"))
}

/// Stream the session's events (`event: <type>`, `data: <json>`), replaying the last 100.
#[utoipa::path(get, path = "/api/v2/sessions/{id}/events", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = Event,
        description = "`progress`, `state_change`, `captcha_detected`, `review_required`, `error`, `screenshot`, `completed`"),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn session_events(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let session = app.registry.get(id)?;
    let (replay, live) = session.events.subscribe();
    let ended = session.ended.clone();
    let live = stream::unfold((live, ended), |(mut rx, ended)| async move {
        loop {
            tokio::select! {
                next = rx.recv() => match next {
                    Ok(event) => return Some((event, (rx, ended))),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                },
                // Drain what the close sent, then end.
                _ = ended.cancelled() => return rx.try_recv().ok().map(|e| (e, (rx, ended))),
            }
        }
    });
    let events = stream::iter(replay).chain(live).map(|e| Ok(sse(&e)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
