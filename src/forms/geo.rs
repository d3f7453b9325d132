//! Countries and their first-level subdivisions from ISO 3166 (the `keshvar` crate), indexed
//! once by every name a form may use: the ISO name, English, German and French names, the
//! crate's common short forms, the nationality adjective and the usual abbreviations.
//! Used to read a question's jurisdiction, to map a country onto a page's own option text in
//! any of those languages, and to answer "do you live in X?" from the applicant's address.

use std::sync::LazyLock;

use super::matching::fold as normalize;

/// One country with every (normalised) name it goes by.
pub struct Country {
    /// ISO 3166-1 alpha-2.
    pub code: &'static str,
    /// Normalised names: ISO, en/de/fr, unofficial short forms, alpha-3.
    pub names: Vec<String>,
    /// Normalised nationality adjective ("swiss"), when ISO data has one.
    pub adjective: Option<String>,
    pub eu: bool,
    /// International calling code ("41").
    pub calling_code: String,
    /// Normalised names of the first-level subdivisions (states, cantons, Länder).
    pub regions: Vec<(String, Vec<String>)>,
}

/// Where a legal question applies: one country, or the European Union (EU/EEA/EFTA free movement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jurisdiction {
    Country(&'static str),
    Eu,
}

const LANGS: &[&str] = &["en", "de", "fr"];

/// Abbreviations read only in upper case from the original text ("US", not "us").
const ABBREVIATIONS: &[(&str, &str)] = &[("US", "US"), ("USA", "US"), ("UK", "GB"), ("UAE", "AE"), ("GB", "GB")];

static COUNTRIES: LazyLock<Vec<Country>> = LazyLock::new(|| {
    keshvar::CountryIterator::new()
        .map(|c| {
            let mut names: Vec<String> = vec![normalize(c.iso_short_name()), normalize(c.iso_long_name())];
            names.extend(LANGS.iter().filter_map(|l| c.translations().get(l)).map(|n| normalize(n)));
            names.extend(c.unofficial_name_list().iter().map(|n| normalize(n)));
            names.push(c.alpha3().to_string().to_lowercase());
            names.retain(|n| n.len() >= 2);
            names.sort();
            names.dedup();
            let regions = c
                .subdivisions()
                .values()
                .map(|s| {
                    let mut n: Vec<String> = vec![normalize(strip_lang_tag(s.name()))];
                    n.extend(LANGS.iter().filter_map(|l| s.translations().get(l)).map(|t| normalize(t)));
                    n.extend(s.unofficial_name_list().iter().map(|t| normalize(strip_lang_tag(t))));
                    n.push(normalize(s.code().rsplit('-').next().unwrap_or("")));
                    n.retain(|t| !t.is_empty());
                    n.dedup();
                    let code = s.code();
                    let iso = if code.contains('-') { code.to_string() } else { format!("{}-{code}", c.alpha2()) };
                    (iso, n)
                })
                .collect();
            Country {
                code: alpha2_str(c.alpha2()),
                names,
                adjective: c.maybe_nationality().map(normalize),
                eu: c.eu_member(),
                calling_code: c.country_code().to_string(),
                regions,
            }
        })
        .collect()
});

fn alpha2_str(a: keshvar::Alpha2) -> &'static str {
    // Leaked once per country at index build time; the index lives for the process.
    Box::leak(a.to_string().into_boxed_str())
}

/// "Genève (fr)" → "Genève".
fn strip_lang_tag(name: &str) -> &str {
    match name.rfind(" (") {
        Some(i) if name.ends_with(')') && name.len() - i <= 6 => &name[..i],
        _ => name,
    }
}

/// The country a name, code or adjective stands for ("Schweiz", "CH", "Swiss", "USA").
pub fn country(text: &str) -> Option<&'static Country> {
    let n = normalize(text);
    if n.is_empty() {
        return None;
    }
    let upper = text.trim().replace('.', "").to_ascii_uppercase();
    let code = ABBREVIATIONS.iter().find(|(a, _)| *a == upper).map_or(upper.as_str(), |(_, c)| c);
    if let Some(c) = COUNTRIES.iter().find(|c| c.code == code) {
        return Some(c);
    }
    COUNTRIES.iter().find(|c| c.names.contains(&n) || c.adjective.as_deref() == Some(&n))
}

/// The countries dialled with an international calling code ("1": the United States, Canada, …).
pub fn by_calling_code(code: &str) -> impl Iterator<Item = &'static Country> {
    COUNTRIES.iter().filter(move |c| c.calling_code == code)
}

/// A country by ISO alpha-2 code.
pub fn by_code(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

/// The jurisdiction a key of `work_authorization` names ("Switzerland", "CH", "European Union").
pub fn jurisdiction_of_key(key: &str) -> Option<Jurisdiction> {
    if is_eu_name(&normalize(key)) {
        return Some(Jurisdiction::Eu);
    }
    country(key).map(|c| Jurisdiction::Country(c.code))
}

fn is_eu_name(n: &str) -> bool {
    matches!(n, "eu" | "eea" | "efta" | "eu efta" | "european union" | "europaische union" | "union europeenne")
}

/// Every jurisdiction a question names, in the order it names them: the EU, countries (names,
/// adjectives, abbreviations) and regions (states, cantons, Länder, which also covers their
/// capitals: "Zürich", "Berlin", "Wien"). A name inside a longer one ("Mexico" in "New Mexico")
/// counts as the longer one.
pub fn named_in(text: &str) -> Vec<Jurisdiction> {
    let n = format!(" {} ", normalize(text));
    // (start, end, jurisdiction) of every mention.
    let mut found: Vec<(usize, usize, Jurisdiction, bool)> = Vec::new();
    let mut mention_as = |name: &str, j: Jurisdiction, region: bool| {
        let needle = format!(" {name} ");
        let mut from = 0;
        while let Some(i) = n[from..].find(&needle) {
            found.push((from + i, from + i + needle.len(), j, region));
            from += i + 1;
        }
    };
    let mut mention = |name: &str, j: Jurisdiction| mention_as(name, j, false);
    for cue in ["eu", "eea", "efta", "ue", "eee", "aele", "european union", "europaischen union", "union europeenne"] {
        mention(cue, Jurisdiction::Eu);
    }
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric() && c != '.').map(|w| w.replace('.', "")).collect();
    for (abbr, code) in ABBREVIATIONS {
        if words.iter().any(|w| w == abbr) {
            let spaced: Vec<String> = abbr.chars().map(|c| c.to_ascii_lowercase().to_string()).collect();
            mention(&abbr.to_lowercase(), Jurisdiction::Country(code));
            mention(&spaced.join(" "), Jurisdiction::Country(code));
        }
    }
    for c in COUNTRIES.iter() {
        for name in c.names.iter().filter(|name| name.len() >= 4).chain(c.adjective.iter()) {
            mention(name, Jurisdiction::Country(c.code));
        }
    }
    for c in COUNTRIES.iter() {
        for (_, names) in &c.regions {
            for name in names.iter().filter(|r| r.len() >= 5) {
                mention_as(name, Jurisdiction::Country(c.code), true);
            }
        }
    }
    let spans = found.clone();
    // A mention inside a longer one, or a region spelled like a country, does not count.
    found.retain(|(s, e, _, region)| {
        !spans.iter().any(|(s2, e2, _, region2)| s2 <= s && e <= e2 && ((e2 - s2) > (e - s) || (*region && !region2)))
    });
    found.sort_by_key(|(s, _, _, _)| *s);
    let mut out: Vec<Jurisdiction> = Vec::new();
    for (_, _, j, _) in found {
        if !out.contains(&j) {
            out.push(j);
        }
    }
    out
}

/// Whether `inner` lies within `outer` (a country within the EU, or the same jurisdiction).
pub fn within(inner: Jurisdiction, outer: Jurisdiction) -> bool {
    match (inner, outer) {
        (a, b) if a == b => true,
        (Jurisdiction::Country(code), Jurisdiction::Eu) => by_code(code).is_some_and(|c| c.eu),
        _ => false,
    }
}

/// Whether a place named in a question ("Zurich", "Texas", "Germany") contains the applicant's
/// country / region / city. `None` when the text names no place this index knows.
pub fn place_contains(text: &str, country_code: &str, region_names: &[String], city: &str) -> Option<bool> {
    let named = named_in(text);
    if !named.is_empty() {
        let home = Jurisdiction::Country(by_code(country_code)?.code);
        return Some(named.iter().any(|j| within(home, *j)));
    }
    let n = format!(" {} ", normalize(text));
    let city = normalize(city);
    if !city.is_empty() && n.contains(&format!(" {city} ")) {
        return Some(true);
    }
    if region_names.iter().any(|r| !r.is_empty() && n.contains(&format!(" {} ", normalize(r)))) {
        return Some(true);
    }
    // Another region of the applicant's country, or a region of another country.
    let mentions_region = COUNTRIES
        .iter()
        .flat_map(|c| c.regions.iter())
        .any(|(_, names)| names.iter().any(|r| r.len() >= 4 && n.contains(&format!(" {r} "))));
    mentions_region.then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_found_by_any_name_in_three_languages() {
        for (text, code) in [
            ("Schweiz", "CH"),
            ("Suisse", "CH"),
            ("Switzerland", "CH"),
            ("Vereinigte Staaten", "US"),
            ("USA", "US"),
            ("United States", "US"),
            ("Frankreich", "FR"),
            ("Swiss", "CH"),
            ("Allemagne", "DE"),
            ("CH", "CH"),
        ] {
            assert_eq!(country(text).map(|c| c.code), Some(code), "{text}");
        }
        assert!(country("Atlantis").is_none());
    }

    #[test]
    fn questions_name_their_jurisdiction() {
        use Jurisdiction::*;
        for (text, want) in [
            ("Are you legally authorized to work in the United States?", vec![Country("US")]),
            ("Do you have a valid Swiss work permit?", vec![Country("CH")]),
            ("Are you authorized to work in the UK?", vec![Country("GB")]),
            ("Dürfen Sie in der Schweiz arbeiten?", vec![Country("CH")]),
            ("Do you have the right to work in the EU?", vec![Eu]),
            ("Will you require sponsorship?", vec![]),
            ("Would you like to join us?", vec![]),
        ] {
            assert_eq!(named_in(text), want, "{text}");
        }
        assert!(within(Country("DE"), Eu));
        assert!(!within(Country("CH"), Eu));
    }

    #[test]
    fn regions_and_places() {
        let tx = vec!["Texas".to_string()];
        assert_eq!(place_contains("Do you live in Germany?", "US", &tx, "Austin"), Some(false));
        assert_eq!(place_contains("Are you based in Texas?", "US", &tx, "Austin"), Some(true));
        assert_eq!(place_contains("Are you based in Austin?", "US", &tx, "Austin"), Some(true));
    }
}
