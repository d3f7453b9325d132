//! Session-create latency: the worker against a bare chromiumoxide launch (`make bench`).
//!
//! SPEC §5 bounds what the worker may add on top of the browser itself: a cold
//! `POST /api/v2/sessions` must stay within 1.25 × a bare chromiumoxide launch + connect +
//! first page of the same Chromium binary, and with a warm pool (`BW_WARM_POOL=n`) a create
//! must take ≤ 50 ms at p50. Both sides run in one process, alternating A/B then B/A each round,
//! so machine drift and cache effects hit both equally.
//!
//! The worker binary is built here (`cargo build --release`) and run as a child process on a
//! free loopback port with a fresh data dir. Only the Markdown report goes to stdout (the
//! Makefile redirects it into BENCHMARKS.md); progress goes to stderr. The `Worker` guard
//! and chromiumoxide's kill-on-drop stop every worker and browser on every exit path, including
//! errors, panics and Ctrl-C.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use anyhow::{Context, Result, bail, ensure};
use chromiumoxide::{Browser, BrowserConfig};
use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio_util::task::AbortOnDropHandle;

const API_KEY: &str = "bench-key-0123456789abcdef";
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The worker's own launch flags (plus no start-up tab), so that the baseline starts the same browser.
fn flags() -> impl Iterator<Item = &'static str> {
    browser_worker::browser::chromium::CHROMIUM_FLAGS.iter().copied().chain(["--no-startup-window"])
}
const WARM_POOL: u32 = 2;
/// Pause between two measurements so one side's teardown does not land in the other's sample.
const SETTLE: Duration = Duration::from_millis(200);
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<()> {
    let report = tokio::select! {
        report = run() => report?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    print!("{report}");
    Ok(())
}

async fn run() -> Result<String> {
    let rounds = env_count("BENCH_ROUNDS", 20)?;
    let warm_rounds = env_count("BENCH_WARM_ROUNDS", 20)?;
    let chromium = env::var("BENCH_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.into());
    let bin = build_worker()?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;

    eprintln!("cold: {rounds} rounds, baseline and worker alternated");
    let mut worker = Worker::start(&bin, &chromium, 0, &http).await?;
    baseline_create(&chromium).await.context("warm-up bare launch")?;
    worker_create_delete(&http, &worker.base).await.context("warm-up worker create")?;
    let (mut baseline, mut cold) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for baseline_turn in [round % 2 == 0, round % 2 == 1] {
            tokio::time::sleep(SETTLE).await;
            if baseline_turn {
                baseline.push(baseline_create(&chromium).await?);
            } else {
                cold.push(worker_create_delete(&http, &worker.base).await?);
            }
        }
        let (bare, worker) = (ms(baseline[round]), ms(cold[round]));
        eprintln!("  round {}/{rounds}: bare {bare:.0} ms, worker {worker:.0} ms", round + 1);
    }
    worker.stop();

    eprintln!("warm: BW_WARM_POOL={WARM_POOL}, {warm_rounds} creates");
    let mut worker = Worker::start(&bin, &chromium, WARM_POOL, &http).await?;
    let mut warm = Vec::new();
    for round in 0..warm_rounds {
        wait_pool_ready(&http, &worker.base).await?;
        warm.push(worker_create_delete(&http, &worker.base).await?);
        eprintln!("  create {}/{warm_rounds}: {:.1} ms", round + 1, ms(warm[round]));
    }
    worker.stop();

    let (baseline, cold, warm) = (Stats::of(&baseline), Stats::of(&cold), Stats::of(&warm));
    Ok(report(&machine_line(&chromium), rounds, warm_rounds, &baseline, &cold, &warm))
}

/// Bare chromiumoxide: launch, connect, first usable page. Timed from launch to page.
async fn baseline_create(chromium: &str) -> Result<Duration> {
    let profile = tempfile::tempdir().context("creating a temp user-data-dir")?;
    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .no_sandbox()
        .new_headless_mode()
        // chromiumoxide prints each arg as `--{arg}`, so strip our own `--`.
        .args(flags().map(|flag| flag.trim_start_matches("--")))
        // No viewport emulation, as in the worker.
        .viewport(None)
        .user_data_dir(profile.path())
        .build()
        .map_err(anyhow::Error::msg)?;
    let start = Instant::now();
    let (mut browser, mut handler) = Browser::launch(config).await.context("bare launch")?;
    // Aborted on drop: the handler stream never ends on its own once the browser is gone.
    let _handler = AbortOnDropHandle::new(tokio::spawn(async move { while handler.next().await.is_some() {} }));
    let page = browser.new_page("about:blank").await.context("bare new_page")?;
    let elapsed = start.elapsed();
    drop(page);
    browser.close().await.context("closing the bare browser")?;
    browser.wait().await.context("reaping the bare browser")?;
    Ok(elapsed)
}

/// `POST /api/v2/sessions` timed until the 201 body has arrived, then an untimed DELETE.
async fn worker_create_delete(http: &reqwest::Client, base: &str) -> Result<Duration> {
    let start = Instant::now();
    let create = http.post(format!("{base}/api/v2/sessions")).bearer_auth(API_KEY).json(&serde_json::json!({}));
    let response = create.send().await.context("POST /api/v2/sessions")?;
    let status = response.status();
    let body = response.text().await.context("reading the create response")?;
    let elapsed = start.elapsed();
    ensure!(status == 201, "POST /api/v2/sessions returned {status}: {body}");
    let body: serde_json::Value = serde_json::from_str(&body).context("create response is not JSON")?;
    let id = body["session_id"].as_str().context("create response has no session_id")?;
    let delete = http.delete(format!("{base}/api/v2/sessions/{id}")).bearer_auth(API_KEY);
    let response = delete.send().await.with_context(|| format!("DELETE /api/v2/sessions/{id}"))?;
    ensure!(response.status() == 200, "DELETE returned {}", response.status());
    Ok(elapsed)
}

/// Polls `/metrics` until `bw_warm_pool_ready` is back at `WARM_POOL`.
async fn wait_pool_ready(http: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + STARTUP_LIMIT;
    let mut last = None;
    while Instant::now() < deadline {
        let response = http.get(format!("{base}/metrics")).bearer_auth(API_KEY).send().await;
        let text = response.and_then(|r| r.error_for_status()).context("GET /metrics")?.text().await?;
        last = gauge(&text, "bw_warm_pool_ready");
        if last == Some(f64::from(WARM_POOL)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("bw_warm_pool_ready did not reach {WARM_POOL} within {STARTUP_LIMIT:?} (last: {last:?})")
}

/// Value of an unlabelled or labelled Prometheus sample named exactly `name`.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        (rest.starts_with(' ') || rest.starts_with('{')).then_some(())?;
        rest.split_whitespace().last()?.parse().ok()
    })
}

/// A running worker; stopping it (explicitly or on drop) leaves no process behind.
struct Worker {
    child: Option<Child>,
    base: String,
    /// `BW_DATA_DIR`; removed after the worker has exited.
    _data_dir: tempfile::TempDir,
}

impl Worker {
    async fn start(bin: &Path, chromium: &str, warm_pool: u32, http: &reqwest::Client) -> Result<Self> {
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
            .env("BW_MAX_SESSIONS", "4")
            .env("BW_WARM_POOL", warm_pool.to_string())
            .env("BW_LOG_FORMAT", "json")
            .env("BW_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(stderr_stdio()?);
        let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let mut worker = Worker { child: Some(child), base: format!("http://127.0.0.1:{port}"), _data_dir: data_dir };
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

    /// SIGTERM, wait up to 15 s, then SIGKILL; then kills any descendant it left running
    /// (Chromium runs in its own process group, so it would outlive a killed worker).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id() as i32;
        let family = descendants(pid);
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            eprintln!("warning: worker ignored SIGTERM for 15 s; killing it");
            let _ = child.kill();
        }
        let _ = child.wait();
        thread::sleep(Duration::from_millis(500));
        // Same pid and start time, and not a zombie (those are already dead).
        let left = family.into_iter().filter(|&(p, start)| stat(p).is_some_and(|s| s.0 != 'Z' && s.2 == start));
        for (pid, _) in left {
            eprintln!("warning: worker left process {pid} running; killing it");
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every process below `root`, as (pid, start time) so a reused pid is never mistaken for it.
fn descendants(root: i32) -> Vec<(i32, u64)> {
    let pids =
        fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok());
    let all: Vec<(i32, i32, u64)> =
        pids.filter_map(|pid| stat(pid).map(|(_, ppid, start)| (pid, ppid, start))).collect();
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
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text.get(text.rfind(')')? + 1..)?.split_whitespace().collect();
    Some((fields.first()?.chars().next()?, fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Builds the worker in the release profile so `make bench` needs nothing else.
fn build_worker() -> Result<PathBuf> {
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

fn env_count(name: &str, default: usize) -> Result<usize> {
    let count = env::var(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name}={v}")))?;
    ensure!(count > 0, "{name} must be at least 1");
    Ok(count)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50, p95 (nearest rank) and mean, in milliseconds.
struct Stats {
    p50: f64,
    p95: f64,
    mean: f64,
}

impl Stats {
    fn of(samples: &[Duration]) -> Self {
        let mut sorted: Vec<f64> = samples.iter().copied().map(ms).collect();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Stats { p50: rank(50.0), p95: rank(95.0), mean: sorted.iter().sum::<f64>() / sorted.len() as f64 }
    }

    fn row(&self, label: &str) -> String {
        format!("| {label} | {:.1} | {:.1} | {:.1} |\n", self.p50, self.p95, self.mean)
    }
}

fn machine_line(chromium: &str) -> String {
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

fn report(machine: &str, rounds: usize, warm_rounds: usize, base: &Stats, cold: &Stats, warm: &Stats) -> String {
    let header = "| measurement | p50 ms | p95 ms | mean ms |\n| --- | --- | --- | --- |\n";
    let verdict = if warm.p50 <= 50.0 { "met" } else { "NOT met" };
    format!(
        "## Session create (cold) — {date}\n\n{machine}\n\n\
         Command: `make bench` (`cargo bench --bench session_create`), {rounds} rounds alternated\n\n\
         {header}{base_row}{cold_row}\n\
         Ratio worker/baseline: p50 {r50:.2}, p95 {r95:.2} (target ≤ 1.25)\n\n\
         Both sides launch `{bin}` with the worker's flags `{flags}` and no viewport emulation; the baseline \
         also gets chromiumoxide 0.9.1's launcher defaults (puppeteer's flag set, `--disable-extensions`). \
         The worker's figure includes the HTTP round trip, process-group spawn, pid record and session \
         registration. One untimed warm-up of each side precedes the rounds; teardown (close/DELETE) is \
         not timed.\n\n\
         ## Session create (warm pool, BW_WARM_POOL={WARM_POOL})\n\n\
         {header}{warm_row}\n\
         {warm_rounds} creates; after each DELETE the bench waits for `bw_warm_pool_ready {WARM_POOL}` \
         so every create is a pool hit.\n\n\
         Target p50 ≤ 50 ms: {verdict}\n",
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        base_row = base.row("bare chromiumoxide launch+connect+page"),
        cold_row = cold.row("worker POST /api/v2/sessions (cold)"),
        warm_row = warm.row("worker POST /api/v2/sessions (pool hit)"),
        r50 = cold.p50 / base.p50,
        r95 = cold.p95 / base.p95,
        bin = env::var("BENCH_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.into()),
        flags = flags().collect::<Vec<_>>().join(" "),
    )
}
