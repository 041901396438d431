//! The drill's event stream: every event updates the record, then goes to each reporter (the
//! console follows it as it happens).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::check::CheckResult;
use super::record::{CloneOf, DrillRecord, Phase, PhaseRecord, PhaseStatus};
use crate::outcome::BackupInfo;
use crate::outcome::PreflightReport;
use crate::outcome::RestoreStats;
use crate::outcome::TargetInfo;

/// What happens during a drill.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The drill started: its record as it opens (the scenario, the runner, the start).
    Started(Box<DrillRecord>),
    /// A phase started.
    PhaseStarted {
        /// Which.
        phase: Phase,
        /// When.
        at: OffsetDateTime,
    },
    /// A phase's progress, for the console: what it is doing, and how far it is.
    Progress {
        /// Which phase.
        phase: Phase,
        /// What it is doing.
        message: String,
        /// How much is done (bytes, for a download or a restore).
        done: Option<u64>,
        /// Of how much, when it is known.
        total: Option<u64>,
    },
    /// A phase ended: passed, failed, skipped or interrupted, with its summary or its error.
    PhaseFinished(PhaseRecord),
    /// What the backup is, as fetch and verify read it.
    Backup(BackupInfo),
    /// The backup was drawn from a window of older ones: the plan of the draw.
    Sampled(Box<crate::outcome::SamplePlan>),
    /// The target the drill restores into.
    Target(TargetInfo),
    /// What preflight found the backup needs and the target has.
    Preflight(PreflightReport),
    /// What the restore (or recovery) did.
    Restore(RestoreStats),
    /// A check's result (or an application request's, or an objective's).
    Check(CheckResult),
    /// The application booted on the restored database.
    App(crate::outcome::AppInfo),
    /// The migrations applied (a pre-migration drill).
    Migrate(crate::outcome::MigrateInfo),
    /// The target was kept running after the drill.
    Kept(crate::outcome::KeptInfo),
    /// The database is a clone of a snapshot.
    Cloned(CloneOf),
    /// The restored database is ready for checks.
    Recovered {
        /// Since the drill started: the recovery time the RTO is judged against.
        elapsed: Duration,
    },
    /// The RTO passed before the database was restored: the drill stopped.
    RtoPassed,
    /// The drill's work is over (not interrupted): the recovery objectives are judged against
    /// what it measured, a check each, before teardown (whose `--keep on-failure` reads them).
    ObjectivesJudged,
    /// The drill ended: the record closes and its verdict is decided ([`super::passes`]).
    Finished {
        /// When.
        at: OffsetDateTime,
        /// Whether it was interrupted (SIGINT, SIGTERM).
        interrupted: bool,
    },
}

/// Something that follows a drill's events (the console).
pub trait Reporter: Send {
    /// `event` happened; `record` is the drill's record with it applied.
    fn on_event(&mut self, event: &Event, record: &DrillRecord);
}

/// The drill's event stream: every event updates the record, then goes to each reporter.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Mutex<EventsInner>>,
}

struct EventsInner {
    record: Option<DrillRecord>,
    reporters: Vec<Box<dyn Reporter>>,
}

impl Events {
    /// A stream that hands each event to `reporters`, in order.
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Self {
        Events { inner: Arc::new(Mutex::new(EventsInner { record: None, reporters })) }
    }

    /// Applies `event` to the record (the first, [`Event::Started`], opens it), then hands it to
    /// each reporter.
    pub fn emit(&self, event: Event) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        if let Event::Started(record) = &event {
            inner.record = Some((**record).clone());
        }
        let Some(record) = inner.record.as_mut() else {
            return;
        };
        apply(record, &event);
        for reporter in inner.reporters.iter_mut() {
            reporter.on_event(&event, record);
        }
    }

    /// The record as it stands.
    pub fn record(&self) -> Option<DrillRecord> {
        self.inner.lock().ok().and_then(|i| i.record.clone())
    }
}

fn apply(record: &mut DrillRecord, event: &Event) {
    match event {
        Event::Started(_) | Event::Progress { .. } => {}
        Event::PhaseStarted { phase, at } => {
            record.phases.retain(|p| p.phase != *phase);
            record.phases.push(PhaseRecord {
                phase: *phase,
                status: PhaseStatus::Running,
                started_at: Some(*at),
                duration: Duration::ZERO,
                summary: String::new(),
                error: None,
                inconclusive: false,
            });
        }
        Event::PhaseFinished(finished) => {
            record.phases.retain(|p| p.phase != finished.phase);
            record.phases.push(finished.clone());
        }
        Event::Backup(info) => record.backup = Some(info.clone()),
        Event::Sampled(plan) => record.sample = Some((**plan).clone()),
        Event::Target(info) => record.target = Some(info.clone()),
        Event::Preflight(report) => record.preflight = Some(report.clone()),
        Event::Restore(stats) => record.restore = Some(stats.clone()),
        Event::Check(result) => record.checks.push(result.clone()),
        Event::App(info) => record.app = Some(info.clone()),
        Event::Migrate(info) => record.migrate = Some(info.clone()),
        Event::Kept(info) => record.kept = Some(info.clone()),
        Event::Cloned(of) => record.clone_of = Some(of.clone()),
        Event::Recovered { elapsed } => record.recovery = Some(*elapsed),
        Event::RtoPassed => record.rto_passed = true,
        Event::ObjectivesJudged => {
            let judged = super::verdict::objectives(record);
            record.checks.extend(judged);
        }
        Event::Finished { at, interrupted } => super::verdict::finish(record, *at, *interrupted),
    }
}
