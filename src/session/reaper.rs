//! The reaper: closes sessions that have been idle too long or outlived their maximum lifetime,
//! and reaps crash-handler processes that exited after their browser.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::SessionRegistry;

/// How often sessions are checked.
const TICK: Duration = Duration::from_millis(250);

/// Runs until `cancel` fires, closing expired sessions with `idle_timeout` or `max_lifetime`.
/// Crash handlers are looked for when a child of ours exits (`SIGCHLD`), not on every tick: the
/// search reads every process's `/proc/<pid>/stat`.
pub async fn run(registry: Arc<SessionRegistry>, cancel: CancellationToken) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut child_exits = signal(SignalKind::child()).ok();
    loop {
        let child_exited = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => child_exits.is_none(),
            Some(()) = async {
                match child_exits.as_mut() {
                    Some(exits) => exits.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        if child_exited {
            crate::browser::process::reap_crash_handlers().await;
        }
        for (id, reason) in registry.expired(Instant::now()) {
            let closer = registry.clone();
            registry.spawn(async move { closer.close(id, reason).await });
        }
    }
}
