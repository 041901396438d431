//! Who owns what a drill leaves on this machine: a process named by its host, pid and start
//! time (a pid alone may be reused), written on its containers (a label) and in its private
//! folders (a file), so that the next drill removes what a drill killed outright left. A leaf.

use std::path::{Path, PathBuf};

/// The file in a target's private folder that names the process owning it.
pub(crate) const OWNER_FILE: &str = "owner";

/// This process as an owner.
pub(crate) fn owner() -> String {
    owner_of(std::process::id()).unwrap_or_default()
}

/// Process `pid` of this machine as an owner, while it runs.
pub(super) fn owner_of(pid: u32) -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?.trim().to_owned();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis start at field 3 (state); 22 is starttime.
    let started = stat.rsplit_once(") ")?.1.split_whitespace().nth(19)?.to_owned();
    Some(format!("{host}/{pid}/{started}"))
}

/// Whether `owner` names a process of this machine that still runs.
pub(super) fn running(owner: &str) -> bool {
    let pid = owner.split('/').nth(1).and_then(|p| p.parse().ok());
    pid.is_some_and(|pid| owner_of(pid).as_deref() == Some(owner))
}

/// Whether `owner` names a process of this machine that no longer runs.
pub(super) fn orphaned(owner: &str) -> bool {
    let mine = self::owner();
    let (Some((host, _)), Some((my_host, _))) = (owner.split_once('/'), mine.split_once('/')) else { return false };
    let pid = owner.split('/').nth(1).and_then(|p| p.parse().ok());
    host == my_host && pid.is_some_and(|pid| owner_of(pid).as_deref() != Some(owner))
}

/// Marks `folder` (a target's private folder) as this process's, so that the next drill on the
/// machine removes it if this process is killed before it could.
pub(super) fn mark_owner(folder: &Path) -> std::io::Result<()> {
    std::fs::write(folder.join(OWNER_FILE), owner())
}

/// Removes the private folders of targets (`pgdrill-*-target`, `pgdrill-local-*` in the temporary
/// folder) whose owning process on this machine is gone: a drill killed outright leaves them.
pub(crate) async fn remove_orphan_folders() {
    orphan_folders(false).await;
}

/// The private folders of targets whose owning process on this machine is gone, removed unless
/// `dry_run`. A kept target's folder names no owner: it is never one of them.
pub(crate) async fn orphan_folders(dry_run: bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("pgdrill-local-") || name.starts_with("pgdrill-") && name.ends_with("-target");
        let owner = std::fs::read_to_string(entry.path().join(OWNER_FILE)).unwrap_or_default();
        if ours && !owner.is_empty() && orphaned(&owner) {
            if !dry_run {
                tracing::warn!("removing `{}`, left by a drill whose process is gone", entry.path().display());
                let _ = crate::tree::remove(&entry.path()).await;
            }
            found.push(entry.path());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::{orphaned, owner, running};

    #[test]
    fn an_owner_is_this_host_a_pid_and_its_start_time() {
        let me = owner();
        let parts: Vec<&str> = me.split('/').collect();
        assert_eq!(parts.len(), 3, "{me}");
        assert_eq!(parts[1], std::process::id().to_string());
        assert!(running(&me) && !orphaned(&me), "this process runs");
        // The same pid started at another time is another process: gone.
        let reused = format!("{}/{}/0", parts[0], parts[1]);
        assert!(!running(&reused) && orphaned(&reused));
        // Another machine's process is never taken for an orphan here.
        assert!(!orphaned("elsewhere/1/1") && !running("elsewhere/1/1"));
        assert!(!orphaned("") && !running(""));
    }
}
