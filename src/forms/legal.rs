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
        .or_else(|| {
            (swiss(&label) || swiss(&options))
                .then(|| Jurisdiction::Country(geo::by_code("CH").map_or("CH", |c| c.code)))
        })
        .or_else(|| geo::named_in(&options).first().copied())
}

/// The answer to a legal question, or `None` (left for a person).
pub fn answer(intent: Intent, field: &Field, applicant: &Applicant) -> Option<Answer> {
    let asked = jurisdiction(field)?;
    if let Some(a) = from_qa(intent, asked, field, &applicant.qa_answers) {
        return Some(a);
    }
    if intent == Intent::CitizenshipCheck {
        return citizenship(asked, &applicant.user_data);
    }
    let auth = authorization(asked, &applicant.user_data)?;
    let source = format!("user_data.work_authorization.{}", auth.key);
    let bool_answer = |b: bool| Answer {
        candidates: (if b { ["Yes", "Ja", "Oui"] } else { ["No", "Nein", "Non"] })
            .iter()
            .map(|s| s.to_string())
            .collect(),
        source: source.clone(),
    };
    match intent {
        Intent::Sponsorship if is_yes_no(field) => auth.requires_sponsorship.map(bool_answer),
        Intent::WorkAuthorization | Intent::Permit if is_yes_no(field) => {
            let without_sponsor = fold(&field.label).contains("without");
            let ok = auth.authorized? && (!without_sponsor || auth.requires_sponsorship == Some(false));
            Some(bool_answer(ok))
        }
        Intent::WorkAuthorization | Intent::Permit if !field.options.is_empty() => choose_status(field, &auth, &source),
        Intent::Permit => auth.permit.clone().map(|p| Answer { candidates: vec![p], source }),
        _ => None,
    }
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

fn citizenship(asked: Jurisdiction, data: &Map<String, Value>) -> Option<Answer> {
    let held =
        ["citizenship", "nationality"].iter().find_map(|k| data.get(*k).filter(|v| !is_blank(v)).map(as_text))?;
    let country = geo::country(&held)?;
    let yes = geo::within(Jurisdiction::Country(country.code), asked);
    let words: &[&str] = if yes { &["Yes", "Ja", "Oui"] } else { &["No", "Nein", "Non"] };
    Some(Answer { candidates: words.iter().map(|w| w.to_string()).collect(), source: "user_data.citizenship".into() })
}

/// A `qa_answers` entry asking the same thing about the same jurisdiction.
fn from_qa(intent: Intent, asked: Jurisdiction, field: &Field, qa: &Map<String, Value>) -> Option<Answer> {
    let compatible = |other: Intent| {
        other == intent
            || (is_yes_no(field)
                && matches!(
                    (intent, other),
                    (Intent::WorkAuthorization | Intent::Permit, Intent::WorkAuthorization | Intent::Permit)
                ))
    };
    qa.iter()
        .filter(|(_, v)| !is_blank(v))
        .filter(|(q, _)| classify(q).is_some_and(compatible))
        .filter(|(q, _)| geo::named_in(q).first().is_some_and(|j| *j == asked))
        .map(|(q, v)| Answer { candidates: vec![as_text(v)], source: format!("qa_answers.{q}") })
        .next()
}

/// A status question with options ("Swiss citizen", "Valid Swiss work permit", "I need
/// sponsorship"): the one option whose every claim is true of the applicant.
fn choose_status(field: &Field, auth: &Authorization, source: &str) -> Option<Answer> {
    let has_permit = auth.permit.is_some() || auth.basis.as_deref().is_some_and(|b| fold(b).contains("permit"));
    let truths: Vec<(&str, Option<bool>)> = field
        .options
        .iter()
        .map(|o| {
            let f = fold(&o.label);
            let claim = if ["sponsor", "require", "need", "benotig", "besoin"].iter().any(|w| f.contains(w)) {
                auth.requires_sponsorship
            } else if ["citizen", "burger", "staatsangehor", "citoyen", "national"].iter().any(|w| f.contains(w)) {
                None
            } else if ["permit", "bewilligung", "permis", "visa", "authori", "eligible", "genehmigung"]
                .iter()
                .any(|w| f.contains(w))
            {
                Some(auth.authorized == Some(true) && has_permit)
            } else {
                match polarity(&o.label) {
                    Some(Polarity::Yes) => auth.authorized,
                    Some(Polarity::No) => auth.authorized.map(|a| !a),
                    _ => None,
                }
            };
            (o.label.as_str(), claim)
        })
        .collect();
    let chosen: Vec<&str> = truths.iter().filter(|(_, t)| *t == Some(true)).map(|(l, _)| *l).collect();
    if let [one] = chosen[..] {
        return Some(Answer { candidates: vec![one.to_string()], source: source.into() });
    }
    // A permit-type list ("B EU/EFTA", "B (Aufenthaltsbewilligung)", "C"): the permit the applicant
    // holds, also when only its letter is written the same way.
    let permit = auth.permit.clone()?;
    let letter = fold(&permit).split(' ').next().map(str::to_string).filter(|l| l.len() == 1);
    let same_letter: Vec<&str> = field
        .options
        .iter()
        .filter(|o| letter.is_some() && fold(&o.label).split(' ').next() == letter.as_deref())
        .map(|o| o.label.as_str())
        .collect();
    let mut candidates = vec![permit];
    if let [one] = same_letter[..] {
        candidates.push(one.to_string());
    }
    Some(Answer { candidates, source: source.into() })
}
