//! The sha256 of backups this machine has read whole, remembered by the file's identity (its
//! device, inode, size, modification and change times): a clone's drill knows which snapshot
//! serves it without reading the backup again. A file written to since, or replaced, has
//! another change time or inode, and is read again; no program can set a change time back.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file of remembered digests in a store.
const FILE: &str = ".digests.json";
/// At most this many files are remembered (the most recent).
const KEPT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    identity: String,
    sha256: String,
    /// When it was remembered (seconds since the epoch), to keep the newest.
    at: i64,
}

/// A file's identity: what changes when it is written to or replaced.
fn identity(path: &Path) -> Option<(String, String)> {
    use std::os::unix::fs::MetadataExt;
    let canonical = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&canonical).ok()?;
    if !meta.is_file() {
        return None;
    }
    let identity = format!(
        "{}:{}:{}:{}.{}:{}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    );
    Some((canonical.display().to_string(), identity))
}

fn read(store: &Path) -> BTreeMap<String, Entry> {
    std::fs::read_to_string(store.join(FILE)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// The sha256 of `path` as read whole before, when the file is the same file unchanged since.
pub(crate) fn known(store: &Path, path: &Path) -> Option<String> {
    let (name, identity) = identity(path)?;
    read(store).remove(&name).filter(|e| e.identity == identity).map(|e| e.sha256)
}

/// Remembers that `path`, as it is now, has `sha256` (read whole by the caller).
pub(crate) fn remember(store: &Path, path: &Path, sha256: &str) {
    let Some((name, identity)) = identity(path) else { return };
    let mut entries = read(store);
    entries.insert(
        name,
        Entry { identity, sha256: sha256.to_owned(), at: time::OffsetDateTime::now_utc().unix_timestamp() },
    );
    if entries.len() > KEPT {
        let mut by_age: Vec<(i64, String)> = entries.iter().map(|(k, e)| (e.at, k.clone())).collect();
        by_age.sort();
        for (_, old) in by_age.into_iter().take(entries.len() - KEPT) {
            entries.remove(&old);
        }
    }
    // Written whole, then renamed: a drill beside this one reads the old or the new list.
    let temporary = store.join(format!("{FILE}.{}", std::process::id()));
    if std::fs::write(&temporary, serde_json::to_vec(&entries).unwrap_or_default()).is_ok() {
        let _ = std::fs::rename(&temporary, store.join(FILE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_known_until_the_file_is_written_to_or_replaced() {
        let store = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("b.dump");
        std::fs::write(&backup, b"one").unwrap();
        assert_eq!(known(store.path(), &backup), None);
        remember(store.path(), &backup, "aaaa");
        assert_eq!(known(store.path(), &backup).as_deref(), Some("aaaa"));
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&backup, b"two").unwrap();
        assert_eq!(known(store.path(), &backup), None, "written to, same size");
        remember(store.path(), &backup, "bbbb");
        let replacement = dir.path().join("new");
        std::fs::write(&replacement, b"two").unwrap();
        std::fs::rename(&replacement, &backup).unwrap();
        assert_eq!(known(store.path(), &backup), None, "replaced by another file");
    }
}
