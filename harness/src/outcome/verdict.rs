//! The one place that decides a drill's verdict: closing the record when the drill ends, the
//! recovery objectives judged against what was measured, and why it failed in a line.

use std::time::Duration;

use time::OffsetDateTime;

use super::check::{CheckResult, Verdict};
use super::record::{DrillRecord, DrillVerdict, Phase, PhaseRecord, PhaseStatus, ProcessUsage};

/// Whether the record as it stands passes: no phase failed or was interrupted, and every check
/// (the recovery objectives' among them, once judged) passed. The one rule of a drill's verdict:
/// `finish` decides it with this when the record closes, and `--keep on-failure` reads it
/// before teardown.
pub fn passes(record: &DrillRecord) -> bool {
    !record.phases.iter().any(|p| matches!(p.status, PhaseStatus::Failed | PhaseStatus::Interrupted))
        && record.checks.iter().all(|c| c.verdict == Verdict::Pass)
}

/// The recovery objectives judged against what the drill measured: a check each.
pub(crate) fn objectives(record: &DrillRecord) -> Vec<CheckResult> {
    let measured = super::objectives::Measured {
        recovery: record.recovery,
        rto_passed: record.rto_passed,
        cloned: record.clone_of.as_ref().map(|c| c.drill_id.as_str()),
        backup: record.backup.as_ref(),
        sampled: record.sample.is_some(),
        started_at: record.started_at,
    };
    super::objectives::judge(&record.scenario.objectives, &measured)
}

/// Whether a drill that failed could not run: every phase that failed failed for a reason that
/// says nothing about the backup (`PhaseRecord::inconclusive`: the backup could not be reached,
/// the target could not start, teardown, or such a phase's deadline passed), and no check or
/// objective failed or erred. Such a drill has no verdict on the backup, and may pass when run
/// again (exit code 3); a drill that found anything wrong with the backup failed (exit code 1),
/// whatever else went wrong.
pub fn could_not_run(record: &DrillRecord) -> bool {
    let failed: Vec<&PhaseRecord> = record.phases.iter().filter(|p| p.status == PhaseStatus::Failed).collect();
    record.verdict == DrillVerdict::Fail
        && !failed.is_empty()
        && failed.iter().all(|p| p.inconclusive)
        && !record.checks.iter().any(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
}

/// A negative control's drill (`[control] fails_in`) holds when it failed in that phase first,
/// for what it found there (not a drill that could not run); `None` for a drill that is no
/// control. A control that passed, or failed elsewhere, is broken: drills may not catch what
/// it stands for.
pub fn control_held(record: &DrillRecord) -> Option<bool> {
    let fails_in = record.scenario.control?;
    let first_failed = record.phases.iter().find(|p| p.status == PhaseStatus::Failed).map(|p| p.phase);
    Some(record.verdict == DrillVerdict::Fail && !could_not_run(record) && first_failed == Some(fails_in))
}

/// Whether a drill ran to a verdict on the backup: it passed, or failed for what it found (not
/// interrupted, and not a drill that could not run). The drill's verdict as its record or its
/// history line writes it.
pub fn ran_to_a_verdict(verdict: &str, could_not_run: bool) -> bool {
    verdict == DrillVerdict::Pass.as_str() || (verdict == DrillVerdict::Fail.as_str() && !could_not_run)
}

/// Closes the record: running phases were interrupted, phases that never ran are skipped with
/// the reason, and the verdict is decided. Only a drill where every phase passed and every
/// check passed is a pass.
pub(crate) fn finish(record: &mut DrillRecord, at: OffsetDateTime, interrupted: bool) {
    record.finished_at = Some(at);
    record.usage = ProcessUsage::now();
    record.duration = (at - record.started_at).try_into().unwrap_or_default();
    for p in record.phases.iter_mut().filter(|p| p.status == PhaseStatus::Running) {
        p.status = PhaseStatus::Interrupted;
        p.error = Some("interrupted".into());
        if let Some(started) = p.started_at {
            p.duration = (at - started).try_into().unwrap_or_default();
        }
    }
    // Of the phases an interruption stopped (verify, reading a dump in one pass with its
    // restore, runs beside it), the one the drill had got to: the last started.
    let interrupted_in =
        record.phases.iter().filter(|p| p.status == PhaseStatus::Interrupted).max_by_key(|p| (p.started_at, p.phase));
    let first_failure = interrupted_in
        .or_else(|| record.phases.iter().filter(|p| p.status == PhaseStatus::Failed).min_by_key(|p| p.phase))
        .cloned();
    let reason = match (&first_failure, interrupted) {
        (_, true) => "the drill was interrupted".to_owned(),
        (Some(f), _) => format!("{} failed", f.phase),
        (None, _) => "not reached".to_owned(),
    };
    for phase in Phase::ALL {
        // A drill that keeps no snapshot has no such phase to skip.
        if record.phase(phase).is_none() && phase != Phase::Snapshot {
            record.phases.push(PhaseRecord {
                phase,
                status: PhaseStatus::Skipped,
                started_at: None,
                duration: Duration::ZERO,
                summary: String::new(),
                error: Some(format!("skipped: {reason}")),
                inconclusive: false,
            });
        }
    }
    record.phases.sort_by_key(|p| p.phase);
    let failed_checks: Vec<&CheckResult> = record.checks.iter().filter(|c| c.verdict != Verdict::Pass).collect();
    record.verdict = if interrupted {
        DrillVerdict::Interrupted
    } else if passes(record) {
        DrillVerdict::Pass
    } else {
        DrillVerdict::Fail
    };
    let describe = |c: &&CheckResult| match c.verdict {
        Verdict::Fail => format!("{} (expected {}, found {})", c.id, c.expected, c.actual),
        _ => format!("{} ({})", c.id, c.message),
    };
    let checks_failure = || {
        format!(
            "{} of {} checks did not pass: {}",
            failed_checks.len(),
            record.checks.len(),
            failed_checks.iter().map(describe).collect::<Vec<_>>().join("; ")
        )
    };
    let failure = match &first_failure {
        _ if record.verdict == DrillVerdict::Pass => None,
        Some(f) if f.status == PhaseStatus::Interrupted => Some(format!("interrupted during {}", f.phase)),
        Some(f) if f.phase == Phase::Checks && !failed_checks.is_empty() => Some(checks_failure()),
        Some(f) => Some(format!("{} failed: {}", f.phase, f.error.as_deref().unwrap_or("unknown error"))),
        None if interrupted => Some("the drill was interrupted".into()),
        None => Some(checks_failure()),
    };
    record.failure = failure;
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::outcome::{CheckKind, RunnerInfo, ScenarioInfo};

    fn phase(phase: Phase, status: PhaseStatus, inconclusive: bool) -> PhaseRecord {
        PhaseRecord {
            phase,
            status,
            started_at: None,
            duration: Duration::ZERO,
            summary: String::new(),
            error: (status == PhaseStatus::Failed).then(|| "it failed".to_owned()),
            inconclusive,
        }
    }

    /// A drill whose phases ended as given, closed.
    fn drill(phases: &[(Phase, PhaseStatus, bool)], checks: &[Verdict]) -> DrillRecord {
        let at = OffsetDateTime::UNIX_EPOCH;
        let mut record = DrillRecord::new("d1".into(), ScenarioInfo::default(), RunnerInfo::default(), at);
        record.phases = phases.iter().map(|&(p, status, inconclusive)| phase(p, status, inconclusive)).collect();
        for (n, verdict) in checks.iter().enumerate() {
            let built = CheckResult::build(CheckKind::Sql, format!("q{n}"), Instant::now());
            record.checks.push(match verdict {
                Verdict::Pass => built.verdict(true, "ok"),
                Verdict::Fail => built.verdict(false, "one row short"),
                Verdict::Error => built.error("cannot count"),
                Verdict::Skipped => built.skip("an earlier phase failed"),
            });
        }
        finish(&mut record, at, false);
        record
    }

    use PhaseStatus::{Failed, Passed};

    /// The objectives are judged once, into the record, before teardown: what `--keep
    /// on-failure` reads then ([`passes`]) is what the closed record's verdict says.
    #[test]
    fn an_objective_missed_fails_the_record_as_it_stands_and_as_it_closes() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let rto = crate::objectives::Objectives { rto: Some(Duration::from_secs(1)), ..Default::default() };
        let scenario = ScenarioInfo { objectives: rto, ..ScenarioInfo::default() };
        let mut record = DrillRecord::new("d1".into(), scenario, RunnerInfo::default(), at);
        record.phases = vec![phase(Phase::Restore, Passed, false), phase(Phase::Checks, Passed, false)];
        record.recovery = Some(Duration::from_secs(5));
        assert!(passes(&record), "nothing judged yet");
        let judged = objectives(&record);
        record.checks.extend(judged);
        assert!(!passes(&record), "recovered in 5 s, over an RTO of 1 s: {:?}", record.checks);
        finish(&mut record, at, false);
        assert_eq!(record.verdict, DrillVerdict::Fail);
        assert!(record.failure.as_deref().is_some_and(|f| f.contains("objectives/rto")), "{:?}", record.failure);
        record.recovery = Some(Duration::from_millis(500));
        record.checks = objectives(&record);
        assert!(passes(&record), "within the RTO: {:?}", record.checks);
    }

    #[test]
    fn a_drill_that_failed_only_where_nothing_is_said_of_the_backup_could_not_run() {
        let unreachable = drill(&[(Phase::Resolve, Passed, false), (Phase::Fetch, Failed, true)], &[Verdict::Skipped]);
        assert_eq!(unreachable.verdict, DrillVerdict::Fail, "it is no pass");
        assert!(could_not_run(&unreachable), "the backup could not be reached");
        let no_target = drill(
            &[(Phase::Fetch, Passed, false), (Phase::Verify, Passed, false), (Phase::Provision, Failed, true)],
            &[],
        );
        assert!(could_not_run(&no_target), "the target could not start");
        let teardown = drill(
            &[(Phase::Restore, Passed, false), (Phase::Checks, Passed, false), (Phase::Teardown, Failed, true)],
            &[Verdict::Pass],
        );
        assert!(could_not_run(&teardown), "everything passed but the target's removal");
    }

    #[test]
    fn a_drill_that_found_anything_wrong_with_the_backup_failed() {
        let missing = drill(&[(Phase::Fetch, Failed, false)], &[]);
        assert!(!could_not_run(&missing), "a backup that is not there is a finding");
        let broken_and_no_target = drill(
            &[(Phase::Fetch, Passed, false), (Phase::Verify, Failed, false), (Phase::Provision, Failed, true)],
            &[],
        );
        assert!(!could_not_run(&broken_and_no_target), "the backup failed verify, whatever the target did");
        let failed_check = drill(
            &[(Phase::Restore, Passed, false), (Phase::Checks, Failed, false), (Phase::Teardown, Failed, true)],
            &[Verdict::Fail],
        );
        assert!(!could_not_run(&failed_check));
        let erred_check = drill(&[(Phase::Checks, Passed, false), (Phase::Teardown, Failed, true)], &[Verdict::Error]);
        assert!(!could_not_run(&erred_check), "a check that erred is no pass either");
        let passed = drill(&[(Phase::Restore, Passed, false), (Phase::Teardown, Passed, false)], &[Verdict::Pass]);
        assert!(!could_not_run(&passed), "a pass ran");
        let mut interrupted = drill(&[(Phase::Fetch, Failed, true)], &[]);
        finish(&mut interrupted, OffsetDateTime::UNIX_EPOCH, true);
        assert!(!could_not_run(&interrupted), "an interrupted drill ends with its signal");
    }
}
