//! Restore once, drill many: a drill that restores may keep its restored cluster as a snapshot
//! (`--snapshot`), made right after the restore, kept only if the drill passes; a drill that
//! may reuse one (`--reuse`) clones the snapshot of the very same restore instead of restoring,
//! and says so in its reports. The store itself is [`crate::snapshot`].

mod physical;
mod remote;

use std::sync::Mutex;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Cleanup, Drill, PhaseError, RestoredDatabase};
use crate::dump::DumpSummary;
use crate::outcome::BackupInfo;
use crate::outcome::{CloneOf, Event, Phase};
use crate::provision::{self, CloneFrom};
use crate::snapshot::digests;
use crate::snapshot::{Held, Key, MIGRATIONS, Meta, Pending, Store};
use crate::source::Backup;

/// What a drill does with snapshots: `pgdrill run --snapshot`, `--reuse`.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotOptions {
    pub store: Store,
    /// Keep this drill's restore as a snapshot if it passes.
    pub keep: bool,
    /// Clone the snapshot of this restore when there is one, instead of restoring.
    pub reuse: bool,
}

/// What the drill does with snapshots: the command line's `--snapshot` and `--reuse`, or the
/// scenario's `[snapshot]`, in the store the environment names.
pub(super) fn options(
    given: Option<&SnapshotOptions>,
    scenario: crate::scenario::SnapshotSpec,
) -> Option<SnapshotOptions> {
    if let Some(given) = given {
        let mut options = given.clone();
        options.keep |= scenario.keep;
        options.reuse |= scenario.reuse;
        return Some(options);
    }
    if !scenario.keep && !scenario.reuse {
        return None;
    }
    match Store::open() {
        Ok(store) => Some(SnapshotOptions { store, keep: scenario.keep, reuse: scenario.reuse }),
        Err(e) => {
            tracing::warn!("the scenario's [snapshot] is not used: {e}");
            None
        }
    }
}

/// A drill's snapshots: the one it makes, the one it clones.
#[derive(Default)]
pub(super) struct State {
    /// Made after the restore; committed once the drill passed.
    pub pending: Mutex<Option<(Pending, Meta)>>,
    /// Held while the drill's clone of it runs.
    pub held: Mutex<Option<Held>>,
    /// The clone's own layer on this machine, measured before teardown: an overlay's or a
    /// copy's by what its files take; a reflinked copy's, whose files share the snapshot's
    /// blocks, by how much its file system's free space fell meanwhile (the free space then).
    pub layer: Mutex<Option<(std::path::PathBuf, Option<u64>)>>,
}

/// A snapshot that serves a drill instead of its restore: the backup it is of, the snapshot,
/// and the major of its cluster when that is not the dump's.
pub(in crate::drill) struct Serving {
    pub backup: Backup,
    pub held: Held,
    pub major: Option<u32>,
}

/// What the snapshot keeps of the restore, for a clone's checks: what a restore gives them,
/// and what verify read of the backup.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Restored {
    database: String,
    dump: DumpSummary,
    pub backup: Option<BackupInfo>,
}

impl Drill<'_> {
    /// The key of this drill's restore of the backup whose sha256 is `sha256`: `None` where
    /// there are no snapshots (a target other than a container).
    pub(super) async fn snapshot_key(&self, sha256: &str, backup: &Backup) -> Result<Option<Key>, PhaseError> {
        self.snapshot_key_of(sha256, crate::source::read::source_major(&backup.path, backup.keys.first())).await
    }

    /// [`Drill::snapshot_key`] of a dump from a server of `major`.
    async fn snapshot_key_of(&self, sha256: &str, major: Option<u32>) -> Result<Option<Key>, PhaseError> {
        let progress = |message: &str| self.progress(Phase::Provision, message, None, None);
        let Some(image_id) =
            provision::image_id(&self.scenario.target, major, &progress).await.map_err(PhaseError::error)?
        else {
            return Ok(None);
        };
        let restore = &self.scenario.restore;
        let globals = match &restore.globals {
            Some(path) => {
                let bytes = tokio::fs::read(path).await.map_err(PhaseError::error)?;
                hex::encode(Sha256::digest(&bytes))
            }
            None => String::new(),
        };
        let roles: Vec<String> =
            restore.roles.iter().map(|r| format!("{}:{}:{}", r.name, r.login, r.member_of.join("+"))).collect();
        let options = serde_json::json!({
            "database": self.scenario.target.database,
            "roles": roles,
            "globals_sha256": globals,
        });
        Ok(Some(Key {
            backup_sha256: sha256.to_owned(),
            image_id,
            restore: options.to_string(),
            migrations: MIGRATIONS.into(),
        }))
    }

    /// The snapshot to clone without reading the backup again: when this very file was read
    /// whole before (its sha256 remembered with its identity) and a snapshot of its restore
    /// serves (its verify phase says so). `None` when the drill must verify the backup (and
    /// restore it or clone after all).
    pub(super) async fn quick_snapshot(&self, backup: &Backup) -> Option<Serving> {
        let options = self.snapshots.as_ref().filter(|o| o.reuse)?;
        // An encrypted dump's keys are proven by its verify, whatever a snapshot holds.
        if !backup.keys.is_empty() {
            return None;
        }
        let sha256 = digests::known(&options.store.dir, &backup.path)?;
        let key = self.snapshot_key(&sha256, backup).await.ok()??;
        let held = self.find_snapshot(&key)?;
        let mut info = self.restored_backup(&held).unwrap_or_default();
        info.location = backup.location.clone();
        info.size_bytes = backup.size;
        info.modified = backup.modified;
        info.sha256 = sha256.clone();
        self.events.emit(Event::Backup(info));
        let summary = format!(
            "sha256 {}…, known: this very file (the same device, inode, size, modification and change times) was read whole before, and drill {} verified these bytes in full and restored them",
            &sha256[..12.min(sha256.len())],
            held.meta.drill_id
        );
        self.phase(Phase::Verify, async { Ok::<_, PhaseError>(((), summary)) }).await;
        Some(Serving { backup: backup.clone(), held, major: None })
    }

    /// What verify read of the backup a snapshot is of, as the snapshot keeps it.
    fn restored_backup(&self, held: &Held) -> Option<BackupInfo> {
        serde_json::from_value::<Restored>(held.meta.restored.clone()).ok()?.backup
    }

    /// Remembers the sha256 verify read of a local backup file, for [`Drill::quick_clone`].
    pub(super) fn remember_digest(&self, backup: &Backup, sha256: &str) {
        let Some(options) = &self.snapshots else { return };
        // A download lives as long as its drill: it is known by its store's identity for it.
        if let Some(identity) = &backup.remote {
            digests::remember_remote(&options.store.dir, &backup.location, identity, sha256);
        } else if !backup.path.starts_with(self.work_dir()) {
            digests::remember(&options.store.dir, &backup.path, sha256);
        }
    }

    /// The snapshot of `key` to clone, held, when the drill may reuse one and there is one.
    pub(super) fn find_snapshot(&self, key: &Key) -> Option<Held> {
        let options = self.snapshots.as_ref().filter(|o| o.reuse)?;
        match options.store.find(key) {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!("{why}");
                self.progress(Phase::Provision, &format!("{why}; restoring instead"), None, None);
                None
            }
        }
    }

    /// Provisions a clone of the snapshot that serves and records that the restore is that
    /// snapshot's.
    pub(in crate::drill) async fn clone_of(&self, cleanup: &mut Cleanup, serving: Serving) -> Option<RestoredDatabase> {
        let Serving { backup, held, major } = serving;
        let backup = &backup;
        let from = CloneFrom { data: held.data(), major };
        let restored: Restored = match serde_json::from_value(held.meta.restored.clone()) {
            Ok(restored) => restored,
            Err(e) => {
                let unreadable = async { Err::<((), String), _>(PhaseError::error(std::io::Error::other(e))) };
                self.phase(Phase::Provision, unreadable).await;
                return None;
            }
        };
        let meta = held.meta.clone();
        *self.snapshot_state.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(held);
        let target = self.phase(Phase::Provision, self.provision(cleanup, backup, None, Some(&from))).await?;
        let of = CloneOf {
            snapshot: meta.id.clone(),
            drill_id: meta.drill_id.clone(),
            made_at: meta.made_at,
            backup_sha256: meta.key.backup_sha256.clone(),
            report: format!("report.md in snapshot {} (`pgdrill snapshots`)", meta.id),
            checksums: meta.checksums.clone(),
            layer_bytes: None,
        };
        self.events.emit(Event::Cloned(of));
        let shares = target.info.data_layer.as_deref().is_some_and(|l| l.starts_with("reflinks"));
        if let Some(disk) = &target.disk {
            let free = shares.then(|| crate::disk::space(&disk.dir).map(|s| s.free).ok()).flatten();
            *self.snapshot_state.layer.lock().unwrap_or_else(|p| p.into_inner()) = Some((disk.dir.clone(), free));
        }
        let why = format!(
            "not run: the database is a clone of snapshot {} (drill {} restored this backup and passed, {})",
            meta.id,
            meta.drill_id,
            meta.made_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        );
        for phase in [Phase::Preflight, Phase::Restore] {
            self.not_configured(phase, &why);
        }
        // The RTO is not this drill's to judge, and its deadline no longer runs.
        self.limits.recovered();
        Some(RestoredDatabase { target, database: restored.database, dump: restored.dump })
    }

    /// Keeps a copy of the restored cluster as a snapshot, committed if the drill passes.
    pub(super) async fn make_snapshot(&self, restored: &RestoredDatabase, key: Option<Key>) {
        let RestoredDatabase { target, database, dump } = restored;
        let Some(options) = self.snapshots.as_ref().filter(|o| o.keep) else { return };
        let (Some(key), Some(offline)) = (key, target.offline.as_ref().and_then(|o| o.container())) else {
            return self.not_configured(
                Phase::Snapshot,
                "no snapshot: only a container target's cluster is kept as one (a snapshot is kept beside a container target's Docker volume, and its clone made from it; a server's, a local or a pod target's cluster is not kept)",
            );
        };
        let make = async {
            let pending = options.store.begin(&self.drill_id).map_err(PhaseError::error)?;
            let checksums = match offline.snapshot(&pending.data(), &self.redactor).await {
                Ok(checksums) => checksums,
                Err(e) => {
                    pending.discard().await;
                    return Err(PhaseError::error(e));
                }
            };
            let backup = self.events.record().and_then(|r| r.backup);
            let restored = Restored { database: database.to_owned(), dump: dump.clone(), backup };
            let meta = Meta {
                schema: String::new(),
                id: key.id(),
                key,
                drill_id: self.drill_id.clone(),
                scenario: self.scenario.name.clone(),
                made_at: OffsetDateTime::now_utc(),
                backup_location: self.events.record().and_then(|r| r.backup).map(|b| b.location).unwrap_or_default(),
                size_bytes: 0,
                fingerprint: String::new(),
                checksums: checksums.clone(),
                restored: serde_json::to_value(restored).unwrap_or_default(),
            };
            let summary = format!(
                "copied the restored cluster, shut down cleanly, into the store ({}); {checksums}; kept as snapshot {} if the drill passes",
                options.store.dir.display(),
                meta.id
            );
            *self.snapshot_state.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some((pending, meta));
            Ok(((), summary))
        };
        self.phase(Phase::Snapshot, make).await;
    }

    /// Before teardown: what the clone's own layer took on disk, into its record.
    pub(super) async fn measure_clone(&self) {
        let Some((dir, free)) = self.snapshot_state.layer.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let Some(mut of) = self.events.record().and_then(|r| r.clone_of) else { return };
        let bytes = match free {
            Some(before) => before.saturating_sub(crate::disk::space(&dir).map(|s| s.free).unwrap_or(before)),
            None => tokio::task::spawn_blocking(move || crate::disk::usage(&dir)).await.unwrap_or_default(),
        };
        of.layer_bytes = Some(bytes);
        self.events.emit(Event::Cloned(of));
    }

    /// Once the reports are written: the snapshot made is kept if the drill passed, with its
    /// report; else removed. Returns what the console says of it.
    pub(super) async fn settle_snapshot(&self, passed: bool, report_dir: Option<&std::path::Path>) -> Option<String> {
        let (pending, meta) = self.snapshot_state.pending.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        let options = self.snapshots.as_ref()?;
        if !passed {
            pending.discard().await;
            return Some("no snapshot kept: the drill did not pass".into());
        }
        let proof: Vec<_> = report_dir.map(|d| vec![d.join("drill.json"), d.join("report.md")]).unwrap_or_default();
        let id = meta.id.clone();
        match options.store.commit(pending, meta, &proof).await {
            Ok(evicted) if evicted.is_empty() => Some(format!("kept snapshot {id}")),
            Ok(evicted) => Some(format!("kept snapshot {id} (evicted {})", evicted.join(", "))),
            Err(e) => Some(format!("no snapshot kept: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use super::*;
    use crate::outcome::Events;
    use crate::scenario::{Scenario, SnapshotSpec};
    use crate::secret::Redactor;

    fn store(dir: &Path) -> Store {
        Store::at(dir.join("store"), 1 << 30).unwrap()
    }

    #[test]
    fn the_command_line_and_the_scenario_each_turn_snapshots_on() {
        let dir = tempfile::tempdir().unwrap();
        let given = SnapshotOptions { store: store(dir.path()), keep: false, reuse: true };
        let merged = options(Some(&given), SnapshotSpec { keep: true, reuse: false }).unwrap();
        assert_eq!((merged.keep, merged.reuse, &merged.store.dir), (true, true, &given.store.dir));
        let asked = options(Some(&given), SnapshotSpec { keep: false, reuse: false }).unwrap();
        assert_eq!((asked.keep, asked.reuse), (false, true), "the scenario never turns the command line's off");
        assert!(options(None, SnapshotSpec { keep: false, reuse: false }).is_none());
    }

    fn scenario() -> Scenario {
        Scenario::parse(b"[source]\npath = \"orders.sql\"\n", Path::new("/scenarios/orders.toml")).unwrap()
    }

    fn drill(scenario: &Scenario, snapshots: Option<SnapshotOptions>) -> Drill<'_> {
        let started = Instant::now();
        Drill {
            scenario,
            events: Events::new(Vec::new()),
            redactor: Redactor::new(),
            drill_id: "0123abcd".into(),
            started,
            checks_done: AtomicUsize::new(0),
            api_done: AtomicUsize::new(0),
            baseline_out: None,
            inspect: None,
            limits: super::super::Limits::new(scenario.deadlines, None, started),
            snapshots,
            snapshot_state: State::default(),
            trails: Default::default(),
            previous_kind: None,
            may_keep: false,
            verify_first: false,
            follow: None,
            of_follower: None,
        }
    }

    fn key() -> Key {
        Key {
            backup_sha256: "ab".repeat(32),
            image_id: "sha256:image".into(),
            restore: "{\"database\":\"orders\"}".into(),
            migrations: MIGRATIONS.into(),
        }
    }

    /// A snapshot as `make_snapshot` leaves it pending: its cluster copied, what the restore
    /// gave the checks kept beside it.
    fn pending(drill: &Drill<'_>) -> PathBuf {
        let options = drill.snapshots.as_ref().unwrap();
        let pending = options.store.begin(&drill.drill_id).unwrap();
        std::fs::create_dir_all(pending.data().join("base")).unwrap();
        std::fs::write(pending.data().join("PG_VERSION"), "17\n").unwrap();
        let backup = BackupInfo { location: "/backups/orders.sql".into(), ..BackupInfo::default() };
        let restored = Restored { database: "orders".into(), dump: DumpSummary::default(), backup: Some(backup) };
        let meta = Meta {
            schema: String::new(),
            id: key().id(),
            key: key(),
            drill_id: drill.drill_id.clone(),
            scenario: "orders".into(),
            made_at: OffsetDateTime::now_utc(),
            backup_location: "/backups/orders.sql".into(),
            size_bytes: 0,
            fingerprint: String::new(),
            checksums: "pg_checksums: 0 bad blocks".into(),
            restored: serde_json::to_value(restored).unwrap(),
        };
        let dir = pending.dir.clone();
        *drill.snapshot_state.pending.lock().unwrap() = Some((pending, meta));
        dir
    }

    /// A drill's snapshot is kept, with its report, only once the drill passed; a later drill
    /// that may reuse one finds it, with what verify read of the backup.
    #[tokio::test]
    async fn a_snapshot_is_kept_when_the_drill_passed_and_served_to_a_drill_that_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = scenario();
        let options = SnapshotOptions { store: store(dir.path()), keep: true, reuse: true };
        let drill = drill(&scenario, Some(options.clone()));
        assert_eq!(drill.settle_snapshot(true, None).await, None, "none was made");
        pending(&drill);
        let reports = dir.path().join("reports");
        std::fs::create_dir(&reports).unwrap();
        std::fs::write(reports.join("drill.json"), "{}").unwrap();
        std::fs::write(reports.join("report.md"), "# orders").unwrap();
        assert_eq!(drill.settle_snapshot(true, Some(&reports)).await, Some(format!("kept snapshot {}", key().id())));
        let kept = options.store.dir.join(key().id());
        assert!(kept.join("report.md").is_file() && kept.join("drill.json").is_file(), "its proof is kept with it");

        let held = drill.find_snapshot(&key()).expect("the snapshot of this very restore");
        assert_eq!(held.meta.drill_id, "0123abcd");
        let backup = drill.restored_backup(&held).expect("what verify read");
        assert_eq!(backup.location, "/backups/orders.sql");
        drop(held);
        let other = Key { image_id: "sha256:rebuilt".into(), ..key() };
        assert!(drill.find_snapshot(&other).is_none(), "another image is another restore");
        let keeping = self::drill(&scenario, Some(SnapshotOptions { reuse: false, ..options }));
        assert!(keeping.find_snapshot(&key()).is_none(), "a drill that does not reuse restores");
    }

    #[tokio::test]
    async fn a_drill_that_failed_keeps_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = scenario();
        let options = SnapshotOptions { store: store(dir.path()), keep: true, reuse: true };
        let drill = drill(&scenario, Some(options));
        let made = pending(&drill);
        assert_eq!(
            drill.settle_snapshot(false, None).await.as_deref(),
            Some("no snapshot kept: the drill did not pass")
        );
        assert!(!made.exists(), "what was copied is removed");
        assert!(drill.find_snapshot(&key()).is_none());
    }

    /// A backup file read whole is remembered by its identity, so that the next drill of the same
    /// file may clone without reading it again; a download, which lives as long as its drill, is
    /// not remembered by its path.
    #[tokio::test]
    async fn the_digest_of_a_local_backup_is_remembered_for_the_next_drill() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = scenario();
        let options = SnapshotOptions { store: store(dir.path()), keep: false, reuse: true };
        let mut drill = drill(&scenario, Some(options.clone()));
        // Its work folder is the machine's: a drill id of its own.
        drill.drill_id = hex::encode(rand::random::<[u8; 8]>());
        let local = dir.path().join("orders.sql");
        std::fs::write(&local, "SELECT 1;\n").unwrap();
        let backup = |path: &Path| Backup {
            location: path.display().to_string(),
            path: path.to_owned(),
            size: 10,
            modified: None,
            previous: None,
            wal_archive: None,
            keys: Vec::new(),
            remote: None,
        };
        drill.remember_digest(&backup(&local), "cd".repeat(32).as_str());
        assert_eq!(digests::known(&options.store.dir, &local), Some("cd".repeat(32)));

        std::fs::create_dir_all(drill.work_dir()).unwrap();
        let downloaded = drill.work_dir().join("orders.sql");
        std::fs::write(&downloaded, "SELECT 1;\n").unwrap();
        drill.remember_digest(&backup(&downloaded), "ef".repeat(32).as_str());
        assert_eq!(digests::known(&options.store.dir, &downloaded), None);
        tokio::fs::remove_dir_all(drill.work_dir()).await.unwrap();
    }
}
