//! The registry's side of fleet mode (SPEC §3.9): a profile session holds its profile's lease
//! from before its browser starts until it closes, renewed while open; a lease found lost
//! stops the session (`lease_lost`) rather than let two workers run one profile. Open sessions
//! are named in the fleet's directory so that other workers can send their callers here.

use std::sync::Arc;

use super::registry::SessionRegistry;
use super::{CloseReason, Session, SessionError, SessionId};
use crate::fleet::Fleet;

/// A lease taken for a session that is still opening: given back when dropped, unless `keep`.
pub(super) struct LeaseGuard {
    fleet: Arc<Fleet>,
    profile: String,
    session: SessionId,
    kept: bool,
}

impl LeaseGuard {
    /// The session opened: its lease is released when it closes (`let_go`).
    pub(super) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.kept {
            let (fleet, profile, session) = (self.fleet.clone(), self.profile.clone(), self.session);
            tokio::spawn(async move { fleet.release(&profile, session).await });
        }
    }
}

impl SessionRegistry {
    /// Takes the fleet lease of `profile` for `session`: 409 naming the holder when another
    /// session has it, 503 `fleet_unavailable` when Redis does not answer (fail closed).
    pub(super) async fn take_lease(
        &self,
        profile: Option<&str>,
        session: SessionId,
    ) -> Result<Option<LeaseGuard>, SessionError> {
        let (Some(fleet), Some(profile)) = (&self.fleet, profile) else { return Ok(None) };
        fleet.acquire(profile, session).await?;
        Ok(Some(LeaseGuard { fleet: fleet.clone(), profile: profile.to_string(), session, kept: false }))
    }

    /// Renews the session's lease until it ends; closes it with `lease_lost` once Redis says
    /// the lease is no longer its own. While Redis does not answer, the session goes on (no
    /// other worker can take the lease then either) and renewal is retried.
    pub(super) fn watch_lease(self: &Arc<Self>, session: Arc<Session>) {
        let (Some(fleet), Some(profile)) = (self.fleet.clone(), session.profile_id.clone()) else { return };
        let registry = self.clone();
        self.tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = session.ended.cancelled() => return,
                    _ = tokio::time::sleep(fleet.renew_every()) => {}
                }
                match fleet.renew(&profile, session.id).await {
                    Ok(true) | Err(_) => {}
                    Ok(false) if session.is_closing() => return,
                    Ok(false) => {
                        tracing::warn!(session_id = %session.id, profile, "fleet lease lost; session stopped");
                        let _ = registry.close(session.id, CloseReason::LeaseLost).await;
                        return;
                    }
                }
            }
        });
    }

    /// Names a new session in the fleet's directory (best effort, and not while Redis is known
    /// to be down, so that creates do not wait for it: the heartbeat names it too).
    pub(super) async fn announce(&self, session: SessionId) {
        if let Some(fleet) = self.fleet.as_ref().filter(|f| f.reachable())
            && let Err(e) = fleet.hold(session).await
        {
            tracing::warn!(session_id = %session, error = %e, "session not announced to the fleet yet");
        }
    }

    /// A closed session leaves the directory and gives its lease back (not while Redis is known
    /// to be down, so that closes do not wait for it: both expire by themselves).
    pub(super) async fn let_go(&self, session: SessionId, profile: Option<&str>) {
        let Some(fleet) = self.fleet.as_ref().filter(|f| f.reachable()) else { return };
        if let Some(profile) = profile {
            fleet.release(profile, session).await;
        }
        fleet.forget(session).await;
    }

    /// Takes the lease back for a session re-attached after a restart: renewed if it is still
    /// this session's, taken again if it expired meanwhile.
    pub(super) async fn retake_lease(&self, session: SessionId, profile: &str) -> Result<(), SessionError> {
        let Some(fleet) = &self.fleet else { return Ok(()) };
        if fleet.renew(profile, session).await? {
            return Ok(());
        }
        fleet.acquire(profile, session).await?;
        Ok(())
    }
}
