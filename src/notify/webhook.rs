//! Webhook delivery: one lane per session (a bounded queue and one sender task), deliveries
//! in order, 3 retries with exponential backoff and jitter on network errors and 5xx only.
//!
//! Bounds and overflow: a session may have `Limits::per_session` deliveries waiting (its
//! in-flight one not counted), the worker `Limits::per_worker`. When either is full, the
//! oldest waiting non-final delivery is dropped to make room: the session's own when its lane
//! is full, else the longest lane's. If there is none to drop, the new event is. Each drop
//! counts in `bw_webhooks_total{outcome="dropped"}`.
//!
//! Close: when a session closes, its waiting non-final deliveries are removed and the one in
//! flight (retries included) is abandoned (`outcome="cancelled"`); its final events (the
//! closing `state_change`, `completed`, `error`) are still delivered until `FINAL_DEADLINE`.
//! At shutdown `drain` waits for the lanes until the shutdown deadline, then `stop` ends every
//! sender task. Every task runs on the app's `TaskTracker`.
//!
//! Egress: all deliveries share one client whose resolver is the egress policy
//! (`resolver.rs`), so it connects only to checked addresses; literal IP hosts are checked
//! with `precheck`. If that client cannot be built, nothing is delivered (fail closed).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Callback, Event};
use crate::egress::{EgressError, EgressPolicy};
use crate::ids::SessionId;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closed session's final events may still take, retries included.
const FINAL_DEADLINE: Duration = Duration::from_secs(30);

/// How many deliveries may wait.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per session, its in-flight delivery not counted.
    pub per_session: usize,
    /// Across all sessions of the worker.
    pub per_worker: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { per_session: 64, per_worker: 1024 }
    }
}

/// Why a delivery failed, and whether another attempt may help.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("{0} (retried)")]
    Retry(String),
    #[error("{0}")]
    Final(String),
    #[error("refused by the egress rules: {0}")]
    Egress(#[from] EgressError),
    #[error("the webhook client could not be built")]
    NoClient,
}

/// One event on its way to one callback.
struct Delivery {
    callback: Callback,
    event: Event,
    /// A final event: still delivered (within a deadline) after the session closed.
    last: bool,
}

/// A session's close, as its sender task sees it.
#[derive(Default)]
struct Closing {
    /// Fires when the session closes: its non-final deliveries stop.
    closed: CancellationToken,
    /// When its final deliveries give up; set before `closed` fires.
    deadline: OnceLock<Instant>,
}

impl Closing {
    fn close(&self) {
        let _ = self.deadline.set(Instant::now() + FINAL_DEADLINE);
        self.closed.cancel();
    }

    /// Resolves when a delivery must stop because its session closed: at once for a
    /// non-final one, at the deadline for a final one.
    async fn stopped(&self, last: bool) {
        self.closed.cancelled().await;
        if let (true, Some(deadline)) = (last, self.deadline.get()) {
            tokio::time::sleep_until(*deadline).await;
        }
    }
}

/// One session's waiting deliveries. A lane exists exactly while its sender task runs.
struct Lane {
    queued: VecDeque<Delivery>,
    closing: Arc<Closing>,
}

#[derive(Default)]
struct Lanes {
    by_session: HashMap<SessionId, Lane>,
    /// Waiting deliveries across all lanes.
    queued: usize,
}

impl Lanes {
    /// Removes the oldest waiting non-final delivery of `session`.
    fn evict(&mut self, session: SessionId) -> Option<Delivery> {
        let lane = self.by_session.get_mut(&session)?;
        let position = lane.queued.iter().position(|d| !d.last)?;
        self.queued -= 1;
        lane.queued.remove(position)
    }

    /// The lane with the most waiting deliveries among those with a non-final one.
    fn longest(&self) -> Option<SessionId> {
        let lanes = self.by_session.iter().filter(|(_, lane)| lane.queued.iter().any(|d| !d.last));
        lanes.max_by_key(|(_, lane)| lane.queued.len()).map(|(id, _)| *id)
    }
}

/// What the notifier holds now (for `/metrics`-free checks and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifierStats {
    /// Deliveries waiting, in-flight ones not counted.
    pub queued: usize,
    /// Sessions with a delivery waiting or in flight.
    pub sessions: usize,
    /// Events dropped by the overflow policy since start.
    pub dropped: u64,
}

/// Delivers webhooks from background tasks, one ordered lane per session.
pub struct Notifier {
    policy: Arc<EgressPolicy>,
    /// The one client for every delivery; `None` if it could not be built (nothing is sent).
    client: Option<reqwest::Client>,
    limits: Limits,
    /// A std mutex: short critical sections, never held across an await.
    lanes: Mutex<Lanes>,
    /// The number of lanes, for `drain` to wait on.
    busy: watch::Sender<usize>,
    dropped: AtomicU64,
    /// Ends every sender task (after `drain`, or when shutdown runs out of time).
    stop: CancellationToken,
    tracker: TaskTracker,
}

fn count(outcome: &'static str, n: u64) {
    metrics::counter!("bw_webhooks_total", "outcome" => outcome).increment(n);
}

impl Notifier {
    /// A notifier with the default limits whose tasks run on `tracker`.
    pub fn start(policy: EgressPolicy, tracker: &TaskTracker) -> Arc<Self> {
        Self::with_limits(policy, Limits::default(), tracker)
    }

    /// A notifier with the given limits.
    pub fn with_limits(policy: EgressPolicy, limits: Limits, tracker: &TaskTracker) -> Arc<Self> {
        let policy = Arc::new(policy);
        let client = super::resolver::client(policy.clone(), ATTEMPT_TIMEOUT)
            .map_err(|e| tracing::error!(error = %e, "the webhook client could not be built: webhooks are off"))
            .ok();
        Arc::new(Self {
            policy,
            client,
            limits,
            lanes: Mutex::default(),
            busy: watch::Sender::new(0),
            dropped: AtomicU64::new(0),
            stop: CancellationToken::new(),
            tracker: tracker.clone(),
        })
    }

    /// Checks a caller's callback URL against the egress rules.
    pub async fn check(&self, url: &url::Url) -> Result<(), EgressError> {
        self.policy.check(url).await.map(|_| ())
    }

    /// What is waiting now, and what was dropped.
    pub fn stats(&self) -> NotifierStats {
        let lanes = self.lanes.lock().unwrap();
        NotifierStats {
            queued: lanes.queued,
            sessions: lanes.by_session.len(),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// Deliveries of `session` waiting now, its in-flight one not counted.
    pub fn queued(&self, session: SessionId) -> usize {
        self.lanes.lock().unwrap().by_session.get(&session).map_or(0, |lane| lane.queued.len())
    }

    /// Queues `event` on its session's lane (see the module docs for the overflow policy).
    /// `closed`: the session has closed, so the delivery runs under the final deadline.
    pub(super) fn send(self: &Arc<Self>, callback: &Callback, event: Event, last: bool, closed: bool) {
        if self.stop.is_cancelled() {
            tracing::debug!("webhook not sent: the notifier has stopped");
            count("cancelled", 1);
            return;
        }
        let session = event.session_id;
        let mut guard = self.lanes.lock().unwrap();
        let lanes = &mut *guard;
        let lane_full = lanes.by_session.get(&session).is_some_and(|l| l.queued.len() >= self.limits.per_session);
        if lane_full || lanes.queued >= self.limits.per_worker {
            let victim = if lane_full { Some(session) } else { lanes.longest() };
            let evicted = victim.and_then(|v| lanes.evict(v));
            self.dropped.fetch_add(1, Ordering::Relaxed);
            count("dropped", 1);
            match evicted {
                Some(old) => {
                    tracing::debug!(session_id = %old.event.session_id, kind = old.event.kind, "webhook queue full: oldest event dropped")
                }
                None => {
                    tracing::warn!(session_id = %session, kind = event.kind, "webhook queue full: event dropped");
                    return;
                }
            }
        }
        let delivery = Delivery { callback: callback.clone(), event, last };
        lanes.queued += 1;
        match lanes.by_session.entry(session) {
            std::collections::hash_map::Entry::Occupied(mut lane) => lane.get_mut().queued.push_back(delivery),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let closing = Arc::new(Closing::default());
                if closed {
                    closing.close();
                }
                slot.insert(Lane { queued: VecDeque::from([delivery]), closing: closing.clone() });
                self.tracker.spawn(self.clone().run_lane(session, closing));
            }
        }
        self.busy.send_replace(lanes.by_session.len());
    }

    /// Counts an event that is not sent because its session has closed.
    pub(super) fn discard(&self, event: &Event) {
        tracing::debug!(session_id = %event.session_id, kind = event.kind, "webhook not sent: the session has closed");
        count("cancelled", 1);
    }

    /// The session has closed: its waiting non-final deliveries go, the one in flight stops,
    /// its final ones get `FINAL_DEADLINE`.
    pub(super) fn close_session(&self, session: SessionId) {
        let mut guard = self.lanes.lock().unwrap();
        let lanes = &mut *guard;
        if let Some(lane) = lanes.by_session.get_mut(&session) {
            let before = lane.queued.len();
            lane.queued.retain(|d| d.last);
            let removed = before - lane.queued.len();
            lanes.queued -= removed;
            count("cancelled", removed as u64);
            lane.closing.close();
        }
    }

    /// Waits until every lane is empty, or until `deadline`, then stops all sender tasks.
    pub async fn drain(&self, deadline: Instant) {
        let mut busy = self.busy.subscribe();
        let idle = async { busy.wait_for(|lanes| *lanes == 0).await.map(|_| ()) };
        if tokio::time::timeout_at(deadline, idle).await.is_err() {
            let stats = self.stats();
            tracing::warn!(sessions = stats.sessions, queued = stats.queued, "webhooks still pending at the deadline");
        }
        self.stop();
    }

    /// Stops every sender task now; waiting and later deliveries are not sent.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// The lane's sender: delivers its deliveries one by one until the lane is empty.
    async fn run_lane(self: Arc<Self>, session: SessionId, closing: Arc<Closing>) {
        loop {
            let next = {
                let mut guard = self.lanes.lock().unwrap();
                let lanes = &mut *guard;
                let lane = lanes.by_session.get_mut(&session).expect("a lane lives as long as its task");
                let next = if self.stop.is_cancelled() { None } else { lane.queued.pop_front() };
                match next {
                    Some(delivery) => {
                        lanes.queued -= 1;
                        Some(delivery)
                    }
                    None => {
                        let left = lanes.by_session.remove(&session).map_or(0, |lane| lane.queued.len());
                        lanes.queued -= left;
                        count("cancelled", left as u64);
                        self.busy.send_replace(lanes.by_session.len());
                        None
                    }
                }
            };
            let Some(delivery) = next else { return };
            let outcome = tokio::select! {
                biased;
                _ = self.stop.cancelled() => "cancelled",
                _ = closing.stopped(delivery.last) => "cancelled",
                outcome = self.deliver(&delivery) => outcome,
            };
            count(outcome, 1);
        }
    }

    /// Sends one delivery, with retries; returns the outcome for the metric.
    async fn deliver(&self, delivery: &Delivery) -> &'static str {
        let Delivery { callback, event, .. } = delivery;
        let result = match (&self.client, self.policy.precheck(&callback.url)) {
            (None, _) => Err(DeliveryError::NoClient),
            (_, Err(e)) => Err(DeliveryError::Egress(e)),
            (Some(client), Ok(())) => send_with_retries(client, callback, event).await,
        };
        match result {
            Ok(()) => "delivered",
            Err(e) => {
                tracing::warn!(session_id = %event.session_id, kind = event.kind, error = %e, "webhook not delivered");
                "failed"
            }
        }
    }
}

async fn send_with_retries(client: &reqwest::Client, callback: &Callback, event: &Event) -> Result<(), DeliveryError> {
    let attempt = || async {
        metrics::counter!("bw_webhook_attempts_total").increment(1);
        let mut request = client.post(callback.url.clone()).json(event);
        if let Some(token) = &callback.token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_server_error() => Err(DeliveryError::Retry(format!("HTTP {}", r.status()))),
            Ok(r) => Err(DeliveryError::Final(format!("HTTP {}", r.status()))),
            Err(e) => Err(classify(e)),
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(3)
        .with_jitter();
    attempt.retry(backoff).when(|e| matches!(e, DeliveryError::Retry(_))).await
}

/// A refusal by the resolver (the egress policy) is final; other transport errors are retried.
fn classify(error: reqwest::Error) -> DeliveryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<EgressError>() {
            return DeliveryError::Final(format!("refused by the egress rules: {refused}"));
        }
        source = e.source();
    }
    DeliveryError::Retry(error.without_url().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: u64, last: bool) -> Delivery {
        let session_id = SessionId(uuid::Uuid::nil());
        let event = Event {
            seq: n,
            task_id: None,
            session_id,
            kind: if last { "completed" } else { "progress" },
            data: serde_json::json!({}),
            timestamp: chrono::Utc::now(),
        };
        Delivery { callback: Callback { url: "http://127.0.0.1:9/".parse().unwrap(), token: None }, event, last }
    }

    #[test]
    fn eviction_takes_the_oldest_non_final_delivery() {
        /// A lane's waiting deliveries as (seq, final).
        type Queued = &'static [(u64, bool)];
        // (lane, evicted seq)
        let cases: [(Queued, Option<u64>); 4] = [
            (&[(1, false), (2, false)], Some(1)),
            (&[(1, true), (2, false), (3, false)], Some(2)),
            (&[(1, true), (2, true)], None),
            (&[], None),
        ];
        for (queued, evicted) in cases {
            let session = SessionId(uuid::Uuid::nil());
            let lane =
                Lane { queued: queued.iter().map(|&(n, last)| delivery(n, last)).collect(), closing: Arc::default() };
            let mut lanes = Lanes { by_session: HashMap::from([(session, lane)]), queued: queued.len() };
            assert_eq!(lanes.evict(session).map(|d| d.event.seq), evicted, "{queued:?}");
            assert_eq!(lanes.queued, queued.len() - usize::from(evicted.is_some()));
        }
    }

    #[tokio::test]
    async fn the_client_refuses_names_the_policy_refuses_without_retrying() {
        let client = super::super::resolver::client(Arc::new(EgressPolicy::default()), ATTEMPT_TIMEOUT).unwrap();
        let error = client.post("http://localhost:9/hook").send().await.unwrap_err();
        assert!(matches!(classify(error), DeliveryError::Final(m) if m.contains("egress")));
    }
}
