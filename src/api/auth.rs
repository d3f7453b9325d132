//! Bearer-key auth for `/api/*` and `/metrics`, compared in constant time against every key.

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

/// True if `presented` equals one of `keys`; every key is compared, in constant time.
pub fn key_matches(keys: &[String], presented: &str) -> bool {
    keys.iter().fold(false, |found, key| found | bool::from(key.as_bytes().ct_eq(presented.as_bytes())))
}

pub async fn require_key(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if protected(request.uri().path()) {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !presented.is_some_and(|key| key_matches(&app.api_keys, key)) {
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
    }
}
