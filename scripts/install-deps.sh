#!/usr/bin/env bash
# Installs what browser-worker needs on Debian/Ubuntu, and nothing that is already there.
# Idempotent: a second run changes nothing. Needs root (or sudo) only when something is missing.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1; }

# Chromium: Debian's package (never a downloaded browser build).
if ! have chromium && ! have chromium-browser && ! have google-chrome; then
  missing+=(chromium)
fi
have curl || missing+=(curl)
# Per-session displays and the VNC viewer: Xvfb, x11vnc, noVNC's static client; websockify is
# the baseline `make bench` measures the worker's VNC bridge against.
have Xvfb || missing+=(xvfb)
have x11vnc || missing+=(x11vnc)
# xdotool types into a session's display in the tests, as a person at the viewer would.
have xdotool || missing+=(xdotool)
[ -f /usr/share/novnc/vnc.html ] || missing+=(novnc)
have websockify || missing+=(websockify)
# Fleet mode's tests start their own Redis (on a Unix socket) from Debian's package.
have redis-server || missing+=(redis-server)
# Per-session proxies: the tests chain through real proxies (tinyproxy: HTTP, microsocks:
# SOCKS5); the IANA zone table (tzdata) gives a proxy country its time zone.
# Session recordings: ffmpeg (x11grab, libx264) and ffprobe, which the tests read videos with.
have ffmpeg || missing+=(ffmpeg)
have tinyproxy || missing+=(tinyproxy)
have microsocks || missing+=(microsocks)
[ -f /usr/share/zoneinfo/zone1970.tab ] || missing+=(tzdata)
# Node runs the Playwright/Puppeteer passthrough tests (tests/js).
have npm || missing+=(nodejs npm)
# Fonts so that pages (and screenshots) render text.
if ! dpkg -s fonts-liberation >/dev/null 2>&1 && [ -z "$(ls /usr/share/fonts 2>/dev/null)" ]; then
  missing+=(fonts-liberation)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if ! have apt-get; then
    echo "install-deps: please install: ${missing[*]} (no apt-get on this machine)" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    have sudo || { echo "install-deps: run as root or install sudo to add: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The unprivileged user browsers run as (BW_BROWSER_USER), when this machine runs the worker as
# root: it cannot read the worker's data dir, and Chromium's sandbox works for it.
if [ "$(id -u)" -eq 0 ] && ! id bw-browser >/dev/null 2>&1; then
  echo "install-deps: adding the browser user bw-browser" >&2
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin bw-browser
fi

# Chromium's managed policy: WebRTC sends no UDP around the proxy (no host candidates, so a
# page never learns this machine's addresses). Chromium no longer honours the command-line
# switch for it; the policy cannot be changed by a page, a profile or a CDP client.
policy_src="$(dirname "$0")/../deploy/chromium/browser-worker-policy.json"
policy_dst=/etc/chromium/policies/managed/browser-worker.json
if ! cmp -s "$policy_src" "$policy_dst"; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "install-deps: installing Chromium's policy $policy_dst" >&2
    install -D -m 0644 "$policy_src" "$policy_dst"
  else
    echo "install-deps: as root, install $policy_src as $policy_dst" >&2
  fi
fi

# The JS test clients (playwright-core, puppeteer-core; they never download a browser).
js_dir="$(dirname "$0")/../tests/js"
if ! cmp -s "$js_dir/package-lock.json" "$js_dir/node_modules/.installed-lock.json"; then
  echo "install-deps: npm ci in tests/js" >&2
  (cd "$js_dir" && PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent \
    && cp package-lock.json node_modules/.installed-lock.json)
fi

# The TypeScript orchestrator example (jose, tsx, typescript), run by `make ts-example`.
ts_dir="$(dirname "$0")/../examples/ts-orchestrator"
if ! cmp -s "$ts_dir/package-lock.json" "$ts_dir/node_modules/.installed-lock.json"; then
  echo "install-deps: npm ci in examples/ts-orchestrator" >&2
  (cd "$ts_dir" && npm ci --no-audit --no-fund --silent && cp package-lock.json node_modules/.installed-lock.json)
fi

if ! have cargo; then
  echo "install-deps: cargo is missing: install Rust (https://rustup.rs), then run this again" >&2
  exit 1
fi
