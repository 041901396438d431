//! Physical restores reused: `run --snapshot` keeps a passing recovery of a base backup as a
//! snapshot keyed by what the recovery consumed; `run --reuse` clones it, without verifying or
//! recovering again, while the backup and the archived segments it replayed are unchanged. A
//! recovery to a point in time is still served once the archive grew past that point; a
//! recovery to the archive's end is not (the new WAL must be replayed); a replayed segment
//! changed in content, or another target, recovers again.

use std::path::Path;

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::physical::{PhysicalSource, copy_folder as copy, scenario_of};
use crate::source_server::{wait_archived, whole_segment};
use crate::util::{Drill, Scratch};

/// Copies the segments archived since into `archive`, once `segment` is (whole: the archive
/// command writes it in place).
fn archive_more(source: &PhysicalSource, archive: &Path, segment: &str) {
    wait_archived(&source.archive(), segment);
    for entry in std::fs::read_dir(source.archive()).unwrap() {
        let entry = entry.unwrap();
        if !archive.join(entry.file_name()).exists() && whole_segment(&entry.path()) {
            std::fs::copy(entry.path(), archive.join(entry.file_name())).unwrap();
        }
    }
}

fn drill(scratch: &Scratch, store: &Path, scenario: &Path, args: &[&str]) -> Drill {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    scratch.drill_env(scenario, &args, &[("PGDRILL_SNAPSHOTS".into(), store.display().to_string())])
}

fn passed(drill: &Drill) {
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    drill.assert_reports_and_no_leftovers();
}

fn clone_of(drill: &Drill) -> Option<String> {
    drill.record().clone_of.as_ref().map(|of| of.drill_id.clone())
}

#[test]
fn a_recovery_is_cloned_while_what_it_replayed_is_unchanged_and_recovered_again_when_not() {
    let source = PhysicalSource::make();
    let scratch = Scratch::new();
    let store = scratch.path("snapshots");
    let backup = copy(&scratch, &source.backup(), "backup");
    let archive = copy(&scratch, &source.archive(), "archive");
    let at = format!("[recovery]\ntarget_time = \"{}\"", source.target_time);
    let pitr = scenario_of(&scratch, &backup, &archive, source.before, 0, &at);

    // The recovery to a point in time, kept.
    let first = drill(&scratch, &store, &pitr, &["--snapshot"]);
    passed(&first);
    assert_eq!(first.phase(Phase::Snapshot), PhaseStatus::Passed, "{first:?}");
    assert!(first.stdout.contains("kept snapshot "), "{first:?}");

    // Cloned: no verify of the backup, no recovery; the rows of the point in time.
    let clone = drill(&scratch, &store, &pitr, &["--reuse"]);
    passed(&clone);
    assert_eq!(clone_of(&clone).as_deref(), Some(first.record().drill_id.as_str()), "{clone:?}");
    let verify = clone.phase_summary(Phase::Verify);
    assert!(verify.contains("known: the backup's 3 files and the "), "{verify}");
    for phase in [Phase::Preflight, Phase::Restore] {
        assert_eq!(clone.phase(phase), PhaseStatus::Skipped, "{clone:?}");
        assert!(clone.phase_error(phase).contains("the database is a clone of snapshot"), "{clone:?}");
    }
    let sha256 = clone.record().backup.as_ref().map(|b| b.sha256.clone()).unwrap_or_default();
    assert_eq!(clone.record().clone_of.as_ref().map(|of| of.backup_sha256.clone()), Some(sha256));

    // The archive grew past the point in time: still that recovery.
    source.psql("INSERT INTO public.tail VALUES (2)").unwrap();
    let next = source.psql("SELECT pg_walfile_name(pg_switch_wal())").unwrap();
    archive_more(&source, &archive, next.trim());
    let grown = drill(&scratch, &store, &pitr, &["--reuse"]);
    passed(&grown);
    assert!(clone_of(&grown).is_some(), "the segments past the point in time were not read: {grown:?}");

    // To the archive's end, kept; then a segment more is replayed by a recovery, not cloned.
    let everything = scenario_of(&scratch, &backup, &archive, source.before, source.after, "");
    passed(&drill(&scratch, &store, &everything, &["--snapshot", "--reuse"]));
    let cloned = drill(&scratch, &store, &everything, &["--reuse"]);
    passed(&cloned);
    assert!(clone_of(&cloned).is_some(), "{cloned:?}");
    source.psql("INSERT INTO public.ledger (id, batch) VALUES (1000, 'after')").unwrap();
    let last = source.psql("SELECT pg_walfile_name(pg_switch_wal())").unwrap();
    archive_more(&source, &archive, last.trim());
    let more = scenario_of(&scratch, &backup, &archive, source.before, source.after + 1, "");
    let recovered = drill(&scratch, &store, &more, &["--reuse"]);
    passed(&recovered);
    assert_eq!(clone_of(&recovered), None, "the archive's new segment must be replayed: {recovered:?}");
    assert!(recovered.phase_summary(Phase::Restore).starts_with("recovered"), "{recovered:?}");

    // A replayed segment whose content changed (the same size) is not the recovery kept.
    let replayed = source.psql(&format!("SELECT pg_walfile_name('{}')", source.target_lsn)).unwrap();
    let changed = archive.join(replayed.trim());
    let mut bytes = std::fs::read(&changed).unwrap();
    let at = bytes.len() - 1;
    bytes[at] ^= 0xff;
    std::fs::write(&changed, bytes).unwrap();
    let after_change = drill(&scratch, &store, &pitr, &["--reuse"]);
    assert_eq!(clone_of(&after_change), None, "{after_change:?}");
    assert_ne!(after_change.phase_summary(Phase::Verify), verify, "{after_change:?}");
}
