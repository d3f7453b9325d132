//! browser-worker: runs real browsers for automated job applications behind an HTTP control
//! plane, one live Chrome DevTools Protocol connection per session.
//!
//! # Layout
//! - [`config`]: flags and `BW_*` variables, validated before anything binds.
//! - [`app`]: the shared `App` state, background tasks, and the `Server` lifecycle.
//! - [`api`]: HTTP routes, auth, error envelope, OpenAPI. The only module (with [`error`]) that knows HTTP.
//! - [`session`]: the session state machine, registry (capacity, profiles, one operation at a time) and reaper.
//! - [`browser`]: the `BrowserProvider` trait, the local Chromium provider, page operations,
//!   process groups and orphan reaping, and the warm pool.
//! - [`breaker`]: the per-profile circuit breaker, persisted in redb.
//! - [`guard`]: block detection (CAPTCHAs, challenge pages, rate limits, login walls).
//!   process groups and orphan reaping, the warm pool, and per-session displays (Xvfb, x11vnc).
//! - [`bridge`]: WebSocket bridges of the CDP passthrough (behind an allow-list) and the VNC viewer,
//!   handed an upstream address.
//! - [`live`]: the live view (SPEC §3.7): one shared CDP screencast per session, JPEG frames out,
//!   checked input in, for any session (headless included).
//! - [`recording`]: session recordings: ffmpeg encodes a display or screencast frames into a
//!   fragmented MP4 (playable even if cut short), bounded in length and size.
//! - [`token`]: session tokens (HS256 JWTs scoped to one session and to VNC, CDP or live; newer ones revoke older).
//! - [`egress`]: the one egress classifier and the egress proxy every local browser's traffic goes through.
//! - [`fleet`]: fleet mode on Redis (SPEC §3.9): heartbeats, profile leases, the session directory.
//! - [`notify`]: per-session events (SSE) and bounded, ordered webhooks.
//! - [`error`]: `ApiError`, the JSON error envelope.
//! - [`telemetry`]: logging and the Prometheus recorder.
#![deny(unsafe_code)]

pub mod api;
pub mod app;
pub mod artifacts;
pub mod breaker;
pub mod bridge;
pub mod browser;
pub mod config;
pub mod egress;
pub mod error;
pub mod fleet;
pub mod flow;
pub mod forms;
pub mod guard;
pub mod live;
pub mod notify;
pub mod recording;
pub mod session;
pub mod tasks;
pub mod telemetry;
pub mod token;

pub use app::{App, Server};
pub use config::Config;
