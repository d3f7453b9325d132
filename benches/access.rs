//! Human takeover and developer access (`cargo bench --bench access`, part of `make bench`).
//!
//! SPEC §5: the worker's VNC bridge must carry ≥ 2 × the throughput of Debian's `websockify` on
//! the same x11vnc stream, at lower CPU; and a Playwright script through the CDP passthrough
//! must take ≤ 1.10 × the same script on a direct DevTools connection.
//!
//! VNC: one worker with `BW_DISPLAY_MODE=per-session`; each measurement opens a session with a
//! display (x11vnc serves its first client much faster than later ones) and reads its x11vnc
//! through the worker's bridge or through a `websockify` started in front of it. A small RFB client in this bench
//! (raw encoding, two full-screen non-incremental update requests in flight) reads through one
//! path, then the other, alternating each round. Throughput is WebSocket payload bytes per
//! second; CPU is the relay process's user+system time (the worker's own process; websockify's
//! process tree).
//!
//! Relay capacity (`vnc_relay.rs`): the first 64 MiB of x11vnc's stream from a bridge run are
//! recorded, then replayed at memory speed through each relay to a reader that discards them, in
//! alternated rounds; the relay is then the only part doing work.
//!
//! CDP: `tests/js/cdp_roundtrips.mjs` (Playwright `connectOverCDP`, 200 `page.evaluate` round
//! trips, after 20 untimed ones) against the session's `cdp_url`, and against the browser's own
//! DevTools endpoint (from its `DevToolsActivePort` file), alternating.

#[allow(dead_code, reason = "this bench uses part of the shared harness")]
mod common;
mod vnc_relay;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use common::{API_KEY, Worker};

/// How long each VNC measurement reads.
const VNC_RUN: Duration = Duration::from_secs(4);
/// How much of x11vnc's stream is recorded for the relay capacity runs.
const RECORDING: usize = 64 << 20;
/// CDP round trips per Playwright run.
const ROUND_TRIPS: usize = 200;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::main]
async fn main() -> Result<()> {
    common::print_report(run()).await
}

async fn run() -> Result<String> {
    let rounds = common::env_count("BENCH_ACCESS_ROUNDS", 5)?;
    let chromium = common::chromium();
    let bin = common::build_worker()?;
    let http = common::http_client()?;
    let worker = Worker::start_with(&bin, &chromium, 3, 0, &http, &[("BW_DISPLAY_MODE", "per-session")]).await?;

    eprintln!("VNC: {rounds} rounds of {VNC_RUN:?} per side, alternated, each on a fresh display");
    let mut recording = Vec::new();
    let (bridge, baseline) = alternate(
        rounds,
        async |side| {
            // x11vnc serves its first client markedly faster than later ones, so every
            // measurement gets a session (and an x11vnc) of its own.
            let session = create(&http, &worker, serde_json::json!({"display": true})).await?;
            let id = session["session_id"].as_str().context("no session_id")?.to_string();
            let run = if side {
                let url = session["vnc"]["ws_url"].as_str().context("the session has no vnc")?;
                let record = if recording.is_empty() { RECORDING } else { 0 };
                let (run, recorded) = measure_vnc(url, || cpu_of(worker.pid as i32, false), record).await?;
                recording.extend(recorded);
                run
            } else {
                let (url, websockify) = start_websockify(format!("--unix-target={}", x11vnc_socket(&worker)?)).await?;
                let pid = websockify.0.id() as i32;
                measure_vnc(&url, || cpu_of(pid, true), 0).await?.0
            };
            let deleted =
                http.delete(format!("{}/api/v2/sessions/{id}", worker.base)).bearer_auth(API_KEY).send().await?;
            ensure!(deleted.status() == 200, "DELETE returned {}", deleted.status());
            Ok(run)
        },
        VncRun::compare,
    )
    .await?;

    let (bridge_capacity, baseline_capacity) = relay_capacity(&bin, &chromium, &http, &recording, rounds).await?;

    let cdp_session = create(&http, &worker, serde_json::json!({})).await?;
    let cdp_url = cdp_session["cdp_url"].as_str().context("no cdp_url")?.to_string();
    let direct_url = direct_devtools_url(&worker)?;
    eprintln!("CDP: {rounds} rounds of {ROUND_TRIPS} round trips per side, alternated");
    let (through, direct) = alternate(
        rounds,
        async |side| if side { roundtrips(&cdp_url, true).await } else { roundtrips(&direct_url, false).await },
        |through, direct| format!("passthrough {through:.1} ms, direct {direct:.1} ms"),
    )
    .await?;
    drop(worker);
    let vnc = Comparison { live: (&bridge, &baseline), capacity: (&bridge_capacity, &baseline_capacity) };
    Ok(report(&chromium, rounds, &vnc, &through, &direct))
}

/// Relay capacity on the recorded stream: the worker's bridge (a session of a second worker in
/// shared-display mode whose VNC server is the replay) against websockify, alternated.
async fn relay_capacity(
    bin: &std::path::Path,
    chromium: &str,
    http: &reqwest::Client,
    recording: &[u8],
    rounds: usize,
) -> Result<(Vec<VncRun>, Vec<VncRun>)> {
    ensure!(recording.len() == RECORDING, "recorded only {} bytes of x11vnc's stream", recording.len());
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), recording)?;
    let replay = vnc_relay::replay_server(file.path().to_path_buf())?;
    let xvfb = vnc_relay::Xvfb::start()?;
    let port = replay.to_string();
    let env =
        [("BW_DISPLAY_MODE", "shared"), ("BW_VNC_DISPLAY", xvfb.display.as_str()), ("BW_VNC_PORT", port.as_str())];
    let worker = Worker::start_with(bin, chromium, 2, 0, http, &env).await?;
    let session = create(http, &worker, serde_json::json!({"display": true})).await?;
    let bridge_url = session["vnc"]["ws_url"].as_str().context("the session has no vnc")?.to_string();

    eprintln!("VNC relay capacity: {rounds} rounds of {VNC_RUN:?} per side on the recorded stream, alternated");
    let (bridge, baseline) = alternate(
        rounds,
        async |side| {
            // A websockify of its own per measurement, as in the live part.
            let (url, websockify) = if side {
                (bridge_url.clone(), None)
            } else {
                let (url, websockify) = start_websockify(format!("127.0.0.1:{replay}")).await?;
                (url, Some(websockify))
            };
            let cpu = || match &websockify {
                Some(websockify) => cpu_of(websockify.0.id() as i32, true),
                None => cpu_of(worker.pid as i32, false),
            };
            let (start_cpu, start) = (cpu(), Instant::now());
            let bytes = tokio::task::spawn_blocking(move || vnc_relay::drain(&url, VNC_RUN)).await??;
            Ok(VncRun { bytes, secs: start.elapsed().as_secs_f64(), cpu: cpu() - start_cpu })
        },
        VncRun::compare,
    )
    .await?;
    drop(worker);
    drop(xvfb);
    Ok((bridge, baseline))
}

/// Measures ours (`measure(true)`) and the baseline (`measure(false)`) `rounds` times, each
/// round starting with the other side, and prints each round with `show(ours, baseline)`.
async fn alternate<T>(
    rounds: usize,
    mut measure: impl AsyncFnMut(bool) -> Result<T>,
    show: impl Fn(&T, &T) -> String,
) -> Result<(Vec<T>, Vec<T>)> {
    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let ours_first = round % 2 == 0;
        for side in [ours_first, !ours_first] {
            let value = measure(side).await?;
            if side { ours.push(value) } else { baseline.push(value) }
        }
        eprintln!("  round {}: {}", round + 1, show(ours.last().unwrap(), baseline.last().unwrap()));
    }
    Ok((ours, baseline))
}

/// Starts Debian's websockify in front of the VNC server on `vnc_port`; returns its URL.
/// websockify relaying to `target`: `127.0.0.1:PORT`, or `--unix-target=PATH`.
async fn start_websockify(target: String) -> Result<(String, KillOnDrop)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let args = match target.strip_prefix("--unix-target=") {
        Some(_) => [target.clone(), format!("127.0.0.1:{port}")],
        None => [format!("127.0.0.1:{port}"), target.clone()],
    };
    let child = Command::new("websockify")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting websockify (apt install websockify)")?;
    let guard = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        ensure!(Instant::now() < deadline, "websockify did not start listening");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((format!("ws://127.0.0.1:{port}/"), guard))
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn create(http: &reqwest::Client, worker: &Worker, body: serde_json::Value) -> Result<serde_json::Value> {
    let response =
        http.post(format!("{}/api/v2/sessions", worker.base)).bearer_auth(API_KEY).json(&body).send().await?;
    ensure!(response.status() == 201, "create returned {}", response.status());
    Ok(response.json().await?)
}

/// The pid records of the worker's processes: (pgid, user_data_dir).
fn records(worker: &Worker) -> Result<Vec<(i32, String)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(worker.data_dir.path().join("run"))?.flatten() {
        let record: serde_json::Value = serde_json::from_slice(&std::fs::read(entry.path())?)?;
        let pgid = record["pgid"].as_i64().context("pgid")? as i32;
        found.push((pgid, record["user_data_dir"].as_str().unwrap_or_default().to_string()));
    }
    Ok(found)
}

/// The Unix socket of the (only) x11vnc the worker runs.
fn x11vnc_socket(worker: &Worker) -> Result<String> {
    for (pgid, _) in records(worker)? {
        let cmdline = std::fs::read(format!("/proc/{pgid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.first().is_some_and(|a| a.ends_with("x11vnc"))
            && let Some(at) = args.iter().position(|a| a == "-unixsock")
        {
            return Ok(args[at + 1].clone());
        }
    }
    bail!("no x11vnc found among the worker's processes")
}

/// The DevTools URL of the headless session's browser, from `DevToolsActivePort` in its profile.
fn direct_devtools_url(worker: &Worker) -> Result<String> {
    for (_, dir) in records(worker)? {
        if dir.is_empty() || !is_headless(&dir) {
            continue;
        }
        let text = std::fs::read_to_string(PathBuf::from(&dir).join("DevToolsActivePort"))?;
        let mut lines = text.lines();
        let (port, path) = (lines.next().context("port")?, lines.next().context("path")?);
        return Ok(format!("ws://127.0.0.1:{port}{path}"));
    }
    bail!("no DevToolsActivePort for the CDP session's browser")
}

/// True if the browser with user-data dir `dir` runs headless.
fn is_headless(dir: &str) -> bool {
    let marker = format!("--user-data-dir={dir}");
    common::processes().any(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        args.iter().any(|a| a == &marker) && args.iter().any(|a| a == "--headless=new")
    })
}

/// User+system CPU seconds of `pid` (with `tree`: plus its live descendants and reaped children).
fn cpu_of(pid: i32, tree: bool) -> f64 {
    let ticks = |pid: i32, children: bool| -> u64 {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
        let Some(close) = text.rfind(')') else { return 0 };
        let fields: Vec<u64> = text[close + 2..].split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
        // utime, stime, cutime, cstime are fields 14-17 (index 11-14 after the state).
        let own = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        own + if children { fields.get(13).copied().unwrap_or(0) + fields.get(14).copied().unwrap_or(0) } else { 0 }
    };
    let mut total = ticks(pid, tree);
    if tree {
        let mut parents = vec![pid];
        while let Some(parent) = parents.pop() {
            for child in common::processes().filter(|&p| common::stat(p).is_some_and(|s| s.1 == parent)) {
                total += ticks(child, false);
                parents.push(child);
            }
        }
    }
    total as f64 / 100.0
}

/// One VNC measurement.
struct VncRun {
    bytes: u64,
    secs: f64,
    cpu: f64,
}

impl VncRun {
    fn mb_s(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }

    /// One round's line: this bridge run against a websockify run.
    fn compare(bridge: &VncRun, websockify: &VncRun) -> String {
        format!("bridge {:.0} MB/s, websockify {:.0} MB/s", bridge.mb_s(), websockify.mb_s())
    }

    /// CPU seconds per GB relayed.
    fn cpu_per_gb(&self) -> f64 {
        self.cpu / (self.bytes as f64 / 1e9)
    }
}

/// An RFB client reading through a WebSocket.
struct Rfb {
    socket: Socket,
    pending: Vec<u8>,
    bytes: u64,
    /// Payload bytes kept, up to `record` of them.
    recording: Vec<u8>,
    record: usize,
}

impl Rfb {
    /// The next binary message's payload.
    async fn next_binary(&mut self) -> Result<Bytes> {
        loop {
            match self.socket.next().await.context("socket closed")?? {
                Message::Binary(data) => {
                    self.bytes += data.len() as u64;
                    let keep = data.len().min(self.record - self.recording.len());
                    self.recording.extend_from_slice(&data[..keep]);
                    return Ok(data);
                }
                Message::Close(_) => bail!("socket closed"),
                _ => {}
            }
        }
    }

    async fn read(&mut self, n: usize) -> Result<Vec<u8>> {
        while self.pending.len() < n {
            let data = self.next_binary().await?;
            self.pending.extend_from_slice(&data);
        }
        Ok(self.pending.drain(..n).collect())
    }

    /// Discards `n` bytes; whole messages are dropped without being copied.
    async fn skip(&mut self, mut n: usize) -> Result<()> {
        let take = n.min(self.pending.len());
        self.pending.drain(..take);
        n -= take;
        while n > 0 {
            let data = self.next_binary().await?;
            if data.len() <= n {
                n -= data.len();
            } else {
                self.pending.extend_from_slice(&data[n..]);
                n = 0;
            }
        }
        Ok(())
    }

    async fn send(&mut self, data: Vec<u8>) -> Result<()> {
        Ok(self.socket.send(Message::Binary(data.into())).await?)
    }
}

/// Connects, does the RFB handshake (no auth, raw encoding) and reads full-screen updates for
/// `VNC_RUN`; returns the first `record` bytes of the updates too.
async fn measure_vnc(url: &str, cpu: impl Fn() -> f64, record: usize) -> Result<(VncRun, Vec<u8>)> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", "binary".parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await.with_context(|| format!("connecting {url}"))?;
    let mut rfb = Rfb { socket, pending: Vec::new(), bytes: 0, recording: Vec::new(), record: 0 };
    let version = rfb.read(12).await?;
    ensure!(version.starts_with(b"RFB 003."), "not an RFB server");
    rfb.send(b"RFB 003.008\n".to_vec()).await?;
    let count = rfb.read(1).await?[0] as usize;
    let types = rfb.read(count).await?;
    ensure!(types.contains(&1), "the VNC server wants a password");
    rfb.send(vec![1]).await?;
    ensure!(rfb.read(4).await? == [0, 0, 0, 0], "security handshake failed");
    rfb.send(vec![1]).await?; // shared
    let init = rfb.read(24).await?;
    let (width, height) = (u16::from_be_bytes([init[0], init[1]]), u16::from_be_bytes([init[2], init[3]]));
    let bytes_per_pixel = (init[4] / 8) as usize;
    let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    rfb.skip(name_len).await?;
    rfb.send(vec![2, 0, 0, 1, 0, 0, 0, 0]).await?; // SetEncodings: raw only
    let request = [vec![3, 0, 0, 0, 0, 0], width.to_be_bytes().to_vec(), height.to_be_bytes().to_vec()].concat();

    let (start_bytes, start_cpu, start) = (rfb.bytes, cpu(), Instant::now());
    rfb.record = record;
    // Two requests in flight, so that the server never waits for the relay's round trip.
    rfb.send(request.clone()).await?;
    while start.elapsed() < VNC_RUN {
        rfb.send(request.clone()).await?;
        loop {
            match rfb.read(1).await?[0] {
                0 => {
                    let header = rfb.read(3).await?;
                    let rects = u16::from_be_bytes([header[1], header[2]]);
                    for _ in 0..rects {
                        let rect = rfb.read(12).await?;
                        let (w, h) = (
                            u16::from_be_bytes([rect[4], rect[5]]) as usize,
                            u16::from_be_bytes([rect[6], rect[7]]) as usize,
                        );
                        let encoding = i32::from_be_bytes([rect[8], rect[9], rect[10], rect[11]]);
                        ensure!(encoding == 0, "unexpected encoding {encoding}");
                        rfb.skip(w * h * bytes_per_pixel).await?;
                    }
                    break;
                }
                2 => {}
                3 => {
                    let header = rfb.read(7).await?;
                    rfb.skip(u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize).await?;
                }
                other => bail!("unexpected RFB message {other}"),
            }
        }
    }
    let run = VncRun { bytes: rfb.bytes - start_bytes, secs: start.elapsed().as_secs_f64(), cpu: cpu() - start_cpu };
    let _ = rfb.socket.close(None).await;
    Ok((run, rfb.recording))
}

/// Milliseconds for `ROUND_TRIPS` Playwright round trips at `url`.
async fn roundtrips(url: &str, with_key: bool) -> Result<f64> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    let mut command = tokio::process::Command::new("node");
    command.current_dir(&dir).arg("cdp_roundtrips.mjs").arg(url).arg(ROUND_TRIPS.to_string()).kill_on_drop(true);
    if with_key {
        command.env("BW_KEY", API_KEY);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output()).await.context("node timed out")??;
    ensure!(output.status.success(), "cdp_roundtrips.mjs failed: {}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    result["ms"].as_f64().context("no ms")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// The VNC measurements: (bridge, websockify) runs, live and on the recorded stream.
struct Comparison<'a> {
    live: (&'a [VncRun], &'a [VncRun]),
    capacity: (&'a [VncRun], &'a [VncRun]),
}

/// A Markdown table of (bridge, websockify) runs, and the two ratios: throughput and CPU per GB.
fn relay_table((bridge, baseline): (&[VncRun], &[VncRun])) -> (String, f64, f64) {
    let med = |runs: &[VncRun], f: fn(&VncRun) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
    let row = |name: &str, runs: &[VncRun]| {
        format!(
            "| {name} | {:.0} | {:.2} | {:.2} |\n",
            med(runs, VncRun::mb_s),
            med(runs, |r| r.cpu),
            med(runs, VncRun::cpu_per_gb)
        )
    };
    let table = format!(
        "| relay | MB/s (median) | CPU s per run | CPU s per GB |\n| --- | --- | --- | --- |\n{}{}",
        row("worker `/vnc/{id}` bridge", bridge),
        row("Debian websockify 0.10", baseline)
    );
    let throughput = med(bridge, VncRun::mb_s) / med(baseline, VncRun::mb_s);
    let cpu = med(bridge, VncRun::cpu_per_gb) / med(baseline, VncRun::cpu_per_gb);
    (table, throughput, cpu)
}

fn report(chromium: &str, rounds: usize, vnc: &Comparison, through: &[f64], direct: &[f64]) -> String {
    let (capacity, capacity_ratio, capacity_cpu) = relay_table(vnc.capacity);
    let (live, live_ratio, live_cpu) = relay_table(vnc.live);
    let (through_ms, direct_ms) = (median(&mut through.to_vec()), median(&mut direct.to_vec()));
    let cdp_ratio = through_ms / direct_ms;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    format!(
        "\n## VNC bridge vs websockify — {date}\n\n{machine}\n\n\
Command: `make bench` (`cargo bench --bench access`), {rounds} rounds of {secs} s per side, alternated, in each part\n\n\
### Relay capacity: x11vnc's stream, recorded and replayed\n\n{capacity}\n\
Throughput ratio bridge/websockify: {capacity_ratio:.2} (target ≥ 2: {tp}); CPU per GB ratio: {capacity_cpu:.2} (target < 1: {cpu})\n\n\
The first {mib} MiB of a live x11vnc stream (full-screen raw updates of a 1920×1080×24 session display) are \
recorded, then served from a file with `sendfile(2)` to each relay, and the reader discards what it gets with \
`splice(2)`: the relay is the only part doing real work. The worker relays it as a session whose VNC server is the \
replay (a second worker, shared-display mode). Bytes are what the reader received (frame headers are under 0.02 %). \
CPU is the worker process's user+system time, and websockify's whole process tree's.\n\n\
### Live x11vnc\n\n{live}\n\
Throughput ratio bridge/websockify: {live_ratio:.2}; CPU per GB ratio: {live_cpu:.2}\n\n\
Both relay x11vnc (a fresh session display per measurement) to an RFB client in the bench that keeps two \
full-screen raw update requests in flight; bytes are WebSocket payload bytes. Here x11vnc and the client, sharing \
the cores with the relay, set the pace.\n\n\
## CDP passthrough vs direct\n\n\
| path | {n} Playwright round trips, median ms |\n| --- | --- |\n\
| `cdp_url` (through the worker) | {through_ms:.1} |\n| the browser's DevTools endpoint | {direct_ms:.1} |\n\n\
Ratio passthrough/direct: {cdp_ratio:.2} (target ≤ 1.10: {cdp_ok})\n\n\
`tests/js/cdp_roundtrips.mjs`: Playwright `connectOverCDP`, 20 untimed then {n} timed `page.evaluate` calls, \
on one headless session; connect time excluded.\n",
        date = common::report_date(),
        machine = common::machine_line(chromium),
        secs = VNC_RUN.as_secs(),
        mib = RECORDING >> 20,
        tp = verdict(capacity_ratio >= 2.0),
        cpu = verdict(capacity_cpu < 1.0),
        n = ROUND_TRIPS,
        cdp_ok = verdict(cdp_ratio <= 1.10),
    )
}
