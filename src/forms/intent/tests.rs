//! The intent table against real phrasings (`cases.tsv`) and the jurisdiction reader against
//! `jurisdictions.tsv`, both as data. Prints precision and recall per intent.

use std::collections::BTreeMap;

use super::*;
use crate::forms::geo::{self, Jurisdiction};

/// Rows of a tab-separated case file: (expected, lang, text).
fn rows(file: &'static str) -> Vec<(&'static str, &'static str, &'static str)> {
    file.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.splitn(3, '\t');
            let row = (parts.next(), parts.next(), parts.next());
            match row {
                (Some(a), Some(b), Some(c)) => (a, b, c),
                _ => panic!("malformed case row: {l:?}"),
            }
        })
        .collect()
}

fn parse_intent(name: &str) -> Option<Intent> {
    (name != "none").then(|| {
        serde_json::from_value(serde_json::Value::String(name.into()))
            .unwrap_or_else(|_| panic!("unknown intent {name}"))
    })
}

#[test]
fn intents_of_real_phrasings_have_high_precision_and_recall() {
    let cases = rows(include_str!("cases.tsv"));
    assert!(cases.len() >= 300, "the table needs at least 300 phrasings");
    // Per intent: (true positives, false positives, false negatives).
    let mut counts: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    let mut misses = Vec::new();
    for (want, lang, text) in &cases {
        let want = parse_intent(want);
        let got = classify(text);
        let name = |i: Option<Intent>| i.map_or("none".to_string(), |i| format!("{i:?}"));
        if want == got {
            counts.entry(name(want)).or_default().0 += 1;
        } else {
            counts.entry(name(got)).or_default().1 += 1;
            counts.entry(name(want)).or_default().2 += 1;
            misses.push(format!("  [{lang}] {text:?}: expected {}, got {}", name(want), name(got)));
        }
    }
    println!("{:<20} {:>9} {:>7}", "intent", "precision", "recall");
    for (intent, (tp, fp, fn_)) in &counts {
        let p = f64::from(*tp) / f64::from((tp + fp).max(1));
        let r = f64::from(*tp) / f64::from((tp + fn_).max(1));
        println!("{intent:<20} {p:>9.2} {r:>7.2}");
    }
    let accuracy = 1.0 - misses.len() as f64 / cases.len() as f64;
    println!("{} cases, accuracy {accuracy:.3}\n{}", cases.len(), misses.join("\n"));
    assert!(accuracy >= 0.95, "accuracy {accuracy:.3} below 0.95; misses:\n{}", misses.join("\n"));
}

#[test]
fn questions_name_their_jurisdiction() {
    let cases = rows(include_str!("jurisdictions.tsv"));
    let mut misses = Vec::new();
    for (want, lang, text) in &cases {
        let want = match *want {
            "-" => None,
            "EU" => Some(Jurisdiction::Eu),
            code => Some(Jurisdiction::Country(geo::by_code(code).expect("a known code").code)),
        };
        let got = geo::named_in(text).first().copied();
        if got != want {
            misses.push(format!("  [{lang}] {text:?}: expected {want:?}, got {got:?}"));
        }
    }
    let accuracy = 1.0 - misses.len() as f64 / cases.len() as f64;
    println!("{} cases, accuracy {accuracy:.3}\n{}", cases.len(), misses.join("\n"));
    // Cities beyond regional capitals and inflected adjectives ("Schweizer", "française") are not
    // in the ISO data: those rows are the known gap.
    assert!(accuracy >= 0.85, "accuracy {accuracy:.3}; misses:\n{}", misses.join("\n"));
}
