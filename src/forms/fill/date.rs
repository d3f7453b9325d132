//! Dates: native date inputs take `YYYY-MM-DD` through the native setter; text date fields are
//! typed in the format the field asks for (a hint such as `TT.MM.JJJJ`, `JJ.MM.AAAA`,
//! `DD/MM/YYYY` or `MM/DD/YYYY` in its placeholder or label); a date asked in parts (day, month
//! and year selects or boxes) is written part by part.

use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::executor::{SELECT, SET_VALUE};
use super::{Executor, FillError};
use crate::forms::matching::fold;
use crate::forms::rules::as_text;
use crate::forms::{DatePart, Field, FieldOption};

/// One part of a date format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Day,
    Month,
    Year,
    ShortYear,
}

/// A date format: three parts and the separator between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateFormat {
    parts: [Part; 3],
    separator: char,
}

impl DateFormat {
    /// The first date format hint in a text (EN `DD/MM/YYYY`, DE `TT.MM.JJJJ`, FR `JJ/MM/AAAA`).
    pub(crate) fn find(text: &str) -> Option<DateFormat> {
        text.split(|c: char| c.is_whitespace() || "()[],:;".contains(c)).find_map(Self::parse)
    }

    fn parse(token: &str) -> Option<DateFormat> {
        let separator = token.chars().find(|c| matches!(c, '.' | '/' | '-'))?;
        let runs: Vec<&str> = token.split(separator).collect();
        if runs.len() != 3 {
            return None;
        }
        let mut parts = Vec::with_capacity(3);
        for run in &runs {
            let upper = run.to_uppercase();
            let first = upper.chars().next()?;
            if upper.len() > 4 || !upper.chars().all(|c| c == first) {
                return None;
            }
            let part = match (first, upper.len()) {
                ('M', 1..=2) => Part::Month,
                ('Y' | 'J' | 'A', 4) => Part::Year,
                ('D' | 'T', 1..=2) => Part::Day,
                ('J', 1..=2) if !parts.contains(&Part::Day) => Part::Day,
                ('Y' | 'A' | 'J', 2) => Part::ShortYear,
                _ => return None,
            };
            if parts.contains(&part) {
                return None;
            }
            parts.push(part);
        }
        let has_year = parts.contains(&Part::Year) || parts.contains(&Part::ShortYear);
        if !(parts.contains(&Part::Day) && parts.contains(&Part::Month) && has_year) {
            return None;
        }
        Some(DateFormat { parts: [parts[0], parts[1], parts[2]], separator })
    }

    /// An ISO date (`YYYY-MM-DD`) in this format; none for anything else.
    pub(crate) fn render(&self, iso: &str) -> Option<String> {
        let (y, m, d) = parse_iso(iso)?;
        let text: Vec<String> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Day => format!("{d:02}"),
                Part::Month => format!("{m:02}"),
                Part::Year => format!("{y:04}"),
                Part::ShortYear => format!("{:02}", y % 100),
            })
            .collect();
        Some(text.join(&self.separator.to_string()))
    }
}

fn parse_iso(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// The format a text field asks its date in (placeholder first, then label).
pub(crate) fn asked_format(field: &Field) -> Option<DateFormat> {
    field.hints.placeholder.as_deref().and_then(DateFormat::find).or_else(|| DateFormat::find(&field.label))
}

/// Month names (folded) in English, German and French, full and abbreviated.
const MONTHS: [&[&str]; 12] = [
    &["january", "jan", "januar", "janvier", "janv"],
    &["february", "feb", "februar", "fevrier", "fev", "fevr"],
    &["march", "mar", "marz", "mars"],
    &["april", "apr", "avril", "avr"],
    &["may", "mai"],
    &["june", "jun", "juni", "juin"],
    &["july", "jul", "juli", "juillet", "juil"],
    &["august", "aug", "aout"],
    &["september", "sep", "sept", "septembre"],
    &["october", "oct", "oktober", "okt", "octobre"],
    &["november", "nov", "novembre"],
    &["december", "dec", "dezember", "dez", "decembre"],
];

/// The number a date part's option stands for: its digits, or a month's name.
fn option_number(part: &str, option: &FieldOption) -> Option<u32> {
    let digits = |s: &str| s.trim().parse::<u32>().ok();
    if let Some(n) = digits(&option.label).or_else(|| digits(&option.value)) {
        return Some(n);
    }
    let name = fold(&option.label);
    let first = name.split(' ').next().unwrap_or("");
    (part == "month").then(|| MONTHS.iter().position(|names| names.contains(&first)).map(|i| i as u32 + 1)).flatten()
}

/// What a date part holds for a date: its number, a year in two digits when the box asks for it.
fn part_number(part: &DatePart, (y, m, d): (u32, u32, u32)) -> Option<u32> {
    match part.part.as_str() {
        "day" => Some(d),
        "month" => Some(m),
        "year" if part.placeholder.as_deref().is_some_and(|p| p.trim().chars().count() == 2) => Some(y % 100),
        "year" => Some(y),
        _ => None,
    }
}

impl Executor<'_> {
    /// A date asked in parts: each select set to the option for its number (months also by
    /// name in EN/DE/FR), each box typed (two digits for day and month), every part read back.
    async fn date_parts(&self, field: &Field, value: &str, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        let date = parse_iso(value).ok_or_else(|| FillError::NoOption(value.into()))?;
        self.reveal(&field.selector, rng).await?;
        let mut all_ok = true;
        for part in &field.hints.date_parts {
            let n = part_number(part, date).ok_or_else(|| FillError::NoOption(part.part.clone()))?;
            if part.options.is_empty() {
                let text = if part.part == "year" && n >= 100 { n.to_string() } else { format!("{n:02}") };
                if !self.focus(&part.selector).await? {
                    return Err(FillError::Gone);
                }
                self.type_text(&text, rng).await?;
                let shown = as_text(&self.read_value(&part.selector, true).await?);
                all_ok &= shown.trim().parse::<u32>().ok() == Some(n);
            } else {
                let option = part
                    .options
                    .iter()
                    .find(|o| option_number(&part.part, o) == Some(n))
                    .ok_or_else(|| FillError::NoOption(format!("{} {n}", part.part)))?;
                let args = json!({ "selector": part.selector, "value": option.value, "label": option.label });
                let result = self.call("select date part", SELECT, args).await?;
                all_ok &= result.get("selected").and_then(Value::as_str) == Some(option.label.as_str());
            }
            self.pause(rng).await;
        }
        Ok((json!(value), all_ok))
    }

    pub(super) async fn date(&self, field: &Field, value: &str, rng: &mut StdRng) -> Result<(Value, bool), FillError> {
        if !field.hints.date_parts.is_empty() {
            return self.date_parts(field, value, rng).await;
        }
        if field.hints.input_type.as_deref() != Some("date") {
            let formatted = asked_format(field).and_then(|f| f.render(value)).unwrap_or_else(|| value.to_string());
            return self.text(field, &formatted, rng).await;
        }
        self.reveal(&field.selector, rng).await?;
        let shown = self.call("set date", SET_VALUE, json!({ "selector": field.selector, "value": value })).await?;
        Ok((json!(value), shown.as_str() == Some(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_in_the_format_the_field_asks_for() {
        let cases = [
            ("Geburtsdatum (TT.MM.JJJJ)", "1990-04-07", Some("07.04.1990")),
            ("Date de naissance JJ/MM/AAAA", "1990-04-07", Some("07/04/1990")),
            ("JJ.MM.AAAA", "1990-04-07", Some("07.04.1990")),
            ("Date of birth (DD/MM/YYYY)", "1990-04-07", Some("07/04/1990")),
            ("mm/dd/yyyy", "1990-04-07", Some("04/07/1990")),
            ("YYYY-MM-DD", "1990-04-07", Some("1990-04-07")),
            ("TT.MM.JJ", "1990-04-07", Some("07.04.90")),
            ("Start date", "1990-04-07", None),
            ("DD/MM/YYYY", "next month", None),
            ("DD/MM/YYYY", "1990-13-07", None),
            ("MM/MM/YYYY", "1990-04-07", None),
            ("a/b/c", "1990-04-07", None),
        ];
        for (hint, value, want) in cases {
            let got = DateFormat::find(hint).and_then(|f| f.render(value));
            assert_eq!(got.as_deref(), want, "{hint:?} with {value:?}");
        }
    }

    #[test]
    fn date_part_options_are_read_by_number_or_month_name() {
        let cases = [
            ("month", "", "März", Some(3)),
            ("month", "", "août", Some(8)),
            ("month", "", "Sept.", Some(9)),
            ("month", "", "December", Some(12)),
            ("month", "m4", "Apr", Some(4)),
            ("month", "04", "--", Some(4)),
            ("day", "", "07", Some(7)),
            ("year", "1990", "1990", Some(1990)),
            ("day", "", "März", None),
            ("month", "", "Monat", None),
        ];
        for (part, value, label, want) in cases {
            let option = FieldOption { value: value.into(), label: label.into(), selector: None };
            assert_eq!(option_number(part, &option), want, "{part} {label:?}");
        }
    }
}
