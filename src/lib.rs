//! browser-worker: runs real browsers for automated job applications behind an HTTP control
//! plane, one live Chrome DevTools Protocol connection per session.
//!
//! # Layout
//! - [`config`]: flags and `BW_*` variables, validated before anything binds.
//! - [`app`]: the shared `App` state, background tasks, and the `Server` lifecycle.
//! - [`api`]: HTTP routes, auth, error envelope, OpenAPI. The only module (with [`error`]) that knows HTTP.
//! - [`session`]: the session state machine, registry (capacity, profiles, one operation at a
//!   time), reaper, records for restarts, fleet leases, recordings and timelines.
//! - [`browser`]: the `BrowserProvider` trait, the local Chromium and AdsPower providers, page
//!   operations, process groups and orphan reaping, the warm pool, per-session displays (Xvfb,
//!   x11vnc), the sandbox and limits of local browsers, and the request tap (evidence, dry runs).
//! - [`forms`]: form understanding: scanning, the rules and LLM engines, filling, submitting.
//! - [`flow`]: the session operations `analyze`, `fill`, `submit`, `continue` over a session.
//! - [`tasks`]: the V1 one-call task, a macro over the session operations.
//! - [`breaker`]: the per-profile circuit breaker, persisted in redb (or Redis in fleet mode).
//! - [`guard`]: block detection (CAPTCHAs, challenge pages, rate limits, login walls).
//! - [`bridge`]: WebSocket bridges of the CDP passthrough (behind an allow-list) and the VNC viewer,
//!   handed an upstream address.
//! - [`live`]: the live view (SPEC §3.7): one shared CDP screencast per session, JPEG frames out,
//!   checked input in, for any session (headless included).
//! - [`recording`]: the ffmpeg recorder: a display or screencast frames into a fragmented MP4
//!   (playable even if cut short), bounded in length and size.
//! - [`artifacts`]: screenshots, recordings and timelines per session, locally and in an object store.
//! - [`token`]: session tokens (HS256 JWTs scoped to one session and to VNC, CDP or live; newer ones revoke older).
//! - [`egress`]: the one egress classifier, the egress proxy every local browser's traffic goes
//!   through, and per-session upstream proxies with the identity of their exit.
//! - [`fleet`]: fleet mode on Redis (SPEC §3.9): heartbeats, profile leases, the session directory.
//! - [`notify`]: per-session events (SSE) and bounded, ordered webhooks.
//! - [`error`]: `ApiError`, the JSON error envelope.
//! - [`ids`]: the ids every part shares (`SessionId`); depends on nothing else here.
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
pub mod ids;
pub mod live;
pub mod notify;
pub mod recording;
pub mod session;
pub mod tasks;
pub mod telemetry;
pub mod token;

pub use app::{App, Server};
pub use config::Config;
