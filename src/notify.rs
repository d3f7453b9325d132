//! Events and webhooks. Every session has an `EventLog`: the last 100 events (replayed to a
//! late SSE subscriber) and a broadcast to live ones. A session with a `callback_url` also
//! hands each event to the `Notifier`, which POSTs it with the caller's token from its own
//! tasks: a bounded queue (full → dropped and counted), in order per session, 3 retries with
//! exponential backoff and jitter on network errors and 5xx, none on other 4xx. Delivery never
//! waits on the browser work, and the browser work never waits on delivery.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::egress::{EgressError, EgressPolicy};
use crate::session::SessionId;

/// Events kept for late subscribers.
const REPLAY: usize = 100;
/// Deliveries waiting across all sessions before new ones are dropped.
const QUEUE: usize = 1024;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One event, as SSE `data:` and as the webhook body (the seed's payload).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    pub task_id: Option<String>,
    pub session_id: SessionId,
    /// `progress`, `state_change`, `captcha_detected`, `review_required`, `error`,
    /// `screenshot` or `completed`.
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

/// A session's events: a replay buffer, live subscribers and the optional webhook.
pub struct EventLog {
    session_id: SessionId,
    recent: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
    webhook: Option<(Arc<Notifier>, Callback)>,
    task_id: Mutex<Option<String>>,
}

impl EventLog {
    pub fn new(session_id: SessionId, webhook: Option<(Arc<Notifier>, Callback)>) -> Self {
        let (live, _) = broadcast::channel(REPLAY);
        Self { session_id, recent: Mutex::new(VecDeque::new()), live, webhook, task_id: Mutex::new(None) }
    }

    /// Tags later events with the V1 task they belong to.
    pub fn set_task(&self, task_id: Option<String>) {
        *self.task_id.lock().unwrap() = task_id;
    }

    /// Records an event, tells live subscribers, and queues the webhook.
    pub fn emit(&self, kind: &'static str, data: Value) {
        let event = Event {
            task_id: self.task_id.lock().unwrap().clone(),
            session_id: self.session_id,
            kind,
            data,
            timestamp: Utc::now(),
        };
        {
            let mut recent = self.recent.lock().unwrap();
            if recent.len() == REPLAY {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        let _ = self.live.send(event.clone());
        if let Some((notifier, callback)) = &self.webhook {
            notifier.send(callback.clone(), event);
        }
    }

    /// The kept events and a receiver for the ones after them.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let recent = self.recent.lock().unwrap();
        (recent.iter().cloned().collect(), self.live.subscribe())
    }
}

struct Delivery {
    callback: Callback,
    event: Event,
}

/// Delivers webhooks from background tasks, one ordered queue per session.
pub struct Notifier {
    queue: mpsc::Sender<Delivery>,
    policy: EgressPolicy,
}

impl Notifier {
    /// Starts the dispatcher; it stops when `cancel` fires (queued deliveries are dropped).
    pub fn start(policy: EgressPolicy, cancel: CancellationToken, tracker: &TaskTracker) -> Arc<Self> {
        let (queue, rx) = mpsc::channel(QUEUE);
        let client =
            reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).redirect(reqwest::redirect::Policy::none()).build();
        let client = client.unwrap_or_else(|_| reqwest::Client::new());
        tracker.spawn(dispatch(rx, client, policy.clone(), cancel, tracker.clone()));
        Arc::new(Self { queue, policy })
    }

    /// Checks a caller's callback URL against the egress rules.
    pub async fn check(&self, url: &url::Url) -> Result<(), EgressError> {
        self.policy.check(url).await.map(|_| ())
    }

    fn send(&self, callback: Callback, event: Event) {
        match self.queue.try_send(Delivery { callback, event }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("bw_webhooks_total", "outcome" => "dropped").increment(1);
                tracing::warn!("webhook queue full: event dropped");
            }
            // The worker is shutting down: the dispatcher has stopped.
            Err(mpsc::error::TrySendError::Closed(_)) => tracing::debug!("webhook not sent: shutting down"),
        }
    }
}

/// Routes each delivery to its session's sender task, which delivers them one by one.
async fn dispatch(
    mut rx: mpsc::Receiver<Delivery>,
    client: reqwest::Client,
    policy: EgressPolicy,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let senders: Arc<Mutex<HashMap<SessionId, mpsc::UnboundedSender<Delivery>>>> = Arc::default();
    loop {
        let delivery = tokio::select! {
            _ = cancel.cancelled() => return,
            next = rx.recv() => match next { Some(d) => d, None => return },
        };
        let session = delivery.event.session_id;
        let mut map = senders.lock().unwrap();
        let delivery = match map.get(&session) {
            Some(tx) => match tx.send(delivery) {
                Ok(()) => continue,
                Err(mpsc::error::SendError(d)) => d,
            },
            None => delivery,
        };
        let (tx, mut session_rx) = mpsc::unbounded_channel();
        let _ = tx.send(delivery);
        map.insert(session, tx);
        drop(map);
        let (client, senders, cancel, policy) = (client.clone(), senders.clone(), cancel.clone(), policy.clone());
        tracker.spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => break,
                    next = tokio::time::timeout(Duration::from_secs(60), session_rx.recv()) => next,
                };
                match next {
                    Ok(Some(d)) => deliver(&client, &policy, d).await,
                    // Idle for a minute (or closed): retire this sender; a later event starts a new one.
                    _ => {
                        senders.lock().unwrap().remove(&session);
                        while let Ok(d) = session_rx.try_recv() {
                            deliver(&client, &policy, d).await;
                        }
                        break;
                    }
                }
            }
        });
    }
}

/// Why one attempt failed, and whether to try again.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("{0} (retried)")]
    Retry(String),
    #[error("{0}")]
    Final(String),
}

async fn deliver(client: &reqwest::Client, policy: &EgressPolicy, delivery: Delivery) {
    let Delivery { callback, event } = delivery;
    let attempt = || async {
        metrics::counter!("bw_webhook_attempts_total").increment(1);
        let addr = policy.check(&callback.url).await.map_err(|e| AttemptError::Final(e.to_string()))?;
        let host = callback.url.host_str().unwrap_or_default().to_string();
        let pinned = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .build()
            .unwrap_or_else(|_| client.clone());
        let mut request = pinned.post(callback.url.clone()).json(&event);
        if let Some(token) = &callback.token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_server_error() => Err(AttemptError::Retry(format!("HTTP {}", r.status()))),
            Ok(r) => Err(AttemptError::Final(format!("HTTP {}", r.status()))),
            Err(e) => Err(AttemptError::Retry(e.without_url().to_string())),
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(3)
        .with_jitter();
    let result = attempt.retry(backoff).when(|e| matches!(e, AttemptError::Retry(_))).await;
    let outcome = match &result {
        Ok(()) => "delivered",
        Err(e) => {
            tracing::warn!(session_id = %event.session_id, kind = event.kind, error = %e, "webhook not delivered");
            "failed"
        }
    };
    metrics::counter!("bw_webhooks_total", "outcome" => outcome).increment(1);
}
