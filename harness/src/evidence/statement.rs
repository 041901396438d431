//! `evidence.intoto.json`: the drill's evidence as an in-toto Statement v1, the supply-chain
//! attestation standard. Its subjects are every report file of the drill with its sha256
//! (`MANIFEST.sha256` included), its predicate what the drill proved, in brief. Signed
//! (`evidence.intoto.json.sig`, see [`super::sign`]), it lets an auditor verify with OpenSSH
//! alone that the reports are the ones whoever holds the key signed, and unchanged since.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::outcome::DrillRecord;

/// The statement's file name.
pub(crate) const STATEMENT: &str = "evidence.intoto.json";
/// Its signature's file name (armored SSHSIG).
pub(crate) const SIGNATURE: &str = "evidence.intoto.json.sig";
/// in-toto's Statement type, version 1.
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// What the predicate is: a pgdrill drill's evidence, version 1.
pub(crate) const PREDICATE_TYPE: &str = "https://pgdrill.dev/drill-evidence/v1";
/// Or a fleet summary's (`pgdrill report merge`): the drills merged, each as verified.
pub(crate) const FLEET_PREDICATE_TYPE: &str = "https://pgdrill.dev/fleet-evidence/v1";

/// An in-toto Statement v1 (<https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: serde_json::Value,
}

/// A file the statement is about, by name and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// The subject's sha256, in hex, when it gives one.
    pub(crate) fn sha256(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// What the drill proved, in brief: the predicate. Everything else is in `drill.json`, a subject.
#[derive(Debug, Clone, Serialize)]
struct Predicate<'a> {
    drill_id: &'a str,
    verdict: &'a str,
    failure: Option<&'a str>,
    scenario: ScenarioRef<'a>,
    backup: Option<BackupRef<'a>>,
    target: Option<TargetRef<'a>>,
    checks: Vec<CheckRef<'a>>,
    #[serde(with = "time::serde::rfc3339")]
    started_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    finished_at: Option<time::OffsetDateTime>,
    recovery_ms: Option<u64>,
    /// The drill whose restore this drill's database is a clone of.
    clone_of: Option<&'a str>,
    runner: RunnerRef<'a>,
    pgdrill_version: &'a str,
}

#[derive(Debug, Clone, Serialize)]
struct ScenarioRef<'a> {
    name: &'a str,
    file: &'a str,
    sha256: &'a str,
}

#[derive(Debug, Clone, Serialize)]
struct BackupRef<'a> {
    location: &'a str,
    sha256: &'a str,
    size_bytes: u64,
    format: &'a str,
}

#[derive(Debug, Clone, Serialize)]
struct TargetRef<'a> {
    kind: &'a str,
    image: Option<&'a str>,
    image_packages: Option<&'a str>,
    server_version: &'a str,
}

#[derive(Debug, Clone, Serialize)]
struct CheckRef<'a> {
    id: &'a str,
    verdict: &'a str,
}

#[derive(Debug, Clone, Serialize)]
struct RunnerRef<'a> {
    user: &'a str,
    host: &'a str,
    os: &'a str,
    ci: Option<&'a str>,
}

fn predicate(record: &DrillRecord) -> serde_json::Value {
    let predicate = Predicate {
        drill_id: &record.drill_id,
        verdict: record.verdict.as_str(),
        failure: record.failure.as_deref(),
        scenario: ScenarioRef {
            name: &record.scenario.name,
            file: &record.scenario.file,
            sha256: &record.scenario.sha256,
        },
        backup: record.backup.as_ref().map(|b| BackupRef {
            location: &b.location,
            sha256: &b.sha256,
            size_bytes: b.size_bytes,
            format: &b.format,
        }),
        target: record.target.as_ref().map(|t| TargetRef {
            kind: &t.kind,
            image: t.image.as_deref(),
            image_packages: t.image_packages.as_deref(),
            server_version: &t.server_version,
        }),
        checks: record.checks.iter().map(|c| CheckRef { id: &c.id, verdict: c.verdict.as_str() }).collect(),
        started_at: record.started_at,
        finished_at: record.finished_at,
        recovery_ms: record.recovery.map(|r| r.as_millis() as u64),
        clone_of: record.clone_of.as_ref().map(|c| c.drill_id.as_str()),
        runner: RunnerRef {
            user: &record.runner.user,
            host: &record.runner.host,
            os: &record.runner.os,
            ci: record.runner.ci.as_deref(),
        },
        pgdrill_version: &record.runner.pgdrill_version,
    };
    serde_json::to_value(predicate).expect("the predicate serializes")
}

/// The statement about `files` (names inside `dir`, read for their digests) for `record`.
pub(crate) fn statement(record: &DrillRecord, dir: &Path, files: &[&str]) -> std::io::Result<Statement> {
    about(PREDICATE_TYPE, predicate(record), dir, files)
}

/// The statement about a fleet summary's `files` (names inside `dir`), its predicate made by
/// `report merge`.
pub(crate) fn fleet_statement(predicate: serde_json::Value, dir: &Path, files: &[&str]) -> std::io::Result<Statement> {
    about(FLEET_PREDICATE_TYPE, predicate, dir, files)
}

fn about(predicate_type: &str, predicate: serde_json::Value, dir: &Path, files: &[&str]) -> std::io::Result<Statement> {
    let mut subject = Vec::with_capacity(files.len());
    for name in files {
        let sha256 = hex::encode(Sha256::digest(std::fs::read(dir.join(name))?));
        subject.push(Subject { name: (*name).to_owned(), digest: BTreeMap::from([("sha256".to_owned(), sha256)]) });
    }
    Ok(Statement { type_: STATEMENT_TYPE.to_owned(), subject, predicate_type: predicate_type.to_owned(), predicate })
}

/// The statement as written: pretty JSON with a final line break.
pub(crate) fn render(statement: &Statement) -> String {
    let mut text = serde_json::to_string_pretty(statement).expect("a statement serializes");
    text.push('\n');
    text
}

/// Why a statement cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StatementError {
    #[error("`{STATEMENT}` is not JSON of an in-toto statement: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`{STATEMENT}` is of type `{0}`, not an in-toto Statement v1 (`{STATEMENT_TYPE}`)")]
    Type(String),
    #[error(
        "`{STATEMENT}` is about `{0}`, not a pgdrill drill's evidence (`{PREDICATE_TYPE}`) nor a fleet summary's (`{FLEET_PREDICATE_TYPE}`)"
    )]
    Predicate(String),
    #[error("`{STATEMENT}` names the subject `{0}`, which is not a file of this folder")]
    Name(String),
    #[error("`{STATEMENT}` gives no sha256 for `{0}`")]
    Digest(String),
}

/// Reads a statement pgdrill wrote: in-toto v1, pgdrill's predicate (a drill's or a fleet
/// summary's), subjects that are plain file names each with a sha256.
pub(crate) fn parse(text: &str) -> Result<Statement, StatementError> {
    let statement: Statement = serde_json::from_str(text)?;
    if statement.type_ != STATEMENT_TYPE {
        return Err(StatementError::Type(statement.type_));
    }
    if statement.predicate_type != PREDICATE_TYPE && statement.predicate_type != FLEET_PREDICATE_TYPE {
        return Err(StatementError::Predicate(statement.predicate_type));
    }
    for s in &statement.subject {
        if s.name.is_empty() || s.name.contains('/') || s.name.contains('\\') || s.name == "." || s.name == ".." {
            return Err(StatementError::Name(s.name.clone()));
        }
        if s.sha256().is_none_or(|d| d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(StatementError::Digest(s.name.clone()));
        }
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{RunnerInfo, ScenarioInfo};

    fn record() -> DrillRecord {
        let scenario = ScenarioInfo {
            name: "plur".into(),
            file: "scenarios/plur.toml".into(),
            sha256: "ab".repeat(32),
            ..ScenarioInfo::default()
        };
        let runner = RunnerInfo { user: "ci".into(), pgdrill_version: "0.1.0".into(), ..RunnerInfo::default() };
        let mut record =
            DrillRecord::new("d-1".into(), scenario, runner, time::macros::datetime!(2026-01-02 03:04:05 UTC));
        record.verdict = crate::outcome::DrillVerdict::Pass;
        record.checks.push(
            crate::outcome::CheckResult::build(crate::outcome::CheckKind::Roles, "app", std::time::Instant::now())
                .verdict(true, ""),
        );
        record
    }

    #[test]
    fn a_statement_is_in_toto_v1_about_every_file_with_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("report.md"), "PASS").unwrap();
        std::fs::write(dir.path().join("MANIFEST.sha256"), "x").unwrap();
        let statement = statement(&record(), dir.path(), &["report.md", "MANIFEST.sha256"]).unwrap();
        let text = render(&statement);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["_type"], STATEMENT_TYPE);
        assert_eq!(json["predicateType"], PREDICATE_TYPE);
        assert_eq!(json["subject"][0]["name"], "report.md");
        assert_eq!(json["subject"][0]["digest"]["sha256"], hex::encode(Sha256::digest(b"PASS")));
        assert_eq!(json["predicate"]["scenario"]["name"], "plur");
        assert_eq!(json["predicate"]["verdict"], "pass");
        assert_eq!(json["predicate"]["checks"][0], serde_json::json!({"id": "roles/app", "verdict": "pass"}));
        assert_eq!(json["predicate"]["started_at"], "2026-01-02T03:04:05Z");
        assert_eq!(json["predicate"]["pgdrill_version"], "0.1.0");
        assert_eq!(parse(&text).unwrap(), statement);
    }

    #[test]
    fn a_statement_with_a_path_or_without_a_digest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("report.md"), "PASS").unwrap();
        let good = statement(&record(), dir.path(), &["report.md"]).unwrap();
        let mut escape = good.clone();
        escape.subject[0].name = "../history.jsonl".into();
        assert!(matches!(parse(&render(&escape)), Err(StatementError::Name(n)) if n == "../history.jsonl"));
        let mut bare = good.clone();
        bare.subject[0].digest.clear();
        assert!(matches!(parse(&render(&bare)), Err(StatementError::Digest(_))));
        let mut other = good;
        other.predicate_type = "https://slsa.dev/provenance/v1".into();
        assert!(matches!(parse(&render(&other)), Err(StatementError::Predicate(_))));
    }
}
