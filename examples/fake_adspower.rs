//! A fake AdsPower Local API for local development: real Chromium browsers behind AdsPower's
//! `/status`, `/api/v1/browser/start|stop|active` and `/api/v1/user/list` routes.
//!
//! ```sh
//! cargo run --example fake_adspower -- --bind 127.0.0.1:50325 --api-key devkey --rate 1 --profiles p1,p2
//! BW_PROVIDER=adspower BW_ADSPOWER_API_KEY=devkey cargo run   # in another shell
//! ```
//! Ctrl-C stops it and every browser it started.

#[path = "../tests/integration/fake_adspower.rs"]
#[allow(dead_code)] // test-only accessors
mod fake;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Address to serve on (AdsPower's default is 127.0.0.1:50325).
    #[arg(long, default_value = "127.0.0.1:50325")]
    bind: String,
    /// Require `Authorization: Bearer <key>`.
    #[arg(long)]
    api_key: Option<String>,
    /// Requests accepted per second.
    #[arg(long, default_value_t = 1)]
    rate: usize,
    /// Profile ids (`user_id`s) that exist.
    #[arg(long, value_delimiter = ',', default_value = "p1,p2")]
    profiles: Vec<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    browser_worker::browser::process::become_subreaper();
    let mut options = fake::FakeOptions::new();
    options.api_key = args.api_key;
    options.rate = args.rate.max(1);
    options.profiles = args.profiles;
    let fake = fake::FakeAdsPower::start(options, &args.bind).await;
    println!("fake AdsPower listening on {}", fake.base);
    let _ = tokio::signal::ctrl_c().await;
    fake.shutdown().await;
}
