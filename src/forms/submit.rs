//! Submitting a step: choose the page's primary control (apply, next, review or submit), click
//! it like a person, wait until the page has changed and settled (navigation or DOM change, not
//! a fixed sleep), and say what happened: the next step, validation errors, a confirmed
//! submission, or no progress at all (the loop guard).

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;
use utoipa::ToSchema;

use super::fill::Executor;
use super::scan::{self, PageScan};
use super::{Control, FormsError, PageKind, Step};
use crate::browser::humanize::Humanize;
use crate::browser::port::PagePort;

/// How long a click may take to change the page.
const SETTLE_LIMIT: Duration = Duration::from_secs(15);
/// A click that changed nothing within this long made no progress.
const NO_CHANGE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(100);

/// Which control `submit` clicks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmitAction {
    /// The page's primary control: apply on a posting, next/review on intermediate steps,
    /// submit on the last.
    #[default]
    Auto,
    Next,
    Submit,
}

/// What a submit led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    NextStep,
    Submitted,
    ValidationErrors,
    Blocked,
    NoControl,
    /// A dry run held the submission back: nothing was sent (`intercepted` says what would have been).
    Intercepted,
}

/// Proof that an application went through.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Confirmation {
    pub confirmation_id: Option<String>,
    pub message: String,
    /// `url` (a confirmation address) or `text` (confirmation wording that appeared).
    pub evidence: &'static str,
}

/// A validation message, tied to a field when the page ties it to one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepError {
    pub field_id: Option<String>,
    pub message: String,
}

/// What `submit` saw.
#[derive(Debug)]
pub struct Submitted {
    pub outcome: Outcome,
    pub clicked: Option<Control>,
    pub page_kind: PageKind,
    pub step: Option<Step>,
    pub confirmation: Option<Confirmation>,
    pub errors: Vec<StepError>,
    pub url: String,
}

/// A submit recorded on a live page (`tests/integration/submit_cases.rs` records them into
/// `src/forms/submit/cases/`, one file a case) and replayed without a browser by the unit tests.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecordedSubmit {
    /// The fixture form (`tests/fixtures/forms/<page>.html`) and how it was filled first.
    pub page: String,
    pub fill: Value,
    pub action: SubmitAction,
    /// `verdict` of the live submit.
    pub verdict: Value,
    /// What the page answered, by what was asked.
    pub script: crate::browser::script::Script,
}

/// The seed of the submit's random choices when it is recorded and when it is replayed (the
/// page mark is drawn from it).
pub const RECORDED_SEED: u64 = 7;

/// What a submit came to, as data: the outcome (or error), the page kind, the control clicked,
/// the confirmation and the errors (recorded submit cases compare these).
pub fn verdict(result: &Result<Submitted, FormsError>) -> Value {
    match result {
        Ok(s) => json!({
            "outcome": s.outcome,
            "page_kind": s.page_kind,
            "clicked": s.clicked.as_ref().map(|c| c.text.clone()),
            "confirmation": s.confirmation.as_ref().map(|c| json!({"id": c.confirmation_id, "evidence": c.evidence})),
            "errors": s.errors.iter().map(|e| e.field_id.clone().unwrap_or_else(|| e.message.clone())).collect::<Vec<_>>(),
        }),
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// What identifies "the same step": where the page is and which questions it asks.
fn fingerprint(scan: &PageScan) -> (String, Option<u32>, Option<String>, Vec<String>) {
    let mut ids: Vec<String> = scan.live_fields().map(|f| f.field_id.clone()).collect();
    ids.sort();
    (scan.url.clone(), scan.step.map(|s| s.index), scan.heading.clone(), ids)
}

/// The control `action` means on this page.
fn choose(scan: &PageScan, action: SubmitAction) -> Option<Control> {
    let a = &scan.actions;
    match action {
        SubmitAction::Next => a.next.clone().or_else(|| a.review.clone()),
        SubmitAction::Submit => a.submit.clone(),
        SubmitAction::Auto if scan.page_kind() == PageKind::JobPosting => a.apply.clone(),
        SubmitAction::Auto => {
            a.next.clone().or_else(|| a.review.clone()).or_else(|| a.submit.clone()).or_else(|| a.apply.clone())
        }
    }
}

/// Clicks the step's control and reports the outcome. On a posting, `auto` follows the apply
/// path through a second choice (Workday's "Apply Manually") to the form.
pub async fn submit(
    page: &dyn PagePort,
    action: SubmitAction,
    humanize: Humanize,
    rng: &mut StdRng,
) -> Result<Submitted, FormsError> {
    let mut before = scan::scan(page).await?;
    let mut clicked = None;
    for _hop in 0..2 {
        let Some(control) = choose(&before, action) else { break };
        let applying = before.page_kind() == PageKind::JobPosting;
        let after = click_and_settle(page, &control, humanize, rng).await?;
        let again = applying
            && action == SubmitAction::Auto
            && after.page_kind() == PageKind::JobPosting
            && after.actions.apply.as_ref().is_some_and(|next| next.selector != control.selector);
        let progressed = fingerprint(&after) != fingerprint(&before) || after.confirmation.is_some();
        clicked = Some(control);
        if !again {
            return judge(before, after, clicked, progressed);
        }
        before = after;
    }
    let kind = before.page_kind();
    Ok(Submitted {
        outcome: if clicked.is_some() { Outcome::NextStep } else { Outcome::NoControl },
        step: before.step(kind),
        page_kind: kind,
        clicked,
        confirmation: None,
        errors: Vec::new(),
        url: before.url,
    })
}

/// Decides the outcome from the page before and after the click.
fn judge(
    before: PageScan,
    after: PageScan,
    clicked: Option<Control>,
    progressed: bool,
) -> Result<Submitted, FormsError> {
    let kind = after.page_kind();
    let url_changed = after.url != before.url;
    let confirm_url = url_changed && is_confirmation_url(&after.url);
    // Wording only counts if it became visible because of this click and the form went away.
    let new_wording = after.confirmation.as_ref().filter(|c| {
        before.confirmation.as_ref().is_none_or(|b| b.message != c.message)
            && (kind == PageKind::Confirmation || after.live_fields().count() < before.live_fields().count())
    });
    let confirmation = match new_wording {
        Some(seen) => Some(Confirmation {
            confirmation_id: seen.confirmation_id.clone().or_else(|| id_from_url(&after.url)),
            message: seen.message.clone(),
            evidence: if confirm_url { "url" } else { "text" },
        }),
        None if confirm_url => Some(Confirmation {
            confirmation_id: id_from_url(&after.url),
            message: after.confirmation.as_ref().map(|c| c.message.clone()).unwrap_or_else(|| after.title.clone()),
            evidence: "url",
        }),
        None => None,
    };
    let mut errors: Vec<StepError> = after
        .live_fields()
        .filter_map(|f| f.error.as_ref().map(|m| StepError { field_id: Some(f.field_id.clone()), message: m.clone() }))
        .collect();
    errors.extend(after.form_errors.iter().map(|m| StepError { field_id: None, message: m.clone() }));
    let outcome = if confirmation.is_some() {
        Outcome::Submitted
    } else if !errors.is_empty() {
        Outcome::ValidationErrors
    } else if progressed {
        Outcome::NextStep
    } else {
        return Err(FormsError::NoProgress(clicked.map(|c| c.text).unwrap_or_default()));
    };
    Ok(Submitted {
        outcome,
        step: after.step(kind),
        page_kind: kind,
        clicked,
        confirmation,
        errors: if outcome == Outcome::Submitted { Vec::new() } else { errors },
        url: after.url,
    })
}

fn is_confirmation_url(url: &str) -> bool {
    let path = url::Url::parse(url).map(|u| u.path().to_ascii_lowercase()).unwrap_or_default();
    ["thank", "confirm", "success", "submitted", "application_confirmation"].iter().any(|w| path.contains(w))
}

fn id_from_url(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| matches!(k.as_ref(), "id" | "confirmation_id" | "application_id" | "confirmation"))
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Clicks and waits until the page changed and stayed the same for a moment, or navigated and
/// finished loading; then scans it again.
async fn click_and_settle(
    page: &dyn PagePort,
    control: &Control,
    humanize: Humanize,
    rng: &mut StdRng,
) -> Result<PageScan, FormsError> {
    // Marks this document: a page without the mark is a new one.
    let token = format!("{:016x}", rng.random::<u64>());
    let probe = "(() => ({ mark: window.__bwMark || null, ready: document.readyState, \
        sig: location.href + '|' + (document.body ? document.body.innerText.length : 0) + '|' + \
        document.querySelectorAll('input, select, textarea, button, [role=dialog]').length }))()";
    page.call("mark page", "(token) => { window.__bwMark = token; return true; }", &json!(token)).await?;
    let start = page.eval("page signature", probe).await?;
    let executor = Executor { page, humanize };
    executor.click(&control.selector, rng).await.map_err(|e| FormsError::Click(e.to_string()))?;
    let started = Instant::now();
    let (mut changed, mut last, mut stable) = (false, Value::Null, 0);
    while started.elapsed() < SETTLE_LIMIT {
        tokio::time::sleep(POLL).await;
        let Ok(now) = page.eval("page signature", probe).await else {
            changed = true; // the old document is gone: a navigation is under way
            continue;
        };
        if now["mark"] != Value::String(token.clone()) || now["sig"] != start["sig"] {
            changed = true;
        }
        if !changed {
            if started.elapsed() >= NO_CHANGE {
                break;
            }
            continue;
        }
        if now["ready"] == "complete" && now["sig"] == last {
            stable += 1;
            if stable >= 3 {
                break;
            }
        } else {
            stable = 0;
            last = now["sig"].clone();
        }
    }
    let mut attempt = 0;
    loop {
        match scan::scan(page).await {
            Ok(scan) => return Ok(scan),
            Err(_) if attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_urls_and_ids() {
        assert!(is_confirmation_url("https://boards.greenhouse.io/acme/jobs/1/confirmation?id=APP-1"));
        assert!(is_confirmation_url("http://127.0.0.1:1/forms/confirm.html?id=APP-12345"));
        assert!(!is_confirmation_url("https://jobs.lever.co/acme/123/apply"));
        assert_eq!(id_from_url("http://x/confirm.html?id=APP-12345").as_deref(), Some("APP-12345"));
        assert_eq!(id_from_url("http://x/thanks").as_deref(), None);
    }

    /// Every recorded submit, replayed from its page answers (no browser), comes to the verdict
    /// the live one did. A new case is a fixture form and a line in the recorder's table.
    #[tokio::test(start_paused = true)]
    async fn recorded_submits_replay_to_their_verdicts() {
        use rand::SeedableRng;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/forms/submit/cases");
        let mut replayed = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let case: RecordedSubmit = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let page = crate::browser::script::ScriptedPage::new(case.script);
            let mut rng = StdRng::seed_from_u64(RECORDED_SEED);
            let result = submit(&page, case.action, Humanize::Off, &mut rng).await;
            assert_eq!(verdict(&result), case.verdict, "{}", path.display());
            replayed.push(case.verdict["outcome"].as_str().unwrap_or("error").to_string());
        }
        replayed.sort();
        replayed.dedup();
        assert_eq!(replayed, ["error", "next_step", "submitted", "validation_errors"], "a kind of case is missing");
    }
}
