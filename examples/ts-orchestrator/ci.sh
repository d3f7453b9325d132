#!/usr/bin/env bash
# CI: the TypeScript orchestrator (src/ci.ts) against a live worker. Builds the worker (debug),
# starts it on 127.0.0.1 with a temporary data dir, runs one application through the session API
# and one through POST /api/v1/tasks (checking the webhooks), stops the worker with SIGTERM and
# fails if any of its processes (Chromium) survived. `make ts-example` runs this.
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
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

BW_BIND="127.0.0.1:$port" BW_API_KEYS="$key" BW_DATA_DIR="$data" BW_ALLOW_PRIVATE_EGRESS=true BW_LOG=warn \
  "$target/debug/browser-worker" >"$data/worker.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$data/worker.log" >&2; echo "ts-example: the worker exited" >&2; exit 1; }
  sleep 0.2
done

status=0
(cd "$here" && BW_URL="http://127.0.0.1:$port" BW_KEY="$key" npm run --silent ci) || status=$?

kill -TERM "$pid"
worker_status=0
wait "$pid" || worker_status=$?
pid=""
if [ "$status" -ne 0 ] || [ "$worker_status" -ne 0 ]; then
  echo "ts-example: orchestrator exit $status, worker exit $worker_status; worker log:" >&2
  cat "$data/worker.log" >&2
  exit 1
fi
if pgrep -a -f -- "$data"; then
  echo "ts-example: processes of the worker survived it" >&2
  exit 1
fi
echo "ts-example: passed"
