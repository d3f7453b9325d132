#!/usr/bin/env bash
# Runs deploy/ansible/upgrade.yml against a fake worker and a fake systemctl on this machine
# (deploy/tests/fake_worker.py), one case per row below, and checks the play's outcome, its
# messages and what it did to the worker. Needs ansible-playbook and python3; no root, no systemd.
# Usage: deploy/tests/upgrade-test.sh (check.sh runs it). Exit code 0 when every case passes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
playbook="$here/../ansible/upgrade.yml"
scratch="$(mktemp -d)"
server=""
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$scratch"' EXIT

# Cases: name | worker state (JSON, over the defaults) | installed binary (old/new) |
#        extra vars (JSON) | outcome (ok/fail) | a line of output to find | check on the state
#        afterwards (Python over s = state, installed = the installed binary's content, staged =
#        whether the staged copy is still there)
cases=$(
  cat <<'CASES'
upgrade hands sessions over|{}|old|{}|ok|upgraded, 2 sessions open|s["restarts"] == 1 and s["drains"] == 1 and s["undrains"] == 1 and not s["draining"] and s["sessions"] == 2 and installed == "new" and not staged
re-run changes nothing but undrains|{"draining": true}|new|{}|ok|already up to date|s["restarts"] == 0 and s["drains"] == 0 and s["undrains"] == 1 and not s["draining"]
sessions lost in the restart|{"lose_sessions": true}|old|{}|fail|0 open sessions, where 2 were open before|s["restarts"] == 1 and s["undrains"] == 0
tasks outlast the drain timeout|{"tasks": 100}|old|{"bw_drain_timeout": 2}|ok|tasks still running after 2 s|s["restarts"] == 1 and s["sessions"] == 2
wrong API key|{}|old|{"bw_api_keys": "k9-not-this-workers-key"}|fail|the API key was refused|s["restarts"] == 0 and not s["draining"]
unit still on KillMode=mixed|{"kill_mode": "mixed"}|old|{}|fail|the unit has KillMode=mixed|s["restarts"] == 0 and s["drains"] == 0 and installed == "old"
BW_HANDOVER=false in the settings file|{}|old|{"bw_test_env": "BW_HANDOVER=false"}|fail|BW_HANDOVER is not true|s["restarts"] == 0 and s["drains"] == 0
a worker without handover and sessions|{"handover": false}|old|{}|fail|predates handover|s["restarts"] == 0
a worker without handover, no sessions|{"handover": false, "sessions": 0, "kill_mode": "mixed"}|old|{}|ok|upgraded, 0 sessions open|s["restarts"] == 1 and installed == "new"
session loss allowed|{"kill_mode": "mixed"}|old|{"bw_upgrade_allow_session_loss": true}|ok|upgraded, 0 sessions open|s["restarts"] == 1 and s["sessions"] == 0
no binary built|{}|old|{"bw_binary": "/nonexistent/browser-worker"}|fail|run cargo build --release|s["restarts"] == 0 and s["drains"] == 0
CASES
)

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="k1-0123456789abcdef"
state="$scratch/state.json"
mkdir -p "$scratch/bin"
printf '#!/bin/sh\nexec python3 %q systemctl "$@"\n' "$here/fake_worker.py" >"$scratch/bin/systemctl"
chmod 755 "$scratch/bin/systemctl"
printf '[workers]\nlocalhost ansible_connection=local ansible_python_interpreter=%s\n' "$(command -v python3)" \
  >"$scratch/inventory.ini"

reset_state() { # $1: JSON over the defaults
  python3 - "$state" "$port" "$key" "$1" <<'PY'
import json, sys
path, port, key, over = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
state = {"port": port, "key": key, "sessions": 2, "tasks": 2, "draining": False, "handover": True,
         "kill_mode": "process", "environment": "BW_BIND=127.0.0.1:8080 HOME=/var/lib/browser-worker BW_HANDOVER=true",
         "lose_sessions": False, "restarts": 0, "drains": 0, "undrains": 0}
state.update(over)
json.dump(state, open(path, "w"))
PY
}

reset_state '{}'
python3 "$here/fake_worker.py" serve "$state" &
server=$!
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done

failed=0
while IFS='|' read -r name over installed extra outcome expected check; do
  reset_state "$over"
  printf 'new' >"$scratch/new-binary"
  printf '%s' "$installed" >"$scratch/installed-binary"
  rm -f "$scratch/installed-binary.staged"
  env_line="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get("bw_test_env", ""))' "$extra")"
  printf 'BW_API_KEYS=%s\n%s\n' "$key" "$env_line" >"$scratch/env"
  rc=0
  out="$(cd "$scratch" && PATH="$scratch/bin:$PATH" FAKE_WORKER_STATE="$state" ANSIBLE_NOCOLOR=1 \
    ANSIBLE_LOCAL_TEMP="$scratch/ansible" ANSIBLE_RETRY_FILES_ENABLED=False ansible-playbook \
    -i inventory.ini "$playbook" -e ansible_become=false -e "bw_api_keys=$key" \
    -e "bw_binary=$scratch/new-binary" -e "bw_install_path=$scratch/installed-binary" \
    -e "bw_env_file=$scratch/env" -e "bw_local_url=http://127.0.0.1:$port" \
    -e bw_poll_interval=1 -e bw_health_timeout=3 -e "$extra" 2>&1)" || rc=$?
  problems=()
  if [ "$outcome" = ok ] && [ "$rc" != 0 ]; then problems+=("the play failed (exit $rc)"); fi
  if [ "$outcome" = fail ] && [ "$rc" = 0 ]; then problems+=("the play passed"); fi
  # Folded YAML messages may wrap: compare with whitespace squeezed.
  if ! tr -s ' \n' ' ' <<<"$out" | grep -qF -- "$expected"; then problems+=("no '$expected' in its output"); fi
  # Keys never show in the output (no_log on every task that holds one).
  for secret in "$key" k9-not-this-workers-key; do
    if grep -qF -- "$secret" <<<"$out"; then problems+=("an API key in its output"); fi
  done
  if ! python3 - "$state" "$scratch/installed-binary" "$check" <<'PY'; then
import json, os, sys
s = json.load(open(sys.argv[1]))
installed = open(sys.argv[2]).read()
staged = os.path.exists(sys.argv[2] + ".staged")
sys.exit(0 if eval(sys.argv[3]) else f"state afterwards: {s}, installed: {installed}, staged: {staged}")
PY
    problems+=("check failed: $check")
  fi
  if [ ${#problems[@]} -gt 0 ]; then
    failed=1
    printf 'upgrade-test: FAIL: %s: %s\n%s\n' "$name" "${problems[*]}" "$out" >&2
  else
    printf 'upgrade-test: ok: %s\n' "$name" >&2
  fi
done <<<"$cases"
exit "$failed"
