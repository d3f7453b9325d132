//! A CDP passthrough client of a context-mode session (`browser::shared`) shares its browser
//! with other sessions: this scope keeps it to its own browser context. On top of `CdpPolicy`:
//!
//! - browser-level commands are an allow-list of their own; those that name a browser context
//!   (targets, downloads, permissions, cookies) get the session's, and those that name a target
//!   need one of the context's;
//! - commands on an attached session pass only for sessions of the context's targets;
//! - from the browser, target events, `Target.getTargets` answers and messages of attached
//!   sessions pass only for the context's targets; a target of another context that the
//!   client's browser-wide auto-attach caught is let go (resumed and detached) unseen;
//! - `Target.getBrowserContexts` answers no context: the session's context looks like the
//!   browser's default one, as it does to Playwright and Puppeteer.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

/// Commands a client may send at browser level (without a `sessionId`), and what they need.
const BROWSER_LEVEL: &[(&str, Need)] = &[
    ("Browser.getVersion", Need::Nothing),
    ("Browser.setDownloadBehavior", Need::Context),
    ("Browser.cancelDownload", Need::Context),
    ("Browser.grantPermissions", Need::Context),
    ("Browser.resetPermissions", Need::Context),
    ("Browser.setPermission", Need::Context),
    ("Browser.getWindowForTarget", Need::Target),
    ("Storage.getCookies", Need::Context),
    ("Storage.setCookies", Need::Context),
    ("Storage.clearCookies", Need::Context),
    ("Target.setDiscoverTargets", Need::Nothing),
    ("Target.setAutoAttach", Need::Nothing),
    ("Target.getTargets", Need::Nothing),
    ("Target.getBrowserContexts", Need::Nothing),
    ("Target.createTarget", Need::Context),
    ("Target.getTargetInfo", Need::Target),
    ("Target.attachToTarget", Need::Target),
    ("Target.activateTarget", Need::Target),
    ("Target.closeTarget", Need::Target),
    ("Target.autoAttachRelated", Need::Target),
    ("Target.detachFromTarget", Need::Session),
];

/// What a browser-level command needs to stay in the session's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    /// `browserContextId` is set to the session's.
    Context,
    /// `targetId`, when given, names one of the context's targets.
    Target,
    /// `sessionId` names one of the client's sessions of the context.
    Session,
}

/// Answers that are rewritten on their way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Targets,
    Contexts,
    Created,
}

/// Ids of the scope's own commands (releasing another context's target): above any id a client
/// uses (`outgoing` refuses those), and below 2^31, as Chromium reads ids as 32-bit integers.
const OWN_IDS: u64 = 1 << 30;

/// One client's view of the shared browser.
#[derive(Debug)]
pub struct ContextScope {
    context: String,
    /// The context's targets the client has learned of.
    targets: HashSet<String>,
    /// The client's attached sessions to the context's targets (and their children).
    sessions: HashSet<String>,
    pending: HashMap<u64, Pending>,
    next_own: u64,
}

/// What to do with a message.
#[derive(Debug, PartialEq)]
pub enum Scoped {
    /// Pass it on unchanged.
    Keep,
    /// Pass it on as rewritten.
    Pass(Value),
    /// Answer the client with this; nothing reaches the browser.
    Refuse(Value),
    /// Drop it, and send these commands to the browser instead.
    Drop(Vec<Value>),
}

impl ContextScope {
    /// A scope for the context `context`, whose page `page` the client may attach to at once.
    pub fn new(context: &str, page: &str) -> Self {
        Self {
            context: context.to_string(),
            targets: HashSet::from([page.to_string()]),
            sessions: HashSet::new(),
            pending: HashMap::new(),
            next_own: OWN_IDS,
        }
    }

    /// A client command (already passed by `CdpPolicy`) on its way to the browser.
    pub fn outgoing(&mut self, mut message: Value) -> Scoped {
        let id = message["id"].as_u64().unwrap_or(u64::MAX);
        let method = message["method"].as_str().unwrap_or_default().to_string();
        let session = message.get("sessionId").cloned();
        let refuse = |why: &str| {
            let error = json!({"code": -32000, "message": format!("browser-worker: {why}")});
            let mut reply = json!({"id": id, "error": error});
            if let Some(session) = &session {
                reply["sessionId"] = session.clone();
            }
            Scoped::Refuse(reply)
        };
        if id >= OWN_IDS {
            return refuse("command ids must be below 2^30");
        }
        if let Some(session) = session.as_ref().and_then(Value::as_str) {
            if !self.sessions.contains(session) {
                return refuse("no such session");
            }
            // On an attached session too, whatever names a context, a target or a session
            // must name the client's own.
            let params = &mut message["params"];
            if params.get("browserContextId").is_some() {
                params["browserContextId"] = Value::String(self.context.clone());
            }
            if params.get("targetId").and_then(Value::as_str).is_some_and(|t| !self.targets.contains(t)) {
                return refuse("no target with given id found");
            }
            if params.get("sessionId").and_then(Value::as_str).is_some_and(|s| !self.sessions.contains(s)) {
                return refuse("no session with given id found");
            }
            return Scoped::Pass(message);
        }
        let Some((_, need)) = BROWSER_LEVEL.iter().find(|(name, _)| *name == method) else {
            return refuse(&format!("{method} is not available at browser level to a session that shares its browser"));
        };
        let params = &mut message["params"];
        match need {
            Need::Nothing => {}
            Need::Context => params["browserContextId"] = Value::String(self.context.clone()),
            Need::Target => {
                let target = params.get("targetId").and_then(Value::as_str);
                if target.is_some_and(|t| !self.targets.contains(t)) {
                    return refuse("no target with given id found");
                }
            }
            Need::Session => {
                let session = params.get("sessionId").and_then(Value::as_str);
                if !session.is_some_and(|s| self.sessions.contains(s)) {
                    return refuse("no session with given id found");
                }
            }
        }
        let pending = match method.as_str() {
            "Target.getTargets" => Some(Pending::Targets),
            "Target.getBrowserContexts" => Some(Pending::Contexts),
            "Target.createTarget" => Some(Pending::Created),
            _ => None,
        };
        if let Some(pending) = pending {
            self.pending.insert(id, pending);
        }
        Scoped::Pass(message)
    }

    /// A message from the browser on its way to the client.
    pub fn incoming(&mut self, mut message: Value) -> Scoped {
        if let Some(session) = message.get("sessionId").and_then(Value::as_str).map(str::to_string) {
            if !self.sessions.contains(&session) {
                return Scoped::Drop(Vec::new());
            }
            // A frame or worker of one of the context's pages: its session is the client's too.
            match message["method"].as_str() {
                Some("Target.attachedToTarget") => {
                    let params = &message["params"];
                    self.sessions.extend(params["sessionId"].as_str().map(str::to_string));
                    self.targets.extend(params["targetInfo"]["targetId"].as_str().map(str::to_string));
                }
                Some("Target.detachedFromTarget") => {
                    if let Some(child) = message["params"]["sessionId"].as_str() {
                        self.sessions.remove(child);
                    }
                }
                _ => {}
            }
            return Scoped::Keep;
        }
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            if id >= OWN_IDS {
                return Scoped::Drop(Vec::new());
            }
            let result = &mut message["result"];
            match self.pending.remove(&id) {
                Some(Pending::Targets) => {
                    if let Some(Value::Array(infos)) = result.get_mut("targetInfos") {
                        infos.retain(|info| self.ours(info));
                        let learned: Vec<String> =
                            infos.iter().filter_map(|i| i["targetId"].as_str().map(str::to_string)).collect();
                        self.targets.extend(learned);
                    }
                }
                Some(Pending::Contexts) => {
                    if result.is_object() {
                        result["browserContextIds"] = json!([]);
                    }
                }
                Some(Pending::Created) => {
                    self.targets.extend(result["targetId"].as_str().map(str::to_string));
                    return Scoped::Keep;
                }
                None => return Scoped::Keep,
            }
            return Scoped::Pass(message);
        }
        let params = &message["params"];
        match message["method"].as_str().unwrap_or_default() {
            "Target.targetCreated" | "Target.targetInfoChanged" => {
                if !self.ours(&params["targetInfo"]) {
                    return Scoped::Drop(Vec::new());
                }
                self.targets.extend(params["targetInfo"]["targetId"].as_str().map(str::to_string));
            }
            "Target.targetDestroyed" | "Target.targetCrashed" => {
                let target = params["targetId"].as_str().unwrap_or_default();
                if !self.targets.contains(target) {
                    return Scoped::Drop(Vec::new());
                }
                if message["method"] == "Target.targetDestroyed" {
                    self.targets.remove(target);
                }
            }
            "Target.attachedToTarget" => {
                let session = params["sessionId"].as_str().unwrap_or_default().to_string();
                if !self.ours(&params["targetInfo"]) {
                    // Caught by a browser-wide auto-attach: let it run on, and go.
                    return Scoped::Drop(self.release(&session));
                }
                self.targets.extend(params["targetInfo"]["targetId"].as_str().map(str::to_string));
                self.sessions.insert(session);
            }
            "Target.detachedFromTarget" => {
                let session = params["sessionId"].as_str().unwrap_or_default();
                if !self.sessions.remove(session) {
                    return Scoped::Drop(Vec::new());
                }
            }
            "Browser.downloadWillBegin" | "Browser.downloadProgress" | "Inspector.detached" => {}
            _ => return Scoped::Drop(Vec::new()),
        }
        Scoped::Keep
    }

    /// True for a target of the session's context.
    fn ours(&self, info: &Value) -> bool {
        info["browserContextId"].as_str() == Some(self.context.as_str())
    }

    /// Commands that resume a target another context's auto-attach paused, and detach from it.
    fn release(&mut self, session: &str) -> Vec<Value> {
        let mut own = || {
            self.next_own += 1;
            self.next_own
        };
        vec![
            json!({"id": own(), "method": "Runtime.runIfWaitingForDebugger", "sessionId": session}),
            json!({"id": own(), "method": "Target.detachFromTarget", "params": {"sessionId": session}}),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ContextScope {
        let mut scope = ContextScope::new("CTX", "PAGE");
        scope.sessions.insert("S".into());
        scope
    }

    /// (client command, passes?) — attacks on other contexts as data: each must be refused.
    const OUTGOING: &[(&str, bool)] = &[
        (r#"{"id":1,"method":"Browser.getVersion","params":{}}"#, true),
        (r#"{"id":1,"method":"Target.attachToTarget","params":{"targetId":"PAGE","flatten":true}}"#, true),
        (r#"{"id":1,"method":"Target.attachToTarget","params":{"targetId":"OTHER","flatten":true}}"#, false),
        (r#"{"id":1,"method":"Target.closeTarget","params":{"targetId":"OTHER"}}"#, false),
        (r#"{"id":1,"method":"Target.activateTarget","params":{"targetId":"OTHER"}}"#, false),
        (r#"{"id":1,"method":"Browser.getWindowForTarget","params":{"targetId":"OTHER"}}"#, false),
        (r#"{"id":1,"method":"Target.detachFromTarget","params":{"sessionId":"THEIRS"}}"#, false),
        (r#"{"id":1,"method":"Target.detachFromTarget","params":{"sessionId":"S"}}"#, true),
        (r#"{"id":1,"method":"Runtime.evaluate","params":{"expression":"1"},"sessionId":"S"}"#, true),
        (r#"{"id":1,"method":"Runtime.evaluate","params":{"expression":"1"},"sessionId":"THEIRS"}"#, false),
        (
            r#"{"id":1,"method":"Target.attachToTarget","params":{"targetId":"OTHER","flatten":true},"sessionId":"S"}"#,
            false,
        ),
        (r#"{"id":1,"method":"Target.detachFromTarget","params":{"sessionId":"THEIRS"},"sessionId":"S"}"#, false),
        (
            r#"{"id":1,"method":"Target.attachToTarget","params":{"targetId":"PAGE","flatten":true},"sessionId":"S"}"#,
            true,
        ),
        (r#"{"id":1,"method":"Target.createBrowserContext","params":{}}"#, false),
        (r#"{"id":1,"method":"Target.disposeBrowserContext","params":{"browserContextId":"OTHERCTX"}}"#, false),
        (r#"{"id":1,"method":"Target.attachToBrowserTarget","params":{}}"#, false),
        (r#"{"id":1,"method":"Fetch.enable","params":{}}"#, false),
        (r#"{"id":1,"method":"Network.enable","params":{}}"#, false),
        (r#"{"id":1,"method":"Tracing.start","params":{}}"#, false),
        (r#"{"id":1,"method":"Storage.clearDataForOrigin","params":{"origin":"*","storageTypes":"all"}}"#, false),
        (r#"{"id":1,"method":"Browser.setWindowBounds","params":{"windowId":1,"bounds":{}}}"#, false),
        (r#"{"id":1073741825,"method":"Browser.getVersion","params":{}}"#, false),
    ];

    #[test]
    fn a_client_reaches_only_its_own_context() {
        for (text, passes) in OUTGOING {
            let verdict = scope().outgoing(serde_json::from_str(text).unwrap());
            assert_eq!(matches!(verdict, Scoped::Pass(_)), *passes, "{text}: {verdict:?}");
        }
    }

    #[test]
    fn commands_naming_a_context_get_the_sessions() {
        for method in ["Target.createTarget", "Storage.getCookies", "Browser.setDownloadBehavior"] {
            for session in [None, Some("S")] {
                let mut message = json!({"id": 2, "method": method, "params": {"browserContextId": "OTHERCTX", "url": "about:blank"}});
                if let Some(session) = session {
                    message["sessionId"] = json!(session);
                }
                let Scoped::Pass(sent) = scope().outgoing(message) else { panic!("{method} passes") };
                assert_eq!(sent["params"]["browserContextId"], "CTX", "{method} on {session:?}");
            }
        }
    }

    #[test]
    fn the_client_sees_only_its_contexts_targets_and_sessions() {
        let mut scope = scope();
        let info = |id: &str, ctx: &str| json!({"targetId": id, "type": "page", "browserContextId": ctx});
        let _ = scope.outgoing(json!({"id": 3, "method": "Target.getTargets", "params": {}}));
        let Scoped::Pass(answer) =
            scope.incoming(json!({"id": 3, "result": {"targetInfos": [info("PAGE", "CTX"), info("B", "OTHERCTX")]}}))
        else {
            panic!("answers pass")
        };
        assert_eq!(answer["result"]["targetInfos"], json!([info("PAGE", "CTX")]));
        let _ = scope.outgoing(json!({"id": 4, "method": "Target.getBrowserContexts", "params": {}}));
        let Scoped::Pass(answer) =
            scope.incoming(json!({"id": 4, "result": {"browserContextIds": ["CTX", "OTHERCTX"]}}))
        else {
            panic!("answers pass")
        };
        assert_eq!(answer["result"]["browserContextIds"], json!([]));

        let created =
            |id: &str, ctx: &str| json!({"method": "Target.targetCreated", "params": {"targetInfo": info(id, ctx)}});
        assert!(matches!(scope.incoming(created("B", "OTHERCTX")), Scoped::Drop(v) if v.is_empty()));
        assert_eq!(scope.incoming(created("POPUP", "CTX")), Scoped::Keep);
        let destroyed = |id: &str| json!({"method": "Target.targetDestroyed", "params": {"targetId": id}});
        assert!(matches!(scope.incoming(destroyed("B")), Scoped::Drop(_)));
        assert_eq!(scope.incoming(destroyed("POPUP")), Scoped::Keep);

        // Another context's page caught by auto-attach: resumed and detached, never shown.
        let attached = json!({"method": "Target.attachedToTarget",
            "params": {"sessionId": "SB", "targetInfo": info("B", "OTHERCTX"), "waitingForDebugger": true}});
        let Scoped::Drop(sent) = scope.incoming(attached) else { panic!("another context's page is dropped") };
        let methods: Vec<&str> = sent.iter().filter_map(|m| m["method"].as_str()).collect();
        assert_eq!(methods, ["Runtime.runIfWaitingForDebugger", "Target.detachFromTarget"]);
        assert!(sent.iter().all(|m| m["id"].as_u64().unwrap() > OWN_IDS));
        assert!(matches!(scope.incoming(json!({"id": sent[1]["id"], "result": {}})), Scoped::Drop(_)));
        assert!(matches!(scope.incoming(json!({"method": "Page.loadEventFired", "sessionId": "SB"})), Scoped::Drop(_)));
        assert!(matches!(
            scope.outgoing(json!({"id": 5, "method": "Page.enable", "sessionId": "SB"})),
            Scoped::Refuse(_)
        ));

        // Its own page's session, and that page's iframe's.
        let mine = json!({"method": "Target.attachedToTarget", "params": {"sessionId": "S2", "targetInfo": info("POPUP", "CTX")}});
        assert_eq!(scope.incoming(mine), Scoped::Keep);
        let child = json!({"method": "Target.attachedToTarget", "sessionId": "S2",
            "params": {"sessionId": "S3", "targetInfo": {"targetId": "F", "type": "iframe", "browserContextId": "CTX"}}});
        assert_eq!(scope.incoming(child), Scoped::Keep);
        assert!(matches!(
            scope.outgoing(json!({"id": 6, "method": "Runtime.enable", "sessionId": "S3"})),
            Scoped::Pass(_)
        ));
        // Browser-wide events of no target are not the client's business.
        assert!(matches!(scope.incoming(json!({"method": "Tracing.dataCollected", "params": {}})), Scoped::Drop(_)));
    }
}
