//! Relay capacity for the `access` bench: how fast each relay moves a recorded x11vnc stream
//! when neither end holds it back.
//!
//! Live, x11vnc on this machine produces well under a relay's capacity, so a live comparison
//! measures x11vnc. Here the stream recorded from a live x11vnc is served again from a file by
//! `sendfile(2)` (a replay "VNC server"), and the reader moves what it gets to `/dev/null` with
//! `splice(2)`: both ends cost next to nothing, and the relay between them is what is measured.
//! The worker relays it as a session of a second worker in `BW_DISPLAY_MODE=shared` whose
//! VNC port is the replay server; websockify relays it directly.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use rustix::pipe::{PipeFlags, SpliceFlags};

/// Serves the file at `path` from its start, over and over, to every connection on a loopback
/// port; returns the port. The threads end with the bench process.
pub fn replay_server(path: PathBuf) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let path = path.clone();
            std::thread::spawn(move || serve(&path, stream));
        }
    });
    Ok(port)
}

fn serve(path: &Path, stream: TcpStream) {
    let (Ok(file), Ok(size)) = (File::open(path), std::fs::metadata(path).map(|m| m.len())) else { return };
    loop {
        let mut offset = 0;
        while offset < size {
            // No copy in this process: the kernel sends the file's pages.
            let left = (size - offset) as usize;
            match rustix::fs::sendfile(&stream, &file, Some(&mut offset), left) {
                Ok(sent) if sent > 0 => {}
                _ => return,
            }
        }
    }
}

/// Connects to the WebSocket at `url` (`ws://host:port/path?query`, subprotocol `binary`) and
/// discards what arrives for `run`; returns the bytes received after the handshake (frame
/// headers included: ten bytes per frame of 64 KiB or more, under 0.02 %).
pub fn drain(url: &str, run: Duration) -> Result<u64> {
    let rest = url.strip_prefix("ws://").context("a ws:// URL")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    )?;
    // The response head, a byte at a time so that nothing of the stream is read with it.
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    ensure!(head.starts_with(b"HTTP/1.1 101"), "no upgrade: {}", String::from_utf8_lossy(&head));

    let (pipe_out, pipe_in) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let capacity = rustix::pipe::fcntl_setpipe_size(&pipe_in, 1 << 20).unwrap_or(64 << 10);
    let null = File::create("/dev/null")?;
    let (start, mut total) = (Instant::now(), 0u64);
    while start.elapsed() < run {
        let moved = retry(|| rustix::pipe::splice(&stream, None, &pipe_in, None, capacity, SpliceFlags::MOVE))?;
        ensure!(moved > 0, "the relay closed the stream after {total} bytes");
        let mut left = moved;
        while left > 0 {
            left -= retry(|| rustix::pipe::splice(&pipe_out, None, &null, None, left, SpliceFlags::MOVE))?;
        }
        total += moved as u64;
    }
    Ok(total)
}

/// `call` again while a signal interrupts it.
fn retry(call: impl Fn() -> rustix::io::Result<usize>) -> rustix::io::Result<usize> {
    loop {
        match call() {
            Err(rustix::io::Errno::INTR) => {}
            result => return result,
        }
    }
}

/// An Xvfb display for the second worker's browser; stopped on drop with SIGTERM, on which
/// Xvfb removes its lock file and socket (a killed one leaves them behind).
pub struct Xvfb {
    child: std::process::Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Result<Self> {
        let number = (180..400)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .context("no free X display number")?;
        let display = format!(":{number}");
        let child = std::process::Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1280x720x24", "-nolisten", "tcp"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting Xvfb (apt install xvfb)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
            ensure!(Instant::now() < deadline, "Xvfb {display} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, display })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
