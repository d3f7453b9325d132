//! The per-profile circuit breaker (seed §9), persisted in redb under the data dir.
//!
//! States: `healthy` → `cooling` (after a block, for a tiered cooldown) → `needs_human` (3
//! consecutive blocks) → `disabled` (5 consecutive failures, or by hand). A success clears the
//! failures, lowers the blocks by one and ends a cooldown. Cooldowns: 1 block draws 15–30 min,
//! 2 blocks 2–6 h, each then scaled by a ±20% jitter, so 720–2160 s and 5760–25920 s.
//!
//! The state machine ([`ProfileRecord::record_block`] and friends) is pure: the time and the
//! random draws are passed in. [`Breaker`] owns the store, the injected [`Clock`] and
//! [`Draw`], and applies every change in one redb write transaction (writers are serialised,
//! so concurrent updates never lose one; a commit is durable before the call returns).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::guard::BlockReason;

/// profile id → JSON of its [`ProfileRecord`].
const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");

/// Consecutive blocks that send a profile to `needs_human`.
pub const BLOCKS_FOR_HUMAN: u32 = 3;
/// Consecutive failures that disable a profile.
pub const FAILURES_FOR_DISABLE: u32 = 5;
/// Cooldown ranges in seconds before jitter, for 1 and for 2 consecutive blocks.
const TIERS: [(f64, f64); 2] = [(15.0 * 60.0, 30.0 * 60.0), (2.0 * 3600.0, 6.0 * 3600.0)];
/// The jitter scales a drawn cooldown by a factor in `[1 - JITTER, 1 + JITTER]`.
const JITTER: f64 = 0.2;

/// A profile's breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileState {
    Healthy,
    Cooling,
    NeedsHuman,
    Disabled,
}

impl ProfileState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileState::Healthy => "healthy",
            ProfileState::Cooling => "cooling",
            ProfileState::NeedsHuman => "needs_human",
            ProfileState::Disabled => "disabled",
        }
    }
}

/// What the breaker knows about one profile (stored as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    pub profile_id: String,
    pub state: ProfileState,
    pub consecutive_blocks: u32,
    pub consecutive_failures: u32,
    /// Sessions opened on the profile.
    pub total_tasks: u64,
    pub last_used_at: Option<DateTime<Utc>>,
    /// End of the current cooldown (`cooling` only).
    pub cooldown_until: Option<DateTime<Utc>>,
    pub last_block_reason: Option<BlockReason>,
    pub updated_at: DateTime<Utc>,
    /// The proxy sessions on this profile use unless they name one (credentials included:
    /// this record stays in the worker's store, or the fleet's Redis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::egress::route::ProxySpec>,
}

/// Why a profile may not run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable {
    pub state: ProfileState,
    /// Seconds until a cooldown ends; `None` when only a human can help.
    pub retry_after_secs: Option<u64>,
}

/// Breaker failures (no HTTP here).
#[derive(Debug, thiserror::Error)]
pub enum BreakerError {
    #[error("no profile with that id")]
    NotFound,
    #[error("the profile may not run now ({})", .0.state.as_str())]
    Unavailable(Unavailable),
    #[error("{0}")]
    InvalidState(String),
    #[error("the profile store failed: {0}")]
    Store(String),
    /// Fleet mode: the shared store (Redis) did not answer.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
}

impl From<redb::Error> for BreakerError {
    fn from(e: redb::Error) -> Self {
        BreakerError::Store(e.to_string())
    }
}

/// The current time, injected so that tests are exact.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// Uniform draws in `[0, 1]`, injected so that tests are exact.
pub trait Draw: Send + Sync + 'static {
    fn unit(&self) -> f64;
}

/// Wall time when created plus Tokio's monotonic time since: immune to wall-clock jumps while
/// running, and it follows `tokio::time::advance` in tests with paused time.
pub struct TokioClock {
    wall: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self { wall: Utc::now(), start: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.wall + elapsed
    }
}

/// Draws from the thread-local RNG.
pub struct RandomDraw;

impl Draw for RandomDraw {
    fn unit(&self) -> f64 {
        rand::random::<f64>()
    }
}

/// The cooldown after `blocks` consecutive blocks (1 or 2), from two draws in `[0, 1]`:
/// one picks the tier's base length, the other the jitter factor.
pub fn cooldown(blocks: u32, base_draw: f64, jitter_draw: f64) -> Duration {
    let (low, high) = TIERS[(blocks.clamp(1, 2) - 1) as usize];
    let base = low + (high - low) * base_draw.clamp(0.0, 1.0);
    let factor = 1.0 - JITTER + 2.0 * JITTER * jitter_draw.clamp(0.0, 1.0);
    Duration::from_secs_f64((base * factor).round())
}

impl ProfileRecord {
    /// A profile seen for the first time.
    pub fn new(profile_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            profile_id: profile_id.to_string(),
            state: ProfileState::Healthy,
            consecutive_blocks: 0,
            consecutive_failures: 0,
            total_tasks: 0,
            last_used_at: None,
            cooldown_until: None,
            last_block_reason: None,
            updated_at: now,
            proxy: None,
        }
    }

    /// The seed's `can_run`: an expired cooldown turns back to `healthy` here.
    pub fn can_run(&mut self, now: DateTime<Utc>) -> Result<(), Unavailable> {
        match self.state {
            ProfileState::Healthy => Ok(()),
            ProfileState::Disabled | ProfileState::NeedsHuman => {
                Err(Unavailable { state: self.state, retry_after_secs: None })
            }
            ProfileState::Cooling => match self.cooldown_until {
                Some(until) if now < until => {
                    let secs = (until - now).num_milliseconds().max(0) as u64;
                    Err(Unavailable { state: self.state, retry_after_secs: Some(secs.div_ceil(1000).max(1)) })
                }
                _ => {
                    self.state = ProfileState::Healthy;
                    self.cooldown_until = None;
                    Ok(())
                }
            },
        }
    }

    /// Seconds until the profile may run again, for the profiles list.
    pub fn retry_after_secs(&self, now: DateTime<Utc>) -> Option<u64> {
        self.clone().can_run(now).err().and_then(|u| u.retry_after_secs)
    }

    /// A block: cooling for the tier's cooldown, or `needs_human` at the third in a row.
    /// `draws` are the base and jitter draws for the cooldown.
    pub fn record_block(&mut self, reason: BlockReason, now: DateTime<Utc>, draws: (f64, f64)) {
        self.consecutive_blocks += 1;
        self.last_block_reason = Some(reason);
        if self.state == ProfileState::Disabled {
            return;
        }
        if self.consecutive_blocks >= BLOCKS_FOR_HUMAN {
            self.state = ProfileState::NeedsHuman;
            self.cooldown_until = None;
        } else {
            let rest = cooldown(self.consecutive_blocks, draws.0, draws.1);
            self.state = ProfileState::Cooling;
            self.cooldown_until = Some(now + chrono::Duration::from_std(rest).unwrap_or_default());
        }
    }

    /// A browser or provider failure; the fifth in a row disables the profile.
    pub fn record_failure(&mut self) {
        self.consecutive_failures += 1;
        if self.consecutive_failures >= FAILURES_FOR_DISABLE {
            self.state = ProfileState::Disabled;
            self.cooldown_until = None;
        }
    }

    /// A confirmed success: failures cleared, blocks lowered by one, a cooldown ended.
    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.consecutive_blocks = self.consecutive_blocks.saturating_sub(1);
        if self.state == ProfileState::Cooling {
            self.state = ProfileState::Healthy;
            self.cooldown_until = None;
        }
    }

    /// A human dealt with it: `needs_human` or `cooling` back to `healthy` with clean counters.
    pub fn resolve(&mut self) -> Result<(), BreakerError> {
        if self.state == ProfileState::Disabled {
            return Err(BreakerError::InvalidState("the profile is disabled: enable it instead".into()));
        }
        self.reset();
        Ok(())
    }

    /// Re-enables a profile, clearing counters and any stale cooldown.
    pub fn enable(&mut self) {
        self.reset();
    }

    pub fn disable(&mut self) {
        self.state = ProfileState::Disabled;
        self.cooldown_until = None;
    }

    fn reset(&mut self) {
        self.state = ProfileState::Healthy;
        self.consecutive_blocks = 0;
        self.consecutive_failures = 0;
        self.cooldown_until = None;
    }
}

/// The persisted breakers of every known profile: in the embedded store, or in fleet mode in
/// Redis (`shared`), where every worker sees every block and `disable`.
pub struct Breaker {
    db: Arc<Database>,
    clock: Arc<dyn Clock>,
    draw: Arc<dyn Draw>,
    shared: Option<Arc<crate::fleet::Fleet>>,
}

impl Breaker {
    /// Opens (or creates) the store at `path` with the real clock and randomness.
    pub fn open(path: &Path) -> Result<Self, BreakerError> {
        Self::open_with(path, Arc::new(TokioClock::new()), Arc::new(RandomDraw))
    }

    /// Opens the store with an injected clock and randomness.
    pub fn open_with(path: &Path, clock: Arc<dyn Clock>, draw: Arc<dyn Draw>) -> Result<Self, BreakerError> {
        let db = Database::create(path).map_err(redb::Error::from)?;
        let txn = db.begin_write().map_err(redb::Error::from)?;
        txn.open_table(PROFILES).map_err(redb::Error::from)?;
        txn.commit().map_err(redb::Error::from)?;
        Ok(Self { db: Arc::new(db), clock, draw, shared: None })
    }

    /// Keeps the records in the fleet's Redis instead (SPEC §3.9).
    pub fn shared_by(mut self, fleet: Arc<crate::fleet::Fleet>) -> Self {
        self.shared = Some(fleet);
        self
    }

    /// The breaker's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Reads one profile (never creates it).
    pub async fn get(&self, profile_id: &str) -> Result<ProfileRecord, BreakerError> {
        if let Some(fleet) = &self.shared {
            return shared::get(fleet, profile_id).await;
        }
        let db = self.db.clone();
        let id = profile_id.to_string();
        blocking(move || {
            let txn = db.begin_read()?;
            let table = txn.open_table(PROFILES)?;
            let found = table.get(id.as_str())?.map(|v| decode(v.value()));
            Ok(found.transpose()?)
        })
        .await?
        .ok_or(BreakerError::NotFound)
    }

    /// Every known profile, by id.
    pub async fn list(&self) -> Result<Vec<ProfileRecord>, BreakerError> {
        if let Some(fleet) = &self.shared {
            return shared::list(fleet).await;
        }
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read()?;
            let table = txn.open_table(PROFILES)?;
            let mut all = Vec::new();
            for entry in table.iter()? {
                let (_, value) = entry?;
                all.push(decode(value.value())?);
            }
            Ok(all)
        })
        .await
    }

    /// Checks that a profile may run and counts a session on it (the profile becomes known).
    pub async fn admit(&self, profile_id: &str) -> Result<ProfileRecord, BreakerError> {
        self.update(profile_id, true, |record, now, _| {
            record.can_run(now).map_err(BreakerError::Unavailable)?;
            record.total_tasks += 1;
            record.last_used_at = Some(now);
            Ok(())
        })
        .await
    }

    /// Makes profiles known without using them (e.g. AdsPower's profile list).
    pub async fn learn(&self, profile_ids: Vec<String>) -> Result<(), BreakerError> {
        for id in profile_ids {
            self.update(&id, true, |_, _, _| Ok(())).await?;
        }
        Ok(())
    }

    pub async fn record_block(&self, profile_id: &str, reason: BlockReason) -> Result<ProfileRecord, BreakerError> {
        self.update(profile_id, true, move |record, now, draw| {
            let draws = (draw.unit(), draw.unit());
            record.record_block(reason, now, draws);
            Ok(())
        })
        .await
    }

    pub async fn record_failure(&self, profile_id: &str) -> Result<ProfileRecord, BreakerError> {
        self.update(profile_id, true, |record, _, _| {
            record.record_failure();
            Ok(())
        })
        .await
    }

    /// A confirmed success (e.g. a verified submission) on the profile.
    pub async fn record_success(&self, profile_id: &str) -> Result<ProfileRecord, BreakerError> {
        self.update(profile_id, true, |record, _, _| {
            record.record_success();
            Ok(())
        })
        .await
    }

    pub async fn resolve(&self, profile_id: &str) -> Result<ProfileRecord, BreakerError> {
        self.update(profile_id, false, |record, _, _| record.resolve()).await
    }

    pub async fn disable(&self, profile_id: &str) -> Result<ProfileRecord, BreakerError> {
        self.update(profile_id, false, |record, _, _| {
            record.disable();
            Ok(())
        })
        .await
    }

    pub async fn enable(&self, profile_id: &str) -> Result<ProfileRecord, BreakerError> {
        self.update(profile_id, false, |record, _, _| {
            record.enable();
            Ok(())
        })
        .await
    }

    /// Sets (or with `None` clears) the profile's default proxy; the profile becomes known.
    pub async fn set_proxy(
        &self,
        profile_id: &str,
        proxy: Option<crate::egress::route::ProxySpec>,
    ) -> Result<ProfileRecord, BreakerError> {
        self.update(profile_id, true, move |record, _, _| {
            record.proxy = proxy.clone();
            Ok(())
        })
        .await
    }

    /// Reads, changes and writes one record in a single write transaction. `create` makes an
    /// unknown profile known; otherwise it is `NotFound`. A change that fails writes nothing.
    async fn update<F>(&self, profile_id: &str, create: bool, change: F) -> Result<ProfileRecord, BreakerError>
    where
        F: Fn(&mut ProfileRecord, DateTime<Utc>, &dyn Draw) -> Result<(), BreakerError> + Send + Sync + 'static,
    {
        if let Some(fleet) = &self.shared {
            return shared::update(fleet, self.clock.as_ref(), self.draw.as_ref(), profile_id, create, &change).await;
        }
        let db = self.db.clone();
        let clock = self.clock.clone();
        let draw = self.draw.clone();
        let id = profile_id.to_string();
        blocking(move || {
            let txn = db.begin_write()?;
            let existing = {
                let table = txn.open_table(PROFILES)?;
                table.get(id.as_str())?.map(|v| decode(v.value())).transpose()?
            };
            let (write, outcome) = apply(&id, existing, create, clock.now(), draw.as_ref(), &change)?;
            // A failed change writes nothing, except the expired-cooldown reset inside `can_run`.
            if !keeps(&outcome) {
                return Err(outcome.err().unwrap_or(BreakerError::NotFound).into());
            }
            if let Some(record) = write {
                let bytes = serde_json::to_vec(&record).map_err(|e| BreakerError::Store(e.to_string()))?;
                txn.open_table(PROFILES)?.insert(id.as_str(), bytes.as_slice())?;
            }
            txn.commit()?;
            Ok(outcome?)
        })
        .await
    }
}

/// Whether a transition's writes are kept: on success, and on `Unavailable` (which may have
/// ended an expired cooldown).
fn keeps(outcome: &Result<ProfileRecord, BreakerError>) -> bool {
    matches!(outcome, Ok(_) | Err(BreakerError::Unavailable(_)))
}

/// One transition applied to `existing` (a new record if `create`): the changed record (to
/// write, when it changed) and the outcome. Shared by both stores.
fn apply<F>(
    id: &str,
    existing: Option<ProfileRecord>,
    create: bool,
    now: DateTime<Utc>,
    draw: &dyn Draw,
    change: &F,
) -> Result<(Option<ProfileRecord>, Result<ProfileRecord, BreakerError>), BreakerError>
where
    F: Fn(&mut ProfileRecord, DateTime<Utc>, &dyn Draw) -> Result<(), BreakerError>,
{
    let is_new = existing.is_none();
    let mut record = match existing {
        Some(record) => record,
        None if create => ProfileRecord::new(id, now),
        None => return Err(BreakerError::NotFound),
    };
    let before = record.clone();
    let outcome = change(&mut record, now, draw);
    let write = (is_new || record != before).then(|| {
        record.updated_at = now;
        record.clone()
    });
    Ok((write, outcome.map(|_| record)))
}

fn decode(bytes: &[u8]) -> Result<ProfileRecord, BreakerError> {
    serde_json::from_slice(bytes).map_err(|e| BreakerError::Store(format!("unreadable profile record: {e}")))
}

/// Runs redb work off the async threads; redb's errors become `Store` errors.
async fn blocking<T, F>(work: F) -> Result<T, BreakerError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(BreakerError::from),
        Err(e) => Err(BreakerError::Store(format!("store task failed: {e}"))),
    }
}

/// Anything a store closure can fail with.
#[derive(Debug)]
enum StoreError {
    Redb(redb::Error),
    Breaker(BreakerError),
}

impl From<StoreError> for BreakerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Redb(e) => BreakerError::Store(e.to_string()),
            StoreError::Breaker(e) => e,
        }
    }
}

impl From<BreakerError> for StoreError {
    fn from(e: BreakerError) -> Self {
        StoreError::Breaker(e)
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(redb::Error::from(e))
            }
        }
    )*};
}
redb_errors!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

mod shared;
#[cfg(test)]
mod tests;
