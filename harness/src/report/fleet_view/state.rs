//! A database's state and gaps: failing, never verified, stale (its last passing drill older
//! than the maximum age that applies: the inventory entry's, else `--max-age`, else the RPO its
//! drill record states), without a maximum age, unsigned, or fresh; and what the evidence gate
//! finds missing.

use std::time::Duration;

use super::{Drill, FleetOptions};
use crate::objectives;
use crate::report::fleet::Evidence;

/// A span of time as ages and max ages are written: in days from two days up (`92d`,
/// `3d 4h`), else as objectives are (`36h`, `45m`).
pub(crate) fn span(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours) = (secs / 86400, secs % 86400 / 3600);
    match (days, hours) {
        (0..2, _) => objectives::span(d),
        (days, 0) => format!("{days}d"),
        (days, hours) => format!("{days}d {hours}h"),
    }
}

/// A database's state, the worst that applies, in the order below: what a reader of the fleet
/// page needs to act on. Only `Fresh` says its backups are proven to restore now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum State {
    /// Its last drill did not pass (an earlier one did).
    Failing,
    /// No drill of it passed, or none was found.
    NeverVerified,
    /// Its last drill passed, longer ago than the maximum age.
    Stale,
    /// Its last drill passed, and no maximum age applies: nothing says it is recent.
    Undated,
    /// Its last drill passed, recently, but its evidence does not verify against allowed signers
    /// (none given, unsigned, or signed by a key they do not allow).
    Unsigned,
    /// Its last drill passed, recently, with evidence that verifies.
    Fresh,
}

impl State {
    /// Every state, worst first: the fleet page's tiles and the counts in fleet-status.json.
    pub(crate) const ALL: [State; 6] =
        [State::Failing, State::NeverVerified, State::Stale, State::Undated, State::Unsigned, State::Fresh];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Failing => "failing",
            State::NeverVerified => "never verified",
            State::Stale => "stale",
            State::Undated => "no max age",
            State::Unsigned => "unsigned",
            State::Fresh => "fresh",
        }
    }

    /// Its key in fleet-status.json's counts.
    pub(crate) fn key(self) -> String {
        self.as_str().replace(' ', "_")
    }
}

/// Which maximum age applied, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgeRule {
    /// The inventory entry's `max_age`.
    Inventory(Duration),
    /// `--max-age`.
    Flag(Duration),
    /// The RPO the last passing drill's record states.
    Rpo(Duration),
    /// None: no inventory entry's, no `--max-age`, no RPO.
    None,
}

impl AgeRule {
    pub(crate) fn max(self) -> Option<Duration> {
        match self {
            AgeRule::Inventory(d) | AgeRule::Flag(d) | AgeRule::Rpo(d) => Some(d),
            AgeRule::None => None,
        }
    }

    /// Where it came from, as fleet-status.json says it.
    pub(crate) fn source(self) -> &'static str {
        match self {
            AgeRule::Inventory(_) => "inventory",
            AgeRule::Flag(_) => "--max-age",
            AgeRule::Rpo(_) => "rpo",
            AgeRule::None => "none",
        }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            AgeRule::Inventory(d) => format!("{} (the inventory's max_age)", span(d)),
            AgeRule::Flag(d) => format!("{} (--max-age)", span(d)),
            AgeRule::Rpo(d) => format!("{} (its RPO, as its drill record states it)", span(d)),
            AgeRule::None => "none (no max_age in the inventory, no --max-age, no RPO)".into(),
        }
    }
}

/// What the evidence gate finds missing of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gap {
    /// No drill of it was found.
    NoDrill,
    /// Its last drill did not pass.
    Failed { folder: String, why: String },
    /// No drill of it ever passed.
    NeverPassed,
    /// Its last passing drill is older than the maximum age.
    Stale { folder: String, age: Duration, rule: AgeRule },
    /// No maximum age applies, so nothing says its last passing drill is recent.
    NoMaxAge,
    /// Its last drill's evidence does not hold.
    Evidence { folder: String, what: String, status: &'static str },
    /// Its evidence was not checked: no allowed signers, and no `--unsigned-ok`.
    NotChecked { folder: String },
    /// A follower of its archive (`--follow-state`) is not proving it: not following, faulted
    /// or behind.
    Follower { state: String, standing: &'static str, why: String },
}

impl Gap {
    /// Its kind, as gaps.json says it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Gap::NoDrill => "no drill",
            Gap::Failed { .. } => "failed",
            Gap::NeverPassed => "never verified",
            Gap::Stale { .. } => "stale",
            Gap::NoMaxAge => "no max age",
            Gap::Evidence { status, .. } => status,
            Gap::NotChecked { .. } => "evidence not checked",
            Gap::Follower { .. } => "follower",
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Gap::NoDrill => "no drill at all: no drill folder of it was found".into(),
            Gap::Failed { folder, why } => format!("its last drill failed ({folder}): {why}"),
            Gap::NeverPassed => "never verified: no drill of it passed".into(),
            Gap::Stale { folder, age, rule } => format!(
                "stale: its last passing drill ({folder}) is {} old, older than the max age {}",
                span(*age),
                rule.describe()
            ),
            Gap::NoMaxAge => {
                "no max age applies (no max_age in the inventory, no --max-age, no RPO): nothing says its drill is recent"
                    .into()
            }
            Gap::Evidence { folder, what, .. } => format!("the evidence of its last drill ({folder}): {what}"),
            Gap::NotChecked { folder } => format!(
                "the evidence of its last drill ({folder}) was not checked: no --allowed-signers (--unsigned-ok accepts evidence no one vouches for)"
            ),
            Gap::Follower { state, standing, why } => format!("its follower `{state}` is {standing}: {why}"),
        }
    }
}

/// A database's state, the rule that decided it, its last passing drill's age, and its gaps.
pub(super) struct Judged {
    pub state: State,
    pub rule: AgeRule,
    pub age: Option<Duration>,
    pub gaps: Vec<Gap>,
}

/// Judges a database's drills (oldest first); `max_age` is its inventory entry's.
pub(super) fn judge(drills: &[Drill], max_age: Option<Duration>, options: &FleetOptions<'_>) -> Judged {
    let last_passing = drills.iter().rev().find(|d| d.passed());
    let rule = match (max_age, options.max_age, last_passing.and_then(|d| d.rpo)) {
        (Some(d), _, _) => AgeRule::Inventory(d),
        (None, Some(d), _) => AgeRule::Flag(d),
        (None, None, Some(d)) => AgeRule::Rpo(d),
        (None, None, None) => AgeRule::None,
    };
    let age =
        last_passing.and_then(|d| d.started_at).map(|at| Duration::try_from(options.now - at).unwrap_or_default());
    let state = state_of(drills, age, rule, options);
    let mut gaps = Vec::new();
    let Some(last) = drills.last() else {
        gaps.push(Gap::NoDrill);
        return Judged { state, rule, age, gaps };
    };
    if !last.passed() {
        let why = last.failure.clone().unwrap_or_else(|| format!("its verdict is {}", last.verdict));
        gaps.push(Gap::Failed { folder: last.shown.clone(), why });
    }
    let stale = age.zip(rule.max()).is_some_and(|(age, max)| age > max);
    match last_passing {
        None => gaps.push(Gap::NeverPassed),
        Some(passing) if stale => {
            gaps.push(Gap::Stale { folder: passing.shown.clone(), age: age.unwrap_or_default(), rule })
        }
        Some(_) if rule == AgeRule::None => gaps.push(Gap::NoMaxAge),
        Some(_) => {}
    }
    if let Some(gap) = evidence_gap(last, options.allowed_signers.is_some(), options.unsigned_ok) {
        gaps.push(gap);
    }
    Judged { state, rule, age, gaps }
}

/// The state of a database whose drills (oldest first) are `drills`: see [`State`].
fn state_of(drills: &[Drill], age: Option<Duration>, rule: AgeRule, options: &FleetOptions<'_>) -> State {
    let Some(last) = drills.last() else { return State::NeverVerified };
    if !drills.iter().any(Drill::passed) {
        return State::NeverVerified;
    }
    if !last.passed() {
        return State::Failing;
    }
    match (age, rule.max()) {
        (Some(age), Some(max)) if age > max => State::Stale,
        (_, None) => State::Undated,
        _ if options.allowed_signers.is_none() || !last.evidence.holds(true) => State::Unsigned,
        _ => State::Fresh,
    }
}

/// What is wrong with a drill's evidence for the gate: against allowed signers, anything but
/// verified; without, evidence not checked, unless `--unsigned-ok` (then only files that do
/// not match their digests, or no manifest at all).
/// `trusted`: allowed signers were given.
pub(crate) fn evidence_gap(drill: &Drill, trusted: bool, unsigned_ok: bool) -> Option<Gap> {
    let folder = drill.shown.clone();
    let broken = |e: &Evidence| Gap::Evidence { folder: folder.clone(), what: e.describe(), status: e.status() };
    match &drill.evidence {
        e if trusted && !e.holds(true) => Some(broken(e)),
        _ if trusted => None,
        e @ (Evidence::Missing | Evidence::Unchecked { files_match: false, .. }) => Some(broken(e)),
        _ if unsigned_ok => None,
        _ => Some(Gap::NotChecked { folder }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowed_signers::AllowedSigners;

    fn drill(day: i64, verdict: &str, evidence: Evidence) -> Drill {
        Drill {
            scenario: "orders".into(),
            shown: format!("reports/orders/{day}/"),
            started_at: Some(time::OffsetDateTime::from_unix_timestamp(day * 86400).unwrap()),
            verdict: verdict.into(),
            recovery: None,
            rto: None,
            rpo: None,
            failing: vec![],
            failure: None,
            evidence,
            coverage: None,
            backup: None,
            record: None,
            acks: vec![],
            ack_faults: vec![],
        }
    }

    fn verified() -> Evidence {
        Evidence::Verified { principals: "drills@example.com".into(), key: "SHA256:x".into() }
    }

    /// The state of `drills` on day 10, with a max age of 7 days (or none).
    fn state(drills: &[Drill], max_days: Option<u64>, signers: bool) -> State {
        let allowed = AllowedSigners::parse("").unwrap();
        let options = FleetOptions {
            allowed_signers: signers.then_some((&allowed, std::path::Path::new("allowed_signers"))),
            max_age: max_days.map(|d| Duration::from_secs(d * 86400)),
            inventory: None,
            unsigned_ok: false,
            now: time::OffsetDateTime::from_unix_timestamp(10 * 86400).unwrap(),
            follow: None,
        };
        judge(drills, None, &options).state
    }

    #[test]
    fn fresh_only_for_a_recent_pass_whose_evidence_verifies() {
        let pass = |day| drill(day, "pass", verified());
        assert_eq!(state(&[pass(9)], Some(7), true), State::Fresh);
        assert_eq!(state(&[pass(1), drill(9, "fail", verified())], Some(7), true), State::Failing);
        assert_eq!(state(&[pass(1), drill(9, "interrupted", verified())], Some(7), true), State::Failing);
        assert_eq!(state(&[drill(9, "fail", verified())], Some(7), true), State::NeverVerified);
        assert_eq!(state(&[], Some(7), true), State::NeverVerified);
        assert_eq!(state(&[pass(1)], Some(7), true), State::Stale);
        assert_eq!(state(&[pass(9)], None, true), State::Undated);
        assert_eq!(state(&[pass(9)], Some(7), false), State::Unsigned, "no allowed signers: nothing vouches");
        assert_eq!(state(&[drill(9, "pass", Evidence::Unsigned)], Some(7), true), State::Unsigned);
        // A failed last drill after a pass that is now old is failing, and its gaps say both.
        let judged = judge(
            &[pass(1), drill(9, "fail", verified())],
            None,
            &FleetOptions {
                allowed_signers: None,
                max_age: Some(Duration::from_secs(7 * 86400)),
                inventory: None,
                unsigned_ok: true,
                now: time::OffsetDateTime::from_unix_timestamp(10 * 86400).unwrap(),
                follow: None,
            },
        );
        assert_eq!(judged.state, State::Failing);
        let kinds: Vec<&str> = judged.gaps.iter().map(Gap::kind).collect();
        assert_eq!(kinds, ["failed", "stale"]);
    }
}
