//! Steps one session through the bundled demo job form (`examples/demo/`), printing each step.
//!
//! ```sh
//! make demo            # or: cargo run --example demo
//! ```
//! Starts the worker in this process (127.0.0.1, ephemeral port, a temporary data dir), serves the
//! demo pages on another ephemeral port, then drives the HTTP API like an orchestrator would:
//! create → navigate → {analyze → fill → submit} until `submitted` → delete. The demo server prints
//! what the "employer" received. Needs Chromium (`scripts/install-deps.sh`); leaves none behind.
//!
//! `cargo run --example demo -- serve [127.0.0.1:8000]` only serves the demo board (for
//! `examples/task.rs` or your own client against a worker you started) until Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Multipart, State};
use axum::response::Redirect;
use axum::routing::post;
use base64::Engine;
use browser_worker::{Config, Server};
use clap::Parser;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

const KEY: &str = "demo-key-0123456789abcdef";

/// Applications the demo site received, by number: field name → value (files as `name (bytes)`).
#[derive(Default)]
struct Site {
    applications: Mutex<Vec<BTreeMap<String, String>>>,
}

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo")
}

async fn read_fields(mut form: Multipart) -> Result<BTreeMap<String, String>, String> {
    let mut fields = BTreeMap::new();
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        let file = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        let value = match file {
            Some(file) => format!("{file} ({} bytes)", bytes.len()),
            None => String::from_utf8_lossy(&bytes).into_owned(),
        };
        fields.insert(name, value);
    }
    Ok(fields)
}

async fn step1(State(site): State<Arc<Site>>, form: Multipart) -> Result<Redirect, String> {
    let fields = read_fields(form).await?;
    let mut applications = site.applications.lock().unwrap();
    applications.push(fields);
    Ok(Redirect::to(&format!("/step2.html?app={}", applications.len())))
}

async fn submit(State(site): State<Arc<Site>>, form: Multipart) -> Result<Redirect, String> {
    let fields = read_fields(form).await?;
    let number: usize = fields.get("app").and_then(|n| n.parse().ok()).ok_or("no application number")?;
    let mut applications = site.applications.lock().unwrap();
    let application = applications.get_mut(number.wrapping_sub(1)).ok_or("unknown application")?;
    application.extend(fields);
    let id = format!("DEMO-{}", 1000 + number);
    println!("  [demo site] received {id}: {application:?}");
    Ok(Redirect::to(&format!("/confirmation.html?id={id}")))
}

/// Serves `examples/demo/` and the two form endpoints on 127.0.0.1; returns the base URL.
async fn serve_demo_site(site: Arc<Site>, bind: &str) -> Result<String, Error> {
    let router = Router::new()
        .route("/apply/step1", post(step1))
        .route("/apply/submit", post(submit))
        .with_state(site)
        .fallback_service(tower_http::services::ServeDir::new(demo_dir()));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(base)
}

/// A small client of the worker's session API.
struct Worker {
    base: String,
    http: reqwest::Client,
}

impl Worker {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status}: {}", body["error"]).into());
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, Error> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

/// The application loop: analyze → fill (on a form) → submit, until the page confirms.
async fn apply(worker: &Worker, id: &str, applicant: &Value, resume: &Value) -> Result<Value, Error> {
    let session = format!("/api/v2/sessions/{id}");
    for step in 1..=10 {
        let analysis = worker.post(&format!("{session}/analyze"), json!({})).await?;
        let fields = analysis["fields"].as_array().map_or(0, Vec::len);
        println!(
            "step {step}: analyze → platform {}, page_kind {}, {fields} fields{}",
            analysis["platform"],
            analysis["page_kind"],
            analysis["step"]
                .as_object()
                .map(|s| format!(", step {} of {}", s["index"], s["total"]))
                .unwrap_or_default()
        );
        if analysis["page_kind"] == "application_form" {
            let body = json!({
                "user_data": applicant["user_data"], "qa_answers": applicant["qa_answers"],
                "resume": resume, "humanize": "fast",
            });
            let report = worker.post(&format!("{session}/fill"), body).await?;
            for field in report["filled_fields"].as_array().into_iter().flatten() {
                let value = field["value"].as_str().map_or_else(|| field["value"].to_string(), str::to_string);
                println!(
                    "        fill → {:<45} = {value:<40} ({})",
                    field["label"].as_str().unwrap_or("?"),
                    field["source"]
                );
            }
            for key in ["missing_required", "errors"] {
                if report[key].as_array().is_some_and(|a| !a.is_empty()) {
                    println!("        fill → {key}: {}", report[key]);
                }
            }
        }
        let answer = worker.post(&format!("{session}/submit"), json!({"action": "auto"})).await?;
        println!(
            "        submit → clicked {}, outcome {}, now {}",
            answer["clicked"]["text"], answer["outcome"], answer["page_kind"]
        );
        match answer["outcome"].as_str() {
            Some("submitted") => return Ok(answer),
            Some("next_step") => {}
            _ => return Err(format!("unexpected submit answer: {answer}").into()),
        }
    }
    Err("no confirmation after 10 steps".into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("serve") {
        let bind = args.next().unwrap_or_else(|| "127.0.0.1:8000".into());
        let demo = serve_demo_site(Arc::new(Site::default()), &bind).await?;
        println!("demo job board on {demo}/ (resume at {demo}/resume.pdf); Ctrl-C stops it");
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }
    let site = Arc::new(Site::default());
    let demo = serve_demo_site(site.clone(), "127.0.0.1:0").await?;
    println!("demo job board on {demo}");

    // The worker's pages reach loopback only at listed addresses: list the demo board.
    let data_dir = tempfile::tempdir()?;
    let board = demo.trim_start_matches("http://").to_string();
    let argv =
        ["browser-worker", "--bind", "127.0.0.1:0", "--api-keys", KEY, "--log", "warn", "--egress-allow", &board];
    let config = Config::try_parse_from(
        argv.iter().copied().chain(["--data-dir", data_dir.path().to_str().ok_or("temp dir")?]),
    )?
    .validated()?;
    let server = Server::start(config, vec![KEY.into()]).await?;
    let worker = Worker { base: format!("http://{}", server.addr), http: reqwest::Client::new() };
    println!("worker on {}", worker.base);

    let result = run(&worker, &demo).await;
    server.stop().await;
    println!("worker stopped");
    let answer = result?;
    println!(
        "submitted: confirmation id {}, evidence {}, message {}",
        answer["confirmation"]["confirmation_id"],
        answer["confirmation"]["evidence"],
        answer["confirmation"]["message"]
    );
    if site.applications.lock().unwrap().is_empty() {
        return Err("the demo site received nothing".into());
    }
    Ok(())
}

async fn run(worker: &Worker, demo: &str) -> Result<Value, Error> {
    let applicant: Value = serde_json::from_str(&std::fs::read_to_string(demo_dir().join("applicant.json"))?)?;
    let resume = json!({
        "filename": "resume.pdf",
        "content_base64": base64::engine::general_purpose::STANDARD.encode(std::fs::read(demo_dir().join("resume.pdf"))?),
    });

    let session = worker.post("/api/v2/sessions", json!({"humanize": "fast"})).await?;
    let id = session["session_id"].as_str().ok_or("no session_id")?.to_string();
    println!("session {id} opened (browser started in {} ms)", session["timing"]["browser_start_ms"]);
    let result = async {
        let page = worker.post(&format!("/api/v2/sessions/{id}/navigate"), json!({"url": format!("{demo}/")})).await?;
        println!("navigated to {} ({})", page["current_url"], page["title"]);
        apply(worker, &id, &applicant, &resume).await
    }
    .await;
    let closed = worker.call(reqwest::Method::DELETE, &format!("/api/v2/sessions/{id}"), None).await?;
    println!(
        "session closed: state {}, {} ms, artifacts {}",
        closed["state"], closed["duration_ms"], closed["artifacts"]
    );
    result
}
