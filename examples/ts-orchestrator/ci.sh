#!/usr/bin/env bash
# CI: the TypeScript orchestrator (src/ci.ts) against a live worker. Builds the worker (debug),
# starts it on 127.0.0.1 with a temporary data dir, runs one application through the session API
# and one through POST /api/v1/tasks (checking the webhooks), stops the worker with SIGTERM and
# fails if any of its processes (Chromium) survived. The worker has no Redis: GET /api/v1/fleet
# lists it alone and work is placed on it; src/fleet-checks.ts covers several workers with fakes.
# `make ts-example` runs this.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

(cd "$root" && cargo build --quiet --bin browser-worker)
# scripts/install-deps.sh keeps node_modules in step with the lockfile; this covers a direct run.
[ -d "$here/node_modules" ] || (cd "$here" && npm ci --no-audit --no-fund --silent)
(cd "$here" && npm run --silent typecheck)

data="$(mktemp -d "${TMPDIR:-/tmp}/bw-ts-example.XXXXXX")"
key="ts-example-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

# The demo site and the webhook receiver get free ports now, so that the worker's egress rules can
# list them (loopback is reached only at listed addresses).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
site_port="$(free_port)"
hook_port="$(free_port)"
# Port 0: the worker picks a free port and logs it ("browser-worker listening", field addr).
BW_BIND=127.0.0.1:0 BW_API_KEYS="$key" BW_DATA_DIR="$data" BW_EGRESS_ALLOW="127.0.0.1:$site_port,127.0.0.1:$hook_port" \
  BW_LOG=info BW_LOG_FORMAT=json "$target/debug/browser-worker" >"$data/worker.log" 2>&1 &
pid=$!
addr=""
for _ in $(seq 1 150); do
  addr="$(grep -o '"addr":"127\.0\.0\.1:[0-9]*"' "$data/worker.log" | head -n 1 | cut -d'"' -f4)" || true
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$data/worker.log" >&2; echo "ts-example: the worker exited" >&2; exit 1; }
  sleep 0.2
done
[ -n "$addr" ] || { cat "$data/worker.log" >&2; echo "ts-example: the worker did not start listening" >&2; exit 1; }

status=0
(cd "$here" && BW_URL="http://$addr" BW_KEY="$key" BW_EXAMPLE_SITE_PORT="$site_port" BW_EXAMPLE_HOOK_PORT="$hook_port" \
  npm run --silent ci) || status=$?

worker_status=0
if kill -TERM "$pid" 2>/dev/null; then
  wait "$pid" || worker_status=$?
else
  wait "$pid" || worker_status=$?
  echo "ts-example: the worker had already exited ($worker_status)" >&2
  [ "$worker_status" -ne 0 ] || worker_status=1
fi
pid=""
if [ "$status" -ne 0 ] || [ "$worker_status" -ne 0 ]; then
  echo "ts-example: orchestrator exit $status, worker exit $worker_status; worker log:" >&2
  tail -n 200 "$data/worker.log" >&2
  exit 1
fi
if pgrep -a -f -- "$data"; then
  echo "ts-example: processes of the worker survived it" >&2
  exit 1
fi
echo "ts-example: passed"
