//! A scripted OpenAI-compatible chat API on 127.0.0.1: `POST /v1/chat/completions` records every
//! request body and answers from a script (a queue of replies), else from a mapper that answers a
//! mapping request field by field from the labels it finds in the fenced page data.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A completion whose message content is this text (JSON for mapping requests).
    Content(String),
    /// A completion with a refusal.
    Refusal(String),
    /// An error status with an OpenAI-style error body.
    Status(u16),
    /// Never answers (within any sane timeout).
    Hang,
    /// A mapping answer built from the request (field numbers depend on it).
    Build(fn(&Value) -> Value),
}

/// What the mapper answers for a field label: `(key, question, option, generate)`.
pub type Answer = (Option<&'static str>, Option<&'static str>, Option<&'static str>, bool);

type Mapper = Box<dyn Fn(&str) -> Option<Answer> + Send + Sync>;

struct Shared {
    requests: Mutex<Vec<Value>>,
    script: Mutex<VecDeque<Reply>>,
    mapper: Mapper,
    generated: String,
}

/// A running fake; the server stops when it is dropped.
pub struct FakeLlm {
    /// `http://127.0.0.1:PORT/v1`, for `--llm-base-url`.
    pub base: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeLlm {
    /// Starts a fake that maps labels with `mapper` and answers generation requests with
    /// `generated`.
    pub async fn start(mapper: impl Fn(&str) -> Option<Answer> + Send + Sync + 'static, generated: &str) -> Self {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            mapper: Box::new(mapper),
            generated: generated.to_string(),
        });
        let router = Router::new().route("/v1/chat/completions", post(complete)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { base, shared, server }
    }

    /// Queues replies used before the mapper.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// The worker flags that point the LLM engine at this fake.
    pub fn flags(&self, timeout_secs: &'static str) -> Vec<String> {
        ["--llm-base-url", &self.base, "--llm-model", "fake-model", "--llm-timeout-secs", timeout_secs]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}

/// The `(number, label)` of each field in a mapping request's fenced page data.
pub fn page_fields(body: &Value) -> Vec<(u64, String)> {
    let user = body["messages"][1]["content"].as_str().unwrap_or_default();
    let mut lines = user.lines().skip_while(|l| !l.starts_with("<<<PAGE DATA"));
    lines.next();
    let data: Value = lines.next().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null);
    data["fields"]
        .as_array()
        .map(|fields| {
            fields.iter().map(|f| (f["n"].as_u64().unwrap(), f["label"].as_str().unwrap().to_string())).collect()
        })
        .unwrap_or_default()
}

/// A mapping answer with these entries (for scripts).
pub fn answers(entries: Value) -> Reply {
    Reply::Content(json!({"answers": entries}).to_string())
}

fn completion(message: Value) -> Response {
    Json(json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    }))
    .into_response()
}

async fn complete(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    shared.requests.lock().unwrap().push(body.clone());
    let scripted = shared.script.lock().unwrap().pop_front();
    let reply = match scripted {
        Some(reply) => reply,
        None if body["response_format"].is_null() => Reply::Content(shared.generated.clone()),
        None => {
            let entries: Vec<Value> = page_fields(&body)
                .into_iter()
                .map(|(n, label)| {
                    let (key, question, option, generate) =
                        (shared.mapper)(&label).unwrap_or((None, None, None, false));
                    json!({"field": n, "key": key, "question": question, "option": option,
                           "generate": generate, "confidence": 0.9})
                })
                .collect();
            answers(json!(entries))
        }
    };
    let reply = match reply {
        Reply::Build(build) => answers(build(&body)),
        other => other,
    };
    match reply {
        Reply::Build(_) => unreachable!("built above"),
        Reply::Content(text) => completion(json!({"role": "assistant", "content": text, "refusal": null})),
        Reply::Refusal(text) => completion(json!({"role": "assistant", "content": null, "refusal": text})),
        Reply::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            Json(
                json!({"error": {"message": "scripted failure", "type": "server_error", "param": null, "code": null}}),
            ),
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}
