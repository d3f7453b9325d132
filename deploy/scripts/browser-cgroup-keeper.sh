#!/bin/sh
# ExecStart of browser-worker-browsers.service (installed as /usr/local/bin/browser-worker-cgroup-keeper).
# Makes the unit's delegated cgroup a parent for the worker's per-browser cgroups
# (BW_BROWSER_CGROUP=/system.slice/browser-worker-browsers.service), then holds the unit open:
#   1. moves this process into a `keeper` child cgroup: cgroup v2 lets a cgroup hand the memory
#      and pids controllers to its children only while it holds no process itself;
#   2. writes "+memory +pids" to the unit cgroup's cgroup.subtree_control, so each child the
#      worker makes has memory.max and pids.max;
#   3. exec sleep infinity: the unit stays active and its cgroup stays in place.
# Needs cgroup v2 and Delegate=memory pids with User= set (systemd then chowns the cgroup to
# that user). Exits 1 with a message when a step fails; the unit then fails to start.
# KEEPER_CGROUP_MOUNT and KEEPER_PROC_CGROUP (default /sys/fs/cgroup, /proc/self/cgroup) point it at
# a fake tree for deploy/check.sh; the unit does not set them.
set -eu

fail() {
  echo "browser-cgroup-keeper: $*" >&2
  exit 1
}

mount_point="${KEEPER_CGROUP_MOUNT:-/sys/fs/cgroup}"
[ -f "$mount_point/cgroup.controllers" ] || fail "no cgroup v2 hierarchy at $mount_point (cgroup v1 is not supported)"

# This shell's own cgroup: the "0::<path>" line of /proc/self/cgroup (cgroup v2).
own=""
while IFS= read -r line; do
  case "$line" in
    0::*) own="${line#0::}" ;;
  esac
done <"${KEEPER_PROC_CGROUP:-/proc/self/cgroup}"
case "$own" in
  "" | / | */keeper) fail "unexpected own cgroup '$own' (run this as the ExecStart of a unit with Delegate=)" ;;
esac
dir="$mount_point$own"

for controller in memory pids; do
  case " $(cat "$dir/cgroup.controllers") " in
    *" $controller "*) ;;
    *) fail "controller $controller not available in $dir (the unit needs Delegate=memory pids)" ;;
  esac
done

mkdir -p "$dir/keeper" || fail "cannot create $dir/keeper (is the cgroup delegated to $(id -un)?)"
echo "$$" >"$dir/keeper/cgroup.procs" || fail "cannot move process $$ into $dir/keeper"
echo "+memory +pids" >"$dir/cgroup.subtree_control" || fail "cannot enable memory and pids in $dir/cgroup.subtree_control"
echo "browser-cgroup-keeper: $own ready for per-browser cgroups (memory, pids)" >&2
exec sleep infinity
