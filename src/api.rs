//! HTTP: the router, its middleware (request ids, tracing, metrics, auth, body limit, panics)
//! and the OpenAPI document generated from the handlers.

pub mod auth;
pub mod cdp;
pub mod events;
pub mod fleet;
pub mod forms;
pub mod health;
pub mod json;
pub mod live;
pub mod profiles;
pub mod serve;
pub mod sessions;
pub mod tasks;
pub mod vnc;
pub mod worker;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::handler::HandlerWithoutStateExt;
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(title = "browser-worker", description = "Real browser sessions over HTTP for automated job applications."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn documented() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sessions::create_session, sessions::list_sessions))
        .routes(routes!(sessions::get_session, sessions::delete_session))
        .routes(routes!(sessions::navigate))
        .routes(routes!(sessions::screenshot))
        .routes(routes!(sessions::timeline))
        .routes(routes!(forms::analyze))
        .routes(routes!(forms::fill))
        .routes(routes!(forms::submit))
        .routes(routes!(forms::continue_session))
        .routes(routes!(forms::artifact))
        .routes(routes!(events::session_events))
        .routes(routes!(tasks::run_task))
        .routes(routes!(profiles::list_profiles))
        .routes(routes!(profiles::resolve_profile))
        .routes(routes!(profiles::disable_profile))
        .routes(routes!(profiles::enable_profile))
        .routes(routes!(profiles::set_profile_proxy, profiles::clear_profile_proxy))
        .routes(routes!(cdp::cdp_socket))
        .routes(routes!(cdp::json_version))
        .routes(routes!(cdp::cdp_token))
        .routes(routes!(vnc::vnc_token))
        .routes(routes!(vnc::vnc_socket))
        .routes(routes!(vnc::viewer))
        .routes(routes!(live::live_token))
        .routes(routes!(live::live_socket))
        .routes(routes!(live::live_viewer))
        .routes(routes!(worker::drain_worker))
        .routes(routes!(worker::undrain_worker))
        .routes(routes!(fleet::list_fleet))
        .routes(routes!(health::health))
        .routes(routes!(health::metrics))
}

/// The OpenAPI document of every route (committed as `api-spec/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented().split_for_parts().1;
    add_common_errors(&mut doc);
    doc
}

/// Documents the answers every route of a kind can give (401 on `/api/*`, 400/413/415 with a
/// JSON body, 404 for an unknown id, 500) in the JSON error envelope.
fn add_common_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            let mut add = |code: &str, description: &str| {
                responses.entry(code.to_string()).or_insert_with(|| error(description).into());
            };
            if path.starts_with("/api/") || path == "/metrics" {
                add("401", "unauthorized: a valid API key (or a scoped session token) is required");
            }
            if operation.request_body.is_some() {
                add("400", "invalid_json");
                add("413", "payload_too_large");
                add("415", "unsupported_media_type");
                add("422", "validation_failed (the message names the field)");
            }
            if path.contains("{id}") {
                add("404", "session_not_found / profile_not_found");
            }
            add("500", "internal_error");
        }
    }
}

/// The complete router with its middleware.
pub fn router(app: Arc<App>) -> Router {
    let (routes, _) = documented().split_for_parts();
    let novnc = ServeDir::new(&app.config.novnc_dir)
        .append_index_html_on_directories(false)
        .not_found_service((|| async { ApiError::not_found_route() }).into_service());
    routes
        // Playwright's `connectOverCDP("http://…")` reads `<url>/json/version/`.
        .route("/api/v2/sessions/{id}/json/version/", get(cdp::json_version))
        .nest_service("/vnc/static", novnc)
        .fallback(|| async { ApiError::not_found_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(app.config.body_limit_bytes))
        .layer(middleware::from_fn_with_state(app.clone(), fleet::redirect_to_holder))
        .layer(middleware::from_fn_with_state(app.clone(), auth::require_key))
        .layer(middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            // The path only: query strings may carry tokens.
            tracing::info_span!("http", method = %req.method(), path = req.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .with_state(app)
}

/// Records `bw_http_request_duration_seconds{route, method, status}`. Every label has a bounded
/// set of values, whatever clients send: routes are the router's patterns (or `unmatched`), and
/// methods outside the standard ones are `other`.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = metric_method(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("bw_http_request_duration_seconds", "route" => route, "method" => method, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A request method as a metrics label: one of the standard methods, or `other`.
fn metric_method(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: &[(Method, &str)] = &[
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN.iter().find(|(m, _)| m == method).map(|(_, name)| *name).unwrap_or("other")
}
