//! Choices: native selects (a hidden one through the visible widget that drives it), radio,
//! button and checkbox groups, single checkboxes.

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::executor::{IS_ON, SELECT};
use super::{Executor, FillError};
use crate::forms::{Field, FieldKind, matching};

impl Executor<'_> {
    /// Native selects: the option by label, through the native setter, with input and change;
    /// a styled widget over the select must show the choice too.
    pub(super) async fn select(&self, field: &Field, label: &str) -> Result<(Value, bool), FillError> {
        let option =
            field.options.iter().find(|o| o.label == label).ok_or_else(|| FillError::NoOption(label.into()))?;
        let args = json!({
            "selector": field.selector, "value": option.value, "label": label, "driver": field.hints.driver,
        });
        let result = self.call("select option", SELECT, args).await?;
        if result.is_null() {
            return Err(FillError::Gone);
        }
        let selected = result.get("selected").and_then(Value::as_str) == Some(label);
        let shown_ok = match result.get("shown").and_then(Value::as_str) {
            Some(shown) => matching::normalize(shown).contains(&matching::normalize(label)),
            None => field.hints.driver.is_none(),
        };
        Ok((json!(label), selected && shown_ok))
    }

    /// Radio, button and checkbox groups: click each option whose state differs from the answer.
    pub(super) async fn choose(
        &self,
        field: &Field,
        wanted: &[String],
        rng: &mut StdRng,
    ) -> Result<(Value, bool), FillError> {
        for want in wanted {
            if !field.options.iter().any(|o| &o.label == want) {
                return Err(FillError::NoOption(want.clone()));
            }
        }
        let mut all_ok = true;
        for option in &field.options {
            let Some(selector) = &option.selector else { continue };
            let desired = wanted.contains(&option.label);
            if field.kind == FieldKind::RadioGroup && !desired {
                continue;
            }
            if self.is_on(selector).await? != desired {
                self.click(selector, rng).await?;
                self.pause(rng).await;
            }
            all_ok &= self.is_on(selector).await? == desired;
        }
        let value = if field.kind == FieldKind::RadioGroup { json!(wanted[0]) } else { json!(wanted) };
        Ok((value, all_ok))
    }

    pub(super) async fn is_on(&self, selector: &str) -> Result<bool, FillError> {
        self.call("read state", IS_ON, json!({ "selector": selector })).await?.as_bool().ok_or(FillError::Gone)
    }

    pub(super) async fn checkbox(
        &self,
        field: &Field,
        desired: bool,
        rng: &mut StdRng,
    ) -> Result<(Value, bool), FillError> {
        if self.is_on(&field.selector).await? != desired {
            self.click(&field.selector, rng).await?;
        }
        Ok((json!(desired), self.is_on(&field.selector).await? == desired))
    }
}
