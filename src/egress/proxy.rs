//! The egress proxy: where the local browsers' traffic leaves. Every Chromium the worker
//! launches is started with `--proxy-server` pointing here and `--proxy-bypass-list=<-loopback>`
//! (so loopback goes through it too), and this proxy applies the egress rules to every request:
//! pages, redirects, subresources, WebSockets and requests issued over CDP alike.
//!
//! It speaks HTTP/1.1 proxying only: `CONNECT host:port` (https, wss; tunnelled as bytes) and
//! absolute-form `http://` requests (forwarded on a fresh pinned connection). Each destination
//! is resolved and checked by `EgressPolicy`; the connection goes to the checked address.
//! A refusal is a 403 whose body names the reason.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::header::{self, HeaderName};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::route::{Route, SessionProxy};
use super::upstream::{Counted, Stream, UpstreamError};
use super::{EgressError, EgressPolicy};

/// Time to connect to a destination.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Time for a client to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Hop-by-hop headers, never forwarded (RFC 9110 §7.6.1, plus the proxy-specific ones).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Starts the proxy on loopback port `port` (0: an ephemeral one), sending traffic out by
/// `route`; it stops accepting when `stop` fires. Must run inside a Tokio runtime.
pub fn start(
    policy: EgressPolicy,
    route: Arc<Route>,
    port: u16,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let guard = super::protect(addr.port());
    tokio::spawn(async move {
        let _guard = guard;
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "egress proxy: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let out = Out { policy: policy.clone(), route: route.clone() };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| serve(out.clone(), request));
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                let _ = connection.await;
            });
        }
    });
    Ok(addr)
}

/// The rules and the route of one listener.
#[derive(Clone)]
struct Out {
    policy: EgressPolicy,
    route: Arc<Route>,
}

/// How a destination is reached.
enum Hop<'a> {
    /// Straight to these checked addresses.
    Direct(Vec<SocketAddr>),
    /// Through `proxy` at its checked address, asking it for `target` (a name the proxy
    /// resolves, or an address checked here).
    Via { proxy: &'a SessionProxy, addr: SocketAddr, target: String },
}

/// Answers one proxy request.
async fn serve(out: Out, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let answer =
        if request.method() == Method::CONNECT { tunnel(&out, request).await } else { forward(&out, request).await };
    Ok(answer.unwrap_or_else(|refusal| refusal))
}

/// `CONNECT host:port`: checks the destination, answers 200 and relays bytes both ways.
async fn tunnel(out: &Out, request: Request<Incoming>) -> Result<Response<Body>, Response<Body>> {
    let authority =
        request.uri().authority().ok_or_else(|| plain(StatusCode::BAD_REQUEST, "CONNECT needs host:port"))?;
    let port = authority.port_u16().ok_or_else(|| plain(StatusCode::BAD_REQUEST, "CONNECT needs a port"))?;
    let mut upstream = open(out, authority.host(), port).await?;
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream).await;
            }
            Err(e) => tracing::debug!(error = %e, "egress proxy: upgrade failed"),
        }
    });
    Ok(Response::new(Body::empty()))
}

/// An absolute-form `http://` request: checked, sent in origin form on a pinned connection
/// (or a tunnel through the upstream proxy), answer relayed.
async fn forward(out: &Out, mut request: Request<Incoming>) -> Result<Response<Body>, Response<Body>> {
    let uri = request.uri().clone();
    if uri.scheme_str() != Some("http") {
        return Err(plain(StatusCode::BAD_REQUEST, "only absolute http:// requests and CONNECT are proxied"));
    }
    let authority = uri.authority().ok_or_else(|| plain(StatusCode::BAD_REQUEST, "the request names no host"))?;
    let port = authority.port_u16().unwrap_or(80);
    let upstream = open(out, authority.host(), port).await?;
    let host = header::HeaderValue::from_str(authority.as_str())
        .map_err(|_| plain(StatusCode::BAD_REQUEST, "the request's host is not a valid header"))?;
    let origin_form = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    *request.uri_mut() = origin_form.parse().map_err(|_| plain(StatusCode::BAD_REQUEST, "bad request target"))?;
    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    headers.insert(header::HOST, host);

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(upstream))
        .await
        .map_err(|_| plain(StatusCode::BAD_GATEWAY, "the destination closed the connection"))?;
    tokio::spawn(connection);
    let mut response = sender
        .send_request(request)
        .await
        .map_err(|_| plain(StatusCode::BAD_GATEWAY, "the destination did not answer"))?;
    strip_hop_by_hop(response.headers_mut());
    Ok(response.map(Body::new))
}

/// A checked connection to `host:port`: direct, or a tunnel through the route's proxy.
async fn open(out: &Out, host: &str, port: u16) -> Result<Box<dyn Stream>, Response<Body>> {
    Ok(match hop(out, host, port).await? {
        Hop::Direct(addrs) => Box::new(connect(addrs).await?),
        Hop::Via { proxy, addr, target } => {
            let stream = proxy.upstream.tunnel(addr, &target, port).await.map_err(|e| failed(out, e))?;
            Box::new(Counted::new(stream, &proxy.upstream.label()))
        }
    })
}

/// Checks `host:port` against the rules and picks the way out. Through a proxy on this host's
/// networks (loopback, private) the destination is resolved and checked here and the proxy
/// gets the checked address; through a proxy out on the internet the proxy resolves names
/// (no DNS from the worker's network for the session's pages), and address literals and
/// metadata names are still refused here.
async fn hop<'a>(out: &'a Out, host: &str, port: u16) -> Result<Hop<'a>, Response<Body>> {
    let Some(proxy) = out.route.via(host, port) else {
        return Ok(Hop::Direct(out.policy.resolve(host, port).await.map_err(refused)?));
    };
    let addr = out.policy.resolve(&proxy.upstream.host, proxy.upstream.port).await.map_err(refused)?[0];
    let target = if super::classify(addr.ip()) == super::AddrClass::Public {
        out.policy.precheck_host(host, port).map_err(refused)?;
        host.trim_start_matches('[').trim_end_matches(']').to_string()
    } else {
        out.policy.resolve(host, port).await.map_err(refused)?[0].ip().to_string()
    };
    Ok(Hop::Via { proxy, addr, target })
}

/// Connects to the first of the checked addresses that answers.
async fn connect(addrs: Vec<SocketAddr>) -> Result<TcpStream, Response<Body>> {
    let mut last = String::from("no address");
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
    }
    Err(plain(StatusCode::BAD_GATEWAY, &format!("cannot connect to the destination: {last}")))
}

/// The answer when the upstream proxy failed (counted on the route).
fn failed(out: &Out, error: UpstreamError) -> Response<Body> {
    out.route.failed(&error);
    plain(StatusCode::BAD_GATEWAY, &format!("browser-worker upstream proxy: {error}"))
}

/// The answer to a destination the rules refuse.
fn refused(error: EgressError) -> Response<Body> {
    let reason = match &error {
        EgressError::Forbidden(_) | EgressError::MetadataName(_) => "forbidden",
        EgressError::Loopback(_) => "loopback",
        EgressError::Worker(_) => "worker",
        EgressError::Private(_) => "private",
        EgressError::Scheme => "scheme",
        EgressError::Resolve(_) => "resolve",
    };
    metrics::counter!("bw_egress_refused_total", "reason" => reason).increment(1);
    tracing::debug!(reason, "egress proxy refused a destination");
    let status = if reason == "resolve" { StatusCode::BAD_GATEWAY } else { StatusCode::FORBIDDEN };
    plain(status, &format!("browser-worker egress rules: {error}"))
}

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(message.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut header::HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|n| n.trim().to_ascii_lowercase()).collect::<Vec<_>>())
        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Sends raw bytes to the proxy and returns the status line.
    async fn status_line(proxy: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0; 512];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn loopback_is_reached_only_where_listed_and_metadata_never() {
        let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listed = target.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = target.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                });
            }
        });
        let other = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let stop = CancellationToken::new();
        let policy = EgressPolicy { allow_private: false, allow: std::sync::Arc::from([listed]) };
        let proxy = start(policy, Route::new(None), 0, stop.clone()).unwrap();
        // With private (and so loopback) egress allowed, the worker's own ports stay refused.
        let open = start(
            EgressPolicy { allow_private: true, allow: std::sync::Arc::from([]) },
            Route::new(None),
            0,
            stop.clone(),
        )
        .unwrap();
        let own = format!("GET http://{open}/ HTTP/1.1\r\nHost: {open}\r\n\r\n");
        assert!(status_line(open, &own).await.contains("403"), "the proxy reached itself");

        let get = |addr: String| format!("GET http://{addr}/ HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let connect = |addr: String| format!("CONNECT {addr} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        assert!(status_line(proxy, &get(listed.to_string())).await.contains("200"));
        assert!(status_line(proxy, &connect(listed.to_string())).await.contains("200"));
        for refused in [
            other.to_string(),
            format!("localhost:{}", other.port()),
            format!("[::ffff:127.0.0.1]:{}", other.port()),
            proxy.to_string(),
            "169.254.169.254:80".into(),
            "[::ffff:169.254.169.254]:80".into(),
            "[::ffff:0.0.0.0]:80".into(),
            "metadata.google.internal.:80".into(),
        ] {
            assert!(status_line(proxy, &get(refused.clone())).await.contains("403"), "GET {refused}");
            assert!(status_line(proxy, &connect(refused.clone())).await.contains("403"), "CONNECT {refused}");
        }
        assert!(status_line(proxy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.contains("400"));
        stop.cancel();
    }
}
