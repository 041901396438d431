//! What `pgdrill report diff A B` judges: whether drill B of a scenario proves less than drill A
//! did, for a gate in CI (a release, a migration, this quarter's drill against the last). B is
//! worse when its verdict is, when a phase or a check that passed in A failed, did not run or is
//! gone, when a check fails that did not fail in A, when its recovery took longer past a
//! threshold, when it drilled a backup taken before A's, or when its evidence is no longer
//! signed. What is better is said too, and never offsets what is worse.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::outcome::{CheckResult, DrillRecord, DrillVerdict, Phase, PhaseStatus, Verdict};

/// How much slower a recovery may be before it is worse: both past the ratio and by more than
/// the floor (a few seconds either way are the machine's load, not the backup's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slower {
    /// A fraction of A's recovery time (0.25: a quarter longer).
    pub ratio: f64,
    pub floor: Duration,
}

/// One way B differs from A.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Difference {
    /// Whether it makes B worse (else better, or said for what it is).
    pub worse: bool,
    /// What it is about: `verdict`, `phase`, `check`, `recovery`, `backup`, `evidence`.
    pub about: &'static str,
    /// What differs, in a sentence.
    pub said: String,
}

impl Difference {
    fn worse(about: &'static str, said: String) -> Difference {
        Difference { worse: true, about, said }
    }

    fn better(about: &'static str, said: String) -> Difference {
        Difference { worse: false, about, said }
    }
}

/// How B differs from A: what is worse first, in the order the drill runs.
pub(crate) fn compare(a: &DrillRecord, b: &DrillRecord, slower: Slower) -> Vec<Difference> {
    let mut found = Vec::new();
    verdicts(a, b, &mut found);
    phases(a, b, &mut found);
    checks(a, b, &mut found);
    recovery(a, b, slower, &mut found);
    backups(a, b, &mut found);
    evidence(a, b, &mut found);
    found.sort_by_key(|d| !d.worse);
    found
}

fn verdict(record: &DrillRecord) -> &'static str {
    match record.verdict {
        DrillVerdict::Running => "running",
        DrillVerdict::Pass => "pass",
        DrillVerdict::Fail => "fail",
        DrillVerdict::Interrupted => "interrupted",
    }
}

fn verdicts(a: &DrillRecord, b: &DrillRecord, found: &mut Vec<Difference>) {
    let said = format!("the verdict was {} and is {}", verdict(a), verdict(b));
    match (a.verdict == DrillVerdict::Pass, b.verdict == DrillVerdict::Pass) {
        (true, false) => found.push(Difference::worse("verdict", said)),
        (false, true) => found.push(Difference::better("verdict", said)),
        _ => {}
    }
}

/// The phases but the checks' (whose status is its checks', compared one by one).
fn phases(a: &DrillRecord, b: &DrillRecord, found: &mut Vec<Difference>) {
    for before in a.phases.iter().filter(|p| p.status == PhaseStatus::Passed && p.phase != Phase::Checks) {
        let name = before.phase.as_str();
        let now = b.phases.iter().find(|p| p.phase == before.phase);
        let why = |status: &str, error: &Option<String>| match error {
            Some(error) => format!("phase {name} passed and {status}: {error}"),
            None => format!("phase {name} passed and {status}"),
        };
        match now {
            None => found.push(Difference::worse("phase", format!("phase {name} passed and is not in B"))),
            Some(p) if p.status == PhaseStatus::Passed => {}
            Some(p) => found.push(Difference::worse("phase", why(&format!("is {}", p.status.as_str()), &p.error))),
        }
    }
    for now in b.phases.iter().filter(|p| p.status == PhaseStatus::Passed && p.phase != Phase::Checks) {
        let before = a.phases.iter().find(|p| p.phase == now.phase).map(|p| p.status);
        if before.is_some_and(|s| s == PhaseStatus::Failed) {
            found.push(Difference::better("phase", format!("phase {} failed and passes", now.phase.as_str())));
        }
    }
}

fn checks(a: &DrillRecord, b: &DrillRecord, found: &mut Vec<Difference>) {
    let by_id = |r: &'_ DrillRecord| -> BTreeMap<String, CheckResult> {
        r.checks.iter().map(|c| (c.id.clone(), c.clone())).collect()
    };
    let (before, now) = (by_id(a), by_id(b));
    for (id, was) in &before {
        let is = now.get(id);
        let said = match (was.verdict, is.map(|c| c.verdict)) {
            (Verdict::Pass, None) => format!("check {id} passed and is not run"),
            (Verdict::Pass, Some(Verdict::Pass)) => continue,
            (Verdict::Pass, Some(v)) => format!("check {id} passed and is {}: {}", v.as_str(), message(is)),
            (_, Some(Verdict::Pass)) => {
                found.push(Difference::better("check", format!("check {id} was {} and passes", was.verdict.as_str())));
                continue;
            }
            (_, _) => continue,
        };
        found.push(Difference::worse("check", said));
    }
    for (id, is) in &now {
        let failing = matches!(is.verdict, Verdict::Fail | Verdict::Error);
        let was = before.get(id).map(|c| c.verdict);
        if is.verdict == Verdict::Pass && was.is_none() {
            found.push(Difference::better("check", format!("check {id} is new and passes")));
        }
        if failing && !matches!(was, Some(Verdict::Fail | Verdict::Error | Verdict::Pass)) {
            let before = was.map_or("not run".to_owned(), |v| format!("was {}", v.as_str()));
            found.push(Difference::worse(
                "check",
                format!("check {id} {before} and is {}: {}", is.verdict.as_str(), is.message),
            ));
        }
    }
}

fn message(check: Option<&CheckResult>) -> &str {
    check.map_or("", |c| c.message.as_str())
}

fn recovery(a: &DrillRecord, b: &DrillRecord, slower: Slower, found: &mut Vec<Difference>) {
    let (Some(was), Some(is)) = (a.recovery, b.recovery) else { return };
    let seconds = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let percent = (is.as_secs_f64() / was.as_secs_f64().max(0.001) - 1.0) * 100.0;
    let said = format!("recovery took {} and takes {} ({percent:+.0}%)", seconds(was), seconds(is));
    let past = |long: Duration, short: Duration| {
        long.as_secs_f64() > short.as_secs_f64() * (1.0 + slower.ratio) && long.saturating_sub(short) > slower.floor
    };
    if past(is, was) {
        let limit = format!("past +{:.0}% and {}", slower.ratio * 100.0, seconds(slower.floor));
        found.push(Difference::worse("recovery", format!("{said}, {limit}")));
    } else if past(was, is) {
        found.push(Difference::better("recovery", said));
    }
}

fn backups(a: &DrillRecord, b: &DrillRecord, found: &mut Vec<Difference>) {
    let taken = |r: &DrillRecord| r.backup.as_ref().and_then(|b| b.taken_at);
    let (Some(was), Some(is)) = (taken(a), taken(b)) else { return };
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
    };
    if is < was && b.sample.is_some() {
        // Drawn from older backups on purpose (`--sample`): not a backup that aged.
        found.push(Difference::better(
            "backup",
            format!(
                "B drilled an older backup on purpose, sampled from a window (plan.json): taken at {}, before A's, taken at {}",
                at(is),
                at(was)
            ),
        ));
    } else if is < was {
        found.push(Difference::worse(
            "backup",
            format!("B drilled a backup taken at {}, before A's, taken at {}", at(is), at(was)),
        ));
    }
}

fn evidence(a: &DrillRecord, b: &DrillRecord, found: &mut Vec<Difference>) {
    let signed = |r: &DrillRecord| r.signature.as_ref().and_then(|s| s.signed_by.clone());
    match (signed(a), signed(b)) {
        (Some(key), None) => {
            found.push(Difference::worse("evidence", format!("A's evidence is signed by {key}, and B's is not")))
        }
        (None, Some(key)) => {
            found.push(Difference::better("evidence", format!("B's evidence is signed by {key}, and A's was not")))
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
