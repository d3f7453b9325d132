//! Platform detection (from the URL, else from DOM signals alone) and per-platform field
//! conventions, one module per platform.

mod ashby;
mod greenhouse;
mod lever;
mod linkedin;
mod workday;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Field;

/// The applicant-tracking system a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Greenhouse,
    Lever,
    Linkedin,
    Workday,
    Ashby,
    Generic,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Greenhouse => "greenhouse",
            Self::Lever => "lever",
            Self::Linkedin => "linkedin",
            Self::Workday => "workday",
            Self::Ashby => "ashby",
            Self::Generic => "generic",
        }
    }

    /// The canonical applicant key a field stands for by this platform's naming conventions
    /// (`full_name`, `resume` and `cover_letter` besides the user_data keys).
    pub fn key_for(self, field: &Field) -> Option<&'static str> {
        match self {
            Self::Greenhouse => greenhouse::key_for(field),
            Self::Lever => lever::key_for(field),
            Self::Linkedin => linkedin::key_for(field),
            Self::Workday => workday::key_for(field),
            Self::Ashby => ashby::key_for(field),
            Self::Generic => None,
        }
    }
}

/// Counts of platform markers the scanner found in the DOM.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Signals {
    #[serde(default)]
    pub greenhouse_legacy: u32,
    #[serde(default)]
    pub greenhouse: u32,
    #[serde(default)]
    pub lever: u32,
    #[serde(default)]
    pub ashby: u32,
    #[serde(default)]
    pub workday: u32,
    #[serde(default)]
    pub linkedin: u32,
    #[serde(default)]
    pub password_fields: u32,
}

/// The platform of a page: its host when it is a known one, else the strongest DOM signal.
pub fn detect(url: &str, signals: &Signals) -> Platform {
    let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).unwrap_or_default();
    let on = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    if on("greenhouse.io") {
        return Platform::Greenhouse;
    }
    if on("lever.co") {
        return Platform::Lever;
    }
    if on("ashbyhq.com") {
        return Platform::Ashby;
    }
    if on("myworkdayjobs.com") || on("workday.com") || on("myworkdaysite.com") {
        return Platform::Workday;
    }
    if on("linkedin.com") {
        return Platform::Linkedin;
    }
    let scores = [
        (Platform::Greenhouse, signals.greenhouse_legacy * 3 + signals.greenhouse),
        (Platform::Lever, signals.lever),
        (Platform::Ashby, signals.ashby * 3),
        (Platform::Workday, if signals.workday >= 5 { signals.workday } else { 0 }),
        (Platform::Linkedin, signals.linkedin * 2),
    ];
    scores.into_iter().filter(|(_, s)| *s >= 3).max_by_key(|(_, s)| *s).map(|(p, _)| p).unwrap_or(Platform::Generic)
}

/// The field's name or id, whichever the platform keys on.
fn ident(field: &Field) -> (&str, &str) {
    (field.name.as_deref().unwrap_or(""), field.html_id.as_deref().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_decide_before_dom_signals() {
        let none = Signals::default();
        assert_eq!(detect("https://job-boards.greenhouse.io/acme/jobs/1", &none), Platform::Greenhouse);
        assert_eq!(detect("https://boards.greenhouse.io/acme/jobs/1", &none), Platform::Greenhouse);
        assert_eq!(detect("https://jobs.lever.co/acme/123/apply", &none), Platform::Lever);
        assert_eq!(detect("https://jobs.ashbyhq.com/acme/1/application", &none), Platform::Ashby);
        assert_eq!(detect("https://acme.wd5.myworkdayjobs.com/en-US/x/job/1", &none), Platform::Workday);
        assert_eq!(detect("https://www.linkedin.com/jobs/view/1", &none), Platform::Linkedin);
        assert_eq!(detect("https://evil-greenhouse.io.example.com/", &none), Platform::Generic);
        let lever = Signals { lever: 12, greenhouse: 1, ..Signals::default() };
        assert_eq!(detect("http://127.0.0.1:8080/forms/lever/apply.html", &lever), Platform::Lever);
        assert_eq!(detect("http://127.0.0.1/", &Signals { workday: 3, ..Signals::default() }), Platform::Generic);
    }
}
