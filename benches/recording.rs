//! Session recordings (`cargo bench --bench recording`, part of `make bench`): the CPU a recorded
//! session costs and the size of its video per minute (issue targets: ≤ 15% of a core per
//! recorded session, worker and ffmpeg together, and ≤ 10 MB per minute).
//!
//! One release worker; each session runs once without recording (the baseline) and once with
//! `recording: true`, for `BENCH_RECORDING_SECS` (default 30) each, on a page served by this
//! bench on loopback:
//! - modes: a headless session with a 1280x900 viewport, recorded from its CDP screencast (JPEG
//!   frames fed to ffmpeg at 5 fps); and, when Xvfb is installed, a session with a display of
//!   its own (`BW_DISPLAY_MODE=per-session`), recorded by ffmpeg's x11grab of its whole screen;
//! - pages: one that changes moderately (a counter and a typed name every 500 ms, a small
//!   spinner, as a form being filled), and the same form static;
//! - CPU: user+system time over the window of the worker, of the session's ffmpeg (found in
//!   `/proc` by its command line, which holds the worker's data dir), and of the worker's other
//!   descendants (Chromium, Xvfb), as % of one core. The recorder's cost in the worker is the
//!   recorded run's worker CPU minus the baseline's; per session it is that plus ffmpeg's;
//! - size: the MP4 fetched from the close answer's `artifacts`, over its length (ffprobe, else
//!   the session's duration).

#[allow(dead_code, reason = "this bench uses part of the shared harness")]
mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use common::{API_KEY, Api, Worker};

/// Time between the create answer and the window: the recorder and the screencast start.
const WARMUP: Duration = Duration::from_secs(2);
/// The viewport of headless sessions (the issue's size).
const VIEWPORT: (u32, u32) = (1280, 900);
/// Per recorded session, worker and ffmpeg together, % of one core.
const CPU_TARGET: f64 = 15.0;
/// Video size per minute, in MB.
const SIZE_TARGET: f64 = 10.0;
/// Bytes in a MB (decimal, the stricter reading of the target).
const MB: f64 = 1_000_000.0;

/// A form being filled: a counter and a name typed a letter every 500 ms, a small spinner.
const CHANGING: &str = r#"<!doctype html><title>changing</title><style>
body{font:16px sans-serif;margin:40px}label{display:block;margin:14px 0 4px}input{width:320px;padding:6px}
.spin{display:inline-block;width:20px;height:20px;border:3px solid #ccc;border-top-color:#06c;border-radius:50%;animation:spin 1s linear infinite}
@keyframes spin{to{transform:rotate(360deg)}}</style>
<h1>Application form</h1><p><span class=spin></span> Autosaved <span id=n>0</span> times</p>
<label>Full name<input id=name></label><label>Email<input value="jane@example.com"></label>
<label>Cover letter<textarea rows=6 cols=60>I am writing to apply for the position.</textarea></label>
<script>const text='Jane Quinn Applicant';let i=0;setInterval(()=>{i++;document.getElementById('n').textContent=i;
document.getElementById('name').value=text.slice(0,i%(text.length+1))},500)</script>"#;
/// The same form, still.
const STATIC: &str = r#"<!doctype html><title>static</title><style>
body{font:16px sans-serif;margin:40px}label{display:block;margin:14px 0 4px}input{width:320px;padding:6px}</style>
<h1>Application form</h1><p>Autosaved 0 times</p>
<label>Full name<input value="Jane Quinn Applicant"></label><label>Email<input value="jane@example.com"></label>
<label>Cover letter<textarea rows=6 cols=60>I am writing to apply for the position.</textarea></label>"#;

/// The pages each mode is measured on: (path, label).
const PAGES: [(&str, &str); 2] = [("/changing", "changing page"), ("/static", "static page")];

/// How a session shows its page, and so how it is recorded.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Headless with a viewport: the CDP screencast's JPEG frames fed to ffmpeg.
    Screencast,
    /// A per-session display grabbed by ffmpeg's x11grab.
    Display,
}

impl Mode {
    /// The create request's options for this mode.
    fn options(self) -> Value {
        match self {
            Mode::Screencast => json!({"headless": true, "viewport": {"width": VIEWPORT.0, "height": VIEWPORT.1}}),
            Mode::Display => json!({"display": true}),
        }
    }

    /// The mode as the report names it.
    fn label(self) -> String {
        match self {
            Mode::Screencast => format!("screencast, headless {}x{}", VIEWPORT.0, VIEWPORT.1),
            Mode::Display => "display (x11grab), screen 1920x1080".into(),
        }
    }
}

/// What one run measured over its window; CPU as % of one core.
#[derive(Debug, Default)]
struct Run {
    worker: f64,
    ffmpeg: f64,
    /// The worker's other descendants but Xvfb: Chromium's processes.
    browser: f64,
    xvfb: f64,
    /// The video: (bytes, seconds), for a recorded run.
    video: Option<(u64, f64)>,
}

impl Run {
    /// MB of video per minute.
    fn mb_per_min(&self) -> Option<f64> {
        self.video.map(|(bytes, secs)| bytes as f64 / MB / (secs / 60.0))
    }
}

/// One mode on one page: baseline and recorded.
struct Row {
    mode: Mode,
    page: &'static str,
    baseline: Run,
    recorded: Run,
}

impl Row {
    /// The recorder's cost in the worker (never below 0: noise).
    fn worker_delta(&self) -> f64 {
        (self.recorded.worker - self.baseline.worker).max(0.0)
    }

    /// Per recorded session: the worker's delta and ffmpeg.
    fn total(&self) -> f64 {
        self.worker_delta() + self.recorded.ffmpeg
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    common::print_report(run()).await
}

async fn run() -> Result<String> {
    let secs = common::env_count("BENCH_RECORDING_SECS", 30)?;
    let window = Duration::from_secs(secs as u64);
    ensure!(common::on_path("ffmpeg"), "this bench needs ffmpeg on PATH (scripts/install-deps.sh installs it)");
    let chromium = common::chromium();
    let bin = common::build_worker()?;
    let http = common::http_client()?;
    let pages = common::serve_pages(&[("/changing", CHANGING), ("/static", STATIC)]).await?;
    let displays = common::on_path("Xvfb");
    let mut env = vec![("BW_EGRESS_ALLOW", pages.as_str())];
    if displays {
        env.push(("BW_DISPLAY_MODE", "per-session"));
    }
    let worker = Worker::start_with(&bin, &chromium, 2, 0, &http, &env).await?;
    let modes: &[Mode] = if displays { &[Mode::Screencast, Mode::Display] } else { &[Mode::Screencast] };
    let mut rows = Vec::new();
    for &mode in modes {
        for (path, page) in PAGES {
            let url = format!("http://{pages}{path}");
            eprintln!("{mode:?} on {page}: {secs} s without recording, then {secs} s recorded");
            let baseline = measure(&http, &worker, &url, mode, false, window).await?;
            let recorded = measure(&http, &worker, &url, mode, true, window).await?;
            rows.push(Row { mode, page, baseline, recorded });
        }
    }
    let note = if displays { "" } else { "No display rows: this machine has no Xvfb.\n\n" };
    Ok(format!(
        "## Session recordings — {}\n\n{}\n\n\
         Command: `make bench` (`cargo bench --bench recording`), each session {secs} s without recording, then {secs} s \
         recorded (5 fps, H.264), after {} s of warm-up\n\n{}\n{}{note}{}",
        common::report_date(),
        common::machine_line(&chromium),
        WARMUP.as_secs(),
        main_table(&rows),
        context_table(&rows),
        explanation(),
    ))
}

/// The targets' table: per mode and page, CPU as % of one core, and size per minute.
fn main_table(rows: &[Row]) -> String {
    let mut table = format!(
        "| mode | page | worker CPU baseline | worker CPU recorded | ffmpeg CPU | total per session (% of a core) | MB/min | \
         target (≤ {CPU_TARGET:.0}%, ≤ {SIZE_TARGET:.0} MB/min) | met? |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    for row in rows {
        let mb = row.recorded.mb_per_min().unwrap_or(f64::INFINITY);
        let met = row.total() <= CPU_TARGET && mb <= SIZE_TARGET;
        table += &format!(
            "| {} | {} | {:.1}% | {:.1}% | {:.1}% | {:.1}% | {mb:.2} | {:.0}% of target CPU, {:.0}% of target size | {} |\n",
            row.mode.label(),
            row.page,
            row.baseline.worker,
            row.recorded.worker,
            row.recorded.ffmpeg,
            row.total(),
            row.total() / CPU_TARGET * 100.0,
            mb / SIZE_TARGET * 100.0,
            if met { "yes" } else { "no" },
        );
    }
    table
}

/// What the recording costs outside the worker and ffmpeg (not in the total): the screencast
/// makes Chromium encode JPEG frames, x11grab makes Xvfb copy its screen.
fn context_table(rows: &[Row]) -> String {
    let mut table = String::from(
        "Outside the total, the session's other processes (% of a core, baseline → recorded), and the videos:\n\n\
         | mode | page | Chromium | Xvfb | video |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let (base, rec) = (&row.baseline, &row.recorded);
        let video =
            rec.video.map_or("—".into(), |(bytes, secs)| format!("{:.0} KB, {secs:.1} s", bytes as f64 / 1000.0));
        let xvfb = match row.mode {
            Mode::Display => format!("{:.1}% → {:.1}%", base.xvfb, rec.xvfb),
            Mode::Screencast => "—".into(),
        };
        table += &format!(
            "| {} | {} | {:.1}% → {:.1}% | {xvfb} | {video} |\n",
            row.mode.label(),
            row.page,
            base.browser,
            rec.browser
        );
    }
    table + "\n"
}

/// How the figures were obtained.
fn explanation() -> String {
    format!(
        "CPU is user+system time from `/proc/<pid>/stat` over the window. The recorder's cost in the worker is the \
         recorded run's worker CPU minus the baseline's (for the screencast: decoding the CDP frames and writing them \
         to ffmpeg's stdin); the total per session adds ffmpeg's. MB/min is the MP4's size (fetched from the close \
         answer's `artifacts`) over its length; MB = {MB:.0} bytes.\n"
    )
}

/// One session on `url` in `mode`, recorded or not: CPU over `window` after `WARMUP`, then
/// closed; a recorded one's video is fetched and measured.
async fn measure(
    http: &reqwest::Client,
    worker: &Worker,
    url: &str,
    mode: Mode,
    recorded: bool,
    window: Duration,
) -> Result<Run> {
    let mut body = mode.options();
    body["url"] = json!(url);
    body["recording"] = json!(recorded);
    let api = Api { http, base: &worker.base };
    let (id, _) = api.create_with(body).await?;
    tokio::time::sleep(WARMUP).await;
    let ffmpeg = ffmpeg_of(worker.data_dir.path());
    match (recorded, ffmpeg) {
        (true, None) => bail!("session {id} was created with recording but no ffmpeg runs for it"),
        (false, Some(pid)) => bail!("session {id} was created without recording but ffmpeg {pid} runs"),
        _ => {}
    }
    let before = Sample::take(worker.pid as i32, ffmpeg);
    tokio::time::sleep(window).await;
    let after = Sample::take(worker.pid as i32, ffmpeg);
    if let Some(pid) = ffmpeg {
        ensure!(
            stat_start(pid).is_some() && stat_start(pid) == before.ffmpeg_start,
            "ffmpeg {pid} of session {id} ended during the window"
        );
    }
    let closed = close(http, worker, &id).await?;
    let mut run = after.since(&before, window);
    if recorded {
        run.video = Some(video(http, worker, &closed).await?);
    }
    Ok(run)
}

/// CPU seconds at one moment: the worker, its ffmpeg, its other descendants by kind.
struct Sample {
    worker: f64,
    ffmpeg: f64,
    /// ffmpeg's start time, to tell it from a process that reused its pid.
    ffmpeg_start: Option<u64>,
    /// The worker's descendants but ffmpeg: (pid, start time) → (is Xvfb, CPU seconds).
    tree: HashMap<(i32, u64), (bool, f64)>,
}

impl Sample {
    fn take(worker: i32, ffmpeg: Option<i32>) -> Self {
        let tree = common::descendants(worker)
            .into_iter()
            .filter(|&(pid, _)| Some(pid) != ffmpeg && comm(pid) != "ffmpeg")
            .map(|(pid, start)| ((pid, start), (comm(pid) == "Xvfb", common::cpu_seconds(pid))))
            .collect();
        Self {
            worker: common::cpu_seconds(worker),
            ffmpeg: ffmpeg.map_or(0.0, common::cpu_seconds),
            ffmpeg_start: ffmpeg.and_then(stat_start),
            tree,
        }
    }

    /// The CPU from `before` to this sample, as % of one core over `window`. A descendant that
    /// started meanwhile counts whole; one that ended meanwhile is lost (none should).
    fn since(&self, before: &Sample, window: Duration) -> Run {
        let percent = |secs: f64| secs / window.as_secs_f64() * 100.0;
        let (mut browser, mut xvfb) = (0.0, 0.0);
        for (key, &(is_xvfb, cpu)) in &self.tree {
            let used = cpu - before.tree.get(key).map_or(0.0, |b| b.1);
            if is_xvfb {
                xvfb += used;
            } else {
                browser += used;
            }
        }
        Run {
            worker: percent(self.worker - before.worker),
            ffmpeg: percent(self.ffmpeg - before.ffmpeg),
            browser: percent(browser),
            xvfb: percent(xvfb),
            video: None,
        }
    }
}

/// `DELETE /api/v2/sessions/{id}`: its answer (200), with `artifacts` and `duration_ms`.
async fn close(http: &reqwest::Client, worker: &Worker, id: &str) -> Result<Value> {
    let response = http.delete(format!("{}/api/v2/sessions/{id}", worker.base)).bearer_auth(API_KEY).send().await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(status == 200, "DELETE /api/v2/sessions/{id} returned {status}: {body}");
    serde_json::from_str(&body).context("the close answer is not JSON")
}

/// The recording listed in a close answer, fetched: its size in bytes and length in seconds
/// (ffprobe's, else the session's duration).
async fn video(http: &reqwest::Client, worker: &Worker, closed: &Value) -> Result<(u64, f64)> {
    let artifacts = closed["artifacts"].as_array().context("the close answer has no artifacts")?;
    let path = artifacts
        .iter()
        .filter_map(Value::as_str)
        .find(|p| p.ends_with("recording.mp4"))
        .with_context(|| format!("no recording.mp4 among the artifacts: {closed}"))?;
    let response = http.get(format!("{}{path}", worker.base)).bearer_auth(API_KEY).send().await?;
    ensure!(response.status() == 200, "GET {path} returned {}", response.status());
    let bytes = response.bytes().await?;
    ensure!(bytes.get(4..8) == Some(b"ftyp"), "{path} is not an MP4 ({} bytes)", bytes.len());
    let session_secs = closed["duration_ms"].as_f64().context("the close answer has no duration_ms")? / 1000.0;
    let secs = probe_secs(&bytes)?.unwrap_or(session_secs);
    ensure!(secs > 0.0, "{path} has no length");
    Ok((bytes.len() as u64, secs))
}

/// The video's length according to ffprobe (`None` without ffprobe).
fn probe_secs(mp4: &[u8]) -> Result<Option<f64>> {
    if !common::on_path("ffprobe") {
        return Ok(None);
    }
    let mut file = tempfile::Builder::new().suffix(".mp4").tempfile()?;
    file.write_all(mp4)?;
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(file.path())
        .output()
        .context("running ffprobe")?;
    ensure!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr).trim());
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(Some(text.trim().parse().with_context(|| format!("ffprobe's duration: {text}"))?))
}

/// The running ffmpeg whose command line holds `data_dir` (the session's recording), if any.
fn ffmpeg_of(data_dir: &Path) -> Option<i32> {
    let marker = data_dir.display().to_string().into_bytes();
    common::processes().filter(|&pid| common::stat(pid).is_some_and(|s| s.0 != 'Z')).find(|&pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        program.ends_with(b"ffmpeg") && cmdline.windows(marker.len()).any(|w| w == marker)
    })
}

/// A process's start time, if it is alive (not a zombie).
fn stat_start(pid: i32) -> Option<u64> {
    common::stat(pid).filter(|s| s.0 != 'Z').map(|s| s.2)
}

/// A process's name (`/proc/<pid>/comm`).
fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}
