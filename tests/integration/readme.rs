//! The README's curl walkthrough works verbatim against a live worker.

use crate::support::{KEY, TestApp, fixtures};

/// The first ```sh block after the "## Walkthrough" heading.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Walkthrough").expect("README has a Walkthrough")..];
    let start = section.find("```sh\n").unwrap() + "```sh\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_string()
}

#[tokio::test]
async fn the_readme_walkthrough_runs_verbatim() {
    let app = TestApp::start().await;
    let cwd = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &walkthrough()])
        .current_dir(cwd.path())
        .env("API", &app.base)
        .env("KEY", KEY)
        .env("URL", format!("{}/pages/green.html", fixtures()))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "walkthrough failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("\"title\":\"Fixture Green\""), "{stdout}");
    assert!(stdout.contains("\"state\":\"closed\""), "{stdout}");
    let png = std::fs::read(cwd.path().join("page.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "page.png is a PNG");
    assert!(app.browsers().is_empty());
    app.stop().await;
}
