//! The VNC bridge: a WebSocket client (noVNC) on a raw TCP socket joined to a VNC server, on a
//! Unix socket (a session's own x11vnc, which has no TCP port) or TCP (a shared display's).
//!
//! Screen updates (nearly all of the bytes) never pass through the worker's memory: each chunk
//! the VNC server sends is `splice(2)`d from its socket into a pipe and from the pipe into the
//! client's socket, behind a binary frame header. What the client sends (keys, pointer, update
//! requests: a few bytes at a time) is parsed and unmasked here and written to the VNC server.
//! Pings are answered, a client's Close is echoed, and protocol errors close with 1002.

use std::io::{self, Cursor};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use rustix::net::SendFlags;
use rustix::pipe::{PipeFlags, SpliceFlags};
use tokio::io::AsyncWrite;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Control as Ctl, Data, OpCode};

use super::{Control, End, supervise};

/// Pipe capacity asked for (Linux's default unprivileged maximum); one frame carries at most this.
const PIPE_SIZE: usize = 1 << 20;
/// Largest message accepted from the client (RFB client messages are small; clipboard text is
/// the biggest).
const MAX_CLIENT_FRAME: u64 = 16 << 20;

/// A connection to a VNC server.
pub enum VncUpstream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Relays a VNC stream between `client` (a socket just upgraded to WebSocket; `early` holds
/// bytes the HTTP server read past the request) and the VNC server `upstream`, until either side
/// closes or `control` ends it.
pub async fn websocket_to_vnc(client: TcpStream, early: Bytes, upstream: VncUpstream, control: Control) -> End {
    match upstream {
        VncUpstream::Tcp(stream) => {
            let (rx, tx) = stream.into_split();
            relay(client, early, rx, tx, control).await
        }
        VncUpstream::Unix(stream) => {
            let (rx, tx) = stream.into_split();
            relay(client, early, rx, tx, control).await
        }
    }
}

/// The read side of a VNC server connection: data is spliced from it into a pipe.
trait SpliceSource: Sync {
    /// Waits until readable, then moves up to `capacity` bytes into `pipe`; 0 at the end.
    async fn splice_into(&self, pipe: &OwnedFd, capacity: usize) -> io::Result<usize>;
}

/// The same for both socket kinds (tokio's `async_io` is an inherent method of each).
macro_rules! splice_source {
    ($half:ty) => {
        impl SpliceSource for $half {
            async fn splice_into(&self, pipe: &OwnedFd, capacity: usize) -> io::Result<usize> {
                let socket = self.as_ref();
                socket
                    .async_io(Interest::READABLE, || {
                        Ok(rustix::pipe::splice(socket, None, pipe, None, capacity, SpliceFlags::NONBLOCK)?)
                    })
                    .await
            }
        }
    };
}
splice_source!(OwnedReadHalf);
splice_source!(tokio::net::unix::OwnedReadHalf);

async fn relay<R: SpliceSource, W: AsyncWrite + Unpin>(
    client: TcpStream,
    early: Bytes,
    up_rx: R,
    mut up_tx: W,
    control: Control,
) -> End {
    let (pipe_out, pipe_in) = match pipe() {
        Ok(pipe) => pipe,
        Err(e) => {
            tracing::warn!(error = %e, "VNC bridge cannot create a pipe");
            return End::Upstream;
        }
    };
    let traffic = AtomicBool::new(false);
    let mid_frame = AtomicBool::new(false);
    // Frames for the client from the reading side (pongs, Close replies), written between data frames.
    let (replies, mut queued) = mpsc::channel::<Vec<u8>>(4);
    let (mut client_rx, mut client_tx) = client.into_split();

    let end = {
        let inbound = client_to_server(&mut client_rx, early, &mut up_tx, &traffic, replies);
        let outbound = Outbound { up: &up_rx, client: &client_tx, pipe_in: &pipe_in, pipe_out: &pipe_out };
        tokio::select! {
            end = inbound => end,
            end = outbound.run(&mut queued, &traffic, &mid_frame) => end,
            end = supervise(&control, &traffic) => end,
        }
    };
    // Frames can only be added between whole frames: what the reading side queued last (a Close
    // reply), then our own Close.
    if !mid_frame.load(Ordering::Relaxed) {
        let mut last = Vec::new();
        while let Ok(frame) = queued.try_recv() {
            last.extend_from_slice(&frame);
        }
        if end != End::Client {
            last.extend_from_slice(&close_frame(CloseCode::Normal, end.as_str()));
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), client_tx.write_all(&last)).await;
    }
    end
}

/// A pipe with the largest capacity the system allows up to `PIPE_SIZE`: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (pipe_out, pipe_in) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let _ = rustix::pipe::fcntl_setpipe_size(&pipe_in, PIPE_SIZE);
    Ok((pipe_out, pipe_in))
}

/// The server-to-client direction: spliced data frames, and the replies the other side queues.
struct Outbound<'a, R> {
    up: &'a R,
    client: &'a OwnedWriteHalf,
    pipe_in: &'a OwnedFd,
    pipe_out: &'a OwnedFd,
}

impl<R: SpliceSource> Outbound<'_, R> {
    async fn run(&self, queued: &mut mpsc::Receiver<Vec<u8>>, traffic: &AtomicBool, mid_frame: &AtomicBool) -> End {
        let capacity = rustix::pipe::fcntl_getpipe_size(self.pipe_in).unwrap_or(64 << 10);
        loop {
            tokio::select! {
                biased;
                reply = queued.recv() => {
                    let Some(reply) = reply else { return End::Client };
                    mid_frame.store(true, Ordering::Relaxed);
                    if self.send(&reply, false).await.is_err() {
                        return End::Client;
                    }
                    mid_frame.store(false, Ordering::Relaxed);
                }
                moved = self.up.splice_into(self.pipe_in, capacity) => {
                    let Ok(length @ 1..) = moved else { return End::Upstream };
                    traffic.store(true, Ordering::Relaxed);
                    mid_frame.store(true, Ordering::Relaxed);
                    if self.forward(length).await.is_err() {
                        return End::Client;
                    }
                    mid_frame.store(false, Ordering::Relaxed);
                }
            }
        }
    }

    /// Writes a binary frame header for `length` bytes, then moves them from the pipe.
    async fn forward(&self, length: usize) -> io::Result<()> {
        let mut header = Vec::with_capacity(10);
        frame_header(OpCode::Data(Data::Binary), length, &mut header);
        self.send(&header, true).await?;
        let mut left = length;
        while left > 0 {
            let moved = self
                .client
                .as_ref()
                .async_io(Interest::WRITABLE, || {
                    Ok(rustix::pipe::splice(
                        self.pipe_out,
                        None,
                        self.client.as_ref(),
                        None,
                        left,
                        SpliceFlags::NONBLOCK,
                    )?)
                })
                .await?;
            if moved == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            left -= moved;
        }
        Ok(())
    }

    /// Writes `bytes` to the client; with `more`, tells the kernel that more data follows (so a
    /// header goes out in one segment with its payload).
    async fn send(&self, mut bytes: &[u8], more: bool) -> io::Result<()> {
        let flags = if more { SendFlags::MORE | SendFlags::NOSIGNAL } else { SendFlags::NOSIGNAL };
        while !bytes.is_empty() {
            let sent = self
                .client
                .as_ref()
                .async_io(Interest::WRITABLE, || Ok(rustix::net::send(self.client.as_ref(), bytes, flags)?))
                .await?;
            bytes = &bytes[sent..];
        }
        Ok(())
    }
}

/// The client-to-server direction: frames are parsed, unmasked and their payloads written to the
/// VNC server; control frames are answered through `replies`.
async fn client_to_server(
    client: &mut OwnedReadHalf,
    early: Bytes,
    upstream: &mut (impl AsyncWrite + Unpin),
    traffic: &AtomicBool,
    replies: mpsc::Sender<Vec<u8>>,
) -> End {
    let mut buffer = BytesMut::from(early);
    loop {
        while let Some(frame) = match next_frame(&mut buffer) {
            Ok(frame) => frame,
            Err(code) => {
                let _ = replies.send(close_frame(code, "protocol error")).await;
                return End::Client;
            }
        } {
            match frame {
                Frame::Data(payload) => {
                    traffic.store(true, Ordering::Relaxed);
                    if upstream.write_all(&payload).await.is_err() {
                        return End::Upstream;
                    }
                }
                Frame::Ping(payload) => {
                    let mut pong = Vec::with_capacity(2 + payload.len());
                    frame_header(OpCode::Control(Ctl::Pong), payload.len(), &mut pong);
                    pong.extend_from_slice(&payload);
                    let _ = replies.send(pong).await;
                }
                Frame::Pong => {}
                Frame::Close(payload) => {
                    // Echo the status code, as RFC 6455 §5.5.1 asks.
                    let mut close = Vec::with_capacity(4);
                    let code = payload.get(..2).unwrap_or_default();
                    frame_header(OpCode::Control(Ctl::Close), code.len(), &mut close);
                    close.extend_from_slice(code);
                    let _ = replies.send(close).await;
                    return End::Client;
                }
            }
        }
        match client.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return End::Client,
            Ok(_) => {}
        }
    }
}

/// A whole frame from the client, unmasked.
#[derive(Debug, PartialEq)]
enum Frame {
    /// Binary, text or continuation data: RFB bytes either way.
    Data(Bytes),
    Ping(Bytes),
    Pong,
    Close(Bytes),
}

/// Takes the next whole frame off `buffer`: `Ok(None)` until one has arrived, or the close code
/// for a frame a server must refuse.
fn next_frame(buffer: &mut BytesMut) -> Result<Option<Frame>, CloseCode> {
    let mut cursor = Cursor::new(&buffer[..]);
    let (header, length) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(_) => return Err(CloseCode::Protocol),
    };
    let Some(mask) = header.mask else { return Err(CloseCode::Protocol) };
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(CloseCode::Protocol);
    }
    if length > MAX_CLIENT_FRAME {
        return Err(CloseCode::Size);
    }
    let start = cursor.position() as usize;
    if buffer.len() < start + length as usize {
        buffer.reserve(start + length as usize - buffer.len());
        return Ok(None);
    }
    buffer.advance(start);
    let mut payload = buffer.split_to(length as usize);
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    let payload = payload.freeze();
    Ok(Some(match header.opcode {
        OpCode::Data(Data::Binary | Data::Text | Data::Continue) => Frame::Data(payload),
        OpCode::Control(Ctl::Ping) => Frame::Ping(payload),
        OpCode::Control(Ctl::Pong) => Frame::Pong,
        OpCode::Control(Ctl::Close) => Frame::Close(payload),
        OpCode::Data(Data::Reserved(_)) | OpCode::Control(Ctl::Reserved(_)) => return Err(CloseCode::Protocol),
    }))
}

/// Appends the header of an unmasked, final frame of `length` bytes.
fn frame_header(opcode: OpCode, length: usize, out: &mut Vec<u8>) {
    let header = FrameHeader { opcode, ..FrameHeader::default() };
    header.format(length as u64, out).expect("writing to a Vec cannot fail");
}

/// A whole Close frame with `code` and `reason`.
fn close_frame(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut payload = u16::from(code).to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame_header(OpCode::Control(Ctl::Close), payload.len(), &mut frame);
    frame.extend_from_slice(&payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut frame = vec![first];
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    #[test]
    fn frames_are_taken_whole_and_unmasked() {
        let big = vec![7u8; 300];
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&masked(0x02, b"RFB 003.008\n"));
        buffer.extend_from_slice(&masked(0x89, b"hi"));
        let second = masked(0x82, &big);
        buffer.extend_from_slice(&second[..100]);
        assert_eq!(next_frame(&mut buffer), Ok(Some(Frame::Data(Bytes::from_static(b"RFB 003.008\n")))));
        assert_eq!(next_frame(&mut buffer), Ok(Some(Frame::Ping(Bytes::from_static(b"hi")))));
        assert_eq!(next_frame(&mut buffer), Ok(None), "half a frame waits for the rest");
        buffer.extend_from_slice(&second[100..]);
        assert_eq!(next_frame(&mut buffer), Ok(Some(Frame::Data(Bytes::from(big)))));
        assert!(buffer.is_empty());
        assert_eq!(next_frame(&mut buffer), Ok(None));
    }

    #[test]
    fn frames_a_server_must_refuse_are_protocol_errors() {
        let unmasked = [0x82, 2, b'h', b'i'];
        assert_eq!(next_frame(&mut BytesMut::from(&unmasked[..])), Err(CloseCode::Protocol));
        let reserved_bit = masked(0xC2, b"x");
        assert_eq!(next_frame(&mut BytesMut::from(&reserved_bit[..])), Err(CloseCode::Protocol));
        let reserved_opcode = masked(0x83, b"x");
        assert_eq!(next_frame(&mut BytesMut::from(&reserved_opcode[..])), Err(CloseCode::Protocol));
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&(MAX_CLIENT_FRAME + 1).to_be_bytes());
        huge.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(next_frame(&mut BytesMut::from(&huge[..])), Err(CloseCode::Size));
    }

    #[test]
    fn server_frames_are_unmasked_with_the_right_length() {
        let mut header = Vec::new();
        frame_header(OpCode::Data(Data::Binary), 70_000, &mut header);
        assert_eq!(header, [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        let close = close_frame(CloseCode::Normal, "session_closed");
        assert_eq!(&close[..4], [0x88, 16, 0x03, 0xE8]);
        assert_eq!(&close[4..], b"session_closed");
    }
}
