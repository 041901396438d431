//! The drill's record: everything a drill produced, phase by phase and check by check, as
//! `drill.json` holds it and every report renders it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::check::{CheckResult, Verdict};
use crate::outcome::BackupInfo;
use crate::outcome::PreflightReport;
use crate::outcome::RestoreStats;
use crate::outcome::TargetInfo;

/// The record format's name and version, written into `drill.json`.
pub const RECORD_SCHEMA: &str = "pgdrill.drill.v1";

/// A phase of the drill, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Phase {
    /// Reads the scenario file and checks its values.
    Resolve,
    /// Locates the backup, and downloads it when it is remote.
    Fetch,
    /// Reads the whole backup before its restore: its integrity, its sha256, its dump header.
    Verify,
    /// Starts the throwaway target.
    Provision,
    /// Checks that the target can take the backup: its version, extensions, roles, settings.
    Preflight,
    /// Restores the dump (or recovers the physical backup), stopping at the first error.
    Restore,
    /// Keeps a copy of the restored cluster as a snapshot (`--snapshot`): only when asked.
    Snapshot,
    /// Applies the pending migrations (`[migrate]`, a pre-migration safety check).
    Migrate,
    /// Runs the scenario's checks on the restored database.
    Checks,
    /// Boots the application against the restored database and calls its API (`[app]`).
    App,
    /// Removes the throwaway target, or keeps it (`--keep`).
    Teardown,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 11] = [
        Phase::Resolve,
        Phase::Fetch,
        Phase::Verify,
        Phase::Provision,
        Phase::Preflight,
        Phase::Restore,
        Phase::Snapshot,
        Phase::Migrate,
        Phase::Checks,
        Phase::App,
        Phase::Teardown,
    ];

    /// As the records and reports write it: `resolve`, `fetch`, `verify`, ... `teardown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Fetch => "fetch",
            Phase::Verify => "verify",
            Phase::Provision => "provision",
            Phase::Preflight => "preflight",
            Phase::Restore => "restore",
            Phase::Snapshot => "snapshot",
            Phase::Migrate => "migrate",
            Phase::Checks => "checks",
            Phase::App => "app",
            Phase::Teardown => "teardown",
        }
    }

    /// What the phase proves, for readers of the Markdown report.
    pub fn purpose(self) -> &'static str {
        match self {
            Phase::Resolve => "read and validate the scenario file",
            Phase::Fetch => "locate the backup",
            Phase::Verify => "read the whole backup: integrity, sha256, dump header",
            Phase::Provision => "start a throwaway PostgreSQL",
            Phase::Preflight => "target can take the dump: version, extensions, roles, settings",
            Phase::Restore => "restore the dump, stopping at the first error",
            Phase::Snapshot => {
                "keep the restored cluster, shut down cleanly and its checksums read, as a snapshot later drills clone"
            }
            Phase::Migrate => "apply the pending migrations (pre-migration safety check)",
            Phase::Checks => "prove the restored database is the one the application needs",
            Phase::App => "boot the application against the restored database and call its API",
            Phase::Teardown => "remove the throwaway target",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a phase ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PhaseStatus {
    /// Started and not ended: only in a record taken while the drill runs.
    Running,
    /// Did what it does.
    Passed,
    /// Stopped on an error; the drill stops there (teardown still runs).
    Failed,
    /// Did not run: an earlier phase failed, the scenario does not ask for it, or it was
    /// stopped before it could end. The record's `error` says which.
    Skipped,
    /// Was running when the drill was interrupted (SIGINT, SIGTERM).
    Interrupted,
}

impl PhaseStatus {
    /// As the records and reports write it: `running`, `passed`, `failed`, `skipped`,
    /// `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Running => "running",
            PhaseStatus::Passed => "passed",
            PhaseStatus::Failed => "failed",
            PhaseStatus::Skipped => "skipped",
            PhaseStatus::Interrupted => "interrupted",
        }
    }
}

/// One phase as it ran (or why it did not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// Which phase.
    pub phase: Phase,
    /// How it ended.
    pub status: PhaseStatus,
    /// When it started (RFC 3339, UTC); none for a phase that never started.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub started_at: Option<OffsetDateTime>,
    /// How long it ran (`duration_ms`, in milliseconds); zero for a phase that never started.
    #[serde(with = "crate::units::duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// What it did, in a line.
    pub summary: String,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// It failed for a reason that says nothing about the backup (the backup could not be
    /// reached, the target could not start, teardown, or such a phase's deadline): a drill that
    /// failed only so could not run, and may pass when run again (exit code 3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inconclusive: bool,
}

/// The drill's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrillVerdict {
    /// The drill has not ended: only in a record taken while it runs.
    Running,
    /// Every phase and every check passed.
    Pass,
    /// A phase failed or a check did not pass; the record's `failure` says which. A drill that
    /// failed only for reasons that say nothing about the backup could not run (exit code 3):
    /// see [`PhaseRecord::inconclusive`].
    Fail,
    /// The drill was interrupted (SIGINT, SIGTERM): no verdict on the backup.
    Interrupted,
}

impl DrillVerdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DrillVerdict::Running => "running",
            DrillVerdict::Pass => "pass",
            DrillVerdict::Fail => "fail",
            DrillVerdict::Interrupted => "interrupted",
        }
    }
}

/// The scenario a drill ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Its name: the file's `name`, else the file's name without its extension. For a file
    /// that could not be used, that name made safe for a folder.
    pub name: String,
    /// Its `description`, when it has one.
    pub description: Option<String>,
    /// The scenario file's path, as it was given.
    pub file: String,
    /// The sha256 of the scenario file's bytes, in hex: which version of it ran. Empty when the
    /// file could not be read.
    pub sha256: String,
    /// Its `tags`.
    pub tags: Vec<String>,
    /// Why the scenario trusts its backup (`[source] trusted`), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted: Option<String>,
    /// The recovery objectives the drill is judged against.
    #[serde(default, skip_serializing_if = "crate::objectives::Objectives::is_empty")]
    pub objectives: crate::objectives::Objectives,
    /// A negative control: the phase the drill must fail in (`[control] fails_in`), when it is
    /// one; see [`crate::outcome::control_held`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Phase>,
}

/// Who ran the drill, where, with what.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunnerInfo {
    /// The user who ran it: `USER`, `LOGNAME` or `USERNAME`, else this process's user in
    /// `/etc/passwd`; `unknown` when none says.
    pub user: String,
    /// The machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`); `unknown` when
    /// neither says.
    pub host: String,
    /// The version of pgdrill that ran it.
    pub pgdrill_version: String,
    /// The operating system and architecture it ran on: `linux/x86_64`.
    pub os: String,
    /// The CI system and run, when the drill ran in one.
    pub ci: Option<String>,
}

impl RunnerInfo {
    pub(crate) fn detect() -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let user = env("USER")
            .or_else(|| env("LOGNAME"))
            .or_else(|| env("USERNAME"))
            .or_else(user_from_passwd)
            .unwrap_or_else(|| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .or_else(|| env("HOSTNAME"))
            .unwrap_or_else(|| "unknown".into());
        let ci = if let (Some(server), Some(repo), Some(run)) =
            (env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY"), env("GITHUB_RUN_ID"))
        {
            Some(format!("GitHub Actions {server}/{repo}/actions/runs/{run}"))
        } else if let Some(url) = env("CI_JOB_URL") {
            Some(format!("GitLab CI {url}"))
        } else {
            env("CI").map(|_| "CI".to_owned())
        };
        RunnerInfo {
            user,
            host,
            pgdrill_version: env!("CARGO_PKG_VERSION").to_owned(),
            os: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
            ci,
        }
    }
}

/// The name of the user this process runs as, from `/etc/passwd` (for when `USER` is unset,
/// as in containers and cron jobs).
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// Everything a drill produced: the content of `drill.json`, and what the other reports show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRecord {
    /// The record's format and version: [`RECORD_SCHEMA`].
    pub schema: String,
    /// The drill's id, 32 random hex digits: the history, the evidence and a snapshot name the
    /// drill by it.
    pub drill_id: String,
    /// The scenario it ran.
    pub scenario: ScenarioInfo,
    /// Who ran it, where, with what.
    pub runner: RunnerInfo,
    /// When it started (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended; none while it runs.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub finished_at: Option<OffsetDateTime>,
    /// From its start to its end (`duration_ms`, in milliseconds); zero while it runs.
    #[serde(with = "crate::units::duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// From the drill's start until the restored database was ready for checks: the measured
    /// recovery time.
    #[serde(with = "crate::units::duration_ms::option", rename = "recovery_ms", default)]
    pub recovery: Option<Duration>,
    /// The drill was stopped because its RTO had passed before the database was restored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rto_passed: bool,
    /// The drill's verdict.
    pub verdict: DrillVerdict,
    /// Why the drill failed, in a line.
    pub failure: Option<String>,
    /// The backup, from when fetch found it (the rest of what it is, once verify read it);
    /// none when the drill stopped before.
    pub backup: Option<BackupInfo>,
    /// The backup was drawn from a window of older ones (`--sample`), not the newest: the plan
    /// of the draw (`plan.json`), which anyone can re-derive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<crate::outcome::SamplePlan>,
    /// The target the drill restored into, once it started; none when it did not.
    pub target: Option<TargetInfo>,
    /// What preflight found on the target, when it passed.
    pub preflight: Option<PreflightReport>,
    /// What the restore (or recovery) did, when it passed.
    pub restore: Option<RestoreStats>,
    /// The migrations applied after the restore (pre-migration safety check).
    #[serde(default)]
    pub migrate: Option<crate::outcome::MigrateInfo>,
    /// The application booted against the restored database.
    #[serde(default)]
    pub app: Option<crate::outcome::AppInfo>,
    /// Each phase, in the order they run; once the drill ended, every phase is here, those
    /// that never ran skipped with why (the snapshot phase only when one was asked for).
    pub phases: Vec<PhaseRecord>,
    /// Every check's result, as they ran: the scenario's checks (those that never ran,
    /// skipped), the application's requests, then the objectives judged when the drill ended.
    pub checks: Vec<CheckResult>,
    /// What the pgdrill process itself used, up to the end of this drill.
    #[serde(default)]
    pub usage: Option<ProcessUsage>,
    /// The target, when it was kept running after the drill (`--keep`): its name, never how to
    /// log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<crate::outcome::KeptInfo>,
    /// The database is a clone of a snapshot, not a restore of this drill's: which drill's
    /// restore it is. That drill proved the restore; this one proves the checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_of: Option<CloneOf>,
    /// How the drill's evidence is signed (`evidence.intoto.json.sig`), when a signing key was
    /// given: the key's public fingerprint, or why it could not sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureInfo>,
}

/// The snapshot a drill's database is a clone of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneOf {
    /// The snapshot's id in the store.
    pub snapshot: String,
    /// The drill that restored it, and passed.
    pub drill_id: String,
    /// When the snapshot was made (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub made_at: OffsetDateTime,
    /// The backup it restored.
    pub backup_sha256: String,
    /// How that drill's report is found: the copy the snapshot keeps.
    pub report: String,
    /// How its data checksums were verified when it was made.
    pub checksums: String,
    /// What the clone's own layer took on disk when the drill ended: its files (an overlay's
    /// writes and the files copied up to take them, a copy's), or how much its file system's
    /// free space fell while it ran (a reflinked copy, whose files share the snapshot's blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_bytes: Option<u64>,
}

/// The pgdrill process's own footprint (over all its drills so far, when one command runs
/// several): the share of a drill's time spent in pgdrill (decompressing, parsing,
/// dispatching, reporting) rather than in PostgreSQL, and the memory it needed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// CPU time, user and system.
    pub cpu_ms: u64,
    /// Peak resident memory (VmHWM).
    pub peak_rss_bytes: u64,
    /// How many drills the process ran at once (`--jobs`), when more than one: the usage is
    /// theirs together, no share of this drill's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills_at_once: Option<usize>,
}

impl ProcessUsage {
    /// This process's usage so far, from `/proc/self` (Linux); `None` elsewhere.
    pub fn now() -> Option<ProcessUsage> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let peak_kib: u64 =
            status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
        // Fields after the command (which may hold spaces) start at `state`: utime and stime
        // are the 12th and 13th of them, in clock ticks (100 a second on Linux).
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ProcessUsage { cpu_ms: ticks * 10, peak_rss_bytes: peak_kib * 1024, drills_at_once: None })
    }
}

impl DrillRecord {
    /// An open record of the drill `drill_id` of `scenario`, started at `started_at`: running,
    /// no phase or check yet (what `Event::Started` carries; tests build records from it).
    pub fn new(drill_id: String, scenario: ScenarioInfo, runner: RunnerInfo, started_at: OffsetDateTime) -> Self {
        DrillRecord {
            schema: RECORD_SCHEMA.to_owned(),
            drill_id,
            scenario,
            runner,
            started_at,
            finished_at: None,
            duration: Duration::ZERO,
            recovery: None,
            rto_passed: false,
            verdict: DrillVerdict::Running,
            failure: None,
            backup: None,
            sample: None,
            target: None,
            preflight: None,
            restore: None,
            migrate: None,
            app: None,
            phases: Vec::new(),
            checks: Vec::new(),
            usage: None,
            kept: None,
            clone_of: None,
            signature: None,
        }
    }

    /// How `phase` ran; none when the record has no such phase (yet: once the drill ended, it
    /// has each, but the snapshot phase only when one was asked for).
    pub fn phase(&self, phase: Phase) -> Option<&PhaseRecord> {
        self.phases.iter().find(|p| p.phase == phase)
    }

    /// What went wrong, for a failing test or a CI log: the verdict, the first failure, and
    /// every check that did not pass with expected against actual.
    pub fn failure_summary(&self) -> String {
        let mut out = format!("drill `{}`: {}", self.scenario.name, self.verdict.as_str().to_uppercase());
        if let Some(failure) = &self.failure {
            out.push_str(&format!(" ({})", failure.lines().next().unwrap_or_default()));
        }
        for p in self.phases.iter().filter(|p| matches!(p.status, PhaseStatus::Failed | PhaseStatus::Interrupted)) {
            out.push_str(&format!("\n  phase {}: {}", p.phase, p.error.as_deref().unwrap_or("failed")));
        }
        for c in self.checks.iter().filter(|c| c.verdict != Verdict::Pass && c.verdict != Verdict::Skipped) {
            out.push_str(&format!(
                "\n  {} {}: expected {}, actual {} ({})",
                c.verdict, c.id, c.expected, c.actual, c.message
            ));
        }
        out
    }

    /// Checks by verdict: (passed, not passed).
    pub fn check_counts(&self) -> (usize, usize) {
        let passed = self.checks.iter().filter(|c| c.verdict == Verdict::Pass).count();
        (passed, self.checks.len() - passed)
    }

    /// The backup's age when the drill started, when the backup says when it was taken.
    pub fn backup_age(&self) -> Option<Duration> {
        let taken = self.backup.as_ref()?.taken_at?;
        Some(Duration::try_from(self.started_at - taken).unwrap_or_default())
    }

    /// The checks' results in words, each verdict counted: `5 of 6 checks passed, 1 failed`;
    /// `none of its 8 checks ran` when the drill stopped before them.
    pub fn checks_tally(&self) -> String {
        let count = |verdict| self.checks.iter().filter(|c| c.verdict == verdict).count();
        let total = self.checks.len();
        let (passed, failed, errors, skipped) =
            (count(Verdict::Pass), count(Verdict::Fail), count(Verdict::Error), count(Verdict::Skipped));
        if total == 0 {
            return "no checks".into();
        }
        if skipped == total {
            return format!("none of its {total} checks ran");
        }
        let mut parts = vec![format!("{passed} of {total} checks passed")];
        for (n, what) in [(failed, "failed"), (errors, "could not run"), (skipped, "skipped")] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(", ")
    }
}

/// How a drill's evidence is signed, as `drill.json` records it: the key's public fingerprint,
/// or why a key was given and the evidence is not signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureInfo {
    /// The signing key's fingerprint (`SHA256:...`), when the evidence is signed.
    pub signed_by: Option<String>,
    /// Its algorithm (`ssh-ed25519`).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// The SSHSIG namespace to verify with.
    pub namespace: String,
    /// The in-toto statement's file.
    pub statement: String,
    /// The signature's file, when signed.
    #[serde(default)]
    pub signature: Option<String>,
    /// Why the evidence is not signed although a key was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsigned: Option<String>,
}

#[cfg(test)]
impl SignatureInfo {
    /// Evidence signed by an ed25519 key of this fingerprint, as `drill.json` records it (the
    /// tests of what reads the record share it).
    pub(crate) fn signed_by(fingerprint: &str) -> SignatureInfo {
        SignatureInfo {
            signed_by: Some(fingerprint.to_owned()),
            algorithm: Some("ssh-ed25519".into()),
            namespace: "pgdrill-evidence@pgdrill.dev".into(),
            statement: "evidence.intoto.json".into(),
            signature: Some("evidence.intoto.json.sig".into()),
            unsigned: None,
        }
    }
}

#[cfg(test)]
mod tests;
