//! Webhooks and the live event stream: the caller's token, the seed's payload, order, retries
//! only where they help, a receiver that never answers does not hold the task up, its backlog
//! is bounded, a closed session's pending webhooks stop except its final events, and shutdown
//! delivers those within the grace period.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use browser_worker::session::{Session, SessionId};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use crate::support::{TestApp, eventually, fixtures};
use crate::tasks::{run, task};

#[derive(Clone, Copy, PartialEq)]
pub enum Behaviour {
    Ok,
    FailTwice,
    BadRequest,
    /// Never answers (the worker gives up or closes the connection).
    Hang,
    /// Holds every request until `open` is called, then answers 200.
    Gated,
}

pub type Hits = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A webhook receiver on 127.0.0.1 (plain HTTP/1.1 over TCP, so that it sees the worker
/// close a connection it has not answered).
pub struct Receiver {
    pub url: String,
    pub addr: SocketAddr,
    /// Every request's `Authorization` header and JSON body, in arrival order.
    pub hits: Hits,
    /// Requests received and not answered whose connection the worker still holds open.
    pub waiting: Arc<AtomicUsize>,
    gate: watch::Sender<bool>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (hits, waiting) = (Hits::default(), Arc::new(AtomicUsize::new(0)));
        let gate = watch::Sender::new(false);
        let (h, w, g) = (hits.clone(), waiting.clone(), gate.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, behaviour, h.clone(), w.clone(), g.subscribe()));
            }
        });
        Self { url: format!("http://{addr}/hook"), addr, hits, waiting, gate }
    }

    /// Lets held requests (`Behaviour::Gated`) through, now and later.
    pub fn open(&self) {
        self.gate.send_replace(true);
    }

    /// Holds later requests (`Behaviour::Gated`) again.
    pub fn close(&self) {
        self.gate.send_replace(false);
    }

    /// Requests held or hanging now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// The bodies received for one session.
    pub fn bodies_of(&self, session: &str) -> Vec<Value> {
        self.bodies().into_iter().filter(|b| b["session_id"] == session).collect()
    }

    /// The `type` of each request's event, in arrival order.
    pub fn kinds(&self) -> Vec<String> {
        kinds(&self.hits)
    }

    /// The bodies of the requests received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.hits.lock().unwrap().iter().map(|(_, body)| body.clone()).collect()
    }
}

/// One connection: requests in turn (keep-alive), each answered as `behaviour` says.
async fn serve(
    socket: tokio::net::TcpStream,
    behaviour: Behaviour,
    hits: Hits,
    waiting: Arc<AtomicUsize>,
    mut gate: watch::Receiver<bool>,
) {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    loop {
        let (mut auth, mut length) = (None, 0usize);
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let Some((name, value)) = line.trim_end().split_once(':') else { break };
            match name.to_ascii_lowercase().as_str() {
                "authorization" => auth = Some(value.trim().to_string()),
                "content-length" => length = value.trim().parse().unwrap(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if read.read_exact(&mut body).await.is_err() {
            return;
        }
        let count = {
            let mut hits = hits.lock().unwrap();
            hits.push((auth, serde_json::from_slice(&body).unwrap_or(Value::Null)));
            hits.len()
        };
        let status = match behaviour {
            Behaviour::Ok => "200 OK",
            Behaviour::FailTwice if count <= 2 => "500 Internal Server Error",
            Behaviour::FailTwice => "200 OK",
            Behaviour::BadRequest => "400 Bad Request",
            Behaviour::Hang | Behaviour::Gated => {
                waiting.fetch_add(1, Ordering::SeqCst);
                let hang = behaviour == Behaviour::Hang;
                let mut byte = [0u8; 1];
                let answer = tokio::select! {
                    // The worker closed the connection (or sent more, which it must not).
                    _ = read.read(&mut byte) => false,
                    opened = gate.wait_for(|open| *open), if !hang => opened.is_ok(),
                };
                waiting.fetch_sub(1, Ordering::SeqCst);
                if !answer {
                    return;
                }
                "200 OK"
            }
        };
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A worker that may POST to these receivers (and fetch from the fixture server). Where
/// receivers are let through is decided here alone.
pub async fn worker_reaching(receivers: &[&Receiver], extra: &[&str]) -> TestApp {
    let allowed: Vec<String> = receivers.iter().map(|r| r.addr.to_string()).collect();
    let allowed = allowed.join(",");
    let mut flags = vec!["--egress-allow", allowed.as_str()];
    flags.extend_from_slice(extra);
    TestApp::start_with(&flags).await
}

fn kinds(hits: &Hits) -> Vec<String> {
    hits.lock().unwrap().iter().map(|(_, b)| b["type"].as_str().unwrap_or("?").to_string()).collect()
}

#[tokio::test]
async fn a_task_reports_its_progress_by_webhook_in_order() {
    let hook = Receiver::start(Behaviour::Ok).await;
    let app = worker_reaching(&[&hook], &[]).await;
    let hits = hook.hits.clone();
    let mut body = task("t-hooks", "greenhouse/post");
    body["callback_url"] = json!(hook.url);
    body["callback_token"] = json!("cb-secret-token");
    let (_, result) = run(&app, body).await;
    assert_eq!(result["success"], true, "{result}");
    assert!(
        eventually(Duration::from_secs(5), || kinds(&hits).contains(&"completed".to_string())).await,
        "{:?}",
        kinds(&hits)
    );
    let hits = hits.lock().unwrap().clone();
    let session = result["session_id"].clone();
    for (auth, payload) in &hits {
        assert_eq!(auth.as_deref(), Some("Bearer cb-secret-token"));
        assert_eq!(payload["task_id"], "t-hooks", "{payload}");
        assert_eq!(payload["session_id"], session);
        assert!(payload["timestamp"].is_string() && payload["data"].is_object(), "{payload}");
    }
    let steps: Vec<(String, u64)> = hits
        .iter()
        .filter(|(_, p)| p["type"] == "progress")
        .map(|(_, p)| (p["data"]["step"].as_str().unwrap().to_string(), p["data"]["pct"].as_u64().unwrap()))
        .collect();
    let first =
        |name: &str| steps.iter().position(|(s, _)| s == name).unwrap_or_else(|| panic!("no {name}: {steps:?}"));
    assert!(
        first("navigating") < first("analyzing")
            && first("analyzing") < first("filling")
            && first("filling") < first("submitting")
    );
    assert_eq!(steps[first("navigating")].1, 10);
    assert_eq!(steps[first("submitting")].1, 90);
    let order: Vec<&str> = hits.iter().map(|(_, p)| p["type"].as_str().unwrap()).collect();
    let completed = order.iter().position(|k| *k == "completed").unwrap();
    assert!(completed > first("submitting"), "completed comes after submitting: {order:?}");
    app.stop().await;
}

#[tokio::test]
async fn receivers_get_retries_on_5xx_only_and_never_slow_the_task() {
    let (fail, bad, hang) = (
        Receiver::start(Behaviour::FailTwice).await,
        Receiver::start(Behaviour::BadRequest).await,
        Receiver::start(Behaviour::Hang).await,
    );
    let app = worker_reaching(&[&fail, &bad, &hang], &[]).await;
    // A session created through the V2 API with a callback gets the same webhooks.
    let (fail_url, fail_hits) = (fail.url.clone(), fail.hits.clone());
    let session = app.create(json!({"callback_url": fail_url, "metadata": {"task_id": "v2-hooks"}})).await;
    assert!(
        eventually(Duration::from_secs(10), || fail_hits.lock().unwrap().len() >= 3).await,
        "two 500s, then delivered"
    );
    let bodies: Vec<Value> = fail_hits.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(bodies[0], bodies[2], "the same event, once more each time");
    assert_eq!(bodies[0]["type"], "state_change");
    assert_eq!(bodies[0]["task_id"], "v2-hooks");
    app.delete(session["session_id"].as_str().unwrap()).await;

    let (bad_url, bad_hits) = (bad.url.clone(), bad.hits.clone());
    let session = app.create(json!({"callback_url": bad_url})).await;
    assert!(eventually(Duration::from_secs(5), || bad_hits.lock().unwrap().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bad_hits.lock().unwrap().len(), 1, "a 400 is not retried");
    app.delete(session["session_id"].as_str().unwrap()).await;

    // A receiver that never answers: the task still finishes while its webhooks hang.
    let (hang_url, hang_hits) = (hang.url.clone(), hang.hits.clone());
    let mut body = task("t-hang", "greenhouse/post");
    body["callback_url"] = json!(hang_url);
    let (_, result) = run(&app, body).await;
    assert_eq!(result["success"], true, "{result}");
    let waiting = hang_hits.lock().unwrap().len();
    assert!(waiting >= 1, "the first webhook reached the receiver and is still unanswered");
    app.stop().await;
}

#[tokio::test]
async fn a_late_event_subscriber_gets_the_replay_then_live_events() {
    let app = TestApp::start().await;
    let session = app.create(json!({})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    let url = format!("{}/pages/captcha-recaptcha.html", fixtures());
    let (status, _) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(json!({"url": url}))).await;
    assert_eq!(status, StatusCode::OK);
    let mut stream = app.request(Method::GET, &format!("/api/v2/sessions/{id}/events")).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while !text.contains("event: captcha_detected") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.find("event: state_change").unwrap() < text.find("event: captcha_detected").unwrap(),
        "replayed in order"
    );
    app.delete(&id).await;
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("\"state\":\"closed\""), "the close is the last event and the stream ends: {text}");
    let (status, _) = app.call(Method::GET, &format!("/api/v2/sessions/{id}/events"), None).await;
    assert_eq!(status, StatusCode::GONE);
    app.stop().await;
}

/// The open session `id` of `app`, to emit events on it directly (as the worker's own code
/// does), many more and faster than the API could make it.
pub fn session_of(app: &TestApp, id: &str) -> Arc<Session> {
    app.server.as_ref().unwrap().app.registry.get(SessionId::parse(id).unwrap()).expect("the session is open")
}

/// The `data.n` of the `progress` events among `bodies`, in order.
fn progress_numbers(bodies: &[Value]) -> Vec<u64> {
    bodies.iter().filter(|b| b["type"] == "progress").map(|b| b["data"]["n"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_hanging_receiver_costs_a_bounded_backlog_and_gets_only_final_events_after_delete() {
    let hook = Receiver::start(Behaviour::Gated).await;
    let app = worker_reaching(&[&hook], &[]).await;
    let notifier = app.server.as_ref().unwrap().app.notifier.clone();
    let created = app.create(json!({"callback_url": hook.url})).await;
    let id = created["session_id"].as_str().unwrap().to_string();
    assert!(eventually(Duration::from_secs(10), || hook.waiting() == 1).await, "the opening state_change is held");

    // The attack: far more events than a receiver that does not answer can take.
    let session = session_of(&app, &id);
    let dropped = notifier.stats().dropped;
    for n in 0..1300 {
        session.events.emit("progress", json!({ "n": n }));
    }
    session.events.emit("completed", json!({"success": true}));
    drop(session);
    let sid = SessionId::parse(&id).unwrap();
    assert_eq!(notifier.queued(sid), 64, "the session's backlog stays at its bound");
    assert_eq!(notifier.stats().dropped - dropped, 1301 - 64, "every event over the bound is counted as dropped");

    let (status, _) = app.delete(&id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(notifier.queued(sid) <= 2, "only final events still wait: {}", notifier.queued(sid));
    hook.open();
    assert!(
        eventually(Duration::from_secs(20), || notifier.stats().sessions == 0).await,
        "the final events are delivered: {:?}",
        hook.kinds()
    );
    assert_eq!(hook.kinds(), ["state_change", "completed", "state_change"], "nothing but final events after DELETE");
    assert_eq!(hook.bodies()[2]["data"]["state"], "closed");
    app.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_gets_the_newest_events_in_order() {
    let hook = Receiver::start(Behaviour::Gated).await;
    let app = worker_reaching(&[&hook], &[]).await;
    // (events emitted while the receiver holds the first webhook, the ones it then gets: the
    // newest 64, oldest first)
    let cases = [(10u64, 0..10u64), (200, 136..200), (1300, 1236..1300)];
    for (emitted, expected) in cases {
        hook.close();
        let created = app.create(json!({"callback_url": hook.url})).await;
        let id = created["session_id"].as_str().unwrap().to_string();
        assert!(eventually(Duration::from_secs(10), || hook.waiting() == 1).await, "the opening state_change is held");
        let session = session_of(&app, &id);
        for n in 0..emitted {
            session.events.emit("progress", json!({ "n": n }));
        }
        drop(session);
        hook.open();
        let last = emitted - 1;
        assert!(
            eventually(Duration::from_secs(20), || progress_numbers(&hook.bodies_of(&id)).last() == Some(&last)).await,
            "{emitted}: the newest event arrives"
        );
        assert_eq!(progress_numbers(&hook.bodies_of(&id)), expected.collect::<Vec<_>>(), "{emitted}");
        app.delete(&id).await;
        let closed = || hook.bodies_of(&id).iter().any(|b| b["data"]["state"] == "closed");
        assert!(eventually(Duration::from_secs(10), closed).await, "{emitted}: the close is delivered");
    }
    app.stop().await;
}

#[tokio::test]
async fn shutdown_with_a_hanging_receiver_ends_in_the_grace_period() {
    let hook = Receiver::start(Behaviour::Hang).await;
    let grace = 3;
    let app = worker_reaching(&[&hook], &["--shutdown-grace-secs", &grace.to_string()]).await;
    let created = app.create(json!({"callback_url": hook.url})).await;
    let id = created["session_id"].as_str().unwrap().to_string();
    assert!(eventually(Duration::from_secs(10), || hook.waiting() == 1).await, "the opening state_change hangs");
    let session = session_of(&app, &id);
    for n in 0..100 {
        session.events.emit("progress", json!({ "n": n }));
    }
    drop(session);

    let stopped = tokio::time::timeout(Duration::from_secs(grace + 10), app.stop()).await;
    assert!(stopped.is_ok(), "shutdown ends although the receiver never answers");
    // The close stopped the hanging non-final webhook; the closing event was sent, hung, and
    // was given up at the deadline.
    assert_eq!(hook.kinds(), ["state_change", "state_change"]);
    assert_eq!(hook.bodies()[1]["data"]["reason"], "shutdown");
    assert!(
        eventually(Duration::from_secs(5), || hook.waiting() == 0).await,
        "no delivery outlives the shutdown: the worker closed its connections"
    );
}

#[tokio::test]
async fn final_events_reach_an_answering_receiver_after_delete_and_at_shutdown() {
    let hook = Receiver::start(Behaviour::Ok).await;
    let app = worker_reaching(&[&hook], &[]).await;
    let deleted = app.create(json!({"callback_url": hook.url})).await["session_id"].as_str().unwrap().to_string();
    let open = app.create(json!({"callback_url": hook.url})).await["session_id"].as_str().unwrap().to_string();
    app.delete(&deleted).await;
    app.stop().await;
    // No waiting here: shutdown returns once the final events are delivered.
    for (session, reason) in [(&deleted, "closed"), (&open, "shutdown")] {
        let bodies = hook.bodies_of(session);
        let last = bodies.last().unwrap_or_else(|| panic!("{reason}: no webhook"));
        assert_eq!((last["type"].as_str(), last["data"]["reason"].as_str()), (Some("state_change"), Some(reason)));
    }
}
