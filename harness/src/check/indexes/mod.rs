//! `indexes`: the indexes the application relies on exist and are sound: valid (`indisvalid`),
//! ready (`indisready`: writes maintain it) and live (`indislive`: it is not being dropped), with
//! the right table, access method (btree, gin, gist, hnsw, ivfflat, ...), operator class,
//! uniqueness, key columns and predicate. A backup can flip `pg_index.indisready` to false on a
//! unique index: it is then not maintained, duplicates go in and index scans miss rows, and
//! nothing else says so (pg_amcheck skips such an index without a word). Against a baseline,
//! each index is compared part by part ([`parts`]: keys and expressions, operator classes,
//! collations, order, `INCLUDE`, predicate, `NULLS NOT DISTINCT`, the constraint it backs,
//! storage parameters); a missing, unsound or changed index fails naming what differs, an
//! unexpected one is reported. A baseline index that reads otherwise is first printed again by
//! the restore's server ([`super::reprint`]): pg_dump's text parsed again can print otherwise
//! and be the same index. A baseline captured before pgdrill recorded the parts is compared by
//! each index's definition, and the result says so.
//!
//! ```toml
//! [[checks.indexes]]
//! baseline = true                  # every index of the scenario's baseline ...
//! methods = ["hnsw", "ivfflat"]    # ... of these methods only (default: all)
//! expect = [
//!   { name = "index_ai_knowledge_graph_nodes_on_embedding", table = "public.ai_knowledge_graph_nodes",
//!     method = "hnsw", opclass = "vector_cosine_ops" },
//!   { name = "orders_one_open", unique = true, keys = ["user_id"], predicate = "deleted_at IS NULL" },
//! ]
//! ```

mod expected;
mod parts;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::baseline::{Baseline, IndexInfo, capture};
use crate::field::FieldError;
use crate::outcome::CheckKind;
use crate::pg::{QualifiedName, describe_sql_error};
use expected::{Expected, expected_index};

crate::outcome::findings! {
    /// What `indexes` finds.
    pub(crate) enum Found for Indexes {
        Sound = Pass "indexes.sound"
            "The index exists, valid, ready and live, with the method, keys and options the scenario gives."
            "Nothing.",
        Missing = Fail "indexes.missing"
            "An index the scenario names does not exist."
            "Check the index's name (the hint names a close one), or why the restore did not build it.",
        Differs = Fail "indexes.differs"
            "The index exists but is not sound (invalid, not ready, not live) or differs from what the scenario gives (method, keys, uniqueness...)."
            "`REINDEX` an unsound index; compare a different one with the source.",
        AsInBaseline = Pass "indexes.as-in-baseline"
            "Every index of the baseline is present, sound and the same part by part."
            "Nothing.",
        BaselineDiffers = Fail "indexes.baseline-differs"
            "An index of the baseline is missing, unsound or different (its table, method, keys, predicate, options)."
            "Read each difference in the message and compare with the source.",
        CouldNotRead = Error "indexes.could-not-read"
            "The indexes or tables could not be listed."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Indexes;

/// The result that compares every index of the baseline.
const EVERY: &str = "every index in the baseline";
const EVIDENCE: &str = "SELECT ... FROM pg_index JOIN pg_class JOIN pg_am (name, table, method, indisunique, indisvalid, indisready, indislive, pg_get_indexdef, each key's pg_get_indexdef, operator class, collation and order, indpred by pg_get_expr, indnullsnotdistinct, indisprimary, indisexclusion, indimmediate, reloptions) for every user index";

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
pub(crate) struct ExpectedIndex {
    /// `index` or `schema.index`.
    pub name: String,
    /// The table it must be on (`schema.table`; default: not checked).
    pub table: Option<String>,
    /// Its access method (`btree`, `gin`, `gist`, `hnsw`, `ivfflat`, ...; default: any).
    pub method: Option<String>,
    /// An operator class one of its keys must use (`vector_cosine_ops`; default: not checked).
    pub opclass: Option<String>,
    /// `true`: it must be unique, `false`: it must not be (default: either).
    pub unique: Option<bool>,
    /// Its key columns and expressions, in order (`["lower(email)"]`), as the server prints
    /// them (spacing, case and outer parentheses aside).
    pub keys: Option<Vec<String>>,
    /// A partial index's `WHERE` (`"deleted_at IS NULL"`); `""` for an index over every row.
    pub predicate: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub baseline: Option<Arc<Baseline>>,
    pub methods: Vec<String>,
    pub expect: Vec<Expected>,
    /// The scenario's `schemas` check compares with the baseline too: it fails on a missing
    /// table, so that table's indexes are named there, not failed again here.
    pub schemas_compares: bool,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let baseline = if config.baseline { Some(ctx.require_baseline(KIND)?) } else { None };
        let expect = config
            .expect
            .into_iter()
            .map(Expected::read)
            .collect::<Result<Vec<_>, _>>()
            .map_err(FieldError::unplaced)?;
        if baseline.is_none() && expect.is_empty() {
            return Err(FieldError::unplaced("indexes needs `baseline = true` or `expect = [...]`"));
        }
        let methods = config.methods.iter().map(|m| m.to_ascii_lowercase()).collect();
        Ok(Spec { baseline, methods, expect, schemas_compares: false })
    }

    fn label(&self) -> String {
        let mut parts: Vec<String> = self.expect.iter().map(|e| e.name.to_string()).collect();
        if self.baseline.is_some() {
            parts.push("the baseline's indexes".into());
        }
        parts.join(", ")
    }

    fn objects(&self) -> Vec<String> {
        let mut objects: Vec<String> = self.expect.iter().map(|e| e.name.to_string()).collect();
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
            self.expect.iter().map(|expected| expected_index(expected, &actual, started)).collect();
        if let Some(baseline) = &self.baseline {
            let tables = match capture::relations(ctx.pool).await {
                Ok(t) => t,
                Err(err) => {
                    results.push(
                        CheckResult::build(KIND, EVERY, started)
                            .found(Found::CouldNotRead, format!("could not list tables: {}", describe_sql_error(&err))),
                    );
                    return Ok(results);
                }
            };
            let wanted = reprinted(ctx.pool, &baseline.indexes, &actual).await;
            results.push(self.against_baseline(&wanted, &actual, &tables, started));
        }
        Ok(results)
    }
}

/// The baseline's indexes, each that reads otherwise than the restore's of its name and table
/// printed again by the restore's server ([`super::reprint`]): a definition printed by the
/// source's major and parsed by a newer one can print otherwise and be the same index.
async fn reprinted(pool: &sqlx::PgPool, baseline: &[IndexInfo], actual: &[IndexInfo]) -> Vec<IndexInfo> {
    let mut wanted = baseline.to_vec();
    for want in wanted.iter_mut() {
        let Some(have) = actual.iter().find(|i| i.name == want.name && i.table == want.table) else { continue };
        if parts::differences(want, have).is_empty() {
            continue;
        }
        if let Some(printed) = super::reprint::index(pool, &have.table, want).await {
            *want = printed;
        }
    }
    wanted
}

/// The baseline comparison's findings, before they are worded into one result.
#[derive(Debug, Default)]
struct Findings {
    /// Expected and sound in the baseline.
    expected: usize,
    missing: Vec<String>,
    /// Present but not valid, ready and live: why, each.
    unsound: Vec<String>,
    /// Present and sound, but not what the baseline has: what differs, each.
    changed: Vec<String>,
    /// In the restore, not in the baseline.
    extra: Vec<String>,
    /// Baseline entries that record no parts or readiness (captured before pgdrill recorded
    /// them): compared by their definitions.
    unrecorded: usize,
    /// Baseline entries that were not sound when captured (a failed concurrent build): a dump
    /// leaves them out, so they are not expected.
    unsound_in_baseline: Vec<String>,
    /// Tables of indexes that are missing, when the `schemas` check names those tables.
    tables_elsewhere: std::collections::BTreeSet<QualifiedName>,
    orphaned: usize,
}

impl Spec {
    /// `tables`: the relations that exist. An index whose table is gone is missing too (a
    /// baseline entry whose object is gone is never left out of the comparison), unless the
    /// scenario's `schemas` check compares with the baseline: it fails on the table itself.
    fn against_baseline(
        &self,
        baseline: &[IndexInfo],
        actual: &[IndexInfo],
        tables: &[QualifiedName],
        started: Instant,
    ) -> CheckResult {
        let findings = self.compare(baseline, actual, tables);
        let scope = if self.methods.is_empty() { String::new() } else { format!(" {}", self.methods.join("/")) };
        let result = CheckResult::build(KIND, format!("every{scope} index in the baseline"), started)
            .expected(format!("{} valid, ready and live{scope} indexes as in the baseline", findings.expected))
            .evidence(EVIDENCE);
        let mut problems = Vec::new();
        if !findings.missing.is_empty() {
            problems.push(format!("missing: {}", findings.missing.join(", ")));
        }
        problems.extend(findings.unsound.iter().cloned());
        problems.extend(findings.changed.iter().cloned());
        let notes = findings.notes();
        if problems.is_empty() {
            result.actual(format!("{} present, sound and as in the baseline{notes}", findings.expected)).found(
                Found::AsInBaseline,
                format!(
                    "all {} baseline{scope} indexes are present, sound and as in the baseline{notes}",
                    findings.expected
                ),
            )
        } else {
            let text = problems.join("; ");
            result.actual(format!("{text}{notes}")).found(Found::BaselineDiffers, format!("{text}{notes}"))
        }
    }

    fn wanted(&self, index: &IndexInfo) -> bool {
        self.methods.is_empty() || self.methods.contains(&index.method)
    }

    fn compare(&self, baseline: &[IndexInfo], actual: &[IndexInfo], tables: &[QualifiedName]) -> Findings {
        let by_name: BTreeMap<&QualifiedName, &IndexInfo> = actual.iter().map(|i| (&i.name, i)).collect();
        let mut findings = Findings::default();
        for want in baseline.iter().filter(|i| self.wanted(i)) {
            if !want.healthy() {
                findings.unsound_in_baseline.push(want.name.to_string());
                continue;
            }
            if !tables.contains(&want.table) {
                findings.orphaned += 1;
                if self.schemas_compares {
                    findings.tables_elsewhere.insert(want.table.clone());
                } else {
                    findings.expected += 1;
                    findings
                        .missing
                        .push(format!("{} ({} on {}, a table that is missing)", want.name, want.method, want.table));
                }
                continue;
            }
            findings.expected += 1;
            if want.parts.is_none() {
                findings.unrecorded += 1;
            }
            let Some(have) = by_name.get(&want.name) else {
                findings.missing.push(format!("{} ({} on {})", want.name, want.method, want.table));
                continue;
            };
            if let Some(why) = have.unhealthy() {
                findings.unsound.push(format!("index `{}` is {why}", have.name));
            }
            let differs = parts::differences(want, have);
            if !differs.is_empty() {
                findings.changed.push(format!("index `{}` {}", have.name, differs.join(", ")));
            }
        }
        let known: Vec<&QualifiedName> = baseline.iter().map(|i| &i.name).collect();
        findings.extra = actual
            .iter()
            .filter(|i| self.wanted(i) && !known.contains(&&i.name))
            .map(|i| if i.healthy() { i.name.to_string() } else { format!("{} (not sound)", i.name) })
            .collect();
        findings
    }
}

impl Findings {
    /// What the result says beside its verdict: indexes not in the baseline, those the
    /// `schemas` check names, what the baseline did not record.
    fn notes(&self) -> String {
        let mut notes = String::new();
        if !self.extra.is_empty() {
            notes.push_str(&format!("; not in the baseline (reported, not failed): {}", self.extra.join(", ")));
        }
        if !self.tables_elsewhere.is_empty() {
            let tables: Vec<String> = self.tables_elsewhere.iter().map(ToString::to_string).collect();
            notes.push_str(&format!(
                "; {} indexes of missing tables ({}) are the schemas check's finding",
                self.orphaned,
                tables.join(", ")
            ));
        }
        if !self.unsound_in_baseline.is_empty() {
            notes.push_str(&format!(
                "; not expected, as they were not valid or ready when the baseline was captured (a dump leaves such an index out): {}",
                self.unsound_in_baseline.join(", ")
            ));
        }
        if self.unrecorded > 0 {
            notes.push_str(&format!(
                "; {} of the baseline's indexes record no parts or readiness (captured before pgdrill recorded them): compared by their definitions",
                self.unrecorded
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::IndexParts;
    use crate::outcome::Verdict;

    pub(super) fn index(name: &str, method: &str, opclass: &str, valid: bool) -> IndexInfo {
        IndexInfo {
            name: QualifiedName::parse(name).unwrap(),
            table: QualifiedName::new("public", "engrams"),
            method: method.into(),
            opclasses: vec![opclass.into()],
            unique: false,
            valid,
            definition: format!("CREATE INDEX {name} ON public.engrams USING {method} (embedding {opclass})"),
            ready: Some(true),
            live: Some(true),
            parts: Some(IndexParts {
                keys: vec!["embedding".into()],
                opclasses: vec![format!("public.{opclass}")],
                collations: vec![String::new()],
                orders: vec![String::new()],
                include: vec![],
                predicate: None,
                nulls_not_distinct: false,
                primary: false,
                exclusion: false,
                immediate: true,
                options: vec![],
            }),
        }
    }

    #[test]
    fn against_the_baseline_missing_and_changed_fail_extras_are_reported_and_indexes_of_missing_tables_are_missing() {
        let baseline = Baseline {
            indexes: vec![
                index("public.a_idx", "btree", "int4_ops", true),
                index("public.b_idx", "gin", "jsonb_ops", true),
                IndexInfo {
                    table: QualifiedName::new("public", "gone"),
                    ..index("public.gone_idx", "btree", "int4_ops", true)
                },
            ],
            ..Baseline::empty_for_tests()
        };
        let spec = Spec { baseline: None, methods: vec![], expect: vec![], schemas_compares: false };
        let tables = vec![QualifiedName::new("public", "engrams")];
        let now = Instant::now();
        let same = [index("public.a_idx", "btree", "int4_ops", true), index("public.b_idx", "gin", "jsonb_ops", true)];
        let result = spec.against_baseline(&baseline.indexes, &same, &tables, now);
        assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
        assert!(
            result.message.contains("missing: public.gone_idx (btree on public.gone, a table that is missing)"),
            "{}",
            result.message
        );
        let kept = Baseline { indexes: baseline.indexes[..2].to_vec(), ..Baseline::empty_for_tests() };
        assert_eq!(spec.against_baseline(&kept.indexes, &same, &tables, now).verdict, Verdict::Pass);
        // With a schemas check on the baseline, the missing table is its finding.
        let with_schemas = Spec { schemas_compares: true, ..spec.clone() };
        let result = with_schemas.against_baseline(&baseline.indexes, &same, &tables, now);
        assert_eq!(result.verdict, Verdict::Pass, "{result:?}");
        assert!(result.message.contains("1 indexes of missing tables (public.gone) are the schemas check's finding"));
        let mut drifted =
            vec![index("public.a_idx", "btree", "int8_ops", true), index("public.extra_idx", "btree", "x", true)];
        drifted[0].opclasses = vec!["int8_ops".into()];
        if let Some(p) = drifted[0].parts.as_mut() {
            p.keys = vec!["id".into()];
        }
        let result = spec.against_baseline(&baseline.indexes, &drifted, &tables, now);
        assert_eq!(result.verdict, Verdict::Fail);
        assert!(result.message.contains("missing: public.b_idx (gin on public.engrams)"), "{}", result.message);
        assert!(
            result.message.contains("index `public.a_idx` covers (id) where the baseline has (embedding)"),
            "{}",
            result.message
        );
        assert!(result.message.contains("not in the baseline (reported, not failed): public.extra_idx"));
    }

    #[test]
    fn against_the_baseline_an_unsound_index_fails_and_one_unsound_when_captured_is_not_expected() {
        let baseline = Baseline {
            indexes: vec![
                IndexInfo { unique: true, ..index("public.a_idx", "btree", "int4_ops", true) },
                IndexInfo { ready: Some(false), ..index("public.building_idx", "btree", "int4_ops", true) },
            ],
            ..Baseline::empty_for_tests()
        };
        let spec = Spec { baseline: None, methods: vec![], expect: vec![], schemas_compares: false };
        let tables = vec![QualifiedName::new("public", "engrams")];
        let now = Instant::now();
        let lying =
            [IndexInfo { ready: Some(false), unique: true, ..index("public.a_idx", "btree", "int4_ops", true) }];
        let result = spec.against_baseline(&baseline.indexes, &lying, &tables, now);
        assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
        assert!(
            result.message.contains("index `public.a_idx` is not ready (pg_index.indisready = false): it is not maintained, so rows written since are missing from it and uniqueness is not enforced"),
            "{}",
            result.message
        );
        assert!(result.message.contains("not expected, as they were not valid or ready when the baseline was captured (a dump leaves such an index out): public.building_idx"), "{}", result.message);
        let honest = [IndexInfo { unique: true, ..index("public.a_idx", "btree", "int4_ops", true) }];
        assert_eq!(spec.against_baseline(&baseline.indexes, &honest, &tables, now).verdict, Verdict::Pass);
    }

    #[test]
    fn an_older_baseline_is_compared_by_definition_and_the_result_says_so() {
        let old = |i: IndexInfo| IndexInfo { ready: None, live: None, parts: None, ..i };
        let baseline = Baseline {
            indexes: vec![old(index("public.a_idx", "btree", "int4_ops", true))],
            ..Baseline::empty_for_tests()
        };
        let spec = Spec { baseline: None, methods: vec![], expect: vec![], schemas_compares: false };
        let tables = vec![QualifiedName::new("public", "engrams")];
        let now = Instant::now();
        let result =
            spec.against_baseline(&baseline.indexes, &[index("public.a_idx", "btree", "int4_ops", true)], &tables, now);
        assert_eq!(result.verdict, Verdict::Pass, "{result:?}");
        assert!(result.message.contains("1 of the baseline's indexes record no parts or readiness (captured before pgdrill recorded them): compared by their definitions"), "{}", result.message);
        let mut changed = index("public.a_idx", "btree", "int4_ops", true);
        changed.definition = "CREATE INDEX a_idx ON public.engrams USING btree (lower(embedding))".into();
        let result = spec.against_baseline(&baseline.indexes, &[changed], &tables, now);
        assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
        assert!(result.message.contains("index `public.a_idx` is `CREATE INDEX a_idx ON public.engrams USING btree (lower(embedding))` where the baseline has"), "{}", result.message);
    }
}
