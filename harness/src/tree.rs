//! Folders of files as wholes: a data directory copied (through the kernel's `copy_file_range`,
//! which shares the blocks where the file system can: XFS, btrfs), whether a folder's file
//! system shares blocks at all (reflinks), and a fingerprint of a folder's files that changes
//! when one is written. A leaf.

use std::path::Path;

/// A user and its group, by number: who owns a file, who a process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ids {
    pub uid: u32,
    pub gid: u32,
}

impl Ids {
    /// This process's user and group (as its /proc folder's owner says; root's when unreadable).
    pub(crate) fn current() -> Ids {
        Ids::of(Path::new("/proc/self")).unwrap_or(Ids { uid: 0, gid: 0 })
    }

    /// The owner of `path`.
    pub(crate) fn of(path: &Path) -> std::io::Result<Ids> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map(|m| Ids { uid: m.uid(), gid: m.gid() })
    }

    /// Makes them the owner of `path` itself (of a link, not of what it points to).
    pub(crate) fn own(self, path: &Path) -> std::io::Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))
    }
}

/// `uid:gid`, as Docker's `--user` takes them.
impl std::fmt::Display for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// Copies the folder `from` to `to` (files and folders, with their modes), owned by `owner`:
/// the folders first, then the files on one thread per core (creating a file, not copying its
/// bytes, is what costs here: a cluster is about a thousand small files). A link is copied as a
/// link, never followed: a folder a backup wrote could link anywhere on this machine (what it
/// may hold is for the caller to judge, as staging refuses a backup's links).
pub(crate) fn copy(from: &Path, to: &Path, owner: Ids) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let chown = |path: &Path| owner.own(path);
    let mut folders = vec![(from.to_owned(), to.to_owned())];
    let mut files = Vec::new();
    let mut next = 0;
    while let Some((source, target)) = folders.get(next).cloned() {
        next += 1;
        std::fs::DirBuilder::new().mode(0o700).create(&target)?;
        chown(&target)?;
        for entry in std::fs::read_dir(&source)? {
            let entry = entry?;
            let pair = (entry.path(), target.join(entry.file_name()));
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&pair.0)?, &pair.1)?;
                chown(&pair.1)?;
            } else if kind.is_dir() {
                folders.push(pair)
            } else {
                files.push(pair)
            }
        }
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let copies: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> std::io::Result<()> {
                    for (source, target) in part {
                        std::fs::copy(source, target)?;
                        chown(target)?;
                    }
                    Ok(())
                })
            })
            .collect();
        copies
            .into_iter()
            .try_for_each(|copy| copy.join().unwrap_or_else(|_| Err(std::io::Error::other("a copy thread panicked"))))
    })?;
    // Folder modes last: a read-only folder would refuse its files.
    for (source, target) in folders.iter().rev() {
        let mode = std::fs::metadata(source)?.mode() & 0o7777;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Removes the folder `dir` and all it holds, also while another process removes it too (a
/// drill's sweep and `pgdrill clean` beside it): each takes entries from under the other, so
/// a removal that fails is tried again until the folder is gone. Its files are unlinked by a
/// few threads at once first, the largest first: unlinking a file whose pages the kernel is
/// writing back waits for that write, and a data directory just written is mostly such files.
pub(crate) async fn remove(dir: &Path) -> std::io::Result<()> {
    let owned = dir.to_owned();
    let _ = tokio::task::spawn_blocking(move || unlink_files(&owned)).await;
    let mut tries = 0;
    loop {
        match tokio::fs::remove_dir_all(dir).await {
            Ok(()) => return Ok(()),
            Err(_) if !dir.exists() => return Ok(()),
            Err(e) if tries >= 4 => return Err(e),
            Err(_) => tries += 1,
        }
    }
}

/// Unlinks the files under `dir` (not its folders, never following a link) on a few threads,
/// the largest first; what cannot be unlinked is left to `remove_dir_all`.
fn unlink_files(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let mut files = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => folders.push(entry.path()),
                Ok(_) => files.push((entry.metadata().map_or(0, |m| m.size()), entry.path())),
                Err(_) => {}
            }
        }
    }
    files.sort_unstable_by_key(|(size, _)| std::cmp::Reverse(*size));
    const THREADS: usize = 8;
    std::thread::scope(|scope| {
        for part in 0..THREADS {
            let files = &files;
            scope.spawn(move || {
                for (_, path) in files.iter().skip(part).step_by(THREADS) {
                    let _ = std::fs::remove_file(path);
                }
            });
        }
    });
}

/// Whether files in `dir` can share their blocks with a copy (`FICLONE`: XFS with reflinks,
/// btrfs, bcachefs): tried on a file of one byte made there and removed.
pub(crate) fn reflinks(dir: &Path) -> bool {
    let (from, to) = (dir.join(".pgdrill-reflink-probe"), dir.join(".pgdrill-reflink-probe.copy"));
    let tried = (|| -> std::io::Result<bool> {
        std::fs::write(&from, b"x")?;
        let source = std::fs::File::open(&from)?;
        let target = std::fs::File::create(&to)?;
        Ok(rustix::fs::ioctl_ficlone(&target, &source).is_ok())
    })();
    let _ = std::fs::remove_file(&from);
    let _ = std::fs::remove_file(&to);
    tried.unwrap_or(false)
}

/// A digest of what `dir` holds: each file's and folder's path, mode, owner, size, modification and
/// change times, in path order. A write, a `chmod` or a `touch` changes a file's change time,
/// which no program can set back, so a folder written to no longer has the fingerprint it had.
/// Reads no file's bytes.
pub(crate) fn fingerprint(dir: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let mut entries = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            let relative = entry.path().strip_prefix(dir).map(|p| p.display().to_string()).unwrap_or_default();
            entries.push(format!(
                "{relative}\0{:o}\0{}:{}\0{}\0{}.{}\0{}.{}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                if meta.is_dir() { 0 } else { meta.size() },
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec()
            ));
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    entries.sort();
    let mut hash = Sha256::new();
    for entry in &entries {
        hash.update(entry.as_bytes());
        hash.update(b"\n");
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_changes_the_fingerprint_and_a_copy_keeps_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("base/1")).unwrap();
        std::fs::write(from.join("base/1/1259"), vec![7u8; 8192]).unwrap();
        std::fs::write(from.join("PG_VERSION"), "17\n").unwrap();
        let before = fingerprint(&from).unwrap();
        assert_eq!(before, fingerprint(&from).unwrap(), "reading changes nothing");
        let me = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap();
        let group = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::gid(&m)).unwrap();
        copy(&from, &dir.path().join("to"), Ids { uid: me, gid: group }).unwrap();
        assert_eq!(std::fs::read(dir.path().join("to/base/1/1259")).unwrap(), vec![7u8; 8192]);
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::OpenOptions::new().append(true).open(from.join("PG_VERSION")).unwrap();
        assert_eq!(before, fingerprint(&from).unwrap(), "opening for writing is not a write");
        std::fs::write(from.join("base/1/1259"), vec![8u8; 8192]).unwrap();
        assert_ne!(before, fingerprint(&from).unwrap(), "a write of the same size is seen");
    }

    /// A link a folder holds is copied as a link: what it points at is never read.
    #[test]
    fn a_copy_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (from, secret) = (dir.path().join("from"), dir.path().join("secret"));
        std::fs::create_dir(&from).unwrap();
        std::fs::write(&secret, "not the folder's").unwrap();
        std::os::unix::fs::symlink(&secret, from.join("link")).unwrap();
        copy(&from, &dir.path().join("to"), Ids::current()).unwrap();
        let copied = dir.path().join("to/link");
        assert!(std::fs::symlink_metadata(&copied).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_link(&copied).unwrap(), secret);
    }

    /// Every file goes, on the threads or after them, and a link goes as a link: what it points
    /// at outside the folder stays.
    #[tokio::test]
    async fn a_removal_takes_every_file_and_follows_no_link() {
        let dir = tempfile::tempdir().unwrap();
        let (gone, kept) = (dir.path().join("data"), dir.path().join("outside"));
        std::fs::create_dir_all(&kept).unwrap();
        std::fs::write(kept.join("file"), "stays").unwrap();
        for i in 0..40 {
            let folder = gone.join(format!("base/{}", i % 5));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join(i.to_string()), vec![1u8; 100 * i]).unwrap();
        }
        std::os::unix::fs::symlink(&kept, gone.join("link")).unwrap();
        remove(&gone).await.unwrap();
        assert!(!gone.exists());
        assert_eq!(std::fs::read_to_string(kept.join("file")).unwrap(), "stays");
        remove(&gone).await.unwrap();
    }

    #[test]
    fn the_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // ext4 and tmpfs share no blocks, XFS and btrfs do: either answer is the file system's.
        let _ = reflinks(dir.path());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
