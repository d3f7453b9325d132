//! The only code of the worker that runs between `fork` and `exec` (and so the only `unsafe`
//! code): a local browser, Xvfb or x11vnc enters its cgroup, takes its per-process limit and
//! drops to the browser user before it runs; a recorder is tied to the worker's life. Plain
//! system calls only: no allocation, no locks.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt as _;

use nix::libc;

use super::limits::Entry;

/// In the child of `command`: enter the cgroups of `entry`, set its limit, then drop to
/// `ids` (uid, gid) with no supplementary groups, and clear the ambient capabilities a
/// non-root worker holds (they would pass `exec`).
pub fn confine(command: &mut tokio::process::Command, entry: Option<Entry>, ids: Option<(u32, u32)>) {
    // SAFETY: the closure only makes system calls on values prepared before `fork`.
    unsafe {
        command.pre_exec(move || {
            if let Some(entry) = &entry {
                for fd in &entry.procs {
                    // "0" is the writing process itself.
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(bytes) = entry.data_limit {
                    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
                    if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            // setgroups, setgid, setuid: the last one gives up the right to the others.
            if let Some((uid, gid)) = ids
                && (libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
            Ok(())
        });
    }
}

/// How much less CPU a browser gets than the worker when both want it (`nice`): the worker's
/// own work (answering the API, relaying CDP and live frames) is small and waited for, so a
/// browser starting up or rendering must not delay it. Browsers share among themselves as
/// equals.
pub const BROWSER_NICE: i32 = 5;

/// In the child of `command`: run at `BROWSER_NICE` (inherited by everything it starts).
pub fn yield_to_worker(command: &mut tokio::process::Command) {
    // SAFETY: one system call in the child.
    unsafe {
        command.pre_exec(|| {
            // Raising one's own nice value needs no privilege.
            if libc::setpriority(libc::PRIO_PROCESS, 0, BROWSER_NICE) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Whether a process running as `ids` can make the namespaces Chromium's sandbox uses (user,
/// pid, network): a child that drops to them and unshares.
pub fn namespaces_work(ids: Option<(u32, u32)>) -> bool {
    let mut probe = std::process::Command::new("/bin/true");
    probe.env_clear().stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    if let Some((uid, gid)) = ids {
        probe.uid(uid).gid(gid);
    }
    // SAFETY: one system call in the child.
    unsafe {
        probe.pre_exec(|| {
            let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNET;
            if libc::unshare(flags) != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
        });
    }
    probe.status().is_ok_and(|s| s.success())
}

/// In the child of `command`: receive SIGTERM when the worker dies (a recorder's ffmpeg, which
/// then finalises its file, instead of running on to its length cap with nobody to stop it).
pub fn die_with_worker(command: &mut tokio::process::Command) {
    // SAFETY: one system call in the child.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
