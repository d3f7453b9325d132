//! The per-profile circuit breaker (seed §9), persisted in redb under the data dir.
//!
//! States: `healthy` → `cooling` (after a block, for a tiered cooldown) → `needs_human` (3
//! consecutive blocks) → `disabled` (5 consecutive failures, or by hand). A success clears the
//! failures, lowers the blocks by one and ends a cooldown. Cooldowns: 1 block draws 15–30 min,
//! 2 blocks 2–6 h, each then scaled by a ±20% jitter, so 720–2160 s and 5760–25920 s.
//!
//! The state machine (`state.rs`: [`ProfileRecord::record_block`] and friends) is pure: the time and the
//! random draws are passed in. [`Breaker`] owns the store, the injected [`Clock`] and
//! [`Draw`], and applies every change in one redb write transaction (writers are serialised,
//! so concurrent updates never lose one; a commit is durable before the call returns).

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::guard::BlockReason;

mod state;
pub use state::{BLOCKS_FOR_HUMAN, FAILURES_FOR_DISABLE, ProfileRecord, ProfileState, Unavailable, cooldown};

/// profile id → JSON of its [`ProfileRecord`].
const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");

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
