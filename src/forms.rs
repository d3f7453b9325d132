//! Form understanding and filling: scan a live page into `Field`s, let a `FormEngine` decide
//! which applicant fact goes into each field, and write the values with verified executors.
//!
//! `forms/` reaches the browser only through the `browser::port::PagePort` trait (implemented by
//! `BrowserHandle`), so its decisions can be read without knowing CDP.

pub mod cache;
pub mod facts;
pub mod fill;
pub mod geo;
pub mod intent;
pub mod legal;
pub mod llm;
pub mod matching;
pub mod platforms;
pub mod prompt;
pub mod resume;
pub mod rules;
pub mod scan;
pub mod submit;

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::browser::BrowserError;

pub use platforms::Platform;

/// What a control is, as far as filling it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Email,
    Tel,
    Url,
    Number,
    Date,
    Textarea,
    Select,
    RadioGroup,
    Checkbox,
    CheckboxGroup,
    Combobox,
    File,
}

impl FieldKind {
    /// Kinds written by typing.
    pub fn is_text_like(self) -> bool {
        matches!(self, Self::Text | Self::Email | Self::Tel | Self::Url | Self::Number | Self::Date | Self::Textarea)
    }

    /// Kinds whose answer must be one of the page's options.
    pub fn is_choice(self) -> bool {
        matches!(self, Self::Select | Self::RadioGroup | Self::CheckboxGroup | Self::Combobox)
    }
}

/// One choice of a select, radio group, checkbox group or combobox, with its exact text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldOption {
    pub value: String,
    pub label: String,
    /// The element to click for this choice (radio and button groups).
    #[serde(default, skip_serializing)]
    pub selector: Option<String>,
}

/// A value proposed for a field and where it came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Suggestion {
    /// A string, a bool (checkbox) or a list of option labels (checkbox group).
    #[schema(value_type = Object)]
    pub value: Value,
    /// `user_data.<key>`, `qa_answers.<question>`, `resume`, `default`, `llm` or `override`.
    pub source: String,
    pub confidence: f64,
    /// The engine that decided (`rules` or `llm`), with the `auto` and `llm` engines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// For `source: "llm"`: the applicant fact the model pointed at (`user_data.<key>`,
    /// `qa_answers.<question>`) or `generated`; the value itself was copied by the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
}

/// One question of the page (a radio or checkbox group is one field).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Field {
    /// Stable id within the page (html id, name, automation id or selector).
    pub field_id: String,
    /// CSS selector matching exactly this element (`A >>> B` crosses a frame or shadow root).
    pub selector: String,
    pub html_id: Option<String>,
    pub name: Option<String>,
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<FieldOption>,
    /// Current value: a string, a bool, a list of strings or null.
    #[schema(value_type = Object)]
    pub value: Value,
    pub section: Option<String>,
    /// A honeypot, a decoy outside the application form or a hidden proxy input: never filled.
    pub trap: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trap_reason: Option<String>,
    /// The page's own error message for this field (after a failed submit), if it shows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Suggestion>,
    #[serde(flatten, skip_serializing)]
    #[schema(ignore)]
    pub hints: FieldHints,
}

/// What the scanner saw that the engines and executors use but callers need not.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FieldHints {
    #[serde(default)]
    pub visible: bool,
    /// `native`, `react_select`, `aria_combobox`, `listbox_button`, `button_group`, `typeahead`,
    /// `styled_select` (a hidden native select driven by a visible widget).
    #[serde(default)]
    pub widget: String,
    pub autocomplete: Option<String>,
    pub input_type: Option<String>,
    pub placeholder: Option<String>,
    /// A single checkbox's own label (its question may be elsewhere).
    pub own_label: Option<String>,
    pub accept: Option<String>,
    pub max_length: Option<u32>,
    /// What a file input is for: `resume`, `cover_letter`, `photo` or `other` (from its label,
    /// section and accept attribute); none when nothing says.
    #[serde(default)]
    pub file_role: Option<String>,
    /// For a hidden native select: the selector of the visible widget that drives it.
    #[serde(default)]
    pub driver: Option<String>,
    /// For a phone number box: the selector of the dial-code picker beside it (a select or a
    /// combobox, itself a field labelled "`<question> (country code)`").
    #[serde(default)]
    pub dial_picker: Option<String>,
    /// For a date asked in parts (day, month, year as selects or boxes under one question): each
    /// part; the field's own selector is the first part's.
    #[serde(default)]
    pub date_parts: Vec<DatePart>,
}

/// One part of a date asked in several controls.
#[derive(Debug, Clone, Deserialize)]
pub struct DatePart {
    /// `day`, `month` or `year`.
    pub part: String,
    pub selector: String,
    /// A select's options (value and text); empty for a text box.
    #[serde(default)]
    pub options: Vec<FieldOption>,
    /// A text box's length limit or placeholder width ("YY" asks for two digits).
    pub placeholder: Option<String>,
}

/// A clickable control: `{"selector", "text"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Control {
    pub selector: String,
    pub text: String,
}

/// The page's primary controls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Actions {
    pub apply: Option<Control>,
    pub next: Option<Control>,
    pub review: Option<Control>,
    pub submit: Option<Control>,
}

/// Where a multi-step form is.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Step {
    /// 1-based position, when the page shows it.
    pub index: Option<u32>,
    pub total: Option<u32>,
    pub title: Option<String>,
}

/// What kind of page the session is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    JobPosting,
    ApplicationForm,
    Confirmation,
    Login,
    Blocked,
    Unknown,
}

/// What the applicant agrees to (SPEC §4.1): a privacy acknowledgement is ticked unless
/// `acknowledge_required` is false; marketing, talent-pool and future-contact opt-ins only with
/// `opt_ins: true`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct ConsentPolicy {
    #[serde(default = "yes")]
    pub acknowledge_required: bool,
    #[serde(default)]
    pub opt_ins: bool,
}

fn yes() -> bool {
    true
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        Self { acknowledge_required: true, opt_ins: false }
    }
}

/// The applicant's data as the caller gave it.
#[derive(Debug, Clone, Default)]
pub struct Applicant {
    pub user_data: Map<String, Value>,
    pub qa_answers: Map<String, Value>,
    /// The resume file on disk, when one was given.
    pub resume: Option<PathBuf>,
    pub cover_letter_text: Option<String>,
    /// Lets the `llm` engine write short free-text answers to open questions.
    pub allow_generated_text: bool,
    pub consent: ConsentPolicy,
}

impl Applicant {
    pub fn is_empty(&self) -> bool {
        self.user_data.is_empty() && self.qa_answers.is_empty() && self.resume.is_none()
    }
}

/// What an engine sees of the page.
pub struct PageContext<'a> {
    pub platform: Platform,
    pub fields: &'a [Field],
    pub title: &'a str,
    /// The form's heading or step title, when the page shows one.
    pub heading: Option<&'a str>,
}

/// Decides which applicant fact or option goes into each field; never writes to the page.
#[async_trait]
pub trait FormEngine: Send + Sync {
    fn name(&self) -> &'static str;
    /// One entry per field of `page.fields` (same order): the suggestion, or none.
    async fn suggest(&self, page: &PageContext<'_>, applicant: &Applicant) -> Vec<Option<Suggestion>>;

    /// `suggest` plus notes for the caller (e.g. "the model timed out; rules' suggestions stand").
    async fn suggest_noted(&self, page: &PageContext<'_>, applicant: &Applicant) -> Noted {
        Noted { suggestions: self.suggest(page, applicant).await, warnings: Vec::new() }
    }
}

/// Suggestions with the engine's notes about how they were reached.
#[derive(Debug, Default)]
pub struct Noted {
    pub suggestions: Vec<Option<Suggestion>>,
    pub warnings: Vec<String>,
}

/// Failures of analyze and fill.
#[derive(Debug, thiserror::Error)]
pub enum FormsError {
    #[error(transparent)]
    Browser(#[from] BrowserError),
    #[error("the page could not be scanned: {0}")]
    Scan(String),
    #[error("overrides name fields that are not on the page: {}", .0.join(", "))]
    UnknownOverride(Vec<String>),
    #[error(transparent)]
    Resume(#[from] resume::ResumeError),
    #[error("{0}")]
    EngineUnavailable(String),
    #[error("the control could not be clicked: {0}")]
    Click(String),
    #[error("clicking {0:?} changed nothing on the page (the same step twice): stopping here")]
    NoProgress(String),
}
