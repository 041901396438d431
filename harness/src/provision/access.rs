//! How a sandbox reads a backup it is given, whoever owns it: the one rule for every target and
//! every kind of backup.
//!
//! PostgreSQL, pgBackRest and Barman leave backups readable by their owner only (folders 0700,
//! files 0600 or 0640), owned by `postgres`, `barman` or root. The target and its toolbox never
//! run as root, and pgdrill never changes the backup in place. So, walking the whole backup:
//! where the sandbox's user may read every file (as owner, or as anyone), it reads it as it is;
//! where one group may read the rest, the sandbox is given that group; else the sandbox is given
//! read access to everything it sees ([`Access::ReadAll`]: Linux's `CAP_DAC_READ_SEARCH` alone,
//! which lets it read and list, never write, in a toolbox whose backup is mounted read-only),
//! but only where pgdrill's own user may read each file itself: a drill never reads what the user
//! who runs it could not.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::TargetError;
use crate::tree::Ids;

/// What a sandbox running as a user needs to read a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Its user reads every file as it is.
    AsItIs,
    /// Its user reads every file once given this group.
    Group(u32),
    /// Only with read access to all it sees (files pgdrill's own user may read).
    ReadAll,
}

impl Access {
    /// The group to give the sandbox.
    pub(crate) fn group(self) -> Option<u32> {
        match self {
            Access::Group(g) => Some(g),
            _ => None,
        }
    }
}

/// What a sandbox running as `uid` needs to read the backup at `path` (a file or a folder,
/// walked whole).
pub(crate) fn of(path: &Path, uid: Option<u32>) -> Result<Access, TargetError> {
    let mut group = None;
    let mut read_all = false;
    let mut pending = vec![path.to_owned()];
    while let Some(p) = pending.pop() {
        let meta = std::fs::symlink_metadata(&p).map_err(|e| cannot("read", &p, e))?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            let entries = std::fs::read_dir(&p).map_err(|e| cannot("list", &p, e))?;
            pending.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
        }
        let (read, other, grp) = if meta.is_dir() { (0o500, 0o005, 0o050) } else { (0o400, 0o004, 0o040) };
        let mode = meta.mode();
        if (uid == Some(meta.uid()) && mode & read == read) || mode & other == other {
            continue;
        }
        if !read_all && mode & grp == grp && group.is_none_or(|g| g == meta.gid()) {
            group = Some(meta.gid());
            continue;
        }
        if !readable_by_me(&p) {
            return Err(TargetError::Unreadable {
                path: p.clone(),
                mode: mode & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            });
        }
        read_all = true;
    }
    Ok(match (read_all, group) {
        (true, _) => Access::ReadAll,
        (false, Some(g)) => Access::Group(g),
        (false, None) => Access::AsItIs,
    })
}

/// Whether pgdrill's own user may read (and, for a folder, list) `path`.
fn readable_by_me(path: &Path) -> bool {
    use rustix::fs::Access;
    let mode = if path.is_dir() { Access::READ_OK | Access::EXEC_OK } else { Access::READ_OK };
    rustix::fs::access(path, mode).is_ok()
}

fn cannot(action: &str, path: &Path, source: std::io::Error) -> TargetError {
    TargetError::Io { action: format!("cannot {action} `{}`", path.display()), source }
}

/// The program and arguments that run a program of a container toolbox started as root with
/// [`Access::ReadAll`]: as the server's user, holding only `CAP_DAC_READ_SEARCH` (util-linux's
/// `setpriv`, in every Debian image), with no other capability left to gain.
pub(crate) fn read_all_prefix(user: Ids) -> Vec<String> {
    vec![
        "setpriv".into(),
        format!("--reuid={}", user.uid),
        format!("--regid={}", user.gid),
        "--clear-groups".into(),
        "--inh-caps=-all,+dac_read_search".into(),
        "--ambient-caps=-all,+dac_read_search".into(),
        "--bounding-set=-all,+dac_read_search".into(),
        "--".into(),
    ]
}

/// The capabilities a container toolbox with [`Access::ReadAll`] starts with: the one it keeps,
/// and what `setpriv` needs to become the server's user keeping it.
pub(crate) const READ_ALL_CAPS: [&str; 4] = ["DAC_READ_SEARCH", "SETUID", "SETGID", "SETPCAP"];

/// A folder of this machine the backup is staged in for a sandbox that cannot be given
/// [`Access::ReadAll`] (a local target's, in bubblewrap's user namespace): a copy owned by the
/// sandbox's user, blocks shared with the backup where the file system can.
pub(crate) fn stage(path: &Path, into: &Path, owner: Ids) -> Result<PathBuf, TargetError> {
    crate::tree::copy(path, into, owner).map_err(|e| cannot("stage a copy of", path, e))?;
    Ok(into.to_owned())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::{Access, of};

    #[test]
    fn what_a_sandbox_needs_follows_the_modes_the_tools_leave() {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("backup");
        std::fs::create_dir_all(backup.join("base")).unwrap();
        std::fs::write(backup.join("base/1"), "x").unwrap();
        let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&backup).unwrap());
        let set = |p: &str, mode: u32| {
            std::fs::set_permissions(backup.join(p), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set("", 0o755);
        set("base", 0o755);
        set("base/1", 0o644);
        assert_eq!(of(&backup, Some(me + 1)).unwrap(), Access::AsItIs);
        set("base/1", 0o640);
        assert!(matches!(of(&backup, Some(me + 1)).unwrap(), Access::Group(_)));
        // pg_basebackup's own modes, read by another user: pgdrill's own may read it all.
        set("", 0o700);
        set("base", 0o700);
        set("base/1", 0o600);
        assert_eq!(of(&backup, Some(me)).unwrap(), Access::AsItIs);
        assert_eq!(of(&backup, Some(me + 1)).unwrap(), Access::ReadAll);
    }
}
