use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::*;
use crate::outcome::history::tests::drill;
use crate::outcome::{BackupInfo, CheckKind, PhaseRecord, SignatureInfo};

const SLOWER: Slower = Slower { ratio: 0.25, floor: Duration::from_secs(10) };

fn phase(phase: Phase, status: PhaseStatus) -> PhaseRecord {
    PhaseRecord {
        phase,
        status,
        started_at: None,
        duration: Duration::ZERO,
        summary: String::new(),
        error: (status != PhaseStatus::Passed).then(|| "the archive ends before the backup's end".to_owned()),
        inconclusive: false,
    }
}

fn check(object: &str, verdict: Verdict) -> CheckResult {
    let built = CheckResult::build(CheckKind::RowCounts, object, Instant::now());
    match verdict {
        Verdict::Pass => built.verdict(true, "42 rows"),
        Verdict::Fail => built.verdict(false, "expected 42 rows, found 0"),
        Verdict::Error => built.error("relation does not exist"),
        Verdict::Skipped => built.skip("an earlier phase failed"),
    }
}

/// A drill of `books` that passed: verify and restore passed, two checks passed, recovered in
/// 40 s, of a backup taken at `taken`, signed.
fn passed(taken: i64) -> DrillRecord {
    let mut record = drill("books", "a");
    record.verdict = DrillVerdict::Pass;
    record.phases = vec![phase(Phase::Verify, PhaseStatus::Passed), phase(Phase::Restore, PhaseStatus::Passed)];
    record.checks = vec![check("public.orders", Verdict::Pass), check("public.ledger", Verdict::Pass)];
    record.recovery = Some(Duration::from_secs(40));
    record.backup = Some(BackupInfo {
        taken_at: Some(OffsetDateTime::from_unix_timestamp(taken).unwrap()),
        ..BackupInfo::default()
    });
    record.signature = Some(SignatureInfo::signed_by("SHA256:key"));
    record
}

fn said(found: &[Difference], worse: bool) -> Vec<String> {
    found.iter().filter(|d| d.worse == worse).map(|d| format!("{}: {}", d.about, d.said)).collect()
}

#[test]
fn the_same_proof_again_is_not_worse_and_a_newer_backup_or_a_little_slower_recovery_is_not_either() {
    let a = passed(1_800_000_000);
    let mut b = passed(1_800_086_400);
    b.recovery = Some(Duration::from_secs(49));
    assert_eq!(compare(&a, &b, SLOWER), []);
    // A quarter slower, but by less than the floor: the machine's load.
    let (mut quick, mut slow) = (passed(1), passed(1));
    quick.recovery = Some(Duration::from_secs(4));
    slow.recovery = Some(Duration::from_secs(12));
    assert_eq!(compare(&quick, &slow, SLOWER), []);
}

#[test]
fn a_check_that_passed_and_fails_is_skipped_or_is_gone_is_worse_each_named() {
    let a = passed(1);
    let mut b = passed(1);
    b.verdict = DrillVerdict::Fail;
    b.checks = vec![check("public.orders", Verdict::Fail)];
    let found = compare(&a, &b, SLOWER);
    assert_eq!(
        said(&found, true),
        [
            "verdict: the verdict was pass and is fail",
            "check: check row_counts/public.ledger passed and is not run",
            "check: check row_counts/public.orders passed and is fail: expected 42 rows, found 0",
        ]
    );
    let mut skipped = passed(1);
    skipped.checks[1] = check("public.ledger", Verdict::Skipped);
    let found = compare(&a, &skipped, SLOWER);
    assert_eq!(
        said(&found, true),
        ["check: check row_counts/public.ledger passed and is skipped: an earlier phase failed"]
    );
    // The other way round, it is better, and said so.
    assert_eq!(said(&compare(&b, &a, SLOWER), false).len(), 3, "{:?}", compare(&b, &a, SLOWER));
    assert!(said(&compare(&b, &a, SLOWER), true).is_empty());
}

#[test]
fn a_new_check_that_fails_is_worse_even_when_a_failed_too() {
    let mut a = passed(1);
    a.verdict = DrillVerdict::Fail;
    a.checks[0] = check("public.orders", Verdict::Fail);
    let mut b = a.clone();
    b.checks.push(check("public.audit", Verdict::Error));
    assert_eq!(
        said(&compare(&a, &b, SLOWER), true),
        ["check: check row_counts/public.audit not run and is error: relation does not exist"]
    );
}

#[test]
fn a_sampled_older_backup_is_not_a_worse_one() {
    let a = passed(1_800_000_000);
    let mut b = passed(1_799_000_000);
    let at = |t| OffsetDateTime::from_unix_timestamp(t).ok();
    let inputs = crate::outcome::DrawInputs {
        scenario: "books".into(),
        day: time::macros::date!(2027 - 01 - 15),
        within: ("30d".into(), Duration::from_secs(30 * 86_400)),
        listed_in: "backups".into(),
        listed: vec![
            crate::outcome::ListedBackup::new("books-old.dump".into(), 1, at(1_799_000_000)),
            crate::outcome::ListedBackup::new("books-new.dump".into(), 1, at(1_800_000_000)),
        ],
        seed: None,
    };
    b.sample = Some(crate::outcome::SamplePlan::draw(inputs, str::to_owned).unwrap());
    let found = compare(&a, &b, SLOWER);
    assert_eq!(said(&found, true), Vec::<String>::new());
    assert_eq!(
        said(&found, false),
        [
            "backup: B drilled an older backup on purpose, sampled from a window (plan.json): taken at 2027-01-03T18:13:20Z, before A's, taken at 2027-01-15T08:00:00Z"
        ]
    );
}

#[test]
fn a_phase_that_passed_and_did_not_a_slower_recovery_an_older_backup_and_unsigned_evidence_are_worse() {
    let a = passed(1_800_000_000);
    let mut b = passed(1_799_000_000);
    b.phases[0] = phase(Phase::Verify, PhaseStatus::Skipped);
    b.recovery = Some(Duration::from_secs(61));
    b.signature = None;
    let found = said(&compare(&a, &b, SLOWER), true);
    assert_eq!(
        found,
        [
            "phase: phase verify passed and is skipped: the archive ends before the backup's end",
            "recovery: recovery took 40.0 s and takes 61.0 s (+52%), past +25% and 10.0 s",
            "backup: B drilled a backup taken at 2027-01-03T18:13:20Z, before A's, taken at 2027-01-15T08:00:00Z",
            "evidence: A's evidence is signed by SHA256:key, and B's is not",
        ]
    );
}
