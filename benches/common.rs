//! What the benches share: running the report under Ctrl-C, building and spawning the worker on a
//! free loopback port with a fresh data dir, the `Worker` guard that stops it and every process it
//! left (SIGTERM, then SIGKILL) on every exit path, the session create/delete calls, `/proc`
//! helpers, settings read from the environment and the machine line of the reports.

use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The bearer token the worker is started with.
pub const API_KEY: &str = "bench-key-0123456789abcdef";
/// The browser used unless `BENCH_CHROMIUM` names another.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// How long the worker (and, where awaited, its warm pool) may take to come up.
pub const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// Runs the bench and prints its Markdown report to stdout; Ctrl-C ends it with an error instead.
pub async fn print_report(run: impl Future<Output = Result<String>>) -> Result<()> {
    let report = tokio::select! {
        report = run => report?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    print!("{report}");
    Ok(())
}

/// The Chromium binary: `BENCH_CHROMIUM`, or `DEFAULT_CHROMIUM`.
pub fn chromium() -> String {
    env::var("BENCH_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.into())
}

/// The HTTP client that talks to the worker.
pub fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?)
}

/// A positive count from the environment variable `name`, or `default` if it is unset.
pub fn env_count(name: &str, default: usize) -> Result<usize> {
    let count = env::var(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name}={v}")))?;
    ensure!(count > 0, "{name} must be at least 1");
    Ok(count)
}

/// The time stamp in a report's heading.
pub fn report_date() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Builds the worker in the release profile so `make bench` needs nothing else.
pub fn build_worker() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    eprintln!("building target/release/browser-worker");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "browser-worker", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"))
        .stdout(stderr_stdio()?)
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "cargo build --release --bin browser-worker failed: {status}");
    let target = env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest_dir.join("target"), PathBuf::from);
    Ok(target.join("release").join("browser-worker"))
}

/// A child's stdout pointed at our stderr, keeping the report alone on stdout.
fn stderr_stdio() -> Result<Stdio> {
    Ok(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
}

/// A running worker; stopping it (explicitly or on drop) leaves no process behind.
pub struct Worker {
    child: Option<Child>,
    /// The worker process.
    pub pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `BW_DATA_DIR`; removed after the worker has exited.
    pub data_dir: tempfile::TempDir,
}

/// How the worker ended.
#[allow(dead_code, reason = "only session_memory reports how the worker ended")]
pub struct Shutdown {
    /// The exit status, if it could be collected.
    pub status: Option<ExitStatus>,
    /// SIGTERM was not enough.
    pub killed: bool,
    /// Browser processes of this data dir still running after the worker exited.
    pub browsers_left: usize,
}

impl Worker {
    /// Starts `bin` on a free loopback port with a fresh data dir, `chromium` as its browser, no other
    /// `BW_*` setting from our environment, and the given session limit and warm pool; returns once
    /// `GET /health` answers 200.
    pub async fn start(
        bin: &Path,
        chromium: &str,
        max_sessions: usize,
        warm_pool: u32,
        http: &reqwest::Client,
    ) -> Result<Self> {
        Self::start_with(bin, chromium, max_sessions, warm_pool, http, &[]).await
    }

    /// `start` with extra `BW_*` variables, e.g. `[("BW_DISPLAY_MODE", "per-session")]`.
    pub async fn start_with(
        bin: &Path,
        chromium: &str,
        max_sessions: usize,
        warm_pool: u32,
        http: &reqwest::Client,
        extra_env: &[(&str, &str)],
    ) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data_dir = tempfile::tempdir().context("creating BW_DATA_DIR")?;
        let mut cmd = Command::new(bin);
        for (key, _) in env::vars_os().filter(|(key, _)| key.to_string_lossy().starts_with("BW_")) {
            cmd.env_remove(key);
        }
        cmd.env("BW_BIND", format!("127.0.0.1:{port}"))
            .env("BW_API_KEYS", API_KEY)
            .env("BW_DATA_DIR", data_dir.path())
            .env("BW_CHROMIUM_PATH", chromium)
            .env("BW_MAX_SESSIONS", max_sessions.to_string())
            .env("BW_WARM_POOL", warm_pool.to_string())
            .env("BW_LOG_FORMAT", "json")
            .env("BW_LOG", "warn")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stderr_stdio()?);
        let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let mut worker = Worker { child: Some(child), pid, base: format!("http://127.0.0.1:{port}"), data_dir };
        let deadline = Instant::now() + STARTUP_LIMIT;
        while Instant::now() < deadline {
            if let Some(status) = worker.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("worker exited during start-up: {status}");
            }
            if http.get(format!("{}/health", worker.base)).send().await.is_ok_and(|r| r.status() == 200) {
                return Ok(worker);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("worker did not answer GET /health with 200 within {STARTUP_LIMIT:?}")
    }

    /// SIGTERM, wait up to 15 s, then SIGKILL; counts the browsers still running, then kills them
    /// and any other descendant it left (Chromium runs in its own process group, so it would
    /// outlive a killed worker). `None` if already stopped.
    pub fn stop(&mut self) -> Option<Shutdown> {
        let mut child = self.child.take()?;
        let pid = self.pid as i32;
        let family = descendants(pid);
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        let killed = matches!(child.try_wait(), Ok(None));
        if killed {
            eprintln!("warning: worker ignored SIGTERM for 15 s; killing it");
            let _ = child.kill();
        }
        let status = child.wait().ok();
        thread::sleep(Duration::from_millis(500));
        let browsers = browsers_of(self.data_dir.path());
        // Same pid and start time, and not a zombie (those are already dead).
        let left = family.into_iter().filter(|&(p, start)| stat(p).is_some_and(|s| s.0 != 'Z' && s.2 == start));
        for pid in left.map(|(pid, _)| pid).chain(browsers.iter().copied()) {
            eprintln!("warning: worker left process {pid} running; killing it");
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        Some(Shutdown { status, killed, browsers_left: browsers.len() })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The worker's session API, as used by the benches.
pub struct Api<'a> {
    /// The client the requests go through.
    pub http: &'a reqwest::Client,
    /// The worker's `Worker::base`.
    pub base: &'a str,
}

impl Api<'_> {
    /// `POST /api/v2/sessions` with `{}`: the new session's id, and the time from sending the
    /// request until the 201 body had arrived.
    pub async fn create(&self) -> Result<(String, Duration)> {
        self.create_with(serde_json::json!({})).await
    }

    /// `create` with a request body of its own (e.g. a `profile_id`).
    pub async fn create_with(&self, body: serde_json::Value) -> Result<(String, Duration)> {
        let start = Instant::now();
        let create = self.http.post(format!("{}/api/v2/sessions", self.base)).bearer_auth(API_KEY);
        let response = create.json(&body).send().await.context("POST /api/v2/sessions")?;
        let status = response.status();
        let body = response.text().await.context("reading the create response")?;
        let elapsed = start.elapsed();
        ensure!(status == 201, "POST /api/v2/sessions returned {status}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).context("create response is not JSON")?;
        let id = body["session_id"].as_str().context("create response has no session_id")?;
        Ok((id.to_string(), elapsed))
    }

    /// `DELETE /api/v2/sessions/{id}`, which must answer 200.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let delete = self.http.delete(format!("{}/api/v2/sessions/{id}", self.base)).bearer_auth(API_KEY);
        let response = delete.send().await.with_context(|| format!("DELETE /api/v2/sessions/{id}"))?;
        ensure!(response.status() == 200, "DELETE /api/v2/sessions/{id} returned {}", response.status());
        Ok(())
    }
}

/// The worker's `/metrics` text.
pub async fn metrics(http: &reqwest::Client, base: &str) -> Result<String> {
    let response = http.get(format!("{base}/metrics")).bearer_auth(API_KEY).send().await;
    Ok(response.and_then(|r| r.error_for_status()).context("GET /metrics")?.text().await?)
}

/// Live processes whose command line has a `--user-data-dir` inside `data_dir`.
pub fn browsers_of(data_dir: &Path) -> Vec<i32> {
    let marker = format!("--user-data-dir={}/", data_dir.display()).into_bytes();
    processes()
        .filter(|&pid| stat(pid).is_some_and(|s| s.0 != 'Z'))
        .filter(|&pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.windows(marker.len()).any(|w| w == marker)
        })
        .collect()
}

/// Every pid listed in `/proc`.
pub fn processes() -> impl Iterator<Item = i32> {
    fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// Every process below `root`, as (pid, start time) so a reused pid is never mistaken for it.
pub fn descendants(root: i32) -> Vec<(i32, u64)> {
    let all: Vec<(i32, i32, u64)> =
        processes().filter_map(|pid| stat(pid).map(|(_, ppid, start)| (pid, ppid, start))).collect();
    let (mut found, mut parents) = (Vec::new(), vec![root]);
    while let Some(parent) = parents.pop() {
        for &(pid, _, start) in all.iter().filter(|p| p.1 == parent) {
            found.push((pid, start));
            parents.push(pid);
        }
    }
    found
}

/// (state, parent pid, start time) from `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text.get(text.rfind(')')? + 1..)?.split_whitespace().collect();
    Some((fields.first()?.chars().next()?, fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// The report's `Machine: …` line: cores, RAM, and the versions of `chromium` and rustc.
pub fn machine_line(chromium: &str) -> String {
    let version = |program: &str| {
        let output = Command::new(program).arg("--version").output();
        output.map_or_else(
            |_| format!("{program}: unknown version"),
            |o| String::from_utf8_lossy(&o.stdout).trim().into(),
        )
    };
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.trim().split(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    let (mem_gib, chromium, rustc) = (mem_kib / 1024.0 / 1024.0, version(chromium), version("rustc"));
    format!("Machine: {cores} cores, {mem_gib:.1} GiB RAM, {chromium}, {rustc}")
}

/// User+system CPU seconds of `pid` (0 if it is gone).
pub fn cpu_seconds(pid: i32) -> f64 {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let Some(close) = text.rfind(')') else { return 0.0 };
    let fields: Vec<u64> = text[close + 2..].split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 (index 11 and 12 after the state); 100 ticks a second.
    (fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

/// Whether `name` is an executable file on `PATH`.
pub fn on_path(name: &str) -> bool {
    env::var_os("PATH").is_some_and(|paths| env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Serves `pages` (path, HTML) on a loopback port for the rest of the bench; returns `127.0.0.1:<port>`.
pub async fn serve_pages(pages: &[(&'static str, &'static str)]) -> Result<String> {
    let mut router = axum::Router::new();
    for &(path, html) in pages {
        router = router.route(path, axum::routing::get(move || async move { axum::response::Html(html) }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr.to_string())
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentiles and the mean of samples, in milliseconds.
pub struct Stats {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub mean: f64,
}

impl Stats {
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted: Vec<f64> = samples.iter().copied().map(ms).collect();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Stats {
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        }
    }
}
