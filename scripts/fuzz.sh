#!/usr/bin/env bash
# Fuzzes the HTTP API from api-spec/openapi.json with schemathesis against a live worker: a
# bounded number of cases per operation, no 5xx allowed, every answer matching its documented
# status codes, content types and schemas. The WebSocket routes (CDP, VNC) are left out:
# schemathesis cannot drive them (the integration tests do); scripts/cdp_fuzz.py then fuzzes the
# CDP passthrough of a live session with disguised method names (escaped, duplicated, binary).
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${FUZZ_EXAMPLES:-25}"
venv=target/fuzz-venv
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/python" -c "import websockets" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5 websockets==15.0.1
fi
cargo build --quiet --bin browser-worker
data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="fuzz-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
BW_BIND="127.0.0.1:$port" BW_API_KEYS="$key" BW_DATA_DIR="$data" BW_LOG=warn BW_MAX_SESSIONS=2 \
  BW_OPERATION_TIMEOUT_SECS=15 \
  target/debug/browser-worker >"$data/worker.log" 2>&1 &
worker=$!
cleanup() {
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
"$venv/bin/st" run api-spec/openapi.json --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $key" --max-examples "$examples" --phases examples,fuzzing -w 1 \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
  --exclude-path-regex '/(cdp|vnc)' --request-timeout 60
# The CDP passthrough: a live session, attacked with disguised method names; its browser must live.
cdp_url="$(curl -fsS -X POST "http://127.0.0.1:$port/api/v2/sessions" -H "Authorization: Bearer $key" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["cdp_url"])')"
"$venv/bin/python" scripts/cdp_fuzz.py "$cdp_url" "$key" "${FUZZ_CDP_CASES:-400}"
cleanup
trap - EXIT
if pgrep -f -- "--user-data-dir=$data" >/dev/null; then
  echo "fuzz: a browser outlived the worker" >&2
  exit 1
fi
echo "fuzz: no server errors, every answer as documented"
