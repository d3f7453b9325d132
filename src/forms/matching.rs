//! Text matching for forms: normalisation, token similarity, question topics, and mapping an
//! answer onto a page's own options (exact → normalised → yes/no/decline → fuzzy, with a floor).

use std::collections::HashSet;

/// Below this similarity a question or option is not considered a match.
pub const QUESTION_FLOOR: f64 = 0.5;
pub const OPTION_FLOOR: f64 = 0.6;

const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "to", "of", "in", "on", "for", "and", "or", "you", "your", "are", "is", "do", "does", "will",
    "would", "be", "with", "at", "by", "this", "that", "we", "our", "please", "what", "which", "how", "any", "have",
    "has", "i", "my", "me", "if", "as", "from", "can", "could", "should", "it", "its", "now",
];

/// Lowercase ASCII (accents transliterated: "Zürich" → "zurich", "ß" → "ss"), `&` → and,
/// punctuation → space, collapsed whitespace.
pub fn fold(text: &str) -> String {
    let lower = deunicode::deunicode(text).to_lowercase().replace('&', " and ");
    let cleaned: String = lower.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `fold` with the United States' names folded to "us", for comparing answers and options.
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase().replace("u.s.a.", "usa").replace("u.s.", "us");
    let joined = fold(&lower);
    let padded = format!(" {joined} ")
        .replace(" united states of america ", " us ")
        .replace(" united states ", " us ")
        .replace(" usa ", " us ");
    padded.trim().to_string()
}

/// Content tokens of a text, crudely stemmed.
pub fn tokens(text: &str) -> HashSet<String> {
    normalize(text).split(' ').filter(|t| !t.is_empty() && !STOP_WORDS.contains(t)).map(stem).collect()
}

fn stem(token: &str) -> String {
    let t = token.replace("authoris", "authoriz").replace("organis", "organiz");
    for suffix in ["ations", "ation", "ing", "ed", "es", "s"] {
        if t.len() > suffix.len() + 3
            && let Some(base) = t.strip_suffix(suffix)
        {
            return base.to_string();
        }
    }
    t
}

/// Dice coefficient of the two texts' content tokens (0..=1).
pub fn similarity(a: &str, b: &str) -> f64 {
    let (ta, tb) = (tokens(a), tokens(b));
    if ta.is_empty() || tb.is_empty() {
        return if normalize(a) == normalize(b) && !normalize(a).is_empty() { 1.0 } else { 0.0 };
    }
    let common = ta.intersection(&tb).count() as f64;
    2.0 * common / (ta.len() + tb.len()) as f64
}

/// Topics whose answers must never cross: a sponsorship answer is not a work-authorisation answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    WorkAuthorization,
    Sponsorship,
    Gender,
    Race,
    Hispanic,
    Veteran,
    Disability,
    SexualOrientation,
    Transgender,
}

/// The legal or EEO topic of a question, if any: such questions are answered only from
/// `qa_answers`.
pub fn topic(text: &str) -> Option<Topic> {
    let n = normalize(text);
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if has(&["sponsor", "visa", "h1b", "h 1b"]) {
        Some(Topic::Sponsorship)
    } else if has(&[
        "authorized to work",
        "authorised to work",
        "authorization to work",
        "work authorization",
        "eligible to work",
        "right to work",
        "legally authori",
        "legally permitted",
        "legally allowed",
        "work permit",
    ]) {
        Some(Topic::WorkAuthorization)
    } else if has(&["hispanic", "latino", "latina", "latinx"]) {
        Some(Topic::Hispanic)
    } else if has(&["veteran", "military service"]) {
        Some(Topic::Veteran)
    } else if has(&["disabilit", "disabled"]) {
        Some(Topic::Disability)
    } else if has(&["transgender"]) {
        Some(Topic::Transgender)
    } else if has(&["sexual orientation"]) {
        Some(Topic::SexualOrientation)
    } else if has(&["race", "ethnicity", "ethnic"]) {
        Some(Topic::Race)
    } else if has(&["gender", "sex "]) || n == "sex" {
        Some(Topic::Gender)
    } else {
        None
    }
}

/// Yes / no / decline meaning of a short answer or option label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    Yes,
    No,
    Decline,
}

pub fn polarity(text: &str) -> Option<Polarity> {
    let n = normalize(text);
    let declines = [
        "decline",
        "prefer not",
        "not wish",
        "don t wish",
        "do not wish",
        "don t want",
        "do not want",
        "choose not",
        "rather not",
        "not to answer",
        "not to disclose",
        "not to say",
        "not specified",
    ];
    if declines.iter().any(|d| n.contains(d)) {
        return Some(Polarity::Decline);
    }
    let first = n.split(' ').next().unwrap_or("");
    match first {
        "yes" | "y" | "true" | "yeah" | "yep" | "ja" | "oui" => Some(Polarity::Yes),
        "no" | "n" | "false" | "nope" | "nein" | "non" => Some(Polarity::No),
        _ => None,
    }
}

/// The option an answer means, with a confidence, or none below the floor. Never a guess.
pub fn match_option(answer: &str, options: &[String]) -> Option<(usize, f64)> {
    let answer = answer.trim();
    if answer.is_empty() || options.is_empty() {
        return None;
    }
    if let Some(i) = options.iter().position(|o| o.trim() == answer) {
        return Some((i, 1.0));
    }
    let na = normalize(answer);
    if let Some(i) = options.iter().position(|o| normalize(o) == na) {
        return Some((i, 0.97));
    }
    if let Some(p) = polarity(answer) {
        let same: Vec<usize> = (0..options.len()).filter(|&i| polarity(&options[i]) == Some(p)).collect();
        match same.len() {
            1 => return Some((same[0], 0.9)),
            0 => {}
            _ => return best_fuzzy(answer, options, &same),
        }
    }
    let all: Vec<usize> = (0..options.len()).collect();
    best_fuzzy(answer, options, &all)
}

fn best_fuzzy(answer: &str, options: &[String], among: &[usize]) -> Option<(usize, f64)> {
    let na = normalize(answer);
    let scored = among.iter().map(|&i| {
        let no = normalize(&options[i]);
        let contains = !na.is_empty() && !no.is_empty() && (no.contains(&na) || na.contains(&no));
        let s = similarity(answer, &options[i]).max(if contains { 0.8 } else { 0.0 });
        (i, s)
    });
    let mut best: Option<(usize, f64)> = None;
    let mut tie = false;
    for (i, s) in scored {
        match best {
            Some((_, b)) if (s - b).abs() < 1e-9 => tie = true,
            Some((_, b)) if s < b => {}
            _ => {
                best = Some((i, s));
                tie = false;
            }
        }
    }
    let (i, s) = best?;
    (s >= OPTION_FLOOR && !tie).then_some((i, (s * 0.85).min(0.85)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_map_onto_the_pages_own_options() {
        let gender = opts(&["Male", "Female", "Decline To Self Identify"]);
        assert_eq!(match_option("Decline to self-identify", &gender).map(|m| m.0), Some(2));
        let yes_no = opts(&["Yes", "No"]);
        assert_eq!(match_option("Yes, I am authorized", &yes_no).map(|m| m.0), Some(0));
        assert_eq!(match_option("no", &yes_no).map(|m| m.0), Some(1));
        let hispanic = opts(&["Yes", "No", "Decline To Self Identify"]);
        assert_eq!(match_option("Decline", &hispanic).map(|m| m.0), Some(2));
        let veteran = opts(&[
            "I identify as one or more of the classifications of protected veteran",
            "I am not a protected veteran",
            "I don't wish to answer",
        ]);
        assert_eq!(match_option("I am not a protected veteran", &veteran).map(|m| m.0), Some(1));
        assert_eq!(match_option("Prefer not to say", &veteran).map(|m| m.0), Some(2));
        let disability = opts(&[
            "Yes, I have a disability (or previously had a disability)",
            "No, I do not have a disability and have not had one in the past",
            "I do not want to answer",
        ]);
        assert_eq!(match_option("I do not want to answer", &disability).map(|m| m.0), Some(2));
        assert_eq!(match_option("No", &disability).map(|m| m.0), Some(1));
    }

    #[test]
    fn no_guess_below_the_floor() {
        let colours = opts(&["Red", "Green", "Blue"]);
        assert_eq!(match_option("Purple", &colours), None);
        assert_eq!(match_option("", &colours), None);
        let sources = opts(&["LinkedIn", "Company website", "Referral", "Other"]);
        assert_eq!(match_option("linkedin", &sources).map(|m| m.0), Some(0));
        assert_eq!(match_option("A friend told me", &sources), None);
    }

    #[test]
    fn questions_match_across_wording_but_not_across_topics() {
        let asked = "Are you legally authorized to work in the United States?";
        assert!(similarity("Are you authorized to work in the US?", asked) >= QUESTION_FLOOR);
        assert_eq!(topic(asked), Some(Topic::WorkAuthorization));
        let sponsor = "Will you now or in the future require sponsorship for employment visa status?";
        assert_eq!(topic(sponsor), Some(Topic::Sponsorship));
        assert!(similarity("Will you require visa sponsorship?", sponsor) >= QUESTION_FLOOR);
        assert_eq!(topic("Design Verification Engineer"), None);
        assert_eq!(topic("Gender"), Some(Topic::Gender));
        assert_eq!(topic("Are you Hispanic or Latino?"), Some(Topic::Hispanic));
    }
}
