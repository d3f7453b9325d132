//! Egress rules: which addresses the worker and its browsers may reach. One classifier serves
//! every path out: the browsers' traffic (through the egress proxy, `proxy.rs`), navigation,
//! resume downloads and webhooks.
//!
//! - http(s) only (the proxy sees only web traffic: Chromium sends it every request);
//! - link-local, cloud metadata, unspecified, broadcast, multicast and reserved addresses are
//!   never reached, also when written as IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6;
//! - loopback is reached only at the `host:port`s listed in `BW_EGRESS_ALLOW` (a developer's
//!   or a test's own pages): the worker's API and its browsers' DevTools ports live on
//!   loopback, and no page may talk to them;
//! - private ranges (RFC 1918, CGNAT, unique-local and site-local IPv6) only with
//!   `BW_ALLOW_PRIVATE_EGRESS=true` or when listed. That development setting (closed networks,
//!   local job boards, the corpus scorer) opens loopback too, except the worker's own ports
//!   (`protect`): its API, its egress proxy and every browser's DevTools port stay refused.
//!
//! Host names are resolved once and every address must pass; the connection is then pinned to
//! a checked address, so DNS cannot swap it afterwards. Anything that cannot be classified is
//! refused (fail closed).

pub mod identity;
pub mod proxy;
pub mod route;
pub mod upstream;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Loopback ports of the worker itself (API, egress proxy, browsers' DevTools), with a count of
/// holders; process-wide, so several workers in one process (tests) protect each other's too.
fn protected() -> &'static Mutex<HashMap<u16, usize>> {
    static PROTECTED: std::sync::OnceLock<Mutex<HashMap<u16, usize>>> = std::sync::OnceLock::new();
    PROTECTED.get_or_init(Default::default)
}

/// Keeps a loopback port of the worker unreachable to every egress path, also with
/// `BW_ALLOW_PRIVATE_EGRESS=true` (only an explicit `BW_EGRESS_ALLOW` entry opens it), until
/// dropped.
#[derive(Debug)]
pub struct Protected(u16);

/// Protects loopback port `port` (see `Protected`).
pub fn protect(port: u16) -> Protected {
    *protected().lock().unwrap().entry(port).or_default() += 1;
    Protected(port)
}

impl Drop for Protected {
    fn drop(&mut self) {
        let mut ports = protected().lock().unwrap();
        if let Some(count) = ports.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                ports.remove(&self.0);
            }
        }
    }
}

fn is_protected(port: u16) -> bool {
    protected().lock().unwrap().contains_key(&port)
}

/// Why a destination may not be reached.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("only http and https URLs can be fetched")]
    Scheme,
    #[error("{0} is a link-local, metadata or reserved address and is never reached")]
    Forbidden(IpAddr),
    #[error("{0} is a loopback address (only the addresses in BW_EGRESS_ALLOW are reached)")]
    Loopback(IpAddr),
    #[error("{0} is one of the worker's own ports and is never reached")]
    Worker(SocketAddr),
    #[error("{0} is a private address (set BW_ALLOW_PRIVATE_EGRESS=true to allow it)")]
    Private(IpAddr),
    #[error("{0} is a cloud metadata host name and is never reached")]
    MetadataName(String),
    #[error("the host could not be resolved: {0}")]
    Resolve(String),
}

/// The class of an address, most restricted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    Forbidden,
    Loopback,
    Private,
    Public,
}

/// Classifies an address. IPv6 forms that embed an IPv4 address are judged by that address.
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

/// IPv4: 0.0.0.0/8, link-local (cloud metadata), broadcast, multicast, reserved, Alibaba's
/// metadata address and the IETF block (Oracle's 192.0.0.192) are forbidden; CGNAT and the
/// benchmarking range count as private.
fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let o = ip.octets();
    let reserved = o[0] == 0 || o[0] >= 240 || o == [100, 100, 100, 200] || (o[0], o[1], o[2]) == (192, 0, 0);
    if reserved || ip.is_link_local() || ip.is_broadcast() || ip.is_multicast() {
        AddrClass::Forbidden
    } else if ip.is_loopback() {
        AddrClass::Loopback
    } else if ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        AddrClass::Private
    } else {
        AddrClass::Public
    }
}

/// IPv6 (no embedded IPv4): link-local, multicast, unspecified and AWS's metadata address are
/// forbidden; unique-local, site-local and local-use NAT64 count as private.
fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    let s = ip.segments();
    let aws_metadata = s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254];
    if ip.is_unspecified() || (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xff00) == 0xff00 || aws_metadata {
        AddrClass::Forbidden
    } else if ip.is_loopback() {
        AddrClass::Loopback
    } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 || s[..3] == [0x64, 0xff9b, 1] {
        AddrClass::Private
    } else {
        AddrClass::Public
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if (s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified())
        || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        Some(low)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
    } else {
        None
    }
}

/// What may be reached: private ranges on request, loopback only at listed addresses.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// Private ranges are reachable (`BW_ALLOW_PRIVATE_EGRESS`).
    pub allow_private: bool,
    /// Loopback or private `ip:port`s reachable all the same (`BW_EGRESS_ALLOW`).
    pub allow: Arc<[SocketAddr]>,
}

impl EgressPolicy {
    /// Whether `addr` may be connected to.
    pub fn allow_addr(&self, addr: SocketAddr) -> Result<(), EgressError> {
        let ip = addr.ip();
        let listed = self.allow.iter().any(|a| a.port() == addr.port() && same_ip(a.ip(), ip));
        match classify(ip) {
            AddrClass::Forbidden => Err(EgressError::Forbidden(ip)),
            AddrClass::Public => Ok(()),
            // An operator's explicit listing is a decision (another worker's viewer in tests);
            // a blanket allowance never opens the worker's own ports.
            _ if listed => Ok(()),
            AddrClass::Loopback if is_protected(addr.port()) => Err(EgressError::Worker(addr)),
            AddrClass::Loopback | AddrClass::Private if self.allow_private => Ok(()),
            AddrClass::Loopback => Err(EgressError::Loopback(ip)),
            AddrClass::Private => Err(EgressError::Private(ip)),
        }
    }

    /// Resolves `host` (a name or an address literal, brackets allowed) and returns the
    /// addresses to connect to; every resolved address must pass, or none is returned.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        refuse_metadata_name(host)?;
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                tokio::net::lookup_host((host, port)).await.map_err(|e| EgressError::Resolve(e.to_string()))?.collect()
            }
        };
        if addrs.is_empty() {
            return Err(EgressError::Resolve("no addresses".into()));
        }
        for addr in &addrs {
            self.allow_addr(*addr)?;
        }
        Ok(addrs)
    }

    /// Checks an http(s) URL and returns an address it may connect to.
    pub async fn check(&self, url: &url::Url) -> Result<SocketAddr, EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Scheme);
        }
        let host = url.host_str().ok_or_else(|| EgressError::Resolve("no host".into()))?;
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(self.resolve(host, port).await?[0])
    }

    /// Checks a URL without resolving names: address literals and metadata names only. For
    /// early, clear errors (the proxy checks resolved addresses on every request).
    pub fn precheck(&self, url: &url::Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Scheme);
        }
        let host = url.host_str().ok_or_else(|| EgressError::Resolve("no host".into()))?;
        self.precheck_host(host, url.port_or_known_default().unwrap_or(80))
    }

    /// Checks `host:port` without resolving a name: an address literal must be allowed, a
    /// metadata name is refused.
    pub fn precheck_host(&self, host: &str, port: u16) -> Result<(), EgressError> {
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => self.allow_addr(SocketAddr::new(ip, port)),
            Err(_) => refuse_metadata_name(host),
        }
    }
}

/// Cloud metadata host names (any case, with or without the trailing dot) are never reached,
/// whatever they resolve to.
fn refuse_metadata_name(host: &str) -> Result<(), EgressError> {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    match name.as_str() {
        "metadata.google.internal" | "metadata" | "instance-data" => Err(EgressError::MetadataName(name)),
        _ => Ok(()),
    }
}

/// `127.0.0.1` and `::ffff:127.0.0.1` are the same address.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    v4(a) == v4(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (address, class) — the classifier's cases as data.
    const ADDRESSES: &[(&str, AddrClass)] = &[
        ("169.254.169.254", AddrClass::Forbidden),
        ("0.0.0.0", AddrClass::Forbidden),
        ("0.1.2.3", AddrClass::Forbidden),
        ("100.100.100.200", AddrClass::Forbidden),
        ("192.0.0.192", AddrClass::Forbidden),
        ("255.255.255.255", AddrClass::Forbidden),
        ("224.0.0.1", AddrClass::Forbidden),
        ("240.0.0.1", AddrClass::Forbidden),
        ("fe80::1", AddrClass::Forbidden),
        ("ff02::1", AddrClass::Forbidden),
        ("fd00:ec2::254", AddrClass::Forbidden),
        ("::", AddrClass::Forbidden),
        ("::ffff:169.254.169.254", AddrClass::Forbidden),
        ("::ffff:0.0.0.0", AddrClass::Forbidden),
        ("::169.254.169.254", AddrClass::Forbidden),
        ("64:ff9b::a9fe:a9fe", AddrClass::Forbidden),
        ("2002:a9fe:a9fe::1", AddrClass::Forbidden),
        ("127.0.0.1", AddrClass::Loopback),
        ("127.9.9.9", AddrClass::Loopback),
        ("::1", AddrClass::Loopback),
        ("::ffff:127.0.0.1", AddrClass::Loopback),
        ("::127.0.0.1", AddrClass::Loopback),
        ("64:ff9b::7f00:1", AddrClass::Loopback),
        ("10.1.2.3", AddrClass::Private),
        ("172.16.0.1", AddrClass::Private),
        ("192.168.1.1", AddrClass::Private),
        ("100.64.0.1", AddrClass::Private),
        ("fd12::1", AddrClass::Private),
        ("fec0::1", AddrClass::Private),
        ("64:ff9b:1::a00:1", AddrClass::Private),
        ("::ffff:10.0.0.1", AddrClass::Private),
        ("93.184.216.34", AddrClass::Public),
        ("2606:4700::1111", AddrClass::Public),
        ("64:ff9b::5db8:d822", AddrClass::Public),
    ];

    #[test]
    fn addresses_are_classified_through_every_ipv6_wrapper() {
        for (text, class) in ADDRESSES {
            assert_eq!(classify(text.parse().unwrap()), *class, "{text}");
        }
    }

    #[tokio::test]
    async fn metadata_is_always_refused_loopback_only_when_listed_private_when_allowed() {
        let listed: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let strict = EgressPolicy::default();
        let open = EgressPolicy { allow_private: true, allow: Arc::from([listed]) };
        let url = |s: &str| url::Url::parse(s).unwrap();
        for always in [
            "http://169.254.169.254/latest",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://0.0.0.0/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:0.0.0.0]/",
            "http://metadata.google.internal./",
            "http://METADATA.google.internal/",
        ] {
            assert!(open.check(&url(always)).await.is_err(), "{always}");
            assert!(open.precheck(&url(always)).is_err(), "{always}");
        }
        let listed_only = EgressPolicy { allow_private: false, allow: Arc::from([listed]) };
        for loopback in ["http://127.0.0.1:9/", "http://[::1]/", "http://localhost:4001/", "http://[::ffff:127.0.0.1]/"]
        {
            assert!(matches!(listed_only.check(&url(loopback)).await, Err(EgressError::Loopback(_))), "{loopback}");
            assert!(open.check(&url(loopback)).await.is_ok(), "{loopback} with private egress allowed");
        }
        assert!(listed_only.check(&url("http://127.0.0.1:4000/x")).await.is_ok());
        assert!(listed_only.check(&url("http://[::ffff:127.0.0.1]:4000/x")).await.is_ok());
        assert!(matches!(strict.check(&url("http://127.0.0.1:4000/")).await, Err(EgressError::Loopback(_))));
        // The worker's own ports: never with a blanket allowance; only an explicit listing opens one.
        let own = protect(4001);
        for worker in ["http://127.0.0.1:4001/", "http://localhost:4001/", "http://[::1]:4001/"] {
            assert!(matches!(open.check(&url(worker)).await, Err(EgressError::Worker(_))), "{worker}");
        }
        let listing_it = EgressPolicy { allow_private: true, allow: Arc::from(["127.0.0.1:4001".parse().unwrap()]) };
        assert!(listing_it.check(&url("http://127.0.0.1:4001/")).await.is_ok(), "listed explicitly");
        drop(own);
        assert!(open.check(&url("http://127.0.0.1:4001/x")).await.is_ok(), "protection ends with its guard");
        for private in ["http://10.1.2.3/", "http://192.168.1.1/", "http://[fd00::1]/"] {
            assert!(matches!(strict.check(&url(private)).await, Err(EgressError::Private(_))), "{private}");
            assert!(open.check(&url(private)).await.is_ok(), "{private}");
        }
        assert!(matches!(open.check(&url("file:///etc/passwd")).await, Err(EgressError::Scheme)));
        assert!(matches!(open.check(&url("ftp://example.com/")).await, Err(EgressError::Scheme)));
    }
}
