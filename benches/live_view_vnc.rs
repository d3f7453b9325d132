//! The VNC side of the `live_view` bench: a minimal RFB client through the worker's `/vnc/{id}`
//! bridge, reading updates the way noVNC does (one incremental update request in flight,
//! the next sent when an update arrives), so that its figures compare with the live view's.
//!
//! Raw encoding only: the bench measures when updates arrive, not how they are compressed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long an update may take before the run is given up.
const UPDATE_LIMIT: Duration = Duration::from_secs(20);

/// An RFB session through a WebSocket, after the handshake.
pub struct Vnc {
    socket: Socket,
    pending: Vec<u8>,
    pub width: u16,
    pub height: u16,
    bytes_per_pixel: usize,
}

/// A screen point and the pixel last seen there.
#[derive(Clone)]
pub struct Probe {
    pub x: u16,
    pub y: u16,
    pub pixel: Vec<u8>,
}

impl Vnc {
    /// Connects to `url` (subprotocol `binary`), does the handshake (no auth, shared, raw).
    pub async fn connect(url: &str) -> Result<Self> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", "binary".parse()?);
        let (socket, _) =
            tokio_tungstenite::connect_async(request).await.with_context(|| format!("connecting {url}"))?;
        let mut vnc = Self { socket, pending: Vec::new(), width: 0, height: 0, bytes_per_pixel: 4 };
        ensure!(vnc.read(12).await?.starts_with(b"RFB 003."), "not an RFB server");
        vnc.send(b"RFB 003.008\n".to_vec()).await?;
        let count = vnc.read(1).await?[0] as usize;
        ensure!(vnc.read(count).await?.contains(&1), "the VNC server wants a password");
        vnc.send(vec![1]).await?;
        ensure!(vnc.read(4).await? == [0, 0, 0, 0], "security handshake failed");
        vnc.send(vec![1]).await?; // shared
        let init = vnc.read(24).await?;
        vnc.width = u16::from_be_bytes([init[0], init[1]]);
        vnc.height = u16::from_be_bytes([init[2], init[3]]);
        vnc.bytes_per_pixel = (init[4] / 8) as usize;
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
        vnc.read(name_len).await?;
        vnc.send(vec![2, 0, 0, 1, 0, 0, 0, 0]).await?; // SetEncodings: raw only
        Ok(vnc)
    }

    /// Updates per second over `run` (one incremental request in flight), and the mean update size.
    pub async fn fps(&mut self, run: Duration) -> Result<(f64, f64)> {
        // The first, full update (not counted).
        self.request(false).await?;
        self.update(None).await?;
        let (start, mut updates, mut bytes) = (Instant::now(), 0usize, 0usize);
        while start.elapsed() < run {
            self.request(true).await?;
            let (rects, size) = self.update(None).await?;
            if rects > 0 {
                updates += 1;
                bytes += size;
            }
        }
        Ok((updates as f64 / start.elapsed().as_secs_f64(), bytes as f64 / updates.max(1) as f64))
    }

    /// The pixel at (`x`, `y`) now (a full update is read).
    pub async fn probe(&mut self, x: u16, y: u16) -> Result<Probe> {
        let mut probe = Probe { x, y, pixel: Vec::new() };
        self.request(false).await?;
        self.update(Some(&mut probe)).await?;
        ensure!(!probe.pixel.is_empty(), "the full update did not cover ({x}, {y})");
        Ok(probe)
    }

    /// Milliseconds from a left click at `(x, y)` to the first update showing `probe`'s pixel
    /// changed (a point away from the click, where the pointer is not drawn); `probe` then
    /// holds the new pixel.
    pub async fn click_to_update(&mut self, (x, y): (u16, u16), probe: &mut Probe) -> Result<f64> {
        let before = probe.pixel.clone();
        let (x, y) = (x.to_be_bytes(), y.to_be_bytes());
        let sent = Instant::now();
        self.send(vec![5, 1, x[0], x[1], y[0], y[1]]).await?; // PointerEvent: left down
        self.send(vec![5, 0, x[0], x[1], y[0], y[1]]).await?; // up
        loop {
            self.request(true).await?;
            self.update(Some(probe)).await?;
            if probe.pixel != before {
                return Ok(sent.elapsed().as_secs_f64() * 1000.0);
            }
            if sent.elapsed() > UPDATE_LIMIT {
                bail!("no update showed the click in {UPDATE_LIMIT:?}");
            }
        }
    }

    /// Reads until the next framebuffer update and reads it whole: its rectangle count and
    /// size; the pixel at `probe`'s point is kept if a rectangle covers it.
    async fn update(&mut self, mut probe: Option<&mut Probe>) -> Result<(usize, usize)> {
        loop {
            match self.read(1).await?[0] {
                0 => {
                    let header = self.read(3).await?;
                    let rects = u16::from_be_bytes([header[1], header[2]]) as usize;
                    let mut size = 0;
                    for _ in 0..rects {
                        let rect = self.read(12).await?;
                        let word = |i: usize| u16::from_be_bytes([rect[i], rect[i + 1]]);
                        let (rx, ry, w, h) = (word(0), word(2), word(4), word(6));
                        let encoding = i32::from_be_bytes([rect[8], rect[9], rect[10], rect[11]]);
                        ensure!(encoding == 0, "unexpected encoding {encoding}");
                        let data = self.read(w as usize * h as usize * self.bytes_per_pixel).await?;
                        size += data.len();
                        if let Some(probe) = probe.as_deref_mut()
                            && (rx..rx + w).contains(&probe.x)
                            && (ry..ry + h).contains(&probe.y)
                        {
                            let at =
                                ((probe.y - ry) as usize * w as usize + (probe.x - rx) as usize) * self.bytes_per_pixel;
                            probe.pixel = data[at..at + self.bytes_per_pixel].to_vec();
                        }
                    }
                    return Ok((rects, size));
                }
                2 => {}
                3 => {
                    let header = self.read(7).await?;
                    self.read(u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize).await?;
                }
                other => bail!("unexpected RFB message {other}"),
            }
        }
    }

    /// FramebufferUpdateRequest for the whole screen.
    async fn request(&mut self, incremental: bool) -> Result<()> {
        let (w, h) = (self.width.to_be_bytes(), self.height.to_be_bytes());
        self.send(vec![3, incremental as u8, 0, 0, 0, 0, w[0], w[1], h[0], h[1]]).await
    }

    async fn read(&mut self, n: usize) -> Result<Vec<u8>> {
        while self.pending.len() < n {
            let message = tokio::time::timeout(UPDATE_LIMIT, self.socket.next()).await.context("VNC server silent")?;
            match message.context("socket closed")?? {
                Message::Binary(data) => self.pending.extend_from_slice(&data),
                Message::Close(_) => bail!("socket closed"),
                _ => {}
            }
        }
        Ok(self.pending.drain(..n).collect())
    }

    async fn send(&mut self, data: Vec<u8>) -> Result<()> {
        Ok(self.socket.send(Message::Binary(data.into())).await?)
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
