//! The warm pool: `BW_WARM_POOL=n` ephemeral browsers launched ahead of time and refilled in
//! the background, so that creating an ephemeral session is a hand-over instead of a launch.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{BrowserHandle, BrowserProvider, LaunchSpec};

/// How long the pool waits after the last take before it launches a refill, even when it is
/// empty: the creates that emptied it are still being answered (measured: launching at once
/// delayed the last creates of a burst of 8 by 2–8 ms).
const QUIET: Duration = Duration::from_millis(100);

/// Ready browsers waiting to become sessions.
pub struct WarmPool {
    provider: Arc<dyn BrowserProvider>,
    target: usize,
    /// Ready handles; a std mutex, never held across an await.
    ready: Mutex<VecDeque<BrowserHandle>>,
    /// Wakes the filler after a take.
    refill: Notify,
}

impl WarmPool {
    /// Creates the pool and starts its filler task, which stops when `cancel` fires.
    pub fn start(
        provider: Arc<dyn BrowserProvider>,
        target: usize,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Self> {
        let pool = Arc::new(Self { provider, target, ready: Mutex::new(VecDeque::new()), refill: Notify::new() });
        let filler = pool.clone();
        tracker.spawn(async move { filler.fill(cancel).await });
        pool
    }

    /// Hands out a live browser, or `None` when the pool is empty.
    pub fn take(&self) -> Option<BrowserHandle> {
        let taken = {
            let mut ready = self.ready.lock().unwrap();
            let taken = ready.pop_front();
            metrics::gauge!("bw_warm_pool_ready").set(ready.len() as f64);
            taken
        };
        self.refill.notify_one();
        taken.filter(|handle| !handle.is_dead())
    }

    /// Number of browsers ready now.
    pub fn ready(&self) -> usize {
        self.ready.lock().unwrap().len()
    }

    /// Keeps the pool full until cancelled, then closes what it holds.
    async fn fill(self: Arc<Self>, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(500);
        while !cancel.is_cancelled() {
            self.prune();
            if self.ready() < self.target {
                self.quiet(&cancel).await;
                // Not raced against `cancel`: a launch runs to the end (bounded by the launch
                // timeout) so that its browser is closed properly by `drain`.
                match self.provider.launch(LaunchSpec::default()).await {
                    Ok(handle) => {
                        backoff = Duration::from_millis(500);
                        let mut ready = self.ready.lock().unwrap();
                        ready.push_back(handle);
                        metrics::gauge!("bw_warm_pool_ready").set(ready.len() as f64);
                    }
                    // At shutdown a launch may find its (shared) browser stopped under it.
                    Err(e) if cancel.is_cancelled() => {
                        tracing::debug!(error = %e, "warm pool launch ended by shutdown")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "warm pool launch failed; retrying");
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.refill.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.drain().await;
    }

    /// Waits until no browser was taken for `QUIET`: a launch is heavy (a process start on the
    /// worker's threads, then Chromium's own start-up on every core), and creates arriving
    /// together are served from what is ready, not made to wait behind a refill (nor the last of
    /// them behind the refill their takes started).
    async fn quiet(&self, cancel: &CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.refill.notified() => {}
                _ = tokio::time::sleep(QUIET) => return,
            }
        }
    }

    /// Drops browsers that died while waiting.
    fn prune(&self) {
        let dead: VecDeque<BrowserHandle> = {
            let mut ready = self.ready.lock().unwrap();
            let (live, dead) = ready.drain(..).partition(|h| !h.is_dead());
            *ready = live;
            metrics::gauge!("bw_warm_pool_ready").set(ready.len() as f64);
            dead
        };
        for handle in dead {
            tokio::spawn(handle.close(false));
        }
    }

    /// Closes every ready browser.
    pub async fn drain(&self) {
        let handles: Vec<BrowserHandle> = self.ready.lock().unwrap().drain(..).collect();
        metrics::gauge!("bw_warm_pool_ready").set(0.0);
        futures::future::join_all(handles.into_iter().map(|h| h.close(false))).await;
    }
}
