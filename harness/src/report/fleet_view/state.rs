//! A database's state and gaps: never verified (no passing drill), fresh, or stale (its last
//! passing drill older than the maximum age that applies: the inventory entry's, else
//! `--max-age`, else the RPO its drill record states); and what the evidence gate finds
//! missing.

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

/// A database's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No passing drill at all.
    NeverVerified,
    /// Its last passing drill is within the maximum age (or none applies).
    Fresh,
    /// Its last passing drill is older than the maximum age.
    Stale,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::NeverVerified => "never verified",
            State::Fresh => "fresh",
            State::Stale => "stale",
        }
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
    let state = match (last_passing, age.zip(rule.max())) {
        (None, _) => State::NeverVerified,
        (Some(_), Some((age, max))) if age > max => State::Stale,
        (Some(_), _) => State::Fresh,
    };
    let mut gaps = Vec::new();
    let Some(last) = drills.last() else {
        gaps.push(Gap::NoDrill);
        return Judged { state, rule, age, gaps };
    };
    if !last.passed() {
        let why = last.failure.clone().unwrap_or_else(|| format!("its verdict is {}", last.verdict));
        gaps.push(Gap::Failed { folder: last.shown.clone(), why });
    }
    match (last_passing, state) {
        (None, _) => gaps.push(Gap::NeverPassed),
        (Some(passing), State::Stale) => {
            gaps.push(Gap::Stale { folder: passing.shown.clone(), age: age.unwrap_or_default(), rule })
        }
        (Some(_), _) if rule == AgeRule::None => gaps.push(Gap::NoMaxAge),
        _ => {}
    }
    if let Some(gap) = evidence_gap(last, options) {
        gaps.push(gap);
    }
    Judged { state, rule, age, gaps }
}

/// What is wrong with a drill's evidence for the gate: against allowed signers, anything but
/// verified; without, evidence not checked, unless `--unsigned-ok` (then only files that do
/// not match their digests, or no manifest at all).
fn evidence_gap(drill: &Drill, options: &FleetOptions<'_>) -> Option<Gap> {
    let folder = drill.shown.clone();
    let trusted = options.allowed_signers.is_some();
    let broken = |e: &Evidence| Gap::Evidence { folder: folder.clone(), what: e.describe(), status: e.status() };
    match &drill.evidence {
        e if trusted && !e.holds(true) => Some(broken(e)),
        _ if trusted => None,
        e @ (Evidence::Missing | Evidence::Unchecked { files_match: false, .. }) => Some(broken(e)),
        _ if options.unsigned_ok => None,
        _ => Some(Gap::NotChecked { folder }),
    }
}
