//! Drills at once (`--jobs`): a folder of scenarios drilled two at a time, each leaving its
//! reports and its verdict, the exit code of the worst, the drills overlapping in time, each
//! console line labelled with its drill; and a target that can never fit the budget refused at
//! once while the others are drilled.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use pgdrill::outcome::{DrillRecord, DrillVerdict};
use time::OffsetDateTime;

use crate::util::{Scratch, containers_of, files_under, pg15_dump, root};

const ITEMS: &str = "CREATE TABLE public.items (id integer NOT NULL, name text);\n\
                     COPY public.items (id, name) FROM stdin;\n1\tone\n2\ttwo\n3\tthree\n\\.\n";

/// `scenarios/NAME.toml`: the three-row dump, with a row count of `rows`, and `more` (TOML).
fn scenario(scratch: &Scratch, name: &str, rows: u32, more: &str) {
    scratch.scenario(
        &format!("scenarios/{name}.toml"),
        &format!(
            "name = \"{name}\"\n[source]\npath = \"../items.sql\"\n{more}\
             [checks.row_counts.tables]\n\"public.items\" = {rows}\n"
        ),
    );
}

fn pgdrill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(args).current_dir(root()).output().expect("run pgdrill")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every drill.json under `reports`, by scenario.
fn records(reports: &Path) -> BTreeMap<String, DrillRecord> {
    files_under(reports)
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "drill.json"))
        .map(|f| {
            let record: DrillRecord = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            (record.scenario.name.clone(), record)
        })
        .collect()
}

/// When a drill's first phase started and its last one ended, by its phases' timestamps.
fn span(record: &DrillRecord) -> (OffsetDateTime, OffsetDateTime) {
    let timed: Vec<(OffsetDateTime, OffsetDateTime)> =
        record.phases.iter().filter_map(|p| p.started_at.map(|at| (at, at + p.duration))).collect();
    let start = timed.iter().map(|t| t.0).min().expect("timed phases");
    (start, timed.iter().map(|t| t.1).max().expect("timed phases"))
}

#[test]
fn two_at_a_time_each_drill_reports_and_the_worst_decides_the_exit() {
    let scratch = Scratch::new();
    scratch.write("items.sql", pg15_dump(ITEMS));
    scenario(&scratch, "jobs-one", 3, "");
    scenario(&scratch, "jobs-two", 3, "");
    scenario(&scratch, "jobs-wrong", 4, "");
    let (folder, reports, metrics) = (scratch.path("scenarios"), scratch.path("reports"), scratch.path("metrics"));
    let run = pgdrill(&[
        "run",
        &folder.display().to_string(),
        "--jobs",
        "2",
        "--reports",
        &reports.display().to_string(),
        "--metrics-dir",
        &metrics.display().to_string(),
    ]);
    let shown = text(&run);
    assert_eq!(run.status.code(), Some(1), "one drill failed: {shown}");
    let records = records(&reports);
    assert_eq!(
        records.keys().map(String::as_str).collect::<Vec<_>>(),
        ["jobs-one", "jobs-two", "jobs-wrong"],
        "{shown}"
    );
    let verdicts: Vec<DrillVerdict> = records.values().map(|r| r.verdict).collect();
    assert_eq!(verdicts, [DrillVerdict::Pass, DrillVerdict::Pass, DrillVerdict::Fail], "{shown}");
    for (name, record) in &records {
        assert!(containers_of(&record.drill_id).is_empty(), "{name}'s target removed");
        let limits =
            record.target.as_ref().and_then(|t| t.isolation.as_ref()).map(|i| i.limits.clone()).unwrap_or_default();
        assert!(limits.contains("2 drills at once (`--jobs 2`): the memory its share of"), "{name}: {limits}");
        assert!(metrics.join(format!("pgdrill-{name}.prom")).is_file(), "{name}'s metrics copied: {shown}");
    }
    // The first two started side by side: each began before the other ended.
    let (one, two) = (span(&records["jobs-one"]), span(&records["jobs-two"]));
    assert!(one.0 < two.1 && two.0 < one.1, "the drills overlap: {one:?} {two:?}\n{shown}");
    // Each console line names its drill; one summary table for all, in file order.
    let stderr = String::from_utf8_lossy(&run.stderr);
    let of = |drill: &str, says: &str| stderr.lines().any(|l| l.starts_with(drill) && l.contains(says));
    assert!(of("[jobs-one] ", "✔ restore") && of("[jobs-wrong] ", "FAIL  jobs-wrong"), "{shown}");
    let unlabelled: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("[jobs-")).collect();
    assert_eq!(unlabelled.len(), 1, "only the run's first line is no drill's: {unlabelled:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains("row_counts/public.items")).collect();
    assert_eq!(rows.len(), 3, "one table: {shown}");
    assert!(rows[0].contains("jobs-one") && rows[2].contains("jobs-wrong") && rows[2].contains("FAIL"), "{shown}");
    let verdict_lines: Vec<&str> = stdout.lines().filter(|l| l.contains(": drill `")).collect();
    assert_eq!(verdict_lines.len(), 3, "{shown}");
    assert!(verdict_lines[2].starts_with("FAIL: drill `jobs-wrong` did not pass"), "{shown}");
    assert_eq!(stdout.lines().last(), Some("3 drills run: 2 passed, 1 failed"), "{shown}");
}

#[test]
fn a_target_that_can_never_fit_the_budget_is_refused_at_once_and_the_others_drilled() {
    let scratch = Scratch::new();
    scratch.write("items.sql", pg15_dump(ITEMS));
    scenario(&scratch, "jobs-fits", 3, "");
    scenario(&scratch, "jobs-huge", 3, "[target]\nmemory = \"1000TB\"\n");
    let reports = scratch.path("reports");
    let run = pgdrill(&[
        "run",
        &scratch.path("scenarios").display().to_string(),
        "-j",
        "2",
        "--reports",
        &reports.display().to_string(),
    ]);
    let shown = text(&run);
    assert_eq!(run.status.code(), Some(1), "a refused drill fails the run: {shown}");
    let records = records(&reports);
    assert_eq!(records.keys().map(String::as_str).collect::<Vec<_>>(), ["jobs-fits"], "{shown}");
    assert_eq!(records["jobs-fits"].verdict, DrillVerdict::Pass, "{shown}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let said = "`[target] memory` asks for 1000.0 TiB, more than the";
    assert!(stderr.contains("error: not drilled: drill `jobs-huge`") && stderr.contains(said), "{shown}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("NOT DRILLED: drill `jobs-huge`") && stdout.contains("it can never fit"), "{shown}");
}
