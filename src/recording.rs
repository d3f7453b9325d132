//! Session recordings: ffmpeg encodes what a session shows into an MP4 file.
//!
//! The frames come from an X display (x11grab) or from JPEG frames such as a CDP screencast,
//! which the recorder writes to ffmpeg's stdin at a constant rate, repeating the newest frame
//! when nothing changed, so that the video's length is the wall time. The output is a
//! fragmented MP4 (H.264, one fragment a second, flushed as written), so a recorder that is
//! killed, or a worker that dies, still leaves a playable file of all but its last second.
//! ffmpeg's own `-t` and `-fs` bound every recording: it stops by itself at a cap.
//!
//! ffmpeg runs in its own process group and is killed when its `Recorder` is dropped; its
//! stderr is kept as a small tail in memory (for error messages), its `-progress` output on
//! stdout tells how much was encoded.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Time ffmpeg gets to finalise after being asked to stop, before it is killed.
const FINISH_LIMIT: Duration = Duration::from_secs(10);
/// Time one frame may take to go into ffmpeg's stdin before the feed gives up on it.
const WRITE_LIMIT: Duration = Duration::from_secs(5);
/// Time the output readers get to see ffmpeg's last words once it has exited.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// Bytes of ffmpeg's stderr kept (the end of it).
const LOG_TAIL: usize = 4096;
/// x264 constant rate factor: a mostly static 1280x900 page stays far below 1 MB a minute.
const CRF: u32 = 28;
/// Seconds between keyframes (fragments are cut every second regardless).
const KEYFRAME_SECS: u32 = 10;
/// Length of one MP4 fragment, in microseconds: what a killed recorder loses at most.
const FRAGMENT_US: u32 = 1_000_000;
/// Highest frame rate accepted.
const MAX_FPS: u32 = 30;

/// Where frames come from.
pub enum Source {
    /// An X display (e.g. `:101`), grabbed at its top-left `size` pixels with x11grab. ffmpeg
    /// connects the way the session's browser does: through the display's socket in
    /// `/tmp/.X11-unix` (the worker's Xvfb runs without an auth file).
    Display { display: String, size: (u32, u32) },
    /// JPEG frames, e.g. a CDP screencast: the newest frame in a watch channel (empty before the
    /// first). The newest frame goes to ffmpeg at a constant rate, repeated while nothing
    /// changes, so the video lasts the wall time from the first frame on. `on_frame` is called
    /// each time a new frame is taken (the screencast's ack, so the next one may come). Frames
    /// of any size are scaled to fit `size` (padded, aspect kept), so a viewport change does
    /// not break the encode.
    Frames { frames: watch::Receiver<Bytes>, on_frame: Box<dyn Fn() + Send + Sync>, size: (u32, u32) },
}

/// Bounds of one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Frames per second (1 to 30).
    pub fps: u32,
    /// Length at most; ffmpeg stops by itself there.
    pub max_secs: u64,
    /// File size at most; ffmpeg stops by itself once the file reaches it (so the file may
    /// exceed it by the last fragment, about a second of video).
    pub max_bytes: u64,
}

impl Default for Limits {
    /// 5 frames a second, 30 minutes, 200 MB.
    fn default() -> Self {
        Self { fps: 5, max_secs: 30 * 60, max_bytes: 200 * 1024 * 1024 }
    }
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub path: PathBuf,
    pub bytes: u64,
    /// Length of the video, as ffmpeg last reported it.
    pub duration_ms: u64,
    /// True when a cap (`max_secs` or `max_bytes`) stopped it.
    pub truncated: bool,
    /// Set when ffmpeg ended other than asked or at a cap (it crashed, was killed, lost its
    /// display, or did not stop in time): why. The file holds what was written until then.
    pub interrupted: Option<String>,
}

/// Recording failures.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("invalid recording settings: {0}")]
    Invalid(String),
    #[error("no X display {0} to record")]
    NoDisplay(String),
    #[error("cannot write the recording {}: {source}", path.display())]
    Output { path: PathBuf, source: std::io::Error },
    #[error("cannot run ffmpeg ({}): {source}", ffmpeg.display())]
    Spawn { ffmpeg: PathBuf, source: std::io::Error },
    /// ffmpeg produced no video at all (the file is removed).
    #[error("nothing was recorded: {0}")]
    Empty(String),
}

/// A running recording: ffmpeg and, for frames, the task feeding it.
pub struct Recorder {
    child: Child,
    /// ffmpeg's pid, which is also its process group.
    pid: u32,
    path: PathBuf,
    limits: Limits,
    input: Input,
    /// Cancelled to stop the feed; also cancelled when ffmpeg closes its stdout (it exited).
    stop: CancellationToken,
    report: Arc<Report>,
    readers: Vec<JoinHandle<()>>,
}

/// How ffmpeg is told to stop.
enum Input {
    /// `q` on stdin.
    Display(Option<ChildStdin>),
    /// The feed task closes stdin when `stop` fires.
    Frames(Option<JoinHandle<()>>),
}

/// What ffmpeg reports while it runs.
#[derive(Default)]
struct Report {
    /// Position of the last encoded frame, in microseconds (`out_time_us` of `-progress`).
    out_time_us: AtomicU64,
    /// The end of ffmpeg's stderr.
    log: Mutex<Vec<u8>>,
}

/// The input side of ffmpeg's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InputSpec {
    Display { display: String, size: (u32, u32) },
    Frames { size: (u32, u32) },
}

/// `ffmpeg` on `PATH`, if there is one.
pub fn ffmpeg_path() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("ffmpeg"))
        .find(|file| std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

impl Recorder {
    /// Starts ffmpeg writing `path` (created or truncated here) from `source`, bounded by
    /// `limits`. Must be called within a tokio runtime.
    pub fn start(ffmpeg: &Path, source: Source, path: PathBuf, limits: Limits) -> Result<Self, RecordingError> {
        check_limits(&limits)?;
        let (spec, frames) = match source {
            Source::Display { display, size } => {
                check_display(&display)?;
                (InputSpec::Display { display, size: even(size)? }, None)
            }
            Source::Frames { frames, on_frame, size } => {
                (InputSpec::Frames { size: even(size)? }, Some((frames, on_frame)))
            }
        };
        std::fs::File::create(&path).map_err(|source| RecordingError::Output { path: path.clone(), source })?;
        let mut command = Command::new(ffmpeg);
        command
            .args(arguments(&spec, &path, &limits))
            .env_clear()
            .process_group(0)
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A killed worker leaves no recorder running: ffmpeg finalises and ends with it.
        crate::browser::child::die_with_worker(&mut command);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(source) => {
                let _ = std::fs::remove_file(&path);
                return Err(RecordingError::Spawn { ffmpeg: ffmpeg.to_path_buf(), source });
            }
        };
        // Never 0 right after a spawn; 0 would make a group kill hit the worker's own group.
        let Some(pid) = child.id().filter(|pid| *pid > 0) else {
            let _ = std::fs::remove_file(&path);
            return Err(RecordingError::Empty("ffmpeg exited at once".into()));
        };
        let stop = CancellationToken::new();
        let report = Arc::new(Report::default());
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(read_progress(stdout, report.clone(), stop.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(read_log(stderr, report.clone())));
        }
        let stdin = child.stdin.take();
        let input = match (frames, stdin) {
            (Some((frames, on_frame)), Some(stdin)) => {
                Input::Frames(Some(tokio::spawn(feed(stdin, frames, on_frame, limits.fps, stop.clone()))))
            }
            (_, stdin) => Input::Display(stdin),
        };
        tracing::debug!(pid, path = %path.display(), "recording started");
        Ok(Self { child, pid, path, limits, input, stop, report, readers })
    }

    /// ffmpeg's pid (also its process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where the video is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while ffmpeg runs (false once it stopped at a cap or died).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops and finalises the recording: frames end with an EOF on ffmpeg's stdin, a display
    /// with `q`; ffmpeg gets `FINISH_LIMIT` to finish before it is killed. Safe after ffmpeg
    /// already stopped at a cap. An error means there is no video (and no file).
    pub async fn finish(mut self) -> Result<Recording, RecordingError> {
        let stopped_before = self.child.try_wait().ok().flatten();
        self.ask_to_stop().await;
        let (status, killed) = match tokio::time::timeout(FINISH_LIMIT, self.child.wait()).await {
            Ok(Ok(status)) => (Some(status), false),
            _ => {
                self.kill();
                (self.child.wait().await.ok(), true)
            }
        };
        self.drain().await;
        let recording = self.outcome(stopped_before, status, killed);
        if recording.duration_ms == 0 || recording.bytes == 0 {
            let _ = tokio::fs::remove_file(&self.path).await;
            let why = recording.interrupted.unwrap_or_else(|| format!("no frame was encoded{}", self.log_suffix()));
            return Err(RecordingError::Empty(why));
        }
        tracing::debug!(
            pid = self.pid,
            bytes = recording.bytes,
            duration_ms = recording.duration_ms,
            "recording finished"
        );
        Ok(recording)
    }

    /// Kills ffmpeg and deletes the file (a recording not kept).
    pub async fn discard(mut self) {
        self.stop.cancel();
        self.kill();
        let _ = self.child.wait().await;
        if let Input::Frames(Some(feed)) = &mut self.input {
            let _ = tokio::time::timeout(DRAIN_LIMIT, feed).await;
        }
        let _ = tokio::fs::remove_file(&self.path).await;
    }

    /// Tells ffmpeg to stop: `q` for a display, EOF (the feed ends) for frames.
    async fn ask_to_stop(&mut self) {
        match &mut self.input {
            Input::Display(stdin) => {
                if let Some(mut stdin) = stdin.take() {
                    let _ = tokio::time::timeout(WRITE_LIMIT, stdin.write_all(b"q")).await;
                }
            }
            Input::Frames(feed) => {
                self.stop.cancel();
                if let Some(feed) = feed.as_mut() {
                    // The feed finishes the frame it is writing (bounded by WRITE_LIMIT).
                    if tokio::time::timeout(WRITE_LIMIT + DRAIN_LIMIT, &mut *feed).await.is_err() {
                        feed.abort();
                    }
                }
                *feed = None;
            }
        }
    }

    /// Waits (bounded) until the readers have seen ffmpeg's last progress and log.
    async fn drain(&mut self) {
        for reader in &mut self.readers {
            if tokio::time::timeout(DRAIN_LIMIT, &mut *reader).await.is_err() {
                reader.abort();
            }
        }
        self.readers.clear();
    }

    /// What was recorded, from ffmpeg's exit and reports.
    fn outcome(&self, stopped_before: Option<ExitStatus>, status: Option<ExitStatus>, killed: bool) -> Recording {
        let bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let out_time_us = self.report.out_time_us.load(Ordering::Relaxed);
        // The last frame's position plus its own length.
        let duration_ms = if out_time_us > 0 { out_time_us / 1000 + 1000 / u64::from(self.limits.fps) } else { 0 };
        let at_cap = bytes >= self.limits.max_bytes || duration_ms >= self.limits.max_secs.saturating_mul(1000);
        let interrupted = if killed {
            Some(format!("ffmpeg did not stop within {} s and was killed", FINISH_LIMIT.as_secs()))
        } else {
            status.filter(|s| !s.success()).map(|s| format!("ffmpeg ended with {s}{}", self.log_suffix()))
        };
        let truncated = at_cap || (stopped_before.is_some_and(|s| s.success()) && interrupted.is_none());
        Recording { path: self.path.clone(), bytes, duration_ms, truncated, interrupted }
    }

    /// `: <the end of ffmpeg's stderr>`, or nothing if it said nothing.
    fn log_suffix(&self) -> String {
        let log = self.report.log.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&log);
        let text = text.trim();
        if text.is_empty() { String::new() } else { format!(": {text}") }
    }

    /// SIGKILL to ffmpeg's group, unless it has already been reaped (its pid may be reused).
    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL).is_err()
        {
            let _ = self.child.start_kill();
        }
    }
}

impl Drop for Recorder {
    /// A recorder dropped without `finish` or `discard` kills ffmpeg (the file stays as it is)
    /// and stops its tasks; tokio reaps the killed process.
    fn drop(&mut self) {
        self.stop.cancel();
        self.kill();
        if let Input::Frames(Some(feed)) = &self.input {
            feed.abort();
        }
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// Rejects limits ffmpeg could not honour.
fn check_limits(limits: &Limits) -> Result<(), RecordingError> {
    if !(1..=MAX_FPS).contains(&limits.fps) {
        return Err(RecordingError::Invalid(format!("fps must be 1 to {MAX_FPS}, not {}", limits.fps)));
    }
    if limits.max_secs == 0 || limits.max_bytes == 0 {
        return Err(RecordingError::Invalid("max_secs and max_bytes must be above 0".into()));
    }
    Ok(())
}

/// `size` rounded down to even numbers (H.264 in yuv420p needs them).
fn even((width, height): (u32, u32)) -> Result<(u32, u32), RecordingError> {
    let size = (width & !1, height & !1);
    if size.0 < 2 || size.1 < 2 || size.0 > 8192 || size.1 > 8192 {
        return Err(RecordingError::Invalid(format!("a video size of {width}x{height}")));
    }
    Ok(size)
}

/// Fails unless a local X server listens for `display` (`:N` or `:N.S`). Displays on other
/// hosts are left to ffmpeg.
fn check_display(display: &str) -> Result<(), RecordingError> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    let Some(rest) = display.strip_prefix(':') else {
        if display.contains(':') {
            return Ok(());
        }
        return Err(RecordingError::NoDisplay(display.to_string()));
    };
    let number = rest.split('.').next().unwrap_or_default();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RecordingError::NoDisplay(display.to_string()));
    }
    let socket = format!("/tmp/.X11-unix/X{number}");
    let listening = UnixStream::connect(&socket).is_ok()
        || SocketAddr::from_abstract_name(socket.as_bytes()).is_ok_and(|addr| UnixStream::connect_addr(&addr).is_ok());
    if listening { Ok(()) } else { Err(RecordingError::NoDisplay(display.to_string())) }
}

/// ffmpeg's command line.
fn arguments(input: &InputSpec, path: &Path, limits: &Limits) -> Vec<String> {
    let fps = limits.fps.to_string();
    let mut args: Vec<String> = ["-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1"]
        .into_iter()
        .map(String::from)
        .collect();
    // Start encoding at the first frame instead of buffering seconds of input to probe it.
    args.extend(["-probesize", "32", "-analyzeduration", "0", "-threads", "1"].map(String::from));
    let filter = match input {
        InputSpec::Display { display, size: (w, h) } => {
            let size = format!("{w}x{h}");
            args.extend(["-f", "x11grab", "-framerate", &fps, "-video_size", &size, "-i", display].map(String::from));
            "format=yuv420p".to_string()
        }
        InputSpec::Frames { size: (w, h) } => {
            args.extend(["-f", "image2pipe", "-framerate", &fps, "-c:v", "mjpeg", "-i", "-"].map(String::from));
            format!(
                "scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bilinear,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p"
            )
        }
    };
    let output = [
        ("-filter_threads", "1".to_string()),
        ("-vf", filter),
        ("-c:v", "libx264".into()),
        ("-preset", "ultrafast".into()),
        ("-crf", CRF.to_string()),
        ("-g", (limits.fps * KEYFRAME_SECS).to_string()),
        ("-threads", "1".into()),
        // Fragments from the start, cut every second and written out at once.
        ("-movflags", "frag_keyframe+empty_moov+default_base_moof".into()),
        ("-frag_duration", FRAGMENT_US.to_string()),
        ("-flush_packets", "1".into()),
        ("-t", limits.max_secs.to_string()),
        ("-fs", limits.max_bytes.to_string()),
        ("-f", "mp4".into()),
    ];
    for (option, value) in output {
        args.extend([option.to_string(), value]);
    }
    args.extend(["-an".to_string(), "-y".to_string(), path.display().to_string()]);
    args
}

/// Writes the newest frame to ffmpeg at `fps` until `stop` fires or ffmpeg stops reading,
/// then closes its stdin (EOF: ffmpeg finalises the file).
async fn feed(
    mut stdin: ChildStdin,
    mut frames: watch::Receiver<Bytes>,
    on_frame: Box<dyn Fn() + Send + Sync>,
    fps: u32,
    stop: CancellationToken,
) {
    // Ticks missed while a write waited are made up at once, so the frame count follows the
    // wall time.
    let mut tick = tokio::time::interval(Duration::from_secs(1) / fps.max(1));
    let mut current = Bytes::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Some(frame) = newest(&mut frames) {
            current = frame;
            on_frame();
        }
        if current.is_empty() {
            continue;
        }
        match tokio::time::timeout(WRITE_LIMIT, stdin.write_all(&current)).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    let _ = tokio::time::timeout(DRAIN_LIMIT, stdin.shutdown()).await;
}

/// The newest frame if it was not taken yet (and is a frame, not the empty placeholder).
fn newest(frames: &mut watch::Receiver<Bytes>) -> Option<Bytes> {
    let frame = frames.borrow_and_update();
    (frame.has_changed() && !frame.is_empty()).then(|| frame.clone())
}

/// Follows ffmpeg's `-progress` output; at its end (ffmpeg exited) fires `exited`.
async fn read_progress(stdout: impl AsyncRead + Unpin, report: Arc<Report>, exited: CancellationToken) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(us) = line.strip_prefix("out_time_us=").and_then(|v| v.trim().parse::<u64>().ok())
            && us > 0
        {
            report.out_time_us.store(us, Ordering::Relaxed);
        }
    }
    exited.cancel();
}

/// Keeps the last `LOG_TAIL` bytes of ffmpeg's stderr.
async fn read_log(mut stderr: impl AsyncRead + Unpin, report: Arc<Report>) {
    let mut chunk = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let mut log = report.log.lock().unwrap_or_else(|e| e.into_inner());
        log.extend_from_slice(&chunk[..n]);
        let excess = log.len().saturating_sub(LOG_TAIL);
        log.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// ffmpeg, which the tests need (scripts/install-deps.sh installs it).
    fn ffmpeg() -> PathBuf {
        ffmpeg_path().expect("ffmpeg on PATH")
    }

    /// What ffprobe says about a video.
    #[derive(Debug)]
    struct Probe {
        format: String,
        codec: String,
        width: u64,
        height: u64,
        duration: f64,
    }

    fn ffprobe(path: &Path) -> Probe {
        let output = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=format_name,duration:stream=codec_name,width,height"])
            .args(["-of", "json"])
            .arg(path)
            .output()
            .expect("ffprobe runs");
        assert!(output.status.success(), "ffprobe: {}", String::from_utf8_lossy(&output.stderr));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let stream = &json["streams"][0];
        Probe {
            format: json["format"]["format_name"].as_str().unwrap_or_default().to_string(),
            codec: stream["codec_name"].as_str().unwrap_or_default().to_string(),
            width: stream["width"].as_u64().unwrap_or_default(),
            height: stream["height"].as_u64().unwrap_or_default(),
            duration: json["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or_default(),
        }
    }

    /// A valid H.264 MP4 of `size`; returns its duration in seconds.
    fn assert_video(path: &Path, size: (u32, u32)) -> f64 {
        let probe = ffprobe(path);
        assert!(probe.format.contains("mp4"), "{probe:?}");
        assert_eq!(probe.codec, "h264", "{probe:?}");
        assert_eq!((probe.width, probe.height), (u64::from(size.0), u64::from(size.1)), "{probe:?}");
        assert!(probe.duration > 0.0, "{probe:?}");
        probe.duration
    }

    /// A test JPEG of `size`, made by ffmpeg.
    fn jpeg(dir: &Path, size: (u32, u32)) -> Bytes {
        let path = dir.join(format!("{}x{}.jpg", size.0, size.1));
        let status = std::process::Command::new(ffmpeg())
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc=size={}x{}", size.0, size.1)])
            .args(["-frames:v", "1"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        Bytes::from(std::fs::read(&path).unwrap())
    }

    /// CPU seconds a process used so far (utime + stime of /proc/<pid>/stat, 100 ticks a second).
    fn cpu_secs(pid: u32) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let ticks: u64 = fields.get(11..13).map(|f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum()).unwrap_or(0);
        ticks as f64 / 100.0
    }

    /// True while `pid` exists (a zombie counts: it was not reaped).
    fn exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    /// Waits (up to 5 s) until `pid` is gone.
    async fn assert_gone(pid: u32) {
        for _ in 0..250 {
            if !exists(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("ffmpeg {pid} is still there");
    }

    /// Waits (up to 5 s) until ffmpeg stopped by itself.
    async fn wait_stopped(recorder: &mut Recorder) {
        for _ in 0..250 {
            if !recorder.is_running() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("ffmpeg did not stop at its cap");
    }

    /// A screencast stand-in: sends the next frame once the previous one was taken (acked).
    struct Producer {
        tx: watch::Sender<Bytes>,
        acks: Arc<AtomicUsize>,
        acked: Arc<tokio::sync::Notify>,
        sent: usize,
    }

    impl Producer {
        /// The producer and the `Source` reading from it.
        fn new(size: (u32, u32)) -> (Self, Source) {
            let (tx, frames) = watch::channel(Bytes::new());
            let (acks, acked) = (Arc::new(AtomicUsize::new(0)), Arc::new(tokio::sync::Notify::new()));
            let (count, notify) = (acks.clone(), acked.clone());
            let on_frame = Box::new(move || {
                count.fetch_add(1, Ordering::SeqCst);
                notify.notify_one();
            });
            (Self { tx, acks, acked, sent: 0 }, Source::Frames { frames, on_frame, size })
        }

        /// Sends `frame`, then waits (up to `until`) for its ack.
        async fn send(&mut self, frame: &Bytes, until: Instant) {
            self.tx.send_replace(frame.clone());
            self.sent += 1;
            let _ = tokio::time::timeout_at(until.into(), self.acked.notified()).await;
        }

        /// Sends frames for `secs` (the next once the last was taken): `frames` in turn, each for
        /// an equal share of the time.
        async fn run(&mut self, frames: &[Bytes], secs: f64) {
            let started = Instant::now();
            let until = started + Duration::from_secs_f64(secs);
            while Instant::now() < until {
                let share = started.elapsed().as_secs_f64() / secs;
                let frame = &frames[((share * frames.len() as f64) as usize).min(frames.len() - 1)];
                self.send(frame, until).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    fn limits(max_secs: u64, max_bytes: u64) -> Limits {
        Limits { fps: 5, max_secs, max_bytes }
    }

    #[tokio::test]
    async fn frames_of_changing_size_make_a_video_as_long_as_the_wall_time() {
        let dir = tempfile::tempdir().unwrap();
        let frames = [jpeg(dir.path(), (1280, 900)), jpeg(dir.path(), (1001, 701))];
        let path = dir.path().join("frames.mp4");
        let (mut producer, source) = Producer::new((1280, 900));
        let started = Instant::now();
        let mut recorder = Recorder::start(&ffmpeg(), source, path.clone(), Limits::default()).unwrap();
        let pid = recorder.pid();
        // The first half of the time one size, the second half the other.
        producer.run(&frames, 3.0).await;
        let cpu = cpu_secs(pid);
        assert!(recorder.is_running());
        let recording = recorder.finish().await.unwrap();
        let wall = started.elapsed().as_secs_f64();
        assert_gone(pid).await;

        let duration = assert_video(&path, (1280, 900));
        assert!((duration - wall).abs() <= 1.0, "video {duration} s, wall time {wall} s");
        assert!((recording.duration_ms as f64 / 1000.0 - duration).abs() <= 0.5, "{recording:?} vs {duration}");
        assert_eq!(recording.bytes, std::fs::metadata(&path).unwrap().len());
        assert!(!recording.truncated && recording.interrupted.is_none(), "{recording:?}");
        // Every frame sent was taken once (the last perhaps not before the finish).
        let acks = producer.acks.load(Ordering::SeqCst);
        assert!(acks == producer.sent || acks + 1 == producer.sent, "{acks} acks for {} frames", producer.sent);
        eprintln!(
            "frames: {} bytes for {duration:.2} s ({:.0} KB/min), ffmpeg used {cpu:.2} CPU s ({:.3} per recorded s)",
            recording.bytes,
            recording.bytes as f64 / duration * 60.0 / 1000.0,
            cpu / duration
        );
    }

    #[tokio::test]
    async fn a_static_page_repeated_costs_little() {
        let dir = tempfile::tempdir().unwrap();
        let frame = jpeg(dir.path(), (1280, 900));
        let path = dir.path().join("static.mp4");
        let (mut producer, source) = Producer::new((1280, 900));
        let recorder = Recorder::start(&ffmpeg(), source, path.clone(), Limits::default()).unwrap();
        let pid = recorder.pid();
        // One frame, repeated by the recorder for the rest of the time.
        producer.send(&frame, Instant::now() + Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let cpu = cpu_secs(pid);
        let recording = recorder.finish().await.unwrap();
        let duration = assert_video(&path, (1280, 900));
        assert_eq!(producer.acks.load(Ordering::SeqCst), 1);
        let per_minute = recording.bytes as f64 / duration * 60.0;
        assert!(per_minute < 10e6, "{per_minute} bytes a minute");
        eprintln!(
            "static page: {} bytes for {duration:.2} s ({:.0} KB/min if extrapolated with its first keyframe), {:.3} CPU s per recorded s",
            recording.bytes,
            per_minute / 1000.0,
            cpu / duration
        );
        assert_gone(pid).await;
    }

    /// An `Xvfb` of the test's own, killed and its files removed on drop.
    struct Xvfb {
        child: std::process::Child,
        number: u32,
    }

    impl Xvfb {
        /// Starts `Xvfb :N` (N ≥ 600, outside the worker's range) of `size` and waits for it.
        async fn start(size: (u32, u32)) -> Self {
            use std::os::unix::process::CommandExt;
            for number in 600..700 {
                let lock = format!("/tmp/.X{number}-lock");
                if Path::new(&lock).exists() || check_display(&format!(":{number}")).is_ok() {
                    continue;
                }
                let child = std::process::Command::new("Xvfb")
                    .arg(format!(":{number}"))
                    .args(["-screen", "0", &format!("{}x{}x24", size.0, size.1), "-nolisten", "tcp"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .expect("Xvfb runs");
                let mut xvfb = Self { child, number };
                for _ in 0..250 {
                    if check_display(&xvfb.display()).is_ok() {
                        return xvfb;
                    }
                    if xvfb.child.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            panic!("no Xvfb came up");
        }

        fn display(&self) -> String {
            format!(":{}", self.number)
        }
    }

    impl Drop for Xvfb {
        /// Kills the server; removes its lock and socket if it held them (not if another test's
        /// server won the number).
        fn drop(&mut self) {
            let lock = format!("/tmp/.X{}-lock", self.number);
            let holder = std::fs::read_to_string(&lock).ok().and_then(|pid| pid.trim().parse::<u32>().ok());
            let _ = self.child.kill();
            let _ = self.child.wait();
            if holder == Some(self.child.id()) {
                let _ = std::fs::remove_file(lock);
                let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.number));
            }
        }
    }

    #[tokio::test]
    async fn a_display_is_recorded() {
        let xvfb = Xvfb::start((1280, 900)).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("display.mp4");
        // An odd size is rounded down to even numbers.
        let source = Source::Display { display: xvfb.display(), size: (1279, 899) };
        let recorder = Recorder::start(&ffmpeg(), source, path.clone(), Limits::default()).unwrap();
        let pid = recorder.pid();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu = cpu_secs(pid);
        let recording = recorder.finish().await.unwrap();
        assert_gone(pid).await;
        let duration = assert_video(&path, (1278, 898));
        assert!((1.0..=3.0).contains(&duration), "{duration} s");
        assert!(!recording.truncated && recording.interrupted.is_none(), "{recording:?}");
        eprintln!("display: {} bytes for {duration:.2} s, {:.3} CPU s per recorded s", recording.bytes, cpu / duration);
    }

    #[tokio::test]
    async fn max_secs_stops_a_display_recording_by_itself() {
        let xvfb = Xvfb::start((640, 480)).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capped.mp4");
        let source = Source::Display { display: xvfb.display(), size: (640, 480) };
        let mut recorder = Recorder::start(&ffmpeg(), source, path.clone(), limits(1, 1 << 30)).unwrap();
        let pid = recorder.pid();
        wait_stopped(&mut recorder).await;
        let recording = recorder.finish().await.unwrap();
        assert_gone(pid).await;
        let duration = assert_video(&path, (640, 480));
        assert!(duration <= 1.5, "{duration} s");
        assert!(recording.truncated && recording.interrupted.is_none(), "{recording:?}");
    }

    #[tokio::test]
    async fn caps_stop_a_frames_recording_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let frames = [jpeg(dir.path(), (640, 480)), jpeg(dir.path(), (480, 640))];
        // (max_secs, max_bytes, largest file accepted: the cap and the fragment that crossed it)
        let cases = [(1, 1 << 30, None), (60, 20_000, Some(100_000))];
        for (max_secs, max_bytes, largest) in cases {
            let path = dir.path().join(format!("capped-{max_secs}.mp4"));
            let (mut producer, source) = Producer::new((640, 480));
            let mut recorder = Recorder::start(&ffmpeg(), source, path.clone(), limits(max_secs, max_bytes)).unwrap();
            let pid = recorder.pid();
            // Frames alternating in size and content until ffmpeg stops.
            let mut i = 0;
            while recorder.is_running() && i < 50 {
                producer.send(&frames[i % 2], Instant::now() + Duration::from_millis(200)).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                i += 1;
            }
            wait_stopped(&mut recorder).await;
            let recording = recorder.finish().await.unwrap();
            assert_gone(pid).await;
            let duration = assert_video(&path, (640, 480));
            assert!(recording.truncated && recording.interrupted.is_none(), "{recording:?}");
            if max_secs == 1 {
                assert!(duration <= 1.5, "{duration} s");
            }
            if let Some(largest) = largest {
                assert!(recording.bytes <= largest, "{recording:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_killed_ffmpeg_leaves_a_playable_file() {
        let dir = tempfile::tempdir().unwrap();
        let frames = [jpeg(dir.path(), (640, 480))];
        let path = dir.path().join("killed.mp4");
        let (mut producer, source) = Producer::new((640, 480));
        let recorder = Recorder::start(&ffmpeg(), source, path.clone(), Limits::default()).unwrap();
        let pid = recorder.pid();
        producer.run(&frames, 2.5).await;
        nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let recording = recorder.finish().await.unwrap();
        assert_gone(pid).await;
        assert!(recording.interrupted.as_deref().is_some_and(|why| why.contains("signal")), "{recording:?}");
        assert!(!recording.truncated, "{recording:?}");
        assert_video(&path, (640, 480));
    }

    #[tokio::test]
    async fn discard_and_drop_kill_ffmpeg() {
        let dir = tempfile::tempdir().unwrap();
        let frames = [jpeg(dir.path(), (640, 480))];
        for drop_it in [false, true] {
            let path = dir.path().join(format!("gone-{drop_it}.mp4"));
            let (mut producer, source) = Producer::new((640, 480));
            let recorder = Recorder::start(&ffmpeg(), source, path.clone(), Limits::default()).unwrap();
            let pid = recorder.pid();
            producer.run(&frames, 1.0).await;
            if drop_it {
                drop(recorder);
                assert!(path.exists(), "a dropped recorder leaves its file");
            } else {
                recorder.discard().await;
                assert!(!path.exists(), "a discarded recording is deleted");
            }
            assert_gone(pid).await;
        }
    }

    #[tokio::test]
    async fn bad_input_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("v.mp4");
        let display = |d: &str| Source::Display { display: d.into(), size: (640, 480) };
        let frames = || {
            let (_tx, frames) = watch::channel(Bytes::new());
            Source::Frames { frames, on_frame: Box::new(|| {}), size: (640, 480) }
        };
        let (ffmpeg, missing) = (ffmpeg(), PathBuf::from("/nonexistent/ffmpeg"));
        let tiny = Source::Frames { frames: watch::channel(Bytes::new()).1, on_frame: Box::new(|| {}), size: (1, 480) };
        // (ffmpeg, source, path, limits, what the error says)
        let cases: Vec<(&PathBuf, Source, PathBuf, Limits, &str)> = vec![
            (&missing, frames(), good.clone(), Limits::default(), "cannot run ffmpeg"),
            (&ffmpeg, frames(), dir.path().join("no/such/dir/v.mp4"), Limits::default(), "cannot write"),
            (&ffmpeg, display(":5999"), good.clone(), Limits::default(), "no X display"),
            (&ffmpeg, display("nonsense"), good.clone(), Limits::default(), "no X display"),
            (&ffmpeg, frames(), good.clone(), Limits { fps: 0, ..Limits::default() }, "fps"),
            (&ffmpeg, frames(), good.clone(), limits(0, 1), "max_secs"),
            (&ffmpeg, tiny, good.clone(), Limits::default(), "size"),
        ];
        for (ffmpeg, source, path, limits, says) in cases {
            let error = Recorder::start(ffmpeg, source, path, limits).err().expect("an error");
            assert!(error.to_string().contains(says), "{error} should say {says}");
        }
        assert!(!good.exists(), "no file is left by a failed start");
    }

    #[tokio::test]
    async fn no_frame_at_all_is_an_empty_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.mp4");
        let (_producer, source) = Producer::new((640, 480));
        let recorder = Recorder::start(&ffmpeg(), source, path.clone(), Limits::default()).unwrap();
        let pid = recorder.pid();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let error = recorder.finish().await.expect_err("nothing was recorded");
        assert!(matches!(error, RecordingError::Empty(_)), "{error}");
        assert!(!path.exists());
        assert_gone(pid).await;
    }

    #[test]
    fn arguments_bound_the_recording_and_fix_the_output_size() {
        let limits = Limits { fps: 5, max_secs: 60, max_bytes: 1000 };
        // (input, arguments expected in order)
        let cases = [
            (
                InputSpec::Frames { size: (1280, 900) },
                vec!["image2pipe", "-i", "-", "scale=1280:900:force_original_aspect_ratio=decrease", "pad=1280:900"],
            ),
            (InputSpec::Display { display: ":101".into(), size: (1280, 900) }, vec!["x11grab", "1280x900", ":101"]),
        ];
        for (input, expected) in cases {
            let args = arguments(&input, Path::new("/d/v.mp4"), &limits).join(" ");
            let mut from = 0;
            for part in expected.iter().chain(&["frag_keyframe+empty_moov", "-t 60", "-fs 1000", "/d/v.mp4"]) {
                let at = args[from..].find(part).unwrap_or_else(|| panic!("{part} missing after {from} in {args}"));
                from += at;
            }
        }
    }

    #[test]
    fn ffmpeg_is_found_on_path() {
        assert!(ffmpeg_path().is_some_and(|p| p.ends_with("ffmpeg")));
    }
}
