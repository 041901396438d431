//! `record.json`: the drill as one flat object (strings, numbers, booleans and nulls, nothing
//! nested), the shape evidence tools ingest (a Vanta or Drata custom resource, a ServiceNow
//! record). A pure function of the [`DrillRecord`], deciding nothing: the verdict, whether the
//! drill could not run and whether each objective was met are the record's own judgements.
//! Its format is versioned ([`SCHEMA`]) and its JSON Schema (`schema/drill-record.v1.schema.json`,
//! `pgdrill schema --record`) is the contract: within v1 fields are only added.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;

use crate::outcome::{DrillRecord, DrillVerdict, Objective, Verdict};

/// The flat record's format and version, its `schema` field.
pub const SCHEMA: &str = "pgdrill.drill-record.v1";

/// The flat record's file in a drill's report folder.
pub const NAME: &str = "record.json";

/// Where the flat record's JSON Schema is published.
pub const SCHEMA_URL: &str = "https://github.com/pgdrill/pgdrill/raw/main/schema/drill-record.v1.schema.json";

/// The drill's verdict, as the flat record writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlatVerdict {
    /// Every phase and every check passed, the objectives among them.
    Pass,
    /// A phase failed or a check did not pass (`failure` says which); see `could_not_run`.
    Fail,
    /// The drill was interrupted (SIGINT, SIGTERM), or did not end: no verdict on the backup.
    Interrupted,
}

/// One drill as a flat record: every field always present, `null` when it was not measured or
/// does not apply (never `0` or an empty string in its place). Never a password, key or token.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(rename = "DrillRecordV1")]
pub struct FlatRecord {
    /// The record's format and version: `pgdrill.drill-record.v1`.
    #[schemars(extend("const" = SCHEMA))]
    pub schema: String,
    /// The drill's id, 32 hex digits; drill.json, the history and the signed evidence name the
    /// drill by it.
    pub drill_id: String,
    /// The scenario's name.
    pub scenario: String,
    /// The sha256 of the scenario file that ran, in hex; null when the file could not be read.
    pub scenario_sha256: Option<String>,
    /// `pass` (every phase and check passed, the objectives among them), `fail` (`failure` says
    /// why; see `could_not_run`) or `interrupted` (stopped by a signal: no verdict on the backup).
    #[schemars(with = "String", extend("enum" = ["pass", "fail", "interrupted"]))]
    pub verdict: FlatVerdict,
    /// The drill passed: `verdict` is `pass`.
    pub passed: bool,
    /// The drill failed only for reasons that say nothing about the backup (it could not be
    /// reached, the target could not start): no verdict on the backup, run it again.
    pub could_not_run: bool,
    /// A negative control's drill (`[control] fails_in`) failed where it must: true when it held,
    /// false when it is broken; null when the scenario is no control.
    pub control_held: Option<bool>,
    /// When the drill started (RFC 3339, UTC).
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    /// When it ended (RFC 3339, UTC); null when it did not.
    #[schemars(extend("format" = "date-time"))]
    pub finished_at: Option<String>,
    /// From its start to its end, in seconds (to the millisecond).
    #[schemars(range(min = 0))]
    pub duration_seconds: f64,
    /// The measured recovery time, from the drill's start until the restored database was ready
    /// for its checks, in seconds; null when the drill did not get that far.
    #[schemars(range(min = 0))]
    pub recovery_seconds: Option<f64>,
    /// The recovery time objective, in seconds; null when the scenario sets none.
    #[schemars(range(min = 0))]
    pub rto_seconds: Option<f64>,
    /// The recovery was within the RTO; null when there is no RTO or it was not judged (the
    /// drill did not reach a restored database, or its database is a clone of a snapshot).
    pub rto_met: Option<bool>,
    /// Where the backup was: a path or a URL, never with a password or a signature; null when
    /// the drill stopped before it found one.
    pub backup_location: Option<String>,
    /// The sha256 of the backup's bytes as stored, in hex; null when it was not read (or it is
    /// a physical backup's folder).
    pub backup_sha256: Option<String>,
    /// The backup's size as stored, in bytes; null when the drill found no backup.
    #[schemars(range(min = 0))]
    pub backup_size_bytes: Option<u64>,
    /// When the backup was taken (RFC 3339, UTC); null when that is not known.
    #[schemars(extend("format" = "date-time"))]
    pub backup_taken_at: Option<String>,
    /// The backup's age when the drill started, in seconds; null when its time is not known.
    #[schemars(range(min = 0))]
    pub backup_age_seconds: Option<f64>,
    /// The backup was drawn from a window of older backups (`--sample`, its draw in
    /// `plan.json`), not the newest; its age then is not judged against the RPO.
    pub backup_sampled: bool,
    /// The recovery point objective, in seconds; null when the scenario sets none.
    #[schemars(range(min = 0))]
    pub rpo_seconds: Option<f64>,
    /// The backup was no older than the RPO; false too when its age is not known (an unknown
    /// age fails the RPO); null when there is no RPO or it was not judged.
    pub rpo_met: Option<bool>,
    /// How many checks the drill had, the objectives and the application's requests among them.
    #[schemars(range(min = 0))]
    pub checks_total: u64,
    /// How many passed.
    #[schemars(range(min = 0))]
    pub checks_passed: u64,
    /// How many did not pass: failed, or could not run (an error).
    #[schemars(range(min = 0))]
    pub checks_failed: u64,
    /// How many never ran (an earlier phase failed, or nothing to judge).
    #[schemars(range(min = 0))]
    pub checks_skipped: u64,
    /// The codes of what the checks that did not pass found (`rls.unset-tenant-reads-rows`,
    /// failed or could not run), each once, sorted, separated by spaces; see the findings
    /// reference.
    pub failed_codes: String,
    /// Why the drill did not pass, in a line; null when it passed.
    pub failure: Option<String>,
    /// The target's container image (for a local target, the folder of its PostgreSQL
    /// binaries); null for an existing server, or when the drill stopped before a target.
    pub target_image: Option<String>,
    /// The PostgreSQL version the backup was restored into (`SHOW server_version`); null when
    /// the drill did not read it.
    pub target_server_version: Option<String>,
    /// The fingerprint (`SHA256:...`) of the SSH key that signed the drill's evidence; null when
    /// it is not signed.
    pub signed_by: Option<String>,
    /// The version of pgdrill that ran the drill.
    pub pgdrill_version: String,
    /// The machine it ran on.
    pub runner_host: String,
    /// The user who ran it.
    pub runner_user: String,
    /// The CI system and run it ran in; null when it ran in none.
    pub ci: Option<String>,
}

/// The flat record of the drill `record`.
pub fn of(record: &DrillRecord) -> FlatRecord {
    let backup = record.backup.as_ref();
    let objectives = record.scenario.objectives;
    let met = |objective| match record.objective(objective).map(|c| c.verdict) {
        Some(Verdict::Pass) => Some(true),
        Some(Verdict::Fail) => Some(false),
        _ => None,
    };
    let count = |verdict: &dyn Fn(Verdict) -> bool| record.checks.iter().filter(|c| verdict(c.verdict)).count() as u64;
    let verdict = match record.verdict {
        DrillVerdict::Pass => FlatVerdict::Pass,
        DrillVerdict::Fail => FlatVerdict::Fail,
        // A record is written once the drill ended; one that did not end has no verdict.
        DrillVerdict::Interrupted | DrillVerdict::Running => FlatVerdict::Interrupted,
    };
    let target = record.target.as_ref();
    FlatRecord {
        schema: SCHEMA.to_owned(),
        drill_id: record.drill_id.clone(),
        scenario: record.scenario.name.clone(),
        scenario_sha256: non_empty(&record.scenario.sha256),
        verdict,
        passed: verdict == FlatVerdict::Pass,
        could_not_run: crate::outcome::could_not_run(record),
        control_held: crate::outcome::control_held(record),
        started_at: rfc3339(record.started_at),
        finished_at: record.finished_at.map(rfc3339),
        duration_seconds: seconds(record.duration),
        recovery_seconds: record.recovery.map(seconds),
        rto_seconds: objectives.rto.map(seconds),
        rto_met: met(Objective::Rto),
        backup_location: backup.and_then(|b| non_empty(&b.location)),
        backup_sha256: backup.and_then(|b| non_empty(&b.sha256)),
        backup_size_bytes: backup.map(|b| b.size_bytes),
        backup_taken_at: backup.and_then(|b| b.taken_at).map(rfc3339),
        backup_age_seconds: record.backup_age().map(seconds),
        backup_sampled: record.sample.is_some(),
        rpo_seconds: objectives.rpo.map(seconds),
        rpo_met: met(Objective::Rpo),
        checks_total: record.checks.len() as u64,
        checks_passed: count(&|v| v == Verdict::Pass),
        checks_failed: count(&|v| matches!(v, Verdict::Fail | Verdict::Error)),
        checks_skipped: count(&|v| v == Verdict::Skipped),
        failed_codes: failed_codes(record),
        failure: record.failure.as_deref().and_then(|f| f.lines().next()).and_then(non_empty),
        target_image: target.and_then(|t| t.image.as_deref()).and_then(non_empty),
        target_server_version: target.and_then(|t| non_empty(&t.server_version)),
        signed_by: record.signature.as_ref().and_then(|s| s.signed_by.clone()),
        pgdrill_version: record.runner.pgdrill_version.clone(),
        runner_host: record.runner.host.clone(),
        runner_user: record.runner.user.clone(),
        ci: record.runner.ci.clone(),
    }
}

/// The codes of the checks that failed or could not run, each once, sorted, separated by a
/// space (a record stays flat; a record from before codes has none to give).
fn failed_codes(record: &DrillRecord) -> String {
    let codes: std::collections::BTreeSet<&str> = record
        .checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error) && !c.code.is_empty())
        .map(|c| c.code.as_str())
        .collect();
    codes.into_iter().collect::<Vec<_>>().join(" ")
}

/// `record.json`: the flat record as pretty-printed JSON, ending with a newline.
pub fn render(record: &DrillRecord) -> String {
    let mut text = serde_json::to_string_pretty(&of(record)).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// The fields added to v1 after its first release.
const ADDED_IN_V1: [&str; 2] = ["backup_sampled", "failed_codes"];

/// The JSON Schema of the flat record, made from [`FlatRecord`] so that it cannot drift from
/// it: every field of the first v1 required (null where the schema allows it), those added
/// since (`ADDED_IN_V1`) written always and not required, more fields allowed (v1 only adds). `pgdrill schema --record` prints it; `schema/drill-record.v1.schema.json` is it,
/// checked in.
pub fn json_schema() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().for_serialize();
    let mut schema = settings.into_generator().into_root_schema_for::<FlatRecord>();
    // Always written, and not required: a v1 record written before them validates too.
    if let Some(serde_json::Value::Array(required)) = schema.get_mut("required") {
        required.retain(|field| !ADDED_IN_V1.iter().any(|added| field == added));
    }
    schema.insert("$id".into(), SCHEMA_URL.into());
    schema.insert("title".into(), "pgdrill drill record, v1".into());
    schema.insert(
        "description".into(),
        "One restore drill as a flat record (record.json in its report folder), for evidence tools: every field \
         always present, null when not measured (docs/src/guide/evidence.md, \"A plain record, for evidence tools\")."
            .into(),
    );
    schema.to_value()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Seconds, to the millisecond.
fn seconds(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// RFC 3339 in UTC: `2026-11-22T08:00:00Z`.
fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests;
