//! Phone numbers with a dial-code picker beside them (a native select of countries, or an
//! intl-tel-input-like flag button with a list): the picker is set to the number's calling code
//! (the applicant's own country among those sharing it, "+1" → United States, not Canada) and the
//! national number is typed into the box. When the picker cannot be set (or shows no calling
//! code afterwards), the whole international number is typed instead, so the code is never lost.

use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use super::executor::DIAL_SHOWN;
use super::{Executor, FillError};
use crate::forms::geo::{self, Country};
use crate::forms::matching::fold;
use crate::forms::rules::as_text;
use crate::forms::{Field, FieldKind};

/// What to dial: the calling code, the country it stands for (when known) and the national rest.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dial {
    pub(crate) code: String,
    pub(crate) country: Option<&'static str>,
    pub(crate) national: String,
}

/// Splits "+41 79 555 01 23" / "0041 79…" into the calling code and the national number; a
/// number without a prefix is dialled with the applicant's country (`country_code`, `country`).
pub(crate) fn dial(number: &str, data: &Map<String, Value>) -> Option<Dial> {
    let home = data
        .get("country_code")
        .map(as_text)
        .and_then(|c| geo::by_code(&c))
        .or_else(|| data.get("country").map(as_text).and_then(|c| geo::country(&c)));
    let t = number.trim();
    let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix("00")) else {
        let home = home?;
        return Some(Dial { code: home.calling_code.clone(), country: Some(home.code), national: t.to_string() });
    };
    let run: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let code = (1..=run.len().min(3)).map(|n| &run[..n]).find(|c| geo::by_calling_code(c).next().is_some())?;
    let national = rest[code.len()..].trim_start_matches([' ', '-', '.', '/']);
    let national = national.strip_prefix("(0)").unwrap_or(national).trim().to_string();
    let country = home
        .filter(|h| h.calling_code == code)
        .or_else(|| {
            let mut all = geo::by_calling_code(code);
            let first = all.next();
            if all.next().is_none() { first } else { None }
        })
        .map(|c| c.code);
    (!national.is_empty()).then(|| Dial { code: code.to_string(), country, national })
}

/// True when a text names the calling code: "+41" not followed by another digit.
pub(crate) fn mentions_code(text: &str, code: &str) -> bool {
    let needle = format!("+{code}");
    text.match_indices(&needle).any(|(i, _)| !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// Whether an option (its label and value) stands for the country.
fn names_country(label: &str, value: &str, country: &Country) -> bool {
    if value.trim().eq_ignore_ascii_case(country.code) {
        return true;
    }
    let words = format!(" {} ", fold(label));
    country.names.iter().any(|n| n.len() > 2 && words.contains(&format!(" {n} ")))
}

/// The picker option for the dial: calling code and country, else the calling code alone (the
/// first such option), else the country's name alone (a picker that shows no codes).
pub(crate) fn pick(picker: &Field, dial: &Dial) -> Option<String> {
    let country = dial.country.and_then(geo::by_code);
    let has_code = |o: &crate::forms::FieldOption| {
        mentions_code(&o.label, &dial.code) || o.value.trim().trim_start_matches('+') == dial.code
    };
    let has_country = |o: &crate::forms::FieldOption| country.is_some_and(|c| names_country(&o.label, &o.value, c));
    let options = &picker.options;
    options
        .iter()
        .find(|o| has_code(o) && has_country(o))
        .or_else(|| options.iter().find(|o| has_code(o)))
        .or_else(|| options.iter().find(|o| has_country(o)))
        .map(|o| o.label.clone())
}

/// What a phone write did: the number typed, whether it reads back, and the picker's write
/// (the option and whether the picker shows the code), or why the picker was left alone
/// (`already_filled`, or `no_data` when no option stands for the number's code).
pub(crate) struct PhoneWrite {
    pub(crate) value: Value,
    pub(crate) verified: bool,
    pub(crate) picker: Result<(Value, bool), &'static str>,
}

impl Executor<'_> {
    /// Sets the picker, then types the national number (or the whole number when the picker
    /// could not be set).
    pub(super) async fn phone(
        &self,
        field: &Field,
        picker: &Field,
        number: &str,
        data: &Map<String, Value>,
        rng: &mut StdRng,
    ) -> Result<PhoneWrite, FillError> {
        let typed = |(value, verified): (Value, bool), picker| PhoneWrite { value, verified, picker };
        let Some((dial, label)) = dial(number, data).and_then(|d| pick(picker, &d).map(|l| (d, l))) else {
            return Ok(typed(self.text(field, number, rng).await?, Err("no_data")));
        };
        let already = picker.value.as_str() == Some(label.as_str());
        let written = if already {
            None
        } else {
            let result = match picker.kind {
                FieldKind::Select => self.select(picker, &label).await,
                _ => self.combobox(picker, &label, rng).await,
            };
            Some(result)
        };
        let shown = self.call("read dial code", DIAL_SHOWN, json!({ "selector": picker.selector })).await?;
        let shown = as_text(&shown);
        let set = mentions_code(&shown, &dial.code) || fold(&shown).contains(&fold(&label));
        let picker_write = match written {
            None => Err("already_filled"),
            Some(Ok(_)) => Ok((json!(label), set)),
            Some(Err(FillError::Browser(e))) => return Err(e.into()),
            Some(Err(_)) => Ok((json!(label), false)),
        };
        // The number goes in whole when the picker does not hold its code: never lose it.
        let value = if set { dial.national.as_str() } else { number };
        Ok(typed(self.text(field, value, rng).await?, picker_write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()
    }

    #[test]
    fn numbers_split_into_calling_code_and_national_number() {
        let us = data(&[("country", "United States")]);
        let ch = data(&[("country_code", "CH")]);
        // (number, applicant data, (calling code, country, national number))
        type Case<'a> = (&'a str, &'a Map<String, Value>, Option<(&'a str, Option<&'a str>, &'a str)>);
        let cases: &[Case] = &[
            ("+41 79 555 01 23", &ch, Some(("41", Some("CH"), "79 555 01 23"))),
            ("+1 415 555 0142", &us, Some(("1", Some("US"), "415 555 0142"))),
            ("+1 415 555 0142", &ch, Some(("1", None, "415 555 0142"))),
            ("0041 79 555 01 23", &us, Some(("41", Some("CH"), "79 555 01 23"))),
            ("+41 (0)79 555 01 23", &ch, Some(("41", Some("CH"), "79 555 01 23"))),
            ("+41795550123", &ch, Some(("41", Some("CH"), "795550123"))),
            ("079 555 01 23", &ch, Some(("41", Some("CH"), "079 555 01 23"))),
            ("079 555 01 23", &Map::new(), None),
            ("+", &ch, None),
        ];
        for (number, data, want) in cases {
            let got = dial(number, data);
            let got = got.as_ref().map(|d| (d.code.as_str(), d.country, d.national.as_str()));
            assert_eq!(got, *want, "{number}");
        }
    }

    #[test]
    fn the_picker_option_is_the_code_in_the_applicants_country() {
        let options = |labels: &[(&str, &str)]| {
            labels
                .iter()
                .map(|(v, l)| crate::forms::FieldOption { value: v.to_string(), label: l.to_string(), selector: None })
                .collect()
        };
        let mut picker: Field = serde_json::from_value(json!({
            "field_id": "cc", "selector": "#cc", "html_id": null, "name": null, "label": "Phone (country code)",
            "kind": "select", "required": false, "value": null, "section": null, "trap": false
        }))
        .unwrap();
        picker.options = options(&[("CA", "Canada (+1)"), ("CH", "Switzerland (+41)"), ("US", "United States (+1)")]);
        let us = Dial { code: "1".into(), country: Some("US"), national: String::new() };
        let any_1 = Dial { code: "1".into(), country: None, national: String::new() };
        let ch = Dial { code: "41".into(), country: Some("CH"), national: String::new() };
        let de = Dial { code: "49".into(), country: Some("DE"), national: String::new() };
        assert_eq!(pick(&picker, &us).as_deref(), Some("United States (+1)"));
        assert_eq!(pick(&picker, &any_1).as_deref(), Some("Canada (+1)"));
        assert_eq!(pick(&picker, &ch).as_deref(), Some("Switzerland (+41)"));
        assert_eq!(pick(&picker, &de), None);
        picker.options = options(&[("+41", "Schweiz"), ("+49", "Deutschland")]);
        assert_eq!(pick(&picker, &de).as_deref(), Some("Deutschland"));
        assert!(mentions_code("Switzerland +41", "41") && !mentions_code("+413", "41") && !mentions_code("+4", "41"));
    }
}
