//! The LLM engine's cache of accepted mappings, in redb at `<data_dir>/llm-cache.redb`: keyed by
//! platform and a SHA-256 digest of everything the mapping call offered the model (its name, the
//! fields as shown, the applicant's key names and questions, whether free text is allowed), so a
//! repeated form costs no model call, and another model or another set of facts is asked afresh.
//! The digest is over a fixed serialisation, so keys survive compiler and dependency upgrades.
//! Entries hold only field numbers, key names, questions and option labels (never the
//! applicant's values).

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, TableDefinition};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::prompt::{self, FieldBrief, Mapping};
use super::{Applicant, Field, Platform};

const MAPPINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("llm_mappings");

/// Failures of the cache store (the engine logs them and calls the model instead).
#[derive(Debug, thiserror::Error)]
#[error("llm cache: {0}")]
pub struct CacheError(String);

fn store_error(e: impl std::fmt::Display) -> CacheError {
    CacheError(e.to_string())
}

/// Accepted mappings by form signature.
pub struct MappingCache {
    db: Arc<Database>,
}

impl MappingCache {
    /// Opens (or creates) the cache file.
    pub fn open(path: &Path) -> Result<Self, CacheError> {
        let db = Database::create(path).map_err(store_error)?;
        let txn = db.begin_write().map_err(store_error)?;
        txn.open_table(MAPPINGS).map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// The cached mappings for a form, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<Mapping>>, CacheError> {
        let db = self.db.clone();
        let key = key.to_string();
        blocking(move || {
            let txn = db.begin_read().map_err(store_error)?;
            let table = txn.open_table(MAPPINGS).map_err(store_error)?;
            let Some(bytes) = table.get(key.as_str()).map_err(store_error)? else {
                return Ok(None);
            };
            serde_json::from_slice(bytes.value()).map(Some).map_err(store_error)
        })
        .await
    }

    /// Stores (or replaces) the accepted mappings of a form.
    pub async fn put(&self, key: &str, mappings: &[Mapping]) -> Result<(), CacheError> {
        let db = self.db.clone();
        let key = key.to_string();
        let bytes = serde_json::to_vec(mappings).map_err(store_error)?;
        blocking(move || {
            let txn = db.begin_write().map_err(store_error)?;
            {
                let mut table = txn.open_table(MAPPINGS).map_err(store_error)?;
                table.insert(key.as_str(), bytes.as_slice()).map_err(store_error)?;
            }
            txn.commit().map_err(store_error)
        })
        .await
    }
}

/// What a cache key is a digest of, serialised as JSON in declaration order (no maps, so no
/// ordering that a serde_json feature could change).
#[derive(Serialize)]
struct KeyMaterial<'a> {
    /// Bumped whenever the material changes shape: older entries are then never hit again.
    version: u32,
    platform: &'static str,
    model: &'a str,
    /// The fields as the model is shown them (`prompt::briefs`).
    fields: Vec<FieldBrief<'a>>,
    /// The `user_data` key names and `qa_answers` questions offered, sorted: the same facts in
    /// another order are the same offer.
    keys: Vec<&'a str>,
    questions: Vec<&'a str>,
    free_text: bool,
}

/// `names` in order, without repeats.
fn sorted(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names.dedup();
    names
}

/// The serialisation the key digests.
fn key_material(model: &str, platform: Platform, fields: &[&Field], applicant: &Applicant) -> Vec<u8> {
    let material = KeyMaterial {
        version: 2,
        platform: platform.as_str(),
        model,
        fields: prompt::briefs(fields),
        keys: sorted(prompt::key_names(applicant)),
        questions: sorted(prompt::questions(applicant)),
        free_text: applicant.allow_generated_text,
    };
    serde_json::to_vec(&material).expect("key material serialises")
}

/// The cache key of a mapping call: `<platform>:<SHA-256 hex>` of what `model` was offered for
/// `fields` (see `KeyMaterial`). The page and step titles are left out: they name the job, not
/// the fields, and the same form under another posting should hit.
pub fn form_key(model: &str, platform: Platform, fields: &[&Field], applicant: &Applicant) -> String {
    let digest = Sha256::digest(key_material(model, platform, fields, applicant));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{hex}", platform.as_str())
}

async fn blocking<T, F>(work: F) -> Result<T, CacheError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CacheError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(store_error)?
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::forms::FieldKind;
    use crate::forms::prompt::tests::field;

    fn applicant(keys: &[&str], questions: &[&str], free_text: bool) -> Applicant {
        let facts = |names: &[&str]| names.iter().map(|n| (n.to_string(), json!("a value"))).collect();
        Applicant {
            user_data: facts(keys),
            qa_answers: facts(questions),
            allow_generated_text: free_text,
            ..Applicant::default()
        }
    }

    #[test]
    fn the_key_is_a_fixed_digest_of_a_fixed_serialisation() {
        let name = field("First name", FieldKind::Text, &[]);
        let mut visa = field("Visa?", FieldKind::RadioGroup, &["Yes", "No"]);
        visa.hints.max_length = Some(3);
        let offered = applicant(&["first_name", "email"], &["Need a visa?"], false);
        let fields = [&name, &visa];
        let material = key_material("gpt-4o-mini", Platform::Greenhouse, &fields, &offered);
        assert_eq!(
            String::from_utf8(material).unwrap(),
            r#"{"version":2,"platform":"greenhouse","model":"gpt-4o-mini","fields":[{"n":1,"label":"First name","kind":"text","required":true},{"n":2,"label":"Visa?","kind":"radio_group","required":true,"options":["Yes","No"],"max_length":3}],"keys":["email","first_name"],"questions":["Need a visa?"],"free_text":false}"#
        );
        // Stable across Rust releases and builds: a known SHA-256 of the text above.
        assert_eq!(
            form_key("gpt-4o-mini", Platform::Greenhouse, &fields, &offered),
            "greenhouse:7193bc84bca6eb20a547e63c1520622c348e0c9d1fd482d3c72f5f3e695fb1ff"
        );
    }

    #[test]
    fn the_key_changes_with_anything_the_model_was_offered() {
        let (name, city) = (field("First name", FieldKind::Text, &[]), field("City", FieldKind::Text, &[]));
        let mut city_hinted = city.clone();
        city_hinted.hints.placeholder = Some("e.g. Berlin".into());
        let base_offer = applicant(&["first_name", "city"], &["Need a visa?"], false);
        let base = form_key("gpt-4o-mini", Platform::Generic, &[&name, &city], &base_offer);
        assert!(base.starts_with("generic:"), "{base}");
        let same = [
            ("the same call", form_key("gpt-4o-mini", Platform::Generic, &[&name, &city], &base_offer)),
            (
                "the same facts in another order",
                form_key(
                    "gpt-4o-mini",
                    Platform::Generic,
                    &[&name, &city],
                    &applicant(&["city", "first_name"], &["Need a visa?"], false),
                ),
            ),
        ];
        for (case, key) in same {
            assert_eq!(key, base, "{case}");
        }
        let variants = [
            ("another model", form_key("gpt-4o", Platform::Generic, &[&name, &city], &base_offer)),
            ("another platform", form_key("gpt-4o-mini", Platform::Lever, &[&name, &city], &base_offer)),
            ("fields in another order", form_key("gpt-4o-mini", Platform::Generic, &[&city, &name], &base_offer)),
            ("a field's hint", form_key("gpt-4o-mini", Platform::Generic, &[&name, &city_hinted], &base_offer)),
            (
                "another key offered",
                form_key(
                    "gpt-4o-mini",
                    Platform::Generic,
                    &[&name, &city],
                    &applicant(&["first_name", "city", "email"], &["Need a visa?"], false),
                ),
            ),
            (
                "another question offered",
                form_key(
                    "gpt-4o-mini",
                    Platform::Generic,
                    &[&name, &city],
                    &applicant(&["first_name", "city"], &["Need a visa?", "Start date?"], false),
                ),
            ),
            (
                "free text allowed",
                form_key(
                    "gpt-4o-mini",
                    Platform::Generic,
                    &[&name, &city],
                    &applicant(&["first_name", "city"], &["Need a visa?"], true),
                ),
            ),
        ];
        let mut seen = vec![base];
        for (case, key) in variants {
            assert!(!seen.contains(&key), "{case}: {key}");
            seen.push(key);
        }
    }
}
