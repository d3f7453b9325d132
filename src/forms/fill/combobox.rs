//! Comboboxes and typeaheads: open, type, choose the `[role=option]` that matches, and check
//! that the widget shows it. A typeahead with no list for the first part of the answer gets the
//! rest typed after it and keeps the typed text (read back).

use std::time::Duration;

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::executor::{OPTIONS, SHOWN_CHOICE};
use super::{Executor, FillError, same_text};
use crate::browser::humanize::Rect;
use crate::forms::rules::as_text;
use crate::forms::{Field, matching};

impl Executor<'_> {
    pub(super) async fn combobox(
        &self,
        field: &Field,
        answer: &str,
        rng: &mut StdRng,
    ) -> Result<(Value, bool), FillError> {
        self.click(&field.selector, rng).await?;
        let is_button = field.hints.widget == "listbox_button";
        // A typeahead searches by the first part ("San Francisco"); the answer picks the match.
        let query =
            if field.hints.widget == "typeahead" { answer.split(',').next().unwrap_or(answer).trim() } else { answer };
        if !is_button {
            self.focus(&field.selector).await?;
            self.type_text(query, rng).await?;
        }
        let mut options = self.visible_options(&field.selector).await?;
        if options.is_empty() && field.hints.widget == "typeahead" {
            // No suggestion for the first part: the typeahead keeps free text, so the rest of
            // the answer is typed after it (a list that appears then is still used).
            match answer.strip_prefix(query) {
                Some("") => {}
                Some(rest) => self.type_text(rest, rng).await?,
                None => {
                    self.focus(&field.selector).await?;
                    self.type_text(answer, rng).await?;
                }
            }
            options = self.visible_options(&field.selector).await?;
        } else if options.is_empty() && !is_button {
            // Nothing matched the typed text: clear it and list every option.
            self.focus(&field.selector).await?;
            self.page.press_key("Backspace").await?;
            self.page.press_key("ArrowDown").await?;
            options = self.visible_options(&field.selector).await?;
        }
        let labels: Vec<String> = options.iter().map(|o| o.0.clone()).collect();
        let Some((i, _)) = matching::match_option(answer, &labels) else {
            self.page.press_key("Escape").await?;
            if field.hints.widget == "typeahead" && options.is_empty() {
                let shown = self.read_value(&field.selector, true).await?;
                return Ok((json!(answer), same_text(field.kind, &as_text(&shown), answer)));
            }
            return Err(FillError::NoOption(answer.into()));
        };
        self.click_box(options[i].1, rng).await?;
        let chosen = labels[i].clone();
        let shown = self.shown_choice(&field.selector).await?;
        Ok((json!(chosen), shown.is_some_and(|s| matching::normalize(&s) == matching::normalize(&chosen))))
    }

    /// The options the widget shows now (waiting up to 2 s for them), with their boxes.
    async fn visible_options(&self, selector: &str) -> Result<Vec<(String, Rect)>, FillError> {
        let value = self.call("list options", OPTIONS, json!({ "selector": selector })).await?;
        let list = value.as_array().ok_or(FillError::Gone)?;
        Ok(list
            .iter()
            .filter_map(|o| {
                let label = o.get("label")?.as_str()?.to_string();
                let rect: Rect = serde_json::from_value(o.get("box")?.clone()).ok()?;
                Some((label, rect))
            })
            .collect())
    }

    /// What a combobox displays as chosen.
    async fn shown_choice(&self, selector: &str) -> Result<Option<String>, FillError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let shown = self.call("read choice", SHOWN_CHOICE, json!({ "selector": selector })).await?;
        Ok(shown.as_str().map(str::to_string))
    }
}
