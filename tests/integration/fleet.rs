//! Fleet mode on Redis (SPEC §3.9): workers of one fleet list each other, run a profile on one
//! worker at a time, send callers to the worker that holds a session, and fail closed when Redis
//! is gone. A real `redis-server` (Debian's) on a Unix socket, started here.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{DataDir, KEY, WorkerProcess, data_dir, eventually_async, fixtures};

/// A `redis-server` of this test only, without persistence: stopping it loses every key (as
/// a flushed Redis would).
struct Redis {
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl Redis {
    async fn start() -> Self {
        let mut redis = Self { dir: tempfile::tempdir().unwrap(), child: None };
        redis.restart().await;
        redis
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    async fn restart(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs (scripts/install-deps.sh installs it)");
        self.child = Some(child);
        let socket = self.socket();
        let up = eventually_async(Duration::from_secs(10), || {
            let socket = socket.clone();
            async move { tokio::net::UnixStream::connect(&socket).await.is_ok() }
        })
        .await;
        assert!(up, "redis-server listens");
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

struct Member {
    worker: WorkerProcess,
    _data: DataDir,
}

async fn member(redis: &Redis, id: &str) -> Member {
    let data = data_dir();
    let env = [("BW_REDIS_URL", redis.url()), ("BW_WORKER_ID", id.to_string()), ("BW_FLEET_TTL_SECS", "3".to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = WorkerProcess::spawn(data.path(), &env).await;
    Member { worker, _data: data }
}

/// A client that does not follow redirects (a 307 is what is tested).
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn call(base: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value, Option<String>) {
    let mut request = client().request(method, format!("{base}{path}")).bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_string());
    (status, response.json().await.unwrap_or(Value::Null), location)
}

#[tokio::test]
async fn three_workers_share_profiles_and_send_callers_to_the_holder() {
    let redis = Redis::start().await;
    let workers = [member(&redis, "w1").await, member(&redis, "w2").await, member(&redis, "w3").await];
    let bases: Vec<String> = workers.iter().map(|m| m.worker.base.clone()).collect();

    let listed = eventually_async(Duration::from_secs(10), || async {
        let (_, fleet, _) = call(&bases[0], Method::GET, "/api/v1/fleet", None).await;
        fleet["workers"].as_array().map(|w| w.len()) == Some(3)
    })
    .await;
    assert!(listed, "every worker is listed");
    let (_, fleet, _) = call(&bases[1], Method::GET, "/api/v1/fleet", None).await;
    assert_eq!((fleet["fleet"].as_bool(), fleet["worker_id"].as_str()), (Some(true), Some("w2")));
    assert_eq!(fleet["workers"][2]["public_url"].as_str(), Some(bases[2].as_str()), "{fleet}");
    assert_eq!(fleet["workers"][0]["free_slots"], 3);
    let (_, health, _) = call(&bases[0], Method::GET, "/health", None).await;
    assert_eq!(health["fleet"], "connected");

    // One profile, opened on the three workers at once: exactly one wins.
    let body = json!({"profile_id": "p-shared", "url": format!("{}/pages/green.html", fixtures())});
    let creates = futures::future::join_all(
        bases.iter().map(|base| call(base, Method::POST, "/api/v2/sessions", Some(body.clone()))),
    )
    .await;
    let won: Vec<usize> = (0..3).filter(|i| creates[*i].0 == StatusCode::CREATED).collect();
    assert_eq!(won.len(), 1, "{creates:?}");
    let holder = won[0];
    let id = creates[holder].1["session_id"].as_str().unwrap().to_string();
    for (i, (status, refused, _)) in creates.iter().enumerate().filter(|(i, _)| *i != holder) {
        assert_eq!(*status, StatusCode::CONFLICT, "worker {i}: {refused}");
        assert_eq!(refused["error"]["code"], "profile_in_use");
        assert_eq!(refused["error"]["details"]["worker_id"], format!("w{}", holder + 1));
        assert_eq!(refused["error"]["details"]["session_id"], id.as_str());
    }

    // Every session route on another worker answers 307 to the holder.
    let other = &bases[(holder + 1) % 3];
    let routes = [
        (Method::GET, format!("/api/v2/sessions/{id}")),
        (Method::POST, format!("/api/v2/sessions/{id}/navigate")),
        (Method::POST, format!("/api/v2/sessions/{id}/analyze")),
        (Method::POST, format!("/api/v2/sessions/{id}/vnc-token")),
        (Method::GET, format!("/api/v2/sessions/{id}/events")),
        (Method::DELETE, format!("/api/v2/sessions/{id}")),
        (Method::GET, format!("/live/{id}/viewer?token=x")),
        (Method::GET, format!("/vnc/{id}/viewer?token=x")),
    ];
    for (method, path) in routes {
        let (status, _, location) = call(other, method.clone(), &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT, "{method} {path}");
        assert_eq!(location, Some(format!("{}{path}", bases[holder])), "{method} {path}");
    }
    // A session the whole fleet does not know is 404 as before.
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(call(other, Method::GET, &format!("/api/v2/sessions/{unknown}"), None).await.0, StatusCode::NOT_FOUND);

    // Closed on its worker, the profile is free for another.
    assert_eq!(call(&bases[holder], Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await.0, StatusCode::OK);
    let (status, again, _) =
        call(other, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-shared"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    let again = again["session_id"].as_str().unwrap().to_string();
    assert_eq!(call(other, Method::DELETE, &format!("/api/v2/sessions/{again}"), None).await.0, StatusCode::OK);
    for member in workers {
        assert_eq!(member.worker.terminate().await.0, Some(0));
    }
}

#[tokio::test]
async fn a_killed_workers_lease_expires_and_redis_outages_fail_closed() {
    let mut redis = Redis::start().await;
    let first = member(&redis, "w1").await;
    let second = member(&redis, "w2").await;
    let body = json!({"profile_id": "p-lease"});
    let (status, _, _) = call(&first.worker.base, Method::POST, "/api/v2/sessions", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = call(&second.worker.base, Method::POST, "/api/v2/sessions", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The holder dies without a word: its lease lapses after the TTL (3 s here).
    let Member { worker, _data } = first;
    drop(worker);
    let taken = std::sync::Mutex::new(None);
    let free = eventually_async(Duration::from_secs(15), || async {
        let (status, created, _) =
            call(&second.worker.base, Method::POST, "/api/v2/sessions", Some(body.clone())).await;
        *taken.lock().unwrap() = created["session_id"].as_str().map(str::to_string);
        status == StatusCode::CREATED
    })
    .await;
    assert!(free, "the dead worker's profile is free after the TTL");
    let leased = taken.into_inner().unwrap().unwrap();
    drop(_data);

    // Redis goes away: sessions held here go on, creates that need a lease fail closed.
    let (status, plain, _) = call(
        &second.worker.base,
        Method::POST,
        "/api/v2/sessions",
        Some(json!({"url": format!("{}/pages/green.html", fixtures())})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    let plain = plain["session_id"].as_str().unwrap().to_string();
    redis.stop().await;
    let (status, refused, _) =
        call(&second.worker.base, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-other"}))).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("fleet_unavailable"))
    );
    let nav = json!({"url": format!("{}/pages/blue.html", fixtures())});
    let (status, _, _) =
        call(&second.worker.base, Method::POST, &format!("/api/v2/sessions/{plain}/navigate"), Some(nav)).await;
    assert_eq!(status, StatusCode::OK);
    let unreachable = eventually_async(Duration::from_secs(10), || async {
        call(&second.worker.base, Method::GET, "/health", None).await.1["fleet"] == "unreachable"
    })
    .await;
    assert!(unreachable);

    // Redis is back (empty, as after a flush): the worker recovers by itself, and the lease it
    // held is gone, so that session stops rather than risk a second browser on its profile.
    redis.restart().await;
    let recovered = eventually_async(Duration::from_secs(15), || async {
        call(&second.worker.base, Method::GET, "/health", None).await.1["fleet"] == "connected"
    })
    .await;
    assert!(recovered, "the worker finds Redis again");
    let lost = eventually_async(Duration::from_secs(15), || async {
        let (status, gone, _) =
            call(&second.worker.base, Method::GET, &format!("/api/v2/sessions/{leased}"), None).await;
        status == StatusCode::GONE && gone["error"]["details"]["reason"] == "lease_lost"
    })
    .await;
    assert!(lost, "the session whose lease was lost is stopped");
    let (status, _, _) =
        call(&second.worker.base, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-other"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second.worker.terminate().await.0, Some(0));
}

#[tokio::test]
async fn a_block_or_a_disable_seen_by_one_worker_holds_on_all() {
    let redis = Redis::start().await;
    let first = member(&redis, "w1").await;
    let second = member(&redis, "w2").await;
    let (a, b) = (first.worker.base.as_str(), second.worker.base.as_str());

    // A CAPTCHA on the first worker cools the profile on the second.
    let captcha = json!({"profile_id": "p-blocked", "url": format!("{}/pages/captcha-recaptcha.html", fixtures())});
    let (status, blocked, _) = call(a, Method::POST, "/api/v2/sessions", Some(captcha)).await;
    assert_eq!(status, StatusCode::CREATED, "{blocked}");
    let id = blocked["session_id"].as_str().unwrap();
    assert_eq!(call(a, Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await.0, StatusCode::OK);
    let (status, refused, _) =
        call(b, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-blocked"}))).await;
    assert_eq!(status, StatusCode::LOCKED, "{refused}");
    assert_eq!(refused["error"]["details"]["state"], "cooling");
    let (_, profiles, _) = call(b, Method::GET, "/api/v1/profiles", None).await;
    let listed = profiles["profiles"].as_array().unwrap().iter().find(|p| p["profile_id"] == "p-blocked").cloned();
    assert_eq!(listed.map(|p| p["consecutive_blocks"].clone()), Some(json!(1)), "{profiles}");

    // A disable on one refuses creates on the other; an enable there lets them in again.
    let (status, _, _) = call(a, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-off"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list, _) = call(a, Method::GET, "/api/v2/sessions", None).await;
    for session in list["sessions"].as_array().unwrap() {
        let id = session["session_id"].as_str().unwrap();
        assert_eq!(call(a, Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await.0, StatusCode::OK);
    }
    assert_eq!(call(a, Method::POST, "/api/v1/profiles/p-off/disable", None).await.0, StatusCode::OK);
    let (status, refused, _) = call(b, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-off"}))).await;
    assert_eq!(
        (status, refused["error"]["details"]["state"].as_str()),
        (StatusCode::LOCKED, Some("disabled")),
        "{refused}"
    );
    assert_eq!(call(b, Method::POST, "/api/v1/profiles/p-off/enable", None).await.0, StatusCode::OK);
    let (status, _, _) = call(a, Method::POST, "/api/v2/sessions", Some(json!({"profile_id": "p-off"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first.worker.terminate().await.0, Some(0));
    assert_eq!(second.worker.terminate().await.0, Some(0));
}
