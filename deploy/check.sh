#!/usr/bin/env bash
# Checks deploy/ with the real tools, offline and without touching the machine's services:
#   - systemd-analyze verify: every unit (and timer) in deploy/systemd (in a scratch root with stub binaries;
#     any message counts as a failure, since unknown keys and bad values are only warnings)
#   - nginx -t: deploy/nginx/browser-worker.conf inside Debian's own nginx.conf and inside a
#     minimal one, with self-signed test certificates made by openssl
#   - the site against api-spec/openapi.json: every route reaches the worker, the CDP and event
#     routes through their WebSocket/SSE locations, /vnc/ and /live/ through their WebSocket locations
#   - the worker's unit hands sessions over on stop/restart (SPEC §3.8): KillMode=process,
#     BW_HANDOVER=true, no PrivateTmp (recreated on each start), /tmp writable, no RemoveIPC
#   - the worker's unit runs sandboxed browsers as another user with limits: exactly the six
#     capabilities, no RestrictNamespaces against user/pid/net, a SystemCallFilter that lets
#     unshare/clone/setns/seccomp/chroot through (groups expanded by systemd-analyze
#     syscall-filter), StateDirectoryMode=0711, BW_BROWSER_CGROUP writable, Wants/After/PartOf
#     browser-worker-browsers.service; and that unit delegates memory and pids
#   - deploy/scripts/browser-cgroup-keeper.sh against a fake cgroup tree, and
#     deploy/docker/chromium-seccomp.py on a profile shaped like Docker's default
#   - ansible-playbook --syntax-check: deploy/ansible/playbook.yml and upgrade.yml (with the
#     example inventory), the settings template rendered by Ansible in both layouts and with and
#     without a fleet's Redis, the settings file 0600 and unlogged, no Redis password outside the
#     vault, the browser user, and browser-worker-browsers.service started but never restarted or
#     stopped
#   - upgrade.yml run against a fake worker and a fake systemctl (deploy/tests/upgrade-test.sh):
#     drain, swap, restart, sessions back, undrain, and its refusals and failure messages
#   - make -C deploy install into a scratch DESTDIR
#   - YAML: deploy/cloud-init.yaml parses and is a #cloud-config with known top-level keys and
#     both system users
#   - shellcheck: every *.sh under deploy/ and scripts/
#   - dockerfile-utils lint on the Dockerfile (npm), when npm is there; the image is not built
#   - terraform fmt -check (syntax and format) when terraform is on PATH; skipped otherwise
#     (it is not packaged by Debian; `terraform validate` needs the AWS provider from the
#     Terraform registry, which CI cannot reach)
# Installs what is missing with apt (systemd, nginx, ansible-core, shellcheck, openssl,
# python3-yaml); nginx's package is installed without starting its service.
# Usage: deploy/check.sh (from anywhere). Exit code 0 when everything passes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deploy="$root/deploy"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=0
step() { printf 'deploy/check: %s\n' "$*" >&2; }
fail() { printf 'deploy/check: FAIL: %s\n' "$*" >&2; failed=1; }

# --- tools -------------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have systemd-analyze || missing+=(systemd)
have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx)
have ansible-playbook || missing+=(ansible-core)
have shellcheck || missing+=(shellcheck)
have openssl || missing+=(openssl)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  # Keep package scripts from starting services (nginx would bind port 80): a policy-rc.d that
  # forbids every start, removed again right after the install.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    own_policy=1
  fi
  status=0
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null; } || status=$?
  if [ "$own_policy" = 1 ]; then $sudo rm -f "$policy"; fi
  [ "$status" = 0 ] || { echo "deploy/check: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi
PATH="$PATH:/usr/sbin:/sbin"

# --- systemd units -----------------------------------------------------------------------
step "systemd-analyze verify deploy/systemd/*.{service,timer}"
sysroot="$scratch/sysroot"
mkdir -p "$sysroot/etc/systemd/system" "$sysroot/usr/lib/systemd"
# The distribution's units (targets the ours are ordered against) and stubs for the binaries
# our ExecStart= lines name, so that the check does not depend on what this machine has.
cp -r /usr/lib/systemd/system "$sysroot/usr/lib/systemd/"
cp "$deploy"/systemd/*.service "$deploy"/systemd/*.timer "$sysroot/etc/systemd/system/"
sed -n 's/^ExecStart=-\{0,1\}\([^ ]*\).*/\1/p' "$deploy"/systemd/*.service | sort -u | while read -r bin; do
  mkdir -p "$sysroot$(dirname "$bin")"
  printf '#!/bin/sh\nexit 0\n' >"$sysroot$bin"
  chmod 755 "$sysroot$bin"
done
units=()
for unit in "$deploy"/systemd/*.service "$deploy"/systemd/*.timer; do units+=("$(basename "$unit")"); done
if ! out="$(cd "$sysroot/etc/systemd/system" && systemd-analyze verify --man=no --generators=no \
  --root="$sysroot" "${units[@]}" 2>&1)" || [ -n "$out" ]; then
  fail "systemd-analyze verify:"
  printf '%s\n' "$out" >&2
fi

# Sessions survive a stop or restart of the unit only with these settings (see the unit's header).
step "deploy/systemd/browser-worker.service hands sessions over"
if ! out="$(/usr/bin/python3 - "$deploy/systemd/browser-worker.service" 2>&1 <<'EOF'
import sys
service, section = {}, None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("["):
        section = line
    elif section == "[Service]" and "=" in line and not line.startswith("#"):
        key, value = line.split("=", 1)
        service.setdefault(key, []).append(value)
def last(key):
    return (service.get(key) or [""])[-1]
env = " ".join(service.get("Environment", [])).split()
rules = [
    (last("KillMode") == "process", "KillMode=process (only the worker gets the signal)"),
    ([v for v in env if v.startswith("BW_HANDOVER=")][-1:] == ["BW_HANDOVER=true"], "Environment=BW_HANDOVER=true"),
    (last("PrivateTmp") in ("", "no", "false"), "no PrivateTmp (systemd recreates it on each start)"),
    ("/tmp" in " ".join(service.get("ReadWritePaths", [])).split(), "ReadWritePaths=/tmp (Xvfb locks, Chromium's shared memory)"),
    (last("RemoveIPC") in ("", "no", "false"), "no RemoveIPC (x11vnc's SysV shared memory)"),
    ("RuntimeDirectory" not in service, "no RuntimeDirectory (deleted on stop)"),
    (last("Restart") in ("on-failure", "always"), "Restart=on-failure (re-attach after a crash)"),
]
missing = [what for ok, what in rules if not ok]
if missing:
    sys.exit("needs: " + "; ".join(missing))
EOF
)"; then
  fail "browser-worker.service:"
  printf '%s\n' "$out" >&2
fi

# Browsers run as bw-browser in Chromium's own sandbox, with per-browser cgroup limits, only with
# these settings (see the headers of browser-worker.service and browser-worker-browsers.service).
# The syscall groups are expanded by this machine's systemd-analyze, so a group that comes to
# contain a call the sandbox needs fails here.
step "deploy/systemd/browser-worker.service runs sandboxed browsers with limits"
if ! out="$(/usr/bin/python3 - "$deploy/systemd" 2>&1 <<'EOF'
import os, subprocess, sys
units = sys.argv[1]
def parse(name):
    service, unit, section = {}, {}, None
    for line in open(os.path.join(units, name)):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            {"[Service]": service, "[Unit]": unit}.get(section, {}).setdefault(key, []).append(value)
    return unit, service
def last(d, key):
    return (d.get(key) or [""])[-1]
def words(d, key):
    return " ".join(d.get(key, [])).split()
def capset(d, key):
    # Lines add up; an empty one resets; "~" would invert (not accepted here).
    caps = set()
    for v in d.get(key, []):
        if not v.strip():
            caps = set()
        elif v.strip().startswith("~"):
            return None
        else:
            caps |= set(v.split())
    return caps
groups = {}
def expand(name):
    if not name.startswith("@"):
        return {name}
    if name not in groups:
        out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name],
                             capture_output=True, text=True, check=True).stdout
        members = [l.strip() for l in out.splitlines()[1:] if l.strip() and not l.strip().startswith("#")]
        groups[name] = set().union(*[expand(m) for m in members]) if members else set()
    return groups[name]
def syscall_filter(values):
    # systemd's rules: the first non-empty assignment decides allow-list or deny-list (~); later
    # ones of the same kind add to it, of the other kind remove from it; an empty one resets.
    mode, calls = None, set()
    for v in values:
        v = v.strip()
        if not v:
            mode, calls = None, set()
            continue
        deny = v.startswith("~")
        names = set().union(*[expand(n) for n in v.lstrip("~").split()])
        if mode is None:
            mode = "deny" if deny else "allow"
        if (mode == "deny") == deny:
            calls |= names
        else:
            calls -= names
    return mode, calls

unit, service = parse("browser-worker.service")
keeper_unit, keeper = parse("browser-worker-browsers.service")
keeper_name = "browser-worker-browsers.service"
env = dict(v.split("=", 1) for v in words(service, "Environment") if "=" in v)
needed_caps = {"CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"}
problems = []
for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
    got = capset(service, key)
    if got != needed_caps:
        problems.append(f"{key}= exactly {' '.join(sorted(needed_caps))} (has {' '.join(sorted(got or [])) or 'none'})")
# Chromium's namespace sandbox: user, pid and net namespaces.
for v in service.get("RestrictNamespaces", []):
    v = v.strip()
    if v in ("", "no", "false"):
        continue
    listed = set(v.lstrip("~").split())
    if v in ("yes", "true") or (v.startswith("~") and listed & {"user", "pid", "net"}) \
            or (not v.startswith("~") and not {"user", "pid", "net"} <= listed):
        problems.append(f"RestrictNamespaces={v} forbids user, pid or net namespaces (Chromium's sandbox)")
sandbox_calls = {"unshare", "clone", "clone3", "setns", "seccomp", "chroot", "prctl",
                 "setresuid", "setresgid", "setgroups", "kill"}
mode, calls = syscall_filter(service.get("SystemCallFilter", []))
refused = sandbox_calls & calls if mode == "deny" else sandbox_calls - calls if mode == "allow" else set()
if refused:
    problems.append(f"SystemCallFilter= refuses {' '.join(sorted(refused))} (Chromium's sandbox, the switch to the browser user)")
if last(service, "StateDirectoryMode") != "0711":
    problems.append("StateDirectoryMode=0711 (the browser user traverses the data dir)")
if last(service, "ProtectProc") in ("invisible", "noaccess", "ptraceable"):
    problems.append("ProtectProc=default (the worker watches the browsers, another user's processes, in /proc)")
cgroup = env.get("BW_BROWSER_CGROUP", "")
if cgroup != "/system.slice/" + keeper_name:
    problems.append(f"Environment=BW_BROWSER_CGROUP=/system.slice/{keeper_name} (has {cgroup!r})")
if last(service, "ProtectControlGroups") in ("yes", "true", "strict") and \
        "/sys/fs/cgroup" + cgroup not in [p.lstrip("-") for p in words(service, "ReadWritePaths")]:
    problems.append(f"ReadWritePaths=/sys/fs/cgroup{cgroup} (ProtectControlGroups makes the rest read-only)")
for key in ("Wants", "After", "PartOf"):
    if keeper_name not in words(unit, key):
        problems.append(f"{key}={keeper_name}")
# The unit that holds the browsers' cgroup.
if not {"memory", "pids"} <= set(words(keeper, "Delegate")):
    problems.append(f"{keeper_name}: Delegate=memory pids")
if last(keeper, "User") != last(service, "User"):
    problems.append(f"{keeper_name}: User={last(service, 'User')} (systemd chowns the delegated cgroup to it)")
if last(keeper, "KillMode") not in ("", "control-group"):
    problems.append(f"{keeper_name}: KillMode=control-group (a stop must leave an empty cgroup)")
if last(keeper, "OOMPolicy") != "continue":
    problems.append(f"{keeper_name}: OOMPolicy=continue (one browser's OOM kill must not stop them all)")
if last(keeper, "ProtectControlGroups") in ("yes", "true", "strict"):
    problems.append(f"{keeper_name}: no ProtectControlGroups (it writes its cgroup.subtree_control)")
if last(keeper, "ExecStart") != "/usr/local/bin/browser-worker-cgroup-keeper":
    problems.append(f"{keeper_name}: ExecStart=/usr/local/bin/browser-worker-cgroup-keeper")
# Every unit sharing the data dir sets the same mode (systemd would warn, or chmod it back).
for name in sorted(os.listdir(units)):
    if name.endswith(".service"):
        _, other = parse(name)
        if "browser-worker" in words(other, "StateDirectory") and last(other, "StateDirectoryMode") != "0711":
            problems.append(f"{name}: StateDirectoryMode=0711 (it shares the data dir)")
if problems:
    sys.exit("needs: " + "; ".join(problems))
EOF
)"; then
  fail "browser-worker.service (sandbox and limits):"
  printf '%s\n' "$out" >&2
fi

# The keeper script against a fake cgroup tree: it must move itself into `keeper`, enable the
# controllers, then stay; and refuse a tree without them, or cgroup v1.
step "deploy/scripts/browser-cgroup-keeper.sh against a fake cgroup tree"
keeper_test() { # $1: controllers of the unit's cgroup ("" = cgroup v1); prints the script's exit or "running"
  local tree="$scratch/cgroup-$RANDOM" pid
  mkdir -p "$tree/system.slice/browser-worker-browsers.service"
  if [ -n "$1" ]; then
    echo "$1" >"$tree/cgroup.controllers"
    echo "$1" >"$tree/system.slice/browser-worker-browsers.service/cgroup.controllers"
  fi
  printf '0::/system.slice/browser-worker-browsers.service\n' >"$tree/self"
  KEEPER_CGROUP_MOUNT="$tree" KEEPER_PROC_CGROUP="$tree/self" sh "$deploy/scripts/browser-cgroup-keeper.sh" \
    2>"$tree/log" &
  pid=$!
  for _ in $(seq 50); do
    if grep -q 'ready for per-browser cgroups' "$tree/log" || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    keeper_dir="$tree/system.slice/browser-worker-browsers.service"
    [ "$(cat "$keeper_dir/keeper/cgroup.procs")" = "$pid" ] || echo "pid $pid not in keeper/cgroup.procs"
    [ "$(cat "$keeper_dir/cgroup.subtree_control")" = "+memory +pids" ] || echo "subtree_control: $(cat "$keeper_dir/cgroup.subtree_control")"
    echo running
  else
    local rc=0
    wait "$pid" || rc=$?
    echo "exit $rc: $(cat "$tree/log")"
  fi
}
got="$(keeper_test "cpu memory pids")"
[ "$got" = running ] || fail "keeper with memory and pids delegated: $got"
got="$(keeper_test "cpu memory")"
case "$got" in "exit 1: "*"controller pids not available"*) ;; *) fail "keeper without pids: $got" ;; esac
got="$(keeper_test "")"
case "$got" in "exit 1: "*"no cgroup v2 hierarchy"*) ;; *) fail "keeper on cgroup v1: $got" ;; esac

# The Docker seccomp profile for Chromium's sandbox, derived from a profile shaped like Docker's
# default (its clone rule and the CAP_SYS_ADMIN / CAP_SYS_CHROOT groups).
step "deploy/docker/chromium-seccomp.py"
cat >"$scratch/default.json" <<'EOF'
{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
 {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
 {"names": ["mount", "setns", "unshare"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
 {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
  "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
 {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}}]}
EOF
if ! out="$(python3 "$deploy/docker/chromium-seccomp.py" "$scratch/default.json" "$scratch/chromium.json" 2>&1 \
  && python3 - "$scratch/chromium.json" 2>&1 <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
NEWNS, NEWUSER, NEWPID, NEWNET, NEWIPC = 0x00020000, 0x10000000, 0x20000000, 0x40000000, 0x08000000
def allowed(call, flags=0, caps=()):
    # Docker's evaluation, for a container with `caps`: the rules that apply, any one that matches.
    for r in p["syscalls"]:
        if call not in r["names"] or r["action"] != "SCMP_ACT_ALLOW":
            continue
        if set(r.get("includes", {}).get("caps", [])) - set(caps):
            continue
        if set(r.get("excludes", {}).get("caps", [])) & set(caps):
            continue
        if all(flags & a["value"] == 0 for a in r.get("args") or []):
            return True
    return False
assert p["defaultAction"] == "SCMP_ACT_ERRNO", "defaultAction changed"
assert allowed("clone", NEWUSER | NEWPID | NEWNET), "clone with NEWUSER|NEWPID|NEWNET refused"
assert allowed("unshare", NEWUSER), "unshare(NEWUSER) refused"
assert allowed("chroot"), "chroot refused without CAP_SYS_CHROOT"
for call, flags in (("clone", NEWNS), ("clone", NEWIPC), ("unshare", NEWNS), ("setns", 0), ("mount", 0)):
    assert not allowed(call, flags), f"{call} {flags:#x} allowed"
assert allowed("read") and allowed("clone", 0), "other rules changed"
EOF
)"; then
  fail "chromium-seccomp.py:"
  printf '%s\n' "$out" >&2
fi
printf '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}\n' >"$scratch/allow.json"
if python3 "$deploy/docker/chromium-seccomp.py" "$scratch/allow.json" "$scratch/x.json" 2>/dev/null; then
  fail "chromium-seccomp.py accepted a profile that allows by default"
fi

# --- nginx -------------------------------------------------------------------------------
step "nginx -t deploy/nginx/browser-worker.conf"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
mkdir -p "$scratch/nginx/ssl" "$scratch/nginx/log" "$scratch/nginx/tmp"
openssl req -x509 -nodes -days 2 -newkey rsa:2048 -subj "/CN=browser-worker-check" \
  -keyout "$scratch/nginx/ssl/browser-worker.key" -out "$scratch/nginx/ssl/browser-worker.crt" 2>/dev/null
# The site as deployed, with its certificate and log paths pointed into the scratch dir.
sed -e "s#/etc/nginx/ssl/#$scratch/nginx/ssl/#g" -e "s#/var/log/nginx/#$scratch/nginx/log/#g" \
  "$deploy/nginx/browser-worker.conf" >"$scratch/nginx/site.conf"
cat >"$scratch/nginx/minimal.conf" <<EOF
error_log $scratch/nginx/log/error.log;
pid $scratch/nginx/nginx.pid;
events {}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path $scratch/nginx/tmp/body;
    proxy_temp_path $scratch/nginx/tmp/proxy;
    fastcgi_temp_path $scratch/nginx/tmp/fastcgi;
    uwsgi_temp_path $scratch/nginx/tmp/uwsgi;
    scgi_temp_path $scratch/nginx/tmp/scgi;
    include $scratch/nginx/site.conf;
}
EOF
# Warnings (e.g. a conflicting server name) fail the check too.
if ! out="$("$nginx_bin" -t -q -p "$scratch/nginx/" -c "$scratch/nginx/minimal.conf" 2>&1)" || [ -n "$out" ]; then
  fail "nginx -t (minimal nginx.conf):"
  printf '%s\n' "$out" >&2
fi
# The way it is deployed: Debian's nginx.conf with the site as its only enabled one.
if grep -q '^[[:space:]]*include /etc/nginx/sites-enabled/\*;' /etc/nginx/nginx.conf; then
  sed -e "s#^\([[:space:]]*\)include /etc/nginx/sites-enabled/\*;#\1include $scratch/nginx/site.conf;#" \
    -e "s#^pid .*#pid $scratch/nginx/debian.pid;#" /etc/nginx/nginx.conf >"$scratch/nginx/debian.conf"
  if ! out="$("$nginx_bin" -t -q -c "$scratch/nginx/debian.conf" 2>&1)" || [ -n "$out" ]; then
    fail "nginx -t (Debian's nginx.conf):"
    printf '%s\n' "$out" >&2
  fi
else
  step "skipped nginx -t with Debian's nginx.conf (no sites-enabled include in /etc/nginx/nginx.conf)"
fi

# Every route of the worker (api-spec/openapi.json) must reach it through the site, the socket
# and event-stream routes through their own locations (upgrade headers, no buffering).
step "nginx locations cover api-spec/openapi.json"
if ! out="$(/usr/bin/python3 - "$deploy/nginx/browser-worker.conf" "$root/api-spec/openapi.json" 2>&1 <<'EOF'
import json, re, sys
conf = open(sys.argv[1]).read()
server = conf[conf.index("listen 443"):]
locations = re.findall(r"^\s*location\s+(=|\^~|~)?\s*(\S+)\s*\{", server, re.M)
def choose(path):
    # nginx: an exact match; else the longest prefix (final with ^~); else the first matching
    # regex; else that longest prefix.
    for mod, arg in locations:
        if mod == "=" and arg == path:
            return arg
    prefixes = [(arg, mod) for mod, arg in locations if mod in ("", "^~") and path.startswith(arg)]
    best = max(prefixes, key=lambda p: len(p[0]), default=None)
    if best and best[1] == "^~":
        return best[0]
    for mod, arg in locations:
        if mod == "~" and re.search(arg, path):
            return arg
    return best[0] if best else None
expected = {"/api/v2/sessions/abc/cdp": "^/api/v2/sessions/[^/]+/cdp$",
            "/api/v2/sessions/abc/events": "^/api/v2/sessions/[^/]+/events$",
            "/vnc/abc": "/vnc/", "/vnc/abc/viewer": "/vnc/", "/vnc/static/core/rfb.js": "/vnc/",
            "/live/abc": "/live/", "/live/abc/viewer": "/live/",
            "/health": "/health"}
paths = [re.sub(r"\{[^}]+\}", "abc", p) for p in json.load(open(sys.argv[2]))["paths"]]
bad = []
for path in paths + list(expected):
    got = choose(path)
    if got in (None, "/") or (path in expected and got != expected[path]):
        bad.append(f"{path} -> location {got}")
if bad:
    sys.exit("routes the site does not proxy as it should: " + "; ".join(bad))
EOF
)"; then
  fail "nginx site vs openapi.json:"
  printf '%s\n' "$out" >&2
fi

# --- ansible -----------------------------------------------------------------------------
for playbook in playbook.yml upgrade.yml; do
  step "ansible-playbook --syntax-check deploy/ansible/$playbook"
  if ! out="$(cd "$deploy/ansible" && ANSIBLE_LOCAL_TEMP="$scratch/ansible" ANSIBLE_NOCOLOR=1 \
    ansible-playbook --syntax-check -i inventory.example.ini "$playbook" 2>&1)"; then
    fail "ansible-playbook --syntax-check $playbook:"
    printf '%s\n' "$out" >&2
  elif grep -qi '\[WARNING\]' <<<"$out"; then
    fail "ansible-playbook --syntax-check $playbook printed warnings:"
    printf '%s\n' "$out" >&2
  fi
done

# The playbooks create the browser user, install and start the browsers' cgroup unit, and never
# restart or stop it (that would kill every session's browser).
step "playbooks: the browser user and browser-worker-browsers.service (started, never restarted)"
if ! out="$(/usr/bin/python3 - "$deploy/ansible/playbook.yml" "$deploy/ansible/upgrade.yml" 2>&1 <<'EOF'
import json, sys, yaml
keeper = "browser-worker-browsers"
problems = []
for path in sys.argv[1:]:
    for play in yaml.safe_load(open(path)):
        tasks = play.get("tasks", []) + play.get("handlers", [])
        units = json.dumps(play.get("vars", {}).get("bw_units", ""))
        for task in tasks:
            for module in ("ansible.builtin.systemd", "ansible.builtin.service", "ansible.builtin.systemd_service"):
                args = task.get(module)
                if not isinstance(args, dict) or args.get("state") not in ("restarted", "stopped", "reloaded"):
                    continue
                names = json.dumps([args.get("name"), task.get("loop"), task.get("with_items")])
                if keeper in names or ("bw_units" in names and keeper in units):
                    problems.append(f"{path.rsplit('/', 1)[-1]}: task '{task.get('name')}' {args['state']} {keeper}")
            shell = json.dumps([task.get("ansible.builtin.command"), task.get("ansible.builtin.shell")])
            if keeper in shell and any(w in shell for w in ("restart", "stop", "kill")):
                problems.append(f"{path.rsplit('/', 1)[-1]}: task '{task.get('name')}' may restart {keeper}")
play = yaml.safe_load(open(sys.argv[1]))[0]
text = json.dumps(play)
if not any(t.get("ansible.builtin.user", {}).get("name") == "bw-browser" for t in play["tasks"]):
    problems.append("playbook.yml: no task creates the user bw-browser")
if f"{keeper}.service" not in text or keeper not in json.dumps(play["vars"]["bw_units"]):
    problems.append(f"playbook.yml: {keeper}.service not installed and started")
if "browser-cgroup-keeper.sh" not in text:
    problems.append("playbook.yml: deploy/scripts/browser-cgroup-keeper.sh not installed")
if problems:
    sys.exit("; ".join(problems))
EOF
)"; then
  fail "playbooks:"
  printf '%s\n' "$out" >&2
fi

# The rolling upgrade, run for real against a fake worker (about two minutes).
step "deploy/tests/upgrade-test.sh (upgrade.yml against a fake worker)"
if ! out="$(bash "$deploy/tests/upgrade-test.sh" 2>&1)"; then
  fail "upgrade.yml against a fake worker:"
  printf '%s\n' "$out" >&2
fi

# The settings file the playbook writes, rendered by Ansible itself in both layouts.
step "ansible template deploy/ansible/templates/env.j2"
render_env() { # $1: output file, $2: extra vars (JSON)
  ANSIBLE_LOCAL_TEMP="$scratch/ansible" ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=False \
    ANSIBLE_INVENTORY_UNPARSED_WARNING=False ansible localhost -c local -i localhost, \
    -m ansible.builtin.template -a "src=$deploy/ansible/templates/env.j2 dest=$1 mode=0600" -e "$2" >/dev/null 2>&1
}
common='"bw_api_keys": "k1-0123456789abcdef", "bw_token_secret": "s", "bw_public_url": "https://w",
  "bw_max_sessions": 3, "bw_adspower_api_key": "ads-key", "bw_extra_env": {"BW_LLM_MODEL": "m"}'
# Fleet mode: with a Redis URL (TLS, a password in it) and a prefix, without a prefix, without Redis.
redis='"bw_redis_url": "rediss://bw:redis-pass@redis.internal:6380/2", "bw_worker_id": "worker-7"'
if ! render_env "$scratch/env.chromium" "{$common, \"bw_adspower\": false, \"bw_display_mode\": \"per-session\"}" \
  || ! render_env "$scratch/env.adspower" "{$common, $redis, \"bw_adspower\": true, \"bw_display_mode\": \"none\"}" \
  || ! render_env "$scratch/env.fleet" "{$common, $redis, \"bw_adspower\": false, \"bw_display_mode\": \"none\",
       \"bw_fleet_prefix\": \"jobs-eu\", \"bw_fleet_ttl_secs\": 30}"; then
  fail "ansible could not render templates/env.j2"
else
  expect() { # $1: file, then the exact lines it must have; and every line is a comment or KEY=value
    local file="$1"
    shift
    for line in "$@"; do grep -qxF "$line" "$file" || fail "$(basename "$file"): no line '$line'"; done
    if grep -vE '^(#.*|[A-Z_]+=.*)$' "$file" >/dev/null; then fail "$(basename "$file"): a line that is not KEY=value"; fi
  }
  expect "$scratch/env.chromium" BW_API_KEYS=k1-0123456789abcdef BW_DISPLAY_MODE=per-session BW_LLM_MODEL=m
  expect "$scratch/env.adspower" BW_PROVIDER=adspower BW_ADSPOWER_API_KEY=ads-key BW_DISPLAY_MODE=shared \
    BW_VNC_DISPLAY=:99 BW_VNC_PORT=5900
  if grep -q '^BW_PROVIDER' "$scratch/env.chromium"; then fail "env.chromium names a provider"; fi
  expect "$scratch/env.fleet" BW_REDIS_URL=rediss://bw:redis-pass@redis.internal:6380/2 BW_WORKER_ID=worker-7 \
    BW_FLEET_PREFIX=jobs-eu BW_FLEET_TTL_SECS=30 BW_DISPLAY_MODE=none BW_LLM_MODEL=m
  expect "$scratch/env.adspower" BW_REDIS_URL=rediss://bw:redis-pass@redis.internal:6380/2 BW_WORKER_ID=worker-7
  if grep -q '^BW_FLEET_' "$scratch/env.adspower"; then fail "env.adspower has fleet settings that were not set"; fi
  if grep -qE '^BW_(REDIS_URL|WORKER_ID|FLEET_)' "$scratch/env.chromium"; then fail "env.chromium has fleet settings without bw_redis_url"; fi
fi

# The settings file holds the API keys and the Redis password: the playbook writes it 0600 and
# root's, without logging it; the fleet's variables default to no Redis, and the worker id to the
# host's inventory name; no inventory or Terraform file carries a Redis password (the vault does).
step "playbook.yml: /etc/browser-worker/env is 0600 and unlogged; the Redis password only in the vault"
if ! out="$(/usr/bin/python3 - "$deploy/ansible/playbook.yml" 2>&1 <<'EOF'
import sys, yaml
play = yaml.safe_load(open(sys.argv[1]))[0]
problems = []
tasks = [t for t in play["tasks"] if (t.get("ansible.builtin.template") or {}).get("dest") == "/etc/browser-worker/env"]
if len(tasks) != 1:
    problems.append("no single template task writes /etc/browser-worker/env")
for t in tasks:
    args = t["ansible.builtin.template"]
    if str(args.get("mode")) != "0600" or args.get("owner") != "root":
        problems.append(f"/etc/browser-worker/env is written mode {args.get('mode')} owner {args.get('owner')} (needs 0600, root)")
    if t.get("no_log") is not True:
        problems.append("the env template task needs no_log: true (a diff would show the secrets)")
v = play["vars"]
if v.get("bw_redis_url") != "":
    problems.append(f"bw_redis_url defaults to {v.get('bw_redis_url')!r} (needs an empty string: no Redis unless the vault has one)")
if "inventory_hostname" not in str(v.get("bw_worker_id")):
    problems.append("bw_worker_id does not default to inventory_hostname")
if problems:
    sys.exit("; ".join(problems))
EOF
)"; then
  fail "playbook.yml settings file:"
  printf '%s\n' "$out" >&2
fi
if grep -rnE 'rediss?://[^ "@/]*:[^ "@/]*@' "$deploy/ansible/inventory.example.ini" "$deploy/terraform"; then
  fail "a Redis URL with a password outside the vault (above)"
fi

# --- make install (staged) ---------------------------------------------------------------
step "make -C deploy install DESTDIR=<scratch>"
printf '#!/bin/sh\n' >"$scratch/browser-worker"
chmod 755 "$scratch/browser-worker"
if ! out="$(make -s -C "$deploy" install DESTDIR="$scratch/destdir" \
  BINARY="$scratch/browser-worker" 2>&1)"; then
  fail "make install:"
  printf '%s\n' "$out" >&2
else
  for f in usr/local/bin/browser-worker usr/local/bin/browser-worker-health etc/browser-worker/env \
    etc/systemd/system/browser-worker.service etc/systemd/system/adspower.service \
    etc/systemd/system/xvfb.service etc/systemd/system/x11vnc.service usr/local/sbin/install-adspower \
    etc/systemd/system/browser-worker-artifacts.timer \
    etc/systemd/system/browser-worker-browsers.service usr/local/bin/browser-worker-cgroup-keeper \
    etc/nginx/sites-enabled/browser-worker etc/nginx/ssl/browser-worker.key; do
    [ -e "$scratch/destdir/$f" ] || [ -L "$scratch/destdir/$f" ] || fail "make install did not stage /$f"
  done
fi

# --- cloud-init --------------------------------------------------------------------------
step "YAML deploy/cloud-init.yaml"
if ! out="$(/usr/bin/python3 - "$deploy/cloud-init.yaml" 2>&1 <<'EOF'
import sys, yaml
path = sys.argv[1]
text = open(path).read()
assert text.startswith("#cloud-config\n"), "the first line must be #cloud-config"
doc = yaml.safe_load(text)
assert isinstance(doc, dict), "a mapping at the top level"
known = {"package_update", "package_upgrade", "packages", "users", "groups", "write_files",
         "runcmd", "bootcmd", "final_message", "ssh_pwauth", "disable_root", "timezone",
         "apt", "swap", "ntp", "locale", "hostname", "fqdn", "manage_etc_hosts"}
unknown = set(doc) - known
assert not unknown, f"unknown top-level keys: {sorted(unknown)}"
for f in doc.get("write_files", []):
    assert f["path"].startswith("/") and "content" in f, f"write_files entry: {f}"
for c in doc.get("runcmd", []):
    assert isinstance(c, (str, list)), f"runcmd entry: {c!r}"
users = {u["name"]: u for u in doc.get("users", []) if isinstance(u, dict)}
for name in ("browser-worker", "bw-browser"):
    assert name in users and users[name].get("system"), f"no system user {name}"
    assert users[name].get("shell") == "/usr/sbin/nologin", f"{name} has a login shell"
EOF
)"; then
  fail "cloud-init.yaml:"
  printf '%s\n' "$out" >&2
fi

# --- shell scripts -----------------------------------------------------------------------
step "shellcheck deploy/**/*.sh scripts/*.sh"
mapfile -t scripts < <(find "$deploy" "$root/scripts" -name '*.sh' -type f | sort)
if ! out="$(shellcheck -x "${scripts[@]}" 2>&1)"; then
  fail "shellcheck:"
  printf '%s\n' "$out" >&2
fi

# --- Dockerfile ---------------------------------------------------------------------------
# Not built here (no Docker engine on CI); linted by dockerfile-utils (npm; the linter behind
# VS Code's Dockerfile support): unknown instructions and flags, bad ports, stage references.
if have npm; then
  step "dockerfile-utils lint Dockerfile"
  if ! out="$(npm install --silent --no-audit --no-fund --prefix "$scratch/npm" dockerfile-utils@0.16.3 2>&1)"; then
    fail "npm install dockerfile-utils:"
    printf '%s\n' "$out" >&2
  elif ! out="$("$scratch/npm/node_modules/.bin/dockerfile-utils" lint "$root/Dockerfile" 2>&1)" || [ -n "$out" ]; then
    fail "dockerfile-utils lint Dockerfile:"
    printf '%s\n' "$out" >&2
  fi
else
  step "skipped the Dockerfile lint (no npm; scripts/install-deps.sh installs it)"
fi

# --- terraform ---------------------------------------------------------------------------
if have terraform; then
  step "terraform fmt -check deploy/terraform"
  if ! out="$(terraform -chdir="$deploy/terraform" fmt -check -diff -no-color 2>&1)"; then
    fail "terraform fmt -check:"
    printf '%s\n' "$out" >&2
  fi
else
  step "skipped terraform (not installed; not packaged by Debian)"
fi

if [ "$failed" != 0 ]; then
  echo "deploy/check: failed" >&2
  exit 1
fi
echo "deploy/check: units, nginx, ansible (and the upgrade run), cloud-init, scripts, Dockerfile and terraform checked: all good"
