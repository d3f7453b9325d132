//! The requests a page sends while it submits: what went out (for submission evidence), or what
//! would have gone out (a dry run holds every form submission back and answers it itself).
//!
//! A tap is one extra DevTools connection attached (flat) to the session's page: `Network`
//! events give each request's method, URL, status and timing; `Fetch` pauses every document,
//! XHR and fetch request long enough to read its whole body (file parts included), then sends
//! it on, or in a dry run fulfils the non-`GET`s with a page of its own, so nothing is sent. Only non-`GET` requests are kept (a form's
//! submission, not the page's assets). Bodies stay in memory for the answer to the caller and
//! are never logged.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use utoipa::ToSchema;

use super::BrowserError;

/// Resource types a form submission can be.
const KINDS: &[&str] = &["Document", "XHR", "Fetch"];
/// What a held-back document submission shows instead of the site's answer.
const HELD_PAGE: &str = "<!doctype html><title>Dry run</title><p>browser-worker dry run: this submission was not sent.";

/// A request the page sent while submitting: no values, only the names of the fields.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    /// `Document` (a form posted by navigation), `XHR` or `Fetch`.
    pub resource_type: String,
    /// The answer's HTTP status (`null`: no answer, e.g. the request failed).
    pub status: Option<u16>,
    /// From the request to the end of the answer.
    pub duration_ms: Option<u64>,
    /// Names of the fields sent (form or multipart body in order; JSON paths sorted).
    pub fields: Vec<String>,
    pub body_bytes: usize,
    /// SHA-256 of the body, hex (`null` when the browser did not expose it, e.g. a file part).
    pub body_sha256: Option<String>,
}

/// A field as a held-back request would have sent it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldSent {
    pub name: String,
    /// The value (a file part: `<file NAME>`).
    pub value: String,
}

/// A submission a dry run held back: everything it would have sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldRequest {
    pub method: String,
    pub url: String,
    pub resource_type: String,
    pub fields: Vec<FieldSent>,
    pub body_bytes: usize,
    pub body_sha256: Option<String>,
}

/// What a tap saw.
#[derive(Debug, Default)]
pub struct Tapped {
    /// Requests sent, in order.
    pub sent: Vec<SentRequest>,
    /// Requests held back (dry run), in order.
    pub held: Vec<HeldRequest>,
}

impl Tapped {
    /// The submission among the sent requests: a posted document first, else the largest body.
    pub fn submission(&self) -> Option<&SentRequest> {
        pick(&self.sent, |r| (&r.resource_type, r.body_bytes))
    }

    /// The submission among the held-back requests.
    pub fn held_submission(&self) -> Option<&HeldRequest> {
        pick(&self.held, |r| (&r.resource_type, r.body_bytes))
    }
}

fn pick<T>(requests: &[T], key: impl Fn(&T) -> (&String, usize)) -> Option<&T> {
    requests.iter().find(|r| key(r).0 == "Document").or_else(|| requests.iter().max_by_key(|r| key(r).1))
}

/// A running tap; `stop` ends it and returns what it saw.
pub struct Tap {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Tapped>,
}

impl Tap {
    /// Attaches to page `target` of the browser at `ws_url`; with `hold`, form submissions are
    /// held back. Returns once the browser has confirmed, so nothing the caller does next is
    /// missed.
    pub async fn start(ws_url: &str, target: &str, hold: bool) -> Result<Self, BrowserError> {
        let connect = tokio_tungstenite::connect_async(ws_url);
        let (mut socket, _) = match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(_)) => return Err(BrowserError::Disconnected),
            Err(_) => return Err(BrowserError::Timeout("request tap")),
        };
        let send = |message: Value| Message::Text(message.to_string().into());
        socket
            .send(send(
                json!({"id": 1, "method": "Target.attachToTarget", "params": {"targetId": target, "flatten": true}}),
            ))
            .await
            .map_err(|_| BrowserError::Disconnected)?;
        let session = tokio::time::timeout(Duration::from_secs(10), reply(&mut socket, 1))
            .await
            .map_err(|_| BrowserError::Timeout("request tap"))??["sessionId"]
            .clone();
        // `Fetch` sees whole bodies (file parts included) where `Network` may not: every
        // submission is paused long enough to read it, then sent on (or held back).
        let patterns: Vec<Value> =
            KINDS.iter().map(|k| json!({"resourceType": k, "requestStage": "Request"})).collect();
        let setup = [
            json!({"id": 2, "method": "Network.enable", "params": {"maxPostDataSize": 1_048_576}}),
            json!({"id": 3, "method": "Fetch.enable", "params": {"patterns": patterns}}),
        ];
        for mut message in setup {
            let id = message["id"].as_u64().unwrap_or_default();
            message["sessionId"] = session.clone();
            socket.send(send(message)).await.map_err(|_| BrowserError::Disconnected)?;
            tokio::time::timeout(Duration::from_secs(10), reply(&mut socket, id))
                .await
                .map_err(|_| BrowserError::Timeout("request tap"))??;
        }
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(watch(socket, session, hold, stopped));
        Ok(Self { stop: Some(stop), task })
    }

    /// Ends the tap (its connection closes, so interception ends with it).
    pub async fn stop(mut self) -> Tapped {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap_or_default()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads until the answer to `id`; an error answer is a `Cdp` error.
async fn reply<S>(socket: &mut S, id: u64) -> Result<Value, BrowserError>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else { continue };
        let answer: Value = serde_json::from_str(&text).unwrap_or_default();
        if answer["id"].as_u64() == Some(id) {
            if !answer["error"].is_null() {
                return Err(BrowserError::Cdp(format!("request tap: {}", answer["error"])));
            }
            return Ok(answer["result"].clone());
        }
    }
    Err(BrowserError::Disconnected)
}

/// One request being followed: (its record, when it started, the monotonic clock in seconds).
struct Pending {
    request: SentRequest,
    started: f64,
}

/// Follows the page's requests until `stopped` fires or the connection ends.
async fn watch<S>(mut socket: S, session: Value, hold: bool, mut stopped: oneshot::Receiver<()>) -> Tapped
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + futures::Sink<Message> + Unpin,
{
    let mut tapped = Tapped::default();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    // Bodies read at the `Fetch` pause, by network request id; and the ids held back.
    let mut bodies: HashMap<String, (Vec<FieldSent>, Option<Vec<u8>>)> = HashMap::new();
    let mut held_ids: Vec<String> = Vec::new();
    let mut next_id: u64 = 10;
    loop {
        let message = tokio::select! {
            _ = &mut stopped => break,
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                _ => break,
            },
        };
        let Ok(event) = serde_json::from_str::<Value>(&message) else { continue };
        let params = &event["params"];
        let id = params["requestId"].as_str().unwrap_or_default().to_string();
        match event["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                let request = &params["request"];
                let method = request["method"].as_str().unwrap_or("GET");
                let kind = params["type"].as_str().unwrap_or_default();
                if method == "GET" || !KINDS.contains(&kind) {
                    continue;
                }
                let body = body_of(request);
                let fields = fields_of(content_type(request), &body).into_iter().map(|f| f.name).collect();
                let record = SentRequest {
                    method: method.to_string(),
                    url: request["url"].as_str().unwrap_or_default().to_string(),
                    resource_type: kind.to_string(),
                    status: None,
                    duration_ms: None,
                    fields,
                    body_bytes: body.as_ref().map_or(0, Vec::len),
                    body_sha256: body.as_deref().map(digest),
                };
                let started = params["timestamp"].as_f64().unwrap_or_default();
                if pending.insert(id.clone(), Pending { request: record, started }).is_none() {
                    order.push(id);
                }
            }
            Some("Network.responseReceived") => {
                if let Some(p) = pending.get_mut(&id) {
                    p.request.status = params["response"]["status"].as_u64().map(|s| s as u16);
                }
            }
            Some("Network.loadingFinished" | "Network.loadingFailed") => {
                if let Some(p) = pending.get_mut(&id) {
                    let ended = params["timestamp"].as_f64().unwrap_or(p.started);
                    p.request.duration_ms = Some(((ended - p.started).max(0.0) * 1000.0) as u64);
                }
            }
            Some("Fetch.requestPaused") => {
                let request = &params["request"];
                let method = request["method"].as_str().unwrap_or("GET");
                let kind = params["resourceType"].as_str().unwrap_or_default();
                let network_id = params["networkId"].as_str().unwrap_or_default().to_string();
                let go_on = json!({"method": "Fetch.continueRequest", "params": {"requestId": params["requestId"]}});
                let answer = if method == "GET" {
                    go_on
                } else if !hold {
                    let body = body_of(request);
                    bodies.insert(network_id, (fields_of(content_type(request), &body), body));
                    go_on
                } else {
                    let body = body_of(request);
                    held_ids.push(network_id);
                    tapped.held.push(HeldRequest {
                        method: method.to_string(),
                        url: request["url"].as_str().unwrap_or_default().to_string(),
                        resource_type: kind.to_string(),
                        fields: fields_of(content_type(request), &body),
                        body_bytes: body.as_ref().map_or(0, Vec::len),
                        body_sha256: body.as_deref().map(digest),
                    });
                    let (content_type, page) = if kind == "Document" {
                        ("text/html; charset=utf-8", HELD_PAGE)
                    } else {
                        ("application/json", "{}")
                    };
                    json!({"method": "Fetch.fulfillRequest", "params": {
                        "requestId": params["requestId"], "responseCode": 200,
                        "responseHeaders": [{"name": "Content-Type", "value": content_type}],
                        "body": base64::engine::general_purpose::STANDARD.encode(page)}})
                };
                next_id += 1;
                let mut answer = answer;
                answer["id"] = next_id.into();
                answer["sessionId"] = session.clone();
                if socket.send(Message::Text(answer.to_string().into())).await.is_err() {
                    break;
                }
            }
            _ => {}
        }
    }
    // A held-back request shows up to `Network` too, though it never left.
    for id in order.into_iter().filter(|id| !held_ids.contains(id)) {
        let Some(Pending { mut request, .. }) = pending.remove(&id) else { continue };
        if let Some((fields, body)) = bodies.remove(&id) {
            request.fields = fields.into_iter().map(|f| f.name).collect();
            request.body_bytes = body.as_ref().map_or(0, Vec::len);
            request.body_sha256 = body.as_deref().map(digest);
        }
        tapped.sent.push(request);
    }
    tapped
}

/// The request's `Content-Type` header (any case).
fn content_type(request: &Value) -> String {
    let headers = request["headers"].as_object();
    headers
        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-type")))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// The request's body as the browser exposes it: `postData`, else the `postDataEntries`.
fn body_of(request: &Value) -> Option<Vec<u8>> {
    if let Some(text) = request["postData"].as_str() {
        return Some(text.as_bytes().to_vec());
    }
    let entries = request["postDataEntries"].as_array()?;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut body = Vec::new();
    for entry in entries {
        body.extend(engine.decode(entry["bytes"].as_str()?).ok()?);
    }
    Some(body)
}

fn digest(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// The fields of a body: urlencoded, multipart (files as `<file NAME>`) or JSON (dotted paths,
/// keys sorted).
pub fn fields_of(content_type: String, body: &Option<Vec<u8>>) -> Vec<FieldSent> {
    let Some(body) = body else { return Vec::new() };
    let kind = content_type.to_ascii_lowercase();
    let field = |name: &str, value: String| FieldSent { name: name.to_string(), value };
    if kind.starts_with("application/x-www-form-urlencoded") {
        url::form_urlencoded::parse(body).map(|(k, v)| field(&k, v.into_owned())).collect()
    } else if kind.starts_with("multipart/form-data") {
        let boundary = content_type.split(';').find_map(|p| p.trim().strip_prefix("boundary=")).unwrap_or_default();
        multipart(&String::from_utf8_lossy(body), boundary.trim_matches('"'))
    } else if kind.contains("json") {
        let mut out = Vec::new();
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            flatten("", &value, &mut out);
        }
        out
    } else {
        Vec::new()
    }
}

/// The parts of a multipart body: `name` and the text, or `<file NAME>` for a file part.
fn multipart(body: &str, boundary: &str) -> Vec<FieldSent> {
    if boundary.is_empty() {
        return Vec::new();
    }
    let quoted = |header: &str, key: &str| {
        let start = header.find(&format!("{key}=\""))? + key.len() + 2;
        Some(header[start..start + header[start..].find('"')?].to_string())
    };
    body.split(&format!("--{boundary}"))
        .filter_map(|part| {
            let (head, value) = part.split_once("\r\n\r\n")?;
            let disposition = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
            let name = quoted(disposition, "name")?;
            let value = match quoted(disposition, "filename") {
                Some(file) => format!("<file {file}>"),
                None => value.strip_suffix("\r\n").unwrap_or(value).to_string(),
            };
            Some(FieldSent { name, value })
        })
        .collect()
}

/// JSON leaves as `a.b[0].c` = value (strings bare, others as JSON).
fn flatten(path: &str, value: &Value, out: &mut Vec<FieldSent>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                flatten(&path, child, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), child, out);
            }
        }
        Value::String(s) => out.push(FieldSent { name: path.to_string(), value: s.clone() }),
        other => out.push(FieldSent { name: path.to_string(), value: other.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (content type, body, the fields as name=value).
    const BODIES: &[(&str, &str, &[&str])] = &[
        (
            "application/x-www-form-urlencoded",
            "first_name=Ada&email=ada%40example.com&q%5B1%5D=yes",
            &["first_name=Ada", "email=ada@example.com", "q[1]=yes"],
        ),
        (
            "multipart/form-data; boundary=----X",
            "------X\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda Lovelace\r\n------X\r\nContent-Disposition: form-data; name=\"resume\"; filename=\"cv.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n------X--\r\n",
            &["name=Ada Lovelace", "resume=<file cv.pdf>"],
        ),
        (
            "application/json",
            r#"{"candidate":{"email":"a@b.c","answers":[true,"No"]}}"#,
            // JSON objects are read with their keys sorted.
            &["candidate.answers[0]=true", "candidate.answers[1]=No", "candidate.email=a@b.c"],
        ),
        ("text/plain", "whatever", &[]),
    ];

    #[test]
    fn the_fields_of_a_submission_are_read_from_its_body() {
        for (kind, body, expected) in BODIES {
            let fields = fields_of(kind.to_string(), &Some(body.as_bytes().to_vec()));
            let got: Vec<String> = fields.iter().map(|f| format!("{}={}", f.name, f.value)).collect();
            assert_eq!(got, *expected, "{kind}");
        }
        assert!(fields_of("application/json".into(), &None).is_empty());
    }

    #[test]
    fn the_submission_is_the_posted_document_else_the_largest_body() {
        let sent = |kind: &str, bytes: usize| SentRequest {
            method: "POST".into(),
            url: format!("http://x/{kind}/{bytes}"),
            resource_type: kind.into(),
            status: None,
            duration_ms: None,
            fields: vec![],
            body_bytes: bytes,
            body_sha256: None,
        };
        let tapped = Tapped { sent: vec![sent("XHR", 10), sent("XHR", 900), sent("Fetch", 50)], held: vec![] };
        assert_eq!(tapped.submission().map(|r| r.url.as_str()), Some("http://x/XHR/900"));
        let tapped = Tapped { sent: vec![sent("XHR", 900), sent("Document", 5)], held: vec![] };
        assert_eq!(tapped.submission().map(|r| r.url.as_str()), Some("http://x/Document/5"));
        assert!(Tapped::default().submission().is_none());
    }
}
