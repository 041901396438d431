//! What a database holds, read from its catalogs: the facts a baseline records and the checks
//! compare. System schemas and objects that belong to extensions are left out (the extension
//! recreates those).

use std::collections::BTreeMap;

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Executor};
use time::OffsetDateTime;

use super::scope::{NOT_EXTENSION_MEMBER, USER_SCHEMA};
use super::{
    BASELINE_SCHEMA, Baseline, GraphCounts, IndexInfo, IndexParts, MigrationVersion, PolicyExpressions, PolicyInfo,
    RowSecurity, SchemaInventory,
};
use crate::pg::{QualifiedName, quote_literal};

/// Every user table (partitions included, partitioned parents not).
pub(crate) async fn tables(pool: &PgPool) -> sqlx::Result<Vec<QualifiedName>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} ORDER BY 1, 2"
    );
    let rows: Vec<(String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(s, t)| QualifiedName::new(s, t)).collect())
}

/// Every user relation that can carry an index (tables, partitioned tables, materialized
/// views).
pub(crate) async fn relations(pool: &PgPool) -> sqlx::Result<Vec<QualifiedName>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'm') AND {USER_SCHEMA} ORDER BY 1, 2"
    );
    let rows: Vec<(String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(s, t)| QualifiedName::new(s, t)).collect())
}

/// Exact row counts of every user table, each counted alone (`FROM ONLY`).
pub(crate) async fn row_counts(pool: &PgPool) -> sqlx::Result<BTreeMap<QualifiedName, i64>> {
    let mut counts = BTreeMap::new();
    for table in tables(pool).await? {
        let count: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM ONLY {}", table.sql())).fetch_one(pool).await?;
        counts.insert(table, count);
    }
    Ok(counts)
}

/// The `search_path` that definitions are printed with (index definitions, policy expressions):
/// PostgreSQL's default, so that they read as the source's own tools print them, whatever
/// pgdrill's sessions pin ([`crate::session`]); `pg_catalog` is still searched first.
pub(crate) const PRINTING_PATH: &str = "SET LOCAL search_path = \"$user\", public";

/// A transaction whose reads print definitions with [`PRINTING_PATH`]; rolled back when dropped.
pub(crate) async fn printing(pool: &PgPool) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query(PRINTING_PATH).execute(&mut *tx).await?;
    Ok(tx)
}

/// SQL: `x` (a pg_index row) key by key (`k`, 1 to `indnkeyatts`), as arrays in key order.
const INDEX_KEYS: &str = "ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, k, false) \
         FROM pg_catalog.generate_series(1, x.indnkeyatts::pg_catalog.int4) AS k ORDER BY k) AS keys, \
       ARRAY(SELECT pg_catalog.format('%I.%I', on_.nspname, o.opcname) \
         FROM pg_catalog.unnest(x.indclass::pg_catalog.oid[]) WITH ORDINALITY AS u(oid, ord) \
         JOIN pg_catalog.pg_opclass o ON o.oid OPERATOR(pg_catalog.=) u.oid \
         JOIN pg_catalog.pg_namespace on_ ON on_.oid OPERATOR(pg_catalog.=) o.opcnamespace ORDER BY u.ord) AS opclasses, \
       ARRAY(SELECT CASE WHEN co.oid IS NULL THEN '' ELSE pg_catalog.format('%I.%I', cn.nspname, co.collname) END \
         FROM pg_catalog.unnest(x.indcollation::pg_catalog.oid[]) WITH ORDINALITY AS u(oid, ord) \
         LEFT JOIN pg_catalog.pg_collation co ON co.oid OPERATOR(pg_catalog.=) u.oid \
         LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace ORDER BY u.ord) AS collations, \
       ARRAY(SELECT CASE WHEN pg_catalog.pg_index_column_has_property(x.indexrelid, k, 'desc') \
                     THEN CASE WHEN pg_catalog.pg_index_column_has_property(x.indexrelid, k, 'nulls_first') THEN 'DESC' ELSE 'DESC NULLS LAST' END \
                     WHEN pg_catalog.pg_index_column_has_property(x.indexrelid, k, 'nulls_first') THEN 'NULLS FIRST' ELSE '' END \
         FROM pg_catalog.generate_series(1, x.indnkeyatts::pg_catalog.int4) AS k ORDER BY k) AS orders, \
       ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, k, false) \
         FROM pg_catalog.generate_series(x.indnkeyatts::pg_catalog.int4 OPERATOR(pg_catalog.+) 1, x.indnatts::pg_catalog.int4) AS k ORDER BY k) AS include";

/// Every user index, with its parts and whether it is valid, ready and live.
pub(crate) async fn indexes(pool: &PgPool) -> sqlx::Result<Vec<IndexInfo>> {
    let mut tx = printing(pool).await?;
    let sql = index_sql(&mut tx, &format!("{USER_SCHEMA} AND {NOT_EXTENSION_MEMBER}")).await?;
    let rows = sqlx::query(&sql).fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    rows.iter().map(index_info).collect()
}

/// The query of [`indexes`], for the indexes `filter` (SQL over `x` pg_index, `i` the index,
/// `c` its table, `n` its schema) keeps; rows read by [`index_info`].
pub(crate) async fn index_sql(conn: &mut PgConnection, filter: &str) -> sqlx::Result<String> {
    // `indnullsnotdistinct` is PostgreSQL 15's.
    let nulls_not_distinct =
        if super::scope::server_version_num(&mut *conn).await? >= 150_000 { "x.indnullsnotdistinct" } else { "false" };
    Ok(format!(
        "SELECT n.nspname::text AS schema, c.relname::text AS table_name, i.relname::text AS index_name, am.amname::text AS method, \
                pg_catalog.pg_get_indexdef(i.oid) AS definition, x.indisunique AS is_unique, x.indisvalid AS valid, \
                x.indisready AS ready, x.indislive AS live, \
                ARRAY(SELECT o.opcname::text FROM pg_catalog.unnest(x.indclass::oid[]) WITH ORDINALITY AS u(oid, ord) \
                      JOIN pg_catalog.pg_opclass o ON o.oid = u.oid ORDER BY u.ord) AS opclass_names, \
                {INDEX_KEYS}, pg_catalog.pg_get_expr(x.indpred, x.indrelid) AS predicate, \
                {nulls_not_distinct} AS nulls_not_distinct, x.indisprimary AS is_primary, x.indisexclusion AS exclusion, \
                x.indimmediate AS immediate, COALESCE(i.reloptions, '{{}}')::text[] AS options \
         FROM pg_catalog.pg_index x \
         JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
         JOIN pg_catalog.pg_class c ON c.oid = x.indrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_am am ON am.oid = i.relam \
         WHERE {filter} ORDER BY 1, 3"
    ))
}

/// One row of [`index_sql`]'s query.
pub(crate) fn index_info(row: &sqlx::postgres::PgRow) -> sqlx::Result<IndexInfo> {
    use sqlx::Row;
    let schema: String = row.try_get("schema")?;
    let table: String = row.try_get("table_name")?;
    let index: String = row.try_get("index_name")?;
    let parts = IndexParts {
        keys: row.try_get("keys")?,
        opclasses: row.try_get("opclasses")?,
        collations: row.try_get("collations")?,
        orders: row.try_get("orders")?,
        include: row.try_get("include")?,
        predicate: row.try_get("predicate")?,
        nulls_not_distinct: row.try_get("nulls_not_distinct")?,
        primary: row.try_get("is_primary")?,
        exclusion: row.try_get("exclusion")?,
        immediate: row.try_get("immediate")?,
        options: row.try_get("options")?,
    };
    Ok(IndexInfo {
        name: QualifiedName::new(&schema, index),
        table: QualifiedName::new(schema, table),
        method: row.try_get("method")?,
        opclasses: row.try_get("opclass_names")?,
        unique: row.try_get("is_unique")?,
        valid: row.try_get("valid")?,
        definition: row.try_get("definition")?,
        ready: Some(row.try_get("ready")?),
        live: Some(row.try_get("live")?),
        parts: Some(parts),
    })
}

/// Tables with row-level security enabled or forced.
pub(crate) async fn row_security(pool: &PgPool) -> sqlx::Result<Vec<RowSecurity>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMA} AND (c.relrowsecurity OR c.relforcerowsecurity) ORDER BY 1, 2"
    );
    let rows: Vec<(String, String, bool, bool)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(s, t, enabled, forced)| RowSecurity { table: QualifiedName::new(s, t), enabled, forced })
        .collect())
}

/// The row security state of one table: (enabled, forced), `None` when it does not exist.
pub(crate) async fn table_row_security(pool: &PgPool, table: &QualifiedName) -> sqlx::Result<Option<(bool, bool)>> {
    sqlx::query_as(
        "SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(table.schema_or_public())
    .bind(&table.name)
    .fetch_optional(pool)
    .await
}

/// Every policy, with its expressions.
pub(crate) async fn policies(pool: &PgPool) -> sqlx::Result<Vec<PolicyInfo>> {
    type Row = (String, String, String, String, Vec<String>, String, Option<String>, Option<String>);
    let mut tx = printing(pool).await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT schemaname::text, tablename::text, policyname::text, cmd, roles::text[], permissive, qual, with_check \
         FROM pg_catalog.pg_policies ORDER BY 1, 2, 3",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.rollback().await?;
    Ok(rows
        .into_iter()
        .map(|(schema, table, policy, command, mut roles, permissive, using, with_check)| {
            roles.sort();
            PolicyInfo {
                table: QualifiedName::new(schema, table),
                name: policy,
                command,
                roles,
                permissive: permissive == "PERMISSIVE",
                expressions: Some(PolicyExpressions { using, with_check }),
            }
        })
        .collect())
}

/// Every user schema with its tables, enum types and sequences, and what makes each table and
/// sequence behave ([`super::behaviour`]). Partitions are left out: whether they cover what
/// they should is the `partitions` check's question.
pub(crate) async fn schemas(pool: &PgPool) -> sqlx::Result<BTreeMap<String, SchemaInventory>> {
    let schema_sql = format!(
        "SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE {USER_SCHEMA} AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
         WHERE d.classid = 'pg_catalog.pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e') ORDER BY 1"
    );
    let mut out: BTreeMap<String, SchemaInventory> = sqlx::query_scalar::<_, String>(&schema_sql)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|s| (s, SchemaInventory::default()))
        .collect();
    let relations_sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relkind::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} ORDER BY 1, 2"
    );
    for (schema, relation, kind) in
        sqlx::query_as::<_, (String, String, String)>(&relations_sql).fetch_all(pool).await?
    {
        let inventory = out.entry(schema).or_default();
        if kind == "S" {
            inventory.sequences.push(relation);
        } else {
            inventory.tables.push(relation);
        }
    }
    let enums_sql = format!(
        "SELECT n.nspname::text, t.typname::text, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) \
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid \
         WHERE {USER_SCHEMA} AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e') \
         GROUP BY 1, 2 ORDER BY 1, 2"
    );
    for (schema, typ, labels) in sqlx::query_as::<_, (String, String, Vec<String>)>(&enums_sql).fetch_all(pool).await? {
        out.entry(schema).or_default().enums.insert(typ, labels);
    }
    let (mut tables, mut sequences) = super::behaviour::read(pool).await?;
    for (schema, inventory) in out.iter_mut() {
        let mut take_table = |t: &String| tables.remove(&(schema.clone(), t.clone())).unwrap_or_default();
        inventory.table_facts = Some(inventory.tables.iter().map(|t| (t.clone(), take_table(t))).collect());
        let sequence_facts = inventory
            .sequences
            .iter()
            .filter_map(|s| Some((s.clone(), sequences.remove(&(schema.clone(), s.clone()))?)));
        inventory.sequence_facts = Some(sequence_facts.collect());
    }
    Ok(out)
}

/// A sequence that would hand out a value its column already holds, or none at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SequenceBehind {
    pub sequence: String,
    pub column: String,
    /// What its next `nextval` returns: past its last value, a cycling sequence starts again
    /// from its first.
    pub next_value: Next,
    /// The column's furthest value in the sequence's direction: its maximum for an ascending
    /// sequence, its minimum for a descending one.
    pub column_at: i64,
}

/// A sequence's next `nextval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// This value.
    Value(i64),
    /// An error: it is past this bound (its maximum, or its minimum when descending) and does
    /// not cycle.
    Exhausted(i64),
}

/// What `nextval` returns for a sequence at `last` (`called`: handed out already) stepping by
/// `increment` within `range`, cycling or not.
fn next_value(last: i64, called: bool, increment: i64, range: std::ops::RangeInclusive<i64>, cycle: bool) -> Next {
    let (min, max) = (*range.start(), *range.end());
    if !called {
        return Next::Value(last);
    }
    match last.checked_add(increment) {
        Some(next) if (min..=max).contains(&next) => Next::Value(next),
        _ if cycle => Next::Value(if increment > 0 { min } else { max }),
        _ => Next::Exhausted(if increment > 0 { max } else { min }),
    }
}

/// Whether a sequence about to hand out `next` (stepping by `increment`) is not past the
/// values its column already holds (`min..=max`), and if so the value it would have to pass.
/// A descending sequence must be below the column's minimum, an ascending one above its
/// maximum.
fn collides(next: i64, increment: i64, min: i64, max: i64) -> Option<i64> {
    if increment > 0 { (next <= max).then_some(max) } else { (next >= min).then_some(min) }
}

/// Sequences owned by a column, or used by a column's default, whose next value is not past the
/// values the column holds (above its maximum, or below its minimum for a descending sequence),
/// following the sequence's own bounds: past its last value a cycling sequence starts again
/// (and collides), one that does not cycle fails. Only integer columns: others (AGE's graphid)
/// encode more than a counter.
pub(crate) async fn sequences_behind(pool: &PgPool) -> sqlx::Result<Vec<SequenceBehind>> {
    let sql = format!(
        "SELECT DISTINCT sn.nspname::text, s.relname::text, tn.nspname::text, t.relname::text, a.attname::text \
         FROM pg_catalog.pg_class s JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace \
         JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i') \
         JOIN pg_catalog.pg_class t ON t.oid = d.refobjid JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid \
         WHERE s.relkind = 'S' AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) AND {} \
         UNION \
         SELECT sn.nspname::text, s.relname::text, tn.nspname::text, t.relname::text, a.attname::text \
         FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_class t ON t.oid = ad.adrelid JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = ad.adnum \
         JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass \
         JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace \
         WHERE a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) AND {} ORDER BY 1, 2",
        USER_SCHEMA.replace("n.", "sn."),
        USER_SCHEMA.replace("n.", "sn."),
    );
    let mut behind = Vec::new();
    for (s_schema, seq, t_schema, table, column) in
        sqlx::query_as::<_, (String, String, String, String, String)>(&sql).fetch_all(pool).await?
    {
        let sequence = QualifiedName::new(&s_schema, &seq);
        let table_name = QualifiedName::new(&t_schema, &table);
        let (last, called, increment, seq_min, seq_max, cycle): (i64, bool, i64, i64, i64, bool) =
            sqlx::query_as(&format!(
                "SELECT s.last_value, s.is_called, p.seqincrement, p.seqmin, p.seqmax, p.seqcycle \
             FROM {} s, pg_catalog.pg_sequence p WHERE p.seqrelid = {}::regclass",
                sequence.sql(),
                quote_literal(&sequence.sql())
            ))
            .fetch_one(pool)
            .await?;
        let column_sql = crate::pg::quote_ident(&column);
        let (max, min): (Option<i64>, Option<i64>) = sqlx::query_as(&format!(
            "SELECT max({column_sql})::bigint, min({column_sql})::bigint FROM {}",
            table_name.sql()
        ))
        .fetch_one(pool)
        .await?;
        let (Some(max), Some(min)) = (max, min) else { continue };
        let next = next_value(last, called, increment, seq_min..=seq_max, cycle);
        let reached = match next {
            Next::Value(value) => collides(value, increment, min, max),
            Next::Exhausted(_) => Some(if increment > 0 { max } else { min }),
        };
        if let Some(reached) = reached {
            behind.push(SequenceBehind {
                sequence: sequence.to_string(),
                column: format!("{table_name}.{}", crate::pg::quote_ident_if_needed(&column)),
                next_value: next,
                column_at: reached,
            });
        }
    }
    Ok(behind)
}

/// Prepares a connection for Cypher: AGE loaded and on the search path.
pub(crate) async fn prepare_age(conn: &mut PgConnection) -> sqlx::Result<()> {
    conn.execute("LOAD 'age'").await?;
    // AGE's functions and operators resolve from ag_catalog, after the built-ins.
    conn.execute("SET search_path = pg_catalog, ag_catalog, pg_temp").await?;
    Ok(())
}

/// Whether Apache AGE is installed in the database.
pub(crate) async fn has_age(pool: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'age')")
        .fetch_one(pool)
        .await
}

/// The graphs and their labels (vertex labels, edge labels) as AGE's catalog lists them.
pub(crate) async fn graph_labels(
    conn: &mut PgConnection,
) -> sqlx::Result<BTreeMap<String, (Vec<String>, Vec<String>)>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT g.name::text, l.name::text, l.kind::text FROM ag_catalog.ag_graph g \
         LEFT JOIN ag_catalog.ag_label l ON l.graph = g.graphid AND l.name NOT IN ('_ag_label_vertex', '_ag_label_edge') ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (graph, label, kind) in rows {
        let entry = out.entry(graph).or_default();
        match (label, kind.as_deref()) {
            (Some(label), Some("v")) => entry.0.push(label),
            (Some(label), Some("e")) => entry.1.push(label),
            _ => {}
        }
    }
    Ok(out)
}

/// A Cypher statement for `graph` as SQL returning one agtype column.
pub(crate) fn cypher_sql(graph: &str, cypher: &str) -> String {
    // Dollar-quote the Cypher with a tag that cannot occur in it.
    let mut tag = String::from("cypher");
    while cypher.contains(&format!("${tag}$")) {
        tag.push('_');
    }
    format!(
        "SELECT result::text FROM ag_catalog.cypher({}, ${tag}${cypher}${tag}$) AS (result ag_catalog.agtype)",
        quote_literal(graph)
    )
}

/// Runs a Cypher query returning a single count.
pub(crate) async fn cypher_count(conn: &mut PgConnection, graph: &str, cypher: &str) -> sqlx::Result<i64> {
    let text: Option<String> = sqlx::query_scalar(&cypher_sql(graph, cypher)).fetch_optional(&mut *conn).await?;
    let text = text.unwrap_or_else(|| "0".into());
    text.trim().parse().map_err(|_| sqlx::Error::Protocol(format!("Cypher returned `{text}`, not a count")))
}

/// A label in Cypher, quoted with backticks.
pub(crate) fn cypher_label(label: &str) -> String {
    format!("`{}`", label.replace('`', "``"))
}

/// Vertex and edge counts per label of every graph, counted with Cypher (so a graph whose
/// catalog is broken shows it).
pub(crate) async fn graphs(conn: &mut PgConnection) -> sqlx::Result<BTreeMap<String, GraphCounts>> {
    prepare_age(conn).await?;
    let mut out = BTreeMap::new();
    for (graph, (vertex_labels, edge_labels)) in graph_labels(conn).await? {
        let mut counts = GraphCounts::default();
        for label in vertex_labels {
            let n = cypher_count(conn, &graph, &format!("MATCH (v:{}) RETURN count(v)", cypher_label(&label))).await?;
            counts.vertices.insert(label, n);
        }
        for label in edge_labels {
            let n = cypher_count(conn, &graph, &format!("MATCH ()-[e:{}]->() RETURN count(e)", cypher_label(&label)))
                .await?;
            counts.edges.insert(label, n);
        }
        out.insert(graph, counts);
    }
    Ok(out)
}

/// The newest version of each known migration journal present (per Django app, per sqitch
/// project) and, where the journal keeps a row per migration, every migration it records.
pub(crate) async fn migrations(pool: &PgPool) -> sqlx::Result<Vec<MigrationVersion>> {
    let (found, _) = crate::journal::detect(pool).await?;
    let mut out = Vec::new();
    for f in found {
        let mut journal = f.preset.journal();
        journal.scope = f.preset.scope_column().zip(f.scope.clone()).map(|(column, value)| (column.to_owned(), value));
        let entries = match journal.each_sql() {
            // A journal that cannot be listed is recorded by its newest entry alone.
            Some(sql) => sqlx::query_scalar::<_, Option<String>>(&sql)
                .fetch_all(pool)
                .await
                .ok()
                .map(|rows| rows.into_iter().flatten().collect()),
            None => None,
        };
        out.push(MigrationVersion { journal: journal.key(f.preset), version: f.newest, entries });
    }
    Ok(out)
}

/// Captures a whole baseline from the database `pool` is connected to.
pub(crate) async fn capture(pool: &PgPool, source: &str) -> sqlx::Result<Baseline> {
    capture_of(pool, source, true).await
}

/// [`capture`], with Apache AGE's graphs counted or not (`pgdrill init` counts each graph in a
/// check of its own, and writes one AGE cannot read commented out, saying why).
pub(crate) async fn capture_of(pool: &PgPool, source: &str, count_graphs: bool) -> sqlx::Result<Baseline> {
    let (server_version, database): (String, String) =
        sqlx::query_as("SELECT current_setting('server_version'), current_database()::text").fetch_one(pool).await?;
    let graphs = if count_graphs && has_age(pool).await? {
        let mut conn = pool.acquire().await?.detach();
        let graphs = graphs(&mut conn).await?;
        conn.close().await.ok();
        graphs
    } else {
        BTreeMap::new()
    };
    Ok(Baseline {
        schema: BASELINE_SCHEMA.to_owned(),
        captured_at: OffsetDateTime::now_utc(),
        source: source.to_owned(),
        server_version,
        database,
        row_counts: row_counts(pool).await?,
        indexes: indexes(pool).await?,
        row_security: row_security(pool).await?,
        policies: policies(pool).await?,
        graphs,
        schemas: schemas(pool).await?,
        migrations: migrations(pool).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::{Next, collides, next_value};

    #[test]
    fn the_next_value_follows_the_sequences_bounds_and_cycling() {
        let int4 = || 1..=2_147_483_647;
        assert_eq!(next_value(5, true, 1, int4(), false), Next::Value(6));
        assert_eq!(next_value(5, false, 1, int4(), false), Next::Value(5));
        // MAXVALUE 3 CYCLE at 3: the next is 1 again; without CYCLE, nextval fails.
        assert_eq!(next_value(3, true, 1, 1..=3, true), Next::Value(1));
        assert_eq!(next_value(3, true, 1, 1..=3, false), Next::Exhausted(3));
        // Descending from -1 with MINVALUE -3.
        assert_eq!(next_value(-3, true, -1, -3..=-1, true), Next::Value(-1));
        assert_eq!(next_value(-3, true, -1, -3..=-1, false), Next::Exhausted(-3));
        assert_eq!(next_value(i64::MAX, true, 1, 1..=i64::MAX, false), Next::Exhausted(i64::MAX));
    }

    #[test]
    fn a_sequence_collides_when_it_is_not_past_its_column_in_its_own_direction() {
        // Ascending: next must be above the maximum.
        assert_eq!(collides(11, 1, 1, 10), None);
        assert_eq!(collides(10, 1, 1, 10), Some(10));
        assert_eq!(collides(3, 1, 1, 10), Some(10));
        // Descending (INCREMENT BY -1 from -1): next must be below the minimum; a next value
        // above the minimum hands out -5 where the column already holds it.
        assert_eq!(collides(-11, -1, -10, -1), None);
        assert_eq!(collides(-5, -1, -10, -1), Some(-10));
        assert_eq!(collides(-10, -1, -10, -1), Some(-10));
    }
}
