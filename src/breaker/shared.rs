//! The breaker's records in the fleet's Redis (SPEC §3.9): one JSON record per profile under
//! `{prefix}:profile:{id}`, changed by read, change, compare-and-swap (`Fleet::swap`, one Lua
//! call), retried when another worker wrote first. The same transitions as the embedded store
//! (`apply`), so a block or a `disable` seen by one worker holds on all.

use super::{BreakerError, Clock, Draw, ProfileRecord, apply, decode, keeps};
use crate::fleet::Fleet;
use chrono::{DateTime, Utc};

const KIND: &str = "profile";
/// Attempts before a transition under constant contention gives up.
const TRIES: usize = 16;

pub(super) async fn get(fleet: &Fleet, profile_id: &str) -> Result<ProfileRecord, BreakerError> {
    let value = fleet.value(KIND, profile_id).await?;
    value.map(|v| decode(v.as_bytes())).transpose()?.ok_or(BreakerError::NotFound)
}

pub(super) async fn list(fleet: &Fleet) -> Result<Vec<ProfileRecord>, BreakerError> {
    let mut records: Vec<ProfileRecord> =
        fleet.values(KIND).await?.iter().map(|v| decode(v.as_bytes())).collect::<Result<_, _>>()?;
    records.sort_by(|a, b| a.profile_id.cmp(&b.profile_id));
    Ok(records)
}

pub(super) async fn update<F>(
    fleet: &Fleet,
    clock: &dyn Clock,
    draw: &dyn Draw,
    profile_id: &str,
    create: bool,
    change: &F,
) -> Result<ProfileRecord, BreakerError>
where
    F: Fn(&mut ProfileRecord, DateTime<Utc>, &dyn Draw) -> Result<(), BreakerError>,
{
    for _ in 0..TRIES {
        let old = fleet.value(KIND, profile_id).await?;
        let existing = old.as_deref().map(|v| decode(v.as_bytes())).transpose()?;
        let (write, outcome) = apply(profile_id, existing, create, clock.now(), draw, change)?;
        if let Some(record) = write.filter(|_| keeps(&outcome)) {
            let new = serde_json::to_string(&record).map_err(|e| BreakerError::Store(e.to_string()))?;
            if !fleet.swap(KIND, profile_id, old.as_deref(), &new).await? {
                continue;
            }
        }
        return outcome;
    }
    Err(BreakerError::Store(format!("profile {profile_id}: too many concurrent updates")))
}
