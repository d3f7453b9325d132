//! Sessions that outlive the worker (SPEC §3.8): re-attaching the recorded sessions of an
//! earlier run at start-up, and leaving every session for the next run (handover).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;

use super::registry::Opening;
use super::{
    CloseReason, LiveAccess, Session, SessionError, SessionId, SessionRecord, SessionRegistry, SessionState, Status,
    VncAccess,
};
use crate::browser::process::{self, ProcessId};
use crate::fleet::FleetError;
use crate::guard::BlockReason;
use crate::notify::{Callback, EventLog};
use crate::token::Minted;

/// The process groups of recorded sessions that still run, and the dirs they use: start-up
/// reaps every other recorded process and clears every other temp dir.
pub fn survivors(records: &[SessionRecord], files_root: &std::path::Path) -> (HashSet<i32>, HashSet<PathBuf>) {
    let mut groups = HashSet::new();
    let mut dirs = HashSet::new();
    for record in records {
        groups.extend(processes(record, true).into_iter().filter(|p| p.alive()).map(|p| p.pgid));
        dirs.extend(record.browser.temp_dir.clone());
        dirs.insert(files_root.join(format!("files-{}", record.id)));
    }
    (groups, dirs)
}

/// Every local process a record names (browser, Xvfb, x11vnc); `shared`: with a shared
/// browser (context mode), which is other sessions' too.
fn processes(record: &SessionRecord, shared: bool) -> Vec<ProcessId> {
    let display = record.display.iter().filter_map(|d| d.own.as_ref()).flat_map(|own| [own.xvfb, own.vnc]);
    let browser = record.browser.process.filter(|_| shared || record.browser.owns_process());
    browser.into_iter().chain(display).collect()
}

impl SessionRegistry {
    /// Re-attaches every recorded session whose browser (and display) still runs: same id,
    /// state, page, tokens and deadlines. The others fail (`browser_crashed`, with their final
    /// event and webhook). `network` is false when the egress proxy could not take its old
    /// port back: local browsers send all their traffic there, so their sessions fail too.
    /// Returns how many were re-attached and how many failed.
    /// Links (VNC, live view) are rebuilt under `public_url`.
    pub async fn restore(
        self: &Arc<Self>,
        records: Vec<SessionRecord>,
        network: bool,
        public_url: &str,
    ) -> (usize, usize) {
        let (mut reattached, mut failed) = (0, 0);
        let browsers: Vec<_> = records.iter().map(|r| r.browser.clone()).collect();
        for record in records {
            let started = Instant::now();
            let outcome = match record.state {
                SessionState::Closing | SessionState::Closed | SessionState::Failed => Err("it was closing".into()),
                _ if !network && record.browser.process.is_some() => {
                    Err("the egress proxy could not take its old port back".into())
                }
                _ => self.reattach(&record, public_url).await,
            };
            match outcome {
                Ok(session) => {
                    reattached += 1;
                    let ms = started.elapsed().as_millis() as u64;
                    tracing::info!(session_id = %session.id, state = session.state().as_str(), ms, "session re-attached");
                }
                Err(why) => {
                    failed += 1;
                    self.fail_record(&record, &why).await;
                }
            }
        }
        self.provider.restored(&browsers).await;
        (reattached, failed)
    }

    async fn reattach(self: &Arc<Self>, record: &SessionRecord, public_url: &str) -> Result<Arc<Session>, String> {
        let id = SessionId(record.id);
        let display = match (&record.display, &self.displays) {
            (None, _) => None,
            (Some(saved), Some(displays)) => Some(displays.adopt(saved).map_err(|e| e.to_string())?),
            (Some(_), None) => return Err("this worker has no displays now".into()),
        };
        let handle = match self.provider.reattach(&record.browser, record.profile_id.as_deref()).await {
            Ok(handle) => handle,
            Err(e) => {
                if let Some(display) = display {
                    display.stop().await;
                }
                return Err(e.to_string());
            }
        };
        if let Some((width, height)) = record.viewport {
            let _ = handle.set_viewport(width, height).await;
        }
        if let Some(profile) = &record.profile_id {
            self.profiles.insert(profile.clone(), id);
        }
        let permit = self.capacity.clone().try_acquire_owned().ok();
        let now = Utc::now();
        let idle_for = (now - record.last_activity_at).to_std().unwrap_or_default();
        // A review hold was kept as a block before it had a field of its own.
        let (block, review) = match record.block.clone() {
            Some(b) if b.reason == BlockReason::ReviewRequired => (None, Some(b.detail)),
            block => (block, record.review.clone()),
        };
        let state = match record.state {
            SessionState::Busy if block.is_some() || review.is_some() => SessionState::NeedsHuman,
            SessionState::Busy => SessionState::Ready,
            state => state,
        };
        let session = self.assemble(Opening {
            id,
            profile_id: record.profile_id.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            idle_timeout: Duration::from_secs(record.idle_timeout_secs),
            humanize: record.humanize,
            metadata: record.metadata.clone(),
            callback: callback(record),
            status: Status {
                state,
                last_activity: Instant::now().checked_sub(idle_for).unwrap_or_else(Instant::now),
                last_activity_at: record.last_activity_at,
                current_url: record.current_url.clone(),
                title: record.title.clone(),
                timing: record.timing.clone(),
                load_state: record.load_state,
                block,
                review,
            },
            viewport: record.viewport,
            handle,
            display,
            permit,
        });
        session.restore_tokens(record, public_url);
        session.events.resume_after(record.last_event);
        session.events.set_task(record.task_id.clone());
        self.open.insert(id, session.clone());
        self.supervise(session.clone());
        session.persist();
        if let Some(profile) = &record.profile_id
            && self.fleet.is_some()
        {
            match self.retake_lease(id, profile).await {
                Err(SessionError::Fleet(FleetError::Held { worker_id, .. })) => {
                    tracing::warn!(session_id = %id, profile, worker_id, "the profile's lease went to another worker meanwhile");
                    let _ = self.close(id, CloseReason::LeaseLost).await;
                    return Ok(session);
                }
                // Unreachable: renewal is retried while the session goes on.
                Ok(()) | Err(_) => self.watch_lease(session.clone()),
            }
        }
        self.announce(id).await;
        Ok(session)
    }

    /// Ends a recorded session that cannot be re-attached: what still runs of it is killed,
    /// its files are removed, and its final event goes out.
    async fn fail_record(&self, record: &SessionRecord, why: &str) {
        let id = SessionId(record.id);
        let closing = record.state == SessionState::Closing;
        let (state, reason) = if closing {
            (SessionState::Closed, CloseReason::Closed)
        } else {
            (SessionState::Failed, CloseReason::BrowserCrashed)
        };
        tracing::warn!(session_id = %id, why, "session not re-attached; {}", state.as_str());
        // A shared browser stays for its other sessions (the provider stops it if none came back).
        for process in processes(record, false) {
            if process.alive() {
                process::kill_group(process.pgid);
            }
            let _ = tokio::fs::remove_file(self.run_dir().join(format!("{}.json", process.pgid))).await;
        }
        if let Some(dir) = record.browser.temp_dir.as_ref().filter(|_| record.browser.owns_process()) {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
        let _ = tokio::fs::remove_dir_all(self.files_root.join(format!("files-{id}"))).await;
        if let Some(store) = &self.store {
            store.remove(record.id);
        }
        self.tombstone(id, state, reason);
        let events = EventLog::new(id, callback(record).zip(self.notifier.clone()).map(|(c, n)| (n, c)));
        events.resume_after(record.last_event);
        events.set_task(record.task_id.clone());
        events.close(json!({"state": state, "reason": reason}));
        if reason == CloseReason::BrowserCrashed
            && let Some(profile) = &record.profile_id
        {
            self.record_profile_failure(profile).await;
        }
        metrics::counter!("bw_sessions_closed_total", "reason" => reason.as_str()).increment(1);
    }

    /// Leaves every session for the next worker (`BW_HANDOVER`): waits for each running
    /// operation, writes the session's record, and lets go of its browser and display without
    /// stopping them. Later calls find the session closing; nothing is killed or removed.
    pub async fn detach_all(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for session in self.list() {
            let mut slot = session.browser.lock().await;
            session.persist();
            let Some(held) = session.begin_close() else { continue };
            if let Some(handle) = slot.take() {
                handle.detach();
            }
            if let Some(display) = held.display {
                display.detach();
            }
            session.ended.cancel();
            tracing::info!(session_id = %session.id, "session left running for the next worker");
        }
        if let Some(store) = &self.store {
            store.flush().await;
        }
    }
}

/// The webhook of a record (a URL that no longer parses is dropped).
fn callback(record: &SessionRecord) -> Option<Callback> {
    let (url, token) = record.callback.clone()?;
    Some(Callback { url: url.parse().ok()?, token })
}

impl Session {
    /// Takes back the token generations and the access links of the session's record, so that
    /// the tokens handed out before the restart keep working (the secret is the same); the
    /// links point at `public_url`.
    fn restore_tokens(&self, record: &SessionRecord, public_url: &str) {
        {
            let mut epochs = self.token_epochs.lock().unwrap();
            for (epoch, generation) in epochs.iter_mut().zip(record.token_generations) {
                epoch.generation = generation;
            }
        }
        let minted = |token: &str, expires_at| Minted { token: token.to_string(), expires_at };
        *self.vnc.lock().unwrap() =
            record.vnc.as_ref().map(|a| VncAccess::new(public_url, self.id, &minted(&a.token, a.expires_at), a.shared));
        *self.live.lock().unwrap() =
            record.live.as_ref().map(|a| LiveAccess::new(public_url, self.id, &minted(&a.token, a.expires_at), a.mode));
    }
}
