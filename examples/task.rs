//! The V1 one-call application (`POST /api/v1/tasks`) against a running worker; prints the
//! `TaskResult`.
//!
//! ```sh
//! BW_URL=http://127.0.0.1:8080 BW_KEY=$(cat data/api-key) \
//!   cargo run --example task -- https://jobs.example.com/apply/123 https://files.example.com/resume.pdf
//! ```
//! The applicant is `examples/demo/applicant.json` (or the file in `BW_APPLICANT`). Optional:
//! `BW_CALLBACK_URL` and `BW_CALLBACK_TOKEN` for webhooks, `BW_PROFILE_ID`, `BW_MODE`
//! (`autopilot` or `copilot`). The call blocks until the task is done.

use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let job_url = args.next().ok_or("usage: task <job_url> [resume_file_url]")?;
    let resume_url = args.next();
    let api = std::env::var("BW_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = match std::env::var("BW_KEY") {
        Ok(key) => key,
        Err(_) => std::fs::read_to_string("data/api-key")?.trim().to_string(),
    };
    let applicant_file = std::env::var("BW_APPLICANT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo/applicant.json").into());
    let applicant: Value = serde_json::from_str(&std::fs::read_to_string(applicant_file)?)?;
    let env = |name: &str| std::env::var(name).ok();

    let task = json!({
        "task_id": format!("example-{}", uuid::Uuid::new_v4()),
        "profile_id": env("BW_PROFILE_ID"),
        "job_url": job_url,
        "user_data": applicant["user_data"],
        "qa_answers": applicant["qa_answers"],
        "resume_file_url": resume_url,
        "mode": env("BW_MODE").unwrap_or_else(|| "autopilot".into()),
        "callback_url": env("BW_CALLBACK_URL"),
        "callback_token": env("BW_CALLBACK_TOKEN"),
        "policy": {"timeout_seconds": 300, "save_artifacts": true},
    });
    // Drop the options that were not given: the worker refuses `null` where it wants a string.
    let task: serde_json::Map<String, Value> = task
        .as_object()
        .ok_or("task")?
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let response = reqwest::Client::new()
        .post(format!("{api}/api/v1/tasks"))
        .bearer_auth(&key)
        .timeout(std::time::Duration::from_secs(330))
        .json(&task)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !status.is_success() {
        return Err(format!("{status}: {}", body["error"]["message"]).into());
    }
    let verdict = match (body["success"].as_bool(), body["next_action"].as_str()) {
        (Some(true), _) => format!("submitted, confirmation {}", body["confirmation_id"]),
        (_, Some("needs_human")) => format!("needs a person (session {} stays open)", body["session_id"]),
        (_, next) => format!("not submitted: {} (next action {next:?})", body["error"]),
    };
    eprintln!("{verdict}");
    Ok(())
}
