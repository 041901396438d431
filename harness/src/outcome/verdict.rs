//! The one place that decides a drill's verdict: closing the record when the drill ends, the
//! recovery objectives judged against what was measured, and why it failed in a line.

use std::time::Duration;

use time::OffsetDateTime;

use super::check::{CheckResult, Verdict};
use super::record::{DrillRecord, DrillVerdict, Phase, PhaseRecord, PhaseStatus, ProcessUsage};

/// The verdict the drill would have if it finished now, not interrupted (for `--keep=on-failure`,
/// decided before teardown).
pub fn verdict_if_finished(record: &DrillRecord) -> DrillVerdict {
    let mut record = record.clone();
    finish(&mut record, OffsetDateTime::now_utc(), false);
    record.verdict
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
    let first_failure = record
        .phases
        .iter()
        .filter(|p| matches!(p.status, PhaseStatus::Failed | PhaseStatus::Interrupted))
        .min_by_key(|p| p.phase)
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
            });
        }
    }
    record.phases.sort_by_key(|p| p.phase);
    if !interrupted {
        let measured = super::objectives::Measured {
            recovery: record.recovery,
            rto_passed: record.rto_passed,
            cloned: record.clone_of.as_ref().map(|c| c.drill_id.as_str()),
            backup: record.backup.as_ref(),
            started_at: record.started_at,
        };
        let judged = super::objectives::judge(&record.scenario.objectives, &measured);
        record.checks.extend(judged);
    }
    let failed_checks: Vec<&CheckResult> = record.checks.iter().filter(|c| c.verdict != Verdict::Pass).collect();
    record.verdict = if interrupted {
        DrillVerdict::Interrupted
    } else if first_failure.is_none() && failed_checks.is_empty() {
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
