//! The committed OpenAPI document is exactly what the code generates.
//! `make openapi` (UPDATE_OPENAPI=1) rewrites it.

#[test]
fn committed_openapi_matches_the_code() {
    let generated = browser_worker::api::openapi().to_pretty_json().unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == generated, "api-spec/openapi.json is out of date: run `make openapi` and commit it");
}

#[test]
fn every_route_is_documented() {
    let spec = browser_worker::api::openapi();
    for path in [
        "/api/v2/sessions",
        "/api/v2/sessions/{id}",
        "/api/v2/sessions/{id}/navigate",
        "/api/v2/sessions/{id}/screenshot",
        "/api/v1/worker/drain",
        "/api/v1/worker/undrain",
        "/health",
        "/metrics",
    ] {
        assert!(spec.paths.paths.contains_key(path), "{path} is missing from the OpenAPI document");
    }
}
