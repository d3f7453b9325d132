//! Opens a session on a running worker, navigates it, saves a screenshot and closes it.
//!
//! ```sh
//! cargo run --example screenshot -- https://example.com/ page.png
//! ```
//! Reads `API` (default `http://127.0.0.1:8080`) and `KEY` (default: `data/api-key`).

use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "https://example.com/".into());
    let out = args.next().unwrap_or_else(|| "page.png".into());
    let api = std::env::var("API").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = match std::env::var("KEY") {
        Ok(key) => key,
        Err(_) => std::fs::read_to_string("data/api-key")?.trim().to_string(),
    };
    let client = reqwest::Client::new();

    let session: Value = client
        .post(format!("{api}/api/v2/sessions"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = session["session_id"].as_str().ok_or("no session_id")?;
    println!("opened {id} (browser started in {} ms)", session["timing"]["browser_start_ms"]);

    let page: Value = client
        .post(format!("{api}/api/v2/sessions/{id}/navigate"))
        .bearer_auth(&key)
        .json(&json!({ "url": url }))
        .send()
        .await?
        .json()
        .await?;
    println!("navigated: {page}");

    let png =
        client.get(format!("{api}/api/v2/sessions/{id}/screenshot")).bearer_auth(&key).send().await?.bytes().await?;
    std::fs::write(&out, &png)?;
    println!("saved {} bytes to {out}", png.len());

    let closed: Value =
        client.delete(format!("{api}/api/v2/sessions/{id}")).bearer_auth(&key).send().await?.json().await?;
    println!("closed: {closed}");
    Ok(())
}
