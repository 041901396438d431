//! `schemas`: every non-system schema of the baseline survived the restore (plugin-owned
//! schemas included), with its tables, enum types (and their labels) and sequences, each
//! behaving as in the baseline ([`behaviour`]): columns with their types, NOT NULL, defaults,
//! generated and identity expressions and order; constraints with their definition, validated,
//! enforced and deferrable state; triggers with when they fire (`tgenabled`) and a digest of the
//! function they run; rules; sequences with their type, bounds, step and cycling. And no
//! sequence is behind the maximum of its column, so the next insert does not collide. Names
//! fold as PostgreSQL folds them (`Plugin_GitHub` is `plugin_github`); a name that differs
//! from an existing one only in case fails with a hint. An enum that gained labels (a newer
//! backup) passes; one that lost labels, or has them in another order, fails. Tables, columns,
//! constraints and indexes the baseline lacks pass (a newer backup); triggers and rules it
//! lacks fail (they run on the application's writes). Sessions the backup made replicas
//! (`ALTER DATABASE/ROLE ... SET session_replication_role = replica`) fire no ordinary trigger
//! and check no foreign key: a schema with either fails. A CHECK, default or generated
//! expression that reads otherwise is first printed again by the restore's server
//! ([`super::reprint`]). A baseline captured before pgdrill recorded the behaviour cannot prove
//! it: the schema fails, saying how to capture the baseline again, unless the scenario accepts
//! the older baseline with a reason (then compared by names, and the result says so and why).
//!
//! ```toml
//! [checks.schemas]
//! baseline = true                      # every schema of the scenario's baseline
//! schemas = ["plugin_github"]          # and/or: these schemas exist
//! sequences = true                     # no sequence behind its column (the default)
//! # older_baseline = "why"             # a baseline that records no behaviour: names only
//! ```

mod behaviour;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::reprint;
use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::baseline::{Baseline, SchemaInventory, capture};
use crate::field::FieldError;
use crate::outcome::CheckKind;
use crate::pg::{QualifiedName, describe_sql_error, fold_ident, quote_ident_if_needed};

crate::outcome::findings! {
    /// What `schemas` finds.
    pub(crate) enum Found for Schemas {
        Exists = Pass "schemas.exists"
            "The schema the scenario names exists."
            "Nothing.",
        Missing = Fail "schemas.missing"
            "A schema (of the scenario or the baseline) was not restored, with everything in it."
            "Check the schema's name, or why the backup left it out (`pg_dump --schema`, `--exclude-schema`).",
        AsInBaseline = Pass "schemas.as-in-baseline"
            "The schema has every table, column, type, constraint, trigger and sequence the baseline had, behaving as it did."
            "Nothing.",
        Differs = Fail "schemas.differs"
            "The schema differs from the baseline's: a table, column, type, constraint, trigger, function or sequence lost or changed."
            "Read each difference in the message and compare with the source.",
        SequencesAhead = Pass "schemas.sequences-ahead"
            "Every sequence is past the values its column holds."
            "Nothing.",
        SequenceBehind = Fail "schemas.sequence-behind"
            "A sequence is behind the values its column holds: the next insert collides (or cannot take a value)."
            "`SELECT setval(...)` past the column's maximum; find why the backup's sequence was behind (a dump of the data without its sequences).",
        CouldNotRead = Error "schemas.could-not-read"
            "The schemas or sequences could not be read."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Schemas;

/// How many of a schema's problems its message names (the result's `actual` has them all).
const PROBLEMS_NAMED: usize = 12;

const EVIDENCE: &str = "SELECT ... FROM pg_namespace, pg_class (tables, sequences), pg_type JOIN pg_enum, pg_attribute \
     (format_type, attnotnull, pg_get_expr of pg_attrdef, attgenerated, attidentity, attcollation), pg_constraint \
     (pg_get_constraintdef, convalidated, condeferrable, condeferred, the tgenabled of its triggers), pg_trigger \
     (tgenabled, pg_get_triggerdef, sha256 of its function's language, prosrc, probin, prosecdef, proconfig), \
     pg_rewrite (ev_enabled, pg_get_ruledef), pg_sequence (seqtypid, seqmin, seqmax, seqincrement, seqcycle), for every user schema; \
     pg_db_role_setting (session_replication_role = replica for this database or a role)";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SchemasCheck")]
pub(crate) struct Config {
    /// Compare every non-system schema of the scenario's baseline: its tables, enum types and
    /// sequences, and how each behaves.
    #[serde(default)]
    pub baseline: bool,
    /// Schemas that must exist (`plugin_github`).
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Every sequence a column owns or defaults to must be past the values its column holds, so
    /// that the next insert does not collide (default true).
    pub sequences: Option<bool>,
    /// Why a baseline captured before pgdrill recorded how tables and sequences behave is good
    /// enough: its schemas are then compared by name only, and the report says so with this
    /// reason. Without it such a baseline fails: capture it again with `pgdrill baseline`.
    pub older_baseline: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub baseline: Option<Arc<Baseline>>,
    pub schemas: Vec<String>,
    pub sequences: bool,
    /// Why an older baseline (one that records no behaviour) is accepted.
    pub older_baseline: Option<String>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let baseline = if config.baseline { Some(ctx.require_baseline(KIND)?) } else { None };
        let sequences = config.sequences.unwrap_or(true);
        if baseline.is_none() && config.schemas.is_empty() && !sequences {
            return Err(FieldError::unplaced(
                "schemas needs `baseline = true`, `schemas = [...]` or `sequences = true`",
            ));
        }
        let older_baseline = match config.older_baseline.map(|r| r.trim().to_owned()) {
            Some(reason) if reason.is_empty() => {
                return Err(FieldError::unplaced(
                    "`older_baseline` needs a reason: the report shows an auditor why names alone were enough",
                ));
            }
            Some(_) if baseline.is_none() => {
                return Err(FieldError::unplaced("`older_baseline` accepts a baseline: it needs `baseline = true`"));
            }
            reason => reason,
        };
        let schemas = config.schemas.iter().map(|s| fold_ident(s)).collect();
        Ok(Spec { baseline, schemas, sequences, older_baseline })
    }

    fn label(&self) -> String {
        if self.baseline.is_some() { "the baseline's schemas".into() } else { self.schemas.join(", ") }
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let mut results = Vec::new();
        let actual =
            capture::schemas(ctx.pool).await.or_check("could not list schemas").map_err(|e| e.evidence(EVIDENCE))?;
        if let Some(baseline) = &self.baseline {
            let replicas = super::relation::replica_sessions(ctx.pool)
                .await
                .or_check("could not read the database's and roles' settings")
                .map_err(|e| e.evidence(EVIDENCE))?;
            for (schema, want) in &baseline.schemas {
                let want = reprinted(ctx.pool, schema, want, actual.get(schema)).await;
                let older = self.older_baseline.as_deref();
                results.push(compare(schema, &want, &actual, &replicas, older, started));
            }
        }
        for schema in &self.schemas {
            if self.baseline.as_ref().is_some_and(|b| b.schemas.contains_key(schema)) {
                continue;
            }
            let result = CheckResult::build(KIND, schema.clone(), started).expected("exists").evidence(EVIDENCE);
            let shown = quote_ident_if_needed(schema);
            results.push(match actual.get(schema) {
                Some(inv) => {
                    result.actual(inventory_text(inv)).found(Found::Exists, format!("schema `{shown}` exists"))
                }
                None => {
                    let message = crate::names::with_hint(
                        ctx.pool,
                        crate::names::Object::Schema,
                        &QualifiedName { schema: None, name: schema.clone() },
                        format!("schema `{shown}` was not restored"),
                    )
                    .await;
                    result.actual("missing").found(Found::Missing, message)
                }
            });
        }
        if self.sequences {
            results.push(sequences(ctx).await);
        }
        Ok(results)
    }
}

/// The baseline's schema, each CHECK constraint, default and generation expression that reads
/// otherwise than the restore's printed again by the restore's server ([`super::reprint`]): a
/// definition printed by the source's major and parsed by a newer one can print otherwise and
/// be the same. Only a text that then reads as the restore's is replaced.
async fn reprinted(
    pool: &sqlx::PgPool,
    schema: &str,
    want: &SchemaInventory,
    have: Option<&SchemaInventory>,
) -> SchemaInventory {
    let mut want = want.clone();
    let (Some(tables), Some(have_tables)) = (want.table_facts.as_mut(), have.and_then(|h| h.table_facts.as_ref()))
    else {
        return want;
    };
    for (name, facts) in tables.iter_mut() {
        let Some(have_facts) = have_tables.get(name) else { continue };
        let table = QualifiedName::new(schema, name);
        for constraint in facts.constraints.iter_mut().filter(|c| c.kind == "check") {
            let Some(h) = have_facts.constraints.iter().find(|h| h.name == constraint.name && h.kind == "check") else {
                continue;
            };
            let have_core = behaviour::core(&h.definition);
            if behaviour::core(&constraint.definition) != have_core
                && reprint::constraint(pool, &table, behaviour::core(&constraint.definition)).await.as_deref()
                    == Some(have_core)
            {
                constraint.definition = h.definition.clone();
            }
        }
        for column in facts.columns.iter_mut() {
            let Some(h) = have_facts.columns.iter().find(|h| h.name == column.name) else { continue };
            if let (Some(w), Some(hd)) = (&column.default, &h.default)
                && w != hd
                && reprint::default(pool, &table, &column.name, w).await.as_ref() == Some(hd)
            {
                column.default = h.default.clone();
            }
            if let (Some(w), Some(hg)) = (&column.generated, &h.generated)
                && w != hg
                && let Some(expression) = w.strip_suffix(" (stored)")
                && let Some(printed) = reprint::generated(pool, &table, &column.name, expression).await
                && format!("{printed} (stored)") == *hg
            {
                column.generated = h.generated.clone();
            }
        }
    }
    want
}

fn inventory_text(inv: &SchemaInventory) -> String {
    format!("{} tables, {} enums, {} sequences", inv.tables.len(), inv.enums.len(), inv.sequences.len())
}

/// ` (hint: did you mean `X`?)` when `have` holds a name that differs from `name` only in case.
fn case_hint<'a>(name: &str, have: impl IntoIterator<Item = &'a String>) -> String {
    have.into_iter()
        .find(|h| h.as_str() != name && h.to_lowercase() == name.to_lowercase())
        .map(|h| format!(" (hint: did you mean `{}`?)", quote_ident_if_needed(h)))
        .unwrap_or_default()
}

/// Whether the restored labels keep the baseline's: every one of them, in the same order;
/// labels added (a newer backup) are fine.
pub(crate) fn enum_keeps(want: &[String], have: &[String]) -> bool {
    let mut have = have.iter();
    want.iter().all(|w| have.any(|h| h == w))
}

/// One schema of the baseline against the restored ones.
fn compare(
    schema: &str,
    want: &SchemaInventory,
    actual: &BTreeMap<String, SchemaInventory>,
    replicas: &[String],
    older: Option<&str>,
    started: Instant,
) -> CheckResult {
    let shown = quote_ident_if_needed(schema);
    let result = CheckResult::build(KIND, shown.clone(), started).expected(inventory_text(want)).evidence(EVIDENCE);
    let Some(have) = actual.get(schema) else {
        return result.actual("schema missing").found(
            Found::Missing,
            format!(
                "schema `{shown}` was not restored: its {} are gone{}",
                inventory_text(want),
                case_hint(schema, actual.keys())
            ),
        );
    };
    let missing = |want: &[String], have: &[String]| -> Vec<String> {
        want.iter()
            .filter(|w| !have.contains(w))
            .map(|w| format!("{}{}", quote_ident_if_needed(w), case_hint(w, have)))
            .collect()
    };
    let mut problems = Vec::new();
    let tables = missing(&want.tables, &have.tables);
    if !tables.is_empty() {
        problems.push(format!("missing tables: {}", tables.join(", ")));
    }
    let sequences = missing(&want.sequences, &have.sequences);
    if !sequences.is_empty() {
        problems.push(format!("missing sequences: {}", sequences.join(", ")));
    }
    for (name, labels) in &want.enums {
        match have.enums.get(name) {
            None => problems.push(format!("missing enum: {name}{}", case_hint(name, have.enums.keys()))),
            Some(have_labels) if !enum_keeps(labels, have_labels) => {
                let lost: Vec<&str> = labels.iter().filter(|l| !have_labels.contains(l)).map(|l| l.as_str()).collect();
                let what = if lost.is_empty() {
                    "has its labels in another order".to_owned()
                } else {
                    format!("lost labels {}", lost.join(", "))
                };
                problems.push(format!(
                    "enum {name} {what}: is ({}) instead of ({})",
                    have_labels.join(", "),
                    labels.join(", ")
                ))
            }
            Some(_) => {}
        }
    }
    let behaviour = behaviour::compare(schema, want, have, replicas, older);
    problems.extend(behaviour.problems);
    let notes: String = behaviour.notes.iter().map(|n| format!("; {n}")).collect();
    let as_it_did = if notes.is_empty() { ", behaving as it did" } else { "" };
    if problems.is_empty() {
        result
            .actual(format!("{}{notes}", inventory_text(have)))
            .found(Found::AsInBaseline, format!("schema `{shown}` has everything the baseline had{as_it_did}{notes}"))
    } else {
        let all = problems.join("; ");
        let text = crate::listing::first(&problems, PROBLEMS_NAMED, "; ");
        result.actual(format!("{all}{notes}")).found(Found::Differs, format!("schema `{shown}`: {text}{notes}"))
    }
}

async fn sequences(ctx: &CheckContext<'_>) -> CheckResult {
    let started = Instant::now();
    let result = CheckResult::build(KIND, "sequences ahead of their columns", started)
        .expected("every sequence's next value past its column's (above the maximum; below the minimum when descending)")
        .evidence("SELECT last_value, is_called FROM <sequence>, seqincrement, seqmin, seqmax, seqcycle FROM pg_sequence; SELECT max(<column>), min(<column>) FROM <table>; for every sequence a column owns or defaults to");
    match capture::sequences_behind(ctx.pool).await {
        Err(err) => {
            result.found(Found::CouldNotRead, format!("could not compare sequences: {}", describe_sql_error(&err)))
        }
        Ok(behind) if behind.is_empty() => result
            .actual("all ahead")
            .found(Found::SequencesAhead, "every sequence is past the values its column holds"),
        Ok(behind) => {
            let list: Vec<String> = behind
                .iter()
                .map(|b| match b.next_value {
                    capture::Next::Value(next) => {
                        format!("{} would hand out {next} but {} is already at {}", b.sequence, b.column, b.column_at)
                    }
                    capture::Next::Exhausted(bound) => format!(
                        "{} has reached its last value {bound} and does not cycle: nextval fails, so inserts into {} fail",
                        b.sequence, b.column
                    ),
                })
                .collect();
            let text = list.join("; ");
            let collides = behind.iter().any(|b| matches!(b.next_value, capture::Next::Value(_)));
            let consequence = if collides { ": the next insert would collide" } else { "" };
            result.actual(text.clone()).found(Found::SequenceBehind, format!("{text}{consequence}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(tables: &[&str], enum_labels: &[&str]) -> SchemaInventory {
        SchemaInventory {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            enums: BTreeMap::from([("plan".to_owned(), enum_labels.iter().map(|l| l.to_string()).collect())]),
            sequences: vec!["issues_id_seq".into()],
            ..SchemaInventory::default()
        }
    }

    /// The inventories here record names only, as a baseline captured before pgdrill recorded
    /// behaviour: accepted as such.
    const NAMES: Option<&str> = Some("these inventories record names only");

    fn restored(schemas: &[(&str, SchemaInventory)]) -> BTreeMap<String, SchemaInventory> {
        schemas.iter().map(|(n, i)| (n.to_string(), i.clone())).collect()
    }

    #[test]
    fn a_schema_passes_with_everything_the_baseline_had_and_fails_naming_what_is_gone() {
        let want = inventory(&["issues", "projects"], &["free", "team"]);
        let now = Instant::now();
        let same = compare(
            "public",
            &want,
            &restored(&[("public", inventory(&["issues", "projects", "new"], &["free", "team"]))]),
            &[],
            NAMES,
            now,
        );
        assert_eq!(same.code, "schemas.as-in-baseline", "{same:?}");
        let gone = compare("plugin_slack", &want, &restored(&[]), &[], NAMES, now);
        assert_eq!(gone.code, "schemas.missing");
        assert!(gone.message.contains("schema `plugin_slack` was not restored: its 2 tables"), "{}", gone.message);
        let mut drifted = inventory(&["issues"], &["free"]);
        drifted.sequences.clear();
        let drifted = compare("public", &want, &restored(&[("public", drifted)]), &[], NAMES, now);
        assert_eq!(drifted.code, "schemas.differs");
        for says in [
            "missing tables: projects",
            "missing sequences: issues_id_seq",
            "enum plan lost labels team: is (free) instead of (free, team)",
        ] {
            assert!(drifted.message.contains(says), "{}", drifted.message);
        }
    }

    #[test]
    fn an_enum_may_gain_labels_but_not_lose_or_reorder_them() {
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let want = labels(&["free", "team", "enterprise"]);
        assert!(enum_keeps(&want, &want));
        assert!(enum_keeps(&want, &labels(&["free", "pro", "team", "enterprise", "gov"])), "gained labels");
        assert!(!enum_keeps(&want, &labels(&["free", "enterprise"])), "lost one");
        assert!(!enum_keeps(&want, &labels(&["team", "free", "enterprise"])), "reordered");
        let now = Instant::now();
        let newer = compare(
            "public",
            &inventory(&["issues"], &["free", "team"]),
            &restored(&[("public", inventory(&["issues"], &["free", "pro", "team"]))]),
            &[],
            NAMES,
            now,
        );
        assert_eq!(newer.code, "schemas.as-in-baseline", "{newer:?}");
        let reordered = compare(
            "public",
            &inventory(&["issues"], &["free", "team"]),
            &restored(&[("public", inventory(&["issues"], &["team", "free"]))]),
            &[],
            NAMES,
            now,
        );
        assert_eq!(reordered.code, "schemas.differs");
        assert!(
            reordered
                .message
                .contains("enum plan has its labels in another order: is (team, free) instead of (free, team)"),
            "{}",
            reordered.message
        );
    }

    #[test]
    fn a_name_that_differs_only_in_case_gets_a_hint() {
        let now = Instant::now();
        let want = inventory(&["Issues"], &["free"]);
        let have = restored(&[("plugin_github", inventory(&["issues"], &["free"]))]);
        let schema = compare("Plugin_GitHub", &want, &have, &[], NAMES, now);
        assert_eq!(schema.code, "schemas.missing");
        assert!(schema.message.ends_with("(hint: did you mean `plugin_github`?)"), "{}", schema.message);
        let table = compare("plugin_github", &want, &have, &[], NAMES, now);
        assert!(
            table.message.contains("missing tables: \"Issues\" (hint: did you mean `issues`?)"),
            "{}",
            table.message
        );
    }
}
