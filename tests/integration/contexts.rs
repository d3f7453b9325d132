//! Context mode (`BW_EPHEMERAL_MODE=context`): ephemeral sessions as browser contexts of a few
//! shared browsers. What one session's page or token can reach of another's in the same
//! browser, written as attacks that must fail, and what one browser's death takes with it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::isolation::{Cdp, session_of};
use crate::support::{TestApp, eventually, eventually_async, fixtures, group_members};

/// A context-mode worker whose shared browsers take `per_browser` sessions each.
async fn worker(per_browser: &str) -> TestApp {
    TestApp::start_with(&["--ephemeral-mode", "context", "--contexts-per-browser", per_browser]).await
}

async fn open(app: &TestApp, page: &str) -> String {
    let session = app.create(json!({"url": format!("{}/pages/{page}", fixtures())})).await;
    session["session_id"].as_str().unwrap().to_string()
}

/// Navigates session `id` to the fixture form, which must succeed.
async fn navigate_to_form(app: &TestApp, id: &str) {
    let body = json!({"url": format!("{}/pages/form.html", fixtures())});
    let (status, nav) = app.call(Method::POST, &format!("/api/v2/sessions/{id}/navigate"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "session {id}: {nav}");
}

fn targets_of(reply: &Value) -> Vec<Value> {
    reply["result"]["targetInfos"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn sessions_in_one_browser_keep_cookies_storage_and_targets_apart() {
    let app = worker("3").await;
    let (a, b) = (open(&app, "green.html").await, open(&app, "green.html").await);
    assert_eq!(app.browsers().len(), 1, "two sessions, one shared browser");
    assert_ne!(session_of(&app, &a).browser_context(), session_of(&app, &b).browser_context());
    // No context carries a preloaded browser-UI renderer (about 50 MiB each, `CHROMIUM_FLAGS`).
    let group = session_of(&app, &a).browser_process().unwrap().pgid;
    let cmdline = |member: &String| {
        let pid = member.split_whitespace().next().unwrap_or_default();
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default()
    };
    let members = group_members(group);
    assert!(members.iter().any(|m| cmdline(m).contains("--type=renderer")), "{members:?}");
    assert!(members.iter().all(|m| !cmdline(m).contains("--top-chrome-webui")), "a browser-UI renderer runs");

    // A page of A writes cookies and storage; B's page on the same site sees none of it.
    let written = "document.cookie = 'who=a'; localStorage.setItem('who', 'a'); document.cookie";
    assert_eq!(app.page_eval(&a, written).await, "who=a");
    assert_eq!(app.page_eval(&b, "document.cookie + '|' + localStorage.getItem('who')").await, "|null");
    app.page_eval(&b, "document.cookie = 'who=b'").await;

    // A's CDP token: its own targets only, B's page cannot be attached, cookies are A's.
    let mut cdp = Cdp::open(&app, &a).await;
    let b_page = session_of(&app, &b).page_target().to_string();
    let targets = targets_of(&cdp.call("Target.getTargets", json!({}), None).await);
    let a_context = session_of(&app, &a).browser_context().unwrap().to_string();
    assert!(targets.iter().all(|t| t["browserContextId"] == a_context.as_str()), "A sees its own only: {targets:?}");
    let pages: Vec<&str> =
        targets.iter().filter(|t| t["type"] == "page").filter_map(|t| t["targetId"].as_str()).collect();
    assert_eq!(pages, [session_of(&app, &a).page_target()], "A sees its page: {targets:?}");
    let attach = cdp.call("Target.attachToTarget", json!({"targetId": b_page, "flatten": true}), None).await;
    assert!(attach["error"].is_object(), "A attaches to B's page: {attach}");
    for method in ["Target.closeTarget", "Target.activateTarget"] {
        let reply = cdp.call(method, json!({"targetId": b_page}), None).await;
        assert!(reply["error"].is_object(), "{method} on B's page: {reply}");
    }
    let cookies = cdp.call("Storage.getCookies", json!({}), None).await;
    let values: Vec<&str> =
        cookies["result"]["cookies"].as_array().unwrap().iter().filter_map(|c| c["value"].as_str()).collect();
    assert_eq!(values, ["a"], "{cookies}");
    let fetch = cdp.call("Fetch.enable", json!({}), None).await;
    assert!(fetch["error"].is_object(), "browser-wide interception would see B's requests: {fetch}");
    let contexts = cdp.call("Target.getBrowserContexts", json!({}), None).await;
    assert_eq!(contexts["result"]["browserContextIds"], json!([]), "{contexts}");

    // A browser-wide auto-attach shows A's page only, and lets a page opened meanwhile in
    // another context run: the third session's create and navigation go through.
    let auto = json!({"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true});
    assert!(cdp.call("Target.setAutoAttach", auto, None).await["error"].is_null());
    let c = open(&app, "green.html").await;
    assert_eq!(app.browsers().len(), 1, "the third session is in the same browser");
    navigate_to_form(&app, &c).await;
    let _ = cdp.call("Browser.getVersion", json!({}), None).await;
    let attached: Vec<&Value> = cdp
        .events
        .iter()
        .filter(|e| e["method"] == "Target.attachedToTarget")
        .map(|e| &e["params"]["targetInfo"])
        .collect();
    assert!(!attached.is_empty(), "A's own page is attached: {:?}", cdp.events);
    assert!(attached.iter().all(|t| t["browserContextId"] == a_context.as_str()), "{attached:?}");
    assert!(cdp.events.iter().all(|e| !e.to_string().contains(&b_page)), "nothing about B's page reaches A");

    // A's live view follows A's new tabs, not a tab B opens.
    let session_a = session_of(&app, &a);
    let hub = browser_worker::live::LiveHub::start(
        session_a.cdp_endpoint().to_string(),
        session_a.page_target().to_string(),
        session_a.browser_context().map(str::to_string),
    );
    let shown = || hub.page().borrow().url.clone();
    assert!(eventually(Duration::from_secs(10), || shown().ends_with("/pages/green.html")).await, "{}", shown());
    let mut b_cdp = Cdp::open(&app, &b).await;
    let tab = json!({"url": format!("{}/pages/form.html", fixtures())});
    assert!(b_cdp.call("Target.createTarget", tab, None).await["error"].is_null());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(shown().ends_with("/pages/green.html"), "A's viewer shows {}", shown());
    drop(hub);

    // Closing A disposes of its context (asked of the browser directly, not through a
    // passthrough) and leaves B and the shared browser running.
    let endpoint = session_of(&app, &b).cdp_endpoint().to_string();
    let contexts = || async {
        let reply = Cdp::at(&endpoint).await.call("Target.getBrowserContexts", json!({}), None).await;
        reply["result"]["browserContextIds"].as_array().cloned().unwrap_or_default()
    };
    assert!(contexts().await.contains(&json!(a_context)), "A's context is listed while it is open");
    assert_eq!(app.delete(&a).await.0, StatusCode::OK);
    assert!(!contexts().await.contains(&json!(a_context)), "A's context is gone with A");
    assert_eq!(app.browsers().len(), 1);
    assert_eq!(app.page_eval(&b, "document.cookie").await, "who=b");
    app.stop().await;
}

#[tokio::test]
async fn a_shared_browser_that_dies_fails_exactly_its_sessions() {
    let app = worker("2").await;
    let (a, b) = (open(&app, "green.html").await, open(&app, "green.html").await);
    let first = session_of(&app, &a).browser_process().expect("a local browser");
    assert_eq!(session_of(&app, &b).browser_process(), Some(first));
    let c = open(&app, "green.html").await;
    let second = session_of(&app, &c).browser_process().unwrap();
    assert_ne!(first, second, "the third session needed a second browser");

    browser_worker::browser::process::kill_group(first.pgid);
    for id in [&a, &b] {
        let failed = || async {
            let (status, body) = app.call(Method::GET, &format!("/api/v2/sessions/{id}"), None).await;
            status == StatusCode::GONE && body["error"]["details"]["reason"] == "browser_crashed"
        };
        assert!(eventually_async(Duration::from_secs(20), failed).await, "session {id} failed with its browser");
    }
    navigate_to_form(&app, &c).await; // the other browser's session goes on
    // A new session takes the free place in the browser that lives.
    let d = open(&app, "green.html").await;
    assert_eq!(session_of(&app, &d).browser_process(), Some(second));
    assert!(group_members(first.pgid).is_empty(), "the dead browser's processes are gone");
    app.stop().await;
}

/// Context sessions outlive a killed worker like process sessions (SPEC §3.8): the restarted
/// worker adopts their shared browser once and takes each context back, with its page, its
/// values, its cookies and its CDP token; a graceful stop then ends the shared browser too.
#[tokio::test]
async fn context_sessions_survive_kill_9_and_a_restart() {
    use crate::support::{KEY, WorkerProcess, evaluate_over_cdp, recorded_browsers};
    let data = crate::support::data_dir();
    let env = [("BW_EPHEMERAL_MODE", "context"), ("BW_CONTEXTS_PER_BROWSER", "4")];
    let worker = WorkerProcess::spawn(data.path(), &env).await;
    let client = reqwest::Client::new();
    let call = async |base: &str, method: Method, path: &str| -> (StatusCode, Value) {
        let response = client.request(method, format!("{base}{path}")).bearer_auth(KEY).send().await.unwrap();
        (response.status(), response.json().await.unwrap_or(Value::Null))
    };
    let create = async |base: &str, page: &str| -> String {
        let response = client
            .post(format!("{base}/api/v2/sessions"))
            .bearer_auth(KEY)
            .json(&json!({"url": format!("{}/{page}", fixtures())}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["session_id"].as_str().unwrap().to_string()
    };
    let (a, b) =
        (create(&worker.base, "forms/generic/short.html").await, create(&worker.base, "pages/green.html").await);
    let (_, token) = call(&worker.base, Method::POST, &format!("/api/v2/sessions/{a}/cdp-token")).await;
    let cdp_url = token["cdp_url"].as_str().unwrap().to_string();
    let typed = "document.querySelector('#full_name').value = 'Ada Halfway'";
    assert_eq!(evaluate_over_cdp(&cdp_url, typed).await, "Ada Halfway");
    let browsers = recorded_browsers(data.path());
    assert_eq!(browsers.len(), 1, "one shared browser");

    let pid = nix::unistd::Pid::from_raw(worker.child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let mut worker = worker;
    worker.child.wait().await.unwrap();
    let restarted = WorkerProcess::spawn(data.path(), &env).await;
    for id in [&a, &b] {
        let (status, info) = call(&restarted.base, Method::GET, &format!("/api/v2/sessions/{id}")).await;
        assert_eq!((status, info["state"].as_str()), (StatusCode::OK, Some("ready")), "{info}");
    }
    let cdp_url =
        cdp_url.replace(&worker.base.replace("http://", "ws://"), &restarted.base.replace("http://", "ws://"));
    let value = evaluate_over_cdp(&cdp_url, "document.querySelector('#full_name').value").await;
    assert_eq!(value, "Ada Halfway", "the same page in the same context");
    assert_eq!(recorded_browsers(data.path()).len(), 1, "the shared browser was adopted, not replaced");
    assert_eq!(call(&restarted.base, Method::DELETE, &format!("/api/v2/sessions/{a}")).await.0, StatusCode::OK);
    let (status, nav) = call(&restarted.base, Method::GET, &format!("/api/v2/sessions/{b}")).await;
    assert_eq!((status, nav["title"].as_str()), (StatusCode::OK, Some("Fixture Green")), "{nav}");
    let (code, _) = restarted.terminate().await;
    assert_eq!(code, Some(0));
    // The browser outlived its first worker, so this test process is its parent now and reaps it.
    let pgid = browsers[0].pgid;
    let gone = eventually(Duration::from_secs(10), || {
        browser_worker::browser::process::reap_adopted(pgid);
        group_members(pgid).is_empty()
    });
    assert!(gone.await, "a graceful stop ends the shared browser");
}

/// The warm pool holds ready contexts; when their shared browser dies, the pooled ones go with
/// it and the pool refills in a browser that lives.
#[tokio::test]
async fn the_warm_pool_of_contexts_recovers_from_its_browsers_death() {
    let app = TestApp::start_with(&["--ephemeral-mode", "context", "--warm-pool", "1"]).await;
    let (_, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!(health["ephemeral_mode"], "context", "{health}");
    let full = || async { app.pool_ready().await == 1 };
    assert!(eventually_async(Duration::from_secs(20), full).await, "the pool fills");
    let a = open(&app, "green.html").await;
    let browser = session_of(&app, &a).browser_process().unwrap();
    assert!(eventually_async(Duration::from_secs(20), full).await, "the pool refills");
    browser_worker::browser::process::kill_group(browser.pgid);
    let failed = || async { app.call(Method::GET, &format!("/api/v2/sessions/{a}"), None).await.0 == StatusCode::GONE };
    assert!(eventually_async(Duration::from_secs(20), failed).await, "the session failed with its browser");
    let b = open(&app, "green.html").await;
    let (status, nav) = app.call(Method::GET, &format!("/api/v2/sessions/{b}"), None).await;
    assert_eq!((status, nav["title"].as_str()), (StatusCode::OK, Some("Fixture Green")), "{nav}");
    assert_ne!(session_of(&app, &b).browser_process(), Some(browser), "a new shared browser");
    assert!(eventually_async(Duration::from_secs(20), full).await, "the pool refills in the new browser");
    app.stop().await;
}
