//! The physical restore's tests: what the verify phase says of a prepared backup, where its
//! recovery starts and ends, the newest point it can reach, and the errors that count keys.

use std::path::PathBuf;

use time::macros::datetime;

use super::*;
use crate::source::physical::{BackupLabel, Layout, Manifest, barman, pgbackrest, wal};

const SYSTEM: u64 = 7_400_000_000_000_000_001;
const MIB: u64 = 1 << 20;

fn base(layout: Layout) -> BaseBackup {
    BaseBackup {
        dir: PathBuf::from("/nowhere/base"),
        layout,
        major: 17,
        label: BackupLabel {
            start_lsn: "0/2000028".into(),
            start_segment: "000000010000000000000002".into(),
            timeline: 1,
            start_time: Some(datetime!(2026-03-01 02:00 UTC)),
            label: "pg_basebackup base backup".into(),
            incremental_from: None,
        },
        manifest: Some((
            PathBuf::from("/nowhere/base/backup_manifest"),
            Manifest { version: 2, system_id: Some(SYSTEM), wal_range: Some((1, 0x2000028, 0x2000138)), files: 1200 },
        )),
        barman: None,
    }
}

/// An archive of the segments 2 to `last` of timeline 1, in `dir`.
fn archive(dir: &Path, last: u64) -> WalArchive {
    let segments = (2..=last)
        .map(|n| {
            let name = format!("0000000100000000{n:08X}");
            wal::Archived { path: dir.join(&name), name, sha1: None }
        })
        .collect();
    WalArchive { dir: dir.to_owned(), segments, segment_size: 16 * MIB, path: TimelinePath::only(1) }
}

fn prepared(backup: BaseBackup, archive: Option<WalArchive>) -> Prepared {
    Prepared {
        backup,
        archive,
        feed: None,
        given: FeedStats { segments: 3, bytes: 48 * MIB, peak: 3 },
        control: ControlData { system_id: SYSTEM, segment_size: 16 * MIB, checksum_version: 1, ..Default::default() },
        manifest_verified: true,
        checksums_summed: false,
        combined: None,
        repository: None,
        window: Some(256 * MIB),
        data: PhysicalData { major: 17, data: PathBuf::from("/nowhere/data"), settings: Vec::new() },
        end: BackupEnd::default(),
        pauses_at_target: false,
        toolbox_removal: None,
    }
}

#[test]
fn the_summary_says_what_the_backup_is_what_verified_it_and_the_archive_recovery_reads() {
    let ready = prepared(base(Layout::Plain), Some(archive(Path::new("/wal"), 4)));
    assert_eq!(
        ready.summary(),
        format!(
            "base backup (plain) of PostgreSQL 17, started 2026-03-01T02:00:00Z in segment 000000010000000000000002 on \
             timeline 1, database system {SYSTEM}; pg_verifybackup: 1200 files and the WAL they need match \
             backup_manifest; data checksums on; 3 archived segments from its start to 000000010000000000000004 \
             along timeline 1, each of system {SYSTEM} (checked by its first page now, whole as recovery reads it); \
             given to recovery as it replays, 256.0 MiB ahead (48.0 MiB through the backup's end before it starts)"
        )
    );
    let all = Prepared { window: None, ..prepared(base(Layout::Plain), Some(archive(Path::new("/wal"), 2))) };
    assert!(
        all.summary().ends_with(
            "1 archived segment from its start to 000000010000000000000002 along timeline 1, each of system \
             7400000000000000001 (checked by its first page now, whole as recovery reads it); all 48.0 MiB given \
             before recovery starts (`wal_window = \"all\"`)"
        ),
        "{}",
        all.summary()
    );
}

#[test]
fn a_backup_that_could_not_be_verified_says_why() {
    let mut backup = base(Layout::Plain);
    backup.manifest = None;
    backup.label.start_time = None;
    let mut bare = prepared(backup, None);
    bare.manifest_verified = false;
    bare.control.checksum_version = 0;
    let summary = bare.summary();
    assert!(summary.contains(", started at an unknown time in segment "), "{summary}");
    assert!(
        summary.ends_with(
            "no backup_manifest: its files could not be verified (pg_basebackup --no-manifest?); data checksums \
             off; no WAL archive: recovery ends where the backup does"
        ),
        "{summary}"
    );
    bare.backup.barman = Some(Box::new(barman::BarmanBackup {
        server: PathBuf::from("/barman/main"),
        id: "20260301T020000".into(),
        cloud: true,
        data: PathBuf::from("/barman/main/data.tar"),
        system_id: None,
        backups: 1,
    }));
    bare.archive = Some(archive(Path::new("/wal"), 1));
    let summary = bare.summary();
    assert!(summary.contains("; barman-cloud writes no manifest: its files could not be verified (the WAL it recovers through is, segment by segment);"), "{summary}");
    assert!(summary.ends_with("the WAL archive holds no segment from the backup's start"), "{summary}");
}

#[test]
fn a_pgbackrest_set_is_said_restored_with_its_tablespaces() {
    let set = pgbackrest_set(vec![16384]);
    let ready = prepared(base(Layout::PgBackRest(Box::new(set.clone()))), None);
    assert_eq!(
        ready.restored_set(&set),
        "pgBackRest restored its 1000 files (tablespace 16384 into pg_tblspc/16384), each checked against the set's manifest"
    );
    let two = pgbackrest::Set { tablespaces: vec![16384, 16390], ..set };
    assert!(ready.restored_set(&two).contains("(tablespaces 16384 into pg_tblspc/16384, 16390 into pg_tblspc/16390)"));
    assert!(ready.summary().contains("; pgBackRest restored its 1000 files (tablespace 16384"), "{}", ready.summary());
}

/// The segment the backup ends in: its manifest's WAL range, else where the end it was read
/// from says, else its start; against the archive's last segment.
#[test]
fn the_archive_end_is_judged_against_the_segment_the_backup_ends_in() {
    let ready = prepared(base(Layout::Plain), Some(archive(Path::new("/wal"), 5)));
    let end = ready.archive_end().unwrap();
    assert_eq!((end.last, end.backup_end, end.segment_size), (5, 2, 16 * MIB));

    let mut backup = base(Layout::Plain);
    backup.manifest = None;
    let mut read = prepared(backup, Some(archive(Path::new("/wal"), 5)));
    assert_eq!(read.archive_end().unwrap().backup_end, 2, "its start");
    read.end.lsn = Some((0x3000100, "STOP WAL LOCATION".into()));
    assert_eq!(read.archive_end().unwrap().backup_end, 3);
    assert!(prepared(base(Layout::Plain), Some(archive(Path::new("/wal"), 1))).archive_end().is_none());
    assert!(prepared(base(Layout::Plain), None).archive_end().is_none());
}

#[test]
fn a_recovery_can_reach_the_newest_archived_segment_else_the_backups_start() {
    let bare = prepared(base(Layout::Plain), None);
    assert_eq!(
        bare.recoverable_until(),
        (Some(datetime!(2026-03-01 02:00 UTC)), Some("backup_label's START TIME".to_owned()))
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 3);
    for segment in &archive.segments {
        std::fs::write(&segment.path, b"").unwrap();
    }
    let newest = std::fs::metadata(&archive.segments[1].path).unwrap().modified().unwrap();
    let (at, from) = prepared(base(Layout::Plain), Some(archive)).recoverable_until();
    assert_eq!(at, Some(time::OffsetDateTime::from(newest)));
    assert_eq!(from.as_deref(), Some("the WAL archive's newest segment 000000010000000000000003, archived then"));
}

#[test]
fn a_recovery_starts_at_the_backups_start_and_is_fed_only_on_this_machine() {
    let spec = RecoverySpec::default();
    let mut ready = prepared(base(Layout::Plain), Some(archive(Path::new("/wal"), 4)));
    let start = ready.recovery_start(&spec, None).unwrap();
    assert_eq!((start.start_lsn, start.timeline, start.segment_size), (0x2000028, 1, 16 * MIB));
    assert_eq!((start.segments_available, start.given_peak), (3, 3));
    assert_eq!(start.archive, Some(PathBuf::from("/wal")));
    assert!(start.feeder.is_none() && start.archive_end.is_some());

    let archive = ready.archive.clone().unwrap();
    ready.feed = Some(Feed::new(&archive, SYSTEM, Some(256 * MIB), None, None));
    let error = ready.recovery_start(&spec, None).err().unwrap();
    assert_eq!(
        error.to_string(),
        "the target's data directory is not on this machine: its archived WAL cannot be given to it"
    );
}

#[test]
fn the_passphrases_that_do_not_open_a_repository_are_counted() {
    let one = PrepareError::Passphrases { total: 2, failed: vec!["$B: wrong".into()], opened: vec!["$A".into()] };
    assert_eq!(
        one.to_string(),
        "1 of the 2 passphrases does not open the encrypted repository: $B: wrong (it opens with $A)"
    );
    let all =
        PrepareError::Passphrases { total: 2, failed: vec!["$A: wrong".into(), "$B: wrong".into()], opened: vec![] };
    assert_eq!(all.to_string(), "2 of the 2 passphrases do not open the encrypted repository: $A: wrong; $B: wrong");
}

/// A full pgBackRest set of 1000 files of system [`SYSTEM`], with these tablespaces: the
/// physical tests' one example (`prepare`'s tests too).
pub(super) fn pgbackrest_set(tablespaces: Vec<u32>) -> pgbackrest::Set {
    pgbackrest::Set {
        stanza: "main".into(),
        label: "20260301-020000F".into(),
        kind: "full".into(),
        major: 17,
        system_id: SYSTEM,
        archive_start: "000000010000000000000002".into(),
        archive_stop: "000000010000000000000002".into(),
        lsn_start: "0/2000028".into(),
        lsn_stop: "0/2000138".into(),
        started: None,
        stopped: None,
        archive_id: "17-1".into(),
        files: 1000,
        tablespaces,
        sets: 1,
        oldest: true,
    }
}
