//! The record's tests: phases by name and order, the failure summary, the checks' tally, the
//! backup's age, and `drill.json` read back as written.

use std::time::Instant;

use time::macros::datetime;

use super::*;
use crate::outcome::CheckKind;

fn record() -> DrillRecord {
    let scenario = ScenarioInfo { name: "orders".into(), ..ScenarioInfo::default() };
    DrillRecord::new("d1".into(), scenario, RunnerInfo::default(), datetime!(2026-03-01 12:00 UTC))
}

fn check(kind: CheckKind, object: &str, verdict: Verdict) -> CheckResult {
    let built = CheckResult::build(kind, object, Instant::now()).expected("42").actual("41");
    match verdict {
        Verdict::Pass => built.verdict(true, "same"),
        Verdict::Fail => built.verdict(false, "one row short"),
        Verdict::Error => built.error("cannot count"),
        Verdict::Skipped => built.skip("not run"),
    }
}

fn phase(phase: Phase, status: PhaseStatus, error: Option<&str>) -> PhaseRecord {
    PhaseRecord {
        phase,
        status,
        started_at: None,
        duration: Duration::ZERO,
        summary: String::new(),
        error: error.map(str::to_owned),
        inconclusive: false,
    }
}

/// `ALL` is the order the phases run in, which is also their order as values, and each
/// is written in `drill.json` by the name `as_str` gives it.
#[test]
fn phases_are_listed_in_running_order_and_written_by_their_names() {
    let mut sorted = Phase::ALL;
    sorted.sort();
    assert_eq!(sorted, Phase::ALL);
    assert_eq!(Phase::ALL.first(), Some(&Phase::Resolve));
    assert_eq!(Phase::ALL.last(), Some(&Phase::Teardown));
    for phase in Phase::ALL {
        assert_eq!(serde_json::to_value(phase).unwrap(), serde_json::json!(phase.as_str()));
        assert_eq!(phase.to_string(), phase.as_str());
        let back: Phase = serde_json::from_value(serde_json::json!(phase.as_str())).unwrap();
        assert_eq!(back, phase);
    }
    assert!(serde_json::from_value::<Phase>(serde_json::json!("Checks")).is_err(), "names are lowercase");
}

#[test]
fn the_failure_summary_names_the_first_failure_the_failed_phases_and_the_checks_that_did_not_pass() {
    let mut record = record();
    record.verdict = DrillVerdict::Fail;
    record.failure = Some("restore failed at line 12\nthe statement: CREATE TABLE t ()".into());
    record.phases = vec![
        phase(Phase::Verify, PhaseStatus::Passed, None),
        phase(Phase::Restore, PhaseStatus::Failed, Some("dump line 12: syntax error")),
        phase(Phase::Checks, PhaseStatus::Skipped, Some("stopped: an earlier phase failed")),
        phase(Phase::Teardown, PhaseStatus::Interrupted, None),
    ];
    record.checks = vec![
        check(CheckKind::RowCounts, "public.a", Verdict::Pass),
        check(CheckKind::RowCounts, "public.b", Verdict::Fail),
        check(CheckKind::Extensions, "vector", Verdict::Skipped),
        check(CheckKind::Sql, "orders", Verdict::Error),
    ];
    assert_eq!(
        record.failure_summary(),
        "drill `orders`: FAIL (restore failed at line 12)\n  \
         phase restore: dump line 12: syntax error\n  \
         phase teardown: failed\n  \
         fail row_counts/public.b: expected 42, actual 41 (one row short)\n  \
         error sql/orders: expected 42, actual 41 (cannot count)"
    );
}

#[test]
fn a_passing_drill_is_summarised_in_one_line() {
    let mut record = record();
    record.verdict = DrillVerdict::Pass;
    record.phases = vec![phase(Phase::Restore, PhaseStatus::Passed, None)];
    record.checks = vec![check(CheckKind::RowCounts, "public.a", Verdict::Pass)];
    assert_eq!(record.failure_summary(), "drill `orders`: PASS");
}

#[test]
fn the_checks_tally_counts_each_verdict_and_says_when_none_ran() {
    let mut record = record();
    assert_eq!(record.checks_tally(), "no checks");
    assert_eq!(record.check_counts(), (0, 0));
    record.checks = (0..3).map(|i| check(CheckKind::Sql, &format!("q{i}"), Verdict::Skipped)).collect();
    assert_eq!(record.checks_tally(), "none of its 3 checks ran");
    record.checks = vec![
        check(CheckKind::Sql, "a", Verdict::Pass),
        check(CheckKind::Sql, "b", Verdict::Pass),
        check(CheckKind::Sql, "c", Verdict::Fail),
        check(CheckKind::Sql, "d", Verdict::Error),
        check(CheckKind::Sql, "e", Verdict::Skipped),
    ];
    assert_eq!(record.checks_tally(), "2 of 5 checks passed, 1 failed, 1 could not run, 1 skipped");
    assert_eq!(record.check_counts(), (2, 3));
    record.checks.truncate(2);
    assert_eq!(record.checks_tally(), "2 of 2 checks passed");
}

#[test]
fn the_backup_age_runs_from_when_it_was_taken_to_the_drill_start() {
    let mut record = record();
    assert_eq!(record.backup_age(), None, "no backup");
    record.backup = Some(BackupInfo::default());
    assert_eq!(record.backup_age(), None, "a backup that does not say when it was taken");
    record.backup.as_mut().unwrap().taken_at = Some(datetime!(2026-03-01 09:30 UTC));
    assert_eq!(record.backup_age(), Some(Duration::from_secs(150 * 60)));
    // A clock ahead of the drill's is no negative age.
    record.backup.as_mut().unwrap().taken_at = Some(datetime!(2026-03-01 12:05 UTC));
    assert_eq!(record.backup_age(), Some(Duration::ZERO));
}

/// `drill.json`'s field names (durations in milliseconds), the fields left out while they say
/// nothing, and the record read back as written.
#[test]
fn the_record_round_trips_through_drill_json() {
    let mut record = record();
    record.duration = Duration::from_millis(1500);
    record.recovery = Some(Duration::from_millis(900));
    record.phases = vec![phase(Phase::Restore, PhaseStatus::Passed, None)];
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["schema"], RECORD_SCHEMA);
    assert_eq!(json["started_at"], "2026-03-01T12:00:00Z");
    assert_eq!(json["duration_ms"], 1500);
    assert_eq!(json["recovery_ms"], 900);
    assert_eq!(json["verdict"], "running");
    assert_eq!(json["phases"][0]["status"], "passed");
    for absent in ["rto_passed", "kept", "clone_of", "signature"] {
        assert!(json.get(absent).is_none(), "`{absent}` is written only when it says something");
    }
    record.rto_passed = true;
    record.signature = Some(SignatureInfo {
        signed_by: Some("SHA256:abc".into()),
        algorithm: Some("ssh-ed25519".into()),
        namespace: "pgdrill".into(),
        statement: "evidence.intoto.json".into(),
        signature: Some("evidence.intoto.json.sig".into()),
        unsigned: None,
    });
    let text = serde_json::to_string(&record).unwrap();
    assert!(text.contains("\"rto_passed\":true"), "{text}");
    let back: DrillRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back.started_at, record.started_at);
    assert_eq!(back.recovery, Some(Duration::from_millis(900)));
    assert!(back.rto_passed);
    assert_eq!(back.signature, record.signature);
    assert_eq!(back.phase(Phase::Restore).map(|p| p.status), Some(PhaseStatus::Passed));
    assert!(back.phase(Phase::Checks).is_none());
}

/// A record of an older pgdrill, without the fields added since, still reads.
#[test]
fn a_record_without_the_later_fields_reads() {
    let json = serde_json::json!({
        "schema": RECORD_SCHEMA, "drill_id": "d1",
        "scenario": {"name": "s", "description": null, "file": "s.toml", "sha256": "", "tags": []},
        "runner": {"user": "u", "host": "h", "pgdrill_version": "0.1.0", "os": "linux/x86_64", "ci": null},
        "started_at": "2026-03-01T12:00:00Z", "duration_ms": 10, "verdict": "pass", "failure": null,
        "backup": null, "target": null, "preflight": null, "restore": null, "phases": [], "checks": []
    });
    let record: DrillRecord = serde_json::from_value(json).unwrap();
    assert_eq!(record.verdict, DrillVerdict::Pass);
    assert_eq!((record.finished_at, record.recovery, record.rto_passed), (None, None, false));
    assert!(record.migrate.is_none() && record.app.is_none() && record.usage.is_none());
}

#[test]
fn this_process_usage_is_read_from_proc() {
    let usage = ProcessUsage::now().expect("Linux has /proc/self/status and /proc/self/stat");
    assert!(usage.peak_rss_bytes > 0 && usage.peak_rss_bytes.is_multiple_of(1024), "{usage:?}");
    assert!(usage.cpu_ms.is_multiple_of(10), "clock ticks of 10 ms: {usage:?}");
}
