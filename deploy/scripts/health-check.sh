#!/usr/bin/env bash
# Is this worker healthy? Asks /health (public, no key) and, on a systemd machine, looks at the
# units that are installed. Prints one line per check.
# Usage: health-check.sh [URL]   (default http://127.0.0.1:8080/health; for nginx's self-signed
#        certificate: HEALTH_INSECURE=1 health-check.sh https://127.0.0.1/health)
# Exit codes: 0 healthy, 1 degraded (shutting down, AdsPower unreachable), the fleet's Redis
# unreachable (the worker refuses sessions with a profile meanwhile) or a unit not active,
# 2 the worker did not answer (or not with its health JSON).
set -euo pipefail

url="${1:-${BW_HEALTH_URL:-http://127.0.0.1:8080/health}}"
curl_opts=(-fsS --max-time "${HEALTH_TIMEOUT:-5}")
if [ "${HEALTH_INSECURE:-0}" = 1 ]; then curl_opts+=(-k); fi

status=0
if ! body="$(curl "${curl_opts[@]}" "$url" 2>&1)"; then
  echo "worker: not answering at $url ($body)"
  exit 2
fi
# One field of the (flat) health JSON, without needing jq.
field() { sed -nE "s/.*\"$1\":\"?([^\",}]*)\"?.*/\1/p" <<<"$body"; }
state="$(field status)"
case "$state" in
  healthy) echo "worker: healthy" ;;
  degraded)
    echo "worker: degraded"
    status=1
    ;;
  *)
    echo "worker: unexpected answer from $url: $body"
    exit 2
    ;;
esac
# Draining is not a fault: the worker finishes its sessions and takes no new ones.
if [ "$(field draining)" = true ]; then echo "  draining: new sessions and tasks are refused"; fi
echo "  sessions $(field active_sessions)/$(field max_sessions), tasks $(field active_tasks)," \
  "warm pool $(field warm_pool_ready), adspower $(field adspower), version $(field version)," \
  "up $(field uptime_seconds) s"
# Chromium's own sandbox is off when the browsers would run as root or user namespaces are not
# available (the worker's start-up warning says which): not a fault, but worth seeing.
case "$(field sandbox)" in
  true) echo "  browsers sandboxed, as $(field browser_user)" ;;
  false) echo "  browsers NOT sandboxed (--no-sandbox), as $(field browser_user): see the worker's start-up warning" ;;
esac
# Fleet mode (BW_REDIS_URL): a worker that cannot reach Redis keeps its sessions but refuses new
# ones with a profile (503 fleet_unavailable) until it can.
case "$(field fleet)" in
  connected) echo "  fleet: connected to Redis" ;;
  unreachable)
    echo "  fleet: Redis UNREACHABLE: sessions with a profile are refused (check BW_REDIS_URL, the network, TLS)"
    status=1
    ;;
  not_configured) echo "  fleet: none (no BW_REDIS_URL: the worker stands alone)" ;;
esac

# The units of deploy/systemd that this machine has installed and enabled must be active.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for unit in xvfb x11vnc adspower browser-worker-browsers browser-worker nginx; do
    systemctl is-enabled --quiet "$unit" 2>/dev/null || continue
    if systemctl is-active --quiet "$unit"; then
      echo "unit $unit: active"
    else
      echo "unit $unit: $(systemctl is-active "$unit" 2>/dev/null || true)"
      status=1
    fi
  done
fi
exit "$status"
