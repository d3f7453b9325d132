//! Who local browsers (and their Xvfb and x11vnc) run as, whether Chromium's own sandbox is on,
//! and their resource limits. Decided once at start-up (`Confinement::detect`):
//! - a worker that may switch users (root, or CAP_SETUID + CAP_SETGID) runs them as the
//!   unprivileged browser user (`BW_BROWSER_USER`, default `bw-browser`), which cannot read the
//!   worker's data dir: only the directories handed to it (`give`);
//! - the sandbox is on unless the browsers would run as root or neither user namespaces nor
//!   Chromium's setuid helper work for them (then `--no-sandbox`, one warning);
//! - limits come from `limits`.
//!
//! The child drops to the user itself, after entering its cgroup (`confine`): a process that
//! runs as the browser user is never outside its limits, and never keeps a capability.

use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use nix::unistd::{Uid, User};

use super::child;
use super::limits::{Entry, Limits};

/// The browser user when `BW_BROWSER_USER` is unset.
pub const DEFAULT_USER: &str = "bw-browser";
/// Chromium's setuid sandbox helper in Debian's package (`chromium-sandbox`).
const SETUID_HELPER: &str = "/usr/lib/chromium/chrome-sandbox";
/// CAP_SETGID and CAP_SETUID in `/proc/self/status`'s `CapEff`.
const SWITCH_CAPS: u64 = (1 << 6) | (1 << 7);

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("BW_BROWSER_USER={0}: no such user (create it: useradd --system --no-create-home {0})")]
    NoUser(String),
    #[error("BW_BROWSER_USER={0}: browsers must not run as root")]
    RootUser(String),
    #[error(
        "the browser user {user} cannot reach {dir}: give others search permission on it (chmod o+x), or choose another BW_DATA_DIR"
    )]
    Unreachable { user: String, dir: PathBuf },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The unprivileged user browsers run as.
#[derive(Debug, Clone)]
pub struct BrowserUser {
    pub name: String,
    uid: u32,
    gid: u32,
}

/// How local browsers are confined.
#[derive(Debug, Clone)]
pub struct Confinement {
    user: Option<BrowserUser>,
    sandbox: bool,
    limits: Limits,
}

impl Confinement {
    /// Decides who browsers run as and whether the sandbox works for them. `configured` is
    /// `BW_BROWSER_USER` (unset: `bw-browser` if it exists; empty: the worker's own user).
    pub fn detect(configured: Option<&str>, limits: Limits) -> Result<Self, SandboxError> {
        let user = browser_user(configured)?;
        let runs_as_root = match &user {
            Some(u) => u.uid == 0,
            None => Uid::effective().is_root(),
        };
        let sandbox = !runs_as_root && (namespaces_work(user.as_ref()) || setuid_helper());
        if !sandbox {
            let why = if runs_as_root { "they would run as root" } else { "no user namespaces and no setuid helper" };
            tracing::warn!(reason = why, "browsers run without Chromium's sandbox (--no-sandbox)");
        }
        Ok(Self { user, sandbox, limits })
    }

    /// The worker's own user, no sandbox, no limits: for tools that start a browser of their
    /// own (the fake AdsPower, the bench's baseline).
    pub fn unconfined() -> Self {
        Self { user: None, sandbox: false, limits: Limits::detect(0, 0, None, "") }
    }

    pub fn user(&self) -> Option<&BrowserUser> {
        self.user.as_ref()
    }

    pub fn sandbox(&self) -> bool {
        self.sandbox
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Makes `dir` (and its parents) and hands it to the browser user, mode 0700.
    pub fn give(&self, dir: &Path) -> Result<(), SandboxError> {
        let io = |e| SandboxError::Io(dir.to_path_buf(), e);
        std::fs::create_dir_all(dir).map_err(io)?;
        if let Some(user) = &self.user {
            lchown(dir, Some(user.uid), Some(user.gid)).map_err(io)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(())
    }

    /// Hands everything under `dir` to the browser user (a profile from before the browser
    /// user, or a file the worker wrote for the browser).
    pub fn give_tree(&self, dir: &Path) -> Result<(), SandboxError> {
        let Some(user) = &self.user else { return Ok(()) };
        if !dir.exists() {
            return Ok(());
        }
        for entry in walkdir::WalkDir::new(dir) {
            let entry = entry.map_err(|e| SandboxError::Io(dir.to_path_buf(), e.into()))?;
            let path = entry.path();
            lchown(path, Some(user.uid), Some(user.gid)).map_err(|e| SandboxError::Io(path.to_path_buf(), e))?;
        }
        Ok(())
    }

    /// Whether `dir` exists and is not the browser user's yet (a persistent profile from before
    /// the browser user): it must be handed over whole (`give_tree`).
    pub fn foreign(&self, dir: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.user.as_ref().is_some_and(|user| std::fs::metadata(dir).is_ok_and(|m| m.uid() != user.uid))
    }

    /// A directory shared by every browser (`<data_dir>/tmp`): others may pass, not list.
    pub fn pass_through(&self, dir: &Path) -> Result<(), SandboxError> {
        let io = |e| SandboxError::Io(dir.to_path_buf(), e);
        std::fs::create_dir_all(dir).map_err(io)?;
        let mode = if self.user.is_some() { 0o711 } else { 0o700 };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io)
    }

    /// Checks that the browser user can reach `dir`: every ancestor lets others search it.
    pub fn check_reachable(&self, dir: &Path) -> Result<(), SandboxError> {
        let Some(user) = &self.user else { return Ok(()) };
        let dir = dir.canonicalize().map_err(|e| SandboxError::Io(dir.to_path_buf(), e))?;
        for ancestor in dir.ancestors().skip(1) {
            let meta = std::fs::metadata(ancestor).map_err(|e| SandboxError::Io(ancestor.to_path_buf(), e))?;
            if meta.permissions().mode() & 0o001 == 0 {
                return Err(SandboxError::Unreachable { user: user.name.clone(), dir: ancestor.to_path_buf() });
            }
        }
        Ok(())
    }

    /// Makes `command` drop to the browser user (no groups, no capabilities) in the child,
    /// after it entered its cgroup (`entry`).
    pub fn confine(&self, command: &mut tokio::process::Command, entry: Option<Entry>) {
        child::confine(command, entry, self.user.as_ref().map(|u| (u.uid, u.gid)));
    }
}

fn browser_user(configured: Option<&str>) -> Result<Option<BrowserUser>, SandboxError> {
    if configured == Some("") {
        return Ok(None);
    }
    let name = configured.unwrap_or(DEFAULT_USER);
    let found = User::from_name(name).ok().flatten();
    let Some(found) = found else {
        if configured.is_some() {
            return Err(SandboxError::NoUser(name.to_string()));
        }
        if may_switch() {
            tracing::warn!(user = name, "no browser user: browsers run as the worker's own user");
        }
        return Ok(None);
    };
    if found.uid.is_root() {
        return Err(SandboxError::RootUser(name.to_string()));
    }
    if !may_switch() {
        if found.uid != Uid::effective() {
            tracing::warn!(
                user = name,
                "the worker cannot switch users (not root, no CAP_SETUID/CAP_SETGID): browsers run as its own user"
            );
        }
        return Ok(None);
    }
    Ok(Some(BrowserUser { name: name.to_string(), uid: found.uid.as_raw(), gid: found.gid.as_raw() }))
}

/// Root, or CAP_SETUID and CAP_SETGID in the effective set.
fn may_switch() -> bool {
    Uid::effective().is_root()
        || std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .is_some_and(|caps| caps & SWITCH_CAPS == SWITCH_CAPS)
        })
}

/// Whether the browser user can make the namespaces Chromium's sandbox uses.
fn namespaces_work(user: Option<&BrowserUser>) -> bool {
    child::namespaces_work(user.map(|u| (u.uid, u.gid)))
}

/// Chromium's setuid helper, installed and setuid root.
fn setuid_helper() -> bool {
    std::fs::metadata(SETUID_HELPER).is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0 && m.mode() & 0o4000 != 0
    })
}
