//! Virtual displays for sessions a person may take over.
//!
//! Per-session mode: each session gets `Xvfb :N` and `x11vnc -display :N -unixsock
//! <data_dir>/displays/N/vnc.sock -rfbport 0`, each in its own process group with a pid record
//! (killed and reaped like a browser), both as the browser user (`sandbox`). The VNC server has
//! no TCP port at all: its socket lives in a directory only the browser user and the worker can
//! enter, so no page of any browser on the machine can connect. Display numbers are reserved in this worker and checked
//! against the machine (X lock files); a start that loses a race moves on to the next number.
//! Shared mode: every session with a display uses one existing display and VNC server (TCP).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use serde::{Deserialize, Serialize};

use super::process::{self, BrowserProcess, ProcessId};
use super::sandbox::Confinement;

/// Screen size of per-session displays (the browser window fills it).
pub const SCREEN: (u32, u32) = (1920, 1080);
/// First display number tried.
const FIRST_DISPLAY: u32 = 100;
/// How many display numbers are tried before giving up.
const RANGE: u32 = 400;
/// Start attempts before a display start fails.
const ATTEMPTS: usize = 5;
/// Time Xvfb and x11vnc get to exit on SIGTERM before they are killed.
const GRACE: Duration = Duration::from_secs(2);
/// Time for Xvfb and x11vnc to come up.
const START_LIMIT: Duration = Duration::from_secs(15);

/// Display start failures.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("no free display number")]
    Exhausted,
    #[error("every attempt failed: {0}")]
    Failed(String),
    #[error("cannot run {0}: {1}")]
    Spawn(&'static str, String),
    #[error("{0} did not start on :{1} ({2})")]
    NotReady(&'static str, u32, &'static str),
}

/// Where sessions' displays come from.
pub struct Displays {
    kind: Kind,
}

enum Kind {
    PerSession(Arc<Allocator>),
    Shared { display: String, vnc: SocketAddr },
}

/// Starts displays, with pid records in `run_dir`.
struct Allocator {
    run_dir: PathBuf,
    /// Parent of each display's own directory (x11vnc's socket, the helpers' home).
    displays_dir: PathBuf,
    confinement: Confinement,
}

/// Display numbers reserved in this process (shared by every worker in it, e.g. in tests); a
/// std mutex, never held across an await.
fn reserved() -> &'static Mutex<HashSet<u32>> {
    static RESERVED: std::sync::OnceLock<Mutex<HashSet<u32>>> = std::sync::OnceLock::new();
    RESERVED.get_or_init(Default::default)
}

/// Where a display's VNC server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VncAddr {
    /// A session's own x11vnc: a Unix socket in the display's own directory.
    Unix(PathBuf),
    /// A shared display's server (the operator's, on loopback).
    Tcp(SocketAddr),
}

impl VncAddr {
    /// True for a shared display: it shows every session's window, so its VNC access is not
    /// isolated to one session.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Tcp(_))
    }
}

/// One session's display: where the browser draws and where VNC clients connect.
pub struct SessionDisplay {
    /// `DISPLAY` value for the browser, e.g. `:100`.
    pub display: String,
    /// The VNC server.
    pub vnc_addr: VncAddr,
    /// Fires if Xvfb or x11vnc exits while the session lives.
    dead: CancellationToken,
    owned: Option<Owned>,
}

/// Processes and reservations of a per-session display.
struct Owned {
    xvfb: Option<BrowserProcess>,
    vnc: Option<BrowserProcess>,
    number: u32,
    /// x11vnc's socket, removed with the display.
    socket: PathBuf,
    /// Our Xvfb came up on `number`, so its lock file and socket are ours to remove (while the
    /// lock still names `xvfb_pid`).
    x_started: bool,
    xvfb_pid: i32,
    allocator: Arc<Allocator>,
    /// Left running for the next worker (handover): nothing is stopped or removed on drop.
    detached: bool,
}

/// What a session record keeps of its display, to re-attach it after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedDisplay {
    pub display: String,
    pub vnc_addr: VncAddr,
    /// The session's own Xvfb and x11vnc (per-session mode).
    pub own: Option<SavedOwn>,
}

/// A per-session display's number and processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedOwn {
    pub number: u32,
    pub xvfb: ProcessId,
    pub vnc: ProcessId,
}

impl Displays {
    /// Each session gets its own Xvfb and x11vnc; pid records go to `run_dir`.
    /// Per-session displays with pid records in `<data_dir>/run`, run as `confinement` says.
    pub fn per_session(data_dir: &Path, confinement: Confinement) -> std::io::Result<Self> {
        let displays_dir = data_dir.join("displays");
        confinement.pass_through(&displays_dir).map_err(std::io::Error::other)?;
        if confinement.user().is_some() {
            // Xvfb as an unprivileged user cannot make X's socket directory itself.
            x11_socket_dir()?;
        }
        let allocator = Allocator { run_dir: data_dir.join("run"), displays_dir, confinement };
        Ok(Self { kind: Kind::PerSession(Arc::new(allocator)) })
    }

    /// Every session uses `display` (e.g. `:99`) and the VNC server at `vnc`.
    pub fn shared(display: String, vnc: SocketAddr) -> Self {
        Self { kind: Kind::Shared { display, vnc } }
    }

    /// True if each session gets a display of its own (so sessions get one by default).
    pub fn per_session_mode(&self) -> bool {
        matches!(self.kind, Kind::PerSession(_))
    }

    /// A display for a new session.
    pub async fn open(&self) -> Result<SessionDisplay, DisplayError> {
        match &self.kind {
            Kind::Shared { display, vnc } => Ok(SessionDisplay {
                display: display.clone(),
                vnc_addr: VncAddr::Tcp(*vnc),
                dead: CancellationToken::new(),
                owned: None,
            }),
            Kind::PerSession(allocator) => {
                let mut failures = Vec::new();
                for _ in 0..ATTEMPTS {
                    let number = allocator.reserve()?;
                    match start(allocator.clone(), number).await {
                        Ok(display) => return Ok(display),
                        Err(e) => {
                            tracing::debug!(number, error = %e, "display start failed; trying the next one");
                            failures.push(e.to_string());
                        }
                    }
                }
                Err(DisplayError::Failed(failures.join("; ")))
            }
        }
    }
}

impl Displays {
    /// Takes over the display of a session an earlier run of the worker started, if its Xvfb
    /// and x11vnc still run (they are killed otherwise).
    pub fn adopt(&self, saved: &SavedDisplay) -> Result<SessionDisplay, DisplayError> {
        let dead = CancellationToken::new();
        let Some(own) = &saved.own else {
            // A shared display belongs to the operator; it is not ours to check.
            return Ok(SessionDisplay {
                display: saved.display.clone(),
                vnc_addr: saved.vnc_addr.clone(),
                dead,
                owned: None,
            });
        };
        let Kind::PerSession(allocator) = &self.kind else {
            return Err(DisplayError::Failed("this worker has no per-session displays".into()));
        };
        let VncAddr::Unix(socket) = &saved.vnc_addr else {
            return Err(DisplayError::Failed("a per-session display without a VNC socket".into()));
        };
        reserved().lock().unwrap().insert(own.number);
        let mut owned = Owned {
            xvfb: process::adopt(own.xvfb, &allocator.run_dir, None, dead.clone(), None),
            vnc: process::adopt(own.vnc, &allocator.run_dir, None, dead.clone(), None),
            number: own.number,
            socket: socket.clone(),
            x_started: true,
            xvfb_pid: own.xvfb.pgid,
            allocator: allocator.clone(),
            detached: false,
        };
        if owned.xvfb.is_none() || owned.vnc.is_none() {
            // Whatever still runs is killed by `owned`'s drop.
            for process in [own.xvfb, own.vnc].into_iter().filter(|p| p.alive()) {
                process::kill_group(process.pgid);
            }
            owned.x_started = owned.xvfb.is_some();
            return Err(DisplayError::NotReady("Xvfb or x11vnc", own.number, "exited while the worker was down"));
        }
        Ok(SessionDisplay {
            display: saved.display.clone(),
            vnc_addr: saved.vnc_addr.clone(),
            dead,
            owned: Some(owned),
        })
    }
}

impl Allocator {
    /// Reserves a display number that looks free on this machine.
    fn reserve(&self) -> Result<u32, DisplayError> {
        let mut used = reserved().lock().unwrap();
        let number = (FIRST_DISPLAY..FIRST_DISPLAY + RANGE)
            .find(|n| !used.contains(n) && display_free(*n))
            .ok_or(DisplayError::Exhausted)?;
        used.insert(number);
        Ok(number)
    }

    fn release(&self, number: u32) {
        reserved().lock().unwrap().remove(&number);
    }
}

/// The pid written in display `n`'s lock file.
fn lock_holder(n: u32) -> Option<i32> {
    std::fs::read_to_string(format!("/tmp/.X{n}-lock")).ok()?.trim().parse().ok()
}

/// True if no X server holds display `n`: no lock file of a live process, no socket file, and
/// nothing listening on the abstract socket (an X server whose files were removed still has it).
fn display_free(n: u32) -> bool {
    use std::os::linux::net::SocketAddrExt;
    let files_free = match lock_holder(n) {
        Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
        None => !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists(),
    };
    let abstract_name = format!("/tmp/.X11-unix/X{n}");
    let listening = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
        .is_ok_and(|addr| std::os::unix::net::UnixStream::connect_addr(&addr).is_ok());
    files_free && !listening
}

/// Starts Xvfb `:number` and x11vnc on a Unix socket, and waits until both serve.
async fn start(allocator: Arc<Allocator>, number: u32) -> Result<SessionDisplay, DisplayError> {
    let display = format!(":{number}");
    let dead = CancellationToken::new();
    let home = allocator.displays_dir.join(number.to_string());
    // A socket file left by a killed x11vnc of this number would make the new one fail.
    let _ = tokio::fs::remove_dir_all(&home).await;
    allocator.confinement.give(&home).map_err(|e| DisplayError::Spawn("Xvfb", e.to_string()))?;
    let vnc_socket = home.join("vnc.sock");
    // The number is free (`reserve`): files left by a dead X server, perhaps another user's
    // that an unprivileged Xvfb may not remove from the sticky /tmp, go first.
    if display_free(number) {
        let _ = tokio::fs::remove_file(format!("/tmp/.X{number}-lock")).await;
        let _ = tokio::fs::remove_file(format!("/tmp/.X11-unix/X{number}")).await;
    }
    // From here on, dropping `owned` kills what was started and frees the reservation.
    let mut owned = Owned {
        xvfb: None,
        vnc: None,
        number,
        socket: vnc_socket.clone(),
        x_started: false,
        xvfb_pid: 0,
        allocator: allocator.clone(),
        detached: false,
    };

    let mut xvfb = process::command(Path::new("Xvfb"), &home);
    allocator.confinement.confine(&mut xvfb, None);
    xvfb.arg(&display).args(["-screen", "0", &format!("{}x{}x24", SCREEN.0, SCREEN.1)]).args([
        "-nolisten",
        "tcp",
        "-noreset",
    ]);
    let process = process::spawn_helper(xvfb, &allocator.run_dir, &display, dead.clone())
        .await
        .map_err(|e| DisplayError::Spawn("Xvfb", e.to_string()))?;
    let pid = process.pgid();
    owned.xvfb = Some(process);
    owned.xvfb_pid = pid;
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
    // Ready when the lock file names our Xvfb (not another server that won a race) and its
    // socket accepts connections.
    let ready = async {
        loop {
            if lock_holder(number) == Some(pid) && tokio::net::UnixStream::connect(&socket).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = dead.cancelled() => return Err(DisplayError::NotReady("Xvfb", number, "exited")),
        ready = tokio::time::timeout(START_LIMIT, ready) => {
            ready.map_err(|_| DisplayError::NotReady("Xvfb", number, "timed out"))?
        }
    }
    if dead.is_cancelled() {
        return Err(DisplayError::NotReady("Xvfb", number, "exited"));
    }
    owned.x_started = true;

    let mut vnc = process::command(Path::new("x11vnc"), &home);
    allocator.confinement.confine(&mut vnc, None);
    // No TCP port: only the Unix socket, in the display's own directory. `-rfbport 0` alone
    // still leaves libvncserver's IPv6 listener on [::]:5900; `-rfbportv6 0` closes it too.
    let socket_arg = vnc_socket.display().to_string();
    vnc.args(["-display", &display, "-unixsock", &socket_arg, "-rfbport", "0", "-rfbportv6", "0"]).args([
        "-forever",
        "-shared",
        "-nopw",
        "-noipv6",
        "-noxdamage",
    ]);
    let process = process::spawn_helper(vnc, &allocator.run_dir, &display, dead.clone())
        .await
        .map_err(|e| DisplayError::Spawn("x11vnc", e.to_string()))?;
    owned.vnc = Some(process);
    // Ready when its socket accepts a connection.
    let listening = async {
        while tokio::net::UnixStream::connect(&vnc_socket).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = dead.cancelled() => return Err(DisplayError::NotReady("x11vnc", number, "exited")),
        ready = tokio::time::timeout(START_LIMIT, listening) => {
            ready.map_err(|_| DisplayError::NotReady("x11vnc", number, "timed out"))?
        }
    }
    tracing::debug!(number, "display started");
    Ok(SessionDisplay { display, vnc_addr: VncAddr::Unix(vnc_socket), dead, owned: Some(owned) })
}

impl SessionDisplay {
    /// A token that fires if the display's processes exit.
    pub fn dead(&self) -> CancellationToken {
        self.dead.clone()
    }

    /// What a session record keeps of this display.
    pub fn saved(&self) -> SavedDisplay {
        let own = self
            .owned
            .as_ref()
            .and_then(|o| Some(SavedOwn { number: o.number, xvfb: o.xvfb.as_ref()?.id(), vnc: o.vnc.as_ref()?.id() }));
        SavedDisplay { display: self.display.clone(), vnc_addr: self.vnc_addr.clone(), own }
    }

    /// Leaves Xvfb and x11vnc running for the next worker (handover at exit).
    pub fn detach(mut self) {
        if let Some(mut owned) = self.owned.take() {
            owned.detached = true;
            for process in [owned.vnc.take(), owned.xvfb.take()].into_iter().flatten() {
                process.detach();
            }
        }
    }

    /// Stops x11vnc, then Xvfb, reaps them and frees the display number.
    pub async fn stop(mut self) {
        if let Some(mut owned) = self.owned.take() {
            // SIGTERM first: a killed x11vnc leaks its SysV shared memory segments.
            if let Some(vnc) = owned.vnc.take() {
                vnc.terminate_gracefully(GRACE).await;
            }
            if let Some(xvfb) = owned.xvfb.take() {
                xvfb.terminate_gracefully(GRACE).await;
            }
        }
    }
}

impl Drop for Owned {
    /// Processes not yet terminated are killed by their own `Drop`; the files a killed Xvfb
    /// leaves behind are removed and the reservation is freed.
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        self.vnc.take();
        self.xvfb.take();
        // A lock naming another process belongs to an X server that took the number since.
        if self.x_started && lock_holder(self.number).is_none_or(|holder| holder == self.xvfb_pid) {
            let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.number));
            let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.number));
        }
        let _ = std::fs::remove_file(&self.socket);
        if let Some(home) = self.socket.parent().filter(|d| d.starts_with(&self.allocator.displays_dir)) {
            let _ = std::fs::remove_dir_all(home);
        }
        self.allocator.release(self.number);
    }
}

/// `/tmp/.X11-unix`, sticky and open to all as X servers expect it.
fn x11_socket_dir() -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new("/tmp/.X11-unix");
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777))?;
    }
    Ok(())
}
