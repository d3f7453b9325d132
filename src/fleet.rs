//! Fleet mode (SPEC §3.9): workers that share one Redis (`BW_REDIS_URL`). Each worker
//! announces itself (a heartbeat key with a TTL: its public URL, free slots, drain state), holds
//! a lease per open profile (so two workers never run one profile at once), and names the
//! sessions it holds (so another worker can send a caller there with a 307). Without Redis
//! nothing here runs.
//!
//! Keys, under `BW_FLEET_PREFIX` (`bw`): `{p}:worker:{id}` (JSON `WorkerInfo`),
//! `{p}:lease:{profile}` (`{worker}/{session}`), `{p}:session:{id}` (worker id). All expire
//! after `BW_FLEET_TTL_SECS` unless renewed (every third of it), so a worker that dies (`kill -9`) lets go by itself. Every call
//! has a deadline: Redis slow or gone costs a bounded wait and a clear error, never a hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::SessionId;

/// Deadline of one Redis call.
const CALL_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("BW_REDIS_URL is not a Redis URL: {0}")]
    Url(String),
    #[error("the fleet store (Redis) is unreachable: {0}")]
    Unavailable(String),
    #[error("profile {profile} is in use by session {session_id} on worker {worker_id}")]
    Held { profile: String, worker_id: String, session_id: String },
}

/// What a worker announces to the fleet.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerInfo {
    pub worker_id: String,
    /// Base of its API and links (`BW_PUBLIC_URL`).
    pub public_url: String,
    pub max_sessions: usize,
    pub active_sessions: usize,
    pub free_slots: usize,
    pub draining: bool,
    pub version: String,
    /// When this worker last renewed its entry.
    pub last_seen: chrono::DateTime<chrono::Utc>,
}

/// Renews a lease only for its holder (so a lease that expired and was taken by another worker
/// is not stolen back): 1 if renewed, 0 if lost.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0"#;
/// Writes ARGV[2] to KEYS[1] only if it still holds ARGV[1] ("" for absent): one atomic
/// step of a read-change-write (the breaker's transitions).
const SWAP: &str = r#"
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0"#;
/// Deletes a lease only for its holder.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0"#;

/// This worker's connection to the fleet.
pub struct Fleet {
    conn: ConnectionManager,
    /// How long keys live without renewal.
    ttl: Duration,
    prefix: String,
    worker_id: String,
    reachable: AtomicBool,
    renew: redis::Script,
    release: redis::Script,
    swap: redis::Script,
}

impl Fleet {
    /// Connects lazily: a worker starts while Redis is down and joins once it answers.
    pub fn new(url: &str, worker_id: String, prefix: String, ttl: Duration) -> Result<Self, FleetError> {
        let client = redis::Client::open(url).map_err(|e| FleetError::Url(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_LIMIT))
            .set_response_timeout(Some(CALL_LIMIT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = client.get_connection_manager_lazy(config).map_err(|e| FleetError::Url(e.to_string()))?;
        Ok(Self {
            conn,
            ttl,
            prefix,
            worker_id,
            reachable: AtomicBool::new(false),
            renew: redis::Script::new(RENEW),
            release: redis::Script::new(RELEASE),
            swap: redis::Script::new(SWAP),
        })
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// How often heartbeats and leases are renewed.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Whether the last call reached Redis.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::SeqCst)
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    fn holder(&self, session: SessionId) -> String {
        format!("{}/{session}", self.worker_id)
    }

    /// Runs one call with the deadline, and records whether Redis answered.
    async fn call<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, FleetError> {
        let result = match tokio::time::timeout(CALL_LIMIT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(FleetError::Unavailable(format!("{what}: {e}"))),
            Err(_) => Err(FleetError::Unavailable(format!("{what}: no answer within {CALL_LIMIT:?}"))),
        };
        let answered = result.is_ok();
        if self.reachable.swap(answered, Ordering::SeqCst) != answered {
            match &result {
                Ok(_) => tracing::info!("the fleet store answers again"),
                Err(e) => tracing::warn!(error = %e, "the fleet store is unreachable"),
            }
        }
        result
    }

    /// Announces this worker and renews the directory entries of its open sessions.
    pub async fn heartbeat(&self, info: &WorkerInfo, sessions: &[SessionId]) -> Result<(), FleetError> {
        let json = serde_json::to_string(info).map_err(|e| FleetError::Unavailable(e.to_string()))?;
        let ttl = self.ttl.as_secs();
        let mut pipe = redis::pipe();
        pipe.set_ex(self.key("worker", &self.worker_id), json, ttl).ignore();
        for session in sessions {
            pipe.set_ex(self.key("session", &session.to_string()), &self.worker_id, ttl).ignore();
        }
        let mut conn = self.conn.clone();
        self.call("heartbeat", pipe.query_async::<()>(&mut conn)).await
    }

    /// Every worker whose heartbeat is current.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, FleetError> {
        let values = self.values("worker").await?;
        let mut workers: Vec<WorkerInfo> = values.iter().filter_map(|v| serde_json::from_str(v).ok()).collect();
        workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        Ok(workers)
    }

    /// The value of the shared record `kind`/`name` (e.g. a profile's breaker).
    pub async fn value(&self, kind: &str, name: &str) -> Result<Option<String>, FleetError> {
        let mut conn = self.conn.clone();
        self.call("reading a shared record", conn.get(self.key(kind, name))).await
    }

    /// Replaces the shared record `kind`/`name` with `new` if it still is `old` (`None`:
    /// absent); `Ok(false)` when another writer was first.
    pub async fn swap(&self, kind: &str, name: &str, old: Option<&str>, new: &str) -> Result<bool, FleetError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.swap.key(self.key(kind, name));
        invocation.arg(old.unwrap_or("")).arg(new);
        let swapped: i64 = self.call("writing a shared record", invocation.invoke_async(&mut conn)).await?;
        Ok(swapped == 1)
    }

    /// The values of every record of `kind`.
    pub async fn values(&self, kind: &str) -> Result<Vec<String>, FleetError> {
        let mut conn = self.conn.clone();
        let pattern = self.key(kind, "*");
        let keys: Vec<String> = self
            .call("listing shared records", async {
                let mut keys = Vec::new();
                let mut iter = conn.scan_match::<_, String>(&pattern).await?;
                while let Some(key) = futures::StreamExt::next(&mut iter).await {
                    keys.push(key?);
                }
                Ok(keys)
            })
            .await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = self.call("reading shared records", conn.mget(&keys)).await?;
        Ok(values.into_iter().flatten().collect())
    }

    /// Takes the lease of `profile` for `session`, or says who holds it.
    pub async fn acquire(&self, profile: &str, session: SessionId) -> Result<(), FleetError> {
        let key = self.key("lease", profile);
        let mut conn = self.conn.clone();
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(self.ttl.as_millis() as u64));
        let taken: Option<String> =
            self.call("taking a profile lease", conn.set_options(&key, self.holder(session), options)).await?;
        if taken.is_some() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let holder: Option<String> = self.call("reading a profile lease", conn.get(&key)).await?;
        let holder = holder.unwrap_or_default();
        let (worker_id, session_id) = holder.split_once('/').unwrap_or((holder.as_str(), ""));
        Err(FleetError::Held {
            profile: profile.to_string(),
            worker_id: worker_id.to_string(),
            session_id: session_id.to_string(),
        })
    }

    /// Renews the lease of `profile` held by `session`: `Ok(false)` when it was lost (expired,
    /// taken by another worker, or Redis was flushed).
    pub async fn renew(&self, profile: &str, session: SessionId) -> Result<bool, FleetError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.renew.key(self.key("lease", profile));
        invocation.arg(self.holder(session)).arg(self.ttl.as_millis() as u64);
        let renewed: i64 = self.call("renewing a profile lease", invocation.invoke_async(&mut conn)).await?;
        Ok(renewed == 1)
    }

    /// Gives the lease back (best effort: it expires anyway).
    pub async fn release(&self, profile: &str, session: SessionId) {
        let mut conn = self.conn.clone();
        let mut invocation = self.release.key(self.key("lease", profile));
        invocation.arg(self.holder(session));
        if let Err(e) = self.call::<i64>("releasing a profile lease", invocation.invoke_async(&mut conn)).await {
            tracing::warn!(profile, error = %e, "lease not released; it expires by itself");
        }
    }

    /// The worker that holds `session`, if another worker of the fleet announced it.
    pub async fn locate(&self, session: SessionId) -> Result<Option<WorkerInfo>, FleetError> {
        let mut conn = self.conn.clone();
        let worker: Option<String> =
            self.call("locating a session", conn.get(self.key("session", &session.to_string()))).await?;
        let Some(worker) = worker.filter(|w| *w != self.worker_id) else { return Ok(None) };
        let mut conn = self.conn.clone();
        let info: Option<String> = self.call("reading a worker", conn.get(self.key("worker", &worker))).await?;
        Ok(info.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Announces a new session at once (the heartbeat renews it).
    pub async fn hold(&self, session: SessionId) -> Result<(), FleetError> {
        let mut conn = self.conn.clone();
        let key = self.key("session", &session.to_string());
        self.call("announcing a session", conn.set_ex::<_, _, ()>(key, &self.worker_id, self.ttl.as_secs())).await
    }

    /// Removes a closed session from the directory (best effort: it expires anyway).
    pub async fn forget(&self, session: SessionId) {
        let mut conn = self.conn.clone();
        let key = self.key("session", &session.to_string());
        let _ = self.call::<()>("forgetting a session", conn.del(key)).await;
    }
}
