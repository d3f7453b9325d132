//! The `browser-worker` binary: configuration → logging → server → run until SIGINT/SIGTERM.

use std::process::ExitCode;

use browser_worker::{Config, Server, telemetry};
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("browser-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let (keys, generated) = match config.resolve_api_keys() {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("browser-worker: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config);
    if let Some(key) = generated {
        println!("Generated an API key, stored in {}:\n  {key}", config.data_dir.join("api-key").display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async {
        // Listen for signals before anything else, so that a SIGTERM right after start-up
        // still shuts down cleanly instead of killing the process.
        let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => (term, int),
            _ => {
                eprintln!("browser-worker: cannot install signal handlers");
                return ExitCode::FAILURE;
            }
        };
        let server = match Server::start(config, keys).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("browser-worker: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %server.addr, version = env!("CARGO_PKG_VERSION"), "browser-worker listening");
        let handover = tokio::select! {
            _ = term.recv() => server.app.config.handover,
            _ = int.recv() => false,
        };
        if handover {
            tracing::info!("SIGTERM: handing the sessions over to the next worker");
            server.handover().await;
        } else {
            tracing::info!("shutting down");
            server.stop().await;
        }
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}
