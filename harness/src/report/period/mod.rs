//! The period report (`pgdrill report period --from --to`): what an auditor of an observation
//! period asks. For each database the inventory lists, its cadence and the windows it divides
//! the period into (`windows`), the drills expected, run, passed, failed and missed, the backups
//! drilled and their age, the RTO and RPO met or not, and each exception (a failed drill, a
//! drill whose evidence does not hold, a window missed, a cadence unknown) with what resolved it:
//! the acknowledgements signed beside the drill (`pgdrill ack`), which change no verdict. Read
//! from the fleet as `report audit` reads it (`fleet_view`); written as `period.html` (printable),
//! `period.json` and OSCAL Assessment Results, sealed as a fleet summary is.

mod exceptions;
pub(crate) mod followed;
mod html;
mod json;
pub(crate) mod oscal;
pub(crate) mod windows;
mod write;

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;

use super::fleet_view::{Drill, Fleet, Gap, Subject, evidence_gap};
use crate::allowed_signers::AllowedSigners;
use crate::outcome::{DrillRecord, Verdict};
pub(crate) use exceptions::Exception;
pub(crate) use followed::Followed;
use windows::Window;
pub(crate) use write::write;

/// Where a database's cadence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cadence {
    /// The inventory's `cadence`.
    Inventory(Duration),
    /// Its newest drill's `[objectives] cadence`.
    Objectives(Duration),
    /// Neither gives one: the drills expected cannot be counted.
    Unknown,
}

impl Cadence {
    pub(crate) fn every(self) -> Option<Duration> {
        match self {
            Cadence::Inventory(d) | Cadence::Objectives(d) => Some(d),
            Cadence::Unknown => None,
        }
    }

    pub(crate) fn source(self) -> &'static str {
        match self {
            Cadence::Inventory(_) => "the inventory",
            Cadence::Objectives(_) => "its scenario's [objectives] cadence",
            Cadence::Unknown => "none given",
        }
    }
}

/// A drill of the period, as the report shows it.
#[derive(Debug, Clone)]
pub(crate) struct PeriodDrill {
    pub drill: Drill,
    pub started_at: OffsetDateTime,
    /// Whether it passed (a negative control: it failed where it must).
    pub passed: bool,
    /// Whether it counts as proof: it passed (a negative control: it held) and its evidence
    /// holds.
    pub proves: bool,
    /// What is wrong with its evidence, as `report audit` says it: against allowed signers,
    /// anything but verified; without, evidence not checked, unless `--unsigned-ok`.
    pub evidence: Option<String>,
    /// How old its backup was when it started, when its record says when it was taken.
    pub backup_age: Option<Duration>,
    /// Its backup was drawn from a window of older ones (`--sample`, its `plan.json`), not the
    /// newest.
    pub sampled: bool,
    /// Its RTO's and RPO's verdicts, when it was judged against them.
    pub rto_met: Option<bool>,
    pub rpo_met: Option<bool>,
}

impl PeriodDrill {
    /// Its checks that failed or could not run, as its record says.
    pub(crate) fn failed_checks(&self) -> impl Iterator<Item = &crate::outcome::CheckResult> {
        let checks = self.drill.record.as_deref().map_or(&[][..], |r| &r.checks[..]);
        checks.iter().filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
    }
}

/// A database of the inventory over the period.
#[derive(Debug, Clone)]
pub(crate) struct Database {
    pub name: String,
    /// How the inventory matches it, and where it is written.
    pub listed: (String, String),
    pub cadence: Cadence,
    /// Whether its drills are a negative control's (they prove by failing where expected).
    pub control: bool,
    /// Its drills that started in the period, oldest first.
    pub drills: Vec<PeriodDrill>,
    pub windows: Vec<Window>,
    /// Its followers over the period (`--follow-state`).
    pub followed: Vec<Followed>,
    pub exceptions: Vec<Exception>,
}

impl Database {
    /// The windows that have ended: the drills expected.
    pub(crate) fn expected(&self) -> usize {
        self.windows.iter().filter(|w| w.state != windows::WindowState::Open).count()
    }

    pub(crate) fn count(&self, state: windows::WindowState) -> usize {
        self.windows.iter().filter(|w| w.state == state).count()
    }

    pub(crate) fn passed(&self) -> usize {
        self.drills.iter().filter(|d| d.proves).count()
    }

    /// The drills that passed of an older backup sampled from a window (`--sample`).
    pub(crate) fn sampled(&self) -> usize {
        self.drills.iter().filter(|d| d.proves && d.sampled).count()
    }
}

/// The period, judged.
#[derive(Debug)]
pub(crate) struct Period {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// When it was judged: windows ending later are still open.
    pub now: OffsetDateTime,
    pub inputs: Vec<String>,
    pub inventory: PathBuf,
    /// The allowed signers the evidence and acknowledgements were verified against, if any.
    pub allowed_signers: Option<PathBuf>,
    /// `--unsigned-ok`: without allowed signers, evidence no one vouches for was counted.
    pub unsigned_ok: bool,
    pub databases: Vec<Database>,
    /// Scenarios drilled in the period that the inventory does not list: shown, not counted.
    pub unlisted: Vec<String>,
}

impl Period {
    /// Its title: the first and the last day.
    pub(crate) fn title(&self) -> String {
        let last = (self.to - time::Duration::NANOSECOND).date();
        format!("Restore drills from {} to {last}", self.from.date())
    }

    pub(crate) fn exceptions(&self) -> impl Iterator<Item = (&Database, &Exception)> {
        self.databases.iter().flat_map(|d| d.exceptions.iter().map(move |e| (d, e)))
    }

    /// How many exceptions, and how many of them an acknowledgement resolves.
    pub(crate) fn exception_counts(&self) -> (usize, usize) {
        self.exceptions().fold((0, 0), |(all, resolved), (_, e)| (all + 1, resolved + usize::from(e.resolved())))
    }
}

/// The period to judge, `[from, to)`, and its followers read over it.
#[derive(Debug)]
pub(crate) struct Span {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub followed: Vec<Followed>,
}

/// Judges the period of `fleet` (read with the inventory, as of `fleet.now`).
pub(crate) fn judge(fleet: &Fleet, span: Span, signers: Option<&AllowedSigners>) -> Period {
    let Span { from, to, followed } = span;
    let trusted = signers.is_some() && fleet.allowed_signers.is_some();
    let within = |d: &Drill| d.started_at.filter(|t| *t >= from && *t < to);
    let mut databases = Vec::new();
    let mut unlisted = Vec::new();
    for subject in &fleet.subjects {
        let Some(listed) = subject.listed.clone() else {
            if subject.drills.iter().any(|d| within(d).is_some()) {
                unlisted.push(subject.name.clone());
            }
            continue;
        };
        let drills: Vec<PeriodDrill> =
            subject.drills.iter().filter_map(|d| within(d).map(|at| period_drill(d, at, fleet, trusted))).collect();
        let cadence = cadence(subject);
        let spans = cadence.every().map(|c| windows::split(from, to, c)).unwrap_or_default();
        let starts: Vec<(OffsetDateTime, bool)> = drills.iter().map(|d| (d.started_at, d.proves)).collect();
        let windows = windows::judge(&spans, &starts, fleet.now);
        let control =
            subject.drills.iter().rev().find_map(|d| d.record.as_ref()).is_some_and(|r| r.scenario.control.is_some());
        let followed = followed.iter().filter(|f| follows(subject, f)).cloned().collect();
        let name = subject.name.clone();
        let mut database = Database { name, listed, cadence, control, drills, windows, followed, exceptions: vec![] };
        database.exceptions = exceptions::of(&database, trusted);
        databases.push(database);
    }
    Period {
        from,
        to,
        now: fleet.now,
        inputs: fleet.inputs.clone(),
        inventory: fleet.inventory.clone().unwrap_or_default(),
        allowed_signers: fleet.allowed_signers.clone(),
        unsigned_ok: fleet.unsigned_ok,
        databases,
        unlisted,
    }
}

/// Whether `f` follows the database `subject`: the scenario it follows is its name, or one of
/// its drills'.
fn follows(subject: &Subject, f: &Followed) -> bool {
    subject.name == f.scenario || subject.drills.iter().any(|d| d.scenario == f.scenario)
}

/// The cadence of an inventory's database: the inventory's, else its newest drill's objective.
fn cadence(subject: &Subject) -> Cadence {
    if let Some(every) = subject.cadence {
        return Cadence::Inventory(every);
    }
    let newest =
        subject.drills.iter().rev().find_map(|d| d.record.as_ref().and_then(|r| r.scenario.objectives.cadence));
    newest.map_or(Cadence::Unknown, Cadence::Objectives)
}

fn period_drill(drill: &Drill, started_at: OffsetDateTime, fleet: &Fleet, trusted: bool) -> PeriodDrill {
    let record = drill.record.as_deref();
    let passed = record.is_some_and(|r| match crate::outcome::control_held(r) {
        Some(held) => held,
        None => drill.passed(),
    });
    let evidence = evidence_gap(drill, trusted, fleet.unsigned_ok);
    PeriodDrill {
        drill: drill.clone(),
        started_at,
        passed,
        proves: passed && evidence.is_none(),
        evidence: evidence.map(|gap| match gap {
            Gap::Evidence { what, .. } => what,
            _ => "was not checked: no --allowed-signers (--unsigned-ok accepts evidence no one vouches for)".into(),
        }),
        backup_age: record.and_then(|r| r.backup.as_ref()?.taken_at).map(|taken| age(taken, started_at)),
        sampled: record.is_some_and(|r| r.sample.is_some()),
        rto_met: record.and_then(|r| objective(r, "objectives/rto")),
        rpo_met: record.and_then(|r| objective(r, "objectives/rpo")),
    }
}

fn age(taken: OffsetDateTime, at: OffsetDateTime) -> Duration {
    Duration::try_from(at - taken).unwrap_or(Duration::ZERO)
}

/// Whether the record's check `id` passed, when it has one.
fn objective(record: &DrillRecord, id: &str) -> Option<bool> {
    record.checks.iter().find(|c| c.id == id).map(|c| c.verdict == Verdict::Pass)
}
