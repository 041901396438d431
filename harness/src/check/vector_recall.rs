//! `vector_recall`: the vector indexes answer with the right neighbours. For each HNSW or
//! IVFFlat index (pgvector), pgdrill takes stored vectors as queries, runs a k-nearest-neighbour
//! search through the index (with the application's `ef_search` or `probes`) and as an exact
//! scan, and requires the mean recall@k to reach a threshold. An index that exists but answers
//! wrongly fails: one too coarse for its data (IVFFlat lists against too few probes), one the
//! application's distance cannot use (built with another operator class), one left invalid.
//!
//! ```toml
//! [[checks.vector_recall]]
//! # indexes = ["public.engrams_embedding_hnsw"]   # default: every hnsw and ivfflat index
//! # distance = "cosine"    # what the application queries by: l2, cosine, inner_product, l1,
//! #                        # hamming, jaccard (default: the index's own operator class)
//! # k = 10                 # neighbours per query
//! # samples = 20           # stored vectors used as queries
//! # min_recall = 0.9      # the mean recall@k over the queries must reach this ...
//! # min_worst = 0.5       # ... and, when set, every single query's (a mean hides one bad answer)
//! # ef_search = 40         # hnsw.ef_search for the searches through the index
//! # probes = 1             # ivfflat.probes
//! # require_vectors = true # an index over no vectors yet fails (default: it passes, said so)
//! ```
//!
//! An index whose table holds no vectors yet (a young deployment's) answers nothing wrong: it
//! passes, and its result says it was empty, unless the scenario requires vectors there.

use std::time::Instant;

use serde::Deserialize;
use sqlx::{Connection, Executor, PgConnection, Row};

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::field::FieldError;
use crate::names;
use crate::outcome::CheckKind;
use crate::pg::{QualifiedName, describe_sql_error, quote_ident};

crate::outcome::findings! {
    /// What `vector_recall` finds.
    pub(crate) enum Found for VectorRecall {
        RecallMet = Pass "vector-recall.recall-met"
            "The index returns the nearest neighbours an exact search finds, at or above the recall asked."
            "Nothing.",
        Empty = Pass "vector-recall.empty"
            "The table holds no vectors yet: an empty index answers nothing wrong."
            "Set `require_vectors = true` if the table must hold vectors.",
        LowRecall = Fail "vector-recall.low-recall"
            "The index's mean (or worst) recall is below the threshold: the application's similarity search answers wrongly."
            "Raise `ef_search` or `probes`, or rebuild the index (`REINDEX`).",
        IndexNotUsed = Fail "vector-recall.index-not-used"
            "A k-nearest-neighbour query does not use the index, so its recall proves nothing about it."
            "Read the plan in the message: the operator, its distance, or the planner's settings.",
        InvalidIndex = Fail "vector-recall.invalid-index"
            "The index is invalid (its build failed or was interrupted): no query uses it."
            "`REINDEX` it.",
        NoIndex = Fail "vector-recall.no-index"
            "The index named (or any hnsw or ivfflat index) is not in the database."
            "Check the index's name, or why the restore did not build it.",
        NoVectors = Fail "vector-recall.no-vectors"
            "With `require_vectors`, the table holds no non-null vector to query with."
            "Check why the restored table holds no vectors.",
        UnknownOperatorClass = Error "vector-recall.unknown-operator-class"
            "The index's operator class is not one pgdrill knows, so it cannot tell its distance."
            "Name the `distance` in the scenario.",
        CouldNotSearch = Error "vector-recall.could-not-search"
            "The searches through the index, or the exact ones, failed."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::VectorRecall;

/// The distances pgvector knows: name, operator, operator-class suffix.
const DISTANCES: [(&str, &str, &str); 6] = [
    ("l2", "<->", "_l2_ops"),
    ("inner_product", "<#>", "_ip_ops"),
    ("cosine", "<=>", "_cosine_ops"),
    ("l1", "<+>", "_l1_ops"),
    ("hamming", "<~>", "_hamming_ops"),
    ("jaccard", "<%>", "_jaccard_ops"),
];

const INDEXES_SQL: &str = "SELECT n.nspname::text AS schema, ic.relname::text AS index_name, \
     quote_ident(ic.relname) AS index_ident, c.relname::text AS table_name, \
     am.amname AS method, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type, \
     opc.opcname AS opclass, opcn.nspname::text AS opclass_schema, i.indisvalid AS valid, \
     pg_get_expr(i.indpred, i.indrelid) AS predicate \
     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
     JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
     JOIN pg_opclass opc ON opc.oid = i.indclass[0] JOIN pg_namespace opcn ON opcn.oid = opc.opcnamespace \
     WHERE am.amname IN ('hnsw', 'ivfflat') ORDER BY format('%I.%I', n.nspname, ic.relname)";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "VectorRecallCheck")]
pub(crate) struct Config {
    /// The HNSW or IVFFlat indexes to measure (`schema.index`); default: every one in the
    /// database.
    #[serde(default)]
    pub indexes: Vec<String>,
    /// The distance the application queries by: `l2`, `cosine`, `inner_product`, `l1`,
    /// `hamming` or `jaccard` (default: the one the index's operator class serves).
    pub distance: Option<String>,
    /// Neighbours per query, the k of recall@k (1 to 1000, default 10).
    pub k: Option<u32>,
    /// How many stored vectors are taken as queries (1 to 1000, default 20).
    pub samples: Option<u32>,
    /// The mean recall@k over the queries must reach this, from 0 to 1 (default 0.9).
    pub min_recall: Option<f64>,
    /// Every single query's recall@k must reach this too, from 0 to `min_recall` (default: not
    /// checked).
    pub min_worst: Option<f64>,
    /// `hnsw.ef_search` for the searches through an HNSW index (default: pgvector's, 40).
    pub ef_search: Option<u32>,
    /// `ivfflat.probes` for the searches through an IVFFlat index (default: pgvector's, 1).
    pub probes: Option<u32>,
    /// Whether an index over no stored vectors fails (default: false; it passes as empty, as a
    /// young deployment's index answers nothing wrong).
    #[serde(default)]
    pub require_vectors: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub indexes: Vec<QualifiedName>,
    /// The distance's name and operator, when the scenario says which the application uses.
    pub distance: Option<(&'static str, &'static str)>,
    pub k: u32,
    pub samples: u32,
    pub min_recall: f64,
    /// The least recall any single query may have, when the scenario sets one.
    pub min_worst: Option<f64>,
    pub ef_search: Option<u32>,
    pub probes: Option<u32>,
    pub require_vectors: bool,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let indexes = config
            .indexes
            .iter()
            .map(|i| QualifiedName::parse(i))
            .collect::<Result<_, _>>()
            .map_err(FieldError::unplaced)?;
        let distance = match &config.distance {
            Some(name) => Some(DISTANCES.iter().find(|d| d.0 == name).map(|d| (d.0, d.1)).ok_or_else(|| {
                let known: Vec<&str> = DISTANCES.iter().map(|d| d.0).collect();
                FieldError::unplaced(format!("unknown distance `{name}`, expected one of {}", known.join(", ")))
            })?),
            None => None,
        };
        let min_recall = config.min_recall.unwrap_or(0.9);
        if !(0.0..=1.0).contains(&min_recall) || !config.min_worst.is_none_or(|w| (0.0..=min_recall).contains(&w)) {
            return Err(FieldError::unplaced(
                "`min_recall` must be between 0 and 1, and `min_worst` between 0 and `min_recall`",
            ));
        }
        let (k, samples) = (config.k.unwrap_or(10), config.samples.unwrap_or(20));
        if !(1..=1000).contains(&k) || !(1..=1000).contains(&samples) {
            return Err(FieldError::unplaced("`k` and `samples` must be between 1 and 1000"));
        }
        let (ef_search, probes, min_worst) = (config.ef_search, config.probes, config.min_worst);
        let require_vectors = config.require_vectors;
        Ok(Spec { indexes, distance, k, samples, min_recall, min_worst, ef_search, probes, require_vectors })
    }

    fn label(&self) -> String {
        if self.indexes.is_empty() {
            "every vector index".into()
        } else {
            self.indexes.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        }
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let rows = sqlx::query(INDEXES_SQL)
            .fetch_all(ctx.pool)
            .await
            .or_check("could not list vector indexes")
            .map_err(|e| e.evidence(INDEXES_SQL))?;
        let found: Vec<VectorIndex> = rows.iter().map(VectorIndex::from_row).collect();
        let mut results = Vec::new();
        let chosen: Vec<&VectorIndex> = if self.indexes.is_empty() {
            if found.is_empty() {
                let result = CheckResult::build(KIND, self.label(), started).evidence(INDEXES_SQL);
                return Ok(vec![
                    result.actual("none").found(Found::NoIndex, "the database has no hnsw or ivfflat index"),
                ]);
            }
            found.iter().collect()
        } else {
            let mut chosen = Vec::new();
            let indexes: Vec<QualifiedName> = found.iter().map(|i| i.index.clone()).collect();
            for name in &self.indexes {
                match indexes.iter().position(|have| names::matches(name, have)) {
                    Some(at) => chosen.push(&found[at]),
                    None => {
                        let hint = match names::closest(name, &indexes) {
                            Some(meant) => format!(" (hint: did you mean `{meant}`?)"),
                            None => String::new(),
                        };
                        results.push(
                            CheckResult::build(KIND, name.to_string(), started)
                                .evidence(INDEXES_SQL)
                                .expected(format!(
                                    "an hnsw or ivfflat index, mean recall@{} >= {:.2}",
                                    self.k, self.min_recall
                                ))
                                .actual("missing")
                                .found(
                                    Found::NoIndex,
                                    format!("`{name}` is not an hnsw or ivfflat index of the database{hint}"),
                                ),
                        )
                    }
                }
            }
            chosen
        };
        for index in chosen {
            results.push(self.measure(ctx, index).await);
        }
        Ok(results)
    }
}

/// A pgvector index, as the catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct VectorIndex {
    pub index: QualifiedName,
    /// Its own name as EXPLAIN prints it (quoted where needed).
    pub index_ident: String,
    pub table: QualifiedName,
    pub method: String,
    pub column: String,
    pub column_type: String,
    pub opclass: String,
    /// The schema of the operator class, and so of pgvector's operators: pgdrill's sessions
    /// resolve names in `pg_catalog` only, so the operator is written `OPERATOR(schema.<=>)`.
    pub opclass_schema: String,
    pub valid: bool,
    pub predicate: Option<String>,
}

impl VectorIndex {
    fn from_row(row: &sqlx::postgres::PgRow) -> Self {
        let schema: String = row.get("schema");
        VectorIndex {
            index: QualifiedName::new(&schema, row.get::<String, _>("index_name")),
            index_ident: row.get("index_ident"),
            table: QualifiedName::new(schema, row.get::<String, _>("table_name")),
            method: row.get("method"),
            column: row.get("column_name"),
            column_type: row.get("column_type"),
            opclass: row.get("opclass"),
            opclass_schema: row.get("opclass_schema"),
            valid: row.get("valid"),
            predicate: row.get("predicate"),
        }
    }

    /// The distance its operator class serves: (name, operator).
    fn distance(&self) -> Option<(&'static str, &'static str)> {
        DISTANCES.iter().find(|d| self.opclass.ends_with(d.2)).map(|d| (d.0, d.1))
    }
}

/// One query's neighbours: (row, distance), nearest first.
type Neighbours = Vec<(String, f64)>;

impl Spec {
    async fn measure(&self, ctx: &CheckContext<'_>, index: &VectorIndex) -> CheckResult {
        let started = Instant::now();
        let own = index.distance();
        let Some((distance, operator)) = self.distance.or(own) else {
            return CheckResult::build(KIND, index.index.to_string(), started).found(
                Found::UnknownOperatorClass,
                format!("operator class `{}` of `{}` is not one pgdrill knows", index.opclass, index.index),
            );
        };
        let settings = match index.method.as_str() {
            "hnsw" => {
                format!("hnsw.ef_search {}", self.ef_search.map(|e| e.to_string()).unwrap_or("40 (default)".into()))
            }
            _ => format!("ivfflat.probes {}", self.probes.map(|p| p.to_string()).unwrap_or("1 (default)".into())),
        };
        let search = Search::new(index, operator, self.k);
        let worst = self.min_worst.map(|w| format!(", each query >= {w:.2}")).unwrap_or_default();
        let result = CheckResult::build(KIND, index.index.to_string(), started)
            .expected(format!(
                "mean recall@{} >= {:.2}{worst} by {distance} distance over {} stored vectors ({settings})",
                self.k, self.min_recall, self.samples
            ))
            .evidence(format!("through the index: {}; exact: the same with index scans off", search.sql));
        if !index.valid {
            return result.actual("invalid index").found(
                Found::InvalidIndex,
                format!(
                    "`{}` is invalid (indisvalid = false: its build failed or was interrupted): no query uses it",
                    index.index
                ),
            );
        }
        let measured = async {
            let mut conn = PgConnection::connect_with(&ctx.target.connect_options(ctx.database)).await?;
            let samples = search.samples(&mut conn, self.samples).await?;
            let plan = search.plan_through_index(&mut conn, self, samples.first()).await?;
            let mut recalls = Vec::new();
            // `Index Scan using <index> on <table>`: the name whole, not a prefix of another's.
            let uses = format!("using {} on ", index.index_ident);
            if plan.contains(&uses) {
                for sample in &samples {
                    let through = search.run(&mut conn, self, sample, true).await?;
                    let exact = search.run(&mut conn, self, sample, false).await?;
                    recalls.push(recall(&through, &exact, self.k as usize));
                }
            }
            conn.close().await.ok();
            Ok::<_, sqlx::Error>((samples.len(), plan, recalls))
        };
        match measured.await {
            Err(e) => result.found(Found::CouldNotSearch, format!("could not search `{}`: {}", index.index, describe_sql_error(&e))),
            Ok((0, _, _)) if self.require_vectors => result
                .actual("no stored vectors")
                .found(Found::NoVectors, format!("`{}` has no non-null vectors to query with", index.table)),
            Ok((0, _, _)) => result.actual("no stored vectors: empty").found(
                Found::Empty,
                format!(
                    "`{}` holds no vectors yet: an empty index answers nothing wrong (`require_vectors = true` fails it)",
                    index.table
                ),
            ),
            Ok((_, plan, recalls)) if recalls.is_empty() => {
                let why = match own {
                    Some((own_name, _)) if own_name != distance => format!(
                        ": it is built with `{}` for {own_name} distance, and the application queries by {distance}",
                        index.opclass
                    ),
                    _ => String::new(),
                };
                result.actual(format!("not used: {}", plan.lines().next().unwrap_or_default().trim())).found(
                    Found::IndexNotUsed,
                    format!("a k-nearest-neighbour query by {distance} distance does not use `{}`{why}", index.index),
                )
            }
            Ok((_, _, recalls)) => self.judge(result, &recalls, &index.index.to_string()),
        }
    }
}

/// The searches of one index.
struct Search<'a> {
    index: &'a VectorIndex,
    /// `SELECT ctid, distance ... ORDER BY distance LIMIT k`, with the query vector as $1.
    sql: String,
}

impl<'a> Search<'a> {
    fn new(index: &'a VectorIndex, operator: &str, k: u32) -> Self {
        let table = index.table.sql();
        let column = quote_ident(&index.column);
        let filter = index.predicate.as_ref().map(|p| format!(" WHERE {p}")).unwrap_or_default();
        let operator = format!("OPERATOR({}.{operator})", quote_ident(&index.opclass_schema));
        let sql = format!(
            "SELECT ctid::text, ({column} {operator} $1::{ty})::float8 FROM {table}{filter} ORDER BY {column} {operator} $1::{ty} LIMIT {k}",
            ty = index.column_type
        );
        Search { index, sql }
    }

    /// Stored vectors, spread over the table in a fixed order.
    async fn samples(&self, conn: &mut PgConnection, n: u32) -> sqlx::Result<Vec<String>> {
        let table = self.index.table.sql();
        let column = quote_ident(&self.index.column);
        let sql =
            format!("SELECT {column}::text FROM {table} WHERE {column} IS NOT NULL ORDER BY md5(ctid::text) LIMIT {n}");
        sqlx::query_scalar(&sql).fetch_all(conn).await
    }

    /// The settings of a search: through the index (sequential scans off, the scenario's
    /// ef_search and probes), or exact (index scans off).
    fn settings(spec: &Spec, through_index: bool) -> String {
        // pgvector's settings start from their defaults, not from what the backup set for its
        // database or roles (an `ivfflat.probes` as high as the lists would search exactly).
        let mut sql = String::from(
            "BEGIN; SELECT pg_catalog.set_config(name, boot_val, true) FROM pg_catalog.pg_settings \
             WHERE name LIKE 'hnsw.%' OR name LIKE 'ivfflat.%'; ",
        );
        if through_index {
            sql.push_str("SET LOCAL enable_seqscan = off; ");
            if let Some(ef) = spec.ef_search {
                sql.push_str(&format!("SET LOCAL hnsw.ef_search = {ef}; "));
            }
            if let Some(probes) = spec.probes {
                sql.push_str(&format!("SET LOCAL ivfflat.probes = {probes}; "));
            }
        } else {
            sql.push_str("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; ");
        }
        sql
    }

    async fn plan_through_index(
        &self,
        conn: &mut PgConnection,
        spec: &Spec,
        sample: Option<&String>,
    ) -> sqlx::Result<String> {
        let Some(sample) = sample else { return Ok(String::new()) };
        conn.execute(sqlx::raw_sql(&Search::settings(spec, true))).await?;
        let plan: sqlx::Result<Vec<String>> =
            sqlx::query_scalar(&format!("EXPLAIN {}", self.sql)).bind(sample).fetch_all(&mut *conn).await;
        conn.execute("ROLLBACK").await?;
        Ok(plan?.join("\n"))
    }

    async fn run(
        &self,
        conn: &mut PgConnection,
        spec: &Spec,
        sample: &str,
        through_index: bool,
    ) -> sqlx::Result<Neighbours> {
        conn.execute(sqlx::raw_sql(&Search::settings(spec, through_index))).await?;
        let rows: sqlx::Result<Vec<(String, f64)>> = sqlx::query_as(&self.sql).bind(sample).fetch_all(&mut *conn).await;
        conn.execute("ROLLBACK").await?;
        rows
    }
}

/// The share of the exact k nearest that the search found; a row at the same distance as the
/// exact k-th counts (ties may be broken either way).
pub(crate) fn recall(found: &Neighbours, exact: &Neighbours, k: usize) -> f64 {
    let want = exact.len().min(k);
    if want == 0 {
        return 1.0;
    }
    let kth = exact[want - 1].1;
    let tolerance = 1e-9 * kth.abs().max(1.0);
    let hits =
        found.iter().take(k).filter(|(row, d)| exact.iter().any(|(r, _)| r == row) || *d <= kth + tolerance).count();
    hits.min(want) as f64 / want as f64
}

impl Spec {
    /// The mean recall against `min_recall`, then the worst query's against `min_worst`.
    fn judge(&self, result: super::CheckResultBuilder, recalls: &[f64], index: &str) -> CheckResult {
        let k = self.k;
        let mean = recalls.iter().sum::<f64>() / recalls.len() as f64;
        let worst = recalls.iter().copied().fold(1.0, f64::min);
        let result =
            result.actual(format!("mean recall@{k} {mean:.2}, worst {worst:.2}, over {} queries", recalls.len()));
        let returns = format!("`{index}` returns {:.0}% of the exact nearest neighbours", mean * 100.0);
        let advice =
            "the application's similarity search answers wrongly (raise ef_search or probes, or rebuild the index)";
        if mean < self.min_recall {
            return result
                .found(Found::LowRecall, format!("{returns}, below {:.0}%: {advice}", self.min_recall * 100.0));
        }
        match self.min_worst {
            Some(least) if worst < least => result.found(
                Found::LowRecall,
                format!(
                    "{returns}, but its worst query found {:.0}% of them, below {:.0}%: {advice}",
                    worst * 100.0,
                    least * 100.0
                ),
            ),
            _ => result.found(Found::RecallMet, returns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(rows: &[(&str, f64)]) -> Neighbours {
        rows.iter().map(|(r, d)| (r.to_string(), *d)).collect()
    }

    #[test]
    fn recall_counts_the_exact_neighbours_found_and_ties() {
        let exact = n(&[("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.3)]);
        assert_eq!(recall(&n(&[("a", 0.1), ("b", 0.2), ("c", 0.3)]), &exact, 3), 1.0);
        assert_eq!(
            recall(&n(&[("a", 0.1), ("b", 0.2), ("d", 0.3)]), &exact, 3),
            1.0,
            "a tie at the k-th distance counts"
        );
        assert!((recall(&n(&[("a", 0.1), ("x", 0.9), ("y", 0.95)]), &exact, 3) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(recall(&n(&[]), &n(&[]), 3), 1.0);
    }

    #[test]
    fn the_mean_recall_is_judged_against_the_threshold() {
        let build = || CheckResult::build(KIND, "public.items_embedding_idx", Instant::now());
        let spec = Spec {
            indexes: vec![],
            distance: None,
            k: 10,
            samples: 20,
            min_recall: 0.9,
            min_worst: None,
            ef_search: None,
            probes: None,
            require_vectors: false,
        };
        let good = spec.judge(build(), &[1.0, 0.9, 1.0], "public.items_embedding_idx");
        assert_eq!(good.code, "vector-recall.recall-met", "{good:?}");
        let bad = spec.judge(build(), &[0.3, 0.2, 0.4], "public.items_embedding_idx");
        assert_eq!(bad.code, "vector-recall.low-recall");
        assert!(bad.actual.starts_with("mean recall@10 0.30, worst 0.20"), "{}", bad.actual);
        assert!(bad.message.contains("30% of the exact nearest neighbours, below 90%"), "{}", bad.message);
        // A good mean with one bad query passes, unless the worst query is held to a floor.
        let one_bad = [1.0; 19].into_iter().chain([0.6]).collect::<Vec<_>>();
        assert_eq!(spec.judge(build(), &one_bad, "i").code, "vector-recall.recall-met");
        let strict = Spec { min_worst: Some(0.8), ..spec.clone() };
        let result = strict.judge(build(), &one_bad, "i");
        assert_eq!(result.code, "vector-recall.low-recall");
        assert!(
            result
                .message
                .contains("98% of the exact nearest neighbours, but its worst query found 60% of them, below 80%"),
            "{}",
            result.message
        );
    }

    #[test]
    fn the_distance_comes_from_the_operator_class() {
        let index = |opclass: &str| VectorIndex {
            index: QualifiedName::new("public", "i"),
            index_ident: "i".into(),
            table: QualifiedName::new("public", "t"),
            method: "hnsw".into(),
            column: "embedding".into(),
            column_type: "vector(3)".into(),
            opclass: opclass.into(),
            opclass_schema: "public".into(),
            valid: true,
            predicate: None,
        };
        assert_eq!(index("vector_cosine_ops").distance(), Some(("cosine", "<=>")));
        assert_eq!(index("halfvec_l2_ops").distance(), Some(("l2", "<->")));
        assert_eq!(index("bit_hamming_ops").distance(), Some(("hamming", "<~>")));
        assert_eq!(index("custom_ops").distance(), None);
    }
}
