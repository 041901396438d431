//! `schemas`: every non-system schema of the baseline survived the restore (plugin-owned
//! schemas included), with its tables, enum types (and their labels) and sequences; and no
//! sequence is behind the maximum of its column, so the next insert does not collide.
//!
//! ```toml
//! [checks.schemas]
//! baseline = true                      # every schema of the scenario's baseline
//! schemas = ["plugin_github"]          # and/or: these schemas exist
//! sequences = true                     # no sequence behind its column (the default)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckResult, Kind, ResolveContext};
use crate::baseline::{Baseline, SchemaInventory, capture};
use crate::field::FieldError;
use crate::pg::describe_sql_error;

pub(crate) const KIND: &str = "schemas";

const EVIDENCE: &str =
    "SELECT ... FROM pg_namespace, pg_class (tables, sequences), pg_type JOIN pg_enum, for every user schema";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default)]
    pub baseline: bool,
    #[serde(default)]
    pub schemas: Vec<String>,
    pub sequences: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub baseline: Option<Arc<Baseline>>,
    pub schemas: Vec<String>,
    pub sequences: bool,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str =
        "every schema survived with its tables, types and sequences; no sequence would collide";
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let baseline = if config.baseline { Some(ctx.require_baseline(KIND)?) } else { None };
        let sequences = config.sequences.unwrap_or(true);
        if baseline.is_none() && config.schemas.is_empty() && !sequences {
            return Err(FieldError::unplaced(
                "schemas needs `baseline = true`, `schemas = [...]` or `sequences = true`",
            ));
        }
        Ok(Spec { baseline, schemas: config.schemas, sequences })
    }

    fn label(&self) -> String {
        if self.baseline.is_some() { "the baseline's schemas".into() } else { self.schemas.join(", ") }
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        let started = Instant::now();
        let mut results = Vec::new();
        let actual = match capture::schemas(ctx.pool).await {
            Ok(a) => a,
            Err(err) => {
                return vec![
                    CheckResult::build(KIND, self.label(), started)
                        .evidence(EVIDENCE)
                        .error(format!("could not list schemas: {}", describe_sql_error(&err))),
                ];
            }
        };
        if let Some(baseline) = &self.baseline {
            for (schema, want) in &baseline.schemas {
                results.push(compare(schema, want, actual.get(schema), started));
            }
        }
        for schema in &self.schemas {
            if self.baseline.as_ref().is_some_and(|b| b.schemas.contains_key(schema)) {
                continue;
            }
            let result = CheckResult::build(KIND, schema.clone(), started).expected("exists").evidence(EVIDENCE);
            results.push(match actual.get(schema) {
                Some(inv) => result.actual(inventory_text(inv)).verdict(true, format!("schema `{schema}` exists")),
                None => result.actual("missing").verdict(false, format!("schema `{schema}` was not restored")),
            });
        }
        if self.sequences {
            results.push(sequences(ctx).await);
        }
        results
    }
}

fn inventory_text(inv: &SchemaInventory) -> String {
    format!("{} tables, {} enums, {} sequences", inv.tables.len(), inv.enums.len(), inv.sequences.len())
}

fn compare(schema: &str, want: &SchemaInventory, have: Option<&SchemaInventory>, started: Instant) -> CheckResult {
    let result = CheckResult::build(KIND, schema.to_owned(), started).expected(inventory_text(want)).evidence(EVIDENCE);
    let Some(have) = have else {
        return result
            .actual("schema missing")
            .verdict(false, format!("schema `{schema}` was not restored: its {} are gone", inventory_text(want)));
    };
    let missing = |want: &[String], have: &[String]| -> Vec<String> {
        want.iter().filter(|w| !have.contains(w)).cloned().collect()
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
    let enums: BTreeMap<&String, &Vec<String>> = want.enums.iter().collect();
    for (name, labels) in enums {
        match have.enums.get(name) {
            None => problems.push(format!("missing enum: {name}")),
            Some(have_labels) if have_labels != labels => {
                problems.push(format!("enum {name} is ({}) instead of ({})", have_labels.join(", "), labels.join(", ")))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        result.actual(inventory_text(have)).verdict(true, format!("schema `{schema}` has everything the baseline had"))
    } else {
        let text = problems.join("; ");
        result.actual(text.clone()).verdict(false, format!("schema `{schema}`: {text}"))
    }
}

async fn sequences(ctx: &CheckContext<'_>) -> CheckResult {
    let started = Instant::now();
    let result = CheckResult::build(KIND, "sequences ahead of their columns", started)
        .expected("every sequence's next value past its column's (above the maximum; below the minimum when descending)")
        .evidence("SELECT last_value, is_called FROM <sequence>; SELECT max(<column>), min(<column>) FROM <table>; for every sequence a column owns or defaults to");
    match capture::sequences_behind(ctx.pool).await {
        Err(err) => result.error(format!("could not compare sequences: {}", describe_sql_error(&err))),
        Ok(behind) if behind.is_empty() => {
            result.actual("all ahead").verdict(true, "every sequence is past the values its column holds")
        }
        Ok(behind) => {
            let list: Vec<String> = behind
                .iter()
                .map(|b| {
                    format!(
                        "{} would hand out {} but {} is already at {}",
                        b.sequence, b.next_value, b.column, b.column_at
                    )
                })
                .collect();
            let text = list.join("; ");
            result.actual(text.clone()).verdict(false, format!("{text}: the next insert would collide"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Verdict;

    fn inventory(tables: &[&str], enum_labels: &[&str]) -> SchemaInventory {
        SchemaInventory {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            enums: BTreeMap::from([("plan".to_owned(), enum_labels.iter().map(|l| l.to_string()).collect())]),
            sequences: vec!["issues_id_seq".into()],
        }
    }

    #[test]
    fn a_schema_passes_with_everything_the_baseline_had_and_fails_naming_what_is_gone() {
        let want = inventory(&["issues", "projects"], &["free", "team"]);
        let now = Instant::now();
        let same = compare("public", &want, Some(&inventory(&["issues", "projects", "new"], &["free", "team"])), now);
        assert_eq!(same.verdict, Verdict::Pass, "{same:?}");
        let gone = compare("plugin_slack", &want, None, now);
        assert_eq!(gone.verdict, Verdict::Fail);
        assert!(gone.message.contains("schema `plugin_slack` was not restored: its 2 tables"), "{}", gone.message);
        let mut drifted = inventory(&["issues"], &["free"]);
        drifted.sequences.clear();
        let drifted = compare("public", &want, Some(&drifted), now);
        assert_eq!(drifted.verdict, Verdict::Fail);
        for says in [
            "missing tables: projects",
            "missing sequences: issues_id_seq",
            "enum plan is (free) instead of (free, team)",
        ] {
            assert!(drifted.message.contains(says), "{}", drifted.message);
        }
    }
}
