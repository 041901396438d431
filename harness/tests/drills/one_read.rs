//! One read of a plain dump: the restore's read verifies it, and the verdict waits for that
//! verification. A dump whose fault is past its head (its end marker gone, a meta-command or
//! damaged bytes at its tail, another digest than the scenario's) has rows restored before the
//! fault is read, and still ends in FAIL naming why, with its restore not trusted and no check
//! run on it. `--verify-first` (or `[source] verify = "first"`) reads it whole before any of
//! its SQL runs, and says so.

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};
use rstest::rstest;

use crate::util::{Drill, Scratch, gzip, pg15_dump};

/// A dump of one table with enough rows that its head (the statements before the rows) is a
/// small part of it; `tail` goes after the rows.
fn dump(tail: &str) -> String {
    let rows: String = (1..=20_000).map(|i| format!("{i}\titem number {i}\n")).collect();
    pg15_dump(&format!(
        "CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);\n\n\
         COPY public.items (id, name) FROM stdin;\n{rows}\\.\n\n{tail}"
    ))
}

fn drill(scratch: &Scratch, name: &str, bytes: Vec<u8>, extra: &str, args: &[&str]) -> Drill {
    scratch.write(name, bytes);
    let scenario = scratch.scenario(
        &format!("{name}.toml"),
        &format!("[source]\npath = \"{name}\"\n{extra}[checks.row_counts]\nexpect_from_dump = true\n"),
    );
    scratch.drill_with(&scenario, &args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
}

/// When a phase ended, from the record.
fn ended(drill: &Drill, phase: Phase) -> time::OffsetDateTime {
    let record = drill.record().phase(phase).unwrap_or_else(|| panic!("no {phase} phase\n{drill:?}"));
    record.started_at.expect("started") + record.duration
}

fn started(drill: &Drill, phase: Phase) -> time::OffsetDateTime {
    drill.record().phase(phase).and_then(|p| p.started_at).unwrap_or_else(|| panic!("{phase} started\n{drill:?}"))
}

#[test]
fn a_good_dump_is_verified_by_its_restores_read_and_verify_first_reads_it_before() {
    let scratch = Scratch::new();
    let text = dump("");
    let one = drill(&scratch, "items.sql.gz", gzip(&text), "", &[]);
    assert_eq!(one.record().verdict, DrillVerdict::Pass, "{one:?}");
    assert!(one.phase_summary(Phase::Verify).contains("read once, by its restore"), "{one:?}");
    // The verdict came from the restore's read: verify ended once the restore had read it all.
    assert!(ended(&one, Phase::Verify) > started(&one, Phase::Restore), "{one:?}");
    assert!(one.phase_summary(Phase::Restore).contains("20000 rows"), "{one:?}");

    let first = drill(&scratch, "items.sql.gz", gzip(&text), "", &["--verify-first"]);
    assert_eq!(first.record().verdict, DrillVerdict::Pass, "{first:?}");
    assert!(first.phase_summary(Phase::Verify).contains("read whole before its restore"), "{first:?}");
    assert!(ended(&first, Phase::Verify) <= started(&first, Phase::Preflight), "{first:?}");
}

#[rstest]
#[case::end_marker_gone("end marker gone", "without pg_dump's `-- PostgreSQL database dump complete` marker")]
#[case::meta_command_at_the_tail("meta-command at the tail", "the meta-command `\\!` is refused")]
#[case::another_digest("another digest", "sha256 mismatch")]
#[case::cut_short("cut short", "truncated")]
fn a_fault_past_the_head_fails_the_drill_after_its_rows_were_restored(#[case] case: &str, #[case] says: &str) {
    let scratch = Scratch::new();
    let marker = scratch.path("the-tail-ran");
    let (bytes, extra) = match case {
        "end marker gone" => {
            let text = dump("");
            let cut = text.find("--\n-- PostgreSQL database dump complete").expect("marker");
            (gzip(&text[..cut]), String::new())
        }
        "meta-command at the tail" => (gzip(&dump(&format!("\\! touch {}\n", marker.display()))), String::new()),
        "another digest" => (gzip(&dump("")), format!("sha256 = \"{}\"\n", "ab".repeat(32))),
        "cut short" => {
            let bytes = gzip(&dump(""));
            (bytes[..bytes.len() * 9 / 10].to_vec(), String::new())
        }
        other => panic!("no case {other}"),
    };
    let failed = drill(&scratch, "items.sql.gz", bytes.clone(), &extra, &[]);
    failed.assert_failed_cleanly();
    assert_eq!(failed.phase(Phase::Verify), PhaseStatus::Failed, "{case}: {failed:?}");
    let error = failed.phase_error(Phase::Verify);
    assert!(error.contains(says), "{case}: expected `{says}` in: {error}");
    // Its rows went in before the fault was read; the restore is not trusted for it.
    assert_eq!(failed.phase(Phase::Restore), PhaseStatus::Failed, "{case}: {failed:?}");
    assert!(started(&failed, Phase::Restore) < ended(&failed, Phase::Verify), "{case}: {failed:?}");
    assert_eq!(failed.phase(Phase::Checks), PhaseStatus::Skipped, "{case}: {failed:?}");
    assert!(!marker.exists(), "{case}: no meta-command of a dump ever runs");

    // Verify first: the same fault fails before any of its SQL runs.
    let first = drill(&scratch, "items.sql.gz", bytes, &extra, &["--verify-first"]);
    first.assert_failed_cleanly();
    assert!(first.phase_error(Phase::Verify).contains(says), "{case}: {first:?}");
    assert_eq!(first.phase(Phase::Restore), PhaseStatus::Skipped, "{case}: {first:?}");
}
