//! Logging (tracing, `pretty` or `json`) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// chromiumoxide logs every CDP message Chromium 156 sends that its protocol types do not know;
/// that noise says nothing about our sessions.
const QUIET: &str = "chromiumoxide=error,chromiumoxide::conn=off,chromiumoxide::handler=off,tungstenite=warn";

/// Installs the global tracing subscriber (a second call, as in tests, is ignored).
pub fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(format!("{},{QUIET}", config.log)).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The process-wide metrics recorder, installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let latency = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_gauge!("bw_sessions_active", "Open sessions");
    metrics::describe_counter!("bw_sessions_created_total", "Session create requests by outcome");
    metrics::describe_counter!("bw_sessions_closed_total", "Closed sessions by reason");
    metrics::describe_histogram!("bw_session_create_seconds", "Time to open a session");
    metrics::describe_histogram!("bw_browser_launch_phase_seconds", "Time of each step of launching a local browser");
    metrics::describe_gauge!("bw_warm_pool_ready", "Browsers ready in the warm pool");
    metrics::describe_histogram!("bw_http_request_duration_seconds", "HTTP request durations by route and status");
    metrics::describe_counter!(
        "bw_llm_requests_total",
        "LLM form-engine calls by outcome (ok, cache_hit, timeout, error, …)"
    );
    metrics::describe_counter!("bw_llm_tokens_total", "Tokens used by the LLM form engine (kind: prompt, completion)");
    metrics::describe_histogram!("bw_llm_request_seconds", "LLM call latency, retries included");
    metrics::describe_counter!("bw_llm_answers_rejected_total", "LLM answers that were not the expected JSON");
    metrics::gauge!("bw_sessions_active").set(0.0);
    metrics::gauge!("bw_warm_pool_ready").set(0.0);
}
