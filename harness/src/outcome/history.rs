//! The history of a scenario's drills: `reports/<scenario>/history.jsonl`, one line per drill,
//! appended after its reports are written. The next drill's report compares itself with the
//! last drill of the same scenario, and draws the recovery time of the past ones.
//!
//! Each line names its scenario: with `--out`, the history is the folder above the report, which
//! drills of several scenarios may share, and a drill compares itself only with its own
//! scenario's (lines written before they named one are not compared with anything).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{DrillRecord, Verdict};

/// One past drill, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The scenario's name (empty in lines written before the history named it).
    #[serde(default)]
    pub scenario: String,
    /// The drill's id, as its record has it.
    pub drill_id: String,
    /// When the drill started (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// The drill's verdict, as its record writes it: `pass`, `fail` or `interrupted`.
    pub verdict: String,
    /// How long the drill took, in milliseconds.
    pub duration_ms: u64,
    /// The recovery time it measured, in milliseconds: from its start until the restored
    /// database was ready for checks. None when it did not get there.
    pub recovery_ms: Option<u64>,
    /// The backup's age when the drill started, when known.
    #[serde(default)]
    pub backup_age_ms: Option<u64>,
    /// The RTO in force for that drill, in milliseconds; none when the scenario set none.
    #[serde(default)]
    pub rto_ms: Option<u64>,
    /// The RPO in force for that drill, in milliseconds; none when the scenario set none.
    #[serde(default)]
    pub rpo_ms: Option<u64>,
    /// Phase to milliseconds.
    pub phases: BTreeMap<String, u64>,
    /// Rows the restore loaded; none when it did not pass (zero for a physical backup's
    /// recovery, which loads no rows).
    pub rows_restored: Option<u64>,
    /// Checks that passed.
    pub checks_passed: usize,
    /// Checks in all: the scenario's, the application's requests and the objectives.
    pub checks_total: usize,
    /// Checks that did not pass.
    pub not_passed: Vec<String>,
    /// The backup's sha256 (hex), as its record has it; empty when the drill took none.
    pub backup_sha256: String,
    /// The backup's size as stored, in bytes; zero when the drill did not find it.
    pub backup_size: u64,
    /// The sha256 of the scenario file the drill ran (hex).
    pub scenario_sha256: String,
    /// The folder the drill's reports were written to.
    pub report_dir: String,
    /// sha256 of the drill's MANIFEST.sha256, which holds the digest of every report file.
    pub manifest_sha256: String,
    /// Append-only tables' key ranges, fingerprinted, that this drill proved or first recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trails: Vec<crate::fingerprint::TableFingerprint>,
    /// The drill whose restore this drill's database is a clone of (no recovery was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_of: Option<String>,
    /// The fingerprint of the key that signed the drill's evidence, when it was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// What kind of backup it drilled, when its verify accepted it (a kind that changed unasked
    /// fails verify, and is not kept: the next drill compares with the kind last accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_kind: Option<crate::outcome::BackupKind>,
    /// It failed only where nothing is said about the backup (`outcome::could_not_run`: exit
    /// code 3): its `fail` is no verdict on the backup.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub could_not_run: bool,
}

impl HistoryEntry {
    /// Whether the drill ran to a verdict on the backup: passed, or failed for what it found
    /// (not interrupted, and not a drill that could not run).
    pub fn ran(&self) -> bool {
        crate::outcome::ran_to_a_verdict(&self.verdict, self.could_not_run)
    }

    pub(crate) fn of(record: &DrillRecord, report_dir: &Path, manifest_sha256: String) -> Self {
        let (passed, not_passed) = record.check_counts();
        HistoryEntry {
            scenario: record.scenario.name.clone(),
            drill_id: record.drill_id.clone(),
            started_at: record.started_at,
            verdict: record.verdict.as_str().to_owned(),
            duration_ms: record.duration.as_millis() as u64,
            recovery_ms: record.recovery.map(|r| r.as_millis() as u64),
            backup_age_ms: record.backup_age().map(|a| a.as_millis() as u64),
            rto_ms: record.scenario.objectives.rto.map(|d| d.as_millis() as u64),
            rpo_ms: record.scenario.objectives.rpo.map(|d| d.as_millis() as u64),
            phases: record
                .phases
                .iter()
                .filter(|p| p.started_at.is_some())
                .map(|p| (p.phase.as_str().to_owned(), p.duration.as_millis() as u64))
                .collect(),
            rows_restored: record.restore.as_ref().map(|r| r.rows),
            checks_passed: passed,
            checks_total: passed + not_passed,
            not_passed: record.checks.iter().filter(|c| c.verdict != Verdict::Pass).map(|c| c.id.clone()).collect(),
            backup_sha256: record.backup.as_ref().map(|b| b.sha256.clone()).unwrap_or_default(),
            backup_size: record.backup.as_ref().map(|b| b.size_bytes).unwrap_or_default(),
            scenario_sha256: record.scenario.sha256.clone(),
            report_dir: report_dir.display().to_string(),
            manifest_sha256,
            trails: record.checks.iter().filter_map(|c| c.trail.clone()).collect(),
            clone_of: record.clone_of.as_ref().map(|c| c.drill_id.clone()),
            signed_by: record.signature.as_ref().and_then(|s| s.signed_by.clone()),
            backup_kind: record
                .phase(crate::outcome::Phase::Verify)
                .filter(|p| p.status == crate::outcome::PhaseStatus::Passed)
                .and_then(|_| record.backup.as_ref().filter(|b| !b.given)?.kind.clone()),
            could_not_run: crate::outcome::could_not_run(record),
        }
    }
}

/// The name of a scenario's history file.
pub const NAME: &str = "history.jsonl";

/// The history file of `scenario`'s drills under the reports root `root`, beside their folders
/// (`<root>/<scenario>/<UTC timestamp>/`).
pub fn under_root(root: &Path, scenario: &str) -> PathBuf {
    root.join(scenario).join(NAME)
}

/// Past drills, oldest first; lines that cannot be read are skipped (a history is evidence,
/// not configuration: one bad line must not stop a drill).
pub fn read(path: &Path) -> Vec<HistoryEntry> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The past drills of `scenario` in the history at `path`, oldest first.
pub fn of_scenario(path: &Path, scenario: &str) -> Vec<HistoryEntry> {
    read(path).into_iter().filter(|e| e.scenario == scenario).collect()
}

/// Each append-only table's latest trail in `past` (oldest first), with the drill that kept it.
pub(crate) fn trails(past: &[HistoryEntry]) -> crate::fingerprint::Trails {
    let mut trails = crate::fingerprint::Trails::new();
    for entry in past.iter().rev() {
        for fingerprint in &entry.trails {
            trails.entry(fingerprint.table.clone()).or_insert_with(|| crate::fingerprint::Trail {
                drill_id: entry.drill_id.clone(),
                started_at: entry.started_at,
                fingerprint: fingerprint.clone(),
            });
        }
    }
    trails
}

/// Appends `entry` as a line of the history at `path`.
pub fn append(path: &Path, entry: &HistoryEntry) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut line = serde_json::to_string(entry).unwrap_or_default();
    line.push('\n');
    file.write_all(line.as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use time::OffsetDateTime;

    use crate::outcome::{DrillRecord, ScenarioInfo, finish};

    /// A finished drill of `scenario`, its file's digest `file_sha256` repeated (the report's
    /// tests share it).
    pub(crate) fn drill(scenario: &str, file_sha256: &str) -> DrillRecord {
        let info = ScenarioInfo { name: scenario.into(), sha256: file_sha256.repeat(64), ..ScenarioInfo::default() };
        let mut record =
            DrillRecord::new(format!("{scenario}-{file_sha256}"), info, Default::default(), OffsetDateTime::now_utc());
        finish(&mut record, OffsetDateTime::now_utc(), false);
        record
    }

    /// An entry of a drill of a `format` backup whose verify ended `verify` (the source's tests
    /// share it).
    pub(crate) fn drilled(id: &str, format: &str, verify: crate::outcome::PhaseStatus) -> super::HistoryEntry {
        use crate::outcome::{BackupInfo, BackupKind, Phase, PhaseRecord};
        let mut record = drill("s", id);
        let kind = BackupKind { format: format.into(), ..BackupKind::default() };
        record.backup = Some(BackupInfo { kind: Some(kind), ..Default::default() });
        record.phases.retain(|p| p.phase != Phase::Verify);
        record.phases.push(PhaseRecord {
            phase: Phase::Verify,
            status: verify,
            started_at: None,
            duration: Default::default(),
            summary: String::new(),
            error: None,
            inconclusive: false,
        });
        super::HistoryEntry::of(&record, std::path::Path::new("r"), String::new())
    }

    /// The kind of backup a drill's verify accepted is kept; a drill whose verify failed (a
    /// change of kind refused) keeps none, and lines written before kinds were kept read as
    /// keeping none.
    #[test]
    fn the_history_keeps_the_kind_verify_accepted() {
        use crate::outcome::{BackupKind, PhaseStatus};
        let accepted = drilled("a", "custom", PhaseStatus::Passed);
        let refused = drilled("b", "plain", PhaseStatus::Failed);
        assert_eq!(accepted.backup_kind, Some(BackupKind { format: "custom".into(), ..BackupKind::default() }));
        assert_eq!(refused.backup_kind, None, "a kind verify refused is not kept");
        let mut old = serde_json::to_value(&accepted).unwrap();
        old.as_object_mut().unwrap().remove("backup_kind");
        let old: super::HistoryEntry = serde_json::from_value(old).unwrap();
        assert_eq!(old.backup_kind, None, "a line written before kinds were kept");
    }
}
