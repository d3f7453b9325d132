# browser-worker in a container: Debian's Chromium, a non-root user, a health check.
#   docker build -t browser-worker .
#   docker run -d --name bw -p 127.0.0.1:8080:8080 -v bw-data:/var/lib/browser-worker \
#     -e BW_API_KEYS=<16+ characters> --shm-size=1g browser-worker
# Publish it on loopback and put nginx (deploy/nginx/browser-worker.conf) in front for TLS.
# Without BW_API_KEYS the worker generates a key into the volume and prints it once (docker logs).

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
        chromium fonts-liberation fonts-noto-color-emoji ca-certificates curl tini \
        xvfb x11vnc novnc \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/browser-worker --create-home \
        --shell /usr/sbin/nologin browser-worker
COPY --from=build /src/target/release/browser-worker /usr/local/bin/browser-worker

USER browser-worker
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
