//! `graphs`: every Apache AGE graph answers Cypher after the restore, and holds as many
//! vertices and edges per label as it should. An AGE graph can restore without an error and
//! still be unusable (apache/age#2503: its catalog keeps the source's oids), so the counts are
//! taken with Cypher, never from the label tables.
//!
//! ```toml
//! [[checks.graphs]]
//! graph = "permission_graph"       # default: every graph the catalog lists
//! baseline = true                  # label counts as in the baseline
//! vertices = { User = 41 }         # per label: replaces the baseline's count of that label only
//! edges = { MEMBER_OF = 12 }
//! query = "MATCH (u:User)-[:MEMBER_OF]->(g:Group) RETURN count(*)"
//! expect = 12                      # what that query must return
//! ```
//!
//! `vertices`, `edges` and `query` are about one graph, so they need `graph`. The label counts
//! checked are the baseline's (with `baseline = true`) for the labels the scenario does not
//! count itself, and the scenario's for those it does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::baseline::{Baseline, GraphCounts, capture};
use crate::field::FieldError;
use crate::outcome::CheckKind;
use crate::pg::describe_sql_error;

crate::outcome::findings! {
    /// What `graphs` finds.
    pub(crate) enum Found for Graphs {
        Answers = Pass "graphs.answers"
            "The graph answers a Cypher query (with the count expected, where given)."
            "Nothing.",
        Missing = Fail "graphs.missing"
            "The graph (or any AGE graph) does not exist in the restored database."
            "Check the graph's name, and that the backup holds `ag_catalog`'s rows.",
        NoAnswer = Fail "graphs.no-answer"
            "The graph does not answer Cypher: an AGE graph can restore without error and still be broken (apache/age issue 2503)."
            "Read the error; restore the graph's label tables and their sequences as AGE expects.",
        WrongAnswer = Fail "graphs.wrong-answer"
            "The Cypher query answered another count than expected."
            "Compare the graph with the source's.",
        CountsMatch = Pass "graphs.counts-match"
            "The graph holds as many vertices and edges per label as the baseline."
            "Nothing.",
        CountsDiffer = Fail "graphs.counts-differ"
            "A label holds more or fewer vertices or edges than the baseline, or is missing."
            "Compare the labels named with the source's graph.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Graphs;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GraphsCheck")]
pub(crate) struct Config {
    /// The Apache AGE graph to check (default: every graph the catalog lists, and the
    /// baseline's).
    pub graph: Option<String>,
    /// Each graph must hold the baseline's number of vertices and edges per label.
    #[serde(default)]
    pub baseline: bool,
    /// Label to the number of vertices it must hold, counted with Cypher (needs `graph`); it
    /// replaces the baseline's count of that label.
    #[serde(default)]
    pub vertices: BTreeMap<String, i64>,
    /// Label to the number of edges it must hold, counted with Cypher (needs `graph`); it
    /// replaces the baseline's count of that label.
    #[serde(default)]
    pub edges: BTreeMap<String, i64>,
    /// A Cypher query that must answer (returning a count when `expect` is set).
    pub query: Option<String>,
    /// The count `query` must return.
    pub expect: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub graph: Option<String>,
    pub baseline: Option<Arc<Baseline>>,
    pub counts: GraphCounts,
    pub query: Option<String>,
    pub expect: Option<i64>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let baseline = if config.baseline { Some(ctx.require_baseline(KIND)?) } else { None };
        if config.expect.is_some() && config.query.is_none() {
            return Err(FieldError::unplaced("`expect` is the count `query` must return, and there is no `query`"));
        }
        if config.query.is_some() && config.graph.is_none() {
            return Err(FieldError::unplaced("a `query` needs the `graph` it runs on"));
        }
        if config.graph.is_none() && !(config.vertices.is_empty() && config.edges.is_empty()) {
            return Err(FieldError::unplaced(
                "`vertices` and `edges` count the labels of one graph: name it with `graph = \"...\"`",
            ));
        }
        Ok(Spec {
            graph: config.graph,
            baseline,
            counts: GraphCounts { vertices: config.vertices, edges: config.edges },
            query: config.query,
            expect: config.expect,
        })
    }

    fn label(&self) -> String {
        self.graph.clone().unwrap_or_else(|| "every graph".into())
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let mut conn = ctx.pool.acquire().await.or_check("could not connect")?.detach();
        let results = self.run_on(&mut conn, started).await;
        conn.close().await.ok();
        results
    }
}

impl Spec {
    async fn run_on(&self, conn: &mut PgConnection, started: Instant) -> Result<Vec<CheckResult>, CheckError> {
        capture::prepare_age(conn)
            .await
            .or_check("cannot load Apache AGE")
            .map_err(|e| e.expected("Apache AGE loads").evidence("LOAD 'age'"))?;
        let catalog = capture::graph_labels(conn)
            .await
            .or_check("cannot read AGE's catalog")
            .map_err(|e| e.evidence("SELECT ... FROM ag_catalog.ag_graph JOIN ag_catalog.ag_label"))?;
        let graphs: Vec<String> = match (&self.graph, &self.baseline) {
            (Some(g), _) => vec![g.clone()],
            (None, Some(b)) => b
                .graphs
                .keys()
                .chain(catalog.keys())
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            (None, None) => catalog.keys().cloned().collect(),
        };
        if graphs.is_empty() {
            return Ok(vec![
                CheckResult::build(KIND, "every graph", started)
                    .expected("at least one graph")
                    .actual("no graph in ag_catalog.ag_graph")
                    .found(Found::Missing, "the database has no AGE graph"),
            ]);
        }
        let mut results = Vec::new();
        for graph in graphs {
            results.push(self.answers(conn, &graph, catalog.contains_key(&graph)).await);
            let baseline = self.baseline.as_ref().map(|b| b.graphs.get(&graph).cloned().unwrap_or_default());
            if let Some(expected) = expected_counts(baseline, &self.counts) {
                results.push(label_counts(conn, &graph, &expected).await);
            }
        }
        Ok(results)
    }

    /// The graph answers a Cypher query (and the scenario's query returns what it should).
    async fn answers(&self, conn: &mut PgConnection, graph: &str, in_catalog: bool) -> CheckResult {
        let started = Instant::now();
        let query = self.query.clone().unwrap_or_else(|| "MATCH (n) RETURN count(n)".into());
        let sql = capture::cypher_sql(graph, &query);
        let expected = match self.expect {
            Some(n) => format!("answers `{query}` with {n}"),
            None => format!("answers `{query}`"),
        };
        let result = CheckResult::build(KIND, format!("{graph} answers Cypher"), started)
            .expected(expected)
            .evidence(sql.clone());
        if !in_catalog {
            return result
                .actual("not in ag_catalog.ag_graph")
                .found(Found::Missing, format!("graph `{graph}` does not exist"));
        }
        match sqlx::query_scalar::<_, Option<String>>(&sql).fetch_all(&mut *conn).await {
            Err(err) => {
                let why = describe_sql_error(&err);
                result
                    .actual(format!("error: {why}"))
                    .found(Found::NoAnswer, format!("graph `{graph}` does not answer Cypher: {why}{}", age_hint(&why)))
            }
            Ok(rows) => {
                let first = rows.first().cloned().flatten().unwrap_or_default();
                match self.expect {
                    Some(n) if first.trim() != n.to_string() => result
                        .actual(first.clone())
                        .found(Found::WrongAnswer, format!("`{query}` on `{graph}` returned {first}, expected {n}")),
                    _ => result
                        .actual(format!(
                            "answered ({} row{}: {first})",
                            rows.len(),
                            if rows.len() == 1 { "" } else { "s" }
                        ))
                        .found(Found::Answers, format!("graph `{graph}` answers Cypher")),
                }
            }
        }
    }
}

/// What a Cypher error means when it is Apache AGE's known failure after a logical restore:
/// `ag_graph.graphid` and `ag_label.graph` hold the source cluster's schema oid as a bare number
/// (pg_dump cannot rewrite it), and AGE releases that look a graph up by it (1.8) find none.
fn age_hint(why: &str) -> &'static str {
    if why.contains("graph with oid") && why.contains("does not exist") {
        " (hint: Apache AGE keeps the source cluster's schema oid in ag_catalog.ag_graph.graphid and \
         ag_label.graph, which a dump carries as a bare number: this AGE finds the restored graph by \
         it, so the application's Cypher fails after this restore too (apache/age#2503); repoint \
         both at the restored schema's oid in the restore runbook, or restore with an AGE that \
         looks graphs up by name)"
    } else {
        ""
    }
}

/// The label counts a graph must hold: the baseline's (when the check compares with one), each
/// label the scenario counts itself replaced by the scenario's count; `None` when neither says.
pub(crate) fn expected_counts(baseline: Option<GraphCounts>, scenario: &GraphCounts) -> Option<GraphCounts> {
    if baseline.is_none() && scenario.vertices.is_empty() && scenario.edges.is_empty() {
        return None;
    }
    let mut counts = baseline.unwrap_or_default();
    counts.vertices.extend(scenario.vertices.iter().map(|(l, n)| (l.clone(), *n)));
    counts.edges.extend(scenario.edges.iter().map(|(l, n)| (l.clone(), *n)));
    Some(counts)
}

async fn label_counts(conn: &mut PgConnection, graph: &str, expected: &GraphCounts) -> CheckResult {
    let started = Instant::now();
    let total_v: i64 = expected.vertices.values().sum();
    let total_e: i64 = expected.edges.values().sum();
    let result = CheckResult::build(KIND, format!("{graph} label counts"), started)
        .expected(format!(
            "{total_v} vertices in {} labels, {total_e} edges in {} labels",
            expected.vertices.len(),
            expected.edges.len()
        ))
        .evidence(format!(
            "MATCH (v:<label>) RETURN count(v) / MATCH ()-[e:<label>]->() RETURN count(e) on `{graph}`, per label"
        ));
    let mut problems = Vec::new();
    let mut failed: std::collections::BTreeMap<String, Vec<&str>> = std::collections::BTreeMap::new();
    let (mut seen_v, mut seen_e) = (0, 0);
    for (label, want) in &expected.vertices {
        let cypher = format!("MATCH (v:{}) RETURN count(v)", capture::cypher_label(label));
        match capture::cypher_count(conn, graph, &cypher).await {
            Ok(n) => {
                seen_v += n;
                if n != *want {
                    problems.push(format!("{label}: {n} vertices (expected {want})"));
                }
            }
            Err(err) => failed.entry(describe_sql_error(&err)).or_default().push(label.as_str()),
        }
    }
    for (label, want) in &expected.edges {
        let cypher = format!("MATCH ()-[e:{}]->() RETURN count(e)", capture::cypher_label(label));
        match capture::cypher_count(conn, graph, &cypher).await {
            Ok(n) => {
                seen_e += n;
                if n != *want {
                    problems.push(format!("{label}: {n} edges (expected {want})"));
                }
            }
            Err(err) => failed.entry(describe_sql_error(&err)).or_default().push(label.as_str()),
        }
    }
    // Labels that failed alike are listed once; the message ends with what the error means.
    let hint = failed.keys().map(|why| age_hint(why)).find(|h| !h.is_empty()).unwrap_or_default();
    for (why, labels) in failed {
        problems.push(format!("{}: {why}", labels.join(", ")));
    }
    if problems.is_empty() {
        result
            .actual(format!("{seen_v} vertices, {seen_e} edges"))
            .found(Found::CountsMatch, format!("graph `{graph}` holds every vertex and edge it should"))
    } else {
        let text = problems.join("; ");
        result.actual(text.clone()).found(Found::CountsDiffer, format!("graph `{graph}`: {text}{hint}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(vertices: &[(&str, i64)], edges: &[(&str, i64)]) -> GraphCounts {
        let map = |list: &[(&str, i64)]| list.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect();
        GraphCounts { vertices: map(vertices), edges: map(edges) }
    }

    #[test]
    fn a_graph_looked_up_by_a_stale_oid_is_explained() {
        assert!(age_hint("graph with oid 18273 does not exist (42704)").contains("apache/age#2503"));
        assert_eq!(age_hint("label \"User\" does not exist"), "");
    }

    #[test]
    fn an_override_replaces_only_its_label() {
        let baseline = counts(&[("User", 40), ("Group", 3)], &[("MEMBER_OF", 12)]);
        let merged = expected_counts(Some(baseline), &counts(&[("User", 41)], &[])).unwrap();
        assert_eq!(merged, counts(&[("User", 41), ("Group", 3)], &[("MEMBER_OF", 12)]));
    }

    #[test]
    fn without_a_baseline_only_the_scenarios_counts() {
        assert_eq!(expected_counts(None, &GraphCounts::default()), None);
        let own = counts(&[], &[("MEMBER_OF", 2)]);
        assert_eq!(expected_counts(None, &own), Some(own.clone()));
        assert_eq!(
            expected_counts(Some(GraphCounts::default()), &GraphCounts::default()),
            Some(GraphCounts::default())
        );
    }

    #[test]
    fn counts_without_a_graph_are_a_scenario_error() {
        let ctx = ResolveContext { base: ".".into(), baseline: None };
        let config = Config {
            graph: None,
            baseline: false,
            vertices: [("User".to_owned(), 1)].into(),
            edges: BTreeMap::new(),
            query: None,
            expect: None,
        };
        assert!(Spec::resolve(config, &ctx).is_err());
    }
}
