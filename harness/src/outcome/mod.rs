//! The drill's outcome, decided once and rendered by the reports: what each check found
//! ([`CheckResult`]), the record of the whole drill ([`DrillRecord`], `drill.json`), the event
//! stream that builds it ([`Events`]), and the one place that decides the verdict (`verdict`).
//! A model: it renders nothing and imports no renderer.

mod app;
mod backup;
mod check;
pub(crate) mod diff;
mod events;
mod finding;
pub mod history;
mod objectives;
mod premises;
mod record;
mod restore;
mod sample;
mod target;
mod verdict;

pub use app::{AppInfo, MigrateInfo};
pub use backup::{BackupInfo, BackupKind};
pub(crate) use check::NO_CHECKS;
pub use check::{CheckKind, CheckResult, CheckResultBuilder, Verdict};
pub use events::{Event, Events, Reporter};
pub(crate) use finding::findings;
pub use finding::{About, Common, Finding, lookup, malformed};
pub use objectives::{Objective, ObjectiveFinding};
pub use premises::{Established, Premise};
pub use record::{
    CloneOf, DrillRecord, DrillVerdict, Phase, PhaseRecord, PhaseStatus, ProcessUsage, RECORD_SCHEMA, RunnerInfo,
    ScenarioInfo, SignatureInfo,
};
pub use restore::{CatalogAudit, PreflightReport, Reach, Recovered, RestoreStats, Stop};
#[cfg(test)]
pub(crate) use sample::example as example_plan;
pub use sample::{
    ALGORITHM as SAMPLE_ALGORITHM, DrawInputs, ListedBackup, PLAN_FILE, SampleError, SamplePlan, SampleSeed, SeedFrom,
};
pub use target::{Isolation, KeptInfo, Observed, TargetInfo};
#[cfg(test)]
pub(crate) use verdict::finish;
pub use verdict::{control_held, could_not_run, passes, ran_to_a_verdict};

/// The objectives the business set, as the record keeps them with the scenario.
pub use crate::objectives::Objectives;
