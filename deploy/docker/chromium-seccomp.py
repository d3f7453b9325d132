#!/usr/bin/env python3
"""Docker's default seccomp profile, opened just enough for Chromium's namespace sandbox.

Usage: chromium-seccomp.py DEFAULT_JSON [OUTPUT_JSON]   (OUTPUT_JSON "-" or absent: stdout)

DEFAULT_JSON is the profile your Docker Engine applies by default: moby's
profiles/seccomp/default.json at the tag of the engine's version (`docker version`). Docker
takes a profile whole (`--security-opt seccomp=FILE`), never as "the default plus", so this
script derives one from the engine's own default instead of shipping a copy that would age.

Why: the worker runs every Chromium as an unprivileged user (bw-browser) in Chromium's own
sandbox, which creates user, pid and network namespaces without any capability (that is what
unprivileged user namespaces are for) and then chroots into /proc/self/fdinfo/ from inside the
new user namespace, where it holds CAP_SYS_CHROOT. Docker's default profile refuses all of it
to a container without CAP_SYS_ADMIN: clone with any namespace flag, unshare at all, and chroot
without CAP_SYS_CHROOT in the container's set (seccomp filters by syscall, it cannot see the
namespace the caller is in). Without this profile the worker sees no user namespaces, runs
Chromium with --no-sandbox and /health shows "sandbox": false.

The three edits, and nothing else (defaultAction and every other rule stay as they are):
  1. clone: the rule "flags & 0x7E020000 == 0" (no new namespace of any kind) becomes
     "flags & 0x0E020000 == 0": CLONE_NEWUSER, CLONE_NEWPID and CLONE_NEWNET, the three
     Chromium asks for, are let through; CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC and
     CLONE_NEWCGROUP stay refused.
  2. unshare: allowed under the same mask (Chromium enters its user namespace with
     unshare(CLONE_NEWUSER)); upstream allows unshare only with CAP_SYS_ADMIN.
  3. chroot: allowed whatever the container's capabilities (the kernel still requires
     CAP_SYS_CHROOT in the caller's user namespace, which only a process in a namespace of its
     own, or a container given SYS_CHROOT, has).
setns, mount and the rest of the CAP_SYS_ADMIN group stay refused: the sandbox does not use
them. clone3 keeps answering ENOSYS, so the C library falls back to clone.
Exits 2 with a message when the input does not look like Docker's profile (no clone rule with
that mask, or a defaultAction that allows), rather than write something unchecked.
"""

import json
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
# Docker's "no namespace flag" mask: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
UPSTREAM_MASK = 0x7E020000
SANDBOX_FLAGS = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
MASK = UPSTREAM_MASK & ~SANDBOX_FLAGS  # 0x0E020000


def derive(profile):
    """Returns the profile with the three edits applied; raises ValueError when it cannot."""
    if not isinstance(profile, dict) or not isinstance(profile.get("syscalls"), list):
        raise ValueError("not a seccomp profile (no syscalls list)")
    if profile.get("defaultAction") in (None, "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        raise ValueError(f"defaultAction {profile.get('defaultAction')!r}: not a deny-by-default profile")
    masks = 0
    for rule in profile["syscalls"]:
        if "clone" not in rule.get("names", []) or rule.get("action") != "SCMP_ACT_ALLOW":
            continue
        for arg in rule.get("args") or []:
            if arg.get("op") == "SCMP_CMP_MASKED_EQ" and arg.get("value") == UPSTREAM_MASK:
                arg["value"] = MASK
                masks += 1
    if masks == 0:
        raise ValueError(f"no clone rule with the namespace mask {UPSTREAM_MASK:#010x}: not Docker's default profile?")
    profile["syscalls"].append({
        "names": ["unshare"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": MASK, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        "comment": "browser-worker: user, pid and net namespaces for Chromium's sandbox (same mask as clone)",
    })
    profile["syscalls"].append({
        "names": ["chroot"],
        "action": "SCMP_ACT_ALLOW",
        "comment": "browser-worker: Chromium chroots to /proc/self/fdinfo/ inside its own user namespace",
    })
    return profile


def main(argv):
    if len(argv) not in (2, 3) or argv[1] in ("-h", "--help"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            profile = derive(json.load(f))
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        print(f"chromium-seccomp: {argv[1]}: {e}", file=sys.stderr)
        return 2
    text = json.dumps(profile, indent="\t") + "\n"
    if len(argv) == 2 or argv[2] == "-":
        sys.stdout.write(text)
    else:
        with open(argv[2], "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
