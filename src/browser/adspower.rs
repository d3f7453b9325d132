//! The AdsPower provider: starts a profile's browser through AdsPower's Local API and connects
//! chromiumoxide to its DevTools endpoint (`data.ws.puppeteer`).
//!
//! The client paces itself (a governor limiter, `BW_ADSPOWER_RATE` requests per second) and
//! retries AdsPower's HTTP-200 "Too many request per second" answers with backoff; they never
//! count as profile failures. Closing detaches (the CDP handler is aborted, never
//! `Browser.close`) and asks AdsPower to `browser/stop` the profile.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    BrowserError, BrowserHandle, BrowserProvider, Connection, LaunchSpec, Owner, PageOf, Phases, Release, SavedBrowser,
};

/// How long a `/status` answer is trusted by `/health`.
const STATUS_TTL: Duration = Duration::from_secs(5);
/// First delay before retrying a rate-limited call.
const RETRY_MIN: Duration = Duration::from_millis(300);
/// How often an open AdsPower browser is checked with `browser/active`.
const LIVENESS_EVERY: Duration = Duration::from_secs(15);
/// Time limit of the Local API calls other than `browser/start`.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Local API failures.
#[derive(Debug, thiserror::Error)]
pub enum AdsPowerError {
    #[error("AdsPower is not reachable: {0}")]
    Unreachable(String),
    #[error("AdsPower did not answer in time")]
    Timeout,
    #[error("AdsPower is rate limiting this client")]
    RateLimited,
    #[error("AdsPower refused: {0}")]
    Api(String),
    #[error("AdsPower answered something unexpected: {0}")]
    BadAnswer(String),
}

/// What `browser/start` answers with (the fields this worker uses).
#[derive(Debug, Clone)]
pub struct Started {
    /// `ws://127.0.0.1:PORT/devtools/browser/…`
    pub ws_puppeteer: String,
    pub debug_port: Option<u16>,
}

/// A paced, retrying client of AdsPower's Local API.
pub struct AdsPowerClient {
    http: reqwest::Client,
    base: url::Url,
    api_key: Option<String>,
    limiter: DefaultDirectRateLimiter,
    /// Minimum spacing of requests, also the first retry delay.
    spacing: Duration,
    /// The last `/status` result and when it was taken.
    status: Mutex<Option<(Instant, bool)>>,
}

impl AdsPowerClient {
    /// A client for `base` (e.g. `http://127.0.0.1:50325`) sending at most `rate` requests/s.
    pub fn new(base: url::Url, api_key: Option<String>, rate: f64) -> Self {
        let spacing = Duration::from_secs_f64(1.0 / rate.max(0.01));
        let quota = Quota::with_period(spacing).expect("a positive period").allow_burst(NonZeroU32::MIN);
        Self {
            http: reqwest::Client::builder().no_proxy().build().expect("a plain HTTP client builds"),
            base,
            api_key,
            limiter: RateLimiter::direct(quota),
            spacing,
            status: Mutex::new(None),
        }
    }

    /// One Local API call: paced, with rate-limit answers retried; returns `data`.
    async fn call(&self, path: &str, query: &[(&str, &str)], limit: Duration) -> Result<Value, AdsPowerError> {
        let once = || self.call_once(path, query, limit);
        once.retry(
            // AdsPower counts requests per second: back off from a good part of a second.
            ExponentialBuilder::default()
                .with_min_delay(self.spacing.max(RETRY_MIN))
                .with_max_delay(Duration::from_secs(2))
                .with_max_times(8)
                .with_jitter(),
        )
        .when(|e| matches!(e, AdsPowerError::RateLimited))
        .notify(|_, delay| {
            metrics::counter!("bw_adspower_rate_limited_total").increment(1);
            tracing::debug!(?delay, "AdsPower rate limit answer; retrying");
        })
        .await
    }

    async fn call_once(&self, path: &str, query: &[(&str, &str)], limit: Duration) -> Result<Value, AdsPowerError> {
        self.limiter.until_ready().await;
        let mut url = self.base.join(path).map_err(|e| AdsPowerError::Unreachable(e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.http.get(url).timeout(limit);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() { AdsPowerError::Timeout } else { AdsPowerError::Unreachable(e.to_string()) }
        })?;
        if !response.status().is_success() {
            return Err(AdsPowerError::BadAnswer(format!("HTTP {}", response.status())));
        }
        let body: Value = response.json().await.map_err(|e| AdsPowerError::BadAnswer(e.to_string()))?;
        match body["code"].as_i64() {
            Some(0) => Ok(body.get("data").cloned().unwrap_or(Value::Null)),
            _ => {
                let msg = body["msg"].as_str().unwrap_or("no message").to_string();
                if msg.to_ascii_lowercase().contains("too many request") {
                    Err(AdsPowerError::RateLimited)
                } else {
                    Err(AdsPowerError::Api(msg))
                }
            }
        }
    }

    /// `GET /status`: is the Local API up?
    pub async fn status(&self) -> Result<(), AdsPowerError> {
        self.call("/status", &[], CALL_TIMEOUT).await.map(|_| ())
    }

    /// Whether AdsPower answered `/status` recently (cached for a few seconds).
    pub async fn connected(&self) -> bool {
        if let Some((at, up)) = *self.status.lock().unwrap()
            && at.elapsed() < STATUS_TTL
        {
            return up;
        }
        let up = tokio::time::timeout(Duration::from_secs(3), self.status()).await.is_ok_and(|r| r.is_ok());
        *self.status.lock().unwrap() = Some((Instant::now(), up));
        up
    }

    /// `GET /api/v1/browser/start`: opens the profile's browser.
    pub async fn start(
        &self,
        user_id: &str,
        headless: bool,
        launch_args: &[&str],
        limit: Duration,
    ) -> Result<Started, AdsPowerError> {
        let args = serde_json::to_string(launch_args).unwrap_or_else(|_| "[]".into());
        let headless = if headless { "1" } else { "0" };
        let data = self
            .call(
                "/api/v1/browser/start",
                &[("user_id", user_id), ("headless", headless), ("launch_args", &args)],
                limit,
            )
            .await?;
        started(&data)
    }

    /// `GET /api/v1/browser/active`: the profile's browser if it is running.
    pub async fn active(&self, user_id: &str) -> Result<Option<Started>, AdsPowerError> {
        let data = self.call("/api/v1/browser/active", &[("user_id", user_id)], CALL_TIMEOUT).await?;
        if data["status"].as_str() == Some("Active") { started(&data).map(Some) } else { Ok(None) }
    }

    /// `GET /api/v1/browser/stop`: closes the profile's browser.
    pub async fn stop(&self, user_id: &str) -> Result<(), AdsPowerError> {
        self.call("/api/v1/browser/stop", &[("user_id", user_id)], CALL_TIMEOUT).await.map(|_| ())
    }

    /// `GET /api/v1/user/list`: ids of the first page (up to 100) of profiles.
    pub async fn list_users(&self) -> Result<Vec<String>, AdsPowerError> {
        let data = self.call("/api/v1/user/list", &[("page", "1"), ("page_size", "100")], CALL_TIMEOUT).await?;
        let list = data["list"].as_array().ok_or_else(|| AdsPowerError::BadAnswer("no data.list".into()))?;
        Ok(list.iter().filter_map(|p| p["user_id"].as_str().map(str::to_string)).collect())
    }
}

fn started(data: &Value) -> Result<Started, AdsPowerError> {
    let ws = data["ws"]["puppeteer"].as_str().filter(|ws| ws.starts_with("ws://") || ws.starts_with("wss://"));
    let ws_puppeteer = ws.ok_or_else(|| AdsPowerError::BadAnswer("no data.ws.puppeteer".into()))?.to_string();
    let debug_port = match &data["debug_port"] {
        Value::String(port) => port.parse().ok(),
        Value::Number(port) => port.as_u64().and_then(|p| u16::try_from(p).ok()),
        _ => None,
    };
    Ok(Started { ws_puppeteer, debug_port })
}

impl From<AdsPowerError> for BrowserError {
    fn from(e: AdsPowerError) -> Self {
        // A refusal of this profile counts against it; AdsPower being down or busy does not.
        let profile_fault = matches!(e, AdsPowerError::Api(_) | AdsPowerError::BadAnswer(_));
        BrowserError::Provider { message: e.to_string(), profile_fault }
    }
}

/// Opens AdsPower profiles.
pub struct AdsPowerProvider {
    client: Arc<AdsPowerClient>,
    launch_timeout: Duration,
    op_timeout: Duration,
    /// `headless=1` on `browser/start`: only when the worker has no display, since a person
    /// can take over only a window that is drawn.
    headless: bool,
}

impl AdsPowerProvider {
    pub fn new(client: Arc<AdsPowerClient>, launch_timeout: Duration, op_timeout: Duration) -> Self {
        Self { client, launch_timeout, op_timeout, headless: true }
    }

    /// Starts browsers headful (`headless=0`) when the worker has a display, headless otherwise.
    pub fn with_display(mut self, has_display: bool) -> Self {
        self.headless = !has_display;
        self
    }
}

/// Asks AdsPower every `LIVENESS_EVERY` whether the profile's browser still runs (a hung
/// DevTools socket would otherwise go unnoticed); an `Inactive` answer marks the handle dead.
async fn watch_liveness(
    client: Arc<AdsPowerClient>,
    user_id: String,
    dead: CancellationToken,
    closing: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = closing.cancelled() => return,
            _ = dead.cancelled() => return,
            _ = tokio::time::sleep(LIVENESS_EVERY) => {}
        }
        if let Ok(None) = client.active(&user_id).await
            && !closing.is_cancelled()
        {
            tracing::warn!("AdsPower reports the profile's browser inactive");
            dead.cancel();
            return;
        }
    }
}

impl AdsPowerProvider {
    /// Connects to the profile's running browser at `ws_url` and takes `page`; on failure the
    /// browser is stopped.
    async fn connect(&self, user_id: &str, ws_url: String, page: PageOf) -> Result<BrowserHandle, BrowserError> {
        let started_at = Instant::now();
        // Fired by closing: ends the liveness poll before `browser/stop`.
        let closing = CancellationToken::new();
        let stop: Release = {
            let client = self.client.clone();
            let user_id = user_id.to_string();
            let closing = closing.clone();
            Box::new(move || {
                Box::pin(async move {
                    closing.cancel();
                    if let Err(e) = client.stop(&user_id).await {
                        tracing::warn!(error = %e, "AdsPower browser/stop failed");
                    }
                })
            })
        };
        let connection =
            match Connection::open(&ws_url, &page, self.launch_timeout, self.op_timeout, &mut Phases::start()).await {
                Ok(connection) => connection,
                Err(e) => {
                    stop().await;
                    return Err(e);
                }
            };
        let dead = CancellationToken::new();
        tokio::spawn(watch_liveness(self.client.clone(), user_id.to_string(), dead.clone(), closing));
        let start_ms = started_at.elapsed().as_millis() as u64;
        Ok(BrowserHandle::new(connection, ws_url, dead, Owner::Provider(stop), self.op_timeout, start_ms))
    }
}

#[async_trait]
impl BrowserProvider for AdsPowerProvider {
    fn name(&self) -> &'static str {
        "adspower"
    }

    async fn launch(&self, spec: LaunchSpec) -> Result<BrowserHandle, BrowserError> {
        let started_at = Instant::now();
        let user_id =
            spec.profile_id.ok_or_else(|| BrowserError::Launch("the adspower provider needs a profile_id".into()))?;
        let started =
            self.client.start(&user_id, self.headless, &["--window-size=1280,900"], self.launch_timeout).await?;
        tracing::debug!(debug_port = ?started.debug_port, "connecting to an AdsPower browser");
        let mut handle = self.connect(&user_id, started.ws_puppeteer, PageOf::New).await?;
        handle.start_ms = started_at.elapsed().as_millis() as u64;
        Ok(handle)
    }

    async fn reattach(&self, saved: &SavedBrowser, profile_id: Option<&str>) -> Result<BrowserHandle, BrowserError> {
        let user_id = profile_id.ok_or(BrowserError::Disconnected)?;
        // Still running, and where AdsPower says it is now.
        let active = self.client.active(user_id).await?.ok_or(BrowserError::Disconnected)?;
        let mut handle = self.connect(user_id, active.ws_puppeteer, PageOf::Target(saved.page_target.clone())).await?;
        handle.start_ms = 0;
        Ok(handle)
    }
}
