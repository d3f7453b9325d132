//! The session store's journal: every record write, appended before the call that made it
//! returns, so a worker killed before the store's next commit finds it when it starts again.
//!
//! One line a write (`put <uuid> <json>` or `remove <uuid>`) in `sessions.journal`. The store's
//! writer seals the file each time it takes a batch (renamed to `sessions.journal.<n>`, a new
//! one started) and removes the sealed file once that batch is committed, so the journal holds
//! only what is not committed yet, however busy the worker is. Opening reads the sealed files
//! in order, then the current one.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Writes by session, newest last: `None` removes the record.
pub(super) type Batch = HashMap<Uuid, Option<Vec<u8>>>;

pub(super) struct Journal {
    path: PathBuf,
    file: File,
    written: u64,
    next_seal: u64,
}

impl Journal {
    /// Reads what a journal at `path` holds (sealed files first, in order) and the files it
    /// was read from; nothing is changed on disk.
    pub(super) fn read(path: &Path) -> std::io::Result<(Batch, Vec<PathBuf>)> {
        let mut files = sealed(path)?;
        files.push((u64::MAX, path.to_path_buf()));
        let mut batch = Batch::new();
        let mut read = Vec::new();
        for (_, file) in files {
            match std::fs::read(&file) {
                Ok(text) => apply(&text, &mut batch),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            read.push(file);
        }
        Ok((batch, read))
    }

    /// Starts an empty journal at `path` once what it held is committed: the files `read`
    /// returned are removed.
    pub(super) fn start(path: &Path, read: Vec<PathBuf>) -> std::io::Result<Self> {
        for file in read.iter().filter(|f| f.as_path() != path) {
            std::fs::remove_file(file)?;
        }
        Ok(Self { path: path.to_path_buf(), file: empty(path)?, written: 0, next_seal: 0 })
    }

    pub(super) fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.file.write_all(line)?;
        self.written += line.len() as u64;
        Ok(())
    }

    /// Closes the current file under a sealed name and starts a new one; the sealed file (to
    /// remove once its writes are committed), or `None` when nothing was written since.
    pub(super) fn seal(&mut self) -> std::io::Result<Option<PathBuf>> {
        if self.written == 0 {
            return Ok(None);
        }
        let sealed = self.path.with_extension(format!("journal.{}", self.next_seal));
        std::fs::rename(&self.path, &sealed)?;
        self.next_seal += 1;
        (self.file, self.written) = (empty(&self.path)?, 0);
        Ok(Some(sealed))
    }
}

/// The file at `path`, empty, for appending, the worker's alone.
fn empty(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.set_len(0)?;
    Ok(file)
}

/// The sealed files beside `path`, by number.
fn sealed(path: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|n| n.parse().ok()) else {
            continue;
        };
        found.push((n, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Applies a journal's whole lines to `batch`; a line cut short by a crash is skipped.
fn apply(text: &[u8], batch: &mut Batch) {
    // Only lines with their newline were written whole.
    let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |end| end + 1);
    for line in text[..whole].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match parse_line(line) {
            Some((id, value)) => {
                batch.insert(id, value);
            }
            None => tracing::warn!("an unreadable session journal line skipped"),
        }
    }
    if whole < text.len() {
        tracing::warn!("a session journal line cut short by a crash skipped");
    }
}

/// The journal line of a write.
pub(super) fn line(id: Uuid, value: Option<&[u8]>) -> Vec<u8> {
    match value {
        Some(json) => [format!("put {id} ").as_bytes(), json, b"\n"].concat(),
        None => format!("remove {id}\n").into_bytes(),
    }
}

/// `put <uuid> <json>` or `remove <uuid>`.
fn parse_line(line: &[u8]) -> Option<(Uuid, Option<Vec<u8>>)> {
    let mut parts = line.splitn(3, |b| *b == b' ');
    let (verb, id) = (parts.next()?, parts.next()?);
    let id = Uuid::parse_str(std::str::from_utf8(id).ok()?).ok()?;
    match (verb, parts.next()) {
        (b"put", Some(json)) => Some((id, Some(json.to_vec()))),
        (b"remove", None) => Some((id, None)),
        _ => None,
    }
}
