//! The page port: everything the rest of the worker asks of a session's page, with no
//! chromiumoxide type in sight. Block detection (`guard`), form scanning, filling and
//! submitting (`forms`) take a `&dyn PagePort`; a live `BrowserHandle` is one, and tests drive
//! the same code with a scripted page (`browser::fake`) instead of a Chromium.

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::Value;

use super::BrowserError;

/// The operations on a session's page.
#[async_trait]
pub trait PagePort: Send + Sync {
    /// Evaluates an expression (awaiting a promise) and returns its JSON value.
    async fn eval(&self, what: &'static str, expression: &str) -> Result<Value, BrowserError>;
    /// Calls a function declaration (`async (args) => ...`) with one JSON argument, passed as
    /// data (never spliced into the source), awaiting a promise; returns its JSON value.
    async fn call(&self, what: &'static str, function: &str, args: &Value) -> Result<Value, BrowserError>;
    /// Moves the mouse to a viewport point.
    async fn mouse_move(&self, x: f64, y: f64) -> Result<(), BrowserError>;
    /// Presses and releases the left button at a viewport point.
    async fn click_at(&self, x: f64, y: f64) -> Result<(), BrowserError>;
    /// Types one character as keyDown/char/keyUp.
    async fn type_char(&self, c: char) -> Result<(), BrowserError>;
    /// Presses a named key (e.g. `Backspace`, `Enter`, `ArrowDown`, `Escape`).
    async fn press_key(&self, key: &str) -> Result<(), BrowserError>;
    /// Inserts text at the caret as an IME commit (one input event).
    async fn insert_text(&self, text: &str) -> Result<(), BrowserError>;
    /// Scrolls the page by `dy` CSS pixels with the mouse wheel at a point.
    async fn wheel(&self, x: f64, y: f64, dy: f64) -> Result<(), BrowserError>;
    /// Sets the files of the file input that `function` called with `args` returns.
    async fn set_files(&self, function: &str, args: &Value, files: &[PathBuf]) -> Result<(), BrowserError>;
    /// A PNG of the viewport (or the whole page).
    async fn screenshot(&self, full_page: bool) -> Result<Vec<u8>, BrowserError>;
}
