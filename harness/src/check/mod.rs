//! Checks: what a restored database must prove. One file per check kind.
//!
//! Every kind turns its scenario configuration into one or more [`CheckResult`]s, each with what
//! was expected, what was found, the verdict, and the SQL that found it. A check that cannot run
//! (its query fails) gets [`Verdict::Error`], which fails the drill like a failed check does:
//! an error is never a pass.
//!
//! A kind is one file whose `Spec` implements [`Kind`] (its name, what it proves, its
//! configuration, how that resolves, how it runs) and one line in [`kinds!`]'s list below, which
//! generates the rest: [`CheckSpec`], [`KINDS`], the release gate's kinds and the
//! reading of `[checks]`, which keeps the scenario file's order.

mod accept;
pub(crate) mod amcheck;
pub(crate) mod append_only;
mod as_app;
pub(crate) mod canary;
pub(crate) mod checksums;
pub(crate) mod collations;
pub(crate) mod extensions;
pub(crate) mod fingerprints;
pub(crate) mod graphs;
pub(crate) mod indexes;
pub(crate) mod login;
pub(crate) mod loophole;
pub(crate) mod partitions;
mod phase;
pub(crate) mod point_in_time;
mod probe;
mod relation;
mod reprint;
pub(crate) mod rls;
pub(crate) mod roles;
pub(crate) mod row_counts;
pub(crate) mod schema_version;
pub(crate) mod schemas;
pub(crate) mod sql;
pub(crate) mod triggers;
pub(crate) mod vector_recall;

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crate::field::Spanned;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use sqlx::PgPool;

use crate::baseline::Baseline;
use crate::dump::DumpSummary;
use crate::field::{FieldError, OneOrMany};

pub(crate) use crate::outcome::{CheckKind, CheckResult, CheckResultBuilder, Verdict};
pub(crate) use phase::{Inputs, run_all};

/// What every check kind is: its file implements this for its resolved `Spec`.
pub(crate) trait Kind: Sized {
    /// Its kind: its key under `[checks]`, and what it proves ([`CheckKind::proves`]).
    const KIND: CheckKind;
    /// Whether the release gate (`pgdrill gate`) drills it.
    const GATE: bool = false;
    /// Whether it stops the target's server (and starts it again): it runs after every other
    /// check, alone.
    const OFFLINE: bool = false;
    /// One entry of its configuration, as the scenario file writes it.
    type Config: de::DeserializeOwned + schemars::JsonSchema;
    /// Checks an entry and fills in what it leaves to defaults.
    fn resolve(config: Self::Config, ctx: &ResolveContext) -> Result<Self, FieldError>;
    /// A short name for what this check covers, for reports of checks that did not run.
    fn label(&self) -> String;
    /// The objects a [`CheckError`] covers: each gets an error result, so that a check that
    /// could not run counts as many results as one that ran (by default, its label).
    fn objects(&self) -> Vec<String> {
        vec![self.label()]
    }
    /// The roles whose own sessions it logs in as ([`login`]).
    fn logins(&self) -> Vec<String> {
        Vec::new()
    }
    /// The names it reads that the scenario (or a preset, as its tool writes them) gives
    /// without a schema: resolved, before the checks run, as each application role's own
    /// session resolves them ([`login::names`]).
    fn unqualified(&self) -> Vec<String> {
        Vec::new()
    }
    /// The files and folders of this machine it reads, beside the scenario's baseline (a
    /// fingerprint file, a migrations folder): what must go with the scenario to drill it
    /// elsewhere (`pgdrill kube`).
    fn files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Runs it on the restored database: its results, or why it could not run at all (a result
    /// it could not reach for one object among several is that object's error result).
    fn run(&self, ctx: &CheckContext<'_>) -> impl Future<Output = Result<Vec<CheckResult>, CheckError>> + Send;
}

/// Why a check could not run at all: each of its [`Kind::objects`] gets an error result that
/// says so, with the evidence of what failed.
#[derive(Debug, Clone, Default, thiserror::Error)]
#[error("{message}")]
pub(crate) struct CheckError {
    message: String,
    /// The database's answer, when that is why: kept whole, and said after `message` in the
    /// error results ([`CheckError::said`]).
    #[source]
    source: Option<Arc<sqlx::Error>>,
    expected: String,
    evidence: String,
}

impl CheckError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        CheckError { message: message.into(), ..CheckError::default() }
    }

    /// `what` could not be done: the database answered `source`.
    pub(crate) fn sql(what: impl Into<String>, source: sqlx::Error) -> Self {
        CheckError { message: what.into(), source: Some(Arc::new(source)), ..CheckError::default() }
    }

    /// What the error results say: the message, then the database's answer with its code and
    /// detail ([`crate::pg::describe_sql_error`]).
    fn said(&self) -> String {
        match &self.source {
            Some(source) => format!("{}: {}", self.message, crate::pg::describe_sql_error(source)),
            None => self.message.clone(),
        }
    }

    /// The SQL (or command) that failed.
    pub(crate) fn evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = evidence.into();
        self
    }

    /// What the check expected, when it is known before it runs.
    pub(crate) fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = expected.into();
        self
    }

    /// The error results: one per object the check covers.
    fn results(&self, kind: CheckKind, objects: Vec<String>, started: std::time::Instant) -> Vec<CheckResult> {
        objects
            .into_iter()
            .map(|object| {
                CheckResult::build(kind, object, started)
                    .expected(self.expected.clone())
                    .evidence(self.evidence.clone())
                    .found(crate::outcome::Common::CouldNotRun, self.said())
            })
            .collect()
    }
}

/// A database error as why a check could not run: `what` could not be done, and the database's
/// answer.
pub(crate) trait OrCheckError<T> {
    fn or_check(self, what: &str) -> Result<T, CheckError>;
}

impl<T> OrCheckError<T> for sqlx::Result<T> {
    fn or_check(self, what: &str) -> Result<T, CheckError> {
        self.map_err(|err| CheckError::sql(what, err))
    }
}

/// What checks run against.
pub(crate) struct CheckContext<'a> {
    /// The restored database, as the superuser the restore used.
    pub pool: &'a PgPool,
    /// What the verify phase learnt from the dump (for example rows per COPY block).
    pub dump: &'a DumpSummary,
    /// The target, for checks that run its own client programs (pg_amcheck).
    pub target: &'a crate::provision::Target,
    /// The restored database's name on the target.
    pub database: &'a str,
    pub redactor: &'a crate::secret::Redactor,
    /// Append-only tables' key ranges as the scenario's last drills recorded them.
    pub trails: &'a crate::fingerprint::Trails,
    /// How the application logs in: probes that claim what a role can do log in so.
    pub login: &'a login::Spec,
    /// How the application's roles resolve the names the checks read without a schema.
    pub(crate) names: &'a login::names::Resolutions,
}

impl CheckContext<'_> {
    /// Opens the application's sessions ([`login`]).
    pub(crate) fn logins(&self) -> login::Logins<'_> {
        login::Logins { target: self.target, database: self.database, redactor: self.redactor, spec: self.login }
    }
}

/// What resolving a check's configuration may need from its scenario.
pub(crate) struct ResolveContext {
    /// The scenario file's folder: relative paths start there.
    pub base: PathBuf,
    /// The scenario's baseline, when it names one.
    pub baseline: Option<Arc<Baseline>>,
}

impl ResolveContext {
    /// The baseline, for a check that compares with it.
    /// The part of it the kind compares must hold something: a comparison with nothing would
    /// pass on any restore.
    pub(crate) fn require_baseline(&self, kind: CheckKind) -> Result<Arc<Baseline>, FieldError> {
        let baseline = self.baseline.clone().ok_or_else(|| {
            FieldError::unplaced(format!("`{kind}` compares with the baseline, and the scenario names none")).with_help(
                "set `baseline = \"path/to/baseline.json\"` at the top of the scenario (made by `pgdrill baseline`)",
            )
        })?;
        let empty = match kind {
            CheckKind::RowCounts => baseline.row_counts.is_empty().then_some("no table"),
            CheckKind::Indexes => baseline.indexes.is_empty().then_some("no index"),
            CheckKind::Schemas => baseline.schemas.is_empty().then_some("no schema"),
            CheckKind::Graphs => baseline.graphs.is_empty().then_some("no graph"),
            CheckKind::Rls => (baseline.row_security.is_empty() && baseline.policies.is_empty())
                .then_some("no table with row-level security and no policy"),
            _ => None,
        };
        match empty {
            Some(what) => Err(FieldError::unplaced(format!(
                "`{kind}` compares with the baseline, and the baseline records {what}: a comparison with nothing passes on any restore"
            ))
            .with_help("capture the baseline from the database the backup comes from, or drop `baseline = true` from this check")),
            None => Ok(baseline),
        }
    }
}

/// The check kinds: variant, file. One line here and one file make a kind.
macro_rules! kinds {
    ($($variant:ident => $module:ident),* $(,)?) => {
        /// A configured check, resolved from the scenario.
        #[derive(Debug, Clone)]
        pub(crate) enum CheckSpec {
            $($variant($module::Spec),)*
        }

        impl CheckSpec {
            pub(crate) fn kind(&self) -> CheckKind {
                match self {
                    $(CheckSpec::$variant(_) => <$module::Spec as Kind>::KIND,)*
                }
            }

            /// Whether it stops the target's server (see [`Kind::OFFLINE`]).
            pub(crate) fn offline(&self) -> bool {
                match self {
                    $(CheckSpec::$variant(_) => <$module::Spec as Kind>::OFFLINE,)*
                }
            }

            /// A short name for what this check covers, for reports of checks that did not run.
            pub(crate) fn label(&self) -> String {
                match self {
                    $(CheckSpec::$variant(spec) => spec.label(),)*
                }
            }

            /// See [`Kind::logins`].
            pub(crate) fn logins(&self) -> Vec<String> {
                match self {
                    $(CheckSpec::$variant(spec) => spec.logins(),)*
                }
            }

            /// See [`Kind::unqualified`].
            pub(crate) fn unqualified(&self) -> Vec<String> {
                match self {
                    $(CheckSpec::$variant(spec) => spec.unqualified(),)*
                }
            }

            /// See [`Kind::files`].
            pub(crate) fn files(&self) -> Vec<PathBuf> {
                match self {
                    $(CheckSpec::$variant(spec) => spec.files(),)*
                }
            }

            /// Its results; a check that could not run gives an error result per object it
            /// covers.
            pub(crate) async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
                let started = std::time::Instant::now();
                match self {
                    $(CheckSpec::$variant(spec) => match spec.run(ctx).await {
                        Ok(results) => results,
                        Err(err) => err.results(<$module::Spec as Kind>::KIND, spec.objects(), started),
                    },)*
                }
            }
        }

        /// Every finding a check of a `[checks.<kind>]` can give, an enum each: the drill's
        /// own ([`crate::outcome::Common`]), then each kind's (its file's `Found`), in this
        /// list's order.
        pub(crate) fn findings() -> Vec<&'static [crate::outcome::About]> {
            use crate::outcome::Finding;
            vec![<crate::outcome::Common as Finding>::ALL, $(<$module::Found as Finding>::ALL,)*]
        }

        /// Every check kind, in the order this file lists them.
        pub(crate) const KINDS: &[&str] = &[$(<$module::Spec as Kind>::KIND.as_str(),)*];

        /// The kinds the release gate drills.
        pub(crate) fn gate_kinds() -> Vec<CheckKind> {
            [$((<$module::Spec as Kind>::KIND, <$module::Spec as Kind>::GATE),)*]
                .into_iter()
                .filter_map(|(name, gate)| gate.then_some(name))
                .collect()
        }

        /// `[checks]` in the JSON Schema of the scenario format: each kind once (a table) or
        /// several times (an array of tables), described by what it proves.
        impl schemars::JsonSchema for RawChecks {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                "Checks".into()
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let mut properties = serde_json::Map::new();
                $(
                    let one = generator.subschema_for::<<$module::Spec as Kind>::Config>();
                    properties.insert(
                        <$module::Spec as Kind>::KIND.as_str().to_owned(),
                        schemars::json_schema!({
                            "description": <$module::Spec as Kind>::KIND.proves(),
                            "anyOf": [one, { "type": "array", "items": one }]
                        })
                        .into(),
                    );
                )*
                properties.insert(
                    "timeout".to_owned(),
                    schemars::json_schema!({
                        "description": "Longest the checks phase may take, every check together (default 2h).",
                        "type": "string"
                    })
                    .into(),
                );
                schemars::json_schema!({
                    "description": "The checks to run on the restored database, by kind.",
                    "type": "object",
                    "properties": properties,
                    "additionalProperties": false
                })
            }
        }

        /// One `[checks.<kind>]` entry as written (a table, or an array of tables).
        #[derive(Debug)]
        enum RawCheck {
            $($variant(Spanned<OneOrMany<<$module::Spec as Kind>::Config>>),)*
        }

        impl RawCheck {
            /// Reads the value of the key `kind`.
            fn read<'de, A: MapAccess<'de>>(kind: &str, map: &mut A) -> Result<RawCheck, A::Error> {
                match kind {
                    $(k if k == <$module::Spec as Kind>::KIND.as_str() => Ok(RawCheck::$variant(map.next_value()?)),)*
                    other => Err(de::Error::unknown_field(other, KINDS)),
                }
            }

            /// Resolves every entry, each error placed at its entry (or at the group).
            fn resolve(self, ctx: &ResolveContext, out: &mut Vec<CheckSpec>) -> Result<(), FieldError> {
                match self {
                    $(RawCheck::$variant(group) => resolve_group::<$module::Spec>(group, ctx, CheckSpec::$variant, out),)*
                }
            }
        }
    };
}

kinds! {
    Extensions => extensions,
    SchemaVersion => schema_version,
    RowCounts => row_counts,
    Fingerprints => fingerprints,
    Canary => canary,
    Indexes => indexes,
    Rls => rls,
    AppendOnly => append_only,
    Roles => roles,
    Graphs => graphs,
    Partitions => partitions,
    Schemas => schemas,
    Sql => sql,
    Amcheck => amcheck,
    VectorRecall => vector_recall,
    PointInTime => point_in_time,
    Collations => collations,
    Checksums => checksums,
    Triggers => triggers,
}

fn resolve_group<K: Kind>(
    group: Spanned<OneOrMany<K::Config>>,
    ctx: &ResolveContext,
    wrap: fn(K) -> CheckSpec,
    out: &mut Vec<CheckSpec>,
) -> Result<(), FieldError> {
    let outer: Range<usize> = group.span();
    for (span, config) in group.into_inner().0 {
        let spec = K::resolve(config, ctx).map_err(|e| e.or_span(span.clone().or(Some(outer.clone()))))?;
        out.push(wrap(spec));
    }
    Ok(())
}

/// The `[checks]` table as written, in the file's order.
#[derive(Debug, Default)]
pub(crate) struct RawChecks {
    kinds: Vec<RawCheck>,
    /// `[checks] timeout`: longest the checks phase may take.
    pub timeout: Option<Spanned<String>>,
}

impl RawChecks {
    /// The checks the scenario configures, in the order it gives them, but those that log in as
    /// a role after the others and those that stop the server last (they run so, and the reports
    /// list checks as they run).
    pub(crate) fn resolve(self, ctx: &ResolveContext) -> Result<Vec<CheckSpec>, FieldError> {
        let mut checks = Vec::new();
        for raw in self.kinds {
            raw.resolve(ctx, &mut checks)?;
        }
        let schemas_compare = checks.iter().any(|c| matches!(c, CheckSpec::Schemas(s) if s.baseline.is_some()));
        for check in &mut checks {
            if let CheckSpec::Indexes(indexes) = check {
                indexes.schemas_compares = schemas_compare;
            }
        }
        // Checks that log in as a role come after those that only read (a probe commits probe rows
        // and lifts a NOLOGIN while it connects, which a read running beside it would see), and
        // those that stop the server last.
        checks.sort_by_key(|c| (c.offline(), !c.logins().is_empty()));
        Ok(checks)
    }
}

impl<'de> Deserialize<'de> for RawChecks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChecksVisitor;

        impl<'de> Visitor<'de> for ChecksVisitor {
            type Value = RawChecks;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of check kinds")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawChecks, A::Error> {
                let mut checks = RawChecks::default();
                while let Some(kind) = map.next_key::<String>()? {
                    if kind == "timeout" {
                        checks.timeout = Some(map.next_value()?);
                    } else {
                        checks.kinds.push(RawCheck::read(&kind, &mut map)?);
                    }
                }
                Ok(checks)
            }
        }

        deserializer.deserialize_map(ChecksVisitor)
    }
}

/// Session settings a probe that runs as a role applies first in its transaction (`set_config(name,
/// value, true)`, as `SET LOCAL`): what the application sets per session, such as the tenant a
/// row-level security policy reads. `settings = { "caracal.zone_id" = "..." }` in the scenario.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub(crate) struct Settings(pub std::collections::BTreeMap<String, String>);

/// SQL with its `$n` parameters replaced by the values bound to them, as evidence a reader can
/// run again.
pub(crate) fn bind_evidence(sql: &str, values: &[&str]) -> String {
    let mut out = sql.to_owned();
    for (i, value) in values.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), &crate::pg::quote_literal(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::KINDS;

    /// The docs' reference of check kinds (generated by `pgdrill reference`) has a row for each.
    #[test]
    fn the_reference_documents_every_kind() {
        let page = include_str!("../../../docs/src/reference/checks.md");
        for kind in KINDS {
            assert!(page.contains(&format!("| `{kind}` |")), "docs/src/reference/checks.md lacks `{kind}`");
        }
    }
}
