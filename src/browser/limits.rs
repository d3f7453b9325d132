//! Resource limits per local browser: memory and processes, so that one runaway page cannot
//! starve the machine. Each browser gets its own cgroup (v2, or v1's `memory` and `pids`
//! hierarchies) under one parent; it enters it itself before `exec` (`child::confine`), so no
//! process of it ever runs outside. A browser whose cgroup saw an OOM kill is
//! stopped whole (`Cage::oom_kills`, watched by `process`) and its session fails with
//! `resource_limit`. Without a usable cgroup the memory limit is set per process
//! (`RLIMIT_DATA`) and the process count is not limited.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// The parent cgroup's name when `BW_BROWSER_CGROUP` is unset: inside the worker's own cgroup
/// on v1, beside it on v2 (where a cgroup with processes cannot enable controllers below it).
const DEFAULT_PARENT: &str = "bw-browsers";

/// What limits each browser gets, and how.
#[derive(Debug, Clone)]
pub struct Limits {
    memory: Option<u64>,
    pids: Option<u64>,
    backend: Backend,
}

#[derive(Debug, Clone, PartialEq)]
enum Backend {
    /// No limit was asked for.
    None,
    /// cgroup v2: the parent directory (controllers `memory` and `pids` enabled below it).
    V2(PathBuf),
    /// cgroup v1: the parents in the `memory` and `pids` hierarchies.
    V1 { memory: PathBuf, pids: PathBuf },
    /// Per process: `RLIMIT_DATA`.
    Rlimit,
}

impl Limits {
    /// Decides how limits are applied: `memory_mb`/`pids_max` of 0 mean none; `cgroup` is
    /// `BW_BROWSER_CGROUP` (`off` forces the per-process fallback); `worker` names this
    /// worker's own cgroup under it (workers sharing the parent never touch each other's
    /// browsers' cgroups). Warns once when cgroups cannot be used.
    pub fn detect(memory_mb: u64, pids_max: u64, cgroup: Option<&str>, worker: &str) -> Self {
        let memory = (memory_mb > 0).then(|| memory_mb * 1024 * 1024);
        let pids = (pids_max > 0).then_some(pids_max);
        let backend = if memory.is_none() && pids.is_none() {
            Backend::None
        } else if cgroup == Some("off") {
            Backend::Rlimit
        } else {
            match cgroup_backend(cgroup, worker) {
                Ok(backend) => backend,
                Err(e) => {
                    tracing::warn!(error = %e, "browsers' cgroups unavailable: their memory is limited per process and their process count not at all");
                    Backend::Rlimit
                }
            }
        };
        Self { memory, pids, backend }
    }

    /// How the limits are applied, for `/health`: `cgroup2`, `cgroup1`, `rlimit` or `none`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::None => "none",
            Backend::V2(_) => "cgroup2",
            Backend::V1 { .. } => "cgroup1",
            Backend::Rlimit => "rlimit",
        }
    }

    /// Makes (or finds) the cgroup of the browser named `name` with the limits set, and opens
    /// what its first process needs to enter it.
    pub fn cage(&self, name: &str) -> std::io::Result<Cage> {
        let mut cage = Cage { dirs: Vec::new(), procs: Vec::new(), oom: None, data_limit: None };
        match &self.backend {
            Backend::None => {}
            Backend::Rlimit => cage.data_limit = self.memory,
            Backend::V2(parent) => {
                let dir = make_dir(parent, name)?;
                if let Some(bytes) = self.memory {
                    write(&dir.join("memory.max"), &bytes.to_string())?;
                    let _ = write(&dir.join("memory.swap.max"), "0");
                    // One OOM kill takes the whole browser, not just the biggest renderer.
                    write(&dir.join("memory.oom.group"), "1")?;
                }
                if let Some(pids) = self.pids {
                    write(&dir.join("pids.max"), &pids.to_string())?;
                }
                cage.oom = Some(dir.join("memory.events"));
                cage.procs.push(open_procs(&dir)?);
                cage.dirs.push(dir);
            }
            Backend::V1 { memory, pids } => {
                if let Some(bytes) = self.memory {
                    let dir = make_dir(memory, name)?;
                    write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    cage.oom = Some(dir.join("memory.oom_control"));
                    cage.procs.push(open_procs(&dir)?);
                    cage.dirs.push(dir);
                }
                if let Some(max) = self.pids {
                    let dir = make_dir(pids, name)?;
                    write(&dir.join("pids.max"), &max.to_string())?;
                    cage.procs.push(open_procs(&dir)?);
                    cage.dirs.push(dir);
                }
            }
        }
        Ok(cage)
    }

    /// The cgroup of a browser an earlier run started (re-attached after a restart), for its
    /// OOM watch and removal; nothing is created.
    pub fn existing(&self, name: &str) -> Cage {
        let mut cage = Cage { dirs: Vec::new(), procs: Vec::new(), oom: None, data_limit: None };
        match &self.backend {
            Backend::V2(parent) => {
                cage.oom = Some(parent.join(name).join("memory.events"));
                cage.dirs.push(parent.join(name));
            }
            Backend::V1 { memory, pids } => {
                cage.oom = Some(memory.join(name).join("memory.oom_control"));
                cage.dirs.extend([memory.join(name), pids.join(name)]);
            }
            Backend::None | Backend::Rlimit => {}
        }
        cage.dirs.retain(|d| d.is_dir());
        cage.oom.take_if(|f| !f.exists());
        cage
    }

    /// Removes the empty cgroups of browsers that are gone (left by a killed worker); those
    /// with processes stay.
    pub fn remove_empty(&self) {
        let parents: Vec<&PathBuf> = match &self.backend {
            Backend::V2(parent) => vec![parent],
            Backend::V1 { memory, pids } => vec![memory, pids],
            Backend::None | Backend::Rlimit => vec![],
        };
        for parent in parents {
            for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
    }
}

/// One browser's cgroup(s).
#[derive(Debug)]
pub struct Cage {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each directory, opened by the worker for the child to write.
    procs: Vec<File>,
    /// The file with the `oom_kill` counter.
    oom: Option<PathBuf>,
    data_limit: Option<u64>,
}

impl Cage {
    /// The descriptors and limit the child needs in `pre_exec` (`enter`).
    pub fn entry(&self) -> Entry {
        Entry { procs: self.procs.iter().map(AsRawFd::as_raw_fd).collect(), data_limit: self.data_limit }
    }

    /// The cgroup's name (its directory's), for a session record.
    pub fn name(&self) -> Option<String> {
        self.dirs.first().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned())
    }

    /// Whether the browser can be watched for OOM kills.
    pub fn watched(&self) -> bool {
        self.oom.is_some()
    }

    /// OOM kills in the cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let Some(file) = &self.oom else { return 0 };
        std::fs::read_to_string(file).map(|text| oom_kill_count(&text)).unwrap_or(0)
    }

    /// Removes the cgroup(s), once every process of the browser is gone.
    pub fn remove(&self) {
        for dir in &self.dirs {
            if let Err(e) = std::fs::remove_dir(dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot remove a browser's cgroup");
            }
        }
    }
}

/// What the child needs before `exec` to enter the cgroups and take its limits
/// (`child::confine` makes the calls).
#[derive(Debug, Clone)]
pub struct Entry {
    /// `cgroup.procs` descriptors: writing "0" moves the writing process.
    pub(super) procs: Vec<RawFd>,
    /// `RLIMIT_DATA`, without cgroups.
    pub(super) data_limit: Option<u64>,
}

/// The `oom_kill` counter of a v2 `memory.events` or a v1 `memory.oom_control`.
fn oom_kill_count(text: &str) -> u64 {
    text.lines().filter_map(|line| line.strip_prefix("oom_kill ")).filter_map(|n| n.trim().parse::<u64>().ok()).sum()
}

fn cgroup_backend(configured: Option<&str>, worker: &str) -> Result<Backend, String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let root = Path::new(ROOT);
    if root.join("cgroup.controllers").exists() {
        let path = own_path(&own, |controllers| controllers.is_empty()).ok_or("no cgroup v2 entry")?;
        let shared = parent_dir(root, configured, &path, true);
        let parent = shared.join(worker);
        for dir in [&shared, &parent] {
            prepare_v2(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        return Ok(Backend::V2(parent));
    }
    let mut dirs = Vec::new();
    for controller in ["memory", "pids"] {
        let path =
            own_path(&own, |c| c.split(',').any(|c| c == controller)).ok_or(format!("no cgroup v1 {controller}"))?;
        let parent = parent_dir(&root.join(controller), configured, &path, false).join(worker);
        std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        dirs.push(parent);
    }
    let pids = dirs.pop().unwrap_or_default();
    let memory = dirs.pop().unwrap_or_default();
    Ok(Backend::V1 { memory, pids })
}

/// The worker's own cgroup path in the hierarchy whose controller list passes `matches`.
fn own_path(proc_self_cgroup: &str, matches: impl Fn(&str) -> bool) -> Option<String> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        matches(controllers).then(|| path.to_string())
    })
}

/// `configured` (from the hierarchy's root), or `bw-browsers` in (or `beside`) the worker's own
/// cgroup `own`.
fn parent_dir(mount: &Path, configured: Option<&str>, own: &str, beside: bool) -> PathBuf {
    if let Some(path) = configured {
        return mount.join(path.trim_start_matches('/'));
    }
    let own = Path::new(own.trim_start_matches('/'));
    let base = if beside { own.parent().unwrap_or(Path::new("")) } else { own };
    mount.join(base).join(DEFAULT_PARENT)
}

/// Makes the v2 parent and enables `memory` and `pids` for its children.
fn prepare_v2(parent: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(parent)?;
    let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control"))?;
    if !(enabled.split_whitespace().any(|c| c == "memory") && enabled.split_whitespace().any(|c| c == "pids")) {
        write(&parent.join("cgroup.subtree_control"), "+memory +pids")?;
    }
    Ok(())
}

fn make_dir(parent: &Path, name: &str) -> std::io::Result<PathBuf> {
    let dir = parent.join(name);
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(dir),
    }
}

fn open_procs(dir: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"))
}

fn write(file: &Path, value: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_counters_are_read_from_both_versions() {
        let cases = [
            ("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 1\n", 1),
            ("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", 2),
            ("oom_kill_disable 0\nunder_oom 0\n", 0),
            ("", 0),
        ];
        for (text, kills) in cases {
            assert_eq!(oom_kill_count(text), kills, "{text:?}");
        }
    }

    #[test]
    fn the_parent_is_configured_or_beside_the_worker() {
        let own = "12:pids:/a\n4:memory:/process_api/c3\n0::/system.slice/bw.service\n";
        let memory = own_path(own, |c| c.split(',').any(|c| c == "memory")).unwrap();
        assert_eq!(memory, "/process_api/c3");
        let v2 = own_path(own, str::is_empty).unwrap();
        assert_eq!(v2, "/system.slice/bw.service");
        let mount = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(parent_dir(mount, None, &memory, false), mount.join("process_api/c3/bw-browsers"));
        assert_eq!(parent_dir(mount, None, "/", false), mount.join("bw-browsers"));
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(parent_dir(root, None, &v2, true), root.join("system.slice/bw-browsers"));
        assert_eq!(parent_dir(mount, Some("/x.service/b"), &memory, false), mount.join("x.service/b"));
    }
}
