//! Session records in the embedded store (`<data_dir>/sessions.redb`): what a restarted worker
//! needs to re-attach each open session (SPEC §3.8). A session's record is written on every
//! change of its state, page, tokens or activity, and removed when it closes.
//!
//! Writes never wait: they go to one writer task, which takes everything queued, keeps the
//! newest write of each session and commits them in one transaction (a durable commit). `flush`
//! returns once everything sent before it is committed (shutdown and handover call it).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{LiveAccess, SessionState, Timing, VncAccess};
use crate::browser::SavedBrowser;
use crate::browser::display::SavedDisplay;
use crate::browser::humanize::Humanize;
use crate::browser::navigation::LoadState;
use crate::guard::Block;

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Facts about the worker itself (the egress proxy's port) that its browsers depend on.
const WORKER: TableDefinition<&str, &[u8]> = TableDefinition::new("worker");

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store: {0}")]
    Db(#[from] redb::Error),
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(impl From<$t> for StoreError {
        fn from(e: $t) -> Self { Self::Db(e.into()) }
    })*};
}
db_errors!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// Everything a restarted worker needs to re-attach a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: Uuid,
    pub profile_id: Option<String>,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_secs: u64,
    pub humanize: Humanize,
    pub metadata: Map<String, Value>,
    /// The webhook (URL and bearer token).
    pub callback: Option<(String, Option<String>)>,
    pub state: SessionState,
    pub block: Option<Block>,
    pub current_url: String,
    pub title: String,
    pub timing: Timing,
    pub load_state: Option<LoadState>,
    pub last_activity_at: DateTime<Utc>,
    /// The viewport set at opening (an emulation a new DevTools connection must set again).
    pub viewport: Option<(u32, u32)>,
    pub browser: SavedBrowser,
    pub display: Option<SavedDisplay>,
    /// The newest token generation per scope (older tokens stay refused).
    pub token_generations: [u64; 4],
    pub vnc: Option<VncAccess>,
    pub live: Option<LiveAccess>,
    /// The number of the last event (later ones go on from it).
    pub last_event: u64,
    pub task_id: Option<String>,
}

enum Write {
    Put(Uuid, Vec<u8>),
    Remove(Uuid),
    Flush(oneshot::Sender<()>),
}

/// The session records and the task that writes them.
pub struct SessionStore {
    db: Arc<Database>,
    writes: mpsc::UnboundedSender<Write>,
}

impl SessionStore {
    /// Opens (or creates) the store and returns it with the records it holds. A record that
    /// cannot be read (an older format, a damaged value) is dropped with a warning. Must run
    /// inside a Tokio runtime (it starts the writer).
    pub fn open(path: &Path) -> Result<(Self, Vec<SessionRecord>), StoreError> {
        let db = Arc::new(Database::create(path)?);
        let txn = db.begin_write()?;
        txn.open_table(SESSIONS)?;
        txn.open_table(WORKER)?;
        txn.commit()?;
        let mut records = Vec::new();
        let mut unreadable = Vec::new();
        {
            let txn = db.begin_read()?;
            let table = txn.open_table(SESSIONS)?;
            for entry in table.iter()? {
                let (key, value) = entry?;
                match serde_json::from_slice::<SessionRecord>(value.value()) {
                    Ok(record) => records.push(record),
                    Err(e) => {
                        tracing::warn!(session_id = key.value(), error = %e, "unreadable session record dropped");
                        unreadable.push(key.value().to_string());
                    }
                }
            }
        }
        if !unreadable.is_empty() {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(SESSIONS)?;
                for key in &unreadable {
                    table.remove(key.as_str())?;
                }
            }
            txn.commit()?;
        }
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(db.clone(), queue));
        Ok((Self { db, writes }, records))
    }

    /// Queues `record` as the session's newest.
    pub fn put(&self, record: &SessionRecord) {
        match serde_json::to_vec(record) {
            Ok(bytes) => {
                let _ = self.writes.send(Write::Put(record.id, bytes));
            }
            Err(e) => tracing::warn!(session_id = %record.id, error = %e, "cannot encode a session record"),
        }
    }

    /// Queues the removal of a closed session's record.
    pub fn remove(&self, id: Uuid) {
        let _ = self.writes.send(Write::Remove(id));
    }

    /// Waits until every write queued before this call is committed.
    pub async fn flush(&self) {
        let (done, committed) = oneshot::channel();
        if self.writes.send(Write::Flush(done)).is_ok() {
            let _ = committed.await;
        }
    }

    /// A value about the worker (written with `set_worker_value`).
    pub fn worker_value(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WORKER)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    pub fn set_worker_value(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(WORKER)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }
}

/// Commits queued writes in batches until every sender is gone.
async fn write_loop(db: Arc<Database>, mut queue: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = queue.recv().await {
        let mut batch: HashMap<Uuid, Option<Vec<u8>>> = HashMap::new();
        let mut waiting = Vec::new();
        let mut next = Some(first);
        while let Some(write) = next {
            match write {
                Write::Put(id, bytes) => {
                    batch.insert(id, Some(bytes));
                }
                Write::Remove(id) => {
                    batch.insert(id, None);
                }
                Write::Flush(done) => waiting.push(done),
            }
            next = queue.try_recv().ok();
        }
        let db = db.clone();
        let committed = tokio::task::spawn_blocking(move || commit(&db, batch)).await;
        if let Ok(Err(e)) = committed {
            tracing::warn!(error = %e, "cannot write session records");
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

fn commit(db: &Database, batch: HashMap<Uuid, Option<Vec<u8>>>) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(SESSIONS)?;
        for (id, value) in &batch {
            let key = id.to_string();
            match value {
                Some(bytes) => {
                    table.insert(key.as_str(), bytes.as_slice())?;
                }
                None => {
                    table.remove(key.as_str())?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}
