//! Page operations on a `BrowserHandle`: every CDP call runs under the operation timeout and
//! turns a dead browser into `BrowserError::Disconnected`.

use std::future::Future;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use chromiumoxide::page::ScreenshotParams;

use super::{BrowserError, BrowserHandle};

/// Where the page is and what it is called.
#[derive(Debug, Clone, Default)]
pub struct PageInfo {
    pub url: String,
    pub title: String,
}

impl BrowserHandle {
    /// Runs one CDP call with the operation timeout; retries briefly on "context not found",
    /// which Chromium reports for a moment after a navigation.
    async fn cdp<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, BrowserError>
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

    /// Navigates and waits for the load to finish. Network failures are `Navigation` errors.
    pub async fn navigate(&self, url: &str) -> Result<PageInfo, BrowserError> {
        let page = &self.page;
        match self.cdp("navigate", || async { page.goto(url).await.map(|_| ()) }).await {
            Err(BrowserError::Cdp(message)) if message.starts_with("net::") => {
                return Err(BrowserError::Navigation(message));
            }
            other => other?,
        }
        self.info().await
    }

    /// The current URL and title.
    pub async fn info(&self) -> Result<PageInfo, BrowserError> {
        let page = &self.page;
        let url = self.cdp("read url", || page.url()).await?.unwrap_or_default();
        let title = self.cdp("read title", || page.get_title()).await?.unwrap_or_default();
        Ok(PageInfo { url, title })
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

    /// Emulates a viewport size on the page.
    pub async fn set_viewport(&self, width: u32, height: u32) -> Result<(), BrowserError> {
        let page = &self.page;
        let params = SetDeviceMetricsOverrideParams::new(width as i64, height as i64, 1.0, false);
        self.cdp("set viewport", || async { page.execute(params.clone()).await.map(|_| ()) }).await
    }

    /// Evaluates a JavaScript expression in the page and returns its value as JSON (one
    /// `Runtime.evaluate`, by value). An exception in the script is a `Cdp` error.
    pub async fn evaluate_json(&self, expression: &str) -> Result<serde_json::Value, BrowserError> {
        let page = &self.page;
        let params = EvaluateParams::builder()
            .expression(expression)
            .return_by_value(true)
            .await_promise(true)
            .build()
            .map_err(BrowserError::Cdp)?;
        let result = self.cdp("evaluate", || page.evaluate_expression(params.clone())).await?;
        Ok(result.value().cloned().unwrap_or(serde_json::Value::Null))
    }
}
