//! The executor: one page, one humanize policy. Every page-side step is a function from
//! `js/` called with JSON arguments (`PagePort::call`); no value is ever spliced into script
//! source.

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::FillError;
use crate::browser::humanize::{Humanize, Rect, typo_for};
use crate::browser::port::PagePort;

/// Helpers every function gets (`R`, `BOX`, `TARGET`, `N`, `FIRE`).
const LIB: &str = include_str!("js/lib.js");

/// A page-side function: an arrow function taking one JSON object (see `js/`).
#[derive(Clone, Copy)]
pub(crate) struct Script(pub(crate) &'static str);

macro_rules! scripts {
    ($($name:ident = $file:literal;)*) => {
        $(pub(crate) const $name: Script = Script(include_str!(concat!("js/", $file)));)*
    };
}

scripts! {
    MEASURE = "measure.js";
    SCROLL = "scroll.js";
    FOCUS = "focus.js";
    READ_VALUE = "read_value.js";
    SET_VALUE = "set_value.js";
    IS_ON = "is_on.js";
    OPTIONS = "options.js";
    SHOWN_CHOICE = "shown_choice.js";
    ELEMENT = "element.js";
    READ_FILE = "read_file.js";
    SELECT = "select.js";
    DIAL_SHOWN = "dial_shown.js";
}

impl Script {
    /// The function declaration sent to the page: the helpers, then this function applied to
    /// the argument.
    pub(crate) fn declaration(self) -> String {
        format!("async function (args) {{\n{LIB}\nreturn await ({})(args);\n}}", self.0.trim().trim_end_matches(';'))
    }
}

/// Writes values into one page with one humanize policy.
pub(crate) struct Executor<'a> {
    pub(crate) page: &'a dyn PagePort,
    pub(crate) humanize: Humanize,
}

impl Executor<'_> {
    /// Runs one page-side function with its JSON argument.
    pub(crate) async fn call(&self, what: &'static str, script: Script, args: Value) -> Result<Value, FillError> {
        Ok(self.page.call(what, &script.declaration(), &args).await?)
    }

    pub(crate) async fn pause(&self, rng: &mut StdRng) {
        let d = self.humanize.action_delay(rng);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// Brings the element into view (wheel steps for people, a jump otherwise) and returns the
    /// box to click, which for a visually hidden radio or checkbox is its label.
    pub(crate) async fn reveal(&self, selector: &str, rng: &mut StdRng) -> Result<Rect, FillError> {
        let read = |v: Value| -> Result<(Rect, f64), FillError> {
            let vh = v.get("vh").and_then(Value::as_f64).ok_or(FillError::Gone)?;
            let rect: Rect = serde_json::from_value(v).map_err(|_| FillError::Gone)?;
            Ok((rect, vh))
        };
        let measure = |settle: bool| json!({ "selector": selector, "settle": settle });
        let (mut rect, vh) = read(self.call("measure", MEASURE, measure(false)).await?)?;
        let off_view = |r: &Rect| r.y < 0.0 || r.y + r.h > vh;
        if off_view(&rect) && self.humanize != Humanize::Off {
            let distance = rect.y + rect.h / 2.0 - vh / 2.0;
            for (dy, pause) in self.humanize.scroll_steps(distance, rng) {
                self.page.wheel(rect.x.max(1.0) + 1.0, vh / 2.0, dy).await?;
                tokio::time::sleep(pause).await;
            }
            // Wheel scrolling is smooth: measure again once the element stops moving.
            rect = read(self.call("measure", MEASURE, measure(true)).await?)?.0;
        }
        if off_view(&rect) {
            rect = read(self.call("scroll", SCROLL, json!({ "selector": selector })).await?)?.0;
        }
        Ok(rect)
    }

    /// Scrolls to an element and clicks it the way the humanize policy says.
    pub(crate) async fn click(&self, selector: &str, rng: &mut StdRng) -> Result<(), FillError> {
        let rect = self.reveal(selector, rng).await?;
        self.click_box(rect, rng).await
    }

    /// Clicks inside a box the way the humanize policy says.
    pub(crate) async fn click_box(&self, rect: Rect, rng: &mut StdRng) -> Result<(), FillError> {
        let (x, y) = self.humanize.click_point(rect, rng);
        if self.humanize != Humanize::Off {
            self.page.mouse_move(x, y).await?;
            self.pause(rng).await;
        }
        self.page.click_at(x, y).await?;
        Ok(())
    }

    /// Focuses a control and selects its text; false when it is gone.
    pub(crate) async fn focus(&self, selector: &str) -> Result<bool, FillError> {
        Ok(self.call("focus", FOCUS, json!({ "selector": selector })).await? == json!(true))
    }

    /// Types text into the focused element key by key (with corrected typos), or inserts it in
    /// one go (humanize `off`, or text over `MAX_TYPED_CHARS`).
    pub(crate) async fn type_text(&self, text: &str, rng: &mut StdRng) -> Result<(), FillError> {
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

    /// A control's value (blurring it first runs the page's on-blur formatting).
    pub(crate) async fn read_value(&self, selector: &str, blur: bool) -> Result<Value, FillError> {
        self.call("read back", READ_VALUE, json!({ "selector": selector, "blur": blur })).await
    }
}
