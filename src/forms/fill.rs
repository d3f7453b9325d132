//! Filling: writes each suggested value with the executor for its widget, following the
//! humanize policy, and reads every write back (`verified`). Traps are never touched, opt-ins
//! stay unticked, and a field that already holds the right value is left alone.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::matching;
use super::rules::as_text;
use super::scan;
use super::{Applicant, Field, FieldKind, FormEngine, FormPage, FormsError, Suggestion};
use crate::browser::BrowserError;
use crate::browser::humanize::{Humanize, Rect, typo_for};
use crate::guard::Block;

/// JS that resolves `A >>> B` selectors across frames and shadow roots, and measures boxes in
/// top-level viewport coordinates.
const PRELUDE: &str = r#"
const R = (sel) => { let root = document, el = null; const parts = sel.split(' >>> ');
  for (let i = 0; i < parts.length; i++) { el = root.querySelector(parts[i]); if (!el) return null;
    if (i < parts.length - 1) { root = el.shadowRoot || el.contentDocument; if (!root) return null; } } return el; };
const BOX = (el) => { const r = el.getBoundingClientRect(); let x = r.left, y = r.top; let w = el.ownerDocument.defaultView;
  while (w && w.frameElement) { const f = w.frameElement.getBoundingClientRect(); x += f.left + w.frameElement.clientLeft; y += f.top + w.frameElement.clientTop; w = w.parent; }
  return { x, y, w: r.width, h: r.height }; };
const TARGET = (el) => { const r = el.getBoundingClientRect(); if ((r.width < 2 || r.height < 2) && el.labels && el.labels.length) return el.labels[0]; return el; };
const N = (s) => (s || '').replace(/\s+/g, ' ').trim();
"#;

/// One written field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilledField {
    pub field_id: String,
    pub selector: String,
    pub label: String,
    #[schema(value_type = Object)]
    pub value: Value,
    pub source: String,
    /// The value was read back from the page after the write.
    pub verified: bool,
}

/// A field left alone, and why (`no_data`, `trap`, `already_filled`, `unsupported`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedField {
    pub field_id: String,
    pub label: String,
    pub reason: &'static str,
}

/// A required field with no value and nothing to fill it with.
#[derive(Debug, Serialize, ToSchema)]
pub struct MissingField {
    pub field_id: String,
    pub label: String,
}

/// A write that failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    pub field_id: String,
    pub message: String,
}

/// What `fill` did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct FillReport {
    pub filled_fields: Vec<FilledField>,
    pub skipped: Vec<SkippedField>,
    pub missing_required: Vec<MissingField>,
    pub errors: Vec<FieldError>,
    /// A block that appeared while filling (e.g. a CAPTCHA on submit-less validation).
    pub block: Option<Block>,
    /// Notes from the engine (e.g. the LLM failed and the rules' suggestions were used).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
}

/// Fills the page: scan, suggest, apply overrides, write and verify; a second pass covers
/// questions that appeared because of the first (e.g. "If yes, please explain").
pub async fn fill(
    page: &dyn FormPage,
    engine: &dyn FormEngine,
    applicant: &Applicant,
    overrides: &Map<String, Value>,
    humanize: Humanize,
    rng: &mut StdRng,
) -> Result<FillReport, FormsError> {
    let started = Instant::now();
    let first = scan::scan(page).await?;
    let unknown: Vec<String> = overrides
        .keys()
        .filter(|k| !first.fields.iter().any(|f| &f.field_id == *k || &f.selector == *k))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(FormsError::UnknownOverride(unknown));
    }
    let mut report = FillReport::default();
    let mut done: HashSet<String> = HashSet::new();
    let mut current = first;
    for _pass in 0..2 {
        let (fields, warnings) = scan::suggest(&current, engine, applicant).await;
        for warning in warnings {
            if !report.warnings.contains(&warning) {
                report.warnings.push(warning);
            }
        }
        let mut wrote = false;
        for mut field in fields {
            if !done.insert(field.field_id.clone()) {
                continue;
            }
            if let Some(value) = overrides.get(&field.field_id).or_else(|| overrides.get(&field.selector)) {
                field.suggestion = Some(Suggestion {
                    value: value.clone(),
                    source: "override".into(),
                    confidence: 1.0,
                    ..Default::default()
                });
            }
            wrote |= fill_field(page, &field, applicant, humanize, rng, &mut report).await?;
        }
        if !wrote {
            break;
        }
        current = scan::scan(page).await?;
        if current.fields.iter().all(|f| done.contains(&f.field_id) || f.trap || !f.hints.visible) {
            break;
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Handles one field; returns whether it wrote anything.
async fn fill_field(
    page: &dyn FormPage,
    field: &Field,
    applicant: &Applicant,
    humanize: Humanize,
    rng: &mut StdRng,
    report: &mut FillReport,
) -> Result<bool, FormsError> {
    let skip = |reason| SkippedField { field_id: field.field_id.clone(), label: field.label.clone(), reason };
    if field.trap {
        report.skipped.push(skip("trap"));
        return Ok(false);
    }
    let Some(suggestion) = &field.suggestion else {
        if field.required && is_empty(&field.value) {
            report.missing_required.push(MissingField { field_id: field.field_id.clone(), label: field.label.clone() });
        } else {
            report.skipped.push(skip("no_data"));
        }
        return Ok(false);
    };
    if holds(field, &suggestion.value) {
        report.skipped.push(skip("already_filled"));
        return Ok(false);
    }
    let executor = Executor { page, humanize };
    let result = match field.kind {
        FieldKind::File => match &applicant.resume {
            Some(path) if suggestion.source == "resume" || suggestion.source == "override" => {
                executor.file(field, path, rng).await
            }
            _ => {
                report.skipped.push(skip("unsupported"));
                return Ok(false);
            }
        },
        FieldKind::Select => executor.select(field, &as_text(&suggestion.value)).await,
        FieldKind::RadioGroup => executor.choose(field, &[as_text(&suggestion.value)], rng).await,
        FieldKind::CheckboxGroup => {
            let wanted: Vec<String> = match &suggestion.value {
                Value::Array(items) => items.iter().map(as_text).collect(),
                other => vec![as_text(other)],
            };
            executor.choose(field, &wanted, rng).await
        }
        FieldKind::Checkbox => executor.checkbox(field, suggestion.value.as_bool().unwrap_or(false), rng).await,
        FieldKind::Combobox => executor.combobox(field, &as_text(&suggestion.value), rng).await,
        _ if field.hints.widget == "typeahead" => executor.combobox(field, &as_text(&suggestion.value), rng).await,
        FieldKind::Date => executor.date(field, &as_text(&suggestion.value), rng).await,
        _ => executor.text(field, &as_text(&suggestion.value), rng).await,
    };
    match result {
        Ok((value, verified)) => {
            report.filled_fields.push(FilledField {
                field_id: field.field_id.clone(),
                selector: field.selector.clone(),
                label: field.label.clone(),
                value,
                source: suggestion.source.clone(),
                verified,
            });
            Ok(true)
        }
        Err(FillError::Browser(e @ (BrowserError::Disconnected | BrowserError::Timeout(_)))) => Err(e.into()),
        Err(e) => {
            report.errors.push(FieldError { field_id: field.field_id.clone(), message: e.to_string() });
            Ok(true)
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// True when the field already shows the wanted value.
fn holds(field: &Field, wanted: &Value) -> bool {
    match (&field.value, wanted) {
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => {
            let norm = |v: &Vec<Value>| {
                let mut s: Vec<String> = v.iter().map(|x| matching::normalize(&as_text(x))).collect();
                s.sort();
                s
            };
            norm(a) == norm(b)
        }
        (Value::String(a), b) => !a.is_empty() && same_text(field.kind, a, &as_text(b)),
        _ => false,
    }
}

/// Compares what the page shows with what was written (phone masks keep the digits).
fn same_text(kind: FieldKind, shown: &str, wanted: &str) -> bool {
    if kind == FieldKind::Tel || kind == FieldKind::Number {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        return digits(shown) == digits(wanted);
    }
    shown.trim() == wanted.trim() || matching::normalize(shown) == matching::normalize(wanted)
}

/// Failures writing one field (reported per field; the fill goes on).
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Browser(#[from] BrowserError),
    #[error("the element is no longer on the page")]
    Gone,
    #[error("no option matching {0:?} appeared")]
    NoOption(String),
}

/// Writes values into one page with one humanize policy.
pub(super) struct Executor<'a> {
    pub(super) page: &'a dyn FormPage,
    pub(super) humanize: Humanize,
}

fn js(value: &str) -> String {
    serde_json::to_string(value).expect("strings serialise")
}

impl Executor<'_> {
    async fn eval(&self, what: &'static str, body: &str) -> Result<Value, FillError> {
        let script = format!("(async () => {{ {PRELUDE} {body} }})()");
        Ok(self.page.eval(what, &script).await?)
    }

    async fn pause(&self, rng: &mut StdRng) {
        let d = self.humanize.action_delay(rng);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// Brings the element into view (wheel steps for people, a jump otherwise) and returns the
    /// box to click, which for a visually hidden radio or checkbox is its label.
    async fn reveal(&self, selector: &str, rng: &mut StdRng) -> Result<Rect, FillError> {
        let measure = |settle: bool| {
            format!(
                "const el = R({}); if (!el) return null; const t = TARGET(el); \
                 if ({settle}) {{ let last = NaN, same = 0; \
                   for (let i = 0; i < 60 && same < 2; i++) {{ await new Promise((r) => setTimeout(r, 25)); \
                     const top = t.getBoundingClientRect().top; if (top === last) same++; else {{ same = 0; last = top; }} }} }} \
                 return {{ ...BOX(t), vh: innerHeight }};",
                js(selector)
            )
        };
        let read = |v: Value| -> Result<(Rect, f64), FillError> {
            let vh = v.get("vh").and_then(Value::as_f64).ok_or(FillError::Gone)?;
            let rect: Rect = serde_json::from_value(v).map_err(|_| FillError::Gone)?;
            Ok((rect, vh))
        };
        let (mut rect, vh) = read(self.eval("measure", &measure(false)).await?)?;
        let off_view = |r: &Rect| r.y < 0.0 || r.y + r.h > vh;
        if off_view(&rect) && self.humanize != Humanize::Off {
            let distance = rect.y + rect.h / 2.0 - vh / 2.0;
            for (dy, pause) in self.humanize.scroll_steps(distance, rng) {
                self.page.wheel(rect.x.max(1.0) + 1.0, vh / 2.0, dy).await?;
                tokio::time::sleep(pause).await;
            }
            // Wheel scrolling is smooth: measure again once the element stops moving.
            rect = read(self.eval("measure", &measure(true)).await?)?.0;
        }
        if off_view(&rect) {
            let jump = format!(
                "const el = R({}); if (!el) return null; TARGET(el).scrollIntoView({{block: 'center', inline: 'nearest'}}); \
                 return {{ ...BOX(TARGET(el)), vh: innerHeight }};",
                js(selector)
            );
            rect = read(self.eval("scroll", &jump).await?)?.0;
        }
        Ok(rect)
    }

    /// Scrolls to an element and clicks it the way the humanize policy says.
    pub(super) async fn click(&self, selector: &str, rng: &mut StdRng) -> Result<(), FillError> {
        let rect = self.reveal(selector, rng).await?;
        let (x, y) = self.humanize.click_point(rect, rng);
        if self.humanize != Humanize::Off {
            self.page.mouse_move(x, y).await?;
            self.pause(rng).await;
        }
        self.page.click_at(x, y).await?;
        Ok(())
    }

    /// Types text into the focused element key by key (with corrected typos), or inserts it in
    /// one go (humanize `off`, or text over `MAX_TYPED_CHARS`).
    async fn type_text(&self, text: &str, rng: &mut StdRng) -> Result<(), FillError> {
        if !self.humanize.types_text(text) {
            self.page.insert_text(text).await?;
            return Ok(());
        }
        for c in text.chars() {
            if c.is_ascii_alphanumeric() && self.humanize.typo(rng) {
                self.page.type_char(typo_for(c, rng)).await?;
                tokio::time::sleep(self.humanize.key_delay(rng)).await;
                self.page.press_key("Backspace").await?;
                tokio::time::sleep(self.humanize.key_delay(rng)).await;
            }
            if c == '\n' {
                self.page.press_key("Enter").await?;
            } else {
                self.page.type_char(c).await?;
            }
            let d = self.humanize.key_delay(rng);
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
        }
        Ok(())
    }

    /// Text-like fields: click (or focus), select what is there, type, read back.
    async fn text(&self, field: &Field, value: &str, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        if self.humanize == Humanize::Off {
            self.reveal(&field.selector, rng).await?;
        } else {
            self.click(&field.selector, rng).await?;
        }
        let focus = format!(
            "const el = R({}); if (!el) return false; el.focus(); if (el.select) try {{ el.select(); }} catch (e) {{}} return true;",
            js(&field.selector)
        );
        if self.eval("focus", &focus).await? != json!(true) {
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

    async fn read_value(&self, selector: &str, blur: bool) -> Result<Value, FillError> {
        let body = format!(
            "const el = R({}); if (!el) return null; const v = el.value; {} return v;",
            js(selector),
            if blur { "el.blur();" } else { "" }
        );
        self.eval("read back", &body).await
    }

    /// Date inputs take `YYYY-MM-DD` through the native setter; text date fields are typed.
    async fn date(&self, field: &Field, value: &str, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        if field.hints.input_type.as_deref() != Some("date") {
            return self.text(field, value, rng).await;
        }
        self.reveal(&field.selector, rng).await?;
        let body = format!(
            "const el = R({sel}); if (!el) return null; el.focus(); \
             Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(el, {v}); \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}})); \
             el.blur(); return el.value;",
            sel = js(&field.selector),
            v = js(value)
        );
        let shown = self.eval("set date", &body).await?;
        Ok((json!(value), shown.as_str() == Some(value)))
    }

    /// Native selects: the option by label, through the native setter, with input and change.
    async fn select(&self, field: &Field, label: &str) -> Result<(Value, bool), FillError> {
        let option =
            field.options.iter().find(|o| o.label == label).ok_or_else(|| FillError::NoOption(label.into()))?;
        let body = format!(
            "const el = R({sel}); if (!el) return null; el.focus(); \
             Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value').set.call(el, {v}); \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}})); \
             el.blur(); const o = el.selectedOptions[0]; return o ? N(o.text) : null;",
            sel = js(&field.selector),
            v = js(&option.value)
        );
        let shown = self.eval("select option", &body).await?;
        Ok((json!(label), shown.as_str() == Some(label)))
    }

    /// Radio, button and checkbox groups: click each option whose state differs from the answer.
    async fn choose(&self, field: &Field, wanted: &[String], rng: &mut StdRng) -> Result<(Value, bool), FillError> {
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

    async fn is_on(&self, selector: &str) -> Result<bool, FillError> {
        let body = format!(
            "const el = R({}); if (!el) return null; if ('checked' in el && (el.type === 'radio' || el.type === 'checkbox')) return el.checked; \
             return el.getAttribute('aria-pressed') === 'true' || el.getAttribute('aria-checked') === 'true';",
            js(selector)
        );
        self.eval("read state", &body).await?.as_bool().ok_or(FillError::Gone)
    }

    async fn checkbox(&self, field: &Field, desired: bool, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        if self.is_on(&field.selector).await? != desired {
            self.click(&field.selector, rng).await?;
        }
        Ok((json!(desired), self.is_on(&field.selector).await? == desired))
    }

    /// Comboboxes and typeaheads: open, type, choose the `[role=option]` that matches, and
    /// check that the widget shows it.
    async fn combobox(&self, field: &Field, answer: &str, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        self.click(&field.selector, rng).await?;
        let is_button = field.hints.widget == "listbox_button";
        if !is_button {
            let focus = format!(
                "const el = R({}); if (!el) return false; el.focus(); if (el.select) el.select(); return true;",
                js(&field.selector)
            );
            self.eval("focus", &focus).await?;
            // A typeahead searches by the first part ("San Francisco"); the answer picks the match.
            let query = if field.hints.widget == "typeahead" {
                answer.split(',').next().unwrap_or(answer).trim()
            } else {
                answer
            };
            self.type_text(query, rng).await?;
        }
        let mut options = self.visible_options(&field.selector).await?;
        if options.is_empty() && !is_button {
            // Nothing matched the typed text: clear it and list every option.
            let clear =
                format!("const el = R({}); if (el && el.select) el.select(); return true;", js(&field.selector));
            self.eval("clear", &clear).await?;
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
        let (x, y) = self.humanize.click_point(options[i].1, rng);
        if self.humanize != Humanize::Off {
            self.page.mouse_move(x, y).await?;
            self.pause(rng).await;
        }
        self.page.click_at(x, y).await?;
        let chosen = labels[i].clone();
        let shown = self.shown_choice(&field.selector).await?;
        Ok((json!(chosen), shown.is_some_and(|s| matching::normalize(&s) == matching::normalize(&chosen))))
    }

    /// The options the widget shows now (waiting up to 2 s for them), with their boxes.
    async fn visible_options(&self, selector: &str) -> Result<Vec<(String, Rect)>, FillError> {
        let body = format!(
            "const el = R({}); if (!el) return null; const doc = el.ownerDocument; \
             const near = el.closest('.select__container, .select-shell, [data-uxi-widget-type], .application-question, .field, form') || doc; \
             const vis = (o) => {{ const r = o.getBoundingClientRect(); return r.width > 1 && r.height > 1 && getComputedStyle(o).visibility !== 'hidden'; }}; \
             const find = () => {{ const ids = [el.getAttribute('aria-controls'), el.getAttribute('aria-owns')].filter(Boolean); \
               let lists = ids.map((id) => doc.getElementById(id)).filter(Boolean); \
               let opts = lists.flatMap((l) => Array.from(l.querySelectorAll('[role=option], .select__option'))); \
               if (!opts.length) opts = Array.from(near.querySelectorAll('[role=option], .select__option, .dropdown-location, .dropdown-results > *')); \
               if (!opts.length) opts = Array.from(doc.querySelectorAll('[role=listbox] [role=option], [role=option]')); \
               return opts.filter(vis); }}; \
             const deadline = performance.now() + 2000; let opts = find(); \
             while (!opts.length && performance.now() < deadline) {{ await new Promise((r) => setTimeout(r, 50)); opts = find(); }} \
             await new Promise((r) => setTimeout(r, 0)); opts = find(); \
             return opts.map((o) => ({{ label: N(o.textContent), box: BOX(o) }})).filter((o) => o.label);",
            js(selector)
        );
        let value = self.eval("list options", &body).await?;
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
        let body = format!(
            "const el = R({}); if (!el) return null; \
             if (el.tagName === 'BUTTON') return N(el.textContent); \
             const box = el.closest('.select__control, [class*=\"select__control\"], .select-shell, .select__container') || (el.parentElement && el.parentElement.parentElement); \
             const single = box && box.querySelector('.select__single-value, [class*=\"singleValue\"], [class*=\"single-value\"]'); \
             if (single) return N(single.textContent); return N(el.value) || null;",
            js(selector)
        );
        Ok(self.eval("read choice", &body).await?.as_str().map(str::to_string))
    }

    /// File inputs (hidden ones too) through `DOM.setFileInputFiles`; read back name and size.
    async fn file(&self, field: &Field, path: &std::path::Path, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        self.pause(rng).await;
        let element = format!("(() => {{ {PRELUDE} return R({}); }})()", js(&field.selector));
        self.page.set_files(&element, &[path.to_path_buf()]).await?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let size = tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0);
        let body = format!(
            "const el = R({}); if (!el || !el.files || !el.files.length) return null; return {{ name: el.files[0].name, size: el.files[0].size }};",
            js(&field.selector)
        );
        let shown = self.eval("read file", &body).await?;
        let verified = shown.get("name").and_then(Value::as_str) == Some(name.as_str())
            && shown.get("size").and_then(Value::as_u64) == Some(size);
        Ok((json!(name), verified))
    }
}

#[cfg(test)]
mod tests;
