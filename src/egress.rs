//! Egress rules for URLs the worker fetches on a caller's behalf (resumes, later webhooks):
//! http(s) only; link-local and cloud metadata addresses always refused; private and loopback
//! addresses refused unless `BW_ALLOW_PRIVATE_EGRESS=true`. Hosts are resolved once and the
//! connection is pinned to the checked address, so DNS cannot swap it afterwards.

use std::net::{IpAddr, SocketAddr};

/// Why a URL may not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("only http and https URLs can be fetched")]
    Scheme,
    #[error("{0} is a link-local or metadata address and is never fetched")]
    Forbidden(IpAddr),
    #[error("{0} is a private or loopback address (set BW_ALLOW_PRIVATE_EGRESS=true to allow it)")]
    Private(IpAddr),
    #[error("the host could not be resolved: {0}")]
    Resolve(String),
}

/// Whether private and loopback destinations are allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct EgressPolicy {
    pub allow_private: bool,
}

impl EgressPolicy {
    /// Resolves the URL's host and returns an address it may connect to.
    pub async fn check(&self, url: &url::Url) -> Result<SocketAddr, EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Scheme);
        }
        let host = url.host_str().ok_or_else(|| EgressError::Resolve("no host".into()))?;
        if host.eq_ignore_ascii_case("metadata.google.internal") {
            return Err(EgressError::Resolve("metadata.google.internal is never fetched".into()));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((host, port)).await.map_err(|e| EgressError::Resolve(e.to_string()))?.collect();
        if addrs.is_empty() {
            return Err(EgressError::Resolve("no addresses".into()));
        }
        for addr in &addrs {
            self.allow(addr.ip())?;
        }
        Ok(addrs[0])
    }

    /// Resolves `host` and checks every address it resolves to; the caller may connect to any
    /// of them.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        if host.eq_ignore_ascii_case("metadata.google.internal") {
            return Err(EgressError::Resolve("metadata.google.internal is never fetched".into()));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((host, port)).await.map_err(|e| EgressError::Resolve(e.to_string()))?.collect();
        if addrs.is_empty() {
            return Err(EgressError::Resolve("no addresses".into()));
        }
        for addr in &addrs {
            self.allow(addr.ip())?;
        }
        Ok(addrs)
    }

    /// Checks what can be checked without DNS: the scheme, and the host when it is a literal
    /// address (a client does not resolve those, so `resolve` never sees them).
    pub fn precheck(&self, url: &url::Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Scheme);
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.allow(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.allow(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(EgressError::Resolve("no host".into())),
        }
    }

    fn allow(&self, ip: IpAddr) -> Result<(), EgressError> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let (forbidden, private) = match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                (
                    v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || o == [100, 100, 100, 200],
                    v4.is_private() || v4.is_loopback() || (o[0] == 100 && (64..128).contains(&o[1])),
                )
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                (
                    (s[0] & 0xffc0) == 0xfe80 || v6.is_unspecified() || s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254],
                    v6.is_loopback() || (s[0] & 0xfe00) == 0xfc00,
                )
            }
        };
        if forbidden {
            Err(EgressError::Forbidden(ip))
        } else if private && !self.allow_private {
            Err(EgressError::Private(ip))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metadata_is_always_refused_and_private_only_when_allowed() {
        let strict = EgressPolicy { allow_private: false };
        let open = EgressPolicy { allow_private: true };
        let url = |s: &str| url::Url::parse(s).unwrap();
        for always in [
            "http://169.254.169.254/latest",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://0.0.0.0/",
        ] {
            assert!(matches!(open.check(&url(always)).await, Err(EgressError::Forbidden(_))), "{always}");
        }
        for private in [
            "http://127.0.0.1:9/",
            "http://10.1.2.3/",
            "http://192.168.1.1/",
            "http://[::1]/",
            "http://localhost/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(matches!(strict.check(&url(private)).await, Err(EgressError::Private(_))), "{private}");
            assert!(open.check(&url(private)).await.is_ok(), "{private}");
        }
        assert!(matches!(open.check(&url("file:///etc/passwd")).await, Err(EgressError::Scheme)));
        assert!(matches!(open.check(&url("ftp://example.com/")).await, Err(EgressError::Scheme)));
    }
}
