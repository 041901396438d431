//! Nothing hangs, nothing fills the disk: a restore that never ends stops when the RTO has
//! passed (the RTO missed, "at least" it) or at the restore's deadline; a dump that writes more
//! than the target's disk limit stops when its data passes the limit, on the container and the
//! local target; a good backup under a disk limit still passes. Each drill tears its target
//! down and writes its reports.

use std::path::Path;
use std::time::{Duration, Instant};

use pgdrill::Verdict;
use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};
use rstest::rstest;

use crate::util::{Drill, Scratch, fixture, gzip};

const CONTAINER: &str = "[target]\n";
const LOCAL: &str = "[target]\nkind = \"local\"\nbin_dir = \"/usr/lib/postgresql/15/bin\"\n";

/// A plain dump as pg_dump 15 writes one (so that both targets take it), with `body` after a
/// table of data.
fn dump(body: &str) -> String {
    format!(
        "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.8\n-- Dumped by pg_dump version 15.8\n\n\
         SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n\
         SELECT pg_catalog.set_config('search_path', '', false);\n\n\
         CREATE TABLE public.accounts (id integer PRIMARY KEY, email text NOT NULL);\n\n\
         COPY public.accounts (id, email) FROM stdin;\n1\tada@example.org\n2\tgrace@example.org\n\\.\n\n\
         {body}\n\n\
         --\n-- PostgreSQL database dump complete\n--\n\n"
    )
}

/// A restore that never ends: the last statement sleeps for a day.
const NEVER_ENDS: &str = "SELECT pg_catalog.pg_sleep(100000);";

/// A statement that writes about 200 MB into a table.
const WRITES_200MB: &str = "CREATE TABLE public.big AS SELECT g, pg_catalog.repeat('x', 100) AS filler FROM pg_catalog.generate_series(1, 1500000) AS g;";

fn drill(scratch: &Scratch, body: &str, rest: &str) -> (Drill, Duration) {
    let backup = scratch.write("limits.sql", dump(body));
    let scenario = scratch.scenario("limits.toml", &format!("[source]\npath = \"{}\"\n{rest}", backup.display()));
    let started = Instant::now();
    let drill = scratch.drill(&scenario);
    (drill, started.elapsed())
}

/// When teardown started, from the drill's start.
fn teardown_at(drill: &Drill) -> Duration {
    let record = drill.record();
    let teardown = record.phase(Phase::Teardown).and_then(|p| p.started_at).expect("teardown ran");
    Duration::try_from(teardown - record.started_at).unwrap_or_default()
}

#[test]
fn a_restore_that_never_ends_stops_when_the_rto_has_passed_and_misses_it() {
    let scratch = Scratch::new();
    let (drill, took) = drill(&scratch, NEVER_ENDS, "[objectives]\nrto = \"20s\"\n");
    drill.assert_failed_cleanly();
    let record = drill.record();
    assert_eq!(record.verdict, DrillVerdict::Fail, "{drill:?}");
    assert!(record.rto_passed, "{drill:?}");
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("the RTO of 20s passed during the restore phase"), "{error}");
    let rto = record.checks.iter().find(|c| c.id == "objectives/rto").expect("the RTO judged");
    assert_eq!((rto.verdict, rto.actual.as_str()), (Verdict::Fail, "at least 20s"), "{drill:?}");
    assert!(drill.report("report.md").contains("at least 20s"), "{drill:?}");
    assert!(!drill.report("drill.json").contains("not measured"), "{drill:?}");
    let stop = teardown_at(&drill);
    eprintln!("RTO 20s: teardown started at {stop:?}, the drill ended after {took:?}");
    assert!(stop >= Duration::from_secs(20) && stop < Duration::from_secs(22), "teardown at {stop:?}");
    assert!(took < Duration::from_secs(40), "the drill took {took:?}");
}

#[test]
fn a_restore_past_its_deadline_fails_naming_the_phase_and_the_limit() {
    let scratch = Scratch::new();
    let (drill, took) = drill(&scratch, NEVER_ENDS, "[restore]\ntimeout = \"5s\"\n");
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Restore);
    assert!(
        error.contains("the restore phase passed its deadline of 5s") && error.contains("`[restore] timeout`"),
        "{error}"
    );
    assert!(drill.record().failure.as_deref().unwrap_or_default().contains("restore"), "{drill:?}");
    assert!(drill.record().checks.iter().all(|c| c.kind.as_str() != "objectives"), "no objectives, none judged");
    assert!(took < Duration::from_secs(30), "the drill took {took:?}");

    // A dump's target not started by provision's deadline says nothing of the dump: the drill
    // could not run (exit 3), and is tried again. On a physical backup's own data it is a
    // finding (physical.rs).
    let (drill, _) = self::drill(&scratch, NEVER_ENDS, "[target]\nprovision_timeout = \"1ms\"\n");
    assert_eq!(drill.code, Some(3), "{drill:?}");
    let error = drill.phase_error(Phase::Provision);
    assert!(error.starts_with("the provision phase passed its deadline of 1ms"), "{error}");
    drill.assert_reports_and_no_leftovers();
}

#[rstest]
fn a_dump_that_writes_past_the_disk_limit_fails_naming_it(#[values(CONTAINER, LOCAL)] target: &str) {
    let scratch = Scratch::new();
    let (drill, _) = drill(&scratch, WRITES_200MB, &format!("{target}disk = \"96MB\"\n"));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("the target's data passed its disk limit of 96MB"), "{error}");
    assert_eq!(drill.phase(Phase::Teardown), PhaseStatus::Passed, "{drill:?}");
    let id = &drill.record().drill_id;
    let left = [
        std::env::temp_dir().join(format!("pgdrill-{}-target", &id[..12])),
        std::env::temp_dir().join(format!("pgdrill-local-{id}")),
    ];
    assert!(left.iter().all(|dir| !Path::exists(dir)), "the target's data was left: {left:?}");
    let limits = drill.record().target.as_ref().and_then(|t| t.isolation.as_ref()).map(|i| i.limits.clone());
    assert!(limits.unwrap_or_default().contains("disk 96MB"), "{drill:?}");
}

#[test]
fn a_dump_twice_the_disk_limit_is_refused_before_its_restore_when_verified_first() {
    let scratch = Scratch::new();
    let row = format!("\t{}\n", "x".repeat(100));
    let rows: String = (0..1_400_000).map(|i| format!("{i}{row}")).collect();
    let body = format!(
        "CREATE TABLE public.big (id integer, filler text);\n\nCOPY public.big (id, filler) FROM stdin;\n{rows}\\.\n"
    );
    let backup = scratch.write("big.sql.gz", gzip(&dump(&body)));
    let scenario = scratch
        .scenario("limits.toml", &format!("[source]\npath = \"{}\"\n[target]\ndisk = \"64MB\"\n", backup.display()));
    // Verified first, the dump's size is known before its restore.
    let drill = scratch.drill_with(&scenario, &["--verify-first".to_owned()]);
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("the backup cannot fit in the target's disk limit of 64MB: the dump holds 1"), "{error}");
    let restore = drill.record().phase(Phase::Restore).expect("a restore phase");
    assert!(restore.duration < Duration::from_secs(2), "refused before restoring: {:?}", restore.duration);
    // Read once, a compressed dump's size is known only as it is restored: the disk limit stops it.
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("the target's data passed its disk limit of 64MB"), "{error}");
}

#[test]
fn a_good_backup_under_a_disk_limit_passes() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "plur.toml",
        &format!(
            "[source]\npath = \"{}\"\n[target]\ndisk = \"1GB\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n\
             [checks.row_counts]\nexpect_from_dump = true\n",
            fixture("plur.sql.gz").display()
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let settings = &drill.record().target.as_ref().expect("a target").settings;
    assert_eq!(settings.get("temp_file_limit").map(String::as_str), Some("1048576kB"), "{settings:?}");
    assert_eq!(settings.get("max_wal_size").map(String::as_str), Some("128MB"), "{settings:?}");
}
