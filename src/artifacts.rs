//! Artifacts: screenshots, recordings and timelines a session leaves behind (`<data_dir>/artifacts/<session>/`),
//! served by `GET /api/v2/sessions/{id}/artifacts/{name}` after the session has closed too.
//! Names are generated here; a requested name must be a plain file name, so no path escapes.
//! With `BW_ARTIFACTS_URL` (`s3://bucket/prefix`, or `file:///dir`) each artifact is also put
//! in that object store (credentials from the usual `AWS_*` variables) and referred to by its
//! URL there.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use object_store::ObjectStoreExt;

use crate::ids::SessionId;

/// Failures storing or reading an artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("no artifact with that name")]
    NotFound,
    #[error("the artifact could not be stored: {0}")]
    Io(#[from] std::io::Error),
    #[error("the artifact store is unusable: {0}")]
    Remote(String),
}

/// Artifact storage: local, plus an optional object store.
pub struct Artifacts {
    root: PathBuf,
    remote: Option<Remote>,
}

/// An object store and the URL its objects are named under.
struct Remote {
    store: Box<dyn object_store::ObjectStore>,
    prefix: object_store::path::Path,
    base: String,
}

impl Artifacts {
    /// Uses `root`, deleting session dirs older than `retention` (they hold personal data),
    /// and `remote` (an `s3://` or `file://` URL) when given.
    pub fn new(root: PathBuf, retention: Duration, remote: Option<&url::Url>) -> Result<Self, ArtifactError> {
        let remote = match remote {
            Some(url) => {
                let options =
                    std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).map(|(k, v)| (k.to_lowercase(), v));
                let (store, prefix) =
                    object_store::parse_url_opts(url, options).map_err(|e| ArtifactError::Remote(e.to_string()))?;
                Some(Remote { store, prefix, base: url.as_str().trim_end_matches('/').to_string() })
            }
            None => None,
        };
        std::fs::create_dir_all(&root)?;
        let cutoff = SystemTime::now() - retention;
        for entry in std::fs::read_dir(&root)?.flatten() {
            let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
            if old {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(Self { root, remote })
    }

    /// Stores a PNG under a fresh name like `003-submitted.png`; returns its URL path.
    pub async fn save_png(&self, session: SessionId, label: &str, png: &[u8]) -> Result<String, ArtifactError> {
        let dir = self.root.join(session.to_string());
        tokio::fs::create_dir_all(&dir).await?;
        let count = names(&dir).await.iter().filter(|n| n.ends_with(".png")).count();
        let label: String = label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let name = format!("{:03}-{label}.png", count + 1);
        tokio::fs::write(dir.join(&name), png).await?;
        self.publish(session, &name).await
    }

    /// Stores `bytes` under the fixed name `name` (e.g. `timeline.json`); returns its URL.
    pub async fn save(&self, session: SessionId, name: &str, bytes: &[u8]) -> Result<String, ArtifactError> {
        let dir = self.root.join(session.to_string());
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join(name), bytes).await?;
        self.publish(session, name).await
    }

    /// Where a file of the session's named `name` is written in place (a recording), its dir
    /// made; `publish` once it is complete.
    pub fn local(&self, session: SessionId, name: &str) -> Result<PathBuf, ArtifactError> {
        let dir = self.root.join(session.to_string());
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join(name))
    }

    /// The URL of the session's artifact `name`: the object store's when it was put there (the
    /// local copy is served when that fails), else the worker's route.
    pub async fn publish(&self, session: SessionId, name: &str) -> Result<String, ArtifactError> {
        if let Some(remote) = &self.remote {
            let bytes = tokio::fs::read(self.root.join(session.to_string()).join(name)).await?;
            let key = remote.prefix.clone().join(session.to_string()).join(name);
            match remote.store.put(&key, bytes.into()).await {
                Ok(_) => return Ok(format!("{}/{session}/{name}", remote.base)),
                Err(e) => tracing::warn!(error = %e, "artifact not stored remotely; serving the local copy"),
            }
        }
        Ok(url(session, name))
    }

    /// The URL a local artifact is served at.
    pub fn url(&self, session: SessionId, name: &str) -> String {
        url(session, name)
    }

    /// The bytes of an artifact; names other than plain `[A-Za-z0-9._-]` file names are not found.
    pub async fn read(&self, session: SessionId, name: &str) -> Result<Vec<u8>, ArtifactError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !plain {
            return Err(ArtifactError::NotFound);
        }
        tokio::fs::read(self.root.join(session.to_string()).join(name)).await.map_err(|_| ArtifactError::NotFound)
    }

    /// URL paths of a session's artifacts, oldest first.
    pub async fn list(&self, session: SessionId) -> Vec<String> {
        let mut names = names(&self.root.join(session.to_string())).await;
        names.sort();
        names.iter().map(|n| url(session, n)).collect()
    }
}

/// The file names in `dir` (none if it cannot be read).
async fn names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return names };
    while let Ok(Some(entry)) = entries.next_entry().await {
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names
}

fn url(session: SessionId, name: &str) -> String {
    format!("/api/v2/sessions/{session}/artifacts/{name}")
}

/// The content type an artifact is served with, by its extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("png") => "image/png",
        Some("mp4") => "video/mp4",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}
