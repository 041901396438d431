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
    insert(store, name, Entry { identity, sha256: sha256.to_owned(), at: now() });
}

/// The sha256 of the remote object at `location` as read whole before, when its store still
/// gives it the identity it had then (an ETag, version, size and time written).
pub(crate) fn known_remote(store: &Path, location: &str, identity: &str) -> Option<String> {
    read(store).remove(&format!("remote:{location}")).filter(|e| e.identity == identity).map(|e| e.sha256)
}

/// Remembers that the remote object at `location`, with `identity`, has `sha256` (downloaded
/// and read whole by the caller).
pub(crate) fn remember_remote(store: &Path, location: &str, identity: &str, sha256: &str) {
    let entry = Entry { identity: identity.to_owned(), sha256: sha256.to_owned(), at: now() };
    insert(store, format!("remote:{location}"), entry);
}

/// Adds `entry` under `name` to the store's list, keeping the newest [`KEPT`].
fn insert(store: &Path, name: String, entry: Entry) {
    let mut entries = read(store);
    entries.insert(name, entry);
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

/// The sha256 of a set of files taken together (a physical backup's files, the archived
/// segments a recovery replayed): over each one's name in the set, its size and its content's
/// sha256, in the order given, and `extra` (what else makes the set, such as the links it
/// holds). Remembered under `label` by every file's identity: read again only when one of them
/// was written to, replaced, added or removed.
pub(crate) fn of_set(
    store: &Path,
    label: &str,
    files: &[(String, std::path::PathBuf)],
    extra: &str,
) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut identities = Sha256::new();
    for (name, path) in files {
        let (_, identity) =
            identity(path).ok_or_else(|| std::io::Error::other(format!("`{}` is not a file", path.display())))?;
        identities.update(format!("{name}\0{identity}\n"));
    }
    identities.update(extra);
    let identity = hex::encode(identities.finalize());
    let label = format!("set:{label}");
    if let Some(entry) = read(store).remove(&label).filter(|e| e.identity == identity) {
        return Ok(entry.sha256);
    }
    let mut whole = Sha256::new();
    for (name, path) in files {
        let mut file = std::fs::File::open(path)?;
        let mut one = Sha256::new();
        let size = std::io::copy(&mut file, &mut one)?;
        whole.update(format!("{name}\0{size}\0{}\n", hex::encode(one.finalize())));
    }
    whole.update(extra);
    let sha256 = hex::encode(whole.finalize());
    insert(store, label, Entry { identity, sha256: sha256.clone(), at: now() });
    Ok(sha256)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
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

    #[test]
    fn a_sets_digest_is_remembered_until_one_of_its_files_changes_and_names_each_file() {
        let store = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"one").unwrap();
        std::fs::write(&b, b"two").unwrap();
        let files = vec![("a".to_owned(), a.clone()), ("b".to_owned(), b.clone())];
        let first = of_set(store.path(), "x", &files, "").unwrap();
        assert_eq!(of_set(store.path(), "x", &files, "").unwrap(), first);
        let swapped = vec![("a".to_owned(), b.clone()), ("b".to_owned(), a.clone())];
        assert_ne!(of_set(store.path(), "x", &swapped, "").unwrap(), first, "names are part of it");
        assert_ne!(of_set(store.path(), "x", &files, "link").unwrap(), first, "so is what else makes the set");
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&b, b"TWO").unwrap();
        assert_ne!(of_set(store.path(), "x", &files, "").unwrap(), first, "read again once written to");
        std::fs::write(&b, b"two").unwrap();
        assert_eq!(of_set(store.path(), "x", &files, "").unwrap(), first, "the digest is of the content");
    }
}
