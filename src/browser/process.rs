//! Browser processes: spawned in their own process group, recorded on disk, killed and reaped
//! as a group, and the orphans of a killed worker reaped at the next start.
//!
//! The worker makes itself a child subreaper, so Chromium's helper processes (zygote,
//! renderers) are re-parented to it when their parent dies and can be reaped here instead of
//! lingering as zombies under an init that does not reap.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::BrowserError;
use super::limits::Cage;

/// What is written to `<data_dir>/run/<pgid>.json` while a browser runs.
#[derive(Debug, Serialize, Deserialize)]
struct PidRecord {
    pgid: i32,
    /// Identifies the browser's processes (their `--user-data-dir=`); never deleted from here:
    /// ephemeral dirs live under `<data_dir>/tmp`, which start-up clears as a whole.
    user_data_dir: PathBuf,
    /// For helpers (Xvfb, x11vnc): the command-line argument that identifies them. Browsers are
    /// identified by `--user-data-dir=<user_data_dir>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
}

/// Who a process is: its pid (the group id, for a group leader) and its start time in clock
/// ticks since boot (`/proc/<pid>/stat`), so that a recycled pid is never taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pgid: i32,
    pub start_time: u64,
}

impl ProcessId {
    /// The identity of the running process `pid`; `None` if there is none.
    pub fn of(pid: i32) -> Option<Self> {
        Some(Self { pgid: pid, start_time: stat_of(pid)?.start_time })
    }

    /// True while this very process runs (not a zombie, not a later process with its pid).
    pub fn alive(self) -> bool {
        stat_of(self.pgid).is_some_and(|s| s.start_time == self.start_time && s.state != 'Z')
    }
}

/// A running browser process group owned by this worker.
#[derive(Debug)]
pub struct BrowserProcess {
    pgid: i32,
    /// The leader's start time (with `pgid`, its `ProcessId`).
    start_time: u64,
    /// Cancelled once the group leader has exited and been reaped.
    exited: CancellationToken,
    record: PathBuf,
    /// An ephemeral user-data dir, removed after the group is gone.
    temp_dir: Option<PathBuf>,
    /// Set by `terminate`; a process dropped without it is cleaned up by `Drop`.
    terminated: bool,
    /// The browser's cgroup (limits), removed after the group is gone.
    cage: Option<Arc<Cage>>,
    /// Set when the browser was stopped for exceeding its memory limit.
    limited: Arc<AtomicBool>,
}

/// An exclusive lock on `<data_dir>/worker.lock`, held for the worker's lifetime: two workers
/// sharing a data dir would reap each other's browsers as orphans.
pub struct DataDirLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join("worker.lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Self { _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by another browser-worker", data_dir.display()),
            )),
            Err((_, errno)) => Err(std::io::Error::from(errno)),
        }
    }
}

/// `PATH` of the processes the worker starts.
const CHILD_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A command for a browser or helper process with a cleared environment: the worker's own
/// variables (API keys, secrets, cloud credentials) never reach a process a page can attack.
/// It gets only `PATH` and `HOME` (`home`); callers add what the program needs (`DISPLAY`).
pub fn command(program: &Path, home: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env("PATH", CHILD_PATH).env("HOME", home);
    command
}

/// Makes this process adopt orphaned descendants so that it can reap them.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper; orphaned browser helpers may linger as zombies");
    }
}

/// Where a browser's standard error goes, in its user-data dir (no pipe: a browser outlives
/// the worker that started it, and a pipe would die with the worker).
const STDERR_LOG: &str = "browser-stderr.log";
/// How often a starting browser's `DevToolsActivePort` file is checked (each check is a small
/// read; the mean wait after the file appears is half of this).
const POLL: Duration = Duration::from_millis(5);
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Spawns `command` (a Chromium with `--remote-debugging-port=0` and `user_data_dir`, confined
/// into `cage` by its `pre_exec`) in its own process group, waits for its DevTools URL (from
/// `DevToolsActivePort`) and supervises it. `dead` is cancelled when the process exits.
pub async fn spawn(
    mut command: Command,
    run_dir: &Path,
    user_data_dir: PathBuf,
    ephemeral: bool,
    timeout: Duration,
    dead: CancellationToken,
    cage: Option<Cage>,
) -> Result<(BrowserProcess, String), BrowserError> {
    let temp_dir = ephemeral.then(|| user_data_dir.clone());
    let cleanup = |e: String| {
        if let Some(dir) = &temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        BrowserError::Launch(e)
    };
    // A persistent profile keeps the file of its previous run.
    let port_file = user_data_dir.join("DevToolsActivePort");
    let _ = std::fs::remove_file(&port_file);
    let log_path = user_data_dir.join(STDERR_LOG);
    let log = std::fs::File::create(&log_path).map_err(|e| cleanup(format!("cannot create {STDERR_LOG}: {e}")))?;
    command.process_group(0).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    let cage = cage.map(Arc::new);
    let mut child = command.spawn().map_err(|e| {
        if let Some(cage) = &cage {
            cage.remove();
        }
        cleanup(format!("cannot run the browser: {e}"))
    })?;
    let pgid = child.id().map(|id| id as i32).unwrap_or_default();
    let record = run_dir.join(format!("{pgid}.json"));
    let exited = CancellationToken::new();
    let start_time = stat_of(pgid).map_or(0, |s| s.start_time);
    // Made before the first await, so that a cancelled launch kills the whole group (`Drop`).
    let process = BrowserProcess::new(pgid, start_time, exited.clone(), record, temp_dir, cage);
    write_record(&process.record, &PidRecord { pgid, user_data_dir, marker: None }).await;
    let watcher_exit = exited.clone();
    tokio::spawn(async move {
        let _ = child.wait().await;
        watcher_exit.cancel();
        dead.cancel();
    });

    let found = tokio::time::timeout(timeout, async {
        loop {
            if let Some(ws_url) = devtools_url(&port_file) {
                return Some(ws_url);
            }
            tokio::select! {
                _ = exited.cancelled() => return devtools_url(&port_file),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    })
    .await;
    match found {
        Ok(Some(ws_url)) => Ok((process, ws_url)),
        Ok(None) => {
            let output = std::fs::read(&log_path).unwrap_or_default();
            let output = String::from_utf8_lossy(&output);
            let lines: Vec<&str> = output.lines().take(20).collect();
            process.terminate().await;
            Err(BrowserError::Launch(format!("the browser exited during start-up: {}", lines.join(" | "))))
        }
        Err(_) => {
            process.terminate().await;
            Err(BrowserError::Timeout("browser launch"))
        }
    }
}

/// The DevTools URL a Chromium wrote to `DevToolsActivePort` ("PORT\n/devtools/browser/ID"),
/// once the file is complete.
fn devtools_url(port_file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(port_file).ok()?;
    let mut lines = text.lines();
    let port: u16 = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    path.starts_with("/devtools/browser/").then(|| format!("ws://127.0.0.1:{port}{path}"))
}

/// Takes over a process group an earlier run of the worker started (a session re-attached
/// after a restart): `None` unless its leader is still the recorded process. The worker is not
/// its parent, so exit is noticed by watching `/proc` (`dead` fires then); `terminate` kills
/// and waits for it as for a child. The pid record in `run_dir` is kept and removed as usual.
pub fn adopt(
    id: ProcessId,
    run_dir: &Path,
    temp_dir: Option<PathBuf>,
    dead: CancellationToken,
    cage: Option<Cage>,
) -> Option<BrowserProcess> {
    if !id.alive() {
        return None;
    }
    let exited = CancellationToken::new();
    let watcher_exit = exited.clone();
    tokio::spawn(async move {
        while id.alive() {
            tokio::time::sleep(WATCH_EVERY).await;
        }
        watcher_exit.cancel();
        dead.cancel();
    });
    let record = run_dir.join(format!("{}.json", id.pgid));
    Some(BrowserProcess::new(id.pgid, id.start_time, exited, record, temp_dir, cage.map(Arc::new)))
}

/// Spawns a helper process (Xvfb, x11vnc) in its own process group with a pid record, so that it
/// is killed and reaped like a browser (and reaped at start-up if its session has no record).
/// `marker` is an argument of its command line that identifies it; `dead` fires when it exits.
/// Its output goes nowhere: a pipe would die with the worker, and the helper with it.
pub async fn spawn_helper(
    mut command: Command,
    run_dir: &Path,
    marker: &str,
    dead: CancellationToken,
) -> std::io::Result<BrowserProcess> {
    command.process_group(0).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = command.spawn()?;
    let pgid = child.id().map(|id| id as i32).unwrap_or_default();
    let start_time = stat_of(pgid).map_or(0, |s| s.start_time);
    let record = run_dir.join(format!("{pgid}.json"));
    let exited = CancellationToken::new();
    let watcher_exit = exited.clone();
    tokio::spawn(async move {
        let _ = child.wait().await;
        watcher_exit.cancel();
        dead.cancel();
    });
    // The process (whose `Drop` kills the group) exists before the first await.
    let process = BrowserProcess::new(pgid, start_time, exited, record, None, None);
    write_record(&process.record, &PidRecord { pgid, user_data_dir: PathBuf::new(), marker: Some(marker.to_string()) })
        .await;
    Ok(process)
}

/// Writes a pid record (best effort: without it only the start-up reaping of orphans is lost).
async fn write_record(path: &Path, record: &PidRecord) {
    if let Ok(json) = serde_json::to_vec(record) {
        let _ = tokio::fs::write(path, json).await;
    }
}

impl BrowserProcess {
    /// A supervised group; with a watched `cage`, a browser whose cgroup sees an OOM kill is
    /// stopped whole and marked `limited`.
    fn new(
        pgid: i32,
        start_time: u64,
        exited: CancellationToken,
        record: PathBuf,
        temp_dir: Option<PathBuf>,
        cage: Option<Arc<Cage>>,
    ) -> Self {
        let limited = Arc::new(AtomicBool::new(false));
        if let Some(cage) = cage.clone().filter(|c| c.watched()) {
            tokio::spawn(watch_limits(pgid, cage, exited.clone(), limited.clone()));
        }
        Self { pgid, start_time, exited, record, temp_dir, terminated: false, cage, limited }
    }

    /// Set once the browser was stopped for exceeding its memory limit.
    pub fn limited(&self) -> Arc<AtomicBool> {
        self.limited.clone()
    }

    /// The browser's cgroup name, for a session record.
    pub fn cage_name(&self) -> Option<String> {
        self.cage.as_ref().and_then(|c| c.name())
    }

    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// The group leader's identity, for a session record.
    pub fn id(&self) -> ProcessId {
        ProcessId { pgid: self.pgid, start_time: self.start_time }
    }

    /// The ephemeral user-data dir removed with the group, if any.
    pub fn temp_dir(&self) -> Option<&Path> {
        self.temp_dir.as_deref()
    }

    /// Leaves the group running, its pid record and temp dir in place, for the next worker
    /// (handover at exit): nothing is killed or removed when it drops.
    pub fn detach(mut self) {
        self.terminated = true;
    }

    /// Waits up to `limit` for the group leader to exit on its own.
    pub async fn wait_exit(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.exited.cancelled()).await;
    }

    /// Asks the group to exit (SIGTERM), waits up to `grace`, then terminates it like
    /// `terminate`. For helpers that clean up after themselves (x11vnc's shared memory, Xvfb's
    /// lock file).
    pub async fn terminate_gracefully(self, grace: Duration) {
        signal_group(self.pgid, Signal::SIGTERM);
        self.wait_exit(grace).await;
        self.terminate().await;
    }

    /// Kills the group, reaps every member, removes the temp dir and the pid record.
    pub async fn terminate(mut self) {
        kill_group(self.pgid);
        self.wait_exit(Duration::from_secs(5)).await;
        reap_group(self.pgid).await;
        if let Some(dir) = &self.temp_dir {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
        let _ = tokio::fs::remove_file(&self.record).await;
        if let Some(cage) = &self.cage {
            cage.remove();
        }
        reap_crash_handlers().await;
        self.terminated = true;
    }
}

impl Drop for BrowserProcess {
    /// Backstop for a process dropped without `terminate` (a cancelled launch or request):
    /// kill the group, then reap and clean up on a short-lived thread.
    fn drop(&mut self) {
        if self.terminated {
            return;
        }
        kill_group(self.pgid);
        let (pgid, temp_dir, record, cage) = (self.pgid, self.temp_dir.take(), self.record.clone(), self.cage.take());
        std::thread::spawn(move || {
            for _ in 0..REAP_TRIES {
                if reap_pass(pgid, true) {
                    break;
                }
                std::thread::sleep(REAP_PAUSE);
            }
            if let Some(dir) = temp_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            if let Some(cage) = cage {
                cage.remove();
            }
            let _ = std::fs::remove_file(record);
        });
    }
}

/// How often a browser's cgroup is checked for OOM kills.
const LIMIT_EVERY: Duration = Duration::from_millis(500);

/// Stops group `pgid` whole once its cgroup saw an OOM kill (cgroup v1 kills one process, the
/// biggest renderer, and leaves a browser with a dead tab), and marks it `limited`.
async fn watch_limits(pgid: i32, cage: Arc<Cage>, exited: CancellationToken, limited: Arc<AtomicBool>) {
    let before = cage.oom_kills();
    loop {
        tokio::select! {
            _ = exited.cancelled() => return,
            _ = tokio::time::sleep(LIMIT_EVERY) => {}
        }
        if cage.oom_kills() > before {
            tracing::warn!(pgid, "browser reached its memory limit; stopped");
            limited.store(true, Ordering::SeqCst);
            kill_group(pgid);
            return;
        }
    }
}

/// Sends SIGKILL to process group `pgid` (ignored if it is gone).
pub fn kill_group(pgid: i32) {
    signal_group(pgid, Signal::SIGKILL);
}

fn signal_group(pgid: i32, signal: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

/// One line of `/proc/<pid>/stat`, the fields we need.
struct ProcStat {
    pid: i32,
    state: char,
    ppid: i32,
    pgrp: i32,
    comm: String,
    /// Clock ticks after boot when the process started (field 22).
    start_time: u64,
}

/// `/proc/<pid>/stat` of one process.
fn stat_of(pid: i32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp …": comm may hold spaces, so split after the last ')'.
    let close = stat.rfind(')')?;
    let comm = stat.get(stat.find('(')? + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // Fields after comm start at 3 (state); start time is field 22.
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        comm,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn proc_stats() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).filter_map(stat_of).collect()
}

/// How often, and how far apart, a dying group is checked (about 2 s in all).
const REAP_TRIES: usize = 80;
const REAP_PAUSE: Duration = Duration::from_millis(25);

/// One pass: reaps (without blocking) every member of group `pgid` that this process adopted,
/// and says whether the group is gone. `with_leader` is false while a watcher task owns the
/// leader's `Child` and reaps it itself.
fn reap_pass(pgid: i32, with_leader: bool) -> bool {
    let me = std::process::id() as i32;
    let members: Vec<ProcStat> = proc_stats().into_iter().filter(|p| p.pgrp == pgid).collect();
    for member in members.iter().filter(|p| p.ppid == me && (with_leader || p.pid != pgid)) {
        let _ = waitpid(Pid::from_raw(member.pid), Some(WaitPidFlag::WNOHANG));
    }
    // Members of an adopted group (a session re-attached after a restart) are not our children:
    // their zombies are their parent's to reap.
    members.iter().all(|p| p.state == 'Z' && p.ppid != me)
}

/// Runs a `/proc` scan (`proc_stats` reads a file per process) on a blocking thread, off the
/// runtime's workers; `None` if it panicked.
async fn off_runtime<T: Send + 'static>(scan: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(scan).await.ok()
}

/// Waits until no process of group `pgid` remains, killing and reaping what is left.
async fn reap_group(pgid: i32) {
    for _ in 0..REAP_TRIES {
        if off_runtime(move || reap_pass(pgid, false)).await.unwrap_or(false) {
            return;
        }
        kill_group(pgid);
        tokio::time::sleep(REAP_PAUSE).await;
    }
    tracing::warn!(pgid, "browser process group still has members after kill");
}

/// Reaps zombies of group `pgid` that this process adopted, including a former leader.
/// For callers that watched a worker die (tests, supervisors).
pub fn reap_adopted(pgid: i32) {
    reap_pass(pgid, true);
}

/// Reaps exited Chromium crash handlers adopted by this process. Chromium starts
/// `chrome_crashpad_handler` with a double fork into its own session, outside the browser's
/// process group; it exits with the browser and is re-parented here (we are a subreaper).
/// Live handlers are untouched: `WNOHANG` returns at once for them. The scan runs on a blocking
/// thread.
pub async fn reap_crash_handlers() {
    off_runtime(|| {
        let me = std::process::id() as i32;
        for stray in proc_stats().into_iter().filter(|p| p.ppid == me && p.comm.starts_with("chrome_crashpad")) {
            let _ = waitpid(Pid::from_raw(stray.pid), Some(WaitPidFlag::WNOHANG));
        }
    })
    .await;
}

/// Kills browsers recorded by a previous run of the worker that are still alive, and removes
/// their records, except the groups in `keep` (those of sessions being re-attached). Nothing a
/// record names is deleted: a record is only a file, and a file in `run/` may not be the
/// worker's own (the caller clears `<data_dir>/tmp`, where every ephemeral dir lives). Returns
/// the process groups that were killed.
pub fn reap_orphans(run_dir: &Path, keep: &std::collections::HashSet<i32>) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(run_dir) else { return Vec::new() };
    let stats = proc_stats();
    let mut killed = Vec::new();
    let mut helpers = Vec::new();
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let Some(record) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<PidRecord>(&b).ok()) else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        if keep.contains(&record.pgid) {
            continue;
        }
        let marker =
            record.marker.clone().unwrap_or_else(|| format!("--user-data-dir={}", record.user_data_dir.display()));
        // Only kill a group whose members still carry our user-data dir (pids get reused).
        let ours = stats.iter().filter(|p| p.pgrp == record.pgid).any(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| String::from_utf8_lossy(&c).split('\0').any(|arg| arg == marker))
        });
        if ours {
            if record.marker.is_some() {
                // Helpers get SIGTERM first: a killed x11vnc leaks its SysV shared memory.
                signal_group(record.pgid, Signal::SIGTERM);
                helpers.push((record.pgid, record.marker.clone()));
            } else {
                kill_group(record.pgid);
            }
            killed.push(record.pgid);
        }
        let _ = std::fs::remove_file(&path);
    }
    if !helpers.is_empty() {
        for _ in 0..REAP_TRIES {
            let live = proc_stats();
            if !helpers.iter().any(|(pgid, _)| live.iter().any(|p| p.pgrp == *pgid && p.state != 'Z')) {
                break;
            }
            std::thread::sleep(REAP_PAUSE);
        }
        for (pgid, marker) in &helpers {
            kill_group(*pgid);
            remove_x_lock(marker.as_deref(), *pgid);
        }
    }
    killed
}

/// Removes the lock file and socket of an X server killed by `reap_orphans` (a killed Xvfb
/// cannot); only if the lock names that very process.
fn remove_x_lock(marker: Option<&str>, pid: i32) {
    let Some(number) = marker.and_then(|m| m.strip_prefix(':')).and_then(|n| n.parse::<u32>().ok()) else { return };
    let lock = format!("/tmp/.X{number}-lock");
    if std::fs::read_to_string(&lock).is_ok_and(|holder| holder.trim() == pid.to_string()) {
        let _ = std::fs::remove_file(&lock);
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{number}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake browser: a shell script in `dir` (its user-data dir).
    fn fake_browser(script: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(script);
        command
    }

    #[tokio::test]
    async fn the_devtools_url_comes_from_the_port_file_and_start_up_errors_from_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let udd = dir.path().to_path_buf();
        let limit = Duration::from_secs(20);
        // Written in two steps, as a slow writer would: a half-written file is not taken.
        let script = format!(
            "printf '9' > '{0}/DevToolsActivePort'; sleep 0.2; printf '9\\n/devtools/browser/x' > '{0}/DevToolsActivePort'; exec sleep 30",
            udd.display()
        );
        let dead = CancellationToken::new();
        let (process, ws_url) =
            spawn(fake_browser(&script), dir.path(), udd.clone(), false, limit, dead.clone(), None).await.unwrap();
        assert_eq!(ws_url, "ws://127.0.0.1:9/devtools/browser/x");
        assert!(process.id().alive());
        let id = process.id();
        process.terminate().await;
        assert!(!id.alive() && dead.is_cancelled());

        let failing = "echo 'no display' >&2; exit 1";
        let error = spawn(fake_browser(failing), dir.path(), udd, false, limit, CancellationToken::new(), None).await;
        let Err(error) = error else { panic!("a browser that exits without a port fails") };
        let error = error.to_string();
        assert!(error.contains("exited during start-up: no display"), "{error}");
    }

    #[tokio::test]
    async fn an_adopted_group_is_watched_and_killed_and_a_recycled_pid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let id = ProcessId::of(child.id().unwrap() as i32).unwrap();
        let stranger = ProcessId { start_time: id.start_time + 1, ..id };
        assert!(adopt(stranger, dir.path(), None, CancellationToken::new(), None).is_none(), "another start time");

        let dead = CancellationToken::new();
        let adopted = adopt(id, dir.path(), None, dead.clone(), None).expect("the live group is adopted");
        kill_group(id.pgid);
        child.wait().await.unwrap();
        let noticed = tokio::time::timeout(Duration::from_secs(10), dead.cancelled()).await;
        assert!(noticed.is_ok(), "the exit of an adopted process is noticed");
        adopted.terminate().await;
    }
}
