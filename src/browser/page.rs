//! Page operations on a `BrowserHandle`: every CDP call runs under the operation timeout and
//! turns a dead browser into `BrowserError::Disconnected`. Also the `PagePort` input primitives
//! (evaluate, mouse, keys, text, files) that the forms executors drive.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, DispatchMouseEventParams, DispatchMouseEventType, InsertTextParams,
    MouseButton,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    CallArgument, CallFunctionOnParams, EvaluateParams, ReleaseObjectParams, RemoteObjectId,
};
use serde_json::Value;

use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::error::CdpError;
use chromiumoxide::page::ScreenshotParams;

use super::port::PagePort;
use super::{BrowserError, BrowserHandle};

use super::navigation::{self, LoadState};

/// `ready.js`: waits for an interactive, settled DOM and says where the page is.
const READY_JS: &str = include_str!("ready.js");

/// Where the page is and what it is called.
#[derive(Debug, Clone, Default)]
pub struct PageInfo {
    pub url: String,
    pub title: String,
    /// How far the page had loaded after a navigation; `None` when nothing was navigated.
    pub load_state: Option<LoadState>,
}

impl BrowserHandle {
    /// Runs one CDP call with the operation timeout; retries briefly on "context not found",
    /// which Chromium reports for a moment after a navigation.
    pub(super) async fn cdp<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, BrowserError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, CdpError>>,
    {
        let dead = self.dead.clone();
        let attempt = async {
            let mut tries = 0;
            loop {
                match call().await {
                    Err(CdpError::ChromeMessage(m)) if m.contains("Cannot find context") && tries < 10 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => return other,
                }
            }
        };
        tokio::select! {
            _ = dead.cancelled() => Err(BrowserError::Disconnected),
            result = tokio::time::timeout(self.op_timeout, attempt) => match result {
                Err(_) => Err(BrowserError::Timeout(what)),
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) if self.is_dead() => { tracing::debug!(error = %e, what, "cdp call failed on a dead browser"); Err(BrowserError::Disconnected) }
                Ok(Err(CdpError::ChannelSendError(_))) => Err(BrowserError::Disconnected),
                Ok(Err(CdpError::Timeout)) => Err(BrowserError::Timeout(what)),
                Ok(Err(e)) => Err(BrowserError::Cdp(e.to_string())),
            },
        }
    }

    /// Navigates and waits until the page is usable: its DOM is interactive and has settled
    /// (`navigation`, `ready.js`), whether or not `load` has fired. Network failures are
    /// `Navigation` errors; a document that never gets interactive is `NotInteractive`. The
    /// whole takes at most the operation timeout.
    pub async fn navigate(&self, url: &str) -> Result<PageInfo, BrowserError> {
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        let target = self.page.target_id().inner().clone();
        let mark = self.route().map(|r| r.mark());
        let navigated = async {
            tokio::select! {
                _ = self.dead.cancelled() => return Err(BrowserError::Disconnected),
                result = navigation::navigate(&self.ws_url, &target, url, deadline) => result?,
            }
            self.settle(deadline).await
        }
        .await;
        // The page may show the proxy's error, or a network error: either way the proxy failed.
        match (self.route(), mark) {
            (Some(route), Some(mark)) => match route.failure_since(mark) {
                Some(failure) => Err(BrowserError::Proxy(failure)),
                None => navigated,
            },
            _ => navigated,
        }
    }

    /// Runs `ready.js` on the current document until `deadline`, again when the page replaced
    /// its document meanwhile (a client-side redirect destroys the script's context).
    async fn settle(&self, deadline: tokio::time::Instant) -> Result<PageInfo, BrowserError> {
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.evaluate("page ready", READY_JS)).await;
            match attempt {
                Err(_) => return Err(BrowserError::NotInteractive),
                Ok(Ok(page)) => {
                    let text = |key: &str| page[key].as_str().unwrap_or_default().to_string();
                    return Ok(PageInfo {
                        url: text("url"),
                        title: text("title"),
                        load_state: Some(LoadState::from_ready_state(&text("ready_state"))),
                    });
                }
                Ok(Err(BrowserError::Cdp(message)))
                    if message.contains("context was destroyed") || message.contains("navigated or closed") =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// The current URL and title.
    pub async fn info(&self) -> Result<PageInfo, BrowserError> {
        let page = &self.page;
        let url = self.cdp("read url", || page.url()).await?.unwrap_or_default();
        let title = self.cdp("read title", || page.get_title()).await?.unwrap_or_default();
        Ok(PageInfo { url, title, load_state: None })
    }

    /// A PNG of the viewport, or of the whole page.
    pub async fn screenshot(&self, full_page: bool) -> Result<Vec<u8>, BrowserError> {
        let page = &self.page;
        self.cdp("screenshot", || {
            page.screenshot(
                ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(full_page).build(),
            )
        })
        .await
    }

    /// Starts following the requests the page sends (`tap`); with `hold`, form submissions are
    /// held back instead of sent (a dry run).
    pub async fn tap(&self, hold: bool) -> Result<super::tap::Tap, BrowserError> {
        super::tap::Tap::start(&self.ws_url, &self.target_id(), hold).await
    }

    /// The page's visible text, at most `limit` characters (a confirmation page's wording).
    pub async fn text(&self, limit: usize) -> Result<String, BrowserError> {
        let text = self.evaluate("page text", "document.body ? document.body.innerText : ''").await?;
        Ok(text.as_str().unwrap_or_default().trim().chars().take(limit).collect())
    }

    /// Emulates a viewport size on the page.
    pub async fn set_viewport(&self, width: u32, height: u32) -> Result<(), BrowserError> {
        let page = &self.page;
        let params = SetDeviceMetricsOverrideParams::new(width as i64, height as i64, 1.0, false);
        self.cdp("set viewport", || async { page.execute(params.clone()).await.map(|_| ()) }).await
    }
}

/// Key definitions for the named keys forms press: (key, code, Windows virtual key code, text).
fn named_key(key: &str) -> Option<(&'static str, &'static str, i64, Option<&'static str>)> {
    Some(match key {
        "Backspace" => ("Backspace", "Backspace", 8, None),
        "Tab" => ("Tab", "Tab", 9, None),
        "Enter" => ("Enter", "Enter", 13, Some("\r")),
        "Escape" => ("Escape", "Escape", 27, None),
        "ArrowDown" => ("ArrowDown", "ArrowDown", 40, None),
        "ArrowUp" => ("ArrowUp", "ArrowUp", 38, None),
        "End" => ("End", "End", 35, None),
        _ => return None,
    })
}

impl BrowserHandle {
    /// Evaluates a JavaScript expression (awaiting a promise) and returns its value as JSON
    /// (one `Runtime.evaluate`, by value). An exception in the script is a `Cdp` error.
    pub async fn evaluate(&self, what: &'static str, expression: &str) -> Result<Value, BrowserError> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .map_err(BrowserError::Cdp)?;
        let result = self.execute(what, params).await?;
        if let Some(exception) = result.exception_details {
            let detail = exception.exception.and_then(|e| e.description).unwrap_or(exception.text);
            return Err(BrowserError::Cdp(format!("{what}: script error: {detail}")));
        }
        Ok(result.result.value.unwrap_or(Value::Null))
    }

    /// Calls a function declaration with one JSON argument (`Runtime.callFunctionOn` in the
    /// page's main world; the argument travels as data). By value, or as a remote object.
    async fn call_function(
        &self,
        what: &'static str,
        function: &str,
        args: &Value,
        by_value: bool,
    ) -> Result<chromiumoxide::cdp::js_protocol::runtime::CallFunctionOnReturns, BrowserError> {
        let page = &self.page;
        let result = self
            .cdp(what, || async move {
                // The context changes with every navigation: look it up on each attempt.
                let context = page.execution_context().await?;
                let mut params = CallFunctionOnParams::new(function);
                params.arguments = Some(vec![CallArgument { value: Some(args.clone()), ..Default::default() }]);
                params.await_promise = Some(true);
                params.return_by_value = Some(by_value);
                let global = match context {
                    Some(id) => {
                        params.execution_context_id = Some(id);
                        None
                    }
                    None => {
                        let global = page.execute(EvaluateParams::new("globalThis")).await?.result.result.object_id;
                        params.object_id = global.clone();
                        global
                    }
                };
                let result = page.execute(params).await.map(|r| r.result);
                if let Some(object_id) = global {
                    let _ = page.execute(ReleaseObjectParams::new(object_id)).await;
                }
                result
            })
            .await?;
        if let Some(exception) = &result.exception_details {
            let detail =
                exception.exception.as_ref().and_then(|e| e.description.clone()).unwrap_or(exception.text.clone());
            return Err(BrowserError::Cdp(format!("{what}: script error: {detail}")));
        }
        Ok(result)
    }

    async fn execute<C>(&self, what: &'static str, command: C) -> Result<C::Response, BrowserError>
    where
        C: chromiumoxide::types::Command + Clone + Send + Sync,
        C::Response: Send,
    {
        let page = &self.page;
        self.cdp(what, || {
            let command = command.clone();
            async move { page.execute(command).await.map(|r| r.result) }
        })
        .await
    }

    async fn mouse(&self, kind: DispatchMouseEventType, x: f64, y: f64, pressed: bool) -> Result<(), BrowserError> {
        let mut params = DispatchMouseEventParams::new(kind.clone(), x, y);
        if kind != DispatchMouseEventType::MouseMoved {
            params.button = Some(MouseButton::Left);
            params.click_count = Some(1);
        }
        params.buttons = Some(if pressed { 1 } else { 0 });
        self.execute("mouse event", params).await.map(|_| ())
    }

    async fn key_event(
        &self,
        kind: DispatchKeyEventType,
        key: &str,
        code: &str,
        vk: i64,
        text: Option<&str>,
    ) -> Result<(), BrowserError> {
        let mut params = DispatchKeyEventParams::new(kind);
        params.key = Some(key.to_string());
        params.code = Some(code.to_string());
        if vk > 0 {
            params.windows_virtual_key_code = Some(vk);
            params.native_virtual_key_code = Some(vk);
        }
        if let Some(text) = text {
            params.text = Some(text.to_string());
            params.unmodified_text = Some(text.to_string());
        }
        self.execute("key event", params).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl PagePort for BrowserHandle {
    async fn eval(&self, what: &'static str, expression: &str) -> Result<Value, BrowserError> {
        self.evaluate(what, expression).await
    }

    async fn call(&self, what: &'static str, function: &str, args: &Value) -> Result<Value, BrowserError> {
        Ok(self.call_function(what, function, args, true).await?.result.value.unwrap_or(Value::Null))
    }

    async fn mouse_move(&self, x: f64, y: f64) -> Result<(), BrowserError> {
        self.mouse(DispatchMouseEventType::MouseMoved, x, y, false).await
    }

    async fn click_at(&self, x: f64, y: f64) -> Result<(), BrowserError> {
        self.mouse(DispatchMouseEventType::MousePressed, x, y, true).await?;
        self.mouse(DispatchMouseEventType::MouseReleased, x, y, false).await
    }

    async fn type_char(&self, c: char) -> Result<(), BrowserError> {
        let text = c.to_string();
        let code = if c.is_ascii_alphabetic() { format!("Key{}", c.to_ascii_uppercase()) } else { String::new() };
        let vk = if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() as i64 } else { 0 };
        self.key_event(DispatchKeyEventType::KeyDown, &text, &code, vk, Some(&text)).await?;
        self.key_event(DispatchKeyEventType::KeyUp, &text, &code, vk, None).await
    }

    async fn press_key(&self, key: &str) -> Result<(), BrowserError> {
        let (key, code, vk, text) = named_key(key).ok_or_else(|| BrowserError::Cdp(format!("unknown key {key}")))?;
        let down = if text.is_some() { DispatchKeyEventType::KeyDown } else { DispatchKeyEventType::RawKeyDown };
        self.key_event(down, key, code, vk, text).await?;
        self.key_event(DispatchKeyEventType::KeyUp, key, code, vk, None).await
    }

    async fn insert_text(&self, text: &str) -> Result<(), BrowserError> {
        self.execute("insert text", InsertTextParams::new(text)).await.map(|_| ())
    }

    async fn wheel(&self, x: f64, y: f64, dy: f64) -> Result<(), BrowserError> {
        let mut params = DispatchMouseEventParams::new(DispatchMouseEventType::MouseWheel, x, y);
        params.delta_x = Some(0.0);
        params.delta_y = Some(dy);
        self.execute("wheel", params).await.map(|_| ())
    }

    async fn screenshot(&self, full_page: bool) -> Result<Vec<u8>, BrowserError> {
        BrowserHandle::screenshot(self, full_page).await
    }

    async fn set_files(&self, function: &str, args: &Value, files: &[PathBuf]) -> Result<(), BrowserError> {
        let object = self.call_function("find file input", function, args, false).await?.result.object_id;
        let object_id: RemoteObjectId =
            object.ok_or_else(|| BrowserError::Cdp("the file input is not on the page".into()))?;
        let mut params = SetFileInputFilesParams::new(files.iter().map(|f| f.display().to_string()).collect());
        params.object_id = Some(object_id.clone());
        let result = self.execute("set files", params).await.map(|_| ());
        let _ = self.execute("release", ReleaseObjectParams::new(object_id)).await;
        result
    }
}
