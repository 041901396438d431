//! What a check found: its verdict, expected against actual, and the evidence. A leaf: the check
//! kinds and the app's API requests both produce these, and every report shows them.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Finding;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// What the check asks holds.
    Pass,
    /// What the check asks does not hold; the drill fails.
    Fail,
    /// The check could not run; the drill fails.
    Error,
    /// The check did not run because an earlier phase failed.
    Skipped,
}

impl Verdict {
    /// As the records and reports write it: `pass`, `fail`, `error`, `skipped`.
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

/// What kind of check a result is of: a `[checks.<kind>]` of the scenario, one of the
/// application's requests (`api`), or one of the objectives the business set (`objectives`).
/// Written in the records by its name (`row_counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckKind {
    /// `[checks.extensions]`: each extension installed, at its version.
    Extensions,
    /// `[checks.schema_version]`: the newest migration the journal records.
    SchemaVersion,
    /// `[checks.row_counts]`: each table's rows.
    RowCounts,
    /// `[checks.fingerprints]`: a table's content against a digest taken at its source.
    Fingerprints,
    /// `[checks.canary]`: a row the source holds on purpose, with exactly its values.
    Canary,
    /// `[checks.indexes]`: indexes present and valid.
    Indexes,
    /// `[checks.rls]`: row-level security, read in the application's own session.
    Rls,
    /// `[checks.append_only]`: an audit table its role can add to and never change.
    AppendOnly,
    /// `[checks.roles]`: what each role may and may not do.
    Roles,
    /// `[checks.graphs]`: Apache AGE graphs answer Cypher, with every vertex and edge.
    Graphs,
    /// `[checks.partitions]`: partitions in place for the months the application writes to.
    Partitions,
    /// `[checks.schemas]`: schemas, tables and their behaviour against a baseline.
    Schemas,
    /// `[[checks.sql]]`: a query and the answer the scenario expects.
    Sql,
    /// `[checks.amcheck]`: indexes and tables as `pg_amcheck` verifies them.
    Amcheck,
    /// `[checks.vector_recall]`: a vector index's recall against exact search.
    VectorRecall,
    /// `[checks.point_in_time]`: a recovery stands at its target.
    PointInTime,
    /// `[checks.collations]`: recorded collation versions against the target's libraries.
    Collations,
    /// `[checks.checksums]`: every data page's checksum, as `pg_checksums` reads them.
    Checksums,
    /// `[checks.triggers]`: the triggers the application counts on, each enabled.
    Triggers,
    /// One of the application's requests (`[[app.requests]]`).
    Api,
    /// The objectives the business set (`[objectives]`: RTO, RPO).
    Objectives,
}

impl CheckKind {
    /// Every kind.
    pub const ALL: [CheckKind; 21] = [
        CheckKind::Extensions,
        CheckKind::SchemaVersion,
        CheckKind::RowCounts,
        CheckKind::Fingerprints,
        CheckKind::Canary,
        CheckKind::Indexes,
        CheckKind::Rls,
        CheckKind::AppendOnly,
        CheckKind::Roles,
        CheckKind::Graphs,
        CheckKind::Partitions,
        CheckKind::Schemas,
        CheckKind::Sql,
        CheckKind::Amcheck,
        CheckKind::VectorRecall,
        CheckKind::PointInTime,
        CheckKind::Collations,
        CheckKind::Checksums,
        CheckKind::Triggers,
        CheckKind::Api,
        CheckKind::Objectives,
    ];

    /// Its name, as the scenario's `[checks.<kind>]` and the records write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckKind::Extensions => "extensions",
            CheckKind::SchemaVersion => "schema_version",
            CheckKind::RowCounts => "row_counts",
            CheckKind::Fingerprints => "fingerprints",
            CheckKind::Canary => "canary",
            CheckKind::Indexes => "indexes",
            CheckKind::Rls => "rls",
            CheckKind::AppendOnly => "append_only",
            CheckKind::Roles => "roles",
            CheckKind::Graphs => "graphs",
            CheckKind::Partitions => "partitions",
            CheckKind::Schemas => "schemas",
            CheckKind::Sql => "sql",
            CheckKind::Amcheck => "amcheck",
            CheckKind::VectorRecall => "vector_recall",
            CheckKind::PointInTime => "point_in_time",
            CheckKind::Collations => "collations",
            CheckKind::Checksums => "checksums",
            CheckKind::Triggers => "triggers",
            CheckKind::Api => "api",
            CheckKind::Objectives => "objectives",
        }
    }

    /// The kind of this name (`row_counts`), if there is one.
    pub fn from_name(name: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// What a passing check of this kind proves, for the reports.
    pub const fn proves(self) -> &'static str {
        match self {
            CheckKind::Extensions => "the extensions the application needs are installed, at the versions it needs",
            CheckKind::SchemaVersion => {
                "the migration journal is at the version the code expects (from a folder: with each migration; with a baseline: with each it recorded), none failed"
            }
            CheckKind::RowCounts => "tables hold the rows they should: as in the dump, the baseline or the scenario",
            CheckKind::Fingerprints => {
                "tables hold the very rows the source held when the backup was taken, value for value (content fingerprints)"
            }
            CheckKind::Canary => "a canary row the source holds on purpose comes back with exactly its values",
            CheckKind::Indexes => "the indexes the application relies on exist and are valid",
            CheckKind::Rls => "row-level security is on, its policies exist, and tenants cannot read each other's rows",
            CheckKind::AppendOnly => "audit trails can be appended to, and not changed or erased",
            CheckKind::Roles => "runtime roles can do what they need and nothing more",
            CheckKind::Graphs => "graphs answer Cypher queries, with every vertex and edge",
            CheckKind::Partitions => "partitions are in place for the months the application writes to",
            CheckKind::Schemas => {
                "every schema survived with its tables, types and sequences; no sequence would collide"
            }
            CheckKind::Sql => "scenario-specific facts hold",
            CheckKind::Amcheck => {
                "tables and indexes are not corrupt: pg_amcheck reads every heap page, and every btree index against its table"
            }
            CheckKind::VectorRecall => {
                "the vector indexes return the nearest neighbours an exact search finds (recall@k at or above the threshold)"
            }
            CheckKind::PointInTime => {
                "the database stands at the recovery target: a change made before it was restored, and one made after it was not"
            }
            CheckKind::Collations => {
                "text indexes sort as they were built: the collation versions the databases record are those of the target's own libraries"
            }
            CheckKind::Checksums => {
                "every data page has the checksum it was written with: pg_checksums reads the whole cluster after a clean shutdown"
            }
            CheckKind::Triggers => "tables keep exactly the triggers the application counts on, each enabled",
            CheckKind::Api => "the application boots on the restored database and its API answers",
            CheckKind::Objectives => {
                "the recovery meets the objectives the business set: its time (RTO) and the backup's age (RPO)"
            }
        }
    }
}

impl CheckKind {
    /// What a passing check of this kind does not prove: the honest limit of [`Self::proves`],
    /// for the documentation's reference of check kinds.
    pub const fn does_not_prove(self) -> &'static str {
        match self {
            CheckKind::Extensions => {
                "that the extensions' objects (pgvector's operators, AGE's functions) behave as shipped: the catalog audit does not compare them, and a version is only a floor"
            }
            CheckKind::SchemaVersion => {
                "that the schema matches the journal: a journal row says a migration ran, not what it left (`schemas` compares the schema itself); nor, with `expected` alone or a journal that keeps only its newest row, that no older migration is missing (with `baseline = true`: none the baseline recorded)"
            }
            CheckKind::RowCounts => {
                "that the values are right: a table whose values were altered, or whose old rows were swapped for new ones, keeps its count (`fingerprints`, `canary` and `append_only` with `key` read the content)"
            }
            CheckKind::Fingerprints => {
                "anything about the rows the source wrote after its snapshot, nor about tables or columns the fingerprint file does not name; a sampled table is proven only in the ranges read"
            }
            CheckKind::Canary => "anything about the rows beside the canary: it proves one row, the one it names",
            CheckKind::Indexes => {
                "that an index returns every row (`amcheck` reads btree indexes against their tables), nor anything of indexes neither named nor in the baseline"
            }
            CheckKind::Rls => {
                "anything of policies or tables the scenario does not name; tenant isolation is proven for the roles and settings it names, in sessions like the drill's, and not for a session that reads facts the drill could not try"
            }
            CheckKind::AppendOnly => {
                "that the trail is complete without `key` (it proves writes are refused, not that no row was lost before the backup); only the writing role named is tried, not other roles; code of others it runs (a SECURITY DEFINER function it may call, a definer trigger or a rule on a table it writes, a view over the trail, a cascading foreign key) is read, not tried: what it does with arguments pgdrill did not give is judged from its statements, and an accepted one is trusted for its code"
            }
            CheckKind::Roles => {
                "anything about roles the scenario does not name, nor privileges on schemas outside those it lists (`exact`, `forbidden_schemas`)"
            }
            CheckKind::Graphs => {
                "that a vertex's or edge's properties are right: labels are counted, values are not compared"
            }
            CheckKind::Partitions => {
                "that rows are in the partition their key says, nor anything of tables it does not name"
            }
            CheckKind::Schemas => {
                "that the rows are right: it compares definitions (columns, constraints, triggers, sequences), not data"
            }
            CheckKind::Sql => {
                "more than its one statement's answer, in a transaction rolled back: what the query asks is what is proven; as a role, the answer of that role's own login the way the application comes (`[login] transport`: TCP from 127.0.0.1 in a container target's sandbox, by default), with the settings it is given: a setting the role could set otherwise is not tried; a statement EXPLAIN does not take (DDL, `CALL`, `DO`) has its code unread, and so has what a cascading foreign key runs in another table"
            }
            CheckKind::Amcheck => {
                "that the data is the source's: an intact page of wrong rows passes; indexes other than btree (and GIN on PostgreSQL 18) are not read"
            }
            CheckKind::VectorRecall => {
                "recall for query vectors unlike the stored ones: the stored vectors are the queries"
            }
            CheckKind::PointInTime => {
                "anything beyond its two queries: the target is proven only as far as the changes they ask about"
            }
            CheckKind::Collations => {
                "that the indexes are in order now (`amcheck` reads them): only that the versions match, so they were built by these libraries' rules"
            }
            CheckKind::Checksums => {
                "that the data is the source's: a page written wrong by the source itself carries a valid checksum; a cluster without checksums proves nothing and fails"
            }
            CheckKind::Triggers => {
                "that a trigger's function does what it should: `schemas` compares its body's sha256 with the baseline's"
            }
            CheckKind::Api => {
                "more than the requests the scenario makes: other endpoints, other data and other load are untested"
            }
            CheckKind::Objectives => {
                "the recovery time of another machine, another backup size or drills run side by side (`--jobs`): the RTO is measured on this drill"
            }
        }
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's result, as every report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// Unique within a drill: `<kind>/<object>`.
    pub id: String,
    /// The kind of check it is of.
    pub kind: CheckKind,
    /// What was checked: a table, an extension, a migration journal.
    pub object: String,
    /// What the check expected, as the reports show it (empty when it names no value).
    pub expected: String,
    /// What the check found.
    pub actual: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// What it found, by the stable code of its kind's finding (`rls.unset-tenant-reads-rows`,
    /// [`super::Finding`]): what reports, acceptances and tests name. Empty in records written
    /// before findings had codes.
    #[serde(default)]
    pub code: String,
    /// One sentence on the outcome, naming expected against actual when they differ.
    pub message: String,
    /// The SQL (or request) whose answer is `actual`.
    pub evidence: String,
    /// How long it took (zero for a judgement of what the drill recorded).
    #[serde(with = "crate::units::duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// An append-only table's key ranges, fingerprinted, for the history to keep and the next
    /// drill to compare (`check::append_only` with `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail: Option<crate::fingerprint::TableFingerprint>,
}

impl CheckResult {
    /// A result for `object` of `kind`, timed from `started`.
    pub fn build(kind: CheckKind, object: impl Into<String>, started: Instant) -> CheckResultBuilder {
        CheckResult::builder(kind, object.into(), Some(started))
    }

    /// A judgement of what the drill recorded, not work it timed: its duration is zero (the
    /// microseconds of forming it are the machine's load, not the check's).
    pub(crate) fn judge(kind: CheckKind, object: impl Into<String>) -> CheckResultBuilder {
        CheckResult::builder(kind, object.into(), None)
    }

    fn builder(kind: CheckKind, object: String, started: Option<Instant>) -> CheckResultBuilder {
        CheckResultBuilder {
            result: CheckResult {
                id: format!("{kind}/{object}"),
                kind,
                object,
                expected: String::new(),
                actual: String::new(),
                verdict: Verdict::Error,
                code: String::new(),
                message: String::new(),
                evidence: String::new(),
                duration: Duration::ZERO,
                trail: None,
            },
            started,
        }
    }

    /// Marks a configured check as not run, with the reason.
    pub fn skipped(kind: CheckKind, object: &str, reason: &str) -> Self {
        CheckResult {
            id: format!("{kind}/{object}"),
            kind,
            object: object.to_owned(),
            expected: String::new(),
            actual: String::new(),
            verdict: Verdict::Skipped,
            code: super::Common::NotRun.code().to_owned(),
            message: format!("not run: {reason}"),
            evidence: String::new(),
            duration: Duration::ZERO,
            trail: None,
        }
    }
}

/// Fills in a [`CheckResult`]; finishing it records the duration (of a timed one).
pub struct CheckResultBuilder {
    result: CheckResult,
    started: Option<Instant>,
}

impl CheckResultBuilder {
    /// What the check expects.
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.result.expected = expected.into();
        self
    }

    /// What the check found.
    pub fn actual(mut self, actual: impl Into<String>) -> Self {
        self.result.actual = actual.into();
        self
    }

    /// The SQL (or request) whose answer is what the check found.
    pub fn evidence(mut self, evidence: impl Into<String>) -> Self {
        self.result.evidence = evidence.into();
        self
    }

    /// What the check found: its verdict is the finding's, `message` explains it.
    pub fn found(mut self, finding: impl Finding, message: impl Into<String>) -> CheckResult {
        let about = finding.about();
        debug_assert!(
            about.kind.is_none_or(|kind| kind == self.result.kind),
            "a finding of `{:?}` on a result of `{}`",
            about.kind,
            self.result.kind
        );
        self.result.code = about.code.to_owned();
        self.finish(about.verdict, message)
    }

    /// Pass when `ok`, fail otherwise, with no code: for tests of what renders results, which
    /// need a verdict and not a finding (a check's own results are [`Self::found`]'s).
    #[cfg(test)]
    pub fn verdict(self, ok: bool, message: impl Into<String>) -> CheckResult {
        self.finish(if ok { Verdict::Pass } else { Verdict::Fail }, message)
    }

    /// Skipped, with no code (see [`Self::verdict`]).
    #[cfg(test)]
    pub fn skip(self, message: impl Into<String>) -> CheckResult {
        self.finish(Verdict::Skipped, message)
    }

    /// An error, with no code (see [`Self::verdict`]).
    #[cfg(test)]
    pub fn error(self, message: impl Into<String>) -> CheckResult {
        self.finish(Verdict::Error, message)
    }

    fn finish(mut self, verdict: Verdict, message: impl Into<String>) -> CheckResult {
        self.result.verdict = verdict;
        self.result.message = message.into();
        self.result.duration = self.started.map_or(Duration::ZERO, |s| s.elapsed());
        self.result
    }
}

/// What a drill that ran no check proves, said beside its verdict.
pub(crate) const NO_CHECKS: &str =
    "No check ran: this proves only that the backup restores, not that it holds the data the application needs.";
