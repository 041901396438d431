//! What a caller asks of a drill (where its reports go, what to keep, what reads the restore
//! instead of the checks), and what a drill leaves.

use std::path::PathBuf;
use std::sync::Arc;

use super::snapshot::SnapshotOptions;
use crate::dump::DumpSummary;
use crate::outcome::DrillRecord;
use crate::provision::{self, Target};
use crate::report::{ReportError, ReportPaths};
use crate::scenario::ScenarioError;
use crate::secret::Redactor;

/// Where a drill writes its reports.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Reports go to `<reports_root>/<scenario>/<UTC timestamp>/`...
    pub reports_root: PathBuf,
    /// ...unless this names the exact folder.
    pub out_dir: Option<PathBuf>,
    /// The scenario's history of drills, when not where the reports go (`history.jsonl` in the
    /// scenario's folder under `reports_root`, or in `out_dir`).
    pub history: Option<PathBuf>,
    /// Drill this backup instead of the scenario's source.
    pub backup: Option<PathBuf>,
    /// Drill a backup drawn from the folder's older backups within this window of the newest
    /// (`--sample within=30d`: as written, and its length) instead of the newest.
    pub sample_within: Option<(String, std::time::Duration)>,
    /// The seed of that draw, chosen by whoever runs the drill (`--seed`) and recorded as
    /// theirs; by default it is derived.
    pub sample_seed: Option<String>,
    /// Apply this globals file instead of the scenario's.
    pub globals: Option<PathBuf>,
    /// Capture a baseline from the restored database into this file instead of running the
    /// scenario's checks.
    pub baseline_out: Option<PathBuf>,
    /// Run only the checks of these kinds (`api` for the application's requests).
    pub only_kinds: Option<Vec<crate::outcome::CheckKind>>,
    /// Whether to leave the target running after the drill instead of removing it.
    pub keep: Keep,
    /// Hand the restored database to this instead of running the scenario's checks (`pgdrill
    /// init`); preflight then creates the roles the dump names that nothing else creates.
    pub(crate) inspect: Option<Arc<dyn Inspect>>,
    /// Keep the restore as a snapshot, or clone one instead of restoring (`--snapshot`,
    /// `--reuse`).
    pub(crate) snapshots: Option<SnapshotOptions>,
    /// Verify a dump whole before its restore reads it (`--verify-first`), whatever the
    /// scenario says.
    pub verify_first: bool,
    /// Sign the drill's evidence with this key (or say in the reports why the key given cannot).
    pub(crate) signing: Option<crate::evidence::sign::Signing>,
    /// Drill on the pod's server container whatever the scenario's target (`--target pod`).
    pub on_pod: bool,
    /// The drill's share of the budget of drills run at once (`--jobs`): its target's default
    /// memory, disk and processes.
    pub(crate) share: Option<crate::budget::Share>,
    /// Keep the standby replaying the archive as it grows instead of promoting it (`pgdrill
    /// follow`): the restore phase lasts until it is stopped.
    pub(crate) follow: Option<crate::follow::FollowOptions>,
    /// Drill a copy of a follower's cluster instead of the scenario's backup (a drill of "now").
    pub(crate) of_follower: Option<super::follow::OfFollower>,
}

/// When a drill leaves its target running for someone to look into (`--keep`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Keep {
    /// Always remove it (the default).
    #[default]
    Never,
    /// Keep it whatever the verdict.
    Always,
    /// Keep it when the drill failed.
    OnFailure,
}

/// Reads a restored database in place of a scenario's checks, and says in a line what it did
/// (the checks phase's summary): `pgdrill init`.
pub(crate) trait Inspect: Send + Sync + std::fmt::Debug {
    fn inspect<'a>(
        &'a self,
        restored: Restored<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<String, Box<dyn std::error::Error + Send + Sync>>>;
}

/// The restored (or recovered) database, as the checks would see it.
pub(crate) struct Restored<'a> {
    pub(crate) target: &'a Target,
    /// The database the checks would run in.
    pub database: &'a str,
    /// What the dump held (empty for a physical backup).
    pub dump: &'a DumpSummary,
    pub(crate) redactor: &'a Redactor,
    /// The roles preflight created: the scenario's, its globals file's, and those the dump named
    /// that nothing else created.
    pub roles_created: Vec<String>,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            reports_root: PathBuf::from("reports"),
            out_dir: None,
            history: None,
            backup: None,
            sample_within: None,
            sample_seed: None,
            globals: None,
            baseline_out: None,
            only_kinds: None,
            keep: Keep::Never,
            inspect: None,
            snapshots: None,
            verify_first: false,
            signing: None,
            on_pod: false,
            share: None,
            follow: None,
            of_follower: None,
        }
    }
}

/// What a drill leaves: its record and where its reports are.
pub struct DrillOutcome {
    /// The drill's record, closed: what its `drill.json` holds.
    pub record: DrillRecord,
    /// Where its reports were written, or why they could not be (the drill then fails).
    pub reports: Result<ReportPaths, ReportError>,
    /// Why the scenario could not be used, with its source location, for a rich display.
    pub scenario_error: Option<ScenarioError>,
    /// The target, when it was kept running after the drill, and how to reach it.
    pub(crate) kept: Option<provision::kept::Kept>,
    /// What became of the snapshot the drill made (`--snapshot`), in a line.
    pub snapshot: Option<String>,
}

impl DrillOutcome {
    /// A drill passes when every phase and every check passed and its reports were written.
    pub fn passed(&self) -> bool {
        self.record.verdict == crate::outcome::DrillVerdict::Pass && self.reports.is_ok()
    }

    /// A drill did what was asked of it: it passed, or, a negative control, it failed where it
    /// must (`[control] fails_in`); and its reports were written.
    pub fn succeeded(&self) -> bool {
        match crate::outcome::control_held(&self.record) {
            Some(held) => held && self.reports.is_ok(),
            None => self.passed(),
        }
    }
}
