//! Browsers run sandboxed as their own user, with limits (the sandbox issue). Run as root (CI),
//! with the browser user `bw-browser` made by `scripts/install-deps.sh`.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestApp, eventually_async, fixtures, group_members, recorded_browsers};

/// `Uid:` (real, effective, saved, filesystem) and other lines of `/proc/<pid>/status`.
fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.trim().to_string())
}

fn pid_of(member: &str) -> i32 {
    member.split_whitespace().next().unwrap().parse().unwrap()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn browser_uid() -> u32 {
    nix::unistd::User::from_name("bw-browser")
        .unwrap()
        .expect("the browser user exists (scripts/install-deps.sh)")
        .uid
        .as_raw()
}

/// The memory and process limits of the cgroup(s) `pid` is in (cgroup v2 or v1).
fn cgroup_limits(pid: i32) -> (Option<u64>, Option<u64>) {
    let read = |path: String| std::fs::read_to_string(path).ok().and_then(|v| v.trim().parse::<u64>().ok());
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path_of = |controller: &str| {
        own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            (controllers == controller || controllers.split(',').any(|c| c == controller)).then(|| path.to_string())
        })
    };
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let dir = format!("/sys/fs/cgroup{}", path_of("").unwrap());
        (read(format!("{dir}/memory.max")), read(format!("{dir}/pids.max")))
    } else {
        let memory = path_of("memory").map(|p| format!("/sys/fs/cgroup/memory{p}/memory.limit_in_bytes"));
        let pids = path_of("pids").map(|p| format!("/sys/fs/cgroup/pids{p}/pids.max"));
        (memory.and_then(read), pids.and_then(read))
    }
}

/// Runs `argv` as the browser user and says whether it succeeded.
async fn as_browser_user(argv: &[&str]) -> bool {
    let status = tokio::process::Command::new("setpriv")
        .args(["--reuid=bw-browser", "--regid=bw-browser", "--clear-groups", "--"])
        .args(argv)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    status.success()
}

/// The nice value of a process (field 19 of `/proc/<pid>/stat`).
fn nice_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split_whitespace().nth(16)?.parse().ok()
}

#[tokio::test]
async fn browsers_and_displays_run_sandboxed_as_the_browser_user() {
    let app = TestApp::start_with(&["--display-mode", "per-session"]).await;
    let (_, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!(
        (health["sandbox"].as_bool(), health["browser_user"].as_str()),
        (Some(true), Some("bw-browser")),
        "{health}"
    );
    assert!(["cgroup1", "cgroup2"].contains(&health["browser_limits"].as_str().unwrap()), "{health}");
    let session = app.create(json!({"url": format!("{}/pages/green.html", fixtures()), "display": true})).await;
    let id = session["session_id"].as_str().unwrap();

    let uid = browser_uid().to_string();
    let groups = recorded_browsers(app.data_dir.path());
    assert_eq!(groups.len(), 3, "browser, Xvfb, x11vnc: {groups:?}");
    let mut renderers = 0;
    for group in &groups {
        let members = group_members(group.pgid);
        assert!(!members.is_empty());
        // Browsers yield the CPU to the worker; the displays a person watches do not.
        let nice = if group.user_data_dir.as_os_str().is_empty() { 0 } else { 5 };
        for member in members.iter().map(|m| pid_of(m)) {
            if let Some(found) = nice_of(member) {
                assert_eq!(found, nice, "{}", cmdline(member));
            }
            let Some(uids) = status_field(member, "Uid:") else { continue };
            assert!(uids.split_whitespace().all(|u| u == uid), "{} runs as {uids}", cmdline(member));
            // No capability on the host (inside the sandbox's own user namespace, the zygote has some).
            let host_ns = std::fs::read_link("/proc/self/ns/user").unwrap();
            if std::fs::read_link(format!("/proc/{member}/ns/user")).ok() == Some(host_ns) {
                assert_eq!(status_field(member, "CapEff:").as_deref(), Some("0000000000000000"), "{}", cmdline(member));
            }
            if cmdline(member).contains("--type=renderer") {
                renderers += 1;
                // Chromium's sandbox: seccomp-bpf filter on, and its own user namespace.
                assert_eq!(status_field(member, "Seccomp:").as_deref(), Some("2"), "renderer {member} without seccomp");
                let own = std::fs::read_link(format!("/proc/{member}/ns/user")).unwrap();
                let browser = std::fs::read_link(format!("/proc/{}/ns/user", group.pgid)).unwrap();
                assert_ne!(own, browser, "renderer {member} shares the browser's user namespace");
            }
        }
    }
    assert!(renderers > 0, "no renderer found");
    // The browser (not Xvfb or x11vnc) is in a cgroup of its own with both limits.
    let browser = groups.iter().find(|g| !g.user_data_dir.as_os_str().is_empty()).unwrap();
    assert_eq!(cgroup_limits(browser.pgid), (Some(2048 * 1024 * 1024), Some(2048)));
    // The page still works as before.
    assert_eq!(app.page_eval(id, "document.title").await, json!("Fixture Green"));
    app.stop().await;
}

#[tokio::test]
async fn the_browser_user_reaches_only_what_it_was_given() {
    let app = TestApp::start().await;
    let data = app.data_dir.path();
    // A persistent profile from before the browser user (a file the worker's user wrote).
    let old = data.join("profiles/p-old/Default");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("Preferences"), "{}").unwrap();
    app.create(json!({"profile_id": "p-old", "url": format!("{}/pages/green.html", fixtures())})).await;
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(old.join("Preferences")).unwrap().uid(), browser_uid(), "the profile was handed over");
    let profile = recorded_browsers(data).pop().unwrap().user_data_dir;
    // What a browser escaping its sandbox could try, as the browser user.
    let attacks: Vec<(String, bool)> = vec![
        (data.join("token-secret").display().to_string(), false),
        (data.join("sessions.redb").display().to_string(), false),
        (data.join("sessions.journal").display().to_string(), false),
        (data.join("profiles.redb").display().to_string(), false),
        (data.join("run").display().to_string(), false),
        (data.display().to_string(), false),
        (data.join("tmp").display().to_string(), false),
        // (Pages and CDP tokens are kept off file: URLs before this: `isolation`.)
        // Its own profile, the one thing it was given.
        (profile.display().to_string(), true),
    ];
    for (path, allowed) in &attacks {
        let read = if Path::new(path).is_dir() { vec!["ls", path.as_str()] } else { vec!["cat", path.as_str()] };
        assert_eq!(as_browser_user(&read).await, *allowed, "{read:?} as the browser user");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_runaway_page_fails_its_session_with_resource_limit_and_others_go_on() {
    let app = TestApp::start_with(&["--browser-memory-mb", "768"]).await;
    let calm = app.create(json!({"url": format!("{}/pages/green.html", fixtures())})).await;
    let calm = calm["session_id"].as_str().unwrap().to_string();
    let hog = app.create(json!({"profile_id": "p-hog", "url": format!("{}/pages/green.html", fixtures())})).await;
    let hog = hog["session_id"].as_str().unwrap().to_string();
    let nav = json!({"url": format!("{}/pages/hog.html", fixtures())});
    let _ = app.call(Method::POST, &format!("/api/v2/sessions/{hog}/navigate"), Some(nav)).await;

    let failed = eventually_async(Duration::from_secs(60), || async {
        let (status, body) = app.call(Method::GET, &format!("/api/v2/sessions/{hog}"), None).await;
        status == StatusCode::GONE && body["error"]["details"]["reason"] == "resource_limit"
    })
    .await;
    assert!(failed, "the runaway session failed with resource_limit");
    let (_, profiles) = app.call(Method::GET, "/api/v1/profiles", None).await;
    let p = profiles["profiles"].as_array().unwrap().iter().find(|p| p["profile_id"] == "p-hog").cloned();
    assert_eq!(p.map(|p| p["consecutive_failures"].clone()), Some(json!(0)), "the page's doing is not the profile's");
    // The other session is untouched.
    assert_eq!(app.page_eval(&calm, "document.title").await, json!("Fixture Green"));
    let nav = json!({"url": format!("{}/pages/blue.html", fixtures())});
    assert_eq!(app.call(Method::POST, &format!("/api/v2/sessions/{calm}/navigate"), Some(nav)).await.0, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn without_cgroups_the_memory_limit_is_per_process() {
    let app = TestApp::start_with(&["--browser-cgroup", "off", "--browser-memory-mb", "4096"]).await;
    let (_, health) = app.call(Method::GET, "/health", None).await;
    assert_eq!(health["browser_limits"], "rlimit", "{health}");
    app.create(json!({"url": format!("{}/pages/green.html", fixtures())})).await;
    let browser = recorded_browsers(app.data_dir.path()).pop().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", browser.pgid)).unwrap();
    let data = limits.lines().find(|l| l.starts_with("Max data size")).unwrap().to_string();
    assert!(data.contains(&(4096u64 * 1024 * 1024).to_string()), "{data}");
    // And no cgroup of its own was made.
    assert_eq!(cgroup_limits(browser.pgid).1.filter(|max| *max == 2048), None);
    app.stop().await;
}
