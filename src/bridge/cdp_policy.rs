//! What a CDP passthrough client may send to its session's browser.
//!
//! Every client message is parsed first and judged on what was parsed: an allow-list of
//! domains and methods (`RULES`), URLs limited to web schemes, downloads kept in the session's
//! own directory, file uploads only from the session's own files. What is forwarded is the
//! message re-serialised from the parsed, checked value (`id`, `method`, `params`,
//! `sessionId`), so escapes, duplicated keys or extra fields cannot make the browser run
//! something other than what was checked. Binary frames are never forwarded.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value, json};

/// How a method is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Forwarded as is.
    Allow,
    /// Forwarded when `params[<name>]` is a web URL (normalised before forwarding).
    Url(&'static str),
    /// Download behaviour: the directory is always the session's own.
    Downloads,
    /// File uploads: only files under the session's own directory.
    Files,
    /// Target attachment: only the flat protocol (messages of attached targets then pass
    /// through this filter too; the nested `sendMessageToTarget` form would not).
    Flatten,
    /// A new browser context: never with a proxy of its own (it would send the context's
    /// traffic around the egress proxy: its rules and the session's upstream proxy).
    Context,
    /// Refused with an error answer.
    Deny,
}

/// Domains whose every method is allowed unless `RULES` says otherwise. Anything not listed
/// here or in `RULES` is refused: new protocol domains are closed until someone opens them.
const DOMAINS: &[&str] = &[
    "Accessibility",
    "Animation",
    "Audits",
    "Autofill",
    "CSS",
    "CacheStorage",
    "Console",
    "DOM",
    "DOMDebugger",
    "DOMSnapshot",
    "DOMStorage",
    "Debugger",
    "DeviceOrientation",
    "Emulation",
    "EventBreakpoints",
    "Fetch",
    "HeadlessExperimental",
    "HeapProfiler",
    "IO",
    "IndexedDB",
    "Input",
    "Inspector",
    "LayerTree",
    "Log",
    "Media",
    "Network",
    "Overlay",
    "Page",
    "Performance",
    "PerformanceTimeline",
    "Preload",
    "Profiler",
    "Runtime",
    "Schema",
    "Security",
    "ServiceWorker",
    "Storage",
    "Tracing",
    "WebAudio",
    "WebAuthn",
];

/// Methods with a rule of their own (exact names), checked before `DOMAINS`.
const RULES: &[(&str, Rule)] = &[
    // Browser-level: only what Playwright and Puppeteer need to attach and work.
    ("Browser.getVersion", Rule::Allow),
    ("Browser.getWindowForTarget", Rule::Allow),
    ("Browser.getWindowBounds", Rule::Allow),
    ("Browser.setWindowBounds", Rule::Allow),
    ("Browser.grantPermissions", Rule::Allow),
    ("Browser.resetPermissions", Rule::Allow),
    ("Browser.setPermission", Rule::Allow),
    ("Browser.cancelDownload", Rule::Allow),
    ("Browser.setDownloadBehavior", Rule::Downloads),
    // Targets of the session's own browser.
    ("Target.getTargets", Rule::Allow),
    ("Target.getTargetInfo", Rule::Allow),
    ("Target.setDiscoverTargets", Rule::Allow),
    ("Target.activateTarget", Rule::Allow),
    ("Target.closeTarget", Rule::Allow),
    ("Target.detachFromTarget", Rule::Allow),
    ("Target.getBrowserContexts", Rule::Allow),
    ("Target.createBrowserContext", Rule::Context),
    ("Target.disposeBrowserContext", Rule::Allow),
    ("Target.attachToBrowserTarget", Rule::Allow),
    ("Target.autoAttachRelated", Rule::Allow),
    ("Target.createTarget", Rule::Url("url")),
    ("Target.attachToTarget", Rule::Flatten),
    ("Target.setAutoAttach", Rule::Flatten),
    // Page and network calls that name a URL or a file.
    ("Page.navigate", Rule::Url("url")),
    ("Network.loadNetworkResource", Rule::Url("url")),
    ("Fetch.continueRequest", Rule::Url("url")),
    ("Page.setDownloadBehavior", Rule::Downloads),
    ("DOM.setFileInputFiles", Rule::Files),
    // Inside allowed domains, yet reaching past the page: crashing the browser, exposing the
    // protocol to page scripts, reading the host's files or processes.
    ("Page.crash", Rule::Deny),
    ("Target.exposeDevToolsProtocol", Rule::Deny),
    ("Target.sendMessageToTarget", Rule::Deny),
    ("Target.setRemoteLocations", Rule::Deny),
];

/// The URL schemes a client may open: web pages, inline documents and the blank page.
fn web_url(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let ok = match url.scheme() {
        "http" | "https" | "data" | "blob" => true,
        // Other about: pages are Chromium's internal pages under another name.
        "about" => url.path() == "blank",
        _ => false,
    };
    ok.then(|| url.to_string())
}

/// What to do with one client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send this text to the browser.
    Forward(String),
    /// Answer the client with this text; nothing reaches the browser.
    Refuse(String),
}

/// The rules for one session's passthrough.
#[derive(Debug, Clone)]
pub struct CdpPolicy {
    /// Where downloads go (inside the session's files, removed with it).
    pub downloads_dir: PathBuf,
    /// Files a client may put into file inputs (the session's own files).
    pub files_dir: PathBuf,
}

impl CdpPolicy {
    /// Judges one text message from the client as the bridge does without a scope (the tests'
    /// view of `parse`).
    #[cfg(test)]
    fn judge(&self, text: &str) -> Verdict {
        match self.parse(text) {
            Ok(message) => Verdict::Forward(message.to_string()),
            Err(refusal) => refusal,
        }
    }

    /// The checked message to forward, as parsed and rewritten (for a scope to judge next), or
    /// the refusal.
    pub fn parse(&self, text: &str) -> Result<Value, Verdict> {
        let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
            return Err(refuse(&Value::Null, None, -32700, "a CDP message must be a JSON object"));
        };
        let id = message.remove("id").unwrap_or(Value::Null);
        let session = message.remove("sessionId");
        if !id.is_u64() {
            return Err(refuse(&id, session.as_ref(), -32600, "a CDP message needs a non-negative integer id"));
        }
        if session.as_ref().is_some_and(|s| !s.is_string()) {
            return Err(refuse(&id, None, -32600, "sessionId must be a string"));
        }
        let Some(Value::String(method)) = message.remove("method") else {
            return Err(refuse(&id, session.as_ref(), -32600, "a CDP message needs a method name"));
        };
        let mut params = match message.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            Some(_) => return Err(refuse(&id, session.as_ref(), -32602, "params must be an object")),
        };
        if let Err(why) = self.check(&method, &mut params) {
            metrics::counter!("bw_cdp_refused_total").increment(1);
            return Err(refuse(&id, session.as_ref(), -32601, &why));
        }
        let mut forward = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            forward["sessionId"] = session;
        }
        Ok(forward)
    }

    /// Applies `method`'s rule, rewriting `params` where the rule says so.
    fn check(&self, method: &str, params: &mut Map<String, Value>) -> Result<(), String> {
        let not_allowed = || format!("{method} is not allowed through the CDP passthrough");
        let rule = match RULES.iter().find(|(name, _)| *name == method) {
            Some((_, rule)) => *rule,
            None => match method.split_once('.') {
                Some((domain, name)) if DOMAINS.contains(&domain) && is_identifier(name) => Rule::Allow,
                _ => Rule::Deny,
            },
        };
        match rule {
            Rule::Allow => Ok(()),
            Rule::Deny => Err(not_allowed()),
            Rule::Url(key) => {
                let url = params.get(key).and_then(Value::as_str).and_then(web_url);
                let url = url.ok_or_else(|| format!("{method}: only http(s), data, blob and about:blank URLs"))?;
                params.insert(key.to_string(), Value::String(url));
                Ok(())
            }
            Rule::Downloads => {
                let behavior = params.get("behavior").and_then(Value::as_str).unwrap_or("default");
                let behavior = match behavior {
                    "deny" => "deny",
                    "allowAndName" => "allowAndName",
                    _ => "allow",
                };
                params.insert("behavior".into(), behavior.into());
                params.insert("downloadPath".into(), self.downloads_dir.display().to_string().into());
                Ok(())
            }
            Rule::Files => {
                let files = params.get("files").and_then(Value::as_array).ok_or_else(not_allowed)?;
                let inside = |file: &Value| file.as_str().is_some_and(|f| within(Path::new(f), &self.files_dir));
                if files.iter().all(inside) {
                    Ok(())
                } else {
                    Err(format!("{method}: only files of this session ({}) can be chosen", self.files_dir.display()))
                }
            }
            Rule::Context => match ["proxyServer", "proxyBypassList", "originsWithUniversalNetworkAccess"]
                .iter()
                .find(|key| params.contains_key(**key))
            {
                Some(key) => Err(format!(
                    "{method}: {key} is not allowed (the session's traffic leaves through its egress proxy)"
                )),
                None => Ok(()),
            },
            Rule::Flatten => {
                if params.get("flatten") == Some(&Value::Bool(true)) {
                    Ok(())
                } else {
                    Err(format!("{method}: only the flat protocol (\"flatten\": true) is supported"))
                }
            }
        }
    }
}

/// A method name part made of letters only (no escapes or separators survive parsing anyway,
/// but the browser's own dispatcher must see exactly a name it knows).
fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `path` is absolute, has no `..`, and lies under `dir`.
fn within(path: &Path, dir: &Path) -> bool {
    path.is_absolute()
        && path.components().all(|c| !matches!(c, Component::ParentDir | Component::CurDir))
        && path.starts_with(dir)
        && path != dir
}

/// The error answer to a refused message; every refusal's message starts with `browser-worker:`,
/// so that a client (and `make fuzz`) can tell it from the browser's own errors.
fn refuse(id: &Value, session: Option<&Value>, code: i64, message: &str) -> Verdict {
    let mut reply = json!({"id": id, "error": {"code": code, "message": format!("browser-worker: {message}")}});
    if let Some(session) = session {
        reply["sessionId"] = session.clone();
    }
    Verdict::Refuse(reply.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CdpPolicy {
        CdpPolicy {
            downloads_dir: "/data/sessions/files-a/downloads".into(),
            files_dir: "/data/sessions/files-a".into(),
        }
    }

    /// (message, forwarded?) — attacks as data: each must be refused.
    const CASES: &[(&str, bool)] = &[
        (r#"{"id":1,"method":"Page.navigate","params":{"url":"https://example.com/"}}"#, true),
        (r#"{"id":1,"method":"Runtime.evaluate","params":{"expression":"1"},"sessionId":"S"}"#, true),
        (r#"{"id":1,"method":"Target.setAutoAttach","params":{"autoAttach":true,"flatten":true}}"#, true),
        (r#"{"id":1,"method":"Target.createTarget","params":{"url":"about:blank"}}"#, true),
        (r#"{"id":1,"method":"Browser.getVersion"}"#, true),
        (r#"{"id":1,"method":"Target.createBrowserContext","params":{"disposeOnDetach":true}}"#, true),
        (r#"{"id":1,"method":"Target.createBrowserContext","params":{"proxyServer":"direct://"}}"#, false),
        (r#"{"id":1,"method":"Target.createBrowserContext","params":{"proxyBypassList":"<-loopback>"}}"#, false),
        (
            r#"{"id":1,"method":"Target.createBrowserContext","params":{"originsWithUniversalNetworkAccess":["*"]}}"#,
            false,
        ),
        (r#"{"id":1,"method":"Browser.close"}"#, false),
        (r#"{"id":1,"method":"Browser.clos\u0065"}"#, false),
        (r#"{"id":1,"method":"Browser.crash"}"#, false),
        (r#"{"id":1,"method":"Browser.crashGpuProcess"}"#, false),
        (r#"{"id":1,"method":"Browser.getBrowserCommandLine"}"#, false),
        (r#"{"id":1,"method":"Page.crash"}"#, false),
        (r#"{"id":1,"method":"Page.navigate","method":"Browser.close"}"#, false),
        (r#"{"id":1,"method":"Browser.close","method":"Page.enable"}"#, true),
        (r#"{"id":1,"method":"Page.navigate","params":{"url":"file:///etc/passwd"}}"#, false),
        (r#"{"id":1,"method":"Page.navigate","params":{"url":" FILE:///etc/passwd"}}"#, false),
        (r#"{"id":1,"method":"Page.navigate","params":{"url":"chrome://settings"}}"#, false),
        (r#"{"id":1,"method":"Page.navigate","params":{"url":"about:version"}}"#, false),
        (r#"{"id":1,"method":"Page.navigate","params":{"url":"view-source:https://example.com/"}}"#, false),
        (r#"{"id":1,"method":"Target.createTarget","params":{"url":"file:///data/api-key"}}"#, false),
        (
            r#"{"id":1,"method":"Target.createTarget","params":{"url":"devtools://devtools/bundled/inspector.html"}}"#,
            false,
        ),
        (r#"{"id":1,"method":"Network.loadNetworkResource","params":{"url":"file:///data/api-key"}}"#, false),
        (r#"{"id":1,"method":"Target.exposeDevToolsProtocol","params":{"targetId":"T"}}"#, false),
        (r#"{"id":1,"method":"Target.sendMessageToTarget","params":{"message":"{}"}}"#, false),
        (r#"{"id":1,"method":"Target.attachToTarget","params":{"targetId":"T"}}"#, false),
        (r#"{"id":1,"method":"Target.setRemoteLocations","params":{"locations":[]}}"#, false),
        (r#"{"id":1,"method":"Tethering.bind","params":{"port":9222}}"#, false),
        (r#"{"id":1,"method":"SystemInfo.getProcessInfo"}"#, false),
        (r#"{"id":1,"method":"Extensions.loadUnpacked","params":{"path":"/tmp/x"}}"#, false),
        (r#"{"id":1,"method":"DOM.setFileInputFiles","params":{"files":["/data/api-key"]}}"#, false),
        (
            r#"{"id":1,"method":"DOM.setFileInputFiles","params":{"files":["/data/sessions/files-a/../api-key"]}}"#,
            false,
        ),
        (r#"{"id":1,"method":"DOM.setFileInputFiles","params":{"files":["/data/sessions/files-a/cv.pdf"]}}"#, true),
        (r#"{"id":1,"method":"Page.navigat\u0065","params":{"url":"file:///etc/passwd"}}"#, false),
        (r#"{"id":1,"method":"Page..navigate"}"#, false),
        (r#"{"id":1,"method":"Page.navigate\u0000x"}"#, false),
        (r#"{"id":"1","method":"Page.enable"}"#, false),
        (r#"{"id":-1,"method":"Page.enable"}"#, false),
        (r#"{"method":"Page.enable"}"#, false),
        (r#"[{"id":1,"method":"Browser.close"}]"#, false),
        (r#"{"id":1,"method":"Page.enable","params":"x"}"#, false),
        (r#"{"id":1,"method":"Page.enable","sessionId":5}"#, false),
        ("not json", false),
    ];

    #[test]
    fn only_allowed_methods_and_targets_reach_the_browser() {
        for (message, forwarded) in CASES {
            let verdict = policy().judge(message);
            assert_eq!(matches!(verdict, Verdict::Forward(_)), *forwarded, "{message}: {verdict:?}");
        }
    }

    #[test]
    fn what_is_forwarded_is_what_was_checked() {
        // The last of duplicated keys is the one checked, and the only one sent.
        let Verdict::Forward(text) =
            policy().judge(r#"{"id":4,"method":"Browser.close","method":"Page.enable","x":1}"#)
        else {
            panic!("Page.enable is allowed")
        };
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"id": 4, "method": "Page.enable", "params": {}})
        );
        let Verdict::Forward(text) =
            policy().judge(r#"{"id":5,"method":"Page.navigate","params":{"url":"HTTPS://Example.COM"}}"#)
        else {
            panic!("https is allowed")
        };
        assert!(text.contains("https://example.com/"), "{text}");
    }

    #[test]
    fn downloads_always_go_to_the_session_directory() {
        for behavior in ["allow", "allowAndName", "default", "weird"] {
            let message = json!({"id": 2, "method": "Browser.setDownloadBehavior",
                "params": {"behavior": behavior, "downloadPath": "/data/run"}, "sessionId": "S"});
            let Verdict::Forward(text) = policy().judge(&message.to_string()) else {
                panic!("downloads are rewritten")
            };
            let sent: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(sent["params"]["downloadPath"], "/data/sessions/files-a/downloads");
            assert_ne!(sent["params"]["behavior"], "default");
            assert_eq!(sent["sessionId"], "S");
        }
    }

    #[test]
    fn refusals_answer_the_request_they_refuse() {
        let Verdict::Refuse(text) = policy().judge(r#"{"id":7,"method":"Browser.close","sessionId":"S"}"#) else {
            panic!("Browser.close is refused")
        };
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reply["id"], 7);
        assert_eq!(reply["sessionId"], "S");
        assert!(reply["error"]["message"].as_str().unwrap().contains("not allowed"));
    }
}
