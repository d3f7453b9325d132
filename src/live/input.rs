//! What a live viewer may send (SPEC §3.7): mouse, scroll, key and text messages, checked and
//! bounded here, and the CDP `Input.*` commands each becomes. Pure: no I/O, no browser.
//!
//! Only the listed message types exist; anything else is `invalid_message`. Coordinates are CSS
//! pixels of the viewport and are clamped into it; wheel deltas, text length and modifiers are
//! bounded; a key is one character or a name from `NAMED_KEYS`.

use serde::Deserialize;
use serde_json::{Value, json};

/// Longest `text` message, in characters (a paste of a paragraph, not of a book).
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Largest wheel delta per message, in CSS pixels.
const MAX_WHEEL_DELTA: f64 = 10_000.0;
/// Coordinates are clamped to this when the viewport's size is not known yet.
const MAX_COORDINATE: f64 = 16_384.0;

/// A message from a viewer, as parsed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    Mouse {
        event: MouseEvent,
        x: f64,
        y: f64,
        #[serde(default)]
        button: Button,
    },
    Scroll {
        x: f64,
        y: f64,
        #[serde(default)]
        dx: f64,
        #[serde(default)]
        dy: f64,
    },
    Key {
        key: String,
        #[serde(default)]
        modifiers: Vec<Modifier>,
    },
    Text {
        text: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MouseEvent {
    Click,
    Down,
    Up,
    Move,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Button {
    #[default]
    Left,
    Right,
    Middle,
}

impl Button {
    fn as_str(self) -> &'static str {
        match self {
            Button::Left => "left",
            Button::Right => "right",
            Button::Middle => "middle",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Modifier {
    Alt,
    Control,
    Meta,
    Shift,
}

impl Modifier {
    /// CDP's modifier bit.
    fn bit(self) -> i64 {
        match self {
            Modifier::Alt => 1,
            Modifier::Control => 2,
            Modifier::Meta => 4,
            Modifier::Shift => 8,
        }
    }
}

/// Why a message was refused (sent back as `{"type": "error", "code", "message"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub code: &'static str,
    pub message: String,
}

impl InputError {
    fn invalid(message: impl Into<String>) -> Self {
        Self { code: "invalid_input", message: message.into() }
    }
}

/// Named keys: (key, code, Windows virtual key code, text typed).
const NAMED_KEYS: &[(&str, &str, i64, Option<&str>)] = &[
    ("Backspace", "Backspace", 8, None),
    ("Tab", "Tab", 9, None),
    ("Enter", "Enter", 13, Some("\r")),
    ("Escape", "Escape", 27, None),
    ("PageUp", "PageUp", 33, None),
    ("PageDown", "PageDown", 34, None),
    ("End", "End", 35, None),
    ("Home", "Home", 36, None),
    ("ArrowLeft", "ArrowLeft", 37, None),
    ("ArrowUp", "ArrowUp", 38, None),
    ("ArrowRight", "ArrowRight", 39, None),
    ("ArrowDown", "ArrowDown", 40, None),
    ("Delete", "Delete", 46, None),
];

/// Parses and checks one text message from a viewer.
pub fn parse(text: &str) -> Result<Input, InputError> {
    let input: Input = serde_json::from_str(text).map_err(|e| InputError {
        code: "invalid_message",
        message: format!("not a live view message ({e}); types: mouse, scroll, key, text"),
    })?;
    match &input {
        Input::Mouse { x, y, .. } => finite(&[*x, *y])?,
        Input::Scroll { x, y, dx, dy } => finite(&[*x, *y, *dx, *dy])?,
        Input::Key { key, modifiers } => {
            if modifiers.len() > 4 {
                return Err(InputError::invalid("at most 4 modifiers"));
            }
            key_definition(key)?;
        }
        Input::Text { text } => {
            let chars = text.chars().count();
            if chars == 0 || chars > MAX_TEXT_CHARS {
                return Err(InputError::invalid(format!("text must be 1 to {MAX_TEXT_CHARS} characters")));
            }
        }
    }
    Ok(input)
}

fn finite(numbers: &[f64]) -> Result<(), InputError> {
    if numbers.iter().all(|n| n.is_finite()) { Ok(()) } else { Err(InputError::invalid("numbers must be finite")) }
}

/// The key definition of `key`: a named key, or one character (code and key code derived
/// for letters, digits and space).
fn key_definition(key: &str) -> Result<(String, String, i64, Option<String>), InputError> {
    if let Some((name, code, vk, text)) = NAMED_KEYS.iter().find(|k| k.0 == key) {
        return Ok((name.to_string(), code.to_string(), *vk, text.map(str::to_string)));
    }
    let mut chars = key.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return Err(InputError::invalid("key must be one character or a named key (Enter, Tab, Backspace, …)"));
    };
    if c.is_control() {
        return Err(InputError::invalid("key must be a printable character or a named key"));
    }
    let upper = c.to_ascii_uppercase();
    let (code, vk) = match c {
        ' ' => ("Space".to_string(), 32),
        c if c.is_ascii_alphabetic() => (format!("Key{upper}"), upper as i64),
        c if c.is_ascii_digit() => (format!("Digit{c}"), c as i64),
        _ => (String::new(), 0),
    };
    Ok((c.to_string(), code, vk, Some(c.to_string())))
}

/// The viewport the page is shown at (CSS pixels), for clamping; zero when not known yet.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Viewport {
    pub width: f64,
    pub height: f64,
}

impl Viewport {
    fn clamp(&self, x: f64, y: f64) -> (f64, f64) {
        let limit = |size: f64| if size >= 1.0 { size - 1.0 } else { MAX_COORDINATE };
        (x.clamp(0.0, limit(self.width)), y.clamp(0.0, limit(self.height)))
    }
}

/// The CDP commands (`{"method", "params"}`) that carry out `input` on a page shown at `viewport`.
pub fn commands(input: &Input, viewport: Viewport) -> Vec<Value> {
    let mouse = |kind: &str, x: f64, y: f64, button: &str, clicks: i64| {
        json!({"method": "Input.dispatchMouseEvent",
            "params": {"type": kind, "x": x, "y": y, "button": button, "clickCount": clicks}})
    };
    match input {
        Input::Mouse { event, x, y, button } => {
            let (x, y) = viewport.clamp(*x, *y);
            let button = button.as_str();
            match event {
                MouseEvent::Move => vec![mouse("mouseMoved", x, y, "none", 0)],
                MouseEvent::Down => vec![mouse("mousePressed", x, y, button, 1)],
                MouseEvent::Up => vec![mouse("mouseReleased", x, y, button, 1)],
                MouseEvent::Click => vec![
                    mouse("mouseMoved", x, y, "none", 0),
                    mouse("mousePressed", x, y, button, 1),
                    mouse("mouseReleased", x, y, button, 1),
                ],
            }
        }
        Input::Scroll { x, y, dx, dy } => {
            let (x, y) = viewport.clamp(*x, *y);
            let bound = |d: f64| d.clamp(-MAX_WHEEL_DELTA, MAX_WHEEL_DELTA);
            vec![json!({"method": "Input.dispatchMouseEvent",
                "params": {"type": "mouseWheel", "x": x, "y": y, "deltaX": bound(*dx), "deltaY": bound(*dy)}})]
        }
        Input::Key { key, modifiers } => {
            let Ok((key, code, vk, text)) = key_definition(key) else { return Vec::new() };
            let bits = modifiers.iter().fold(0, |bits, m| bits | m.bit());
            // With Control, Alt or Meta held a key is a shortcut, not typing.
            let shortcut = bits & (1 | 2 | 4) != 0;
            let text = text.filter(|_| !shortcut);
            let mut down = json!({"type": if text.is_some() { "keyDown" } else { "rawKeyDown" }, "key": key,
                "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk, "modifiers": bits});
            if let Some(text) = &text {
                down["text"] = json!(text);
                down["unmodifiedText"] = json!(text);
            }
            if shortcut && code == "KeyA" {
                down["commands"] = json!(["selectAll"]);
            }
            let up = json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk,
                "nativeVirtualKeyCode": vk, "modifiers": bits});
            vec![
                json!({"method": "Input.dispatchKeyEvent", "params": down}),
                json!({"method": "Input.dispatchKeyEvent", "params": up}),
            ]
        }
        Input::Text { text } => vec![json!({"method": "Input.insertText", "params": {"text": text}})],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEWPORT: Viewport = Viewport { width: 800.0, height: 600.0 };

    #[test]
    fn only_the_listed_messages_with_bounded_values_are_accepted() {
        let long = format!(r#"{{"type":"text","text":"{}"}}"#, "x".repeat(MAX_TEXT_CHARS + 1));
        let refused: &[(&str, &str)] = &[
            ("not json", "invalid_message"),
            (r#"{"type":"eval","expression":"1"}"#, "invalid_message"),
            (r#"{"method":"Runtime.evaluate"}"#, "invalid_message"),
            (r#"{"type":"mouse","event":"click","x":"1","y":2}"#, "invalid_message"),
            (r#"{"type":"mouse","event":"drag","x":1,"y":2}"#, "invalid_message"),
            (r#"{"type":"key","key":"F13"}"#, "invalid_input"),
            (r#"{"type":"key","key":"ab"}"#, "invalid_input"),
            (r#"{"type":"key","key":"\u0007"}"#, "invalid_input"),
            (r#"{"type":"key","key":"a","modifiers":["Hyper"]}"#, "invalid_message"),
            (r#"{"type":"text","text":""}"#, "invalid_input"),
            (&long, "invalid_input"),
        ];
        for (message, code) in refused {
            assert_eq!(parse(message).map_err(|e| e.code), Err(*code), "{message}");
        }
        let accepted = [
            r#"{"type":"mouse","event":"click","x":10,"y":20}"#,
            r#"{"type":"mouse","event":"down","x":10.5,"y":20,"button":"right"}"#,
            r#"{"type":"scroll","x":1,"y":2,"dy":120}"#,
            r#"{"type":"key","key":"Enter"}"#,
            r#"{"type":"key","key":"a","modifiers":["Control"]}"#,
            r#"{"type":"key","key":"é"}"#,
            r#"{"type":"text","text":"Grüezi"}"#,
        ];
        for message in accepted {
            assert!(parse(message).is_ok(), "{message}");
        }
    }

    #[test]
    fn coordinates_and_deltas_stay_inside_the_viewport() {
        let click = parse(r#"{"type":"mouse","event":"click","x":-50,"y":1e9}"#).unwrap();
        for command in commands(&click, VIEWPORT) {
            assert_eq!((command["params"]["x"].as_f64(), command["params"]["y"].as_f64()), (Some(0.0), Some(599.0)));
        }
        let scroll = parse(r#"{"type":"scroll","x":5,"y":5,"dx":-1e12,"dy":1e12}"#).unwrap();
        let params = &commands(&scroll, VIEWPORT)[0]["params"];
        assert_eq!((params["deltaX"].as_f64(), params["deltaY"].as_f64()), (Some(-10_000.0), Some(10_000.0)));
    }

    #[test]
    fn keys_type_text_unless_a_shortcut_modifier_is_held() {
        let typed = commands(&parse(r#"{"type":"key","key":"a"}"#).unwrap(), VIEWPORT);
        assert_eq!(
            (typed[0]["params"]["type"].as_str(), typed[0]["params"]["text"].as_str()),
            (Some("keyDown"), Some("a"))
        );
        assert_eq!(typed[1]["params"]["type"], "keyUp");
        let shortcut = commands(&parse(r#"{"type":"key","key":"a","modifiers":["Control"]}"#).unwrap(), VIEWPORT);
        assert!(shortcut[0]["params"]["text"].is_null(), "{shortcut:?}");
        assert_eq!(shortcut[0]["params"]["commands"], json!(["selectAll"]));
        let enter = commands(&parse(r#"{"type":"key","key":"Enter"}"#).unwrap(), VIEWPORT);
        assert_eq!(enter[0]["params"]["windowsVirtualKeyCode"], 13);
        let text = commands(&parse(r#"{"type":"text","text":"hi"}"#).unwrap(), VIEWPORT);
        assert_eq!(text, vec![json!({"method": "Input.insertText", "params": {"text": "hi"}})]);
    }
}
