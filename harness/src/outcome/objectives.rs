//! The objectives judged on each drill, when its verdict is decided: the recovery time objective
//! (RTO) against the measured recovery, the recovery point objective (RPO) against the age of
//! the backup at drill time. A missed objective fails the drill like a failed check.

use std::time::Duration;

use time::OffsetDateTime;

use super::CheckKind;
use super::CheckResult;
use crate::objectives::{Objectives, span};

crate::outcome::findings! {
    /// What `objectives` finds.
    pub enum ObjectiveFinding for Objectives {
        RtoMet = Pass "objectives.rto-met"
            "The drill recovered the database within the recovery time objective."
            "Nothing.",
        RtoMissed = Fail "objectives.rto-missed"
            "The recovery took longer than the RTO (or the drill stopped it when the RTO passed)."
            "Read the phase timeline: make the slowest phase faster (parallel restore, a snapshot), or agree a longer RTO.",
        RtoNotMeasured = Skipped "objectives.rto-not-measured"
            "The drill did not reach a restored database, so its recovery time is not measured."
            "Fix the phase that failed.",
        RpoMet = Pass "objectives.rpo-met"
            "The backup was no older than the recovery point objective when the drill started."
            "Nothing.",
        RpoMissed = Fail "objectives.rpo-missed"
            "The backup is older than the RPO: a restore now would lose more data than the business accepts."
            "Check the backup schedule runs, and that the drill reads the newest backup.",
        RpoAgeUnknown = Error "objectives.rpo-age-unknown"
            "The backup's age is unknown (its format records no time, its name no date, its source no modification time): an unknown age fails the RPO."
            "Name backups with their date, e.g. `db-2026-11-22T0300Z.dump`.",
        RpoNotMeasured = Skipped "objectives.rpo-not-measured"
            "The drill did not read a backup, so its age is not measured."
            "Fix the phase that failed.",
    }
}

const KIND: CheckKind = CheckKind::Objectives;

/// One of the objectives, as its result's object names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Objective {
    /// The recovery time objective, judged against the measured recovery.
    Rto,
    /// The recovery point objective, judged against the backup's age.
    Rpo,
}

impl Objective {
    /// Its result's object: `rto`, `rpo`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Objective::Rto => "rto",
            Objective::Rpo => "rpo",
        }
    }
}

impl super::DrillRecord {
    /// The result `objective` was judged to, when it was.
    pub fn objective(&self, objective: Objective) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.kind == KIND && c.object == objective.as_str())
    }
}
use crate::outcome::BackupInfo;
use crate::units::human_duration;

/// What was measured against them.
pub(crate) struct Measured<'a> {
    /// The measured recovery time, when the drill got that far.
    pub recovery: Option<Duration>,
    /// The drill stopped because the RTO passed before the database was restored.
    pub rto_passed: bool,
    /// The drill that restored the snapshot this drill's database is a clone of: the RTO is
    /// that drill's, and not judged again.
    pub cloned: Option<&'a str>,
    /// The backup, when the drill fetched and read it.
    pub backup: Option<&'a BackupInfo>,
    /// The backup was sampled from older ones (`--sample`), not the newest: the RPO, which is
    /// the newest's, is not judged on it.
    pub sampled: bool,
    pub started_at: OffsetDateTime,
}

/// One result per objective set.
pub(crate) fn judge(objectives: &Objectives, measured: &Measured) -> Vec<CheckResult> {
    let mut results = Vec::new();
    if let Some(rto) = objectives.rto {
        // A clone's drill restored nothing: the drill that restored its snapshot was judged.
        if measured.cloned.is_none() {
            results.push(judge_rto(rto, measured.recovery, measured.rto_passed));
        }
    }
    // A sampled older backup is drilled on purpose: its age says nothing of the newest's, which
    // the scenario's drills of the newest judge.
    if let Some(rpo) = objectives.rpo.filter(|_| !measured.sampled) {
        results.push(judge_rpo(rpo, measured.backup, measured.started_at));
    }
    results
}

fn judge_rto(rto: Duration, recovery: Option<Duration>, rto_passed: bool) -> CheckResult {
    let result = CheckResult::judge(KIND, Objective::Rto.as_str())
        .expected(format!("recovered within {}", span(rto)))
        .evidence("the drill's own clock, from its start until the restored database was ready for its checks (fetch, verify, provision, preflight, restore, migrate)");
    match recovery {
        // The drill stopped the restore when the RTO passed: it could no longer end in time.
        None if rto_passed => result.actual(format!("at least {}", span(rto))).found(
            ObjectiveFinding::RtoMissed,
            format!(
                "not recovered within the RTO of {}: the drill stopped when it passed (recovery took at least {})",
                span(rto),
                span(rto)
            ),
        ),
        None => {
            result.found(ObjectiveFinding::RtoNotMeasured, "not measured: the drill did not reach a restored database")
        }
        Some(took) if took <= rto => result.actual(human_duration(took)).found(
            ObjectiveFinding::RtoMet,
            format!(
                "recovered in {}, within the RTO of {} ({:.0}% of it)",
                human_duration(took),
                span(rto),
                percent(took, rto)
            ),
        ),
        Some(took) => result.actual(human_duration(took)).found(
            ObjectiveFinding::RtoMissed,
            format!("recovered in {}, over the RTO of {} by {}", human_duration(took), span(rto), span(took - rto)),
        ),
    }
}

fn judge_rpo(rpo: Duration, backup: Option<&BackupInfo>, started_at: OffsetDateTime) -> CheckResult {
    let result =
        CheckResult::judge(KIND, Objective::Rpo.as_str()).expected(format!("a backup at most {} old", span(rpo)));
    let Some(backup) = backup else {
        return result.found(ObjectiveFinding::RpoNotMeasured, "not measured: the drill did not read a backup");
    };
    let (Some(taken), Some(from)) = (backup.taken_at, backup.taken_at_from.as_deref()) else {
        return result.evidence("none: see the message").found(
            ObjectiveFinding::RpoAgeUnknown,
            "the backup's age is unknown: its format records no time, its name has no date and its source gave no modification time (hint: name backups with their date, e.g. `db-2026-11-22T0300Z.dump`)",
        );
    };
    let age = Duration::try_from(started_at - taken).unwrap_or_default();
    let result = result.actual(format!("{} old", span(age))).evidence(format!(
        "taken at {} (from {from}); the drill started at {}",
        rfc3339(taken),
        rfc3339(started_at)
    ));
    if age <= rpo {
        result.found(
            ObjectiveFinding::RpoMet,
            format!("the backup is {} old, within the RPO of {} ({from})", span(age), span(rpo)),
        )
    } else {
        result.found(
            ObjectiveFinding::RpoMissed,
            format!(
                "the backup is {} old, over the RPO of {} by {} ({from}): a restore now would lose up to {} of data",
                span(age),
                span(rpo),
                span(age - rpo),
                span(age)
            ),
        )
    }
}

/// `part` as a share of `whole`: `37%`, or `<1%`.
fn percent(part: Duration, whole: Duration) -> String {
    let share = 100.0 * part.as_secs_f64() / whole.as_secs_f64().max(f64::EPSILON);
    if share < 1.0 { "<1%".into() } else { format!("{share:.0}%") }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::outcome::Verdict;

    fn backup(taken_at: Option<OffsetDateTime>) -> BackupInfo {
        BackupInfo { taken_at, taken_at_from: taken_at.map(|_| "the date in its name".into()), ..Default::default() }
    }

    #[test]
    fn the_rto_is_judged_on_the_measured_recovery() {
        let rto = Duration::from_secs(45 * 60);
        let met = judge_rto(rto, Some(Duration::from_secs(90)), false);
        assert_eq!(met.code, "objectives.rto-met", "{met:?}");
        assert!(met.message.contains("within the RTO of 45m"), "{}", met.message);
        let missed = judge_rto(rto, Some(Duration::from_secs(52 * 60)), false);
        assert_eq!(missed.code, "objectives.rto-missed");
        assert!(missed.message.ends_with("over the RTO of 45m by 7m"), "{}", missed.message);
        assert_eq!(judge_rto(rto, None, false).code, "objectives.rto-not-measured");
        let stopped = judge_rto(rto, None, true);
        assert_eq!((stopped.code.as_str(), stopped.actual.as_str()), ("objectives.rto-missed", "at least 45m"));
        assert!(stopped.message.contains("the drill stopped when it passed"), "{}", stopped.message);
    }

    #[test]
    fn the_rpo_is_judged_on_the_backups_age_at_drill_time() {
        let rpo = Duration::from_secs(26 * 3600);
        let now = datetime!(2026-11-22 08:00 UTC);
        let fresh = judge_rpo(rpo, Some(&backup(Some(datetime!(2026-11-22 03:00 UTC)))), now);
        assert_eq!(fresh.code, "objectives.rpo-met", "{fresh:?}");
        assert_eq!(fresh.actual, "5h old");
        assert!(fresh.message.contains("(the date in its name)"), "{}", fresh.message);
        let stale = judge_rpo(rpo, Some(&backup(Some(datetime!(2026-11-20 08:00 UTC)))), now);
        assert_eq!(stale.code, "objectives.rpo-missed");
        assert!(stale.message.contains("48h old, over the RPO of 26h by 22h"), "{}", stale.message);
        let unknown = judge_rpo(rpo, Some(&backup(None)), now);
        assert_eq!((unknown.verdict, unknown.code.as_str()), (Verdict::Error, "objectives.rpo-age-unknown"));
        assert!(unknown.message.contains("age is unknown"), "{}", unknown.message);
        assert_eq!(judge_rpo(rpo, None, now).code, "objectives.rpo-not-measured");
        let future = judge_rpo(rpo, Some(&backup(Some(datetime!(2026-11-22 09:00 UTC)))), now);
        assert_eq!((future.verdict, future.actual.as_str()), (Verdict::Pass, "0ms old"));
    }

    #[test]
    fn only_the_objectives_set_are_judged() {
        let measured = Measured {
            recovery: None,
            rto_passed: false,
            cloned: None,
            backup: None,
            sampled: false,
            started_at: datetime!(2026-11-22 08:00 UTC),
        };
        assert!(judge(&Objectives::default(), &measured).is_empty());
        let rto_only = Objectives { rto: Some(Duration::from_secs(60)), ..Objectives::default() };
        assert_eq!(judge(&rto_only, &measured).len(), 1);
        // A sampled older backup's age is not the RPO's.
        let rpo_only = Objectives { rpo: Some(Duration::from_secs(60)), ..Objectives::default() };
        let stale = backup(Some(datetime!(2026-11-01 08:00 UTC)));
        let sampled = Measured { backup: Some(&stale), sampled: true, ..measured };
        assert!(judge(&rpo_only, &sampled).is_empty());
        assert_eq!(judge(&rpo_only, &Measured { sampled: false, ..sampled }).len(), 1);
        // What a busy machine took to format them is not reported as their duration.
        let both = Objectives { rto: Some(Duration::from_secs(60)), rpo: Some(Duration::from_secs(60)), cadence: None };
        assert!(judge(&both, &measured).iter().all(|r| r.duration == Duration::ZERO));
    }
}
