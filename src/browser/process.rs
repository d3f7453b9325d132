//! Browser processes: spawned in their own process group, recorded on disk, killed and reaped
//! as a group, and the orphans of a killed worker reaped at the next start.
//!
//! The worker makes itself a child subreaper, so Chromium's helper processes (zygote,
//! renderers) are re-parented to it when their parent dies and can be reaped here instead of
//! lingering as zombies under an init that does not reap.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::BrowserError;

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

/// A running browser process group owned by this worker.
#[derive(Debug)]
pub struct BrowserProcess {
    pgid: i32,
    /// Cancelled once the group leader has exited and been reaped.
    exited: CancellationToken,
    record: PathBuf,
    /// An ephemeral user-data dir, removed after the group is gone.
    temp_dir: Option<PathBuf>,
    /// Set by `terminate`; a process dropped without it is cleaned up by `Drop`.
    terminated: bool,
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

/// Spawns `command` in its own process group, waits for its DevTools URL and supervises it.
/// `dead` is cancelled when the process exits.
pub async fn spawn(
    mut command: Command,
    run_dir: &Path,
    user_data_dir: PathBuf,
    ephemeral: bool,
    timeout: Duration,
    dead: CancellationToken,
) -> Result<(BrowserProcess, String), BrowserError> {
    command.process_group(0).kill_on_drop(true).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let temp_dir = ephemeral.then(|| user_data_dir.clone());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            if let Some(dir) = &temp_dir {
                let _ = tokio::fs::remove_dir_all(dir).await;
            }
            return Err(BrowserError::Launch(format!("cannot run the browser: {e}")));
        }
    };
    let pgid = child.id().map(|id| id as i32).unwrap_or_default();
    let record = run_dir.join(format!("{pgid}.json"));
    let exited = CancellationToken::new();
    // Made before the first await, so that a cancelled launch kills the whole group (`Drop`).
    let process = BrowserProcess { pgid, exited: exited.clone(), record, temp_dir, terminated: false };
    write_record(&process.record, &PidRecord { pgid, user_data_dir, marker: None }).await;

    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = OutputLines::new(stderr);
    let mut seen = Vec::new();
    let found = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await {
            if let Some((_, ws)) = line.rsplit_once("listening on ")
                && ws.starts_with("ws")
            {
                return Some(ws.trim().to_string());
            }
            if seen.len() < 20 {
                seen.push(line);
            }
        }
        None
    })
    .await;

    let watcher_exit = exited.clone();
    tokio::spawn(async move {
        let _ = child.wait().await;
        watcher_exit.cancel();
        dead.cancel();
    });
    match found {
        Ok(Some(ws_url)) => {
            // Keep draining stderr so that Chromium never blocks on a full pipe.
            lines.drain();
            Ok((process, ws_url))
        }
        Ok(None) => {
            process.terminate().await;
            Err(BrowserError::Launch(format!("the browser exited during start-up: {}", seen.join(" | "))))
        }
        Err(_) => {
            process.terminate().await;
            Err(BrowserError::Timeout("browser launch"))
        }
    }
}

/// A child's output read line by line as bytes: a line that is not UTF-8 is decoded lossily
/// instead of ending the read (`AsyncBufReadExt::lines` fails on it, and a reader that stops
/// closes the pipe: the child dies of SIGPIPE or loses its output).
pub struct OutputLines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin + Send + 'static> OutputLines<R> {
    /// Reads `output` (a child's piped stdout or stderr).
    pub fn new(output: R) -> Self {
        Self { reader: BufReader::new(output), line: Vec::new() }
    }

    /// The next line without its line ending, lossily decoded; `None` at the end of the output
    /// or on a read error.
    pub async fn next_line(&mut self) -> Option<String> {
        self.line.clear();
        match self.reader.read_until(b'\n', &mut self.line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                Some(String::from_utf8_lossy(line).into_owned())
            }
        }
    }

    /// Reads and discards the rest of the output, whatever its bytes, until the child closes it
    /// (or reading fails), so that the child never blocks on a full pipe. The task ends with the
    /// number of bytes drained.
    pub fn drain(self) -> tokio::task::JoinHandle<u64> {
        let mut reader = self.reader;
        tokio::spawn(async move { tokio::io::copy_buf(&mut reader, &mut tokio::io::sink()).await.unwrap_or(0) })
    }
}

/// Spawns a helper process (Xvfb, x11vnc) in its own process group with a pid record, so that it
/// is killed and reaped like a browser (and reaped at start-up if the worker was killed).
/// `marker` is an argument of its command line that identifies it; `dead` fires when it exits.
/// With `capture_stdout`, its standard output is returned for the caller to read.
pub async fn spawn_helper(
    mut command: Command,
    run_dir: &Path,
    marker: &str,
    capture_stdout: bool,
    dead: CancellationToken,
) -> std::io::Result<(BrowserProcess, Option<tokio::process::ChildStdout>)> {
    let stdout = if capture_stdout { Stdio::piped() } else { Stdio::null() };
    command.process_group(0).kill_on_drop(true).stdin(Stdio::null()).stdout(stdout).stderr(Stdio::null());
    let mut child = command.spawn()?;
    let pgid = child.id().map(|id| id as i32).unwrap_or_default();
    let record = run_dir.join(format!("{pgid}.json"));
    let exited = CancellationToken::new();
    let stdout = child.stdout.take();
    let watcher_exit = exited.clone();
    tokio::spawn(async move {
        let _ = child.wait().await;
        watcher_exit.cancel();
        dead.cancel();
    });
    // The process (whose `Drop` kills the group) exists before the first await.
    let process = BrowserProcess { pgid, exited, record, temp_dir: None, terminated: false };
    write_record(&process.record, &PidRecord { pgid, user_data_dir: PathBuf::new(), marker: Some(marker.to_string()) })
        .await;
    Ok((process, stdout))
}

/// Writes a pid record (best effort: without it only the start-up reaping of orphans is lost).
async fn write_record(path: &Path, record: &PidRecord) {
    if let Ok(json) = serde_json::to_vec(record) {
        let _ = tokio::fs::write(path, json).await;
    }
}

impl BrowserProcess {
    pub fn pgid(&self) -> i32 {
        self.pgid
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
        let (pgid, temp_dir, record) = (self.pgid, self.temp_dir.take(), self.record.clone());
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
            let _ = std::fs::remove_file(record);
        });
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
}

fn proc_stats() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid pgrp …": comm may hold spaces, so split after the last ')'.
            let close = stat.rfind(')')?;
            let comm = stat.get(stat.find('(')? + 1..close)?.to_string();
            let mut fields = stat[close + 2..].split_whitespace();
            let state = fields.next()?.chars().next()?;
            let ppid = fields.next()?.parse().ok()?;
            let pgrp = fields.next()?.parse().ok()?;
            Some(ProcStat { pid, state, ppid, pgrp, comm })
        })
        .collect()
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
    members.is_empty()
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
/// their records. Nothing a record names is deleted: a record is only a file, and a file in
/// `run/` may not be the worker's own (the caller clears `<data_dir>/tmp`, where every
/// ephemeral dir lives). Returns the process groups that were killed.
pub fn reap_orphans(run_dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(run_dir) else { return Vec::new() };
    let stats = proc_stats();
    let mut killed = Vec::new();
    let mut helpers = Vec::new();
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let Some(record) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<PidRecord>(&b).ok()) else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
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

    /// A fake browser: a shell script whose output all goes to stderr, as Chromium's does.
    fn fake_browser(script: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(format!("exec >&2; {script}"));
        command
    }

    /// 4 MB of lines of invalid UTF-8: far more than a pipe holds. A reader that stops early
    /// closes the pipe: the writer dies of SIGPIPE (or, ignoring it, loses its output to EPIPE).
    const FLOOD: &str = "yes \"$(printf 'x\\377\\376')\" | head -c 4000000";
    const DEVTOOLS: &str = "printf 'DevTools listening on ws://127.0.0.1:9/devtools/browser/x\\n'";

    #[tokio::test]
    async fn non_utf8_output_neither_hides_the_devtools_url_nor_stops_the_drain() {
        let cases = [
            ("a bad line before the URL", format!("printf 'bad \\377 line\\n'; {DEVTOOLS}")),
            ("bad bytes only after the URL", DEVTOOLS.to_string()),
        ];
        for (case, start) in cases {
            let run_dir = tempfile::tempdir().unwrap();
            let written = run_dir.path().join("written");
            // The fake leaves `written` behind only if all of its output was taken.
            let script = format!("{start}; {FLOOD} && : > '{}'", written.display());
            let dead = CancellationToken::new();
            let limit = Duration::from_secs(30);
            let spawned =
                spawn(fake_browser(&script), run_dir.path(), PathBuf::new(), false, limit, dead.clone()).await;
            let (process, ws_url) = spawned.unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(ws_url, "ws://127.0.0.1:9/devtools/browser/x", "{case}");
            // The limit only keeps a regression (a writer blocked on a full pipe) from hanging
            // the suite.
            let exited = tokio::time::timeout(Duration::from_secs(120), dead.cancelled()).await;
            assert!(exited.is_ok(), "{case}: the fake browser is still blocked on its stderr");
            assert!(written.exists(), "{case}: the fake browser's stderr was not read to the end");
            process.terminate().await;
        }
    }

    #[tokio::test]
    async fn helper_output_is_read_past_invalid_utf8_to_the_end() {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf 'x11vnc \\377\\376\\r\\nPORT=5910\\n'; {FLOOD}"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = OutputLines::new(child.stdout.take().unwrap());
        assert_eq!(lines.next_line().await.as_deref(), Some("x11vnc \u{fffd}\u{fffd}"));
        assert_eq!(lines.next_line().await.as_deref(), Some("PORT=5910"));
        assert_eq!(lines.drain().await.unwrap(), 4_000_000, "every byte after the PORT line is drained");
        assert!(child.wait().await.unwrap().success());
    }
}
