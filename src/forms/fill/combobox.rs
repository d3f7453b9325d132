//! Comboboxes and typeaheads: open, type, choose the `[role=option]` that matches, and check
//! that the widget shows it. A typeahead with no matching suggestion keeps the whole typed answer
//! (read back).

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
        if field.hints.widget == "typeahead" {
            return self.typeahead(field, answer, rng).await;
        }
        self.click(&field.selector, rng).await?;
        let is_button = field.hints.widget == "listbox_button";
        if !is_button {
            self.focus(&field.selector).await?;
            self.type_text(answer, rng).await?;
        }
        let mut options = self.visible_options(&field.selector).await?;
        if options.is_empty() && !is_button {
            // Nothing matched the typed text: clear it and list every option.
            self.focus(&field.selector).await?;
            self.page.press_key("Backspace").await?;
            self.page.press_key("ArrowDown").await?;
            options = self.visible_options(&field.selector).await?;
        }
        let labels: Vec<String> = options.iter().map(|o| o.0.clone()).collect();
        let Some((i, _)) = matching::match_option(answer, &labels) else {
            self.page.press_key("Escape").await?;
            return Err(FillError::NoOption(answer.into()));
        };
        self.choose_option(field, &options[i], rng).await
    }

    /// Clicks a listed option and checks that the widget shows it.
    async fn choose_option(
        &self,
        field: &Field,
        (label, rect): &(String, Rect),
        rng: &mut StdRng,
    ) -> Result<(Value, bool), FillError> {
        self.click_box(*rect, rng).await?;
        let shown = self.shown_choice(&field.selector).await?;
        Ok((json!(label), shown.is_some_and(|s| matching::normalize(&s) == matching::normalize(label))))
    }

    /// A typeahead searches by the first part of the answer ("San Francisco"); a listed
    /// suggestion for the same place that matches the answer is chosen. Otherwise it keeps free text: the rest of
    /// the answer is typed after the first part (a list that matches then is still used), the
    /// list is closed and the text read back.
    async fn typeahead(&self, field: &Field, answer: &str, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        self.click(&field.selector, rng).await?;
        self.focus(&field.selector).await?;
        let query = answer.split(',').next().unwrap_or(answer).trim();
        self.type_text(query, rng).await?;
        let mut typed_all = query == answer;
        loop {
            let options = self.visible_options(&field.selector).await?;
            // Only a suggestion for the same place: "South San Francisco" is not "San Francisco".
            let place = |text: &str| matching::normalize(text.split(',').next().unwrap_or(text));
            let same: Vec<&(String, Rect)> = options.iter().filter(|o| place(&o.0) == place(answer)).collect();
            let labels: Vec<String> = same.iter().map(|o| o.0.clone()).collect();
            if let Some((i, _)) = matching::match_option(answer, &labels) {
                return self.choose_option(field, same[i], rng).await;
            }
            if !options.is_empty() {
                self.page.press_key("Escape").await?;
            }
            if typed_all {
                break;
            }
            match answer.strip_prefix(query) {
                Some(rest) => self.type_text(rest, rng).await?,
                None => {
                    self.focus(&field.selector).await?;
                    self.type_text(answer, rng).await?;
                }
            }
            typed_all = true;
        }
        let shown = self.read_value(&field.selector, true).await?;
        Ok((json!(answer), same_text(field.kind, &as_text(&shown), answer)))
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
