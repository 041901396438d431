//! What a restored database holds that a scenario can check, read from its catalogs: the facts
//! `pgdrill init` writes checks from. The baseline's capture reads most of them; what only a
//! scenario needs (default operator classes, grants, partition windows, journals by preset)
//! is read here.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgPool;
use sqlx::postgres::PgConnection;

use crate::baseline::{PolicyInfo, RowSecurity, capture};
use crate::check::partitions;
use crate::journal::Preset;
use crate::pg::QualifiedName;

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
    /// Migration journals a preset reads, with their newest version.
    pub journals: Vec<(Preset, String)>,
    /// Tables named like a migration journal that no preset reads.
    pub other_journals: Vec<String>,
    /// Exact rows per table (read only where there is no dump to compare with).
    pub row_counts: BTreeMap<String, i64>,
    pub indexes: Vec<IndexFound>,
    pub row_security: Vec<RowSecurity>,
    pub policies: Vec<PolicyInfo>,
    pub roles: Vec<RoleFound>,
    pub partitions: Vec<PartitionWindow>,
    /// User schemas (not those an extension makes).
    pub schemas: Vec<String>,
    pub graphs: Vec<GraphFound>,
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

/// A role some object's privileges name, with its floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleFound {
    pub name: String,
    /// Schemas it has USAGE on (its own grants, PUBLIC's or a role's it is a member of).
    pub usage: Vec<String>,
    /// Tables granted to it by name, with the privileges, in PostgreSQL's order.
    pub tables: BTreeMap<String, Vec<String>>,
    pub login: bool,
    /// CONNECT on the database.
    pub connect: bool,
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

/// An Apache AGE graph and its label counts (`None`, with why, when Cypher did not answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GraphFound {
    pub name: String,
    pub counts: Result<LabelCounts, String>,
}

/// Reads the inventory of the database `pool` is connected to. `count_rows`: count every table
/// (a physical backup, which has no dump to compare with).
pub(crate) async fn read(pool: &PgPool, count_rows: bool) -> sqlx::Result<Inventory> {
    let mut inventory = Inventory {
        extensions: sqlx::query_as(
            "SELECT extname::text, extversion FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
        )
        .fetch_all(pool)
        .await?,
        indexes: indexes(pool).await?,
        row_security: capture::row_security(pool).await?,
        policies: capture::policies(pool).await?,
        roles: roles(pool).await?,
        partitions: partitions(pool).await?,
        schemas: capture::schemas(pool).await?.into_keys().collect(),
        ..Inventory::default()
    };
    (inventory.journals, inventory.other_journals) = journals(pool).await?;
    if count_rows {
        inventory.row_counts = capture::row_counts(pool).await?;
    }
    if capture::has_age(pool).await? {
        let mut conn = pool.acquire().await?.detach();
        inventory.graphs = graphs(&mut conn).await?;
        sqlx::Connection::close(conn).await.ok();
    }
    Ok(inventory)
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

const PRIVILEGES: [&str; 7] = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"];

/// The roles the privileges of user tables, views, sequences and schemas name (not PUBLIC, the
/// bootstrap superuser or built-in roles), each with what it holds.
async fn roles(pool: &PgPool) -> sqlx::Result<Vec<RoleFound>> {
    let grants_sql = format!(
        "SELECT r.rolname::text, n.nspname::text, c.relname::text, c.relkind::text, a.privilege_type::text \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         CROSS JOIN LATERAL aclexplode(c.relacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {USER_SCHEMA} AND r.oid <> 10 AND r.rolname NOT LIKE 'pg\\_%' \
         UNION ALL \
         SELECT r.rolname::text, n.nspname::text, NULL, NULL, a.privilege_type::text \
         FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee \
         WHERE {USER_SCHEMA} AND r.oid <> 10 AND r.rolname NOT LIKE 'pg\\_%' ORDER BY 1, 2, 3"
    );
    type Grant = (String, String, Option<String>, Option<String>, String);
    let grants: Vec<Grant> = sqlx::query_as(&grants_sql).fetch_all(pool).await?;
    let mut tables: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (role, schema, relation, kind, privilege) in grants {
        let entry = tables.entry(role).or_default();
        if let (Some(relation), Some(kind)) = (relation, kind)
            && kind != "S"
            && PRIVILEGES.contains(&privilege.as_str())
        {
            entry.entry(QualifiedName::new(&schema, &relation).to_string()).or_default().insert(privilege);
        }
    }
    let usage_sql = format!(
        "SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE {USER_SCHEMA} AND has_schema_privilege($1, n.oid, 'USAGE') ORDER BY 1"
    );
    let mut out = Vec::new();
    for (role, granted) in tables {
        let usage: Vec<String> = sqlx::query_scalar(&usage_sql).bind(&role).fetch_all(pool).await?;
        let (login, connect): (bool, bool) = sqlx::query_as(
            "SELECT rolcanlogin, has_database_privilege(rolname, current_database(), 'CONNECT') FROM pg_catalog.pg_roles WHERE rolname = $1",
        )
        .bind(&role)
        .fetch_one(pool)
        .await?;
        let tables = granted
            .into_iter()
            .map(|(table, held)| {
                (table, PRIVILEGES.iter().filter(|p| held.contains(**p)).map(|p| (*p).to_owned()).collect())
            })
            .collect();
        out.push(RoleFound { name: role, usage, tables, login, connect });
    }
    Ok(out)
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
async fn journals(pool: &PgPool) -> sqlx::Result<(Vec<(Preset, String)>, Vec<String>)> {
    let mut found = Vec::new();
    let mut tables = Vec::new();
    for preset in Preset::ALL {
        let journal = preset.journal();
        if tables.contains(&journal.table.to_string()) {
            continue;
        }
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
        )
        .bind(journal.table.sql())
        .fetch_all(pool)
        .await?;
        // golang-migrate's `dirty` tells it from Rails, whose table has the same name; a journal
        // recording what it failed needs that column too.
        let needs: Vec<&str> = match preset {
            Preset::GolangMigrate => vec!["dirty"],
            Preset::Sqlx | Preset::Flyway => vec!["success"],
            Preset::Goose => vec!["is_applied", "id"],
            _ => vec![],
        };
        if !columns.contains(&journal.column) || !needs.iter().all(|n| columns.iter().any(|c| c == n)) {
            continue;
        }
        tables.push(journal.table.to_string());
        let newest: Option<Option<String>> =
            sqlx::query_scalar(&journal.newest_sql()).fetch_optional(pool).await.unwrap_or(None);
        if let Some(Some(version)) = newest {
            found.push((preset, version));
        }
    }
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND c.relname ILIKE '%migration%' AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} ORDER BY 1, 2"
    );
    let others: Vec<String> = sqlx::query_as::<_, (String, String)>(&sql)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(s, t)| QualifiedName::new(&s, &t).to_string())
        .filter(|t| !tables.contains(t))
        .collect();
    Ok((found, others))
}

/// Every graph with its label counts, counted with Cypher; a graph Cypher does not answer
/// (apache/age#2503 after a logical restore on AGE 1.8) says why.
async fn graphs(conn: &mut PgConnection) -> sqlx::Result<Vec<GraphFound>> {
    capture::prepare_age(conn).await?;
    let mut out = Vec::new();
    for (graph, (vertex_labels, edge_labels)) in capture::graph_labels(conn).await? {
        let counts = label_counts(conn, &graph, &vertex_labels, &edge_labels)
            .await
            .map_err(|e| crate::pg::describe_sql_error(&e));
        out.push(GraphFound { name: graph, counts });
    }
    Ok(out)
}

type LabelCounts = (BTreeMap<String, i64>, BTreeMap<String, i64>);

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
