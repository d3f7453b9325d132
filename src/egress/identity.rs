//! The browser identity that matches a proxy's exit: time zone and language, explicit or from
//! the exit country. Time zones come from the IANA tz database the distribution keeps current
//! (`zone1970.tab` and `tzdata.zi` under `/usr/share/zoneinfo`, or `$TZDIR`), official
//! languages from ISO country data (`keshvar`).
//!
//! A country is only enough where the data give one answer: a country spanning several time
//! zones (US, CA, AU, ES…) needs `timezone`, one with several official languages none of which
//! is English (CH, BE…) needs `locale`; the error lists the choices. Guessing would give the
//! page a time zone or language that contradicts the exit address.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Time zone and language a session's browser presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// IANA time zone (`Europe/Berlin`).
    pub timezone: Option<String>,
    /// BCP 47 language tag (`de-DE`).
    pub locale: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0} is not an ISO 3166 alpha-2 country code")]
    Country(String),
    #[error("{0} is not a time zone of the IANA database (e.g. Europe/Berlin)")]
    Timezone(String),
    #[error("{0} is not a language tag such as de-DE")]
    Locale(String),
    #[error("{country} spans several time zones: give proxy.timezone (one of {choices})")]
    TimezoneNeeded { country: String, choices: String },
    #[error("{country} has several official languages: give proxy.locale (one of {choices})")]
    LocaleNeeded { country: String, choices: String },
    #[error("the time zone database is missing ({0}); install the tzdata package")]
    NoTzdata(String),
}

impl Identity {
    /// The identity for an exit in `country`, explicit values first. `None` when nothing
    /// was asked (the browser keeps the host's settings).
    pub fn resolve(
        country: Option<&str>,
        timezone: Option<&str>,
        locale: Option<&str>,
    ) -> Result<Option<Self>, IdentityError> {
        if country.is_none() && timezone.is_none() && locale.is_none() {
            return Ok(None);
        }
        let country = country.map(|c| c.trim().to_ascii_uppercase());
        if let Some(code) = &country
            && keshvar::Alpha2::try_from(code.as_str()).is_err()
        {
            return Err(IdentityError::Country(code.clone()));
        }
        let timezone = match (timezone, &country) {
            (Some(zone), _) => Some(checked_zone(zone.trim())?),
            (None, Some(code)) => Some(country_zone(code)?),
            (None, None) => None,
        };
        let locale = match (locale, &country) {
            (Some(tag), _) => Some(checked_locale(tag.trim())?),
            (None, Some(code)) => Some(country_locale(code)?),
            (None, None) => None,
        };
        Ok(Some(Self { timezone, locale }))
    }

    /// The browser's language list for the locale: `de-DE,de` (a bare language alone), from
    /// which Chromium makes `navigator.languages` and `Accept-Language: de-DE,de;q=0.9`.
    pub fn languages(&self) -> Option<String> {
        let locale = self.locale.as_deref()?;
        let language = locale.split('-').next().unwrap_or(locale);
        Some(if language == locale { locale.to_string() } else { format!("{locale},{language}") })
    }
}

/// The zone database: every zone and link name, and each country's zones (where it is the
/// first country of a `zone1970.tab` row, else where it appears at all).
struct Tzdb {
    names: BTreeSet<String>,
    first: HashMap<String, Vec<String>>,
    any: HashMap<String, Vec<String>>,
}

fn tzdb() -> Result<&'static Tzdb, IdentityError> {
    static DB: OnceLock<Result<Tzdb, String>> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = std::env::var_os("TZDIR").map(PathBuf::from).unwrap_or_else(|| "/usr/share/zoneinfo".into());
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        let (table, zi) = (read("zone1970.tab")?, read("tzdata.zi")?);
        let mut db = Tzdb { names: BTreeSet::new(), first: HashMap::new(), any: HashMap::new() };
        for line in zi.lines() {
            // `Z name …` declares a zone, `L target name` a link (an alias such as US/Pacific).
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["Z", name, ..] | ["L", _, name] => {
                    db.names.insert(name.to_string());
                }
                _ => {}
            }
        }
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            let columns: Vec<&str> = line.split('\t').collect();
            let (Some(countries), Some(zone)) = (columns.first(), columns.get(2)) else { continue };
            for (i, code) in countries.split(',').enumerate() {
                if i == 0 {
                    db.first.entry(code.to_string()).or_default().push(zone.to_string());
                }
                db.any.entry(code.to_string()).or_default().push(zone.to_string());
            }
        }
        Ok(db)
    })
    .as_ref()
    .map_err(|e| IdentityError::NoTzdata(e.clone()))
}

fn checked_zone(zone: &str) -> Result<String, IdentityError> {
    if tzdb()?.names.contains(zone) { Ok(zone.to_string()) } else { Err(IdentityError::Timezone(zone.to_string())) }
}

fn country_zone(code: &str) -> Result<String, IdentityError> {
    let db = tzdb()?;
    let zones = db.first.get(code).or_else(|| db.any.get(code)).cloned().unwrap_or_default();
    match &zones[..] {
        [zone] => Ok(zone.clone()),
        [] => Err(IdentityError::TimezoneNeeded { country: code.into(), choices: "any IANA zone".into() }),
        many => Err(IdentityError::TimezoneNeeded { country: code.into(), choices: many.join(", ") }),
    }
}

/// `language-REGION` from the country's official languages: the only one, or English where it
/// is one of several.
fn country_locale(code: &str) -> Result<String, IdentityError> {
    let country = keshvar::Alpha2::try_from(code).map_err(|_| IdentityError::Country(code.into()))?.to_country();
    let languages = country.maybe_official_language_list().unwrap_or_default();
    let language = match languages {
        [one] => *one,
        many if many.contains(&"en") => "en",
        many => {
            let choices = many.iter().map(|l| format!("{l}-{code}")).collect::<Vec<_>>().join(", ");
            return Err(IdentityError::LocaleNeeded { country: code.into(), choices });
        }
    };
    Ok(format!("{language}-{code}"))
}

/// A language tag: a 2-3 letter language, then optionally a 4-letter script and a 2-letter or
/// 3-digit region (`de`, `de-DE`, `zh-Hant-TW`, `es-419`); normalised to the usual case.
fn checked_locale(tag: &str) -> Result<String, IdentityError> {
    let bad = || IdentityError::Locale(tag.to_string());
    let mut parts = tag.split(['-', '_']);
    let language = parts
        .next()
        .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()))
        .ok_or_else(bad)?;
    let mut out = vec![language.to_ascii_lowercase()];
    let mut region_seen = false;
    for part in parts {
        let script = part.len() == 4 && part.chars().all(|c| c.is_ascii_alphabetic()) && out.len() == 1;
        let region = !region_seen
            && ((part.len() == 2 && part.chars().all(|c| c.is_ascii_alphabetic()))
                || (part.len() == 3 && part.chars().all(|c| c.is_ascii_digit())));
        if script {
            out.push(format!("{}{}", part[..1].to_ascii_uppercase(), part[1..].to_ascii_lowercase()));
        } else if region {
            region_seen = true;
            out.push(part.to_ascii_uppercase());
        } else {
            return Err(bad());
        }
    }
    Ok(out.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (country, timezone, locale) → (timezone, locale) or the start of the error.
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Result<(&'static str, &'static str), &'static str>,
    );
    const CASES: &[Case] = &[
        (Some("DE"), None, None, Ok(("Europe/Berlin", "de-DE"))),
        (Some("fr"), None, None, Ok(("Europe/Paris", "fr-FR"))),
        (Some("NL"), None, None, Ok(("Europe/Brussels", "nl-NL"))),
        (Some("IN"), None, None, Ok(("Asia/Kolkata", "en-IN"))),
        (Some("US"), Some("America/Chicago"), None, Ok(("America/Chicago", "en-US"))),
        (Some("CH"), None, Some("fr_ch"), Ok(("Europe/Zurich", "fr-CH"))),
        (None, Some("Asia/Tokyo"), Some("ja-JP"), Ok(("Asia/Tokyo", "ja-JP"))),
        (None, Some("US/Pacific"), Some("zh-hant-tw"), Ok(("US/Pacific", "zh-Hant-TW"))),
        (Some("US"), None, None, Err("US spans several time zones: give proxy.timezone (one of America/New_York")),
        (Some("CH"), None, None, Err("CH has several official languages")),
        (Some("ZZ"), None, None, Err("ZZ is not an ISO 3166")),
        (None, Some("Mars/Base"), None, Err("Mars/Base is not a time zone")),
        (None, Some("../../etc/passwd"), None, Err("../../etc/passwd is not a time zone")),
        (None, None, Some("german"), Err("german is not a language tag")),
    ];

    #[test]
    fn identities_follow_the_country_unless_explicit_and_never_guess() {
        for (country, timezone, locale, expected) in CASES {
            let got = Identity::resolve(*country, *timezone, *locale);
            match (got, expected) {
                (Ok(Some(identity)), Ok((zone, tag))) => {
                    assert_eq!(
                        (identity.timezone.as_deref(), identity.locale.as_deref()),
                        (Some(*zone), Some(*tag)),
                        "{country:?}"
                    )
                }
                (Err(e), Err(start)) => assert!(e.to_string().starts_with(start), "{country:?} {timezone:?}: {e}"),
                (got, _) => panic!("{country:?} {timezone:?} {locale:?}: {got:?}"),
            }
        }
        assert_eq!(Identity::resolve(None, None, None).unwrap(), None);
        let german = Identity { timezone: None, locale: Some("de-DE".into()) };
        assert_eq!(german.languages().as_deref(), Some("de-DE,de"));
        assert_eq!(Identity { timezone: None, locale: Some("de".into()) }.languages().as_deref(), Some("de"));
    }
}
