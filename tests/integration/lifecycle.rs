//! The worker binary as operators run it: bad configuration, SIGTERM with open sessions,
//! and a `kill -9` whose orphaned browsers the next start reaps.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{WorkerProcess, eventually, group_members, recorded_browsers};
use browser_worker::browser::process::reap_adopted;

#[tokio::test]
async fn bad_configuration_exits_2_with_one_line() {
    for (name, value) in [
        ("BW_MAX_SESSIONS", "many"),
        ("BW_MAX_SESSIONS", "0"),
        ("BW_BIND", "nowhere"),
        ("BW_CHROMIUM_PATH", "/nonexistent/chromium"),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_browser-worker"))
            .env("BW_DATA_DIR", crate::support::data_dir().path())
            .env(name, value)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}={value} printed: {stderr}");
        assert!(stderr.contains("invalid configuration"), "{stderr}");
    }
}

#[tokio::test]
async fn sigterm_closes_every_session_and_exits_0() {
    let data = crate::support::data_dir();
    let worker = WorkerProcess::spawn(data.path(), &[("BW_SHUTDOWN_GRACE_SECS", "10")]).await;
    worker.create().await;
    worker.create().await;
    let browsers = recorded_browsers(data.path());
    assert_eq!(browsers.len(), 2);
    let (code, _) = worker.terminate().await;
    assert_eq!(code, Some(0), "exits 0 within the grace period");
    for browser in &browsers {
        reap_adopted(browser.pgid);
        assert!(group_members(browser.pgid).is_empty(), "left behind: {:?}", group_members(browser.pgid));
        assert!(!browser.user_data_dir.exists());
    }
    assert!(recorded_browsers(data.path()).is_empty());
}

#[tokio::test]
async fn a_restart_without_session_records_reaps_orphaned_browsers() {
    let data = crate::support::data_dir();
    let mut worker = WorkerProcess::spawn(data.path(), &[]).await;
    worker.create().await;
    let orphan = recorded_browsers(data.path()).pop().expect("a recorded browser");
    kill(Pid::from_raw(worker.child.id().unwrap() as i32), Signal::SIGKILL).unwrap();
    worker.child.wait().await.unwrap();
    assert!(!group_members(orphan.pgid).is_empty(), "the orphan outlives the killed worker");
    // Without its session record, nothing is re-attached: the processes are orphans.
    crate::support::forget_session_records(data.path());

    let restarted = WorkerProcess::spawn(data.path(), &[]).await;
    let gone = eventually(Duration::from_secs(5), || {
        reap_adopted(orphan.pgid);
        group_members(orphan.pgid).is_empty()
    })
    .await;
    assert!(gone, "orphan still running: {:?}", group_members(orphan.pgid));
    assert!(!orphan.user_data_dir.exists(), "the orphan's temp profile is removed");
    assert!(recorded_browsers(data.path()).is_empty());
    assert_eq!(restarted.terminate().await.0, Some(0));
}

#[tokio::test]
async fn a_generated_key_is_stored_privately_and_printed_once() {
    use std::os::unix::fs::PermissionsExt;
    let data = crate::support::data_dir();
    let mut printed = Vec::new();
    for _ in 0..2 {
        let mut command = WorkerProcess::command(data.path());
        command.env_remove("BW_API_KEYS");
        let (code, stdout) = WorkerProcess::start(command).await.terminate().await;
        assert_eq!(code, Some(0));
        printed.push(stdout);
    }
    let key = std::fs::read_to_string(data.path().join("api-key")).unwrap().trim().to_string();
    assert!(key.len() >= 32);
    assert_eq!(std::fs::metadata(data.path().join("api-key")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(printed[0].contains(&key), "the first start prints the key: {:?}", printed[0]);
    assert!(!printed[1].contains(&key), "a restart does not print it again");
}

#[tokio::test]
async fn two_workers_cannot_share_a_data_dir() {
    let first = crate::support::TestApp::start().await;
    let config = crate::support::test_config(first.data_dir.path(), &[]);
    let second = browser_worker::Server::start(config, vec![crate::support::KEY.into()]).await;
    let error = format!("{:#}", second.err().expect("the second worker is refused"));
    assert!(error.contains("in use by another browser-worker"), "{error}");
    first.stop().await;
}
