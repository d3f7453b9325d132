//! Bearer-key auth for `/api/*` and `/metrics`, compared in constant time against every key.
//! The CDP passthrough also accepts a session token (`?token=`): such requests pass this
//! middleware without a key and their handler checks the token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::ApiError;

/// True for paths that need the API key.
fn protected(path: &str) -> bool {
    path.starts_with("/api/") || path == "/api" || path == "/metrics"
}

/// Marks a request that presented a valid API key.
#[derive(Debug, Clone, Copy)]
pub struct KeyAuthenticated;

/// True for `/api/v2/sessions/{id}/cdp` and `/api/v2/sessions/{id}/json/version[/]`, the paths
/// whose handlers accept a session token instead of the key.
pub fn token_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v2/sessions/") else { return false };
    match rest.split_once('/') {
        Some((id, tail)) => !id.is_empty() && matches!(tail, "cdp" | "json/version" | "json/version/"),
        None => false,
    }
}

/// True if the query string has a non-empty `token`.
fn has_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair.strip_prefix("token=").is_some_and(|v| !v.is_empty())))
}

/// True if `presented` equals one of `keys`; every key is compared, in constant time.
pub fn key_matches(keys: &[String], presented: &str) -> bool {
    keys.iter().fold(false, |found, key| found | bool::from(key.as_bytes().ct_eq(presented.as_bytes())))
}

pub async fn require_key(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    if protected(request.uri().path()) {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if presented.is_some_and(|key| key_matches(&app.api_keys, key)) {
            request.extensions_mut().insert(KeyAuthenticated);
        } else if !(token_path(request.uri().path()) && has_token(request.uri().query())) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_key_matches_and_nothing_else() {
        let keys = vec!["old-key-0123456789".to_string(), "new-key-0123456789".to_string()];
        assert!(key_matches(&keys, "old-key-0123456789"));
        assert!(key_matches(&keys, "new-key-0123456789"));
        assert!(!key_matches(&keys, "new-key-012345678"));
        assert!(!key_matches(&keys, ""));
        assert!(protected("/api/v2/sessions") && protected("/metrics") && !protected("/health"));
        assert!(token_path("/api/v2/sessions/abc/cdp") && token_path("/api/v2/sessions/abc/json/version/"));
        assert!(!token_path("/api/v2/sessions/abc/navigate") && !token_path("/api/v2/sessions//cdp"));
        assert!(!token_path("/api/v2/sessions/abc/x/cdp"));
        assert!(has_token(Some("a=1&token=x")) && !has_token(Some("token=")) && !has_token(None));
    }
}
