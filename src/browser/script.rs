//! Page answers as data, for tests of the code above the page port (block detection, forms)
//! without a Chromium: a `Recorder` in front of a live page keeps what each `eval` and `call`
//! answered, by what was asked; a `ScriptedPage` answers from such a script (recorded or
//! written by hand) and logs every input it is sent.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BrowserError;
use super::port::PagePort;

/// What `eval` or `call` answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Value(Value),
    /// The page's script failed (`BrowserError::Cdp`).
    ScriptError(String),
    /// The browser is gone (`BrowserError::Disconnected`).
    Gone,
}

impl Answer {
    fn of(result: &Result<Value, BrowserError>) -> Self {
        match result {
            Ok(value) => Answer::Value(value.clone()),
            Err(BrowserError::Cdp(e)) => Answer::ScriptError(e.clone()),
            Err(_) => Answer::Gone,
        }
    }
}

/// Answers by the `what` of `eval`/`call`, each list in the order they were given.
pub type Script = HashMap<String, Vec<Answer>>;

/// A page that answers from a script and logs what it is sent.
#[derive(Default)]
pub struct ScriptedPage {
    /// Answers by the `what` of `eval`/`call`, in order; the last one repeats.
    answers: Mutex<HashMap<String, VecDeque<Answer>>>,
    /// Every input, in order (`click 10 20`, `key Enter`, `text …`).
    pub log: Mutex<Vec<String>>,
}

impl ScriptedPage {
    /// A page answering from `script`.
    pub fn new(script: Script) -> Self {
        let answers = script.into_iter().map(|(what, answers)| (what, answers.into())).collect();
        Self { answers: Mutex::new(answers), log: Mutex::default() }
    }

    /// Scripts the answers to `what`.
    pub fn answering(self, what: &str, answers: impl IntoIterator<Item = Answer>) -> Self {
        self.answers.lock().unwrap().insert(what.to_string(), answers.into_iter().collect());
        self
    }

    fn answer(&self, what: &str) -> Result<Value, BrowserError> {
        let mut answers = self.answers.lock().unwrap();
        let queue = answers.get_mut(what).ok_or_else(|| BrowserError::Cdp(format!("no scripted answer to {what}")))?;
        let answer = if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() };
        match answer {
            Some(Answer::Value(value)) => Ok(value),
            Some(Answer::ScriptError(e)) => Err(BrowserError::Cdp(e)),
            Some(Answer::Gone) => Err(BrowserError::Disconnected),
            None => Err(BrowserError::Cdp(format!("no scripted answer to {what}"))),
        }
    }

    fn note(&self, input: String) -> Result<(), BrowserError> {
        self.log.lock().unwrap().push(input);
        Ok(())
    }
}

#[async_trait]
impl PagePort for ScriptedPage {
    async fn eval(&self, what: &'static str, _expression: &str) -> Result<Value, BrowserError> {
        self.answer(what)
    }
    async fn call(&self, what: &'static str, _function: &str, _args: &Value) -> Result<Value, BrowserError> {
        self.answer(what)
    }
    async fn mouse_move(&self, x: f64, y: f64) -> Result<(), BrowserError> {
        self.note(format!("move {x} {y}"))
    }
    async fn click_at(&self, x: f64, y: f64) -> Result<(), BrowserError> {
        self.note(format!("click {x} {y}"))
    }
    async fn type_char(&self, c: char) -> Result<(), BrowserError> {
        self.note(format!("char {c}"))
    }
    async fn press_key(&self, key: &str) -> Result<(), BrowserError> {
        self.note(format!("key {key}"))
    }
    async fn insert_text(&self, text: &str) -> Result<(), BrowserError> {
        self.note(format!("text {text}"))
    }
    async fn wheel(&self, x: f64, y: f64, dy: f64) -> Result<(), BrowserError> {
        self.note(format!("wheel {x} {y} {dy}"))
    }
    async fn set_files(&self, _function: &str, _args: &Value, files: &[PathBuf]) -> Result<(), BrowserError> {
        self.note(format!("files {}", files.len()))
    }
    async fn screenshot(&self, _full_page: bool) -> Result<Vec<u8>, BrowserError> {
        Ok(b"\x89PNG".to_vec())
    }
}

/// A live page whose `eval` and `call` answers are kept, by what was asked.
pub struct Recorder<'a> {
    page: &'a dyn PagePort,
    script: Mutex<Script>,
}

impl<'a> Recorder<'a> {
    pub fn new(page: &'a dyn PagePort) -> Self {
        Self { page, script: Mutex::default() }
    }

    /// What the page answered so far.
    pub fn script(&self) -> Script {
        self.script.lock().unwrap().clone()
    }

    fn keep(&self, what: &str, result: Result<Value, BrowserError>) -> Result<Value, BrowserError> {
        self.script.lock().unwrap().entry(what.to_string()).or_default().push(Answer::of(&result));
        result
    }
}

#[async_trait]
impl PagePort for Recorder<'_> {
    async fn eval(&self, what: &'static str, expression: &str) -> Result<Value, BrowserError> {
        self.keep(what, self.page.eval(what, expression).await)
    }
    async fn call(&self, what: &'static str, function: &str, args: &Value) -> Result<Value, BrowserError> {
        self.keep(what, self.page.call(what, function, args).await)
    }
    async fn mouse_move(&self, x: f64, y: f64) -> Result<(), BrowserError> {
        self.page.mouse_move(x, y).await
    }
    async fn click_at(&self, x: f64, y: f64) -> Result<(), BrowserError> {
        self.page.click_at(x, y).await
    }
    async fn type_char(&self, c: char) -> Result<(), BrowserError> {
        self.page.type_char(c).await
    }
    async fn press_key(&self, key: &str) -> Result<(), BrowserError> {
        self.page.press_key(key).await
    }
    async fn insert_text(&self, text: &str) -> Result<(), BrowserError> {
        self.page.insert_text(text).await
    }
    async fn wheel(&self, x: f64, y: f64, dy: f64) -> Result<(), BrowserError> {
        self.page.wheel(x, y, dy).await
    }
    async fn set_files(&self, function: &str, args: &Value, files: &[PathBuf]) -> Result<(), BrowserError> {
        self.page.set_files(function, args, files).await
    }
    async fn screenshot(&self, full_page: bool) -> Result<Vec<u8>, BrowserError> {
        self.page.screenshot(full_page).await
    }
}
