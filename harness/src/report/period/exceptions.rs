//! A database's exceptions over the period: each failed drill, each drill whose evidence does
//! not hold, each window that ended with no drill, and a cadence no one gave. A failed drill's
//! exception is resolved by the acknowledgements that hold beside it (`pgdrill ack`); a missed
//! window and an unknown cadence have no drill to acknowledge, and stay open.

use super::windows::WindowState;
use super::{Cadence, Database};
use crate::evidence::ack::Ack;
use crate::report::fleet_view::span;
use crate::units::human_duration;

/// What kind of exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExceptionKind {
    /// A drill that did not pass (for a negative control: that did not fail where it must).
    Failed,
    /// A drill whose evidence does not verify against the allowed signers.
    Evidence,
    /// A window that ended with no drill.
    Missed,
    /// No cadence: the drills expected cannot be counted.
    NoCadence,
    /// A follower's receipts do not hold.
    Follower,
}

impl ExceptionKind {
    /// Its name in period.json and the OSCAL findings.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Failed => "failed-drill",
            ExceptionKind::Evidence => "evidence",
            ExceptionKind::Missed => "missed-window",
            ExceptionKind::NoCadence => "no-cadence",
            ExceptionKind::Follower => "follower-evidence",
        }
    }
}

/// An exception of a database.
#[derive(Debug, Clone)]
pub(crate) struct Exception {
    pub kind: ExceptionKind,
    /// The drill it is about (an index into the database's drills), if any.
    pub drill: Option<usize>,
    /// The window it is about (an index into the database's windows), if any.
    pub window: Option<usize>,
    /// What happened, in a sentence.
    pub what: String,
    /// The acknowledgements that resolve it.
    pub resolution: Vec<Ack>,
}

impl Exception {
    pub(crate) fn resolved(&self) -> bool {
        !self.resolution.is_empty()
    }
}

/// The exceptions of `db`, in time order (`trusted`: acknowledgements were verified against
/// allowed signers, and only then resolve anything).
pub(crate) fn of(db: &Database, trusted: bool) -> Vec<Exception> {
    let mut found = Vec::new();
    if db.cadence == Cadence::Unknown {
        found.push(Exception {
            kind: ExceptionKind::NoCadence,
            drill: None,
            window: None,
            what: "no cadence: give it `cadence` in the inventory or `[objectives] cadence` in its scenario, so the drills expected can be counted".into(),
            resolution: vec![],
        });
    }
    for (i, window) in db.windows.iter().enumerate() {
        if window.state == WindowState::Missed {
            let every = db.cadence.every().map(span).unwrap_or_default();
            found.push(Exception {
                kind: ExceptionKind::Missed,
                drill: None,
                window: Some(i),
                what: format!(
                    "no drill from {} to {} (a drill is expected every {every})",
                    day(window.start),
                    day(window.end)
                ),
                resolution: vec![],
            });
        }
    }
    for (i, drill) in db.drills.iter().enumerate() {
        let resolution = if trusted { drill.drill.acks.clone() } else { vec![] };
        if !drill.passed {
            found.push(Exception {
                kind: ExceptionKind::Failed,
                drill: Some(i),
                window: None,
                what: failed(db, drill),
                resolution: resolution.clone(),
            });
        }
        if let Some(gap) = &drill.evidence {
            let what = format!("the evidence of the drill of {}: {gap}", day(drill.started_at));
            found.push(Exception { kind: ExceptionKind::Evidence, drill: Some(i), window: None, what, resolution });
        }
    }
    for f in &db.followed {
        if let Some(why) = &f.evidence {
            let what = format!("the receipts of its follower `{}`: {why}", f.state);
            found.push(Exception {
                kind: ExceptionKind::Follower,
                drill: None,
                window: None,
                what,
                resolution: vec![],
            });
        }
    }
    found.sort_by_key(|e| e.drill.map(|d| db.drills[d].started_at).or(e.window.map(|w| db.windows[w].end)));
    found
}

/// A failed drill, in a sentence.
fn failed(db: &Database, drill: &super::PeriodDrill) -> String {
    let d = &drill.drill;
    let why = d.failure.clone().unwrap_or_else(|| format!("its verdict is {}", d.verdict));
    let recovery = d.recovery.map(|r| format!(", recovered in {}", human_duration(r))).unwrap_or_default();
    match db.control {
        true => format!("the negative control of {} did not fail where it must: {why}", day(drill.started_at)),
        false => format!("the drill of {} failed: {why}{recovery}", day(drill.started_at)),
    }
}

/// A time as the report shows it: `2026-03-01 02:00 UTC`.
pub(crate) fn day(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::*;
    use crate::report::fleet::Evidence;
    use crate::report::fleet_view::Drill;
    use crate::report::period::PeriodDrill;
    use crate::report::period::windows::{self, Window};

    const DAY: i64 = 86_400;

    fn at(day: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_225_600 + day * DAY).unwrap()
    }

    fn drill(day: i64, passed: bool, evidence: Option<&str>, acked: bool) -> PeriodDrill {
        let verdict = if passed { "pass" } else { "fail" };
        let drill = Drill {
            scenario: "orders".into(),
            shown: format!("reports/orders/{day}/"),
            started_at: Some(at(day)),
            verdict: verdict.into(),
            recovery: None,
            rto: None,
            rpo: None,
            failing: vec![],
            failure: (!passed).then(|| "1 of 3 checks did not pass".into()),
            evidence: Evidence::Unsigned,
            coverage: None,
            backup: None,
            record: None,
            acks: vec![],
            ack_faults: vec![],
        };
        let ack = Ack {
            file: "acks/ack-1.intoto.json".into(),
            by: "ana".into(),
            at: "t".into(),
            note: "INC-1".into(),
            signed: None,
        };
        let drill = Drill { acks: if acked { vec![ack] } else { vec![] }, ..drill };
        PeriodDrill {
            drill,
            started_at: at(day),
            passed,
            proves: passed && evidence.is_none(),
            evidence: evidence.map(String::from),
            backup_age: None,
            sampled: false,
            rto_met: None,
            rpo_met: None,
        }
    }

    fn database(cadence: Cadence, drills: Vec<PeriodDrill>) -> Database {
        let spans = cadence.every().map(|c| windows::split(at(0), at(21), c)).unwrap_or_default();
        let starts: Vec<(OffsetDateTime, bool)> = drills.iter().map(|d| (d.started_at, d.proves)).collect();
        let windows: Vec<Window> = windows::judge(&spans, &starts, at(30));
        let listed = ("scenario `orders`".into(), "inventory.toml:1".into());
        Database {
            name: "orders".into(),
            listed,
            cadence,
            control: false,
            drills,
            windows,
            followed: vec![],
            exceptions: vec![],
        }
    }

    #[test]
    fn a_failed_drill_is_resolved_by_its_acks_only_when_trusted_and_a_missed_window_never() {
        let weekly = Cadence::Inventory(Duration::from_secs(7 * DAY as u64));
        let db = database(weekly, vec![drill(1, false, None, true), drill(2, true, None, false)]);
        let found = of(&db, true);
        let kinds: Vec<ExceptionKind> = found.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [ExceptionKind::Failed, ExceptionKind::Missed, ExceptionKind::Missed]);
        assert!(found[0].resolved() && !found[1].resolved(), "{found:?}");
        assert!(
            found[0].what.starts_with("the drill of 2026-01-02 00:00 UTC failed: 1 of 3 checks"),
            "{}",
            found[0].what
        );
        assert!(found[1].what.starts_with("no drill from 2026-01-08 00:00 UTC to 2026-01-15"), "{}", found[1].what);
        assert!(!of(&db, false)[0].resolved(), "without allowed signers no acknowledgement resolves");
    }

    #[test]
    fn a_sampled_drill_that_passed_is_counted_as_one() {
        let weekly = Cadence::Inventory(Duration::from_secs(7 * DAY as u64));
        let (mut older, mut failed) = (drill(8, true, None, false), drill(9, false, None, false));
        (older.sampled, failed.sampled) = (true, true);
        let db = database(weekly, vec![drill(1, true, None, false), older, failed]);
        assert_eq!((db.passed(), db.sampled()), (2, 1));
    }

    #[test]
    fn unverified_evidence_and_an_unknown_cadence_are_exceptions() {
        let db = database(Cadence::Unknown, vec![drill(1, true, Some("unsigned: nothing proves who wrote it"), false)]);
        let found = of(&db, true);
        let kinds: Vec<ExceptionKind> = found.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [ExceptionKind::NoCadence, ExceptionKind::Evidence]);
        assert!(found[1].what.ends_with("UTC: unsigned: nothing proves who wrote it"), "{}", found[1].what);
    }
}
