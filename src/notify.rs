//! Events and webhooks. Every session has an `EventLog`: its events numbered 1, 2, … (the SSE
//! `id:`), the last 100 kept (replayed to a late or reconnecting SSE subscriber) and a
//! broadcast to live ones. A session with a `callback_url` also hands each event to the
//! `Notifier` (`notify/webhook.rs`), which POSTs it from its own tasks, bounded and in order.
//!
//! One lock orders everything an event touches: its number, the replay buffer, the broadcast
//! and the webhook queue. So a subscriber that takes its replay and its live receiver under
//! that lock sees every event exactly once, and webhooks are queued in the order of the
//! numbers. Emitting never waits: the lock is a std mutex, never held across an await.

mod resolver;
mod webhook;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::ids::SessionId;

pub use webhook::{Limits, Notifier, NotifierStats};

/// Events kept for late subscribers, and the live buffer of each subscriber.
pub const REPLAY: usize = 100;
/// Events kept for the session's timeline (the oldest go first past it).
pub const HISTORY: usize = 1000;

/// One event, as SSE `data:` and as the webhook body (the seed's payload).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// Position in the session's stream (1, 2, …), sent as the SSE `id:`; not in the payload.
    #[serde(skip)]
    #[schema(ignore)]
    pub seq: u64,
    pub task_id: Option<String>,
    pub session_id: SessionId,
    /// `progress`, `state_change`, `captcha_detected`, `review_required`, `error`,
    /// `screenshot`, `submit` or `completed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[schema(value_type = Object)]
    pub data: Value,
    pub timestamp: DateTime<Utc>,
}

/// Where a session's events are POSTed.
#[derive(Debug, Clone)]
pub struct Callback {
    pub url: url::Url,
    /// Sent as `Authorization: Bearer`; never logged.
    pub token: Option<String>,
}

/// A session's events: numbering, a replay buffer, live subscribers and the optional webhook.
pub struct EventLog {
    session_id: SessionId,
    /// Everything an emit changes, behind one lock (see the module docs).
    state: Mutex<LogState>,
    /// Live subscribers; sent to under `state`'s lock.
    live: broadcast::Sender<Event>,
    webhook: Option<(Arc<Notifier>, Callback)>,
}

struct LogState {
    /// The number of the last event (0: none yet).
    last_seq: u64,
    recent: VecDeque<Event>,
    /// The V1 task later events belong to.
    task_id: Option<String>,
    /// Set by `close`: later events go to webhooks only if they are final.
    closed: bool,
}

/// What a subscriber gets: the kept events it has not seen, then a receiver for the rest.
pub struct Subscription {
    /// Kept events after the subscriber's last one, in order.
    pub replay: Vec<Event>,
    /// Events the subscriber asked for (by `Last-Event-ID`) that are no longer kept.
    pub missed: u64,
    /// The number of the last event in `replay` (or the subscriber's own last one); live
    /// events numbered up to it are already delivered and must be skipped.
    pub last_seq: u64,
    pub live: broadcast::Receiver<Event>,
}

impl EventLog {
    pub fn new(session_id: SessionId, webhook: Option<(Arc<Notifier>, Callback)>) -> Self {
        let (live, _) = broadcast::channel(REPLAY);
        let state = LogState { last_seq: 0, recent: VecDeque::new(), task_id: None, closed: false };
        Self { session_id, state: Mutex::new(state), live, webhook }
    }

    /// Numbers later events after `last_seq` (a session re-attached after a restart goes on
    /// from its last recorded event).
    pub fn resume_after(&self, last_seq: u64) {
        let mut state = self.state.lock().unwrap();
        state.last_seq = state.last_seq.max(last_seq);
    }

    /// The number of the last event (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.state.lock().unwrap().last_seq
    }

    /// The V1 task events are tagged with.
    pub fn task_id(&self) -> Option<String> {
        self.state.lock().unwrap().task_id.clone()
    }

    /// Where the session's events are POSTed, if anywhere.
    pub fn callback(&self) -> Option<&Callback> {
        self.webhook.as_ref().map(|(_, callback)| callback)
    }

    /// Tags later events with the V1 task they belong to.
    pub fn set_task(&self, task_id: Option<String>) {
        self.state.lock().unwrap().task_id = task_id;
    }

    /// Records an event, tells live subscribers, and queues the webhook. `completed` and
    /// `error` are final events: they survive the session's close (see `Notifier`).
    pub fn emit(&self, kind: &'static str, data: Value) {
        self.record(kind, data, matches!(kind, "completed" | "error"), false);
    }

    /// Emits the session's closing `state_change` (a final event) and stops its pending
    /// non-final webhooks; its final ones are still delivered, within a deadline.
    pub fn close(&self, data: Value) {
        self.record("state_change", data, true, true);
    }

    fn record(&self, kind: &'static str, data: Value, last: bool, closes: bool) {
        let mut state = self.state.lock().unwrap();
        state.last_seq += 1;
        let event = Event {
            seq: state.last_seq,
            task_id: state.task_id.clone(),
            session_id: self.session_id,
            kind,
            data,
            timestamp: Utc::now(),
        };
        if state.recent.len() == HISTORY {
            state.recent.pop_front();
        }
        state.recent.push_back(event.clone());
        let _ = self.live.send(event.clone());
        if let Some((notifier, callback)) = &self.webhook {
            if !state.closed || last {
                notifier.send(callback, event, last, state.closed || closes);
            } else {
                notifier.discard(&event);
            }
            if closes && !state.closed {
                notifier.close_session(self.session_id);
            }
        }
        state.closed |= closes;
    }

    /// The session's events so far (the last `HISTORY`), oldest first.
    pub fn history(&self) -> Vec<Event> {
        self.state.lock().unwrap().recent.iter().cloned().collect()
    }

    /// The kept events after `after` (all kept ones when `None`) and a receiver for the ones
    /// after them, taken under one lock: nothing is missed in between, nothing comes twice.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let state = self.state.lock().unwrap();
        // An id from the future (not ours) counts as "everything so far".
        let after = after.map(|a| a.min(state.last_seq));
        let kept = state.recent.iter().skip(state.recent.len().saturating_sub(REPLAY));
        let first_kept =
            state.recent.get(state.recent.len().saturating_sub(REPLAY)).map_or(state.last_seq + 1, |e| e.seq);
        let missed = after.map_or(0, |a| first_kept.saturating_sub(a + 1));
        let replay: Vec<Event> = kept.filter(|e| after.is_none_or(|a| e.seq > a)).cloned().collect();
        let last_seq = replay.last().map_or(after.unwrap_or(0), |e| e.seq);
        Subscription { replay, missed, last_seq, live: self.live.subscribe() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> EventLog {
        EventLog::new(SessionId(uuid::Uuid::new_v4()), None)
    }

    #[test]
    fn subscriptions_replay_only_what_follows_the_last_seen_event() {
        let log = log();
        for n in 0..(REPLAY as u64 + 20) {
            log.emit("progress", serde_json::json!({ "n": n }));
        }
        let total = REPLAY as u64 + 20;
        // (Last-Event-ID, first replayed, replayed, missed, last_seq)
        let cases = [
            (None, Some(21), REPLAY, 0, total),
            (Some(total), None, 0, 0, total),
            (Some(total + 50), None, 0, 0, total),
            (Some(total - 3), Some(total - 2), 3, 0, total),
            (Some(20), Some(21), REPLAY, 0, total),
            (Some(5), Some(21), REPLAY, 15, total),
        ];
        for (after, first, replayed, missed, last_seq) in cases {
            let sub = log.subscribe(after);
            assert_eq!(sub.replay.first().map(|e| e.seq), first, "{after:?}");
            assert_eq!(sub.replay.len(), replayed, "{after:?}");
            assert_eq!(sub.missed, missed, "{after:?}");
            assert_eq!(sub.last_seq, last_seq, "{after:?}");
            assert!(sub.replay.windows(2).all(|w| w[1].seq == w[0].seq + 1), "{after:?}");
        }
    }

    /// A stress test of the replay/live boundary: with the broadcast sent after the lock is
    /// released (the old code), some of these subscriptions get an event twice.
    #[test]
    fn subscriptions_taken_while_another_thread_emits_neither_overlap_nor_skip() {
        let log = Arc::new(log());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let emitter = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    log.emit("progress", serde_json::json!({}));
                }
            })
        };
        for _ in 0..2_000 {
            let mut sub = log.subscribe(None);
            let first_live = loop {
                match sub.live.try_recv() {
                    Ok(event) => break Some(event.seq),
                    Err(broadcast::error::TryRecvError::Empty) => std::thread::yield_now(),
                    Err(_) => break None,
                }
            };
            if let Some(first_live) = first_live {
                assert_eq!(first_live, sub.last_seq + 1, "the live events start right after the replay");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        emitter.join().unwrap();
    }

    #[test]
    fn live_events_follow_the_replay_without_overlap() {
        let log = log();
        log.emit("progress", serde_json::json!({}));
        let mut sub = log.subscribe(None);
        log.emit("progress", serde_json::json!({}));
        assert_eq!(sub.replay.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1]);
        assert_eq!(sub.live.try_recv().unwrap().seq, 2);
        assert!(sub.live.try_recv().is_err());
    }
}
