//! `GET /api/v2/sessions/{id}/events`: the session's events as Server-Sent Events. Each has
//! its number in the session as `id:`; a new subscriber first gets the last 100, a
//! reconnecting one (`Last-Event-ID`) only the kept ones after its last. No event comes twice
//! on one stream, and a subscriber that falls behind is told how many it missed (`lagged`)
//! instead of losing them silently. The stream ends with the session.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use futures::stream::{self, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use super::sessions::SessionIdPath;
use crate::app::App;
use crate::error::{ApiError, ErrorBody};
use crate::notify::{Event, Subscription};

/// What a stream sends next.
enum Item {
    Event(Event),
    /// This many events passed the subscriber by.
    Lagged(u64),
}

fn sse(item: &Item) -> SseEvent {
    match item {
        Item::Event(event) => SseEvent::default()
            .event(event.kind)
            .id(event.seq.to_string())
            .json_data(event)
            .unwrap_or_else(|_| SseEvent::default().comment("unencodable")),
        // No `id:`: a reconnect resumes after the last event actually received.
        Item::Lagged(missed) => SseEvent::default().event("lagged").data(format!("{{\"missed\":{missed}}}")),
    }
}

/// The live part of a stream: events numbered after `last_seq`, until the session ends.
struct Follow {
    live: broadcast::Receiver<Event>,
    ended: CancellationToken,
    last_seq: u64,
}

impl Follow {
    async fn next(mut self) -> Option<(Item, Self)> {
        loop {
            let next = if self.ended.is_cancelled() {
                // The close's events are already sent: drain them, then end.
                match self.live.try_recv() {
                    Ok(event) => Ok(event),
                    Err(TryRecvError::Lagged(n)) => Err(n),
                    Err(_) => return None,
                }
            } else {
                tokio::select! {
                    biased;
                    next = self.live.recv() => match next {
                        Ok(event) => Ok(event),
                        Err(RecvError::Lagged(n)) => Err(n),
                        Err(RecvError::Closed) => return None,
                    },
                    _ = self.ended.cancelled() => continue,
                }
            };
            match next {
                // Already in the replay.
                Ok(event) if event.seq <= self.last_seq => continue,
                Ok(event) => {
                    self.last_seq = event.seq;
                    return Some((Item::Event(event), self));
                }
                Err(missed) => return Some((Item::Lagged(missed), self)),
            }
        }
    }
}

/// The `Last-Event-ID` a reconnecting client sends; anything else counts as none.
fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers.get("last-event-id")?.to_str().ok()?.trim().parse().ok()
}

/// Stream the session's events (`id: <n>`, `event: <type>`, `data: <json>`).
///
/// Without `Last-Event-ID` the last 100 events are replayed first; with it, only the kept
/// events numbered after it (preceded by a `lagged` event when some of those are no longer
/// kept). A subscriber too slow for the live events gets `event: lagged` with
/// `data: {"missed": n}` in their place. No event is sent twice on one stream.
#[utoipa::path(get, path = "/api/v2/sessions/{id}/events", tag = "sessions",
    params(("id" = String, Path),
        ("Last-Event-ID" = Option<u64>, Header,
            description = "The `id` of the last event received: replay only the kept events after it")),
    responses((status = 200, content_type = "text/event-stream", body = Event,
        description = "`progress`, `state_change`, `captcha_detected`, `review_required`, `error`, `screenshot`, \
            `completed`, each with its number in the session as `id`; `lagged` (`{\"missed\": n}`, no `id`) when \
            events were missed"),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn session_events(
    State(app): State<Arc<App>>,
    SessionIdPath(id): SessionIdPath,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let session = app.registry.get(id)?;
    let Subscription { replay, missed, last_seq, live } = session.events.subscribe(last_event_id(&headers));
    let gap = (missed > 0).then_some(Item::Lagged(missed));
    let replay = gap.into_iter().chain(replay.into_iter().map(Item::Event));
    let follow = Follow { live, ended: session.ended.clone(), last_seq };
    let live = stream::unfold(follow, Follow::next);
    let items = stream::iter(replay).chain(live).map(|item| Ok(sse(&item)));
    Ok(Sse::new(items).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
