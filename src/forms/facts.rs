//! The applicant's facts per intent (SPEC §4.1): values read from `user_data`, composed
//! (full name, full address), formatted for the field (dates in the format the field asks
//! for), and yes/no answers derived from facts ("Do you live in Germany?", "Are you fluent in
//! French and English?", "Do you have 5+ years of experience?"). An answer is a list of
//! candidates in order of preference, so that a page's own option text can be met in any of
//! English, German and French ("Switzerland", "Schweiz", "Suisse").

use serde_json::{Map, Value};

use super::geo;
use super::intent::Intent;
use super::matching::fold;
use super::rules::{as_text, is_blank};
use super::{Field, FieldKind};

/// Candidate answers (first preferred) and the fact they came from.
#[derive(Debug, Clone)]
pub struct Answer {
    pub candidates: Vec<String>,
    pub source: String,
}

impl Answer {
    fn one(value: impl Into<String>, source: impl Into<String>) -> Self {
        Answer { candidates: vec![value.into()], source: source.into() }
    }

    fn yes_no(yes: bool, source: impl Into<String>) -> Self {
        let words: &[&str] = if yes { &["Yes", "Ja", "Oui"] } else { &["No", "Nein", "Non"] };
        Answer { candidates: words.iter().map(|w| w.to_string()).collect(), source: source.into() }
    }
}

/// Words that mean the same answer across languages: an answer in one is found as another.
const SYNONYMS: &[&[&str]] = &[
    &["mr", "mr.", "mister", "herr", "monsieur", "m.", "sir"],
    &["ms", "ms.", "mrs", "mrs.", "miss", "frau", "madame", "mme", "mme."],
    &["female", "woman", "weiblich", "femme", "feminin", "femenino", "f"],
    &["male", "man", "mannlich", "homme", "masculin", "m"],
    &["linkedin", "social media", "soziale medien", "social network", "reseaux sociaux", "soziale netzwerke"],
    &["year", "yearly", "annual", "annually", "per year", "jahrlich", "pro jahr", "annuel", "par an"],
    &["month", "monthly", "per month", "monatlich", "pro monat", "mensuel", "par mois"],
];

/// The answer to a fact question, or `None` when the data has no such fact.
pub fn answer(intent: Intent, field: &Field, others: &[Field], data: &Map<String, Value>) -> Option<Answer> {
    use Intent::*;
    let get = |key: &str| data.get(key).filter(|v| !is_blank(v)).map(as_text);
    let from = |key: &str| get(key).map(|v| Answer::one(v, format!("user_data.{key}")));
    let first_of = |keys: &[&str]| keys.iter().find_map(|k| from(k));
    let answer = match intent {
        FirstName => from("first_name"),
        LastName => from("last_name"),
        FullName => first_of(&["full_name", "name"]).or_else(|| {
            Some(Answer::one(format!("{} {}", get("first_name")?, get("last_name")?), "user_data.full_name"))
        }),
        PreferredName => first_of(&["preferred_name", "first_name"]),
        Salutation => from("salutation"),
        Pronouns => from("pronouns"),
        DateOfBirth => get("date_of_birth").map(|d| Answer::one(format_date(&d, field), "user_data.date_of_birth")),
        StartDate => {
            get("earliest_start_date").map(|d| Answer::one(format_date(&d, field), "user_data.earliest_start_date"))
        }
        Headline => first_of(&["headline", "current_title"]),
        Email => from("email"),
        Phone => from("phone"),
        PhoneCountryCode => phone_country(data),
        Linkedin => from("linkedin_url"),
        Github => from("github_url"),
        Website => first_of(&["website_url", "portfolio_url"]),
        Location => first_of(&["location"]).or_else(|| place(data, false)),
        StreetAddress => street(field, others, data),
        HouseNumber => from("house_number"),
        PostalCode => from("postal_code"),
        City => from("city"),
        Region => first_of(&["state", "state_code"]).map(|mut a| {
            a.candidates.extend(get("state_code"));
            a
        }),
        Country => country_names(data, "country", "country_code"),
        Nationality => country_names(data, "nationality", "").or_else(|| country_names(data, "citizenship", "")),
        CurrentCompany => from("current_company"),
        CurrentTitle => from("current_title"),
        YearsExperience => years(field, data),
        EducationDegree => first_of(&["highest_degree", "education_degree"]),
        EducationSchool => from("education_school"),
        EducationField => from("education_field"),
        Skills => from("skills"),
        Languages => languages(field, data),
        Salary => salary(field, data),
        SalaryCurrency => from("salary_currency"),
        SalaryPeriod => from("salary_period"),
        NoticePeriod => from("notice_period").map(in_other_languages),
        Workload => from("workload"),
        Relocation => data
            .get("willing_to_relocate")
            .and_then(Value::as_bool)
            .map(|b| Answer::yes_no(b, "user_data.willing_to_relocate")),
        HowHeard => from("how_did_you_hear"),
        LocationCheck => located(field, data),
        Gender => from("gender"),
        _ => None,
    }?;
    Some(with_synonyms(answer))
}

/// Units of a duration in English, German and French, for "3 months" → "3 Monate", "3 mois".
const UNITS: &[&[&str]] = &[
    &["months", "monate", "mois"],
    &["month", "monat", "mois"],
    &["weeks", "wochen", "semaines"],
    &["week", "woche", "semaine"],
    &["days", "tage", "jours"],
];

/// The same duration with its unit in the other languages.
fn in_other_languages(mut answer: Answer) -> Answer {
    let Some(first) = answer.candidates.first().cloned() else { return answer };
    let words: Vec<String> = first.split_whitespace().map(str::to_string).collect();
    for group in UNITS {
        if let Some(i) = words.iter().position(|w| group.contains(&fold(w).as_str())) {
            for unit in group.iter() {
                let mut w = words.clone();
                w[i] = unit.to_string();
                answer.candidates.push(w.join(" "));
            }
            break;
        }
    }
    answer
}

fn with_synonyms(mut answer: Answer) -> Answer {
    let extra: Vec<String> = answer
        .candidates
        .iter()
        .flat_map(|c| {
            let f = fold(c);
            SYNONYMS
                .iter()
                .filter(move |group| group.contains(&f.as_str()))
                .flat_map(|g| g.iter().map(|s| s.to_string()))
        })
        .collect();
    for e in extra {
        if !answer.candidates.iter().any(|c| fold(c) == fold(&e)) {
            answer.candidates.push(e);
        }
    }
    answer
}

/// A country fact with its names in every language the index knows.
fn country_names(data: &Map<String, Value>, key: &str, code_key: &str) -> Option<Answer> {
    let value = data.get(key).filter(|v| !is_blank(v)).map(as_text);
    let code = data.get(code_key).filter(|v| !is_blank(v)).map(as_text);
    let country = code.as_deref().and_then(geo::by_code).or_else(|| value.as_deref().and_then(geo::country));
    let mut candidates: Vec<String> = value.into_iter().collect();
    if let Some(c) = country {
        candidates.extend(c.names.iter().cloned());
        candidates.push(c.code.to_string());
        candidates.extend(c.adjective.clone());
    }
    (!candidates.is_empty()).then(|| Answer { candidates, source: format!("user_data.{key}") })
}

fn phone_country(data: &Map<String, Value>) -> Option<Answer> {
    let code = data.get("country_code").map(as_text);
    let country = code.as_deref().and_then(geo::by_code)?;
    let mut candidates = vec![format!("+{}", country.calling_code)];
    candidates.extend(country.names.iter().map(|n| format!("{n} (+{})", country.calling_code)));
    candidates.extend(country.names.iter().cloned());
    Some(Answer { candidates, source: "user_data.country_code".into() })
}

/// "Street" alone when the page has a house-number box; the whole address when the field asks
/// for the full postal address or the page has no separate city / postal-code boxes.
fn street(field: &Field, others: &[Field], data: &Map<String, Value>) -> Option<Answer> {
    let get = |key: &str| data.get(key).filter(|v| !is_blank(v)).map(as_text);
    let has = |intent: Intent| others.iter().any(|o| !o.trap && super::rules::intent_of(o) == Some(intent));
    let label = fold(&field.label);
    let asks_full =
        ["complete", "full", "postal", "mailing", "postale", "vollstandig"].iter().any(|w| label.contains(w));
    if !asks_full
        && has(Intent::HouseNumber)
        && !label.contains("nr")
        && !label.contains("number")
        && let Some(s) = get("street_name")
    {
        return Some(Answer::one(s, "user_data.street_name"));
    }
    if asks_full || !(has(Intent::City) || has(Intent::PostalCode)) {
        return place(data, true);
    }
    get("street_address").map(|s| Answer::one(s, "user_data.street_address")).or_else(|| {
        Some(Answer::one(format!("{} {}", get("street_name")?, get("house_number")?), "user_data.street_name"))
    })
}

/// "Street 1, 8004 City, Country" (or "City, Region, Country" without the street).
fn place(data: &Map<String, Value>, with_street: bool) -> Option<Answer> {
    let get = |key: &str| data.get(key).filter(|v| !is_blank(v)).map(as_text);
    let city = get("city")?;
    let mut parts = Vec::new();
    if with_street && let Some(street) = get("street_address") {
        parts.push(street);
    }
    let us_style = get("country_code").is_some_and(|c| c.eq_ignore_ascii_case("US"));
    match (get("postal_code"), us_style) {
        (Some(zip), true) => parts.push(format!("{city}, {} {zip}", get("state_code").unwrap_or_default())),
        (Some(zip), false) if with_street => parts.push(format!("{zip} {city}")),
        _ => parts.push(city),
    }
    parts.extend(get("country"));
    Some(Answer::one(parts.join(", "), "user_data.street_address"))
}

/// The date in the format the field asks for (the executor's reading of a "TT.MM.JJJJ" /
/// "DD/MM/YYYY" hint), ISO for date inputs and when nothing is asked.
fn format_date(iso: &str, field: &Field) -> String {
    let asked = (field.kind != FieldKind::Date).then(|| super::fill::date::asked_format(field)).flatten();
    asked.and_then(|f| f.render(iso)).unwrap_or_else(|| iso.to_string())
}

/// Years of experience as a number, or a yes/no for "at least N years" questions.
fn years(field: &Field, data: &Map<String, Value>) -> Option<Answer> {
    let years = data.get("years_experience").map(as_text)?.trim().parse::<f64>().ok()?;
    let source = "user_data.years_experience";
    if is_yes_no(field)
        && let Some(n) = first_number(&field.label)
    {
        return Some(Answer::yes_no(years >= n, source));
    }
    let mut candidates = vec![format!("{years}")];
    candidates.extend(field.options.iter().filter(|o| in_range(years, &o.label)).map(|o| o.label.clone()));
    if !field.options.is_empty() {
        candidates.reverse();
    }
    Some(Answer { candidates, source: source.into() })
}

/// Whether a number falls in an option such as "5-7 years", "3+", "less than 2", "10 or more".
fn in_range(n: f64, option: &str) -> bool {
    let f = fold(option);
    let nums: Vec<f64> = f.split(' ').filter_map(|t| t.parse().ok()).collect();
    let plus = option.contains('+') || ["more", "over", "plus", "mehr", "uber"].iter().any(|w| f.contains(w));
    let less = ["less", "under", "fewer", "weniger", "moins"].iter().any(|w| f.contains(w));
    match nums[..] {
        [a, b] => a <= n && n <= b,
        [a] if plus => n >= a,
        [a] if less => n < a,
        [a] => (n - a).abs() < f64::EPSILON,
        _ => false,
    }
}

fn first_number(text: &str) -> Option<f64> {
    fold(text).split(' ').find_map(|t| t.parse::<f64>().ok())
}

/// A yes/no question: a checkbox, or a choice whose options are yes and no.
pub fn is_yes_no(field: &Field) -> bool {
    use super::matching::{Polarity, polarity};
    field.kind == FieldKind::Checkbox
        || (field.kind.is_choice()
            && field.options.len() >= 2
            && field.options.iter().any(|o| polarity(&o.label) == Some(Polarity::Yes))
            && field.options.iter().any(|o| polarity(&o.label) == Some(Polarity::No)))
}

/// "Do you live in Germany?", "Are you within commuting distance of Zurich?".
fn located(field: &Field, data: &Map<String, Value>) -> Option<Answer> {
    let get = |key: &str| data.get(key).filter(|v| !is_blank(v)).map(as_text);
    let country =
        get("country_code").or_else(|| get("country").and_then(|c| geo::country(&c).map(|c| c.code.into())))?;
    let regions: Vec<String> = ["state", "state_code"].iter().filter_map(|k| get(k)).collect();
    let inside = geo::place_contains(&field.label, &country, &regions, &get("city").unwrap_or_default())?;
    Some(Answer::yes_no(inside, "user_data.location"))
}

/// CEFR level of the applicant in one language ("Native" counts as C2).
fn level_of(data: &Map<String, Value>, language: &str) -> Option<&'static str> {
    let levels = data.get("language_levels").and_then(Value::as_object);
    let spoken = data.get("languages").and_then(Value::as_array);
    let stated =
        levels.and_then(|l| l.iter().find(|(k, _)| language_code(k) == Some(language))).map(|(_, v)| as_text(v));
    let Some(level) = stated else {
        let listed = spoken.is_some_and(|s| s.iter().any(|v| language_code(&as_text(v)) == Some(language)));
        return listed.then_some("B2");
    };
    let f = fold(&level);
    for cefr in ["c2", "c1", "b2", "b1", "a2", "a1"] {
        if f.split(' ').any(|t| t == cefr) {
            return Some(CEFR[CEFR.iter().position(|c| c.eq_ignore_ascii_case(cefr)).unwrap_or(0)]);
        }
    }
    Some(if f.contains("native") || f.contains("mother") || f.contains("muttersprach") {
        "C2"
    } else if f.contains("fluent") || f.contains("proficient") || f.contains("fliessend") || f.contains("courant") {
        "C1"
    } else {
        "B1"
    })
}

const CEFR: [&str; 6] = ["A1", "A2", "B1", "B2", "C1", "C2"];

/// Languages by their names in English, German and French.
const LANGUAGES: &[(&str, &[&str])] = &[
    ("en", &["english", "englisch", "anglais", "englischkenntnisse"]),
    ("de", &["german", "deutsch", "allemand", "deutschkenntnisse"]),
    ("fr", &["french", "franzosisch", "francais", "franzosischkenntnisse"]),
    ("es", &["spanish", "spanisch", "espagnol"]),
    ("it", &["italian", "italienisch", "italien"]),
    ("pt", &["portuguese", "portugiesisch", "portugais"]),
    ("nl", &["dutch", "niederlandisch", "neerlandais"]),
];

fn language_code(name: &str) -> Option<&'static str> {
    let f = fold(name);
    LANGUAGES.iter().find(|(_, names)| names.iter().any(|n| f.split(' ').any(|t| t == *n))).map(|(c, _)| *c)
}

/// A language question: the level as the page's options write it, or yes/no for "are you fluent
/// in X and Y (C1 minimum)?".
fn languages(field: &Field, data: &Map<String, Value>) -> Option<Answer> {
    let label = fold(&field.label);
    let named: Vec<&str> =
        LANGUAGES.iter().filter(|(_, names)| names.iter().any(|n| label.contains(n))).map(|(c, _)| *c).collect();
    let source = "user_data.language_levels";
    if named.is_empty() {
        return None;
    }
    if is_yes_no(field) {
        let wanted = CEFR.iter().position(|c| label.split(' ').any(|t| t.eq_ignore_ascii_case(c))).unwrap_or(4);
        let all = named
            .iter()
            .all(|l| level_of(data, l).and_then(|lv| CEFR.iter().position(|c| *c == lv)).is_some_and(|p| p >= wanted));
        return Some(Answer::yes_no(all, source));
    }
    let [one] = named[..] else { return None };
    let level = level_of(data, one)?;
    let at = CEFR.iter().position(|c| *c == level).unwrap_or(0);
    // Options naming the level ("C1", "C1/C2", "Proficient (C1)"); else the level itself.
    let mut candidates: Vec<String> = field
        .options
        .iter()
        .filter(|o| fold(&o.label).split(' ').any(|t| t.eq_ignore_ascii_case(CEFR[at])))
        .map(|o| o.label.clone())
        .collect();
    candidates.push(level.to_string());
    Some(Answer { candidates, source: source.into() })
}

/// The salary expectation, unless the question asks in another currency than the applicant's.
fn salary(field: &Field, data: &Map<String, Value>) -> Option<Answer> {
    let amount = data.get("salary_expectation").filter(|v| !is_blank(v)).map(as_text)?;
    let currency = data.get("salary_currency").map(as_text).unwrap_or_default().to_uppercase();
    let asked: Vec<String> = field
        .label
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() == 3 && w.chars().all(|c| c.is_ascii_uppercase()))
        .filter(|w| ["USD", "EUR", "CHF", "GBP", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN"].contains(w))
        .map(str::to_string)
        .collect();
    if !currency.is_empty() && !asked.is_empty() && !asked.contains(&currency) {
        return None;
    }
    Some(Answer::one(amount, "user_data.salary_expectation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_take_the_applicants_number() {
        for (n, option, inside) in [
            (7.0, "5-7 years", true),
            (7.0, "7+ years", true),
            (6.0, "Less than 2 years", false),
            (1.0, "Less than 2 years", true),
            (10.0, "10 or more", true),
            (4.0, "5 - 10 Jahre", false),
        ] {
            assert_eq!(in_range(n, option), inside, "{n} in {option:?}");
        }
    }

    #[test]
    fn languages_are_named_in_three_languages() {
        assert_eq!(language_code("Englisch"), Some("en"));
        assert_eq!(language_code("Français"), Some("fr"));
        assert_eq!(language_code("Klingon"), None);
    }
}
