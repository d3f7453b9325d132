//! Worker memory per open session and over many create/delete cycles (`cargo bench --bench session_memory`).
//!
//! SPEC quality bar: the worker's own memory per open session (the browser excluded) ≤ 2 MiB, no
//! growth over 200 create/delete cycles, and no leftover processes or temp dirs. The worker's
//! memory is the `VmRSS` of its own process from `/proc/<pid>/status`; Chromium runs in separate
//! processes, so it is excluded by construction.
//!
//! Beside it, the browsers' own memory: with the sessions open and each on a form page, the
//! proportional set size (PSS, shared pages divided among the processes that map them) of every
//! Chromium process of the worker, per session, and so how many such sessions fit in a GiB
//! in `process` mode (a browser per session) and in `context` mode (a browser context per
//! session in a shared browser, `BW_EPHEMERAL_MODE=context`), and the create latency of a
//! context once its shared browser runs.
//!
//! The worker binary is built here (`cargo build --release`) and run as a child process on a free
//! loopback port with a fresh data dir; the pages it navigates to come from a tiny HTTP server on
//! loopback inside this bench (allowed with `BW_EGRESS_ALLOW`). Only the Markdown report goes to
//! stdout; progress goes to stderr.
//! The `Worker` guard stops the worker and every browser it left on every exit path.

#[allow(dead_code, reason = "this bench uses part of the shared harness")]
mod common;

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use common::{API_KEY, Api, Shutdown, Worker, browsers_of, processes, stat};

/// `BW_MAX_SESSIONS` of the worker under test.
const MAX_SESSIONS: usize = 12;
/// Sessions held open at once for the per-session figure.
const OPEN_SESSIONS: usize = 10;
const WARM_UP_CYCLES: usize = 3;
/// The growth is measured from this cycle on, once the allocator has warmed up.
const FIRST_SAMPLE: usize = 10;
const SAMPLE_EVERY: usize = 50;
/// Growth up to this much is allocator noise.
const GROWTH_LIMIT_KIB: i64 = 1024;
const PER_SESSION_LIMIT_KIB: f64 = 2048.0;
/// Pause before each RSS reading so that the worker's teardown work has finished.
const SETTLE: Duration = Duration::from_millis(500);
const PAGE: &str = "<!doctype html><html><head><title>bench</title></head><body><h1>bench</h1></body></html>";
/// An application form of the usual size (served at `/form`), for the browsers' memory.
const FORM: &str = include_str!("form.html");

#[tokio::main]
async fn main() -> Result<()> {
    common::print_report(run()).await
}

async fn run() -> Result<String> {
    let cycles = common::env_count("BENCH_CYCLES", 200)?;
    ensure!(cycles >= FIRST_SAMPLE, "BENCH_CYCLES must be at least {FIRST_SAMPLE}");
    let chromium = common::chromium();
    let bin = common::build_worker()?;
    let http = common::http_client()?;
    let pages = common::serve_pages(&[("/", PAGE), ("/form", FORM)]).await?;
    let page_url = format!("http://{pages}/");
    // The pages are on loopback, which sessions reach only when allowed.
    let env = [("BW_EGRESS_ALLOW", pages.as_str())];
    let mut worker = Worker::start_with(&bin, &chromium, MAX_SESSIONS, 0, &http, &env).await?;
    let api = Api { http: &http, base: &worker.base };
    tokio::time::sleep(SETTLE).await;
    let idle = worker.memory()?;
    eprintln!("worker pid {}: idle RSS {:.1} MiB", worker.pid, mib(idle.rss));

    eprintln!("per session: {WARM_UP_CYCLES} warm-up cycles, then {OPEN_SESSIONS} sessions open at once");
    for _ in 0..WARM_UP_CYCLES {
        let (id, _) = api.create().await.context("warm-up create")?;
        api.delete(&id).await.context("warm-up delete")?;
    }
    tokio::time::sleep(SETTLE).await;
    let baseline = worker.memory()?;
    let mut open = Vec::new();
    for n in 0..OPEN_SESSIONS {
        open.push(api.create().await.with_context(|| format!("opening session {}", n + 1))?.0);
    }
    tokio::time::sleep(SETTLE).await;
    let loaded = worker.memory()?;
    for id in &open {
        api.navigate(id, &format!("{page_url}form")).await.context("opening the form page")?;
    }
    let browsers = Pss::of(&worker).await;
    eprintln!("  Chromium PSS per session on a form: {browsers}");
    // The leftover counters must see the open sessions, or a zero at the end would prove nothing.
    let seen = Leftovers::count(&worker);
    eprintln!("  with {OPEN_SESSIONS} open: {seen:?}");
    ensure!(
        seen.temp_dirs >= OPEN_SESSIONS && seen.pid_records >= OPEN_SESSIONS && seen.browsers >= OPEN_SESSIONS,
        "the leftover counters do not see the {OPEN_SESSIONS} open sessions: {seen:?}"
    );
    for id in &open {
        api.delete(id).await?;
    }
    let per_session = PerSession::between(&baseline, &loaded);
    eprintln!(
        "  RSS {:.2} → {:.2} MiB with {OPEN_SESSIONS} open: {:.0} KiB per session (RssAnon {})",
        mib(baseline.rss),
        mib(loaded.rss),
        per_session.rss_kib,
        per_session.anon_kib.map_or("n/a".into(), |k| format!("{k:.0} KiB")),
    );

    eprintln!("growth: {cycles} cycles of create → navigate {page_url} → screenshot → delete");
    let mut samples = Vec::new();
    for cycle in 1..=cycles {
        let (id, _) = api.create().await.with_context(|| format!("cycle {cycle}: create"))?;
        api.navigate(&id, &page_url).await.with_context(|| format!("cycle {cycle}: navigate"))?;
        api.screenshot(&id).await.with_context(|| format!("cycle {cycle}: screenshot"))?;
        api.delete(&id).await.with_context(|| format!("cycle {cycle}: delete"))?;
        if cycle == FIRST_SAMPLE || cycle % SAMPLE_EVERY == 0 || cycle == cycles {
            tokio::time::sleep(SETTLE).await;
            let memory = worker.memory()?;
            eprintln!("  cycle {cycle}/{cycles}: RSS {:.2} MiB", mib(memory.rss));
            samples.push((cycle, memory));
        }
    }

    tokio::time::sleep(SETTLE).await;
    let leftovers = Leftovers::count(&worker);
    eprintln!("leftovers before shutdown: {leftovers:?}");
    let shutdown = worker.stop().context("the worker was already stopped")?;
    eprintln!("worker exit: {:?}; browsers left after exit: {}", shutdown.status, shutdown.browsers_left);

    let contexts = context_mode(&bin, &chromium, &http, &env, &format!("{page_url}form")).await?;
    let machine = common::machine_line(&chromium);
    let mut text = report(&machine, cycles, &idle, &per_session, &browsers, &samples, &leftovers, &shutdown);
    text.push_str(&contexts.report(&browsers));
    Ok(text)
}

/// Context creates timed one at a time, after the warm-up.
const CONTEXT_CREATES: usize = 100;

/// What context mode costs: Chromium PSS per session, and how long a create takes.
struct ContextMode {
    pss: Pss,
    browsers: usize,
    create: common::Stats,
    browsers_left: usize,
}

/// The same `OPEN_SESSIONS` on the form in a context-mode worker (all in one shared browser),
/// then `CONTEXT_CREATES` creates and deletes one at a time.
async fn context_mode(
    bin: &std::path::Path,
    chromium: &str,
    http: &reqwest::Client,
    env: &[(&str, &str)],
    form: &str,
) -> Result<ContextMode> {
    let per_browser = OPEN_SESSIONS.to_string();
    let mut env = env.to_vec();
    env.extend([("BW_EPHEMERAL_MODE", "context"), ("BW_CONTEXTS_PER_BROWSER", per_browser.as_str())]);
    let mut worker = Worker::start_with(bin, chromium, MAX_SESSIONS, 0, http, &env).await?;
    let api = Api { http, base: &worker.base };
    eprintln!("context mode: {OPEN_SESSIONS} sessions on a form in a shared browser");
    let mut open = Vec::new();
    for n in 0..OPEN_SESSIONS {
        let (id, _) = api.create().await.with_context(|| format!("opening context session {}", n + 1))?;
        api.navigate(&id, form).await.context("opening the form page")?;
        open.push(id);
    }
    let pss = Pss::of(&worker).await;
    // Pid records: one per browser (its helper and renderer processes are not recorded).
    let browsers = fs::read_dir(worker.data_dir.path().join("run")).map_or(0, |d| d.count());
    eprintln!("  Chromium PSS per session: {pss} in {browsers} browser(s)");
    for id in open.iter().skip(1) {
        api.delete(id).await?;
    }
    eprintln!("  {CONTEXT_CREATES} creates one at a time (the shared browser runs)");
    let mut samples = Vec::new();
    for _ in 0..CONTEXT_CREATES {
        let (id, took) = api.create().await.context("context create")?;
        samples.push(took);
        api.delete(&id).await?;
    }
    api.delete(&open[0]).await?;
    let shutdown = worker.stop().context("the worker was already stopped")?;
    Ok(ContextMode { pss, browsers, create: common::Stats::of(&samples), browsers_left: shutdown.browsers_left })
}

impl ContextMode {
    fn report(&self, process: &Pss) -> String {
        let met = |ok: bool| if ok { "met" } else { "NOT met" };
        format!(
            "\n### Context mode (`BW_EPHEMERAL_MODE=context`)\n\n\
             | measurement | value | target |\n| --- | --- | --- |\n\
             | Chromium PSS per session on a form page ({OPEN_SESSIONS} open in {browsers} shared browser(s)) \
             | {first:.1} MiB | ≤ 60 MiB: {pss_verdict} |\n\
             | the same {later_s} s after the last navigation | {later:.1} MiB | |\n\
             | sessions per GiB of Chromium memory | {per_gib:.1} ({ratio:.1}× `process` mode) | |\n\
             | context create without a pool, one at a time ({CONTEXT_CREATES}), p50 / p95 / p99 \
             | {p50:.1} / {p95:.1} / {p99:.1} ms | p99 ≤ 20 ms: {create_verdict} |\n\
             | browser processes left after the worker exited | {left} | 0 |\n\n\
             The same {OPEN_SESSIONS} sessions on the same form as above, in a worker with \
             `BW_CONTEXTS_PER_BROWSER={OPEN_SESSIONS}` (so one shared browser), PSS summed the same way. \
             A create is `POST /api/v2/sessions` (a new browser context and its first page in the running \
             shared browser) timed at the client, each followed by its `DELETE`. Most of it is Chromium \
             starting the context's first renderer process: the same calls made directly over CDP \
             (`Target.createBrowserContext`, `Target.createTarget`, attaching with `Page.enable` and \
             `Runtime.enable`) took about 5, 40 and 60 ms on this machine. With `BW_WARM_POOL` the pool holds \
             ready contexts and a create is a pool hit (`session_create`'s context-mode bursts).\n",
            browsers = self.browsers,
            later = self.pss.later / 1024.0,
            later_s = PSS_LATER.as_secs(),
            first = self.pss.first / 1024.0,
            pss_verdict = met(self.pss.first / 1024.0 <= 60.0),
            per_gib = 1024.0 * 1024.0 / self.pss.first,
            ratio = process.first / self.pss.first,
            p50 = self.create.p50,
            p95 = self.create.p95,
            p99 = self.create.p99,
            create_verdict = met(self.create.p99 <= 20.0),
            left = self.browsers_left,
        )
    }
}

/// Sum of the PSS of every process of the worker's browsers (each browser with all below it).
/// Chromium's PSS per open session: read `SETTLE` after the last navigation (what the targets
/// use), and again `PSS_LATER` after it: Chromium gives memory back some seconds after pages
/// have loaded (compositor frames, tiles and caches it trims once nothing changes).
struct Pss {
    first: f64,
    later: f64,
}

/// When the second PSS reading is taken, after the last navigation.
const PSS_LATER: Duration = Duration::from_secs(10);

impl Pss {
    async fn of(worker: &Worker) -> Self {
        let per_session = || chromium_pss_kib(worker) as f64 / OPEN_SESSIONS as f64;
        tokio::time::sleep(SETTLE).await;
        let first = per_session();
        tokio::time::sleep(PSS_LATER - SETTLE).await;
        Self { first, later: per_session() }
    }
}

impl std::fmt::Display for Pss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (first, later) = (self.first / 1024.0, self.later / 1024.0);
        write!(f, "{first:.1} MiB after {} ms, {later:.1} MiB after {} s", SETTLE.as_millis(), PSS_LATER.as_secs())
    }
}

fn chromium_pss_kib(worker: &Worker) -> u64 {
    let mut pids: Vec<i32> = browsers_of(worker.data_dir.path());
    let below: Vec<i32> = pids.iter().flat_map(|&root| common::descendants(root)).map(|(pid, _)| pid).collect();
    pids.extend(below);
    pids.sort_unstable();
    pids.dedup();
    pids.iter().filter_map(|pid| pss_kib(*pid)).sum()
}

/// `Pss:` of `/proc/<pid>/smaps_rollup`, in KiB.
fn pss_kib(pid: i32) -> Option<u64> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The session calls only this bench makes.
impl Api<'_> {
    /// `POST /api/v2/sessions/{id}/navigate` to `url`, which must answer 200.
    async fn navigate(&self, id: &str, url: &str) -> Result<()> {
        let navigate = self.http.post(format!("{}/api/v2/sessions/{id}/navigate", self.base)).bearer_auth(API_KEY);
        let response = navigate.json(&serde_json::json!({ "url": url })).send().await.context("POST …/navigate")?;
        let status = response.status();
        let body = response.text().await.context("reading the navigate response")?;
        ensure!(status == 200, "POST …/navigate returned {status}: {body}");
        Ok(())
    }

    /// `GET /api/v2/sessions/{id}/screenshot`, which must answer 200 with a PNG.
    async fn screenshot(&self, id: &str) -> Result<()> {
        let screenshot = self.http.get(format!("{}/api/v2/sessions/{id}/screenshot", self.base)).bearer_auth(API_KEY);
        let response = screenshot.send().await.context("GET …/screenshot")?;
        let status = response.status();
        let body = response.bytes().await.context("reading the screenshot")?;
        ensure!(status == 200, "GET …/screenshot returned {status}: {}", String::from_utf8_lossy(&body));
        ensure!(body.starts_with(b"\x89PNG"), "GET …/screenshot answered {} bytes that are not a PNG", body.len());
        Ok(())
    }
}

/// The worker process's own memory, in KiB.
struct Memory {
    rss: u64,
    anon: Option<u64>,
}

impl Memory {
    fn of(pid: u32) -> Result<Self> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).context("reading the worker's status")?;
        let field = |name: &str| {
            status.lines().find_map(|line| line.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse().ok())
        };
        Ok(Memory { rss: field("VmRSS:").context("no VmRSS in the worker's status")?, anon: field("RssAnon:") })
    }
}

/// Growth of the worker's memory per open session, in KiB.
struct PerSession {
    baseline: u64,
    loaded: u64,
    rss_kib: f64,
    anon_kib: Option<f64>,
}

impl PerSession {
    fn between(baseline: &Memory, loaded: &Memory) -> Self {
        let per = |before: u64, after: u64| (after as f64 - before as f64) / OPEN_SESSIONS as f64;
        PerSession {
            baseline: baseline.rss,
            loaded: loaded.rss,
            rss_kib: per(baseline.rss, loaded.rss),
            anon_kib: baseline.anon.zip(loaded.anon).map(|(before, after)| per(before, after)),
        }
    }
}

/// What the worker left behind once every session was closed.
#[derive(Debug)]
struct Leftovers {
    temp_dirs: usize,
    pid_records: usize,
    browsers: usize,
    zombies: usize,
}

impl Leftovers {
    fn count(worker: &Worker) -> Self {
        let entries = |dir: &str| fs::read_dir(worker.data_dir.path().join(dir)).map_or(0, |d| d.count());
        let zombies = processes().filter(|&pid| stat(pid).is_some_and(|s| s.0 == 'Z' && s.1 == worker.pid as i32));
        Leftovers {
            temp_dirs: entries("tmp"),
            pid_records: entries("run"),
            browsers: browsers_of(worker.data_dir.path()).len(),
            zombies: zombies.count(),
        }
    }

    fn total(&self) -> usize {
        self.temp_dirs + self.pid_records + self.browsers + self.zombies
    }
}

impl Worker {
    /// The worker process's own memory now.
    fn memory(&self) -> Result<Memory> {
        Memory::of(self.pid)
    }
}

/// KiB to MiB.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[allow(clippy::too_many_arguments, reason = "one report of one run")]
fn report(
    machine: &str,
    cycles: usize,
    idle: &Memory,
    per_session: &PerSession,
    browsers: &Pss,
    samples: &[(usize, Memory)],
    leftovers: &Leftovers,
    shutdown: &Shutdown,
) -> String {
    let first = samples.first().expect("cycle 10 is always sampled");
    let last = samples.last().expect("the last cycle is always sampled");
    let growth = last.1.rss as i64 - first.1.rss as i64;
    let anon_growth = first.1.anon.zip(last.1.anon).map(|(a, b)| b as i64 - a as i64);
    let by_cycle = |value: &dyn Fn(&Memory) -> Option<u64>| {
        let mut parts = samples.iter().filter_map(|(cycle, m)| Some((cycle, mib(value(m)?))));
        let head = parts.next().map(|(cycle, v)| format!("{cycle}: {v:.2} MiB"));
        head.into_iter().chain(parts.map(|(cycle, v)| format!("{cycle}: {v:.2}"))).collect::<Vec<_>>().join(", ")
    };
    let per_session_verdict = if per_session.rss_kib <= PER_SESSION_LIMIT_KIB { "met" } else { "NOT met" };
    let growth_verdict = if growth <= GROWTH_LIMIT_KIB { "no growth" } else { "GROWTH" };
    let leftover_verdict = if leftovers.total() == 0 && shutdown.browsers_left == 0 { "none" } else { "LEFTOVERS" };
    let exit = match (shutdown.status, shutdown.killed) {
        (_, true) => "had to be killed after ignoring SIGTERM for 15 s".to_string(),
        (Some(status), false) => format!("exited on SIGTERM with {status}"),
        (None, false) => "exited on SIGTERM (status unknown)".to_string(),
    };
    format!(
        "## Worker memory per session and over {cycles} create/delete cycles — {date}\n\n{machine}\n\n\
         Command: `make bench` (`cargo bench --bench session_memory`)\n\n\
         | measurement | value | target |\n| --- | --- | --- |\n\
         | worker RSS, idle | {idle:.1} MiB | |\n\
         | worker RSS per open session ({OPEN_SESSIONS} open) | {per:.0} KiB | ≤ {PER_SESSION_LIMIT_KIB:.0} KiB |\n\
         | RSS growth, cycle {FIRST_SAMPLE} → {cycles} | {growth} KiB | ≈ 0 (≤ {GROWTH_LIMIT_KIB} KiB) |\n\
         | leftover temp dirs / pid records / browser processes / zombies | {tmp} / {run} / {procs} / {zombies} | 0 |\n\
         | Chromium PSS per session on a form page ({OPEN_SESSIONS} open, `process` mode) | {browser_first:.1} MiB | |\n\
         | the same {later_s} s after the last navigation | {browser_later:.1} MiB | |\n\
         | sessions per GiB of Chromium memory | {per_gib:.1} | |\n\n\
         RSS by cycle: {rss_by_cycle}\n\n\
         RssAnon by cycle: {anon_by_cycle} (growth {anon_growth}; per open session {anon_per})\n\n\
         Per session: {per_session_verdict} ({base:.2} MiB after {WARM_UP_CYCLES} warm-up create/delete cycles, \
         {loaded:.2} MiB with {OPEN_SESSIONS} sessions open). Growth: {growth_verdict}. Leftovers: {leftover_verdict}; \
         the worker {exit} and left {browsers_left} browser processes behind.\n\n\
         RSS is `VmRSS` of the worker process alone (`/proc/<pid>/status`); Chromium runs in separate processes \
         and is not counted. Worker settings: `BW_MAX_SESSIONS={MAX_SESSIONS} BW_WARM_POOL=0 BW_LOG=warn`. Each \
         cycle is `POST /api/v2/sessions` → `POST …/navigate` to a {page_len}-byte page on a loopback server → \
         `GET …/screenshot` → `DELETE`, one session at a time; RSS is read {settle} ms after the last request. \
         Leftovers are counted after the last cycle with the worker still running (`<data_dir>/tmp`, \
         `<data_dir>/run`, processes with a `--user-data-dir` in the data dir, zombie children of the worker), \
         and browsers again after it has exited. Chromium PSS is the sum of `Pss:` in \
         `/proc/<pid>/smaps_rollup` over every process of the worker's browsers with the {OPEN_SESSIONS} sessions \
         each on a {form_len}-byte application form (`benches/form.html`: 15 controls, a file input and three selects among them), \
         read {settle} ms after the last navigation (the figure the targets and sessions per GiB use), and \
         again {later_s} s after it: Chromium gives memory back some seconds after pages have loaded.\n",
        date = common::report_date(),
        idle = mib(idle.rss),
        per = per_session.rss_kib,
        tmp = leftovers.temp_dirs,
        run = leftovers.pid_records,
        procs = leftovers.browsers,
        zombies = leftovers.zombies,
        rss_by_cycle = by_cycle(&|m| Some(m.rss)),
        anon_by_cycle = by_cycle(&|m| m.anon),
        anon_growth = anon_growth.map_or("n/a".into(), |g| format!("{g} KiB")),
        anon_per = per_session.anon_kib.map_or("n/a".into(), |k| format!("{k:.0} KiB")),
        base = mib(per_session.baseline),
        loaded = mib(per_session.loaded),
        browsers_left = shutdown.browsers_left,
        page_len = PAGE.len(),
        browser_later = browsers.later / 1024.0,
        later_s = PSS_LATER.as_secs(),
        browser_first = browsers.first / 1024.0,
        per_gib = 1024.0 * 1024.0 / browsers.first,
        settle = SETTLE.as_millis(),
        form_len = FORM.len(),
    )
}
