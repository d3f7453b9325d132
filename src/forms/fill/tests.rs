//! Fill's typing policy against a fake page that records what it is sent.

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use rand::SeedableRng;

use super::*;
use crate::browser::humanize::MAX_TYPED_CHARS;

/// What the fake page was sent.
#[derive(Debug, Default)]
struct Sent {
    typed_chars: usize,
    keys: usize,
    inserted: Vec<usize>,
}

/// A page that only records keys and inserted text.
#[derive(Default)]
struct RecordingPage {
    sent: Mutex<Sent>,
}

#[async_trait]
impl FormPage for RecordingPage {
    async fn eval(&self, _what: &'static str, _expression: &str) -> Result<Value, BrowserError> {
        Ok(Value::Null)
    }
    async fn call(&self, _what: &'static str, _function: &str, _args: &Value) -> Result<Value, BrowserError> {
        Ok(Value::Null)
    }
    async fn mouse_move(&self, _x: f64, _y: f64) -> Result<(), BrowserError> {
        Ok(())
    }
    async fn click_at(&self, _x: f64, _y: f64) -> Result<(), BrowserError> {
        Ok(())
    }
    async fn type_char(&self, _c: char) -> Result<(), BrowserError> {
        self.sent.lock().unwrap().typed_chars += 1;
        Ok(())
    }
    async fn press_key(&self, _key: &str) -> Result<(), BrowserError> {
        self.sent.lock().unwrap().keys += 1;
        Ok(())
    }
    async fn insert_text(&self, text: &str) -> Result<(), BrowserError> {
        self.sent.lock().unwrap().inserted.push(text.chars().count());
        Ok(())
    }
    async fn wheel(&self, _x: f64, _y: f64, _dy: f64) -> Result<(), BrowserError> {
        Ok(())
    }
    async fn set_files(&self, _function: &str, _args: &Value, _files: &[PathBuf]) -> Result<(), BrowserError> {
        Ok(())
    }
}

// Paused time: the policy's key delays pass at once, so a regression shows up as keys sent,
// not as a slow test.
#[tokio::test(start_paused = true)]
async fn text_over_the_cap_is_inserted_in_one_go_under_every_policy() {
    let long = "x".repeat(MAX_TYPED_CHARS * 5);
    let cases = [
        (Humanize::Human, "Ada Lovelace", false),
        (Humanize::Fast, "Ada Lovelace", false),
        (Humanize::Off, "Ada Lovelace", true),
        (Humanize::Human, long.as_str(), true),
        (Humanize::Fast, long.as_str(), true),
        (Humanize::Off, long.as_str(), true),
    ];
    for (humanize, text, inserted) in cases {
        let page = RecordingPage::default();
        let executor = Executor { page: &page, humanize };
        executor.type_text(text, &mut StdRng::seed_from_u64(3)).await.unwrap();
        let sent = page.sent.into_inner().unwrap();
        let length = text.chars().count();
        if inserted {
            assert_eq!(sent.inserted, vec![length], "{humanize:?}, {length} characters: {sent:?}");
            assert_eq!((sent.typed_chars, sent.keys), (0, 0), "{humanize:?}, {length} characters: no keys");
        } else {
            assert!(sent.inserted.is_empty(), "{humanize:?}: typed, not inserted: {sent:?}");
            // Every character typed, plus a mistyped one for each typo (corrected with Backspace).
            assert_eq!(sent.typed_chars, length + sent.keys, "{humanize:?}: {sent:?}");
        }
    }
}
