//! Text-like fields: click (or focus), select what is there, type, read back.

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::{Executor, FillError, same_text};
use crate::browser::humanize::Humanize;
use crate::forms::Field;
use crate::forms::rules::as_text;

impl Executor<'_> {
    pub(super) async fn text(&self, field: &Field, value: &str, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        if self.humanize == Humanize::Off {
            self.reveal(&field.selector, rng).await?;
        } else {
            self.click(&field.selector, rng).await?;
        }
        if !self.focus(&field.selector).await? {
            return Err(FillError::Gone);
        }
        let limited: String = match field.hints.max_length {
            Some(max) => value.chars().take(max as usize).collect(),
            None => value.to_string(),
        };
        // Typed text replaces the selected old value only after a Backspace; inserted text
        // replaces the selection itself.
        if field.value.as_str().is_some_and(|v| !v.is_empty()) && self.humanize.types_text(&limited) {
            self.page.press_key("Backspace").await?;
        }
        self.type_text(&limited, rng).await?;
        let shown = self.read_value(&field.selector, true).await?;
        Ok((json!(limited), same_text(field.kind, &as_text(&shown), &limited)))
    }
}
