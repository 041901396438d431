//! A physical restore kept and reused: the snapshot of a recovery is keyed by what the recovery
//! consumed (the backup's files, the archived segments it replayed up to the point it reached,
//! the archive's timeline histories), what it was asked (target, timeline, set, database) and
//! the image; so that a later drill of the same recovery clones it in about a second instead of
//! recovering again. An archive that grew since a recovery to a point in time still serves it
//! (the segments past that point were not read); one that grew since a recovery to the
//! archive's end does not (the new segments would be replayed).
//!
//! The digests are remembered by the files' identities ([`digests::of_set`]): a backup and
//! archive unchanged since are not read again, and a clone's drill starts without its verify.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::super::{Drill, PhaseError, RestoredDatabase};
use super::Serving;
use crate::outcome::{Event, Phase};
use crate::provision::{self, TargetError};
use crate::restore::physical::Prepared;
use crate::scenario::RecoveryTarget;
use crate::snapshot::{Held, Key, MIGRATIONS, digests};
use crate::source::Backup;
use crate::source::physical::wal::{self, Segment};
use crate::source::physical::{self as physical, BaseBackup, PhysicalError, WalArchive};

/// Why a physical restore has no snapshot key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("cannot read `{}` for the snapshot's key: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Backup(#[from] PhysicalError),
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// What a physical restore's key holds besides the backup and the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Recovery {
    /// The scenario's recovery (target, inclusive, timeline), the set chosen and the database.
    asked: String,
    /// The archived segments recovery replayed, by name, in order.
    replayed: Vec<String>,
    /// Whether it replayed to the archive's end: a segment archived since would be replayed too.
    to_end: bool,
    /// sha256 of those segments and of the archive's timeline histories.
    wal_sha256: String,
}

impl Recovery {
    fn of(key: &Key) -> Option<Recovery> {
        serde_json::from_str::<serde_json::Value>(&key.restore)
            .ok()
            .and_then(|v| serde_json::from_value(v.get("physical")?.clone()).ok())
    }
}

/// The backup and its archive as they are now, with the digest of the backup's files.
struct Read {
    backup: BaseBackup,
    archive: Option<WalArchive>,
    backup_sha256: String,
    files: usize,
    image_id: String,
}

impl Drill<'_> {
    /// What the scenario asks of the recovery, canonical.
    fn asked(&self) -> String {
        let recovery = &self.scenario.recovery;
        let choice = self.scenario.set_choice();
        format!(
            "target {:?}, inclusive {}, timeline {:?}, stanza {:?}, set {:?}, database {:?}",
            recovery.target,
            recovery.inclusive,
            recovery.timeline,
            choice.stanza,
            choice.set,
            self.scenario.target.database
        )
    }

    /// Reads the backup (`known`: as verify read it) and the digest of its files; `None` where
    /// there are no snapshots (a target other than a container).
    async fn read_for_key(
        &self,
        backup: &Backup,
        known: Option<(&BaseBackup, Option<&WalArchive>)>,
    ) -> Result<Option<Read>, KeyError> {
        let (base, archive) = match known {
            Some((base, archive)) => (base.clone(), archive.cloned()),
            None => {
                let (dir, wal_dir) = (backup.path.clone(), backup.wal_archive.clone());
                let (choice, recovery) = (self.scenario.set_choice(), &self.scenario.recovery);
                let base = physical::inspect(&dir, &choice)?;
                let lsn = match recovery.target {
                    RecoveryTarget::Lsn(lsn) => Some(lsn),
                    _ => None,
                };
                let archive = physical::archive(wal_dir.as_deref(), &base, lsn, recovery.timeline)?;
                (base, archive)
            }
        };
        let progress = |message: &str| self.progress(Phase::Provision, message, None, None);
        let target = &self.scenario.target;
        let Some(image_id) = provision::image_id(target, Some(base.major), &progress).await? else {
            return Ok(None);
        };
        let store = self.snapshots.as_ref().map(|o| o.store.dir.clone()).unwrap_or_default();
        let dir = backup.path.clone();
        let tablespaces = tablespace_folders(&self.scenario.source.tablespaces);
        let inside = archive.as_ref().and_then(|a| first_folder_of(&dir, &a.dir));
        let digest = tokio::task::spawn_blocking(move || -> Result<(String, usize), KeyError> {
            let read = |source| KeyError::Read { path: dir.clone(), source };
            let (files, links) = backup_files(&dir, inside.as_deref(), &tablespaces).map_err(read)?;
            let sha256 = digests::of_set(&store, &format!("backup:{}", dir.display()), &files, &links).map_err(read)?;
            Ok((sha256, files.len()))
        })
        .await
        .map_err(|e| KeyError::Read { path: backup.path.clone(), source: std::io::Error::other(e) })??;
        let (backup_sha256, files) = digest;
        Ok(Some(Read { backup: base, archive, backup_sha256, files, image_id }))
    }

    /// The key of the recovery of `read` that replayed `replayed` (to the archive's end when
    /// `to_end`).
    async fn physical_key(&self, read: &Read, replayed: Vec<String>, to_end: bool) -> Result<Key, KeyError> {
        let store = self.snapshots.as_ref().map(|o| o.store.dir.clone()).unwrap_or_default();
        let archive = read.archive.clone();
        let names = replayed.clone();
        let wal_sha256 = tokio::task::spawn_blocking(move || wal_digest(&store, archive.as_ref(), &names))
            .await
            .map_err(|e| KeyError::Read { path: PathBuf::new(), source: std::io::Error::other(e) })??;
        let recovery = Recovery { asked: self.asked(), replayed, to_end, wal_sha256 };
        Ok(Key {
            backup_sha256: read.backup_sha256.clone(),
            image_id: read.image_id.clone(),
            restore: serde_json::json!({ "physical": recovery }).to_string(),
            migrations: MIGRATIONS.into(),
        })
    }

    /// The snapshot of this very recovery, held: one whose backup, image and question are this
    /// drill's, and whose replayed segments the archive still holds unchanged (and no more,
    /// when it recovered to the archive's end).
    async fn find_recovery(&self, read: &Read) -> Option<Held> {
        let options = self.snapshots.as_ref().filter(|o| o.reuse)?;
        let listed = options.store.list().ok()?;
        let now: Vec<String> =
            read.archive.as_ref().map(|a| a.segments.iter().map(|s| s.name.clone()).collect()).unwrap_or_default();
        for candidate in listed {
            let key = &candidate.meta.key;
            let Some(recovery) = Recovery::of(key) else { continue };
            let same = key.backup_sha256 == read.backup_sha256
                && key.image_id == read.image_id
                && key.migrations == MIGRATIONS
                && recovery.asked == self.asked();
            let still = if recovery.to_end { now == recovery.replayed } else { now.starts_with(&recovery.replayed) };
            if !same || !still {
                continue;
            }
            match self.physical_key(read, recovery.replayed.clone(), recovery.to_end).await {
                Ok(now) if now == *key => return self.find_snapshot(key),
                Ok(_) => continue,
                Err(e) => tracing::warn!("{}", crate::error::error_chain(&e)),
            }
        }
        None
    }

    /// The snapshot of this very recovery to clone, when the drill may reuse one and one serves:
    /// before verify (`verified` is `None`: the backup's files and archive are those a passing
    /// drill verified, by their digests; its verify phase says so) or after it. `None` when the
    /// drill recovers.
    pub(in crate::drill) async fn physical_snapshot(
        &self,
        backup: &Backup,
        verified: Option<&Prepared>,
    ) -> Option<Serving> {
        self.snapshots.as_ref().filter(|o| o.reuse)?;
        let known = verified.map(|p| (&p.backup, p.archive.as_ref()));
        let read = match self.read_for_key(backup, known).await {
            Ok(read) => read?,
            Err(e) => {
                self.progress(
                    Phase::Verify,
                    &format!("no snapshot reused: {}", crate::error::error_chain(&e)),
                    None,
                    None,
                );
                return None;
            }
        };
        let held = self.find_recovery(&read).await?;
        let major = read.backup.major;
        if verified.is_none() {
            let replayed = Recovery::of(&held.meta.key).map_or(0, |r| r.replayed.len());
            let summary = format!(
                "sha256 {}…, known: the backup's {} files and the {replayed} archived segment{} its recovery replayed are, unchanged, those drill {} verified in full and recovered from",
                &read.backup_sha256[..12],
                read.files,
                if replayed == 1 { "" } else { "s" },
                held.meta.drill_id
            );
            let mut info = self.restored_backup(&held).unwrap_or_default();
            info.location = backup.location.clone();
            info.sha256 = read.backup_sha256.clone();
            self.events.emit(Event::Backup(info));
            self.phase(Phase::Verify, async { Ok::<_, PhaseError>(((), summary)) }).await;
        }
        Some(Serving { backup: backup.clone(), held, major: Some(major) })
    }

    /// Keeps the recovered cluster as a snapshot (committed if the drill passes), keyed by what
    /// its recovery consumed.
    pub(in crate::drill) async fn keep_recovery(
        &self,
        restored: &RestoredDatabase,
        backup: &Backup,
        prepared: &Prepared,
        end_lsn: &str,
    ) {
        if !self.snapshots.as_ref().is_some_and(|o| o.keep) {
            return;
        }
        let to_end = self.scenario.recovery.target == RecoveryTarget::End;
        let replayed = replayed(prepared.archive.as_ref(), end_lsn, to_end);
        let key = match self.read_for_key(backup, Some((&prepared.backup, prepared.archive.as_ref()))).await {
            Ok(Some(read)) => self.physical_key(&read, replayed, to_end).await.map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match key {
            Ok(key) => self.make_snapshot(restored, key).await,
            Err(e) => self.not_configured(Phase::Snapshot, &format!("no snapshot: {}", crate::error::error_chain(&e))),
        }
    }
}

/// The archived segments a recovery that ended at `end_lsn` read: through the segment after
/// the one it ended in (where it may have read the record it stopped before), or all of them
/// when it recovered to the archive's end.
fn replayed(archive: Option<&WalArchive>, end_lsn: &str, to_end: bool) -> Vec<String> {
    let Some(archive) = archive else { return Vec::new() };
    let size = archive.segment_size;
    let last = wal::parse_lsn(end_lsn).map(|lsn| lsn / size + 1);
    archive
        .segments
        .iter()
        .filter(|s| to_end || Segment::parse(&s.name, size).zip(last).is_some_and(|(s, last)| s.number <= last))
        .map(|s| s.name.clone())
        .collect()
}

/// sha256 of the segments `names` of `archive` and of its timeline histories.
fn wal_digest(store: &Path, archive: Option<&WalArchive>, names: &[String]) -> Result<String, KeyError> {
    let Some(archive) = archive else { return Ok(String::new()) };
    let read = |source| KeyError::Read { path: archive.dir.clone(), source };
    let by_name: BTreeMap<&str, &PathBuf> = archive.segments.iter().map(|s| (s.name.as_str(), &s.path)).collect();
    let mut files = Vec::new();
    for name in names {
        let path = by_name.get(name.as_str()).ok_or_else(|| read(std::io::Error::other(format!("no {name}"))))?;
        files.push((name.clone(), (*path).clone()));
    }
    for (timeline, path) in wal::list_histories(&archive.dir).map_err(read)? {
        files.push((format!("{timeline:08X}.history"), path));
    }
    digests::of_set(store, &format!("wal:{}", archive.dir.display()), &files, "").map_err(read)
}

/// The folder of `backup` that holds `archive`, when the archive is inside the backup's folder
/// (a pgBackRest repository's `archive/`, a Barman server's `wals/`): not part of the backup's
/// files, which would otherwise change with every segment archived.
fn first_folder_of(backup: &Path, archive: &Path) -> Option<PathBuf> {
    let first = archive.strip_prefix(backup).ok()?.components().next()?;
    Some(backup.join(first))
}

/// The tablespace folders the scenario names, each with how its files are named in the
/// backup's digest.
fn tablespace_folders(tablespaces: &crate::source::Tablespaces) -> Vec<(String, PathBuf)> {
    let backup = tablespaces.backup.iter().map(|(oid, folder)| (format!("tablespace {oid}:"), folder.clone()));
    let members = tablespaces.members.iter().flat_map(|(member, of)| {
        of.iter().map(move |(oid, folder)| (format!("tablespace {member}/{oid}:"), folder.clone()))
    });
    backup.chain(members).collect()
}

/// The backup's files by their path in it (`dir`'s but those under `skip`, then those of each
/// tablespace folder, named by its prefix), and its symbolic links with where they point.
fn backup_files(
    dir: &Path,
    skip: Option<&Path>,
    tablespaces: &[(String, PathBuf)],
) -> std::io::Result<(Vec<(String, PathBuf)>, String)> {
    let (mut files, mut links) = (Vec::new(), Vec::new());
    let mut roots = vec![(String::new(), dir.to_owned())];
    roots.extend(tablespaces.iter().cloned());
    for (prefix, root) in roots {
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder)? {
                let entry = entry?;
                let path = entry.path();
                if skip == Some(path.as_path()) {
                    continue;
                }
                let name = format!("{prefix}{}", path.strip_prefix(&root).unwrap_or(&path).display());
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    folders.push(path);
                } else if kind.is_symlink() {
                    links.push(format!("{name} -> {}", std::fs::read_link(&path)?.display()));
                } else if kind.is_file() {
                    files.push((name, path));
                }
            }
        }
    }
    files.sort();
    links.sort();
    Ok((files, links.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backups_files_are_listed_by_name_without_the_archive_inside_it_and_with_its_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("backup/stanza/set")).unwrap();
        std::fs::create_dir_all(root.join("archive/stanza/17-1")).unwrap();
        std::fs::write(root.join("backup/stanza/set/backup.manifest"), "m").unwrap();
        std::fs::write(root.join("archive/stanza/17-1/000000010000000000000003"), "w").unwrap();
        std::os::unix::fs::symlink("/elsewhere", root.join("link")).unwrap();
        let skip = first_folder_of(root, &root.join("archive/stanza/17-1")).unwrap();
        assert_eq!(skip, root.join("archive"));
        let (files, links) = backup_files(root, Some(&skip), &[]).unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["backup/stanza/set/backup.manifest"]);
        assert_eq!(links, "link -> /elsewhere");
        assert_eq!(first_folder_of(&root.join("backup"), Path::new("/wal")), None);
    }

    #[test]
    fn a_recovery_to_a_point_replayed_through_the_segment_after_the_one_it_ended_in() {
        let segments = [
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000005",
        ];
        let archive = WalArchive {
            dir: PathBuf::from("/a"),
            segments: segments
                .iter()
                .map(|n| wal::Archived { name: (*n).into(), path: PathBuf::from(n), sha1: None })
                .collect(),
            segment_size: 16 << 20,
            path: crate::source::physical::timeline::TimelinePath::only(1),
        };
        assert_eq!(replayed(Some(&archive), "0/3000148", false), segments[..3]);
        assert_eq!(replayed(Some(&archive), "0/3000148", true), segments);
        assert!(replayed(None, "0/3000148", false).is_empty());
    }
}
