//! Fleet mode on Redis (SPEC §3.9), in one run: a profile lease's acquire + release against a
//! real `redis-server` (on a Unix socket), and a profile session's create on a worker in a fleet
//! (lease, shared breaker, directory entry) against the same create on a standalone worker,
//! alternated.

#[allow(dead_code, reason = "this bench uses part of the shared harness")]
mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use browser_worker::fleet::Fleet;
use browser_worker::session::SessionId;

use common::{Api, Stats, Worker, ms};

const MAX_SESSIONS: usize = 2;
/// Pause between two measurements so one side's teardown does not land in the other's sample.
const SETTLE: Duration = Duration::from_millis(200);

#[tokio::main]
async fn main() -> Result<()> {
    common::print_report(run()).await
}

async fn run() -> Result<String> {
    let leases = common::env_count("BENCH_LEASES", 500)?;
    let rounds = common::env_count("BENCH_ROUNDS", 15)?;
    let chromium = common::chromium();
    let bin = common::build_worker()?;
    let http = common::http_client()?;
    let redis = Redis::start()?;

    eprintln!("leases: {leases} acquire + release");
    let fleet = Fleet::new(&redis.url(), "bench".into(), "bench".into(), Duration::from_secs(15))?;
    let mut lease = Vec::new();
    for round in 0..leases {
        let (profile, session) = (format!("p-{}", round % 10), SessionId::new());
        let start = Instant::now();
        fleet.acquire(&profile, session).await?;
        fleet.release(&profile, session).await;
        lease.push(start.elapsed());
    }

    eprintln!("creates: {rounds} rounds, standalone and fleet worker alternated");
    let url = redis.url();
    let mut alone = Worker::start(&bin, &chromium, MAX_SESSIONS, 0, &http).await?;
    let env = [("BW_REDIS_URL", url.as_str()), ("BW_WORKER_ID", "bench-1")];
    let mut member = Worker::start_with(&bin, &chromium, MAX_SESSIONS, 0, &http, &env).await?;
    for base in [&alone.base, &member.base] {
        // Untimed warm-up: an ephemeral session and a profile session on each.
        let api = Api { http: &http, base };
        let (id, _) = api.create().await?;
        api.delete(&id).await?;
        create_delete(&http, base, "p-warm-up").await?;
    }
    let (mut standalone, mut fleetwide) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for fleet_turn in [round % 2 == 0, round % 2 == 1] {
            tokio::time::sleep(SETTLE).await;
            let profile = format!("p-{round}");
            if fleet_turn {
                fleetwide.push(create_delete(&http, &member.base, &profile).await?);
            } else {
                standalone.push(create_delete(&http, &alone.base, &profile).await?);
            }
        }
        eprintln!(
            "  round {}/{rounds}: standalone {:.0} ms, fleet {:.0} ms",
            round + 1,
            ms(standalone[round]),
            ms(fleetwide[round])
        );
    }
    alone.stop();
    member.stop();
    let (lease, standalone, fleetwide) = (Stats::of(&lease), Stats::of(&standalone), Stats::of(&fleetwide));
    Ok(report(&common::machine_line(&chromium), leases, rounds, &lease, &standalone, &fleetwide))
}

/// `POST /api/v2/sessions` on `profile`, timed until the 201 body has arrived; then an untimed DELETE.
async fn create_delete(http: &reqwest::Client, base: &str, profile: &str) -> Result<Duration> {
    let api = Api { http, base };
    let (id, elapsed) = api.create_with(serde_json::json!({"profile_id": profile})).await?;
    api.delete(&id).await?;
    Ok(elapsed)
}

/// A `redis-server` of this bench, on a Unix socket, without persistence.
struct Redis {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Redis {
    fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("redis.sock");
        let child = std::process::Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting redis-server (scripts/install-deps.sh installs it)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            ensure!(Instant::now() < deadline, "redis-server did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { dir, child })
    }

    fn url(&self) -> String {
        format!("unix://{}", self.dir.path().join("redis.sock").display())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A table row: p50, p99 and mean.
fn row(stats: &Stats, label: &str) -> String {
    format!("| {label} | {:.2} | {:.2} | {:.2} |\n", stats.p50, stats.p99, stats.mean)
}

fn report(machine: &str, leases: usize, rounds: usize, lease: &Stats, alone: &Stats, fleet: &Stats) -> String {
    let header = "| measurement | p50 ms | p99 ms | mean ms |\n| --- | --- | --- | --- |\n";
    format!(
        "## Fleet mode on Redis — {date}\n\n{machine}\n\n\
         Command: `make bench` (`cargo bench --bench fleet`), redis-server {redis} on a Unix socket\n\n\
         {header}{lease_row}{alone_row}{fleet_row}\n\
         Fleet create / standalone create: p50 {ratio:.2}\n\n\
         {leases} lease acquire + release pairs (`SET NX PX`, then a Lua compare-and-delete) from the worker's own \
         client; {rounds} profile-session creates on each side, alternated, each with a new persistent profile \
         (so a cold Chromium launch) and an untimed DELETE. The fleet worker also checks and counts the profile \
         in Redis (the shared breaker), takes the lease and names the session in the directory.\n",
        date = common::report_date(),
        redis = redis_version(),
        lease_row = row(lease, "lease acquire + release"),
        alone_row = row(alone, "profile create, standalone worker"),
        fleet_row = row(fleet, "profile create, worker in a fleet"),
        ratio = fleet.p50 / alone.p50,
    )
}

fn redis_version() -> String {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().find_map(|w| w.strip_prefix("v=")).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
