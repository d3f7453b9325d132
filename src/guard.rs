//! Block detection: decides from what a page shows whether a human (or a rest) is needed.
//!
//! [`detect`] is a pure function of [`PageSignals`] (the URL asked for, the URL reached, the
//! title, a sample of the body text, the element count, visible CAPTCHA widgets and
//! Cloudflare challenge markers). The stages follow the seed's §9 (URL patterns, a redirect to
//! a login/verify page, title keywords, body keywords on small pages, an empty page after a
//! redirect) plus visible widgets, Cloudflare interstitials and LinkedIn's authwall/checkpoint.
//! Keywords match whole words or phrases, so "Design Verification Engineer" or a
//! `robotics-challenges` slug never block. [`detect_block`] collects the signals from a live
//! page with one `Runtime.evaluate` of [`PROBE_JS`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::browser::BrowserError;
use crate::browser::port::PagePort;

#[cfg(test)]
mod tests;

/// The script that collects [`PageSignals`] (minus the original URL) from a page.
pub const PROBE_JS: &str = include_str!("guard/probe.js");

/// Pages with fewer elements than this get the body-text stage (the seed's "lightweight" rule).
const SMALL_PAGE: u32 = 10;
/// Interstitials and "press and hold" pages stay small; phrases that are unambiguous apply up to here.
const MEDIUM_PAGE: u32 = 80;

/// Why a page needs a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    Captcha,
    ChallengePage,
    RateLimited,
    AccessDenied,
    LoginRequired,
    RedirectToVerification,
    EmptyPageRedirect,
    /// Not a block of the site's and never detected: how the API shows a session held for a
    /// person's review before the final submit (copilot mode; `Session::hold_for_review`).
    ReviewRequired,
}

impl BlockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::Captcha => "captcha",
            BlockReason::ChallengePage => "challenge_page",
            BlockReason::RateLimited => "rate_limited",
            BlockReason::AccessDenied => "access_denied",
            BlockReason::LoginRequired => "login_required",
            BlockReason::RedirectToVerification => "redirect_to_verification",
            BlockReason::EmptyPageRedirect => "empty_page_redirect",
            BlockReason::ReviewRequired => "review_required",
        }
    }
}

/// A detected block: the reason and what gave it away (e.g. `recaptcha`, `title: "Access Denied"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Block {
    pub reason: BlockReason,
    pub detail: String,
}

impl Block {
    fn new(reason: BlockReason, detail: impl Into<String>) -> Self {
        Self { reason, detail: detail.into() }
    }
}

/// Everything detection looks at.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageSignals {
    /// The URL the caller asked for (before redirects).
    #[serde(default)]
    pub original_url: String,
    /// The URL the page is at now.
    #[serde(default)]
    pub final_url: String,
    #[serde(default)]
    pub title: String,
    /// The first few thousand characters of the body's visible text.
    #[serde(default)]
    pub text: String,
    /// Elements inside `<body>`.
    #[serde(default)]
    pub elements: u32,
    /// Kinds of visible CAPTCHA widgets: `recaptcha`, `hcaptcha`, `turnstile`, `arkose`, `geetest`.
    #[serde(default)]
    pub widgets: Vec<String>,
    /// Cloudflare challenge markers found (`cf_chl_opt`, `#challenge-form`, …).
    #[serde(default)]
    pub markers: Vec<String>,
    /// A visible password box on the page, with the other boxes beside it.
    #[serde(default)]
    pub login_form: Option<LoginForm>,
}

/// What stands around a visible password box.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct LoginForm {
    pub passwords: u32,
    /// Visible text boxes, selects and text areas (the password boxes not counted).
    pub boxes: u32,
    /// File inputs anywhere on the page (an application form has one; a sign-in form has none).
    pub uploads: u32,
}

/// Boxes a sign-in or join form has beside its password (email, name, a second password).
const LOGIN_FORM_BOXES: u32 = 3;

/// Collects the signals from the live page and runs [`detect`].
/// A page the probe cannot run on (a script error, an odd document) counts as not blocked;
/// a dead or hung browser is an error.
pub async fn detect_block(page: &dyn PagePort, original_url: &str) -> Result<Option<Block>, BrowserError> {
    let value = match page.eval("block probe", PROBE_JS).await {
        Ok(value) => value,
        Err(BrowserError::Cdp(e)) => {
            tracing::warn!(error = %e, "block probe failed; treating the page as not blocked");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut signals: PageSignals = match serde_json::from_value(value) {
        Ok(signals) => signals,
        Err(e) => {
            tracing::warn!(error = %e, "unexpected block probe answer; treating the page as not blocked");
            return Ok(None);
        }
    };
    signals.original_url = original_url.to_string();
    let block = detect(&signals);
    if let Some(block) = &block {
        tracing::info!(reason = block.reason.as_str(), "block detected");
        metrics::counter!("bw_blocks_detected_total", "reason" => block.reason.as_str()).increment(1);
    }
    Ok(block)
}

/// Decides whether the page is a block. `None` means an ordinary page.
pub fn detect(s: &PageSignals) -> Option<Block> {
    use BlockReason as R;
    if let Some(kind) = s.widgets.first() {
        return Some(Block::new(R::Captcha, kind.clone()));
    }
    let title = normalize(&s.title);
    if !s.markers.is_empty() || title.starts_with("just a moment") || title.starts_with("attention required") {
        let what = s.markers.first().cloned().unwrap_or_else(|| format!("title: {}", s.title.trim()));
        return Some(Block::new(R::ChallengePage, format!("cloudflare interstitial ({what})")));
    }
    let original = url::Url::parse(&s.original_url).ok();
    let current = url::Url::parse(&s.final_url).ok();
    if let Some(block) = current.as_ref().and_then(url_stage) {
        return Some(block);
    }
    let redirected = match (&original, &current) {
        (Some(a), Some(b)) => a.as_str() != b.as_str(),
        _ => false,
    };
    let cross_domain = match (&original, &current) {
        (Some(a), Some(b)) => site(a) != site(b),
        _ => false,
    };
    if redirected
        && let (Some(from), Some(to)) = (&original, &current)
        && let Some(block) = redirect_stage(from, to, cross_domain)
    {
        return Some(block);
    }
    if let Some(form) = s.login_form
        && form.passwords > 0
        && form.boxes <= LOGIN_FORM_BOXES
        && form.uploads == 0
    {
        return Some(Block::new(R::LoginRequired, "a sign-in form stands where the page should be"));
    }
    if let Some((reason, phrase)) = title_stage(&title) {
        return Some(Block::new(reason, format!("title: {phrase}")));
    }
    if s.elements < MEDIUM_PAGE {
        let text = normalize(&s.text);
        if let Some((reason, phrase)) = body_stage(&text, s.elements < SMALL_PAGE) {
            return Some(Block::new(reason, format!("text: {phrase}")));
        }
    }
    if s.elements == 0 && cross_domain {
        let host = current.as_ref().and_then(|u| u.host_str()).unwrap_or("?");
        return Some(Block::new(R::EmptyPageRedirect, format!("empty page at {host}")));
    }
    None
}

/// Lower case, whitespace collapsed, typographic apostrophes and ellipses made plain.
fn normalize(text: &str) -> String {
    let lowered = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'").replace('\u{2026}', "...");
    lowered.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True if `phrase` occurs in `text` with no letter or digit right before or after it.
fn has_phrase(text: &str, phrase: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric();
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        // CJK phrases need no word boundaries.
        let cjk = !phrase.is_ascii();
        cjk || (!before.is_some_and(is_word) && !after.is_some_and(is_word))
    })
}

/// The first phrase of `table` found in `text`.
fn find(text: &str, table: &[(BlockReason, &'static str)]) -> Option<(BlockReason, &'static str)> {
    table.iter().copied().find(|(_, phrase)| has_phrase(text, phrase))
}

/// `example.co.uk` for `jobs.example.co.uk`: the last two labels, three under a two-letter
/// second-level suffix such as `co.uk` (no public-suffix list; good enough to tell sites apart).
fn site(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("").trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    if url.host().is_some_and(|h| !matches!(h, url::Host::Domain(_))) || labels.len() <= 2 {
        return host;
    }
    let n = labels.len();
    let take = if labels[n - 2].len() <= 3 && labels[n - 1].len() == 2 && n >= 3 { 3 } else { 2 };
    labels[n - take..].join(".")
}

fn segments(url: &url::Url) -> Vec<String> {
    url.path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(|s| s.to_ascii_lowercase()).collect())
        .unwrap_or_default()
}

/// Stage 1: the page's own URL names a CAPTCHA, challenge, verification or block page.
fn url_stage(url: &url::Url) -> Option<Block> {
    use BlockReason as R;
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let segs = segments(url);
    let path = url.path();
    if host == "linkedin.com" || host.ends_with(".linkedin.com") {
        match segs.first().map(String::as_str) {
            Some("authwall") => return Some(Block::new(R::LoginRequired, "linkedin authwall")),
            Some("checkpoint") => return Some(Block::new(R::ChallengePage, format!("linkedin checkpoint ({path})"))),
            _ => {}
        }
    }
    if host == "challenges.cloudflare.com" || path.contains("/cdn-cgi/challenge-platform/") {
        return Some(Block::new(R::ChallengePage, "cloudflare challenge platform"));
    }
    for seg in &segs {
        let reason = match seg.as_str() {
            "captcha" | "recaptcha" | "hcaptcha" | "captcha.html" => R::Captcha,
            "challenge" | "security-check" | "securitycheck" | "bot-check" => R::ChallengePage,
            "verify" | "verification" | "verify-human" | "human-verification" => R::RedirectToVerification,
            "blocked" | "access-denied" | "accessdenied" => R::AccessDenied,
            "too-many-requests" | "rate-limited" | "ratelimited" => R::RateLimited,
            _ => continue,
        };
        return Some(Block::new(reason, format!("url: {path}")));
    }
    None
}

/// Stage 2: the page moved somewhere that asks to log in or to verify.
fn redirect_stage(from: &url::Url, to: &url::Url, cross_domain: bool) -> Option<Block> {
    use BlockReason as R;
    const LOGIN: &[&str] =
        &["login", "signin", "sign-in", "sign_in", "log-in", "logon", "authwall", "sso", "oauth", "authorize", "auth"];
    const VERIFY: &[&str] = &["verify", "verification", "captcha", "challenge", "security-check", "checkpoint"];
    let hits = |url: &url::Url, words: &[&str]| {
        let mut parts = segments(url);
        if let Some(host) = url.host_str() {
            parts.extend(host.to_ascii_lowercase().split(['.', '-']).map(str::to_string));
        }
        parts.into_iter().find(|p| words.contains(&p.as_str()))
    };
    let to_host = to.host_str().unwrap_or("?");
    if let Some(word) = hits(to, VERIFY)
        && hits(from, VERIFY).is_none()
        && cross_domain
    {
        return Some(Block::new(R::RedirectToVerification, format!("redirected to {to_host} ({word})")));
    }
    if let Some(word) = hits(to, LOGIN)
        && hits(from, LOGIN).is_none()
    {
        return Some(Block::new(R::LoginRequired, format!("redirected to {to_host} ({word})")));
    }
    None
}

/// Stage 3: title keywords (English and Chinese).
fn title_stage(title: &str) -> Option<(BlockReason, &'static str)> {
    use BlockReason as R;
    const TABLE: &[(BlockReason, &str)] = &[
        (R::Captcha, "captcha"),
        (R::Captcha, "recaptcha"),
        (R::Captcha, "hcaptcha"),
        (R::Captcha, "are you a robot"),
        (R::Captcha, "are you human"),
        (R::Captcha, "验证码"),
        (R::Captcha, "人机验证"),
        (R::Captcha, "滑块验证"),
        (R::ChallengePage, "verify you are human"),
        (R::ChallengePage, "verify you're human"),
        (R::ChallengePage, "human verification"),
        (R::ChallengePage, "verification required"),
        (R::ChallengePage, "security verification"),
        (R::ChallengePage, "checking your browser"),
        (R::ChallengePage, "verify"),
        (R::ChallengePage, "安全验证"),
        (R::ChallengePage, "安全检查"),
        (R::ChallengePage, "请稍候"),
        (R::ChallengePage, "身份验证"),
        (R::RateLimited, "too many requests"),
        (R::RateLimited, "rate limit exceeded"),
        (R::RateLimited, "rate limited"),
        (R::RateLimited, "error 429"),
        (R::RateLimited, "请求过于频繁"),
        (R::RateLimited, "访问过于频繁"),
        (R::RateLimited, "操作频繁"),
        (R::AccessDenied, "access denied"),
        (R::AccessDenied, "access to this page has been denied"),
        (R::AccessDenied, "403 forbidden"),
        (R::AccessDenied, "error 403"),
        (R::AccessDenied, "you have been blocked"),
        (R::AccessDenied, "访问被拒绝"),
        (R::AccessDenied, "拒绝访问"),
        (R::AccessDenied, "访问受限"),
        (R::AccessDenied, "禁止访问"),
    ];
    // Words that are also parts of job titles ("Security Check Officer", "Blocked Drains
    // Engineer") count only as a whole title or a whole `|`/`-`/`:`-separated part of one.
    const WHOLE: &[(BlockReason, &str)] = &[
        (R::ChallengePage, "security check"),
        (R::ChallengePage, "one more step"),
        (R::AccessDenied, "blocked"),
        (R::AccessDenied, "request blocked"),
    ];
    if let Some(hit) = find(title, TABLE) {
        return Some(hit);
    }
    for part in title.split(['|', '-', '\u{2013}', '\u{2014}', ':']).map(|p| p.trim().trim_end_matches(['.', '!'])) {
        if let Some(hit) = WHOLE.iter().copied().find(|(_, phrase)| part == *phrase) {
            return Some(hit);
        }
    }
    // A bare "验证" title (the seed's keyword) is a verification page; "验证工程师" is a job.
    let bare = title.trim();
    if bare.contains("验证") && !bare.contains("工程") && bare.chars().count() <= 8 {
        return Some((R::ChallengePage, "验证"));
    }
    None
}

/// Stage 4: body text. Every phrase on small pages; only unambiguous ones on medium pages.
fn body_stage(text: &str, small: bool) -> Option<(BlockReason, &'static str)> {
    use BlockReason as R;
    const STRONG: &[(BlockReason, &str)] = &[
        (R::Captcha, "complete the captcha"),
        (R::Captcha, "solve the captcha"),
        (R::Captcha, "press & hold"),
        (R::Captcha, "press and hold"),
        (R::Captcha, "请完成安全验证"),
        (R::Captcha, "请输入验证码"),
        (R::Captcha, "拖动滑块"),
        (R::ChallengePage, "verify you are human"),
        (R::ChallengePage, "verify you're human"),
        (R::ChallengePage, "checking your browser before accessing"),
        (R::ChallengePage, "checking if the site connection is secure"),
        (R::RateLimited, "unusual traffic from your computer network"),
        (R::RateLimited, "we have detected unusual traffic"),
        (R::RateLimited, "检测到异常流量"),
        (R::AccessDenied, "access to this page has been denied"),
        (R::AccessDenied, "you have been blocked"),
        (R::AccessDenied, "you don't have permission to access"),
    ];
    const SMALL: &[(BlockReason, &str)] = &[
        (R::Captcha, "captcha"),
        (R::RateLimited, "unusual traffic"),
        (R::RateLimited, "too many requests"),
        (R::RateLimited, "rate limit exceeded"),
        (R::RateLimited, "slow down"),
        (R::RateLimited, "请求过于频繁"),
        (R::RateLimited, "访问过于频繁"),
        (R::RateLimited, "异常流量"),
        (R::AccessDenied, "access denied"),
        (R::AccessDenied, "request blocked"),
        (R::AccessDenied, "访问被拒绝"),
        (R::AccessDenied, "拒绝访问"),
        (R::ChallengePage, "安全验证"),
        (R::LoginRequired, "sign in to continue"),
        (R::LoginRequired, "log in to continue"),
        (R::LoginRequired, "请先登录"),
    ];
    find(text, STRONG).or_else(|| if small { find(text, SMALL) } else { None })
}
