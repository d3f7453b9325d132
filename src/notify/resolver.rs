//! The webhook client's DNS: every name is resolved by the egress policy, which checks every
//! address, so the one shared client can only connect to checked addresses (no check-then-
//! resolve-again window for DNS rebinding). Literal IP hosts never reach a resolver; the
//! sender checks those with `EgressPolicy::precheck` before each request.

use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::egress::EgressPolicy;

/// A `reqwest` resolver that answers only with addresses the egress policy allows.
pub(super) struct CheckedResolver {
    pub(super) policy: Arc<EgressPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let addrs = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The one client all deliveries share: no redirects, no proxies (a proxy would resolve the
/// receiver's name itself, past the policy), names resolved by `CheckedResolver`.
pub(super) fn client(policy: Arc<EgressPolicy>, timeout: std::time::Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(CheckedResolver { policy })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy that differs from the default in `allow_private` only.
    #[allow(clippy::field_reassign_with_default)]
    fn policy(allow_private: bool) -> Arc<EgressPolicy> {
        let mut policy = EgressPolicy::default();
        policy.allow_private = allow_private;
        Arc::new(policy)
    }

    #[tokio::test]
    async fn names_resolve_only_to_allowed_addresses() {
        let (strict, open) = (policy(false), policy(true));
        // (policy, name, resolves)
        // Loopback only with private egress allowed (development) or at listed addresses, whose
        // port this resolver does not see: by default a name never resolves to loopback.
        let cases =
            [(&strict, "localhost", false), (&open, "localhost", true), (&open, "metadata.google.internal", false)];
        for (policy, name, resolves) in cases {
            let resolver = CheckedResolver { policy: policy.clone() };
            let answer = resolver.resolve(name.parse().unwrap()).await;
            assert_eq!(answer.is_ok(), resolves, "{name} with allow_private={}", policy.allow_private);
        }
    }
}
