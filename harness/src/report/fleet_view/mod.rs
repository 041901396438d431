//! The fleet view and the evidence gate: every database of a fleet (each scenario whose drills
//! were found, and each database an inventory lists) with its last drill, its state (never
//! verified, fresh, stale) and its gaps, as one static page (`fleet.html`), a machine-readable
//! status (`fleet-status.json`) and, for the gate, what is missing (`gaps.md`, `gaps.json`).
//! The drills are found and their evidence judged as `report merge` does (`super::fleet`). With
//! `--follow-state`, each followed database shows its follower's proof lag beside its last drill
//! (`follower`).

mod chart;
pub(crate) mod follower;
pub(crate) mod html;
pub(crate) mod inventory;
mod matrix;
#[cfg(test)]
mod snapshot;
mod state;
mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::controls::{self, Coverage};
use super::fleet::{self, Evidence, Found, Input, MergeError, Standing};
use crate::allowed_signers::AllowedSigners;
use crate::evidence::ack::{self, Ack};
use crate::evidence::verify::Trust;
use crate::outcome::{DrillRecord, DrillVerdict, Verdict};
pub(crate) use follower::{Bounds, Follower};
pub(crate) use inventory::{By, Inventory, Wanted};
pub(crate) use state::{AgeRule, Gap, State, evidence_gap, span};

/// How to read the fleet: against which allowed signers, which inventory, which maximum age,
/// as of when.
#[derive(Debug)]
pub(crate) struct FleetOptions<'a> {
    pub allowed_signers: Option<(&'a AllowedSigners, &'a Path)>,
    /// `--max-age`: for every database the inventory gives none.
    pub max_age: Option<Duration>,
    /// The inventory, its scenario files' names read (`names`, by entry).
    pub inventory: Option<(&'a Inventory, Vec<Option<String>>)>,
    /// `--unsigned-ok`: without allowed signers, evidence no one vouches for is no gap.
    pub unsigned_ok: bool,
    pub now: OffsetDateTime,
    /// `--follow-state`: the followers read, and what they are held to (none: not asked).
    pub follow: Option<(Vec<Follower>, Bounds)>,
}

/// One drill of a database, as the page shows it.
#[derive(Debug, Clone)]
pub(crate) struct Drill {
    pub scenario: String,
    /// Its folder, as the inputs name it.
    pub shown: String,
    /// `None` for an incomplete folder (no drill.json).
    pub started_at: Option<OffsetDateTime>,
    /// `pass`, `fail`, `interrupted`, or `incomplete`.
    pub verdict: String,
    pub recovery: Option<Duration>,
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    /// Its checks that did not pass: (id, message).
    pub failing: Vec<(String, String)>,
    /// Why it failed, in a line.
    pub failure: Option<String>,
    pub evidence: Evidence,
    pub coverage: Option<Coverage>,
    pub backup: Option<String>,
    /// Its drill.json, for what the page does not show (`report period`).
    pub record: Option<Arc<DrillRecord>>,
    /// Its acknowledgements that hold (`pgdrill ack`: with allowed signers, signed by one of
    /// them), and what is wrong with the others. They change no verdict and fill no gap.
    pub acks: Vec<Ack>,
    pub ack_faults: Vec<String>,
}

impl Drill {
    pub(crate) fn passed(&self) -> bool {
        self.verdict == DrillVerdict::Pass.as_str()
    }

    fn of(found: &Found, allowed: Option<(&AllowedSigners, &Path)>) -> Drill {
        let record = found.record.as_ref();
        let (acks, faults) = ack::verify_all(&found.local, &Trust { allowed_signers: allowed, identity: None });
        Drill {
            scenario: found.scenario.clone(),
            shown: found.shown.clone(),
            started_at: record.map(|r| r.started_at),
            verdict: record.map_or("incomplete", |r| r.verdict.as_str()).to_owned(),
            recovery: record.and_then(|r| r.recovery),
            rto: record.and_then(|r| r.scenario.objectives.rto),
            rpo: record.and_then(|r| r.scenario.objectives.rpo),
            failing: record
                .map(|r| {
                    r.checks
                        .iter()
                        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
                        .map(|c| (c.id.clone(), c.message.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            failure: match record {
                Some(r) => r.failure.clone(),
                None => {
                    Some("incomplete: no drill.json (a partial upload, or a drill killed before its reports)".into())
                }
            },
            evidence: fleet::evidence(&found.local, allowed),
            coverage: record.map(controls::coverage),
            backup: record.and_then(|r| r.backup.as_ref()).map(|b| b.location.clone()),
            record: record.cloned().map(Arc::new),
            acks,
            ack_faults: faults.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A database of the fleet: a scenario whose drills were found, or an inventory's entry.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub name: String,
    /// The inventory's entry, when listed: how it is matched, and where it is written.
    pub listed: Option<(String, String)>,
    /// Its drills, oldest first.
    pub drills: Vec<Drill>,
    pub state: State,
    pub rule: AgeRule,
    /// How long ago its last passing drill started.
    pub age: Option<Duration>,
    pub gaps: Vec<Gap>,
    /// The followers of its archive (`--follow-state`).
    pub followers: Vec<Follower>,
    /// How often the inventory says it must be drilled.
    pub cadence: Option<Duration>,
}

impl Subject {
    pub(crate) fn last(&self) -> Option<&Drill> {
        self.drills.last()
    }

    pub(crate) fn last_passing(&self) -> Option<&Drill> {
        self.drills.iter().rev().find(|d| d.passed())
    }
}

/// The fleet, read.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub subjects: Vec<Subject>,
    pub inputs: Vec<String>,
    pub now: OffsetDateTime,
    pub max_age: Option<Duration>,
    pub allowed_signers: Option<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub unsigned_ok: bool,
    /// What followers are held to, when `--follow-state` was given.
    pub follow: Option<Bounds>,
}

impl Fleet {
    /// The gaps of the inventory's databases, each with its database's name.
    pub(crate) fn gaps(&self) -> Vec<(&Subject, &Gap)> {
        self.subjects.iter().filter(|s| s.listed.is_some()).flat_map(|s| s.gaps.iter().map(move |g| (s, g))).collect()
    }

    /// How many databases are in `state`.
    pub(crate) fn count(&self, state: State) -> usize {
        self.subjects.iter().filter(|s| s.state == state).count()
    }
}

/// Reads the fleet under `inputs`. With an inventory, an input with no drill at all is no
/// error (every database the inventory lists is then a gap); nor with followers (each is shown).
pub(crate) fn read(inputs: &[Input], options: &FleetOptions<'_>) -> Result<Fleet, MergeError> {
    let followers = options.follow.as_ref().is_some_and(|(followers, _)| !followers.is_empty());
    let found = match fleet::find_all(inputs) {
        Err(MergeError::Nothing(_)) if options.inventory.is_some() || followers => Vec::new(),
        other => other?,
    };
    // An incomplete folder beside a complete drill of its scenario is set aside, as merges do.
    let standing = fleet::select(&found, false);
    let drills: Vec<(&Found, Drill)> = found
        .iter()
        .zip(&standing)
        .filter(|(_, s)| **s != Standing::Incomplete)
        .map(|(f, _)| (f, Drill::of(f, options.allowed_signers)))
        .collect();
    let mut taken = vec![false; drills.len()];
    let mut subjects = Vec::new();
    if let Some((inventory, names)) = &options.inventory {
        for (i, wanted) in inventory.databases.iter().enumerate() {
            let resolved = names.get(i).cloned().flatten();
            let mine: Vec<usize> =
                (0..drills.len()).filter(|&d| matches(wanted, resolved.as_deref(), drills[d].0)).collect();
            for &d in &mine {
                taken[d] = true;
            }
            let listed = Some((wanted.by.describe(), wanted.at.clone()));
            let mut listed = subject(&wanted.name, listed, &drills, &mine, wanted.max_age, options);
            listed.cadence = wanted.cadence;
            subjects.push(listed);
        }
    }
    let mut rest: Vec<&str> = (0..drills.len()).filter(|&d| !taken[d]).map(|d| drills[d].0.scenario.as_str()).collect();
    rest.sort();
    rest.dedup();
    for scenario in rest {
        let mine: Vec<usize> = (0..drills.len()).filter(|&d| !taken[d] && drills[d].0.scenario == scenario).collect();
        subjects.push(subject(scenario, None, &drills, &mine, None, options));
    }
    for (follower, bounds) in
        options.follow.iter().flat_map(|(followers, bounds)| followers.iter().map(move |f| (f, bounds)))
    {
        let at = subjects.iter().enumerate().position(|(i, s)| followed(s, listed_scenario(options, i), follower));
        let i = at.unwrap_or_else(|| {
            subjects.push(subject(&follower.scenario, None, &drills, &[], None, options));
            subjects.len() - 1
        });
        subjects[i].followers.push(follower.clone());
        // A follower that does not prove its archive is a gap of its database.
        let (standing, why) = follower.judge(bounds);
        if standing != follower::Standing::Proving {
            let state = follower.state.clone();
            subjects[i].gaps.push(state::Gap::Follower { state, standing: standing.as_str(), why });
        }
    }
    Ok(Fleet {
        subjects,
        inputs: inputs.iter().map(|i| i.shown.clone()).collect(),
        now: options.now,
        max_age: options.max_age,
        allowed_signers: options.allowed_signers.map(|(_, p)| p.to_owned()),
        inventory: options.inventory.as_ref().map(|(i, _)| i.path.clone()),
        unsigned_ok: options.unsigned_ok,
        follow: options.follow.as_ref().map(|(_, bounds)| *bounds),
    })
}

/// The scenario the inventory's entry `i` names, when it names one (the inventory's databases
/// are the first subjects, in its order).
fn listed_scenario<'a>(options: &'a FleetOptions<'_>, i: usize) -> Option<&'a str> {
    let (inventory, names) = options.inventory.as_ref()?;
    match &inventory.databases.get(i)?.by {
        By::Scenario(name) => Some(name),
        By::ScenarioFile(_) => names.get(i)?.as_deref(),
        By::Backup(_) => None,
    }
}

/// Whether `follower` follows the database `s`: the scenario its `follow.prom` names is the
/// database's, one of its drills', or the one its inventory entry names (`listed`).
fn followed(s: &Subject, listed: Option<&str>, follower: &Follower) -> bool {
    let scenario = follower.scenario.as_str();
    s.name == scenario || listed == Some(scenario) || s.drills.iter().any(|d| d.scenario == scenario)
}

/// Whether the drill `found` is of the inventory's entry `wanted` (`resolved`: its scenario
/// file's name).
fn matches(wanted: &Wanted, resolved: Option<&str>, found: &Found) -> bool {
    match &wanted.by {
        By::Scenario(name) => found.scenario == *name,
        By::ScenarioFile(_) => resolved == Some(found.scenario.as_str()),
        By::Backup(location) => found
            .record
            .as_ref()
            .and_then(|r| r.backup.as_ref())
            .is_some_and(|b| b.location.trim_end_matches('/') == location.trim_end_matches('/')),
    }
}

fn subject(
    name: &str,
    listed: Option<(String, String)>,
    drills: &[(&Found, Drill)],
    mine: &[usize],
    max_age: Option<Duration>,
    options: &FleetOptions<'_>,
) -> Subject {
    let mut own: Vec<(&Found, &Drill)> = mine.iter().map(|&d| (drills[d].0, &drills[d].1)).collect();
    own.sort_by(|a, b| a.0.age().cmp(&b.0.age()));
    let drills: Vec<Drill> = own.into_iter().map(|(_, d)| d.clone()).collect();
    let judged = state::judge(&drills, max_age, options);
    Subject {
        name: name.to_owned(),
        listed,
        drills,
        state: judged.state,
        rule: judged.rule,
        age: judged.age,
        gaps: judged.gaps,
        followers: Vec::new(),
        cadence: None,
    }
}

/// What `report fleet` and `report audit` wrote.
#[derive(Debug)]
pub(crate) struct Written {
    pub files: Vec<PathBuf>,
}

/// Writes `fleet.html` and `fleet-status.json` into `out`, and with `gaps`, `gaps.md` and
/// `gaps.json`.
pub(crate) fn write(fleet: &Fleet, out: &Path, gaps: bool) -> Result<Written, MergeError> {
    std::fs::create_dir_all(out).map_err(|source| MergeError::Write { path: out.to_owned(), source })?;
    let mut files = Vec::new();
    let mut put = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|source| MergeError::Write { path: path.clone(), source })?;
        files.push(path);
        Ok::<(), MergeError>(())
    };
    put("fleet.html", html::page(fleet))?;
    put("fleet-status.json", status::json(fleet))?;
    if gaps {
        put("gaps.md", status::gaps_markdown(fleet))?;
        put("gaps.json", status::gaps_json(fleet))?;
    }
    Ok(Written { files })
}

/// The gaps, a line each, for the console.
pub(crate) fn gap_lines(fleet: &Fleet) -> Vec<String> {
    fleet.gaps().into_iter().map(|(s, g)| format!("`{}`: {}{}", s.name, g.describe(), acknowledged(s, g))).collect()
}

/// A failed last drill's acknowledgements, said after its gap (which they do not fill).
pub(crate) fn acknowledged(s: &Subject, gap: &Gap) -> String {
    let Some(last) = s.last().filter(|_| matches!(gap, Gap::Failed { .. })) else { return String::new() };
    last.acks
        .iter()
        .map(|a| {
            format!(
                "; acknowledged by {} at {}: {} (the gap stands: an acknowledgement changes no verdict)",
                a.by, a.at, a.note
            )
        })
        .collect()
}
