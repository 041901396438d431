//! What a restored database holds that a scenario can check, read from its catalogs: the facts
//! `pgdrill init` writes checks from. The baseline's capture reads most of them; what only a
//! scenario needs (default operator classes, grants, partition windows, journals by preset)
//! is read here.

mod roles;
mod writers;

use std::collections::BTreeMap;

use sqlx::PgPool;
use sqlx::postgres::PgConnection;

use crate::baseline::{PolicyInfo, RowSecurity, capture};
use crate::check::partitions;
use crate::journal::Found;
use crate::pg::{QualifiedName, SqlError};

/// SQL: `n` (a pg_namespace alias) is a user schema.
const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// SQL: the relation `c` is not part of an extension.
const NOT_EXTENSION_MEMBER: &str = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')";

/// The widest partition window the `partitions` check accepts, either way.
pub(crate) const WINDOW_LIMIT: u32 = 600;

/// Everything `init` writes checks from.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    /// Installed extensions and their versions (plpgsql left out: every database has it).
    pub extensions: Vec<(String, String)>,
    /// Migration journals a preset reads, with their newest version (per Django app, per
    /// sqitch project).
    pub journals: Vec<Found>,
    /// Tables named like a migration journal that no preset reads.
    pub other_journals: Vec<String>,
    /// Exact rows per table (read only where there is no dump to compare with).
    pub row_counts: BTreeMap<QualifiedName, i64>,
    pub indexes: Vec<IndexFound>,
    pub row_security: Vec<RowSecurity>,
    pub policies: Vec<PolicyInfo>,
    pub roles: Vec<RoleFound>,
    pub partitions: Vec<PartitionWindow>,
    /// User schemas (not those an extension makes).
    pub schemas: Vec<String>,
    pub graphs: Vec<GraphFound>,
    /// For each table with row security, the roles that may read it and are subject to its
    /// policies (not its owner nor a member of it, no superuser, no BYPASSRLS), each with
    /// whether it may log in; only roles its grants or its policies name.
    pub readers: BTreeMap<String, Vec<(String, bool)>>,
    /// Functions whose body reads one custom setting: `schema.name` (as the server prints a
    /// call) to the setting.
    pub setting_functions: BTreeMap<String, String>,
    /// Tables a role may append to and not change: it holds INSERT, and UPDATE, DELETE and
    /// TRUNCATE are each not granted to it or refused by a trigger.
    pub append_only: Vec<AppendOnlyFound>,
    /// Each table with a trigger of its own (not a partition's clone of its parent's), with
    /// every non-internal trigger it has.
    pub triggers: BTreeMap<String, Vec<String>>,
    /// What PUBLIC holds on user relations: (relation, privilege), as [`PUBLIC_GRANTS_SQL`]
    /// reads them.
    pub public_grants: Vec<(String, String)>,
}

/// The privileges PUBLIC (every role, present and future) holds on the relations of user
/// schemas, not an extension's: the query init's `sql` check runs, and what it expects is what
/// this read on the backup's restore.
pub(crate) const PUBLIC_GRANTS_SQL: &str = "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), a.privilege_type::pg_catalog.text \
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace, \
LATERAL pg_catalog.aclexplode(c.relacl) a \
WHERE a.grantee OPERATOR(pg_catalog.=) 0 AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S,f}'::\"char\"[]) \
AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_%' \
AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e') ORDER BY 1, 2";

/// A table a role may only append to, as an `append_only` check writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppendOnlyFound {
    pub table: QualifiedName,
    pub role: String,
    /// The enabled BEFORE triggers whose function raises on UPDATE, DELETE or TRUNCATE.
    pub triggers: Vec<String>,
    /// Which of UPDATE, DELETE, TRUNCATE the role holds (a trigger refuses them).
    pub granted: Vec<String>,
    /// Its columns that an INSERT may write (not generated).
    pub columns: Vec<ColumnFound>,
}

/// A column an INSERT must fill, with what a value of its type is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ColumnFound {
    pub name: String,
    /// `format_type`: `uuid`, `character varying(40)`.
    pub sql_type: String,
    /// `pg_type.typcategory` (of a domain's base type).
    pub category: crate::pg::TypeCategory,
    /// An enum's first label.
    pub first_label: Option<String>,
    /// An INSERT must give it a value: NOT NULL, without a default.
    pub required: bool,
    /// A foreign key of its own: (the table it references, the first value that holds, as
    /// text), when that table has one.
    pub references: Option<(String, String)>,
}

/// An index, as an `indexes` expectation writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexFound {
    /// `schema.index`, quoted where needed.
    pub name: String,
    pub table: String,
    pub method: String,
    /// Its first operator class that is not its type's default.
    pub opclass: Option<String>,
    pub unique: bool,
}

/// A role some object's privileges name, with what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleFound {
    pub name: String,
    /// Schemas it has USAGE on (its own grants, PUBLIC's or a role's it is a member of).
    pub usage: Vec<String>,
    /// Every table it holds privileges on in the schemas it may use or is granted tables in,
    /// with those privileges in PostgreSQL's order (those held on columns only as `UPDATE
    /// (body)`).
    pub tables: BTreeMap<String, Vec<String>>,
    pub login: bool,
    /// CONNECT on the database.
    pub connect: bool,
    /// The user schemas it reaches nothing in: no USAGE, no table it may read or write or
    /// owns. `exact` covers only the schemas it uses; a grant in one of these would escape it.
    pub unreached: Vec<String>,
}

/// A partitioned table and the months its partitions cover around this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionWindow {
    pub table: String,
    /// Why the `partitions` check cannot read it (a key it does not support), if so.
    pub unsupported: Option<String>,
    /// (months back, months ahead) covered without a gap, `None` when this month has no partition.
    pub window: Option<(u32, u32)>,
    /// This month, `YYYY-MM`, as the target's clock says.
    pub month: String,
    pub default_partition: bool,
}

/// An Apache AGE graph and its label counts (the database's error when Cypher did not answer).
#[derive(Debug)]
pub(crate) struct GraphFound {
    pub name: String,
    pub counts: Result<LabelCounts, SqlError>,
}

/// Reads the inventory of the database `pool` is connected to (its rows per table are the
/// baseline's, captured beside it: `row_counts` is left empty).
pub(crate) async fn read(pool: &PgPool) -> sqlx::Result<Inventory> {
    let mut inventory = Inventory {
        extensions: sqlx::query_as(
            "SELECT extname::text, extversion FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
        )
        .fetch_all(pool)
        .await?,
        indexes: indexes(pool).await?,
        row_security: capture::row_security(pool).await?,
        policies: capture::policies(pool).await?,
        roles: roles::roles(pool).await?,
        partitions: partitions(pool).await?,
        schemas: capture::schemas(pool).await?.into_keys().collect(),
        readers: roles::readers(pool).await?,
        setting_functions: setting_functions(pool).await?,
        append_only: writers::append_only(pool).await?,
        triggers: triggers(pool).await?,
        public_grants: sqlx::query_as(PUBLIC_GRANTS_SQL).fetch_all(pool).await?,
        ..Inventory::default()
    };
    (inventory.journals, inventory.other_journals) = journals(pool).await?;
    if capture::has_age(pool).await? {
        let mut conn = pool.acquire().await?.detach();
        inventory.graphs = graphs(&mut conn).await?;
        sqlx::Connection::close(conn).await.ok();
    }
    Ok(inventory)
}

/// The triggers of each user table (not an extension's) that has one of its own.
async fn triggers(pool: &PgPool) -> sqlx::Result<BTreeMap<String, Vec<String>>> {
    let sql = "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), t.tgname::text \
         FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg\\_%' \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass \
                           AND d.objid = c.oid AND d.deptype = 'e') \
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger o WHERE o.tgrelid = c.oid AND NOT o.tgisinternal \
                       AND o.tgparentid = 0) \
         ORDER BY 1, 2";
    let rows: Vec<(String, String)> = sqlx::query_as(sql).fetch_all(pool).await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, trigger) in rows {
        out.entry(table).or_default().push(trigger);
    }
    Ok(out)
}

/// Every valid index of a user table that is not a partition (a partition's indexes are its
/// parent's, made on it when it is attached).
async fn indexes(pool: &PgPool) -> sqlx::Result<Vec<IndexFound>> {
    let sql = format!(
        "SELECT n.nspname::text, i.relname::text, c.relname::text, am.amname::text, x.indisunique, \
                (SELECT o.opcname::text FROM unnest(x.indclass::oid[]) WITH ORDINALITY AS u(oid, ord) \
                 JOIN pg_catalog.pg_opclass o ON o.oid = u.oid WHERE NOT o.opcdefault ORDER BY u.ord LIMIT 1) \
         FROM pg_catalog.pg_index x \
         JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
         JOIN pg_catalog.pg_class c ON c.oid = x.indrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_am am ON am.oid = i.relam \
         WHERE {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} AND x.indisvalid AND NOT c.relispartition ORDER BY 1, 2"
    );
    type Row = (String, String, String, String, bool, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(schema, index, table, method, unique, opclass)| IndexFound {
            name: QualifiedName::new(&schema, &index).to_string(),
            table: QualifiedName::new(&schema, &table).to_string(),
            method,
            opclass,
            unique,
        })
        .collect())
}

/// SQL: the role `r` is not the table `c`'s owner nor a member of it (both bypass its row
/// security unless it is forced), nor a superuser, nor a built-in role.
const NOT_OWNER: &str = "r.oid <> c.relowner AND NOT pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE') AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%'";

/// Functions without arguments whose body reads one custom setting.
async fn setting_functions(pool: &PgPool) -> sqlx::Result<BTreeMap<String, String>> {
    let sql = format!(
        "SELECT n.nspname::text, p.proname::text, p.prosrc FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE {USER_SCHEMA} AND p.prokind = 'f' AND p.pronargs = 0 AND p.prosrc LIKE '%current\\_setting%' ORDER BY 1, 2"
    );
    let rows: Vec<(String, String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(schema, name, body)| Some((format!("{schema}.{name}"), super::expr::function_setting(&body)?)))
        .collect())
}

/// Every partitioned table at the top of its tree, with the months its partitions cover.
async fn partitions(pool: &PgPool) -> sqlx::Result<Vec<PartitionWindow>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'p' AND NOT c.relispartition AND {USER_SCHEMA} ORDER BY 1, 2"
    );
    let tables: Vec<(String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    let mut out = Vec::new();
    for (schema, table) in tables {
        let spec = partitions::Spec {
            table: QualifiedName::new(&schema, &table),
            months_back: WINDOW_LIMIT,
            months_ahead: WINDOW_LIMIT,
            default_partition: false,
        };
        let key: (Option<String>, Option<String>, Option<i32>, Option<String>) =
            sqlx::query_as(&spec.key_sql()).fetch_one(pool).await?;
        let mut found = PartitionWindow {
            table: spec.table.to_string(),
            unsupported: None,
            window: None,
            month: String::new(),
            default_partition: false,
        };
        if let Some((_, why)) = partitions::key_problem(key.0.as_deref(), key.1.as_deref(), key.2, key.3.as_deref()) {
            found.unsupported = Some(why);
            out.push(found);
            continue;
        }
        let months: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(&spec.sql()).fetch_all(pool).await?;
        let now = WINDOW_LIMIT as usize;
        found.month = months.get(now).map(|m| m.0.clone()).unwrap_or_default();
        found.default_partition = months.first().is_some_and(|m| m.2.is_some());
        found.window = covered(&months.iter().map(|m| m.1.is_some()).collect::<Vec<_>>(), now);
        out.push(found);
    }
    Ok(out)
}

/// How many months before and after month `now` are covered without a gap, `None` when `now`
/// itself is not.
pub(crate) fn covered(months: &[bool], now: usize) -> Option<(u32, u32)> {
    if !months.get(now).copied().unwrap_or(false) {
        return None;
    }
    let back = months[..now].iter().rev().take_while(|c| **c).count();
    let ahead = months[now + 1..].iter().take_while(|c| **c).count();
    Some((back as u32, ahead as u32))
}

/// The journals a preset reads, with their newest version; and other tables named like one.
async fn journals(pool: &PgPool) -> sqlx::Result<(Vec<Found>, Vec<String>)> {
    let (found, tables) = crate::journal::detect(pool).await?;
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND c.relname ILIKE '%migration%' AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} ORDER BY 1, 2"
    );
    let others: Vec<String> = sqlx::query_as::<_, (String, String)>(&sql)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(s, t)| QualifiedName::new(&s, &t))
        .filter(|t| !tables.contains(t))
        .map(|t| t.to_string())
        .collect();
    Ok((found, others))
}

/// Every graph with its label counts, counted with Cypher; a graph Cypher does not answer
/// (apache/age#2503 after a logical restore on AGE 1.8) says why.
async fn graphs(conn: &mut PgConnection) -> sqlx::Result<Vec<GraphFound>> {
    capture::prepare_age(conn).await?;
    let mut out = Vec::new();
    for (graph, (vertex_labels, edge_labels)) in capture::graph_labels(conn).await? {
        let counts = label_counts(conn, &graph, &vertex_labels, &edge_labels).await.map_err(SqlError::from);
        out.push(GraphFound { name: graph, counts });
    }
    Ok(out)
}

pub(crate) type LabelCounts = (BTreeMap<String, i64>, BTreeMap<String, i64>);

async fn label_counts(
    conn: &mut PgConnection,
    graph: &str,
    vertex_labels: &[String],
    edge_labels: &[String],
) -> sqlx::Result<LabelCounts> {
    let mut vertices = BTreeMap::new();
    for label in vertex_labels {
        let cypher = format!("MATCH (v:{}) RETURN count(v)", capture::cypher_label(label));
        vertices.insert(label.clone(), capture::cypher_count(conn, graph, &cypher).await?);
    }
    let mut edges = BTreeMap::new();
    for label in edge_labels {
        let cypher = format!("MATCH ()-[e:{}]->() RETURN count(e)", capture::cypher_label(label));
        edges.insert(label.clone(), capture::cypher_count(conn, graph, &cypher).await?);
    }
    Ok((vertices, edges))
}

/// The databases of a recovered cluster a scenario could drill (not `postgres` nor the
/// templates), largest first.
pub(crate) async fn databases(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT datname::text FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' \
         ORDER BY pg_database_size(oid) DESC, 1",
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::covered;

    #[test]
    fn the_window_is_the_gapless_run_around_this_month() {
        let months = [false, true, true, true, true, false, true];
        assert_eq!(covered(&months, 3), Some((2, 1)));
        assert_eq!(covered(&months, 0), None, "no partition for this month: no window holds");
        assert_eq!(covered(&[true, true, true], 1), Some((1, 1)));
        assert_eq!(covered(&[true], 0), Some((0, 0)));
    }
}
