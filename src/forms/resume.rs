//! The applicant's resume: downloaded once per call from `resume_file_url` (http/https, egress
//! rules, a timeout, a 10 MiB cap, redirects re-checked) or decoded from inline base64, and kept
//! in the session's own file dir until the session closes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::egress::{EgressError, EgressPolicy};

/// The largest resume accepted.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: usize = 5;

/// Why a resume could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("resume_file_url is not a valid URL: {0}")]
    InvalidUrl(String),
    #[error("resume_file_url refused: {0}")]
    Egress(#[from] EgressError),
    #[error("the resume is larger than 10 MiB")]
    TooLarge,
    #[error("the resume download answered HTTP {0}")]
    Status(u16),
    #[error("the resume download failed: {0}")]
    Download(String),
    #[error("resume.content_base64 is not valid base64")]
    Base64,
    #[error("the resume could not be stored: {0}")]
    Io(#[from] std::io::Error),
}

impl ResumeError {
    /// True when the caller's input is at fault (as opposed to the remote server).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Status(_) | Self::Download(_) | Self::Io(_))
    }
}

/// A safe file name: the last path segment, `[A-Za-z0-9._-]` only, never empty or hidden.
pub fn safe_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String =
        last.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() { "resume.pdf".into() } else { trimmed.chars().take(100).collect() }
}

/// Decodes an inline resume into `dir`.
pub async fn store_inline(dir: &Path, filename: &str, content_base64: &str) -> Result<PathBuf, ResumeError> {
    if content_base64.len() > MAX_BYTES / 3 * 4 + 8 {
        return Err(ResumeError::TooLarge);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content_base64.trim().as_bytes())
        .map_err(|_| ResumeError::Base64)?;
    if bytes.len() > MAX_BYTES {
        return Err(ResumeError::TooLarge);
    }
    write(dir, &safe_filename(filename), &bytes).await
}

/// Downloads a resume into `dir`, re-checking egress rules on every redirect.
pub async fn download(dir: &Path, url: &str, policy: EgressPolicy) -> Result<PathBuf, ResumeError> {
    let mut url = url::Url::parse(url).map_err(|e| ResumeError::InvalidUrl(e.to_string()))?;
    let fetched = tokio::time::timeout(TIMEOUT, async {
        for _ in 0..=MAX_REDIRECTS {
            let addr = policy.check(&url).await?;
            let host = url.host_str().unwrap_or_default().to_string();
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .resolve(&host, addr)
                .timeout(TIMEOUT)
                .build()
                .map_err(|e| ResumeError::Download(e.to_string()))?;
            let mut response =
                client.get(url.clone()).send().await.map_err(|e| ResumeError::Download(e.to_string()))?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| ResumeError::Download("a redirect without a location".into()))?;
                url = url.join(location).map_err(|e| ResumeError::InvalidUrl(e.to_string()))?;
                continue;
            }
            if !response.status().is_success() {
                return Err(ResumeError::Status(response.status().as_u16()));
            }
            if response.content_length().is_some_and(|n| n as usize > MAX_BYTES) {
                return Err(ResumeError::TooLarge);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| ResumeError::Download(e.to_string()))? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BYTES {
                    return Err(ResumeError::TooLarge);
                }
            }
            let name = url.path_segments().and_then(|mut s| s.next_back().map(str::to_string)).unwrap_or_default();
            return Ok((name, body));
        }
        Err(ResumeError::Download("too many redirects".into()))
    })
    .await
    .map_err(|_| ResumeError::Download("timed out".into()))??;
    write(dir, &safe_filename(&fetched.0), &fetched.1).await
}

async fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, ResumeError> {
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join(name);
    // Rewriting an identical file would change its mtime, and Chromium refuses to upload a
    // file that changed after it was chosen (a page may keep the File until its last step).
    if tokio::fs::read(&path).await.ok().as_deref() != Some(bytes) {
        tokio::fs::write(&path, bytes).await?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_escape_the_dir() {
        assert_eq!(safe_filename("../../etc/passwd"), "passwd");
        assert_eq!(safe_filename("C:\\Users\\me\\My CV.pdf"), "My_CV.pdf");
        assert_eq!(safe_filename(".."), "resume.pdf");
        assert_eq!(safe_filename(""), "resume.pdf");
        assert_eq!(safe_filename(".bashrc"), "bashrc");
    }
}
