//! The LLM engine's cache of accepted mappings, in redb at `<data_dir>/llm-cache.redb`: keyed by
//! platform and a hash of the model's name and the field signatures it was shown, so a repeated
//! form costs no model call (and another model is asked afresh). Entries hold only field numbers, key names, questions and option labels (never
//! the applicant's values).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, TableDefinition};

use super::prompt::Mapping;
use super::{Field, Platform};

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

/// The cache key of the fields shown to `model`: platform, then a hash of the model's name and
/// of each field's label, kind, required flag, section and option labels, in order.
pub fn form_key(model: &str, platform: Platform, fields: &[&Field], generated_text: bool) -> String {
    let mut hasher = DefaultHasher::new();
    model.hash(&mut hasher);
    for field in fields {
        field.label.hash(&mut hasher);
        format!("{:?}", field.kind).hash(&mut hasher);
        field.required.hash(&mut hasher);
        field.section.hash(&mut hasher);
        for option in &field.options {
            option.label.hash(&mut hasher);
        }
    }
    generated_text.hash(&mut hasher);
    format!("{}:{:016x}", platform.as_str(), hasher.finish())
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
    use super::*;
    use crate::forms::FieldKind;
    use crate::forms::prompt::tests::field;

    #[test]
    fn the_key_changes_with_the_model_the_fields_and_free_text() {
        let (name, city) = (field("First name", FieldKind::Text, &[]), field("City", FieldKind::Text, &[]));
        let key = |model, fields: &[&Field], free| form_key(model, Platform::Generic, fields, free);
        let base = key("gpt-4o-mini", &[&name, &city], false);
        assert!(base.starts_with("generic:"), "{base}");
        assert_eq!(base, key("gpt-4o-mini", &[&name, &city], false), "the same form, the same key");
        assert_ne!(base, key("gpt-4o", &[&name, &city], false), "another model is asked afresh");
        assert_ne!(base, key("gpt-4o-mini", &[&city, &name], false));
        assert_ne!(base, key("gpt-4o-mini", &[&name, &city], true));
    }
}
