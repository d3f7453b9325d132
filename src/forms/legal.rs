//! The jurisdiction rule (SPEC §4.1): work authorisation, sponsorship, permit, citizenship and
//! clearance questions are answered only from `work_authorization` or `qa_answers` about the
//! same jurisdiction as the question (named in its text or options). Anything else is left
//! for a person: a US answer never answers a UK or Swiss question.

use serde_json::{Map, Value};

use super::facts::{Answer, is_yes_no};
use super::geo::{self, Jurisdiction};
use super::intent::{Intent, classify};
use super::matching::{Polarity, fold, polarity};
use super::rules::{as_text, is_blank};
use super::{Applicant, Field};

/// One `work_authorization` entry.
struct Authorization {
    authorized: Option<bool>,
    requires_sponsorship: Option<bool>,
    permit: Option<String>,
    basis: Option<String>,
    key: String,
}

/// The jurisdiction a question is about: named in its label, else in its options; Swiss legal
/// vocabulary ("Aufenthaltsbewilligung", "permis B") names Switzerland where nothing else does.
pub fn jurisdiction(field: &Field) -> Option<Jurisdiction> {
    let own = field.hints.own_label.as_deref().unwrap_or("");
    let label = format!("{} {own}", field.label);
    let options: Vec<&str> = field.options.iter().map(|o| o.label.as_str()).collect();
    let options = options.join(" , ");
    let swiss = |text: &str| {
        let f = fold(text);
        f.contains("bewilligung") || f.contains("permis b") || f.contains("permis c")
    };
    geo::named_in(&label)
        .first()
        .copied()
        .or_else(|| (swiss(&label) || swiss(&options)).then_some(Jurisdiction::Country("CH")))
        .or_else(|| geo::named_in(&options).first().copied())
}

/// The answers to a legal question, most trusted first (the caller's own answers for this
/// jurisdiction, then what `work_authorization` implies); empty when it is left for a person.
pub fn answers(intent: Intent, field: &Field, applicant: &Applicant) -> Vec<Answer> {
    let home = home(&applicant.user_data);
    let Some(asked) = jurisdiction(field) else {
        // Neither the question nor the caller's answer names a country: the caller answered
        // this very question; nothing can cross.
        return from_qa(intent, None, None, field, &applicant.qa_answers);
    };
    let mut out = from_qa(intent, Some(asked), home, field, &applicant.qa_answers);
    if intent == Intent::CitizenshipCheck {
        out.extend(citizenship(asked, &applicant.user_data));
        return out;
    }
    let Some(auth) = authorization(asked, &applicant.user_data) else { return out };
    let source = format!("user_data.work_authorization.{}", auth.key);
    let bool_answer = |b: bool| Answer {
        candidates: (if b { ["Yes", "Ja", "Oui"] } else { ["No", "Nein", "Non"] })
            .iter()
            .map(|s| s.to_string())
            .collect(),
        source: source.clone(),
    };
    let derived = match intent {
        Intent::Sponsorship if is_yes_no(field) => auth.requires_sponsorship.map(bool_answer),
        Intent::WorkAuthorization | Intent::Permit if is_yes_no(field) => {
            let without_sponsor = fold(&field.label).contains("without");
            auth.authorized.map(|ok| bool_answer(ok && (!without_sponsor || auth.requires_sponsorship == Some(false))))
        }
        Intent::WorkAuthorization | Intent::Permit if !field.options.is_empty() => {
            let citizen = citizenship_country(&applicant.user_data);
            choose_status(field, &auth, citizen, asked, &source)
        }
        Intent::Permit => auth.permit.clone().map(|p| Answer { candidates: vec![p], source }),
        _ => None,
    };
    out.extend(derived);
    out
}

/// The `work_authorization` entry whose jurisdiction contains the asked one ("Germany" under an
/// "European Union" entry), the most specific first.
fn authorization(asked: Jurisdiction, data: &Map<String, Value>) -> Option<Authorization> {
    let entries = data.get("work_authorization")?.as_object()?;
    let mut matching: Vec<(&String, &Value, Jurisdiction)> = entries
        .iter()
        .filter_map(|(k, v)| geo::jurisdiction_of_key(k).map(|j| (k, v, j)))
        .filter(|(_, _, j)| geo::within(asked, *j))
        .collect();
    matching.sort_by_key(|(_, _, j)| matches!(j, Jurisdiction::Eu));
    let (key, v, _) = matching.into_iter().next()?;
    let text = |k: &str| v.get(k).filter(|x| !is_blank(x)).map(as_text);
    Some(Authorization {
        authorized: v.get("authorized").and_then(Value::as_bool),
        requires_sponsorship: v.get("requires_sponsorship").and_then(Value::as_bool),
        permit: text("permit"),
        basis: text("basis"),
        key: key.clone(),
    })
}

fn citizenship_country(data: &Map<String, Value>) -> Option<Jurisdiction> {
    let held =
        ["citizenship", "nationality"].iter().find_map(|k| data.get(*k).filter(|v| !is_blank(v)).map(as_text))?;
    geo::country(&held).map(|c| Jurisdiction::Country(c.code))
}

fn citizenship(asked: Jurisdiction, data: &Map<String, Value>) -> Option<Answer> {
    let yes = geo::within(citizenship_country(data)?, asked);
    let words: &[&str] = if yes { &["Yes", "Ja", "Oui"] } else { &["No", "Nein", "Non"] };
    Some(Answer { candidates: words.iter().map(|w| w.to_string()).collect(), source: "user_data.citizenship".into() })
}

/// Whether a `qa_answers` question may answer a legal field: both name the same jurisdiction
/// (a question naming none is about the applicant's country of residence), or neither names one.
pub fn same_jurisdiction(field: &Field, question: &str, applicant: &Applicant) -> bool {
    let answered = geo::named_in(question).first().copied();
    match jurisdiction(field) {
        Some(asked) => answered.or_else(|| home(&applicant.user_data)) == Some(asked),
        None => answered.is_none(),
    }
}

/// The applicant's country of residence: the jurisdiction of an answer that names none.
fn home(data: &Map<String, Value>) -> Option<Jurisdiction> {
    let named = ["country_code", "country"].iter().find_map(|k| data.get(*k).filter(|v| !is_blank(v)).map(as_text))?;
    geo::country(&named).map(|c| Jurisdiction::Country(c.code))
}

/// `qa_answers` entries asking the same thing about the same jurisdiction (an answer that names
/// none is about the applicant's country of residence); for a choice that is not yes/no, only
/// answers that are not a bare yes/no ("B (EU/EFTA)", not "Yes, …").
fn from_qa(
    intent: Intent,
    asked: Option<Jurisdiction>,
    home: Option<Jurisdiction>,
    field: &Field,
    qa: &Map<String, Value>,
) -> Vec<Answer> {
    let yes_no = is_yes_no(field);
    let compatible = |other: Intent| {
        other == intent
            || (yes_no
                && matches!(
                    (intent, other),
                    (Intent::WorkAuthorization | Intent::Permit, Intent::WorkAuthorization | Intent::Permit)
                ))
    };
    qa.iter()
        .filter(|(_, v)| !is_blank(v))
        .filter(|(q, _)| classify(q).is_some_and(compatible))
        .filter(|(q, _)| match asked {
            Some(asked) => geo::named_in(q).first().copied().or(home) == Some(asked),
            None => geo::named_in(q).is_empty(),
        })
        .filter(|(_, v)| yes_no || field.options.is_empty() || polarity(&as_text(v)).is_none())
        .map(|(q, v)| Answer { candidates: vec![as_text(v)], source: format!("qa_answers.{q}") })
        .collect()
}

/// A status question with options ("Swiss citizen", "Valid Swiss work permit", "EU/EFTA citizen
/// without Swiss work permit"): the one option whose every claim is true of the applicant; for a
/// permit-type list ("B EU/EFTA", "B (Aufenthaltsbewilligung)", "C"), the permit held.
fn choose_status(
    field: &Field,
    auth: &Authorization,
    citizen: Option<Jurisdiction>,
    asked: Jurisdiction,
    source: &str,
) -> Option<Answer> {
    let answer = |label: &str| Some(Answer { candidates: vec![label.to_string()], source: source.into() });
    if let Some(label) = permit_type(field, auth) {
        return answer(label);
    }
    let has_permit = auth.permit.is_some() || auth.basis.as_deref().is_some_and(|b| fold(b).contains("permit"));
    let true_options: Vec<&str> = field
        .options
        .iter()
        .filter(|o| option_is_true(&o.label, auth, has_permit, citizen, asked) == Some(true))
        .map(|o| o.label.as_str())
        .collect();
    match true_options[..] {
        [one] => answer(one),
        _ => None,
    }
}

/// Whether an option's claims about the applicant all hold (`None` when it makes none we know).
fn option_is_true(
    label: &str,
    auth: &Authorization,
    has_permit: bool,
    citizen: Option<Jurisdiction>,
    asked: Jurisdiction,
) -> Option<bool> {
    let f = format!(" {} ", fold(label));
    let has = |words: &[&str]| words.iter().any(|w| f.contains(w));
    let negated = has(&[" without ", " ohne ", " sans ", " keine ", " kein ", " no ", " not ", " non "]);
    let mut claims: Vec<Option<bool>> = Vec::new();
    if has(&["sponsor", " require", " need", "benotig", "besoin"]) {
        claims.push(auth.requires_sponsorship.map(|r| r != negated));
    } else if has(&["permit", "bewilligung", "permis", "visa", "authori", "eligible", "genehmigung"]) {
        claims.push(auth.authorized.map(|a| (a && has_permit) != negated));
    }
    if has(&["citizen", "burger", "staatsangehor", "citoyen", "national"]) {
        let of = geo::named_in(label).first().copied().unwrap_or(asked);
        claims.push(citizen.map(|c| geo::within(c, of)));
    }
    if claims.is_empty() {
        return match polarity(label) {
            Some(Polarity::Yes) => auth.authorized,
            Some(Polarity::No) => auth.authorized.map(|a| !a),
            _ => None,
        };
    }
    if claims.contains(&Some(false)) {
        return Some(false);
    }
    claims.iter().all(|c| *c == Some(true)).then_some(true)
}

/// The option naming the applicant's permit type by its letter ("B", "Ausweis B (…)", "Permis
/// B"): the one sharing most words with the permit as written, the plainest on a tie.
fn permit_type<'a>(field: &'a Field, auth: &Authorization) -> Option<&'a str> {
    let permit = fold(auth.permit.as_deref()?);
    let words: Vec<&str> = permit.split(' ').collect();
    let letter = words.first().filter(|l| l.len() == 1)?;
    let same: Vec<(&str, usize, usize)> = field
        .options
        .iter()
        .filter_map(|o| {
            let f = fold(&o.label);
            let tokens: Vec<&str> = f.split(' ').collect();
            let letters: Vec<&&str> = tokens.iter().filter(|t| t.len() == 1).collect();
            (letters.first().is_some_and(|l| **l == *letter)).then(|| {
                let shared = tokens.iter().filter(|t| words.contains(t)).count();
                (o.label.as_str(), shared, tokens.len())
            })
        })
        .collect();
    let best = same.iter().map(|(_, shared, len)| (*shared, usize::MAX - len)).max()?;
    let top: Vec<&str> = same.iter().filter(|(_, s, l)| (*s, usize::MAX - l) == best).map(|(o, _, _)| *o).collect();
    match top[..] {
        [one] => Some(one),
        _ => None,
    }
}
