//! Where a browser's traffic goes after the egress rules: straight out, or through the
//! session's upstream proxy (`upstream`) with the identity that matches its exit (`identity`).
//!
//! `ProxySpec` is the caller's form (the API's `proxy`, a profile's default, `BW_DEFAULT_PROXY`)
//! and is kept, credentials included, only in the worker's private stores; `SessionProxy` is
//! the checked form, `ProxyView` what the API shows (password replaced by `***`).

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::identity::{Identity, IdentityError};
use super::upstream::{Upstream, UpstreamError};
use super::{EgressError, EgressPolicy};

/// A proxy for a session's browser.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProxySpec {
    /// `http://user:pass@host:port`, `socks5://user:pass@host:port` (credentials optional).
    pub url: String,
    /// ISO 3166 alpha-2 country of the exit: gives the time zone and language unless they are
    /// given (a country with several zones needs `timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// IANA time zone the pages see (`Europe/Berlin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Language the pages see and `Accept-Language` asks for (`de-DE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Hosts reached without the proxy (still under the egress rules): `host`, `host:port`,
    /// `*.example.com` or `.example.com` (the domain and its subdomains).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<String>,
}

impl std::fmt::Debug for ProxySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = Upstream::parse(&self.url).map(|u| u.redacted()).unwrap_or_else(|_| "<invalid>".into());
        f.debug_struct("ProxySpec").field("url", &url).field("country", &self.country).finish_non_exhaustive()
    }
}

/// A proxy as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProxyView {
    /// The proxy URL with the password replaced by `***`.
    pub url: String,
    pub country: Option<String>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("the proxy's address is not allowed: {0}")]
    Egress(#[from] EgressError),
    #[error("bypass entry {0:?} is not a host, host:port or *.domain")]
    Bypass(String),
}

/// A checked proxy: where to chain, what goes direct, what identity the browser presents.
#[derive(Debug)]
pub struct SessionProxy {
    pub upstream: Upstream,
    pub identity: Option<Identity>,
    bypass: Vec<String>,
    spec: ProxySpec,
}

impl SessionProxy {
    /// Checks a spec: the URL, the proxy's address against the egress rules (an address
    /// literal or a metadata name is refused here; names are checked on every connection), the
    /// bypass entries and the identity.
    pub fn new(spec: ProxySpec, policy: &EgressPolicy) -> Result<Self, RouteError> {
        let upstream = Upstream::parse(&spec.url)?;
        policy.precheck_host(&upstream.host, upstream.port)?;
        let bypass = spec.bypass.iter().map(|entry| checked_bypass(entry)).collect::<Result<Vec<_>, _>>()?;
        let identity = Identity::resolve(spec.country.as_deref(), spec.timezone.as_deref(), spec.locale.as_deref())?;
        Ok(Self { upstream, identity, bypass, spec })
    }

    /// The spec as given (credentials included: for the worker's own stores only).
    pub fn spec(&self) -> &ProxySpec {
        &self.spec
    }

    pub fn view(&self) -> ProxyView {
        let identity = self.identity.clone().unwrap_or(Identity { timezone: None, locale: None });
        ProxyView {
            url: self.upstream.redacted(),
            country: self.spec.country.as_ref().map(|c| c.trim().to_ascii_uppercase()),
            timezone: identity.timezone,
            locale: identity.locale,
            bypass: self.bypass.clone(),
        }
    }

    /// Whether `host:port` is reached without the proxy.
    fn bypasses(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        self.bypass.iter().any(|entry| {
            let (pattern, wanted_port) = match entry.rsplit_once(':').filter(|(h, _)| !h.contains(':')) {
                Some((h, p)) => (h, p.parse::<u16>().ok()),
                None => (entry.as_str(), None),
            };
            let host_matches = match pattern.strip_prefix("*.").or_else(|| pattern.strip_prefix('.')) {
                Some(domain) => host == domain || host.ends_with(&format!(".{domain}")),
                None => host == pattern,
            };
            host_matches && wanted_port.is_none_or(|p| p == port)
        })
    }
}

/// A bypass entry, lower-cased: a host name or address, optionally `:port`, optionally led by
/// `*.` or `.`.
fn checked_bypass(entry: &str) -> Result<String, RouteError> {
    let entry = entry.trim().to_ascii_lowercase();
    let ok = !entry.is_empty()
        && entry.len() <= 253
        && entry.chars().all(|c| c.is_ascii_alphanumeric() || "-.:*[]_".contains(c))
        && !entry[entry.find('*').map_or(0, |i| i + 1)..].contains('*')
        && entry.find('*').is_none_or(|i| i == 0 && entry.starts_with("*."));
    if ok { Ok(entry) } else { Err(RouteError::Bypass(entry)) }
}

/// One egress listener's route: direct, or through a proxy; remembers the proxy's last
/// failure so that a navigation can say the proxy, not the page, failed.
#[derive(Debug, Default)]
pub struct Route {
    proxy: Option<Arc<SessionProxy>>,
    /// (number of proxy failures so far, the last one's message).
    failures: Mutex<(u64, Option<String>)>,
}

impl Route {
    pub fn new(proxy: Option<Arc<SessionProxy>>) -> Arc<Self> {
        Arc::new(Self { proxy, failures: Mutex::default() })
    }

    pub fn proxy(&self) -> Option<&Arc<SessionProxy>> {
        self.proxy.as_ref()
    }

    /// The proxy to use for `host:port`, unless the route is direct or the host bypassed.
    pub fn via(&self, host: &str, port: u16) -> Option<&SessionProxy> {
        self.proxy.as_deref().filter(|p| !p.bypasses(host, port))
    }

    /// Counts a failure of the route's proxy (`bw_proxy_errors_total`) and remembers the ones
    /// that are the proxy's fault.
    pub fn failed(&self, error: &UpstreamError) {
        let Some(proxy) = &self.proxy else { return };
        metrics::counter!("bw_proxy_errors_total", "proxy" => proxy.upstream.label(), "kind" => error.kind())
            .increment(1);
        tracing::debug!(proxy = %proxy.upstream.label(), kind = error.kind(), "upstream proxy failed");
        if error.is_proxy_fault() {
            let mut failures = self.failures.lock().unwrap();
            *failures = (failures.0 + 1, Some(error.to_string()));
        }
    }

    /// A mark to compare with later (`failure_since`).
    pub fn mark(&self) -> u64 {
        self.failures.lock().unwrap().0
    }

    /// The proxy's last failure if it failed since `mark`.
    pub fn failure_since(&self, mark: u64) -> Option<String> {
        let failures = self.failures.lock().unwrap();
        if failures.0 > mark { failures.1.clone() } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(bypass: &[&str]) -> SessionProxy {
        let spec = ProxySpec {
            url: "http://u:secret@203.0.113.9:3128".into(),
            country: None,
            timezone: None,
            locale: None,
            bypass: bypass.iter().map(|s| s.to_string()).collect(),
        };
        SessionProxy::new(spec, &EgressPolicy::default()).unwrap()
    }

    #[test]
    fn bypass_entries_match_hosts_domains_and_ports() {
        let p = proxy(&["Intranet.Example", "*.corp.example", ".static.example", "api.example:8443"]);
        // (host, port, bypassed)
        let cases = [
            ("intranet.example", 443, true),
            ("INTRANET.example.", 80, true),
            ("x.intranet.example", 443, false),
            ("corp.example", 443, true),
            ("a.b.corp.example", 443, true),
            ("evilcorp.example", 443, false),
            ("cdn.static.example", 443, true),
            ("api.example", 8443, true),
            ("api.example", 443, false),
            ("example.com", 443, false),
        ];
        for (host, port, bypassed) in cases {
            assert_eq!(p.bypasses(host, port), bypassed, "{host}:{port}");
        }
        for bad in ["", "a b", "http://x", "a*.b", "*.*.b", "x/y"] {
            assert!(checked_bypass(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_proxy_is_shown_and_logged_without_its_password() {
        let p = proxy(&[]);
        assert_eq!(p.view().url, "http://u:***@203.0.113.9:3128");
        assert!(!format!("{p:?}").contains("secret"));
        assert!(!format!("{:?}", p.spec()).contains("secret"));
        let refused = ProxySpec { url: "http://u:secret@169.254.169.254:80".into(), ..p.spec().clone() };
        let error = SessionProxy::new(refused, &EgressPolicy::default()).unwrap_err();
        assert!(matches!(error, RouteError::Egress(_)) && !error.to_string().contains("secret"), "{error}");
    }
}
