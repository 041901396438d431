//! The preparation's tests: which scenario keys fit which kind of physical backup, and the
//! system every part of a backup must be of.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::scenario::{ContainerSpec, LocalSpec, RecoverySpec};
use crate::source::Tablespaces;
use crate::source::physical::{BackupLabel, Layout, Manifest, barman, chain, timeline};

const SYSTEM: u64 = 7_400_000_000_000_000_001;

fn base(layout: Layout) -> BaseBackup {
    BaseBackup {
        dir: PathBuf::from("/backups/base"),
        layout,
        major: 17,
        label: BackupLabel {
            start_lsn: "0/2000028".into(),
            start_segment: "000000010000000000000002".into(),
            timeline: 1,
            start_time: None,
            label: "pg_basebackup base backup".into(),
            incremental_from: None,
        },
        manifest: None,
        barman: None,
    }
}

fn set() -> Layout {
    Layout::PgBackRest(Box::new(crate::restore::physical::tests::pgbackrest_set(Vec::new())))
}

fn barman_of(system_id: Option<u64>) -> Box<barman::BarmanBackup> {
    Box::new(barman::BarmanBackup {
        server: PathBuf::from("/barman/main"),
        id: "20260301T020000".into(),
        cloud: false,
        data: PathBuf::from("/barman/main/base/20260301T020000/data"),
        system_id,
        backups: 1,
    })
}

fn container(version: Option<u32>) -> ContainerSpec {
    ContainerSpec {
        image: None,
        version,
        startup_timeout: Duration::from_secs(60),
        settings: Default::default(),
        memory: None,
        processes: None,
        disk: None,
        share: None,
    }
}

/// What the scenario asks of a backup, other than the backup itself.
#[derive(Default)]
struct Asked<'a> {
    local: bool,
    version: Option<u32>,
    wal_archive: Option<&'a Path>,
    tablespaces: Tablespaces,
    stanza: Option<&'a str>,
    set: Option<&'a str>,
}

/// [`keys_fit`] of `backup` for what the scenario asks: its message, when it refuses.
fn fit(backup: &BaseBackup, asked: Asked<'_>) -> Result<(), String> {
    let (recovery, redactor) = (RecoverySpec::default(), Redactor::new());
    let container = container(asked.version);
    let local = LocalSpec {
        bin_dir: None,
        startup_timeout: Duration::from_secs(60),
        settings: Default::default(),
        memory: None,
        processes: None,
        disk: None,
        share: None,
    };
    let request = Request {
        drill_id: "d1",
        backup_dir: Path::new("/backups/base"),
        wal_archive: asked.wal_archive,
        choice: backup::pgbackrest::Choice { stanza: asked.stanza, set: asked.set, before: None },
        recovery: &recovery,
        target: if asked.local { Where::Local(&local) } else { Where::Container(&container) },
        tablespaces: &asked.tablespaces,
        cipher_pass: None,
        keys: &[],
        work: Path::new("/tmp/work"),
        redactor: &redactor,
        progress: &|_| {},
    };
    keys_fit(backup, &request).map_err(|e| e.to_string())
}

#[test]
fn a_base_backup_fits_a_container_of_its_major() {
    let plain = base(Layout::Plain);
    assert_eq!(fit(&plain, Asked::default()), Ok(()));
    assert_eq!(
        fit(&plain, Asked { version: Some(17), wal_archive: Some(Path::new("/wal")), ..Default::default() }),
        Ok(())
    );
    assert_eq!(fit(&plain, Asked { local: true, ..Default::default() }), Ok(()));
    assert_eq!(
        fit(&plain, Asked { version: Some(16), ..Default::default() }),
        Err("the backup is of PostgreSQL 17, and `[target] version` pins 16: a physical backup recovers on its own major only (remove `version`)".into())
    );
}

#[test]
fn a_pgbackrest_set_carries_its_archive_and_tablespaces_and_recovers_in_a_container() {
    let repository = base(set());
    assert_eq!(
        fit(&repository, Asked { stanza: Some("main"), set: Some("20260301-020000F"), ..Default::default() }),
        Ok(())
    );
    assert_eq!(
        fit(&repository, Asked { local: true, ..Default::default() }),
        Err("a pgBackRest repository recovers on a container or pod target: pgBackRest restores it in a toolbox of the target's image (remove `[target] kind = \"local\"`)".into())
    );
    assert_eq!(
        fit(&repository, Asked { wal_archive: Some(Path::new("/wal")), ..Default::default() }),
        Err("a pgBackRest repository carries its own WAL archive: remove `[source] wal_archive`".into())
    );
    let tablespaces = Tablespaces { backup: [(16384, PathBuf::from("/ts"))].into(), ..Default::default() };
    assert_eq!(
        fit(&repository, Asked { tablespaces, ..Default::default() }),
        Err("a pgBackRest set carries its tablespaces, which pgdrill restores inside the data directory: remove `[source] tablespaces`".into())
    );
}

#[test]
fn a_barman_backup_carries_its_archive_and_may_name_its_backup() {
    let mut backup = base(Layout::Plain);
    backup.barman = Some(barman_of(Some(SYSTEM)));
    assert_eq!(fit(&backup, Asked { set: Some("20260301T020000"), ..Default::default() }), Ok(()));
    assert_eq!(
        fit(&backup, Asked { wal_archive: Some(Path::new("/wal")), ..Default::default() }),
        Err("a Barman server carries its own WAL archive (`wals`): remove `[source] wal_archive`".into())
    );
}

#[test]
fn tablespaces_are_named_by_oid_for_a_backup_and_by_member_for_a_chain() {
    let by_oid = || Tablespaces { backup: [(16384, PathBuf::from("/ts"))].into(), ..Default::default() };
    let by_member = || Tablespaces {
        members: [("incr1".to_owned(), [(16384, PathBuf::from("/ts"))].into())].into(),
        ..Default::default()
    };
    let plain = base(Layout::Plain);
    assert_eq!(fit(&plain, Asked { tablespaces: by_oid(), ..Default::default() }), Ok(()));
    assert_eq!(
        fit(&plain, Asked { tablespaces: by_member(), ..Default::default() }),
        Err("`[source] tablespaces` names a chain member's tablespace (`\"<member>/<oid>\"`), and `/backups/base` is no chain of incremental backups: name it by its OID alone".into())
    );
    let members = vec![("full".to_owned(), base(Layout::Plain)), ("incr1".to_owned(), base(Layout::Plain))];
    let chain = base(Layout::Chain(Box::new(chain::Chain { members, left_out: Vec::new() })));
    assert_eq!(fit(&chain, Asked { tablespaces: by_member(), set: Some("incr1"), ..Default::default() }), Ok(()));
    assert_eq!(
        fit(&chain, Asked { tablespaces: by_oid(), ..Default::default() }),
        Err("`/backups/base` is a chain of incremental backups, each plain one with a tablespace in a folder of its own: name each by its member in `[source] tablespaces`, `\"<member>/<oid>\" = \"<folder>\"`".into())
    );
}

#[test]
fn stanza_and_set_name_a_repositorys_backup() {
    let refused = Err("`/backups/base` is not a pgBackRest repository: `[source] stanza` and `set` name a pgBackRest repository's (and `set` a chain's backup or a Barman server's)".to_owned());
    let plain = base(Layout::Plain);
    assert_eq!(fit(&plain, Asked { stanza: Some("main"), ..Default::default() }), refused);
    assert_eq!(fit(&plain, Asked { set: Some("20260301-020000F"), ..Default::default() }), refused);
    let mut barman = base(Layout::Plain);
    barman.barman = Some(barman_of(None));
    assert_eq!(fit(&barman, Asked { stanza: Some("main"), ..Default::default() }), refused, "a stanza is pgBackRest's");
}

fn control(system_id: u64) -> ControlData {
    ControlData { system_id, segment_size: 16 << 20, ..ControlData::default() }
}

fn archive(segments: usize, segment_size: u64) -> WalArchive {
    let archived = (2..2 + segments).map(|n| backup::wal::Archived {
        name: format!("0000000100000000000000{n:02X}"),
        path: PathBuf::from(format!("/wal/0000000100000000000000{n:02X}")),
        sha1: None,
    });
    WalArchive {
        dir: PathBuf::from("/wal"),
        segments: archived.collect(),
        segment_size,
        path: timeline::TimelinePath::only(1),
    }
}

fn judged(backup: &BaseBackup, archive: Option<&WalArchive>, staged: u64) -> Result<(), String> {
    judge_systems(backup, archive, &Staged { system_id: staged, checksums_read: false }, &control(SYSTEM))
        .map_err(|e| e.to_string())
}

/// The manifest, Barman's backup.info, a pgBackRest set, pg_control as staged and as
/// pg_controldata reads it, and the archive's segments must all be of one system.
#[test]
fn every_part_of_a_backup_must_be_of_one_system() {
    let mut backup = base(Layout::Plain);
    let manifest = |system_id| Manifest { version: 2, system_id: Some(system_id), wal_range: None, files: 10 };
    backup.manifest = Some((PathBuf::from("/backups/base/backup_manifest"), manifest(SYSTEM)));
    assert_eq!(judged(&backup, Some(&archive(3, 16 << 20)), SYSTEM), Ok(()));
    assert_eq!(
        judged(&backup, None, 42),
        Err(format!("pg_control reads as system 42 here and {SYSTEM} to pg_controldata"))
    );
    backup.manifest = Some((PathBuf::from("/backups/base/backup_manifest"), manifest(42)));
    assert_eq!(
        judged(&backup, None, SYSTEM),
        Err(format!(
            "`/backups/base/backup_manifest` is of database system 42, and the backup's pg_control of {SYSTEM}: the manifest belongs to another backup"
        ))
    );

    let mut barman = base(Layout::Plain);
    barman.barman = Some(barman_of(Some(42)));
    assert_eq!(
        judged(&barman, None, SYSTEM),
        Err(format!(
            "Barman's backup.info of backup 20260301T020000 says database system 42, and its pg_control {SYSTEM}"
        ))
    );
    barman.barman = Some(barman_of(None));
    assert_eq!(judged(&barman, None, SYSTEM), Ok(()), "a backup.info that does not say");

    let mut repository = base(set());
    assert_eq!(judged(&repository, None, SYSTEM), Ok(()));
    if let Layout::PgBackRest(set) = &mut repository.layout {
        set.system_id = 42;
    }
    assert_eq!(
        judged(&repository, None, SYSTEM),
        Err(format!(
            "pgBackRest set 20260301-020000F says database system 42, and the pg_control it restored {SYSTEM}"
        ))
    );
}

#[test]
fn the_archives_segments_must_be_the_clusters_size() {
    let backup = base(Layout::Plain);
    assert_eq!(
        judged(&backup, Some(&archive(1, 64 << 20)), SYSTEM),
        Err(format!(
            "the WAL archive `/wal` holds {}-byte segments, and the backup's cluster writes {}-byte ones",
            64 << 20,
            16 << 20
        ))
    );
    assert_eq!(judged(&backup, Some(&archive(0, 64 << 20)), SYSTEM), Ok(()), "an archive with no segment to judge");
}

#[test]
fn the_data_directory_is_made_private_and_new() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let data = data_folder(&work).unwrap();
    assert_eq!(data, work.join("data"));
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    let again = data_folder(&work).unwrap_err().to_string();
    assert!(again.starts_with(&format!("cannot create `{}`: ", data.display())), "{again}");
}
