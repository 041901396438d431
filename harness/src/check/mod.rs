//! Checks: what a restored database must prove. One file per check kind.
//!
//! Every kind turns its scenario configuration into one or more [`CheckResult`]s, each with what
//! was expected, what was found, the verdict, and the SQL that found it. A check that cannot run
//! (its query fails) gets [`Verdict::Error`], which fails the drill like a failed check does:
//! an error is never a pass.

pub mod append_only;
pub mod extensions;
pub mod graphs;
pub mod indexes;
pub mod partitions;
pub mod rls;
pub mod roles;
pub mod row_counts;
pub mod schema_version;
pub mod schemas;
pub mod sql;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::baseline::Baseline;
use crate::dump::DumpSummary;
use crate::field::FieldError;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// The check could not run; the drill fails.
    Error,
    /// The check did not run because an earlier phase failed.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's result, as every report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// Unique within a drill: `<kind>/<object>`.
    pub id: String,
    pub kind: String,
    /// What was checked: a table, an extension, a migration journal.
    pub object: String,
    pub expected: String,
    pub actual: String,
    pub verdict: Verdict,
    /// One sentence on the outcome, naming expected against actual when they differ.
    pub message: String,
    /// The SQL (or request) whose answer is `actual`.
    pub evidence: String,
    #[serde(with = "crate::units::duration_ms", rename = "duration_ms")]
    pub duration: Duration,
}

impl CheckResult {
    /// A result for `object` of `kind`, timed from `started`.
    pub fn build(kind: &str, object: impl Into<String>, started: Instant) -> CheckResultBuilder {
        let object = object.into();
        CheckResultBuilder {
            result: CheckResult {
                id: format!("{kind}/{object}"),
                kind: kind.to_owned(),
                object,
                expected: String::new(),
                actual: String::new(),
                verdict: Verdict::Error,
                message: String::new(),
                evidence: String::new(),
                duration: Duration::ZERO,
            },
            started,
        }
    }

    /// Marks a configured check as not run, with the reason.
    pub fn skipped(kind: &str, object: &str, reason: &str) -> Self {
        CheckResult {
            id: format!("{kind}/{object}"),
            kind: kind.to_owned(),
            object: object.to_owned(),
            expected: String::new(),
            actual: String::new(),
            verdict: Verdict::Skipped,
            message: format!("not run: {reason}"),
            evidence: String::new(),
            duration: Duration::ZERO,
        }
    }
}

/// Fills in a [`CheckResult`]; finishing it records the duration.
pub struct CheckResultBuilder {
    result: CheckResult,
    started: Instant,
}

impl CheckResultBuilder {
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.result.expected = expected.into();
        self
    }

    pub fn actual(mut self, actual: impl Into<String>) -> Self {
        self.result.actual = actual.into();
        self
    }

    pub fn evidence(mut self, evidence: impl Into<String>) -> Self {
        self.result.evidence = evidence.into();
        self
    }

    /// Pass when `ok`, fail otherwise; `message` explains either way.
    pub fn verdict(self, ok: bool, message: impl Into<String>) -> CheckResult {
        self.finish(if ok { Verdict::Pass } else { Verdict::Fail }, message)
    }

    /// The check could not run.
    pub fn error(self, message: impl Into<String>) -> CheckResult {
        self.finish(Verdict::Error, message)
    }

    fn finish(mut self, verdict: Verdict, message: impl Into<String>) -> CheckResult {
        self.result.verdict = verdict;
        self.result.message = message.into();
        self.result.duration = self.started.elapsed();
        self.result
    }
}

/// What checks run against.
pub struct CheckContext<'a> {
    /// The restored database, as the superuser the restore used.
    pub pool: &'a PgPool,
    /// What the verify phase learnt from the dump (for example rows per COPY block).
    pub dump: &'a DumpSummary,
}

/// What resolving a check's configuration may need from its scenario.
pub struct ResolveContext {
    /// The scenario file's folder: relative paths start there.
    pub base: PathBuf,
    /// The scenario's baseline, when it names one.
    pub baseline: Option<Arc<Baseline>>,
}

impl ResolveContext {
    /// The baseline, for a check that compares with it.
    pub fn require_baseline(&self, kind: &str) -> Result<Arc<Baseline>, FieldError> {
        self.baseline.clone().ok_or_else(|| {
            FieldError::unplaced(format!("`{kind}` compares with the baseline, and the scenario names none")).with_help(
                "set `baseline = \"path/to/baseline.json\"` at the top of the scenario (made by `pgdrill baseline`)",
            )
        })
    }
}

/// A configured check, resolved from the scenario.
#[derive(Debug, Clone)]
pub enum CheckSpec {
    Extensions(extensions::Spec),
    SchemaVersion(schema_version::Spec),
    RowCounts(row_counts::Spec),
    Indexes(indexes::Spec),
    Rls(rls::Spec),
    AppendOnly(append_only::Spec),
    Roles(roles::Spec),
    Graphs(graphs::Spec),
    Partitions(partitions::Spec),
    Schemas(schemas::Spec),
    Sql(sql::Spec),
}

/// Calls `$body` with the spec inside whichever variant `$spec` is.
macro_rules! each_kind {
    ($spec:expr, $inner:ident => $body:expr) => {
        match $spec {
            CheckSpec::Extensions($inner) => $body,
            CheckSpec::SchemaVersion($inner) => $body,
            CheckSpec::RowCounts($inner) => $body,
            CheckSpec::Indexes($inner) => $body,
            CheckSpec::Rls($inner) => $body,
            CheckSpec::AppendOnly($inner) => $body,
            CheckSpec::Roles($inner) => $body,
            CheckSpec::Graphs($inner) => $body,
            CheckSpec::Partitions($inner) => $body,
            CheckSpec::Schemas($inner) => $body,
            CheckSpec::Sql($inner) => $body,
        }
    };
}

impl CheckSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Extensions(_) => extensions::KIND,
            CheckSpec::SchemaVersion(_) => schema_version::KIND,
            CheckSpec::RowCounts(_) => row_counts::KIND,
            CheckSpec::Indexes(_) => indexes::KIND,
            CheckSpec::Rls(_) => rls::KIND,
            CheckSpec::AppendOnly(_) => append_only::KIND,
            CheckSpec::Roles(_) => roles::KIND,
            CheckSpec::Graphs(_) => graphs::KIND,
            CheckSpec::Partitions(_) => partitions::KIND,
            CheckSpec::Schemas(_) => schemas::KIND,
            CheckSpec::Sql(_) => sql::KIND,
        }
    }

    /// A short name for what this check covers, for reports of checks that did not run.
    pub fn label(&self) -> String {
        each_kind!(self, spec => spec.label())
    }

    pub async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        each_kind!(self, spec => spec.run(ctx).await)
    }
}

/// Every check kind, and `api` for the application's requests.
pub const KINDS: [&str; 12] = [
    extensions::KIND,
    schema_version::KIND,
    row_counts::KIND,
    indexes::KIND,
    rls::KIND,
    append_only::KIND,
    roles::KIND,
    graphs::KIND,
    partitions::KIND,
    schemas::KIND,
    sql::KIND,
    crate::app::request::KIND,
];

/// What a check kind proves, in a sentence an auditor can read.
pub fn purpose(kind: &str) -> &'static str {
    match kind {
        extensions::KIND => "the extensions the application needs are installed, at the versions it needs",
        schema_version::KIND => {
            "the migration journal is at the version the code expects, with no failed or dirty migration"
        }
        row_counts::KIND => "tables hold the rows they should: as in the dump, the baseline or the scenario",
        indexes::KIND => "the indexes the application relies on exist and are valid",
        rls::KIND => "row-level security is on, its policies exist, and tenants cannot read each other's rows",
        append_only::KIND => "audit trails can be appended to, and not changed or erased",
        roles::KIND => "runtime roles can do what they need and nothing more",
        graphs::KIND => "graphs answer Cypher queries, with every vertex and edge",
        partitions::KIND => "partitions are in place for the months the application writes to",
        schemas::KIND => "every schema survived with its tables, types and sequences; no sequence would collide",
        sql::KIND => "scenario-specific facts hold",
        crate::app::request::KIND => "the application boots on the restored database and its API answers",
        _ => "",
    }
}

/// SQL with its `$n` parameters replaced by the values bound to them, as evidence a reader can
/// run again.
pub fn bind_evidence(sql: &str, values: &[&str]) -> String {
    let mut out = sql.to_owned();
    for (i, value) in values.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), &crate::pg::quote_literal(value));
    }
    out
}

/// A database error as one line: its SQLSTATE and message (and detail), for check results.
pub fn describe_sql_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            match pg {
                Some(pg) => match pg.detail() {
                    Some(detail) => format!("{} ({}; {})", pg.message(), pg.code(), detail),
                    None => format!("{} ({})", pg.message(), pg.code()),
                },
                None => db.message().to_owned(),
            }
        }
        other => other.to_string(),
    }
}
