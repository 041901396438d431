use std::time::Duration;

use serde_json::json;
use time::macros::datetime;

use super::{FlatVerdict, of, render};
use crate::outcome::{
    BackupInfo, CheckKind, CheckResult, DrillRecord, Phase, PhaseRecord, PhaseStatus, RunnerInfo, ScenarioInfo,
    SignatureInfo, TargetInfo, Verdict, finish,
};
use crate::report::console::Console;

fn check(kind: CheckKind, object: &str, verdict: Verdict) -> CheckResult {
    CheckResult {
        id: format!("{}/{object}", kind.as_str()),
        kind,
        object: object.into(),
        expected: String::new(),
        actual: String::new(),
        verdict,
        code: String::new(),
        message: String::new(),
        evidence: String::new(),
        duration: Duration::ZERO,
        trail: None,
    }
}

/// A drill of an existing server that passed, signed, in CI: an RTO met, no RPO, a backup that
/// does not say when it was taken.
fn passed() -> DrillRecord {
    let scenario = ScenarioInfo {
        name: "orders".into(),
        sha256: "ab".repeat(32),
        objectives: crate::objectives::Objectives { rto: Some(Duration::from_secs(600)), ..Default::default() },
        ..ScenarioInfo::default()
    };
    let runner = RunnerInfo {
        user: "ci".into(),
        host: "runner-1".into(),
        pgdrill_version: "0.1.0".into(),
        os: "linux/x86_64".into(),
        ci: Some("GitLab CI https://gitlab.example/jobs/7".into()),
    };
    let started = datetime!(2026-11-22 09:00:00 +01:00);
    let mut record = DrillRecord::new("0f".repeat(16), scenario, runner, started);
    record.backup = Some(BackupInfo {
        location: "s3://backups/orders.dump".into(),
        size_bytes: 1_048_576,
        sha256: "cd".repeat(32),
        ..BackupInfo::default()
    });
    record.target = Some(TargetInfo { kind: "server".into(), server_version: "17.2".into(), ..TargetInfo::default() });
    record.phases = [Phase::Fetch, Phase::Restore, Phase::Checks]
        .map(|phase| PhaseRecord {
            phase,
            status: PhaseStatus::Passed,
            started_at: Some(started),
            duration: Duration::ZERO,
            summary: String::new(),
            error: None,
            inconclusive: false,
        })
        .to_vec();
    record.recovery = Some(Duration::from_millis(83_250));
    record.checks =
        vec![check(CheckKind::Sql, "orders", Verdict::Pass), check(CheckKind::Objectives, "rto", Verdict::Pass)];
    record.signature = Some(SignatureInfo::signed_by("SHA256:pXyvLFn3wS9rWZ"));
    finish(&mut record, started + Duration::from_millis(95_500), false);
    record
}

#[test]
fn a_passing_drill_is_one_flat_object_each_unmeasured_value_null() {
    let record = passed();
    let flat = serde_json::to_value(of(&record)).unwrap();
    assert_eq!(
        flat,
        json!({
            "schema": "pgdrill.drill-record.v1",
            "drill_id": "0f".repeat(16),
            "scenario": "orders",
            "scenario_sha256": "ab".repeat(32),
            "verdict": "pass",
            "passed": true,
            "could_not_run": false,
            "control_held": null,
            // In UTC, whatever the offset the record holds.
            "started_at": "2026-11-22T08:00:00Z",
            "finished_at": "2026-11-22T08:01:35.5Z",
            "duration_seconds": 95.5,
            "recovery_seconds": 83.25,
            "rto_seconds": 600.0,
            "rto_met": true,
            "backup_location": "s3://backups/orders.dump",
            "backup_sha256": "cd".repeat(32),
            "backup_size_bytes": 1_048_576,
            "backup_taken_at": null,
            "backup_age_seconds": null,
            "backup_sampled": false,
            "rpo_seconds": null,
            "rpo_met": null,
            "checks_total": 2,
            "checks_passed": 2,
            "checks_failed": 0,
            "checks_skipped": 0,
            "failed_codes": "",
            "failure": null,
            "target_image": null,
            "target_server_version": "17.2",
            "signed_by": "SHA256:pXyvLFn3wS9rWZ",
            "pgdrill_version": "0.1.0",
            "runner_host": "runner-1",
            "runner_user": "ci",
            "ci": "GitLab CI https://gitlab.example/jobs/7",
        })
    );
    assert!(render(&record).ends_with("}\n"));
}

/// The report snapshots' drill: a check failed, both objectives met.
#[test]
fn a_failing_drill_says_why_in_a_line_and_counts_its_checks() {
    let (console, _) = Console::capturing(false);
    let record = crate::report::snapshots::drill(console);
    let flat = serde_json::to_value(of(&record)).unwrap();
    assert_eq!(
        flat,
        json!({
            "schema": "pgdrill.drill-record.v1",
            "drill_id": "d4c1".repeat(8),
            "scenario": "plur",
            "scenario_sha256": "5f0c".repeat(16),
            "verdict": "fail",
            "passed": false,
            "could_not_run": false,
            "control_held": null,
            "started_at": "2026-11-22T08:00:00Z",
            "finished_at": "2026-11-22T08:00:02.08Z",
            "duration_seconds": 2.08,
            "recovery_seconds": 1.72,
            "rto_seconds": 2700.0,
            "rto_met": true,
            "backup_location": "fixtures/backups/plur.sql.gz",
            "backup_sha256": "7516b6bd9380".repeat(5) + "abcd",
            "backup_size_bytes": 35_635,
            "backup_taken_at": "2026-11-21T23:00:00Z",
            "backup_age_seconds": 32400.0,
            "backup_sampled": false,
            "rpo_seconds": 93600.0,
            "rpo_met": true,
            "checks_total": 4,
            "checks_passed": 3,
            "checks_failed": 1,
            "checks_skipped": 0,
            "failed_codes": "row-counts.differs",
            "failure": "1 of 4 checks did not pass: row_counts/public.users (expected 40 rows, found 39 rows)",
            "target_image": "pgdrill/postgres:17-r3",
            "target_server_version": "17.11",
            "signed_by": null,
            "pgdrill_version": "0.1.0",
            "runner_host": "runner-7",
            "runner_user": "ci",
            "ci": null,
        })
    );
}

/// A drill that could not reach its backup: no verdict on it, nothing measured, and every
/// check that never ran counted as skipped, not failed.
#[test]
fn a_drill_that_could_not_run_says_so_and_measured_nothing() {
    let mut record = DrillRecord::new(
        "1".repeat(32),
        ScenarioInfo { name: "gone".into(), ..ScenarioInfo::default() },
        RunnerInfo::default(),
        datetime!(2026-11-22 08:00:00 UTC),
    );
    record.phases.push(PhaseRecord {
        phase: Phase::Fetch,
        status: PhaseStatus::Failed,
        started_at: None,
        duration: Duration::ZERO,
        summary: String::new(),
        error: Some("the bucket cannot be reached\nretried 3 times".into()),
        inconclusive: true,
    });
    record.checks.push(check(CheckKind::Sql, "orders", Verdict::Skipped));
    finish(&mut record, datetime!(2026-11-22 08:00:04 UTC), false);
    let flat = of(&record);
    assert_eq!((flat.verdict, flat.passed, flat.could_not_run), (FlatVerdict::Fail, false, true));
    assert_eq!(flat.failure.as_deref(), Some("fetch failed: the bucket cannot be reached"), "one line");
    assert_eq!((flat.checks_total, flat.checks_failed, flat.checks_skipped), (1, 0, 1));
    let value = serde_json::to_value(&flat).unwrap();
    for unmeasured in
        ["scenario_sha256", "recovery_seconds", "rto_met", "backup_location", "backup_size_bytes", "target_image"]
    {
        assert_eq!(value[unmeasured], serde_json::Value::Null, "{unmeasured}");
    }
}

/// An interrupted drill has no verdict on the backup: neither passed nor a drill that could not
/// run, its failure the interruption.
#[test]
fn an_interrupted_drill_is_neither_a_pass_nor_one_that_could_not_run() {
    let mut record = passed();
    record.verdict = crate::outcome::DrillVerdict::Running;
    record.phases.iter_mut().for_each(|p| p.status = PhaseStatus::Running);
    finish(&mut record, datetime!(2026-11-22 08:00:30 UTC), true);
    let flat = of(&record);
    assert_eq!((flat.verdict, flat.passed, flat.could_not_run), (FlatVerdict::Interrupted, false, false));
    assert_eq!(flat.failure.as_deref(), Some("interrupted during checks"));
    assert_eq!(serde_json::to_value(&flat).unwrap()["verdict"], "interrupted");
}

/// The schema requires every field the record writes but those added within v1 (which a record
/// written before them lacks), allows null exactly where the record may write it, and names the
/// format it is of.
#[test]
fn the_schema_requires_every_field_and_pins_the_format() {
    let schema = super::json_schema();
    let value = serde_json::to_value(of(&passed())).unwrap();
    let fields: Vec<&String> = value.as_object().unwrap().keys().collect();
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(fields.len(), required.len() + super::ADDED_IN_V1.len(), "{required:?}");
    let named = |f: &str| required.contains(&f) || super::ADDED_IN_V1.contains(&f);
    assert!(fields.iter().all(|f| named(f)), "{fields:?} {required:?}");
    assert!(super::ADDED_IN_V1.iter().all(|f| schema["properties"].get(f).is_some()), "{schema}");
    assert_eq!(schema["properties"]["schema"]["const"], super::SCHEMA);
    assert_eq!(schema["properties"]["verdict"]["enum"], json!(["pass", "fail", "interrupted"]));
    // Flat: no definitions to follow; and open, so a record of a later v1 (a field added)
    // passes an earlier v1 schema.
    assert!(schema.get("$defs").is_none() && schema.get("additionalProperties").is_none(), "{schema}");
    assert_eq!(schema["properties"]["started_at"]["type"], "string");
    assert_eq!(schema["properties"]["rto_met"]["type"], json!(["boolean", "null"]));
    for (name, property) in schema["properties"].as_object().unwrap() {
        assert!(property["description"].as_str().is_some_and(|d| !d.is_empty()), "{name} is not described");
    }
}
