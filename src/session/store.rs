//! Session records in the embedded store (`<data_dir>/sessions.redb`): what a restarted worker
//! needs to re-attach each open session (SPEC §3.8). A session's record is written on every
//! change of its state, page, tokens or activity, and removed when it closes.
//!
//! A write is appended to the journal (`journal`) before `put` or `remove` returns: the kernel
//! holds it from then on, so a worker killed a moment later (a crash, `kill -9`) finds it when it
//! starts again. That is the durability sessions need: their browsers outlive the worker
//! process, not the machine. One writer task then takes everything queued (sealing the journal
//! file that holds it), keeps the newest write of each session, commits them in one durable
//! transaction (an fsync, off every request's path) and drops the sealed file. Opening the store
//! applies a journal left behind. `flush` returns once everything sent before it is committed
//! (shutdown and handover call it).

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::journal::{self, Batch, Journal};
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
    #[error("session journal: {0}")]
    Journal(#[from] std::io::Error),
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
    /// A review hold (copilot mode), with what it is for.
    #[serde(default)]
    pub review: Option<String>,
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
    /// The journal; its lock also orders the queue (a write is sent while it is held).
    journal: Arc<Mutex<Journal>>,
    writes: mpsc::UnboundedSender<Write>,
}

impl SessionStore {
    /// Opens (or creates) the store at `path` (its journal beside it) and returns it with the
    /// records it holds, a journal left by a killed worker applied. A record that cannot be read
    /// (an older format, a damaged value) is dropped with a warning. Must run inside a Tokio
    /// runtime (it starts the writer).
    pub fn open(path: &Path) -> Result<(Self, Vec<SessionRecord>), StoreError> {
        let db = Arc::new(Database::create(path)?);
        let txn = db.begin_write()?;
        txn.open_table(SESSIONS)?;
        txn.open_table(WORKER)?;
        txn.commit()?;
        let journal_path = path.with_extension("journal");
        let (left, read) = Journal::read(&journal_path)?;
        commit(&db, left)?;
        let journal = Journal::start(&journal_path, read)?;
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
        let journal = Arc::new(Mutex::new(journal));
        tokio::spawn(write_loop(db.clone(), journal.clone(), queue));
        Ok((Self { db, journal, writes }, records))
    }

    /// Records `record` as the session's newest: journaled when this returns, committed soon.
    pub fn put(&self, record: &SessionRecord) {
        match serde_json::to_vec(record) {
            Ok(bytes) => self.write(journal::line(record.id, Some(&bytes)), Write::Put(record.id, bytes)),
            Err(e) => tracing::warn!(session_id = %record.id, error = %e, "cannot encode a session record"),
        }
    }

    /// Removes a closed session's record (journaled when this returns).
    pub fn remove(&self, id: Uuid) {
        self.write(journal::line(id, None), Write::Remove(id));
    }

    /// Appends `line` to the journal and queues `write` for the writer, in one order.
    fn write(&self, line: Vec<u8>, write: Write) {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = journal.append(&line) {
            tracing::warn!(error = %e, "cannot journal a session record; it is kept at the next commit");
        }
        let _ = self.writes.send(write);
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

/// Commits queued writes in batches until every sender is gone. Each batch is taken with the
/// journal file that holds it sealed (writers journal and send under the same lock, so the
/// sealed file holds exactly this batch's writes), and that file is dropped once committed.
async fn write_loop(db: Arc<Database>, journal: Arc<Mutex<Journal>>, mut queue: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = queue.recv().await {
        let mut batch = Batch::new();
        let mut waiting = Vec::new();
        let sealed = {
            let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
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
            journal.seal().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot seal the session journal; it is applied at the next start");
                None
            })
        };
        let db = db.clone();
        match tokio::task::spawn_blocking(move || commit(&db, batch)).await {
            Ok(Ok(())) => {
                if let Some(sealed) = sealed
                    && let Err(e) = std::fs::remove_file(&sealed)
                {
                    tracing::warn!(error = %e, "cannot remove a committed session journal");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write session records"),
            Err(e) => tracing::warn!(error = %e, "the session store's writer failed"),
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

fn commit(db: &Database, batch: Batch) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: Uuid, title: &str) -> SessionRecord {
        serde_json::from_value(serde_json::json!({
            "id": id, "profile_id": null, "provider": "chromium",
            "created_at": "2026-12-07T00:00:00Z", "expires_at": "2026-12-07T01:00:00Z",
            "idle_timeout_secs": 300, "humanize": "off", "metadata": {}, "callback": null,
            "state": "ready", "block": null, "current_url": "about:blank", "title": title,
            "timing": {"browser_start_ms": 1}, "load_state": null,
            "last_activity_at": "2026-12-07T00:00:00Z", "viewport": null,
            "browser": {"ws_url": "ws://127.0.0.1:1/devtools/browser/x", "page_target": "T",
                        "process": null, "temp_dir": null},
            "display": null, "token_generations": [0, 0, 0, 0], "vnc": null, "live": null,
            "last_event": 0, "task_id": null
        }))
        .unwrap()
    }

    fn titles(records: &[SessionRecord]) -> Vec<(Uuid, String)> {
        let mut titles: Vec<_> = records.iter().map(|r| (r.id, r.title.clone())).collect();
        titles.sort();
        titles
    }

    /// Runs `writes` against a store in a runtime that is dropped right after, before the
    /// writer task ever runs: a worker killed before its commit.
    fn killed_before_commit(path: &Path, writes: impl FnOnce(&SessionStore)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let _entered = runtime.enter();
        let (store, _) = SessionStore::open(path).unwrap();
        writes(&store);
        drop(store);
        drop(_entered);
        drop(runtime);
    }

    #[test]
    fn writes_journaled_before_a_crash_are_found_by_the_next_worker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.redb");
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        killed_before_commit(&path, |store| {
            store.put(&record(a, "first"));
            store.put(&record(b, "b"));
            store.put(&record(a, "newest"));
            store.put(&record(c, "c"));
            store.remove(c);
        });
        assert!(std::fs::metadata(path.with_extension("journal")).unwrap().len() > 0, "nothing was committed");
        killed_before_commit(&path, |_| {});
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _entered = runtime.enter();
        let (_store, records) = SessionStore::open(&path).unwrap();
        assert_eq!(titles(&records), titles(&[record(a, "newest"), record(b, "b")]));
    }

    #[test]
    fn a_commit_empties_the_journal_and_keeps_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.redb");
        let id = Uuid::new_v4();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let (store, _) = SessionStore::open(&path).unwrap();
            store.put(&record(id, "kept"));
            store.flush().await;
            assert_eq!(std::fs::metadata(path.with_extension("journal")).unwrap().len(), 0);
            let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names.len(), 2, "the store and an empty journal, nothing sealed left: {names:?}");
        });
        drop(runtime);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _entered = runtime.enter();
        let (_store, records) = SessionStore::open(&path).unwrap();
        assert_eq!(titles(&records), titles(&[record(id, "kept")]));
    }

    #[test]
    fn sealed_journals_are_applied_in_order_before_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.redb");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let put = |id, title| journal::line(id, Some(&serde_json::to_vec(&record(id, title)).unwrap()));
        // Numbers sort as numbers: 10 comes after 2.
        std::fs::write(path.with_extension("journal.2"), [put(a, "older"), put(b, "b")].concat()).unwrap();
        std::fs::write(path.with_extension("journal.10"), put(a, "newer")).unwrap();
        std::fs::write(path.with_extension("journal"), journal::line(b, None)).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _entered = runtime.enter();
        let (_store, records) = SessionStore::open(&path).unwrap();
        assert_eq!(titles(&records), titles(&[record(a, "newer")]));
        assert!(!path.with_extension("journal.2").exists() && !path.with_extension("journal.10").exists());
    }

    #[test]
    fn a_journal_cut_short_or_damaged_loses_only_its_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.redb");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let whole = serde_json::to_string(&record(a, "whole")).unwrap();
        let cut = serde_json::to_string(&record(b, "cut")).unwrap();
        let journal = format!("put {a} {whole}\nnonsense\nput not-a-uuid {{}}\nput {b} {}", &cut[..cut.len() / 2]);
        std::fs::write(path.with_extension("journal"), journal).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _entered = runtime.enter();
        let (_store, records) = SessionStore::open(&path).unwrap();
        assert_eq!(titles(&records), titles(&[record(a, "whole")]));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.with_extension("journal")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the journal is the worker's alone");
    }
}
