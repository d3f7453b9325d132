//! What a question asks, in English, German and French: one `Intent` per label, read from an
//! ordered table of cues (the first rule that matches wins, so specific rules come before
//! general ones). Fields and `qa_answers` keys go through the same classifier, so a question
//! and its paraphrase meet on the intent. The table is tested against `intent/cases.tsv`
//! (real phrasings, with precision and recall per intent).

use serde::Deserialize;

use super::matching::fold;

/// What a question asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    FirstName,
    LastName,
    FullName,
    PreferredName,
    Salutation,
    Pronouns,
    DateOfBirth,
    AgeCheck,
    Headline,
    Email,
    Phone,
    PhoneCountryCode,
    Linkedin,
    Github,
    Website,
    Location,
    StreetAddress,
    HouseNumber,
    PostalCode,
    City,
    Region,
    Country,
    LocationCheck,
    Nationality,
    CitizenshipCheck,
    WorkAuthorization,
    Sponsorship,
    Permit,
    Clearance,
    BackgroundCheck,
    Agreements,
    CurrentCompany,
    CurrentTitle,
    YearsExperience,
    SkillExperience,
    EducationDegree,
    EducationSchool,
    EducationField,
    Skills,
    Languages,
    Salary,
    SalaryCurrency,
    SalaryPeriod,
    NoticePeriod,
    StartDate,
    Workload,
    Relocation,
    OfficeAttendance,
    Travel,
    HowHeard,
    Referral,
    PreviousEmployment,
    Motivation,
    CoverLetter,
    Resume,
    AdditionalInfo,
    PrivacyConsent,
    MarketingOptIn,
    Gender,
    RaceEthnicity,
    Hispanic,
    Veteran,
    Disability,
    SexualOrientation,
}

impl Intent {
    /// Work authorisation, permits, citizenship and clearance: answered only within the
    /// question's jurisdiction.
    pub fn is_legal(self) -> bool {
        use Intent::*;
        matches!(self, WorkAuthorization | Sponsorship | Permit | CitizenshipCheck | Clearance)
    }

    /// Equal-opportunity questions: answered only from the applicant's own answers.
    pub fn is_eeo(self) -> bool {
        use Intent::*;
        matches!(self, Gender | RaceEthnicity | Hispanic | Veteran | Disability | SexualOrientation)
    }
}

/// `None` marks questions about someone else or outside the applicant's facts; they stop the
/// search so that a later, more general rule cannot claim them.
type Rule = (Option<Intent>, &'static [&'static str]);

/// Cue syntax, on folded text (lowercase ASCII): `word` matches at a word start ("authori"
/// matches "authorised"); `a+b` needs every part; `=text` is the whole label; `word$` is a whole word.
#[rustfmt::skip]
const RULES: &[Rule] = {
    use Intent::*;
    &[
        // Someone else's details, and questions that only look like facts.
        (None, &["person who", "referrer", "emergency", "reference name", "reference phone", "reference email", "references$"]),
        (None, &["=who referred you", "name of the employee", "place of birth", "city of birth", "country of birth", "lieu de naissance", "geburtsort"]),
        (None, &["autofill", "auto fill", "parse your", "apply with", "import from", "=position"]),
        (None, &["address line 2", "adresszusatz", "complement d adresse", "driving licen", "driver s licen", "permis de conduire", "fuhrerschein", "fuhrerausweis"]),
        (None, &["current salary", "current base salary", "current total compensation", "aktuelles gehalt", "salaire actuel", "previous application", "applied before", "bereits beworben", "deja postule"]),
        (None, &["graduation date", "date of graduation", "end date", "last day", "position you are applying", "which position", "language of correspondence", "korrespondenzsprache"]),
        (None, &["other phone", "second phone", "additional phone", "alternative phone", "weiteres telefon", "autre telephone", "work phone", "telefon geschaftlich"]),
        (None, &["empfehlenden person", "du parrain", "de la marraine", "most recent position", "last position", "previous position", "dernier poste", "how long have you been", "langue de correspondance", "leaving"]),
        // Consent before everything: its sentences mention data, email and employers.
        (Some(MarketingOptIn), &["newsletter", "job alert", "talent pool", "talentpool", "talent community", "vivier", "future opportunit", "future job", "future opening", "future vacanc", "futures opportunit", "zukunftig", "andere vakanz", "other vacanc", "even after", "considered for other", "keep my application on file", "subscribe", "abonnieren"]),
        (Some(PrivacyConsent), &["privacy", "datenschutz", "confidentialite", "donnees personnelles", "personal data", "data protection", "personenbezogen", "personendaten", "processing of my", "traitement de mes", "gdpr", "dsgvo", "rgpd"]),
        // Equal opportunity.
        (Some(Hispanic), &["hispanic", "latino", "latina", "latinx"]),
        (Some(Veteran), &["veteran", "armed forces", "military"]),
        (Some(Disability), &["disabilit", "schwerbehinderung", "disabled", "handicap", "behinderung", "rqth"]),
        (Some(SexualOrientation), &["sexual orientation", "sexuelle orientierung", "orientation sexuelle", "lgbt"]),
        (Some(RaceEthnicity), &["race$", "ethni", "ethnie", "ethnische"]),
        // Legal, most specific first.
        (Some(AgeCheck), &["18 years", "age of 18", "18 or older", "18 ans", "18 jahre", "legal working age", "old enough", "volljahrig", "majeur"]),
        (Some(WorkAuthorization), &["eligible to work+without", "authori+work+without", "able to work in+without", "travailler+sans visa"]),
        (Some(Sponsorship), &["sponsor", "parrainage", "visa sponsor", "require a visa", "need a visa", "benotig+visum", "benotig+arbeitsbewilligung", "benotig+arbeitserlaubnis", "besoin+permis", "besoin+visa"]),
        (Some(Permit), &["work permit", "permit$", "permits$", "residence permit", "permit type", "type of permit", "which permit", "type of visa", "visa do you", "arbeitsbewilligung", "aufenthaltsbewilligung", "arbeitsgenehmigung", "aufenthaltstitel", "aufenthaltserlaubnis", "titre de sejour", "permis de travail", "permis de sejour"]),
        (Some(WorkAuthorization), &["authori+work", "eligible to work", "eligible+work in", "right to work", "legally+work", "permitted to work", "allowed to work", "arbeitsberechtigung", "berechtigt+arbeiten", "durfen sie+arbeiten", "darfst du+arbeiten", "kannst du+arbeiten", "autorise+travailler", "droit de travailler", "autorisation de travail", "work authori"]),
        (Some(CitizenshipCheck), &["are you a+citizen", "are you an+national", "are you a+national", "citizen of", "hold+citizenship", "citizenship of", "eu burger", "schweizer burger", "staatsburgerschaft+besitzen", "besitzen+staatsburgerschaft", "hast du eine+staatsangehorigkeit", "ressortissant", "avez vous la nationalite", "citoyen"]),
        (Some(Nationality), &["nationalit", "citizenship", "staatsangehorigkeit", "staatsburgerschaft", "citoyennete"]),
        (Some(Clearance), &["clearance", "habilitation", "sicherheitsuberprufung", "sicherheitsfreigabe"]),
        (Some(BackgroundCheck), &["background", "criminal", "convicted", "felony", "strafregister", "fuhrungszeugnis", "betreibungsregister", "casier judiciaire", "antecedents"]),
        (Some(Agreements), &["non compete", "noncompete", "non solicitation", "restrictive", "wettbewerbsverbot", "konkurrenzverbot", "non concurrence", "non sollicitation"]),
        (Some(Pronouns), &["pronoun", "pronom"]),
        // The job and the applicant's history.
        (Some(PreviousEmployment), &["previously worked", "previously been employed", "previously employed", "worked for us", "worked for this company", "ever been employed", "ever worked for", "former employee", "current or former employee", "bereits bei uns", "schon einmal fur uns", "deja travaille", "deja ete salarie", "employed by us"]),
        (Some(Referral), &["referred", "referral", "empfohlen", "recommande", "coopte", "refer you"]),
        (Some(HowHeard), &["hear about", "heard about", "hear of", "how did you find", "where did you find", "find out about", "learn about", "learn of", "aufmerksam geworden", "erfahren", "avez vous connu", "entendu parler", "trouve cette", "=source", "where did you see"]),
        (Some(NoticePeriod), &["notice", "kundigungsfrist", "preavis"]),
        (Some(StartDate), &["start date", "starting date", "earliest start", "earliest possible start", "can you start", "available to start", "available to begin", "availability to start", "date available", "verfugbar ab", "eintritt", "ab wann", "fruhestens", "disponible", "disponibilite", "date de debut", "pourriez vous commencer", "when would you be available"]),
        (Some(Relocation), &["relocat", "relocalis", "umzuziehen", "umzieh", "umzug", "zu ziehen", "demenag", "vous installer"]),
        (Some(City), &["which city", "welcher stadt", "quelle ville"]),
        (Some(Region), &["which state", "which province", "which canton", "welchem kanton", "welchem bundesland"]),
        (Some(Country), &["which country", "welchem land", "quel pays"]),
        (Some(Location), &["location", "where are you located", "city and country", "where do you live", "where are you based"]),
        (Some(LocationCheck), &["commuting distance", "commutable", "within+miles", "within+km", "a moins de+km", "time zone", "do you live in", "do you currently live in", "do you currently reside", "are you located in", "are you based in", "are you currently based", "are you currently living", "are you currently residing", "live in the", "wohnen sie in", "lebst du im", "lebst du in", "wohnsitz in", "residez vous", "habitez vous a$", "etes vous base", "vivez vous"]),
        (Some(Travel), &["travel", "business trip", "reisebereitschaft", "reisen", "deplacement"]),
        (Some(OfficeAttendance), &["office", "in person", "headquarters", "on site", "onsite", "hybrid", "remote", "commute", "buro", "vor ort", "bureau", "presentiel", "teletravail", "sur site"]),
        (Some(Workload), &["workload", "pensum", "arbeitspensum", "beschaftigungsgrad", "taux d activite", "taux d occupation", "work percentage", "employment percentage", "full time or part time", "hours per week", "full time+hours"]),
        (Some(SkillExperience), &["year+experience+with$", "years have you worked with", "jahre+erfahrung+mit$", "annees+experience+en$", "annees+utilisez vous", "hands on experience"]),
        (Some(YearsExperience), &["years of+experience", "years+experience", "berufserfahrung", "jahre+erfahrung", "annees d experience", "annees+experience"]),
        (Some(Skills), &["programming language"]),
        (Some(EducationField), &["field of study", "discipline", "major", "area of study", "what did you study", "studienrichtung", "fachrichtung", "studiengang", "domaine d etudes", "specialite", "filiere"]),
        (Some(EducationDegree), &["degree", "level of education", "education level", "abschluss", "bildungsabschluss", "diplome le plus", "niveau d etudes", "plus haut niveau"]),
        (Some(EducationSchool), &["school", "university", "college", "hochschule", "universitat", "universite", "ecole", "etablissement"]),
        (Some(Languages), &["muttersprache", "language", "sprachkenntnis", "sprache", "langue", "english skill", "german skill", "french skill", "fluent", "proficien", "level of english", "level of german", "level of french", "niveau d", "niveau de francais", "kenntnisse+englisch", "deutschkenntnis", "englischkenntnis", "franzosischkenntnis", "sprichst du", "sprechen sie", "maitrisez vous", "speak german", "speak english", "speak french"]),
        (Some(SalaryCurrency), &["currency", "wahrung", "devise"]),
        (Some(SalaryPeriod), &["period$", "pay period", "salary period", "periodicite", "frequency", "gehalt pro", "monthly or hourly", "per+year+month", "zeitraum", "periode"]),
        (Some(Salary), &["salary", "bruttojahresgehalt", "jahresgehalt", "desired pay", "=pay", "compensation", "remuneration", "gehalt", "lohn", "salaire", "pretention", "hourly rate", "pay expectation", "attentes salariales", "verguetung"]),
        (Some(CoverLetter), &["cover letter", "anschreiben", "motivationsschreiben", "bewerbungsschreiben", "lettre de motivation", "begleitschreiben"]),
        (Some(Motivation), &["motivation$", "why do you want", "why are you", "why would you", "what excites", "interests you", "warum", "motiviert", "pourquoi", "vos motivations", "tell us why"]),
        (Some(Resume), &["resume", "cv$", "curriculum", "lebenslauf"]),
        (Some(AdditionalInfo), &["anything else", "additional information", "additional comment", "comment", "kommentar", "bemerkung", "mitteilen", "informations complementaires", "ajouter quelque chose"]),
        // Identity and contact.
        (Some(PreferredName), &["preferred name", "preferred first name", "prefer to go by", "nickname", "rufname", "bevorzugter", "prenom d usage", "prenom usuel"]),
        (Some(Salutation), &["salutation", "anrede", "civilite", "honorific", "=prefix", "title+mr"]),
        (Some(DateOfBirth), &["birth", "geburtsdatum", "naissance", "=dob"]),
        (Some(Gender), &["gender", "geschlecht", "=sex", "sexe", "genre", "what is your sex"]),
        (Some(Headline), &["headline", "uberschrift", "profiluberschrift", "titre du profil", "titre de votre profil"]),
        (Some(Linkedin), &["linkedin"]),
        (Some(Github), &["github"]),
        (Some(Website), &["website", "portfolio", "webseite", "site web", "site internet", "homepage", "personal site"]),
        (Some(Email), &["email", "e mail", "courriel", "adresse electronique"]),
        (Some(Phone), &["phone number", "including country code"]),
        (Some(PhoneCountryCode), &["landervorwahl", "landesvorwahl", "country code", "dial code", "calling code", "phone code", "vorwahl", "indicatif"]),
        (Some(Phone), &["phone", "telefon", "telephone", "mobile", "handy", "natel", "portable", "contact number", "mobilnummer", "handynummer", "numero de mobile"]),
        (Some(FullName), &["full name", "full legal name", "legal name", "your name", "vollstandiger name", "vor und nachname", "vorname und nachname", "nom complet", "prenom et nom", "nom et prenom", "candidate name", "=name"]),
        (Some(FirstName), &["first name", "given name", "forename", "vorname", "prenom"]),
        (Some(LastName), &["last name", "surname", "family name", "nachname", "familienname", "nom de famille", "=nom"]),
        // Address and place.
        (Some(StreetAddress), &["street and", "strasse und"]),
        (Some(PostalCode), &["zip", "postal code", "postcode", "plz", "postleitzahl", "code postal", "npa$"]),
        (Some(HouseNumber), &["house number", "street number", "building number", "hausnummer", "hausnr", "numero de rue", "ndeg de rue", "no de rue", "street no", "=nr", "=no"]),
        (Some(StreetAddress), &["street", "strasse", "address line 1", "adresse", "address", "rue$", "anschrift"]),
        (Some(Region), &["state$", "province", "region", "county", "bundesland", "kanton", "canton", "departement"]),
        (Some(Country), &["country", "=land", "wohnsitzland", "welchem land", "pays"]),
        (Some(City), &["city", "town", "=ort", "stadt", "ville", "localite"]),
        (Some(Location), &["location", "where do you live", "where are you", "wohnort", "wo wohnst", "wo wohnen", "lieu de residence", "ou habitez", "localisation", "based$"]),
        // Experience and education.
        (Some(CurrentTitle), &["job title", "current title", "current position", "current role", "recent job title", "title at", "aktuelle position", "jobtitel", "funktion", "berufsbezeichnung", "poste actuel", "intitule du poste", "fonction actuelle"]),
        (Some(CurrentCompany), &["current company", "=company", "=organization", "=organisation", "=firma", "=unternehmen", "=entreprise", "=societe", "employer", "company name", "arbeitgeber", "unternehmen arbeitest", "employeur", "entreprise actuelle", "societe actuelle", "company do you currently"]),
        (Some(Skills), &["skills", "which of these", "familiar with", "technologies", "tech stack", "fachkenntnis", "kenntnisse", "fahigkeiten", "competences", "programming languages"]),
    ]
};

/// The intent of a question or label, if the table knows it.
pub fn classify(text: &str) -> Option<Intent> {
    let folded = fold(text);
    if folded.is_empty() {
        return None;
    }
    let padded = format!(" {folded} ");
    for (intent, cues) in RULES {
        if cues.iter().any(|cue| matches_cue(&folded, &padded, cue)) {
            return *intent;
        }
    }
    None
}

fn matches_cue(folded: &str, padded: &str, cue: &str) -> bool {
    if let Some(exact) = cue.strip_prefix('=') {
        return exact.split('+').all(|part| folded == part);
    }
    cue.split('+').all(|part| match part.strip_suffix('$') {
        Some(word) => at_word_start(padded, word, true),
        None => part.trim().is_empty() || at_word_start(padded, part, false),
    })
}

/// Whether `needle` occurs in the space-padded text right after a space (and, for a whole
/// word, right before one).
fn at_word_start(padded: &str, needle: &str, whole: bool) -> bool {
    padded.match_indices(needle).any(|(at, _)| {
        let bytes = padded.as_bytes();
        at > 0 && bytes[at - 1] == b' ' && (!whole || bytes.get(at + needle.len()) == Some(&b' '))
    })
}

#[cfg(test)]
mod tests;
