//! The live event stream (SSE): every event carries its number as `id:`, a reconnect with
//! `Last-Event-ID` gets only what followed, no event comes twice on one stream, and a
//! subscriber that falls behind is told how many events it missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::webhooks::session_of;

/// One SSE event as a client parses it.
#[derive(Debug, Clone)]
struct Frame {
    event: String,
    id: Option<u64>,
    data: Value,
}

/// A client's end of `GET /api/v2/sessions/{id}/events`.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// Subscribes; when this returns the worker has taken the subscription.
    async fn open(app: &TestApp, id: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app.request(Method::GET, &format!("/api/v2/sessions/{id}/events"));
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Self { response, buffer: String::new() }
    }

    /// The next event (keep-alive comments skipped); `None` when the stream ends.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame { event: "message".into(), id: None, data: Value::Null };
                let mut seen = false;
                for line in block.lines() {
                    let Some((field, value)) = line.split_once(':') else { continue };
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    seen |= !field.is_empty();
                    match field {
                        "event" => frame.event = value.to_string(),
                        "id" => frame.id = Some(value.parse().expect("a numeric id")),
                        "data" => frame.data = serde_json::from_str(value).expect("JSON data"),
                        _ => {}
                    }
                }
                if seen {
                    return Some(frame);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("the stream goes on")
                .expect("the stream reads");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk?));
        }
    }

    /// The next `n` events.
    async fn take(&mut self, n: usize) -> Vec<Frame> {
        let mut frames = Vec::new();
        while frames.len() < n {
            frames.push(self.next().await.expect("more events"));
        }
        frames
    }
}

fn ids(frames: &[Frame]) -> Vec<Option<u64>> {
    frames.iter().map(|f| f.id).collect()
}

#[tokio::test]
async fn every_event_has_an_id_and_a_reconnect_gets_only_later_ones() {
    let app = TestApp::start().await;
    let id = app.create(json!({})).await["session_id"].as_str().unwrap().to_string();
    let session = session_of(&app, &id);
    // Event 1 is the opening state_change; 2..=6 follow.
    for n in 0..5 {
        session.events.emit("progress", json!({ "n": n }));
    }
    let first = Stream::open(&app, &id, None).await.take(6).await;
    assert_eq!(ids(&first), (1..=6).map(Some).collect::<Vec<_>>());
    assert_eq!((first[0].event.as_str(), first[5].event.as_str()), ("state_change", "progress"));

    // (Last-Event-ID, how many events are replayed, the newest ones): only the kept ones after
    // it; an id that is not a number is no id; one from the future means "everything so far".
    enum Last {
        Back(u64),
        Ahead(u64),
        Raw(&'static str),
    }
    let cases =
        [(Last::Back(2), 2), (Last::Back(0), 0), (Last::Ahead(993), 0), (Last::Raw("not-a-number"), usize::MAX)];
    for (last, count) in cases {
        let newest = session.events.subscribe(None).last_seq;
        let header = match last {
            Last::Back(n) => (newest - n).to_string(),
            Last::Ahead(n) => (newest + n).to_string(),
            Last::Raw(raw) => raw.to_string(),
        };
        let count = count.min(newest as usize);
        let mut stream = Stream::open(&app, &id, Some(&header)).await;
        let frames = stream.take(count).await;
        // The next live event comes right after the replay.
        session.events.emit("progress", json!({ "marker": header }));
        let marker = stream.next().await.unwrap();
        let replayed: Vec<Option<u64>> = (newest + 1 - count as u64..=newest).map(Some).collect();
        assert_eq!(ids(&frames), replayed, "Last-Event-ID: {header}");
        assert_eq!(marker.data["data"]["marker"], header, "Last-Event-ID: {header}: nothing else was replayed");
        assert_eq!(marker.id, Some(newest + 1));
    }

    // Events that are no longer kept (100 are) are reported as missed, then the kept follow.
    let newest = session.events.subscribe(None).last_seq;
    for n in 0..150 {
        session.events.emit("progress", json!({ "n": n }));
    }
    let mut stream = Stream::open(&app, &id, Some("3")).await;
    let frames = stream.take(2).await;
    let first_kept = newest + 150 - 99;
    assert_eq!((frames[0].event.as_str(), &frames[0].data), ("lagged", &json!({"missed": first_kept - 4})));
    assert_eq!(frames[1].id, Some(first_kept));
    drop(session);
    app.stop().await;
}

#[tokio::test]
async fn no_event_comes_twice_on_a_stream_opened_while_events_are_emitted() {
    let app = TestApp::start().await;
    let id = app.create(json!({})).await["session_id"].as_str().unwrap().to_string();
    let session = session_of(&app, &id);
    let stop = Arc::new(AtomicBool::new(false));
    // Another thread emits in bursts, so that subscriptions race with emits; the bursts are
    // shorter than a subscriber's live buffer, so that a duplicate would not be hidden by a lag.
    let emitter = {
        let (session, stop) = (session.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    session.events.emit("progress", json!({ "n": n }));
                    n += 1;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };
    for round in 0..30 {
        let mut stream = Stream::open(&app, &id, None).await;
        let frames = stream.take(150).await;
        let numbered: Vec<u64> = frames.iter().filter_map(|f| f.id).collect();
        assert!(numbered.windows(2).all(|w| w[0] < w[1]), "round {round}: ids only increase: {numbered:?}");
        let ns: Vec<u64> = frames.iter().filter_map(|f| f.data["data"]["n"].as_u64()).collect();
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "round {round}: no event twice: {ns:?}");
        // Every gap in the numbers is announced by a `lagged` event with its size.
        let mut expected = None;
        for frame in &frames {
            match (frame.event.as_str(), frame.id) {
                ("lagged", _) => expected = expected.map(|e: u64| e + frame.data["missed"].as_u64().unwrap()),
                (_, Some(seq)) => {
                    if let Some(e) = expected {
                        assert_eq!(seq, e, "round {round}: no event silently missing");
                    }
                    expected = Some(seq + 1);
                }
                _ => panic!("an event without an id: {frame:?}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    emitter.join().unwrap();
    drop(session);
    app.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_how_many_events_it_missed() {
    let app = TestApp::start().await;
    let id = app.create(json!({})).await["session_id"].as_str().unwrap().to_string();
    let session = session_of(&app, &id);
    let mut stream = Stream::open(&app, &id, None).await;
    assert_eq!(ids(&stream.take(1).await), [Some(1)]);
    // The test's runtime has one thread: the stream cannot read while these are emitted, so it
    // falls 1000 events behind a live buffer of 100.
    for n in 0..1000 {
        session.events.emit("progress", json!({ "n": n }));
    }
    let lagged = stream.next().await.unwrap();
    assert_eq!(lagged.event, "lagged", "{lagged:?}");
    let missed = lagged.data["missed"].as_u64().unwrap();
    assert!(missed > 0 && lagged.id.is_none(), "{lagged:?}");
    // What was not missed follows, in order, up to the newest: missed + received = emitted.
    let frames = stream.take((1000 - missed) as usize).await;
    assert_eq!(ids(&frames), (2 + missed..=1001).map(Some).collect::<Vec<_>>());
    drop(session);
    app.stop().await;
}
