# browser-worker in a container: Debian's Chromium, browsers as their own user, a health check.
#   docker build -t browser-worker .
#   python3 deploy/docker/chromium-seccomp.py default.json chromium-seccomp.json   (once; below)
#   docker run -d --name bw -p 127.0.0.1:8080:8080 -v bw-data:/var/lib/browser-worker \
#     -e BW_API_KEYS=<16+ characters> --shm-size=1g \
#     --cap-drop=ALL --cap-add=CHOWN --cap-add=DAC_OVERRIDE --cap-add=FOWNER --cap-add=KILL \
#     --cap-add=SETUID --cap-add=SETGID --security-opt no-new-privileges \
#     --security-opt seccomp=chromium-seccomp.json browser-worker
# Publish it on loopback and put nginx (deploy/nginx/browser-worker.conf) in front for TLS.
# Without BW_API_KEYS the worker generates a key into the volume and prints it once (docker logs).
#
# Who runs as whom: the worker runs as the container's root, with only the six capabilities it
# needs (the --cap-add list: switch to the browser user, signal its processes, hand it and take
# back its directories); every Chromium, Xvfb and x11vnc runs as bw-browser (BW_BROWSER_USER), with
# no capabilities. Root rather than a non-root USER: Docker gives a non-root user no effective
# capabilities (it sets no ambient ones), and file capabilities on the binary would not survive
# no-new-privileges.
# Chromium's own sandbox creates user, pid and network namespaces, which Docker's default seccomp
# profile refuses to a container without CAP_SYS_ADMIN. deploy/docker/chromium-seccomp.py derives
# a profile from the engine's default (moby's profiles/seccomp/default.json at the engine's
# version) that allows exactly that (its header says what it changes). Without it the worker
# finds no user namespaces, starts Chromium with --no-sandbox, warns once, and /health shows
# "sandbox": false; never give the container CAP_SYS_ADMIN or --privileged for the sandbox.
# Per-browser memory and process limits need a writable cgroup, which a container does not have:
# the worker falls back to setrlimit (with a warning); bound the whole container with --memory and
# --pids-limit.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin browser-worker \
    && strip target/release/browser-worker

FROM debian:bookworm-slim
# Chromium and fonts from Debian; Xvfb, x11vnc and noVNC for BW_DISPLAY_MODE=per-session;
# tini as PID 1 (signals and orphan reaping); curl for the health check.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        chromium fonts-liberation fonts-noto-color-emoji ca-certificates curl tini tzdata ffmpeg \
        xvfb x11vnc novnc \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10002 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin bw-browser \
    && install -d -m 0711 /var/lib/browser-worker
COPY --from=build /src/target/release/browser-worker /usr/local/bin/browser-worker
# WebRTC sends no UDP around the proxy (Chromium's managed policy).
COPY deploy/chromium/browser-worker-policy.json /etc/chromium/policies/managed/browser-worker.json

# Root in the container (see the top); the browsers run as bw-browser.
USER root
WORKDIR /var/lib/browser-worker
ENV BW_BIND=0.0.0.0:8080 \
    BW_DATA_DIR=/var/lib/browser-worker \
    BW_LOG_FORMAT=json \
    HOME=/var/lib/browser-worker
VOLUME ["/var/lib/browser-worker"]
EXPOSE 8080
# /health is public; "degraded" (shutting down, AdsPower unreachable) counts as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS --max-time 4 http://127.0.0.1:8080/health | grep -q '"status":"healthy"' || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/browser-worker"]
