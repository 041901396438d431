//! `indexes`: the indexes the application relies on exist and are valid (`indisvalid`), with
//! the right table, access method (btree, gin, gist, hnsw, ivfflat, ...) and operator class;
//! against a baseline, a missing, invalid or changed index fails and an unexpected one is
//! reported.
//!
//! ```toml
//! [[checks.indexes]]
//! baseline = true                  # every index of the scenario's baseline ...
//! methods = ["hnsw", "ivfflat"]    # ... of these methods only (default: all)
//! expect = [
//!   { name = "index_ai_knowledge_graph_nodes_on_embedding", table = "public.ai_knowledge_graph_nodes",
//!     method = "hnsw", opclass = "vector_cosine_ops" },
//! ]
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::baseline::{Baseline, IndexInfo, capture};
use crate::field::FieldError;
use crate::names;
use crate::pg::{QualifiedName, describe_sql_error};

pub(crate) const KIND: &str = "indexes";

/// The result that compares every index of the baseline.
const EVERY: &str = "every index in the baseline";
const EVIDENCE: &str = "SELECT ... FROM pg_index JOIN pg_class JOIN pg_am (name, table, method, operator classes, indisunique, indisvalid, pg_get_indexdef) for every user index";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IndexesCheck")]
pub(crate) struct Config {
    /// Compare with every index of the scenario's baseline.
    #[serde(default)]
    pub baseline: bool,
    /// Restrict the baseline comparison to these access methods.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Indexes that must exist.
    #[serde(default)]
    pub expect: Vec<ExpectedIndex>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedIndex {
    /// `index` or `schema.index`.
    pub name: String,
    pub table: Option<String>,
    pub method: Option<String>,
    pub opclass: Option<String>,
    pub unique: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub baseline: Option<Arc<Baseline>>,
    pub methods: Vec<String>,
    pub expect: Vec<(QualifiedName, ExpectedIndex)>,
    /// The scenario's `schemas` check compares with the baseline too: it fails on a missing
    /// table, so that table's indexes are named there, not failed again here.
    pub schemas_compares: bool,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str = "the indexes the application relies on exist and are valid";
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let baseline = if config.baseline { Some(ctx.require_baseline(KIND)?) } else { None };
        let mut expect = Vec::new();
        for index in config.expect {
            let name = QualifiedName::parse(&index.name).map_err(FieldError::unplaced)?;
            if let Some(table) = &index.table {
                QualifiedName::parse(table).map_err(FieldError::unplaced)?;
            }
            expect.push((name, index));
        }
        if baseline.is_none() && expect.is_empty() {
            return Err(FieldError::unplaced("indexes needs `baseline = true` or `expect = [...]`"));
        }
        let methods = config.methods.iter().map(|m| m.to_ascii_lowercase()).collect();
        Ok(Spec { baseline, methods, expect, schemas_compares: false })
    }

    fn label(&self) -> String {
        let mut parts: Vec<String> = self.expect.iter().map(|(n, _)| n.to_string()).collect();
        if self.baseline.is_some() {
            parts.push("the baseline's indexes".into());
        }
        parts.join(", ")
    }

    fn objects(&self) -> Vec<String> {
        let mut objects: Vec<String> = self.expect.iter().map(|(n, _)| n.to_string()).collect();
        if self.baseline.is_some() {
            objects.push(EVERY.into());
        }
        objects
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let actual =
            capture::indexes(ctx.pool).await.or_check("could not list indexes").map_err(|e| e.evidence(EVIDENCE))?;
        let mut results: Vec<CheckResult> =
            self.expect.iter().map(|(name, want)| expected_index(name, want, &actual, started)).collect();
        if let Some(baseline) = &self.baseline {
            let tables = match capture::relations(ctx.pool).await {
                Ok(t) => t,
                Err(err) => {
                    results.push(
                        CheckResult::build(KIND, EVERY, started)
                            .error(format!("could not list tables: {}", describe_sql_error(&err))),
                    );
                    return Ok(results);
                }
            };
            results.push(self.against_baseline(baseline, &actual, &tables, started));
        }
        Ok(results)
    }
}

impl Spec {
    /// `tables`: the relations that exist. An index whose table is gone is missing too (a
    /// baseline entry whose object is gone is never left out of the comparison), unless the
    /// scenario's `schemas` check compares with the baseline: it fails on the table itself.
    fn against_baseline(
        &self,
        baseline: &Baseline,
        actual: &[IndexInfo],
        tables: &[String],
        started: Instant,
    ) -> CheckResult {
        let wanted = |i: &&IndexInfo| self.methods.is_empty() || self.methods.contains(&i.method);
        let by_name: BTreeMap<&str, &IndexInfo> = actual.iter().map(|i| (i.name.as_str(), i)).collect();
        let (expected, orphaned): (Vec<&IndexInfo>, Vec<&IndexInfo>) =
            baseline.indexes.iter().filter(wanted).partition(|i| tables.contains(&i.table));
        let (mut missing, mut invalid, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for want in &expected {
            match by_name.get(want.name.as_str()) {
                None => missing.push(format!("{} ({} on {})", want.name, want.method, want.table)),
                Some(have) if !have.valid => invalid.push(have.name.clone()),
                Some(have) if have.definition != want.definition => {
                    changed.push(format!("{}: `{}` instead of `{}`", have.name, have.definition, want.definition))
                }
                Some(_) => {}
            }
        }
        if !self.schemas_compares {
            for gone in &orphaned {
                missing.push(format!("{} ({} on {}, a table that is missing)", gone.name, gone.method, gone.table));
            }
        }
        let known: Vec<&str> = baseline.indexes.iter().map(|i| i.name.as_str()).collect();
        let extra: Vec<String> = actual
            .iter()
            .filter(wanted)
            .filter(|i| !known.contains(&i.name.as_str()))
            .map(|i| i.name.clone())
            .collect();
        let scope = if self.methods.is_empty() { String::new() } else { format!(" {}", self.methods.join("/")) };
        let result = CheckResult::build(KIND, format!("every{scope} index in the baseline"), started)
            .expected(format!(
                "{} valid{scope} indexes as in the baseline",
                expected.len() + if self.schemas_compares { 0 } else { orphaned.len() }
            ))
            .evidence(EVIDENCE);
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing: {}", missing.join(", ")));
        }
        if !invalid.is_empty() {
            problems.push(format!("invalid: {}", invalid.join(", ")));
        }
        if !changed.is_empty() {
            problems.push(format!("changed: {}", changed.join("; ")));
        }
        let mut extra_note = if extra.is_empty() {
            String::new()
        } else {
            format!("; not in the baseline (reported, not failed): {}", extra.join(", "))
        };
        if self.schemas_compares && !orphaned.is_empty() {
            let tables: std::collections::BTreeSet<&str> = orphaned.iter().map(|i| i.table.as_str()).collect();
            let tables: Vec<&str> = tables.into_iter().collect();
            extra_note.push_str(&format!(
                "; {} indexes of missing tables ({}) are the schemas check's finding",
                orphaned.len(),
                tables.join(", ")
            ));
        }
        if problems.is_empty() {
            result.actual(format!("{} present and valid{extra_note}", expected.len())).verdict(
                true,
                format!("all {} baseline{scope} indexes are present and valid{extra_note}", expected.len()),
            )
        } else {
            let text = problems.join("; ");
            result.actual(format!("{text}{extra_note}")).verdict(false, format!("{text}{extra_note}"))
        }
    }
}

fn describe(index: &IndexInfo) -> String {
    let ops = if index.opclasses.is_empty() { String::new() } else { format!(" ({})", index.opclasses.join(", ")) };
    format!(
        "{}{} on {}{ops}, {}",
        if index.unique { "unique " } else { "" },
        index.method,
        index.table,
        if index.valid { "valid" } else { "INVALID" }
    )
}

fn expected_index(name: &QualifiedName, want: &ExpectedIndex, actual: &[IndexInfo], started: Instant) -> CheckResult {
    let mut expected = Vec::new();
    if want.unique == Some(true) {
        expected.push("unique".to_owned());
    }
    expected.push(want.method.clone().unwrap_or_else(|| "any method".into()));
    if let Some(table) = &want.table {
        expected.push(format!("on {table}"));
    }
    if let Some(opclass) = &want.opclass {
        expected.push(format!("({opclass})"));
    }
    expected.push("valid".into());
    let result = CheckResult::build(KIND, name.to_string(), started).expected(expected.join(" ")).evidence(EVIDENCE);
    let found = actual.iter().find(|i| QualifiedName::parse(&i.name).is_ok_and(|n| names::matches(name, &n)));
    let Some(index) = found else {
        let existing: Vec<QualifiedName> = actual.iter().filter_map(|i| QualifiedName::parse(&i.name).ok()).collect();
        let hint = match names::closest(name, &existing) {
            Some(meant) => format!(" (hint: did you mean `{meant}`?)"),
            None => String::new(),
        };
        return result.actual("missing").verdict(false, format!("index `{name}` does not exist{hint}"));
    };
    let mut wrong = Vec::new();
    if let Some(method) = &want.method
        && !index.method.eq_ignore_ascii_case(method)
    {
        wrong.push(format!("method {} instead of {method}", index.method));
    }
    if let Some(table) = &want.table
        && !QualifiedName::parse(table)
            .is_ok_and(|want| QualifiedName::parse(&index.table).is_ok_and(|have| names::matches(&want, &have)))
    {
        wrong.push(format!("on {} instead of {table}", index.table));
    }
    if let Some(opclass) = &want.opclass
        && !index.opclasses.iter().any(|o| o == opclass)
    {
        wrong.push(format!("operator classes {} instead of {opclass}", index.opclasses.join(", ")));
    }
    if let Some(unique) = want.unique
        && unique != index.unique
    {
        wrong.push(if unique { "not unique".into() } else { "unique".to_owned() });
    }
    if !index.valid {
        wrong.push("invalid (indisvalid = false: a failed or interrupted build)".into());
    }
    let result = result.actual(describe(index));
    if wrong.is_empty() {
        result.verdict(true, format!("index `{name}` is {}", describe(index)))
    } else {
        result.verdict(false, format!("index `{name}` is {}", wrong.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Verdict;

    fn index(name: &str, method: &str, opclass: &str, valid: bool) -> IndexInfo {
        IndexInfo {
            name: name.into(),
            table: "public.engrams".into(),
            method: method.into(),
            opclasses: vec![opclass.into()],
            unique: false,
            valid,
            definition: format!("CREATE INDEX {name} ON public.engrams USING {method} (embedding {opclass})"),
        }
    }

    fn want(method: &str, opclass: &str) -> ExpectedIndex {
        ExpectedIndex {
            name: "public.engrams_embedding_hnsw".into(),
            table: Some("public.engrams".into()),
            method: Some(method.into()),
            opclass: Some(opclass.into()),
            unique: None,
        }
    }

    #[test]
    fn an_expected_index_passes_as_found_and_fails_naming_what_differs() {
        let name = QualifiedName::parse("public.engrams_embedding_hnsw").unwrap();
        let good = [index("public.engrams_embedding_hnsw", "hnsw", "vector_cosine_ops", true)];
        let now = Instant::now();
        assert_eq!(expected_index(&name, &want("hnsw", "vector_cosine_ops"), &good, now).verdict, Verdict::Pass);
        let cases = [
            (vec![], want("hnsw", "vector_cosine_ops"), "does not exist"),
            (good.to_vec(), want("ivfflat", "vector_cosine_ops"), "method hnsw instead of ivfflat"),
            (
                good.to_vec(),
                want("hnsw", "vector_l2_ops"),
                "operator classes vector_cosine_ops instead of vector_l2_ops",
            ),
            (
                vec![index("public.engrams_embedding_hnsw", "hnsw", "vector_cosine_ops", false)],
                want("hnsw", "vector_cosine_ops"),
                "invalid (indisvalid = false",
            ),
        ];
        // A table named without its schema is the index's table in whatever schema it is.
        let unqualified = ExpectedIndex { table: Some("engrams".into()), ..want("hnsw", "vector_cosine_ops") };
        assert_eq!(expected_index(&name, &unqualified, &good, now).verdict, Verdict::Pass);
        let elsewhere = ExpectedIndex { table: Some("archive.engrams".into()), ..want("hnsw", "vector_cosine_ops") };
        let result = expected_index(&name, &elsewhere, &good, now);
        assert!(result.message.contains("on public.engrams instead of archive.engrams"), "{}", result.message);
        // A name in the wrong case is missing, with the one it meant.
        let odd = [index("public.\"Engrams_HNSW\"", "hnsw", "vector_cosine_ops", true)];
        let written = QualifiedName::parse("public.Engrams_HNSW").unwrap();
        let result = expected_index(&written, &want("hnsw", "vector_cosine_ops"), &odd, now);
        assert_eq!(result.verdict, Verdict::Fail);
        assert!(result.message.ends_with("(hint: did you mean `public.\"Engrams_HNSW\"`?)"), "{}", result.message);
        for (actual, wanted, says) in cases {
            let result = expected_index(&name, &wanted, &actual, now);
            assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
            assert!(result.message.contains(says), "{}", result.message);
        }
    }

    #[test]
    fn against_the_baseline_missing_and_changed_fail_extras_are_reported_and_indexes_of_missing_tables_are_missing() {
        let baseline = Baseline {
            indexes: vec![
                index("public.a_idx", "btree", "int4_ops", true),
                index("public.b_idx", "gin", "jsonb_ops", true),
                IndexInfo { table: "public.gone".into(), ..index("public.gone_idx", "btree", "int4_ops", true) },
            ],
            ..Baseline::empty_for_tests()
        };
        let spec = Spec { baseline: None, methods: vec![], expect: vec![], schemas_compares: false };
        let tables = vec!["public.engrams".to_owned()];
        let now = Instant::now();
        let same = [index("public.a_idx", "btree", "int4_ops", true), index("public.b_idx", "gin", "jsonb_ops", true)];
        let result = spec.against_baseline(&baseline, &same, &tables, now);
        assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
        assert!(
            result.message.contains("missing: public.gone_idx (btree on public.gone, a table that is missing)"),
            "{}",
            result.message
        );
        let kept = Baseline { indexes: baseline.indexes[..2].to_vec(), ..Baseline::empty_for_tests() };
        assert_eq!(spec.against_baseline(&kept, &same, &tables, now).verdict, Verdict::Pass);
        // With a schemas check on the baseline, the missing table is its finding.
        let with_schemas = Spec { schemas_compares: true, ..spec.clone() };
        let result = with_schemas.against_baseline(&baseline, &same, &tables, now);
        assert_eq!(result.verdict, Verdict::Pass, "{result:?}");
        assert!(result.message.contains("1 indexes of missing tables (public.gone) are the schemas check's finding"));
        let mut drifted =
            vec![index("public.a_idx", "btree", "int8_ops", true), index("public.extra_idx", "btree", "x", true)];
        drifted[0].definition = "CREATE INDEX a_idx ON public.engrams (id)".into();
        let result = spec.against_baseline(&baseline, &drifted, &tables, now);
        assert_eq!(result.verdict, Verdict::Fail);
        assert!(result.message.contains("missing: public.b_idx (gin on public.engrams)"), "{}", result.message);
        assert!(result.message.contains("changed: public.a_idx"), "{}", result.message);
        assert!(result.message.contains("not in the baseline (reported, not failed): public.extra_idx"));
    }
}
