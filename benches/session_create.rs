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

#[allow(dead_code, reason = "this bench uses part of the shared harness")]
mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chromiumoxide::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio_util::task::AbortOnDropHandle;

use common::{API_KEY, Api, STARTUP_LIMIT, Stats, Worker, ms};

/// The worker's own launch flags (plus no start-up tab), so that the baseline starts the same
/// browser; as root, without the sandbox (the worker's browsers run sandboxed as its browser
/// user when there is one: see `/health`).
fn flags() -> impl Iterator<Item = &'static str> {
    use browser_worker::browser::chromium::{CHROMIUM_FLAGS, NO_SANDBOX};
    CHROMIUM_FLAGS.iter().copied().chain(["--no-startup-window", NO_SANDBOX])
}
const WARM_POOL: u32 = 2;
/// Pause between two measurements so one side's teardown does not land in the other's sample.
const SETTLE: Duration = Duration::from_millis(200);
/// `BW_MAX_SESSIONS` of the worker under test.
const MAX_SESSIONS: usize = 4;

#[tokio::main]
async fn main() -> Result<()> {
    common::print_report(run()).await
}

async fn run() -> Result<String> {
    let rounds = common::env_count("BENCH_ROUNDS", 20)?;
    let warm_rounds = common::env_count("BENCH_WARM_ROUNDS", 20)?;
    let chromium = common::chromium();
    let bin = common::build_worker()?;
    let http = common::http_client()?;

    eprintln!("cold: {rounds} rounds, baseline and worker alternated");
    let mut worker = Worker::start(&bin, &chromium, MAX_SESSIONS, 0, &http).await?;
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
    let mut worker = Worker::start(&bin, &chromium, MAX_SESSIONS, WARM_POOL, &http).await?;
    let mut warm = Vec::new();
    for round in 0..warm_rounds {
        wait_pool_ready(&http, &worker.base).await?;
        warm.push(worker_create_delete(&http, &worker.base).await?);
        eprintln!("  create {}/{warm_rounds}: {:.1} ms", round + 1, ms(warm[round]));
    }
    worker.stop();

    let (baseline, cold, warm) = (Stats::of(&baseline), Stats::of(&cold), Stats::of(&warm));
    Ok(report(&common::machine_line(&chromium), rounds, warm_rounds, &baseline, &cold, &warm))
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
    let api = Api { http, base };
    let (id, elapsed) = api.create().await?;
    api.delete(&id).await?;
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

/// A table row: p50, p95 and mean.
fn row(stats: &Stats, label: &str) -> String {
    format!("| {label} | {:.1} | {:.1} | {:.1} |\n", stats.p50, stats.p95, stats.mean)
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
        date = common::report_date(),
        base_row = row(base, "bare chromiumoxide launch+connect+page"),
        cold_row = row(cold, "worker POST /api/v2/sessions (cold)"),
        warm_row = row(warm, "worker POST /api/v2/sessions (pool hit)"),
        r50 = cold.p50 / base.p50,
        r95 = cold.p95 / base.p95,
        bin = common::chromium(),
        flags = flags().collect::<Vec<_>>().join(" "),
    )
}
