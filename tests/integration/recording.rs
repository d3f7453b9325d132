//! Session recordings and timelines (issue 20): a recorded headless or display session leaves a
//! playable MP4 of its length among its artifacts (ffprobe says so), a crashed one too, caps
//! hold, `on_failure` keeps only failures, and the timeline tells the whole session.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::forms::{applicant, open, resume_inline};
use crate::support::{TestApp, eventually_async, fixtures};

/// The length in seconds ffprobe reads from `bytes` (an MP4), `None` when it cannot read one.
async fn probe(bytes: &[u8]) -> Option<f64> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let output = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "format=duration:stream=codec_name"])
        .args(["-of", "default=nw=1"])
        .arg(file.path())
        .output()
        .await
        .expect("ffprobe runs (scripts/install-deps.sh installs ffmpeg)");
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !text.contains("codec_name=h264") {
        return None;
    }
    text.lines().find_map(|l| l.strip_prefix("duration=")).and_then(|d| d.parse().ok())
}

/// The session's recording from the close answer's artifacts: (its URL, its bytes).
async fn recording_of(app: &TestApp, closed: &Value) -> Option<(String, Vec<u8>)> {
    let url =
        closed["artifacts"].as_array()?.iter().filter_map(Value::as_str).find(|a| a.ends_with(".mp4"))?.to_string();
    let response = app.request(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "video/mp4", "playable in a browser");
    Some((url, response.bytes().await.unwrap().to_vec()))
}

/// Opens a recorded session on a fixture page, lets it run `secs`, closes it.
async fn record(app: &TestApp, body: Value, secs: u64) -> Value {
    let session = app.create(body).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    assert!(session["recording"].as_str().is_some_and(|r| r.ends_with("/recording.mp4")), "{session}");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (status, closed) = app.delete(&id).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    closed
}

#[tokio::test]
async fn a_recorded_headless_and_a_recorded_display_session_leave_playable_videos_of_their_length() {
    let app = TestApp::start_with(&["--display-mode", "per-session"]).await;
    let page = format!("{}/pages/green.html", fixtures());
    for (what, body) in [
        ("headless", json!({"url": page, "recording": true, "display": false})),
        ("display", json!({"url": page, "recording": true, "display": true})),
    ] {
        let closed = record(&app, body, 3).await;
        let (_, video) = recording_of(&app, &closed).await.unwrap_or_else(|| panic!("{what}: no recording: {closed}"));
        let secs = probe(&video).await.unwrap_or_else(|| panic!("{what}: not a playable H.264 MP4"));
        assert!((2.0..8.0).contains(&secs), "{what}: {secs} s for a session of about 3 s");
    }
    // A session that does not ask is not recorded (BW_RECORDING=off).
    let session = app.create(json!({"url": page, "display": false})).await;
    assert!(session["recording"].is_null(), "{session}");
    let (_, closed) = app.delete(session["session_id"].as_str().unwrap()).await;
    assert!(recording_of(&app, &closed).await.is_none(), "{closed}");
    app.stop().await;
}

#[tokio::test]
async fn a_crashed_session_leaves_a_playable_video_and_the_length_cap_holds() {
    let app = TestApp::start_with(&["--recording-max-secs", "2"]).await;
    let session = app.create(json!({"url": format!("{}/pages/green.html", fixtures()), "recording": true})).await;
    let id = session["session_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let browser = app.browsers()[0].clone();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(browser.pgid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let failed = eventually_async(Duration::from_secs(10), || async {
        app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await.0 == StatusCode::GONE
    })
    .await;
    assert!(failed, "the session failed with its browser");
    // The timeline, kept at closing, names the recording; the video plays and stopped at the cap.
    let (status, timeline) = app.call(Method::GET, &format!("/api/v2/sessions/{id}/timeline"), None).await;
    assert_eq!((status, timeline["state"].as_str()), (StatusCode::OK, Some("failed")), "{timeline}");
    assert_eq!(timeline["reason"], "browser_crashed", "{timeline}");
    let url = timeline["video"].as_str().unwrap_or_else(|| panic!("no video: {timeline}")).to_string();
    let video = app.request(Method::GET, &url).send().await.unwrap().bytes().await.unwrap();
    let secs = probe(&video).await.expect("the crashed session's video plays");
    assert!(secs > 0.5 && secs <= 3.0, "{secs} s with a 2 s cap");
    app.stop().await;
}

#[tokio::test]
async fn on_failure_keeps_only_the_videos_of_sessions_without_a_confirmed_submission() {
    let app = TestApp::start_with(&["--recording", "on_failure"]).await;
    // Submitted and confirmed: the video is discarded; the timeline has the submit's evidence.
    let id = open(&app, "greenhouse/post").await;
    let applicant = applicant();
    let body = json!({"user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"],
        "resume": resume_inline(), "humanize": "off"});
    let (status, report) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/fill"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, answer) =
        app.call(Method::POST, &format!("/api/v2/sessions/{id}/submit"), Some(json!({"humanize": "off"}))).await;
    assert_eq!(answer["outcome"], "submitted", "{answer}");
    assert!(answer["evidence"]["video"].as_str().is_some_and(|v| v.ends_with("recording.mp4")), "{answer}");
    let (_, live) = app.call(Method::GET, &format!("/api/v2/sessions/{id}/timeline"), None).await;
    assert_eq!(live["state"], "ready", "{live}");
    assert_eq!(live["submits"][0]["outcome"], "submitted", "{live}");
    assert_eq!(live["submits"][0]["evidence"]["request"]["method"], "POST", "{live}");
    let (_, closed) = app.delete(&id).await;
    assert!(recording_of(&app, &closed).await.is_none(), "a confirmed submission's video is not kept: {closed}");
    let (_, timeline) = app.call(Method::GET, &format!("/api/v2/sessions/{id}/timeline"), None).await;
    assert_eq!(timeline["state"], "closed", "{timeline}");
    assert!(timeline["video"].is_null(), "{timeline}");
    assert!(timeline["screenshots"].as_array().is_some_and(|s| !s.is_empty()), "{timeline}");
    assert!(timeline["events"].as_array().unwrap().iter().any(|e| e["type"] == "submit"), "{timeline}");

    // Ended without a submission: kept. Asked not to record: nothing.
    let closed = record(&app, json!({"url": format!("{}/pages/green.html", fixtures())}), 2).await;
    assert!(recording_of(&app, &closed).await.is_some(), "{closed}");
    let session = app.create(json!({"recording": false})).await;
    assert!(session["recording"].is_null(), "{session}");
    app.delete(session["session_id"].as_str().unwrap()).await;
    app.stop().await;
}

/// ffmpeg processes writing under `dir`, by pid.
fn recorders_in(dir: &std::path::Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let ffmpeg = cmdline.starts_with("ffmpeg") || cmdline.contains("/ffmpeg\0");
        if ffmpeg && cmdline.contains(dir.to_str().unwrap()) {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test]
async fn a_killed_worker_leaves_no_recorder_running_and_a_playable_video() {
    use nix::sys::signal::{Signal, kill};
    let data_dir = crate::support::data_dir();
    let mut worker = crate::support::WorkerProcess::spawn(data_dir.path(), &[("BW_DISPLAY_MODE", "per-session")]).await;
    let body = json!({"url": format!("{}/pages/green.html", fixtures()), "recording": true});
    let session: Value = reqwest::Client::new()
        .post(format!("{}/api/v2/sessions", worker.base))
        .bearer_auth(crate::support::KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["session_id"].as_str().unwrap_or_else(|| panic!("{session}")).to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let running = recorders_in(data_dir.path());
    assert_eq!(running.len(), 1, "one ffmpeg records the session's display");
    kill(nix::unistd::Pid::from_raw(worker.child.id().unwrap() as i32), Signal::SIGKILL).unwrap();
    worker.child.wait().await.unwrap();
    let gone = crate::support::eventually(Duration::from_secs(10), || recorders_in(data_dir.path()).is_empty()).await;
    assert!(gone, "ffmpeg outlived the worker: {:?}", recorders_in(data_dir.path()));
    let video = std::fs::read(data_dir.path().join("artifacts").join(&id).join("recording.mp4")).unwrap();
    let secs = probe(&video).await.expect("what the killed worker's recorder wrote plays");
    assert!(secs >= 1.0, "{secs} s of about 3");
}
