//! Upstream proxies: the egress proxy chains a session's traffic to the proxy the caller gave
//! (`http://user:pass@host:port` or `socks5://…`) and authenticates there itself (HTTP
//! `CONNECT` with `Proxy-Authorization: Basic`, SOCKS5 with user/password), since Chromium
//! cannot take proxy credentials on its command line. Plain `http://` requests go through a
//! tunnel too: a 401/407 to `CONNECT` can only be the proxy's, where one to a forwarded
//! request could be the site's.
//!
//! Credentials never leave this type: `Debug`, `redacted` and `label` leave them out, and
//! errors and metrics name the proxy by `host:port` only.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Time to connect to the proxy and have it open the tunnel.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// A byte stream to a destination: a direct connection, an HTTP tunnel or a SOCKS5 one.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The proxy protocols the egress proxy can chain to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Socks5,
}

/// A parsed upstream proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why an upstream proxy could not give a connection. Only the first four are the proxy's
/// fault (the session's network is broken); `Refused` is the proxy declining a destination.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the proxy {0} cannot be reached: {1}")]
    Unreachable(String, String),
    #[error("the proxy {0} did not answer in time")]
    Timeout(String),
    #[error("the proxy {0} rejected the credentials")]
    Auth(String),
    #[error("the proxy {0} answered something that is not its protocol: {1}")]
    Protocol(String, String),
    #[error("the proxy {0} would not connect to the destination: {1}")]
    Refused(String, String),
    #[error("the proxy URL is not valid: {0}")]
    Invalid(String),
}

impl UpstreamError {
    /// The metrics label of the failure.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Unreachable(..) => "unreachable",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Auth(_) => "auth",
            UpstreamError::Protocol(..) => "protocol",
            UpstreamError::Refused(..) => "refused",
            UpstreamError::Invalid(_) => "invalid",
        }
    }

    /// True when the proxy itself failed (down, wrong credentials, not a proxy), as opposed to
    /// a destination it declined.
    pub fn is_proxy_fault(&self) -> bool {
        !matches!(self, UpstreamError::Refused(..))
    }
}

impl Upstream {
    /// Parses `http://[user:pass@]host:port` or `socks5://…` (`socks5h` is the same: names are
    /// always resolved by the proxy); percent-encoded credentials are decoded.
    pub fn parse(text: &str) -> Result<Self, UpstreamError> {
        let invalid = |why: &str| UpstreamError::Invalid(why.to_string());
        let url = url::Url::parse(text.trim()).map_err(|_| invalid("expected scheme://[user:pass@]host:port"))?;
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "socks5" | "socks5h" => Scheme::Socks5,
            _ => return Err(invalid("the scheme must be http, socks5 or socks5h")),
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| invalid("the URL names no host"))?;
        // `http://` without a port is port 80, as in any URL; `socks5://` must name its port.
        let port = url.port_or_known_default().ok_or_else(|| invalid("the URL must name the proxy's port"))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a proxy URL has no path, query or fragment"));
        }
        let decode =
            |s: &str| percent_decode(s).ok_or_else(|| invalid("the credentials are not valid percent-encoded UTF-8"));
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user)?, decode(password.unwrap_or(""))?)),
        };
        if scheme == Scheme::Socks5
            && let Some((user, password)) = &credentials
            && (user.len() > 255 || password.len() > 255 || user.is_empty())
        {
            return Err(invalid("SOCKS5 user names and passwords are 1-255 bytes"));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        Ok(Self { scheme, host, port, credentials })
    }

    /// `host:port`, for errors and metrics.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL with the password replaced by `***`.
    pub fn redacted(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Socks5 => "socks5",
        };
        match &self.credentials {
            Some((user, _)) => format!("{scheme}://{user}:***@{}", self.label()),
            None => format!("{scheme}://{}", self.label()),
        }
    }

    /// The `Proxy-Authorization` value for an HTTP proxy with credentials.
    fn authorization(&self) -> Option<String> {
        let (user, password) = self.credentials.as_ref()?;
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
    }

    /// Connects to the proxy at `addr` (its checked address) and has it open a tunnel to
    /// `host:port`.
    pub async fn tunnel(
        &self,
        addr: std::net::SocketAddr,
        host: &str,
        port: u16,
    ) -> Result<Box<dyn Stream>, UpstreamError> {
        let label = self.label();
        let opened = tokio::time::timeout(OPEN_TIMEOUT, async {
            let socket =
                TcpStream::connect(addr).await.map_err(|e| UpstreamError::Unreachable(label.clone(), e.to_string()))?;
            let _ = socket.set_nodelay(true);
            match self.scheme {
                Scheme::Http => self.http_connect(socket, host, port).await,
                Scheme::Socks5 => self.socks5_connect(socket, host, port).await,
            }
        })
        .await;
        opened.unwrap_or_else(|_| Err(UpstreamError::Timeout(label)))
    }

    /// `CONNECT host:port` with Basic credentials; a 200 turns the connection into the tunnel.
    async fn http_connect(&self, socket: TcpStream, host: &str, port: u16) -> Result<Box<dyn Stream>, UpstreamError> {
        let label = self.label();
        let protocol = |e: &dyn std::fmt::Display| UpstreamError::Protocol(label.clone(), e.to_string());
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(socket)).await.map_err(|e| protocol(&e))?;
        tokio::spawn(connection.with_upgrades());
        let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let mut request =
            Request::builder().method(Method::CONNECT).uri(&authority).header(hyper::header::HOST, &authority);
        if let Some(auth) = self.authorization() {
            request = request.header(hyper::header::PROXY_AUTHORIZATION, auth);
        }
        let request = request.body(axum::body::Body::empty()).map_err(|e| protocol(&e))?;
        let response = sender.send_request(request).await.map_err(|e| protocol(&e))?;
        match response.status() {
            StatusCode::OK => {
                let upgraded = hyper::upgrade::on(response).await.map_err(|e| protocol(&e))?;
                Ok(Box::new(TokioIo::new(upgraded)))
            }
            // Some proxies (tinyproxy 1.11) answer bad credentials with 401; on CONNECT either
            // can only be the proxy's.
            StatusCode::PROXY_AUTHENTICATION_REQUIRED | StatusCode::UNAUTHORIZED => Err(UpstreamError::Auth(label)),
            status => Err(UpstreamError::Refused(label, format!("it answered {status}"))),
        }
    }

    /// SOCKS5 `CONNECT` to the host name (the proxy resolves it), with user/password when given.
    async fn socks5_connect(&self, socket: TcpStream, host: &str, port: u16) -> Result<Box<dyn Stream>, UpstreamError> {
        use tokio_socks::Error as Socks;
        use tokio_socks::tcp::Socks5Stream;
        let opened = match &self.credentials {
            Some((user, password)) => {
                Socks5Stream::connect_with_password_and_socket(socket, (host, port), user, password).await
            }
            None => Socks5Stream::connect_with_socket(socket, (host, port)).await,
        };
        let label = self.label();
        match opened {
            Ok(stream) => Ok(Box::new(stream.into_inner())),
            Err(Socks::PasswordAuthFailure(_) | Socks::AuthorizationRequired | Socks::NoAcceptableAuthMethods) => {
                Err(UpstreamError::Auth(label))
            }
            Err(Socks::Io(e)) => Err(UpstreamError::Unreachable(label, e.to_string())),
            Err(
                e @ (Socks::GeneralSocksServerFailure
                | Socks::ConnectionNotAllowedByRuleset
                | Socks::NetworkUnreachable
                | Socks::HostUnreachable
                | Socks::ConnectionRefused
                | Socks::TtlExpired),
            ) => Err(UpstreamError::Refused(label, e.to_string())),
            Err(e) => Err(UpstreamError::Protocol(label, e.to_string())),
        }
    }
}

/// Decodes `%XX` escapes (URL user info); `None` for bad escapes or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A stream that counts the bytes it carries into `bw_proxy_bytes_total` for one proxy.
pub struct Counted<S> {
    inner: S,
    sent: metrics::Counter,
    received: metrics::Counter,
}

impl<S> Counted<S> {
    pub fn new(inner: S, proxy: &str) -> Self {
        let counter = |direction: &'static str| metrics::counter!("bw_proxy_bytes_total", "proxy" => proxy.to_string(), "direction" => direction);
        Self { inner, sent: counter("sent"), received: counter("received") }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.received.increment((buf.filled().len() - before) as u64);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            self.sent.increment(n as u64);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection fake proxy that reads what the client sends, answers `reply` (never, if
    /// `None`) and hands back what it read.
    async fn fake_proxy(
        replies: Vec<Option<&'static [u8]>>,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for reply in replies {
                let mut buf = [0; 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                seen.extend_from_slice(&buf[..n]);
                match reply {
                    Some(bytes) => socket.write_all(bytes).await.unwrap(),
                    None => std::future::pending::<()>().await,
                }
            }
            seen
        });
        (addr, served)
    }

    /// (scheme, what the proxy answers to each message, expected failure kind or `ok`).
    type Answer = (&'static str, &'static [Option<&'static [u8]>], &'static str);
    const ANSWERS: &[Answer] = &[
        ("http", &[Some(b"HTTP/1.1 200 Connection established\r\n\r\n")], "ok"),
        ("http", &[Some(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")], "auth"),
        ("http", &[Some(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")], "auth"),
        ("http", &[Some(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")], "refused"),
        ("http", &[Some(b"SSH-2.0-OpenSSH_9.2\r\n")], "protocol"),
        ("http", &[None], "timeout"),
        // SOCKS5: method user/password chosen, then the credentials refused (RFC 1929).
        ("socks5", &[Some(&[5, 2]), Some(&[1, 1])], "auth"),
        ("socks5", &[Some(&[5, 2]), Some(&[1, 0]), Some(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])], "refused"),
        ("socks5", &[Some(&[5, 2]), Some(&[1, 0]), Some(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 80])], "ok"),
        ("socks5", &[Some(b"HTTP/1.1 400 Bad Request\r\n\r\n")], "protocol"),
    ];

    #[tokio::test(start_paused = true)]
    async fn proxy_answers_are_told_apart_and_credentials_are_sent() {
        for (scheme, replies, expected) in ANSWERS {
            let (addr, served) = fake_proxy(replies.to_vec()).await;
            let upstream = Upstream::parse(&format!("{scheme}://bw:s3cret@{addr}")).unwrap();
            let outcome = upstream.tunnel(addr, "example.com", 443).await;
            let kind = outcome.as_ref().map_or_else(|e| e.kind(), |_| "ok");
            assert_eq!(kind, *expected, "{scheme} {replies:?}: {:?}", outcome.err());
            if let Err(e) = &outcome {
                assert!(!e.to_string().contains("s3cret"), "{e}");
            }
            if *expected != "timeout" {
                let seen = served.await.unwrap();
                if *scheme == "http" {
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    assert!(text.starts_with("connect example.com:443 http/1.1"), "{text}");
                    assert!(text.contains("proxy-authorization: basic ync6cznjcmv0"), "{text}");
                }
            }
        }
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let upstream = Upstream::parse(&format!("http://{closed}")).unwrap();
        assert_eq!(upstream.tunnel(closed, "example.com", 443).await.err().map(|e| e.kind()), Some("unreachable"));
    }

    /// (URL, parsed as (scheme, host, port, user, password) or an error) — the parser's cases.
    #[test]
    fn proxy_urls_are_parsed_and_never_shown_with_their_password() {
        type Case = (&'static str, Scheme, &'static str, u16, Option<(&'static str, &'static str)>);
        let ok: &[Case] = &[
            ("http://u:hunter2@proxy.example:8080", Scheme::Http, "proxy.example", 8080, Some(("u", "hunter2"))),
            ("socks5://user:s%40cret@10.0.0.1:1080", Scheme::Socks5, "10.0.0.1", 1080, Some(("user", "s@cret"))),
            ("socks5h://[::1]:1080", Scheme::Socks5, "::1", 1080, None),
            ("http://proxy.example:3128/", Scheme::Http, "proxy.example", 3128, None),
        ];
        for (text, scheme, host, port, credentials) in ok {
            let parsed = Upstream::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let expected = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
            assert_eq!(
                (parsed.scheme, parsed.host.as_str(), parsed.port, parsed.credentials.clone()),
                (*scheme, *host, *port, expected)
            );
            if let Some((_, password)) = credentials {
                for shown in [parsed.redacted(), format!("{parsed:?}"), parsed.label()] {
                    assert!(!shown.contains(password), "{shown} shows the password");
                }
            }
        }
        assert_eq!(Upstream::parse("http://u:p@h:1").unwrap().redacted(), "http://u:***@h:1");
        assert_eq!(Upstream::parse("socks5h://[::1]:1080").unwrap().label(), "[::1]:1080");
        for bad in [
            "ftp://h:21",
            "socks5://h",
            "h:8080",
            "http://u:p@:80",
            "http://h:1/path",
            "socks5://:p@h:1",
            "http://u:%zz@h:1",
        ] {
            let error = Upstream::parse(bad).expect_err(bad);
            assert!(!error.to_string().contains("%zz"), "{error}");
        }
    }
}
